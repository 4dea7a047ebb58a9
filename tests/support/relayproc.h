/* Test support: start and stop a real alcove-relay process on an ephemeral
 * loopback port with its own data directory, and small helpers for temp
 * directories and deadlines.  Never sleeps-and-hopes: every wait polls with a
 * deadline. */
#ifndef ALCOVE_TEST_RELAYPROC_H
#define ALCOVE_TEST_RELAYPROC_H

#include <stdint.h>
#include <sys/types.h>

#include "address.h"

typedef struct relayproc {
    pid_t pid;
    char dir[256];      /* data directory */
    char logpath[300];  /* relay stderr */
    char addr_str[ALCOVE_ADDR_STR_MAX + 8];
    alcove_relay_addr addr;
} relayproc;

/* Make a fresh directory under $TMPDIR (or /tmp) named alcove-test-XXXXXX.
 * Aborts the test on failure. */
void test_mkdtemp(char *out, size_t cap);
/* rm -rf a directory made by test_mkdtemp. */
void test_rmtree(const char *dir);

/* Milliseconds on a monotonic clock. */
uint64_t test_now_ms(void);

/* Path of the alcove-relay binary ($ALCOVE_RELAY_BIN). */
const char *test_relay_bin(void);

/* Initialise a relay data directory in `dir` (alcove-relay init). */
void relayproc_init_dir(relayproc *rp, const char *dir);

/* Start `alcove-relay run --data rp->dir --listen 127.0.0.1:0 extra...`
 * (extra is NULL-terminated, may be NULL); appends stderr to rp->logpath;
 * waits (up to 10 s) for the address line.  Returns 0 or -1. */
int relayproc_start(relayproc *rp, const char *const *extra);

/* Send `sig` and wait up to timeout_ms for exit.  Returns the exit status
 * as from waitpid (use WIFEXITED etc.), or -1 on timeout (then SIGKILLs). */
int relayproc_stop(relayproc *rp, int sig, int timeout_ms);

/* Sleep for ms milliseconds (between polls that have their own deadline). */
void test_sleep_ms(unsigned ms);

/* Wait until the peer closes socket fd (read returns 0 or an error),
 * discarding anything it sends.  Returns 1 if closed within timeout_ms. */
int test_wait_closed(int fd, int timeout_ms);

/* A cmocka fixture: a fresh relay in its own temp directory.  Use
 * relay_fixture_start(state, extra) in a setup function (extra: flags for
 * `run`, NULL-terminated, or NULL) and relay_fixture_teardown as the
 * teardown: it stops the relay with SIGTERM (which must exit 0) and removes
 * the directory. */
typedef struct relay_fixture {
    char tmp[256];
    relayproc rp;
} relay_fixture;
int relay_fixture_start(void **state, const char *const *extra);
int relay_fixture_teardown(void **state);

/* Resident set size of a process in KiB (from /proc), or -1. */
long test_rss_kib(pid_t pid);

/* Read a whole file into a malloc'd NUL-terminated buffer; NULL if absent. */
char *test_read_file(const char *path, size_t *len);

#endif
