#include "outbox.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "audit.h"
#include "err.h"
#include "render.h"

/* 1 when m carries a Receipt: receipts are not part of the thread, so their
 * record lives only until the relay has them. */
static int is_receipt(const Alcove__Local__Message *m)
{
    Alcove__E2e__Content *ct = NULL;
    if (!m->has_content ||
        (ct = alcove__e2e__content__unpack(NULL, m->content.len, m->content.data)) == NULL)
        return 0;
    int r = ct->body_case == ALCOVE__E2E__CONTENT__BODY_RECEIPT;
    alcove__e2e__content__free_unpacked(ct, NULL);
    return r;
}

static void mark(app *a, const uint8_t key[24], Alcove__Local__Message *m, int status,
                 const char *problem)
{
    cstore_txn *t = NULL;
    int drop = problem == NULL && is_receipt(m);
    if (problem != NULL) {
        m->problem = (char *)(uintptr_t)problem;
    } else {
        m->has_status = 1;
        m->status = (Alcove__Local__Message__Status)status;
        m->has_envelope = 0; /* delivered: the sealed copy is not needed */
    }
    int rc = cstore_begin(a->store, 1, &t);
    if (rc == 0)
        rc = drop ? cstore_del(t, CS_MESSAGES, key, 24) : message_put(t, key, m);
    if (rc == 0) {
        rc = cstore_commit(t);
        t = NULL;
    }
    cstore_abort(t);
    if (rc != 0)
        app_warn("could not record the delivery locally (%s); it may be sent again, and the "
                 "receiver will drop the duplicate",
                 alcove_strerror(rc));
}

/* Test hook: with ALCOVE_TEST_BLOB_LOG=PATH, every blob the relay accepted
 * is appended to PATH as one line of hex (public ciphertext only), so the
 * restore tests can compare ratchet headers before and after a restore. */
static void test_blob_log(const uint8_t *blob, size_t len, int status)
{
    const char *path = getenv("ALCOVE_TEST_BLOB_LOG");
    if (path == NULL || *path == '\0' || status != 0)
        return;
    FILE *f = fopen(path, "a");
    if (f == NULL)
        return;
    for (size_t i = 0; i < len; i++)
        fprintf(f, "%02x", blob[i]);
    fputc('\n', f);
    fclose(f);
}

int outbox_deliver(app *a, netpool *np, const Alcove__Local__Contact *c, const uint8_t key[24],
                   Alcove__Local__Message *m)
{
    if (c->outbox == NULL || c->outbox->relay_address == NULL || c->outbox->send_id.len != 16 ||
        c->outbox->send_secret.len != 32 || !m->has_envelope)
        return ALCOVE_ESTATE;
    net *n = netpool_get(np, c->outbox->relay_address);
    if (n == NULL)
        return ALCOVE_ECONNECT;
    int st = net_send(n, c->outbox->send_id.data, c->outbox->send_secret.data, m->envelope.data,
                      m->envelope.len);
    test_blob_log(m->envelope.data, m->envelope.len, st);
    if (st == 0)
        mark(a, key, m, ALCOVE__LOCAL__MESSAGE__STATUS__SENT, NULL);
    else if (st > 0 && net_status_permanent(st))
        mark(a, key, m, 0, net_status_text(st));
    return st;
}

int outbox_receipts_wanted(const Alcove__Local__Contact *c, int read)
{
    if (read)
        return c->has_receipts_read && c->receipts_read;
    return c->has_receipts_delivered ? c->receipts_delivered : c->inviter;
}

int outbox_restore_blocked(cstore_txn *t, const Alcove__Local__Contact *c)
{
    alcove_ratchet *r = NULL;
    uint8_t pub[32];
    if (!c->has_restored_dh_pub || c->restored_dh_pub.len != 32)
        return 0;
    if (session_load(t, c->id.data, &r) != 0)
        return 0;
    int same = alcove_ratchet_sending_pub(r, pub) == 0 &&
               sodium_memcmp(pub, c->restored_dh_pub.data, 32) == 0;
    alcove_ratchet_free(r);
    return same;
}

