#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "err.h"

#define SLOT_MAGIC 0x414a434bu /* "AJCK" */
#define REC_MAGIC 0x414a5231u  /* "AJR1" */
#define SLOT_VERSION 1u
#define SLOT_HDR 56u
#define KEY_BYTES 16u

struct relay_journal {
    int fd;
    uint64_t size;      /* file bytes */
    uint64_t start;     /* offset of the first record after the checkpoint */
    uint64_t pos;       /* offset of the next record */
    uint64_t last_pos;  /* offset of the last appended record */
    uint64_t failed_at; /* where a failed append wrote (its bseq is reused) */
    int failed_pending; /* that record may be on disk: see relay_journal_append */
    uint64_t next_bseq; /* bseq of the next record */
    uint64_t gen;       /* generation of the newest valid slot */
    uint64_t ckpt_bseq; /* last batch that slot includes */
    uint32_t psize;
    uint8_t key[KEY_BYTES]; /* keys record checksums (see record_crc) */
    uint8_t *metas;     /* 2 * RELAY_JOURNAL_PSIZE_MAX */
    uint8_t *buf;       /* record header + payload */
    size_t buf_cap;
};

/* --- crc32c ----------------------------------------------------------------- */

static uint32_t crc_table[256];

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc_soft(uint32_t crc, const uint8_t *p, size_t len)
{
    if (crc_table[1] == 0)
        crc_table_init();
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p,
                                                         size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#endif

uint32_t relay_crc32c(uint32_t crc, const void *buf, size_t len)
{
    crc = ~crc;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static int hw = -1;
    if (hw < 0)
        hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    if (hw)
        return ~crc_hw(crc, buf, len);
#endif
    return ~crc_soft(crc, buf, len);
}

/* --- helpers ---------------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) << 32 | get_u32(p + 4); }

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* 0 with len bytes read, 1 at end of file, -1 on error. */
static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 1;
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int psize_ok(uint32_t psize)
{
    return psize >= 512 && psize <= RELAY_JOURNAL_PSIZE_MAX && (psize & (psize - 1)) == 0;
}

static size_t slot_bytes(uint32_t psize) { return SLOT_HDR + 2u * (size_t)psize + 4u; }

static relay_journal *journal_new(void)
{
    relay_journal *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->fd = -1;
    j->metas = malloc(2u * RELAY_JOURNAL_PSIZE_MAX);
    j->buf_cap = RELAY_JOURNAL_SLOT_BYTES;
    j->buf = malloc(j->buf_cap);
    if (j->metas == NULL || j->buf == NULL) {
        relay_journal_close(j);
        return NULL;
    }
    return j;
}

void relay_journal_close(relay_journal *j)
{
    if (j == NULL)
        return;
    if (j->fd >= 0)
        close(j->fd);
    sodium_memzero(j->key, sizeof j->key);
    free(j->metas);
    free(j->buf);
    free(j);
}

static int grow_buf(relay_journal *j, size_t need)
{
    if (need <= j->buf_cap)
        return 0;
    size_t cap = j->buf_cap;
    while (cap < need)
        cap *= 2;
    uint8_t *b = realloc(j->buf, cap);
    if (b == NULL)
        return ALCOVE_ENOMEM;
    j->buf = b;
    j->buf_cap = cap;
    return 0;
}

/* Build slot bytes for (gen, bseq, metas) in j->buf; returns their length. */
static size_t build_slot(relay_journal *j, uint64_t gen, uint64_t bseq, uint64_t start,
                         const uint8_t *metas, uint32_t psize)
{
    uint8_t *p = j->buf;
    size_t n = slot_bytes(psize);
    put_u32(p, SLOT_MAGIC);
    put_u32(p + 4, SLOT_VERSION);
    put_u64(p + 8, gen);
    put_u64(p + 16, bseq);
    put_u64(p + 24, start);
    memcpy(p + 32, j->key, KEY_BYTES);
    put_u32(p + 48, psize);
    put_u32(p + 52, 0);
    memcpy(p + SLOT_HDR, metas, 2u * (size_t)psize);
    put_u32(p + n - 4, relay_crc32c(0, p, n - 4));
    return n;
}

/* Read and check slot i into j->buf; 0 if valid. */
static int read_slot(relay_journal *j, int i, uint64_t *gen, uint64_t *bseq, uint64_t *start,
                     uint32_t *psize)
{
    uint8_t *p = j->buf;
    if (pread_all(j->fd, p, RELAY_JOURNAL_SLOT_BYTES, (uint64_t)i * RELAY_JOURNAL_SLOT_BYTES) != 0)
        return -1;
    if (get_u32(p) != SLOT_MAGIC || get_u32(p + 4) != SLOT_VERSION)
        return -1;
    uint32_t ps = get_u32(p + 48);
    if (!psize_ok(ps))
        return -1;
    size_t n = slot_bytes(ps);
    if (get_u32(p + n - 4) != relay_crc32c(0, p, n - 4))
        return -1;
    *gen = get_u64(p + 8);
    *bseq = get_u64(p + 16);
    *start = get_u64(p + 24);
    *psize = ps;
    return 0;
}

int relay_journal_open(relay_journal **out, const char *dir, const char **why)
{
    char path[PATH_MAX];
    *out = NULL;
    *why = "out of memory";
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, RELAY_JOURNAL_NAME) >= sizeof path) {
        *why = "path too long";
        return ALCOVE_EINVAL;
    }
    relay_journal *j = journal_new();
    if (j == NULL)
        return ALCOVE_ENOMEM;
    j->fd = open(path, O_RDWR | O_CLOEXEC);
    if (j->fd < 0) {
        int e = errno;
        relay_journal_close(j);
        if (e == ENOENT)
            return ALCOVE_ENOTFOUND;
        *why = "cannot open the journal";
        return ALCOVE_EIO;
    }
    struct stat sb;
    if (fstat(j->fd, &sb) != 0) {
        relay_journal_close(j);
        *why = "cannot stat the journal";
        return ALCOVE_EIO;
    }
    j->size = (uint64_t)sb.st_size;
    if (j->size < RELAY_JOURNAL_MIN_BYTES) {
        relay_journal_close(j);
        *why = "journal file is too short (truncated?)";
        return ALCOVE_ECORRUPT;
    }
    int best = -1;
    for (int i = 0; i < 2; i++) {
        uint64_t gen, bseq, start;
        uint32_t psize;
        if (read_slot(j, i, &gen, &bseq, &start, &psize) != 0)
            continue;
        if (start < RELAY_JOURNAL_HEAD_BYTES || start > j->size)
            continue;
        if (best < 0 || gen > j->gen) {
            best = i;
            j->gen = gen;
            j->ckpt_bseq = bseq;
            j->start = start;
            memcpy(j->key, j->buf + 32, KEY_BYTES);
            j->psize = psize;
            memcpy(j->metas, j->buf + SLOT_HDR, 2u * (size_t)psize);
        }
    }
    if (best < 0) {
        relay_journal_close(j);
        *why = "journal has no valid checkpoint";
        return ALCOVE_ECORRUPT;
    }
    j->pos = j->last_pos = j->start;
    j->next_bseq = j->ckpt_bseq + 1;
    *out = j;
    return 0;
}

