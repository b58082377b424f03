import QueueGraphCore
import QueueGraphRender

extension ProcessorRegistry {
    /// Registers the GL owner queue's processors: `glupload` begins a GL
    /// owner thread (put it on a `threading: thread` queue), and `glshader`,
    /// `glreadback`, `glpresent` and `glscreenshot` run on that thread
    /// (`threading: none` queues downstream of it).
    public mutating func registerGL() {
        let textures = ParameterSpec("textures", .integer(2...64), default: .integer(4),
                                     "textures the stage renders into in turn (more than the frames in flight after it)")
        var upload = ProcessorSpec(
            name: "glupload", summary: "begins a GL owner thread (OpenGL 3.3 core context) and uploads each frame into a texture",
            parameters: [
                ParameterSpec("backend", .choice(GLBackend.allCases.map(\.rawValue)), default: .text("auto"),
                              "auto: GLFW when an X display answers, else EGL surfaceless (env QG_GL_BACKEND overrides)"),
                ParameterSpec("preview", .flag, default: .flag(true), "open a visible preview window when there is a display"),
                ParameterSpec("window-width", .integer(16...8192), default: .integer(640), "preview window width"),
                ParameterSpec("window-height", .integer(16...8192), default: .integer(360), "preview window height"),
                ParameterSpec("title", .text, default: .text("QueueGraph"), "preview window title"),
                textures,
            ],
            outputs: 1...1,
            make: { p in
                let owner = GLOwner(.init(backend: GLBackend(rawValue: p.text("backend"))!, preview: p.flag("preview"),
                                          windowWidth: p.integer("window-width"), windowHeight: p.integer("window-height"),
                                          title: p.text("title")))
                return GLUpload(owner: owner, textures: p.integer("textures"))
            })
        upload.placement = .beginsThread
        (upload.takes, upload.makes) = (.frames, .frames)
        upload.negotiate = { _, arriving throws(FormatRefusal) in try rgbaFrames(arriving) }
        register(upload)
        let stages = [
            ProcessorSpec(
                name: "glshader", summary: "a shadertoy-style GLSL fragment-shader pass (mainImage; iTime, iResolution, iFrame, iChannel0/1; feedback on iChannel2, history on iHistory)",
                parameters: [ParameterSpec("file", .inputFile, default: nil, "the GLSL file defining mainImage"), textures,
                             ParameterSpec("feedback", .flag, default: .flag(false), "iChannel2 is the pass's own previous output (a trail, an echo)"),
                             ParameterSpec("history", .integer(0...GLShaderPass.maxHistory), default: .integer(0),
                                           "iHistory[0…n-1] are the last n input frames, newest first")],
                outputs: 1...1, make: { p in
                    GLShaderPass(path: p.text("file"), textures: p.integer("textures"), feedback: p.flag("feedback"), history: p.integer("history"))
                }),
            ProcessorSpec(
                name: "glreadback", summary: "reads each frame's texture back into its pixels (asynchronous, fenced; use 'buffers: reuse')",
                parameters: [ParameterSpec("depth", .integer(0...8), default: .integer(1), "frames whose read may be pending at once"),
                             ParameterSpec("format", .choice(["rgba", "i420", "nv12"]), default: .text("rgba"),
                                           "i420, nv12: converted by a shader pass on the GL thread and read back as 4:2:0 planes (BT.601, limited range)")],
                outputs: 1...1, make: { p in GLReadback(depth: p.integer("depth"), format: PixelFormat(rawValue: p.text("format"))!) }),
            ProcessorSpec(
                name: "glpresent", summary: "shows each frame in the preview window, best effort (skips are counted)",
                outputs: 0...1, make: { _ in GLPresent() }),
            ProcessorSpec(
                name: "glscreenshot", summary: "writes a PNG of every n-th frame on the GL thread",
                parameters: [ParameterSpec("path", .text, default: nil, "the PNG file; {tick} is replaced by the frame's tick"),
                             ParameterSpec("every", .integer(1...1_000_000), default: .integer(1), "one frame in this many")],
                outputs: 0...1, make: { p in GLScreenshot(path: p.text("path"), every: p.integer("every")) }),
        ]
        for var stage in stages {
            stage.placement = .onThreadOf(upload.name)
            (stage.takes, stage.makes) = (.frames, .frames)
            stage.negotiate = { _, arriving throws(FormatRefusal) in try rgbaFrames(arriving) }
            register(stage)
        }
    }
}

extension ProcessorRegistry {
    /// Every processor QueueGraph ships: the core's, the render engine's and
    /// the GL owner's (what `qgraph` offers).
    public static let withRenderAndGL: ProcessorRegistry = {
        var registry = ProcessorRegistry.builtIn
        registry.registerRender()
        registry.registerGL()
        return registry
    }()
}
