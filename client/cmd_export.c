/* alcove export CONTACT [--since DATE] [--format md|json] [--output FILE]:
 * a thread for the clinical record (docs/export-schema.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "commands.h"
#include "err.h"
#include "practice.h"
#include "render.h"
#include "safety.h"


typedef struct msgs {
    Alcove__Local__Message **m;
    Alcove__E2e__Content **ct; /* NULL for rejected or undecodable */
    size_t n, cap;
    uint64_t since;
} msgs;

static uint64_t when_of(const Alcove__Local__Message *m)
{
    return m->has_sent_at && m->sent_at ? m->sent_at : m->received_at;
}

static int collect(void *ctx, const uint8_t key[24], Alcove__Local__Message **mp)
{
    msgs *l = ctx;
    (void)key;
    if (when_of(*mp) < l->since)
        return 0;
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 32;
        Alcove__Local__Message **nm = realloc(l->m, nc * sizeof *nm);
        if (nm == NULL)
            return ALCOVE_ENOMEM;
        l->m = nm;
        Alcove__E2e__Content **nct = realloc(l->ct, nc * sizeof *nct);
        if (nct == NULL)
            return ALCOVE_ENOMEM;
        l->ct = nct;
        l->cap = nc;
    }
    Alcove__E2e__Content *ct = NULL;
    if ((*mp)->problem != NULL || content_decode(*mp, &ct) != 0)
        ct = NULL;
    l->m[l->n] = *mp;
    l->ct[l->n++] = ct;
    *mp = NULL;
    return 0;
}

static json_t *j_ms(int has, uint64_t v)
{
    return has && v && v <= (uint64_t)LLONG_MAX ? json_integer((json_int_t)v) : json_null();
}

/* Markdown table cell: sanitized, one line, '|' escaped. */
static void md_cell(FILE *out, const char *s, size_t max)
{
    if (s == NULL || *s == '\0') {
        fputs("-", out);
        return;
    }
    const char *p = s;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        char *part = strndup(p, len);
        render_str(out, part ? part : "?", max);
        free(part);
        if (bar == NULL)
            break;
        fputs("\\|", out);
        p = bar + 1;
    }
}

static const char *kind_title(const Alcove__E2e__Content *ct)
{
    switch (ct ? ct->body_case : 0) {
    case ALCOVE__E2E__CONTENT__BODY_TEXT: return "message";
    case ALCOVE__E2E__CONTENT__BODY_CHECKIN: return "check-in";
    case ALCOVE__E2E__CONTENT__BODY_NOTICE: return "notice";
    case ALCOVE__E2E__CONTENT__BODY_QUESTIONNAIRE: return "questionnaire";
    case ALCOVE__E2E__CONTENT__BODY_ANSWERS: return "answers";
    case ALCOVE__E2E__CONTENT__BODY_INTRO: return "introduction";
    case ALCOVE__E2E__CONTENT__BODY_LEAVE: return "left";
    case ALCOVE__E2E__CONTENT__BODY_RECEIPT: return "receipt";
    default: return "unreadable";
    }
}

