
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

/// A processor that graph files can name: its parameters, how many out pads
/// it drives, and how to make one.
///
/// Threading: a value; `make` is called once per running graph, before it starts.
public struct ProcessorSpec: Sendable {
    public var name: String
    public var summary: String
    public var parameters: [ParameterSpec]
    /// How many out pads it can drive (0 for a sink).
    public var outputs: ClosedRange<Int>
    /// It produces buffers (a `BufferSource`) and takes no input.
    public var isSource: Bool
    /// The payload bytes of each buffer it acquires, from its parameters:
    /// its pool's buffer size by default, and the least a pool may give.
    public var payloadBytes: (@Sendable (Parameters) -> Int)?
    /// Makes the creator of its `provider` queue (name, buffer count, and
    /// whether its memory must be shared with child processes because the
    /// graph has `child` queues) instead of a `BufferPool` (the render
    /// dispatcher's `FrameCreator`).
    public var makeCreator: (@Sendable (_ name: String, _ count: Int, _ sharedWithChildren: Bool) -> any BufferCreator)?
    public var make: @Sendable (Parameters) -> any BufferProcessor
    /// The split modes it can do as a compound queue (`servers` ≥ 2); empty: none.
    public var splitModes: Set<SplitMode> = []
    /// Makes its compound processor for a queue with `servers` ≥ 2 (the
    /// queue's config gives the servers and the load balancer).
    public var makeCompound: (@Sendable (Parameters, QueueConfig) -> any CompoundProcessor)?
    /// Where its queue must sit; a graph file that puts it elsewhere is refused at the queue's `processor` line.
    public var placement: Placement = .anywhere
    /// The buffers it can handle (`.any` unless it needs frames, say).
    public var takes: BufferKinds = .any
    /// The buffers it sends on; nil: what it takes (a pass-through such as
    /// `identity` or `tee`), or, for a source, buffers of any kind.
    public var makes: BufferKinds?

    /// Where a processor's queue may sit in the graph.
    public enum Placement: Sendable, Equatable {
        case anywhere
        /// On a queue that begins a thread (`threading: thread`): the processor owns that thread (the GL owner).
        case beginsThread
        /// On a `threading: none` queue that runs on the thread begun by a queue with this processor.
        case onThreadOf(String)
    }

    public init(name: String, summary: String, parameters: [ParameterSpec] = [], outputs: ClosedRange<Int>,
                isSource: Bool = false, takes: BufferKinds = .any, makes: BufferKinds? = nil, payloadBytes: (@Sendable (Parameters) -> Int)? = nil,
                makeCreator: (@Sendable (_ name: String, _ count: Int, _ sharedWithChildren: Bool) -> any BufferCreator)? = nil,
                make: @escaping @Sendable (Parameters) -> any BufferProcessor) {
        self.name = name
        self.summary = summary
        self.parameters = parameters
        self.outputs = outputs
        self.isSource = isSource
        self.takes = takes
        self.makes = makes
        self.payloadBytes = payloadBytes
        self.makeCreator = makeCreator
        self.make = make
    }
}

/// What kinds of buffer a processor takes or makes: plain bytes (`testsrc`)
/// or video frames with a size and pixels (`render` and the render nodes).
/// A link is refused when nothing its upstream can make is taken downstream.
public struct BufferKinds: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let bytes = BufferKinds(rawValue: 1)
    public static let frames = BufferKinds(rawValue: 2)
    public static let any: BufferKinds = [.bytes, .frames]

    public var description: String {
        self == .any ? "any buffers" : [(BufferKinds.bytes, "bytes"), (.frames, "frames")].filter { contains($0.0) }.map(\.1).joined(separator: " or ")
    }
}

/// Processor names that graph files may use, with their typed parameters.
/// Start from `builtIn` and `register` the application's own.
///
/// Threading: a value; build it on one thread, then share copies freely.
public struct ProcessorRegistry: Sendable {
    public private(set) var processors: [String: ProcessorSpec] = [:]

    public init() {}

    /// Adds (or replaces) a processor.
    public mutating func register(_ spec: ProcessorSpec) { processors[spec.name] = spec }

    public subscript(name: String) -> ProcessorSpec? { processors[name] }

    /// The names, sorted.
    public var names: [String] { processors.keys.sorted() }

    /// The core's processors: `testsrc`, `identity`, `tee`, `nullsink`,
    /// `filesink`, `ratelimit` and `delay`. The render and GL modules add
    /// theirs (`registerRender()`, `registerGL()`); an application composes
    /// the registry it needs.
    public static let builtIn: ProcessorRegistry = {
        var registry = ProcessorRegistry()
        registry.register(ProcessorSpec(
            name: "testsrc", summary: "makes test buffers: a pattern, a size, a rate and a count",
            parameters: [
                ParameterSpec("pattern", .choice(TestSource.Pattern.allCases.map(\.rawValue)), default: .text("counter"),
                              "what the payload holds"),
                ParameterSpec("size", .integer(0...(64 << 20)), default: .integer(1024), "payload bytes per buffer"),
                ParameterSpec("rate", .number(0...10_000_000), default: .number(0), "buffers per second; 0 sends as fast as the graph takes them"),
                ParameterSpec("count", .integer(0...Int.max), default: .integer(0), "buffers to send; 0 sends until stopped"),
                ParameterSpec("priorities", .integer(1...1_000_000), default: .integer(1), "buffer n gets priority n mod priorities"),
                ParameterSpec("on-nak", .choice(["ignore", "degrade"]), default: .text("ignore"),
                              "what a nak from downstream does: nothing, or lower the rate by 10 %"),
            ],
            outputs: 1...1, isSource: true, makes: .bytes, payloadBytes: { $0.integer("size") },
            make: { p in
                TestSource(count: p.integer("count"), size: p.integer("size"), pattern: TestSource.Pattern(rawValue: p.text("pattern"))!,
                           rate: p.number("rate"), priorities: p.integer("priorities"), degradeOnNak: p.text("on-nak") == "degrade")
            }))
        registry.register(ProcessorSpec(name: "identity", summary: "passes every buffer on unchanged", outputs: 1...1,
                                        make: { _ in Forwarder() }))
        registry.register(ProcessorSpec(name: "tee", summary: "sends every buffer to all of its pads (shared, read-only)",
                                        outputs: 1...64, make: { _ in Tee() }))
        registry.register(ProcessorSpec(name: "nullsink", summary: "counts and releases every buffer", outputs: 0...0,
                                        make: { _ in CountingSink() }))
        registry.register(ProcessorSpec(
            name: "filesink", summary: "writes every buffer's bytes to a file",
            parameters: [
                ParameterSpec("path", .text, default: nil, "the file to write"),
                ParameterSpec("append", .flag, default: .flag(false), "append instead of truncating"),
            ],
            outputs: 0...0, make: { p in FileSink(path: p.text("path"), append: p.flag("append")) }))
        registry.register(ProcessorSpec(
            name: "ratelimit", summary: "passes at most `rate` buffers per second, blocking its thread (a reproducible bottleneck)",
            parameters: [ParameterSpec("rate", .number(0.001...10_000_000), default: nil, "buffers per second")],
            outputs: 0...1, make: { p in RateLimiter(rate: p.number("rate")) }))
        registry.register(ProcessorSpec(
            name: "delay", summary: "holds every buffer for a fixed time, blocking its thread (a reproducible slow consumer)",
            parameters: [ParameterSpec("us", .integer(0...60_000_000), default: nil, "microseconds per buffer")],
            outputs: 0...1, make: { p in Delay(nanoseconds: UInt64(p.integer("us")) * 1_000) }))
        return registry
    }()
}
