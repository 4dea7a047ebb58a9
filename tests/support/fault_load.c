#include "fault_load.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "relayproc.h"

#define LINK_MS 5000
#define MAX_WINDOW 64

typedef struct consumed {
    uint32_t mbox, pad;
    uint64_t seq;
    fault_msg_id id;
} consumed;

typedef struct acked_ack {
    uint32_t mbox, round;
    uint64_t up_to;
} acked_ack;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void put_rec(int fd, const void *p, size_t n)
{
    if (write(fd, p, n) != (ssize_t)n)
        _exit(3);
}

static int open_file(const char *dir, const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    assert_true(fd >= 0);
    return fd;
}

void fault_load_init(fault_load *fl, const char *dir, const alcove_relay_addr *addr, int nmbox)
{
    memset(fl, 0, sizeof *fl);
    assert_true(nmbox > 0 && nmbox <= FAULT_LOAD_MAX_MBOX);
    snprintf(fl->dir, sizeof fl->dir, "%s", dir);
    fl->nmbox = nmbox;
    fl->nsenders = 4;
    fl->window = 8;
    fl->blob_len = 300;
    fl->owner = 1;
    fl->deleter = 1;
    alcove_link *l = tw_connect(addr);
    for (int i = 0; i < nmbox; i++)
        assert_int_equal(tw_create(l, &fl->mbs[i]), ALCOVE__WIRE__STATUS__OK);
    alcove_link_free(l);
    fl->fd_sent = open_file(dir, "sent.bin");
    fl->fd_cons = open_file(dir, "consumed.bin");
    fl->fd_ack = open_file(dir, "acked.bin");
    fl->fd_del = open_file(dir, "deleted.bin");
    fl->fd_timing = open_file(dir, "timing.bin");
}

static int open_link(const alcove_relay_addr *a, alcove_link **l)
{
    Alcove__Wire__HelloResult hr;
    return alcove_link_connect(l, a, LINK_MS, &hr);
}

static void sender_main(const fault_load *fl, const alcove_relay_addr *addr, uint32_t sender,
                        uint32_t round)
{
    alcove_link *l = NULL;
    if (open_link(addr, &l) != 0)
        _exit(0);
    struct {
        uint64_t id, t;
        fault_msg_id m;
    } slot[MAX_WINDOW];
    int used = 0, window = fl->window < MAX_WINDOW ? fl->window : MAX_WINDOW;
    uint8_t *blob = malloc((size_t)fl->blob_len);
    if (blob == NULL)
        _exit(0);
    uint32_t counter = 0;
    for (int iter = 0; iter < 4000000; iter++) {
        while (used < window) {
            fault_msg_id m = {(counter + sender) % (uint32_t)fl->nmbox, sender, round, counter};
            counter++;
            memset(blob, (int)(counter & 0xff), (size_t)fl->blob_len);
            memcpy(blob, &m, sizeof m);
            Alcove__Wire__Send s = ALCOVE__WIRE__SEND__INIT;
            s.send_id.data = (uint8_t *)(uintptr_t)fl->mbs[m.mbox].send_id;
            s.send_id.len = 16;
            s.send_secret.data = (uint8_t *)(uintptr_t)fl->mbs[m.mbox].secret;
            s.send_secret.len = 32;
            s.blob.data = blob;
            s.blob.len = (size_t)fl->blob_len;
            Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
            req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_SEND;
            req.send = &s;
            uint64_t t = now_us();
            if (alcove_link_send(l, &req, 0, LINK_MS) != 0)
                goto done;
            slot[used].id = req.id;
            slot[used].t = t;
            slot[used].m = m;
            used++;
        }
        Alcove__Wire__RelayMessage *r = NULL;
        if (alcove_link_recv(l, &r, LINK_MS) != 0)
            goto done;
        if (r->kind_case == ALCOVE__WIRE__RELAY_MESSAGE__KIND_REPLY) {
            for (int i = 0; i < used; i++) {
                if (slot[i].id != r->reply->id)
                    continue;
                fault_timing tm = {slot[i].t, now_us(), (int32_t)r->reply->status, sender, slot[i].m};
                if (r->reply->status == ALCOVE__WIRE__STATUS__OK)
                    put_rec(fl->fd_sent, &slot[i].m, sizeof slot[i].m);
                put_rec(fl->fd_timing, &tm, sizeof tm);
                slot[i] = slot[--used];
                break;
            }
        }
        alcove__wire__relay_message__free_unpacked(r, NULL);
        if (fl->pause_ms > 0)
            test_sleep_ms((unsigned)fl->pause_ms);
    }
done:
    free(blob);
    alcove_link_free(l);
    _exit(0);
}

