/* Fault: the relay's store files cannot be made durable.
 *
 * The store is LMDB's data.mdb plus a write-ahead journal (store/journal):
 * a batch is acknowledged only after its journal record was fdatasync'd;
 * LMDB commits without syncing, and data.mdb is synced only at checkpoints
 * (whose slot at the head of the journal keeps a copy of LMDB's meta pages,
 * written back into data.mdb at start before the journal is replayed).
 *
 * The LD_PRELOAD shim (tests/support/fault_shim.c) sits between the relay
 * and libc and, on the test's command, fails fsync/fdatasync/msync with EIO
 * on one or both files (match "data.mdb|journal", fault_files), and records
 * an undo log of every write to either file so that a power failure can be
 * emulated after a SIGKILL (fault_powerloss_apply_dir: per file, writes not
 * followed by a successful sync of that file are undone; so are writes
 * followed first by a failed sync, since Linux may drop the dirty pages of a
 * failed writeback and report success to the next fsync).
 *
 *  - sync_eio_window: while every journal sync fails, no Send sent after the
 *    fault began gets OK before it ends; the relay logs the fault, stays up,
 *    serves again once syncs work, and after a SIGKILL and restart every
 *    acknowledged message is there.
 *  - checkpoint_eio_window: while every data.mdb sync fails (checkpoints
 *    fail), Sends keep getting OK (the journal is durable) and the relay
 *    logs checkpoint_failed; after a SIGKILL and a power cut on both files,
 *    a restart (journal replay) has every acknowledged message.
 *  - powerloss: SIGKILL under load, then a power cut on both files, restart:
 *    nothing acknowledged is lost.  The rounds alternate the two cuts below.
 *    Rounds: 5 (CI), 30 with ALCOVE_LONG=1, or ALCOVE_FAULT_ROUNDS=N.
 *  - transient_sync_failure_never_acks_undurable: single syncs of the
 *    journal fail now and then (a transient EIO) under load, and once a
 *    data.mdb sync (a checkpoint) half-way; the power is then cut offline at
 *    many moments of the run (right after each sync that followed a failure,
 *    and at random), the relay restarted on each cut store: at every cut,
 *    every Send already answered OK is in the store, and no message is
 *    stored twice.  An OK must never depend on a write made before a failed
 *    sync.  ALCOVE_FAULT_RUN_MS sets the run (1.5 s; 15 s long).
 *
 * Every power cut is one of two states a real one can leave: every unsynced
 * write of both files lost ("lost"), or every data.mdb write made before the
 * cut on disk, meta pages included, but the unsynced journal writes lost
 * ("writeback", the worst for a copy-on-write store: it must come back to
 * the journal's checkpoint). */
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

/* The store's files as the shim knows them: index 0 data.mdb, 1 the
 * journal. */
#define STORE_FILES "data.mdb|journal"
enum { F_DATA = 0, F_JOURNAL = 1 };

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
    char tmp[256], ctlpath[300];
    relayproc rp;
    fault_load fl;
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(ctlpath, sizeof ctlpath, "%s/ctl", tmp);
    fault_ctl *ctl = fault_ctl_create(ctlpath, STORE_FILES, NULL);
    ctl->fault_files = FAULT_FILE(F_JOURNAL); /* the journal's sync gates every OK */
    relayproc_init_dir(&rp, tmp);
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
    uint64_t syncs = ctl->file_syncs[F_JOURNAL], failed = ctl->file_syncs_failed[F_JOURNAL];
    uint64_t data_syncs = ctl->file_syncs[F_DATA];

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

    printf("fault_sync eio_window: fault_ms=%llu journal_syncs=%llu journal_syncs_failed=%llu "
           "data_syncs=%llu ok_before=%zu "
           "ok_during_fault=%zu refused_during_fault=%zu (UNAVAILABLE=%zu QUOTA_EXCEEDED=%zu "
           "INTERNAL=%zu) ok_after_fault=%zu straddling=%zu relay_alive=%d "
           "log_commit_failed=%d log_eio=%d | restart: acked=%zu stored=%zu lost=%zu "
           "resurrected=%zu deleted_back=%zu conflicts=%zu duplicates=%zu\n",
           (unsigned long long)((t_off - t_on) / 1000), (unsigned long long)syncs,
           (unsigned long long)failed, (unsigned long long)data_syncs, ok_before, ok_during,
           refused_during,
           by_status[ALCOVE__WIRE__STATUS__UNAVAILABLE],
           by_status[ALCOVE__WIRE__STATUS__QUOTA_EXCEEDED],
           by_status[ALCOVE__WIRE__STATUS__INTERNAL], ok_after, other, alive, log_faults,
           log_io, rep.sent, rep.stored, rep.lost, rep.resurrected, rep.deleted_back,
           rep.conflicts, rep.duplicates);
    assert_true(ok_before > 0);     /* the load was real */
    assert_true(failed > 0);        /* the fault was hit (journal syncs) */
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

