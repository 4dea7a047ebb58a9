/* Abuse: slowloris.  Thousands of connections each trickle one byte every
 * 300 ms and never finish anything; the relay's timeouts must close them
 * while an honest client keeps its latency.
 *
 * Relay: --handshake-timeout 1s (handshake and Hello), --idle-timeout 3s.
 * Three kinds of attacker connection, a third each:
 *   raw        TCP only, trickling random bytes (never a Noise message)
 *   handshake  a completed Noise handshake, then trickling a frame that
 *              would be the Hello (never completed)
 *   hello      handshake and Hello done, then trickling a frame that is
 *              never completed
 * Bounds: raw and handshake closed within handshake timeout + 1.5 s of
 * opening; hello within idle timeout + 1.5 s of its last complete request.
 * The honest client (another process) pings and sends throughout; its p99
 * before and during the attack and their ratio are printed.
 *
 * Connections: 2000 (CI), 6000 with ALCOVE_LONG=1, or ALCOVE_FAULT_CONNS. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "fault_util.h"
#include "relayproc.h"
#include "wire.h"

#define HS_TIMEOUT_MS 1000
#define IDLE_TIMEOUT_MS 3000
#define TRICKLE_MS 300
#define SLACK_MS 1500

enum { K_RAW, K_HANDSHAKE, K_HELLO, K__N };
static const char *const kind_name[K__N] = {"raw", "handshake", "hello"};

typedef struct lat {
    uint64_t t_us;
    uint32_t us;
    uint32_t what; /* 0 ping, 1 send */
} lat;

/* Honest client: ping and send in turn, 5 ms apart, until killed. */
static void honest_main(const alcove_relay_addr *a, const char *path)
{
    FILE *f = fopen(path, "w");
    alcove_link *l = NULL;
    Alcove__Wire__HelloResult hr;
    if (f == NULL || alcove_link_connect(&l, a, 5000, &hr) != 0)
        _exit(2);
    test_mbox mb;
    if (tw_create(l, &mb) != 0)
        _exit(2);
    uint8_t blob[1024] = {7};
    for (long i = 0; i < 10000000; i++) {
        uint64_t t = fault_now_us();
        int st = i % 2 ? tw_send(l, mb.send_id, mb.secret, blob, sizeof blob) : tw_ping(l);
        uint64_t t2 = fault_now_us();
        if (st != 0) {
            /* Reconnect once per failure (the attack must not cause this). */
            alcove_link_free(l);
            if (alcove_link_connect(&l, a, 5000, &hr) != 0 || tw_login(l, &mb) != 0)
                _exit(3);
            continue;
        }
        lat r = {t2, (uint32_t)(t2 - t), (uint32_t)(i % 2)};
        if (fwrite(&r, sizeof r, 1, f) != 1)
            _exit(4);
        fflush(f);
        test_sleep_ms(5);
    }
    _exit(0);
}

typedef struct att {
    int fd;
    int kind;
    alcove_link *link;
    uint64_t opened, last_complete, next_byte, closed;
} att;

typedef struct att_result {
    int kind;
    uint32_t pad;
    uint64_t lifetime_ms; /* from the deadline's start to the close; 0 if never closed */
} att_result;

