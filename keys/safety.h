/* Safety numbers (DESIGN.md section 5).
 *
 * Each identity's half: BLAKE2b-512 of "alcove-safety-v1" || sig_pub ||
 * dh_pub; its first 30 bytes read as six 5-byte big-endian integers, each
 * mod 100000 and printed as 5 digits with leading zeros: 30 digits.  The
 * safety number of two identities is their halves sorted ascending (as digit
 * strings) and joined: 60 digits, the same on both sides.  The QR code holds
 * the 60 digits; people read it as 12 groups of 5 separated by spaces. */
#ifndef ALCOVE_SAFETY_H
#define ALCOVE_SAFETY_H

#include <stddef.h>
#include <stdint.h>

#define ALCOVE_SAFETY_HALF_DIGITS 30u
#define ALCOVE_SAFETY_DIGITS 60u
#define ALCOVE_SAFETY_GROUP 5u
/* Buffer sizes, NUL included: 31, 61, 72 (60 digits + 11 spaces) and 36. */
#define ALCOVE_SAFETY_HALF_BUF (ALCOVE_SAFETY_HALF_DIGITS + 1u)
#define ALCOVE_SAFETY_BUF (ALCOVE_SAFETY_DIGITS + 1u)
#define ALCOVE_SAFETY_DISPLAY_BUF (ALCOVE_SAFETY_DIGITS + 11u + 1u)
#define ALCOVE_SAFETY_HALF_DISPLAY_BUF (ALCOVE_SAFETY_HALF_DIGITS + 5u + 1u)

/* One identity's 30 digits (what `whoami` shows), NUL-terminated in out.
 * Returns 0, or ALCOVE_EINVAL (NULL arguments). */
int alcove_safety_half(const uint8_t sig_pub[32], const uint8_t dh_pub[32],
                       char out[ALCOVE_SAFETY_HALF_BUF]);

/* The 60-digit safety number of identities a and b (order of the arguments
 * does not matter), NUL-terminated in out.  Returns 0 or ALCOVE_EINVAL. */
int alcove_safety_number(const uint8_t a_sig_pub[32],
                         const uint8_t a_dh_pub[32],
                         const uint8_t b_sig_pub[32],
                         const uint8_t b_dh_pub[32],
                         char out[ALCOVE_SAFETY_BUF]);

/* Group a digit string (length a non-zero multiple of 5, e.g. a half or a
 * full number) into blocks of 5 separated by single spaces, NUL-terminated.
 * Returns 0, or ALCOVE_EINVAL (NULL, bad length or a non-digit),
 * ALCOVE_ETOOBIG (cap too small: 60 digits need ALCOVE_SAFETY_DISPLAY_BUF). */
int alcove_safety_display(const char *digits, char *out, size_t cap);

#endif
