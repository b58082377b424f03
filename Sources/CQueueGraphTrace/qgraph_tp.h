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

/* DropReason, in its declaration order. */
LTTNG_UST_TRACEPOINT_ENUM(qgraph, drop_reason,
    LTTNG_UST_TP_ENUM_VALUES(
        lttng_ust_field_enum_value("taildrop", 0)
        lttng_ust_field_enum_value("headdrop", 1)
        lttng_ust_field_enum_value("red", 2)
        lttng_ust_field_enum_value("bytes", 3)
        lttng_ust_field_enum_value("failed", 4)
        lttng_ust_field_enum_value("no-buffer", 5)
        lttng_ust_field_enum_value("closed", 6)))

/* BufferFate. */
LTTNG_UST_TRACEPOINT_ENUM(qgraph, buffer_fate,
    LTTNG_UST_TP_ENUM_VALUES(
        lttng_ust_field_enum_value("consumed", 0)
        lttng_ust_field_enum_value("dropped", 1)
        lttng_ust_field_enum_value("abandoned", 2)))

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

LTTNG_UST_TRACEPOINT_EVENT_CLASS(qgraph, queue_buffer,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, uint64_t, seq, uint32_t, depth),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, queue, queue)
        lttng_ust_field_integer(uint64_t, seq, seq)
        lttng_ust_field_integer(uint32_t, depth, depth)))
LTTNG_UST_TRACEPOINT_EVENT_INSTANCE(qgraph, queue_buffer, qgraph, queue_push,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, uint64_t, seq, uint32_t, depth))
LTTNG_UST_TRACEPOINT_EVENT_INSTANCE(qgraph, queue_buffer, qgraph, queue_pop,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, uint64_t, seq, uint32_t, depth))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, queue_drop,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, uint64_t, seq, uint8_t, reason),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, queue, queue)
        lttng_ust_field_integer(uint64_t, seq, seq)
        lttng_ust_field_enum(qgraph, drop_reason, uint8_t, reason, reason)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, queue_stats,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, uint32_t, depth, uint32_t, max_depth,
                      uint64_t, arrived, uint64_t, popped, const uint64_t *, dropped,
                      uint64_t, acks, uint64_t, naks, uint64_t, abandoned),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, queue, queue)
        lttng_ust_field_integer(uint32_t, depth, depth)
        lttng_ust_field_integer(uint32_t, max_depth, max_depth)
        lttng_ust_field_integer(uint64_t, arrived, arrived)
        lttng_ust_field_integer(uint64_t, popped, popped)
        lttng_ust_field_integer(uint64_t, taildrop, dropped[0])
        lttng_ust_field_integer(uint64_t, headdrop, dropped[1])
        lttng_ust_field_integer(uint64_t, red, dropped[2])
        lttng_ust_field_integer(uint64_t, bytes, dropped[3])
        lttng_ust_field_integer(uint64_t, failed, dropped[4])
        lttng_ust_field_integer(uint64_t, no_buffer, dropped[5])
        lttng_ust_field_integer(uint64_t, closed, dropped[6])
        lttng_ust_field_integer(uint64_t, acks, acks)
        lttng_ust_field_integer(uint64_t, naks, naks)
        lttng_ust_field_integer(uint64_t, abandoned, abandoned)))

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

LTTNG_UST_TRACEPOINT_EVENT(qgraph, buffer_alloc,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, pool, uint64_t, seq, uint32_t, slot, uint64_t, size),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, pool, pool)
        lttng_ust_field_integer(uint64_t, seq, seq)
        lttng_ust_field_integer(uint32_t, slot, slot)
        lttng_ust_field_integer(uint64_t, size, size)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, buffer_release,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, pool, uint64_t, seq, uint32_t, slot, uint8_t, fate),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, pool, pool)
        lttng_ust_field_integer(uint64_t, seq, seq)
        lttng_ust_field_integer(uint32_t, slot, slot)
        lttng_ust_field_enum(qgraph, buffer_fate, uint8_t, fate, fate)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, processor_begin,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, uint64_t, seq),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, queue, queue)
        lttng_ust_field_integer(uint64_t, seq, seq)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, processor_end,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, queue, uint64_t, seq, uint64_t, duration_ns),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, queue, queue)
        lttng_ust_field_integer(uint64_t, seq, seq)
        lttng_ust_field_integer(uint64_t, duration_ns, duration_ns)))

LTTNG_UST_TRACEPOINT_EVENT(qgraph, sched_pick,
    LTTNG_UST_TP_ARGS(uint32_t, graph, uint32_t, thread, uint32_t, queue, uint8_t, tier),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(uint32_t, graph, graph)
        lttng_ust_field_integer(uint32_t, thread, thread)
        lttng_ust_field_integer(uint32_t, queue, queue)
        lttng_ust_field_integer(uint8_t, tier, tier)))

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

#endif
#include <lttng/tracepoint-event.h>
