#define _GNU_SOURCE
#include "CQueueGraph.h"
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int qg_asymmetric_fence = 0;
static pthread_once_t fence_once = PTHREAD_ONCE_INIT;

static void fence_register(void) {
    long commands = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (commands > 0 && (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED)
        && syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
        qg_asymmetric_fence = 1;
}

void qg_event_init(qg_event *event) {
    pthread_once(&fence_once, fence_register);
    atomic_init(&event->epoch, 0);
    atomic_init(&event->waiters, 0);
    event->shared = 0;
}

void qg_event_init_shared(qg_event *event) {
    atomic_init(&event->epoch, 0);
    atomic_init(&event->waiters, 0);
    event->shared = 1;
}

/// The waiter's side of the asymmetric fence: after it returns, every other
/// thread of the process has run a full barrier, so a notifier either sees
/// this waiter or its change is visible to the waiter's re-check.
static void heavy_fence(void) {
    if (qg_asymmetric_fence) syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    else atomic_thread_fence(memory_order_seq_cst);
}

uint32_t qg_event_prepare(qg_event *event) {
    atomic_fetch_add(&event->waiters, 1);
    if (event->shared) atomic_thread_fence(memory_order_seq_cst);
    else heavy_fence();
    return atomic_load(&event->epoch);
}

void qg_event_cancel(qg_event *event) {
    atomic_fetch_sub(&event->waiters, 1);
}

int qg_event_wait(qg_event *event, uint32_t epoch, int64_t timeout_ns) {
    struct timespec ts = { timeout_ns / 1000000000, timeout_ns % 1000000000 };
    syscall(SYS_futex, &event->epoch, event->shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, epoch, &ts, NULL, 0);
    atomic_fetch_sub(&event->waiters, 1);
    return atomic_load(&event->epoch) != epoch;
}

void qg_event_notify(qg_event *event) {
    if (qg_event_has_waiters(event)) qg_event_wake(event);
}

void qg_event_wake(qg_event *event) {
    atomic_fetch_add(&event->epoch, 1);
    syscall(SYS_futex, &event->epoch, event->shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

uint64_t qg_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void qg_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void qg_set_thread_name(const char *name) {
    char short_name[16];
    strncpy(short_name, name, 15);
    short_name[15] = 0;
    pthread_setname_np(pthread_self(), short_name);
}
