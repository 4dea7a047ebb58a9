#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"

/* A checkpoint is due after this long with journaled data... */
#define CKPT_MS 250u
/* ...or once this share of the record area is used. */
#define CKPT_AREA_DIVISOR 4u

struct relay_writer {
    uv_loop_t *loop;
    uv_async_t async;
    uv_check_t check;  /* end of a loop iteration: hand over what it queued */
    uv_idle_t idle;    /* keeps the loop from blocking while ops are queued */
    relay_op *local_head, *local_tail; /* queued this iteration, loop thread only */
    int reader_seen;   /* loop thread: a Fetch was served this iteration */
    relay_store *st;
    relay_journal *j;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    relay_op *in_head, *in_tail; /* submitted, guarded by mu */
    relay_op *out_head, *out_tail; /* finished, guarded by mu */
    uint64_t inflight;           /* loop thread only */
    uint32_t max_ops;
    uint64_t max_bytes;
    int stop;
    int busy; /* guarded by mu: a batch or checkpoint is being written */
    int waiting; /* guarded by mu: the writer sleeps until signalled */
    int ckpt_waiting; /* guarded by mu: a checkpoint waits to finish */
    int in_loop;      /* commit_batch runs on the loop thread (commit_inline) */
    int thread_started;
    relay_writer_done_cb cb;
    void *ctx;
    relay_writer_stats stats; /* guarded by mu */
    /* Writer thread only: */
    uint64_t ckpt_bytes;
    uint64_t dirty_since_ms; /* monotonic ms of the first record since the last checkpoint */
    int ckpt_broken;
    uint64_t wb_bytes;       /* journaled since data.mdb's last writeback hint */
    int journal_err;         /* errno of the last journal failure, 0 if the store's */
    uint8_t *metas;          /* 2 * RELAY_JOURNAL_PSIZE_MAX */
};

static void on_check(uv_check_t *h);
static void on_idle(uv_idle_t *h);

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* --- checkpoints ------------------------------------------------------------ */

/* Make data.mdb durable as it is now and record it in the journal.  Order:
 * pin the current snapshot (so its pages stay in place), read its meta
 * pages and the journal's position (the mark), sync data.mdb, save the meta
 * pages into the journal's older slot and sync that, then drop the previous
 * pin.  With w (the writer, which the caller made busy), the data sync runs
 * without holding busy, so batches keep being journaled and committed
 * meanwhile; they follow the mark, and both pins keep the snapshots they
 * could be replayed onto intact.  A failed data sync breaks checkpoints for
 * good (see writer.h); a failed slot write leaves the previous checkpoint
 * valid and is retried later.  Returns 0, ALCOVE_ESTORE, ALCOVE_EIO. */
static int checkpoint(relay_store *st, relay_journal *j, uint8_t *metas, int *broken,
                      relay_writer *w)
{
    if (*broken)
        return ALCOVE_ESTORE;
    uint32_t psize = relay_store_page_size(st);
    if (psize == 0 || psize > RELAY_JOURNAL_PSIZE_MAX)
        return ALCOVE_ESTORE;
    int rc = relay_store_pin_push(st);
    if (rc != 0)
        return rc;
    rc = relay_store_read_metas(st, metas, psize);
    if (rc != 0) {
        relay_store_pin_settle(st, 0);
        return rc;
    }
    relay_journal_mark mark = relay_journal_get_mark(j);
    if (w != NULL) {
        pthread_mutex_lock(&w->mu);
        w->busy = 0;
        pthread_mutex_unlock(&w->mu);
    }
    rc = relay_store_sync(st);
    if (w != NULL) {
        pthread_mutex_lock(&w->mu);
        w->ckpt_waiting = 1; /* the loop thread stops taking batches */
        while (w->busy) { /* the loop thread is writing a batch */
            w->waiting = 1;
            pthread_cond_wait(&w->cv, &w->mu);
            w->waiting = 0;
        }
        w->ckpt_waiting = 0;
        w->busy = 1;
        pthread_mutex_unlock(&w->mu);
    }
    if (rc != 0) {
        *broken = 1;
        relay_store_pin_settle(st, 0);
        return rc;
    }
    int err;
    rc = relay_journal_checkpoint(j, metas, psize, mark, &err);
    relay_store_pin_settle(st, rc == 0);
    return rc;
}

