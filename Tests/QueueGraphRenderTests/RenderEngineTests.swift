import Foundation
@testable import QueueGraphRender
import QueueGraphCore
import QueueGraphRuntime
import Testing

@Suite("Render stream and frame jobs")
struct RenderStreamTests {
    @Test("frame-rate quantisation: frame n covers [n·period, (n+1)·period), negative times included")
    func quantisation() {
        let rate = FrameRate(25)
        #expect(rate.frame(at: 0) == 0)
        #expect(rate.frame(at: 39_999_999) == 0)
        #expect(rate.frame(at: 40_000_000) == 1)
        #expect(rate.frame(at: -1) == -1)
        #expect(rate.frame(at: -40_000_000) == -1)
        #expect(rate.frame(at: -40_000_001) == -2)
        let ntsc = FrameRate(30000, 1001)
        for n: Int64 in [0, 1, 29, 30, 1799, 1800, 107_892, -5] {
            #expect(ntsc.frame(at: ntsc.time(of: n)) == n, "frame \(n)")
            #expect(ntsc.frame(at: ntsc.time(of: n + 1) - 1) == n, "just before frame \(n + 1)")
        }
        #expect(FrameJob(tick: 0, number: 93_137, mediaTime: 0, deadline: 0, rate: rate).timecode == "01:02:05:12")
    }

    @Test("timings: speed and direction scale media time; a change while running re-anchors without a jump")
    func timings() {
        var t = Timings(start: 1_000, speed: 2, direction: .forward)
        t.anchor = 500
        #expect(t.mediaTime(at: 500) == 1_000)
        #expect(t.mediaTime(at: 1_500) == 3_000)
        t.direction = .backward
        #expect(t.mediaTime(at: 1_500) == -1_000)

        let stream = RenderStream(rate: FrameRate(50), timings: Timings(start: 10_000_000_000))
        stream.start()
        usleep(500_000)   // media time runs to about 10.5 s
        let before = stream.media(at: monotonicNanoseconds()).time
        stream.change(speed: 0.5, direction: .backward)
        let after = stream.media(at: monotonicNanoseconds()).time
        // Continuous: the re-anchored time is where the old timings were. Without the
        // re-anchor the new timings would apply from the start: about 9.75 s, 0.75 s back.
        #expect(abs(after - before) < 100_000_000, "jumped from \(before) to \(after)")
        stream.pause()
        let frozen = stream.media(at: monotonicNanoseconds() + 5_000_000_000)
        #expect(frozen == stream.media(at: monotonicNanoseconds()))
        #expect(stream.playState == .paused)
        stream.start()
        #expect(stream.playState == .playing)
        stream.stop()
        #expect(stream.playState == .stopped)
    }

