import QueueGraphCore
import Synchronization

/// A `BufferCreator` whose buffers lease their memory from an `EngineCtx`:
/// each `createBuffer` locks a block of the size asked for from the calling
/// thread's `BufferSlice`, and the last release gives it back through the
/// releasing thread's slice. Any size may be asked for (a scaler's output
/// differs from its input); `count` bounds the buffers out at once, which
/// is how a render process bounds its frames in flight.
///
/// Pooled: blocks are reused across frames through the slices; new blocks
/// are allocated only while the slices fill (a frame created on one thread
/// and released on another moves its block between slices, in batches
/// through the manager).
///
/// Threading: any thread (see `BufferCreator`).
public final class FrameCreator: BufferCreator, @unchecked Sendable {
    public let name: String
    public let engine: EngineCtx
    /// Most buffers out at once.
    public let count: Int

    private struct State {
        var free: [Int]
        /// Payload sizes whose blocks were announced (made ahead, `count` of them).
        var announced: Set<Int> = []
        var statistics: PoolStatistics
        /// A `createBuffer` found no free slot: the next return notifies the observers.
        var starved = false
    }
    private let state: Locked<State>
    private var buffers: [Buffer] = []
    /// Each slot's lease, written only by the slot's current holder (between
    /// taking the slot and putting it back), so it needs no lock.
    private let leases: UnsafeMutablePointer<BufferHandle?>
    private let observers = Locked<[WakeEvent]>([])
    /// Payload bytes of the buffers out now.
    private let bytesOut = Atomic<Int>(0)
    /// Set by the graph before it starts.
    @exclusivity(unchecked) private var traceID = PoolTraceID(graph: 0, pool: 0)

    public init(name: String, count: Int, engine: EngineCtx = .shared) {
        precondition(count > 0, "a frame creator needs at least one buffer")
        self.name = name
        self.count = count
        self.engine = engine
        state = Locked(State(free: Array((0..<count).reversed()), statistics: PoolStatistics(name: name, capacity: count)))
        leases = .allocate(capacity: count)
        leases.initialize(repeating: nil, count: count)
        buffers = (0..<count).map { Buffer.allocate(creator: self, payload: BufferPayload(kind: .heap, baseAddress: nil, capacity: 0), slot: $0) }
    }

    deinit {
        let provider = engine.provider
        for slot in 0..<count { if let lease = leases[slot] { try? provider.release(lease) } }
        leases.deinitialize(count: count)
        leases.deallocate()
        for buffer in buffers { buffer.deallocate() }
    }

    public func createBuffer(payloadSize: Int, pad: Int) -> Buffer? {
        let taken: (slot: Int, sequence: Int, firstOfSize: Bool)? = state.withLock { state in
            guard let slot = state.free.popLast() else {
                state.statistics.exhausted += 1
                state.starved = true
                return nil
            }
            state.statistics.acquired += 1
            state.statistics.inUse += 1
            state.statistics.peakInUse = max(state.statistics.peakInUse, state.statistics.inUse)
            return (slot, state.statistics.acquired - 1, state.announced.insert(payloadSize).inserted)
        }
        guard let (slot, sequence, firstOfSize) = taken else { return nil }
        let provider = engine.provider
        // The first buffer of a size makes the blocks for all `count` at
        // once: the stream's memory exists (and is resident) from its start
        // instead of growing with each new peak of frames in flight.
        if firstOfSize { _ = provider.announce(count, of: .bytes(max(1, payloadSize))) }
        guard let lease = try? provider.lock(.bytes(max(1, payloadSize))) else {   // over the engine's byte budget
            state.withLock { state in
                state.free.append(slot)
                state.statistics.acquired -= 1
                state.statistics.inUse -= 1
                state.statistics.exhausted += 1
                state.starved = true
            }
            return nil
        }
        leases[slot] = lease
        let memory = try! provider.bytes(lease)
        let buffer = buffers[slot]
        if let arena = engine.manager.arena {
            buffer.payload = BufferPayload(kind: .sharedMemory, baseAddress: memory.baseAddress, capacity: memory.count, handle: UInt64(arena.id))
        } else {
            buffer.payload = BufferPayload(kind: .heap, baseAddress: memory.baseAddress, capacity: memory.count)
        }
        buffer.prepareForUse(size: payloadSize, sequence: UInt64(sequence))
        bytesOut.add(memory.count, ordering: .relaxed)
        Tracing.countPoolFlow(traceID)
        return buffer
    }

    public func destroyBuffer(_ buffer: Buffer, fate: BufferFate) {
        bytesOut.subtract(buffer.payload.capacity, ordering: .relaxed)
        buffer.payload = BufferPayload(kind: .heap, baseAddress: nil, capacity: 0)
        let lease = leases[buffer.slot].take()!   // before the slot goes back: it may be reused at once
        let wasStarved = state.withLock { state in
            switch fate {
            case .consumed: state.statistics.consumed += 1
            case .dropped: state.statistics.dropped += 1
            case .abandoned: state.statistics.abandoned += 1
            }
            state.statistics.inUse -= 1
            state.free.append(buffer.slot)
            defer { state.starved = false }
            return state.starved
        }
        Tracing.countPoolFlow(traceID, returned: fate)
        // The frame's end in the provider's protocol: delivered, its content is final; dropped or abandoned, void.
        let provider = engine.provider
        if fate == .consumed { try! provider.emit(lease) } else { try! provider.block(lease) }
        try! provider.release(lease)
        if wasStarved { observers.withLock { for event in $0 { event.notify() } } }
    }

    /// Its counters; the bytes allocated are the blocks announced for it (`count` of each size it was asked for).
    public func statistics() -> PoolStatistics {
        var statistics = state.withLock { state in
            var statistics = state.statistics
            statistics.bytesAllocated = count * state.announced.reduce(0, +)
            return statistics
        }
        statistics.bytesInUse = bytesOut.load(ordering: .relaxed)
        return statistics
    }

    public func addAvailabilityObserver(_ event: WakeEvent) {
        observers.withLock { list in
            if !list.contains(where: { $0 === event }) { list.append(event) }
        }
    }

    public func traceAs(_ id: PoolTraceID) { traceID = id }
}
