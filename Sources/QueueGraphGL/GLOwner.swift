import CGLFW
import CQueueGraphTrace
import Dispatch
import QueueGraphCore
import QueueGraphRender
#if canImport(Glibc)
import Glibc
#endif

/// The one thread that owns an OpenGL context (the seed's render thread).
///
/// A `thread` queue whose processor is a `GLUpload` begins the owner
/// thread: when the thread starts, the owner makes an OpenGL 3.3 core
/// context current on it (a GLFW window, or EGL surfaceless without X) and
/// keeps it for the thread's whole life; the GL processors of the same
/// thread group (`GLShaderPass`, `GLReadback`, `GLPresent`, `GLScreenshot`)
/// run on it. Other threads never touch GL: they post `RenderCommand`s to
/// `mailbox` (an input image to upload, a preview present, a screenshot, an
/// output read-back, a reset), which the owner serves between invocations.
/// As the thread ends it serves what is left, the processors release their
/// GL objects, and only then are the context and window destroyed.
///
/// Threading: `mailbox`, `statistics` and the `request…` methods from any
/// thread. `withContext` only on the owner thread: a call from another
/// thread is refused (it throws), counted and reported, never run.
public final class GLOwner: @unchecked Sendable {
    /// How the owner makes its context.
    ///
    /// Threading: a value; any thread.
    public struct Options: Sendable {
        public var backend: GLBackend
        /// Show a preview window when there is a display (GLFW); hidden otherwise.
        public var preview: Bool
        public var windowWidth: Int
        public var windowHeight: Int
        public var title: String
        /// Timeout of a request posted without one.
        public var requestTimeoutNanoseconds: UInt64

        public init(backend: GLBackend = .auto, preview: Bool = false, windowWidth: Int = 640, windowHeight: Int = 360,
                    title: String = "QueueGraph", requestTimeoutNanoseconds: UInt64 = 1_000_000_000) {
            (self.backend, self.preview, self.windowWidth, self.windowHeight, self.title) = (backend, preview, windowWidth, windowHeight, title)
            self.requestTimeoutNanoseconds = requestTimeoutNanoseconds
        }
    }

    public let options: Options
    public let mailbox: RenderMailbox
    /// What other threads read.
    private let stats = Locked(GLOwnerStatistics())
    private let wakeEvent = Locked<WakeEvent?>(nil)

    /// A texture holding a frame's image: the stamp its token carries, and its size.
    private struct Image {
        var stamp: UInt32
        var width: Int
        var height: Int
    }

    // Owner-thread state.
    private(set) var context: GLContext?
    private var passes: [GLShaderPass] = []
    private var images: [GLuint: Image] = [:]
    /// The texture published last (what `present`, `screenshot` and `output` show by default), or 0.
    private var latest: GLuint = 0
    private var nextStamp: UInt32 = 1
    /// `iChannel1` of every shader pass: the image uploaded through the mailbox, 1×1 black until then.
    private(set) var inputTexture: GLuint = 0
    private var readFramebuffer: GLuint = 0
    /// When the frames in flight began their upload, by tick modulo 64 (for the frame-duration telemetry).
    private var frameStarts = [(tick: Int64, at: UInt64)](repeating: (-1, 0), count: 64)
    /// GL objects made and not yet deleted (checked before the context goes).
    private var liveObjects = 0

    /// Names the owner in the `gl_*` trace events (1, 2, … per process).
    public let traceID: UInt32
    private static let nextTraceID = Locked<UInt32>(1)

    public init(_ options: Options = Options()) {
        self.options = options
        traceID = Self.nextTraceID.withLock { id in defer { id += 1 }; return id }
        let wakeEvent = self.wakeEvent
        mailbox = RenderMailbox(defaultTimeoutNanoseconds: options.requestTimeoutNanoseconds, traceID: traceID) {
            wakeEvent.withLock { $0 }?.notify()
        }
    }

    // MARK: Requests (any thread)

