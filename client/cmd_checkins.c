/* checkins CONTACT: a thread's check-ins as a table and a mood/anxiety chart. */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "err.h"
#include "practice.h"
#include "render.h"

#define CHART_MAX 60u   /* check-ins in the chart (the newest) */
#define CHART_TOP 10    /* mood and anxiety are 0-10 */
#define NOTE_COLS 40u
#define FROM_COLS 16u

typedef struct ci_row {
    Alcove__Local__Message *m;       /* owned (render_message_free) */
    Alcove__E2e__Content *ct;        /* owned (content_free); body is a CheckIn */
    uint64_t at;                     /* sender's clock, else the relay's */
    size_t order;                    /* position in the thread */
} ci_row;

typedef struct ci_list {
    ci_row *v;
    size_t n, cap;
} ci_list;

static int collect_one(void *ctx, const uint8_t key[24], Alcove__Local__Message **mp)
{
    ci_list *l = ctx;
    Alcove__E2e__Content *ct = NULL;
    (void)key;
    /* A rejected check-in (mood 11, ...) is never shown as a value. */
    if ((*mp)->problem != NULL || content_decode(*mp, &ct) != 0)
        return 0;
    if (ct->body_case != ALCOVE__E2E__CONTENT__BODY_CHECKIN) {
        content_free(ct);
        return 0;
    }
    if (l->n == l->cap) {
        size_t ncap = l->cap ? 2 * l->cap : 32;
        ci_row *nv = realloc(l->v, ncap * sizeof *nv);
        if (nv == NULL) {
            content_free(ct);
            return ALCOVE_ENOMEM;
        }
        l->v = nv;
        l->cap = ncap;
    }
    Alcove__Local__Message *m = *mp;
    l->v[l->n].m = m;
    l->v[l->n].ct = ct;
    l->v[l->n].at = m->has_sent_at && m->sent_at ? m->sent_at : m->received_at;
    l->v[l->n].order = l->n;
    l->n++;
    *mp = NULL; /* kept */
    return 0;
}

