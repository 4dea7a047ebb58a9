/* alcove forget: revoke a contact (delete the mailbox they write to) and
 * erase the local thread. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "audit.h"
#include "err.h"
#include "net.h"
#include "outbox.h"

typedef struct keys_ctx {
    uint8_t (*keys)[24];
    size_t n, cap;
} keys_ctx;

static int collect_key(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    keys_ctx *k = ctx;
    (void)val;
    (void)vlen;
    if (klen != 24)
        return 0;
    if (k->n == k->cap) {
        size_t ncap = k->cap ? k->cap * 2 : 64;
        uint8_t(*nk)[24] = realloc(k->keys, ncap * sizeof *nk);
        if (nk == NULL)
            return ALCOVE_ENOMEM;
        k->keys = nk;
        k->cap = ncap;
    }
    memcpy(k->keys[k->n++], key, 24);
    return 0;
}

int cmd_forget(app *a, int argc, char **argv)
{
    if (argc != 2)
        return usage_error("forget needs exactly one CONTACT");
    const char *label = argv[1];
    if (app_open(a) != 0)
        return EXIT_FAIL;
    Alcove__Local__Contact *c = NULL;
    cstore_txn *t = NULL;
    netpool np;
    memset(&np, 0, sizeof np);
    keys_ctx k = {NULL, 0, 0};
    int rc = EXIT_FAIL, e;
    if ((e = cstore_begin(a->store, 0, &t)) != 0) {
        app_error("cannot read the local store: %s", alcove_strerror(e));
        return EXIT_FAIL;
    }
    if (contact_find(a, t, label, &c) != 0)
        goto out;
    cstore_abort(t);
    t = NULL;

    /* Say goodbye first (best effort), so their app stops writing. */
    if (c->state == ALCOVE__LOCAL__CONTACT__STATE__ACTIVE && c->outbox != NULL) {
        Alcove__E2e__Leave lv = ALCOVE__E2E__LEAVE__INIT;
        Alcove__E2e__Content ct = ALCOVE__E2E__CONTENT__INIT;
        ct.body_case = ALCOVE__E2E__CONTENT__BODY_LEAVE;
        ct.leave = &lv;
        outbox_opts o;
        memset(&o, 0, sizeof o);
        o.quiet = 1;
        (void)outbox_send_to(a, &np, c->id.data, &ct, "goodbye", &o);
    }
    /* Revoke: delete the mailbox they send to. */
    if (c->inbox != NULL && c->inbox->relay_address != NULL && c->inbox->recv_id.len == 16 &&
        c->inbox->auth_sk.len == 64) {
        net *n = netpool_get(&np, c->inbox->relay_address);
        if (n == NULL) {
            app_hint("nothing was deleted; try again when the relay is reachable");
            goto out;
        }
        int st = net_login(n, c->inbox->recv_id.data, c->inbox->auth_sk.data);
        if (st == 0)
            st = net_delete(n, c->inbox->recv_id.data);
        if (st != 0 && st != ALCOVE__WIRE__STATUS__UNAUTHORIZED &&
            st != ALCOVE__WIRE__STATUS__NOT_FOUND) {
            app_error("the relay did not delete %s's mailbox: %s", label,
                      st > 0 ? net_status_text(st) : alcove_strerror(st));
            app_hint("nothing was deleted locally; try again");
            goto out;
        }
    }
    /* Erase the thread, the session and the contact in one transaction. */
    if ((e = cstore_begin(a->store, 1, &t)) != 0 ||
        (e = cstore_each(t, CS_MESSAGES, c->id.data, CONTACT_ID_BYTES, collect_key, &k)) != 0)
        goto fail;
    for (size_t i = 0; i < k.n; i++)
        if ((e = cstore_del(t, CS_MESSAGES, k.keys[i], 24)) != 0)
            goto fail;
    if ((e = cstore_del(t, CS_SESSIONS, c->id.data, CONTACT_ID_BYTES)) != 0 ||
        (e = cstore_del(t, CS_CONTACTS, c->id.data, CONTACT_ID_BYTES)) != 0 ||
        (e = audit_append(t, a->now(), AUDIT_CONTACT_FORGOTTEN, c->id.data)) != 0)
        goto fail;
    e = cstore_commit(t);
    t = NULL;
    if (e != 0)
        goto fail;
    if (!a->json)
        printf("Forgot %s: their mailbox is deleted and %zu message%s erased.\n", label, k.n,
               k.n == 1 ? "" : "s");
    else
        printf("{\n  \"forgotten\": true,\n  \"messages_erased\": %zu\n}\n", k.n);
    rc = EXIT_OK;
    goto out;
fail:
    app_error("cannot erase %s locally: %s", label, alcove_strerror(e));
out:
    cstore_abort(t);
    netpool_close(&np);
    free(k.keys);
    if (c != NULL)
        contact_free(c);
    return rc;
}
