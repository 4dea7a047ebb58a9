/* Noise_NK_25519_ChaChaPoly_BLAKE2b, following the Noise specification
 * revision 34 section by section:
 *   5.1 CipherState   cs_*        (ChaChaPoly, 96-bit nonce 0^32 || LE64(n))
 *   5.2 SymmetricState mix_hash, mix_key, encrypt_and_hash, decrypt_and_hash
 *   4.3 HMAC-HASH and HKDF with HASH = BLAKE2b-512 (block length 128)
 *   5.3 HandshakeState for the one pattern we speak, NK.
 * Only what NK needs is implemented: no PSK, no static key sent, no rekey. */
#include "noise.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

#define HASHLEN ALCOVE_NOISE_HASH_BYTES
#define KEYLEN ALCOVE_NOISE_KEY_BYTES
#define TAGLEN ALCOVE_NOISE_TAG_BYTES
#define DHLEN 32u
#define BLOCKLEN 128u
#define NONCE_MAX UINT64_MAX /* reserved by the spec: never used */

static const char protocol_name[] = "Noise_NK_25519_ChaChaPoly_BLAKE2b";

_Static_assert(HASHLEN == crypto_generichash_blake2b_BYTES_MAX, "BLAKE2b-512");
_Static_assert(KEYLEN == crypto_aead_chacha20poly1305_ietf_KEYBYTES, "key size");
_Static_assert(TAGLEN == crypto_aead_chacha20poly1305_ietf_ABYTES, "tag size");
_Static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12, "96-bit nonce");
_Static_assert(DHLEN == crypto_scalarmult_BYTES, "X25519 public key size");
_Static_assert(DHLEN == crypto_scalarmult_SCALARBYTES, "X25519 secret size");
_Static_assert(sizeof protocol_name - 1 <= HASHLEN, "name is padded, not hashed");
_Static_assert(ALCOVE_NOISE_HS1_BYTES == DHLEN + TAGLEN, "message 1 size");
_Static_assert(ALCOVE_NOISE_HS2_BYTES == DHLEN + TAGLEN, "message 2 size");

typedef struct cipher_state {
    uint8_t k[KEYLEN];
    uint64_t n;
    int has_key;
} cipher_state;

enum hs_step {
    STEP_MSG1 = 0, /* message 1 (-> e, es) not yet processed */
    STEP_MSG2,     /* message 2 (<- e, ee) not yet processed */
    STEP_DONE,     /* ready for Split() */
    STEP_DEAD      /* failed or split: only free is allowed */
};

struct alcove_noise_hs {
    cipher_state cs;
    uint8_t ck[HASHLEN];
    uint8_t h[HASHLEN];
    uint8_t s_priv[DHLEN]; /* responder only */
    uint8_t s_pub[DHLEN];
    uint8_t e_priv[DHLEN];
    uint8_t e_pub[DHLEN];
    uint8_t rs[DHLEN]; /* initiator only: the responder's static key */
    uint8_t re[DHLEN];
    int initiator;
    int e_fixed; /* set_ephemeral() was called */
    enum hs_step step;
};

struct alcove_noise_transport {
    cipher_state send;
    cipher_state recv;
};

/* --- 4.3 hash functions ------------------------------------------------- */

static void hash2(uint8_t out[HASHLEN], const uint8_t *a, size_t a_len,
                  const uint8_t *b, size_t b_len)
{
    crypto_generichash_blake2b_state st;

    /* Unkeyed BLAKE2b-512 cannot fail with these constant parameters. */
    (void)crypto_generichash_blake2b_init(&st, NULL, 0, HASHLEN);
    (void)crypto_generichash_blake2b_update(&st, a, a_len);
    if (b_len > 0) {
        (void)crypto_generichash_blake2b_update(&st, b, b_len);
    }
    (void)crypto_generichash_blake2b_final(&st, out, HASHLEN);
    sodium_memzero(&st, sizeof st);
}

/* HMAC-HASH(key, data1 || data2) as in RFC 2104 with a 128-byte block.
 * Keys here are at most HASHLEN bytes, so they are never pre-hashed. */
