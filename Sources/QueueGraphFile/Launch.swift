import QueueGraphCore

extension GraphFile {
    /// Checks a one-line pipeline in the style of `gst-launch-1.0`:
    ///
    ///     testsrc count=1000 rate=500 ! queue size=4 management=headdrop ! nullsink
    ///
    /// Elements are processors from the registry, separated by `!`, each with
    /// `key=value` properties: its processor's parameters, plus `name`,
    /// `pool-count` and `pool-buffer-size`. Queue fields (`size`,
    /// `management`, …) go on a `queue` element only, as GStreamer puts queue
    /// properties on its `queue`: it sets the queue of the element after it
    /// and makes it a thread boundary (`threading=thread` unless given).
    /// `name=t` names an element; a chain may start from `t.` (its next pad)
    /// or end in `t.` (into it), for fan-out and fan-in.
    ///
    /// Errors are reported as `<launch>:1:COLUMN`.
    public init(launch line: String, registry: ProcessorRegistry = .builtIn) throws(GraphFileErrors) {
        let root = try LaunchParser(line: line, registry: registry).parse()
        var checker = GraphChecker(file: LaunchParser.file, registry: registry)
        self = try checker.check(root)
    }
}

/// Turns a launch line into the same syntax tree a graph file gives.
struct LaunchParser {
    static let file = "<launch>"
    let line: String
    let registry: ProcessorRegistry

    private struct Token {
        var text: String
        var column: Int
    }

    /// What a `queue` element may set: the queue fields of the element after it.
    static let queueProperties = GraphChecker.queueKeys.filter { !["processor", "parameters", "pool"].contains($0) }

    private func location(_ column: Int) -> SourceLocation { SourceLocation(file: Self.file, line: 1, column: column) }

    /// Splits on spaces and `!`; double quotes keep spaces inside a value.
    private func tokens() throws(GraphFileErrors) -> [Token] {
        var tokens: [Token] = []
        var current = ""
        var start = 0
        var quoted = false
        for (offset, character) in line.enumerated() {
            let column = offset + 1
            if character == "\"" {
                quoted.toggle()
                if current.isEmpty { start = column }
                continue
            }
            if !quoted && (character.isWhitespace || character == "!") {
                if !current.isEmpty { tokens.append(Token(text: current, column: start)) }
                current = ""
                if character == "!" { tokens.append(Token(text: "!", column: column)) }
                continue
            }
            if current.isEmpty { start = column }
            current.append(character)
        }
        if quoted { throw GraphFileErrors([GraphFileError(location(line.count + 1), "found an unterminated '\"', expected a closing quote")]) }
        if !current.isEmpty { tokens.append(Token(text: current, column: start)) }
        return tokens
    }

