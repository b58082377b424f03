import DequeModule
import HeapModule
import Synchronization

/// What happened to a buffer offered to a queue's store.
struct StoreOutcome {
    enum Kind { case accepted, dropped, full }
    var kind: Kind
    /// Accepted into an empty store: its consumer may be asleep.
    var wasEmpty = false
    /// Why the arrival (`.dropped`) or the victim was dropped.
    var reason: DropReason = .taildrop
    /// A queued entry dropped to make room (`headdrop`).
    var victim: Entry?
}

/// A queue's buffers under one lock: every discipline, management policy and
/// byte bound. Used where the lock-free ring does not fit (several producers,
/// LIFO, PRIO, headdrop, RED, byte bounds, external input).
///
/// Threading: any thread may push; one consumer pops. `depth` and `bytes` can
/// be read without the lock.
final class LockedStore: @unchecked Sendable {
    private struct Prioritised: Comparable {
        var entry: Entry
        var priority: Int
        var arrival: UInt64
        static func == (a: Self, b: Self) -> Bool { a.arrival == b.arrival }
        /// Greater goes first: higher priority, then earlier arrival.
        static func < (a: Self, b: Self) -> Bool {
            a.priority != b.priority ? a.priority < b.priority : a.arrival > b.arrival
        }
    }

    /// The waiting buffers, in the structure the discipline needs (one of
    /// `deque`, `heap` or `custom` is used), and the arrival-side state.
    private struct State {
        var deque: Deque<Entry>
        var heap: Heap<Prioritised>
        var custom: (any QueueDisciplineHandler)?
        var manager: (any QueueManagementHandler)?
        var bytes = 0
        var arrivals: UInt64 = 0
        var red: REDState?

        var count: Int { custom?.count ?? (deque.count + heap.count) }

        mutating func insert(_ entry: Entry, priority: Int, discipline: QueueDiscipline) {
            switch discipline {
            case .fifo, .lifo: deque.append(entry)
            case .prio: heap.insert(Prioritised(entry: entry, priority: priority, arrival: arrivals))
            case .custom: custom!.insert(WaitingBuffer(entry: entry))
            }
            arrivals &+= 1
        }

        func next(_ discipline: QueueDiscipline) -> Entry? {
            switch discipline {
            case .fifo: deque.first
            case .lifo: deque.last
            case .prio: heap.max?.entry
            case .custom: custom!.next()?.entry
            }
        }

        mutating func removeNext(_ discipline: QueueDiscipline) -> Entry? {
            switch discipline {
            case .fifo: deque.popFirst()
            case .lifo: deque.popLast()
            case .prio: heap.popMax()?.entry
            case .custom: custom!.removeNext()?.entry
            }
        }

        /// The one to drop to make room: the oldest, the lowest priority, or the custom discipline's choice.
        mutating func removeLeastWanted(_ discipline: QueueDiscipline) -> Entry? {
            switch discipline {
            case .fifo, .lifo: deque.popFirst()
            case .prio: heap.popMin()?.entry
            case .custom: custom!.removeLeastWanted()?.entry
            }
        }

        mutating func removeAll() -> [Entry] {
            defer { (deque, heap) = (Deque(), Heap()) }
            return deque.elements + heap.unordered.map(\.entry) + (custom?.removeAll().map(\.entry) ?? [])
        }
    }

    let size: Int
    let byteBound: Int?
    let discipline: QueueDiscipline
    let management: QueueManagement
    private let state: Locked<State>
    let depth = Atomic<Int>(0)
    let bytes = Atomic<Int>(0)
    /// Under a byte bound, the size of the last buffer offered: the size
    /// `isFull` expects of the next one, so that a queue too full for it
    /// is full to the scheduler too (and its producer waits instead of
    /// offering it again and again).
    private let lastOffered = Atomic<Int>(1)
    /// Buffers a `default` store takes beyond its size: one per upstream
    /// queue but the first. The scheduler runs a producer only while the
    /// store has room, but producers on several threads can each see the last
    /// free place and push at once; the overshoot takes them (back-pressure
    /// holds, nothing is dropped), and the store is full until it is back
    /// under its size.
    let overshoot: Int

    init(size: Int, byteBound: Int?, discipline: QueueDiscipline, management: QueueManagement, producers: Int = 1) {
        self.size = size
        overshoot = management == .default ? max(0, producers - 1) : 0
        self.byteBound = byteBound
        self.discipline = discipline
        self.management = management
        var state = State(deque: Deque(), heap: Heap())
        switch management {
        case .red(let parameters): state.red = REDState(parameters)
        case .custom(let custom): state.manager = custom.make()
        default: break
        }
        switch discipline {
        case .prio: state.heap.reserveCapacity(size + overshoot + 1)
        case .custom(let custom): state.custom = custom.make()
        default: state.deque.reserveCapacity(size + overshoot + 1)
        }
        self.state = Locked(state)
    }

