/* Envelopes: padded ratchet messages (sizes are buckets, duplicates,
 * versions, authentic-but-corrupt), and the full intro flow from invite to
 * a two-way conversation, with the intro's rejections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "e2e.pb-c.h"
#include "envelope.h"
#include "err.h"
#include "keys_testutil.h"
#include "x3dh.h"

typedef struct fixture {
    alcove_identity *a, *b; /* accepter (client), inviter (therapist) */
    alcove_invite inv;
    uint8_t prekey_sk[32];
    alcove_ratchet *sa, *sb; /* sessions after the intro */
    uint8_t blob[ALCOVE_ENVELOPE_MAX];
    size_t blob_len;
    uint8_t content[ALCOVE_PAD_MAX];
    size_t content_len;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);

    if (f == NULL || alcove_identity_generate(&f->a) != 0 ||
        alcove_identity_generate(&f->b) != 0)
        return -1;
    memcpy(f->inv.sig_pub, alcove_identity_sig_pub(f->b), 32);
    memcpy(f->inv.dh_pub, alcove_identity_dh_pub(f->b), 32);
    crypto_box_keypair(f->inv.prekey_pub, f->prekey_sk);
    randombytes_buf(f->inv.prekey_id, 8);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    alcove_identity_free(f->a);
    alcove_identity_free(f->b);
    alcove_ratchet_free(f->sa);
    alcove_ratchet_free(f->sb);
    free(f);
    return 0;
}

static int open_intro(fixture *f, const uint8_t *blob, size_t len,
                      alcove_ratchet **sb)
{
    uint8_t a_sig[32], a_dh[32];

    return alcove_intro_open(
        f->b, f->prekey_sk, f->inv.prekey_pub, f->inv.prekey_id, blob, len,
        a_sig, a_dh, f->content, sizeof f->content, &f->content_len, sb);
}

/* A seals an intro carrying `text`; B opens it: both sessions set. */
static void do_intro(fixture *f, const char *text)
{
    uint8_t a_sig[32], a_dh[32];

    assert_rc(alcove_intro_seal(f->a, &f->inv, (const uint8_t *)text,
                                strlen(text), f->blob, sizeof f->blob,
                                &f->blob_len, &f->sa),
              0);
    assert_rc(alcove_envelope_kind(f->blob, f->blob_len),
              ALCOVE_ENVELOPE_INTRO);
    assert_rc(alcove_intro_open(f->b, f->prekey_sk, f->inv.prekey_pub,
                                f->inv.prekey_id, f->blob, f->blob_len, a_sig,
                                a_dh, f->content, sizeof f->content,
                                &f->content_len, &f->sb),
              0);
    assert_int_equal(f->content_len, strlen(text));
    assert_memory_equal(f->content, text, f->content_len);
    assert_memory_equal(a_sig, alcove_identity_sig_pub(f->a), 32);
    assert_memory_equal(a_dh, alcove_identity_dh_pub(f->a), 32);
}

/* from seals text; to opens it (state swapped on success). */
static int send_text(fixture *f, alcove_ratchet *from, alcove_ratchet **to,
                     const char *text)
{
    alcove_ratchet *next = NULL;
    int rc;

    assert_rc(alcove_envelope_seal(from, (const uint8_t *)text, strlen(text),
                                   f->blob, sizeof f->blob, &f->blob_len),
              0);
    assert_rc(alcove_envelope_kind(f->blob, f->blob_len),
              ALCOVE_ENVELOPE_MESSAGE);
    rc = alcove_envelope_open(*to, f->blob, f->blob_len, f->content,
                              sizeof f->content, &f->content_len, &next);
    if (rc == 0) {
        assert_int_equal(f->content_len, strlen(text));
        assert_memory_equal(f->content, text, f->content_len);
        alcove_ratchet_free(*to);
        *to = next;
    }
    return rc;
}

static void intro_then_conversation_both_ways(void **state)
{
    fixture *f = *state;

    do_intro(f, "intro: reply mailbox, name");
    assert_rc(send_text(f, f->sb, &f->sa, "welcome"), 0);
    assert_rc(send_text(f, f->sa, &f->sb, "mood 4 today"), 0);
    assert_rc(send_text(f, f->sa, &f->sb, "slept badly"), 0);
    assert_rc(send_text(f, f->sb, &f->sa, "see you thursday"), 0);
}

