#include "questionnaire.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "render.h"

/* --- the published instruments (public domain) ------------------------- */

static const char *const FREQ_LABELS[4] = {"Not at all", "Several days",
                                           "More than half the days", "Nearly every day"};

static const char *const PHQ9_ITEMS[9] = {
    "Little interest or pleasure in doing things",
    "Feeling down, depressed, or hopeless",
    "Trouble falling or staying asleep, or sleeping too much",
    "Feeling tired or having little energy",
    "Poor appetite or overeating",
    "Feeling bad about yourself - or that you are a failure or have let yourself or your "
    "family down",
    "Trouble concentrating on things, such as reading the newspaper or watching television",
    "Moving or speaking so slowly that other people could have noticed? Or the opposite - "
    "being so fidgety or restless that you have been moving around a lot more than usual",
    "Thoughts that you would be better off dead or of hurting yourself in some way",
};

static const char *const GAD7_ITEMS[7] = {
    "Feeling nervous, anxious or on edge",
    "Not being able to stop or control worrying",
    "Worrying too much about different things",
    "Trouble relaxing",
    "Being so restless that it is hard to sit still",
    "Becoming easily annoyed or irritable",
    "Feeling afraid as if something awful might happen",
};

static const quest_band PHQ9_BANDS[5] = {
    {0, 4, "minimal"}, {5, 9, "mild"}, {10, 14, "moderate"},
    {15, 19, "moderately severe"}, {20, 27, "severe"},
};

static const quest_band GAD7_BANDS[4] = {
    {0, 4, "minimal"}, {5, 9, "mild"}, {10, 14, "moderate"}, {15, 21, "severe"},
};

static int name_is(const char *name, const char *want)
{
    /* case-insensitive, ignoring '-' and ' ' */
    for (;;) {
        while (*name == '-' || *name == ' ')
            name++;
        while (*want == '-' || *want == ' ')
            want++;
        if (*name == '\0' || *want == '\0')
            return *name == *want;
        if (tolower((unsigned char)*name) != tolower((unsigned char)*want))
            return 0;
        name++;
        want++;
    }
}

static int fill_builtin(quest *q, const char *instrument, const char *const *items, size_t n,
                        const quest_band *bands, size_t nb)
{
    memset(q, 0, sizeof *q);
    snprintf(q->instrument, sizeof q->instrument, "%s", instrument);
    snprintf(q->title, sizeof q->title,
             "Over the last 2 weeks, how often have you been bothered by %s",
             n == 9 ? "any of the following problems?" : "the following problems?");
    for (size_t i = 0; i < n; i++) {
        snprintf(q->items[i].text, sizeof q->items[i].text, "%s", items[i]);
        q->items[i].min = 0;
        q->items[i].max = 3;
        for (size_t k = 0; k < 4; k++)
            if ((q->items[i].labels[k] = strdup(FREQ_LABELS[k])) == NULL) {
                quest_free(q);
                return ALCOVE_ENOMEM;
            }
        q->items[i].n_labels = 4;
    }
    q->n_items = n;
    memcpy(q->bands, bands, nb * sizeof *bands);
    q->n_bands = nb;
    return 0;
}

int quest_builtin(const char *name, quest *q)
{
    if (name_is(name, "phq9"))
        return fill_builtin(q, "PHQ-9", PHQ9_ITEMS, 9, PHQ9_BANDS, 5);
    if (name_is(name, "gad7"))
        return fill_builtin(q, "GAD-7", GAD7_ITEMS, 7, GAD7_BANDS, 4);
    return ALCOVE_ENOTFOUND;
}

void quest_free(quest *q)
{
    for (size_t i = 0; i < QUEST_MAX_ITEMS; i++) {
        for (size_t k = 0; k < q->items[i].n_labels; k++)
            free(q->items[i].labels[k]);
        q->items[i].n_labels = 0;
    }
}

void quest_view(quest *q)
{
    Alcove__E2e__Questionnaire init = ALCOVE__E2E__QUESTIONNAIRE__INIT;
    q->pb = init;
    q->pb.instrument = q->instrument;
    q->pb.title = q->title;
    for (size_t i = 0; i < q->n_items; i++) {
        Alcove__E2e__Item it = ALCOVE__E2E__ITEM__INIT;
        it.text = q->items[i].text;
        it.has_min = it.has_max = 1;
        it.min = q->items[i].min;
        it.max = q->items[i].max;
        it.n_labels = q->items[i].n_labels;
        it.labels = q->items[i].labels;
        q->pb_items[i] = it;
        q->pb_ptrs[i] = &q->pb_items[i];
    }
    q->pb.n_items = q->n_items;
    q->pb.items = q->pb_ptrs;
}

