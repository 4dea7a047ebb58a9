#include "index.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* Open addressing with linear probing; tombstones on removal; keys are
 * hashed with SipHash under a random per-process key, so a peer choosing
 * lookup ids learns nothing about the table layout. */
typedef struct slot {
    relay_mbox *mb; /* NULL empty, TOMB removed */
} slot;

static relay_mbox tomb_sentinel;
#define TOMB (&tomb_sentinel)

typedef struct table {
    slot *slots;
    size_t cap;  /* power of two */
    size_t used; /* live + tombstones */
    size_t live;
    size_t id_off; /* offset of the id inside relay_mbox */
} table;

struct relay_index {
    table by_recv;
    table by_send;
    uint8_t hkey[crypto_shorthash_KEYBYTES];
};

static const uint8_t *key_of(const table *t, const relay_mbox *mb)
{
    return (const uint8_t *)mb + t->id_off;
}

static size_t hash_id(const relay_index *ix, const uint8_t id[16])
{
    uint8_t out[crypto_shorthash_BYTES];
    uint64_t h;
    crypto_shorthash(out, id, RELAY_ID_BYTES, ix->hkey);
    memcpy(&h, out, sizeof h);
    return (size_t)h;
}

static relay_mbox *table_get(const relay_index *ix, const table *t, const uint8_t id[16])
{
    if (t->cap == 0)
        return NULL;
    size_t mask = t->cap - 1;
    for (size_t i = hash_id(ix, id) & mask, n = 0; n < t->cap; i = (i + 1) & mask, n++) {
        relay_mbox *mb = t->slots[i].mb;
        if (mb == NULL)
            return NULL;
        if (mb != TOMB && memcmp(key_of(t, mb), id, RELAY_ID_BYTES) == 0)
            return mb;
    }
    return NULL;
}

static int table_grow(const relay_index *ix, table *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 64;
    if (t->live * 4 < t->cap) /* mostly tombstones: rehash at same size */
        ncap = t->cap;
    slot *ns = calloc(ncap, sizeof *ns);
    if (ns == NULL)
        return ALCOVE_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        relay_mbox *mb = t->slots[i].mb;
        if (mb == NULL || mb == TOMB)
            continue;
        size_t j = hash_id(ix, key_of(t, mb)) & (ncap - 1);
        while (ns[j].mb != NULL)
            j = (j + 1) & (ncap - 1);
        ns[j].mb = mb;
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    t->used = t->live;
    return 0;
}

static int table_put(const relay_index *ix, table *t, relay_mbox *mb)
{
    if ((t->used + 1) * 4 > t->cap * 3) {
        int rc = table_grow(ix, t);
        if (rc != 0)
            return rc;
    }
    size_t mask = t->cap - 1;
    size_t i = hash_id(ix, key_of(t, mb)) & mask;
    while (t->slots[i].mb != NULL && t->slots[i].mb != TOMB)
        i = (i + 1) & mask;
    if (t->slots[i].mb == NULL)
        t->used++;
    t->slots[i].mb = mb;
    t->live++;
    return 0;
}

static void table_del(const relay_index *ix, table *t, const relay_mbox *mb)
{
    if (t->cap == 0)
        return;
    size_t mask = t->cap - 1;
    for (size_t i = hash_id(ix, key_of(t, mb)) & mask, n = 0; n < t->cap; i = (i + 1) & mask, n++) {
        if (t->slots[i].mb == NULL)
            return;
        if (t->slots[i].mb == mb) {
            t->slots[i].mb = TOMB;
            t->live--;
            return;
        }
    }
}

relay_index *relay_index_new(void)
{
    relay_index *ix = calloc(1, sizeof *ix);
    if (ix == NULL)
        return NULL;
    ix->by_recv.id_off = offsetof(relay_mbox, recv_id);
    ix->by_send.id_off = offsetof(relay_mbox, send_id);
    randombytes_buf(ix->hkey, sizeof ix->hkey);
    return ix;
}

static void mbox_destroy(relay_mbox *mb)
{
    free(mb->msgs);
    free(mb->subs);
    sodium_memzero(mb, sizeof *mb);
    free(mb);
}

void relay_index_free(relay_index *ix)
{
    if (ix == NULL)
        return;
    for (size_t i = 0; i < ix->by_recv.cap; i++) {
        relay_mbox *mb = ix->by_recv.slots[i].mb;
        if (mb != NULL && mb != TOMB)
            mbox_destroy(mb);
    }
    free(ix->by_recv.slots);
    free(ix->by_send.slots);
    sodium_memzero(ix, sizeof *ix);
    free(ix);
}

