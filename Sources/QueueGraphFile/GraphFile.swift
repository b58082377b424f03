import Foundation
import QueueGraphCore

/// A graph file after checking: the `QueueGraphConfig` it declares, and what
/// each queue was declared with (processor, parameters, pool) and where.
///
/// Load with `GraphFile.load(path:)`, `GraphFile(yaml:file:)` or
/// `GraphFile(launch:)`; every problem in the text is reported at once, each
/// with its file, line and column.
///
/// Threading: a value; any thread.
public struct GraphFile: Sendable {
    /// One queue as declared.
    public struct Queue: Sendable {
        public var name: String
        public var processor: String
        public var parameters: Parameters
        /// The pool a `provider` queue creates: buffer count and payload bytes.
        public var pool: (count: Int, bufferSize: Int)?
        /// The render node network it pulls (`network: NAME`).
        public var network: String?
        public var location: SourceLocation
    }

    /// A render node network as declared under `networks`.
    public struct Network: Sendable {
        /// One node: its processor and parameters, and the nodes it pulls (indices, in order).
        public struct Node: Sendable {
            public var name: String
            public var processor: String
            public var parameters: Parameters
            public var inputs: [Int]
        }
        public var name: String
        public var nodes: [Node]
    }

    public var file: String
    public var config: QueueGraphConfig
    public var queues: [Queue]
    /// The render node networks, in declaration order.
    public var networks: [Network] = []
    /// Where each of `config.connections` was written.
    public var connectionLocations: [SourceLocation] = []

    /// Reads and checks a graph file.
    public static func load(path: String, registry: ProcessorRegistry = .builtIn) throws(GraphFileErrors) -> GraphFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            throw GraphFileErrors([GraphFileError(SourceLocation(file: path, line: 1, column: 1), "the file \(reason)")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw GraphFileErrors([GraphFileError(SourceLocation(file: path, line: 1, column: 1), "found bytes that are not UTF-8, expected YAML text")])
        }
        return try GraphFile(yaml: text, file: path, registry: registry)
    }

    /// Checks YAML text; `file` names it in errors.
    public init(yaml: String, file: String, registry: ProcessorRegistry = .builtIn) throws(GraphFileErrors) {
        let root = try SyntaxNode.parseYAML(yaml, file: file)
        var checker = GraphChecker(file: file, registry: registry)
        self = try checker.check(root)
    }

    init(file: String, config: QueueGraphConfig, queues: [Queue], networks: [Network], connectionLocations: [SourceLocation]) {
        self.file = file
        self.config = config
        self.queues = queues
        self.networks = networks
        self.connectionLocations = connectionLocations
    }

    /// Errors of creating this file's graph (`QueueGraphConfig.createQueueGraph`),
    /// located in the file: a link's refusal (`formatRefused`) at the link's
    /// line, any other at its queue's name.
    public func locate(_ errors: ConfigErrors) -> GraphFileErrors {
        GraphFileErrors(errors.errors.map { problem in
            let link = problem.from.flatMap { from in
                config.connections.indices.first { config.connections[$0].from == from && config.connections[$0].to == problem.queue }
            }
            let location = link.map { connectionLocations[$0] }
                ?? queues.first { $0.name == problem.queue }?.location ?? SourceLocation(file: file, line: 1, column: 1)
            return GraphFileError(location, "queue \(quoted(problem.queue)): \(problem.message)")
        })
    }
}

/// Turns a syntax tree into a `GraphFile`, collecting every problem.
struct GraphChecker {
    let file: String
    let registry: ProcessorRegistry
    private var errors: [GraphFileError] = []
    /// The load balancers defined under `loadbalancers`, by name.
    private var namedBalancers: [String: LoadBalancerConfig] = [:]
    /// The node networks defined under `networks`, by name.
    private var namedNetworks: [String: DeclaredNetwork] = [:]
    private var networkOrder: [String] = []
    /// Networks already refused (each is reported once, however many queues name it).
    private var refusedNetworks: Set<String> = []

    init(file: String, registry: ProcessorRegistry) {
        self.file = file
        self.registry = registry
    }

    /// Keys a queue may have.
    static let queueKeys = ["name", "processor", "parameters", "size", "management", "red", "discipline", "sync",
                            "threading", "buffers", "byte-bound", "pads", "pool", "servers", "loadbalancer", "restart", "network", "host", "server-hosts"]
    /// `split` is Equalizer's word for `mode` (its configuration's `split [ 2D | VERTICAL | HORIZONTAL | DB ]`).
    static let loadBalancerKeys = ["mode", "split", "damping", "boundary", "resistance", "weights"]
    static let graphKeys = ["queues", "connections", "loadbalancers", "networks", "hosts", "residency-sample-interval", "stats-interval-ms"]
    static let hostKeys = ["name", "address", "port", "silence-ms"]
    static let networkKeys = ["name", "nodes", "connections"]
    static let nodeKeys = ["name", "processor", "parameters"]

    /// One queue as read: its `QueueConfig` (processor factory, out pads and
    /// pool are settled once the whole file is read) and where each key was.
    private struct Declared {
        var config: QueueConfig
        var nameLocation: SourceLocation
        var spec: ProcessorSpec?
        var parameters: [String: ParameterValue] = [:]
        /// `pads` as written; otherwise derived from the connections.
        var pads: Int?
        var poolCount: Int?
        var poolBufferSize: Int?
        /// Where the load balancer's mode was written.
        var modeLocation: SourceLocation?
        /// The network it pulls (`network: NAME`).
        var network: String?
        /// Where each key was written (its value), for errors found later.
        var locations: [String: SourceLocation] = [:]

        var name: String { config.name }
    }

    private struct Link {
        var from: String
        var pad: Int
        var to: String
        var location: SourceLocation
        var fromLocation: SourceLocation
        var toLocation: SourceLocation
    }

