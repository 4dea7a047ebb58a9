/* Backup and restore under load, stats and verify.
 *
 * The main test: senders push messages continuously; once the load runs,
 * the test notes every Send acked so far, takes `alcove-relay backup` while
 * the sends go on, restores the copy into a fresh directory, starts a relay
 * on it and fetches: every message acked before the backup began is there,
 * and the copy verifies.  It prints the counts.
 *
 * ALCOVE_BACKUP_LOAD_MS overrides how long the load runs before the backup
 * (default 1000). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <lmdb.h>
#include <sodium.h>

#include "err.h"
#include "test_operator_util.h"
#include "wire.h"

#define OK ALCOVE__WIRE__STATUS__OK
#define NMBOX 4
#define NSENDERS 4
#define BLOB_LEN 300

typedef struct acked {
    uint32_t mbox, sender, counter, magic;
} acked;
#define MAGIC 0xa1c0beefu

/* Child: send to its mailbox until killed; append a record per OK. */
static void sender_main(const alcove_relay_addr *addr, const test_mbox *mb, uint32_t mi,
                        uint32_t sender, int fd)
{
    alcove_link *l = NULL;
    Alcove__Wire__HelloResult hr;
    if (alcove_link_connect(&l, addr, 5000, &hr) != 0)
        _exit(1);
    uint8_t blob[BLOB_LEN];
    for (uint32_t counter = 0;; counter++) {
        acked a = {mi, sender, counter, MAGIC};
        memset(blob, (int)(counter & 0xff), sizeof blob);
        memcpy(blob, &a, sizeof a);
        if (tw_send(l, mb->send_id, mb->secret, blob, sizeof blob) != OK)
            break;
        if (write(fd, &a, sizeof a) != (ssize_t)sizeof a)
            break;
    }
    alcove_link_free(l);
    _exit(0);
}

static int cmp_acked(const void *x, const void *y)
{
    const acked *a = x, *b = y;
    if (a->mbox != b->mbox)
        return a->mbox < b->mbox ? -1 : 1;
    if (a->sender != b->sender)
        return a->sender < b->sender ? -1 : 1;
    if (a->counter != b->counter)
        return a->counter < b->counter ? -1 : 1;
    return 0;
}

/* Fetch every message of every mailbox; returns a sorted malloc'd array. */
static acked *fetch_all(const relayproc *rp, test_mbox *mbs, size_t *n)
{
    size_t cap = 1024, len = 0;
    acked *out = malloc(cap * sizeof *out);
    assert_non_null(out);
    alcove_link *l = tw_connect(&rp->addr);
    for (int i = 0; i < NMBOX; i++) {
        assert_int_equal(tw_login(l, &mbs[i]), OK);
        uint64_t after = 0;
        for (;;) {
            Alcove__Wire__RelayMessage *m = NULL;
            assert_int_equal(tw_fetch(l, mbs[i].recv_id, after, 0, &m), OK);
            Alcove__Wire__FetchResult *fr = m->reply->fetch;
            for (size_t k = 0; k < fr->n_messages; k++) {
                assert_int_equal(fr->messages[k]->blob.len, BLOB_LEN);
                if (len == cap) {
                    out = realloc(out, (cap *= 2) * sizeof *out);
                    assert_non_null(out);
                }
                memcpy(&out[len], fr->messages[k]->blob.data, sizeof(acked));
                assert_int_equal(out[len].magic, MAGIC);
                assert_int_equal(out[len].mbox, (uint32_t)i);
                len++;
                after = fr->messages[k]->seq;
            }
            int more = fr->more;
            alcove__wire__relay_message__free_unpacked(m, NULL);
            if (!more)
                break;
        }
    }
    alcove_link_free(l);
    qsort(out, len, sizeof *out, cmp_acked);
    *n = len;
    return out;
}

