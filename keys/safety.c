#include "safety.h"

#include <sodium.h>
#include <string.h>

#include "err.h"

#define CONTEXT "alcove-safety-v1"
#define CONTEXT_LEN (sizeof CONTEXT - 1)
#define HASH_BYTES 64u /* BLAKE2b-512 */
#define CHUNK_BYTES 5u
#define CHUNKS (ALCOVE_SAFETY_HALF_DIGITS / ALCOVE_SAFETY_GROUP)

_Static_assert(HASH_BYTES <= crypto_generichash_BYTES_MAX, "blake2b-512");
_Static_assert(CHUNKS *CHUNK_BYTES <= HASH_BYTES, "chunks fit the hash");

int alcove_safety_half(const uint8_t sig_pub[32], const uint8_t dh_pub[32],
                       char out[ALCOVE_SAFETY_HALF_BUF])
{
    crypto_generichash_state st;
    uint8_t h[HASH_BYTES];
    int rc = ALCOVE_EINVAL;

    if (sig_pub == NULL || dh_pub == NULL || out == NULL)
        return ALCOVE_EINVAL;
    if (crypto_generichash_init(&st, NULL, 0, sizeof h) != 0 ||
        crypto_generichash_update(&st, (const uint8_t *)CONTEXT, CONTEXT_LEN) !=
            0 ||
        crypto_generichash_update(&st, sig_pub, 32) != 0 ||
        crypto_generichash_update(&st, dh_pub, 32) != 0 ||
        crypto_generichash_final(&st, h, sizeof h) != 0)
        goto out;
    for (size_t c = 0; c < CHUNKS; c++) {
        uint64_t v = 0;
        for (size_t i = 0; i < CHUNK_BYTES; i++)
            v = (v << 8) | h[c * CHUNK_BYTES + i];
        v %= 100000u;
        for (size_t d = ALCOVE_SAFETY_GROUP; d-- > 0;) {
            out[c * ALCOVE_SAFETY_GROUP + d] = (char)('0' + v % 10u);
            v /= 10u;
        }
    }
    out[ALCOVE_SAFETY_HALF_DIGITS] = '\0';
    rc = 0;
out:
    sodium_memzero(&st, sizeof st);
    return rc;
}

int alcove_safety_number(const uint8_t a_sig_pub[32],
                         const uint8_t a_dh_pub[32],
                         const uint8_t b_sig_pub[32],
                         const uint8_t b_dh_pub[32],
                         char out[ALCOVE_SAFETY_BUF])
{
    char a[ALCOVE_SAFETY_HALF_BUF], b[ALCOVE_SAFETY_HALF_BUF];
    const char *lo, *hi;
    int rc;

    if (out == NULL)
        return ALCOVE_EINVAL;
    rc = alcove_safety_half(a_sig_pub, a_dh_pub, a);
    if (rc == 0)
        rc = alcove_safety_half(b_sig_pub, b_dh_pub, b);
    if (rc != 0)
        return rc;
    /* Equal-length digit strings: strcmp order is numeric order. */
    lo = strcmp(a, b) <= 0 ? a : b;
    hi = lo == a ? b : a;
    memcpy(out, lo, ALCOVE_SAFETY_HALF_DIGITS);
    memcpy(out + ALCOVE_SAFETY_HALF_DIGITS, hi, ALCOVE_SAFETY_HALF_DIGITS);
    out[ALCOVE_SAFETY_DIGITS] = '\0';
    return 0;
}

int alcove_safety_display(const char *digits, char *out, size_t cap)
{
    size_t n, groups, need, o = 0;

    if (digits == NULL || out == NULL)
        return ALCOVE_EINVAL;
    n = strnlen(digits, ALCOVE_SAFETY_DIGITS + 1);
    if (n == 0 || n > ALCOVE_SAFETY_DIGITS || n % ALCOVE_SAFETY_GROUP != 0)
        return ALCOVE_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (digits[i] < '0' || digits[i] > '9')
            return ALCOVE_EINVAL;
    groups = n / ALCOVE_SAFETY_GROUP;
    need = n + (groups - 1) + 1;
    if (cap < need)
        return ALCOVE_ETOOBIG;
    for (size_t g = 0; g < groups; g++) {
        if (g != 0)
            out[o++] = ' ';
        memcpy(out + o, digits + g * ALCOVE_SAFETY_GROUP, ALCOVE_SAFETY_GROUP);
        o += ALCOVE_SAFETY_GROUP;
    }
    out[o] = '\0';
    return 0;
}
