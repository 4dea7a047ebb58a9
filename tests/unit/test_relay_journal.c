/* The relay's write-ahead journal (relay/journal.c) and the op encoding it
 * carries (relay/op.c), on real files in a temporary directory: records
 * come back in order after a reopen; a torn or stale record ends the chain;
 * a checkpoint starts the record area afresh; a torn checkpoint slot falls
 * back to the previous one with its records; take-back of a record; the
 * encoding of every op kind round-trips and every malformed payload is
 * refused without reading past it. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "journal.h"
#include "op.h"
#include "relayproc.h"

#define PSIZE 4096u

static uint8_t metas_a[2 * PSIZE], metas_b[2 * PSIZE];

static void fill_metas(void)
{
    for (size_t i = 0; i < sizeof metas_a; i++) {
        metas_a[i] = (uint8_t)(i * 7 + 1);
        metas_b[i] = (uint8_t)(i * 13 + 5);
    }
}

static void jpath(const char *dir, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", dir, RELAY_JOURNAL_NAME);
}

/* Append a record whose payload is `len` bytes of `fill`. */
static void append(relay_journal *j, size_t len, uint8_t fill)
{
    uint8_t *p = relay_journal_payload_buf(j, len);
    assert_non_null(p);
    memset(p, fill, len);
    int err = -1;
    assert_int_equal(relay_journal_append(j, len, &err), 0);
    assert_int_equal(err, 0);
}

/* Replay everything; check record i has length lens[i] and fill fills[i]. */
static void expect_chain(relay_journal *j, uint64_t first, size_t n, const size_t *lens,
                         const uint8_t *fills)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p;
        size_t len;
        uint64_t bseq;
        assert_int_equal(relay_journal_replay_next(j, &p, &len, &bseq), 0);
        assert_int_equal(bseq, first + i);
        assert_int_equal(len, lens[i]);
        for (size_t k = 0; k < len; k++)
            assert_int_equal(p[k], fills[i]);
    }
    const uint8_t *p;
    size_t len;
    uint64_t bseq;
    assert_int_equal(relay_journal_replay_next(j, &p, &len, &bseq), ALCOVE_ENOTFOUND);
}

static void test_records_survive_reopen_in_order(void **state)
{
    (void)state;
    char dir[256], path[300];
    test_mkdtemp(dir, sizeof dir);
    fill_metas();
    relay_journal *j = NULL;
    const char *why = NULL;
    assert_int_equal(relay_journal_open(&j, dir, &why), ALCOVE_ENOTFOUND);
    assert_int_equal(relay_journal_create(&j, dir, 2u << 20, 41, metas_a, PSIZE, &why), 0);
    jpath(dir, path, sizeof path);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, 2u << 20);
    assert_int_equal(sb.st_mode & 0777, 0600);
    size_t lens[3] = {1, 5000, 70000};
    uint8_t fills[3] = {0xa1, 0xb2, 0xc3};
    for (int i = 0; i < 3; i++)
        append(j, lens[i], fills[i]);
    assert_int_equal(relay_journal_last_bseq(j), 44);
    relay_journal_close(j);

    assert_int_equal(relay_journal_open(&j, dir, &why), 0);
    uint32_t psize = 0;
    const uint8_t *m = relay_journal_metas(j, &psize);
    assert_int_equal(psize, PSIZE);
    assert_memory_equal(m, metas_a, sizeof metas_a);
    assert_int_equal(relay_journal_ckpt_bseq(j), 41);
    expect_chain(j, 42, 3, lens, fills);
    /* Appends continue the chain after the replayed records. */
    append(j, 10, 0xd4);
    relay_journal_close(j);
    assert_int_equal(relay_journal_open(&j, dir, &why), 0);
    size_t lens4[4] = {1, 5000, 70000, 10};
    uint8_t fills4[4] = {0xa1, 0xb2, 0xc3, 0xd4};
    expect_chain(j, 42, 4, lens4, fills4);
    relay_journal_close(j);
    test_rmtree(dir);
}

