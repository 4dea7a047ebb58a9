/* Padding of serialized Content before the ratchet encrypts it (DESIGN.md
 * section 5): ISO/IEC 7816-4 (sodium_pad: 0x80 then zeros) to the smallest
 * bucket of 1024, 4096, 16384 or 61440 bytes that holds the content plus at
 * least one padding byte.  The relay sees only these four sizes. */
#ifndef ALCOVE_PAD_H
#define ALCOVE_PAD_H

#include <stddef.h>
#include <stdint.h>

#define ALCOVE_PAD_MAX 61440u                        /* largest bucket */
#define ALCOVE_PAD_MAX_CONTENT (ALCOVE_PAD_MAX - 1u) /* 61439 */

/* The bucket content_len bytes pad to, or 0 when content_len exceeds
 * ALCOVE_PAD_MAX_CONTENT. */
size_t alcove_pad_bucket(size_t content_len);

/* 1 when len is one of the four bucket sizes, else 0. */
int alcove_pad_is_bucket(size_t len);

/* Pad in[0..len) into out (cap bytes; in and out may be the same buffer).
 * Returns 0 and *out_len (the bucket), or
 *   ALCOVE_ETOOBIG  len > ALCOVE_PAD_MAX_CONTENT (refused at the sender), or
 *                   cap smaller than the bucket;
 *   ALCOVE_EINVAL   NULL arguments. */
int alcove_pad(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
               size_t *out_len);

/* Strip the padding of buf[0..padded_len) in place (block size = padded_len).
 * Returns 0 and *content_len, or
 *   ALCOVE_ECORRUPT  padded_len is not a bucket, or the padding is invalid;
 *   ALCOVE_EINVAL    NULL arguments. */
int alcove_unpad(const uint8_t *buf, size_t padded_len, size_t *content_len);

#endif
