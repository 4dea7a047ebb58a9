/* Safety numbers (symmetry, format, a known answer computed independently
 * with Python's hashlib.blake2b) and X3DH (both roles derive the same SK and
 * AD; low-order keys are refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "keys_testutil.h"
#include "identity.h"
#include "safety.h"
#include "x3dh.h"

/* python3: h = blake2b(b'alcove-safety-v1' + sig + dh, digest_size=64);
 * six 5-byte big-endian ints mod 100000 as %05d; with sig = bytes(0..31),
 * dh = bytes(32..63) for A and bytes(64..95), bytes(96..127) for B. */
#define KAT_HALF_A "715621772521911979324716273731"
#define KAT_HALF_B "272242474961004463024144638296"
#define KAT_NUMBER KAT_HALF_B KAT_HALF_A

static void fill(uint8_t *p, uint8_t start)
{
    for (int i = 0; i < 32; i++)
        p[i] = (uint8_t)(start + i);
}

static void known_answer_matches_python(void **state)
{
    uint8_t as[32], ad[32], bs[32], bd[32];
    char half[ALCOVE_SAFETY_HALF_BUF], num[ALCOVE_SAFETY_BUF];

    (void)state;
    fill(as, 0);
    fill(ad, 32);
    fill(bs, 64);
    fill(bd, 96);
    assert_rc(alcove_safety_half(as, ad, half), 0);
    assert_string_equal(half, KAT_HALF_A);
    assert_rc(alcove_safety_half(bs, bd, half), 0);
    assert_string_equal(half, KAT_HALF_B);
    assert_rc(alcove_safety_number(as, ad, bs, bd, num), 0);
    assert_string_equal(num, KAT_NUMBER);
}

static void number_is_same_on_both_sides(void **state)
{
    alcove_identity *a = NULL, *b = NULL;
    char ab[ALCOVE_SAFETY_BUF], ba[ALCOVE_SAFETY_BUF];

    (void)state;
    assert_rc(alcove_identity_generate(&a), 0);
    assert_rc(alcove_identity_generate(&b), 0);
    assert_rc(alcove_safety_number(
                  alcove_identity_sig_pub(a), alcove_identity_dh_pub(a),
                  alcove_identity_sig_pub(b), alcove_identity_dh_pub(b), ab),
              0);
    assert_rc(alcove_safety_number(
                  alcove_identity_sig_pub(b), alcove_identity_dh_pub(b),
                  alcove_identity_sig_pub(a), alcove_identity_dh_pub(a), ba),
              0);
    assert_string_equal(ab, ba);
    assert_int_equal(strlen(ab), 60);
    /* halves sorted ascending */
    assert_true(strncmp(ab, ab + 30, 30) <= 0);
    alcove_identity_free(a);
    alcove_identity_free(b);
}

static void display_is_12_groups_of_5(void **state)
{
    char disp[ALCOVE_SAFETY_DISPLAY_BUF], half[ALCOVE_SAFETY_HALF_DISPLAY_BUF];

    (void)state;
    assert_rc(alcove_safety_display(KAT_NUMBER, disp, sizeof disp), 0);
    assert_string_equal(disp, "27224 24749 61004 46302 41446 38296 "
                              "71562 17725 21911 97932 47162 73731");
    assert_int_equal(strlen(disp), 71);
    for (size_t i = 0; i < 71; i++)
        assert_true((i % 6 == 5) ? disp[i] == ' '
                                 : (disp[i] >= '0' && disp[i] <= '9'));
    assert_rc(alcove_safety_display(KAT_HALF_A, half, sizeof half), 0);
    assert_string_equal(half, "71562 17725 21911 97932 47162 73731");
    assert_rc(alcove_safety_display(KAT_NUMBER, disp, 71), ALCOVE_ETOOBIG);
    assert_rc(alcove_safety_display("1234", disp, sizeof disp), ALCOVE_EINVAL);
    assert_rc(alcove_safety_display("1234x", disp, sizeof disp), ALCOVE_EINVAL);
}

