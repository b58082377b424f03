import Foundation
import QueueGraphCore

extension GraphFile {
    /// The resolved graph as text: threads and their queues, where each
    /// queue's buffers come from, and each pool's size against the depth of
    /// the queues its buffers can wait in. With `formats` (a created
    /// graph's `GraphEngine.linkFormats`), each out pad shows its link's format.
    public func inspection(formats: [[LinkFormat]]? = nil) -> String {
        let plan = try! config.validate()   // a GraphFile's config has validated
        // Group 0 runs only when a queue is placed there; the others each begin with a queue.
        let threads = Set(plan.group).count
        var text = "\(file): \(config.queues.count) queues, \(config.connections.count) connection\(config.connections.count == 1 ? "" : "s"), \(threads) thread\(threads == 1 ? "" : "s")\n"
        text += "\nthreads\n"
        for group in 0..<plan.groupCount {
            let members = config.queues.indices.filter { plan.group[$0] == group }
            guard !members.isEmpty else { continue }
            text += "  thread \(group): " + members.map { "\(config.queues[$0].name) (\(queues[$0].processor))" }.joined(separator: ", ") + "\n"
        }
        text += "\nqueues\n"
        for (i, q) in config.queues.enumerated() {
            let policies = "size \(q.size), \(q.management.name), \(q.discipline.name), sync \(q.sync.rawValue), threading \(q.threading.rawValue)"
                + (q.byteBound.map { ", byte bound \($0)" } ?? "")
            let outs = config.connections.filter { $0.from == q.name }.sorted { $0.pad < $1.pad }
                .map { c in "pad \(c.pad) → \(c.to)" + ((formats?[i][c.pad]).map { " (\($0))" } ?? "") }.joined(separator: ", ")
            text += "  \(q.name): \(queues[i].processor) on thread \(plan.group[i]); \(policies)\n"
            text += "    buffers: \(origin(of: i, plan: plan))\n"
            if !outs.isEmpty { text += "    out: \(outs)\n" }
        }
        let pools = queues.filter { $0.pool != nil }
        if !pools.isEmpty {
            text += "\npools\n"
            for q in pools {
                let pool = q.pool!
                let downstream = downstreamQueues(of: q.name, connections: config.connections)
                let reach = config.queues.filter { downstream.contains($0.name) }
                let depth = reach.map(\.size).reduce(0, +)
                let verdict = pool.count >= depth
                    ? "enough to fill them all"
                    : "fewer than the queues can hold: the source waits for buffers before they fill (latency stays low)"
                text += "  \(q.name): \(pool.count) buffers × \(pool.bufferSize) bytes; queues they can wait in: "
                    + reach.map { "\($0.name) \($0.size)" }.joined(separator: " + ")
                    + " = \(depth); \(verdict)\n"
            }
        }
        return text
    }

    private func origin(of i: Int, plan: GraphPlan) -> String {
        let q = config.queues[i]
        switch q.buffers {
        case .provider:
            let pool = queues[i].pool!
            return "provider: its own pool of \(pool.count) × \(pool.bufferSize) bytes"
        case .upstream:
            return "upstream: the pool of \(plan.upstreamProvider[i].map { config.queues[$0].name } ?? "?")"
        case .downstream:
            return "downstream: " + plan.downstreamProviders[i].map { "the pool of \(config.queues[$0].name)" }.joined(separator: ", ")
        case .forward:
            return plan.preds[i].isEmpty ? "forward: pushed in from outside" : "forward: passed on from " + plan.preds[i].map { config.queues[$0].name }.joined(separator: ", ")
        case .reuse:
            return "reuse: changed in place (copied first when shared)"
        }
    }

