/* client/audit: the local, append-only, hash-chained audit log.
 *
 * Entries live in the store's "audit" database (sealed like every value),
 * key = index as u64 big-endian, value = alcove.local.AuditEntry {index,
 * time, event, contact_id, prev_hash}.  An entry's hash is BLAKE2b-256 of
 * its serialized bytes exactly as stored; prev_hash is the previous entry's
 * hash, 32 zero bytes for entry 0.  The key "head" holds AuditHead {count,
 * hash of the last entry}, so removing the newest entry is noticed as well.
 *
 * Entries name events and the contact's random id, never message contents
 * or names.  audit_append runs inside the caller's write transaction, so an
 * event is logged if and only if what it records is committed. */
#ifndef ALCOVE_CLIENT_AUDIT_H
#define ALCOVE_CLIENT_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "cstore.h"

/* Event names (stable: they are stored and printed). */
#define AUDIT_MESSAGE_SENT "message_sent"
#define AUDIT_MESSAGE_RECEIVED "message_received"
#define AUDIT_MESSAGE_READ "message_read"
#define AUDIT_CONTACT_INVITED "contact_invited"
#define AUDIT_CONTACT_ADDED "contact_added"
#define AUDIT_CONTACT_VERIFIED "contact_verified"
#define AUDIT_CONTACT_FORGOTTEN "contact_forgotten"
#define AUDIT_CONTACT_REKEYED "contact_rekeyed"
#define AUDIT_EXPORT_MADE "export_made"
#define AUDIT_BACKUP_MADE "backup_made"
#define AUDIT_RESTORED "restored"
#define AUDIT_NOTICE_SENT "notice_sent"
#define AUDIT_QUESTIONNAIRE_SENT "questionnaire_sent"
#define AUDIT_ANSWERS_SENT "answers_sent"
#define AUDIT_RECEIPT_SENT "receipt_sent"

#define AUDIT_HASH_BYTES 32u

/* Append one entry in write transaction t.  contact_id is 16 bytes or NULL.
 * Returns 0, ALCOVE_ECORRUPT (the head does not open or parse: the log was
 * tampered with; nothing is appended), or cstore_put's errors. */
int audit_append(cstore_txn *t, uint64_t now_ms, const char *event, const uint8_t *contact_id);

/* One entry as read back. */
typedef struct audit_entry {
    uint64_t index, time;
    char event[32];
    uint8_t contact_id[16];
    int has_contact;
    uint8_t hash[AUDIT_HASH_BYTES];
} audit_entry;

/* Call fn for every readable entry in key order (entries that do not open
 * are skipped; audit_verify reports them).  Returns 0, fn's non-zero value,
 * or a store error. */
int audit_each(cstore_txn *t, int (*fn)(void *ctx, const audit_entry *e), void *ctx);

typedef struct audit_report {
    uint64_t count;          /* entries checked and intact before the break */
    int broken;              /* 0 = the whole chain verifies */
    uint64_t broken_index;   /* first index that does not verify */
    const char *why;         /* static text when broken */
    uint8_t head[AUDIT_HASH_BYTES];
} audit_report;

/* Check the whole chain: indices 0..n-1 present in order, each entry opens
 * (not altered), parses, names its own index, links to the previous hash,
 * and the head matches the last entry.  Fills *rep; returns 0, or a store
 * error (a broken chain is not an error: see rep->broken). */
int audit_verify(cstore_txn *t, audit_report *rep);

#endif
