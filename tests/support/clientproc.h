/* Test support: run the real `alcove` binary ($ALCOVE_BIN) as a separate
 * process with its own home, capture what it prints, and bound its time. */
#ifndef ALCOVE_TEST_CLIENTPROC_H
#define ALCOVE_TEST_CLIENTPROC_H

#include <stddef.h>
#include <sys/types.h>

typedef struct run_result {
    int exited;   /* 1 if it exited normally */
    int code;     /* exit code, or the signal number if !exited */
    char *out;    /* stdout, NUL-terminated */
    char *err;    /* stderr, NUL-terminated */
} run_result;

/* Run `alcove --home HOME args...` (args NULL-terminated) with optional
 * standard input text (NULL: /dev/null) and extra environment entries
 * ("NAME=value", NULL-terminated, may be NULL).  Waits up to 60 s (then
 * kills it and fails the test).  Always returns with r filled. */
void alcove_run(run_result *r, const char *home, const char *input, const char *const *env,
                const char *const *args);
void run_result_free(run_result *r);

/* Start `alcove --home HOME args...` in the background with stdout and
 * stderr appended to out_path.  Returns the pid. */
pid_t alcove_spawn(const char *home, const char *out_path, const char *const *env,
                   const char *const *args);

/* In cmocka tests (include <cmocka.h> first): run `alcove` with the given
 * arguments; RUN_OK also asserts it exited 0, printing its output if not. */
#define RUN(r, home, env, ...)                                             \
    do {                                                                   \
        const char *const args_[] = {__VA_ARGS__, NULL};                   \
        alcove_run((r), (home), NULL, (env), args_);                       \
    } while (0)

#define RUN_OK(r, home, env, ...)                                          \
    do {                                                                   \
        RUN(r, home, env, __VA_ARGS__);                                    \
        if (!(r)->exited || (r)->code != 0)                                \
            fprintf(stderr, "stdout: %s\nstderr: %s\n", (r)->out, (r)->err); \
        assert_true((r)->exited);                                          \
        assert_int_equal((r)->code, 0);                                    \
    } while (0)

/* Poll a file until it contains needle (or timeout_ms passes). */
int test_wait_for_text(const char *path, const char *needle, int timeout_ms);

#endif