int relay_journal_create(relay_journal **out, const char *dir, uint64_t bytes, uint64_t bseq,
                         const uint8_t *metas, uint32_t psize, const char **why)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    *out = NULL;
    *why = "out of memory";
    if (!psize_ok(psize)) {
        *why = "unsupported LMDB page size";
        return ALCOVE_EINVAL;
    }
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, RELAY_JOURNAL_NAME) >= sizeof path ||
        (size_t)snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, RELAY_JOURNAL_NAME) >= sizeof tmp) {
        *why = "path too long";
        return ALCOVE_EINVAL;
    }
    bytes &= ~(uint64_t)4095;
    if (bytes < RELAY_JOURNAL_MIN_BYTES)
        bytes = RELAY_JOURNAL_MIN_BYTES;
    relay_journal *j = journal_new();
    if (j == NULL)
        return ALCOVE_ENOMEM;
    *why = "cannot create the journal";
    j->fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (j->fd < 0)
        goto fail;
    /* Zeros written through, not fallocated: an unwritten extent would make
     * every first overwrite a metadata change for fdatasync. */
    uint8_t *zero = calloc(1, 1u << 20);
    if (zero == NULL)
        goto fail;
    for (uint64_t off = 0; off < bytes; off += 1u << 20) {
        size_t n = bytes - off < (1u << 20) ? (size_t)(bytes - off) : 1u << 20;
        if (pwrite_all(j->fd, zero, n, off) != 0) {
            free(zero);
            *why = "cannot write the journal (disk full?)";
            goto fail;
        }
    }
    free(zero);
    j->size = bytes;
    j->gen = 1;
    j->ckpt_bseq = bseq;
    j->psize = psize;
    memcpy(j->metas, metas, 2u * (size_t)psize);
    j->start = RELAY_JOURNAL_HEAD_BYTES;
    if (sodium_init() < 0)
        goto fail;
    randombytes_buf(j->key, KEY_BYTES);
    size_t n = build_slot(j, j->gen, bseq, j->start, metas, psize);
    if (pwrite_all(j->fd, j->buf, n, (j->gen & 1) * RELAY_JOURNAL_SLOT_BYTES) != 0 ||
        fsync(j->fd) != 0)
        goto fail;
    if (rename(tmp, path) != 0)
        goto fail;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        goto fail;
    int src = fsync(dfd);
    close(dfd);
    if (src != 0)
        goto fail;
    j->pos = j->last_pos = RELAY_JOURNAL_HEAD_BYTES;
    j->next_bseq = bseq + 1;
    *out = j;
    return 0;
