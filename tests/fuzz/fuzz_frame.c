/* Fuzz target: the streaming frame decoder (proto/frame.h), which sees every
 * byte a peer sends before anything is decrypted.
 *
 * Input: 8 bytes seeding how the rest is cut into feeds, then the stream.
 * The stream is fed twice, in one piece and in pseudo-random pieces (1 byte
 * up to the whole thing), and both runs must agree with a plain reference
 * parser: the same frames (lengths and bytes) and the same ending (clean,
 * mid-frame, or a zero-length prefix).  Every frame handed out is read in
 * full, so ASan checks its pointer and length. */
#include "fuzz_common.h"

#include "err.h"
#include "frame.h"

typedef struct outcome {
    crypto_generichash_state h; /* over len (2 bytes BE) || body of each frame */
    size_t frames;
    int end; /* 0 clean or mid-frame, else the error code */
    size_t buffered;
} outcome;

static void frame_seen(outcome *o, const uint8_t *f, size_t len)
{
    uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)len};

    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(len >= 1 && len <= ALCOVE_FRAME_MAX);
    crypto_generichash_update(&o->h, hdr, 2);
    crypto_generichash_update(&o->h, f, len);
    o->frames++;
}

/* The reference: what the decoder must yield for the whole stream. */
static void reference(const uint8_t *s, size_t n, outcome *o)
{
    size_t pos = 0;

    crypto_generichash_init(&o->h, NULL, 0, 32);
    o->frames = 0;
    o->end = 0;
    while (n - pos >= 2) {
        size_t len = (size_t)s[pos] << 8 | s[pos + 1];
        if (len == 0) {
            o->end = ALCOVE_EPROTO;
            return;
        }
        if (n - pos - 2 < len)
            break;
        frame_seen(o, s + pos + 2, len);
        pos += 2 + len;
    }
    o->buffered = n - pos;
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void decode(const uint8_t *s, size_t n, uint64_t seed, int split,
                   outcome *o)
{
    alcove_frame_dec d;
    size_t pos = 0;
    /* Feeds up to 1, 2, 4, ... 65536 bytes: some inputs go byte by byte,
     * others split frames only now and then. */
    size_t maxchunk = (size_t)1 << (seed % 17);

    crypto_generichash_init(&o->h, NULL, 0, 32);
    o->frames = 0;
    o->end = 0;
    seed |= 1;
    alcove_frame_dec_init(&d);
    while (pos < n) {
        size_t chunk = split ? 1 + (size_t)(xorshift(&seed) % maxchunk) : n;
        if (chunk > n - pos)
            chunk = n - pos;
        const uint8_t *p = s + pos;
        size_t left = chunk;
        pos += chunk;
        while (left > 0) {
            size_t used = 0, flen = 0;
            const uint8_t *f = NULL;
            int r = alcove_frame_feed(&d, p, left, &used, &f, &flen);
            FUZZ_CHECK(used <= left);
            p += used;
            left -= used;
            if (r < 0) {
                o->end = r;
                goto done;
            }
            if (r == 1) {
                frame_seen(o, f, flen);
                continue;
            }
            FUZZ_CHECK(r == 0);
            FUZZ_CHECK(left == 0); /* 0 means every byte was taken */
            FUZZ_CHECK(f == NULL && flen == 0);
        }
        FUZZ_CHECK(alcove_frame_buffered(&d) <= ALCOVE_FRAME_HDR + ALCOVE_FRAME_MAX);
    }
done:
    o->buffered = o->end == 0 ? alcove_frame_buffered(&d) : 0;
    alcove_frame_dec_free(&d);
}

static int same(outcome *a, outcome *b)
{
    uint8_t ha[32], hb[32];

    crypto_generichash_final(&a->h, ha, sizeof ha);
    crypto_generichash_final(&b->h, hb, sizeof hb);
    return a->frames == b->frames && a->end == b->end &&
           (a->end != 0 || a->buffered == b->buffered) &&
           memcmp(ha, hb, sizeof ha) == 0;
}

static void write_seeds(const char *dir)
{
    static const uint8_t one[] = {0, 0, 0, 0, 0, 0, 0, 3, /* seed */
                                  0, 3, 'a', 'b', 'c'};
    static const uint8_t two_and_half[] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 'x',
                                           0, 2, 'y', 'z', 0, 5, 'p'};
    static const uint8_t zero_len[] = {9, 9, 9, 9, 9, 9, 9, 9, 0, 1, 'q', 0, 0};
    uint8_t big[8 + 2 + 600];

    memset(big, 0x41, sizeof big);
    big[8] = 600 >> 8;
    big[9] = 600 & 0xFF;
    fuzz_write_seed(dir, "one-frame", one, sizeof one);
    fuzz_write_seed(dir, "two-and-a-half", two_and_half, sizeof two_and_half);
    fuzz_write_seed(dir, "zero-length", zero_len, sizeof zero_len);
    fuzz_write_seed(dir, "split-600", big, sizeof big);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_sodium_init("fuzz_frame");
    if (fuzz_seed_dir() != NULL) {
        write_seeds(fuzz_seed_dir());
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    uint64_t seed = fuzz_u64(&in);
    outcome ref, whole, split;

    reference(in.p, in.n, &ref);
    decode(in.p, in.n, seed, 0, &whole);
    decode(in.p, in.n, seed, 1, &split);
    /* same() finalises its arguments: compare ref with whole, then a fresh
     * reference with split. */
    FUZZ_CHECK(same(&ref, &whole));
    reference(in.p, in.n, &ref);
    FUZZ_CHECK(same(&ref, &split));
    return 0;
}
