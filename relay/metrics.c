#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static const char *const cmd_names[] = {
#define RELAY_MC_NAME(n, s) s,
    RELAY_METRIC_CMDS(RELAY_MC_NAME)
#undef RELAY_MC_NAME
};

static const char *const status_names[RELAY_METRIC_NSTATUS] = {
    "ok",           "bad_request",  "unauthorized", "not_found", "quota_exceeded",
    "too_large",    "rate_limited", "unavailable",  "internal",
};

relay_metric_cmd relay_metric_cmd_of(int cmd_case)
{
    /* Request.cmd field numbers 2 (hello) .. 10 (ping), in table order. */
    if (cmd_case >= 2 && cmd_case <= 10)
        return (relay_metric_cmd)(cmd_case - 1);
    return RELAY_MCMD_NONE;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void put(sbuf *b, const char *fmt, ...)
{
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    /* A false positive: va_start is just above (the analyzer loses it when it
     * inlines a variadic function). */
    // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
    int n = b->oom ? -1 : vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    if (n >= 0 && (size_t)n >= b->cap - b->len) {
        /* Too small: grow once to fit, then format again. */
        size_t ncap = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, ncap);
        if (np != NULL) {
            b->p = np;
            b->cap = ncap;
            n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, again);
        } else {
            n = -1;
        }
    }
    va_end(again);
    va_end(ap);
    if (n < 0)
        b->oom = 1;
    else
        b->len += (size_t)n;
}

