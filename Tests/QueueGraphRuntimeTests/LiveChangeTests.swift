import Foundation
import QueueGraphCore
import QueueGraphRuntime
import QueueGraphTestKit
import Synchronization
import Testing

/// Records, for each buffer, the `gain` it was processed with.
final class GainRecorder: LiveParameters, @unchecked Sendable {
    private let seen = Mutex<[Int]>([])
    private var gain = 1
    var gains: [Int] { seen.withLock { $0 } }

    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        seen.withLock { $0.append(gain) }
        context.doneBuffer(buffer)
        return .ok
    }

    func setParameter(_ name: String, to value: ParameterValue) {
        if name == "gain", case .integer(let gain) = value { self.gain = gain }
    }
}

/// Polls `condition` for up to thirty seconds, returning as soon as it holds (no timing is asserted: the bound only keeps a broken run from hanging).
private func eventually(_ condition: () -> Bool) -> Bool {
    for _ in 0..<30_000 where !condition() { usleep(1_000) }
    return condition()
}

@Suite("live changes to a running graph")
struct LiveChangeTests {
    /// What the sink has taken so far (from the counters: its own fields belong to its thread until the stop).
    private static func delivered(_ graph: QueueGraph) -> Int {
        graph.statistics().queues.first { $0.name == "sink" }?.popped ?? 0
    }

    private static func pushed(_ input: GraphInput, _ pool: TrackingPool, count: Int, from first: Int = 0) {
        for n in first..<(first + count) {
            let buffer = pool.createBuffer(payloadSize: 8, pad: -1, whenExhaustedWait: true)
            buffer.sequence = UInt64(n)
            #expect(input.push(buffer, whenFull: .wait(timeoutNanoseconds: 5_000_000_000)) == .accepted)
        }
    }

    @Test("a parameter change reaches the processor before its next buffer; bad values get the graph file's messages")
    func parameter() throws {
        let pool = TrackingPool(name: "app", count: 8, payloadCapacity: 8)
        let recorder = GainRecorder()
        var stage = QueueConfig(name: "stage", size: 4, threading: .thread, outPads: 0, processor: { _ in recorder })
        stage.liveParameters = [ParameterSpec("gain", .integer(0...10), default: .integer(1), live: true, "how loud")]
        let graph = try QueueGraphConfig()
            .adding(QueueConfig(name: "in", size: 4, processor: { _ in Forwarder() }))
            .adding(stage)
            .connecting("in", to: "stage")
            .createQueueGraph()
        let input = try graph.input("in")
        try graph.start()
        Self.pushed(input, pool, count: 1)
        #expect(eventually { recorder.gains.count == 1 })
        #expect(try graph.setParameter(queue: "stage", "gain", to: "7") == .integer(7))
        Self.pushed(input, pool, count: 1, from: 1)
        #expect(eventually { recorder.gains.count == 2 })
        #expect(recorder.gains == [1, 7], "the next buffer after the change sees it")

        func refusal(_ queue: String, _ parameter: String, _ value: String) -> LiveChangeError? {
            do { try graph.setParameter(queue: queue, parameter, to: value); return nil } catch { return error }
        }
        #expect(refusal("stage", "gain", "11") == LiveChangeError(.badValue, "found '11' for queue 'stage' parameter 'gain', expected an integer in 0…10"))
        #expect(refusal("stage", "gain", "loud")?.code == .badValue)
        #expect(refusal("stage", "volume", "3") == LiveChangeError(.unknownParameter, "found the parameter 'volume' for queue 'stage', expected one that can change while it runs: gain"))
        #expect(refusal("in", "gain", "3")?.code == .unknownParameter)
        #expect(refusal("nowhere", "gain", "3") == LiveChangeError(.unknownQueue, "found no queue named 'nowhere', expected one of in or stage"))
        input.endOfStream()
        let stats = graph.stop()
        #expect(recorder.gains == [1, 7])
        #expect(Ledger.problems(stats, pools: [pool]).isEmpty)
    }

