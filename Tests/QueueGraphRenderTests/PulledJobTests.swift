import Foundation
import QueueGraphCore
@testable import QueueGraphRender
import QueueGraphRuntime
import Synchronization
import Testing

@Suite("Pulled render jobs (Lumiera's model)")
struct PulledJobTests {
    /// julia and blurred plasma, composited: the main demo's scene.
    static func scene(engine: EngineCtx = .shared, upper: any FrameWork = Plasma()) throws(NetworkRefusal) -> RenderNetwork {
        try RenderNetwork(nodes: [
            .init(name: "julia", step: .work(JuliaZoom(maxIterations: 24)), inputs: []),
            .init(name: "plasma", step: .work(upper), inputs: []),
            .init(name: "blur", step: .work(BoxBlur(radius: 2)), inputs: [1]),
            .init(name: "mix", step: .composite(opacity: 0.7), inputs: [0, 2]),
            .init(name: "overlay", step: .work(TimecodeOverlay(scale: 1)), inputs: [3]),
        ], engine: engine)
    }

    static let pool = BufferPool(name: "frames", count: 64, payloadCapacity: Frame.byteCount(width: 64, height: 36))

    static func frame(tick: Int64, deadline: UInt64 = .max) -> Frame {
        let job = FrameJob(tick: tick, number: tick, mediaTime: tick * 40_000_000, deadline: deadline, rate: FrameRate(25))
        return Frame.make(in: pool.createBuffer(payloadSize: Frame.byteCount(width: 64, height: 36), pad: 0)!, width: 64, height: 36, job: job)
    }

    @Test("pulling the exit node gives the pixels of rendering each node in turn, as the push graph does")
    func pulledEqualsPushed() throws {
        let network = try Self.scene()
        for tick: Int64 in [0, 7, 30] {
            let pulled = Self.frame(tick: tick)
            try network.render(pulled)
            // The push graph's way: each layer in its own frame, the upper composited over the lower.
            let lower = Self.frame(tick: tick), upper = Self.frame(tick: tick)
            try JuliaZoom(maxIterations: 24).render(lower, engine: .shared)
            Plasma().render(upper, engine: .shared)
            try BoxBlur(radius: 2).render(upper, engine: .shared)
            composite(upper.pixels, over: lower.pixels, count: lower.pixelCount, opacity: 0.7)
            TimecodeOverlay(scale: 1).render(lower, engine: .shared)
            #expect(Array(pulled.pixelBuffer) == Array(lower.pixelBuffer), "tick \(tick)")
            for frame in [pulled, lower, upper] { frame.buffer.releaseHold() }
        }
    }

    @Test("a job's buffers are its footprint: announced before it runs, locked from the provider, released when it ends")
    func footprintAnnouncedAndReleased() throws {
        let engine = EngineCtx(manager: BufferManager())
        let network = try Self.scene(engine: engine)
        let footprint = network.footprint(width: 64, height: 36)
        #expect(footprint.contains(.bytes(Frame.byteCount(width: 64, height: 36))), "a scratch frame for the compositor")
        let frame = Self.frame(tick: 1)
        defer { frame.buffer.releaseHold() }
        try network.render(frame)
        let first = engine.manager.statistics
        #expect(first.locks == footprint.count && first.releases == first.locks && first.bytesLeased == 0, "\(first)")
        #expect(first.emits == 1, "the scratch frame is emitted to the compositor")
        for tick: Int64 in 2..<10 {
            let frame = Self.frame(tick: tick)
            try network.render(frame)
            frame.buffer.releaseHold()
        }
        let later = engine.manager.statistics
        #expect(later.allocations == first.allocations, "announced once: later jobs reuse the blocks")
        #expect(later.locks == 9 * footprint.count && later.releases == later.locks && later.bytesLeased == 0)
    }

    @Test("a node that throws fails the job; its scratch goes back through emergencyCleanup")
    func failedJobCleansUp() throws {
        final class Refuses: FrameWork {
            struct Refused: Error {}
            func render(_ frame: Frame, engine: EngineCtx) throws { throw Refused() }
        }
        let engine = EngineCtx(manager: BufferManager())
        let network = try Self.scene(engine: engine, upper: Refuses())
        let frame = Self.frame(tick: 3)
        defer { frame.buffer.releaseHold() }
        #expect(throws: Refuses.Refused.self) { try network.render(frame) }
        let stats = engine.manager.statistics
        #expect(stats.emergencyCleanups == 1 && stats.releases == stats.locks && stats.bytesLeased == 0, "\(stats)")
    }

