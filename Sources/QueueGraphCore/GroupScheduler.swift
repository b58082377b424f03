import CQueueGraphTrace
import DequeModule
import Synchronization

/// What one scheduler step did.
public struct StepReport: Sendable, Equatable, CustomStringConvertible {
    public enum Action: String, Sendable {
        /// A buffer was popped and processed.
        case processed
        /// A source produced (or tried to).
        case produced
        /// The queue ended: its processor's `endOfStream` ran and its downstream was told.
        case endOfStream
        /// An ack or a nak was delivered to the queue's processor.
        case ack, nak
    }

    public var queue: String
    public var action: Action
    /// The fill-level tier the queue was picked from (0 first; see `GroupScheduler`).
    public var tier: Int

    public var description: String { "\(queue):\(action.rawValue)@\(tier)" }
}

/// What one scheduler step did, without names (cheap to make on the hot path).
@_spi(Runtime) public struct StepOutcome: Sendable {
    public var queue: Int
    public var action: StepReport.Action
    public var tier: Int
}

/// Feedback travelling back to a sender's thread.
enum Feedback {
    case ack
    case nak(DropReason)
}

/// The scheduler of one thread group (the seed's per-thread scheduler).
///
/// It runs one processor invocation at a time, choosing by the fill level
/// of each queue's downstream queues:
///
///     tier 0  downstream empty (or a sink)      ← goes first
///     tier 1  downstream under half full
///     tier 2  downstream half full or more
///     tier 3  downstream full but it drops (taildrop, headdrop, red)
///     —       downstream full and `default`     ← never goes
///
/// Ties go to the queue declared first. Acks and naks for the group's
/// processors are delivered before any other work.
///
/// Threading: `runOnce` and everything else except `post` run on the
/// group's thread (or the test's thread in stepping mode).
@_spi(Runtime) public final class GroupScheduler: @unchecked Sendable {
    let index: Int
    /// The group's queues by slot (declaration order, then queues spliced
    /// in live, which may take the slot of a removed queue that has ended).
    /// Changed only while every thread is parked.
    @exclusivity(unchecked) var queues: [RunningQueue]
    /// `queues` for the hot path (no reference counting), with room for
    /// `spareSlots` more.
    private let refs: QueueRefs
    /// Slots beyond the declared queues, for queues spliced in live.
    static let spareSlots = 32
    /// The group's queues by fill-level tier.
    let fillTiers: FillTiers
    /// The group's sources (for retrying those that waited for a buffer).
    private let sources: [RunningQueue]
    /// Slots of sources waiting until a time; while there are none, no clock is read per step.
    @exclusivity(unchecked) private var waitingSources: [Int32] = []
    /// Queues of the group that have not ended.
    @exclusivity(unchecked) var unfinished: Int
    /// Indices of queues spliced out live (`splice`).
    @exclusivity(unchecked) var retired: Set<Int> = []
    @_spi(Runtime) public let event: WakeEvent
    private let inbox = Locked<Deque<(feedback: Feedback, buffer: Buffer, queue: Int32)>>(Deque())
    /// Live changes to run on this thread between invocations (`postChange`), and how many wait.
    private let changes = Locked<[@Sendable () -> Void]>([])
    private let changeCount = Atomic<Int>(0)
    /// Feedback and changes waiting: one load on the hot path says there are none.
    private let inboxCount = Atomic<Int>(0)

    private let lines = AtomicLines(count: 4)
    var invocations: Counter { lines.counter(0) }
    var busyNanoseconds: Counter { lines.counter(1) }
    var idleNanoseconds: Counter { lines.counter(2) }
    var wakeups: Counter { lines.counter(3) }
    /// When the busy spell going on began (0: the thread sleeps or is
    /// parked): statistics count it, so a thread that never sleeps is not
    /// shown idle until it does.
    let busySince = Atomic<UInt64>(0)

    init(index: Int, queues: [RunningQueue], event: WakeEvent) {
        self.index = index
        self.queues = queues
        self.refs = QueueRefs(queues, capacity: queues.count + Self.spareSlots)
        self.event = event
        fillTiers = FillTiers(count: queues.count + Self.spareSlots)
        sources = queues.filter(\.isSource)
        unfinished = queues.count
        for (slot, queue) in queues.enumerated() {
            queue.slot = Int32(slot)
            queue.dirty = fillTiers.dirty
        }
    }

    /// Says which slots to recompute when: a queue whose tier another thread
    /// can change is watched (recomputed before every pick); any other is
    /// recomputed when a queue it reads changes on this thread (`affects`).
    /// `preds` are the plan's upstream queues by queue index.
    func watch(preds: [[Int]], all: [RunningQueue]) {
        func crossed(_ q: RunningQueue) -> Bool { q.crossesThreads || q.isInput }
        var watched = Set<Int32>()
        for q in queues where crossed(q) || q.gate != nil || q.outs.indices.contains(where: { pad in
            q.outs.with(pad) { out in out.group != q.group || crossed(out) }
        }) {
            watched.insert(q.slot)
        }
        fillTiers.watch(watched.sorted())
        for q in queues where !watched.contains(q.slot) { fillTiers.markDirty(q.slot) }   // first computed before the first pick
        for q in queues {
            let slots = Set(([q.index] + preds[q.index]).map { all[$0] }
                .filter { $0.group == index && !watched.contains($0.slot) }.map(\.slot)).sorted()
            let affects = UnsafeMutableBufferPointer<Int32>.allocate(capacity: slots.count)
            _ = affects.initialize(from: slots)
            q.affects.deallocate()
            q.affects = UnsafeBufferPointer(affects)
        }
    }

