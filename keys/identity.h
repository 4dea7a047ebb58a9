/* A user's identity and its keystore file.
 *
 * An identity is an Ed25519 signing key pair, an independent X25519 key pair
 * and a random 32-byte store key (which seals the client's local store).  All
 * of it lives in one sodium_malloc block (guard pages, mlock'd when the
 * limit allows), read-only once built, wiped by alcove_identity_free.
 * Call sodium_init() once before using this module.
 *
 * Keystore file (DESIGN.md section 6), all integers big-endian:
 *
 *   offset size
 *        0    8  format tag "ALCOVEID"
 *        8    1  version = 1
 *        9    1  KDF = 1 (Argon2id v1.3)
 *       10    8  Argon2id opslimit
 *       18    8  Argon2id memlimit in bytes
 *       26   16  salt
 *       42   24  XChaCha20-Poly1305 nonce
 *       66  144  ciphertext||tag of sig_sk (64) || dh_sk (32) || store_key (32)
 *
 * The key is Argon2id(passphrase, salt, opslimit, memlimit) -> 32 bytes; the
 * 66 header bytes are the associated data, so no header byte can be changed
 * undetected.  An empty passphrase (init --no-passphrase) is still run
 * through Argon2id: the file format has no unencrypted variant. */
#ifndef ALCOVE_IDENTITY_H
#define ALCOVE_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#define ALCOVE_SIG_PUB_BYTES 32u   /* Ed25519 public key */
#define ALCOVE_SIG_BYTES 64u       /* Ed25519 signature */
#define ALCOVE_DH_BYTES 32u        /* X25519 public key, secret key, output */
#define ALCOVE_STORE_KEY_BYTES 32u /* XChaCha20-Poly1305 key */

#define ALCOVE_IDENTITY_TAG "ALCOVEID"
#define ALCOVE_IDENTITY_TAG_BYTES 8u
#define ALCOVE_IDENTITY_VERSION 1u
#define ALCOVE_IDENTITY_HEADER_BYTES 66u
#define ALCOVE_IDENTITY_FILE_BYTES 210u

/* Argon2id cost.  Save and load refuse anything outside these bounds (load
 * checks before deriving, so a hostile file cannot make us allocate more than
 * 1 GiB or spin forever).  Tests may use the libsodium minimums
 * (crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN). */
#define ALCOVE_IDENTITY_OPSLIMIT_MAX 16u
#define ALCOVE_IDENTITY_MEMLIMIT_MAX (1024ull * 1024u * 1024u)
/* Defaults: libsodium's INTERACTIVE (2 passes, 64 MiB); alcove_identity_save
 * uses them when both opslimit and memlimit are 0. */
#define ALCOVE_IDENTITY_OPSLIMIT_DEFAULT 2u
#define ALCOVE_IDENTITY_MEMLIMIT_DEFAULT (64ull * 1024u * 1024u)

/* alcove_identity_save flags. */
#define ALCOVE_IDENTITY_REPLACE 1 /* overwrite an existing file */

typedef struct alcove_identity alcove_identity;

/* Generate a fresh identity (all keys random).
 * Returns 0 and *out (free with alcove_identity_free), or ALCOVE_EINVAL
 * (out NULL, or libsodium failed to initialise), ALCOVE_ENOMEM. */
int alcove_identity_generate(alcove_identity **out);

/* Wipe and free.  NULL is a no-op. */
void alcove_identity_free(alcove_identity *id);

/* Public keys and the store key: pointers into the identity (read-only
 * memory), valid until alcove_identity_free.  id must not be NULL. */
const uint8_t *alcove_identity_sig_pub(const alcove_identity *id);
const uint8_t *alcove_identity_dh_pub(const alcove_identity *id);
const uint8_t *alcove_identity_store_key(const alcove_identity *id);

/* Ed25519 signature over msg[0..len) into sig (64 bytes).
 * Returns 0, or ALCOVE_EINVAL (NULL arguments). */
int alcove_identity_sign(const alcove_identity *id, const uint8_t *msg,
                         size_t len, uint8_t sig[ALCOVE_SIG_BYTES]);

/* X25519 of the identity's DH secret with peer_pub into out (32 bytes).
 * Returns 0, or ALCOVE_EINVAL, ALCOVE_EBADKEY (the result is all zeros:
 * peer_pub is a low-order point; out is then zeroed). */
int alcove_identity_dh(const alcove_identity *id,
                       const uint8_t peer_pub[ALCOVE_DH_BYTES],
                       uint8_t out[ALCOVE_DH_BYTES]);

/* Encrypt id under pass[0..pass_len) (pass may be NULL when pass_len is 0)
 * into out (exactly ALCOVE_IDENTITY_FILE_BYTES, format above) with a fresh
 * salt and nonce.  opslimit == memlimit == 0 selects the defaults.
 * Returns 0, or ALCOVE_EINVAL (NULL arguments, cost outside the bounds),
 * ALCOVE_ENOMEM (Argon2id could not get its memory). */
int alcove_identity_encode(const alcove_identity *id, const char *pass,
                           size_t pass_len, uint64_t opslimit,
                           uint64_t memlimit,
                           uint8_t out[ALCOVE_IDENTITY_FILE_BYTES]);

/* Decrypt a keystore image buf[0..len) (any bytes: this is the parser
 * fuzzers exercise).  Checks run in this order, each before any key is
 * derived except the last:
 *   ALCOVE_ETRUNC    shorter than the tag, version and header it claims
 *                    (a proper prefix of a valid file);
 *   ALCOVE_EFORMAT   wrong tag, unknown version or KDF;
 *   ALCOVE_ECORRUPT  wrong total length, or Argon2id cost out of bounds;
 *   ALCOVE_ENOMEM    Argon2id or the identity could not be allocated;
 *   ALCOVE_EPASS     authentication failed: a wrong passphrase or an altered
 *                    file (the two cannot be told apart);
 *   ALCOVE_ECORRUPT  authentic, but the key pairs are inconsistent.
 * Also ALCOVE_EINVAL for NULL arguments.  Returns 0 and *out on success. */
int alcove_identity_decode(const uint8_t *buf, size_t len, const char *pass,
                           size_t pass_len, alcove_identity **out);

/* Encode and write to path atomically (keys_file.h: 0600 temp file in the same
 * directory, fsync, rename or link, fsync the directory).  Without
 * ALCOVE_IDENTITY_REPLACE in flags, an existing file is never overwritten.
 * Returns 0, or those of alcove_identity_encode, ALCOVE_EEXIST,
 * ALCOVE_EIO (errno preserved). */
int alcove_identity_save(const alcove_identity *id, const char *path,
                         const char *pass, size_t pass_len, uint64_t opslimit,
                         uint64_t memlimit, int flags);

/* Read path and decode it.  The file is only read, never changed.
 * Returns 0 and *out, those of alcove_identity_decode, ALCOVE_ENOTFOUND
 * (no such file), ALCOVE_ECORRUPT (file larger than any keystore),
 * ALCOVE_EIO (errno preserved). */
int alcove_identity_load(const char *path, const char *pass, size_t pass_len,
                         alcove_identity **out);

#endif
