/// What the child process of one `threading: .child` queue runs, or the
/// worker of a `threading: .remote` queue's host: the queue's thread group
/// (the queue and the `none` queues it feeds), and the connections by which
/// buffers come back to the parent.
///
/// The parent keeps the queue as a *link* (`ChildLink`) in place of the
/// whole part: buffers enter the link in the parent and the part's exits
/// become the link's pads. The child runs the part behind an ingress that
/// reads the link's buffers (`QueueGraphConfig.childSide`). A value, computed
/// while validating; any thread.
public struct ChildPart: Sendable, Equatable {
    /// Index of the `child` queue.
    public var queue: Int
    /// The part's queues: the `child` queue first, the others in declaration order.
    public var members: [Int]
    /// Connections from a member to a queue outside the part, in declaration
    /// order: the link's pad `k` carries `exits[k]` back to the parent.
    public var exits: [Connection]

    /// At most this many exits (a buffer's exits travel as a 64-bit mask).
    public static let maxExits = 64

    /// How many buffers its link lets out at once (a power of two, at most
    /// 65 536): room for every queue of the part to be full, plus what is on
    /// its way back.
    public func window(in config: QueueGraphConfig) -> Int {
        let needed = members.reduce(0, { $0 + config.queues[$1].size }) + 2 * exits.count + 4
        var window = 8
        while window < needed { window <<= 1 }
        return min(window, 1 << 16)
    }

    static func resolve(_ config: QueueGraphConfig, plan: GraphPlan) -> ([ChildPart], [ConfigError]) {
        var parts: [ChildPart] = []
        var errors: [ConfigError] = []
        let queues = config.queues
        let hosts = Set(config.hosts.map(\.name))
        for queue in queues where !queue.serverHosts.isEmpty {
            if queue.serverHosts.count != queue.servers {
                errors.append(.init(.childBoundary, queue: queue.name, field: "server-hosts",
                    "found \(queue.serverHosts.count) server hosts for \(queue.servers) servers, expected one per server ('local' for this machine)"))
            }
            for host in queue.serverHosts.compactMap({ $0 }) where !hosts.contains(host) {
                errors.append(.init(.childBoundary, queue: queue.name, field: "server-hosts",
                    "found host '\(host)', expected 'local' or one of the graph's hosts (\(hosts.isEmpty ? "it names none: add hosts:" : hosts.sorted().joined(separator: ", ")))"))
            }
            if queue.loadBalancer.mode == .db && queue.serverHosts.contains(where: { $0 != nil }) {
                errors.append(.init(.childBoundary, queue: queue.name, field: "server-hosts",
                    "found servers on other hosts with mode 'db', expected a pixel split (2D, vertical, horizontal): only tiles travel back"))
            }
        }
        for queue in queues where queue.host != nil && queue.threading != .remote {
            errors.append(.init(.childBoundary, queue: queue.name, field: "host",
                "found host '\(queue.host!)' on '\(queue.name)', whose threading is '\(queue.threading.rawValue)', expected host only with 'threading: remote'"))
        }
        for (q, queue) in queues.enumerated() where queue.threading == .child || queue.threading == .remote {
            let place = queue.threading == .child ? "in the child process of '\(queue.name)'" : "on host '\(queue.host ?? "?")' with '\(queue.name)'"
            if queue.threading == .remote {
                if let host = queue.host {
                    if !hosts.contains(host) {
                        errors.append(.init(.childBoundary, queue: queue.name, field: "host",
                            "found host '\(host)', expected one of the graph's hosts (\(hosts.isEmpty ? "it names none: add hosts:" : hosts.sorted().joined(separator: ", ")))"))
                    }
                } else {
                    errors.append(.init(.childBoundary, queue: queue.name, field: "threading",
                        "found threading 'remote' without a host, expected host: NAME (one of the graph's hosts)"))
                }
            }
            let members = [q] + queues.indices.filter { $0 != q && plan.group[$0] == plan.group[q] }
            let inside = Set(members)
            for m in members {
                if m != q, let outsider = plan.preds[m].first(where: { !inside.contains($0) }) {
                    errors.append(.init(.childBoundary, queue: queues[outsider].name, field: "connections",
                        "found a connection from '\(queues[outsider].name)' into '\(queues[m].name)', which runs \(place), expected only queues of that part to feed it (give '\(queues[m].name)' threading: thread to run it in the parent)"))
                }
                if queues[m].buffers != .forward && queues[m].buffers != .reuse {
                    errors.append(.init(.childBoundary, queue: queues[m].name, field: "buffers",
                        "found buffers '\(queues[m].buffers.rawValue)' on '\(queues[m].name)', which runs \(place) where no buffers can be made, expected 'forward' or 'reuse' (or give '\(queues[m].name)' threading: thread to run it in the parent)"))
                }
            }
            let names = Set(members.map { queues[$0].name })
            let exits = config.connections.filter { names.contains($0.from) && !names.contains($0.to) }
            if exits.count > ChildPart.maxExits {
                errors.append(.init(.childBoundary, queue: queue.name, field: "connections",
                    "found \(exits.count) connections leaving the part \(place), expected at most \(ChildPart.maxExits)"))
            }
            parts.append(ChildPart(queue: q, members: members, exits: exits))
        }
        return (parts, errors)
    }

