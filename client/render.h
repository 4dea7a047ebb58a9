/* client/render: presenting stored data (contacts, messages, QR codes) on a
 * terminal or as JSON, and reading it back from the store for display.
 * render.c holds the terminal side, render_json.c the JSON side.
 *
 * Everything a peer controls (their display name, texts, notes, tags,
 * notices, questionnaire wording) is untrusted: every function here that
 * prints a string sanitizes it, so a hostile peer cannot send terminal escape
 * sequences.  On a terminal: C0 controls (other than newline and tab in
 * multi-line text), DEL, C1 controls (U+0080-U+009F), bidirectional
 * embedding/override/isolate controls and invalid UTF-8 bytes each print as
 * '?'.  In JSON: strings are valid UTF-8 (jansson escapes C0 controls); C1
 * and bidi controls and invalid bytes become U+FFFD.
 *
 * Output functions do not report stdio errors one by one: callers check
 * ferror()/fflush() on the stream once at the end. */
#ifndef ALCOVE_CLIENT_RENDER_H
#define ALCOVE_CLIENT_RENDER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "app.h"

/* --- decoded content ------------------------------------------------------ */

/* Unpack m->content (a serialized alcove.e2e.Content).  The unpacked message
 * is allocated with render_wipe_allocator, so content_free wipes the
 * plaintext; freeing it with alcove__e2e__content__free_unpacked(*out, NULL)
 * is also correct (it just does not wipe).
 * Returns 0 and *out, ALCOVE_EINVAL (NULL arguments), ALCOVE_ENOTFOUND (the
 * message has no content), ALCOVE_ECORRUPT (it does not unpack). */
int content_decode(const Alcove__Local__Message *m, Alcove__E2e__Content **out);
/* Wipe and free decoded content.  NULL is a no-op. */
void content_free(Alcove__E2e__Content *c);

/* Kind of a Content: "text", "checkin", "intro", "receipt", "leave",
 * "questionnaire", "answers", "notice"; "unknown" for NULL or no body.
 * Static strings; part of the JSON contract. */
const char *content_kind_name(const Alcove__E2e__Content *c);

/* "pending", "active", "left" (or "unknown").  Static strings. */
const char *contact_state_name(Alcove__Local__Contact__State s);

/* A protobuf-c allocator (malloc/free) whose free wipes the block first.
 * Blocks it allocates may be freed with free() or a NULL allocator. */
extern ProtobufCAllocator render_wipe_allocator;

/* Make jansson wipe every block it frees (its values hold plaintext).
 * Idempotent; safe to call at any time (it still allocates with malloc). */
void render_json_secure(void);

/* --- one message ----------------------------------------------------------- */

/* Print one message for people: a header line, then the body indented by
 * two spaces, every line ending in '\n' (no blank line after it):
 *
 *   alice → you  2024-05-01 14:03
 *     check-in: mood 7/10, anxiety 3/10, sleep 6.5 h
 *     note: slept badly
 *     tags: work, sleep
 *
 * Direction is "you → LABEL" for outgoing, "LABEL → you" for incoming; the
 * time is the sender's clock (sent_at, else received_at) in local time;
 * outgoing messages not yet accepted by the relay get "  [queued]".  A
 * message with m->problem shows only "(rejected: PROBLEM)", never its body.
 * c may be NULL (label shown as "?"); m must not be NULL. */
void render_message(FILE *out, const Alcove__Local__Contact *c, const Alcove__Local__Message *m);

/* The same message as a JSON object (new reference; NULL only when out of
 * memory).  The shape is stable; every key listed for a kind is always there,
 * null when the value is absent:
 *
 *   contact      string   the local label
 *   direction    "in" | "out"
 *   msg_id       string   32 hex digits, or null
 *   sent_at      integer  Unix ms, sender's clock, or null
 *   received_at  integer  Unix ms, relay's clock, or null
 *   read         bool
 *   status       "received" | "queued" | "sent"
 *   kind         content_kind_name(), "unknown" if the content is missing or
 *                does not decode
 *   delivered_at, read_at  integer (Unix ms, my clock) when the contact's
 *                receipt arrived, else null (outgoing messages)
 *   problem      string   why the message was rejected, or null; when set,
 *                no kind-specific keys follow
 * kind-specific:
 *   text           text: string
 *   checkin        mood, anxiety: integer|null; sleep_hours: number|null
 *                  (rounded to 0.01); note: string|null; tags: [string]
 *   notice         text: string|null; until: integer (Unix ms)|null
 *   questionnaire  instrument, title: string|null;
 *                  items: [{text: string|null, min, max: integer|null,
 *                           labels: [string]}]
 *   answers        questionnaire_id: hex string|null; instrument:
 *                  string|null; values: [integer]; total: integer
 *   receipt        receipt: "delivered" | "read"; msg_ids: [hex string]
 *   intro          name: string|null (their display name; never the keys)
 *   leave          (nothing more)
 * Dump it with render_json_dump so numbers print as people expect. */
