import Foundation

/// Python `str` operations on code points (Swift's `String` compares grapheme clusters, Python does not:
/// `"e\u{301}".startswith("e")` is true in Python).
enum PyString {
    typealias Scalars = [Unicode.Scalar]

    static func find(_ s: Scalars, _ sub: Scalars, from: Int = 0) -> Int? {
        if sub.isEmpty { return from <= s.count ? from : nil }
        guard s.count >= sub.count else { return nil }
        var i = from
        while i + sub.count <= s.count {
            if s[i] == sub[0] && s[i..<(i + sub.count)].elementsEqual(sub) { return i }
            i += 1
        }
        return nil
    }

    static func strip(_ s: Scalars, _ chars: Scalars?, leading: Bool, trailing: Bool) -> Scalars {
        let remove: (Unicode.Scalar) -> Bool = chars.map { set in { set.contains($0) } } ?? PythonFormat.isSpace
        var start = 0, end = s.count
        if leading { while start < end && remove(s[start]) { start += 1 } }
        if trailing { while end > start && remove(s[end - 1]) { end -= 1 } }
        return Array(s[start..<end])
    }

    static func split(_ s: Scalars, _ sep: Scalars?, maxSplit: Int) -> [Scalars] {
        var parts: [Scalars] = []
        guard let sep else {
            // Runs of whitespace separate; leading/trailing whitespace gives no empty parts.
            var i = 0
            while i < s.count {
                while i < s.count && PythonFormat.isSpace(s[i]) { i += 1 }
                guard i < s.count else { break }
                if maxSplit >= 0 && parts.count == maxSplit {
                    parts.append(strip(Array(s[i...]), nil, leading: false, trailing: true))
                    break
                }
                let start = i
                while i < s.count && !PythonFormat.isSpace(s[i]) { i += 1 }
                parts.append(Array(s[start..<i]))
            }
            return parts
        }
        var start = 0
        while maxSplit < 0 || parts.count < maxSplit, let k = find(s, sep, from: start) {
            parts.append(Array(s[start..<k]))
            start = k + sep.count
        }
        parts.append(Array(s[start...]))
        return parts
    }

    static func replace(_ s: Scalars, _ old: Scalars, _ new: Scalars, count: Int) -> Scalars {
        guard !old.isEmpty else { return s }
        var out: Scalars = []
        var start = 0, done = 0
        while count < 0 || done < count, let k = find(s, old, from: start) {
            out += s[start..<k] + new
            start = k + old.count
            done += 1
        }
        return out + s[start...]
    }

    static func string(_ s: Scalars) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: s)
        return String(view)
    }
}

extension JinjaBuiltins {
    private static func scalars(_ v: JinjaValue) -> PyString.Scalars? {
        if case .string(let s) = v { return Array(s.unicodeScalars) }
        return nil
    }

    private static func int(_ v: JinjaValue?, default d: Int) -> Int {
        if case .int(let i)? = v { return i }
        return d
    }

    // MARK: Methods

