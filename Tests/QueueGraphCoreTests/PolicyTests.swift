import QueueGraphTestKit
import Testing
@testable import QueueGraphCore

private func forwarder(_ name: String = "q", size: Int, management: QueueManagement = .default,
                       discipline: QueueDiscipline = .fifo, byteBound: Int? = nil) -> QueueConfig {
    QueueConfig(name: name, size: size, management: management, discipline: discipline, byteBound: byteBound,
                processor: { _ in Forwarder() })
}

@Suite("Queue policies")
struct PolicyTests {
    @Test("taildrop size 3 fed 1…5 keeps 1–3 and counts 2 drops")
    func taildrop() throws {
        let h = try ProcessorHarness(forwarder(size: 3, management: .taildrop))
        let results = h.push(sequences: 1...5)
        #expect(results == [.accepted, .accepted, .accepted, .dropped(.taildrop), .dropped(.taildrop)])
        h.finish()
        #expect(h.outputs == [[1, 2, 3]])
        let stats = h.statistics()
        #expect(stats[queue: "q"]?.dropped == [.taildrop: 2])
        #expect(Ledger.problems(stats, pools: [h.pool]).isEmpty)
    }

    @Test("headdrop size 3 fed 1…5 keeps 3–5")
    func headdrop() throws {
        let h = try ProcessorHarness(forwarder(size: 3, management: .headdrop))
        #expect(h.push(sequences: 1...5) == Array(repeating: .accepted, count: 5))
        h.finish()
        #expect(h.outputs == [[3, 4, 5]])
        #expect(h.statistics()[queue: "q"]?.dropped == [.headdrop: 2])
        #expect(Ledger.problems(h.statistics(), pools: [h.pool]).isEmpty)
    }

    @Test("default: a full queue refuses with .full and the caller keeps the buffer")
    func defaultRefusesWhenFull() throws {
        let h = try ProcessorHarness(forwarder(size: 2))
        let third = h.makeBuffer(sequence: 3)
        #expect(h.push(sequences: 1...2) == [.accepted, .accepted])
        #expect(h.push(third) == .full)
        #expect(third.holderCount == 1)
        h.run()
        #expect(h.push(third) == .accepted)
        h.finish()
        #expect(h.outputs == [[1, 2, 3]])
        #expect(h.statistics()[queue: "q"]?.totalDropped == 0)
        #expect(Ledger.problems(h.statistics(), pools: [h.pool]).isEmpty)
    }

    @Test("fifo, lifo and prio give buffers out in their order", arguments: [
        (QueueDiscipline.fifo, [UInt64(1), 2, 3, 4, 5]),
        (.lifo, [5, 4, 3, 2, 1]),
        (.prio, [2, 4, 1, 3, 5]),   // priority 1 for even numbers, then arrival order
    ])
    func disciplines(discipline: QueueDiscipline, expected: [UInt64]) throws {
        let h = try ProcessorHarness(forwarder(size: 8, discipline: discipline))
        for n in UInt64(1)...5 { h.push(h.makeBuffer(sequence: n, priority: n % 2 == 0 ? 1 : 0)) }
        h.finish()
        #expect(h.outputs == [expected])
    }

    @Test("a byte bound refuses (default) or drops (taildrop) what would exceed it")
    func byteBound() throws {
        let h = try ProcessorHarness(forwarder(size: 8, management: .taildrop, byteBound: 20))
        let results = (1...4).map { h.push(h.makeBuffer(sequence: UInt64($0), size: 8)) }
        #expect(results == [.accepted, .accepted, .dropped(.bytes), .dropped(.bytes)])
        h.finish()
        #expect(h.outputs == [[1, 2]])
    }

    @Test("RED never drops below the minimum threshold")
    func redBelowMinimum() {
        var red = REDState(RED(minThreshold: 10, maxThreshold: 30, maxProbability: 1, weight: 1, seed: 7))
        let drops = (0..<10).filter { red.shouldDrop(depth: $0, capacity: 40) }
        #expect(drops.isEmpty)
    }

    @Test("RED always drops at capacity and at or above the maximum threshold")
    func redAtCapacity() {
        var red = REDState(RED(minThreshold: 10, maxThreshold: 30, maxProbability: 0.01, weight: 0.001, seed: 7))
        let atCapacity = red.shouldDrop(depth: 40, capacity: 40)
        #expect(atCapacity)
        var high = REDState(RED(minThreshold: 10, maxThreshold: 30, maxProbability: 0.01, weight: 1, seed: 7))
        let atMaximum = high.shouldDrop(depth: 30, capacity: 40)
        #expect(atMaximum)
    }

    @Test("RED's drop rate rises with the average fill (seeded)")
    func redRateRises() {
        func rate(at depth: Int) -> Double {
            var red = REDState(RED(minThreshold: 10, maxThreshold: 30, maxProbability: 0.2, weight: 1, seed: 42))
            let drops = (0..<20_000).filter { _ in red.shouldDrop(depth: depth, capacity: 40) }.count
            return Double(drops) / 20_000
        }
        let rates = [12, 18, 24, 29].map(rate)
        #expect(rates[0] > 0)
        #expect(zip(rates, rates.dropFirst()).allSatisfy { $0 < $1 }, "rates \(rates)")
        // The same seed gives the same drops.
        #expect(rate(at: 20) == rate(at: 20))
    }

    @Test("RED through a queue: no drops while the average stays under the minimum")
    func redQueue() throws {
        let h = try ProcessorHarness(forwarder(size: 16, management: .red(RED(minThreshold: 4, maxThreshold: 12, weight: 1))))
        #expect(h.push(sequences: 1...4).allSatisfy { $0 == .accepted })
        let later = h.push(sequences: 5...16)
        #expect(later.contains(.dropped(.red)))
        h.finish()
        let stats = h.statistics()
        #expect(stats[queue: "q"]!.popped + stats[queue: "q"]!.totalDropped == 16)
        #expect(Ledger.problems(stats, pools: [h.pool]).isEmpty)
    }
}
