/* Double Ratchet: in order, out of order, skip bounds (1000 ok, 1001
 * refused before deriving), eviction past 2000 stored keys, replay (EDUP),
 * tampering with header / ciphertext / AD leaves the state unchanged, DH
 * ratchet steps in both directions, serialization mid-conversation, and the
 * KDF chain recomputed from DESIGN.md's formulas. */
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
#include "keys_testutil.h"
#include "hkdf.h"
#include "ratchet.h"

#define HDR ALCOVE_RATCHET_HEADER_BYTES
#define TAG ALCOVE_RATCHET_TAG_BYTES
#define TEXT_MAX 48

typedef struct msg {
    uint8_t header[HDR];
    uint8_t ct[TEXT_MAX + TAG];
    size_t ct_len;
    char text[TEXT_MAX];
} msg;

typedef struct pair {
    alcove_ratchet *a; /* Alice: the accepter */
    alcove_ratchet *b; /* Bob: the inviter */
    uint8_t sk[32], ad[128], p_pub[32], p_sk[32];
} pair;

static int setup(void **state)
{
    pair *p = calloc(1, sizeof *p);

    if (p == NULL)
        return -1;
    randombytes_buf(p->sk, sizeof p->sk);
    randombytes_buf(p->ad, sizeof p->ad);
    crypto_box_keypair(p->p_pub, p->p_sk);
    if (alcove_ratchet_init_alice(&p->a, p->sk, p->p_pub, p->ad) != 0 ||
        alcove_ratchet_init_bob(&p->b, p->sk, p->p_sk, p->p_pub, p->ad) != 0)
        return -1;
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    pair *p = *state;

    alcove_ratchet_free(p->a);
    alcove_ratchet_free(p->b);
    free(p);
    return 0;
}

static void enc(alcove_ratchet *r, msg *m, const char *tag, int i)
{
    snprintf(m->text, sizeof m->text, "%s %d", tag, i);
    assert_rc(alcove_ratchet_encrypt(r, (const uint8_t *)m->text,
                                     strlen(m->text) + 1, m->header, m->ct,
                                     sizeof m->ct, &m->ct_len),
              0);
    assert_int_equal(m->ct_len, strlen(m->text) + 1 + TAG);
}

/* Decrypts m with *r; on success swaps in the new state and checks the
 * text.  Returns the error code. */
static int dec(alcove_ratchet **r, const msg *m)
{
    uint8_t pt[TEXT_MAX + TAG];
    size_t pt_len = 0;
    alcove_ratchet *next = NULL;
    int rc = alcove_ratchet_decrypt(*r, m->header, HDR, m->ct, m->ct_len, pt,
                                    sizeof pt, &pt_len, &next);

    if (rc != 0) {
        assert_null(next);
        return rc;
    }
    assert_non_null(next);
    assert_int_equal(pt_len, strlen(m->text) + 1);
    assert_string_equal((const char *)pt, m->text);
    alcove_ratchet_free(*r);
    *r = next;
    return 0;
}

/* Serialized bytes of r (malloc'd) for "state unchanged" comparisons. */
static uint8_t *snap(const alcove_ratchet *r, size_t *len)
{
    size_t cap = alcove_ratchet_serialized_size(r);
    uint8_t *buf = malloc(cap);

    assert_non_null(buf);
    assert_true(cap <= ALCOVE_RATCHET_STATE_MAX);
    assert_rc(alcove_ratchet_serialize(r, buf, cap, len), 0);
    assert_int_equal(*len, cap);
    return buf;
}

static void assert_unchanged(const alcove_ratchet *r, const uint8_t *before,
                             size_t before_len)
{
    size_t len;
    uint8_t *now = snap(r, &len);

    assert_int_equal(len, before_len);
    assert_memory_equal(now, before, len);
    free(now);
}

static void in_order_messages_decrypt(void **state)
{
    pair *p = *state;
    msg m;

    for (int i = 0; i < 5; i++) {
        enc(p->a, &m, "a->b", i);
        assert_rc(dec(&p->b, &m), 0);
    }
    assert_int_equal(alcove_ratchet_stored_keys(p->b), 0);
}

static void bob_cannot_send_before_first_message(void **state)
{
    pair *p = *state;
    uint8_t h[HDR], ct[64];
    size_t n;
    msg m;

    assert_false(alcove_ratchet_can_send(p->b));
    assert_rc(alcove_ratchet_encrypt(p->b, (const uint8_t *)"x", 1, h, ct,
                                     sizeof ct, &n),
              ALCOVE_ESTATE);
    enc(p->a, &m, "hello", 0);
    assert_rc(dec(&p->b, &m), 0);
    assert_true(alcove_ratchet_can_send(p->b));
}

