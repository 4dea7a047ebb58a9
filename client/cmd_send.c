/* alcove send / alcove checkin */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "err.h"
#include "outbox.h"
#include "pad.h"

#define MAX_TAGS 16
#define NOTE_MAX 4000u

static int send_built(app *a, const char *label, Alcove__E2e__Content *ct, const char *what)
{
    netpool np;
    memset(&np, 0, sizeof np);
    if (app_open(a) != 0)
        return EXIT_FAIL;
    int q = outbox_flush(a, &np); /* earlier queued messages go first */
    if (q < 0) {
        app_error("cannot read the outbox: %s", alcove_strerror(q));
        netpool_close(&np);
        return EXIT_FAIL;
    }
    int rc = outbox_send(a, &np, label, ct, what);
    netpool_close(&np);
    return rc;
}

/* Read all of standard input, at most max bytes.  NULL after an error. */
static char *read_stdin(size_t max)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n + 1 >= cap) {
            if (cap > max) {
                free(buf);
                app_error("the message on standard input is too long (at most %zu bytes)", max);
                return NULL;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL)
                break;
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - 1 - n, stdin);
        n += r;
        if (r == 0) {
            if (ferror(stdin)) {
                app_error("cannot read standard input: %s", strerror(errno));
                free(buf);
                return NULL;
            }
            buf[n] = '\0';
            return buf;
        }
    }
    free(buf);
    app_error("out of memory");
    return NULL;
}

int cmd_send(app *a, int argc, char **argv)
{
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--") == 0)
        first = 2;
    if (argc - first != 2)
        return usage_error("send needs a CONTACT and a TEXT (or - for standard input)");
    const char *label = argv[first], *text = argv[first + 1];
    char *owned = NULL;
    if (strcmp(text, "-") == 0) {
        if ((owned = read_stdin(ALCOVE_PAD_MAX_CONTENT)) == NULL)
            return EXIT_FAIL;
        text = owned;
    }
    if (*text == '\0') {
        free(owned);
        return usage_error("the message is empty");
    }
    Alcove__E2e__Text body = ALCOVE__E2E__TEXT__INIT;
    body.body = (char *)(uintptr_t)text;
    Alcove__E2e__Content ct = ALCOVE__E2E__CONTENT__INIT;
    ct.body_case = ALCOVE__E2E__CONTENT__BODY_TEXT;
    ct.text = &body;
    int rc = send_built(a, label, &ct, "message");
    free(owned);
    return rc;
}

static int parse_scale(const char *s, const char *name, uint32_t *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v < 0 || v > 10)
        return usage_error("--%s must be a whole number from 0 to 10, not '%s'", name, s);
    *out = (uint32_t)v;
    return 0;
}

int cmd_checkin(app *a, int argc, char **argv)
{
    static const struct option opts[] = {
        {"mood", required_argument, NULL, 'm'},  {"anxiety", required_argument, NULL, 'a'},
        {"sleep", required_argument, NULL, 's'}, {"note", required_argument, NULL, 'n'},
        {"tag", required_argument, NULL, 't'},   {NULL, 0, NULL, 0},
    };
    Alcove__E2e__CheckIn ci = ALCOVE__E2E__CHECK_IN__INIT;
    char *tags[MAX_TAGS];
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (parse_scale(optarg, "mood", &ci.mood) != 0)
                return EXIT_USAGE;
            ci.has_mood = 1;
            break;
        case 'a':
            if (parse_scale(optarg, "anxiety", &ci.anxiety) != 0)
                return EXIT_USAGE;
            ci.has_anxiety = 1;
            break;
        case 's': {
            char *end;
            errno = 0;
            double h = strtod(optarg, &end);
            if (errno != 0 || *end != '\0' || end == optarg || !(h >= 0.0 && h <= 24.0))
                return usage_error("--sleep must be hours from 0 to 24, not '%s'", optarg);
            ci.has_sleep_hours = 1;
            ci.sleep_hours = (float)h;
            break;
        }
        case 'n':
            if (strlen(optarg) > NOTE_MAX)
                return usage_error("--note is too long (at most %u bytes)", NOTE_MAX);
            ci.note = optarg;
            break;
        case 't':
            if (ci.n_tags == MAX_TAGS)
                return usage_error("at most %d tags", MAX_TAGS);
            if (*optarg == '\0' || strlen(optarg) > 64)
                return usage_error("a tag must be 1-64 characters");
            tags[ci.n_tags++] = optarg;
            break;
        default:
            return usage_error("unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        return usage_error("checkin needs exactly one CONTACT");
    if (!ci.has_mood)
        return usage_error("--mood N (0-10) is required");
    ci.tags = tags;
    Alcove__E2e__Content ct = ALCOVE__E2E__CONTENT__INIT;
    ct.body_case = ALCOVE__E2E__CONTENT__BODY_CHECKIN;
    ct.checkin = &ci;
    return send_built(a, argv[optind], &ct, "check-in");
}
