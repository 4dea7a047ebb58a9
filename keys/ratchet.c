/* Double Ratchet protocol steps.  State bookkeeping: ratchet_state.c. */
#include <sodium.h>
#include <string.h>

#include "err.h"
#include "hkdf.h"
#include "ratchet_int.h"

#define RK_INFO "alcove-ratchet-v1"
#define MSG_INFO "alcove-msg-v1"
#define AEAD_KEY crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define AEAD_NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define AD_TOTAL (ALCOVE_RATCHET_AD_BYTES + ALCOVE_RATCHET_HEADER_BYTES)

_Static_assert(RK_KEY == crypto_scalarmult_BYTES, "x25519 sizes");
_Static_assert(RK_KEY == ALCOVE_HKDF_HASH_BYTES, "chain keys are HMACs");
_Static_assert(ALCOVE_RATCHET_TAG_BYTES ==
                   crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "tag");
_Static_assert(AEAD_KEY + AEAD_NONCE == 56u, "message key expansion");
_Static_assert(ALCOVE_RATCHET_HEADER_BYTES == RK_KEY + 8u, "header");

static const uint8_t zero_salt[ALCOVE_HKDF_HASH_BYTES];

/* rk, ck = KDF_RK(rk, DH(our_sk, their_pub)); rk updated in place. */
static int kdf_rk_dh(uint8_t rk[RK_KEY], uint8_t ck[RK_KEY],
                     const uint8_t our_sk[RK_KEY],
                     const uint8_t their_pub[RK_KEY])
{
    uint8_t dh[RK_KEY], out[2 * RK_KEY];
    int rc = ALCOVE_EBADKEY;

    if (crypto_scalarmult(dh, our_sk, their_pub) != 0)
        goto out;
    rc = alcove_hkdf(out, sizeof out, rk, RK_KEY, dh, sizeof dh,
                     (const uint8_t *)RK_INFO, sizeof RK_INFO - 1);
    if (rc != 0)
        goto out;
    memcpy(rk, out, RK_KEY);
    memcpy(ck, out + RK_KEY, RK_KEY);
out:
    sodium_memzero(dh, sizeof dh);
    sodium_memzero(out, sizeof out);
    return rc;
}

/* mk = HMAC(ck, 0x01); ck = HMAC(ck, 0x02), in place. */
static int kdf_ck(uint8_t ck[RK_KEY], uint8_t mk[RK_KEY])
{
    static const uint8_t one = 0x01, two = 0x02;
    uint8_t next[RK_KEY];
    int rc;

    rc = alcove_hmac_sha256(mk, ck, RK_KEY, &one, 1);
    if (rc == 0)
        rc = alcove_hmac_sha256(next, ck, RK_KEY, &two, 1);
    if (rc == 0)
        memcpy(ck, next, RK_KEY);
    sodium_memzero(next, sizeof next);
    return rc;
}

