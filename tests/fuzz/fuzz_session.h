/* A real end-to-end session made deterministically (header only), shared by
 * fuzz_envelope, fuzz_intro and fuzz_ratchet_state.
 *
 * With the generator of fuzz_common.h reset to the same label, the same
 * calls make the same keys, so the seeds written by one run (intro blobs,
 * ratchet messages, serialized states) stay valid for every later run of
 * the same build of keys/.  Should keys/ ever change how it draws random
 * bytes, refresh the seeds with `scripts/fuzz --seeds`.
 *
 *   A  accepter (client), B  inviter (therapist) with one-time prekey P;
 *   intro: A -> B (IntroInner sealed to P), B opens it: sessions sa, sb;
 *   msgs[]: more messages A -> B on A's first chain (n = 1, 2, 3), then B
 *   replies, A reads the reply and sends on a new chain (n = 0, 1).
 * sb (B right after the intro) is what the targets open fuzzed blobs with;
 * sa (A right after the intro) is what they seal with. */
#ifndef ALCOVE_FUZZ_SESSION_H
#define ALCOVE_FUZZ_SESSION_H

#include "fuzz_common.h"

#include "e2e.pb-c.h"
#include "envelope.h"
#include "err.h"
#include "identity.h"
#include "invite.h"
#include "ratchet.h"

#define FS_NMSGS 6

typedef struct fuzz_session {
    alcove_identity *a, *b;
    alcove_invite inv;
    uint8_t prekey_sk[32];
    alcove_ratchet *sa, *sb;
    uint8_t intro[ALCOVE_ENVELOPE_MAX];
    size_t intro_len;
    uint8_t msgs[FS_NMSGS][2048];
    size_t msg_len[FS_NMSGS];
} fuzz_session;

/* Serialize a Content with a text body (msg_id 16 bytes). */
static inline size_t fs_text_content(const char *text, uint8_t *out, size_t cap)
{
    Alcove__E2e__Content c = ALCOVE__E2E__CONTENT__INIT;
    Alcove__E2e__Text t = ALCOVE__E2E__TEXT__INIT;
    uint8_t id[16];
    size_t n;

    randombytes_buf(id, sizeof id);
    c.has_msg_id = 1;
    c.msg_id.data = id;
    c.msg_id.len = sizeof id;
    c.has_sent_at = 1;
    c.sent_at = 1700000000000ull;
    t.body = (char *)(uintptr_t)text;
    c.body_case = ALCOVE__E2E__CONTENT__BODY_TEXT;
    c.text = &t;
    n = alcove__e2e__content__get_packed_size(&c);
    FUZZ_CHECK(n <= cap);
    alcove__e2e__content__pack(&c, out);
    return n;
}

static inline void fs_seal(alcove_ratchet *r, const char *text, uint8_t *out,
                           size_t cap, size_t *len)
{
    uint8_t content[512];
    size_t n = fs_text_content(text, content, sizeof content);
    FUZZ_CHECK(alcove_envelope_seal(r, content, n, out, cap, len) == 0);
}

static inline void fs_open(const alcove_ratchet *r, const uint8_t *blob, size_t len,
                           alcove_ratchet **next)
{
    static uint8_t content[ALCOVE_PAD_MAX_CONTENT];
    size_t clen = 0;
    FUZZ_CHECK(alcove_envelope_open(r, blob, len, content, sizeof content,
                                    &clen, next) == 0);
}

