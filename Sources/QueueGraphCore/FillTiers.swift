/// The queues of one scheduler group sorted into fill-level tiers, kept up
/// to date as buffers move, so that choosing the next queue costs the same
/// with ten queues on the thread or ten thousand.
///
///     slot:   0   1   2   3   4   5   …      (declaration order in the group)
///     tier 0  ·   ●   ·   ·   ●   ·          ← first set bit of the lowest
///     tier 1  ●   ·   ·   ·   ·   ·            non-empty tier is the pick
///     tier 2  ·   ·   ·   ●   ·   ·
///     tier 3  ·   ·   ·   ·   ·   ·
///
/// Each tier is a bitmap with a summary level per 64 words, so finding the
/// first queue of a tier reads one word per level (three levels up to
/// 262 144 queues). A queue's tier is recomputed only when something it
/// depends on may have changed:
///
/// - **dirty slots**, marked on this thread: a push or pop on a queue marks
///   it and its upstream queues in the group (their tier reads its depth);
///   a run marks the queue that ran (a source's state, the end of stream);
///   an end marks the queues downstream in the group.
/// - **watched slots**, recomputed before every pick: the queues whose tier
///   another thread can change (an upstream or downstream queue on another
///   thread, external input, a gated processor). Their count is that of the
///   group's thread boundaries, not of its queues.
/// - **waiting sources**, recomputed once their time has come.
///
/// Threading: the group's scheduler thread only.
final class FillTiers {
    static let tierCount = 4
    /// One `LevelBitmap` per tier.
    private let tiers: [LevelBitmap]
    /// Each slot's tier, or -1 when it cannot run.
    private let current: UnsafeMutablePointer<Int8>
    /// The slots to recompute; queues of the group mark them through a copy.
    let dirty: DirtySlots
    /// Slots recomputed before every pick (see `watch`).
    @exclusivity(unchecked) private var watchedSlots = UnsafeBufferPointer<Int32>(start: nil, count: 0)

    init(count: Int) {
        tiers = (0..<Self.tierCount).map { _ in LevelBitmap(count: count) }
        current = .allocate(capacity: max(count, 1))
        current.initialize(repeating: -1, count: max(count, 1))
        dirty = DirtySlots(count: count)
    }

    deinit {
        for tier in tiers { tier.deallocate() }
        current.deallocate()
        dirty.deallocate()
        watchedSlots.deallocate()
    }

    /// Sets the slots to recompute before every pick; once, before the graph
    /// runs. They stay marked, so marking them again costs nothing.
    func watch(_ slots: [Int32]) {
        for slot in watchedSlots { dirty.isMarked[Int(slot)] = false; dirty.mark(slot) }   // once more, then as any other
        watchedSlots.deallocate()
        let buffer = UnsafeMutableBufferPointer<Int32>.allocate(capacity: slots.count)
        _ = buffer.initialize(from: slots)
        watchedSlots = UnsafeBufferPointer(buffer)
        for slot in slots { dirty.isMarked[Int(slot)] = true }
    }

    /// Asks for `slot`'s tier to be recomputed before the next pick.
    @inline(__always)
    func markDirty(_ slot: Int32) { dirty.mark(slot) }

    /// Recomputes every dirty and watched slot with `tier` (nil: cannot run).
    @inline(__always)
    func refresh(_ tier: (Int) -> Int?) {
        var i = 0
        while i < dirty.count.pointee {
            let slot = Int(dirty.list[i])
            dirty.isMarked[slot] = false
            set(slot, tier(slot))
            i &+= 1
        }
        dirty.count.pointee = 0
        for slot in watchedSlots { set(Int(slot), tier(Int(slot))) }
    }

    /// The first slot of the lowest non-empty tier.
    @inline(__always)
    func first() -> (slot: Int, tier: Int)? {
        for t in 0..<Self.tierCount {
            if let slot = tiers[t].first() { return (slot, t) }
        }
        return nil
    }

    @inline(__always)
    private func set(_ slot: Int, _ tier: Int?) {
        let new = Int8(tier ?? -1)
        let old = current[slot]
        if new == old { return }
        if old >= 0 { tiers[Int(old)].remove(slot) }
        if new >= 0 { tiers[Int(new)].insert(slot) }
        current[slot] = new
    }
}

/// The slots of one group whose tier must be recomputed: a list without
/// repeats. A value of plain pointers, so that a queue marks slots on the hot
/// path without reference counting; `FillTiers` owns the memory.
///
/// Threading: the group's scheduler thread only.
struct DirtySlots: @unchecked Sendable {
    let isMarked: UnsafeMutablePointer<Bool>
    let list: UnsafeMutablePointer<Int32>
    let count: UnsafeMutablePointer<Int>

    init(count slots: Int) {
        isMarked = .allocate(capacity: max(slots, 1))
        isMarked.initialize(repeating: false, count: max(slots, 1))
        list = .allocate(capacity: max(slots, 1))
        count = .allocate(capacity: 1)
        count.initialize(to: 0)
    }

    func deallocate() {
        isMarked.deallocate()
        list.deallocate()
        count.deallocate()
    }

    @inline(__always)
    func mark(_ slot: Int32) {
        if isMarked[Int(slot)] { return }
        isMarked[Int(slot)] = true
        list[count.pointee] = slot
        count.pointee &+= 1
    }

    @inline(__always)
    func mark(_ slots: UnsafeBufferPointer<Int32>) {
        for slot in slots { mark(slot) }
    }
}

/// A set of small integers with constant-time insert, remove and first
/// element: a bitmap plus summary levels (bit `w` of a level is set while
/// word `w` of the level below is not zero), up to a single top word. All
/// levels live in one allocation, bottom level first; no reference counting.
struct LevelBitmap {
    private let words: UnsafeMutablePointer<UInt64>
    /// Where each level starts in `words`, bottom first; the last is the top word.
    private let starts: UnsafeMutablePointer<Int>
    private let levelCount: Int

    init(count: Int) {
        var starts: [Int] = []
        var total = 0
        var bits = max(count, 1)
        repeat {
            starts.append(total)
            let levelWords = (bits + 63) / 64
            total += levelWords
            bits = levelWords
        } while bits > 1
        words = .allocate(capacity: total)
        words.initialize(repeating: 0, count: total)
        self.starts = .allocate(capacity: starts.count)
        self.starts.initialize(from: starts, count: starts.count)
        levelCount = starts.count
    }

    func deallocate() {
        words.deallocate()
        starts.deallocate()
    }

    @inline(__always)
    func insert(_ element: Int) {
        var i = element
        for level in 0..<levelCount {
            let word = words + starts[level] + i >> 6
            let wasZero = word.pointee == 0
            word.pointee |= 1 << UInt64(i & 63)
            guard wasZero else { return }
            i >>= 6
        }
    }

    @inline(__always)
    func remove(_ element: Int) {
        var i = element
        for level in 0..<levelCount {
            let word = words + starts[level] + i >> 6
            word.pointee &= ~(1 << UInt64(i & 63))
            guard word.pointee == 0 else { return }
            i >>= 6
        }
    }

    @inline(__always)
    func first() -> Int? {
        var level = levelCount - 1
        var i = 0
        while true {
            let word = words[starts[level] + i]
            if word == 0 { return nil }
            i = i << 6 | word.trailingZeroBitCount
            if level == 0 { return i }
            level -= 1
        }
    }
}
