/* Fuzz target: the receive path of an ordinary message (keys/envelope.h
 * alcove_envelope_kind and alcove_envelope_open, i.e. Envelope and
 * RatchetMessage parsing, the ratchet header, the receiving rules and the
 * padding), against a real session (fuzz_session.h).
 *
 * Input: a mode byte, then
 *   mode 0  a blob as the relay would deliver it, opened with B's session;
 *   mode 1  A seals: [skip u16][content...]: A's sending chain first
 *           advances `skip` % 1100 messages (which B never sees), then A
 *           seals the rest of the input as Content; B must open it exactly
 *           when at most 1000 keys are skipped (ALCOVE_ELIMIT beyond) and
 *           get the same bytes back;
 *   mode 2  A encrypts the rest of the input as a raw ratchet plaintext
 *           (no padding), so authentic-but-corrupt padding is reached.
 * Oracles: only documented errors; *next is set exactly on success and on
 * ALCOVE_ECORRUPT; after a success the same blob is a duplicate
 * (ALCOVE_EDUP) for the new state; every new state serializes and
 * deserializes to the same bytes; the state opened with never changes. */
#include "fuzz_session.h"

static fuzz_session S;
static uint8_t sb_bytes[ALCOVE_RATCHET_STATE_MAX];
static size_t sb_len;
static uint8_t content[ALCOVE_PAD_MAX_CONTENT];
static uint8_t blob[ALCOVE_ENVELOPE_MAX + 1024];

static void check_state_round_trip(const alcove_ratchet *r)
{
    static uint8_t a[ALCOVE_RATCHET_STATE_MAX], b[ALCOVE_RATCHET_STATE_MAX];
    alcove_ratchet *c = NULL;
    size_t na = 0, nb = 0;

    FUZZ_CHECK(alcove_ratchet_serialize(r, a, sizeof a, &na) == 0);
    FUZZ_CHECK(na == alcove_ratchet_serialized_size(r));
    FUZZ_CHECK(alcove_ratchet_deserialize(a, na, &c) == 0);
    FUZZ_CHECK(alcove_ratchet_serialize(c, b, sizeof b, &nb) == 0);
    FUZZ_CHECK(na == nb && memcmp(a, b, na) == 0);
    alcove_ratchet_free(c);
}

static void check_sb_unchanged(void)
{
    static uint8_t now[ALCOVE_RATCHET_STATE_MAX];
    size_t n = 0;
    FUZZ_CHECK(alcove_ratchet_serialize(S.sb, now, sizeof now, &n) == 0);
    FUZZ_CHECK(n == sb_len && memcmp(now, sb_bytes, n) == 0);
}

/* Opens blob with sb and checks the documented outcome; returns the code
 * and leaves the plaintext in content[0..*clen). */
static int open_checked(const uint8_t *b, size_t n, size_t *clen)
{
    alcove_ratchet *next = NULL, *again = NULL;
    int kind = alcove_envelope_kind(b, n);
    int rc = alcove_envelope_open(S.sb, b, n, content, sizeof content, clen, &next);

    switch (rc) {
    case 0:
        FUZZ_CHECK(kind == ALCOVE_ENVELOPE_MESSAGE);
        FUZZ_CHECK(next != NULL && *clen <= ALCOVE_PAD_MAX_CONTENT);
        break;
    case ALCOVE_ECORRUPT:
        FUZZ_CHECK(kind == ALCOVE_ENVELOPE_MESSAGE);
        FUZZ_CHECK(next != NULL && *clen == 0);
        break;
    case ALCOVE_EMALFORMED:
    case ALCOVE_EVERSION:
    case ALCOVE_ETOOBIG:
    case ALCOVE_EDUP:
    case ALCOVE_ELIMIT:
    case ALCOVE_EDECRYPT:
    case ALCOVE_EBADKEY:
        FUZZ_CHECK(next == NULL && *clen == 0);
        if (rc == ALCOVE_EVERSION || rc == ALCOVE_ETOOBIG)
            FUZZ_CHECK(kind == rc);
        break;
    default:
        fprintf(stderr, "fuzz: unexpected %d (%s)\n", rc, alcove_strerror(rc));
        FUZZ_CHECK(0);
    }
    if (next != NULL) {
        size_t c2 = 0;
        check_state_round_trip(next);
        /* The same ciphertext again is a duplicate for the new state. */
        FUZZ_CHECK(alcove_envelope_open(next, b, n, blob + ALCOVE_ENVELOPE_MAX,
                                        0, &c2, &again) == ALCOVE_ETOOBIG);
        FUZZ_CHECK(alcove_envelope_open(next, b, n, content, sizeof content, &c2,
                                        &again) == ALCOVE_EDUP);
        FUZZ_CHECK(again == NULL);
        alcove_ratchet_free(next);
    }
    check_sb_unchanged();
    return rc;
}

