import CGLFW
import DequeModule
import QueueGraphCore
import QueueGraphRender

/// Textures a stage renders frames into, used in turn: a frame carries a
/// token of its texture (`Frame.gpuImage`) until the ring comes round
/// again, so `count` must exceed the frames that can be in flight between
/// this stage and the last one that reads its texture (a stale token is
/// detected and the frame failed, never read wrong).
///
/// Threading: the owner thread.
final class TextureRing {
    private let count: Int
    private let withFramebuffers: Bool
    private var width = 0
    private var height = 0
    private var textures: [GLuint] = []
    private var framebuffers: [GLuint] = []
    private var next = 0

    init(count: Int, withFramebuffers: Bool) {
        precondition(count >= 2, "a texture ring needs at least 2 textures")
        (self.count, self.withFramebuffers) = (count, withFramebuffers)
    }

    /// The next texture (and its framebuffer), made or remade for this size.
    func take(_ owner: GLOwner, width: Int, height: Int) -> (texture: GLuint, framebuffer: GLuint) {
        prepare(owner, width: width, height: height)
        defer { next = (next + 1) % count }
        return (textures[next], withFramebuffers ? framebuffers[next] : 0)
    }

    /// The size its textures are made for (nil: none yet).
    var size: (width: Int, height: Int)? { textures.isEmpty ? nil : (width, height) }

    /// Makes (or remakes) the textures for this size.
    func prepare(_ owner: GLOwner, width: Int, height: Int) {
        if width != self.width || height != self.height {
            release(owner)
            (self.width, self.height) = (width, height)
            textures = (0..<count).map { _ in owner.makeTexture(width: width, height: height) }
            if withFramebuffers {
                framebuffers = textures.map { texture in
                    let framebuffer = owner.make(glGenFramebuffers)
                    glBindFramebuffer(GLenum(GL_FRAMEBUFFER), framebuffer)
                    glFramebufferTexture2D(GLenum(GL_FRAMEBUFFER), GLenum(GL_COLOR_ATTACHMENT0), GLenum(GL_TEXTURE_2D), texture, 0)
                    return framebuffer
                }
            }
        }
    }

    func release(_ owner: GLOwner) {
        for framebuffer in framebuffers { owner.delete(framebuffer, glDeleteFramebuffers) }
        textures.forEach(owner.deleteTexture)
        (framebuffers, textures, width, height) = ([], [], 0, 0)
    }
}

/// Frame-sized pixel buffers (unpack or pack) of a stage, made again when
/// the frame size changes.
///
/// Threading: the owner thread.
struct PixelBuffers {
    let target: Int32
    let usage: Int32
    let count: Int
    private(set) var names: [GLuint] = []
    private(set) var bytes = 0
    private var next = 0

    init(target: Int32, usage: Int32, count: Int) { (self.target, self.usage, self.count) = (target, usage, count) }

    /// Makes the buffers for `bytes` bytes each, when they are not so already.
    mutating func prepare(_ owner: GLOwner, bytes: Int) {
        guard bytes != self.bytes else { return }
        release(owner)
        names = (0..<count).map { _ in
            let name = owner.make(glGenBuffers)
            glBindBuffer(GLenum(target), name)
            glBufferData(GLenum(target), bytes, nil, GLenum(usage))
            return name
        }
        glBindBuffer(GLenum(target), 0)
        self.bytes = bytes
    }

    /// The next buffer in turn.
    mutating func take() -> GLuint {
        defer { next = (next + 1) % names.count }
        return names[next]
    }

    mutating func release(_ owner: GLOwner) {
        for name in names { owner.delete(name, glDeleteBuffers) }
        (names, bytes, next) = ([], 0, 0)
    }
}

/// A frame size the link into a stage says (negotiated when the graph was
/// made), so that the stage makes its textures and buffers before the graph
/// starts instead of on the first frame, whose deadline they would eat.
func negotiatedSize(_ arriving: [LinkFormat]) -> (width: Int, height: Int)? {
    guard case .video(let video)? = arriving.first, let width = video.width, let height = video.height else { return nil }
    return (width, height)
}

