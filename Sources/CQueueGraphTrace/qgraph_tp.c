/* The probes of the "qgraph" provider and a plain C function per event.
 * Without the LTTng trait (QG_HAVE_LTTNG undefined) nothing is linked
 * against liblttng-ust: every event reads as off and emits nothing. */
#include "qgraph_trace.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    [QG_TP_GRAPH_STOP] = STATE(graph_stop), [QG_TP_QUEUE_FLOW] = STATE(queue_flow),
    [QG_TP_POOL_FLOW] = STATE(pool_flow), [QG_TP_QUEUE_DROP] = STATE(queue_drop),
    [QG_TP_QUEUE_STATS] = STATE(queue_stats), [QG_TP_POOL_STATS] = STATE(pool_stats),
    [QG_TP_FEEDBACK_ACK] = STATE(feedback_ack),
    [QG_TP_FEEDBACK_NAK] = STATE(feedback_nak), [QG_TP_SCHED_IDLE] = STATE(sched_idle),
    [QG_TP_SCHED_WAKE] = STATE(sched_wake), [QG_TP_FRAME_START] = STATE(frame_start),
    [QG_TP_FRAME_END] = STATE(frame_end), [QG_TP_FRAME_DEADLINE_MISS] = STATE(frame_deadline_miss),
    [QG_TP_GL_REQUEST] = STATE(gl_request), [QG_TP_GL_WAKE] = STATE(gl_wake), [QG_TP_GL_FRAME] = STATE(gl_frame),
    [QG_TP_LB_SPLIT] = STATE(lb_split),
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
void qg_tp_queue_drop(uint32_t graph, uint32_t queue, uint64_t seq, uint8_t reason) {
    EMIT(queue_drop, graph, queue, seq, reason);
}
void qg_tp_queue_stats(uint32_t graph, uint32_t queue, const uint64_t *counters) {
    EMIT(queue_stats, graph, queue, counters);
}
void qg_tp_pool_stats(uint32_t graph, uint32_t pool, const uint64_t *counters) {
    EMIT(pool_stats, graph, pool, counters);
}
void qg_tp_feedback_ack(uint32_t graph, uint32_t queue, uint32_t sender, uint64_t seq) {
    EMIT(feedback_ack, graph, queue, sender, seq);
}
void qg_tp_feedback_nak(uint32_t graph, uint32_t queue, uint32_t sender, uint64_t seq, uint8_t reason) {
    EMIT(feedback_nak, graph, queue, sender, seq, reason);
}
void qg_tp_sched_idle(uint32_t graph, uint32_t thread) { EMIT(sched_idle, graph, thread); }
void qg_tp_sched_wake(uint32_t graph, uint32_t thread, uint64_t idle_ns, uint8_t notified) {
    EMIT(sched_wake, graph, thread, idle_ns, notified);
}

/* MARK: Flow windows (the counting itself is inline in qgraph_trace.h) */

enum { FLUSH_COUNTS = 4096 };
static const uint64_t FLUSH_NS = 100000000;
static const uint32_t NO_THREAD = UINT32_MAX;

__thread struct qg_flow_window *qg_flow_current __attribute__((tls_model("initial-exec")));

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void emit(const struct qg_flow_slot *s, int is_pool, uint32_t thread) {
    if (is_pool) EMIT(pool_flow, s->graph, s->index, thread, s->c);
    else EMIT(queue_flow, s->graph, s->index, thread, s->c);
}

/* Emits and clears every used slot; `keep` (the running queue) stays claimed with zero counts. */
static void flush(struct qg_flow_window *w, uint64_t now, struct qg_flow_slot *keep) {
    for (int i = 0; i < QG_FLOW_QUEUE_SLOTS + QG_FLOW_POOL_SLOTS; i++) {
        int is_pool = i >= QG_FLOW_QUEUE_SLOTS;
        struct qg_flow_slot *s = is_pool ? &w->pools[i - QG_FLOW_QUEUE_SLOTS] : &w->queues[i];
        if (!s->used) continue;
        emit(s, is_pool, w->thread);
        memset(s->c, 0, sizeof s->c);
        s->used = s == keep;
    }
    w->counts = 0;
    w->started = now;
}

