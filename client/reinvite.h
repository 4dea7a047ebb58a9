/* client/reinvite: re-keying an existing contact with a fresh X3DH session,
 * without meeting again (docs/practice.md, "Re-keying a conversation").
 *
 * `alcove reinvite CONTACT` (either side) makes a new one-time prekey and
 * an invite for the SAME mailboxes, signs it with the identity key as
 * every invite is, seals the code with crypto_box_seal to the contact's
 * identity X25519 key (known and verified since the first introduction) and
 * sends it as an Envelope whose kind is intro_sealed.  The contact's app
 * opens it with its identity key, checks that the invite is signed by the
 * identity it already knows, and answers at once with an ordinary intro
 * sealed to the new prekey (X3DH, fresh ratchet), queued in its outbox.
 * The offerer opens that intro with the pending prekey and both sides now
 * share a new session: no message key of the old one is ever used again.
 * When both offer at once, the offer of the side with the smaller sig_pub
 * wins. */
#ifndef ALCOVE_CLIENT_REINVITE_H
#define ALCOVE_CLIENT_REINVITE_H

#include "alcove.pb-c.h"
#include "app.h"
#include "inbox.h"

/* An intro_sealed envelope s arrived in ACTIVE contact c's mailbox: a re-key
 * answer to our offer, a re-key offer from them, or a redelivered intro.
 * Changes c in t (the caller reloads it).  Returns 0 with res->outcome
 * INBOX_REKEYED, INBOX_SKIPPED or INBOX_REJECTED, or a store error. */
int reinvite_take(app *a, cstore_txn *t, Alcove__Local__Contact *c, const Alcove__Wire__Stored *s,
                  uint8_t *content, inbox_result *res);

#endif
