import QueueGraphCore
import Synchronization

/// The central side of the production `BufferProvider`: it owns the blocks
/// no thread holds, the byte budget and the counters, and hands each worker
/// thread a `BufferSlice` (Lumiera's EngineBufferManager and its local
/// slices). Slices take blocks from here in batches when they run dry and
/// give batches back when they hold too many, so a thread's hot path never
/// takes this lock.
///
/// Threading: any thread.
public final class BufferManager: Sendable {
    /// Most bytes of blocks allocated at once, or nil for no limit.
    public let budget: Int?
    /// Blocks a slice keeps per capacity class before it gives half back.
    public let sliceHighWater: Int
    /// The shared memory its blocks are carved from, or nil for heap blocks.
    /// Frames in an arena cross a `child` queue as handles, with no copy.
    /// It grows as blocks are made and never shrinks (blocks are reused).
    public let arena: SharedMemory?
    private let arenaEnd = Locked(0)

    private let spare = Locked([Int: [Block]]())
    private let allocated = Atomic<Int>(0)
    private let allocatedBytes = Atomic<Int>(0)
    /// The live slices' counters, and the sums of the slices that ended
    /// (folded in then, so a program that starts many threads keeps no list of them).
    private let counters = Locked((live: [SliceCounters](), ended: BufferProviderStatistics()))

    public init(budget: Int? = nil, sliceHighWater: Int = 16, arena: SharedMemory? = nil) {
        precondition(sliceHighWater >= 2, "a slice must keep at least two blocks per class")
        self.budget = budget
        self.sliceHighWater = sliceHighWater
        self.arena = arena
    }

    /// A new slice for the calling thread; keep it on that thread, and let it
    /// go when the thread ends (its blocks come back here).
    public func slice() -> BufferSlice {
        let slice = BufferSlice(manager: self)
        counters.withLock { $0.live.append(slice.counters) }
        return slice
    }

    /// A slice ended: its counts join the totals.
    func retire(_ ended: SliceCounters) {
        counters.withLock { c in
            c.live.removeAll { $0 === ended }
            ended.add(to: &c.ended)
        }
    }

    /// The counters of every slice so far, summed.
    public var statistics: BufferProviderStatistics {
        var total = counters.withLock { c in c.live.reduce(into: c.ended) { $1.add(to: &$0) } }
        total.allocations = allocated.load(ordering: .relaxed)
        total.bytesAllocated = allocatedBytes.load(ordering: .relaxed)
        return total
    }

    /// Blocks held here now (not by any slice or holder).
    public var spareBlocks: Int { spare.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    // MARK: For slices

    /// Up to `count` spare blocks of `capacity`.
    func take(_ count: Int, capacity: Int) -> [Block] {
        spare.withLock { spare in
            guard let available = spare[capacity]?.count, available > 0 else { return [] }
            let taken = Array(spare[capacity]!.suffix(count))
            spare[capacity]!.removeLast(taken.count)   // in place: no copy of the list
            return taken
        }
    }

    func give(_ blocks: some Sequence<Block>, capacity: Int) {
        spare.withLock { $0[capacity, default: []].append(contentsOf: blocks) }
    }

    /// A new block, or nil when the budget does not allow it.
    func allocate(capacity: Int, alignment: Int) -> Block? {
        if let budget {
            var current = allocatedBytes.load(ordering: .relaxed)
            while true {
                guard current + capacity <= budget else { return nil }
                let (done, seen) = allocatedBytes.compareExchange(expected: current, desired: current + capacity, ordering: .relaxed)
                if done { break }
                current = seen
            }
        } else {
            allocatedBytes.add(capacity, ordering: .relaxed)
        }
        guard let arena else {
            allocated.add(1, ordering: .relaxed)
            return Block(capacity: capacity, alignment: alignment).prefaulted()
        }
        let offset: Int? = arenaEnd.withLock { end in
            let start = (end + alignment - 1) / alignment * alignment
            do throws(SharedMemoryError) { try arena.grow(to: start + capacity) } catch { return nil }
            end = start + capacity
            return start
        }
        guard let offset else {   // the arena's address space is used up
            allocatedBytes.subtract(capacity, ordering: .relaxed)
            return nil
        }
        allocated.add(1, ordering: .relaxed)
        return Block(capacity: capacity, in: arena, at: offset).prefaulted()
    }
}

/// One slice's counters; the manager keeps them after the slice is gone.
final class SliceCounters: Sendable {
    let locks = Atomic<Int>(0)
    let releases = Atomic<Int>(0)
    /// Locked here minus released here: a buffer locked on one thread and
    /// released on another moves bytes between slices; the sum is exact.
    let bytesLeased = Atomic<Int>(0)
    let emergencyCleanups = Atomic<Int>(0)
    let emits = Atomic<Int>(0)
    let blocks = Atomic<Int>(0)

    func add(to total: inout BufferProviderStatistics) {
        total.locks += locks.load(ordering: .relaxed)
        total.releases += releases.load(ordering: .relaxed)
        total.emergencyCleanups += emergencyCleanups.load(ordering: .relaxed)
        total.emits += emits.load(ordering: .relaxed)
        total.blocks += blocks.load(ordering: .relaxed)
        total.bytesLeased += bytesLeased.load(ordering: .relaxed)
    }
}
