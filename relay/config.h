/* relay/config: every limit and setting of alcove-relay, with defaults, and
 * a table-driven parser for `--name VALUE` flags (the same table will serve a
 * config file).  Durations accept ms/s/m/h/d suffixes (plain numbers are
 * milliseconds); sizes accept k/M/G suffixes (binary). */
#ifndef ALCOVE_RELAY_CONFIG_H
#define ALCOVE_RELAY_CONFIG_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

/* A FetchResult or Push must fit one transport message (65519 bytes of
 * plaintext) with its framing fields, so a blob can never exceed this. */
#define RELAY_BLOB_CAP 65000u
#define RELAY_FETCH_CAP 1024u

typedef struct relay_config {
    char data_dir[PATH_MAX];
    char listen[300];       /* HOST:PORT or [V6]:PORT; port 0 picks one */
    char public_addr[300];  /* init: HOST:PORT printed in the address */
    char log_file[PATH_MAX]; /* empty: stderr */
    int log_level;
    int log_addresses;

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
    uint64_t expiry_interval_ms;   /* how often TTL and idle expiry run */
} relay_config;

/* Fill with defaults (data ./alcove-data, listen 127.0.0.1:7700, ...). */
void relay_config_defaults(relay_config *c);

/* Parse flags argv[0..argc) (after the subcommand).  Unknown flags or bad
 * values print `alcove-relay: error: ...` to err and return ALCOVE_EINVAL.
 * `allowed` is a bitmask of flag groups valid for the subcommand. */
#define RELAY_FLAGS_DATA 1u
#define RELAY_FLAGS_RUN 2u
#define RELAY_FLAGS_INIT 4u
int relay_config_parse(relay_config *c, int argc, char **argv, unsigned allowed,
                       FILE *err);

/* Check cross-field rules and clamp to hard caps.  Returns 0 or
 * ALCOVE_EINVAL with a message on err. */
int relay_config_validate(relay_config *c, FILE *err);

/* Print the flags valid for `allowed`, one per line with default and help. */
void relay_config_usage(unsigned allowed, FILE *out);

#endif