static void owner_main(const fault_load *fl, const alcove_relay_addr *addr, uint32_t round)
{
    alcove_link *l = NULL;
    if (open_link(addr, &l) != 0)
        _exit(0);
    for (int i = 0; i < fl->nmbox; i++)
        if (tw_login(l, &fl->mbs[i]) != ALCOVE__WIRE__STATUS__OK)
            goto done;
    for (int iter = 0; iter < 1000000; iter++) {
        uint32_t mi = (uint32_t)iter % (uint32_t)fl->nmbox;
        Alcove__Wire__RelayMessage *m = NULL;
        if (tw_fetch(l, fl->mbs[mi].recv_id, 0, 64, &m) != ALCOVE__WIRE__STATUS__OK)
            goto done;
        Alcove__Wire__FetchResult *fr = m->reply->fetch;
        if (fr->n_messages > 0) {
            size_t k = randombytes_uniform((uint32_t)fr->n_messages);
            uint64_t up_to = fr->messages[k]->seq;
            for (size_t j = 0; j <= k; j++) {
                consumed c = {mi, 0, fr->messages[j]->seq, {0, 0, 0, 0}};
                if (fr->messages[j]->blob.len >= sizeof c.id)
                    memcpy(&c.id, fr->messages[j]->blob.data, sizeof c.id);
                put_rec(fl->fd_cons, &c, sizeof c);
            }
            alcove__wire__relay_message__free_unpacked(m, NULL);
            if (tw_ack(l, fl->mbs[mi].recv_id, up_to) == ALCOVE__WIRE__STATUS__OK) {
                acked_ack a = {mi, round, up_to};
                put_rec(fl->fd_ack, &a, sizeof a);
            }
        } else {
            alcove__wire__relay_message__free_unpacked(m, NULL);
        }
        test_sleep_ms(2);
    }
done:
    alcove_link_free(l);
    _exit(0);
}

static void deleter_main(const fault_load *fl, const alcove_relay_addr *addr)
{
    alcove_link *l = NULL;
    if (open_link(addr, &l) != 0)
        _exit(0);
    uint8_t blob[64] = {1};
    for (int iter = 0; iter < 1000000; iter++) {
        test_mbox mb;
        int st = tw_create(l, &mb);
        if (st < 0)
            break;
        if (st != ALCOVE__WIRE__STATUS__OK) {
            test_sleep_ms(20);
            continue;
        }
        st = tw_send(l, mb.send_id, mb.secret, blob, sizeof blob);
        if (st < 0)
            break;
        /* A refused Send (storage fault) still leaves a mailbox to delete. */
        st = tw_delete(l, mb.recv_id);
        if (st < 0)
            break;
        if (st == ALCOVE__WIRE__STATUS__OK)
            put_rec(fl->fd_del, &mb, sizeof mb);
        test_sleep_ms(3);
    }
    alcove_link_free(l);
    _exit(0);
}

void fault_load_start(fault_load *fl, const alcove_relay_addr *addr, uint32_t round)
{
    fl->nkids = 0;
    for (int s = 0; s < fl->nsenders && fl->nkids < FAULT_LOAD_MAX_KIDS - 2; s++) {
        pid_t p = fork();
        assert_true(p >= 0);
        if (p == 0)
            sender_main(fl, addr, (uint32_t)s, round);
        fl->kids[fl->nkids++] = p;
    }
    if (fl->owner) {
        pid_t p = fork();
        assert_true(p >= 0);
        if (p == 0)
            owner_main(fl, addr, round);
        fl->kids[fl->nkids++] = p;
    }
    if (fl->deleter) {
        pid_t p = fork();
        assert_true(p >= 0);
        if (p == 0)
            deleter_main(fl, addr);
        fl->kids[fl->nkids++] = p;
    }
}

void fault_load_wait(fault_load *fl, int timeout_ms)
{
    uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
    for (int i = 0; i < fl->nkids; i++) {
        int st;
        while (waitpid(fl->kids[i], &st, WNOHANG) == 0 && test_now_ms() < deadline)
            test_sleep_ms(5);
        if (waitpid(fl->kids[i], &st, WNOHANG) == 0) {
            kill(fl->kids[i], SIGKILL);
            waitpid(fl->kids[i], &st, 0);
        }
    }
    fl->nkids = 0;
}

void fault_load_stop(fault_load *fl)
{
    for (int i = 0; i < fl->nkids; i++)
        kill(fl->kids[i], SIGTERM);
    fault_load_wait(fl, 5000);
}

static void *slurp(const char *dir, const char *name, size_t rec, size_t *n)
{
    char path[400];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *p = test_read_file(path, &len);
    assert_non_null(p);
    *n = len / rec;
    return p;
}

fault_timing *fault_load_timings(fault_load *fl, size_t *n)
{
    return slurp(fl->dir, "timing.bin", sizeof(fault_timing), n);
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(fault_msg_id));
}

