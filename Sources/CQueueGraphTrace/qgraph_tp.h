/* The LTTng-UST tracepoint provider "qgraph" (lttng-ust 2.13). Private to
 * qgraph_tp.c; Swift sees include/qgraph_trace.h. */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER qgraph
#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "qgraph_tp.h"

#if !defined(QGRAPH_TP_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define QGRAPH_TP_H
#include <lttng/tracepoint.h>
#include <stdint.h>
#include "qgraph_trace.h"   /* QG_STATS_*: queue_stats' field order */

/* DropReason, in its declaration order. */
LTTNG_UST_TRACEPOINT_ENUM(qgraph, drop_reason,
    LTTNG_UST_TP_ENUM_VALUES(
        lttng_ust_field_enum_value("taildrop", 0)
        lttng_ust_field_enum_value("headdrop", 1)
        lttng_ust_field_enum_value("red", 2)
        lttng_ust_field_enum_value("bytes", 3)
        lttng_ust_field_enum_value("failed", 4)
        lttng_ust_field_enum_value("no-buffer", 5)
        lttng_ust_field_enum_value("closed", 6)
        lttng_ust_field_enum_value("late", 7)
        lttng_ust_field_enum_value("lost", 8)
        lttng_ust_field_enum_value("corrupt", 9)
        lttng_ust_field_enum_value("policy", 10)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, graph_start,
    LTTNG_UST_TP_ARGS(uint32_t, graph, const char *, name, uint32_t, queues, uint32_t, threads),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_string(name, name)
        lttng_ust_field_integer(uint32_t, queues, queues)
        lttng_ust_field_integer(uint32_t, threads, threads)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, graph_queue,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, const char *, name, uint32_t, size, uint32_t, thread),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, queue, queue)
        lttng_ust_field_string(name, name)
        lttng_ust_field_integer(uint32_t, size, size)
        lttng_ust_field_integer(uint32_t, thread, thread)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, graph_pool,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, pool, const char *, name, uint32_t, capacity, uint64_t, payload_size),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, pool, pool)
        lttng_ust_field_string(name, name)
        lttng_ust_field_integer(uint32_t, capacity, capacity)
        lttng_ust_field_integer(uint64_t, payload_size, payload_size)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, graph_pause,
    LTTNG_UST_TP_ARGS(uint32_t, graph),
    LTTNG_UST_TP_FIELDS(lttng_ust_field_integer(uint32_t, graph, graph)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, graph_stop,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint8_t, abandon),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint8_t, abandon, abandon)))

/* A thread's traffic through one queue since its last queue_flow: never
 * one event per buffer (an event costs more than a hop), a count instead.
 * c[]: the slot's counters (QG_FLOW_*). */
LTTNG_UST_TRACEPOINT_EVENT(qgraph, queue_flow,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, uint32_t, thread, const uint64_t *, c),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, queue, queue)
        lttng_ust_field_integer(uint32_t, thread, thread)
        lttng_ust_field_integer(uint64_t, pushed, c[QG_FLOW_PUSHED])
        lttng_ust_field_integer(uint64_t, popped, c[QG_FLOW_POPPED])
        lttng_ust_field_integer(uint64_t, first_seq, c[QG_FLOW_FIRST_SEQ])
        lttng_ust_field_integer(uint64_t, last_seq, c[QG_FLOW_LAST_SEQ])
        lttng_ust_field_integer(uint64_t, max_depth, c[QG_FLOW_MAX_DEPTH])
        lttng_ust_field_integer(uint64_t, steps, c[QG_FLOW_STEPS])
        lttng_ust_field_integer(uint64_t, tier0, c[QG_FLOW_TIER0])
        lttng_ust_field_integer(uint64_t, tier1, c[QG_FLOW_TIER0 + 1])
        lttng_ust_field_integer(uint64_t, tier2, c[QG_FLOW_TIER0 + 2])
        lttng_ust_field_integer(uint64_t, tier3, c[QG_FLOW_TIER0 + 3])
        lttng_ust_field_integer(uint64_t, busy_ns, c[QG_FLOW_BUSY_NS])))

