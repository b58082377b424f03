/// A graph run by hand on the caller's thread, one processor invocation per
/// `step()`: deterministic, for tests and debugging. Every queue runs on one
/// scheduler whatever its threading.
///
/// Threading: one thread at a time (not necessarily the creating one).
public final class SteppedGraph {
    public let engine: GraphEngine

    public init(config: QueueGraphConfig) throws {
        engine = try GraphEngine(config: config, singleThread: true, launcher: nil)
    }

    /// Runs one invocation and says which; nil when nothing can run now.
    @discardableResult
    public func step() -> StepReport? {
        engine.schedulers[0].runOnce(engine: engine).map {
            StepReport(queue: engine.queues[$0.queue].name, action: $0.action, tier: $0.tier)
        }
    }

    /// Steps until nothing can run or `limit` steps were taken; returns the reports.
    @discardableResult
    public func run(limit: Int = .max) -> [StepReport] {
        var reports: [StepReport] = []
        while reports.count < limit, let report = step() { reports.append(report) }
        return reports
    }

    /// Lets sources that found their pool empty try again.
    public func retryBlockedSources() { engine.schedulers[0].retryBlockedSources() }

    public func input(_ name: String) throws(QueueGraphError) -> GraphInput { try engine.input(name) }
    public func statistics() -> GraphStatistics { engine.statistics() }
    public var isFinished: Bool { engine.isFinished }

    /// Ends sources and inputs; keep stepping to drain.
    public func beginDrain() { engine.beginDrain() }
    /// Releases every queued and held buffer as abandoned.
    public func abandon() { engine.abandon() }
}

extension QueueGraphConfig {
    /// A graph stepped by hand on the caller's thread (see `SteppedGraph`).
    public func createSteppedGraph() throws -> SteppedGraph { try SteppedGraph(config: self) }
}
