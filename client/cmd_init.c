/* alcove init: identity, keystore and local store in a new home. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "address.h"
#include "commands.h"
#include "err.h"
#include "invite.h"
#include "net.h"
#include "render.h"
#include <jansson.h>

/* mkdir -p with 0700 for the last component (parents as the umask says). */
static int make_home(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -1;
    return chmod(buf, 0700);
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ALCOVE_INVITE_NAME_MAX)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

int cmd_init(app *a, int argc, char **argv)
{
    static const struct option opts[] = {
        {"relay", required_argument, NULL, 'r'},
        {"name", required_argument, NULL, 'n'},
        {"no-passphrase", no_argument, NULL, 'N'},
        {NULL, 0, NULL, 0},
    };
    const char *relay = NULL, *name = NULL;
    int no_pass = 0, c;
    char path[PATH_MAX + 32], storedir[PATH_MAX + 32], marker[PATH_MAX + 32];
    char *pass = NULL;
    size_t plen = 0;
    alcove_identity *id = NULL;
    cstore *st = NULL;
    cstore_txn *t = NULL;
    int rc = EXIT_FAIL;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r': relay = optarg; break;
        case 'n': name = optarg; break;
        case 'N': no_pass = 1; break;
        default: return usage_error("unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (relay == NULL)
        return usage_error("--relay ADDRESS is required (ask your therapist or the relay operator)");
    alcove_relay_addr ra;
    const char *why = NULL;
    if (alcove_addr_parse(relay, &ra, &why) != 0) {
        app_error("bad relay address '%s': %s", relay, why);
        app_hint("a relay address looks like alcove://KEY@relay.example.org:7700");
        return EXIT_USAGE;
    }
    if (name != NULL && !valid_name(name))
        return usage_error("--name must be 1-%u printable characters", ALCOVE_INVITE_NAME_MAX);

    app_path(a, "identity", path, sizeof path);
    app_path(a, "store", storedir, sizeof storedir);
    app_path(a, "no-passphrase", marker, sizeof marker);
    if (access(path, F_OK) == 0) {
        app_error("%s already holds an alcove identity", a->home);
        app_hint("use another --home, or remove the old one if you really mean to start over");
        return EXIT_FAIL;
    }
    if (make_home(a->home) != 0) {
        app_error("cannot create %s: %s", a->home, strerror(errno));
        return EXIT_FAIL;
    }
    if (alcove_identity_generate(&id) != 0) {
        app_error("cannot generate keys");
        goto out;
    }
    uint64_t ops = ALCOVE_IDENTITY_OPSLIMIT_DEFAULT, mem = ALCOVE_IDENTITY_MEMLIMIT_DEFAULT;
    if (no_pass) {
        /* An empty passphrase protects nothing; key stretching it would
         * only slow every command down. */
        ops = crypto_pwhash_OPSLIMIT_MIN;
        mem = crypto_pwhash_MEMLIMIT_MIN;
        app_warn("no passphrase: anyone who can read %s can read your messages", a->home);
    } else if (app_passphrase(a, "New passphrase: ", 1, &pass, &plen) != 0) {
        goto out;
    }
    int e = alcove_identity_save(id, path, no_pass ? "" : pass, no_pass ? 0 : plen, ops, mem, 0);
    if (e != 0) {
        app_error("cannot write %s: %s", path, alcove_strerror(e));
        goto out;
    }
    if (no_pass) {
        int fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || close(fd) != 0) {
            app_error("cannot write %s", marker);
            goto out;
        }
    }
    if (cstore_open(&st, storedir, alcove_identity_store_key(id), &why) != 0) {
        app_error("cannot create the local store %s: %s", storedir, why);
        goto out;
    }
    Alcove__Local__Meta meta = ALCOVE__LOCAL__META__INIT;
    meta.has_version = 1;
    meta.version = 1;
    meta.display_name = (char *)(uintptr_t)(name ? name : "");
    meta.relay_address = (char *)(uintptr_t)relay;
    meta.has_created_at = 1;
    meta.created_at = a->now();
    if ((e = cstore_begin(st, 1, &t)) != 0 || (e = app_save_meta(t, &meta)) != 0 ||
        (e = cstore_commit(t)) != 0) {
        t = NULL;
        app_error("cannot write the local store: %s", alcove_strerror(e));
        goto out;
    }
    t = NULL;
    if (a->json) {
        json_t *j = json_pack("{s:s, s:s, s:s}", "home", a->home, "relay", relay, "name",
                              name ? name : "");
        if (j == NULL || render_json_dump(stdout, j) != 0)
            app_error("cannot print JSON");
        json_decref(j);
    } else {
        printf("Created your alcove identity in %s\n", a->home);
        printf("Home relay: %s\n", relay);
        if (name != NULL)
            printf("Your name (as others see it): %s\n", name);
        printf("Next: 'alcove invite --name LABEL' (therapist) or 'alcove accept CODE' (client).\n");
    }
    rc = EXIT_OK;
out:
    cstore_abort(t);
    cstore_close(st);
    alcove_identity_free(id);
    if (pass != NULL)
        sodium_free(pass);
    return rc;
}
