/* alcove ask / answer / scores: questionnaires sent, answered and charted. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "commands.h"
#include "err.h"
#include "outbox.h"
#include "practice.h"
#include "render.h"

/* --- scored rows ---------------------------------------------------------- */

typedef struct rows_ctx {
    cstore_txn *t;
    const Alcove__Local__Contact *c;
    uint64_t since;
    score_row *v;
    size_t n, cap;
} rows_ctx;

static int row_one(void *ctx, const uint8_t key[24], Alcove__Local__Message **mp)
{
    rows_ctx *r = ctx;
    Alcove__E2e__Content *ct = NULL;
    (void)key;
    Alcove__Local__Message *m = *mp;
    uint64_t at = m->has_sent_at && m->sent_at ? m->sent_at : m->received_at;
    if (m->problem != NULL || at < r->since || content_decode(m, &ct) != 0)
        return 0;
    if (ct->body_case != ALCOVE__E2E__CONTENT__BODY_ANSWERS) {
        content_free(ct);
        return 0;
    }
    score_row row;
    memset(&row, 0, sizeof row);
    Alcove__E2e__Content *qct = NULL;
    /* A nested scan of the same thread: fine in one read transaction. */
    if (quest_score_lookup(r->t, r->c, ct->answers, &row.sc, NULL, &qct) != 0) {
        content_free(ct);
        return 0;
    }
    snprintf(row.instrument, sizeof row.instrument, "%s",
             qct->questionnaire->instrument ? qct->questionnaire->instrument : "?");
    content_free(qct);
    if (r->n == r->cap) {
        size_t ncap = r->cap ? 2 * r->cap : 16;
        score_row *nv = realloc(r->v, ncap * sizeof *nv);
        if (nv == NULL) {
            content_free(ct);
            return ALCOVE_ENOMEM;
        }
        r->v = nv;
        r->cap = ncap;
    }
    row.at = at;
    row.outgoing = m->outgoing;
    row.m = m;
    row.ct = ct;
    *mp = NULL;
    r->v[r->n++] = row;
    return 0;
}

static int row_cmp(const void *x, const void *y)
{
    const score_row *a = x, *b = y;
    return a->at < b->at ? -1 : a->at > b->at;
}

int score_rows(cstore_txn *t, const Alcove__Local__Contact *c, uint64_t since, score_row **out,
               size_t *n)
{
    rows_ctx r = {t, c, since, NULL, 0, 0};
    int rc = render_each_message(t, c, row_one, &r);
    if (rc != 0) {
        score_rows_free(r.v, r.n);
        return rc;
    }
    if (r.n > 1)
        qsort(r.v, r.n, sizeof *r.v, row_cmp);
    *out = r.v;
    *n = r.n;
    return 0;
}

void score_rows_free(score_row *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        render_message_free(v[i].m);
        content_free(v[i].ct);
    }
    free(v);
}

void score_table(FILE *out, const score_row *v, size_t n)
{
    fprintf(out, "%-16s  %-12s  %9s  %-18s  %s\n", "DATE", "INSTRUMENT", "TOTAL", "SEVERITY",
            "ITEMS");
    for (size_t i = 0; i < n; i++) {
        char when[32], tot[32];
        render_time(v[i].at, when, sizeof when);
        snprintf(tot, sizeof tot, "%llu/%llu", (unsigned long long)v[i].sc.total,
                 (unsigned long long)v[i].sc.max_total);
        fprintf(out, "%-16s  ", when);
        render_cell(out, v[i].instrument, 12);
        fprintf(out, "  %9s  %-18s  ", tot, v[i].sc.band[0] ? v[i].sc.band : "-");
        const Alcove__E2e__Answers *an = v[i].ct->answers;
        for (size_t k = 0; k < an->n_values && k < 50; k++)
            fprintf(out, "%s%u", k ? "," : "", (unsigned)an->values[k]);
        if (v[i].sc.flagged)
            fprintf(out, "  !! item 9 = %u", (unsigned)v[i].sc.flag_value);
        fputc('\n', out);
    }
}

#define SCHART_ROWS 10
#define SCHART_MAX 60u

