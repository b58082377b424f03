import Foundation

/// What `qgraph top` shows of a running graph, like pw-top: per queue its
/// depth against its size, the buffers in and out per second, drops by
/// reason, mean residency and deadline misses; per thread its busy share
/// and wakeups per second; per pool the buffers in use. Rates are taken
/// between two snapshots; the first shows totals since the start.
///
/// Threading: a value; one thread at a time.
public struct TopView {
    /// The order of the queue rows.
    public enum Sort: String, CaseIterable, Sendable {
        case out, `in`, depth, drops, name
    }

    public var sort: Sort
    private let graph: String
    private let pid: Int
    private let started: Double
    private let sizes: [String: Int]
    private var previous: (time: Double, stats: [String: Any])?

    /// `dump`: the endpoint's `dump` answer (names, sizes, start time).
    public init(dump: [String: Any], sort: Sort = .out) {
        graph = dump["graph"] as? String ?? "?"
        pid = dump["pid"] as? Int ?? 0
        started = dump["started"] as? Double ?? 0
        sizes = Dictionary((dump["queues"] as? [[String: Any]] ?? []).compactMap { q in
            (q["name"] as? String).map { ($0, q["size"] as? Int ?? 0) }
        }, uniquingKeysWith: { a, _ in a })
        self.sort = sort
    }

    /// The screen for `stats` (a `stats` answer) taken at `time` (Unix seconds).
    public mutating func render(_ stats: [String: Any], at time: Double) -> String {
        defer { previous = (time, stats) }
        let seconds = previous.map { max(time - $0.time, 1e-9) } ?? max(time - started, 1e-9)
        func before(_ table: String, _ name: String, _ key: String) -> Double {
            guard let rows = previous?.stats[table] as? [[String: Any]] else { return 0 }
            return number(rows.first { "\($0[table == "threads" ? "thread" : "name"] ?? "")" == name }?[key])
        }
        var lines = [String(format: "qgraph top: %@ (pid %d), up %.1f s; queues by %@", graph, pid, time - started, sort.rawValue)]

        struct Row {
            var name: String, thread: Int, depth: Int, size: Int, inRate: Double, outRate: Double, drops: [(String, Int)], residency: Double, misses: Int
            var dropCount: Int { drops.map(\.1).reduce(0, +) }
        }
        var rows = (stats["queues"] as? [[String: Any]] ?? []).map { q -> Row in
            let name = q["name"] as? String ?? "?"
            let dropped = (q["dropped"] as? [String: Any] ?? [:]).map { ($0.key, Int(number($0.value))) }.sorted { $0.0 < $1.0 }
            let out = q["sent"] == nil || q["sent"] is NSNull ? "popped" : "sent"   // a source pops nothing: its out is what it sent
            return Row(name: name, thread: q["thread"] as? Int ?? 0, depth: q["depth"] as? Int ?? 0, size: sizes[name] ?? 0,
                       inRate: (number(q["arrived"]) - before("queues", name, "arrived")) / seconds,
                       outRate: (number(q[out]) - before("queues", name, out)) / seconds,
                       drops: dropped, residency: number(q["residency_mean_ns"]), misses: dropped.first { $0.0 == "late" }?.1 ?? 0)
        }
        rows.sort { a, b in
            switch sort {
            case .out: a.outRate != b.outRate ? a.outRate > b.outRate : a.name < b.name
            case .in: a.inRate != b.inRate ? a.inRate > b.inRate : a.name < b.name
            case .depth: a.depth != b.depth ? a.depth > b.depth : a.name < b.name
            case .drops: a.dropCount != b.dropCount ? a.dropCount > b.dropCount : a.name < b.name
            case .name: a.name < b.name
            }
        }
        lines.append(columns("QUEUE", "THR", "DEPTH/SIZE", "IN/s", "OUT/s", "RESIDENCY", "MISSES", "DROPS"))
        for row in rows {
            let drops = row.drops.isEmpty ? "-" : row.drops.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
            lines.append(columns(row.name, "\(row.thread)", "\(row.depth)/\(row.size)", rate(row.inRate), rate(row.outRate),
                                 duration(row.residency), "\(row.misses)", drops))
        }
        lines.append("")
        lines.append(columns("THREAD", "BUSY %", "WAKE/s", "QUEUES"))
        for t in stats["threads"] as? [[String: Any]] ?? [] {
            let id = "\(t["thread"] ?? "?")"
            let busy = number(t["busy_ns"]) - before("threads", id, "busy_ns")
            let idle = number(t["idle_ns"]) - before("threads", id, "idle_ns")
            let wakeups = (number(t["wakeups"]) - before("threads", id, "wakeups")) / seconds
            lines.append(columns(id, String(format: "%.1f", busy + idle > 0 ? busy / (busy + idle) * 100 : 0), rate(wakeups),
                                 (t["queues"] as? [String] ?? []).joined(separator: ", ")))
        }
        lines.append("")
        lines.append(columns("POOL", "IN USE/CAP", "PEAK", "EXHAUSTED"))
        for p in stats["pools"] as? [[String: Any]] ?? [] {
            lines.append(columns(p["name"] as? String ?? "?", "\(p["in_use"] ?? 0)/\(p["capacity"] ?? 0)", "\(p["peak_in_use"] ?? 0)", "\(p["exhausted"] ?? 0)"))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Fixed-width columns: the first left-aligned in 18, then right-aligned in 11, the last as it is.
    private func columns(_ fields: String...) -> String {
        fields.enumerated().map { i, field in
            if i == fields.count - 1 && i > 0 { return "  " + field }
            let width = i == 0 ? 18 : 11
            let padding = String(repeating: " ", count: max(0, width - field.count))
            return i == 0 ? field + padding : padding + field
        }.joined()
    }

    private func rate(_ value: Double) -> String { value >= 100 ? String(format: "%.0f", value) : String(format: "%.1f", value) }

    private func duration(_ nanoseconds: Double) -> String {
        switch nanoseconds {
        case 0: "-"
        case ..<1_000: String(format: "%.0f ns", nanoseconds)
        case ..<1_000_000: String(format: "%.0f µs", nanoseconds / 1e3)
        case ..<1_000_000_000: String(format: "%.1f ms", nanoseconds / 1e6)
        default: String(format: "%.2f s", nanoseconds / 1e9)
        }
    }

    private func number(_ value: Any?) -> Double {
        switch value {
        case let n as NSNumber: n.doubleValue
        case let d as Double: d
        case let i as Int: Double(i)
        default: 0
        }
    }
}
