import Atomics

/// A `BufferCreator` with a fixed number of preallocated buffers of one
/// payload capacity. After creation, acquiring and releasing allocate nothing.
///
/// Subclasses (e.g. the test kit's `TrackingPool`) may watch acquire and release.
///
/// Threading: any thread may acquire and release, lock-free: the free slots
/// sit in a bounded multi-producer multi-consumer queue (Vyukov's), and the
/// statistics are atomic counters on separate cache lines. Acquirers that
/// wait sleep on a `WakeEvent`.
open class BufferPool: BufferCreator, @unchecked Sendable {
    /// What `createBuffer` does when every buffer is out.
    public enum WhenExhausted: Sendable, Equatable {
        /// Return nil at once (counted in `exhausted`). Right for graph sources:
        /// their scheduler waits for the pool without blocking other queues.
        case fail
        /// Block up to the given nanoseconds for a buffer to come back, then nil.
        case wait(timeoutNanoseconds: Int64)
    }

    public let name: String
    public let capacity: Int
    public let payloadCapacity: Int
    public let whenExhausted: WhenExhausted
    /// Bytes between payloads: the capacity rounded up to a cache line.
    private let stride: Int
    /// Every buffer, by slot; plain memory, read without reference counting.
    private let buffers: UnsafeMutableBufferPointer<Buffer>
    private let memory: UnsafeMutableRawPointer
    /// Where the payloads live when the pool is shared (else on the heap).
    public let region: SharedMemory?
    private let free: SlotQueue
    /// Lines: peak in use, dropped, abandoned, exhausted, starved, pushes seen.
    private let lines = AtomicLines(count: 6)
    private let available = WakeEvent()
    private let observers = Locked<[WakeEvent]>([])
    /// The graph and pool index in trace events; set by the graph before it starts.
    @exclusivity(unchecked) var traceID = PoolTraceID(graph: 0, pool: 0)

    /// Creates `count` buffers of `payloadCapacity` bytes each, touching every
    /// page once so that no page faults happen while running. A `shared`
    /// pool keeps its payloads in a `SharedMemory` region, so that they
    /// cross into the child process of a `child` queue without a copy.
    public init(name: String, count: Int, payloadCapacity: Int, whenExhausted: WhenExhausted = .fail, shared: Bool = false) {
        precondition(count > 0 && payloadCapacity >= 0, "a pool needs count > 0 and payloadCapacity >= 0")
        self.name = name
        self.capacity = count
        self.payloadCapacity = payloadCapacity
        self.whenExhausted = whenExhausted
        stride = (payloadCapacity + 63) & ~63
        let bytes = max(stride * count, 1)
        if shared {
            do throws(SharedMemoryError) {
                region = try SharedMemory(name: "qg-pool-\(name)", size: bytes)
            } catch {
                preconditionFailure("pool '\(name)': \(error)")
            }
            memory = region!.base   // zero-filled; touched below
        } else {
            region = nil
            memory = .allocate(byteCount: bytes, alignment: 64)
        }
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        free = SlotQueue(capacity: count)
        buffers = .allocate(capacity: count)
        let kind: BufferPayload.Kind = shared ? .sharedMemory : .heap
        for slot in 0..<count {
            let payload = BufferPayload(kind: kind, baseAddress: memory + slot * stride, capacity: payloadCapacity,
                                        handle: UInt64(region?.id ?? 0))
            buffers.initializeElement(at: slot, to: .allocate(creator: self, payload: payload, slot: slot))
            free.push(slot)
        }
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
        buffers.deallocate()
        if region == nil { memory.deallocate() }
        free.deallocate()
        lines.deallocate()
    }

    // Acquired and returned counts are the free list's pop and push counts
    // (pushes less the initial `capacity`), so the hot path keeps no counter
    // of its own; consumed = returned - dropped - abandoned.
    private var peak: UnsafeAtomic<Int> { lines.atomic(0) }
    private var dropped: Counter { lines.counter(1) }
    private var abandoned: Counter { lines.counter(2) }
    private var exhausted: Counter { lines.counter(3) }
    /// Set when an acquire found the pool empty; the next release wakes waiters.
    private var starved: UnsafeAtomic<Int> { lines.atomic(4) }
    /// Pushes as last read by an acquirer checking the peak; never ahead of
    /// the real count, so the in-use estimate from it is never too low.
    private var pushesSeen: UnsafeAtomic<Int> { lines.atomic(5) }

    open func createBuffer(payloadSize: Int, pad: Int) -> Buffer? {
        guard payloadSize <= payloadCapacity else { return nil }
        if let buffer = tryAcquire(payloadSize: payloadSize) { return buffer }
        guard case .wait(let timeout) = whenExhausted else { return nil }
        let deadline = monotonicNanoseconds() &+ UInt64(timeout)
        while true {
            let now = monotonicNanoseconds()
            guard now < deadline else { return nil }
            available.wait(timeoutNanoseconds: Int64(deadline - now)) { free.count > 0 }
            if let buffer = tryAcquire(payloadSize: payloadSize) { return buffer }
        }
    }