static void hmac(uint8_t out[HASHLEN], const uint8_t *key, size_t key_len,
                 const uint8_t *d1, size_t d1_len, const uint8_t *d2,
                 size_t d2_len)
{
    crypto_generichash_blake2b_state st;
    uint8_t pad[BLOCKLEN];
    uint8_t inner[HASHLEN];
    size_t i;

    memset(pad, 0, sizeof pad);
    memcpy(pad, key, key_len); /* key_len <= HASHLEN < BLOCKLEN */
    for (i = 0; i < BLOCKLEN; i++) {
        pad[i] ^= 0x36;
    }
    (void)crypto_generichash_blake2b_init(&st, NULL, 0, HASHLEN);
    (void)crypto_generichash_blake2b_update(&st, pad, BLOCKLEN);
    (void)crypto_generichash_blake2b_update(&st, d1, d1_len);
    if (d2_len > 0) {
        (void)crypto_generichash_blake2b_update(&st, d2, d2_len);
    }
    (void)crypto_generichash_blake2b_final(&st, inner, HASHLEN);

    for (i = 0; i < BLOCKLEN; i++) {
        pad[i] ^= 0x36 ^ 0x5c; /* ipad -> opad */
    }
    (void)crypto_generichash_blake2b_init(&st, NULL, 0, HASHLEN);
    (void)crypto_generichash_blake2b_update(&st, pad, BLOCKLEN);
    (void)crypto_generichash_blake2b_update(&st, inner, HASHLEN);
    (void)crypto_generichash_blake2b_final(&st, out, HASHLEN);

    sodium_memzero(&st, sizeof st);
    sodium_memzero(pad, sizeof pad);
    sodium_memzero(inner, sizeof inner);
}

/* HKDF(chaining_key, ikm, 2): out1 and out2 are HASHLEN bytes each. */
static void hkdf2(const uint8_t ck[HASHLEN], const uint8_t *ikm, size_t ikm_len,
                  uint8_t out1[HASHLEN], uint8_t out2[HASHLEN])
{
    static const uint8_t one = 0x01, two = 0x02;
    uint8_t temp_key[HASHLEN];

    hmac(temp_key, ck, HASHLEN, ikm, ikm_len, NULL, 0);
    hmac(out1, temp_key, HASHLEN, &one, 1, NULL, 0);
    hmac(out2, temp_key, HASHLEN, out1, HASHLEN, &two, 1);
    sodium_memzero(temp_key, sizeof temp_key);
}

/* --- 5.1 CipherState ---------------------------------------------------- */

static void cs_init_key(cipher_state *cs, const uint8_t *k)
{
    memcpy(cs->k, k, KEYLEN);
    cs->n = 0;
    cs->has_key = 1;
}

static void make_nonce(uint8_t nonce[12], uint64_t n)
{
    size_t i;

    memset(nonce, 0, 4);
    for (i = 0; i < 8; i++) {
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
    }
}

/* EncryptWithAd: out holds pt_len + TAGLEN (or pt_len without a key). */
static int cs_encrypt(cipher_state *cs, const uint8_t *ad, size_t ad_len,
                      const uint8_t *pt, size_t pt_len, uint8_t *out,
                      size_t *out_len)
{
    uint8_t nonce[12];
    unsigned long long clen = 0;

    if (!cs->has_key) {
        if (pt_len > 0 && out != pt) {
            memmove(out, pt, pt_len);
        }
        *out_len = pt_len;
        return 0;
    }
    if (cs->n == NONCE_MAX) {
        return ALCOVE_ESTATE;
    }
    make_nonce(nonce, cs->n);
    if (crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt, pt_len, ad,
                                                  ad_len, NULL, nonce,
                                                  cs->k) != 0) {
        return ALCOVE_EINVAL; /* only for absurd lengths */
    }
    cs->n++;
    *out_len = (size_t)clen;
    return 0;
}