static void ordinary_messages_all_have_one_size(void **state)
{
    fixture *f = *state;
    size_t first;
    static uint8_t big[ALCOVE_PAD_MAX];
    alcove_ratchet *next = NULL;

    do_intro(f, "hi");
    assert_rc(send_text(f, f->sa, &f->sb, "a"), 0);
    first = f->blob_len;
    assert_rc(send_text(f, f->sa, &f->sb,
                        "a much longer check-in note that "
                        "still fits the first bucket"),
              0);
    assert_int_equal(f->blob_len, first);
    /* The largest content fills the largest bucket and still opens. */
    memset(big, 'x', ALCOVE_PAD_MAX_CONTENT);
    assert_rc(alcove_envelope_seal(f->sa, big, ALCOVE_PAD_MAX_CONTENT, f->blob,
                                   sizeof f->blob, &f->blob_len),
              0);
    assert_true(f->blob_len > ALCOVE_PAD_MAX && f->blob_len < 64000);
    assert_rc(alcove_envelope_open(f->sb, f->blob, f->blob_len, f->content,
                                   sizeof f->content, &f->content_len, &next),
              0);
    assert_int_equal(f->content_len, ALCOVE_PAD_MAX_CONTENT);
    alcove_ratchet_free(next);
}

static void oversized_content_refused_without_moving_the_ratchet(void **state)
{
    fixture *f = *state;
    static uint8_t big[ALCOVE_PAD_MAX + 1];

    do_intro(f, "hi");
    assert_rc(alcove_envelope_seal(f->sa, big, ALCOVE_PAD_MAX, f->blob,
                                   sizeof f->blob, &f->blob_len),
              ALCOVE_ETOOBIG);
    assert_rc(alcove_envelope_seal(f->sa, big, 10, f->blob, 100, &f->blob_len),
              ALCOVE_ETOOBIG); /* output too small */
    /* The next real message is still n = 1 of Alice's chain, no gap. */
    assert_rc(send_text(f, f->sa, &f->sb, "after"), 0);
    assert_int_equal(alcove_ratchet_stored_keys(f->sb), 0);
}

static void duplicate_envelope_is_edup(void **state)
{
    fixture *f = *state;
    uint8_t copy[ALCOVE_ENVELOPE_MAX];
    size_t len;
    alcove_ratchet *next = NULL;

    do_intro(f, "hi");
    assert_rc(send_text(f, f->sa, &f->sb, "once"), 0);
    memcpy(copy, f->blob, f->blob_len);
    len = f->blob_len;
    assert_rc(alcove_envelope_open(f->sb, copy, len, f->content,
                                   sizeof f->content, &f->content_len, &next),
              ALCOVE_EDUP);
    assert_null(next);
}

static void unknown_version_and_garbage_are_rejected(void **state)
{
    fixture *f = *state;
    Alcove__E2e__Envelope env;
    uint8_t buf[64], junk[32];
    size_t n;
    alcove_ratchet *next = NULL;

    do_intro(f, "hi");
    alcove__e2e__envelope__init(&env);
    env.has_version = 1;
    env.version = 2;
    env.kind_case = ALCOVE__E2E__ENVELOPE__KIND_INTRO_SEALED;
    env.intro_sealed.data = junk;
    env.intro_sealed.len = sizeof junk;
    memset(junk, 1, sizeof junk);
    n = alcove__e2e__envelope__pack(&env, buf);
    assert_rc(alcove_envelope_kind(buf, n), ALCOVE_EVERSION);
    assert_rc(alcove_envelope_open(f->sb, buf, n, f->content, sizeof f->content,
                                   &f->content_len, &next),
              ALCOVE_EVERSION);
    memset(buf, 0xFF, sizeof buf);
    assert_rc(alcove_envelope_kind(buf, sizeof buf), ALCOVE_EMALFORMED);
    env.version = 1;
    env.kind_case = ALCOVE__E2E__ENVELOPE__KIND__NOT_SET;
    n = alcove__e2e__envelope__pack(&env, buf);
    assert_rc(alcove_envelope_kind(buf, n), ALCOVE_EMALFORMED);
}

static void authentic_but_badly_padded_is_consumed_as_corrupt(void **state)
{
    fixture *f = *state;
    Alcove__E2e__Envelope env;
    Alcove__E2e__RatchetMessage rm;
    uint8_t pt[1024] = {0}, header[40], ct[1024 + 16];
    size_t ct_len;
    alcove_ratchet *next = NULL;

    do_intro(f, "hi");
    /* 1024 zero bytes: a bucket length, but no 0x80 marker. */
    assert_rc(alcove_ratchet_encrypt(f->sa, pt, sizeof pt, header, ct,
                                     sizeof ct, &ct_len),
              0);
    alcove__e2e__ratchet_message__init(&rm);
    rm.has_header = rm.has_ciphertext = 1;
    rm.header.data = header;
    rm.header.len = 40;
    rm.ciphertext.data = ct;
    rm.ciphertext.len = ct_len;
    alcove__e2e__envelope__init(&env);
    env.has_version = 1;
    env.version = 1;
    env.kind_case = ALCOVE__E2E__ENVELOPE__KIND_MESSAGE;
    env.message = &rm;
    f->blob_len = alcove__e2e__envelope__pack(&env, f->blob);
    assert_rc(alcove_envelope_open(f->sb, f->blob, f->blob_len, f->content,
                                   sizeof f->content, &f->content_len, &next),
              ALCOVE_ECORRUPT);
    assert_non_null(next); /* consumed: the caller commits it */
    assert_int_equal(f->content_len, 0);
    alcove_ratchet_free(f->sb);
    f->sb = next;
    assert_rc(send_text(f, f->sa, &f->sb, "next one fine"), 0);
}

