#ifndef CQUEUEGRAPH_H
#define CQUEUEGRAPH_H
#include <stdint.h>

/// An event count for waking sleeping threads: a waiter calls
/// qg_event_prepare, re-checks its condition, then qg_event_wait (or
/// qg_event_cancel when the condition already holds); a notifier publishes its
/// change and calls qg_event_notify. A notify costs one fence and one load
/// while nobody waits.
typedef struct qg_event {
    _Atomic uint32_t epoch;
    _Atomic uint32_t waiters;
} qg_event;

void qg_event_init(qg_event *event);
uint32_t qg_event_prepare(qg_event *event);
void qg_event_cancel(qg_event *event);
/// Sleeps until notified or timeout_ns passed; returns 1 when woken by a notify.
int qg_event_wait(qg_event *event, uint32_t epoch, int64_t timeout_ns);
void qg_event_notify(qg_event *event);
/// qg_event_notify for a caller that published its change with a seq_cst store.
void qg_event_notify_after_seq_cst(qg_event *event);
/// Whether a thread may be waiting (after the caller's seq_cst store).
static inline int qg_event_has_waiters(qg_event *event) {
    return __atomic_load_n((uint32_t *)&event->waiters, __ATOMIC_SEQ_CST) != 0;
}
/// Wakes every waiter, without checking first.
void qg_event_wake(qg_event *event);

/// CLOCK_MONOTONIC in nanoseconds.
uint64_t qg_now_ns(void);
/// Names the calling thread (15 characters at most are kept).
void qg_set_thread_name(const char *name);
/// Pause instruction for spin loops.
void qg_cpu_relax(void);

#endif
