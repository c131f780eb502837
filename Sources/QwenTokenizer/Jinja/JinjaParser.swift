/// Jinja expressions and statements, parsed with Jinja's own precedence
/// (or < and < not < comparisons < + - < ~ < * / // % < ** < unary < postfix/filters/tests).
indirect enum JinjaExpr {
    case literal(JinjaValue)
    case name(String)
    case list([JinjaExpr])
    case tuple([JinjaExpr])
    case dict([(JinjaExpr, JinjaExpr)])
    case attribute(JinjaExpr, String)
    case item(JinjaExpr, JinjaExpr)
    case slice(JinjaExpr, JinjaExpr?, JinjaExpr?, JinjaExpr?)
    case call(JinjaExpr, [JinjaExpr], [(String, JinjaExpr)])
    case filter(JinjaExpr, String, [JinjaExpr], [(String, JinjaExpr)])
    case test(JinjaExpr, String, [JinjaExpr], negated: Bool)
    case not(JinjaExpr)
    case negate(JinjaExpr)
    case binary(String, JinjaExpr, JinjaExpr)
    case and(JinjaExpr, JinjaExpr)
    case or(JinjaExpr, JinjaExpr)
    case conditional(JinjaExpr, condition: JinjaExpr, otherwise: JinjaExpr?)
}

indirect enum JinjaNode {
    enum Target { case name(String), attribute(String, String), names([String]) }

    case text(String)
    case output(JinjaExpr)
    case ifBlock([(JinjaExpr, [JinjaNode])], otherwise: [JinjaNode])
    case forLoop(targets: [String], iterable: JinjaExpr, filter: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode])
    case set(Target, JinjaExpr)
    case setBlock(String, [JinjaNode])
    case macro(name: String, parameters: [(String, JinjaExpr?)], body: [JinjaNode])
    case expressionStatement(JinjaExpr)
    case loopBreak
    case loopContinue
}

struct JinjaParser {
    private let parts: [JinjaLexer.Part]
    private var index = 0

    static func parse(_ source: String) throws -> [JinjaNode] {
        var parser = JinjaParser(parts: try JinjaLexer.parts(of: source))
        let (nodes, end) = try parser.parseBlock(until: [])
        if let end { throw TokenizerError.templateSyntax(message: "unexpected '\(end.keyword)'", line: end.line) }
        return nodes
    }

    private init(parts: [JinjaLexer.Part]) { self.parts = parts }

    private struct BlockEnd { let keyword: String; let tokens: [JinjaLexer.Token]; let line: Int }

    /// Nodes up to one of the `terminators` statements (returned) or the end of the template (nil).
    private mutating func parseBlock(until terminators: Set<String>) throws -> ([JinjaNode], BlockEnd?) {
        var nodes: [JinjaNode] = []
        while index < parts.count {
            let part = parts[index]
            index += 1
            switch part {
            case .text(let t): nodes.append(.text(t))
            case let .expression(tokens, line):
                var stream = TokenStream(tokens: tokens, line: line)
                nodes.append(.output(try stream.parseExpression()))
                try stream.expectEnd()
            case let .statement(tokens, line):
                guard case .name(let keyword)? = tokens.first else {
                    throw TokenizerError.templateSyntax(message: "statement without a keyword", line: line)
                }
                if terminators.contains(keyword) { return (nodes, BlockEnd(keyword: keyword, tokens: tokens, line: line)) }
                var stream = TokenStream(tokens: Array(tokens.dropFirst()), line: line)
                if let node = try parseStatement(keyword, &stream, line: line) { nodes.append(node) }
            }
        }
        if !terminators.isEmpty {
            throw TokenizerError.templateSyntax(message: "missing \(terminators.sorted().joined(separator: " or "))", line: lastLine)
        }
        return (nodes, nil)
    }

    private var lastLine: Int {
        for part in parts.reversed() {
            switch part {
            case let .expression(_, line), let .statement(_, line): return line
            case .text: continue
            }
        }
        return 1
    }

