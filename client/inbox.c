#include "inbox.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "envelope.h"
#include "err.h"
#include "questionnaire.h"
#include "reinvite.h"
#include "render.h"

const char *content_invalid(const Alcove__E2e__Content *ct)
{
    if (!ct->has_msg_id || ct->msg_id.len != MSG_ID_BYTES)
        return "message id is not 16 bytes";
    switch (ct->body_case) {
    case ALCOVE__E2E__CONTENT__BODY_CHECKIN: {
        const Alcove__E2e__CheckIn *ci = ct->checkin;
        if (ci->has_mood && ci->mood > 10)
            return "mood above 10";
        if (ci->has_anxiety && ci->anxiety > 10)
            return "anxiety above 10";
        if (ci->has_sleep_hours && !(ci->sleep_hours >= 0.0f && ci->sleep_hours <= 24.0f))
            return "sleep hours outside 0-24";
        return NULL;
    }
    case ALCOVE__E2E__CONTENT__BODY_QUESTIONNAIRE: {
        const Alcove__E2e__Questionnaire *q = ct->questionnaire;
        if (q->n_items < 1 || q->n_items > 50)
            return "a questionnaire needs 1-50 items";
        for (size_t i = 0; i < q->n_items; i++)
            if (!(q->items[i]->min < q->items[i]->max && q->items[i]->max <= 100))
                return "a questionnaire item has a bad range";
        return NULL;
    }
    case ALCOVE__E2E__CONTENT__BODY_RECEIPT:
        for (size_t i = 0; i < ct->receipt->n_msg_ids; i++)
            if (ct->receipt->msg_ids[i].len != MSG_ID_BYTES)
                return "receipt names a message id that is not 16 bytes";
        return NULL;
    case ALCOVE__E2E__CONTENT__BODY__NOT_SET:
        return "empty content";
    default:
        return NULL;
    }
}

static int store_rejected(cstore_txn *t, Alcove__Local__Contact *c, const Alcove__Wire__Stored *s,
                          const char *why, inbox_result *res)
{
    Alcove__Local__Message m = ALCOVE__LOCAL__MESSAGE__INIT;
    m.has_received_at = 1;
    m.received_at = s->received_at;
    m.has_relay_seq = 1;
    m.relay_seq = s->seq;
    m.has_read = 1;
    m.read = 1; /* never counted as unread */
    m.problem = (char *)(uintptr_t)why;
    res->outcome = INBOX_REJECTED;
    res->why = why;
    return message_append(t, c, &m, res->key);
}

static void clear_prekey(Alcove__Local__Contact *c)
{
    if (c->has_prekey_sk)
        sodium_memzero(c->prekey_sk.data, c->prekey_sk.len);
    c->has_prekey_sk = c->has_prekey_pub = c->has_prekey_id = 0;
}