static void out_of_order_messages_decrypt(void **state)
{
    pair *p = *state;
    msg m[6];
    static const int order[] = {3, 0, 5, 2, 4, 1};

    for (int i = 0; i < 6; i++)
        enc(p->a, &m[i], "msg", i);
    assert_rc(dec(&p->b, &m[3]), 0);
    assert_int_equal(alcove_ratchet_stored_keys(p->b), 3);
    for (int i = 1; i < 6; i++)
        assert_rc(dec(&p->b, &m[order[i]]), 0);
    assert_int_equal(alcove_ratchet_stored_keys(p->b), 0);
}

static void both_directions_with_dh_ratchet_steps(void **state)
{
    pair *p = *state;
    uint8_t last_a[32] = {0}, last_b[32] = {0};
    msg m;

    for (int round = 0; round < 8; round++) {
        for (int i = 0; i <= round % 3; i++) {
            enc(p->a, &m, "a", round * 10 + i);
            if (i == 0) { /* Alice's ratchet key changed since last turn */
                assert_memory_not_equal(m.header, last_a, 32);
                memcpy(last_a, m.header, 32);
            }
            assert_rc(dec(&p->b, &m), 0);
        }
        for (int i = 0; i <= (round + 1) % 3; i++) {
            enc(p->b, &m, "b", round * 10 + i);
            if (i == 0) {
                assert_memory_not_equal(m.header, last_b, 32);
                memcpy(last_b, m.header, 32);
            }
            assert_rc(dec(&p->a, &m), 0);
        }
    }
}

/* Alice sends count messages; returns them (caller frees). */
static msg *burst(alcove_ratchet *r, int count, const char *tag)
{
    msg *m = calloc((size_t)count, sizeof *m);

    assert_non_null(m);
    for (int i = 0; i < count; i++)
        enc(r, &m[i], tag, i);
    return m;
}

static void skipping_exactly_1000_is_accepted(void **state)
{
    pair *p = *state;
    msg *m = burst(p->a, 1001, "s");

    assert_rc(dec(&p->b, &m[1000]), 0);
    assert_int_equal(alcove_ratchet_stored_keys(p->b), 1000);
    assert_rc(dec(&p->b, &m[0]), 0);
    assert_rc(dec(&p->b, &m[999]), 0);
    assert_int_equal(alcove_ratchet_stored_keys(p->b), 998);
    free(m);
}

static void skipping_1001_is_rejected_before_deriving(void **state)
{
    pair *p = *state;
    msg *m = burst(p->a, 1002, "s");
    msg forged;
    uint8_t *before;
    size_t before_len;

    before = snap(p->b, &before_len);
    assert_rc(dec(&p->b, &m[1001]), ALCOVE_ELIMIT);
    assert_unchanged(p->b, before, before_len);
    /* A forgery claiming n = 1001 gets ELIMIT, not EDECRYPT: the bound was
     * checked before any key was derived or any MAC computed. */
    forged = m[1001];
    randombytes_buf(forged.ct, forged.ct_len);
    assert_rc(dec(&p->b, &forged), ALCOVE_ELIMIT);
    forged.header[HDR - 1] = 0xFF; /* n = 0x...FF, far beyond */
    forged.header[HDR - 2] = 0xFF;
    assert_rc(dec(&p->b, &forged), ALCOVE_ELIMIT);
    assert_unchanged(p->b, before, before_len);
    assert_int_equal(alcove_ratchet_stored_keys(p->b), 0);
    /* The session is not stuck. */
    assert_rc(dec(&p->b, &m[0]), 0);
    assert_rc(dec(&p->b, &m[1001]), 0); /* now 1000 ahead of nr=1 */
    free(before);
    free(m);
}

