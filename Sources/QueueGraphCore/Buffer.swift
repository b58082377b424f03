import Atomics

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

/// One unit of data moving through a queue graph: a handle to a buffer
/// that its `BufferCreator` owns (like a `pw_buffer *` in PipeWire).
///
/// A buffer goes back to its creator when the last holder lets go. Each queue
/// a buffer enters holds it; the processor that takes it from the queue gives
/// up that hold by sending it on (`ProcessContext.sendTo`) or by saying it is
/// done (`doneBuffer`). Copying a `Buffer` copies the handle: it neither adds
/// a hold nor keeps the buffer alive, so moving buffers through a graph costs
/// no reference counting. A handle is valid while its creator exists; using
/// one after its last hold was given up is a bug (the buffer may already be
/// someone else's).
///
/// Threading: a buffer is touched by one thread at a time — the thread whose
/// processor holds it. Handing it to another queue publishes its fields to the
/// consumer thread. A buffer held by several queues at once (after
/// `ProcessContext.share`) is read-only until only one holder is left.
public struct Buffer: Hashable, @unchecked Sendable {
    /// The fields, in memory the creator allocated (`Buffer.allocate`).
    private struct Storage {
        unowned(unsafe) let creator: any BufferCreator
        /// `creator` when it is a `BufferPool` (the common case): releasing
        /// to it then needs no dynamic dispatch nor reference counting.
        let pool: Unmanaged<BufferPool>?
        let slot: Int
        var holds: UnsafeAtomic<Int>.Storage
        var payload: BufferPayload
        var size = 0
        var priority = 0
        var sequence: UInt64 = 0
        var timestamp: UInt64 = 0
    }

    private let storage: UnsafeMutablePointer<Storage>

    /// Makes a buffer for a creator, with no holds. Only `BufferCreator`s call
    /// this, and each buffer they allocate they `deallocate()` once, when
    /// they are torn down (never while a holder may still use it).
    public static func allocate(creator: any BufferCreator, payload: BufferPayload, slot: Int) -> Buffer {
        let pool: Unmanaged<BufferPool>? = if let pool = creator as? BufferPool { .passUnretained(pool) } else { nil }
        let storage = UnsafeMutablePointer<Storage>.allocate(capacity: 1)
        storage.initialize(to: Storage(creator: creator, pool: pool, slot: slot, holds: .init(0), payload: payload))
        return Buffer(storage: storage)
    }

    private init(storage: UnsafeMutablePointer<Storage>) { self.storage = storage }

    /// Frees the buffer's bookkeeping (not its payload, which the creator owns).
    public func deallocate() {
        storage.deinitialize(count: 1)
        storage.deallocate()
    }

    /// The creator it returns to. Creators outlive their buffers.
    public var creator: any BufferCreator { storage.pointee.creator }
    /// The creator's index for this buffer (a pool slot).
    public var slot: Int { storage.pointee.slot }
    /// The bytes, or a handle to them.
    public var payload: BufferPayload {
        get { storage.pointee.payload }
        nonmutating set { storage.pointee.payload = newValue }
    }
    /// Bytes of `payload` in use.
    public var size: Int {
        get { storage.pointee.size }
        nonmutating set { storage.pointee.size = newValue }
    }
    /// Higher goes first in a `prio` queue.
    public var priority: Int {
        get { storage.pointee.priority }
        nonmutating set { storage.pointee.priority = newValue }
    }
    /// Set by the creator on each acquire (counts up from 0); processors may overwrite.
    public var sequence: UInt64 {
        get { storage.pointee.sequence }
        nonmutating set { storage.pointee.sequence = newValue }
    }
    /// Presentation (or capture) time in nanoseconds, set by the producer;
    /// 0 until set. The creator stamps no clock: reading it costs more than
    /// a buffer's whole trip through a queue. Queue residency is sampled
    /// separately (`QueueGraphConfig.residencySampleInterval`).
    public var timestamp: UInt64 {
        get { storage.pointee.timestamp }
        nonmutating set { storage.pointee.timestamp = newValue }
    }

    private var holds: UnsafeAtomic<Int> {
        UnsafeAtomic(at: UnsafeMutableRawPointer(storage)
            .advanced(by: MemoryLayout<Storage>.offset(of: \.holds)!)
            .assumingMemoryBound(to: UnsafeAtomic<Int>.Storage.self))
    }

    /// How many holders the buffer has now (queues and processors).
    public var holderCount: Int { holds.load(ordering: .relaxed) }

    /// The used bytes (`size` of them) of the payload.
    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: payload.bytes.prefix(size))
    }

    /// Makes the buffer live with one holder; called by creators when handing it out.
    public func prepareForUse(size: Int, sequence: UInt64) {
        storage.pointee.size = size
        storage.pointee.priority = 0
        storage.pointee.sequence = sequence
        storage.pointee.timestamp = 0
        holds.store(1, ordering: .relaxed)
    }

    /// Whether `pool` made this buffer (compared without reference counting).
    func isFrom(_ pool: BufferPool) -> Bool { storage.pointee.pool?.toOpaque() == Unmanaged.passUnretained(pool).toOpaque() }

    func addHold() {
        holds.wrappingIncrement(ordering: .relaxed)
    }

    /// Gives up a hold from outside any processor call, on any thread: a
    /// hold lent to a library that lets go of it on its own threads (a
    /// decoder's reference frames, see QueueGraphMedia's decode loans).
    /// Inside a processor call use `ProcessContext.doneBuffer`, which also
    /// acks the sender on an `ack` queue.
    public func releaseHold() { dropHold(fate: .consumed) }

    /// Drops one hold; when it was the last, the buffer goes back to its creator.
    /// The only holder skips the read-modify-write (nobody else can add a
    /// hold), so the common case writes nothing to the buffer and its cache
    /// line stays clean for the thread that acquires it next.
    func dropHold(fate: BufferFate) {
        if holds.load(ordering: .acquiring) == 1 || holds.loadThenWrappingDecrement(ordering: .acquiringAndReleasing) == 1 {
            if let pool = storage.pointee.pool {
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