static int cmp_mbox_seq(const void *a, const void *b)
{
    const consumed *x = a, *y = b;
    if (x->mbox != y->mbox)
        return x->mbox < y->mbox ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

typedef struct idseq {
    fault_msg_id id; /* first: sorted with cmp_id */
    uint64_t seq;
} idseq;

void fault_load_check(fault_load *fl, const alcove_relay_addr *addr, fault_load_report *rep)
{
    memset(rep, 0, sizeof *rep);
    alcove_link *l = tw_connect(addr);
    size_t nfound = 0, cap = 4096;
    consumed *found = malloc(cap * sizeof *found);
    assert_non_null(found);
    for (int i = 0; i < fl->nmbox; i++) {
        assert_int_equal(tw_login(l, &fl->mbs[i]), ALCOVE__WIRE__STATUS__OK);
        uint64_t after = 0;
        for (int guard = 0; guard < 1000000; guard++) {
            Alcove__Wire__RelayMessage *m = NULL;
            assert_int_equal(tw_fetch(l, fl->mbs[i].recv_id, after, 0, &m),
                             ALCOVE__WIRE__STATUS__OK);
            Alcove__Wire__FetchResult *fr = m->reply->fetch;
            for (size_t k = 0; k < fr->n_messages; k++) {
                assert_true(fr->messages[k]->seq > after);
                after = fr->messages[k]->seq;
                if (nfound == cap) {
                    cap *= 2;
                    found = realloc(found, cap * sizeof *found);
                    assert_non_null(found);
                }
                found[nfound] = (consumed){(uint32_t)i, 0, after, {0, 0, 0, 0}};
                if (fr->messages[k]->blob.len >= sizeof(fault_msg_id))
                    memcpy(&found[nfound].id, fr->messages[k]->blob.data, sizeof(fault_msg_id));
                nfound++;
            }
            int more = fr->more && fr->n_messages > 0;
            alcove__wire__relay_message__free_unpacked(m, NULL);
            if (!more)
                break;
        }
    }
    size_t nsent, ncons, nack, ndel;
    fault_msg_id *sent = slurp(fl->dir, "sent.bin", sizeof(fault_msg_id), &nsent);
    consumed *cons = slurp(fl->dir, "consumed.bin", sizeof(consumed), &ncons);
    acked_ack *acks = slurp(fl->dir, "acked.bin", sizeof(acked_ack), &nack);
    test_mbox *dels = slurp(fl->dir, "deleted.bin", sizeof(test_mbox), &ndel);

    size_t nall = ncons + nfound;
    consumed *all = malloc((nall ? nall : 1) * sizeof *all);
    idseq *v = malloc((nall ? nall : 1) * sizeof *v);
    assert_non_null(all);
    assert_non_null(v);
    memcpy(all, cons, ncons * sizeof *cons);
    memcpy(all + ncons, found, nfound * sizeof *found);
    for (size_t i = 0; i < nall; i++)
        v[i] = (idseq){all[i].id, all[i].seq};
    qsort(v, nall, sizeof *v, cmp_id);
    for (size_t i = 0; i < nsent; i++)
        if (bsearch(&sent[i], v, nall, sizeof *v, cmp_id) == NULL)
            rep->lost++;
    for (size_t i = 1; i < nall; i++)
        if (cmp_id(&v[i].id, &v[i - 1].id) == 0 && v[i].seq != v[i - 1].seq)
            rep->duplicates++;
    qsort(all, nall, sizeof *all, cmp_mbox_seq);
    for (size_t i = 1; i < nall; i++)
        if (all[i].mbox == all[i - 1].mbox && all[i].seq == all[i - 1].seq &&
            memcmp(&all[i].id, &all[i - 1].id, sizeof(fault_msg_id)) != 0)
            rep->conflicts++;

    uint64_t max_ack[FAULT_LOAD_MAX_MBOX] = {0};
    for (size_t i = 0; i < nack; i++)
        if (acks[i].mbox < FAULT_LOAD_MAX_MBOX && acks[i].up_to > max_ack[acks[i].mbox])
            max_ack[acks[i].mbox] = acks[i].up_to;
    for (size_t i = 0; i < nfound; i++)
        if (found[i].seq <= max_ack[found[i].mbox])
            rep->resurrected++;
    for (size_t i = 0; i < ndel; i++)
        if (tw_login(l, &dels[i]) == ALCOVE__WIRE__STATUS__OK)
            rep->deleted_back++;
    alcove_link_free(l);
    rep->sent = nsent;
    rep->acks = nack;
    rep->deletes = ndel;
    rep->stored = nfound;
    free(sent);
    free(cons);
    free(acks);
    free(dels);
    free(all);
    free(v);
    free(found);
}

void fault_load_close(fault_load *fl)
{
    close(fl->fd_sent);
    close(fl->fd_cons);
    close(fl->fd_ack);
    close(fl->fd_del);
    close(fl->fd_timing);
    fl->fd_sent = fl->fd_cons = fl->fd_ack = fl->fd_del = fl->fd_timing = -1;
}