static void x3dh_both_roles_derive_equal_secret(void **state)
{
    alcove_identity *a = NULL, *b = NULL;
    uint8_t p_pub[32], p_sk[32], ek[32];
    uint8_t sk_a[32], sk_b[32], ad_a[128], ad_b[128];

    (void)state;
    assert_rc(alcove_identity_generate(&a), 0);
    assert_rc(alcove_identity_generate(&b), 0);
    crypto_box_keypair(p_pub, p_sk);
    assert_rc(alcove_x3dh_accept(a, alcove_identity_sig_pub(b),
                                 alcove_identity_dh_pub(b), p_pub, ek, sk_a,
                                 ad_a),
              0);
    assert_rc(alcove_x3dh_respond(b, p_sk, alcove_identity_sig_pub(a),
                                  alcove_identity_dh_pub(a), ek, sk_b, ad_b),
              0);
    assert_memory_equal(sk_a, sk_b, 32);
    assert_memory_equal(ad_a, ad_b, 128);
    assert_memory_equal(ad_a, alcove_identity_sig_pub(a), 32);
    assert_memory_equal(ad_a + 32, alcove_identity_dh_pub(a), 32);
    assert_memory_equal(ad_a + 64, alcove_identity_sig_pub(b), 32);
    assert_memory_equal(ad_a + 96, alcove_identity_dh_pub(b), 32);
    /* A different prekey gives a different secret. */
    {
        uint8_t p2_pub[32], p2_sk[32], sk_c[32];
        crypto_box_keypair(p2_pub, p2_sk);
        assert_rc(alcove_x3dh_respond(b, p2_sk, alcove_identity_sig_pub(a),
                                      alcove_identity_dh_pub(a), ek, sk_c,
                                      ad_b),
                  0);
        assert_memory_not_equal(sk_a, sk_c, 32);
    }
    alcove_identity_free(a);
    alcove_identity_free(b);
}

/* SK = HKDF(zeros, 0xFF*32 || DH1 || DH2 || DH3, "alcove-x3dh-v1", 32),
 * recomputed here from libsodium primitives with a fixed ephemeral key. */
static void x3dh_matches_spec_formula(void **state)
{
    alcove_identity *a = NULL, *b = NULL;
    uint8_t p_pub[32], p_sk[32], ek_sk[32], ek_pub[32], sk[32], ad[128];
    uint8_t ikm[128], prk[32], want[32];
    uint8_t zeros[32] = {0};
    crypto_auth_hmacsha256_state st;
    uint8_t one = 1;

    (void)state;
    assert_rc(alcove_identity_generate(&a), 0);
    assert_rc(alcove_identity_generate(&b), 0);
    crypto_box_keypair(p_pub, p_sk);
    randombytes_buf(ek_sk, sizeof ek_sk);
    assert_rc(alcove_x3dh_accept_with(a, ek_sk, alcove_identity_sig_pub(b),
                                      alcove_identity_dh_pub(b), p_pub, ek_pub,
                                      sk, ad),
              0);
    memset(ikm, 0xFF, 32);
    /* DH1 = DH(IK_A, P) computed by B's side of the equation: DH(P, IK_A) */
    assert_rc(crypto_scalarmult(ikm + 32, p_sk, alcove_identity_dh_pub(a)), 0);
    assert_rc(alcove_identity_dh(b, ek_pub, ikm + 64), 0);
    assert_int_equal(crypto_scalarmult(ikm + 96, ek_sk, p_pub), 0);
    crypto_auth_hmacsha256(prk, ikm, sizeof ikm, zeros); /* extract */
    crypto_auth_hmacsha256_init(&st, prk, 32);           /* T(1) */
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)"alcove-x3dh-v1", 14);
    crypto_auth_hmacsha256_update(&st, &one, 1);
    crypto_auth_hmacsha256_final(&st, want);
    assert_memory_equal(sk, want, 32);
    alcove_identity_free(a);
    alcove_identity_free(b);
}

static void x3dh_rejects_low_order_keys(void **state)
{
    alcove_identity *a = NULL, *b = NULL;
    uint8_t zero[32] = {0}, p_pub[32], p_sk[32], ek[32], sk[32], ad[128];

    (void)state;
    assert_rc(alcove_identity_generate(&a), 0);
    assert_rc(alcove_identity_generate(&b), 0);
    crypto_box_keypair(p_pub, p_sk);
    memset(sk, 0x55, sizeof sk);
    assert_rc(alcove_x3dh_accept(a, alcove_identity_sig_pub(b),
                                 alcove_identity_dh_pub(b), zero, ek, sk, ad),
              ALCOVE_EBADKEY);
    assert_memory_equal(sk, zero, 32); /* zeroed on error */
    assert_rc(alcove_x3dh_accept(a, alcove_identity_sig_pub(b), zero, p_pub, ek,
                                 sk, ad),
              ALCOVE_EBADKEY);
    assert_rc(alcove_x3dh_respond(b, p_sk, alcove_identity_sig_pub(a),
                                  alcove_identity_dh_pub(a), zero, sk, ad),
              ALCOVE_EBADKEY);
    assert_rc(alcove_x3dh_respond(b, p_sk, alcove_identity_sig_pub(a), zero, ek,
                                  sk, ad),
              ALCOVE_EBADKEY);
    alcove_identity_free(a);
    alcove_identity_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_answer_matches_python),
        cmocka_unit_test(number_is_same_on_both_sides),
        cmocka_unit_test(display_is_12_groups_of_5),
        cmocka_unit_test(x3dh_both_roles_derive_equal_secret),
        cmocka_unit_test(x3dh_matches_spec_formula),
        cmocka_unit_test(x3dh_rejects_low_order_keys),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
