/* Private to ratchet.c and ratchet_state.c: the state's layout and the
 * bookkeeping of skipped keys and duplicate digests.  Not a public API. */
#ifndef ALCOVE_RATCHET_INT_H
#define ALCOVE_RATCHET_INT_H

#include <stddef.h>
#include <stdint.h>

#include "ratchet.h"

#define RK_KEY ALCOVE_RATCHET_KEY_BYTES
#define RK_DIGEST 32u

typedef struct rk_skipped {
    uint8_t dh[RK_KEY]; /* the sender's ratchet public key of the chain */
    uint32_t n;         /* message number in that chain */
    uint8_t mk[RK_KEY]; /* its message key */
} rk_skipped;

typedef struct rk_secrets {
    uint8_t dhs_sk[RK_KEY]; /* our ratchet secret key */
    uint8_t rk[RK_KEY];     /* root key */
    uint8_t cks[RK_KEY];    /* sending chain key (valid when has_cks) */
    uint8_t ckr[RK_KEY];    /* receiving chain key (valid when has_ckr) */
} rk_secrets;

struct alcove_ratchet {
    rk_secrets *sec; /* sodium_malloc */
    uint8_t dhs_pk[RK_KEY];
    uint8_t dhr[RK_KEY];
    uint8_t ad[ALCOVE_RATCHET_AD_BYTES];
    uint8_t has_dhr, has_cks, has_ckr;
    uint32_t ns, nr, pn;
    rk_skipped *skipped; /* sodium_malloc, oldest first */
    size_t nskipped, skipped_cap;
    uint8_t (*dups)[RK_DIGEST]; /* malloc ring of digests */
    size_t ndups, dup_head, dups_cap;
};

/* A zeroed state with its secrets block, or NULL (out of memory). */
alcove_ratchet *alcove_rk_alloc(void);

/* Make room to append `adding` skipped keys (<= MAX_STORED): evicts the
 * oldest so that the count stays within ALCOVE_RATCHET_MAX_STORED and grows
 * the block.  Returns 0 or ALCOVE_ENOMEM. */
int alcove_rk_skipped_room(alcove_ratchet *r, size_t adding);

/* Index of the stored key for (dh, n), or -1. */
long alcove_rk_skipped_find(const alcove_ratchet *r, const uint8_t dh[RK_KEY],
                            uint32_t n);

/* Remove entry i (keeps the order) and wipe the freed slot. */
void alcove_rk_skipped_remove(alcove_ratchet *r, size_t i);

/* 1 when digest is among the remembered ones. */
int alcove_rk_dup_seen(const alcove_ratchet *r, const uint8_t d[RK_DIGEST]);

/* Remember digest (forgetting the oldest beyond the window).
 * Returns 0 or ALCOVE_ENOMEM. */
int alcove_rk_dup_add(alcove_ratchet *r, const uint8_t d[RK_DIGEST]);

#endif
