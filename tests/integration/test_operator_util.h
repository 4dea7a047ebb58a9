/* Helpers shared by the operator tests (test_operator_*.c): run an
 * alcove-relay subcommand and capture what it prints, talk HTTP/1.0 to the
 * admin listener, read one metric, find the source tree.  Header-only:
 * every test file that includes it uses most of it. */
#ifndef ALCOVE_TEST_OPERATOR_UTIL_H
#define ALCOVE_TEST_OPERATOR_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clientproc.h"
#include "relayproc.h"

#define OP_UNUSED __attribute__((unused))

/* Run `alcove-relay args...` (NULL-terminated), capturing stdout and stderr
 * into r (free with run_result_free).  Waits up to 120 s. */
static OP_UNUSED void relay_cmd(run_result *r, const char *const *args)
{
    char tmp[256], outp[300], errp[300];
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(outp, sizeof outp, "%s/out", tmp);
    snprintf(errp, sizeof errp, "%s/err", tmp);
    const char *argv[64];
    int n = 0;
    argv[n++] = "alcove-relay";
    for (int i = 0; args[i] != NULL && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int in = open("/dev/null", O_RDONLY);
        if (o < 0 || e < 0 || in < 0)
            _exit(126);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(test_relay_bin(), (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    int st = 0;
    uint64_t deadline = test_now_ms() + 120000;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (test_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        test_sleep_ms(5);
    }
    r->exited = WIFEXITED(st);
    r->code = WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st);
    r->out = test_read_file(outp, NULL);
    r->err = test_read_file(errp, NULL);
    if (r->out == NULL)
        r->out = strdup("");
    if (r->err == NULL)
        r->err = strdup("");
    test_rmtree(tmp);
}

/* Write text to path (truncating). */
static OP_UNUSED void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
    fputs(text, f);
    fclose(f);
}

/* The source tree (for the example config, man pages and completions). */
static OP_UNUSED const char *source_dir(void)
{
    static char dir[1024];
    if (dir[0] == '\0') {
        snprintf(dir, sizeof dir, "%s", ALCOVE_TEST_VECTORS_FALLBACK);
        char *p = strstr(dir, "/tests/vectors");
        if (p != NULL)
            *p = '\0';
    }
    return dir;
}

/* Wait for "admin_listening port=N" in the relay's log; returns N or 0. */
static OP_UNUSED unsigned admin_port(const relayproc *rp)
{
    if (!test_wait_for_text(rp->logpath, "event=admin_listening port=", 10000))
        return 0;
    char *log = test_read_file(rp->logpath, NULL);
    unsigned port = 0;
    const char *p = log ? strstr(log, "event=admin_listening port=") : NULL;
    if (p != NULL)
        port = (unsigned)strtoul(p + strlen("event=admin_listening port="), NULL, 10);
    free(log);
    return port;
}

/* Connect to 127.0.0.1:port; -1 on failure. */
static OP_UNUSED int tcp_connect(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Send `request` raw and read the whole response until the server closes
 * (at most 10 s).  Returns a malloc'd NUL-terminated response, or NULL. */
static OP_UNUSED char *http_raw(unsigned port, const char *request, size_t reqlen)
{
    int fd = tcp_connect(port);
    if (fd < 0)
        return NULL;
    size_t off = 0;
    while (off < reqlen) {
        ssize_t w = send(fd, request + off, reqlen - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR); /* like a client that sent its whole request */
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    uint64_t deadline = test_now_ms() + 10000;
    while (buf != NULL && test_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (nb == NULL)
                break;
            buf = nb;
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (buf != NULL)
        buf[len] = '\0';
    return buf;
}

static OP_UNUSED char *http_get(unsigned port, const char *path)
{
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
    return http_raw(port, req, (size_t)n);
}

/* Value of the sample named exactly `series` (name plus {labels}, as
 * printed) in a Prometheus text body; -1 if absent. */
static OP_UNUSED double metric(const char *body, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = body; p != NULL && *p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

#endif