static void test_torn_record_ends_the_chain(void **state)
{
    (void)state;
    char dir[256], path[300];
    test_mkdtemp(dir, sizeof dir);
    fill_metas();
    relay_journal *j = NULL;
    const char *why = NULL;
    assert_int_equal(relay_journal_create(&j, dir, 1u << 20, 0, metas_a, PSIZE, &why), 0);
    append(j, 100, 1);
    append(j, 200, 2);
    append(j, 300, 3);
    relay_journal_close(j);
    /* Flip one payload byte of the third record. */
    jpath(dir, path, sizeof path);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t off = RELAY_JOURNAL_HEAD_BYTES + 2 * RELAY_JOURNAL_REC_HDR + 300 +
                RELAY_JOURNAL_REC_HDR + 150;
    uint8_t b = 0x55;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
    assert_int_equal(relay_journal_open(&j, dir, &why), 0);
    size_t lens[2] = {100, 200};
    uint8_t fills[2] = {1, 2};
    expect_chain(j, 1, 2, lens, fills);
    /* The next append takes the torn record's place and number. */
    append(j, 50, 9);
    relay_journal_close(j);
    assert_int_equal(relay_journal_open(&j, dir, &why), 0);
    size_t lens3[3] = {100, 200, 50};
    uint8_t fills3[3] = {1, 2, 9};
    expect_chain(j, 1, 3, lens3, fills3);
    relay_journal_close(j);
    test_rmtree(dir);
}

static void test_checkpoint_frees_the_ring_and_old_records_stay_dead(void **state)
{
    (void)state;
    char dir[256];
    test_mkdtemp(dir, sizeof dir);
    fill_metas();
    relay_journal *j = NULL;
    const char *why = NULL;
    int err;
    assert_int_equal(relay_journal_create(&j, dir, 1u << 20, 0, metas_a, PSIZE, &why), 0);
    for (int i = 0; i < 5; i++)
        append(j, 1000, (uint8_t)(10 + i));
    assert_true(relay_journal_used(j) > 0);
    assert_int_equal(relay_journal_checkpoint(j, metas_b, PSIZE, relay_journal_get_mark(j), &err), 0);
    assert_int_equal(relay_journal_used(j), 0);
    relay_journal_close(j);
    /* After the checkpoint the five old records are still on disk, but
     * their numbers (1..5) do not continue the chain (6..). */
    assert_int_equal(relay_journal_open(&j, dir, &why), 0);
    uint32_t psize;
    assert_memory_equal(relay_journal_metas(j, &psize), metas_b, sizeof metas_b);
    assert_int_equal(relay_journal_ckpt_bseq(j), 5);
    expect_chain(j, 6, 0, NULL, NULL);
    append(j, 10, 0x66); /* goes after record 5: the ring continues */
    relay_journal_close(j);
    assert_int_equal(relay_journal_open(&j, dir, &why), 0);
    size_t lens[1] = {10};
    uint8_t fills[1] = {0x66};
    expect_chain(j, 6, 1, lens, fills);
    relay_journal_close(j);
    test_rmtree(dir);
}

/* A checkpoint taken at a mark (records appended after the mark, while
 * data.mdb synced, stay live); later records wrap to the area's start, up to
 * but never over the oldest live one; replay follows the wrap. */
static void test_ring_wraps_after_a_mark_and_never_overwrites_live_records(void **state)
{
    (void)state;
    char dir[256];
    test_mkdtemp(dir, sizeof dir);
    fill_metas();
    relay_journal *j = NULL;
    const char *why = NULL;
    int err;
    assert_int_equal(relay_journal_create(&j, dir, 1u << 20, 0, metas_a, PSIZE, &why), 0);
    size_t len = 200u << 10;
    append(j, len, 1);
    append(j, len, 2);
    relay_journal_mark mark = relay_journal_get_mark(j);
    assert_int_equal(mark.bseq, 2);
    append(j, len, 3);
    append(j, len, 4);
    assert_int_equal(relay_journal_checkpoint(j, metas_b, PSIZE, mark, &err), 0);
    assert_int_equal(relay_journal_used(j), 2 * (len + RELAY_JOURNAL_REC_HDR));
    /* 5 does not fit before the end: it wraps over 1 (free again). */
    assert_true(relay_journal_fits(j, len));
    append(j, len, 5);
    /* 6 would reach 3, the oldest live record: refused. */
    assert_false(relay_journal_fits(j, len));
    assert_non_null(relay_journal_payload_buf(j, len));
    assert_int_equal(relay_journal_append(j, len, &err), ALCOVE_EIO);
    relay_journal_close(j);
    assert_int_equal(relay_journal_open(&j, dir, &why), 0);
    assert_int_equal(relay_journal_ckpt_bseq(j), 2);
    size_t lens[3] = {len, len, len};
    uint8_t fills[3] = {3, 4, 5};
    expect_chain(j, 3, 3, lens, fills);
    relay_journal_close(j);
    test_rmtree(dir);
}

