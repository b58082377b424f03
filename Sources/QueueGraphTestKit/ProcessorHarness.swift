import QueueGraphCore

/// Pushes buffers into one processor and collects what it sends, all on the
/// test's thread (GStreamer's `GstHarness`, for QueueGraph).
///
///     input ──▶ [ queue under test: processor ] ──pad n──▶ collector n
///
/// Threading: one thread at a time.
public final class ProcessorHarness {
    /// Collects the buffers of one pad: their sequence numbers and first payload word.
    public final class Collector: BufferProcessor, @unchecked Sendable {
        public private(set) var sequences: [UInt64] = []
        public private(set) var sizes: [Int] = []
        public private(set) var priorities: [Int] = []

        public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
            sequences.append(buffer.sequence)
            sizes.append(buffer.size)
            priorities.append(buffer.priority)
            context.doneBuffer(buffer)
            return .ok
        }
    }

    public let pool: TrackingPool
    public let graph: SteppedGraph
    public let collectors: [Collector]
    private let input: GraphInput

    /// Wraps the queue `config` (its processor under test) between an input
    /// and one collector per out pad. Buffers come from a tracking pool of
    /// `poolSize` buffers of `payloadCapacity` bytes.
    public init(_ config: QueueConfig, poolSize: Int = 64, payloadCapacity: Int = 64) throws {
        let pool = TrackingPool(name: "harness", count: poolSize, payloadCapacity: payloadCapacity)
        let collectors = (0..<config.outPads).map { _ in Collector() }
        var graph = QueueGraphConfig(residencySampleInterval: 1)
        graph.queues.append(config)
        for (pad, collector) in collectors.enumerated() {
            graph.queues.append(QueueConfig(name: "collector\(pad)", size: 1 << 20, outPads: 0, processor: { _ in collector }))
            graph.connections.append(Connection(from: config.name, pad: pad, to: "collector\(pad)"))
        }
        self.pool = pool
        self.collectors = collectors
        self.graph = try graph.createSteppedGraph()
        self.input = try self.graph.input(config.name)
    }

    /// A buffer from the harness pool with `sequence`, `priority` and `size`.
    public func makeBuffer(sequence: UInt64, priority: Int = 0, size: Int = 8) -> Buffer {
        guard let buffer = pool.createBuffer(payloadSize: size, pad: -1) else {
            preconditionFailure("harness pool exhausted: release buffers or make a larger pool")
        }
        buffer.sequence = sequence
        buffer.priority = priority
        return buffer
    }

    /// Pushes a buffer into the queue under test without running anything.
    @discardableResult
    public func push(_ buffer: Buffer) -> PushResult { input.push(buffer) }

    /// Pushes buffers with these sequence numbers.
    @discardableResult
    public func push(sequences: some Sequence<UInt64>) -> [PushResult] {
        sequences.map { push(makeBuffer(sequence: $0)) }
    }

    /// Runs until nothing can run; returns the steps.
    @discardableResult
    public func run() -> [StepReport] { graph.run() }

    /// Ends the input and runs to end-of-stream.
    public func finish() {
        input.endOfStream()
        graph.run()
    }

    /// What every collector received, by pad.
    public var outputs: [[UInt64]] { collectors.map(\.sequences) }

    public func statistics() -> GraphStatistics { graph.statistics() }
}
