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
    private var free: [Int: [Block]] = [:]

    init(manager: BufferManager) { self.manager = manager }

    deinit {
        for (capacity, blocks) in free { manager.give(blocks, capacity: capacity) }
        manager.retire(counters)
    }

    public func announce(_ count: Int, of descriptor: BufferDescriptor) -> Int {
        let capacity = capacityClass(descriptor.size)
        var have = free.removeValue(forKey: capacity) ?? []
        if have.count < count { have += manager.take(count - have.count, capacity: capacity) }
        while have.count < count, let block = manager.allocate(capacity: capacity, alignment: descriptor.alignment) {
            have.append(block)
        }
        free[capacity] = have
        return min(count, have.count)
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

    public func release(_ handle: BufferHandle) throws(BufferProtocolError) {
        let block = handle.block
        try block.step(.release, generation: handle.generation)
        // The step made the block free, but only this slice can reach it.
        handle.descriptor.payload?.deinitialise(block.memory)
        counters.releases.add(1, ordering: .relaxed)
        counters.bytesLeased.subtract(handle.descriptor.size, ordering: .relaxed)
        // A thread that never locks (a sink, a process link dropping frames
        // its dead child held) keeps no cache: its blocks would wait there
        // while the threads that lock made new ones.
        guard counters.locks.load(ordering: .relaxed) > 0 else { return manager.give(CollectionOfOne(block), capacity: block.capacity) }
        let surplus = Self.keep(block, in: &free[block.capacity, default: []], highWater: manager.sliceHighWater)
        if !surplus.isEmpty { manager.give(surplus, capacity: block.capacity) }
    }

    /// Adds `block` to its free list (in place: one hash) and returns the
    /// half of the list to give back when it grew past `highWater`.
    private static func keep(_ block: Block, in list: inout [Block], highWater: Int) -> ArraySlice<Block> {
        list.append(block)
        guard list.count > highWater else { return [] }
        let surplus = list.suffix(list.count / 2)
        list.removeLast(surplus.count)
        return surplus
    }

    public var statistics: BufferProviderStatistics { manager.statistics }

    /// Free blocks this slice holds now.
    public var freeBlocks: Int { free.values.reduce(0) { $0 + $1.count } }

    private func freeBlock(capacity: Int, alignment: Int) throws(BufferProtocolError) -> Block {
        if let block = free[capacity]?.popLast() { return block }
        var batch = manager.take(max(1, manager.sliceHighWater / 2), capacity: capacity)
        if let block = batch.popLast() {
            free[capacity, default: []].append(contentsOf: batch)
            return block
        }
        guard let block = manager.allocate(capacity: capacity, alignment: alignment) else {
            throw .exhausted(bytes: capacity, budget: manager.budget ?? 0)
        }
        return block
    }
}