/* Client-chosen bytes left in the ring cannot pass for a record: a record
 * laid out by someone who does not know the journal's key, with the right
 * place, magic, length, batch number and an unkeyed CRC, ends the chain. */
static void test_record_without_the_key_is_not_replayed(void **state)
{
    (void)state;
    char dir[256], path[300];
    test_mkdtemp(dir, sizeof dir);
    fill_metas();
    relay_journal *j = NULL;
    const char *why = NULL;
    assert_int_equal(relay_journal_create(&j, dir, 1u << 20, 0, metas_a, PSIZE, &why), 0);
    append(j, 100, 1);
    relay_journal_close(j);
    uint8_t rec[RELAY_JOURNAL_REC_HDR + 20];
    memset(rec, 0, sizeof rec);
    const uint8_t hdr[16] = {'A', 'J', 'R', '1', 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 2};
    memcpy(rec, hdr, 16);
    memset(rec + RELAY_JOURNAL_REC_HDR, 0x77, 20);
    uint32_t crc = relay_crc32c(relay_crc32c(0, rec + 4, 12), rec + RELAY_JOURNAL_REC_HDR, 20);
    rec[16] = (uint8_t)(crc >> 24);
    rec[17] = (uint8_t)(crc >> 16);
    rec[18] = (uint8_t)(crc >> 8);
    rec[19] = (uint8_t)crc;
    jpath(dir, path, sizeof path);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t at = (off_t)(RELAY_JOURNAL_HEAD_BYTES + RELAY_JOURNAL_REC_HDR + 100);
    assert_int_equal(pwrite(fd, rec, sizeof rec, at), (ssize_t)sizeof rec);
    close(fd);
    assert_int_equal(relay_journal_open(&j, dir, &why), 0);
    size_t lens[1] = {100};
    uint8_t fills[1] = {1};
    expect_chain(j, 1, 1, lens, fills);
    relay_journal_close(j);
    test_rmtree(dir);
}

static void test_torn_slot_falls_back_to_the_previous_checkpoint(void **state)
{
    (void)state;
    char dir[256], path[300];
    test_mkdtemp(dir, sizeof dir);
    fill_metas();
    relay_journal *j = NULL;
    const char *why = NULL;
    int err;
    assert_int_equal(relay_journal_create(&j, dir, 1u << 20, 7, metas_a, PSIZE, &why), 0);
    append(j, 64, 0x11);
    append(j, 64, 0x22);
    /* A checkpoint to generation 2 whose slot write was torn: write it,
     * then damage it, as a power cut in the middle of the write would. */
    assert_int_equal(relay_journal_checkpoint(j, metas_b, PSIZE, relay_journal_get_mark(j), &err), 0);
    relay_journal_close(j);
    jpath(dir, path, sizeof path);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t junk[512];
    memset(junk, 0xee, sizeof junk);
    assert_int_equal(pwrite(fd, junk, sizeof junk, 4096), (ssize_t)sizeof junk); /* slot 0 */
    close(fd);
    assert_int_equal(relay_journal_open(&j, dir, &why), 0);
    uint32_t psize;
    assert_memory_equal(relay_journal_metas(j, &psize), metas_a, sizeof metas_a);
    assert_int_equal(relay_journal_ckpt_bseq(j), 7);
    size_t lens[2] = {64, 64};
    uint8_t fills[2] = {0x11, 0x22};
    expect_chain(j, 8, 2, lens, fills);
    relay_journal_close(j);
    /* Both slots bad: refused, not treated as empty. */
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, junk, sizeof junk, RELAY_JOURNAL_SLOT_BYTES + 100),
                     (ssize_t)sizeof junk);
    close(fd);
    assert_int_equal(relay_journal_open(&j, dir, &why), ALCOVE_ECORRUPT);
    assert_non_null(strstr(why, "checkpoint"));
    /* Truncated file: refused. */
    assert_int_equal(truncate(path, 4096), 0);
    assert_int_equal(relay_journal_open(&j, dir, &why), ALCOVE_ECORRUPT);
    test_rmtree(dir);
}