    mutating func check(_ root: SyntaxNode) throws(GraphFileErrors) -> GraphFile {
        guard let top = fields(of: root, allowed: Self.graphKeys, what: "the graph") else { throw GraphFileErrors(errors) }
        var sampleInterval = 16
        if let node = top["residency-sample-interval"] { sampleInterval = integer(node, in: 1...1_000_000) ?? 16 }
        var statsInterval = 100
        if let node = top["stats-interval-ms"] { statsInterval = integer(node, in: 0...3_600_000) ?? 100 }
        if let node = top["loadbalancers"] { checkNamedBalancers(node) }
        if let node = top["networks"] { checkNetworks(node) }
        let hosts = top["hosts"].map { checkHosts($0) } ?? []
        var declared: [Declared] = []
        if let node = top["queues"] {
            if case .sequence(let items, _) = node, !items.isEmpty {
                for item in items { if let queue = checkQueue(item) { declared.append(queue) } }
            } else {
                error(node.location, "found \(node.kindName), expected a list of queues")
            }
        } else {
            error(root.location, "found no 'queues', expected a list of queues")
        }
        var links: [Link] = []
        let errorsBeforeLinks = errors.count
        if let node = top["connections"] {
            if case .sequence(let items, _) = node {
                for item in items { if let link = checkConnection(item) { links.append(link) } }
            } else {
                error(node.location, "found \(node.kindName), expected a list of connections like 'a -> b'")
            }
        }
        checkNames(&declared)
        if !declared.isEmpty { checkLinks(&links, declared: declared) }
        let connections = links.map { Connection(from: $0.from, pad: $0.pad, to: $0.to) }
        // A connection that could not be read would otherwise also show up as a missing one.
        resolvePads(&declared, links: links, reportMissing: errors.count == errorsBeforeLinks)
        resolvePools(&declared, connections: connections)
        checkKinds(declared, links: links)
        if !errors.isEmpty { throw GraphFileErrors(errors) }

        let name = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        // A child process (`threading: child`) reads the same file: this
        // program, `qgraph child FILE`; pools are then shared with it. A
        // remote host's worker reads it too; pools are then registered with UCX.
        let hasChildren = declared.contains { $0.config.threading == .child || $0.config.threading == .remote }
        let absolute = URL(fileURLWithPath: file).standardizedFileURL.path
        var config = QueueGraphConfig(connections: connections, residencySampleInterval: sampleInterval, name: name,
                                      queueStatsIntervalNanoseconds: Int64(statsInterval) * 1_000_000)
        config.hosts = hosts
        var queues: [GraphFile.Queue] = []
        for q in declared {
            var queue = q.config
            if queue.threading == .child { queue.child.arguments = ["child", absolute] }   // run by this program (`/proc/self/exe`)
            let (spec, parameters) = (q.spec!, Parameters(q.parameters))
            if queue.servers > 1, let makeCompound = spec.makeCompound {
                queue.processor = { config in makeCompound(parameters, config) }
            } else if let makeNetworked = spec.makeNetworked, let network = q.network.flatMap({ namedNetworks[$0]?.config }) {
                queue.processor = { _ in try! makeNetworked(parameters, network) }   // it made one when the file was read
            } else {
                queue.processor = { _ in spec.make(parameters) }
                queue.liveParameters = spec.parameters.filter(\.live)
            }
            var pool: (count: Int, bufferSize: Int)?
            if queue.buffers == .provider, let count = q.poolCount, let size = q.poolBufferSize {
                pool = (count, size)
                let name = q.name
                if let makeCreator = spec.makeCreator {
                    queue.creator = { _ in makeCreator(name, count, hasChildren) }
                } else {
                    queue.creator = { _ in BufferPool(name: name, count: count, payloadCapacity: size, shared: hasChildren) }
                }
            }
            config.queues.append(queue)
            queues.append(GraphFile.Queue(name: q.name, processor: spec.name, parameters: parameters, pool: pool,
                                          network: q.network, location: q.nameLocation))
        }
        do {
            let plan = try config.validate()
            checkPlacement(declared, plan: plan)
            if errors.isEmpty { checkFormats(declared, plan: plan, links: links) }
        } catch {
            for problem in error.errors { self.error(location(of: problem, in: declared, links: links), problem.message) }
        }
        if !errors.isEmpty { throw GraphFileErrors(errors) }
        let networks = networkOrder.map { name in
            let network = namedNetworks[name]!
            return GraphFile.Network(name: name, nodes: zip(network.config.nodes, network.parameters).map { node, parameters in
                GraphFile.Network.Node(name: node.name, processor: node.processor, parameters: parameters, inputs: node.inputs)
            })
        }
        return GraphFile(file: file, config: config, queues: queues, networks: networks, connectionLocations: links.map(\.location))
    }

    /// Refuses each link whose downstream cannot take the format its upstream
    /// sends, as far as the processors' parameters tell (`ProcessorSpec.negotiate`);
    /// the rest is settled when the graph is created.
    private mutating func checkFormats(_ declared: [Declared], plan: GraphPlan, links: [Link]) {
        do {
            _ = try plan.settleFormats(names: declared.map(\.name)) { i, arriving throws(FormatRefusal) in
                guard let spec = declared[i].spec, let negotiate = spec.negotiate else { return [] }
                return try negotiate(Self.parameters(of: declared[i]), arriving)
            }
        } catch {
            for problem in error.errors {
                let link = problem.from.flatMap { from in links.first { $0.from == from && $0.to == problem.queue } }
                self.error(link?.location ?? location(of: problem, in: declared, links: links), problem.message)
            }
        }
    }

    /// A queue's parameters as written, with the defaults of those not written.
    private static func parameters(of queue: Declared) -> Parameters {
        var values = queue.parameters
        for parameter in queue.spec?.parameters ?? [] where values[parameter.name] == nil { values[parameter.name] = parameter.defaultValue }
        return Parameters(values)
    }

