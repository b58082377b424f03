/// A worker thread's own `BufferProvider`: free blocks by capacity class, no
/// lock on the hot path. It refills from its `BufferManager` in batches and
/// returns the surplus; when the slice is let go (its thread ends), all its
/// blocks go back to the manager. A buffer may be released on another
/// thread's slice than the one that locked it.
///
/// Threading: one thread at a time (the one that owns it).
public final class BufferSlice: BufferProvider {
    public let manager: BufferManager
    let counters = SliceCounters()
    /// Free blocks per capacity class. A few classes, searched in a line: a
    /// Dictionary's modify accessor allocated on every lock here (Tools/media-allocs).
    private var free: [(capacity: Int, blocks: [Block])] = []

    init(manager: BufferManager) { self.manager = manager }

    deinit {
        for (capacity, blocks) in free where !blocks.isEmpty { manager.give(blocks, capacity: capacity) }
        manager.retire(counters)
    }

    public func announce(_ count: Int, of descriptor: BufferDescriptor) -> Int {
        let capacity = capacityClass(descriptor.size)
        let i = list(capacity)
        if free[i].blocks.count < count { free[i].blocks += manager.take(count - free[i].blocks.count, capacity: capacity) }
        while free[i].blocks.count < count, let block = manager.allocate(capacity: capacity, alignment: descriptor.alignment) {
            free[i].blocks.append(block)
        }
        return min(count, free[i].blocks.count)
    }

    public func lock(_ descriptor: BufferDescriptor) throws(BufferProtocolError) -> BufferHandle {
        let capacity = capacityClass(descriptor.size)
        let block = try freeBlock(capacity: capacity, alignment: descriptor.alignment)
        let generation = block.generation
        try block.step(.lock, generation: generation)
        descriptor.payload?.initialise(block.memory)
        counters.locks.add(1, ordering: .relaxed)
        counters.bytesLeased.add(descriptor.size, ordering: .relaxed)
        return BufferHandle(block: block, generation: generation, descriptor: descriptor)
    }

    public func release(_ handle: BufferHandle) throws(BufferProtocolError) { try giveBack(handle, runDeinit: true) }

    public func emit(_ handle: BufferHandle) throws(BufferProtocolError) {
        try handle.block.step(.emit, generation: handle.generation)
        counters.emits.add(1, ordering: .relaxed)
    }

    public func block(_ handle: BufferHandle) throws(BufferProtocolError) {
        try handle.block.step(.block, generation: handle.generation)
        counters.blocks.add(1, ordering: .relaxed)
    }

    public func emergencyCleanup(_ handle: BufferHandle, runDeinit: Bool) throws(BufferProtocolError) {
        try giveBack(handle, runDeinit: runDeinit)
        counters.emergencyCleanups.add(1, ordering: .relaxed)
    }

    private func giveBack(_ handle: BufferHandle, runDeinit: Bool) throws(BufferProtocolError) {
        let block = handle.block
        try block.step(.release, generation: handle.generation)
        // The step made the block free, but only this slice can reach it.
        if runDeinit { handle.descriptor.payload?.deinitialise(block.memory) }
        counters.releases.add(1, ordering: .relaxed)
        counters.bytesLeased.subtract(handle.descriptor.size, ordering: .relaxed)
        // A thread that never locks (a sink, a process link dropping frames
        // its dead child held) keeps no cache: its blocks would wait there
        // while the threads that lock made new ones.
        guard counters.locks.load(ordering: .relaxed) > 0 else { return manager.give(CollectionOfOne(block), capacity: block.capacity) }
        // In place (the list stays uniquely referenced, so nothing is copied):
        // past the high-water mark, half of the list goes back to the manager.
        let i = list(block.capacity)
        free[i].blocks.append(block)
        if free[i].blocks.count > manager.sliceHighWater {
            let surplus = free[i].blocks.count / 2
            manager.give(free[i].blocks.suffix(surplus), capacity: block.capacity)
            free[i].blocks.removeLast(surplus)
        }
    }

    public var statistics: BufferProviderStatistics { manager.statistics }

    /// Free blocks this slice holds now.
    public var freeBlocks: Int { free.reduce(0) { $0 + $1.blocks.count } }

    /// The index of the free list of a capacity class (made on first use).
    private func list(_ capacity: Int) -> Int {
        if let i = free.firstIndex(where: { $0.capacity == capacity }) { return i }
        free.append((capacity, []))
        return free.count - 1
    }

    private func freeBlock(capacity: Int, alignment: Int) throws(BufferProtocolError) -> Block {
        let i = list(capacity)
        if let block = free[i].blocks.popLast() { return block }
        var batch = manager.take(max(1, manager.sliceHighWater / 2), capacity: capacity)
        if let block = batch.popLast() {
            free[i].blocks.append(contentsOf: batch)
            return block
        }
        guard let block = manager.allocate(capacity: capacity, alignment: alignment) else {
            throw .exhausted(bytes: capacity, budget: manager.budget ?? 0)
        }
        return block
    }
}
