/* SPDX-License-Identifier: MIT */
/* The MySQL backend leader (docs/ha.md#mysql-backend): starting and freeing
 * it, and what its parts share. It holds three non-blocking connections, as
 * the original: the election's (leader_mysql_elect.c), the one for health
 * and reloads (leader_mysql_state.c) and the one for operator commands
 * (leader_mysql_ops.c); and a fourth of its own for the audit trail
 * (leader_mysql_audit.c), which so never delays the others. Loop thread. */
#include "leader/leader_mysql_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/xalloc.h"
#include "leader/share_poll.h"
#include "log/log.h"
#include "throttler/throttler.h"

#define SHARE_TIMEOUT_MS   1000
#define CONNECT_TIMEOUT_MS 500
#define QUERY_TIMEOUT_MS   1000
/* The MySQL error of a statement on a table that does not exist. */
#define ER_NO_SUCH_TABLE 1146

/* ---- what the parts share ---- */

void leader_mysql_chan_ok(struct mysql_leader *m, struct chan *c)
{
    if (c->failing)
        log_info("leader: backend %s: %s: working again after %" PRIu64 " failed attempt(s)",
                 m->backend, c->name, c->failures);
    c->failing = false;
    c->failures = 0;
}

/* Logs when the channel starts failing, or fails differently; a timeout or
 * a refused connection repeated every second is one line, not sixty a
 * minute. */
void leader_mysql_chan_fail(struct mysql_leader *m, struct chan *c, enum myconn_status status,
                            const char *msg)
{
    c->failures++;
    /* Timeouts, refused connects and dropped connections are one state,
     * "unreachable"; a server error is its own state per message. */
    bool unreachable = status != MYCONN_ERR_QUERY;
    bool was_unreachable = c->status != MYCONN_ERR_QUERY;
    bool same = c->failing && unreachable == was_unreachable &&
                (unreachable || strcmp(c->msg, msg) == 0);
    if (!same)
        log_warn("leader: backend %s: %s: %s", m->backend, c->name, msg);
    c->failing = true;
    c->status = status;
    snprintf(c->msg, sizeof(c->msg), "%s", msg);
}

void leader_mysql_query_failed(struct mysql_leader *m, struct chan *ch, const struct myconn *c,
                               enum myconn_status status, const char *msg)
{
    leader_mysql_chan_fail(m, ch, status, msg);
    if (status == MYCONN_ERR_QUERY && myconn_last_errno(c) == ER_NO_SUCH_TABLE)
        m->schema_ok = false;
}

void leader_mysql_send(struct myconn *c, char *sql, myconn_done_fn *cb, struct mysql_leader *m)
{
    myconn_query(c, sql, cb, m);
    free(sql);
}

void leader_mysql_svc_clear(struct svc_list *s)
{
    for (size_t i = 0; i < s->len; i++) {
        free(s->v[i].domain);
        free(s->v[i].service_id);
    }
    free(s->v);
    s->v = NULL;
    s->len = 0;
}

void leader_mysql_svc_fill(struct svc_list *s, const struct myresult *res, const char *domain)
{
    size_t id_col = domain != NULL ? 0 : 1;
    leader_mysql_svc_clear(s);
    s->v = xcalloc(res->nrows ? res->nrows : 1, sizeof(*s->v));
    for (size_t r = 0; r < res->nrows && res->ncols > id_col; r++) {
        const char *const *row = res->cells + r * res->ncols;
        const char *d = domain != NULL ? domain : row[0], *id = row[id_col];
        if (d == NULL || id == NULL)
            continue;
        s->v[s->len].domain = xstrdup(d);
        s->v[s->len].service_id = xstrdup(id);
        s->len++;
    }
}

/* ---- start and free ---- */

static void mysql_free(struct leader *l)
{
    struct mysql_leader *m = l->impl;
    if (m == NULL)
        return;
    leader_mysql_elect_deinit(m);
    leader_mysql_state_deinit(m);
    share_poll_free(m->share);
    /* Abandoned queries never call back, so finish their commands here. */
    myconn_free(m->elect_conn);
    myconn_free(m->state_conn);
    myconn_free(m->ops_conn);
    leader_mysql_audit_free(m);
    leader_mysql_ops_abandon(m);
    backend_ids_deinit(&m->ids);
    free(m->backend);
    free(m);
    l->impl = NULL;
}

static const struct leader_ops mysql_ops = {"mysql-backend", leader_mysql_submit,
                                            leader_mysql_shutdown, mysql_free, leader_mysql_audit};

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* UTF-8 characters in @s (what a varchar(N) counts). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

