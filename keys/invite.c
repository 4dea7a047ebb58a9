#include "invite.h"

#include <sodium.h>
#include <string.h>

#include "e2e.pb-c.h"
#include "err.h"
#include "pbuf.h"

#define CONTEXT "alcove-invite-v1"
#define CONTEXT_LEN (sizeof CONTEXT - 1)
#define PREFIX_LEN (sizeof ALCOVE_INVITE_PREFIX - 1)
#define CHECK_BYTES 4u
#define CHECK_HASH_BYTES 32u /* BLAKE2b-256, first 4 bytes used */
/* Decoded code bytes can never exceed 3/4 of the text. */
#define BYTES_MAX ((size_t)ALCOVE_INVITE_TEXT_MAX / 4u * 3u)
#define BODY_MAX 4096u

_Static_assert(CHECK_HASH_BYTES >= crypto_generichash_BYTES_MIN, "blake2b");
_Static_assert(BODY_MAX + 200u <= BYTES_MAX, "an invite fits a code");

/* Strict UTF-8 without C0/C1 controls, DEL, or bidirectional overrides;
 * '\n' only when allow_nl.  Returns 1 when acceptable. */
static int text_ok(const char *s, size_t max, int allow_nl)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strnlen(s, max + 1);

    if (len > max)
        return 0;
    for (size_t i = 0; i < len;) {
        uint32_t c = p[i];
        size_t n = c < 0x80             ? 1
                   : (c & 0xE0) == 0xC0 ? 2
                   : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 ? 4
                                        : 0;
        if (n == 0 || i + n > len)
            return 0;
        if (n > 1)
            c &= 0x3Fu >> (n - 1);
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            c = (c << 6) | (p[i + k] & 0x3Fu);
        }
        if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) ||
            (n == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
            (c >= 0xD800 && c <= 0xDFFF))
            return 0; /* overlong, out of range, surrogate */
        if ((c < 0x20 && !(allow_nl && c == '\n')) || (c >= 0x7F && c < 0xA0) ||
            (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069))
            return 0;
        i += n;
    }
    return 1;
}

static int checksum(uint8_t out[CHECK_HASH_BYTES], const uint8_t *b, size_t n)
{
    return crypto_generichash(out, CHECK_HASH_BYTES, b, n, NULL, 0);
}

