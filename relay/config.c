#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "config_table.h"
#include "err.h"
#include "journal.h"
#include "log.h"

#define F(n, t, field, g, sec, rl, h)                                                         \
    {.name = (n), .type = (t), .off = offsetof(relay_config, field),                          \
     .len = sizeof(((relay_config *)0)->field), .groups = (g), .section = (sec),              \
     .reloadable = (rl), .help = (h)}
#define D RELAY_FLAGS_DATA
#define R RELAY_FLAGS_RUN
#define I RELAY_FLAGS_INIT
#define C RELAY_FLAGS_CONFIG
/* Sections of the config file, in the order check-config prints them. */
static const char *const sections[] = {"relay", "log", "limits", "storage", "admin"};
const relay_flag relay_flags[] = {
    F("config", T_STR, config_file, C, NULL, 0, "read settings from FILE (flags override it)"),
    F("if-missing", T_BOOL, init_if_missing, I, NULL, 0,
      "succeed (and print the address) if the key already exists"),
    F("data", T_STR, data_dir, D | R | I, "relay", 0, "data directory"),
    F("listen", T_STR, listen, R, "relay", 0, "HOST:PORT to listen on (port 0 picks a free port)"),
    F("public", T_STR, public_addr, I | D, "relay", 0, "HOST:PORT clients use to reach this relay"),
    F("log-file", T_STR, log_file, R, "log", 0, "append logs to FILE instead of stderr (reopened on SIGHUP)"),
    F("log-level", T_LEVEL, log_level, R, "log", 1, "error | warn | info | debug"),
    F("log-addresses", T_BOOL, log_addresses, R, "log", 1, "log peer IP addresses (off by default)"),
    F("max-blob", T_SIZE, max_blob_bytes, R, "limits", 1, "largest message blob accepted (at most 65000)"),
    F("ttl", T_DUR, message_ttl_ms, R, "limits", 1, "message lifetime before expiry"),
    F("mailbox-idle", T_DUR, mailbox_idle_ms, R, "limits", 1, "delete mailboxes unused this long (0: never)"),
    F("max-messages", T_U32, max_messages_per_mailbox, R, "limits", 1, "messages per mailbox (0: no limit)"),
    F("max-mailbox-bytes", T_SIZE, max_bytes_per_mailbox, R, "limits", 1, "blob bytes per mailbox (0: no limit)"),
    F("max-connections", T_U32, max_connections, R, "limits", 1, "simultaneous connections"),
    F("handshake-timeout", T_DUR, handshake_timeout_ms, R, "limits", 1, "time to finish the handshake and Hello"),
    F("idle-timeout", T_DUR, idle_timeout_ms, R, "limits", 1, "close connections silent this long"),
    F("rate", T_U32, rate_per_sec, R, "limits", 1, "requests per second per connection (0: no limit)"),
    F("rate-burst", T_U32, rate_burst, R, "limits", 1, "request burst per connection"),
    F("write-queue", T_SIZE, write_queue_bytes, R, "limits", 1, "bytes queued to a peer before reading from it pauses"),
    F("fetch-default", T_U32, fetch_default, R, "limits", 1, "messages per Fetch when the client asks for 0"),
    F("expiry-interval", T_DUR, expiry_interval_ms, R, "limits", 1, "how often TTL and idle expiry run"),
    F("max-store", T_SIZE, max_store_bytes, R, "storage", 0, "cap on the store's size (0: grow as needed)"),
    F("batch-ops", T_U32, batch_max_ops, R, "storage", 0, "operations per group commit at most"),
    F("batch-bytes", T_SIZE, batch_max_bytes, R, "storage", 0, "blob bytes per group commit at most"),
    F("journal-size", T_SIZE, journal_bytes, R, "storage", 0,
      "size of the write-ahead journal, fixed when it is created (at least 1M)"),
    F("admin-listen", T_STR, admin_listen, R, "admin", 0,
      "HOST:PORT for the /metrics listener (empty: off; loopback unless admin-allow-remote)"),
    F("admin-allow-remote", T_BOOL, admin_allow_remote, R, "admin", 0,
      "allow admin-listen on a non-loopback address"),
};
#undef F
#undef D
#undef R
#undef I
#undef C
const size_t relay_nflags = sizeof relay_flags / sizeof relay_flags[0];
_Static_assert(sizeof relay_flags / sizeof relay_flags[0] <= RELAY_CONFIG_MAX_KEYS,
               "relay_config.origin is too small for the flag table");

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
    c->journal_bytes = RELAY_JOURNAL_DEFAULT_BYTES;
    c->expiry_interval_ms = 60000;
}

