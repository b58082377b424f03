import CQueueGraph
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A region of memory that a child process can map too: an anonymous
/// `memfd` (it never appears in `/dev/shm`, so nothing is left behind however
/// the processes end), mapped shared. Buffers whose payloads live in one
/// cross a process boundary as (region, offset) handles, without a copy.
///
/// A region made here registers itself (`SharedMemory.live`) until it is
/// freed, so a `child` queue can hand every live region to the child it
/// spawns. A region may reserve more address space than its file holds and
/// `grow` into it; touching bytes past `size` faults.
///
/// Threading: any thread may read through `base` and read `size`; `grow`
/// from one thread at a time (the region's owner serialises it).
public final class SharedMemory: @unchecked Sendable {
    /// Unique in this process (never 0); a payload's `handle`.
    public let id: UInt32
    public let fd: Int32
    public let base: UnsafeMutableRawPointer
    /// Bytes backed by the file now.
    public var size: Int { backed.load(ordering: .acquiring) }
    private let backed: Atomic<Int>
    /// Bytes of address space mapped (≥ `size`).
    public let reserved: Int
    private let registered: Bool

    /// Makes a zero-filled region of `size` bytes, mapping `reserve` bytes of
    /// address space (default `size`) so that it can grow in place. A
    /// `registered` region is handed to every child a `child` queue starts
    /// (payload memory); a channel's own regions are not.
    public init(name: String, size: Int, reserve: Int? = nil, registered: Bool = true) throws(SharedMemoryError) {
        let reserved = max(reserve ?? size, size, 1)
        let fd = qg_memfd(name)
        guard fd >= 0 else { throw SharedMemoryError(operation: "memfd_create", errno: -fd) }
        guard ftruncate(fd, off_t(size)) == 0 else {
            let e = errno
            close(fd)
            throw SharedMemoryError(operation: "ftruncate to \(size) bytes", errno: e)
        }
        guard let base = mmap(nil, reserved, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            let e = errno
            close(fd)
            throw SharedMemoryError(operation: "mmap of \(reserved) bytes", errno: e)
        }
        (self.fd, self.base, self.reserved, self.registered) = (fd, base, reserved, registered)
        backed = Atomic(size)
        id = SharedMemory.registry.withLock { registry in
            registry.lastID &+= 1
            if registry.lastID == 0 { registry.lastID = 1 }
            return registry.lastID
        }
        if registered { SharedMemory.registry.withLock { $0.regions[id] = WeakRegion(region: self) } }
    }

    /// Maps a region a parent process made and passed down as `fd` (a
    /// child's view: it is not registered, and closes `fd` when freed).
    public init(mapping fd: Int32, id: UInt32, reserve: Int) throws(SharedMemoryError) {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SharedMemoryError(operation: "fstat of fd \(fd)", errno: errno) }
        let reserved = max(reserve, Int(info.st_size), 1)
        guard let base = mmap(nil, reserved, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            throw SharedMemoryError(operation: "mmap of fd \(fd) (\(reserved) bytes)", errno: errno)
        }
        (self.id, self.fd, self.base, self.reserved, registered) = (id, fd, base, reserved, false)
        backed = Atomic(Int(info.st_size))
    }

    deinit {
        if registered { SharedMemory.registry.withLock { _ = $0.regions.removeValue(forKey: id) } }
        munmap(base, reserved)
        close(fd)
    }

    /// Extends the file to `bytes` (within `reserved`); the mapping is
    /// already in place, in this process and in any that maps the region.
    public func grow(to bytes: Int) throws(SharedMemoryError) {
        guard bytes > size else { return }
        guard bytes <= reserved else { throw SharedMemoryError(operation: "growing past the \(reserved) bytes reserved", errno: ENOMEM) }
        guard ftruncate(fd, off_t(bytes)) == 0 else { throw SharedMemoryError(operation: "ftruncate to \(bytes) bytes", errno: errno) }
        backed.store(bytes, ordering: .releasing)
    }

    /// The offset of `address` in the region, when it lies in its first `size` bytes.
    public func offset(of address: UnsafeRawPointer, count: Int) -> Int? {
        let offset = address - UnsafeRawPointer(base)
        return offset >= 0 && offset + count <= size ? offset : nil
    }

    /// The regions made in this process and not yet freed.
    public static func live() -> [SharedMemory] {
        registry.withLock { $0.regions.values.compactMap(\.region) }.sorted { $0.id < $1.id }
    }

    private struct WeakRegion: @unchecked Sendable { weak var region: SharedMemory? }
    private struct Registry: @unchecked Sendable {
        var lastID: UInt32 = 0
        var regions: [UInt32: WeakRegion] = [:]
    }
    private static let registry = Locked(Registry())
}

/// A system call on shared memory failed.
public struct SharedMemoryError: Error, CustomStringConvertible {
    public var operation: String
    public var errno: Int32
    public var description: String { "\(operation) failed: \(String(cString: strerror(errno)))" }
}
