/* The Double Ratchet (Signal's specification) with alcove's KDFs
 * (DESIGN.md section 5):
 *
 *   KDF_RK(rk, dh) = HKDF(salt = rk, ikm = dh, info = "alcove-ratchet-v1",
 *                         64 bytes) -> new rk (32) || chain key (32)
 *   KDF_CK(ck)     = next ck = HMAC-SHA256(ck, 0x02),
 *                    mk      = HMAC-SHA256(ck, 0x01)
 *   message keys   = HKDF(salt = 32 zero bytes, ikm = mk,
 *                         info = "alcove-msg-v1", 56 bytes)
 *                    -> XChaCha20-Poly1305 key (32) || nonce (24)
 *   header         = dh_pub (32) || pn (u32 BE) || n (u32 BE), 40 bytes
 *   AEAD data      = X3DH AD (128) || header
 *
 * Receiving rules: at most ALCOVE_RATCHET_MAX_SKIP message keys are skipped
 * per chain (exactly 1000 is allowed, 1001 refused); at most
 * ALCOVE_RATCHET_MAX_STORED skipped keys are kept, the oldest evicted first;
 * these bounds are checked before any key is derived.  Decryption is
 * transactional: it never changes the state it is given and returns a new
 * state only when the message authenticates, so the caller stores that state
 * in the same local transaction as the message and then swaps it in.  The
 * BLAKE2b-256 digests of the last ALCOVE_RATCHET_DUP_WINDOW authenticated
 * (header || ciphertext) pairs are remembered: the same message again is
 * ALCOVE_EDUP (drop it quietly and ack).
 *
 * Memory: the ratchet secret key, root and chain keys live in one
 * sodium_malloc block per state, skipped message keys in another; message
 * keys and KDF outputs on the stack are wiped before every return.  A state
 * is not thread-safe; distinct states are independent.  Randomness (new
 * ratchet keys) comes from libsodium's randombytes: call sodium_init() first
 * (the init functions do). */
#ifndef ALCOVE_RATCHET_H
#define ALCOVE_RATCHET_H

#include <stddef.h>
#include <stdint.h>

#define ALCOVE_RATCHET_KEY_BYTES 32u
#define ALCOVE_RATCHET_AD_BYTES 128u /* the X3DH AD */
#define ALCOVE_RATCHET_HEADER_BYTES 40u
#define ALCOVE_RATCHET_TAG_BYTES 16u /* ciphertext = plaintext + 16 */
#define ALCOVE_RATCHET_MAX_PLAINTEXT 65536u
#define ALCOVE_RATCHET_MAX_SKIP 1000u
#define ALCOVE_RATCHET_MAX_STORED 2000u
#define ALCOVE_RATCHET_DUP_WINDOW 4096u
#define ALCOVE_RATCHET_STATE_VERSION 1u
/* Largest serialized state (all skipped keys and digests in use). */
#define ALCOVE_RATCHET_STATE_MAX                                               \
    (306u + ALCOVE_RATCHET_MAX_STORED * 68u + ALCOVE_RATCHET_DUP_WINDOW * 32u)

typedef struct alcove_ratchet alcove_ratchet;

/* Alice (the accepter A): shared secret sk from X3DH, Bob's ratchet public
 * key bob_pub (the invite's prekey P), the X3DH AD.  Generates Alice's first
 * ratchet key pair; she can encrypt at once.
 * Returns 0 and *out (free with alcove_ratchet_free), or ALCOVE_EINVAL,
 * ALCOVE_EBADKEY (bob_pub is a low-order point), ALCOVE_ENOMEM. */
int alcove_ratchet_init_alice(alcove_ratchet **out,
                              const uint8_t sk[ALCOVE_RATCHET_KEY_BYTES],
                              const uint8_t bob_pub[ALCOVE_RATCHET_KEY_BYTES],
                              const uint8_t ad[ALCOVE_RATCHET_AD_BYTES]);

/* Bob (the inviter B): sk from X3DH and the prekey pair P (secret, public),
 * which becomes his first ratchet key.  He can encrypt only after the first
 * message from Alice.  Returns 0 and *out, or ALCOVE_EINVAL (also when
 * bob_pub does not belong to bob_sk), ALCOVE_ENOMEM. */
int alcove_ratchet_init_bob(alcove_ratchet **out,
                            const uint8_t sk[ALCOVE_RATCHET_KEY_BYTES],
                            const uint8_t bob_sk[ALCOVE_RATCHET_KEY_BYTES],
                            const uint8_t bob_pub[ALCOVE_RATCHET_KEY_BYTES],
                            const uint8_t ad[ALCOVE_RATCHET_AD_BYTES]);

/* Wipe and free.  NULL is a no-op. */
void alcove_ratchet_free(alcove_ratchet *r);

/* Deep copy.  Returns 0 and *out, or ALCOVE_EINVAL, ALCOVE_ENOMEM. */
int alcove_ratchet_clone(const alcove_ratchet *r, alcove_ratchet **out);

