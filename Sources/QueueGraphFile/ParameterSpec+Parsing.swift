import QueueGraphCore

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
    func parse(_ text: String) -> ParameterValue? {
        switch self {
        case .integer(let range):
            guard let value = Int(text.replacingOccurrences(of: "_", with: "")), range.contains(value) else { return nil }
            return .integer(value)
        case .number(let range):
            guard let value = Double(text.replacingOccurrences(of: "_", with: "")), range.contains(value) else { return nil }
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
    var formatted: String { self == rounded() && abs(self) < 1e15 ? String(Int(self)) : String(self) }
}
