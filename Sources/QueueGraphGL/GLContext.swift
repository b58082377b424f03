import CEGL
import CGLFW
import QueueGraphCore
#if canImport(Glibc)
import Glibc
#endif

/// How the GL owner gets its OpenGL 3.3 core context.
///
/// Threading: a value; any thread.
public enum GLBackend: String, Sendable, CaseIterable {
    /// GLFW when an X display answers (`DISPLAY`, including Xvfb), else EGL
    /// surfaceless. The environment variable `QG_GL_BACKEND=glfw|egl` overrides it.
    case auto
    /// A GLFW window on the X display: visible when a preview is wanted, else hidden.
    case glfw
    /// Mesa's surfaceless EGL platform: no window and no X server at all.
    case egl
}

/// An error making or using the GL context.
///
/// Threading: a value; any thread.
public struct GLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// An OpenGL 3.3 core context current on the thread that made it, and its
/// window if any: the GL owner's (through `GLOwner`), or a program's own
/// (a benchmark's bare loop).
///
/// Threading: made, used and destroyed on one thread only.
public final class GLContext {
    public let backend: GLBackend
    /// The GLFW window (a visible preview or a hidden one), nil with EGL.
    private(set) var window: OpaquePointer?
    let visible: Bool
    private var eglDisplay: EGLDisplay?
    private var eglContext: EGLContext?

    private init(backend: GLBackend, window: OpaquePointer?, visible: Bool, eglDisplay: EGLDisplay?, eglContext: EGLContext?) {
        (self.backend, self.window, self.visible, self.eglDisplay, self.eglContext) = (backend, window, visible, eglDisplay, eglContext)
    }

    /// The backend `auto` resolves to here and now, and whether the
    /// environment (`QG_GL_BACKEND`) chose it.
    static func resolve(_ backend: GLBackend) -> (backend: GLBackend, forced: Bool) {
        if backend != .auto { return (backend, false) }
        if let name = getenv("QG_GL_BACKEND").map({ String(cString: $0) }), let forced = GLBackend(rawValue: name), forced != .auto {
            return (forced, true)
        }
        return (getenv("DISPLAY") != nil ? .glfw : .egl, false)
    }

    /// Makes a context current on the calling thread. `auto` falls back to
    /// EGL when GLFW cannot open the display.
    public static func make(_ backend: GLBackend, width: Int, height: Int, title: String, visible: Bool) throws -> GLContext {
        let (resolved, forced) = resolve(backend)
        switch resolved {
        case .glfw:
            do {
                return try makeGLFW(width: width, height: height, title: title, visible: visible)
            } catch where backend == .auto && !forced {
                return try makeEGL()
            }
        case .egl, .auto:
            return try makeEGL()
        }
    }

