@_spi(Runtime) import QueueGraphCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A running graph made from a `QueueGraphConfig`: one thread per scheduler
/// group (the queues that start no thread share the graph's first one).
///
///     created ──start()──▶ running ──pause()──▶ paused ──start()──▶ running
///                             │                    │
///                             └──── stop(.drain / .abandon) ───▶ stopped
///
/// End-of-stream flows through by itself when every source and input has
/// ended; `waitUntilFinished` waits for it. `stop` accounts for every buffer
/// either way: drained to the sinks, or released unprocessed as abandoned.
///
/// Threading: the control methods (`start`, `pause`, `stop`) may be called
/// from any thread but not concurrently with each other; `statistics` and
/// `input` from any thread at any time. Processors run on the graph's threads.
public final class QueueGraph: @unchecked Sendable {
    /// How `stop` treats buffers still in the graph.
    public enum StopMode: Sendable, Equatable {
        /// End sources and inputs and let every queued buffer reach its sink,
        /// waiting up to the given nanoseconds; what is left then is abandoned.
        case drain(timeoutNanoseconds: Int64)
        /// Stop the threads at once and release what is queued or held as abandoned.
        case abandon
    }

    private enum State { case created, running, paused, stopped }

    public let engine: GraphEngine
    private let state = Locked<State>(.created)
    private let control = ThreadControl()
    /// Serializes structural changes.
    private let splicing = Locked<Void>(())
    private var threads: [SchedulerThread] = []
    /// Emits `queue_stats` every `queueStatsIntervalNanoseconds` while running.
    private var statsThread: pthread_t?

    init(config: QueueGraphConfig) throws {
        engine = try GraphEngine(config: config, singleThread: false, launcher: Launcher())
    }

    /// Starts the threads, or resumes a paused graph.
    public func start() throws {
        try state.withLock { state in
            switch state {
            case .created:
                threads = engine.schedulerCount.indices.compactMap { group in
                    engine.schedulerQueueCount(group) == 0 ? nil : SchedulerThread(engine: engine, group: group, control: control)
                }
                control.running.store(threads.count, ordering: .sequentiallyConsistent)
                engine.traceStart(name: engine.config.name)
                for thread in threads { thread.start() }
                if let failure = waitForThreadsToStart() {
                    engine.wakeAll()
                    for thread in threads { thread.join() }
                    engine.abandon()
                    engine.traceStop(abandon: true)
                    state = .stopped
                    throw failure
                }
                startStatsThread()
            case .paused:
                control.paused.store(false, ordering: .sequentiallyConsistent)
                engine.traceStart(name: engine.config.name)
                engine.wakeAll()
            case .running:
                break
            case .stopped:
                throw QueueGraphError.invalidState("a stopped graph cannot start again; create a new one from its config")
            }
            state = .running
        }
    }

    /// Waits until every thread has started its `ThreadLifecycle` hooks, then
    /// lets them run; returns the first failure instead (the threads end).
    private func waitForThreadsToStart() -> QueueGraphError? {
        while control.started.load(ordering: .sequentiallyConsistent) < threads.count {
            control.changed.wait(timeoutNanoseconds: 10_000_000) {
                control.started.load(ordering: .sequentiallyConsistent) >= threads.count
            }
        }
        if let failure = control.startFailure.withLock({ $0 }) { return failure }
        control.go.store(true, ordering: .sequentiallyConsistent)
        engine.wakeAll()
        return nil
    }

    /// Stops running processors after their current invocation and returns
    /// once every thread is parked (or has ended); `start()` resumes.
    public func pause() {
        let paused = state.withLock { state -> Bool in
            guard state == .running else { return false }
            control.paused.store(true, ordering: .sequentiallyConsistent)
            state = .paused
            return true
        }
        guard paused else { return }
        engine.tracePause()
        waitUntilParked()
    }

    /// Wakes every thread and waits until each is parked (or has ended), `control.paused` being set.
    private func waitUntilParked() {
        engine.wakeAll()
        while control.parked.load(ordering: .sequentiallyConsistent) < control.running.load(ordering: .sequentiallyConsistent) {
            control.changed.wait(timeoutNanoseconds: 1_000_000) {
                control.parked.load(ordering: .sequentiallyConsistent) >= control.running.load(ordering: .sequentiallyConsistent)
            }
        }
    }

    /// Waits until end-of-stream has reached every queue; false on timeout.
    @discardableResult
    public func waitUntilFinished(timeoutNanoseconds: Int64 = .max) -> Bool {
        let deadline = monotonicNanoseconds() &+ UInt64(max(0, timeoutNanoseconds))
        while control.running.load(ordering: .acquiring) > 0 {
            let now = monotonicNanoseconds()
            guard now < deadline else { return false }
            control.changed.wait(timeoutNanoseconds: Int64(min(deadline - now, 100_000_000))) {
                control.running.load(ordering: .acquiring) == 0
            }
        }
        return true
    }

