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

    private struct State {
        var deque: Deque<Entry>
        var heap: Heap<Prioritised>
        var bytes = 0
        var arrivals: UInt64 = 0
        var red: REDState?
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

    init(size: Int, byteBound: Int?, discipline: QueueDiscipline, management: QueueManagement) {
        self.size = size
        self.byteBound = byteBound
        self.discipline = discipline
        self.management = management
        var red: REDState?
        if case .red(let parameters) = management { red = REDState(parameters) }
        var deque = Deque<Entry>()
        var heap = Heap<Prioritised>()
        if discipline == .prio { heap.reserveCapacity(size + 1) } else { deque.reserveCapacity(size + 1) }
        state = Locked(State(deque: deque, heap: heap, red: red))
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
            var count = discipline == .prio ? s.heap.count : s.deque.count
            let countFull = count >= size
            if case .red = management, s.red!.shouldDrop(depth: count, capacity: size) {
                counters.arrived.bump()
                counters.dropped(.red).bump()
                return StoreOutcome(kind: .dropped, reason: .red)
            }
            var outcome = StoreOutcome(kind: .accepted)
            if Self.isFull(count: count, bytes: s.bytes, incoming: incoming, size: size, byteBound: byteBound) {
                switch management {
                case .default:
                    return StoreOutcome(kind: .full)
                case .taildrop, .red:
                    let reason: DropReason = countFull ? .taildrop : .bytes
                    counters.arrived.bump()
                    counters.dropped(reason).bump()
                    return StoreOutcome(kind: .dropped, reason: reason)
                case .headdrop:
                    // One victim makes room for one buffer; under a byte bound
                    // the queue may stay over its bound until the next pop.
                    let victim = discipline == .prio ? s.heap.popMin()!.entry : s.deque.removeFirst()
                    s.bytes -= victim.buffer.size
                    count -= 1
                    counters.dropped(.headdrop).bump()
                    outcome.victim = victim
                    outcome.reason = .headdrop
                }
            }
            outcome.wasEmpty = count == 0
            if discipline == .prio {
                s.heap.insert(Prioritised(entry: entry, priority: priority, arrival: s.arrivals))
            } else {
                s.deque.append(entry)
            }
            s.arrivals &+= 1
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
            let count = discipline == .prio ? s.heap.count : s.deque.count
            guard count > 0 else { return nil }
            let wasFull = Self.isFull(count: count, bytes: s.bytes, incoming: lastOffered.load(ordering: .relaxed),
                                      size: size, byteBound: byteBound)
            let entry: Entry
            switch discipline {
            case .fifo: entry = s.deque.removeFirst()
            case .lifo: entry = s.deque.removeLast()
            case .prio: entry = s.heap.popMax()!.entry
            }
            s.bytes -= entry.buffer.size
            depth.store(count - 1, ordering: .relaxed)
            bytes.store(s.bytes, ordering: .relaxed)
            return (entry, wasFull)
        }
    }

    /// The entry `pop` would give, left in the store.
    func peek() -> Entry? {
        state.withLock { s in
            switch discipline {
            case .fifo: s.deque.first
            case .lifo: s.deque.last
            case .prio: s.heap.max?.entry
            }
        }
    }

    /// Takes every entry out (for an abandoning stop).
    func removeAll() -> [Entry] {
        state.withLock { s in
            let all = s.deque.elements + s.heap.unordered.map(\.entry)
            s.deque.removeAll()
            s.heap = Heap()
            s.bytes = 0
            depth.store(0, ordering: .relaxed)
            bytes.store(0, ordering: .relaxed)
            return all
        }
    }
}