/* Checks what the backend's column widths and our lease arithmetic need. */
static int check_settings(const struct config *cfg, const char *service_id, struct err *err)
{
    const char *domain = str_or_empty(cfg->domain), *share = str_or_empty(cfg->share_domain);
    if (str_or_empty(cfg->backend_schema)[0] == '\0')
        return err_set(err, -EINVAL,
                       "leader: BackendMySQLHost is set but BackendMySQLSchema is empty");
    if (utf8_chars(domain) > BACKEND_DOMAIN_MAX)
        return err_set(
                err, -EINVAL,
                "leader: Domain \"%.60s\" is longer than the %d characters service_election.domain holds",
                domain, BACKEND_DOMAIN_MAX);
    if (utf8_chars(share) > BACKEND_DOMAIN_MAX)
        return err_set(
                err, -EINVAL,
                "leader: ShareDomain \"%.60s\" is longer than the %d characters service_election.share_domain holds",
                share, BACKEND_DOMAIN_MAX);
    if (utf8_chars(service_id) > BACKEND_SERVICE_ID_MAX)
        return err_set(
                err, -EINVAL,
                "leader: service id \"%.60s...\" is longer than the %d characters service_election.service_id holds",
                service_id, BACKEND_SERVICE_ID_MAX);
    int64_t e = cfg->backend_election_expiry_secs;
    if (e < CONFIG_ELECTION_EXPIRY_MIN_SECS || e > CONFIG_ELECTION_EXPIRY_MAX_SECS)
        return err_set(
                err, -EINVAL,
                "leader: BackendElectionExpirySecs %" PRId64
                " is outside %d..%d (it must exceed twice the %d s election interval plus the %d s safety margin)",
                e, CONFIG_ELECTION_EXPIRY_MIN_SECS, CONFIG_ELECTION_EXPIRY_MAX_SECS,
                ELECTION_INTERVAL_MS / 1000, LEASE_MARGIN_MS / 1000);
    return 0;
}

static struct myconn *conn_new(struct mysql_leader *m, const struct config *cfg, char *charset)
{
    struct myconn_params p = {
            .host = cfg->backend_host,
            .port = cfg->backend_port,
            .user = str_or_empty(cfg->backend_user),
            .password = str_or_empty(cfg->backend_password),
            .database = cfg->backend_schema,
            .charset = charset,
            .collation = str_or_empty(cfg->backend_collation)[0] ? cfg->backend_collation : NULL,
            .connect_timeout_ms = CONNECT_TIMEOUT_MS,
            .query_timeout_ms = QUERY_TIMEOUT_MS,
    };
    return myconn_new(m->loop, &p);
}

/* A new leader with its names, caps and connections, not started. */
static struct mysql_leader *mysql_leader_new(struct leader *l, struct share_poll *share)
{
    const struct config *cfg = l->p.cfg;
    struct mysql_leader *m = xcalloc(1, sizeof(*m));
    m->l = l;
    m->loop = l->p.loop;
    m->t = l->p.throttler;
    m->share = share;
    backend_ids_init(&m->ids, str_or_empty(cfg->domain), str_or_empty(cfg->share_domain),
                     l->p.service_id, cfg->backend_election_expiry_secs);
    m->lease_ms = (uint64_t)m->ids.expiry_secs * 1000 - LEASE_MARGIN_MS;
    m->backend = xasprintf("%s:%u/%s", cfg->backend_host, (unsigned)cfg->backend_port,
                           cfg->backend_schema);
    m->forced = l->p.force_leadership;
    m->apps_expiry_nullable = true;
    m->elect_chan.name = "election";
    leader_mysql_state_init(m, cfg);
    char charset[BACKEND_CHARSET_SIZE];
    backend_charset_of(cfg->backend_collation, charset, sizeof(charset));
    m->elect_conn = conn_new(m, cfg, charset);
    m->state_conn = conn_new(m, cfg, charset);
    m->ops_conn = conn_new(m, cfg, charset);
    return m;
}

int leader_mysql_init(struct leader *l, struct err *err)
{
    int rc = check_settings(l->p.cfg, l->p.service_id, err);
    if (rc < 0)
        return rc;
    /* Peers are polled over HTTP only with a ShareDomain: libcurl is
     * loaded for that alone. */
    struct share_poll *share = NULL;
    if (str_or_empty(l->p.cfg->share_domain)[0] != '\0') {
        share = share_poll_new(l->p.loop, SHARE_TIMEOUT_MS, err);
        if (share == NULL)
            return err->code;
    }
    struct mysql_leader *m = mysql_leader_new(l, share);
    l->impl = m;
    l->ops = &mysql_ops;
    leader_mysql_elect_start(m);
    leader_mysql_state_start(m);
    char charset[BACKEND_CHARSET_SIZE];
    backend_charset_of(l->p.cfg->backend_collation, charset, sizeof(charset));
    leader_mysql_audit_start(m, l->p.cfg, conn_new(m, l->p.cfg, charset));
    if (m->forced) {
        /* As the original: --force-leadership leads whatever the backend
         * says; the election still runs for the status endpoints. */
        m->serving = true;
        throttler_set_leader(m->t, true);
    }
    leader_mysql_publish_status(m);
    if (m->forced)
        leader_set_known(l);
    log_info("leader: MySQL backend %s, domain %s, share domain %s, expiry %" PRId64
             " s (lease %" PRIu64 " ms)",
             m->backend, m->ids.domain.text,
             m->ids.share_domain.text[0] ? m->ids.share_domain.text : "(none)", m->ids.expiry_secs,
             m->lease_ms);
    return 0;
}