/* A checkpoint from the writer (busy held by the caller).  concurrent: let
 * batches be written while data.mdb syncs (not from inside a batch). */
static int writer_checkpoint_mode(relay_writer *w, int concurrent)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = checkpoint(w->st, w->j, w->metas, &w->ckpt_broken, concurrent ? w : NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == 0)
        w->dirty_since_ms = relay_journal_used(w->j) > 0 ? mono_ms() : 0;
    else
        w->dirty_since_ms = mono_ms(); /* retry after CKPT_MS, not at once */
    pthread_mutex_lock(&w->mu);
    if (rc == 0) {
        w->stats.checkpoints++;
        relay_hist_add(&w->stats.checkpoint_us,
                       (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 +
                                  (t1.tv_nsec - t0.tv_nsec) / 1000));
    } else {
        w->stats.checkpoint_failures++;
    }
    w->stats.checkpoint_broken = w->ckpt_broken;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

static int writer_checkpoint(relay_writer *w) { return writer_checkpoint_mode(w, 0); }

static int checkpoint_due(const relay_writer *w, uint64_t now)
{
    return !w->ckpt_broken && relay_journal_used(w->j) > 0 &&
           (relay_journal_used(w->j) >= w->ckpt_bytes || now >= w->dirty_since_ms + CKPT_MS);
}

/* At the store's cap: pages freed since the last checkpoint (acks,
 * deletes) are held by its pin, and those freed by the newest commit even by
 * a fresh pin (LMDB reuses pages freed by txns older than the oldest
 * reader).  Checkpoint, commit a tick, checkpoint again: then every page
 * freed so far can be reused.  Four syncs, only when the cap is reached. */
static int release_freed_pages(relay_writer *w)
{
    int rc = writer_checkpoint(w);
    if (rc == 0)
        rc = relay_store_tick(w->st);
    if (rc == 0)
        rc = writer_checkpoint(w);
    if (rc == 0)
        rc = relay_store_fit_cap(w->st);
    return rc;
}

/* Start data.mdb's writeback once a few MiB were committed since the last
 * time, so that checkpoints find little left to write; not after every
 * commit (each hint is an I/O submission of its own). */
#define WRITEBACK_BYTES (1u << 20)
static void maybe_writeback(relay_writer *w)
{
    if (w->wb_bytes < WRITEBACK_BYTES)
        return;
    w->wb_bytes = 0;
    relay_store_writeback(w->st);
}

/* commit_batch from the loop thread: the batch needs the writer thread
 * (nothing of it was stored, no op result was set). */
#define NEEDS_WRITER 1

/* --- one batch ----------------------------------------------------------------- */

static size_t journal_payload(const relay_op *batch)
{
    size_t n = 0;
    for (const relay_op *op = batch; op != NULL; op = op->next)
        if (op->result == 0)
            n += relay_op_encoded_size(op);
    return n;
}

/* Journal the ops of the batch that applied.  *direct is set when the
 * batch is too large for one record: it is then made durable by a
 * checkpoint right after its commit.  Returns 0 or ALCOVE_ESTORE/EIO. */
