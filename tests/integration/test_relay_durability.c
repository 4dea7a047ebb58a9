/* Durability: clients send continuously while the relay is killed with
 * SIGKILL at random moments and restarted on the same data directory.
 * Every Send that got an OK reply must be fetched afterwards.
 *
 * ALCOVE_DURABILITY_ROUNDS overrides the number of kills (default 8). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "relayproc.h"
#include "wire.h"

#define NMBOX 4
#define NSENDERS 4
#define BLOB_LEN 300
#define MAX_ACKED 200000

typedef struct acked {
    uint32_t mbox, sender, round, counter;
} acked;

/* Child: send to mailbox (sender % NMBOX) until the relay dies; append one
 * fixed-size record per OK reply to fd (written before the next send). */
static void sender_main(const alcove_relay_addr *addr, const test_mbox *mb, uint32_t mi,
                        uint32_t sender, uint32_t round, int fd)
{
    alcove_link *l = NULL;
    Alcove__Wire__HelloResult hr;
    if (alcove_link_connect(&l, addr, 5000, &hr) != 0)
        _exit(0);
    uint8_t blob[BLOB_LEN];
    for (uint32_t counter = 0; counter < 1000000; counter++) {
        acked a = {mi, sender, round, counter};
        memset(blob, (int)(counter & 0xff), sizeof blob);
        memcpy(blob, &a, sizeof a);
        int st = tw_send(l, mb->send_id, mb->secret, blob, sizeof blob);
        if (st != ALCOVE__WIRE__STATUS__OK)
            break;
        if (write(fd, &a, sizeof a) != (ssize_t)sizeof a)
            break;
    }
    alcove_link_free(l);
    _exit(0);
}

static int cmp_acked(const void *x, const void *y)
{
    return memcmp(x, y, sizeof(acked));
}

static void test_sigkill_loses_no_acked_send(void **state)
{
    (void)state;
    char tmp[256], path[300];
    relayproc rp;
    test_mbox mbs[NMBOX];
    int rounds = 8;
    const char *env = getenv("ALCOVE_DURABILITY_ROUNDS");
    if (env != NULL && atoi(env) > 0)
        rounds = atoi(env);

    test_mkdtemp(tmp, sizeof tmp);
    relayproc_init_dir(&rp, tmp);
    assert_int_equal(relayproc_start(&rp, NULL), 0);
    alcove_link *owner = tw_connect(&rp.addr);
    for (int i = 0; i < NMBOX; i++)
        assert_int_equal(tw_create(owner, &mbs[i]), ALCOVE__WIRE__STATUS__OK);
    alcove_link_free(owner);

    snprintf(path, sizeof path, "%s/acked.bin", tmp);
    /* O_APPEND: the senders share this file; each record lands whole. */
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0600);
    assert_true(fd >= 0);
    srand((unsigned)test_now_ms());
    uint64_t attempts_rounds = 0;

    for (int r = 0; r < rounds; r++) {
        if (r > 0)
            assert_int_equal(relayproc_start(&rp, NULL), 0);
        pid_t kids[NSENDERS];
        for (int s = 0; s < NSENDERS; s++) {
            kids[s] = fork();
            assert_true(kids[s] >= 0);
            if (kids[s] == 0)
                sender_main(&rp.addr, &mbs[s % NMBOX], (uint32_t)(s % NMBOX), (uint32_t)s,
                            (uint32_t)r, fd);
        }
        /* A random moment: 50-400 ms into the load. */
        test_sleep_ms(50 + (unsigned)(rand() % 350));
        relayproc_stop(&rp, SIGKILL, 5000);
        for (int s = 0; s < NSENDERS; s++) {
            int st;
            /* Senders notice the dead socket at once; bound the wait. */
            uint64_t deadline = test_now_ms() + 15000;
            while (waitpid(kids[s], &st, WNOHANG) == 0 && test_now_ms() < deadline)
                test_sleep_ms(5);
            if (waitpid(kids[s], &st, WNOHANG) == 0) {
                kill(kids[s], SIGKILL);
                waitpid(kids[s], &st, 0);
            }
        }
        attempts_rounds++;
    }

    /* Everything acked must be there. */
    long end = lseek(fd, 0, SEEK_END);
    assert_true(end >= 0);
    size_t nacked = (size_t)end / sizeof(acked);
    assert_true(nacked > 0); /* the load was real */
    acked *want = malloc(nacked * sizeof *want);
    assert_non_null(want);
    assert_int_equal(pread(fd, want, nacked * sizeof *want, 0), (ssize_t)(nacked * sizeof *want));
    close(fd);

    assert_int_equal(relayproc_start(&rp, NULL), 0);
    alcove_link *l = tw_connect(&rp.addr);
    acked *found = malloc(MAX_ACKED * sizeof *found);
    assert_non_null(found);
    size_t nfound = 0;
    for (int i = 0; i < NMBOX; i++) {
        assert_int_equal(tw_login(l, &mbs[i]), ALCOVE__WIRE__STATUS__OK);
        uint64_t after = 0;
        for (;;) {
            Alcove__Wire__RelayMessage *m = NULL;
            assert_int_equal(tw_fetch(l, mbs[i].recv_id, after, 0, &m), ALCOVE__WIRE__STATUS__OK);
            Alcove__Wire__FetchResult *fr = m->reply->fetch;
            for (size_t k = 0; k < fr->n_messages; k++) {
                assert_int_equal(fr->messages[k]->blob.len, BLOB_LEN);
                assert_true(fr->messages[k]->seq > after);
                after = fr->messages[k]->seq;
                assert_true(nfound < MAX_ACKED);
                memcpy(&found[nfound++], fr->messages[k]->blob.data, sizeof(acked));
            }
            int more = fr->more;
            alcove__wire__relay_message__free_unpacked(m, NULL);
            if (!more)
                break;
        }
    }
    alcove_link_free(l);
    int st = relayproc_stop(&rp, SIGTERM, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    qsort(found, nfound, sizeof *found, cmp_acked);
    size_t lost = 0;
    for (size_t i = 0; i < nacked; i++)
        if (bsearch(&want[i], found, nfound, sizeof *found, cmp_acked) == NULL)
            lost++;
    printf("durability: kills=%llu acked=%zu found=%zu (stored, including unacked in-flight)"
           " lost=%zu\n",
           (unsigned long long)attempts_rounds, nacked, nfound, lost);
    assert_int_equal(lost, 0);
    assert_true(nfound >= nacked);
    free(want);
    free(found);
    test_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_loses_no_acked_send),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