static void previous_chain_skip_via_pn_is_bounded(void **state)
{
    pair *p = *state;
    msg first, reply, next;
    msg *m;

    enc(p->a, &first, "first", 0);
    assert_rc(dec(&p->b, &first), 0); /* Bob's nr = 1 */
    m = burst(p->a, 1002, "lost");    /* Alice's ns = 1003 */
    enc(p->b, &reply, "reply", 0);
    assert_rc(dec(&p->a, &reply), 0); /* Alice ratchets: pn = 1003 */
    enc(p->a, &next, "next", 0);
    /* Bob would have to skip 1002 keys of the previous chain. */
    assert_rc(dec(&p->b, &next), ALCOVE_ELIMIT);
    assert_int_equal(alcove_ratchet_stored_keys(p->b), 0);
    /* Receiving one late message of the old chain brings it within bounds
     * (m[1] is n=2: skips n=1, pn - nr = 1003 - 3 = 1000). */
    assert_rc(dec(&p->b, &m[1]), 0);
    assert_rc(dec(&p->b, &next), 0);
    assert_int_equal(alcove_ratchet_stored_keys(p->b), 1 + 1000);
    free(m);
}

/* Bob receives only the last of 1001 messages of a chain (storing 1000),
 * then replies so Alice's next burst is a new chain. */
static msg *chain_of_1001(pair *p, int round)
{
    msg *m = burst(p->a, 1001, round == 0 ? "c0" : round == 1 ? "c1" : "c2");
    msg reply;

    assert_rc(dec(&p->b, &m[1000]), 0);
    enc(p->b, &reply, "ack", round);
    assert_rc(dec(&p->a, &reply), 0);
    return m;
}

static void stored_keys_past_2000_evict_the_oldest(void **state)
{
    pair *p = *state;
    msg *c0 = chain_of_1001(p, 0);
    msg *c1, *c2;

    assert_int_equal(alcove_ratchet_stored_keys(p->b), 1000);
    c1 = chain_of_1001(p, 1);
    assert_int_equal(alcove_ratchet_stored_keys(p->b), 2000);
    c2 = chain_of_1001(p, 2);
    assert_int_equal(alcove_ratchet_stored_keys(p->b), 2000); /* capped */
    /* Chain 0's keys were the oldest: gone.  Chains 1 and 2 still work. */
    assert_rc(dec(&p->b, &c0[5]), ALCOVE_EDECRYPT);
    assert_rc(dec(&p->b, &c1[5]), 0);
    assert_rc(dec(&p->b, &c2[999]), 0);
    assert_int_equal(alcove_ratchet_stored_keys(p->b), 1998);
    free(c0);
    free(c1);
    free(c2);
}

static void replayed_message_is_duplicate(void **state)
{
    pair *p = *state;
    msg m0, m1, m2;
    uint8_t *before;
    size_t before_len;

    enc(p->a, &m0, "m", 0);
    enc(p->a, &m1, "m", 1);
    enc(p->a, &m2, "m", 2);
    assert_rc(dec(&p->b, &m0), 0);
    assert_rc(dec(&p->b, &m2), 0); /* m1 stored as skipped */
    before = snap(p->b, &before_len);
    assert_rc(dec(&p->b, &m0), ALCOVE_EDUP);
    assert_rc(dec(&p->b, &m2), ALCOVE_EDUP);
    assert_unchanged(p->b, before, before_len);
    assert_rc(dec(&p->b, &m1), 0);
    assert_rc(dec(&p->b, &m1), ALCOVE_EDUP); /* from a skipped key */
    free(before);
}

static void duplicate_window_holds_the_last_4096(void **state)
{
    pair *p = *state;
    msg first, m, last;
    alcove_ratchet *restored = NULL;
    uint8_t *s;
    size_t len;

    enc(p->a, &first, "w", 0);
    assert_rc(dec(&p->b, &first), 0);
    for (int i = 1; i <= (int)ALCOVE_RATCHET_DUP_WINDOW; i++) {
        enc(p->a, &m, "w", i);
        assert_rc(dec(&p->b, &m), 0);
        if (i == (int)ALCOVE_RATCHET_DUP_WINDOW - 1)
            last = m;
    }
    /* 4097 digests seen: the first has left the window (its key is used,
     * so it is still refused, as undecryptable); recent ones are EDUP,
     * also after a serialization round trip of the wrapped ring. */
    assert_rc(dec(&p->b, &first), ALCOVE_EDECRYPT);
    assert_rc(dec(&p->b, &last), ALCOVE_EDUP);
    assert_rc(dec(&p->b, &m), ALCOVE_EDUP);
    s = snap(p->b, &len);
    assert_int_equal(len, alcove_ratchet_serialized_size(p->b));
    assert_rc(alcove_ratchet_deserialize(s, len, &restored), 0);
    assert_rc(dec(&restored, &last), ALCOVE_EDUP);
    assert_rc(dec(&restored, &first), ALCOVE_EDECRYPT);
    enc(p->a, &m, "w", 99999);
    assert_rc(dec(&restored, &m), 0);
    alcove_ratchet_free(restored);
    free(s);
}

