/// A parsed Jinja template, the subset chat templates use: text and `{{ }}` output, `if`/`elif`/`else`,
/// `for` (with `loop.*`, `else`, filters, tuple targets, `break`/`continue`), `set` (plain, `ns.attr`,
/// tuples, blocks), `macro`, `namespace()`, `raise_exception()`, Python string/dict methods and the
/// common filters and tests. Semantics follow Jinja as transformers configures it for chat templates.
public struct JinjaTemplate: @unchecked Sendable {  // the parsed tree is immutable
    private let nodes: [JinjaNode]

    public init(_ source: String) throws {
        nodes = try JinjaParser.parse(source)
    }

    /// Renders with `context` (JSON values become Jinja values; keys keep their order).
    public func render(_ context: [String: JSONValue]) throws -> String {
        let interpreter = JinjaInterpreter(context: context.mapValues(JinjaValue.init))
        var out = ""
        _ = try interpreter.execute(nodes, into: &out)
        return out
    }
}

final class JinjaFrame {
    var vars: [String: JinjaValue]
    init(_ vars: [String: JinjaValue] = [:]) { self.vars = vars }
}

final class JinjaInterpreter {
    enum Flow { case normal, breakLoop, continueLoop }

    let root: JinjaFrame
    var frames: [JinjaFrame]

    init(context: [String: JinjaValue]) {
        root = JinjaFrame(context)
        frames = [root]
    }

    func error(_ message: String) -> TokenizerError { .templateRender(message) }

    func lookup(_ name: String) -> JinjaValue {
        for frame in frames.reversed() {
            if let v = frame.vars[name] { return v }
        }
        return JinjaBuiltins.global(name, self) ?? .undefined
    }

