#ifndef QGRAPH_TRACE_H
#define QGRAPH_TRACE_H
/* QueueGraph's LTTng-UST tracepoints (provider "qgraph") as plain C
 * functions Swift can call. Check qg_trace_on(event) before building any
 * argument: while no session enables the event it costs two loads. Built
 * without the LTTng trait, every event stays off and the functions do
 * nothing. Field meanings: docs/tracing.md. */
#include <stdint.h>

enum qg_trace_event {
    QG_TP_GRAPH_START, QG_TP_GRAPH_QUEUE, QG_TP_GRAPH_POOL, QG_TP_GRAPH_PAUSE, QG_TP_GRAPH_STOP,
    QG_TP_QUEUE_PUSH, QG_TP_QUEUE_POP, QG_TP_QUEUE_DROP, QG_TP_QUEUE_STATS,
    QG_TP_FEEDBACK_ACK, QG_TP_FEEDBACK_NAK,
    QG_TP_BUFFER_ALLOC, QG_TP_BUFFER_RELEASE,
    QG_TP_PROCESSOR_BEGIN, QG_TP_PROCESSOR_END,
    QG_TP_SCHED_PICK, QG_TP_SCHED_IDLE, QG_TP_SCHED_WAKE,
    QG_TP_COUNT
};

/* Each event's enabled flag (LTTng's tracepoint state, or a constant 0). */
extern const int *const qg_trace_state[QG_TP_COUNT];

static inline int qg_trace_on(enum qg_trace_event event) {
    return __builtin_expect(__atomic_load_n(qg_trace_state[event], __ATOMIC_RELAXED), 0);
}

/* 1 when built with the LTTng trait. */
int qg_trace_compiled_in(void);

void qg_tp_graph_start(uint32_t graph, const char *name, uint32_t queues, uint32_t threads);
void qg_tp_graph_queue(uint32_t graph, uint32_t queue, const char *name, uint32_t size, uint32_t thread);
void qg_tp_graph_pool(uint32_t graph, uint32_t pool, const char *name, uint32_t capacity, uint64_t payload_size);
void qg_tp_graph_pause(uint32_t graph);
void qg_tp_graph_stop(uint32_t graph, uint8_t abandon);
void qg_tp_queue_push(uint32_t graph, uint32_t queue, uint64_t seq, uint32_t depth);
void qg_tp_queue_pop(uint32_t graph, uint32_t queue, uint64_t seq, uint32_t depth);
void qg_tp_queue_drop(uint32_t graph, uint32_t queue, uint64_t seq, uint8_t reason);
/* dropped[]: one count per drop reason, in DropReason order (7 of them). */
void qg_tp_queue_stats(uint32_t graph, uint32_t queue, uint32_t depth, uint32_t max_depth,
                       uint64_t arrived, uint64_t popped, const uint64_t *dropped,
                       uint64_t acks, uint64_t naks, uint64_t abandoned);
void qg_tp_feedback_ack(uint32_t graph, uint32_t queue, uint32_t sender, uint64_t seq);
void qg_tp_feedback_nak(uint32_t graph, uint32_t queue, uint32_t sender, uint64_t seq, uint8_t reason);
void qg_tp_buffer_alloc(uint32_t graph, uint32_t pool, uint64_t seq, uint32_t slot, uint64_t size);
void qg_tp_buffer_release(uint32_t graph, uint32_t pool, uint64_t seq, uint32_t slot, uint8_t fate);
void qg_tp_processor_begin(uint32_t graph, uint32_t queue, uint64_t seq);
void qg_tp_processor_end(uint32_t graph, uint32_t queue, uint64_t seq, uint64_t duration_ns);
void qg_tp_sched_pick(uint32_t graph, uint32_t thread, uint32_t queue, uint8_t tier);
void qg_tp_sched_idle(uint32_t graph, uint32_t thread);
void qg_tp_sched_wake(uint32_t graph, uint32_t thread, uint64_t idle_ns, uint8_t notified);

#endif
