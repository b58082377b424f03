import Yams

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
    /// Reads YAML text; syntax errors come back with their line and column.
    static func parseYAML(_ text: String, file: String) throws(GraphFileErrors) -> SyntaxNode {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw GraphFileErrors([yamlError(error, file: file)])
        } catch {
            throw GraphFileErrors([GraphFileError(SourceLocation(file: file, line: 1, column: 1), "cannot read YAML: \(error)")])
        }
        guard let node else {
            throw GraphFileErrors([GraphFileError(SourceLocation(file: file, line: 1, column: 1),
                                                  "found an empty file, expected a mapping with 'queues' and 'connections'")])
        }
        return convert(node, file: file)
    }

    private static func convert(_ node: Node, file: String) -> SyntaxNode {
        let location = SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
        switch node {
        case .scalar(let scalar):
            return .scalar(scalar.string, location)
        case .mapping(let mapping):
            return .mapping(mapping.map { key, value in
                let keyLocation = SourceLocation(file: file, line: key.mark?.line ?? 1, column: key.mark?.column ?? 1)
                return (key.string ?? "", keyLocation, convert(value, file: file))
            }, location)
        case .sequence(let sequence):
            return .sequence(sequence.map { convert($0, file: file) }, location)
        case .alias:
            return .scalar("", location)   // aliases are resolved by compose; kept for exhaustiveness
        }
    }

    private static func yamlError(_ error: YamlError, file: String) -> GraphFileError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let where_ = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return GraphFileError(SourceLocation(file: file, line: mark.line, column: mark.column),
                                  "YAML syntax: \(problem)\(where_)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return GraphFileError(SourceLocation(file: file, line: context.mark.line, column: context.mark.column),
                                  "found the key \(alternatives(duplicates.map(quoted))) twice in one mapping, expected each key once")
        case .reader(let problem, _, _, _):
            return GraphFileError(SourceLocation(file: file, line: 1, column: 1), "cannot read the file as text: \(problem)")
        default:
            return GraphFileError(SourceLocation(file: file, line: 1, column: 1), "cannot read YAML: \(error)")
        }
    }
}
