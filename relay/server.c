#include "server.h"

#include <errno.h>
#include <lmdb.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "conn.h"
#include "err.h"
#include "keyfile.h"

static const char *const close_names[] = {
#define RELAY_CR_NAME(n, s) s,
    RELAY_CLOSE_REASONS(RELAY_CR_NAME)
#undef RELAY_CR_NAME
};

const char *relay_close_reason_name(relay_close_reason r)
{
    return (unsigned)r < CLOSE__COUNT ? close_names[r] : "unknown";
}

static uint64_t wall_ms(void *ctx)
{
    struct timespec ts;
    (void)ctx;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void reply_created(conn *c, uint64_t id, const relay_mbox *mb)
{
    Alcove__Wire__MailboxCreated mc = ALCOVE__WIRE__MAILBOX_CREATED__INIT;
    mc.recv_id.data = (uint8_t *)(uintptr_t)mb->recv_id;
    mc.recv_id.len = RELAY_ID_BYTES;
    mc.send_id.data = (uint8_t *)(uintptr_t)mb->send_id;
    mc.send_id.len = RELAY_ID_BYTES;
    Alcove__Wire__Reply r = ALCOVE__WIRE__REPLY__INIT;
    r.id = id;
    r.status = ALCOVE__WIRE__STATUS__OK;
    r.result_case = ALCOVE__WIRE__REPLY__RESULT_MAILBOX;
    r.mailbox = &mc;
    Alcove__Wire__RelayMessage m = ALCOVE__WIRE__RELAY_MESSAGE__INIT;
    m.kind_case = ALCOVE__WIRE__RELAY_MESSAGE__KIND_REPLY;
    m.reply = &r;
    conn_send(c, &m);
}

static void push_to_subscribers(relay_mbox *mb, const relay_op *op)
{
    if (mb->nsubs == 0)
        return;
    Alcove__Wire__Stored st = ALCOVE__WIRE__STORED__INIT;
    st.seq = op->seq;
    st.received_at = op->received_at;
    st.blob.data = op->blob;
    st.blob.len = op->blob_len;
    Alcove__Wire__Push p = ALCOVE__WIRE__PUSH__INIT;
    p.recv_id.data = mb->recv_id;
    p.recv_id.len = RELAY_ID_BYTES;
    p.message = &st;
    Alcove__Wire__RelayMessage m = ALCOVE__WIRE__RELAY_MESSAGE__INIT;
    m.kind_case = ALCOVE__WIRE__RELAY_MESSAGE__KIND_PUSH;
    m.push = &p;
    /* Backwards: a send that closes a slow subscriber removes it from this
     * array by moving the last entry into its place. */
    for (uint32_t i = mb->nsubs; i-- > 0;)
        if (i < mb->nsubs)
            conn_send(mb->subs[i], &m);
}

static const char *failure_detail(int rc)
{
    return rc == ALCOVE_ELIMIT ? "relay storage is full" : "relay storage unavailable; not stored";
}

/* A trim deletes only what no earlier queued trim was deleting.  If an
 * earlier one failed, the messages it should have deleted are still in the
 * index below this trim's range: delete them now, before the index forgets
 * them (a restart would also remove them, but acked data must not linger). */
static void purge_skipped(relay_server *srv, relay_mbox *mb, const relay_op *op)
{
    uint64_t first = op->ngseqs ? op->gseqs[0] : UINT64_MAX;
    uint32_t k = 0;
    while (k < mb->count && relay_mbox_msg(mb, k)->seq <= op->new_acked &&
           relay_mbox_msg(mb, k)->gseq < first)
        k++;
    if (k == 0)
        return;
    relay_op *purge = relay_op_new(OP_PURGE);
    if (purge == NULL || (purge->gseqs = malloc((size_t)k * sizeof *purge->gseqs)) == NULL) {
        relay_op_free(purge); /* the next start removes acked records */
        return;
    }
    for (uint32_t i = 0; i < k; i++)
        purge->gseqs[i] = relay_mbox_msg(mb, i)->gseq;
    purge->ngseqs = k;
    relay_writer_submit(srv->writer, purge);
}

static void finish_op(relay_server *srv, relay_op *op)
{
    relay_mbox *mb = op->mb;
    conn *c = op->conn;
    int ok = op->result == 0;
    Alcove__Wire__Status fail = op->result == ALCOVE_ELIMIT ? ALCOVE__WIRE__STATUS__QUOTA_EXCEEDED
                                                            : ALCOVE__WIRE__STATUS__UNAVAILABLE;
    int st = ok ? ALCOVE__WIRE__STATUS__OK : (int)fail; /* counted if c != NULL */
    switch (op->kind) {
    case OP_CREATE:
        if (ok && relay_index_insert(srv->index, mb) == 0) {
            relay_logf(srv->log, RLOG_DEBUG, "mailbox_created", NULL);
            if (c != NULL && !c->closed) {
                if (conn_add_sess(c, mb) == 0) {
                    reply_created(c, op->req_id, mb);
                } else {
                    st = ALCOVE__WIRE__STATUS__INTERNAL;
                    conn_reply(c, op->req_id, ALCOVE__WIRE__STATUS__INTERNAL, "out of memory");
                }
            }
        } else if (c != NULL) {
            st = ok ? ALCOVE__WIRE__STATUS__INTERNAL : (int)fail;
            conn_reply(c, op->req_id, ok ? ALCOVE__WIRE__STATUS__INTERNAL : fail,
                       ok ? "index insert failed" : failure_detail(op->result));
        }
        break;
    case OP_SEND:
        mb->pending_count--;
        mb->pending_bytes -= op->blob_len;
        if (!ok) {
            if (c != NULL)
                conn_reply(c, op->req_id, fail, failure_detail(op->result));
            break;
        }
        if (mb->deleted) {
            /* Deleted while this send was in flight: remove the orphan. */
            relay_op *purge = relay_op_new(OP_PURGE);
            if (purge != NULL && (purge->gseqs = malloc(sizeof *purge->gseqs)) != NULL) {
                purge->gseqs[0] = op->gseq;
                purge->ngseqs = 1;
                relay_writer_submit(srv->writer, purge);
            } else {
                relay_op_free(purge); /* the next start removes the orphan */
            }
            st = ALCOVE__WIRE__STATUS__UNAUTHORIZED;
            if (c != NULL)
                conn_reply(c, op->req_id, ALCOVE__WIRE__STATUS__UNAUTHORIZED, "send refused");
            break;
        }
        {
            relay_msg m = {op->seq, op->gseq, op->received_at, op->blob_len};
            if (relay_mbox_push_msg(mb, &m) != 0)
                relay_logf(srv->log, RLOG_ERROR, "index_full",
                           "detail=\"stored message not indexed until restart\"");
        }
        if (c != NULL)
            conn_reply(c, op->req_id, ALCOVE__WIRE__STATUS__OK, NULL);
        push_to_subscribers(mb, op);
        break;
    case OP_TRIM:
        if (c == NULL)
            mb->expiring = 0;
        if (!ok) /* nothing of it was deleted: a later trim must cover it */
            mb->trim_queued = mb->acked_seq;
        if (ok && op->new_acked > mb->acked_seq) {
            purge_skipped(srv, mb, op);
            mb->acked_seq = op->new_acked;
            relay_mbox_drop_upto(mb, op->new_acked);
        }
        if (c != NULL)
            conn_reply(c, op->req_id, ok ? ALCOVE__WIRE__STATUS__OK : fail,
                       ok ? NULL : failure_detail(op->result));
        else if (ok && op->ngseqs > 0) {
            srv->metrics.expired_messages += op->ngseqs;
            relay_logf(srv->log, RLOG_INFO, "expired", "messages=%u", op->ngseqs);
        }
        break;
    case OP_DELETE:
        if (ok && c == NULL)
            srv->metrics.expired_mailboxes++;
        if (ok)
            relay_logf(srv->log, RLOG_INFO, "mailbox_deleted", "by=%s", c ? "owner" : "idle_expiry");
        if (c != NULL)
            conn_reply(c, op->req_id, ok ? ALCOVE__WIRE__STATUS__OK : fail,
                       ok ? NULL : failure_detail(op->result));
        break;
    case OP_TOUCH:
    case OP_PURGE:
        break;
    }
    if (c != NULL) {
        static const relay_metric_cmd by_kind[] = {
            [OP_CREATE] = RELAY_MCMD_CREATE, [OP_SEND] = RELAY_MCMD_SEND,
            [OP_TRIM] = RELAY_MCMD_ACK,      [OP_DELETE] = RELAY_MCMD_DELETE,
            [OP_TOUCH] = RELAY_MCMD_NONE,    [OP_PURGE] = RELAY_MCMD_NONE,
        };
        if ((unsigned)op->kind < sizeof by_kind / sizeof by_kind[0])
            relay_metrics_request(&srv->metrics, by_kind[op->kind], st);
    }
    if (!ok) {
        if (op->result == ALCOVE_ELIMIT)
            srv->metrics.failed_ops_full++;
        else
            srv->metrics.failed_ops_io++;
    }
    relay_mbox_unref(mb);
    conn_unref(c);
    relay_op_free(op);
}

void relay_server_on_batch(void *ctx, relay_op *batch)
{
    relay_server *srv = ctx;
    unsigned failed = 0;
    int first_error = 0, first_rc = 0;
    conn_cork(srv); /* one write per connection for the whole batch */
    while (batch != NULL) {
        relay_op *next = batch->next;
        if (batch->result != 0 && failed++ == 0) {
            first_error = batch->result;
            first_rc = batch->store_rc;
        }
        finish_op(srv, batch);
        batch = next;
    }
    conn_uncork(srv);
    if (failed > 0) /* one line per batch, not per operation */
        relay_logf(srv->log, RLOG_ERROR, "commit_failed", "ops=%u error=\"%s\" store=\"%s\"",
                   failed, alcove_strerror(first_error), mdb_strerror(first_rc));
    relay_server_check_writer(srv);
}

void relay_server_check_writer(relay_server *srv)
{
    if (srv->writer == NULL || srv->checkpoint_broken_logged)
        return;
    relay_writer_stats ws = relay_writer_get_stats(srv->writer);
    if (!ws.checkpoint_broken)
        return;
    srv->checkpoint_broken_logged = 1;
    relay_logf(srv->log, RLOG_ERROR, "checkpoint_failed",
               "hint=\"syncing store/data.mdb failed; acknowledged writes are safe in the "
               "journal, which is not checkpointed again until a restart (writes fail once it "
               "is full): fix the disk, then restart the relay\"");
}

static void on_expiry(uv_timer_t *t) { relay_expiry_run(t->data); }

/* --- timeouts and drain ------------------------------------------------- */

static void finish_shutdown(relay_server *srv)
{
    relay_logf(srv->log, RLOG_INFO, "stopped", NULL);
    relay_admin_close(srv->admin);
    srv->admin = NULL;
    uv_close((uv_handle_t *)&srv->sweep, NULL);
    uv_close((uv_handle_t *)&srv->expiry, NULL);
    uv_close((uv_handle_t *)&srv->sig_term, NULL);
    uv_close((uv_handle_t *)&srv->sig_int, NULL);
    uv_close((uv_handle_t *)&srv->sig_hup, NULL);
    relay_writer_stop(srv->writer);
}

static void on_sweep(uv_timer_t *t)
{
    relay_server *srv = t->data;
    uint64_t now = uv_now(srv->loop);
    relay_server_check_writer(srv);
    for (conn *c = srv->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (now < c->deadline)
            continue;
        if (c->shutting)
            conn_close(c, (relay_close_reason)c->close_why);
        else if (c->state == CONN_HANDSHAKE || c->state == CONN_HELLO)
            conn_close(c, CLOSE_HANDSHAKE_TIMEOUT);
        else if (c->state == CONN_READY)
            conn_close(c, CLOSE_IDLE_TIMEOUT);
    }
    if (!srv->draining)
        return;
    int late = now >= srv->drain_deadline;
    if (relay_writer_inflight(srv->writer) == 0 || late) {
        for (conn *c = srv->conns, *next; c != NULL; c = next) {
            next = c->next;
            if (late)
                conn_close(c, CLOSE_SHUTDOWN);
            else
                conn_close_after_flush(c, CLOSE_SHUTDOWN);
        }
    }
    if (srv->conns == NULL && relay_writer_inflight(srv->writer) == 0 && srv->exit_code < 0) {
        srv->exit_code = 0;
        finish_shutdown(srv);
    }
}

static void start_drain(relay_server *srv, const char *why)
{
    if (srv->draining)
        return;
    srv->draining = 1;
    srv->drain_deadline = uv_now(srv->loop) + 10000;
    relay_logf(srv->log, RLOG_INFO, "draining", "signal=%s", why);
    uv_close((uv_handle_t *)&srv->listener, NULL);
    for (conn *c = srv->conns; c != NULL; c = c->next)
        conn_pause(c);
    uv_timer_start(&srv->sweep, on_sweep, 10, 10);
}

static uint64_t sweep_interval(const relay_config *cfg)
{
    uint64_t ms = cfg->handshake_timeout_ms < 1000 ? cfg->handshake_timeout_ms / 2 + 1 : 500;
    if (cfg->idle_timeout_ms < 1000 && cfg->idle_timeout_ms / 2 + 1 < ms)
        ms = cfg->idle_timeout_ms / 2 + 1;
    return ms;
}

void relay_server_retime(relay_server *srv, uint64_t old_expiry_ms, uint64_t old_sweep_ms)
{
    const relay_config *cfg = srv->cfg;
    if (srv->draining)
        return;
    if (cfg->expiry_interval_ms != old_expiry_ms)
        uv_timer_start(&srv->expiry, on_expiry, cfg->expiry_interval_ms, cfg->expiry_interval_ms);
    if (sweep_interval(cfg) != old_sweep_ms)
        uv_timer_start(&srv->sweep, on_sweep, sweep_interval(cfg), sweep_interval(cfg));
}

uint64_t relay_server_sweep_ms(const relay_config *cfg) { return sweep_interval(cfg); }

static void on_signal(uv_signal_t *s, int signum)
{
    relay_server *srv = s->data;
    if (signum == SIGHUP) {
        relay_server_reload(srv);
        return;
    }
    (void)sd_notify(0, "STOPPING=1\nSTATUS=draining");
    start_drain(srv, signum == SIGTERM ? "TERM" : "INT");
}

static void on_connection(uv_stream_t *l, int status)
{
    relay_server *srv = l->data;
    if (status < 0) {
        relay_logf(srv->log, RLOG_WARN, "accept_failed", "error=%s", uv_err_name(status));
        return;
    }
    conn_accept(srv);
}

/* --- start-up ------------------------------------------------------------ */

static void raise_nofile(relay_server *srv, relay_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY) {
        /* Room for the listeners, the store, the log and admin clients. */
        srv->nofile_cap = rl.rlim_cur > 128 ? (uint64_t)rl.rlim_cur - 64 : 64;
        if (srv->nofile_cap > UINT32_MAX)
            srv->nofile_cap = UINT32_MAX;
        if (cfg->max_connections > srv->nofile_cap)
            relay_logf(srv->log, RLOG_WARN, "nofile_limit", "nofile=%llu",
                       (unsigned long long)rl.rlim_cur);
        relay_server_cap_connections(srv, cfg);
    }
}

