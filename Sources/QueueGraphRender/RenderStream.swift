import QueueGraphCore
import Synchronization

/// How wall-clock time maps to media time for a render process: where play
/// starts, how fast and which way it runs. A value; `RenderStream` keeps
/// the current one and re-anchors it on every change so media time never
/// jumps.
///
/// Threading: a value; any thread.
public struct Timings: Sendable, Equatable {
    /// Media time (nanoseconds) at `anchor`.
    public var start: Int64
    /// Media seconds per wall second, ≥ 0 (0 freezes the picture).
    public var speed: Double
    /// Forward or backward through the media.
    public var direction: Direction
    /// Monotonic wall time where `start` applies; set by the process.
    var anchor: UInt64 = 0

    public enum Direction: Sendable { case forward, backward }

    public init(start: Int64 = 0, speed: Double = 1, direction: Direction = .forward) {
        precondition(speed >= 0 && speed.isFinite, "speed must be finite and not negative")
        self.start = start
        self.speed = speed
        self.direction = direction
    }

    /// Media time at monotonic wall time `wall`.
    public func mediaTime(at wall: UInt64) -> Int64 {
        let elapsed = Double(Int64(bitPattern: wall &- anchor)) * speed
        return start + Int64(direction == .forward ? elapsed : -elapsed)
    }
}

/// The render process for one output (Lumiera's RenderStream): the frame
/// rate its output ticks at, the timings that map ticks to media frames,
/// and play control — start, pause, resume, stop, and speed and direction
/// changed while running. A `FrameDispatcher` in the graph turns it into
/// frame jobs; the process holds no thread of its own.
///
/// Threading: control methods from any thread; the dispatcher reads it on
/// its scheduler thread.
public final class RenderStream: Sendable {
    /// How it is playing.
    public enum PlayState: Sendable, Equatable { case ready, playing, paused, stopped }

    public let rate: FrameRate
    /// Output ticks to dispatch before the process stops by itself (nil: until `stop()`).
    public let frameLimit: Int64?
    /// How long before its deadline a frame job is launched: the time the
    /// graph has to render one frame (default 2 frame periods).
    public let latency: UInt64

    private struct State {
        var play = PlayState.ready
        /// While paused, `timings.start` is the frozen media time.
        var timings: Timings

        func mediaTime(at wall: UInt64) -> Int64 { play == .paused ? timings.start : timings.mediaTime(at: wall) }

        /// Makes `now` the anchor, keeping media time where it is.
        mutating func reanchor(at now: UInt64) {
            timings.start = mediaTime(at: now)
            timings.anchor = now
        }
    }
    private let state: Locked<State>
    private let launched = Atomic<Int64>(0)
    private let skipped = Atomic<Int64>(0)

    public init(rate: FrameRate, timings: Timings = Timings(), frameLimit: Int64? = nil, latencyFrames: Double = 2) {
        precondition(latencyFrames > 0, "latency must be positive")
        self.rate = rate
        self.frameLimit = frameLimit
        latency = UInt64(Double(rate.period) * latencyFrames)
        state = Locked(State(timings: timings))
    }

    public var playState: PlayState { state.withLock { $0.play } }
    public var timings: Timings { state.withLock { $0.timings } }
    /// Jobs launched so far, and ticks that passed without a job (no frame buffer in time).
    public var jobsLaunched: Int64 { launched.load(ordering: .relaxed) }
    public var ticksSkipped: Int64 { skipped.load(ordering: .relaxed) }

    /// Starts playing (the dispatcher then launches the first tick); after a pause, resumes.
    public func start() { start(at: monotonicNanoseconds()) }

    /// Starts playing with media time `timings.start` at wall time `wall`:
    /// the dispatcher anchors at the wall time of the tick it launches, so
    /// each tick's media time is exact and a run renders the same frames
    /// every time.
    func start(at wall: UInt64) {
        state.withLock { s in
            guard s.play == .ready || s.play == .paused else { return }
            s.timings.anchor = wall
            s.play = .playing
        }
    }

    /// Freezes media time; no jobs are launched until `start()`.
    public func pause() {
        state.withLock { s in
            guard s.play == .playing else { return }
            s.reanchor(at: monotonicNanoseconds())
            s.play = .paused
        }
    }

    /// Ends the process: the dispatcher sends end-of-stream, which releases the output slot.
    public func stop() { state.withLock { $0.play = .stopped } }

