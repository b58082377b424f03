import Synchronization

/// Where a buffer's bytes live. The payload is separate from the `Buffer`
/// object so that the same bookkeeping can carry heap memory, shared memory or
/// a GPU object.
///
/// A payload is a plain value: copying it copies the handle, not the bytes.
/// The `BufferCreator` that made the buffer owns the memory behind it.
public struct BufferPayload: @unchecked Sendable {
    /// What kind of storage the payload refers to.
    public enum Kind: Sendable, Equatable {
        /// Process-local memory at `baseAddress`.
        case heap
        /// A shared-memory region (`handle` is the region id, `baseAddress` its mapping here).
        case sharedMemory
        /// An object owned by another API, e.g. a GL texture name in `handle`.
        case external
    }

    public var kind: Kind
    /// Start of the bytes in this process, when they are addressable here.
    public var baseAddress: UnsafeMutableRawPointer?
    /// How many bytes the payload can hold.
    public var capacity: Int
    /// An id meaningful to the creator (a shm region or a GL name); 0 for heap memory.
    public var handle: UInt64

    public init(kind: Kind, baseAddress: UnsafeMutableRawPointer?, capacity: Int, handle: UInt64 = 0) {
        self.kind = kind
        self.baseAddress = baseAddress
        self.capacity = capacity
        self.handle = handle
    }

    /// The payload's bytes, or an empty buffer when they are not addressable here.
    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: baseAddress, count: baseAddress == nil ? 0 : capacity)
    }
}

/// One unit of data moving through a queue graph.
///
/// A buffer is made by a `BufferCreator` and goes back to it when the last
/// holder lets go. Each queue a buffer enters holds it; the processor that
/// takes it from the queue gives up that hold by sending it on
/// (`ProcessContext.sendTo`) or by saying it is done (`doneBuffer`).
///
/// Threading: a buffer is touched by one thread at a time — the thread whose
/// processor holds it. Handing it to another queue publishes its fields to the
/// consumer thread. A buffer held by several queues at once (after
/// `ProcessContext.share`) is read-only until only one holder is left.
public final class Buffer: @unchecked Sendable {
    /// The creator it returns to. Creators outlive their buffers.
    public unowned(unsafe) let creator: any BufferCreator
    /// `creator` when it is a `BufferPool` (the common case): releasing to it
    /// then needs no reference counting on the pool, whose header would
    /// otherwise bounce between the producing and the consuming core.
    private let pool: Unmanaged<BufferPool>?
    /// The bytes, or a handle to them.
    @exclusivity(unchecked) public var payload: BufferPayload
    /// Bytes of `payload` in use.
    @exclusivity(unchecked) public var size: Int
    /// Higher goes first in a `prio` queue.
    @exclusivity(unchecked) public var priority: Int
    /// Set by the creator on each acquire (counts up from 0); processors may overwrite.
    @exclusivity(unchecked) public var sequence: UInt64
    /// Presentation (or capture) time in nanoseconds, set by the producer;
    /// 0 until set. The creator stamps no clock: reading it costs more than
    /// a buffer's whole trip through a queue. Queue residency is sampled
    /// separately (`QueueGraphConfig.residencySampleInterval`).
    @exclusivity(unchecked) public var timestamp: UInt64
    /// The creator's index for this buffer (a pool slot).
    public let slot: Int

    let holds = Atomic<Int>(0)

    /// Creates a buffer. Only `BufferCreator`s call this; the creator must keep
    /// the buffer alive (reachable) until `destroyBuffer` gives it back.
    public init(creator: any BufferCreator, payload: BufferPayload, slot: Int) {
        self.creator = creator
        self.pool = (creator as? BufferPool).map { .passUnretained($0) }
        self.payload = payload
        self.size = 0
        self.priority = 0
        self.sequence = 0
        self.timestamp = 0
        self.slot = slot
    }

    /// How many holders the buffer has now (queues and processors).
    public var holderCount: Int { holds.load(ordering: .relaxed) }

    /// The used bytes (`size` of them) of the payload.
    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: payload.bytes.prefix(size))
    }

    /// Makes the buffer live with one holder; called by creators when handing it out.
    public func prepareForUse(size: Int, sequence: UInt64) {
        self.size = size
        self.priority = 0
        self.sequence = sequence
        self.timestamp = 0
        holds.store(1, ordering: .relaxed)
    }

    func addHold() {
        holds.wrappingAdd(1, ordering: .relaxed)
    }

    /// Drops one hold; when it was the last, the buffer goes back to its creator.
    func dropHold(fate: BufferFate) {
        if holds.wrappingSubtract(1, ordering: .acquiringAndReleasing).oldValue == 1 {
            if let pool {
                pool._withUnsafeGuaranteedRef { $0.destroyBuffer(self, fate: fate) }
            } else {
                creator.destroyBuffer(self, fate: fate)
            }
        }
    }
}

/// Why a buffer left the graph, as counted in the ledger.
public enum BufferFate: Int, Sendable, CaseIterable {
    /// A processor said it was done with it (normally a sink).
    case consumed
    /// A queue or a processor dropped it (see `DropReason`).
    case dropped
    /// The graph stopped without draining while it was still queued or held.
    case abandoned
}
