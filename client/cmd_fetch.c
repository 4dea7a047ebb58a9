/* alcove fetch / alcove listen: mailboxes -> local store -> ack. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "audit.h"
#include "err.h"
#include "questionnaire.h"
#include "inbox.h"
#include "net.h"
#include "outbox.h"
#include "render.h"

typedef struct tally {
    json_t *json;   /* array of events when --json */
    unsigned stored, intros, rejected;
    unsigned fetched, receipts, rekeyed, broken, flagged;
    netpool *np;    /* for receipts and re-key answers */
} tally;

/* Test hook: ALCOVE_FAULT=after-commit kills the process between the local
 * commit and the ack, to prove that nothing is lost or shown twice. */
static void fault_point(const char *name)
{
    const char *f = getenv("ALCOVE_FAULT");
    if (f != NULL && strcmp(f, name) == 0)
        raise(SIGKILL);
}

/* Answers (therapist) and questionnaires (client) are shown on fetch. */
static void show_practice(app *a, const Alcove__Local__Contact *c, const inbox_result *r, tally *ty)
{
    const char *label = c->label ? c->label : "?";
    cstore_txn *t = NULL;
    uint8_t *val = NULL;
    size_t vlen = 0;
    Alcove__Local__Message *m = NULL, *qm = NULL;
    Alcove__E2e__Content *ct = NULL, *qct = NULL;
    if (cstore_begin(a->store, 0, &t) != 0)
        return;
    if (cstore_get(t, CS_MESSAGES, r->key, 24, &val, &vlen) != 0)
        goto out;
    m = alcove__local__message__unpack(&render_wipe_allocator, vlen, val);
    cstore_free_value(val, vlen);
    if (m == NULL || content_decode(m, &ct) != 0)
        goto out;
    if (ct->body_case == ALCOVE__E2E__CONTENT__BODY_QUESTIONNAIRE) {
        if (ty->json) {
            json_array_append_new(ty->json, json_pack("{s:s, s:o, s:o, s:I}", "event",
                                                      "questionnaire", "contact",
                                                      render_json_str(label), "instrument",
                                                      render_json_str(ct->questionnaire->instrument),
                                                      (json_int_t)ct->questionnaire->n_items));
        } else {
            render_str(stdout, label, 40);
            fputs(" sent you a questionnaire (", stdout);
            render_str(stdout, ct->questionnaire->instrument, 40);
            printf(", %zu items). Answer it with: alcove answer ", ct->questionnaire->n_items);
            render_str(stdout, label, 40);
            fputc('\n', stdout);
        }
        goto out;
    }
    quest_score sc;
    if (quest_score_lookup(t, c, ct->answers, &sc, &qm, &qct) != 0)
        goto out;
    const Alcove__E2e__Questionnaire *q = qct->questionnaire;
    if (sc.flagged)
        ty->flagged++;
    if (ty->json) {
        json_t *vals = json_array();
        for (size_t i = 0; i < ct->answers->n_values; i++)
            json_array_append_new(vals, json_integer(ct->answers->values[i]));
        json_array_append_new(ty->json,
                              json_pack("{s:s, s:o, s:o, s:I, s:I, s:o, s:b, s:o}", "event",
                                        "answers", "contact", render_json_str(label),
                                        "instrument", render_json_str(q->instrument), "total",
                                        (json_int_t)sc.total, "max_total", (json_int_t)sc.max_total,
                                        "band", sc.band[0] ? json_string(sc.band) : json_null(),
                                        "flagged", sc.flagged, "values", vals));
        goto out;
    }
    render_str(stdout, label, 40);
    fputs(" answered ", stdout);
    render_str(stdout, q->instrument, 40);
    printf(": total %llu of %llu", (unsigned long long)sc.total, (unsigned long long)sc.max_total);
    if (sc.band[0])
        printf(" (%s)", sc.band);
    fputc('\n', stdout);
    for (size_t i = 0; i < q->n_items && i < ct->answers->n_values; i++) {
        printf("  %2zu. ", i + 1);
        render_str(stdout, q->items[i]->text, 60);
        printf(": %u", (unsigned)ct->answers->values[i]);
        const char *l = quest_item_label(q->items[i], ct->answers->values[i]);
        if (*l) {
            fputs(" (", stdout);
            render_str(stdout, l, 40);
            fputc(')', stdout);
        }
        fputc('\n', stdout);
    }
    if (sc.flagged) {
        printf("\n  !!! ATTENTION: ");
        render_str(stdout, label, 40);
        printf(" answered PHQ-9 item 9 (thoughts that they would be better off dead or of\n"
               "  !!! hurting themselves) with %u: \"%s\". Please follow up promptly.\n\n",
               (unsigned)sc.flag_value, quest_item_label(q->items[8], sc.flag_value));
        fflush(stdout);
        app_warn("%s's PHQ-9 item 9 is above 0 (thoughts of self-harm)", label);
    }
out:
    cstore_abort(t);
    render_message_free(m);
    render_message_free(qm);
    content_free(ct);
    content_free(qct);
}

