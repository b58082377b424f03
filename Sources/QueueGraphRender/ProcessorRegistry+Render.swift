import QueueGraphCore

extension ProcessorRegistry {
    /// Registers the render engine's processors: the `render` dispatcher,
    /// generators, filters, the compositor and the frame sinks.
    public mutating func registerRender() {
        func node(_ name: String, _ summary: String, _ parameters: [ParameterSpec] = [], sink: Bool = false,
                  formats: [PixelFormat] = [.rgba], _ work: @escaping @Sendable (Parameters) -> any FrameWork) {
            var spec = ProcessorSpec(name: name, summary: summary, parameters: parameters, outputs: sink ? 0...0 : 1...1,
                                     takes: .frames, makes: .frames, make: { p in RenderNode(work(p), identity: identity(name, p)) })
            spec.negotiate = { _, arriving throws(FormatRefusal) in try frames(arriving, in: formats) }
            register(spec)
        }
        /// A generator whose work also splits across a compound queue's
        /// servers, and may hold a frame time by resolution.
        func partNode<Work: PartWork & SendableMetatype>(_ name: String, _ summary: String, _ parameters: [ParameterSpec] = [],
                                      _ work: @escaping @Sendable (Parameters) -> Work) {
            let resolution = [
                ParameterSpec("resolution", .choice(["full", "dynamic"]), default: .text("full"),
                              "dynamic: render fewer pixels when a frame would take too long (Equalizer's DFR), instead of dropping frames as late"),
                ParameterSpec("target-load", .number(0.05...1), default: .number(0.6), "dynamic: the share of the frame period to aim for"),
                ParameterSpec("damping", .number(0...1), default: .number(0.3), "dynamic: how much of the previous resolution is kept"),
                ParameterSpec("min-scale", .number(0.05...1), default: .number(0.25), "dynamic: the smallest share of each side"),
            ]
            var spec = ProcessorSpec(name: name, summary: summary, parameters: parameters + resolution, outputs: 1...1,
                                     takes: .frames, makes: .frames, make: { p in
                let dynamic = p.text("resolution") == "dynamic"
                    ? DynamicResolution(targetLoad: p.number("target-load"), damping: p.number("damping"), minimumScale: p.number("min-scale")) : nil
                return RenderNode(work(p), resolution: dynamic, identity: identity(name, p))
            })
            spec.negotiate = { _, arriving throws(FormatRefusal) in try rgbaFrames(arriving) }
            spec.splitModes = Work.splitModes
            spec.makeCompound = { p, queue in
                CompoundNode(name: queue.name, servers: queue.servers, loadBalancer: queue.loadBalancer, work: work(p),
                             remote: queue.remoteServers.compactMapValues { $0 as? any PartServer })
            }
            spec.refuseSplit = { p in
                p.values["resolution"] == .text("dynamic")
                    ? "whose 'resolution: dynamic' holds the frame time of one render node, expected 'servers: 1' with it (or 'resolution: full')" : nil
            }
            register(spec)
        }
        register(ProcessorSpec(
            name: "render", summary: "a render process: launches one frame job per tick, just in time before its deadline",
            parameters: [
                ParameterSpec("width", .integer(1...8192), default: .integer(640), "frame width in pixels"),
                ParameterSpec("height", .integer(1...8192), default: .integer(360), "frame height in pixels"),
                ParameterSpec("fps", .integer(1...1000), default: .integer(60), "output frames per second"),
                ParameterSpec("frames", .integer(0...Int.max), default: .integer(0), "ticks to render; 0 renders until stopped"),
                ParameterSpec("latency", .number(0.1...100), default: .number(2), "frame periods from a job's launch to its deadline"),
                ParameterSpec("speed", .number(0...1000), default: .number(1), "media seconds per second"),
                ParameterSpec("direction", .choice(["forward", "backward"]), default: .text("forward"), "which way media time runs"),
            ],
            outputs: 1...2, isSource: true, makes: .frames, payloadBytes: { $0.integer("width") * $0.integer("height") * 4 },
            makeCreator: { name, count, sharedWithChildren in
                FrameCreator(name: name, count: count, engine: sharedWithChildren ? .sharedWithChildren : .shared)
            },
            make: { p in
                let stream = RenderStream(
                    rate: FrameRate(p.integer("fps")),
                    timings: Timings(speed: p.number("speed"), direction: p.text("direction") == "forward" ? .forward : .backward),
                    frameLimit: p.integer("frames") == 0 ? nil : Int64(p.integer("frames")), latencyFrames: p.number("latency"))
                return FrameDispatcher(stream: stream, width: p.integer("width"), height: p.integer("height"))
            }))
        partNode("julia", "paints a moving Julia set zoom (uneven cost per pixel)",
                 [ParameterSpec("iterations", .integer(1...4096), default: .integer(64), "most iterations per pixel"),
                  ParameterSpec("centre-x", .number(-4...4), default: .number(0), "real part at the frame's centre"),
                  ParameterSpec("centre-y", .number(-4...4), default: .number(0), "imaginary part at the frame's centre"),
                  ParameterSpec("zoom", .number(0.01...1_000_000), default: .number(1), "magnification of the default view"),
                  ParameterSpec("phase", .number(-100...100), default: .number(0), "where c starts on its circle (radians)")]) { p in
            JuliaZoom(maxIterations: p.integer("iterations"), centre: (Float(p.number("centre-x")), Float(p.number("centre-y"))),
                      zoom: Float(p.number("zoom")), phase: p.number("phase"))
        }
        partNode("hotspot", "a synthetic load: pixels near a hot spot cost more; it holds at the left, then sweeps",
                 [ParameterSpec("heat", .integer(1...10_000), default: .integer(24), "how many times more a hot pixel costs"),
                  ParameterSpec("radius", .number(0.01...2), default: .number(0.2), "the hot spot's radius, in frame widths"),
                  ParameterSpec("hold", .integer(0...1_000_000), default: .integer(20), "frames before it moves"),
                  ParameterSpec("sweep", .integer(2...1_000_000), default: .integer(120), "frames to go right and back")]) { p in
            HotSpot(heat: p.integer("heat"), radius: p.number("radius"), holdFrames: Int64(p.integer("hold")),
                    sweepFrames: Int64(p.integer("sweep")))
        }
        partNode("discs", "paints soft discs drifting over a background, in order (objects for a db split)",
                 [ParameterSpec("count", .integer(1...100_000), default: .integer(48), "how many discs")]) {
            Discs(count: $0.integer("count"))
        }
        node("plasma", "paints an animated plasma with a soft alpha (a layer)") { _ in Plasma() }
        node("ball", "paints a white ball bouncing on black (like videotestsrc pattern=ball)") { _ in BouncingBall() }
        node("boxblur", "box blur by running sums",
             [ParameterSpec("radius", .integer(1...256), default: .integer(4), live: true, "pixels on each side")]) {
            BoxBlur(radius: $0.integer("radius"))
        }
        node("gaussianblur", "separable Gaussian blur",
             [ParameterSpec("sigma", .number(0.1...64), default: .number(2), "standard deviation in pixels")]) {
            GaussianBlur(sigma: $0.number("sigma"))
        }
        node("colormatrix", "a 3×4 colour matrix on RGB",
             [ParameterSpec("preset", .choice(["greyscale", "sepia", "saturation"]), default: .text("sepia"), "which matrix"),
              ParameterSpec("amount", .number(0...4), default: .number(1), "how much (saturation: the factor)")]) { p in
            let amount = Float(p.number("amount"))
            return switch p.text("preset") {
            case "greyscale": ColourMatrix.greyscale(amount)
            case "saturation": ColourMatrix.saturation(amount)
            default: ColourMatrix.sepia(amount)
            }
        }
        node("timecode", "draws the frame's timecode at the top left",
             [ParameterSpec("scale", .integer(1...16), default: .integer(3), "font pixels per glyph pixel")]) {
            TimecodeOverlay(scale: $0.integer("scale"))
        }
        node("y4msink", "writes frames to a YUV4MPEG2 file (ffplay, mpv); RGBA is converted, I420 and NV12 written as they are",
             [ParameterSpec("path", .text, default: nil, "the file to write")], sink: true, formats: Y4MWriter.formats) {
            Y4MWriter(path: $0.text("path"))
        }
        node("pngsink", "writes every n-th frame as a PNG (libpng)",
             [ParameterSpec("directory", .text, default: nil, "where frame-NNNNNN.png go"),
              ParameterSpec("every", .integer(1...1_000_000), default: .integer(1), "write one frame in this many")], sink: true) {
            PNGWriter(directory: $0.text("directory"), every: $0.integer("every"))
        }
        node("framesink", "counts frames that arrive in time and releases them", sink: true) { _ in NullOutput() }
        register(ProcessorSpec(
            name: "scale", summary: "bilinear scale into a new frame (use 'buffers: upstream')",
            parameters: [ParameterSpec("width", .integer(1...8192), default: nil, "output width"),
                         ParameterSpec("height", .integer(1...8192), default: nil, "output height")],
            outputs: 1...1, takes: .frames, makes: .frames, make: { p in BilinearScaler(width: p.integer("width"), height: p.integer("height")) }))
        register(ProcessorSpec(
            name: "composite", summary: "composites layer 1 over layer 0 of each tick (two inputs)",
            parameters: [ParameterSpec("opacity", .number(0...1), default: .number(1), live: true, "how much of layer 1 shows")],
            outputs: 1...1, takes: .frames, makes: .frames, make: { p in Compositor(opacity: p.number("opacity")) }))
        var pull = ProcessorSpec(
            name: "pull", summary: "frame jobs that pull a render node network (its 'network:'), on a pool of workers (Lumiera's model)",
            parameters: [ParameterSpec("workers", .integer(1...64), default: .integer(2), "threads rendering jobs at once, each with its own copy of the network")],
            outputs: 1...1, takes: .frames, makes: .frames, make: { p in
                PullNode(workers: p.integer("workers")) { () throws(NetworkRefusal) in
                    throw NetworkRefusal(node: nil, "a pull queue has no network: name one with 'network: NAME' in its graph file")
                }
            })
        pull.makeNetworked = { p, network throws(NetworkRefusal) in
            _ = try RenderNetwork(network)   // refused when the file is read, at the node at fault
            return PullNode(workers: p.integer("workers")) { () throws(NetworkRefusal) in try RenderNetwork(network) }
        }
        pull.negotiate = { _, arriving throws(FormatRefusal) in try rgbaFrames(arriving) }
        register(pull)
        // What they send follows from their parameters, so files are checked when read.
        for name in ["render", "scale", "composite"] { self[name]?.negotiateByMaking() }
    }
}

/// A node's identity for invocation ids: its processor and its parameters, sorted ("boxblur radius=3").
private func identity(_ name: String, _ parameters: Parameters) -> String {
    ([name] + parameters.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
}

