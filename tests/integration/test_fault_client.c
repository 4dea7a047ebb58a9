/* Fault: what the `alcove` client must survive, end to end with real
 * processes.  Each case: a clear error (exit 1 with a message, never a
 * crash), nothing lost (what the relay holds is not acked away), nothing
 * shown twice.
 *
 *  - corrupted_store_value: a byte flipped in sealed values of the
 *    therapist's local store (sessions, then meta).
 *  - truncated_store: <home>/store/data.mdb cut to half, to 12 KiB, to 0.
 *  - wrong_passphrase: every data command with a wrong passphrase changes
 *    no file and sends nothing.
 *  - malicious_relay_replays_and_reorders: the relay operator edits its own
 *    store: delivered envelopes are stored again under new seqs (replay),
 *    pending ones are permuted (reorder), the intro is replayed.
 *  - sender_killed_after_send_retries_once: the sender is SIGKILLed (by
 *    the LD_PRELOAD shim) right after its Send left, before the reply: the
 *    envelope stays queued, the next command sends it again (the relay
 *    stores the same ciphertext twice), the receiver shows it once. */
#include <fcntl.h>
#include <lmdb.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "clientproc.h"
#include "fault_util.h"
#include "relayproc.h"

typedef struct world {
    char tmp[256];
    relayproc rp;
    char therapist[300], client[300];
} world;

static const char *const PASS_ENV[] = {"ALCOVE_PASSPHRASE=correct horse battery staple", NULL};
static const char *const WRONG_ENV[] = {"ALCOVE_PASSPHRASE=not my passphrase", NULL};

static int setup(void **state)
{
    if (getenv("ALCOVE_BIN") == NULL) {
        fprintf(stderr, "ALCOVE_BIN not set: the client is not built\n");
        return -1;
    }
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    test_mkdtemp(w->tmp, sizeof w->tmp);
    relayproc_init_dir(&w->rp, w->tmp);
    assert_int_equal(relayproc_start(&w->rp, NULL), 0);
    snprintf(w->therapist, sizeof w->therapist, "%s/therapist", w->tmp);
    snprintf(w->client, sizeof w->client, "%s/client", w->tmp);
    run_result r;
    RUN_OK(&r, w->therapist, NULL, "init", "--relay", w->rp.addr_str, "--name", "Dr. Rivera",
           "--no-passphrase");
    run_result_free(&r);
    RUN_OK(&r, w->client, PASS_ENV, "init", "--relay", w->rp.addr_str, "--name", "Sam");
    run_result_free(&r);
    /* Invite, accept, and the therapist takes the intro. */
    RUN_OK(&r, w->therapist, NULL, "--json", "invite", "--name", "Sam");
    char *p = strstr(r.out, "\"code\"");
    assert_non_null(p);
    p = strchr(p + 6, '"');
    assert_non_null(p);
    char *q = strchr(p + 1, '"');
    assert_non_null(q);
    char code[4096];
    snprintf(code, sizeof code, "%.*s", (int)(q - p - 1), p + 1);
    run_result_free(&r);
    RUN_OK(&r, w->client, PASS_ENV, "accept", code, "--name", "Dr Rivera");
    run_result_free(&r);
    RUN_OK(&r, w->therapist, NULL, "fetch");
    run_result_free(&r);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    if (w == NULL)
        return 0;
    if (w->rp.pid > 0)
        relayproc_stop(&w->rp, SIGTERM, 10000);
    test_rmtree(w->tmp);
    free(w);
    return 0;
}

static void send_text(world *w, const char *text)
{
    run_result r;
    RUN_OK(&r, w->client, PASS_ENV, "send", "Dr Rivera", text);
    run_result_free(&r);
}