    /// The slots of queues spliced out that have ended: free for new ones.
    private var freeSlots: [Int] { queues.indices.filter { retired.contains(queues[$0].index) && queues[$0].finished } }

    /// Whether `count` more queues fit (free slots, then spare ones). Only while every thread is parked.
    func hasRoom(for count: Int) -> Bool { freeSlots.count + (refs.count - queues.count) >= count }

    /// Takes `added` into free slots (those of ended queues that were
    /// spliced out, then spare ones) and drops `removed` from the group once
    /// they end; then recomputes what every slot watches. Only while every
    /// thread is parked, after `hasRoom`.
    func splice(adding added: [RunningQueue], retiring removed: Set<Int>, preds: [[Int]], all: [RunningQueue]) {
        precondition(hasRoom(for: added.count), "a splice checks for room first")
        retired.formUnion(removed)
        let free = freeSlots
        for (i, queue) in added.enumerated() {
            let slot = i < free.count ? free[i] : queues.count
            retired.remove(queues.indices.contains(slot) ? queues[slot].index : -1)
            if slot == queues.count { queues.append(queue) } else { queues[slot] = queue }
            refs.set(slot, queue)
            queue.slot = Int32(slot)
            queue.dirty = fillTiers.dirty
            unfinished += 1
        }
        watch(preds: preds, all: all)
    }

    /// The group's queues that are part of the graph now (not spliced out).
    var currentQueues: [RunningQueue] { queues.filter { !retired.contains($0.index) } }

    deinit {
        refs.deallocate()
        lines.deallocate()
    }

    /// True when every queue of the group has ended.
    @_spi(Runtime) public var isFinished: Bool { unfinished == 0 }

    // MARK: Feedback

    /// Queues an ack or nak for a processor of this group. Any thread.
    func post(_ feedback: Feedback, buffer: Buffer, to queue: Int) {
        inbox.withLock { $0.append((feedback, buffer, Int32(queue))) }
        inboxCount.wrappingAdd(1, ordering: .sequentiallyConsistent)
        event.notify()
    }

    /// Runs `change` on this group's thread before its next invocation. Any thread.
    func postChange(_ change: @escaping @Sendable () -> Void) {
        changes.withLock { $0.append(change) }
        changeCount.wrappingAdd(1, ordering: .releasing)
        inboxCount.wrappingAdd(1, ordering: .sequentiallyConsistent)
        event.notify()
    }

    /// Runs the posted changes (in stepping mode, the stepping thread does).
    /// Without any, one load: acks and naks come this way too.
    @_spi(Runtime) public func runChanges() {
        guard changeCount.load(ordering: .acquiring) > 0 else { return }
        let posted = changes.withLock { changes in defer { changes.removeAll() }; return changes }
        changeCount.wrappingSubtract(posted.count, ordering: .relaxed)
        inboxCount.wrappingSubtract(posted.count, ordering: .relaxed)
        for change in posted { change() }
    }

    var hasFeedback: Bool { inboxCount.load(ordering: .relaxed) > 0 }

    /// Whether acks or naks wait for delivery (checked before a thread exits).
    @_spi(Runtime) public var hasPendingFeedback: Bool { inboxCount.load(ordering: .sequentiallyConsistent) > 0 }

    private func deliverFeedback(engine: GraphEngine) -> StepOutcome? {
        runChanges()
        guard let item = inbox.withLock({ $0.popFirst() }) else { return nil }
        inboxCount.wrappingSubtract(1, ordering: .relaxed)
        let queue = engine.queues[Int(item.queue)]
        let buffer = item.buffer
        invocations.bump()
        switch item.feedback {
        case .ack:
            queue.processor.recvAck(buffer, context: queue.context)
            buffer.dropHold(fate: .consumed)
            return StepOutcome(queue: queue.index, action: .ack, tier: 0)
        case .nak(let reason):
            queue.processor.recvNak(buffer, reason: reason, context: queue.context)
            buffer.dropHold(fate: .dropped)
            return StepOutcome(queue: queue.index, action: .nak, tier: 0)
        }
    }

    /// Releases undelivered feedback (after an abandoning stop).
    func discardFeedback() {
        runChanges()
        let items = inbox.withLock { inbox in defer { inbox.removeAll() }; return inbox.elements }
        inboxCount.store(0, ordering: .relaxed)
        for item in items {
            if case .nak = item.feedback { item.buffer.dropHold(fate: .dropped) } else {
                item.buffer.dropHold(fate: .consumed)
            }
        }
    }

    // MARK: Picking