static void show_new(app *a, const Alcove__Local__Contact *c, const inbox_result *r, tally *ty,
                     int print_messages)
{
    const char *label = c->label ? c->label : "?";
    switch (r->outcome) {
    case INBOX_STORED:
        ty->stored++;
        break;
    case INBOX_INTRO:
        ty->intros++;
        if (ty->json)
            json_array_append_new(ty->json, json_pack("{s:s, s:s, s:s}", "event", "accepted",
                                                      "contact", label, "their_name",
                                                      c->their_name ? c->their_name : ""));
        else
            printf("%s accepted your invite (they call themselves '%s').\n", label,
                   c->their_name ? c->their_name : "");
        return;
    case INBOX_REJECTED:
        ty->rejected++;
        if (ty->json)
            json_array_append_new(ty->json, json_pack("{s:s, s:s, s:s}", "event", "rejected",
                                                      "contact", label, "reason", r->why));
        else
            app_warn("a message in %s's mailbox was rejected: %s", label, r->why);
        return;
    case INBOX_SKIPPED:
        return;
    case INBOX_RECEIPT:
        ty->receipts++;
        return;
    case INBOX_REKEYED:
        ty->rekeyed++;
        if (ty->json)
            json_array_append_new(ty->json, json_pack("{s:s, s:o}", "event", "rekeyed", "contact",
                                                      render_json_str(label)));
        else {
            render_str(stdout, label, 40);
            printf(": your conversation was re-keyed (a fresh session replaced the old one; the "
                   "safety number is unchanged).\n");
        }
        return;
    }
    if (r->body == ALCOVE__E2E__CONTENT__BODY_ANSWERS || r->body == ALCOVE__E2E__CONTENT__BODY_QUESTIONNAIRE) {
        show_practice(a, c, r, ty);
        if (!print_messages)
            return;
    }
    if (!print_messages && !ty->json)
        return;
    /* Show the stored message itself. */
    cstore_txn *t = NULL;
    uint8_t *val = NULL;
    size_t vlen = 0;
    if (cstore_begin(a->store, 0, &t) != 0)
        return;
    if (cstore_get(t, CS_MESSAGES, r->key, 24, &val, &vlen) == 0) {
        Alcove__Local__Message *m = alcove__local__message__unpack(NULL, vlen, val);
        if (m != NULL) {
            if (ty->json)
                json_array_append_new(ty->json, render_message_json(c, m));
            else
                render_message(stdout, c, m);
            alcove__local__message__free_unpacked(m, NULL);
        }
        cstore_free_value(val, vlen);
    }
    cstore_abort(t);
}

/* Take a batch of Stored messages for contact id in one transaction, then
 * ack.  *c is replaced by the updated contact.  Returns 0 or an error
 * (printed). */
