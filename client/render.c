#include "render.h"

#include <errno.h>
#include <malloc.h>
#include <qrencode.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "err.h"

/* --- wiping allocators ------------------------------------------------------ */

static void *wipe_alloc(void *data, size_t size)
{
    (void)data;
    return malloc(size ? size : 1);
}

static void wipe_free_ptr(void *p)
{
    if (p != NULL) {
        sodium_memzero(p, malloc_usable_size(p));
        free(p);
    }
}

static void wipe_free(void *data, void *p)
{
    (void)data;
    wipe_free_ptr(p);
}

static void *json_wipe_malloc(size_t size) { return malloc(size ? size : 1); }

ProtobufCAllocator render_wipe_allocator = {wipe_alloc, wipe_free, NULL};

void render_json_secure(void) { json_set_alloc_funcs(json_wipe_malloc, wipe_free_ptr); }

/* --- names ------------------------------------------------------------------ */

int content_decode(const Alcove__Local__Message *m, Alcove__E2e__Content **out)
{
    if (m == NULL || out == NULL)
        return ALCOVE_EINVAL;
    *out = NULL;
    if (!m->has_content || m->content.len == 0)
        return ALCOVE_ENOTFOUND;
    *out = alcove__e2e__content__unpack(&render_wipe_allocator, m->content.len, m->content.data);
    return *out != NULL ? 0 : ALCOVE_ECORRUPT;
}

void content_free(Alcove__E2e__Content *c)
{
    if (c != NULL)
        alcove__e2e__content__free_unpacked(c, &render_wipe_allocator);
}

void render_message_free(Alcove__Local__Message *m)
{
    if (m != NULL)
        alcove__local__message__free_unpacked(m, &render_wipe_allocator);
}

const char *content_kind_name(const Alcove__E2e__Content *c)
{
    switch (c != NULL ? c->body_case : ALCOVE__E2E__CONTENT__BODY__NOT_SET) {
    case ALCOVE__E2E__CONTENT__BODY_TEXT: return "text";
    case ALCOVE__E2E__CONTENT__BODY_CHECKIN: return "checkin";
    case ALCOVE__E2E__CONTENT__BODY_INTRO: return "intro";
    case ALCOVE__E2E__CONTENT__BODY_RECEIPT: return "receipt";
    case ALCOVE__E2E__CONTENT__BODY_LEAVE: return "leave";
    case ALCOVE__E2E__CONTENT__BODY_QUESTIONNAIRE: return "questionnaire";
    case ALCOVE__E2E__CONTENT__BODY_ANSWERS: return "answers";
    case ALCOVE__E2E__CONTENT__BODY_NOTICE: return "notice";
    default: return "unknown";
    }
}

const char *contact_state_name(Alcove__Local__Contact__State s)
{
    switch (s) {
    case ALCOVE__LOCAL__CONTACT__STATE__PENDING: return "pending";
    case ALCOVE__LOCAL__CONTACT__STATE__ACTIVE: return "active";
    case ALCOVE__LOCAL__CONTACT__STATE__LEFT: return "left";
    default: return "unknown";
    }
}

/* --- sanitizing ------------------------------------------------------------- */

#define BAD_CP 0xFFFFFFFFu

/* One code point at p (n >= 1 bytes left): its length, *cp = BAD_CP for an
 * invalid sequence (then length 1). */
