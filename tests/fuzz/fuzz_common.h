/* Shared helpers for alcove's libFuzzer targets (header only).
 *
 *  - A deterministic randombytes implementation: every target installs it
 *    before sodium_init(), and resets it at the start of each input, so an
 *    input always takes the same path (a crash reproduces from its file) and
 *    the checked-in seeds, made with the same generator, stay valid.
 *  - A cursor for slicing structured inputs.
 *  - FUZZ_CHECK: an oracle that aborts (libFuzzer then keeps the input).
 *  - Seed writing: run any target with ALCOVE_FUZZ_WRITE_SEEDS=DIR and its
 *    LLVMFuzzerInitialize writes that target's seeds into DIR and exits
 *    (scripts/fuzz --seeds refreshes tests/fuzz/corpus/ that way). */
#ifndef ALCOVE_FUZZ_COMMON_H
#define ALCOVE_FUZZ_COMMON_H

#include <errno.h>
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* --- deterministic randomness ------------------------------------------- */

static uint8_t fuzz_rng_seed_[randombytes_SEEDBYTES];
static uint64_t fuzz_rng_ctr_;

static inline void fuzz_rng_buf_(void *const buf, const size_t size)
{
    uint8_t seed[randombytes_SEEDBYTES];

    /* One ChaCha20 stream per call, keyed by (base seed, call counter). */
    memcpy(seed, fuzz_rng_seed_, sizeof seed);
    for (int i = 0; i < 8; i++)
        seed[i] ^= (uint8_t)(fuzz_rng_ctr_ >> (8 * i));
    fuzz_rng_ctr_++;
    randombytes_buf_deterministic(buf, size, seed);
}

static inline uint32_t fuzz_rng_random_(void)
{
    uint32_t v;
    fuzz_rng_buf_(&v, sizeof v);
    return v;
}

static inline const char *fuzz_rng_name_(void)
{
    return "alcove-fuzz-deterministic";
}

static randombytes_implementation fuzz_rng_impl_ = {
    .implementation_name = fuzz_rng_name_,
    .random = fuzz_rng_random_,
    .stir = NULL,
    .uniform = NULL,
    .buf = fuzz_rng_buf_,
    .close = NULL,
};

/* Restart the stream from `label` (any string). */
static inline void fuzz_rng_reset(const char *label)
{
    memset(fuzz_rng_seed_, 0, sizeof fuzz_rng_seed_);
    crypto_generichash(fuzz_rng_seed_, sizeof fuzz_rng_seed_,
                       (const unsigned char *)label, strlen(label), NULL, 0);
    fuzz_rng_ctr_ = 0;
}

/* Install the deterministic generator and initialise libsodium.  Must run
 * before anything else touches libsodium. */
static inline void fuzz_sodium_init(const char *label)
{
    if (randombytes_set_implementation(&fuzz_rng_impl_) != 0 ||
        sodium_init() < 0) {
        fprintf(stderr, "fuzz: cannot initialise libsodium\n");
        abort();
    }
    fuzz_rng_reset(label);
}

/* --- input cursor ---------------------------------------------------------- */

typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in;

static inline uint8_t fuzz_u8(fuzz_in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint16_t fuzz_u16(fuzz_in *in)
{
    uint16_t hi = fuzz_u8(in);
    return (uint16_t)(hi << 8 | fuzz_u8(in));
}

static inline uint32_t fuzz_u32(fuzz_in *in)
{
    uint32_t hi = fuzz_u16(in);
    return hi << 16 | fuzz_u16(in);
}

static inline uint64_t fuzz_u64(fuzz_in *in)
{
    uint64_t hi = fuzz_u32(in);
    return hi << 32 | fuzz_u32(in);
}

/* Up to `want` bytes (fewer at the end of the input); *got receives the
 * count.  The pointer is into the input. */
static inline const uint8_t *fuzz_bytes(fuzz_in *in, size_t want, size_t *got)
{
    const uint8_t *p = in->p;
    size_t k = want < in->n ? want : in->n;
    in->p += k;
    in->n -= k;
    *got = k;
    return p;
}

/* --- oracles ----------------------------------------------------------- */

#define FUZZ_CHECK(cond)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz: %s:%d: check failed: %s\n", __FILE__,       \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* --- seeds -------------------------------------------------------------- */

/* The seed directory when this run only writes seeds, else NULL. */
static inline const char *fuzz_seed_dir(void)
{
    const char *d = getenv("ALCOVE_FUZZ_WRITE_SEEDS");
    return d != NULL && *d != '\0' ? d : NULL;
}

static inline void fuzz_write_seed(const char *dir, const char *name,
                            const void *data, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) ||
        fclose(f) != 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

#endif
