import Yams
import QueueGraphCore

/// A graph description as a tree of scalars, mappings and sequences with the
/// location of every node: what both the YAML reader and the one-line
/// `launch` syntax produce, so that one checker serves both.
indirect enum SyntaxNode: Sendable {
    /// One key and its value in a mapping.
    typealias Pair = (key: String, keyLocation: SourceLocation, value: SyntaxNode)

    case scalar(String, SourceLocation)
    case mapping([Pair], SourceLocation)
    case sequence([SyntaxNode], SourceLocation)

    var location: SourceLocation {
        switch self {
        case .scalar(_, let l), .mapping(_, let l), .sequence(_, let l): l
        }
    }

    /// What kind of node it is, for "found a mapping, expected a number".
    var kindName: String {
        switch self {
        case .scalar(let text, _): quoted(text)
        case .mapping: "a mapping"
        case .sequence: "a list"
        }
    }
}

extension SyntaxNode {
    /// How many nodes aliases may add to a file in all: a "billion laughs"
    /// (anchors of lists of aliases of lists…) is refused before it grows.
    static let aliasNodeBudget = 10_000

    /// Reads YAML text; syntax errors come back with their line and column.
    static func parseYAML(_ text: String, file: String) throws(GraphFileErrors) -> SyntaxNode {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw GraphFileErrors([yamlError(error, file: file, text: text)])
        } catch {
            throw GraphFileErrors([GraphFileError(SourceLocation(file: file, line: 1, column: 1), "cannot read YAML: \(error)")])
        }
        guard let node else {
            throw GraphFileErrors([GraphFileError(SourceLocation(file: file, line: 1, column: 1),
                                                  "found an empty file, expected a mapping with 'queues' and 'connections'")])
        }
        var converter = Converter(file: file)
        do {
            return try converter.convert(node, at: converter.location(node)).node
        } catch {
            throw GraphFileErrors([error])
        }
    }

    /// Turns composed YAML into syntax nodes, counting what aliases add.
    /// Composition has already put each anchored node wherever an alias
    /// names it: a node met again at the same place in the text is an alias's
    /// copy, and what it adds is its size.
    private struct Converter {
        struct Place: Hashable { var line: Int, column: Int }
        let file: String
        /// Nodes met once, with their sizes (in nodes) once converted.
        var sizes: [Place: Int] = [:]
        var aliasNodes = 0

        init(file: String) { self.file = file }

        func location(_ node: Node) -> SourceLocation {
            SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
        }

        /// `at` is where the node is used: for an alias's copy, the key or
        /// the list that names it (the copy itself carries the anchor's place).
        mutating func convert(_ node: Node, at use: SourceLocation, counted: Bool = true) throws(GraphFileError) -> (node: SyntaxNode, size: Int) {
            let place = Place(line: node.mark?.line ?? 0, column: node.mark?.column ?? 0)
            var counted = counted
            if counted, node.mark != nil, let size = sizes[place] {
                aliasNodes += size
                if aliasNodes > SyntaxNode.aliasNodeBudget {
                    throw GraphFileError(use, "found aliases that expand the file by more than \(SyntaxNode.aliasNodeBudget) nodes (an alias of line \(place.line) adds \(size)), expected at most \(SyntaxNode.aliasNodeBudget)")
                }
                counted = false   // its nodes are paid for
            }
            let converted: SyntaxNode
            var size = 1
            switch node {
            case .scalar(let scalar):
                converted = .scalar(scalar.string, location(node))
            case .mapping(let mapping):
                var pairs: [Pair] = []
                for (key, value) in mapping {
                    let keyLocation = location(key)
                    let child = try convert(value, at: keyLocation, counted: counted)
                    size += 1 + child.size
                    pairs.append((key.string ?? "", keyLocation, child.node))
                }
                converted = .mapping(pairs, location(node))
            case .sequence(let sequence):
                var items: [SyntaxNode] = []
                for item in sequence {
                    let child = try convert(item, at: location(node), counted: counted)
                    size += child.size
                    items.append(child.node)
                }
                converted = .sequence(items, location(node))
            case .alias:
                converted = .scalar("", location(node))   // aliases are resolved by compose; kept for exhaustiveness
            }
            if counted && node.mark != nil { sizes[place] = size }
            return (converted, size)
        }
    }

    /// Where `key`, first written at `first`, is written again in the same
    /// mapping: a block mapping's line at the same indentation, or the same
    /// flow mapping (`{…}`); nil when the text does not show it plainly.
    static func repeatedKey(_ key: String, after first: SourceLocation, in text: String) -> SourceLocation? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard first.line >= 1, first.line <= lines.count else { return nil }
        let spellings = [key, "\"\(key)\"", "'\(key)'"]
        func keyAt(_ line: String, _ offset: Int) -> Bool {
            let rest = line.dropFirst(offset)
            return spellings.contains { spelling in
                rest.hasPrefix(spelling) && rest.dropFirst(spelling.count).drop(while: { $0 == " " }).first == ":"
            }
        }
        let firstLine = lines[first.line - 1]
        let indent = first.column - 1
        if firstLine.prefix(indent).allSatisfy({ $0 == " " || $0 == "-" }) {
            // A block mapping: it goes on while lines are indented at least as deep.
            for n in first.line..<lines.count {
                let line = lines[n]
                let depth = line.prefix { $0 == " " }.count
                if line.trimmingCharacters(in: .whitespaces).isEmpty || line.dropFirst(depth).hasPrefix("#") { continue }
                if depth < indent { return nil }
                if depth == indent && keyAt(line, indent) { return SourceLocation(file: first.file, line: n + 1, column: indent + 1) }
            }
            return nil
        }
        // A flow mapping on the first key's line: the next `, key:` after it.
        let characters = Array(firstLine)
        var i = indent + key.count
        while i < characters.count {
            if characters[i] == "," || characters[i] == "{" {
                var j = i + 1
                while j < characters.count && characters[j] == " " { j += 1 }
                if keyAt(firstLine, j) { return SourceLocation(file: first.file, line: first.line, column: j + 1) }
            }
            if characters[i] == "}" { return nil }
            i += 1
        }
        return nil
    }

    private static func yamlError(_ error: YamlError, file: String, text: String) -> GraphFileError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let where_ = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return GraphFileError(SourceLocation(file: file, line: mark.line, column: mark.column),
                                  "YAML syntax: \(problem)\(where_)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams points at the first; an editor should jump to the repeat.
            let first = SourceLocation(file: file, line: context.mark.line, column: context.mark.column)
            guard let key = duplicates.first, let repeat_ = repeatedKey(key, after: first, in: text) else {
                return GraphFileError(first, "found the key \(alternatives(duplicates.map(quoted))) twice in one mapping, expected each key once")
            }
            return GraphFileError(repeat_, "found the key \(quoted(key)) again (first at line \(first.line), column \(first.column)), expected each key once in a mapping")
        case .reader(let problem, _, _, _):
            return GraphFileError(SourceLocation(file: file, line: 1, column: 1), "cannot read the file as text: \(problem)")
        default:
            return GraphFileError(SourceLocation(file: file, line: 1, column: 1), "cannot read YAML: \(error)")
        }
    }
}