static size_t utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, v = c & 0x1fu, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, v = c & 0x0fu, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, v = c & 0x07u, min = 0x10000;
    else
        goto bad;
    if (n < len)
        goto bad;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            goto bad;
        v = (v << 6) | (p[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        goto bad;
    *cp = v;
    return len;
bad:
    *cp = BAD_CP;
    return 1;
}

/* C1 controls and the bidi controls that can reorder what follows them. */
static int cp_hidden_control(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

static size_t cp_width(uint32_t cp)
{
    if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x1ab0 && cp <= 0x1aff) ||
        (cp >= 0x1dc0 && cp <= 0x1dff) || (cp >= 0x200b && cp <= 0x200f) ||
        (cp >= 0x20d0 && cp <= 0x20ff) || (cp >= 0xfe00 && cp <= 0xfe0f) ||
        (cp >= 0xfe20 && cp <= 0xfe2f) || (cp >= 0x2060 && cp <= 0x2064))
        return 0;
    if ((cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf && cp != 0x303f) ||
        (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
        (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
        (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) ||
        (cp >= 0x1f900 && cp <= 0x1f9ff) || (cp >= 0x20000 && cp <= 0x3fffd))
        return 2;
    return 1;
}

/* What to print for the next code point of s (n bytes left): bytes and
 * blen (s itself, "?" or " ") and w, its columns.  Returns the bytes consumed. */
static size_t term_piece(const char *s, size_t n, int multi, const char **bytes, size_t *blen,
                         size_t *w)
{
    uint32_t cp;
    size_t len = utf8_next((const unsigned char *)s, n, &cp);
    *bytes = s;
    *blen = len;
    *w = 1;
    if (cp == '\n' || cp == '\t') {
        if (!multi)
            *bytes = " ";
        *blen = 1;
    } else if (cp == BAD_CP || cp < 0x20 || cp == 0x7f || cp_hidden_control(cp)) {
        *bytes = "?";
        *blen = 1;
    } else {
        *w = cp_width(cp);
    }
    return len;
}

size_t render_width(const char *s)
{
    size_t cols = 0, n = s != NULL ? strlen(s) : 0, blen, w;
    const char *b;
    while (n > 0) {
        size_t used = term_piece(s, n, 0, &b, &blen, &w);
        cols += w;
        s += used;
        n -= used;
    }
    return cols;
}

size_t render_str(FILE *out, const char *s, size_t max_cols)
{
    size_t cols = 0, n = s != NULL ? strlen(s) : 0, budget = SIZE_MAX, blen, w;
    const char *b;
    int cut = max_cols > 0 && render_width(s) > max_cols;
    if (cut)
        budget = max_cols >= 3 ? max_cols - 3 : max_cols;
    while (n > 0) {
        size_t used = term_piece(s, n, 0, &b, &blen, &w);
        if (cols + w > budget)
            break;
        fwrite(b, 1, blen, out);
        cols += w;
        s += used;
        n -= used;
    }
    if (cut && max_cols >= 3) {
        fputs("...", out);
        cols += 3;
    }
    return cols;
}

void render_cell(FILE *out, const char *s, size_t width)
{
    for (size_t cols = render_str(out, s, width); cols < width; cols++)
        fputc(' ', out);
}

/* Multi-line text: `first` before the first line, `indent` before the others. */
static void emit_lines(FILE *out, const char *s, const char *first, const char *indent)
{
    size_t n = s != NULL ? strlen(s) : 0, blen, w;
    const char *b;
    while (n > 0 && s[n - 1] == '\n') /* the caller ends the last line */
        n--;
    int line_start = 0; /* indent lazily: no trailing spaces on empty lines */
    fputs(first != NULL ? first : "", out);
    while (n > 0) {
        size_t used = term_piece(s, n, 1, &b, &blen, &w);
        if (line_start && *b != '\n' && indent != NULL)
            fputs(indent, out);
        fwrite(b, 1, blen, out);
        line_start = *b == '\n';
        s += used;
        n -= used;
    }
}

void render_block(FILE *out, const char *s, const char *indent)
{
    emit_lines(out, s, indent, indent);
    fputc('\n', out);
}

json_t *render_json_str(const char *s)
{
    if (s == NULL)
        return json_null();
    size_t n = strlen(s), o = 0;
    char *buf = malloc(3 * n + 1);
    if (buf == NULL)
        return NULL;
    while (n > 0) {
        uint32_t cp;
        size_t len = utf8_next((const unsigned char *)s, n, &cp);
        if (cp == BAD_CP || cp_hidden_control(cp)) {
            memcpy(buf + o, "\xef\xbf\xbd", 3); /* U+FFFD */
            o += 3;
        } else {
            memcpy(buf + o, s, len);
            o += len;
        }
        s += len;
        n -= len;
    }
    json_t *j = json_stringn(buf, o);
    sodium_memzero(buf, o);
    free(buf);
    return j;
}

/* --- times ------------------------------------------------------------------ */

static void fmt_time(uint64_t ms, int with_time, char *out, size_t cap)
{
    struct tm tm;
    time_t t = (time_t)(ms / 1000u);
    size_t n = 0;
    if (cap == 0)
        return;
    if (ms != 0 && localtime_r(&t, &tm) != NULL)
        n = with_time ? strftime(out, cap, "%Y-%m-%d %H:%M", &tm) : strftime(out, cap, "%Y-%m-%d", &tm);
    if (n == 0)
        snprintf(out, cap, "%s", with_time ? "unknown time" : "unknown date");
}

void render_time(uint64_t ms, char *out, size_t cap) { fmt_time(ms, 1, out, cap); }
void render_date(uint64_t ms, char *out, size_t cap) { fmt_time(ms, 0, out, cap); }

/* --- one message on a terminal ---------------------------------------------- */

void render_hours(float h, char *out, size_t cap)
{
    double d = (double)h;
    if (!(d >= 0.0 && d < 1e6)) {
        snprintf(out, cap, "?");
        return;
    }
    snprintf(out, cap, "%.2f", d);
    char *dot = strchr(out, '.');
    if (dot != NULL) {
        size_t e = strlen(out);
        while (e > 0 && out[e - 1] == '0')
            out[--e] = '\0';
        if (e > 0 && out[e - 1] == '.')
            out[e - 1] = '\0';
    }
}

void render_checkin_values(FILE *out, const Alcove__E2e__CheckIn *ci)
{
    const char *sep = "";
    if (ci->has_mood) {
        fprintf(out, "mood %u/10", (unsigned)ci->mood);
        sep = ", ";
    }
    if (ci->has_anxiety) {
        fprintf(out, "%sanxiety %u/10", sep, (unsigned)ci->anxiety);
        sep = ", ";
    }
    if (ci->has_sleep_hours) {
        char h[32];
        render_hours(ci->sleep_hours, h, sizeof h);
        fprintf(out, "%ssleep %s h", sep, h);
        sep = ", ";
    }
    if (*sep == '\0')
        fputs("no values", out);
}

static void body_checkin(FILE *out, const Alcove__E2e__CheckIn *ci)
{
    fputs("  check-in: ", out);
    render_checkin_values(out, ci);
    fputc('\n', out);
    if (ci->note != NULL && *ci->note) {
        emit_lines(out, ci->note, "  note: ", "        ");
        fputc('\n', out);
    }
    if (ci->n_tags > 0) {
        fputs("  tags: ", out);
        for (size_t i = 0; i < ci->n_tags; i++) {
            fputs(i ? ", " : "", out);
            render_str(out, ci->tags[i], 40);
        }
        fputc('\n', out);
    }
}

static void body_questionnaire(FILE *out, const Alcove__E2e__Questionnaire *q)
{
    fputs("  questionnaire: ", out);
    render_str(out, q->title != NULL && *q->title ? q->title : "(untitled)", 0);
    if (q->instrument != NULL && *q->instrument) {
        fputs(" (", out);
        render_str(out, q->instrument, 40);
        fputc(')', out);
    }
    fputc('\n', out);
    for (size_t i = 0; i < q->n_items; i++) {
        const Alcove__E2e__Item *it = q->items[i];
        fprintf(out, "    %zu. ", i + 1);
        render_str(out, it->text, 0);
        fprintf(out, " (%u-%u)\n", (unsigned)it->min, (unsigned)it->max);
        for (size_t k = 0; k < it->n_labels; k++) {
            fprintf(out, "%s%llu = ", k ? ", " : "       ", (unsigned long long)it->min + k);
            render_str(out, it->labels[k], 40);
        }
        if (it->n_labels > 0)
            fputc('\n', out);
    }
}

static void body_answers(FILE *out, const Alcove__E2e__Answers *an)
{
    unsigned long long total = 0;
    fputs("  answers", out);
    if (an->instrument != NULL && *an->instrument) {
        fputs(" (", out);
        render_str(out, an->instrument, 40);
        fputc(')', out);
    }
    fputc(':', out);
    for (size_t i = 0; i < an->n_values; i++) {
        fprintf(out, "%s%u", i ? ", " : " ", (unsigned)an->values[i]);
        total += an->values[i];
    }
    fprintf(out, "; total %llu\n", total);
}

static void render_body(FILE *out, const Alcove__E2e__Content *ct, int outgoing)
{
    char when[32];
    switch (ct->body_case) {
    case ALCOVE__E2E__CONTENT__BODY_TEXT:
        if (ct->text->body == NULL || *ct->text->body == '\0')
            fputs("  (empty message)\n", out);
        else
            render_block(out, ct->text->body, "  ");
        break;
    case ALCOVE__E2E__CONTENT__BODY_CHECKIN:
        body_checkin(out, ct->checkin);
        break;
    case ALCOVE__E2E__CONTENT__BODY_NOTICE:
        emit_lines(out, ct->notice->text, "  notice: ", "    ");
        if (ct->notice->has_until && ct->notice->until != 0) {
            render_time(ct->notice->until, when, sizeof when);
            fprintf(out, " (until %s)", when);
        }
        fputc('\n', out);
        break;
    case ALCOVE__E2E__CONTENT__BODY_QUESTIONNAIRE:
        body_questionnaire(out, ct->questionnaire);
        break;
    case ALCOVE__E2E__CONTENT__BODY_ANSWERS:
        body_answers(out, ct->answers);
        break;
    case ALCOVE__E2E__CONTENT__BODY_RECEIPT:
        fprintf(out, "  receipt: %s (%zu message%s)\n",
                ct->receipt->kind == ALCOVE__E2E__RECEIPT__KIND__READ ? "read" : "delivered",
                ct->receipt->n_msg_ids, ct->receipt->n_msg_ids == 1 ? "" : "s");
        break;
    case ALCOVE__E2E__CONTENT__BODY_LEAVE:
        fputs(outgoing ? "  you left this conversation\n" : "  left the conversation\n", out);
        break;
    case ALCOVE__E2E__CONTENT__BODY_INTRO:
        fputs(outgoing ? "  introduction sent as " : "  introduced themselves as ", out);
        render_str(out, ct->intro->display_name != NULL && *ct->intro->display_name
                            ? ct->intro->display_name : "(no name)", 60);
        fputc('\n', out);
        break;
    default:
        fputs("  (a kind of message this version of alcove cannot show)\n", out);
        break;
    }
}

void render_message(FILE *out, const Alcove__Local__Contact *c, const Alcove__Local__Message *m)
{
    const char *label = c != NULL && c->label != NULL ? c->label : "?";
    Alcove__E2e__Content *ct = NULL;
    char when[32];
    render_time(m->has_sent_at && m->sent_at ? m->sent_at : m->received_at, when, sizeof when);
    if (m->outgoing) {
        fputs("you → ", out);
        render_str(out, label, 40);
    } else {
        render_str(out, label, 40);
        fputs(" → you", out);
    }
    fprintf(out, "  %s", when);
    if (m->outgoing && m->status == ALCOVE__LOCAL__MESSAGE__STATUS__QUEUED)
        fputs("  [queued]", out);
    else if (m->outgoing && m->has_read_at && m->read_at)
        fputs("  ✓✓ read", out);
    else if (m->outgoing && m->has_delivered_at && m->delivered_at)
        fputs("  ✓ delivered", out);
    fputc('\n', out);
    if (m->problem != NULL) {
        fputs("  (rejected: ", out);
        render_str(out, *m->problem ? m->problem : "invalid", 200);
        fputs(")\n", out);
        return;
    }
    int rc = content_decode(m, &ct);
    if (rc != 0) {
        fprintf(out, "  (this message cannot be shown: %s)\n",
                rc == ALCOVE_ENOTFOUND ? "no content" : "corrupted");
        return;
    }
    render_body(out, ct, m->outgoing);
    content_free(ct);
}

/* --- output ---------------------------------------------------------------- */

int render_flush(FILE *out)
{
    if (fflush(out) != 0 || ferror(out)) {
        app_error("cannot write the output: %s", strerror(errno ? errno : EIO));
        return EXIT_FAIL;
    }
    return 0;
}

/* --- QR codes --------------------------------------------------------------- */

#define QR_QUIET 2

static int qr_dark(const QRcode *q, int x, int y)
{
    if (x < 0 || y < 0 || x >= q->width || y >= q->width)
        return 0;
    return q->data[(size_t)y * (size_t)q->width + (size_t)x] & 1;
}

int render_qr(FILE *out, const char *text)
{
    if (out == NULL || text == NULL || *text == '\0')
        return ALCOVE_EINVAL;
    errno = 0;
    /* Level M for short texts (safety numbers); L keeps a long invite code
     * narrow enough for most terminals (a screen is a clean medium). */
    QRcode *q = QRcode_encodeString(text, 0, strlen(text) > 200 ? QR_ECLEVEL_L : QR_ECLEVEL_M,
                                    QR_MODE_8, 1);
    if (q == NULL)
        return errno == ERANGE ? ALCOVE_ETOOBIG : errno == ENOMEM ? ALCOVE_ENOMEM : ALCOVE_EINVAL;
    int total = q->width + 2 * QR_QUIET;
    for (int y = 0; y < total; y += 2) {
        for (int x = 0; x < total; x++) {
            int top = qr_dark(q, x - QR_QUIET, y - QR_QUIET);
            int bot = qr_dark(q, x - QR_QUIET, y + 1 - QR_QUIET);
            fputs(top ? (bot ? "█" : "▀") : (bot ? "▄" : " "), out);
        }
        fputc('\n', out);
    }
    QRcode_free(q);
    return ferror(out) ? ALCOVE_EIO : 0;
}

/* --- reading for display ---------------------------------------------------- */

typedef struct each_ctx {
    render_msg_fn fn;
    void *ctx;
} each_ctx;

static int each_one(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    each_ctx *e = ctx;
    if (klen != 24)
        return ALCOVE_ECORRUPT;
    Alcove__Local__Message *m = alcove__local__message__unpack(&render_wipe_allocator, vlen, val);
    if (m == NULL)
        return ALCOVE_ECORRUPT;
    int rc = e->fn(e->ctx, key, &m);
    render_message_free(m);
    return rc;
}

int render_each_message(cstore_txn *t, const Alcove__Local__Contact *c, render_msg_fn fn,
                        void *ctx)
{
    each_ctx e = {fn, ctx};
    if (!c->has_id || c->id.len != CONTACT_ID_BYTES)
        return ALCOVE_EINVAL;
    return cstore_each(t, CS_MESSAGES, c->id.data, CONTACT_ID_BYTES, each_one, &e);
}

int render_find_contact(cstore_txn *t, const char *label, Alcove__Local__Contact **out)
{
    Alcove__Local__Contact **v = NULL;
    size_t n = 0, best = SIZE_MAX, nci = 0, ci = SIZE_MAX;
    int rc = contact_list(t, &v, &n);
    if (rc != 0) {
        app_error("cannot read contacts: %s", alcove_strerror(rc));
        return EXIT_FAIL;
    }
    /* Exact matches first (a live contact beats a left one), then a unique
     * case-insensitive match among the live ones, else among all. */
    for (int pass = 0; pass < 2 && best == SIZE_MAX; pass++) {
        for (size_t i = 0; i < n; i++) {
            int left = v[i]->state == ALCOVE__LOCAL__CONTACT__STATE__LEFT;
            if (v[i]->label == NULL || left != pass)
                continue;
            if (strcmp(v[i]->label, label) == 0 && best == SIZE_MAX)
                best = i;
        }
    }
    for (int pass = 0; pass < 2 && best == SIZE_MAX && nci == 0; pass++) {
        for (size_t i = 0; i < n; i++) {
            int left = v[i]->state == ALCOVE__LOCAL__CONTACT__STATE__LEFT;
            if (v[i]->label != NULL && left == pass && strcasecmp(v[i]->label, label) == 0) {
                ci = i;
                nci++;
            }
        }
    }
    if (best == SIZE_MAX && nci == 1)
        best = ci;
    if (best == SIZE_MAX) {
        contact_list_free(v, n);
        app_error("no contact named '%s'%s", label, nci > 1 ? " (several differ only in case)" : "");
        app_hint("'alcove contacts' lists them");
        return EXIT_FAIL;
    }
    *out = v[best];
    v[best] = NULL;
    for (size_t i = 0; i < n; i++)
        if (v[i] != NULL)
            contact_free(v[i]);
    free(v);
    return 0;
}
