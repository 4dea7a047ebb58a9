/* client/outbox: sealing content for a contact and delivering it.
 *
 * Order of durability: the ratchet step and the sealed envelope are
 * committed locally (as a QUEUED message) before anything goes to the
 * relay, so a crash can never reuse a message key; the message turns SENT
 * once the relay acknowledges it durably.  QUEUED messages are retried, in
 * order, by the next send or fetch (the receiver drops duplicates). */
#ifndef ALCOVE_CLIENT_OUTBOX_H
#define ALCOVE_CLIENT_OUTBOX_H

#include "app.h"
#include "net.h"

/* Seal ct (msg_id and sent_at are filled in here) for the contact named
 * label and deliver it.  `what` names it in messages ("message",
 * "check-in").  Prints the outcome; returns an exit code. */
int outbox_send(app *a, netpool *np, const char *label, Alcove__E2e__Content *ct,
                const char *what);

/* Deliver every QUEUED message of every contact, oldest first.  Returns the
 * number still queued, or a negative alcove error for a store failure. */
int outbox_flush(app *a, netpool *np);

/* Deliver one queued message stored under key (24 bytes) of contact c.
 * Returns the relay Status (0 = sent and marked SENT), or a negative error. */
int outbox_deliver(app *a, netpool *np, const Alcove__Local__Contact *c, const uint8_t key[24],
                   Alcove__Local__Message *m);

#endif
