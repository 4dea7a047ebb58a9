#include "writer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"

struct relay_writer {
    uv_loop_t *loop;
    uv_async_t async;
    relay_store *st;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    relay_op *in_head, *in_tail; /* submitted, guarded by mu */
    relay_op *out_head, *out_tail; /* finished, guarded by mu */
    uint64_t inflight;           /* loop thread only */
    uint32_t max_ops;
    uint64_t max_bytes;
    int stop;
    int thread_started;
    relay_writer_done_cb cb;
    void *ctx;
    relay_writer_stats stats; /* guarded by mu */
};

relay_op *relay_op_new(relay_op_kind kind)
{
    relay_op *op = calloc(1, sizeof *op);
    if (op != NULL)
        op->kind = kind;
    return op;
}

void relay_op_free(relay_op *op)
{
    if (op == NULL)
        return;
    free(op->blob);
    free(op->gseqs);
    free(op);
}

static int apply(relay_store *st, const relay_op *op)
{
    int rc = 0;
    switch (op->kind) {
    case OP_CREATE:
    case OP_TOUCH:
        return relay_store_put_mbox(st, op->recv_id, &op->rec);
    case OP_SEND:
        return relay_store_append(st, op->gseq, op->recv_id, op->seq,
                                  op->received_at, op->blob, op->blob_len);
    case OP_TRIM:
    case OP_DELETE:
    case OP_PURGE:
        for (uint32_t i = 0; i < op->ngseqs && rc == 0; i++)
            rc = relay_store_del_log(st, op->gseqs[i]);
        if (rc != 0)
            return rc;
        if (op->kind == OP_TRIM)
            return relay_store_put_mbox(st, op->recv_id, &op->rec);
        if (op->kind == OP_DELETE)
            return relay_store_del_mbox(st, op->recv_id);
        return 0;
    }
    return ALCOVE_EINVAL;
}

/* Operations that add data; at the store's cap they are refused. */
static int adds_data(const relay_op *op)
{
    return op->kind == OP_SEND || op->kind == OP_CREATE || op->kind == OP_TOUCH;
}

/* One group commit.  Retries after growing the map.  At the configured
 * cap, the operations that add data are refused (ALCOVE_ELIMIT in their
 * own result) and the rest (acks, deletes, expiry) commit in the reserve,
 * so a full store can always be emptied.  Any other failure fails the
 * whole batch (the transaction is aborted: nothing of it is stored). */
static int commit_batch(relay_writer *w, relay_op *batch, int *grew)
{
    int reserve = 0;
    for (relay_op *op = batch; op != NULL; op = op->next) {
        if (adds_data(op)) {
            int rc = relay_store_fit_cap(w->st);
            if (rc != 0)
                return rc;
            break;
        }
    }
    for (;;) {
        int rc = relay_store_wbegin(w->st);
        for (relay_op *op = batch; op != NULL && rc == 0; op = op->next)
            if (op->result == 0)
                rc = apply(w->st, op);
        if (rc == 0) {
            /* Saving the free list at commit can itself need pages. */
            rc = relay_store_wcommit(w->st);
            if (rc != ALCOVE_ELIMIT)
                return rc;
        } else {
            relay_store_wabort(w->st);
        }
        if (rc != ALCOVE_ELIMIT)
            return rc;
        rc = relay_store_grow(w->st, reserve);
        if (rc == 0) {
            (*grew)++;
            continue;
        }
        if (rc != ALCOVE_ELIMIT || reserve)
            return rc;
        int frees = 0;
        for (relay_op *op = batch; op != NULL; op = op->next) {
            if (adds_data(op))
                op->result = ALCOVE_ELIMIT;
            else if (op->result == 0)
                frees = 1;
        }
        if (!frees)
            return ALCOVE_ELIMIT;
        reserve = 1;
    }
}

/* Hand a finished batch to the loop thread (called without the lock). */
static void deliver(relay_writer *w, relay_op *batch, int rc)
{
    relay_op *last = batch;
    for (relay_op *op = batch; op != NULL; op = op->next) {
        if (op->result == 0) /* keep per-op refusals (store at its cap) */
            op->result = rc;
        if (op->result != 0)
            op->store_rc = relay_store_last_rc(w->st);
        last = op;
    }
    pthread_mutex_lock(&w->mu);
    if (rc != 0)
        w->stats.failed_batches++;
    if (w->out_tail != NULL)
        w->out_tail->next = batch;
    else
        w->out_head = batch;
    w->out_tail = last;
    pthread_mutex_unlock(&w->mu);
    uv_async_send(&w->async);
}

/* The writer thread.  With MDB_NOMETASYNC a committed batch is held back
 * until it is durable: the next commit's data sync (one fsync for two
 * batches under load) or, when nothing else is queued, an explicit sync. */
