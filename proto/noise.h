/* Noise_NK_25519_ChaChaPoly_BLAKE2b (Noise revision 34) on libsodium.
 *
 *   NK:  <- s
 *        ...
 *        -> e, es
 *        <- e, ee
 *
 * The initiator (client) knows the responder's (relay's) static key.  After
 * message 2, Split() gives the transport: first cipher initiator->responder,
 * second responder->initiator.  The handshake hash h (64 bytes) binds Login.
 *
 * Handshake and transport state hold keys: they live in plain heap memory
 * (a relay holds one per connection, so guarded pages would cost 16 KiB each)
 * and are wiped with sodium_memzero when freed.  Long-term static keys belong
 * in sodium_malloc memory owned by the caller. */
#ifndef ALCOVE_NOISE_H
#define ALCOVE_NOISE_H

#include <stddef.h>
#include <stdint.h>

#define ALCOVE_NOISE_KEY_BYTES 32u
#define ALCOVE_NOISE_HASH_BYTES 64u
#define ALCOVE_NOISE_TAG_BYTES 16u
#define ALCOVE_NOISE_MSG_MAX 65535u
/* Largest plaintext in one transport message. */
#define ALCOVE_NOISE_PLAINTEXT_MAX (ALCOVE_NOISE_MSG_MAX - ALCOVE_NOISE_TAG_BYTES)
/* Size of handshake messages 1 and 2 with empty payloads. */
#define ALCOVE_NOISE_HS1_BYTES 48u /* e (32) + tag of empty payload (16) */
#define ALCOVE_NOISE_HS2_BYTES 48u

/* The prologue alcove uses: the 8 ASCII bytes "alcove/1". */
#define ALCOVE_NOISE_PROLOGUE "alcove/1"
#define ALCOVE_NOISE_PROLOGUE_LEN 8u

typedef struct alcove_noise_hs alcove_noise_hs;
typedef struct alcove_noise_transport alcove_noise_transport;

/* New initiator handshake that knows the responder static public key `rs`.
 * A fresh ephemeral key is generated unless alcove_noise_hs_set_ephemeral()
 * is called before the first write.  Calls sodium_init().  Returns 0,
 * ALCOVE_ENOMEM, ALCOVE_EINVAL (prologue NULL with a length), ALCOVE_EIO
 * (libsodium could not initialise). */
int alcove_noise_hs_initiator(alcove_noise_hs **out, const uint8_t rs[32],
                              const uint8_t *prologue, size_t prologue_len);

/* New responder handshake with static key pair (s_priv, s_pub).  The key
 * bytes are copied.  Returns as alcove_noise_hs_initiator. */
int alcove_noise_hs_responder(alcove_noise_hs **out, const uint8_t s_priv[32],
                              const uint8_t s_pub[32], const uint8_t *prologue,
                              size_t prologue_len);

/* Test vectors only: fix the ephemeral private key.  Must be called before
 * this side writes its `e`.  Returns 0 or ALCOVE_ESTATE. */
int alcove_noise_hs_set_ephemeral(alcove_noise_hs *hs, const uint8_t e_priv[32]);

/* Write this side's next handshake message carrying `payload` into out.
 * Returns 0 and sets *out_len, or ALCOVE_ESTATE (not our turn / finished),
 * ALCOVE_ETOOBIG (out_cap too small or message over 65535; nothing changes),
 * ALCOVE_EINVAL (payload NULL with a length), ALCOVE_EBADKEY (a DH gave all
 * zeros: the handshake is dead and must only be freed).  out must not
 * overlap payload. */
int alcove_noise_hs_write(alcove_noise_hs *hs, const uint8_t *payload,
                          size_t payload_len, uint8_t *out, size_t out_cap,
                          size_t *out_len);

/* Read the peer's next handshake message; its payload goes to payload_out.
 * Returns 0 and sets *payload_len, or ALCOVE_ESTATE, ALCOVE_ETRUNC (too
 * short), ALCOVE_EDECRYPT, ALCOVE_EBADKEY, ALCOVE_ETOOBIG (payload_cap, or
 * msg_len over 65535).  payload_out may be NULL when payload_cap is 0.
 * After any error the handshake is dead and must only be freed. */
int alcove_noise_hs_read(alcove_noise_hs *hs, const uint8_t *msg, size_t msg_len,
                         uint8_t *payload_out, size_t payload_cap,
                         size_t *payload_len);

/* 1 once both handshake messages have been processed, else 0. */
int alcove_noise_hs_done(const alcove_noise_hs *hs);

/* Split a finished handshake into a transport and copy the handshake hash h
 * into h_out (64 bytes).  The handshake is left wiped and must still be freed.
 * Returns 0, ALCOVE_ESTATE (not finished), ALCOVE_ENOMEM. */
int alcove_noise_hs_split(alcove_noise_hs *hs, alcove_noise_transport **out,
                          uint8_t h_out[64]);

/* Wipe and free.  NULL is a no-op. */
void alcove_noise_hs_free(alcove_noise_hs *hs);

/* Encrypt one transport message (empty associated data).  out must hold
 * pt_len + 16 bytes; in-place (out == pt) is allowed.  Returns 0, or
 * ALCOVE_ETOOBIG (pt_len > ALCOVE_NOISE_PLAINTEXT_MAX), ALCOVE_ESTATE (nonce
 * exhausted). */
int alcove_noise_encrypt(alcove_noise_transport *t, const uint8_t *pt,
                         size_t pt_len, uint8_t *out);

/* Decrypt one transport message of ct_len bytes into out (ct_len - 16 bytes;
 * in-place allowed).  Returns 0, or ALCOVE_ETRUNC (shorter than the tag),
 * ALCOVE_ETOOBIG (over 65535 bytes), ALCOVE_EDECRYPT, ALCOVE_ESTATE (nonce
 * exhausted).  A failed decrypt does not advance the nonce. */
int alcove_noise_decrypt(alcove_noise_transport *t, const uint8_t *ct,
                         size_t ct_len, uint8_t *out);

/* Wipe and free.  NULL is a no-op. */
void alcove_noise_transport_free(alcove_noise_transport *t);

#endif