    @Test("a paused branch keeps its buffers queued; resuming delivers them; a draining stop resumes it")
    func pauseBranch() throws {
        let (graph, input, pool, sink) = try Self.startedChain(aSize: 16)
        try graph.setHeld(queue: "a", true)
        Self.pushed(input, pool, count: 5)
        #expect(eventually { graph.statistics().queues.first { $0.name == "a" }?.depth == 5 })
        #expect(Self.delivered(graph) == 0, "nothing passes a paused queue")
        try graph.setHeld(queue: "a", false)
        #expect(eventually { Self.delivered(graph) == 5 })
        try graph.setHeld(queue: "a", true)
        Self.pushed(input, pool, count: 3, from: 5)
        input.endOfStream()
        let stats = graph.stop()
        #expect(sink.received == 8 && sink.outOfOrder == 0, "the drain resumed the paused branch")
        #expect(Ledger.problems(stats, pools: [pool]).isEmpty)
    }

    @Test("a queue's size and management change while it holds buffers: they move, the excess is dropped and counted, a default queue is not shrunk below its depth")
    func queueChange() throws {
        let (graph, input, pool, sink) = try Self.startedChain(aSize: 8)
        try graph.setHeld(queue: "a", true)
        Self.pushed(input, pool, count: 6)
        #expect(eventually { graph.statistics().queues.first { $0.name == "a" }?.depth == 6 })
        #expect(throws: LiveChangeError.self) { try graph.reconfigureQueue("a", size: 4) }
        try graph.reconfigureQueue("a", size: 4, management: .headdrop)
        let a = graph.statistics().queues.first { $0.name == "a" }
        #expect(a?.depth == 4 && a?.dropped[.headdrop] == 2, "the two oldest dropped and counted")
        #expect(graph.engine.currentQueueConfig("a")?.management == .headdrop)
        try graph.reconfigureQueue("a", size: 12, management: .red(RED(minThreshold: 3, maxThreshold: 9)))
        #expect(throws: LiveChangeError.self) { try graph.reconfigureQueue("a", management: .red(RED(minThreshold: 5, maxThreshold: 2))) }
        #expect(throws: LiveChangeError.self) { try graph.reconfigureQueue("a", size: 0) }
        try graph.setHeld(queue: "a", false)
        #expect(eventually { Self.delivered(graph) == 4 })
        Self.pushed(input, pool, count: 2, from: 6)
        input.endOfStream()
        let stats = graph.stop()
        #expect(sink.received == 6, "buffers 2…7: the first two were dropped")
        #expect(Ledger.problems(stats, pools: [pool]).isEmpty, "\(Ledger.problems(stats, pools: [pool]))")
    }

    /// in → a (its own thread) → b → sink (its own thread), started: `b` runs on a's thread.
    private static func startedChain(aSize: Int = 4) throws -> (QueueGraph, GraphInput, TrackingPool, OrderedSink) {
        let pool = TrackingPool(name: "app", count: 32, payloadCapacity: 8)
        let sink = OrderedSink()
        let graph = try QueueGraphConfig()
            .adding(QueueConfig(name: "in", size: 16, processor: { _ in Forwarder() }))
            .adding(QueueConfig(name: "a", size: aSize, threading: .thread, processor: { _ in Forwarder() }))
            .adding(QueueConfig(name: "b", size: 4, processor: { _ in Forwarder() }))
            .adding(QueueConfig(name: "sink", size: 4, threading: .thread, outPads: 0, processor: { _ in sink }))
            .connecting("in", to: "a").connecting("a", to: "b").connecting("b", to: "sink")
            .createQueueGraph()
        try graph.start()
        return (graph, try graph.input("in"), pool, sink)
    }