static int take_intro(app *a, cstore_txn *t, Alcove__Local__Contact *c, const Alcove__Wire__Stored *s,
                      uint8_t *content, inbox_result *res)
{
    uint8_t sig_pub[32], dh_pub[32];
    size_t clen = 0;
    alcove_ratchet *session = NULL;
    Alcove__E2e__Content *ct = NULL;
    int rc;

    if (c->state == ALCOVE__LOCAL__CONTACT__STATE__ACTIVE)
        return reinvite_take(a, t, c, s, content, res);
    if (c->state != ALCOVE__LOCAL__CONTACT__STATE__PENDING || !c->has_prekey_sk ||
        c->prekey_sk.len != 32 || c->prekey_pub.len != 32 || c->prekey_id.len != 8) {
        /* The invite was used already: a redelivered intro. */
        res->outcome = INBOX_SKIPPED;
        return 0;
    }
    rc = alcove_intro_open(a->id, c->prekey_sk.data, c->prekey_pub.data, c->prekey_id.data,
                           s->blob.data, s->blob.len, sig_pub, dh_pub, content,
                           ALCOVE_PAD_MAX_CONTENT, &clen, &session);
    if (rc != 0)
        return store_rejected(t, c, s,
                              rc == ALCOVE_ENOTFOUND ? "intro for another invite"
                                                     : "intro does not open (forged or damaged)",
                              res);
    ct = alcove__e2e__content__unpack(NULL, clen, content);
    if (ct == NULL || ct->body_case != ALCOVE__E2E__CONTENT__BODY_INTRO ||
        ct->intro->send_id.len != 16 || ct->intro->send_secret.len != 32 ||
        ct->intro->reply_address == NULL) {
        alcove_ratchet_free(session);
        if (ct != NULL)
            alcove__e2e__content__free_unpacked(ct, NULL);
        return store_rejected(t, c, s, "intro without a valid reply mailbox", res);
    }
    alcove_relay_addr ra;
    const char *why = NULL;
    if (alcove_addr_parse(ct->intro->reply_address, &ra, &why) != 0) {
        alcove_ratchet_free(session);
        alcove__e2e__content__free_unpacked(ct, NULL);
        return store_rejected(t, c, s, "intro names a malformed reply relay", res);
    }
    /* The contact's new fields point into these buffers until saved. */
    Alcove__Local__Outbox ob = ALCOVE__LOCAL__OUTBOX__INIT;
    ob.relay_address = ct->intro->reply_address;
    ob.has_send_id = ob.has_send_secret = 1;
    ob.send_id = ct->intro->send_id;
    ob.send_secret = ct->intro->send_secret;
    Alcove__Local__Outbox *old_ob = c->outbox;
    char *old_name = c->their_name;
    ProtobufCBinaryData old_sig = c->sig_pub, old_dh = c->dh_pub;
    c->outbox = &ob;
    c->their_name = ct->intro->display_name;
    c->has_sig_pub = c->has_dh_pub = 1;
    c->sig_pub.data = sig_pub;
    c->sig_pub.len = 32;
    c->dh_pub.data = dh_pub;
    c->dh_pub.len = 32;
    c->has_state = 1;
    c->state = ALCOVE__LOCAL__CONTACT__STATE__ACTIVE;
    clear_prekey(c);
    c->inbox->has_last_seq = 1;
    c->inbox->last_seq = s->seq;
    rc = session_save(t, c->id.data, session);
    if (rc == 0)
        rc = contact_save(t, c);
    if (rc == 0)
        rc = audit_append(t, a->now(), AUDIT_CONTACT_ADDED, c->id.data);
    /* Restore the pointers the unpacked contact owns; inbox_take reloads
     * the contact so the caller's copy matches what was saved. */
    c->outbox = old_ob;
    c->their_name = old_name;
    c->sig_pub = old_sig;
    c->dh_pub = old_dh;
    alcove_ratchet_free(session);
    alcove__e2e__content__free_unpacked(ct, NULL);
    if (rc != 0)
        return rc;
    res->outcome = INBOX_INTRO;
    return 0;
}

typedef struct receipt_ctx {
    const Alcove__E2e__Receipt *r;
    uint8_t (*keys)[24];
    size_t n, cap;
} receipt_ctx;

static int receipt_match(void *ctx, const uint8_t key[24], Alcove__Local__Message **mp)
{
    receipt_ctx *rc = ctx;
    const Alcove__Local__Message *m = *mp;
    if (!m->outgoing || !m->has_msg_id || m->msg_id.len != MSG_ID_BYTES)
        return 0;
    for (size_t i = 0; i < rc->r->n_msg_ids; i++) {
        if (memcmp(rc->r->msg_ids[i].data, m->msg_id.data, MSG_ID_BYTES) != 0)
            continue;
        if (rc->n == rc->cap) {
            size_t ncap = rc->cap ? 2 * rc->cap : 16;
            uint8_t(*nk)[24] = realloc(rc->keys, ncap * sizeof *nk);
            if (nk == NULL)
                return ALCOVE_ENOMEM;
            rc->keys = nk;
            rc->cap = ncap;
        }
        memcpy(rc->keys[rc->n++], key, 24);
        break;
    }
    return 0;
}

