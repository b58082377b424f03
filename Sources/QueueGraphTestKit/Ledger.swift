import QueueGraphCore

/// Checks that every buffer is accounted for.
///
/// Threading: any thread; pass a snapshot taken after the graph stopped.
public enum Ledger {
    /// What does not balance in `statistics` and in each extra pool
    /// (including leaked buffers of tracking pools); empty when all is well.
    public static func problems(_ statistics: GraphStatistics, pools: [BufferPool] = []) -> [String] {
        var extra = statistics
        extra.pools += pools.map { $0.statistics() }
        var problems = extra.ledgerProblems(stopped: true)
        for case let pool as TrackingPool in pools where !pool.leaks().isEmpty {
            problems.append("pool '\(pool.name)' leaked buffers \(pool.leaks().prefix(10))")
        }
        return problems
    }
}
