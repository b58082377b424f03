/// The resolved topology of a valid `QueueGraphConfig`: who feeds whom,
/// which thread runs each queue, and where each queue's new buffers come from.
/// Pure data, computed without creating anything.
public struct GraphPlan: Sendable, Equatable {
    /// For each queue, the target queue index of each out pad.
    public var outs: [[Int]]
    /// For each queue, the queues with a connection into it (once per connection).
    public var preds: [[Int]]
    /// For each queue, the index of the thread group that runs it. Group 0
    /// runs the queues that start no thread and have no upstream thread.
    public var group: [Int]
    /// The number of thread groups.
    public var groupCount: Int
    /// For `upstream` queues, the nearest upstream `provider` queue.
    public var upstreamProvider: [Int?]
    /// For `downstream` queues, per out pad, the nearest downstream `provider` queue.
    public var downstreamProviders: [[Int]]
    /// What each `child` queue's child runs, in declaration order.
    public var childParts: [ChildPart] = []

    static func resolve(_ config: QueueGraphConfig) -> (GraphPlan, [ConfigError]) {
        var errors: [ConfigError] = []
        let queues = config.queues
        var index: [String: Int] = [:]
        for (i, q) in queues.enumerated() {
            if q.name.isEmpty { errors.append(.init(.emptyName, queue: "#\(i)", field: "name", "found an empty name, expected a unique non-empty name")) }
            if index[q.name] != nil {
                errors.append(.init(.duplicateName, queue: q.name, field: "name", "found a second queue with this name, expected unique names"))
            } else {
                index[q.name] = i
            }
            errors += checkFields(q)
        }

        var outs: [[Int?]] = queues.map { Array(repeating: nil, count: max(0, $0.outPads)) }
        var preds: [[Int]] = Array(repeating: [], count: queues.count)
        for c in config.connections {
            guard let from = index[c.from] else {
                errors.append(.init(.unknownQueue, queue: c.from, field: "connections", "connection from '\(c.from)' to '\(c.to)' names no queue '\(c.from)'"))
                continue
            }
            guard let to = index[c.to] else {
                errors.append(.init(.unknownQueue, queue: c.to, field: "connections", "connection from '\(c.from)' to '\(c.to)' names no queue '\(c.to)'"))
                continue
            }
            guard c.pad >= 0, c.pad < outs[from].count else {
                errors.append(.init(.unknownPad, queue: c.from, field: "connections", "found pad \(c.pad), expected a pad in 0..<\(queues[from].outPads)"))
                continue
            }
            if outs[from][c.pad] != nil {
                errors.append(.init(.duplicateConnection, queue: c.from, field: "connections", "pad \(c.pad) is connected twice, expected one target per pad"))
                continue
            }
            outs[from][c.pad] = to
            preds[to].append(from)
        }
        for (i, pads) in outs.enumerated() {
            for (pad, target) in pads.enumerated() where target == nil {
                errors.append(.init(.unconnectedPad, queue: queues[i].name, field: "outPads", "pad \(pad) is not connected, expected a connection for each of \(queues[i].outPads) pads"))
            }
        }
        let resolvedOuts = outs.map { $0.compactMap { $0 } }

        errors += checkCycles(queues: queues, outs: resolvedOuts)

        var upstreamProvider: [Int?] = Array(repeating: nil, count: queues.count)
        var downstreamProviders: [[Int]] = Array(repeating: [], count: queues.count)
        for (i, q) in queues.enumerated() {
            switch q.buffers {
            case .upstream:
                upstreamProvider[i] = nearestProvider(from: preds[i], queues: queues, next: preds)
                if upstreamProvider[i] == nil {
                    errors.append(.init(.unsatisfiedBuffers, queue: q.name, field: "buffers", "buffers 'upstream' needs a 'provider' queue upstream, found none"))
                }
            case .downstream:
                for (pad, target) in resolvedOuts[i].enumerated() {
                    if let p = nearestProvider(from: [target], queues: queues, next: resolvedOuts) {
                        downstreamProviders[i].append(p)
                    } else {
                        errors.append(.init(.unsatisfiedBuffers, queue: q.name, field: "buffers", "buffers 'downstream' needs a 'provider' queue downstream of pad \(pad), found none"))
                    }
                }
            case .forward, .reuse, .provider:
                break
            }
        }

        let (group, groupCount) = assignGroups(queues: queues, preds: preds, outs: resolvedOuts)
        var plan = GraphPlan(outs: resolvedOuts, preds: preds, group: group, groupCount: groupCount,
                             upstreamProvider: upstreamProvider, downstreamProviders: downstreamProviders)
        if errors.isEmpty {
            let (parts, problems) = ChildPart.resolve(config, plan: plan)
            plan.childParts = parts
            errors += problems
        }
        return (plan, errors)
    }