void score_chart(FILE *out, const score_row *v, size_t n)
{
    /* One chart per instrument, in order of first appearance. */
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t k = 0; k < i; k++)
            seen |= strcmp(v[k].instrument, v[i].instrument) == 0;
        if (seen)
            continue;
        const score_row *pts[SCHART_MAX] = {0};
        size_t np = 0, total = 0;
        uint64_t top = v[i].sc.max_total ? v[i].sc.max_total : 1;
        for (size_t k = i; k < n; k++)
            if (strcmp(v[k].instrument, v[i].instrument) == 0)
                total++;
        for (size_t k = i, skip = total > SCHART_MAX ? total - SCHART_MAX : 0; k < n; k++) {
            if (strcmp(v[k].instrument, v[i].instrument) != 0)
                continue;
            if (skip > 0) {
                skip--;
                continue;
            }
            pts[np++] = &v[k];
        }
        fputc('\n', out);
        render_str(out, v[i].instrument, 40);
        fprintf(out, " total over time (0-%llu)%s:\n\n", (unsigned long long)top,
                total > np ? ", the newest" : "");
        size_t cw = np <= 20 ? 3 : 1;
        for (int y = SCHART_ROWS; y >= 0; y--) {
            char line[8 + SCHART_MAX * 3 + 2];
            uint64_t level = (top * (uint64_t)y + SCHART_ROWS / 2) / SCHART_ROWS;
            int len = snprintf(line, sizeof line, "%3llu |", (unsigned long long)level);
            size_t end = (size_t)len;
            memset(line + len, ' ', sizeof line - (size_t)len);
            for (size_t k = 0; k < np; k++) {
                uint64_t row = (pts[k]->sc.total * SCHART_ROWS + top / 2) / top;
                if (row == (uint64_t)y) {
                    size_t at = (size_t)len + 1 + k * cw;
                    line[at] = pts[k]->sc.flagged ? '!' : '*';
                    end = at + 1;
                }
            }
            line[end] = '\0';
            fprintf(out, "%s\n", line);
        }
        char first[16], last[16];
        render_date(pts[0]->at, first, sizeof first);
        render_date(pts[np - 1]->at, last, sizeof last);
        fprintf(out, "    +");
        for (size_t k = 0; k < 1 + np * cw; k++)
            fputc('-', out);
        fprintf(out, "\n     %s%s%s\n", first, np > 1 ? " .. " : "", np > 1 ? last : "");
        if (pts[0]->sc.builtin || v[i].sc.band[0])
            fprintf(out, "     * a total   ! item 9 above 0\n");
    }
}

json_t *score_json(const score_row *r)
{
    char id[33] = "", qid[33] = "";
    const Alcove__E2e__Answers *an = r->ct->answers;
    json_t *vals = json_array();
    for (size_t k = 0; vals != NULL && k < an->n_values; k++)
        json_array_append_new(vals, json_integer(an->values[k]));
    if (r->m->has_msg_id && r->m->msg_id.len == 16)
        hex_encode(r->m->msg_id.data, 16, id);
    if (an->questionnaire_id.len == 16)
        hex_encode(an->questionnaire_id.data, 16, qid);
    return json_pack("{s:s, s:s, s:o, s:s, s:I, s:I, s:I, s:o, s:b, s:o}", "msg_id", id,
                     "questionnaire_id", qid, "instrument", render_json_str(r->instrument),
                     "direction", r->outgoing ? "out" : "in", "sent_at",
                     (json_int_t)(r->at <= (uint64_t)LLONG_MAX ? r->at : 0), "total",
                     (json_int_t)r->sc.total, "max_total", (json_int_t)r->sc.max_total, "band",
                     r->sc.band[0] ? json_string(r->sc.band) : json_null(), "flagged",
                     r->sc.flagged, "values", vals);
}

/* --- ask ------------------------------------------------------------------ */

