/* Invite codes: round trip, white space, and each rejection in DESIGN.md's
 * order: not an invite, mistyped, malformed, bad signature, unsupported
 * version, bad relay address, expired. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "address.h"
#include "e2e.pb-c.h"
#include "err.h"
#include "keys_testutil.h"
#include "identity.h"
#include "invite.h"

#define NOW 1700000000000ull
#define TEXT ALCOVE_INVITE_TEXT_MAX

typedef struct fixture {
    alcove_identity *id;
    alcove_identity *other;
    alcove_invite inv;
    char code[TEXT];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    uint8_t relay_key[32], prekey_sk[32];
    char key_b64[64];

    if (f == NULL || alcove_identity_generate(&f->id) != 0 ||
        alcove_identity_generate(&f->other) != 0)
        return -1;
    randombytes_buf(relay_key, sizeof relay_key);
    if (alcove_b64url_encode(relay_key, 32, key_b64, sizeof key_b64) != 0)
        return -1;
    snprintf(f->inv.relay_address, sizeof f->inv.relay_address,
             "alcove://%s@relay.example.org:7700", key_b64);
    randombytes_buf(f->inv.send_id, sizeof f->inv.send_id);
    randombytes_buf(f->inv.send_secret, sizeof f->inv.send_secret);
    crypto_box_keypair(f->inv.prekey_pub, prekey_sk);
    randombytes_buf(f->inv.prekey_id, sizeof f->inv.prekey_id);
    strcpy(f->inv.display_name, "Dr. Ana Müller");
    strcpy(f->inv.notice, "Office hours Mon-Thu.\nCrisis line: 988");
    f->inv.expires_at = NOW + ALCOVE_INVITE_LIFETIME_MS;
    if (alcove_invite_encode(f->id, &f->inv, f->code, sizeof f->code) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    alcove_identity_free(f->id);
    alcove_identity_free(f->other);
    free(f);
    return 0;
}

static int decode(const char *code, alcove_invite *out)
{
    return alcove_invite_decode(code, strlen(code), NOW, out);
}

/* --- re-encoding helpers: tests build hostile codes by hand ------------- */

typedef void (*mutator)(Alcove__E2e__InviteBody *b);

/* "alcove:" + b64(bytes || checksum). */
static void wrap(const uint8_t *bytes, size_t n, char *out)
{
    uint8_t buf[TEXT], h[32];

    assert_true(n + 4 <= sizeof buf);
    memcpy(buf, bytes, n);
    crypto_generichash(h, 32, bytes, n, NULL, 0);
    memcpy(buf + n, h, 4);
    strcpy(out, "alcove:");
    assert_rc(alcove_b64url_encode(buf, n + 4, out + 7, TEXT - 7), 0);
}

/* Decodes code, applies mutate to the body, re-signs it with signer (or
 * keeps the old signature when signer is NULL), re-wraps into out. */
static void recode(const char *code, mutator mutate,
                   const alcove_identity *signer, char *out)
{
    uint8_t bytes[TEXT], body_buf[TEXT], msg[TEXT], sig[64], packed[TEXT];
    size_t n = 0, blen, plen;
    Alcove__E2e__Invite *inv, out_inv;
    Alcove__E2e__InviteBody *body, saved;

    assert_rc(alcove_b64url_decode(code + 7, strlen(code + 7), bytes,
                                   sizeof bytes, &n),
              0);
    inv = alcove__e2e__invite__unpack(NULL, n - 4, bytes);
    assert_non_null(inv);
    body =
        alcove__e2e__invite_body__unpack(NULL, inv->body.len, inv->body.data);
    assert_non_null(body);
    saved = *body; /* mutators may point strings at static storage */
    mutate(body);
    blen = alcove__e2e__invite_body__get_packed_size(body);
    assert_true(blen < sizeof body_buf);
    alcove__e2e__invite_body__pack(body, body_buf);
    body->relay_address = saved.relay_address;
    body->display_name = saved.display_name;
    body->notice = saved.notice;
    if (signer != NULL) {
        memcpy(msg, "alcove-invite-v1", 16);
        memcpy(msg + 16, body_buf, blen);
        assert_rc(alcove_identity_sign(signer, msg, 16 + blen, sig), 0);
    } else {
        memcpy(sig, inv->signature.data, 64);
    }
    alcove__e2e__invite__init(&out_inv);
    out_inv.has_body = 1;
    out_inv.body.data = body_buf;
    out_inv.body.len = blen;
    out_inv.has_signature = 1;
    out_inv.signature.data = sig;
    out_inv.signature.len = 64;
    plen = alcove__e2e__invite__get_packed_size(&out_inv);
    alcove__e2e__invite__pack(&out_inv, packed);
    wrap(packed, plen, out);
    alcove__e2e__invite_body__free_unpacked(body, NULL);
    alcove__e2e__invite__free_unpacked(inv, NULL);
}

