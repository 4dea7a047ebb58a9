/* relay/config_table: the one table of settings behind relay/config.c (flags,
 * validation, printing, reload) and relay/config_ini.c (the config file).
 * Internal to those two files. */
#ifndef ALCOVE_RELAY_CONFIG_TABLE_H
#define ALCOVE_RELAY_CONFIG_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"

typedef enum { T_STR, T_U32, T_U64, T_DUR, T_SIZE, T_BOOL, T_LEVEL } relay_ftype;

typedef struct relay_flag {
    const char *name;    /* --name on the command line, `name =` in the file */
    const char *section; /* INI section; NULL: a flag only, never in a file */
    const char *help;
    size_t off;
    size_t len;          /* size of the field (T_STR: buffer size) */
    relay_ftype type;
    unsigned groups;     /* RELAY_FLAGS_* that accept it as a flag */
    int reloadable;      /* SIGHUP applies it to a running relay */
} relay_flag;

extern const relay_flag relay_flags[];
extern const size_t relay_nflags;

/* Look up by name (exact); NULL if unknown. */
const relay_flag *relay_flag_find(const char *name, size_t len);

/* Set one setting from text.  `where` prefixes the error message
 * ("--ttl", or "FILE:LINE: ttl").  Returns 0 or ALCOVE_EINVAL. */
int relay_flag_set(relay_config *c, const relay_flag *f, const char *val,
                   const char *where, FILE *err);

#endif