    /// Stops the graph and returns its final statistics, with every buffer
    /// accounted for (`GraphStatistics.ledgerProblems()` is empty unless a
    /// processor kept buffers it never released).
    @discardableResult
    public func stop(_ mode: StopMode = .drain(timeoutNanoseconds: 5_000_000_000)) -> GraphStatistics {
        let wasStarted = state.withLock { state -> Bool in
            defer { state = .stopped }
            return state == .running || state == .paused
        }
        if wasStarted {
            if case .drain(let timeout) = mode {
                control.paused.store(false, ordering: .sequentiallyConsistent)
                engine.beginDrain()
                waitUntilFinished(timeoutNanoseconds: timeout)
            }
            control.stopping.store(true, ordering: .sequentiallyConsistent)
            engine.wakeAll()
            for thread in threads { thread.join() }
            control.changed.notify()
            if let statsThread { pthread_join(statsThread, nil) }
        }
        engine.abandon()
        if wasStarted {
            engine.traceStatistics()   // the final counters, exact
            engine.traceStop(abandon: mode == .abandon)
        }
        return engine.statistics()
    }

    private func startStatsThread() {
        let interval = engine.config.queueStatsIntervalNanoseconds
        guard interval > 0 else { return }
        statsThread = spawnThread(name: "qg-stats") { [engine, control] in
            var next = monotonicNanoseconds() &+ UInt64(interval)
            while !control.stopping.load(ordering: .sequentiallyConsistent) {
                let now = monotonicNanoseconds()
                if now >= next {
                    engine.traceStatistics()
                    next = now &+ UInt64(interval)
                } else {
                    control.changed.wait(timeoutNanoseconds: Int64(next - now)) { control.stopping.load(ordering: .sequentiallyConsistent) }
                }
            }
        }
    }

    // MARK: Live changes (docs/control.md)

    /// Sets a processor's live parameter from its text (checked as a graph
    /// file's value is) and returns once the processor has taken it: the
    /// next buffer it processes sees it. Any thread.
    @discardableResult
    public func setParameter(queue: String, _ parameter: String, to text: String) throws(LiveChangeError) -> ParameterValue {
        let applied = Applied()
        let value = try engine.setParameter(queue: queue, parameter, to: text) { applied.signal() }
        applied.wait(running: state.withLock { $0 == .running })
        return value
    }

    /// Pauses (`held` true) or resumes one queue and the branch it feeds;
    /// returns once its thread has taken the change. Any thread.
    public func setHeld(queue: String, _ held: Bool) throws(LiveChangeError) {
        let applied = Applied()
        try engine.setHeld(queue: queue, held) { applied.signal() }
        applied.wait(running: state.withLock { $0 == .running })
    }

    /// Gives a queue a new size and management (RED thresholds with
    /// `.red`): every thread parks between invocations for the change.
    /// Any thread, not concurrently with `start`, `pause` or `stop`.
    public func reconfigureQueue(_ name: String, size: Int? = nil, management: QueueManagement? = nil) throws(LiveChangeError) {
        try whileParked { () throws(LiveChangeError) in try engine.reconfigureQueue(name, size: size, management: management) }
    }

    /// Replaces a segment of queues while buffers flow (docs/control.md):
    /// `names` is a chain on one thread (each feeding the next), `configs`
    /// the queues that take its place (none: the segment is removed). The
    /// threads park once to wire the new segment in; the old one then
    /// drains to its downstream queue by end-of-stream (every buffer in it
    /// delivered, or dropped and counted by its policies) while the new
    /// one holds what arrives, so buffers keep their order; then the new
    /// one runs. What has not drained within `drainTimeoutNanoseconds` is
    /// released as abandoned, counted. The removed queues' rows stay in
    /// the statistics, renamed `NAME~N`. Any thread, one change at a time.
    @discardableResult
    public func replaceSegment(_ names: [String], with configs: [QueueConfig],
                               drainTimeoutNanoseconds: Int64 = 2_000_000_000) throws(LiveChangeError) -> SpliceReport {
        try splice(removing: names, after: nil, pad: 0, adding: configs, drainTimeoutNanoseconds: drainTimeoutNanoseconds)
    }

    /// Inserts queues after `upstream`'s `pad`, before the queue it feeds.
    @discardableResult
    public func insertSegment(_ configs: [QueueConfig], after upstream: String, pad: Int = 0) throws(LiveChangeError) -> SpliceReport {
        try splice(removing: [], after: upstream, pad: pad, adding: configs, drainTimeoutNanoseconds: 0)
    }