    /// Whether another buffer of `incoming` bytes would not fit now.
    @inline(__always)
    private static func isFull(count: Int, bytes: Int, incoming: Int, size: Int, byteBound: Int?) -> Bool {
        if count >= size { return true }
        if let byteBound, count > 0, bytes + incoming > byteBound { return true }
        return false
    }

    /// Whether the store is at its size, or has no room under its byte bound
    /// for a buffer the size of the last one offered; readable from any thread.
    var isFull: Bool {
        Self.isFull(count: depth.load(ordering: .relaxed), bytes: bytes.load(ordering: .relaxed),
                    incoming: lastOffered.load(ordering: .relaxed), size: size, byteBound: byteBound)
    }

    /// Offers an entry; updates the arrival-side counters under the lock.
    func push(_ entry: Entry, bytes incoming: Int, priority: Int, counters: QueueCounters) -> StoreOutcome {
        if byteBound != nil { lastOffered.store(max(incoming, 1), ordering: .relaxed) }
        return state.withLock { s in
            var count = s.count
            if case .red = management, s.red!.shouldDrop(depth: count, capacity: size) {
                counters.arrived.bump()
                counters.dropped(.red).bump()
                return StoreOutcome(kind: .dropped, reason: .red)
            }
            var outcome = StoreOutcome(kind: .accepted)
            let full = Self.isFull(count: count, bytes: s.bytes, incoming: incoming, size: size, byteBound: byteBound)
            var makeRoom: DropReason?
            if let manager = s.manager {
                switch manager.admit(entry.buffer, depth: count, bytes: s.bytes, size: size) {
                case .accept: if full { return StoreOutcome(kind: .full) }
                case .refuse: return StoreOutcome(kind: .full)
                case .dropArrival:
                    counters.arrived.bump()
                    counters.dropped(.policy).bump()
                    return StoreOutcome(kind: .dropped, reason: .policy)
                case .dropLeastWanted: if count > 0 { makeRoom = .policy } else if full { return StoreOutcome(kind: .full) }
                }
            } else if full {
                switch management {
                case .default where count < size + overshoot
                        && !Self.isFull(count: 0, bytes: s.bytes, incoming: incoming, size: size, byteBound: byteBound):
                    break   // a producer that raced another for the last place
                case .default, .custom:
                    return StoreOutcome(kind: .full)
                case .taildrop, .red:
                    let reason: DropReason = count >= size ? .taildrop : .bytes
                    counters.arrived.bump()
                    counters.dropped(reason).bump()
                    return StoreOutcome(kind: .dropped, reason: reason)
                case .headdrop:
                    makeRoom = .headdrop
                }
            }
            if let reason = makeRoom {
                // One victim makes room for one buffer; under a byte bound
                // the queue may stay over its bound until the next pop.
                let victim = s.removeLeastWanted(discipline)!
                s.bytes -= victim.buffer.size
                count -= 1
                counters.dropped(reason).bump()
                (outcome.victim, outcome.reason) = (victim, reason)
            }
            outcome.wasEmpty = count == 0
            s.insert(entry, priority: priority, discipline: discipline)
            s.bytes += incoming
            counters.arrived.bump()
            counters.maxDepth.raise(to: count + 1)
            depth.store(count + 1, ordering: .relaxed)
            bytes.store(s.bytes, ordering: .relaxed)
            return outcome
        }
    }

    /// Consumer only. The next entry by discipline, and whether the store was full before.
    func pop() -> (entry: Entry, wasFull: Bool)? {
        state.withLock { s -> (entry: Entry, wasFull: Bool)? in
            let count = s.count
            guard count > 0, let entry = s.removeNext(discipline) else { return nil }
            let wasFull = Self.isFull(count: count, bytes: s.bytes, incoming: lastOffered.load(ordering: .relaxed),
                                      size: size, byteBound: byteBound)
            s.bytes -= entry.buffer.size
            depth.store(count - 1, ordering: .relaxed)
            bytes.store(s.bytes, ordering: .relaxed)
            return (entry, wasFull)
        }
    }

    /// Bytes its slots take (the buffers belong to their pools).
    var bytesAllocated: Int { (size + overshoot + 1) * MemoryLayout<Entry>.stride }

    /// The entry `pop` would give, left in the store.
    func peek() -> Entry? { state.withLock { $0.next(discipline) } }

    /// Puts entries back without policy (they were admitted before; a queue changed live).
    func adopt(_ entries: [Entry]) {
        state.withLock { s in
            for entry in entries {
                s.insert(entry, priority: entry.buffer.priority, discipline: discipline)
                s.bytes += entry.buffer.size
            }
            depth.store(s.count, ordering: .relaxed)
            bytes.store(s.bytes, ordering: .relaxed)
        }
    }

    /// Takes every entry out (for an abandoning stop).
    func removeAll() -> [Entry] {
        state.withLock { s in
            let all = s.removeAll()
            s.bytes = 0
            depth.store(0, ordering: .relaxed)
            bytes.store(0, ordering: .relaxed)
            return all
        }
    }
}
