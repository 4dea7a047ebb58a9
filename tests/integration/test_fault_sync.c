/* Fault: the relay's data file cannot be made durable.
 *
 * The LD_PRELOAD shim (tests/support/fault_shim.c) sits between the relay
 * and libc and, on the test's command, fails fsync/fdatasync/msync on the
 * LMDB data file with EIO, and records an undo log of every write so that a
 * power failure can be emulated after a SIGKILL (fault_powerloss_apply:
 * writes not followed by a successful sync are undone; so are writes
 * followed first by a failed sync, since Linux may drop the dirty pages of a
 * failed writeback and report success to the next fsync).
 *
 *  - sync_eio_window: while every sync fails, no Send sent after the fault
 *    began gets OK before it ends; the relay logs the fault, stays up,
 *    serves again once syncs work, and after a SIGKILL and restart every
 *    acknowledged message is there.
 *  - powerloss: SIGKILL under load, then undo everything not synced (a
 *    power cut), restart: nothing acknowledged is lost.  Rounds: 5 (CI),
 *    30 with ALCOVE_LONG=1, or ALCOVE_FAULT_ROUNDS=N.
 *  - transient_sync_failure_never_acks_undurable: single syncs fail now
 *    and then (a transient EIO) under load; the power is then cut offline
 *    at many moments of the run (right after each sync that followed a
 *    failure, and at random): at every cut, every Send already answered OK
 *    is in the store.  An OK must never depend on a write made before a
 *    failed sync.  ALCOVE_FAULT_RUN_MS sets the run (1.5 s; 15 s long).
 *    Every cut is checked twice: with every unsynced write lost
 *    (fault_powerloss_apply) and with every data page written before the
 *    cut on disk but no unconfirmed meta page (powerloss_writeback): both
 *    are states a real power cut can leave, the second the worst for a
 *    copy-on-write store. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "fault_load.h"
#include "fault_util.h"
#include "relayproc.h"

static void skip_without_shim(void)
{
    if (fault_shim_path() == NULL) {
        fprintf(stderr, "ALCOVE_FAULT_SHIM not set: run under ctest\n");
        skip();
    }
}

static void test_sync_eio_window_gets_no_ok(void **state)
{
    (void)state;
    skip_without_shim();
    char tmp[256], ctlpath[300], datafile[300];
    relayproc rp;
    fault_load fl;
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(ctlpath, sizeof ctlpath, "%s/ctl", tmp);
    fault_ctl *ctl = fault_ctl_create(ctlpath, "data.mdb", NULL);
    relayproc_init_dir(&rp, tmp);
    snprintf(datafile, sizeof datafile, "%s/store/data.mdb", rp.dir);
    assert_int_equal(fault_relay_start(&rp, NULL, ctlpath, NULL), 0);
    assert_int_equal(__atomic_load_n(&ctl->shim_loaded, __ATOMIC_SEQ_CST), (uint32_t)rp.pid);
    fault_load_init(&fl, tmp, &rp.addr, 3);
    fl.nsenders = 3;

    fault_load_start(&fl, &rp.addr, 0);
    test_sleep_ms(400);
    uint64_t t_on = fault_now_us();
    __atomic_store_n(&ctl->sync_eio, 1, __ATOMIC_SEQ_CST);
    test_sleep_ms(1000);
    uint64_t t_off = fault_now_us();
    __atomic_store_n(&ctl->sync_eio, 0, __ATOMIC_SEQ_CST);
    test_sleep_ms(700);
    fault_load_stop(&fl);
    int alive = kill(rp.pid, 0) == 0;

    size_t n = 0;
    fault_timing *tm = fault_load_timings(&fl, &n);
    size_t ok_before = 0, ok_during = 0, refused_during = 0, ok_after = 0, other = 0;
    size_t by_status[16] = {0};
    for (size_t i = 0; i < n; i++) {
        int ok = tm[i].status == ALCOVE__WIRE__STATUS__OK;
        if (tm[i].t_send > t_on && tm[i].t_reply < t_off) {
            if (ok)
                ok_during++;
            else
                refused_during++;
            if (tm[i].status >= 0 && tm[i].status < 16)
                by_status[tm[i].status]++;
        } else if (tm[i].t_reply < t_on) {
            ok_before += ok;
        } else if (tm[i].t_send > t_off) {
            ok_after += ok;
        } else {
            other++;
        }
    }
    free(tm);
    uint64_t syncs = ctl->syncs, failed = ctl->syncs_failed;

    /* Crash right away, restart without the shim: the store opens and holds
     * every acknowledged message. */
    relayproc_stop(&rp, SIGKILL, 5000);
    int log_faults = fault_file_count(rp.logpath, "event=commit_failed");
    int log_io = fault_file_count(rp.logpath, "Input/output error");
    assert_int_equal(relayproc_start(&rp, NULL), 0);
    fault_load_report rep;
    fault_load_check(&fl, &rp.addr, &rep);
    fault_load_close(&fl);
    int st = relayproc_stop(&rp, SIGTERM, 10000);

    printf("fault_sync eio_window: fault_ms=%llu syncs=%llu syncs_failed=%llu ok_before=%zu "
           "ok_during_fault=%zu refused_during_fault=%zu (UNAVAILABLE=%zu QUOTA_EXCEEDED=%zu "
           "INTERNAL=%zu) ok_after_fault=%zu straddling=%zu relay_alive=%d "
           "log_commit_failed=%d log_eio=%d | restart: acked=%zu stored=%zu lost=%zu "
           "resurrected=%zu deleted_back=%zu conflicts=%zu duplicates=%zu\n",
           (unsigned long long)((t_off - t_on) / 1000), (unsigned long long)syncs,
           (unsigned long long)failed, ok_before, ok_during, refused_during,
           by_status[ALCOVE__WIRE__STATUS__UNAVAILABLE],
           by_status[ALCOVE__WIRE__STATUS__QUOTA_EXCEEDED],
           by_status[ALCOVE__WIRE__STATUS__INTERNAL], ok_after, other, alive, log_faults,
           log_io, rep.sent, rep.stored, rep.lost, rep.resurrected, rep.deleted_back,
           rep.conflicts, rep.duplicates);
    assert_true(ok_before > 0);     /* the load was real */
    assert_true(failed > 0);        /* the fault was hit */
    assert_true(refused_during > 0);
    assert_int_equal(ok_during, 0); /* no OK without a sync */
    assert_true(ok_after > 0);      /* recovered without a restart */
    assert_true(alive);
    assert_true(log_faults > 0);    /* the operator is told */
    assert_int_equal(rep.lost, 0);
    assert_int_equal(rep.resurrected, 0);
    assert_int_equal(rep.deleted_back, 0);
    assert_int_equal(rep.conflicts, 0);
    assert_int_equal(rep.duplicates, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    fault_ctl_unmap(ctl);
    test_rmtree(tmp);
}

