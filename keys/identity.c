#include "identity.h"

#include <sodium.h>
#include <string.h>

#include "err.h"
#include "keys_file.h"

_Static_assert(ALCOVE_SIG_PUB_BYTES == crypto_sign_PUBLICKEYBYTES, "sig pub");
_Static_assert(ALCOVE_SIG_BYTES == crypto_sign_BYTES, "signature");
_Static_assert(ALCOVE_DH_BYTES == crypto_scalarmult_BYTES, "x25519 point");
_Static_assert(ALCOVE_DH_BYTES == crypto_scalarmult_SCALARBYTES,
               "x25519 scalar");
_Static_assert(ALCOVE_STORE_KEY_BYTES ==
                   crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
               "store key");
_Static_assert(ALCOVE_IDENTITY_OPSLIMIT_DEFAULT ==
                   crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
               "default opslimit");
_Static_assert(ALCOVE_IDENTITY_MEMLIMIT_DEFAULT ==
                   crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE,
               "default memlimit");

#define SIG_SK_BYTES crypto_sign_SECRETKEYBYTES /* 64: seed || pub */
#define SECRETS_BYTES (SIG_SK_BYTES + ALCOVE_DH_BYTES + ALCOVE_STORE_KEY_BYTES)
#define SALT_BYTES 16u
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define KDF_ARGON2ID 1u

/* Header offsets. */
#define OFF_VERSION 8u
#define OFF_KDF 9u
#define OFF_OPS 10u
#define OFF_MEM 18u
#define OFF_SALT 26u
#define OFF_NONCE 42u

_Static_assert(SECRETS_BYTES == 128, "secrets layout");
_Static_assert(SALT_BYTES == crypto_pwhash_argon2id_SALTBYTES, "salt");
_Static_assert(OFF_NONCE + NONCE_BYTES == ALCOVE_IDENTITY_HEADER_BYTES,
               "header layout");
_Static_assert(ALCOVE_IDENTITY_HEADER_BYTES + SECRETS_BYTES + TAG_BYTES ==
                   ALCOVE_IDENTITY_FILE_BYTES,
               "file layout");
_Static_assert(sizeof ALCOVE_IDENTITY_TAG - 1 == ALCOVE_IDENTITY_TAG_BYTES,
               "tag");

struct alcove_identity {
    uint8_t sig_pk[ALCOVE_SIG_PUB_BYTES];
    uint8_t sig_sk[SIG_SK_BYTES];
    uint8_t dh_pk[ALCOVE_DH_BYTES];
    uint8_t dh_sk[ALCOVE_DH_BYTES];
    uint8_t store_key[ALCOVE_STORE_KEY_BYTES];
};

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static int cost_ok(uint64_t ops, uint64_t mem)
{
    return ops >= crypto_pwhash_argon2id_OPSLIMIT_MIN &&
           ops <= ALCOVE_IDENTITY_OPSLIMIT_MAX &&
           mem >= crypto_pwhash_argon2id_MEMLIMIT_MIN &&
           mem <= ALCOVE_IDENTITY_MEMLIMIT_MAX;
}

static alcove_identity *identity_alloc(void)
{
    alcove_identity *id;

    if (sodium_init() < 0)
        return NULL;
    id = sodium_malloc(sizeof *id);
    if (id != NULL)
        memset(id, 0, sizeof *id);
    return id;
}

/* Read-only from now on.  Failure (no mprotect) only loses the extra
 * protection, never correctness, so it is deliberately not an error. */
static void protect(alcove_identity *id)
{
    (void)sodium_mprotect_readonly(id);
}

void alcove_identity_free(alcove_identity *id)
{
    if (id != NULL)
        sodium_free(id); /* makes it writable, wipes, unmaps */
}

/* Derives the public halves from secrets[] (sig_sk || dh_sk || store_key)
 * and checks the Ed25519 secret key's embedded public key. */
static int identity_fill(alcove_identity *id, const uint8_t *secrets)
{
    uint8_t sk_check[SIG_SK_BYTES];
    int rc = ALCOVE_ECORRUPT;

    memcpy(id->sig_sk, secrets, SIG_SK_BYTES);
    memcpy(id->dh_sk, secrets + SIG_SK_BYTES, ALCOVE_DH_BYTES);
    memcpy(id->store_key, secrets + SIG_SK_BYTES + ALCOVE_DH_BYTES,
           ALCOVE_STORE_KEY_BYTES);
    if (crypto_sign_seed_keypair(id->sig_pk, sk_check, id->sig_sk) != 0 ||
        sodium_memcmp(sk_check, id->sig_sk, SIG_SK_BYTES) != 0)
        goto out;
    if (crypto_scalarmult_base(id->dh_pk, id->dh_sk) != 0)
        goto out;
    rc = 0;
out:
    sodium_memzero(sk_check, sizeof sk_check);
    return rc;
}

