/// Where something was written: a graph file (or `<launch>` for a one-line
/// pipeline), 1-based line and column.
public struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// One problem in a graph file: where, and what was found against what was expected.
public struct GraphFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String

    public init(_ location: SourceLocation, _ message: String) {
        self.location = location
        self.message = message
    }

    /// `file:line:column: error: message`, the form compilers use (editors jump to it).
    public var description: String { "\(location): error: \(message)" }
}

/// Every problem found in a graph file, in file order.
///
/// Threading: a value; any thread.
public struct GraphFileErrors: Error, Sendable, Equatable, CustomStringConvertible {
    public var errors: [GraphFileError]

    public init(_ errors: [GraphFileError]) {
        self.errors = errors.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) }
    }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// Quotes a found value for a message: `'tail-drop'`.
func quoted(_ text: String) -> String { "'\(text)'" }

/// ` (did you mean 'x'?)` when `word` looks like a typo of a candidate, else "".
func didYouMean(_ word: String, _ candidates: [String]) -> String {
    suggestion(for: word, in: candidates).map { " (did you mean \(quoted($0))?)" } ?? ""
}

/// The closest of `candidates` to `word` when it is a likely typo.
func suggestion(for word: String, in candidates: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in 1...max(b.count, 1) where !b.isEmpty {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                (previous, row[j]) = (row[j], min(row[j] + 1, row[j - 1] + 1, previous + cost))
            }
        }
        return row[b.count]
    }
    let scored = candidates.map { ($0, distance(Array(word.lowercased()), Array($0.lowercased()))) }
    guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(1, word.count / 3) else { return nil }
    return best.0
}
