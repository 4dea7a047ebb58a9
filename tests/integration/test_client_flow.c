/* The whole alcove flow with real processes: one relay on loopback, a
 * therapist and clients in separate homes, driven through the CLI exactly
 * as people would use it. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "clientproc.h"
#include "relayproc.h"

typedef struct world {
    char tmp[256];
    relayproc rp;
    char therapist[300], client[300], client2[300];
} world;

static const char *const PASS_ENV[] = {"ALCOVE_PASSPHRASE=correct horse battery staple", NULL};

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
    RUN_OK(&r, w->client2, NULL, "init", "--relay", w->rp.addr_str, "--name", "Alex",
           "--no-passphrase");
    run_result_free(&r);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    if (w->rp.pid > 0) {
        int st = relayproc_stop(&w->rp, SIGTERM, 10000);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    test_rmtree(w->tmp);
    free(w);
    return 0;
}

/* invite --json -> the code (malloc'd). */
static char *make_invite(world *w, const char *label, const char *notice)
{
    run_result r;
    RUN_OK(&r, w->therapist, NULL, "--json", "invite", "--name", label, "--notice", notice);
    json_error_t jerr;
    json_t *j = json_loads(r.out, 0, &jerr);
    assert_non_null(j);
    const char *code = json_string_value(json_object_get(j, "code"));
    assert_non_null(code);
    assert_true(strncmp(code, "alcove:", 7) == 0);
    char *copy = strdup(code);
    json_decref(j);
    run_result_free(&r);
    return copy;
}

/* Connect client home `home` (env) to the therapist as `label`. */
static void connect_client(world *w, const char *home, const char *const *env, const char *label,
                           const char *therapist_label)
{
    char *code = make_invite(w, label, "Office hours Mon-Thu. In a crisis call 988.");
    run_result r;
    RUN_OK(&r, home, env, "accept", code, "--name", therapist_label);
    assert_non_null(strstr(r.out, "In a crisis call 988."));
    assert_non_null(strstr(r.out, "Dr. Rivera"));
    run_result_free(&r);
    RUN_OK(&r, w->therapist, NULL, "fetch");
    assert_non_null(strstr(r.out, label));
    run_result_free(&r);
    free(code);
}

/* `read CONTACT --all --json` as parsed JSON (array). */
static json_t *read_json(const char *home, const char *const *env, const char *contact)
{
    run_result r;
    RUN_OK(&r, home, env, "--json", "read", contact, "--all");
    json_error_t jerr;
    json_t *j = json_loads(r.out, 0, &jerr);
    if (j == NULL)
        fprintf(stderr, "bad JSON from read: %s\n%s\n", jerr.text, r.out);
    assert_non_null(j);
    assert_true(json_is_array(j));
    run_result_free(&r);
    return j;
}

static size_t count_kind(json_t *arr, const char *kind, const char *direction)
{
    size_t n = 0, i;
    json_t *m;
    json_array_foreach(arr, i, m) {
        const char *k = json_string_value(json_object_get(m, "kind"));
        const char *d = json_string_value(json_object_get(m, "direction"));
        if (k && d && strcmp(k, kind) == 0 && strcmp(d, direction) == 0)
            n++;
    }
    return n;
}

