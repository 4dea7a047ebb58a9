#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "err.h"

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int relay_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int relay_log_open(relay_log *lg, const char *path, int level)
{
    lg->level = level;
    lg->path = NULL;
    lg->fp = stderr;
    if (path == NULL)
        return 0;
    lg->path = strdup(path);
    if (lg->path == NULL)
        return ALCOVE_ENOMEM;
    lg->fp = fopen(path, "a");
    if (lg->fp == NULL) {
        lg->fp = stderr;
        return ALCOVE_EIO;
    }
    setvbuf(lg->fp, NULL, _IOLBF, 0);
    return 0;
}

int relay_log_reopen(relay_log *lg)
{
    if (lg->path == NULL)
        return 0;
    FILE *fp = fopen(lg->path, "a");
    if (fp == NULL)
        return ALCOVE_EIO;
    setvbuf(fp, NULL, _IOLBF, 0);
    if (lg->fp != stderr)
        fclose(lg->fp);
    lg->fp = fp;
    return 0;
}

void relay_log_close(relay_log *lg)
{
    if (lg->fp != NULL && lg->fp != stderr)
        fclose(lg->fp);
    lg->fp = stderr;
    free(lg->path);
    lg->path = NULL;
}

void relay_logf(relay_log *lg, int level, const char *event, const char *fmt, ...)
{
    if (level > lg->level)
        return;
    struct timeval tv;
    struct tm tm;
    char ts[32];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    char line[1024];
    int n = snprintf(line, sizeof line, "ts=%s.%03ldZ level=%s event=%s", ts,
                     (long)(tv.tv_usec / 1000), level_names[level], event);
    if (n < 0)
        return;
    if (fmt != NULL && (size_t)n < sizeof line - 2) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
        if ((size_t)n >= sizeof line)
            n = (int)sizeof line - 1;
    }
    /* One write per line, so concurrent writers never interleave. */
    fprintf(lg->fp, "%.*s\n", n, line);
    fflush(lg->fp);
}
