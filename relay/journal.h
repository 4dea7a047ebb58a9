/* relay/journal: the write-ahead journal in front of LMDB (DESIGN §4 as
 * amended in docs/protocol.md, "Journal").
 *
 * One preallocated, zero-filled file <store>/journal.  Its head holds two
 * checkpoint slots (written alternately); each names the last batch whose
 * effects are durable in data.mdb, the offset of the record after it, and
 * carries a raw copy of LMDB's two meta pages as they were at that moment.
 * After the slots comes the record area, used as a ring: records follow one
 * another and wrap to the area's start when one does not fit before the end,
 * never over the records written since the last checkpoint:
 *
 *   slot:   magic "AJCK" | version u32 (1) | gen u64 | bseq u64 |
 *           start u64 | key (16) | psize u32 | zero u32 |
 *           meta pages (2 * psize) | crc32c u32
 *   record: magic "AJR1" | len u32 | bseq u64 | crc32c u32 | zero u32 |
 *           payload (len bytes, relay_op encoding)
 *
 * All integers big-endian; crc32c (Castagnoli) of a slot covers every byte
 * before it, of a record the journal's random key, then its len, bseq and
 * payload (so that client-chosen bytes left in the ring cannot pass for a
 * record).  Batch numbers (bseq)
 * only grow, so a record left from an earlier lap never continues the chain.
 * Appending overwrites blocks that already exist, so each fdatasync is a
 * pure data flush (no file-size or extent change to journal).
 *
 * Every call is made from one thread at a time (the writer thread, or the
 * start-up thread before it runs). */
#ifndef ALCOVE_RELAY_JOURNAL_H
#define ALCOVE_RELAY_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#define RELAY_JOURNAL_NAME "journal"
#define RELAY_JOURNAL_SLOT_BYTES ((uint64_t)36 << 10)
#define RELAY_JOURNAL_HEAD_BYTES ((uint64_t)72 << 10) /* two slots */
#define RELAY_JOURNAL_REC_HDR 24u
#define RELAY_JOURNAL_PSIZE_MAX ((size_t)16384)
#define RELAY_JOURNAL_MIN_BYTES (1ull << 20)
#define RELAY_JOURNAL_DEFAULT_BYTES (32ull << 20)

typedef struct relay_journal relay_journal;

/* Open <dir>/journal.  Returns 0 (the newest valid checkpoint slot is
 * loaded, the replay cursor is at the first record), ALCOVE_ENOTFOUND (no
 * journal: a new store, or one from before the journal existed),
 * ALCOVE_ECORRUPT (no valid slot, or an impossible size), ALCOVE_EIO,
 * ALCOVE_ENOMEM; *why gets a static message on failure. */
int relay_journal_open(relay_journal **out, const char *dir, const char **why);

/* Create <dir>/journal of `bytes` (rounded down to 4 KiB, at least
 * RELAY_JOURNAL_MIN_BYTES): written through with zeros under a temporary
 * name, first slot = (gen 1, bseq, metas), fsynced, renamed into place, the
 * directory fsynced.  Returns 0, ALCOVE_EINVAL (psize), ALCOVE_EIO,
 * ALCOVE_ENOMEM. */
int relay_journal_create(relay_journal **out, const char *dir, uint64_t bytes, uint64_t bseq,
                         const uint8_t *metas, uint32_t psize, const char **why);

void relay_journal_close(relay_journal *j);

/* The checkpoint loaded by open: LMDB's meta pages (2 * *psize bytes) and
 * the last batch they include. */
const uint8_t *relay_journal_metas(const relay_journal *j, uint32_t *psize);
uint64_t relay_journal_ckpt_bseq(const relay_journal *j);

/* Replay: the next record of the chain after the checkpoint.  Returns 0
 * (*payload valid until the next journal call), ALCOVE_ENOTFOUND at the end
 * of the chain (first record that is torn, stale, or zero), ALCOVE_EIO.
 * Appends continue after the last record returned. */
int relay_journal_replay_next(relay_journal *j, const uint8_t **payload, size_t *len,
                              uint64_t *bseq);

/* Largest payload one record can hold (the record area is at least four
 * times that). */
size_t relay_journal_max_payload(const relay_journal *j);
/* 1 if a record of payload_len bytes fits in the ring beside the records
 * written since the last checkpoint. */
int relay_journal_fits(const relay_journal *j, size_t payload_len);
/* A buffer for the next record's payload (payload_len <= max_payload);
 * NULL on allocation failure.  Valid until the next journal call. */
uint8_t *relay_journal_payload_buf(relay_journal *j, size_t payload_len);
/* Write the record held in the payload buffer (payload_len bytes) and
 * fdatasync.  Returns 0 (it is durable; its bseq is relay_journal_last_bseq)
 * or ALCOVE_EIO (errno kept in *err): the record does not count and the next
 * one is written in its place with the same bseq. */
int relay_journal_append(relay_journal *j, size_t payload_len, int *err);
/* Take back the last appended record (its batch could not be applied):
 * its header is zeroed and synced, and the next record takes its place and
 * bseq.  Returns 0 or ALCOVE_EIO. */
int relay_journal_unappend(relay_journal *j, int *err);
/* Where the journal stands: the last batch appended and the offset of the
 * next record.  Taken when a checkpoint's snapshot is pinned; records
 * appended afterwards (while data.mdb syncs) stay after the checkpoint. */
typedef struct relay_journal_mark {
    uint64_t bseq;
    uint64_t pos;
} relay_journal_mark;
relay_journal_mark relay_journal_get_mark(const relay_journal *j);
/* Record a checkpoint: LMDB is durable up to batch mark.bseq, with these
 * meta pages; the chain continues at mark.pos.  Writes the older slot and
 * fdatasyncs; the ring's space before mark.pos is free again.  Returns 0 or
 * ALCOVE_EIO (the previous checkpoint and the records after it stay
 * valid). */
int relay_journal_checkpoint(relay_journal *j, const uint8_t *metas, uint32_t psize,
                             relay_journal_mark mark, int *err);

uint64_t relay_journal_last_bseq(const relay_journal *j);
/* Ring bytes taken by the records since the last checkpoint (with any gap
 * left at the end of the ring by a wrap). */
uint64_t relay_journal_used(const relay_journal *j);
uint64_t relay_journal_size(const relay_journal *j);

/* crc32c (Castagnoli), exposed for tests. */
uint32_t relay_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
