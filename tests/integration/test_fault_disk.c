/* Fault: the store runs out of space.
 *
 *  - map_full: --max-store caps the LMDB map.  Senders filling it get
 *    QUOTA_EXCEEDED ("relay storage is full"), the relay stays up and keeps
 *    serving reads; the owner can still Ack, which frees pages, and sends
 *    succeed again; a restart with a higher cap works too; nothing acked is
 *    lost.
 *  - map_full_under_load: the same while senders keep hammering the full
 *    store: the owner's Acks must still get through (they free the space),
 *    or the relay is wedged until an operator restarts it.
 *  - enospc: a real full disk: the data directory on an 8 MiB tmpfs mounted
 *    in a private mount namespace (we run as root in CI); where mounting is
 *    not allowed (or ALCOVE_FAULT_SHIM_ENOSPC=1), the LD_PRELOAD shim fails
 *    the writes to data.mdb with ENOSPC instead (the figure says which).
 *    Either way it is data.mdb that runs out: the journal is preallocated
 *    (on the tmpfs it is made small, --journal-size 2M, so that it fits),
 *    and a batch whose LMDB commit fails for want of space fails although
 *    its journal record was already written.  Senders get UNAVAILABLE, the
 *    relay stays up, and once space returns (a ballast file is removed) it
 *    stores again without a restart; nothing acked is lost, and a failed
 *    Send's message never comes back (the next Send reuses its number, so
 *    the numbers read back after the restart would repeat). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "fault_util.h"
#include "relayproc.h"
#include "wire.h"

#define S_OK ALCOVE__WIRE__STATUS__OK

/* Send numbered blobs until a non-OK status (or max); returns how many got
 * OK and the first failing status in *fail (-1 if none). */
static int fill(alcove_link *l, const test_mbox *mb, uint32_t *counter, size_t len, int max,
                int *fail)
{
    uint8_t *blob = malloc(len);
    assert_non_null(blob);
    int ok = 0;
    *fail = -1;
    for (int i = 0; i < max; i++) {
        memset(blob, (int)(*counter & 0xff), len);
        memcpy(blob, counter, sizeof *counter);
        int st = tw_send(l, mb->send_id, mb->secret, blob, len);
        if (st != S_OK) {
            *fail = st;
            break;
        }
        (*counter)++;
        ok++;
    }
    free(blob);
    return ok;
}

/* Fetch everything; returns the count and checks that the numbers run from
 * first to first + count - 1. */
static uint32_t fetch_all(alcove_link *l, const test_mbox *mb, uint32_t *first, uint64_t *top)
{
    uint64_t after = 0;
    uint32_t n = 0, expect = 0;
    *top = 0;
    for (int guard = 0; guard < 100000; guard++) {
        Alcove__Wire__RelayMessage *m = NULL;
        assert_int_equal(tw_fetch(l, mb->recv_id, after, 0, &m), S_OK);
        Alcove__Wire__FetchResult *fr = m->reply->fetch;
        for (size_t k = 0; k < fr->n_messages; k++) {
            uint32_t c;
            memcpy(&c, fr->messages[k]->blob.data, sizeof c);
            if (n == 0)
                *first = expect = c;
            assert_int_equal(c, expect);
            expect++;
            n++;
            after = *top = fr->messages[k]->seq;
        }
        int more = fr->more && fr->n_messages > 0;
        alcove__wire__relay_message__free_unpacked(m, NULL);
        if (!more)
            break;
    }
    return n;
}

