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
    let count: Int
    /// One `LevelBitmap` per tier.
    private var tiers: [LevelBitmap]
    /// Each slot's tier, or -1 when it cannot run.
    private let current: UnsafeMutablePointer<Int8>
    private let isDirty: UnsafeMutablePointer<Bool>
    private let dirty: UnsafeMutablePointer<Int32>
    private var dirtyCount = 0
    /// Slots recomputed before every pick.
    var watched: [Int32] = []

    init(count: Int) {
        self.count = count
        tiers = (0..<Self.tierCount).map { _ in LevelBitmap(count: count) }
        current = .allocate(capacity: max(count, 1))
        current.initialize(repeating: -1, count: max(count, 1))
        isDirty = .allocate(capacity: max(count, 1))
        isDirty.initialize(repeating: false, count: max(count, 1))
        dirty = .allocate(capacity: max(count, 1))
    }

    deinit {
        for tier in tiers { tier.deallocate() }
        current.deallocate()
        isDirty.deallocate()
        dirty.deallocate()
    }

    /// Asks for `slot`'s tier to be recomputed before the next pick.
    @inline(__always)
    func markDirty(_ slot: Int32) {
        let s = Int(slot)
        if isDirty[s] { return }
        isDirty[s] = true
        dirty[dirtyCount] = slot
        dirtyCount &+= 1
    }

    @inline(__always)
    func markDirty(_ slots: UnsafeBufferPointer<Int32>) {
        for slot in slots { markDirty(slot) }
    }

    /// Recomputes every dirty and watched slot with `tier` (nil: cannot run).
    @inline(__always)
    func refresh(_ tier: (Int) -> Int?) {
        var i = 0
        while i < dirtyCount {
            let slot = Int(dirty[i])
            isDirty[slot] = false
            set(slot, tier(slot))
            i &+= 1
        }
        dirtyCount = 0
        for slot in watched { set(Int(slot), tier(Int(slot))) }
    }

    /// The first slot of the lowest non-empty tier.
    @inline(__always)
    func first() -> (slot: Int, tier: Int)? {
        for t in 0..<Self.tierCount {
            if let slot = tiers[t].first() { return (slot, t) }
        }
        return nil
    }

    /// The tier `slot` was last put in, or nil.
    func tier(of slot: Int) -> Int? { current[slot] < 0 ? nil : Int(current[slot]) }

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

/// A set of small integers with constant-time insert, remove and first
/// element: a bitmap plus summary levels (bit `w` of a level is set while
/// word `w` of the level below is not zero), up to a single top word.
struct LevelBitmap {
    /// Level 0 (one bit per element) first, the single top word last.
    private let levels: [UnsafeMutablePointer<UInt64>]

    init(count: Int) {
        var levels: [UnsafeMutablePointer<UInt64>] = []
        var bits = max(count, 1)
        repeat {
            let words = (bits + 63) / 64
            let level = UnsafeMutablePointer<UInt64>.allocate(capacity: words)
            level.initialize(repeating: 0, count: words)
            levels.append(level)
            bits = words
        } while bits > 1
        self.levels = levels
    }

    func deallocate() { for level in levels { level.deallocate() } }

    @inline(__always)
    func insert(_ element: Int) {
        var i = element
        for level in levels {
            let wasZero = level[i >> 6] == 0
            level[i >> 6] |= 1 << UInt64(i & 63)
            guard wasZero else { return }
            i >>= 6
        }
    }

    @inline(__always)
    func remove(_ element: Int) {
        var i = element
        for level in levels {
            level[i >> 6] &= ~(1 << UInt64(i & 63))
            guard level[i >> 6] == 0 else { return }
            i >>= 6
        }
    }

    @inline(__always)
    func first() -> Int? {
        var i = 0
        for level in levels.reversed() {
            let word = level[i]
            if word == 0 { return nil }
            i = i << 6 | word.trailingZeroBitCount
        }
        return i
    }
}