/* key || nonce = HKDF(zeros, mk, "alcove-msg-v1", 56). */
static int expand_mk(uint8_t kn[AEAD_KEY + AEAD_NONCE],
                     const uint8_t mk[RK_KEY])
{
    return alcove_hkdf(kn, AEAD_KEY + AEAD_NONCE, zero_salt, sizeof zero_salt,
                       mk, RK_KEY, (const uint8_t *)MSG_INFO,
                       sizeof MSG_INFO - 1);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static int new_dh(rk_secrets *sec, uint8_t pk[RK_KEY])
{
    randombytes_buf(sec->dhs_sk, RK_KEY);
    return crypto_scalarmult_base(pk, sec->dhs_sk) == 0 ? 0 : ALCOVE_EBADKEY;
}

int alcove_ratchet_init_alice(alcove_ratchet **out,
                              const uint8_t sk[ALCOVE_RATCHET_KEY_BYTES],
                              const uint8_t bob_pub[ALCOVE_RATCHET_KEY_BYTES],
                              const uint8_t ad[ALCOVE_RATCHET_AD_BYTES])
{
    alcove_ratchet *r = NULL;
    int rc = ALCOVE_EINVAL;

    if (out == NULL)
        return ALCOVE_EINVAL;
    *out = NULL;
    if (sk == NULL || bob_pub == NULL || ad == NULL)
        goto out;
    rc = ALCOVE_ENOMEM;
    r = alcove_rk_alloc();
    if (r == NULL)
        goto out;
    rc = new_dh(r->sec, r->dhs_pk);
    if (rc != 0)
        goto out;
    memcpy(r->dhr, bob_pub, RK_KEY);
    r->has_dhr = 1;
    memcpy(r->sec->rk, sk, RK_KEY);
    rc = kdf_rk_dh(r->sec->rk, r->sec->cks, r->sec->dhs_sk, r->dhr);
    if (rc != 0)
        goto out;
    r->has_cks = 1;
    memcpy(r->ad, ad, sizeof r->ad);
    *out = r;
    r = NULL;
out:
    alcove_ratchet_free(r);
    return rc;
}

int alcove_ratchet_init_bob(alcove_ratchet **out,
                            const uint8_t sk[ALCOVE_RATCHET_KEY_BYTES],
                            const uint8_t bob_sk[ALCOVE_RATCHET_KEY_BYTES],
                            const uint8_t bob_pub[ALCOVE_RATCHET_KEY_BYTES],
                            const uint8_t ad[ALCOVE_RATCHET_AD_BYTES])
{
    alcove_ratchet *r = NULL;
    int rc = ALCOVE_EINVAL;

    if (out == NULL)
        return ALCOVE_EINVAL;
    *out = NULL;
    if (sk == NULL || bob_sk == NULL || bob_pub == NULL || ad == NULL)
        goto out;
    rc = ALCOVE_ENOMEM;
    r = alcove_rk_alloc();
    if (r == NULL)
        goto out;
    rc = ALCOVE_EINVAL;
    memcpy(r->sec->dhs_sk, bob_sk, RK_KEY);
    if (crypto_scalarmult_base(r->dhs_pk, r->sec->dhs_sk) != 0 ||
        memcmp(r->dhs_pk, bob_pub, RK_KEY) != 0) /* public keys */
        goto out;
    memcpy(r->sec->rk, sk, RK_KEY);
    memcpy(r->ad, ad, sizeof r->ad);
    *out = r;
    r = NULL;
    rc = 0;
out:
    alcove_ratchet_free(r);
    return rc;
}

/* AEAD data = AD || header. */
static void make_ad(uint8_t out[AD_TOTAL], const alcove_ratchet *r,
                    const uint8_t header[ALCOVE_RATCHET_HEADER_BYTES])
{
    memcpy(out, r->ad, ALCOVE_RATCHET_AD_BYTES);
    memcpy(out + ALCOVE_RATCHET_AD_BYTES, header, ALCOVE_RATCHET_HEADER_BYTES);
}

int alcove_ratchet_encrypt(alcove_ratchet *r, const uint8_t *pt, size_t pt_len,
                           uint8_t header[ALCOVE_RATCHET_HEADER_BYTES],
                           uint8_t *ct, size_t ct_cap, size_t *ct_len)
{
    uint8_t ck[RK_KEY], mk[RK_KEY], kn[AEAD_KEY + AEAD_NONCE], ad[AD_TOTAL];
    unsigned long long clen = 0;
    int rc = ALCOVE_EINVAL;

    if (ct_len != NULL)
        *ct_len = 0;
    if (r == NULL || (pt == NULL && pt_len != 0) || header == NULL ||
        ct == NULL || ct_len == NULL)
        return ALCOVE_EINVAL;
    if (!r->has_cks)
        return ALCOVE_ESTATE;
    if (pt_len > ALCOVE_RATCHET_MAX_PLAINTEXT ||
        ct_cap < pt_len + ALCOVE_RATCHET_TAG_BYTES)
        return ALCOVE_ETOOBIG;
    if (r->ns == UINT32_MAX)
        return ALCOVE_ELIMIT;

    memcpy(ck, r->sec->cks, RK_KEY);
    rc = kdf_ck(ck, mk);
    if (rc == 0)
        rc = expand_mk(kn, mk);
    if (rc != 0)
        goto out;
    memcpy(header, r->dhs_pk, RK_KEY);
    put32(header + RK_KEY, r->pn);
    put32(header + RK_KEY + 4, r->ns);
    make_ad(ad, r, header);
    rc = ALCOVE_EINVAL;
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(
            ct, &clen, pt, pt_len, ad, sizeof ad, NULL, kn + AEAD_KEY, kn) != 0)
        goto out;
    /* commit */
    memcpy(r->sec->cks, ck, RK_KEY);
    r->ns++;
    *ct_len = (size_t)clen;
    rc = 0;
out:
    sodium_memzero(ck, sizeof ck);
    sodium_memzero(mk, sizeof mk);
    sodium_memzero(kn, sizeof kn);
    return rc;
}

/* Store the keys of r's receiving chain for messages nr..until-1.  The
 * caller has checked until - nr <= MAX_SKIP. */
static int skip_keys(alcove_ratchet *r, uint32_t until)
{
    int rc;

    if (!r->has_ckr || until <= r->nr)
        return 0;
    rc = alcove_rk_skipped_room(r, (size_t)(until - r->nr));
    while (rc == 0 && r->nr < until) {
        rk_skipped *e = &r->skipped[r->nskipped];

        rc = kdf_ck(r->sec->ckr, e->mk);
        if (rc != 0)
            break;
        memcpy(e->dh, r->dhr, RK_KEY);
        e->n = r->nr++;
        r->nskipped++;
    }
    return rc;
}

static int dh_ratchet(alcove_ratchet *r, const uint8_t their[RK_KEY])
{
    int rc;

    r->pn = r->ns;
    r->ns = 0;
    r->nr = 0;
    memcpy(r->dhr, their, RK_KEY);
    r->has_dhr = 1;
    rc = kdf_rk_dh(r->sec->rk, r->sec->ckr, r->sec->dhs_sk, r->dhr);
    if (rc != 0)
        return rc;
    r->has_ckr = 1;
    rc = new_dh(r->sec, r->dhs_pk);
    if (rc == 0)
        rc = kdf_rk_dh(r->sec->rk, r->sec->cks, r->sec->dhs_sk, r->dhr);
    if (rc == 0)
        r->has_cks = 1;
    return rc;
}

