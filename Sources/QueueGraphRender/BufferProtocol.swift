/// The life of a buffer a `BufferProvider` lends (Lumiera's buffer states):
///
///     free ──lock──▶ locked ──emit──▶ emitted
///      ▲               │ └──block──▶ blocked ◀──block──┘
///      └────release────┴─────────────┴──────────────────┘
///
/// `locked`: the holder computes into it. `emitted`: its content is final and
/// handed on. `blocked`: its content is void (the job failed or was dropped)
/// and it waits for release. Release is legal from all three, so a holder
/// that gives up never needs to emit first. Every other step is an error.
public enum BufferState: UInt8, Sendable, CaseIterable {
    case free, locked, emitted, blocked

    /// The state `action` leads to, or nil when the protocol forbids it.
    public func after(_ action: BufferAction) -> BufferState? {
        switch (self, action) {
        case (.free, .lock): .locked
        case (.locked, .emit): .emitted
        case (.locked, .block), (.emitted, .block): .blocked
        case (.locked, .release), (.emitted, .release), (.blocked, .release): .free
        default: nil
        }
    }
}

/// What a holder does to a buffer; `BufferState.after(_:)` says where it leads.
public enum BufferAction: String, Sendable, CaseIterable {
    case lock, emit, block, release
}

/// A broken buffer protocol, or a provider that cannot lend.
public enum BufferProtocolError: Error, Equatable, CustomStringConvertible {
    /// `action` is not allowed in `state` (e.g. emitting twice).
    case illegal(BufferAction, in: BufferState)
    /// The handle's buffer was released: the handle must not be used again.
    case released(BufferAction?)
    /// Lending `bytes` more would pass the provider's byte budget.
    case exhausted(bytes: Int, budget: Int)

    public var description: String {
        switch self {
        case .illegal(let action, let state): "cannot \(action.rawValue) a buffer that is \(state)"
        case .released(let action): "\(action.map { "cannot \($0.rawValue): " } ?? "cannot access: ")the buffer was released"
        case .exhausted(let bytes, let budget): "cannot lend \(bytes) bytes more: the budget of \(budget) bytes is lent out"
        }
    }
}

/// What a buffer must hold: a size in bytes, and for a typed payload, the
/// code that sets it up when the buffer is locked and tears it down when it
/// is released (each exactly once per lock).
///
/// Threading: a value; any thread.
public struct BufferDescriptor: Hashable, Sendable, CustomStringConvertible {
    /// Bytes the holder may use.
    public let size: Int
    let payload: TypedPayload?

    /// Raw memory of `size` bytes (content undefined on lock).
    public static func bytes(_ size: Int) -> BufferDescriptor {
        precondition(size > 0, "a buffer needs at least one byte")
        return BufferDescriptor(size: size, payload: nil)
    }

    /// A value of `type`, made by `make` on lock and deinitialised on release.
    /// Each call makes a distinct descriptor; keep the one you use.
    public static func typed<T>(_ type: T.Type, _ make: @escaping @Sendable () -> T) -> BufferDescriptor {
        BufferDescriptor(size: max(1, MemoryLayout<T>.stride), payload: TypedPayload(type, make))
    }

    public var description: String { payload.map { "\($0.name) (\(size) bytes)" } ?? "\(size) bytes" }

    /// The alignment blocks for this descriptor need.
    var alignment: Int { max(64, payload?.alignment ?? 0) }
}

/// How a typed payload is set up and torn down; compared by identity.
final class TypedPayload: Hashable, Sendable {
    let name: String
    let type: ObjectIdentifier
    let alignment: Int
    let initialise: @Sendable (UnsafeMutableRawPointer) -> Void
    let deinitialise: @Sendable (UnsafeMutableRawPointer) -> Void

    init<T>(_ type: T.Type, _ make: @escaping @Sendable () -> T) {
        name = String(describing: type)
        self.type = ObjectIdentifier(type)
        alignment = MemoryLayout<T>.alignment
        initialise = { $0.initializeMemory(as: T.self, to: make()) }
        deinitialise = { _ = $0.assumingMemoryBound(to: T.self).deinitialize(count: 1) }
    }

