import CQueueGraphTrace
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
        guard let queue = queue(named: name) else {
            throw LiveChangeError(.unknownQueue, "found no queue named '\(name)', expected one of \(alternatives(queueNames))")
        }
        guard !queue.ended.load(ordering: .acquiring) else {
            throw LiveChangeError(.refused, "queue '\(name)' has ended: it takes no more changes")
        }
        return queue
    }

    /// The graph now, live changes included: its queues in order and their
    /// connections (the declared `config` stays as it was). Any thread.
    public func currentGraph() -> (queues: [QueueConfig], connections: [Connection]) {
        structure.withLock { names in
            let live = Set(names.values)
            let current = queues.filter { live.contains($0.index) }
            let connections = current.flatMap { q in
                q.outs.indices.compactMap { pad in
                    q.outs.with(pad) { out in live.contains(out.index) ? Connection(from: q.name, pad: pad, to: out.name) : nil }
                }
            }
            return (current.map(\.config), connections)
        }
    }

    /// A queue's config as it is now (live changes included), or nil.
    public func currentQueueConfig(_ name: String) -> QueueConfig? {
        queue(named: name)?.config
    }

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
            throw LiveChangeError(.refused, "the processor of queue '\(name)' takes no parameter while it runs")
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
        postHeld(try liveQueue(name), held, applied: applied)
    }

    /// Sets `queue.held` on its thread before its next invocation, then runs `applied` there.
    func postHeld(_ queue: RunningQueue, _ held: Bool, applied: @escaping @Sendable () -> Void) {
        let scheduler = schedulers[queue.group]
        scheduler.postChange {
            queue.held = held
            scheduler.fillTiers.markDirty(queue.slot)
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

/// A segment of queues to splice into a running graph, checked and made
/// (`GraphEngine.planSplice`), not yet wired: `removed` (a chain, possibly
/// empty) between `upstream`'s `pad` and `downstream` gives way to `added`.
///
/// Threading: made on any thread; applied while every thread is parked.
@_spi(Runtime) public final class Splice: @unchecked Sendable {
    let upstream: RunningQueue
    let pad: Int
    let downstream: RunningQueue
    let removed: [RunningQueue]
    let added: [RunningQueue]
    let addedFormats: [[LinkFormat]]
    let group: Int
    /// A removal holds the upstream queue until the old segment has
    /// drained (no new queue can hold what arrives); whether it was held before.
    var upstreamWasHeld = false

    init(upstream: RunningQueue, pad: Int, downstream: RunningQueue, removed: [RunningQueue], added: [RunningQueue],
         addedFormats: [[LinkFormat]], group: Int) {
        (self.upstream, self.pad, self.downstream, self.removed, self.added, self.addedFormats, self.group) =
            (upstream, pad, downstream, removed, added, addedFormats, group)
    }

    /// The names of the queues going out.
    public var removedNames: [String] { removed.map(\.config.name) }
}

extension GraphEngine {
    /// Each queue's upstream queues now, by index (spliced-out queues
    /// that still drain keep theirs).
    func currentPreds() -> [[Int]] {
        var preds = Array(repeating: [Int](), count: queues.count)
        for queue in queues where !(queue.ended.load(ordering: .acquiring) && schedulers[queue.group].retired.contains(queue.index)) {
            for pad in queue.outs.indices { queue.outs.with(pad) { preds[$0.index].append(queue.index) } }
        }
        return preds
    }

    /// The format on `queue`'s out pad `pad`.
    func format(of queue: Int, pad: Int) -> LinkFormat {
        let formats = linkFormats[queue]
        return formats.isEmpty ? .unknown : formats[min(pad, formats.count - 1)]
    }

    /// Checks a splice and makes its queues: `removing` names a chain of
    /// queues (each feeding the next, one upstream and one downstream
    /// each, on one thread), or is empty to insert after `upstream`'s `pad`;
    /// `adding` are the new queues in order (one out pad each, `threading:
    /// none`: they run on the thread of the queues they join). Their formats
    /// must fit: what arrives from upstream, and what the downstream queue
    /// takes now. Call with changes serialized (`QueueGraph` does).
    @_spi(Runtime) public func planSplice(removing names: [String], after upstreamName: String?, pad insertPad: Int = 0,
                                         adding configs: [QueueConfig]) throws(LiveChangeError) -> Splice {
        let preds = structure.withLock { _ in currentPreds() }
        let removed = try names.map { name throws(LiveChangeError) in try liveQueue(name) }
        let upstream: RunningQueue, downstream: RunningQueue, pad: Int
        if let first = removed.first {
            guard preds[first.index].count == 1 else {
                throw LiveChangeError(.refused, "found queue '\(first.name)' with \(preds[first.index].count) upstream queues, expected a segment that begins with one")
            }
            upstream = queues[preds[first.index][0]]
            pad = upstream.outs.indices.first { p in upstream.outs.with(p) { $0 === first } }!
            for (a, b) in zip(removed, removed.dropFirst()) {
                guard a.outs.count == 1, a.outs.with(0, { $0 === b }), preds[b.index].count == 1 else {
                    throw LiveChangeError(.refused, "found '\(b.name)' not fed by '\(a.name)' alone, expected a chain of queues, each feeding the next")
                }
            }
            let last = removed.last!
            guard last.outs.count == 1 else {
                throw LiveChangeError(.refused, "found queue '\(last.name)' with \(last.outs.count) out pads, expected a segment that ends in one")
            }
            downstream = last.outs.with(0) { $0 }
            if let other = removed.first(where: { $0.group != first.group || $0.isSource || $0.config.servers > 1 }) {
                throw LiveChangeError(.refused, "found queue '\(other.name)' \(other.isSource ? "is a source" : other.config.servers > 1 ? "is compound" : "on another thread than '\(first.name)'"), expected a segment of plain queues on one thread")
            }
            if configs.isEmpty && upstream.group != first.group {
                throw LiveChangeError(.refused, "removing it would feed '\(downstream.name)' from another thread (the one of '\(upstream.name)'): replace the segment with an identity queue instead")
            }
        } else {
            guard let name = upstreamName else { throw LiveChangeError(.refused, "found no segment to remove and no queue to insert after") }
            upstream = try liveQueue(name)
            guard (0..<upstream.outs.count).contains(insertPad), !configs.isEmpty else {
                throw LiveChangeError(.badValue, configs.isEmpty ? "found no queue to insert, expected one or more"
                    : "found pad \(insertPad) of queue '\(name)', expected one of 0…\(upstream.outs.count - 1)")
            }
            (downstream, pad) = (upstream.outs.with(insertPad) { $0 }, insertPad)
        }
        let group = removed.first?.group ?? upstream.group
        let staying = Set(queueNames).subtracting(names)
        var seen = Set<String>()
        for config in configs {
            guard !staying.contains(config.name), seen.insert(config.name).inserted else {
                throw LiveChangeError(.badValue, "found the queue name '\(config.name)' twice, expected a name no other queue has")
            }
            guard config.outPads == 1, config.servers == 1, config.threading == .none, config.buffers == .forward || config.buffers == .reuse else {
                throw LiveChangeError(.badValue, "found queue '\(config.name)' with \(config.outPads) out pads, \(config.servers) servers, threading '\(config.threading.rawValue)', buffers '\(config.buffers.rawValue)', expected one pad, one server, threading 'none' (it runs on the thread it joins) and buffers 'forward' or 'reuse'")
            }
        }
        // What the new queues send, from what arrives: it must be what the downstream queue takes now.
        var arriving = format(of: upstream.index, pad: pad)
        let expected = removed.last.map { format(of: $0.index, pad: 0) } ?? arriving
        var added: [RunningQueue] = []
        var formats: [[LinkFormat]] = []
        let producerEvents = upstream.group == group ? [] : [schedulers[upstream.group].event]
        for (i, config) in configs.enumerated() {
            let processor = config.processor(config)
            guard !(processor is any BufferSource), !(processor is any CompoundProcessor) else {
                throw LiveChangeError(.badValue, "found a source or compound processor on queue '\(config.name)', expected one that takes buffers from upstream")
            }
            if let aware = processor as? any FormatAware {
                do throws(FormatRefusal) {
                    let sent = try aware.negotiate(arriving: [arriving])
                    if let first = sent.first { arriving = first }
                } catch {
                    throw LiveChangeError(.refused, "queue '\(config.name)' cannot take \(arriving): \(error)")
                }
            }
            formats.append([arriving])
            let queue = RunningQueue(index: queues.count + i, config: config, group: group, predecessors: 1, processor: processor,
                                     sampleInterval: self.config.residencySampleInterval, acquireCreators: [],
                                     consumerEvent: schedulers[group].event, producerEvents: i == 0 ? producerEvents : [])
            (queue.engine, queue.traceGraph, queue.draining) = (self, traceID, draining)
            added.append(queue)
        }
        if arriving != expected && arriving != .unknown && expected != .unknown {
            throw LiveChangeError(.refused, "found the new segment sending \(arriving), expected \(expected): what '\(downstream.name)' takes now")
        }
        added.first?.held = !removed.isEmpty   // until the old segment has drained: buffers reach the downstream queue in order
        return Splice(upstream: upstream, pad: pad, downstream: downstream, removed: removed, added: added, addedFormats: formats, group: group)
    }

    /// Wires a planned splice in. Only while every thread is parked. The
    /// removed queues lose their upstream and end once empty (their
    /// processors flush at end-of-stream, everything reaching the
    /// downstream queue); the first new queue holds what arrives until
    /// `finishSplice`.
    @_spi(Runtime) public func applySplice(_ splice: Splice) throws(LiveChangeError) {
        let scheduler = schedulers[splice.group]
        guard scheduler.hasRoom(for: splice.added.count) else {
            throw LiveChangeError(.refused, "found no room for \(splice.added.count) more queues on the thread of '\(splice.upstream.name)' (at most \(GroupScheduler.spareSlots) spliced in beyond those declared)")
        }
        for queue in splice.added {
            guard let hook = queue.processor as? any ThreadLifecycle else { continue }
            do { try hook.threadDidStart(wake: scheduler.event) } catch {
                throw LiveChangeError(.refused, "queue '\(queue.name)' could not start: \(error)")
            }
        }
        let count = spliceCount.wrappingAdd(1, ordering: .relaxed).newValue
        structure.withLock { names in
            queues += splice.added
            linkFormats += splice.addedFormats
            let (upstream, downstream) = (splice.upstream, splice.downstream)
            for (a, b) in zip(splice.added, splice.added.dropFirst()) { a.outs = QueueRefs([b]) }
            splice.added.last?.outs = QueueRefs([downstream])
            upstream.outs.set(splice.pad, splice.added.first ?? downstream)
            if let first = splice.removed.first {
                downstream.pendingUpstream.wrappingAdd(1, ordering: .sequentiallyConsistent)   // the old segment's end takes it back
                first.pendingUpstream.wrappingSubtract(1, ordering: .sequentiallyConsistent)
            }
            let preds = currentPreds()
            scheduler.splice(adding: splice.added, retiring: Set(splice.removed.map(\.index)), preds: preds, all: queues)
            for g in Set([upstream.group, downstream.group]) where g != splice.group { schedulers[g].watch(preds: preds, all: queues) }
            for queue in splice.removed {
                names[queue.name] = nil
                queue.name = "\(queue.name)~\(count)"
            }
            for queue in splice.added { names[queue.name] = queue.index }
        }
        if Tracing.on(QG_TP_GRAPH_QUEUE) {   // trace readers learn the new queues' names as they learnt the others'
            for q in splice.added { qg_tp_graph_queue(traceID, UInt32(q.index), q.name, UInt32(q.size), UInt32(q.group)) }
        }
        for queue in splice.removed { queue.held = false }
        if splice.added.isEmpty {
            splice.upstreamWasHeld = splice.upstream.held
            splice.upstream.held = true
        }
        markEverythingDirty()
        wakeAll()
    }

    /// Whether every removed queue of `splice` has ended (drained to the downstream queue).
    @_spi(Runtime) public func hasDrained(_ splice: Splice) -> Bool {
        splice.removed.allSatisfy { $0.ended.load(ordering: .acquiring) }
    }

    /// Ends the removed queues that have not drained, releasing what they
    /// hold as abandoned (counted). Only while every thread is parked.
    /// Returns how many queued buffers it released.
    @_spi(Runtime) public func abandonUndrained(_ splice: Splice) -> Int {
        let left = splice.removed.filter { !$0.finished }
        for queue in left { queue.context.abandoning = true }
        for queue in left {
            queue.abandonQueued()
            queue.finish()
        }
        return left.reduce(0) { $0 + $1.counters.abandoned.value }
    }

    /// Lets the new segment run: its first queue (after a removal, the
    /// upstream queue) stops holding. Any thread.
    @_spi(Runtime) public func finishSplice(_ splice: Splice, applied: @escaping @Sendable () -> Void) {
        guard !splice.removed.isEmpty else { return applied() }
        postHeld(splice.added.first ?? splice.upstream, splice.added.isEmpty && splice.upstreamWasHeld, applied: applied)
    }
}
