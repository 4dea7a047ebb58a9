/* Envelopes: the blob the relay stores (DESIGN.md section 5).
 *
 *   Envelope { version = 1; oneof kind { bytes intro_sealed;
 *                                        RatchetMessage message; } }
 *   RatchetMessage { header (40); ciphertext }
 *   IntroInner { sig_pub; dh_pub; ephemeral_pub; prekey_id (8); message }
 *
 * A message's plaintext is the serialized Content padded to a bucket
 * (pad.h) and encrypted with the ratchet (ratchet.h).  The accepter's first
 * message is an intro: IntroInner sealed to the invite's prekey P with
 * crypto_box_seal, so the relay never learns who is writing.
 *
 * Ownership: callers pass their own buffers; ALCOVE_ENVELOPE_MAX bytes
 * always hold a blob and ALCOVE_PAD_MAX_CONTENT bytes a Content.  Plaintext
 * scratch space is heap memory wiped before it is freed.  Content is opaque
 * bytes here: unpacking and validating it (mood 0-10, ...) is the caller's
 * job. */
#ifndef ALCOVE_ENVELOPE_H
#define ALCOVE_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "invite.h"
#include "pad.h"
#include "ratchet.h"

#define ALCOVE_ENVELOPE_VERSION 1u
/* Largest blob either kind can produce (a full 61440-byte bucket, its tag,
 * header, IntroInner keys, sealed-box overhead and protobuf framing). */
#define ALCOVE_ENVELOPE_MAX 61952u

#define ALCOVE_ENVELOPE_MESSAGE 1 /* a ratchet message */
#define ALCOVE_ENVELOPE_INTRO 2   /* a sealed intro */

/* What kind of envelope blob[0..len) is, without decrypting anything.
 * Returns ALCOVE_ENVELOPE_MESSAGE or ALCOVE_ENVELOPE_INTRO, or
 *   ALCOVE_EINVAL     NULL blob;
 *   ALCOVE_ETOOBIG    len > ALCOVE_ENVELOPE_MAX;
 *   ALCOVE_EMALFORMED not an Envelope, no version, or no kind;
 *   ALCOVE_EVERSION   version other than 1. */
int alcove_envelope_kind(const uint8_t *blob, size_t len);

/* Pad content[0..len), encrypt it with r (advancing r's sending chain only
 * on success) and wrap it as a message Envelope in out.
 * Returns 0 and *out_len, or ALCOVE_EINVAL, ALCOVE_ETOOBIG (content over
 * ALCOVE_PAD_MAX_CONTENT, or cap too small), ALCOVE_ENOMEM, and those of
 * alcove_ratchet_encrypt (ALCOVE_ESTATE, ALCOVE_ELIMIT). */
int alcove_envelope_seal(alcove_ratchet *r, const uint8_t *content, size_t len,
                         uint8_t *out, size_t cap, size_t *out_len);

/* Open a message Envelope with r (never changed).  On success returns 0,
 * the Content bytes in content[0..*content_len) and the advanced state in
 * *next (store it with the message, then replace r).  Errors:
 *   those of alcove_envelope_kind (ALCOVE_EMALFORMED also for an intro, a
 *     missing field or a header that is not 40 bytes);
 *   those of alcove_ratchet_decrypt, notably ALCOVE_EDUP (drop quietly),
 *     ALCOVE_ELIMIT and ALCOVE_EDECRYPT; *next is NULL;
 *   ALCOVE_ECORRUPT   the message authenticated but its padding is invalid:
 *     it is consumed, so *next IS set and must be committed like a success;
 *     content is empty;
 *   ALCOVE_ETOOBIG    cap < ALCOVE_PAD_MAX_CONTENT. */
int alcove_envelope_open(const alcove_ratchet *r, const uint8_t *blob,
                         size_t len, uint8_t *content, size_t cap,
                         size_t *content_len, alcove_ratchet **next);

/* Accepter: run X3DH against the invite, start the session as Alice, and
 * seal content (the Intro Content) into an intro Envelope in out.
 * *session receives the new ratchet state (caller owns it).
 * Returns 0, or ALCOVE_EINVAL, ALCOVE_EBADKEY (low-order key in the
 * invite), ALCOVE_ETOOBIG, ALCOVE_ENOMEM. */
int alcove_intro_seal(const alcove_identity *a, const alcove_invite *inv,
                      const uint8_t *content, size_t len, uint8_t *out,
                      size_t cap, size_t *out_len, alcove_ratchet **session);

/* Inviter: open an intro that arrived in the mailbox of the invite whose
 * prekey is (prekey_sk, prekey_pub, prekey_id).  On success returns 0, the
 * accepter's identity keys in a_sig_pub / a_dh_pub, the Content in
 * content[0..*content_len) and the new session (as Bob) in *session; the
 * caller then deletes the prekey.  On any error nothing is returned and the
 * prekey stays usable:
 *   those of alcove_envelope_kind (ALCOVE_EMALFORMED also for a message);
 *   ALCOVE_EDECRYPT   the sealed box does not open with this prekey, or the
 *                     inner message does not authenticate;
 *   ALCOVE_EMALFORMED IntroInner does not parse, has wrong field sizes, or
 *                     its message is not the first of a chain (pn, n != 0);
 *   ALCOVE_ENOTFOUND  IntroInner.prekey_id is not this invite's;
 *   ALCOVE_EBADKEY    a low-order key;
 *   ALCOVE_ECORRUPT   authentic but badly padded (rejected: no session);
 *   ALCOVE_ETOOBIG, ALCOVE_EINVAL, ALCOVE_ENOMEM. */
int alcove_intro_open(const alcove_identity *b, const uint8_t prekey_sk[32],
                      const uint8_t prekey_pub[32],
                      const uint8_t prekey_id[ALCOVE_INVITE_PREKEY_ID_BYTES],
                      const uint8_t *blob, size_t len,
                      uint8_t a_sig_pub[ALCOVE_SIG_PUB_BYTES],
                      uint8_t a_dh_pub[ALCOVE_DH_BYTES], uint8_t *content,
                      size_t cap, size_t *content_len,
                      alcove_ratchet **session);

#endif