/* DecryptWithAd: out holds ct_len - TAGLEN.  On failure n is unchanged. */
static int cs_decrypt(cipher_state *cs, const uint8_t *ad, size_t ad_len,
                      const uint8_t *ct, size_t ct_len, uint8_t *out,
                      size_t *out_len)
{
    uint8_t nonce[12];
    unsigned long long mlen = 0;

    if (!cs->has_key) {
        if (ct_len > 0 && out != ct) {
            memmove(out, ct, ct_len);
        }
        *out_len = ct_len;
        return 0;
    }
    if (ct_len < TAGLEN) {
        return ALCOVE_ETRUNC;
    }
    if (cs->n == NONCE_MAX) {
        return ALCOVE_ESTATE;
    }
    make_nonce(nonce, cs->n);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, ct, ct_len,
                                                  ad, ad_len, nonce,
                                                  cs->k) != 0) {
        return ALCOVE_EDECRYPT;
    }
    cs->n++;
    *out_len = (size_t)mlen;
    return 0;
}

/* --- 5.2 SymmetricState --------------------------------------------------- */

static void mix_hash(alcove_noise_hs *hs, const uint8_t *data, size_t len)
{
    hash2(hs->h, hs->h, HASHLEN, data, len);
}

static void mix_key(alcove_noise_hs *hs, const uint8_t *ikm, size_t ikm_len)
{
    uint8_t temp_k[HASHLEN];

    hkdf2(hs->ck, ikm, ikm_len, hs->ck, temp_k);
    cs_init_key(&hs->cs, temp_k); /* HASHLEN 64: truncated to 32 bytes */
    sodium_memzero(temp_k, sizeof temp_k);
}

/* ct = EncryptWithAd(h, pt); MixHash(ct). */
static int encrypt_and_hash(alcove_noise_hs *hs, const uint8_t *pt,
                            size_t pt_len, uint8_t *out, size_t *out_len)
{
    int rc = cs_encrypt(&hs->cs, hs->h, HASHLEN, pt, pt_len, out, out_len);
    if (rc != 0) {
        return rc;
    }
    mix_hash(hs, out, *out_len);
    return 0;
}

/* pt = DecryptWithAd(h, ct); MixHash(ct).  The new h is computed before the
 * plaintext is written, so out may overlap ct. */
static int decrypt_and_hash(alcove_noise_hs *hs, const uint8_t *ct,
                            size_t ct_len, uint8_t *out, size_t *out_len)
{
    uint8_t next_h[HASHLEN];
    int rc;

    hash2(next_h, hs->h, HASHLEN, ct, ct_len);
    rc = cs_decrypt(&hs->cs, hs->h, HASHLEN, ct, ct_len, out, out_len);
    if (rc == 0) {
        memcpy(hs->h, next_h, HASHLEN);
    }
    sodium_memzero(next_h, sizeof next_h);
    return rc;
}

/* DH(priv, pub) mixed into the chaining key.  libsodium refuses low-order
 * points and all-zero results; we check for zeros as well so that the rule
 * "an all-zero DH aborts" does not depend on the library version. */
static int mix_dh(alcove_noise_hs *hs, const uint8_t priv[DHLEN],
                  const uint8_t pub[DHLEN])
{
    uint8_t shared[DHLEN];
    int rc = ALCOVE_EBADKEY;

    if (crypto_scalarmult(shared, priv, pub) != 0 ||
        sodium_is_zero(shared, DHLEN)) {
        goto out;
    }
    mix_key(hs, shared, DHLEN);
    rc = 0;
out:
    sodium_memzero(shared, sizeof shared);
    return rc;
}

/* --- 5.3 HandshakeState ------------------------------------------------- */

static int hs_new(alcove_noise_hs **out, int initiator,
                  const uint8_t *prologue, size_t prologue_len)
{
    alcove_noise_hs *hs;

    *out = NULL;
    if (prologue == NULL && prologue_len > 0) {
        return ALCOVE_EINVAL;
    }
    if (sodium_init() < 0) {
        return ALCOVE_EIO;
    }
    hs = calloc(1, sizeof *hs);
    if (hs == NULL) {
        return ALCOVE_ENOMEM;
    }
    /* InitializeSymmetric: the name fits in HASHLEN, so h = name || zeros. */
    memcpy(hs->h, protocol_name, sizeof protocol_name - 1);
    memcpy(hs->ck, hs->h, HASHLEN);
    mix_hash(hs, prologue, prologue_len);
    hs->initiator = initiator;
    hs->step = STEP_MSG1;
    *out = hs;
    return 0;
}