/* --- the file format ---------------------------------------------------- */

typedef struct parser {
    const char *path;
    unsigned line;
    char *err;
    size_t errcap;
} parser;

static int perr(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(parser *p, const char *fmt, ...)
{
    va_list ap;
    int n = p->line ? snprintf(p->err, p->errcap, "%s:%u: ", p->path, p->line)
                    : snprintf(p->err, p->errcap, "%s: ", p->path);
    if (n < 0 || (size_t)n >= p->errcap)
        return -1;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errcap - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Printable UTF-8 text of 1..max bytes (no control characters). */
static int check_text(parser *p, const char *what, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0)
        return perr(p, "%s is empty", what);
    if (n > max)
        return perr(p, "%s is too long (%zu bytes; at most %zu)", what, n, max);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return perr(p, "%s holds a control character", what);
    return 0;
}

/* "MIN-MAX" with whole numbers. */
static int parse_range(const char *s, uint32_t *lo, uint32_t *hi, const char **rest)
{
    char *end;
    errno = 0;
    unsigned long a = strtoul(s, &end, 10);
    if (end == s || *end != '-' || errno != 0 || !isdigit((unsigned char)s[0]))
        return -1;
    const char *b = end + 1;
    if (!isdigit((unsigned char)*b))
        return -1;
    unsigned long c = strtoul(b, &end, 10);
    if (errno != 0 || a > 100000 || c > 100000)
        return -1;
    *lo = (uint32_t)a;
    *hi = (uint32_t)c;
    *rest = end;
    return 0;
}

static int parse_line(parser *p, quest *q, char *line, uint32_t *smin, uint32_t *smax,
                      int *have_scale, char **labels, size_t *nlabels)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#')
        return 0;
    char *colon = strchr(s, ':');
    if (colon == NULL)
        return perr(p, "expected 'key: value' (keys: instrument, title, scale, labels, item, "
                       "band)");
    *colon = '\0';
    char *key = trim(s), *val = trim(colon + 1);
    if (strcmp(key, "instrument") == 0) {
        if (q->instrument[0])
            return perr(p, "instrument is given twice");
        if (check_text(p, "instrument", val, QUEST_NAME_MAX) != 0)
            return -1;
        snprintf(q->instrument, sizeof q->instrument, "%s", val);
    } else if (strcmp(key, "title") == 0) {
        if (check_text(p, "title", val, QUEST_TEXT_MAX) != 0)
            return -1;
        snprintf(q->title, sizeof q->title, "%s", val);
    } else if (strcmp(key, "scale") == 0) {
        const char *rest;
        if (parse_range(val, smin, smax, &rest) != 0 || *trim((char *)(uintptr_t)rest) != '\0')
            return perr(p, "scale must be MIN-MAX with whole numbers, like 0-3 (got '%s')", val);
        if (!(*smin < *smax && *smax <= 100))
            return perr(p, "scale %u-%u: need MIN < MAX <= 100", (unsigned)*smin, (unsigned)*smax);
        *have_scale = 1;
        for (size_t k = 0; k < *nlabels; k++)
            free(labels[k]);
        *nlabels = 0; /* labels belong to a scale */
    } else if (strcmp(key, "labels") == 0) {
        if (!*have_scale)
            return perr(p, "labels before any scale: put 'scale: MIN-MAX' first");
        for (size_t k = 0; k < *nlabels; k++)
            free(labels[k]);
        *nlabels = 0;
        if (*val == '\0')
            return 0; /* no labels from here on */
        size_t want = (size_t)(*smax - *smin) + 1;
        for (char *tok = val;;) {
            char *bar = strchr(tok, '|');
            if (bar != NULL)
                *bar = '\0';
            char *l = trim(tok);
            if (*nlabels == want)
                return perr(p, "more labels than the scale %u-%u has values (%zu)",
                            (unsigned)*smin, (unsigned)*smax, want);
            if (check_text(p, "a label", l, QUEST_LABEL_MAX) != 0)
                return -1;
            if ((labels[(*nlabels)++] = strdup(l)) == NULL)
                return perr(p, "out of memory");
            if (bar == NULL)
                break;
            tok = bar + 1;
        }
        if (*nlabels != want)
            return perr(p, "%zu labels for the scale %u-%u, which has %zu values", *nlabels,
                        (unsigned)*smin, (unsigned)*smax, want);
    } else if (strcmp(key, "item") == 0) {
        if (!*have_scale)
            return perr(p, "item before any scale: put 'scale: MIN-MAX' first");
        if (q->n_items == QUEST_MAX_ITEMS)
            return perr(p, "more than %u items", QUEST_MAX_ITEMS);
        if (check_text(p, "item text", val, QUEST_TEXT_MAX) != 0)
            return -1;
        size_t i = q->n_items++;
        snprintf(q->items[i].text, sizeof q->items[i].text, "%s", val);
        q->items[i].min = *smin;
        q->items[i].max = *smax;
        for (size_t k = 0; k < *nlabels; k++)
            if ((q->items[i].labels[k] = strdup(labels[k])) == NULL)
                return perr(p, "out of memory");
        q->items[i].n_labels = *nlabels;
    } else if (strcmp(key, "band") == 0) {
        uint32_t lo, hi;
        const char *rest;
        if (q->n_bands == QUEST_MAX_BANDS)
            return perr(p, "more than %u bands", QUEST_MAX_BANDS);
        if (parse_range(val, &lo, &hi, &rest) != 0 || lo > hi)
            return perr(p, "band must be 'MIN-MAX LABEL' with MIN <= MAX, like '0-4 minimal'");
        char *label = trim((char *)(uintptr_t)rest);
        if (check_text(p, "band label", label, QUEST_LABEL_MAX) != 0)
            return -1;
        for (size_t b = 0; b < q->n_bands; b++)
            if (lo <= q->bands[b].max && hi >= q->bands[b].min)
                return perr(p, "band %u-%u overlaps band %u-%u", (unsigned)lo, (unsigned)hi,
                            (unsigned)q->bands[b].min, (unsigned)q->bands[b].max);
        quest_band *b = &q->bands[q->n_bands++];
        b->min = lo;
        b->max = hi;
        snprintf(b->label, sizeof b->label, "%s", label);
    } else {
        return perr(p, "unknown key '%s' (keys: instrument, title, scale, labels, item, band)",
                    key);
    }
    return 0;
}

