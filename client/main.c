/* alcove: the command-line client.  A table of subcommands; usage is
 * generated from it.  Global options (--home DIR, --json,
 * --passphrase-file FILE) may come before or after the subcommand. */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

static const command commands[] = {
    {"init", cmd_init, "--relay ADDRESS [--name NAME] [--no-passphrase]",
     "create your identity and local store", 
     "  --relay ADDRESS   your home relay (alcove://KEY@HOST:PORT), where your mailboxes live\n"
     "  --name NAME       the name others see when you invite them or accept their invite\n"
     "  --no-passphrase   do not protect the identity with a passphrase (unattended use)\n"},
    {"whoami", cmd_whoami, "", "show your name, relay and your half of every safety number", NULL},
    {"invite", cmd_invite, "--name LABEL [--notice TEXT] [--expires DURATION]",
     "make a one-time invite code (and QR code) for a new contact",
     "  --name LABEL      how you will see whoever accepts this invite\n"
     "  --notice TEXT     shown to them when they accept (office hours, crisis line)\n"
     "  --expires DUR     lifetime, e.g. 7d (default), 48h, 30m\n"},
    {"accept", cmd_accept, "CODE [--name LABEL]", "accept an invite code and introduce yourself",
     "  --name LABEL      how you will see the inviter (default: the name in the invite)\n"},
    {"contacts", cmd_contacts, "", "list contacts with unread counts, last check-in, verification", NULL},
    {"send", cmd_send, "CONTACT TEXT|-", "send a message (- reads it from standard input)", NULL},
    {"checkin", cmd_checkin,
     "CONTACT --mood N [--anxiety N] [--sleep HOURS] [--note TEXT] [--tag TAG]...",
     "send a check-in (mood and anxiety 0-10, sleep 0-24 hours)", NULL},
    {"fetch", cmd_fetch, "", "fetch, decrypt and store new messages from all mailboxes", NULL},
    {"listen", cmd_listen, "[--once-idle SECONDS]", "stay connected and print messages as they arrive",
     "  --once-idle S     exit after S seconds without a new message (for scripts)\n"},
    {"read", cmd_read, "[CONTACT] [--all]", "show messages (unread ones, or --all) and mark them read", NULL},
    {"checkins", cmd_checkins, "CONTACT", "a contact's check-ins as a table and a trend chart", NULL},
    {"verify", cmd_verify, "CONTACT [--mark-verified]",
     "show the safety number to compare in person; optionally mark it verified", NULL},
    {"forget", cmd_forget, "CONTACT", "delete a contact: its mailbox on the relay and the local thread",
     NULL},
    {"ask", cmd_ask, "CONTACT phq9|gad7|FILE", "send a questionnaire (PHQ-9, GAD-7 or your own file)",
     "  phq9, gad7        the published instruments, with their answer labels and scoring\n"
     "  FILE              your own questionnaire (format: docs/questionnaires.md)\n"},
    {"answer", cmd_answer, "[CONTACT] [--values N,N,...]",
     "answer the newest questionnaire waiting for you, one item at a time",
     "  --values LIST     all answers at once, comma separated (for scripts)\n"
     "Without --values, items are asked one by one (read from standard input when it is\n"
     "not a terminal, one answer per line).\n"},
    {"scores", cmd_scores, "CONTACT", "questionnaire totals and severity over time, table and chart",
     NULL},
    {"notice", cmd_notice, "set TEXT [--until TIME] | clear | show",
     "your office-hours / away / crisis notice, sent to every contact",
     "  set TEXT          send TEXT to every contact (they see it whenever they write)\n"
     "  --until TIME      it ends then: 2024-06-01, '2024-06-01 17:00', or 3d, 12h, 30m\n"
     "  clear             withdraw it everywhere\n"
     "  show              what you last set (the default)\n"},
    {"receipts", cmd_receipts, "CONTACT [--delivered on|off] [--read on|off]",
     "show or change the receipts you send to a contact",
     "  defaults: the inviter (therapist) sends 'delivered' receipts; nobody sends 'read'\n"
     "  receipts are ordinary padded, encrypted messages; none is sent for a receipt\n"},
    {"export", cmd_export, "CONTACT [--since DATE] [--format md|json] [--output FILE]",
     "export a conversation for the clinical record",
     "  --format md|json  Markdown (default) or JSON (schema: docs/export-schema.md)\n"
     "  --since DATE      only messages sent since DATE (2024-05-01)\n"
     "  --output FILE     write to FILE (mode 0600) instead of standard output\n"},
    {"audit", cmd_audit, "[verify]", "the local audit log; 'verify' checks its hash chain", NULL},
    {"backup", cmd_backup, "FILE [--backup-passphrase-file FILE]",
     "write one encrypted file with your identity, conversations and audit log",
     "  the backup passphrase comes from the terminal, --backup-passphrase-file or\n"
     "  $ALCOVE_BACKUP_PASSPHRASE\n"},
    {"restore", cmd_restore, "FILE [--home DIR] [--backup-passphrase-file FILE]",
     "recreate a home from a backup (into a new or empty directory)",
     "  a wrong passphrase or a damaged file writes nothing; restored conversations\n"
     "  re-key before they send again (see 'alcove reinvite')\n"},
    {"reinvite", cmd_reinvite, "CONTACT",
     "re-key a conversation with a fresh session (after a restore), no meeting needed", NULL},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const command *running;

const command *current_command(void) { return running; }

int usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "alcove: error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (running != NULL)
        fprintf(stderr, "usage: alcove %s %s\n", running->name, running->usage);
    return EXIT_USAGE;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: alcove [--home DIR] [--json] [--passphrase-file FILE] COMMAND [ARGS]\n\n"
                 "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\nglobal options:\n"
                 "  --home DIR              use DIR instead of $ALCOVE_HOME / ~/.local/share/alcove\n"
                 "  --json                  print data as JSON\n"
                 "  --passphrase-file FILE  read the passphrase from FILE (or set ALCOVE_PASSPHRASE)\n"
                 "\nRun 'alcove COMMAND --help' for a command's options.\n");
}

