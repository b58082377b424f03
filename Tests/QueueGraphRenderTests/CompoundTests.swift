import Foundation
import QueueGraphCore
import Testing
@testable import QueueGraphRender

@Suite("Compound queues")
struct CompoundTests {
    typealias TestFrame = MediaNodeTests.TestFrame

    /// Every split mode a work supports, each with a server of weight 0 among three.
    static let cases: [(String, @Sendable () -> any PartWork)] = [
        ("julia", { JuliaZoom(maxIterations: 48, centre: (0.4, 0.1), phase: 2.2) }),
        ("hotspot", { HotSpot(heat: 4, radius: 0.3) }),
        ("discs", { Discs(count: 20) }),
    ]

    @Test("servers render the same pixels as one thread, in every split mode and for several splits",
          arguments: cases.map(\.0))
    func samePixels(name: String) throws {
        let make = Self.cases.first { $0.0 == name }!.1
        let (w, h) = (96, 64)
        let reference = TestFrame(width: w, height: h) { _, _ in 0 }
        try make().render(reference.frame, engine: MediaNodeTests.engine)
        // Different weights give different splits without depending on timings; a server of weight 0 gets nothing.
        let modes = SplitMode.allCases.filter(type(of: make()).splitModes.contains)
        #expect(modes.count >= 3, "\(name) splits only by \(modes)")
        for mode in modes {
            for weights: [Double] in [[2, 0, 1], [1, 0, 7], [5, 0, 1]] {
                let node = CompoundNode(servers: 3, loadBalancer: LoadBalancerConfig(mode: mode, damping: 0, weights: weights),
                                        work: make())
                defer { node.threadWillEnd() }
                for _ in 0..<3 {   // the later frames with the split moved by the measured times
                    let frame = TestFrame(width: w, height: h) { _, _ in 0x5555_5555 }
                    let record = try node.renderParts(frame.frame)
                    #expect(record.parts[1].isEmpty, "\(mode): the server of weight 0 got \(record.parts[1])")
                    if mode == .db {
                        // Painted into partial images and composited: the same up to rounding.
                        let off = zip(frame.pixels, reference.pixels).map(Self.channelDifference).max()!
                        #expect(off <= 2, "db differs by \(off)")
                        #expect(record.parts[0].x0 == 0 && record.parts[2].x0 == record.parts[0].x1 && record.parts[2].x1 == 1)
                    } else {
                        #expect(frame.pixels == reference.pixels, "\(mode), weights \(weights)")
                        #expect(record.parts.reduce(0) { $0 + $1.area } == Double(w * h))
                    }
                }
                #expect(node.statistics.frames == 3)
            }
        }
    }

    /// The largest difference of one channel between two pixels.
    static func channelDifference(_ a: UInt32, _ b: UInt32) -> Int {
        var largest = 0
        for shift in stride(from: 0, to: 32, by: 8) {
            largest = max(largest, abs(Int((a >> UInt32(shift)) & 0xFF) - Int((b >> UInt32(shift)) & 0xFF)))
        }
        return largest
    }

    @Test("a part that throws fails the frame and leaves the split; the servers go on with the next")
    func failingPart() throws {
        final class FailsRight: PartWork {
            static let splitModes: Set<SplitMode> = [.vertical]
            struct Refused: Error {}
            func render(_ frame: Frame, part: SplitPart, mode: SplitMode, into target: UnsafeMutablePointer<UInt32>) throws {
                guard frame.job.tick == 0 else { return }
                if part.x0 > 0 { throw Refused() }
                usleep(2000)   // unequal times: had the failed frame's timings been used, the split would move
            }
        }
        let node = CompoundNode(servers: 2, loadBalancer: LoadBalancerConfig(mode: .vertical), work: FailsRight())
        defer { node.threadWillEnd() }
        let frame = TestFrame(width: 16, height: 8) { _, _ in 0 }
        #expect(throws: CompoundNode.PartFailed.self) { try node.renderParts(frame.frame) }
        #expect(node.statistics.recent[0].parts.map(\.x1) == [8, 16])   // recorded
        frame.frame.buffer.payload.baseAddress!.assumingMemoryBound(to: Frame.Header.self).pointee.job.tick = 1
        let next = try node.renderParts(frame.frame)
        #expect(next.parts.map(\.x1) == [8, 16], "the failed frame moved the split")
        #expect(node.statistics.frames == 2)
    }

    @Test("a compound queue in a running graph: every frame delivered or dropped as late, each recorded with its parts")
    func inGraph() throws {
        let stream = RenderStream(rate: FrameRate(30), frameLimit: 12, latencyFrames: 6)
        let sink = RecordingSink()
        let node = CompoundNode(name: "julia", servers: 2, loadBalancer: LoadBalancerConfig(mode: .twoD), work: JuliaZoom(maxIterations: 16))
        let config = QueueGraphConfig(name: "compound-test")
            .adding(QueueConfig(name: "render", size: 4, threading: .thread, buffers: .provider,
                                processor: { _ in FrameDispatcher(stream: stream, width: 64, height: 48) },
                                creator: { _ in FrameCreator(name: "frames", count: 4) }))
            .adding(QueueConfig(name: "julia", size: 2, threading: .thread, buffers: .reuse, servers: 2,
                                loadBalancer: LoadBalancerConfig(mode: .twoD), processor: { _ in node }))
            .adding(QueueConfig(name: "sink", size: 2, outPads: 0, processor: { _ in sink }))
            .connecting("render", to: "julia").connecting("julia", to: "sink")
        let graph = try config.createQueueGraph()
        try graph.start()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000))
        let stats = graph.stop()
        #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
        let late = stats.dropped(.late)
        #expect(!sink.ticks.isEmpty)   // 200 ms of latency per frame
        #expect(sink.ticks.count + late == 12)   // a skipped tick is counted as late by the dispatcher
        let recorded = node.statistics.recent
        #expect(recorded.count == node.statistics.frames && recorded.count >= sink.ticks.count)
        #expect(recorded.allSatisfy { $0.parts.count == 2 && $0.parts.reduce(0) { $0 + $1.area } == 64 * 48 })
    }

    @Test("a queue with servers needs a processor that splits its work")
    func notCompound() throws {
        let config = QueueGraphConfig()
            .adding(QueueConfig(name: "only", outPads: 0, servers: 2, processor: { _ in RecordingSink() }))
        #expect(throws: ConfigErrors.self) { try config.createQueueGraph() }
        do { _ = try config.createQueueGraph() } catch let error as ConfigErrors {
            #expect(error.errors.map(\.code) == [.notCompound])
        }
        let bad = QueueGraphConfig().adding(QueueConfig(name: "q", outPads: 0, servers: 2,
                                                        loadBalancer: LoadBalancerConfig(damping: 2, weights: [1]),
                                                        processor: { _ in RecordingSink() }))
        #expect(throws: ConfigErrors.self) { try bad.validate() }
        do { _ = try bad.validate() } catch {
            #expect(error.errors.map(\.code) == [.invalidLoadBalancer, .invalidLoadBalancer])
        }
    }
}
