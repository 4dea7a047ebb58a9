#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"

typedef enum { T_STR, T_U32, T_U64, T_DUR, T_SIZE, T_BOOL, T_LEVEL } ftype;

typedef struct flag {
    const char *name;
    ftype type;
    size_t off;
    size_t len; /* T_STR buffer size */
    unsigned groups;
    const char *help;
} flag;

#define F(n, t, field, g, h) {n, t, offsetof(relay_config, field), sizeof(((relay_config *)0)->field), g, h}
#define D RELAY_FLAGS_DATA
#define R RELAY_FLAGS_RUN
#define I RELAY_FLAGS_INIT
static const flag flags[] = {
    F("data", T_STR, data_dir, D | R | I, "data directory"),
    F("listen", T_STR, listen, R, "HOST:PORT to listen on (port 0 picks a free port)"),
    F("public", T_STR, public_addr, I | D, "HOST:PORT clients use to reach this relay"),
    F("log-file", T_STR, log_file, R, "append logs to FILE instead of stderr (reopened on SIGHUP)"),
    F("log-level", T_LEVEL, log_level, R, "error | warn | info | debug"),
    F("log-addresses", T_BOOL, log_addresses, R, "log peer IP addresses (off by default)"),
    F("max-blob", T_SIZE, max_blob_bytes, R, "largest message blob accepted (at most 65000)"),
    F("ttl", T_DUR, message_ttl_ms, R, "message lifetime before expiry"),
    F("mailbox-idle", T_DUR, mailbox_idle_ms, R, "delete mailboxes unused this long (0: never)"),
    F("max-messages", T_U32, max_messages_per_mailbox, R, "messages per mailbox (0: no limit)"),
    F("max-mailbox-bytes", T_SIZE, max_bytes_per_mailbox, R, "blob bytes per mailbox (0: no limit)"),
    F("max-connections", T_U32, max_connections, R, "simultaneous connections"),
    F("handshake-timeout", T_DUR, handshake_timeout_ms, R, "time to finish the handshake and Hello"),
    F("idle-timeout", T_DUR, idle_timeout_ms, R, "close connections silent this long"),
    F("rate", T_U32, rate_per_sec, R, "requests per second per connection (0: no limit)"),
    F("rate-burst", T_U32, rate_burst, R, "request burst per connection"),
    F("write-queue", T_SIZE, write_queue_bytes, R, "bytes queued to a peer before reading from it pauses"),
    F("fetch-default", T_U32, fetch_default, R, "messages per Fetch when the client asks for 0"),
    F("max-store", T_SIZE, max_store_bytes, R, "cap on the store's size (0: grow as needed)"),
    F("batch-ops", T_U32, batch_max_ops, R, "operations per group commit at most"),
    F("batch-bytes", T_SIZE, batch_max_bytes, R, "blob bytes per group commit at most"),
    F("expiry-interval", T_DUR, expiry_interval_ms, R, "how often TTL and idle expiry run"),
};
#undef F

void relay_config_defaults(relay_config *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->data_dir, "./alcove-data");
    strcpy(c->listen, "127.0.0.1:7700");
    c->log_level = RLOG_INFO;
    c->max_blob_bytes = 64000;
    c->message_ttl_ms = 21ull * 24 * 3600 * 1000;
    c->mailbox_idle_ms = 180ull * 24 * 3600 * 1000;
    c->max_messages_per_mailbox = 10000;
    c->max_bytes_per_mailbox = 64ull << 20;
    c->max_connections = 10000;
    c->handshake_timeout_ms = 10000;
    c->idle_timeout_ms = 300000;
    c->rate_per_sec = 0;
    c->rate_burst = 1000;
    c->write_queue_bytes = 1u << 20;
    c->fetch_default = 256;
    c->max_store_bytes = 0;
    c->batch_max_ops = 4096;
    c->batch_max_bytes = 32ull << 20;
    c->expiry_interval_ms = 60000;
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int parse_suffixed(const char *s, int is_dur, uint64_t *out)
{
    static const struct { const char *sfx; uint64_t mul; } dur[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"", 1}};
    static const struct { const char *sfx; uint64_t mul; } size[] = {
        {"k", 1024}, {"K", 1024}, {"M", 1u << 20}, {"G", 1u << 30}, {"", 1}};
    char num[32];
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9' && n < sizeof num - 1) {
        num[n] = s[n];
        n++;
    }
    num[n] = '\0';
    uint64_t v;
    if (n == 0 || parse_u64(num, &v) != 0)
        return -1;
    const char *sfx = s + n;
    size_t count = is_dur ? sizeof dur / sizeof dur[0] : sizeof size / sizeof size[0];
    for (size_t i = 0; i < count; i++) {
        const char *name = is_dur ? dur[i].sfx : size[i].sfx;
        uint64_t mul = is_dur ? dur[i].mul : size[i].mul;
        if (strcmp(sfx, name) == 0) {
            if (v > UINT64_MAX / mul)
                return -1;
            *out = v * mul;
            return 0;
        }
    }
    return -1;
}

