/* Framing: every Noise message on a TCP stream is prefixed by its length as a
 * 2-byte big-endian integer (1..65535).  A zero length is a protocol error.
 *
 * The decoder is streaming: feed it bytes in any split (one at a time, or many
 * frames at once) and it yields whole frames.  It holds no buffer while idle;
 * a buffer of at most ALCOVE_FRAME_MAX bytes is allocated only while a frame
 * is split across feeds, and freed once that frame is delivered. */
#ifndef ALCOVE_FRAME_H
#define ALCOVE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define ALCOVE_FRAME_MAX 65535u
#define ALCOVE_FRAME_HDR 2u

typedef struct alcove_frame_dec {
    uint8_t hdr[2];
    uint8_t hdr_have; /* 0..2 bytes of the length prefix seen */
    uint32_t need;    /* body length of the current frame, once hdr_have == 2 */
    uint32_t have;    /* body bytes collected into buf */
    uint8_t *buf;     /* NULL unless a frame is split across feeds */
} alcove_frame_dec;

/* Initialise a decoder (no allocation). */
void alcove_frame_dec_init(alcove_frame_dec *d);

/* Feed bytes.  Consumes a prefix of data[0..len) and sets *consumed.
 * Returns:
 *   1  a whole frame is ready: *frame and *frame_len point to it.  The pointer is
 *      into `data` (no copy) or into the decoder's buffer; it is valid until
 *      the next call on this decoder.  Call again with the rest of the input.
 *   0  every byte was consumed and no frame is complete yet.
 *   ALCOVE_EPROTO  a zero length prefix (the stream is unusable).
 *   ALCOVE_ENOMEM  the reassembly buffer could not be allocated.
 * On error the decoder must only be freed. */
int alcove_frame_feed(alcove_frame_dec *d, const uint8_t *data, size_t len,
                      size_t *consumed, const uint8_t **frame,
                      size_t *frame_len);

/* Bytes currently buffered (for accounting; 0 when idle). */
size_t alcove_frame_buffered(const alcove_frame_dec *d);

/* Release the buffer, if any.  Safe on an initialised or zeroed decoder. */
void alcove_frame_dec_free(alcove_frame_dec *d);

/* Write the 2-byte big-endian prefix for a body of `len` bytes (1..65535).
 * Returns 0, or ALCOVE_ETOOBIG / ALCOVE_EINVAL. */
int alcove_frame_put_len(uint8_t out[2], size_t len);

#endif
