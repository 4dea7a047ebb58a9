/* HKDF-SHA256 against the RFC 5869 test vectors (appendix A, cases 1-3),
 * read from the shared vectors JSON, plus the length bounds. */
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
#include "vectors.h"

#define VEC_FILE "hkdf-sha256-rfc5869.json"

static void rfc5869_vectors_match(void **state)
{
    const char *path = NULL;
    size_t doc_len = 0;
    char *doc = vec_load(VEC_FILE, &doc_len, &path);
    vec_span root, vectors, v, lspan;
    long count;

    (void)state;
    if (doc == NULL)
        fail_msg("cannot read %s from %s or %s", VEC_FILE, ALCOVE_VECTORS_DIR,
                 ALCOVE_TEST_VECTORS_FALLBACK);
    assert_int_equal(vec_root(doc, doc_len, &root), 0);
    assert_int_equal(vec_get(&root, "vectors", &vectors), 0);
    count = vec_array_len(&vectors);
    assert_int_equal(count, 3);
    for (size_t i = 0; i < (size_t)count; i++) {
        uint8_t *ikm, *salt, *info, *okm, *got;
        size_t ikm_len, salt_len, info_len, okm_len;
        char *want_hex, *got_hex;
        long L;

        assert_int_equal(vec_array_at(&vectors, i, &v), 0);
        assert_int_equal(vec_get_hex(&v, "ikm", &ikm, &ikm_len), 0);
        assert_int_equal(vec_get_hex(&v, "salt", &salt, &salt_len), 0);
        assert_int_equal(vec_get_hex(&v, "info", &info, &info_len), 0);
        assert_int_equal(vec_get_hex(&v, "okm", &okm, &okm_len), 0);
        assert_int_equal(vec_get(&v, "L", &lspan), 0);
        L = strtol(lspan.p, NULL, 10);
        assert_int_equal(L, okm_len);

        got = malloc(okm_len + 1);
        assert_non_null(got);
        got[okm_len] = 0xAA;
        assert_rc(alcove_hkdf(got, okm_len, salt, salt_len, ikm, ikm_len, info,
                              info_len),
                  0);
        assert_int_equal(got[okm_len], 0xAA); /* nothing written past L */
        want_hex = vec_hex(okm, okm_len);
        got_hex = vec_hex(got, okm_len);
        assert_string_equal(got_hex, want_hex); /* prints both */
        free(want_hex);
        free(got_hex);
        free(got);
        free(ikm);
        free(salt);
        free(info);
        free(okm);
    }
    free(doc);
}

static void empty_salt_equals_zero_salt(void **state)
{
    static const uint8_t zeros[32];
    uint8_t a[42], b[42];
    const uint8_t ikm[3] = {1, 2, 3};

    (void)state;
    assert_rc(alcove_hkdf(a, sizeof a, NULL, 0, ikm, 3, NULL, 0), 0);
    assert_rc(alcove_hkdf(b, sizeof b, zeros, 32, ikm, 3, NULL, 0), 0);
    assert_memory_equal(a, b, sizeof a);
}

static void output_length_bounds(void **state)
{
    static uint8_t big[ALCOVE_HKDF_MAX_OUT + 1];
    static uint8_t prefix[64];
    const uint8_t ikm[1] = {7};

    (void)state;
    assert_int_equal(ALCOVE_HKDF_MAX_OUT, 8160);
    assert_rc(alcove_hkdf(big, ALCOVE_HKDF_MAX_OUT, NULL, 0, ikm, 1, NULL, 0),
              0);
    /* A longer output starts with the shorter one (same T(i) blocks). */
    assert_rc(alcove_hkdf(prefix, sizeof prefix, NULL, 0, ikm, 1, NULL, 0), 0);
    assert_memory_equal(big, prefix, sizeof prefix);
    assert_rc(
        alcove_hkdf(big, ALCOVE_HKDF_MAX_OUT + 1, NULL, 0, ikm, 1, NULL, 0),
        ALCOVE_EINVAL);
    assert_rc(alcove_hkdf(big, 0, NULL, 0, ikm, 1, NULL, 0), ALCOVE_EINVAL);
    assert_rc(alcove_hkdf(big, 32, NULL, 5, ikm, 1, NULL, 0), ALCOVE_EINVAL);
}

static void hmac_matches_libsodium_one_shot(void **state)
{
    uint8_t key[32], msg[100], a[32], b[32];

    (void)state;
    randombytes_buf(key, sizeof key);
    randombytes_buf(msg, sizeof msg);
    assert_rc(alcove_hmac_sha256(a, key, sizeof key, msg, sizeof msg), 0);
    crypto_auth_hmacsha256(b, msg, sizeof msg, key);
    assert_memory_equal(a, b, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc5869_vectors_match),
        cmocka_unit_test(empty_salt_equals_zero_salt),
        cmocka_unit_test(output_length_bounds),
        cmocka_unit_test(hmac_matches_libsodium_one_shot),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
