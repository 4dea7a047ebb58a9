/* Abuse: descriptor exhaustion.  The relay runs with `ulimit -n 64` (a shell
 * wrapper sets soft and hard limits before exec, so the relay cannot raise
 * them); the test opens many more connections than it has descriptors and
 * holds them.  The relay must neither spin (its CPU time over 2 s of
 * exhaustion stays low) nor die, and must accept again once the
 * descriptors are free: an honest client then connects and is served. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "fault_util.h"
#include "relayproc.h"
#include "wire.h"

#define NOFILE 64
#define HOG 400

static void test_descriptor_exhaustion_no_spin_and_recovers(void **state)
{
    (void)state;
    char tmp[256], wrapper[300];
    relayproc rp;
    static const char *const extra[] = {"--handshake-timeout", "30s", NULL};
    fault_raise_nofile(HOG + 256);
    test_mkdtemp(tmp, sizeof tmp);
    relayproc_init_dir(&rp, tmp);
    snprintf(wrapper, sizeof wrapper, "%s/relay-nofile.sh", tmp);
    FILE *f = fopen(wrapper, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\nulimit -n %d || exit 126\nexec '%s' \"$@\"\n", NOFILE,
            test_relay_bin());
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(wrapper, 0700), 0);
    char *saved = strdup(test_relay_bin());
    setenv("ALCOVE_RELAY_BIN", wrapper, 1);
    int started = relayproc_start(&rp, extra);
    setenv("ALCOVE_RELAY_BIN", saved, 1);
    free(saved);
    assert_int_equal(started, 0);

    /* Hold HOG raw connections (the kernel completes them; the relay
     * accepts what its descriptors allow). */
    int fds[HOG];
    int opened = 0;
    for (int i = 0; i < HOG; i++) {
        fds[i] = alcove_tcp_connect(&rp.addr, 2000);
        if (fds[i] >= 0)
            opened++;
    }
    test_sleep_ms(300);
    long cpu0 = fault_cpu_ms(rp.pid);
    uint64_t t0 = test_now_ms();
    /* While exhausted, try an honest connection now and then. */
    int honest_during = 0;
    for (int i = 0; i < 4; i++) {
        alcove_link *l = NULL;
        Alcove__Wire__HelloResult hr;
        if (alcove_link_connect(&l, &rp.addr, 300, &hr) == 0) {
            honest_during++;
            alcove_link_free(l);
        }
        test_sleep_ms(200);
    }
    while (test_now_ms() - t0 < 2000)
        test_sleep_ms(50);
    long cpu1 = fault_cpu_ms(rp.pid);
    uint64_t window = test_now_ms() - t0;
    int alive_exhausted = kill(rp.pid, 0) == 0;
    /* How many of ours did the relay shed (accepted and closed at once for
     * want of a descriptor) rather than leave in the backlog? */
    int shed = 0;
    for (int i = 0; i < HOG; i++) {
        char b;
        if (fds[i] >= 0 && recv(fds[i], &b, 1, MSG_DONTWAIT) == 0)
            shed++;
    }

    /* Free the descriptors: the relay must accept again. */
    for (int i = 0; i < HOG; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    uint64_t t_free = test_now_ms();
    int served = 0;
    while (!served && test_now_ms() - t_free < 10000) {
        alcove_link *l = NULL;
        Alcove__Wire__HelloResult hr;
        if (alcove_link_connect(&l, &rp.addr, 1000, &hr) == 0) {
            test_mbox mb;
            uint8_t blob[32] = {1};
            served = tw_create(l, &mb) == ALCOVE__WIRE__STATUS__OK &&
                     tw_send(l, mb.send_id, mb.secret, blob, sizeof blob) ==
                         ALCOVE__WIRE__STATUS__OK;
            alcove_link_free(l);
        }
        if (!served)
            test_sleep_ms(100);
    }
    uint64_t recover_ms = test_now_ms() - t_free;
    long cpu2 = fault_cpu_ms(rp.pid);
    int accept_failed = fault_file_count(rp.logpath, "event=accept_failed");
    int limit_lowered = fault_file_count(rp.logpath, "event=connection_limit_lowered");
    int st = relayproc_stop(&rp, SIGTERM, 10000);
    double cpu_pct = window ? 100.0 * (double)(cpu1 - cpu0) / (double)window : 0;
    printf("abuse_fds: nofile=%d connections_held=%d relay_cpu_ms=%ld over %llu ms "
           "(%.1f%% of a core; 10 ms ticks) shed_by_relay=%d relay_alive=%d honest_connects_while_exhausted=%d/4 "
           "served_after_free=%d after_ms=%llu relay_cpu_ms_total=%ld log_accept_failed=%d "
           "log_connection_limit_lowered=%d drain_exit=%d\n",
           NOFILE, opened, cpu1 - cpu0, (unsigned long long)window, cpu_pct, shed,
           alive_exhausted, honest_during, served, (unsigned long long)recover_ms, cpu2,
           accept_failed, limit_lowered, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    assert_true(opened > NOFILE * 2);
    assert_true(alive_exhausted);
    assert_true(cpu_pct < 20.0); /* no spinning on EMFILE */
    assert_true(served);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    test_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_exhaustion_no_spin_and_recovers),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