static void expect_rejected_unchanged(pair *p, const msg *bad)
{
    uint8_t *before;
    size_t before_len;
    int rc;

    before = snap(p->b, &before_len);
    rc = dec(&p->b, bad);
    if (rc == 0)
        fail_msg("tampered message accepted");
    assert_unchanged(p->b, before, before_len);
    free(before);
}

static void tampering_is_rejected_and_state_unchanged(void **state)
{
    pair *p = *state;
    msg m0, m1, bad;
    alcove_ratchet *other = NULL;
    uint8_t ad2[128];

    enc(p->a, &m0, "zero", 0);
    assert_rc(dec(&p->b, &m0), 0);
    enc(p->a, &m1, "one", 1);
    /* Every header byte and every ciphertext byte, one bit each. */
    for (size_t i = 0; i < HDR; i++) {
        bad = m1;
        bad.header[i] ^= 0x01;
        expect_rejected_unchanged(p, &bad);
    }
    for (size_t i = 0; i < m1.ct_len; i++) {
        bad = m1;
        bad.ct[i] ^= 0x40;
        expect_rejected_unchanged(p, &bad);
    }
    bad = m1;
    bad.ct_len--; /* truncated */
    expect_rejected_unchanged(p, &bad);
    /* A session with a different AD (other identities) cannot read it. */
    memcpy(ad2, p->ad, sizeof ad2);
    ad2[100] ^= 0x01;
    assert_rc(alcove_ratchet_init_bob(&other, p->sk, p->p_sk, p->p_pub, ad2),
              0);
    assert_rc(dec(&other, &m0), ALCOVE_EDECRYPT);
    alcove_ratchet_free(other);
    /* The good message still decrypts afterwards. */
    assert_rc(dec(&p->b, &m1), 0);
}

static void malformed_inputs_are_refused(void **state)
{
    pair *p = *state;
    uint8_t pt[64], ct[64] = {0}, h[HDR] = {0};
    size_t n;
    alcove_ratchet *next = NULL;
    msg m;

    assert_rc(alcove_ratchet_decrypt(p->b, h, HDR - 1, ct, 32, pt, sizeof pt,
                                     &n, &next),
              ALCOVE_EMALFORMED);
    assert_rc(alcove_ratchet_decrypt(p->b, h, HDR, ct, TAG - 1, pt, sizeof pt,
                                     &n, &next),
              ALCOVE_EMALFORMED);
    enc(p->a, &m, "abc", 0);
    assert_rc(alcove_ratchet_decrypt(p->b, m.header, HDR, m.ct, m.ct_len, pt,
                                     m.ct_len - TAG - 1, &n, &next),
              ALCOVE_ETOOBIG);
    /* A low-order ratchet key in the header. */
    memset(m.header, 0, 32);
    assert_rc(dec(&p->b, &m), ALCOVE_EBADKEY);
    assert_null(next);
}

static void serialize_round_trip_mid_conversation(void **state)
{
    pair *p = *state;
    msg m[4], r0, late_dup;
    alcove_ratchet *a2 = NULL, *b2 = NULL;
    uint8_t *sa, *sb, *again;
    size_t la, lb, lagain;

    for (int i = 0; i < 4; i++)
        enc(p->a, &m[i], "pre", i);
    assert_rc(dec(&p->b, &m[3]), 0); /* 3 skipped keys stored */
    assert_rc(dec(&p->b, &m[0]), 0);
    enc(p->b, &r0, "back", 0);
    assert_rc(dec(&p->a, &r0), 0);

    sa = snap(p->a, &la);
    sb = snap(p->b, &lb);
    assert_rc(alcove_ratchet_deserialize(sa, la, &a2), 0);
    assert_rc(alcove_ratchet_deserialize(sb, lb, &b2), 0);
    again = snap(b2, &lagain);
    assert_int_equal(lagain, lb);
    assert_memory_equal(again, sb, lb);
    free(again);
    assert_int_equal(alcove_ratchet_stored_keys(b2), 2);

    /* The restored states carry on: skipped keys, duplicates, new steps. */
    assert_rc(dec(&b2, &m[1]), 0);
    assert_rc(dec(&b2, &m[3]), ALCOVE_EDUP);
    late_dup = r0;
    assert_rc(dec(&a2, &late_dup), ALCOVE_EDUP);
    for (int round = 0; round < 3; round++) {
        msg x;
        enc(a2, &x, "after a", round);
        assert_rc(dec(&b2, &x), 0);
        enc(b2, &x, "after b", round);
        assert_rc(dec(&a2, &x), 0);
    }
    assert_rc(dec(&b2, &m[2]), 0);
    alcove_ratchet_free(a2);
    alcove_ratchet_free(b2);
    free(sa);
    free(sb);
}