/// The processor of the queue that begins a GL owner thread: its
/// `ThreadLifecycle` starts and stops the `GLOwner` (context, mailbox), and
/// it uploads each CPU frame into a texture through a pixel-unpack buffer
/// (the copy into the mapped buffer also turns the rows into GL's
/// bottom-up order), then sends the frame on carrying the texture's token.
/// Late frames are dropped (`late`), never uploaded.
///
/// Threading: as `BufferProcessor`; the graph runs it on the owner thread.
public final class GLUpload: ThreadLifecycle, FailureReporting {
    public let owner: GLOwner
    public private(set) var failureReason: String?
    private let ring: TextureRing
    private var unpackBuffers = PixelBuffers(target: GL_PIXEL_UNPACK_BUFFER, usage: GL_STREAM_DRAW, count: 2)
    /// The frame size negotiated for the link in, if it said one.
    private var expected: (width: Int, height: Int)?

    /// `textures`: the ring of upload textures (see `TextureRing`).
    public init(owner: GLOwner, textures: Int = 4) {
        self.owner = owner
        ring = TextureRing(count: textures, withFramebuffers: false)
    }

    public var threadStartOrder: Int { -1 }   // the context first, before any GL processor of the group
    public func threadDidStart(wake: WakeEvent) throws {
        try owner.start(wake: wake)
        if let (width, height) = expected {
            ring.prepare(owner, width: width, height: height)
            unpackBuffers.prepare(owner, bytes: width * height * 4)
        }
    }
    public func serviceThread() -> Bool { owner.serve() }
    public var hasThreadWork: Bool { owner.mailbox.hasPending }
    public func threadWillEnd() {
        ring.release(owner)
        unpackBuffers.release(owner)
        owner.released("glupload")
        owner.stop()
    }

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        guard owner.isOwnerThread else { return .failed }
        return frameJob(buffer, context: context, failure: &failureReason) { frame in
            owner.frameStarted(frame.job.tick, at: context.now)
            let (texture, _) = ring.take(owner, width: frame.width, height: frame.height)
            try upload(frame, into: texture)
            frame.gpuImage = owner.publish(texture, width: frame.width, height: frame.height)
            return buffer
        }
    }

    private func upload(_ frame: Frame, into texture: GLuint) throws {
        let bytes = frame.pixelCount * 4
        unpackBuffers.prepare(owner, bytes: bytes)
        let target = GLenum(GL_PIXEL_UNPACK_BUFFER)
        glBindBuffer(target, unpackBuffers.take())
        defer { glBindBuffer(target, 0) }
        guard let mapped = glMapBufferRange(target, 0, bytes, GLbitfield(GL_MAP_WRITE_BIT | GL_MAP_INVALIDATE_BUFFER_BIT)) else {
            throw GLError("frame \(frame.job.tick): cannot map the upload buffer (GL error 0x\(String(glGetError(), radix: 16)))")
        }
        copyFlipped(from: frame.pixels, to: mapped, rowBytes: frame.width * 4, height: frame.height)
        glUnmapBuffer(target)
        glBindTexture(GLenum(GL_TEXTURE_2D), texture)
        glTexSubImage2D(GLenum(GL_TEXTURE_2D), 0, 0, 0, GLsizei(frame.width), GLsizei(frame.height),
                        GLenum(GL_RGBA), GLenum(GL_UNSIGNED_BYTE), nil)
    }
}

/// A fragment-shader pass (shadertoy-style): draws the GLSL file's
/// `mainImage(out vec4 fragColor, in vec2 fragCoord)` over a frame-sized
/// target with the uniforms `iResolution`, `iTime` (the frame's media time,
/// seconds), `iTimeDelta`, `iFrame` (frames drawn since the start or the
/// last reset), `iChannel0` (the frame's image) and `iChannel1` (the image
/// other threads upload through the mailbox; black when none). The frame
/// goes on carrying the output texture's token. The shader is compiled when
/// the thread starts: a compile error refuses the graph's start with the
/// compiler's log as `file:line:column: message`.
///
/// Render-local state, as Shadertoy's buffers have it (seed 002):
/// - with `feedback`, `iChannel2` is the pass's own previous output (a
///   trail, an echo); transparent black on the first frame and after a
///   `shaderFeedback` reset;
/// - with `history` N, `iHistory[0…N-1]` are the last N input frames,
///   newest first (copied as they pass); transparent black until there are
///   that many and after a `temporalHistory` reset.
///
/// Threading: as `BufferProcessor`; the owner thread.
public final class GLShaderPass: ThreadLifecycle, FailureReporting {
    public let path: String
    public let feedback: Bool
    public let history: Int
    public private(set) var failureReason: String?
    private let ring: TextureRing
    /// The last output, while it is the pass's previous image (`feedback`).
    private var previous: GLuint?
    /// Copies of the last input frames, newest first, and the textures they live in.
    private let historyRing: TextureRing
    private var historyFrames: [GLuint] = []
    /// Transparent black, for render-local state not there yet.
    private var black: GLuint = 0
    private var owner: GLOwner?
    private var program: ShaderProgram?
    private var vertexArray: GLuint = 0
    private var framesDrawn: Int32 = 0
    private var lastTime: Double?
    /// The frame size negotiated for the link in, if it said one.
    private var expected: (width: Int, height: Int)?

