/* Hostile input against a real relay: each bad connection is closed, the
 * relay keeps serving an honest client meanwhile, and memory stays bounded. */
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
#include "noise.h"
#include "relayproc.h"
#include "wire.h"

typedef struct fixture {
    char tmp[256];
    relayproc rp;
    alcove_link *honest;
    test_mbox mb;
} fixture;

static int setup(void **state)
{
    static const char *const extra[] = {"--handshake-timeout", "1s", NULL};
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    test_mkdtemp(f->tmp, sizeof f->tmp);
    relayproc_init_dir(&f->rp, f->tmp);
    assert_int_equal(relayproc_start(&f->rp, extra), 0);
    f->honest = tw_connect(&f->rp.addr);
    assert_int_equal(tw_create(f->honest, &f->mb), ALCOVE__WIRE__STATUS__OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    alcove_link_free(f->honest);
    int st = relayproc_stop(&f->rp, SIGTERM, 10000);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    test_rmtree(f->tmp);
    free(f);
    return 0;
}

/* The honest client still gets answers, and the relay process is alive. */
static void honest_still_served(fixture *f)
{
    static uint32_t n;
    uint8_t blob[64];
    memset(blob, (int)++n, sizeof blob);
    assert_int_equal(tw_send(f->honest, f->mb.send_id, f->mb.secret, blob, sizeof blob),
                     ALCOVE__WIRE__STATUS__OK);
    assert_int_equal(tw_ping(f->honest), ALCOVE__WIRE__STATUS__OK);
    assert_int_equal(kill(f->rp.pid, 0), 0);
}

static int raw_connect(fixture *f)
{
    int fd = alcove_tcp_connect(&f->rp.addr, TW_TIMEOUT);
    assert_true(fd >= 0);
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void test_garbage_before_handshake_closes(void **state)
{
    fixture *f = *state;
    uint8_t junk[48 + 2];
    /* A well-framed message 1 whose bytes are random: handshake fails. */
    junk[0] = 0;
    junk[1] = 48;
    randombytes_buf(junk + 2, 48);
    int fd = raw_connect(f);
    send_all(fd, junk, sizeof junk);
    assert_true(test_wait_closed(fd, 5000));
    close(fd);
    /* A zero length prefix. */
    fd = raw_connect(f);
    send_all(fd, "\0\0", 2);
    assert_true(test_wait_closed(fd, 5000));
    close(fd);
    /* An HTTP request. */
    fd = raw_connect(f);
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, http, strlen(http));
    assert_true(test_wait_closed(fd, 5000)); /* closed by the handshake timeout */
    close(fd);
    honest_still_served(f);
}

static void test_max_length_prefix_then_nothing_times_out(void **state)
{
    fixture *f = *state;
    int fd = raw_connect(f);
    send_all(fd, "\xff\xff", 2);
    uint64_t t0 = test_now_ms();
    honest_still_served(f); /* served while the stalled peer waits */
    assert_true(test_wait_closed(fd, 10000));
    /* Closed by the 1 s handshake timeout, not by us. */
    assert_true(test_now_ms() - t0 >= 500);
    close(fd);
    honest_still_served(f);
}

static void test_random_frames_after_handshake_close(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 20; i++) {
        alcove_link *l = NULL;
        assert_int_equal(alcove_link_open(&l, &f->rp.addr, TW_TIMEOUT), 0);
        uint8_t frame[2 + 200];
        size_t len = 16 + (size_t)(i * 9);
        frame[0] = (uint8_t)(len >> 8);
        frame[1] = (uint8_t)len;
        randombytes_buf(frame + 2, len);
        assert_int_equal(alcove_link_send_raw(l, frame, 2 + len, TW_TIMEOUT), 0);
        Alcove__Wire__RelayMessage *m = NULL;
        assert_int_equal(alcove_link_recv(l, &m, TW_TIMEOUT), ALCOVE_ECLOSED);
        alcove_link_free(l);
    }
    /* A frame shorter than the tag. */
    alcove_link *l = tw_connect(&f->rp.addr);
    uint8_t shortf[2 + 5] = {0, 5, 1, 2, 3, 4, 5};
    assert_int_equal(alcove_link_send_raw(l, shortf, sizeof shortf, TW_TIMEOUT), 0);
    Alcove__Wire__RelayMessage *m = NULL;
    assert_int_equal(alcove_link_recv(l, &m, TW_TIMEOUT), ALCOVE_ECLOSED);
    alcove_link_free(l);
    honest_still_served(f);
}

static void test_undecodable_request_closes(void **state)
{
    fixture *f = *state;
    alcove_link *l = tw_connect(&f->rp.addr);
    /* Field 1 (id) declared as length-delimited with a length past the end. */
    const uint8_t bad[] = {0x0a, 0x7f, 0x01};
    assert_int_equal(alcove_link_send_plaintext(l, bad, sizeof bad, TW_TIMEOUT), 0);
    Alcove__Wire__RelayMessage *m = NULL;
    assert_int_equal(alcove_link_recv(l, &m, TW_TIMEOUT), ALCOVE_ECLOSED);
    alcove_link_free(l);
    honest_still_served(f);
}