int alcove_noise_hs_initiator(alcove_noise_hs **out, const uint8_t rs[32],
                              const uint8_t *prologue, size_t prologue_len)
{
    int rc = hs_new(out, 1, prologue, prologue_len);
    if (rc != 0) {
        return rc;
    }
    memcpy((*out)->rs, rs, DHLEN);
    mix_hash(*out, rs, DHLEN); /* pre-message <- s */
    return 0;
}

int alcove_noise_hs_responder(alcove_noise_hs **out, const uint8_t s_priv[32],
                              const uint8_t s_pub[32], const uint8_t *prologue,
                              size_t prologue_len)
{
    int rc = hs_new(out, 0, prologue, prologue_len);
    if (rc != 0) {
        return rc;
    }
    memcpy((*out)->s_priv, s_priv, DHLEN);
    memcpy((*out)->s_pub, s_pub, DHLEN);
    mix_hash(*out, s_pub, DHLEN); /* pre-message <- s */
    return 0;
}

/* Has this side already written its e?  The initiator writes it in message
 * 1, the responder in message 2. */
static int e_written(const alcove_noise_hs *hs)
{
    return hs->initiator ? hs->step != STEP_MSG1 : hs->step >= STEP_DONE;
}

int alcove_noise_hs_set_ephemeral(alcove_noise_hs *hs, const uint8_t e_priv[32])
{
    if (hs == NULL || hs->step == STEP_DEAD || e_written(hs)) {
        return ALCOVE_ESTATE;
    }
    memcpy(hs->e_priv, e_priv, DHLEN);
    hs->e_fixed = 1;
    return 0;
}

/* Token "e" when writing: make (or take) the key pair, send and hash e.pub. */
static int write_e(alcove_noise_hs *hs, uint8_t *out)
{
    if (!hs->e_fixed) {
        randombytes_buf(hs->e_priv, DHLEN);
    }
    if (crypto_scalarmult_base(hs->e_pub, hs->e_priv) != 0) {
        return ALCOVE_EBADKEY;
    }
    memcpy(out, hs->e_pub, DHLEN);
    mix_hash(hs, hs->e_pub, DHLEN);
    return 0;
}

int alcove_noise_hs_write(alcove_noise_hs *hs, const uint8_t *payload,
                          size_t payload_len, uint8_t *out, size_t out_cap,
                          size_t *out_len)
{
    size_t need, ct_len = 0;
    int rc;

    *out_len = 0;
    if (hs == NULL) {
        return ALCOVE_ESTATE;
    }
    /* Our turn: initiator writes message 1, responder message 2. */
    if (hs->step != (hs->initiator ? STEP_MSG1 : STEP_MSG2)) {
        return ALCOVE_ESTATE;
    }
    if (payload == NULL && payload_len > 0) {
        return ALCOVE_EINVAL;
    }
    /* Both NK messages are e, one DH, then an encrypted payload. */
    if (payload_len > ALCOVE_NOISE_MSG_MAX - DHLEN - TAGLEN) {
        return ALCOVE_ETOOBIG;
    }
    need = DHLEN + payload_len + TAGLEN;
    if (out_cap < need) {
        return ALCOVE_ETOOBIG;
    }

    rc = write_e(hs, out);
    if (rc == 0) {
        rc = hs->initiator ? mix_dh(hs, hs->e_priv, hs->rs)  /* es */
                           : mix_dh(hs, hs->e_priv, hs->re); /* ee */
    }
    if (rc == 0) {
        rc = encrypt_and_hash(hs, payload, payload_len, out + DHLEN, &ct_len);
    }
    if (rc != 0) {
        sodium_memzero(out, need);
        hs->step = STEP_DEAD;
        return rc;
    }
    *out_len = DHLEN + ct_len;
    hs->step = hs->initiator ? STEP_MSG2 : STEP_DONE;
    return 0;
}