    /// Changes speed and direction from now on; media time continues from where it is.
    public func change(speed: Double, direction: Timings.Direction) {
        precondition(speed >= 0 && speed.isFinite, "speed must be finite and not negative")
        state.withLock { s in
            s.reanchor(at: monotonicNanoseconds())
            (s.timings.speed, s.timings.direction) = (speed, direction)
        }
    }

    /// Media time and frame number at wall time `wall` (frozen while paused).
    func media(at wall: UInt64) -> (time: Int64, frame: Int64) {
        let time = state.withLock { $0.mediaTime(at: wall) }
        return (time, rate.frame(at: time))
    }

    func countLaunched() { launched.add(1, ordering: .relaxed) }
    func countSkipped(_ n: Int64) { skipped.add(n, ordering: .relaxed) }
}

/// The dispatcher of a render process (a `BufferSource`): at each output
/// tick it launches one frame job just in time — `latency` before the
/// tick's deadline — by locking a frame buffer for every out pad (the
/// compositor's layers), stamping the job into its header and sending it
/// to the render nodes. A tick whose frame buffers cannot be had within
/// half its latency (its frame would have less than half its time left)
/// is skipped, counted as a `late` drop of this queue and traced as
/// `frame_deadline_miss` with the time past that point (buffers already
/// locked wait for the next tick); the nodes and sinks drop any frame that
/// is still late when they get it. Stopping the process (or reaching its
/// frame limit) sends end-of-stream.
///
/// Threading: as `BufferProcessor` (its queue's scheduler thread).
public final class FrameDispatcher: BufferSource {
    public let stream: RenderStream
    public let width: Int
    public let height: Int
    private var tick: Int64 = 0
    private var origin: UInt64 = 0
    private var wasPaused = false
    /// Frame buffers locked for the current tick (one per pad), if not all yet.
    private var pending: [Buffer] = []

    public init(stream: RenderStream, width: Int, height: Int) {
        precondition(width > 0 && height > 0, "a frame needs a size")
        self.stream = stream
        self.width = width
        self.height = height
    }

    public func produce(context: ProcessContext) -> ProduceResult {
        let (now, period) = (context.now, UInt64(stream.rate.period))
        switch stream.playState {
        case .paused:
            wasPaused = true
            return .waitingUntil(now + period)
        case .stopped:
            return finish(context)
        case .ready, .playing:
            if origin == 0 || wasPaused {
                // The next tick launches now (at the start, or where a pause left off).
                stream.start(at: now)
                origin = now - UInt64(tick) * period
                wasPaused = false
            }
        }
        let limit = stream.frameLimit ?? .max
        var launch = origin + UInt64(tick) * period
        // A tick not launched by half its latency is skipped: its frame would
        // have less than half its time left. Under overload the dispatcher
        // then launches the current tick whenever a frame buffer comes back,
        // and those frames make their deadlines, instead of every frame
        // starting late and being dropped downstream.
        let cutoff = stream.latency / 2
        if tick < limit && now >= launch + cutoff {
            let missed = min(Int64((now - launch - cutoff) / period) + 1, limit - tick)
            context.countDrop(.late, count: Int(missed))
            context.traceDeadlineMiss(tick, lateNanoseconds: now - launch - cutoff)
            stream.countSkipped(missed)
            tick += missed
            launch += UInt64(missed) * period
        }
        if tick >= limit { return finish(context) }
        if now < launch { return .waitingUntil(launch) }
        let deadline = launch + stream.latency
        while pending.count < context.outPadCount {
            guard let buffer = context.acquireBuffer(size: Frame.byteCount(width: width, height: height), pad: pending.count) else {
                return .waitingForBuffer
            }
            pending.append(buffer)
        }
        let media = stream.media(at: launch)
        for (pad, buffer) in pending.enumerated() {
            let job = FrameJob(tick: tick, number: media.frame, mediaTime: media.time, deadline: deadline, layer: pad, rate: stream.rate)
            Frame.make(in: buffer, width: width, height: height, job: job)
            context.sendTo(pad, buffer)
        }
        pending.removeAll(keepingCapacity: true)
        stream.countLaunched()
        tick += 1
        return .produced
    }

    private func finish(_ context: ProcessContext) -> ProduceResult {
        endOfStream(context: context)
        return .endOfStream
    }

    /// Also called when the graph is stopped: the process stops and frame
    /// buffers locked for a tick that never came are released.
    public func endOfStream(context: ProcessContext) {
        for buffer in pending { context.doneBuffer(buffer) }
        pending.removeAll()
        stream.stop()
    }
}