void outbox_queued_record(Alcove__Local__Message *m, const Alcove__E2e__Content *ct,
                          uint8_t *content, size_t clen, uint8_t *blob, size_t blen)
{
    alcove__local__message__init(m);
    m->has_msg_id = 1;
    m->msg_id = ct->msg_id;
    m->has_outgoing = m->outgoing = 1;
    m->has_sent_at = 1;
    m->sent_at = ct->sent_at;
    m->has_content = 1;
    m->content = (ProtobufCBinaryData){clen, content};
    m->has_read = m->read = 1; /* one's own message is never unread */
    m->has_status = 1;
    m->status = ALCOVE__LOCAL__MESSAGE__STATUS__QUEUED;
    m->has_envelope = 1;
    m->envelope = (ProtobufCBinaryData){blen, blob};
}

int outbox_send(app *a, netpool *np, const char *label, Alcove__E2e__Content *ct,
                const char *what)
{
    return outbox_send_to_label(a, np, label, ct, what, NULL);
}

int outbox_send_to_label(app *a, netpool *np, const char *label, Alcove__E2e__Content *ct,
                         const char *what, outbox_opts *o)
{
    Alcove__Local__Contact *c = NULL;
    cstore_txn *t = NULL;
    uint8_t cid[CONTACT_ID_BYTES];
    int e;
    if ((e = cstore_begin(a->store, 0, &t)) != 0) {
        app_error("cannot open the local store: %s", alcove_strerror(e));
        return EXIT_FAIL;
    }
    if (contact_find(a, t, label, &c) != 0) {
        cstore_abort(t);
        return EXIT_FAIL;
    }
    cstore_abort(t);
    memcpy(cid, c->id.data, sizeof cid);
    contact_free(c);
    return outbox_send_to(a, np, cid, ct, what, o);
}

static int notice_current(const Alcove__Local__Contact *c, uint64_t now)
{
    return c->notice != NULL && *c->notice &&
           !(c->has_notice_until && c->notice_until != 0 && c->notice_until <= now);
}