int cmd_ask(app *a, int argc, char **argv)
{
    if (argc != 3 || argv[1][0] == '-' || argv[2][0] == '\0')
        return usage_error("ask needs a CONTACT and phq9, gad7 or a questionnaire FILE");
    quest *q = calloc(1, sizeof *q);
    char err[512];
    int rc = EXIT_FAIL;
    if (q == NULL)
        return EXIT_FAIL;
    if (quest_builtin(argv[2], q) != 0) {
        if (access(argv[2], F_OK) != 0) {
            app_error("'%s' is neither a built-in questionnaire (phq9, gad7) nor a file", argv[2]);
            app_hint("the file format is described in docs/questionnaires.md");
            free(q);
            return EXIT_USAGE;
        }
        if (quest_parse_file(argv[2], q, err, sizeof err) != 0) {
            app_error("%s", err);
            app_hint("the file format is described in docs/questionnaires.md");
            free(q);
            return EXIT_FAIL;
        }
    }
    quest_view(q);
    Alcove__Local__Band bands[QUEST_MAX_BANDS], *bp[QUEST_MAX_BANDS];
    outbox_opts o;
    memset(&o, 0, sizeof o);
    o.audit_event = AUDIT_QUESTIONNAIRE_SENT;
    int custom = strcmp(q->instrument, "PHQ-9") != 0 && strcmp(q->instrument, "GAD-7") != 0;
    for (size_t i = 0; custom && i < q->n_bands; i++) {
        Alcove__Local__Band b = ALCOVE__LOCAL__BAND__INIT;
        b.has_min = b.has_max = 1;
        b.min = q->bands[i].min;
        b.max = q->bands[i].max;
        b.label = q->bands[i].label;
        bands[i] = b;
        bp[i] = &bands[i];
        o.n_bands = i + 1;
    }
    o.bands = bp;
    Alcove__E2e__Content ct = ALCOVE__E2E__CONTENT__INIT;
    ct.body_case = ALCOVE__E2E__CONTENT__BODY_QUESTIONNAIRE;
    ct.questionnaire = &q->pb;
    if (app_open(a) == 0) {
        netpool np;
        memset(&np, 0, sizeof np);
        (void)outbox_flush(a, &np);
        char what[80];
        snprintf(what, sizeof what, "questionnaire (%s, %zu items)", q->instrument, q->n_items);
        rc = outbox_send_to_label(a, &np, argv[1], &ct, what, &o);
        netpool_close(&np);
    }
    quest_free(q);
    free(q);
    return rc;
}

/* --- answer --------------------------------------------------------------- */

typedef struct pending_ctx {
    /* newest incoming questionnaire not answered by an outgoing Answers */
    Alcove__Local__Message *best;
    Alcove__E2e__Content *best_ct;
    uint8_t (*answered)[16];
    size_t nans, capans;
    int pass;
} pending_ctx;

static int pending_one(void *ctx, const uint8_t key[24], Alcove__Local__Message **mp)
{
    pending_ctx *p = ctx;
    Alcove__E2e__Content *ct = NULL;
    (void)key;
    if ((*mp)->problem != NULL || content_decode(*mp, &ct) != 0)
        return 0;
    if (p->pass == 0) {
        if ((*mp)->outgoing && ct->body_case == ALCOVE__E2E__CONTENT__BODY_ANSWERS &&
            ct->answers->questionnaire_id.len == 16) {
            if (p->nans == p->capans) {
                size_t nc = p->capans ? 2 * p->capans : 16;
                uint8_t(*na)[16] = realloc(p->answered, nc * sizeof *na);
                if (na == NULL) {
                    content_free(ct);
                    return ALCOVE_ENOMEM;
                }
                p->answered = na;
                p->capans = nc;
            }
            memcpy(p->answered[p->nans++], ct->answers->questionnaire_id.data, 16);
        }
        content_free(ct);
        return 0;
    }
    if ((*mp)->outgoing || ct->body_case != ALCOVE__E2E__CONTENT__BODY_QUESTIONNAIRE ||
        (*mp)->msg_id.len != 16) {
        content_free(ct);
        return 0;
    }
    for (size_t i = 0; i < p->nans; i++)
        if (memcmp(p->answered[i], (*mp)->msg_id.data, 16) == 0) {
            content_free(ct);
            return 0;
        }
    render_message_free(p->best);
    content_free(p->best_ct);
    p->best = *mp;
    p->best_ct = ct;
    *mp = NULL;
    return 0;
}

/* Parse "1,0,2" against q.  Returns 0 or the usage error's code. */
static int parse_values(const char *s, const Alcove__E2e__Questionnaire *q, uint32_t *vals)
{
    size_t n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno != 0 || (*end != ',' && *end != '\0'))
            return usage_error("--values wants whole numbers separated by commas, like 1,0,2");
        if (n == q->n_items)
            return usage_error("--values has more than the %zu answers this questionnaire needs",
                               q->n_items);
        if (v < (long)q->items[n]->min || v > (long)q->items[n]->max)
            return usage_error("answer %zu is %ld; item %zu takes %u-%u", n + 1, v, n + 1,
                               (unsigned)q->items[n]->min, (unsigned)q->items[n]->max);
        vals[n++] = (uint32_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    if (n != q->n_items)
        return usage_error("--values has %zu answers; this questionnaire has %zu items", n,
                           q->n_items);
    return 0;
}