    static func stringMethod(_ s: String, _ name: String, _ interpreter: JinjaInterpreter) -> JinjaValue? {
        let u = Array(s.unicodeScalars)
        func method(_ body: @escaping (Args, KwArgs) throws -> JinjaValue) -> JinjaValue {
            .function(JinjaFunction(name: name, call: body))
        }
        func stringArg(_ args: Args, _ k: Int) throws -> PyString.Scalars? {
            guard k < args.count else { return nil }
            if case .none = args[k] { return nil }
            guard let v = scalars(args[k]) else { throw interpreter.error("\(name)() argument must be a string") }
            return v
        }
        switch name {
        case "startswith", "endswith":
            return method { args, _ in
                let candidates: [JinjaValue]
                if case .array(let a)? = args.first { candidates = a } else { candidates = args.prefix(1).map { $0 } }
                for c in candidates {
                    guard let p = scalars(c) else { throw interpreter.error("\(name)() needs a string or tuple of strings") }
                    if name == "startswith" ? u.starts(with: p) : u.reversed().starts(with: p.reversed()) { return .bool(true) }
                }
                return .bool(false)
            }
        case "strip", "lstrip", "rstrip":
            return method { args, _ in
                .string(PyString.string(PyString.strip(u, try stringArg(args, 0), leading: name != "rstrip", trailing: name != "lstrip")))
            }
        case "split", "rsplit":
            return method { args, kwargs in
                let sep = try stringArg(args, 0) ?? kwargs.first(where: { $0.0 == "sep" }).flatMap { scalars($0.1) }
                if let sep, sep.isEmpty { throw interpreter.error("empty separator") }
                let maxSplit = int(args.count > 1 ? args[1] : kwargs.first(where: { $0.0 == "maxsplit" })?.1, default: -1)
                if name == "rsplit" && maxSplit >= 0 {
                    let parts = PyString.split(u.reversed(), sep.map { $0.reversed() }, maxSplit: maxSplit)
                    return .array(parts.reversed().map { .string(PyString.string($0.reversed())) })
                }
                return .array(PyString.split(u, sep, maxSplit: maxSplit).map { .string(PyString.string($0)) })
            }
        case "replace":
            return method { args, _ in
                guard let old = try stringArg(args, 0), let new = try stringArg(args, 1) else {
                    throw interpreter.error("replace() needs two strings")
                }
                return .string(PyString.string(PyString.replace(u, old, new, count: int(args.count > 2 ? args[2] : nil, default: -1))))
            }
        case "find":
            return method { args, _ in
                guard let sub = try stringArg(args, 0) else { throw interpreter.error("find() needs a string") }
                return .int(PyString.find(u, sub) ?? -1)
            }
        case "count":
            return method { args, _ in
                guard let sub = try stringArg(args, 0), !sub.isEmpty else { return .int(u.count + 1) }
                return .int(PyString.split(u, sub, maxSplit: -1).count - 1)
            }
        case "upper": return method { _, _ in .string(s.uppercased()) }
        case "lower": return method { _, _ in .string(s.lowercased()) }
        case "title": return method { _, _ in .string(s.capitalized) }
        case "capitalize": return method { _, _ in .string(s.prefix(1).uppercased() + s.dropFirst().lowercased()) }
        case "isdigit": return method { _, _ in .bool(!u.isEmpty && u.allSatisfy { $0.properties.numericType == .decimal || $0.properties.numericType == .digit }) }
        case "isspace": return method { _, _ in .bool(!u.isEmpty && u.allSatisfy(PythonFormat.isSpace)) }
        case "join":
            return method { args, _ in
                .string(try interpreter.iterate(args.first ?? .undefined).map(\.pythonString).joined(separator: s))
            }
        default: return nil
        }
    }

    static func dictMethod(_ d: [(key: String, value: JinjaValue)], _ name: String, _ interpreter: JinjaInterpreter) -> JinjaValue? {
        func method(_ body: @escaping (Args, KwArgs) throws -> JinjaValue) -> JinjaValue {
            .function(JinjaFunction(name: name, call: body))
        }
        switch name {
        case "items": return method { _, _ in .array(d.map { .array([.string($0.key), $0.value]) }) }
        case "keys": return method { _, _ in .array(d.map { .string($0.key) }) }
        case "values": return method { _, _ in .array(d.map(\.value)) }
        case "get":
            return method { args, _ in
                guard case .string(let key)? = args.first else { return args.count > 1 ? args[1] : .none }
                return d.last(where: { $0.key == key })?.value ?? (args.count > 1 ? args[1] : .none)
            }
        default: return nil
        }
    }

    // MARK: Filters

