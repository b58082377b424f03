import QueueGraphCore

/// Media work on one frame, in place: a generator paints it, a filter
/// changes it, a sink writes it out. `RenderNode` runs it as a queue's
/// processor.
///
/// Threading: called on the node's scheduler thread, one frame at a time.
public protocol FrameWork: AnyObject {
    /// Does the work on `frame`; `engine` lends scratch buffers. Throws to
    /// fail the frame (it is dropped as `failed` and counted).
    func render(_ frame: Frame, engine: EngineCtx) throws
    /// Before the graph starts, on the node's thread: throws when no frame
    /// could be done (an output that cannot be opened), which refuses the
    /// graph's start with the reason instead of failing every frame.
    func prepare() throws
    /// The stream ended: flush and release what the work holds (a sink closes its output).
    func finish()
    /// The buffers one job on a `width`×`height` frame locks from the
    /// engine's provider (its footprint), known before it runs. None by default.
    func footprint(width: Int, height: Int) -> [BufferDescriptor]
    /// The pixel formats it takes: RGBA by default (`pixels`); a sink that
    /// reads planes also takes the 4:2:0 formats.
    var pixelFormats: [PixelFormat] { get }
}

/// Frame work whose parameters can change between frames (its node's
/// queue declares them `live`).
///
/// Threading: its node's thread, between frames.
public protocol LiveFrameWork: FrameWork {
    func setParameter(_ name: String, to value: ParameterValue)
}

extension FrameWork {
    public func prepare() throws {}
    public func finish() {}
    public func footprint(width: Int, height: Int) -> [BufferDescriptor] { [] }
    public var pixelFormats: [PixelFormat] { [.rgba] }
}

/// A frame job as it is planned, before it runs (Lumiera's planning step):
/// a reproducible invocation id, the same for the same node (its processor
/// and parameters), media frame and frame size in any run, which a cache of
/// rendered frames could key on; and the buffers the job will lock.
///
/// Threading: a value; any thread.
public struct JobPlan: Sendable, Equatable {
    public let invocation: UInt64
    public let buffers: [BufferDescriptor]
}

/// A render node (Lumiera's render node as a `BufferProcessor`): takes a
/// frame job's buffer, drops it when its deadline has already passed
/// (`ProcessResult.late`: counted, traced as `frame_deadline_miss`, never
/// delivered late), otherwise does its `FrameWork` on the frame in place
/// and sends it on (or, in a sink, releases it). Emits `frame_start` and
/// `frame_end` around the work.
///
/// Threading: as `BufferProcessor`.
public final class RenderNode: ThreadLifecycle, LiveParameters, FailureReporting {
    public let work: any FrameWork
    public let engine: EngineCtx
    public let resolution: DynamicResolution?
    /// What the node is, for invocation ids: its processor and parameters ("boxblur radius=3").
    public private(set) var identity: String
    public private(set) var failureReason: String?
    /// The work's footprint for the last frame size (asked again only when the size changes: no array per frame).
    private var footprint: (width: Int, height: Int, buffers: [BufferDescriptor]) = (0, 0, [])
    /// The share of each side the work renders at now (1: full resolution).
    public internal(set) var scale = 1.0

    /// `resolution`: hold a frame time by rendering fewer pixels (below); nil
    /// renders every frame whole. `identity` names the node in invocation
    /// ids (the work's type by default).
    public init(_ work: any FrameWork, engine: EngineCtx = .shared, resolution: DynamicResolution? = nil, identity: String? = nil) {
        self.work = work
        self.engine = engine
        self.resolution = resolution
        self.identity = identity ?? String(describing: type(of: work))
    }