    /// The child's name for its ingress (which reads the link) and for the
    /// queue that sends exit `k` back.
    static func ingressName(_ queue: String) -> String { "\(queue)#in" }
    static func exitName(_ queue: String, _ k: Int) -> String { "\(queue)#out\(k)" }
}

extension QueueGraphConfig {
    /// The parent's side of a graph with `child` queues: each part replaced
    /// by its link (`makeLink(part)` makes the link's processor), the part's
    /// exits leaving from the link's pads. The link keeps the queue's name,
    /// size and sync; its management is `default` and its discipline FIFO
    /// (the queue's own policies act in the child, where its buffers wait).
    /// Without `child` queues, the config itself.
    @_spi(Runtime) public func parentSide(plan: GraphPlan,
                                         makeLink: @escaping @Sendable (ChildPart) -> any BufferProcessor) -> QueueGraphConfig {
        guard !plan.childParts.isEmpty else { return self }
        var copy = self
        var removed = Set<String>()
        var exits: [Connection] = []
        for part in plan.childParts {
            let q = queues[part.queue]
            var link = QueueConfig(name: q.name, size: q.size, sync: q.sync, outPads: part.exits.count,
                                   child: q.child, processor: { _ in makeLink(part) })
            link.threading = .none
            copy.queues[part.queue] = link
            removed.formUnion(part.members.dropFirst().map { queues[$0].name })
            let names = Set(part.members.map { queues[$0].name })
            copy.connections.removeAll { names.contains($0.from) }
            exits += part.exits.enumerated().map { Connection(from: q.name, pad: $0.offset, to: $0.element.to) }
        }
        copy.queues.removeAll { removed.contains($0.name) }
        copy.connections += exits
        return copy
    }

    /// The child's graph for the part of `child` queue `name`: an ingress
    /// source (made by `makeIngress`, buffers from `remote`) feeding the
    /// queue, the part's queues as declared, and one queue per exit whose
    /// processor (`makeExit(k)`) sends buffers back to the parent.
    @_spi(Runtime) public func childSide(part: ChildPart, makeIngress: @escaping @Sendable () -> any BufferProcessor,
                                        remote: @escaping @Sendable () -> any BufferCreator,
                                        makeExit: @escaping @Sendable (Int) -> any BufferProcessor) -> QueueGraphConfig {
        let q = queues[part.queue]
        var child = QueueGraphConfig(residencySampleInterval: residencySampleInterval, name: "\(name)/\(q.name)",
                                     queueStatsIntervalNanoseconds: queueStatsIntervalNanoseconds)
        let ingress = ChildPart.ingressName(q.name)
        child.queues.append(QueueConfig(name: ingress, size: 1, buffers: .provider, processor: { _ in makeIngress() },
                                        creator: { _ in remote() }))
        for m in part.members {
            var member = queues[m]
            (member.threading, member.host) = (.none, nil)
            child.queues.append(member)
        }
        let names = Set(part.members.map { queues[$0].name })
        child.connections.append(Connection(from: ingress, to: q.name))
        child.connections += connections.filter { names.contains($0.from) && names.contains($0.to) }
        for (k, exit) in part.exits.enumerated() {
            let exitName = ChildPart.exitName(q.name, k)
            child.queues.append(QueueConfig(name: exitName, size: 2, outPads: 0, processor: { _ in makeExit(k) }))
            child.connections.append(Connection(from: exit.from, pad: exit.pad, to: exitName))
        }
        return child
    }
}
