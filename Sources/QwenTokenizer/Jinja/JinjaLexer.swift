/// Splits a Jinja template into text, `{{ … }}` and `{% … %}` parts, applying whitespace control the way
/// Hugging Face configures Jinja for chat templates (`trim_blocks=True, lstrip_blocks=True`): `-` strips all
/// whitespace on its side, a block tag removes the newline after it and the indentation before it.
enum JinjaLexer {
    enum Token: Equatable {
        case name(String)
        case string(String)
        case int(Int)
        case float(Double)
        case op(String)
    }

    enum Part {
        case text(String)
        case expression([Token], line: Int)
        case statement([Token], line: Int)
    }

    /// Jinja reads templates with "\r\n" and "\r" as "\n" and without one trailing newline.
    static func normalizedSource(_ source: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(source.utf8.count)
        var previousCR = false
        for b in source.utf8 {
            if b == 0x0A && previousCR { previousCR = false; continue }
            previousCR = b == 0x0D
            out.append(b == 0x0D ? 0x0A : b)
        }
        if out.last == 0x0A { out.removeLast() }
        return out
    }

    static func parts(of source: String) throws -> [Part] {
        let s = normalizedSource(source)
        let n = s.count
        var parts: [Part] = []
        var pos = 0
        var line = 1
        var stripNextText = false   // a "-" closed the previous tag
        var trimNextNewline = false // a block tag closed without "-": trim_blocks

        func lineOf(_ offset: Int) -> Int { line + s[pos..<offset].reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) } }

        while pos <= n {
            // Find the next tag opening.
            var open = pos
            var kind: UInt8 = 0
            while open + 1 < n {
                if s[open] == UInt8(ascii: "{"), [UInt8(ascii: "{"), UInt8(ascii: "%"), UInt8(ascii: "#")].contains(s[open + 1]) {
                    kind = s[open + 1]
                    break
                }
                open += 1
            }
            if kind == 0 { open = n }
            var textStart = pos
            if trimNextNewline && textStart < open && s[textStart] == 0x0A { textStart += 1 }
            if stripNextText { while textStart < open && isJinjaSpace(s[textStart]) { textStart += 1 } }
            if kind == 0 {
                if textStart < n { parts.append(.text(String(decoding: s[textStart..<n], as: UTF8.self))) }
                break
            }
            let modifier = open + 2 < n ? s[open + 2] : 0
            var textEnd = open
            if modifier == UInt8(ascii: "-") {
                while textEnd > textStart && isJinjaSpace(s[textEnd - 1]) { textEnd -= 1 }
            } else if kind != UInt8(ascii: "{") && modifier != UInt8(ascii: "+") {
                // lstrip_blocks: drop the indentation before a block tag that starts its line.
                var k = textEnd
                while k > textStart && (s[k - 1] == 0x20 || s[k - 1] == 0x09) { k -= 1 }
                if k == 0 || s[k - 1] == 0x0A { textEnd = k }
            }
            let text = s[textStart..<textEnd]
            if !text.isEmpty { parts.append(.text(String(decoding: text, as: UTF8.self))) }
            let tagLine = lineOf(open)
            var bodyStart = open + 2
            if modifier == UInt8(ascii: "-") || modifier == UInt8(ascii: "+") { bodyStart += 1 }

            if kind == UInt8(ascii: "#") {
                guard let close = find(s, "#}", from: bodyStart) else {
                    throw TokenizerError.templateSyntax(message: "unclosed comment", line: tagLine)
                }
                stripNextText = close > bodyStart && s[close - 1] == UInt8(ascii: "-")
                trimNextNewline = !stripNextText
                line = lineOf(close + 2)
                pos = close + 2
                continue
            }
            let closer: [UInt8] = kind == UInt8(ascii: "{") ? Array("}}".utf8) : Array("%}".utf8)
            var (tokens, close) = try tokenize(s, from: bodyStart, until: closer, line: tagLine)
            stripNextText = close > bodyStart && s[close - 1] == UInt8(ascii: "-") && tokens.last == .op("-")
            if stripNextText { tokens.removeLast() }
            trimNextNewline = kind == UInt8(ascii: "%") && !stripNextText
            line = lineOf(close + 2)
            pos = close + 2
            if kind == UInt8(ascii: "{") {
                parts.append(.expression(tokens, line: tagLine))
            } else if tokens == [.name("raw")] {
                // {% raw %}…{% endraw %}: the text in between is output as is.
                guard let end = findEndRaw(s, from: pos) else {
                    throw TokenizerError.templateSyntax(message: "unclosed raw block", line: tagLine)
                }
                var raw = Array(s[pos..<end.tagStart])
                if trimNextNewline, raw.first == 0x0A { raw.removeFirst() }
                if end.stripBefore { while let last = raw.last, isJinjaSpace(last) { raw.removeLast() } }
                parts.append(.text(String(decoding: raw, as: UTF8.self)))
                line = lineOf(end.after)
                pos = end.after
                stripNextText = end.stripAfter
                trimNextNewline = !end.stripAfter
            } else {
                parts.append(.statement(tokens, line: tagLine))
            }
        }
        return parts
    }

    private static func isJinjaSpace(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0B || b == 0x0C
    }

    private static func find(_ s: [UInt8], _ needle: String, from: Int) -> Int? {
        let p = Array(needle.utf8)
        var i = from
        while i + p.count <= s.count {
            if s[i] == p[0] && Array(s[i..<(i + p.count)]) == p { return i }
            i += 1
        }
        return nil
    }

    private static func findEndRaw(_ s: [UInt8], from: Int) -> (tagStart: Int, after: Int, stripBefore: Bool, stripAfter: Bool)? {
        var i = from
        while let open = find(s, "{%", from: i) {
            var j = open + 2
            let stripBefore = j < s.count && s[j] == UInt8(ascii: "-")
            if stripBefore { j += 1 }
            while j < s.count, s[j] == 0x20 { j += 1 }
            if Array(s[j..<min(j + 6, s.count)]) == Array("endraw".utf8), let close = find(s, "%}", from: j) {
                return (open, close + 2, stripBefore, s[close - 1] == UInt8(ascii: "-"))
            }
            i = open + 2
        }
        return nil
    }

    private static let operators = ["//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "|", ".", ",", ":",
                                    "(", ")", "[", "]", "{", "}", "<", ">", "="].map { Array($0.utf8) }

    /// Tokens from `start` up to the closing delimiter (outside string literals); returns the closer's offset.
    private static func tokenize(_ s: [UInt8], from start: Int, until closer: [UInt8], line: Int) throws -> ([Token], Int) {
        var tokens: [Token] = []
        var i = start
        let n = s.count
        while i < n {
            let c = s[i]
            if isJinjaSpace(c) { i += 1; continue }
            if i + 1 < n && s[i] == closer[0] && s[i + 1] == closer[1] { return (tokens, i) }
            if c == UInt8(ascii: "-") && i + 2 < n && s[i + 1] == closer[0] && s[i + 2] == closer[1] {
                tokens.append(.op("-"))
                return (tokens, i + 1)
            }
            if c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") {
                let (value, end) = try stringLiteral(s, from: i, line: line)
                tokens.append(.string(value))
                i = end
                continue
            }
            if c >= 0x30 && c <= 0x39 {
                var j = i
                var isFloat = false
                while j < n, (s[j] >= 0x30 && s[j] <= 0x39) || s[j] == UInt8(ascii: "_")
                        || (s[j] == UInt8(ascii: ".") && !isFloat && j + 1 < n && s[j + 1] >= 0x30 && s[j + 1] <= 0x39) {
                    if s[j] == UInt8(ascii: ".") { isFloat = true }
                    j += 1
                }
                if j < n, s[j] | 0x20 == UInt8(ascii: "e") {
                    var k = j + 1
                    if k < n, s[k] == UInt8(ascii: "+") || s[k] == UInt8(ascii: "-") { k += 1 }
                    if k < n, s[k] >= 0x30 && s[k] <= 0x39 {
                        while k < n, s[k] >= 0x30 && s[k] <= 0x39 { k += 1 }
                        isFloat = true
                        j = k
                    }
                }
                let text = String(decoding: s[i..<j].filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
                tokens.append(isFloat ? .float(Double(text)!) : .int(Int(text) ?? Int.max))
                i = j
                continue
            }
            if c == UInt8(ascii: "_") || (c | 0x20 >= UInt8(ascii: "a") && c | 0x20 <= UInt8(ascii: "z")) {
                var j = i
                while j < n, s[j] == UInt8(ascii: "_") || (s[j] | 0x20 >= UInt8(ascii: "a") && s[j] | 0x20 <= UInt8(ascii: "z"))
                        || (s[j] >= 0x30 && s[j] <= 0x39) { j += 1 }
                tokens.append(.name(String(decoding: s[i..<j], as: UTF8.self)))
                i = j
                continue
            }
            guard let op = operators.first(where: { i + $0.count <= n && Array(s[i..<(i + $0.count)]) == $0 }) else {
                throw TokenizerError.templateSyntax(message: "unexpected character '\(Unicode.Scalar(c))'", line: line)
            }
            tokens.append(.op(String(decoding: op, as: UTF8.self)))
            i += op.count
        }
        throw TokenizerError.templateSyntax(message: "unclosed tag (expected \(String(decoding: closer, as: UTF8.self)))", line: line)
    }

    /// A quoted literal with Python's escapes (\n, \t, \\, \', \", \xHH, \uHHHH, \UHHHHHHHH).
    private static func stringLiteral(_ s: [UInt8], from start: Int, line: Int) throws -> (String, Int) {
        let quote = s[start]
        var out: [UInt8] = []
        var i = start + 1
        while i < s.count {
            let c = s[i]
            if c == quote { return (String(decoding: out, as: UTF8.self), i + 1) }
            guard c == UInt8(ascii: "\\"), i + 1 < s.count else { out.append(c); i += 1; continue }
            let e = s[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "0"): out.append(0x00)
            case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): out.append(e)
            case UInt8(ascii: "x"), UInt8(ascii: "u"), UInt8(ascii: "U"):
                let digits = e == UInt8(ascii: "x") ? 2 : e == UInt8(ascii: "u") ? 4 : 8
                guard i + digits <= s.count,
                      let v = UInt32(String(decoding: s[i..<(i + digits)], as: UTF8.self), radix: 16),
                      let scalar = Unicode.Scalar(v) else {
                    throw TokenizerError.templateSyntax(message: "invalid escape in string literal", line: line)
                }
                appendUTF8(scalar.value, to: &out)
                i += digits
            default:
                out.append(UInt8(ascii: "\\"))
                out.append(e)
            }
        }
        throw TokenizerError.templateSyntax(message: "unterminated string literal", line: line)
    }
}