static int journal_batch(relay_writer *w, const relay_op *batch, int *direct, int *journaled)
{
    size_t n = journal_payload(batch);
    *direct = 0;
    *journaled = 0;
    if (n == 0)
        return 0;
    if (n > relay_journal_max_payload(w->j)) {
        *direct = 1;
        return 0;
    }
    if (!relay_journal_fits(w->j, n)) {
        w->journal_err = ENOSPC; /* full, and checkpoints are broken */
        return ALCOVE_EIO;
    }
    uint8_t *p = relay_journal_payload_buf(w->j, n);
    if (p == NULL)
        return ALCOVE_ENOMEM;
    for (const relay_op *op = batch; op != NULL; op = op->next)
        if (op->result == 0)
            p = relay_op_encode(op, p);
    int err;
    int rc = relay_journal_append(w->j, n, &err);
    if (rc != 0) {
        w->journal_err = err ? err : EIO;
        return rc;
    }
    *journaled = 1;
    w->wb_bytes += n;
    if (w->dirty_since_ms == 0)
        w->dirty_since_ms = mono_ms();
    pthread_mutex_lock(&w->mu);
    w->stats.journal_bytes += n + RELAY_JOURNAL_REC_HDR;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* One group commit.  Retries after growing the map.  At the configured
 * cap, the operations that add data are refused (ALCOVE_ELIMIT in their
 * own result) and the rest (acks, deletes, expiry) commit in the reserve,
 * so a full store can always be emptied.  Any other failure fails the
 * whole batch (the transaction is aborted: nothing of it is stored).
 * w == NULL: replaying the journal (nothing is journaled again, nothing is
 * refused: the reserve is used if the cap is reached). */
static int commit_batch(relay_writer *w, relay_store *st, relay_op *batch, int *grew)
{
    int reserve = w == NULL, released = 0;
    if (w != NULL) {
        for (relay_op *op = batch; op != NULL; op = op->next) {
            if (relay_op_adds_data(op)) {
                int rc = relay_store_fit_cap(st);
                if (rc != 0)
                    return rc;
                break;
            }
        }
    }
    for (;;) {
        int direct = 0, journaled = 0;
        int rc = relay_store_wbegin(st);
        for (relay_op *op = batch; op != NULL && rc == 0; op = op->next)
            if (op->result == 0)
                rc = relay_op_apply(st, op);
        if (rc == 0 && w != NULL) {
            rc = journal_batch(w, batch, &direct, &journaled);
            if (rc == 0 && direct && w->in_loop) { /* needs a checkpoint */
                relay_store_wabort(st);
                return NEEDS_WRITER;
            }
            if (rc != 0) {
                relay_store_wabort(st);
                return rc == ALCOVE_ENOMEM ? rc : ALCOVE_ESTORE;
            }
        }
        if (rc == 0) {
            /* Saving the free list at commit can itself need pages. */
            rc = relay_store_wcommit(st);
            if (rc != 0 && journaled) {
                /* Not applied: take the record back so that a restart does
                 * not apply a batch that was answered with an error. */
                int err;
                (void)relay_journal_unappend(w->j, &err);
            }
            if (rc == 0 && direct)
                return writer_checkpoint(w);
            if (rc != ALCOVE_ELIMIT)
                return rc;
        } else {
            relay_store_wabort(st);
        }
        if (rc != ALCOVE_ELIMIT)
            return rc;
        rc = relay_store_grow(st, reserve);
        if (rc == 0) {
            (*grew)++;
            continue;
        }
        if (rc != ALCOVE_ELIMIT || reserve)
            return rc;
        if (!released) {
            /* Checkpoints are the writer thread's: a batch on the loop
             * thread (which may run while a checkpoint syncs) goes to it. */
            if (w->in_loop)
                return NEEDS_WRITER;
            released = 1;
            if (release_freed_pages(w) == 0)
                continue;
        }
        int frees = 0;
        for (relay_op *op = batch; op != NULL; op = op->next) {
            if (relay_op_adds_data(op))
                op->result = ALCOVE_ELIMIT;
            else if (op->result == 0)
                frees = 1;
        }
        if (!frees)
            return ALCOVE_ELIMIT;
        reserve = 1;
    }
}

/* --- recovery ------------------------------------------------------------------ */

int relay_writer_recover(relay_store *st, relay_journal *j, uint64_t *batches, uint64_t *ops)
{
    *batches = *ops = 0;
    uint8_t *metas = malloc(2u * RELAY_JOURNAL_PSIZE_MAX);
    if (metas == NULL)
        return ALCOVE_ENOMEM;
    /* Replay commits without syncing too: keep the restored checkpoint's
     * snapshot pinned until the recovery checkpoint is durable. */
    int rc = relay_store_pin_push(st);
    if (rc != 0) {
        free(metas);
        return rc;
    }
    for (;;) {
        const uint8_t *payload;
        size_t len;
        uint64_t bseq;
        rc = relay_journal_replay_next(j, &payload, &len, &bseq);
        if (rc == ALCOVE_ENOTFOUND) {
            rc = 0;
            break;
        }
        if (rc != 0)
            break;
        relay_op *list = NULL;
        if ((rc = relay_op_decode_list(payload, len, &list)) != 0)
            break;
        int grew = 0;
        rc = commit_batch(NULL, st, list, &grew);
        for (relay_op *op = list; op != NULL; op = op->next)
            (*ops)++;
        relay_op_free_list(list);
        if (rc != 0)
            break;
        (*batches)++;
    }
    if (rc == 0) {
        int broken = 0;
        rc = checkpoint(st, j, metas, &broken, NULL);
    }
    free(metas);
    return rc;
}

int relay_writer_create_journal(relay_store *st, const char *storedir, uint64_t bytes,
                                relay_journal **out, const char **why)
{
    uint32_t psize = relay_store_page_size(st);
    *why = "unsupported LMDB page size";
    if (psize == 0 || psize > RELAY_JOURNAL_PSIZE_MAX)
        return ALCOVE_ESTORE;
    uint8_t *metas = malloc(2u * (size_t)psize);
    *why = "out of memory";
    if (metas == NULL)
        return ALCOVE_ENOMEM;
    int rc = relay_store_sync(st);
    *why = "cannot sync the store";
    if (rc == 0) {
        rc = relay_store_read_metas(st, metas, psize);
        *why = "cannot read the store's meta pages";
    }
    /* The journal's first checkpoint is this snapshot: pin it like any. */
    if (rc == 0 && (rc = relay_store_pin_push(st)) == 0) {
        rc = relay_journal_create(out, storedir, bytes, 0, metas, psize, why);
        relay_store_pin_settle(st, rc == 0);
    }
    free(metas);
    return rc;
}

/* --- the thread ----------------------------------------------------------------- */

/* Set every op's result from the batch's; returns the last op. */
static relay_op *set_results(relay_writer *w, relay_op *batch, int rc)
{
    relay_op *last = batch;
    for (relay_op *op = batch; op != NULL; op = op->next) {
        if (op->result == 0) /* keep per-op refusals (store at its cap) */
            op->result = rc;
        if (op->result != 0)
            op->store_rc = w->journal_err ? w->journal_err : relay_store_last_rc(w->st);
        last = op;
    }
    return last;
}

/* Hand a finished batch to the loop thread (called without the lock). */
static void deliver(relay_writer *w, relay_op *batch, int rc)
{
    relay_op *last = set_results(w, batch, rc);
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

/* Under mu: one batch of n ops was written between t0 and t1. */
static void add_commit_stats(relay_writer *w, uint32_t n, int grew, const struct timespec *t0,
                             const struct timespec *t1)
{
    w->stats.map_grows += (uint64_t)grew;
    relay_hist_add(&w->stats.batch_ops, n);
    relay_hist_add(&w->stats.commit_us, (uint64_t)((t1->tv_sec - t0->tv_sec) * 1000000 +
                                                   (t1->tv_nsec - t0->tv_nsec) / 1000));
}

static void timed_wait(relay_writer *w, uint64_t due_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    uint64_t wait = due_ms > now ? due_ms - now : 0;
    ts.tv_sec += (time_t)(wait / 1000u);
    ts.tv_nsec += (long)(wait % 1000u) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    (void)pthread_cond_timedwait(&w->cv, &w->mu, &ts);
}

static void *writer_main(void *arg)
{
    relay_writer *w = arg;
    size_t max_payload = relay_journal_max_payload(w->j);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while ((w->in_head == NULL || w->busy) && !w->stop) {
            if (w->busy) { /* the loop thread is writing a batch itself */
                w->waiting = 1;
                pthread_cond_wait(&w->cv, &w->mu);
                w->waiting = 0;
                continue;
            }
            uint64_t now = mono_ms();
            if (checkpoint_due(w, now)) {
                w->busy = 1;
                pthread_mutex_unlock(&w->mu);
                (void)writer_checkpoint_mode(w, 1);
                pthread_mutex_lock(&w->mu);
                w->busy = 0;
                continue;
            }
            if (!w->ckpt_broken && relay_journal_used(w->j) > 0) {
                timed_wait(w, w->dirty_since_ms + CKPT_MS);
            } else {
                w->waiting = 1;
                pthread_cond_wait(&w->cv, &w->mu);
                w->waiting = 0;
            }
        }
        if (w->in_head == NULL && w->stop)
            break;
        while (w->busy) /* stopping while the loop thread writes: cannot happen */
            pthread_cond_wait(&w->cv, &w->mu);
        /* Take a bounded prefix of the queue: ops, blob bytes, and what one
         * journal record holds (a single larger op goes alone). */
        relay_op *batch = w->in_head, *last = batch;
        uint32_t n = 1;
        uint64_t bytes = batch->blob_len;
        size_t jbytes = relay_op_encoded_size(batch);
        while (last->next != NULL && n < w->max_ops &&
               bytes + last->next->blob_len <= w->max_bytes &&
               jbytes + relay_op_encoded_size(last->next) <= max_payload) {
            last = last->next;
            bytes += last->blob_len;
            jbytes += relay_op_encoded_size(last);
            n++;
        }
        w->in_head = last->next;
        if (w->in_head == NULL)
            w->in_tail = NULL;
        last->next = NULL;
        w->stats.commits++;
        w->stats.ops += n;
        w->busy = 1;
        pthread_mutex_unlock(&w->mu);

        if (jbytes <= max_payload && !relay_journal_fits(w->j, jbytes))
            (void)writer_checkpoint(w); /* if it fails, the batch fails (journal full) */
        int grew = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        w->journal_err = 0;
        int rc = commit_batch(w, w->st, batch, &grew);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        maybe_writeback(w);
        deliver(w, batch, rc);
        if (checkpoint_due(w, mono_ms()))
            (void)writer_checkpoint_mode(w, 1);
        pthread_mutex_lock(&w->mu);
        w->busy = 0;
        add_commit_stats(w, n, grew, &t0, &t1);
    }
    pthread_mutex_unlock(&w->mu);
    /* Always, even with an empty journal: commits made outside the journal
     * (relay_store_load's clean-up at start) become durable too, and a
     * cleanly stopped store's data.mdb matches its journal's checkpoint. */
    (void)writer_checkpoint(w);
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
                       relay_journal *j, uint32_t max_batch_ops, uint64_t max_batch_bytes,
                       relay_writer_done_cb cb, void *ctx)
{
    relay_writer *w = calloc(1, sizeof *w);
    if (w == NULL)
        return ALCOVE_ENOMEM;
    w->loop = loop;
    w->st = st;
    w->j = j;
    w->max_ops = max_batch_ops ? max_batch_ops : 1;
    w->max_bytes = max_batch_bytes;
    w->cb = cb;
    w->ctx = ctx;
    w->ckpt_bytes = (relay_journal_size(j) - RELAY_JOURNAL_HEAD_BYTES) / CKPT_AREA_DIVISOR;
    if ((w->metas = malloc(2u * RELAY_JOURNAL_PSIZE_MAX)) == NULL) {
        free(w);
        return ALCOVE_ENOMEM;
    }
    pthread_condattr_t ca;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        free(w->metas);
        free(w);
        return ALCOVE_EIO;
    }
    if (pthread_condattr_init(&ca) != 0 ||
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&w->cv, &ca) != 0) {
        pthread_mutex_destroy(&w->mu);
        free(w->metas);
        free(w);
        return ALCOVE_EIO;
    }
    pthread_condattr_destroy(&ca);
    if (uv_async_init(loop, &w->async, on_async) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w->metas);
        free(w);
        return ALCOVE_EIO;
    }
    w->async.data = w;
    (void)uv_check_init(loop, &w->check);
    (void)uv_idle_init(loop, &w->idle);
    w->check.data = w->idle.data = w;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        /* The async handle must be closed through the loop; freeing it is
         * the caller's relay_writer_free after the loop ran. */
        uv_close((uv_handle_t *)&w->async, NULL);
        uv_close((uv_handle_t *)&w->check, NULL);
        uv_close((uv_handle_t *)&w->idle, NULL);
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
    if (w->local_tail != NULL) {
        w->local_tail->next = op;
    } else {
        w->local_head = op;
        if (!w->stop) {
            (void)uv_check_start(&w->check, on_check);
            (void)uv_idle_start(&w->idle, on_idle);
        }
    }
    w->local_tail = op;
}