relay_mbox *relay_mbox_new(void)
{
    relay_mbox *mb = calloc(1, sizeof *mb);
    if (mb != NULL) {
        mb->refs = 1;
        mb->next_seq = 1;
    }
    return mb;
}

void relay_mbox_ref(relay_mbox *mb) { mb->refs++; }

void relay_mbox_unref(relay_mbox *mb)
{
    if (mb != NULL && --mb->refs == 0)
        mbox_destroy(mb);
}

int relay_index_insert(relay_index *ix, relay_mbox *mb)
{
    if (table_get(ix, &ix->by_recv, mb->recv_id) != NULL ||
        table_get(ix, &ix->by_send, mb->send_id) != NULL)
        return ALCOVE_EEXIST;
    int rc = table_put(ix, &ix->by_recv, mb);
    if (rc != 0)
        return rc;
    rc = table_put(ix, &ix->by_send, mb);
    if (rc != 0) {
        table_del(ix, &ix->by_recv, mb);
        return rc;
    }
    relay_mbox_ref(mb);
    return 0;
}

void relay_index_remove(relay_index *ix, relay_mbox *mb)
{
    if (table_get(ix, &ix->by_recv, mb->recv_id) != mb)
        return;
    table_del(ix, &ix->by_recv, mb);
    table_del(ix, &ix->by_send, mb);
    relay_mbox_unref(mb);
}

relay_mbox *relay_index_by_recv(const relay_index *ix, const uint8_t id[16])
{
    return table_get(ix, &ix->by_recv, id);
}

relay_mbox *relay_index_by_send(const relay_index *ix, const uint8_t id[16])
{
    return table_get(ix, &ix->by_send, id);
}

void relay_index_each(relay_index *ix, void (*fn)(relay_mbox *, void *), void *ctx)
{
    for (size_t i = 0; i < ix->by_recv.cap; i++) {
        relay_mbox *mb = ix->by_recv.slots[i].mb;
        if (mb != NULL && mb != TOMB)
            fn(mb, ctx);
    }
}

size_t relay_index_count(const relay_index *ix) { return ix->by_recv.live; }

int relay_mbox_push_msg(relay_mbox *mb, const relay_msg *m)
{
    if (mb->head + mb->count == mb->cap) {
        if (mb->head > 0 && mb->head >= mb->count) {
            memmove(mb->msgs, mb->msgs + mb->head, mb->count * sizeof *mb->msgs);
            mb->head = 0;
        } else {
            uint32_t ncap = mb->cap ? mb->cap * 2 : 4;
            relay_msg *n = realloc(mb->msgs, (size_t)ncap * sizeof *n);
            if (n == NULL)
                return ALCOVE_ENOMEM;
            mb->msgs = n;
            mb->cap = ncap;
        }
    }
    mb->msgs[mb->head + mb->count] = *m;
    mb->count++;
    mb->bytes += m->size;
    return 0;
}

void relay_mbox_drop_upto(relay_mbox *mb, uint64_t up_to)
{
    while (mb->count > 0 && mb->msgs[mb->head].seq <= up_to) {
        mb->bytes -= mb->msgs[mb->head].size;
        mb->head++;
        mb->count--;
    }
    if (mb->count == 0) {
        mb->head = 0;
        if (mb->cap > 64) { /* give back memory of a drained mailbox */
            free(mb->msgs);
            mb->msgs = NULL;
            mb->cap = 0;
        }
    }
}

uint32_t relay_mbox_first_after(const relay_mbox *mb, uint64_t after)
{
    uint32_t lo = 0, hi = mb->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (mb->msgs[mb->head + mid].seq <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int relay_mbox_sub_add(relay_mbox *mb, struct conn *c)
{
    for (uint32_t i = 0; i < mb->nsubs; i++)
        if (mb->subs[i] == c)
            return 0;
    if (mb->nsubs == mb->subs_cap) {
        uint32_t ncap = mb->subs_cap ? mb->subs_cap * 2 : 2;
        struct conn **n = realloc(mb->subs, (size_t)ncap * sizeof *n);
        if (n == NULL)
            return ALCOVE_ENOMEM;
        mb->subs = n;
        mb->subs_cap = ncap;
    }
    mb->subs[mb->nsubs++] = c;
    return 0;
}

void relay_mbox_sub_remove(relay_mbox *mb, struct conn *c)
{
    for (uint32_t i = 0; i < mb->nsubs; i++) {
        if (mb->subs[i] == c) {
            mb->subs[i] = mb->subs[--mb->nsubs];
            return;
        }
    }
}