/* Attacker: open n connections, trickle, record when each was closed. */
static void attacker_main(const alcove_relay_addr *a, long n, long run_ms, const char *path)
{
    att *c = calloc((size_t)n, sizeof *c);
    struct pollfd *p = calloc((size_t)n, sizeof *p);
    if (c == NULL || p == NULL)
        _exit(2);
    long opened = 0;
    for (long i = 0; i < n; i++) {
        c[i].kind = (int)(i % K__N);
        c[i].fd = -1;
        if (c[i].kind == K_RAW) {
            c[i].fd = alcove_tcp_connect(a, 5000);
        } else if (c[i].kind == K_HANDSHAKE) {
            if (alcove_link_open(&c[i].link, a, 5000) == 0)
                c[i].fd = alcove_link_fd(c[i].link);
        } else {
            Alcove__Wire__HelloResult hr;
            if (alcove_link_connect(&c[i].link, a, 5000, &hr) == 0)
                c[i].fd = alcove_link_fd(c[i].link);
        }
        c[i].opened = c[i].last_complete = test_now_ms();
        c[i].next_byte = c[i].opened + TRICKLE_MS;
        if (c[i].fd >= 0) {
            fcntl(c[i].fd, F_SETFL, fcntl(c[i].fd, F_GETFL) | O_NONBLOCK);
            opened++;
            /* The first byte of the trickle: a frame length prefix. */
            uint8_t b = c[i].kind == K_RAW ? (uint8_t)randombytes_uniform(256) : 0x00;
            (void)send(c[i].fd, &b, 1, MSG_NOSIGNAL);
        }
    }
    uint64_t end = test_now_ms() + (uint64_t)run_ms;
    while (test_now_ms() < end) {
        uint64_t now = test_now_ms();
        for (long i = 0; i < n; i++) {
            p[i].fd = c[i].fd >= 0 && c[i].closed == 0 ? c[i].fd : -1;
            p[i].events = POLLIN;
            p[i].revents = 0;
            if (p[i].fd >= 0 && now >= c[i].next_byte) {
                uint8_t b = (uint8_t)(0x40 + randombytes_uniform(64));
                if (send(c[i].fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)
                    c[i].closed = now;
                c[i].next_byte = now + TRICKLE_MS;
            }
        }
        (void)poll(p, (nfds_t)n, 20);
        now = test_now_ms();
        for (long i = 0; i < n; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[256];
            ssize_t r = recv(c[i].fd, buf, sizeof buf, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
                c[i].closed = now;
        }
    }
    FILE *f = fopen(path, "w");
    if (f == NULL)
        _exit(2);
    for (long i = 0; i < n; i++) {
        if (c[i].fd < 0)
            continue;
        uint64_t from = c[i].kind == K_HELLO ? c[i].last_complete : c[i].opened;
        att_result r = {c[i].kind, 0, c[i].closed ? c[i].closed - from : 0};
        if (fwrite(&r, sizeof r, 1, f) != 1)
            _exit(4);
    }
    fclose(f);
    (void)opened;
    _exit(0);
}

static size_t load_lat(const char *path, uint64_t from, uint64_t to, double *out, size_t cap,
                       int what)
{
    size_t len = 0, n = 0;
    char *d = test_read_file(path, &len);
    if (d == NULL)
        return 0;
    for (size_t i = 0; i + sizeof(lat) <= len && n < cap; i += sizeof(lat)) {
        lat r;
        memcpy(&r, d + i, sizeof r);
        if (r.t_us >= from && r.t_us < to && (int)r.what == what)
            out[n++] = r.us / 1000.0;
    }
    free(d);
    return n;
}

static void test_slowloris_closed_by_timeouts(void **state)
{
    (void)state;
    char tmp[256], latpath[300], attpath[300];
    relayproc rp;
    static const char *const extra[] = {"--handshake-timeout", "1s", "--idle-timeout", "3s",
                                        NULL};
    long n = fault_env_long("ALCOVE_FAULT_CONNS", fault_long_mode() ? 6000 : 2000);
    long run_ms = fault_long_mode() ? 20000 : 8000;
    long lim = fault_raise_nofile(n + 256);
    if (lim < n + 64)
        n = lim - 64;
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(latpath, sizeof latpath, "%s/lat.bin", tmp);
    snprintf(attpath, sizeof attpath, "%s/att.bin", tmp);
    relayproc_init_dir(&rp, tmp);
    assert_int_equal(relayproc_start(&rp, extra), 0);

    pid_t honest = fork();
    assert_true(honest >= 0);
    if (honest == 0)
        honest_main(&rp.addr, latpath);
    test_sleep_ms(2500); /* baseline */
    uint64_t t_attack = fault_now_us();
    long cpu0 = fault_cpu_ms(rp.pid);
    pid_t attacker = fork();
    assert_true(attacker >= 0);
    if (attacker == 0)
        attacker_main(&rp.addr, n, run_ms, attpath);
    int st = 0;
    uint64_t deadline = test_now_ms() + (uint64_t)run_ms + 60000;
    while (waitpid(attacker, &st, WNOHANG) == 0 && test_now_ms() < deadline)
        test_sleep_ms(20);
    uint64_t t_end = fault_now_us();
    long cpu1 = fault_cpu_ms(rp.pid);
    kill(honest, SIGKILL);
    waitpid(honest, NULL, 0);
    int alive = kill(rp.pid, 0) == 0;
    int rst = relayproc_stop(&rp, SIGTERM, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* Attack results per kind. */
    size_t len = 0;
    char *d = test_read_file(attpath, &len);
    assert_non_null(d);
    long count[K__N] = {0}, open_at_end[K__N] = {0}, late[K__N] = {0};
    uint64_t worst[K__N] = {0};
    uint64_t bound[K__N] = {HS_TIMEOUT_MS + SLACK_MS, HS_TIMEOUT_MS + SLACK_MS,
                            IDLE_TIMEOUT_MS + SLACK_MS};
    for (size_t i = 0; i + sizeof(att_result) <= len; i += sizeof(att_result)) {
        att_result r;
        memcpy(&r, d + i, sizeof r);
        count[r.kind]++;
        if (r.lifetime_ms == 0)
            open_at_end[r.kind]++;
        else if (r.lifetime_ms > bound[r.kind])
            late[r.kind]++;
        if (r.lifetime_ms > worst[r.kind])
            worst[r.kind] = r.lifetime_ms;
    }
    free(d);

    /* Honest latency: baseline vs the attack (its first second, while the
     * connections are still being opened, included). */
    size_t cap = 200000;
    double *v = malloc(cap * sizeof *v);
    assert_non_null(v);
    double p[2][2][2]; /* [what][phase][p50, p99] */
    size_t cnt[2][2];
    for (int what = 0; what < 2; what++) {
        uint64_t t0 = t_attack - 2000000;
        cnt[what][0] = load_lat(latpath, t0, t_attack, v, cap, what);
        p[what][0][0] = fault_percentile(v, cnt[what][0], 50);
        p[what][0][1] = fault_percentile(v, cnt[what][0], 99);
        cnt[what][1] = load_lat(latpath, t_attack, t_end, v, cap, what);
        p[what][1][0] = fault_percentile(v, cnt[what][1], 50);
        p[what][1][1] = fault_percentile(v, cnt[what][1], 99);
    }
    free(v);
    printf("abuse_slowloris: connections=%ld trickle=1B/%dms handshake_timeout=%dms "
           "idle_timeout=%dms run_ms=%ld relay_cpu_ms=%ld relay_alive=%d\n",
           n, TRICKLE_MS, HS_TIMEOUT_MS, IDLE_TIMEOUT_MS, run_ms, cpu1 - cpu0, alive);
    for (int k = 0; k < K__N; k++)
        printf("abuse_slowloris:   %-9s n=%ld closed_late=%ld never_closed=%ld "
               "worst_lifetime_ms=%llu bound_ms=%llu\n",
               kind_name[k], count[k], late[k], open_at_end[k], (unsigned long long)worst[k],
               (unsigned long long)bound[k]);
    for (int what = 0; what < 2; what++)
        printf("abuse_slowloris:   honest %-4s p50 %.2f -> %.2f ms, p99 %.2f -> %.2f ms "
               "(ratio %.2f; n=%zu/%zu)\n",
               what ? "send" : "ping", p[what][0][0], p[what][1][0], p[what][0][1],
               p[what][1][1], p[what][0][1] > 0 ? p[what][1][1] / p[what][0][1] : 0,
               cnt[what][0], cnt[what][1]);
    assert_true(alive);
    assert_true(WIFEXITED(rst) && WEXITSTATUS(rst) == 0);
    for (int k = 0; k < K__N; k++) {
        assert_true(count[k] > 0);
        assert_int_equal(open_at_end[k], 0);
        assert_int_equal(late[k], 0);
    }
    /* Honest service keeps going: every request answered (the honest
     * process exits on a failure it cannot recover from). */
    assert_true(cnt[0][1] > 0 && cnt[1][1] > 0);
    test_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slowloris_closed_by_timeouts),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
