/* The config file and the service life: flags > file > defaults, errors
 * that name file, line and key, check-config, an example config and docs
 * that cover every key, SIGHUP reloads without dropping connections (and
 * refuses a bad file), and sd_notify READY / RELOADING / STOPPING. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "test_operator_util.h"
#include "wire.h"

#define OK ALCOVE__WIRE__STATUS__OK
#define TOOLARGE ALCOVE__WIRE__STATUS__TOO_LARGE

static void expect_in(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fail_msg("expected '%s' in:\n%s", needle, hay);
}

static void test_check_config_precedence_flags_over_file_over_defaults(void **state)
{
    (void)state;
    char tmp[256], conf[300];
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(conf, sizeof conf, "%s/relay.conf", tmp);
    write_text(conf, "; a practice relay\n"
                     "data = /srv/alcove\n"
                     "[limits]\n"
                     "ttl = 7d       ; a week\n"
                     "max-blob = 1000\n"
                     "# a comment\n"
                     "[log]\n"
                     "log-level = debug\n");
    run_result r;
    relay_cmd(&r, (const char *[]){"check-config", "--config", conf, "--ttl", "3d", NULL});
    assert_int_equal(r.code, 0);
    expect_in(r.out, "data = /srv/alcove");           /* file */
    expect_in(r.out, "ttl = 3d");                     /* flag beats file */
    expect_in(r.out, "max-blob = 1000");              /* file beats default */
    expect_in(r.out, "log-level = debug");
    expect_in(r.out, "listen = 127.0.0.1:7700");      /* default */
    expect_in(r.out, "max-messages = 10000");
    expect_in(r.out, "; from --ttl");
    expect_in(r.out, "; from line 5");
    expect_in(r.err, "configuration OK");
    /* The printed settings are themselves a valid config file. */
    char again[300];
    snprintf(again, sizeof again, "%s/again.conf", tmp);
    write_text(again, r.out);
    run_result r2;
    relay_cmd(&r2, (const char *[]){"check-config", "--config", again, NULL});
    assert_int_equal(r2.code, 0);
    expect_in(r2.out, "ttl = 3d");
    run_result_free(&r2);
    run_result_free(&r);
    test_rmtree(tmp);
}

static void test_config_errors_name_file_line_and_key(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[limits]\nttl = soon\n", "bad.conf:2: ttl: bad value 'soon'"},
        {"\n\nfrobnicate = 1\n", "bad.conf:3: frobnicate: unknown key"},
        {"[limits]\nlisten = 127.0.0.1:1\n", "bad.conf:2: listen: belongs in [relay], not [limits]"},
        {"[mystery]\nttl = 1d\n", "bad.conf:2: ttl: unknown section [mystery]"},
        {"ttl = 1d\n[limits]\nttl = 2d\n", "bad.conf:3: ttl: set twice (first on line 1)"},
        {"[limits]\nmax-blob = 70000\n", "bad.conf:2: max-blob must be 1..65000"},
        {"[limits]\nwrite-queue = 1k\n", "bad.conf:2: write-queue must be at least 128k"},
        {"[limits]\nmax-connections = 0\n", "bad.conf:2: max-connections must be positive"},
        {"[log]\nlog-addresses = maybe\n", "bad.conf:2: log-addresses: bad value 'maybe' (yes or no)"},
        {"[admin]\nadmin-listen = localhost\n", "bad.conf:2: admin-listen: bad address"},
        {"this is not ini\n", "bad.conf:1: syntax error"},
        {"config = other.conf\n", "bad.conf:1: config: unknown key"},
    };
    char tmp[256], conf[300];
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(conf, sizeof conf, "%s/bad.conf", tmp);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(conf, cases[i].text);
        run_result r;
        relay_cmd(&r, (const char *[]){"check-config", "--config", conf, NULL});
        if (r.code != 2 || strstr(r.err, cases[i].want) == NULL)
            fail_msg("case %zu: want exit 2 and '%s', got %d:\n%s", i, cases[i].want, r.code,
                     r.err);
        run_result_free(&r);
        /* run refuses to start on it the same way. */
        relay_cmd(&r, (const char *[]){"run", "--config", conf, "--data", tmp, NULL});
        assert_int_equal(r.code, 2);
        expect_in(r.err, cases[i].want);
        run_result_free(&r);
    }
    run_result r;
    relay_cmd(&r, (const char *[]){"check-config", "--config", "/nonexistent/x.conf", NULL});
    assert_int_equal(r.code, 2);
    expect_in(r.err, "cannot read config file /nonexistent/x.conf");
    run_result_free(&r);
    test_rmtree(tmp);
}

