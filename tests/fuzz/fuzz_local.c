/* Fuzz target: the client's records and what it shows of them
 * (client/render.h, client/inbox.h).  Message bodies come from the other
 * side of a conversation: a hostile peer controls every string of a
 * Content (names, texts, notes, tags, questionnaire wording), so what the
 * client prints must never carry terminal control sequences.  The records
 * themselves (alcove.local.Message, Contact) come from the local store,
 * sealed, but a damaged store must still not crash `alcove read`.
 *
 * Input: a kind byte, then
 *   kind 0  a serialized alcove.e2e.Content as a peer sends it: checked with
 *           content_invalid() exactly as inbox.c does, stored in a Message
 *           (with the problem when invalid) and rendered;
 *   kind 1  a serialized alcove.local.Message record, unpacked as cmd_show
 *           does and rendered;
 *   kind 2  a serialized alcove.local.Contact record: unpacked, its
 *           strings rendered as `alcove contacts` does, then wiped and freed.
 * Rendering is both render_message() (terminal) and render_message_json()
 * dumped as `--json` output does.  Oracles: the terminal text is valid UTF-8
 * without C0 controls other than newline, without DEL, C1 controls or
 * bidirectional overrides; the JSON has no raw control bytes but newlines,
 * is valid UTF-8 without C1 or bidi controls, and parses back. */
#include "fuzz_common.h"

#include <jansson.h>

#include "app.h"
#include "inbox.h"
#include "render.h"

static volatile size_t sink;

static size_t utf8_len(const unsigned char *p, size_t n, uint32_t *cp)
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
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* 1 when s[0..n) is safe to print on a terminal (or inside JSON when
 * json is set: there jansson escapes what it must). */
static int safe_text(const char *s, size_t n, int json)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_len(p + i, n - i, &cp);
        if (len == 0) {
            fprintf(stderr, "fuzz: invalid UTF-8 at %zu\n", i);
            return 0;
        }
        /* DEL is plain data in JSON (render.h promises nothing for it and
         * it starts no escape sequence); on a terminal it prints as '?'. */
        if ((cp < 0x20 && cp != '\n' && !(cp == '\t' && !json)) || (cp == 0x7f && !json) ||
            (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
            (cp >= 0x2066 && cp <= 0x2069)) {
            fprintf(stderr, "fuzz: control U+%04X at %zu\n", (unsigned)cp, i);
            return 0;
        }
        i += len;
    }
    return 1;
}

static void show(const Alcove__Local__Contact *c, const Alcove__Local__Message *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    json_t *j, *back;
    json_error_t err;

    FUZZ_CHECK(f != NULL);
    render_message(f, c, m);
    FUZZ_CHECK(fclose(f) == 0);
    FUZZ_CHECK(safe_text(buf, len, 0));
    free(buf);

    j = render_message_json(c, m);
    FUZZ_CHECK(j != NULL);
    buf = NULL;
    len = 0;
    f = open_memstream(&buf, &len);
    FUZZ_CHECK(f != NULL);
    FUZZ_CHECK(render_json_dump(f, j) == 0);
    FUZZ_CHECK(fclose(f) == 0);
    json_decref(j);
    FUZZ_CHECK(safe_text(buf, len, 1));
    back = json_loadb(buf, len, 0, &err);
    FUZZ_CHECK(back != NULL);
    json_decref(back);
    free(buf);
}

