#include "x3dh.h"

#include <sodium.h>
#include <string.h>

#include "err.h"
#include "hkdf.h"

#define INFO "alcove-x3dh-v1"
#define INFO_LEN (sizeof INFO - 1)
#define F_BYTES 32u
#define IKM_BYTES (F_BYTES + 3u * ALCOVE_DH_BYTES)

_Static_assert(ALCOVE_X3DH_AD_BYTES ==
                   2u * (ALCOVE_SIG_PUB_BYTES + ALCOVE_DH_BYTES),
               "AD layout");

static void make_ad(uint8_t ad[ALCOVE_X3DH_AD_BYTES], const uint8_t *a_sig,
                    const uint8_t *a_dh, const uint8_t *b_sig,
                    const uint8_t *b_dh)
{
    memcpy(ad, a_sig, 32);
    memcpy(ad + 32, a_dh, 32);
    memcpy(ad + 64, b_sig, 32);
    memcpy(ad + 96, b_dh, 32);
}

/* ikm = 0xFF*32 || dh1 || dh2 || dh3 already in place: derive SK. */
static int finish(uint8_t ikm[IKM_BYTES], uint8_t sk[ALCOVE_X3DH_SK_BYTES])
{
    static const uint8_t zero_salt[ALCOVE_HKDF_HASH_BYTES];

    memset(ikm, 0xFF, F_BYTES);
    return alcove_hkdf(sk, ALCOVE_X3DH_SK_BYTES, zero_salt, sizeof zero_salt,
                       ikm, IKM_BYTES, (const uint8_t *)INFO, INFO_LEN);
}

int alcove_x3dh_accept_with(const alcove_identity *a,
                            const uint8_t ek_sk[ALCOVE_DH_BYTES],
                            const uint8_t b_sig_pub[ALCOVE_SIG_PUB_BYTES],
                            const uint8_t b_dh_pub[ALCOVE_DH_BYTES],
                            const uint8_t prekey_pub[ALCOVE_DH_BYTES],
                            uint8_t ek_pub[ALCOVE_DH_BYTES],
                            uint8_t sk[ALCOVE_X3DH_SK_BYTES],
                            uint8_t ad[ALCOVE_X3DH_AD_BYTES])
{
    uint8_t ikm[IKM_BYTES];
    uint8_t *dh1 = ikm + F_BYTES, *dh2 = dh1 + 32, *dh3 = dh2 + 32;
    int rc = ALCOVE_EINVAL;

    if (sk == NULL || ad == NULL)
        return ALCOVE_EINVAL;
    sodium_memzero(ikm, sizeof ikm);
    if (a == NULL || ek_sk == NULL || b_sig_pub == NULL || b_dh_pub == NULL ||
        prekey_pub == NULL || ek_pub == NULL)
        goto out;
    rc = ALCOVE_EBADKEY;
    if (crypto_scalarmult_base(ek_pub, ek_sk) != 0)
        goto out;
    rc = alcove_identity_dh(a, prekey_pub, dh1); /* DH(IK_A, P) */
    if (rc != 0)
        goto out;
    rc = ALCOVE_EBADKEY;
    if (crypto_scalarmult(dh2, ek_sk, b_dh_pub) != 0 || /* DH(EK_A, IK_B) */
        crypto_scalarmult(dh3, ek_sk, prekey_pub) != 0) /* DH(EK_A, P) */
        goto out;
    rc = finish(ikm, sk);
    if (rc != 0)
        goto out;
    make_ad(ad, alcove_identity_sig_pub(a), alcove_identity_dh_pub(a),
            b_sig_pub, b_dh_pub);
    rc = 0;
out:
    sodium_memzero(ikm, sizeof ikm);
    if (rc != 0) {
        sodium_memzero(sk, ALCOVE_X3DH_SK_BYTES);
        sodium_memzero(ad, ALCOVE_X3DH_AD_BYTES);
    }
    return rc;
}

int alcove_x3dh_accept(const alcove_identity *a,
                       const uint8_t b_sig_pub[ALCOVE_SIG_PUB_BYTES],
                       const uint8_t b_dh_pub[ALCOVE_DH_BYTES],
                       const uint8_t prekey_pub[ALCOVE_DH_BYTES],
                       uint8_t ek_pub[ALCOVE_DH_BYTES],
                       uint8_t sk[ALCOVE_X3DH_SK_BYTES],
                       uint8_t ad[ALCOVE_X3DH_AD_BYTES])
{
    uint8_t ek_sk[ALCOVE_DH_BYTES];
    int rc;

    if (sodium_init() < 0)
        return ALCOVE_EINVAL;
    randombytes_buf(ek_sk, sizeof ek_sk);
    rc = alcove_x3dh_accept_with(a, ek_sk, b_sig_pub, b_dh_pub, prekey_pub,
                                 ek_pub, sk, ad);
    sodium_memzero(ek_sk, sizeof ek_sk);
    return rc;
}

int alcove_x3dh_respond(const alcove_identity *b,
                        const uint8_t prekey_sk[ALCOVE_DH_BYTES],
                        const uint8_t a_sig_pub[ALCOVE_SIG_PUB_BYTES],
                        const uint8_t a_dh_pub[ALCOVE_DH_BYTES],
                        const uint8_t ek_pub[ALCOVE_DH_BYTES],
                        uint8_t sk[ALCOVE_X3DH_SK_BYTES],
                        uint8_t ad[ALCOVE_X3DH_AD_BYTES])
{
    uint8_t ikm[IKM_BYTES];
    uint8_t *dh1 = ikm + F_BYTES, *dh2 = dh1 + 32, *dh3 = dh2 + 32;
    int rc = ALCOVE_EINVAL;

    if (sk == NULL || ad == NULL)
        return ALCOVE_EINVAL;
    sodium_memzero(ikm, sizeof ikm);
    if (b == NULL || prekey_sk == NULL || a_sig_pub == NULL ||
        a_dh_pub == NULL || ek_pub == NULL)
        goto out;
    rc = ALCOVE_EBADKEY;
    if (crypto_scalarmult(dh1, prekey_sk, a_dh_pub) != 0) /* DH(P, IK_A) */
        goto out;
    rc = alcove_identity_dh(b, ek_pub, dh2); /* DH(IK_B, EK_A) */
    if (rc != 0)
        goto out;
    rc = ALCOVE_EBADKEY;
    if (crypto_scalarmult(dh3, prekey_sk, ek_pub) != 0) /* DH(P, EK_A) */
        goto out;
    rc = finish(ikm, sk);
    if (rc != 0)
        goto out;
    make_ad(ad, a_sig_pub, a_dh_pub, alcove_identity_sig_pub(b),
            alcove_identity_dh_pub(b));
    rc = 0;
out:
    sodium_memzero(ikm, sizeof ikm);
    if (rc != 0) {
        sodium_memzero(sk, ALCOVE_X3DH_SK_BYTES);
        sodium_memzero(ad, ALCOVE_X3DH_AD_BYTES);
    }
    return rc;
}
