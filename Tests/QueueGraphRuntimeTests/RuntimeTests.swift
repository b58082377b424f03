import Foundation
import Synchronization
import QueueGraphCore
import QueueGraphRuntime
import QueueGraphTestKit
import Testing

/// Under Thread Sanitizer (QG_TSAN=1) the big runs are scaled down: TSan is ~20× slower.
private let scale = ProcessInfo.processInfo.environment["QG_TSAN"] == "1" ? 100 : 1

/// Checks every buffer it receives arrives in order and releases it.
final class OrderedSink: BufferProcessor, @unchecked Sendable {
    var received = 0
    var outOfOrder = 0
    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        if buffer.sequence != UInt64(received) { outOfOrder += 1 }
        received += 1
        context.doneBuffer(buffer)
        return .ok
    }
}

/// Busy-waits a little per buffer: a slow consumer.
final class SlowSink: BufferProcessor, @unchecked Sendable {
    var received = 0
    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        let until = context.now + 20_000
        while context.now < until {}
        received += 1
        context.doneBuffer(buffer)
        return .ok
    }
}

/// Sends one buffer at a time to an `ack` queue: busy from each send until its ack.
final class WindowOfOne: BufferSource, @unchecked Sendable {
    let count: Int
    var sent = 0
    var acks = 0
    var producedWhileBusy = 0
    /// The most buffers sent and not yet acked.
    var mostInFlight = 0

    init(count: Int) { self.count = count }

    func produce(context: ProcessContext) -> ProduceResult {
        if context.isBusy { producedWhileBusy += 1 }
        guard sent < count else { return .endOfStream }
        guard let buffer = context.acquireBuffer(size: 8) else { return .waitingForBuffer }
        buffer.sequence = UInt64(sent)
        sent += 1
        context.sendTo(0, buffer)
        mostInFlight = max(mostInFlight, sent - acks)
        context.busy()
        return .produced
    }

    func recvAck(_ buffer: Buffer, context: ProcessContext) {
        acks += 1
        context.notBusy()
    }
}

private func pool(_ count: Int, size: Int = 64) -> BufferCreatorFactory {
    { q in BufferPool(name: q.name, count: count, payloadCapacity: size) }
}

private func chain(count: Int, middle: QueueConfig, sink: some BufferProcessor & Sendable,
                   sinkQueue: (QueueConfig) -> QueueConfig = { $0 }) -> QueueGraphConfig {
    QueueGraphConfig()
        .adding(QueueConfig(name: "src", buffers: .provider, processor: { _ in CountingSource(count: count) }, creator: pool(256)))
        .adding(middle)
        .adding(sinkQueue(QueueConfig(name: "sink", size: 64, threading: .thread, outPads: 0, processor: { _ in sink })))
        .connecting("src", to: middle.name)
        .connecting(middle.name, to: "sink")
}

