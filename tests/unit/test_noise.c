/* Noise_NK_25519_ChaChaPoly_BLAKE2b: the public test vector, tampering,
 * bad keys, truncation, and our own two sides talking to each other. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "noise.h"
#include "vectors.h"

#define VECTOR_FILE "noise-25519-chachapoly-blake2b.json"
#define PROTOCOL "Noise_NK_25519_ChaChaPoly_BLAKE2b"
#define BUF 1024

/* Fails with both values printed as hex. */
static void assert_bytes_equal(const uint8_t *got, size_t got_len,
                               const uint8_t *want, size_t want_len)
{
    char *g = vec_hex(got, got_len), *w = vec_hex(want, want_len);
    assert_non_null(g);
    assert_non_null(w);
    assert_string_equal(g, w);
    free(g);
    free(w);
}

static void assert_rc(int got, int want)
{
    if (got != want) {
        fail_msg("return code %d (%s), expected %d (%s)", got,
                 alcove_strerror(got), want, alcove_strerror(want));
    }
}

/* --- the vector ------------------------------------------------------------- */

typedef struct nk_vector {
    char *doc;
    vec_span obj, messages;
    uint8_t *init_prologue, *init_ephemeral, *init_rs;
    uint8_t *resp_prologue, *resp_static, *resp_ephemeral, *hash;
    size_t init_prologue_len, resp_prologue_len, hash_len, len32[4];
} nk_vector;

static void get_hex32(const vec_span *obj, const char *key, uint8_t **out)
{
    size_t len = 0;
    if (vec_get_hex(obj, key, out, &len) != 0) {
        fail_msg("vector field %s missing or not hex", key);
    }
    assert_int_equal(len, 32);
}

static void load_vector(nk_vector *v)
{
    const char *path = NULL;
    size_t len = 0;
    vec_span root;

    memset(v, 0, sizeof *v);
    v->doc = vec_load(VECTOR_FILE, &len, &path);
    if (v->doc == NULL) {
        fail_msg("cannot read %s from %s or %s", VECTOR_FILE,
                 ALCOVE_VECTORS_DIR, ALCOVE_TEST_VECTORS_FALLBACK);
    }
    assert_int_equal(vec_root(v->doc, len, &root), 0);
    if (vec_find_by_protocol(&root, PROTOCOL, &v->obj) != 0) {
        fail_msg("no %s vector in %s", PROTOCOL, path);
    }
    assert_int_equal(vec_get_hex(&v->obj, "init_prologue", &v->init_prologue,
                                 &v->init_prologue_len), 0);
    assert_int_equal(vec_get_hex(&v->obj, "resp_prologue", &v->resp_prologue,
                                 &v->resp_prologue_len), 0);
    get_hex32(&v->obj, "init_ephemeral", &v->init_ephemeral);
    get_hex32(&v->obj, "init_remote_static", &v->init_rs);
    get_hex32(&v->obj, "resp_static", &v->resp_static);
    get_hex32(&v->obj, "resp_ephemeral", &v->resp_ephemeral);
    assert_int_equal(vec_get_hex(&v->obj, "handshake_hash", &v->hash,
                                 &v->hash_len), 0);
    assert_int_equal(v->hash_len, ALCOVE_NOISE_HASH_BYTES);
    assert_int_equal(vec_get(&v->obj, "messages", &v->messages), 0);
}

static void free_vector(nk_vector *v)
{
    free(v->doc);
    free(v->init_prologue);
    free(v->init_ephemeral);
    free(v->init_rs);
    free(v->resp_prologue);
    free(v->resp_static);
    free(v->resp_ephemeral);
    free(v->hash);
}

static void get_message(const nk_vector *v, size_t i, uint8_t **payload,
                        size_t *payload_len, uint8_t **ct, size_t *ct_len)
{
    vec_span m;
    assert_int_equal(vec_array_at(&v->messages, i, &m), 0);
    assert_int_equal(vec_get_hex(&m, "payload", payload, payload_len), 0);
    assert_int_equal(vec_get_hex(&m, "ciphertext", ct, ct_len), 0);
}

