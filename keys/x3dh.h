/* X3DH key agreement as alcove uses it (DESIGN.md section 5).
 *
 * Accepter A (identity IK_A, fresh ephemeral EK_A), inviter B (identity
 * IK_B, one-time prekey P from the invite):
 *   DH1 = DH(IK_A, P), DH2 = DH(EK_A, IK_B), DH3 = DH(EK_A, P)
 *   SK  = HKDF-SHA256(salt = 32 zero bytes,
 *                     ikm  = 32 bytes 0xFF || DH1 || DH2 || DH3,
 *                     info = "alcove-x3dh-v1", 32 bytes)
 *   AD  = A.sig_pub || A.dh_pub || B.sig_pub || B.dh_pub   (128 bytes)
 * Any DH output of all zeros (a low-order public key) aborts.  Every
 * intermediate is wiped before return; on error sk and ad are zeroed.
 * Afterwards A initialises the ratchet as Alice with (SK, P) and B as Bob
 * with (SK, P's key pair); B then deletes P. */
#ifndef ALCOVE_X3DH_H
#define ALCOVE_X3DH_H

#include <stdint.h>

#include "identity.h"

#define ALCOVE_X3DH_SK_BYTES 32u
#define ALCOVE_X3DH_AD_BYTES 128u

/* Accepter side.  Generates the ephemeral key pair (the secret never leaves
 * this call) and writes its public key to ek_pub for the intro.
 * Returns 0, or ALCOVE_EINVAL (NULL arguments), ALCOVE_EBADKEY (a DH
 * result was all zeros: b_dh_pub or prekey_pub is a low-order point). */
int alcove_x3dh_accept(const alcove_identity *a,
                       const uint8_t b_sig_pub[ALCOVE_SIG_PUB_BYTES],
                       const uint8_t b_dh_pub[ALCOVE_DH_BYTES],
                       const uint8_t prekey_pub[ALCOVE_DH_BYTES],
                       uint8_t ek_pub[ALCOVE_DH_BYTES],
                       uint8_t sk[ALCOVE_X3DH_SK_BYTES],
                       uint8_t ad[ALCOVE_X3DH_AD_BYTES]);

/* As alcove_x3dh_accept with a caller-chosen ephemeral secret (test vectors
 * only: reusing an ephemeral key is a fatal mistake).  ek_pub receives its
 * public key. */
int alcove_x3dh_accept_with(const alcove_identity *a,
                            const uint8_t ek_sk[ALCOVE_DH_BYTES],
                            const uint8_t b_sig_pub[ALCOVE_SIG_PUB_BYTES],
                            const uint8_t b_dh_pub[ALCOVE_DH_BYTES],
                            const uint8_t prekey_pub[ALCOVE_DH_BYTES],
                            uint8_t ek_pub[ALCOVE_DH_BYTES],
                            uint8_t sk[ALCOVE_X3DH_SK_BYTES],
                            uint8_t ad[ALCOVE_X3DH_AD_BYTES]);

/* Inviter side, from the intro's A.sig_pub, A.dh_pub and EK_A and the
 * prekey secret of the invite it answers.
 * Returns 0, or ALCOVE_EINVAL, ALCOVE_EBADKEY (as above). */
int alcove_x3dh_respond(const alcove_identity *b,
                        const uint8_t prekey_sk[ALCOVE_DH_BYTES],
                        const uint8_t a_sig_pub[ALCOVE_SIG_PUB_BYTES],
                        const uint8_t a_dh_pub[ALCOVE_DH_BYTES],
                        const uint8_t ek_pub[ALCOVE_DH_BYTES],
                        uint8_t sk[ALCOVE_X3DH_SK_BYTES],
                        uint8_t ad[ALCOVE_X3DH_AD_BYTES]);

#endif