static int take_batch(app *a, net *n, Alcove__Local__Contact **c, Alcove__Wire__Stored **msgs,
                      size_t count, tally *ty, int print_messages)
{
    cstore_txn *t = NULL;
    inbox_result *res = calloc(count ? count : 1, sizeof *res);
    Alcove__Local__Contact *fresh = NULL;
    int e;
    if (res == NULL)
        return ALCOVE_ENOMEM;
    if ((e = cstore_begin(a->store, 1, &t)) != 0 || (e = contact_load(t, (*c)->id.data, &fresh)) != 0)
        goto fail;
    for (size_t i = 0; i < count; i++)
        if ((e = inbox_take(a, t, &fresh, msgs[i], &res[i])) != 0)
            goto fail;
    if ((e = cstore_commit(t)) != 0) {
        t = NULL;
        goto fail;
    }
    t = NULL;
    contact_free(*c);
    *c = fresh;
    fault_point("after-commit");
    /* Only now, with everything committed locally, tell the relay. */
    if (n != NULL && (*c)->inbox->last_seq > 0) {
        int st = net_ack(n, (*c)->inbox->recv_id.data, (*c)->inbox->last_seq);
        if (st > 0)
            app_warn("the relay did not take the ack (%s); messages will be skipped next time",
                     net_status_text(st));
    }
    ty->fetched += (unsigned)count;
    size_t nids = 0, broken = 0, queued = 0;
    ProtobufCBinaryData *ids = calloc(count, sizeof *ids);
    for (size_t i = 0; i < count; i++) {
        show_new(a, *c, &res[i], ty, print_messages);
        if (res[i].outcome == INBOX_STORED && ids != NULL &&
            res[i].body != ALCOVE__E2E__CONTENT__BODY_LEAVE &&
            res[i].body != ALCOVE__E2E__CONTENT__BODY_INTRO)
            ids[nids++] = (ProtobufCBinaryData){16, res[i].msg_id};
        broken += res[i].undecryptable != 0;
        queued += res[i].queued_reply != 0;
    }
    if (broken > 0) {
        const char *label = (*c)->label ? (*c)->label : "?";
        ty->broken++;
        if ((*c)->has_restored_dh_pub)
            app_error("%zu message(s) from %s cannot be decrypted: this conversation was restored "
                      "from an older backup and %s's app has moved on since",
                      broken, label, label);
        else
            app_error("%zu message(s) from %s cannot be decrypted: the two apps no longer share "
                      "a session (one of you may have restored an older backup)",
                      broken, label);
        app_hint("run 'alcove reinvite %s' to re-key the conversation (no new meeting needed)",
                 label);
    }
    if (ty->np != NULL && queued > 0)
        (void)outbox_flush(a, ty->np);
    if (ty->np != NULL && nids > 0 && outbox_receipts_wanted(*c, 0)) {
        Alcove__E2e__Receipt rcpt = ALCOVE__E2E__RECEIPT__INIT;
        rcpt.has_kind = 1;
        rcpt.kind = ALCOVE__E2E__RECEIPT__KIND__DELIVERED;
        rcpt.n_msg_ids = nids;
        rcpt.msg_ids = ids;
        Alcove__E2e__Content ct = ALCOVE__E2E__CONTENT__INIT;
        ct.body_case = ALCOVE__E2E__CONTENT__BODY_RECEIPT;
        ct.receipt = &rcpt;
        outbox_opts o;
        memset(&o, 0, sizeof o);
        o.quiet = 1;
        o.audit_event = AUDIT_RECEIPT_SENT;
        uint8_t cid[16];
        memcpy(cid, (*c)->id.data, 16);
        (void)outbox_send_to(a, ty->np, cid, &ct, "receipt", &o);
    }
    free(ids);
    free(res);
    return 0;
fail:
    cstore_abort(t);
    if (fresh != NULL)
        contact_free(fresh);
    free(res);
    app_error("cannot store fetched messages: %s (nothing was acked; run fetch again)",
              alcove_strerror(e));
    return e;
}

/* Log in to contact c's inbox on n; 0, or 1 when the mailbox is gone. */
static int login_inbox(net *n, const Alcove__Local__Contact *c)
{
    const Alcove__Local__Inbox *ib = c->inbox;
    int st = net_login(n, ib->recv_id.data, ib->auth_sk.data);
    if (st == 0)
        return 0;
    if (st > 0)
        app_warn("%s's mailbox is gone from %s (%s)", c->label ? c->label : "a contact",
                 ib->relay_address, net_status_text(st));
    return 1;
}

static int usable_inbox(const Alcove__Local__Contact *c)
{
    return c->state != ALCOVE__LOCAL__CONTACT__STATE__LEFT && c->inbox != NULL &&
           c->inbox->relay_address != NULL && c->inbox->recv_id.len == 16 &&
           c->inbox->auth_sk.len == 64;
}