    private static func makeGLFW(width: Int, height: Int, title: String, visible: Bool) throws -> GLContext {
        let window = try GLFW.withLibrary { () throws -> OpaquePointer in
            glfwDefaultWindowHints()
            glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3)
            glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 3)
            glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE)
            glfwWindowHint(GLFW_OPENGL_FORWARD_COMPAT, GLFW_TRUE)
            glfwWindowHint(GLFW_VISIBLE, visible ? GLFW_TRUE : GLFW_FALSE)
            guard let window = glfwCreateWindow(Int32(width), Int32(height), title, nil, nil) else {
                throw GLError("GLFW could not create a GL 3.3 core window: \(GLFW.lastError())")
            }
            return window
        }
        glfwMakeContextCurrent(window)
        glfwSwapInterval(0)   // presenting must never wait for a display refresh
        return GLContext(backend: .glfw, window: window, visible: visible, eglDisplay: nil, eglContext: nil)
    }

    private static func makeEGL() throws -> GLContext {
        func failure(_ step: String) -> GLError { GLError("EGL surfaceless: \(step) failed (EGL error 0x\(String(eglGetError(), radix: 16)))") }
        guard let display = eglGetPlatformDisplay(EGLenum(EGL_PLATFORM_SURFACELESS_MESA), nil, nil) else { throw failure("eglGetPlatformDisplay") }
        guard eglInitialize(display, nil, nil) == EGL_TRUE else { throw failure("eglInitialize") }
        guard eglBindAPI(EGLenum(EGL_OPENGL_API)) == EGL_TRUE else { throw failure("eglBindAPI(OpenGL)") }
        var config: EGLConfig?
        var count: EGLint = 0
        let attributes: [EGLint] = [EGL_SURFACE_TYPE, EGL_PBUFFER_BIT, EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_NONE]
        guard eglChooseConfig(display, attributes, &config, 1, &count) == EGL_TRUE, count > 0 else { throw failure("eglChooseConfig") }
        let contextAttributes: [EGLint] = [
            EGL_CONTEXT_MAJOR_VERSION, 3, EGL_CONTEXT_MINOR_VERSION, 3,
            EGL_CONTEXT_OPENGL_PROFILE_MASK, EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT, EGL_NONE,
        ]
        guard let context = eglCreateContext(display, config, nil, contextAttributes) else { throw failure("eglCreateContext(3.3 core)") }
        guard eglMakeCurrent(display, nil, nil, context) == EGL_TRUE else {
            eglDestroyContext(display, context)
            throw failure("eglMakeCurrent(surfaceless)")
        }
        return GLContext(backend: .egl, window: nil, visible: false, eglDisplay: display, eglContext: context)
    }

    /// "llvmpipe (LLVM 15.0.6, 256 bits)" and the like.
    public var renderer: String { glGetString(GLenum(GL_RENDERER)).map { String(cString: $0) } ?? "unknown" }

    /// Shows the window's back buffer and handles its events; false when
    /// there is no visible window or the user closed it.
    func swap() -> Bool {
        guard let window, visible else { return false }
        glfwSwapBuffers(window)
        glfwPollEvents()
        return glfwWindowShouldClose(window) == 0
    }

    /// The window's framebuffer size, or nil without a visible window.
    var framebufferSize: (width: Int, height: Int)? {
        guard let window, visible else { return nil }
        var (w, h): (Int32, Int32) = (0, 0)
        glfwGetFramebufferSize(window, &w, &h)
        return (Int(w), Int(h))
    }

    /// Releases the context (and the window). Every GL object must be gone first.
    public func destroy() {
        if let window {
            glfwMakeContextCurrent(nil)
            GLFW.withLibrary { glfwDestroyWindow(window) }
            GLFW.release()
            self.window = nil
        }
        if let eglDisplay, let eglContext {
            eglMakeCurrent(eglDisplay, nil, nil, nil)
            eglDestroyContext(eglDisplay, eglContext)
            self.eglContext = nil
        }
    }
}

/// GLFW's process-wide state: initialised by the first window, terminated
/// after the last; window creation and destruction are serialised (GLFW's
/// window calls are not thread-safe, and each GL owner runs on its own thread).
enum GLFW {
    private static let state = Locked(0)   // users
    /// Separate from `state`: GLFW reports errors from inside calls made under `state`'s lock.
    private static let lastErrorText = Locked("")

    /// Runs `body` under GLFW's lock, initialising GLFW for a new user.
    static func withLibrary<R>(_ body: () throws -> R) throws -> R {
        try state.withLock { users in
            if users == 0 {
                glfwSetErrorCallback(glfwErrorCallback)
                guard glfwInit() == GLFW_TRUE else { throw GLError("GLFW could not start: \(lastError())") }
            }
            users += 1
            do {
                return try body()
            } catch {
                users -= 1
                if users == 0 { glfwTerminate() }
                throw error
            }
        }
    }

    /// Runs `body` under GLFW's lock (for a user that already holds GLFW).
    static func withLibrary(_ body: () -> Void) { state.withLock { _ in body() } }

    /// Lets go of GLFW; the last user terminates it.
    static func release() {
        state.withLock { users in
            users -= 1
            if users == 0 { glfwTerminate() }
        }
    }

    static func lastError() -> String { lastErrorText.withLock { $0 } }
    fileprivate static func record(_ message: String) { lastErrorText.withLock { $0 = message } }
}

/// GLFW's error callback: a plain top-level function (a closure would be
/// main-actor isolated in Swift 6 and trap when GLFW calls it on the owner thread).
private func glfwErrorCallback(_ code: Int32, _ description: UnsafePointer<CChar>?) {
    GLFW.record("0x\(String(code, radix: 16)) \(description.map { String(cString: $0) } ?? "")")
}
