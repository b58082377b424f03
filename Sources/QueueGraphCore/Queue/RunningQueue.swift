import Atomics
import CQueueGraphTrace
import Synchronization

/// Where a queue's buffers wait.
enum Storage {
    /// Lock-free: FIFO, default or taildrop, one upstream queue, no byte bound.
    case ring(SPSCRing)
    /// Everything else: any discipline and management, byte bounds, fan-in.
    case locked(LockedStore)
}

/// A queue of a running graph: its storage, counters, processor and wiring.
///
/// Threading: `push` may be called by any producer (its upstream queues'
/// threads, external input); everything else runs on the thread of the
/// queue's scheduler group, except the read-only `depth`/`isFull` and the
/// counters.
final class RunningQueue: @unchecked Sendable {
    let index: Int
    /// As declared, or as last changed live (`reconfigure`).
    @exclusivity(unchecked) var config: QueueConfig
    /// Its name; a queue removed live is renamed (`GraphEngine.replaceSegment`).
    @exclusivity(unchecked) var name: String
    let group: Int
    let processor: any BufferProcessor
    let source: (any BufferSource)?
    let gate: (any GatedProcessor)?
    /// The processor, when it needs its thread's life (it may hold buffers to send between invocations).
    let lifecycle: (any ThreadLifecycle)?
    /// Where its buffers wait; replaced only while every thread is parked (`reconfigure`).
    @exclusivity(unchecked) var storage: Storage
    let counters = QueueCounters()
    let isInput: Bool
    let sync: BufferSync
    let buffers: BufferManagement
    @exclusivity(unchecked) var drops: Bool
    /// Upstream queues when the graph was made (a splice replaces one upstream by one).
    let predecessors: Int
    let sampleMask: UInt64
    /// An upstream queue runs on another thread: a ring's producer then reads
    /// the fill level from its own cached view.
    let crossesThreads: Bool

    /// Where `ProcessContext.acquireBuffer` takes buffers from: one creator,
    /// or one per pad for `downstream`.
    let acquireCreators: [any BufferCreator]
    /// `acquireCreators[0]` when it is the only one (read without reference counting).
    let soleCreator: (any BufferCreator)?
    /// The wake event of the thread that consumes this queue.
    let consumerEvent: WakeEvent
    /// The wake events of producers that may wait for room: other groups'
    /// threads feeding this queue (given to `init`), and external pushers.
    let producerEvents: [WakeEvent]
    /// A ring queue's only producer event, if its upstream is on another
    /// thread: optional chaining on a `let` reads it without the retain that
    /// iterating `producerEvents` costs on every pop.
    let ringProducerEvent: WakeEvent?
    let context = ProcessContext()
    let isSource: Bool
    @exclusivity(unchecked) var size: Int
    /// Downstream queues by pad; set once while building, before any thread runs.
    @exclusivity(unchecked) var outs = QueueRefs([])
    unowned(unsafe) var engine: GraphEngine! = nil
    /// The engine's `traceID` and `draining`, kept here: reading them through `engine` costs a retain.
    @exclusivity(unchecked) var traceGraph: UInt32 = 0
    @exclusivity(unchecked) var draining: UnsafeAtomic<Bool>! = nil

    /// Woken when room appears, for external producers that wait.
    let spaceEvent = WakeEvent()
    /// Upstream connections (plus external input) that have not ended.
    let pendingUpstream: Atomic<Int>
    let ended = Atomic<Bool>(false)
    /// External input has said end-of-stream.
    let inputClosed = Atomic<Bool>(false)

    // Scheduler-thread state.
    /// The queue's position in its group (declaration order), and its group's dirty slots.
    @exclusivity(unchecked) var slot: Int32 = 0
    @exclusivity(unchecked) var dirty: DirtySlots! = nil
    /// The slots whose tier reads this queue's depth, on its group's thread
    /// (itself and its upstream queues there, less the watched ones): marked
    /// dirty when the depth changes on that thread.
    @exclusivity(unchecked) var affects = UnsafeBufferPointer<Int32>(start: nil, count: 0)
    @exclusivity(unchecked) var finished = false
    @exclusivity(unchecked) var sourceBlockedOnBuffer = false
    @exclusivity(unchecked) var sourceWaitUntil: UInt64 = 0
    /// The processor said it cannot take a buffer now (`ProcessContext.busy`).
    @exclusivity(unchecked) var busy = false
    /// Paused live (`GraphEngine.setHeld`): it runs nothing, so its
    /// buffers wait and its branch downstream starves.
    @exclusivity(unchecked) var held = false
    /// Buffers the processor holds on an `ack` queue, with their sender.
    @exclusivity(unchecked) var holding: [(buffer: Buffer, from: Int32)] = []