/* Both sides set up exactly as the vector says. */
static void vector_sides(const nk_vector *v, alcove_noise_hs **ini,
                         alcove_noise_hs **resp)
{
    uint8_t s_pub[32];

    assert_int_equal(crypto_scalarmult_base(s_pub, v->resp_static), 0);
    assert_bytes_equal(s_pub, 32, v->init_rs, 32);
    assert_rc(alcove_noise_hs_initiator(ini, v->init_rs, v->init_prologue,
                                        v->init_prologue_len), 0);
    assert_rc(alcove_noise_hs_responder(resp, v->resp_static, s_pub,
                                        v->resp_prologue,
                                        v->resp_prologue_len), 0);
    assert_rc(alcove_noise_hs_set_ephemeral(*ini, v->init_ephemeral), 0);
    assert_rc(alcove_noise_hs_set_ephemeral(*resp, v->resp_ephemeral), 0);
}

/* One handshake message: writer's ciphertext must match, reader must get
 * the payload back. */
static void vector_hs_message(const nk_vector *v, size_t i,
                              alcove_noise_hs *writer, alcove_noise_hs *reader,
                              uint8_t *msg_out, size_t *msg_len)
{
    uint8_t *payload, *ct, got[BUF];
    size_t payload_len, ct_len, got_len = 0;

    get_message(v, i, &payload, &payload_len, &ct, &ct_len);
    assert_rc(alcove_noise_hs_write(writer, payload, payload_len, msg_out, BUF,
                                    msg_len), 0);
    assert_bytes_equal(msg_out, *msg_len, ct, ct_len);
    assert_rc(alcove_noise_hs_read(reader, msg_out, *msg_len, got, sizeof got,
                                   &got_len), 0);
    assert_bytes_equal(got, got_len, payload, payload_len);
    free(payload);
    free(ct);
}

static void test_nk_vector_reproduces_hash_and_every_ciphertext(void **state)
{
    alcove_noise_hs *ini = NULL, *resp = NULL;
    alcove_noise_transport *ti = NULL, *tr = NULL;
    uint8_t msg[BUF], h_i[64], h_r[64];
    size_t msg_len = 0, i;
    nk_vector v;

    (void)state;
    load_vector(&v);
    assert_int_equal(vec_array_len(&v.messages), 6);
    vector_sides(&v, &ini, &resp);

    vector_hs_message(&v, 0, ini, resp, msg, &msg_len); /* -> e, es */
    vector_hs_message(&v, 1, resp, ini, msg, &msg_len); /* <- e, ee */
    assert_true(alcove_noise_hs_done(ini));
    assert_true(alcove_noise_hs_done(resp));
    assert_rc(alcove_noise_hs_split(ini, &ti, h_i), 0);
    assert_rc(alcove_noise_hs_split(resp, &tr, h_r), 0);
    assert_bytes_equal(h_i, 64, v.hash, v.hash_len);
    assert_bytes_equal(h_r, 64, v.hash, v.hash_len);

    /* Transport: 2 and 4 initiator -> responder, 3 and 5 the other way. */
    for (i = 2; i < 6; i++) {
        alcove_noise_transport *from = i % 2 == 0 ? ti : tr;
        alcove_noise_transport *to = i % 2 == 0 ? tr : ti;
        uint8_t *payload, *ct, out[BUF], back[BUF];
        size_t payload_len, ct_len;

        get_message(&v, i, &payload, &payload_len, &ct, &ct_len);
        assert_rc(alcove_noise_encrypt(from, payload, payload_len, out), 0);
        assert_bytes_equal(out, payload_len + 16, ct, ct_len);
        assert_rc(alcove_noise_decrypt(to, out, ct_len, back), 0);
        assert_bytes_equal(back, ct_len - 16, payload, payload_len);
        free(payload);
        free(ct);
    }
    alcove_noise_hs_free(ini);
    alcove_noise_hs_free(resp);
    alcove_noise_transport_free(ti);
    alcove_noise_transport_free(tr);
    free_vector(&v);
}

