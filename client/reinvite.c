/* alcove reinvite, and the receiving half of a re-key (reinvite.h). */
#include "reinvite.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "commands.h"
#include "envelope.h"
#include "err.h"
#include "invite.h"
#include "net.h"
#include "outbox.h"
#include "render.h"

#define REKEY_LIFETIME_MS (30ull * 24u * 3600u * 1000u)
#define SEAL_PK crypto_box_PUBLICKEYBYTES

/* NOLINTNEXTLINE(misc-redundant-expression): libsodium defines it as this sum */
_Static_assert(crypto_box_SEALBYTES == 32u + crypto_box_MACBYTES, "sealed box layout");

/* crypto_box_seal_open with the identity's X25519 key, which identity.h
 * only exposes as alcove_identity_dh: the same construction as libsodium's
 * (k = HSalsa20(X25519(sk, epk), 0); nonce = BLAKE2b-192(epk || pk)).
 * Returns 0 and out[0..*out_len), or -1. */
static int open_to_identity(const alcove_identity *id, const uint8_t *c, size_t clen, uint8_t *out,
                            size_t cap, size_t *out_len)
{
    static const uint8_t zero16[16];
    uint8_t s[32], k[crypto_box_BEFORENMBYTES], nonce[crypto_box_NONCEBYTES];
    crypto_generichash_state h;
    int rc = -1;
    if (clen < crypto_box_SEALBYTES || clen - crypto_box_SEALBYTES > cap)
        return -1;
    if (alcove_identity_dh(id, c, s) != 0)
        goto out;
    crypto_core_hsalsa20(k, zero16, s, NULL);
    crypto_generichash_init(&h, NULL, 0, sizeof nonce);
    crypto_generichash_update(&h, c, SEAL_PK);
    crypto_generichash_update(&h, alcove_identity_dh_pub(id), SEAL_PK);
    crypto_generichash_final(&h, nonce, sizeof nonce);
    if (crypto_box_open_easy_afternm(out, c + SEAL_PK, clen - SEAL_PK, nonce, k) != 0)
        goto out;
    *out_len = clen - crypto_box_SEALBYTES;
    rc = 0;
out:
    sodium_memzero(s, sizeof s);
    sodium_memzero(k, sizeof k);
    return rc;
}

static void clear_pending(Alcove__Local__Contact *c)
{
    if (c->has_reinvite_prekey_sk)
        sodium_memzero(c->reinvite_prekey_sk.data, c->reinvite_prekey_sk.len);
    c->has_reinvite_prekey_sk = c->has_reinvite_prekey_pub = c->has_reinvite_prekey_id = 0;
    c->has_reinvite_expires_at = 0;
    c->has_restored_dh_pub = 0;
    c->has_session_broken = 0;
    c->session_broken = 0;
}

/* Our offer answered: an intro sealed to the pending prekey. */
static int take_answer(app *a, cstore_txn *t, Alcove__Local__Contact *c,
                       const Alcove__Wire__Stored *s, uint8_t *content, inbox_result *res)
{
    uint8_t sig_pub[32], dh_pub[32];
    size_t clen = 0;
    alcove_ratchet *session = NULL;
    int rc = alcove_intro_open(a->id, c->reinvite_prekey_sk.data, c->reinvite_prekey_pub.data,
                               c->reinvite_prekey_id.data, s->blob.data, s->blob.len, sig_pub,
                               dh_pub, content, ALCOVE_PAD_MAX_CONTENT, &clen, &session);
    if (rc != 0)
        return rc; /* not for this prekey: the caller tries an offer */
    Alcove__E2e__Content *ct = alcove__e2e__content__unpack(NULL, clen, content);
    if (ct == NULL || ct->body_case != ALCOVE__E2E__CONTENT__BODY_INTRO ||
        ct->intro->send_id.len != 16 || ct->intro->send_secret.len != 32 ||
        ct->intro->reply_address == NULL || c->sig_pub.len != 32 || c->dh_pub.len != 32 ||
        sodium_memcmp(sig_pub, c->sig_pub.data, 32) != 0 ||
        sodium_memcmp(dh_pub, c->dh_pub.data, 32) != 0) {
        alcove_ratchet_free(session);
        if (ct != NULL)
            alcove__e2e__content__free_unpacked(ct, NULL);
        res->outcome = INBOX_REJECTED;
        res->why = "a re-key answer from another identity or without a reply mailbox";
        return 0;
    }
    Alcove__Local__Outbox ob = ALCOVE__LOCAL__OUTBOX__INIT, *old_ob = c->outbox;
    ob.relay_address = ct->intro->reply_address;
    ob.has_send_id = ob.has_send_secret = 1;
    ob.send_id = ct->intro->send_id;
    ob.send_secret = ct->intro->send_secret;
    c->outbox = &ob;
    clear_pending(c);
    rc = session_save(t, c->id.data, session);
    if (rc == 0)
        rc = contact_save(t, c);
    if (rc == 0)
        rc = audit_append(t, a->now(), AUDIT_CONTACT_REKEYED, c->id.data);
    c->outbox = old_ob;
    alcove_ratchet_free(session);
    alcove__e2e__content__free_unpacked(ct, NULL);
    if (rc == 0)
        res->outcome = INBOX_REKEYED;
    return rc;
}

