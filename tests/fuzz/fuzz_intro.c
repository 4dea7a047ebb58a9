/* Fuzz target: the inviter's side of an intro (keys/envelope.h
 * alcove_intro_open): Envelope parsing, the sealed box, IntroInner parsing
 * and field checks, X3DH as responder and the first ratchet message,
 * against a real invite (fuzz_session.h).
 *
 * Input: a mode byte, then
 *   mode 0  an envelope blob as it arrives in the invite's mailbox;
 *   mode 1  IntroInner bytes, which the harness seals to the invite's
 *           prekey (anyone can: the prekey is in the invite), so the fuzzer
 *           reaches the IntroInner parser and X3DH;
 *   mode 2  Content bytes for A's alcove_intro_seal: B must open the intro
 *           and get the same bytes and A's identity keys back.
 * Oracles: only documented errors; a session, the accepter's keys and the
 * content come back exactly on success; on success with a fuzzed IntroInner
 * the returned keys are the ones it carried. */
#include "fuzz_session.h"

static fuzz_session S;
static uint8_t content[ALCOVE_PAD_MAX_CONTENT];
static uint8_t blob[ALCOVE_ENVELOPE_MAX + 1024];
static uint8_t sealed[ALCOVE_ENVELOPE_MAX + 1024];

static int open_checked(const uint8_t *b, size_t n, size_t *clen,
                        uint8_t sig[32], uint8_t dh[32])
{
    alcove_ratchet *sess = NULL;
    int rc;

    memset(sig, 0, 32);
    memset(dh, 0, 32);
    rc = alcove_intro_open(S.b, S.prekey_sk, S.inv.prekey_pub, S.inv.prekey_id,
                           b, n, sig, dh, content, sizeof content, clen, &sess);
    switch (rc) {
    case 0:
        FUZZ_CHECK(sess != NULL && *clen <= ALCOVE_PAD_MAX_CONTENT);
        FUZZ_CHECK(alcove_ratchet_can_send(sess));
        break;
    case ALCOVE_EMALFORMED:
    case ALCOVE_EVERSION:
    case ALCOVE_ETOOBIG:
    case ALCOVE_EDECRYPT:
    case ALCOVE_ENOTFOUND:
    case ALCOVE_EBADKEY:
    case ALCOVE_ECORRUPT:
    case ALCOVE_ELIMIT:
        FUZZ_CHECK(sess == NULL && *clen == 0);
        break;
    default:
        fprintf(stderr, "fuzz: unexpected %d (%s)\n", rc, alcove_strerror(rc));
        FUZZ_CHECK(0);
    }
    alcove_ratchet_free(sess);
    return rc;
}

static void seal_inner(const uint8_t *inner, size_t n)
{
    Alcove__E2e__Envelope env = ALCOVE__E2E__ENVELOPE__INIT;
    Alcove__E2e__IntroInner *in;
    uint8_t sig[32], dh[32];
    size_t len, clen = 0;
    int rc;

    if (n + crypto_box_SEALBYTES > ALCOVE_ENVELOPE_MAX)
        return;
    FUZZ_CHECK(crypto_box_seal(sealed, inner, n, S.inv.prekey_pub) == 0);
    env.has_version = 1;
    env.version = ALCOVE_ENVELOPE_VERSION;
    env.kind_case = ALCOVE__E2E__ENVELOPE__KIND_INTRO_SEALED;
    env.intro_sealed.data = sealed;
    env.intro_sealed.len = n + crypto_box_SEALBYTES;
    len = alcove__e2e__envelope__pack(&env, blob);
    rc = open_checked(blob, len, &clen, sig, dh);
    if (rc != 0)
        return;
    in = alcove__e2e__intro_inner__unpack(NULL, n, inner);
    FUZZ_CHECK(in != NULL);
    FUZZ_CHECK(in->sig_pub.len == 32 && memcmp(in->sig_pub.data, sig, 32) == 0);
    FUZZ_CHECK(in->dh_pub.len == 32 && memcmp(in->dh_pub.data, dh, 32) == 0);
    alcove__e2e__intro_inner__free_unpacked(in, NULL);
}

static void round_trip(const uint8_t *c, size_t n)
{
    alcove_ratchet *sa = NULL;
    uint8_t sig[32], dh[32];
    size_t len = 0, clen = 0;
    int rc = alcove_intro_seal(S.a, &S.inv, c, n, blob, sizeof blob, &len, &sa);

    if (n > ALCOVE_PAD_MAX_CONTENT) {
        FUZZ_CHECK(rc == ALCOVE_ETOOBIG && sa == NULL);
        return;
    }
    FUZZ_CHECK(rc == 0 && sa != NULL);
    FUZZ_CHECK(open_checked(blob, len, &clen, sig, dh) == 0);
    FUZZ_CHECK(clen == n && (n == 0 || memcmp(content, c, n) == 0));
    FUZZ_CHECK(memcmp(sig, alcove_identity_sig_pub(S.a), 32) == 0);
    FUZZ_CHECK(memcmp(dh, alcove_identity_dh_pub(S.a), 32) == 0);
    alcove_ratchet_free(sa);
}

static void write_seeds(const char *dir)
{
    static uint8_t s[1 + ALCOVE_ENVELOPE_MAX];
    size_t n = S.intro_len - 0;
    Alcove__E2e__Envelope *env;

    s[0] = 0;
    memcpy(s + 1, S.intro, S.intro_len);
    fuzz_write_seed(dir, "intro", s, 1 + S.intro_len);
    s[0] = 0;
    memcpy(s + 1, S.msgs[0], S.msg_len[0]);
    fuzz_write_seed(dir, "message-not-intro", s, 1 + S.msg_len[0]);
    /* The real IntroInner, opened with the prekey. */
    env = alcove__e2e__envelope__unpack(NULL, n, S.intro);
    FUZZ_CHECK(env != NULL && env->intro_sealed.len > crypto_box_SEALBYTES);
    n = env->intro_sealed.len - crypto_box_SEALBYTES;
    FUZZ_CHECK(crypto_box_seal_open(s + 1, env->intro_sealed.data,
                                    env->intro_sealed.len, S.inv.prekey_pub,
                                    S.prekey_sk) == 0);
    alcove__e2e__envelope__free_unpacked(env, NULL);
    s[0] = 1;
    fuzz_write_seed(dir, "inner", s, 1 + n);
    s[0] = 2;
    n = fs_text_content("hello from the harness", s + 1, sizeof s - 1);
    fuzz_write_seed(dir, "seal", s, 1 + n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_sodium_init("fuzz_intro");
    fuzz_session_make(&S, "alcove fuzz session");
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
    uint8_t sig[32], dh[32];
    size_t clen = 0;

    if (in.n > ALCOVE_ENVELOPE_MAX + 64)
        return -1;
    fuzz_rng_reset("fuzz_intro/input");
    switch (mode % 3) {
    case 0: (void)open_checked(in.p, in.n, &clen, sig, dh); break;
    case 1: seal_inner(in.p, in.n); break;
    default: round_trip(in.p, in.n); break;
    }
    return 0;
}
