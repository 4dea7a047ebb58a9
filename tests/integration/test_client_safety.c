/* What a client must survive: canaries never reach disk in the clear, a
 * crash between the local commit and the ack loses and duplicates nothing,
 * wrong passphrases and bad invite codes fail clearly and change nothing. */
#include <dirent.h>
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
#include <jansson.h>
#include <sodium.h>

#include "address.h"
#include "clientproc.h"
#include "relayproc.h"

typedef struct world {
    char tmp[256];
    relayproc rp;
    char therapist[300], client[300], client2[300];
} world;

static const char *const PASS_ENV[] = {"ALCOVE_PASSPHRASE=correct horse battery staple", NULL};
static const char *const WRONG_ENV[] = {"ALCOVE_PASSPHRASE=not my passphrase", NULL};
static const char *const CRASH_ENV[] = {"ALCOVE_FAULT=after-commit", NULL};

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    test_mkdtemp(w->tmp, sizeof w->tmp);
    relayproc_init_dir(&w->rp, w->tmp);
    assert_int_equal(relayproc_start(&w->rp, NULL), 0);
    snprintf(w->therapist, sizeof w->therapist, "%s/therapist", w->tmp);
    snprintf(w->client, sizeof w->client, "%s/client", w->tmp);
    snprintf(w->client2, sizeof w->client2, "%s/client2", w->tmp);
    run_result r;
    RUN_OK(&r, w->therapist, NULL, "init", "--relay", w->rp.addr_str, "--name", "Dr. Rivera",
           "--no-passphrase");
    run_result_free(&r);
    RUN_OK(&r, w->client, PASS_ENV, "init", "--relay", w->rp.addr_str, "--name", "Sam");
    run_result_free(&r);
    RUN_OK(&r, w->client2, NULL, "init", "--relay", w->rp.addr_str, "--no-passphrase");
    run_result_free(&r);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    if (w->rp.pid > 0) {
        int st = relayproc_stop(&w->rp, SIGTERM, 10000);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    test_rmtree(w->tmp);
    free(w);
    return 0;
}

static char *make_invite(world *w, const char *label, const char *expires)
{
    run_result r;
    RUN_OK(&r, w->therapist, NULL, "--json", "invite", "--name", label, "--expires", expires);
    json_error_t jerr;
    json_t *j = json_loads(r.out, 0, &jerr);
    assert_non_null(j);
    char *code = strdup(json_string_value(json_object_get(j, "code")));
    json_decref(j);
    run_result_free(&r);
    return code;
}

static void connect_sam(world *w)
{
    char *code = make_invite(w, "Sam", "7d");
    run_result r;
    RUN_OK(&r, w->client, PASS_ENV, "accept", code, "--name", "Dr Rivera");
    run_result_free(&r);
    RUN_OK(&r, w->therapist, NULL, "fetch");
    run_result_free(&r);
    free(code);
}

/* --- canaries ------------------------------------------------------------ */

static int file_has(const char *path, const uint8_t *needle, size_t n)
{
    size_t len = 0;
    char *data = test_read_file(path, &len);
    int found = 0;
    if (data == NULL)
        return 0;
    for (size_t i = 0; !found && n <= len && i <= len - n; i++)
        found = memcmp(data + i, needle, n) == 0;
    free(data);
    return found;
}

/* Count files under dir containing any of the needles. */
static int tree_has(const char *dir, const uint8_t *const *needles, const size_t *lens, int nn,
                    int *files_seen)
{
    DIR *d = opendir(dir);
    int hits = 0;
    struct dirent *e;
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            hits += tree_has(path, needles, lens, nn, files_seen);
        } else if (S_ISREG(st.st_mode)) {
            (*files_seen)++;
            for (int i = 0; i < nn; i++)
                if (file_has(path, needles[i], lens[i])) {
                    fprintf(stderr, "canary found in %s\n", path);
                    hits++;
                }
        }
    }
    closedir(d);
    return hits;
}

