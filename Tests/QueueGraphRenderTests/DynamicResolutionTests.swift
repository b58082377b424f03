import QueueGraphCore
@testable import QueueGraphRender
import QueueGraphTestKit
import Testing

/// Paints each pixel with its own coordinates (x in the low half, y in the high).
final class Coordinates: FrameWork {
    var sizes: [(Int, Int)] = []
    func render(_ frame: Frame, engine: EngineCtx) throws {
        sizes.append((frame.width, frame.height))
        for y in 0..<frame.height { for x in 0..<frame.width { frame.pixels[y * frame.width + x] = UInt32(y << 16 | x) } }
    }
}

@Suite("Holding a frame time by resolution (Equalizer's DFR)")
struct DynamicResolutionTests {
    @Test("at 2× overload the share of each side settles where the work fits the target load, damped, and recovers when the load goes")
    func converges() {
        let dfr = DynamicResolution(targetLoad: 0.8, damping: 0.5)
        let period: Int64 = 33_333_333
        var scale = 1.0
        var scales: [Double] = []
        for _ in 0..<40 {   // a work that takes twice the period at full resolution, in proportion to the pixels
            scale = dfr.next(scale: scale, took: UInt64(2 * Double(period) * scale * scale), budget: dfr.budget(period: period, nextDeadline: .max, now: 0))
            scales.append(scale)
        }
        #expect(abs(scale - 0.4.squareRoot()) < 0.002, "\(scales)")   // 2 s² = 0.8, the target load asked for here
        #expect(zip(scales, scales.dropFirst()).allSatisfy { $0 >= $1 - 1e-6 }, "it comes down without overshooting: \(scales)")
        for _ in 0..<40 { scale = dfr.next(scale: scale, took: UInt64(0.3 * Double(period) * scale * scale), budget: 0.8 * Double(period)) }
        #expect(scale == 1)
        #expect(DynamicResolution(minimumScale: 0.5).next(scale: 0.5, took: UInt64(100 * period), budget: 0.8 * Double(period)) == 0.5)
        // Behind schedule, the budget shrinks to what is left (but never under a quarter period).
        #expect(dfr.budget(period: period, nextDeadline: 1_000_000_000, now: 1_000_000_000 + 10_000_000) == 0.8 * Double(period - 10_000_000))
        #expect(dfr.budget(period: period, nextDeadline: 1_000_000_000, now: 2_000_000_000) == 0.8 * Double(period / 4))
    }

    @Test("a node at half scale renders a quarter of the pixels and spreads them over the whole frame; the header stays")
    func spreadsTheSmallRender() throws {
        /// Keeps what arrives: the frame's size, tick, pts, sequence and pixels.
        final class Keep: BufferProcessor, @unchecked Sendable {
            var kept: (width: Int, height: Int, tick: Int64, pts: Int64, sequence: UInt64, pixels: [UInt32])?
            func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
                if let frame = Frame(buffer) {
                    kept = (frame.width, frame.height, frame.job.tick, frame.pts, buffer.sequence, Array(frame.pixelBuffer))
                }
                context.doneBuffer(buffer)
                return .ok
            }
        }
        let work = Coordinates()
        nonisolated(unsafe) let node = RenderNode(work, resolution: DynamicResolution())   // run on this thread by the stepped graph
        let keep = Keep()
        let graph = try QueueGraphConfig()
            .adding(QueueConfig(name: "node", size: 4, buffers: .reuse, processor: { _ in node }))
            .adding(QueueConfig(name: "keep", size: 4, outPads: 0, processor: { _ in keep }))
            .connecting("node", to: "keep")
            .createSteppedGraph()
        let creator = FrameCreator(name: "dfr", count: 1, engine: EngineCtx(manager: BufferManager()))
        let (width, height) = (40, 20)
        let buffer = creator.createBuffer(payloadSize: Frame.byteCount(width: width, height: height), pad: 0)!
        let frame = Frame.make(in: buffer, width: width, height: height,
                               job: FrameJob(tick: 3, number: 3, mediaTime: 0, deadline: .max, rate: FrameRate(30)))
        frame.pts = 99
        node.scale = 0.5
        let input = try graph.input("node")
        input.push(buffer)
        input.endOfStream()
        graph.run()
        #expect(work.sizes.count == 1 && work.sizes[0] == (20, 10))
        let kept = try #require(keep.kept)
        #expect(kept.width == width && kept.height == height && kept.pts == 99 && kept.tick == 3 && kept.sequence == 3)
        var spread: [UInt32] = []
        for y in 0..<height { for x in 0..<width { spread.append(UInt32((y / 2) << 16 | (x / 2))) } }
        #expect(kept.pixels == spread)
        #expect(node.scale > 0.5)   // a tiny frame is far under the target: the share goes up again
        #expect(graph.statistics().ledgerProblems().isEmpty && creator.statistics().inUse == 0)
    }
}
