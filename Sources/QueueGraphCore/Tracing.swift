import CQueueGraphTrace
import Synchronization

/// QueueGraph's LTTng-UST tracepoints (provider `qgraph`, docs/tracing.md).
///
/// Every event is checked with two loads (the state's address, then the state) before any argument is built, so a
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

    /// Counts a creator's acquire (`returned` nil) or a return with its fate
    /// in the calling thread's `pool_flow` window; cheap while the event is off.
    @inline(__always)
    public static func countPoolFlow(_ id: PoolTraceID, returned fate: BufferFate? = nil) {
        if on(QG_TP_POOL_FLOW) { qg_flow_pool(id.graph, id.pool, fate.map { UInt8($0.rawValue + 1) } ?? 0) }
    }

    /// Ids for the graphs of this process, as events name them (`graph` field).
    private static let nextGraph = Atomic<UInt32>(0)
    static func newGraphID() -> UInt32 { nextGraph.wrappingAdd(1, ordering: .relaxed).oldValue }
}

/// Which creator of which running graph a `pool_flow` count belongs to.
///
/// Threading: a value; any thread.
public struct PoolTraceID: Sendable, Equatable {
    public var graph: UInt32
    public var pool: UInt32

    public init(graph: UInt32, pool: UInt32) {
        self.graph = graph
        self.pool = pool
    }
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

    /// Emits one `queue_stats` snapshot per queue and one `pool_stats` per
    /// pool (the counters as they are now); allocates nothing.
    public func traceStatistics() {
        if Tracing.on(QG_TP_POOL_STATS) {
            for (i, creator) in creators.enumerated() {
                let s = creator.statistics()
                withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 9) { fields in
                    (fields[0], fields[1], fields[2], fields[3]) = (UInt64(s.acquired), UInt64(s.consumed), UInt64(s.dropped), UInt64(s.abandoned))
                    (fields[4], fields[5], fields[6]) = (UInt64(s.inUse), UInt64(s.peakInUse), UInt64(s.exhausted))
                    (fields[7], fields[8]) = (UInt64(clamping: s.bytesInUse), UInt64(clamping: s.bytesAllocated))
                    qg_tp_pool_stats(traceID, UInt32(i), fields.baseAddress)
                }
            }
        }
        guard Tracing.on(QG_TP_QUEUE_STATS) else { return }
        assert(DropReason.allCases.count == Int(QG_DROP_REASONS), "queue_stats has one field per DropReason")
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: Int(QG_STATS_COUNT.rawValue)) { fields in
            func set(_ field: qg_stats_field, _ value: Int) { fields[Int(field.rawValue)] = UInt64(clamping: value) }
            for queue in queues {
                let c = queue.counters
                set(QG_STATS_DEPTH, queue.depth)
                set(QG_STATS_MAX_DEPTH, c.maxDepth.value)
                set(QG_STATS_ARRIVED, c.arrived.value)
                set(QG_STATS_POPPED, c.popped.value)
                for reason in DropReason.allCases { fields[Int(QG_STATS_DROPPED.rawValue) + reason.rawValue] = UInt64(c.dropped(reason).value) }
                set(QG_STATS_ACKS, c.acks.value)
                set(QG_STATS_NAKS, c.naks.value)
                set(QG_STATS_ABANDONED, c.abandoned.value)
                set(QG_STATS_RESIDENCY_TOTAL, c.residencyTotal.value)
                set(QG_STATS_RESIDENCY_SAMPLES, c.residencySamples.value)
                set(QG_STATS_RESIDENCY_MAX, c.residencyMax.value)
                set(QG_STATS_BYTES_QUEUED, queue.bytesQueued)
                set(QG_STATS_BYTES_ALLOCATED, queue.bytesAllocated)
                qg_tp_queue_stats(traceID, UInt32(queue.index), fields.baseAddress)
            }
        }
    }

    /// Makes the calling thread, which runs `group`, count its flow in a
    /// window (`queue_flow`, `pool_flow`) instead of emitting every count.
    @_spi(Runtime) public func traceThreadBegin(group: Int) { qg_flow_thread(UInt32(group)) }

    /// Emits and frees the calling thread's flow window, as it ends.
    @_spi(Runtime) public func traceThreadEnd() { qg_flow_thread_end() }

    /// Emits the calling thread's flow window: before it sleeps, parks or ends.
    @_spi(Runtime) public func traceFlush() {
        if Tracing.on(QG_TP_QUEUE_FLOW) || Tracing.on(QG_TP_POOL_FLOW) { qg_flow_flush() }
    }

    /// Emits the thread's flow window, then `sched_idle` for a group's thread about to sleep.
    @_spi(Runtime) public func traceIdle(group: Int) {
        traceFlush()
        if Tracing.on(QG_TP_SCHED_IDLE) { qg_tp_sched_idle(traceID, UInt32(group)) }
    }

    /// Emits `sched_wake` for a group's thread that slept `idle` nanoseconds.
    @_spi(Runtime) public func traceWake(group: Int, idleNanoseconds: UInt64, notified: Bool) {
        if Tracing.on(QG_TP_SCHED_WAKE) { qg_tp_sched_wake(traceID, UInt32(group), idleNanoseconds, notified ? 1 : 0) }
    }
}

extension ProcessContext {
    /// Emits `frame_start`: this queue begins frame `frame` with `slackNanoseconds` left to its deadline.
    public func traceFrameStart(_ frame: Int64, slackNanoseconds: Int64) {
        guard Tracing.on(QG_TP_FRAME_START) else { return }
        withQueue { qg_tp_frame_start($0.traceGraph, UInt32($0.index), frame, slackNanoseconds) }
    }

    /// Emits `frame_end`: this queue finished frame `frame` after `workNanoseconds`.
    public func traceFrameEnd(_ frame: Int64, workNanoseconds: UInt64) {
        guard Tracing.on(QG_TP_FRAME_END) else { return }
        withQueue { qg_tp_frame_end($0.traceGraph, UInt32($0.index), frame, workNanoseconds) }
    }

    /// Emits `frame_deadline_miss`: frame `frame` was dropped `lateNanoseconds` after its deadline.
    public func traceDeadlineMiss(_ frame: Int64, lateNanoseconds: UInt64) {
        guard Tracing.on(QG_TP_FRAME_DEADLINE_MISS) else { return }
        withQueue { qg_tp_frame_deadline_miss($0.traceGraph, UInt32($0.index), frame, lateNanoseconds) }
    }

    /// Emits `lb_split` for one server of a compound queue: its part of frame `frame` and its time on it.
    public func traceLoadBalance(frame: Int64, server: Int, part: SplitPart, workNanoseconds: UInt64) {
        guard Tracing.on(QG_TP_LB_SPLIT) else { return }
        withQueue {
            qg_tp_lb_split($0.traceGraph, UInt32($0.index), frame, UInt32(server), part.x0, part.y0, part.x1, part.y1, workNanoseconds)
        }
    }
}
