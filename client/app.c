#include "app.h"

#include <bsd/readpassphrase.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "err.h"
#include "ratchet.h"
#include "render.h"

#define PASS_MAX 1024u

static void say(const char *kind, const char *fmt, va_list ap)
{
    fprintf(stderr, "alcove: %s: ", kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void app_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say("error", fmt, ap);
    va_end(ap);
}

void app_hint(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say("hint", fmt, ap);
    va_end(ap);
}

void app_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    say("warning", fmt, ap);
    va_end(ap);
}

uint64_t app_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int app_resolve_home(app *a, const char *flag_home)
{
    const char *e;
    int n;
    if (flag_home != NULL && *flag_home)
        n = snprintf(a->home, sizeof a->home, "%s", flag_home);
    else if ((e = getenv("ALCOVE_HOME")) != NULL && *e)
        n = snprintf(a->home, sizeof a->home, "%s", e);
    else if ((e = getenv("XDG_DATA_HOME")) != NULL && *e)
        n = snprintf(a->home, sizeof a->home, "%s/alcove", e);
    else if ((e = getenv("HOME")) != NULL && *e)
        n = snprintf(a->home, sizeof a->home, "%s/.local/share/alcove", e);
    else {
        app_error("cannot find a home directory");
        app_hint("set ALCOVE_HOME or pass --home DIR");
        return EXIT_FAIL;
    }
    if (n < 0 || (size_t)n >= sizeof a->home - 32) {
        app_error("home directory path is too long");
        return EXIT_FAIL;
    }
    return 0;
}

void app_path(const app *a, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", a->home, name);
}

static int read_pass_file(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == cap - 1)
            break;
    }
    close(fd);
    /* One trailing newline is not part of the passphrase. */
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    *len = n;
    return 0;
}

int app_passphrase(app *a, const char *prompt, int confirm, char **out, size_t *len)
{
    char *buf = sodium_malloc(PASS_MAX), *again = NULL;
    const char *env = getenv("ALCOVE_PASSPHRASE");
    int rc = EXIT_FAIL;
    if (buf == NULL) {
        app_error("out of memory");
        return EXIT_FAIL;
    }
    if (env != NULL) {
        size_t n = strlen(env);
        if (n >= PASS_MAX) {
            app_error("ALCOVE_PASSPHRASE is too long (at most %u bytes)", PASS_MAX - 1);
            goto out;
        }
        memcpy(buf, env, n + 1);
        *len = n;
    } else if (a->passphrase_file[0]) {
        if (read_pass_file(a->passphrase_file, buf, PASS_MAX, len) != 0) {
            app_error("cannot read passphrase file %s: %s", a->passphrase_file, strerror(errno));
            goto out;
        }
    } else {
        if (readpassphrase(prompt, buf, PASS_MAX, RPP_REQUIRE_TTY) == NULL) {
            app_error("cannot read a passphrase: no terminal");
            app_hint("use --passphrase-file FILE or set ALCOVE_PASSPHRASE");
            goto out;
        }
        *len = strlen(buf);
        if (confirm) {
            if ((again = sodium_malloc(PASS_MAX)) == NULL ||
                readpassphrase("Repeat passphrase: ", again, PASS_MAX, RPP_REQUIRE_TTY) == NULL) {
                app_error("cannot read a passphrase");
                goto out;
            }
            if (strlen(again) != *len || sodium_memcmp(again, buf, *len) != 0) {
                app_error("the passphrases do not match");
                goto out;
            }
        }
    }
    if (confirm && *len == 0) {
        app_error("empty passphrase");
        app_hint("use 'alcove init --no-passphrase' for unattended use");
        goto out;
    }
    *out = buf;
    buf = NULL;
    rc = 0;
out:
    if (buf != NULL)
        sodium_free(buf);
    if (again != NULL)
        sodium_free(again);
    return rc;
}

/* First open after a restore: log it once (best effort). */
static void note_restore(app *a)
{
    cstore_txn *t = NULL;
    a->meta->has_restore_logged = 1;
    a->meta->restore_logged = 1;
    if (cstore_begin(a->store, 1, &t) != 0)
        return;
    if (audit_append(t, a->now(), AUDIT_RESTORED, NULL) != 0 || app_save_meta(t, a->meta) != 0) {
        cstore_abort(t);
        return;
    }
    (void)cstore_commit(t);
}

