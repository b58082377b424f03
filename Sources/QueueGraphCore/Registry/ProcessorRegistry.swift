/// Processor names that graph files may use, with their typed parameters.
/// Start from `builtIn` and `register` the application's own.
///
/// Threading: a value; build it on one thread, then share copies freely.
public struct ProcessorRegistry: Sendable {
    public private(set) var processors: [String: ProcessorSpec] = [:]
    /// An application's queue disciplines and management policies (the
    /// seed's `QueueHandlers`), which graph files name like the built-ins.
    public private(set) var disciplines: [String: CustomDiscipline] = [:]
    public private(set) var managements: [String: CustomManagement] = [:]

    public init() {}

    /// Adds (or replaces) a discipline that graph files name as `discipline: NAME`
    /// (a built-in's name cannot be taken).
    public mutating func register(discipline: CustomDiscipline) {
        precondition(!QueueDiscipline.builtIns.contains { $0.name == discipline.name }, "'\(discipline.name)' is a built-in discipline")
        disciplines[discipline.name] = discipline
    }

    /// Adds (or replaces) a management policy that graph files name as
    /// `management: NAME` (a built-in's name cannot be taken).
    public mutating func register(management: CustomManagement) {
        precondition(!QueueManagement.builtInNames.contains(management.name), "'\(management.name)' is a built-in management policy")
        managements[management.name] = management
    }

    /// Every discipline a graph file may name: the built-ins, then the registered ones, sorted.
    public var disciplineNames: [String] { QueueDiscipline.builtIns.map(\.name) + disciplines.keys.sorted() }
    /// Every management policy a graph file may name.
    public var managementNames: [String] { QueueManagement.builtInNames + managements.keys.sorted() }

    /// Adds (or replaces) a processor.
    public mutating func register(_ spec: ProcessorSpec) { processors[spec.name] = spec }

    /// A registered processor; set it to change (or remove) the entry.
    public subscript(name: String) -> ProcessorSpec? {
        get { processors[name] }
        set { processors[name] = newValue }
    }

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
                ParameterSpec("rate", .number(0...10_000_000), default: .number(0), live: true, "buffers per second; 0 sends as fast as the graph takes them"),
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
            parameters: [ParameterSpec("rate", .number(0.001...10_000_000), default: nil, live: true, "buffers per second")],
            outputs: 0...1, make: { p in RateLimiter(rate: p.number("rate")) }))
        registry.register(ProcessorSpec(
            name: "delay", summary: "holds every buffer for a fixed time, blocking its thread (a reproducible slow consumer)",
            parameters: [ParameterSpec("us", .integer(0...60_000_000), default: nil, live: true, "microseconds per buffer")],
            outputs: 0...1, make: { p in Delay(nanoseconds: UInt64(p.integer("us")) * 1_000) }))
        // What they send follows from their parameters, so files are checked when read.
        for name in ["testsrc", "identity", "tee", "ratelimit", "delay"] { registry[name]?.negotiateByMaking() }
        return registry
    }()
}