/* Mark the outgoing messages a receipt names as delivered or read. */
static int apply_receipt(app *a, cstore_txn *t, const Alcove__Local__Contact *c,
                         const Alcove__E2e__Receipt *r)
{
    receipt_ctx rc = {r, NULL, 0, 0};
    int e = render_each_message(t, c, receipt_match, &rc);
    for (size_t i = 0; e == 0 && i < rc.n; i++) {
        uint8_t *val = NULL;
        size_t vlen = 0;
        if ((e = cstore_get(t, CS_MESSAGES, rc.keys[i], 24, &val, &vlen)) != 0)
            break;
        Alcove__Local__Message *m = alcove__local__message__unpack(&render_wipe_allocator, vlen, val);
        cstore_free_value(val, vlen);
        if (m == NULL) {
            e = ALCOVE_ECORRUPT;
            break;
        }
        uint64_t now = a->now();
        if (!m->has_delivered_at || m->delivered_at == 0) {
            m->has_delivered_at = 1;
            m->delivered_at = now;
        }
        if (r->kind == ALCOVE__E2E__RECEIPT__KIND__READ && (!m->has_read_at || !m->read_at)) {
            m->has_read_at = 1;
            m->read_at = now;
        }
        e = message_put(t, rc.keys[i], m);
        render_message_free(m);
    }
    free(rc.keys);
    return e;
}

static int take_message(app *a, cstore_txn *t, Alcove__Local__Contact *c, const Alcove__Wire__Stored *s,
                        uint8_t *content, inbox_result *res)
{
    alcove_ratchet *r = NULL, *next = NULL;
    size_t clen = 0;
    int rc;
    if (c->state != ALCOVE__LOCAL__CONTACT__STATE__ACTIVE)
        return store_rejected(t, c, s, "message before the contact's introduction", res);
    rc = session_load(t, c->id.data, &r);
    if (rc != 0)
        return rc == ALCOVE_ENOTFOUND ? store_rejected(t, c, s, "no session with this contact", res)
                                      : rc;
    rc = alcove_envelope_open(r, s->blob.data, s->blob.len, content, ALCOVE_PAD_MAX_CONTENT, &clen,
                              &next);
    alcove_ratchet_free(r);
    if (rc == ALCOVE_EDUP) {
        res->outcome = INBOX_SKIPPED;
        return 0;
    }
    if (rc != 0 && rc != ALCOVE_ECORRUPT) {
        if (rc == ALCOVE_EDECRYPT) {
            c->has_session_broken = c->session_broken = 1;
            res->undecryptable = 1;
        }
        return store_rejected(t, c, s,
                              rc == ALCOVE_ELIMIT     ? "too many skipped messages"
                              : rc == ALCOVE_EVERSION ? "unknown envelope version"
                                                      : "message does not authenticate",
                              res);
    }
    /* Authentic: the new state is committed with whatever we store. */
    c->has_session_broken = c->session_broken = 0;
    int e = session_save(t, c->id.data, next);
    alcove_ratchet_free(next);
    if (e != 0)
        return e;
    if (rc == ALCOVE_ECORRUPT)
        return store_rejected(t, c, s, "authentic message with corrupt padding", res);
    Alcove__E2e__Content *ct = alcove__e2e__content__unpack(NULL, clen, content);
    if (ct == NULL)
        return store_rejected(t, c, s, "authentic message with corrupt content", res);
    const char *bad = content_invalid(ct);
    if (bad == NULL && ct->body_case == ALCOVE__E2E__CONTENT__BODY_RECEIPT) {
        /* Receipts are not messages of the thread: they mark ours. */
        e = apply_receipt(a, t, c, ct->receipt);
        alcove__e2e__content__free_unpacked(ct, NULL);
        if (e != 0)
            return e;
        c->inbox->has_last_seq = 1;
        c->inbox->last_seq = s->seq;
        res->outcome = INBOX_RECEIPT;
        return contact_save(t, c);
    }
    if (bad == NULL && ct->body_case == ALCOVE__E2E__CONTENT__BODY_ANSWERS) {
        quest_score sc;
        int q = quest_score_lookup(t, c, ct->answers, &sc, NULL, NULL);
        if (q == ALCOVE_ENOTFOUND)
            bad = "answers to a questionnaire that is not in this conversation";
        else if (q == ALCOVE_EMALFORMED)
            bad = "answers that do not match the questionnaire";
        else if (q != 0) {
            alcove__e2e__content__free_unpacked(ct, NULL);
            return q;
        }
    }
    if (bad == NULL && ct->body_case == ALCOVE__E2E__CONTENT__BODY_LEAVE) {
        c->has_state = 1;
        c->state = ALCOVE__LOCAL__CONTACT__STATE__LEFT;
    }
    char *old_notice = c->notice;
    if (bad == NULL && ct->body_case == ALCOVE__E2E__CONTENT__BODY_NOTICE &&
        ct->notice->text != NULL) {
        /* Kept on the contact too, to show it when sending ("" clears). */
        c->notice = ct->notice->text;
        c->has_notice_until = 1;
        c->notice_until = ct->notice->has_until ? ct->notice->until : 0;
    }
    Alcove__Local__Message m = ALCOVE__LOCAL__MESSAGE__INIT;
    m.has_msg_id = ct->has_msg_id;
    m.msg_id = ct->msg_id;
    m.has_sent_at = 1;
    m.sent_at = ct->sent_at;
    m.has_received_at = 1;
    m.received_at = s->received_at;
    m.has_relay_seq = 1;
    m.relay_seq = s->seq;
    m.has_content = 1;
    m.content.data = content;
    m.content.len = clen;
    m.has_read = 1;
    m.read = bad != NULL;
    m.has_status = 1;
    m.status = ALCOVE__LOCAL__MESSAGE__STATUS__RECEIVED;
    m.problem = (char *)(uintptr_t)bad;
    c->inbox->has_last_seq = 1;
    c->inbox->last_seq = s->seq;
    rc = message_append(t, c, &m, res->key);
    if (rc == 0 && bad == NULL)
        rc = audit_append(t, a->now(), AUDIT_MESSAGE_RECEIVED, c->id.data);
    c->notice = old_notice; /* the new one is owned by ct */
    res->outcome = bad ? INBOX_REJECTED : INBOX_STORED;
    res->why = bad;
    res->body = (int)ct->body_case;
    if (ct->has_msg_id && ct->msg_id.len == MSG_ID_BYTES)
        memcpy(res->msg_id, ct->msg_id.data, MSG_ID_BYTES);
    alcove__e2e__content__free_unpacked(ct, NULL);
    return rc;
}

