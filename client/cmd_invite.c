/* alcove invite / alcove accept */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "envelope.h"
#include "audit.h"
#include "err.h"
#include "invite.h"
#include "net.h"
#include "outbox.h"
#include "render.h"

/* "7d", "48h", "30m", "90s" -> ms.  0 on error. */
static uint64_t parse_duration(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || v == 0)
        return 0;
    uint64_t mul = strcmp(end, "d") == 0   ? 86400000ull
                   : strcmp(end, "h") == 0 ? 3600000ull
                   : strcmp(end, "m") == 0 ? 60000ull
                   : strcmp(end, "s") == 0 ? 1000ull
                                           : 0;
    if (mul == 0 || v > UINT64_MAX / mul)
        return 0;
    return v * mul;
}

/* Is label used by another pending or active contact? */
static int label_taken(cstore_txn *t, const char *label)
{
    Alcove__Local__Contact **v = NULL;
    size_t n = 0;
    int taken = 0;
    if (contact_list(t, &v, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (v[i]->state != ALCOVE__LOCAL__CONTACT__STATE__LEFT && v[i]->label != NULL &&
            strcasecmp(v[i]->label, label) == 0)
            taken = 1;
    contact_list_free(v, n);
    return taken;
}

static int check_label(const char *label)
{
    size_t n = strlen(label);
    if (n == 0 || n > 64)
        return usage_error("a contact label must be 1-64 characters");
    for (const unsigned char *p = (const unsigned char *)label; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return usage_error("a contact label cannot hold control characters");
    return 0;
}

int cmd_invite(app *a, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"notice", required_argument, NULL, 'N'},
        {"expires", required_argument, NULL, 'e'},
        {NULL, 0, NULL, 0},
    };
    const char *label = NULL, *notice = "";
    int notice_given = 0;
    uint64_t life = ALCOVE_INVITE_LIFETIME_MS;
    int c, rc = EXIT_FAIL, e;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': label = optarg; break;
        case 'N': notice = optarg; notice_given = 1; break;
        case 'e':
            if ((life = parse_duration(optarg)) == 0)
                return usage_error("--expires wants a duration like 7d, 48h or 30m, not '%s'", optarg);
            break;
        default: return usage_error("unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (label == NULL)
        return usage_error("--name LABEL is required: how you will see whoever accepts");
    if (check_label(label) != 0)
        return EXIT_USAGE;
    if (strlen(notice) > ALCOVE_INVITE_NOTICE_MAX)
        return usage_error("--notice is too long (at most %u bytes)", ALCOVE_INVITE_NOTICE_MAX);
    if (app_open(a) != 0)
        return EXIT_FAIL;
    if (!notice_given && a->meta->my_notice != NULL && *a->meta->my_notice &&
        !(a->meta->my_notice_until && a->meta->my_notice_until <= a->now()))
        notice = a->meta->my_notice; /* 'alcove notice set' */

    cstore_txn *t = NULL;
    net n;
    memset(&n, 0, sizeof n);
    alcove_invite *inv = sodium_malloc(sizeof *inv);
    uint8_t *auth_sk = sodium_malloc(64), *prekey_sk = sodium_malloc(32);
    char *code = malloc(ALCOVE_INVITE_TEXT_MAX);
    uint8_t auth_pk[32], recv_id[16], cid[CONTACT_ID_BYTES];
    if (inv == NULL || auth_sk == NULL || prekey_sk == NULL || code == NULL) {
        app_error("out of memory");
        goto out;
    }
    memset(inv, 0, sizeof *inv);
    if ((e = cstore_begin(a->store, 0, &t)) != 0 || (e = label_taken(t, label)) != 0) {
        if (e == 1)
            app_error("you already have a contact named '%s'", label);
        else
            app_error("cannot read contacts: %s", alcove_strerror(e));
        goto out;
    }
    cstore_abort(t);
    t = NULL;
    if (net_open(&n, a->meta->relay_address) != 0)
        goto out;
    crypto_sign_keypair(auth_pk, auth_sk);
    randombytes_buf(inv->send_secret, sizeof inv->send_secret);
    if ((e = net_create(&n, auth_pk, inv->send_secret, recv_id, inv->send_id)) != 0) {
        if (e > 0)
            app_error("the relay refused to create a mailbox: %s", net_status_text(e));
        goto out;
    }
    crypto_box_keypair(inv->prekey_pub, prekey_sk);
    randombytes_buf(inv->prekey_id, sizeof inv->prekey_id);
    snprintf(inv->relay_address, sizeof inv->relay_address, "%s", a->meta->relay_address);
    snprintf(inv->display_name, sizeof inv->display_name, "%s",
             a->meta->display_name ? a->meta->display_name : "");
    snprintf(inv->notice, sizeof inv->notice, "%s", notice);
    inv->expires_at = a->now() + life;
    if ((e = alcove_invite_encode(a->id, inv, code, ALCOVE_INVITE_TEXT_MAX)) != 0) {
        app_error("cannot make the invite: %s", alcove_strerror(e));
        goto out;
    }

    /* Save the pending contact before showing the code. */
    randombytes_buf(cid, sizeof cid);
    Alcove__Local__Inbox ib = ALCOVE__LOCAL__INBOX__INIT;
    ib.relay_address = a->meta->relay_address;
    ib.has_recv_id = ib.has_send_id = ib.has_auth_sk = ib.has_send_secret = 1;
    ib.recv_id = (ProtobufCBinaryData){16, recv_id};
    ib.send_id = (ProtobufCBinaryData){16, inv->send_id};
    ib.auth_sk = (ProtobufCBinaryData){64, auth_sk};
    ib.send_secret = (ProtobufCBinaryData){32, inv->send_secret};
    Alcove__Local__Contact ct = ALCOVE__LOCAL__CONTACT__INIT;
    ct.has_id = 1;
    ct.id = (ProtobufCBinaryData){CONTACT_ID_BYTES, cid};
    ct.label = (char *)(uintptr_t)label;
    ct.has_state = 1;
    ct.state = ALCOVE__LOCAL__CONTACT__STATE__PENDING;
    ct.has_inviter = ct.inviter = 1;
    ct.inbox = &ib;
    ct.has_prekey_sk = ct.has_prekey_pub = ct.has_prekey_id = 1;
    ct.prekey_sk = (ProtobufCBinaryData){32, prekey_sk};
    ct.prekey_pub = (ProtobufCBinaryData){32, inv->prekey_pub};
    ct.prekey_id = (ProtobufCBinaryData){8, inv->prekey_id};
    ct.has_invite_expires_at = 1;
    ct.invite_expires_at = inv->expires_at;
    ct.has_created_at = 1;
    ct.created_at = a->now();
    if ((e = cstore_begin(a->store, 1, &t)) != 0 || (e = contact_save(t, &ct)) != 0 ||
        (e = audit_append(t, a->now(), AUDIT_CONTACT_INVITED, cid)) != 0 ||
        (e = cstore_commit(t)) != 0) {
        t = NULL;
        app_error("cannot store the invite: %s", alcove_strerror(e));
        goto out;
    }
    t = NULL;

    if (a->json) {
        json_t *j = json_pack("{s:s, s:s, s:I}", "contact", label, "code", code, "expires_at",
                              (json_int_t)inv->expires_at);
        if (j == NULL || render_json_dump(stdout, j) != 0) {
            json_decref(j);
            app_error("cannot print JSON");
            goto out;
        }
        json_decref(j);
    } else {
        time_t exp = (time_t)(inv->expires_at / 1000);
        char when[64];
        struct tm tm;
        localtime_r(&exp, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
        printf("Invite for %s (works once, until %s):\n\n%s\n\n", label, when, code);
        if (render_qr(stdout, code) != 0)
            app_warn("could not draw the QR code; share the text code");
        printf("\nGive this code to %s in person. It is a secret: anyone holding it can\n"
               "introduce themselves as %s. Then run 'alcove fetch' to see their reply.\n",
               label, label);
    }
    rc = EXIT_OK;
out:
    cstore_abort(t);
    net_close(&n);
    if (inv != NULL)
        sodium_free(inv);
    if (auth_sk != NULL)
        sodium_free(auth_sk);
    if (prekey_sk != NULL)
        sodium_free(prekey_sk);
    free(code);
    return rc;
}

static void explain_invite_error(int e, const alcove_invite *inv)
{
    switch (e) {
    case ALCOVE_ENOTINVITE:
        app_error("this is not an alcove invite (it should start with 'alcove:')");
        break;
    case ALCOVE_EMISTYPED:
        app_error("invite code is mistyped (checksum mismatch)");
        app_hint("check the code character by character, or ask for a new one");
        break;
    case ALCOVE_EMALFORMED:
        app_error("invite code is malformed");
        app_hint("ask for a new code");
        break;
    case ALCOVE_EBADSIG:
        app_error("invite code has a bad signature: it was altered");
        app_hint("do not use it; ask your therapist for a new code in person");
        break;
    case ALCOVE_EVERSION:
        app_error("invite code has an unsupported version");
        app_hint("update alcove, or ask for a new code");
        break;
    case ALCOVE_EEXPIRED:
        app_error("invite code from %s has expired", inv->display_name[0] ? inv->display_name : "your therapist");
        app_hint("ask for a new code");
        break;
    case ALCOVE_ETOOBIG:
        app_error("invite code is far too long to be an alcove invite");
        break;
    default:
        app_error("cannot read the invite code: %s", alcove_strerror(e));
    }
}

/* Same outbox send_id already accepted? */
static int already_accepted(cstore_txn *t, const uint8_t send_id[16])
{
    Alcove__Local__Contact **v = NULL;
    size_t n = 0;
    int found = 0;
    if (contact_list(t, &v, &n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (v[i]->outbox != NULL && v[i]->outbox->send_id.len == 16 &&
            memcmp(v[i]->outbox->send_id.data, send_id, 16) == 0 &&
            v[i]->state != ALCOVE__LOCAL__CONTACT__STATE__LEFT)
            found = 1;
    contact_list_free(v, n);
    return found;
}

int cmd_accept(app *a, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    const char *label = NULL;
    int c, rc = EXIT_FAIL, e;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'n')
            label = optarg;
        else
            return usage_error("unknown option or missing value: %s", argv[optind - 1]);
    }
    if (argc - optind < 1)
        return usage_error("accept needs the invite CODE");
    /* A code wrapped over several arguments is joined (white space is
     * ignored inside codes anyway). */
    char *code = calloc(1, ALCOVE_INVITE_TEXT_MAX + 1);
    if (code == NULL)
        return EXIT_FAIL;
    size_t used = 0;
    for (int i = optind; i < argc; i++) {
        size_t l = strlen(argv[i]);
        if (used + l + 1 > ALCOVE_INVITE_TEXT_MAX) {
            free(code);
            app_error("invite code is far too long to be an alcove invite");
            return EXIT_FAIL;
        }
        memcpy(code + used, argv[i], l);
        used += l;
        code[used++] = ' ';
    }
    if (label != NULL && check_label(label) != 0) {
        free(code);
        return EXIT_USAGE;
    }

    alcove_invite *inv = sodium_malloc(sizeof *inv);
    uint8_t *auth_sk = sodium_malloc(64);
    uint8_t *content = NULL, *blob = malloc(ALCOVE_ENVELOPE_MAX);
    alcove_ratchet *session = NULL;
    cstore_txn *t = NULL;
    netpool np;
    memset(&np, 0, sizeof np);
    uint8_t auth_pk[32], secret[32], recv_id[16], send_id[16], cid[CONTACT_ID_BYTES], msg_id[16];
    uint8_t key[24];
    size_t clen = 0, blen = 0;
    if (inv == NULL || auth_sk == NULL || blob == NULL) {
        app_error("out of memory");
        goto out;
    }
    e = alcove_invite_decode(code, used, app_wall_ms(), inv);
    if (e != 0) {
        explain_invite_error(e, inv);
        goto out;
    }
    if (app_open(a) != 0)
        goto out;
    if (label == NULL)
        label = inv->display_name[0] ? inv->display_name : "therapist";
    if ((e = cstore_begin(a->store, 0, &t)) != 0) {
        app_error("cannot read the local store: %s", alcove_strerror(e));
        goto out;
    }
    if ((e = already_accepted(t, inv->send_id)) != 0 || (e = label_taken(t, label)) != 0) {
        if (e == 1 && already_accepted(t, inv->send_id) == 1)
            app_error("you already accepted this invite");
        else if (e == 1) {
            app_error("you already have a contact named '%s'", label);
            app_hint("choose another with --name LABEL");
        } else
            app_error("cannot read contacts: %s", alcove_strerror(e));
        goto out;
    }
    cstore_abort(t);
    t = NULL;

    if (!a->json) {
        printf("Invite from %s.\n", inv->display_name[0] ? inv->display_name : "(no name given)");
        if (inv->notice[0])
            printf("Their notice:\n  %s\n", inv->notice);
    }

    /* My reply mailbox lives on my home relay. */
    net *home = netpool_get(&np, a->meta->relay_address);
    if (home == NULL)
        goto out;
    crypto_sign_keypair(auth_pk, auth_sk);
    randombytes_buf(secret, sizeof secret);
    if ((e = net_create(home, auth_pk, secret, recv_id, send_id)) != 0) {
        if (e > 0)
            app_error("your relay refused to create a mailbox: %s", net_status_text(e));
        goto out;
    }
    Alcove__E2e__Intro intro = ALCOVE__E2E__INTRO__INIT;
    intro.reply_address = a->meta->relay_address;
    intro.has_send_id = intro.has_send_secret = 1;
    intro.send_id = (ProtobufCBinaryData){16, send_id};
    intro.send_secret = (ProtobufCBinaryData){32, secret};
    static char no_name[] = "";
    intro.display_name = a->meta->display_name ? a->meta->display_name : no_name;
    Alcove__E2e__Content ct = ALCOVE__E2E__CONTENT__INIT;
    randombytes_buf(msg_id, sizeof msg_id);
    ct.has_msg_id = 1;
    ct.msg_id = (ProtobufCBinaryData){16, msg_id};
    ct.has_sent_at = 1;
    ct.sent_at = a->now();
    ct.body_case = ALCOVE__E2E__CONTENT__BODY_INTRO;
    ct.intro = &intro;
    if ((content = pb_pack(&ct.base, &clen)) == NULL) {
        app_error("out of memory");
        goto out;
    }
    if ((e = alcove_intro_seal(a->id, inv, content, clen, blob, ALCOVE_ENVELOPE_MAX, &blen,
                               &session)) != 0) {
        app_error("cannot seal the introduction: %s", alcove_strerror(e));
        goto out;
    }

    /* Store the contact, session and queued intro in one transaction. */
    randombytes_buf(cid, sizeof cid);
    Alcove__Local__Inbox ib = ALCOVE__LOCAL__INBOX__INIT;
    ib.relay_address = a->meta->relay_address;
    ib.has_recv_id = ib.has_send_id = ib.has_auth_sk = ib.has_send_secret = 1;
    ib.recv_id = (ProtobufCBinaryData){16, recv_id};
    ib.send_id = (ProtobufCBinaryData){16, send_id};
    ib.auth_sk = (ProtobufCBinaryData){64, auth_sk};
    ib.send_secret = (ProtobufCBinaryData){32, secret};
    Alcove__Local__Outbox ob = ALCOVE__LOCAL__OUTBOX__INIT;
    ob.relay_address = inv->relay_address;
    ob.has_send_id = ob.has_send_secret = 1;
    ob.send_id = (ProtobufCBinaryData){16, inv->send_id};
    ob.send_secret = (ProtobufCBinaryData){32, inv->send_secret};
    Alcove__Local__Contact cc = ALCOVE__LOCAL__CONTACT__INIT;
    cc.has_id = 1;
    cc.id = (ProtobufCBinaryData){CONTACT_ID_BYTES, cid};
    cc.label = (char *)(uintptr_t)label;
    cc.their_name = inv->display_name;
    cc.has_sig_pub = cc.has_dh_pub = 1;
    cc.sig_pub = (ProtobufCBinaryData){32, inv->sig_pub};
    cc.dh_pub = (ProtobufCBinaryData){32, inv->dh_pub};
    cc.has_state = 1;
    cc.state = ALCOVE__LOCAL__CONTACT__STATE__ACTIVE;
    cc.inbox = &ib;
    cc.outbox = &ob;
    cc.notice = inv->notice;
    cc.has_created_at = 1;
    cc.created_at = a->now();
    Alcove__Local__Message m;
    outbox_queued_record(&m, &ct, content, clen, blob, blen);
    if ((e = cstore_begin(a->store, 1, &t)) != 0 || (e = session_save(t, cid, session)) != 0 ||
        (e = message_append(t, &cc, &m, key)) != 0 ||
        (e = audit_append(t, a->now(), AUDIT_CONTACT_ADDED, cid)) != 0 ||
        (e = cstore_commit(t)) != 0) {
        t = NULL;
        app_error("cannot store the new contact: %s", alcove_strerror(e));
        goto out;
    }
    t = NULL;
    int st = outbox_deliver(a, &np, &cc, key, &m);
    if (st != 0) {
        app_error("your introduction is saved but not delivered: %s",
                  st > 0 ? net_status_text(st) : alcove_strerror(st));
        if (st == ALCOVE__WIRE__STATUS__UNAUTHORIZED)
            app_hint("the invite may have been used or revoked; ask for a new one");
        else
            app_hint("it will be retried by your next 'alcove send', 'checkin' or 'fetch'");
        goto out;
    }
    if (a->json) {
        json_t *j = json_pack("{s:s, s:s, s:s}", "contact", label, "their_name", inv->display_name,
                              "notice", inv->notice);
        if (j == NULL || render_json_dump(stdout, j) != 0)
            app_error("cannot print JSON");
        json_decref(j);
    } else {
        printf("You are now connected with %s. Your introduction is on its way.\n", label);
        printf("Send a check-in with: alcove checkin %s --mood N --note TEXT\n", label);
    }
    rc = EXIT_OK;
out:
    cstore_abort(t);
    netpool_close(&np);
    alcove_ratchet_free(session);
    if (content != NULL) {
        sodium_memzero(content, clen);
        free(content);
    }
    free(blob);
    if (inv != NULL)
        sodium_free(inv);
    if (auth_sk != NULL)
        sodium_free(auth_sk);
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(code, ALCOVE_INVITE_TEXT_MAX + 1);
    free(code);
    return rc;
}
