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
    QG_TP_QUEUE_FLOW, QG_TP_POOL_FLOW, QG_TP_QUEUE_DROP, QG_TP_QUEUE_STATS, QG_TP_POOL_STATS,
    QG_TP_FEEDBACK_ACK, QG_TP_FEEDBACK_NAK,
    QG_TP_SCHED_IDLE, QG_TP_SCHED_WAKE,
    QG_TP_FRAME_START, QG_TP_FRAME_END, QG_TP_FRAME_DEADLINE_MISS,
    QG_TP_GL_REQUEST, QG_TP_GL_WAKE, QG_TP_GL_FRAME,
    QG_TP_LB_SPLIT,
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
void qg_tp_queue_drop(uint32_t graph, uint32_t queue, uint64_t seq, uint8_t reason);
/* queue_stats' counters, in its field order; the drops one per DropReason, in its order. */
#define QG_DROP_REASONS 11
enum qg_stats_field {
    QG_STATS_DEPTH, QG_STATS_MAX_DEPTH, QG_STATS_ARRIVED, QG_STATS_POPPED,
    QG_STATS_DROPPED, QG_STATS_ACKS = QG_STATS_DROPPED + QG_DROP_REASONS, QG_STATS_NAKS, QG_STATS_ABANDONED,
    QG_STATS_RESIDENCY_TOTAL, QG_STATS_RESIDENCY_SAMPLES, QG_STATS_RESIDENCY_MAX,
    QG_STATS_BYTES_QUEUED, QG_STATS_BYTES_ALLOCATED, QG_STATS_COUNT
};
void qg_tp_queue_stats(uint32_t graph, uint32_t queue, const uint64_t *counters);
/* counters: acquired, consumed, dropped, abandoned, in use, peak in use, exhausted, bytes in use, bytes allocated. */
void qg_tp_pool_stats(uint32_t graph, uint32_t pool, const uint64_t *counters);
void qg_tp_feedback_ack(uint32_t graph, uint32_t queue, uint32_t sender, uint64_t seq);
void qg_tp_feedback_nak(uint32_t graph, uint32_t queue, uint32_t sender, uint64_t seq, uint8_t reason);
void qg_tp_sched_idle(uint32_t graph, uint32_t thread);
void qg_tp_sched_wake(uint32_t graph, uint32_t thread, uint64_t idle_ns, uint8_t notified);
/* Render frame jobs: one event each per frame and render queue. */
void qg_tp_frame_start(uint32_t graph, uint32_t queue, int64_t frame, int64_t slack_ns);
void qg_tp_frame_end(uint32_t graph, uint32_t queue, int64_t frame, uint64_t work_ns);
void qg_tp_frame_deadline_miss(uint32_t graph, uint32_t queue, int64_t frame, uint64_t late_ns);
/* The GL owner thread: a render request ended (kind and outcome as in
 * docs/tracing.md), the owner woke for requests (kinds: a bit per kind),
 * a frame's GL time from upload to read-back. */
void qg_tp_gl_request(uint32_t owner, uint8_t kind, uint8_t outcome, uint64_t latency_ns, uint32_t depth);
void qg_tp_gl_wake(uint32_t owner, uint8_t kinds, uint32_t requests);
void qg_tp_gl_frame(uint32_t owner, int64_t frame, uint64_t gl_ns);
/* A compound queue's server finished its part of a frame: the part
 * (pixels, or a fraction of the data in db mode) and its time. */
void qg_tp_lb_split(uint32_t graph, uint32_t queue, int64_t frame, uint32_t server,
                    double x0, double y0, double x1, double y1, uint64_t work_ns);

/* Flow counting. An LTTng event costs about 100 ns, more than a buffer's
 * hop, so the per-buffer traffic is counted in a window of the calling
 * thread and emitted as one queue_flow or pool_flow event per queue or pool
 * when the window flushes: on qg_flow_flush (a scheduler thread calls it
 * before it sleeps or parks), at qg_flow_thread_end, when 4096 counts or
 * 100 ms have gone by, and when two queues (or pools) need the same slot.
 * A thread without a window (an application thread pushing into a graph)
 * emits each count at once. Call the counting functions only while
 * QG_TP_QUEUE_FLOW (queue calls) or QG_TP_POOL_FLOW (pool calls) is on. */
/* Gives the calling thread (scheduler group `thread`) a window. */
void qg_flow_thread(uint32_t thread);
/* Emits and frees the calling thread's window. */
void qg_flow_thread_end(void);
/* Emits the calling thread's window now (before it sleeps or parks). */
void qg_flow_flush(void);

/* The counting functions are inline: a hop makes six counts. */
enum { QG_FLOW_QUEUE_SLOTS = 64, QG_FLOW_POOL_SLOTS = 16, QG_FLOW_CLOCK_EVERY = 64 };
/* A queue's counters, in queue_flow's field order; a pool's: acquired, then one per BufferFate. */
enum { QG_FLOW_PUSHED, QG_FLOW_POPPED, QG_FLOW_FIRST_SEQ, QG_FLOW_LAST_SEQ, QG_FLOW_MAX_DEPTH, QG_FLOW_STEPS,
       QG_FLOW_TIER0, QG_FLOW_BUSY_NS = QG_FLOW_TIER0 + 4, QG_FLOW_FIELDS };