int outbox_send_to(app *a, netpool *np, const uint8_t cid_in[16], Alcove__E2e__Content *ct,
                   const char *what, outbox_opts *o)
{
    Alcove__Local__Contact *c = NULL;
    cstore_txn *t = NULL;
    alcove_ratchet *r = NULL;
    uint8_t *content = NULL, *blob = NULL;
    size_t clen = 0, blen = 0;
    uint8_t msg_id[MSG_ID_BYTES], key[24], cid[CONTACT_ID_BYTES];
    int rc = EXIT_FAIL, e, quiet = o != NULL && o->quiet;
    const char *label = "?";

    memcpy(cid, cid_in, sizeof cid);
    /* Look at the contact and reach its relay before taking the write lock:
     * other alcove processes (listen) must not wait on the network. */
    if ((e = cstore_begin(a->store, 0, &t)) != 0 || (e = contact_load(t, cid, &c)) != 0) {
        app_error("cannot read the contact: %s", alcove_strerror(e));
        goto out;
    }
    cstore_abort(t);
    t = NULL;
    label = c->label ? c->label : "?";
    if (c->state == ALCOVE__LOCAL__CONTACT__STATE__PENDING) {
        if (!quiet) {
            app_error("%s has not accepted your invite yet", label);
            app_hint("run 'alcove fetch' to pick up their introduction");
        }
        goto out;
    }
    if (c->state == ALCOVE__LOCAL__CONTACT__STATE__LEFT || c->outbox == NULL) {
        if (!quiet)
            app_error("%s has left; messages can no longer be delivered", label);
        goto out;
    }
    /* Learn the receiving relay's limit before spending a ratchet step. */
    net *n = netpool_get(np, c->outbox->relay_address);
    if (n == NULL)
        goto out;
    randombytes_buf(msg_id, sizeof msg_id);
    ct->has_msg_id = 1;
    ct->msg_id.data = msg_id;
    ct->msg_id.len = sizeof msg_id;
    ct->has_sent_at = 1;
    ct->sent_at = a->now();
    if ((content = pb_pack(&ct->base, &clen)) == NULL ||
        (blob = malloc(ALCOVE_ENVELOPE_MAX)) == NULL) {
        app_error("out of memory");
        goto out;
    }
    if (clen > ALCOVE_PAD_MAX_CONTENT) {
        app_error("this %s is too long (%zu bytes; at most %u)", what, clen,
                  (unsigned)ALCOVE_PAD_MAX_CONTENT);
        goto out;
    }
    /* Now the write transaction: reload the contact (another process may
     * have changed it) and take the ratchet step. */
    contact_free(c);
    c = NULL;
    if ((e = cstore_begin(a->store, 1, &t)) != 0 || (e = contact_load(t, cid, &c)) != 0) {
        app_error("cannot reopen %s in the local store: %s", label, alcove_strerror(e));
        goto out;
    }
    label = c->label ? c->label : "?";
    if (c->state != ALCOVE__LOCAL__CONTACT__STATE__ACTIVE || c->outbox == NULL) {
        if (!quiet)
            app_error("%s is no longer an active contact", label);
        goto out;
    }
    if ((e = session_load(t, c->id.data, &r)) != 0) {
        app_error("no session with %s: %s", label, alcove_strerror(e));
        goto out;
    }
    if (c->has_reinvite_prekey_sk) {
        if (!quiet) {
            app_error("%s has not answered your re-key offer yet, so nothing was sent", label);
            app_hint("run 'alcove fetch' to pick up their answer (or 'alcove reinvite %s' again)",
                     label);
        }
        goto out;
    }
    if (c->has_restored_dh_pub) {
        if (outbox_restore_blocked(t, c)) {
            if (!quiet) {
                app_error("your conversation with %s was restored from a backup and is not "
                          "re-keyed yet: sending now could reuse an encryption key, so nothing "
                          "was sent",
                          label);
                app_hint("it re-keys by itself with %s's next message (run 'alcove fetch'); "
                         "or run 'alcove reinvite %s' to re-key it now",
                         label, label);
            }
            goto out;
        }
        c->has_restored_dh_pub = 0; /* stepped since the restore: safe from now on */
    }
    if ((e = alcove_envelope_seal(r, content, clen, blob, ALCOVE_ENVELOPE_MAX, &blen)) != 0) {
        app_error("cannot encrypt the %s: %s", what, alcove_strerror(e));
        goto out;
    }
    if (n->hello.max_blob_bytes != 0 && blen > n->hello.max_blob_bytes) {
        app_error("this %s is too large for %s's relay (%zu bytes sealed; it accepts %u)", what,
                  label, blen, n->hello.max_blob_bytes);
        app_hint("send it in shorter parts");
        goto out; /* the transaction aborts: the ratchet did not move */
    }
    Alcove__Local__Message m;
    outbox_queued_record(&m, ct, content, clen, blob, blen);
    if (o != NULL && o->n_bands > 0) {
        m.n_bands = o->n_bands;
        m.bands = o->bands;
    }
    const char *ev = o != NULL && o->audit_event != NULL ? o->audit_event : AUDIT_MESSAGE_SENT;
    if ((e = session_save(t, c->id.data, r)) != 0 || (e = message_append(t, c, &m, key)) != 0 ||
        (e = audit_append(t, a->now(), ev, c->id.data)) != 0 || (e = cstore_commit(t)) != 0) {
        t = NULL;
        app_error("cannot store the %s locally: %s", what, alcove_strerror(e));
        goto out;
    }
    t = NULL;
    if (o != NULL)
        memcpy(o->msg_id_out, msg_id, sizeof msg_id);
    int st = outbox_deliver(a, np, c, key, &m);
    if (st == 0) {
        if (!a->json && !quiet)
            printf("Sent your %s to %s.\n", what, label);
        rc = EXIT_OK;
    } else if (st > 0 && net_status_permanent(st)) {
        if (!quiet) {
            app_error("%s could not deliver the %s: %s", c->outbox->relay_address, what,
                      net_status_text(st));
            if (st == ALCOVE__WIRE__STATUS__UNAUTHORIZED || st == ALCOVE__WIRE__STATUS__NOT_FOUND)
                app_hint("%s may have removed you as a contact", label);
        }
    } else {
        if (!quiet) {
            app_error("the %s is saved but not delivered yet: %s", what,
                      st > 0 ? net_status_text(st) : alcove_strerror(st));
            app_hint("it will be retried by your next 'alcove send', 'checkin' or 'fetch'");
        }
        rc = quiet ? EXIT_OK : EXIT_FAIL;
    }
    if (a->json && !quiet) {
        char idhex[2 * MSG_ID_BYTES + 1];
        hex_encode(msg_id, sizeof msg_id, idhex);
        json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "contact", label, "kind", what, "msg_id",
                              idhex, "status",
                              st == 0 ? "sent" : (st > 0 && net_status_permanent(st)) ? "failed"
                                                                                     : "queued");
        if (j != NULL && notice_current(c, a->now()))
            json_object_set_new(j, "notice", render_json_str(c->notice));
        if (j == NULL || render_json_dump(stdout, j) != 0)
            app_error("cannot print JSON");
        json_decref(j);
    }
    if (notice_current(c, a->now()) && !a->json && !quiet) {
        printf("Notice from ");
        render_str(stdout, label, 40);
        printf(": ");
        render_str(stdout, c->notice, 0);
        printf("\n");
    }
