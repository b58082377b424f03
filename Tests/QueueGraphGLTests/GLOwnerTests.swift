import Foundation
@testable import QueueGraphGL
import QueueGraphCore
@testable import QueueGraphRender
import QueueGraphRuntime
import Testing

/// Fills each frame with a pattern known from its position and tick.
final class Pattern: FrameWork {
    static func pixel(x: Int, y: Int, tick: Int64) -> UInt32 {
        let r = UInt32((x * 7 + Int(tick)) & 0xFF), g = UInt32((y * 5) & 0xFF), b = UInt32((x + y) & 0xFF)
        return 0xFF00_0000 | b << 16 | g << 8 | r
    }

    func render(_ frame: Frame, engine: EngineCtx) throws {
        for y in 0..<frame.height {
            for x in 0..<frame.width { frame.pixels[y * frame.width + x] = Self.pixel(x: x, y: y, tick: frame.job.tick) }
        }
    }
}

/// The test shader's result for a source pixel at row `y` (top first) of an `height`-row frame:
/// RGB inverted, alpha 255 in the bottom half (shadertoy's `fragCoord.y` counts from the bottom), else 128.
func inverted(_ pixel: UInt32, y: Int, height: Int) -> UInt32 {
    let alpha: UInt32 = y >= height / 2 ? 255 : 128
    return alpha << 24 | (~pixel & 0x00FF_FFFF)
}

/// Records, per frame, how many pixels differ from the expected shader output.
final class CheckingSink: BufferProcessor, @unchecked Sendable {
    private let state = Locked<[(tick: Int64, wrong: Int)]>([])
    var results: [(tick: Int64, wrong: Int)] { state.withLock { $0 } }

    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        guard let frame = Frame(buffer) else { return .failed }
        var wrong = 0
        for y in 0..<frame.height {
            for x in 0..<frame.width {
                let expected = inverted(Pattern.pixel(x: x, y: y, tick: frame.job.tick), y: y, height: frame.height)
                if frame.pixels[y * frame.width + x] != expected { wrong += 1 }
            }
        }
        state.withLock { $0.append((frame.job.tick, wrong)) }
        context.doneBuffer(buffer)
        return .ok
    }
}

func writeShader(_ name: String, _ source: String) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("qg-\(getpid())-\(name)").path
    try! source.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

let invertShader = """
    // Inverts the input; alpha tells which half fragCoord.y is in.
    void mainImage(out vec4 fragColor, in vec2 fragCoord) {
        vec3 c = texture(iChannel0, fragCoord / iResolution.xy).rgb;
        fragColor = vec4(1.0 - c, fragCoord.y < iResolution.y * 0.5 ? 1.0 : 128.0 / 255.0);
    }
    """

/// render → pattern → [gl upload → shader → extra… → readback] → sink; the bracket is one GL owner thread.
func glGraph(owner: GLOwner, shader: String, frames: Int64?, size: (Int, Int) = (64, 36), fps: Int = 30,
             extra: [(String, @Sendable () -> any BufferProcessor)] = [], readback: PixelFormat = .rgba,
             sink: any BufferProcessor & Sendable) -> (QueueGraphConfig, RenderStream) {
    let stream = RenderStream(rate: FrameRate(fps), frameLimit: frames, latencyFrames: 60)   // debug builds are slow
    var config = QueueGraphConfig(name: "gl-test")
        .adding(QueueConfig(name: "render", size: 4, threading: .thread, buffers: .provider,
                            processor: { _ in FrameDispatcher(stream: stream, width: size.0, height: size.1) },
                            creator: { _ in FrameCreator(name: "frames", count: 8) }))
        .adding(QueueConfig(name: "pattern", size: 2, buffers: .reuse, processor: { _ in RenderNode(Pattern()) }))
        .adding(QueueConfig(name: "gl", size: 2, threading: .thread, processor: { _ in GLUpload(owner: owner) }))
        .adding(QueueConfig(name: "shader", size: 2, processor: { _ in GLShaderPass(path: shader) }))
        .connecting("render", to: "pattern").connecting("pattern", to: "gl").connecting("gl", to: "shader")
    var previous = "shader"
    for (name, make) in extra {
        config = config.adding(QueueConfig(name: name, size: 2, processor: { _ in make() })).connecting(previous, to: name)
        previous = name
    }
    config = config
        .adding(QueueConfig(name: "readback", size: 2, buffers: .reuse, processor: { _ in GLReadback(format: readback) }))
        .adding(QueueConfig(name: "sink", size: 4, threading: .thread, outPads: 0, processor: { _ in sink }))
        .connecting(previous, to: "readback").connecting("readback", to: "sink")
    return (config, stream)
}

