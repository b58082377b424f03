/* The probes of the "qgraph" provider and a plain C function per event.
 * Without the LTTng trait (QG_HAVE_LTTNG undefined) nothing is linked
 * against liblttng-ust: every event reads as off and emits nothing. */
#include "qgraph_trace.h"

#if defined(QG_HAVE_LTTNG) && QG_HAVE_LTTNG
#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#define LTTNG_UST_TRACEPOINT_DEFINE
#include "qgraph_tp.h"
#define STATE(event) &lttng_ust_tracepoint_qgraph___##event.state
#define EMIT(event, ...) lttng_ust_tracepoint(qgraph, event, __VA_ARGS__)
int qg_trace_compiled_in(void) { return 1; }
#else
static const int off = 0;
#define STATE(event) &off
#define EMIT(event, ...) ((void)0)
int qg_trace_compiled_in(void) { return 0; }
#endif

const int *const qg_trace_state[QG_TP_COUNT] = {
    [QG_TP_GRAPH_START] = STATE(graph_start), [QG_TP_GRAPH_QUEUE] = STATE(graph_queue),
    [QG_TP_GRAPH_POOL] = STATE(graph_pool), [QG_TP_GRAPH_PAUSE] = STATE(graph_pause),
    [QG_TP_GRAPH_STOP] = STATE(graph_stop), [QG_TP_QUEUE_PUSH] = STATE(queue_push),
    [QG_TP_QUEUE_POP] = STATE(queue_pop), [QG_TP_QUEUE_DROP] = STATE(queue_drop),
    [QG_TP_QUEUE_STATS] = STATE(queue_stats), [QG_TP_FEEDBACK_ACK] = STATE(feedback_ack),
    [QG_TP_FEEDBACK_NAK] = STATE(feedback_nak), [QG_TP_BUFFER_ALLOC] = STATE(buffer_alloc),
    [QG_TP_BUFFER_RELEASE] = STATE(buffer_release), [QG_TP_PROCESSOR_BEGIN] = STATE(processor_begin),
    [QG_TP_PROCESSOR_END] = STATE(processor_end), [QG_TP_SCHED_PICK] = STATE(sched_pick),
    [QG_TP_SCHED_IDLE] = STATE(sched_idle), [QG_TP_SCHED_WAKE] = STATE(sched_wake),
};

void qg_tp_graph_start(uint32_t graph, const char *name, uint32_t queues, uint32_t threads) {
    EMIT(graph_start, graph, name, queues, threads);
}
void qg_tp_graph_queue(uint32_t graph, uint32_t queue, const char *name, uint32_t size, uint32_t thread) {
    EMIT(graph_queue, graph, queue, name, size, thread);
}
void qg_tp_graph_pool(uint32_t graph, uint32_t pool, const char *name, uint32_t capacity, uint64_t payload_size) {
    EMIT(graph_pool, graph, pool, name, capacity, payload_size);
}
void qg_tp_graph_pause(uint32_t graph) { EMIT(graph_pause, graph); }
void qg_tp_graph_stop(uint32_t graph, uint8_t abandon) { EMIT(graph_stop, graph, abandon); }
void qg_tp_queue_push(uint32_t graph, uint32_t queue, uint64_t seq, uint32_t depth) {
    EMIT(queue_push, graph, queue, seq, depth);
}
void qg_tp_queue_pop(uint32_t graph, uint32_t queue, uint64_t seq, uint32_t depth) {
    EMIT(queue_pop, graph, queue, seq, depth);
}
void qg_tp_queue_drop(uint32_t graph, uint32_t queue, uint64_t seq, uint8_t reason) {
    EMIT(queue_drop, graph, queue, seq, reason);
}
void qg_tp_queue_stats(uint32_t graph, uint32_t queue, uint32_t depth, uint32_t max_depth,
                       uint64_t arrived, uint64_t popped, const uint64_t *dropped,
                       uint64_t acks, uint64_t naks, uint64_t abandoned) {
    EMIT(queue_stats, graph, queue, depth, max_depth, arrived, popped, dropped, acks, naks, abandoned);
}
void qg_tp_feedback_ack(uint32_t graph, uint32_t queue, uint32_t sender, uint64_t seq) {
    EMIT(feedback_ack, graph, queue, sender, seq);
}
void qg_tp_feedback_nak(uint32_t graph, uint32_t queue, uint32_t sender, uint64_t seq, uint8_t reason) {
    EMIT(feedback_nak, graph, queue, sender, seq, reason);
}
void qg_tp_buffer_alloc(uint32_t graph, uint32_t pool, uint64_t seq, uint32_t slot, uint64_t size) {
    EMIT(buffer_alloc, graph, pool, seq, slot, size);
}
void qg_tp_buffer_release(uint32_t graph, uint32_t pool, uint64_t seq, uint32_t slot, uint8_t fate) {
    EMIT(buffer_release, graph, pool, seq, slot, fate);
}
void qg_tp_processor_begin(uint32_t graph, uint32_t queue, uint64_t seq) { EMIT(processor_begin, graph, queue, seq); }
void qg_tp_processor_end(uint32_t graph, uint32_t queue, uint64_t seq, uint64_t duration_ns) {
    EMIT(processor_end, graph, queue, seq, duration_ns);
}
void qg_tp_sched_pick(uint32_t graph, uint32_t thread, uint32_t queue, uint8_t tier) {
    EMIT(sched_pick, graph, thread, queue, tier);
}
void qg_tp_sched_idle(uint32_t graph, uint32_t thread) { EMIT(sched_idle, graph, thread); }
void qg_tp_sched_wake(uint32_t graph, uint32_t thread, uint64_t idle_ns, uint8_t notified) {
    EMIT(sched_wake, graph, thread, idle_ns, notified);
}
