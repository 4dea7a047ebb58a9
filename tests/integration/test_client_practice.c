/* The therapist's practice with real processes: questionnaires scored
 * against hand-computed totals and the published bands, the PHQ-9 item-9
 * flag and the crisis notice, custom questionnaire files with bad input,
 * notices, receipts (and that disabled receipts put nothing on the relay),
 * export in Markdown and JSON (validated against docs/export-schema.md),
 * and the audit log's hash chain under tampering. */
#include <lmdb.h>
#include <sys/stat.h>

#include "client_practice_common.h"

#define CRISIS "Office hours Mon-Thu 9-17. In a crisis call 988."

/* ask -> fetch -> answer --values -> fetch; returns the client's answer output. */
static char *ask_and_answer(world *w, const char *instrument, const char *values)
{
    DO(w->therapist, T_ENV, "ask", "Sam", instrument);
    DO(w->client, C_ENV, "fetch");
    run_result r;
    RUN_OK(&r, w->client, C_ENV, "answer", "Dr Rivera", "--values", values);
    char *out = strdup(r.out);
    run_result_free(&r);
    return out;
}

static void test_scores_match_hand_computed_totals_and_bands(void **state)
{
    world *w = *state;
    connect_sam(w, CRISIS);
    /* Hand-computed: sums and the published bands. */
    static const struct {
        const char *inst, *values;
        int total, max;
        const char *band;
        int flagged;
    } cases[] = {
        {"phq9", "0,0,0,0,0,0,0,0,0", 0, 27, "minimal", 0},
        {"phq9", "1,1,1,1,0,0,0,0,0", 4, 27, "minimal", 0},
        {"phq9", "1,1,1,1,1,0,0,0,0", 5, 27, "mild", 0},
        {"phq9", "2,2,2,2,2,0,0,0,0", 10, 27, "moderate", 0},
        {"phq9", "3,3,3,3,3,0,0,0,0", 15, 27, "moderately severe", 0},
        {"phq9", "3,3,3,3,3,3,2,0,0", 20, 27, "severe", 0},
        {"gad7", "1,1,1,1,0,0,0", 4, 21, "minimal", 0},
        {"gad7", "2,2,1,0,0,0,0", 5, 21, "mild", 0},
        {"gad7", "2,2,2,2,2,2,2", 14, 21, "moderate", 0},
        {"gad7", "3,3,3,3,3,0,0", 15, 21, "severe", 0},
    };
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) {
        char *out = ask_and_answer(w, cases[i].inst, cases[i].values);
        char want[64];
        snprintf(want, sizeof want, "Your total: %d of %d.", cases[i].total, cases[i].max);
        EXPECT_IN(out, want);
        free(out);
        run_result r;
        RUN_OK(&r, w->therapist, T_ENV, "fetch");
        snprintf(want, sizeof want, "total %d of %d (%s)", cases[i].total, cases[i].max,
                 cases[i].band);
        EXPECT_IN(r.out, want);
        assert_null(strstr(r.out, "ATTENTION"));
        run_result_free(&r);
    }
    json_t *s = JSON(w->therapist, T_ENV, "scores", "Sam");
    assert_int_equal(json_array_size(s), n);
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array_get(s, i);
        assert_int_equal(jint(row, "total"), cases[i].total);
        assert_int_equal(jint(row, "max_total"), cases[i].max);
        assert_string_equal(json_string_value(json_object_get(row, "band")), cases[i].band);
        assert_string_equal(json_string_value(json_object_get(row, "instrument")),
                            cases[i].inst[0] == 'p' ? "PHQ-9" : "GAD-7");
        assert_false(json_is_true(json_object_get(row, "flagged")));
        assert_string_equal(json_string_value(json_object_get(row, "direction")), "in");
    }
    json_decref(s);
    /* The client sees the same scores of its own answers. */
    s = JSON(w->client, C_ENV, "scores", "Dr Rivera");
    assert_int_equal(json_array_size(s), n);
    json_decref(s);
    /* Table and chart, and checkins mentions them. */
    run_result r;
    RUN_OK(&r, w->therapist, T_ENV, "scores", "Sam");
    EXPECT_IN(r.out, "moderately severe");
    EXPECT_IN(r.out, "PHQ-9 total over time (0-27)");
    EXPECT_IN(r.out, "GAD-7 total over time (0-21)");
    run_result_free(&r);
    RUN_OK(&r, w->therapist, T_ENV, "checkins", "Sam");
    EXPECT_IN(r.out, "questionnaire scores");
    run_result_free(&r);
    /* Nothing waits any more; wrong values are usage errors. */
    RUN(&r, w->client, C_ENV, "answer", "--values", "1,2");
    assert_int_equal(r.code, 1);
    EXPECT_IN(r.err, "no questionnaire is waiting");
    run_result_free(&r);
    DO(w->therapist, T_ENV, "ask", "Sam", "gad7");
    DO(w->client, C_ENV, "fetch");
    RUN(&r, w->client, C_ENV, "answer", "--values", "1,2,3");
    assert_int_equal(r.code, 2);
    EXPECT_IN(r.err, "7 items");
    run_result_free(&r);
    RUN(&r, w->client, C_ENV, "answer", "--values", "0,0,0,0,0,0,4");
    assert_int_equal(r.code, 2);
    EXPECT_IN(r.err, "item 7 takes 0-3");
    run_result_free(&r);
    /* One item at a time from standard input (not a terminal: no prompts). */
    RUN_IN(&r, w->client, C_ENV, "1\n1\n1\n1\n1\n1\n3\n", "answer", "Dr Rivera");
    EXPECT_OK(&r);
    EXPECT_IN(r.out, "Your total: 9 of 21.");
    run_result_free(&r);
    RUN_OK(&r, w->therapist, T_ENV, "fetch");
    EXPECT_IN(r.out, "total 9 of 21 (mild)");
    EXPECT_IN(r.out, "7. Feeling afraid as if something awful might happen: 3 (Nearly every day)");
    run_result_free(&r);
}