static void test_tampered_message2_fails_with_edecrypt(void **state)
{
    alcove_noise_hs *ini = NULL, *resp = NULL;
    uint8_t msg[BUF], out[BUF];
    size_t msg_len = 0, out_len = 0, i;
    nk_vector v;

    (void)state;
    load_vector(&v);
    /* Flip one bit in e, in the ciphertext body, and in the tag. */
    for (i = 0; i < 3; i++) {
        size_t at;
        vector_sides(&v, &ini, &resp);
        assert_rc(alcove_noise_hs_write(ini, NULL, 0, msg, BUF, &msg_len), 0);
        assert_rc(alcove_noise_hs_read(resp, msg, msg_len, out, BUF, &out_len), 0);
        assert_rc(alcove_noise_hs_write(resp, (const uint8_t *)"hello", 5, msg,
                                        BUF, &msg_len), 0);
        at = i == 0 ? 5 : i == 1 ? 33 : msg_len - 1;
        msg[at] ^= 0x01;
        assert_rc(alcove_noise_hs_read(ini, msg, msg_len, out, BUF, &out_len),
                  ALCOVE_EDECRYPT);
        assert_int_equal(out_len, 0);
        assert_false(alcove_noise_hs_done(ini));
        /* The handshake is dead: reading again is refused. */
        assert_rc(alcove_noise_hs_read(ini, msg, msg_len, out, BUF, &out_len),
                  ALCOVE_ESTATE);
        alcove_noise_hs_free(ini);
        alcove_noise_hs_free(resp);
    }
    free_vector(&v);
}

static void test_all_zero_ephemeral_in_message1_is_rejected_with_ebadkey(void **state)
{
    alcove_noise_hs *ini = NULL, *resp = NULL;
    uint8_t msg[BUF], out[BUF];
    size_t msg_len = 0, out_len = 0;
    nk_vector v;

    (void)state;
    load_vector(&v);
    vector_sides(&v, &ini, &resp);
    assert_rc(alcove_noise_hs_write(ini, NULL, 0, msg, BUF, &msg_len), 0);
    memset(msg, 0, 32); /* e = 0: DH(s, e) is all zeros */
    assert_rc(alcove_noise_hs_read(resp, msg, msg_len, out, BUF, &out_len),
              ALCOVE_EBADKEY);
    assert_rc(alcove_noise_hs_write(resp, NULL, 0, msg, BUF, &msg_len),
              ALCOVE_ESTATE);
    alcove_noise_hs_free(ini);
    alcove_noise_hs_free(resp);
    free_vector(&v);
}

static void test_initiator_refuses_an_all_zero_responder_key(void **state)
{
    alcove_noise_hs *ini = NULL;
    uint8_t zero[32] = {0}, msg[BUF];
    size_t msg_len = 0;

    (void)state;
    assert_rc(alcove_noise_hs_initiator(&ini, zero, NULL, 0), 0);
    assert_rc(alcove_noise_hs_write(ini, NULL, 0, msg, BUF, &msg_len),
              ALCOVE_EBADKEY);
    assert_int_equal(msg_len, 0);
    alcove_noise_hs_free(ini);
}

static void test_truncated_handshake_messages_are_rejected(void **state)
{
    static const size_t cuts[] = {0, 1, 31, 32, 47};
    uint8_t msg[BUF], out[BUF];
    size_t msg_len = 0, out_len = 0, i;
    nk_vector v;

    (void)state;
    load_vector(&v);
    for (i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        alcove_noise_hs *ini = NULL, *resp = NULL;

        /* message 1 cut short */
        vector_sides(&v, &ini, &resp);
        assert_rc(alcove_noise_hs_write(ini, NULL, 0, msg, BUF, &msg_len), 0);
        assert_int_equal(msg_len, ALCOVE_NOISE_HS1_BYTES);
        assert_rc(alcove_noise_hs_read(resp, msg, cuts[i], out, BUF, &out_len),
                  ALCOVE_ETRUNC);
        alcove_noise_hs_free(resp);

        /* message 2 cut short */
        assert_rc(alcove_noise_hs_responder(&resp, v.resp_static, v.init_rs,
                                            v.resp_prologue,
                                            v.resp_prologue_len), 0);
        assert_rc(alcove_noise_hs_read(resp, msg, msg_len, out, BUF, &out_len), 0);
        assert_rc(alcove_noise_hs_write(resp, NULL, 0, msg, BUF, &msg_len), 0);
        assert_int_equal(msg_len, ALCOVE_NOISE_HS2_BYTES);
        assert_rc(alcove_noise_hs_read(ini, msg, cuts[i], out, BUF, &out_len),
                  ALCOVE_ETRUNC);
        alcove_noise_hs_free(ini);
        alcove_noise_hs_free(resp);
    }
    free_vector(&v);
}

