#if canImport(Glibc)
import Glibc
#endif

/// Makes a queue's processor; called once per running graph, before it starts.
public typealias BufferProcessorFactory = @Sendable (QueueConfig) -> any BufferProcessor
/// Makes a queue's buffer creator; called once per running graph, before it starts.
public typealias BufferCreatorFactory = @Sendable (QueueConfig) -> any BufferCreator

/// The declaration of one queue (the seed's `QueueConfig`): its size, its
/// five policies and the factories of its processor and buffer creator.
///
/// A value type: build it on any thread, copy it freely, use it in any number
/// of graphs.
public struct QueueConfig: Sendable {
    /// Unique within its graph; used in connections, statistics and errors.
    public var name: String
    /// Capacity in buffers (at least 1).
    public var size: Int
    /// What happens when it is full.
    public var management: QueueManagement
    /// The order buffers leave in.
    public var discipline: QueueDiscipline
    /// Feedback to the sender.
    public var sync: BufferSync
    /// Which thread runs its processor.
    public var threading: QueueThreading
    /// Where its processor's new buffers come from.
    public var buffers: BufferManagement
    /// Optional bound on the queued payload bytes.
    public var byteBound: Int?
    /// Number of outgoing pads (0 for a sink).
    public var outPads: Int
    /// Threads that share each buffer's work (a compound queue, seed 004);
    /// more than 1 needs a processor that is a `CompoundProcessor`.
    public var servers: Int
    /// How a compound queue splits the work and moves the split.
    public var loadBalancer: LoadBalancerConfig
    /// How a `threading: .child` queue starts (and restarts) its child;
    /// its `restart` also says what a `remote` queue does when its host fails.
    public var child: ChildOptions
    /// The host a `threading: .remote` queue runs on: a name in `QueueGraphConfig.hosts`.
    public var host: String?
    /// Where a compound queue's servers run: one entry per server, nil for
    /// this machine, else a name in `QueueGraphConfig.hosts`, whose worker
    /// renders that server's parts. Empty: every server here.
    public var serverHosts: [String?] = []
    /// The remote servers the engine made for `serverHosts` (by server), for
    /// the processor factory: a compound processor renders those servers'
    /// parts through them (QueueGraphRender's `PartServer`). Set by the engine only.
    public var remoteServers: [Int: any Sendable] = [:]
    /// Makes the processor.
    public var processor: BufferProcessorFactory
    /// Makes the buffer creator; required for (and only for) `buffers: .provider`.
    public var creator: BufferCreatorFactory?
    /// The processor's parameters that may change while the graph runs
    /// (`QueueGraph.setParameter` checks values against them); a graph
    /// file sets those its registry marks `live`.
    public var liveParameters: [ParameterSpec] = []

    public init(
        name: String,
        size: Int = 64,
        management: QueueManagement = .default,
        discipline: QueueDiscipline = .fifo,
        sync: BufferSync = .none,
        threading: QueueThreading = .none,
        buffers: BufferManagement = .forward,
        byteBound: Int? = nil,
        outPads: Int = 1,
        servers: Int = 1,
        loadBalancer: LoadBalancerConfig = LoadBalancerConfig(),
        child: ChildOptions = ChildOptions(),
        host: String? = nil,
        processor: @escaping BufferProcessorFactory,
        creator: BufferCreatorFactory? = nil
    ) {
        self.name = name
        self.size = size
        self.management = management
        self.discipline = discipline
        self.sync = sync
        self.threading = threading
        self.buffers = buffers
        self.byteBound = byteBound
        self.outPads = outPads
        self.servers = servers
        self.loadBalancer = loadBalancer
        self.child = child
        self.host = host
        self.processor = processor
        self.creator = creator
    }
}

/// A connection from one queue's outgoing pad to another queue.
public struct Connection: Sendable, Hashable {
    public var from: String
    public var pad: Int
    public var to: String

    public init(from: String, pad: Int = 0, to: String) {
        self.from = from
        self.pad = pad
        self.to = to
    }
}

extension QueueConfig {
    /// The most servers a compound queue may have.
    public static let maxServers = 64
}

/// How a `threading: .child` queue runs its child process: which program
/// (it must rebuild the same graph and call `ChildProgram.run`, as
/// `qgraph child` does for graph files) and what to do when it dies.
///
/// The runtime appends `--qg-child <queue> <channel>` to `arguments`.
/// A value; build it on any thread.
public struct ChildOptions: Sendable, Equatable {
    /// What the graph does when the child crashes or is killed.
    public enum Restart: String, Sendable, CaseIterable {
        /// The graph stops with an error (`QueueGraph.failure`).
        case never
        /// A new child is started and the stream goes on.
        case always
    }

    /// The program to run; this program by default.
    public var executable: String
    /// Arguments that make `executable` rebuild the graph (e.g. `["child", "graph.yaml"]`).
    public var arguments: [String]
    public var restart: Restart

    public init(executable: String = "/proc/self/exe", arguments: [String] = [], restart: Restart = .never) {
        self.executable = executable
        self.arguments = arguments
        self.restart = restart
    }
}

/// A host that runs parts of graphs: where its worker (`qgraph worker`) listens.
/// A value; build it on any thread.
public struct RemoteHost: Sendable, Hashable {
    /// What `host:` of a `remote` queue names.
    public var name: String
    /// An IPv4 or IPv6 address (a literal: resolving names is left to the caller).
    public var address: String
    public var port: Int
    /// How long a silence from the host (no message, no heartbeat) means it
    /// is gone, in milliseconds; nil: the transport's default (150 ms).
    /// Longer on hosts that can be starved for that long.
    public var silenceMilliseconds: Int?

    public init(name: String, address: String, port: Int, silenceMilliseconds: Int? = nil) {
        self.name = name
        self.address = address
        self.port = port
        self.silenceMilliseconds = silenceMilliseconds
    }

    /// Whether `text` is an IPv4 or IPv6 address literal.
    public static func isAddress(_ text: String) -> Bool {
        var bytes = [UInt8](repeating: 0, count: 16)
        return inet_pton(AF_INET, text, &bytes) == 1 || inet_pton(AF_INET6, text, &bytes) == 1
    }
}

/// Makes the link that stands, in the coordinator's graph, for the part a
/// `remote` queue runs on another host (QueueGraphRemote provides one; the
/// core moves no bytes across a network). The link holds each buffer it
/// sends until the host lets it go, like a child's link.
///
/// Threading: any thread; the link it makes runs on its queue's thread.
public protocol RemoteLinkMaker: Sendable {
    /// The link for `part` of `config` (`part.queue` is the `remote` queue, on `host`).
    func makeLink(config: QueueGraphConfig, part: ChildPart, host: RemoteHost) -> any PartLink
    /// Server `server` of compound queue `queue`, whose parts `host`'s worker renders.
    func makeServer(queue: String, server: Int, host: RemoteHost) -> any Sendable
}

/// A link to a part that runs elsewhere (a child process, a remote host):
/// it adds the far side's figures to the graph's statistics.
///
/// Threading: `addStatistics` from any thread.
public protocol PartLink: BufferProcessor {
    /// Adds the link's figures and the far side's queues and thread to a snapshot.
    func addStatistics(to statistics: inout GraphStatistics)
}