/* How many times the therapist's `read Sam --all` shows text. */
static int shown(world *w, const char *text)
{
    run_result r;
    RUN_OK(&r, w->therapist, NULL, "--json", "read", "Sam", "--all");
    char needle[200];
    snprintf(needle, sizeof needle, "\"%s\"", text);
    int n = 0;
    for (const char *p = r.out; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    run_result_free(&r);
    return n;
}

static void path_of(char *out, size_t cap, const char *home, const char *rel)
{
    snprintf(out, cap, "%s/%s", home, rel);
}

/* A command that must fail cleanly: exited (no signal), code 1, a message. */
static int clean_failure(const run_result *r)
{
    return r->exited && r->code == 1 && strstr(r->err, "alcove: error:") != NULL;
}

/* Flip one byte in the middle of every value of database `db` of the
 * client store in dir (the test writes with LMDB directly). */
static int flip_values(const char *dir, const char *db)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    int n = 0;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_set_mapsize(env, 1ull << 30), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint8_t *copy = malloc(v.mv_size);
        assert_non_null(copy);
        memcpy(copy, v.mv_data, v.mv_size);
        copy[v.mv_size / 2] ^= 0x20;
        MDB_val nv = {v.mv_size, copy};
        assert_int_equal(mdb_cursor_put(cur, &k, &nv, MDB_CURRENT), 0);
        free(copy);
        n++;
    }
    mdb_cursor_close(cur);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    return n;
}

static void test_corrupted_store_value_fails_clearly_and_loses_nothing(void **state)
{
    world *w = *state;
    run_result r;
    char store[400], data[400], backup[400];
    path_of(store, sizeof store, w->therapist, "store");
    path_of(data, sizeof data, w->therapist, "store/data.mdb");
    snprintf(backup, sizeof backup, "%s/therapist-data.bak", w->tmp);
    send_text(w, "corrupt-case-1");
    send_text(w, "corrupt-case-2");
    assert_int_equal(fault_copy_file(data, backup), 0);

    /* The ratchet state no longer authenticates: fetch must not decrypt,
     * store or ack anything. */
    int nflipped = flip_values(store, "sessions");
    RUN(&r, w->therapist, NULL, "fetch");
    int fetch_clean = clean_failure(&r);
    int fetch_signal = !r.exited;
    fprintf(stderr, "fetch on corrupted sessions: exit=%d code=%d err=%s", r.exited, r.code, r.err);
    run_result_free(&r);
    RUN(&r, w->therapist, NULL, "read", "Sam");
    int read_ok_or_clean = !r.exited ? 0 : (r.code == 0 || clean_failure(&r));
    run_result_free(&r);

    /* The settings record: every command refuses clearly. */
    assert_int_equal(fault_copy_file(backup, data), 0);
    flip_values(store, "meta");
    RUN(&r, w->therapist, NULL, "contacts");
    int meta_clean = clean_failure(&r);
    fprintf(stderr, "contacts on corrupted meta: exit=%d code=%d err=%s", r.exited, r.code, r.err);
    run_result_free(&r);

    /* Restore the backup: nothing was acked away; each message once. */
    assert_int_equal(fault_copy_file(backup, data), 0);
    RUN_OK(&r, w->therapist, NULL, "fetch");
    run_result_free(&r);
    int s1 = shown(w, "corrupt-case-1"), s2 = shown(w, "corrupt-case-2");
    printf("fault_client corrupted_value: sessions_values_flipped=%d fetch_clean_error=%d "
           "fetch_crashed=%d read_ok_or_clean=%d meta_clean_error=%d after_restore_shown=%d,%d "
           "(want 1,1)\n",
           nflipped, fetch_clean, fetch_signal, read_ok_or_clean, meta_clean, s1, s2);
    assert_true(nflipped > 0);
    assert_true(fetch_clean);
    assert_true(read_ok_or_clean);
    assert_true(meta_clean);
    assert_int_equal(s1, 1);
    assert_int_equal(s2, 1);
}

