import QueueGraphTestKit
import Testing
@testable import QueueGraphCore

/// Replaces every buffer with a new one from the creator its queue's buffer
/// management names, recording which creator that was.
final class Replacer: BufferProcessor, @unchecked Sendable {
    var creators: [String] = []
    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        guard let fresh = context.acquireBuffer(size: buffer.size) else { return .failed }
        creators.append(fresh.creator.name)
        fresh.sequence = buffer.sequence
        context.doneBuffer(buffer)
        context.sendTo(0, fresh)
        return .ok
    }
}

@Suite("Buffer management")
struct BufferManagementTests {
    @Test("upstream and downstream take new buffers from the nearest provider on their side",
          arguments: [(BufferManagement.upstream, "up"), (.downstream, "down")])
    func nearestProvider(management: BufferManagement, expected: String) throws {
        let replacer = Replacer()
        let graph = try QueueGraphConfig()
            .adding(QueueConfig(name: "up", buffers: .provider, processor: { _ in CountingSource(count: 50) },
                                creator: { _ in BufferPool(name: "up", count: 8, payloadCapacity: 16) }))
            .adding(QueueConfig(name: "mid", buffers: management, processor: { _ in replacer }))
            .adding(QueueConfig(name: "down", buffers: .provider, outPads: 0, processor: { _ in CountingSink() },
                                creator: { _ in BufferPool(name: "down", count: 8, payloadCapacity: 16) }))
            .connecting("up", to: "mid").connecting("mid", to: "down")
            .createSteppedGraph()
        graph.run()
        #expect(graph.isFinished)
        #expect(replacer.creators == Array(repeating: expected, count: 50))
        #expect(graph.statistics().ledgerProblems().isEmpty)
    }

    @Test("forward queues create nothing: acquireBuffer gives nil")
    func forwardCreatesNothing() throws {
        let h = try ProcessorHarness(QueueConfig(name: "q", processor: { _ in Replacer() }))
        h.push(sequences: 1...3)
        h.finish()
        #expect(h.outputs == [[]])
        #expect(h.statistics()[queue: "q"]?.dropped == [.failed: 3])
        #expect(Ledger.problems(h.statistics(), pools: [h.pool]).isEmpty)
    }
}
