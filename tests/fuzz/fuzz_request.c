/* Fuzz target: a decrypted transport message on the relay, i.e. what
 * relay/conn.c handle_frame() does with it: unpack a Request under
 * alcove_pb_budget_for(len), then look at the fields the way relay/dispatch.c
 * validates them (sizes first).  The budget and re-pack oracles are in
 * fuzz_pb.h; fuzz_dispatch runs the real handlers.
 *
 * Input: the plaintext of one transport message (at most 65519 bytes). */
#include "fuzz_pb.h"

#include "alcove.pb-c.h"
#include "noise.h"

static volatile size_t sink;

/* Reads every byte of a bytes field (ASan checks the pointer and length);
 * returns 1 when it has exactly n bytes, as the handlers require. */
static int field_ok(const ProtobufCBinaryData *b, size_t n)
{
    size_t acc = 0;
    for (size_t i = 0; i < b->len; i++)
        acc += b->data[i];
    sink += acc;
    return b->len == n && b->data != NULL;
}

static void validate(const Alcove__Wire__Request *r)
{
    int ok = 1;

    switch (r->cmd_case) {
    case ALCOVE__WIRE__REQUEST__CMD_HELLO:
        FUZZ_CHECK(r->hello != NULL);
        ok = r->hello->version == 1;
        break;
    case ALCOVE__WIRE__REQUEST__CMD_CREATE_MAILBOX:
        ok = field_ok(&r->create_mailbox->auth_pub, 32) &&
             field_ok(&r->create_mailbox->send_key_hash, 32);
        break;
    case ALCOVE__WIRE__REQUEST__CMD_LOGIN:
        ok = field_ok(&r->login->recv_id, 16) && field_ok(&r->login->sig, 64);
        break;
    case ALCOVE__WIRE__REQUEST__CMD_SEND:
        ok = field_ok(&r->send->send_id, 16) &&
             field_ok(&r->send->send_secret, 32);
        (void)field_ok(&r->send->blob, 0);
        break;
    case ALCOVE__WIRE__REQUEST__CMD_FETCH:
        ok = field_ok(&r->fetch->recv_id, 16);
        sink += r->fetch->after_seq + r->fetch->max;
        break;
    case ALCOVE__WIRE__REQUEST__CMD_ACK:
        ok = field_ok(&r->ack->recv_id, 16);
        sink += r->ack->up_to_seq;
        break;
    case ALCOVE__WIRE__REQUEST__CMD_SUBSCRIBE:
        ok = field_ok(&r->subscribe->recv_id, 16);
        break;
    case ALCOVE__WIRE__REQUEST__CMD_DELETE_MAILBOX:
        ok = field_ok(&r->delete_mailbox->recv_id, 16);
        break;
    case ALCOVE__WIRE__REQUEST__CMD_PING:
        FUZZ_CHECK(r->ping != NULL);
        break;
    case ALCOVE__WIRE__REQUEST__CMD__NOT_SET:
        ok = 0;
        break;
    default:
        /* protobuf-c only ever sets a case it knows. */
        FUZZ_CHECK(0);
    }
    sink += (size_t)ok + r->id;
}

static void put(const char *dir, const char *name, Alcove__Wire__Request *r)
{
    uint8_t buf[256];
    size_t n = alcove__wire__request__get_packed_size(r);
    FUZZ_CHECK(n <= sizeof buf);
    alcove__wire__request__pack(r, buf);
    fuzz_write_seed(dir, name, buf, n);
}