static void deserialize_rejects_damaged_bytes(void **state)
{
    pair *p = *state;
    msg m[3];
    alcove_ratchet *r = NULL;
    uint8_t *s, *big;
    size_t len;

    for (int i = 0; i < 3; i++)
        enc(p->a, &m[i], "x", i);
    assert_rc(dec(&p->b, &m[2]), 0);
    s = snap(p->b, &len);
    for (size_t cut = 0; cut < len; cut++) {
        int rc = alcove_ratchet_deserialize(s, cut, &r);
        if (rc != ALCOVE_ETRUNC && rc != ALCOVE_ECORRUPT)
            fail_msg("cut at %zu of %zu: got %d (%s)", cut, len, rc,
                     alcove_strerror(rc));
        assert_null(r);
    }
    big = malloc(len + 1);
    assert_non_null(big);
    memcpy(big, s, len);
    big[len] = 0;
    assert_rc(alcove_ratchet_deserialize(big, len + 1, &r), ALCOVE_ECORRUPT);
    big[0] = 2;
    assert_rc(alcove_ratchet_deserialize(big, len, &r), ALCOVE_EFORMAT);
    big[0] = 1;
    big[1] = 0x80; /* unknown flag */
    assert_rc(alcove_ratchet_deserialize(big, len, &r), ALCOVE_ECORRUPT);
    free(big);
    free(s);
}

/* Bob's side of Alice's first message, recomputed from the formulas:
 * (rk, ck) = HKDF(salt = SK, ikm = DH(P, A_ratchet), "alcove-ratchet-v1", 64);
 * mk = HMAC(ck, 0x01); key || nonce = HKDF(zeros, mk, "alcove-msg-v1", 56);
 * XChaCha20-Poly1305 with AD || header. */
static void first_message_matches_design_formulas(void **state)
{
    pair *p = *state;
    static const uint8_t zeros[32];
    const uint8_t one = 0x01;
    uint8_t dh[32], rkck[64], mk[32], kn[56], ad[168], pt[TEXT_MAX];
    unsigned long long pt_len = 0;
    msg m;

    enc(p->a, &m, "formula", 42);
    assert_memory_equal(m.header + 32, "\0\0\0\0\0\0\0\0", 8); /* pn=0 n=0 */
    assert_int_equal(crypto_scalarmult(dh, p->p_sk, m.header), 0);
    assert_rc(alcove_hkdf(rkck, 64, p->sk, 32, dh, 32,
                          (const uint8_t *)"alcove-ratchet-v1", 17),
              0);
    crypto_auth_hmacsha256(mk, &one, 1, rkck + 32);
    assert_rc(alcove_hkdf(kn, 56, zeros, 32, mk, 32,
                          (const uint8_t *)"alcove-msg-v1", 13),
              0);
    memcpy(ad, p->ad, 128);
    memcpy(ad + 128, m.header, HDR);
    assert_int_equal(
        crypto_aead_xchacha20poly1305_ietf_decrypt(
            pt, &pt_len, NULL, m.ct, m.ct_len, ad, sizeof ad, kn + 32, kn),
        0);
    assert_string_equal((const char *)pt, "formula 42");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(in_order_messages_decrypt),
        T(bob_cannot_send_before_first_message),
        T(out_of_order_messages_decrypt),
        T(both_directions_with_dh_ratchet_steps),
        T(skipping_exactly_1000_is_accepted),
        T(skipping_1001_is_rejected_before_deriving),
        T(previous_chain_skip_via_pn_is_bounded),
        T(stored_keys_past_2000_evict_the_oldest),
        T(replayed_message_is_duplicate),
        T(duplicate_window_holds_the_last_4096),
        T(tampering_is_rejected_and_state_unchanged),
        T(malformed_inputs_are_refused),
        T(serialize_round_trip_mid_conversation),
        T(deserialize_rejects_damaged_bytes),
        T(first_message_matches_design_formulas),
    };
#undef T
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