static void *writer_main(void *arg)
{
    relay_writer *w = arg;
    relay_op *held = NULL; /* committed, meta page not yet synced */
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (w->in_head == NULL && held != NULL) {
            pthread_mutex_unlock(&w->mu);
            int rc = relay_store_sync(w->st);
            deliver(w, held, rc);
            held = NULL;
            pthread_mutex_lock(&w->mu);
            continue;
        }
        while (w->in_head == NULL && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->in_head == NULL && w->stop)
            break;
        /* Take a bounded prefix of the queue. */
        relay_op *batch = w->in_head, *last = batch;
        uint32_t n = 1;
        uint64_t bytes = batch->blob_len;
        while (last->next != NULL && n < w->max_ops &&
               bytes + last->next->blob_len <= w->max_bytes) {
            last = last->next;
            bytes += last->blob_len;
            n++;
        }
        w->in_head = last->next;
        if (w->in_head == NULL)
            w->in_tail = NULL;
        last->next = NULL;
        w->stats.commits++;
        w->stats.ops += n;
        pthread_mutex_unlock(&w->mu);

        int grew = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = commit_batch(w, batch, &grew);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (held != NULL) {
            /* This commit's data sync flushed the held batch's meta page.
             * If the commit failed for want of space, no sync was tried:
             * sync explicitly.  After an I/O failure never trust a later
             * sync (Linux may drop the dirty pages and report the next
             * fsync clean): the held batch is answered as failed.  Its
             * meta page may then be lost for good; the store keeps the
             * older durable snapshot intact until a newer meta page is
             * known durable (relay_store_wcommit, store.c). */
            int hrc = rc == 0 ? 0 : rc == ALCOVE_ELIMIT ? relay_store_sync(w->st) : rc;
            deliver(w, held, hrc);
            held = NULL;
        }
        if (rc == 0)
            held = batch;
        else
            deliver(w, batch, rc);
        pthread_mutex_lock(&w->mu);
        w->stats.map_grows += (uint64_t)grew;
        relay_hist_add(&w->stats.batch_ops, n);
        relay_hist_add(&w->stats.commit_us, (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 +
                                                       (t1.tv_nsec - t0.tv_nsec) / 1000));
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void on_async(uv_async_t *h)
{
    relay_writer *w = h->data;
    pthread_mutex_lock(&w->mu);
    relay_op *done = w->out_head;
    w->out_head = w->out_tail = NULL;
    pthread_mutex_unlock(&w->mu);
    if (done == NULL)
        return;
    for (relay_op *op = done; op != NULL; op = op->next)
        w->inflight--;
    w->cb(w->ctx, done);
}

int relay_writer_start(relay_writer **out, uv_loop_t *loop, relay_store *st,
                       uint32_t max_batch_ops, uint64_t max_batch_bytes,
                       relay_writer_done_cb cb, void *ctx)
{
    relay_writer *w = calloc(1, sizeof *w);
    if (w == NULL)
        return ALCOVE_ENOMEM;
    w->loop = loop;
    w->st = st;
    w->max_ops = max_batch_ops ? max_batch_ops : 1;
    w->max_bytes = max_batch_bytes;
    w->cb = cb;
    w->ctx = ctx;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        free(w);
        return ALCOVE_EIO;
    }
    if (pthread_cond_init(&w->cv, NULL) != 0) {
        pthread_mutex_destroy(&w->mu);
        free(w);
        return ALCOVE_EIO;
    }
    if (uv_async_init(loop, &w->async, on_async) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return ALCOVE_EIO;
    }
    w->async.data = w;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        /* The async handle must be closed through the loop; freeing it is
         * the caller's relay_writer_free after the loop ran. */
        uv_close((uv_handle_t *)&w->async, NULL);
        *out = w;
        return ALCOVE_EIO;
    }
    w->thread_started = 1;
    *out = w;
    return 0;
}

void relay_writer_submit(relay_writer *w, relay_op *op)
{
    op->next = NULL;
    w->inflight++;
    pthread_mutex_lock(&w->mu);
    if (w->in_tail != NULL)
        w->in_tail->next = op;
    else
        w->in_head = op;
    w->in_tail = op;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

uint64_t relay_writer_inflight(const relay_writer *w) { return w->inflight; }

relay_writer_stats relay_writer_get_stats(relay_writer *w)
{
    pthread_mutex_lock(&w->mu);
    relay_writer_stats s = w->stats;
    pthread_mutex_unlock(&w->mu);
    return s;
}

void relay_writer_stop(relay_writer *w)
{
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->thread_started) {
        pthread_join(w->thread, NULL);
        w->thread_started = 0;
    }
    on_async(&w->async); /* deliver the last batches */
    if (!uv_is_closing((uv_handle_t *)&w->async))
        uv_close((uv_handle_t *)&w->async, NULL);
}

void relay_writer_free(relay_writer *w)
{
    if (w == NULL)
        return;
    if (w->thread_started) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