/* Rounds of: load, SIGKILL, power cut (everything not synced is undone),
 * restart on the cut store. */
static void test_powerloss_loses_nothing_acked(void **state)
{
    (void)state;
    skip_without_shim();
    char tmp[256], ctlpath[300], undo[300], datafile[300];
    relayproc rp;
    fault_load fl;
    long rounds = fault_env_long("ALCOVE_FAULT_ROUNDS", fault_long_mode() ? 30 : 5);
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(ctlpath, sizeof ctlpath, "%s/ctl", tmp);
    snprintf(undo, sizeof undo, "%s/undo.log", tmp);
    fault_ctl *ctl = fault_ctl_create(ctlpath, "data.mdb", undo);
    relayproc_init_dir(&rp, tmp);
    snprintf(datafile, sizeof datafile, "%s/store/data.mdb", rp.dir);
    assert_int_equal(fault_relay_start(&rp, NULL, ctlpath, NULL), 0);
    fault_load_init(&fl, tmp, &rp.addr, 3);
    fl.nsenders = 3;

    fault_powerloss_stats sum = {0, 0, 0, 0, 0};
    int reopen_failures = 0;
    long done = 0;
    for (long r = 0; r < rounds; r++) {
        if (r > 0) {
            FILE *f = fopen(undo, "w"); /* a new log for each life of the relay */
            assert_non_null(f);
            fclose(f);
            if (fault_relay_start(&rp, NULL, ctlpath, NULL) != 0) {
                reopen_failures++;
                break;
            }
        }
        fault_load_start(&fl, &rp.addr, (uint32_t)r);
        test_sleep_ms(150 + randombytes_uniform(350));
        relayproc_stop(&rp, SIGKILL, 5000);
        done++;
        fault_load_wait(&fl, 15000);
        fault_powerloss_stats ps;
        assert_int_equal(fault_powerloss_apply(datafile, undo, UINT64_MAX, &ps), 0);
        sum.writes += ps.writes;
        sum.undone_writes += ps.undone_writes;
        sum.undone_bytes += ps.undone_bytes;
        sum.syncs_ok += ps.syncs_ok;
    }
    fault_load_close(&fl);
    assert_int_equal(reopen_failures, 0);
    assert_int_equal(relayproc_start(&rp, NULL), 0);
    fault_load_report rep;
    fault_load_check(&fl, &rp.addr, &rep);
    int st = relayproc_stop(&rp, SIGTERM, 10000);
    printf("fault_sync powerloss: power_cuts=%ld reopen_failures=%d writes=%llu "
           "undone_writes=%llu undone_bytes=%llu syncs=%llu | acked_sends=%zu acked_acks=%zu "
           "acked_deletes=%zu stored=%zu lost=%zu resurrected=%zu deleted_back=%zu "
           "conflicts=%zu duplicates=%zu\n",
           done, reopen_failures, (unsigned long long)sum.writes,
           (unsigned long long)sum.undone_writes, (unsigned long long)sum.undone_bytes,
           (unsigned long long)sum.syncs_ok, rep.sent, rep.acks, rep.deletes, rep.stored,
           rep.lost, rep.resurrected, rep.deleted_back, rep.conflicts, rep.duplicates);
    assert_true(rep.sent > 0);
    assert_true(sum.undone_writes > 0); /* the power cuts did cut something */
    assert_int_equal(rep.lost, 0);
    assert_int_equal(rep.resurrected, 0);
    assert_int_equal(rep.deleted_back, 0);
    assert_int_equal(rep.conflicts, 0);
    assert_int_equal(rep.duplicates, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    fault_ctl_unmap(ctl);
    test_rmtree(tmp);
}

static int cmp_id16(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(fault_msg_id));
}