    /// Processors that must begin a thread, or run on the thread another one begins (the GL owner's stages).
    private mutating func checkPlacement(_ declared: [Declared], plan: GraphPlan) {
        for (i, q) in declared.enumerated() {
            guard let spec = q.spec else { continue }
            let at = q.locations["processor"] ?? q.nameLocation
            switch spec.placement {
            case .anywhere:
                break
            case .beginsThread:
                if q.config.threading != .thread {
                    error(q.locations["threading"] ?? at, "found \(spec.name) on \(quoted(q.name)) with 'threading: \(q.config.threading.rawValue)', expected 'threading: thread' (\(spec.name) owns the thread its queue begins)")
                }
            case .onThreadOf(let owner):
                let begins = declared.indices.first { plan.group[$0] == plan.group[i] && declared[$0].config.threading != .none }
                if q.config.threading != .none {
                    error(q.locations["threading"] ?? at, "found \(spec.name) on \(quoted(q.name)) with 'threading: \(q.config.threading.rawValue)', expected 'threading: none' on the thread a \(owner) queue begins")
                } else if begins.map({ declared[$0].spec?.name }) != owner {
                    let runsOn = begins.map { "the thread of \(quoted(declared[$0].name)) (\(declared[$0].spec?.name ?? "?"))" } ?? "the graph's default thread (group 0)"
                    error(at, "found \(spec.name) on \(quoted(q.name)), which runs on \(runsOn), expected it downstream of a \(owner) queue, on that queue's thread")
                }
            }
        }
    }

    // MARK: Queues

    private mutating func checkQueue(_ node: SyntaxNode) -> Declared? {
        guard let keys = fields(of: node, allowed: Self.queueKeys, what: "a queue") else { return nil }
        guard let nameNode = keys["name"] else {
            error(node.location, "found a queue without 'name', expected a unique name")
            return nil
        }
        guard let name = string(nameNode, expected: "a queue name") else { return nil }
        if name.isEmpty || name.contains(where: { $0.isWhitespace || "!:.".contains($0) }) {
            error(nameNode.location, "found the name \(quoted(name)), expected a non-empty name without spaces, '!', ':' or '.'")
        }
        // The processor factory is a placeholder until the whole file has checked.
        var q = Declared(config: QueueConfig(name: name, processor: { _ in Forwarder() }), nameLocation: nameNode.location)
        for (key, value) in keys.entries { q.locations[key] = value.location }

        if let node = keys["processor"] {
            if let processor = string(node, expected: "a processor name") {
                if let spec = registry[processor] {
                    q.spec = spec
                    q.parameters = checkParameters(keys["parameters"], of: spec, at: node.location)
                } else {
                    unknown(processor, at: node.location, what: "processor", candidates: registry.names)
                }
            }
        } else {
            error(nameNode.location, "found queue \(quoted(name)) without 'processor', expected one of \(alternatives(registry.names))")
        }
        if let node = keys["size"] { q.config.size = integer(node, in: 1...1_000_000) ?? q.config.size }
        if let node = keys["management"], let value = choice(node, registry.managementNames) {
            q.config.management = QueueManagement.named(value, size: q.config.size) ?? .custom(registry.managements[value]!)
        }
        if let node = keys["red"] {
            if case .red = q.config.management {
                if let red = checkRED(node, size: q.config.size) { q.config.management = .red(red) }
            } else {
                error(node.location, "found RED parameters on a '\(q.config.management.name)' queue, expected them only with 'management: red'")
            }
        }
        if let node = keys["discipline"], let value = choice(node, registry.disciplineNames) {
            q.config.discipline = QueueDiscipline.builtIns.first { $0.name == value } ?? .custom(registry.disciplines[value]!)
        }
        if let node = keys["sync"], let value = choice(node, BufferSync.self) { q.config.sync = value }
        if let node = keys["threading"], let value = choice(node, QueueThreading.self) { q.config.threading = value }
        if let node = keys["restart"], let value = choice(node, ChildOptions.Restart.self) {
            q.config.child.restart = value
            if q.config.threading != .child && q.config.threading != .remote {
                error(node.location, "found restart on \(quoted(name)), whose threading is '\(q.config.threading.rawValue)', expected restart only with 'threading: child' or 'remote'")
            }
        }
        if let node = keys["host"] { q.config.host = string(node, expected: "the name of one of the graph's hosts") }
        if let node = keys["server-hosts"] {
            if case .sequence(let items, _) = node {
                q.config.serverHosts = items.compactMap { string($0, expected: "'local' or a host's name") }.map { $0 == "local" ? nil : $0 }
            } else {
                error(node.location, "found \(node.kindName), expected a list with one entry per server: 'local' or a host's name, like [local, render1]")
            }
        }
        var buffersSet = false
        if let node = keys["buffers"], let value = choice(node, BufferManagement.self) { (q.config.buffers, buffersSet) = (value, true) }
        if let node = keys["byte-bound"] { q.config.byteBound = integer(node, in: 1...Int.max) }
        if let node = keys["pads"] { q.pads = integer(node, in: 0...1024) }
        if let node = keys["pool"], let pool = fields(of: node, allowed: ["count", "buffer-size"], what: "a pool") {
            if let count = pool["count"] { q.poolCount = integer(count, in: 1...1_000_000) }
            if let size = pool["buffer-size"] { q.poolBufferSize = integer(size, in: 0...(1 << 30)) }
        }
        var serversRead = true
        if let node = keys["servers"] {
            let servers = integer(node, in: 1...QueueConfig.maxServers)
            (q.config.servers, serversRead) = (servers ?? 1, servers != nil)
        }
        if let node = keys["loadbalancer"] {
            if case .scalar(let name, let location) = node {   // one defined under `loadbalancers`
                if let lb = namedBalancers[name] {
                    (q.config.loadBalancer, q.modeLocation) = (lb, location)
                    for problem in lb.problems(servers: q.config.servers) { error(location, "load balancer \(quoted(name)): \(problem)") }
                } else {
                    let names = namedBalancers.keys.sorted()
                    error(location, "found the load balancer \(quoted(name))\(didYouMean(name, names)), expected \(names.isEmpty ? "a mapping of \(alternatives(Self.loadBalancerKeys)), or the name of one defined under 'loadbalancers'" : alternatives(names.map { "'\($0)'" }) + " (defined under 'loadbalancers') or a mapping")")
                }
            } else if let lb = checkLoadBalancer(node, servers: q.config.servers) {
                (q.config.loadBalancer, q.modeLocation) = lb
            }
        }
        if let node = keys["network"] { q.network = checkNetworkName(node, queue: name, processor: q.spec) }
        if let spec = q.spec, spec.makeNetworked != nil, keys["network"] == nil {
            let names = namedNetworks.keys.sorted()
            error(keys["processor"]!.location, "found the processor '\(spec.name)' on \(quoted(name)) without 'network', expected 'network: NAME' naming \(names.isEmpty ? "a network defined under 'networks'" : alternatives(names.map { "'\($0)'" }) + " (defined under 'networks')")")
        }
        if let spec = q.spec {
            if serversRead { checkCompound(q, spec: spec) }   // else the servers' own error says it all
            if spec.isSource && !buffersSet {
                q.config.buffers = .provider
            } else if spec.isSource && !q.config.buffers.creates {
                error(q.locations["buffers"]!, "found 'buffers: \(q.config.buffers.rawValue)' on the source \(quoted(name)), expected provider, upstream or downstream (a source makes new buffers)")
            }
            if keys["pool"] != nil && q.config.buffers != .provider {
                error(q.locations["pool"]!, "found a pool on \(quoted(name)) whose buffers are '\(q.config.buffers.rawValue)', expected a pool only with 'buffers: provider'")
            }
        }
        return q
    }