static void intro_rejections_leave_the_prekey_usable(void **state)
{
    fixture *f = *state;
    uint8_t good[ALCOVE_ENVELOPE_MAX], other_sk[32], other_pub[32];
    size_t good_len;
    alcove_ratchet *sb = NULL;
    uint8_t a_sig[32], a_dh[32];
    alcove_invite wrong_id = f->inv;

    assert_rc(alcove_intro_seal(f->a, &f->inv, (const uint8_t *)"hello", 5,
                                good, sizeof good, &good_len, &f->sa),
              0);
    /* Wrong prekey: the sealed box does not open. */
    crypto_box_keypair(other_pub, other_sk);
    assert_rc(alcove_intro_open(f->b, other_sk, other_pub, f->inv.prekey_id,
                                good, good_len, a_sig, a_dh, f->content,
                                sizeof f->content, &f->content_len, &sb),
              ALCOVE_EDECRYPT);
    /* Right key, but the intro names another prekey id. */
    wrong_id.prekey_id[0] ^= 1;
    assert_rc(alcove_intro_open(f->b, f->prekey_sk, f->inv.prekey_pub,
                                wrong_id.prekey_id, good, good_len, a_sig, a_dh,
                                f->content, sizeof f->content, &f->content_len,
                                &sb),
              ALCOVE_ENOTFOUND);
    /* Every byte of the sealed blob tampered: rejected. */
    for (size_t i = 0; i < good_len; i += 97) {
        uint8_t bad[ALCOVE_ENVELOPE_MAX];
        int rc;
        memcpy(bad, good, good_len);
        bad[i] ^= 0x04;
        rc = open_intro(f, bad, good_len, &sb);
        if (rc == 0)
            fail_msg("tampered byte %zu accepted", i);
        assert_null(sb);
    }
    /* Truncated: rejected. */
    assert_true(open_intro(f, good, good_len - 1, &sb) != 0);
    /* A ratchet message is not an intro. */
    {
        uint8_t msg[ALCOVE_ENVELOPE_MAX];
        size_t msg_len;
        assert_rc(alcove_envelope_seal(f->sa, (const uint8_t *)"m", 1, msg,
                                       sizeof msg, &msg_len),
                  0);
        assert_rc(open_intro(f, msg, msg_len, &sb), ALCOVE_EMALFORMED);
    }
    /* Still usable. */
    assert_rc(open_intro(f, good, good_len, &sb), 0);
    alcove_ratchet_free(sb);
}

static void largest_intro_fits_envelope_max(void **state)
{
    fixture *f = *state;
    static uint8_t big[ALCOVE_PAD_MAX_CONTENT];
    alcove_ratchet *sb = NULL;

    memset(big, 'i', sizeof big);
    assert_rc(alcove_intro_seal(f->a, &f->inv, big, sizeof big, f->blob,
                                sizeof f->blob, &f->blob_len, &f->sa),
              0);
    assert_true(f->blob_len <= ALCOVE_ENVELOPE_MAX);
    assert_true(f->blob_len < 64000); /* the relay's default blob limit */
    assert_rc(open_intro(f, f->blob, f->blob_len, &sb), 0);
    assert_int_equal(f->content_len, sizeof big);
    alcove_ratchet_free(sb);
}

static void intro_to_a_low_order_prekey_is_refused(void **state)
{
    fixture *f = *state;
    alcove_invite bad = f->inv;

    memset(bad.prekey_pub, 0, 32);
    assert_rc(alcove_intro_seal(f->a, &bad, (const uint8_t *)"x", 1, f->blob,
                                sizeof f->blob, &f->blob_len, &f->sa),
              ALCOVE_EBADKEY);
    assert_null(f->sa);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(intro_then_conversation_both_ways),
        T(ordinary_messages_all_have_one_size),
        T(oversized_content_refused_without_moving_the_ratchet),
        T(duplicate_envelope_is_edup),
        T(unknown_version_and_garbage_are_rejected),
        T(authentic_but_badly_padded_is_consumed_as_corrupt),
        T(intro_rejections_leave_the_prekey_usable),
        T(largest_intro_fits_envelope_max),
        T(intro_to_a_low_order_prekey_is_refused),
    };
#undef T
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
