import Foundation

/// Operators, attribute access, global functions, filters, tests and Python methods of the interpreter.
enum JinjaBuiltins {
    typealias Args = [JinjaValue]
    typealias KwArgs = [(String, JinjaValue)]

    // MARK: Globals

    static func global(_ name: String, _ interpreter: JinjaInterpreter) -> JinjaValue? {
        switch name {
        case "namespace":
            return .function(JinjaFunction(name: name) { args, kwargs in
                var values: [(key: String, value: JinjaValue)] = []
                if case .dict(let d)? = args.first { values = d }
                for (k, v) in kwargs { values.append((k, v)) }
                return .namespace(JinjaNamespace(values))
            })
        case "raise_exception":
            return .function(JinjaFunction(name: name) { args, _ in
                throw TokenizerError.templateRender(args.first?.pythonString ?? "raise_exception called")
            })
        case "range":
            return .function(JinjaFunction(name: name) { args, _ in
                let ints = args.compactMap { v -> Int? in if case .int(let i) = v { return i } else { return nil } }
                guard ints.count == args.count, (1...3).contains(ints.count) else {
                    throw interpreter.error("range() takes 1 to 3 integers")
                }
                let (start, stop, step) = ints.count == 1 ? (0, ints[0], 1) : (ints[0], ints[1], ints.count == 3 ? ints[2] : 1)
                guard step != 0 else { throw interpreter.error("range() step must not be zero") }
                return .array(Swift.stride(from: start, to: stop, by: step).map { .int($0) })
            })
        case "dict":
            return .function(JinjaFunction(name: name) { _, kwargs in .dict(kwargs.map { ($0.0, $0.1) }) })
        case "strftime_now":
            return .function(JinjaFunction(name: name) { args, _ in
                guard case .string(let format)? = args.first else { throw interpreter.error("strftime_now(format) needs a format string") }
                var t = time(nil)
                var parts = tm()
                localtime_r(&t, &parts)
                var buffer = [Int8](repeating: 0, count: 256)
                let n = strftime(&buffer, buffer.count, format, &parts)
                return .string(String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
            })
        default:
            return nil
        }
    }

    // MARK: Access

    static func attribute(_ base: JinjaValue, _ name: String, _ interpreter: JinjaInterpreter) throws -> JinjaValue {
        switch base {
        case .dict(let d):
            if let v = d.last(where: { $0.key == name })?.value { return v }
            return dictMethod(d, name, interpreter) ?? .undefined
        case .namespace: return base[name]
        case .string(let s): return stringMethod(s, name, interpreter) ?? .undefined
        default: return .undefined
        }
    }

    static func item(_ base: JinjaValue, _ index: JinjaValue, _ interpreter: JinjaInterpreter) throws -> JinjaValue {
        switch (base, index) {
        case let (.array(a), .int(i)):
            let k = i < 0 ? a.count + i : i
            return a.indices.contains(k) ? a[k] : .undefined
        case let (.string(s), .int(i)):
            let chars = Array(s.unicodeScalars)
            let k = i < 0 ? chars.count + i : i
            return chars.indices.contains(k) ? .string(String(chars[k])) : .undefined
        case let (_, .string(key)):
            return try attribute(base, key, interpreter)
        default:
            return .undefined
        }
    }

    static func slice(_ base: JinjaValue, _ start: JinjaValue?, _ stop: JinjaValue?, _ step: JinjaValue?,
                      _ interpreter: JinjaInterpreter) throws -> JinjaValue {
        func int(_ v: JinjaValue?) throws -> Int? {
            switch v {
            case nil, .none?, .undefined?: return nil
            case .int(let i)?: return i
            default: throw interpreter.error("slice indices must be integers")
            }
        }
        let stepValue = try int(step) ?? 1
        guard stepValue != 0 else { throw interpreter.error("slice step cannot be zero") }
        func indices(_ count: Int) throws -> [Int] {
            func clamp(_ v: Int?, _ fallback: Int, low: Int, high: Int) -> Int {
                guard var v else { return fallback }
                if v < 0 { v += count }
                return min(max(v, low), high)
            }
            if stepValue > 0 {
                let a = clamp(try int(start), 0, low: 0, high: count), b = clamp(try int(stop), count, low: 0, high: count)
                return Array(Swift.stride(from: a, to: b, by: stepValue))
            }
            let a = clamp(try int(start), count - 1, low: -1, high: count - 1), b = clamp(try int(stop), -1, low: -1, high: count - 1)
            return Array(Swift.stride(from: a, to: b, by: stepValue))
        }
        switch base {
        case .array(let a): return .array(try indices(a.count).map { a[$0] })
        case .string(let s):
            let chars = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            for k in try indices(chars.count) { out.append(chars[k]) }
            return .string(String(out))
        default: throw interpreter.error("cannot slice \(base.typeName)")
        }
    }

    // MARK: Operators

    static func binary(_ op: String, _ a: JinjaValue, _ b: JinjaValue, _ interpreter: JinjaInterpreter) throws -> JinjaValue {
        switch op {
        case "==": return .bool(a.equals(b))
        case "!=": return .bool(!a.equals(b))
        case "~": return .string(a.pythonString + b.pythonString)
        case "in": return .bool(try contains(b, a, interpreter))
        case "<", ">", "<=", ">=":
            let order: Int
            if let x = a.asDouble, let y = b.asDouble {
                order = x < y ? -1 : (x > y ? 1 : 0)
            } else if case .string(let x) = a, case .string(let y) = b {
                let xs = Array(x.unicodeScalars.map(\.value)), ys = Array(y.unicodeScalars.map(\.value))
                order = xs.lexicographicallyPrecedes(ys) ? -1 : (xs == ys ? 0 : 1)
            } else {
                throw interpreter.error("'\(op)' not supported between \(a.typeName) and \(b.typeName)")
            }
            switch op {
            case "<": return .bool(order < 0)
            case ">": return .bool(order > 0)
            case "<=": return .bool(order <= 0)
            default: return .bool(order >= 0)
            }
        default: break
        }
        switch (op, a, b) {
        case let ("+", .string(x), .string(y)): return .string(x + y)
        case let ("+", .array(x), .array(y)): return .array(x + y)
        case let ("*", .string(x), .int(n)), let ("*", .int(n), .string(x)): return .string(String(repeating: x, count: max(n, 0)))
        case let (_, .int(x), .int(y)) where op != "/" && op != "**":
            switch op {
            case "+": return .int(x &+ y)
            case "-": return .int(x &- y)
            case "*": return .int(x &* y)
            case "//", "%":
                guard y != 0 else { throw interpreter.error("integer division by zero") }
                let q = Int((Double(x) / Double(y)).rounded(.down)), r = x - q * y
                return .int(op == "//" ? q : r)
            default: break
            }
        default:
            if let x = a.asDouble, let y = b.asDouble, a.isNumber, b.isNumber {
                switch op {
                case "+": return .double(x + y)
                case "-": return .double(x - y)
                case "*": return .double(x * y)
                case "/":
                    guard y != 0 else { throw interpreter.error("division by zero") }
                    return .double(x / y)
                case "//": return .double((x / y).rounded(.down))
                case "%": return .double(x - (x / y).rounded(.down) * y)
                case "**":
                    if case .int = a, case .int(let e) = b, e >= 0 { return .int(Int(pow(x, y))) }
                    return .double(pow(x, y))
                default: break
                }
            }
        }
        throw interpreter.error("unsupported operand types for \(op): \(a.typeName) and \(b.typeName)")
    }

    static func contains(_ container: JinjaValue, _ item: JinjaValue, _ interpreter: JinjaInterpreter) throws -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let sub) = item else { throw interpreter.error("'in <string>' requires a string") }
            return PyString.find(Array(s.unicodeScalars), Array(sub.unicodeScalars)) != nil
        case .array(let a): return a.contains { $0.equals(item) }
        case .dict(let d):
            guard case .string(let key) = item else { return false }
            return d.contains { $0.key == key }
        case .namespace(let ns):
            guard case .string(let key) = item else { return false }
            return ns.values.contains { $0.key == key }
        case .undefined, .none: return false
        default: throw interpreter.error("argument of type \(container.typeName) is not iterable")
        }
    }

    // MARK: Tests

    static func test(_ name: String, _ v: JinjaValue, _ args: Args, _ interpreter: JinjaInterpreter) throws -> Bool {
        switch name {
        case "defined": if case .undefined = v { return false } else { return true }
        case "undefined": if case .undefined = v { return true } else { return false }
        case "none": if case .none = v { return true } else { return false }
        case "string": if case .string = v { return true } else { return false }
        case "number": if case .int = v { return true } else if case .double = v { return true } else { return false }
        case "integer": if case .int = v { return true } else { return false }
        case "float": if case .double = v { return true } else { return false }
        case "boolean": if case .bool = v { return true } else { return false }
        case "true": if case .bool(true) = v { return true } else { return false }
        case "false": if case .bool(false) = v { return true } else { return false }
        case "mapping":
            switch v { case .dict, .namespace: return true; default: return false }
        case "iterable":
            switch v { case .array, .dict, .string, .namespace: return true; default: return false }
        case "sequence":
            switch v { case .array, .dict, .string: return true; default: return false }
        case "callable": if case .function = v { return true } else { return false }
        case "eq", "equalto", "==", "sameas": return v.equals(args.first ?? .undefined)
        case "ne", "!=": return !v.equals(args.first ?? .undefined)
        case "lt", "<", "gt", ">", "le", "<=", "ge", ">=":
            let op = ["lt": "<", "gt": ">", "le": "<=", "ge": ">="][name] ?? name
            return try binary(op, v, args.first ?? .undefined, interpreter).isTruthy
        case "in": return try contains(args.first ?? .undefined, v, interpreter)
        case "odd", "even", "divisibleby":
            guard case .int(let i) = v else { throw interpreter.error("'\(name)' test needs an integer") }
            if name == "odd" { return i % 2 != 0 }
            if name == "even" { return i % 2 == 0 }
            guard case .int(let d)? = args.first, d != 0 else { throw interpreter.error("divisibleby needs a non-zero integer") }
            return i % d == 0
        case "lower", "upper":
            guard case .string(let s) = v else { return false }
            return name == "lower" ? s == s.lowercased() : s == s.uppercased()
        default:
            throw interpreter.error("unknown test '\(name)'")
        }
    }
}