static void test_truncated_store_fails_clearly(void **state)
{
    world *w = *state;
    char data[400], backup[400];
    path_of(data, sizeof data, w->therapist, "store/data.mdb");
    snprintf(backup, sizeof backup, "%s/therapist-data.bak", w->tmp);
    send_text(w, "truncate-case");
    assert_int_equal(fault_copy_file(data, backup), 0);
    struct stat sb;
    assert_int_equal(stat(data, &sb), 0);
    off_t sizes[3] = {sb.st_size / 2, 12288, 0};
    const char *names[3] = {"half", "12KiB", "empty"};
    int clean[3], crashed[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fault_copy_file(backup, data), 0);
        assert_int_equal(truncate(data, sizes[i]), 0);
        run_result r;
        RUN(&r, w->therapist, NULL, "fetch");
        clean[i] = clean_failure(&r);
        crashed[i] = !r.exited;
        fprintf(stderr, "fetch on store truncated to %s: exit=%d code=%d err=%s", names[i],
                r.exited, r.code, r.err);
        run_result_free(&r);
        RUN(&r, w->therapist, NULL, "contacts");
        clean[i] &= clean_failure(&r) || (r.exited && r.code == 0);
        crashed[i] |= !r.exited;
        run_result_free(&r);
    }
    /* Back to the real store: the message was never acked away. */
    assert_int_equal(fault_copy_file(backup, data), 0);
    run_result r;
    RUN_OK(&r, w->therapist, NULL, "fetch");
    run_result_free(&r);
    int s = shown(w, "truncate-case");
    printf("fault_client truncated_store: half clean=%d crashed=%d | 12KiB clean=%d crashed=%d "
           "| empty clean=%d crashed=%d | after_restore_shown=%d (want 1)\n",
           clean[0], crashed[0], clean[1], crashed[1], clean[2], crashed[2], s);
    for (int i = 0; i < 3; i++) {
        assert_false(crashed[i]);
        assert_true(clean[i]);
    }
    assert_int_equal(s, 1);
}

/* Hash every file under dir (names and contents) into out. */
static void hash_tree(const char *dir, crypto_generichash_state *h)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cd '%s' && find . -type f | LC_ALL=C sort", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[512];
    while (fgets(line, sizeof line, p) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, line);
        size_t len = 0;
        char *d = test_read_file(path, &len);
        crypto_generichash_update(h, (const uint8_t *)line, strlen(line));
        if (d != NULL)
            crypto_generichash_update(h, (const uint8_t *)d, len);
        free(d);
    }
    pclose(p);
}

static void test_wrong_passphrase_changes_and_sends_nothing(void **state)
{
    world *w = *state;
    uint8_t before[32], after[32];
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 32);
    hash_tree(w->client, &h);
    crypto_generichash_final(&h, before, 32);
    const char *const cmds[][5] = {{"send", "Dr Rivera", "wrong-pass-msg", NULL, NULL},
                                   {"checkin", "Dr Rivera", "--mood", "3", NULL},
                                   {"fetch", NULL, NULL, NULL, NULL},
                                   {"read", NULL, NULL, NULL, NULL},
                                   {"contacts", NULL, NULL, NULL, NULL},
                                   {"whoami", NULL, NULL, NULL, NULL}};
    int n = (int)(sizeof cmds / sizeof cmds[0]), clean = 0;
    for (int i = 0; i < n; i++) {
        run_result r;
        alcove_run(&r, w->client, NULL, WRONG_ENV, cmds[i]);
        clean += r.exited && r.code == 1 && strstr(r.err, "wrong passphrase") != NULL;
        run_result_free(&r);
    }
    crypto_generichash_init(&h, NULL, 0, 32);
    hash_tree(w->client, &h);
    crypto_generichash_final(&h, after, 32);
    run_result r;
    RUN_OK(&r, w->therapist, NULL, "fetch");
    run_result_free(&r);
    int leaked = shown(w, "wrong-pass-msg");
    int unchanged = memcmp(before, after, 32) == 0;
    printf("fault_client wrong_passphrase: commands=%d refused_clearly=%d home_unchanged=%d "
           "sent_anyway=%d\n",
           n, clean, unchanged, leaked);
    assert_int_equal(clean, n);
    assert_true(unchanged);
    assert_int_equal(leaked, 0);
}

/* --- the relay operator edits its store -------------------------------- */

