/* client/app: what every `alcove` command shares: the home directory, the
 * unlocked identity, the local store, output conventions, and the contact
 * and message records (alcove.local protobufs) kept in the store.
 *
 * Errors are reported once, where they are understood, with app_error /
 * app_hint (`alcove: error: ...`, `alcove: hint: ...`); command handlers
 * return the process exit code: 0 ok, 1 failure, 2 usage. */
#ifndef ALCOVE_CLIENT_APP_H
#define ALCOVE_CLIENT_APP_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "e2e.pb-c.h"
#include "identity.h"
#include "local.pb-c.h"
#include "cstore.h"

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

#define CONTACT_ID_BYTES 16u
#define MSG_ID_BYTES 16u

typedef struct app {
    char home[PATH_MAX];
    char passphrase_file[PATH_MAX];
    int json;
    alcove_identity *id;
    cstore *store;
    Alcove__Local__Meta *meta;
    uint64_t (*now)(void); /* Unix ms; a parameter so tests could fix it */
} app;

/* Resolve the home: --home, else $ALCOVE_HOME, else $XDG_DATA_HOME/alcove,
 * else ~/.local/share/alcove.  Returns 0 or EXIT_FAIL after an error. */
int app_resolve_home(app *a, const char *flag_home);

/* Paths inside the home. */
void app_path(const app *a, const char *name, char *out, size_t cap);

/* Read the passphrase: $ALCOVE_PASSPHRASE, else --passphrase-file, else the
 * terminal without echo (prompt on /dev/tty).  `confirm` asks twice.
 * *out is sodium_malloc'd (free with sodium_free); returns 0 or EXIT_FAIL. */
int app_passphrase(app *a, const char *prompt, int confirm, char **out, size_t *len);

/* Unlock the identity and open the store and meta record.  Prints what went
 * wrong (no home: run init; wrong passphrase) and returns EXIT_FAIL, or 0. */
int app_open(app *a);
void app_close(app *a);

/* Messages for people. */
void app_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void app_hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void app_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Default wall clock (Unix ms). */
uint64_t app_wall_ms(void);

/* --- records in the store ---------------------------------------------- */

/* Save meta in t.  Returns 0 or an alcove error. */
int app_save_meta(cstore_txn *t, const Alcove__Local__Meta *m);

/* Load one contact by its 16-byte id.  *out must be freed with
 * alcove__local__contact__free_unpacked(*out, NULL).  Returns 0,
 * ALCOVE_ENOTFOUND, ALCOVE_ECORRUPT, ... */
int contact_load(cstore_txn *t, const uint8_t id[16], Alcove__Local__Contact **out);
/* Save (insert or replace) a contact under c->id.  Returns 0 or an error. */
int contact_save(cstore_txn *t, const Alcove__Local__Contact *c);
/* All contacts (any state), in id order.  Free with contact_list_free. */
int contact_list(cstore_txn *t, Alcove__Local__Contact ***out, size_t *n);
void contact_list_free(Alcove__Local__Contact **v, size_t n);
/* Free one contact, wiping it (it holds mailbox and prekey secrets).
 * NULL is a no-op. */
void contact_free(Alcove__Local__Contact *c);
/* Find an ACTIVE or PENDING contact by label (exact, then case-insensitive).
 * Prints `alcove: error: no contact named ...` with a hint listing how to
 * see contacts, and returns EXIT_FAIL, or 0 with *out to free. */
int contact_find(app *a, cstore_txn *t, const char *label, Alcove__Local__Contact **out);

/* Append a message to a contact's thread: key = id || next_local_seq
 * (u64 BE), then increments c->next_local_seq and saves the contact.  If
 * key_out is not NULL it receives the 24-byte key.  Returns 0 or an error. */
int message_append(cstore_txn *t, Alcove__Local__Contact *c, const Alcove__Local__Message *m,
                   uint8_t key_out[24]);
/* Replace the message stored under key (24 bytes). */
int message_put(cstore_txn *t, const uint8_t key[24], const Alcove__Local__Message *m);

/* Ratchet state of a contact: load (ALCOVE_ENOTFOUND if none) and save. */
struct alcove_ratchet;
int session_load(cstore_txn *t, const uint8_t id[16], struct alcove_ratchet **out);
int session_save(cstore_txn *t, const uint8_t id[16], const struct alcove_ratchet *r);

/* Pack any protobuf message into a malloc'd buffer; NULL on allocation failure. */
uint8_t *pb_pack(const ProtobufCMessage *m, size_t *len);

/* Hex of bytes into out (2n+1). */
void hex_encode(const uint8_t *b, size_t n, char *out);

#endif
