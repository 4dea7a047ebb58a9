/* Backup and restore with real processes: backup -> wipe the home ->
 * restore -> the thread is intact and messages flow both ways; a wrong
 * passphrase or a damaged file writes nothing; a restored session never
 * repeats a ratchet header (hence a message key and nonce) used before the
 * restore; a backup restored after the peer moved on says so plainly on
 * both sides and `alcove reinvite` repairs it. */
#include <dirent.h>
#include <sys/stat.h>

#include "client_practice_common.h"
#include "e2e.pb-c.h"

typedef struct hdr {
    uint8_t dh[32];
    uint32_t pn, n;
} hdr;

/* Parse the blob log (one hex envelope per line) into ratchet headers. */
static size_t read_headers(const char *path, hdr *out, size_t cap)
{
    char *text = test_read_file(path, NULL);
    size_t n = 0;
    if (text == NULL)
        return 0;
    for (char *line = strtok(text, "\n"); line != NULL && n < cap; line = strtok(NULL, "\n")) {
        size_t hl = strlen(line), bl = 0;
        uint8_t *blob = malloc(hl / 2 + 1);
        assert_non_null(blob);
        assert_int_equal(sodium_hex2bin(blob, hl / 2 + 1, line, hl, NULL, &bl, NULL), 0);
        Alcove__E2e__Envelope *env = alcove__e2e__envelope__unpack(NULL, bl, blob);
        assert_non_null(env);
        if (env->kind_case == ALCOVE__E2E__ENVELOPE__KIND_MESSAGE) {
            const uint8_t *h = env->message->header.data;
            assert_int_equal(env->message->header.len, 40);
            memcpy(out[n].dh, h, 32);
            out[n].pn = (uint32_t)h[32] << 24 | (uint32_t)h[33] << 16 | (uint32_t)h[34] << 8 | h[35];
            out[n].n = (uint32_t)h[36] << 24 | (uint32_t)h[37] << 16 | (uint32_t)h[38] << 8 | h[39];
            n++;
        }
        alcove__e2e__envelope__free_unpacked(env, NULL);
        free(blob);
    }
    free(text);
    return n;
}

static int dir_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void expect_text_in_thread(const char *home, const char *const *env, const char *contact,
                                  const char *text)
{
    json_t *msgs = JSON(home, env, "read", contact, "--all");
    size_t i, found = 0;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *t = json_string_value(json_object_get(m, "text"));
        found += t != NULL && strcmp(t, text) == 0;
    }
    if (found != 1)
        fprintf(stderr, "'%s' found %zu times in %s's thread\n", text, found, contact);
    assert_int_equal(found, 1);
    json_decref(msgs);
}