    init(index: Int, config: QueueConfig, group: Int, predecessors: Int, processor: any BufferProcessor,
         sampleInterval: Int, acquireCreators: [any BufferCreator], consumerEvent: WakeEvent,
         producerEvents: [WakeEvent]) {
        self.index = index
        self.acquireCreators = acquireCreators
        self.soleCreator = acquireCreators.count == 1 ? acquireCreators[0] : nil
        self.consumerEvent = consumerEvent
        self.size = config.size
        self.crossesThreads = !producerEvents.isEmpty
        self.config = config
        self.name = config.name
        self.group = group
        self.sync = config.sync
        self.buffers = config.buffers
        self.drops = config.management.drops
        self.predecessors = predecessors
        self.processor = processor
        self.source = processor as? any BufferSource
        self.gate = processor as? any GatedProcessor
        lifecycle = processor as? any ThreadLifecycle
        isSource = source != nil
        isInput = predecessors == 0 && source == nil
        storage = Self.storage(for: config, predecessors: predecessors, isInput: isInput, crossesThreads: !producerEvents.isEmpty)
        pendingUpstream = Atomic(predecessors + (isInput ? 1 : 0))
        var interval = 1
        while interval < sampleInterval { interval <<= 1 }
        sampleMask = UInt64(interval - 1)
        if config.sync == .ack { holding.reserveCapacity(config.size + 4) }
        self.producerEvents = (isInput ? [spaceEvent] : []) + producerEvents
        ringProducerEvent = predecessors == 1 ? producerEvents.first : nil   // read only by a ring: one upstream queue, at most one event
        context.queueAddress = UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque())
    }

    /// A lock-free ring where it fits (FIFO, one upstream queue, no byte
    /// bound, `default` or `taildrop`), else a locked store.
    static func storage(for config: QueueConfig, predecessors: Int, isInput: Bool, crossesThreads: Bool) -> Storage {
        let useRing = config.discipline == .fifo && predecessors == 1 && config.byteBound == nil
            && (config.management == .default || config.management == .taildrop)
        return useRing ? .ring(SPSCRing(size: config.size, publishEvery: crossesThreads ? 16 : 1))
            : .locked(LockedStore(size: config.size, byteBound: config.byteBound, discipline: config.discipline, management: config.management,
                                  producers: predecessors + (isInput ? 1 : 0)))
    }

    deinit {
        outs.deallocate()
        if case .ring(let ring) = storage { ring.deallocate() }
        affects.deallocate()
    }

    // MARK: Fill level

    var depth: Int {
        switch storage {
        case .ring(let ring): ring.count
        case .locked(let store): store.depth.load(ordering: .relaxed)
        }
    }

    /// Whether nothing is queued, as the queue's own thread sees it: a ring
    /// reads its producer's index (another core's cache line) only when the
    /// entries it already knows of are used up, and when it finds them so
    /// publishes its own (`consumerFoundEmpty`). Consumer thread only.
    @inline(__always)
    func consumerFindsEmpty() -> Bool {
        switch storage {
        case .ring(let ring):
            if !ring.isEmptySeenByConsumer { return false }
            consumerFoundEmpty(ring)
            return true
        case .locked(let store):
            return store.depth.load(ordering: .relaxed) == 0
        }
    }

    /// The consumer, finding `ring` empty (it may sleep next), publishes
    /// its index and wakes a producer that may wait for room.
    private func consumerFoundEmpty(_ ring: SPSCRing) {
        let before = ring.publishHead()
        if ringProducerEvent?.mayHaveWaiters == true && ring.wasFull(seenFrom: before) { ringProducerEvent?.wake() }
    }

    /// Depth and fullness as the upstream queue's thread sees them when
    /// choosing what to run: exact on one thread; across threads a ring's
    /// view may lag the consumer's latest pops (it never under-states the depth).
    @inline(__always)
    var fillSeenByProducer: (depth: Int, full: Bool) {
        switch storage {
        case .ring(let ring):
            let depth = crossesThreads ? ring.countSeenByProducer : ring.count
            return (depth, depth >= size)
        case .locked(let store):
            return (store.depth.load(ordering: .relaxed), store.isFull)
        }
    }

    /// At its size (or byte bound): a `default` queue takes nothing more.
    @inline(__always)
    var isFull: Bool {
        switch storage {
        case .ring(let ring): ring.count >= size
        case .locked(let store): store.isFull
        }
    }

    // MARK: Arrival (any producer thread)

    /// Offers a buffer whose hold the caller gives up unless the result is `.full`.
    /// `fromGroup` is the producer's scheduler group, or -1 for external input.
    @inline(__always)
    func push(_ buffer: Buffer, from: Int32, fromGroup: Int) -> PushResult {
        if ended.load(ordering: .relaxed) {
            counters.arrived.add()
            traceArrival(depth: depth)
            counters.dropped(.closed).add()
            release(buffer, droppedFor: .closed, from: from)
            return .closed
        }
        let stamp: UInt64 = buffer.sequence & sampleMask == 0 ? monotonicNanoseconds() : 0
        let entry = Entry(buffer: buffer, from: from, enqueuedAt: stamp)
        switch storage {
        case .ring(let ring): return push(entry, into: ring, fromGroup: fromGroup)
        case .locked(let store): return push(entry, into: store, fromGroup: fromGroup)
        }
    }

    /// Counts and releases a buffer this full `default` queue could not take
    /// from a sender that cannot keep it: a `taildrop` on arrival (naked to
    /// the sender on a `nak` queue).
    func refuse(_ buffer: Buffer, from: Int32) {
        counters.arrived.add()
        traceArrival(depth: depth)
        counters.dropped(.taildrop).add()
        release(buffer, droppedFor: .taildrop, from: from)
    }

    @inline(__always)
    private func push(_ entry: Entry, into ring: SPSCRing, fromGroup: Int) -> PushResult {
        guard let position = ring.push(entry) else {
            guard drops else { return .full }
            counters.arrived.bump()
            traceArrival(depth: size)
            counters.dropped(.taildrop).bump()
            release(entry.buffer, droppedFor: .taildrop, from: entry.from)
            return .dropped(.taildrop)
        }
        counters.arrived.bump()
        counters.bytesAccepted.bump(entry.buffer.size)
        if fromGroup == group { dirty.mark(affects) }
        let depth = position &+ 1 &- ring.cachedHead.pointee
        counters.maxDepth.raise(to: depth)
        traceArrival(depth: depth)
        if crossesThreads && consumerEvent.mayHaveWaiters && ring.wasEmpty(beforePushAt: position) {
            consumerEvent.wake()
        }
        return .accepted
    }

    private func push(_ entry: Entry, into store: LockedStore, fromGroup: Int) -> PushResult {
        let buffer = entry.buffer
        let outcome = store.push(entry, bytes: buffer.size, priority: buffer.priority, counters: counters)
        // Even a refused offer changes what the store expects next (its byte bound's hint).
        if fromGroup == group { dirty.mark(affects) }
        if outcome.kind != .full { traceArrival(depth: store.depth.load(ordering: .relaxed)) }
        switch outcome.kind {
        case .full:
            return .full
        case .dropped:
            release(buffer, droppedFor: outcome.reason, from: entry.from)
            return .dropped(outcome.reason)
        case .accepted:
            if let victim = outcome.victim {
                release(victim.buffer, droppedFor: outcome.reason, from: victim.from)
            }
            if outcome.wasEmpty && fromGroup != group { consumerEvent.notify() }
            return .accepted
        }
    }

    /// Counts a buffer that arrived (kept or dropped) in the thread's
    /// `queue_flow`. `depth` is the producer's view, which it already has:
    /// re-reading a ring's depth would fetch the consumer's cache line.
    @inline(__always)
    private func traceArrival(depth: @autoclosure () -> Int) {
        if Tracing.on(QG_TP_QUEUE_FLOW) { qg_flow_push(traceGraph, UInt32(index), UInt32(clamping: depth())) }
    }

    /// Drops a buffer its processor held (it failed, was late or was given
    /// up): it leaves the ack list, is counted and released.
    /// Without `count`, the drop was counted elsewhere (a process link's
    /// child counted it in its own row); without `nak`, the sender is not told.
    func dropHeld(_ buffer: Buffer, reason: DropReason, from: Int32, count: Bool = true, nak: Bool = true) {
        if sync == .ack { holding.removeAll { $0.buffer == buffer } }
        if count { counters.dropped(reason).add() }
        release(buffer, droppedFor: reason, from: from, nak: nak)
    }

    /// Releases the queue's hold on a dropped buffer, naking its sender on a
    /// `nak` queue (unless `nak` is false).
    func release(_ buffer: Buffer, droppedFor reason: DropReason, from: Int32, nak: Bool = true) {
        if Tracing.on(QG_TP_QUEUE_DROP) { qg_tp_queue_drop(traceGraph, UInt32(index), buffer.sequence, UInt8(reason.rawValue)) }
        if nak && sync == .nak && from >= 0 {
            counters.naks.add()
            if Tracing.on(QG_TP_FEEDBACK_NAK) {
                qg_tp_feedback_nak(traceGraph, UInt32(index), UInt32(from), buffer.sequence, UInt8(reason.rawValue))
            }
            engine.postFeedback(.nak(reason), buffer: buffer, to: Int(from))   // the hold travels with the nak
        } else {
            buffer.dropHold(fate: .dropped)
        }
    }

    // MARK: Departure (scheduler thread)

    @inline(__always)
    func pop() -> Entry? {
        let entry: Entry
        switch storage {
        case .ring(let ring):
            guard let (popped, publishedBefore) = ring.pop() else {
                consumerFoundEmpty(ring)
                return nil
            }
            entry = popped
            if let event = ringProducerEvent, event.mayHaveWaiters {
                ring.publishHead()
                if ring.wasFull(seenFrom: publishedBefore) { event.wake() }
            }
        case .locked(let store):
            guard let (popped, wasFull) = store.pop() else { return nil }
            entry = popped
            if wasFull { for event in producerEvents { event.notify() } }
        }
        dirty.mark(affects)
        counters.popped.bump()
        counters.bytesPopped.bump(entry.buffer.size)
        if Tracing.on(QG_TP_QUEUE_FLOW) { qg_flow_pop(traceGraph, UInt32(index), entry.buffer.sequence) }
        if entry.enqueuedAt != 0 {
            let waited = Int(monotonicNanoseconds() &- entry.enqueuedAt)
            counters.residencyTotal.bump(waited)
            counters.residencySamples.bump()
            counters.residencyMax.raise(to: waited)
        }
        return entry
    }

    /// The entry `pop` would give, left queued. Consumer thread only.
    func peek() -> Entry? {
        switch storage {
        case .ring(let ring): ring.peek()
        case .locked(let store): store.peek()
        }
    }

    /// Every queued entry in the order it would leave (a priority store's
    /// in no particular order), taken out uncounted: the caller puts each
    /// back or accounts for it. Consumer thread, or every thread parked.
    func takeAll() -> [Entry] {
        switch storage {
        case .ring(let ring):
            var entries: [Entry] = []
            while let (entry, _) = ring.pop() { entries.append(entry) }
            consumerFoundEmpty(ring)
            return entries
        case .locked(let store):
            return store.removeAll()
        }
    }

    /// Takes every queued buffer out and releases it as abandoned.
    func abandonQueued() {
        for entry in takeAll() {
            counters.abandoned.add()
            counters.bytesAbandoned.add(entry.buffer.size)
            entry.buffer.dropHold(fate: .abandoned)
        }
    }

    /// Payload bytes waiting now (a ring's from its counters, read at slightly different moments).
    var bytesQueued: Int {
        switch storage {
        case .ring: max(0, counters.bytesAccepted.value - counters.bytesPopped.value - counters.bytesAbandoned.value)
        case .locked(let store): store.bytes.load(ordering: .relaxed)
        }
    }

    /// Bytes the queue's own storage takes (its slots, not the buffers).
    var bytesAllocated: Int {
        switch storage {
        case .ring(let ring): ring.capacity * MemoryLayout<Entry>.stride
        case .locked(let store): store.bytesAllocated
        }
    }

    func statistics() -> QueueStatistics {
        var statistics = counters.snapshot(name: name, thread: group, depth: depth)
        (statistics.bytesQueued, statistics.bytesAllocated) = (bytesQueued, bytesAllocated)
        return statistics
    }
}

