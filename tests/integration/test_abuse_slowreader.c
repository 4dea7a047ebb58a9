/* Abuse: peers that do not read what the relay sends them.
 *
 *  - subscriber_never_reads: a subscriber never reads while thousands of messages arrive for its mailbox (pushes pile
 *    up).  The relay's memory stays within the write-queue cap (it drops
 *    the reader past 4 x --write-queue), and nothing is lost: every message
 *    is fetched on reconnect.  Messages: 5000 (CI), 50000 with ALCOVE_LONG=1.
 *  - pipelined_fetches_never_read: a peer pipelines Fetch requests whose
 *    replies are ~60 KiB each and never reads: the relay pauses reading
 *    from it or drops it, its memory stays bounded, others are served.
 *
 * Memory is the relay's anonymous RSS (heap; the mapped store is not
 * counted).  Under ASan it is reported, not bounded. */
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

#define S_OK ALCOVE__WIRE__STATUS__OK
#define CAP_KIB 256
#define BLOB 4000

static void send_numbered(const alcove_relay_addr *a, const test_mbox *mb, uint32_t from,
                          uint32_t to)
{
    alcove_link *l = NULL;
    Alcove__Wire__HelloResult hr;
    if (alcove_link_connect(&l, a, 5000, &hr) != 0)
        _exit(2);
    uint8_t blob[BLOB];
    for (uint32_t i = from; i < to; i++) {
        memset(blob, (int)(i & 0xff), sizeof blob);
        memcpy(blob, &i, sizeof i);
        if (tw_send(l, mb->send_id, mb->secret, blob, sizeof blob) != S_OK)
            _exit(3);
    }
    alcove_link_free(l);
    _exit(0);
}

static void test_subscriber_never_reads(void **state)
{
    (void)state;
    char tmp[256];
    relayproc rp;
    static const char *const extra[] = {"--write-queue", "256k", NULL};
    uint32_t total = (uint32_t)fault_env_long("ALCOVE_FAULT_MESSAGES",
                                              fault_long_mode() ? 50000 : 5000);
    test_mkdtemp(tmp, sizeof tmp);
    relayproc_init_dir(&rp, tmp);
    assert_int_equal(relayproc_start(&rp, extra), 0);

    alcove_link *sub = tw_connect(&rp.addr);
    test_mbox mb;
    assert_int_equal(tw_create(sub, &mb), S_OK);
    assert_int_equal(tw_subscribe(sub, mb.recv_id), S_OK);
    long base = fault_rss_anon_kib(rp.pid);

    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0)
            send_numbered(&rp.addr, &mb, (uint32_t)k * (total / 2),
                          k == 0 ? total / 2 : total);
    }
    long peak = base;
    int senders_ok = 1;
    uint64_t deadline = test_now_ms() + 120000;
    for (int k = 0; k < 2; k++) {
        int st = 0;
        while (waitpid(kids[k], &st, WNOHANG) == 0 && test_now_ms() < deadline) {
            long r = fault_rss_anon_kib(rp.pid);
            if (r > peak)
                peak = r;
            test_sleep_ms(20);
        }
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
            senders_ok = 0;
    }
    long r = fault_rss_anon_kib(rp.pid);
    if (r > peak)
        peak = r;
    int dropped = fault_file_count(rp.logpath, "reason=slow_reader");
    /* The silent subscriber: still connected, or dropped? */
    uint64_t tw0 = test_now_ms();
    int sub_closed = test_wait_closed(alcove_link_fd(sub), 15000);
    uint64_t drain_ms = test_now_ms() - tw0;
    alcove_link_free(sub);

    /* Reconnect: everything is there, once, in order. */
    alcove_link *l = tw_connect(&rp.addr);
    assert_int_equal(tw_login(l, &mb), S_OK);
    uint8_t *seen = calloc(total, 1);
    assert_non_null(seen);
    uint64_t after = 0;
    uint32_t fetched = 0, dup = 0, bad = 0;
    for (int guard = 0; guard < 1000000; guard++) {
        Alcove__Wire__RelayMessage *m = NULL;
        assert_int_equal(tw_fetch(l, mb.recv_id, after, 0, &m), S_OK);
        Alcove__Wire__FetchResult *fr = m->reply->fetch;
        for (size_t k = 0; k < fr->n_messages; k++) {
            uint32_t c;
            memcpy(&c, fr->messages[k]->blob.data, sizeof c);
            if (fr->messages[k]->blob.len != BLOB || c >= total ||
                fr->messages[k]->blob.data[BLOB - 1] != (uint8_t)(c & 0xff))
                bad++;
            else if (seen[c]++)
                dup++;
            else
                fetched++;
            after = fr->messages[k]->seq;
        }
        int more = fr->more && fr->n_messages > 0;
        alcove__wire__relay_message__free_unpacked(m, NULL);
        if (!more)
            break;
    }
    alcove_link_free(l);
    free(seen);
    long growth = peak - base;
    int st = relayproc_stop(&rp, SIGTERM, 10000);
    printf("abuse_slowreader subscriber: messages=%u blob=%d write_queue=%dKiB "
           "relay_rss_anon_kib base=%ld peak=%ld growth=%ld (bound %d) dropped_slow_reader=%d "
           "subscriber_closed=%d (after draining %llu ms) fetched_on_reconnect=%u lost=%u duplicates=%u corrupt=%u%s\n",
           total, BLOB, CAP_KIB, base, peak, growth, 4 * CAP_KIB + 8192, dropped, sub_closed,
           (unsigned long long)drain_ms, fetched, total - fetched, dup, bad, fault_sanitized() ? " (ASan: not bounded)" : "");
    assert_true(senders_ok);
    assert_int_equal(fetched, total);
    assert_int_equal(dup, 0);
    assert_int_equal(bad, 0);
    assert_true(dropped >= 1 && sub_closed);
    if (!fault_sanitized())
        assert_true(growth < 4 * CAP_KIB + 8192);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    test_rmtree(tmp);
}