static void no_change(Alcove__E2e__InviteBody *b)
{
    (void)b;
}
static void later_expiry(Alcove__E2e__InviteBody *b)
{
    b->expires_at += 1;
}
static void version_2(Alcove__E2e__InviteBody *b)
{
    b->version = 2;
}
static void short_send_id(Alcove__E2e__InviteBody *b)
{
    b->send_id.len = 15;
}
static void no_prekey(Alcove__E2e__InviteBody *b)
{
    b->has_prekey_pub = 0;
}
static void escape_in_name(Alcove__E2e__InviteBody *b)
{
    static char evil[] = "Dr. \x1b[2JAna";
    b->display_name = evil;
}
static void bad_address(Alcove__E2e__InviteBody *b)
{
    static char addr[] = "alcove://short@relay.example.org:7700";
    b->relay_address = addr;
}
static void bad_address_v2(Alcove__E2e__InviteBody *b)
{
    bad_address(b);
    version_2(b);
}
static void bad_address_expired(Alcove__E2e__InviteBody *b)
{
    bad_address(b);
    b->expires_at = 1;
}

/* --- tests ---------------------------------------------------------------- */

static void round_trip_keeps_every_field(void **state)
{
    fixture *f = *state;
    alcove_invite got;

    assert_memory_equal(f->code, "alcove:", 7);
    assert_rc(decode(f->code, &got), 0);
    assert_int_equal(got.version, 1);
    assert_string_equal(got.relay_address, f->inv.relay_address);
    assert_memory_equal(got.send_id, f->inv.send_id, 16);
    assert_memory_equal(got.send_secret, f->inv.send_secret, 32);
    assert_memory_equal(got.sig_pub, alcove_identity_sig_pub(f->id), 32);
    assert_memory_equal(got.dh_pub, alcove_identity_dh_pub(f->id), 32);
    assert_memory_equal(got.prekey_pub, f->inv.prekey_pub, 32);
    assert_memory_equal(got.prekey_id, f->inv.prekey_id, 8);
    assert_string_equal(got.display_name, f->inv.display_name);
    assert_string_equal(got.notice, f->inv.notice);
    assert_true(got.expires_at == f->inv.expires_at);
    /* A code re-wrapped without changes is still valid (helper sanity). */
    {
        char again[TEXT];
        recode(f->code, no_change, NULL, again);
        assert_rc(decode(again, &got), 0);
    }
}

static void whitespace_and_newlines_anywhere_are_ignored(void **state)
{
    fixture *f = *state;
    char wrapped[TEXT];
    alcove_invite got;
    size_t o = 0, n = strlen(f->code);

    wrapped[o++] = '\n';
    wrapped[o++] = ' ';
    for (size_t i = 0; i < n; i++) {
        wrapped[o++] = f->code[i];
        if (i % 17 == 3)
            wrapped[o++] = '\n';
        if (i % 29 == 5) {
            wrapped[o++] = '\r';
            wrapped[o++] = '\t';
        }
    }
    wrapped[o++] = ' ';
    wrapped[o] = '\0';
    assert_rc(decode(wrapped, &got), 0);
    /* Upper-case prefix, as some mail clients capitalise it. */
    strcpy(wrapped, f->code);
    memcpy(wrapped, "Alcove:", 7);
    assert_rc(decode(wrapped, &got), 0);
}

