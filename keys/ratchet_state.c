/* Ratchet state: allocation, copies, skipped-key and duplicate bookkeeping,
 * serialization.  The protocol steps are in ratchet.c. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ratchet_int.h"

#define FLAG_DHR 1u
#define FLAG_CKS 2u
#define FLAG_CKR 4u
#define SKIPPED_WIRE (RK_KEY + 4u + RK_KEY)
#define FIXED_WIRE (1u + 1u + 5u * RK_KEY + 3u * 4u + ALCOVE_RATCHET_AD_BYTES)

_Static_assert(SKIPPED_WIRE == 68u, "skipped entry layout");
_Static_assert(FIXED_WIRE + 4u == 306u, "STATE_MAX matches the layout");
_Static_assert(ALCOVE_RATCHET_MAX_STORED <= 0xFFFFu &&
                   ALCOVE_RATCHET_DUP_WINDOW <= 0xFFFFu,
               "counts fit u16");

alcove_ratchet *alcove_rk_alloc(void)
{
    alcove_ratchet *r;

    if (sodium_init() < 0)
        return NULL;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->sec = sodium_malloc(sizeof *r->sec);
    if (r->sec == NULL) {
        free(r);
        return NULL;
    }
    sodium_memzero(r->sec, sizeof *r->sec);
    return r;
}

void alcove_ratchet_free(alcove_ratchet *r)
{
    if (r == NULL)
        return;
    sodium_free(r->sec);
    sodium_free(r->skipped); /* wipes the message keys */
    free(r->dups);
    sodium_memzero(r, sizeof *r);
    free(r);
}

static int skipped_grow(alcove_ratchet *r, size_t need)
{
    size_t cap = r->skipped_cap ? r->skipped_cap : 16u;
    rk_skipped *p;

    if (need <= r->skipped_cap)
        return 0;
    while (cap < need)
        cap *= 2u;
    if (cap > ALCOVE_RATCHET_MAX_STORED)
        cap = ALCOVE_RATCHET_MAX_STORED;
    p = sodium_malloc(cap * sizeof *p);
    if (p == NULL)
        return ALCOVE_ENOMEM;
    if (r->nskipped != 0)
        memcpy(p, r->skipped, r->nskipped * sizeof *p);
    sodium_free(r->skipped);
    r->skipped = p;
    r->skipped_cap = cap;
    return 0;
}

int alcove_rk_skipped_room(alcove_ratchet *r, size_t adding)
{
    if (adding > ALCOVE_RATCHET_MAX_STORED)
        return ALCOVE_ELIMIT;
    if (r->nskipped + adding > ALCOVE_RATCHET_MAX_STORED) {
        size_t drop = r->nskipped + adding - ALCOVE_RATCHET_MAX_STORED;
        memmove(r->skipped, r->skipped + drop,
                (r->nskipped - drop) * sizeof *r->skipped);
        r->nskipped -= drop;
        sodium_memzero(r->skipped + r->nskipped, drop * sizeof *r->skipped);
    }
    return skipped_grow(r, r->nskipped + adding);
}

long alcove_rk_skipped_find(const alcove_ratchet *r, const uint8_t dh[RK_KEY],
                            uint32_t n)
{
    for (size_t i = 0; i < r->nskipped; i++)
        if (r->skipped[i].n == n && memcmp(r->skipped[i].dh, dh, RK_KEY) == 0)
            return (long)i;
    return -1;
}

void alcove_rk_skipped_remove(alcove_ratchet *r, size_t i)
{
    memmove(r->skipped + i, r->skipped + i + 1,
            (r->nskipped - i - 1) * sizeof *r->skipped);
    r->nskipped--;
    sodium_memzero(r->skipped + r->nskipped, sizeof *r->skipped);
}

int alcove_rk_dup_seen(const alcove_ratchet *r, const uint8_t d[RK_DIGEST])
{
    /* Digests of public ciphertexts: no secret to protect, memcmp is fine. */
    for (size_t i = 0; i < r->ndups; i++)
        if (memcmp(r->dups[i], d, RK_DIGEST) == 0)
            return 1;
    return 0;
}