    /// dispatcher → work… → sink, on three threads; returns the statistics and the sink.
    private func run(ticks: Int64, fps: Int = 120, latencyFrames: Double = 4, size: (Int, Int) = (64, 36),
                     works: [@Sendable () -> any FrameWork], sink: RecordingSink,
                     engine: EngineCtx = .shared) throws -> (GraphStatistics, RenderStream) {
        let stream = RenderStream(rate: FrameRate(fps), frameLimit: ticks, latencyFrames: latencyFrames)
        var config = QueueGraphConfig(name: "render-test")
            .adding(QueueConfig(name: "render", size: 4, threading: .thread, buffers: .provider,
                                processor: { _ in FrameDispatcher(stream: stream, width: size.0, height: size.1) },
                                creator: { _ in FrameCreator(name: "frames", count: 6, engine: engine) }))
        var previous = "render"
        for (i, work) in works.enumerated() {
            let name = "work\(i)"
            config = config.adding(QueueConfig(name: name, size: 2, threading: i == 0 ? .thread : .none, buffers: .reuse,
                                               processor: { _ in RenderNode(work(), engine: engine) }))
                .connecting(previous, to: name)
            previous = name
        }
        config = config.adding(QueueConfig(name: "sink", size: 2, threading: .thread, outPads: 0, processor: { _ in sink }))
            .connecting(previous, to: "sink")
        let graph = try config.createQueueGraph()
        try graph.start()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000))
        return (graph.stop(), stream)
    }

    @Test("every tick is delivered or dropped as late and counted; the ledger balances; frames arrive in tick order")
    func everyTickAccounted() throws {
        let sink = RecordingSink()
        // 200 ms of latency per frame: frames arrive even on a loaded machine, so their order is tested.
        let (stats, stream) = try run(ticks: 40, latencyFrames: 24, works: [{ JuliaZoom(maxIterations: 16) }, { BoxBlur(radius: 2) }], sink: sink)
        #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
        let late = stats.dropped(.late)
        #expect(!sink.ticks.isEmpty)
        #expect(sink.ticks.count + late == 40)
        #expect(stream.jobsLaunched + stream.ticksSkipped == 40)
        #expect(sink.ticks == sink.ticks.sorted())
        #expect(stats.pools.allSatisfy { $0.inUse == 0 })
    }

    @Test("each frame ends in the provider's protocol: emitted when delivered, blocked when dropped, then released")
    func emitAndBlockInThePipeline() throws {
        let engine = EngineCtx(manager: BufferManager())
        let sink = RecordingSink()
        /// Fails the odd ticks: those frames are dropped as failed.
        final class FailOdd: FrameWork {
            struct Odd: Error {}
            func render(_ frame: Frame, engine: EngineCtx) throws { if frame.job.tick % 2 == 1 { throw Odd() } }
        }
        let (stats, _) = try run(ticks: 12, latencyFrames: 24, works: [{ FailOdd() }], sink: sink, engine: engine)
        #expect(stats.ledgerProblems().isEmpty)
        let provider = engine.manager.statistics
        let pool = try #require(stats.pools.first)
        #expect(provider.emits == pool.consumed && provider.blocks == pool.dropped + pool.abandoned)
        #expect(provider.emits > 0 && provider.blocks > 0, "both fates happened: \(provider)")
        #expect(provider.locks == provider.releases && provider.bytesLeased == 0)
    }

    @Test("a job that cannot finish by its deadline is dropped as late, never delivered late")
    func lateJobsAreDropped() throws {
        let sink = RecordingSink()
        // 60 ms of work per frame against a deadline 2 × 8.3 ms after launch: every frame is late.
        let (stats, _) = try run(ticks: 6, latencyFrames: 2, works: [{ Sleeper(nanoseconds: 60_000_000) }], sink: sink)
        #expect(sink.ticks.isEmpty)
        let late = stats.dropped(.late)
        #expect(late == 6)
        // The node itself drops the jobs whose deadline passed while they waited (not only the sink).
        #expect((stats[queue: "work0"]?.dropped[.late] ?? 0) > 0)
        #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
    }

    @Test("the Y4M sink's output slot is released however the graph stops; the file holds whole frames")
    func outputSlotReleased() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qg-slot-\(getpid()).y4m").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let stream = RenderStream(rate: FrameRate(200), latencyFrames: 8)   // endless until stopped
        let config = QueueGraphConfig(name: "slot")
            .adding(QueueConfig(name: "render", size: 2, threading: .thread, buffers: .provider,
                                processor: { _ in FrameDispatcher(stream: stream, width: 32, height: 18) },
                                creator: { _ in FrameCreator(name: "frames", count: 4) }))
            .adding(QueueConfig(name: "sink", size: 2, threading: .thread, outPads: 0,
                                processor: { _ in RenderNode(Y4MWriter(path: path)) }))
            .connecting("render", to: "sink")
        let graph = try config.createQueueGraph()
        try graph.start()
        #expect(OutputSlot.isClaimed(path))
        for _ in 0..<10_000 where (graph.statistics()[queue: "sink"]?.popped ?? 0) < 5 { usleep(1_000) }
        let stats = graph.stop(.abandon)
        #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
        #expect(!OutputSlot.isClaimed(path))
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let header = "YUV4MPEG2 W32 H18 F200:1 Ip A1:1 C420jpeg\n"
        #expect(data.starts(with: Array(header.utf8)))
        let frameBytes = 6 + 32 * 18 * 3 / 2
        #expect((data.count - header.utf8.count) % frameBytes == 0)
        #expect((data.count - header.utf8.count) / frameBytes >= 5)
    }

    @Test("a thread's exit returns its slice's blocks to the manager")
    func threadExitReturnsBlocks() throws {
        let engine = EngineCtx(manager: BufferManager())
        let thread = Thread {
            let handles = (0..<5).map { _ in try! engine.provider.lock(.bytes(4096)) }
            for handle in handles { try! engine.provider.release(handle) }
        }
        thread.start()
        // The slice goes back when the thread ends (bounded wait: a failure must not hang the run).
        for _ in 0..<10_000 where engine.manager.spareBlocks < 5 { usleep(1_000) }
        #expect(engine.manager.statistics.allocations >= 5)   // the thread ran
        #expect(engine.manager.spareBlocks == engine.manager.statistics.allocations)
        #expect(engine.manager.statistics.bytesLeased == 0)
    }
}