    static func == (a: TypedPayload, b: TypedPayload) -> Bool { a === b }
    func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

/// Counters of a provider, read as a snapshot.
public struct BufferProviderStatistics: Sendable, Equatable {
    /// Blocks allocated from the heap, and their bytes.
    public var allocations = 0
    public var bytesAllocated = 0
    /// Locks and releases so far.
    public var locks = 0
    public var releases = 0
    /// Bytes of the buffers locked and not yet released (descriptor sizes).
    public var bytesLeased = 0
    /// Of `releases`, those taken back by `emergencyCleanup` after a failed job.
    public var emergencyCleanups = 0
    /// Buffers marked final (`emit`) and void (`block`).
    public var emits = 0
    public var blocks = 0

    public init() {}
}

/// Lends buffers by descriptor under the protocol of `BufferState`:
/// `lock → (emit | block)* → release`. Render processors get their buffers
/// from one (Lumiera's BufferProvider).
///
/// Threading: an implementation says which thread may call it; `BufferSlice`
/// belongs to one thread at a time. `emit`, `block` and `bytes` may be called
/// from any thread that holds the handle.
public protocol BufferProvider: AnyObject {
    /// Makes sure `count` buffers of `descriptor` can be locked without
    /// allocating or waiting; returns how many are guaranteed now (fewer
    /// when the byte budget does not allow `count`).
    func announce(_ count: Int, of descriptor: BufferDescriptor) -> Int
    /// Lends a buffer: free → locked; a typed payload is initialised.
    func lock(_ descriptor: BufferDescriptor) throws(BufferProtocolError) -> BufferHandle
    /// Takes a buffer back: locked, emitted or blocked → free; a typed
    /// payload is deinitialised, and the handle becomes invalid.
    func release(_ handle: BufferHandle) throws(BufferProtocolError)
    /// Takes a buffer back after a failed job, whatever it holds (Lumiera's
    /// `emergencyCleanup`): as `release`, counted apart, and with
    /// `runDeinit: false` a typed payload is not deinitialised (the job
    /// failed before it was whole, or it may not be touched again); its
    /// memory is then reused as raw bytes.
    func emergencyCleanup(_ handle: BufferHandle, runDeinit: Bool) throws(BufferProtocolError)
    /// Marks the content final: locked → emitted.
    func emit(_ handle: BufferHandle) throws(BufferProtocolError)
    /// Marks the content void: locked or emitted → blocked.
    func block(_ handle: BufferHandle) throws(BufferProtocolError)
    /// The counters so far.
    var statistics: BufferProviderStatistics { get }
}

extension BufferProvider {
    /// Locks a buffer for one job's `body` and takes it back after: released
    /// when the body returns, through `emergencyCleanup` (counted) when it throws.
    public func withBuffer<R>(_ descriptor: BufferDescriptor, _ body: (BufferHandle) throws -> R) throws -> R {
        let handle = try lock(descriptor)
        let result: R
        do { result = try body(handle) } catch {
            try? emergencyCleanup(handle, runDeinit: true)
            throw error
        }
        try release(handle)
        return result
    }


    /// The buffer's bytes, while it is locked, emitted or blocked.
    public func bytes(_ handle: BufferHandle) throws(BufferProtocolError) -> UnsafeMutableRawBufferPointer {
        _ = try handle.block.state(generation: handle.generation)
        return UnsafeMutableRawBufferPointer(start: handle.block.memory, count: handle.descriptor.size)
    }

    /// The typed payload of a buffer locked with `BufferDescriptor.typed(T.self, …)`.
    public func payload<T>(_ handle: BufferHandle, as type: T.Type) throws(BufferProtocolError) -> UnsafeMutablePointer<T> {
        precondition(handle.descriptor.payload?.type == ObjectIdentifier(type), "\(handle.descriptor) is not a \(type)")
        return try bytes(handle).baseAddress!.assumingMemoryBound(to: type)
    }

    /// The buffer's state (for checks and tests); `.released` once it was released.
    public func state(_ handle: BufferHandle) throws(BufferProtocolError) -> BufferState {
        try handle.block.state(generation: handle.generation)
    }
}

/// A lent buffer: valid from its lock to its release, on any thread that
/// holds it. Two handles are equal when they name the same lending.
public struct BufferHandle: Hashable, Sendable, CustomStringConvertible {
    let block: Block
    let generation: UInt32
    /// What the buffer was locked for.
    public let descriptor: BufferDescriptor

    public static func == (a: BufferHandle, b: BufferHandle) -> Bool { a.block === b.block && a.generation == b.generation }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(ObjectIdentifier(block))
        hasher.combine(generation)
    }
    public var description: String { "buffer \(ObjectIdentifier(block).hashValue & 0xffff)#\(generation) of \(descriptor)" }
}
