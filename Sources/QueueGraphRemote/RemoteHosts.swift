@_spi(Runtime) import QueueGraphCore

/// QueueGraph's remote transport for `threading: remote` queues and
/// compound servers on hosts (`server-hosts`): set it as a config's
/// `remoteLinks` and each remote queue's part runs on its host's worker
/// (`qgraph worker`), as do the parts of remote servers; links and servers
/// reach the workers over UCX and prove `key` to them. `file` is the graph file the workers are sent (its text, and
/// its path, which names the files it refers to on every host).
///
/// Threading: a value; any thread.
public struct RemoteHosts: RemoteLinkMaker {
    public var key: SharedKey
    public var file: (text: String, path: String)
    public var timing: RemoteTiming

    public init(key: SharedKey, file: (text: String, path: String), timing: RemoteTiming = RemoteTiming()) {
        self.key = key
        self.file = file
        self.timing = timing
    }

    public func makeLink(config: QueueGraphConfig, part: ChildPart, host: RemoteHost) -> any PartLink {
        RemoteLink(config: config, part: part, host: host, key: key, file: file, timing: timing)
    }

    public func makeServer(queue: String, server: Int, host: RemoteHost) -> any Sendable {
        RemoteServer(queue: queue, server: server, host: host, key: key, file: file, timing: timing)
    }
}
