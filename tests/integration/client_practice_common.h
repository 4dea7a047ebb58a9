/* Shared by test_client_practice.c and test_client_restore.c: a relay, a
 * therapist and a client in separate homes, driven as real processes. */
#ifndef ALCOVE_TEST_CLIENT_PRACTICE_COMMON_H
#define ALCOVE_TEST_CLIENT_PRACTICE_COMMON_H

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
    char therapist[300], client[300];
} world;

/* The therapist has no passphrase; the client has one.  Backups use the
 * real Argon2id cost (there is no way to lower it). */
static const char *const T_ENV[] = {"ALCOVE_BACKUP_PASSPHRASE=backup secret",
                                    NULL};
static const char *const C_ENV[] = {"ALCOVE_PASSPHRASE=correct horse battery staple",
                                    "ALCOVE_BACKUP_PASSPHRASE=backup secret",
                                    NULL};

#define RUN_IN(r, home, env, input, ...)                                   \
    do {                                                                   \
        const char *const args_[] = {__VA_ARGS__, NULL};                   \
        alcove_run((r), (home), (input), (env), args_);                    \
    } while (0)
/* RUN and RUN_OK come from clientproc.h. */
#define EXPECT_OK(r)                                                       \
    do {                                                                   \
        if (!(r)->exited || (r)->code != 0)                                \
            fprintf(stderr, "stdout: %s\nstderr: %s\n", (r)->out, (r)->err); \
        assert_true((r)->exited);                                          \
        assert_int_equal((r)->code, 0);                                    \
    } while (0)

/* Run, expect success, forget the output. */
#define DO(home, env, ...)                                                 \
    do {                                                                   \
        run_result r_;                                                     \
        RUN_OK(&r_, home, env, __VA_ARGS__);                               \
        run_result_free(&r_);                                              \
    } while (0)

#define EXPECT_IN(hay, needle)                                             \
    do {                                                                   \
        if (strstr((hay), (needle)) == NULL)                               \
            fprintf(stderr, "expected '%s' in:\n%s\n", (needle), (hay));   \
        assert_non_null(strstr((hay), (needle)));                          \
    } while (0)

static int world_setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    test_mkdtemp(w->tmp, sizeof w->tmp);
    relayproc_init_dir(&w->rp, w->tmp);
    assert_int_equal(relayproc_start(&w->rp, NULL), 0);
    snprintf(w->therapist, sizeof w->therapist, "%s/therapist", w->tmp);
    snprintf(w->client, sizeof w->client, "%s/client", w->tmp);
    DO(w->therapist, T_ENV, "init", "--relay", w->rp.addr_str, "--name", "Dr. Rivera",
       "--no-passphrase");
    DO(w->client, C_ENV, "init", "--relay", w->rp.addr_str, "--name", "Sam");
    *state = w;
    return 0;
}

static int world_teardown(void **state)
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

static json_t *parse_json(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (j == NULL)
        fprintf(stderr, "bad JSON (%s):\n%s\n", jerr.text, text);
    assert_non_null(j);
    return j;
}

/* Run with --json, expect success, return the parsed output. */
static json_t *run_json(const char *home, const char *const *env, const char *const *args)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = "--json";
    for (int i = 0; args[i] != NULL && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    run_result r;
    alcove_run(&r, home, NULL, env, argv);
    EXPECT_OK(&r);
    json_t *j = parse_json(r.out);
    run_result_free(&r);
    return j;
}
#define JSON(home, env, ...) run_json(home, env, (const char *const[]){__VA_ARGS__, NULL})

/* Invite Sam, accept, fetch the intro.  The therapist's notice rides on the
 * invite. */
static void connect_sam(world *w, const char *notice)
{
    json_t *j = JSON(w->therapist, T_ENV, "invite", "--name", "Sam", "--notice", notice);
    const char *code = json_string_value(json_object_get(j, "code"));
    assert_non_null(code);
    run_result r;
    RUN_OK(&r, w->client, C_ENV, "accept", code, "--name", "Dr Rivera");
    EXPECT_IN(r.out, notice);
    run_result_free(&r);
    json_decref(j);
    DO(w->therapist, T_ENV, "fetch");
}

__attribute__((unused)) static json_int_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        fprintf(stderr, "'%s' is not an integer\n", key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

#endif