    /// Uploads an image from any thread: it replaces the pending one, if any,
    /// and becomes the shader passes' `iChannel1`.
    @discardableResult
    public func submitInput(_ image: CPUImage, timeoutNanoseconds: UInt64? = nil) -> RenderRequest {
        mailbox.post(.upload(image), timeoutNanoseconds: timeoutNanoseconds)
    }

    /// Asks for the latest rendered image, read back (FIFO; never coalesced).
    public func requestOutputFrame(timeoutNanoseconds: UInt64? = nil) -> RenderRequest {
        mailbox.post(.output, timeoutNanoseconds: timeoutNanoseconds)
    }

    /// Asks for a PNG of the latest rendered image.
    public func requestScreenshot(path: String, timeoutNanoseconds: UInt64? = nil) -> RenderRequest {
        mailbox.post(.screenshot(path: path, image: nil), timeoutNanoseconds: timeoutNanoseconds)
    }

    /// Asks for a reset; pending ones merge to the strongest scope.
    @discardableResult
    public func requestReset(_ scope: ResetScope, timeoutNanoseconds: UInt64? = nil) -> RenderRequest {
        mailbox.post(.reset(scope), timeoutNanoseconds: timeoutNanoseconds)
    }

    public func statistics() -> GLOwnerStatistics {
        var copy = stats.withLock { $0 }
        copy.mailbox = mailbox.statistics()
        return copy
    }

    // MARK: Ownership

    /// Whether the calling thread is the owner thread with its context current.
    public var isOwnerThread: Bool { Self.onThisThread === self }

    /// Runs GL work on the owner thread (from a processor of its group). From
    /// any other thread, or when the context is gone, the call is refused:
    /// it throws, is counted as `wrongThreadCalls` and reported on standard
    /// error, and `body` never runs.
    public func withContext<R>(_ operation: String = #function, _ body: (GLSession) throws -> R) throws -> R {
        guard isOwnerThread else {
            stats.withLock { $0.wrongThreadCalls += 1 }
            let message = "\(operation): GL work belongs to the GL owner thread (\(options.title)); refused on another thread"
            qgLog(message)
            throw GLError(message)
        }
        return try body(GLSession(owner: self))
    }

    // MARK: Owner thread life (called by GLUpload's ThreadLifecycle)

    /// The owner of the calling thread, set while an owner's context is current on it.
    static var onThisThread: GLOwner? {
        pthread_getspecific(threadKey).map { Unmanaged<GLOwner>.fromOpaque($0).takeUnretainedValue() }
    }

    private static let threadKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    /// The owner for a GL processor starting on this thread, or an error saying how to fix the graph.
    static func forStage(_ name: String) throws -> GLOwner {
        guard let owner = onThisThread else {
            throw GLError("\(name) must run on a GL owner thread: put it after a 'threading: thread' queue whose processor is glupload, with 'threading: none'")
        }
        return owner
    }

    func start(wake: WakeEvent) throws {
        let context = try GLContext.make(options.backend, width: options.windowWidth, height: options.windowHeight,
                                         title: options.title, visible: options.preview)
        self.context = context
        stats.withLock { s in
            s.backend = context.backend
            s.renderer = context.renderer
            s.previewWindow = context.visible
        }
        wakeEvent.withLock { $0 = wake }
        pthread_setspecific(Self.threadKey, Unmanaged.passUnretained(self).toOpaque())
        mailbox.bindOwnerThread()
        glPixelStorei(GLenum(GL_PACK_ALIGNMENT), 4)
        glPixelStorei(GLenum(GL_UNPACK_ALIGNMENT), 4)
        readFramebuffer = make(glGenFramebuffers)
        inputTexture = makeTexture(width: 1, height: 1)
        setInput(Self.black)
    }

    /// Serves the mailbox; whether there was anything.
    func serve() -> Bool {
        guard mailbox.hasPending else { return false }
        let requests = mailbox.take()
        requests.forEach(run)
        return !requests.isEmpty
    }

