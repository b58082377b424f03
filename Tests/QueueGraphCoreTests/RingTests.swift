import Testing
@testable import QueueGraphCore

@Suite("Single-producer ring")
struct RingTests {
    /// Entries that carry pool buffers in sequence order.
    final class Fixture {
        let pool = BufferPool(name: "ring", count: 64, payloadCapacity: 8)
        var next: UInt64 = 0

        func entry() -> Entry {
            let buffer = pool.createBuffer(payloadSize: 8, pad: 0)!
            buffer.sequence = next
            next += 1
            return Entry(buffer: buffer, from: 0, enqueuedAt: 0)
        }

        func pushAll(_ ring: SPSCRing) -> Int {
            var pushed = 0
            while true {
                let entry = entry()
                if ring.push(entry) == nil {
                    entry.buffer.dropHold(fate: .consumed)
                    next -= 1
                    return pushed
                }
                pushed += 1
            }
        }
    }

    @Test("a ring across threads frees room for its producer once per batch of pops, and at once when published")
    func batchedPublication() throws {
        let fixture = Fixture()
        let ring = SPSCRing(size: 32, publishEvery: 4)
        defer { ring.deallocate() }
        #expect(fixture.pushAll(ring) == 32)
        var expected: UInt64 = 0
        func pop() throws -> Int {
            let (entry, published) = try #require(ring.pop())
            #expect(entry.buffer.sequence == expected)
            expected += 1
            entry.buffer.dropHold(fate: .consumed)
            return published
        }
        // Three pops: the statistics see them, the producer does not yet.
        for _ in 0..<3 { #expect(try pop() == 0) }
        #expect(ring.count == 29)
        #expect(ring.countSeenByProducer == 32)
        #expect(fixture.pushAll(ring) == 0)
        // The fourth publishes the batch.
        #expect(try pop() == 0)
        #expect(ring.countSeenByProducer == 28)
        #expect(fixture.pushAll(ring) == 4)
        // A pop then an explicit publication (the queue does this when its
        // producer may be asleep, or when it finds the ring empty).
        #expect(try pop() == 4)
        #expect(ring.publishHead() == 4)
        #expect(ring.wasFull(seenFrom: 4))
        #expect(!ring.wasFull(seenFrom: 5))
        #expect(ring.publishHead() == 5)
        #expect(fixture.pushAll(ring) == 1)
        while !ring.isEmptySeenByConsumer { _ = try pop() }
        #expect(expected == 37)
        ring.publishHead()
        #expect(ring.countSeenByProducer == 0)
        #expect(fixture.pool.statistics().inUse == 0)
    }

    @Test("a ring on one thread publishes every pop: each frees room at once")
    func everyPopOnOneThread() throws {
        let fixture = Fixture()
        let ring = SPSCRing(size: 8)
        defer { ring.deallocate() }
        #expect(fixture.pushAll(ring) == 8)
        for expected in UInt64(0)..<16 {
            let (entry, published) = try #require(ring.pop())
            #expect(entry.buffer.sequence == expected)
            #expect(published == Int(expected))
            entry.buffer.dropHold(fate: .consumed)
            #expect(ring.count == 7)
            #expect(fixture.pushAll(ring) == 1)
        }
        while let (entry, _) = ring.pop() { entry.buffer.dropHold(fate: .consumed) }
        #expect(ring.isEmptySeenByConsumer)
        #expect(fixture.pool.statistics().inUse == 0)
    }

    @Test("the batch is at most a quarter of the ring, at least one entry")
    func batchIsBounded() {
        let fixture = Fixture()
        let ring = SPSCRing(size: 2, publishEvery: 16)
        defer { ring.deallocate() }
        #expect(fixture.pushAll(ring) == 2)
        ring.pop()!.entry.buffer.dropHold(fate: .consumed)
        #expect(fixture.pushAll(ring) == 1)
        while let (entry, _) = ring.pop() { entry.buffer.dropHold(fate: .consumed) }
        #expect(fixture.pool.statistics().inUse == 0)
    }
}