static void test_canaries_never_reach_disk_or_logs(void **state)
{
    world *w = *state;
    run_result r;
    connect_sam(w);
    char canary[64], hex[129], b64[100];
    uint8_t rnd[12];
    randombytes_buf(rnd, sizeof rnd);
    snprintf(canary, sizeof canary, "CANARY-");
    for (size_t i = 0; i < sizeof rnd; i++)
        sprintf(canary + 7 + 2 * i, "%02x", rnd[i]);
    for (size_t i = 0; i < strlen(canary); i++)
        sprintf(hex + 2 * i, "%02x", (unsigned char)canary[i]);
    assert_int_equal(alcove_b64url_encode((const uint8_t *)canary, strlen(canary), b64, sizeof b64), 0);
    char note[128];
    snprintf(note, sizeof note, "private note %s", canary);
    RUN_OK(&r, w->client, PASS_ENV, "checkin", "Dr Rivera", "--mood", "3", "--note", note);
    run_result_free(&r);
    RUN_OK(&r, w->client, PASS_ENV, "send", "Dr Rivera", canary);
    run_result_free(&r);
    /* Before the therapist fetches, the relay holds the sealed blobs. */
    const uint8_t *needles[3] = {(const uint8_t *)canary, (const uint8_t *)hex, (const uint8_t *)b64};
    size_t lens[3] = {strlen(canary), strlen(hex), strlen(b64)};
    int files = 0;
    assert_int_equal(tree_has(w->rp.dir, needles, lens, 3, &files), 0);
    assert_true(files >= 2); /* relay.key and the LMDB files were searched */
    RUN_OK(&r, w->therapist, NULL, "fetch");
    run_result_free(&r);
    /* The therapist can read it... */
    RUN_OK(&r, w->therapist, NULL, "read", "Sam");
    assert_non_null(strstr(r.out, canary));
    run_result_free(&r);
    /* ...but no file of the relay or either home holds it in any form. */
    files = 0;
    assert_int_equal(tree_has(w->rp.dir, needles, lens, 3, &files), 0);
    assert_int_equal(tree_has(w->therapist, needles, lens, 3, &files), 0);
    assert_int_equal(tree_has(w->client, needles, lens, 3, &files), 0);
    assert_true(files >= 8);
    /* The relay's log names no mailbox id: no long hex or base64url runs. */
    int st = relayproc_stop(&w->rp, SIGTERM, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *log = test_read_file(w->rp.logpath, NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, "event=listening"));
    /* Event names are lowercase words joined by '_'; a 16-byte id is 22
     * base64url or 32 hex characters and (but with negligible chance) has
     * a digit or capital in it. */
    size_t run = 0, odd = 0;
    for (const char *p = log; *p; p++) {
        int lower = (*p >= 'a' && *p <= 'z') || *p == '_';
        int idch = lower || (*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') || *p == '-';
        run = idch ? run + 1 : 0;
        odd = idch ? odd + !lower : 0;
        if (run >= 22 && odd > 0)
            fprintf(stderr, "suspicious token in relay log near: %.40s\n", p - 21);
        assert_false(run >= 22 && odd > 0);
    }
    free(log);
}

/* --- crash between commit and ack ---------------------------------------- */

static void test_crash_between_store_and_ack_loses_and_repeats_nothing(void **state)
{
    world *w = *state;
    run_result r;
    connect_sam(w);
    for (int i = 0; i < 5; i++) {
        char text[64];
        snprintf(text, sizeof text, "message number %d", i);
        RUN_OK(&r, w->client, PASS_ENV, "send", "Dr Rivera", text);
        run_result_free(&r);
    }
    /* Killed after committing locally, before acking the relay. */
    RUN(&r, w->therapist, CRASH_ENV, "fetch");
    assert_false(r.exited);
    assert_int_equal(r.code, SIGKILL);
    run_result_free(&r);
    /* The relay still has them (unacked); the next fetch must not store
     * them twice. */
    RUN_OK(&r, w->therapist, NULL, "fetch");
    run_result_free(&r);
    RUN_OK(&r, w->therapist, NULL, "fetch");
    run_result_free(&r);
    RUN_OK(&r, w->therapist, NULL, "--json", "read", "Sam", "--all");
    json_error_t jerr;
    json_t *msgs = json_loads(r.out, 0, &jerr);
    assert_non_null(msgs);
    int seen[5] = {0};
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *text = json_string_value(json_object_get(m, "text"));
        int k;
        if (text != NULL && sscanf(text, "message number %d", &k) == 1 && k >= 0 && k < 5)
            seen[k]++;
    }
    for (int k = 0; k < 5; k++)
        assert_int_equal(seen[k], 1);
    json_decref(msgs);
    run_result_free(&r);
}

/* --- passphrases ----------------------------------------------------------- */