static void test_map_full_answers_quota_and_recovers(void **state)
{
    (void)state;
    char tmp[256];
    relayproc rp;
    static const char *const small[] = {"--max-store", "2M", NULL};
    static const char *const big[] = {"--max-store", "16M", NULL};
    test_mkdtemp(tmp, sizeof tmp);
    relayproc_init_dir(&rp, tmp);
    assert_int_equal(relayproc_start(&rp, small), 0);
    alcove_link *l = tw_connect(&rp.addr);
    test_mbox mb;
    assert_int_equal(tw_create(l, &mb), S_OK);
    uint32_t counter = 0;
    int fail;
    int filled = fill(l, &mb, &counter, 3000, 100000, &fail);
    int alive = kill(rp.pid, 0) == 0;
    int ping = tw_ping(l);
    /* A second full-store answer, and that reads still work. */
    int fail2;
    int extra = fill(l, &mb, &counter, 3000, 1, &fail2);
    uint32_t first = 0;
    uint64_t top = 0;
    uint32_t stored = fetch_all(l, &mb, &first, &top);
    /* Free space: ack everything but the last 10 messages. */
    int ack = tw_ack(l, mb.recv_id, top - 10);
    int fail_after_ack;
    int after_ack = fill(l, &mb, &counter, 3000, 200, &fail_after_ack);
    /* A restart with a higher cap. */
    int st = relayproc_stop(&rp, SIGTERM, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    alcove_link_free(l);
    assert_int_equal(relayproc_start(&rp, big), 0);
    l = tw_connect(&rp.addr);
    assert_int_equal(tw_login(l, &mb), S_OK);
    int after_restart = fill(l, &mb, &counter, 3000, 1000, &fail2);
    uint32_t n_final = fetch_all(l, &mb, &first, &top);
    /* Everything sent OK and not acked is there, in order, without gaps. */
    uint32_t expect_final = ack == S_OK ? counter - (uint32_t)(filled + extra - 10) : counter;
    alcove_link_free(l);
    st = relayproc_stop(&rp, SIGTERM, 10000);
    int quota_lines = fault_file_count(rp.logpath, "event=commit_failed");
    printf("fault_disk map_full: cap=2M sends_ok_until_full=%d first_failure_status=%d "
           "(QUOTA_EXCEEDED=%d) relay_alive=%d ping=%d stored=%u ack_when_full=%d "
           "sends_ok_after_ack=%d (then status %d) sends_ok_after_restart_16M=%d "
           "stored_final=%u expected=%u log_commit_failed=%d\n",
           filled, fail, ALCOVE__WIRE__STATUS__QUOTA_EXCEEDED, alive, ping, stored, ack,
           after_ack, fail_after_ack, after_restart, n_final, expect_final, quota_lines);
    assert_true(filled > 50);
    assert_int_equal(fail, ALCOVE__WIRE__STATUS__QUOTA_EXCEEDED);
    assert_true(alive);
    assert_int_equal(ping, S_OK);
    assert_int_equal(extra, 0);
    assert_int_equal(stored, (uint32_t)filled);
    assert_int_equal(after_restart, 1000); /* a higher cap always recovers */
    assert_int_equal(n_final, expect_final);
    /* Freeing space must not need a restart: an Ack on a full store frees
     * pages (fails until the relay keeps room for deletions). */
    assert_int_equal(ack, S_OK);
    assert_true(after_ack > 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    test_rmtree(tmp);
}

/* Senders keep hammering a full store while the owner tries to Ack. */
static void test_map_full_under_load_owner_can_still_ack(void **state)
{
    (void)state;
    char tmp[256];
    relayproc rp;
    static const char *const small[] = {"--max-store", "2M", NULL};
    test_mkdtemp(tmp, sizeof tmp);
    relayproc_init_dir(&rp, tmp);
    assert_int_equal(relayproc_start(&rp, small), 0);
    alcove_link *owner = tw_connect(&rp.addr);
    test_mbox mb;
    assert_int_equal(tw_create(owner, &mb), S_OK);
    uint32_t counter = 0;
    int fail;
    int filled = fill(owner, &mb, &counter, 3000, 100000, &fail);
    assert_int_equal(fail, ALCOVE__WIRE__STATUS__QUOTA_EXCEEDED);
    /* Two hammering senders. */
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            alcove_link *l = NULL;
            Alcove__Wire__HelloResult hr;
            if (alcove_link_connect(&l, &rp.addr, 5000, &hr) != 0)
                _exit(0);
            uint8_t blob[3000];
            memset(blob, 0xee, sizeof blob);
            for (int i = 0; i < 1000000; i++)
                if (tw_send(l, mb.send_id, mb.secret, blob, sizeof blob) < 0)
                    break;
            _exit(0);
        }
    }
    test_sleep_ms(200);
    /* The owner acks in steps while the hammering goes on. */
    uint32_t first = 0;
    uint64_t top = 0;
    (void)fetch_all(owner, &mb, &first, &top);
    int acks_ok = 0, acks_tried = 0, last_status = -1;
    uint64_t t0 = test_now_ms();
    for (uint64_t up = 1; up <= top && test_now_ms() - t0 < 5000; up += top / 10 + 1) {
        last_status = tw_ack(owner, mb.recv_id, up);
        acks_tried++;
        acks_ok += last_status == S_OK;
    }
    for (int k = 0; k < 2; k++)
        kill(kids[k], SIGKILL);
    for (int k = 0; k < 2; k++)
        waitpid(kids[k], NULL, 0);
    int alive = kill(rp.pid, 0) == 0;
    alcove_link_free(owner);
    int st = relayproc_stop(&rp, SIGTERM, 10000);
    printf("fault_disk map_full_under_load: filled=%d acks_ok=%d of %d (last status %d) "
           "relay_alive=%d\n",
           filled, acks_ok, acks_tried, last_status, alive);
    assert_true(alive);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(acks_ok, acks_tried);
    test_rmtree(tmp);
}