static void a_seals(fuzz_in *in)
{
    alcove_ratchet *a = NULL;
    unsigned skip = fuzz_u16(in) % 1100u;
    uint8_t hdr[ALCOVE_RATCHET_HEADER_BYTES], ct[ALCOVE_RATCHET_TAG_BYTES];
    size_t ct_len, n = 0, clen = 0;
    int rc;

    FUZZ_CHECK(alcove_ratchet_clone(S.sa, &a) == 0);
    for (unsigned i = 0; i < skip; i++)
        FUZZ_CHECK(alcove_ratchet_encrypt(a, ct, 0, hdr,
                                          ct, sizeof ct, &ct_len) == 0);
    rc = alcove_envelope_seal(a, in->p, in->n, blob, sizeof blob, &n);
    if (in->n > ALCOVE_PAD_MAX_CONTENT) {
        FUZZ_CHECK(rc == ALCOVE_ETOOBIG);
    } else {
        FUZZ_CHECK(rc == 0);
        rc = open_checked(blob, n, &clen);
        /* sb expects n = 0 of this chain: `skip` keys are skipped. */
        if (skip <= ALCOVE_RATCHET_MAX_SKIP) {
            FUZZ_CHECK(rc == 0);
            FUZZ_CHECK(clen == in->n && (clen == 0 || memcmp(content, in->p, clen) == 0));
        } else {
            FUZZ_CHECK(rc == ALCOVE_ELIMIT);
        }
    }
    alcove_ratchet_free(a);
}

static void a_encrypts_raw(fuzz_in *in)
{
    Alcove__E2e__Envelope env = ALCOVE__E2E__ENVELOPE__INIT;
    Alcove__E2e__RatchetMessage rm = ALCOVE__E2E__RATCHET_MESSAGE__INIT;
    static uint8_t ct[ALCOVE_RATCHET_MAX_PLAINTEXT + ALCOVE_RATCHET_TAG_BYTES];
    uint8_t hdr[ALCOVE_RATCHET_HEADER_BYTES];
    alcove_ratchet *a = NULL;
    size_t ct_len = 0, n, clen = 0;
    int rc;

    if (in->n > ALCOVE_PAD_MAX)
        return;
    FUZZ_CHECK(alcove_ratchet_clone(S.sa, &a) == 0);
    FUZZ_CHECK(alcove_ratchet_encrypt(a, in->p, in->n, hdr, ct, sizeof ct, &ct_len) == 0);
    env.has_version = 1;
    env.version = ALCOVE_ENVELOPE_VERSION;
    env.kind_case = ALCOVE__E2E__ENVELOPE__KIND_MESSAGE;
    env.message = &rm;
    rm.has_header = rm.has_ciphertext = 1;
    rm.header.data = hdr;
    rm.header.len = sizeof hdr;
    rm.ciphertext.data = ct;
    rm.ciphertext.len = ct_len;
    n = alcove__e2e__envelope__pack(&env, blob);
    rc = open_checked(blob, n, &clen);
    /* Authentic: either properly padded to a bucket, or corrupt. */
    if (alcove_pad_is_bucket(in->n)) {
        size_t want = 0;
        if (alcove_unpad(in->p, in->n, &want) == 0)
            FUZZ_CHECK(rc == 0 && clen == want);
        else
            FUZZ_CHECK(rc == ALCOVE_ECORRUPT);
    } else {
        FUZZ_CHECK(rc == ALCOVE_ECORRUPT);
    }
    alcove_ratchet_free(a);
}

static void write_seeds(const char *dir)
{
    uint8_t s[1 + ALCOVE_ENVELOPE_MAX];
    char name[32];

    for (int i = 0; i < FS_NMSGS; i++) {
        s[0] = 0;
        memcpy(s + 1, S.msgs[i], S.msg_len[i]);
        snprintf(name, sizeof name, "msg-%d", i);
        fuzz_write_seed(dir, name, s, 1 + S.msg_len[i]);
    }
    s[0] = 0;
    memcpy(s + 1, S.intro, S.intro_len);
    fuzz_write_seed(dir, "intro", s, 1 + S.intro_len);
    {
        uint8_t c[300];
        size_t n = fs_text_content("sealed by the harness", c + 3, sizeof c - 3);
        c[0] = 1;
        c[1] = 0;
        c[2] = 5; /* skip 5 */
        fuzz_write_seed(dir, "seal-skip5", c, 3 + n);
        c[1] = 0x03;
        c[2] = 0xE8; /* skip 1000: the most allowed */
        fuzz_write_seed(dir, "seal-skip1000", c, 3 + n);
    }
    {
        uint8_t raw[1 + 1024];
        size_t cl = fs_text_content("raw", raw + 1, sizeof raw - 1);
        raw[0] = 2;
        raw[1 + cl] = 0x80;
        memset(raw + 2 + cl, 0, sizeof raw - 2 - cl);
        fuzz_write_seed(dir, "raw-padded-1024", raw, sizeof raw);
        raw[1 + cl] = 0x81;
        fuzz_write_seed(dir, "raw-bad-padding", raw, sizeof raw);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_sodium_init("fuzz_envelope");
    fuzz_session_make(&S, "alcove fuzz session");
    FUZZ_CHECK(alcove_ratchet_serialize(S.sb, sb_bytes, sizeof sb_bytes, &sb_len) == 0);
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
    size_t clen = 0;

    if (in.n > ALCOVE_ENVELOPE_MAX + 64)
        return -1;
    fuzz_rng_reset("fuzz_envelope/input");
    switch (mode % 3) {
    case 0: (void)open_checked(in.p, in.n, &clen); break;
    case 1: a_seals(&in); break;
    default: a_encrypts_raw(&in); break;
    }
    return 0;
}
