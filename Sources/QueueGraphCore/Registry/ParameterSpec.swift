/// A processor parameter's value as read from a graph file.
public enum ParameterValue: Sendable, Equatable, CustomStringConvertible {
    case integer(Int)
    case number(Double)
    case text(String)
    case flag(Bool)

    public var description: String {
        switch self {
        case .integer(let v): "\(v)"
        case .number(let v): "\(v)"
        case .text(let v): v
        case .flag(let v): "\(v)"
        }
    }

    /// The value as a JSON serializer takes it: a number, a string or a boolean.
    public var json: Any {
        switch self {
        case .integer(let v): v
        case .number(let v): v
        case .text(let v): v
        case .flag(let v): v
        }
    }
}

/// One typed parameter a processor accepts in graph files.
///
/// Threading: a value; any thread.
public struct ParameterSpec: Sendable {
    /// The parameter's type and the values it allows.
    public enum Kind: Sendable {
        case integer(ClosedRange<Int>)
        case number(ClosedRange<Double>)
        case text
        /// A file that must exist; a relative path starts at the graph file's directory.
        case inputFile
        case choice([String])
        case flag
    }

    public var name: String
    public var kind: Kind
    /// Used when the file does not set it; nil makes the parameter required.
    public var defaultValue: ParameterValue?
    public var summary: String
    /// It can change while the graph runs (`QueueGraph.setParameter`): its
    /// processor is `LiveParameters` and takes the new value between buffers.
    public var live: Bool

    public init(_ name: String, _ kind: Kind, default defaultValue: ParameterValue?, live: Bool = false, _ summary: String) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.live = live
        self.summary = summary
    }
}

extension ParameterSpec.Kind {
    /// What the kind expects, for error messages and docs.
    public var expectation: String {
        switch self {
        case .integer(let r): r.upperBound == Int.max ? "an integer ≥ \(r.lowerBound)" : "an integer in \(r.lowerBound)…\(r.upperBound)"
        case .number(let r): "a number in \(r.lowerBound.formatted)…\(r.upperBound.formatted)"
        case .text: "a string"
        case .inputFile: "the path of an existing file (relative to the graph file)"
        case .choice(let values): "one of \(alternatives(values))"
        case .flag: "true or false"
        }
    }

    /// Reads `text` as this kind; nil when it does not fit.
    public func parse(_ text: String) -> ParameterValue? {
        switch self {
        case .integer(let range):
            guard let value = Int(String(text.filter { $0 != "_" })), range.contains(value) else { return nil }
            return .integer(value)
        case .number(let range):
            guard let value = Double(String(text.filter { $0 != "_" })), range.contains(value) else { return nil }
            return .number(value)
        case .text, .inputFile:
            return .text(text)
        case .choice(let values):
            return values.contains(text) ? .text(text) : nil
        case .flag:
            switch text.lowercased() {
            case "true", "yes", "on": return .flag(true)
            case "false", "no", "off": return .flag(false)
            default: return nil
            }
        }
    }
}

extension Double {
    /// 0.5, 10000000 (no trailing ".0").
    public var formatted: String { self == rounded() && abs(self) < 1e15 ? String(Int(self)) : String(self) }
}

/// `a, b or c`.
public func alternatives(_ names: [String]) -> String {
    names.count <= 1 ? names.joined() : names.dropLast().joined(separator: ", ") + " or " + names.last!
}

/// A processor's parameters after checking: every declared parameter has a
/// value of its type (the file's or the default).
///
/// Threading: a value; any thread.
public struct Parameters: Sendable {
    public var values: [String: ParameterValue]

    public init(_ values: [String: ParameterValue]) { self.values = values }

    public func integer(_ name: String) -> Int {
        if case .integer(let v) = values[name] { return v }
        preconditionFailure("parameter '\(name)' is not a declared integer")
    }

    public func number(_ name: String) -> Double {
        switch values[name] {
        case .number(let v): return v
        case .integer(let v): return Double(v)
        default: preconditionFailure("parameter '\(name)' is not a declared number")
        }
    }

    public func text(_ name: String) -> String {
        if case .text(let v) = values[name] { return v }
        preconditionFailure("parameter '\(name)' is not a declared string or choice")
    }

    public func flag(_ name: String) -> Bool {
        if case .flag(let v) = values[name] { return v }
        preconditionFailure("parameter '\(name)' is not a declared flag")
    }
}

/// Appends `text` as a JSON string literal (quotes and escapes), which YAML's
/// double-quoted scalars read too: the control protocol and graph files
/// written back both write strings this way. Any thread.
public func appendJSONQuoted(_ text: String, to out: inout String) {
    out += "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    out += "\""
}