/* One item at a time from standard input (prompts only on a terminal). */
static int ask_values(const Alcove__E2e__Questionnaire *q, uint32_t *vals)
{
    int tty = isatty(0);
    char line[128];
    if (tty) {
        render_block(stdout, q->title && *q->title ? q->title : q->instrument, NULL);
    }
    for (size_t i = 0; i < q->n_items; i++) {
        const Alcove__E2e__Item *it = q->items[i];
        for (;;) {
            if (tty) {
                printf("\n%zu/%zu. ", i + 1, q->n_items);
                render_str(stdout, it->text, 0);
                fputc('\n', stdout);
                for (size_t k = 0; k < it->n_labels; k++) {
                    printf("   %u  ", (unsigned)(it->min + k));
                    render_str(stdout, it->labels[k], 60);
                    fputc('\n', stdout);
                }
                printf("Your answer (%u-%u): ", (unsigned)it->min, (unsigned)it->max);
                fflush(stdout);
            }
            if (fgets(line, sizeof line, stdin) == NULL) {
                app_error("no answer for item %zu (standard input ended)", i + 1);
                return EXIT_FAIL;
            }
            char *end;
            errno = 0;
            long v = strtol(line, &end, 10);
            while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t')
                end++;
            if (end != line && *end == '\0' && errno == 0 && v >= (long)it->min &&
                v <= (long)it->max) {
                vals[i] = (uint32_t)v;
                break;
            }
            if (!tty) {
                app_error("item %zu: '%.*s' is not a whole number from %u to %u", i + 1,
                          (int)strcspn(line, "\r\n"), line, (unsigned)it->min, (unsigned)it->max);
                return EXIT_FAIL;
            }
            printf("Please type a whole number from %u to %u.\n", (unsigned)it->min,
                   (unsigned)it->max);
        }
    }
    return 0;
}

