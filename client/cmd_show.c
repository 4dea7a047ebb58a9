/* contacts, read: commands that show what is stored. */
#include <getopt.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "audit.h"
#include "err.h"
#include "net.h"
#include "outbox.h"
#include "render.h"
#include "safety.h"

int parse_flags(int argc, char **argv, const struct option *opts, int *flags)
{
    int ch, idx;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":", opts, &idx)) != -1) {
        if (ch != 0)
            return optopt ? usage_error("unknown option '-%c'", optopt)
                          : usage_error("unknown option '%s'", argv[optind - 1]);
        flags[idx] = 1;
    }
    return 0;
}

static int contact_cmp(const void *x, const void *y)
{
    const Alcove__Local__Contact *a = *(Alcove__Local__Contact *const *)x;
    const Alcove__Local__Contact *b = *(Alcove__Local__Contact *const *)y;
    int r = strcasecmp(a->label ? a->label : "", b->label ? b->label : "");
    return r ? r : strcmp(a->label ? a->label : "", b->label ? b->label : "");
}

/* --- contacts ---------------------------------------------------------------- */

typedef struct contact_stats {
    size_t unread;
    Alcove__Local__Message *last_checkin; /* newest incoming, valid CheckIn */
    int last_out; /* newest outgoing message: 0 none, 1 queued, 2 sent, 3 delivered, 4 read */
} contact_stats;

static const char *const LAST_OUT_TEXT[] = {"-", "queued", "sent", "✓ delivered", "✓✓ read"};
static const char *const LAST_OUT_JSON[] = {NULL, "queued", "sent", "delivered", "read"};

static int stats_one(void *ctx, const uint8_t key[24], Alcove__Local__Message **mp)
{
    contact_stats *s = ctx;
    Alcove__Local__Message *m = *mp;
    Alcove__E2e__Content *ct = NULL;
    (void)key;
    if (m->outgoing && m->problem == NULL && m->has_content) {
        Alcove__E2e__Content *oc = NULL;
        if (content_decode(m, &oc) == 0 && oc->body_case != ALCOVE__E2E__CONTENT__BODY_RECEIPT &&
            oc->body_case != ALCOVE__E2E__CONTENT__BODY_INTRO)
            s->last_out = m->status == ALCOVE__LOCAL__MESSAGE__STATUS__QUEUED ? 1
                          : m->has_read_at && m->read_at                      ? 4
                          : m->has_delivered_at && m->delivered_at            ? 3
                                                                              : 2;
        content_free(oc);
    }
    if (m->outgoing || m->problem != NULL)
        return 0;
    if (!m->read)
        s->unread++;
    if (content_decode(m, &ct) != 0)
        return 0;
    if (ct->body_case == ALCOVE__E2E__CONTENT__BODY_CHECKIN) {
        render_message_free(s->last_checkin);
        s->last_checkin = m;
        *mp = NULL;
    }
    content_free(ct);
    return 0;
}

static uint64_t msg_time(const Alcove__Local__Message *m)
{
    return m->has_sent_at && m->sent_at ? m->sent_at : m->received_at;
}

/* "2024-05-01 mood 6/10, anxiety 4/10" or "-" into out. */
static void last_checkin_text(const Alcove__Local__Message *m, char *out, size_t cap)
{
    Alcove__E2e__Content *ct = NULL;
    char day[16];
    snprintf(out, cap, "-");
    if (m == NULL || content_decode(m, &ct) != 0)
        return;
    const Alcove__E2e__CheckIn *ci = ct->checkin;
    render_date(msg_time(m), day, sizeof day);
    int n = snprintf(out, cap, "%s", day);
    if (ci->has_mood && n > 0 && (size_t)n < cap)
        n += snprintf(out + n, cap - (size_t)n, " mood %u", (unsigned)ci->mood);
    if (ci->has_anxiety && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, "%sanxiety %u", ci->has_mood ? ", " : " ",
                 (unsigned)ci->anxiety);
    content_free(ct);
}

static json_t *j_time(int has, uint64_t ms)
{
    return has && ms <= (uint64_t)LLONG_MAX ? json_integer((json_int_t)ms) : json_null();
}