static int bind_listener(relay_server *srv, char *host, size_t host_cap, uint16_t *port,
                         int *is_v6, FILE *err)
{
    const char *why = NULL;
    struct sockaddr_storage ss;
    if (alcove_hostport_parse(srv->cfg->listen, host, host_cap, is_v6, port, 1, &why) != 0) {
        fprintf(err, "alcove-relay: error: bad --listen '%s': %s\n", srv->cfg->listen, why);
        return ALCOVE_EINVAL;
    }
    int rc = *is_v6 ? uv_ip6_addr(host, *port, (struct sockaddr_in6 *)&ss)
                    : uv_ip4_addr(host, *port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        fprintf(err, "alcove-relay: error: --listen needs a numeric IP address, not '%s'\n", host);
        return ALCOVE_EINVAL;
    }
    if (uv_tcp_init(srv->loop, &srv->listener) != 0)
        return ALCOVE_EIO;
    srv->listener.data = srv;
    if ((rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection)) != 0) {
        fprintf(err, "alcove-relay: error: cannot listen on %s: %s\n", srv->cfg->listen,
                uv_strerror(rc));
        return ALCOVE_EIO;
    }
    int len = sizeof ss;
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) == 0)
        *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

/* One relay per data directory: two would each index the store and hand out
 * the same sequence numbers.  The lock lives as long as the process (the fd
 * is kept open and closed at exit); stats, verify and backup do not take it.
 * Returns the fd, or -1 after printing why. */