static void export_md(FILE *out, app *a, const Alcove__Local__Contact *c, const char *safety,
                      const msgs *l, const score_row *sv, size_t ns, uint64_t since)
{
    char when[32];
    render_time(a->now(), when, sizeof when);
    fputs("# alcove export: ", out);
    render_str(out, c->label, 60);
    fputs("\n\n", out);
    fprintf(out, "- Exported: %s by ", when);
    render_str(out, a->meta->display_name && *a->meta->display_name ? a->meta->display_name : "(no name)", 60);
    fputs("\n- Contact: ", out);
    render_str(out, c->label, 60);
    fputs(" (their name: ", out);
    render_str(out, c->their_name && *c->their_name ? c->their_name : "-", 60);
    fprintf(out, "), %s\n", contact_state_name(c->state));
    fprintf(out, "- Safety number: %s\n", safety ? safety : "(none yet)");
    fprintf(out, "- Verified in person: %s\n", c->verified ? "yes" : "no");
    if (since) {
        render_time(since, when, sizeof when);
        fprintf(out, "- Period: since %s\n", when);
    } else {
        fprintf(out, "- Period: the whole conversation\n");
    }
    fprintf(out, "- Times are the sender's clock, local time.\n");

    fprintf(out, "\n## Questionnaire scores\n\n");
    if (ns == 0)
        fprintf(out, "None.\n");
    else {
        fprintf(out, "| Date | Instrument | Total | Severity | Answers | Flag |\n");
        fprintf(out, "|---|---|---|---|---|---|\n");
        for (size_t i = 0; i < ns; i++) {
            render_time(sv[i].at, when, sizeof when);
            fprintf(out, "| %s | ", when);
            md_cell(out, sv[i].instrument, 40);
            fprintf(out, " | %llu/%llu | %s | ", (unsigned long long)sv[i].sc.total,
                    (unsigned long long)sv[i].sc.max_total, sv[i].sc.band[0] ? sv[i].sc.band : "-");
            for (size_t k = 0; k < sv[i].ct->answers->n_values; k++)
                fprintf(out, "%s%u", k ? "," : "", (unsigned)sv[i].ct->answers->values[k]);
            fprintf(out, " | %s |\n", sv[i].sc.flagged ? "item 9 above 0" : "");
        }
    }
    fprintf(out, "\n## Check-ins\n\n");
    size_t nci = 0;
    for (size_t i = 0; i < l->n; i++) {
        const Alcove__E2e__Content *ct = l->ct[i];
        if (ct == NULL || ct->body_case != ALCOVE__E2E__CONTENT__BODY_CHECKIN)
            continue;
        if (nci++ == 0)
            fprintf(out, "| Date | From | Mood | Anxiety | Sleep | Note | Tags |\n"
                         "|---|---|---|---|---|---|---|\n");
        const Alcove__E2e__CheckIn *ci = ct->checkin;
        char h[32] = "-";
        render_time(when_of(l->m[i]), when, sizeof when);
        if (ci->has_sleep_hours)
            render_hours(ci->sleep_hours, h, sizeof h);
        fprintf(out, "| %s | ", when);
        md_cell(out, l->m[i]->outgoing ? "you" : c->label, 40);
        fputs(" | ", out);
        if (ci->has_mood) fprintf(out, "%u", (unsigned)ci->mood); else fputs("-", out);
        fputs(" | ", out);
        if (ci->has_anxiety) fprintf(out, "%u", (unsigned)ci->anxiety); else fputs("-", out);
        fprintf(out, " | %s | ", h);
        md_cell(out, ci->note, 0);
        fputs(" | ", out);
        for (size_t k = 0; k < ci->n_tags; k++) {
            fputs(k ? ", " : "", out);
            md_cell(out, ci->tags[k], 40);
        }
        fputs(" |\n", out);
    }
    if (nci == 0)
        fprintf(out, "None.\n");
    fprintf(out, "\n## Notices\n\n");
    size_t nno = 0;
    for (size_t i = 0; i < l->n; i++) {
        const Alcove__E2e__Content *ct = l->ct[i];
        if (ct == NULL || ct->body_case != ALCOVE__E2E__CONTENT__BODY_NOTICE)
            continue;
        nno++;
        render_time(when_of(l->m[i]), when, sizeof when);
        fprintf(out, "- %s, %s: ", when, l->m[i]->outgoing ? "yours" : "theirs");
        md_cell(out, ct->notice->text && *ct->notice->text ? ct->notice->text : "(cleared)", 0);
        if (ct->notice->has_until && ct->notice->until) {
            render_time(ct->notice->until, when, sizeof when);
            fprintf(out, " (until %s)", when);
        }
        fputc('\n', out);
    }
    if (nno == 0)
        fprintf(out, "None.\n");
    fprintf(out, "\n## Conversation\n");
    for (size_t i = 0; i < l->n; i++) {
        const Alcove__Local__Message *m = l->m[i];
        render_time(when_of(m), when, sizeof when);
        fprintf(out, "\n### %s, %s ", when, m->outgoing ? "you to" : "from");
        render_str(out, c->label, 60);
        fprintf(out, ", %s\n", kind_title(l->ct[i]));
        fprintf(out, "\n");
        /* The body as the terminal shows it, quoted. */
        fputs("```\n", out);
        render_message(out, c, m);
        fputs("```\n", out);
        if (m->outgoing && (m->has_read_at || m->has_delivered_at))
            fprintf(out, "\n%s\n", m->has_read_at && m->read_at ? "Read (receipt)." : "Delivered (receipt).");
    }
}