fail:
    if (j->fd >= 0)
        (void)unlink(tmp);
    relay_journal_close(j);
    return ALCOVE_EIO;
}

const uint8_t *relay_journal_metas(const relay_journal *j, uint32_t *psize)
{
    *psize = j->psize;
    return j->metas;
}

uint64_t relay_journal_ckpt_bseq(const relay_journal *j) { return j->ckpt_bseq; }
uint64_t relay_journal_last_bseq(const relay_journal *j) { return j->next_bseq - 1; }
uint64_t relay_journal_used(const relay_journal *j)
{
    if (j->pos >= j->start)
        return j->pos - j->start;
    return (j->size - j->start) + (j->pos - RELAY_JOURNAL_HEAD_BYTES);
}

uint64_t relay_journal_size(const relay_journal *j) { return j->size; }

size_t relay_journal_max_payload(const relay_journal *j)
{
    uint64_t m = (j->size - RELAY_JOURNAL_HEAD_BYTES) / 4 - RELAY_JOURNAL_REC_HDR;
    return (size_t)(m > UINT32_MAX ? UINT32_MAX : m); /* len is a u32 */
}

/* Where a record of rec bytes goes: at pos, or wrapped to the start of the
 * record area, never over the records since the checkpoint (from start).
 * pos only meets start again when the ring is empty (the inequalities are
 * strict), so "pos == start" always means "no record since the
 * checkpoint".  Returns 0 and the offset, or -1 if it does not fit. */
static int place(const relay_journal *j, uint64_t rec, uint64_t *at)
{
    if (j->pos >= j->start) { /* live records in [start, pos) */
        if (j->pos + rec <= j->size) {
            *at = j->pos;
            return 0;
        }
        if (RELAY_JOURNAL_HEAD_BYTES + rec < j->start ||
            (j->pos == j->start && RELAY_JOURNAL_HEAD_BYTES + rec <= j->size)) {
            *at = RELAY_JOURNAL_HEAD_BYTES;
            return 0;
        }
        return -1;
    }
    if (j->pos + rec < j->start) { /* wrapped: live in [start, end) + [HEAD, pos) */
        *at = j->pos;
        return 0;
    }
    return -1;
}