/* Queue a list for the writer thread (loop thread). */
static void hand_over(relay_writer *w, relay_op *head, relay_op *tail)
{
    pthread_mutex_lock(&w->mu);
    if (w->in_tail != NULL)
        w->in_tail->next = head;
    else
        w->in_head = head;
    w->in_tail = tail;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Write a batch on the loop thread when the writer thread has nothing to do
 * (what a lone request waits for is then one fdatasync, not two thread
 * wake-ups on top).  Returns 0 if it did, -1 if the batch must go to the
 * writer thread (it is busy or has work queued, or the batch needs a
 * checkpoint or is larger than one group commit). */
static int commit_inline(relay_writer *w, relay_op *batch)
{
    uint32_t n = 0;
    uint64_t bytes = 0;
    size_t jbytes = 0;
    for (const relay_op *op = batch; op != NULL; op = op->next) {
        n++;
        bytes += op->blob_len;
        jbytes += relay_op_encoded_size(op);
    }
    /* Batches complete in queue order: the loop applies each to the index
     * (messages in seq order per mailbox, acks computed from it), so an
     * earlier batch still with the writer thread, or written but not yet
     * delivered back, must come back first. */
    if (w->inflight != n)
        return -1;
    pthread_mutex_lock(&w->mu);
    if (w->busy || w->in_head != NULL || w->stop || w->ckpt_waiting) {
        pthread_mutex_unlock(&w->mu);
        return -1;
    }
    w->busy = 1;
    pthread_mutex_unlock(&w->mu);
    if (n > w->max_ops || bytes > w->max_bytes || jbytes > relay_journal_max_payload(w->j) ||
        !relay_journal_fits(w->j, jbytes)) {
        pthread_mutex_lock(&w->mu);
        w->busy = 0;
        pthread_mutex_unlock(&w->mu);
        return -1;
    }
    int grew = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    w->journal_err = 0;
    w->in_loop = 1;
    int rc = commit_batch(w, w->st, batch, &grew);
    w->in_loop = 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == NEEDS_WRITER) {
        pthread_mutex_lock(&w->mu);
        w->busy = 0;
        if (w->waiting)
            pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        return -1;
    }
    maybe_writeback(w);
    set_results(w, batch, rc);
    pthread_mutex_lock(&w->mu);
    w->busy = 0;
    w->stats.commits++;
    w->stats.ops += n;
    if (rc != 0)
        w->stats.failed_batches++;
    add_commit_stats(w, n, grew, &t0, &t1);
    if (w->waiting) /* it may now have a checkpoint to schedule */
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    w->inflight -= n;
    w->cb(w->ctx, batch);
    return 0;
}