/* Keys as check-config prints them ("key = value" lines). */
static size_t keys_of(char *out, char keys[][40], size_t max)
{
    size_t n = 0;
    for (char *line = strtok(out, "\n"); line != NULL && n < max; line = strtok(NULL, "\n")) {
        char *eq = strstr(line, " = ");
        if (eq == NULL || line[0] == ';' || line[0] == '[')
            eq = strstr(line, " =");
        if (eq == NULL || line[0] == ';' || line[0] == '[' || eq - line >= 40)
            continue;
        memcpy(keys[n], line, (size_t)(eq - line));
        keys[n][eq - line] = '\0';
        n++;
    }
    return n;
}

static void test_example_config_man_page_and_completions_cover_every_key(void **state)
{
    (void)state;
    char path[1200], tmp[256], uncommented[300];
    char keys[64][40];
    run_result r;
    relay_cmd(&r, (const char *[]){"check-config", NULL});
    assert_int_equal(r.code, 0);
    char *defaults = strdup(r.out);
    size_t nkeys = keys_of(r.out, keys, 64);
    assert_true(nkeys >= 20);
    run_result_free(&r);

    snprintf(path, sizeof path, "%s/packaging/alcove-relay.conf", source_dir());
    char *example = test_read_file(path, NULL);
    assert_non_null(example);
    snprintf(path, sizeof path, "%s/docs/man/alcove-relay.conf.5.scd", source_dir());
    char *man = test_read_file(path, NULL);
    assert_non_null(man);
    snprintf(path, sizeof path, "%s/packaging/completions/alcove-relay.bash", source_dir());
    char *bash = test_read_file(path, NULL);
    assert_non_null(bash);
    snprintf(path, sizeof path, "%s/packaging/completions/_alcove-relay", source_dir());
    char *zsh = test_read_file(path, NULL);
    assert_non_null(zsh);
    for (size_t i = 0; i < nkeys; i++) {
        char want[64];
        snprintf(want, sizeof want, "\n#%s =", keys[i]);
        if (strstr(example, want) == NULL) {
            snprintf(want, sizeof want, "\n%s =", keys[i]);
            if (strstr(example, want) == NULL)
                fail_msg("packaging/alcove-relay.conf does not show key '%s'", keys[i]);
        }
        snprintf(want, sizeof want, "*%s*", keys[i]);
        if (strstr(man, want) == NULL)
            fail_msg("alcove-relay.conf(5) does not document key '%s'", keys[i]);
        snprintf(want, sizeof want, "--%s", keys[i]);
        if (strstr(bash, want) == NULL || strstr(zsh, want) == NULL)
            fail_msg("a completion for alcove-relay lacks %s", want);
    }

    /* The example as shipped is valid, and its commented values are the
     * real defaults: uncommented, it prints exactly what no file prints. */
    for (const char *const *flag = (const char *const[]){"--config", "--if-missing", NULL}; *flag;
         flag++)
        if (strstr(bash, *flag) == NULL || strstr(zsh, *flag) == NULL)
            fail_msg("a completion for alcove-relay lacks %s", *flag);
    snprintf(path, sizeof path, "%s/packaging/alcove-relay.conf", source_dir());
    relay_cmd(&r, (const char *[]){"check-config", "--config", path, NULL});
    if (r.code != 0)
        fail_msg("the example config does not check: %s", r.err);
    run_result_free(&r);
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(uncommented, sizeof uncommented, "%s/all.conf", tmp);
    FILE *f = fopen(uncommented, "w");
    assert_non_null(f);
    for (char *line = strtok(example, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (line[0] == '[')
            fprintf(f, "%s\n", line);
        else if (line[0] == '#' && strstr(line, " =") != NULL && line[1] != ' ')
            fprintf(f, "%s\n", line + 1);
    }
    fclose(f);
    relay_cmd(&r, (const char *[]){"check-config", "--config", uncommented, NULL});
    assert_int_equal(r.code, 0);
    /* Same values: compare "key = value" ignoring the origin comment. */
    char dk[64][40], *dcopy = strdup(defaults);
    size_t nd = keys_of(dcopy, dk, 64);
    assert_int_equal(nd, nkeys);
    for (char *line = strtok(defaults, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (line[0] == ';' || line[0] == '[')
            continue;
        char *semi = strstr(line, " ;");
        if (semi != NULL)
            *semi = '\0';
        for (char *e = line + strlen(line); e > line && e[-1] == ' ';)
            *--e = '\0';
        if (strstr(r.out, line) == NULL)
            fail_msg("example default differs: want '%s'", line);
    }
    run_result_free(&r);
    free(dcopy);
    free(defaults);
    free(example);
    free(man);
    free(bash);
    free(zsh);
    test_rmtree(tmp);
}

/* The alcove client's commands, from its own usage text, all have a
 * completion and a man page entry.  (Adding a command to client/main.c?
 * Add it to packaging/completions/alcove.bash, _alcove and
 * docs/man/alcove.1.scd too.) */
static void test_client_commands_have_completions_and_man_entries(void **state)
{
    (void)state;
    const char *bin = getenv("ALCOVE_BIN");
    if (bin == NULL) {
        print_message("ALCOVE_BIN not set (no client built): skipped\n");
        return;
    }
    char cmd[1200], path[1200], line[512];
    snprintf(cmd, sizeof cmd, "'%s' --help", bin);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    snprintf(path, sizeof path, "%s/packaging/completions/alcove.bash", source_dir());
    char *bash = test_read_file(path, NULL);
    snprintf(path, sizeof path, "%s/packaging/completions/_alcove", source_dir());
    char *zsh = test_read_file(path, NULL);
    snprintf(path, sizeof path, "%s/docs/man/alcove.1.scd", source_dir());
    char *man = test_read_file(path, NULL);
    assert_non_null(bash);
    assert_non_null(zsh);
    assert_non_null(man);
    int in_commands = 0, n = 0;
    while (fgets(line, sizeof line, p) != NULL) {
        if (strncmp(line, "commands:", 9) == 0) {
            in_commands = 1;
            continue;
        }
        if (!in_commands)
            continue;
        char name[64];
        if (line[0] != ' ' || sscanf(line, " %63s", name) != 1)
            break;
        char want[80];
        snprintf(want, sizeof want, " %s ", name);
        char *words = strstr(bash, "local commands=\"");
        assert_non_null(words);
        char *end = strchr(words + 16, '"');
        assert_non_null(end);
        int found = 0;
        for (char *w = words + 16; w + strlen(name) <= end; w++)
            if (strncmp(w, name, strlen(name)) == 0 && (w[strlen(name)] == ' ' ||
                w[strlen(name)] == '\n' || w[strlen(name)] == '"') &&
                (w[-1] == ' ' || w[-1] == '"'))
                found = 1;
        if (!found)
            fail_msg("packaging/completions/alcove.bash lacks the command '%s'", name);
        snprintf(want, sizeof want, "'%s:", name);
        if (strstr(zsh, want) == NULL)
            fail_msg("packaging/completions/_alcove lacks the command '%s'", name);
        snprintf(want, sizeof want, "\n*%s*", name);
        if (strstr(man, want) == NULL)
            fail_msg("docs/man/alcove.1.scd lacks the command '%s'", name);
        n++;
    }
    pclose(p);
    assert_true(n >= 10);
    free(bash);
    free(zsh);
    free(man);
}

static void send_blob(alcove_link *l, const test_mbox *mb, size_t len, int want)
{
    uint8_t blob[6000];
    assert_true(len <= sizeof blob);
    memset(blob, 0x5a, len);
    int st = tw_send(l, mb->send_id, mb->secret, blob, len);
    if (st != want)
        fail_msg("send of %zu bytes: want status %d, got %d", len, want, st);
}

static void test_sighup_reloads_limits_without_dropping_connections(void **state)
{
    (void)state;
    char tmp[256], conf[300];
    relayproc rp;
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(conf, sizeof conf, "%s/relay.conf", tmp);
    write_text(conf, "[limits]\nmax-blob = 1000\n");
    relayproc_init_dir(&rp, tmp);
    assert_int_equal(relayproc_start(&rp, (const char *[]){"--config", conf, NULL}), 0);
    alcove_link *l = tw_connect(&rp.addr);
    test_mbox mb;
    assert_int_equal(tw_create(l, &mb), OK);
    send_blob(l, &mb, 2000, TOOLARGE);

    write_text(conf, "[limits]\nmax-blob = 4000\n[storage]\nbatch-ops = 100\n");
    kill(rp.pid, SIGHUP);
    assert_true(test_wait_for_text(rp.logpath, "event=reload ok=yes", 10000));
    char *log = test_read_file(rp.logpath, NULL);
    expect_in(log, "changed=\"max-blob\"");
    expect_in(log, "restart_required=\"batch-ops\"");
    expect_in(log, "event=log_reopen ok=yes");
    free(log);
    assert_int_equal(tw_ping(l), OK); /* the same connection */
    send_blob(l, &mb, 2000, OK);

    /* A bad file is refused as a whole; the running limits stay. */
    write_text(conf, "[limits]\nmax-blob = 100\nttl = whenever\n");
    kill(rp.pid, SIGHUP);
    assert_true(test_wait_for_text(rp.logpath, "event=reload ok=no", 10000));
    log = test_read_file(rp.logpath, NULL);
    expect_in(log, "relay.conf:3: ttl: bad value 'whenever'");
    expect_in(log, "settings=unchanged");
    free(log);
    assert_int_equal(tw_ping(l), OK);
    send_blob(l, &mb, 2000, OK);   /* not 100 */
    send_blob(l, &mb, 5000, TOOLARGE);

    /* A file that vanished is refused the same way. */
    unlink(conf);
    kill(rp.pid, SIGHUP);
    uint64_t deadline = test_now_ms() + 10000;
    for (;;) {
        log = test_read_file(rp.logpath, NULL);
        const char *first = strstr(log, "event=reload ok=no");
        int two = first != NULL && strstr(first + 1, "event=reload ok=no") != NULL;
        free(log);
        if (two)
            break;
        assert_true(test_now_ms() < deadline);
        test_sleep_ms(10);
    }
    send_blob(l, &mb, 3000, OK);
    Alcove__Wire__RelayMessage *m = NULL;
    assert_int_equal(tw_fetch(l, mb.recv_id, 0, 0, &m), OK);
    assert_int_equal(m->reply->fetch->n_messages, 3);
    alcove__wire__relay_message__free_unpacked(m, NULL);
    alcove_link_free(l);
    int st = relayproc_stop(&rp, SIGTERM, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    test_rmtree(tmp);
}

/* Read one datagram within timeout_ms into buf; 0 on timeout. */
static int recv_notify(int fd, char *buf, size_t cap, int timeout_ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    ssize_t n = recv(fd, buf, cap - 1, 0);
    if (n < 0)
        return 0;
    buf[n] = '\0';
    return 1;
}

static void test_sd_notify_ready_reloading_stopping(void **state)
{
    (void)state;
    char tmp[256], sock[300], msg[512];
    relayproc rp;
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(sock, sizeof sock, "%s/notify", tmp);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    assert_true(strlen(sock) < sizeof sa.sun_path);
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);

    relayproc_init_dir(&rp, tmp);
    setenv("NOTIFY_SOCKET", sock, 1);
    int started = relayproc_start(&rp, NULL);
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(started, 0);
    assert_true(recv_notify(fd, msg, sizeof msg, 5000));
    expect_in(msg, "READY=1");
    /* READY comes after the listener: a client can connect now. */
    alcove_link *l = tw_connect(&rp.addr);

    kill(rp.pid, SIGHUP);
    assert_true(recv_notify(fd, msg, sizeof msg, 5000));
    expect_in(msg, "RELOADING=1");
    assert_true(recv_notify(fd, msg, sizeof msg, 5000));
    expect_in(msg, "READY=1");
    assert_int_equal(tw_ping(l), OK);
    alcove_link_free(l);

    kill(rp.pid, SIGTERM);
    assert_true(recv_notify(fd, msg, sizeof msg, 5000));
    expect_in(msg, "STOPPING=1");
    int st = relayproc_stop(&rp, SIGTERM, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(fd);
    test_rmtree(tmp);
}

static void test_second_relay_on_one_data_directory_is_refused(void **state)
{
    (void)state;
    char tmp[256];
    relayproc rp;
    test_mkdtemp(tmp, sizeof tmp);
    relayproc_init_dir(&rp, tmp);
    assert_int_equal(relayproc_start(&rp, NULL), 0);
    run_result r;
    relay_cmd(&r, (const char *[]){"run", "--data", rp.dir, "--listen", "127.0.0.1:0", NULL});
    assert_int_equal(r.code, 1);
    expect_in(r.err, "another alcove-relay is running on");
    run_result_free(&r);
    /* The first one is unharmed; stats and verify may run beside it. */
    alcove_link *l = tw_connect(&rp.addr);
    assert_int_equal(tw_ping(l), OK);
    alcove_link_free(l);
    relay_cmd(&r, (const char *[]){"verify", "--data", rp.dir, NULL});
    assert_int_equal(r.code, 0);
    run_result_free(&r);
    int st = relayproc_stop(&rp, SIGTERM, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* Once it stopped, the directory is free again. */
    assert_int_equal(relayproc_start(&rp, NULL), 0);
    st = relayproc_stop(&rp, SIGTERM, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    test_rmtree(tmp);
}

static void test_init_if_missing_keeps_the_key(void **state)
{
    (void)state;
    char tmp[256], dir[300];
    test_mkdtemp(tmp, sizeof tmp);
    snprintf(dir, sizeof dir, "%s/data", tmp);
    run_result a, b, c;
    relay_cmd(&a, (const char *[]){"init", "--data", dir, "--public", "relay.example.org:7700", NULL});
    assert_int_equal(a.code, 0);
    relay_cmd(&b, (const char *[]){"init", "--data", dir, NULL});
    assert_int_equal(b.code, 1);
    expect_in(b.err, "already holds a relay key");
    relay_cmd(&c, (const char *[]){"init", "--data", dir, "--if-missing", NULL});
    assert_int_equal(c.code, 0);
    assert_string_equal(a.out, c.out);
    run_result_free(&a);
    run_result_free(&b);
    run_result_free(&c);
    test_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_config_precedence_flags_over_file_over_defaults),
        cmocka_unit_test(test_config_errors_name_file_line_and_key),
        cmocka_unit_test(test_example_config_man_page_and_completions_cover_every_key),
        cmocka_unit_test(test_client_commands_have_completions_and_man_entries),
        cmocka_unit_test(test_sighup_reloads_limits_without_dropping_connections),
        cmocka_unit_test(test_sd_notify_ready_reloading_stopping),
        cmocka_unit_test(test_second_relay_on_one_data_directory_is_refused),
        cmocka_unit_test(test_init_if_missing_keeps_the_key),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