/* --- our own two sides ------------------------------------------------------ */

/* A full handshake with random keys and the alcove prologue. */
static void own_pair(alcove_noise_transport **ti, alcove_noise_transport **tr)
{
    alcove_noise_hs *ini = NULL, *resp = NULL;
    alcove_noise_transport *again = NULL;
    uint8_t s_priv[32], s_pub[32], msg[BUF], out[BUF], h_i[64], h_r[64];
    const uint8_t *pro = (const uint8_t *)ALCOVE_NOISE_PROLOGUE;
    size_t msg_len = 0, out_len = 0;

    randombytes_buf(s_priv, sizeof s_priv);
    assert_int_equal(crypto_scalarmult_base(s_pub, s_priv), 0);
    assert_rc(alcove_noise_hs_initiator(&ini, s_pub, pro,
                                        ALCOVE_NOISE_PROLOGUE_LEN), 0);
    assert_rc(alcove_noise_hs_responder(&resp, s_priv, s_pub, pro,
                                        ALCOVE_NOISE_PROLOGUE_LEN), 0);
    /* Out of turn is refused without harm. */
    assert_rc(alcove_noise_hs_write(resp, NULL, 0, msg, BUF, &msg_len),
              ALCOVE_ESTATE);
    assert_rc(alcove_noise_hs_split(ini, ti, h_i), ALCOVE_ESTATE);

    assert_rc(alcove_noise_hs_write(ini, NULL, 0, msg, BUF, &msg_len), 0);
    assert_int_equal(msg_len, ALCOVE_NOISE_HS1_BYTES);
    assert_rc(alcove_noise_hs_set_ephemeral(ini, s_priv), ALCOVE_ESTATE);
    assert_rc(alcove_noise_hs_read(resp, msg, msg_len, NULL, 0, &out_len), 0);
    assert_int_equal(out_len, 0);
    assert_rc(alcove_noise_hs_write(resp, NULL, 0, msg, BUF, &msg_len), 0);
    assert_int_equal(msg_len, ALCOVE_NOISE_HS2_BYTES);
    assert_rc(alcove_noise_hs_read(ini, msg, msg_len, out, BUF, &out_len), 0);
    assert_int_equal(out_len, 0);

    assert_rc(alcove_noise_hs_split(ini, ti, h_i), 0);
    assert_rc(alcove_noise_hs_split(resp, tr, h_r), 0);
    assert_bytes_equal(h_i, 64, h_r, 64);
    assert_false(sodium_is_zero(h_i, 64));
    /* Split leaves the handshake wiped: a second split is refused. */
    assert_rc(alcove_noise_hs_split(ini, &again, h_i), ALCOVE_ESTATE);
    assert_null(again);
    alcove_noise_hs_free(ini);
    alcove_noise_hs_free(resp);
    sodium_memzero(s_priv, sizeof s_priv);
}