static void test_unknown_fields_only_is_bad_request_and_closes(void **state)
{
    fixture *f = *state;
    alcove_link *l = tw_connect(&f->rp.addr);
    /* id = 2 then unknown field 99 (varint): no command. */
    const uint8_t req[] = {0x08, 0x02, 0x98, 0x06, 0x01};
    assert_int_equal(alcove_link_send_plaintext(l, req, sizeof req, TW_TIMEOUT), 0);
    Alcove__Wire__RelayMessage *m = NULL;
    assert_int_equal(alcove_link_recv(l, &m, TW_TIMEOUT), 0);
    assert_int_equal(m->reply->status, ALCOVE__WIRE__STATUS__BAD_REQUEST);
    alcove__wire__relay_message__free_unpacked(m, NULL);
    assert_int_equal(alcove_link_recv(l, &m, TW_TIMEOUT), ALCOVE_ECLOSED);
    alcove_link_free(l);

    /* Unknown fields next to a valid command are ignored (forward
     * compatibility): id = 2, ping {}, field 99. */
    l = tw_connect(&f->rp.addr);
    const uint8_t ping[] = {0x08, 0x02, 0x52, 0x00, 0x98, 0x06, 0x01};
    assert_int_equal(alcove_link_send_plaintext(l, ping, sizeof ping, TW_TIMEOUT), 0);
    assert_int_equal(alcove_link_recv(l, &m, TW_TIMEOUT), 0);
    assert_int_equal(m->reply->id, 2);
    assert_int_equal(m->reply->status, ALCOVE__WIRE__STATUS__OK);
    alcove__wire__relay_message__free_unpacked(m, NULL);
    alcove_link_free(l);
    honest_still_served(f);
}

static void test_amplifying_request_refused_by_budget(void **state)
{
    fixture *f = *state;
    alcove_link *l = tw_connect(&f->rp.addr);
    /* id = 2, then ~32,000 two-byte unknown fields: each costs protobuf-c an
     * allocation many times its wire size. */
    size_t n = ALCOVE_NOISE_PLAINTEXT_MAX;
    uint8_t *req = malloc(n);
    assert_non_null(req);
    req[0] = 0x08;
    req[1] = 0x02;
    for (size_t i = 2; i + 1 < n; i += 2) {
        req[i] = 0x78; /* field 15, varint */
        req[i + 1] = 0x00;
    }
    size_t len = n - ((n - 2) % 2);
    assert_int_equal(alcove_link_send_plaintext(l, req, len, TW_TIMEOUT), 0);
    free(req);
    Alcove__Wire__RelayMessage *m = NULL;
    assert_int_equal(alcove_link_recv(l, &m, TW_TIMEOUT), ALCOVE_ECLOSED);
    alcove_link_free(l);
    honest_still_served(f);
}

static void test_hostile_flood_keeps_memory_bounded(void **state)
{
    fixture *f = *state;
    honest_still_served(f);
    long before = test_rss_kib(f->rp.pid);
    assert_true(before > 0);
    for (int round = 0; round < 300; round++) {
        alcove_link *l = NULL;
        switch (round % 3) {
        case 0: { /* random frame after the handshake */
            assert_int_equal(alcove_link_open(&l, &f->rp.addr, TW_TIMEOUT), 0);
            uint8_t frame[2 + 1000];
            frame[0] = 1000 >> 8;
            frame[1] = 1000 & 0xff;
            randombytes_buf(frame + 2, 1000);
            assert_int_equal(alcove_link_send_raw(l, frame, sizeof frame, TW_TIMEOUT), 0);
            Alcove__Wire__RelayMessage *m = NULL;
            assert_int_equal(alcove_link_recv(l, &m, TW_TIMEOUT), ALCOVE_ECLOSED);
            alcove_link_free(l);
            break;
        }
        case 1: { /* a half-sent large frame, then hang up */
            int fd = raw_connect(f);
            uint8_t part[2 + 30000];
            part[0] = 0xff;
            part[1] = 0xff;
            randombytes_buf(part + 2, sizeof part - 2);
            send_all(fd, part, sizeof part);
            close(fd);
            break;
        }
        default: { /* undecodable plaintext */
            l = tw_connect(&f->rp.addr);
            uint8_t junk[512];
            randombytes_buf(junk, sizeof junk);
            junk[0] = 0x0a; /* field 1 with wire type 2: never a valid id */
            junk[1] = 0xff;
            junk[2] = 0x7f;
            assert_int_equal(alcove_link_send_plaintext(l, junk, sizeof junk, TW_TIMEOUT), 0);
            Alcove__Wire__RelayMessage *m = NULL;
            assert_int_equal(alcove_link_recv(l, &m, TW_TIMEOUT), ALCOVE_ECLOSED);
            alcove_link_free(l);
            break;
        }
        }
        if (round % 50 == 0)
            honest_still_served(f);
    }
    honest_still_served(f);
    long after = test_rss_kib(f->rp.pid);
    printf("hostile flood: 300 bad connections, relay RSS %ld KiB -> %ld KiB\n", before, after);
    /* Generous bound: what matters is that 300 x 64 KiB never piles up. */
    assert_true(after - before < 8 * 1024);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_garbage_before_handshake_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_length_prefix_then_nothing_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_frames_after_handshake_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undecodable_request_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_fields_only_is_bad_request_and_closes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_amplifying_request_refused_by_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_flood_keeps_memory_bounded, setup, teardown),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
