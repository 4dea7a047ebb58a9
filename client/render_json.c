/* The JSON half of client/render (render.h): messages and check-ins as
 * jansson values with a stable shape. */
#include <limits.h>
#include <string.h>

#include "err.h"
#include "render.h"

static json_t *j_uint(int has, uint64_t v)
{
    return has && v <= (uint64_t)LLONG_MAX ? json_integer((json_int_t)v) : json_null();
}

static json_t *j_hex(int has, const ProtobufCBinaryData *b)
{
    if (!has || b->len == 0 || b->len > 64)
        return json_null();
    char hex[129];
    hex_encode(b->data, b->len, hex);
    return json_string(hex);
}

/* Array of sanitized strings. */
static json_t *j_strings(char **v, size_t n)
{
    json_t *a = json_array();
    int bad = a == NULL;
    for (size_t i = 0; !bad && i < n; i++)
        bad = json_array_append_new(a, render_json_str(v[i])) != 0;
    if (bad) {
        json_decref(a);
        return NULL;
    }
    return a;
}

json_t *render_checkin_json(const Alcove__E2e__CheckIn *ci)
{
    json_t *o = json_object();
    int bad = o == NULL;
    json_t *sleep = json_null();
    if (ci->has_sleep_hours && ci->sleep_hours >= 0.0f && ci->sleep_hours < 1e6f) {
        long long centi = (long long)((double)ci->sleep_hours * 100.0 + 0.5);
        sleep = json_real((double)centi / 100.0);
    }
    bad = bad || json_object_set_new(o, "sleep_hours", sleep) != 0;
    bad = bad || json_object_set_new(o, "mood", j_uint(ci->has_mood, ci->mood)) != 0;
    bad = bad || json_object_set_new(o, "anxiety", j_uint(ci->has_anxiety, ci->anxiety)) != 0;
    bad = bad || json_object_set_new(o, "note", render_json_str(ci->note)) != 0;
    bad = bad || json_object_set_new(o, "tags", j_strings(ci->tags, ci->n_tags)) != 0;
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *j_questionnaire_items(const Alcove__E2e__Questionnaire *q)
{
    json_t *a = json_array();
    int bad = a == NULL;
    for (size_t i = 0; !bad && i < q->n_items; i++) {
        const Alcove__E2e__Item *it = q->items[i];
        json_t *o = json_object();
        bad = o == NULL || json_array_append_new(a, o) != 0;
        bad = bad || json_object_set_new(o, "text", render_json_str(it->text)) != 0;
        bad = bad || json_object_set_new(o, "min", j_uint(it->has_min, it->min)) != 0;
        bad = bad || json_object_set_new(o, "max", j_uint(it->has_max, it->max)) != 0;
        bad = bad || json_object_set_new(o, "labels", j_strings(it->labels, it->n_labels)) != 0;
    }
    if (bad) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/* Add the kind-specific keys of ct to o.  Returns 0 or -1. */
static int j_body(json_t *o, const Alcove__E2e__Content *ct)
{
    int bad = 0;
    switch (ct->body_case) {
    case ALCOVE__E2E__CONTENT__BODY_TEXT:
        return json_object_set_new(o, "text", render_json_str(ct->text->body ? ct->text->body : ""));
    case ALCOVE__E2E__CONTENT__BODY_CHECKIN: {
        json_t *ci = render_checkin_json(ct->checkin);
        bad = ci == NULL || json_object_update(o, ci) != 0;
        json_decref(ci);
        return bad ? -1 : 0;
    }
    case ALCOVE__E2E__CONTENT__BODY_NOTICE:
        bad = json_object_set_new(o, "text", render_json_str(ct->notice->text)) != 0;
        return bad || json_object_set_new(o, "until",
                                          j_uint(ct->notice->has_until && ct->notice->until,
                                                 ct->notice->until)) != 0 ? -1 : 0;
    case ALCOVE__E2E__CONTENT__BODY_QUESTIONNAIRE: {
        const Alcove__E2e__Questionnaire *q = ct->questionnaire;
        bad = json_object_set_new(o, "instrument", render_json_str(q->instrument)) != 0;
        bad = bad || json_object_set_new(o, "title", render_json_str(q->title)) != 0;
        return bad || json_object_set_new(o, "items", j_questionnaire_items(q)) != 0 ? -1 : 0;
    }
    case ALCOVE__E2E__CONTENT__BODY_ANSWERS: {
        const Alcove__E2e__Answers *an = ct->answers;
        json_t *v = json_array();
        long long total = 0;
        for (size_t i = 0; v != NULL && !bad && i < an->n_values; i++) {
            bad = json_array_append_new(v, json_integer(an->values[i])) != 0;
            total += an->values[i];
        }
        bad = json_object_set_new(o, "values", v) != 0 || bad;
        bad = bad || json_object_set_new(o, "total", json_integer(total)) != 0;
        bad = bad || json_object_set_new(o, "instrument", render_json_str(an->instrument)) != 0;
        return bad || json_object_set_new(o, "questionnaire_id",
                                          j_hex(an->has_questionnaire_id,
                                                &an->questionnaire_id)) != 0 ? -1 : 0;
    }
    case ALCOVE__E2E__CONTENT__BODY_RECEIPT: {
        const Alcove__E2e__Receipt *r = ct->receipt;
        json_t *ids = json_array();
        for (size_t i = 0; ids != NULL && !bad && i < r->n_msg_ids; i++)
            bad = json_array_append_new(ids, j_hex(1, &r->msg_ids[i])) != 0;
        bad = json_object_set_new(o, "msg_ids", ids) != 0 || bad;
        return bad || json_object_set_new(o, "receipt",
                                          json_string(r->kind == ALCOVE__E2E__RECEIPT__KIND__READ
                                                          ? "read" : "delivered")) != 0 ? -1 : 0;
    }
    case ALCOVE__E2E__CONTENT__BODY_INTRO:
        return json_object_set_new(o, "name", render_json_str(ct->intro->display_name));
    default:
        return 0;
    }
}

json_t *render_message_json(const Alcove__Local__Contact *c, const Alcove__Local__Message *m)
{
    static const char *const status[] = {"received", "queued", "sent"};
    Alcove__E2e__Content *ct = NULL;
    json_t *o = json_object();
    int bad = o == NULL;
    unsigned st = (unsigned)m->status;

    if (content_decode(m, &ct) != 0)
        ct = NULL; /* kind "unknown" */
    bad = bad || json_object_set_new(o, "contact",
                                     render_json_str(c != NULL && c->label ? c->label : "?")) != 0;
    bad = bad || json_object_set_new(o, "direction", json_string(m->outgoing ? "out" : "in")) != 0;
    bad = bad || json_object_set_new(o, "msg_id", j_hex(m->has_msg_id, &m->msg_id)) != 0;
    bad = bad || json_object_set_new(o, "sent_at", j_uint(m->has_sent_at, m->sent_at)) != 0;
    bad = bad || json_object_set_new(o, "received_at",
                                     j_uint(m->has_received_at, m->received_at)) != 0;
    bad = bad || json_object_set_new(o, "read", json_boolean(m->read)) != 0;
    bad = bad || json_object_set_new(o, "status", json_string(st < 3 ? status[st] : "unknown")) != 0;
    bad = bad || json_object_set_new(o, "kind", json_string(content_kind_name(ct))) != 0;
    bad = bad || json_object_set_new(o, "problem", render_json_str(m->problem)) != 0;
    bad = bad || json_object_set_new(o, "delivered_at", j_uint(m->has_delivered_at && m->delivered_at,
                                                               m->delivered_at)) != 0;
    bad = bad || json_object_set_new(o, "read_at", j_uint(m->has_read_at && m->read_at,
                                                          m->read_at)) != 0;
    if (!bad && ct != NULL && m->problem == NULL)
        bad = j_body(o, ct) != 0;
    content_free(ct);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int render_json_dump(FILE *out, const json_t *j)
{
    if (json_dumpf(j, out, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(10)) != 0 ||
        fputc('\n', out) == EOF)
        return ALCOVE_EIO;
    return 0;
}