    /// The graph in Graphviz DOT: one node per queue with its processor and
    /// policies, coloured by thread; edges labelled with their pad and, with
    /// `formats` (a created graph's `GraphEngine.linkFormats`), their format.
    public func dot(formats: [[LinkFormat]]? = nil) -> String {
        let plan = try! config.validate()
        let palette = ["#cfe2ff", "#d1e7dd", "#fff3cd", "#f8d7da", "#e2d9f3", "#d2f4ea", "#ffe5d0", "#e9ecef"]
        var text = "digraph \"\(file)\" {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n"
        for (i, q) in config.queues.enumerated() {
            var policies = ["size \(q.size)", q.management.name, q.discipline.name]
            if q.sync != .none { policies.append("sync \(q.sync.rawValue)") }
            if q.threading != .none { policies.append(q.threading.rawValue) }
            policies.append(q.buffers.rawValue)
            let label = "\(q.name)\\n\(queues[i].processor)\\n\(policies.joined(separator: ", "))\\nthread \(plan.group[i])"
            text += "  \"\(q.name)\" [label=\"\(label)\", fillcolor=\"\(palette[plan.group[i] % palette.count])\""
                + (q.threading == .thread ? ", penwidth=2" : "") + "];\n"
        }
        let index = Dictionary(config.queues.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        for c in config.connections {
            var label = c.pad > 0 || config.connections.contains { $0.from == c.from && $0.pad > 0 } ? ["\(c.pad)"] : []
            if let format = index[c.from].flatMap({ formats?[$0][c.pad] }), format != .unknown { label.append(format.description) }
            text += "  \"\(c.from)\" -> \"\(c.to)\"" + (label.isEmpty ? "" : " [label=\"\(label.joined(separator: ": "))\"]") + ";\n"
        }
        return text + "}\n"
    }
}

/// The queues a buffer sent by `name` can reach (not `name` itself: a
/// source's own queue never holds the buffers it makes).
func downstreamQueues(of name: String, connections: [Connection]) -> Set<String> {
    var seen: Set<String> = [name]
    var frontier = [name]
    while let next = frontier.popLast() {
        for c in connections where c.from == next && seen.insert(c.to).inserted { frontier.append(c.to) }
    }
    seen.remove(name)
    return seen
}

extension ProcessorRegistry {
    /// A JSON Schema (draft 2020-12) of graph files using these processors,
    /// for editor completion and checking. Pretty-printed with sorted keys.
    public func jsonSchema() -> String {
        func choice(_ values: [String], _ description: String) -> [String: Any] {
            ["enum": values, "description": description]
        }
        let parameterSchemas: [[String: Any]] = names.map { name in
            let spec = self[name]!
            var properties: [String: Any] = [:]
            for p in spec.parameters {
                var schema: [String: Any] = ["description": p.summary]
                switch p.kind {
                case .integer(let r): schema["type"] = "integer"; schema["minimum"] = r.lowerBound; if r.upperBound < Int.max { schema["maximum"] = r.upperBound }
                case .number(let r): schema["type"] = "number"; schema["minimum"] = r.lowerBound; schema["maximum"] = r.upperBound
                case .text, .inputFile: schema["type"] = "string"
                case .choice(let values): schema["enum"] = values
                case .flag: schema["type"] = "boolean"
                }
                if let d = p.defaultValue { schema["default"] = d.json }
                properties[p.name] = schema
            }
            let required = spec.parameters.filter { $0.defaultValue == nil }.map(\.name)
            var parameters: [String: Any] = ["type": "object", "additionalProperties": false, "properties": properties]
            if !required.isEmpty { parameters["required"] = required }
            var then: [String: Any] = ["properties": ["parameters": parameters]]
            if !required.isEmpty { then["required"] = ["parameters"] }
            return ["if": ["properties": ["processor": ["const": name]], "required": ["processor"]], "then": then]
        }
        /// A load balancer's mapping (under `loadbalancers`, with its name).
        func balancer(named: Bool) -> [String: Any] {
            var properties: [String: Any] = [
                "mode": choice(SplitMode.allCases.map(\.rawValue) + ["VERTICAL", "HORIZONTAL", "DB"],
                               "tiles (2D), columns (vertical), rows (horizontal) or data ranges (db); Equalizer's capitals are accepted"),
                "damping": ["type": "number", "minimum": 0, "maximum": 1, "default": 0.5,
                            "description": "how much of the previous split is kept (1 freezes it)"],
                "boundary": ["oneOf": [
                    ["type": "array", "items": ["type": "integer", "minimum": 1, "maximum": LoadBalancerConfig.maxBoundary], "minItems": 2, "maxItems": 2,
                     "description": "pixel alignment [x, y] (pixel modes)"],
                    ["type": "number", "minimum": 0, "exclusiveMaximum": 1, "description": "a fraction of the data range (db)"],
                ]],
                "resistance": ["type": "number", "minimum": 0, "maximum": LoadBalancerConfig.maxResistance, "default": 0,
                               "description": "smaller moves are ignored (pixels; a fraction in db)"],
                "weights": ["type": "array", "items": ["type": "number", "minimum": 0, "maximum": LoadBalancerConfig.maxWeight],
                            "description": "each server's share of the work (0: an empty tile)"],
            ]
            properties["split"] = choice(SplitMode.allCases.map(\.rawValue) + ["VERTICAL", "HORIZONTAL", "DB"], "Equalizer's word for 'mode'")
            if named { properties["name"] = ["type": "string", "description": "what compound queues call it in their 'loadbalancer'"] }
            return ["type": "object", "additionalProperties": false, "required": named ? ["name"] : [],
                    "description": "how a compound queue splits and rebalances its work", "properties": properties]
        }
        let queue: [String: Any] = [
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "processor"],
            "properties": [
                "name": ["type": "string", "pattern": "^[^\\s!:.]+$", "description": "unique within the graph"],
                "processor": choice(names, "the processor that runs on this queue"),
                "parameters": ["type": "object", "description": "the processor's typed parameters"],
                "size": ["type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 64, "description": "capacity in buffers"],
                "management": choice(managementNames, "what happens when the queue is full"),
                "red": [
                    "type": "object", "additionalProperties": false, "description": "random early drop parameters (management: red)",
                    "properties": [
                        "min": ["type": "number", "minimum": 0], "max": ["type": "number", "minimum": 0],
                        "max-probability": ["type": "number", "exclusiveMinimum": 0, "maximum": 1],
                        "weight": ["type": "number", "exclusiveMinimum": 0, "maximum": 1],
                        "seed": ["type": "integer", "minimum": 0],
                    ],
                ],
                "discipline": choice(disciplineNames, "the order buffers leave in"),
                "sync": choice(BufferSync.allCases.map(\.rawValue), "feedback to the sender"),
                "threading": choice(QueueThreading.allCases.map(\.rawValue), "which thread runs the processor"),
                "restart": choice(ChildOptions.Restart.allCases.map(\.rawValue), "threading: child or remote only: what the death of the child process or the host's worker does (default never: the graph stops)"),
                "host": ["type": "string", "description": "threading: remote only: the name of the host (under hosts) whose worker runs the queue and those after it on its thread"],
                "server-hosts": ["type": "array", "items": ["type": "string"],
                                 "description": "a compound queue's servers: one entry per server, 'local' or the name of a host (under hosts) whose worker renders that server's parts"],
                "buffers": choice(BufferManagement.allCases.map(\.rawValue), "where the processor's new buffers come from"),
                "byte-bound": ["type": "integer", "minimum": 1, "description": "bound on the queued payload bytes"],
                "pads": ["type": "integer", "minimum": 0, "maximum": 1024, "description": "out pads; default: one past the highest connected"],
                "servers": ["type": "integer", "minimum": 1, "maximum": QueueConfig.maxServers, "default": 1,
                            "description": "threads that share each frame's work (a compound queue)"],
                "loadbalancer": ["oneOf": [
                    ["type": "string", "description": "the name of a load balancer under 'loadbalancers'"],
                    balancer(named: false),
                ]],
                "network": ["type": "string", "description": "the node network under 'networks' that its frame jobs pull (processor: pull)"],
                "pool": [
                    "type": "object", "additionalProperties": false, "description": "the pool of a 'buffers: provider' queue",
                    "properties": [
                        "count": ["type": "integer", "minimum": 1, "maximum": 1_000_000],
                        "buffer-size": ["type": "integer", "minimum": 0],
                    ],
                ],
            ],
            "allOf": parameterSchemas,
        ]
        let connection: [String: Any] = [
            "oneOf": [
                ["type": "string", "pattern": "^\\s*[^\\s!:.]+(:[0-9]+)?\\s*->\\s*[^\\s!:.]+\\s*$", "description": "from[:pad] -> to"],
                [
                    "type": "object", "additionalProperties": false, "required": ["from", "to"],
                    "properties": ["from": ["type": "string"], "pad": ["type": "integer", "minimum": 0], "to": ["type": "string"]],
                ],
            ],
        ]
        let network: [String: Any] = [
            "type": "object", "additionalProperties": false, "required": ["name", "nodes"],
            "description": "a render node network (Lumiera's), pulled by the frame jobs of the pull queues that name it",
            "properties": [
                "name": ["type": "string", "description": "what pull queues call it in their 'network'"],
                "nodes": ["type": "array", "minItems": 1, "items": [
                    "type": "object", "additionalProperties": false, "required": ["name", "processor"],
                    "properties": [
                        "name": ["type": "string", "description": "unique within the network"],
                        "processor": choice(names, "a generator, a filter or composite"),
                        "parameters": ["type": "object", "description": "the processor's typed parameters"],
                    ],
                ]],
                "connections": ["type": "array", "items": connection, "description": "a -> b: b pulls a (a compositor's layer 0 first, then layer 1)"],
            ],
        ]
        let schema: [String: Any] = [
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://queuegraph.dev/schema/graph.schema.json",
            "title": "QueueGraph graph file",
            "type": "object",
            "additionalProperties": false,
            "required": ["queues"],
            "properties": [
                "queues": ["type": "array", "minItems": 1, "items": queue],
                "loadbalancers": ["type": "array", "items": balancer(named: true), "description": "load balancers that compound queues name (Equalizer's configuration)"],
                "networks": ["type": "array", "items": network, "description": "render node networks that pull queues name (Lumiera's model)"],
                "hosts": ["type": "array", "description": "the hosts remote queues run on: where each one's worker (qgraph worker) listens",
                          "items": ["type": "object", "additionalProperties": false, "required": ["name", "address", "port"],
                                    "properties": ["name": ["type": "string"],
                                                   "address": ["type": "string", "description": "an IPv4 or IPv6 address"],
                                                   "port": ["type": "integer", "minimum": 1, "maximum": 65535],
                                                   "silence-ms": ["type": "integer", "minimum": 20, "maximum": 600000, "default": 150,
                                                                  "description": "how long a silence from the host means it is gone"]]]],
                "connections": ["type": "array", "items": connection],
                "residency-sample-interval": ["type": "integer", "minimum": 1, "default": 16,
                                              "description": "every n-th buffer through a queue has its residency timed"],
                "stats-interval-ms": ["type": "integer", "minimum": 0, "maximum": 3_600_000, "default": 100,
                                      "description": "milliseconds between queue_stats trace events while a session enables them (0: only at stop)"],
            ],
        ]
        let data = try! JSONSerialization.data(withJSONObject: schema, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