    /// The plan of the job for `job`'s media frame on a `width`×`height` frame.
    public func plan(_ job: FrameJob, width: Int, height: Int) -> JobPlan {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a, 64 bits: stable across runs and builds
        for byte in "\(identity)|\(job.number)|\(width)x\(height)".utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return JobPlan(invocation: hash, buffers: work.footprint(width: width, height: height))
    }

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        frameJob(buffer, context: context, failure: &failureReason, formats: work.pixelFormats) { frame in
            // Announced before it runs, so the job neither allocates nor waits for its buffers.
            if footprint.width != frame.width || footprint.height != frame.height {
                footprint = (frame.width, frame.height, work.footprint(width: frame.width, height: frame.height))
            }
            if !footprint.buffers.isEmpty {
                let provider = engine.provider
                for descriptor in footprint.buffers { _ = provider.announce(1, of: descriptor) }
            }
            guard let resolution else {
                try work.render(frame, engine: engine)
                return buffer
            }
            let started = context.now
            try renderScaled(frame)
            let finished = context.now
            scale = resolution.next(scale: scale, took: finished - started,
                                    budget: resolution.budget(period: frame.job.rate.period, nextDeadline: frame.job.deadline, now: finished))
            return buffer
        }
    }

    /// Renders at `scale` of each side into the frame's own memory, then
    /// spreads it over the whole frame (nearest pixel), the header as it was.
    private func renderScaled(_ frame: Frame) throws {
        let (width, height) = (frame.width, frame.height)
        let (w, h) = (max(1, Int(Double(width) * scale)), max(1, Int(Double(height) * scale)))
        guard w < width || h < height else { return try work.render(frame, engine: engine) }
        let (job, pts, duration, timeBase, gpuImage) = (frame.job, frame.pts, frame.duration, frame.timeBase, frame.gpuImage)
        let buffer = frame.buffer
        let (sequence, timestamp) = (buffer.sequence, buffer.timestamp)
        defer { (buffer.sequence, buffer.timestamp) = (sequence, timestamp) }
        let small = Frame.make(in: buffer, width: w, height: h, job: job)
        try work.render(small, engine: engine)
        // Backwards: each pixel's source (never after it in memory) is read before it is written over.
        let pixels = frame.pixels
        for y in stride(from: height - 1, through: 0, by: -1) {
            let row = pixels + (y * h / height) * w
            for x in stride(from: width - 1, through: 0, by: -1) { pixels[y * width + x] = row[x * w / width] }
        }
        let whole = Frame.make(in: buffer, width: width, height: height, job: job)
        (whole.pts, whole.duration, whole.timeBase, whole.gpuImage) = (pts, duration, timeBase, gpuImage)
    }

    public func endOfStream(context: ProcessContext) { work.finish() }

    public func threadDidStart(wake: WakeEvent) throws { try work.prepare() }

    /// Gives a live parameter to its work (`LiveFrameWork`); the identity,
    /// and so the invocation ids, follow the new value.
    public func setParameter(_ name: String, to value: ParameterValue) {
        guard let work = work as? any LiveFrameWork else { return }
        work.setParameter(name, to: value)
        identity = identity.split(separator: " ").map { $0.hasPrefix(name + "=") ? "\(name)=\(value)" : String($0) }.joined(separator: " ")
    }
    public func threadWillEnd() {}
}

/// Holding a frame time by resolution (Equalizer's DFR equalizer): after
/// each frame a render node moves the share of each side it renders toward
/// the one that would take its budget, `targetLoad` of the frame period
/// (time goes with the pixels, the square of the share), keeping `damping`
/// of the old share (0 jumps, 1 freezes), between `minimumScale` and 1. A
/// node behind its schedule (less than a period left before the next
/// frame's deadline) has that much less budget, so it catches up. An
/// overloaded node then renders fewer pixels instead of dropping frames as late.
///
/// Threading: a value; any thread.
public struct DynamicResolution: Sendable, Equatable {
    public var targetLoad: Double
    public var damping: Double
    public var minimumScale: Double

    /// The defaults hold a Julia zoom at twice its frame period with no miss
    /// here (`Tools/bench balance`): 40 % headroom for a cost that changes
    /// from frame to frame, and quick to follow it.
    public init(targetLoad: Double = 0.6, damping: Double = 0.3, minimumScale: Double = 0.25) {
        precondition(targetLoad > 0 && (0...1).contains(damping) && minimumScale > 0 && minimumScale <= 1, "a dynamic resolution's parameters")
        (self.targetLoad, self.damping, self.minimumScale) = (targetLoad, damping, minimumScale)
    }

    /// The share to render the next frame at, after one at `scale` took
    /// `took` nanoseconds, for a next frame of `budget` nanoseconds.
    public func next(scale: Double, took: UInt64, budget: Double) -> Double {
        guard took > 0, budget > 0 else { return scale }
        let ideal = scale * (budget / Double(took)).squareRoot()
        return min(1, max(minimumScale, damping * scale + (1 - damping) * ideal))
    }

    /// The next frame's budget: `targetLoad` of the period, or of the time
    /// left before its deadline (a period after `deadline`, the one just
    /// met) when that is shorter, never under a quarter period.
    public func budget(period: Int64, nextDeadline deadline: UInt64, now: UInt64) -> Double {
        let left = deadline == .max ? period : Int64(clamping: deadline) &+ period &- Int64(clamping: now)
        return targetLoad * Double(min(period, max(period / 4, left)))
    }
}

/// Runs one frame job on a node: drops the frame as `late` when its
/// deadline has passed (traced as `frame_deadline_miss`), otherwise traces
/// `frame_start`, runs `body` and passes on the buffer it returns (in a
/// sink: releases it). A throwing body fails the frame, and the first
/// error's description is kept in `failure` (the node's
/// `FailureReporting.failureReason`); so does a frame in none of
/// `formats`. For processors outside this module that work on frames (the
/// GL stages).
public func frameJob(_ buffer: Buffer, context: ProcessContext, failure: inout String?, formats: [PixelFormat] = [.rgba],
                     _ body: (Frame) throws -> Buffer) -> ProcessResult {
    guard let frame = Frame(buffer), formats.contains(frame.pixelFormat) else { return .failed }
    let started = context.now
    let job = frame.job
    if missed(job, at: started, context: context) { return .late }
    context.traceFrameStart(job.tick, slackNanoseconds: Int64(clamping: job.deadline &- started))   // no deadline: UInt64.max
    let output: Buffer
    do {
        output = try body(frame)
    } catch {
        if failure == nil { failure = "\(error)" }
        return .failed
    }
    context.traceFrameEnd(job.tick, workNanoseconds: context.now - started)
    passOn(output, context: context)
    return .ok
}