    func parse() throws(GraphFileErrors) -> SyntaxNode {
        let tokens = try tokens()
        guard !tokens.isEmpty else {
            throw GraphFileErrors([GraphFileError(location(1), "found an empty pipeline, expected elements like 'testsrc ! nullsink'")])
        }
        // Split into elements (runs of tokens between `!`) and chains.
        var errors: [GraphFileError] = []
        var queues: [SyntaxNode] = []
        var connections: [SyntaxNode] = []
        var names: [String] = []
        var nextPad: [String: Int] = [:]
        var previous: String?          // the element the next one connects from
        var pendingQueue: [SyntaxNode.Pair]?   // from a `queue` element
        var expectElement = true

        func connect(_ from: String, _ to: String, at column: Int) {
            let pad = nextPad[from, default: 0]
            nextPad[from] = pad + 1
            connections.append(.scalar("\(from):\(pad) -> \(to)", location(column)))
        }

        var i = 0
        while i < tokens.count {
            let token = tokens[i]
            if token.text == "!" {
                if expectElement { errors.append(GraphFileError(location(token.column), "found '!', expected an element before it")) }
                expectElement = true
                i += 1
                continue
            }
            if !expectElement {
                // A new chain starts (the previous one ended without '!').
                previous = nil
            }
            expectElement = false
            var properties: [Token] = []
            var j = i + 1
            while j < tokens.count, tokens[j].text != "!", tokens[j].text.contains("=") { properties.append(tokens[j]); j += 1 }

            if token.text.hasSuffix("."), properties.isEmpty {   // a reference: t.
                let name = String(token.text.dropLast())
                if let from = previous {
                    connect(from, name, at: token.column)
                    previous = nil
                } else {
                    previous = name
                }
                i = j
                continue
            }
            var queueFields = pendingQueue ?? []
            var parameters: [SyntaxNode.Pair] = []
            var pool: [SyntaxNode.Pair] = []
            let isQueue = token.text == "queue"
            let spec = registry[token.text]
            for property in properties {
                let parts = property.text.split(separator: "=", maxSplits: 1).map(String.init)
                let key = parts[0]
                let value = SyntaxNode.scalar(parts.count > 1 ? parts[1] : "", location(property.column + key.count + 1))
                let keyLocation = location(property.column)
                if key == "pool-count" || key == "pool-buffer-size" {
                    pool.append((String(key.dropFirst("pool-".count)), keyLocation, value))
                } else if isQueue ? Self.queueProperties.contains(key) : key == "name" {
                    queueFields.removeAll { $0.key == key }
                    queueFields.append((key, keyLocation, value))
                } else if isQueue {
                    errors.append(GraphFileError(keyLocation, "found the property '\(key)' on a queue, expected queue fields: \(alternatives(Self.queueProperties))"))
                } else if let spec, Self.queueProperties.contains(key), !spec.parameters.contains(where: { $0.name == key }) {
                    errors.append(GraphFileError(keyLocation, "found the queue field '\(key)' on \(spec.name), expected it on a 'queue' element before it ('queue \(key)=… ! \(spec.name)'), or one of \(spec.name)'s parameters"))
                } else {
                    parameters.append((key, keyLocation, value))
                }
            }
            let here = location(token.column)
            if isQueue {
                if !queueFields.contains(where: { $0.key == "threading" }) {
                    queueFields.append(("threading", here, .scalar("thread", here)))
                }
                // A queue is not an element of its own: the element after the next '!' gets its fields.
                pendingQueue = queueFields
                i = j
                if j < tokens.count, tokens[j].text == "!" { i = j + 1; expectElement = true }
                continue
            }
            pendingQueue = nil
            let name: String
            if let given = queueFields.first(where: { $0.key == "name" }), case .scalar(let text, _) = given.value {
                name = text
            } else {
                var (unique, n) = (token.text, 2)
                while names.contains(unique) { (unique, n) = ("\(token.text)-\(n)", n + 1) }
                name = unique
                queueFields.append(("name", here, .scalar(name, here)))
            }
            names.append(name)
            var entries = queueFields
            entries.append(("processor", here, .scalar(token.text, here)))
            if !parameters.isEmpty { entries.append(("parameters", here, .mapping(parameters, here))) }
            if !pool.isEmpty { entries.append(("pool", here, .mapping(pool, here))) }
            queues.append(.mapping(entries, here))
            if let from = previous { connect(from, name, at: token.column) }
            previous = name
            i = j
        }
        if expectElement, let last = tokens.last {
            errors.append(GraphFileError(location(last.column), "found '!' at the end, expected an element after it"))
        }
        if pendingQueue != nil {
            errors.append(GraphFileError(location(tokens.last!.column), "found a 'queue' with no element after it, expected '! element'"))
        }
        if !errors.isEmpty { throw GraphFileErrors(errors) }
        let here = location(1)
        return .mapping([("queues", here, .sequence(queues, here)), ("connections", here, .sequence(connections, here))], here)
    }
}

extension GraphFile {
    /// The queues of a segment to splice into a running graph
    /// (`QueueGraph.replaceSegment`), written as a launch line's chain:
    ///
    ///     gaussianblur sigma=2 name=soft ! queue size=4 ! colormatrix preset=sepia
    ///
    /// checked as any launch line (the same messages, the columns of
    /// `line`), with the segment taking any buffers. Its queues run on the
    /// thread they join: their threading is `none` whatever a `queue`
    /// element says.
    public static func segment(launch line: String, registry: ProcessorRegistry) throws(GraphFileErrors) -> [QueueConfig] {
        let (head, tail) = ("identity name=qg-segment-in ! ", " ! nullsink name=qg-segment-out")
        let file: GraphFile
        do {
            file = try GraphFile(launch: head + line + tail, registry: registry)
        } catch {
            throw GraphFileErrors(error.errors.map { e in
                var e = e
                e.location.column = max(1, min(e.location.column - head.count, line.count + 1))
                return e
            })
        }
        return file.config.queues.dropFirst().dropLast().map { queue in
            var queue = queue
            queue.threading = .none
            return queue
        }
    }
}