static void missing_prefix_is_not_an_invite(void **state)
{
    fixture *f = *state;
    alcove_invite got;

    assert_rc(decode(f->code + 7, &got), ALCOVE_ENOTINVITE);
    assert_rc(decode("", &got), ALCOVE_ENOTINVITE);
    assert_rc(decode("https://example.org/", &got), ALCOVE_ENOTINVITE);
    assert_rc(decode("alcove", &got), ALCOVE_ENOTINVITE);
}

static void one_changed_character_is_mistyped(void **state)
{
    fixture *f = *state;
    char bad[TEXT];
    alcove_invite got;
    size_t n = strlen(f->code);

    for (size_t i = 7; i < n; i++) {
        int rc;
        strcpy(bad, f->code);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        rc = decode(bad, &got);
        if (rc != ALCOVE_EMISTYPED)
            fail_msg("char %zu changed: got %d (%s), want mistyped", i, rc,
                     alcove_strerror(rc));
    }
    strcpy(bad, f->code);
    bad[20] = '*'; /* not base64url */
    assert_rc(decode(bad, &got), ALCOVE_EMISTYPED);
    strcpy(bad, f->code);
    memmove(bad + 30, bad + 31, n - 30); /* a character dropped */
    assert_rc(decode(bad, &got), ALCOVE_EMISTYPED);
    assert_rc(decode("alcove:", &got), ALCOVE_EMISTYPED);
    assert_rc(decode("alcove:AAAA", &got), ALCOVE_EMISTYPED);
}

static void altered_body_with_good_checksum_is_bad_signature(void **state)
{
    fixture *f = *state;
    char forged[TEXT];
    alcove_invite got;

    recode(f->code, later_expiry, NULL, forged);
    assert_rc(decode(forged, &got), ALCOVE_EBADSIG);
    /* Signed by someone else while claiming f->id's keys. */
    recode(f->code, no_change, f->other, forged);
    assert_rc(decode(forged, &got), ALCOVE_EBADSIG);
}

static void expired_at_exactly_expires_at(void **state)
{
    fixture *f = *state;
    alcove_invite got;
    size_t n = strlen(f->code);

    assert_rc(alcove_invite_decode(f->code, n, f->inv.expires_at - 1, &got), 0);
    assert_rc(alcove_invite_decode(f->code, n, f->inv.expires_at, &got),
              ALCOVE_EEXPIRED);
    /* Filled, so the caller can say whose invite expired. */
    assert_string_equal(got.display_name, f->inv.display_name);
    assert_rc(alcove_invite_decode(f->code, n, UINT64_MAX, &got),
              ALCOVE_EEXPIRED);
}

static void other_version_is_unsupported(void **state)
{
    fixture *f = *state;
    char code[TEXT];
    alcove_invite got;

    recode(f->code, version_2, f->id, code);
    assert_rc(decode(code, &got), ALCOVE_EVERSION);
}

static void malformed_bytes_and_fields_are_malformed(void **state)
{
    fixture *f = *state;
    char code[TEXT];
    alcove_invite got;
    uint8_t junk[100];

    memset(junk, 0xFF, sizeof junk); /* valid checksum, not protobuf */
    wrap(junk, sizeof junk, code);
    assert_rc(decode(code, &got), ALCOVE_EMALFORMED);
    recode(f->code, short_send_id, f->id, code);
    assert_rc(decode(code, &got), ALCOVE_EMALFORMED);
    recode(f->code, no_prekey, f->id, code);
    assert_rc(decode(code, &got), ALCOVE_EMALFORMED);
    recode(f->code, escape_in_name, f->id, code);
    assert_rc(decode(code, &got), ALCOVE_EMALFORMED);
    /* Field sizes are checked before the signature. */
    recode(f->code, short_send_id, NULL, code);
    assert_rc(decode(code, &got), ALCOVE_EMALFORMED);
}