    @Test("workers take jobs by start time, and discard a job whose deadline passed before it started")
    func jobsByStartTime() throws {
        /// Records the ticks it renders; tick 0 waits until it is let go, so the others queue up behind it.
        final class Recorder: FrameWork, @unchecked Sendable {
            let ticks = Mutex<[Int64]>([])
            let entered = DispatchSemaphore(value: 0)
            let gate = DispatchSemaphore(value: 0)
            func render(_ frame: Frame, engine: EngineCtx) {
                if frame.job.tick == 0 {
                    entered.signal()
                    gate.wait()
                }
                ticks.withLock { $0.append(frame.job.tick) }
            }
        }
        let recorder = Recorder()
        let network = try RenderNetwork(nodes: [.init(name: "record", step: .work(recorder), inputs: [])])
        let pool = JobPool(networks: [network], wake: WakeEvent())
        defer { pool.stop() }
        let now = monotonicNanoseconds()
        let deadlines: [(Int64, UInt64)] = [(0, .max), (1, now + 30_000_000_000), (2, now + 10_000_000_000), (3, now + 20_000_000_000), (4, now + 50_000_000)]
        var jobs: [PulledJob] = []
        for (tick, deadline) in deadlines {
            let frame = Self.frame(tick: tick, deadline: deadline)
            let job = PulledJob()
            job.prepare(frame.buffer, frame: frame)
            pool.submit(job)
            jobs.append(job)
            if tick == 0 { recorder.entered.wait() }   // the worker is busy with it: the rest queue up
        }
        usleep(100_000)   // tick 4's deadline passes while it waits behind tick 0
        recorder.gate.signal()
        pool.waitUntilIdle()
        #expect(recorder.ticks.withLock { $0 } == [0, 2, 3, 1], "by start time (deadline less the expected time); tick 4 discarded")
        guard case .late = jobs[4].outcome else { Issue.record("tick 4 was not discarded: \(jobs[4].outcome)"); return }
        #expect(jobs.allSatisfy { $0.isDone })
        for job in jobs { job.buffer!.releaseHold() }
    }

    @Test("a pull queue in a running graph: every tick delivered or dropped as late, in tick order; ledger and provider balance")
    func pullQueueInAGraph() throws {
        let engine = EngineCtx(manager: BufferManager())
        let stream = RenderStream(rate: FrameRate(120), frameLimit: 40, latencyFrames: 24)
        let sink = RecordingSink()
        let puller = PullNode(workers: 2) { () throws(NetworkRefusal) in try Self.scene(engine: engine) }
        let config = QueueGraphConfig(name: "pulled")
            .adding(QueueConfig(name: "render", size: 4, threading: .thread, buffers: .provider,
                                processor: { _ in FrameDispatcher(stream: stream, width: 64, height: 36) },
                                creator: { _ in FrameCreator(name: "frames", count: 8, engine: engine) }))
            .adding(QueueConfig(name: "scene", size: 8, threading: .thread, buffers: .reuse, processor: { _ in puller }))
            .connecting("render", to: "scene")
            .adding(QueueConfig(name: "sink", size: 2, threading: .thread, outPads: 0, processor: { _ in sink }))
            .connecting("scene", to: "sink")
        let graph = try config.createQueueGraph()
        try graph.start()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000))
        let stats = graph.stop()
        #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
        #expect(!sink.ticks.isEmpty && sink.ticks == sink.ticks.sorted())
        #expect(sink.ticks.count + stats.dropped(.late) == 40)
        let jobs = puller.statistics
        #expect(jobs.failed == 0 && jobs.run >= sink.ticks.count, "\(jobs)")
        let provider = engine.manager.statistics
        let frames = try #require(stats.pools.first)
        #expect(provider.emits == frames.consumed + jobs.run, "each delivered frame, and each job's scratch frame: \(provider)")
        #expect(provider.locks == provider.releases && provider.bytesLeased == 0)
    }
}
