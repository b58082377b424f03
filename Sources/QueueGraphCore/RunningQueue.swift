import Synchronization

/// A queue of a running graph: its store, counters, processor and wiring.
///
/// Threading: `push` may be called by any producer (its upstream queues'
/// threads, external input); everything else runs on the thread of the
/// queue's scheduler group, except the read-only `depth`/`isFull` and the
/// counters.
final class RunningQueue: @unchecked Sendable {
    let index: Int
    let config: QueueConfig
    let name: String
    let group: Int
    let processor: any BufferProcessor
    let source: (any BufferSource)?
    /// Lock-free path: FIFO, default or taildrop, one upstream queue, no byte bound.
    let ring: SPSCRing?
    /// Everything else.
    let store: LockedStore?
    let counters = QueueCounters()
    let isInput: Bool
    let sync: BufferSync
    let buffers: BufferManagement
    let drops: Bool
    let sampleMask: UInt64

    /// Set once while building, before any thread runs.
    var outs: ContiguousArray<RunningQueue> = []
    var consumerEvent: WakeEvent!
    var producerEvents: [WakeEvent] = []
    var ownCreator: (any BufferCreator)?
    var acquireCreators: [any BufferCreator] = []
    var context: ProcessContext!
    unowned(unsafe) var engine: GraphEngine! = nil

    /// Woken when room appears, for external producers that wait.
    let spaceEvent = WakeEvent()
    /// Upstream connections (plus external input) that have not ended.
    let pendingUpstream: Atomic<Int>
    let ended = Atomic<Bool>(false)
    /// External input has said end-of-stream.
    let inputClosed = Atomic<Bool>(false)

    // Scheduler-thread state.
    @exclusivity(unchecked) var finished = false
    @exclusivity(unchecked) var sourceBlockedOnBuffer = false
    @exclusivity(unchecked) var sourceWaitUntil: UInt64 = 0
    /// Buffers the processor holds on an `ack` queue, with their sender.
    @exclusivity(unchecked) var holding: [(buffer: Unmanaged<Buffer>, from: Int32)] = []

    init(index: Int, config: QueueConfig, group: Int, predecessors: Int, processor: any BufferProcessor,
         sampleInterval: Int) {
        self.index = index
        self.config = config
        self.name = config.name
        self.group = group
        self.sync = config.sync
        self.buffers = config.buffers
        self.drops = config.management.drops
        self.processor = processor
        self.source = processor as? any BufferSource
        isInput = predecessors == 0 && source == nil
        let useRing = config.discipline == .fifo && predecessors == 1 && config.byteBound == nil
            && (config.management == .default || config.management == .taildrop)
        ring = useRing ? SPSCRing(size: config.size) : nil
        store = useRing ? nil : LockedStore(size: config.size, byteBound: config.byteBound,
                                            discipline: config.discipline, management: config.management)
        pendingUpstream = Atomic(predecessors + (isInput ? 1 : 0))
        var interval = 1
        while interval < sampleInterval { interval <<= 1 }
        sampleMask = UInt64(interval - 1)
        if config.sync == .ack { holding.reserveCapacity(config.size + 4) }
    }

    // MARK: Fill level

    var depth: Int { ring?.count ?? store!.depth.load(ordering: .relaxed) }

    /// At its size (or byte bound): a `default` queue takes nothing more.
    var isFull: Bool {
        if let ring { return ring.count >= ring.size }
        return store!.isFull
    }

    // MARK: Arrival (any producer thread)

    /// Offers a buffer whose hold the caller gives up unless the result is `.full`.
    /// `fromGroup` is the producer's scheduler group, or -1 for external input.
    @inline(__always)
    func push(_ buffer: Buffer, from: Int32, fromGroup: Int) -> PushResult {
        if ended.load(ordering: .relaxed) {
            counters.arrived.add()
            counters.dropped(.closed).add()
            release(buffer, droppedFor: .closed, from: from)
            return .closed
        }
        let stamp: UInt64 = buffer.sequence & sampleMask == 0 ? monotonicNanoseconds() : 0
        let entry = Entry(buffer: .passUnretained(buffer), from: from, enqueuedAt: stamp)
        if let ring {
            guard let wasEmpty = ring.push(entry) else {
                guard config.management == .taildrop else { return .full }
                counters.arrived.bump()
                counters.dropped(.taildrop).bump()
                release(buffer, droppedFor: .taildrop, from: from)
                return .dropped(.taildrop)
            }
            counters.arrived.bump()
            counters.maxDepth.raise(to: ring.tail.value.load(ordering: .relaxed) &- ring.tail.cachedOther)
            if wasEmpty && fromGroup != group { consumerEvent.notifyAfterSequentiallyConsistentStore() }
            return .accepted
        }
        let outcome = store!.push(entry, bytes: buffer.size, priority: buffer.priority, counters: counters)
        switch outcome.kind {
        case .full:
            return .full
        case .dropped:
            release(buffer, droppedFor: outcome.reason, from: from)
            return .dropped(outcome.reason)
        case .accepted:
            if let victim = outcome.victim {
                release(victim.buffer.takeUnretainedValue(), droppedFor: outcome.reason, from: victim.from)
            }
            if outcome.wasEmpty && fromGroup != group { consumerEvent.notify() }
            return .accepted
        }
    }

    /// Releases the queue's hold on a dropped buffer, naking its sender on a `nak` queue.
    func release(_ buffer: Buffer, droppedFor reason: DropReason, from: Int32) {
        if sync == .nak && from >= 0 {
            counters.naks.add()
            engine.postFeedback(.nak(reason), buffer: buffer, to: Int(from))   // the hold travels with the nak
        } else {
            buffer.dropHold(fate: .dropped)
        }
    }

    // MARK: Departure (scheduler thread)

    @inline(__always)
    func pop() -> Entry? {
        let popped: (entry: Entry, wasFull: Bool)?
        if let ring { popped = ring.pop() } else { popped = store!.pop() }
        guard let (entry, wasFull) = popped else { return nil }
        counters.popped.bump()
        counters.bytesPopped.bump(entry.buffer.takeUnretainedValue().size)
        if entry.enqueuedAt != 0 {
            let waited = Int(monotonicNanoseconds() &- entry.enqueuedAt)
            counters.residencyTotal.bump(waited)
            counters.residencySamples.bump()
            counters.residencyMax.raise(to: waited)
        }
        if wasFull {
            for event in producerEvents { event.notify() }
        }
        return entry
    }

    /// Takes every queued buffer out and releases it as abandoned.
    func abandonQueued() {
        var entries: [Entry] = []
        if let ring {
            while let (entry, _) = ring.pop() { entries.append(entry) }
        } else {
            entries = store!.removeAll()
        }
        for entry in entries {
            counters.abandoned.add()
            entry.buffer.takeUnretainedValue().dropHold(fate: .abandoned)
        }
    }

    func statistics() -> QueueStatistics { counters.snapshot(name: name, thread: group, depth: depth) }
}
