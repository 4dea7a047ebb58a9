/* bench/engine: connections, windows, the measured phase, latency samples.
 * Single-threaded on libuv; targets plug in through target_ops (bench.h). */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void (*bench_on_ready_hook)(bconn *c);

static uint8_t readbuf[65536]; /* every read is consumed within on_read */

uint64_t bench_now_ns(void) { return uv_hrtime(); }

/* --- latency samples ------------------------------------------------------ */

int lat_init(lat_rec *l, size_t cap)
{
    if (cap == 0)
        cap = 1;
    if (cap > BENCH_MAX_SAMPLES)
        cap = BENCH_MAX_SAMPLES;
    l->ns = malloc(cap * sizeof *l->ns);
    l->n = 0;
    l->sorted = 0;
    l->cap = l->ns ? cap : 0;
    return l->ns ? 0 : -1;
}

void lat_add(lat_rec *l, uint64_t ns)
{
    if (l->n < l->cap) {
        l->ns[l->n++] = ns;
        l->sorted = 0;
    }
}

void lat_free(lat_rec *l)
{
    free(l->ns);
    l->ns = NULL;
    l->n = l->cap = 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

uint64_t lat_quantile(lat_rec *l, double q)
{
    if (l->n == 0)
        return 0;
    if (!l->sorted) {
        qsort(l->ns, l->n, sizeof *l->ns, cmp_u64);
        l->sorted = 1;
    }
    /* Nearest rank: the smallest sample with at least q of them <= it. */
    double rank = q * (double)l->n;
    size_t i = (size_t)rank;
    if ((double)i < rank)
        i++;
    if (i == 0)
        i = 1;
    if (i > l->n)
        i = l->n;
    return l->ns[i - 1];
}

/* --- connection plumbing -------------------------------------------------- */

int bench_init(bench *b, const target_ops *t)
{
    memset(b, 0, sizeof *b);
    b->t = t;
    b->payload = 1024;
    b->window = 1;
    b->nconns = 1;
    b->warmup_s = 0.5;
    b->duration_s = 3.0;
    b->max_count = 1000000;
    b->connect_concurrency = 128;
    b->settle_s = 1.0;
    b->server_pid = -1;
    snprintf(b->host, sizeof b->host, "127.0.0.1");
    if (uv_loop_init(&b->loop) != 0)
        return -1;
    if (uv_timer_init(&b->loop, &b->tick) != 0)
        return -1;
    b->tick.data = b;
    return 0;
}

static void on_handle_closed(uv_handle_t *h) { (void)h; }

void bench_free(bench *b)
{
    uv_close((uv_handle_t *)&b->tick, on_handle_closed);
    (void)uv_run(&b->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&b->loop) != 0)
        fprintf(stderr, "loadgen: warning: libuv loop still has handles at exit\n");
    free(b->conns);
    b->conns = NULL;
    lat_free(&b->lat);
}

static void on_conn_closed(uv_handle_t *h)
{
    bconn *c = h->data;
    bench *b = c->b;
    if (b->t->conn_free != NULL)
        b->t->conn_free(c);
    if (b->conns != NULL && c->idx < b->nopen && b->conns[c->idx] == c)
        b->conns[c->idx] = NULL;
    free(c->priv);
    free(c->out);
    free(c->wbuf);
    free(c->rx);
    free(c->slots);
    free(c);
}

