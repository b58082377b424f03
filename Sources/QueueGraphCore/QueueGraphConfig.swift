/// A graph declared as queues and connections (the seed's
/// `QueueGraphConfig`). A value and a template: every graph made from it is
/// independent, with its own processors, creators and threads.
///
/// Build and validate it on any thread.
public struct QueueGraphConfig: Sendable {
    public var queues: [QueueConfig]
    public var connections: [Connection]
    /// Every n-th buffer through a queue has its residency timed (1 times all).
    public var residencySampleInterval: Int
    /// The graph's name in trace events (`graph_start`).
    public var name: String
    /// How often a running graph emits `queue_stats` trace events while a
    /// session enables them (0: only once, at stop). A non-zero interval
    /// costs one extra, mostly sleeping, thread per graph.
    public var queueStatsIntervalNanoseconds: Int64
    /// The hosts `remote` queues run on.
    public var hosts: [RemoteHost] = []
    /// Makes the links of `remote` queues (QueueGraphRemote's); required when there are any.
    public var remoteLinks: (any RemoteLinkMaker)?

    /// The host named `name` in `hosts`; nil for nil or no such host.
    public func host(named name: String?) -> RemoteHost? { hosts.first { $0.name == name } }

    public init(queues: [QueueConfig] = [], connections: [Connection] = [], residencySampleInterval: Int = 16,
                name: String = "graph", queueStatsIntervalNanoseconds: Int64 = 0) {
        self.queues = queues
        self.connections = connections
        self.residencySampleInterval = max(1, residencySampleInterval)
        self.name = name
        self.queueStatsIntervalNanoseconds = max(0, queueStatsIntervalNanoseconds)
    }

    /// Adds a queue and returns self, for building in one expression.
    public func adding(_ queue: QueueConfig) -> Self {
        var copy = self
        copy.queues.append(queue)
        return copy
    }

    /// Connects `from`'s pad to `to` and returns self.
    public func connecting(_ from: String, pad: Int = 0, to: String) -> Self {
        var copy = self
        copy.connections.append(Connection(from: from, pad: pad, to: to))
        return copy
    }

    /// The names of its sinks (queues without out pads): where `GraphStatistics.delivered(sinks:)` counts.
    public var sinkNames: Set<String> { Set(queues.filter { $0.outPads == 0 }.map(\.name)) }

    /// Throws every problem at once, or returns the resolved topology.
    @discardableResult
    public func validate() throws(ConfigErrors) -> GraphPlan {
        let (plan, errors) = GraphPlan.resolve(self)
        if !errors.isEmpty { throw ConfigErrors(errors: errors) }
        return plan
    }
}