    private mutating func parseStatement(_ keyword: String, _ stream: inout TokenStream, line: Int) throws -> JinjaNode? {
        switch keyword {
        case "if":
            var condition = try stream.parseExpression()
            try stream.expectEnd()
            var branches: [(JinjaExpr, [JinjaNode])] = []
            while true {
                let (body, end) = try parseBlock(until: ["elif", "else", "endif"])
                branches.append((condition, body))
                switch end!.keyword {
                case "elif":
                    var s = TokenStream(tokens: Array(end!.tokens.dropFirst()), line: end!.line)
                    condition = try s.parseExpression()
                    try s.expectEnd()
                case "else":
                    return .ifBlock(branches, otherwise: try parseBlock(until: ["endif"]).0)
                default:
                    return .ifBlock(branches, otherwise: [])
                }
            }
        case "for":
            var targets: [String] = []
            let parenthesized = stream.consume(.op("("))
            repeat {
                guard case .name(let n)? = stream.next() else { throw stream.error("expected a loop variable") }
                targets.append(n)
            } while stream.consume(.op(","))
            if parenthesized { try stream.expect(.op(")")) }
            try stream.expect(.name("in"))
            let iterable = try stream.parseOr()
            var filter: JinjaExpr?
            if stream.consume(.name("if")) { filter = try stream.parseOr() }
            _ = stream.consume(.name("recursive"))
            try stream.expectEnd()
            let (body, end) = try parseBlock(until: ["else", "endfor"])
            var otherwise: [JinjaNode] = []
            if end!.keyword == "else" { otherwise = try parseBlock(until: ["endfor"]).0 }
            return .forLoop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise)
        case "set":
            guard case .name(let first)? = stream.next() else { throw stream.error("expected a variable name") }
            var target = JinjaNode.Target.name(first)
            if stream.consume(.op(".")) {
                guard case .name(let attribute)? = stream.next() else { throw stream.error("expected an attribute name") }
                target = .attribute(first, attribute)
            } else if stream.peek == .op(",") {
                var names = [first]
                while stream.consume(.op(",")) {
                    guard case .name(let n)? = stream.next() else { throw stream.error("expected a variable name") }
                    names.append(n)
                }
                target = .names(names)
            }
            if stream.atEnd, case .name(let name) = target {
                return .setBlock(name, try parseBlock(until: ["endset"]).0)
            }
            try stream.expect(.op("="))
            let value = try stream.parseTupleOrExpression()
            try stream.expectEnd()
            return .set(target, value)
        case "macro":
            guard case .name(let name)? = stream.next() else { throw stream.error("expected a macro name") }
            try stream.expect(.op("("))
            var parameters: [(String, JinjaExpr?)] = []
            while !stream.consume(.op(")")) {
                guard case .name(let p)? = stream.next() else { throw stream.error("expected a parameter name") }
                parameters.append((p, stream.consume(.op("=")) ? try stream.parseExpression() : nil))
                if !stream.consume(.op(",")) { try stream.expect(.op(")")); break }
            }
            try stream.expectEnd()
            return .macro(name: name, parameters: parameters, body: try parseBlock(until: ["endmacro"]).0)
        case "do":
            let e = try stream.parseExpression()
            try stream.expectEnd()
            return .expressionStatement(e)
        case "break": return .loopBreak
        case "continue": return .loopContinue
        case "generation", "endgeneration":
            return nil  // transformers' assistant-mask markers: no output of their own
        default:
            throw TokenizerError.templateSyntax(message: "unsupported statement '\(keyword)'", line: line)
        }
    }
}

/// Expression parsing over one tag's tokens.
struct TokenStream {
    let tokens: [JinjaLexer.Token]
    let line: Int
    private var i = 0

    init(tokens: [JinjaLexer.Token], line: Int) {
        self.tokens = tokens
        self.line = line
    }

    var atEnd: Bool { i >= tokens.count }
    var peek: JinjaLexer.Token? { i < tokens.count ? tokens[i] : nil }
    func peek(_ offset: Int) -> JinjaLexer.Token? { i + offset < tokens.count ? tokens[i + offset] : nil }