int app_open(app *a)
{
    char path[PATH_MAX + 32], marker[PATH_MAX + 32], storedir[PATH_MAX + 32];
    char *pass = NULL;
    size_t plen = 0;
    const char *why = NULL;
    cstore_txn *t = NULL;
    uint8_t *val = NULL;
    size_t vlen = 0;
    int rc;

    app_path(a, "identity", path, sizeof path);
    app_path(a, "no-passphrase", marker, sizeof marker);
    app_path(a, "store", storedir, sizeof storedir);
    if (access(path, F_OK) != 0) {
        app_error("no alcove identity in %s", a->home);
        app_hint("run 'alcove init --relay ADDRESS' first (or pass --home DIR)");
        return EXIT_FAIL;
    }
    if (access(marker, F_OK) == 0) {
        rc = alcove_identity_load(path, "", 0, &a->id);
    } else {
        if (app_passphrase(a, "Passphrase: ", 0, &pass, &plen) != 0)
            return EXIT_FAIL;
        rc = alcove_identity_load(path, pass, plen, &a->id);
        sodium_free(pass);
    }
    if (rc == ALCOVE_EPASS) {
        app_error("wrong passphrase for %s", path);
        return EXIT_FAIL;
    }
    if (rc != 0) {
        app_error("cannot unlock %s: %s", path, alcove_strerror(rc));
        if (rc == ALCOVE_EFORMAT || rc == ALCOVE_ECORRUPT || rc == ALCOVE_ETRUNC)
            app_hint("the identity file is damaged; restore it from a backup");
        return EXIT_FAIL;
    }
    rc = cstore_open(&a->store, storedir, alcove_identity_store_key(a->id), &why);
    if (rc != 0) {
        app_error("cannot open the local store %s: %s", storedir, why);
        return EXIT_FAIL;
    }
    if (cstore_begin(a->store, 0, &t) != 0 ||
        (rc = cstore_get(t, CS_META, "meta", 4, &val, &vlen)) != 0) {
        cstore_abort(t);
        app_error("the local store in %s cannot be read (%s)", storedir,
                  rc == ALCOVE_ECORRUPT ? "it does not open with this identity's key" : "no settings");
        return EXIT_FAIL;
    }
    a->meta = alcove__local__meta__unpack(NULL, vlen, val);
    cstore_free_value(val, vlen);
    cstore_abort(t);
    if (a->meta == NULL) {
        app_error("the local store's settings are corrupted");
        return EXIT_FAIL;
    }
    if (a->meta->has_restored_from && !a->meta->restore_logged)
        note_restore(a);
    return 0;
}

void app_close(app *a)
{
    if (a->meta != NULL)
        alcove__local__meta__free_unpacked(a->meta, NULL);
    a->meta = NULL;
    cstore_close(a->store);
    a->store = NULL;
    alcove_identity_free(a->id);
    a->id = NULL;
}

uint8_t *pb_pack(const ProtobufCMessage *m, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL)
        return NULL;
    *len = protobuf_c_message_pack(m, buf);
    return buf;
}

static void free_packed(uint8_t *buf, size_t len)
{
    if (buf != NULL) {
        sodium_memzero(buf, len);
        free(buf);
    }
}

int app_save_meta(cstore_txn *t, const Alcove__Local__Meta *m)
{
    size_t len = 0;
    uint8_t *buf = pb_pack(&m->base, &len);
    if (buf == NULL)
        return ALCOVE_ENOMEM;
    int rc = cstore_put(t, CS_META, "meta", 4, buf, len);
    free_packed(buf, len);
    return rc;
}

int contact_load(cstore_txn *t, const uint8_t id[16], Alcove__Local__Contact **out)
{
    uint8_t *val = NULL;
    size_t vlen = 0;
    int rc = cstore_get(t, CS_CONTACTS, id, CONTACT_ID_BYTES, &val, &vlen);
    if (rc != 0)
        return rc;
    *out = alcove__local__contact__unpack(NULL, vlen, val);
    cstore_free_value(val, vlen);
    return *out ? 0 : ALCOVE_ECORRUPT;
}

int contact_save(cstore_txn *t, const Alcove__Local__Contact *c)
{
    if (!c->has_id || c->id.len != CONTACT_ID_BYTES)
        return ALCOVE_EINVAL;
    size_t len = 0;
    uint8_t *buf = pb_pack(&c->base, &len);
    if (buf == NULL)
        return ALCOVE_ENOMEM;
    int rc = cstore_put(t, CS_CONTACTS, c->id.data, CONTACT_ID_BYTES, buf, len);
    free_packed(buf, len);
    return rc;
}

typedef struct list_ctx {
    Alcove__Local__Contact **v;
    size_t n, cap;
} list_ctx;