/* Encrypt pt[0..pt_len) (pt_len <= ALCOVE_RATCHET_MAX_PLAINTEXT) into
 * header (40 bytes) and ct (pt_len + 16 bytes, ct_cap at least that; ct may
 * equal pt).  Advances r's sending chain, only on success.
 * Returns 0 and *ct_len, or
 *   ALCOVE_EINVAL  NULL arguments;
 *   ALCOVE_ESTATE  no sending chain yet (Bob before Alice's first message);
 *   ALCOVE_ETOOBIG pt_len over the maximum or ct_cap too small;
 *   ALCOVE_ELIMIT  the chain's counter is exhausted (2^32 - 1 messages). */
int alcove_ratchet_encrypt(alcove_ratchet *r, const uint8_t *pt, size_t pt_len,
                           uint8_t header[ALCOVE_RATCHET_HEADER_BYTES],
                           uint8_t *ct, size_t ct_cap, size_t *ct_len);

/* Decrypt one message.  r is never changed.  On success returns 0, writes
 * the plaintext to pt[0..*pt_len) (pt_cap >= ct_len - 16; pt may equal ct)
 * and sets *next to the advanced state (caller owns it; r stays valid and
 * should be freed once *next is committed).  On failure *next is NULL and
 * pt[0..pt_cap) holds no plaintext.  Errors, in the order checked:
 *   ALCOVE_EINVAL    NULL arguments;
 *   ALCOVE_EMALFORMED header not 40 bytes, ct shorter than the tag or longer
 *                    than the maximum;
 *   ALCOVE_ETOOBIG   pt_cap too small;
 *   ALCOVE_EDUP      this exact message was already decrypted (quietly drop);
 *   ALCOVE_ELIMIT    it would skip more than MAX_SKIP keys in one chain (or
 *                    the counter would overflow): nothing was derived;
 *   ALCOVE_EDECRYPT  authentication failed, or the message is older than the
 *                    receiving chain and its key is gone (used or evicted);
 *   ALCOVE_EBADKEY   the header's ratchet key is a low-order point;
 *   ALCOVE_ENOMEM    out of memory. */
int alcove_ratchet_decrypt(const alcove_ratchet *r, const uint8_t *header,
                           size_t header_len, const uint8_t *ct, size_t ct_len,
                           uint8_t *pt, size_t pt_cap, size_t *pt_len,
                           alcove_ratchet **next);

/* 1 when r has a sending chain (alcove_ratchet_encrypt can succeed). */
int alcove_ratchet_can_send(const alcove_ratchet *r);

/* The ratchet public key the next message's header will carry (dh_pub).
 * It changes only with a DH ratchet step (a message from the peer on a new
 * chain), never with alcove_ratchet_encrypt; the client uses it after a
 * restore from a backup to know when the session has taken a fresh step.
 * Returns 0 and out (32 bytes), ALCOVE_EINVAL (NULL arguments) or
 * ALCOVE_ESTATE (no sending chain yet). */
int alcove_ratchet_sending_pub(const alcove_ratchet *r,
                               uint8_t out[ALCOVE_RATCHET_KEY_BYTES]);

/* Skipped message keys currently stored (0..ALCOVE_RATCHET_MAX_STORED). */
size_t alcove_ratchet_stored_keys(const alcove_ratchet *r);

/* The X3DH AD the state was created with (128 bytes, owned by r), or NULL
 * when r is NULL. */
const uint8_t *alcove_ratchet_ad(const alcove_ratchet *r);

/* Serialization for the client's encrypted local store.  The bytes hold
 * every secret of the session: seal them (store key) and wipe the buffer.
 * Layout (big-endian): version (1) | flags (1) | dhs_sk | dhr | rk | cks |
 * ckr (32 each) | ns | nr | pn (u32) | AD (128) | nskipped (u16) |
 * nskipped x (dh 32 | n u32 | mk 32), oldest first | ndigests (u16) |
 * ndigests x 32, oldest first.
 *
 * alcove_ratchet_serialized_size: exact bytes needed (<= STATE_MAX).
 * alcove_ratchet_serialize: returns 0 and *len, or ALCOVE_EINVAL,
 *   ALCOVE_ETOOBIG (cap too small). */
size_t alcove_ratchet_serialized_size(const alcove_ratchet *r);
int alcove_ratchet_serialize(const alcove_ratchet *r, uint8_t *out, size_t cap,
                             size_t *len);

/* Rebuild a state from alcove_ratchet_serialize's bytes.
 * Returns 0 and *out, or ALCOVE_EINVAL (NULL arguments), ALCOVE_ETRUNC
 * (shorter than its own counts say), ALCOVE_EFORMAT (unknown version),
 * ALCOVE_ECORRUPT (bad flags, counts over the bounds, trailing bytes, keys
 * inconsistent), ALCOVE_ENOMEM. */
int alcove_ratchet_deserialize(const uint8_t *buf, size_t len,
                               alcove_ratchet **out);

#endif
