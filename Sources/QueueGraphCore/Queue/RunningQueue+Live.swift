/// Live changes to a queue (`GraphEngine+Live`).
///
/// Threading: only while every scheduler thread of the graph is parked
/// between invocations (`QueueGraph` parks them), or on the stepping thread.
extension RunningQueue {
    /// Takes a new size and management: the storage is made again (a ring
    /// where it now fits) and the queued buffers move into it. Buffers
    /// beyond the new size are dropped and counted, the oldest for
    /// `headdrop`, the newest otherwise; a `default` queue never drops, so
    /// the engine refuses to shrink one below its depth.
    func reconfigure(size: Int, management: QueueManagement) {
        var entries = takeAll()
        config.size = size
        config.management = management
        self.size = size
        drops = management.drops
        let excess = max(0, entries.count - size)
        let reason: DropReason = management == .headdrop ? .headdrop : .taildrop
        let dropped = management == .headdrop ? Array(entries.prefix(excess)) : Array(entries.suffix(excess))
        if management == .headdrop { entries.removeFirst(excess) } else { entries.removeLast(excess) }
        let old = storage
        storage = Self.storage(for: config, predecessors: predecessors, isInput: isInput, crossesThreads: crossesThreads)
        switch storage {
        case .ring(let ring): for entry in entries { _ = ring.push(entry) }
        case .locked(let store): store.adopt(entries)
        }
        if case .ring(let ring) = old { ring.deallocate() }
        for entry in dropped {
            counters.dropped(reason).add()
            release(entry.buffer, droppedFor: reason, from: entry.from)
        }
    }
}