static int lock_data_dir(const char *dir)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/run.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "alcove-relay: error: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    /* `alcove-relay stats|verify|backup` take the lock shared for a moment
     * to see whether a relay runs: wait that out (1 s) before refusing. */
    int locked = flock(fd, LOCK_EX | LOCK_NB) == 0;
    for (int i = 0; !locked && errno == EWOULDBLOCK && i < 50; i++) {
        struct timespec ts = {0, 20000000L};
        nanosleep(&ts, NULL);
        locked = flock(fd, LOCK_EX | LOCK_NB) == 0;
    }
    if (!locked) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) {
            fprintf(stderr, "alcove-relay: error: another alcove-relay is running on %s\n", dir);
            fprintf(stderr, "alcove-relay: hint: stop it first (systemctl stop alcove-relay), "
                            "or use another --data\n");
        } else {
            fprintf(stderr, "alcove-relay: error: cannot lock %s: %s\n", path, strerror(e));
        }
        return -1;
    }
    return fd;
}

static char *render_metrics(void *ctx, size_t *len)
{
    return relay_metrics_render(ctx, len);
}

/* Open the journal and the store, in the order recovery needs: the meta
 * pages saved by the journal's last checkpoint go back into data.mdb before
 * LMDB opens it, then the journal is replayed on top (relay/writer.h).  A
 * store without a journal (new, or from before the journal existed) gets one
 * after a full sync. */