int alcove_invite_encode(const alcove_identity *signer,
                         const alcove_invite *inv, char *out, size_t cap)
{
    Alcove__E2e__InviteBody body;
    Alcove__E2e__Invite invite;
    uint8_t body_buf[BODY_MAX], msg[CONTEXT_LEN + BODY_MAX];
    uint8_t bytes[BYTES_MAX], sig[ALCOVE_SIG_BYTES], h[CHECK_HASH_BYTES];
    alcove_relay_addr addr;
    size_t blen, ilen;
    int rc = ALCOVE_EINVAL;

    if (signer == NULL || inv == NULL || out == NULL)
        return ALCOVE_EINVAL;
    if (cap > 0)
        out[0] = '\0';
    if (inv->expires_at == 0 ||
        !text_ok(inv->display_name, ALCOVE_INVITE_NAME_MAX, 0) ||
        !text_ok(inv->notice, ALCOVE_INVITE_NOTICE_MAX, 1) ||
        strnlen(inv->relay_address, ALCOVE_ADDR_STR_MAX) >= ALCOVE_ADDR_STR_MAX)
        return ALCOVE_EINVAL;
    if (alcove_addr_parse(inv->relay_address, &addr, NULL) != 0)
        return ALCOVE_EADDR;

    alcove__e2e__invite_body__init(&body);
    body.has_version = 1;
    body.version = ALCOVE_INVITE_VERSION;
    body.relay_address = (char *)(uintptr_t)inv->relay_address;
#define SET_BYTES(field, src, n)                                               \
    do {                                                                       \
        body.has_##field = 1;                                                  \
        body.field.len = (n);                                                  \
        body.field.data = (uint8_t *)(uintptr_t)(src);                         \
    } while (0)
    SET_BYTES(send_id, inv->send_id, ALCOVE_INVITE_ID_BYTES);
    SET_BYTES(send_secret, inv->send_secret, ALCOVE_INVITE_SECRET_BYTES);
    SET_BYTES(sig_pub, alcove_identity_sig_pub(signer), ALCOVE_SIG_PUB_BYTES);
    SET_BYTES(dh_pub, alcove_identity_dh_pub(signer), ALCOVE_DH_BYTES);
    SET_BYTES(prekey_pub, inv->prekey_pub, ALCOVE_DH_BYTES);
    SET_BYTES(prekey_id, inv->prekey_id, ALCOVE_INVITE_PREKEY_ID_BYTES);
#undef SET_BYTES
    body.display_name = (char *)(uintptr_t)inv->display_name;
    body.notice = (char *)(uintptr_t)inv->notice;
    body.has_expires_at = 1;
    body.expires_at = inv->expires_at;

    rc = ALCOVE_ETOOBIG;
    blen = alcove__e2e__invite_body__get_packed_size(&body);
    if (blen > BODY_MAX)
        goto out; /* cannot happen with the string bounds above */
    rc = ALCOVE_EINVAL;
    if (alcove__e2e__invite_body__pack(&body, body_buf) != blen)
        goto out;
    memcpy(msg, CONTEXT, CONTEXT_LEN);
    memcpy(msg + CONTEXT_LEN, body_buf, blen);
    rc = alcove_identity_sign(signer, msg, CONTEXT_LEN + blen, sig);
    if (rc != 0)
        goto out;

    alcove__e2e__invite__init(&invite);
    invite.has_body = 1;
    invite.body.data = body_buf;
    invite.body.len = blen;
    invite.has_signature = 1;
    invite.signature.data = sig;
    invite.signature.len = sizeof sig;
    rc = ALCOVE_ETOOBIG;
    ilen = alcove__e2e__invite__get_packed_size(&invite);
    if (ilen + CHECK_BYTES > sizeof bytes)
        goto out;
    rc = ALCOVE_EINVAL;
    if (alcove__e2e__invite__pack(&invite, bytes) != ilen ||
        checksum(h, bytes, ilen) != 0)
        goto out;
    memcpy(bytes + ilen, h, CHECK_BYTES);
    rc = ALCOVE_ETOOBIG;

    if (cap < PREFIX_LEN + 1)
        goto out;
    memcpy(out, ALCOVE_INVITE_PREFIX, PREFIX_LEN);
    rc = alcove_b64url_encode(bytes, ilen + CHECK_BYTES, out + PREFIX_LEN,
                              cap - PREFIX_LEN);
    if (rc != 0) {
        rc = ALCOVE_ETOOBIG;
        out[0] = '\0';
        goto out;
    }
    rc = 0;
out:
    /* body_buf, msg and bytes hold send_secret. */
    sodium_memzero(body_buf, sizeof body_buf);
    sodium_memzero(msg, sizeof msg);
    sodium_memzero(bytes, sizeof bytes);
    return rc;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

static int prefix_ok(const char *s, size_t n)
{
    static const char want[] = ALCOVE_INVITE_PREFIX;

    if (n < PREFIX_LEN)
        return 0;
    for (size_t i = 0; i < PREFIX_LEN; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != want[i])
            return 0;
    }
    return 1;
}

/* Copies a present bytes field of exactly n bytes; 0 when absent/wrong. */
static int take(uint8_t *dst, protobuf_c_boolean has,
                const ProtobufCBinaryData *f, size_t n)
{
    if (!has || f->len != n)
        return 0;
    memcpy(dst, f->data, n);
    return 1;
}

/* Copies an optional string (absent = "") after text_ok. */
static int take_text(char *dst, const char *src, size_t max, int allow_nl)
{
    if (src == NULL)
        src = "";
    if (!text_ok(src, max, allow_nl))
        return 0;
    memcpy(dst, src, strlen(src) + 1);
    return 1;
}

static int body_fields(alcove_invite *o, const Alcove__E2e__InviteBody *b)
{
    if (!b->has_version || !b->has_expires_at || b->relay_address == NULL ||
        strnlen(b->relay_address, ALCOVE_ADDR_STR_MAX) >= ALCOVE_ADDR_STR_MAX)
        return 0;
    o->version = b->version;
    o->expires_at = b->expires_at;
    memcpy(o->relay_address, b->relay_address, strlen(b->relay_address) + 1);
    return take(o->send_id, b->has_send_id, &b->send_id,
                ALCOVE_INVITE_ID_BYTES) &&
           take(o->send_secret, b->has_send_secret, &b->send_secret,
                ALCOVE_INVITE_SECRET_BYTES) &&
           take(o->sig_pub, b->has_sig_pub, &b->sig_pub,
                ALCOVE_SIG_PUB_BYTES) &&
           take(o->dh_pub, b->has_dh_pub, &b->dh_pub, ALCOVE_DH_BYTES) &&
           take(o->prekey_pub, b->has_prekey_pub, &b->prekey_pub,
                ALCOVE_DH_BYTES) &&
           take(o->prekey_id, b->has_prekey_id, &b->prekey_id,
                ALCOVE_INVITE_PREKEY_ID_BYTES) &&
           take_text(o->display_name, b->display_name, ALCOVE_INVITE_NAME_MAX,
                     0) &&
           take_text(o->notice, b->notice, ALCOVE_INVITE_NOTICE_MAX, 1);
}