static void relay_address_checked_after_signature_and_version(void **state)
{
    fixture *f = *state;
    char code[TEXT];
    alcove_invite got;

    recode(f->code, bad_address, f->id, code);
    assert_rc(decode(code, &got), ALCOVE_EMALFORMED);
    recode(f->code, bad_address, NULL, code); /* unsigned change */
    assert_rc(decode(code, &got), ALCOVE_EBADSIG);
    recode(f->code, bad_address_v2, f->id, code);
    assert_rc(decode(code, &got), ALCOVE_EVERSION);
    recode(f->code, bad_address_expired, f->id, code);
    assert_rc(decode(code, &got), ALCOVE_EMALFORMED); /* before expiry */
}

static void oversized_input_is_refused_before_decoding(void **state)
{
    static char big[TEXT + 2];
    alcove_invite got;

    (void)state;
    memset(big, 'A', sizeof big - 1);
    memcpy(big, "alcove:", 7);
    assert_rc(alcove_invite_decode(big, TEXT + 1, NOW, &got), ALCOVE_ETOOBIG);
}

static void encode_refuses_bad_fields(void **state)
{
    fixture *f = *state;
    alcove_invite inv = f->inv;
    char code[TEXT];

    strcpy(inv.relay_address, "relay.example.org:7700");
    assert_rc(alcove_invite_encode(f->id, &inv, code, sizeof code),
              ALCOVE_EADDR);
    inv = f->inv;
    strcpy(inv.display_name, "bell\a");
    assert_rc(alcove_invite_encode(f->id, &inv, code, sizeof code),
              ALCOVE_EINVAL);
    inv = f->inv;
    strcpy(inv.display_name, "\xc3\x28"); /* invalid UTF-8 */
    assert_rc(alcove_invite_encode(f->id, &inv, code, sizeof code),
              ALCOVE_EINVAL);
    inv = f->inv;
    inv.expires_at = 0;
    assert_rc(alcove_invite_encode(f->id, &inv, code, sizeof code),
              ALCOVE_EINVAL);
    assert_rc(alcove_invite_encode(f->id, &f->inv, code, 40), ALCOVE_ETOOBIG);
}

static void longest_fields_fit_in_a_code(void **state)
{
    fixture *f = *state;
    alcove_invite inv = f->inv, got;
    char code[TEXT];

    memset(inv.display_name, 'n', ALCOVE_INVITE_NAME_MAX);
    inv.display_name[ALCOVE_INVITE_NAME_MAX] = '\0';
    memset(inv.notice, 'x', ALCOVE_INVITE_NOTICE_MAX);
    inv.notice[ALCOVE_INVITE_NOTICE_MAX] = '\0';
    assert_rc(alcove_invite_encode(f->id, &inv, code, sizeof code), 0);
    assert_rc(decode(code, &got), 0);
    assert_string_equal(got.notice, inv.notice);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(round_trip_keeps_every_field),
        T(whitespace_and_newlines_anywhere_are_ignored),
        T(missing_prefix_is_not_an_invite),
        T(one_changed_character_is_mistyped),
        T(altered_body_with_good_checksum_is_bad_signature),
        T(expired_at_exactly_expires_at),
        T(other_version_is_unsupported),
        T(malformed_bytes_and_fields_are_malformed),
        T(relay_address_checked_after_signature_and_version),
        T(oversized_input_is_refused_before_decoding),
        T(encode_refuses_bad_fields),
        T(longest_fields_fit_in_a_code),
    };
#undef T
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