static void test_full_flow_checkin_and_reply(void **state)
{
    world *w = *state;
    run_result r;
    connect_client(w, w->client, PASS_ENV, "Sam", "Dr Rivera");

    RUN_OK(&r, w->client, PASS_ENV, "checkin", "Dr Rivera", "--mood", "6", "--anxiety", "4",
           "--sleep", "7.5", "--note", "slept badly before the exam", "--tag", "work", "--tag",
           "exam");
    run_result_free(&r);
    RUN_OK(&r, w->therapist, NULL, "fetch");
    assert_non_null(strstr(r.out, "1 new message"));
    run_result_free(&r);

    /* Check-in values round-trip exactly. */
    json_t *msgs = read_json(w->therapist, NULL, "Sam");
    assert_int_equal(count_kind(msgs, "checkin", "in"), 1);
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *k = json_string_value(json_object_get(m, "kind"));
        if (k == NULL || strcmp(k, "checkin") != 0)
            continue;
        assert_int_equal(json_integer_value(json_object_get(m, "mood")), 6);
        assert_int_equal(json_integer_value(json_object_get(m, "anxiety")), 4);
        assert_true(json_real_value(json_object_get(m, "sleep_hours")) == 7.5);
        assert_string_equal(json_string_value(json_object_get(m, "note")),
                            "slept badly before the exam");
        json_t *tags = json_object_get(m, "tags");
        assert_int_equal(json_array_size(tags), 2);
        assert_string_equal(json_string_value(json_array_get(tags, 0)), "work");
        assert_string_equal(json_string_value(json_array_get(tags, 1)), "exam");
    }
    json_decref(msgs);

    RUN_OK(&r, w->therapist, NULL, "--json", "send", "Sam",
           "Thanks Sam. Let's talk about the exam on Tuesday.");
    {
        json_error_t jerr;
        json_t *sent = json_loads(r.out, 0, &jerr);
        assert_non_null(sent);
        assert_string_equal(json_string_value(json_object_get(sent, "status")), "sent");
        assert_string_equal(json_string_value(json_object_get(sent, "contact")), "Sam");
        assert_int_equal(strlen(json_string_value(json_object_get(sent, "msg_id"))), 32);
        json_decref(sent);
    }
    run_result_free(&r);
    RUN_OK(&r, w->client, PASS_ENV, "fetch");
    run_result_free(&r);
    RUN_OK(&r, w->client, PASS_ENV, "read", "Dr Rivera");
    assert_non_null(strstr(r.out, "Let's talk about the exam on Tuesday."));
    run_result_free(&r);
    /* Read marks read: nothing unread the second time. */
    RUN_OK(&r, w->client, PASS_ENV, "read", "Dr Rivera");
    assert_null(strstr(r.out, "Let's talk about the exam on Tuesday."));
    run_result_free(&r);
    /* Both sides see the same safety number. */
    run_result r2;
    RUN_OK(&r, w->client, PASS_ENV, "--json", "verify", "Dr Rivera");
    RUN_OK(&r2, w->therapist, NULL, "--json", "verify", "Sam");
    json_error_t jerr;
    json_t *a = json_loads(r.out, 0, &jerr), *b = json_loads(r2.out, 0, &jerr);
    assert_non_null(a);
    assert_non_null(b);
    const char *sa = json_string_value(json_object_get(a, "safety_number"));
    const char *sb = json_string_value(json_object_get(b, "safety_number"));
    assert_non_null(sa);
    assert_non_null(sb);
    assert_string_equal(sa, sb);
    json_decref(a);
    json_decref(b);
    run_result_free(&r);
    run_result_free(&r2);
}

static void test_two_clients_two_separate_threads(void **state)
{
    world *w = *state;
    run_result r;
    connect_client(w, w->client, PASS_ENV, "Sam", "Dr Rivera");
    connect_client(w, w->client2, NULL, "Alex", "Dr Rivera");
    RUN_OK(&r, w->client, PASS_ENV, "send", "Dr Rivera", "message from sam");
    run_result_free(&r);
    RUN_OK(&r, w->client2, NULL, "send", "Dr Rivera", "message from alex");
    run_result_free(&r);
    RUN_OK(&r, w->therapist, NULL, "fetch");
    run_result_free(&r);
    RUN_OK(&r, w->therapist, NULL, "--json", "contacts");
    json_error_t jerr;
    json_t *cs = json_loads(r.out, 0, &jerr);
    assert_non_null(cs);
    assert_int_equal(json_array_size(cs), 2);
    json_decref(cs);
    run_result_free(&r);
    json_t *sam = read_json(w->therapist, NULL, "Sam");
    json_t *alex = read_json(w->therapist, NULL, "Alex");
    assert_int_equal(count_kind(sam, "text", "in"), 1);
    assert_int_equal(count_kind(alex, "text", "in"), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(sam, json_array_size(sam) - 1), "text")),
                        "message from sam");
    assert_string_equal(json_string_value(json_object_get(json_array_get(alex, json_array_size(alex) - 1), "text")),
                        "message from alex");
    json_decref(sam);
    json_decref(alex);
}

static void test_listen_receives_message_sent_while_running(void **state)
{
    world *w = *state;
    connect_client(w, w->client, PASS_ENV, "Sam", "Dr Rivera");
    char out[320];
    snprintf(out, sizeof out, "%s/listen.out", w->tmp);
    const char *const args[] = {"listen", NULL};
    pid_t pid = alcove_spawn(w->client, out, PASS_ENV, args);
    assert_true(test_wait_for_text(out, "Listening", 20000));
    run_result r;
    RUN_OK(&r, w->therapist, NULL, "send", "Sam", "are you free on Thursday?");
    run_result_free(&r);
    int got = test_wait_for_text(out, "are you free on Thursday?", 20000);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    assert_true(got);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_forget_revokes_sending(void **state)
{
    world *w = *state;
    run_result r;
    connect_client(w, w->client, PASS_ENV, "Sam", "Dr Rivera");
    RUN_OK(&r, w->client, PASS_ENV, "send", "Dr Rivera", "before");
    run_result_free(&r);
    RUN_OK(&r, w->therapist, NULL, "forget", "Sam");
    run_result_free(&r);
    RUN(&r, w->client, PASS_ENV, "send", "Dr Rivera", "after the therapist forgot me");
    assert_true(r.exited);
    assert_int_not_equal(r.code, 0);
    assert_non_null(strstr(r.err, "alcove: error:"));
    run_result_free(&r);
    RUN(&r, w->therapist, NULL, "read", "Sam");
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "no contact named"));
    run_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_flow_checkin_and_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_clients_two_separate_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_receives_message_sent_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forget_revokes_sending, setup, teardown),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
