/* relay/expiry: message TTL and idle-mailbox expiry, run by a timer.
 * Expired messages are trimmed from the head of each mailbox (messages are
 * in arrival order); idle mailboxes (no connection, nothing pending, unused
 * for --mailbox-idle) are deleted with their messages. */
#include <stdlib.h>

#include "conn.h"


typedef struct expiry_ctx {
    relay_server *srv;
    uint64_t now;
    relay_mbox **idle;
    size_t nidle, cap;
} expiry_ctx;

static void expire_one(relay_mbox *mb, void *arg)
{
    expiry_ctx *x = arg;
    const relay_config *cfg = x->srv->cfg;
    if (cfg->mailbox_idle_ms && mb->refs == 1 && mb->pending_count == 0 &&
        mb->last_seen + cfg->mailbox_idle_ms <= x->now) {
        if (x->nidle == x->cap) {
            size_t ncap = x->cap ? x->cap * 2 : 16;
            relay_mbox **n = realloc(x->idle, ncap * sizeof(relay_mbox *));
            if (n == NULL)
                return;
            x->idle = n;
            x->cap = ncap;
        }
        x->idle[x->nidle++] = mb;
        return;
    }
    if (mb->expiring || mb->count == 0)
        return;
    uint32_t n = 0;
    while (n < mb->count && relay_mbox_msg(mb, n)->received_at + cfg->message_ttl_ms <= x->now)
        n++;
    if (n > 0 && relay_queue_trim(x->srv, NULL, 0, mb, relay_mbox_msg(mb, n - 1)->seq) == 0)
        mb->expiring = 1;
}

void relay_expiry_run(relay_server *srv)
{
    if (srv->draining)
        return;
    expiry_ctx x = {srv, srv->now(srv->now_ctx), NULL, 0, 0};
    relay_index_each(srv->index, expire_one, &x);
    for (size_t i = 0; i < x.nidle; i++)
        (void)relay_queue_delete(srv, NULL, 0, x.idle[i]);
    free(x.idle);
}