    /// Serves what is left, refuses later requests, checks every GL object
    /// is gone and destroys the context. The stages released theirs first
    /// (their `threadWillEnd` runs before the owner's).
    func stop() {
        mailbox.close().forEach(run)
        screenshotWriter.sync {}   // every screenshot written and its request finished before the context goes
        deleteTexture(inputTexture)
        delete(readFramebuffer, glDeleteFramebuffers)
        let leaked = liveObjects
        if leaked != 0 { qgLog("GL owner '\(options.title)': \(leaked) GL objects still alive as the context goes") }
        context?.destroy()
        context = nil
        pthread_setspecific(Self.threadKey, nil)
        stats.withLock { s in
            s.objectsAliveAtContextDestroy = leaked
            s.shutdown.append("context destroyed")
        }
    }

    /// A shader pass to reset with the others (`reset` requests).
    func register(_ pass: GLShaderPass) { passes.append(pass) }
    func unregister(_ pass: GLShaderPass) { passes.removeAll { $0 === pass } }

    /// Records a stage's release in the shutdown order.
    func released(_ name: String) { stats.withLock { $0.shutdown.append("\(name) released") } }

    // MARK: Images

    /// Records that `texture` now holds a frame's image; returns the token
    /// the frame carries (`Frame.gpuImage`).
    func publish(_ texture: GLuint, width: Int, height: Int) -> UInt64 {
        let stamp = nextStamp
        nextStamp = nextStamp == .max ? 1 : nextStamp + 1
        images[texture] = Image(stamp: stamp, width: width, height: height)
        latest = texture
        return UInt64(stamp) << 32 | UInt64(texture)
    }

    /// The texture a token names, or nil when it was overwritten since (the
    /// ring that holds it wrapped) or deleted; 0 names none.
    func texture(of token: UInt64) -> GLuint? {
        let texture = GLuint(truncatingIfNeeded: token)
        return images[texture]?.stamp == UInt32(truncatingIfNeeded: token >> 32) ? texture : nil
    }

    /// A frame's upload began (for the frame-duration telemetry).
    func frameStarted(_ tick: Int64, at now: UInt64) {
        frameStarts[Int(tick & 63)] = (tick, now)
    }

    /// A frame's read-back ended.
    func frameFinished(_ tick: Int64, at now: UInt64) {
        let start = frameStarts[Int(tick & 63)]
        guard start.tick == tick else { return }   // more than 64 frames behind: not timed
        let nanoseconds = now &- start.at
        if qg_trace_on(QG_TP_GL_FRAME) != 0 { qg_tp_gl_frame(traceID, tick, nanoseconds) }
        stats.withLock { s in
            s.frameDurationMax = max(s.frameDurationMax, nanoseconds)
            s.frameDurationSum &+= nanoseconds
            s.frames += 1
        }
    }

    // MARK: Commands

    /// Runs a request and finishes it. A screenshot is read back here and
    /// then encoded and written on `screenshotWriter`, off the owner thread
    /// (a PNG takes several milliseconds: frames must not wait for it).
    private func run(_ request: RenderRequest) {
        guard case .screenshot(let path, let token) = request.command, context != nil else {
            mailbox.complete(request, execute(request.command))
            return
        }
        let image: CPUImage
        do { image = read(try source(token)) } catch {
            mailbox.complete(request, .failure(error))
            return
        }
        let mailbox = mailbox
        screenshotWriter.async {
            do {
                try image.pixels.withUnsafeBufferPointer { try writePNG(path: path, pixels: $0.baseAddress!, width: image.width, height: image.height) }
                mailbox.complete(request, .success(nil))
            } catch {
                mailbox.complete(request, .failure(.error("\(error)")))
            }
        }
    }

    private let screenshotWriter = DispatchQueue(label: "qgraph.gl.screenshots")

