#define _XOPEN_SOURCE 700 /* nftw */
#include "relayproc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "test support: %s: %s\n", what, strerror(errno));
    abort();
}

uint64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void test_mkdtemp(char *out, size_t cap)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    int n = snprintf(out, cap, "%s/alcove-test-XXXXXX", base);
    if (n < 0 || (size_t)n >= cap || mkdtemp(out) == NULL)
        die("mkdtemp");
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void test_rmtree(const char *dir)
{
    if (dir != NULL && *dir != '\0')
        (void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *test_relay_bin(void)
{
    const char *b = getenv("ALCOVE_RELAY_BIN");
    if (b == NULL) {
        fprintf(stderr, "test support: ALCOVE_RELAY_BIN is not set (run under ctest)\n");
        abort();
    }
    return b;
}

void relayproc_init_dir(relayproc *rp, const char *dir)
{
    memset(rp, 0, sizeof *rp);
    rp->pid = -1;
    snprintf(rp->dir, sizeof rp->dir, "%s/relay", dir);
    snprintf(rp->logpath, sizeof rp->logpath, "%s/relay.log", dir);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 1);
        execl(test_relay_bin(), "alcove-relay", "init", "--data", rp->dir, (char *)NULL);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "test support: alcove-relay init failed\n");
        abort();
    }
}

int relayproc_start(relayproc *rp, const char *const *extra)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        die("pipe");
    const char *argv[64];
    int n = 0;
    argv[n++] = "alcove-relay";
    argv[n++] = "run";
    argv[n++] = "--data";
    argv[n++] = rp->dir;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        int logfd = open(rp->logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(pipefd[1], 1);
        if (logfd >= 0)
            dup2(logfd, 2);
        close(pipefd[0]);
        execv(test_relay_bin(), (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(pipefd[1]);
    rp->pid = pid;
    char line[ALCOVE_ADDR_STR_MAX + 2];
    size_t have = 0;
    uint64_t deadline = test_now_ms() + 10000;
    int ok = 0;
    while (test_now_ms() < deadline && have < sizeof line - 1) {
        struct pollfd p = {pipefd[0], POLLIN, 0};
        int r = poll(&p, 1, 100);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t got = read(pipefd[0], line + have, sizeof line - 1 - have);
        if (got <= 0)
            break;
        have += (size_t)got;
        line[have] = '\0';
        char *nl = strchr(line, '\n');
        if (nl != NULL) {
            *nl = '\0';
            ok = 1;
            break;
        }
    }
    close(pipefd[0]);
    if (!ok) {
        fprintf(stderr, "test support: relay did not print its address\n");
        relayproc_stop(rp, SIGKILL, 2000);
        return -1;
    }
    snprintf(rp->addr_str, sizeof rp->addr_str, "%s", line);
    const char *why = NULL;
    if (alcove_addr_parse(rp->addr_str, &rp->addr, &why) != 0) {
        fprintf(stderr, "test support: relay printed a bad address '%s': %s\n", line, why);
        relayproc_stop(rp, SIGKILL, 2000);
        return -1;
    }
    return 0;
}

int relayproc_stop(relayproc *rp, int sig, int timeout_ms)
{
    if (rp->pid <= 0)
        return -1;
    kill(rp->pid, sig);
    uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
    int st = 0;
    for (;;) {
        pid_t r = waitpid(rp->pid, &st, WNOHANG);
        if (r == rp->pid)
            break;
        if (test_now_ms() >= deadline) {
            kill(rp->pid, SIGKILL);
            waitpid(rp->pid, &st, 0);
            rp->pid = -1;
            return -1;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    rp->pid = -1;
    return st;
}

void test_sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int test_wait_closed(int fd, int timeout_ms)
{
    uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
    char buf[4096];
    while (test_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 50);
        if (r < 0 && errno != EINTR)
            return 1;
        if (r <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return 1;
    }
    return 0;
}

long test_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

char *test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
        if (len != NULL)
            *len = n;
    }
    return buf;
}

int relay_fixture_start(void **state, const char *const *extra)
{
    relay_fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    test_mkdtemp(f->tmp, sizeof f->tmp);
    relayproc_init_dir(&f->rp, f->tmp);
    assert_int_equal(relayproc_start(&f->rp, extra), 0);
    *state = f;
    return 0;
}

int relay_fixture_teardown(void **state)
{
    relay_fixture *f = *state;
    if (f->rp.pid > 0) {
        int st = relayproc_stop(&f->rp, SIGTERM, 10000);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    test_rmtree(f->tmp);
    free(f);
    return 0;
}