/* The other extreme of a power cut at time cut, applied to a copy of the
 * final store (data_file, whose writer is dead): the kernel writes dirty
 * pages back whenever it likes, so every data page written before the cut
 * may be on disk (even one written before a failed sync: only some of its
 * writeback may have failed), while a write to the two meta pages counts
 * only if a successful sync covered it before any failed one, as in
 * fault_powerloss_apply.  Writes after the cut are undone, newest first,
 * as are the meta writes not covered, without touching bytes a kept write
 * settled.  log: the undo log's contents.  Returns 0, or -1 if the file
 * cannot be written. */
static int powerloss_writeback(const char *data_file, const uint8_t *log, size_t loglen,
                               uint64_t cut)
{
    const uint64_t meta_end = 2u * (uint64_t)sysconf(_SC_PAGESIZE);
    size_t cap = 1024, ne = 0, pending_from = 0;
    struct ent {
        uint64_t off, pos;
        uint32_t len;
        int lost;
    } *e = malloc(cap * sizeof *e);
    uint8_t *settled = NULL;
    int fd = -1, rc = -1, past = 0;
    if (e == NULL)
        goto out;
    for (size_t p = 0; p + sizeof(fault_undo_rec) <= loglen;) {
        fault_undo_rec r;
        memcpy(&r, log + p, sizeof r);
        p += sizeof r;
        past = past || r.t_us > cut;
        if (r.type == FAULT_UNDO_WRITE) {
            if (p + r.len > loglen)
                break; /* torn tail */
            if (ne == cap) {
                void *n2 = realloc(e, (cap *= 2) * sizeof *e);
                if (n2 == NULL)
                    goto out;
                e = n2;
            }
            /* A meta write stays lost until a sync before the cut says so. */
            e[ne++] = (struct ent){r.off, p, r.len, past || r.off < meta_end};
            p += r.len;
        } else if (r.type == FAULT_UNDO_SYNC_OK || r.type == FAULT_UNDO_SYNC_FAIL) {
            if (!past && r.type == FAULT_UNDO_SYNC_OK)
                for (size_t i = pending_from; i < ne; i++)
                    e[i].lost = 0;
            pending_from = ne;
        } else {
            break;
        }
    }
    fd = open(data_file, O_RDWR);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0)
        goto out;
    uint64_t size = (uint64_t)sb.st_size;
    for (size_t i = 0; i < ne; i++)
        if (e[i].off + e[i].len > size)
            size = e[i].off + e[i].len;
    if ((settled = calloc(size, 1)) == NULL)
        goto out;
    for (size_t k = ne; k-- > 0;) {
        const struct ent *u = &e[k];
        if (!u->lost) {
            memset(settled + u->off, 1, u->len);
            continue;
        }
        for (uint64_t b = u->off, end = u->off + u->len; b < end;) {
            if (settled[b]) {
                b++;
                continue;
            }
            uint64_t run = b;
            while (b < end && !settled[b])
                b++;
            size_t n = (size_t)(b - run);
            if (pwrite(fd, log + u->pos + (run - u->off), n, (off_t)run) != (ssize_t)n)
                goto out;
        }
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    free(settled);
    free(e);
    return rc;
}