static int open_storage(relay_server *srv, const char *storedir, const relay_config *cfg)
{
    const char *why = NULL;
    int rc = relay_journal_open(&srv->journal, storedir, &why);
    if (rc == 0) {
        uint32_t psize;
        const uint8_t *metas = relay_journal_metas(srv->journal, &psize);
        rc = relay_store_restore_metas(storedir, metas, psize, &why);
    } else if (rc == ALCOVE_ENOTFOUND) {
        rc = 0;
    }
    if (rc != 0) {
        fprintf(stderr, "alcove-relay: error: cannot open the journal in %s: %s\n", storedir,
                why);
        return -1;
    }
    if (relay_store_open(&srv->store, storedir, cfg->max_store_bytes, &why) != 0) {
        fprintf(stderr, "alcove-relay: error: cannot open the store in %s: %s\n", storedir, why);
        return -1;
    }
    if (srv->journal == NULL) {
        rc = relay_writer_create_journal(srv->store, storedir, cfg->journal_bytes,
                                         &srv->journal, &why);
        if (rc != 0) {
            fprintf(stderr, "alcove-relay: error: cannot create the journal in %s: %s\n",
                    storedir, why);
            return -1;
        }
        relay_logf(srv->log, RLOG_INFO, "journal_created", "bytes=%llu",
                   (unsigned long long)relay_journal_size(srv->journal));
        return 0;
    }
    uint64_t batches = 0, ops = 0;
    rc = relay_writer_recover(srv->store, srv->journal, &batches, &ops);
    if (rc != 0) {
        fprintf(stderr, "alcove-relay: error: cannot replay the journal in %s: %s (%s)\n",
                storedir, alcove_strerror(rc), relay_store_last_error(srv->store));
        return -1;
    }
    if (batches > 0)
        relay_logf(srv->log, RLOG_INFO, "journal_replayed", "batches=%llu ops=%llu",
                   (unsigned long long)batches, (unsigned long long)ops);
    return 0;
}

