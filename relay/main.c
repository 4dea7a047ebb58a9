/* alcove-relay: command-line entry.  A table of subcommands; usage is
 * generated from it.  Only this file turns errors into exit codes. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "address.h"
#include "commands.h"
#include "config.h"
#include "err.h"
#include "keyfile.h"
#include "log.h"
#include "server.h"

typedef struct subcommand {
    const char *name;
    /* npos/pos: the positional arguments (at most maxpos). */
    int (*run)(relay_config *cfg, int npos, char **pos);
    unsigned flags;
    int maxpos;
    const char *args;
    const char *help;
} subcommand;

static int cmd_init(relay_config *cfg, int npos, char **pos);
static int cmd_run(relay_config *cfg, int npos, char **pos);
static int cmd_address(relay_config *cfg, int npos, char **pos);
static int cmd_help(relay_config *cfg, int npos, char **pos);

#define CF RELAY_FLAGS_CONFIG
static const subcommand commands[] = {
    {"init", cmd_init, RELAY_FLAGS_INIT | CF, 0,
     "[--config FILE] [--data DIR] [--public HOST:PORT] [--if-missing]",
     "create the data directory and the relay key; print the relay address"},
    {"run", cmd_run, RELAY_FLAGS_RUN | CF, 0,
     "[--config FILE] [--data DIR] [--listen HOST:PORT] [limits...]",
     "serve clients until SIGTERM (which drains and exits 0); SIGHUP reloads"},
    {"address", cmd_address, RELAY_FLAGS_DATA | CF, 0, "[--config FILE] [--data DIR]",
     "print the relay address again"},
    {"check-config", relay_cmd_check_config, RELAY_FLAGS_ALL & ~RELAY_FLAGS_INIT, 0,
     "[--config FILE] [settings...]", "validate the settings and print the effective ones"},
    {"stats", relay_cmd_stats, RELAY_FLAGS_DATA | CF, 0, "[--config FILE] [--data DIR]",
     "print the store's figures (read-only; safe while the relay runs)"},
    {"verify", relay_cmd_verify, RELAY_FLAGS_DATA | CF, 0, "[--config FILE] [--data DIR]",
     "walk the store and the key and report their health (exit 1 if damaged)"},
    {"backup", relay_cmd_backup, RELAY_FLAGS_DATA | CF, 1, "[--config FILE] [--data DIR] DEST",
     "copy the data directory to the new directory DEST (safe while the relay runs)"},
    {"help", cmd_help, 0, 0, "[COMMAND]", "show this help, or a command's options"},
};
#undef CF
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: alcove-relay COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-13s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\nRun 'alcove-relay help COMMAND' for its options.\n");
}

static void command_usage(const subcommand *c, FILE *out)
{
    fprintf(out, "usage: alcove-relay %s %s\n%s\n", c->name, c->args, c->help);
    if (c->flags) {
        fprintf(out, "\noptions:\n");
        relay_config_usage(c->flags, out);
    }
}

static int print_address(const relay_config *cfg, const uint8_t pub[32])
{
    char hostport[300], addr[ALCOVE_ADDR_STR_MAX];
    const char *why = NULL;
    alcove_relay_addr a;
    if (cfg->public_addr[0] != '\0')
        snprintf(hostport, sizeof hostport, "%s", cfg->public_addr);
    else if (relay_public_read(cfg->data_dir, hostport, sizeof hostport) != 0)
        snprintf(hostport, sizeof hostport, "%s", cfg->listen);
    memcpy(a.key, pub, 32);
    if (alcove_hostport_parse(hostport, a.host, sizeof a.host, &a.host_is_ipv6, &a.port, 0,
                              &why) != 0) {
        fprintf(stderr, "alcove-relay: error: bad public address '%s': %s\n", hostport, why);
        return 1;
    }
    if (alcove_addr_format(&a, addr, sizeof addr) != 0) {
        fprintf(stderr, "alcove-relay: error: cannot format the address\n");
        return 1;
    }
    printf("%s\n", addr);
    return 0;
}

