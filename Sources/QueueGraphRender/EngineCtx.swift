import QueueGraphCore
#if canImport(Glibc)
import Glibc
#endif

/// The render engine's configuration that render processors reach
/// (Lumiera's EngineCtx): the `BufferManager` behind every buffer they lock,
/// and each thread's own `BufferSlice` of it.
///
/// `provider` is the calling thread's slice, made on first use and let go
/// when the thread ends, which returns all of its blocks to the manager. A
/// render processor locks its scratch buffers from it, and `FrameCreator`
/// leases frame memory through it.
///
/// Threading: any thread; `provider` is the caller's own.
public final class EngineCtx: Sendable {
    /// The engine most programs use: no byte budget.
    public static let shared = EngineCtx()

    /// The engine for frames that may cross a `child` queue: its blocks
    /// live in one shared-memory arena (64 GiB of address space reserved,
    /// backed as blocks are made), so a child maps them and frames cross as
    /// handles. Heap blocks if the arena cannot be made.
    public static let sharedWithChildren = EngineCtx(manager: BufferManager(
        arena: try? SharedMemory(name: "qg-frame-arena", size: 0, reserve: 1 << 36)))

    public let manager: BufferManager

    public init(manager: BufferManager = BufferManager()) { self.manager = manager }

    /// The calling thread's slice of `manager`.
    public var provider: BufferSlice { ThreadSlices.current.slice(of: manager) }
}

/// A thread's slices, one per manager, kept in a pthread key whose
/// destructor lets them go when the thread ends.
private final class ThreadSlices {
    private var slices: [ObjectIdentifier: BufferSlice] = [:]

    func slice(of manager: BufferManager) -> BufferSlice {
        if let slice = slices[ObjectIdentifier(manager)] { return slice }
        let slice = manager.slice()
        slices[ObjectIdentifier(manager)] = slice
        return slice
    }

    static let key: pthread_key_t = {
        var key = pthread_key_t()
        let rc = pthread_key_create(&key) { raw in
            guard let raw else { return }
            Unmanaged<ThreadSlices>.fromOpaque(raw).release()
        }
        precondition(rc == 0, "pthread_key_create failed: \(rc)")
        return key
    }()

    static var current: ThreadSlices {
        if let raw = pthread_getspecific(key) { return Unmanaged<ThreadSlices>.fromOpaque(raw).takeUnretainedValue() }
        let slices = ThreadSlices()
        pthread_setspecific(key, Unmanaged.passRetained(slices).toOpaque())
        return slices
    }
}