int relay_server_run(const relay_config *cfg_in, relay_log *log, FILE *out,
                     const relay_reload *reload_in)
{
    relay_config cfg = *cfg_in;
    relay_server *srv = calloc(1, sizeof *srv);
    uv_loop_t loop;
    int rc, loop_ok = 0, listening = 0, lock_fd = -1;
    char storedir[PATH_MAX + 8];
    uint64_t nmsgs = 0;

    if (srv == NULL)
        return 1;
    srv->cfg = srv->live_cfg = &cfg;
    srv->log = log;
    srv->now = wall_ms;
    srv->exit_code = -1;
    if (reload_in != NULL)
        srv->reload = *reload_in;
    srv->metrics.start_time_ms = wall_ms(NULL);
    raise_nofile(srv, &cfg);

    rc = relay_key_load(cfg.data_dir, &srv->static_sk, srv->static_pk);
    if (rc != 0) {
        fprintf(stderr, "alcove-relay: error: cannot load the relay key from %s: %s\n",
                cfg.data_dir, rc == ALCOVE_ENOTFOUND ? "no key there" : alcove_strerror(rc));
        if (rc == ALCOVE_ENOTFOUND)
            fprintf(stderr, "alcove-relay: hint: run 'alcove-relay init --data %s' first\n",
                    cfg.data_dir);
        goto out;
    }
    if ((lock_fd = lock_data_dir(cfg.data_dir)) < 0)
        goto out;
    snprintf(storedir, sizeof storedir, "%s/store", cfg.data_dir);
    if (mkdir(storedir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "alcove-relay: error: cannot create %s: %s\n", storedir, strerror(errno));
        goto out;
    }
    if (open_storage(srv, storedir, &cfg) != 0)
        goto out;
    if ((srv->index = relay_index_new()) == NULL)
        goto out;
    if ((rc = relay_store_load(srv->store, srv->index, &srv->next_gseq, &nmsgs)) != 0) {
        fprintf(stderr, "alcove-relay: error: cannot load the store: %s (%s)\n",
                alcove_strerror(rc), relay_store_last_error(srv->store));
        goto out;
    }
    relay_logf(log, RLOG_INFO, "store_loaded", "mailboxes=%zu messages=%llu map_bytes=%llu",
               relay_index_count(srv->index), (unsigned long long)nmsgs,
               (unsigned long long)relay_store_map_size(srv->store));

    if (uv_loop_init(&loop) != 0)
        goto out;
    loop_ok = 1;
    srv->loop = &loop;
    char host[ALCOVE_ADDR_HOST_MAX + 1];
    uint16_t port = 0;
    int is_v6 = 0;
    if (bind_listener(srv, host, sizeof host, &port, &is_v6, stderr) != 0)
        goto out;
    listening = 1;
    if (cfg.admin_listen[0] != '\0') {
        uint16_t aport = 0;
        if (relay_admin_start(&srv->admin, &loop, cfg.admin_listen, render_metrics, srv, log,
                              &aport, stderr) != 0)
            goto out;
        relay_logf(log, RLOG_INFO, "admin_listening", "port=%u", aport);
    }
    if (relay_writer_start(&srv->writer, &loop, srv->store, srv->journal, cfg.batch_max_ops,
                           cfg.batch_max_bytes, relay_server_on_batch, srv) != 0) {
        fprintf(stderr, "alcove-relay: error: cannot start the writer thread\n");
        goto out;
    }
    uv_timer_init(&loop, &srv->sweep);
    uv_timer_init(&loop, &srv->expiry);
    srv->sweep.data = srv->expiry.data = srv;
    uint64_t sweep_ms = sweep_interval(&cfg);
    uv_timer_start(&srv->sweep, on_sweep, sweep_ms, sweep_ms);
    uv_timer_start(&srv->expiry, on_expiry, cfg.expiry_interval_ms, cfg.expiry_interval_ms);
    uv_signal_init(&loop, &srv->sig_term);
    uv_signal_init(&loop, &srv->sig_int);
    uv_signal_init(&loop, &srv->sig_hup);
    srv->sig_term.data = srv->sig_int.data = srv->sig_hup.data = srv;
    uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
    uv_signal_start(&srv->sig_int, on_signal, SIGINT);
    uv_signal_start(&srv->sig_hup, on_signal, SIGHUP);
    signal(SIGPIPE, SIG_IGN);

    alcove_relay_addr a;
    char addr[ALCOVE_ADDR_STR_MAX];
    memcpy(a.key, srv->static_pk, 32);
    snprintf(a.host, sizeof a.host, "%s", host);
    a.host_is_ipv6 = is_v6;
    a.port = port;
    if (alcove_addr_format(&a, addr, sizeof addr) == 0) {
        fprintf(out, "%s\n", addr);
        fflush(out);
    }
    relay_logf(log, RLOG_INFO, "listening", "port=%u max_connections=%u", port, cfg.max_connections);
    (void)sd_notifyf(0, "READY=1\nSTATUS=serving on port %u", port);
    uv_run(&loop, UV_RUN_DEFAULT);
    listening = 0;

out:
    if (loop_ok) {
        if (listening && !srv->draining) {
            /* Start-up failed after binding: close what was opened. */
            uv_close((uv_handle_t *)&srv->listener, NULL);
            relay_admin_close(srv->admin);
            srv->admin = NULL;
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&loop);
    }
    relay_writer_free(srv->writer);
    relay_index_free(srv->index);
    relay_journal_close(srv->journal);
    relay_store_close(srv->store);
    if (lock_fd >= 0)
        close(lock_fd);
    if (srv->static_sk != NULL)
        sodium_free(srv->static_sk);
    rc = srv->exit_code == 0 ? 0 : 1;
    sodium_memzero(srv, sizeof *srv);
    free(srv);
    return rc;
}