static void test_phq9_item9_is_flagged_and_the_client_sees_the_crisis_notice(void **state)
{
    world *w = *state;
    connect_sam(w, CRISIS);
    /* A later notice replaces the invite's. */
    DO(w->therapist, T_ENV, "notice", "set", "Away until Monday. Crisis line: call 988.");
    DO(w->client, C_ENV, "fetch");
    char *out = ask_and_answer(w, "phq9", "0,1,0,1,0,1,0,0,1");
    EXPECT_IN(out, "Your total: 4 of 27.");
    EXPECT_IN(out, "Their notice for moments like this:\n  Away until Monday. Crisis line: call 988.");
    free(out);
    run_result r;
    RUN_OK(&r, w->therapist, T_ENV, "fetch");
    EXPECT_IN(r.out, "!!! ATTENTION: Sam answered PHQ-9 item 9");
    EXPECT_IN(r.out, "with 1: \"Several days\"");
    EXPECT_IN(r.out, "total 4 of 27 (minimal)");
    EXPECT_IN(r.err, "item 9 is above 0");
    run_result_free(&r);
    /* JSON fetch events carry the flag. */
    DO(w->therapist, T_ENV, "ask", "Sam", "phq9");
    DO(w->client, C_ENV, "fetch");
    DO(w->client, C_ENV, "answer", "--values", "3,3,3,3,3,3,3,3,3");
    json_t *j = JSON(w->therapist, T_ENV, "fetch");
    assert_int_equal(jint(j, "flagged"), 1);
    json_t *ev = json_array_get(json_object_get(j, "events"), 0);
    assert_string_equal(json_string_value(json_object_get(ev, "event")), "answers");
    assert_true(json_is_true(json_object_get(ev, "flagged")));
    assert_int_equal(jint(ev, "total"), 27);
    assert_string_equal(json_string_value(json_object_get(ev, "band")), "severe");
    json_decref(j);
    j = JSON(w->therapist, T_ENV, "scores", "Sam");
    assert_true(json_is_true(json_object_get(json_array_get(j, 0), "flagged")));
    assert_true(json_is_true(json_object_get(json_array_get(j, 1), "flagged")));
    json_decref(j);
    /* Item 9 at 0: no flag, and the client is not shown the crisis text. */
    out = ask_and_answer(w, "phq9", "1,1,1,1,1,1,1,1,0");
    assert_null(strstr(out, "Their notice for moments like this"));
    free(out);
    RUN_OK(&r, w->therapist, T_ENV, "fetch");
    assert_null(strstr(r.out, "ATTENTION"));
    EXPECT_IN(r.out, "total 8 of 27 (mild)");
    run_result_free(&r);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void expect_file_error(world *w, const char *name, const char *text, const char *want)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", w->tmp, name);
    write_file(path, text);
    run_result r;
    RUN(&r, w->therapist, T_ENV, "ask", "Sam", path);
    assert_int_equal(r.code, 1);
    char full[600];
    snprintf(full, sizeof full, "%s%s", path, want);
    EXPECT_IN(r.err, full);
    run_result_free(&r);
}