static json_t *contact_json(const Alcove__Local__Contact *c, const contact_stats *s)
{
    const Alcove__Local__Message *lm = s->last_checkin;
    json_t *o = json_object(), *last = json_null();
    Alcove__E2e__Content *ct = NULL;
    int pending = c->state == ALCOVE__LOCAL__CONTACT__STATE__PENDING;
    if (lm != NULL && content_decode(lm, &ct) == 0) {
        json_decref(last);
        last = render_checkin_json(ct->checkin);
        if (last != NULL &&
            (json_object_set_new(last, "sent_at", j_time(lm->has_sent_at, lm->sent_at)) != 0 ||
             json_object_set_new(last, "received_at",
                                 j_time(lm->has_received_at, lm->received_at)) != 0)) {
            json_decref(last);
            last = NULL;
        }
        content_free(ct);
    }
    int bad = o == NULL || json_object_set_new(o, "last_checkin", last) != 0;
    bad = bad || json_object_set_new(o, "label", render_json_str(c->label)) != 0;
    bad = bad || json_object_set_new(o, "name", render_json_str(c->their_name)) != 0;
    bad = bad || json_object_set_new(o, "state", json_string(contact_state_name(c->state))) != 0;
    bad = bad || json_object_set_new(o, "unread", json_integer((json_int_t)s->unread)) != 0;
    bad = bad || json_object_set_new(o, "verified", json_boolean(!pending && c->verified)) != 0;
    bad = bad || json_object_set_new(o, "last_sent", s->last_out ? json_string(LAST_OUT_JSON[s->last_out])
                                                                 : json_null()) != 0;
    if (bad) {
        if (o == NULL)
            json_decref(last);
        json_decref(o);
        return NULL;
    }
    return o;
}

#define COL_MAX 24u

static void contacts_table(Alcove__Local__Contact **v, const contact_stats *st, size_t n)
{
    size_t wl = strlen("LABEL"), wn = strlen("NAME"), wc = strlen("LAST CHECK-IN");
    char last[64];
    for (size_t i = 0; i < n; i++) {
        size_t l = render_width(v[i]->label), m = render_width(v[i]->their_name);
        wl = l > wl ? (l < COL_MAX ? l : COL_MAX) : wl;
        wn = m > wn ? (m < COL_MAX ? m : COL_MAX) : wn;
        last_checkin_text(st[i].last_checkin, last, sizeof last);
        wc = strlen(last) > wc ? strlen(last) : wc;
    }
    printf("%-*s  %-*s  %-7s  %6s  %-*s  %-8s  %s\n", (int)wl, "LABEL", (int)wn, "NAME", "STATE",
           "UNREAD", (int)wc, "LAST CHECK-IN", "VERIFIED", "YOUR LAST MESSAGE");
    for (size_t i = 0; i < n; i++) {
        const Alcove__Local__Contact *c = v[i];
        int pending = c->state == ALCOVE__LOCAL__CONTACT__STATE__PENDING;
        render_cell(stdout, c->label, wl);
        fputs("  ", stdout);
        render_cell(stdout, c->their_name != NULL && *c->their_name ? c->their_name : "-", wn);
        last_checkin_text(st[i].last_checkin, last, sizeof last);
        printf("  %-7s  %6zu  %-*s  %-8s  %s\n", contact_state_name(c->state), st[i].unread,
               (int)wc, last, pending ? "-" : c->verified ? "yes" : "no",
               LAST_OUT_TEXT[st[i].last_out]);
    }
}

int cmd_contacts(app *a, int argc, char **argv)
{
    static const struct option opts[] = {{NULL, 0, NULL, 0}};
    Alcove__Local__Contact **v = NULL;
    contact_stats *st = NULL;
    cstore_txn *t = NULL;
    json_t *arr = NULL;
    size_t n = 0;
    int rc = parse_flags(argc, argv, opts, NULL), err;
    if (rc != 0)
        return rc;
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (app_open(a) != 0)
        return EXIT_FAIL;
    rc = EXIT_FAIL;
    if ((err = cstore_begin(a->store, 0, &t)) != 0 || (err = contact_list(t, &v, &n)) != 0) {
        app_error("cannot read contacts: %s", alcove_strerror(err));
        goto out;
    }
    if (n > 0 && (st = calloc(n, sizeof *st)) == NULL) {
        app_error("out of memory");
        goto out;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, contact_cmp);
    for (size_t i = 0; i < n; i++) {
        if ((err = render_each_message(t, v[i], stats_one, &st[i])) != 0) {
            app_error("cannot read the messages of '%s': %s", v[i]->label ? v[i]->label : "?",
                      alcove_strerror(err));
            goto out;
        }
    }
    cstore_abort(t);
    t = NULL;
    if (a->json) {
        render_json_secure();
        int bad = (arr = json_array()) == NULL;
        for (size_t i = 0; !bad && i < n; i++)
            bad = json_array_append_new(arr, contact_json(v[i], &st[i])) != 0;
        if (bad || render_json_dump(stdout, arr) != 0) {
            app_error("cannot write the JSON output");
            goto out;
        }
    } else if (n == 0) {
        printf("no contacts yet: 'alcove invite --name LABEL' or 'alcove accept CODE'\n");
    } else {
        contacts_table(v, st, n);
    }
    rc = render_flush(stdout);
out:
    cstore_abort(t);
    json_decref(arr);
    for (size_t i = 0; st != NULL && i < n; i++)
        render_message_free(st[i].last_checkin);
    free(st);
    contact_list_free(v, n);
    return rc;
}