int alcove_rk_dup_add(alcove_ratchet *r, const uint8_t d[RK_DIGEST])
{
    if (r->ndups == ALCOVE_RATCHET_DUP_WINDOW) { /* full ring: overwrite */
        memcpy(r->dups[r->dup_head], d, RK_DIGEST);
        r->dup_head = (r->dup_head + 1u) % ALCOVE_RATCHET_DUP_WINDOW;
        return 0;
    }
    if (r->ndups == r->dups_cap) { /* not yet wrapped: grow in place */
        size_t cap = r->dups_cap ? r->dups_cap * 2u : 64u;
        uint8_t(*p)[RK_DIGEST];

        if (cap > ALCOVE_RATCHET_DUP_WINDOW)
            cap = ALCOVE_RATCHET_DUP_WINDOW;
        p = realloc(r->dups, cap * RK_DIGEST);
        if (p == NULL)
            return ALCOVE_ENOMEM;
        r->dups = p;
        r->dups_cap = cap;
    }
    memcpy(r->dups[r->ndups++], d, RK_DIGEST);
    return 0;
}

int alcove_ratchet_clone(const alcove_ratchet *r, alcove_ratchet **out)
{
    alcove_ratchet *c;

    if (out == NULL)
        return ALCOVE_EINVAL;
    *out = NULL;
    if (r == NULL)
        return ALCOVE_EINVAL;
    c = alcove_rk_alloc();
    if (c == NULL)
        return ALCOVE_ENOMEM;
    memcpy(c->sec, r->sec, sizeof *r->sec);
    memcpy(c->dhs_pk, r->dhs_pk, RK_KEY);
    memcpy(c->dhr, r->dhr, RK_KEY);
    memcpy(c->ad, r->ad, sizeof c->ad);
    c->has_dhr = r->has_dhr;
    c->has_cks = r->has_cks;
    c->has_ckr = r->has_ckr;
    c->ns = r->ns;
    c->nr = r->nr;
    c->pn = r->pn;
    if (r->nskipped != 0) {
        if (skipped_grow(c, r->nskipped) != 0)
            goto fail;
        memcpy(c->skipped, r->skipped, r->nskipped * sizeof *r->skipped);
        c->nskipped = r->nskipped;
    }
    if (r->ndups != 0) {
        c->dups = malloc(r->dups_cap * RK_DIGEST);
        if (c->dups == NULL)
            goto fail;
        memcpy(c->dups, r->dups, r->ndups * RK_DIGEST);
        c->ndups = r->ndups;
        c->dups_cap = r->dups_cap;
        c->dup_head = r->dup_head;
    }
    *out = c;
    return 0;
fail:
    alcove_ratchet_free(c);
    return ALCOVE_ENOMEM;
}

int alcove_ratchet_can_send(const alcove_ratchet *r)
{
    return r != NULL && r->has_cks;
}

int alcove_ratchet_sending_pub(const alcove_ratchet *r,
                               uint8_t out[ALCOVE_RATCHET_KEY_BYTES])
{
    if (r == NULL || out == NULL)
        return ALCOVE_EINVAL;
    if (!r->has_cks)
        return ALCOVE_ESTATE;
    memcpy(out, r->dhs_pk, RK_KEY);
    return 0;
}

size_t alcove_ratchet_stored_keys(const alcove_ratchet *r)
{
    return r ? r->nskipped : 0;
}

const uint8_t *alcove_ratchet_ad(const alcove_ratchet *r)
{
    return r ? r->ad : NULL;
}

/* --- serialization ------------------------------------------------------ */

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