static void test_custom_questionnaire_file_bad_input_and_round_trip(void **state)
{
    world *w = *state;
    connect_sam(w, CRISIS);
    expect_file_error(w, "a.txt", "instrument: Sleep\nscale: 0-4\nitme: typo\n",
                      ":3: unknown key 'itme'");
    expect_file_error(w, "b.txt", "# comment\ninstrument: Sleep\nscale: 4-0\n",
                      ":3: scale 4-0: need MIN < MAX <= 100");
    expect_file_error(w, "c.txt", "instrument: Sleep\nscale: 0-2\nlabels: no | yes\nitem: x\n",
                      ":3: 2 labels for the scale 0-2, which has 3 values");
    expect_file_error(w, "d.txt", "instrument: Sleep\nitem: before scale\n",
                      ":2: item before any scale");
    expect_file_error(w, "e.txt", "instrument: Sleep\nscale: 0-3\n", ": no items");
    expect_file_error(w, "f.txt",
                      "instrument: S\nscale: 0-3\nitem: a\nitem: b\nband: 0-3 low\nband: 3-6 high\n",
                      ":6: band 3-6 overlaps band 0-3");
    expect_file_error(w, "g.txt", "instrument: S\nscale: 0-3\nitem: a\nband: 0-9 all\n",
                      ": band 0-9 goes beyond the highest possible total (3)");
    expect_file_error(w, "h.txt", "title: no instrument\nscale: 0-1\nitem: a\n",
                      ": no 'instrument: NAME' line");
    expect_file_error(w, "i.txt", "instrument: S\njust words\n", ":2: expected 'key: value'");
    run_result r;
    RUN(&r, w->therapist, T_ENV, "ask", "Sam", "/nonexistent/file");
    assert_int_equal(r.code, 2);
    EXPECT_IN(r.err, "neither a built-in questionnaire");
    run_result_free(&r);

    char path[400];
    snprintf(path, sizeof path, "%s/sleep.txt", w->tmp);
    write_file(path, "# Sleep check, my own\ninstrument: SLEEP-4\ntitle: Last week's sleep\n"
                     "scale: 0-4\nlabels: never | rarely | sometimes | often | always\n"
                     "item: I woke up during the night\nitem: I felt rested\n"
                     "scale: 0-1\nlabels:\nitem: I napped\n"
                     "band: 0-3 good\nband: 4-6 fair\nband: 7-9 poor\n");
    DO(w->therapist, T_ENV, "ask", "Sam", path);
    RUN_OK(&r, w->client, C_ENV, "fetch");
    EXPECT_IN(r.out, "SLEEP-4, 3 items");
    run_result_free(&r);
    RUN_OK(&r, w->client, C_ENV, "read", "Dr Rivera");
    EXPECT_IN(r.out, "I woke up during the night (0-4)");
    EXPECT_IN(r.out, "0 = never, 1 = rarely");
    run_result_free(&r);
    DO(w->client, C_ENV, "answer", "--values", "3,2,1");
    RUN_OK(&r, w->therapist, T_ENV, "fetch");
    EXPECT_IN(r.out, "total 6 of 9 (fair)");
    EXPECT_IN(r.out, "1. I woke up during the night: 3 (often)");
    run_result_free(&r);
}