/* Fetch everything waiting for contact *c on n. */
static int drain_inbox(app *a, net *n, Alcove__Local__Contact **c, tally *ty, int print_messages)
{
    for (;;) {
        Alcove__Wire__RelayMessage *m = NULL;
        int st = net_fetch(n, (*c)->inbox->recv_id.data, (*c)->inbox->last_seq, 0, &m);
        if (st != 0) {
            if (st > 0)
                app_warn("cannot fetch %s's mailbox: %s", (*c)->label, net_status_text(st));
            return st;
        }
        Alcove__Wire__FetchResult *fr = m->reply->fetch;
        int more = fr->more;
        int e = fr->n_messages ? take_batch(a, n, c, fr->messages, fr->n_messages, ty, print_messages)
                               : 0;
        alcove__wire__relay_message__free_unpacked(m, NULL);
        if (e != 0)
            return e;
        if (!more || fr->n_messages == 0)
            return 0;
    }
}

static int load_contacts(app *a, Alcove__Local__Contact ***cs, size_t *n)
{
    cstore_txn *t = NULL;
    int e = cstore_begin(a->store, 0, &t);
    if (e == 0)
        e = contact_list(t, cs, n);
    cstore_abort(t);
    if (e != 0)
        app_error("cannot read contacts: %s", alcove_strerror(e));
    return e;
}

int cmd_fetch(app *a, int argc, char **argv)
{
    if (argc > 1)
        return usage_error("unexpected argument '%s'", argv[1]);
    if (app_open(a) != 0)
        return EXIT_FAIL;
    netpool np;
    memset(&np, 0, sizeof np);
    Alcove__Local__Contact **cs = NULL;
    size_t nc = 0;
    tally ty = {a->json ? json_array() : NULL, 0, 0, 0, 0, 0, 0, 0, 0, &np};
    int rc = EXIT_FAIL, failures = 0;
    if (load_contacts(a, &cs, &nc) != 0)
        goto out;
    int q = outbox_flush(a, &np);
    if (q > 0 && !a->json)
        app_warn("%d message(s) still waiting to be delivered", q);
    for (size_t i = 0; i < nc; i++) {
        if (!usable_inbox(cs[i]))
            continue;
        net *n = netpool_get(&np, cs[i]->inbox->relay_address);
        if (n == NULL) {
            failures++;
            continue;
        }
        if (login_inbox(n, cs[i]) != 0)
            continue;
        /* A crash after the last commit may have left the ack unsent. */
        if (cs[i]->inbox->last_seq > 0)
            (void)net_ack(n, cs[i]->inbox->recv_id.data, cs[i]->inbox->last_seq);
        if (drain_inbox(a, n, &cs[i], &ty, 0) < 0)
            failures++;
    }
    if (a->json) {
        json_t *j = json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "events", ty.json,
                              "new_messages", (json_int_t)ty.stored, "accepted",
                              (json_int_t)ty.intros, "rejected", (json_int_t)ty.rejected,
                              "fetched", (json_int_t)ty.fetched, "receipts",
                              (json_int_t)ty.receipts, "rekeyed", (json_int_t)ty.rekeyed,
                              "undecryptable_contacts", (json_int_t)ty.broken, "flagged",
                              (json_int_t)ty.flagged);
        ty.json = NULL;
        if (j == NULL || render_json_dump(stdout, j) != 0)
            app_error("cannot print JSON");
        json_decref(j);
    } else if (ty.stored == 0 && ty.intros == 0) {
        printf("No new messages.\n");
    } else if (ty.stored > 0) {
        printf("%u new message%s. Read with: alcove read\n", ty.stored, ty.stored == 1 ? "" : "s");
    }
    rc = failures || ty.broken ? EXIT_FAIL : EXIT_OK;
out:
    json_decref(ty.json);
    contact_list_free(cs, nc);
    netpool_close(&np);
    return rc;
}

/* --- listen ---------------------------------------------------------- */

static volatile sig_atomic_t stop_listening;

static void on_stop(int sig)
{
    (void)sig;
    stop_listening = 1;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (!stop_listening && nanosleep(&ts, &ts) != 0)
        ;
}

/* One connected session: subscribe, catch up, then print pushes until the
 * connection fails (returns 1) or we are told to stop (returns 0). */
/* listen --json: one JSON object per line for each event so far. */
static void flush_json_lines(tally *ty)
{
    size_t i;
    json_t *ev;
    if (ty->json == NULL)
        return;
    json_array_foreach(ty->json, i, ev) {
        char *line = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
        if (line != NULL) {
            puts(line);
            free(line);
        }
    }
    json_array_clear(ty->json);
    fflush(stdout);
}