/* A thread's traffic through one pool since its last pool_flow. */
LTTNG_UST_TRACEPOINT_EVENT(qgraph, pool_flow,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, pool, uint32_t, thread, const uint64_t *, c),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, pool, pool)
        lttng_ust_field_integer(uint32_t, thread, thread)
        lttng_ust_field_integer(uint64_t, acquired, c[0])
        lttng_ust_field_integer(uint64_t, consumed, c[1])
        lttng_ust_field_integer(uint64_t, dropped, c[2])
        lttng_ust_field_integer(uint64_t, abandoned, c[3])))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, queue_drop,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, uint64_t, seq, uint8_t, reason),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, queue, queue)
        lttng_ust_field_integer(uint64_t, seq, seq)
        lttng_ust_field_enum(qgraph, drop_reason, uint8_t, reason, reason)))

/* c[]: the queue's counters in the field order below (QG_STATS_*). */
LTTNG_UST_TRACEPOINT_EVENT(qgraph, queue_stats,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, const uint64_t *, c),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, queue, queue)
        lttng_ust_field_integer(uint64_t, depth, c[QG_STATS_DEPTH])
        lttng_ust_field_integer(uint64_t, max_depth, c[QG_STATS_MAX_DEPTH])
        lttng_ust_field_integer(uint64_t, arrived, c[QG_STATS_ARRIVED])
        lttng_ust_field_integer(uint64_t, popped, c[QG_STATS_POPPED])
        lttng_ust_field_integer(uint64_t, taildrop, c[QG_STATS_DROPPED + 0])
        lttng_ust_field_integer(uint64_t, headdrop, c[QG_STATS_DROPPED + 1])
        lttng_ust_field_integer(uint64_t, red, c[QG_STATS_DROPPED + 2])
        lttng_ust_field_integer(uint64_t, bytes, c[QG_STATS_DROPPED + 3])
        lttng_ust_field_integer(uint64_t, failed, c[QG_STATS_DROPPED + 4])
        lttng_ust_field_integer(uint64_t, no_buffer, c[QG_STATS_DROPPED + 5])
        lttng_ust_field_integer(uint64_t, closed, c[QG_STATS_DROPPED + 6])
        lttng_ust_field_integer(uint64_t, late, c[QG_STATS_DROPPED + 7])
        lttng_ust_field_integer(uint64_t, lost, c[QG_STATS_DROPPED + 8])
        lttng_ust_field_integer(uint64_t, corrupt, c[QG_STATS_DROPPED + 9])
        lttng_ust_field_integer(uint64_t, policy, c[QG_STATS_DROPPED + 10])
        lttng_ust_field_integer(uint64_t, acks, c[QG_STATS_ACKS])
        lttng_ust_field_integer(uint64_t, naks, c[QG_STATS_NAKS])
        lttng_ust_field_integer(uint64_t, abandoned, c[QG_STATS_ABANDONED])
        lttng_ust_field_integer(uint64_t, residency_total_ns, c[QG_STATS_RESIDENCY_TOTAL])
        lttng_ust_field_integer(uint64_t, residency_samples, c[QG_STATS_RESIDENCY_SAMPLES])
        lttng_ust_field_integer(uint64_t, residency_max_ns, c[QG_STATS_RESIDENCY_MAX])
        lttng_ust_field_integer(uint64_t, bytes_queued, c[QG_STATS_BYTES_QUEUED])
        lttng_ust_field_integer(uint64_t, bytes_allocated, c[QG_STATS_BYTES_ALLOCATED])))

