import Synchronization

/// Why a live change was refused: a stable code and a message that says
/// what was found and what was expected.
///
/// Threading: a value; any thread.
public struct LiveChangeError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case unknownQueue = "unknown-queue"
        case unknownParameter = "unknown-parameter"
        case badValue = "bad-value"
        /// The change does not fit the graph as it is now (a queue that ended, a segment that would not drain).
        case refused
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) { (self.code, self.message) = (code, message) }

    public var description: String { message }
}

/// Live changes (docs/control.md): a processor's parameter, a queue's size
/// and management, pausing a branch, replacing a segment.
///
/// Threading: `setParameter` and `setHeld` from any thread (the change runs
/// on the queue's thread before its next invocation); `reconfigureQueue`
/// and `replaceSegment` only while every scheduler thread is parked
/// (`QueueGraph` parks them) or on the stepping thread.
extension GraphEngine {
    /// A queue that is part of the graph now and has not ended.
    func liveQueue(_ name: String) throws(LiveChangeError) -> RunningQueue {
        guard let queue = queueIndex[name].map({ queues[$0] }) else {
            throw LiveChangeError(.unknownQueue, "found no queue named '\(name)', expected one of \(alternatives(queueNames))")
        }
        guard !queue.ended.load(ordering: .acquiring) else {
            throw LiveChangeError(.refused, "queue '\(name)' has ended: it takes no more changes")
        }
        return queue
    }

    /// A queue's config as it is now (live changes included), or nil.
    public func currentQueueConfig(_ name: String) -> QueueConfig? {
        queueIndex[name].map { queues[$0].config }
    }

    /// The names of the graph's queues now, in order.
    public var queueNames: [String] { queueIndex.sorted { $0.value < $1.value }.map(\.key) }

    /// Checks `text` against the queue's live parameter `parameter` (as a
    /// graph file's value is checked) and posts it to the processor, which
    /// takes it before its next buffer; `applied` runs on the queue's thread
    /// once it has. Returns the value.
    @discardableResult
    public func setParameter(queue name: String, _ parameter: String, to text: String,
                             applied: @escaping @Sendable () -> Void = {}) throws(LiveChangeError) -> ParameterValue {
        let queue = try liveQueue(name)
        let live = queue.config.liveParameters
        guard let spec = live.first(where: { $0.name == parameter }) else {
            throw LiveChangeError(.unknownParameter, live.isEmpty
                ? "found the parameter '\(parameter)', but queue '\(name)' has none that can change while it runs"
                : "found the parameter '\(parameter)' for queue '\(name)', expected one that can change while it runs: \(alternatives(live.map(\.name)))")
        }
        guard let value = spec.kind.parse(text) else {
            throw LiveChangeError(.badValue, "found '\(text)' for queue '\(name)' parameter '\(parameter)', expected \(spec.kind.expectation)")
        }
        guard let processor = queue.processor as? any LiveParameters else {
            throw LiveChangeError(.refused, "queue '\(name)''s processor takes no parameter while it runs")
        }
        nonisolated(unsafe) let target = processor
        let scheduler = schedulers[queue.group]
        scheduler.postChange { [weak self] in
            target.setParameter(parameter, to: value)
            queue.sourceWaitUntil = 0   // a source paced at the old rate runs again now
            scheduler.fillTiers.markDirty(queue.slot)
            self?.liveParameters.withLock { $0[name, default: [:]][parameter] = value }
            applied()
        }
        return value
    }

    /// Pauses (`held`) or resumes one queue, and with it the branch it
    /// feeds: a held queue runs nothing, its buffers wait under its
    /// policies (back-pressure, or drops counted upstream), and the queues
    /// after it starve. A draining stop resumes every held queue.
    public func setHeld(queue name: String, _ held: Bool, applied: @escaping @Sendable () -> Void = {}) throws(LiveChangeError) {
        let queue = try liveQueue(name)
        let scheduler = schedulers[queue.group]
        let target = queue
        scheduler.postChange {
            target.held = held
            scheduler.fillTiers.markDirty(target.slot)
            applied()
        }
    }

    /// Gives a queue a new size and management (its RED thresholds with
    /// `.red`). Only while every scheduler thread is parked.
    @_spi(Runtime) public func reconfigureQueue(_ name: String, size: Int?, management: QueueManagement?) throws(LiveChangeError) {
        let queue = try liveQueue(name)
        let size = size ?? queue.size
        let management = management ?? queue.config.management
        guard (1...(1 << 24)).contains(size) else {
            throw LiveChangeError(.badValue, "found the size \(size) for queue '\(name)', expected an integer in 1…\(1 << 24)")
        }
        if case .red(let red) = management {
            guard red.minThreshold >= 0, red.minThreshold < red.maxThreshold, red.maxProbability > 0, red.maxProbability <= 1 else {
                throw LiveChangeError(.badValue, "found RED thresholds min \(red.minThreshold.formatted), max \(red.maxThreshold.formatted), probability \(red.maxProbability.formatted) for queue '\(name)', expected 0 ≤ min < max and a probability in (0, 1]")
            }
        }
        if !management.drops && queue.depth > size {
            throw LiveChangeError(.refused, "found \(queue.depth) buffers in queue '\(name)', more than the new size \(size): a 'default' queue never drops; try again once it has drained, or choose a management that drops")
        }
        queue.reconfigure(size: size, management: management)
        markEverythingDirty()
        wakeAll()
    }

    /// Every queue's tier is computed again before the next pick (after
    /// the graph changed while its threads were parked).
    func markEverythingDirty() {
        for scheduler in schedulers { for queue in scheduler.queues { scheduler.fillTiers.markDirty(queue.slot) } }
    }

    /// Resumes every held queue (a draining stop must reach the end).
    func releaseHolds() {
        for scheduler in schedulers {
            let queues = scheduler.queues
            scheduler.postChange {
                for queue in queues where queue.held {
                    queue.held = false
                    scheduler.fillTiers.markDirty(queue.slot)
                }
            }
        }
    }
}
