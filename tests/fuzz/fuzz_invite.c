/* Fuzz target: the invite text codec (keys/invite.h), the first thing a
 * client parses from someone else.
 *
 * Input: a mode byte, then
 *   mode 0  an invite code, as typed or pasted (white space and all);
 *   mode 1  raw InviteBody bytes, which the harness signs with the
 *           inviter's key and encodes, so the fuzzer gets past the checksum
 *           and the signature to the field checks;
 *   mode 2  fields for alcove_invite_encode (name, notice, relay address,
 *           expiry, white space to sprinkle): whatever encodes must decode
 *           to the same fields, however the code is wrapped.
 * Oracles: only documented errors; on success (and on "expired", which also
 * fills the invite) every string is NUL-terminated within its array, free of
 * control characters, and the relay address parses; on any other error the
 * output is all zeros. */
#include "fuzz_common.h"

#include "address.h"
#include "e2e.pb-c.h"
#include "err.h"
#include "identity.h"
#include "invite.h"

#define NOW_MS 1700000000000ull

static alcove_identity *inviter;
static alcove_invite template_inv;

static int clean_text(const char *s, size_t cap, int allow_nl)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        return 0; /* no terminator */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && !(allow_nl && c == '\n')) || c == 0x7F)
            return 0;
    }
    return 1;
}

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

/* Decodes and checks the documented outcome; returns the code. */
static int decode(const char *text, size_t len, alcove_invite *out)
{
    alcove_relay_addr a;
    int rc = alcove_invite_decode(text, len, NOW_MS, out);

    switch (rc) {
    case 0:
    case ALCOVE_EEXPIRED:
        FUZZ_CHECK(out->version == ALCOVE_INVITE_VERSION);
        FUZZ_CHECK(clean_text(out->display_name, sizeof out->display_name, 0));
        FUZZ_CHECK(clean_text(out->notice, sizeof out->notice, 1));
        FUZZ_CHECK(strnlen(out->relay_address, sizeof out->relay_address) <
                   sizeof out->relay_address);
        FUZZ_CHECK(alcove_addr_parse(out->relay_address, &a, NULL) == 0);
        FUZZ_CHECK(rc == 0 ? NOW_MS < out->expires_at : NOW_MS >= out->expires_at);
        break;
    case ALCOVE_ETOOBIG:
    case ALCOVE_ENOTINVITE:
    case ALCOVE_EMISTYPED:
    case ALCOVE_EMALFORMED:
    case ALCOVE_EBADSIG:
    case ALCOVE_EVERSION:
        FUZZ_CHECK(all_zero(out, sizeof *out));
        break;
    default:
        fprintf(stderr, "fuzz: unexpected %d (%s)\n", rc, alcove_strerror(rc));
        FUZZ_CHECK(0);
    }
    return rc;
}

/* Invite bytes -> code text (what alcove_invite_encode does after signing). */
static size_t encode_bytes(const uint8_t *inv, size_t n, char *out, size_t cap)
{
    uint8_t buf[ALCOVE_INVITE_TEXT_MAX], h[32];

    if (n + 4 > sizeof buf)
        return 0;
    memcpy(buf, inv, n);
    crypto_generichash(h, sizeof h, inv, n, NULL, 0);
    memcpy(buf + n, h, 4);
    memcpy(out, ALCOVE_INVITE_PREFIX, 7);
    if (alcove_b64url_encode(buf, n + 4, out + 7, cap - 7) != 0)
        return 0;
    return strlen(out);
}

static void signed_body(const uint8_t *body, size_t blen)
{
    static uint8_t msg[16 + 8192], packed[8192];
    static char code[2 * 8192];
    Alcove__E2e__Invite inv = ALCOVE__E2E__INVITE__INIT;
    uint8_t sig[ALCOVE_SIG_BYTES];
    alcove_invite out;
    size_t n;

    if (blen > 4096)
        return;
    memcpy(msg, "alcove-invite-v1", 16);
    memcpy(msg + 16, body, blen);
    FUZZ_CHECK(alcove_identity_sign(inviter, msg, 16 + blen, sig) == 0);
    inv.has_body = inv.has_signature = 1;
    inv.body.data = (uint8_t *)(uintptr_t)body;
    inv.body.len = blen;
    inv.signature.data = sig;
    inv.signature.len = sizeof sig;
    n = alcove__e2e__invite__pack(&inv, packed);
    n = encode_bytes(packed, n, code, sizeof code);
    if (n == 0 || n > ALCOVE_INVITE_TEXT_MAX)
        return;
    (void)decode(code, n, &out);
    sodium_memzero(&out, sizeof out);
}

static void take_str(fuzz_in *in, char *dst, size_t cap)
{
    size_t got;
    const uint8_t *p = fuzz_bytes(in, fuzz_u16(in) % cap, &got);
    memcpy(dst, p, got);
    dst[got] = '\0';
}

