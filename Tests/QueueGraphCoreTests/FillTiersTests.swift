import Testing
@testable import QueueGraphCore

@Suite("Fill tiers")
struct FillTiersTests {
    /// A bitmap of three levels (300 000 > 64 × 64) against a plain set:
    /// inserts and removes in a scattered order, the first element checked
    /// after each.
    @Test("a level bitmap keeps the smallest element through every insert and remove", arguments: [1, 64, 4_097, 300_000])
    func levelBitmapAgainstASet(count: Int) {
        let bitmap = LevelBitmap(count: count)
        defer { bitmap.deallocate() }
        var model = Set<Int>()
        #expect(bitmap.first() == nil)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<20_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let element = Int(state >> 33) % count
            if model.contains(element) { bitmap.remove(element); model.remove(element) } else { bitmap.insert(element); model.insert(element) }
            #expect(bitmap.first() == model.min())
            if bitmap.first() != model.min() { return }
        }
        for element in model.sorted() {
            #expect(bitmap.first() == element)
            bitmap.remove(element)
        }
        #expect(bitmap.first() == nil)
    }

    @Test("the pick is the first slot of the lowest tier; a dirty slot moves, a clean one stays")
    func pickFollowsTheTiers() {
        let tiers = FillTiers(count: 5_000)
        var assigned: [Int: Int?] = [4_999: 2, 70: 1, 4_000: 1]
        for slot in assigned.keys { tiers.markDirty(Int32(slot)) }
        tiers.refresh { assigned[$0] ?? nil }
        #expect(tiers.first()! == (70, 1))
        assigned[70] = nil            // changed but not marked: still where it was
        tiers.refresh { assigned[$0] ?? nil }
        #expect(tiers.first()! == (70, 1))
        tiers.markDirty(70)
        tiers.refresh { assigned[$0] ?? nil }
        #expect(tiers.first()! == (4_000, 1))
        assigned[4_999] = 0
        tiers.markDirty(4_999)
        tiers.markDirty(4_999)        // once in the list
        tiers.refresh { assigned[$0] ?? nil }
        #expect(tiers.first()! == (4_999, 0))
    }
}