static void test_unappend_takes_the_record_back(void **state)
{
    (void)state;
    char dir[256];
    test_mkdtemp(dir, sizeof dir);
    fill_metas();
    relay_journal *j = NULL;
    const char *why = NULL;
    int err;
    assert_int_equal(relay_journal_create(&j, dir, 1u << 20, 0, metas_a, PSIZE, &why), 0);
    append(j, 30, 0x31);
    append(j, 40, 0x41);
    assert_int_equal(relay_journal_unappend(j, &err), 0);
    assert_int_equal(relay_journal_last_bseq(j), 1);
    relay_journal_close(j);
    assert_int_equal(relay_journal_open(&j, dir, &why), 0);
    size_t lens[1] = {30};
    uint8_t fills[1] = {0x31};
    expect_chain(j, 1, 1, lens, fills);
    relay_journal_close(j);
    test_rmtree(dir);
}

static void test_full_journal_refuses_and_sizes_are_bounded(void **state)
{
    (void)state;
    char dir[256];
    test_mkdtemp(dir, sizeof dir);
    fill_metas();
    relay_journal *j = NULL;
    const char *why = NULL;
    int err;
    /* Below the minimum: rounded up to 1 MiB. */
    assert_int_equal(relay_journal_create(&j, dir, 4096, 0, metas_a, PSIZE, &why), 0);
    assert_int_equal(relay_journal_size(j), RELAY_JOURNAL_MIN_BYTES);
    size_t max = relay_journal_max_payload(j);
    assert_true(max * 4 <= RELAY_JOURNAL_MIN_BYTES - RELAY_JOURNAL_HEAD_BYTES);
    assert_null(relay_journal_payload_buf(j, max + 1));
    int n = 0;
    while (relay_journal_fits(j, max)) {
        append(j, max, (uint8_t)n);
        n++;
    }
    assert_int_equal(n, 4);
    assert_non_null(relay_journal_payload_buf(j, max));
    assert_int_equal(relay_journal_append(j, max, &err), ALCOVE_EIO);
    assert_int_equal(relay_journal_checkpoint(j, metas_a, PSIZE, relay_journal_get_mark(j), &err), 0);
    assert_true(relay_journal_fits(j, max));
    /* A page size the slot cannot hold is refused. */
    relay_journal_close(j);
    test_rmtree(dir);
    test_mkdtemp(dir, sizeof dir);
    assert_int_equal(relay_journal_create(&j, dir, 1u << 20, 0, metas_a, 65536, &why),
                     ALCOVE_EINVAL);
    test_rmtree(dir);
}

static void test_crc32c_known_answer(void **state)
{
    (void)state;
    /* RFC 3720 B.4 test vectors. */
    uint8_t zeros[32] = {0}, ones[32], inc[32];
    memset(ones, 0xff, sizeof ones);
    for (int i = 0; i < 32; i++)
        inc[i] = (uint8_t)i;
    assert_int_equal(relay_crc32c(0, zeros, 32), 0x8a9136aau);
    assert_int_equal(relay_crc32c(0, ones, 32), 0x62a8ab43u);
    assert_int_equal(relay_crc32c(0, inc, 32), 0x46dd794eu);
    assert_int_equal(relay_crc32c(0, "123456789", 9), 0xe3069283u);
    /* Incremental equals one shot. */
    assert_int_equal(relay_crc32c(relay_crc32c(0, inc, 13), inc + 13, 19), 0x46dd794eu);
}

static relay_op *mk(relay_op_kind kind, uint8_t tag)
{
    relay_op *op = relay_op_new(kind);
    assert_non_null(op);
    memset(op->recv_id, tag, sizeof op->recv_id);
    memset(op->rec.auth_pub, tag + 1, 32);
    memset(op->rec.send_id, tag + 2, 16);
    memset(op->rec.send_key_hash, tag + 3, 32);
    op->rec.created_at = 1000u + tag;
    op->rec.last_seen = 2000u + tag;
    op->rec.acked_seq = 3000u + tag;
    return op;
}