    /// The tier `queue` may run in now, or nil when it may not run.
    @inline(__always)
    func tier(of queue: RunningQueue, now: UInt64) -> Int? {
        if queue.finished || queue.busy || queue.held { return nil }
        if queue.isSource {
            if queue.sourceBlockedOnBuffer || queue.sourceWaitUntil > now { return nil }
        } else if queue.consumerFindsEmpty()
                    && (queue.pendingUpstream.load(ordering: .acquiring) != 0 || queue.lifecycle?.holdsBuffersToSend == true) {
            return nil   // nothing to take; or its upstream ended, but it may not end before it has sent what it holds
        } else if let gate = queue.gate, !gate.acceptsBuffers {
            return nil
        }
        var worst = 0
        for pad in queue.outs.indices {
            let tier: Int? = queue.outs.with(pad) { out in
                let (depth, full) = out.fillSeenByProducer
                if full { return out.drops ? 3 : nil }
                if depth == 0 { return 0 }
                return depth * 2 < out.size ? 1 : 2
            }
            guard let tier else { return nil }
            worst = max(worst, tier)
        }
        return worst
    }

    /// The slot (index in `queues`) of the queue to run next, and its tier.
    /// Costs the same whatever the number of queues in the group (see `FillTiers`).
    @inline(__always)
    func pick(now: UInt64) -> (index: Int, tier: Int)? {
        if !waitingSources.isEmpty { wakeSources(now: now) }
        fillTiers.refresh { slot in refs.with(slot) { tier(of: $0, now: now) } }
        return fillTiers.first().map { ($0.slot, $0.tier) }
    }

    /// Ends the wait of the sources whose time has come (they no longer
    /// need a clock to be runnable) and marks them.
    private func wakeSources(now: UInt64) {
        waitingSources.removeAll { slot in
            refs.with(Int(slot)) { queue in
                guard queue.sourceWaitUntil <= now else { return false }
                queue.sourceWaitUntil = 0
                fillTiers.markDirty(slot)
                return true
            }
        }
    }

    /// The earliest time a waiting source wants to run again, if any.
    @_spi(Runtime) public func nextSourceDeadline() -> UInt64? {
        waitingSources.lazy.map { self.queues[Int($0)] }.filter { !$0.finished && $0.sourceWaitUntil != 0 }.map(\.sourceWaitUntil).min()
    }

    /// Lets sources that waited for a buffer try again.
    @_spi(Runtime) public func retryBlockedSources() {
        for queue in sources where queue.sourceBlockedOnBuffer {
            queue.sourceBlockedOnBuffer = false
            fillTiers.markDirty(queue.slot)
        }
    }

    // MARK: Running

    /// Runs one invocation: pending feedback first, then the best queue.
    /// Returns nil when nothing can run now.
    @_spi(Runtime) public func runOnce(engine: GraphEngine) -> StepOutcome? {
        if hasFeedback, let outcome = deliverFeedback(engine: engine) { return outcome }
        let now = waitingSources.isEmpty ? 0 : monotonicNanoseconds()
        guard let (i, tier) = pick(now: now) else { return nil }
        invocations.bump()
        return refs.with(i) { queue in
            if Tracing.on(QG_TP_QUEUE_FLOW) { qg_flow_step(engine.traceID, UInt32(queue.index), UInt8(tier)) }
            let action = queue.run()
            fillTiers.markDirty(queue.slot)
            if queue.sourceWaitUntil != 0 { waitingSources.append(queue.slot) }
            return StepOutcome(queue: queue.index, action: action, tier: tier)
        }
    }
}

extension GroupScheduler {
    /// Whether anything could run now: feedback, a runnable queue, or a
    /// source blocked on a creator that has buffers again. For the idle check
    /// before sleeping; not for the hot path.
    @_spi(Runtime) public func hasWork(now: UInt64) -> Bool {
        if hasFeedback || pick(now: now) != nil { return true }
        return sources.contains { q in
            q.sourceBlockedOnBuffer && q.acquireCreators.contains { let s = $0.statistics(); return s.inUse < s.capacity }
        }
    }
}

extension GraphEngine {
    /// How many scheduler groups the graph has (one thread each when running).
    public var schedulerCount: Range<Int> { 0..<schedulers.count }
    /// How many queues a group runs.
    public func schedulerQueueCount(_ group: Int) -> Int { schedulers[group].queues.count }

    @_spi(Runtime) public func scheduler(_ group: Int) -> GroupScheduler { schedulers[group] }

    /// Adds to a group's busy time at the end of a busy spell; only that group's thread calls it.
    @_spi(Runtime) public func recordBusy(group: Int, nanoseconds: Int) {
        schedulers[group].busyNanoseconds.bump(nanoseconds)
        schedulers[group].busySince.store(0, ordering: .releasing)
    }

    /// Adds to a group's idle time at the end of an idle spell, when a busy
    /// one begins at `resumedAt`; only that group's thread calls it.
    @_spi(Runtime) public func recordIdle(group: Int, nanoseconds: Int, woke: Bool, resumedAt: UInt64) {
        schedulers[group].idleNanoseconds.bump(nanoseconds)
        if woke { schedulers[group].wakeups.bump() }
        schedulers[group].busySince.store(resumedAt, ordering: .releasing)
    }
}
