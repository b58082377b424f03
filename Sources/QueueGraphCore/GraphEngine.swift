import Atomics
import CQueueGraphTrace
import Synchronization

/// The running state of one graph, shared by its scheduler threads: queues,
/// processors, creators and schedulers, wired from a validated config.
/// It creates no threads: `QueueGraph` (QueueGraphRuntime) gives each
/// scheduler a thread, `SteppedGraph` runs them all on the caller's.
///
/// Threading: `run` and `finish` run on the queue's scheduler thread;
/// `statistics`, `postFeedback`, input and state flags from any thread;
/// `abandon` only once every scheduler thread has stopped.
public final class GraphEngine: @unchecked Sendable {
    public let config: QueueGraphConfig
    public let plan: GraphPlan
    /// Every queue the graph has had, by index: those spliced in live are
    /// appended, those spliced out stay (renamed) so that their counters
    /// keep counting. Changed only while every thread is parked, under `structure`.
    @exclusivity(unchecked) var queues: [RunningQueue]
    /// Indices of the queues in the graph now, by name (not those spliced
    /// out). Its lock is held while the queues change, and by readers on
    /// other threads (`statistics`, `queue(named:)`).
    let structure: Locked<[String: Int]>
    let schedulers: [GroupScheduler]
    let creators: [any BufferCreator]
    /// The links to the parts that run elsewhere: `child` queues' child processes, `remote` queues' hosts.
    let links: [any PartLink]
    /// The format on each queue's out pads, settled when the graph was made.
    /// Changed only while every thread is parked.
    @exclusivity(unchecked) public internal(set) var linkFormats: [[LinkFormat]]
    /// This graph's `graph` field in trace events.
    public let traceID = Tracing.newGraphID()
    /// Set by a draining stop: sources end and inputs close. Each queue keeps
    /// a copy of this handle: reaching it through the engine would retain
    /// the engine, a reference count that every thread would write.
    let draining = UnsafeAtomic<Bool>.create(false)
    /// How many queues have ended (`RunningQueue.ended`).
    private let endedCount = Atomic<Int>(0)
    private let failureMessage = Locked<String?>(nil)
    /// Splices so far (removed queues are renamed `NAME~N`).
    let spliceCount = Atomic<Int>(0)
    /// Parameter values changed live, by queue and parameter.
    let liveParameters = Locked<[String: [String: ParameterValue]]>([:])

