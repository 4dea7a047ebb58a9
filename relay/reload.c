/* relay/reload: SIGHUP.  Reopen the log, build the settings afresh
 * (defaults, config file, the same flags) and apply the ones that can change
 * while running, without touching a connection.  A config that does not
 * build is refused as a whole: the running settings stay. */
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "err.h"
#include "server.h"

void relay_server_cap_connections(relay_server *srv, relay_config *cfg)
{
    if (srv->nofile_cap != 0 && cfg->max_connections > srv->nofile_cap) {
        relay_logf(srv->log, RLOG_WARN, "connection_limit_lowered", "max_connections=%llu",
                   (unsigned long long)srv->nofile_cap);
        cfg->max_connections = (uint32_t)srv->nofile_cap;
    }
}

/* First line of an error message for a log value: no "alcove-relay: error: "
 * prefix, no newline, no double quotes. */
static void log_text(char *s)
{
    static const char pfx[] = "alcove-relay: error: ";
    if (strncmp(s, pfx, sizeof pfx - 1) == 0)
        memmove(s, s + sizeof pfx - 1, strlen(s + sizeof pfx - 1) + 1);
    s[strcspn(s, "\n")] = '\0';
    for (char *p = s; *p; p++)
        if (*p == '"' || (unsigned char)*p < 0x20)
            *p = '\'';
}

void relay_server_reload(relay_server *srv)
{
    relay_config *live = srv->live_cfg;
    (void)sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
    int lrc = relay_log_reopen(srv->log);
    relay_logf(srv->log, lrc == 0 ? RLOG_INFO : RLOG_ERROR, "log_reopen", "ok=%s",
               lrc == 0 ? "yes" : "no");
    if (srv->reload.fn != NULL && !srv->draining) {
        relay_config *fresh = malloc(sizeof *fresh);
        char *msg = NULL;
        size_t msglen = 0;
        FILE *err = open_memstream(&msg, &msglen);
        int rc = fresh == NULL || err == NULL ? ALCOVE_ENOMEM
                                              : srv->reload.fn(srv->reload.ctx, fresh, err);
        if (err != NULL)
            fclose(err);
        if (rc != 0) {
            srv->metrics.reloads_failed++;
            if (msg != NULL)
                log_text(msg);
            relay_logf(srv->log, RLOG_ERROR, "reload", "ok=no error=\"%s\" settings=unchanged",
                       msg != NULL && msg[0] ? msg : alcove_strerror(rc));
        } else {
            char changed[512], ignored[256];
            uint64_t old_expiry = live->expiry_interval_ms;
            uint64_t old_sweep = relay_server_sweep_ms(live);
            relay_config_apply_reload(live, fresh, changed, sizeof changed, ignored,
                                      sizeof ignored);
            relay_server_cap_connections(srv, live);
            srv->log->level = live->log_level;
            relay_server_retime(srv, old_expiry, old_sweep);
            srv->metrics.reloads_ok++;
            relay_logf(srv->log, RLOG_INFO, "reload", "ok=yes changed=\"%s\"%s%s%s", changed,
                       ignored[0] ? " restart_required=\"" : "", ignored, ignored[0] ? "\"" : "");
        }
        free(msg);
        free(fresh);
    }
    (void)sd_notify(0, "READY=1\nSTATUS=serving");
}
