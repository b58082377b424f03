// `qgbench gl`: the GL owner queue (upload → shader pass → asynchronous
// read-back, on the GL owner thread, fed by a source thread and drained by a
// sink thread) against a bare loop doing the same GL work on one thread
// with no framework (glTexSubImage2D, draw, glReadPixels), at 640×360 with
// Graphs/shaders/grade.frag. Runs alternate (bare, owner, …) so that both
// see the same machine; the figure is the ratio of the medians.
import CGLBench
import Foundation
import QueueGraphCore
import QueueGraphGL
import QueueGraphRender
import QueueGraphRuntime

private let shaderPath = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().appendingPathComponent("../../../../Graphs/shaders/grade.frag").standardized.path

/// Sends `count` frames as fast as the graph takes them (deadlines far away: nothing is late).
final class GLBenchSource: BufferSource, @unchecked Sendable {
    let count: Int, width: Int, height: Int
    var sent = 0
    init(count: Int, width: Int, height: Int) { (self.count, self.width, self.height) = (count, width, height) }
    func produce(context: ProcessContext) -> ProduceResult {
        guard sent < count else { return .endOfStream }
        guard let buffer = context.acquireBuffer(size: Frame.byteCount(width: width, height: height)) else { return .waitingForBuffer }
        let job = FrameJob(tick: Int64(sent), number: Int64(sent), mediaTime: Int64(sent) * 16_666_667,
                           deadline: monotonicNanoseconds() + 60_000_000_000, rate: FrameRate(60))
        Frame.make(in: buffer, width: width, height: height, job: job)
        if context.sendTo(0, buffer) == .full { context.doneBuffer(buffer); return .produced }
        sent += 1
        return .produced
    }
}

/// Milliseconds per frame through the GL owner queue.
func glOwnerRun(frames: Int, width: Int, height: Int) throws -> Double {
    let owner = GLOwner()
    let config = QueueGraphConfig(name: "gl-bench")
        .adding(QueueConfig(name: "src", size: 4, threading: .thread, buffers: .provider,
                            processor: { _ in GLBenchSource(count: frames, width: width, height: height) },
                            creator: { _ in FrameCreator(name: "frames", count: 8) }))
        .adding(QueueConfig(name: "gl", size: 2, threading: .thread, processor: { _ in GLUpload(owner: owner) }))
        .adding(QueueConfig(name: "shader", size: 2, processor: { _ in GLShaderPass(path: shaderPath) }))
        .adding(QueueConfig(name: "readback", size: 2, buffers: .reuse, processor: { _ in GLReadback() }))
        .adding(QueueConfig(name: "sink", size: 4, threading: .thread, outPads: 0, processor: { _ in CountingSink() }))
        .connecting("src", to: "gl").connecting("gl", to: "shader").connecting("shader", to: "readback").connecting("readback", to: "sink")
    let graph = try config.createQueueGraph()
    try graph.start()   // makes the context and compiles the shader, as the bare loop does before its clock
    let start = monotonicNanoseconds()
    graph.waitUntilFinished()
    let elapsed = monotonicNanoseconds() - start
    let stats = graph.stop()
    precondition(stats.ledgerProblems().isEmpty && stats.queues.last!.processed == frames, "lost frames: \(stats.ledgerProblems())")
    return Double(elapsed) / Double(frames) / 1e6
}