static uint8_t *put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put(uint8_t *p, const uint8_t *src, size_t n)
{
    memcpy(p, src, n);
    return p + n;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static const uint8_t *get(const uint8_t *p, uint8_t *dst, size_t n)
{
    memcpy(dst, p, n);
    return p + n;
}

static size_t get16(const uint8_t *p)
{
    return (size_t)p[0] << 8 | p[1];
}

size_t alcove_ratchet_serialized_size(const alcove_ratchet *r)
{
    if (r == NULL)
        return 0;
    return FIXED_WIRE + 2u + r->nskipped * SKIPPED_WIRE + 2u +
           r->ndups * RK_DIGEST;
}

int alcove_ratchet_serialize(const alcove_ratchet *r, uint8_t *out, size_t cap,
                             size_t *len)
{
    size_t need;
    uint8_t *p = out;

    if (r == NULL || out == NULL || len == NULL)
        return ALCOVE_EINVAL;
    *len = 0;
    need = alcove_ratchet_serialized_size(r);
    if (cap < need)
        return ALCOVE_ETOOBIG;
    *p++ = ALCOVE_RATCHET_STATE_VERSION;
    *p++ = (uint8_t)((r->has_dhr ? FLAG_DHR : 0) | (r->has_cks ? FLAG_CKS : 0) |
                     (r->has_ckr ? FLAG_CKR : 0));
    p = put(p, r->sec->dhs_sk, RK_KEY);
    p = put(p, r->dhr, RK_KEY);
    p = put(p, r->sec->rk, RK_KEY);
    p = put(p, r->sec->cks, RK_KEY);
    p = put(p, r->sec->ckr, RK_KEY);
    p = put32(p, r->ns);
    p = put32(p, r->nr);
    p = put32(p, r->pn);
    p = put(p, r->ad, sizeof r->ad);
    p = put16(p, r->nskipped);
    for (size_t i = 0; i < r->nskipped; i++) {
        p = put(p, r->skipped[i].dh, RK_KEY);
        p = put32(p, r->skipped[i].n);
        p = put(p, r->skipped[i].mk, RK_KEY);
    }
    p = put16(p, r->ndups);
    for (size_t i = 0; i < r->ndups; i++) { /* oldest first */
        size_t j = r->ndups == ALCOVE_RATCHET_DUP_WINDOW
                       ? (r->dup_head + i) % ALCOVE_RATCHET_DUP_WINDOW
                       : i;
        p = put(p, r->dups[j], RK_DIGEST);
    }
    *len = (size_t)(p - out);
    return 0;
}

int alcove_ratchet_deserialize(const uint8_t *buf, size_t len,
                               alcove_ratchet **out)
{
    alcove_ratchet *r = NULL;
    const uint8_t *p = buf;
    size_t nskipped, ndups, off;
    uint8_t flags;
    int rc = ALCOVE_EINVAL;

    if (out == NULL)
        return ALCOVE_EINVAL;
    *out = NULL;
    if (buf == NULL)
        return ALCOVE_EINVAL;
    rc = ALCOVE_ETRUNC;
    if (len < 1)
        goto out;
    rc = ALCOVE_EFORMAT;
    if (buf[0] != ALCOVE_RATCHET_STATE_VERSION)
        goto out;
    rc = ALCOVE_ETRUNC;
    if (len < FIXED_WIRE + 2u)
        goto out;
    nskipped = get16(buf + FIXED_WIRE);
    off = FIXED_WIRE + 2u + nskipped * SKIPPED_WIRE;
    rc = ALCOVE_ECORRUPT;
    if (nskipped > ALCOVE_RATCHET_MAX_STORED)
        goto out;
    rc = ALCOVE_ETRUNC;
    if (len < off + 2u)
        goto out;
    ndups = get16(buf + off);
    rc = ALCOVE_ECORRUPT;
    if (ndups > ALCOVE_RATCHET_DUP_WINDOW)
        goto out;
    off += 2u + ndups * RK_DIGEST;
    rc = len < off ? ALCOVE_ETRUNC : ALCOVE_ECORRUPT;
    if (len != off)
        goto out;
    flags = buf[1];
    if ((flags & ~(FLAG_DHR | FLAG_CKS | FLAG_CKR)) != 0 ||
        ((flags & FLAG_CKR) && !(flags & FLAG_DHR)))
        goto out;

    rc = ALCOVE_ENOMEM;
    r = alcove_rk_alloc();
    if (r == NULL)
        goto out;
    r->has_dhr = (flags & FLAG_DHR) != 0;
    r->has_cks = (flags & FLAG_CKS) != 0;
    r->has_ckr = (flags & FLAG_CKR) != 0;
    p = buf + 2;
    p = get(p, r->sec->dhs_sk, RK_KEY);
    p = get(p, r->dhr, RK_KEY);
    p = get(p, r->sec->rk, RK_KEY);
    p = get(p, r->sec->cks, RK_KEY);
    p = get(p, r->sec->ckr, RK_KEY);
    r->ns = get32(p);
    r->nr = get32(p + 4);
    r->pn = get32(p + 8);
    p += 12;
    p = get(p, r->ad, sizeof r->ad);
    p += 2;
    rc = ALCOVE_ECORRUPT;
    if (crypto_scalarmult_base(r->dhs_pk, r->sec->dhs_sk) != 0)
        goto out;
    rc = alcove_rk_skipped_room(r, nskipped);
    if (rc != 0)
        goto out;
    for (size_t i = 0; i < nskipped; i++) {
        p = get(p, r->skipped[i].dh, RK_KEY);
        r->skipped[i].n = get32(p);
        p += 4;
        p = get(p, r->skipped[i].mk, RK_KEY);
    }
    r->nskipped = nskipped;
    p += 2;
    for (size_t i = 0; i < ndups; i++, p += RK_DIGEST) {
        rc = alcove_rk_dup_add(r, p);
        if (rc != 0)
            goto out;
    }
    *out = r;
    r = NULL;
    rc = 0;
out:
    alcove_ratchet_free(r);
    return rc;
}
