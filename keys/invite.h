/* Invites (DESIGN.md section 5): made by the inviter (therapist), handed to
 * the accepter (client) out of band as a text code.
 *
 *   InviteBody  protobuf (alcove.e2e), serialized once
 *   Invite      { body, signature = Ed25519 by the inviter's identity over
 *                 "alcove-invite-v1" || body }
 *   code        "alcove:" + base64url-no-padding(Invite bytes ||
 *                 first 4 bytes of BLAKE2b-256(Invite bytes))
 *
 * Each invite carries its own mailbox capability (send_id, send_secret) and
 * its own one-time prekey (make one with crypto_box_keypair(prekey_pub,
 * prekey_sk) and randombytes_buf(prekey_id, 8); keep prekey_sk until the
 * intro arrives).  The code contains secrets: treat it as one.
 *
 * Strings: relay_address must parse (proto/address.h); display_name and
 * notice are UTF-8 without control characters (notice may hold '\n'), at
 * most ALCOVE_INVITE_NAME_MAX / ALCOVE_INVITE_NOTICE_MAX bytes, so a hostile
 * invite cannot smuggle terminal escapes into what the accepter sees. */
#ifndef ALCOVE_INVITE_H
#define ALCOVE_INVITE_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "identity.h"

#define ALCOVE_INVITE_VERSION 1u
#define ALCOVE_INVITE_PREFIX "alcove:"
#define ALCOVE_INVITE_ID_BYTES 16u     /* send_id */
#define ALCOVE_INVITE_SECRET_BYTES 32u /* send_secret */
#define ALCOVE_INVITE_PREKEY_ID_BYTES 8u
#define ALCOVE_INVITE_NAME_MAX 128u    /* bytes, without NUL */
#define ALCOVE_INVITE_NOTICE_MAX 1024u /* bytes, without NUL */
/* Longest code accepted or produced, white space included, with its NUL. */
#define ALCOVE_INVITE_TEXT_MAX 8192u
/* Default lifetime: 7 days in milliseconds. */
#define ALCOVE_INVITE_LIFETIME_MS (7ull * 24u * 3600u * 1000u)

typedef struct alcove_invite {
    uint32_t version;                        /* ALCOVE_INVITE_VERSION */
    char relay_address[ALCOVE_ADDR_STR_MAX]; /* where send_id lives */
    uint8_t send_id[ALCOVE_INVITE_ID_BYTES];
    uint8_t send_secret[ALCOVE_INVITE_SECRET_BYTES];
    uint8_t sig_pub[ALCOVE_SIG_PUB_BYTES]; /* inviter's identity */
    uint8_t dh_pub[ALCOVE_DH_BYTES];
    uint8_t prekey_pub[ALCOVE_DH_BYTES]; /* one-time prekey P */
    uint8_t prekey_id[ALCOVE_INVITE_PREKEY_ID_BYTES];
    char display_name[ALCOVE_INVITE_NAME_MAX + 1];
    char notice[ALCOVE_INVITE_NOTICE_MAX + 1];
    uint64_t expires_at; /* Unix ms */
} alcove_invite;

/* Build, sign and encode an invite.  Takes every field of *inv except
 * version (always ALCOVE_INVITE_VERSION) and sig_pub/dh_pub (taken from
 * signer).  Writes the NUL-terminated code (no white space) to out.
 * Returns 0, or
 *   ALCOVE_EINVAL  NULL arguments, expires_at 0, a string too long, not
 *                  UTF-8 or holding control characters;
 *   ALCOVE_EADDR   relay_address does not parse;
 *   ALCOVE_ETOOBIG cap too small (ALCOVE_INVITE_TEXT_MAX always suffices);
 *   ALCOVE_ENOMEM. */
int alcove_invite_encode(const alcove_identity *signer,
                         const alcove_invite *inv, char *out, size_t cap);

/* Decode and check a code text[0..len) (need not be NUL-terminated) at time
 * now_ms (Unix ms).  White space anywhere is ignored; the prefix is matched
 * without regard to case.  Checks, in this order, each with its own error:
 *   ALCOVE_EINVAL      NULL arguments;
 *   ALCOVE_ETOOBIG     len > ALCOVE_INVITE_TEXT_MAX (before anything else);
 *   ALCOVE_ENOTINVITE  no "alcove:" prefix;
 *   ALCOVE_EMISTYPED   bad base64url, or checksum mismatch;
 *   ALCOVE_EMALFORMED  bytes that do not parse, a missing field, or a field
 *                      of the wrong size or content;
 *   ALCOVE_EBADSIG     signature does not verify against the body's sig_pub;
 *   ALCOVE_EVERSION    version is not 1;
 *   ALCOVE_EMALFORMED  relay address does not parse;
 *   ALCOVE_EEXPIRED    now_ms >= expires_at;
 *   ALCOVE_ENOMEM.
 * On success, and on ALCOVE_EEXPIRED (so the caller can say whose invite
 * expired), *out is filled; on every other error it is zeroed.  *out holds
 * send_secret: wipe it (sodium_memzero) when done. */
int alcove_invite_decode(const char *text, size_t len, uint64_t now_ms,
                         alcove_invite *out);

#endif