/// The output pack conversion feeding the Y4M sink (to /dev/null), one way:
/// `.i420`, a shader pass on the GL thread and a 1.5 bytes-per-pixel read;
/// `.rgba`, the RGBA read and the sink's CPU conversion. Wall and CPU
/// milliseconds per frame (the CPU of the whole process: llvmpipe's
/// "GPU" is the CPU here too).
func glPackRun(frames: Int, width: Int, height: Int, format: PixelFormat) throws -> (wall: Double, cpu: Double) {
    let owner = GLOwner()
    let config = QueueGraphConfig(name: "gl-pack")
        .adding(QueueConfig(name: "src", size: 4, threading: .thread, buffers: .provider,
                            processor: { _ in GLBenchSource(count: frames, width: width, height: height) },
                            creator: { _ in FrameCreator(name: "frames", count: 8) }))
        .adding(QueueConfig(name: "gl", size: 2, threading: .thread, processor: { _ in GLUpload(owner: owner) }))
        .adding(QueueConfig(name: "shader", size: 2, processor: { _ in GLShaderPass(path: shaderPath) }))
        .adding(QueueConfig(name: "readback", size: 2, buffers: .reuse, processor: { _ in GLReadback(format: format) }))
        .adding(QueueConfig(name: "sink", size: 4, threading: .thread, outPads: 0, processor: { _ in RenderNode(Y4MWriter(path: "/dev/null")) }))
        .connecting("src", to: "gl").connecting("gl", to: "shader").connecting("shader", to: "readback").connecting("readback", to: "sink")
    let graph = try config.createQueueGraph()
    try graph.start()
    let (start, cpu) = (monotonicNanoseconds(), cpuSeconds())
    graph.waitUntilFinished()
    let (elapsed, used) = (monotonicNanoseconds() - start, cpuSeconds() - cpu)
    let stats = graph.stop()
    precondition(stats.ledgerProblems().isEmpty && stats.queues.last!.processed == frames, "lost frames: \(stats.ledgerProblems())")
    return (Double(elapsed) / Double(frames) / 1e6, used * 1000 / Double(frames))
}

/// Milliseconds per frame of the same GL work in a bare loop on this thread.
func glBareRun(frames: Int, width: Int, height: Int) throws -> Double {
    let context = try GLContext.make(.auto, width: width, height: height, title: "bare", visible: false)
    defer { context.destroy() }
    func shader(_ kind: Int32, _ source: String) -> GLuint {
        let s = glCreateShader(GLenum(kind))
        source.withCString { text in var p: UnsafePointer<GLchar>? = text; glShaderSource(s, 1, &p, nil) }
        glCompileShader(s)
        return s
    }
    let program = glCreateProgram()
    glAttachShader(program, shader(GL_VERTEX_SHADER, ShaderProgram.vertexSource))
    glAttachShader(program, shader(GL_FRAGMENT_SHADER, ShaderProgram.prelude() + (try String(contentsOfFile: shaderPath, encoding: .utf8))))
    glLinkProgram(program)
    var linked: GLint = 0
    glGetProgramiv(program, GLenum(GL_LINK_STATUS), &linked)
    precondition(linked == GL_TRUE, "the bare loop's shader did not link")
    glUseProgram(program)
    glUniform1i(glGetUniformLocation(program, "iChannel0"), 0)
    glUniform1i(glGetUniformLocation(program, "iChannel1"), 1)
    var textures = [GLuint](repeating: 0, count: 3)   // input, output, black
    glGenTextures(3, &textures)
    for (i, t) in textures.enumerated() {
        glBindTexture(GLenum(GL_TEXTURE_2D), t)
        let (w, h) = i == 2 ? (1, 1) : (width, height)
        glTexImage2D(GLenum(GL_TEXTURE_2D), 0, GL_RGBA8, GLsizei(w), GLsizei(h), 0, GLenum(GL_RGBA), GLenum(GL_UNSIGNED_BYTE), nil)
        glTexParameteri(GLenum(GL_TEXTURE_2D), GLenum(GL_TEXTURE_MIN_FILTER), GL_LINEAR)
        glTexParameteri(GLenum(GL_TEXTURE_2D), GLenum(GL_TEXTURE_MAG_FILTER), GL_LINEAR)
    }
    var framebuffer: GLuint = 0, vertexArray: GLuint = 0
    glGenFramebuffers(1, &framebuffer)
    glBindFramebuffer(GLenum(GL_FRAMEBUFFER), framebuffer)
    glFramebufferTexture2D(GLenum(GL_FRAMEBUFFER), GLenum(GL_COLOR_ATTACHMENT0), GLenum(GL_TEXTURE_2D), textures[1], 0)
    glGenVertexArrays(1, &vertexArray)
    glBindVertexArray(vertexArray)
    glViewport(0, 0, GLsizei(width), GLsizei(height))
    var pixels = [UInt32](repeating: 0x8040_2010, count: width * height)
    let resolution = glGetUniformLocation(program, "iResolution"), time = glGetUniformLocation(program, "iTime")
    let start = monotonicNanoseconds()
    for i in 0..<frames {
        glActiveTexture(GLenum(GL_TEXTURE1)); glBindTexture(GLenum(GL_TEXTURE_2D), textures[2])
        glActiveTexture(GLenum(GL_TEXTURE0)); glBindTexture(GLenum(GL_TEXTURE_2D), textures[0])
        glTexSubImage2D(GLenum(GL_TEXTURE_2D), 0, 0, 0, GLsizei(width), GLsizei(height), GLenum(GL_RGBA), GLenum(GL_UNSIGNED_BYTE), pixels)
        glUniform3f(resolution, Float(width), Float(height), 1)
        glUniform1f(time, Float(i) / 60)
        glDrawArrays(GLenum(GL_TRIANGLES), 0, 3)
        glReadPixels(0, 0, GLsizei(width), GLsizei(height), GLenum(GL_RGBA), GLenum(GL_UNSIGNED_BYTE), &pixels)
    }
    let elapsed = monotonicNanoseconds() - start
    glDeleteVertexArrays(1, &vertexArray)
    glDeleteFramebuffers(1, &framebuffer)
    glDeleteTextures(3, &textures)
    glDeleteProgram(program)
    return Double(elapsed) / Double(frames) / 1e6
}