    /// `textures`: the ring of output textures (see `TextureRing`);
    /// `feedback` and `history`: the render-local state it keeps (above).
    public init(path: String, textures: Int = 4, feedback: Bool = false, history: Int = 0) {
        precondition(history >= 0 && history <= Self.maxHistory, "history: 0…\(Self.maxHistory) frames")
        self.path = path
        (self.feedback, self.history) = (feedback, history)
        ring = TextureRing(count: textures, withFramebuffers: true)
        historyRing = TextureRing(count: max(2, history), withFramebuffers: true)
    }

    /// The most input frames a pass may keep.
    public static let maxHistory = 8

    public func threadDidStart(wake: WakeEvent) throws {
        let owner = try GLOwner.forStage("glshader '\(path)'")
        let program = try ShaderProgram(fragmentFile: path, history: history, owner: owner)
        vertexArray = owner.make(glGenVertexArrays)
        black = owner.makeTexture(width: 1, height: 1)
        var clear: UInt32 = 0
        glTexSubImage2D(GLenum(GL_TEXTURE_2D), 0, 0, 0, 1, 1, GLenum(GL_RGBA), GLenum(GL_UNSIGNED_BYTE), &clear)
        warmUp(program, owner: owner)
        if let (width, height) = expected { ring.prepare(owner, width: width, height: height) }
        self.program = program
        self.owner = owner
        owner.register(self)
    }

    /// Draws the pass once into a scratch target, so that the driver builds
    /// its code now, before the graph starts: llvmpipe compiles a shader at
    /// its first draw, which takes hundreds of milliseconds, and the first
    /// frames' deadlines would pay for it.
    private func warmUp(_ program: ShaderProgram, owner: GLOwner) {
        let texture = owner.makeTexture(width: 16, height: 16)
        let framebuffer = owner.make(glGenFramebuffers)
        glBindFramebuffer(GLenum(GL_FRAMEBUFFER), framebuffer)
        glFramebufferTexture2D(GLenum(GL_FRAMEBUFFER), GLenum(GL_COLOR_ATTACHMENT0), GLenum(GL_TEXTURE_2D), texture, 0)
        glViewport(0, 0, 16, 16)
        glUseProgram(program.name)
        program.set(resolution: (16, 16), time: 0, delta: 0, frame: 0)
        for unit in 0..<(ShaderProgram.firstHistoryUnit + Int32(history)) {
            glActiveTexture(GLenum(GL_TEXTURE0 + unit))
            glBindTexture(GLenum(GL_TEXTURE_2D), black)
        }
        glBindVertexArray(vertexArray)
        glDrawArrays(GLenum(GL_TRIANGLES), 0, 3)
        glFinish()
        glActiveTexture(GLenum(GL_TEXTURE0))
        glBindFramebuffer(GLenum(GL_FRAMEBUFFER), 0)
        owner.delete(framebuffer, glDeleteFramebuffers)
        owner.deleteTexture(texture)
    }

    public func threadWillEnd() {
        guard let owner else { return }
        ring.release(owner)
        historyRing.release(owner)
        owner.deleteTexture(black)
        (previous, historyFrames) = (nil, [])
        program?.delete(owner)
        owner.delete(vertexArray, glDeleteVertexArrays)
        owner.unregister(self)
        owner.released("glshader")
        self.owner = nil
    }

    func reset(_ scope: ResetScope) throws {
        framesDrawn = 0
        lastTime = nil
        if scope >= .temporalHistory { historyFrames = [] }
        if scope >= .shaderFeedback { previous = nil }
        guard scope >= .shaders, let owner else { return }
        let fresh = try ShaderProgram(fragmentFile: path, history: history, owner: owner)   // on failure the old program stays
        warmUp(fresh, owner: owner)
        program?.delete(owner)
        program = fresh
    }