static int set_flag(relay_config *c, const flag *f, const char *val, FILE *err)
{
    char *p = (char *)c + f->off;
    uint64_t v = 0;
    switch (f->type) {
    case T_STR:
        if (strlen(val) >= f->len) {
            fprintf(err, "alcove-relay: error: --%s is too long\n", f->name);
            return ALCOVE_EINVAL;
        }
        strcpy(p, val);
        return 0;
    case T_LEVEL: {
        int lv = relay_log_level_parse(val);
        if (lv < 0) {
            fprintf(err, "alcove-relay: error: --log-level must be error, warn, info or debug\n");
            return ALCOVE_EINVAL;
        }
        *(int *)(void *)p = lv;
        return 0;
    }
    case T_BOOL:
        if (strcmp(val, "yes") == 0 || strcmp(val, "true") == 0 || strcmp(val, "1") == 0)
            *(int *)(void *)p = 1;
        else if (strcmp(val, "no") == 0 || strcmp(val, "false") == 0 || strcmp(val, "0") == 0)
            *(int *)(void *)p = 0;
        else
            goto bad;
        return 0;
    case T_U32:
        if (parse_u64(val, &v) != 0 || v > UINT32_MAX)
            goto bad;
        *(uint32_t *)(void *)p = (uint32_t)v;
        return 0;
    case T_U64:
        if (parse_u64(val, &v) != 0)
            goto bad;
        *(uint64_t *)(void *)p = v;
        return 0;
    case T_DUR:
    case T_SIZE:
        if (parse_suffixed(val, f->type == T_DUR, &v) != 0)
            goto bad;
        if (f->len == sizeof(uint32_t)) {
            if (v > UINT32_MAX)
                goto bad;
            *(uint32_t *)(void *)p = (uint32_t)v;
        } else {
            *(uint64_t *)(void *)p = v;
        }
        return 0;
    }
bad:
    fprintf(err, "alcove-relay: error: bad value '%s' for --%s%s\n", val, f->name,
            f->type == T_DUR    ? " (a number with ms, s, m, h or d)"
            : f->type == T_SIZE ? " (a number with optional k, M or G)"
            : f->type == T_BOOL ? " (yes or no)"
                                : " (a non-negative integer)");
    return ALCOVE_EINVAL;
}

int relay_config_parse(relay_config *c, int argc, char **argv, unsigned allowed,
                       FILE *err)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            fprintf(err, "alcove-relay: error: unexpected argument '%s'\n", a);
            return ALCOVE_EINVAL;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const flag *f = NULL;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
            if (strlen(flags[k].name) == nlen && strncmp(flags[k].name, name, nlen) == 0)
                f = &flags[k];
        if (f == NULL || !(f->groups & allowed)) {
            fprintf(err, "alcove-relay: error: unknown option '%.*s'\n", (int)(nlen + 2), a);
            fprintf(err, "alcove-relay: hint: see 'alcove-relay help'\n");
            return ALCOVE_EINVAL;
        }
        const char *val;
        if (eq != NULL)
            val = eq + 1;
        else if (f->type == T_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0))
            val = "yes";
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            fprintf(err, "alcove-relay: error: --%s needs a value\n", f->name);
            return ALCOVE_EINVAL;
        }
        int rc = set_flag(c, f, val, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int relay_config_validate(relay_config *c, FILE *err)
{
    if (c->max_blob_bytes == 0 || c->max_blob_bytes > RELAY_BLOB_CAP) {
        fprintf(err, "alcove-relay: error: --max-blob must be 1..%u (a blob must fit one transport message)\n",
                RELAY_BLOB_CAP);
        return ALCOVE_EINVAL;
    }
    if (c->message_ttl_ms == 0) {
        fprintf(err, "alcove-relay: error: --ttl must be positive\n");
        return ALCOVE_EINVAL;
    }
    if (c->max_connections == 0 || c->fetch_default == 0 || c->batch_max_ops == 0 ||
        c->handshake_timeout_ms == 0 || c->idle_timeout_ms == 0 || c->expiry_interval_ms == 0) {
        fprintf(err, "alcove-relay: error: connection, fetch, batch, timeout and interval settings must be positive\n");
        return ALCOVE_EINVAL;
    }
    if (c->write_queue_bytes < 2u * 65537u) {
        fprintf(err, "alcove-relay: error: --write-queue must be at least 128k\n");
        return ALCOVE_EINVAL;
    }
    if (c->batch_max_bytes < RELAY_BLOB_CAP)
        c->batch_max_bytes = RELAY_BLOB_CAP;
    if (c->fetch_default > RELAY_FETCH_CAP)
        c->fetch_default = RELAY_FETCH_CAP;
    if (c->rate_per_sec != 0 && c->rate_burst < c->rate_per_sec / 10 + 1)
        c->rate_burst = c->rate_per_sec / 10 + 1;
    return 0;
}

void relay_config_usage(unsigned allowed, FILE *out)
{
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++) {
        const flag *f = &flags[k];
        if (!(f->groups & allowed))
            continue;
        fprintf(out, "  --%-18s %s\n", f->name, f->help);
    }
}