typedef struct rec {
    uint8_t key[8];
    size_t len;
    uint8_t *val; /* recv_id(16) seq(8) received_at(8) blob */
} rec;

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static MDB_env *relay_env(world *w, MDB_txn **txn, MDB_dbi *log, MDB_dbi *mbox)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/store", w->rp.dir);
    /* The relay was stopped cleanly (its journal is fully checkpointed); the
     * malicious relay edits data.mdb behind its back, which the journal no
     * longer describes: drop it, as an operator would after such an edit
     * (docs/operating.md), or the next start would undo the edit. */
    char journal[420];
    snprintf(journal, sizeof journal, "%s/journal", dir);
    assert_true(unlink(journal) == 0 || errno == ENOENT);
    MDB_env *env;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_set_mapsize(env, 1ull << 30), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, txn), 0);
    assert_int_equal(mdb_dbi_open(*txn, "log", 0, log), 0);
    assert_int_equal(mdb_dbi_open(*txn, "mbox", 0, mbox), 0);
    return env;
}

/* All log records now in the relay's store (relay stopped). */
/* The relay's log records, in order; only those of mailbox `only` (its
 * 16-byte recv_id) when not NULL, since receipts travel the other way. */
static size_t read_log(world *w, rec *out, size_t cap, const uint8_t *only)
{
    MDB_txn *txn;
    MDB_dbi log, mbox;
    MDB_env *env = relay_env(w, &txn, &log, &mbox);
    MDB_cursor *cur;
    MDB_val k, v;
    size_t n = 0;
    assert_int_equal(mdb_cursor_open(txn, log, &cur), 0);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && n < cap;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (only != NULL && (v.mv_size < 16 || memcmp(v.mv_data, only, 16) != 0))
            continue;
        memcpy(out[n].key, k.mv_data, 8);
        out[n].len = v.mv_size;
        out[n].val = malloc(v.mv_size);
        assert_non_null(out[n].val);
        memcpy(out[n].val, v.mv_data, v.mv_size);
        n++;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return n;
}

/* Store blob again in recv_id's mailbox under the next seq and log key. */
static void replay(world *w, const rec *r)
{
    MDB_txn *txn;
    MDB_dbi log, mbox;
    MDB_env *env = relay_env(w, &txn, &log, &mbox);
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t last_key = 0, top_seq = 0;
    assert_int_equal(mdb_cursor_open(txn, log, &cur), 0);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        last_key = be64(k.mv_data);
        if (memcmp(v.mv_data, r->val, 16) == 0 && be64((uint8_t *)v.mv_data + 16) > top_seq)
            top_seq = be64((uint8_t *)v.mv_data + 16);
    }
    mdb_cursor_close(cur);
    MDB_val mk = {16, r->val}, mv;
    assert_int_equal(mdb_get(txn, mbox, &mk, &mv), 0);
    uint64_t acked = be64((uint8_t *)mv.mv_data + 1 + 32 + 16 + 32 + 16);
    if (acked > top_seq)
        top_seq = acked;
    uint8_t key[8];
    put_be64(key, last_key + 1);
    uint8_t *val = malloc(r->len);
    assert_non_null(val);
    memcpy(val, r->val, r->len);
    put_be64(val + 16, top_seq + 1);
    MDB_val nk = {8, key}, nv = {r->len, val};
    assert_int_equal(mdb_put(txn, log, &nk, &nv, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    free(val);
}

/* Permute the blobs of the records with these keys: blob i gets blob
 * perm[i]. */
static void permute(world *w, const rec *rs, const int *perm, size_t n)
{
    MDB_txn *txn;
    MDB_dbi log, mbox;
    MDB_env *env = relay_env(w, &txn, &log, &mbox);
    for (size_t i = 0; i < n; i++) {
        const rec *dst = &rs[i], *src = &rs[perm[i]];
        size_t len = 32 + (src->len - 32);
        uint8_t *val = malloc(len);
        assert_non_null(val);
        memcpy(val, dst->val, 32); /* keep recv_id, seq, received_at */
        memcpy(val + 32, src->val + 32, src->len - 32);
        MDB_val k = {8, (void *)(uintptr_t)dst->key}, v = {len, val};
        assert_int_equal(mdb_put(txn, log, &k, &v, 0), 0);
        free(val);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void free_recs(rec *rs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(rs[i].val);
}

static void restart_relay(world *w)
{
    /* The relay keeps its port: its address is in both homes. */
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", (unsigned)w->rp.addr.port);
    const char *const extra[] = {"--listen", listen, NULL};
    assert_int_equal(relayproc_start(&w->rp, extra), 0);
}

static void test_malicious_relay_replays_and_reorders(void **state)
{
    world *w = *state;
    run_result r;
    rec first[16], pending[16];
    /* Replay the intro: it is in the relay's log until the therapist's
     * fetch acked it; it was acked in setup, so take the next best: the
     * first three messages, delivered, acked, then replayed. */
    send_text(w, "order-1");
    send_text(w, "order-2");
    send_text(w, "order-3");
    assert_true(WIFEXITED(relayproc_stop(&w->rp, SIGTERM, 10000)));
    size_t nfirst = read_log(w, first, 16, NULL);
    assert_int_equal(nfirst, 3);
    restart_relay(w);
    RUN_OK(&r, w->therapist, NULL, "fetch");
    run_result_free(&r);
    send_text(w, "order-4");
    send_text(w, "order-5");
    send_text(w, "order-6");
    assert_true(WIFEXITED(relayproc_stop(&w->rp, SIGTERM, 10000)));
    size_t npend = read_log(w, pending, 16, first[0].val);
    /* Reorder the pending three (6, 4, 5), then replay delivered and
     * pending envelopes under new seqs. */
    int perm[3] = {2, 0, 1};
    assert_int_equal(npend, 3);
    permute(w, pending, perm, 3);
    for (size_t i = 0; i < nfirst; i++)
        replay(w, &first[i]);
    replay(w, &pending[1]);
    replay(w, &pending[1]);
    restart_relay(w);
    RUN(&r, w->therapist, NULL, "fetch");
    int fetch_exit = r.exited ? r.code : -1;
    run_result_free(&r);
    RUN_OK(&r, w->therapist, NULL, "fetch"); /* the mailbox is drained */
    int nothing_left = strstr(r.out, "No new messages") != NULL;
    run_result_free(&r);
    int counts[6];
    char name[32];
    int all_once = 1;
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "order-%d", i + 1);
        counts[i] = shown(w, name);
        all_once &= counts[i] == 1;
    }
    printf("fault_client malicious_relay: replayed_delivered=%zu reordered=3 replayed_pending=2 "
           "fetch_exit=%d shown_counts=%d,%d,%d,%d,%d,%d (want all 1) mailbox_drained=%d\n",
           nfirst, fetch_exit, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5],
           nothing_left);
    free_recs(first, nfirst);
    free_recs(pending, npend);
    assert_int_equal(nfirst, 3);
    assert_true(all_once);
    assert_true(nothing_left);
}