    static func filter(_ name: String, _ v: JinjaValue, _ args: Args, _ kwargs: KwArgs, _ interpreter: JinjaInterpreter) throws -> JinjaValue {
        func kwarg(_ key: String, _ position: Int) -> JinjaValue? {
            kwargs.last(where: { $0.0 == key })?.1 ?? (position < args.count ? args[position] : nil)
        }
        switch name {
        case "safe", "e", "escape", "forceescape":
            return name == "safe" ? v : .string(escapeHTML(v.pythonString))
        case "string": return .string(v.pythonString)
        case "trim":
            let chars = kwarg("chars", 0).flatMap(scalars)
            return .string(PyString.string(PyString.strip(Array(v.pythonString.unicodeScalars), chars, leading: true, trailing: true)))
        case "length", "count":
            switch v {
            case .string(let s): return .int(s.unicodeScalars.count)
            case .array(let a): return .int(a.count)
            case .dict(let d): return .int(d.count)
            case .namespace(let ns): return .int(ns.values.count)
            case .undefined: return .int(0)
            default: throw interpreter.error("object of type \(v.typeName) has no length")
            }
        case "tojson":
            guard let json = v.json else { throw interpreter.error("tojson: \(v.typeName) is not JSON serializable") }
            let indent: Int?
            if case .int(let i)? = kwarg("indent", 0) { indent = i } else { indent = nil }
            return .string(json.pythonJSON(indent: indent))
        case "items":
            switch v {
            case .dict(let d): return .array(d.map { .array([.string($0.key), $0.value]) })
            case .namespace(let ns): return .array(ns.values.map { .array([.string($0.key), $0.value]) })
            case .undefined, .none: return .array([])
            default: throw interpreter.error("items filter needs a mapping, got \(v.typeName)")
            }
        case "list": return .array(try interpreter.iterate(v))
        case "first": return try interpreter.iterate(v).first ?? .undefined
        case "last": return try interpreter.iterate(v).last ?? .undefined
        case "reverse":
            if case .string(let s) = v { return .string(PyString.string(s.unicodeScalars.reversed())) }
            return .array(try interpreter.iterate(v).reversed())
        case "join":
            var items = try interpreter.iterate(v)
            if case .string(let attribute)? = kwarg("attribute", 1) { items = items.map { $0[attribute] } }
            return .string(items.map(\.pythonString).joined(separator: kwarg("d", 0)?.pythonString ?? ""))
        case "upper": return .string(v.pythonString.uppercased())
        case "lower": return .string(v.pythonString.lowercased())
        case "capitalize":
            let s = v.pythonString
            return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case "title": return .string(v.pythonString.capitalized)
        case "replace":
            guard let old = kwarg("old", 0).flatMap(scalars), let new = kwarg("new", 1).flatMap(scalars) else {
                throw interpreter.error("replace filter needs two strings")
            }
            return .string(PyString.string(PyString.replace(Array(v.pythonString.unicodeScalars), old, new, count: int(kwarg("count", 2), default: -1))))
        case "default", "d":
            let fallback = kwarg("default_value", 0) ?? .string("")
            let boolean = kwarg("boolean", 1)?.isTruthy ?? false
            if case .undefined = v { return fallback }
            return boolean && !v.isTruthy ? fallback : v
        case "int":
            switch v {
            case .int: return v
            case .double(let d): return .int(Int(d))
            case .bool(let b): return .int(b ? 1 : 0)
            case .string(let s): return .int(Int(s.trimmingCharacters(in: .whitespaces)) ?? Double(s).map { Int($0) } ?? int(kwarg("default", 0), default: 0))
            default: return kwarg("default", 0) ?? .int(0)
            }
        case "float":
            if let d = v.asDouble { return .double(d) }
            if case .string(let s) = v, let d = Double(s.trimmingCharacters(in: .whitespaces)) { return .double(d) }
            return kwarg("default", 0) ?? .double(0)
        case "abs":
            switch v {
            case .int(let i): return .int(abs(i))
            case .double(let d): return .double(abs(d))
            default: throw interpreter.error("abs needs a number")
            }
        case "unique":
            var seen: [JinjaValue] = []
            for item in try interpreter.iterate(v) where !seen.contains(where: { $0.equals(item) }) { seen.append(item) }
            return .array(seen)
        case "map":
            let items = try interpreter.iterate(v)
            if case .string(let attribute)? = kwargs.last(where: { $0.0 == "attribute" })?.1 {
                let fallback = kwargs.last(where: { $0.0 == "default" })?.1
                return .array(items.map { item in
                    let value = item[attribute]
                    if case .undefined = value, let fallback { return fallback }
                    return value
                })
            }
            guard case .string(let filterName)? = args.first else { throw interpreter.error("map needs a filter name or attribute=") }
            return .array(try items.map { try filter(filterName, $0, Array(args.dropFirst()), [], interpreter) })
        case "select", "reject", "selectattr", "rejectattr":
            let byAttribute = name.hasSuffix("attr")
            var rest = args
            var attribute: String?
            if byAttribute {
                guard case .string(let a)? = rest.first else { throw interpreter.error("\(name) needs an attribute name") }
                attribute = a
                rest.removeFirst()
            }
            let testName: String?
            if case .string(let t)? = rest.first { testName = t; rest.removeFirst() } else { testName = nil }
            let keep = name.hasPrefix("select")
            return .array(try interpreter.iterate(v).filter { item in
                let subject = attribute.map { item[$0] } ?? item
                let passed = try testName.map { try test($0, subject, rest, interpreter) } ?? subject.isTruthy
                return passed == keep
            })
        case "indent":
            let width = int(kwarg("width", 0), default: 4)
            let first = kwarg("first", 1)?.isTruthy ?? false
            let blank = kwarg("blank", 2)?.isTruthy ?? false
            let pad = String(repeating: " ", count: width)
            let lines = v.pythonString.components(separatedBy: "\n")
            return .string(lines.enumerated().map { k, line in
                (k == 0 && !first) || (line.isEmpty && !blank) ? line : pad + line
            }.joined(separator: "\n"))
        case "wordcount":
            return .int(PyString.split(Array(v.pythonString.unicodeScalars), nil, maxSplit: -1).count)
        case "dictsort":
            guard case .dict(let d) = v else { throw interpreter.error("dictsort needs a mapping") }
            return .array(d.sorted { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) }
                .map { .array([.string($0.key), $0.value]) })
        default:
            throw interpreter.error("unknown filter '\(name)'")
        }
    }

    private static func escapeHTML(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
