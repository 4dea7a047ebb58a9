/* Fuzz target: the Noise NK handshake and transport (proto/noise.h).
 *
 * Input: a mode byte, then
 *   mode 0  arbitrary bytes as message 1 to the relay's responder (what a
 *           stranger can send a relay before anything is authenticated);
 *           if it were ever accepted the responder must also finish;
 *   mode 1  arbitrary bytes as message 2 to an initiator that sent a real
 *           message 1 (what a fake relay can send a client);
 *   mode 2  a real handshake with the initiator's ephemeral key and both
 *           payloads taken from the input, then transport messages
 *           [dir u8][len u16][plaintext][flip u16]: the sender encrypts, the
 *           receiver must decrypt to the same bytes, and must refuse the
 *           message if the bit `flip` (when below 8 * length) was flipped.
 * Both sides must agree on h and on the transport keys. */
#include "fuzz_common.h"

#include "err.h"
#include "noise.h"

static uint8_t relay_sk[32], relay_pk[32];
static uint8_t payload[ALCOVE_NOISE_MSG_MAX];
static uint8_t msg[ALCOVE_NOISE_MSG_MAX];
static uint8_t ct[ALCOVE_NOISE_MSG_MAX];
static uint8_t pt[ALCOVE_NOISE_MSG_MAX];

#define PROLOGUE (const uint8_t *)ALCOVE_NOISE_PROLOGUE, ALCOVE_NOISE_PROLOGUE_LEN

static alcove_noise_hs *responder(void)
{
    alcove_noise_hs *hs = NULL;
    FUZZ_CHECK(alcove_noise_hs_responder(&hs, relay_sk, relay_pk, PROLOGUE) == 0);
    return hs;
}

static alcove_noise_hs *initiator(void)
{
    alcove_noise_hs *hs = NULL;
    FUZZ_CHECK(alcove_noise_hs_initiator(&hs, relay_pk, PROLOGUE) == 0);
    return hs;
}

/* Responder side of the relay: read message 1, and if it is accepted,
 * write message 2 and split, as relay/conn.c does. */
static void relay_reads(const uint8_t *m, size_t n)
{
    alcove_noise_hs *hs = responder();
    alcove_noise_transport *t = NULL;
    uint8_t h[64], m2[ALCOVE_NOISE_HS2_BYTES];
    size_t plen = 0, mlen = 0;
    int rc = alcove_noise_hs_read(hs, m, n, payload, sizeof payload, &plen);

    if (rc == 0) {
        FUZZ_CHECK(plen + ALCOVE_NOISE_HS1_BYTES == n);
        FUZZ_CHECK(alcove_noise_hs_write(hs, NULL, 0, m2, sizeof m2, &mlen) == 0);
        FUZZ_CHECK(alcove_noise_hs_split(hs, &t, h) == 0);
    } else {
        FUZZ_CHECK(plen == 0);
        /* A dead handshake refuses everything. */
        FUZZ_CHECK(alcove_noise_hs_write(hs, NULL, 0, m2, sizeof m2, &mlen) ==
                   ALCOVE_ESTATE);
        FUZZ_CHECK(alcove_noise_hs_split(hs, &t, h) == ALCOVE_ESTATE);
    }
    alcove_noise_transport_free(t);
    alcove_noise_hs_free(hs);
}

static void client_reads(const uint8_t *m, size_t n)
{
    alcove_noise_hs *hs = initiator();
    alcove_noise_transport *t = NULL;
    uint8_t h[64], m1[ALCOVE_NOISE_HS1_BYTES];
    size_t plen = 0, mlen = 0;

    FUZZ_CHECK(alcove_noise_hs_write(hs, NULL, 0, m1, sizeof m1, &mlen) == 0);
    if (alcove_noise_hs_read(hs, m, n, payload, sizeof payload, &plen) == 0)
        FUZZ_CHECK(alcove_noise_hs_split(hs, &t, h) == 0);
    else
        FUZZ_CHECK(!alcove_noise_hs_done(hs));
    alcove_noise_transport_free(t);
    alcove_noise_hs_free(hs);
}

