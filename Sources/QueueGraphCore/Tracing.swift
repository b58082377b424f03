import CQueueGraphTrace
import Synchronization

/// QueueGraph's LTTng-UST tracepoints (provider `qgraph`, docs/tracing.md).
///
/// Every event is checked with one load before any argument is built, so a
/// disabled event costs a couple of nanoseconds and an enabled one allocates
/// nothing. Built without the `LTTng` trait, every event stays off.
///
/// Threading: any thread.
public enum Tracing {
    /// Whether this build emits tracepoints (the package's `LTTng` trait).
    public static var isCompiledIn: Bool { qg_trace_compiled_in() != 0 }

    /// Whether a tracing session has enabled `event` now.
    @inline(__always)
    static func on(_ event: qg_trace_event) -> Bool { qg_trace_on(event) != 0 }

    /// Ids for the graphs of this process, as events name them (`graph` field).
    private static let nextGraph = Atomic<UInt32>(0)
    static func newGraphID() -> UInt32 { nextGraph.wrappingAdd(1, ordering: .relaxed).oldValue }
}

extension GraphEngine {
    /// Emits `graph_start`, and describes every queue and pool (`graph_queue`,
    /// `graph_pool`) so that a trace can name them.
    public func traceStart(name: String) {
        guard Tracing.on(QG_TP_GRAPH_START) || Tracing.on(QG_TP_GRAPH_QUEUE) || Tracing.on(QG_TP_GRAPH_POOL) else { return }
        qg_tp_graph_start(traceID, name, UInt32(queues.count), UInt32(schedulers.count))
        for queue in queues {
            qg_tp_graph_queue(traceID, UInt32(queue.index), queue.name, UInt32(queue.size), UInt32(queue.group))
        }
        for (i, creator) in creators.enumerated() {
            let s = creator.statistics()
            qg_tp_graph_pool(traceID, UInt32(i), s.name, UInt32(s.capacity), UInt64((creator as? BufferPool)?.payloadCapacity ?? 0))
        }
    }

    public func tracePause() { if Tracing.on(QG_TP_GRAPH_PAUSE) { qg_tp_graph_pause(traceID) } }

    public func traceStop(abandon: Bool) { if Tracing.on(QG_TP_GRAPH_STOP) { qg_tp_graph_stop(traceID, abandon ? 1 : 0) } }

    /// Emits one `queue_stats` snapshot per queue (the counters as they are
    /// now); allocates nothing.
    public func traceQueueStatistics() {
        guard Tracing.on(QG_TP_QUEUE_STATS) else { return }
        for queue in queues {
            let c = queue.counters
            withUnsafeTemporaryAllocation(of: UInt64.self, capacity: DropReason.allCases.count) { dropped in
                for reason in DropReason.allCases { dropped[reason.rawValue] = UInt64(c.dropped(reason).value) }
                qg_tp_queue_stats(traceID, UInt32(queue.index), UInt32(clamping: queue.depth), UInt32(clamping: c.maxDepth.value),
                                  UInt64(c.arrived.value), UInt64(c.popped.value), dropped.baseAddress,
                                  UInt64(c.acks.value), UInt64(c.naks.value), UInt64(c.abandoned.value))
            }
        }
    }

    /// Emits `sched_idle` for a group's thread about to sleep.
    @_spi(Runtime) public func traceIdle(group: Int) {
        if Tracing.on(QG_TP_SCHED_IDLE) { qg_tp_sched_idle(traceID, UInt32(group)) }
    }

    /// Emits `sched_wake` for a group's thread that slept `idle` nanoseconds.
    @_spi(Runtime) public func traceWake(group: Int, idleNanoseconds: UInt64, notified: Bool) {
        if Tracing.on(QG_TP_SCHED_WAKE) { qg_tp_sched_wake(traceID, UInt32(group), idleNanoseconds, notified ? 1 : 0) }
    }
}