struct qg_flow_slot {
    uint8_t used;
    uint32_t graph, index;
    uint64_t c[QG_FLOW_FIELDS];
};

/* A scheduler thread's counts since its last flush. Slots are direct-mapped
 * by queue or pool index; two keys on one slot flush the window first. */
struct qg_flow_window {
    uint32_t thread;
    uint32_t counts;
    uint64_t started;
    struct qg_flow_slot *running;   /* the queue of the current run of steps, or 0 */
    uint64_t run_started;
    struct qg_flow_slot queues[QG_FLOW_QUEUE_SLOTS], pools[QG_FLOW_POOL_SLOTS];
};

/* The calling thread's window: set by qg_flow_thread, 0 on other threads. */
extern __thread struct qg_flow_window *qg_flow_current __attribute__((tls_model("initial-exec")));

/* Out of line: a slot taken by another key, a window due for a time check,
 * a count on a thread without a window, a step that starts a run. */
struct qg_flow_slot *qg_flow_claim(struct qg_flow_window *w, struct qg_flow_slot *s, uint32_t graph, uint32_t index);
void qg_flow_check(struct qg_flow_window *w);
void qg_flow_emit_one(int is_pool, uint32_t graph, uint32_t index, int field, uint64_t value, uint64_t seq);
void qg_flow_start_run(struct qg_flow_window *w, struct qg_flow_slot *s);

static inline struct qg_flow_slot *qg_flow_slot(struct qg_flow_window *w, struct qg_flow_slot *s, uint32_t graph, uint32_t index) {
    return (s->used && s->graph == graph && s->index == index) ? s : qg_flow_claim(w, s, graph, index);
}

static inline void qg_flow_counted(struct qg_flow_window *w) {
    if (__builtin_expect(++w->counts % QG_FLOW_CLOCK_EVERY == 0, 0)) qg_flow_check(w);
}

static inline void qg_flow_push(uint32_t graph, uint32_t queue, uint32_t depth) {
    struct qg_flow_window *w = qg_flow_current;
    if (!w) { qg_flow_emit_one(0, graph, queue, QG_FLOW_PUSHED, depth, 0); return; }
    struct qg_flow_slot *s = qg_flow_slot(w, &w->queues[queue % QG_FLOW_QUEUE_SLOTS], graph, queue);
    s->c[QG_FLOW_PUSHED]++;
    if (depth > s->c[QG_FLOW_MAX_DEPTH]) s->c[QG_FLOW_MAX_DEPTH] = depth;
    qg_flow_counted(w);
}

static inline void qg_flow_pop(uint32_t graph, uint32_t queue, uint64_t seq) {
    struct qg_flow_window *w = qg_flow_current;
    if (!w) { qg_flow_emit_one(0, graph, queue, QG_FLOW_POPPED, 0, seq); return; }
    struct qg_flow_slot *s = qg_flow_slot(w, &w->queues[queue % QG_FLOW_QUEUE_SLOTS], graph, queue);
    if (s->c[QG_FLOW_POPPED]++ == 0) s->c[QG_FLOW_FIRST_SEQ] = seq;
    s->c[QG_FLOW_LAST_SEQ] = seq;
    qg_flow_counted(w);
}

/* A scheduler step on `queue` (picked from `tier`, 0…3): counted, and the
 * thread's time from here to its next step on another queue (or its next
 * flush) is the queue's busy_ns. */
static inline void qg_flow_step(uint32_t graph, uint32_t queue, uint8_t tier) {
    struct qg_flow_window *w = qg_flow_current;
    int field = QG_FLOW_TIER0 + (tier < 4 ? tier : 3);
    if (!w) { qg_flow_emit_one(0, graph, queue, field, 1, 0); return; }
    struct qg_flow_slot *s = qg_flow_slot(w, &w->queues[queue % QG_FLOW_QUEUE_SLOTS], graph, queue);
    s->c[QG_FLOW_STEPS]++;
    s->c[field]++;
    if (s != w->running) qg_flow_start_run(w, s);
    qg_flow_counted(w);
}

/* kind: 0 acquired, then the BufferFate a release had (1 consumed, 2 dropped, 3 abandoned). */
static inline void qg_flow_pool(uint32_t graph, uint32_t pool, uint8_t kind) {
    struct qg_flow_window *w = qg_flow_current;
    int field = kind < 4 ? kind : 3;
    if (!w) { qg_flow_emit_one(1, graph, pool, field, 1, 0); return; }
    qg_flow_slot(w, &w->pools[pool % QG_FLOW_POOL_SLOTS], graph, pool)->c[field]++;
    qg_flow_counted(w);
}

#endif