static void write_seeds(const char *dir)
{
    static uint8_t k32[32], id16[16], sig[64], blob[40];
    Alcove__Wire__Request r = ALCOVE__WIRE__REQUEST__INIT;
    Alcove__Wire__Hello hello = ALCOVE__WIRE__HELLO__INIT;
    Alcove__Wire__CreateMailbox cm = ALCOVE__WIRE__CREATE_MAILBOX__INIT;
    Alcove__Wire__Login login = ALCOVE__WIRE__LOGIN__INIT;
    Alcove__Wire__Send send = ALCOVE__WIRE__SEND__INIT;
    Alcove__Wire__Fetch fetch = ALCOVE__WIRE__FETCH__INIT;
    Alcove__Wire__Ack ack = ALCOVE__WIRE__ACK__INIT;
    Alcove__Wire__Subscribe sub = ALCOVE__WIRE__SUBSCRIBE__INIT;
    Alcove__Wire__DeleteMailbox del = ALCOVE__WIRE__DELETE_MAILBOX__INIT;
    Alcove__Wire__Ping ping = ALCOVE__WIRE__PING__INIT;
    ProtobufCBinaryData b32 = {32, k32}, b16 = {16, id16}, b64 = {64, sig};

    memset(k32, 0x5a, sizeof k32);
    memset(id16, 0x10, sizeof id16);
    memset(sig, 0x77, sizeof sig);
    memset(blob, 0xb1, sizeof blob);
    r.id = 1;
    hello.version = 1;
    r.cmd_case = ALCOVE__WIRE__REQUEST__CMD_HELLO;
    r.hello = &hello;
    put(dir, "hello", &r);
    r.id = 2;
    cm.auth_pub = b32;
    cm.send_key_hash = b32;
    r.cmd_case = ALCOVE__WIRE__REQUEST__CMD_CREATE_MAILBOX;
    r.create_mailbox = &cm;
    put(dir, "create", &r);
    r.id = 3;
    login.recv_id = b16;
    login.sig = b64;
    r.cmd_case = ALCOVE__WIRE__REQUEST__CMD_LOGIN;
    r.login = &login;
    put(dir, "login", &r);
    r.id = 4;
    send.send_id = b16;
    send.send_secret = b32;
    send.blob.data = blob;
    send.blob.len = sizeof blob;
    r.cmd_case = ALCOVE__WIRE__REQUEST__CMD_SEND;
    r.send = &send;
    put(dir, "send", &r);
    r.id = 5;
    fetch.recv_id = b16;
    fetch.after_seq = 7;
    fetch.max = 100;
    r.cmd_case = ALCOVE__WIRE__REQUEST__CMD_FETCH;
    r.fetch = &fetch;
    put(dir, "fetch", &r);
    r.id = 6;
    ack.recv_id = b16;
    ack.up_to_seq = 9;
    r.cmd_case = ALCOVE__WIRE__REQUEST__CMD_ACK;
    r.ack = &ack;
    put(dir, "ack", &r);
    r.id = 7;
    sub.recv_id = b16;
    r.cmd_case = ALCOVE__WIRE__REQUEST__CMD_SUBSCRIBE;
    r.subscribe = &sub;
    put(dir, "subscribe", &r);
    r.id = 8;
    del.recv_id = b16;
    r.cmd_case = ALCOVE__WIRE__REQUEST__CMD_DELETE_MAILBOX;
    r.delete_mailbox = &del;
    put(dir, "delete", &r);
    r.id = 9;
    r.cmd_case = ALCOVE__WIRE__REQUEST__CMD_PING;
    r.ping = &ping;
    put(dir, "ping", &r);
    /* 1000 empty unknown-field groups after a Ping: must stay in budget or
     * fail cleanly. */
    {
        uint8_t amp[2 + 2 * 1000 + 4];
        size_t n = 0;
        amp[n++] = 0x08; /* id = 1 */
        amp[n++] = 0x01;
        for (int i = 0; i < 1000; i++) {
            amp[n++] = 0x58; /* field 11, varint */
            amp[n++] = 0x00;
        }
        amp[n++] = 0x52; /* field 10 (ping), length 0 */
        amp[n++] = 0x00;
        fuzz_write_seed(dir, "unknown-fields", amp, n);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_sodium_init("fuzz_request");
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

    if (size > ALCOVE_NOISE_PLAINTEXT_MAX)
        return -1; /* cannot arrive in one transport message */
    m = fuzz_pb_unpack(&alcove__wire__request__descriptor, data, size, &b);
    if (m != NULL)
        validate((const Alcove__Wire__Request *)m);
    fuzz_pb_free(m, &b);
    return 0;
}
