import QueueGraphCore

/// A render node network pulled by frame jobs (Lumiera's low-level model):
/// `render(_:)` invokes the exit node for one frame, and each node pulls
/// its inputs first, depth first, then does its work on the result.
///
/// A node's frame is its first input's, worked on in place, so the chain
/// of first inputs from the exit renders straight into the job's output
/// frame. A compositor's second input (the upper layer) renders into a
/// scratch frame locked from the engine's provider. The job's buffers are
/// its footprint: one scratch frame per compositor, plus what each work
/// locks for itself. They are announced before the job runs and released
/// when it ends; after a failure, through `emergencyCleanup`.
///
/// Nodes render each frame from its frame job alone (every built-in
/// generator and filter does), so a pool of workers may render several
/// frames at once, each on its own instance of the network.
///
/// Threading: one thread at a time; the scratch buffers come from the
/// calling thread's slice of the engine's provider.
public final class RenderNetwork {
    /// What a node does to the frame it pulled.
    public enum Step {
        /// A generator (no input) or a filter (one input) on the frame in place.
        case work(any FrameWork)
        /// Composites its second input over its first (layer 1 over layer 0), like the `composite` queue.
        case composite(opacity: Double)
    }

    /// One node: its name, its step and the nodes it pulls, in order.
    public struct Node {
        public let name: String
        public let step: Step
        public let inputs: [Int]
    }

    public let nodes: [Node]
    /// The node a job invokes: the one no other node pulls.
    public let exit: Int
    public let engine: EngineCtx
    /// Frames over the scratch buffers of a job, one per compositor (`scratch[node]`).
    private let scratch: [Int: Buffer]
    private let shells: ScratchShells
    /// The scratch buffers the running job holds.
    private var locked: [BufferHandle] = []
    /// The footprint for the last frame size, grouped by descriptor for `announce`.
    private var announced: (width: Int, height: Int, counts: [(BufferDescriptor, Int)]) = (0, 0, [])

    /// Checks the shape: a generator or filter pulls at most one node and a
    /// compositor exactly two; no node is pulled by two others; exactly one
    /// node (the exit) is pulled by none, and every node leads to it.
    public init(nodes: [Node], engine: EngineCtx = .shared) throws(NetworkRefusal) {
        guard !nodes.isEmpty else { throw NetworkRefusal(node: nil, "found no nodes, expected at least one") }
        var pulledBy = [Int?](repeating: nil, count: nodes.count)
        for (i, node) in nodes.enumerated() {
            switch node.step {
            case .work where node.inputs.count > 1:
                throw NetworkRefusal(node: i, "found \(node.inputs.count) inputs into '\(node.name)', expected at most one (only a compositor takes two)")
            case .composite where node.inputs.count != 2:
                throw NetworkRefusal(node: i, "found \(node.inputs.count) input\(node.inputs.count == 1 ? "" : "s") into the compositor '\(node.name)', expected two (layer 0, then layer 1)")
            default: break
            }
            for input in node.inputs {
                precondition(nodes.indices.contains(input), "input \(input) of '\(node.name)' is not a node")
                if let other = pulledBy[input] {
                    throw NetworkRefusal(node: input, "found '\(nodes[input].name)' feeding both '\(nodes[other].name)' and '\(node.name)', expected each node to feed one (render it twice, or use a tee between queues)")
                }
                pulledBy[input] = i
            }
        }
        let exits = nodes.indices.filter { pulledBy[$0] == nil }
        guard exits.count == 1 else {
            throw NetworkRefusal(node: exits.dropFirst().first, "found \(exits.count) nodes that feed no other (\(exits.map { "'\(nodes[$0].name)'" }.joined(separator: ", "))), expected one exit node")
        }
        var reached = Set<Int>()
        var stack = [exits[0]]
        while let i = stack.popLast() {
            if reached.insert(i).inserted { stack += nodes[i].inputs }
        }
        if let loose = nodes.indices.first(where: { !reached.contains($0) }) {
            throw NetworkRefusal(node: loose, "found '\(nodes[loose].name)' in a loop that never reaches the exit '\(nodes[exits[0]].name)', expected every node to lead to it")
        }
        self.nodes = nodes
        exit = exits[0]
        self.engine = engine
        let compositors = nodes.indices.filter { if case .composite = nodes[$0].step { true } else { false } }
        shells = ScratchShells(count: compositors.count)
        scratch = Dictionary(uniqueKeysWithValues: zip(compositors, shells.buffers))
    }