/// Keeps each 4:2:0 frame's planes, unpadded (`copyI420`), by tick.
final class PlaneSink: BufferProcessor, @unchecked Sendable {
    private let state = Locked<[Int64: [UInt8]]>([:])
    var frames: [Int64: [UInt8]] { state.withLock { $0 } }

    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        guard let frame = Frame(buffer), frame.pixelFormat.isYUV, frame.gpuImage == 0 else { return .failed }
        let (cw, ch) = ((frame.width + 1) / 2, (frame.height + 1) / 2)
        var bytes = [UInt8](repeating: 0, count: frame.pixelCount + 2 * cw * ch)
        bytes.withUnsafeMutableBufferPointer { copyI420(frame, into: $0.baseAddress!) }
        state.withLock { $0[frame.job.tick] = bytes }
        context.doneBuffer(buffer)
        return .ok
    }
}

@Suite("GL owner queue (Mesa llvmpipe; GLFW under Xvfb, EGL surfaceless without X)", .serialized)
struct GLOwnerTests {
    @Test("glreadback's pack conversion on the GL thread gives the CPU conversion's I420 bytes, from I420 and NV12, at odd sizes too",
          arguments: [PixelFormat.i420, .nv12])
    func packConversion(format: PixelFormat) throws {
        for (width, height) in [(64, 36), (67, 37)] {
            let sink = PlaneSink()
            let (config, _) = glGraph(owner: GLOwner(.init(backend: .egl)), shader: writeShader("invert.frag", invertShader), frames: 6,
                                      size: (width, height), readback: format, sink: sink)
            let graph = try config.createQueueGraph()
            try graph.start()
            #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000))
            let stats = graph.stop()
            #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
            #expect(sink.frames.count + stats.dropped(.late) == 6 && !sink.frames.isEmpty)
            for (tick, planes) in sink.frames {
                // What the shader made, converted on the CPU as y4msink converts RGBA.
                var rgba = [UInt32](repeating: 0, count: width * height)
                for y in 0..<height {
                    for x in 0..<width { rgba[y * width + x] = inverted(Pattern.pixel(x: x, y: y, tick: tick), y: y, height: height) }
                }
                var expected = [UInt8](repeating: 0, count: planes.count)
                expected.withUnsafeMutableBufferPointer { out in rgbaToI420(rgba, width: width, height: height, into: out.baseAddress!) }
                let wrong = zip(planes, expected).filter { $0 != $1 }.count
                #expect(wrong == 0, "\(format) \(width)×\(height) tick \(tick): \(wrong) of \(planes.count) bytes differ")
            }
        }
    }