    mutating func next() -> JinjaLexer.Token? {
        defer { i += 1 }
        return peek
    }

    mutating func consume(_ t: JinjaLexer.Token) -> Bool {
        if peek == t { i += 1; return true }
        return false
    }

    func error(_ message: String) -> TokenizerError {
        TokenizerError.templateSyntax(message: "\(message) (at \(peek.map { "\($0)" } ?? "end of tag"))", line: line)
    }

    mutating func expect(_ t: JinjaLexer.Token) throws {
        guard consume(t) else { throw error("expected \(t)") }
    }

    func expectEnd() throws {
        guard atEnd else { throw error("unexpected token") }
    }

    /// `a, b` (a tuple) or a single expression, as on the right of `set`.
    mutating func parseTupleOrExpression() throws -> JinjaExpr {
        let first = try parseExpression()
        guard peek == .op(",") else { return first }
        var items = [first]
        while consume(.op(",")) && !atEnd { items.append(try parseExpression()) }
        return .tuple(items)
    }

    mutating func parseExpression() throws -> JinjaExpr {
        var e = try parseOr()
        while consume(.name("if")) {
            let condition = try parseOr()
            let otherwise = consume(.name("else")) ? try parseExpression() : nil
            e = .conditional(e, condition: condition, otherwise: otherwise)
        }
        return e
    }

    mutating func parseOr() throws -> JinjaExpr {
        var e = try parseAnd()
        while consume(.name("or")) { e = .or(e, try parseAnd()) }
        return e
    }

    mutating func parseAnd() throws -> JinjaExpr {
        var e = try parseNot()
        while consume(.name("and")) { e = .and(e, try parseNot()) }
        return e
    }

    mutating func parseNot() throws -> JinjaExpr {
        if consume(.name("not")) { return .not(try parseNot()) }
        return try parseCompare()
    }

    mutating func parseCompare() throws -> JinjaExpr {
        var e = try parseMath1()
        while true {
            if case .op(let op)? = peek, ["==", "!=", "<", ">", "<=", ">="].contains(op) {
                i += 1
                e = .binary(op, e, try parseMath1())
            } else if consume(.name("in")) {
                e = .binary("in", e, try parseMath1())
            } else if peek == .name("not") && peek(1) == .name("in") {
                i += 2
                e = .not(.binary("in", e, try parseMath1()))
            } else {
                return e
            }
        }
    }

    mutating func parseMath1() throws -> JinjaExpr {
        var e = try parseConcat()
        while case .op(let op)? = peek, op == "+" || op == "-" {
            i += 1
            e = .binary(op, e, try parseConcat())
        }
        return e
    }

    mutating func parseConcat() throws -> JinjaExpr {
        var e = try parseMath2()
        while consume(.op("~")) { e = .binary("~", e, try parseMath2()) }
        return e
    }

    mutating func parseMath2() throws -> JinjaExpr {
        var e = try parsePow()
        while case .op(let op)? = peek, ["*", "/", "//", "%"].contains(op) {
            i += 1
            e = .binary(op, e, try parsePow())
        }
        return e
    }

    mutating func parsePow() throws -> JinjaExpr {
        var e = try parseUnary(withFilters: true)
        while consume(.op("**")) { e = .binary("**", e, try parseUnary(withFilters: true)) }
        return e
    }

    mutating func parseUnary(withFilters: Bool) throws -> JinjaExpr {
        var e: JinjaExpr
        if consume(.op("-")) {
            e = .negate(try parseUnary(withFilters: false))
        } else if consume(.op("+")) {
            e = try parseUnary(withFilters: false)
        } else {
            e = try parsePostfix(try parsePrimary())
        }
        return withFilters ? try parseFiltersAndTests(e) : e
    }

