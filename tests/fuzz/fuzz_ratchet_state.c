/* Fuzz target: alcove_ratchet_deserialize (keys/ratchet.h), the parser of
 * ratchet states read back from the client's local store.  The store is
 * sealed, but a damaged or old file must still be refused cleanly, never
 * crash the client or make it loop.
 *
 * Input: serialized state bytes.  Seeds are real states (fuzz_session.h):
 * B after the intro, after skipping keys, after a new chain.
 * Oracles: only documented errors; a state that loads serializes back to
 * exactly the input (the format has one encoding per state); a loaded state
 * can be cloned and used: it decrypts the session's messages without
 * crashing (whatever the result) and, when it can send, encrypts. */
#include "fuzz_session.h"

static fuzz_session S;
static uint8_t buf[ALCOVE_RATCHET_STATE_MAX + 64];
static uint8_t pt[4096];

static void use(const alcove_ratchet *r)
{
    alcove_ratchet *c = NULL, *next = NULL;
    uint8_t hdr[ALCOVE_RATCHET_HEADER_BYTES], ct[64];
    size_t n = 0;

    FUZZ_CHECK(alcove_ratchet_clone(r, &c) == 0);
    FUZZ_CHECK(alcove_ratchet_stored_keys(c) <= ALCOVE_RATCHET_MAX_STORED);
    for (int i = 0; i < FS_NMSGS; i++) {
        Alcove__E2e__Envelope *env =
            alcove__e2e__envelope__unpack(NULL, S.msg_len[i], S.msgs[i]);
        FUZZ_CHECK(env != NULL && env->message != NULL);
        int rc = alcove_ratchet_decrypt(c, env->message->header.data,
                                        env->message->header.len,
                                        env->message->ciphertext.data,
                                        env->message->ciphertext.len, pt,
                                        sizeof pt, &n, &next);
        FUZZ_CHECK((rc == 0) == (next != NULL));
        if (next != NULL) {
            FUZZ_CHECK(alcove_ratchet_stored_keys(next) <= ALCOVE_RATCHET_MAX_STORED);
            alcove_ratchet_free(c);
            c = next;
            next = NULL;
        }
        alcove__e2e__envelope__free_unpacked(env, NULL);
    }
    if (alcove_ratchet_can_send(c)) {
        int rc = alcove_ratchet_encrypt(c, (const uint8_t *)"x", 1, hdr, ct,
                                        sizeof ct, &n);
        FUZZ_CHECK(rc == 0 || rc == ALCOVE_ELIMIT);
    }
    alcove_ratchet_free(c);
}

static void put_state(const char *dir, const char *name, const alcove_ratchet *r)
{
    size_t n = 0;
    FUZZ_CHECK(alcove_ratchet_serialize(r, buf, sizeof buf, &n) == 0);
    fuzz_write_seed(dir, name, buf, n);
}

static void write_seeds(const char *dir)
{
    static uint8_t content[ALCOVE_PAD_MAX_CONTENT];
    alcove_ratchet *r = NULL, *next = NULL;
    size_t clen = 0;

    put_state(dir, "bob-after-intro", S.sb);
    put_state(dir, "alice-after-intro", S.sa);
    /* B reads msg 2 (n = 3) first: two skipped keys. */
    FUZZ_CHECK(alcove_envelope_open(S.sb, S.msgs[2], S.msg_len[2], content,
                                    sizeof content, &clen, &r) == 0);
    put_state(dir, "bob-skipped-2", r);
    /* Then the new chain (pn = 4, n = 1): more skipped keys, two digests. */
    FUZZ_CHECK(alcove_envelope_open(r, S.msgs[4], S.msg_len[4], content,
                                    sizeof content, &clen, &next) == 0);
    put_state(dir, "bob-new-chain", next);
    alcove_ratchet_free(r);
    alcove_ratchet_free(next);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_sodium_init("fuzz_ratchet_state");
    fuzz_session_make(&S, "alcove fuzz session");
    if (fuzz_seed_dir() != NULL) {
        write_seeds(fuzz_seed_dir());
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    alcove_ratchet *r = NULL;
    size_t n = 0;
    int rc;

    if (size > sizeof buf)
        return -1;
    fuzz_rng_reset("fuzz_ratchet_state/input");
    rc = alcove_ratchet_deserialize(data, size, &r);
    switch (rc) {
    case 0:
        FUZZ_CHECK(r != NULL);
        FUZZ_CHECK(alcove_ratchet_serialized_size(r) == size);
        FUZZ_CHECK(alcove_ratchet_serialize(r, buf, sizeof buf, &n) == 0);
        FUZZ_CHECK(n == size && memcmp(buf, data, n) == 0);
        use(r);
        alcove_ratchet_free(r);
        break;
    case ALCOVE_ETRUNC:
    case ALCOVE_EFORMAT:
    case ALCOVE_ECORRUPT:
        FUZZ_CHECK(r == NULL);
        break;
    default:
        fprintf(stderr, "fuzz: unexpected %d (%s)\n", rc, alcove_strerror(rc));
        FUZZ_CHECK(0);
    }
    return 0;
}
