#include "envelope.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.pb-c.h"
#include "err.h"
#include "pbuf.h"
#include "x3dh.h"

#define HDR ALCOVE_RATCHET_HEADER_BYTES
#define TAG ALCOVE_RATCHET_TAG_BYTES
#define CT_MAX (ALCOVE_PAD_MAX + TAG)
#define INNER_MAX (ALCOVE_ENVELOPE_MAX - crypto_box_SEALBYTES)

_Static_assert(CT_MAX + HDR + 3u * 32u + 8u + 64u + crypto_box_SEALBYTES <=
                   ALCOVE_ENVELOPE_MAX,
               "an intro with a full bucket fits");

static void set_bytes(protobuf_c_boolean *has, ProtobufCBinaryData *f,
                      const uint8_t *p, size_t n)
{
    *has = 1;
    f->data = (uint8_t *)(uintptr_t)p;
    f->len = n;
}

/* Unpacks an Envelope under a budget and checks version and kind. */
static int unpack_envelope(const uint8_t *blob, size_t len, alcove_pb_budget *b,
                           Alcove__E2e__Envelope **out)
{
    Alcove__E2e__Envelope *env;

    *out = NULL;
    if (blob == NULL)
        return ALCOVE_EINVAL;
    if (len > ALCOVE_ENVELOPE_MAX)
        return ALCOVE_ETOOBIG;
    alcove_pb_budget_init(b, alcove_pb_budget_for(len));
    env = alcove__e2e__envelope__unpack(&b->alloc, len, blob);
    if (env == NULL)
        return ALCOVE_EMALFORMED;
    *out = env;
    if (!env->has_version)
        return ALCOVE_EMALFORMED;
    if (env->version != ALCOVE_ENVELOPE_VERSION)
        return ALCOVE_EVERSION;
    if (env->kind_case == ALCOVE__E2E__ENVELOPE__KIND_MESSAGE &&
        env->message != NULL)
        return ALCOVE_ENVELOPE_MESSAGE;
    if (env->kind_case == ALCOVE__E2E__ENVELOPE__KIND_INTRO_SEALED)
        return ALCOVE_ENVELOPE_INTRO;
    return ALCOVE_EMALFORMED;
}

int alcove_envelope_kind(const uint8_t *blob, size_t len)
{
    alcove_pb_budget b;
    Alcove__E2e__Envelope *env = NULL;
    int rc = unpack_envelope(blob, len, &b, &env);

    if (env != NULL)
        alcove__e2e__envelope__free_unpacked(env, &b.alloc);
    return rc;
}

/* A RatchetMessage with a 40-byte header and a ciphertext of CT_MAX or
 * less; 0 or ALCOVE_EMALFORMED. */
static int check_rm(const Alcove__E2e__RatchetMessage *m)
{
    if (m == NULL || !m->has_header || m->header.len != HDR ||
        !m->has_ciphertext || m->ciphertext.len < TAG ||
        m->ciphertext.len > CT_MAX)
        return ALCOVE_EMALFORMED;
    return 0;
}

/* Pads content into a fresh CT_MAX buffer and encrypts it in place.
 * On success *buf (caller wipes and frees) holds ct[0..*ct_len). */
static int pad_encrypt(alcove_ratchet *r, const uint8_t *content, size_t len,
                       uint8_t header[HDR], uint8_t **buf, size_t *ct_len)
{
    size_t plen = 0;
    int rc;

    *buf = malloc(CT_MAX);
    if (*buf == NULL)
        return ALCOVE_ENOMEM;
    rc = alcove_pad(content, len, *buf, CT_MAX, &plen);
    if (rc == 0)
        rc =
            alcove_ratchet_encrypt(r, *buf, plen, header, *buf, CT_MAX, ct_len);
    return rc;
}

static void wipe_free(uint8_t *p, size_t n)
{
    if (p != NULL) {
        sodium_memzero(p, n);
        free(p);
    }
}

