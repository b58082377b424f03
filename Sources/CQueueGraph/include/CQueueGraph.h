#ifndef CQUEUEGRAPH_H
#define CQUEUEGRAPH_H
#include <stdint.h>

/// An event count for waking sleeping threads: a waiter calls
/// qg_event_prepare, re-checks its condition, then qg_event_wait (or
/// qg_event_cancel when the condition already holds); a notifier publishes its
/// change and calls qg_event_notify. The waiter pays for the store-load fence
/// (membarrier(2)), so a notify while nobody waits costs a compiler barrier
/// and one load.
typedef struct qg_event {
    _Atomic uint32_t epoch;
    _Atomic uint32_t waiters;
    /// 1 when the event lives in memory shared between processes: futexes are
    /// then not process-private and both sides pay for full fences (the
    /// membarrier(2) shortcut only reaches the waiter's own process).
    uint32_t shared;
} qg_event;

/// Also registers the process for membarrier(2), once.
void qg_event_init(qg_event *event);
/// Initialises an event placed in shared memory (see `shared`).
void qg_event_init_shared(qg_event *event);
uint32_t qg_event_prepare(qg_event *event);
void qg_event_cancel(qg_event *event);
/// Sleeps until notified or timeout_ns passed; returns 1 when woken by a notify.
int qg_event_wait(qg_event *event, uint32_t epoch, int64_t timeout_ns);
void qg_event_notify(qg_event *event);
/// 1 when waiters announce themselves with membarrier(2), so that notifiers
/// need only a compiler barrier between publishing a change and checking
/// for waiters (an asymmetric fence); 0 when the kernel lacks it.
extern int qg_asymmetric_fence;
/// The notifier's side of the fence: orders the caller's earlier stores
/// before its later loads as seen by a waiter that has announced itself.
static inline void qg_light_fence(void) {
    if (__builtin_expect(qg_asymmetric_fence, 1)) __atomic_signal_fence(__ATOMIC_SEQ_CST);
    else __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
/// Whether a thread may be waiting, for a caller that published its change
/// (a release store) just before: costs a compiler barrier and a load.
static inline int qg_event_has_waiters(qg_event *event) {
    if (event->shared) __atomic_thread_fence(__ATOMIC_SEQ_CST);
    else qg_light_fence();
    return __atomic_load_n((uint32_t *)&event->waiters, __ATOMIC_ACQUIRE) != 0;
}
/// Wakes every waiter, without checking first.
void qg_event_wake(qg_event *event);

/// CLOCK_MONOTONIC in nanoseconds.
uint64_t qg_now_ns(void);
/// Names the calling thread (15 characters at most are kept).
void qg_set_thread_name(const char *name);
/// Pause instruction for spin loops.
void qg_cpu_relax(void);


// MARK: Processes (process.c)

/// memfd_create(name, MFD_CLOEXEC): an anonymous shared-memory file that
/// never appears in /dev/shm. Returns the fd or -errno.
int qg_memfd(const char *name);
/// posix_spawn of `path` with `argv` (NULL-terminated) and the current
/// environment plus `extra_env` ("KEY=VALUE", or NULL); each of the `count`
/// fds in `keep` stays open in the child (its FD_CLOEXEC cleared there
/// only). Returns 0 and the pid, or an errno.
int qg_spawn(const char *path, char *const argv[], const char *extra_env, const int *keep, int count, int *pid);
/// Whether child `pid` has ended, reaping it: 0 still running, 1 ended
/// (`*signal` is the signal that killed it or 0, `*code` its exit status),
/// -errno on failure. Blocks until it ends when `block` is 1.
int qg_reap(int pid, int block, int *signal, int *code);
/// A pidfd for process `pid` (pidfd_open, close-on-exec), or -errno
/// (ENOSYS before Linux 5.3).
int qg_pidfd_open(int pid);
/// Blocks until the process of `pidfd` has ended (reaped or not): 0, or -errno.
int qg_wait_ended(int pidfd);
/// The calling process is killed when its parent dies (prctl PR_SET_PDEATHSIG).
int qg_die_with_parent(void);
#endif
