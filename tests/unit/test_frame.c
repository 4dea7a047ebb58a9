/* Frame decoder: any split of the input yields the same frames; limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "frame.h"

#define NFRAMES 40

/* A stream of frames with varied lengths (1 .. a few thousand, plus the
 * extremes) and bodies derived from their index. */
typedef struct stream {
    uint8_t *bytes;
    size_t len;
    size_t body_len[NFRAMES];
} stream;

static uint8_t body_byte(size_t frame, size_t i)
{
    return (uint8_t)(frame * 31 + i * 7 + 1);
}

static void make_stream(stream *s)
{
    size_t f, i, pos = 0, total = 0;

    for (f = 0; f < NFRAMES; f++) {
        s->body_len[f] = f == 0 ? 1 : f == 1 ? ALCOVE_FRAME_MAX
                                             : (f * 977) % 3000 + 1;
        total += ALCOVE_FRAME_HDR + s->body_len[f];
    }
    s->bytes = malloc(total);
    assert_non_null(s->bytes);
    for (f = 0; f < NFRAMES; f++) {
        assert_int_equal(alcove_frame_put_len(s->bytes + pos, s->body_len[f]), 0);
        pos += ALCOVE_FRAME_HDR;
        for (i = 0; i < s->body_len[f]; i++) {
            s->bytes[pos++] = body_byte(f, i);
        }
    }
    s->len = total;
}

/* Feed one chunk, checking every frame it completes.  *next is the index of
 * the next expected frame; *in_place counts frames returned without copy. */
static void feed_chunk(alcove_frame_dec *d, const stream *s, const uint8_t *chunk,
                       size_t len, size_t *next, size_t *in_place)
{
    while (len > 0) {
        const uint8_t *frame = NULL;
        size_t used = 0, frame_len = 0, i;
        int rc = alcove_frame_feed(d, chunk, len, &used, &frame, &frame_len);

        assert_in_range(used, 0, len);
        chunk += used;
        len -= used;
        if (rc == 0) {
            assert_int_equal(len, 0);
            break;
        }
        assert_int_equal(rc, 1);
        assert_in_range(*next, 0, NFRAMES - 1);
        assert_int_equal(frame_len, s->body_len[*next]);
        for (i = 0; i < frame_len; i++) {
            if (frame[i] != body_byte(*next, i)) {
                fail_msg("frame %zu byte %zu is %u, expected %u", *next, i,
                         frame[i], body_byte(*next, i));
            }
        }
        if (frame >= s->bytes && frame < s->bytes + s->len) {
            (*in_place)++;
        }
        (*next)++;
    }
}

static void run_splits(const stream *s, size_t (*next_chunk)(size_t left, void *ctx),
                       void *ctx, size_t *in_place)
{
    alcove_frame_dec d;
    size_t pos = 0, next = 0;

    alcove_frame_dec_init(&d);
    while (pos < s->len) {
        size_t n = next_chunk(s->len - pos, ctx);
        feed_chunk(&d, s, s->bytes + pos, n, &next, in_place);
        pos += n;
    }
    assert_int_equal(next, NFRAMES);
    assert_int_equal(alcove_frame_buffered(&d), 0);
    alcove_frame_dec_free(&d);
    assert_null(d.buf);
}

static size_t one_byte(size_t left, void *ctx)
{
    (void)left;
    (void)ctx;
    return 1;
}

static size_t everything(size_t left, void *ctx)
{
    (void)ctx;
    return left;
}

/* xorshift32 with a fixed seed: the same "random" splits every run. */
static size_t random_chunk(size_t left, void *ctx)
{
    uint32_t *x = ctx;
    size_t n;

    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    /* Mostly small chunks, sometimes big ones that hold several frames. */
    n = (*x & 0x100) ? (*x >> 9) % 9000 + 1 : (*x >> 9) % 5 + 1;
    return n < left ? n : left;
}

