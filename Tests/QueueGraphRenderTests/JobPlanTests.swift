import QueueGraphCore
@testable import QueueGraphRender
import Testing

@Suite("Planning information: invocation ids and job footprints (Lumiera's planning step)")
struct JobPlanTests {
    func job(_ number: Int64) -> FrameJob { FrameJob(tick: number + 100, number: number, mediaTime: 0, deadline: .max, rate: FrameRate(25)) }

    @Test("the invocation id is reproducible: the same node, media frame and size give the same id, anything else another")
    func invocationIDs() throws {
        var registry = ProcessorRegistry.builtIn
        registry.registerRender()
        func node(_ radius: Int) -> RenderNode {
            registry["boxblur"]!.make(Parameters(["radius": .integer(radius)])) as! RenderNode
        }
        let (a, b) = (node(3), node(3))
        #expect(a.identity == "boxblur radius=3")
        #expect(a.plan(job(7), width: 64, height: 36) == b.plan(job(7), width: 64, height: 36))   // two nodes, one job: a cache would share it
        let id = a.plan(job(7), width: 64, height: 36).invocation
        #expect(a.plan(FrameJob(tick: 0, number: 7, mediaTime: 0, deadline: 5, rate: FrameRate(25)), width: 64, height: 36).invocation == id,
                "the tick and deadline are not the frame")
        #expect(Set([id, a.plan(job(8), width: 64, height: 36).invocation, node(4).plan(job(7), width: 64, height: 36).invocation,
                     a.plan(job(7), width: 32, height: 36).invocation]).count == 4)
        // Stable across runs and builds (unlike Swift's seeded Hasher): FNV-1a of "boxblur radius=3|7|64x36", worked out apart.
        #expect(id == 0x617f_2d02_8ed1_b615)
    }

    @Test("the buffers a job needs are known before it runs, announced, and exactly those are locked when it runs")
    func footprint() throws {
        let engine = EngineCtx(manager: BufferManager())
        let node = RenderNode(BoxBlur(radius: 2), engine: engine)
        let plan = node.plan(job(0), width: 40, height: 20)
        #expect(plan.buffers == [.bytes(40 * 20 * 4)])
        #expect(RenderNode(Plasma()).plan(job(0), width: 40, height: 20).buffers.isEmpty)
        let creator = FrameCreator(name: "plan", count: 1, engine: engine)
        let buffer = creator.createBuffer(payloadSize: Frame.byteCount(width: 40, height: 20), pad: 0)!
        defer { creator.destroyBuffer(buffer, fate: .consumed) }
        let frame = Frame.make(in: buffer, width: 40, height: 20, job: job(0))
        let before = engine.provider.statistics
        for descriptor in plan.buffers { _ = engine.provider.announce(1, of: descriptor) }
        let announced = engine.provider.statistics
        try node.work.render(frame, engine: engine)
        let after = engine.provider.statistics
        #expect(after.locks - announced.locks == plan.buffers.count && after.releases - announced.releases == plan.buffers.count)
        #expect(after.allocations == announced.allocations && announced.allocations > before.allocations, "announced ahead, nothing allocated in the job")
    }
}