int relay_journal_fits(const relay_journal *j, size_t payload_len)
{
    uint64_t at;
    return payload_len <= relay_journal_max_payload(j) &&
           place(j, RELAY_JOURNAL_REC_HDR + payload_len, &at) == 0;
}

/* A record's checksum: CRC-32C of the journal's key, then len and bseq,
 * then the payload.  The key (random, made with the journal, kept in its
 * slots) is not a MAC key, but without it a record cannot be forged: older
 * laps of the ring hold client-chosen blob bytes, and a fake record laid out
 * in a blob where the chain continues after a crash must not be replayed.
 * CRC-32C is affine in its input, so the unknown prefix leaves a forger a
 * 2^-32 chance per attempt, and an attempt needs a crash. */
static uint32_t record_crc(const relay_journal *j, const uint8_t *h, const uint8_t *payload,
                           size_t len)
{
    uint32_t c = relay_crc32c(0, j->key, KEY_BYTES);
    c = relay_crc32c(c, h + 4, 12);
    return relay_crc32c(c, payload, len);
}

/* The record with bseq next_bseq at `at`, if valid: its payload in j->buf. */
static int read_record(relay_journal *j, uint64_t at, size_t *len)
{
    uint8_t h[RELAY_JOURNAL_REC_HDR];
    if (at + RELAY_JOURNAL_REC_HDR > j->size)
        return ALCOVE_ENOTFOUND;
    int r = pread_all(j->fd, h, sizeof h, at);
    if (r < 0)
        return ALCOVE_EIO;
    if (r > 0 || get_u32(h) != REC_MAGIC || get_u64(h + 8) != j->next_bseq)
        return ALCOVE_ENOTFOUND;
    uint32_t n = get_u32(h + 4);
    if (n > relay_journal_max_payload(j) || at + RELAY_JOURNAL_REC_HDR + n > j->size)
        return ALCOVE_ENOTFOUND;
    if (grow_buf(j, RELAY_JOURNAL_REC_HDR + (size_t)n) != 0)
        return ALCOVE_ENOMEM;
    uint8_t *p = j->buf + RELAY_JOURNAL_REC_HDR;
    r = pread_all(j->fd, p, n, at + RELAY_JOURNAL_REC_HDR);
    if (r < 0)
        return ALCOVE_EIO;
    if (r > 0)
        return ALCOVE_ENOTFOUND;
    uint32_t crc = record_crc(j, h, p, n);
    if (crc != get_u32(h + 16))
        return ALCOVE_ENOTFOUND;
    *len = n;
    return 0;
}

int relay_journal_replay_next(relay_journal *j, const uint8_t **payload, size_t *len,
                              uint64_t *bseq)
{
    /* The chain continues right after the last record, or, where the
     * writer wrapped, at the start of the record area.  Only the expected
     * batch number with a valid checksum counts: a record left from an
     * earlier lap has a smaller one. */
    uint64_t at = j->pos;
    int rc = read_record(j, at, len);
    if (rc == ALCOVE_ENOTFOUND && at != RELAY_JOURNAL_HEAD_BYTES) {
        at = RELAY_JOURNAL_HEAD_BYTES;
        rc = read_record(j, at, len);
    }
    if (rc != 0)
        return rc;
    *payload = j->buf + RELAY_JOURNAL_REC_HDR;
    *bseq = j->next_bseq;
    j->last_pos = at;
    j->pos = at + RELAY_JOURNAL_REC_HDR + *len;
    j->next_bseq++;
    return 0;
}

uint8_t *relay_journal_payload_buf(relay_journal *j, size_t payload_len)
{
    if (payload_len > relay_journal_max_payload(j) ||
        grow_buf(j, RELAY_JOURNAL_REC_HDR + payload_len) != 0)
        return NULL;
    return j->buf + RELAY_JOURNAL_REC_HDR;
}

