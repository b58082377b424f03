import QueueGraphTestKit
import Testing
@_spi(Runtime) @testable import QueueGraphCore

/// A source that records acks and naks per sequence number.
final class FeedbackSource: BufferSource, @unchecked Sendable {
    let count: Int
    let burst: Int
    var sent = 0
    var acks: [UInt64: Int] = [:]
    var naks: [UInt64: Int] = [:]

    init(count: Int, burst: Int = 1) {
        self.count = count
        self.burst = burst
    }

    func produce(context: ProcessContext) -> ProduceResult {
        for _ in 0..<burst where sent < count {
            guard let buffer = context.acquireBuffer(size: 8) else { return .waitingForBuffer }
            buffer.sequence = UInt64(sent)
            if context.sendTo(0, buffer) == .full { context.doneBuffer(buffer); return .produced }
            sent += 1
        }
        return sent == count ? .endOfStream : .produced
    }

    func recvAck(_ buffer: Buffer, context: ProcessContext) {
        acks[buffer.sequence, default: 0] += 1
    }

    func recvNak(_ buffer: Buffer, reason: DropReason, context: ProcessContext) {
        naks[buffer.sequence, default: 0] += 1
    }
}

/// Fails every buffer whose sequence is a multiple of `every`.
final class FailingSink: BufferProcessor, @unchecked Sendable {
    let every: UInt64
    init(every: UInt64) { self.every = every }
    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        if buffer.sequence % every == 0 { return .failed }
        context.doneBuffer(buffer)
        return .ok
    }
}

private func pool(_ count: Int = 16) -> BufferCreatorFactory {
    { q in BufferPool(name: q.name, count: count, payloadCapacity: 64) }
}

@Suite("Scheduling, sync and the ledger")
struct SchedulingTests {
    @Test("ack: the sender hears exactly once per buffer")
    func ackOncePerBuffer() throws {
        let source = FeedbackSource(count: 500)
        let sink = CountingSink()
        let graph = try QueueGraphConfig()
            .adding(QueueConfig(name: "src", buffers: .provider, processor: { _ in source }, creator: pool()))
            .adding(QueueConfig(name: "sink", size: 4, sync: .ack, outPads: 0, processor: { _ in sink }))
            .connecting("src", to: "sink")
            .createSteppedGraph()
        graph.run()
        #expect(graph.isFinished)
        #expect(sink.buffers == 500)
        #expect(source.acks.count == 500 && source.acks.values.allSatisfy { $0 == 1 })
        #expect(graph.statistics()[queue: "sink"]?.acks == 500)
        #expect(graph.statistics().ledgerProblems().isEmpty)
    }

    @Test("nak: the sender hears once for each buffer dropped or failed downstream")
    func nakOncePerDroppedOrFailed() throws {
        let source = FeedbackSource(count: 300, burst: 5)
        let graph = try QueueGraphConfig()
            .adding(QueueConfig(name: "src", buffers: .provider, processor: { _ in source }, creator: pool(32)))
            .adding(QueueConfig(name: "sink", size: 3, management: .taildrop, sync: .nak, outPads: 0,
                                processor: { _ in FailingSink(every: 7) }))
            .connecting("src", to: "sink")
            .createSteppedGraph()
        graph.run()
        #expect(graph.isFinished)
        let stats = graph.statistics()[queue: "sink"]!
        #expect(stats.dropped[.taildrop, default: 0] > 0)
        #expect(stats.dropped[.failed, default: 0] > 0)
        #expect(source.naks.values.allSatisfy { $0 == 1 })
        #expect(source.naks.count == stats.totalDropped)
        #expect(stats.naks == stats.totalDropped)
        #expect(graph.statistics().ledgerProblems().isEmpty)
    }

    @Test("default never drops and never exceeds its size under a fast producer")
    func defaultBackPressure() throws {
        let sink = CountingSink()
        let graph = try QueueGraphConfig()
            .adding(QueueConfig(name: "src", buffers: .provider, processor: { _ in FeedbackSource(count: 1000, burst: 1) },
                                creator: pool(64)))
            .adding(QueueConfig(name: "mid", size: 4, processor: { _ in Forwarder() }))
            .adding(QueueConfig(name: "sink", size: 2, outPads: 0, processor: { _ in sink }))
            .connecting("src", to: "mid").connecting("mid", to: "sink")
            .createSteppedGraph()
        graph.run()
        let stats = graph.statistics()
        #expect(sink.buffers == 1000)
        #expect(stats.queues.allSatisfy { $0.totalDropped == 0 })
        #expect(stats[queue: "mid"]!.maxDepth <= 4 && stats[queue: "sink"]!.maxDepth <= 2)
        #expect(stats.ledgerProblems().isEmpty)
    }