/* The first failed sync of file index f in an undo log (us), or UINT64_MAX. */
static uint64_t first_failed_sync(const char *undo, int f)
{
    uint64_t *times = NULL, first = UINT64_MAX;
    int *ok = NULL, *file = NULL;
    long n = fault_undo_syncs(undo, &times, &ok, &file);
    for (long i = 0; i < n && first == UINT64_MAX; i++)
        if (!ok[i] && file[i] == f)
            first = times[i];
    free(times);
    free(ok);
    free(file);
    return first;
}

/* Checkpoints fail (every data.mdb sync: EIO) for a window under load: the
 * journal still makes each batch durable, so Sends keep getting OK; the
 * relay says so in its log.  Then SIGKILL, a power cut on both files (the
 * data.mdb writes since the last good checkpoint are gone) and a restart:
 * the journal's replay brings back every acknowledged message. */
static void test_checkpoint_eio_window_keeps_acking(void **state)
{
    (void)state;
    skip_without_shim();
    char tmp[256], ctlpath[300], undo[300], store[300];
    relayproc rp;
    fault_load fl;
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(ctlpath, sizeof ctlpath, "%s/ctl", tmp);
    snprintf(undo, sizeof undo, "%s/undo.log", tmp);
    fault_ctl *ctl = fault_ctl_create(ctlpath, STORE_FILES, undo);
    ctl->fault_files = FAULT_FILE(F_DATA);
    relayproc_init_dir(&rp, tmp);
    snprintf(store, sizeof store, "%s/store", rp.dir);
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
    uint64_t data_syncs = ctl->file_syncs[F_DATA], data_failed = ctl->file_syncs_failed[F_DATA];
    uint64_t journal_syncs = ctl->file_syncs[F_JOURNAL];
    uint64_t journal_failed = ctl->file_syncs_failed[F_JOURNAL];

    /* Crash right away and cut the power. */
    relayproc_stop(&rp, SIGKILL, 5000);
    uint64_t t_fail = first_failed_sync(undo, F_DATA);
    size_t n = 0;
    fault_timing *tm = fault_load_timings(&fl, &n);
    size_t ok_before = 0, ok_during = 0, refused_during = 0, ok_after_fail = 0, ok_after = 0;
    size_t other = 0;
    for (size_t i = 0; i < n; i++) {
        int ok = tm[i].status == ALCOVE__WIRE__STATUS__OK;
        if (t_fail != UINT64_MAX && tm[i].t_send > t_fail)
            ok_after_fail += ok; /* sent once a checkpoint had failed */
        if (tm[i].t_send > t_on && tm[i].t_reply < t_off) {
            if (ok)
                ok_during++;
            else
                refused_during++;
        } else if (tm[i].t_reply < t_on) {
            ok_before += ok;
        } else if (tm[i].t_send > t_off) {
            ok_after += ok;
        } else {
            other++;
        }
    }
    free(tm);
    int log_ckpt = fault_file_count(rp.logpath, "event=checkpoint_failed");
    int log_commit = fault_file_count(rp.logpath, "event=commit_failed");
    fault_powerloss_stats ps;
    assert_int_equal(fault_powerloss_apply_dir(store, STORE_FILES, undo, UINT64_MAX, 0, &ps), 0);

    /* Restart without the shim: the journal is replayed over the last good
     * checkpoint. */
    assert_int_equal(relayproc_start(&rp, NULL), 0);
    fault_load_report rep;
    fault_load_check(&fl, &rp.addr, &rep);
    fault_load_close(&fl);
    int st = relayproc_stop(&rp, SIGTERM, 10000);

    printf("fault_sync checkpoint_eio_window: fault_ms=%llu data_syncs=%llu "
           "data_syncs_failed=%llu journal_syncs=%llu journal_syncs_failed=%llu ok_before=%zu "
           "ok_during_fault=%zu refused_during_fault=%zu ok_sent_after_first_failed_checkpoint=%zu "
           "ok_after_fault=%zu straddling=%zu relay_alive=%d log_checkpoint_failed=%d "
           "log_commit_failed=%d | power cut: writes=%llu undone_writes=%llu (data.mdb=%llu "
           "journal=%llu) undone_bytes=%llu | restart: acked=%zu stored=%zu lost=%zu "
           "resurrected=%zu deleted_back=%zu conflicts=%zu duplicates=%zu\n",
           (unsigned long long)((t_off - t_on) / 1000), (unsigned long long)data_syncs,
           (unsigned long long)data_failed, (unsigned long long)journal_syncs,
           (unsigned long long)journal_failed, ok_before, ok_during, refused_during,
           ok_after_fail, ok_after, other, alive, log_ckpt, log_commit,
           (unsigned long long)ps.writes, (unsigned long long)ps.undone_writes,
           (unsigned long long)ps.file_undone_writes[F_DATA],
           (unsigned long long)ps.file_undone_writes[F_JOURNAL],
           (unsigned long long)ps.undone_bytes, rep.sent, rep.stored, rep.lost, rep.resurrected,
           rep.deleted_back, rep.conflicts, rep.duplicates);
    assert_true(ok_before > 0);     /* the load was real */
    assert_true(data_failed > 0);   /* a checkpoint was tried and failed */
    assert_int_equal(journal_failed, 0);
    assert_true(ok_during > 0);     /* acks continue: the journal is durable */
    assert_true(ok_after_fail > 0); /* also for Sends made after a checkpoint failed */
    assert_true(alive);
    assert_true(log_ckpt > 0);      /* the operator is told */
    assert_int_equal(rep.lost, 0);
    assert_int_equal(rep.resurrected, 0);
    assert_int_equal(rep.deleted_back, 0);
    assert_int_equal(rep.conflicts, 0);
    assert_int_equal(rep.duplicates, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    fault_ctl_unmap(ctl);
    test_rmtree(tmp);
}

/* Rounds of: load, SIGKILL, power cut on both files, restart on the cut
 * store.  Even rounds lose every unsynced write of both files; odd rounds
 * keep every data.mdb write (meta pages too: "writeback") and lose the
 * unsynced journal writes. */
static void test_powerloss_loses_nothing_acked(void **state)
{
    (void)state;
    skip_without_shim();
    char tmp[256], ctlpath[300], undo[300], store[300];
    relayproc rp;
    fault_load fl;
    long rounds = fault_env_long("ALCOVE_FAULT_ROUNDS", fault_long_mode() ? 30 : 5);
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(ctlpath, sizeof ctlpath, "%s/ctl", tmp);
    snprintf(undo, sizeof undo, "%s/undo.log", tmp);
    fault_ctl *ctl = fault_ctl_create(ctlpath, STORE_FILES, undo);
    relayproc_init_dir(&rp, tmp);
    snprintf(store, sizeof store, "%s/store", rp.dir);
    assert_int_equal(fault_relay_start(&rp, NULL, ctlpath, NULL), 0);
    fault_load_init(&fl, tmp, &rp.addr, 3);
    fl.nsenders = 3;

    fault_powerloss_stats sum;
    memset(&sum, 0, sizeof sum);
    int reopen_failures = 0;
    long done = 0, writeback_cuts = 0;
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
        uint32_t wb = (r & 1) ? FAULT_FILE(F_DATA) : 0;
        writeback_cuts += wb != 0;
        assert_int_equal(fault_powerloss_apply_dir(store, STORE_FILES, undo, UINT64_MAX, wb, &ps),
                         0);
        sum.writes += ps.writes;
        sum.undone_writes += ps.undone_writes;
        sum.undone_bytes += ps.undone_bytes;
        sum.syncs_ok += ps.syncs_ok;
        for (int f = 0; f < FAULT_MAX_FILES; f++)
            sum.file_undone_writes[f] += ps.file_undone_writes[f];
    }
    fault_load_close(&fl);
    assert_int_equal(reopen_failures, 0);
    assert_int_equal(relayproc_start(&rp, NULL), 0);
    fault_load_report rep;
    fault_load_check(&fl, &rp.addr, &rep);
    int st = relayproc_stop(&rp, SIGTERM, 10000);
    printf("fault_sync powerloss: power_cuts=%ld (writeback=%ld) reopen_failures=%d writes=%llu "
           "undone_writes=%llu (data.mdb=%llu journal=%llu) undone_bytes=%llu syncs=%llu | "
           "acked_sends=%zu acked_acks=%zu acked_deletes=%zu stored=%zu lost=%zu "
           "resurrected=%zu deleted_back=%zu conflicts=%zu duplicates=%zu\n",
           done, writeback_cuts, reopen_failures, (unsigned long long)sum.writes,
           (unsigned long long)sum.undone_writes,
           (unsigned long long)sum.file_undone_writes[F_DATA],
           (unsigned long long)sum.file_undone_writes[F_JOURNAL],
           (unsigned long long)sum.undone_bytes, (unsigned long long)sum.syncs_ok, rep.sent,
           rep.acks, rep.deletes, rep.stored, rep.lost, rep.resurrected, rep.deleted_back,
           rep.conflicts, rep.duplicates);
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

/* What the cuts of one run share. */
typedef struct cut_env {
    relayproc *rp;     /* the relay's data directory, its process dead */
    const char *final; /* a copy of the store's files as the relay left them */
    const char *store; /* <data>/store, where each cut store is made */
    const char *undo;
    const char *tmp;   /* where failing cut stores are kept */
    const fault_timing *tm;
    size_t ntm;
    int kept;
} cut_env;

/* The store as a power cut at time cut leaves it (writeback: every data.mdb
 * write before the cut on disk; else none unsynced), made from the final
 * files in dir.  Returns 0 or -1. */
static int make_cut(const cut_env *ce, const char *dir, uint64_t cut, int writeback)
{
    fault_powerloss_stats ps;
    if (fault_copy_store(ce->final, dir, STORE_FILES) != 0)
        return -1;
    return fault_powerloss_apply_dir(dir, STORE_FILES, ce->undo, cut,
                                     writeback ? FAULT_FILE(F_DATA) : 0, &ps);
}

/* Keep a failing cut store (a few) for a look after the test. */
static void keep_cut(cut_env *ce, uint64_t cut, int writeback, const char *why)
{
    char dir[400];
    if (ce->kept >= 4)
        return;
    ce->kept++;
    snprintf(dir, sizeof dir, "%s/cut.%s.%llu", ce->tmp, writeback ? "wb" : "lost",
             (unsigned long long)cut);
    if (mkdir(dir, 0700) != 0 || make_cut(ce, dir, cut, writeback) != 0)
        return;
    fprintf(stderr, "cut at %llu (%s): %s; the cut store is kept in %s\n",
            (unsigned long long)cut,
            writeback ? "data.mdb written back, unsynced journal lost" : "unsynced writes lost",
            why, dir);
}

/* Cut the power at time cut in a copy of the final store, start the relay
 * on it (it restores the checkpoint's meta pages and replays the journal),
 * stop it cleanly and read its log database: every Send answered OK before
 * the cut must be in it, once.  Returns the number missing (*dups: stored
 * twice; *bad_exit: the relay did not exit 0 on SIGTERM), or -1 if the cut
 * store does not open. */
static long check_cut(cut_env *ce, uint64_t cut, int writeback, long *dups, int *bad_exit)
{
    char data[400];
    uint8_t *ids = NULL;
    const char *why = NULL;
    *dups = 0;
    *bad_exit = 0;
    assert_int_equal(make_cut(ce, ce->store, cut, writeback), 0);
    if (relayproc_start(ce->rp, NULL) != 0) {
        keep_cut(ce, cut, writeback, "the relay does not start on it (see its log)");
        return -1;
    }
    int st = relayproc_stop(ce->rp, SIGTERM, 10000);
    *bad_exit = !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    snprintf(data, sizeof data, "%s/data.mdb", ce->store);
    long n = fault_relay_log_ids(data, sizeof(fault_msg_id), &ids, &why);
    if (n < 0) {
        keep_cut(ce, cut, writeback, why);
        return -1;
    }
    qsort(ids, (size_t)n, sizeof(fault_msg_id), cmp_id16);
    for (long i = 1; i < n; i++)
        *dups += memcmp(ids + (size_t)(i - 1) * sizeof(fault_msg_id),
                        ids + (size_t)i * sizeof(fault_msg_id), sizeof(fault_msg_id)) == 0;
    long missing = 0;
    for (size_t i = 0; i < ce->ntm; i++)
        if (ce->tm[i].status == ALCOVE__WIRE__STATUS__OK && ce->tm[i].t_reply < cut &&
            bsearch(&ce->tm[i].id, ids, (size_t)n, sizeof(fault_msg_id), cmp_id16) == NULL)
            missing++;
    free(ids);
    if (missing > 0 || *dups > 0 || *bad_exit)
        keep_cut(ce, cut, writeback,
                 missing > 0 ? "acked Sends missing"
                 : *dups > 0 ? "messages stored twice"
                             : "the relay did not exit 0 on SIGTERM");
    return missing;
}

/* Single syncs fail now and then (a transient EIO) under load: journal
 * syncs, and half-way one data.mdb sync (a checkpoint); afterwards the
 * power is cut, offline, at many moments: right after each sync that
 * followed a failure, and at random times.  At every cut, each Send already
 * answered OK must be in the store the relay recovers.  A relay that retries
 * a failed journal sync and then acknowledges a batch whose record was
 * written before the failure loses that batch at such a cut (after a failed
 * fsync the kernel may have dropped those dirty pages); one that trusts
 * data.mdb after a failed checkpoint loses what only the journal held. */
static void test_transient_sync_failure_never_acks_undurable(void **state)
{
    (void)state;
    skip_without_shim();
    char tmp[256], ctlpath[300], undo[300], store[300], final[300];
    relayproc rp;
    fault_load fl;
    long run_ms = fault_env_long("ALCOVE_FAULT_RUN_MS", fault_long_mode() ? 15000 : 1500);
    /* ALCOVE_FAULT_INJECT=0: the same cuts without failures (a control). */
    int inject = fault_env_long("ALCOVE_FAULT_INJECT", 1) != 0;
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(ctlpath, sizeof ctlpath, "%s/ctl", tmp);
    snprintf(undo, sizeof undo, "%s/undo.log", tmp);
    snprintf(final, sizeof final, "%s/final", tmp);
    assert_int_equal(mkdir(final, 0700), 0);
    fault_ctl *ctl = fault_ctl_create(ctlpath, STORE_FILES, undo);
    relayproc_init_dir(&rp, tmp);
    snprintf(store, sizeof store, "%s/store", rp.dir);
    assert_int_equal(fault_relay_start(&rp, NULL, ctlpath, NULL), 0);
    fault_load_init(&fl, tmp, &rp.addr, 3);
    fl.nsenders = 3;
    fl.owner = 0; /* without Acks, every OK'd Send must be in every cut */
    fl.deleter = 0;
    fault_load_start(&fl, &rp.addr, 0);
    uint64_t t0 = test_now_ms(), end = t0 + (uint64_t)run_ms, armed_at = 0;
    uint32_t aimed = 0;
    int data_aimed = 0;
    while (test_now_ms() < end) {
        test_sleep_ms(30 + randombytes_uniform(40));
        if (!inject)
            continue;
        uint64_t now = test_now_ms();
        int pending = __atomic_load_n(&ctl->sync_fail_next, __ATOMIC_SEQ_CST) != 0;
        if (pending && now - armed_at <= 600)
            continue; /* wait for the next sync of that file */
        /* Arm the next failure, or re-aim one no sync took within 600 ms
         * (a data.mdb failure waits for a checkpoint): the journal, and
         * once, half-way, data.mdb. */
        uint32_t aim = FAULT_FILE(F_JOURNAL);
        if (!data_aimed && now >= t0 + (uint64_t)run_ms / 2) {
            aim = FAULT_FILE(F_DATA);
            data_aimed = 1;
        }
        armed_at = now;
        if (pending && aim == aimed)
            continue;
        __atomic_store_n(&ctl->fault_files, aim, __ATOMIC_SEQ_CST);
        __atomic_store_n(&ctl->sync_fail_next, 1, __ATOMIC_SEQ_CST);
        aimed = aim;
    }
    relayproc_stop(&rp, SIGKILL, 5000);
    fault_load_wait(&fl, 15000);
    fault_load_close(&fl);
    uint64_t injected = ctl->syncs_failed;
    uint64_t injected_data = ctl->file_syncs_failed[F_DATA];
    uint64_t injected_journal = ctl->file_syncs_failed[F_JOURNAL];
    assert_int_equal(fault_copy_store(store, final, STORE_FILES), 0);

    size_t ntm = 0;
    fault_timing *tm = fault_load_timings(&fl, &ntm);
    uint64_t *times = NULL;
    int *ok = NULL, *file = NULL;
    long nsync = fault_undo_syncs(undo, &times, &ok, &file);
    assert_true(nsync > 0);
    cut_env ce = {&rp, final, store, undo, tmp, tm, ntm, 0};

    long cuts = 0, bad_cuts = 0, lost_max = 0, open_failures = 0, after_failure_cuts = 0;
    long bad_random = 0, wb_open_failures = 0, wb_bad_cuts = 0, dup_cuts = 0, bad_exits = 0;
    long nrandom = fault_long_mode() ? 200 : 20;
    int per_failure = fault_long_mode() ? 4 : 2;
    uint64_t t_first = times[0], t_last = times[nsync - 1];
    for (long i = 0, r = 0; i < nsync || r < nrandom; i++) {
        /* Just before each of the next few successful syncs (of either
         * file) after a failure completes, then at random moments. */
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
            long dups = 0, wb_dups = 0;
            int bad_exit = 0, wb_bad_exit = 0;
            long miss = check_cut(&ce, cut_at[c], 0, &dups, &bad_exit);
            long wb_miss = check_cut(&ce, cut_at[c], 1, &wb_dups, &wb_bad_exit);
            cuts++;
            after_failure_cuts += !is_random;
            open_failures += miss < 0;
            wb_open_failures += wb_miss < 0;
            wb_bad_cuts += wb_miss > 0;
            dup_cuts += (dups > 0) + (wb_dups > 0);
            bad_exits += bad_exit + wb_bad_exit;
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
    long journal_syncs = 0, data_syncs = 0;
    for (long i = 0; i < nsync; i++) {
        journal_syncs += file[i] == F_JOURNAL;
        data_syncs += file[i] == F_DATA;
    }
    printf("fault_sync transient_eio_cuts: run_ms=%ld injected_sync_failures=%llu "
           "(journal=%llu data.mdb=%llu) syncs=%ld (journal=%ld data.mdb=%ld) acked_sends=%zu "
           "power_cuts_checked=%ld (after_failure=%ld random=%ld) cuts_losing_acked=%ld (of "
           "them random=%ld) max_lost_at_one_cut=%ld cuts_not_opening=%ld | writeback: "
           "cuts_losing_acked=%ld cuts_not_opening=%ld | both: cuts_storing_twice=%ld "
           "unclean_exits=%ld\n",
           run_ms, (unsigned long long)injected, (unsigned long long)injected_journal,
           (unsigned long long)injected_data, nsync, journal_syncs, data_syncs, acked, cuts,
           after_failure_cuts, cuts - after_failure_cuts, bad_cuts, bad_random, lost_max,
           open_failures, wb_bad_cuts, wb_open_failures, dup_cuts, bad_exits);
    free(times);
    free(ok);
    free(file);
    free(tm);
    if (inject) {
        assert_true(injected_journal > 0);
        assert_true(injected_data > 0);
    }
    assert_true(acked > 0);
    assert_int_equal(open_failures, 0);
    assert_int_equal(bad_cuts, 0);
    assert_int_equal(wb_open_failures, 0);
    assert_int_equal(wb_bad_cuts, 0);
    assert_int_equal(dup_cuts, 0);
    assert_int_equal(bad_exits, 0);
    fault_ctl_unmap(ctl);
    test_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_eio_window_gets_no_ok),
        cmocka_unit_test(test_checkpoint_eio_window_keeps_acking),
        cmocka_unit_test(test_powerloss_loses_nothing_acked),
        cmocka_unit_test(test_transient_sync_failure_never_acks_undurable),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
