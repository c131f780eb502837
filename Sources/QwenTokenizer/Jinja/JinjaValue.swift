/// A value inside the template interpreter, with Python's semantics (truthiness, equality, `str()`).
indirect enum JinjaValue {
    case undefined
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JinjaValue])
    case dict([(key: String, value: JinjaValue)])
    case namespace(JinjaNamespace)
    case function(JinjaFunction)

    init(_ json: JSONValue) {
        switch json {
        case .null: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let a): self = .array(a.map(JinjaValue.init))
        case .object(let o): self = .dict(o.map { ($0.key, JinjaValue($0.value)) })
        }
    }

    var json: JSONValue? {
        switch self {
        case .undefined, .none: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s): return .string(s)
        case .array(let a):
            var items: [JSONValue] = []
            for v in a { guard let j = v.json else { return nil }; items.append(j) }
            return .array(items)
        case .dict(let d):
            var members: [(key: String, value: JSONValue)] = []
            for (k, v) in d { guard let j = v.json else { return nil }; members.append((k, j)) }
            return .object(members)
        case .namespace(let ns): return JinjaValue.dict(ns.values).json
        case .function: return nil
        }
    }

    var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .dict(let d): return !d.isEmpty
        case .namespace, .function: return true
        }
    }

    var isNumber: Bool {
        switch self {
        case .int, .double, .bool: return true
        default: return false
        }
    }

    var asDouble: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    var typeName: String {
        switch self {
        case .undefined: return "undefined"
        case .none: return "none"
        case .bool: return "boolean"
        case .int: return "integer"
        case .double: return "float"
        case .string: return "string"
        case .array: return "list"
        case .dict: return "dict"
        case .namespace: return "namespace"
        case .function: return "function"
        }
    }

    subscript(key: String) -> JinjaValue {
        switch self {
        case .dict(let d): return d.last(where: { $0.key == key })?.value ?? .undefined
        case .namespace(let ns): return ns.values.last(where: { $0.key == key })?.value ?? .undefined
        default: return .undefined
        }
    }

    /// Python `==`.
    func equals(_ other: JinjaValue) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.string(a), .string(b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case let (.array(a), .array(b)): return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case let (.dict(a), .dict(b)):
            return a.count == b.count && a.allSatisfy { pair in other[pair.key].equals(pair.value) }
        case let (.namespace(a), .namespace(b)): return a === b
        default:
            if let x = asDouble, let y = other.asDouble, isNumber, other.isNumber { return x == y }
            return false
        }
    }

    /// Python `str()`.
    var pythonString: String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return PythonFormat.float(d)
        case .string(let s): return s
        case .array, .dict, .namespace, .function: return pythonRepr
        }
    }

    /// Python `repr()`.
    var pythonRepr: String {
        switch self {
        case .string(let s): return PythonFormat.repr(s)
        case .array(let a): return "[" + a.map(\.pythonRepr).joined(separator: ", ") + "]"
        case .dict(let d): return "{" + d.map { PythonFormat.repr($0.key) + ": " + $0.value.pythonRepr }.joined(separator: ", ") + "}"
        case .namespace(let ns): return "<Namespace " + JinjaValue.dict(ns.values).pythonRepr + ">"
        case .function(let f): return "<function \(f.name)>"
        default: return pythonString
        }
    }
}

/// `namespace(...)`: the one mutable object templates have (`{% set ns.x = ... %}` escapes loop scopes).
final class JinjaNamespace {
    var values: [(key: String, value: JinjaValue)]
    init(_ values: [(key: String, value: JinjaValue)]) { self.values = values }

    func set(_ key: String, _ value: JinjaValue) {
        if let i = values.firstIndex(where: { $0.key == key }) { values[i].value = value } else { values.append((key, value)) }
    }
}

/// A callable: a macro, a global function or a bound method.
struct JinjaFunction {
    let name: String
    let call: (_ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue
}

extension PythonFormat {
    static func repr(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(c) == quote {
                    out += "\\" + String(quote)
                } else if c.value < 0x20 || c.value == 0x7F {
                    let hex = String(c.value, radix: 16)
                    out += "\\x" + (hex.count < 2 ? "0" : "") + hex
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        out.append(quote)
        return out
    }

    /// Python's `str.isspace()` characters: what `strip()` and `split()` remove by default.
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }
}
