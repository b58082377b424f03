import Atomics

/// One queued buffer: the buffer (a handle: its creator keeps it alive),
/// the queue that sent it, and when it arrived (0 when not sampled).
struct Entry {
    var buffer: Buffer
    var from: Int32
    var enqueuedAt: UInt64
}

/// Lock-free single-producer single-consumer ring of `Entry` values, used by
/// FIFO queues with one upstream queue and no byte bound.
///
/// Entries carry no reference-counted values, so no retain can be moved past
/// the publishing store (field notes, pitfall P1). Index stores are release
/// stores: the wake check after them relies on the waiter's side of
/// `WakeEvent`'s asymmetric fence, so the hot path has no locked instruction. Each
/// side reads the other's index only when its cached copy says empty (or
/// full), or when the other side may be asleep.
///
/// The consumer publishes its index once every `publishEvery` pops, and
/// through `publishHead()`, which its queue calls whenever it finds the ring
/// empty or a producer may be waiting (MCRingBuffer's batched control
/// updates): between two publications the producer, polling for room, reads
/// a line that has not changed instead of pulling it from the consumer's
/// core at every pop. Until then the producer sees up to `publishEvery - 1`
/// slots fewer than are free.
///
/// A value of plain pointers (no reference counting on the hot path); the
/// owning queue calls `deallocate()` in its `deinit`.
struct SPSCRing: @unchecked Sendable {
    let size: Int
    private let mask: Int
    /// Slots allocated (`size` rounded up to a power of two).
    var capacity: Int { mask + 1 }
    private let publishEvery: Int
    private let slots: UnsafeMutablePointer<Entry>
    /// Line 0: the consumer's published index; line 1: the producer's tail
    /// and its cached head; line 2, the consumer's own: its index and its
    /// cached tail.
    private let lines = AtomicLines(count: 3)

    /// A ring of `size` entries whose consumer publishes its index every
    /// `publishEvery` pops (1: at every pop, as a ring on one thread must).
    init(size: Int, publishEvery: Int = 1) {
        self.size = size
        self.publishEvery = max(1, min(publishEvery, size / 4))
        var capacity = 1
        while capacity < size { capacity <<= 1 }
        mask = capacity - 1
        slots = .allocate(capacity: capacity)
    }

    func deallocate() {
        slots.deallocate()
        lines.deallocate()
    }

    private var head: UnsafeAtomic<Int> { lines.atomic(0) }
    private var tail: UnsafeAtomic<Int> { lines.atomic(1) }
    /// The consumer's index as the producer last read it (producer only).
    var cachedHead: UnsafeMutablePointer<Int> { lines.ownerWord(1) }
    /// The consumer's index, ahead of `head` by the pops not yet published;
    /// atomic only so that statistics may read it.
    private var localHead: UnsafeAtomic<Int> { lines.atomic(2) }
    private var cachedTail: UnsafeMutablePointer<Int> { lines.ownerWord(2) }

    /// Approximate depth, readable from any thread.
    var count: Int { tail.load(ordering: .relaxed) &- localHead.load(ordering: .relaxed) }

    /// The depth as the producer sees it, without touching the consumer's
    /// index (another core's cache line) while the cached one says the ring
    /// is under half full. Never less than the true depth. Producer only.
    @inline(__always)
    var countSeenByProducer: Int {
        let t = tail.load(ordering: .relaxed)
        if (t &- cachedHead.pointee) &* 2 >= size { cachedHead.pointee = head.load(ordering: .acquiring) }
        return t &- cachedHead.pointee
    }

    /// Whether the ring is empty, reading the producer's index only when
    /// the cached copy says so. Consumer only.
    @inline(__always)
    var isEmptySeenByConsumer: Bool {
        let h = localHead.load(ordering: .relaxed)
        if h != cachedTail.pointee { return false }
        cachedTail.pointee = tail.load(ordering: .acquiring)
        return h == cachedTail.pointee
    }

    /// Publishes the consumer's index now; returns the index published
    /// before, the last the producer could have seen. Consumer only.
    @inline(__always)
    @discardableResult
    func publishHead() -> Int {
        let published = head.load(ordering: .relaxed)
        let h = localHead.load(ordering: .relaxed)
        if published != h { head.store(h, ordering: .releasing) }
        return published
    }

    /// Whether the producer, having last seen the consumer's index at
    /// `published`, could have found the ring full. Reads the producer's
    /// index: call it only when a producer may be asleep. Consumer only.
    func wasFull(seenFrom published: Int) -> Bool { tail.load(ordering: .acquiring) &- published >= size }

    /// Producer only. Returns the entry's position, or nil when full.
    @inline(__always)
    func push(_ entry: Entry) -> Int? {
        let t = tail.load(ordering: .relaxed)
        if t &- cachedHead.pointee >= size {
            cachedHead.pointee = head.load(ordering: .acquiring)
            if t &- cachedHead.pointee >= size { return nil }
        }
        (slots + (t & mask)).initialize(to: entry)
        tail.store(t &+ 1, ordering: .releasing)
        return t
    }

    /// Consumer only. Returns the oldest entry, and the consumer's index
    /// as it was published before this pop.
    @inline(__always)
    func pop() -> (entry: Entry, publishedBefore: Int)? {
        let h = localHead.load(ordering: .relaxed)
        if h == cachedTail.pointee {
            cachedTail.pointee = tail.load(ordering: .acquiring)
            if h == cachedTail.pointee { return nil }
        }
        let entry = (slots + (h & mask)).move()
        localHead.store(h &+ 1, ordering: .relaxed)
        let published = head.load(ordering: .relaxed)
        if h &+ 1 &- published >= publishEvery { head.store(h &+ 1, ordering: .releasing) }
        return (entry, published)
    }

    /// Consumer only. The oldest entry, left in the ring.
    func peek() -> Entry? {
        isEmptySeenByConsumer ? nil : (slots + (localHead.load(ordering: .relaxed) & mask)).pointee
    }

    /// After `push` returned `position`: whether the ring was empty before
    /// (and still holds that entry). Reads the consumer's index: call it only
    /// when the consumer may be asleep.
    func wasEmpty(beforePushAt position: Int) -> Bool { head.load(ordering: .acquiring) == position }
}