static void peer_content(const uint8_t *p, size_t n, Alcove__Local__Contact *c)
{
    Alcove__E2e__Content *ct = alcove__e2e__content__unpack(NULL, n, p);
    Alcove__Local__Message m = ALCOVE__LOCAL__MESSAGE__INIT;
    const char *bad;

    if (ct == NULL)
        return; /* inbox.c: "authentic message with corrupt content" */
    bad = content_invalid(ct);
    /* What inbox.c take_message() stores. */
    m.has_msg_id = ct->has_msg_id;
    m.msg_id = ct->msg_id;
    m.has_sent_at = 1;
    m.sent_at = ct->sent_at;
    m.has_received_at = 1;
    m.received_at = 1700000000000ull;
    m.has_content = 1;
    m.content.data = (uint8_t *)(uintptr_t)p;
    m.content.len = n;
    m.has_read = 1;
    m.read = bad != NULL;
    m.problem = (char *)(uintptr_t)bad;
    show(c, &m);
    if (bad != NULL) {
        /* The body of an invalid message must never be shown as valid, but
         * `read --all` after a bug fix might: render it too. */
        m.problem = NULL;
        show(c, &m);
    }
    alcove__e2e__content__free_unpacked(ct, NULL);
}

static void local_message(const uint8_t *p, size_t n, Alcove__Local__Contact *c)
{
    Alcove__Local__Message *m =
        alcove__local__message__unpack(&render_wipe_allocator, n, p);
    if (m == NULL)
        return;
    show(c, m);
    c->label = (char *)(uintptr_t)(m->problem != NULL ? m->problem : "Sam");
    show(c, m); /* a label with whatever bytes */
    render_message_free(m);
}

static void local_contact(const uint8_t *p, size_t n)
{
    Alcove__Local__Contact *c = alcove__local__contact__unpack(NULL, n, p);
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    if (c == NULL)
        return;
    f = open_memstream(&buf, &len);
    FUZZ_CHECK(f != NULL);
    render_cell(f, c->label, 16);
    render_cell(f, c->their_name, 24);
    render_str(f, c->notice, 60);
    fputc('\n', f);
    render_block(f, c->notice, "  ");
    fputs(contact_state_name(c->state), f);
    FUZZ_CHECK(fclose(f) == 0);
    FUZZ_CHECK(safe_text(buf, len, 0));
    sink += render_width(c->their_name);
    free(buf);
    contact_free(c);
}

static void put(const char *dir, const char *name, uint8_t kind, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(n + 1);
    FUZZ_CHECK(b != NULL);
    b[0] = kind;
    protobuf_c_message_pack(m, b + 1);
    fuzz_write_seed(dir, name, b, n + 1);
    free(b);
}