/* Cut the power at time cut in a copy of the final store (writeback: the
 * powerloss_writeback outcome, else fault_powerloss_apply's): every Send
 * answered OK before the cut must be in it.  Returns the number missing, or
 * -1 if the cut store does not open (a copy of it is kept next to image). */
static long check_cut(const char *final, const char *image, const char *undo,
                      const uint8_t *undo_log, size_t undo_len, uint64_t cut, int writeback,
                      const fault_timing *tm, size_t ntm)
{
    fault_powerloss_stats ps;
    uint8_t *ids = NULL;
    const char *why = NULL;
    assert_int_equal(fault_copy_file(final, image), 0);
    if (writeback)
        assert_int_equal(powerloss_writeback(image, undo_log, undo_len, cut), 0);
    else
        assert_int_equal(fault_powerloss_apply(image, undo, cut, &ps), 0);
    long n = fault_relay_log_ids(image, sizeof(fault_msg_id), &ids, &why);
    if (n < 0) {
        char keep[400];
        snprintf(keep, sizeof keep, "%s.notopen.%s.%llu", image, writeback ? "wb" : "lost",
                 (unsigned long long)cut);
        (void)fault_copy_file(image, keep);
        fprintf(stderr, "cut at %llu (%s): store does not open: %s\n", (unsigned long long)cut,
                writeback ? "data written back, meta not" : "unsynced writes lost", why);
        return -1;
    }
    qsort(ids, (size_t)n, sizeof(fault_msg_id), cmp_id16);
    long missing = 0;
    for (size_t i = 0; i < ntm; i++)
        if (tm[i].status == ALCOVE__WIRE__STATUS__OK && tm[i].t_reply < cut &&
            bsearch(&tm[i].id, ids, (size_t)n, sizeof(fault_msg_id), cmp_id16) == NULL)
            missing++;
    free(ids);
    return missing;
}

/* Single syncs fail now and then (a transient EIO) under load; afterwards the
 * power is cut, offline, at many moments: right after each sync that
 * followed a failure, and at random times.  At every cut, each Send already
 * answered OK must be in the store.  A relay that retries a failed sync and
 * then acknowledges a batch whose meta page was written before the failure
 * loses that batch at such a cut (after a failed fsync the kernel may have
 * dropped those dirty pages). */
