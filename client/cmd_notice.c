/* alcove notice set|clear|show, alcove receipts CONTACT. */
#define _XOPEN_SOURCE 700 /* strptime */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "commands.h"
#include "err.h"
#include "invite.h"
#include "outbox.h"
#include "practice.h"
#include "render.h"

/* "2024-06-01", "2024-06-01 17:00", "2024-06-01T17:00" (local time), or a
 * duration from now: "3d", "12h", "30m".  Returns Unix ms, 0 on error. */
uint64_t parse_when(const char *s, uint64_t now)
{
    struct tm tm;
    char *end;
    memset(&tm, 0, sizeof tm);
    tm.tm_isdst = -1;
    if ((end = strptime(s, "%Y-%m-%d", &tm)) != NULL) {
        if (*end == ' ' || *end == 'T') {
            char *e2 = strptime(end + 1, "%H:%M", &tm);
            if (e2 == NULL || *e2 != '\0')
                return 0;
        } else if (*end != '\0') {
            return 0;
        }
        time_t t = mktime(&tm);
        return t <= 0 ? 0 : (uint64_t)t * 1000u;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || v == 0 || v > 100000)
        return 0;
    uint64_t mul = strcmp(end, "d") == 0 ? 86400000ull
                   : strcmp(end, "h") == 0 ? 3600000ull
                   : strcmp(end, "m") == 0 ? 60000ull
                                           : 0;
    return mul ? now + v * mul : 0;
}

static int save_my_notice(app *a, const char *text, uint64_t until)
{
    cstore_txn *t = NULL;
    uint8_t *val = NULL;
    size_t vlen = 0;
    int e = cstore_begin(a->store, 1, &t);
    if (e == 0)
        e = cstore_get(t, CS_META, "meta", 4, &val, &vlen);
    if (e != 0) {
        cstore_abort(t);
        return e;
    }
    Alcove__Local__Meta *m = alcove__local__meta__unpack(NULL, vlen, val);
    cstore_free_value(val, vlen);
    if (m == NULL) {
        cstore_abort(t);
        return ALCOVE_ECORRUPT;
    }
    char *old = m->my_notice;
    m->my_notice = (char *)(uintptr_t)text;
    m->has_my_notice_until = 1;
    m->my_notice_until = until;
    e = app_save_meta(t, m);
    m->my_notice = old;
    alcove__local__meta__free_unpacked(m, NULL);
    if (e == 0) {
        e = cstore_commit(t);
        t = NULL;
    }
    cstore_abort(t);
    return e;
}