int alcove_identity_generate(alcove_identity **out)
{
    alcove_identity *id;

    if (out == NULL)
        return ALCOVE_EINVAL;
    *out = NULL;
    id = identity_alloc();
    if (id == NULL)
        return ALCOVE_ENOMEM;
    if (crypto_sign_keypair(id->sig_pk, id->sig_sk) != 0 ||
        crypto_box_keypair(id->dh_pk, id->dh_sk) != 0) {
        alcove_identity_free(id);
        return ALCOVE_EINVAL;
    }
    randombytes_buf(id->store_key, sizeof id->store_key);
    protect(id);
    *out = id;
    return 0;
}

const uint8_t *alcove_identity_sig_pub(const alcove_identity *id)
{
    return id->sig_pk;
}

const uint8_t *alcove_identity_dh_pub(const alcove_identity *id)
{
    return id->dh_pk;
}

const uint8_t *alcove_identity_store_key(const alcove_identity *id)
{
    return id->store_key;
}

int alcove_identity_sign(const alcove_identity *id, const uint8_t *msg,
                         size_t len, uint8_t sig[ALCOVE_SIG_BYTES])
{
    if (id == NULL || sig == NULL || (msg == NULL && len != 0))
        return ALCOVE_EINVAL;
    if (crypto_sign_detached(sig, NULL, msg, len, id->sig_sk) != 0)
        return ALCOVE_EINVAL;
    return 0;
}

int alcove_identity_dh(const alcove_identity *id,
                       const uint8_t peer_pub[ALCOVE_DH_BYTES],
                       uint8_t out[ALCOVE_DH_BYTES])
{
    if (id == NULL || peer_pub == NULL || out == NULL)
        return ALCOVE_EINVAL;
    if (crypto_scalarmult(out, id->dh_sk, peer_pub) != 0) {
        sodium_memzero(out, ALCOVE_DH_BYTES);
        return ALCOVE_EBADKEY;
    }
    return 0;
}