int alcove_invite_decode(const char *text, size_t len, uint64_t now_ms,
                         alcove_invite *out)
{
    char compact[ALCOVE_INVITE_TEXT_MAX];
    uint8_t bytes[BYTES_MAX], h[CHECK_HASH_BYTES];
    uint8_t msg[CONTEXT_LEN + BYTES_MAX];
    alcove_pb_budget ib, bb;
    Alcove__E2e__Invite *inv = NULL;
    Alcove__E2e__InviteBody *body = NULL;
    alcove_relay_addr addr;
    size_t n = 0, blen = 0;
    int rc = ALCOVE_EINVAL;

    if (out == NULL)
        return ALCOVE_EINVAL;
    sodium_memzero(out, sizeof *out);
    if (text == NULL)
        return ALCOVE_EINVAL;
    if (len > ALCOVE_INVITE_TEXT_MAX)
        return ALCOVE_ETOOBIG;
    sodium_memzero(bytes, sizeof bytes);

    for (size_t i = 0; i < len; i++)
        if (!is_space(text[i]))
            compact[n++] = text[i];
    rc = ALCOVE_ENOTINVITE;
    if (!prefix_ok(compact, n))
        goto out;

    rc = ALCOVE_EMISTYPED;
    if (alcove_b64url_decode(compact + PREFIX_LEN, n - PREFIX_LEN, bytes,
                             sizeof bytes, &blen) != 0 ||
        blen <= CHECK_BYTES)
        goto out;
    blen -= CHECK_BYTES;
    if (checksum(h, bytes, blen) != 0 ||
        sodium_memcmp(h, bytes + blen, CHECK_BYTES) != 0)
        goto out;

    rc = ALCOVE_EMALFORMED;
    alcove_pb_budget_init(&ib, alcove_pb_budget_for(blen));
    inv = alcove__e2e__invite__unpack(&ib.alloc, blen, bytes);
    if (inv == NULL || !inv->has_body || !inv->has_signature ||
        inv->signature.len != ALCOVE_SIG_BYTES || inv->body.len > sizeof bytes)
        goto out;
    alcove_pb_budget_init(&bb, alcove_pb_budget_for(inv->body.len));
    body = alcove__e2e__invite_body__unpack(&bb.alloc, inv->body.len,
                                            inv->body.data);
    if (body == NULL || !body_fields(out, body))
        goto out;

    rc = ALCOVE_EBADSIG;
    memcpy(msg, CONTEXT, CONTEXT_LEN);
    if (inv->body.len != 0)
        memcpy(msg + CONTEXT_LEN, inv->body.data, inv->body.len);
    if (crypto_sign_verify_detached(inv->signature.data, msg,
                                    CONTEXT_LEN + inv->body.len,
                                    out->sig_pub) != 0)
        goto out;
    rc = ALCOVE_EVERSION;
    if (out->version != ALCOVE_INVITE_VERSION)
        goto out;
    rc = ALCOVE_EMALFORMED;
    if (alcove_addr_parse(out->relay_address, &addr, NULL) != 0)
        goto out;
    rc = ALCOVE_EEXPIRED;
    if (now_ms >= out->expires_at)
        goto out;
    rc = 0;
out:
    if (body != NULL)
        alcove__e2e__invite_body__free_unpacked(body, &bb.alloc);
    if (inv != NULL)
        alcove__e2e__invite__free_unpacked(inv, &ib.alloc);
    if (rc != 0 && rc != ALCOVE_EEXPIRED)
        sodium_memzero(out, sizeof *out);
    sodium_memzero(compact, sizeof compact);
    sodium_memzero(bytes, sizeof bytes);
    sodium_memzero(msg, sizeof msg);
    return rc;
}
