import Atomics

/// Atomic words, each on its own cache line, in one allocation. They are
/// plain pointers, so the hot path reads and writes them without reference
/// counting. The owner calls `deallocate()` in its `deinit`.
struct AtomicLines: @unchecked Sendable {
    /// Bytes from one word to the next: a pair of 64-byte lines, since CPUs
    /// fetch lines in adjacent pairs, so two threads writing neighbours 64
    /// bytes apart can still slow each other down (docs/performance.md,
    /// issue 17: a small gain in `hop`, near the machine's noise).
    static let lineSize = 128
    private let base: UnsafeMutableRawPointer
    private let spacing: Int

    /// `count` words, `spacing` bytes apart: pass 64 for words one thread
    /// writes and others only read now and then (statistics).
    init(count: Int, spacing: Int = lineSize) {
        self.spacing = spacing
        base = .allocate(byteCount: count * spacing, alignment: spacing)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: count * spacing)
    }

    func deallocate() { base.deallocate() }

    /// The atomic word at the start of line `index`.
    @inline(__always)
    func atomic(_ index: Int) -> UnsafeAtomic<Int> {
        UnsafeAtomic(at: (base + index * spacing).assumingMemoryBound(to: UnsafeAtomic<Int>.Storage.self))
    }

    /// A plain word beside the atomic one on line `index`, for the line's
    /// owner thread only (a cached copy of another thread's index).
    @inline(__always)
    func ownerWord(_ index: Int) -> UnsafeMutablePointer<Int> {
        (base + index * spacing + MemoryLayout<Int>.stride).assumingMemoryBound(to: Int.self)
    }

    /// A statistics counter on line `index`, or on the line's `word`-th word
    /// (a second counter the same thread writes at the same time).
    @inline(__always)
    func counter(_ index: Int, word: Int = 0) -> Counter {
        Counter(atomic: UnsafeAtomic(at: (base + index * spacing + word * MemoryLayout<Int>.stride).assumingMemoryBound(to: UnsafeAtomic<Int>.Storage.self)))
    }
}

/// A statistics counter that other threads may read at any time.
///
/// `bump`/`raise` are plain load-and-store (no locked instruction): use them
/// only where writes are serialised (one writing thread, or under a lock).
/// `add` is an atomic read-modify-write for counters written from anywhere.
struct Counter {
    let atomic: UnsafeAtomic<Int>

    var value: Int { atomic.load(ordering: .relaxed) }

    @inline(__always)
    func bump(_ n: Int = 1) { atomic.store(atomic.load(ordering: .relaxed) &+ n, ordering: .relaxed) }

    @inline(__always)
    func raise(to n: Int) { if n > atomic.load(ordering: .relaxed) { atomic.store(n, ordering: .relaxed) } }

    @inline(__always)
    func add(_ n: Int = 1) { atomic.wrappingIncrement(by: n, ordering: .relaxed) }
}

/// The live counters of one queue. Arrival-side counters are written by the
/// producer (serialised by the ring's single producer or the store's lock),
/// departure-side ones by the consumer thread, rare ones atomically.
///
/// One counter per 64-byte line; the two arrival-side ones share the first
/// pair of lines and the departure side starts on the next pair, so the
/// producer's and the consumer's writes never meet in a fetched pair.
final class QueueCounters: @unchecked Sendable {
    private let lines = AtomicLines(count: 10 + DropReason.allCases.count, spacing: 64)

    deinit { lines.deallocate() }

    var arrived: Counter { lines.counter(0) }
    /// Payload bytes of the buffers a ring accepted (beside `arrived`: no line more to write).
    var bytesAccepted: Counter { lines.counter(0, word: 1) }
    /// Payload bytes a ring released unprocessed at an abandoning stop (beside `abandoned`).
    var bytesAbandoned: Counter { lines.counter(9, word: 1) }
    var maxDepth: Counter { lines.counter(1) }
    var popped: Counter { lines.counter(2) }
    var bytesPopped: Counter { lines.counter(3) }
    var residencyTotal: Counter { lines.counter(4) }
    var residencySamples: Counter { lines.counter(5) }
    var residencyMax: Counter { lines.counter(6) }
    var acks: Counter { lines.counter(7) }
    var naks: Counter { lines.counter(8) }
    var abandoned: Counter { lines.counter(9) }

    @inline(__always)
    func dropped(_ reason: DropReason) -> Counter { lines.counter(10 + reason.rawValue) }
}