static void test_own_initiator_and_responder_agree_and_talk_both_ways(void **state)
{
    alcove_noise_transport *ti = NULL, *tr = NULL;
    uint8_t buf[BUF], back[BUF];
    int round;

    (void)state;
    own_pair(&ti, &tr);
    assert_non_null(ti);
    assert_non_null(tr);
    for (round = 0; round < 10; round++) {
        char text[64];
        int n = snprintf(text, sizeof text, "message %d", round);
        alcove_noise_transport *from = round % 3 == 0 ? tr : ti;
        alcove_noise_transport *to = from == ti ? tr : ti;

        assert_rc(alcove_noise_encrypt(from, (const uint8_t *)text, (size_t)n,
                                       buf), 0);
        assert_rc(alcove_noise_decrypt(to, buf, (size_t)n + 16, back), 0);
        assert_bytes_equal(back, (size_t)n, (const uint8_t *)text, (size_t)n);
    }
    /* In place, empty and maximum-size plaintexts. */
    {
        uint8_t *big = malloc(ALCOVE_NOISE_MSG_MAX);
        assert_non_null(big);
        memset(big, 0xab, ALCOVE_NOISE_PLAINTEXT_MAX);
        assert_rc(alcove_noise_encrypt(ti, big, ALCOVE_NOISE_PLAINTEXT_MAX, big), 0);
        assert_rc(alcove_noise_decrypt(tr, big, ALCOVE_NOISE_MSG_MAX, big), 0);
        assert_int_equal(big[0], 0xab);
        assert_int_equal(big[ALCOVE_NOISE_PLAINTEXT_MAX - 1], 0xab);
        assert_rc(alcove_noise_encrypt(ti, big, ALCOVE_NOISE_PLAINTEXT_MAX + 1,
                                       big), ALCOVE_ETOOBIG);
        free(big);
        assert_rc(alcove_noise_encrypt(tr, NULL, 0, buf), 0);
        assert_rc(alcove_noise_decrypt(ti, buf, 16, back), 0);
    }
    alcove_noise_transport_free(ti);
    alcove_noise_transport_free(tr);
}

static void test_tampered_transport_frame_fails_without_advancing_nonce(void **state)
{
    alcove_noise_transport *ti = NULL, *tr = NULL;
    static const uint8_t text[] = "feeling calmer today";
    uint8_t ct[BUF], bad[BUF], back[BUF];
    size_t n = sizeof text, i;

    (void)state;
    own_pair(&ti, &tr);
    assert_rc(alcove_noise_encrypt(ti, text, n, ct), 0);
    for (i = 0; i < n + 16; i += 7) {
        memcpy(bad, ct, n + 16);
        bad[i] ^= 0x80;
        assert_rc(alcove_noise_decrypt(tr, bad, n + 16, back), ALCOVE_EDECRYPT);
    }
    assert_rc(alcove_noise_decrypt(tr, ct, 15, back), ALCOVE_ETRUNC);
    assert_rc(alcove_noise_decrypt(tr, ct, 0, back), ALCOVE_ETRUNC);
    /* The genuine frame still decrypts: the nonce did not move. */
    assert_rc(alcove_noise_decrypt(tr, ct, n + 16, back), 0);
    assert_bytes_equal(back, n, text, n);
    /* Replaying it now fails: the nonce did move on success. */
    assert_rc(alcove_noise_decrypt(tr, ct, n + 16, back), ALCOVE_EDECRYPT);
    alcove_noise_transport_free(ti);
    alcove_noise_transport_free(tr);
}

static void test_free_null_is_a_noop(void **state)
{
    (void)state;
    alcove_noise_hs_free(NULL);
    alcove_noise_transport_free(NULL);
    assert_false(alcove_noise_hs_done(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nk_vector_reproduces_hash_and_every_ciphertext),
        cmocka_unit_test(test_tampered_message2_fails_with_edecrypt),
        cmocka_unit_test(test_all_zero_ephemeral_in_message1_is_rejected_with_ebadkey),
        cmocka_unit_test(test_initiator_refuses_an_all_zero_responder_key),
        cmocka_unit_test(test_truncated_handshake_messages_are_rejected),
        cmocka_unit_test(test_own_initiator_and_responder_agree_and_talk_both_ways),
        cmocka_unit_test(test_tampered_transport_frame_fails_without_advancing_nonce),
        cmocka_unit_test(test_free_null_is_a_noop),
    };
    if (sodium_init() < 0) {
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
