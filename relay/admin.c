#include "admin.h"

#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "err.h"

typedef struct aclient {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wr;
    uv_shutdown_t shut;
    relay_admin *a;
    struct aclient *prev, *next;
    char *resp;
    size_t len;
    int handles; /* handles not yet closed */
    int closing;
    int responded;
    char req[RELAY_ADMIN_REQ_MAX];
} aclient;

struct relay_admin {
    uv_tcp_t listener;
    uv_loop_t *loop;
    relay_admin_render_fn render;
    void *ctx;
    relay_log *log;
    aclient *clients;  /* open, not yet closing */
    unsigned nclients; /* in the list */
    unsigned alive;    /* allocated, closing ones included */
    int closing;
    int listener_open;
};

static void admin_maybe_free(relay_admin *a)
{
    if (a->closing && !a->listener_open && a->alive == 0)
        free(a);
}

static void on_client_handle_closed(uv_handle_t *h)
{
    aclient *c = h->data;
    if (--c->handles > 0)
        return;
    relay_admin *a = c->a;
    free(c->resp);
    free(c);
    a->alive--;
    admin_maybe_free(a);
}

static void client_close(aclient *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    relay_admin *a = c->a;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        a->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    a->nclients--;
    uv_close((uv_handle_t *)&c->tcp, on_client_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
    /* c leaves the list now, but the admin is freed only after c itself
     * (a->alive counts it until its last handle has closed). */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_shutdown(uv_shutdown_t *req, int status)
{
    aclient *c = req->data;
    if (status != 0)
        client_close(c);
}

/* The response is out: send FIN, then read and discard until the peer
 * closes (or the timer fires), so unread request bytes never turn into a
 * reset that destroys the response before the peer reads it. */
static void on_written(uv_write_t *req, int status)
{
    aclient *c = req->data;
    if (c->closing)
        return;
    c->shut.data = c;
    if (status != 0 || uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        client_close(c);
}

static void respond(aclient *c, const char *status, const char *extra, char *body, size_t blen)
{
    char hdr[256];
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->responded = 1;
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     status,
                     body ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8",
                     body ? blen : strlen(status) + 1, extra ? extra : "");
    size_t total = (size_t)n + (body ? blen : strlen(status) + 1);
    c->resp = malloc(total);
    if (n < 0 || (size_t)n >= sizeof hdr || c->resp == NULL) {
        free(body);
        client_close(c);
        return;
    }
    memcpy(c->resp, hdr, (size_t)n);
    if (body != NULL)
        memcpy(c->resp + n, body, blen);
    else {
        memcpy(c->resp + n, status, strlen(status));
        c->resp[total - 1] = '\n';
    }
    free(body);
    uv_buf_t b = uv_buf_init(c->resp, (unsigned)total);
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
        client_close(c);
}

/* The request is complete (c->req[0..c->len) holds the head). */
static void handle_request(aclient *c)
{
    relay_admin *a = c->a;
    char *eol = memchr(c->req, '\n', c->len);
    if (eol == NULL) {
        respond(c, "400 Bad Request", NULL, NULL, 0);
        return;
    }
    *eol = '\0';
    if (eol > c->req && eol[-1] == '\r')
        eol[-1] = '\0';
    char *method = c->req, *path = strchr(method, ' ');
    char *version = path ? strchr(path + 1, ' ') : NULL;
    if (path == NULL || version == NULL || strncmp(version + 1, "HTTP/1.", 7) != 0) {
        respond(c, "400 Bad Request", NULL, NULL, 0);
        return;
    }
    *path++ = '\0';
    *version = '\0';
    if (strcmp(method, "GET") != 0) {
        respond(c, "405 Method Not Allowed", "Allow: GET\r\n", NULL, 0);
        return;
    }
    size_t plen = strcspn(path, "?");
    if (plen != 8 || strncmp(path, "/metrics", 8) != 0) {
        respond(c, "404 Not Found", NULL, NULL, 0);
        return;
    }
    size_t blen = 0;
    char *body = a->render(a->ctx, &blen);
    if (body == NULL) {
        respond(c, "500 Internal Server Error", NULL, NULL, 0);
        return;
    }
    respond(c, "200 OK", NULL, body, blen);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    aclient *c = h->data;
    (void)suggested;
    if (c->responded) { /* discarding */
        buf->base = c->req;
        buf->len = sizeof c->req;
        return;
    }
    buf->base = c->req + c->len;
    buf->len = sizeof c->req - c->len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    aclient *c = s->data;
    (void)buf;
    if (nread < 0) {
        client_close(c);
        return;
    }
    if (c->responded)
        return;
    size_t before = c->len;
    c->len += (size_t)nread;
    /* Look for the blank line that ends the head, from a little before the
     * new bytes (the terminator may straddle two reads). */
    size_t from = before > 3 ? before - 3 : 0;
    for (size_t i = from; i < c->len; i++) {
        if (c->req[i] != '\n')
            continue;
        if ((i >= 1 && c->req[i - 1] == '\n') ||
            (i >= 2 && c->req[i - 1] == '\r' && c->req[i - 2] == '\n')) {
            c->len = i + 1;
            handle_request(c);
            return;
        }
    }
    if (c->len == sizeof c->req)
        respond(c, "400 Bad Request", NULL, NULL, 0);
}

static void on_timeout(uv_timer_t *t)
{
    client_close(t->data);
}

static void on_connection(uv_stream_t *l, int status)
{
    relay_admin *a = l->data;
    if (status < 0 || a->closing)
        return;
    aclient *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    c->a = a;
    c->tcp.data = c->timer.data = c;
    if (uv_tcp_init(a->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    a->alive++;
    if (uv_timer_init(a->loop, &c->timer) != 0) {
        c->handles = 1;
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, on_client_handle_closed);
        return;
    }
    c->handles = 2;
    c->next = a->clients;
    if (a->clients != NULL)
        a->clients->prev = c;
    a->clients = c;
    a->nclients++;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 || a->nclients > RELAY_ADMIN_MAX_CLIENTS) {
        relay_logf(a->log, RLOG_DEBUG, "admin_refused", "clients=%u", a->nclients);
        client_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, RELAY_ADMIN_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        client_close(c);
}

static void on_listener_closed(uv_handle_t *h)
{
    relay_admin *a = h->data;
    a->listener_open = 0;
    admin_maybe_free(a);
}

int relay_admin_start(relay_admin **out, uv_loop_t *loop, const char *hostport,
                      relay_admin_render_fn render, void *ctx, relay_log *log,
                      uint16_t *port_out, FILE *err)
{
    char host[ALCOVE_ADDR_HOST_MAX + 1];
    int v6 = 0, rc;
    uint16_t port = 0;
    const char *why = NULL;
    struct sockaddr_storage ss;
    *out = NULL;
    if (alcove_hostport_parse(hostport, host, sizeof host, &v6, &port, 1, &why) != 0) {
        fprintf(err, "alcove-relay: error: bad admin-listen '%s': %s\n", hostport, why);
        return ALCOVE_EINVAL;
    }
    rc = v6 ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)
            : uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        fprintf(err, "alcove-relay: error: admin-listen needs a numeric IP address, not '%s'\n",
                host);
        return ALCOVE_EINVAL;
    }
    relay_admin *a = calloc(1, sizeof *a);
    if (a == NULL)
        return ALCOVE_ENOMEM;
    a->loop = loop;
    a->render = render;
    a->ctx = ctx;
    a->log = log;
    if (uv_tcp_init(loop, &a->listener) != 0) {
        free(a);
        return ALCOVE_EIO;
    }
    a->listener.data = a;
    a->listener_open = 1;
    if ((rc = uv_tcp_bind(&a->listener, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&a->listener, 16, on_connection)) != 0) {
        fprintf(err, "alcove-relay: error: cannot listen on admin-listen %s: %s\n", hostport,
                uv_strerror(rc));
        a->closing = 1;
        uv_close((uv_handle_t *)&a->listener, on_listener_closed);
        return ALCOVE_EIO;
    }
    int len = sizeof ss;
    if (uv_tcp_getsockname(&a->listener, (struct sockaddr *)&ss, &len) == 0)
        port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    *port_out = port;
    *out = a;
    return 0;
}

void relay_admin_close(relay_admin *a)
{
    if (a == NULL || a->closing)
        return;
    a->closing = 1;
    while (a->clients != NULL)
        client_close(a->clients);
    uv_close((uv_handle_t *)&a->listener, on_listener_closed);
}