static void write_seeds(const char *dir)
{
    static uint8_t id[16] = {1, 2, 3};
    Alcove__E2e__Content c = ALCOVE__E2E__CONTENT__INIT;
    Alcove__E2e__Text t = ALCOVE__E2E__TEXT__INIT;
    Alcove__E2e__CheckIn ci = ALCOVE__E2E__CHECK_IN__INIT;
    Alcove__E2e__Questionnaire q = ALCOVE__E2E__QUESTIONNAIRE__INIT;
    Alcove__E2e__Item it = ALCOVE__E2E__ITEM__INIT, *items[1] = {&it};
    Alcove__E2e__Notice no = ALCOVE__E2E__NOTICE__INIT;
    Alcove__E2e__Answers an = ALCOVE__E2E__ANSWERS__INIT;
    Alcove__E2e__Intro intro = ALCOVE__E2E__INTRO__INIT;
    char *tags[2] = {(char *)(uintptr_t)"work", (char *)(uintptr_t)"sl\x1b[31m" "eep"};
    /* Seeds carry bidi overrides on purpose: rendering must neutralise them. */
    char *labels[2] = {(char *)(uintptr_t)"not at all",
                       (char *)(uintptr_t)"\xe2\x80\xae" "evil"}; /* NOLINT(misc-misleading-bidirectional) */
    uint32_t values[1] = {2};
    static uint8_t buf[1024];

    c.has_msg_id = 1;
    c.msg_id.data = id;
    c.msg_id.len = sizeof id;
    c.has_sent_at = 1;
    c.sent_at = 1700000000000ull;
    c.body_case = ALCOVE__E2E__CONTENT__BODY_TEXT;
    c.text = &t;
    t.body = (char *)(uintptr_t)"hello\n\x1b]0;owned\x07 there\r\n\xc2\x9b" "2J";
    put(dir, "text-escapes", 0, &c.base);
    c.body_case = ALCOVE__E2E__CONTENT__BODY_CHECKIN;
    c.checkin = &ci;
    ci.has_mood = ci.has_anxiety = ci.has_sleep_hours = 1;
    ci.mood = 6;
    ci.anxiety = 3;
    ci.sleep_hours = 7.5f;
    ci.note = (char *)(uintptr_t)"better\tweek";
    ci.n_tags = 2;
    ci.tags = tags;
    put(dir, "checkin", 0, &c.base);
    c.body_case = ALCOVE__E2E__CONTENT__BODY_QUESTIONNAIRE;
    c.questionnaire = &q;
    q.instrument = (char *)(uintptr_t)"PHQ-9";
    q.title = (char *)(uintptr_t)"Over the last two weeks";
    q.n_items = 1;
    q.items = items;
    it.text = (char *)(uintptr_t)"Little interest";
    it.has_min = it.has_max = 1;
    it.min = 0;
    it.max = 3;
    it.n_labels = 2;
    it.labels = labels;
    put(dir, "questionnaire", 0, &c.base);
    c.body_case = ALCOVE__E2E__CONTENT__BODY_NOTICE;
    c.notice = &no;
    no.text = (char *)(uintptr_t)"Away until Monday.\nCrisis line: 988";
    no.has_until = 1;
    no.until = 1700600000000ull;
    put(dir, "notice", 0, &c.base);
    c.body_case = ALCOVE__E2E__CONTENT__BODY_ANSWERS;
    c.answers = &an;
    an.has_questionnaire_id = 1;
    an.questionnaire_id.data = id;
    an.questionnaire_id.len = sizeof id;
    an.n_values = 1;
    an.values = values;
    put(dir, "answers", 0, &c.base);
    c.body_case = ALCOVE__E2E__CONTENT__BODY_INTRO;
    c.intro = &intro;
    intro.display_name = (char *)(uintptr_t)"Sam\xe2\x81\xa6"; /* NOLINT(misc-misleading-bidirectional): on purpose */
    put(dir, "intro", 0, &c.base);

    /* A local Message record holding the text content, and a Contact. */
    {
        Alcove__Local__Message m = ALCOVE__LOCAL__MESSAGE__INIT;
        Alcove__Local__Contact ct = ALCOVE__LOCAL__CONTACT__INIT;
        c.body_case = ALCOVE__E2E__CONTENT__BODY_TEXT;
        c.text = &t;
        size_t n = alcove__e2e__content__pack(&c, buf);
        m.has_content = 1;
        m.content.data = buf;
        m.content.len = n;
        m.has_outgoing = 1;
        m.outgoing = 1;
        m.has_status = 1;
        m.status = ALCOVE__LOCAL__MESSAGE__STATUS__QUEUED;
        put(dir, "message", 1, &m.base);
        ct.label = (char *)(uintptr_t)"Sam";
        ct.their_name = (char *)(uintptr_t)"S\xc3\xa4m \xf0\x9f\x98\x80" "\x1b[2J";
        ct.notice = (char *)(uintptr_t)"line one\nline two";
        ct.has_state = 1;
        ct.state = ALCOVE__LOCAL__CONTACT__STATE__ACTIVE;
        put(dir, "contact", 2, &ct.base);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_sodium_init("fuzz_local");
    setenv("TZ", "UTC", 1);
    render_json_secure();
    if (fuzz_seed_dir() != NULL) {
        write_seeds(fuzz_seed_dir());
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in in = {data, size};
    uint8_t kind = fuzz_u8(&in);
    Alcove__Local__Contact c = ALCOVE__LOCAL__CONTACT__INIT;

    if (in.n > 65536)
        return -1;
    c.label = (char *)(uintptr_t)"Sam";
    switch (kind % 3) {
    case 0: peer_content(in.p, in.n, &c); break;
    case 1: local_message(in.p, in.n, &c); break;
    default: local_contact(in.p, in.n); break;
    }
    return 0;
}
