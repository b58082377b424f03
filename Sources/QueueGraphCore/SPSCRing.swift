import Synchronization

/// One queued buffer: the buffer (unretained: its creator keeps it alive),
/// the queue that sent it, and when it arrived (0 when not sampled).
struct Entry {
    var buffer: Unmanaged<Buffer>
    var from: Int32
    var enqueuedAt: UInt64
}

/// A cache-line-padded index with the other side's index cached beside it.
final class RingIndex {
    private var padBefore: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
    let value = Atomic<Int>(0)
    /// The other side's index as last read by this side (owner thread only).
    @exclusivity(unchecked) var cachedOther = 0
    private var padAfter: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
}

/// Lock-free single-producer single-consumer ring of `Entry` values, used by
/// FIFO queues with one upstream queue and no byte bound.
///
/// Entries carry `Unmanaged` references, so no retain can be moved past the
/// publishing store (field notes, pitfall P1). Index stores are sequentially
/// consistent so that the wake check after them needs no extra fence.
final class SPSCRing: @unchecked Sendable {
    let size: Int
    private let mask: Int
    private let slots: UnsafeMutablePointer<Entry>
    let head = RingIndex()   // written by the consumer
    let tail = RingIndex()   // written by the producer

    init(size: Int) {
        self.size = size
        var capacity = 1
        while capacity < size { capacity <<= 1 }
        mask = capacity - 1
        slots = .allocate(capacity: capacity)
    }

    deinit { slots.deallocate() }

    /// Approximate depth, readable from any thread.
    var count: Int { tail.value.load(ordering: .relaxed) &- head.value.load(ordering: .relaxed) }

    /// Producer only. Returns nil when full; otherwise whether the ring was empty before.
    @inline(__always)
    func push(_ entry: Entry) -> Bool? {
        let t = tail.value.load(ordering: .relaxed)
        if t &- tail.cachedOther >= size {
            tail.cachedOther = head.value.load(ordering: .acquiring)
            if t &- tail.cachedOther >= size { return nil }
        }
        (slots + (t & mask)).initialize(to: entry)
        tail.value.store(t &+ 1, ordering: .sequentiallyConsistent)
        let h = head.value.load(ordering: .sequentiallyConsistent)
        tail.cachedOther = h
        return h == t
    }

    /// Consumer only. Returns the oldest entry and whether the ring was full before.
    @inline(__always)
    func pop() -> (entry: Entry, wasFull: Bool)? {
        let h = head.value.load(ordering: .relaxed)
        if h == head.cachedOther {
            head.cachedOther = tail.value.load(ordering: .acquiring)
            if h == head.cachedOther { return nil }
        }
        let entry = (slots + (h & mask)).move()
        head.value.store(h &+ 1, ordering: .sequentiallyConsistent)
        let t = tail.value.load(ordering: .sequentiallyConsistent)
        head.cachedOther = t
        return (entry, t &- h >= size)
    }
}
