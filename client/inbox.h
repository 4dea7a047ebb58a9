/* client/inbox: taking one message from a mailbox into the local store.
 *
 * Called inside a write transaction; everything it changes (the message,
 * the ratchet state, the contact's last seq, an intro's new session) is in
 * that transaction, so a crash can neither desynchronise a session nor show
 * a message twice.  The caller commits, and only then acks the relay. */
#ifndef ALCOVE_CLIENT_INBOX_H
#define ALCOVE_CLIENT_INBOX_H

#include "alcove.pb-c.h"
#include "app.h"

typedef enum inbox_outcome {
    INBOX_SKIPPED,  /* seq already stored, or a duplicate: dropped quietly */
    INBOX_STORED,   /* a new message, stored unread */
    INBOX_INTRO,    /* an intro: the contact is now active */
    INBOX_REJECTED, /* not shown as valid; reason in `why`, acked anyway */
    INBOX_RECEIPT,  /* a receipt: the referenced messages are marked, nothing stored */
    INBOX_REKEYED,  /* a re-key (reinvite) completed: a fresh session replaced the old */
} inbox_outcome;

typedef struct inbox_result {
    inbox_outcome outcome;
    const char *why;     /* static text, for INBOX_REJECTED */
    uint8_t key[24];     /* CS_MESSAGES key of a stored message */
    int body;            /* Alcove__E2e__Content__BodyCase of a stored message */
    uint8_t msg_id[16];  /* its msg_id (INBOX_STORED) */
    int undecryptable;   /* INBOX_REJECTED because it did not authenticate */
    int queued_reply;    /* a re-key answer was queued: flush the outbox */
} inbox_result;

/* Take Stored message s that arrived in contact *cp's inbox.  Updates the
 * contact in t and in memory (*cp may be replaced by a reloaded copy).  Returns 0 with *res filled, or a negative
 * alcove error for a storage failure (then the transaction must be
 * aborted and nothing acked). */
int inbox_take(app *a, cstore_txn *t, Alcove__Local__Contact **cp, const Alcove__Wire__Stored *s,
               inbox_result *res);

/* Check a received Content against DESIGN §5 (msg_id 16 bytes, mood and
 * anxiety 0-10, sleep 0-24, questionnaire and answer shapes).  Returns NULL
 * if valid, else a static reason. */
const char *content_invalid(const Alcove__E2e__Content *ct);

#endif