const relay_flag *relay_flag_find(const char *name, size_t len)
{
    for (size_t k = 0; k < relay_nflags; k++)
        if (strlen(relay_flags[k].name) == len && strncmp(relay_flags[k].name, name, len) == 0)
            return &relay_flags[k];
    return NULL;
}

static size_t flag_index(const relay_flag *f) { return (size_t)(f - relay_flags); }

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

typedef struct unit {
    const char *sfx;
    uint64_t mul;
} unit;
/* Largest first: relay_config_print uses the first that divides exactly. */
static const unit dur_units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000},
                                 {"s", 1000},     {"ms", 1},      {"", 1}};
static const unit size_units[] = {{"G", 1u << 30}, {"M", 1u << 20}, {"k", 1024},
                                  {"K", 1024},     {"", 1}};

static int parse_suffixed(const char *s, int is_dur, uint64_t *out)
{
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
    const unit *u = is_dur ? dur_units : size_units;
    size_t count = is_dur ? sizeof dur_units / sizeof dur_units[0]
                          : sizeof size_units / sizeof size_units[0];
    for (size_t i = 0; i < count; i++) {
        if (strcmp(sfx, u[i].sfx) == 0) {
            if (v > UINT64_MAX / u[i].mul)
                return -1;
            *out = v * u[i].mul;
            return 0;
        }
    }
    return -1;
}