int cmd_export(app *a, int argc, char **argv)
{
    static const struct option opts[] = {{"since", required_argument, NULL, 's'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"output", required_argument, NULL, 'o'},
                                         {NULL, 0, NULL, 0}};
    const char *since_s = NULL, *format = NULL, *output = NULL;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 's')
            since_s = optarg;
        else if (ch == 'f')
            format = optarg;
        else if (ch == 'o')
            output = optarg;
        else
            return usage_error("unknown option or missing value: %s", argv[optind - 1]);
    }
    if (argc - optind != 1)
        return usage_error("export needs exactly one CONTACT");
    int json = a->json;
    if (format != NULL) {
        if (strcmp(format, "json") == 0)
            json = 1;
        else if (strcmp(format, "md") == 0)
            json = 0;
        else
            return usage_error("--format is md or json");
    }
    if (app_open(a) != 0)
        return EXIT_FAIL;
    uint64_t since = 0;
    if (since_s != NULL && (since = parse_when(since_s, a->now())) == 0)
        return usage_error("--since wants a date like 2024-05-01, not '%s'", since_s);
    Alcove__Local__Contact *c = NULL;
    cstore_txn *t = NULL;
    msgs l;
    memset(&l, 0, sizeof l);
    l.since = since;
    score_row *sv = NULL;
    size_t ns = 0;
    json_t *root = NULL;
    FILE *out = stdout;
    char digits[ALCOVE_SAFETY_BUF], shown[ALCOVE_SAFETY_DISPLAY_BUF];
    int have_safety = 0, rc = EXIT_FAIL, e;
    if ((e = cstore_begin(a->store, 0, &t)) != 0) {
        app_error("cannot read the local store: %s", alcove_strerror(e));
        goto out;
    }
    if (render_find_contact(t, argv[optind], &c) != 0)
        goto out;
    if ((e = render_each_message(t, c, collect, &l)) != 0 || (e = score_rows(t, c, since, &sv, &ns)) != 0) {
        app_error("cannot read the messages: %s", alcove_strerror(e));
        goto out;
    }
    cstore_abort(t);
    t = NULL;
    if (c->sig_pub.len == 32 && c->dh_pub.len == 32 &&
        alcove_safety_number(alcove_identity_sig_pub(a->id), alcove_identity_dh_pub(a->id),
                             c->sig_pub.data, c->dh_pub.data, digits) == 0 &&
        alcove_safety_display(digits, shown, sizeof shown) == 0)
        have_safety = 1;
    if (output != NULL) {
        int fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || (out = fdopen(fd, "w")) == NULL) {
            app_error("cannot write %s: %s", output, strerror(errno));
            if (fd >= 0)
                close(fd);
            out = stdout;
            goto out;
        }
    }
    if (json) {
        render_json_secure();
        json_t *arr = json_array(), *cis = json_array(), *sc = json_array(), *nos = json_array();
        for (size_t i = 0; i < l.n; i++) {
            json_t *o = render_message_json(c, l.m[i]);
            if (o != NULL) {
                json_object_set_new(o, "delivered_at", j_ms(l.m[i]->has_delivered_at, l.m[i]->delivered_at));
                json_object_set_new(o, "read_at", j_ms(l.m[i]->has_read_at, l.m[i]->read_at));
                json_array_append_new(arr, o);
            }
            const Alcove__E2e__Content *ct = l.ct[i];
            if (ct != NULL && ct->body_case == ALCOVE__E2E__CONTENT__BODY_CHECKIN) {
                json_t *ci = render_checkin_json(ct->checkin);
                json_object_set_new(ci, "sent_at", j_ms(l.m[i]->has_sent_at, l.m[i]->sent_at));
                json_object_set_new(ci, "received_at", j_ms(l.m[i]->has_received_at, l.m[i]->received_at));
                json_object_set_new(ci, "direction", json_string(l.m[i]->outgoing ? "out" : "in"));
                json_array_append_new(cis, ci);
            }
            if (ct != NULL && ct->body_case == ALCOVE__E2E__CONTENT__BODY_NOTICE)
                json_array_append_new(nos, json_pack("{s:s, s:o, s:o, s:o}", "direction",
                                                     l.m[i]->outgoing ? "out" : "in", "sent_at",
                                                     j_ms(l.m[i]->has_sent_at, l.m[i]->sent_at), "text",
                                                     render_json_str(ct->notice->text ? ct->notice->text : ""),
                                                     "until", j_ms(ct->notice->has_until, ct->notice->until)));
        }
        for (size_t i = 0; i < ns; i++)
            json_array_append_new(sc, score_json(&sv[i]));
        json_t *contact = json_pack("{s:o, s:o, s:s, s:b, s:o, s:o}", "label",
                                    render_json_str(c->label), "name", render_json_str(c->their_name),
                                    "state", contact_state_name(c->state), "verified", c->verified,
                                    "safety_number", have_safety ? json_string(digits) : json_null(),
                                    "created_at", j_ms(c->has_created_at, c->created_at));
        root = json_pack("{s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "schema", "alcove-export/1",
                         "exported_at", (json_int_t)a->now(), "exported_by",
                         render_json_str(a->meta->display_name), "since", j_ms(since != 0, since),
                         "contact", contact, "messages", arr, "checkins", cis, "scores", sc,
                         "notices", nos);
        if (root == NULL || render_json_dump(out, root) != 0) {
            app_error("cannot write the export");
            goto out;
        }
    } else {
        export_md(out, a, c, have_safety ? shown : NULL, &l, sv, ns, since);
    }
    if (fflush(out) != 0 || ferror(out)) {
        app_error("cannot write the export: %s", strerror(errno));
        goto out;
    }
    /* Log that an export was made (never what it held). */
    if ((e = cstore_begin(a->store, 1, &t)) != 0 ||
        (e = audit_append(t, a->now(), AUDIT_EXPORT_MADE, c->id.data)) != 0 ||
        (e = cstore_commit(t)) != 0) {
        t = NULL;
        app_warn("the export was written, but not recorded in the audit log: %s", alcove_strerror(e));
    }
    t = NULL;
    if (output != NULL && !json && !a->json)
        fprintf(stderr, "alcove: wrote %s\n", output);
    rc = EXIT_OK;
out:
    cstore_abort(t);
    if (out != stdout)
        fclose(out);
    json_decref(root);
    for (size_t i = 0; i < l.n; i++) {
        render_message_free(l.m[i]);
        content_free(l.ct[i]);
    }
    free(l.m);
    free(l.ct);
    score_rows_free(sv, ns);
    if (c != NULL)
        contact_free(c);
    return rc;
}