static void test_backup_wipe_restore_thread_intact_flows_both_ways_no_key_reuse(void **state)
{
    world *w = *state;
    char log[400], bk[400], env_log[440];
    snprintf(log, sizeof log, "%s/client-blobs.log", w->tmp);
    snprintf(env_log, sizeof env_log, "ALCOVE_TEST_BLOB_LOG=%s", log);
    const char *const CL[] = {C_ENV[0], C_ENV[1], env_log, NULL};
    snprintf(bk, sizeof bk, "%s/sam.alcove-backup", w->tmp);
    connect_sam(w, "In a crisis call 988.");
    DO(w->client, CL, "send", "Dr Rivera", "before the backup 1");
    DO(w->therapist, T_ENV, "send", "Sam", "therapist before the backup");
    DO(w->client, CL, "fetch");
    DO(w->client, CL, "send", "Dr Rivera", "before the backup 2");
    DO(w->therapist, T_ENV, "fetch");

    run_result r;
    RUN_OK(&r, w->client, CL, "backup", bk);
    EXPECT_IN(r.out, "Wrote the backup");
    run_result_free(&r);
    struct stat st;
    assert_int_equal(stat(bk, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* The lost laptop went on sending after the backup. */
    DO(w->client, CL, "send", "Dr Rivera", "sent by the lost laptop 1");
    DO(w->client, CL, "send", "Dr Rivera", "sent by the lost laptop 2");
    DO(w->therapist, T_ENV, "fetch");
    hdr before[64];
    size_t nbefore = read_headers(log, before, 64);
    assert_true(nbefore >= 4);

    /* Lost: wipe the home. */
    test_rmtree(w->client);
    assert_false(dir_exists(w->client));

    /* Wrong passphrase and damaged files write nothing. */
    const char *const WRONG[] = {"ALCOVE_BACKUP_PASSPHRASE=not it", NULL};
    RUN(&r, w->client, WRONG, "restore", bk);
    assert_int_equal(r.code, 1);
    EXPECT_IN(r.err, "wrong backup passphrase, or");
    run_result_free(&r);
    assert_false(dir_exists(w->client));
    size_t blen = 0;
    char *bytes = test_read_file(bk, &blen);
    char damaged[400];
    snprintf(damaged, sizeof damaged, "%s/damaged.bk", w->tmp);
    bytes[blen / 2] ^= 0x40;
    FILE *f = fopen(damaged, "wb");
    fwrite(bytes, 1, blen, f);
    fclose(f);
    RUN(&r, w->client, CL, "restore", damaged);
    assert_int_equal(r.code, 1);
    EXPECT_IN(r.err, "is damaged");
    run_result_free(&r);
    f = fopen(damaged, "wb");
    fwrite(bytes, 1, 40, f); /* truncated */
    fclose(f);
    RUN(&r, w->client, CL, "restore", damaged);
    assert_int_equal(r.code, 1);
    EXPECT_IN(r.err, "is not an alcove backup (it is truncated)");
    run_result_free(&r);
    free(bytes);
    assert_false(dir_exists(w->client));
    /* No stray staging directories either. */
    DIR *d = opendir(w->tmp);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        assert_null(strstr(e->d_name, ".restore-"));
    closedir(d);

    RUN_OK(&r, w->client, CL, "restore", bk);
    EXPECT_IN(r.out, "Restored the backup made");
    run_result_free(&r);
    /* A non-empty home is never overwritten. */
    RUN(&r, w->client, CL, "restore", bk);
    assert_int_equal(r.code, 1);
    EXPECT_IN(r.err, "is not empty");
    run_result_free(&r);

    /* The thread up to the backup is intact. */
    expect_text_in_thread(w->client, CL, "Dr Rivera", "before the backup 1");
    expect_text_in_thread(w->client, CL, "Dr Rivera", "therapist before the backup");
    expect_text_in_thread(w->client, CL, "Dr Rivera", "before the backup 2");
    /* Sending before a fresh ratchet step is refused, and nothing leaves. */
    RUN(&r, w->client, CL, "send", "Dr Rivera", "too early");
    assert_int_equal(r.code, 1);
    EXPECT_IN(r.err, "restored from a backup and is not re-keyed yet");
    run_result_free(&r);
    hdr tmp[64];
    assert_int_equal(read_headers(log, tmp, 64), nbefore);
    json_t *a = JSON(w->client, CL, "audit");
    int restored = 0;
    size_t i;
    json_t *ev;
    json_array_foreach(a, i, ev) {
        restored |= strcmp(json_string_value(json_object_get(ev, "event")), "restored") == 0;
    }
    assert_true(restored);
    json_decref(a);
    DO(w->client, CL, "audit", "verify");

    /* The therapist writes; the restored client decrypts it and steps. */
    DO(w->therapist, T_ENV, "send", "Sam", "are you there?");
    DO(w->client, CL, "fetch");
    expect_text_in_thread(w->client, CL, "Dr Rivera", "are you there?");
    DO(w->client, CL, "send", "Dr Rivera", "after the restore 1");
    DO(w->client, CL, "checkin", "Dr Rivera", "--mood", "6");
    DO(w->client, CL, "send", "Dr Rivera", "after the restore 2");
    DO(w->therapist, T_ENV, "fetch");
    expect_text_in_thread(w->therapist, T_ENV, "Sam", "after the restore 1");
    expect_text_in_thread(w->therapist, T_ENV, "Sam", "after the restore 2");
    expect_text_in_thread(w->therapist, T_ENV, "Sam", "sent by the lost laptop 2");
    DO(w->therapist, T_ENV, "send", "Sam", "good to have you back");
    DO(w->client, CL, "fetch");
    expect_text_in_thread(w->client, CL, "Dr Rivera", "good to have you back");

    /* No (ratchet key, n) pair -- hence no message key and nonce -- and no
     * ratchet key at all from before the restore is used after it. */
    hdr all[64];
    size_t nall = read_headers(log, all, 64);
    assert_int_equal(nall, nbefore + 3);
    for (size_t k = nbefore; k < nall; k++)
        for (size_t j = 0; j < nbefore; j++) {
            assert_memory_not_equal(all[k].dh, before[j].dh, 32);
            assert_false(all[k].n == before[j].n && memcmp(all[k].dh, before[j].dh, 32) == 0);
        }
}

static void test_backup_restored_after_peer_moved_on_says_so_and_reinvite_repairs(void **state)
{
    world *w = *state;
    char bk[400];
    snprintf(bk, sizeof bk, "%s/old.alcove-backup", w->tmp);
    connect_sam(w, "In a crisis call 988.");
    DO(w->client, C_ENV, "send", "Dr Rivera", "hello");
    DO(w->therapist, T_ENV, "fetch");
    DO(w->client, C_ENV, "backup", bk);
    /* Two round trips after the backup: both ratchets move past it. */
    for (int i = 0; i < 2; i++) {
        DO(w->therapist, T_ENV, "send", "Sam", "therapist writes");
        DO(w->client, C_ENV, "fetch");
        DO(w->client, C_ENV, "send", "Dr Rivera", "client writes");
        DO(w->therapist, T_ENV, "fetch");
    }
    DO(w->therapist, T_ENV, "send", "Sam", "written after the loss");
    test_rmtree(w->client);
    DO(w->client, C_ENV, "restore", bk);

    run_result r;
    RUN(&r, w->client, C_ENV, "fetch");
    assert_int_equal(r.code, 1);
    EXPECT_IN(r.err, "cannot be decrypted: this conversation was restored from an older backup "
                     "and Dr Rivera's app has moved on since");
    EXPECT_IN(r.err, "alcove: hint: run 'alcove reinvite Dr Rivera'");
    run_result_free(&r);
    RUN(&r, w->client, C_ENV, "send", "Dr Rivera", "can you read me?");
    assert_int_equal(r.code, 1);
    EXPECT_IN(r.err, "reinvite");
    run_result_free(&r);

    RUN_OK(&r, w->client, C_ENV, "reinvite", "Dr Rivera");
    EXPECT_IN(r.out, "re-key offer");
    run_result_free(&r);
    RUN_OK(&r, w->therapist, T_ENV, "fetch");
    EXPECT_IN(r.out, "Sam: your conversation was re-keyed");
    run_result_free(&r);
    RUN_OK(&r, w->client, C_ENV, "fetch");
    EXPECT_IN(r.out, "Dr Rivera: your conversation was re-keyed");
    run_result_free(&r);
    DO(w->client, C_ENV, "send", "Dr Rivera", "after the re-key");
    DO(w->therapist, T_ENV, "fetch");
    expect_text_in_thread(w->therapist, T_ENV, "Sam", "after the re-key");
    DO(w->therapist, T_ENV, "send", "Sam", "reply after the re-key");
    DO(w->client, C_ENV, "fetch");
    expect_text_in_thread(w->client, C_ENV, "Dr Rivera", "reply after the re-key");
    /* The safety number did not change (same identities). */
    json_t *a = JSON(w->client, C_ENV, "verify", "Dr Rivera");
    json_t *b = JSON(w->therapist, T_ENV, "verify", "Sam");
    assert_string_equal(json_string_value(json_object_get(a, "safety_number")),
                        json_string_value(json_object_get(b, "safety_number")));
    json_decref(a);
    json_decref(b);
    /* The therapist's side also re-keys on request (either side may). */
    RUN_OK(&r, w->therapist, T_ENV, "reinvite", "Sam");
    run_result_free(&r);
    RUN(&r, w->therapist, T_ENV, "send", "Sam", "too soon");
    assert_int_equal(r.code, 1);
    EXPECT_IN(r.err, "has not answered your re-key offer yet");
    run_result_free(&r);
    DO(w->client, C_ENV, "fetch");
    DO(w->therapist, T_ENV, "fetch");
    DO(w->therapist, T_ENV, "send", "Sam", "second session");
    DO(w->client, C_ENV, "fetch");
    expect_text_in_thread(w->client, C_ENV, "Dr Rivera", "second session");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_backup_wipe_restore_thread_intact_flows_both_ways_no_key_reuse, world_setup,
            world_teardown),
        cmocka_unit_test_setup_teardown(
            test_backup_restored_after_peer_moved_on_says_so_and_reinvite_repairs, world_setup,
            world_teardown),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