    @Test("a segment replaced 20 times while buffers flow: every buffer reaches the sink, in order; the removed queues' rows stay, renamed")
    func replaceWhileFlowing() throws {
        let (graph, input, pool, sink) = try Self.startedChain()
        let total = 20_000
        let pushed = Atomic<Bool>(false)
        Thread.detachNewThread {
            Self.pushed(input, pool, count: total)
            input.endOfStream()
            pushed.store(true, ordering: .releasing)
        }
        var current = "b"
        var reports: [SpliceReport] = []
        for swap in 1...20 {
            let next = swap % 2 == 1 ? "c" : "b"
            reports.append(try graph.replaceSegment([current], with: [QueueConfig(name: next, size: 2 + swap % 3, processor: { _ in Forwarder() })]))
            current = next
        }
        #expect(eventually { pushed.load(ordering: .acquiring) })
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 30_000_000_000))
        let stats = graph.stop()
        #expect(sink.received == total && sink.outOfOrder == 0, "received \(sink.received), \(sink.outOfOrder) out of order")
        #expect(reports.allSatisfy { $0.abandoned == 0 }, "every old segment drained")
        #expect(stats.queues.filter { $0.name.contains("~") }.count == 20)
        #expect(stats.threads.flatMap(\.queues).sorted() == ["a", "b", "in", "sink"])
        #expect(Ledger.problems(stats, pools: [pool]).isEmpty, "\(Ledger.problems(stats, pools: [pool]))")
    }

    @Test("a segment inserted and removed while buffers flow: order and ledger hold; bad splices are refused with the reason")
    func insertAndRemove() throws {
        let (graph, input, pool, sink) = try Self.startedChain()
        Self.pushed(input, pool, count: 100)
        try graph.insertSegment([QueueConfig(name: "x", size: 3, processor: { _ in Forwarder() }),
                                 QueueConfig(name: "y", size: 3, processor: { _ in Forwarder() })], after: "a")
        #expect(graph.engine.currentGraph().connections.map { "\($0.from)->\($0.to)" }.sorted() == ["a->x", "b->sink", "in->a", "x->y", "y->b"])
        Self.pushed(input, pool, count: 100, from: 100)
        try graph.removeSegment(["x", "y"])
        Self.pushed(input, pool, count: 100, from: 200)

        func refusal(_ body: () throws(LiveChangeError) -> Void) -> LiveChangeError? {
            do { try body(); return nil } catch { return error }
        }
        let forwarder = QueueConfig(name: "z", processor: { _ in Forwarder() })
        #expect(refusal { () throws(LiveChangeError) in try graph.replaceSegment(["a", "sink"], with: [forwarder]) }?.code == .refused)
        #expect(refusal { () throws(LiveChangeError) in try graph.removeSegment(["a"]) }?.message.contains("another thread") == true,
                "removing 'a' would feed b from the input's thread")
        #expect(refusal { () throws(LiveChangeError) in try graph.insertSegment([QueueConfig(name: "b", processor: { _ in Forwarder() })], after: "a") }?.code == .badValue)
        #expect(refusal { () throws(LiveChangeError) in try graph.insertSegment([forwarder], after: "a", pad: 3) }?.code == .badValue)
        var threaded = forwarder
        threaded.threading = .thread
        #expect(refusal { () throws(LiveChangeError) in try graph.insertSegment([threaded], after: "a") }?.code == .badValue)
        let many = (0..<33).map { i in QueueConfig(name: "n\(i)", processor: { _ in Forwarder() }) }
        #expect(refusal { () throws(LiveChangeError) in try graph.insertSegment(many, after: "a") }?.message.contains("no room") == true,
                "a thread takes at most 32 queues spliced in at once; nothing is wired")
        input.endOfStream()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 30_000_000_000))
        let stats = graph.stop()
        #expect(sink.received == 300 && sink.outOfOrder == 0)
        #expect(Ledger.problems(stats, pools: [pool]).isEmpty, "\(Ledger.problems(stats, pools: [pool]))")
        #expect(refusal { () throws(LiveChangeError) in try graph.removeSegment(["b"]) }?.code == .refused, "a stopped graph takes no splice")
    }
}
