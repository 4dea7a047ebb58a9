/* Budgeted protobuf-c allocator: ordinary messages fit, amplifying ones fail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alcove.pb-c.h"
#include "noise.h"
#include "pbuf.h"

static void test_budget_for_is_8_len_plus_4096_and_saturates(void **state)
{
    (void)state;
    assert_int_equal(alcove_pb_budget_for(0), 4096);
    assert_int_equal(alcove_pb_budget_for(100), 4896);
    assert_int_equal(alcove_pb_budget_for(65535), 8 * 65535 + 4096);
    assert_true(alcove_pb_budget_for(SIZE_MAX) == SIZE_MAX);
    assert_true(alcove_pb_budget_for(SIZE_MAX / 8) == SIZE_MAX);
}

static void test_request_unpacks_within_budget_and_frees_back_to_zero(void **state)
{
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    Alcove__Wire__Send send = ALCOVE__WIRE__SEND__INIT;
    Alcove__Wire__Request *got;
    uint8_t send_id[16], secret[32], blob[1000], *wire;
    alcove_pb_budget b;
    size_t len;

    (void)state;
    memset(send_id, 0x11, sizeof send_id);
    memset(secret, 0x22, sizeof secret);
    memset(blob, 0x33, sizeof blob);
    send.send_id.data = send_id;
    send.send_id.len = sizeof send_id;
    send.send_secret.data = secret;
    send.send_secret.len = sizeof secret;
    send.blob.data = blob;
    send.blob.len = sizeof blob;
    req.id = 7;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_SEND;
    req.send = &send;

    len = alcove__wire__request__get_packed_size(&req);
    wire = malloc(len);
    assert_non_null(wire);
    assert_int_equal(alcove__wire__request__pack(&req, wire), len);

    alcove_pb_budget_init(&b, alcove_pb_budget_for(len));
    got = alcove__wire__request__unpack(&b.alloc, len, wire);
    assert_non_null(got);
    assert_int_equal(b.exhausted, 0);
    assert_true(b.used > 0);
    assert_true(b.used <= b.budget);
    assert_int_equal(got->id, 7);
    assert_int_equal(got->cmd_case, ALCOVE__WIRE__REQUEST__CMD_SEND);
    assert_int_equal(got->send->blob.len, sizeof blob);
    assert_memory_equal(got->send->blob.data, blob, sizeof blob);
    assert_memory_equal(got->send->send_secret.data, secret, sizeof secret);
    alcove__wire__request__free_unpacked(got, &b.alloc);
    assert_int_equal(b.used, 0);
    free(wire);
}

/* A RelayMessage{reply{fetch{messages: n empty Stored}}}: each element is 2
 * bytes on the wire (tag, zero length) but a whole struct in memory. */
static uint8_t *amplifying_message(size_t n, size_t *len)
{
    Alcove__Wire__RelayMessage msg = ALCOVE__WIRE__RELAY_MESSAGE__INIT;
    Alcove__Wire__Reply reply;
    Alcove__Wire__FetchResult fetch = ALCOVE__WIRE__FETCH_RESULT__INIT;
    Alcove__Wire__Stored empty = ALCOVE__WIRE__STORED__INIT;
    Alcove__Wire__Stored **list = calloc(n, sizeof *list);
    uint8_t *wire;
    size_t i;

    /* init(), not the INIT macro: that casts away const from "". */
    alcove__wire__reply__init(&reply);
    assert_non_null(list);
    for (i = 0; i < n; i++) {
        list[i] = &empty;
    }
    fetch.n_messages = n;
    fetch.messages = list;
    reply.id = 1;
    reply.result_case = ALCOVE__WIRE__REPLY__RESULT_FETCH;
    reply.fetch = &fetch;
    msg.kind_case = ALCOVE__WIRE__RELAY_MESSAGE__KIND_REPLY;
    msg.reply = &reply;

    *len = alcove__wire__relay_message__get_packed_size(&msg);
    wire = malloc(*len);
    assert_non_null(wire);
    assert_int_equal(alcove__wire__relay_message__pack(&msg, wire), *len);
    free(list);
    return wire;
}

static void test_amplifying_fetch_result_exhausts_the_budget(void **state)
{
    const size_t n = 20000;
    Alcove__Wire__RelayMessage *got;
    alcove_pb_budget b;
    size_t len = 0;
    uint8_t *wire;

    (void)state;
    wire = amplifying_message(n, &len);
    /* 2 bytes per element plus a few bytes of headers: under one frame. */
    assert_in_range(len, 2 * n, 2 * n + 16);

    alcove_pb_budget_init(&b, alcove_pb_budget_for(len));
    got = alcove__wire__relay_message__unpack(&b.alloc, len, wire);
    assert_null(got);
    assert_int_equal(b.exhausted, 1);
    assert_int_equal(b.used, 0); /* the failed unpack gave everything back */

    /* The same bytes unpack fine with room to spare: the budget, not the
     * input, is what failed. */
    alcove_pb_budget_init(&b, SIZE_MAX);
    got = alcove__wire__relay_message__unpack(&b.alloc, len, wire);
    assert_non_null(got);
    assert_int_equal(b.exhausted, 0);
    assert_int_equal(got->reply->fetch->n_messages, n);
    assert_true(b.used > alcove_pb_budget_for(len));
    alcove__wire__relay_message__free_unpacked(got, &b.alloc);
    assert_int_equal(b.used, 0);
    free(wire);
}

