/// A snapshot of one queue's counters.
///
/// Balance: `arrived == popped + queueDrops + abandoned + depth`, where
/// `queueDrops` counts the reasons a queue drops on arrival
/// (`DropReason.isOnArrival`).
public struct QueueStatistics: Sendable, Equatable {
    public var name: String
    /// The thread group that runs the queue's processor.
    public var thread: Int
    /// Buffers offered (accepted or dropped on arrival).
    public var arrived: Int
    /// Buffers taken out by the processor.
    public var popped: Int
    /// Drops by reason.
    public var dropped: [DropReason: Int]
    /// Acks and naks sent back to senders.
    public var acks: Int
    public var naks: Int
    /// Buffers released unprocessed by an abandoning stop.
    public var abandoned: Int
    public var depth: Int
    public var maxDepth: Int
    /// Payload bytes of the popped buffers.
    public var bytesPopped: Int
    /// Payload bytes waiting in the queue now.
    public var bytesQueued = 0
    /// Bytes the queue's own storage takes (its slots; the buffers belong to their pools).
    public var bytesAllocated = 0
    /// Mean and maximum time in the queue of the sampled buffers, in nanoseconds.
    public var residencyMeanNanoseconds: Double
    public var residencyMaxNanoseconds: Int
    public var residencySamples: Int
    /// A source's buffers sent on: what its downstream queues received from
    /// it, when it alone feeds them (nil otherwise, and for other queues,
    /// whose `popped` says what went through them).
    public var sent: Int? = nil

    /// Drops that happen on arrival, before any pop.
    public var queueDrops: Int {
        dropped.filter { $0.key.isOnArrival }.values.reduce(0, +)
    }

    /// Popped buffers its processor took (not dropped after the pop): what a sink delivered.
    public var processed: Int { popped - dropped.filter { !$0.key.isOnArrival }.values.reduce(0, +) }

    public var totalDropped: Int { dropped.values.reduce(0, +) }

    /// True when every arrival is accounted for.
    public var isBalanced: Bool { arrived == popped + queueDrops + abandoned + depth }
}

/// A snapshot of one scheduler thread's counters.
public struct ThreadStatistics: Sendable, Equatable {
    public var group: Int
    /// Names of the queues it runs.
    public var queues: [String]
    public var invocations: Int
    public var busyNanoseconds: Int
    public var idleNanoseconds: Int
    public var wakeups: Int
}

/// A snapshot of a whole graph: queues, pools and threads.
///
/// Taken at any time from any thread; while running, counters of different
/// queues are read at slightly different moments.
public struct GraphStatistics: Sendable, Equatable {
    public var queues: [QueueStatistics]
    public var pools: [PoolStatistics]
    public var threads: [ThreadStatistics]
    /// One per `child` or `remote` queue: its link, the child or host on the
    /// far side, and what crossed (the far side's queues and thread are also
    /// in `queues` and `threads`).
    public var links: [LinkStatistics] = []

    public subscript(queue name: String) -> QueueStatistics? { queues.first { $0.name == name } }

    /// Buffers the named sink queues processed (popped and not dropped by their processor): what the graph delivered.
    public func delivered(sinks: Set<String>) -> Int { queues.filter { sinks.contains($0.name) }.map(\.processed).reduce(0, +) }

    /// Drops for `reason` over every queue.
    public func dropped(_ reason: DropReason) -> Int { queues.map { $0.dropped[reason] ?? 0 }.reduce(0, +) }

    /// What does not balance, one line per problem; empty when the ledger
    /// balances. With `stopped`, also requires empty queues and no buffer out.
    public func ledgerProblems(stopped: Bool = true) -> [String] {
        var problems: [String] = []
        for q in queues {
            if !q.isBalanced {
                problems.append("queue '\(q.name)': arrived \(q.arrived) != popped \(q.popped) + dropped \(q.queueDrops) + abandoned \(q.abandoned) + depth \(q.depth)")
            }
            if stopped && q.depth != 0 { problems.append("queue '\(q.name)': \(q.depth) buffers still queued") }
        }
        for p in pools {
            if !p.isBalanced {
                problems.append("pool '\(p.name)': acquired \(p.acquired) != consumed \(p.consumed) + dropped \(p.dropped) + abandoned \(p.abandoned) + in use \(p.inUse)")
            }
            if stopped && p.inUse != 0 { problems.append("pool '\(p.name)': \(p.inUse) buffers leaked (still in use)") }
        }
        return problems
    }
}

extension QueueCounters {
    func snapshot(name: String, thread: Int, depth: Int) -> QueueStatistics {
        var dropped: [DropReason: Int] = [:]
        for reason in DropReason.allCases where self.dropped(reason).value != 0 {
            dropped[reason] = self.dropped(reason).value
        }
        let samples = residencySamples.value
        return QueueStatistics(
            name: name, thread: thread, arrived: arrived.value, popped: popped.value, dropped: dropped,
            acks: acks.value, naks: naks.value, abandoned: abandoned.value, depth: depth,
            maxDepth: maxDepth.value, bytesPopped: bytesPopped.value,
            residencyMeanNanoseconds: samples == 0 ? 0 : Double(residencyTotal.value) / Double(samples),
            residencyMaxNanoseconds: residencyMax.value, residencySamples: samples
        )
    }
}