static void test_wrong_passphrase_fails_and_changes_nothing(void **state)
{
    world *w = *state;
    run_result r;
    char path[400];
    snprintf(path, sizeof path, "%s/identity", w->client);
    size_t len0 = 0, len1 = 0;
    char *before = test_read_file(path, &len0);
    assert_non_null(before);
    RUN(&r, w->client, WRONG_ENV, "contacts");
    assert_true(r.exited);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "wrong passphrase"));
    run_result_free(&r);
    char *after = test_read_file(path, &len1);
    assert_non_null(after);
    assert_int_equal(len0, len1);
    assert_memory_equal(before, after, len0);
    free(before);
    free(after);
    RUN_OK(&r, w->client, PASS_ENV, "contacts");
    run_result_free(&r);
}

/* --- invite codes ----------------------------------------------------------- */

static void expect_accept_error(world *w, const char *code, const char *text)
{
    run_result r;
    RUN(&r, w->client2, NULL, "accept", code);
    assert_true(r.exited);
    assert_int_equal(r.code, 1);
    if (strstr(r.err, text) == NULL)
        fprintf(stderr, "expected '%s' in: %s\n", text, r.err);
    assert_non_null(strstr(r.err, text));
    run_result_free(&r);
}

static void test_bad_invite_codes_say_what_is_wrong(void **state)
{
    world *w = *state;
    char *code = make_invite(w, "Alex", "7d");
    size_t n = strlen(code);

    /* Mistyped: one character changed. */
    char *typo = strdup(code);
    typo[n / 2] = typo[n / 2] == 'A' ? 'B' : 'A';
    expect_accept_error(w, typo, "mistyped");
    free(typo);
    expect_accept_error(w, code + 7, "not an alcove invite");

    /* Forged: a body byte changed and the checksum recomputed. */
    uint8_t raw[4096];
    size_t rlen = 0;
    assert_int_equal(alcove_b64url_decode(code + 7, n - 7, raw, sizeof raw, &rlen), 0);
    assert_true(rlen > 40);
    raw[rlen / 2] ^= 0x01;
    uint8_t sum[32];
    crypto_generichash(sum, sizeof sum, raw, rlen - 4, NULL, 0);
    memcpy(raw + rlen - 4, sum, 4);
    char forged[8192] = "alcove:";
    assert_int_equal(alcove_b64url_encode(raw, rlen, forged + 7, sizeof forged - 7), 0);
    run_result r;
    RUN(&r, w->client2, NULL, "accept", forged);
    assert_int_equal(r.code, 1);
    /* Flipping a byte may break the protobuf (malformed) or the body
     * (bad signature); it must never be accepted. */
    assert_true(strstr(r.err, "bad signature") != NULL || strstr(r.err, "malformed") != NULL);
    run_result_free(&r);

    /* White space inside a code (wrapped in an email) is fine. */
    char *wrapped = malloc(n + n / 20 + 2);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        wrapped[k++] = code[i];
        if (i % 20 == 19)
            wrapped[k++] = '\n';
    }
    wrapped[k] = '\0';
    RUN_OK(&r, w->client2, NULL, "accept", wrapped, "--name", "Therapist");
    run_result_free(&r);
    free(wrapped);
    /* Used twice by the same person: refused locally. */
    RUN(&r, w->client2, NULL, "accept", code, "--name", "Other");
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "already accepted"));
    run_result_free(&r);
    /* Used by someone else after it was used: the therapist drops the
     * second intro and shows one contact, once. */
    RUN_OK(&r, w->client, PASS_ENV, "accept", code, "--name", "Therapist");
    run_result_free(&r);
    RUN_OK(&r, w->therapist, NULL, "fetch");
    run_result_free(&r);
    RUN_OK(&r, w->therapist, NULL, "--json", "contacts");
    json_error_t jerr;
    json_t *cs = json_loads(r.out, 0, &jerr);
    assert_non_null(cs);
    assert_int_equal(json_array_size(cs), 1);
    json_decref(cs);
    run_result_free(&r);
    free(code);

    /* Expired. */
    code = make_invite(w, "Late", "1s");
    test_sleep_ms(1200);
    expect_accept_error(w, code, "expired");
    free(code);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_canaries_never_reach_disk_or_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_between_store_and_ack_loses_and_repeats_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_passphrase_fails_and_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_invite_codes_say_what_is_wrong, setup, teardown),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