static void test_op_encoding_round_trips_and_refuses_garbage(void **state)
{
    (void)state;
    relay_op *ops[6];
    ops[0] = mk(OP_CREATE, 1);
    ops[1] = mk(OP_SEND, 2);
    ops[1]->gseq = 77;
    ops[1]->seq = 5;
    ops[1]->received_at = 123456789;
    ops[1]->blob_len = 1000;
    ops[1]->blob = malloc(1000);
    assert_non_null(ops[1]->blob);
    memset(ops[1]->blob, 0x5a, 1000);
    ops[2] = mk(OP_TRIM, 3);
    ops[2]->ngseqs = 3;
    ops[2]->gseqs = calloc(3, sizeof(uint64_t));
    assert_non_null(ops[2]->gseqs);
    ops[2]->gseqs[0] = 1;
    ops[2]->gseqs[1] = UINT64_MAX;
    ops[2]->gseqs[2] = 99;
    ops[3] = mk(OP_DELETE, 4);
    ops[4] = mk(OP_TOUCH, 5);
    ops[5] = mk(OP_PURGE, 6);
    ops[5]->ngseqs = 1;
    ops[5]->gseqs = calloc(1, sizeof(uint64_t));
    assert_non_null(ops[5]->gseqs);
    ops[5]->gseqs[0] = 4242;
    size_t total = 0;
    for (int i = 0; i < 6; i++)
        total += relay_op_encoded_size(ops[i]);
    uint8_t *buf = malloc(total), *p = buf;
    assert_non_null(buf);
    for (int i = 0; i < 6; i++) {
        uint8_t *end = relay_op_encode(ops[i], p);
        assert_int_equal((size_t)(end - p), relay_op_encoded_size(ops[i]));
        p = end;
    }
    relay_op *list = NULL;
    assert_int_equal(relay_op_decode_list(buf, total, &list), 0);
    relay_op *d = list;
    for (int i = 0; i < 6; i++, d = d->next) {
        assert_non_null(d);
        assert_int_equal(d->kind, ops[i]->kind);
        if (d->kind != OP_PURGE)
            assert_memory_equal(d->recv_id, ops[i]->recv_id, 16);
        if (d->kind == OP_CREATE || d->kind == OP_TOUCH || d->kind == OP_TRIM)
            assert_memory_equal(&d->rec, &ops[i]->rec, sizeof d->rec);
        assert_int_equal(d->gseq, ops[i]->gseq);
        assert_int_equal(d->seq, ops[i]->seq);
        assert_int_equal(d->received_at, ops[i]->received_at);
        assert_int_equal(d->blob_len, ops[i]->blob_len);
        if (d->blob_len)
            assert_memory_equal(d->blob, ops[i]->blob, d->blob_len);
        assert_int_equal(d->ngseqs, ops[i]->ngseqs);
        if (d->ngseqs)
            assert_memory_equal(d->gseqs, ops[i]->gseqs, d->ngseqs * sizeof(uint64_t));
    }
    assert_null(d);
    relay_op_free_list(list);
    /* Every strict prefix is refused (an op cut short), as is a bad kind
     * and a count larger than what follows. */
    for (size_t cut = 1; cut < total; cut++) {
        list = (relay_op *)1;
        int rc = relay_op_decode_list(buf, cut, &list);
        size_t b = 0;
        int boundary = 0;
        for (int i = 0; i < 6; i++) {
            b += relay_op_encoded_size(ops[i]);
            if (b == cut)
                boundary = 1;
        }
        if (boundary) {
            assert_int_equal(rc, 0);
            relay_op_free_list(list);
        } else {
            assert_int_equal(rc, ALCOVE_ECORRUPT);
            assert_null(list);
        }
    }
    uint8_t bad[1] = {0};
    assert_int_equal(relay_op_decode_list(bad, 1, &list), ALCOVE_ECORRUPT);
    bad[0] = 7;
    assert_int_equal(relay_op_decode_list(bad, 1, &list), ALCOVE_ECORRUPT);
    uint8_t purge[5] = {OP_PURGE, 0xff, 0xff, 0xff, 0xff}; /* 4 billion gseqs, no bytes */
    assert_int_equal(relay_op_decode_list(purge, sizeof purge, &list), ALCOVE_ECORRUPT);
    free(buf);
    for (int i = 0; i < 6; i++)
        relay_op_free(ops[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_survive_reopen_in_order),
        cmocka_unit_test(test_torn_record_ends_the_chain),
        cmocka_unit_test(test_checkpoint_frees_the_ring_and_old_records_stay_dead),
        cmocka_unit_test(test_ring_wraps_after_a_mark_and_never_overwrites_live_records),
        cmocka_unit_test(test_torn_slot_falls_back_to_the_previous_checkpoint),
        cmocka_unit_test(test_unappend_takes_the_record_back),
        cmocka_unit_test(test_record_without_the_key_is_not_replayed),
        cmocka_unit_test(test_full_journal_refuses_and_sizes_are_bounded),
        cmocka_unit_test(test_crc32c_known_answer),
        cmocka_unit_test(test_op_encoding_round_trips_and_refuses_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