static void test_backup_under_load_restores_every_acked_message(void **state)
{
    (void)state;
    char tmp[200], ackpath[300], dest[220], fresh[220];
    relayproc rp, restored;
    test_mbox mbs[NMBOX];
    int load_ms = 1000;
    const char *env = getenv("ALCOVE_BACKUP_LOAD_MS");
    if (env != NULL && atoi(env) > 0)
        load_ms = atoi(env);

    test_mkdtemp(tmp, sizeof tmp);
    relayproc_init_dir(&rp, tmp);
    const char *extra[] = {"--max-messages", "0", "--max-mailbox-bytes", "0", NULL};
    assert_int_equal(relayproc_start(&rp, extra), 0);
    alcove_link *owner = tw_connect(&rp.addr);
    for (int i = 0; i < NMBOX; i++)
        assert_int_equal(tw_create(owner, &mbs[i]), OK);
    alcove_link_free(owner);

    snprintf(ackpath, sizeof ackpath, "%s/acked.bin", tmp);
    int fd = open(ackpath, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0600);
    assert_true(fd >= 0);
    pid_t kids[NSENDERS];
    for (int s = 0; s < NSENDERS; s++) {
        kids[s] = fork();
        assert_true(kids[s] >= 0);
        if (kids[s] == 0)
            sender_main(&rp.addr, &mbs[s % NMBOX], (uint32_t)(s % NMBOX), (uint32_t)s, fd);
    }
    test_sleep_ms((unsigned)load_ms);

    /* Every record in the file now was acked before the backup begins. */
    off_t before_end = lseek(fd, 0, SEEK_END);
    assert_true(before_end > 0);
    size_t nbefore = (size_t)before_end / sizeof(acked);
    snprintf(dest, sizeof dest, "%s/backup", tmp);
    uint64_t t0 = test_now_ms();
    run_result r;
    relay_cmd(&r, (const char *[]){"backup", "--data", rp.dir, dest, NULL});
    uint64_t backup_ms = test_now_ms() - t0;
    if (r.code != 0)
        fail_msg("backup failed (%d): %s", r.code, r.err);
    assert_non_null(strstr(r.out, "backup: "));
    run_result_free(&r);

    /* Stats and verify while the load goes on. */
    relay_cmd(&r, (const char *[]){"stats", "--data", rp.dir, NULL});
    assert_int_equal(r.code, 0);
    assert_true(metric(r.out, "alcove_mailboxes") == NMBOX);
    assert_true(metric(r.out, "alcove_stored_messages") >= (double)nbefore);
    run_result_free(&r);
    relay_cmd(&r, (const char *[]){"verify", "--data", rp.dir, NULL});
    if (r.code != 0)
        fail_msg("verify of the live store failed: %s%s", r.out, r.err);
    run_result_free(&r);

    test_sleep_ms(200); /* sends after the backup: not in it, and fine */
    for (int s = 0; s < NSENDERS; s++) {
        int st;
        kill(kids[s], SIGKILL);
        waitpid(kids[s], &st, 0);
    }
    size_t ntotal = (size_t)lseek(fd, 0, SEEK_END) / sizeof(acked);
    acked *want = malloc(nbefore * sizeof *want);
    assert_non_null(want);
    assert_int_equal(pread(fd, want, nbefore * sizeof *want, 0),
                     (ssize_t)(nbefore * sizeof *want));
    close(fd);
    int st = relayproc_stop(&rp, SIGTERM, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* Restore: copy the backup into a fresh directory, as an operator
     * would, verify it, and serve it. */
    snprintf(fresh, sizeof fresh, "%s/restored", tmp);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", dest, fresh);
    assert_int_equal(system(cmd), 0);
    relay_cmd(&r, (const char *[]){"verify", "--data", fresh, NULL});
    if (r.code != 0)
        fail_msg("verify of the restored copy failed: %s%s", r.out, r.err);
    assert_non_null(strstr(r.out, "verify: ok"));
    run_result_free(&r);
    memset(&restored, 0, sizeof restored);
    restored.pid = -1;
    snprintf(restored.dir, sizeof restored.dir, "%.250s", fresh);
    snprintf(restored.logpath, sizeof restored.logpath, "%s/restored.log", tmp);
    assert_int_equal(relayproc_start(&restored, extra), 0);
    /* Same key: the restored relay has the same address key. */
    assert_memory_equal(restored.addr.key, rp.addr.key, 32);
    size_t nhave = 0;
    acked *have = fetch_all(&restored, mbs, &nhave);
    size_t missing = 0;
    for (size_t i = 0; i < nbefore; i++)
        if (bsearch(&want[i], have, nhave, sizeof *have, cmp_acked) == NULL)
            missing++;
    print_message("backup under load: %zu sends acked before the backup began, %zu messages in "
                  "the backup, %zu acked in all; backup took %llu ms; missing %zu\n",
                  nbefore, nhave, ntotal, (unsigned long long)backup_ms, missing);
    assert_int_equal(missing, 0);
    assert_true(nhave >= nbefore);
    assert_true(nhave <= ntotal + NSENDERS); /* nothing invented */
    free(have);
    free(want);
    st = relayproc_stop(&restored, SIGTERM, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    test_rmtree(tmp);
}

static void test_backup_refuses_an_existing_destination(void **state)
{
    (void)state;
    char tmp[256], dest[300];
    relayproc rp;
    test_mkdtemp(tmp, sizeof tmp);
    relayproc_init_dir(&rp, tmp);
    run_result r;
    /* No store yet: nothing to back up. */
    snprintf(dest, sizeof dest, "%s/b1", tmp);
    relay_cmd(&r, (const char *[]){"backup", "--data", rp.dir, dest, NULL});
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "no store"));
    run_result_free(&r);
    assert_int_equal(relayproc_start(&rp, NULL), 0);
    assert_int_equal(relayproc_stop(&rp, SIGTERM, 10000), 0);
    assert_int_equal(mkdir(dest, 0700), 0);
    relay_cmd(&r, (const char *[]){"backup", "--data", rp.dir, dest, NULL});
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "already exists"));
    run_result_free(&r);
    relay_cmd(&r, (const char *[]){"backup", "--data", rp.dir, NULL});
    assert_int_equal(r.code, 2);
    run_result_free(&r);
    test_rmtree(tmp);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* Put one raw record into the stopped relay's `log` database.  An edit
 * behind the relay's back leaves a store its journal no longer describes
 * (the relay would undo the edit at its next start, and verify refuses such
 * a store as not cleanly closed), so the journal goes too, as for a store
 * from before the journal existed. */
