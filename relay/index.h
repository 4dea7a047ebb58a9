/* The relay's in-memory index (the Bitcask half of the store).
 *
 * Rebuilt from LMDB at start and updated on the loop thread only.  It maps
 * recv_id and send_id to mailboxes and keeps, per mailbox, the committed
 * messages in seq order: (seq, global log key, received_at, size).  Blob bytes
 * stay in LMDB.  Mailboxes are reference counted: pending writer operations
 * and logged-in connections hold references, so a deleted mailbox's memory
 * lives until the last of them lets go. */
#ifndef ALCOVE_RELAY_INDEX_H
#define ALCOVE_RELAY_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define RELAY_ID_BYTES 16u
#define RELAY_KEY_BYTES 32u

typedef struct relay_msg {
    uint64_t seq;
    uint64_t gseq; /* key in the `log` database */
    uint64_t received_at;
    uint32_t size; /* blob bytes */
} relay_msg;

struct conn;

typedef struct relay_mbox {
    uint8_t recv_id[RELAY_ID_BYTES];
    uint8_t send_id[RELAY_ID_BYTES];
    uint8_t auth_pub[RELAY_KEY_BYTES];
    uint8_t send_key_hash[RELAY_KEY_BYTES];
    uint64_t created_at;
    uint64_t last_seen;       /* in memory; persisted at most hourly */
    uint64_t last_seen_disk;  /* last value written to `mbox` */
    uint64_t acked_seq;       /* highest seq acked or expired */
    uint64_t trim_queued;     /* highest seq an in-flight trim deletes */
    uint64_t next_seq;        /* next seq to hand out */
    relay_msg *msgs;          /* committed messages msgs[head..head+count) */
    uint32_t head, count, cap;
    uint64_t bytes;           /* committed blob bytes */
    uint32_t pending_count;   /* Sends queued, not yet committed */
    uint64_t pending_bytes;
    uint32_t refs;
    int deleted;
    int expiring;             /* a relay-initiated expiry op is in flight */
    struct conn **subs;       /* subscribed connections (not owning) */
    uint32_t nsubs, subs_cap;
} relay_mbox;

typedef struct relay_index relay_index;

/* New empty index.  Returns NULL on allocation failure. */
relay_index *relay_index_new(void);
/* Free the index and every mailbox in it (references are ignored: only call
 * at shutdown when nothing else holds one).  NULL is a no-op. */
void relay_index_free(relay_index *ix);

/* Allocate a mailbox (refs = 1, owned by the caller) not yet in the index. */
relay_mbox *relay_mbox_new(void);
void relay_mbox_ref(relay_mbox *mb);
/* Drop a reference; frees the mailbox when it reaches 0.  NULL is a no-op. */
void relay_mbox_unref(relay_mbox *mb);

/* Insert mb under its recv_id and send_id; the index takes a reference.
 * Returns 0, ALCOVE_EEXIST (either id taken), ALCOVE_ENOMEM. */
int relay_index_insert(relay_index *ix, relay_mbox *mb);
/* Remove mb from both maps and drop the index's reference. */
void relay_index_remove(relay_index *ix, relay_mbox *mb);
/* Look up; NULL if absent.  No reference is taken. */
relay_mbox *relay_index_by_recv(const relay_index *ix, const uint8_t id[16]);
relay_mbox *relay_index_by_send(const relay_index *ix, const uint8_t id[16]);
/* Call fn for each mailbox (fn must not insert or remove). */
void relay_index_each(relay_index *ix, void (*fn)(relay_mbox *, void *), void *ctx);
size_t relay_index_count(const relay_index *ix);

/* Append a committed message (seq must exceed every stored seq).
 * Returns 0 or ALCOVE_ENOMEM. */
int relay_mbox_push_msg(relay_mbox *mb, const relay_msg *m);
/* Drop stored messages with seq <= up_to from the front. */
void relay_mbox_drop_upto(relay_mbox *mb, uint64_t up_to);
/* i-th stored message (0 = oldest). */
static inline const relay_msg *relay_mbox_msg(const relay_mbox *mb, uint32_t i)
{
    return &mb->msgs[mb->head + i];
}
/* Index of the first stored message with seq > after (count if none). */
uint32_t relay_mbox_first_after(const relay_mbox *mb, uint64_t after);

/* Subscribers. add returns 0 or ALCOVE_ENOMEM (adding twice is a no-op). */
int relay_mbox_sub_add(relay_mbox *mb, struct conn *c);
void relay_mbox_sub_remove(relay_mbox *mb, struct conn *c);

#endif
