/* relay/log: one line per event, `ts=... level=info event=name key=value`.
 *
 * Goes to stderr, or to a file (reopened on SIGHUP for log rotation).  At the
 * default level nothing logged names an address, a mailbox id, a key or blob
 * bytes; callers must keep it that way (the integration tests grep for ids). */
#ifndef ALCOVE_RELAY_LOG_H
#define ALCOVE_RELAY_LOG_H

#include <stdio.h>

enum { RLOG_ERROR = 0, RLOG_WARN = 1, RLOG_INFO = 2, RLOG_DEBUG = 3 };

typedef struct relay_log {
    FILE *fp;
    char *path; /* NULL: stderr */
    int level;
} relay_log;

/* Open the log: path NULL means stderr.  Returns 0 or ALCOVE_EIO. */
int relay_log_open(relay_log *lg, const char *path, int level);
/* Reopen the file (no-op for stderr).  Returns 0 or ALCOVE_EIO; on failure
 * the old stream is kept. */
int relay_log_reopen(relay_log *lg);
void relay_log_close(relay_log *lg);
/* Parse "error" | "warn" | "info" | "debug"; -1 if unknown. */
int relay_log_level_parse(const char *s);

/* Log `event` with printf-style key=value text after it (may be NULL). */
void relay_logf(relay_log *lg, int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
