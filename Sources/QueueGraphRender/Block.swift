#if canImport(Glibc)
import Glibc
#endif
import QueueGraphCore
import Synchronization

/// One block of memory a provider lends again and again: heap memory it
/// frees, or a piece of its manager's shared-memory arena. Its state and
/// generation (bumped by each release, so stale handles are caught) share
/// one atomic word, so a protocol step is one compare-and-swap.
///
/// Threading: any thread that holds a handle to it.
final class Block: @unchecked Sendable {
    let memory: UnsafeMutableRawPointer
    let capacity: Int
    /// The arena `memory` lies in (kept mapped while the block lives), or nil for heap memory.
    let arena: SharedMemory?
    private let word = Atomic<UInt64>(0)   // generation << 8 | state

    /// Heap blocks of at least this many bytes start on a huge page and ask
    /// for huge pages (`MADV_HUGEPAGE`): a 1080p frame then takes 4 page
    /// faults instead of 2 000, prefaulting a stream's blocks is several
    /// times faster, and reading a frame misses the TLB less.
    static let hugePage = 2 << 20

    init(capacity: Int, alignment: Int) {
        self.capacity = capacity
        let huge = capacity >= Block.hugePage
        memory = .allocate(byteCount: capacity, alignment: huge ? max(alignment, Block.hugePage) : alignment)
        if huge { _ = madvise(memory, capacity & ~(Block.hugePage - 1), MADV_HUGEPAGE) }   // advice only: without THP nothing changes
        arena = nil
    }

    init(capacity: Int, in arena: SharedMemory, at offset: Int) {
        (self.capacity, self.arena) = (capacity, arena)
        memory = arena.base + offset
    }

    deinit { if arena == nil { memory.deallocate() } }

    /// Touches every page once, so that the block's memory is resident from
    /// now on: the page faults happen when the block is made (announced
    /// ahead, at a stream's start), not in the middle of a frame job, and the
    /// resident set stops growing once the blocks exist.
    func prefaulted() -> Block {
        let page = 4096
        var offset = 0
        while offset < capacity {
            memory.storeBytes(of: 0, toByteOffset: offset, as: UInt8.self)
            offset += page
        }
        return self
    }

    /// The generation the next lock hands out.
    var generation: UInt32 { UInt32(truncatingIfNeeded: word.load(ordering: .acquiring) >> 8) }

    /// The current state, checking that `generation` is still the block's.
    func state(generation: UInt32) throws(BufferProtocolError) -> BufferState {
        let current = word.load(ordering: .acquiring)
        guard UInt32(truncatingIfNeeded: current >> 8) == generation else { throw .released(nil) }
        return BufferState(rawValue: UInt8(truncatingIfNeeded: current))!
    }

    /// Takes `action` if the protocol allows it in the current state;
    /// a release bumps the generation. Returns the state before.
    @discardableResult
    func step(_ action: BufferAction, generation: UInt32) throws(BufferProtocolError) -> BufferState {
        var current = word.load(ordering: .acquiring)
        while true {
            let held = UInt32(truncatingIfNeeded: current >> 8)
            guard held == generation else { throw .released(action) }
            let state = BufferState(rawValue: UInt8(truncatingIfNeeded: current))!
            guard let next = state.after(action) else { throw .illegal(action, in: state) }
            let nextGeneration = next == .free ? held &+ 1 : held
            let (done, seen) = word.compareExchange(
                expected: current, desired: UInt64(nextGeneration) << 8 | UInt64(next.rawValue), ordering: .acquiringAndReleasing)
            if done { return state }
            current = seen
        }
    }
}

/// Blocks are kept by capacity class: sizes rounded up to 64 bytes, and to
/// 4 KiB from 64 KiB up, so frames of one format share blocks.
func capacityClass(_ size: Int) -> Int {
    let granule = size >= 65_536 ? 4096 : 64
    return (size + granule - 1) / granule * granule
}