static int cmd_init(relay_config *cfg, int npos, char **pos)
{
    uint8_t pub[32];
    (void)npos;
    (void)pos;
    if (cfg->public_addr[0] != '\0') {
        char host[300];
        int v6;
        uint16_t port;
        const char *why = NULL;
        if (alcove_hostport_parse(cfg->public_addr, host, sizeof host, &v6, &port, 0, &why) != 0) {
            fprintf(stderr, "alcove-relay: error: bad --public '%s': %s\n", cfg->public_addr, why);
            return 2;
        }
    }
    int rc = relay_key_create(cfg->data_dir, pub);
    if (rc == ALCOVE_EEXIST && cfg->init_if_missing)
        return cmd_address(cfg, 0, NULL);
    if (rc == ALCOVE_EEXIST) {
        fprintf(stderr, "alcove-relay: error: %s already holds a relay key\n", cfg->data_dir);
        fprintf(stderr, "alcove-relay: hint: 'alcove-relay address --data %s' prints its address\n",
                cfg->data_dir);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "alcove-relay: error: cannot create the relay key in %s: %s\n",
                cfg->data_dir, strerror(errno));
        return 1;
    }
    if (cfg->public_addr[0] != '\0' && relay_public_write(cfg->data_dir, cfg->public_addr) != 0) {
        fprintf(stderr, "alcove-relay: error: cannot write the public address\n");
        return 1;
    }
    return print_address(cfg, pub);
}

static int cmd_address(relay_config *cfg, int npos, char **pos)
{
    uint8_t *sk = NULL, pub[32];
    (void)npos;
    (void)pos;
    int rc = relay_key_load(cfg->data_dir, &sk, pub);
    if (sk != NULL)
        sodium_free(sk);
    if (rc != 0) {
        fprintf(stderr, "alcove-relay: error: no usable relay key in %s: %s\n", cfg->data_dir,
                rc == ALCOVE_ENOTFOUND ? "not initialised" : alcove_strerror(rc));
        fprintf(stderr, "alcove-relay: hint: run 'alcove-relay init --data %s'\n", cfg->data_dir);
        return 1;
    }
    return print_address(cfg, pub);
}

/* What SIGHUP needs to build the settings again: the same flags. */
typedef struct reload_args {
    int argc;
    char **argv;
    unsigned allowed;
} reload_args;
static reload_args run_args;

static int rebuild(void *ctx, relay_config *fresh, FILE *err)
{
    const reload_args *a = ctx;
    return relay_config_build(fresh, a->argc, a->argv, a->allowed, NULL, 0, NULL, err);
}

static int cmd_run(relay_config *cfg, int npos, char **pos)
{
    relay_log log;
    (void)npos;
    (void)pos;
    if (relay_log_open(&log, cfg->log_file[0] ? cfg->log_file : NULL, cfg->log_level) != 0) {
        fprintf(stderr, "alcove-relay: error: cannot open log file %s\n", cfg->log_file);
        return 1;
    }
    relay_reload reload = {rebuild, &run_args};
    int rc = relay_server_run(cfg, &log, stdout, &reload);
    relay_log_close(&log);
    return rc;
}

static int cmd_help(relay_config *cfg, int argc, char **argv)
{
    (void)cfg;
    if (argc > 0) {
        for (size_t i = 0; i < NCOMMANDS; i++) {
            if (strcmp(argv[0], commands[i].name) == 0) {
                command_usage(&commands[i], stdout);
                return 0;
            }
        }
        fprintf(stderr, "alcove-relay: error: unknown command '%s'\n", argv[0]);
        return 2;
    }
    usage(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "alcove-relay: error: libsodium failed to initialise\n");
        return 1;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        return cmd_help(NULL, 0, NULL);
    if (strcmp(argv[1], "--version") == 0) {
        printf("alcove-relay %s (protocol 1)\n", ALCOVE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const subcommand *c = &commands[i];
        if (strcmp(argv[1], c->name) != 0)
            continue;
        if (c->run == cmd_help)
            return cmd_help(NULL, argc - 2, argv + 2);
        for (int k = 2; k < argc; k++) {
            if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
                command_usage(c, stdout);
                return 0;
            }
        }
        static relay_config cfg; /* large: keep it off the stack */
        char *pos[4];
        int npos = 0;
        if (relay_config_build(&cfg, argc - 2, argv + 2, c->flags, pos, c->maxpos, &npos,
                               stderr) != 0)
            return 2;
        run_args.argc = argc - 2;
        run_args.argv = argv + 2;
        run_args.allowed = c->flags;
        return c->run(&cfg, npos, pos);
    }
    fprintf(stderr, "alcove-relay: error: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