    @Test("upload → known shader → readback gives the expected pixels", arguments: [GLBackend.auto, .egl])
    func pipelinePixels(backend: GLBackend) throws {
        let owner = GLOwner(.init(backend: backend))
        let sink = CheckingSink()
        let (config, _) = glGraph(owner: owner, shader: writeShader("invert.frag", invertShader), frames: 12, sink: sink)
        let graph = try config.createQueueGraph()
        try graph.start()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000))
        let stats = graph.stop()
        #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
        #expect(sink.results.count + stats.dropped(.late) == 12)
        #expect(!sink.results.isEmpty)
        #expect(sink.results.allSatisfy { $0.wrong == 0 }, "\(sink.results)")
        let gl = owner.statistics()
        #expect(gl.renderer.contains("llvmpipe"), "\(gl.renderer)")
        #expect(gl.backend == GLContext.resolve(backend).backend)
        #expect(gl.frames == sink.results.count)
        // Shutdown order: every processor released its GL objects before the context went.
        #expect(gl.shutdown == ["glreadback released", "glshader released", "glupload released", "context destroyed"])
        #expect(gl.objectsAliveAtContextDestroy == 0)
    }

    @Test("a screenshot PNG decodes to the frame's size and the shader's output")
    func screenshotPNG() throws {
        let owner = GLOwner()
        let pattern = FileManager.default.temporaryDirectory.appendingPathComponent("qg-\(getpid())-shot-{tick}.png").path
        let shots = Locked<GLScreenshot?>(nil)
        let (config, _) = glGraph(owner: owner, shader: writeShader("invert2.frag", invertShader), frames: 5, size: (48, 20),
                                  extra: [("shot", { let s = GLScreenshot(path: pattern, every: 4); shots.withLock { $0 = s }; return s })],
                                  sink: CheckingSink())
        let graph = try config.createQueueGraph()
        try graph.start()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000))
        graph.stop()
        let request = try #require(shots.withLock { $0 }?.lastRequest)
        #expect(request.outcome == .completed(image: nil))
        let path = pattern.replacing("{tick}", with: "4")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let png = try readPNG(path: path)
        #expect(png.width == 48 && png.height == 20)
        var wrong = 0
        for y in 0..<20 {
            for x in 0..<48 where png.pixels[y * 48 + x] != inverted(Pattern.pixel(x: x, y: y, tick: 4), y: y, height: 20) { wrong += 1 }
        }
        #expect(wrong == 0)
        #expect(owner.statistics().mailbox.screenshotsWritten >= 1)
    }

    @Test("a shader that does not compile: the log names file:line:column and the graph refuses to start")
    func compileError() throws {
        let path = writeShader("broken.frag", "void mainImage(out vec4 c, in vec2 p) {\n    c = vec4(1.0);\n    c = undefinedThing;\n}\n")
        let owner = GLOwner()
        let sink = CheckingSink()
        let (config, _) = glGraph(owner: owner, shader: path, frames: 3, sink: sink)
        let graph = try config.createQueueGraph()
        let error = #expect(throws: QueueGraphError.self) { try graph.start() }
        guard case .threadStartFailed(let queue, let reason)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(queue == "shader")
        #expect(reason.contains("\(path):3:"), "\(reason)")
        #expect(reason.contains("undefinedThing"))
        #expect(sink.results.isEmpty)
        let stats = graph.stop()
        #expect(stats.ledgerProblems().isEmpty, "\(stats.ledgerProblems())")
        #expect(owner.statistics().objectsAliveAtContextDestroy == 0)
        #expect(owner.statistics().shutdown.last == "context destroyed")
    }

    /// A processor of the owner's group doing its own GL work through `withContext`.
    final class ContextUser: BufferProcessor, @unchecked Sendable {
        let owner: GLOwner
        let images = Locked<[(tick: Int64, image: CPUImage)]>([])
        init(owner: GLOwner) { self.owner = owner }
        func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
            let frame = Frame(buffer)!
            let read = try? owner.withContext { session in session.readImage(frame.gpuImage) }
            if let image = read ?? nil {
                images.withLock { $0.append((frame.job.tick, image)) }
            }
            passOn(buffer, context: context)
            return .ok
        }
    }

    @Test("GL work runs on the owner thread; from another thread it is refused, counted, and never run")
    func wrongThreadRefused() throws {
        let owner = GLOwner()
        let user = ContextUser(owner: owner)
        let (config, _) = glGraph(owner: owner, shader: writeShader("invert3.frag", invertShader), frames: 3, size: (16, 8),
                                  extra: [("user", { user })], sink: CheckingSink())
        let graph = try config.createQueueGraph()
        try graph.start()
        var ran = false
        #expect(throws: GLError.self) { try owner.withContext { _ in ran = true } }
        #expect(!ran)
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000))
        graph.stop()
        #expect(owner.statistics().wrongThreadCalls == 1)
        // On the owner thread the same call ran: each frame's image read back through the session.
        let images = user.images.withLock { $0 }
        #expect(!images.isEmpty)
        for (tick, image) in images {
            let expected = (0..<8).flatMap { y in (0..<16).map { x in inverted(Pattern.pixel(x: x, y: y, tick: tick), y: y, height: 8) } }
            #expect(image.pixels == expected, "tick \(tick)")
        }
    }

    @Test("other threads upload an input, read frames back in FIFO order and reset the shaders through the mailbox")
    func mailboxAgainstLiveOwner() throws {
        let channel1 = """
            void mainImage(out vec4 fragColor, in vec2 fragCoord) {
                fragColor = texture(iChannel1, fragCoord / iResolution.xy);
            }
            """
        let path = writeShader("channel1.frag", channel1)
        let owner = GLOwner()
        let (config, stream) = glGraph(owner: owner, shader: path, frames: nil, size: (8, 4), fps: 60, sink: CheckingSink())
        let graph = try config.createQueueGraph()
        try graph.start()
        defer { stream.stop(); graph.stop(.abandon) }
        let input = CPUImage(width: 8, height: 4, pixels: (0..<32).map { 0xFF00_0000 | UInt32($0 * 8) })
        #expect(owner.mailbox.wait(owner.submitInput(input)) == .completed(image: nil))
        // The next frames show the input; wait for one (bounded: 10 s, the first frame may be slow on a loaded machine).
        func frameShowing(_ image: CPUImage) -> CPUImage? {
            var shown: CPUImage?
            for _ in 0..<1000 where shown != image {
                if case .completed(let frame)? = owner.mailbox.wait(owner.requestOutputFrame()) { shown = frame }
                if shown != image { usleep(10_000) }
            }
            return shown
        }
        #expect(frameShowing(input) == input)
        // FIFO output requests each complete.
        let outputs = (0..<3).map { _ in owner.requestOutputFrame() }
        #expect(outputs.allSatisfy { owner.mailbox.wait($0).map { if case .completed = $0 { true } else { false } } ?? false })
        // A shader reload that fails keeps the old program and reports the log.
        try "void mainImage(out vec4 c, in vec2 p) { c = nope; }\n".write(toFile: path, atomically: true, encoding: .utf8)
        let reset = owner.mailbox.wait(owner.requestReset(.shaders))
        guard case .failed(.error(let log))? = reset else { Issue.record("\(String(describing: reset))"); return }
        #expect(log.contains("\(path):1:"), "\(log)")
        // Only a program that still draws can show an input uploaded after the failed reload.
        let second = CPUImage(width: 8, height: 4, pixels: (0..<32).map { 0xFF00_0000 | UInt32(255 - $0 * 8) })
        #expect(owner.mailbox.wait(owner.submitInput(second)) == .completed(image: nil))
        #expect(frameShowing(second) == second)
        let stats = owner.statistics().mailbox
        #expect(stats.total.balances)
        #expect(stats[.output].executed >= 4)
    }
}