static void round_trip(fuzz_in *in)
{
    static char code[ALCOVE_INVITE_TEXT_MAX], wrapped[ALCOVE_INVITE_TEXT_MAX + 1];
    alcove_invite inv = template_inv, out;
    size_t n, w = 0;
    uint8_t flags = fuzz_u8(in);

    if (flags & 1)
        take_str(in, inv.display_name, sizeof inv.display_name);
    if (flags & 2)
        take_str(in, inv.notice, sizeof inv.notice);
    if (flags & 4)
        take_str(in, inv.relay_address, sizeof inv.relay_address);
    if (flags & 8)
        inv.expires_at = fuzz_u64(in);
    if (alcove_invite_encode(inviter, &inv, code, sizeof code) != 0)
        return;
    n = strlen(code);
    /* Wrap it: after each code character, the next input byte (if any)
     * says whether to insert white space there. */
    for (size_t i = 0; i < n && w < sizeof wrapped - 2; i++) {
        wrapped[w++] = code[i];
        uint8_t ws = fuzz_u8(in);
        if (ws >= 0xF0 && w < sizeof wrapped - 1)
            wrapped[w++] = " \t\n\r\v\f  "[ws & 7];
    }
    if (w < n) {
        w = n; /* ran out of room: decode the plain code */
        memcpy(wrapped, code, n);
    }
    int rc = decode(wrapped, w, &out);
    if (w > ALCOVE_INVITE_TEXT_MAX) {
        FUZZ_CHECK(rc == ALCOVE_ETOOBIG);
        return;
    }
    FUZZ_CHECK(rc == 0 || rc == ALCOVE_EEXPIRED);
    FUZZ_CHECK(rc == ALCOVE_EEXPIRED ? inv.expires_at <= NOW_MS : inv.expires_at > NOW_MS);
    FUZZ_CHECK(strcmp(out.display_name, inv.display_name) == 0);
    FUZZ_CHECK(strcmp(out.notice, inv.notice) == 0);
    FUZZ_CHECK(strcmp(out.relay_address, inv.relay_address) == 0);
    FUZZ_CHECK(out.expires_at == inv.expires_at);
    FUZZ_CHECK(memcmp(out.send_secret, inv.send_secret, sizeof inv.send_secret) == 0);
    FUZZ_CHECK(memcmp(out.sig_pub, alcove_identity_sig_pub(inviter), ALCOVE_SIG_PUB_BYTES) == 0);
    sodium_memzero(&out, sizeof out);
}

static void write_seeds(const char *dir)
{
    static char code[ALCOVE_INVITE_TEXT_MAX + 1];
    static uint8_t body[4096];
    Alcove__E2e__InviteBody b = ALCOVE__E2E__INVITE_BODY__INIT;
    size_t n;

    code[0] = 0;
    FUZZ_CHECK(alcove_invite_encode(inviter, &template_inv, code + 1, sizeof code - 1) == 0);
    fuzz_write_seed(dir, "code", code, 1 + strlen(code + 1));
    /* A valid body for mode 1. */
    b.has_version = 1;
    b.version = 1;
    b.relay_address = template_inv.relay_address;
    b.has_send_id = b.has_send_secret = b.has_sig_pub = b.has_dh_pub = 1;
    b.has_prekey_pub = b.has_prekey_id = b.has_expires_at = 1;
    b.send_id.data = template_inv.send_id;
    b.send_id.len = sizeof template_inv.send_id;
    b.send_secret.data = template_inv.send_secret;
    b.send_secret.len = sizeof template_inv.send_secret;
    b.sig_pub.data = (uint8_t *)(uintptr_t)alcove_identity_sig_pub(inviter);
    b.sig_pub.len = ALCOVE_SIG_PUB_BYTES;
    b.dh_pub.data = (uint8_t *)(uintptr_t)alcove_identity_dh_pub(inviter);
    b.dh_pub.len = ALCOVE_DH_BYTES;
    b.prekey_pub.data = template_inv.prekey_pub;
    b.prekey_pub.len = sizeof template_inv.prekey_pub;
    b.prekey_id.data = template_inv.prekey_id;
    b.prekey_id.len = sizeof template_inv.prekey_id;
    b.display_name = template_inv.display_name;
    b.notice = template_inv.notice;
    b.expires_at = template_inv.expires_at;
    body[0] = 1;
    n = alcove__e2e__invite_body__pack(&b, body + 1);
    fuzz_write_seed(dir, "signed-body", body, 1 + n);
    /* Mode 2: new name and notice, expiry in the past, wrapped in places. */
    {
        uint8_t s[64];
        size_t k = 0;
        s[k++] = 2;
        s[k++] = 1 | 2 | 8;
        s[k++] = 0; s[k++] = 3; memcpy(s + k, "Sam", 3); k += 3;
        s[k++] = 0; s[k++] = 6; memcpy(s + k, "hi\nyou", 6); k += 6;
        for (int i = 0; i < 8; i++)
            s[k++] = 0;
        s[k++] = 1; /* expires at 1 ms: expired */
        memset(s + k, 0xF1, 12);
        k += 12;
        fuzz_write_seed(dir, "round-trip", s, k);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_sodium_init("fuzz_invite");
    FUZZ_CHECK(alcove_identity_generate(&inviter) == 0);
    memset(&template_inv, 0, sizeof template_inv);
    snprintf(template_inv.relay_address, sizeof template_inv.relay_address, "%s",
             "alcove://AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8@relay.example.org:7700");
    randombytes_buf(template_inv.send_id, sizeof template_inv.send_id);
    randombytes_buf(template_inv.send_secret, sizeof template_inv.send_secret);
    randombytes_buf(template_inv.prekey_pub, sizeof template_inv.prekey_pub);
    randombytes_buf(template_inv.prekey_id, sizeof template_inv.prekey_id);
    snprintf(template_inv.display_name, sizeof template_inv.display_name, "Dr. Rivera");
    snprintf(template_inv.notice, sizeof template_inv.notice,
             "In a crisis call 988.\nOffice hours Mon-Thu.");
    template_inv.expires_at = NOW_MS + ALCOVE_INVITE_LIFETIME_MS;
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
    alcove_invite out;

    switch (mode % 3) {
    case 0:
        if (in.n > (size_t)2 * ALCOVE_INVITE_TEXT_MAX)
            return -1;
        (void)decode((const char *)in.p, in.n, &out);
        sodium_memzero(&out, sizeof out);
        break;
    case 1:
        signed_body(in.p, in.n);
        break;
    default:
        round_trip(&in);
        break;
    }
    return 0;
}