/* Ends the running queue's run at `now`: its time so far goes to busy_ns. */
static void end_run(struct qg_flow_window *w, uint64_t now) {
    if (w->running) w->running->c[QG_FLOW_BUSY_NS] += now - w->run_started;
    w->run_started = now;
}

static void flush_now(struct qg_flow_window *w) {
    uint64_t now = now_ns();
    end_run(w, now);
    flush(w, now, w->running);
}

struct qg_flow_slot *qg_flow_claim(struct qg_flow_window *w, struct qg_flow_slot *s, uint32_t graph, uint32_t index) {
    if (s->used) {          /* another queue or pool has the slot */
        flush_now(w);
        if (s == w->running) w->running = 0;
    }
    s->used = 1;
    s->graph = graph;
    s->index = index;
    return s;
}

void qg_flow_check(struct qg_flow_window *w) {
    if (w->counts >= FLUSH_COUNTS || now_ns() - w->started >= FLUSH_NS) flush_now(w);
}

void qg_flow_start_run(struct qg_flow_window *w, struct qg_flow_slot *s) {
    end_run(w, now_ns());
    w->running = s;
}

void qg_flow_emit_one(int is_pool, uint32_t graph, uint32_t index, int field, uint64_t value, uint64_t seq) {
    struct qg_flow_slot s = { .graph = graph, .index = index };
    if (is_pool) {
        s.c[field] = value;
    } else if (field == QG_FLOW_PUSHED) {
        s.c[QG_FLOW_PUSHED] = 1;
        s.c[QG_FLOW_MAX_DEPTH] = value;
    } else if (field == QG_FLOW_POPPED) {
        s.c[QG_FLOW_POPPED] = 1;
        s.c[QG_FLOW_FIRST_SEQ] = s.c[QG_FLOW_LAST_SEQ] = seq;
    } else {                /* a step, by its tier */
        s.c[QG_FLOW_STEPS] = 1;
        s.c[field] = 1;
    }
    emit(&s, is_pool, NO_THREAD);
}

void qg_flow_thread(uint32_t thread) {
    if (!qg_flow_current) qg_flow_current = calloc(1, sizeof *qg_flow_current);
    if (!qg_flow_current) return;     /* out of memory: this thread emits every count at once */
    qg_flow_current->thread = thread;
    qg_flow_current->started = now_ns();
}

void qg_flow_thread_end(void) {
    if (!qg_flow_current) return;
    flush_now(qg_flow_current);
    free(qg_flow_current);
    qg_flow_current = 0;
}

void qg_flow_flush(void) {
    struct qg_flow_window *w = qg_flow_current;
    if (!w) return;
    flush_now(w);
    if (w->running) w->running->used = 0;   /* the thread is about to sleep: its run ended */
    w->running = 0;
}
void qg_tp_frame_start(uint32_t graph, uint32_t queue, int64_t frame, int64_t slack_ns) {
    EMIT(frame_start, graph, queue, frame, slack_ns);
}
void qg_tp_frame_end(uint32_t graph, uint32_t queue, int64_t frame, uint64_t work_ns) {
    EMIT(frame_end, graph, queue, frame, work_ns);
}
void qg_tp_frame_deadline_miss(uint32_t graph, uint32_t queue, int64_t frame, uint64_t late_ns) {
    EMIT(frame_deadline_miss, graph, queue, frame, late_ns);
}
void qg_tp_gl_request(uint32_t owner, uint8_t kind, uint8_t outcome, uint64_t latency_ns, uint32_t depth) {
    EMIT(gl_request, owner, kind, outcome, latency_ns, depth);
}
void qg_tp_gl_wake(uint32_t owner, uint8_t kinds, uint32_t requests) { EMIT(gl_wake, owner, kinds, requests); }
void qg_tp_gl_frame(uint32_t owner, int64_t frame, uint64_t gl_ns) { EMIT(gl_frame, owner, frame, gl_ns); }
void qg_tp_lb_split(uint32_t graph, uint32_t queue, int64_t frame, uint32_t server,
                    double x0, double y0, double x1, double y1, uint64_t work_ns) {
    EMIT(lb_split, graph, queue, frame, server, x0, y0, x1, y1, work_ns);
}