    private func execute(_ command: RenderCommand) -> Result<CPUImage?, RenderFailure> {
        guard context != nil else { return .failure(.stopped) }
        do {
            switch command {
            case .upload(let image):
                setInput(image)
                return .success(nil)
            case .present(let token):
                let image = try source(token)
                guard let context, let size = context.framebufferSize else { return .success(nil) }   // headless: nothing to show
                bindForReading(image.texture)
                glBindFramebuffer(GLenum(GL_DRAW_FRAMEBUFFER), 0)
                glBlitFramebuffer(0, 0, GLint(image.width), GLint(image.height), 0, 0, GLint(size.width), GLint(size.height),
                                  GLbitfield(GL_COLOR_BUFFER_BIT), GLenum(GL_LINEAR))
                let open = context.swap()
                stats.withLock { s in
                    s.presented += 1
                    if !open { s.windowClosed = true }
                }
                return .success(nil)
            case .screenshot:
                preconditionFailure("screenshots run through run(_:)")
            case .output:
                return .success(try read(source(nil)))
            case .reset(let scope):
                setInput(Self.black)
                var errors: [String] = []
                for pass in passes {
                    do { try pass.reset(scope) } catch { errors.append("\(error)") }
                }
                return errors.isEmpty ? .success(nil) : .failure(.error(errors.joined(separator: "\n")))
            }
        } catch {
            return .failure(error)
        }
    }

    /// The image a command names: the token's texture while it holds that
    /// frame, else the latest rendered one.
    private func source(_ token: UInt64?) throws(RenderFailure) -> (texture: GLuint, width: Int, height: Int) {
        guard let image = image(of: token.flatMap(texture(of:)) ?? latest) else { throw .error("no rendered image yet") }
        return image
    }

    /// A texture holding a frame's image, with its size; nil for any other.
    func image(of texture: GLuint) -> (texture: GLuint, width: Int, height: Int)? {
        images[texture].map { (texture, $0.width, $0.height) }
    }

    /// `iChannel1` before any input and after a reset.
    private static let black = CPUImage(width: 1, height: 1, pixels: [0])

    /// Makes `iChannel1` this image (rows flipped into GL's bottom-up order).
    private func setInput(_ image: CPUImage) {
        glBindTexture(GLenum(GL_TEXTURE_2D), inputTexture)
        let rows = flipped(image.pixels.withUnsafeBytes { $0.baseAddress! }, width: image.width, height: image.height)
        glTexImage2D(GLenum(GL_TEXTURE_2D), 0, GL_RGBA8, GLsizei(image.width), GLsizei(image.height), 0,
                     GLenum(GL_RGBA), GLenum(GL_UNSIGNED_BYTE), rows)
    }

    /// Attaches `texture` to the owner's read framebuffer and binds it for reading.
    func bindForReading(_ texture: GLuint) {
        glBindFramebuffer(GLenum(GL_READ_FRAMEBUFFER), readFramebuffer)
        glFramebufferTexture2D(GLenum(GL_READ_FRAMEBUFFER), GLenum(GL_COLOR_ATTACHMENT0), GLenum(GL_TEXTURE_2D), texture, 0)
    }

    /// Reads a texture back into CPU memory, top row first.
    func read(_ image: (texture: GLuint, width: Int, height: Int)) -> CPUImage {
        bindForReading(image.texture)
        let (w, h) = (image.width, image.height)
        var pixels = [UInt32](repeating: 0, count: w * h)
        glReadPixels(0, 0, GLsizei(w), GLsizei(h), GLenum(GL_RGBA), GLenum(GL_UNSIGNED_BYTE), &pixels)
        pixels.withUnsafeMutableBufferPointer { p in   // GL's bottom row first → top row first, in place
            for y in 0..<h / 2 { for x in 0..<w { p.swapAt(y * w + x, (h - 1 - y) * w + x) } }
        }
        return CPUImage(width: w, height: h, pixels: pixels)
    }

    // MARK: GL objects (counted, so that shutdown can check none is left)