static int derive_key(uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES],
                      const char *pass, size_t pass_len, const uint8_t *salt,
                      uint64_t ops, uint64_t mem)
{
    static const char empty[1] = "";

    if (pass == NULL)
        pass = empty;
    if (crypto_pwhash(key, crypto_aead_xchacha20poly1305_ietf_KEYBYTES, pass,
                      pass_len, salt, (unsigned long long)ops, (size_t)mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
        return ALCOVE_ENOMEM;
    return 0;
}

int alcove_identity_encode(const alcove_identity *id, const char *pass,
                           size_t pass_len, uint64_t opslimit,
                           uint64_t memlimit,
                           uint8_t out[ALCOVE_IDENTITY_FILE_BYTES])
{
    uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    uint8_t *secrets = NULL;
    unsigned long long clen = 0;
    int rc = ALCOVE_EINVAL;

    if (id == NULL || out == NULL || (pass == NULL && pass_len != 0))
        return ALCOVE_EINVAL;
    if (opslimit == 0 && memlimit == 0) {
        opslimit = ALCOVE_IDENTITY_OPSLIMIT_DEFAULT;
        memlimit = ALCOVE_IDENTITY_MEMLIMIT_DEFAULT;
    }
    if (!cost_ok(opslimit, memlimit))
        return ALCOVE_EINVAL;

    rc = ALCOVE_ENOMEM;
    secrets = sodium_malloc(SECRETS_BYTES);
    if (secrets == NULL)
        goto out;
    memcpy(secrets, id->sig_sk, SIG_SK_BYTES);
    memcpy(secrets + SIG_SK_BYTES, id->dh_sk, ALCOVE_DH_BYTES);
    memcpy(secrets + SIG_SK_BYTES + ALCOVE_DH_BYTES, id->store_key,
           ALCOVE_STORE_KEY_BYTES);

    memcpy(out, ALCOVE_IDENTITY_TAG, ALCOVE_IDENTITY_TAG_BYTES);
    out[OFF_VERSION] = ALCOVE_IDENTITY_VERSION;
    out[OFF_KDF] = KDF_ARGON2ID;
    put_u64(out + OFF_OPS, opslimit);
    put_u64(out + OFF_MEM, memlimit);
    randombytes_buf(out + OFF_SALT, SALT_BYTES);
    randombytes_buf(out + OFF_NONCE, NONCE_BYTES);

    rc = derive_key(key, pass, pass_len, out + OFF_SALT, opslimit, memlimit);
    if (rc != 0)
        goto out;
    rc = ALCOVE_EINVAL;
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(
            out + ALCOVE_IDENTITY_HEADER_BYTES, &clen, secrets, SECRETS_BYTES,
            out, ALCOVE_IDENTITY_HEADER_BYTES, NULL, out + OFF_NONCE,
            key) != 0 ||
        clen != SECRETS_BYTES + TAG_BYTES)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        sodium_memzero(out, ALCOVE_IDENTITY_FILE_BYTES);
    sodium_memzero(key, sizeof key);
    sodium_free(secrets); /* NULL-safe */
    return rc;
}

/* 1 when buf[0..len) is a prefix of the tag. */
static int tag_prefix(const uint8_t *buf, size_t len)
{
    return memcmp(buf, ALCOVE_IDENTITY_TAG, len) == 0;
}

int alcove_identity_decode(const uint8_t *buf, size_t len, const char *pass,
                           size_t pass_len, alcove_identity **out)
{
    uint8_t key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    uint8_t *secrets = NULL;
    alcove_identity *id = NULL;
    unsigned long long plen = 0;
    uint64_t ops, mem;
    int rc = ALCOVE_EINVAL;

    if (out == NULL)
        return ALCOVE_EINVAL;
    *out = NULL;
    if ((buf == NULL && len != 0) || (pass == NULL && pass_len != 0))
        return ALCOVE_EINVAL;
    sodium_memzero(key, sizeof key);

    if (len < ALCOVE_IDENTITY_TAG_BYTES) {
        rc =
            (len == 0 || tag_prefix(buf, len)) ? ALCOVE_ETRUNC : ALCOVE_EFORMAT;
        goto out;
    }
    rc = ALCOVE_EFORMAT;
    if (!tag_prefix(buf, ALCOVE_IDENTITY_TAG_BYTES))
        goto out;
    rc = ALCOVE_ETRUNC;
    if (len <= OFF_VERSION)
        goto out;
    rc = ALCOVE_EFORMAT;
    if (buf[OFF_VERSION] != ALCOVE_IDENTITY_VERSION)
        goto out;
    rc = ALCOVE_ETRUNC;
    if (len <= OFF_KDF)
        goto out;
    rc = ALCOVE_EFORMAT;
    if (buf[OFF_KDF] != KDF_ARGON2ID)
        goto out;
    rc = len < ALCOVE_IDENTITY_FILE_BYTES ? ALCOVE_ETRUNC : ALCOVE_ECORRUPT;
    if (len != ALCOVE_IDENTITY_FILE_BYTES)
        goto out;
    ops = get_u64(buf + OFF_OPS);
    mem = get_u64(buf + OFF_MEM);
    if (!cost_ok(ops, mem))
        goto out; /* ECORRUPT, before any allocation or derivation */

    rc = ALCOVE_ENOMEM;
    secrets = sodium_malloc(SECRETS_BYTES);
    id = identity_alloc();
    if (secrets == NULL || id == NULL)
        goto out;
    rc = derive_key(key, pass, pass_len, buf + OFF_SALT, ops, mem);
    if (rc != 0)
        goto out;
    rc = ALCOVE_EPASS;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            secrets, &plen, NULL, buf + ALCOVE_IDENTITY_HEADER_BYTES,
            SECRETS_BYTES + TAG_BYTES, buf, ALCOVE_IDENTITY_HEADER_BYTES,
            buf + OFF_NONCE, key) != 0 ||
        plen != SECRETS_BYTES)
        goto out;
    rc = identity_fill(id, secrets);
    if (rc != 0)
        goto out;
    protect(id);
    *out = id;
    id = NULL;
    rc = 0;
out:
    sodium_memzero(key, sizeof key);
    sodium_free(secrets);
    alcove_identity_free(id);
    return rc;
}

int alcove_identity_save(const alcove_identity *id, const char *path,
                         const char *pass, size_t pass_len, uint64_t opslimit,
                         uint64_t memlimit, int flags)
{
    uint8_t buf[ALCOVE_IDENTITY_FILE_BYTES];
    int rc;

    if (path == NULL || (flags & ~ALCOVE_IDENTITY_REPLACE) != 0)
        return ALCOVE_EINVAL;
    rc = alcove_identity_encode(id, pass, pass_len, opslimit, memlimit, buf);
    if (rc == 0)
        rc = alcove_keys_file_write(
            path, buf, sizeof buf,
            (flags & ALCOVE_IDENTITY_REPLACE) ? ALCOVE_KEYS_FILE_REPLACE : 0);
    sodium_memzero(buf, sizeof buf); /* ciphertext only, but cheap */
    return rc;
}

int alcove_identity_load(const char *path, const char *pass, size_t pass_len,
                         alcove_identity **out)
{
    uint8_t buf[ALCOVE_IDENTITY_FILE_BYTES + 1];
    size_t len = 0;
    int rc;

    if (out == NULL)
        return ALCOVE_EINVAL;
    *out = NULL;
    if (path == NULL)
        return ALCOVE_EINVAL;
    rc = alcove_keys_file_read(path, buf, sizeof buf, &len);
    if (rc == ALCOVE_ETOOBIG)
        rc = ALCOVE_ECORRUPT;
    if (rc == 0)
        rc = alcove_identity_decode(buf, len, pass, pass_len, out);
    sodium_memzero(buf, sizeof buf);
    return rc;
}
