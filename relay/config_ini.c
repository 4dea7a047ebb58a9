/* relay/config_ini: the config file, parsed with inih (Debian's libinih).
 *
 * inih's handler gets no line number, so the file is fed through our own
 * reader, which counts lines; the handler reads the count.  Every error
 * names the file, the line and the key. */
#include <errno.h>
#include <ini.h>
#include <string.h>

#include "config.h"
#include "config_table.h"
#include "err.h"

/* Longest line we accept (a path is at most PATH_MAX). */
#define INI_LINE_MAX (PATH_MAX + 512)

typedef struct ini_ctx {
    relay_config *c;
    const char *path;
    FILE *f;
    FILE *err;
    int lineno;        /* line being parsed */
    int at_line_start; /* the next chunk starts a new line */
    size_t line_len;   /* characters of the current line so far */
    int too_long;      /* first line that exceeded INI_LINE_MAX */
    int failed;        /* an error was already reported */
} ini_ctx;

static char *reader(char *str, int num, void *stream)
{
    ini_ctx *x = stream;
    if (fgets(str, num, x->f) == NULL)
        return NULL;
    if (x->at_line_start) {
        x->lineno++;
        x->line_len = 0;
    }
    size_t n = strlen(str);
    x->line_len += n;
    x->at_line_start = n > 0 && str[n - 1] == '\n';
    if (x->line_len >= INI_LINE_MAX - 2 && x->too_long == 0)
        x->too_long = x->lineno;
    return str;
}

static int known_section(const char *s)
{
    for (size_t k = 0; k < relay_nflags; k++)
        if (relay_flags[k].section != NULL && strcmp(relay_flags[k].section, s) == 0)
            return 1;
    return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    ini_ctx *x = user;
    const char *pfx = "alcove-relay: error";
    if (x->failed)
        return 0;
    x->failed = 1; /* until proven otherwise */
    if (section[0] != '\0' && !known_section(section)) {
        fprintf(x->err, "%s: %s:%d: %s: unknown section [%s]\n", pfx, x->path, x->lineno, name,
                section);
        fprintf(x->err, "alcove-relay: hint: sections are [relay], [log], [limits], [storage] "
                        "and [admin]\n");
        return 0;
    }
    const relay_flag *f = relay_flag_find(name, strlen(name));
    if (f == NULL || f->section == NULL) {
        fprintf(x->err, "%s: %s:%d: %s: unknown key\n", pfx, x->path, x->lineno, name);
        fprintf(x->err, "alcove-relay: hint: 'alcove-relay check-config' lists every key\n");
        return 0;
    }
    if (section[0] != '\0' && strcmp(section, f->section) != 0) {
        fprintf(x->err, "%s: %s:%d: %s: belongs in [%s], not [%s]\n", pfx, x->path, x->lineno,
                name, f->section, section);
        return 0;
    }
    size_t k = (size_t)(f - relay_flags);
    if (x->c->origin[k] > 0) {
        fprintf(x->err, "%s: %s:%d: %s: set twice (first on line %d)\n", pfx, x->path, x->lineno,
                name, x->c->origin[k]);
        return 0;
    }
    char where[PATH_MAX + 96];
    snprintf(where, sizeof where, "%s:%d: %s", x->path, x->lineno, name);
    if (relay_flag_set(x->c, f, value, where, x->err) != 0)
        return 0;
    x->c->origin[k] = x->lineno;
    x->failed = 0;
    return 1;
}

int relay_config_load_file(relay_config *c, const char *path, FILE *err)
{
    ini_ctx x = {c, path, NULL, err, 0, 1, 0, 0, 0};
    if (strlen(path) >= sizeof c->config_file) {
        fprintf(err, "alcove-relay: error: config file name is too long\n");
        return ALCOVE_EINVAL;
    }
    x.f = fopen(path, "r");
    if (x.f == NULL) {
        fprintf(err, "alcove-relay: error: cannot read config file %s: %s\n", path,
                strerror(errno));
        return ALCOVE_EIO;
    }
    memcpy(c->config_file, path, strlen(path) + 1);
    /* Debian's inih exposes its compile-time options as variables: lines as
     * long as a path, '#' and ';' comments on their own line, ';' after a
     * value, no continuation lines, stop at the first error. */
    ini_use_stack = 0;
    ini_allow_realloc = 1;
    ini_max_line = INI_LINE_MAX;
    ini_allow_multiline = 0;
    ini_allow_inline_comments = 1;
    ini_stop_on_first_error = 1;
    int rc = ini_parse_stream(reader, &x, handler, &x);
    int rerr = ferror(x.f);
    fclose(x.f);
    if (rerr) {
        fprintf(err, "alcove-relay: error: cannot read config file %s\n", path);
        return ALCOVE_EIO;
    }
    if (x.too_long) {
        fprintf(err, "alcove-relay: error: %s:%d: line is too long\n", path, x.too_long);
        return ALCOVE_EINVAL;
    }
    if (rc == -2) {
        fprintf(err, "alcove-relay: error: out of memory reading %s\n", path);
        return ALCOVE_ENOMEM;
    }
    if (rc != 0 && !x.failed) {
        fprintf(err, "alcove-relay: error: %s:%d: syntax error (expected 'key = value' or "
                     "'[section]')\n", path, rc);
        return ALCOVE_EINVAL;
    }
    return x.failed ? ALCOVE_EINVAL : 0;
}
