/* whoami, verify: your identity and the safety numbers of your contacts. */
#include <getopt.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "audit.h"
#include "err.h"
#include "render.h"
#include "safety.h"

/* --- whoami ------------------------------------------------------------------ */

int cmd_whoami(app *a, int argc, char **argv)
{
    static const struct option opts[] = {{NULL, 0, NULL, 0}};
    char half[ALCOVE_SAFETY_HALF_BUF], shown[ALCOVE_SAFETY_HALF_DISPLAY_BUF];
    json_t *j = NULL;
    int rc = parse_flags(argc, argv, opts, NULL);
    if (rc != 0)
        return rc;
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (app_open(a) != 0)
        return EXIT_FAIL;
    if ((rc = alcove_safety_half(alcove_identity_sig_pub(a->id), alcove_identity_dh_pub(a->id),
                                 half)) != 0 ||
        (rc = alcove_safety_display(half, shown, sizeof shown)) != 0) {
        app_error("cannot compute your safety number: %s", alcove_strerror(rc));
        return EXIT_FAIL;
    }
    const char *name = a->meta->display_name, *relay = a->meta->relay_address;
    if (a->json) {
        render_json_secure();
        j = json_object();
        int bad = j == NULL || json_object_set_new(j, "name", render_json_str(name)) != 0 ||
                  json_object_set_new(j, "relay", render_json_str(relay)) != 0 ||
                  json_object_set_new(j, "safety_half", json_string(half)) != 0 ||
                  render_json_dump(stdout, j) != 0;
        json_decref(j);
        if (bad) {
            app_error("cannot write the JSON output");
            return EXIT_FAIL;
        }
        return render_flush(stdout);
    }
    fputs("name:    ", stdout);
    render_str(stdout, name != NULL && *name ? name : "(not set)", 0);
    fputs("\nrelay:   ", stdout);
    render_str(stdout, relay != NULL && *relay ? relay : "(not set)", 0);
    printf("\nsafety:  %s\n", shown);
    printf("(your half of every safety number; 'alcove verify CONTACT' shows the whole one)\n");
    return render_flush(stdout);
}

/* The label as one shell word (quoted when needed), sanitized. */
static void print_shell_word(const char *s)
{
    int plain = *s != '\0' && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789._-+@,:/=") == strlen(s);
    if (plain) {
        render_str(stdout, s, 0);
        return;
    }
    fputc('\'', stdout);
    for (const char *p = s; *p; p++) {
        const char *q = strchr(p, '\'');
        size_t len = q != NULL ? (size_t)(q - p) : strlen(p);
        char *part = strndup(p, len);
        render_str(stdout, part != NULL ? part : "?", 0);
        free(part);
        if (q == NULL)
            break;
        fputs("'\\''", stdout);
        p = q;
    }
    fputc('\'', stdout);
}

int cmd_verify(app *a, int argc, char **argv)
{
    static const struct option opts[] = {{"mark-verified", no_argument, NULL, 0},
                                         {NULL, 0, NULL, 0}};
    int flags[1] = {0};
    char digits[ALCOVE_SAFETY_BUF], shown[ALCOVE_SAFETY_DISPLAY_BUF];
    Alcove__Local__Contact *c = NULL;
    cstore_txn *t = NULL;
    json_t *j = NULL;
    int rc = parse_flags(argc, argv, opts, flags), err;
    if (rc != 0)
        return rc;
    if (optind >= argc)
        return usage_error("which contact? name one");
    if (argc - optind > 1)
        return usage_error("unexpected argument '%s'", argv[optind + 1]);
    int mark = flags[0];
    if (app_open(a) != 0)
        return EXIT_FAIL;
    rc = EXIT_FAIL;
    if ((err = cstore_begin(a->store, mark, &t)) != 0) {
        app_error("cannot read the local store: %s", alcove_strerror(err));
        goto out;
    }
    if (render_find_contact(t, argv[optind], &c) != 0)
        goto out;
    if (c->state == ALCOVE__LOCAL__CONTACT__STATE__PENDING || !c->has_sig_pub ||
        c->sig_pub.len != ALCOVE_SIG_PUB_BYTES || !c->has_dh_pub ||
        c->dh_pub.len != ALCOVE_DH_BYTES) {
        app_error("%s has not accepted the invite yet", c->label ? c->label : argv[optind]);
        app_hint("there is no safety number until they accept; 'alcove fetch' picks up their reply");
        goto out;
    }
    if ((err = alcove_safety_number(alcove_identity_sig_pub(a->id), alcove_identity_dh_pub(a->id),
                                    c->sig_pub.data, c->dh_pub.data, digits)) != 0 ||
        (err = alcove_safety_display(digits, shown, sizeof shown)) != 0) {
        app_error("cannot compute the safety number: %s", alcove_strerror(err));
        goto out;
    }
    int was = c->verified;
    if (mark && !was) {
        c->verified = 1;
        c->has_verified = 1;
        if ((err = contact_save(t, c)) == 0 &&
            (err = audit_append(t, a->now(), AUDIT_CONTACT_VERIFIED, c->id.data)) == 0) {
            err = cstore_commit(t); /* frees t, also on failure */
            t = NULL;
        }
        if (err != 0) {
            app_error("cannot save the contact: %s", alcove_strerror(err));
            goto out;
        }
    }
    if (a->json) {
        render_json_secure();
        int bad = (j = json_object()) == NULL ||
                  json_object_set_new(j, "contact", render_json_str(c->label)) != 0 ||
                  json_object_set_new(j, "safety_number", json_string(digits)) != 0 ||
                  json_object_set_new(j, "verified", json_boolean(c->verified)) != 0 ||
                  render_json_dump(stdout, j) != 0;
        if (bad) {
            app_error("cannot write the JSON output");
            goto out;
        }
    } else if (mark) {
        render_str(stdout, c->label, 40);
        printf(was ? " was already marked as verified (%s)\n" : " is now marked as verified (%s)\n",
               shown);
    } else {
        fputs("Safety number with ", stdout);
        render_str(stdout, c->label, 40);
        printf(c->verified ? " (verified):\n\n  %s\n\n" : ":\n\n  %s\n\n", shown);
        if ((err = render_qr(stdout, digits)) != 0) {
            app_error("cannot draw the QR code: %s", alcove_strerror(err));
            goto out;
        }
        fputs("\nCompare these digits with ", stdout);
        render_str(stdout, c->label, 40);
        fputs(" in person or on a call you trust.\n", stdout);
        if (!c->verified) {
            fputs("If they match, run: alcove verify ", stdout);
            print_shell_word(c->label ? c->label : argv[optind]);
            fputs(" --mark-verified\n", stdout);
        }
    }
    rc = render_flush(stdout);
out:
    cstore_abort(t);
    json_decref(j);
    if (c != NULL)
        contact_free(c);
    sodium_memzero(digits, sizeof digits);
    sodium_memzero(shown, sizeof shown);
    return rc;
}