    private mutating func checkParameters(_ node: SyntaxNode?, of spec: ProcessorSpec, at processorLocation: SourceLocation) -> [String: ParameterValue] {
        var values: [String: ParameterValue] = [:]
        var given: Set<String> = []
        if let node, let fields = fields(of: node, allowed: spec.parameters.map(\.name), what: "parameters of \(spec.name)") {
            for (key, valueNode) in fields.entries {
                given.insert(key)
                let parameter = spec.parameters.first { $0.name == key }!
                values[key] = value(valueNode, parameter.kind, for: " for \(spec.name) parameter '\(key)'")
            }
        }
        for parameter in spec.parameters where !given.contains(parameter.name) {
            if let value = parameter.defaultValue {
                values[parameter.name] = value
            } else {
                error(node?.location ?? processorLocation, "found no '\(parameter.name)' for \(spec.name), expected \(parameter.kind.expectation) (\(parameter.summary))")
            }
        }
        return values
    }

    private mutating func checkRED(_ node: SyntaxNode, size: Int) -> RED? {
        guard let keys = fields(of: node, allowed: ["min", "max", "max-probability", "weight", "seed"], what: "RED parameters") else { return nil }
        var red = RED.forSize(size)
        if let n = keys["min"], let v = number(n, in: 0...Double(size)) { red.minThreshold = v }
        if let n = keys["max"], let v = number(n, in: 0...Double(size)) { red.maxThreshold = v }
        if let n = keys["max-probability"], let v = number(n, in: 0.000001...1) { red.maxProbability = v }
        if let n = keys["weight"], let v = number(n, in: 0.000001...1) { red.weight = v }
        if let n = keys["seed"] {
            if case .scalar(let text, _) = n, let v = UInt64(text) { red.seed = v } else { error(n.location, "found \(n.kindName), expected a seed in 0…\(UInt64.max)") }
        }
        if red.minThreshold >= red.maxThreshold {
            error(keys["min"]?.location ?? node.location,
                  "found RED min \(red.minThreshold.formatted) ≥ max \(red.maxThreshold.formatted), expected min < max")
        }
        return red
    }

    // MARK: Compound queues

    /// `loadbalancers`: a list of named load balancers (Equalizer's
    /// configuration), which compound queues name in their `loadbalancer`.
    private mutating func checkNamedBalancers(_ node: SyntaxNode) {
        guard case .sequence(let items, _) = node else {
            error(node.location, "found \(node.kindName), expected a list of load balancers, each with a 'name'")
            return
        }
        var seen: [String: SourceLocation] = [:]
        for item in items {
            guard let keys = fields(of: item, allowed: ["name"] + Self.loadBalancerKeys, what: "a named load balancer") else { continue }
            guard let nameNode = keys["name"] else {
                error(item.location, "found a load balancer without a name, expected 'name: …' (queues refer to it by it)")
                continue
            }
            guard let name = string(nameNode, expected: "a name") else { continue }
            if let first = seen[name] {
                error(nameNode.location, "found a second load balancer named \(quoted(name)) (the first is at line \(first.line)), expected unique names")
                continue
            }
            seen[name] = nameNode.location
            let rest: [SyntaxNode.Pair] = if case .mapping(let pairs, _) = item { pairs.filter { $0.key != "name" } } else { [] }
            if let (lb, _) = checkLoadBalancer(.mapping(rest, item.location), servers: nil) { namedBalancers[name] = lb }
        }
    }

    /// A load balancer's mapping; the weights are checked against `servers` when it is known.
    private mutating func checkLoadBalancer(_ node: SyntaxNode, servers: Int?) -> (LoadBalancerConfig, SourceLocation?)? {
        guard let keys = fields(of: node, allowed: Self.loadBalancerKeys, what: "a load balancer") else { return nil }
        if let split = keys["split"], keys["mode"] != nil {
            error(split.location, "found both 'mode' and 'split' (Equalizer's word for it), expected one of them")
        }
        let modeNode = keys["mode"] ?? keys["split"]
        var lb = LoadBalancerConfig(mode: modeNode.flatMap { splitMode($0) } ?? .twoD)
        if let n = keys["damping"], let v = number(n, in: 0...1) { lb.damping = v }
        if let n = keys["resistance"], let v = number(n, in: 0...LoadBalancerConfig.maxResistance) { lb.resistance = v }
        if let n = keys["boundary"] {
            if !lb.mode.splitsPixels {
                if let v = number(n, in: 0...1) {
                    if v < 1 { lb.boundary = .init(x: v, y: 0) } else { error(n.location, "found 1, expected a fraction of the data range below 1") }
                }
            } else if case .sequence(let items, _) = n, items.count == 2 {
                let pixels = 1...LoadBalancerConfig.maxBoundary
                if let x = integer(items[0], in: pixels), let y = integer(items[1], in: pixels) { lb.boundary = .init(x: Double(x), y: Double(y)) }
            } else {
                error(n.location, "found \(n.kindName), expected the pixel alignment as a list [x, y] of whole pixels")
            }
        }
        if let n = keys["weights"] {
            if case .sequence(let items, _) = n {
                let weights = items.compactMap { number($0, in: 0...LoadBalancerConfig.maxWeight) }
                if weights.count == items.count {
                    lb.weights = weights
                    if let servers { for problem in lb.problems(servers: servers) { error(n.location, problem) } }
                }
            } else {
                error(n.location, "found \(n.kindName), expected a list of one weight per server")
            }
        }
        return (lb, modeNode?.location)
    }