@Suite("Threaded runtime")
struct RuntimeTests {
    @Test("10 million buffers through two thread boundaries, in order, ledger balanced")
    func tenMillion() throws {
        let count = 10_000_000 / scale
        let sink = OrderedSink()
        let graph = try chain(count: count, middle: QueueConfig(name: "mid", size: 64, threading: .thread,
                                                                processor: { _ in Forwarder() }), sink: sink).createQueueGraph()
        try graph.start()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 600_000_000_000))
        let stats = graph.stop()
        #expect(sink.received == count)
        #expect(sink.outOfOrder == 0)
        #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
        #expect(stats.pools[0].consumed == count)
        #expect(stats.threads.count == 3)
    }

    @Test("default never drops and never exceeds its size when the consumer is slow")
    func backPressureAcrossThreads() throws {
        let sink = SlowSink()
        let graph = try chain(count: 2_000 / min(scale, 10), middle: QueueConfig(name: "mid", size: 4, threading: .thread,
                                                                processor: { _ in Forwarder() }), sink: sink,
                              sinkQueue: { var q = $0; q.size = 3; return q }).createQueueGraph()
        try graph.start()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 120_000_000_000))
        let stats = graph.stop()
        #expect(stats.queues.allSatisfy { $0.totalDropped == 0 })
        #expect(stats[queue: "mid"]!.maxDepth <= 4)
        #expect(stats[queue: "sink"]!.maxDepth <= 3)
        #expect(sink.received == 2_000 / min(scale, 10))
        #expect(stats.ledgerProblems().isEmpty)
    }

    @Test("a default queue fed from two threads takes every buffer, also when both race for its last place")
    func fanInLosesNothing() throws {
        let count = 50_000 / min(scale, 10)
        let sink = OrderedSink()
        let graph = try QueueGraphConfig()
            .adding(QueueConfig(name: "src", buffers: .provider, processor: { _ in CountingSource(count: count) }, creator: pool(256)))
            .adding(QueueConfig(name: "split", outPads: 2, processor: { _ in Tee() }))
            .adding(QueueConfig(name: "left", size: 8, threading: .thread, processor: { _ in Forwarder() }))
            .adding(QueueConfig(name: "right", size: 8, threading: .thread, processor: { _ in Forwarder() }))
            .adding(QueueConfig(name: "merge", size: 2, threading: .thread, outPads: 0, processor: { _ in sink }))
            .connecting("src", to: "split").connecting("split", pad: 0, to: "left").connecting("split", pad: 1, to: "right")
            .connecting("left", to: "merge").connecting("right", to: "merge")
            .createQueueGraph()
        try graph.start()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 120_000_000_000))
        let stats = graph.stop()
        #expect(sink.received == 2 * count, "a buffer refused by the full merge queue was lost")
        #expect(stats.queues.allSatisfy { $0.totalDropped == 0 })
        #expect(stats[queue: "merge"]!.maxDepth <= 3, "at most one over its size: one place per upstream queue but the first")
        #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
    }

    @Test("headdrop and taildrop across a thread count every drop and balance")
    func droppingAcrossThreads() throws {
        for management in [QueueManagement.headdrop, .taildrop] {
            let sink = SlowSink()
            let graph = try chain(count: 3_000 / min(scale, 10), middle: QueueConfig(name: "mid", size: 4, management: management,
                                                                    threading: .thread, processor: { _ in Forwarder() }),
                                  sink: sink).createQueueGraph()
            try graph.start()
            #expect(graph.waitUntilFinished(timeoutNanoseconds: 120_000_000_000))
            let stats = graph.stop()
            let mid = stats[queue: "mid"]!
            #expect(mid.arrived == 3_000 / min(scale, 10))
            #expect(mid.popped + mid.totalDropped == mid.arrived)
            #expect(stats.ledgerProblems().isEmpty)
        }
    }

    @Test("ack across threads: every buffer acked exactly once on the sender's thread")
    func ackAcrossThreads() throws {
        final class AckSource: BufferSource, @unchecked Sendable {
            let count: Int
            var sent = 0
            var acks: [Int]
            let thread = Locked<pthread_t?>(nil)
            var wrongThread = 0
            init(count: Int) { self.count = count; acks = Array(repeating: 0, count: count) }
            func produce(context: ProcessContext) -> ProduceResult {
                thread.withLock { if $0 == nil { $0 = pthread_self() } }
                guard sent < count else { return .endOfStream }
                guard let b = context.acquireBuffer(size: 8) else { return .waitingForBuffer }
                b.sequence = UInt64(sent)
                if context.sendTo(0, b) == .full { context.doneBuffer(b); return .produced }
                sent += 1
                return .produced
            }
            func recvAck(_ buffer: Buffer, context: ProcessContext) {
                if thread.withLock({ $0.map { pthread_equal($0, pthread_self()) == 0 } ?? true }) { wrongThread += 1 }
                acks[Int(buffer.sequence)] += 1
            }
        }
        let count = 20_000 / min(scale, 10)
        let source = AckSource(count: count)
        let graph = try QueueGraphConfig()
            .adding(QueueConfig(name: "src", buffers: .provider, processor: { _ in source }, creator: pool(32)))
            .adding(QueueConfig(name: "sink", size: 8, sync: .ack, threading: .thread, outPads: 0, processor: { _ in CountingSink() }))
            .connecting("src", to: "sink")
            .createQueueGraph()
        try graph.start()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 120_000_000_000))
        let stats = graph.stop()
        #expect(source.acks.allSatisfy { $0 == 1 })
        #expect(source.wrongThread == 0)
        #expect(stats.ledgerProblems().isEmpty)
    }

    @Test("a busy processor is handed nothing until it says it is not: one buffer in flight to a slow sink on another thread")
    func busyHoldsTheProcessor() throws {
        let source = WindowOfOne(count: 200)
        let graph = try QueueGraphConfig()
            .adding(QueueConfig(name: "src", buffers: .provider, processor: { _ in source }, creator: pool(8, size: 8)))
            .adding(QueueConfig(name: "sink", size: 8, sync: .ack, threading: .thread, outPads: 0, processor: { _ in SlowSink() }))
            .connecting("src", to: "sink")
            .createQueueGraph()
        try graph.start()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000))
        let stats = graph.stop()
        #expect(source.sent == 200 && source.acks == 200 && source.producedWhileBusy == 0)
        #expect(source.mostInFlight == 1, "the window of one held")
        #expect(stats.ledgerProblems().isEmpty)
    }

    @Test("pause holds the graph, start resumes, abandon accounts for every buffer")
    func pauseResumeAbandon() throws {
        let sink = SlowSink()
        let graph = try chain(count: 1_000_000, middle: QueueConfig(name: "mid", size: 16, threading: .thread,
                                                                    processor: { _ in Forwarder() }), sink: sink).createQueueGraph()
        try graph.start()
        while graph.statistics()[queue: "sink"]!.popped < 20 { usleep(1_000) }
        graph.pause()   // returns once every thread is parked
        let paused = graph.statistics()
        usleep(50_000)  // room for a wrongly running thread to show itself
        #expect(graph.statistics().queues.map(\.popped) == paused.queues.map(\.popped))
        try graph.start()
        while graph.statistics()[queue: "sink"]!.popped < paused[queue: "sink"]!.popped + 20 { usleep(1_000) }
        // Pause at a moment with buffers queued; a paused graph stays frozen,
        // so an abandoning stop must release exactly those.
        var frozen = graph.statistics()
        repeat {
            graph.pause()
            frozen = graph.statistics()
            if frozen.queues.contains(where: { $0.depth > 0 }) { break }
            try graph.start()
            usleep(1_000)
        } while true
        let stats = graph.stop(.abandon)
        #expect(stats.queues.map(\.abandoned) == frozen.queues.map(\.depth))
        #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
    }

    @Test("external input: push with wait, end-of-stream flows to the sink")
    func externalInput() throws {
        let inputPool = TrackingPool(name: "app", count: 8, payloadCapacity: 16)
        let sink = OrderedSink()
        let graph = try QueueGraphConfig()
            .adding(QueueConfig(name: "in", size: 2, processor: { _ in Forwarder() }))
            .adding(QueueConfig(name: "sink", size: 2, threading: .thread, outPads: 0, processor: { _ in sink }))
            .connecting("in", to: "sink")
            .createQueueGraph()
        let input = try graph.input("in")
        try graph.start()
        for n in 0..<5_000 {
            let buffer = inputPool.createBuffer(payloadSize: 16, pad: -1, whenExhaustedWait: true)
            buffer.sequence = UInt64(n)
            #expect(input.push(buffer, whenFull: .wait(timeoutNanoseconds: 10_000_000_000)) == .accepted)
        }
        input.endOfStream()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000))
        let stats = graph.stop()
        #expect(sink.received == 5_000 && sink.outOfOrder == 0)
        #expect(Ledger.problems(stats, pools: [inputPool]).isEmpty)
    }

    @Test("a process queue whose child cannot start refuses the graph's start, saying why", arguments: [
        ("/nonexistent/qgraph", "cannot start /nonexistent/qgraph: No such file or directory"),
        ("/bin/true", "exited with status 0 before it was ready"),
    ])
    func childCannotStart(executable: String, reason: String) throws {
        let graph = try QueueGraphConfig()
            .adding(QueueConfig(name: "in", threading: .child, outPads: 0, child: ChildOptions(executable: executable),
                                processor: { _ in CountingSink() }))
            .createQueueGraph()
        #expect {
            try graph.start()
        } throws: { error in
            guard case .threadStartFailed(let queue, let message) = error as? QueueGraphError else { return false }
            return queue == "in" && message.contains(reason)
        }
        #expect(graph.stop().ledgerProblems().isEmpty)
    }

    @Test("a config is a template: two graphs from it run independently")
    func template() throws {
        let config = QueueGraphConfig()
            .adding(QueueConfig(name: "src", buffers: .provider, processor: { _ in CountingSource(count: 10_000) }, creator: pool(16)))
            .adding(QueueConfig(name: "sink", threading: .thread, outPads: 0, processor: { _ in CountingSink() }))
            .connecting("src", to: "sink")
        let a = try config.createQueueGraph(), b = try config.createQueueGraph()
        try a.start(); try b.start()
        a.waitUntilFinished(); b.waitUntilFinished()
        let (sa, sb) = (a.stop(), b.stop())
        #expect(sa.pools[0].consumed == 10_000 && sb.pools[0].consumed == 10_000)
        #expect(sa.ledgerProblems().isEmpty && sb.ledgerProblems().isEmpty)
    }

    @Test("a notify is never lost: two threads ping-pong through WakeEvents, every sleep ends by a notify")
    func noLostWakeups() {
        let rounds = 20_000 / min(scale, 10)
        let ping = Signal(), pong = Signal()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            for i in 1...rounds { ping.waitFor(i); pong.set(i) }
            done.signal()
        }
        for i in 1...rounds { ping.set(i); pong.waitFor(i) }
        done.wait()
        #expect(pong.value.load(ordering: .relaxed) == rounds)
        #expect(ping.lostNotifies.load(ordering: .relaxed) == 0 && pong.lostNotifies.load(ordering: .relaxed) == 0)
    }

    @Test("statistics while running: a thread that never sleeps shows its busy time; a source shows what it sent")
    func busyWhileRunning() throws {
        let graph = try QueueGraphConfig()
            .adding(QueueConfig(name: "src", buffers: .provider, processor: { _ in TestSource(count: 0, size: 16, pattern: .zeros) },   // sends until stopped
                                creator: { _ in BufferPool(name: "src", count: 64, payloadCapacity: 16) }))
            .adding(QueueConfig(name: "sink", outPads: 0, processor: { _ in CountingSink() }))
            .connecting("src", to: "sink")
            .createQueueGraph()
        try graph.start()
        var busy = 0
        for _ in 0..<500 where busy == 0 {
            usleep(2_000)
            busy = graph.statistics().threads.first?.busyNanoseconds ?? 0
        }
        #expect(busy > 0, "busy time counted while the thread works")
        let stats = graph.stop(.abandon)
        #expect(stats.ledgerProblems().isEmpty)
        let (source, sink) = (stats.queues.first { $0.name == "src" }, stats.queues.first { $0.name == "sink" })
        #expect(source?.sent == sink?.arrived && (source?.sent ?? 0) > 0 && sink?.sent == nil)
    }
}

/// A counter one thread raises and another sleeps on. A sleep that times out
/// although the counter had already reached its target is a lost notify; one
/// that times out because the other thread was not scheduled yet (a loaded
/// or stalled machine) is not, and only sleeps again.
final class Signal: Sendable {
    let value = Atomic<Int>(0)
    let lostNotifies = Atomic<Int>(0)
    let event = WakeEvent()

    func set(_ n: Int) {
        value.store(n, ordering: .releasing)
        event.notify()
    }

    func waitFor(_ n: Int) {
        while value.load(ordering: .acquiring) < n {
            if event.wait(timeoutNanoseconds: 5_000_000_000, unless: { value.load(ordering: .acquiring) >= n }) == .timedOut,
               value.load(ordering: .acquiring) >= n {
                lostNotifies.wrappingAdd(1, ordering: .relaxed)
            }
        }
    }
}

extension TrackingPool {
    /// Acquires, waiting for a buffer to come back.
    func createBuffer(payloadSize: Int, pad: Int, whenExhaustedWait: Bool) -> Buffer {
        while true {
            if let buffer = createBuffer(payloadSize: payloadSize, pad: pad) { return buffer }
            usleep(100)
        }
    }
}