static inline void fuzz_session_make(fuzz_session *s, const char *label)
{
    Alcove__E2e__Content c = ALCOVE__E2E__CONTENT__INIT;
    Alcove__E2e__Intro intro = ALCOVE__E2E__INTRO__INIT;
    static uint8_t content[ALCOVE_PAD_MAX_CONTENT];
    uint8_t id[16], send_id[16], secret[32], sig_pub[32], dh_pub[32];
    alcove_ratchet *a_tmp = NULL, *b_tmp = NULL, *next = NULL;
    uint8_t reply[2048];
    size_t n, clen = 0, reply_len = 0;

    memset(s, 0, sizeof *s);
    fuzz_rng_reset(label);
    FUZZ_CHECK(alcove_identity_generate(&s->a) == 0);
    FUZZ_CHECK(alcove_identity_generate(&s->b) == 0);
    s->inv.version = ALCOVE_INVITE_VERSION;
    snprintf(s->inv.relay_address, sizeof s->inv.relay_address, "%s",
             "alcove://AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8@127.0.0.1:7700");
    memcpy(s->inv.sig_pub, alcove_identity_sig_pub(s->b), 32);
    memcpy(s->inv.dh_pub, alcove_identity_dh_pub(s->b), 32);
    crypto_box_keypair(s->inv.prekey_pub, s->prekey_sk);
    randombytes_buf(s->inv.prekey_id, sizeof s->inv.prekey_id);
    randombytes_buf(s->inv.send_id, sizeof s->inv.send_id);
    randombytes_buf(s->inv.send_secret, sizeof s->inv.send_secret);
    s->inv.expires_at = 1700000000000ull + ALCOVE_INVITE_LIFETIME_MS;

    /* A's intro: an Intro Content naming A's reply mailbox. */
    randombytes_buf(id, sizeof id);
    randombytes_buf(send_id, sizeof send_id);
    randombytes_buf(secret, sizeof secret);
    c.has_msg_id = 1;
    c.msg_id.data = id;
    c.msg_id.len = sizeof id;
    c.has_sent_at = 1;
    c.sent_at = 1700000000000ull;
    intro.reply_address = s->inv.relay_address;
    intro.has_send_id = intro.has_send_secret = 1;
    intro.send_id.data = send_id;
    intro.send_id.len = sizeof send_id;
    intro.send_secret.data = secret;
    intro.send_secret.len = sizeof secret;
    intro.display_name = (char *)(uintptr_t)"Sam";
    c.body_case = ALCOVE__E2E__CONTENT__BODY_INTRO;
    c.intro = &intro;
    n = alcove__e2e__content__pack(&c, content);
    FUZZ_CHECK(alcove_intro_seal(s->a, &s->inv, content, n, s->intro,
                                 sizeof s->intro, &s->intro_len, &s->sa) == 0);
    FUZZ_CHECK(alcove_intro_open(s->b, s->prekey_sk, s->inv.prekey_pub,
                                 s->inv.prekey_id, s->intro, s->intro_len,
                                 sig_pub, dh_pub, content, sizeof content,
                                 &clen, &s->sb) == 0);

    /* A's first chain, n = 1, 2, 3 (a clone: sa stays right after the intro). */
    FUZZ_CHECK(alcove_ratchet_clone(s->sa, &a_tmp) == 0);
    fs_seal(a_tmp, "first", s->msgs[0], sizeof s->msgs[0], &s->msg_len[0]);
    fs_seal(a_tmp, "second", s->msgs[1], sizeof s->msgs[1], &s->msg_len[1]);
    fs_seal(a_tmp, "third", s->msgs[2], sizeof s->msgs[2], &s->msg_len[2]);
    /* B replies; A reads it and answers on a new chain. */
    FUZZ_CHECK(alcove_ratchet_clone(s->sb, &b_tmp) == 0);
    fs_seal(b_tmp, "reply", reply, sizeof reply, &reply_len);
    fs_open(a_tmp, reply, reply_len, &next);
    alcove_ratchet_free(a_tmp);
    a_tmp = next;
    next = NULL;
    fs_seal(a_tmp, "new chain 0", s->msgs[3], sizeof s->msgs[3], &s->msg_len[3]);
    fs_seal(a_tmp, "new chain 1", s->msgs[4], sizeof s->msgs[4], &s->msg_len[4]);
    /* And one that is authentic but not padded: a raw ratchet message. */
    {
        Alcove__E2e__Envelope env = ALCOVE__E2E__ENVELOPE__INIT;
        Alcove__E2e__RatchetMessage rm = ALCOVE__E2E__RATCHET_MESSAGE__INIT;
        uint8_t hdr[ALCOVE_RATCHET_HEADER_BYTES], ct[64 + 16];
        static const uint8_t pt[64] = "not padded at all";
        size_t ct_len = 0;
        FUZZ_CHECK(alcove_ratchet_encrypt(a_tmp, pt, sizeof pt, hdr, ct,
                                          sizeof ct, &ct_len) == 0);
        env.has_version = 1;
        env.version = ALCOVE_ENVELOPE_VERSION;
        env.kind_case = ALCOVE__E2E__ENVELOPE__KIND_MESSAGE;
        env.message = &rm;
        rm.has_header = rm.has_ciphertext = 1;
        rm.header.data = hdr;
        rm.header.len = sizeof hdr;
        rm.ciphertext.data = ct;
        rm.ciphertext.len = ct_len;
        s->msg_len[5] = alcove__e2e__envelope__pack(&env, s->msgs[5]);
    }
    alcove_ratchet_free(a_tmp);
    alcove_ratchet_free(b_tmp);
    sodium_memzero(content, sizeof content);
}

#endif