    /// Makes the network a config declares: its nodes' processors must be
    /// render nodes at full resolution (generators and filters) or compositors.
    public convenience init(_ config: NodeNetworkConfig, engine: EngineCtx = .shared) throws(NetworkRefusal) {
        var nodes: [Node] = []
        for (i, declared) in config.nodes.enumerated() {
            let step: Step
            switch declared.make() {
            case let node as RenderNode where node.resolution == nil: step = .work(node.work)
            case is RenderNode:
                throw NetworkRefusal(node: i, "found 'resolution: dynamic' on '\(declared.name)', expected full resolution in a network (a job renders each node whole)")
            case let compositor as Compositor: step = .composite(opacity: compositor.opacity)
            default:
                throw NetworkRefusal(node: i, "found the processor '\(declared.processor)' in a network, expected a render node (a generator or filter) or 'composite'")
            }
            nodes.append(Node(name: declared.name, step: step, inputs: declared.inputs))
        }
        try self.init(nodes: nodes, engine: engine)
    }

    /// The buffers one job on a `width`×`height` frame locks: a scratch
    /// frame per compositor and each work's own footprint.
    public func footprint(width: Int, height: Int) -> [BufferDescriptor] {
        nodes.flatMap { node -> [BufferDescriptor] in
            switch node.step {
            case .work(let work): work.footprint(width: width, height: height)
            case .composite: [.bytes(Frame.byteCount(width: width, height: height))]
            }
        }
    }

    /// Each work's `prepare`, on the thread that will finish them.
    public func prepare() throws { for case .work(let work) in nodes.map(\.step) { try work.prepare() } }

    /// Each work's `finish` (the stream ended).
    public func finish() { for case .work(let work) in nodes.map(\.step) { work.finish() } }

    /// Renders `output`'s frame job into it: announces the job's footprint,
    /// pulls the exit node, and releases the scratch buffers (through
    /// `emergencyCleanup` when a node throws, which fails the job).
    public func render(_ output: Frame) throws {
        let provider = engine.provider
        if announced.width != output.width || announced.height != output.height {
            var counts: [(BufferDescriptor, Int)] = []
            for descriptor in footprint(width: output.width, height: output.height) {
                if let i = counts.firstIndex(where: { $0.0 == descriptor }) { counts[i].1 += 1 } else { counts.append((descriptor, 1)) }
            }
            announced = (output.width, output.height, counts)
        }
        for (descriptor, count) in announced.counts { _ = provider.announce(count, of: descriptor) }
        do {
            try pull(exit, into: output, provider: provider)
        } catch {
            for handle in locked { try? provider.emergencyCleanup(handle, runDeinit: true) }
            locked.removeAll(keepingCapacity: true)
            throw error
        }
        for handle in locked { try provider.release(handle) }
        locked.removeAll(keepingCapacity: true)
    }

    /// Node `index`'s result, in `frame`.
    private func pull(_ index: Int, into frame: Frame, provider: BufferSlice) throws {
        let node = nodes[index]
        switch node.step {
        case .work(let work):
            if let input = node.inputs.first { try pull(input, into: frame, provider: provider) }
            try work.render(frame, engine: engine)
        case .composite(let opacity):
            try pull(node.inputs[0], into: frame, provider: provider)
            let handle = try provider.lock(.bytes(Frame.byteCount(width: frame.width, height: frame.height)))
            locked.append(handle)
            let shell = scratch[index]!
            let memory = try provider.bytes(handle)
            shell.payload = BufferPayload(kind: .heap, baseAddress: memory.baseAddress, capacity: memory.count)
            var job = frame.job
            job.layer = 1
            let upper = Frame.make(in: shell, width: frame.width, height: frame.height, job: job)
            try pull(node.inputs[1], into: upper, provider: provider)
            composite(upper.pixels, over: frame.pixels, count: frame.pixelCount, opacity: opacity)
            try provider.emit(handle)   // final, and handed to the compositor
        }
    }
}

/// The `Buffer`s a network shows its scratch buffers through as frames (a
/// `Frame` lives in a `Buffer`). Their memory is the job's, locked and
/// released through the provider; no holder ever takes or returns them.
///
/// Threading: as the network that owns it.
final class ScratchShells: BufferCreator, @unchecked Sendable {
    let name = "network scratch"
    private(set) var buffers: [Buffer] = []

    init(count: Int) {
        buffers = (0..<count).map { Buffer.allocate(creator: self, payload: BufferPayload(kind: .heap, baseAddress: nil, capacity: 0), slot: $0) }
    }

    deinit { for buffer in buffers { buffer.deallocate() } }

    func createBuffer(payloadSize: Int, pad: Int) -> Buffer? { nil }
    func destroyBuffer(_ buffer: Buffer, fate: BufferFate) { preconditionFailure("a network's scratch frame was held and released as a buffer") }
    func statistics() -> PoolStatistics { PoolStatistics(name: name, capacity: buffers.count) }
}