static void test_frames_fed_one_byte_at_a_time(void **state)
{
    stream s;
    size_t in_place = 0;

    (void)state;
    make_stream(&s);
    run_splits(&s, one_byte, NULL, &in_place);
    /* Only 1-byte bodies can arrive whole in a 1-byte feed. */
    assert_int_equal(in_place, 1);
    free(s.bytes);
}

static void test_frames_fed_in_random_splits(void **state)
{
    stream s;
    uint32_t seed = 0x2545F491u;
    size_t in_place = 0;
    int iter;

    (void)state;
    make_stream(&s);
    for (iter = 0; iter < 300; iter++) {
        run_splits(&s, random_chunk, &seed, &in_place);
    }
    free(s.bytes);
}

static void test_frames_fed_all_at_once_are_returned_in_place(void **state)
{
    stream s;
    size_t in_place = 0;

    (void)state;
    make_stream(&s);
    run_splits(&s, everything, NULL, &in_place);
    assert_int_equal(in_place, NFRAMES);
    free(s.bytes);
}

static void test_max_size_frame_65535_split_and_whole(void **state)
{
    uint8_t *buf = malloc(ALCOVE_FRAME_HDR + ALCOVE_FRAME_MAX);
    const uint8_t *frame = NULL;
    size_t used = 0, frame_len = 0;
    alcove_frame_dec d;

    (void)state;
    assert_non_null(buf);
    assert_int_equal(alcove_frame_put_len(buf, ALCOVE_FRAME_MAX), 0);
    assert_int_equal(buf[0], 0xff);
    assert_int_equal(buf[1], 0xff);
    memset(buf + 2, 0x5a, ALCOVE_FRAME_MAX);

    alcove_frame_dec_init(&d);
    assert_int_equal(alcove_frame_feed(&d, buf, 1000, &used, &frame, &frame_len), 0);
    assert_int_equal(used, 1000);
    assert_int_equal(alcove_frame_buffered(&d), 1000);
    assert_non_null(d.buf);
    assert_int_equal(alcove_frame_feed(&d, buf + 1000,
                                       ALCOVE_FRAME_HDR + ALCOVE_FRAME_MAX - 1000,
                                       &used, &frame, &frame_len), 1);
    assert_int_equal(frame_len, ALCOVE_FRAME_MAX);
    assert_ptr_equal(frame, d.buf);
    assert_int_equal(frame[0], 0x5a);
    assert_int_equal(frame[ALCOVE_FRAME_MAX - 1], 0x5a);
    assert_int_equal(alcove_frame_buffered(&d), 0);

    /* The next call releases the reassembly buffer. */
    assert_int_equal(alcove_frame_feed(&d, buf, ALCOVE_FRAME_HDR + ALCOVE_FRAME_MAX,
                                       &used, &frame, &frame_len), 1);
    assert_null(d.buf);
    assert_ptr_equal(frame, buf + 2);
    assert_int_equal(frame_len, ALCOVE_FRAME_MAX);
    alcove_frame_dec_free(&d);
    free(buf);
}

static void test_zero_length_prefix_is_eproto(void **state)
{
    static const uint8_t good_then_zero[] = {0x00, 0x01, 0x42, 0x00, 0x00, 0x00, 0x05};
    const uint8_t *frame = NULL;
    size_t used = 0, frame_len = 0;
    alcove_frame_dec d;

    (void)state;
    alcove_frame_dec_init(&d);
    assert_int_equal(alcove_frame_feed(&d, good_then_zero, sizeof good_then_zero,
                                       &used, &frame, &frame_len), 1);
    assert_int_equal(used, 3);
    assert_int_equal(alcove_frame_feed(&d, good_then_zero + 3, 4, &used, &frame,
                                       &frame_len), ALCOVE_EPROTO);
    alcove_frame_dec_free(&d);

    /* The zero prefix split across two feeds. */
    alcove_frame_dec_init(&d);
    assert_int_equal(alcove_frame_feed(&d, good_then_zero + 3, 1, &used, &frame,
                                       &frame_len), 0);
    assert_int_equal(alcove_frame_feed(&d, good_then_zero + 4, 1, &used, &frame,
                                       &frame_len), ALCOVE_EPROTO);
    alcove_frame_dec_free(&d);
}