/* Everything queued during this loop iteration becomes one batch: written
 * here when the writer thread is idle, else handed to it.  Completing a
 * batch can queue more (purges): repeat until nothing is left. */
static void flush_local(relay_writer *w)
{
    while (w->local_head != NULL) {
        relay_op *head = w->local_head, *tail = w->local_tail;
        w->local_head = w->local_tail = NULL;
        if (w->stop || w->reader_seen || commit_inline(w, head) != 0)
            hand_over(w, head, tail);
    }
    w->reader_seen = 0;
    (void)uv_check_stop(&w->check);
    (void)uv_idle_stop(&w->idle);
}

void relay_writer_note_reader(relay_writer *w) { w->reader_seen = 1; }

static void on_check(uv_check_t *h) { flush_local(h->data); }
static void on_idle(uv_idle_t *h) { flush_local(h->data); }

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
    if (w->local_head != NULL) /* the writer thread finishes them */
        hand_over(w, w->local_head, w->local_tail);
    w->local_head = w->local_tail = NULL;
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
    if (!uv_is_closing((uv_handle_t *)&w->check))
        uv_close((uv_handle_t *)&w->check, NULL);
    if (!uv_is_closing((uv_handle_t *)&w->idle))
        uv_close((uv_handle_t *)&w->idle, NULL);
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
    free(w->metas);
    free(w);
}