/* Zero the record header at `at` and sync: no replay takes it any more.
 * Returns 0, or -1 with errno in *err. */
static int erase_header(relay_journal *j, uint64_t at, int *err)
{
    static const uint8_t zero[RELAY_JOURNAL_REC_HDR];
    if (pwrite_all(j->fd, zero, sizeof zero, at) != 0 || fdatasync(j->fd) != 0) {
        *err = errno;
        return -1;
    }
    return 0;
}

int relay_journal_append(relay_journal *j, size_t payload_len, int *err)
{
    uint8_t *h = j->buf;
    *err = 0;
    if (payload_len > relay_journal_max_payload(j)) {
        *err = ENOSPC;
        return ALCOVE_EIO;
    }
    put_u32(h, REC_MAGIC);
    put_u32(h + 4, (uint32_t)payload_len);
    put_u64(h + 8, j->next_bseq);
    put_u32(h + 16, record_crc(j, h, h + RELAY_JOURNAL_REC_HDR, payload_len));
    put_u32(h + 20, 0);
    uint64_t at;
    if (place(j, RELAY_JOURNAL_REC_HDR + payload_len, &at) != 0) {
        *err = ENOSPC;
        return ALCOVE_EIO;
    }
    /* A failed append may have reached the disk with this bseq at
     * failed_at; this record goes elsewhere (it wraps), so the replay would
     * take that one and lose the chain after it.  Erase it first. */
    if (j->failed_pending && j->failed_at != at && erase_header(j, j->failed_at, err) != 0)
        return ALCOVE_EIO;
    j->failed_pending = 0;
    if (pwrite_all(j->fd, h, RELAY_JOURNAL_REC_HDR + payload_len, at) != 0 ||
        fdatasync(j->fd) != 0) {
        *err = errno;
        j->failed_pending = 1;
        j->failed_at = at;
        return ALCOVE_EIO;
    }
    j->last_pos = at;
    j->pos = at + RELAY_JOURNAL_REC_HDR + payload_len;
    j->next_bseq++;
    return 0;
}

int relay_journal_unappend(relay_journal *j, int *err)
{
    *err = 0;
    if (j->pos == j->last_pos)
        return 0; /* nothing appended since the last checkpoint */
    j->pos = j->last_pos;
    j->next_bseq--;
    if (erase_header(j, j->pos, err) != 0) {
        /* The record is still on disk with the bseq the next one reuses:
         * treat it like a failed append (relay_journal_append erases it
         * before writing anywhere else). */
        j->failed_pending = 1;
        j->failed_at = j->pos;
        return ALCOVE_EIO;
    }
    return 0;
}

relay_journal_mark relay_journal_get_mark(const relay_journal *j)
{
    relay_journal_mark m = {j->next_bseq - 1, j->pos};
    return m;
}

int relay_journal_checkpoint(relay_journal *j, const uint8_t *metas, uint32_t psize,
                             relay_journal_mark mark, int *err)
{
    *err = 0;
    if (!psize_ok(psize)) {
        *err = EINVAL;
        return ALCOVE_EIO;
    }
    if (j->failed_pending) {
        /* A failed append may be on disk right where the chain would
         * continue after this checkpoint: erase it first, or a restart
         * would replay a batch that was answered with an error. */
        if (erase_header(j, j->failed_at, err) != 0)
            return ALCOVE_EIO;
        j->failed_pending = 0;
    }
    uint64_t gen = j->gen + 1;
    size_t n = build_slot(j, gen, mark.bseq, mark.pos, metas, psize);
    if (pwrite_all(j->fd, j->buf, n, (gen & 1) * RELAY_JOURNAL_SLOT_BYTES) != 0 ||
        fdatasync(j->fd) != 0) {
        *err = errno;
        return ALCOVE_EIO;
    }
    j->gen = gen;
    j->ckpt_bseq = mark.bseq;
    j->psize = psize;
    memcpy(j->metas, metas, 2u * (size_t)psize);
    j->start = mark.pos;
    return 0;
}
