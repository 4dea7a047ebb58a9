#include "audit.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "local.pb-c.h"

static void key_of(uint64_t i, uint8_t k[8])
{
    for (int b = 7; b >= 0; b--) {
        k[b] = (uint8_t)i;
        i >>= 8;
    }
}

/* Read the head: count and hash (zeros when empty).  ENOTFOUND is an empty
 * log. */
static int head_load(cstore_txn *t, uint64_t *count, uint8_t hash[AUDIT_HASH_BYTES])
{
    uint8_t *val = NULL;
    size_t vlen = 0;
    *count = 0;
    memset(hash, 0, AUDIT_HASH_BYTES);
    int rc = cstore_get(t, CS_AUDIT, "head", 4, &val, &vlen);
    if (rc == ALCOVE_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    Alcove__Local__AuditHead *h = alcove__local__audit_head__unpack(NULL, vlen, val);
    cstore_free_value(val, vlen);
    if (h == NULL || h->hash.len != AUDIT_HASH_BYTES) {
        if (h != NULL)
            alcove__local__audit_head__free_unpacked(h, NULL);
        return ALCOVE_ECORRUPT;
    }
    *count = h->count;
    memcpy(hash, h->hash.data, AUDIT_HASH_BYTES);
    alcove__local__audit_head__free_unpacked(h, NULL);
    return 0;
}

int audit_append(cstore_txn *t, uint64_t now_ms, const char *event, const uint8_t *contact_id)
{
    uint64_t count = 0;
    uint8_t prev[AUDIT_HASH_BYTES], hash[AUDIT_HASH_BYTES], key[8];
    int rc = head_load(t, &count, prev);
    if (rc != 0)
        return rc;
    Alcove__Local__AuditEntry e = ALCOVE__LOCAL__AUDIT_ENTRY__INIT;
    e.has_index = e.has_time = e.has_prev_hash = 1;
    e.index = count;
    e.time = now_ms;
    e.event = (char *)(uintptr_t)event;
    e.prev_hash.data = prev;
    e.prev_hash.len = sizeof prev;
    if (contact_id != NULL) {
        e.has_contact_id = 1;
        e.contact_id.data = (uint8_t *)(uintptr_t)contact_id;
        e.contact_id.len = 16;
    }
    uint8_t buf[256];
    size_t len = alcove__local__audit_entry__get_packed_size(&e);
    if (len > sizeof buf)
        return ALCOVE_ETOOBIG;
    alcove__local__audit_entry__pack(&e, buf);
    crypto_generichash(hash, sizeof hash, buf, len, NULL, 0);
    key_of(count, key);
    if ((rc = cstore_put(t, CS_AUDIT, key, sizeof key, buf, len)) != 0)
        return rc;
    Alcove__Local__AuditHead h = ALCOVE__LOCAL__AUDIT_HEAD__INIT;
    h.has_count = h.has_hash = 1;
    h.count = count + 1;
    h.hash.data = hash;
    h.hash.len = sizeof hash;
    uint8_t hb[64];
    size_t hl = alcove__local__audit_head__pack(&h, hb);
    return cstore_put(t, CS_AUDIT, "head", 4, hb, hl);
}

/* Load entry i: 0 with *e and its hash, or ENOTFOUND / ECORRUPT (does not
 * open) / EMALFORMED (does not parse) / a store error. */
static int entry_load(cstore_txn *t, uint64_t i, audit_entry *out, uint8_t prev[AUDIT_HASH_BYTES])
{
    uint8_t key[8], *val = NULL;
    size_t vlen = 0;
    key_of(i, key);
    int rc = cstore_get(t, CS_AUDIT, key, sizeof key, &val, &vlen);
    if (rc != 0)
        return rc;
    Alcove__Local__AuditEntry *e = alcove__local__audit_entry__unpack(NULL, vlen, val);
    if (e == NULL || e->event == NULL || e->prev_hash.len != AUDIT_HASH_BYTES ||
        (e->has_contact_id && e->contact_id.len != 16)) {
        if (e != NULL)
            alcove__local__audit_entry__free_unpacked(e, NULL);
        cstore_free_value(val, vlen);
        return ALCOVE_EMALFORMED;
    }
    memset(out, 0, sizeof *out);
    out->index = e->index;
    out->time = e->time;
    snprintf(out->event, sizeof out->event, "%s", e->event);
    out->has_contact = e->has_contact_id;
    if (e->has_contact_id)
        memcpy(out->contact_id, e->contact_id.data, 16);
    memcpy(prev, e->prev_hash.data, AUDIT_HASH_BYTES);
    crypto_generichash(out->hash, AUDIT_HASH_BYTES, val, vlen, NULL, 0);
    alcove__local__audit_entry__free_unpacked(e, NULL);
    cstore_free_value(val, vlen);
    return 0;
}

int audit_each(cstore_txn *t, int (*fn)(void *ctx, const audit_entry *e), void *ctx)
{
    uint64_t count = 0;
    uint8_t hash[AUDIT_HASH_BYTES], prev[AUDIT_HASH_BYTES];
    int rc = head_load(t, &count, hash);
    if (rc == ALCOVE_ECORRUPT)
        count = UINT64_MAX; /* list what is there */
    else if (rc != 0)
        return rc;
    for (uint64_t i = 0; i < count; i++) {
        audit_entry e;
        rc = entry_load(t, i, &e, prev);
        if (rc == ALCOVE_ENOTFOUND && count == UINT64_MAX)
            break;
        if (rc == ALCOVE_ENOTFOUND || rc == ALCOVE_ECORRUPT || rc == ALCOVE_EMALFORMED)
            continue;
        if (rc != 0)
            return rc;
        if ((rc = fn(ctx, &e)) != 0)
            return rc;
    }
    return 0;
}

static void broken(audit_report *rep, uint64_t i, const char *why)
{
    rep->broken = 1;
    rep->broken_index = i;
    rep->why = why;
}

int audit_verify(cstore_txn *t, audit_report *rep)
{
    uint64_t count = 0;
    uint8_t head[AUDIT_HASH_BYTES], prev[AUDIT_HASH_BYTES], want[AUDIT_HASH_BYTES];
    memset(rep, 0, sizeof *rep);
    int rc = head_load(t, &count, head);
    if (rc == ALCOVE_ECORRUPT) {
        broken(rep, 0, "the log's head record is altered or unreadable");
        return 0;
    }
    if (rc != 0)
        return rc;
    memset(want, 0, sizeof want);
    for (uint64_t i = 0; i < count; i++) {
        audit_entry e;
        rc = entry_load(t, i, &e, prev);
        if (rc == ALCOVE_ENOTFOUND) {
            broken(rep, i, "entry is missing (removed)");
            return 0;
        }
        if (rc == ALCOVE_ECORRUPT) {
            broken(rep, i, "entry is altered (it does not authenticate)");
            return 0;
        }
        if (rc == ALCOVE_EMALFORMED) {
            broken(rep, i, "entry does not parse");
            return 0;
        }
        if (rc != 0)
            return rc;
        if (e.index != i) {
            broken(rep, i, "entry carries another index (moved)");
            return 0;
        }
        if (sodium_memcmp(prev, want, AUDIT_HASH_BYTES) != 0) {
            broken(rep, i, "entry does not link to the one before (an entry was removed or replaced)");
            return 0;
        }
        memcpy(want, e.hash, AUDIT_HASH_BYTES);
        rep->count = i + 1;
    }
    if (sodium_memcmp(want, head, AUDIT_HASH_BYTES) != 0) {
        broken(rep, count ? count - 1 : 0, "the last entry does not match the log's head");
        return 0;
    }
    /* Nothing may follow the recorded end. */
    audit_entry extra;
    rc = entry_load(t, count, &extra, prev);
    if (rc != ALCOVE_ENOTFOUND) {
        if (rc != 0 && rc != ALCOVE_ECORRUPT && rc != ALCOVE_EMALFORMED)
            return rc;
        broken(rep, count, "an entry follows the log's recorded end");
        return 0;
    }
    memcpy(rep->head, head, AUDIT_HASH_BYTES);
    return 0;
}