int quest_parse_file(const char *path, quest *q, char *err, size_t errcap)
{
    parser p = {path, 0, err, errcap};
    char *labels[QUEST_MAX_LABELS];
    size_t nlabels = 0;
    uint32_t smin = 0, smax = 0;
    int have_scale = 0, rc = -1;
    char line[1100];
    memset(q, 0, sizeof *q);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return perr(&p, "cannot open: %s", strerror(errno));
    while (fgets(line, sizeof line, f) != NULL) {
        p.line++;
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        else if (!feof(f)) {
            perr(&p, "line is too long (at most 1000 bytes)");
            goto out;
        }
        if (memchr(line, '\0', n) != NULL || strlen(line) != n) {
            perr(&p, "holds a NUL byte");
            goto out;
        }
        if (parse_line(&p, q, line, &smin, &smax, &have_scale, labels, &nlabels) != 0)
            goto out;
    }
    if (ferror(f)) {
        perr(&p, "read error");
        goto out;
    }
    p.line = 0;
    if (q->instrument[0] == '\0') {
        perr(&p, "no 'instrument: NAME' line");
        goto out;
    }
    if (q->n_items == 0) {
        perr(&p, "no items ('item: TEXT' lines)");
        goto out;
    }
    uint64_t top = 0;
    for (size_t i = 0; i < q->n_items; i++)
        top += q->items[i].max;
    for (size_t b = 0; b < q->n_bands; b++)
        if (q->bands[b].max > top) {
            perr(&p, "band %u-%u goes beyond the highest possible total (%llu)",
                 (unsigned)q->bands[b].min, (unsigned)q->bands[b].max, (unsigned long long)top);
            goto out;
        }
    if (q->title[0] == '\0')
        snprintf(q->title, sizeof q->title, "%s", q->instrument);
    rc = 0;
out:
    for (size_t k = 0; k < nlabels; k++)
        free(labels[k]);
    fclose(f);
    if (rc != 0)
        quest_free(q);
    return rc;
}

/* --- scoring ------------------------------------------------------------- */