static void test_notice_set_shown_on_send_expired_not_shown_clear(void **state)
{
    world *w = *state;
    connect_sam(w, "first notice");
    run_result r;
    RUN_OK(&r, w->therapist, T_ENV, "notice", "set", "On leave; Dr. Lee covers.", "--until", "2h");
    EXPECT_IN(r.out, "sent to 1 contact");
    run_result_free(&r);
    DO(w->client, C_ENV, "fetch");
    RUN_OK(&r, w->client, C_ENV, "checkin", "Dr Rivera", "--mood", "5");
    EXPECT_IN(r.out, "Notice from Dr Rivera: On leave; Dr. Lee covers.");
    run_result_free(&r);
    RUN_OK(&r, w->therapist, T_ENV, "notice");
    EXPECT_IN(r.out, "Your notice: On leave; Dr. Lee covers. (until ");
    run_result_free(&r);
    /* New invites carry it unless --notice is given. */
    json_t *j = JSON(w->therapist, T_ENV, "invite", "--name", "Other");
    json_decref(j);
    /* A notice that ends in one minute, seen; then one already ended is refused. */
    RUN(&r, w->therapist, T_ENV, "notice", "set", "x", "--until", "2001-01-01");
    assert_int_equal(r.code, 2);
    EXPECT_IN(r.err, "in the past");
    run_result_free(&r);
    DO(w->therapist, T_ENV, "notice", "clear");
    DO(w->client, C_ENV, "fetch");
    RUN_OK(&r, w->client, C_ENV, "send", "Dr Rivera", "hello");
    assert_null(strstr(r.out, "Notice from"));
    run_result_free(&r);
    json_t *msgs = JSON(w->client, C_ENV, "read", "Dr Rivera", "--all");
    size_t i, notices = 0;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if (strcmp(json_string_value(json_object_get(m, "kind")), "notice") == 0)
            notices++;
    }
    assert_int_equal(notices, 2);
    json_decref(msgs);
}

/* Count outgoing messages with delivered_at / read_at set. */
static void receipts_seen(const char *home, const char *const *env, const char *contact,
                          size_t *delivered, size_t *read)
{
    json_t *msgs = JSON(home, env, "read", contact, "--all");
    size_t i;
    json_t *m;
    *delivered = *read = 0;
    json_array_foreach(msgs, i, m) {
        if (strcmp(json_string_value(json_object_get(m, "direction")), "out") != 0)
            continue;
        *delivered += json_is_integer(json_object_get(m, "delivered_at"));
        *read += json_is_integer(json_object_get(m, "read_at"));
        assert_string_not_equal(json_string_value(json_object_get(m, "kind")), "receipt");
    }
    json_decref(msgs);
}

