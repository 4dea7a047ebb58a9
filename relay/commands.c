#include "commands.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "keyfile.h"
#include "storetool.h"

int relay_cmd_check_config(relay_config *cfg, int npos, char **pos)
{
    (void)npos;
    (void)pos;
    relay_config_print(cfg, stdout);
    fprintf(stderr, "alcove-relay: configuration OK%s%s\n",
            cfg->config_file[0] ? ": " : " (defaults and flags only)", cfg->config_file);
    return 0;
}

static void no_store(const relay_config *cfg)
{
    fprintf(stderr, "alcove-relay: error: no store in %s\n", cfg->data_dir);
    fprintf(stderr, "alcove-relay: hint: the store is created by the first 'alcove-relay run'; "
                    "check --data (or 'data' in the config file)\n");
}

int relay_cmd_stats(relay_config *cfg, int npos, char **pos)
{
    relay_store_report r;
    (void)npos;
    (void)pos;
    int rc = relay_store_scan(cfg->data_dir, &r, NULL, stderr);
    if (rc == ALCOVE_ENOTFOUND)
        no_store(cfg);
    if (rc != 0)
        return 1;
    relay_store_report_print(&r, cfg->data_dir, stdout);
    return 0;
}

/* Key and permissions: errors and warnings like the store walk's. */
static void check_files(const relay_config *cfg, uint64_t *errors, uint64_t *warnings)
{
    uint8_t *sk = NULL, pub[32];
    char path[PATH_MAX + 32];
    struct stat st;
    int rc = relay_key_load(cfg->data_dir, &sk, pub);
    if (sk != NULL)
        sodium_free(sk);
    if (rc != 0) {
        printf("error: relay key %s/%s: %s\n", cfg->data_dir, RELAY_KEYFILE_NAME,
               rc == ALCOVE_ENOTFOUND ? "missing" : alcove_strerror(rc));
        (*errors)++;
    }
    if (stat(cfg->data_dir, &st) == 0 && (st.st_mode & 077) != 0) {
        printf("warning: %s is accessible to other users (mode %03o; want 0700)\n",
               cfg->data_dir, (unsigned)(st.st_mode & 0777));
        (*warnings)++;
    }
    snprintf(path, sizeof path, "%s/%s", cfg->data_dir, RELAY_KEYFILE_NAME);
    if (stat(path, &st) == 0 && (st.st_mode & 077) != 0) {
        printf("warning: %s is readable by other users (mode %03o; want 0600)\n", path,
               (unsigned)(st.st_mode & 0777));
        (*warnings)++;
    }
}

int relay_cmd_verify(relay_config *cfg, int npos, char **pos)
{
    relay_store_report r;
    uint64_t ferr = 0, fwarn = 0;
    (void)npos;
    (void)pos;
    check_files(cfg, &ferr, &fwarn);
    fflush(stdout);
    int rc = relay_store_scan(cfg->data_dir, &r, stdout, stderr);
    if (rc == ALCOVE_ENOTFOUND)
        no_store(cfg);
    if (rc != 0)
        return 1;
    r.errors += ferr;
    r.warnings += fwarn;
    printf("verify: %s: %llu mailboxes, %llu messages (%llu bytes), %llu errors, %llu warnings\n",
           r.errors ? "BROKEN" : "ok", (unsigned long long)r.mailboxes,
           (unsigned long long)r.messages, (unsigned long long)r.message_bytes,
           (unsigned long long)r.errors, (unsigned long long)r.warnings);
    if (r.errors) {
        fprintf(stderr, "alcove-relay: error: the store in %s is damaged\n", cfg->data_dir);
        fprintf(stderr, "alcove-relay: hint: stop the relay and restore the latest good backup "
                        "(see docs/operating.md, 'Backup and restore')\n");
    }
    return r.errors ? 1 : 0;
}

int relay_cmd_backup(relay_config *cfg, int npos, char **pos)
{
    relay_store_report r;
    if (npos != 1) {
        fprintf(stderr, "alcove-relay: error: backup needs exactly one DEST directory\n");
        fprintf(stderr, "usage: alcove-relay backup [--data DIR] DEST\n");
        return 2;
    }
    int rc = relay_store_backup(cfg->data_dir, pos[0], &r, stderr);
    if (rc != 0)
        return 1;
    printf("backup: %s: %llu mailboxes, %llu messages (%llu bytes); store file %llu bytes\n",
           pos[0], (unsigned long long)r.mailboxes, (unsigned long long)r.messages,
           (unsigned long long)r.message_bytes, (unsigned long long)r.file_bytes);
    return 0;
}
