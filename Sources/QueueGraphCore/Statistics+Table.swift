extension GraphStatistics {
    /// The per-queue and per-pool statistics as an aligned text table.
    public func table() -> String {
        var rows: [[String]] = [["queue", "thread", "arrived", "popped", "dropped", "acks", "naks", "abandoned",
                                 "max depth", "residency mean", "residency max"]]
        for q in queues {
            let drops = q.dropped.isEmpty ? "0"
                : q.dropped.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            rows.append([q.name, "\(q.thread)", "\(q.arrived)", "\(q.popped)", drops, "\(q.acks)", "\(q.naks)", "\(q.abandoned)",
                         "\(q.maxDepth)", formatNanoseconds(q.residencyMeanNanoseconds), formatNanoseconds(Double(q.residencyMaxNanoseconds))])
        }
        var text = aligned(rows)
        if !pools.isEmpty {
            var poolRows = [["pool", "capacity", "acquired", "consumed", "dropped", "abandoned", "in use", "peak", "exhausted"]]
            for p in pools {
                poolRows.append([p.name, "\(p.capacity)", "\(p.acquired)", "\(p.consumed)", "\(p.dropped)", "\(p.abandoned)",
                                 "\(p.inUse)", "\(p.peakInUse)", "\(p.exhausted)"])
            }
            text += "\n" + aligned(poolRows)
        }
        return text
    }
}

private func formatNanoseconds(_ ns: Double) -> String {
    switch ns {
    case ..<1_000: "\(Int(ns)) ns"
    case ..<1_000_000: "\(Int(ns / 1_000)) µs"
    default: "\(Int(ns / 1_000_000)) ms"
    }
}

/// Left-aligns the first column and right-aligns the others.
private func aligned(_ rows: [[String]]) -> String {
    let widths = rows[0].indices.map { c in rows.map { $0[c].count }.max()! }
    return rows.map { row in
        row.enumerated().map { c, cell in
            let pad = String(repeating: " ", count: widths[c] - cell.count)
            return c == 0 ? cell + pad : pad + cell
        }.joined(separator: "  ")
    }.joined(separator: "\n") + "\n"
}