/* What a hostile client can put in one transport message to the relay:
 * Request{id: 1} followed by as many copies of a 2-byte field as fit in
 * ALCOVE_NOISE_PLAINTEXT_MAX bytes. */
static size_t request_flood(uint8_t *wire, uint8_t tag)
{
    size_t n = 0;

    wire[n++] = 0x08; /* id = 1 */
    wire[n++] = 0x01;
    while (n + 2 <= ALCOVE_NOISE_PLAINTEXT_MAX) {
        wire[n++] = tag;
        wire[n++] = 0x00;
    }
    return n;
}

/* Refused by the budget, and only by the budget: the same bytes unpack
 * without one. */
static void assert_refused_by_budget(const uint8_t *wire, size_t len)
{
    Alcove__Wire__Request *got;
    alcove_pb_budget b;

    alcove_pb_budget_init(&b, alcove_pb_budget_for(len));
    got = alcove__wire__request__unpack(&b.alloc, len, wire);
    assert_null(got);
    assert_int_equal(b.exhausted, 1);
    assert_int_equal(b.used, 0);

    alcove_pb_budget_init(&b, SIZE_MAX);
    got = alcove__wire__request__unpack(&b.alloc, len, wire);
    assert_non_null(got);
    alcove__wire__request__free_unpacked(got, &b.alloc);
    assert_int_equal(b.used, 0);
}

static void test_request_with_thousands_of_empty_ping_submessages_is_refused(void **state)
{
    uint8_t *wire = malloc(ALCOVE_NOISE_PLAINTEXT_MAX);
    size_t len;

    (void)state;
    assert_non_null(wire);
    /* ~32,000 empty `ping` submessages (field 10, length 0).  protobuf-c
     * keeps only the last one, but it records every occurrence while
     * parsing: over 20 bytes of bookkeeping per 2 bytes of input. */
    len = request_flood(wire, 0x52);
    assert_in_range(len, 65000, ALCOVE_NOISE_PLAINTEXT_MAX);
    assert_refused_by_budget(wire, len);
    free(wire);
}

static void test_request_with_thousands_of_unknown_fields_is_refused(void **state)
{
    uint8_t *wire = malloc(ALCOVE_NOISE_PLAINTEXT_MAX);
    alcove_pb_budget b;
    Alcove__Wire__Request *got;
    size_t len;

    (void)state;
    assert_non_null(wire);
    /* ~32,000 empty unknown fields (field 11, varint 0): protobuf-c keeps
     * each one, about 30 times the input once unpacked. */
    len = request_flood(wire, 0x58);
    assert_refused_by_budget(wire, len);
    alcove_pb_budget_init(&b, SIZE_MAX);
    got = alcove__wire__request__unpack(&b.alloc, len, wire);
    assert_non_null(got);
    assert_true(b.used > 8 * len);
    alcove__wire__request__free_unpacked(got, &b.alloc);
    free(wire);
}

static void test_exact_budget_succeeds_and_one_byte_less_fails(void **state)
{
    Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
    Alcove__Wire__Ping ping = ALCOVE__WIRE__PING__INIT;
    Alcove__Wire__Request *got;
    alcove_pb_budget b;
    uint8_t wire[32];
    size_t len, need;

    (void)state;
    req.id = 3;
    req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_PING;
    req.ping = &ping;
    len = alcove__wire__request__pack(&req, wire);

    alcove_pb_budget_init(&b, SIZE_MAX);
    got = alcove__wire__request__unpack(&b.alloc, len, wire);
    assert_non_null(got);
    need = b.used;
    alcove__wire__request__free_unpacked(got, &b.alloc);

    alcove_pb_budget_init(&b, need);
    got = alcove__wire__request__unpack(&b.alloc, len, wire);
    assert_non_null(got);
    assert_int_equal(b.used, need);
    alcove__wire__request__free_unpacked(got, &b.alloc);

    alcove_pb_budget_init(&b, need - 1);
    assert_null(alcove__wire__request__unpack(&b.alloc, len, wire));
    assert_int_equal(b.exhausted, 1);
    assert_int_equal(b.used, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_for_is_8_len_plus_4096_and_saturates),
        cmocka_unit_test(test_request_unpacks_within_budget_and_frees_back_to_zero),
        cmocka_unit_test(test_amplifying_fetch_result_exhausts_the_budget),
        cmocka_unit_test(test_request_with_thousands_of_empty_ping_submessages_is_refused),
        cmocka_unit_test(test_request_with_thousands_of_unknown_fields_is_refused),
        cmocka_unit_test(test_exact_budget_succeeds_and_one_byte_less_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