static int row_cmp(const void *x, const void *y)
{
    const ci_row *a = x, *b = y;
    if (a->at != b->at)
        return a->at < b->at ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static void fmt_value(int has, uint32_t v, char *out, size_t cap)
{
    if (has)
        snprintf(out, cap, "%u", (unsigned)v);
    else
        snprintf(out, cap, "-");
}

static void print_table(const Alcove__Local__Contact *c, const ci_row *v, size_t n)
{
    int mixed = 0;
    size_t wf = strlen("FROM");
    for (size_t i = 0; i < n; i++)
        mixed |= v[i].m->outgoing != v[0].m->outgoing;
    if (mixed) {
        size_t w = render_width(c->label);
        wf = w > wf ? (w < FROM_COLS ? w : FROM_COLS) : wf;
    }
    printf("%-16s  ", "DATE");
    if (mixed)
        printf("%-*s  ", (int)wf, "FROM");
    printf("%4s  %7s  %6s  %-*s  %s\n", "MOOD", "ANXIETY", "SLEEP", (int)NOTE_COLS, "NOTE",
           "TAGS");
    for (size_t i = 0; i < n; i++) {
        const Alcove__E2e__CheckIn *ci = v[i].ct->checkin;
        char when[32], mood[16], anx[16], sleep[32] = "-";
        render_time(v[i].at, when, sizeof when);
        fmt_value(ci->has_mood, ci->mood, mood, sizeof mood);
        fmt_value(ci->has_anxiety, ci->anxiety, anx, sizeof anx);
        if (ci->has_sleep_hours) {
            char h[24];
            render_hours(ci->sleep_hours, h, sizeof h);
            snprintf(sleep, sizeof sleep, "%s h", h);
        }
        printf("%-16s  ", when);
        if (mixed) {
            render_cell(stdout, v[i].m->outgoing ? "you" : c->label, wf);
            fputs("  ", stdout);
        }
        printf("%4s  %7s  %6s  ", mood, anx, sleep);
        if (ci->n_tags > 0)
            render_cell(stdout, ci->note != NULL && *ci->note ? ci->note : "-", NOTE_COLS);
        else
            render_str(stdout, ci->note != NULL && *ci->note ? ci->note : "-", NOTE_COLS);
        for (size_t k = 0; k < ci->n_tags; k++) {
            fputs(k ? ", " : "  ", stdout);
            render_str(stdout, ci->tags[k], 24);
        }
        fputc('\n', stdout);
    }
}

/* Mood 'M' and anxiety 'A' (or '*' when equal) on a 0-10 grid, one column
 * per check-in, oldest on the left; plain ASCII. */
static void print_chart(const ci_row *v, size_t n, size_t total)
{
    size_t cw = n <= 20 ? 3 : n <= 30 ? 2 : 1;
    size_t width = 1 + n * cw;
    char line[8 + 1 + CHART_MAX * 3 + 1];
    char first[32], last[32];

    if (total > n)
        printf("\nmood (M) and anxiety (A), 0-10, the last %zu of %zu check-ins:\n\n", n, total);
    else
        printf("\nmood (M) and anxiety (A), 0-10:\n\n");
    for (int y = CHART_TOP; y >= 0; y--) {
        int len = snprintf(line, sizeof line, "%2d |", y);
        size_t end = (size_t)len;
        memset(line + len, ' ', width);
        for (size_t i = 0; i < n; i++) {
            const Alcove__E2e__CheckIn *ci = v[i].ct->checkin;
            int m = ci->has_mood && ci->mood == (uint32_t)y;
            int a = ci->has_anxiety && ci->anxiety == (uint32_t)y;
            size_t at = (size_t)len + 1 + i * cw;
            if (m || a) {
                line[at] = m && a ? '*' : m ? 'M' : 'A';
                end = at + 1;
            }
        }
        line[end] = '\0'; /* no trailing spaces */
        puts(line);
    }
    memset(line, '-', width);
    line[width] = '\0';
    printf("   +%s\n", line);
    render_date(v[0].at, first, sizeof first);
    render_date(v[n - 1].at, last, sizeof last);
    /* First date under the first column, last date ending under the last. */
    size_t col0 = 5, lastcol = col0 + (n - 1) * cw;
    printf("%*s%s", (int)col0, "", first);
    if (n > 1 && strcmp(first, last) != 0) {
        size_t used = col0 + strlen(first), start = lastcol + 1 - strlen(last);
        if (lastcol + 1 >= strlen(last) && start >= used + 2)
            printf("%*s%s", (int)(start - used), "", last);
        else
            printf(" .. %s", last);
    }
    printf("\n\n  M mood   A anxiety   * both\n");
}

static json_t *rows_json(const Alcove__Local__Contact *c, const ci_row *v, size_t n)
{
    json_t *arr = json_array();
    int bad = arr == NULL;
    for (size_t i = 0; !bad && i < n; i++) {
        const Alcove__Local__Message *m = v[i].m;
        json_t *o = render_checkin_json(v[i].ct->checkin);
        bad = json_array_append_new(arr, o) != 0;
        bad = bad || json_object_set_new(o, "sent_at",
                                         m->has_sent_at && m->sent_at <= (uint64_t)LLONG_MAX
                                             ? json_integer((json_int_t)m->sent_at)
                                             : json_null()) != 0;
        bad = bad ||
              json_object_set_new(o, "received_at",
                                  m->has_received_at && m->received_at <= (uint64_t)LLONG_MAX
                                      ? json_integer((json_int_t)m->received_at)
                                      : json_null()) != 0;
        bad = bad || json_object_set_new(o, "direction", json_string(m->outgoing ? "out" : "in")) != 0;
        bad = bad || json_object_set_new(o, "contact", render_json_str(c->label)) != 0;
    }
    if (bad) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

int cmd_checkins(app *a, int argc, char **argv)
{
    static const struct option opts[] = {{NULL, 0, NULL, 0}};
    Alcove__Local__Contact *c = NULL;
    cstore_txn *t = NULL;
    ci_list l = {NULL, 0, 0};
    score_row *sv = NULL;
    size_t ns = 0;
    json_t *j = NULL;
    int rc = EXIT_FAIL, err;

    optind = 0;
    opterr = 0;
    if (getopt_long(argc, argv, ":", opts, NULL) != -1)
        return optopt ? usage_error("unknown option '-%c'", optopt)
                      : usage_error("unknown option '%s'", argv[optind - 1]);
    if (optind >= argc)
        return usage_error("which contact? name one");
    if (argc - optind > 1)
        return usage_error("unexpected argument '%s'", argv[optind + 1]);
    if (app_open(a) != 0)
        return EXIT_FAIL;
    if ((err = cstore_begin(a->store, 0, &t)) != 0) {
        app_error("cannot read the local store: %s", alcove_strerror(err));
        goto out;
    }
    if (render_find_contact(t, argv[optind], &c) != 0)
        goto out;
    if ((err = render_each_message(t, c, collect_one, &l)) != 0) {
        app_error("cannot read the messages of '%s': %s", c->label ? c->label : argv[optind],
                  alcove_strerror(err));
        goto out;
    }
    if ((err = score_rows(t, c, 0, &sv, &ns)) != 0) {
        app_error("cannot read the messages: %s", alcove_strerror(err));
        goto out;
    }
    cstore_abort(t);
    t = NULL;
    if (l.n > 1)
        qsort(l.v, l.n, sizeof *l.v, row_cmp);
    if (a->json) {
        render_json_secure();
        if ((j = rows_json(c, l.v, l.n)) == NULL || render_json_dump(stdout, j) != 0) {
            app_error("cannot write the JSON output");
            goto out;
        }
    } else {
        if (l.n == 0) {
            fputs("no check-ins from ", stdout);
            render_str(stdout, c->label, 40);
            fputs(" yet\n", stdout);
        } else {
            size_t shown = l.n > CHART_MAX ? CHART_MAX : l.n;
            print_table(c, l.v, l.n);
            print_chart(l.v + (l.n - shown), shown, l.n);
        }
        if (ns > 0) {
            printf("\nquestionnaire scores ('alcove scores CONTACT' for the charts):\n\n");
            score_table(stdout, sv, ns);
        }
    }
    rc = render_flush(stdout);
out:
    cstore_abort(t);
    json_decref(j);
    for (size_t i = 0; i < l.n; i++) {
        content_free(l.v[i].ct);
        render_message_free(l.v[i].m);
    }
    free(l.v);
    score_rows_free(sv, ns);
    if (c != NULL)
        contact_free(c);
    return rc;
}