static void head(sbuf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(sbuf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    head(b, name, type, help);
    put(b, "%s %llu\n", name, (unsigned long long)v);
}

/* Buckets lo..hi of a log2 histogram; `scale` divides the bounds and the
 * sum (1e6 turns microseconds into seconds). */
static void hist(sbuf *b, const char *name, const char *help, const relay_hist *h, int lo,
                 int hi, double scale)
{
    head(b, name, "histogram", help);
    uint64_t cum = 0;
    for (int i = 0; i < RELAY_HIST_BUCKETS; i++) {
        cum += h->bucket[i];
        if (i >= lo && i <= hi)
            put(b, "%s_bucket{le=\"%.9g\"} %llu\n", name, (double)(1ull << i) / scale,
                (unsigned long long)cum);
    }
    put(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    put(b, "%s_sum %.9g\n", name, (double)h->sum / scale);
    put(b, "%s_count %llu\n", name, (unsigned long long)h->count);
}

typedef struct store_sums {
    uint64_t messages, bytes;
} store_sums;

static void sum_mbox(relay_mbox *mb, void *arg)
{
    store_sums *s = arg;
    s->messages += mb->count;
    s->bytes += mb->bytes;
}

char *relay_metrics_render(relay_server *srv, size_t *len)
{
    sbuf b = {malloc(16384), 0, 16384, 0};
    const relay_metrics *m = &srv->metrics;
    if (b.p == NULL)
        return NULL;

    head(&b, "alcove_relay_info", "gauge", "Version of this relay (always 1).");
    put(&b, "alcove_relay_info{version=\"%s\",protocol=\"1\"} 1\n", ALCOVE_VERSION);
    head(&b, "alcove_start_time_seconds", "gauge", "When the relay started (Unix time).");
    put(&b, "alcove_start_time_seconds %.3f\n", (double)m->start_time_ms / 1000.0);
    one(&b, "alcove_draining", "gauge", "1 while the relay drains after SIGTERM.",
        (uint64_t)(srv->draining != 0));

    one(&b, "alcove_connections_open", "gauge", "Client connections open now.", srv->nconns);
    one(&b, "alcove_connections_max", "gauge", "The max-connections limit in force.",
        srv->cfg->max_connections);
    one(&b, "alcove_connections_total", "counter", "Client connections accepted.", srv->accepted);
    one(&b, "alcove_connections_refused_total", "counter",
        "Connections closed at once because max-connections was reached.",
        srv->closes[CLOSE_CONN_LIMIT]);
    head(&b, "alcove_connections_closed_total", "counter", "Connections closed, by reason.");
    for (int r = 0; r < CLOSE__COUNT; r++)
        put(&b, "alcove_connections_closed_total{reason=\"%s\"} %llu\n",
            relay_close_reason_name((relay_close_reason)r), (unsigned long long)srv->closes[r]);
    head(&b, "alcove_handshakes_total", "counter", "Noise handshakes, by result.");
    put(&b, "alcove_handshakes_total{result=\"ok\"} %llu\n", (unsigned long long)m->handshakes_ok);
    put(&b, "alcove_handshakes_total{result=\"failed\"} %llu\n",
        (unsigned long long)srv->closes[CLOSE_HANDSHAKE_FAILED]);

    head(&b, "alcove_requests_total", "counter", "Requests answered, by command and status.");
    for (int c = 0; c < RELAY_MCMD__COUNT; c++)
        for (int s = 0; s < RELAY_METRIC_NSTATUS; s++)
            if (m->requests[c][s] != 0 || (c != RELAY_MCMD_NONE && s == 0))
                put(&b, "alcove_requests_total{command=\"%s\",status=\"%s\"} %llu\n",
                    cmd_names[c], status_names[s], (unsigned long long)m->requests[c][s]);
    one(&b, "alcove_received_bytes_total", "counter",
        "Bytes read from client connections (framing and encryption included).", m->bytes_in);
    one(&b, "alcove_sent_bytes_total", "counter",
        "Bytes queued to client connections (framing and encryption included).", m->bytes_out);

    relay_writer_stats ws = relay_writer_get_stats(srv->writer);
    hist(&b, "alcove_commit_batch_ops", "Operations per group commit.", &ws.batch_ops, 0, 12, 1.0);
    hist(&b, "alcove_commit_duration_seconds",
         "Time of one group commit: apply, journal write and fdatasync, commit.", &ws.commit_us,
         6, 22, 1e6);
    one(&b, "alcove_journal_written_bytes_total", "counter",
        "Bytes of batch records written to the journal.", ws.journal_bytes);
    hist(&b, "alcove_checkpoint_duration_seconds",
         "Time of one checkpoint: data.mdb fdatasync and the journal slot.", &ws.checkpoint_us, 6,
         22, 1e6);
    one(&b, "alcove_checkpoint_failures_total", "counter",
        "Checkpoints that failed (a data.mdb sync or the journal slot write).",
        ws.checkpoint_failures);
    one(&b, "alcove_checkpoint_broken", "gauge",
        "1 after a failed data.mdb sync: no checkpoint until restart; writes fail once the "
        "journal is full.",
        (uint64_t)ws.checkpoint_broken);
    one(&b, "alcove_commit_failures_total", "counter",
        "Group commits that failed (fsync or other storage error, or the store cap reached).",
        ws.failed_batches);
    head(&b, "alcove_write_failures_total", "counter",
         "Writes answered with an error, by reason (store_full: max-store reached).");
    put(&b, "alcove_write_failures_total{reason=\"store_full\"} %llu\n",
        (unsigned long long)m->failed_ops_full);
    put(&b, "alcove_write_failures_total{reason=\"storage_error\"} %llu\n",
        (unsigned long long)m->failed_ops_io);
    one(&b, "alcove_writer_queue_ops", "gauge", "Writes queued or being committed.",
        relay_writer_inflight(srv->writer));
    one(&b, "alcove_store_map_grows_total", "counter", "Times the LMDB map was grown.",
        ws.map_grows);

    store_sums sums = {0, 0};
    relay_index_each(srv->index, sum_mbox, &sums);
    one(&b, "alcove_mailboxes", "gauge", "Mailboxes.", relay_index_count(srv->index));
    one(&b, "alcove_stored_messages", "gauge", "Messages stored and not yet acknowledged.",
        sums.messages);
    one(&b, "alcove_stored_bytes", "gauge", "Blob bytes of the stored messages.", sums.bytes);
    one(&b, "alcove_expired_messages_total", "counter", "Messages deleted by TTL expiry.",
        m->expired_messages);
    one(&b, "alcove_expired_mailboxes_total", "counter",
        "Mailboxes deleted by idle-mailbox expiry.", m->expired_mailboxes);

    uint64_t used = 0, map = 0;
    if (relay_store_usage(srv->store, &used, &map) == 0) {
        one(&b, "alcove_store_map_size_bytes", "gauge", "Size of the LMDB map.", map);
        one(&b, "alcove_store_used_bytes", "gauge",
            "LMDB pages in use, up to the highest one (free pages inside count).", used);
    }
    one(&b, "alcove_store_max_bytes", "gauge", "The max-store cap (0: none).",
        srv->cfg->max_store_bytes);
    head(&b, "alcove_config_reloads_total", "counter", "SIGHUP reloads, by result.");
    put(&b, "alcove_config_reloads_total{result=\"ok\"} %llu\n", (unsigned long long)m->reloads_ok);
    put(&b, "alcove_config_reloads_total{result=\"failed\"} %llu\n",
        (unsigned long long)m->reloads_failed);

    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