/* c[]: the pool's counters in the field order below. */
LTTNG_UST_TRACEPOINT_EVENT(qgraph, pool_stats,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, pool, const uint64_t *, c),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, pool, pool)
        lttng_ust_field_integer(uint64_t, acquired, c[0])
        lttng_ust_field_integer(uint64_t, consumed, c[1])
        lttng_ust_field_integer(uint64_t, dropped, c[2])
        lttng_ust_field_integer(uint64_t, abandoned, c[3])
        lttng_ust_field_integer(uint64_t, in_use, c[4])
        lttng_ust_field_integer(uint64_t, peak_in_use, c[5])
        lttng_ust_field_integer(uint64_t, exhausted, c[6])
        lttng_ust_field_integer(uint64_t, bytes_in_use, c[7])
        lttng_ust_field_integer(uint64_t, bytes_allocated, c[8])))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, feedback_ack,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, uint32_t, sender, uint64_t, seq),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, queue, queue)
        lttng_ust_field_integer(uint32_t, sender, sender)
        lttng_ust_field_integer(uint64_t, seq, seq)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, feedback_nak,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, uint32_t, sender, uint64_t, seq, uint8_t, reason),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, queue, queue)
        lttng_ust_field_integer(uint32_t, sender, sender)
        lttng_ust_field_integer(uint64_t, seq, seq)
        lttng_ust_field_enum(qgraph, drop_reason, uint8_t, reason, reason)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, sched_idle,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, thread),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, thread, thread)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, sched_wake,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, thread, uint64_t, idle_ns, uint8_t, notified),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, thread, thread)
        lttng_ust_field_integer(uint64_t, idle_ns, idle_ns)
        lttng_ust_field_integer(uint8_t, notified, notified)))

/* A render queue starts a frame job; slack_ns is the time left to its deadline. */
LTTNG_UST_TRACEPOINT_EVENT(qgraph, frame_start,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, int64_t, frame, int64_t, slack_ns),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, queue, queue)
        lttng_ust_field_integer(int64_t, frame, frame)
        lttng_ust_field_integer(int64_t, slack_ns, slack_ns)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, frame_end,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, int64_t, frame, uint64_t, work_ns),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, queue, queue)
        lttng_ust_field_integer(int64_t, frame, frame)
        lttng_ust_field_integer(uint64_t, work_ns, work_ns)))

/* A frame job found its deadline passed and was dropped (never shown late);
 * at the dispatcher's queue, a tick it could not launch in time. */
LTTNG_UST_TRACEPOINT_EVENT(qgraph, frame_deadline_miss,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, int64_t, frame, uint64_t, late_ns),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, queue, queue)
        lttng_ust_field_integer(int64_t, frame, frame)
        lttng_ust_field_integer(uint64_t, late_ns, late_ns)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, gl_request,
    LTTNG_UST_TP_ARGS(uint32_t, owner, uint8_t, kind, uint8_t, outcome, uint64_t, latency_ns, uint32_t, depth),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, owner, owner)
        lttng_ust_field_integer(uint8_t, kind, kind)
        lttng_ust_field_integer(uint8_t, outcome, outcome)
        lttng_ust_field_integer(uint64_t, latency_ns, latency_ns)
        lttng_ust_field_integer(uint32_t, depth, depth)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, gl_wake,
    LTTNG_UST_TP_ARGS(uint32_t, owner, uint8_t, kinds, uint32_t, requests),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, owner, owner)
        lttng_ust_field_integer_hex(uint8_t, kinds, kinds)
        lttng_ust_field_integer(uint32_t, requests, requests)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, gl_frame,
    LTTNG_UST_TP_ARGS(uint32_t, owner, int64_t, frame, uint64_t, gl_ns),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, owner, owner)
        lttng_ust_field_integer(int64_t, frame, frame)
        lttng_ust_field_integer(uint64_t, gl_ns, gl_ns)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, lb_split,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, int64_t, frame, uint32_t, server,
                      double, x0, double, y0, double, x1, double, y1, uint64_t, work_ns),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, queue, queue)
        lttng_ust_field_integer(int64_t, frame, frame)
        lttng_ust_field_integer(uint32_t, server, server)
        lttng_ust_field_float(double, x0, x0)
        lttng_ust_field_float(double, y0, y0)
        lttng_ust_field_float(double, x1, x1)
        lttng_ust_field_float(double, y1, y1)
        lttng_ust_field_integer(uint64_t, work_ns, work_ns)))

#endif
#include <lttng/tracepoint-event.h>
