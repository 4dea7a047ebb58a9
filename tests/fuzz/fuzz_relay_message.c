/* Fuzz target: a decrypted transport message on the client, as
 * client/link.c unpack_relay_message() handles it: unpack the RelayMessage
 * under alcove_pb_budget_for(len) (refusing amplification), free it, unpack
 * it again with the default allocator (what callers free), then read it the
 * way client/net.c and cmd_fetch.c do.  fuzz_link drives the real link code
 * over a socket; this target is the fast, direct version.
 *
 * Input: the plaintext of one transport message (at most 65519 bytes). */
#include "fuzz_pb.h"

#include "alcove.pb-c.h"
#include "noise.h"

static volatile size_t sink;

static void touch(const ProtobufCBinaryData *b)
{
    size_t acc = 0;
    for (size_t i = 0; i < b->len; i++)
        acc += b->data[i];
    sink += acc;
}

static void stored(const Alcove__Wire__Stored *s)
{
    FUZZ_CHECK(s != NULL);
    sink += s->seq + s->received_at;
    touch(&s->blob);
}

static void read_like_the_client(const Alcove__Wire__RelayMessage *m)
{
    switch (m->kind_case) {
    case ALCOVE__WIRE__RELAY_MESSAGE__KIND_REPLY: {
        const Alcove__Wire__Reply *r = m->reply;
        FUZZ_CHECK(r != NULL);
        FUZZ_CHECK(r->detail != NULL); /* proto3 string: "" when absent */
        sink += strlen(r->detail) + (size_t)r->status + r->id;
        switch (r->result_case) {
        case ALCOVE__WIRE__REPLY__RESULT_HELLO:
            FUZZ_CHECK(r->hello != NULL);
            sink += r->hello->version + r->hello->max_blob_bytes +
                    r->hello->message_ttl_ms + r->hello->max_bytes_per_mailbox;
            break;
        case ALCOVE__WIRE__REPLY__RESULT_MAILBOX:
            FUZZ_CHECK(r->mailbox != NULL);
            touch(&r->mailbox->recv_id);
            touch(&r->mailbox->send_id);
            break;
        case ALCOVE__WIRE__REPLY__RESULT_FETCH:
            FUZZ_CHECK(r->fetch != NULL);
            FUZZ_CHECK(r->fetch->n_messages == 0 || r->fetch->messages != NULL);
            for (size_t i = 0; i < r->fetch->n_messages; i++)
                stored(r->fetch->messages[i]);
            break;
        default:
            FUZZ_CHECK(r->result_case == ALCOVE__WIRE__REPLY__RESULT__NOT_SET);
        }
        break;
    }
    case ALCOVE__WIRE__RELAY_MESSAGE__KIND_PUSH:
        FUZZ_CHECK(m->push != NULL);
        touch(&m->push->recv_id);
        if (m->push->message != NULL)
            stored(m->push->message);
        break;
    default:
        FUZZ_CHECK(m->kind_case == ALCOVE__WIRE__RELAY_MESSAGE__KIND__NOT_SET);
    }
}

static void put(const char *dir, const char *name, const Alcove__Wire__RelayMessage *m)
{
    uint8_t buf[512];
    size_t n = alcove__wire__relay_message__get_packed_size(m);
    FUZZ_CHECK(n <= sizeof buf);
    alcove__wire__relay_message__pack(m, buf);
    fuzz_write_seed(dir, name, buf, n);
}

static void write_seeds(const char *dir)
{
    static uint8_t id16[16], blob[64];
    Alcove__Wire__RelayMessage m = ALCOVE__WIRE__RELAY_MESSAGE__INIT;
    Alcove__Wire__Reply r;
    Alcove__Wire__HelloResult hr = ALCOVE__WIRE__HELLO_RESULT__INIT;
    Alcove__Wire__MailboxCreated mc = ALCOVE__WIRE__MAILBOX_CREATED__INIT;
    Alcove__Wire__FetchResult fr = ALCOVE__WIRE__FETCH_RESULT__INIT;
    Alcove__Wire__Stored s1 = ALCOVE__WIRE__STORED__INIT, s2 = ALCOVE__WIRE__STORED__INIT;
    Alcove__Wire__Stored *list[2] = {&s1, &s2};
    Alcove__Wire__Push p = ALCOVE__WIRE__PUSH__INIT;
    char detail[] = "mailbox is full (messages)";

    memset(id16, 0x42, sizeof id16);
    memset(blob, 0xb0, sizeof blob);
    alcove__wire__reply__init(&r);
    m.kind_case = ALCOVE__WIRE__RELAY_MESSAGE__KIND_REPLY;
    m.reply = &r;
    r.id = 1;
    hr.version = 1;
    hr.max_blob_bytes = 64000;
    hr.message_ttl_ms = 1814400000;
    hr.max_messages_per_mailbox = 10000;
    hr.max_bytes_per_mailbox = 64u << 20;
    r.result_case = ALCOVE__WIRE__REPLY__RESULT_HELLO;
    r.hello = &hr;
    put(dir, "hello-result", &m);
    r.id = 2;
    mc.recv_id.data = mc.send_id.data = id16;
    mc.recv_id.len = mc.send_id.len = sizeof id16;
    r.result_case = ALCOVE__WIRE__REPLY__RESULT_MAILBOX;
    r.mailbox = &mc;
    put(dir, "mailbox-created", &m);
    r.id = 3;
    s1.seq = 1;
    s1.received_at = 1700000000000ull;
    s1.blob.data = blob;
    s1.blob.len = sizeof blob;
    s2 = s1;
    s2.seq = 2;
    fr.n_messages = 2;
    fr.messages = list;
    fr.more = 1;
    r.result_case = ALCOVE__WIRE__REPLY__RESULT_FETCH;
    r.fetch = &fr;
    put(dir, "fetch-result", &m);
    r.id = 4;
    r.status = ALCOVE__WIRE__STATUS__QUOTA_EXCEEDED;
    r.detail = detail;
    r.result_case = ALCOVE__WIRE__REPLY__RESULT__NOT_SET;
    put(dir, "quota", &m);
    m.kind_case = ALCOVE__WIRE__RELAY_MESSAGE__KIND_PUSH;
    m.push = &p;
    p.recv_id.data = id16;
    p.recv_id.len = sizeof id16;
    p.message = &s1;
    put(dir, "push", &m);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_sodium_init("fuzz_relay_message");
    if (fuzz_seed_dir() != NULL) {
        write_seeds(fuzz_seed_dir());
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    alcove_pb_budget b;
    ProtobufCMessage *m;
    Alcove__Wire__RelayMessage *again;

    if (size > ALCOVE_NOISE_PLAINTEXT_MAX)
        return -1;
    m = fuzz_pb_unpack(&alcove__wire__relay_message__descriptor, data, size, &b);
    if (m == NULL)
        return 0;
    fuzz_pb_free(m, &b);
    /* What link.c does next: it must not fail now that the budgeted
     * unpack succeeded (link.c reports ENOMEM if it does). */
    again = alcove__wire__relay_message__unpack(NULL, size, data);
    FUZZ_CHECK(again != NULL);
    read_like_the_client(again);
    alcove__wire__relay_message__free_unpacked(again, NULL);
    return 0;
}
