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

/* Options of one send (all may be 0/NULL). */
typedef struct outbox_opts {
    int quiet;                       /* print nothing (receipts, notices, goodbyes) */
    const char *audit_event;         /* default AUDIT_MESSAGE_SENT */
    Alcove__Local__Band **bands;     /* kept with a custom questionnaire */
    size_t n_bands;
    uint8_t msg_id_out[16];          /* receives the new message id */
} outbox_opts;

/* Seal ct (msg_id and sent_at are filled in here) for the contact named
 * label and deliver it.  `what` names it in messages ("message",
 * "check-in").  Prints the outcome; returns an exit code.
 *
 * Restore safety: a session restored from a backup (contact has
 * restored_dh_pub) sends nothing while its sending ratchet key is still the
 * backed-up one: the lost copy may have used those keys.  That is refused
 * with an error and a hint (wait for the peer's next message, which steps
 * the ratchet to a fresh key, or `alcove reinvite`). */
int outbox_send(app *a, netpool *np, const char *label, Alcove__E2e__Content *ct,
                const char *what);
/* The same with options (o may be NULL). */
int outbox_send_to_label(app *a, netpool *np, const char *label, Alcove__E2e__Content *ct,
                         const char *what, outbox_opts *o);
/* The same for the contact with id cid, with options (o may be NULL). */
int outbox_send_to(app *a, netpool *np, const uint8_t cid[16], Alcove__E2e__Content *ct,
                   const char *what, outbox_opts *o);

/* Does the user send receipts of this kind (read != 0: read receipts) to c?
 * Unset settings take the default of the role: the inviter (therapist)
 * sends delivered receipts, nobody sends read receipts. */
int outbox_receipts_wanted(const Alcove__Local__Contact *c, int read);

/* 1 when the contact's session may not send yet (restored, not re-keyed),
 * judged from its stored session; 0 otherwise. */
int outbox_restore_blocked(cstore_txn *t, const Alcove__Local__Contact *c);

/* Fill *m as an outgoing, QUEUED message for Content ct (its msg_id and
 * sent_at), packed as content[0..clen) and sealed as blob[0..blen).  The
 * record points into those buffers; nothing is copied. */
void outbox_queued_record(Alcove__Local__Message *m, const Alcove__E2e__Content *ct,
                          uint8_t *content, size_t clen, uint8_t *blob, size_t blen);

/* Deliver every QUEUED message of every contact, oldest first.  Returns the
 * number still queued, or a negative alcove error for a store failure. */
int outbox_flush(app *a, netpool *np);

/* Deliver one queued message stored under key (24 bytes) of contact c.
 * Returns the relay Status (0 = sent and marked SENT), or a negative error. */
int outbox_deliver(app *a, netpool *np, const Alcove__Local__Contact *c, const uint8_t key[24],
                   Alcove__Local__Message *m);

#endif
