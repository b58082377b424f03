/// A processor that graph files can name: its parameters, how many out pads
/// it drives, and how to make one.
///
/// Threading: a value; `make` is called once per running graph, before it starts.
public struct ProcessorSpec: Sendable {
    public var name: String
    public var summary: String
    public var parameters: [ParameterSpec]
    /// How many out pads it can drive (0 for a sink).
    public var outputs: ClosedRange<Int>
    /// It produces buffers (a `BufferSource`) and takes no input.
    public var isSource: Bool
    /// The payload bytes of each buffer it acquires, from its parameters:
    /// its pool's buffer size by default, and the least a pool may give.
    public var payloadBytes: (@Sendable (Parameters) -> Int)?
    /// Makes the creator of its `provider` queue (name, buffer count, and
    /// whether its memory must be shared with child processes because the
    /// graph has `child` queues) instead of a `BufferPool` (the render
    /// dispatcher's `FrameCreator`).
    public var makeCreator: (@Sendable (_ name: String, _ count: Int, _ sharedWithChildren: Bool) -> any BufferCreator)?
    public var make: @Sendable (Parameters) -> any BufferProcessor
    /// The split modes it can do as a compound queue (`servers` ≥ 2); empty: none.
    public var splitModes: Set<SplitMode> = []
    /// Makes its compound processor for a queue with `servers` ≥ 2 (the
    /// queue's config gives the servers and the load balancer).
    public var makeCompound: (@Sendable (Parameters, QueueConfig) -> any CompoundProcessor)?
    /// Why these parameters cannot run split across a compound queue's
    /// servers, or nil when they can (a graph file is refused at `servers`).
    public var refuseSplit: (@Sendable (Parameters) -> String?)?
    /// Makes a processor that pulls a node network (the `pull` queue, whose
    /// graph file names the network with `network: NAME`); throws when the
    /// network cannot be pulled. A graph file calls it once when read, so
    /// making must have no side effect (threads start with the graph).
    public var makeNetworked: (@Sendable (Parameters, NodeNetworkConfig) throws(NetworkRefusal) -> any BufferProcessor)?
    /// Where its queue must sit; a graph file that puts it elsewhere is refused at the queue's `processor` line.
    public var placement: Placement = .anywhere
    /// The buffers it can handle (`.any` unless it needs frames, say).
    public var takes: BufferKinds = .any
    /// The buffers it sends on; nil: what it takes (a pass-through such as
    /// `identity` or `tee`), or, for a source, buffers of any kind.
    public var makes: BufferKinds?
    /// What it sends for what arrives, from its parameters alone (the
    /// `FormatAware` answer without making the processor): a graph file
    /// whose links it refuses is refused when read, at the link. Nil: its
    /// formats are known only once its processor is made (`.unknown` here).
    public var negotiate: (@Sendable (Parameters, _ arriving: [LinkFormat]) throws(FormatRefusal) -> [LinkFormat])?

    /// Sets `negotiate` to ask a processor made from the parameters: for
    /// processors whose making has no side effect (opens no file, claims no output).
    public mutating func negotiateByMaking() {
        let make = self.make
        negotiate = { p, arriving throws(FormatRefusal) in try (make(p) as? any FormatAware)?.negotiate(arriving: arriving) ?? [] }
    }

    /// Where a processor's queue may sit in the graph.
    public enum Placement: Sendable, Equatable {
        case anywhere
        /// On a queue that begins a thread (`threading: thread`): the processor owns that thread (the GL owner).
        case beginsThread
        /// On a `threading: none` queue that runs on the thread begun by a queue with this processor.
        case onThreadOf(String)
    }

    public init(name: String, summary: String, parameters: [ParameterSpec] = [], outputs: ClosedRange<Int>,
                isSource: Bool = false, takes: BufferKinds = .any, makes: BufferKinds? = nil, payloadBytes: (@Sendable (Parameters) -> Int)? = nil,
                makeCreator: (@Sendable (_ name: String, _ count: Int, _ sharedWithChildren: Bool) -> any BufferCreator)? = nil,
                make: @escaping @Sendable (Parameters) -> any BufferProcessor) {
        self.name = name
        self.summary = summary
        self.parameters = parameters
        self.outputs = outputs
        self.isSource = isSource
        self.takes = takes
        self.makes = makes
        self.payloadBytes = payloadBytes
        self.makeCreator = makeCreator
        self.make = make
    }
}

/// What kinds of buffer a processor takes or makes: plain bytes (`testsrc`),
/// video frames (`render`, the render nodes, `mediasrc`'s video pad) or
/// audio (`mediasrc`'s audio pad). `LinkFormat` says more once the graph
/// is created: the pixel format, size and rate, or the sample format.
/// A link is refused when nothing its upstream can make is taken downstream.
///
/// Threading: a value; any thread.
public struct BufferKinds: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let bytes = BufferKinds(rawValue: 1)
    public static let frames = BufferKinds(rawValue: 2)
    public static let audio = BufferKinds(rawValue: 4)
    public static let any: BufferKinds = [.bytes, .frames, .audio]

    public var description: String {
        self == .any ? "any buffers" : [(BufferKinds.bytes, "bytes"), (.frames, "frames"), (.audio, "audio")].filter { contains($0.0) }.map(\.1).joined(separator: " or ")
    }
}
