/* alcove audit [verify]: the hash-chained audit log (audit.h). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "commands.h"
#include "err.h"
#include "render.h"

typedef struct list_ctx {
    app *a;
    Alcove__Local__Contact **cs;
    size_t nc;
    json_t *arr;
    size_t n;
} list_ctx;

static const char *label_of(const list_ctx *l, const audit_entry *e)
{
    for (size_t i = 0; e->has_contact && i < l->nc; i++)
        if (l->cs[i]->id.len == 16 && memcmp(l->cs[i]->id.data, e->contact_id, 16) == 0)
            return l->cs[i]->label;
    return NULL;
}

static int list_one(void *ctx, const audit_entry *e)
{
    list_ctx *l = ctx;
    char id[33] = "-", when[32], h[17];
    if (e->has_contact)
        hex_encode(e->contact_id, 16, id);
    hex_encode(e->hash, 8, h);
    const char *label = label_of(l, e);
    l->n++;
    if (l->arr != NULL) {
        json_t *o = json_pack("{s:I, s:I, s:s, s:o, s:o, s:s}", "index", (json_int_t)e->index,
                              "time", (json_int_t)(e->time <= (uint64_t)LLONG_MAX ? e->time : 0),
                              "event", e->event, "contact_id",
                              e->has_contact ? json_string(id) : json_null(), "contact",
                              label ? render_json_str(label) : json_null(), "hash", h);
        return json_array_append_new(l->arr, o) == 0 ? 0 : ALCOVE_ENOMEM;
    }
    render_time(e->time, when, sizeof when);
    printf("%6llu  %-16s  %-20s  %-32s  ", (unsigned long long)e->index, when, e->event, id);
    render_str(stdout, label ? label : (e->has_contact ? "(forgotten)" : "-"), 24);
    fputc('\n', stdout);
    return 0;
}

int cmd_audit(app *a, int argc, char **argv)
{
    int verify = 0;
    if (argc == 2 && strcmp(argv[1], "verify") == 0)
        verify = 1;
    else if (argc != 1)
        return usage_error("audit takes nothing, or 'verify'");
    if (app_open(a) != 0)
        return EXIT_FAIL;
    cstore_txn *t = NULL;
    list_ctx l;
    memset(&l, 0, sizeof l);
    l.a = a;
    int rc = EXIT_FAIL, e;
    if ((e = cstore_begin(a->store, 0, &t)) != 0) {
        app_error("cannot read the local store: %s", alcove_strerror(e));
        return EXIT_FAIL;
    }
    if (verify) {
        audit_report rep;
        if ((e = audit_verify(t, &rep)) != 0) {
            app_error("cannot read the audit log: %s", alcove_strerror(e));
            goto out;
        }
        char head[65];
        hex_encode(rep.head, sizeof rep.head, head);
        if (a->json) {
            json_t *j = json_pack("{s:b, s:I, s:o, s:o, s:o}", "intact", !rep.broken, "entries",
                                  (json_int_t)rep.count, "broken_index",
                                  rep.broken ? json_integer((json_int_t)rep.broken_index)
                                             : json_null(),
                                  "reason", rep.broken ? json_string(rep.why) : json_null(),
                                  "head", rep.broken ? json_null() : json_string(head));
            render_json_dump(stdout, j);
            json_decref(j);
        } else if (!rep.broken) {
            printf("audit log intact: %llu entries, chain head %s\n",
                   (unsigned long long)rep.count, head);
        }
        if (rep.broken) {
            app_error("the audit log is broken at entry %llu: %s",
                      (unsigned long long)rep.broken_index, rep.why);
            app_hint("entries before %llu verify; the log was altered outside alcove",
                     (unsigned long long)rep.broken_index);
            rc = EXIT_FAIL;
            render_flush(stdout);
            goto out;
        }
        rc = render_flush(stdout);
        goto out;
    }
    if ((e = contact_list(t, &l.cs, &l.nc)) != 0) {
        app_error("cannot read contacts: %s", alcove_strerror(e));
        goto out;
    }
    if (a->json)
        l.arr = json_array();
    else
        printf("%6s  %-16s  %-20s  %-32s  %s\n", "INDEX", "TIME", "EVENT", "CONTACT ID", "CONTACT");
    if ((e = audit_each(t, list_one, &l)) != 0) {
        app_error("cannot read the audit log: %s", alcove_strerror(e));
        goto out;
    }
    if (a->json && render_json_dump(stdout, l.arr) != 0)
        goto out;
    if (!a->json && l.n == 0)
        printf("(no events yet)\n");
    rc = render_flush(stdout);
out:
    cstore_abort(t);
    json_decref(l.arr);
    contact_list_free(l.cs, l.nc);
    return rc;
}
