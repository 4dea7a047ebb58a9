/* relay/admin: the optional admin listener, a tiny HTTP/1.0 responder on the
 * relay's libuv loop that serves GET /metrics (Prometheus text format) and
 * nothing else.
 *
 * Each connection may send one request of at most RELAY_ADMIN_REQ_MAX bytes
 * within RELAY_ADMIN_TIMEOUT_MS; it gets one response and is closed.  At most
 * RELAY_ADMIN_MAX_CLIENTS are served at once (more are closed on accept).
 * Other paths answer 404, other methods 405, oversized or malformed requests
 * 400. */
#ifndef ALCOVE_RELAY_ADMIN_H
#define ALCOVE_RELAY_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "log.h"

#define RELAY_ADMIN_REQ_MAX 4096u
#define RELAY_ADMIN_TIMEOUT_MS 5000u
#define RELAY_ADMIN_MAX_CLIENTS 16u

typedef struct relay_admin relay_admin;

/* Produce the /metrics body: a malloc'd buffer the admin listener frees, or
 * NULL (answered 500). */
typedef char *(*relay_admin_render_fn)(void *ctx, size_t *len);

/* Listen on hostport ("HOST:PORT", numeric IP, port 0 picks one) on loop.
 * *port_out receives the bound port.  Returns 0, or ALCOVE_EINVAL (bad
 * address) / ALCOVE_EIO (cannot listen) / ALCOVE_ENOMEM with a message on
 * err; then nothing is left open. */
int relay_admin_start(relay_admin **out, uv_loop_t *loop, const char *hostport,
                      relay_admin_render_fn render, void *ctx, relay_log *log,
                      uint16_t *port_out, FILE *err);

/* Close the listener and every admin connection; the memory is freed in the
 * close callbacks (keep running the loop).  NULL is a no-op. */
void relay_admin_close(relay_admin *a);

#endif
