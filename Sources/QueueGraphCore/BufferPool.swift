import Synchronization

/// A `BufferCreator` with a fixed number of preallocated buffers of one
/// payload capacity. After creation, acquiring and releasing allocate nothing.
///
/// Subclasses (e.g. the test kit's `TrackingPool`) may watch acquire and release.
///
/// Threading: any thread may acquire and release. A free list under one lock;
/// waiting acquirers sleep on a `WakeEvent`.
open class BufferPool: BufferCreator, @unchecked Sendable {
    /// What `createBuffer` does when every buffer is out.
    public enum WhenExhausted: Sendable, Equatable {
        /// Return nil at once (counted in `exhausted`). Right for graph sources:
        /// their scheduler waits for the pool without blocking other queues.
        case fail
        /// Block up to the given nanoseconds for a buffer to come back, then nil.
        case wait(timeoutNanoseconds: Int64)
    }

    private struct State {
        var free: [Int32]
        var stats: PoolStatistics
    }

    public let name: String
    public let capacity: Int
    public let payloadCapacity: Int
    public let whenExhausted: WhenExhausted
    @exclusivity(unchecked) private var buffers: [Buffer] = []
    private let memory: UnsafeMutableRawPointer
    private let state: Locked<State>
    private let available = WakeEvent()
    private let observers = Locked<[WakeEvent]>([])

    /// Creates `count` buffers of `payloadCapacity` bytes each, touching every
    /// page once so that no page faults happen while running.
    public init(name: String, count: Int, payloadCapacity: Int, whenExhausted: WhenExhausted = .fail) {
        precondition(count > 0 && payloadCapacity >= 0, "a pool needs count > 0 and payloadCapacity >= 0")
        self.name = name
        self.capacity = count
        self.payloadCapacity = payloadCapacity
        self.whenExhausted = whenExhausted
        let stride = (payloadCapacity + 63) & ~63
        memory = .allocate(byteCount: max(stride * count, 1), alignment: 64)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: max(stride * count, 1))
        state = Locked(State(
            free: Array((0..<Int32(count)).reversed()),
            stats: PoolStatistics(name: name, capacity: count, bytesAllocated: stride * count)
        ))
        buffers.reserveCapacity(count)
        for slot in 0..<count {
            let payload = BufferPayload(kind: .heap, baseAddress: memory + slot * stride, capacity: payloadCapacity)
            buffers.append(Buffer(creator: self, payload: payload, slot: slot))
        }
    }

    deinit { memory.deallocate() }

    open func createBuffer(payloadSize: Int, pad: Int) -> Buffer? {
        guard payloadSize <= payloadCapacity else { return nil }
        if let buffer = tryAcquire(payloadSize: payloadSize) { return buffer }
        guard case .wait(let timeout) = whenExhausted else { return nil }
        let deadline = monotonicNanoseconds() &+ UInt64(timeout)
        while true {
            let now = monotonicNanoseconds()
            guard now < deadline else { return nil }
            available.wait(timeoutNanoseconds: Int64(deadline - now)) { state.withLock { !$0.free.isEmpty } }
            if let buffer = tryAcquire(payloadSize: payloadSize) { return buffer }
        }
    }

    private func tryAcquire(payloadSize: Int) -> Buffer? {
        // The acquire count before this one is the buffer's sequence number.
        let acquired: (slot: Int32, sequence: Int)? = state.withLock { state in
            guard let slot = state.free.popLast() else {
                state.stats.exhausted += 1
                return nil
            }
            defer { state.stats.acquired += 1 }
            state.stats.inUse += 1
            state.stats.peakInUse = max(state.stats.peakInUse, state.stats.inUse)
            return (slot, state.stats.acquired)
        }
        guard let acquired else { return nil }
        let buffer = buffers[Int(acquired.slot)]
        buffer.prepareForUse(size: payloadSize, sequence: UInt64(acquired.sequence))
        return buffer
    }

    open func destroyBuffer(_ buffer: Buffer, fate: BufferFate) {
        precondition(buffer.creator === self, "buffer returned to a pool that did not create it")
        let wasEmpty = state.withLock { state in
            let wasEmpty = state.free.isEmpty
            state.free.append(Int32(buffer.slot))
            state.stats.inUse -= 1
            switch fate {
            case .consumed: state.stats.consumed += 1
            case .dropped: state.stats.dropped += 1
            case .abandoned: state.stats.abandoned += 1
            }
            return wasEmpty
        }
        if wasEmpty {
            available.notify()
            observers.withLock { for event in $0 { event.notify() } }
        }
    }

    public func statistics() -> PoolStatistics { state.withLock { $0.stats } }

    public func addAvailabilityObserver(_ event: WakeEvent) {
        observers.withLock { list in
            if !list.contains(where: { $0 === event }) { list.append(event) }
        }
    }
}