/* The receiving rules' bounds, checked before anything is derived. */
static int check_bounds(const alcove_ratchet *r, int new_chain, uint32_t pn,
                        uint32_t n)
{
    if (n == UINT32_MAX)
        return ALCOVE_ELIMIT; /* nr would overflow */
    if (new_chain) {
        if (r->has_ckr && pn > r->nr &&
            (uint64_t)pn - r->nr > ALCOVE_RATCHET_MAX_SKIP)
            return ALCOVE_ELIMIT;
        if (n > ALCOVE_RATCHET_MAX_SKIP)
            return ALCOVE_ELIMIT;
        return 0;
    }
    if (n < r->nr)
        return ALCOVE_EDECRYPT; /* its key was used or evicted */
    if ((uint64_t)n - r->nr > ALCOVE_RATCHET_MAX_SKIP)
        return ALCOVE_ELIMIT;
    return 0;
}

int alcove_ratchet_decrypt(const alcove_ratchet *r, const uint8_t *header,
                           size_t header_len, const uint8_t *ct, size_t ct_len,
                           uint8_t *pt, size_t pt_cap, size_t *pt_len,
                           alcove_ratchet **next)
{
    uint8_t mk[RK_KEY], kn[AEAD_KEY + AEAD_NONCE], ad[AD_TOTAL];
    uint8_t digest[RK_DIGEST];
    crypto_generichash_state hs;
    alcove_ratchet *c = NULL;
    unsigned long long plen = 0;
    const uint8_t *their;
    uint32_t pn, n;
    long idx;
    int rc = ALCOVE_EINVAL, new_chain;

    if (next != NULL)
        *next = NULL;
    if (pt_len != NULL)
        *pt_len = 0;
    if (r == NULL || header == NULL || ct == NULL || pt == NULL ||
        pt_len == NULL || next == NULL)
        return ALCOVE_EINVAL;
    if (header_len != ALCOVE_RATCHET_HEADER_BYTES ||
        ct_len < ALCOVE_RATCHET_TAG_BYTES ||
        ct_len > ALCOVE_RATCHET_MAX_PLAINTEXT + ALCOVE_RATCHET_TAG_BYTES)
        return ALCOVE_EMALFORMED;
    if (pt_cap < ct_len - ALCOVE_RATCHET_TAG_BYTES)
        return ALCOVE_ETOOBIG;
    sodium_memzero(mk, sizeof mk);
    sodium_memzero(kn, sizeof kn);

    if (crypto_generichash_init(&hs, NULL, 0, sizeof digest) != 0 ||
        crypto_generichash_update(&hs, header, header_len) != 0 ||
        crypto_generichash_update(&hs, ct, ct_len) != 0 ||
        crypto_generichash_final(&hs, digest, sizeof digest) != 0)
        goto out;
    rc = ALCOVE_EDUP;
    if (alcove_rk_dup_seen(r, digest))
        goto out;

    their = header;
    pn = get32(header + RK_KEY);
    n = get32(header + RK_KEY + 4);
    idx = alcove_rk_skipped_find(r, their, n);
    new_chain = !r->has_dhr || memcmp(their, r->dhr, RK_KEY) != 0;
    if (idx < 0) {
        rc = check_bounds(r, new_chain, pn, n);
        if (rc != 0)
            goto out;
    }

    rc = alcove_ratchet_clone(r, &c);
    if (rc != 0)
        goto out;
    if (idx >= 0) {
        memcpy(mk, c->skipped[idx].mk, RK_KEY);
        alcove_rk_skipped_remove(c, (size_t)idx);
    } else {
        if (new_chain) {
            rc = skip_keys(c, pn);
            if (rc == 0)
                rc = dh_ratchet(c, their);
            if (rc != 0)
                goto out;
        }
        rc = skip_keys(c, n);
        if (rc == 0)
            rc = kdf_ck(c->sec->ckr, mk);
        if (rc != 0)
            goto out;
        c->nr++;
    }
    rc = expand_mk(kn, mk);
    if (rc != 0)
        goto out;
    make_ad(ad, c, header);
    rc = ALCOVE_EDECRYPT;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            pt, &plen, NULL, ct, ct_len, ad, sizeof ad, kn + AEAD_KEY, kn) != 0)
        goto out;
    rc = alcove_rk_dup_add(c, digest);
    if (rc != 0)
        goto out;
    *pt_len = (size_t)plen;
    *next = c;
    c = NULL;
    rc = 0;
out:
    alcove_ratchet_free(c);
    sodium_memzero(&hs, sizeof hs);
    sodium_memzero(mk, sizeof mk);
    sodium_memzero(kn, sizeof kn);
    return rc;
}