    /// Copies the input frame into the history (newest first; the oldest goes).
    private func keep(_ input: GLuint, width: Int, height: Int) {
        guard let owner else { return }
        let (copy, framebuffer) = historyRing.take(owner, width: width, height: height)
        owner.bindForReading(input)
        glBindFramebuffer(GLenum(GL_DRAW_FRAMEBUFFER), framebuffer)
        glBlitFramebuffer(0, 0, GLint(width), GLint(height), 0, 0, GLint(width), GLint(height), GLbitfield(GL_COLOR_BUFFER_BIT), GLenum(GL_NEAREST))
        glBindFramebuffer(GLenum(GL_FRAMEBUFFER), 0)
        historyFrames.removeAll { $0 == copy }
        historyFrames.insert(copy, at: 0)
        if historyFrames.count > history { historyFrames.removeLast() }
    }

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        guard let owner, let program, owner.isOwnerThread else { return .failed }
        return frameJob(buffer, context: context, failure: &failureReason) { frame in
            guard let input = owner.texture(of: frame.gpuImage) else { throw GLError("frame \(frame.job.tick) has no live texture: raise the upstream stage's 'textures'") }
            if ring.size.map({ $0 != (frame.width, frame.height) }) ?? false { (previous, historyFrames) = (nil, []) }   // a new size: the old images do not fit
            let (texture, framebuffer) = ring.take(owner, width: frame.width, height: frame.height)
            glBindFramebuffer(GLenum(GL_FRAMEBUFFER), framebuffer)
            glViewport(0, 0, GLsizei(frame.width), GLsizei(frame.height))
            glUseProgram(program.name)
            let time = Double(frame.job.mediaTime) / 1e9
            program.set(resolution: (Float(frame.width), Float(frame.height)), time: Float(time),
                        delta: Float(lastTime.map { time - $0 } ?? 0), frame: framesDrawn)
            glActiveTexture(GLenum(GL_TEXTURE0))
            glBindTexture(GLenum(GL_TEXTURE_2D), input)
            glActiveTexture(GLenum(GL_TEXTURE1))
            glBindTexture(GLenum(GL_TEXTURE_2D), owner.inputTexture)
            glActiveTexture(GLenum(GL_TEXTURE2))
            glBindTexture(GLenum(GL_TEXTURE_2D), feedback ? previous ?? black : black)
            for i in 0..<history {
                glActiveTexture(GLenum(GL_TEXTURE0 + ShaderProgram.firstHistoryUnit + Int32(i)))
                glBindTexture(GLenum(GL_TEXTURE_2D), i < historyFrames.count ? historyFrames[i] : black)
            }
            glBindVertexArray(vertexArray)
            glDrawArrays(GLenum(GL_TRIANGLES), 0, 3)
            glActiveTexture(GLenum(GL_TEXTURE0))
            if history > 0 { keep(input, width: frame.width, height: frame.height) }
            if feedback { previous = texture }
            framesDrawn &+= 1
            lastTime = time
            frame.gpuImage = owner.publish(texture, width: frame.width, height: frame.height)
            return buffer
        }
    }
}

/// Reads each frame's image back into the frame's own pixels (so its queue
/// needs `buffers: reuse`), asynchronously, as RGBA or, converted on the
/// GL thread (`PackConversion`), as I420 or NV12 planes: the read goes into a
/// pixel-pack buffer with a fence, and the frame goes on once the fence has
/// signalled. The fences are checked without waiting right after the read
/// and between the thread's invocations (`serviceThread`: the thread does
/// not sleep while a read is pending), and waited for when more than
/// `depth` frames are pending, when the oldest is within a frame period of
/// its deadline, and at end of stream. The frame then carries no GPU token
/// any more (its pixels are the image).
///
/// Threading: as `BufferProcessor`; the owner thread. Between invocations
/// it finishes reads through its queue's `ProcessContext` (the same thread,
/// never during another call).
public final class GLReadback: ThreadLifecycle {
    public let depth: Int
    /// What the frames leave as: `.rgba`, or `.i420` / `.nv12` (converted by a shader pass).
    public let format: PixelFormat
    private var owner: GLOwner?
    private var pack: PackConversion?
    private var packBuffers: PixelBuffers
    /// The frame size negotiated for the link in, if it said one.
    private var expected: (width: Int, height: Int)?
    private var pending = Deque<(buffer: Buffer, packBuffer: GLuint, fence: GLsync)>()
    /// The queue's context, for finishing reads between invocations.
    private unowned(unsafe) var context: ProcessContext?