static void test_receipts_round_trip_and_disabled_receipts_send_nothing(void **state)
{
    world *w = *state;
    size_t d = 0, rd = 0;
    connect_sam(w, CRISIS);
    /* Defaults: the therapist sends "delivered", nobody sends "read". */
    json_t *j = JSON(w->therapist, T_ENV, "receipts", "Sam");
    assert_true(json_is_true(json_object_get(j, "delivered")));
    assert_false(json_is_true(json_object_get(j, "read")));
    json_decref(j);
    j = JSON(w->client, C_ENV, "receipts", "Dr Rivera");
    assert_false(json_is_true(json_object_get(j, "delivered")));
    json_decref(j);

    DO(w->client, C_ENV, "send", "Dr Rivera", "did you get this?");
    DO(w->therapist, T_ENV, "fetch");
    j = JSON(w->client, C_ENV, "fetch");
    assert_int_equal(jint(j, "fetched"), 1); /* exactly one blob: the receipt */
    assert_int_equal(jint(j, "receipts"), 1);
    assert_int_equal(jint(j, "new_messages"), 0);
    json_decref(j);
    receipts_seen(w->client, C_ENV, "Dr Rivera", &d, &rd);
    assert_int_equal(d, 1); /* the intro is not a stored message: no receipt */
    (void)rd;
    run_result r;
    RUN_OK(&r, w->client, C_ENV, "read", "Dr Rivera", "--all");
    EXPECT_IN(r.out, "✓ delivered");
    run_result_free(&r);

    /* Read receipts on: reading sends one; the client sees ✓✓ read. */
    DO(w->therapist, T_ENV, "receipts", "Sam", "--read", "on");
    DO(w->client, C_ENV, "send", "Dr Rivera", "second");
    DO(w->therapist, T_ENV, "fetch");
    DO(w->therapist, T_ENV, "read", "Sam");
    j = JSON(w->client, C_ENV, "fetch");
    assert_int_equal(jint(j, "fetched"), 2); /* delivered, then read */
    json_decref(j);
    receipts_seen(w->client, C_ENV, "Dr Rivera", &d, &rd);
    assert_true(rd >= 1);
    RUN_OK(&r, w->client, C_ENV, "contacts");
    EXPECT_IN(r.out, "✓✓ read");
    run_result_free(&r);

    /* The client never sent receipts to the therapist (defaults off). */
    DO(w->therapist, T_ENV, "send", "Sam", "reply");
    DO(w->client, C_ENV, "fetch");
    DO(w->client, C_ENV, "read", "Dr Rivera");
    j = JSON(w->therapist, T_ENV, "fetch");
    assert_int_equal(jint(j, "fetched"), 0);
    json_decref(j);

    /* Disabled: the relay holds nothing new for the client. */
    DO(w->therapist, T_ENV, "receipts", "Sam", "--delivered", "off", "--read", "off");
    DO(w->client, C_ENV, "send", "Dr Rivera", "third");
    DO(w->therapist, T_ENV, "fetch");
    DO(w->therapist, T_ENV, "read", "Sam");
    j = JSON(w->client, C_ENV, "fetch");
    assert_int_equal(jint(j, "fetched"), 0);
    json_decref(j);

    /* Receipts are never sent for receipts: with both sides on, one
     * message yields exactly one receipt and no echo. */
    DO(w->client, C_ENV, "receipts", "Dr Rivera", "--delivered", "on");
    DO(w->therapist, T_ENV, "receipts", "Sam", "--delivered", "on");
    DO(w->client, C_ENV, "send", "Dr Rivera", "fourth");
    DO(w->therapist, T_ENV, "fetch");
    j = JSON(w->client, C_ENV, "fetch");
    assert_int_equal(jint(j, "fetched"), 1);
    json_decref(j);
    j = JSON(w->therapist, T_ENV, "fetch");
    assert_int_equal(jint(j, "fetched"), 0);
    json_decref(j);
}

/* --- export ------------------------------------------------------------- */

static void need(json_t *o, const char *key, int type_mask, const char *where)
{
    /* type_mask: 1 string, 2 integer, 4 null, 8 bool, 16 array, 32 object, 64 number */
    json_t *v = json_object_get(o, key);
    int ok = v != NULL && (((type_mask & 1) && json_is_string(v)) ||
                           ((type_mask & 2) && json_is_integer(v)) ||
                           ((type_mask & 4) && json_is_null(v)) ||
                           ((type_mask & 8) && json_is_boolean(v)) ||
                           ((type_mask & 16) && json_is_array(v)) ||
                           ((type_mask & 32) && json_is_object(v)) ||
                           ((type_mask & 64) && json_is_number(v)));
    if (!ok)
        fprintf(stderr, "schema: %s.%s missing or of the wrong type\n", where, key);
    assert_true(ok);
}