int relay_flag_set(relay_config *c, const relay_flag *f, const char *val, const char *where,
                   FILE *err)
{
    char *p = (char *)c + f->off;
    uint64_t v = 0;
    switch (f->type) {
    case T_STR:
        if (strlen(val) >= f->len) {
            fprintf(err, "alcove-relay: error: %s: value is too long (at most %zu characters)\n",
                    where, f->len - 1);
            return ALCOVE_EINVAL;
        }
        memcpy(p, val, strlen(val) + 1);
        return 0;
    case T_LEVEL: {
        int lv = relay_log_level_parse(val);
        if (lv < 0)
            goto bad;
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
    fprintf(err, "alcove-relay: error: %s: bad value '%s'%s\n", where, val,
            f->type == T_DUR     ? " (a number with ms, s, m, h or d, e.g. 21d)"
            : f->type == T_SIZE  ? " (a number with optional k, M or G, e.g. 64M)"
            : f->type == T_BOOL  ? " (yes or no)"
            : f->type == T_LEVEL ? " (error, warn, info or debug)"
                                 : " (a non-negative integer)");
    return ALCOVE_EINVAL;
}

int relay_config_parse_args(relay_config *c, int argc, char **argv, unsigned allowed,
                            char **pos, int maxpos, int *npos, FILE *err)
{
    if (npos != NULL)
        *npos = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            if (npos != NULL && *npos < maxpos) {
                pos[(*npos)++] = a;
                continue;
            }
            fprintf(err, "alcove-relay: error: unexpected argument '%s'\n", a);
            return ALCOVE_EINVAL;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const relay_flag *f = relay_flag_find(name, nlen);
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
        char where[64];
        snprintf(where, sizeof where, "--%s", f->name);
        int rc = relay_flag_set(c, f, val, where, err);
        if (rc != 0)
            return rc;
        c->origin[flag_index(f)] = -1;
    }
    return 0;
}

int relay_config_parse(relay_config *c, int argc, char **argv, unsigned allowed, FILE *err)
{
    return relay_config_parse_args(c, argc, argv, allowed, NULL, 0, NULL, err);
}

int relay_config_build(relay_config *c, int argc, char **argv, unsigned allowed, char **pos,
                       int maxpos, int *npos, FILE *err)
{
    relay_config flags_only;
    relay_config_defaults(&flags_only);
    int rc = relay_config_parse_args(&flags_only, argc, argv, allowed, pos, maxpos, npos, err);
    if (rc != 0)
        return rc;
    relay_config_defaults(c);
    if (flags_only.config_file[0] != '\0' &&
        (rc = relay_config_load_file(c, flags_only.config_file, err)) != 0)
        return rc;
    /* Same flags again, now over the file: they parsed once, so they parse. */
    if ((rc = relay_config_parse_args(c, argc, argv, allowed, pos, maxpos, npos, err)) != 0)
        return rc;
    return relay_config_validate(c, err);
}

/* "--ttl" when it came from a flag, "FILE:LINE: ttl" from the file, "ttl"
 * (default). */
static const char *origin_of(const relay_config *c, const char *key, char *buf, size_t cap)
{
    const relay_flag *f = relay_flag_find(key, strlen(key));
    int o = f ? c->origin[flag_index(f)] : 0;
    if (o < 0)
        snprintf(buf, cap, "--%s", key);
    else if (o > 0)
        snprintf(buf, cap, "%s:%d: %s", c->config_file, o, key);
    else
        snprintf(buf, cap, "%s", key);
    return buf;
}

int relay_config_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

int relay_config_validate(relay_config *c, FILE *err)
{
    char w[PATH_MAX + 64];
    if (c->max_blob_bytes == 0 || c->max_blob_bytes > RELAY_BLOB_CAP) {
        fprintf(err, "alcove-relay: error: %s must be 1..%u (a blob must fit one transport message)\n",
                origin_of(c, "max-blob", w, sizeof w), RELAY_BLOB_CAP);
        return ALCOVE_EINVAL;
    }
    static const char *const positive[] = {"ttl", "max-connections", "fetch-default", "batch-ops",
                                           "handshake-timeout", "idle-timeout", "expiry-interval"};
    for (size_t i = 0; i < sizeof positive / sizeof positive[0]; i++) {
        const relay_flag *f = relay_flag_find(positive[i], strlen(positive[i]));
        const char *p = (const char *)c + f->off;
        uint64_t v = f->len == sizeof(uint32_t) ? *(const uint32_t *)(const void *)p
                                                : *(const uint64_t *)(const void *)p;
        if (v == 0) {
            fprintf(err, "alcove-relay: error: %s must be positive\n",
                    origin_of(c, positive[i], w, sizeof w));
            return ALCOVE_EINVAL;
        }
    }
    if (c->write_queue_bytes < (uint64_t)2 * 65537) {
        fprintf(err, "alcove-relay: error: %s must be at least 128k\n",
                origin_of(c, "write-queue", w, sizeof w));
        return ALCOVE_EINVAL;
    }
    if (c->admin_listen[0] != '\0') {
        char host[ALCOVE_ADDR_HOST_MAX + 1];
        int v6;
        uint16_t port;
        const char *why = NULL;
        if (alcove_hostport_parse(c->admin_listen, host, sizeof host, &v6, &port, 1, &why) != 0) {
            fprintf(err, "alcove-relay: error: %s: bad address '%s': %s\n",
                    origin_of(c, "admin-listen", w, sizeof w), c->admin_listen, why);
            return ALCOVE_EINVAL;
        }
        if (!relay_config_is_loopback(host) && !c->admin_allow_remote) {
            fprintf(err, "alcove-relay: error: %s: '%s' is not a loopback address\n",
                    origin_of(c, "admin-listen", w, sizeof w), c->admin_listen);
            fprintf(err, "alcove-relay: hint: metrics are for the operator only; set "
                         "admin-allow-remote = yes to serve them beyond this machine\n");
            return ALCOVE_EINVAL;
        }
    }
    if (c->journal_bytes < RELAY_JOURNAL_MIN_BYTES) {
        fprintf(err, "alcove-relay: error: %s must be at least 1M\n",
                origin_of(c, "journal-size", w, sizeof w));
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
    for (size_t k = 0; k < relay_nflags; k++) {
        const relay_flag *f = &relay_flags[k];
        if (!(f->groups & allowed))
            continue;
        fprintf(out, "  --%-18s %s\n", f->name, f->help);
    }
}

/* The value of f in c, in the form the file and the flags accept. */
static void format_value(const relay_config *c, const relay_flag *f, char *out, size_t cap)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    const char *p = (const char *)c + f->off;
    uint64_t v = 0;
    if (f->type != T_STR && f->type != T_BOOL && f->type != T_LEVEL)
        v = f->len == sizeof(uint32_t) ? *(const uint32_t *)(const void *)p
                                       : *(const uint64_t *)(const void *)p;
    switch (f->type) {
    case T_STR:
        snprintf(out, cap, "%s", p);
        return;
    case T_BOOL:
        snprintf(out, cap, "%s", *(const int *)(const void *)p ? "yes" : "no");
        return;
    case T_LEVEL: {
        int lv = *(const int *)(const void *)p;
        snprintf(out, cap, "%s", lv >= 0 && lv < 4 ? levels[lv] : "info");
        return;
    }
    case T_U32:
    case T_U64:
        snprintf(out, cap, "%llu", (unsigned long long)v);
        return;
    case T_DUR:
    case T_SIZE: {
        const unit *u = f->type == T_DUR ? dur_units : size_units;
        for (size_t i = 0; v != 0 && u[i].sfx[0] != '\0'; i++) {
            if (v % u[i].mul == 0) {
                snprintf(out, cap, "%llu%s", (unsigned long long)(v / u[i].mul), u[i].sfx);
                return;
            }
        }
        snprintf(out, cap, "%llu", (unsigned long long)v);
        return;
    }
    }
}

void relay_config_print(const relay_config *c, FILE *out)
{
    char val[PATH_MAX];
    fprintf(out, "; effective alcove-relay settings (flags > %s > defaults)\n",
            c->config_file[0] ? c->config_file : "no config file");
    for (size_t s = 0; s < sizeof sections / sizeof sections[0]; s++) {
        fprintf(out, "\n[%s]\n", sections[s]);
        for (size_t k = 0; k < relay_nflags; k++) {
            const relay_flag *f = &relay_flags[k];
            if (f->section == NULL || strcmp(f->section, sections[s]) != 0)
                continue;
            format_value(c, f, val, sizeof val);
            int o = c->origin[k];
            char line[PATH_MAX + 400];
            int n = snprintf(line, sizeof line, "%s = %s", f->name, val);
            if (n < 0)
                continue;
            if (o < 0)
                fprintf(out, "%-40s ; from --%s\n", line, f->name);
            else if (o > 0)
                fprintf(out, "%-40s ; from line %d\n", line, o);
            else
                fprintf(out, "%-40s ; default\n", line);
        }
    }
}

static void append_word(char *buf, size_t cap, const char *w)
{
    size_t n = strlen(buf);
    if (cap == 0 || n + 1 >= cap)
        return;
    snprintf(buf + n, cap - n, "%s%s", n ? " " : "", w);
}

void relay_config_apply_reload(relay_config *live, const relay_config *fresh, char *changed,
                               size_t changed_cap, char *ignored, size_t ignored_cap)
{
    if (changed_cap)
        changed[0] = '\0';
    if (ignored_cap)
        ignored[0] = '\0';
    for (size_t k = 0; k < relay_nflags; k++) {
        const relay_flag *f = &relay_flags[k];
        if (f->section == NULL)
            continue;
        char *lp = (char *)live + f->off;
        const char *fp = (const char *)fresh + f->off;
        int differs = f->type == T_STR ? strcmp(lp, fp) != 0 : memcmp(lp, fp, f->len) != 0;
        if (f->reloadable) {
            /* The origin follows even when the value is the same. */
            live->origin[k] = fresh->origin[k];
            if (differs) {
                memcpy(lp, fp, f->len);
                append_word(changed, changed_cap, f->name);
            }
        } else if (differs) {
            append_word(ignored, ignored_cap, f->name);
        }
    }
}