/* Mount an 8 MiB tmpfs on dir in a private mount namespace.  1 if done. */
static int private_tmpfs(const char *dir)
{
    if (unshare(CLONE_NEWNS) != 0)
        return 0;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return 0;
    return mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=8m,mode=0700") == 0;
}

/* 1 if `alcove-relay run --help` lists option (a relay with a journal
 * lists --journal-size). */
static int relay_has_option(const char *option)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return 0;
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return 0;
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        execl(test_relay_bin(), "alcove-relay", "run", "--help", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char buf[16384];
    size_t have = 0;
    ssize_t n;
    while (have < sizeof buf - 1 &&
           ((n = read(pfd[0], buf + have, sizeof buf - 1 - have)) > 0 || (n < 0 && errno == EINTR)))
        if (n > 0)
            have += (size_t)n;
    buf[have] = '\0';
    close(pfd[0]);
    waitpid(pid, NULL, 0);
    return strstr(buf, option) != NULL;
}

static void test_enospc_answers_unavailable_and_recovers(void **state)
{
    (void)state;
    char tmp[256], mnt[300], ballast[320], ctlpath[300];
    relayproc rp;
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(mnt, sizeof mnt, "%s/disk", tmp);
    assert_int_equal(mkdir(mnt, 0700), 0);
    snprintf(ctlpath, sizeof ctlpath, "%s/ctl", tmp);
    int tmpfs = fault_env_long("ALCOVE_FAULT_SHIM_ENOSPC", 0) == 0 && private_tmpfs(mnt);
    fault_ctl *ctl = NULL;
    if (!tmpfs && fault_shim_path() == NULL)
        skip();
    /* The journal is preallocated (32 MiB by default): on the 8 MiB disk it
     * must be small. */
    static const char *const small_journal[] = {"--journal-size", "2M", NULL};
    int journal = relay_has_option("--journal-size");
    relayproc_init_dir(&rp, mnt);
    snprintf(rp.logpath, sizeof rp.logpath, "%s/relay.log", tmp); /* off the full disk */
    snprintf(ballast, sizeof ballast, "%s/ballast", mnt);
    if (tmpfs) {
        /* 1 MiB of ballast keeps room to give back later. */
        FILE *f = fopen(ballast, "w");
        assert_non_null(f);
        static char mb1[1 << 20];
        memset(mb1, 0x5a, sizeof mb1);
        assert_int_equal(fwrite(mb1, 1, sizeof mb1, f), sizeof mb1);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(relayproc_start(&rp, journal ? small_journal : NULL), 0);
    } else {
        /* Only data.mdb runs out (its commit after the journal record). */
        ctl = fault_ctl_create(ctlpath, "data.mdb", NULL);
        assert_int_equal(fault_relay_start(&rp, NULL, ctlpath, NULL), 0);
    }
    alcove_link *l = tw_connect(&rp.addr);
    test_mbox mb;
    assert_int_equal(tw_create(l, &mb), S_OK);
    uint32_t counter = 0;
    int fail = -1, filled;
    if (tmpfs) {
        filled = fill(l, &mb, &counter, 3000, 100000, &fail);
    } else {
        filled = fill(l, &mb, &counter, 3000, 500, &fail);
        __atomic_store_n(&ctl->write_enospc, 1, __ATOMIC_SEQ_CST);
        int more = fill(l, &mb, &counter, 3000, 1, &fail);
        assert_int_equal(more, 0);
    }
    int fail2;
    int refused_again = fill(l, &mb, &counter, 3000, 1, &fail2) == 0;
    int alive = kill(rp.pid, 0) == 0;
    int ping = tw_ping(l);
    uint32_t first = 0;
    uint64_t top = 0;
    uint32_t stored = fetch_all(l, &mb, &first, &top);
    /* Space returns. */
    if (tmpfs)
        assert_int_equal(unlink(ballast), 0);
    else
        __atomic_store_n(&ctl->write_enospc, 0, __ATOMIC_SEQ_CST);
    int after = fill(l, &mb, &counter, 3000, 100, &fail2);
    alcove_link_free(l);
    int st = relayproc_stop(&rp, SIGTERM, 10000);
    int log_lines = fault_file_count(rp.logpath, "event=commit_failed");
    int log_nospc = fault_file_count(rp.logpath, "No space left on device");
    /* Restart: the store opens and holds every acknowledged message. */
    assert_int_equal(relayproc_start(&rp, tmpfs && journal ? small_journal : NULL), 0);
    l = tw_connect(&rp.addr);
    assert_int_equal(tw_login(l, &mb), S_OK);
    uint32_t final = fetch_all(l, &mb, &first, &top);
    alcove_link_free(l);
    int st2 = relayproc_stop(&rp, SIGTERM, 10000);
    printf("fault_disk enospc: method=%s journal=%s sends_ok_until_full=%d "
           "first_failure_status=%d "
           "(UNAVAILABLE=%d) refused_again=%d relay_alive=%d ping=%d stored=%u "
           "sends_ok_after_space_returned=%d drain_exit=%d log_commit_failed=%d "
           "log_enospc=%d restart_stored=%u expected=%u\n",
           tmpfs ? "tmpfs-8M" : "shim-ENOSPC-data.mdb",
           !journal ? "none" : tmpfs ? "2M" : "default", filled, fail,
           ALCOVE__WIRE__STATUS__UNAVAILABLE,
           refused_again, alive, ping, stored, after,
           WIFEXITED(st) ? WEXITSTATUS(st) : -1, log_lines, log_nospc, final, counter);
    assert_true(filled > 20);
    assert_int_equal(fail, ALCOVE__WIRE__STATUS__UNAVAILABLE);
    assert_true(refused_again);
    assert_true(alive);
    assert_int_equal(ping, S_OK);
    assert_int_equal(stored, (uint32_t)filled);
    assert_true(after > 0);
    assert_true(log_lines > 0);
    assert_int_equal(final, counter);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(WIFEXITED(st2) && WEXITSTATUS(st2) == 0);
    fault_ctl_unmap(ctl);
    if (tmpfs)
        (void)umount(mnt);
    test_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_full_answers_quota_and_recovers),
        cmocka_unit_test(test_map_full_under_load_owner_can_still_ack),
        cmocka_unit_test(test_enospc_answers_unavailable_and_recovers),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
