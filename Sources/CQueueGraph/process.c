#define _GNU_SOURCE
#include "CQueueGraph.h"
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int qg_memfd(const char *name) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int qg_spawn(const char *path, char *const argv[], const char *extra_env, const int *keep, int count, int *pid) {
    posix_spawn_file_actions_t actions;
    int error = posix_spawn_file_actions_init(&actions);
    if (error) return error;
    // dup2 onto itself clears FD_CLOEXEC in the child only (glibc 2.29+, POSIX 2024).
    for (int i = 0; i < count && !error; i++) error = posix_spawn_file_actions_adddup2(&actions, keep[i], keep[i]);
    posix_spawnattr_t attributes;
    if (!error) error = posix_spawnattr_init(&attributes);
    if (!error) {
        // The child starts with no signal blocked, whatever the spawning thread blocks.
        sigset_t none;
        sigemptyset(&none);
        posix_spawnattr_setsigmask(&attributes, &none);
        posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
        // The environment, plus `extra_env` (KEY=VALUE) in place of any KEY= already set.
        size_t n = 0, key = extra_env ? strcspn(extra_env, "=") + 1 : 0;
        while (environ[n]) n++;
        char **env = calloc(n + 2, sizeof(char *));
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (!extra_env || strncmp(environ[i], extra_env, key) != 0) env[m++] = environ[i];
        if (extra_env) env[m++] = (char *)extra_env;
        pid_t child = 0;
        error = env ? posix_spawn(&child, path, &actions, &attributes, argv, env) : ENOMEM;
        free(env);
        if (!error) *pid = child;
        posix_spawnattr_destroy(&attributes);
    }
    posix_spawn_file_actions_destroy(&actions);
    return error;
}

int qg_reap(int pid, int block, int *signal, int *code) {
    int status = 0;
    pid_t r;
    do { r = waitpid(pid, &status, block ? 0 : WNOHANG); } while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    if (r == 0) return 0;
    *signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return 1;
}

int qg_pidfd_open(int pid) {
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : (int)fd;
}

int qg_wait_ended(int pidfd) {
    struct pollfd p = { .fd = pidfd, .events = POLLIN };
    int r;
    do { r = poll(&p, 1, -1); } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : 0;
}

int qg_die_with_parent(void) {
    return prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 ? 0 : -errno;
}