/* Their offer: accept it and queue our intro.  Returns 0 (res says what
 * happened), 1 when the blob is not an offer, or a store error. */
static int take_offer(app *a, cstore_txn *t, Alcove__Local__Contact *c,
                      const Alcove__Wire__Stored *s, inbox_result *res)
{
    Alcove__E2e__Envelope *env = alcove__e2e__envelope__unpack(NULL, s->blob.len, s->blob.data);
    char *code = malloc(ALCOVE_INVITE_TEXT_MAX + 1);
    alcove_invite *inv = sodium_malloc(sizeof *inv);
    uint8_t *blob = malloc(ALCOVE_ENVELOPE_MAX), *content = NULL;
    alcove_ratchet *session = NULL;
    size_t codelen = 0, blen = 0, clen = 0;
    uint8_t msg_id[16];
    int rc = 1;
    if (env == NULL || code == NULL || inv == NULL || blob == NULL) {
        rc = env == NULL ? 1 : ALCOVE_ENOMEM;
        goto out;
    }
    if (env->kind_case != ALCOVE__E2E__ENVELOPE__KIND_INTRO_SEALED ||
        open_to_identity(a->id, env->intro_sealed.data, env->intro_sealed.len, (uint8_t *)code,
                         ALCOVE_INVITE_TEXT_MAX, &codelen) != 0)
        goto out; /* not an offer for us: a redelivered intro */
    code[codelen] = '\0';
    res->outcome = INBOX_REJECTED;
    if (alcove_invite_decode(code, codelen, a->now(), inv) != 0) {
        res->why = "a re-key offer that is invalid or expired";
        rc = 0;
        goto out;
    }
    if (c->sig_pub.len != 32 || c->dh_pub.len != 32 ||
        sodium_memcmp(inv->sig_pub, c->sig_pub.data, 32) != 0 ||
        sodium_memcmp(inv->dh_pub, c->dh_pub.data, 32) != 0) {
        res->why = "a re-key offer signed by another identity";
        rc = 0;
        goto out;
    }
    if (c->has_reinvite_prekey_sk &&
        memcmp(alcove_identity_sig_pub(a->id), inv->sig_pub, 32) < 0) {
        res->outcome = INBOX_SKIPPED; /* both offered: ours wins */
        rc = 0;
        goto out;
    }
    if (c->inbox == NULL || c->inbox->send_id.len != 16 || c->inbox->send_secret.len != 32 ||
        c->inbox->relay_address == NULL) {
        res->why = "a re-key offer for a contact without a mailbox";
        rc = 0;
        goto out;
    }
    Alcove__E2e__Intro intro = ALCOVE__E2E__INTRO__INIT;
    static char no_name[] = "";
    intro.reply_address = c->inbox->relay_address;
    intro.has_send_id = intro.has_send_secret = 1;
    intro.send_id = c->inbox->send_id;
    intro.send_secret = c->inbox->send_secret;
    intro.display_name = a->meta->display_name ? a->meta->display_name : no_name;
    Alcove__E2e__Content ct = ALCOVE__E2E__CONTENT__INIT;
    randombytes_buf(msg_id, sizeof msg_id);
    ct.has_msg_id = 1;
    ct.msg_id = (ProtobufCBinaryData){16, msg_id};
    ct.has_sent_at = 1;
    ct.sent_at = a->now();
    ct.body_case = ALCOVE__E2E__CONTENT__BODY_INTRO;
    ct.intro = &intro;
    if ((content = pb_pack(&ct.base, &clen)) == NULL) {
        rc = ALCOVE_ENOMEM;
        goto out;
    }
    if (alcove_intro_seal(a->id, inv, content, clen, blob, ALCOVE_ENVELOPE_MAX, &blen, &session) !=
        0) {
        res->why = "a re-key offer with unusable keys";
        rc = 0;
        goto out;
    }
    Alcove__Local__Outbox ob = ALCOVE__LOCAL__OUTBOX__INIT, *old_ob = c->outbox;
    ob.relay_address = inv->relay_address;
    ob.has_send_id = ob.has_send_secret = 1;
    ob.send_id = (ProtobufCBinaryData){16, inv->send_id};
    ob.send_secret = (ProtobufCBinaryData){32, inv->send_secret};
    c->outbox = &ob;
    clear_pending(c);
    Alcove__Local__Message m;
    outbox_queued_record(&m, &ct, content, clen, blob, blen);
    rc = session_save(t, c->id.data, session);
    if (rc == 0)
        rc = message_append(t, c, &m, NULL);
    if (rc == 0)
        rc = audit_append(t, a->now(), AUDIT_CONTACT_REKEYED, c->id.data);
    c->outbox = old_ob;
    if (rc == 0) {
        res->outcome = INBOX_REKEYED;
        res->queued_reply = 1;
    }
out:
    if (env != NULL)
        alcove__e2e__envelope__free_unpacked(env, NULL);
    if (code != NULL) {
        sodium_memzero(code, ALCOVE_INVITE_TEXT_MAX + 1);
        free(code);
    }
    if (inv != NULL)
        sodium_free(inv);
    if (content != NULL) {
        sodium_memzero(content, clen);
        free(content);
    }
    free(blob);
    alcove_ratchet_free(session);
    return rc;
}

