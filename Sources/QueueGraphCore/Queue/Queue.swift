/// A queue on its own, outside any graph (the seed's `QueueConfig::createQueue`):
/// its config's size, byte bound, management and discipline, over buffers an
/// application queues itself, with the seed's `add`, `peek` and `remove`.
/// The same store and policies as a graph's queues, and the same counters.
///
/// Buffers are handles: a buffer added goes in with the caller's hold; one
/// the queue drops comes back in the result, for the caller to release.
///
/// Threading: any thread may `add`; one thread at a time may `peek` and
/// `remove`; `count`, `bytes` and `statistics()` from any thread.
public final class Queue: @unchecked Sendable {
    /// What became of a buffer offered to `add` (a value; any thread).
    public enum Admission: Sendable {
        /// Queued.
        case accepted
        /// Queued, after dropping `victim`, an older buffer (`headdrop`): release it.
        case acceptedDropping(victim: Buffer)
        /// Not queued, dropped for `reason` (`taildrop`, `red`, a byte bound): release it.
        case dropped(DropReason)
        /// Not queued: a `default` queue is full and never drops. The caller keeps it.
        case full
    }

    public let config: QueueConfig
    private let store: LockedStore
    private let counters = QueueCounters()

    init(config: QueueConfig) {
        self.config = config
        store = LockedStore(size: config.size, byteBound: config.byteBound, discipline: config.discipline, management: config.management)
    }

    /// Offers a buffer, under the queue's management.
    public func add(_ buffer: Buffer) -> Admission {
        let outcome = store.push(Entry(buffer: buffer, from: -1, enqueuedAt: 0), bytes: buffer.size, priority: buffer.priority, counters: counters)
        switch outcome.kind {
        case .accepted: return outcome.victim.map { .acceptedDropping(victim: $0.buffer) } ?? .accepted
        case .dropped: return .dropped(outcome.reason)
        case .full: return .full
        }
    }

    /// The buffer `remove` would take, left queued.
    public func peek() -> Buffer? { store.peek()?.buffer }

    /// Takes the next buffer by the queue's discipline; the caller now holds it.
    public func remove() -> Buffer? {
        guard let (entry, _) = store.pop() else { return nil }
        counters.popped.bump()
        counters.bytesPopped.bump(entry.buffer.size)
        return entry.buffer
    }

    /// Buffers queued now.
    public var count: Int { store.depth.load(ordering: .relaxed) }
    /// Payload bytes queued now.
    public var bytes: Int { store.bytes.load(ordering: .relaxed) }

    /// Its counters, as a graph's queues report them (thread 0).
    public func statistics() -> QueueStatistics {
        var statistics = counters.snapshot(name: config.name, thread: 0, depth: count)
        (statistics.bytesQueued, statistics.bytesAllocated) = (bytes, store.bytesAllocated)
        return statistics
    }
}

extension QueueConfig {
    /// A queue on its own with this config's size, byte bound, management and
    /// discipline (its processor, creator, threading and sync belong to
    /// graphs, and are not used).
    public func createQueue() -> Queue { Queue(config: self) }
}