    /// A split mode by our name (`2D`, `vertical`, `horizontal`, `db`) or
    /// as Equalizer's configuration spells it (`VERTICAL`, `HORIZONTAL`, `DB`).
    private mutating func splitMode(_ node: SyntaxNode) -> SplitMode? {
        if case .scalar(let text, _) = node, let mode = SplitMode.allCases.first(where: { $0.rawValue.uppercased() == text }) { return mode }
        return choice(node, SplitMode.self)
    }

    /// `servers` ≥ 2 needs a processor that splits its work, by the mode asked for.
    private mutating func checkCompound(_ q: Declared, spec: ProcessorSpec) {
        if q.config.servers > 1 && spec.makeCompound == nil {
            let splitters = registry.names.filter { registry[$0]!.makeCompound != nil }
            error(q.locations["servers"]!, "found servers: \(q.config.servers) on \(quoted(q.name)), whose processor '\(spec.name)' cannot split its work, expected 1 (processors that can: \(splitters.joined(separator: ", ")))")
        } else if q.config.servers > 1 && !spec.splitModes.contains(q.config.loadBalancer.mode) {
            let modes = SplitMode.allCases.filter(spec.splitModes.contains).map(\.rawValue)
            error(q.modeLocation ?? q.locations["servers"]!, "found mode '\(q.config.loadBalancer.mode.rawValue)' for '\(spec.name)', expected one of \(alternatives(modes))")
        } else if q.config.servers > 1, let refusal = spec.refuseSplit?(Parameters(q.parameters)) {
            error(q.locations["servers"]!, "found servers: \(q.config.servers) on \(quoted(q.name)), \(refusal)")
        } else if q.config.servers == 1, let location = q.locations["loadbalancer"] {
            error(location, "found a load balancer on \(quoted(q.name)), which has 1 server, expected one only with 'servers' of 2 or more")
        }
    }

    // MARK: Connections

    private mutating func checkConnection(_ node: SyntaxNode) -> Link? {
        switch node {
        case .scalar(let text, let location):
            // "from -> to" or "from:pad -> to"
            let parts = text.components(separatedBy: "->")
            guard parts.count == 2 else {
                error(location, "found \(quoted(text)), expected a connection like 'a -> b' or 'a:1 -> b'")
                return nil
            }
            let from = parts[0].trimmingCharacters(in: .whitespaces)
            let to = parts[1].trimmingCharacters(in: .whitespaces)
            var fromName = from
            var pad = 0
            if let colon = from.lastIndex(of: ":") {
                fromName = String(from[..<colon])
                guard let p = Int(from[from.index(after: colon)...]), p >= 0 else {
                    error(location, "found the pad \(quoted(String(from[from.index(after: colon)...]))) in \(quoted(text)), expected a pad number ≥ 0")
                    return nil
                }
                pad = p
            }
            guard !fromName.isEmpty, !to.isEmpty else {
                error(location, "found \(quoted(text)), expected a connection like 'a -> b' or 'a:1 -> b'")
                return nil
            }
            // Point at the names inside the string (plain scalars: the text starts at the mark).
            func at(_ name: String, from start: String.Index) -> SourceLocation {
                guard let range = text.range(of: name, range: start..<text.endIndex) else { return location }
                var shifted = location
                shifted.column += text.distance(from: text.startIndex, to: range.lowerBound)
                return shifted
            }
            let arrow = text.range(of: "->")!.upperBound
            return Link(from: fromName, pad: pad, to: to, location: location,
                        fromLocation: at(fromName, from: text.startIndex), toLocation: at(to, from: arrow))
        case .mapping:
            guard let keys = fields(of: node, allowed: ["from", "pad", "to"], what: "a connection") else { return nil }
            guard let fromNode = keys["from"], let toNode = keys["to"] else {
                error(node.location, "found a connection without '\(keys["from"] == nil ? "from" : "to")', expected 'from' and 'to' queue names")
                return nil
            }
            guard let from = string(fromNode, expected: "a queue name"), let to = string(toNode, expected: "a queue name") else { return nil }
            var pad = 0
            if let padNode = keys["pad"] { guard let p = integer(padNode, in: 0...1024) else { return nil }; pad = p }
            return Link(from: from, pad: pad, to: to, location: node.location, fromLocation: fromNode.location, toLocation: toNode.location)
        case .sequence:
            error(node.location, "found a list, expected a connection like 'a -> b' or a mapping with 'from' and 'to'")
            return nil
        }
    }

    private mutating func checkNames(_ declared: inout [Declared]) {
        var seen: [String: SourceLocation] = [:]
        var unique: [Declared] = []
        for q in declared {
            if let first = seen[q.name] {
                error(q.nameLocation, "found a second queue named \(quoted(q.name)) (the first is at line \(first.line)), expected unique names")
            } else {
                seen[q.name] = q.nameLocation
                unique.append(q)
            }
        }
        declared = unique
    }

