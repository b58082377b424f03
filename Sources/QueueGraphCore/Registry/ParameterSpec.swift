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

    public init(_ name: String, _ kind: Kind, default defaultValue: ParameterValue?, _ summary: String) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.summary = summary
    }
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