int alcove_envelope_seal(alcove_ratchet *r, const uint8_t *content, size_t len,
                         uint8_t *out, size_t cap, size_t *out_len)
{
    Alcove__E2e__Envelope env;
    Alcove__E2e__RatchetMessage rm;
    uint8_t header[HDR] = {0};
    uint8_t *buf = NULL;
    size_t bucket, ct_len = 0;
    int rc = ALCOVE_EINVAL;

    if (out_len != NULL)
        *out_len = 0;
    if (r == NULL || (content == NULL && len != 0) || out == NULL ||
        out_len == NULL)
        return ALCOVE_EINVAL;
    bucket = alcove_pad_bucket(len);
    if (bucket == 0)
        return ALCOVE_ETOOBIG;

    alcove__e2e__ratchet_message__init(&rm);
    set_bytes(&rm.has_header, &rm.header, header, HDR);
    set_bytes(&rm.has_ciphertext, &rm.ciphertext, out, bucket + TAG);
    alcove__e2e__envelope__init(&env);
    env.has_version = 1;
    env.version = ALCOVE_ENVELOPE_VERSION;
    env.kind_case = ALCOVE__E2E__ENVELOPE__KIND_MESSAGE;
    env.message = &rm;
    /* The size depends only on lengths: check before the ratchet moves. */
    if (alcove__e2e__envelope__get_packed_size(&env) > cap)
        return ALCOVE_ETOOBIG;

    rc = pad_encrypt(r, content, len, header, &buf, &ct_len);
    if (rc != 0)
        goto out;
    rm.ciphertext.data = buf;
    rm.ciphertext.len = ct_len;
    *out_len = alcove__e2e__envelope__pack(&env, out);
    rc = 0;
out:
    wipe_free(buf, CT_MAX);
    return rc;
}

int alcove_envelope_open(const alcove_ratchet *r, const uint8_t *blob,
                         size_t len, uint8_t *content, size_t cap,
                         size_t *content_len, alcove_ratchet **next)
{
    alcove_pb_budget b;
    Alcove__E2e__Envelope *env = NULL;
    const Alcove__E2e__RatchetMessage *rm;
    uint8_t *buf = NULL;
    size_t buf_len = 0, plen = 0, clen = 0;
    int rc;

    if (next != NULL)
        *next = NULL;
    if (content_len != NULL)
        *content_len = 0;
    if (r == NULL || content == NULL || content_len == NULL || next == NULL)
        return ALCOVE_EINVAL;
    if (cap < ALCOVE_PAD_MAX_CONTENT)
        return ALCOVE_ETOOBIG;
    rc = unpack_envelope(blob, len, &b, &env);
    if (rc == ALCOVE_ENVELOPE_INTRO)
        rc = ALCOVE_EMALFORMED;
    if (rc < 0)
        goto out;
    rm = env->message;
    rc = check_rm(rm);
    if (rc != 0)
        goto out;
    rc = ALCOVE_ENOMEM;
    buf_len = rm->ciphertext.len;
    buf = malloc(buf_len);
    if (buf == NULL)
        goto out;
    rc = alcove_ratchet_decrypt(r, rm->header.data, rm->header.len,
                                rm->ciphertext.data, rm->ciphertext.len, buf,
                                rm->ciphertext.len, &plen, next);
    if (rc != 0)
        goto out;
    /* Authentic from here on: the state is consumed whatever follows. */
    rc = alcove_unpad(buf, plen, &clen);
    if (rc != 0)
        goto out;
    memcpy(content, buf, clen);
    *content_len = clen;
    rc = 0;
out:
    if (env != NULL)
        alcove__e2e__envelope__free_unpacked(env, &b.alloc);
    wipe_free(buf, buf_len);
    return rc;
}