func glBenchmark() throws {
    let (width, height, frames, rounds) = (640, 360, 600, 5)
    var bare: [Double] = [], owned: [Double] = []
    print("gl: \(frames) frames at \(width)×\(height) through \(shaderPath), \(rounds) rounds (bare loop, then GL owner queue)")
    for round in 1...rounds {
        bare.append(try glBareRun(frames: frames, width: width, height: height))
        owned.append(try glOwnerRun(frames: frames, width: width, height: height))
        print(String(format: "  round %d: bare %.3f ms/frame, owner queue %.3f ms/frame (%.3f)", round, bare.last!, owned.last!, owned.last! / bare.last!))
    }
    let ratio = median(owned) / median(bare)
    print(String(format: "median: bare %.3f ms/frame (%.0f fps), owner queue %.3f ms/frame (%.0f fps); overhead ratio %.3f (goal ≤ 1.15)",
                 median(bare), 1000 / median(bare), median(owned), 1000 / median(owned), ratio))
    var figures = ["overhead_ratio": ratio, "bare_ms_per_frame": median(bare), "owner_ms_per_frame": median(owned),
                   "frames": Double(frames), "width": Double(width), "height": Double(height)]
    // The pack conversion on the render thread against the CPU's, both feeding the Y4M sink.
    for (w, h) in [(640, 360), (1280, 720)] {
        var gpu: [(wall: Double, cpu: Double)] = [], cpu: [(wall: Double, cpu: Double)] = []
        print("pack conversion to I420 into y4msink at \(w)×\(h), \(frames / 2) frames, 3 rounds (GPU shader pass, then RGBA read + CPU):")
        for round in 1...3 {
            gpu.append(try glPackRun(frames: frames / 2, width: w, height: h, format: .i420))
            cpu.append(try glPackRun(frames: frames / 2, width: w, height: h, format: .rgba))
            print(String(format: "  round %d: GPU %.3f ms/frame (CPU %.3f ms), CPU conversion %.3f ms/frame (CPU %.3f ms)",
                         round, gpu.last!.wall, gpu.last!.cpu, cpu.last!.wall, cpu.last!.cpu))
        }
        let (gw, gc, cw, cc) = (median(gpu.map(\.wall)), median(gpu.map(\.cpu)), median(cpu.map(\.wall)), median(cpu.map(\.cpu)))
        print(String(format: "  median: GPU %.3f ms/frame, CPU %.3f ms/frame (×%.2f); CPU time %.3f against %.3f ms/frame (×%.2f)",
                     gw, cw, gw / cw, gc, cc, gc / cc))
        figures["pack_gpu_ms_\(w)"] = gw
        figures["pack_cpu_ms_\(w)"] = cw
        figures["pack_ratio_\(w)"] = gw / cw
        figures["pack_cpu_time_ratio_\(w)"] = gc / cc
    }
    printFigures(figures)
}