/// A fixed list of queues read on the hot path without reference counting.
/// The engine's `queues` array keeps every queue alive as long as the graph
/// exists; the owner of a list deallocates it in its `deinit`.
struct QueueRefs: @unchecked Sendable {
    private let refs: UnsafeMutableBufferPointer<Unmanaged<RunningQueue>>

    /// With `capacity` beyond the queues, the rest hold the first queue
    /// until `set` (they must not be read before).
    init(_ queues: [RunningQueue], capacity: Int? = nil) {
        let capacity = capacity ?? queues.count
        // An empty list (a sink's, or a queue's before wiring) allocates nothing.
        refs = capacity == 0 || queues.isEmpty ? UnsafeMutableBufferPointer(start: nil, count: 0) : .allocate(capacity: capacity)
        guard let first = queues.first else { return }
        _ = refs.initialize(from: (queues + Array(repeating: first, count: capacity - queues.count)).map { .passUnretained($0) })
    }

    /// Puts `queue` at `index` (while nobody reads the list).
    func set(_ index: Int, _ queue: RunningQueue) { refs[index] = .passUnretained(queue) }

    func deallocate() { refs.deallocate() }

    var count: Int { refs.count }
    var indices: Range<Int> { 0..<refs.count }

    /// Runs `body` with the queue at `index`, borrowed.
    @inline(__always)
    func with<R>(_ index: Int, _ body: (RunningQueue) throws -> R) rethrows -> R {
        try refs[index]._withUnsafeGuaranteedRef(body)
    }
}