int cmd_answer(app *a, int argc, char **argv)
{
    static const struct option opts[] = {{"values", required_argument, NULL, 'v'},
                                         {NULL, 0, NULL, 0}};
    const char *values = NULL;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'v')
            values = optarg;
        else
            return usage_error("unknown option or missing value: %s", argv[optind - 1]);
    }
    if (argc - optind > 1)
        return usage_error("unexpected argument '%s'", argv[optind + 1]);
    const char *label = optind < argc ? argv[optind] : NULL;
    if (app_open(a) != 0)
        return EXIT_FAIL;
    Alcove__Local__Contact **v = NULL, *one = NULL, *chosen = NULL;
    size_t n = 0;
    cstore_txn *t = NULL;
    pending_ctx p;
    memset(&p, 0, sizeof p);
    uint32_t vals[QUEST_MAX_ITEMS];
    int rc = EXIT_FAIL, e;
    if ((e = cstore_begin(a->store, 0, &t)) != 0) {
        app_error("cannot read the local store: %s", alcove_strerror(e));
        goto out;
    }
    if (label != NULL) {
        if (contact_find(a, t, label, &one) != 0)
            goto out;
        v = &one;
        n = 1;
    } else if ((e = contact_list(t, &v, &n)) != 0) {
        app_error("cannot read contacts: %s", alcove_strerror(e));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i]->state != ALCOVE__LOCAL__CONTACT__STATE__ACTIVE)
            continue;
        Alcove__Local__Message *before = p.best;
        p.nans = 0;
        p.pass = 0;
        if ((e = render_each_message(t, v[i], pending_one, &p)) == 0) {
            p.pass = 1;
            e = render_each_message(t, v[i], pending_one, &p);
        }
        if (e != 0) {
            app_error("cannot read messages: %s", alcove_strerror(e));
            goto out;
        }
        if (p.best != before) {
            if (chosen != NULL && label == NULL) {
                app_error("questionnaires from several contacts are waiting");
                app_hint("name one: alcove answer CONTACT");
                rc = EXIT_USAGE;
                goto out;
            }
            chosen = v[i];
        }
    }
    cstore_abort(t);
    t = NULL;
    if (p.best == NULL) {
        app_error("no questionnaire is waiting for your answer%s%s", label ? " from " : "",
                  label ? label : "");
        goto out;
    }
    const Alcove__E2e__Questionnaire *q = p.best_ct->questionnaire;
    if (values != NULL) {
        if ((rc = parse_values(values, q, vals)) != 0)
            goto out;
    } else if (ask_values(q, vals) != 0) {
        goto out;
    }
    Alcove__E2e__Answers an = ALCOVE__E2E__ANSWERS__INIT;
    an.has_questionnaire_id = 1;
    an.questionnaire_id = p.best->msg_id;
    an.instrument = q->instrument;
    an.n_values = q->n_items;
    an.values = vals;
    Alcove__E2e__Content ct = ALCOVE__E2E__CONTENT__INIT;
    ct.body_case = ALCOVE__E2E__CONTENT__BODY_ANSWERS;
    ct.answers = &an;
    outbox_opts o;
    memset(&o, 0, sizeof o);
    o.audit_event = AUDIT_ANSWERS_SENT;
    netpool np;
    memset(&np, 0, sizeof np);
    (void)outbox_flush(a, &np);
    uint8_t cid[16];
    memcpy(cid, chosen->id.data, 16);
    char what[64];
    snprintf(what, sizeof what, "answers (%s)", q->instrument ? q->instrument : "questionnaire");
    rc = outbox_send_to(a, &np, cid, &ct, what, &o);
    netpool_close(&np);
    if (rc != EXIT_OK)
        goto out;
    quest_score sc;
    quest_score_of(q, NULL, 0, &an, &sc);
    if (!a->json)
        printf("Your total: %llu of %llu.\n", (unsigned long long)sc.total,
               (unsigned long long)sc.max_total);
    if (sc.flagged) {
        uint64_t now = a->now();
        int has = chosen->notice != NULL && *chosen->notice &&
                  !(chosen->has_notice_until && chosen->notice_until && chosen->notice_until <= now);
        printf("\nYou said you have had thoughts of being better off dead or of hurting yourself.\n"
               "You are not alone, and %s will see this.\n", chosen->label ? chosen->label : "your therapist");
        if (has) {
            printf("Their notice for moments like this:\n  ");
            render_str(stdout, chosen->notice, 0);
            fputc('\n', stdout);
        }
        printf("If you might act on these thoughts now, call your local emergency number.\n");
    }
    rc = render_flush(stdout);
out:
    cstore_abort(t);
    render_message_free(p.best);
    content_free(p.best_ct);
    free(p.answered);
    if (one != NULL)
        contact_free(one);
    else
        contact_list_free(v, n);
    return rc;
}

/* --- scores ----------------------------------------------------------------- */

int cmd_scores(app *a, int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-')
        return usage_error("scores needs exactly one CONTACT");
    if (app_open(a) != 0)
        return EXIT_FAIL;
    Alcove__Local__Contact *c = NULL;
    cstore_txn *t = NULL;
    score_row *v = NULL;
    size_t n = 0;
    json_t *arr = NULL;
    int rc = EXIT_FAIL, e;
    if ((e = cstore_begin(a->store, 0, &t)) != 0) {
        app_error("cannot read the local store: %s", alcove_strerror(e));
        goto out;
    }
    if (render_find_contact(t, argv[1], &c) != 0)
        goto out;
    if ((e = score_rows(t, c, 0, &v, &n)) != 0) {
        app_error("cannot read the messages: %s", alcove_strerror(e));
        goto out;
    }
    cstore_abort(t);
    t = NULL;
    if (a->json) {
        render_json_secure();
        arr = json_array();
        for (size_t i = 0; arr != NULL && i < n; i++)
            json_array_append_new(arr, score_json(&v[i]));
        if (arr == NULL || render_json_dump(stdout, arr) != 0) {
            app_error("cannot write the JSON output");
            goto out;
        }
    } else if (n == 0) {
        fputs("no questionnaire answers with ", stdout);
        render_str(stdout, c->label, 40);
        fputs(" yet ('alcove ask CONTACT phq9' sends one)\n", stdout);
    } else {
        score_table(stdout, v, n);
        score_chart(stdout, v, n);
    }
    rc = render_flush(stdout);
out:
    cstore_abort(t);
    json_decref(arr);
    score_rows_free(v, n);
    if (c != NULL)
        contact_free(c);
    return rc;
}