    public init(depth: Int = 1, format: PixelFormat = .rgba) {
        precondition(depth >= 0, "depth must be 0 or more")
        precondition(format != .bgra, "a read-back gives RGBA, I420 or NV12")
        self.depth = depth
        self.format = format
        packBuffers = PixelBuffers(target: GL_PIXEL_PACK_BUFFER, usage: GL_STREAM_READ, count: depth + 1)
    }

    /// Bytes one frame's read brings back.
    private func readBytes(width: Int, height: Int) -> Int {
        format == .rgba ? width * height * 4 : PackConversion.planeBytes(width: width, height: height, format: format)
    }

    public func threadDidStart(wake: WakeEvent) throws {
        let owner = try GLOwner.forStage("glreadback")
        if format != .rgba { pack = try PackConversion(format: format, owner: owner) }
        if let (width, height) = expected {
            pack?.prepare(owner, width: width, height: height)
            packBuffers.prepare(owner, bytes: readBytes(width: width, height: height))
        }
        self.owner = owner
    }

    public func threadWillEnd() {
        guard let owner else { return }
        for entry in pending { glDeleteSync(entry.fence) }   // their buffers are released at end of stream
        pack?.delete(owner)
        pack = nil
        packBuffers.release(owner)
        owner.released("glreadback")
        self.owner = nil
    }

    /// A read is pending and its frame could go on (there is room downstream).
    public var hasThreadWork: Bool { !pending.isEmpty && (context.map { $0.outPadCount == 0 || $0.hasRoom(0) } ?? false) }
    /// Its queue ends only once every pending frame has gone on.
    public var holdsBuffersToSend: Bool { !pending.isEmpty }
    public func serviceThread() -> Bool {
        guard let context, hasThreadWork else { return false }
        let before = pending.count
        complete(context: context, waitForAll: false)
        if pending.isEmpty { context.reconsider() }   // it may end now
        return pending.count < before
    }

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        guard let owner, owner.isOwnerThread, let frame = Frame(buffer) else { return .failed }
        self.context = context
        if missed(frame.job, at: context.now, context: context) { return .late }
        guard let texture = owner.texture(of: frame.gpuImage) else { return .failed }
        let bytes = readBytes(width: frame.width, height: frame.height)
        if bytes != packBuffers.bytes {
            complete(context: context, waitForAll: true)
            packBuffers.prepare(owner, bytes: bytes)
        }
        let packBuffer = packBuffers.take()
        glBindBuffer(GLenum(GL_PIXEL_PACK_BUFFER), packBuffer)
        if let pack {
            pack.prepare(owner, width: frame.width, height: frame.height)
            pack.convert(texture)
        } else {
            owner.bindForReading(texture)
            glReadPixels(0, 0, GLsizei(frame.width), GLsizei(frame.height), GLenum(GL_RGBA), GLenum(GL_UNSIGNED_BYTE), nil)
        }
        glBindBuffer(GLenum(GL_PIXEL_PACK_BUFFER), 0)
        pending.append((buffer, packBuffer, glFenceSync(GLenum(GL_SYNC_GPU_COMMANDS_COMPLETE), 0)!))
        complete(context: context, waitForAll: false)
        return .ok
    }

    /// Sends on the pending frames whose read has finished, oldest first,
    /// while there is room downstream (unless it must finish them all).
    private func complete(context: ProcessContext, waitForAll: Bool) {
        guard let owner else { return }
        while let (buffer, packBuffer, fence) = pending.first {
            if !waitForAll && context.outPadCount > 0 && !context.hasRoom(0) { return }   // woken when room is made
            let frame = Frame(buffer)!
            let now = context.now
            let mustWait = waitForAll || pending.count > depth || frame.job.deadline <= now &+ UInt64(frame.job.rate.period)
            let status = glClientWaitSync(fence, GLbitfield(GL_SYNC_FLUSH_COMMANDS_BIT), mustWait ? 1_000_000_000 : 0)
            let signalled = status == GL_ALREADY_SIGNALED || status == GL_CONDITION_SATISFIED
            if !signalled && !mustWait { return }
            pending.removeFirst()
            glDeleteSync(fence)
            if !signalled {   // a read that did not finish within a second
                context.dropBuffer(buffer, reason: .failed)
                continue
            }
            if missed(frame.job, at: context.now, context: context) {
                context.dropBuffer(buffer, reason: .late)
                continue
            }
            glBindBuffer(GLenum(GL_PIXEL_PACK_BUFFER), packBuffer)
            let bytes = readBytes(width: frame.width, height: frame.height)
            let mapped = glMapBufferRange(GLenum(GL_PIXEL_PACK_BUFFER), 0, bytes, GLbitfield(GL_MAP_READ_BIT))
            if let mapped {
                if format == .rgba {
                    copyFlipped(from: mapped, to: frame.pixels, rowBytes: frame.width * 4, height: frame.height)
                } else {   // the frame becomes its planes, in the layout the pack conversion read them in
                    let (pts, duration, timeBase) = (frame.pts, frame.duration, frame.timeBase)
                    let planes = Frame.make(in: buffer, width: frame.width, height: frame.height, format: format, job: frame.job)
                    (planes.pts, planes.duration, planes.timeBase) = (pts, duration, timeBase)
                    UnsafeMutableRawPointer(planes.plane(0).bytes).copyMemory(from: mapped, byteCount: bytes)
                }
                glUnmapBuffer(GLenum(GL_PIXEL_PACK_BUFFER))
            }
            glBindBuffer(GLenum(GL_PIXEL_PACK_BUFFER), 0)
            guard mapped != nil else {   // never pass on pixels that were not read
                context.dropBuffer(buffer, reason: .failed)
                continue
            }
            frame.gpuImage = 0
            owner.frameFinished(frame.job.tick, at: context.now)
            passOn(buffer, context: context)
        }
    }

    public func endOfStream(context: ProcessContext) {
        if let owner, owner.isOwnerThread {
            complete(context: context, waitForAll: true)
        }
        // Off the owner thread (an abandoning stop, after the context is gone): release what is left.
        while let entry = pending.popFirst() { context.dropBuffer(entry.buffer, reason: .closed) }
    }
}