    private mutating func checkLinks(_ links: inout [Link], declared: [Declared]) {
        let names = declared.map(\.name)
        let byName = Dictionary(declared.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var byPad: [String: Link] = [:]
        var valid: [Link] = []
        for link in links {
            var ok = true
            if byName[link.from] == nil { unknown(link.from, at: link.fromLocation, what: "queue", candidates: names); ok = false }
            if byName[link.to] == nil { unknown(link.to, at: link.toLocation, what: "queue", candidates: names); ok = false }
            guard ok else { continue }
            let key = "\(link.from):\(link.pad)"
            if let earlier = byPad[key] {
                if earlier.to == link.to {
                    error(link.location, "found the connection \(link.from):\(link.pad) -> \(link.to) twice (first at line \(earlier.location.line)), expected each once")
                } else {
                    error(link.location, "found pad \(link.pad) of \(quoted(link.from)) connected again, to \(quoted(link.to)) (it goes to \(quoted(earlier.to)) at line \(earlier.location.line)), expected one queue per pad; use a tee to send to several")
                }
                continue
            }
            if let target = byName[link.to], target.spec?.isSource == true {
                error(link.toLocation, "found a connection into \(quoted(link.to)), a \(target.spec!.name) source, expected sources to take no input")
                continue
            }
            byPad[key] = link
            valid.append(link)
        }
        links = valid
    }

    /// Each queue's out pad count: `pads` if given, else one past the highest
    /// connected pad; checked against what its processor can drive.
    private mutating func resolvePads(_ declared: inout [Declared], links: [Link], reportMissing: Bool) {
        let linksFrom = Dictionary(grouping: links, by: \.from)
        for i in declared.indices {
            let q = declared[i]
            let connected = linksFrom[q.name] ?? []
            let pads = q.pads ?? (connected.map(\.pad).max().map { $0 + 1 } ?? 0)
            if let explicit = q.pads, let beyond = connected.first(where: { $0.pad >= explicit }) {
                error(beyond.location, "found pad \(beyond.pad) of \(quoted(q.name)), expected a pad below its 'pads: \(explicit)'")
            }
            if let spec = q.spec, !spec.outputs.contains(pads), pads > spec.outputs.upperBound || reportMissing {
                let location = q.locations["pads"] ?? connected.first?.location ?? q.nameLocation
                let expected = spec.outputs.lowerBound == spec.outputs.upperBound
                    ? "\(spec.outputs.lowerBound)" : "\(spec.outputs.lowerBound) to \(spec.outputs.upperBound)"
                error(location, "found \(pads) out pad\(pads == 1 ? "" : "s") on \(quoted(q.name)), expected \(expected) for \(spec.name) (\(spec.summary))")
            }
            declared[i].config.outPads = pads
        }
    }

    /// Refuses each link into a queue that takes nothing its upstream can
    /// make (bytes into a frame filter). What a pass-through makes is what
    /// reaches it, so kinds flow along links until nothing changes.
    private mutating func checkKinds(_ declared: [Declared], links: [Link]) {
        let index = Dictionary(declared.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        let links = links.compactMap { link in index[link.from].flatMap { from in index[link.to].map { (from, $0, link) } } }
        var made = declared.map { q in q.spec?.makes ?? (q.spec?.isSource == false ? [] : .any) }
        var changed = true
        while changed {
            changed = false
            for (from, to, _) in links where declared[to].spec != nil && declared[to].spec!.makes == nil {
                let reaching = made[from].intersection(declared[to].spec!.takes)
                if !made[to].isSuperset(of: reaching) { made[to].formUnion(reaching); changed = true }
            }
        }
        for (from, to, link) in links {
            guard let spec = declared[to].spec, !made[from].isEmpty, made[from].isDisjoint(with: spec.takes) else { continue }
            error(link.location, "found a link from \(quoted(declared[from].name)) (sends \(made[from])) into \(quoted(declared[to].name)) (\(spec.name) takes \(spec.takes)), expected a link that carries \(spec.takes)")
        }
    }

    /// Pool defaults for `provider` queues: enough buffers to fill every queue
    /// downstream, of the size the processor asks for.
    private mutating func resolvePools(_ declared: inout [Declared], connections: [Connection]) {
        for i in declared.indices where declared[i].config.buffers == .provider {
            var q = declared[i]
            if q.poolCount == nil {
                let downstream = downstreamQueues(of: q.name, connections: connections)
                q.poolCount = min(1_000_000, declared.filter { downstream.contains($0.name) }.map(\.config.size).reduce(4, +))
            }
            let wanted = q.spec?.payloadBytes?(Parameters(q.parameters))
            if let wanted, let size = q.poolBufferSize, wanted > size {
                error(q.locations["pool"]!, "found pool buffer-size \(size) on \(quoted(q.name)), expected at least its \(q.spec!.name) size \(wanted)")
            }
            if q.poolBufferSize == nil { q.poolBufferSize = wanted ?? 4096 }
            declared[i] = q
        }
    }

    /// Where a core validation error belongs in the file.
    private func location(of problem: ConfigError, in declared: [Declared], links: [Link]) -> SourceLocation {
        let key = ["byteBound": "byte-bound", "outPads": "pads", "creator": "pool"][problem.field]
            ?? String(problem.field.prefix { $0 != "." })
        if key == "connections", let link = links.first(where: { $0.from == problem.queue || $0.to == problem.queue }) {
            return link.location
        }
        guard let q = declared.first(where: { $0.name == problem.queue }) else {
            return SourceLocation(file: file, line: 1, column: 1)
        }
        return q.locations[key] ?? q.nameLocation
    }

    // MARK: Networks

    /// A network as read under `networks`: its config, and where it and each node were named.
    private struct DeclaredNetwork {
        var config: NodeNetworkConfig
        /// Each node's parameters as read (for writing the file back out).
        var parameters: [Parameters]
        var location: SourceLocation
        var nodeLocations: [SourceLocation]
    }

    /// `networks`: render node networks (Lumiera's), each pulled by the
    /// frame jobs of the queues that name it (`processor: pull`).
    private mutating func checkNetworks(_ node: SyntaxNode) {
        guard case .sequence(let items, _) = node else {
            error(node.location, "found \(node.kindName), expected a list of networks, each with a 'name', 'nodes' and 'connections'")
            return
        }
        for item in items {
            guard let keys = fields(of: item, allowed: Self.networkKeys, what: "a network") else { continue }
            guard let nameNode = keys["name"] else {
                error(item.location, "found a network without a name, expected 'name: …' (pull queues refer to it by it)")
                continue
            }
            guard let name = string(nameNode, expected: "a name") else { continue }
            if let first = namedNetworks[name] {
                error(nameNode.location, "found a second network named \(quoted(name)) (the first is at line \(first.location.line)), expected unique names")
                continue
            }
            let errorsBefore = errors.count
            // Nodes by name; a refused node keeps its name (nil node), so its connections raise no second error.
            var nodes: [NodeNetworkConfig.Node?] = []
            var parameters: [String: Parameters] = [:]
            var names: [String] = []
            var locations: [SourceLocation] = []
            if case .sequence(let list, _)? = keys["nodes"], !list.isEmpty {
                for entry in list {
                    guard let (nodeName, location, node, values) = checkNetworkNode(entry) else { continue }
                    if let first = names.firstIndex(of: nodeName) {
                        error(location, "found a second node named \(quoted(nodeName)) in network \(quoted(name)) (the first is at line \(locations[first].line)), expected unique names")
                        continue
                    }
                    (nodes, names, locations) = (nodes + [node], names + [nodeName], locations + [location])
                    parameters[nodeName] = values
                }
            } else {
                error(keys["nodes"]?.location ?? nameNode.location,
                      "found \(keys["nodes"].map { $0.kindName } ?? "no 'nodes'") in network \(quoted(name)), expected a list of nodes, each with a 'name' and a 'processor'")
            }
            if let list = keys["connections"] {
                if case .sequence(let links, _) = list {
                    for entry in links { if let link = checkConnection(entry) { connect(link, names: names, nodes: &nodes) } }
                } else {
                    error(list.location, "found \(list.kindName), expected a list of connections like 'a -> b' between the network's nodes")
                }
            }
            // A network with errors of its own is not checked further (its shape would only repeat them).
            if errors.count > errorsBefore { refusedNetworks.insert(name) }
            namedNetworks[name] = DeclaredNetwork(config: NodeNetworkConfig(name: name, nodes: nodes.compactMap { $0 }),
                                                  parameters: nodes.compactMap { $0 }.map { parameters[$0.name]! },
                                                  location: nameNode.location, nodeLocations: locations)
            networkOrder.append(name)
        }
    }

    /// One node of a network: its name, where it is, and the node, if its
    /// processor takes and makes frames (the render module says which it
    /// can pull, when a queue names the network).
    private mutating func checkNetworkNode(_ item: SyntaxNode) -> (String, SourceLocation, NodeNetworkConfig.Node?, Parameters)? {
        guard let keys = fields(of: item, allowed: Self.nodeKeys, what: "a network node") else { return nil }
        guard let nameNode = keys["name"] else {
            error(item.location, "found a node without 'name', expected a name unique in its network")
            return nil
        }
        guard let name = string(nameNode, expected: "a node name") else { return nil }
        guard let processorNode = keys["processor"] else {
            error(nameNode.location, "found node \(quoted(name)) without 'processor', expected a generator, a filter or 'composite'")
            return (name, nameNode.location, nil, Parameters([:]))
        }
        guard let processor = string(processorNode, expected: "a processor name") else { return (name, nameNode.location, nil, Parameters([:])) }
        guard let spec = registry[processor] else {
            unknown(processor, at: processorNode.location, what: "processor", candidates: registry.names)
            return (name, nameNode.location, nil, Parameters([:]))
        }
        if spec.isSource || spec.outputs.upperBound == 0 || !spec.takes.contains(.frames) {
            let what = spec.isSource ? "source" : spec.outputs.upperBound == 0 ? "sink" : "processor"
            error(processorNode.location, "found the \(what) '\(processor)' as a network node, expected a generator, a filter or 'composite' (sources and sinks are queues before and after the pull queue)")
            return (name, nameNode.location, nil, Parameters([:]))
        }
        let parameters = Parameters(checkParameters(keys["parameters"], of: spec, at: processorNode.location))
        return (name, nameNode.location, NodeNetworkConfig.Node(name: name, processor: processor) { spec.make(parameters) }, parameters)
    }

    /// Adds a connection between two of a network's nodes as the second's next input.
    private mutating func connect(_ link: Link, names: [String], nodes: inout [NodeNetworkConfig.Node?]) {
        guard let from = names.firstIndex(of: link.from) else { return unknown(link.from, at: link.fromLocation, what: "node", candidates: names) }
        guard let to = names.firstIndex(of: link.to) else { return unknown(link.to, at: link.toLocation, what: "node", candidates: names) }
        guard link.pad == 0 else { return error(link.location, "found pad \(link.pad) of node \(quoted(link.from)), expected no pad (a node has one output)") }
        nodes[to]?.inputs.append(from)
    }

    /// A queue's `network: NAME`: defined, on a processor that pulls one,
    /// and one that processor can pull (asked once per network).
    private mutating func checkNetworkName(_ node: SyntaxNode, queue: String, processor spec: ProcessorSpec?) -> String? {
        guard let name = string(node, expected: "the name of a network defined under 'networks'") else { return nil }
        guard let network = namedNetworks[name] else {
            let names = namedNetworks.keys.sorted()
            error(node.location, "found the network \(quoted(name))\(didYouMean(name, names)), expected \(names.isEmpty ? "the name of a network defined under 'networks'" : alternatives(names.map { "'\($0)'" }) + " (defined under 'networks')")")
            return nil
        }
        guard let spec else { return name }
        guard let makeNetworked = spec.makeNetworked else {
            let pullers = registry.names.filter { registry[$0]!.makeNetworked != nil }
            error(node.location, "found 'network' on \(quoted(queue)), whose processor '\(spec.name)' pulls none, expected it only with \(alternatives(pullers.map { "'\($0)'" }))")
            return nil
        }
        if refusedNetworks.contains(name) { return name }
        do throws(NetworkRefusal) {
            // Whether the network can be pulled does not depend on the queue's parameters: the defaults stand in.
            _ = try makeNetworked(Parameters(spec.parameters.reduce(into: [:]) { $0[$1.name] = $1.defaultValue }), network.config)
        } catch {
            if refusedNetworks.insert(name).inserted {
                self.error(error.node.map { network.nodeLocations[$0] } ?? network.location, "network \(quoted(name)): \(error.message)")
            }
            return nil
        }
        return name
    }

    // MARK: Scalars and mappings

    private mutating func error(_ location: SourceLocation, _ message: String) {
        errors.append(GraphFileError(location, message))
    }

    private mutating func unknown(_ word: String, at location: SourceLocation, what: String, candidates: [String]) {
        error(location, "found the unknown \(what) \(quoted(word))\(didYouMean(word, candidates)), expected one of \(alternatives(candidates))")
    }

    /// The keys of a mapping, in order, with duplicates and unknown keys reported.
    private struct Fields {
        var entries: [(String, SyntaxNode)]
        subscript(key: String) -> SyntaxNode? { entries.first { $0.0 == key }?.1 }
    }

    private mutating func fields(of node: SyntaxNode, allowed: [String], what: String) -> Fields? {
        guard case .mapping(let pairs, _) = node else {
            error(node.location, "found \(node.kindName), expected \(what) as a mapping of \(alternatives(allowed))")
            return nil
        }
        var entries: [(String, SyntaxNode)] = []
        for pair in pairs {
            if let first = entries.first(where: { $0.0 == pair.key }) {
                error(pair.keyLocation, "found '\(pair.key)' twice in \(what) (first at line \(first.1.location.line)), expected each key once")
            } else if !allowed.contains(pair.key) {
                error(pair.keyLocation, "found the unknown key \(quoted(pair.key)) in \(what)\(didYouMean(pair.key, allowed)), expected \(alternatives(allowed))")
            } else {
                entries.append((pair.key, pair.value))
            }
        }
        return Fields(entries: entries)
    }

    /// `hosts:` — a list of `{name, address, port}`: where the workers of
    /// `remote` queues listen.
    private mutating func checkHosts(_ node: SyntaxNode) -> [RemoteHost] {
        guard case .sequence(let items, _) = node else {
            error(node.location, "found \(node.kindName), expected a list of hosts like '{name: render1, address: 10.0.0.2, port: 7700}'")
            return []
        }
        var hosts: [RemoteHost] = []
        for item in items {
            guard let keys = fields(of: item, allowed: Self.hostKeys, what: "a host") else { continue }
            let missing = ["name", "address", "port"].filter { keys[$0] == nil }
            if !missing.isEmpty {
                error(item.location, "found a host without \(missing.map(quoted).joined(separator: ", ")), expected name, address and port")
                continue
            }
            guard let name = string(keys["name"]!, expected: "a host name"),
                  let address = string(keys["address"]!, expected: "an IPv4 or IPv6 address"),
                  let port = integer(keys["port"]!, in: 1...65535) else { continue }
            if !RemoteHost.isAddress(address) {
                error(keys["address"]!.location, "found \(quoted(address)), expected an IPv4 or IPv6 address (like 10.0.0.2 or fd00::2; names are not resolved)")
            } else if hosts.contains(where: { $0.name == name }) {
                error(keys["name"]!.location, "found the host \(quoted(name)) twice, expected each host once")
            } else {
                hosts.append(RemoteHost(name: name, address: address, port: port,
                                        silenceMilliseconds: keys["silence-ms"].flatMap { integer($0, in: 20...600_000) }))
            }
        }
        return hosts
    }

    private mutating func string(_ node: SyntaxNode, expected: String) -> String? {
        guard case .scalar(let text, _) = node else {
            error(node.location, "found \(node.kindName), expected \(expected)")
            return nil
        }
        return text
    }

    /// A scalar read as `kind`; `context` says whose value it is in errors.
    private mutating func value(_ node: SyntaxNode, _ kind: ParameterSpec.Kind, for context: String = "") -> ParameterValue? {
        guard case .scalar(let text, _) = node else {
            error(node.location, "found \(node.kindName)\(context), expected \(kind.expectation)")
            return nil
        }
        if case .inputFile = kind {
            let path = text.hasPrefix("/") ? text : URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(text).path
            if FileManager.default.isReadableFile(atPath: path) { return .text(path) }
            error(node.location, "found \(quoted(text))\(context), which does not exist or cannot be read (looked at \(path)), expected \(kind.expectation)")
            return nil
        }
        if let value = kind.parse(text) { return value }
        var hint = ""
        if case .choice(let values) = kind { hint = didYouMean(text, values) }
        error(node.location, "found \(quoted(text))\(context)\(hint), expected \(kind.expectation)")
        return nil
    }

    private mutating func integer(_ node: SyntaxNode, in range: ClosedRange<Int>) -> Int? {
        guard case .integer(let v)? = value(node, .integer(range)) else { return nil }
        return v
    }

    private mutating func number(_ node: SyntaxNode, in range: ClosedRange<Double>) -> Double? {
        guard case .number(let v)? = value(node, .number(range)) else { return nil }
        return v
    }

    private mutating func choice(_ node: SyntaxNode, _ values: [String]) -> String? {
        guard case .text(let v)? = value(node, .choice(values)) else { return nil }
        return v
    }

    private mutating func choice<Policy: RawRepresentable & CaseIterable>(_ node: SyntaxNode, _: Policy.Type) -> Policy?
        where Policy.RawValue == String {
        choice(node, Policy.allCases.map(\.rawValue)).flatMap(Policy.init(rawValue:))
    }
}

extension QueueManagement {
    /// The policy of that name; RED with the default thresholds for `size`.
    static func named(_ name: String, size: Int) -> QueueManagement? {
        switch name {
        case "default": .default
        case "taildrop": .taildrop
        case "headdrop": .headdrop
        case "red": .red(.forSize(size))
        default: nil
        }
    }
}
