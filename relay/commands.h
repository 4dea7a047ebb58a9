/* relay/commands: the operator subcommands of alcove-relay beyond init, run
 * and address (which live in main.c).  Each takes the effective settings and
 * the positional arguments, prints to stdout/stderr and returns the process
 * exit code: 0 ok, 1 failure, 2 usage. */
#ifndef ALCOVE_RELAY_COMMANDS_H
#define ALCOVE_RELAY_COMMANDS_H

#include "config.h"

/* check-config: print the effective settings (they are valid, or the
 * caller would have stopped with exit code 2). */
int relay_cmd_check_config(relay_config *cfg, int npos, char **pos);
/* stats: store figures read from LMDB (read-only; works while running). */
int relay_cmd_stats(relay_config *cfg, int npos, char **pos);
/* verify: walk the store and the key; exit 1 if anything is broken. */
int relay_cmd_verify(relay_config *cfg, int npos, char **pos);
/* backup DEST: compacted live copy of the data directory into DEST. */
int relay_cmd_backup(relay_config *cfg, int npos, char **pos);

#endif
