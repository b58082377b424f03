extension GraphStatistics {
    /// The per-queue and per-pool statistics as an aligned text table.
    public func table() -> String {
        var rows: [[String]] = [["queue", "thread", "arrived", "popped", "dropped", "acks", "naks", "abandoned",
                                 "max depth", "residency mean", "residency max", "bytes queued", "bytes allocated"]]
        for q in queues {
            let drops = q.dropped.isEmpty ? "0"
                : q.dropped.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            rows.append([q.name, "\(q.thread)", "\(q.arrived)", "\(q.popped)", drops, "\(q.acks)", "\(q.naks)", "\(q.abandoned)",
                         "\(q.maxDepth)", formatNanoseconds(q.residencyMeanNanoseconds), formatNanoseconds(Double(q.residencyMaxNanoseconds)),
                         formatBytes(q.bytesQueued), formatBytes(q.bytesAllocated)])
        }
        var text = aligned(rows)
        if !pools.isEmpty {
            var poolRows = [["pool", "capacity", "acquired", "consumed", "dropped", "abandoned", "in use", "peak", "exhausted",
                             "bytes in use", "bytes allocated"]]
            for p in pools {
                poolRows.append([p.name, "\(p.capacity)", "\(p.acquired)", "\(p.consumed)", "\(p.dropped)", "\(p.abandoned)",
                                 "\(p.inUse)", "\(p.peakInUse)", "\(p.exhausted)", formatBytes(p.bytesInUse), formatBytes(p.bytesAllocated)])
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

/// Bytes in binary units: 512 B, 1.5 KiB, 24 MiB.
func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes), unit = 0
    while value >= 1024 && unit < units.count - 1 { (value, unit) = (value / 1024, unit + 1) }
    let digits = unit == 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2
    return "\(unit == 0 ? String(bytes) : String(format: digits, value)) \(units[unit])"
}

/// `value` with `digits` decimals and a point whatever the locale (no Foundation in the core).
private extension String {
    init(format digits: Int, _ value: Double) {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int((value * scale).rounded())
        let whole = scaled / Int(scale), fraction = scaled % Int(scale)
        let text = String(fraction)
        self = digits == 0 ? "\(whole)" : "\(whole)." + String(repeating: "0", count: digits - text.count) + text
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