static int collect_contact(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
                           size_t vlen)
{
    list_ctx *l = ctx;
    (void)key;
    (void)klen;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        Alcove__Local__Contact **nv = realloc(l->v, ncap * sizeof *nv);
        if (nv == NULL)
            return ALCOVE_ENOMEM;
        l->v = nv;
        l->cap = ncap;
    }
    Alcove__Local__Contact *c = alcove__local__contact__unpack(NULL, vlen, val);
    if (c == NULL)
        return ALCOVE_ECORRUPT;
    l->v[l->n++] = c;
    return 0;
}

int contact_list(cstore_txn *t, Alcove__Local__Contact ***out, size_t *n)
{
    list_ctx l = {NULL, 0, 0};
    int rc = cstore_each(t, CS_CONTACTS, NULL, 0, collect_contact, &l);
    if (rc != 0) {
        contact_list_free(l.v, l.n);
        return rc;
    }
    *out = l.v;
    *n = l.n;
    return 0;
}

void contact_free(Alcove__Local__Contact *c)
{
    if (c != NULL)
        alcove__local__contact__free_unpacked(c, &render_wipe_allocator);
}

void contact_list_free(Alcove__Local__Contact **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        contact_free(v[i]);
    free(v);
}

int contact_find(app *a, cstore_txn *t, const char *label, Alcove__Local__Contact **out)
{
    Alcove__Local__Contact **v = NULL;
    size_t n = 0, found = SIZE_MAX, ci = SIZE_MAX, nci = 0;
    (void)a;
    int rc = contact_list(t, &v, &n);
    if (rc != 0) {
        app_error("cannot read contacts: %s", alcove_strerror(rc));
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i]->state == ALCOVE__LOCAL__CONTACT__STATE__LEFT || v[i]->label == NULL)
            continue;
        if (strcmp(v[i]->label, label) == 0)
            found = i;
        else if (strcasecmp(v[i]->label, label) == 0) {
            ci = i;
            nci++;
        }
    }
    if (found == SIZE_MAX && nci == 1)
        found = ci;
    if (found == SIZE_MAX) {
        contact_list_free(v, n);
        app_error("no contact named '%s'%s", label, nci > 1 ? " (several differ only in case)" : "");
        app_hint("'alcove contacts' lists them");
        return EXIT_FAIL;
    }
    *out = v[found];
    v[found] = NULL;
    for (size_t i = 0; i < n; i++)
        if (v[i] != NULL)
            contact_free(v[i]);
    free(v);
    return 0;
}

static void put_u64be(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

int message_put(cstore_txn *t, const uint8_t key[24], const Alcove__Local__Message *m)
{
    size_t len = 0;
    uint8_t *buf = pb_pack(&m->base, &len);
    if (buf == NULL)
        return ALCOVE_ENOMEM;
    int rc = cstore_put(t, CS_MESSAGES, key, 24, buf, len);
    free_packed(buf, len);
    return rc;
}

int message_append(cstore_txn *t, Alcove__Local__Contact *c, const Alcove__Local__Message *m,
                   uint8_t key_out[24])
{
    uint8_t key[24];
    memcpy(key, c->id.data, CONTACT_ID_BYTES);
    put_u64be(key + 16, c->next_local_seq);
    int rc = message_put(t, key, m);
    if (rc != 0)
        return rc;
    c->next_local_seq++;
    c->has_next_local_seq = 1;
    if (key_out != NULL)
        memcpy(key_out, key, 24);
    return contact_save(t, c);
}

int session_load(cstore_txn *t, const uint8_t id[16], alcove_ratchet **out)
{
    uint8_t *val = NULL;
    size_t vlen = 0;
    int rc = cstore_get(t, CS_SESSIONS, id, CONTACT_ID_BYTES, &val, &vlen);
    if (rc != 0)
        return rc;
    rc = alcove_ratchet_deserialize(val, vlen, out);
    cstore_free_value(val, vlen);
    return rc;
}

int session_save(cstore_txn *t, const uint8_t id[16], const alcove_ratchet *r)
{
    size_t cap = alcove_ratchet_serialized_size(r), len = 0;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (buf == NULL)
        return ALCOVE_ENOMEM;
    int rc = alcove_ratchet_serialize(r, buf, cap, &len);
    if (rc == 0)
        rc = cstore_put(t, CS_SESSIONS, id, CONTACT_ID_BYTES, buf, len);
    free_packed(buf, cap);
    return rc;
}

void hex_encode(const uint8_t *b, size_t n, char *out)
{
    static const char hexd[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexd[b[i] >> 4];
        out[2 * i + 1] = hexd[b[i] & 15];
    }
    out[2 * n] = '\0';
}
