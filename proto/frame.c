/* Streaming decoder for 2-byte big-endian length-prefixed frames.
 *
 * States, all visible in alcove_frame_dec:
 *   reading the prefix    hdr_have < 2
 *   reading a body        hdr_have == 2, need = body length, have = bytes in buf
 *   delivered from buf    hdr_have == 0 and buf != NULL: the last frame was
 *                         handed out from buf; it stays valid until the next
 *                         call, which frees it first.
 * A body that is whole inside one feed is returned as a pointer into the
 * caller's bytes; only a body split across feeds is copied, into a buffer of
 * exactly `need` (<= 65535) bytes. */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

_Static_assert(ALCOVE_FRAME_MAX == 0xFFFFu, "a 2-byte prefix holds at most 65535");

void alcove_frame_dec_init(alcove_frame_dec *d)
{
    memset(d, 0, sizeof *d);
}

/* Forget the frame that was delivered from buf on the previous call. */
static void release_delivered(alcove_frame_dec *d)
{
    if (d->hdr_have == 0 && d->buf != NULL) {
        free(d->buf);
        d->buf = NULL;
    }
}

/* Back to "reading the prefix", keeping buf if it holds the frame just
 * delivered (release_delivered frees it on the next call). */
static void reset_for_next(alcove_frame_dec *d)
{
    d->hdr_have = 0;
    d->need = 0;
    d->have = 0;
}

int alcove_frame_feed(alcove_frame_dec *d, const uint8_t *data, size_t len,
                      size_t *consumed, const uint8_t **frame,
                      size_t *frame_len)
{
    size_t pos = 0;

    *consumed = 0;
    *frame = NULL;
    *frame_len = 0;
    release_delivered(d);

    while (d->hdr_have < 2 && pos < len) {
        d->hdr[d->hdr_have++] = data[pos++];
        if (d->hdr_have == 2) {
            d->need = ((uint32_t)d->hdr[0] << 8) | d->hdr[1];
            d->have = 0;
            if (d->need == 0) {
                *consumed = pos;
                return ALCOVE_EPROTO;
            }
        }
    }
    if (d->hdr_have < 2) {
        *consumed = pos;
        return 0;
    }

    size_t avail = len - pos;
    if (d->buf == NULL) {
        if (avail >= d->need) {
            /* The whole body is in this feed: hand it out in place. */
            *frame = data + pos;
            *frame_len = d->need;
            *consumed = pos + d->need;
            reset_for_next(d);
            return 1;
        }
        if (avail == 0) {
            *consumed = pos;
            return 0;
        }
        /* need <= 65535: the prefix is two bytes. */
        d->buf = malloc(d->need);
        if (d->buf == NULL) {
            *consumed = pos;
            return ALCOVE_ENOMEM;
        }
        d->have = 0;
    }

    size_t want = d->need - d->have;
    size_t take = avail < want ? avail : want;
    if (take > 0) {
        memcpy(d->buf + d->have, data + pos, take);
    }
    d->have += (uint32_t)take;
    pos += take;
    *consumed = pos;
    if (d->have < d->need) {
        return 0;
    }
    *frame = d->buf;
    *frame_len = d->need;
    reset_for_next(d); /* buf is now "delivered" and freed on the next call */
    return 1;
}

size_t alcove_frame_buffered(const alcove_frame_dec *d)
{
    if (d->hdr_have < 2) {
        return d->hdr_have;
    }
    return (size_t)ALCOVE_FRAME_HDR + d->have;
}

void alcove_frame_dec_free(alcove_frame_dec *d)
{
    if (d == NULL) {
        return;
    }
    free(d->buf);
    memset(d, 0, sizeof *d);
}

int alcove_frame_put_len(uint8_t out[2], size_t len)
{
    if (len == 0) {
        return ALCOVE_EINVAL;
    }
    if (len > ALCOVE_FRAME_MAX) {
        return ALCOVE_ETOOBIG;
    }
    out[0] = (uint8_t)(len >> 8);
    out[1] = (uint8_t)(len & 0xFFu);
    return 0;
}