static void test_sender_killed_after_send_retries_once(void **state)
{
    world *w = *state;
    const char *shim = fault_shim_path();
    if (shim == NULL)
        skip();
    char preload[600], asan[700];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", shim);
    const char *old = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%sverify_asan_link_order=0", old ? old : "",
             old && *old ? ":" : "");
    /* A Send frame of a padded envelope is > 1 KiB; handshake, Hello and
     * Login frames are far smaller. */
    const char *const env[] = {PASS_ENV[0], preload, asan, "ALCOVE_FAULT_KILL_AFTER_SEND=1024",
                               NULL};
    run_result r;
    const char *const args[] = {"send", "Dr Rivera", "sent-then-killed", NULL};
    alcove_run(&r, w->client, NULL, env, args);
    int killed = !r.exited && r.code == SIGKILL;
    run_result_free(&r);
    /* The next command delivers the queued envelope again. */
    send_text(w, "after-the-kill");
    RUN_OK(&r, w->therapist, NULL, "fetch");
    run_result_free(&r);
    RUN_OK(&r, w->therapist, NULL, "fetch");
    run_result_free(&r);
    int once = shown(w, "sent-then-killed"), after = shown(w, "after-the-kill");
    printf("fault_client sender_killed: killed_after_send=%d shown=%d (want 1) "
           "next_message_shown=%d\n",
           killed, once, after);
    assert_true(killed);
    assert_int_equal(once, 1);
    assert_int_equal(after, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_corrupted_store_value_fails_clearly_and_loses_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_store_fails_clearly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_passphrase_changes_and_sends_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malicious_relay_replays_and_reorders, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sender_killed_after_send_retries_once, setup,
                                        teardown),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
