#include "clientproc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "relayproc.h"

extern char **environ;

static const char *alcove_bin(void)
{
    const char *b = getenv("ALCOVE_BIN");
    if (b == NULL) {
        fprintf(stderr, "test support: ALCOVE_BIN is not set (run under ctest)\n");
        abort();
    }
    return b;
}

static void exec_alcove(const char *home, const char *const *env, const char *const *args)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = "alcove";
    argv[n++] = "--home";
    argv[n++] = home;
    for (int i = 0; args[i] != NULL && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    for (int i = 0; env != NULL && env[i] != NULL; i++)
        putenv((char *)(uintptr_t)env[i]);
    execv(alcove_bin(), (char *const *)(uintptr_t)argv);
    _exit(127);
}

static void append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t ncap = (*cap ? *cap : 1024);
        while (ncap < *len + n + 1)
            ncap *= 2;
        char *nb = realloc(*buf, ncap);
        if (nb == NULL)
            abort();
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

void alcove_run(run_result *r, const char *home, const char *input, const char *const *env,
                const char *const *args)
{
    int out[2], err[2], in[2];
    memset(r, 0, sizeof *r);
    if (pipe(out) != 0 || pipe(err) != 0 || pipe(in) != 0)
        abort();
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(in[1]);
        close(out[0]);
        close(err[0]);
        exec_alcove(home, env, args);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (input != NULL) {
        size_t n = strlen(input);
        if (write(in[1], input, n) != (ssize_t)n)
            abort();
    }
    close(in[1]);
    size_t olen = 0, ocap = 0, elen = 0, ecap = 0;
    append(&r->out, &olen, &ocap, "", 0);
    append(&r->err, &elen, &ecap, "", 0);
    uint64_t deadline = test_now_ms() + 60000;
    int open_fds = 2;
    while (open_fds > 0 && test_now_ms() < deadline) {
        struct pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
        if (poll(p, 2, 100) < 0 && errno != EINTR)
            break;
        char buf[4096];
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
                continue;
            ssize_t got = read(p[i].fd, buf, sizeof buf);
            if (got > 0) {
                if (i == 0)
                    append(&r->out, &olen, &ocap, buf, (size_t)got);
                else
                    append(&r->err, &elen, &ecap, buf, (size_t)got);
            } else {
                close(p[i].fd);
                if (i == 0)
                    out[0] = -1;
                else
                    err[0] = -1;
                open_fds--;
            }
        }
    }
    if (out[0] >= 0)
        close(out[0]);
    if (err[0] >= 0)
        close(err[0]);
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (test_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fprintf(stderr, "test support: alcove %s timed out\n", args[0]);
            abort();
        }
        test_sleep_ms(5);
    }
    r->exited = WIFEXITED(st);
    r->code = r->exited ? WEXITSTATUS(st) : WTERMSIG(st);
}

void run_result_free(run_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

pid_t alcove_spawn(const char *home, const char *out_path, const char *const *env,
                   const char *const *args)
{
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int devnull = open("/dev/null", O_RDONLY);
        if (fd < 0 || devnull < 0)
            _exit(126);
        dup2(devnull, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        exec_alcove(home, env, args);
    }
    return pid;
}

int test_wait_for_text(const char *path, const char *needle, int timeout_ms)
{
    uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
    while (test_now_ms() < deadline) {
        char *s = test_read_file(path, NULL);
        int found = s != NULL && strstr(s, needle) != NULL;
        free(s);
        if (found)
            return 1;
        test_sleep_ms(20);
    }
    return 0;
}
