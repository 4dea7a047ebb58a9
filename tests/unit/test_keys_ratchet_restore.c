/* Restore safety at the ratchet level (alcove_ratchet_sending_pub).
 *
 * A session restored from a backup must not send on the chain it had when
 * the backup was made: the lost copy may already have used those message
 * keys.  The client therefore waits until the sending ratchet key differs
 * from the backed-up one, which happens only through a DH ratchet step (a
 * peer message on a new chain, with a fresh random key).  These tests check
 * the facts that rule relies on:
 *   - encrypting never changes the sending key; a received new chain does;
 *   - a restored copy that sends again on the backed-up chain WOULD repeat a
 *     (header, key) pair of the lost copy (so the rule is necessary);
 *   - after the peer's next message, the restored copy's headers carry a
 *     key that no header before the restore carried, and the peer decrypts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "keys_testutil.h"
#include "ratchet.h"

#define HDR ALCOVE_RATCHET_HEADER_BYTES
#define TAG ALCOVE_RATCHET_TAG_BYTES

typedef struct pair {
    alcove_ratchet *a, *b;
} pair;

static int setup(void **state)
{
    pair *p = calloc(1, sizeof *p);
    uint8_t sk[32], ad[128], ppub[32], psk[32];
    if (p == NULL)
        return -1;
    randombytes_buf(sk, sizeof sk);
    randombytes_buf(ad, sizeof ad);
    crypto_box_keypair(ppub, psk);
    if (alcove_ratchet_init_alice(&p->a, sk, ppub, ad) != 0 ||
        alcove_ratchet_init_bob(&p->b, sk, psk, ppub, ad) != 0)
        return -1;
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    pair *p = *state;
    alcove_ratchet_free(p->a);
    alcove_ratchet_free(p->b);
    free(p);
    return 0;
}

/* from -> to: encrypt "x", decrypt on the other side, swap in the new state. */
static void deliver(alcove_ratchet *from, alcove_ratchet **to, uint8_t header[HDR],
                    uint8_t ct[1 + TAG])
{
    uint8_t pt[1 + TAG];
    size_t clen = 0, plen = 0;
    alcove_ratchet *next = NULL;
    assert_rc(alcove_ratchet_encrypt(from, (const uint8_t *)"x", 1, header, ct, 1 + TAG, &clen), 0);
    assert_int_equal(clen, 1 + TAG);
    assert_rc(alcove_ratchet_decrypt(*to, header, HDR, ct, clen, pt, sizeof pt, &plen, &next), 0);
    alcove_ratchet_free(*to);
    *to = next;
}

static alcove_ratchet *copy_of(const alcove_ratchet *r)
{
    uint8_t *buf = malloc(ALCOVE_RATCHET_STATE_MAX);
    size_t len = 0;
    alcove_ratchet *c = NULL;
    assert_non_null(buf);
    assert_rc(alcove_ratchet_serialize(r, buf, ALCOVE_RATCHET_STATE_MAX, &len), 0);
    assert_rc(alcove_ratchet_deserialize(buf, len, &c), 0);
    sodium_memzero(buf, len);
    free(buf);
    return c;
}

static void test_sending_pub_arguments_and_no_chain(void **state)
{
    pair *p = *state;
    uint8_t pub[32];
    assert_rc(alcove_ratchet_sending_pub(NULL, pub), ALCOVE_EINVAL);
    assert_rc(alcove_ratchet_sending_pub(p->a, NULL), ALCOVE_EINVAL);
    /* Bob has no sending chain before Alice's first message. */
    assert_rc(alcove_ratchet_sending_pub(p->b, pub), ALCOVE_ESTATE);
    assert_rc(alcove_ratchet_sending_pub(p->a, pub), 0);
}

static void test_sending_pub_matches_headers_and_moves_only_with_a_dh_step(void **state)
{
    pair *p = *state;
    uint8_t h[HDR], ct[1 + TAG], pub0[32], pub1[32], bpub[32];
    assert_rc(alcove_ratchet_sending_pub(p->a, pub0), 0);
    deliver(p->a, &p->b, h, ct);
    assert_memory_equal(h, pub0, 32);
    deliver(p->a, &p->b, h, ct); /* same chain: same key */
    assert_rc(alcove_ratchet_sending_pub(p->a, pub1), 0);
    assert_memory_equal(pub0, pub1, 32);
    /* Bob replies on a new chain: Alice steps to a fresh key. */
    assert_rc(alcove_ratchet_sending_pub(p->b, bpub), 0);
    deliver(p->b, &p->a, h, ct);
    assert_memory_equal(h, bpub, 32);
    assert_rc(alcove_ratchet_sending_pub(p->a, pub1), 0);
    assert_memory_not_equal(pub0, pub1, 32);
}

/* Why the client must wait: a restored copy sending on the backed-up chain
 * produces the very header (and so the message key and nonce) that the lost
 * copy already used. */
static void test_restored_copy_on_the_old_chain_would_repeat_a_header(void **state)
{
    pair *p = *state;
    uint8_t h[HDR], ct[1 + TAG], lost_h[HDR], again_h[HDR], ct2[1 + TAG];
    size_t clen = 0;
    deliver(p->a, &p->b, h, ct);
    alcove_ratchet *backup = copy_of(p->a);
    deliver(p->a, &p->b, lost_h, ct); /* sent by the copy that is then lost */
    assert_rc(alcove_ratchet_encrypt(backup, (const uint8_t *)"y", 1, again_h, ct2, sizeof ct2,
                                     &clen),
              0);
    assert_memory_equal(lost_h, again_h, HDR);
    alcove_ratchet_free(backup);
}

/* The rule: after the peer's next message the restored copy steps to a
 * fresh key, its headers differ from every header sent before, and the peer
 * can decrypt them; both directions keep working. */
static void test_restored_copy_steps_on_the_peers_next_message(void **state)
{
    pair *p = *state;
    uint8_t seen[16][HDR], h[HDR], ct[1 + TAG], at_backup[32], now_pub[32];
    size_t nseen = 0;
    deliver(p->a, &p->b, seen[nseen++], ct);
    deliver(p->b, &p->a, h, ct);
    deliver(p->a, &p->b, seen[nseen++], ct);
    alcove_ratchet *restored = copy_of(p->a);
    assert_rc(alcove_ratchet_sending_pub(restored, at_backup), 0);
    for (int i = 0; i < 3; i++) /* the lost copy went on sending */
        deliver(p->a, &p->b, seen[nseen++], ct);
    alcove_ratchet_free(p->a);
    p->a = restored;
    /* Still on the backed-up key: the client refuses to send. */
    assert_rc(alcove_ratchet_sending_pub(p->a, now_pub), 0);
    assert_memory_equal(now_pub, at_backup, 32);
    /* Bob writes (his chain was derived from the backed-up key). */
    deliver(p->b, &p->a, h, ct);
    assert_rc(alcove_ratchet_sending_pub(p->a, now_pub), 0);
    assert_memory_not_equal(now_pub, at_backup, 32);
    for (int i = 0; i < 3; i++) {
        deliver(p->a, &p->b, h, ct);
        for (size_t k = 0; k < nseen; k++)
            assert_memory_not_equal(h, seen[k], 32);
    }
    deliver(p->b, &p->a, h, ct);
    deliver(p->a, &p->b, h, ct);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sending_pub_arguments_and_no_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_sending_pub_matches_headers_and_moves_only_with_a_dh_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restored_copy_on_the_old_chain_would_repeat_a_header,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_restored_copy_steps_on_the_peers_next_message, setup,
                                        teardown),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