static void command_help(const command *c)
{
    printf("usage: alcove %s %s\n%s\n", c->name, c->usage, c->help);
    if (c->detail != NULL)
        printf("\n%s", c->detail);
}

int main(int argc, char **argv)
{
    app a;
    const char *home = NULL;
    char **rest;
    int nrest = 0;

    memset(&a, 0, sizeof a);
    a.now = app_wall_ms;
    if (sodium_init() < 0) {
        fprintf(stderr, "alcove: error: libsodium failed to initialise\n");
        return EXIT_FAIL;
    }
    rest = calloc((size_t)argc + 1, sizeof *rest);
    if (rest == NULL)
        return EXIT_FAIL;
    /* Pull global options out wherever they are; stop at "--". */
    int dashdash = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!dashdash && strcmp(s, "--") == 0) {
            dashdash = 1;
            rest[nrest++] = argv[i];
        } else if (!dashdash && strcmp(s, "--json") == 0) {
            a.json = 1;
        } else if (!dashdash && (strcmp(s, "--home") == 0 || strcmp(s, "--passphrase-file") == 0)) {
            if (i + 1 >= argc) {
                fprintf(stderr, "alcove: error: %s needs a value\n", s);
                free(rest);
                return EXIT_USAGE;
            }
            if (strcmp(s, "--home") == 0)
                home = argv[++i];
            else
                snprintf(a.passphrase_file, sizeof a.passphrase_file, "%s", argv[++i]);
        } else if (!dashdash && strncmp(s, "--home=", 7) == 0) {
            home = s + 7;
        } else if (!dashdash && strncmp(s, "--passphrase-file=", 18) == 0) {
            snprintf(a.passphrase_file, sizeof a.passphrase_file, "%s", s + 18);
        } else {
            rest[nrest++] = argv[i];
        }
    }
    int rc = EXIT_USAGE;
    if (nrest == 0) {
        usage(stderr);
        goto out;
    }
    if (strcmp(rest[0], "--help") == 0 || strcmp(rest[0], "-h") == 0 || strcmp(rest[0], "help") == 0) {
        if (nrest > 1) {
            for (size_t i = 0; i < NCOMMANDS; i++)
                if (strcmp(rest[1], commands[i].name) == 0) {
                    command_help(&commands[i]);
                    rc = EXIT_OK;
                    goto out;
                }
        }
        usage(stdout);
        rc = EXIT_OK;
        goto out;
    }
    if (strcmp(rest[0], "--version") == 0) {
        printf("alcove 0.1.0 (protocol 1)\n");
        rc = EXIT_OK;
        goto out;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(rest[0], commands[i].name) != 0)
            continue;
        running = &commands[i];
        for (int k = 1; k < nrest && strcmp(rest[k], "--") != 0; k++) {
            if (strcmp(rest[k], "--help") == 0 || strcmp(rest[k], "-h") == 0) {
                command_help(running);
                rc = EXIT_OK;
                goto out;
            }
        }
        if (app_resolve_home(&a, home) != 0) {
            rc = EXIT_FAIL;
            goto out;
        }
        rc = running->run(&a, nrest, rest);
        goto out;
    }
    fprintf(stderr, "alcove: error: unknown command '%s'\n", rest[0]);
    usage(stderr);
out:
    app_close(&a);
    free(rest);
    return rc;
}