static void test_pipelined_fetches_never_read(void **state)
{
    (void)state;
    char tmp[256];
    relayproc rp;
    static const char *const extra[] = {"--write-queue", "256k", NULL};
    test_mkdtemp(tmp, sizeof tmp);
    relayproc_init_dir(&rp, tmp);
    assert_int_equal(relayproc_start(&rp, extra), 0);
    alcove_link *owner = tw_connect(&rp.addr);
    test_mbox mb;
    assert_int_equal(tw_create(owner, &mb), S_OK);
    uint8_t blob[BLOB];
    for (int i = 0; i < 64; i++) {
        memset(blob, i, sizeof blob);
        assert_int_equal(tw_send(owner, mb.send_id, mb.secret, blob, sizeof blob), S_OK);
    }
    long base = fault_rss_anon_kib(rp.pid), peak = base;

    alcove_link *hog = tw_connect(&rp.addr);
    assert_int_equal(tw_login(hog, &mb), S_OK);
    int small = 4096;
    (void)setsockopt(alcove_link_fd(hog), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    long sent = 0;
    int last = 0;
    uint64_t t0 = test_now_ms();
    /* Each Fetch answers ~60 KiB; send until the relay stops taking them. */
    for (long i = 0; i < 200000 && test_now_ms() - t0 < 20000; i++) {
        Alcove__Wire__Fetch f = ALCOVE__WIRE__FETCH__INIT;
        f.recv_id.data = mb.recv_id;
        f.recv_id.len = 16;
        Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
        req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_FETCH;
        req.fetch = &f;
        last = alcove_link_send(hog, &req, 0, 500);
        if (last != 0)
            break;
        sent++;
        if (i % 64 == 0) {
            long r = fault_rss_anon_kib(rp.pid);
            if (r > peak)
                peak = r;
        }
    }
    test_sleep_ms(300);
    long r = fault_rss_anon_kib(rp.pid);
    if (r > peak)
        peak = r;
    /* Meanwhile an honest client is served. */
    alcove_link *honest = tw_connect(&rp.addr);
    int ping = tw_ping(honest);
    alcove_link_free(honest);
    int dropped = fault_file_count(rp.logpath, "reason=slow_reader");
    alcove_link_free(hog);
    alcove_link_free(owner);
    int st = relayproc_stop(&rp, SIGTERM, 10000);
    long growth = peak - base;
    printf("abuse_slowreader pipelined_fetch: fetches_sent_before_blocked=%ld (%.1f MiB of "
           "replies asked) stopped_by=%s relay_rss_anon_kib base=%ld peak=%ld growth=%ld "
           "(bound %d) dropped_slow_reader=%d honest_ping=%d%s\n",
           sent, (double)sent * 64 * BLOB / (1 << 20),
           last == ALCOVE_ETIMEDOUT ? "relay stopped reading (paused)"
                                    : last == 0 ? "nothing" : alcove_strerror(last),
           base, peak, growth, 4 * CAP_KIB + 8192, dropped, ping,
           fault_sanitized() ? " (ASan: not bounded)" : "");
    assert_true(last != 0); /* paused or dropped */
    assert_int_equal(ping, S_OK);
    if (!fault_sanitized())
        assert_true(growth < 4 * CAP_KIB + 8192);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    test_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subscriber_never_reads),
        cmocka_unit_test(test_pipelined_fetches_never_read),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