    func execute(_ nodes: [JinjaNode], into out: inout String) throws -> Flow {
        for node in nodes {
            switch node {
            case .text(let t):
                out += t
            case .output(let e):
                out += try evaluate(e).pythonString
            case let .ifBlock(branches, otherwise):
                var taken = false
                for (condition, body) in branches where try evaluate(condition).isTruthy {
                    taken = true
                    let flow = try execute(body, into: &out)
                    if flow != .normal { return flow }
                    break
                }
                if !taken {
                    let flow = try execute(otherwise, into: &out)
                    if flow != .normal { return flow }
                }
            case let .forLoop(targets, iterable, filter, body, otherwise):
                try runLoop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise, into: &out)
            case let .set(target, e):
                try assign(target, try evaluate(e))
            case let .setBlock(name, body):
                var captured = ""
                _ = try execute(body, into: &captured)
                frames.last!.vars[name] = .string(captured)
            case let .macro(name, parameters, body):
                frames.last!.vars[name] = .function(makeMacro(name: name, parameters: parameters, body: body))
            case .expressionStatement(let e):
                _ = try evaluate(e)
            case .loopBreak:
                return .breakLoop
            case .loopContinue:
                return .continueLoop
            }
        }
        return .normal
    }

    private func assign(_ target: JinjaNode.Target, _ value: JinjaValue) throws {
        switch target {
        case .name(let n):
            frames.last!.vars[n] = value
        case let .attribute(object, attribute):
            guard case .namespace(let ns) = lookup(object) else {
                throw error("cannot set attribute '\(attribute)' on '\(object)': only namespace() objects can be assigned to")
            }
            ns.set(attribute, value)
        case .names(let names):
            let items = try iterate(value)
            guard items.count == names.count else {
                throw error("cannot unpack \(items.count) values into \(names.count) names")
            }
            for (n, v) in zip(names, items) { frames.last!.vars[n] = v }
        }
    }

    private func makeMacro(name: String, parameters: [(String, JinjaExpr?)], body: [JinjaNode]) -> JinjaFunction {
        JinjaFunction(name: name) { [unowned self] args, kwargs in
            let frame = JinjaFrame()
            guard args.count <= parameters.count else {
                throw self.error("macro '\(name)' takes \(parameters.count) arguments, got \(args.count)")
            }
            let saved = self.frames
            self.frames = [self.root, frame]
            defer { self.frames = saved }
            for (k, (parameter, defaultValue)) in parameters.enumerated() {
                if k < args.count {
                    frame.vars[parameter] = args[k]
                } else if let v = kwargs.last(where: { $0.0 == parameter })?.1 {
                    frame.vars[parameter] = v
                } else {
                    frame.vars[parameter] = try defaultValue.map { try self.evaluate($0) } ?? .undefined
                }
            }
            var out = ""
            _ = try self.execute(body, into: &out)
            return .string(out)
        }
    }

    private func runLoop(targets: [String], iterable: JinjaExpr, filter: JinjaExpr?, body: [JinjaNode],
                         otherwise: [JinjaNode], into out: inout String) throws {
        let frame = JinjaFrame()
        frames.append(frame)
        defer { frames.removeLast() }
        func bind(_ item: JinjaValue) throws {
            if targets.count == 1 {
                frame.vars[targets[0]] = item
            } else {
                let parts = try iterate(item)
                guard parts.count == targets.count else {
                    throw error("cannot unpack \(parts.count) values into \(targets.count) loop variables")
                }
                for (t, v) in zip(targets, parts) { frame.vars[t] = v }
            }
        }
        var items = try iterate(try evaluate(iterable))
        if let filter {
            items = try items.filter { item in
                try bind(item)
                return try evaluate(filter).isTruthy
            }
        }
        if items.isEmpty {
            _ = try execute(otherwise, into: &out)
            return
        }
        let outer = lookup("loop")
        for (k, item) in items.enumerated() {
            try bind(item)
            var loop: [(key: String, value: JinjaValue)] = [
                ("index", .int(k + 1)), ("index0", .int(k)), ("first", .bool(k == 0)), ("last", .bool(k == items.count - 1)),
                ("length", .int(items.count)), ("revindex", .int(items.count - k)), ("revindex0", .int(items.count - k - 1)),
            ]
            if k > 0 { loop.append(("previtem", items[k - 1])) }
            if k + 1 < items.count { loop.append(("nextitem", items[k + 1])) }
            if case .dict = outer { loop.append(("parent", outer)) }
            frame.vars["loop"] = .dict(loop)
            let flow = try execute(body, into: &out)
            if flow == .breakLoop { break }
        }
    }

    /// The items a `for` loop visits: list elements, dict keys, string characters.
    func iterate(_ v: JinjaValue) throws -> [JinjaValue] {
        switch v {
        case .array(let a): return a
        case .dict(let d): return d.map { .string($0.key) }
        case .namespace(let ns): return ns.values.map { .string($0.key) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined, .none: return []
        default: throw error("\(v.typeName) is not iterable")
        }
    }

    func evaluate(_ e: JinjaExpr) throws -> JinjaValue {
        switch e {
        case .literal(let v): return v
        case .name(let n): return lookup(n)
        case .list(let items), .tuple(let items): return .array(try items.map(evaluate))
        case .dict(let pairs):
            return .dict(try pairs.map { (try evaluate($0.0).pythonString, try evaluate($0.1)) })
        case let .attribute(base, name):
            return try JinjaBuiltins.attribute(try evaluate(base), name, self)
        case let .item(base, index):
            return try JinjaBuiltins.item(try evaluate(base), try evaluate(index), self)
        case let .slice(base, start, stop, step):
            return try JinjaBuiltins.slice(try evaluate(base), try start.map(evaluate), try stop.map(evaluate), try step.map(evaluate), self)
        case let .call(callee, args, kwargs):
            let f = try evaluate(callee)
            guard case .function(let function) = f else {
                throw error("\(describe(callee)) is not callable (it is \(f.typeName))")
            }
            return try function.call(try args.map(evaluate), try kwargs.map { ($0.0, try evaluate($0.1)) })
        case let .filter(base, name, args, kwargs):
            return try JinjaBuiltins.filter(name, try evaluate(base), try args.map(evaluate), try kwargs.map { ($0.0, try evaluate($0.1)) }, self)
        case let .test(base, name, args, negated):
            let result = try JinjaBuiltins.test(name, try evaluate(base), try args.map(evaluate), self)
            return .bool(result != negated)
        case .not(let inner): return .bool(!(try evaluate(inner).isTruthy))
        case .negate(let inner):
            switch try evaluate(inner) {
            case .int(let i): return .int(-i)
            case .double(let d): return .double(-d)
            case let v: throw error("cannot negate \(v.typeName)")
            }
        case let .and(a, b):
            let left = try evaluate(a)
            return left.isTruthy ? try evaluate(b) : left
        case let .or(a, b):
            let left = try evaluate(a)
            return left.isTruthy ? left : try evaluate(b)
        case let .conditional(value, condition, otherwise):
            if try evaluate(condition).isTruthy { return try evaluate(value) }
            return try otherwise.map(evaluate) ?? .undefined
        case let .binary(op, a, b):
            return try JinjaBuiltins.binary(op, try evaluate(a), try evaluate(b), self)
        }
    }

    private func describe(_ e: JinjaExpr) -> String {
        switch e {
        case .name(let n): return "'\(n)'"
        case .attribute(_, let n): return "'\(n)'"
        default: return "value"
        }
    }
}