/// Whether `job`'s deadline has passed at `now`; traces the miss when it has.
public func missed(_ job: FrameJob, at now: UInt64, context: ProcessContext) -> Bool {
    guard now >= job.deadline else { return false }
    context.traceDeadlineMiss(job.tick, lateNanoseconds: now - job.deadline)
    return true
}


/// Composites the frames of two layers of the same tick (the dispatcher's
/// pads 0 and 1, each rendered by its own branch): layer 1 over layer 0,
/// "source over" with layer 1's alpha scaled by `opacity`, into layer 0's
/// buffer, which goes on; layer 1's buffer is released. A frame waits here
/// for its partner; when its deadline passes first (the partner was
/// dropped upstream), the waiting frame is dropped as `late`.
///
/// Threading: as `BufferProcessor`.
public final class Compositor: LiveParameters, FailureReporting {
    /// 0…1: how much of the upper layer shows.
    public private(set) var opacity: Double
    private var waiting: [Int64: Buffer] = [:]
    public private(set) var failureReason: String?

    public init(opacity: Double = 1) { self.opacity = min(max(opacity, 0), 1) }

    public func setParameter(_ name: String, to value: ParameterValue) {
        if name == "opacity", case .number(let opacity) = value { self.opacity = min(max(opacity, 0), 1) }
    }

    public func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        guard let frame = Frame(buffer), frame.job.layer < 2 else { return .failed }
        let (job, now) = (frame.job, context.now)
        dropExpired(now: now, context: context)
        guard let other = waiting.removeValue(forKey: job.tick) else {
            if missed(job, at: now, context: context) { return .late }
            waiting[job.tick] = buffer   // until its partner comes
            return .ok
        }
        let result = frameJob(buffer, context: context, failure: &failureReason) { frame in
            let (base, top) = job.layer == 0 ? (frame, Frame(other)!) : (Frame(other)!, frame)
            guard base.width == top.width && base.height == top.height else { throw SizeMismatch() }
            composite(top.pixels, over: base.pixels, count: base.pixelCount, opacity: opacity)
            context.doneBuffer(top.buffer)
            return base.buffer
        }
        if let reason = result.dropReason { context.dropBuffer(other, reason: reason) }
        return result
    }

    struct SizeMismatch: Error, CustomStringConvertible {
        var description: String { "the two layers of a tick differ in size" }
    }

    /// Waiting frames whose partner did not come by their deadline (it was dropped upstream).
    private func dropExpired(now: UInt64, context: ProcessContext) {
        let expired = waiting.filter { missed(Frame($0.value)!.job, at: now, context: context) }
        for (tick, buffer) in expired {
            waiting[tick] = nil
            context.dropBuffer(buffer, reason: .late)
        }
    }

    public func endOfStream(context: ProcessContext) {
        for buffer in waiting.values { context.dropBuffer(buffer, reason: .late) }
        waiting.removeAll()
    }
}

/// The format answer of a processor that works on RGBA frames and sends
/// them on at the same size: it takes RGBA video (or `.unknown`) on every
/// in-link and sends what arrives on the first.
public func rgbaFrames(_ arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat] {
    try frames(arriving, in: [.rgba])
}

/// The same for a processor that takes frames in any of `formats`.
public func frames(_ arriving: [LinkFormat], in formats: [PixelFormat]) throws(FormatRefusal) -> [LinkFormat] {
    let expected = formats == [.rgba] ? "video rgba (a videoconvert with format: rgba makes it)"
        : "video " + formats.map(\.rawValue).joined(separator: ", ")
    try FormatRefusal.check(arriving, expected) { format in
        if case .video(let video) = format { video.pixelFormat.map(formats.contains) ?? true } else { false }
    }
    return [arriving.first ?? .video(VideoFormat(formats[0]))]
}

extension RenderNode: FormatAware {
    public func negotiate(arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat] { try frames(arriving, in: work.pixelFormats) }
}

extension Compositor: FormatAware {
    public func negotiate(arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat] { try rgbaFrames(arriving) }
}

extension BilinearScaler: FormatAware {
    public func negotiate(arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat] {
        guard case .video(var video) = try rgbaFrames(arriving)[0] else { return [.video(VideoFormat(.rgba, width: width, height: height))] }
        (video.width, video.height) = (width, height)
        return [.video(video)]
    }
}

extension FrameDispatcher: FormatAware {
    public func negotiate(arriving: [LinkFormat]) -> [LinkFormat] {
        [.video(VideoFormat(.rgba, width: width, height: height, rate: stream.rate))]
    }
}
