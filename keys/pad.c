#include "pad.h"

#include <sodium.h>
#include <string.h>

#include "err.h"

static const size_t buckets[] = {1024u, 4096u, 16384u, ALCOVE_PAD_MAX};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

size_t alcove_pad_bucket(size_t content_len)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        if (content_len < buckets[i]) /* at least one padding byte */
            return buckets[i];
    return 0;
}

int alcove_pad_is_bucket(size_t len)
{
    for (size_t i = 0; i < NBUCKETS; i++)
        if (len == buckets[i])
            return 1;
    return 0;
}

int alcove_pad(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
               size_t *out_len)
{
    size_t bucket, padded = 0;

    if ((in == NULL && len != 0) || out == NULL || out_len == NULL)
        return ALCOVE_EINVAL;
    *out_len = 0;
    bucket = alcove_pad_bucket(len);
    if (bucket == 0 || cap < bucket)
        return ALCOVE_ETOOBIG;
    if (len != 0 && out != in)
        memmove(out, in, len);
    if (sodium_pad(&padded, out, len, bucket, cap) != 0 || padded != bucket)
        return ALCOVE_ETOOBIG;
    *out_len = padded;
    return 0;
}

int alcove_unpad(const uint8_t *buf, size_t padded_len, size_t *content_len)
{
    size_t len = 0;

    if (buf == NULL || content_len == NULL)
        return ALCOVE_EINVAL;
    *content_len = 0;
    if (!alcove_pad_is_bucket(padded_len))
        return ALCOVE_ECORRUPT;
    if (sodium_unpad(&len, buf, padded_len, padded_len) != 0)
        return ALCOVE_ECORRUPT;
    *content_len = len;
    return 0;
}