    private func tryAcquire(payloadSize: Int) -> Buffer? {
        guard let (slot, position) = free.pop() else {
            exhausted.add()
            starved.store(1, ordering: .sequentiallyConsistent)
            return nil
        }
        // In use now is pops - (pushes - capacity). Reading the pushes costs a
        // cache miss across cores, so only when the estimate beats the peak.
        let pops = position &+ 1
        if pops &- (pushesSeen.load(ordering: .relaxed) &- capacity) > peak.load(ordering: .relaxed) {
            let pushes = free.pushes
            pushesSeen.store(pushes, ordering: .relaxed)
            peak.max(pops &- (pushes &- capacity))
        }
        let buffer = buffers[slot]
        // The acquire count before this one is the buffer's sequence number.
        buffer.prepareForUse(size: payloadSize, sequence: UInt64(position))
        Tracing.countPoolFlow(traceID)
        return buffer
    }

    open func destroyBuffer(_ buffer: Buffer, fate: BufferFate) {
        precondition(buffer.isFrom(self), "buffer returned to a pool that did not create it")
        Tracing.countPoolFlow(traceID, returned: fate)
        switch fate {
        case .consumed: break
        case .dropped: dropped.add()
        case .abandoned: abandoned.add()
        }
        free.push(buffer.slot)
        if starved.load(ordering: .sequentiallyConsistent) != 0 && starved.exchange(0, ordering: .acquiringAndReleasing) != 0 {
            available.notify()
            observers.withLock { for event in $0 { event.notify() } }
        }
    }

    public func statistics() -> PoolStatistics {
        let pops = free.pops
        let returned = free.pushes &- capacity
        let (dropped, abandoned) = (dropped.value, abandoned.value)
        return PoolStatistics(name: name, capacity: capacity, acquired: pops,
                              consumed: returned - dropped - abandoned, dropped: dropped, abandoned: abandoned,
                              exhausted: exhausted.value, inUse: pops - returned, peakInUse: peak.load(ordering: .relaxed),
                              bytesAllocated: stride * capacity, bytesInUse: stride * (pops - returned))
    }

    public func traceAs(_ id: PoolTraceID) { traceID = id }

    public func addAvailabilityObserver(_ event: WakeEvent) {
        observers.withLock { list in
            if !list.contains(where: { $0 === event }) { list.append(event) }
        }
    }
}

extension UnsafeAtomic<Int> {
    /// Raises the value to `n` if it is lower.
    func max(_ n: Int) {
        var current = load(ordering: .relaxed)
        while n > current {
            let (exchanged, original) = compareExchange(expected: current, desired: n, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}

/// A bounded multi-producer multi-consumer queue of slot numbers (Dmitry
/// Vyukov's design): each cell carries a sequence number that says whether it
/// is ready to be written or read, so producers and consumers only contend on
/// their own index. Never holds more than `capacity` slots, so `push` of a
/// slot that was popped always finds room.
///
/// Threading: any thread. The owner calls `deallocate()` in its `deinit`.
struct SlotQueue: @unchecked Sendable {
    private struct Cell {
        var sequence: UnsafeAtomic<Int>.Storage
        var slot: Int
    }

    private let cells: UnsafeMutablePointer<Cell>
    private let mask: Int
    /// Line 0: the next position to pop; line 1: the next position to push.
    private let lines = AtomicLines(count: 2)

    init(capacity: Int) {
        var size = 1
        while size < capacity { size <<= 1 }
        mask = size - 1
        cells = .allocate(capacity: size)
        for i in 0..<size { (cells + i).initialize(to: Cell(sequence: .init(i), slot: -1)) }
    }

    func deallocate() {
        cells.deallocate()
        lines.deallocate()
    }

    @inline(__always)
    private func sequence(_ position: Int) -> UnsafeAtomic<Int> {
        UnsafeAtomic(at: UnsafeMutableRawPointer(cells + (position & mask)).assumingMemoryBound(to: UnsafeAtomic<Int>.Storage.self))
    }

    /// How many pops and pushes have completed their claim (sequentially consistent reads).
    var pops: Int { lines.atomic(0).load(ordering: .sequentiallyConsistent) }
    var pushes: Int { lines.atomic(1).load(ordering: .sequentiallyConsistent) }
    /// Slots in the queue now (approximate while others push and pop).
    var count: Int { pushes &- pops }

    func push(_ slot: Int) {
        let tail = lines.atomic(1)
        var position = tail.load(ordering: .relaxed)
        while true {
            let difference = sequence(position).load(ordering: .acquiring) &- position
            if difference == 0 {
                let (won, actual) = tail.weakCompareExchange(expected: position, desired: position &+ 1, ordering: .sequentiallyConsistent)
                if won {
                    (cells + (position & mask)).pointee.slot = slot
                    sequence(position).store(position &+ 1, ordering: .releasing)
                    return
                }
                position = actual
            } else {
                precondition(difference > 0, "more slots pushed than the queue holds")
                position = tail.load(ordering: .relaxed)
            }
        }
    }

    /// The oldest slot and its pop position (0, 1, 2, …), or nil when empty.
    func pop() -> (slot: Int, position: Int)? {
        let head = lines.atomic(0)
        var position = head.load(ordering: .relaxed)
        while true {
            let difference = sequence(position).load(ordering: .acquiring) &- (position &+ 1)
            if difference == 0 {
                let (won, actual) = head.weakCompareExchange(expected: position, desired: position &+ 1, ordering: .relaxed)
                if won {
                    let slot = (cells + (position & mask)).pointee.slot
                    sequence(position).store(position &+ mask &+ 1, ordering: .releasing)
                    return (slot, position)
                }
                position = actual
            } else if difference < 0 {
                return nil
            } else {
                position = head.load(ordering: .relaxed)
            }
        }
    }
}