static void test_put_len_edges(void **state)
{
    uint8_t out[2] = {0xee, 0xee};

    (void)state;
    assert_int_equal(alcove_frame_put_len(out, 0), ALCOVE_EINVAL);
    assert_int_equal(alcove_frame_put_len(out, 65536), ALCOVE_ETOOBIG);
    assert_int_equal(alcove_frame_put_len(out, SIZE_MAX), ALCOVE_ETOOBIG);
    assert_int_equal(out[0], 0xee); /* untouched on error */
    assert_int_equal(alcove_frame_put_len(out, 1), 0);
    assert_int_equal(out[0], 0x00);
    assert_int_equal(out[1], 0x01);
    assert_int_equal(alcove_frame_put_len(out, 256), 0);
    assert_int_equal(out[0], 0x01);
    assert_int_equal(out[1], 0x00);
    assert_int_equal(alcove_frame_put_len(out, 65535), 0);
    assert_int_equal(out[0], 0xff);
    assert_int_equal(out[1], 0xff);
}

static void test_buffered_is_zero_when_idle_and_counts_partial_frames(void **state)
{
    static const uint8_t f[] = {0x00, 0x03, 'a', 'b', 'c'};
    const uint8_t *frame = NULL;
    size_t used = 0, frame_len = 0;
    alcove_frame_dec d;

    (void)state;
    alcove_frame_dec_init(&d);
    assert_int_equal(alcove_frame_buffered(&d), 0);
    assert_int_equal(alcove_frame_feed(&d, f, 0, &used, &frame, &frame_len), 0);
    assert_int_equal(used, 0);
    assert_int_equal(alcove_frame_buffered(&d), 0);
    assert_int_equal(alcove_frame_feed(&d, f, 1, &used, &frame, &frame_len), 0);
    assert_int_equal(alcove_frame_buffered(&d), 1);
    assert_null(d.buf); /* no buffer for a partial prefix */
    assert_int_equal(alcove_frame_feed(&d, f + 1, 1, &used, &frame, &frame_len), 0);
    assert_int_equal(alcove_frame_buffered(&d), 2);
    assert_null(d.buf); /* nor for a prefix with no body yet */
    assert_int_equal(alcove_frame_feed(&d, f + 2, 2, &used, &frame, &frame_len), 0);
    assert_int_equal(alcove_frame_buffered(&d), 4);
    assert_int_equal(alcove_frame_feed(&d, f + 4, 1, &used, &frame, &frame_len), 1);
    assert_int_equal(frame_len, 3);
    assert_memory_equal(frame, "abc", 3);
    assert_int_equal(alcove_frame_buffered(&d), 0);
    alcove_frame_dec_free(&d);
}

static void test_free_on_zeroed_or_freed_decoder_is_safe(void **state)
{
    alcove_frame_dec d;

    (void)state;
    memset(&d, 0, sizeof d);
    alcove_frame_dec_free(&d);
    alcove_frame_dec_free(&d);
    alcove_frame_dec_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_fed_one_byte_at_a_time),
        cmocka_unit_test(test_frames_fed_in_random_splits),
        cmocka_unit_test(test_frames_fed_all_at_once_are_returned_in_place),
        cmocka_unit_test(test_max_size_frame_65535_split_and_whole),
        cmocka_unit_test(test_zero_length_prefix_is_eproto),
        cmocka_unit_test(test_put_len_edges),
        cmocka_unit_test(test_buffered_is_zero_when_idle_and_counts_partial_frames),
        cmocka_unit_test(test_free_on_zeroed_or_freed_decoder_is_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
