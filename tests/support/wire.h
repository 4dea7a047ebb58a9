/* Test support: one-line wrappers for each relay command over a real
 * alcove_link.  Each returns the reply's Status (>= 0) or a negative alcove
 * error when the connection failed or timed out. */
#ifndef ALCOVE_TEST_WIRE_H
#define ALCOVE_TEST_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "link.h"

#define TW_TIMEOUT 10000

typedef struct test_mbox {
    uint8_t auth_pk[32];
    uint8_t auth_sk[64];
    uint8_t secret[32];
    uint8_t recv_id[16];
    uint8_t send_id[16];
} test_mbox;

/* Connect and say Hello; aborts the test (cmocka fail) on failure. */
alcove_link *tw_connect(const alcove_relay_addr *a);

int tw_create(alcove_link *l, test_mbox *mb);
/* Login signed over this link's handshake hash. */
int tw_login(alcove_link *l, const test_mbox *mb);
/* Login with a signature over another hash (e.g. another connection's). */
int tw_login_with_hash(alcove_link *l, const test_mbox *mb, const uint8_t h[64]);
int tw_send(alcove_link *l, const uint8_t send_id[16], const uint8_t secret[32],
            const uint8_t *blob, size_t len);
/* *out receives the RelayMessage (free with
 * alcove__wire__relay_message__free_unpacked(*out, NULL)); may be NULL. */
int tw_fetch(alcove_link *l, const uint8_t recv_id[16], uint64_t after, uint32_t max,
             Alcove__Wire__RelayMessage **out);
int tw_ack(alcove_link *l, const uint8_t recv_id[16], uint64_t up_to);
int tw_subscribe(alcove_link *l, const uint8_t recv_id[16]);
int tw_delete(alcove_link *l, const uint8_t recv_id[16]);
int tw_ping(alcove_link *l);

#endif