static void put_log(const char *dir, uint64_t gseq, const void *val, size_t len)
{
    char store[400];
    snprintf(store, sizeof store, "%s/store", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
    assert_int_equal(mdb_env_open(env, store, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "log", 0, &dbi), 0);
    uint8_t k[8];
    put_u64(k, gseq);
    MDB_val key = {8, k}, v = {len, (void *)(uintptr_t)val};
    assert_int_equal(mdb_put(txn, dbi, &key, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    char journal[420];
    snprintf(journal, sizeof journal, "%s/journal", store);
    assert_int_equal(unlink(journal) == 0 || errno == ENOENT, 1);
}

static void test_verify_reports_orphans_and_fails_on_damage(void **state)
{
    (void)state;
    char tmp[256];
    relayproc rp;
    test_mkdtemp(tmp, sizeof tmp);
    relayproc_init_dir(&rp, tmp);
    assert_int_equal(relayproc_start(&rp, NULL), 0);
    alcove_link *l = tw_connect(&rp.addr);
    test_mbox mb;
    assert_int_equal(tw_create(l, &mb), OK);
    uint8_t blob[100] = {1};
    for (int i = 0; i < 3; i++)
        assert_int_equal(tw_send(l, mb.send_id, mb.secret, blob, sizeof blob), OK);
    alcove_link_free(l);
    assert_int_equal(relayproc_stop(&rp, SIGTERM, 10000), 0);

    run_result r;
    relay_cmd(&r, (const char *[]){"verify", "--data", rp.dir, NULL});
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "verify: ok: 1 mailboxes, 3 messages (300 bytes), 0 errors"));
    run_result_free(&r);

    /* A record of a mailbox that does not exist: a warning, still healthy. */
    uint8_t orphan[32 + 10];
    memset(orphan, 0xee, sizeof orphan);
    put_u64(orphan + 16, 1);
    put_u64(orphan + 24, 1);
    put_log(rp.dir, 1000, orphan, sizeof orphan);
    relay_cmd(&r, (const char *[]){"verify", "--data", rp.dir, NULL});
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "warning: 1 log records belong to deleted mailboxes"));
    run_result_free(&r);

    /* A record too short to have a header: damage, exit 1. */
    put_log(rp.dir, 1001, "short", 5);
    relay_cmd(&r, (const char *[]){"verify", "--data", rp.dir, NULL});
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.out, "error: log record 1001 is 5 bytes"));
    assert_non_null(strstr(r.out, "verify: BROKEN"));
    assert_non_null(strstr(r.err, "hint: stop the relay and restore"));
    run_result_free(&r);
    /* And a backup of a damaged store is refused, not silently kept. */
    char dest[300];
    snprintf(dest, sizeof dest, "%s/copy", tmp);
    relay_cmd(&r, (const char *[]){"backup", "--data", rp.dir, dest, NULL});
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "does not verify"));
    struct stat st;
    assert_int_not_equal(stat(dest, &st), 0);
    run_result_free(&r);

    /* No store at all. */
    relay_cmd(&r, (const char *[]){"verify", "--data", tmp, NULL});
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "no store in"));
    run_result_free(&r);
    test_rmtree(tmp);
}