static void close_handle(bconn *c, bconn_state was)
{
    /* RST instead of FIN: thousands of idle connections must not leave
     * thousands of TIME_WAIT ports behind between runs. */
    if (was == BC_CONNECTING ||
        uv_tcp_close_reset(&c->tcp, on_conn_closed) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void check_phase_end(bench *b);

void bconn_fail(bconn *c, const char *why)
{
    bench *b = c->b;
    if (c->closing)
        return;
    c->closing = 1;
    if (b->errmsg[0] == '\0')
        snprintf(b->errmsg, sizeof b->errmsg, "%s conn %u: %s", b->t->name, c->idx, why);
    if (b->verbose)
        fprintf(stderr, "loadgen: %s conn %u: %s\n", b->t->name, c->idx, why);
    if (c->state != BC_READY) {
        b->nfailed++;
        if (b->nconnecting > 0)
            b->nconnecting--;
    } else {
        b->nready--;
        b->errors += c->inflight;
        b->unacked += c->inflight;
        if (b->mode == MODE_LOAD || b->mode == MODE_DRAIN)
            b->errors++;
    }
    c->inflight = 0;
    bconn_state was = c->state;
    c->state = BC_CLOSED;
    close_handle(c, was);
    check_phase_end(b);
}

uint8_t *bconn_reserve(bconn *c, size_t n)
{
    if (c->closing)
        return NULL;
    if (n > BENCH_OUT_CAP || c->out_len > BENCH_OUT_CAP - n) {
        bconn_fail(c, "output queue over its cap");
        return NULL;
    }
    if (c->out_len + n > c->out_cap) {
        size_t ncap = c->out_cap ? c->out_cap : 4096;
        while (ncap < c->out_len + n)
            ncap *= 2;
        if (ncap > BENCH_OUT_CAP)
            ncap = BENCH_OUT_CAP;
        uint8_t *nb = realloc(c->out, ncap);
        if (nb == NULL) {
            bconn_fail(c, "out of memory");
            return NULL;
        }
        c->out = nb;
        c->out_cap = ncap;
    }
    return c->out + c->out_len;
}

void bconn_commit(bconn *c, size_t n) { c->out_len += n; }

int bconn_write(bconn *c, const void *p, size_t n)
{
    uint8_t *dst = bconn_reserve(c, n);
    if (dst == NULL)
        return -1;
    memcpy(dst, p, n);
    bconn_commit(c, n);
    return 0;
}

static void on_write(uv_write_t *req, int status)
{
    bconn *c = req->data;
    c->writing = 0;
    if (c->closing)
        return;
    if (status != 0) {
        bconn_fail(c, uv_strerror(status));
        return;
    }
    bconn_flush(c);
}

void bconn_flush(bconn *c)
{
    if (c->writing || c->closing || c->out_len == 0 || c->state == BC_CONNECTING)
        return;
    /* Swap the queue into the in-flight buffer: everything queued since the
     * last write goes out in one write(2). */
    uint8_t *tmp = c->wbuf;
    size_t tcap = c->wbuf_cap;
    size_t len = c->out_len;
    c->wbuf = c->out;
    c->wbuf_cap = c->out_cap;
    c->out = tmp;
    c->out_cap = tcap;
    c->out_len = 0;
    uv_buf_t buf = uv_buf_init((char *)c->wbuf, (unsigned)len);
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
    if (rc != 0) {
        bconn_fail(c, uv_strerror(rc));
        return;
    }
    c->writing = 1;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = (char *)readbuf;
    buf->len = sizeof readbuf;
}

static int rx_append(bconn *c, const uint8_t *p, size_t n)
{
    if (n > BENCH_RX_CAP || c->rx_len > BENCH_RX_CAP - n) {
        bconn_fail(c, "input over its cap (a reply larger than 256 KiB?)");
        return -1;
    }
    if (c->rx_len + n > c->rx_cap) {
        size_t ncap = c->rx_cap ? c->rx_cap : 4096;
        while (ncap < c->rx_len + n)
            ncap *= 2;
        if (ncap > BENCH_RX_CAP)
            ncap = BENCH_RX_CAP;
        uint8_t *nb = realloc(c->rx, ncap);
        if (nb == NULL) {
            bconn_fail(c, "out of memory");
            return -1;
        }
        c->rx = nb;
        c->rx_cap = ncap;
    }
    memcpy(c->rx + c->rx_len, p, n);
    c->rx_len += n;
    return 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    bconn *c = s->data;
    if (c->closing)
        return;
    if (nread < 0) {
        bconn_fail(c, nread == UV_EOF ? "closed by the server" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0)
        return;
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t n = (size_t)nread;
    if (c->rx_len == 0) {
        long used = c->b->t->on_data(c, p, n);
        if (c->closing)
            return;
        if (used < 0 || (size_t)used > n) {
            bconn_fail(c, "protocol error in a reply");
            return;
        }
        if ((size_t)used < n && rx_append(c, p + used, n - (size_t)used) != 0)
            return;
    } else {
        if (rx_append(c, p, n) != 0)
            return;
        long used = c->b->t->on_data(c, c->rx, c->rx_len);
        if (c->closing)
            return;
        if (used < 0 || (size_t)used > c->rx_len) {
            bconn_fail(c, "protocol error in a reply");
            return;
        }
        memmove(c->rx, c->rx + used, c->rx_len - (size_t)used);
        c->rx_len -= (size_t)used;
    }
    bconn_flush(c);
}

static int open_one(bench *b);

void bconn_ready(bconn *c)
{
    bench *b = c->b;
    if (c->state == BC_READY)
        return;
    c->state = BC_READY;
    b->nready++;
    if (b->nconnecting > 0)
        b->nconnecting--;
    if (bench_on_ready_hook != NULL)
        bench_on_ready_hook(c);
    check_phase_end(b);
}

static void on_connected(uv_connect_t *req, int status)
{
    bconn *c = req->data;
    if (c->closing)
        return;
    if (status != 0) {
        bconn_fail(c, uv_strerror(status));
        return;
    }
    c->state = BC_HANDSHAKE;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc != 0) {
        bconn_fail(c, uv_strerror(rc));
        return;
    }
    if (c->b->t->conn_start(c) != 0) {
        bconn_fail(c, "handshake could not start");
        return;
    }
    bconn_flush(c);
}

static uint32_t connect_target; /* bench_connect's n */

static int open_one(bench *b)
{
    if (b->nopen >= connect_target)
        return 0;
    struct sockaddr_in sa;
    if (uv_ip4_addr(b->host, b->port, &sa) != 0)
        return -1;
    bconn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -1;
    c->b = b;
    c->idx = b->nopen;
    c->state = BC_CONNECTING;
    if (b->t->priv_size > 0 && (c->priv = calloc(1, b->t->priv_size)) == NULL) {
        free(c);
        return -1;
    }
    if (b->window > 0 && b->mode != MODE_IDLE &&
        (c->slots = calloc(b->window, sizeof *c->slots)) == NULL) {
        free(c->priv);
        free(c);
        return -1;
    }
    if (uv_tcp_init(&b->loop, &c->tcp) != 0) {
        free(c->slots);
        free(c->priv);
        free(c);
        return -1;
    }
    c->tcp.data = c;
    b->conns[b->nopen++] = c;
    b->nconnecting++;
    int rc = uv_tcp_nodelay(&c->tcp, 1);
    c->creq.data = c;
    if (rc == 0)
        rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&sa, on_connected);
    if (rc != 0) {
        bconn_fail(c, uv_strerror(rc));
        return 0; /* counted as a failed connection; keep going */
    }
    return 0;
}

static void refill_connects(bench *b)
{
    /* A connect that fails at once calls back into here through
     * bconn_fail: the outer call keeps opening, no recursion. */
    static int active;
    if (active)
        return;
    active = 1;
    while (b->nopen < connect_target && b->nconnecting < b->connect_concurrency)
        if (open_one(b) != 0) {
            /* Local resource failure (memory, fds): count and stop opening. */
            b->nfailed += connect_target - b->nopen;
            connect_target = b->nopen;
            break;
        }
    active = 0;
}

/* --- phases ---------------------------------------------------------------- */

static int connect_phase;

static void check_phase_end(bench *b)
{
    if (connect_phase) {
        refill_connects(b);
        if (b->nready + b->nfailed >= connect_target && b->nconnecting == 0)
            bench_stop_phase(b);
        return;
    }
    if (b->mode == MODE_LOAD && b->stopped_issuing) {
        for (uint32_t i = 0; i < b->nopen; i++)
            if (b->conns[i] != NULL && !b->conns[i]->closing && b->conns[i]->inflight > 0)
                return;
        bench_stop_phase(b);
    }
}

void bench_stop_phase(bench *b)
{
    b->phase_done = 1;
    uv_stop(&b->loop);
}

static void on_deadline(uv_timer_t *t)
{
    bench *b = t->data;
    bench_stop_phase(b);
}

int bench_run_phase(bench *b, double timeout_s)
{
    uv_timer_t dl;
    if (uv_timer_init(&b->loop, &dl) != 0)
        return -1;
    dl.data = b;
    uint64_t ms = timeout_s <= 0 ? 1 : (uint64_t)(timeout_s * 1000.0);
    if (uv_timer_start(&dl, on_deadline, ms, 0) != 0) {
        uv_close((uv_handle_t *)&dl, on_handle_closed);
        return -1;
    }
    b->phase_done = 0;
    while (!b->phase_done)
        if (uv_run(&b->loop, UV_RUN_DEFAULT) == 0 && !b->phase_done)
            break; /* nothing left to run */
    int timed_out = uv_is_active((uv_handle_t *)&dl) ? 0 : 1;
    uv_timer_stop(&dl);
    uv_close((uv_handle_t *)&dl, on_handle_closed);
    (void)uv_run(&b->loop, UV_RUN_NOWAIT); /* let the close finish */
    return timed_out ? 1 : 0;
}

int bench_connect(bench *b, uint32_t n, double timeout_s)
{
    if (n > BENCH_MAX_CONNS)
        return -1;
    if (b->conns == NULL) {
        b->conns = calloc(BENCH_MAX_CONNS, sizeof *b->conns);
        if (b->conns == NULL)
            return -1;
    }
    connect_target = n;
    connect_phase = 1;
    refill_connects(b);
    int rc = 0;
    if (b->nready + b->nfailed < connect_target || b->nconnecting > 0)
        rc = bench_run_phase(b, timeout_s);
    connect_phase = 0;
    if (rc == 1)
        fprintf(stderr, "loadgen: connect phase timed out: %u ready, %u failed, %u pending\n",
                b->nready, b->nfailed, b->nconnecting);
    return rc == 0 ? 0 : -1;
}

static int issue(bench *b, bconn *c, uint64_t now)
{
    if (b->stopped_issuing)
        return 0;
    if (b->issued >= b->max_count || now >= b->t1) {
        b->stopped_issuing = 1;
        return 0;
    }
    if (c->closing || c->state != BC_READY || c->inflight >= b->window)
        return 0;
    uint64_t id = 0;
    if (b->t->send_msg(c, &id) != 0) {
        if (!c->closing)
            bconn_fail(c, "send failed");
        return -1;
    }
    c->slots[c->inflight].wire_id = id;
    c->slots[c->inflight].t_ns = now;
    c->inflight++;
    c->sent++;
    b->issued++;
    return 1;
}

static void sample_start(bench *b)
{
    proc_stat ps;
    b->srv_cpu0 = proc_read(b->server_pid, &ps) == 0 ? ps.cpu_s : -1;
    b->cli_cpu0 = self_cpu_s();
    b->sampled0 = 1;
}

static int sampled1;

static void sample_end(bench *b)
{
    proc_stat ps;
    b->srv_cpu1 = proc_read(b->server_pid, &ps) == 0 ? ps.cpu_s : -1;
    b->cli_cpu1 = self_cpu_s();
    sampled1 = 1;
}

void bconn_acked(bconn *c, uint64_t wire_id, int ok)
{
    bench *b = c->b;
    uint64_t now = bench_now_ns();
    uint32_t i;
    for (i = 0; i < c->inflight; i++)
        if (c->slots[i].wire_id == wire_id)
            break;
    if (i == c->inflight) {
        bconn_fail(c, "reply to a request not in flight");
        return;
    }
    uint64_t t_sent = c->slots[i].t_ns;
    c->slots[i] = c->slots[--c->inflight];
    c->acked++;
    b->acked_total++;
    if (!ok) {
        b->errors++;
        if (b->errmsg[0] == '\0')
            snprintf(b->errmsg, sizeof b->errmsg, "%s: a write was refused", b->t->name);
    } else if (now >= b->t0 && now <= b->t1 && t_sent >= b->t0) {
        b->acked_ok_window++;
        lat_add(&b->lat, now - t_sent);
        b->t_last_ack = now;
    }
    if (b->rate <= 0) {
        while (c->inflight < b->window && !b->stopped_issuing)
            if (issue(b, c, now) <= 0)
                break;
    }
    if (b->stopped_issuing)
        check_phase_end(b);
}

static void on_tick(uv_timer_t *t)
{
    bench *b = t->data;
    uint64_t now = bench_now_ns();
    if (!b->sampled0 && now >= b->t0)
        sample_start(b);
    if (!sampled1 && (now >= b->t1 || b->issued >= b->max_count))
        sample_end(b);
    if (now >= b->t1 || b->issued >= b->max_count) {
        b->stopped_issuing = 1;
        check_phase_end(b);
        return;
    }
    if (b->rate > 0) {
        double due = (double)(now - b->t_start) * b->rate / 1e9;
        while ((double)b->issued < due && !b->stopped_issuing) {
            bconn *c = NULL;
            for (uint32_t k = 0; k < b->nopen; k++) {
                bconn *x = b->conns[(b->rr + k) % b->nopen];
                if (x != NULL && !x->closing && x->state == BC_READY && x->inflight < b->window) {
                    c = x;
                    b->rr = (b->rr + k + 1) % b->nopen;
                    break;
                }
            }
            if (c == NULL) {
                b->stalls++;
                break;
            }
            if (issue(b, c, now) <= 0)
                break;
            bconn_flush(c);
        }
    }
}

int bench_load(bench *b)
{
    lat_free(&b->lat);
    size_t cap = b->max_count < BENCH_MAX_SAMPLES ? (size_t)b->max_count : BENCH_MAX_SAMPLES;
    if (lat_init(&b->lat, cap) != 0)
        return -1;
    b->issued = b->acked_total = b->acked_ok_window = 0;
    b->stopped_issuing = 0;
    b->sampled0 = 0;
    sampled1 = 0;
    b->stalls = 0;
    b->t_start = bench_now_ns();
    b->t0 = b->t_start + (uint64_t)(b->warmup_s * 1e9);
    b->t1 = b->t0 + (uint64_t)(b->duration_s * 1e9);
    b->t_last_ack = b->t0;
    if (b->warmup_s <= 0)
        sample_start(b);
    uint64_t tick_ms = b->rate > 0 ? 1 : 10;
    if (uv_timer_start(&b->tick, on_tick, tick_ms, tick_ms) != 0)
        return -1;
    if (b->rate <= 0) {
        uint64_t now = bench_now_ns();
        for (uint32_t i = 0; i < b->nopen; i++) {
            bconn *c = b->conns[i];
            if (c == NULL)
                continue;
            while (c->inflight < b->window && !b->stopped_issuing)
                if (issue(b, c, now) <= 0)
                    break;
            bconn_flush(c);
        }
    }
    /* Outstanding replies get 15 s after the measured window closes. */
    int rc = bench_run_phase(b, b->warmup_s + b->duration_s + 15.0);
    uv_timer_stop(&b->tick);
    if (!sampled1)
        sample_end(b);
    if (rc == 1) {
        for (uint32_t i = 0; i < b->nopen; i++)
            if (b->conns[i] != NULL)
                b->unacked += b->conns[i]->inflight;
        b->errors += b->unacked;
        if (b->errmsg[0] == '\0')
            snprintf(b->errmsg, sizeof b->errmsg, "%llu requests never answered",
                     (unsigned long long)b->unacked);
    }
    return rc < 0 ? -1 : 0;
}

void bench_close_all(bench *b)
{
    uv_timer_stop(&b->tick);
    for (uint32_t i = 0; i < b->nopen; i++) {
        bconn *c = b->conns ? b->conns[i] : NULL;
        if (c == NULL || c->closing)
            continue;
        c->closing = 1;
        bconn_state was = c->state;
        c->state = BC_CLOSED;
        close_handle(c, was);
    }
    /* Only the (stopped) tick timer stays: run until every close is done. */
    for (int spins = 0; spins < 1000; spins++) {
        int open = 0;
        for (uint32_t i = 0; i < b->nopen && !open; i++)
            open = b->conns[i] != NULL;
        if (!open)
            break;
        (void)uv_run(&b->loop, UV_RUN_NOWAIT);
    }
    b->nready = 0;
}