/* --- read -------------------------------------------------------------------- */

typedef struct read_ctx {
    app *a;
    const Alcove__Local__Contact *c;
    int all, grouped, shown_here;
    size_t shown;
    json_t *arr;
    uint8_t (*keys)[24]; /* incoming unread messages shown: mark them read */
    uint8_t (*ids)[16];  /* and their msg_ids (zeros when absent), for read receipts */
    size_t nkeys, capkeys;
} read_ctx;

static int read_one(void *ctx, const uint8_t key[24], Alcove__Local__Message **mp)
{
    read_ctx *r = ctx;
    const Alcove__Local__Message *m = *mp;
    int unread = !m->outgoing && !m->read;
    if (!r->all && !unread)
        return 0;
    if (m->outgoing) { /* a receipt still waiting for the relay is not a message */
        Alcove__E2e__Content *ct = NULL;
        int receipt = content_decode(m, &ct) == 0 &&
                      ct->body_case == ALCOVE__E2E__CONTENT__BODY_RECEIPT;
        content_free(ct);
        if (receipt)
            return 0;
    }
    if (r->a->json) {
        if (json_array_append_new(r->arr, render_message_json(r->c, m)) != 0)
            return ALCOVE_ENOMEM;
    } else {
        if (r->grouped && !r->shown_here) {
            fputs(r->shown ? "\n== " : "== ", stdout);
            render_str(stdout, r->c->label, 40);
            fputs(" ==\n", stdout);
        }
        if (r->shown_here)
            fputc('\n', stdout);
        render_message(stdout, r->c, m);
    }
    r->shown_here = 1;
    r->shown++;
    if (unread) {
        if (r->nkeys == r->capkeys) {
            size_t ncap = r->capkeys ? 2 * r->capkeys : 32;
            uint8_t(*nk)[24] = realloc(r->keys, ncap * sizeof *nk);
            if (nk == NULL)
                return ALCOVE_ENOMEM;
            r->keys = nk;
            uint8_t(*ni)[16] = realloc(r->ids, ncap * sizeof *ni);
            if (ni == NULL)
                return ALCOVE_ENOMEM;
            r->ids = ni;
            r->capkeys = ncap;
        }
        memset(r->ids[r->nkeys], 0, 16);
        if (m->has_msg_id && m->msg_id.len == 16 && m->problem == NULL)
            memcpy(r->ids[r->nkeys], m->msg_id.data, 16);
        memcpy(r->keys[r->nkeys++], key, 24);
    }
    return 0;
}

/* Mark the messages under keys read, in one write transaction. */
static int mark_read(app *a, uint8_t (*keys)[24], size_t n)
{
    cstore_txn *t = NULL;
    int err = cstore_begin(a->store, 1, &t);
    for (size_t i = 0; err == 0 && i < n; i++) {
        uint8_t *val = NULL;
        size_t vlen = 0;
        if ((err = cstore_get(t, CS_MESSAGES, keys[i], 24, &val, &vlen)) == ALCOVE_ENOTFOUND) {
            err = 0; /* forgotten meanwhile */
            continue;
        }
        if (err != 0)
            break;
        Alcove__Local__Message *m =
            alcove__local__message__unpack(&render_wipe_allocator, vlen, val);
        cstore_free_value(val, vlen);
        if (m == NULL) {
            err = ALCOVE_ECORRUPT;
            break;
        }
        if (!m->read) {
            m->read = 1;
            m->has_read = 1;
            err = message_put(t, keys[i], m);
        }
        render_message_free(m);
    }
    /* One audit entry per contact whose messages were read. */
    for (size_t i = 0; err == 0 && i < n; i++) {
        int first = 1;
        for (size_t k = 0; k < i; k++)
            if (memcmp(keys[k], keys[i], 16) == 0)
                first = 0;
        if (first)
            err = audit_append(t, a->now(), AUDIT_MESSAGE_READ, keys[i]);
    }
    if (err == 0) {
        err = cstore_commit(t);
        t = NULL;
    }
    cstore_abort(t);
    if (err != 0) {
        app_error("cannot mark the messages read: %s", alcove_strerror(err));
        return EXIT_FAIL;
    }
    return 0;
}

/* Read receipts to the contacts that get them (best effort: a receipt that
 * cannot be delivered now stays queued and goes with the next send). */