int reinvite_take(app *a, cstore_txn *t, Alcove__Local__Contact *c, const Alcove__Wire__Stored *s,
                  uint8_t *content, inbox_result *res)
{
    if (c->has_reinvite_prekey_sk && c->reinvite_prekey_sk.len == 32 &&
        c->reinvite_prekey_pub.len == 32 && c->reinvite_prekey_id.len == 8) {
        int rc = take_answer(a, t, c, s, content, res);
        if (rc == 0 || rc == ALCOVE_ESTORE || rc == ALCOVE_ENOMEM)
            return rc;
    }
    int rc = take_offer(a, t, c, s, res);
    if (rc == 1) {
        res->outcome = INBOX_SKIPPED; /* a redelivered intro */
        return 0;
    }
    return rc;
}

/* --- alcove reinvite CONTACT ------------------------------------------- */

int cmd_reinvite(app *a, int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-')
        return usage_error("reinvite needs exactly one CONTACT");
    if (app_open(a) != 0)
        return EXIT_FAIL;
    const char *label = argv[1];
    Alcove__Local__Contact *c = NULL;
    cstore_txn *t = NULL;
    netpool np;
    memset(&np, 0, sizeof np);
    alcove_invite *inv = sodium_malloc(sizeof *inv);
    uint8_t *prekey_sk = sodium_malloc(32), *sealed = NULL, *env_buf = NULL;
    char *code = malloc(ALCOVE_INVITE_TEXT_MAX);
    int rc = EXIT_FAIL, e;
    if (inv == NULL || prekey_sk == NULL || code == NULL) {
        app_error("out of memory");
        goto out;
    }
    memset(inv, 0, sizeof *inv);
    if ((e = cstore_begin(a->store, 0, &t)) != 0) {
        app_error("cannot read the local store: %s", alcove_strerror(e));
        goto out;
    }
    if (contact_find(a, t, label, &c) != 0)
        goto out;
    cstore_abort(t);
    t = NULL;
    if (c->state != ALCOVE__LOCAL__CONTACT__STATE__ACTIVE || c->outbox == NULL ||
        c->inbox == NULL || c->inbox->send_id.len != 16 || c->inbox->send_secret.len != 32 ||
        c->dh_pub.len != 32 || c->sig_pub.len != 32) {
        app_error("%s is not an active contact with a session to re-key", label);
        app_hint("a contact who never accepted needs a new invite: 'alcove invite --name LABEL'");
        goto out;
    }
    uint8_t prekey_pub[32], prekey_id[8];
    crypto_box_keypair(prekey_pub, prekey_sk);
    randombytes_buf(prekey_id, sizeof prekey_id);
    snprintf(inv->relay_address, sizeof inv->relay_address, "%s", c->inbox->relay_address);
    memcpy(inv->send_id, c->inbox->send_id.data, 16);
    memcpy(inv->send_secret, c->inbox->send_secret.data, 32);
    memcpy(inv->prekey_pub, prekey_pub, 32);
    memcpy(inv->prekey_id, prekey_id, 8);
    snprintf(inv->display_name, sizeof inv->display_name, "%s",
             a->meta->display_name ? a->meta->display_name : "");
    inv->expires_at = a->now() + REKEY_LIFETIME_MS;
    if ((e = alcove_invite_encode(a->id, inv, code, ALCOVE_INVITE_TEXT_MAX)) != 0) {
        app_error("cannot make the re-key offer: %s", alcove_strerror(e));
        goto out;
    }
    size_t codelen = strlen(code), slen = codelen + crypto_box_SEALBYTES;
    if ((sealed = malloc(slen)) == NULL || (env_buf = malloc(slen + 64)) == NULL) {
        app_error("out of memory");
        goto out;
    }
    crypto_box_seal(sealed, (const uint8_t *)code, codelen, c->dh_pub.data);
    Alcove__E2e__Envelope env = ALCOVE__E2E__ENVELOPE__INIT;
    env.has_version = 1;
    env.version = ALCOVE_ENVELOPE_VERSION;
    env.kind_case = ALCOVE__E2E__ENVELOPE__KIND_INTRO_SEALED;
    env.intro_sealed = (ProtobufCBinaryData){slen, sealed};
    size_t elen = alcove__e2e__envelope__pack(&env, env_buf);
    /* Remember the prekey before the offer leaves. */
    uint8_t cid[16];
    memcpy(cid, c->id.data, 16);
    contact_free(c);
    c = NULL;
    if ((e = cstore_begin(a->store, 1, &t)) != 0 || (e = contact_load(t, cid, &c)) != 0)
        goto store_fail;
    c->has_reinvite_prekey_sk = c->has_reinvite_prekey_pub = c->has_reinvite_prekey_id = 1;
    c->has_reinvite_expires_at = 1;
    c->reinvite_prekey_sk = (ProtobufCBinaryData){32, prekey_sk};
    c->reinvite_prekey_pub = (ProtobufCBinaryData){32, prekey_pub};
    c->reinvite_prekey_id = (ProtobufCBinaryData){8, prekey_id};
    c->reinvite_expires_at = inv->expires_at;
    e = contact_save(t, c);
    /* The record's own buffers are freed with it: detach ours. */
    c->has_reinvite_prekey_sk = c->has_reinvite_prekey_pub = c->has_reinvite_prekey_id = 0;
    c->reinvite_prekey_sk = c->reinvite_prekey_pub = c->reinvite_prekey_id =
        (ProtobufCBinaryData){0, NULL};
    if (e != 0 || (e = audit_append(t, a->now(), AUDIT_CONTACT_INVITED, cid)) != 0 ||
        (e = cstore_commit(t)) != 0) {
        t = NULL;
        goto store_fail;
    }
    t = NULL;
    net *n = netpool_get(&np, c->outbox->relay_address);
    if (n == NULL)
        goto out;
    int st = net_send(n, c->outbox->send_id.data, c->outbox->send_secret.data, env_buf, elen);
    if (st != 0) {
        app_error("could not deliver the re-key offer to %s: %s", label,
                  st > 0 ? net_status_text(st) : alcove_strerror(st));
        if (st == ALCOVE__WIRE__STATUS__UNAUTHORIZED || st == ALCOVE__WIRE__STATUS__NOT_FOUND)
            app_hint("%s may have removed you as a contact; ask for a new invite", label);
        else
            app_hint("run 'alcove reinvite %s' again", label);
        goto out;
    }
    if (a->json) {
        printf("{\n  \"contact\": ");
        json_t *j = render_json_str(label);
        json_dumpf(j, stdout, JSON_ENCODE_ANY);
        json_decref(j);
        printf(",\n  \"offer_sent\": true\n}\n");
    } else {
        printf("Sent %s a re-key offer, signed with your identity key.\n", label);
        printf("Their app answers it on its next fetch; then 'alcove fetch' here completes it.\n");
        printf("Until then nothing is sent to %s.\n", label);
    }
    rc = EXIT_OK;
    goto out;
store_fail:
    app_error("cannot store the re-key offer: %s", alcove_strerror(e));
out:
    cstore_abort(t);
    netpool_close(&np);
    if (c != NULL)
        contact_free(c);
    if (inv != NULL)
        sodium_free(inv);
    if (prekey_sk != NULL)
        sodium_free(prekey_sk);
    if (code != NULL) {
        sodium_memzero(code, ALCOVE_INVITE_TEXT_MAX);
        free(code);
    }
    free(sealed);
    free(env_buf);
    return rc;
}