    func makeTexture(width: Int, height: Int) -> GLuint {
        let texture = make(glGenTextures)
        glBindTexture(GLenum(GL_TEXTURE_2D), texture)
        glTexImage2D(GLenum(GL_TEXTURE_2D), 0, GL_RGBA8, GLsizei(width), GLsizei(height), 0, GLenum(GL_RGBA), GLenum(GL_UNSIGNED_BYTE), nil)
        for (name, value) in [(GL_TEXTURE_MIN_FILTER, GL_LINEAR), (GL_TEXTURE_MAG_FILTER, GL_LINEAR),
                              (GL_TEXTURE_WRAP_S, GL_CLAMP_TO_EDGE), (GL_TEXTURE_WRAP_T, GL_CLAMP_TO_EDGE)] {
            glTexParameteri(GLenum(GL_TEXTURE_2D), GLenum(name), value)
        }
        return texture
    }

    func deleteTexture(_ texture: GLuint) {
        images[texture] = nil
        if latest == texture { latest = 0 }
        delete(texture, glDeleteTextures)
    }

    /// A new object name from a `glGen…` function (framebuffers, buffers, vertex arrays).
    func make(_ generate: (GLsizei, UnsafeMutablePointer<GLuint>?) -> Void) -> GLuint {
        var name: GLuint = 0
        generate(1, &name)
        liveObjects += 1
        return name
    }

    /// Deletes an object through its `glDelete…` function.
    func delete(_ name: GLuint, _ delete: (GLsizei, UnsafePointer<GLuint>?) -> Void) {
        var name = name
        delete(1, &name)
        liveObjects -= 1
    }

    /// Counts an object made or deleted another way (a program).
    func made() { liveObjects += 1 }
    func deleted() { liveObjects -= 1 }
}

/// What the owner thread's GL work has done.
///
/// Threading: a value; any thread.
public struct GLOwnerStatistics: Sendable, Equatable {
    public var backend: GLBackend = .auto
    public var renderer = ""
    public var previewWindow = false
    /// Frames read back, and their time on the owner thread from the start of
    /// their upload to the end of their read-back: sum and maximum, nanoseconds.
    public var frames = 0
    public var frameDurationSum: UInt64 = 0
    public var frameDurationMax: UInt64 = 0
    /// Presents shown in the preview window; whether the user closed it.
    public var presented = 0
    public var windowClosed = false
    /// GL calls refused because they came from another thread.
    public var wrongThreadCalls = 0
    /// GL objects still alive when the context was destroyed (0 unless a stage leaked one).
    public var objectsAliveAtContextDestroy = 0
    /// The shutdown steps, in order ("glshader released", …, "context destroyed").
    public var shutdown: [String] = []
    public var mailbox = MailboxStatistics(byKind: [], depth: 0, maxDepth: 0, wakeReasons: [])
}

/// GL work lent to code running on the owner thread (`GLOwner.withContext`).
///
/// Threading: the owner thread, inside `withContext` only.
public struct GLSession {
    let owner: GLOwner

    /// The GL renderer ("llvmpipe (LLVM 15.0.6, 256 bits)").
    public var renderer: String { owner.context!.renderer }

    /// The image a frame's `gpuImage` names, read back (nil when it is no longer on the GPU).
    public func readImage(_ token: UInt64) -> CPUImage? {
        owner.texture(of: token).flatMap(owner.image(of:)).map(owner.read)
    }
}

/// An RGBA image's rows in the other order (top-first ↔ GL's bottom-first).
func flipped(_ pixels: UnsafeRawPointer, width: Int, height: Int) -> [UInt32] {
    [UInt32](unsafeUninitializedCapacity: width * height) { buffer, count in
        copyFlipped(from: pixels, to: UnsafeMutableRawPointer(buffer.baseAddress!), rowBytes: width * 4, height: height)
        count = width * height
    }
}

/// Copies `height` rows of `rowBytes`, reversing their order.
func copyFlipped(from source: UnsafeRawPointer, to destination: UnsafeMutableRawPointer, rowBytes: Int, height: Int) {
    for y in 0..<height {
        (destination + (height - 1 - y) * rowBytes).copyMemory(from: source + y * rowBytes, byteCount: rowBytes)
    }
}

/// Writes one line to standard error (diagnostics that must not be lost).
func qgLog(_ message: String) { writeStandardError("qgraph: \(message)\n") }