int inbox_take(app *a, cstore_txn *t, Alcove__Local__Contact **cp, const Alcove__Wire__Stored *s,
               inbox_result *res)
{
    Alcove__Local__Contact *c = *cp;
    memset(res, 0, sizeof *res);
    if (c->inbox == NULL || s->seq <= c->inbox->last_seq) {
        res->outcome = INBOX_SKIPPED;
        return 0;
    }
    uint8_t *content = malloc(ALCOVE_PAD_MAX_CONTENT);
    if (content == NULL)
        return ALCOVE_ENOMEM;
    int rc;
    int kind = alcove_envelope_kind(s->blob.data, s->blob.len);
    if (kind == ALCOVE_ENVELOPE_INTRO)
        rc = take_intro(a, t, c, s, content, res);
    else if (kind == ALCOVE_ENVELOPE_MESSAGE)
        rc = take_message(a, t, c, s, content, res);
    else
        rc = store_rejected(t, c, s,
                            kind == ALCOVE_EVERSION ? "unknown envelope version"
                                                    : "not an alcove envelope",
                            res);
    sodium_memzero(content, ALCOVE_PAD_MAX_CONTENT);
    free(content);
    if (rc == 0 && (res->outcome == INBOX_INTRO || res->outcome == INBOX_REKEYED)) {
        Alcove__Local__Contact *fresh = NULL;
        uint8_t id[CONTACT_ID_BYTES];
        memcpy(id, c->id.data, sizeof id);
        rc = contact_load(t, id, &fresh);
        if (rc != 0)
            return rc;
        contact_free(c);
        *cp = c = fresh;
    }
    if (rc == 0 && c->inbox->last_seq < s->seq) {
        /* Skipped and rejected messages still move the mark, so they are
         * acked and never processed again. */
        c->inbox->has_last_seq = 1;
        c->inbox->last_seq = s->seq;
        rc = contact_save(t, c);
    }
    return rc;
}