/* The schema of docs/export-schema.md, checked by hand. */
static void validate_export(json_t *root, size_t *kinds_seen)
{
    assert_true(json_is_object(root));
    need(root, "schema", 1, "root");
    assert_string_equal(json_string_value(json_object_get(root, "schema")), "alcove-export/1");
    need(root, "exported_at", 2, "root");
    need(root, "exported_by", 1 | 4, "root");
    need(root, "since", 2 | 4, "root");
    need(root, "contact", 32, "root");
    json_t *c = json_object_get(root, "contact");
    need(c, "label", 1, "contact");
    need(c, "name", 1 | 4, "contact");
    need(c, "state", 1, "contact");
    need(c, "verified", 8, "contact");
    need(c, "safety_number", 1 | 4, "contact");
    need(c, "created_at", 2 | 4, "contact");
    need(root, "messages", 16, "root");
    need(root, "checkins", 16, "root");
    need(root, "scores", 16, "root");
    need(root, "notices", 16, "root");
    static const char *const kinds[] = {"text", "checkin", "intro", "receipt", "leave",
                                        "questionnaire", "answers", "notice", "unknown"};
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(root, "messages"), i, m) {
        need(m, "contact", 1, "message");
        need(m, "direction", 1, "message");
        need(m, "msg_id", 1 | 4, "message");
        need(m, "sent_at", 2 | 4, "message");
        need(m, "received_at", 2 | 4, "message");
        need(m, "read", 8, "message");
        need(m, "status", 1, "message");
        need(m, "kind", 1, "message");
        need(m, "problem", 1 | 4, "message");
        need(m, "delivered_at", 2 | 4, "message");
        need(m, "read_at", 2 | 4, "message");
        const char *k = json_string_value(json_object_get(m, "kind"));
        int known = 0;
        for (size_t x = 0; x < sizeof kinds / sizeof kinds[0]; x++)
            if (strcmp(k, kinds[x]) == 0) {
                known = 1;
                kinds_seen[x]++;
            }
        assert_true(known);
        if (!json_is_null(json_object_get(m, "problem")))
            continue;
        if (strcmp(k, "text") == 0)
            need(m, "text", 1, "text");
        else if (strcmp(k, "checkin") == 0) {
            need(m, "mood", 2 | 4, "checkin");
            need(m, "anxiety", 2 | 4, "checkin");
            need(m, "sleep_hours", 64 | 4, "checkin");
            need(m, "note", 1 | 4, "checkin");
            need(m, "tags", 16, "checkin");
        } else if (strcmp(k, "notice") == 0) {
            need(m, "text", 1 | 4, "notice");
            need(m, "until", 2 | 4, "notice");
        } else if (strcmp(k, "questionnaire") == 0) {
            need(m, "instrument", 1 | 4, "questionnaire");
            need(m, "title", 1 | 4, "questionnaire");
            need(m, "items", 16, "questionnaire");
            size_t q;
            json_t *it;
            json_array_foreach(json_object_get(m, "items"), q, it) {
                need(it, "text", 1 | 4, "item");
                need(it, "min", 2 | 4, "item");
                need(it, "max", 2 | 4, "item");
                need(it, "labels", 16, "item");
            }
        } else if (strcmp(k, "answers") == 0) {
            need(m, "questionnaire_id", 1 | 4, "answers");
            need(m, "instrument", 1 | 4, "answers");
            need(m, "values", 16, "answers");
            need(m, "total", 2, "answers");
        } else if (strcmp(k, "intro") == 0) {
            need(m, "name", 1 | 4, "intro");
        }
    }
    json_array_foreach(json_object_get(root, "checkins"), i, m) {
        need(m, "direction", 1, "checkins[]");
        need(m, "sent_at", 2 | 4, "checkins[]");
        need(m, "received_at", 2 | 4, "checkins[]");
        need(m, "mood", 2 | 4, "checkins[]");
        need(m, "tags", 16, "checkins[]");
    }
    json_array_foreach(json_object_get(root, "scores"), i, m) {
        need(m, "msg_id", 1, "scores[]");
        need(m, "questionnaire_id", 1, "scores[]");
        need(m, "instrument", 1, "scores[]");
        need(m, "direction", 1, "scores[]");
        need(m, "sent_at", 2, "scores[]");
        need(m, "total", 2, "scores[]");
        need(m, "max_total", 2, "scores[]");
        need(m, "band", 1 | 4, "scores[]");
        need(m, "flagged", 8, "scores[]");
        need(m, "values", 16, "scores[]");
    }
    json_array_foreach(json_object_get(root, "notices"), i, m) {
        need(m, "direction", 1, "notices[]");
        need(m, "sent_at", 2 | 4, "notices[]");
        need(m, "text", 1, "notices[]");
        need(m, "until", 2 | 4, "notices[]");
    }
}