@Suite("Media nodes")
struct MediaNodeTests {
    /// A frame of `width × height` in a creator's buffer, filled by `fill(x, y)`.
    final class TestFrame {
        let creator = FrameCreator(name: "test", count: 2, engine: EngineCtx(manager: BufferManager()))
        let frame: Frame

        init(width: Int, height: Int, fill: (Int, Int) -> UInt32) {
            let buffer = creator.createBuffer(payloadSize: Frame.byteCount(width: width, height: height), pad: 0)!
            frame = Frame.make(in: buffer, width: width, height: height,
                               job: FrameJob(tick: 0, number: 0, mediaTime: 0, deadline: .max, rate: FrameRate(25)))
            for y in 0..<height { for x in 0..<width { frame.pixels[y * width + x] = fill(x, y) } }
        }

        subscript(x: Int, y: Int) -> UInt32 { frame.pixels[y * frame.width + x] }
        var pixels: [UInt32] { Array(frame.pixelBuffer) }
        deinit { creator.destroyBuffer(frame.buffer, fate: .consumed) }
    }

    static let engine = EngineCtx(manager: BufferManager())

    @Test("the Y4M sink writes I420 and NV12 frames plane by plane, without the rows' padding, as I420", arguments: [PixelFormat.i420, .nv12])
    func y4mFromPlanes(format: PixelFormat) throws {
        let (w, h, cw, ch) = (5, 3, 3, 2)
        let image = TestFrame(width: 64, height: 8) { _, _ in 0 }   // room for the planes' padded rows
        let frame = Frame.make(in: image.frame.buffer, width: w, height: h, format: format, job: image.frame.job)
        let luma = frame.plane(0)
        for y in 0..<h { for x in 0..<w { luma.bytes[y * luma.stride + x] = UInt8(10 * y + x) } }
        for i in 0..<cw * ch {
            let (x, y) = (i % cw, i / cw)
            if format == .nv12 {
                let pairs = frame.plane(1)
                (pairs.bytes[y * pairs.stride + 2 * x], pairs.bytes[y * pairs.stride + 2 * x + 1]) = (UInt8(100 + i), UInt8(200 + i))
            } else {
                (frame.plane(1).bytes[y * frame.plane(1).stride + x], frame.plane(2).bytes[y * frame.plane(2).stride + x]) = (UInt8(100 + i), UInt8(200 + i))
            }
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("qg-planes-\(getpid())-\(format).y4m").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sink = Y4MWriter(path: path)
        try sink.render(frame, engine: Self.engine)
        sink.finish()
        var expected = Array("YUV4MPEG2 W5 H3 F25:1 Ip A1:1 C420jpeg\nFRAME\n".utf8)
        for y in 0..<h { for x in 0..<w { expected.append(UInt8(10 * y + x)) } }
        for base in [100, 200] { for i in 0..<cw * ch { expected.append(UInt8(base + i)) } }
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path))) == expected)
    }

    @Test("blurs keep a constant image constant and conserve an impulse's energy", arguments: ["box", "gaussian"])
    func blurs(kind: String) throws {
        let blur: any FrameWork = kind == "box" ? BoxBlur(radius: 3) : GaussianBlur(sigma: 1.5)
        let engine = EngineCtx(manager: BufferManager())   // its own: the cases run at once
        let flat = TestFrame(width: 40, height: 30) { _, _ in rgba(200, 100, 50, 255) }
        try blur.render(flat.frame, engine: engine)
        #expect(flat.pixels.allSatisfy { $0 == rgba(200, 100, 50, 255) })

        let impulse = TestFrame(width: 41, height: 41) { x, y in x == 20 && y == 20 ? rgba(255, 255, 255, 255) : 0 }
        try blur.render(impulse.frame, engine: engine)
        let red = impulse.pixels.map { Int($0 & 0xFF) }
        #expect(abs(red.reduce(0, +) - 255) <= 64)   // rounding per pixel only
        #expect(impulse[20, 20] & 0xFF > impulse[24, 20] & 0xFF)
        #expect(impulse[18, 20] == impulse[22, 20] && impulse[20, 18] == impulse[20, 22])   // symmetric
        #expect(engine.manager.statistics.bytesLeased == 0)   // scratch went back
    }

    @Test("colour matrices: saturation 1 is the identity, greyscale gives r = g = b, sepia keeps alpha")
    func colourMatrix() {
        let colours: (Int, Int) -> UInt32 = { x, y in rgba(Double(x * 25), Double(y * 40), Double(255 - x * 20), 128) }
        let same = TestFrame(width: 10, height: 6, fill: colours)
        ColourMatrix.saturation(1).render(same.frame, engine: Self.engine)
        #expect(same.pixels == TestFrame(width: 10, height: 6, fill: colours).pixels)
        let grey = TestFrame(width: 10, height: 6, fill: colours)
        ColourMatrix.greyscale().render(grey.frame, engine: Self.engine)
        for p in grey.pixels {
            let c = channels(p)
            #expect(abs(c[0] - c[1]) <= 1 && abs(c[1] - c[2]) <= 1 && c[3] == 128)
        }
        let lifted = TestFrame(width: 10, height: 6, fill: colours)
        ColourMatrix(rows: [SIMD4(1, 0, 0, 10), SIMD4(0, 1, 0, -20), SIMD4(0, 0, 1, 0)]).render(lifted.frame, engine: Self.engine)
        for (a, b) in zip(lifted.pixels, TestFrame(width: 10, height: 6, fill: colours).pixels) {
            let (ca, cb) = (channels(a), channels(b))
            #expect(ca == SIMD4(min(cb[0] + 10, 255), max(cb[1] - 20, 0), cb[2], cb[3]), "the offset column adds in 0…255 units")
        }
        let sepia = TestFrame(width: 10, height: 6, fill: colours)
        ColourMatrix.sepia().render(sepia.frame, engine: Self.engine)
        #expect(sepia.pixels.allSatisfy { $0 >> 24 == 128 })
    }

    @Test("composite: opacity 0 keeps the base, an opaque top at opacity 1 replaces it, half alpha mixes")
    func compositeBlend() {
        let base = TestFrame(width: 4, height: 1) { _, _ in rgba(0, 0, 200, 255) }
        let top = TestFrame(width: 4, height: 1) { x, _ in rgba(255, 0, 0, x == 0 ? 255 : 128) }
        composite(top.frame.pixels, over: base.frame.pixels, count: 4, opacity: 0)
        #expect(base.pixels.allSatisfy { $0 == rgba(0, 0, 200, 255) })
        composite(top.frame.pixels, over: base.frame.pixels, count: 4, opacity: 1)
        #expect(base[0, 0] == rgba(255, 0, 0, 255))
        let mixed = channels(base[1, 0])
        #expect(abs(mixed[0] - 128) <= 1 && abs(mixed[2] - 100) <= 1 && mixed[3] == 255)
    }

    @Test("bilinear scale: a constant stays constant, a horizontal ramp stays a monotonic ramp")
    func scale() {
        let scaler = BilinearScaler(width: 37, height: 23)
        let flat = TestFrame(width: 16, height: 9) { _, _ in rgba(10, 20, 30, 255) }
        let out = TestFrame(width: 37, height: 23) { _, _ in 0 }
        scaler.scale(flat.frame, into: out.frame)
        #expect(out.pixels.allSatisfy { $0 == rgba(10, 20, 30, 255) })
        let ramp = TestFrame(width: 16, height: 9) { x, _ in rgba(Double(x * 16), 0, 0, 255) }
        scaler.scale(ramp.frame, into: out.frame)
        let row = (0..<37).map { out[$0, 11] & 0xFF }
        #expect(row == row.sorted() && row.first! < 8 && row.last! > 232)
    }

    @Test("RGBA to I420: white, black and a primary give the BT.601 limited-range values")
    func yuv() {
        let frame = TestFrame(width: 4, height: 2) { x, _ in x < 2 ? rgba(255, 255, 255) : rgba(0, 0, 0) }
        var out = [UInt8](repeating: 0, count: 4 * 2 + 2 * 2)
        rgbaToI420(frame.frame.pixels, width: 4, height: 2, into: &out)
        #expect(Array(out[0..<8]) == [235, 235, 16, 16, 235, 235, 16, 16])
        #expect(Array(out[8..<12]) == [128, 128, 128, 128])
        let red = TestFrame(width: 2, height: 2) { _, _ in rgba(255, 0, 0) }
        var yuv = [UInt8](repeating: 0, count: 6)
        rgbaToI420(red.frame.pixels, width: 2, height: 2, into: &yuv)
        #expect(yuv[0] == 82 && yuv[4] == 90 && yuv[5] == 240)
    }

    @Test("the PNG sink's files read back through libpng with the same pixels")
    func pngRoundTrip() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qg-png-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let frame = TestFrame(width: 33, height: 17) { x, y in rgba(Double(x * 7), Double(y * 15), Double((x + y) * 3), Double(255 - x)) }
        let writer = PNGWriter(directory: directory)
        try writer.render(frame.frame, engine: Self.engine)
        writer.finish()
        let read = try readPNG(path: "\(directory)/frame-000000.png")
        #expect(read.width == 33 && read.height == 17)
        #expect(read.pixels == frame.pixels)
        #expect(throws: OutputError.self) { try readPNG(path: "\(directory)/missing.png") }
    }

    @Test("generators paint every pixel and change with media time; the timecode overlay draws digits")
    func generators() throws {
        for make in [{ JuliaZoom(maxIterations: 32) as any FrameWork }, { Plasma() }, { BouncingBall() }] {
            let a = TestFrame(width: 50, height: 30) { _, _ in 0x1234_5678 }
            try make().render(a.frame, engine: Self.engine)
            #expect(!a.pixels.contains(0x1234_5678))
            let b = TestFrame(width: 50, height: 30) { _, _ in 0 }
            b.frame.buffer.payload.baseAddress!.assumingMemoryBound(to: Frame.Header.self).pointee.job.mediaTime = 3_000_000_000
            try make().render(b.frame, engine: Self.engine)
            #expect(a.pixels != b.pixels)
        }
        let dark = TestFrame(width: 80, height: 30) { _, _ in rgba(40, 40, 40) }
        TimecodeOverlay(scale: 1).render(dark.frame, engine: Self.engine)
        #expect(dark.pixels.contains(0xFFFF_FFFF))
        #expect(dark[79, 29] == rgba(40, 40, 40))
        // Text wider and taller than the frame is clipped: nothing is written past its last pixel.
        let creator = FrameCreator(name: "clip", count: 1, engine: EngineCtx(manager: BufferManager()))
        let (w, h) = (20, 10)
        let buffer = creator.createBuffer(payloadSize: Frame.byteCount(width: w, height: h) + 256, pad: 0)!
        defer { creator.destroyBuffer(buffer, fate: .consumed) }
        let small = Frame.make(in: buffer, width: w, height: h,
                               job: FrameJob(tick: 0, number: 0, mediaTime: 0, deadline: .max, rate: FrameRate(25)))
        for i in 0..<w * h { small.pixels[i] = rgba(40, 40, 40) }
        let guardZone = UnsafeMutableRawPointer(small.pixels + w * h).assumingMemoryBound(to: UInt8.self)
        guardZone.initialize(repeating: 0xAB, count: 256)
        TimecodeOverlay(scale: 4).render(small, engine: Self.engine)
        #expect((0..<256).allSatisfy { guardZone[$0] == 0xAB })
        #expect(small.pixels[w * h - 1] != rgba(40, 40, 40))   // the box reaches the last pixel
    }
}

/// A sink that records the ticks it receives in time and drops late ones.
final class RecordingSink: BufferProcessor, @unchecked Sendable {
    private(set) var ticks: [Int64] = []

    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        guard let frame = Frame(buffer) else { return .failed }
        if context.now >= frame.job.deadline { return .late }
        ticks.append(frame.job.tick)
        context.doneBuffer(buffer)
        return .ok
    }
}

/// Work that takes a fixed time and changes nothing.
final class Sleeper: FrameWork {
    let nanoseconds: UInt32
    init(nanoseconds: UInt32) { self.nanoseconds = nanoseconds }
    func render(_ frame: Frame, engine: EngineCtx) { usleep(nanoseconds / 1000) }
}