int alcove_intro_seal(const alcove_identity *a, const alcove_invite *inv,
                      const uint8_t *content, size_t len, uint8_t *out,
                      size_t cap, size_t *out_len, alcove_ratchet **session)
{
    Alcove__E2e__IntroInner inner;
    Alcove__E2e__RatchetMessage rm;
    Alcove__E2e__Envelope env;
    uint8_t sk[ALCOVE_X3DH_SK_BYTES], ad[ALCOVE_X3DH_AD_BYTES];
    uint8_t ek_pub[ALCOVE_DH_BYTES], header[HDR];
    uint8_t *buf = NULL, *inner_buf = NULL, *sealed = NULL;
    size_t ct_len = 0, inner_len = 0, sealed_len = 0;
    alcove_ratchet *s = NULL;
    int rc = ALCOVE_EINVAL;

    if (out_len != NULL)
        *out_len = 0;
    if (session != NULL)
        *session = NULL;
    if (a == NULL || inv == NULL || (content == NULL && len != 0) ||
        out == NULL || out_len == NULL || session == NULL)
        return ALCOVE_EINVAL;
    if (alcove_pad_bucket(len) == 0)
        return ALCOVE_ETOOBIG;
    sodium_memzero(sk, sizeof sk);

    rc = alcove_x3dh_accept(a, inv->sig_pub, inv->dh_pub, inv->prekey_pub,
                            ek_pub, sk, ad);
    if (rc == 0)
        rc = alcove_ratchet_init_alice(&s, sk, inv->prekey_pub, ad);
    if (rc == 0)
        rc = pad_encrypt(s, content, len, header, &buf, &ct_len);
    if (rc != 0)
        goto out;

    alcove__e2e__ratchet_message__init(&rm);
    set_bytes(&rm.has_header, &rm.header, header, HDR);
    set_bytes(&rm.has_ciphertext, &rm.ciphertext, buf, ct_len);
    alcove__e2e__intro_inner__init(&inner);
    set_bytes(&inner.has_sig_pub, &inner.sig_pub, alcove_identity_sig_pub(a),
              ALCOVE_SIG_PUB_BYTES);
    set_bytes(&inner.has_dh_pub, &inner.dh_pub, alcove_identity_dh_pub(a),
              ALCOVE_DH_BYTES);
    set_bytes(&inner.has_ephemeral_pub, &inner.ephemeral_pub, ek_pub,
              ALCOVE_DH_BYTES);
    set_bytes(&inner.has_prekey_id, &inner.prekey_id, inv->prekey_id,
              ALCOVE_INVITE_PREKEY_ID_BYTES);
    inner.message = &rm;
    rc = ALCOVE_ETOOBIG;
    inner_len = alcove__e2e__intro_inner__get_packed_size(&inner);
    if (inner_len > INNER_MAX)
        goto out;
    rc = ALCOVE_ENOMEM;
    sealed_len = inner_len + crypto_box_SEALBYTES;
    inner_buf = malloc(inner_len);
    sealed = malloc(sealed_len);
    if (inner_buf == NULL || sealed == NULL)
        goto out;
    rc = ALCOVE_EINVAL;
    if (alcove__e2e__intro_inner__pack(&inner, inner_buf) != inner_len)
        goto out;
    rc = ALCOVE_EBADKEY;
    if (crypto_box_seal(sealed, inner_buf, inner_len, inv->prekey_pub) != 0)
        goto out;

    alcove__e2e__envelope__init(&env);
    env.has_version = 1;
    env.version = ALCOVE_ENVELOPE_VERSION;
    env.kind_case = ALCOVE__E2E__ENVELOPE__KIND_INTRO_SEALED;
    env.intro_sealed.data = sealed;
    env.intro_sealed.len = sealed_len;
    rc = ALCOVE_ETOOBIG;
    if (alcove__e2e__envelope__get_packed_size(&env) > cap)
        goto out;
    *out_len = alcove__e2e__envelope__pack(&env, out);
    *session = s;
    s = NULL;
    rc = 0;
out:
    sodium_memzero(sk, sizeof sk);
    wipe_free(buf, CT_MAX);
    wipe_free(inner_buf, inner_len);
    free(sealed); /* ciphertext */
    alcove_ratchet_free(s);
    return rc;
}

/* Field checks of an opened IntroInner. */
static int check_inner(const Alcove__E2e__IntroInner *in)
{
    if (!in->has_sig_pub || in->sig_pub.len != ALCOVE_SIG_PUB_BYTES ||
        !in->has_dh_pub || in->dh_pub.len != ALCOVE_DH_BYTES ||
        !in->has_ephemeral_pub || in->ephemeral_pub.len != ALCOVE_DH_BYTES ||
        !in->has_prekey_id ||
        in->prekey_id.len != ALCOVE_INVITE_PREKEY_ID_BYTES ||
        check_rm(in->message) != 0)
        return ALCOVE_EMALFORMED;
    /* The intro starts the accepter's first chain: pn = n = 0. */
    for (size_t i = ALCOVE_DH_BYTES; i < HDR; i++)
        if (in->message->header.data[i] != 0)
            return ALCOVE_EMALFORMED;
    return 0;
}