const char *quest_answers_mismatch(const Alcove__E2e__Questionnaire *q,
                                   const Alcove__E2e__Answers *an)
{
    if (an->n_values != q->n_items)
        return "the answers do not match the questionnaire's number of items";
    for (size_t i = 0; i < an->n_values; i++)
        if (an->values[i] < q->items[i]->min || an->values[i] > q->items[i]->max)
            return "an answer is outside its item's range";
    return NULL;
}

static int is_builtin(const Alcove__E2e__Questionnaire *q, const char *name, size_t n)
{
    if (q->instrument == NULL || strcmp(q->instrument, name) != 0 || q->n_items != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (q->items[i]->min != 0 || q->items[i]->max != 3)
            return 0;
    return 1;
}

static void pick_band(uint64_t total, const quest_band *b, size_t nb, char *out)
{
    for (size_t i = 0; i < nb; i++)
        if (total >= b[i].min && total <= b[i].max) {
            snprintf(out, QUEST_LABEL_MAX + 1, "%s", b[i].label);
            return;
        }
}

void quest_score_of(const Alcove__E2e__Questionnaire *q, Alcove__Local__Band *const *bands,
                    size_t nb, const Alcove__E2e__Answers *an, quest_score *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < an->n_values; i++)
        out->total += an->values[i];
    for (size_t i = 0; i < q->n_items; i++)
        out->max_total += q->items[i]->max;
    if (is_builtin(q, "PHQ-9", 9)) {
        out->builtin = 1;
        pick_band(out->total, PHQ9_BANDS, 5, out->band);
        if (an->n_values == 9 && an->values[QUEST_PHQ9_FLAG_ITEM - 1] > 0) {
            out->flagged = 1;
            out->flag_value = an->values[QUEST_PHQ9_FLAG_ITEM - 1];
        }
    } else if (is_builtin(q, "GAD-7", 7)) {
        out->builtin = 1;
        pick_band(out->total, GAD7_BANDS, 4, out->band);
    } else {
        for (size_t i = 0; i < nb; i++)
            if (out->total >= bands[i]->min && out->total <= bands[i]->max && bands[i]->label) {
                snprintf(out->band, sizeof out->band, "%s", bands[i]->label);
                break;
            }
    }
}

const char *quest_item_label(const Alcove__E2e__Item *it, uint32_t v)
{
    if (v < it->min || (size_t)(v - it->min) >= it->n_labels || it->labels[v - it->min] == NULL)
        return "";
    return it->labels[v - it->min];
}

typedef struct find_q {
    const uint8_t *id;
    Alcove__Local__Message *m;
    Alcove__E2e__Content *ct;
} find_q;

static int find_one(void *ctx, const uint8_t key[24], Alcove__Local__Message **mp)
{
    find_q *f = ctx;
    Alcove__E2e__Content *ct = NULL;
    (void)key;
    if ((*mp)->problem != NULL || !(*mp)->has_msg_id || (*mp)->msg_id.len != MSG_ID_BYTES ||
        memcmp((*mp)->msg_id.data, f->id, MSG_ID_BYTES) != 0)
        return 0;
    if (content_decode(*mp, &ct) != 0 || ct->body_case != ALCOVE__E2E__CONTENT__BODY_QUESTIONNAIRE) {
        content_free(ct);
        return 0;
    }
    f->m = *mp;
    *mp = NULL;
    f->ct = ct;
    return 1;
}

int quest_score_lookup(cstore_txn *t, const Alcove__Local__Contact *c,
                       const Alcove__E2e__Answers *an, quest_score *out,
                       Alcove__Local__Message **qmsg, Alcove__E2e__Content **qct)
{
    find_q f = {NULL, NULL, NULL};
    if (!an->has_questionnaire_id || an->questionnaire_id.len != MSG_ID_BYTES)
        return ALCOVE_ENOTFOUND;
    f.id = an->questionnaire_id.data;
    int rc = render_each_message(t, c, find_one, &f);
    if (rc != 0 && rc != 1)
        return rc;
    if (f.m == NULL)
        return ALCOVE_ENOTFOUND;
    rc = 0;
    if (quest_answers_mismatch(f.ct->questionnaire, an) != NULL)
        rc = ALCOVE_EMALFORMED;
    else
        quest_score_of(f.ct->questionnaire, f.m->bands, f.m->n_bands, an, out);
    if (qmsg != NULL) {
        *qmsg = f.m;
        f.m = NULL;
    }
    if (qct != NULL) {
        *qct = f.ct;
        f.ct = NULL;
    }
    render_message_free(f.m);
    content_free(f.ct);
    return rc;
}