/* After a SIGKILL the store has commits that were never synced: verify and
 * backup refuse it until the relay has run once (and replayed its journal),
 * then every acknowledged message is there. */
static void test_unclean_store_is_refused_until_the_relay_replays(void **state)
{
    (void)state;
    char tmp[256];
    relayproc rp;
    test_mkdtemp(tmp, sizeof tmp);
    relayproc_init_dir(&rp, tmp);
    assert_int_equal(relayproc_start(&rp, NULL), 0);
    alcove_link *l = tw_connect(&rp.addr);
    test_mbox mb;
    assert_int_equal(tw_create(l, &mb), OK);
    uint8_t blob[100] = {7};
    for (int i = 0; i < 5; i++)
        assert_int_equal(tw_send(l, mb.send_id, mb.secret, blob, sizeof blob), OK);
    alcove_link_free(l);
    int st = relayproc_stop(&rp, SIGKILL, 10000);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    run_result r;
    relay_cmd(&r, (const char *[]){"verify", "--data", rp.dir, NULL});
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "was not closed cleanly"));
    assert_non_null(strstr(r.err, "hint: start the relay once"));
    run_result_free(&r);
    char dest[300];
    snprintf(dest, sizeof dest, "%s/copy", tmp);
    relay_cmd(&r, (const char *[]){"backup", "--data", rp.dir, dest, NULL});
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "was not closed cleanly"));
    run_result_free(&r);

    assert_int_equal(relayproc_start(&rp, NULL), 0);
    assert_int_equal(relayproc_stop(&rp, SIGTERM, 10000), 0);
    relay_cmd(&r, (const char *[]){"verify", "--data", rp.dir, NULL});
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "verify: ok: 1 mailboxes, 5 messages (500 bytes), 0 errors"));
    run_result_free(&r);
    test_rmtree(tmp);
}

/* A journal with no valid checkpoint slot is refused with a clear error,
 * never taken for an empty one. */
static void test_damaged_journal_is_refused(void **state)
{
    (void)state;
    char tmp[256], path[400];
    relayproc rp;
    test_mkdtemp(tmp, sizeof tmp);
    relayproc_init_dir(&rp, tmp);
    assert_int_equal(relayproc_start(&rp, NULL), 0);
    assert_int_equal(relayproc_stop(&rp, SIGTERM, 10000), 0);
    snprintf(path, sizeof path, "%s/store/journal", rp.dir);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    static uint8_t junk[80 << 10];
    memset(junk, 0x5a, sizeof junk);
    assert_int_equal(pwrite(fd, junk, sizeof junk, 0), (ssize_t)sizeof junk);
    close(fd);
    run_result r;
    relay_cmd(&r, (const char *[]){"run", "--data", rp.dir, "--listen", "127.0.0.1:0", NULL});
    assert_int_not_equal(r.code, 0);
    assert_non_null(strstr(r.err, "journal has no valid checkpoint"));
    run_result_free(&r);
    test_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backup_under_load_restores_every_acked_message),
        cmocka_unit_test(test_backup_refuses_an_existing_destination),
        cmocka_unit_test(test_verify_reports_orphans_and_fails_on_damage),
        cmocka_unit_test(test_unclean_store_is_refused_until_the_relay_replays),
        cmocka_unit_test(test_damaged_journal_is_refused),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