int alcove_intro_open(const alcove_identity *b, const uint8_t prekey_sk[32],
                      const uint8_t prekey_pub[32],
                      const uint8_t prekey_id[ALCOVE_INVITE_PREKEY_ID_BYTES],
                      const uint8_t *blob, size_t len,
                      uint8_t a_sig_pub[ALCOVE_SIG_PUB_BYTES],
                      uint8_t a_dh_pub[ALCOVE_DH_BYTES], uint8_t *content,
                      size_t cap, size_t *content_len, alcove_ratchet **session)
{
    alcove_pb_budget eb, ib;
    Alcove__E2e__Envelope *env = NULL;
    Alcove__E2e__IntroInner *in = NULL;
    const Alcove__E2e__RatchetMessage *rm;
    uint8_t sk[ALCOVE_X3DH_SK_BYTES], ad[ALCOVE_X3DH_AD_BYTES];
    uint8_t *inner_buf = NULL, *buf = NULL;
    size_t inner_len = 0, buf_len = 0, plen = 0, clen = 0;
    alcove_ratchet *s = NULL, *next = NULL;
    int rc;

    if (content_len != NULL)
        *content_len = 0;
    if (session != NULL)
        *session = NULL;
    if (b == NULL || prekey_sk == NULL || prekey_pub == NULL ||
        prekey_id == NULL || a_sig_pub == NULL || a_dh_pub == NULL ||
        content == NULL || content_len == NULL || session == NULL)
        return ALCOVE_EINVAL;
    if (cap < ALCOVE_PAD_MAX_CONTENT)
        return ALCOVE_ETOOBIG;
    sodium_memzero(sk, sizeof sk);

    rc = unpack_envelope(blob, len, &eb, &env);
    if (rc == ALCOVE_ENVELOPE_MESSAGE)
        rc = ALCOVE_EMALFORMED;
    if (rc < 0)
        goto out;
    rc = ALCOVE_EDECRYPT;
    if (env->intro_sealed.len <= crypto_box_SEALBYTES)
        goto out;
    rc = ALCOVE_ENOMEM;
    inner_len = env->intro_sealed.len - crypto_box_SEALBYTES;
    inner_buf = malloc(inner_len);
    if (inner_buf == NULL)
        goto out;
    rc = ALCOVE_EDECRYPT;
    if (crypto_box_seal_open(inner_buf, env->intro_sealed.data,
                             env->intro_sealed.len, prekey_pub, prekey_sk) != 0)
        goto out;
    rc = ALCOVE_EMALFORMED;
    alcove_pb_budget_init(&ib, alcove_pb_budget_for(inner_len));
    in = alcove__e2e__intro_inner__unpack(&ib.alloc, inner_len, inner_buf);
    if (in == NULL || check_inner(in) != 0)
        goto out;
    rc = ALCOVE_ENOTFOUND;
    if (sodium_memcmp(in->prekey_id.data, prekey_id,
                      ALCOVE_INVITE_PREKEY_ID_BYTES) != 0)
        goto out;
    rc = alcove_x3dh_respond(b, prekey_sk, in->sig_pub.data, in->dh_pub.data,
                             in->ephemeral_pub.data, sk, ad);
    if (rc == 0)
        rc = alcove_ratchet_init_bob(&s, sk, prekey_sk, prekey_pub, ad);
    if (rc != 0)
        goto out;
    rm = in->message;
    rc = ALCOVE_ENOMEM;
    buf_len = rm->ciphertext.len;
    buf = malloc(buf_len);
    if (buf == NULL)
        goto out;
    rc = alcove_ratchet_decrypt(s, rm->header.data, HDR, rm->ciphertext.data,
                                rm->ciphertext.len, buf, buf_len, &plen, &next);
    if (rc == 0)
        rc = alcove_unpad(buf, plen, &clen);
    if (rc != 0)
        goto out;
    memcpy(a_sig_pub, in->sig_pub.data, ALCOVE_SIG_PUB_BYTES);
    memcpy(a_dh_pub, in->dh_pub.data, ALCOVE_DH_BYTES);
    memcpy(content, buf, clen);
    *content_len = clen;
    *session = next;
    next = NULL;
    rc = 0;
out:
    sodium_memzero(sk, sizeof sk);
    if (in != NULL)
        alcove__e2e__intro_inner__free_unpacked(in, &ib.alloc);
    if (env != NULL)
        alcove__e2e__envelope__free_unpacked(env, &eb.alloc);
    wipe_free(inner_buf, inner_len);
    wipe_free(buf, buf_len);
    alcove_ratchet_free(s);
    alcove_ratchet_free(next);
    return rc;
}
