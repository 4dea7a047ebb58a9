/* Padding buckets: every edge, refusal above 61439, and unpad rejecting
 * non-bucket lengths and bad padding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "keys_testutil.h"
#include "pad.h"

static uint8_t buf[ALCOVE_PAD_MAX + 64];
static uint8_t content[ALCOVE_PAD_MAX + 64];

static void pad_roundtrip(size_t len, size_t want_bucket)
{
    size_t out_len = 0, back = 0;

    for (size_t i = 0; i < len; i++)
        content[i] = (uint8_t)(i * 7 + 1);
    assert_int_equal(alcove_pad_bucket(len), want_bucket);
    assert_rc(alcove_pad(content, len, buf, sizeof buf, &out_len), 0);
    assert_int_equal(out_len, want_bucket);
    assert_int_equal(buf[len], 0x80);
    for (size_t i = len + 1; i < out_len; i++)
        assert_int_equal(buf[i], 0);
    assert_rc(alcove_unpad(buf, out_len, &back), 0);
    assert_int_equal(back, len);
    if (len != 0)
        assert_memory_equal(buf, content, len);
}

static void bucket_edges_pad_to_expected_sizes(void **state)
{
    (void)state;
    pad_roundtrip(0, 1024);
    pad_roundtrip(1, 1024);
    pad_roundtrip(1022, 1024);
    pad_roundtrip(1023, 1024);
    pad_roundtrip(1024, 4096);
    pad_roundtrip(4095, 4096);
    pad_roundtrip(4096, 16384);
    pad_roundtrip(16383, 16384);
    pad_roundtrip(16384, 61440);
    pad_roundtrip(61439, 61440);
}

static void content_of_61440_bytes_is_refused(void **state)
{
    size_t out_len = 99;

    (void)state;
    assert_int_equal(alcove_pad_bucket(61440), 0);
    assert_rc(alcove_pad(content, 61440, buf, sizeof buf, &out_len),
              ALCOVE_ETOOBIG);
    assert_int_equal(out_len, 0);
    assert_rc(alcove_pad(content, 100000, buf, sizeof buf, &out_len),
              ALCOVE_ETOOBIG);
}

static void pad_refuses_small_output_buffer(void **state)
{
    size_t out_len;

    (void)state;
    assert_rc(alcove_pad(content, 10, buf, 1023, &out_len), ALCOVE_ETOOBIG);
    assert_rc(alcove_pad(content, 10, buf, 1024, &out_len), 0);
}

static void pad_works_in_place(void **state)
{
    size_t out_len, back;

    (void)state;
    memcpy(buf, "hello", 5);
    assert_rc(alcove_pad(buf, 5, buf, sizeof buf, &out_len), 0);
    assert_int_equal(out_len, 1024);
    assert_rc(alcove_unpad(buf, out_len, &back), 0);
    assert_int_equal(back, 5);
    assert_memory_equal(buf, "hello", 5);
}

static void unpad_rejects_non_bucket_lengths(void **state)
{
    static const size_t bad[] = {0,    1,     1023,  1025,  2048,  4095,
                                 4097, 16383, 16385, 61439, 61441, 65536};
    size_t out_len, back = 77;

    (void)state;
    assert_rc(alcove_pad(content, 3, buf, sizeof buf, &out_len), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_rc(alcove_unpad(buf, bad[i], &back), ALCOVE_ECORRUPT);
        assert_int_equal(back, 0);
    }
}

static void unpad_rejects_bad_padding(void **state)
{
    size_t out_len, back;

    (void)state;
    /* All zeros: no 0x80 marker. */
    memset(buf, 0, 1024);
    assert_rc(alcove_unpad(buf, 1024, &back), ALCOVE_ECORRUPT);
    /* A non-zero byte after the marker. */
    assert_rc(alcove_pad(content, 10, buf, sizeof buf, &out_len), 0);
    buf[1000] = 0x01;
    assert_rc(alcove_unpad(buf, out_len, &back), ALCOVE_ECORRUPT);
    /* Last byte not zero and not 0x80. */
    assert_rc(alcove_pad(content, 10, buf, sizeof buf, &out_len), 0);
    buf[out_len - 1] = 0x7F;
    assert_rc(alcove_unpad(buf, out_len, &back), ALCOVE_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bucket_edges_pad_to_expected_sizes),
        cmocka_unit_test(content_of_61440_bytes_is_refused),
        cmocka_unit_test(pad_refuses_small_output_buffer),
        cmocka_unit_test(pad_works_in_place),
        cmocka_unit_test(unpad_rejects_non_bucket_lengths),
        cmocka_unit_test(unpad_rejects_bad_padding),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
