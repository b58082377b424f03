import Foundation
@testable import QueueGraphGL
import QueueGraphCore
import QueueGraphRender
import QueueGraphRuntime
import Testing

/// Records the first pixel of every frame, by tick; at `resetAt` it asks
/// the GL owner for a reset of `scope` and waits for it (from its own thread).
final class FirstPixels: BufferProcessor, @unchecked Sendable {
    private let state = Locked<[(tick: Int64, pixel: UInt32)]>([])
    var seen: [(tick: Int64, pixel: UInt32)] { state.withLock { $0 } }
    let reset: (owner: GLOwner, scope: ResetScope, at: Int64)?
    private(set) var resetOutcome: RenderOutcome?

    init(reset: (owner: GLOwner, scope: ResetScope, at: Int64)? = nil) { self.reset = reset }

    func process(_ buffer: Buffer, context: ProcessContext) -> ProcessResult {
        guard let frame = Frame(buffer) else { return .failed }
        state.withLock { $0.append((frame.job.tick, frame.pixels[0])) }
        if let reset, frame.job.tick == reset.at {
            resetOutcome = reset.owner.mailbox.wait(reset.owner.requestReset(reset.scope))
        }
        context.doneBuffer(buffer)
        return .ok
    }
}

/// render → pattern → [gl → pass → readback] → sink, the pass made by `pass`.
func renderStateGraph(owner: GLOwner, frames: Int64, pass: @escaping @Sendable () -> GLShaderPass, sink: FirstPixels) throws -> QueueGraph {
    let stream = RenderStream(rate: FrameRate(30), frameLimit: frames, latencyFrames: 60)
    return try QueueGraphConfig(name: "render-state")
        .adding(QueueConfig(name: "render", size: 4, threading: .thread, buffers: .provider,
                            processor: { _ in FrameDispatcher(stream: stream, width: 16, height: 8) },
                            creator: { _ in FrameCreator(name: "frames", count: 8) }))
        .adding(QueueConfig(name: "pattern", size: 2, buffers: .reuse, processor: { _ in RenderNode(Pattern()) }))
        .adding(QueueConfig(name: "gl", size: 2, threading: .thread, processor: { _ in GLUpload(owner: owner) }))
        .adding(QueueConfig(name: "pass", size: 2, processor: { _ in pass() }))
        .adding(QueueConfig(name: "readback", size: 2, buffers: .reuse, processor: { _ in GLReadback() }))
        .adding(QueueConfig(name: "sink", size: 4, threading: .thread, outPads: 0, processor: { _ in sink }))
        .connecting("render", to: "pattern").connecting("pattern", to: "gl").connecting("gl", to: "pass")
        .connecting("pass", to: "readback").connecting("readback", to: "sink")
        .createQueueGraph()
}

@Suite("Render-local state: shader feedback and input history, and their reset scopes (seed 002)", .serialized)
struct RenderStateTests {
    @Test("with feedback a pass reads its own previous output: a counter that a shaderFeedback reset starts again")
    func feedbackCounts() throws {
        let owner = GLOwner(.init(backend: .egl))
        let sink = FirstPixels(reset: (owner, .shaderFeedback, 6))
        let shader = writeShader("count.frag", """
            // Each frame adds 1/255 to what the pass drew last time.
            void mainImage(out vec4 fragColor, in vec2 fragCoord) {
                fragColor = texture(iChannel2, fragCoord / iResolution.xy) + vec4(1.0 / 255.0);
            }
            """)
        let graph = try renderStateGraph(owner: owner, frames: 20, pass: { GLShaderPass(path: shader, feedback: true) }, sink: sink)
        try graph.start()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000))
        let stats = graph.stop()
        #expect(stats.ledgerProblems().isEmpty && stats.dropped(.late) == 0)
        #expect(sink.resetOutcome == .completed(image: nil))
        let counts = sink.seen.map { Int($0.pixel & 0xFF) }
        #expect(counts.count == 20 && counts.first == 1, "\(counts)")
        // Up by one each frame, except once: back to 1 after the reset asked for at tick 6.
        let restarts = counts.indices.dropFirst().filter { counts[$0] != counts[$0 - 1] + 1 }
        #expect(restarts.count == 1 && restarts.allSatisfy { counts[$0] == 1 && sink.seen[$0].tick > 6 }, "\(counts)")
    }

    @Test("with history a pass reads the input frames before: iHistory[1] is the frame two ticks back, black before and after a temporalHistory reset")
    func historyLagsTwoFrames() throws {
        let owner = GLOwner(.init(backend: .egl))
        let sink = FirstPixels(reset: (owner, .temporalHistory, 5))
        let shader = writeShader("lag.frag", """
            // The input two frames back.
            void mainImage(out vec4 fragColor, in vec2 fragCoord) {
                fragColor = texture(iHistory[1], fragCoord / iResolution.xy);
            }
            """)
        let graph = try renderStateGraph(owner: owner, frames: 16, pass: { GLShaderPass(path: shader, history: 2) }, sink: sink)
        try graph.start()
        #expect(graph.waitUntilFinished(timeoutNanoseconds: 60_000_000_000))
        let stats = graph.stop()
        #expect(stats.ledgerProblems().isEmpty && stats.dropped(.late) == 0)
        #expect(sink.resetOutcome == .completed(image: nil))
        let seen = sink.seen
        #expect(seen.count == 16 && seen.prefix(2).allSatisfy { $0.pixel == 0 })
        // Each frame shows the one two ticks back, except two black ones once the reset has landed (after tick 5).
        let black = seen.indices.dropFirst(2).filter { seen[$0].pixel == 0 }
        #expect(black.count == 2 && black.allSatisfy { seen[$0].tick > 5 } && black[1] == black[0] + 1, "\(seen)")
        #expect(seen.indices.dropFirst(2).filter { !black.contains($0) }.allSatisfy { seen[$0].pixel == Pattern.pixel(x: 0, y: 0, tick: seen[$0].tick - 2) })
        #expect(owner.statistics().objectsAliveAtContextDestroy == 0)
    }
}
