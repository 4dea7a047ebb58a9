/* Fault: SIGKILL the relay at random moments under continuous, mixed load,
 * many times, restarting it on the same data directory each time.
 *
 * Load per round (tests/support/fault_load.h): 5 processes pipelining Sends
 * (8 in flight each) round-robin over 4 mailboxes; an owner fetching and
 * acking random prefixes; a process creating, filling and deleting
 * mailboxes.  Every OK is recorded before the next request.  At the end,
 * with the relay restarted on the same directory:
 *   lost            acked Sends neither stored nor consumed by an acked Ack
 *   resurrected     stored messages at or below an acked Ack's seq
 *   deleted_back    acked DeleteMailbox whose mailbox logs in again
 *   seq_conflicts   one (mailbox, seq) holding two different messages
 *   duplicates      one message stored under two seqs
 *   reopen_failures restarts that did not come up
 * all must be 0.
 *
 * Kills: 10 (CI), 60 with ALCOVE_LONG=1, or ALCOVE_FAULT_KILLS=N. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <sodium.h>

#include "fault_load.h"
#include "fault_util.h"
#include "relayproc.h"

static void test_sigkill_under_mixed_load_loses_nothing_acked(void **state)
{
    (void)state;
    char tmp[256];
    relayproc rp;
    fault_load fl;
    long kills = fault_env_long("ALCOVE_FAULT_KILLS", fault_long_mode() ? 60 : 10);
    uint64_t t0 = test_now_ms();

    test_mkdtemp(tmp, sizeof tmp);
    relayproc_init_dir(&rp, tmp);
    assert_int_equal(relayproc_start(&rp, NULL), 0);
    fault_load_init(&fl, tmp, &rp.addr, 4);
    fl.nsenders = 5;

    int reopen_failures = 0;
    long done = 0;
    for (long r = 0; r < kills; r++) {
        if (r > 0 && relayproc_start(&rp, NULL) != 0) {
            reopen_failures++;
            break;
        }
        fault_load_start(&fl, &rp.addr, (uint32_t)r);
        /* A random moment 30..500 ms into the load. */
        test_sleep_ms(30 + randombytes_uniform(470));
        relayproc_stop(&rp, SIGKILL, 5000);
        done++;
        fault_load_wait(&fl, 15000);
    }
    fault_load_close(&fl);
    assert_int_equal(reopen_failures, 0);

    assert_int_equal(relayproc_start(&rp, NULL), 0);
    fault_load_report rep;
    fault_load_check(&fl, &rp.addr, &rep);
    int st = relayproc_stop(&rp, SIGTERM, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    printf("fault_kill: kills=%ld reopen_failures=%d acked_sends=%zu acked_acks=%zu "
           "acked_deletes=%zu stored_now=%zu lost=%zu resurrected=%zu deleted_back=%zu "
           "seq_conflicts=%zu duplicates=%zu elapsed_ms=%llu\n",
           done, reopen_failures, rep.sent, rep.acks, rep.deletes, rep.stored, rep.lost,
           rep.resurrected, rep.deleted_back, rep.conflicts, rep.duplicates,
           (unsigned long long)(test_now_ms() - t0));
    assert_true(rep.sent > 0 && rep.acks > 0 && rep.deletes > 0); /* the load was real */
    assert_int_equal(rep.lost, 0);
    assert_int_equal(rep.resurrected, 0);
    assert_int_equal(rep.deleted_back, 0);
    assert_int_equal(rep.conflicts, 0);
    assert_int_equal(rep.duplicates, 0);
    test_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_under_mixed_load_loses_nothing_acked),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