    @Test("stepping follows the seed's tiers: empty downstream first, full downstream never")
    func steppingTiers() throws {
        // p0…p3 feed sinks s0…s3 filled to empty, under half, over half and full.
        var config = QueueGraphConfig()
        for i in 0..<4 { config.queues.append(QueueConfig(name: "p\(i)", size: 8, processor: { _ in Forwarder() })) }
        for i in 0..<4 {
            config.queues.append(QueueConfig(name: "s\(i)", size: 4, outPads: 0, processor: { _ in CountingSink() }))
            config.connections.append(Connection(from: "p\(i)", to: "s\(i)"))
        }
        let bufferPool = TrackingPool(name: "t", count: 32, payloadCapacity: 8)
        let graph = try config.createSteppedGraph()
        let engine = graph.engine
        for i in 0..<4 { for _ in 0..<2 { try graph.input("p\(i)").push(bufferPool.createBuffer(payloadSize: 8, pad: -1)!) } }
        for (i, fill) in [0, 1, 3, 4].enumerated() {
            for _ in 0..<fill { _ = engine.queues[4 + i].push(bufferPool.createBuffer(payloadSize: 8, pad: -1)!, from: -1, fromGroup: -1) }
        }
        let scheduler = engine.schedulers[0]
        #expect((0..<4).map { scheduler.tier(of: engine.queues[$0], now: 0) } == [0, 1, 2, nil])
        let reports = graph.run(limit: 1000)
        #expect(reports.first == StepReport(queue: "p0", action: .processed, tier: 0))
        let firstP3 = reports.firstIndex { $0.queue == "p3" }!
        let firstS3 = reports.firstIndex { $0.queue == "s3" }!
        #expect(firstS3 < firstP3, "p3 ran into its full downstream")
        // p1 (downstream under half) runs before p2 (over half) once p0 is no longer tier 0.
        #expect(reports.firstIndex { $0.queue == "p1" }! < reports.firstIndex { $0.queue == "p2" }!)
        graph.beginDrain()
        graph.run()
        #expect(graph.isFinished)
        #expect(Ledger.problems(graph.statistics(), pools: [bufferPool]).isEmpty)
    }

    @Test("reuse: a shared buffer is copied so each reuse queue owns its own")
    func reuseCopiesSharedBuffers() throws {
        final class Stamp: BufferProcessor, @unchecked Sendable {
            let value: UInt8
            var seen: [UInt8] = []
            init(_ value: UInt8) { self.value = value }
            func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
                #expect(buffer.holderCount == 1)
                buffer.bytes[0] = value
                seen.append(buffer.bytes[0])
                context.doneBuffer(buffer)
                return .ok
            }
        }
        let a = Stamp(1), b = Stamp(2)
        let graph = try QueueGraphConfig()
            .adding(QueueConfig(name: "src", buffers: .provider, processor: { _ in CountingSource(count: 20) }, creator: pool(8)))
            .adding(QueueConfig(name: "tee", outPads: 2, processor: { _ in Tee() }))
            .adding(QueueConfig(name: "a", buffers: .reuse, outPads: 0, processor: { _ in a }))
            .adding(QueueConfig(name: "b", buffers: .reuse, outPads: 0, processor: { _ in b }))
            .connecting("src", to: "tee").connecting("tee", pad: 0, to: "a").connecting("tee", pad: 1, to: "b")
            .createSteppedGraph()
        graph.run()
        #expect(a.seen == Array(repeating: 1, count: 20) && b.seen == Array(repeating: 2, count: 20))
        #expect(graph.statistics().ledgerProblems().isEmpty)
    }

    @Test("abandon releases every queued buffer and the ledger balances")
    func abandonBalances() throws {
        let bufferPool = TrackingPool(name: "t", count: 16, payloadCapacity: 8)
        let graph = try QueueGraphConfig()
            .adding(QueueConfig(name: "in", size: 16, processor: { _ in Forwarder() }))
            .adding(QueueConfig(name: "out", size: 4, outPads: 0, processor: { _ in CountingSink() }))
            .connecting("in", to: "out")
            .createSteppedGraph()
        let input = try graph.input("in")
        for _ in 0..<10 { input.push(bufferPool.createBuffer(payloadSize: 8, pad: -1)!) }
        graph.run(limit: 3)
        graph.abandon()
        let stats = graph.statistics()
        #expect(stats.queues.map(\.abandoned).reduce(0, +) > 0)
        #expect(Ledger.problems(stats, pools: [bufferPool]).isEmpty)
        #expect(bufferPool.statistics().abandoned + bufferPool.statistics().consumed == 10)
    }

    @Test("a far side that ended: what it held counts as abandoned, even when it was killed mid-push and its depth ran ahead of its arrivals")
    func endedSideRowsBalance() {
        func row(arrived: Int, popped: Int, taildrop: Int, depth: Int) -> QueueStatistics {
            QueueStatistics(name: "effect", thread: 0, arrived: arrived, popped: popped, dropped: [.taildrop: taildrop], acks: 0, naks: 0,
                            abandoned: 0, depth: depth, maxDepth: 16, bytesPopped: 0,
                            residencyMeanNanoseconds: 0, residencyMaxNanoseconds: 0, residencySamples: 0)
        }
        let thread = ThreadStatistics(group: 0, queues: ["effect"], invocations: 1, busyNanoseconds: 1, idleNanoseconds: 1, wakeups: 1)
        let rows = PartRows()
        // Killed as it pushed its 21st buffer: the ring held 9, `arrived` said 20.
        rows.fold((queues: [row(arrived: 20, popped: 10, taildrop: 2, depth: 9)], thread: thread))
        rows.fold((queues: [row(arrived: 5, popped: 5, taildrop: 0, depth: 0)], thread: thread))
        var statistics = GraphStatistics(queues: [], pools: [], threads: [])
        rows.add(running: (queues: [row(arrived: 7, popped: 7, taildrop: 0, depth: 0)], thread: thread), link: "effect", to: &statistics)
        let effect = statistics.queues[0]
        #expect(effect.arrived == 32 && effect.abandoned == 8 && effect.popped == 22)
        #expect(statistics.ledgerProblems().isEmpty, "\(statistics.ledgerProblems())")
    }
}
