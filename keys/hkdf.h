/* HKDF-SHA256 (RFC 5869) and HMAC-SHA256 on libsodium's
 * crypto_auth_hmacsha256 multi-part API.
 *
 * Salt, input key material and info may have any length (0 included; a
 * pointer may be NULL only when its length is 0).  An empty salt is the
 * RFC's "not provided": HMAC pads its key with zeros, so it equals a salt of
 * 32 zero bytes.  Every intermediate value lives on the stack and is wiped
 * before return, on every path.  Output buffers may not overlap the inputs. */
#ifndef ALCOVE_HKDF_H
#define ALCOVE_HKDF_H

#include <stddef.h>
#include <stdint.h>

#define ALCOVE_HKDF_HASH_BYTES 32u                          /* SHA-256 output */
#define ALCOVE_HKDF_MAX_OUT ((size_t)255u * ALCOVE_HKDF_HASH_BYTES) /* 8160 */

/* HMAC-SHA256(key, msg) -> out (32 bytes).
 * Returns 0, or ALCOVE_EINVAL (NULL pointer with a non-zero length). */
int alcove_hmac_sha256(uint8_t out[ALCOVE_HKDF_HASH_BYTES], const uint8_t *key,
                       size_t key_len, const uint8_t *msg, size_t msg_len);

/* HKDF-Extract: prk = HMAC-SHA256(salt, ikm).
 * Returns 0, or ALCOVE_EINVAL. */
int alcove_hkdf_extract(uint8_t prk[ALCOVE_HKDF_HASH_BYTES],
                        const uint8_t *salt, size_t salt_len,
                        const uint8_t *ikm, size_t ikm_len);

/* HKDF-Expand: out_len bytes (1..ALCOVE_HKDF_MAX_OUT) from prk and info.
 * Returns 0, or ALCOVE_EINVAL (out_len 0 or above the maximum, NULL
 * pointers).  On error `out` (when not NULL and out_len is within the
 * maximum) is zeroed. */
int alcove_hkdf_expand(uint8_t *out, size_t out_len,
                       const uint8_t prk[ALCOVE_HKDF_HASH_BYTES],
                       const uint8_t *info, size_t info_len);

/* Extract then Expand in one call.  Same returns as alcove_hkdf_expand. */
int alcove_hkdf(uint8_t *out, size_t out_len, const uint8_t *salt,
                size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                const uint8_t *info, size_t info_len);

#endif