    /// Builds a graph from `config`. With `singleThread`, every queue runs on
    /// one scheduler (stepping mode) whatever its threading.
    ///
    /// Each `child` queue's part is replaced by a `ChildLink` that runs
    /// it in a child process, started through `launcher` (the runtime's: the
    /// core starts no process and no thread); `config` and `plan` stay as declared.
    @_spi(Runtime) public init(config declared: QueueGraphConfig, singleThread: Bool, launcher: (any ChildLauncher)?) throws {
        let declaredPlan = try declared.validate()
        if let part = declaredPlan.childParts.first, singleThread || launcher == nil {
            let threading = declared.queues[part.queue].threading.rawValue
            throw ConfigErrors(errors: [.init(.childBoundary, queue: declared.queues[part.queue].name, field: "threading",
                "found threading '\(threading)' in a graph \(singleThread ? "stepped on one thread" : "with no child launcher"), expected a running graph (createQueueGraph) to start its part")])
        }
        if declared.remoteLinks == nil, let part = declaredPlan.childParts.first(where: { declared.queues[$0.queue].threading == .remote }) {
            throw ConfigErrors(errors: [.init(.childBoundary, queue: declared.queues[part.queue].name, field: "threading",
                "found threading 'remote' in a graph with no remote transport, expected the config's remoteLinks set (QueueGraphRemote's RemoteHosts; qgraph run sets it)")])
        }
        if declared.remoteLinks == nil, let queue = declared.queues.first(where: { $0.serverHosts.contains { $0 != nil } }) {
            throw ConfigErrors(errors: [.init(.childBoundary, queue: queue.name, field: "server-hosts",
                "found servers on other hosts in a graph with no remote transport, expected the config's remoteLinks set (QueueGraphRemote's RemoteHosts; qgraph run sets it)")])
        }
        let config = declared.parentSide(plan: declaredPlan) { part in
            let queue = declared.queues[part.queue]
            guard queue.threading == .remote, let host = declared.host(named: queue.host) else {
                return ChildLink(config: declared, part: part, launcher: launcher!)
            }
            return declared.remoteLinks!.makeLink(config: declared, part: part, host: host)
        }
        let plan = declaredPlan.childParts.isEmpty ? declaredPlan : try config.validate()
        self.config = declared
        self.plan = declaredPlan
        let group = singleThread ? plan.group.map { _ in 0 } : plan.group
        let groupCount = singleThread ? 1 : plan.groupCount

        var problems: [ConfigError] = []
        let processors = config.queues.map { queue in
            var queue = queue
            for (server, name) in queue.serverHosts.enumerated() {
                if let host = declared.host(named: name) {
                    queue.remoteServers[server] = declared.remoteLinks!.makeServer(queue: queue.name, server: server, host: host)
                }
            }
            return queue.processor(queue)
        }
        for (q, processor) in zip(config.queues, processors) where processor is any BufferSource && !q.buffers.creates {
            problems.append(.init(.sourceWithoutBuffers, queue: q.name, field: "buffers",
                                  "a source's buffers must come from 'provider', 'upstream' or 'downstream', found '\(q.buffers.rawValue)'"))
        }
        for (q, processor) in zip(config.queues, processors) where q.servers > 1 {
            if (processor as? any CompoundProcessor)?.servers != q.servers {
                problems.append(.init(.notCompound, queue: q.name, field: "servers",
                                      "found \(q.servers) servers, but the queue's processor does not split its work across servers"))
            }
        }
        if !problems.isEmpty { throw ConfigErrors(errors: problems) }
        linkFormats = try plan.settleFormats(names: config.queues.map(\.name)) { i, arriving throws(FormatRefusal) in
            try (processors[i] as? any FormatAware)?.negotiate(arriving: arriving) ?? []
        }

        let ownCreators = config.queues.map { q in q.creator.map { $0(q) } }
        // A group whose processor is woken from another process sleeps on that processor's shared event.
        let events = (0..<groupCount).map { g in
            config.queues.indices.lazy.filter { group[$0] == g }
                .compactMap { (processors[$0] as? any SharedWakeEventProvider)?.sharedWakeEvent }.first ?? WakeEvent()
        }
        var queues: [RunningQueue] = []
        for (i, q) in config.queues.enumerated() {
            let acquire: [any BufferCreator] = switch q.buffers {
            case .provider: [ownCreators[i]!]
            case .upstream: [ownCreators[plan.upstreamProvider[i]!]!]
            case .downstream: plan.downstreamProviders[i].map { ownCreators[$0]! }
            case .forward, .reuse: []
            }
            let otherGroups = Set(plan.preds[i].map { group[$0] }).subtracting([group[i]])
            queues.append(RunningQueue(
                index: i, config: q, group: group[i], predecessors: plan.preds[i].count, processor: processors[i],
                sampleInterval: config.residencySampleInterval, acquireCreators: acquire, consumerEvent: events[group[i]],
                producerEvents: otherGroups.sorted().map { events[$0] }))
            for creator in acquire { creator.addAvailabilityObserver(events[group[i]]) }
        }
        for q in queues { q.outs = QueueRefs(plan.outs[q.index].map { queues[$0] }) }   // made empty: nothing to free
        schedulers = (0..<groupCount).map { g in GroupScheduler(index: g, queues: queues.filter { $0.group == g }, event: events[g]) }
        self.queues = queues
        structure = Locked(Dictionary(queues.map { ($0.name, $0.index) }, uniquingKeysWith: { first, _ in first }))
        self.creators = ownCreators.compactMap { $0 }
        for q in queues { (q.processor as? any ContextAttaching)?.attach(q.context) }
        links = queues.compactMap { $0.processor as? any PartLink }
        for scheduler in schedulers { scheduler.watch(preds: plan.preds, all: queues) }
        for q in queues { (q.engine, q.traceGraph, q.draining) = (self, traceID, draining) }
        for (i, creator) in creators.enumerated() { creator.traceAs(PoolTraceID(graph: traceID, pool: UInt32(i))) }
    }

    deinit { draining.destroy() }

    // MARK: Scheduler threads

    /// `queue` has ended (`RunningQueue.finish`): its group and the graph count it.
    func queueEnded(_ queue: RunningQueue) {
        schedulers[queue.group].unfinished -= 1
        if markEnded(queue) { wakeAll() }   // threads waiting for the whole graph to end may exit
    }

    func postFeedback(_ feedback: Feedback, buffer: Buffer, to queue: Int) {
        schedulers[queues[queue].group].post(feedback, buffer: buffer, to: queue)
    }