static int listen_once(app *a, net *n, Alcove__Local__Contact **cs, size_t nc, tally *ty,
                       unsigned idle_exit_s)
{
    for (size_t i = 0; i < nc; i++) {
        if (!usable_inbox(cs[i]) || strcmp(cs[i]->inbox->relay_address, n->relay) != 0)
            continue;
        if (login_inbox(n, cs[i]) != 0)
            continue;
        /* Subscribe first, then fetch: nothing falls between the two. */
        if (net_subscribe(n, cs[i]->inbox->recv_id.data) != 0)
            return 1;
        if (drain_inbox(a, n, &cs[i], ty, 1) < 0)
            return 1;
        flush_json_lines(ty);
    }
    if (!a->json) {
        printf("Listening for messages (Ctrl-C to stop)...\n");
        fflush(stdout);
    }
    uint64_t last = app_wall_ms(), last_ping = last;
    while (!stop_listening) {
        Alcove__Wire__RelayMessage *m = NULL;
        int e = alcove_link_recv(n->link, &m, 1000);
        uint64_t now = app_wall_ms();
        if (e == ALCOVE_ETIMEDOUT) {
            if (idle_exit_s && now - last >= idle_exit_s * 1000ull)
                return 0;
            if (now - last_ping >= 30000) {
                Alcove__Wire__Ping p = ALCOVE__WIRE__PING__INIT;
                Alcove__Wire__Request req = ALCOVE__WIRE__REQUEST__INIT;
                req.cmd_case = ALCOVE__WIRE__REQUEST__CMD_PING;
                req.ping = &p;
                if (alcove_link_send(n->link, &req, 0, NET_TIMEOUT_MS) != 0)
                    return 1;
                last_ping = now;
            }
            continue;
        }
        if (e != 0)
            return 1;
        if (m->kind_case == ALCOVE__WIRE__RELAY_MESSAGE__KIND_PUSH)
            n->push_seen = 1;
        alcove__wire__relay_message__free_unpacked(m, NULL);
        /* A push is only a wake-up call: fetching after the last stored
         * seq never skips a message whose push was missed or reordered. */
        while (n->push_seen && !stop_listening) {
            n->push_seen = 0;
            for (size_t i = 0; i < nc; i++) {
                if (!usable_inbox(cs[i]) || strcmp(cs[i]->inbox->relay_address, n->relay) != 0)
                    continue;
                if (drain_inbox(a, n, &cs[i], ty, 1) < 0)
                    return 1;
                flush_json_lines(ty);
            }
            fflush(stdout);
            last = now;
        }
        continue;
    }
    return 0;
}

int cmd_listen(app *a, int argc, char **argv)
{
    static const struct option opts[] = {
        {"once-idle", required_argument, NULL, 'i'},
        {NULL, 0, NULL, 0},
    };
    unsigned idle_exit = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        errno = 0;
        unsigned long v = c == 'i' ? strtoul(optarg, &end, 10) : 0;
        if (c == 'i' && errno == 0 && end != optarg && *end == '\0' && v > 0 && v <= 86400)
            idle_exit = (unsigned)v;
        else
            return usage_error("unknown option or bad value: %s", argv[optind - 1]);
    }
    if (optind != argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (app_open(a) != 0)
        return EXIT_FAIL;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    netpool lnp;
    memset(&lnp, 0, sizeof lnp);
    tally ty = {a->json ? json_array() : NULL, 0, 0, 0, 0, 0, 0, 0, 0, &lnp};
    unsigned backoff = 1000;
    int rc = EXIT_OK;
    while (!stop_listening) {
        Alcove__Local__Contact **cs = NULL;
        size_t nc = 0;
        if (load_contacts(a, &cs, &nc) != 0) {
            rc = EXIT_FAIL;
            break;
        }
        netpool np;
        memset(&np, 0, sizeof np);
        (void)outbox_flush(a, &np);
        netpool_close(&np);
        net n;
        int failed = 1;
        if (net_open(&n, a->meta->relay_address) == 0) {
            backoff = 1000;
            failed = listen_once(a, &n, cs, nc, &ty, idle_exit);
            net_close(&n);
        }
        contact_list_free(cs, nc);
        if (!failed)
            break;
        if (stop_listening)
            break;
        app_warn("connection to the relay lost; reconnecting in %u s", backoff / 1000);
        sleep_ms(backoff);
        if (backoff < 60000)
            backoff *= 2;
    }
    netpool_close(&lnp);
    json_decref(ty.json);
    return rc;
}