static void test_transient_sync_failure_never_acks_undurable(void **state)
{
    (void)state;
    skip_without_shim();
    char tmp[256], ctlpath[300], undo[300], datafile[300], final[300], image[300];
    relayproc rp;
    fault_load fl;
    long run_ms = fault_env_long("ALCOVE_FAULT_RUN_MS", fault_long_mode() ? 15000 : 1500);
    /* ALCOVE_FAULT_INJECT=0: the same cuts without failures (a control). */
    int inject = fault_env_long("ALCOVE_FAULT_INJECT", 1) != 0;
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(ctlpath, sizeof ctlpath, "%s/ctl", tmp);
    snprintf(undo, sizeof undo, "%s/undo.log", tmp);
    snprintf(final, sizeof final, "%s/final.mdb", tmp);
    snprintf(image, sizeof image, "%s/image.mdb", tmp);
    fault_ctl *ctl = fault_ctl_create(ctlpath, "data.mdb", undo);
    relayproc_init_dir(&rp, tmp);
    snprintf(datafile, sizeof datafile, "%s/store/data.mdb", rp.dir);
    assert_int_equal(fault_relay_start(&rp, NULL, ctlpath, NULL), 0);
    fault_load_init(&fl, tmp, &rp.addr, 3);
    fl.nsenders = 3;
    fl.owner = 0; /* without Acks, every OK'd Send must be in every cut */
    fl.deleter = 0;
    fault_load_start(&fl, &rp.addr, 0);
    uint64_t end = test_now_ms() + (uint64_t)run_ms;
    while (test_now_ms() < end) {
        test_sleep_ms(30 + randombytes_uniform(40));
        if (inject && __atomic_load_n(&ctl->sync_fail_next, __ATOMIC_SEQ_CST) == 0)
            __atomic_store_n(&ctl->sync_fail_next, 1, __ATOMIC_SEQ_CST);
    }
    relayproc_stop(&rp, SIGKILL, 5000);
    fault_load_wait(&fl, 15000);
    fault_load_close(&fl);
    uint64_t injected = ctl->syncs_failed;
    assert_int_equal(fault_copy_file(datafile, final), 0);

    size_t ntm = 0;
    fault_timing *tm = fault_load_timings(&fl, &ntm);
    uint64_t *times = NULL;
    int *ok = NULL;
    long nsync = fault_undo_syncs(undo, &times, &ok);
    assert_true(nsync > 0);

    long cuts = 0, bad_cuts = 0, lost_max = 0, open_failures = 0, after_failure_cuts = 0;
    long bad_random = 0, wb_open_failures = 0, wb_bad_cuts = 0;
    long nrandom = fault_long_mode() ? 200 : 20;
    int per_failure = fault_long_mode() ? 4 : 2;
    size_t loglen = 0;
    uint8_t *log = (uint8_t *)test_read_file(undo, &loglen);
    assert_non_null(log);
    uint64_t t_first = times[0], t_last = times[nsync - 1];
    for (long i = 0, r = 0; i < nsync || r < nrandom; i++) {
        /* Just before each of the next few successful syncs after a
         * failure completes, then at random moments. */
        uint64_t cut_at[8];
        int ncut = 0, is_random = i >= nsync;
        if (is_random) {
            if (t_last <= t_first)
                break;
            cut_at[ncut++] =
                t_first + (uint64_t)randombytes_uniform((uint32_t)(t_last - t_first));
            r++;
        } else if (!ok[i]) {
            for (long j = i + 1; j < nsync && ncut < per_failure && ok[j]; j++)
                cut_at[ncut++] = times[j] - 1;
        }
        for (int c = 0; c < ncut; c++) {
            long miss = check_cut(final, image, undo, log, loglen, cut_at[c], 0, tm, ntm);
            long wb_miss = check_cut(final, image, undo, log, loglen, cut_at[c], 1, tm, ntm);
            cuts++;
            after_failure_cuts += !is_random;
            open_failures += miss < 0;
            wb_open_failures += wb_miss < 0;
            wb_bad_cuts += wb_miss > 0;
            if (miss > 0) {
                bad_cuts++;
                bad_random += is_random;
            }
            if (miss > lost_max)
                lost_max = miss;
            if (wb_miss > lost_max)
                lost_max = wb_miss;
        }
    }
    size_t acked = 0;
    for (size_t i = 0; i < ntm; i++)
        acked += tm[i].status == ALCOVE__WIRE__STATUS__OK;
    printf("fault_sync transient_eio_cuts: run_ms=%ld injected_sync_failures=%llu syncs=%ld "
           "acked_sends=%zu power_cuts_checked=%ld (after_failure=%ld random=%ld) "
           "cuts_losing_acked=%ld (of them random=%ld) max_lost_at_one_cut=%ld "
           "cuts_not_opening=%ld | writeback: cuts_losing_acked=%ld cuts_not_opening=%ld\n",
           run_ms, (unsigned long long)injected, nsync, acked, cuts, after_failure_cuts,
           cuts - after_failure_cuts, bad_cuts, bad_random, lost_max, open_failures,
           wb_bad_cuts, wb_open_failures);
    free(log);
    free(times);
    free(ok);
    free(tm);
    if (inject)
        assert_true(injected > 0);
    assert_true(acked > 0);
    assert_int_equal(open_failures, 0);
    assert_int_equal(bad_cuts, 0);
    assert_int_equal(wb_open_failures, 0);
    assert_int_equal(wb_bad_cuts, 0);
    fault_ctl_unmap(ctl);
    test_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_eio_window_gets_no_ok),
        cmocka_unit_test(test_powerloss_loses_nothing_acked),
        cmocka_unit_test(test_transient_sync_failure_never_acks_undurable),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