static void test_export_md_and_json_with_every_content_type(void **state)
{
    world *w = *state;
    connect_sam(w, CRISIS);
    DO(w->client, C_ENV, "checkin", "Dr Rivera", "--mood", "4", "--anxiety", "6", "--sleep",
       "6.5", "--note", "tired | anxious", "--tag", "work");
    DO(w->client, C_ENV, "send", "Dr Rivera", "a text");
    DO(w->therapist, T_ENV, "fetch");
    DO(w->therapist, T_ENV, "notice", "set", "Back on the 3rd", "--until", "3d");
    DO(w->therapist, T_ENV, "ask", "Sam", "gad7");
    DO(w->client, C_ENV, "fetch");
    DO(w->client, C_ENV, "answer", "--values", "1,1,1,1,1,1,1");
    DO(w->therapist, T_ENV, "fetch");
    DO(w->therapist, T_ENV, "verify", "Sam", "--mark-verified");
    /* The client leaves: the thread ends with a Leave. */
    DO(w->client, C_ENV, "forget", "Dr Rivera");
    DO(w->therapist, T_ENV, "fetch");

    char path[400];
    snprintf(path, sizeof path, "%s/sam.json", w->tmp);
    DO(w->therapist, T_ENV, "export", "Sam", "--format", "json", "--output", path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *text = test_read_file(path, NULL);
    json_t *root = parse_json(text);
    free(text);
    size_t kinds[9] = {0};
    validate_export(root, kinds);
    assert_true(kinds[0] >= 1); /* text */
    assert_true(kinds[1] >= 1); /* checkin */
    assert_true(kinds[4] >= 1); /* leave */
    assert_true(kinds[5] >= 1); /* questionnaire */
    assert_true(kinds[6] >= 1); /* answers */
    assert_true(kinds[7] >= 1); /* notice */
    json_t *c = json_object_get(root, "contact");
    assert_true(json_is_true(json_object_get(c, "verified")));
    assert_int_equal(strlen(json_string_value(json_object_get(c, "safety_number"))), 60);
    assert_string_equal(json_string_value(json_object_get(c, "state")), "left");
    json_t *sc = json_array_get(json_object_get(root, "scores"), 0);
    assert_int_equal(jint(sc, "total"), 7);
    assert_string_equal(json_string_value(json_object_get(sc, "band")), "mild");
    assert_int_equal(json_array_size(json_object_get(root, "checkins")), 1);
    assert_int_equal(json_array_size(json_object_get(root, "notices")), 1);
    json_decref(root);

    /* --since in the future leaves the lists empty but keeps the shape. */
    root = JSON(w->therapist, T_ENV, "export", "Sam", "--format", "json", "--since", "2h");
    size_t none[9] = {0};
    validate_export(root, none);
    assert_int_equal(json_array_size(json_object_get(root, "messages")), 0);
    json_decref(root);

    run_result r;
    RUN_OK(&r, w->therapist, T_ENV, "export", "Sam");
    EXPECT_IN(r.out, "# alcove export: Sam");
    EXPECT_IN(r.out, "- Verified in person: yes");
    EXPECT_IN(r.out, "## Questionnaire scores");
    EXPECT_IN(r.out, "| GAD-7 | 7/21 | mild | 1,1,1,1,1,1,1 |");
    EXPECT_IN(r.out, "| 4 | 6 | 6.5 | tired \\| anxious | work |");
    EXPECT_IN(r.out, "Back on the 3rd");
    EXPECT_IN(r.out, "a text");
    EXPECT_IN(r.out, "left the conversation");
    run_result_free(&r);
    /* The exports are in the audit log. */
    json_t *log = JSON(w->therapist, T_ENV, "audit");
    size_t i, exports = 0;
    json_t *e;
    json_array_foreach(log, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "event")), "export_made") == 0)
            exports++;
    }
    assert_int_equal(exports, 3);
    json_decref(log);
}

/* --- audit log ------------------------------------------------------------ */

static void key_of(uint64_t i, uint8_t k[8])
{
    for (int b = 7; b >= 0; b--) {
        k[b] = (uint8_t)i;
        i >>= 8;
    }
}

/* Edit the client's store directly: flip a byte in entry `flip`, or delete
 * entry `del` (-1: neither).  Returns the old value of the changed entry. */