    mutating func parsePrimary() throws -> JinjaExpr {
        guard let t = next() else { throw error("expected an expression") }
        switch t {
        case .name(let n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .string(var s):
            while case .string(let more)? = peek { s += more; i += 1 }
            return .literal(.string(s))
        case .int(let v): return .literal(.int(v))
        case .float(let v): return .literal(.double(v))
        case .op("("):
            if consume(.op(")")) { return .tuple([]) }
            let first = try parseExpression()
            if consume(.op(")")) { return first }
            var items = [first]
            while consume(.op(",")) {
                if peek == .op(")") { break }
                items.append(try parseExpression())
            }
            try expect(.op(")"))
            return .tuple(items)
        case .op("["):
            var items: [JinjaExpr] = []
            while !consume(.op("]")) {
                items.append(try parseExpression())
                if !consume(.op(",")) { try expect(.op("]")); break }
            }
            return .list(items)
        case .op("{"):
            var items: [(JinjaExpr, JinjaExpr)] = []
            while !consume(.op("}")) {
                let key = try parseExpression()
                try expect(.op(":"))
                items.append((key, try parseExpression()))
                if !consume(.op(",")) { try expect(.op("}")); break }
            }
            return .dict(items)
        default:
            i -= 1
            throw error("unexpected token")
        }
    }

    mutating func parsePostfix(_ base: JinjaExpr) throws -> JinjaExpr {
        var e = base
        while true {
            if consume(.op(".")) {
                switch next() {
                case .name(let n)?: e = .attribute(e, n)
                case .int(let k)?: e = .item(e, .literal(.int(k)))
                default: throw error("expected an attribute name")
                }
            } else if consume(.op("[")) {
                e = try parseSubscript(e)
            } else if peek == .op("(") {
                i += 1
                let (args, kwargs) = try parseArguments()
                e = .call(e, args, kwargs)
            } else {
                return e
            }
        }
    }

    private mutating func parseSubscript(_ base: JinjaExpr) throws -> JinjaExpr {
        var parts: [JinjaExpr?] = [nil]
        var isSlice = false
        while !consume(.op("]")) {
            if consume(.op(":")) {
                isSlice = true
                parts.append(nil)
            } else {
                parts[parts.count - 1] = try parseExpression()
            }
        }
        if !isSlice {
            guard let index = parts[0] else { throw error("empty subscript") }
            return .item(base, index)
        }
        while parts.count < 3 { parts.append(nil) }
        return .slice(base, parts[0], parts[1], parts[2])
    }

    /// After "(": positional and keyword arguments up to ")".
    mutating func parseArguments() throws -> ([JinjaExpr], [(String, JinjaExpr)]) {
        var args: [JinjaExpr] = []
        var kwargs: [(String, JinjaExpr)] = []
        while !consume(.op(")")) {
            if case .name(let n)? = peek, peek(1) == .op("=") {
                i += 2
                kwargs.append((n, try parseExpression()))
            } else {
                args.append(try parseExpression())
            }
            if !consume(.op(",")) { try expect(.op(")")); break }
        }
        return (args, kwargs)
    }

    mutating func parseFiltersAndTests(_ base: JinjaExpr) throws -> JinjaExpr {
        var e = base
        while true {
            if consume(.op("|")) {
                guard case .name(let name)? = next() else { throw error("expected a filter name") }
                var args: [JinjaExpr] = [], kwargs: [(String, JinjaExpr)] = []
                if consume(.op("(")) { (args, kwargs) = try parseArguments() }
                e = .filter(e, name, args, kwargs)
            } else if consume(.name("is")) {
                let negated = consume(.name("not"))
                guard case .name(let name)? = next() else { throw error("expected a test name") }
                var args: [JinjaExpr] = []
                if consume(.op("(")) {
                    args = try parseArguments().0
                } else if let t = peek, Self.startsTestArgument(t) {
                    args = [try parsePostfix(try parsePrimary())]
                }
                e = .test(e, name, args, negated: negated)
            } else {
                return e
            }
        }
    }

    /// `x is divisibleby 3`, `x is sameas none`: a test may take one argument without parentheses.
    private static func startsTestArgument(_ t: JinjaLexer.Token) -> Bool {
        switch t {
        case .string, .int, .float: return true
        case .name(let n): return !["and", "or", "if", "else", "not", "in", "is"].contains(n)
        case .op(let o): return o == "[" || o == "{"
        }
    }
}