    private static func checkFields(_ q: QueueConfig) -> [ConfigError] {
        var errors: [ConfigError] = []
        if q.size < 1 { errors.append(.init(.invalidSize, queue: q.name, field: "size", "found \(q.size), expected at least 1")) }
        if let b = q.byteBound, b < 1 { errors.append(.init(.invalidByteBound, queue: q.name, field: "byteBound", "found \(b), expected at least 1 byte")) }
        if q.outPads < 0 { errors.append(.init(.invalidOutPads, queue: q.name, field: "outPads", "found \(q.outPads), expected 0 or more")) }
        if !(1...QueueConfig.maxServers).contains(q.servers) {
            errors.append(.init(.invalidServers, queue: q.name, field: "servers", "found \(q.servers), expected 1…\(QueueConfig.maxServers)"))
        } else {
            for problem in q.loadBalancer.problems(servers: q.servers) {
                errors.append(.init(.invalidLoadBalancer, queue: q.name, field: "loadBalancer", problem))
            }
        }
        if case .red(let red) = q.management {
            if !(red.minThreshold >= 0 && red.minThreshold < red.maxThreshold && red.maxThreshold <= Double(q.size)) {
                errors.append(.init(.invalidRED, queue: q.name, field: "management.red", "found thresholds min \(red.minThreshold), max \(red.maxThreshold), expected 0 <= min < max <= size (\(q.size))"))
            }
            if !(red.maxProbability > 0 && red.maxProbability <= 1) {
                errors.append(.init(.invalidRED, queue: q.name, field: "management.red.maxProbability", "found \(red.maxProbability), expected a value in (0, 1]"))
            }
            if !(red.weight > 0 && red.weight <= 1) {
                errors.append(.init(.invalidRED, queue: q.name, field: "management.red.weight", "found \(red.weight), expected a value in (0, 1]"))
            }
        }
        if q.buffers == .provider && q.creator == nil {
            errors.append(.init(.missingCreator, queue: q.name, field: "creator", "buffers 'provider' needs a buffer creator, found none"))
        }
        if q.buffers != .provider && q.creator != nil {
            errors.append(.init(.unusedCreator, queue: q.name, field: "creator", "found a creator with buffers '\(q.buffers.rawValue)', expected buffers 'provider'"))
        }
        return errors
    }

    /// Breadth-first search along `next` for the nearest `provider` queue.
    private static func nearestProvider(from start: [Int], queues: [QueueConfig], next: [[Int]]) -> Int? {
        var seen = Set<Int>()
        var frontier = start
        while !frontier.isEmpty {
            var following: [Int] = []
            for q in frontier where seen.insert(q).inserted {
                if queues[q].buffers == .provider { return q }
                following += next[q]
            }
            frontier = following
        }
        return nil
    }

    /// Cycles (strongly connected components, Tarjan) with no way out, or in
    /// which no queue can drop, are rejected.
    private static func checkCycles(queues: [QueueConfig], outs: [[Int]]) -> [ConfigError] {
        var errors: [ConfigError] = []
        for component in stronglyConnectedComponents(outs) {
            let members = Set(component)
            let isCycle = component.count > 1 || outs[component[0]].contains(component[0])
            guard isCycle else { continue }
            let first = queues[component.min()!].name
            let names = component.sorted().map { queues[$0].name }.joined(separator: " → ")
            let exits = component.contains { q in outs[q].contains { !members.contains($0) } }
            if !exits {
                errors.append(.init(.cycleWithoutExit, queue: first, field: "connections", "the cycle \(names) has no connection leaving it, expected a way out"))
            }
            if component.allSatisfy({ queues[$0].management == .default }) {
                errors.append(.init(.deadlockingCycle, queue: first, field: "management", "every queue in the cycle \(names) is 'default' and can fill up and deadlock, expected one that drops (taildrop, headdrop or red)"))
            }
        }
        return errors
    }

    /// Tarjan's strongly connected components, with an explicit stack: a
    /// chain of a million queues must not overflow the thread's stack.
    private static func stronglyConnectedComponents(_ outs: [[Int]]) -> [[Int]] {
        let n = outs.count
        var index = Array(repeating: -1, count: n), low = Array(repeating: 0, count: n)
        var onStack = Array(repeating: false, count: n), stack: [Int] = [], components: [[Int]] = []
        var counter = 0
        /// The depth-first path: each vertex with the next of its edges to follow.
        var path: [(vertex: Int, edge: Int)] = []
        for root in 0..<n where index[root] < 0 {
            path.append((root, 0))
            index[root] = counter; low[root] = counter; counter += 1
            stack.append(root); onStack[root] = true
            while let (v, edge) = path.last {
                if edge < outs[v].count {
                    path[path.count - 1].edge += 1
                    let w = outs[v][edge]
                    if index[w] < 0 {
                        index[w] = counter; low[w] = counter; counter += 1
                        stack.append(w); onStack[w] = true
                        path.append((w, 0))
                    } else if onStack[w] {
                        low[v] = min(low[v], index[w])
                    }
                    continue
                }
                path.removeLast()
                if let parent = path.last?.vertex { low[parent] = min(low[parent], low[v]) }
                if low[v] == index[v] {
                    var component: [Int] = []
                    while let w = stack.popLast() {
                        onStack[w] = false
                        component.append(w)
                        if w == v { break }
                    }
                    components.append(component)
                }
            }
        }
        return components
    }

    /// A `thread` (or `child`) queue starts a group; any other queue joins
    /// the group of its first upstream queue to be placed; queues with no
    /// upstream join group 0.
    private static func assignGroups(queues: [QueueConfig], preds: [[Int]], outs: [[Int]]) -> ([Int], Int) {
        var group: [Int?] = Array(repeating: nil, count: queues.count)
        var count = 1
        var frontier: [Int] = []
        for (i, q) in queues.enumerated() {
            if q.threading != .none {
                group[i] = count
                count += 1
                frontier.append(i)
            } else if preds[i].isEmpty {
                group[i] = 0
                frontier.append(i)
            }
        }
        while true {
            while !frontier.isEmpty {
                var following: [Int] = []
                for q in frontier {
                    for t in outs[q] where group[t] == nil {
                        group[t] = group[q]
                        following.append(t)
                    }
                }
                frontier = following
            }
            // A cycle of `none` queues fed from nowhere runs on group 0.
            guard let orphan = group.firstIndex(where: { $0 == nil }) else { break }
            group[orphan] = 0
            frontier = [orphan]
        }
        return (group.map { $0! }, count)
    }
}
