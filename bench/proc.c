/* bench/proc: starting and stopping servers, /proc sampling, blocking
 * socket helpers for setup steps.  Every wait has a deadline. */
#define _GNU_SOURCE 1
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static uint64_t mono_ms(void) { return uv_hrtime() / 1000000u; }

int proc_read(pid_t pid, proc_stat *out)
{
    char path[64], buf[4096];
    memset(out, 0, sizeof *out);
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    p++;
    /* After "comm)": field 3 (state) ... field 14 utime, 15 stime. */
    unsigned long long ut = 0, st = 0;
    char *save = NULL;
    int field = 2;
    for (char *tok = strtok_r(p, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        field++;
        if (field == 14)
            ut = strtoull(tok, NULL, 10);
        else if (field == 15) {
            st = strtoull(tok, NULL, 10);
            break;
        }
    }
    if (field != 15)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    out->cpu_s = (double)(ut + st) / (double)(hz > 0 ? hz : 100);

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    char line[256];
    while (fgets(line, sizeof line, f) != NULL) {
        long v;
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            out->rss_kib = v;
        else if (sscanf(line, "VmHWM: %ld kB", &v) == 1)
            out->hwm_kib = v;
    }
    fclose(f);
    return 0;
}

double self_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

pid_t spawn_proc(const char *const argv[], const char *log_path, int *out_fd)
{
    int pfd[2] = {-1, -1};
    if (out_fd != NULL && pipe(pfd) != 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        if (out_fd != NULL) {
            close(pfd[0]);
            close(pfd[1]);
        }
        return -1;
    }
    if (pid == 0) {
        /* A server must never outlive the bench that started it. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0)
            (void)dup2(devnull, 0);
        if (out_fd != NULL) {
            (void)dup2(pfd[1], 1);
            close(pfd[0]);
            close(pfd[1]);
        } else if (devnull >= 0) {
            (void)dup2(devnull, 1);
        }
        int lfd = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600) : devnull;
        if (lfd >= 0)
            (void)dup2(lfd, 2);
        execvp(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    if (out_fd != NULL) {
        close(pfd[1]);
        *out_fd = pfd[0];
    }
    return pid;
}

int stop_proc(pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0)
        return -1;
    (void)kill(pid, sig);
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return 0;
        if (mono_ms() >= deadline)
            break;
        sleep_ms(5);
    }
    (void)kill(pid, SIGKILL);
    (void)waitpid(pid, &st, 0);
    return 1;
}

int run_proc(const char *const argv[], const char *log_path, int timeout_ms)
{
    pid_t pid = spawn_proc(argv, log_path, NULL);
    if (pid < 0)
        return -1;
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (r < 0)
            return -1;
        if (mono_ms() >= deadline) {
            (void)stop_proc(pid, SIGKILL, 1000);
            return -1;
        }
        sleep_ms(5);
    }
}

int tcp_connect_blocking(const char *host, uint16_t port, int timeout_ms)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    struct pollfd p = {fd, POLLOUT, 0};
    int r;
    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    int err = 0;
    socklen_t el = sizeof err;
    if (r != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int send_all(int fd, const void *p, size_t n, int timeout_ms)
{
    const uint8_t *b = p;
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w > 0) {
            b += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        uint64_t now = mono_ms();
        if (now >= deadline)
            return -1;
        struct pollfd pf = {fd, POLLOUT, 0};
        (void)poll(&pf, 1, (int)(deadline - now));
    }
    return 0;
}

long recv_until(int fd, char *buf, size_t cap, const char *needle, int timeout_ms)
{
    size_t have = 0;
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
    if (cap == 0)
        return -1;
    buf[0] = '\0';
    while (have + 1 < cap) {
        if (strstr(buf, needle) != NULL)
            return (long)have;
        uint64_t now = mono_ms();
        if (now >= deadline)
            return -1;
        struct pollfd pf = {fd, POLLIN, 0};
        int r = poll(&pf, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t got = recv(fd, buf + have, cap - 1 - have, 0);
        if (got <= 0)
            return -1;
        have += (size_t)got;
        buf[have] = '\0';
    }
    return strstr(buf, needle) != NULL ? (long)have : -1;
}

int recv_exact(int fd, void *buf, size_t n, int timeout_ms)
{
    uint8_t *p = buf;
    size_t have = 0;
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
    while (have < n) {
        uint64_t now = mono_ms();
        if (now >= deadline)
            return -1;
        struct pollfd pf = {fd, POLLIN, 0};
        int r = poll(&pf, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t got = recv(fd, p + have, n - have, 0);
        if (got <= 0)
            return -1;
        have += (size_t)got;
    }
    return 0;
}

int wait_port(const char *host, uint16_t port, pid_t pid, int timeout_ms)
{
    uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;
    while (mono_ms() < deadline) {
        int st;
        if (pid > 0 && waitpid(pid, &st, WNOHANG) == pid)
            return -1; /* it died */
        int fd = tcp_connect_blocking(host, port, 200);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        sleep_ms(20);
    }
    return -1;
}

uint16_t pick_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

int bench_mkworkdir(bench *b, const char *tag)
{
    const char *base = getenv("ALCOVE_BENCH_TMP");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    int n = snprintf(b->workdir, sizeof b->workdir, "%s/alcove-bench-%s-XXXXXX", base, tag);
    if (n < 0 || (size_t)n >= sizeof b->workdir || mkdtemp(b->workdir) == NULL) {
        b->workdir[0] = '\0';
        return -1;
    }
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void bench_rmworkdir(bench *b)
{
    if (b->workdir[0] == '\0' || b->keep_data)
        return;
    if (strncmp(b->workdir, "/", 1) == 0 && strstr(b->workdir, "/alcove-bench-") != NULL)
        (void)nftw(b->workdir, rm_one, 32, FTW_DEPTH | FTW_PHYS);
    b->workdir[0] = '\0';
}

long raise_nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -1;
    }
    return (long)rl.rlim_cur;
}