int cmd_notice(app *a, int argc, char **argv)
{
    static const struct option opts[] = {{"until", required_argument, NULL, 'u'},
                                         {NULL, 0, NULL, 0}};
    const char *until_s = NULL;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'u')
            until_s = optarg;
        else
            return usage_error("unknown option or missing value: %s", argv[optind - 1]);
    }
    const char *sub = optind < argc ? argv[optind] : "show";
    const char *text = NULL;
    if (strcmp(sub, "set") == 0) {
        if (argc - optind != 2)
            return usage_error("notice set needs the TEXT (one argument; quote it)");
        text = argv[optind + 1];
        if (*text == '\0' || strlen(text) > ALCOVE_INVITE_NOTICE_MAX)
            return usage_error("the notice must be 1-%u bytes", ALCOVE_INVITE_NOTICE_MAX);
    } else if (strcmp(sub, "clear") == 0 || strcmp(sub, "show") == 0) {
        if (argc - optind > 1)
            return usage_error("unexpected argument '%s'", argv[optind + 1]);
        if (until_s != NULL)
            return usage_error("--until goes with 'notice set'");
        text = strcmp(sub, "clear") == 0 ? "" : NULL;
    } else {
        return usage_error("notice wants set TEXT, clear or show");
    }
    if (app_open(a) != 0)
        return EXIT_FAIL;
    uint64_t now = a->now(), until = 0;
    if (until_s != NULL && (until = parse_when(until_s, now)) == 0)
        return usage_error("--until wants a date (2024-06-01 or '2024-06-01 17:00') or a "
                           "duration (3d, 12h, 30m), not '%s'", until_s);
    if (until != 0 && until <= now)
        return usage_error("--until is in the past");
    if (text == NULL) { /* show */
        const char *cur = a->meta->my_notice;
        int live = cur != NULL && *cur &&
                   !(a->meta->my_notice_until && a->meta->my_notice_until <= now);
        if (a->json) {
            json_t *j = json_pack("{s:o, s:o}", "notice", live ? render_json_str(cur) : json_null(),
                                  "until", live && a->meta->my_notice_until
                                               ? json_integer((json_int_t)a->meta->my_notice_until)
                                               : json_null());
            render_json_dump(stdout, j);
            json_decref(j);
        } else if (!live) {
            printf("no notice set ('alcove notice set TEXT' sends one to every contact)\n");
        } else {
            fputs("Your notice: ", stdout);
            render_str(stdout, cur, 0);
            if (a->meta->my_notice_until) {
                char when[32];
                render_time(a->meta->my_notice_until, when, sizeof when);
                printf(" (until %s)", when);
            }
            fputc('\n', stdout);
        }
        return render_flush(stdout);
    }
    /* Send to every active contact. */
    Alcove__Local__Contact **v = NULL;
    size_t n = 0, sent = 0, failed = 0;
    cstore_txn *t = NULL;
    int e = cstore_begin(a->store, 0, &t);
    if (e == 0)
        e = contact_list(t, &v, &n);
    cstore_abort(t);
    if (e != 0) {
        app_error("cannot read contacts: %s", alcove_strerror(e));
        return EXIT_FAIL;
    }
    if ((e = save_my_notice(a, text, until)) != 0) {
        app_error("cannot save the notice: %s", alcove_strerror(e));
        contact_list_free(v, n);
        return EXIT_FAIL;
    }
    netpool np;
    memset(&np, 0, sizeof np);
    (void)outbox_flush(a, &np);
    for (size_t i = 0; i < n; i++) {
        if (v[i]->state != ALCOVE__LOCAL__CONTACT__STATE__ACTIVE)
            continue;
        Alcove__E2e__Notice no = ALCOVE__E2E__NOTICE__INIT;
        no.text = (char *)(uintptr_t)text;
        no.has_until = until != 0;
        no.until = until;
        Alcove__E2e__Content ct = ALCOVE__E2E__CONTENT__INIT;
        ct.body_case = ALCOVE__E2E__CONTENT__BODY_NOTICE;
        ct.notice = &no;
        outbox_opts o;
        memset(&o, 0, sizeof o);
        o.quiet = 1;
        o.audit_event = AUDIT_NOTICE_SENT;
        uint8_t cid[16];
        memcpy(cid, v[i]->id.data, 16);
        if (outbox_send_to(a, &np, cid, &ct, "notice", &o) == EXIT_OK) {
            sent++;
        } else {
            failed++;
            app_warn("the notice did not reach %s", v[i]->label ? v[i]->label : "a contact");
        }
    }
    netpool_close(&np);
    contact_list_free(v, n);
    if (a->json)
        printf("{\n  \"sent\": %zu,\n  \"failed\": %zu\n}\n", sent, failed);
    else if (*text)
        printf("Notice %s: sent to %zu contact%s.\n", "set", sent, sent == 1 ? "" : "s");
    else
        printf("Notice cleared: sent to %zu contact%s.\n", sent, sent == 1 ? "" : "s");
    if (!a->json && *text)
        printf("New invites show it too unless you give --notice.\n");
    return failed ? EXIT_FAIL : render_flush(stdout);
}

static int on_off(const char *s, int *out)
{
    if (strcmp(s, "on") == 0)
        *out = 1;
    else if (strcmp(s, "off") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

int cmd_receipts(app *a, int argc, char **argv)
{
    static const struct option opts[] = {{"delivered", required_argument, NULL, 'd'},
                                         {"read", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    int d = -1, r = -1, ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'd' && on_off(optarg, &d) == 0)
            continue;
        if (ch == 'r' && on_off(optarg, &r) == 0)
            continue;
        return usage_error("--delivered and --read take on or off");
    }
    if (argc - optind != 1)
        return usage_error("receipts needs exactly one CONTACT");
    if (app_open(a) != 0)
        return EXIT_FAIL;
    Alcove__Local__Contact *c = NULL;
    cstore_txn *t = NULL;
    int e, rc = EXIT_FAIL, change = d >= 0 || r >= 0;
    if ((e = cstore_begin(a->store, change, &t)) != 0) {
        app_error("cannot read the local store: %s", alcove_strerror(e));
        return EXIT_FAIL;
    }
    if (contact_find(a, t, argv[optind], &c) != 0)
        goto out;
    if (change) {
        if (d >= 0)
            c->has_receipts_delivered = 1, c->receipts_delivered = d;
        if (r >= 0)
            c->has_receipts_read = 1, c->receipts_read = r;
        if ((e = contact_save(t, c)) != 0 || (e = cstore_commit(t)) != 0) {
            t = NULL;
            app_error("cannot save the setting: %s", alcove_strerror(e));
            goto out;
        }
        t = NULL;
    }
    int dw = outbox_receipts_wanted(c, 0), rw = outbox_receipts_wanted(c, 1);
    if (a->json) {
        json_t *j = json_pack("{s:o, s:b, s:b}", "contact", render_json_str(c->label), "delivered",
                              dw, "read", rw);
        render_json_dump(stdout, j);
        json_decref(j);
    } else {
        fputs("Receipts you send to ", stdout);
        render_str(stdout, c->label, 40);
        printf(": delivered %s, read %s\n", dw ? "on" : "off", rw ? "on" : "off");
    }
    rc = render_flush(stdout);
out:
    cstore_abort(t);
    if (c != NULL)
        contact_free(c);
    return rc;
}