json_t *render_message_json(const Alcove__Local__Contact *c, const Alcove__Local__Message *m);

/* JSON value of a check-in: {mood, anxiety, sleep_hours, note, tags} as
 * above, to which callers may add keys.  NULL only when out of memory. */
json_t *render_checkin_json(const Alcove__E2e__CheckIn *ci);

/* Print "mood 7/10, anxiety 3/10, sleep 6.5 h" with only the fields present
 * ("no values" when none).  Returns nothing; never prints peer strings. */
void render_checkin_values(FILE *out, const Alcove__E2e__CheckIn *ci);

/* Dump j to out with JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(10)
 * and a final newline.  Returns 0 or ALCOVE_EIO. */
int render_json_dump(FILE *out, const json_t *j);

/* Flush out (stdout for the commands) and check it for write errors.  On an
 * error prints `alcove: error: cannot write the output: ...` and returns
 * EXIT_FAIL; else 0. */
int render_flush(FILE *out);

/* --- strings, times, tables ------------------------------------------------ */

/* Print s (NULL prints nothing) on one line, sanitized (newlines and tabs
 * become spaces).  With max_cols > 0, a longer string is cut to fit and ends
 * in "...".  Returns the terminal columns printed (wide CJK and emoji count
 * 2, combining marks 0). */
size_t render_str(FILE *out, const char *s, size_t max_cols);
/* render_str, then spaces up to `width` columns (truncating to width). */
void render_cell(FILE *out, const char *s, size_t width);
/* Columns render_str(out, s, 0) would print. */
size_t render_width(const char *s);
/* Print multi-line text sanitized: tabs and newlines kept, `indent` (may be
 * NULL) printed at the start of every line, a final newline added. */
void render_block(FILE *out, const char *s, const char *indent);
/* A JSON string of s sanitized as described above; json null for NULL.
 * NULL only when out of memory. */
json_t *render_json_str(const char *s);

/* Local time of a Unix-ms timestamp, strftime "%Y-%m-%d %H:%M" (16 chars),
 * or "unknown time" for 0 or an unrepresentable time.  cap >= 17. */
void render_time(uint64_t ms, char *out, size_t cap);
/* Local date, "%Y-%m-%d" (10 chars) or "unknown date" (12).  cap >= 13. */
void render_date(uint64_t ms, char *out, size_t cap);

/* Hours rounded to 0.01 without trailing zeros ("6.5", "7", "7.25"), or
 * "?" for a negative, huge or non-finite value.  cap >= 16. */
void render_hours(float h, char *out, size_t cap);

/* --- QR codes -------------------------------------------------------------- */

/* Print `text` as a QR code (error correction level M) for a terminal:
 * Unicode half blocks, two module rows per line, dark modules drawn in the
 * foreground colour, a quiet zone of 2 modules.  Returns 0, ALCOVE_EINVAL
 * (NULL or empty text), ALCOVE_ETOOBIG (does not fit a QR code),
 * ALCOVE_ENOMEM, ALCOVE_EIO (writing failed). */
int render_qr(FILE *out, const char *text);

/* --- reading for display (used by cmd_show.c and cmd_checkins.c) ----------- */

/* Called for each message of a thread, oldest first, with its 24-byte store
 * key; m (allocated with render_wipe_allocator) is freed after the call
 * unless the callback takes it and sets *m to NULL.  Return 0 to go on. */
typedef int (*render_msg_fn)(void *ctx, const uint8_t key[24], Alcove__Local__Message **m);
/* Iterate the messages of contact c in t.  Returns 0, the callback's
 * non-zero value, ALCOVE_ECORRUPT (a record does not unpack), or
 * cstore_each's errors. */
int render_each_message(cstore_txn *t, const Alcove__Local__Contact *c, render_msg_fn fn,
                        void *ctx);
/* Free a message from render_each_message (wiping it).  NULL is a no-op. */
void render_message_free(Alcove__Local__Message *m);

/* Find a contact by label in any state, including LEFT (their thread stays
 * readable): an exact match, else the only case-insensitive one; a contact
 * that is not LEFT wins over one that is.  Prints the error and a hint and
 * returns EXIT_FAIL, or 0 with *out (free with
 * alcove__local__contact__free_unpacked(*out, NULL)). */
int render_find_contact(cstore_txn *t, const char *label, Alcove__Local__Contact **out);

#endif
