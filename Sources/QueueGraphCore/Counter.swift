import Synchronization

/// A statistics counter that other threads may read at any time.
///
/// `bump`/`raise` are plain load-and-store (no locked instruction): use them
/// only where writes are serialised (one writing thread, or under a lock).
/// `add` is an atomic read-modify-write for counters written from anywhere.
final class Counter: @unchecked Sendable {
    private let storage = Atomic<Int>(0)
    /// Keeps counters written by different threads off each other's cache line.
    private let padding: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)

    var value: Int { storage.load(ordering: .relaxed) }

    @inline(__always)
    func bump(_ n: Int = 1) { storage.store(storage.load(ordering: .relaxed) &+ n, ordering: .relaxed) }

    @inline(__always)
    func raise(to n: Int) { if n > storage.load(ordering: .relaxed) { storage.store(n, ordering: .relaxed) } }

    @inline(__always)
    func add(_ n: Int = 1) { storage.wrappingAdd(n, ordering: .relaxed) }
}

/// The live counters of one queue. Arrival-side counters are written by the
/// producer (serialised by the ring's single producer or the store's lock),
/// departure-side ones by the consumer thread, rare ones atomically.
final class QueueCounters: @unchecked Sendable {
    let arrived = Counter()
    let popped = Counter()
    let maxDepth = Counter()
    let bytesPopped = Counter()
    let residencyTotal = Counter()
    let residencySamples = Counter()
    let residencyMax = Counter()
    let acks = Counter()
    let naks = Counter()
    let abandoned = Counter()
    let drops: [Counter] = DropReason.allCases.map { _ in Counter() }

    @inline(__always)
    func dropped(_ reason: DropReason) -> Counter { drops[reason.rawValue] }
}
