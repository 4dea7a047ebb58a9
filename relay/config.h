/* relay/config: every limit and setting of alcove-relay, with defaults, and
 * one table of settings that serves both `--name VALUE` flags and the INI
 * config file (`name = value`, optionally under the setting's [section]).
 *
 * Precedence: flags > config file > defaults.  Durations accept ms/s/m/h/d
 * suffixes (plain numbers are milliseconds); sizes accept k/M/G suffixes
 * (binary).  The file is parsed with inih; every error names the file, the
 * line and the key. */
#ifndef ALCOVE_RELAY_CONFIG_H
#define ALCOVE_RELAY_CONFIG_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

/* A FetchResult or Push must fit one transport message (65519 bytes of
 * plaintext) with its framing fields, so a blob can never exceed this. */
#define RELAY_BLOB_CAP 65000u
#define RELAY_FETCH_CAP 1024u

#define RELAY_CONFIG_MAX_KEYS 40

typedef struct relay_config {
    char config_file[PATH_MAX]; /* --config; empty: none (flag only) */
    int init_if_missing;        /* init --if-missing (flag only) */

    char data_dir[PATH_MAX];
    char listen[300];       /* HOST:PORT or [V6]:PORT; port 0 picks one */
    char public_addr[300];  /* init: HOST:PORT printed in the address */
    char log_file[PATH_MAX]; /* empty: stderr */
    int log_level;
    int log_addresses;
    char admin_listen[300]; /* empty: no admin listener */
    int admin_allow_remote; /* admin_listen may be a non-loopback address */

    uint32_t max_blob_bytes;
    uint64_t message_ttl_ms;
    uint64_t mailbox_idle_ms;      /* 0: mailboxes never expire */
    uint32_t max_messages_per_mailbox; /* 0: no limit */
    uint64_t max_bytes_per_mailbox;    /* 0: no limit */
    uint32_t max_connections;
    uint64_t handshake_timeout_ms;
    uint64_t idle_timeout_ms;
    uint32_t rate_per_sec;         /* requests per connection; 0: no limit */
    uint32_t rate_burst;
    uint64_t write_queue_bytes;    /* per connection: stop reading above */
    uint32_t fetch_default;        /* messages per Fetch when max = 0 */
    uint64_t max_store_bytes;      /* LMDB map cap; 0: no cap */
    uint32_t batch_max_ops;
    uint64_t batch_max_bytes;
    uint64_t journal_bytes;
    uint64_t expiry_interval_ms;   /* how often TTL and idle expiry run */

    /* Where each setting came from, by table index: 0 default, -1 a flag,
     * N > 0 line N of config_file.  For messages and check-config. */
    int origin[RELAY_CONFIG_MAX_KEYS];
} relay_config;

/* Fill with defaults (data ./alcove-data, listen 127.0.0.1:7700, ...). */
void relay_config_defaults(relay_config *c);

/* Flag groups: which subcommand accepts which flags. */
#define RELAY_FLAGS_DATA 1u   /* data, public */
#define RELAY_FLAGS_RUN 2u    /* everything `run` uses */
#define RELAY_FLAGS_INIT 4u   /* data, public, if-missing */
#define RELAY_FLAGS_CONFIG 8u /* --config FILE */
#define RELAY_FLAGS_ALL 15u

/* Parse flags argv[0..argc) (after the subcommand).  Unknown flags or bad
 * values print `alcove-relay: error: ...` to err and return ALCOVE_EINVAL.
 * `allowed` is a bitmask of flag groups valid for the subcommand. */
int relay_config_parse(relay_config *c, int argc, char **argv, unsigned allowed,
                       FILE *err);
/* The same, also accepting up to maxpos arguments that are not flags: they
 * are stored in pos[0..*npos) (pointers into argv). */
int relay_config_parse_args(relay_config *c, int argc, char **argv, unsigned allowed,
                            char **pos, int maxpos, int *npos, FILE *err);

/* Apply the INI file at `path` on top of c.  Every key of the table may
 * appear (whatever the subcommand), either before the first [section] or in
 * its own section.  An unreadable file, a syntax error, an unknown section or
 * key, a key in the wrong section or a bad value prints one error naming
 * path, line and key to err and returns ALCOVE_EINVAL (ALCOVE_EIO when the
 * file cannot be opened); c may then be partly updated. */
int relay_config_load_file(relay_config *c, const char *path, FILE *err);

/* The whole recipe: defaults, then the file named by --config (if any), then
 * the flags, then relay_config_validate.  Positional arguments as in
 * relay_config_parse_args (pos may be NULL when maxpos is 0).  Returns 0,
 * ALCOVE_EINVAL or ALCOVE_EIO with a message on err. */
int relay_config_build(relay_config *c, int argc, char **argv, unsigned allowed,
                       char **pos, int maxpos, int *npos, FILE *err);

/* Check cross-field rules and clamp to hard caps.  Returns 0 or
 * ALCOVE_EINVAL with a message on err. */
int relay_config_validate(relay_config *c, FILE *err);

/* Print the flags valid for `allowed`, one per line with help. */
void relay_config_usage(unsigned allowed, FILE *out);

/* Print every file setting of c as a valid INI file, grouped by section,
 * values in canonical form (21d, 64M, yes). */
void relay_config_print(const relay_config *c, FILE *out);

/* SIGHUP: copy the settings that can change while running (limits,
 * timeouts, log level) from `fresh` into `live`.  Keys whose values differ
 * are appended, space-separated, to `changed`; keys that differ but need a
 * restart (data, listen, log-file, admin, store and batch settings) are
 * appended to `ignored` and keep their live value.  Both are NUL-terminated
 * and truncated to their capacity. */
void relay_config_apply_reload(relay_config *live, const relay_config *fresh,
                               char *changed, size_t changed_cap, char *ignored,
                               size_t ignored_cap);

/* Is `host` (as parsed by alcove_hostport_parse) a loopback address? */
int relay_config_is_loopback(const char *host);

#endif