/// Shows each frame in the owner's preview window, best effort: it posts a
/// `present` to the owner's mailbox (a pending one is replaced and counted
/// as a preview skip) and sends the frame straight on; the owner presents
/// between frames. Without a window (headless) a present shows nothing.
///
/// Threading: as `BufferProcessor`; the owner thread.
public final class GLPresent: ThreadLifecycle {
    private var owner: GLOwner?

    public init() {}

    public func threadDidStart(wake: WakeEvent) throws { owner = try GLOwner.forStage("glpresent") }
    public func threadWillEnd() { owner = nil }

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        guard let owner, let frame = Frame(buffer) else { return .failed }
        owner.mailbox.post(.present(image: frame.gpuImage))
        passOn(buffer, context: context)
        return .ok
    }
}

/// Writes a PNG of every `every`-th frame (by output tick) through the
/// owner's mailbox (latest value wins: a screenshot still pending when the
/// next is due is replaced), and sends the frame straight on. `path` may
/// hold `{tick}`, replaced by the frame's tick.
///
/// Threading: as `BufferProcessor`; the owner thread.
public final class GLScreenshot: ThreadLifecycle {
    public let path: String
    public let every: Int
    private var owner: GLOwner?
    /// The last screenshot request posted (its outcome tells success or failure).
    public private(set) var lastRequest: RenderRequest?

    public init(path: String, every: Int = 1) {
        precondition(every > 0, "every must be positive")
        (self.path, self.every) = (path, every)
    }

    public func threadDidStart(wake: WakeEvent) throws { owner = try GLOwner.forStage("glscreenshot") }
    public func threadWillEnd() { owner = nil }

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        guard let owner, let frame = Frame(buffer) else { return .failed }
        if frame.job.tick % Int64(every) == 0 {
            let file = path.replacing("{tick}", with: String(frame.job.tick))
            lastRequest = owner.mailbox.post(.screenshot(path: file, image: frame.gpuImage))
        }
        passOn(buffer, context: context)
        return .ok
    }
}

extension GLUpload: FormatAware {
    public func negotiate(arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat] {
        defer { expected = negotiatedSize(arriving) }
        return try rgbaFrames(arriving)
    }
}
extension GLShaderPass: FormatAware {
    public func negotiate(arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat] {
        defer { expected = negotiatedSize(arriving) }
        return try rgbaFrames(arriving)
    }
}
extension GLReadback: FormatAware {
    public func negotiate(arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat] {
        defer { expected = negotiatedSize(arriving) }
        guard case .video(var video) = try rgbaFrames(arriving)[0] else { return [.video(VideoFormat(format))] }
        video.pixelFormat = format
        return [.video(video)]
    }
}
extension GLPresent: FormatAware {
    public func negotiate(arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat] { try rgbaFrames(arriving) }
}
extension GLScreenshot: FormatAware {
    public func negotiate(arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat] { try rgbaFrames(arriving) }
}
