import QueueGraphCore

/// A `BufferCreator` whose buffers lease their memory from an `EngineCtx`:
/// each `createBuffer` locks a block of the size asked for from the calling
/// thread's `BufferSlice`, and the last release gives it back through the
/// releasing thread's slice. Any size may be asked for (a scaler's output
/// differs from its input); `count` bounds the buffers out at once, which
/// is how a render process bounds its frames in flight.
///
/// Pooled: blocks are reused across frames through the slices, so after
/// warm-up a frame costs no heap allocation and no page faults.
///
/// Threading: any thread (see `BufferCreator`).
public final class FrameCreator: BufferCreator, @unchecked Sendable {
    public let name: String
    public let engine: EngineCtx
    /// Most buffers out at once.
    public let count: Int

    private struct State {
        var free: [Int]
        var leases: [BufferHandle?]
        var statistics: PoolStatistics
    }
    private let state: Locked<State>
    private var buffers: [Buffer] = []
    private let observers = Locked<[WakeEvent]>([])
    /// Set by the graph before it starts.
    @exclusivity(unchecked) private var traceID = PoolTraceID(graph: 0, pool: 0)

    public init(name: String, count: Int, engine: EngineCtx = .shared) {
        precondition(count > 0, "a frame creator needs at least one buffer")
        self.name = name
        self.count = count
        self.engine = engine
        state = Locked(State(free: Array((0..<count).reversed()), leases: Array(repeating: nil, count: count),
                             statistics: PoolStatistics(name: name, capacity: count)))
        buffers = (0..<count).map { Buffer.allocate(creator: self, payload: BufferPayload(kind: .heap, baseAddress: nil, capacity: 0), slot: $0) }
    }

    deinit {
        state.withLock { state in
            for case let lease? in state.leases { try? engine.provider.release(lease) }
        }
        for buffer in buffers { buffer.deallocate() }
    }

    public func createBuffer(payloadSize: Int, pad: Int) -> Buffer? {
        let slot: Int? = state.withLock { state in
            guard let slot = state.free.popLast() else {
                state.statistics.exhausted += 1
                return nil
            }
            return slot
        }
        guard let slot else { return nil }
        let lease: BufferHandle
        do {
            lease = try engine.provider.lock(.bytes(max(1, payloadSize)))
        } catch {
            state.withLock {
                $0.free.append(slot)
                $0.statistics.exhausted += 1
            }
            return nil
        }
        let buffer = buffers[slot]
        let memory = try! engine.provider.bytes(lease)
        buffer.payload = BufferPayload(kind: .heap, baseAddress: memory.baseAddress, capacity: memory.count)
        state.withLock { state in
            state.leases[slot] = lease
            state.statistics.acquired += 1
            state.statistics.inUse += 1
            state.statistics.peakInUse = max(state.statistics.peakInUse, state.statistics.inUse)
            buffer.prepareForUse(size: payloadSize, sequence: UInt64(state.statistics.acquired - 1))
        }
        Tracing.countPoolFlow(traceID)
        return buffer
    }

    public func destroyBuffer(_ buffer: Buffer, fate: BufferFate) {
        buffer.payload = BufferPayload(kind: .heap, baseAddress: nil, capacity: 0)
        let lease = state.withLock { state in
            switch fate {
            case .consumed: state.statistics.consumed += 1
            case .dropped: state.statistics.dropped += 1
            case .abandoned: state.statistics.abandoned += 1
            }
            state.statistics.inUse -= 1
            state.free.append(buffer.slot)   // the lease leaves with us: the slot may be reused at once
            return state.leases[buffer.slot].take()!
        }
        Tracing.countPoolFlow(traceID, returned: fate)
        try! engine.provider.release(lease)
        observers.withLock { for event in $0 { event.notify() } }
    }

    public func statistics() -> PoolStatistics { state.withLock { $0.statistics } }

    public func addAvailabilityObserver(_ event: WakeEvent) { observers.withLock { $0.append(event) } }

    public func traceAs(_ id: PoolTraceID) { traceID = id }
}