    // MARK: Any thread

    /// Why the graph stopped itself (a processor called `failGraph`), or nil.
    public var failure: String? { failureMessage.withLock { $0 } }

    /// Records the first failure and drains the graph.
    func fail(_ message: String) {
        let first = failureMessage.withLock { failure in
            defer { failure = failure ?? message }
            return failure == nil
        }
        if first { beginDrain() }
    }

    /// The queue in the graph now named `name`. Any thread.
    func queue(named name: String) -> RunningQueue? {
        structure.withLock { names in names[name].map { queues[$0] } }
    }

    /// The names of the graph's queues now, in order. Any thread.
    public var queueNames: [String] { structure.withLock { $0.sorted { $0.value < $1.value }.map(\.key) } }

    /// True when every queue has ended.
    public var isFinished: Bool { endedCount.load(ordering: .acquiring) == queues.count }

    /// Marks `queue` ended; true when it was the last.
    private func markEnded(_ queue: RunningQueue) -> Bool {
        guard !queue.ended.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        return endedCount.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == queues.count
    }

    public func statistics() -> GraphStatistics {
        let (queues, members, soleFeeds) = structure.withLock { _ in
            (self.queues, schedulers.map { $0.currentQueues.map(\.name) }, sourcesSoleFeeds())
        }
        var statistics = GraphStatistics(
            queues: queues.map { $0.statistics() },
            pools: creators.map { $0.statistics() },
            threads: schedulers.map { s in
                let since = s.busySince.load(ordering: .acquiring)
                let now = since == 0 ? 0 : monotonicNanoseconds()
                return ThreadStatistics(group: s.index, queues: members[s.index], invocations: s.invocations.value,
                                 busyNanoseconds: s.busyNanoseconds.value + (now > since ? Int(now - since) : 0), idleNanoseconds: s.idleNanoseconds.value,
                                 wakeups: s.wakeups.value)
            }
        )
        for (source, outs) in soleFeeds { statistics.queues[source].sent = outs.reduce(0) { $0 + statistics.queues[$1].arrived } }
        for link in links { link.addStatistics(to: &statistics) }
        return statistics
    }

    /// The parameter values changed while the graph ran, by queue and parameter.
    public var changedParameters: [String: [String: ParameterValue]] { liveParameters.withLock { $0 } }

    /// Each source that alone feeds the queues after it, with those queues
    /// (what they received is what it sent: a source pops nothing). Under `structure`.
    private func sourcesSoleFeeds() -> [(source: Int, outs: [Int])] {
        let preds = currentPreds()
        return queues.compactMap { queue in
            guard queue.isSource, queue.outs.count > 0 else { return nil }
            let outs = queue.outs.indices.map { pad in queue.outs.with(pad) { $0.index } }
            return outs.allSatisfy { preds[$0] == [queue.index] } ? (queue.index, outs) : nil
        }
    }

    /// The processor of the queue named `name` (to read its own statistics or
    /// reach its API, such as a GL owner's mailbox); nil when there is no such queue.
    /// Its methods keep their own threading rules.
    public func processor(ofQueue name: String) -> (any BufferProcessor)? {
        queue(named: name)?.processor
    }

    /// A handle for pushing buffers into a queue that has no upstream connection.
    public func input(_ name: String) throws(QueueGraphError) -> GraphInput {
        guard let queue = queue(named: name) else { throw .unknownQueue(name) }
        guard queue.isInput else { throw .notAnInputQueue(name) }
        return GraphInput(queue: queue)
    }

    /// Asks every source to end and every input to close; the graph then
    /// drains to end-of-stream.
    public func beginDrain() {
        draining.store(true, ordering: .sequentiallyConsistent)
        releaseHolds()
        for queue in queues where queue.isInput { GraphInput(queue: queue).endOfStream() }
        wakeAll()
    }

    public func wakeAll() {
        for scheduler in schedulers { scheduler.event.notify() }
        for queue in queues { queue.spaceEvent.notify() }
    }

    /// Releases every buffer still queued or held, as abandoned. Call only
    /// when no scheduler thread runs.
    public func abandon() {
        for queue in queues {
            _ = markEnded(queue)
            queue.abandonQueued()
        }
        for queue in queues where !queue.finished {
            queue.context.abandoning = true
            queue.processor.endOfStream(context: queue.context)
            queue.finished = true
            schedulers[queue.group].unfinished -= 1
        }
        for scheduler in schedulers { scheduler.discardFeedback() }
        wakeAll()
    }
}