static void send_read_receipts(app *a, uint8_t (*keys)[24], uint8_t (*ids)[16], size_t n)
{
    static const uint8_t zero[16];
    netpool np;
    memset(&np, 0, sizeof np);
    ProtobufCBinaryData *v = calloc(n, sizeof *v);
    for (size_t i = 0; v != NULL && i < n; i++) {
        int first = 1;
        for (size_t k = 0; k < i; k++)
            if (memcmp(keys[k], keys[i], 16) == 0)
                first = 0;
        if (!first)
            continue;
        Alcove__Local__Contact *c = NULL;
        cstore_txn *t = NULL;
        int want = 0;
        if (cstore_begin(a->store, 0, &t) == 0 && contact_load(t, keys[i], &c) == 0)
            want = outbox_receipts_wanted(c, 1) &&
                   c->state == ALCOVE__LOCAL__CONTACT__STATE__ACTIVE;
        cstore_abort(t);
        contact_free(c);
        if (!want)
            continue;
        size_t nv = 0;
        for (size_t k = i; k < n; k++)
            if (memcmp(keys[k], keys[i], 16) == 0 && memcmp(ids[k], zero, 16) != 0)
                v[nv++] = (ProtobufCBinaryData){16, ids[k]};
        if (nv == 0)
            continue;
        Alcove__E2e__Receipt rcpt = ALCOVE__E2E__RECEIPT__INIT;
        rcpt.has_kind = 1;
        rcpt.kind = ALCOVE__E2E__RECEIPT__KIND__READ;
        rcpt.n_msg_ids = nv;
        rcpt.msg_ids = v;
        Alcove__E2e__Content ct = ALCOVE__E2E__CONTENT__INIT;
        ct.body_case = ALCOVE__E2E__CONTENT__BODY_RECEIPT;
        ct.receipt = &rcpt;
        outbox_opts o;
        memset(&o, 0, sizeof o);
        o.quiet = 1;
        o.audit_event = AUDIT_RECEIPT_SENT;
        (void)outbox_send_to(a, &np, keys[i], &ct, "read receipt", &o);
    }
    free(v);
    netpool_close(&np);
}

int cmd_read(app *a, int argc, char **argv)
{
    static const struct option opts[] = {{"all", no_argument, NULL, 0}, {NULL, 0, NULL, 0}};
    int flags[1] = {0};
    Alcove__Local__Contact **v = NULL, *one = NULL;
    cstore_txn *t = NULL;
    size_t n = 0;
    read_ctx r;
    int rc = parse_flags(argc, argv, opts, flags), err;
    if (rc != 0)
        return rc;
    if (argc - optind > 1)
        return usage_error("unexpected argument '%s'", argv[optind + 1]);
    const char *label = optind < argc ? argv[optind] : NULL;
    if (app_open(a) != 0)
        return EXIT_FAIL;
    memset(&r, 0, sizeof r);
    r.a = a;
    r.all = flags[0];
    rc = EXIT_FAIL;
    if (a->json) {
        render_json_secure();
        if ((r.arr = json_array()) == NULL) {
            app_error("out of memory");
            goto out;
        }
    }
    if ((err = cstore_begin(a->store, 0, &t)) != 0) {
        app_error("cannot read the local store: %s", alcove_strerror(err));
        goto out;
    }
    if (label != NULL) {
        if (render_find_contact(t, label, &one) != 0)
            goto out;
        v = &one;
        n = 1;
    } else {
        if ((err = contact_list(t, &v, &n)) != 0) {
            app_error("cannot read contacts: %s", alcove_strerror(err));
            goto out;
        }
        if (n > 1)
            qsort(v, n, sizeof *v, contact_cmp);
        r.grouped = 1;
    }
    for (size_t i = 0; i < n; i++) {
        r.c = v[i];
        r.shown_here = 0;
        if ((err = render_each_message(t, v[i], read_one, &r)) != 0) {
            app_error("cannot read the messages of '%s': %s", v[i]->label ? v[i]->label : "?",
                      alcove_strerror(err));
            goto out;
        }
    }
    cstore_abort(t);
    t = NULL;
    if (a->json) {
        if (render_json_dump(stdout, r.arr) != 0) {
            app_error("cannot write the JSON output");
            goto out;
        }
    } else if (r.shown == 0) {
        printf("%s", r.all ? "no messages" : "no unread messages");
        if (label != NULL) {
            fputs(r.all ? " with " : " from ", stdout);
            render_str(stdout, one->label, 40);
        }
        fputc('\n', stdout);
    }
    if ((rc = render_flush(stdout)) != 0)
        goto out;
    rc = r.nkeys > 0 ? mark_read(a, r.keys, r.nkeys) : 0;
    if (rc == 0 && r.nkeys > 0)
        send_read_receipts(a, r.keys, r.ids, r.nkeys);
out:
    cstore_abort(t);
    json_decref(r.arr);
    if (r.keys != NULL) {
        sodium_memzero(r.keys, r.capkeys * sizeof *r.keys);
        free(r.keys);
    }
    free(r.ids);
    if (one != NULL)
        contact_free(one);
    else
        contact_list_free(v, n);
    return rc;
}

/* --- verify ------------------------------------------------------------------ */
