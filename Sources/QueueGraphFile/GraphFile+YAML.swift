import QueueGraphCore

extension GraphFile {
    /// The graph as graph-file YAML, every key written out: reading it back
    /// gives the same graph (a fixed point of read and write). Numbers are
    /// written in Swift's shortest round-trip form, which no C locale
    /// changes (no decimal comma under `de_DE.UTF-8`).
    public func yaml() -> String {
        var out = "# \(file), as QueueGraph reads it\n"
        if !config.hosts.isEmpty { out += "hosts:\n" }
        for host in config.hosts {
            out += "  - {name: \(yamlString(host.name)), address: \(yamlString(host.address)), port: \(host.port)"
                + (host.silenceMilliseconds.map { ", silence-ms: \($0)" } ?? "") + "}\n"
        }
        if !networks.isEmpty { out += "networks:\n" }
        for network in networks {
            out += "  - name: \(yamlString(network.name))\n    nodes:\n"
            for node in network.nodes {
                out += "      - {name: \(yamlString(node.name)), processor: \(yamlString(node.processor)), parameters: {"
                    + node.parameters.values.sorted { $0.key < $1.key }.map { "\($0.key): \(yamlValue($0.value))" }.joined(separator: ", ") + "}}\n"
            }
            let links = network.nodes.flatMap { node in node.inputs.map { "\(network.nodes[$0].name) -> \(node.name)" } }
            if !links.isEmpty { out += "    connections:\n" + links.map { "      - \(yamlString($0))\n" }.joined() }
        }
        out += "queues:\n"
        for (declared, q) in zip(queues, config.queues) {
            var lines = ["name: \(yamlString(q.name))", "processor: \(yamlString(declared.processor))"]
            if !declared.parameters.values.isEmpty {
                lines.append("parameters:")
                for (key, value) in declared.parameters.values.sorted(by: { $0.key < $1.key }) {
                    lines.append("  \(key): \(yamlValue(value))")
                }
            }
            lines.append("size: \(q.size)")
            lines.append("management: \(q.management.name)")
            if case .red(let red) = q.management {
                lines.append("red: {min: \(red.minThreshold.formatted), max: \(red.maxThreshold.formatted), "
                    + "max-probability: \(red.maxProbability.formatted), weight: \(red.weight.formatted), seed: \(red.seed)}")
            }
            lines += ["discipline: \(q.discipline.name)", "sync: \(q.sync.rawValue)", "threading: \(q.threading.rawValue)",
                      "buffers: \(q.buffers.rawValue)"]
            if q.threading == .child || q.threading == .remote { lines.append("restart: \(q.child.restart.rawValue)") }
            if let host = q.host { lines.append("host: \(yamlString(host))") }
            if !q.serverHosts.isEmpty { lines.append("server-hosts: [" + q.serverHosts.map { yamlString($0 ?? "local") }.joined(separator: ", ") + "]") }
            if let bound = q.byteBound { lines.append("byte-bound: \(bound)") }
            lines.append("pads: \(q.outPads)")
            if let pool = declared.pool { lines.append("pool: {count: \(pool.count), buffer-size: \(pool.bufferSize)}") }
            if let network = declared.network { lines.append("network: \(yamlString(network))") }
            if q.servers > 1 {
                let lb = q.loadBalancer
                let boundary = lb.mode.splitsPixels ? "[\(Int(lb.boundary.x)), \(Int(lb.boundary.y))]" : lb.boundary.x.formatted
                var fields = ["mode: \(lb.mode.rawValue)", "damping: \(lb.damping.formatted)", "boundary: \(boundary)",
                              "resistance: \(lb.resistance.formatted)"]
                if let weights = lb.weights { fields.append("weights: [\(weights.map(\.formatted).joined(separator: ", "))]") }
                lines += ["servers: \(q.servers)", "loadbalancer: {\(fields.joined(separator: ", "))}"]
            }
            out += "  - " + lines.joined(separator: "\n    ") + "\n"
        }
        if !config.connections.isEmpty {
            out += "connections:\n"
            for c in config.connections { out += "  - \(yamlString("\(c.from):\(c.pad) -> \(c.to)"))\n" }
        }
        out += "residency-sample-interval: \(config.residencySampleInterval)\n"
        out += "stats-interval-ms: \(config.queueStatsIntervalNanoseconds / 1_000_000)\n"
        return out
    }
}

/// A double-quoted YAML string (JSON escapes).
private func yamlString(_ text: String) -> String {
    var out = ""
    appendJSONQuoted(text, to: &out)
    return out
}

private func yamlValue(_ value: ParameterValue) -> String {
    switch value {
    case .integer(let v): "\(v)"
    case .number(let v): v.formatted
    case .text(let v): yamlString(v)
    case .flag(let v): v ? "true" : "false"
    }
}
