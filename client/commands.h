/* client/commands: one handler per `alcove` subcommand.  Each receives the
 * arguments after the subcommand name (global options already removed),
 * parses its own options, and returns the exit code (0 ok, 1 failure, 2
 * usage).  The table in main.c generates the usage text. */
#ifndef ALCOVE_CLIENT_COMMANDS_H
#define ALCOVE_CLIENT_COMMANDS_H

#include "app.h"

typedef struct command {
    const char *name;
    int (*run)(app *a, int argc, char **argv);
    const char *usage;  /* arguments and options */
    const char *help;   /* one line */
    const char *detail; /* more lines for `alcove COMMAND --help`, or NULL */
} command;

int cmd_init(app *a, int argc, char **argv);
int cmd_whoami(app *a, int argc, char **argv);
int cmd_invite(app *a, int argc, char **argv);
int cmd_accept(app *a, int argc, char **argv);
int cmd_contacts(app *a, int argc, char **argv);
int cmd_send(app *a, int argc, char **argv);
int cmd_checkin(app *a, int argc, char **argv);
int cmd_fetch(app *a, int argc, char **argv);
int cmd_listen(app *a, int argc, char **argv);
int cmd_read(app *a, int argc, char **argv);
int cmd_checkins(app *a, int argc, char **argv);
int cmd_verify(app *a, int argc, char **argv);
int cmd_forget(app *a, int argc, char **argv);
int cmd_ask(app *a, int argc, char **argv);
int cmd_answer(app *a, int argc, char **argv);
int cmd_scores(app *a, int argc, char **argv);
int cmd_notice(app *a, int argc, char **argv);
int cmd_receipts(app *a, int argc, char **argv);
int cmd_export(app *a, int argc, char **argv);
int cmd_audit(app *a, int argc, char **argv);
int cmd_backup(app *a, int argc, char **argv);
int cmd_restore(app *a, int argc, char **argv);
int cmd_reinvite(app *a, int argc, char **argv);

/* Parse argv (argv[0] is the command) against opts; flags[i] is set for
 * opts[i] (no option takes a value).  Leaves the positional arguments in
 * argv[optind..argc).  Returns 0 or the usage error's exit code. */
struct option;
int parse_flags(int argc, char **argv, const struct option *opts, int *flags);

/* The command currently running (for usage errors). */
const command *current_command(void);
/* Print `alcove: error: MSG` and the command's usage line; returns 2. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
