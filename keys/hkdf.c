#include "hkdf.h"

#include <sodium.h>
#include <string.h>

#include "err.h"

_Static_assert(ALCOVE_HKDF_HASH_BYTES == crypto_auth_hmacsha256_BYTES,
               "HKDF hash length must be HMAC-SHA256's");

static int bad_buf(const void *p, size_t len)
{
    return p == NULL && len != 0;
}

int alcove_hmac_sha256(uint8_t out[ALCOVE_HKDF_HASH_BYTES], const uint8_t *key,
                       size_t key_len, const uint8_t *msg, size_t msg_len)
{
    static const uint8_t empty[1] = {0};
    crypto_auth_hmacsha256_state st;
    int rc = ALCOVE_EINVAL;

    if (out == NULL || bad_buf(key, key_len) || bad_buf(msg, msg_len))
        goto out;
    if (key == NULL)
        key = empty;
    if (crypto_auth_hmacsha256_init(&st, key, key_len) != 0)
        goto out;
    if (msg_len != 0 && crypto_auth_hmacsha256_update(&st, msg, msg_len) != 0)
        goto out;
    if (crypto_auth_hmacsha256_final(&st, out) != 0)
        goto out;
    rc = 0;
out:
    sodium_memzero(&st, sizeof st);
    return rc;
}

int alcove_hkdf_extract(uint8_t prk[ALCOVE_HKDF_HASH_BYTES],
                        const uint8_t *salt, size_t salt_len,
                        const uint8_t *ikm, size_t ikm_len)
{
    return alcove_hmac_sha256(prk, salt, salt_len, ikm, ikm_len);
}

int alcove_hkdf_expand(uint8_t *out, size_t out_len,
                       const uint8_t prk[ALCOVE_HKDF_HASH_BYTES],
                       const uint8_t *info, size_t info_len)
{
    crypto_auth_hmacsha256_state st;
    uint8_t t[ALCOVE_HKDF_HASH_BYTES];
    size_t done = 0;
    unsigned counter = 1;
    int rc = ALCOVE_EINVAL;

    if (out == NULL)
        return ALCOVE_EINVAL;
    if (prk == NULL || bad_buf(info, info_len) || out_len == 0 ||
        out_len > ALCOVE_HKDF_MAX_OUT)
        goto out;

    /* T(i) = HMAC(PRK, T(i-1) || info || i), T(0) empty. */
    while (done < out_len) {
        uint8_t c = (uint8_t)counter;
        size_t take = out_len - done;

        if (crypto_auth_hmacsha256_init(&st, prk, ALCOVE_HKDF_HASH_BYTES) != 0)
            goto out;
        if (counter > 1 && crypto_auth_hmacsha256_update(&st, t, sizeof t) != 0)
            goto out;
        if (info_len != 0 &&
            crypto_auth_hmacsha256_update(&st, info, info_len) != 0)
            goto out;
        if (crypto_auth_hmacsha256_update(&st, &c, 1) != 0 ||
            crypto_auth_hmacsha256_final(&st, t) != 0)
            goto out;
        if (take > sizeof t)
            take = sizeof t;
        memcpy(out + done, t, take);
        done += take;
        counter++;
    }
    rc = 0;
out:
    if (rc != 0)
        sodium_memzero(out, out_len <= ALCOVE_HKDF_MAX_OUT ? out_len : 0);
    sodium_memzero(t, sizeof t);
    sodium_memzero(&st, sizeof st);
    return rc;
}

int alcove_hkdf(uint8_t *out, size_t out_len, const uint8_t *salt,
                size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                const uint8_t *info, size_t info_len)
{
    uint8_t prk[ALCOVE_HKDF_HASH_BYTES];
    int rc;

    if (out == NULL)
        return ALCOVE_EINVAL;
    rc = alcove_hkdf_extract(prk, salt, salt_len, ikm, ikm_len);
    if (rc == 0)
        rc = alcove_hkdf_expand(out, out_len, prk, info, info_len);
    else if (out_len <= ALCOVE_HKDF_MAX_OUT)
        sodium_memzero(out, out_len);
    sodium_memzero(prk, sizeof prk);
    return rc;
}