    /// Removes a segment (see `replaceSegment`): its upstream then feeds its downstream queue.
    @discardableResult
    public func removeSegment(_ names: [String], drainTimeoutNanoseconds: Int64 = 2_000_000_000) throws(LiveChangeError) -> SpliceReport {
        try splice(removing: names, after: nil, pad: 0, adding: [], drainTimeoutNanoseconds: drainTimeoutNanoseconds)
    }

    private func splice(removing names: [String], after upstream: String?, pad: Int, adding configs: [QueueConfig],
                        drainTimeoutNanoseconds: Int64) throws(LiveChangeError) -> SpliceReport {
        try splicing.withLock { _ -> Result<SpliceReport, LiveChangeError> in
            Result { () throws(LiveChangeError) -> SpliceReport in
                guard state.withLock({ $0 == .running }) else {
                    throw LiveChangeError(.refused, "the graph is not running: a segment drains only while it runs")
                }
                let plan = try engine.planSplice(removing: names, after: upstream, pad: pad, adding: configs)
                let start = monotonicNanoseconds()
                try whileParked { () throws(LiveChangeError) in try engine.applySplice(plan) }
                let wired = monotonicNanoseconds()
                let deadline = wired &+ UInt64(max(0, drainTimeoutNanoseconds))
                while !engine.hasDrained(plan) && monotonicNanoseconds() < deadline {
                    control.changed.wait(timeoutNanoseconds: 200_000) { engine.hasDrained(plan) }
                }
                var (parked, abandoned) = (wired - start, 0)
                if !engine.hasDrained(plan) {
                    let again = monotonicNanoseconds()
                    abandoned = try whileParked { () throws(LiveChangeError) in engine.abandonUndrained(plan) }
                    parked += monotonicNanoseconds() - again
                }
                let applied = Applied()
                engine.finishSplice(plan) { applied.signal() }
                applied.wait(running: true)
                return SpliceReport(removed: plan.removedNames, parkedNanoseconds: Int(parked),
                                    drainNanoseconds: Int(monotonicNanoseconds() - wired), abandoned: abandoned)
            }
        }.get()
    }

    /// Runs `body` while no scheduler thread is inside an invocation: a
    /// running graph's threads park and resume after it.
    func whileParked<R>(_ body: () throws(LiveChangeError) -> R) throws(LiveChangeError) -> R {
        try state.withLock { state -> Result<R, LiveChangeError> in
            switch state {
            case .stopped: return .failure(LiveChangeError(.refused, "the graph has stopped"))
            case .created, .paused: return Result { () throws(LiveChangeError) in try body() }
            case .running:
                control.paused.store(true, ordering: .sequentiallyConsistent)
                waitUntilParked()
                defer {
                    control.paused.store(false, ordering: .sequentiallyConsistent)
                    engine.wakeAll()
                }
                return Result { () throws(LiveChangeError) in try body() }
            }
        }.get()
    }

    /// The processor of the queue named `name`, nil when there is none (see `GraphEngine.processor(ofQueue:)`).
    public func processor(ofQueue name: String) -> (any BufferProcessor)? { engine.processor(ofQueue: name) }

    /// A handle for pushing buffers into a queue without upstream connections.
    public func input(_ name: String) throws(QueueGraphError) -> GraphInput { try engine.input(name) }

    /// A snapshot of every counter; any thread, any time.
    public func statistics() -> GraphStatistics { engine.statistics() }

    /// Why the graph stopped by itself (a child process died and was not
    /// restarted), or nil; any thread.
    public var failure: String? { engine.failure }

    deinit {
        if state.withLock({ $0 == .running || $0 == .paused }) { stop(.abandon) }
    }
}

/// What a segment change did (`QueueGraph.replaceSegment`).
///
/// Threading: a value; any thread.
public struct SpliceReport: Sendable, Equatable {
    /// The queues that went out (their statistics rows are now `NAME~N`).
    public var removed: [String]
    /// How long every thread was parked for the change: the stall it caused.
    public var parkedNanoseconds: Int
    /// From the wiring until the old segment had drained (the rest of the graph runs meanwhile).
    public var drainNanoseconds: Int
    /// Buffers of the old segment released unprocessed because it did not drain in time (counted as abandoned).
    public var abandoned: Int
}

/// A change's "applied" signal, waited for by the thread that asked.
private final class Applied: Sendable {
    private let done = Atomic<Bool>(false)
    private let event = WakeEvent()

    func signal() {
        done.store(true, ordering: .releasing)
        event.notify()
    }

    /// Waits for the signal while the graph runs (its threads take posted
    /// changes), for up to a second: a thread inside a long invocation takes it later.
    func wait(running: Bool) {
        guard running else { return }
        event.wait(timeoutNanoseconds: 1_000_000_000) { done.load(ordering: .acquiring) }
    }
}

extension QueueGraphConfig {
    /// Makes an independent running graph (not yet started) from this template.
    public func createQueueGraph() throws -> QueueGraph { try QueueGraph(config: self) }
}