static void tamper(const char *home, long flip, long del, uint8_t **saved, size_t *saved_len)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/store", home);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_set_mapsize(env, 1ull << 30), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
    uint8_t k[8];
    key_of((uint64_t)(flip >= 0 ? flip : del), k);
    MDB_val key = {8, k}, val;
    assert_int_equal(mdb_get(txn, dbi, &key, &val), 0);
    if (saved != NULL) {
        *saved = malloc(val.mv_size);
        memcpy(*saved, val.mv_data, val.mv_size);
        *saved_len = val.mv_size;
    }
    if (flip >= 0) {
        uint8_t *copy = malloc(val.mv_size);
        memcpy(copy, val.mv_data, val.mv_size);
        copy[val.mv_size / 2] ^= 0x01;
        MDB_val nv = {val.mv_size, copy};
        assert_int_equal(mdb_put(txn, dbi, &key, &nv, 0), 0);
        free(copy);
    } else {
        assert_int_equal(mdb_del(txn, dbi, &key, NULL), 0);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void put_back(const char *home, long idx, const uint8_t *v, size_t n)
{
    char dir[400];
    snprintf(dir, sizeof dir, "%s/store", home);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "audit", 0, &dbi), 0);
    uint8_t k[8];
    key_of((uint64_t)idx, k);
    MDB_val key = {8, k}, val = {n, (void *)(uintptr_t)v};
    assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void expect_broken_at(world *w, long idx, const char *why)
{
    run_result r;
    RUN(&r, w->client, C_ENV, "audit", "verify");
    assert_int_equal(r.code, 1);
    char want[128];
    snprintf(want, sizeof want, "the audit log is broken at entry %ld: %s", idx, why);
    EXPECT_IN(r.err, want);
    run_result_free(&r);
    json_t *j;
    const char *const args[] = {"--json", "audit", "verify", NULL};
    alcove_run(&r, w->client, NULL, C_ENV, args);
    j = parse_json(r.out);
    assert_false(json_is_true(json_object_get(j, "intact")));
    assert_int_equal(jint(j, "broken_index"), idx);
    json_decref(j);
    run_result_free(&r);
}

static void test_audit_chain_detects_flipped_byte_and_removed_entry(void **state)
{
    world *w = *state;
    connect_sam(w, CRISIS);
    DO(w->client, C_ENV, "send", "Dr Rivera", "one");
    DO(w->therapist, T_ENV, "send", "Sam", "two");
    DO(w->client, C_ENV, "fetch");
    DO(w->client, C_ENV, "read");
    DO(w->client, C_ENV, "verify", "Dr Rivera", "--mark-verified");
    DO(w->client, C_ENV, "send", "Dr Rivera", "three");
    json_t *log = JSON(w->client, C_ENV, "audit");
    size_t n = json_array_size(log);
    assert_true(n >= 6);
    /* Events, ids, never contents or names. */
    const char *want[] = {"contact_added", "message_sent", "message_received", "message_read",
                          "contact_verified", "message_sent"};
    for (size_t i = 0; i < 6; i++) {
        json_t *e = json_array_get(log, i);
        assert_int_equal(jint(e, "index"), (json_int_t)i);
        assert_string_equal(json_string_value(json_object_get(e, "event")), want[i]);
        assert_int_equal(strlen(json_string_value(json_object_get(e, "contact_id"))), 32);
    }
    json_decref(log);
    run_result r;
    RUN_OK(&r, w->client, C_ENV, "audit", "verify");
    EXPECT_IN(r.out, "audit log intact: ");
    run_result_free(&r);

    uint8_t *saved = NULL;
    size_t saved_len = 0;
    tamper(w->client, 3, -1, &saved, &saved_len);
    expect_broken_at(w, 3, "entry is altered");
    put_back(w->client, 3, saved, saved_len);
    free(saved);
    DO(w->client, C_ENV, "audit", "verify");

    tamper(w->client, -1, 2, &saved, &saved_len);
    expect_broken_at(w, 2, "entry is missing");
    put_back(w->client, 2, saved, saved_len);
    free(saved);
    DO(w->client, C_ENV, "audit", "verify");

    /* Removing the newest entry is noticed through the head. */
    tamper(w->client, -1, (long)n - 1, &saved, &saved_len);
    expect_broken_at(w, (long)n - 1, "entry is missing");
    free(saved);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scores_match_hand_computed_totals_and_bands,
                                        world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(
            test_phq9_item9_is_flagged_and_the_client_sees_the_crisis_notice, world_setup,
            world_teardown),
        cmocka_unit_test_setup_teardown(test_custom_questionnaire_file_bad_input_and_round_trip,
                                        world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_notice_set_shown_on_send_expired_not_shown_clear,
                                        world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_receipts_round_trip_and_disabled_receipts_send_nothing,
                                        world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_export_md_and_json_with_every_content_type,
                                        world_setup, world_teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_detects_flipped_byte_and_removed_entry,
                                        world_setup, world_teardown),
    };
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
