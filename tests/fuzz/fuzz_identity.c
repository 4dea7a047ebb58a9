/* Fuzz target: the identity (keystore) file loader, keys/identity.h
 * alcove_identity_decode, and alcove_identity_load through a real file.
 *
 * Input: [flags u8][pass_len u8][pass][file bytes].  flags bit 0: go through
 * a file on disk (alcove_identity_load) instead of the buffer.
 *
 * Argon2id runs before the authentication tag is checked, and the decoder
 * accepts costs up to 16 passes and 1 GiB (its cap, checked before any work).
 * Costs inside the cap but above 3 passes or 64 KiB would only make the
 * fuzzer time Argon2 itself, so those inputs are skipped; costs outside the
 * cap are kept (they must be refused without deriving anything).  The seeds
 * use crypto_pwhash_OPSLIMIT_MIN / MEMLIMIT_MIN, so each run is fast.
 *
 * Oracles: only the documented errors, in the documented order (checked
 * against the header here); on success the keys are consistent (the secret
 * re-encodes and decodes to the same public keys). */
#include "fuzz_common.h"

#include <unistd.h>

#include "err.h"
#include "identity.h"

#define OPS_FAST 3u
#define MEM_FAST ((uint64_t)64u * 1024u)

static alcove_identity *known;
static char path[256];

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int cost_in_cap(uint64_t ops, uint64_t mem)
{
    return ops >= crypto_pwhash_argon2id_OPSLIMIT_MIN &&
           ops <= ALCOVE_IDENTITY_OPSLIMIT_MAX &&
           mem >= crypto_pwhash_argon2id_MEMLIMIT_MIN &&
           mem <= ALCOVE_IDENTITY_MEMLIMIT_MAX;
}

/* The error the header alone decides, or 1 when only Argon2id and the tag
 * can tell. */
static int expected(const uint8_t *b, size_t n)
{
    size_t k = n < 8 ? n : 8;
    if (memcmp(b, ALCOVE_IDENTITY_TAG, k) != 0)
        return ALCOVE_EFORMAT;
    if (n <= 8)
        return ALCOVE_ETRUNC;
    if (b[8] != ALCOVE_IDENTITY_VERSION)
        return ALCOVE_EFORMAT;
    if (n <= 9)
        return ALCOVE_ETRUNC;
    if (b[9] != 1)
        return ALCOVE_EFORMAT;
    if (n < ALCOVE_IDENTITY_FILE_BYTES)
        return ALCOVE_ETRUNC;
    if (n > ALCOVE_IDENTITY_FILE_BYTES)
        return ALCOVE_ECORRUPT;
    if (!cost_in_cap(be64(b + 10), be64(b + 18)))
        return ALCOVE_ECORRUPT;
    return 1;
}

static void check_keys(const alcove_identity *id, const char *pass, size_t plen)
{
    uint8_t file[ALCOVE_IDENTITY_FILE_BYTES];
    alcove_identity *again = NULL;

    FUZZ_CHECK(alcove_identity_encode(id, pass, plen,
                                      crypto_pwhash_argon2id_OPSLIMIT_MIN,
                                      crypto_pwhash_argon2id_MEMLIMIT_MIN, file) == 0);
    FUZZ_CHECK(alcove_identity_decode(file, sizeof file, pass, plen, &again) == 0);
    FUZZ_CHECK(memcmp(alcove_identity_sig_pub(id), alcove_identity_sig_pub(again),
                      ALCOVE_SIG_PUB_BYTES) == 0);
    FUZZ_CHECK(memcmp(alcove_identity_dh_pub(id), alcove_identity_dh_pub(again),
                      ALCOVE_DH_BYTES) == 0);
    FUZZ_CHECK(memcmp(alcove_identity_store_key(id), alcove_identity_store_key(again),
                      ALCOVE_STORE_KEY_BYTES) == 0);
    alcove_identity_free(again);
}

static void write_seeds(const char *dir)
{
    uint8_t seed[2 + 255 + ALCOVE_IDENTITY_FILE_BYTES];
    static const char *const passes[] = {"", "correct horse battery staple"};

    for (int i = 0; i < 2; i++) {
        size_t plen = strlen(passes[i]);
        char name[32];
        seed[0] = (uint8_t)(i == 1); /* the second one through a file */
        seed[1] = (uint8_t)plen;
        memcpy(seed + 2, passes[i], plen);
        FUZZ_CHECK(alcove_identity_encode(known, passes[i], plen,
                                          crypto_pwhash_argon2id_OPSLIMIT_MIN,
                                          crypto_pwhash_argon2id_MEMLIMIT_MIN,
                                          seed + 2 + plen) == 0);
        snprintf(name, sizeof name, "identity-%d", i);
        fuzz_write_seed(dir, name, seed, 2 + plen + ALCOVE_IDENTITY_FILE_BYTES);
    }
    /* A truncated file and a cost over the cap. */
    seed[0] = 0;
    seed[1] = 0;
    FUZZ_CHECK(alcove_identity_encode(known, "", 0, crypto_pwhash_argon2id_OPSLIMIT_MIN,
                                      crypto_pwhash_argon2id_MEMLIMIT_MIN, seed + 2) == 0);
    fuzz_write_seed(dir, "truncated", seed, 2 + 100);
    seed[2 + 10 + 7] = 17; /* opslimit 17 > 16 */
    fuzz_write_seed(dir, "ops-over-cap", seed, 2 + ALCOVE_IDENTITY_FILE_BYTES);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_sodium_init("fuzz_identity");
    FUZZ_CHECK(alcove_identity_generate(&known) == 0);
    if (fuzz_seed_dir() != NULL) {
        write_seeds(fuzz_seed_dir());
        exit(0);
    }
    snprintf(path, sizeof path, "%s/alcove-fuzz-identity-%ld",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (long)getpid());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    uint8_t flags = fuzz_u8(&in);
    size_t plen = 0;
    const char *pass = (const char *)fuzz_bytes(&in, fuzz_u8(&in), &plen);
    alcove_identity *id = NULL;
    int want, rc;

    if (in.n > 4096)
        return -1;
    want = expected(in.p, in.n);
    if (want == 1 && (be64(in.p + 10) > OPS_FAST || be64(in.p + 18) > MEM_FAST))
        return -1; /* valid but slow costs: only times Argon2id */
    fuzz_rng_reset("fuzz_identity/input");
    if (flags & 1) {
        FILE *f = fopen(path, "wb");
        FUZZ_CHECK(f != NULL);
        FUZZ_CHECK(in.n == 0 || fwrite(in.p, 1, in.n, f) == in.n);
        FUZZ_CHECK(fclose(f) == 0);
        rc = alcove_identity_load(path, pass, plen, &id);
        unlink(path);
        /* load refuses a file larger than any keystore before decoding. */
        if (in.n > ALCOVE_IDENTITY_FILE_BYTES + 1)
            want = ALCOVE_ECORRUPT;
    } else {
        rc = alcove_identity_decode(in.p, in.n, pass, plen, &id);
    }
    if (want == 1) {
        FUZZ_CHECK(rc == 0 || rc == ALCOVE_EPASS || rc == ALCOVE_ECORRUPT);
    } else {
        if (rc != want)
            fprintf(stderr, "fuzz: got %d (%s), want %d (%s)\n", rc,
                    alcove_strerror(rc), want, alcove_strerror(want));
        FUZZ_CHECK(rc == want);
    }
    FUZZ_CHECK((rc == 0) == (id != NULL));
    if (id != NULL) {
        check_keys(id, pass, plen);
        alcove_identity_free(id);
    }
    return 0;
}