out:
    cstore_abort(t);
    alcove_ratchet_free(r);
    if (content != NULL) {
        sodium_memzero(content, clen);
        free(content);
    }
    free(blob);
    if (c != NULL)
        contact_free(c);
    return rc;
}

typedef struct queued {
    uint8_t key[24];
    Alcove__Local__Message *m;
} queued;

typedef struct scan_ctx {
    queued *v;
    size_t n, cap;
    int err;
} scan_ctx;

static int collect_queued(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
                          size_t vlen)
{
    scan_ctx *s = ctx;
    Alcove__Local__Message *m = alcove__local__message__unpack(NULL, vlen, val);
    if (m == NULL || klen != 24)
        return ALCOVE_ECORRUPT;
    if (!m->outgoing || m->status != ALCOVE__LOCAL__MESSAGE__STATUS__QUEUED || m->problem != NULL ||
        !m->has_envelope) {
        alcove__local__message__free_unpacked(m, NULL);
        return 0;
    }
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8;
        queued *nv = realloc(s->v, ncap * sizeof *nv);
        if (nv == NULL) {
            alcove__local__message__free_unpacked(m, NULL);
            return ALCOVE_ENOMEM;
        }
        s->v = nv;
        s->cap = ncap;
    }
    memcpy(s->v[s->n].key, key, 24);
    s->v[s->n++].m = m;
    return 0;
}

int outbox_flush(app *a, netpool *np)
{
    Alcove__Local__Contact **cs = NULL;
    size_t nc = 0;
    cstore_txn *t = NULL;
    int left = 0;
    int rc = cstore_begin(a->store, 0, &t);
    if (rc == 0)
        rc = contact_list(t, &cs, &nc);
    if (rc != 0) {
        cstore_abort(t);
        return rc;
    }
    for (size_t i = 0; i < nc; i++) {
        scan_ctx s = {NULL, 0, 0, 0};
        if (cs[i]->state != ALCOVE__LOCAL__CONTACT__STATE__ACTIVE)
            continue;
        rc = cstore_each(t, CS_MESSAGES, cs[i]->id.data, CONTACT_ID_BYTES, collect_queued, &s);
        int stop = 0;
        for (size_t k = 0; k < s.n; k++) {
            if (rc == 0 && !stop) {
                int st = outbox_deliver(a, np, cs[i], s.v[k].key, s.v[k].m);
                if (st != 0 && !(st > 0 && net_status_permanent(st))) {
                    stop = 1; /* keep the order: retry this contact later */
                    left++;
                }
            } else {
                left++;
            }
            alcove__local__message__free_unpacked(s.v[k].m, NULL);
        }
        free(s.v);
        if (rc != 0)
            break;
    }
    cstore_abort(t);
    contact_list_free(cs, nc);
    return rc != 0 ? rc : left;
}