int alcove_noise_hs_read(alcove_noise_hs *hs, const uint8_t *msg, size_t msg_len,
                         uint8_t *payload_out, size_t payload_cap,
                         size_t *payload_len)
{
    int rc;

    *payload_len = 0;
    if (hs == NULL) {
        return ALCOVE_ESTATE;
    }
    /* Our turn to read: responder reads message 1, initiator message 2. */
    if (hs->step != (hs->initiator ? STEP_MSG2 : STEP_MSG1)) {
        return ALCOVE_ESTATE;
    }
    if (msg_len > ALCOVE_NOISE_MSG_MAX) {
        rc = ALCOVE_ETOOBIG;
        goto out;
    }
    /* e, then the payload under a key set by es/ee: at least e and a tag. */
    if (msg_len < DHLEN + TAGLEN) {
        rc = ALCOVE_ETRUNC;
        goto out;
    }
    if (payload_cap < msg_len - DHLEN - TAGLEN) {
        rc = ALCOVE_ETOOBIG;
        goto out;
    }

    memcpy(hs->re, msg, DHLEN);
    mix_hash(hs, hs->re, DHLEN);
    rc = hs->initiator ? mix_dh(hs, hs->e_priv, hs->re)  /* ee */
                       : mix_dh(hs, hs->s_priv, hs->re); /* es */
    if (rc != 0) {
        goto out;
    }
    rc = decrypt_and_hash(hs, msg + DHLEN, msg_len - DHLEN, payload_out,
                          payload_len);
out:
    if (rc != 0) {
        *payload_len = 0;
        hs->step = STEP_DEAD;
        return rc;
    }
    hs->step = hs->initiator ? STEP_DONE : STEP_MSG2;
    return 0;
}

int alcove_noise_hs_done(const alcove_noise_hs *hs)
{
    return hs != NULL && hs->step == STEP_DONE;
}

int alcove_noise_hs_split(alcove_noise_hs *hs, alcove_noise_transport **out,
                          uint8_t h_out[64])
{
    alcove_noise_transport *t;
    uint8_t k1[HASHLEN], k2[HASHLEN];

    *out = NULL;
    if (!alcove_noise_hs_done(hs)) {
        return ALCOVE_ESTATE;
    }
    t = calloc(1, sizeof *t);
    if (t == NULL) {
        return ALCOVE_ENOMEM;
    }
    hkdf2(hs->ck, NULL, 0, k1, k2);
    /* c1 carries initiator -> responder, c2 responder -> initiator; each
     * key is the first 32 bytes of a 64-byte HKDF output. */
    cs_init_key(hs->initiator ? &t->send : &t->recv, k1);
    cs_init_key(hs->initiator ? &t->recv : &t->send, k2);
    memcpy(h_out, hs->h, HASHLEN);

    sodium_memzero(k1, sizeof k1);
    sodium_memzero(k2, sizeof k2);
    sodium_memzero(hs, sizeof *hs);
    hs->step = STEP_DEAD;
    *out = t;
    return 0;
}

void alcove_noise_hs_free(alcove_noise_hs *hs)
{
    if (hs == NULL) {
        return;
    }
    sodium_memzero(hs, sizeof *hs);
    free(hs);
}

/* --- transport ---------------------------------------------------------- */

int alcove_noise_encrypt(alcove_noise_transport *t, const uint8_t *pt,
                         size_t pt_len, uint8_t *out)
{
    size_t ct_len = 0;

    if (pt_len > ALCOVE_NOISE_PLAINTEXT_MAX) {
        return ALCOVE_ETOOBIG;
    }
    if (pt == NULL && pt_len > 0) {
        return ALCOVE_EINVAL;
    }
    return cs_encrypt(&t->send, NULL, 0, pt, pt_len, out, &ct_len);
}

int alcove_noise_decrypt(alcove_noise_transport *t, const uint8_t *ct,
                         size_t ct_len, uint8_t *out)
{
    size_t pt_len = 0;

    if (ct_len < TAGLEN) {
        return ALCOVE_ETRUNC;
    }
    if (ct_len > ALCOVE_NOISE_MSG_MAX) {
        return ALCOVE_ETOOBIG;
    }
    return cs_decrypt(&t->recv, NULL, 0, ct, ct_len, out, &pt_len);
}

void alcove_noise_transport_free(alcove_noise_transport *t)
{
    if (t == NULL) {
        return;
    }
    sodium_memzero(t, sizeof *t);
    free(t);
}