static void full(fuzz_in *in)
{
    alcove_noise_hs *ini = initiator(), *res = responder();
    alcove_noise_transport *ti = NULL, *tr = NULL;
    uint8_t hi[64], hr[64], e[32] = {0};
    const uint8_t *p;
    size_t got, len, mlen = 0, plen = 0;

    p = fuzz_bytes(in, 32, &got);
    memcpy(e, p, got);
    FUZZ_CHECK(alcove_noise_hs_set_ephemeral(ini, e) == 0);
    p = fuzz_bytes(in, fuzz_u16(in) % 512, &len);
    /* The ephemeral secret is clamped by X25519, so every 32 bytes make a
     * valid key: the handshake must go through. */
    FUZZ_CHECK(alcove_noise_hs_write(ini, p, len, msg, sizeof msg, &mlen) == 0);
    FUZZ_CHECK(mlen == ALCOVE_NOISE_HS1_BYTES + len);
    FUZZ_CHECK(alcove_noise_hs_read(res, msg, mlen, payload, sizeof payload,
                                    &plen) == 0);
    FUZZ_CHECK(plen == len && (len == 0 || memcmp(payload, p, len) == 0));
    p = fuzz_bytes(in, fuzz_u16(in) % 512, &len);
    FUZZ_CHECK(alcove_noise_hs_write(res, p, len, msg, sizeof msg, &mlen) == 0);
    FUZZ_CHECK(alcove_noise_hs_read(ini, msg, mlen, payload, sizeof payload,
                                    &plen) == 0);
    FUZZ_CHECK(plen == len && (len == 0 || memcmp(payload, p, len) == 0));
    FUZZ_CHECK(alcove_noise_hs_split(ini, &ti, hi) == 0);
    FUZZ_CHECK(alcove_noise_hs_split(res, &tr, hr) == 0);
    FUZZ_CHECK(memcmp(hi, hr, 64) == 0);

    while (in->n > 0) {
        int to_relay = fuzz_u8(in) & 1;
        size_t want = fuzz_u16(in) % (ALCOVE_NOISE_PLAINTEXT_MAX + 1);
        p = fuzz_bytes(in, want, &len);
        unsigned flip = fuzz_u16(in);
        alcove_noise_transport *s = to_relay ? ti : tr;
        alcove_noise_transport *r = to_relay ? tr : ti;
        FUZZ_CHECK(alcove_noise_encrypt(s, p, len, ct) == 0);
        int tampered = flip < 8u * (len + ALCOVE_NOISE_TAG_BYTES);
        if (tampered)
            ct[flip / 8] ^= (uint8_t)(1u << (flip % 8));
        int rc = alcove_noise_decrypt(r, ct, len + ALCOVE_NOISE_TAG_BYTES, pt);
        if (tampered) {
            FUZZ_CHECK(rc == ALCOVE_EDECRYPT);
            /* A failed decrypt leaves the nonce alone: the untampered
             * message still decrypts. */
            ct[flip / 8] ^= (uint8_t)(1u << (flip % 8));
            rc = alcove_noise_decrypt(r, ct, len + ALCOVE_NOISE_TAG_BYTES, pt);
        }
        FUZZ_CHECK(rc == 0);
        FUZZ_CHECK(len == 0 || memcmp(pt, p, len) == 0);
    }
    alcove_noise_transport_free(ti);
    alcove_noise_transport_free(tr);
    alcove_noise_hs_free(ini);
    alcove_noise_hs_free(res);
}

static void write_seeds(const char *dir)
{
    alcove_noise_hs *ini, *res;
    uint8_t seed[1 + ALCOVE_NOISE_HS1_BYTES];
    size_t mlen = 0, plen = 0;

    /* mode 0: a real message 1 (from a real initiator).  The generator is
     * reset as for an input, so this initiator's ephemeral key is the one
     * client_reads() will use, and the message 2 below is valid for it. */
    fuzz_rng_reset("fuzz_noise/input");
    ini = initiator();
    res = responder();
    seed[0] = 0;
    FUZZ_CHECK(alcove_noise_hs_write(ini, NULL, 0, seed + 1, sizeof seed - 1, &mlen) == 0);
    fuzz_write_seed(dir, "msg1-real", seed, 1 + mlen);
    /* mode 1: the responder's message 2 to exactly that message 1: it
     * authenticates, and the fuzzer mutates from a valid message. */
    FUZZ_CHECK(alcove_noise_hs_read(res, seed + 1, mlen, payload, sizeof payload, &plen) == 0);
    seed[0] = 1;
    FUZZ_CHECK(alcove_noise_hs_write(res, NULL, 0, seed + 1, sizeof seed - 1, &mlen) == 0);
    fuzz_write_seed(dir, "msg2", seed, 1 + mlen);
    alcove_noise_hs_free(ini);
    alcove_noise_hs_free(res);

    /* mode 2: ephemeral key, payloads "hi" and "", two transport messages. */
    static const uint8_t full_seed[] = {
        2,
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
        17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
        0, 2, 'h', 'i',
        0, 0,
        1, 0, 5, 'h', 'e', 'l', 'l', 'o', 0xFF, 0xFF,
        0, 0, 3, 'y', 'o', 'u', 0, 9,
    };
    fuzz_write_seed(dir, "full", full_seed, sizeof full_seed);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_sodium_init("fuzz_noise");
    crypto_box_keypair(relay_pk, relay_sk);
    if (fuzz_seed_dir() != NULL) {
        write_seeds(fuzz_seed_dir());
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);

    fuzz_rng_reset("fuzz_noise/input");
    if (in.n > ALCOVE_NOISE_MSG_MAX && mode % 3 != 2)
        return -1; /* longer than one frame: never reaches the handshake */
    switch (mode % 3) {
    case 0: relay_reads(in.p, in.n); break;
    case 1: client_reads(in.p, in.n); break;
    default: full(&in); break;
    }
    return 0;
}
