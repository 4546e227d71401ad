/* SPDX-License-Identifier: MIT */
/* Leadership and operator state through a MySQL backend (docs/ha.md#mysql-backend), on the
 * loop with non-blocking connections: one for the election, one for health
 * and state reloads, one for operator commands (at most three, as the
 * original). Loop thread. Key invariant: this node answers as leader only
 * while it holds a lease that the database granted; see "Why two nodes never
 * both lead" below. */
#include "leader/leader_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/parse.h"
#include "core/strmap.h"
#include "core/xalloc.h"
#include "leader/backend_sql.h"
#include "leader/share_poll.h"
#include "log/log.h"
#include "loop/loop.h"
#include "loop/loop_timer.h"
#include "mysql/myasync.h"
#include "snapshot/snapshot.h"
#include "throttler/app_throttle.h"
#include "throttler/skipped_hosts.h"
#include "throttler/throttler.h"

/*
 * Why two nodes never both lead
 * -----------------------------
 * Let E be the election expiry (BackendElectionExpirySecs, 5 by default).
 * A peer takes our row over only when its statement finds
 * last_seen_active < now() - E on the database clock. Our row's
 * last_seen_active is the now() of the last statement that refreshed it,
 * and a statement's now() is never earlier than the moment we sent it. So
 * if a refresh sent at instant S succeeded, no peer can take over before
 * S + E (truncation of now() to whole seconds only makes that later).
 *
 * We therefore hold a lease: after a round whose refresh succeeded and whose
 * following read still names us, we may lead until S + E - margin, with S
 * measured on our own CLOCK_BOOTTIME when the refresh was *sent* (not when
 * its answer came, which may be seconds later on a stalled backend). The
 * margin (1 s) covers clock rate differences, a loop that fires its lease
 * timer late, and HTTP threads answering from a snapshot published just
 * before we stepped down; the snapshot also carries the lease end and
 * /leader-check checks it on its own. A failed or late round never extends
 * the lease, so with the backend stalled or down the leader steps down at
 * S + E - margin, at least a margin before any peer can be elected; and a
 * peer only answers as leader after its own takeover and read returned.
 *
 * The read confirms the refresh: if the refresh sent at S left the row to
 * someone else, a later read naming us would need a statement of ours to
 * take it back, which would itself have run after S. Assumptions: the
 * database clock does not jump forward (a step of X seconds shortens every
 * lease by X), and E > 2 s so that a lease of E - 1 s outlives at least one
 * missed 1 s round; we require E >= 3.
 */

#define ELECTION_INTERVAL_MS 1000
#define HEALTH_INTERVAL_MS   2000
#define RELOAD_INTERVAL_MS   10000
/* The first reload waits for the first election round: a node elected there
 * loads at once anyway, and a load begun before its election would be read
 * again (it may predate the last writes of the previous leader), which with
 * 100,000 rows doubles the time to serve. */
#define RELOAD_FIRST_MS    1500
#define SHARE_INTERVAL_MS  1000
#define SHARE_TIMEOUT_MS   1000
#define LEASE_MARGIN_MS    1000
#define CONNECT_TIMEOUT_MS 500
#define QUERY_TIMEOUT_MS   1000
/* A state load reads up to MaxThrottledApps or MaxSkippedHosts rows: 100,000
 * take about 0.3 s on a healthy backend, so this only bounds a stalled one:
 * 4 s plus 1 ms per 50 rows asked for (6 s at the default caps). */
#define LOAD_TIMEOUT_MS          4000
#define LOAD_ROWS_PER_TIMEOUT_MS 50
#define RELEASE_DEADLINE_MS      1800
#define TTL_MAX_MIN              (10ll * 365 * 24 * 60) /* TIMESTAMP ends in 2038 */
#define OP_ATTEMPTS              2
/* After the moment the database will let a row go, so our statement's now()
 * is surely past it. */
#define TAKEOVER_SLACK_MS 50

/* One kind of backend work whose failures are logged once per change. */
struct chan {
    const char *name;
    bool failing;
    enum myconn_status status;
    char msg[256];
    uint64_t failures;
};

enum op_phase { OP_WRITE, OP_READ_BACK };

struct op {
    struct op *next;
    struct loop_cmd *cmd;
    char *sql;
    enum op_phase phase;
    int attempts;
    bool adds; /* creates an entry here once stored: counts against the cap meanwhile */
};

struct svc_list {
    struct snap_service *v;
    size_t len;
};

struct mysql_leader {
    struct leader *l;
    struct loop *loop;
    struct throttler *t;
    const char *backend; /* "host:port/schema", for messages */
    char *backend_buf;
    struct backend_ids ids; /* the three strings below as SQL literals */
    char *domain;
    char *share_domain;
    char *service_id;
    uint64_t lease_ms;
    bool forced;

    struct myconn *elect_conn;
    struct myconn *state_conn;
    struct myconn *ops_conn;
    uv_timer_t *elect_timer;
    uv_timer_t *health_timer;
    uv_timer_t *reload_timer;
    uv_timer_t *share_timer;
    uv_timer_t *lease_timer;
    uv_timer_t *takeover_timer;
    uv_timer_t *stop_timer;
    struct share_poll *share;

    /* Election round. */
    bool elect_busy;
    bool elect_again;         /* a takeover attempt came while a round ran */
    uint64_t refresh_sent_ms; /* clock_boot_ms() when the refresh was sent */
    bool refresh_ok;
    bool schema_ok;
    char schema_missing[128];
    bool apps_expiry_nullable;

    /* Leadership: serving implies leading (except when forced), and leading
     * implies a lease that has not ended. */
    bool leading;
    bool serving;
    uint64_t lease_until_ms;
    uint64_t term; /* counts the times we became leader */
    uint64_t apps_loaded_term;
    uint64_t hosts_loaded_term;
    bool healthy;
    char *leader_id;
    struct svc_list share_services;
    struct svc_list domain_services;
    char *status_sig;

    /* State connection jobs. */
    bool want_apps;
    bool want_hosts;
    bool want_health;
    bool apps_over_logged; /* the last load found more live rows than max_apps */
    bool hosts_over_logged;
    uint64_t ops_gen; /* bumped by every operator change applied locally */
    uint64_t job_gen;
    uint64_t job_term;
    struct strmap bad_apps; /* "name\x1freason" of rows rejected last load */
    struct strmap bad_hosts;
    size_t max_apps; /* MaxThrottledApps: the most rows a load takes */
    size_t max_hosts;

    /* Operator commands, one at a time, in order. */
    struct op *ops_head;
    struct op *ops_tail;

    struct chan elect_chan;
    struct chan health_chan;
    struct chan apps_chan;
    struct chan hosts_chan;
    struct chan share_chan;

    bool stopping;
    bool release_sent;
    void (*done)(void *arg);
    void *done_arg;
};

static void state_kick(struct mysql_leader *m);
static void ops_kick(struct mysql_leader *m);
static void release_send(struct mysql_leader *m);

/* The value of set-like strmaps (which need a non-NULL pointer). */
static char marker;

/* ---- small helpers ---- */

/* UTF-8 characters in @s (what a varchar(N) counts). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return n;
}

/* @s shortened and with control bytes escaped, for log lines about rows a
 * hostile writer may have filled. */
static const char *printable(const char *s, char *buf, size_t size)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "(null)");
    for (; *p && o + 8 < size; p++) {
        if (*p < 0x20 || *p == 0x7f)
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", *p);
        else
            buf[o++] = (char)*p;
    }
    if (*p != '\0') {
        /* Cut on a character boundary, then say it was cut. */
        while (o > 0 && ((unsigned char)buf[o - 1] & 0xC0) == 0x80)
            o--;
        if (o > 0 && ((unsigned char)buf[o - 1] & 0xC0) == 0xC0)
            o--;
        snprintf(buf + o, size - o, "...");
        return buf;
    }
    buf[o] = '\0';
    return buf;
}

static void chan_ok(struct mysql_leader *m, struct chan *c)
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
static void chan_fail(struct mysql_leader *m, struct chan *c, enum myconn_status status,
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

/* True when the failed query on @c met a missing table (ER_NO_SUCH_TABLE). */
static bool is_missing_table(const struct myconn *c, enum myconn_status status)
{
    return status == MYCONN_ERR_QUERY && myconn_last_errno(c) == 1146;
}

static void svc_list_clear(struct svc_list *s)
{
    for (size_t i = 0; i < s->len; i++) {
        free(s->v[i].domain);
        free(s->v[i].service_id);
    }
    free(s->v);
    s->v = NULL;
    s->len = 0;
}

static struct snap_service *svc_list_copy(const struct svc_list *s)
{
    struct snap_service *v = xcalloc(s->len ? s->len : 1, sizeof(*v));
    for (size_t i = 0; i < s->len; i++) {
        v[i].domain = xstrdup(s->v[i].domain);
        v[i].service_id = xstrdup(s->v[i].service_id);
    }
    return v;
}

/* ---- status ---- */

/* Publishes what /leader-check and the consensus endpoints show, when it
 * changed. */
static void publish_status(struct mysql_leader *m)
{
    bool is_leader = m->serving;
    /* As the original, State tells the election's view even when
     * --force-leadership makes this node lead anyway. */
    bool elected = m->forced ? m->leading : m->serving;
    const char *state = elected ? "Leader" : m->healthy ? "Healthy" : "Unhealthy";
    const char *leader_id = m->leading   ? m->service_id
                            : m->healthy ? (m->leader_id ? m->leader_id : "")
                                         : "";
    uint64_t lease = is_leader && !m->forced ? m->lease_until_ms : 0;
    size_t cap = 256;
    for (size_t i = 0; i < m->share_services.len; i++)
        cap += strlen(m->share_services.v[i].domain) + strlen(m->share_services.v[i].service_id) +
               2;
    for (size_t i = 0; i < m->domain_services.len; i++)
        cap += strlen(m->domain_services.v[i].service_id) + 1;
    cap += strlen(leader_id);
    char *sig = xmalloc(cap);
    size_t o = (size_t)snprintf(sig, cap, "%d|%d|%s|%s|%" PRIu64 "|", is_leader, m->healthy, state,
                                leader_id, lease);
    for (size_t i = 0; i < m->share_services.len; i++)
        o += (size_t)snprintf(sig + o, cap - o, "%s=%s,", m->share_services.v[i].domain,
                              m->share_services.v[i].service_id);
    o += (size_t)snprintf(sig + o, cap - o, "|");
    for (size_t i = 0; i < m->domain_services.len; i++)
        o += (size_t)snprintf(sig + o, cap - o, "%s,", m->domain_services.v[i].service_id);
    if (m->status_sig != NULL && strcmp(m->status_sig, sig) == 0) {
        free(sig);
        return;
    }
    free(m->status_sig);
    m->status_sig = sig;
    struct snap_leader s = {
            .is_leader = is_leader,
            .lease_until_boot_ms = lease,
            .healthy = m->healthy,
            .leader_id = xstrdup(leader_id),
            .state = xstrdup(state),
            .service_id = xstrdup(m->service_id),
            .domain = xstrdup(m->domain),
            .share_domain = xstrdup(m->share_domain),
            .share_services = svc_list_copy(&m->share_services),
            .share_services_len = m->share_services.len,
            .domain_services = svc_list_copy(&m->domain_services),
            .domain_services_len = m->domain_services.len,
    };
    throttler_set_leader_status(m->t, &s);
}

/* ---- leadership ---- */

static void start_serving(struct mysql_leader *m)
{
    if (m->serving)
        return;
    m->serving = true;
    throttler_set_leader(m->t, true);
    log_info("leader: leading domain %s (lease until %" PRIu64 " ms from now)", m->domain,
             m->lease_until_ms - clock_boot_ms());
    publish_status(m);
}

static void step_down(struct mysql_leader *m, const char *why)
{
    if (!m->leading && !(m->serving && !m->forced))
        return;
    m->leading = false;
    uv_timer_stop(m->lease_timer);
    if (m->serving && !m->forced) {
        m->serving = false;
        throttler_set_leader(m->t, false);
    }
    log_warn("leader: no longer leader of domain %s: %s", m->domain, why);
    publish_status(m);
}

static void on_lease_timer(uv_timer_t *h)
{
    struct mysql_leader *m = h->data;
    uint64_t now = clock_boot_ms();
    if (now < m->lease_until_ms) {
        /* libuv may fire a little early against the real clock. */
        uv_timer_start(m->lease_timer, on_lease_timer, m->lease_until_ms - now, 0);
        return;
    }
    char why[160];
    snprintf(why, sizeof(why), "the backend has not confirmed the lease for %" PRIu64 " ms",
             m->lease_ms);
    step_down(m, why);
}

/* Called when the read of a round whose refresh was sent at @sent_ms names
 * us. */
static void confirm_lease(struct mysql_leader *m, uint64_t sent_ms)
{
    uint64_t until = sent_ms + m->lease_ms, now = clock_boot_ms();
    if (until <= now)
        return; /* the answer came too late to be worth anything */
    if (until > m->lease_until_ms)
        m->lease_until_ms = until;
    uv_timer_start(m->lease_timer, on_lease_timer, m->lease_until_ms - now, 0);
    if (m->leading)
        return;
    m->leading = true;
    m->term++;
    log_info("leader: elected in domain %s; loading operator state before serving", m->domain);
    /* Serve only once the state is loaded, so a throttle written by the
     * previous leader a moment ago is enforced from our first answer. */
    m->want_apps = true;
    m->want_hosts = true;
    state_kick(m);
}

static void maybe_serve(struct mysql_leader *m)
{
    if (m->leading && m->apps_loaded_term == m->term && m->hosts_loaded_term == m->term &&
        clock_boot_ms() < m->lease_until_ms)
        start_serving(m);
}

/* ---- election round (elect_conn, every second) ---- */

static void elect_start(struct mysql_leader *m);

static void elect_end(struct mysql_leader *m)
{
    m->elect_busy = false;
    publish_status(m);
    if (m->stopping) {
        release_send(m);
        return;
    }
    if (m->elect_again) {
        m->elect_again = false;
        elect_start(m);
    }
}

/* Rounds run every second, so on their own a dead leader's row would be
 * taken over up to a second after it expires. A follower therefore also
 * plans one attempt for the very moment the database will let the row go;
 * each read re-plans it, so it only fires when the leader stopped renewing. */
static void on_takeover_timer(uv_timer_t *h)
{
    struct mysql_leader *m = h->data;
    if (m->stopping)
        return;
    if (m->elect_busy)
        m->elect_again = true;
    else
        elect_start(m);
}

static void plan_takeover(struct mysql_leader *m, const char *takeover_in_us)
{
    int64_t us;
    if (takeover_in_us == NULL || parse_i64(takeover_in_us, &us) < 0 || us <= 0 ||
        us > (m->ids.expiry_secs + 1) * 1000000)
        return;
    uv_timer_start(m->takeover_timer, on_takeover_timer, (uint64_t)us / 1000 + TAKEOVER_SLACK_MS,
                   0);
}

static void on_share_services(struct myconn *c, enum myconn_status status,
                              const struct myresult *res, const char *errmsg, void *arg)
{
    (void)c;
    struct mysql_leader *m = arg;
    if (m->stopping) {
        elect_end(m);
        return;
    }
    svc_list_clear(&m->share_services);
    if (status != MYCONN_OK) {
        chan_fail(m, &m->share_chan, status, errmsg);
    } else {
        chan_ok(m, &m->share_chan);
        m->share_services.v = xcalloc(res->nrows ? res->nrows : 1, sizeof(struct snap_service));
        for (size_t r = 0; r < res->nrows && res->ncols >= 2; r++) {
            const char *d = res->cells[r * res->ncols], *id = res->cells[r * res->ncols + 1];
            if (d == NULL || id == NULL)
                continue;
            struct snap_service *s = &m->share_services.v[m->share_services.len++];
            s->domain = xstrdup(d);
            s->service_id = xstrdup(id);
        }
    }
    elect_end(m);
}

static void on_read_leadership(struct myconn *c, enum myconn_status status,
                               const struct myresult *res, const char *errmsg, void *arg)
{
    struct mysql_leader *m = arg;
    if (m->stopping) {
        elect_end(m);
        return;
    }
    if (status != MYCONN_OK || res->nrows != 1 || res->ncols < 2) {
        /* As the original: keep the state, but unhealthy; the lease still
         * runs out on its own. */
        chan_fail(m, &m->elect_chan, status,
                  status != MYCONN_OK ? errmsg : "read leadership: unexpected result shape");
        if (is_missing_table(c, status))
            m->schema_ok = false;
        m->healthy = false;
        elect_end(m);
        return;
    }
    /* A round whose attempt failed is not a recovery, or a refresh that
     * keeps failing (say, no INSERT privilege) would log twice a second. */
    if (m->refresh_ok)
        chan_ok(m, &m->elect_chan);
    m->healthy = true;
    const char *mine = res->cells[0], *id = res->cells[1];
    free(m->leader_id);
    m->leader_id = xstrdup(id ? id : "");
    bool ours = mine != NULL && strcmp(mine, "1") == 0;
    if (!ours && res->ncols >= 3)
        plan_takeover(m, res->cells[2]);
    if (ours && m->refresh_ok) {
        confirm_lease(m, m->refresh_sent_ms);
    } else if (!ours && m->leading) {
        char why[300];
        snprintf(why, sizeof(why), "the backend names %s as leader",
                 m->leader_id[0] ? m->leader_id : "nobody");
        step_down(m, why);
    }
    maybe_serve(m);
    if (m->share_domain[0] == '\0') {
        elect_end(m);
        return;
    }
    char *sql = backend_sql_share_domain_services(&m->ids);
    myconn_query(c, sql, on_share_services, m);
    free(sql);
}

static void on_attempt(struct myconn *c, enum myconn_status status, const struct myresult *res,
                       const char *errmsg, void *arg)
{
    (void)res;
    struct mysql_leader *m = arg;
    if (m->stopping) {
        elect_end(m);
        return;
    }
    m->refresh_ok = status == MYCONN_OK;
    if (!m->refresh_ok) {
        chan_fail(m, &m->elect_chan, status, errmsg);
        if (is_missing_table(c, status))
            m->schema_ok = false;
    }
    /* Read even after a failed attempt, as the original does: followers
     * learn the leader, and a leader learns it was replaced. */
    char *sql = backend_sql_read_leadership(&m->ids);
    myconn_query(c, sql, on_read_leadership, m);
    free(sql);
}

static void attempt_send(struct mysql_leader *m)
{
    char *sql = backend_sql_attempt_leadership(&m->ids);
    m->refresh_ok = false;
    m->refresh_sent_ms = clock_boot_ms();
    myconn_query(m->elect_conn, sql, on_attempt, m);
    free(sql);
}

static void on_schema(struct myconn *c, enum myconn_status status, const struct myresult *res,
                      const char *errmsg, void *arg)
{
    (void)c;
    struct mysql_leader *m = arg;
    if (m->stopping) {
        elect_end(m);
        return;
    }
    if (status != MYCONN_OK || res->ncols < 3) {
        chan_fail(m, &m->elect_chan, status,
                  status != MYCONN_OK ? errmsg : "schema check: bad result");
        m->healthy = false;
        elect_end(m);
        return;
    }
    char missing[sizeof(m->schema_missing)];
    bool nullable;
    backend_schema_check(res->cells, res->nrows, missing, sizeof(missing), &nullable);
    if (missing[0] != '\0') {
        chan_ok(m, &m->elect_chan);
        if (strcmp(missing, m->schema_missing) != 0)
            log_error(
                    "leader: backend %s: missing tables %s; create them with freno --init-backend --config FILE, or from sql/backend-schema.sql",
                    m->backend, missing);
        snprintf(m->schema_missing, sizeof(m->schema_missing), "%s", missing);
        m->healthy = false;
        elect_end(m);
        return;
    }
    if (m->schema_missing[0] != '\0')
        log_info("leader: backend %s: all tables present now", m->backend);
    m->schema_missing[0] = '\0';
    if (!nullable && m->apps_expiry_nullable)
        log_error(
                "leader: backend %s: throttled_apps.expires_at is NOT NULL, so permanent throttles cannot be stored and are refused; fix: ALTER TABLE throttled_apps MODIFY expires_at timestamp NULL DEFAULT NULL",
                m->backend);
    m->apps_expiry_nullable = nullable;
    m->schema_ok = true;
    attempt_send(m);
    state_kick(m);
}

static void on_elect_timer(uv_timer_t *h)
{
    struct mysql_leader *m = h->data;
    if (m->stopping || m->elect_busy)
        return; /* a slow round is not piled on */
    elect_start(m);
}

static void elect_start(struct mysql_leader *m)
{
    m->elect_busy = true;
    if (!m->schema_ok) {
        char *sql = backend_sql_schema_columns();
        myconn_query(m->elect_conn, sql, on_schema, m);
        free(sql);
    } else {
        attempt_send(m);
    }
    /* A promotion whose state load failed retries once a round. */
    if (m->leading && !m->serving) {
        m->want_apps |= m->apps_loaded_term != m->term;
        m->want_hosts |= m->hosts_loaded_term != m->term;
        state_kick(m);
    }
}

/* ---- state connection: health, domain services, reloads ---- */

static void on_domain_services(struct myconn *c, enum myconn_status status,
                               const struct myresult *res, const char *errmsg, void *arg)
{
    (void)c;
    struct mysql_leader *m = arg;
    if (status != MYCONN_OK) {
        chan_fail(m, &m->health_chan, status, errmsg);
    } else {
        chan_ok(m, &m->health_chan);
        svc_list_clear(&m->domain_services);
        m->domain_services.v = xcalloc(res->nrows ? res->nrows : 1, sizeof(struct snap_service));
        for (size_t r = 0; r < res->nrows && res->ncols >= 1; r++) {
            const char *id = res->cells[r * res->ncols];
            if (id == NULL)
                continue;
            struct snap_service *s = &m->domain_services.v[m->domain_services.len++];
            s->domain = xstrdup(m->domain);
            s->service_id = xstrdup(id);
        }
        publish_status(m);
    }
    state_kick(m);
}

static void on_health(struct myconn *c, enum myconn_status status, const struct myresult *res,
                      const char *errmsg, void *arg)
{
    (void)res;
    struct mysql_leader *m = arg;
    if (status != MYCONN_OK) {
        chan_fail(m, &m->health_chan, status, errmsg);
        state_kick(m);
        return;
    }
    char *sql = backend_sql_healthy_domain_services(&m->ids);
    myconn_query(c, sql, on_domain_services, m);
    free(sql);
}

/* Logs rows rejected by this load that the previous load did not reject, so
 * a bad row costs one line, not one every 10 s. Takes @now (a map of keys). */
static void bad_rows_swap(struct strmap *old, struct strmap *now)
{
    strmap_deinit(old);
    *old = *now;
}

static void bad_row(struct mysql_leader *m, struct strmap *old, struct strmap *now,
                    const char *table, const char *name, const char *reason)
{
    char key[600];
    snprintf(key, sizeof(key), "%s\x1f%s", name ? name : "", reason);
    if (strmap_get(old, key) == NULL) {
        char pn[200];
        log_warn("leader: backend %s: %s: rejecting row \"%s\": %s", m->backend, table,
                 printable(name, pn, sizeof(pn)), reason);
    }
    strmap_put(now, key, &marker);
}

struct cur_ratio {
    bool filled;
    struct strmap map; /* key -> double * */
};

static void collect_ratio(const char *key, uint64_t expire_at_ms, double ratio, void *arg)
{
    (void)expire_at_ms;
    struct cur_ratio *c = arg;
    double *r = xmalloc(sizeof(*r));
    *r = ratio;
    free(strmap_put(&c->map, key, r));
}

/* The ratio @key has here now, or 1. The map of current ratios is made on
 * the first call only: a Go node's sentinel is rare, and the map would cost
 * one allocation per throttled app on every reload. */
static double cur_ratio_of(struct mysql_leader *m, struct cur_ratio *c, const char *key)
{
    if (!c->filled) {
        throttler_each_app(m->t, collect_ratio, c);
        c->filled = true;
    }
    const double *have = strmap_get(&c->map, key);
    return have ? *have : 1.0;
}

/* Logs once when a load found more live rows than the cap, and again only
 * after a load that did not. */
static void note_over_cap(struct mysql_leader *m, bool over, bool *logged, const char *table,
                          size_t max, const char *key)
{
    if (over && !*logged)
        log_warn(
                "leader: backend %s: %s: more than %zu live rows; using the %zu written most recently (%s)",
                m->backend, table, max, max, key);
    *logged = over;
}

static void on_load_apps(struct myconn *c, enum myconn_status status, const struct myresult *res,
                         const char *errmsg, void *arg)
{
    (void)c;
    struct mysql_leader *m = arg;
    if (status != MYCONN_OK || res->ncols < 5) {
        chan_fail(m, &m->apps_chan, status,
                  status != MYCONN_OK ? errmsg : "unexpected result shape");
        if (is_missing_table(c, status))
            m->schema_ok = false;
        state_kick(m);
        return;
    }
    chan_ok(m, &m->apps_chan);
    if (m->job_gen != m->ops_gen) {
        /* An operator change landed while this was in flight; the rows may
         * predate it. Read again rather than undo it. */
        m->want_apps = true;
        state_kick(m);
        return;
    }
    uint64_t now_ms = clock_wall_ms();
    struct cur_ratio cur = {0};
    strmap_init(&cur.map);
    struct strmap bad;
    strmap_init(&bad);
    struct throttler_app *v = xcalloc(res->nrows ? res->nrows : 1, sizeof(*v));
    size_t n = 0;
    bool over = false;
    for (size_t r = 0; r < res->nrows; r++) {
        struct backend_app a;
        struct err err = {0};
        const char *const *cells = res->cells + r * res->ncols;
        enum backend_row kind = backend_parse_app(cells, now_ms, &a, &err);
        if (kind == BACKEND_ROW_BAD) {
            bad_row(m, &m->bad_apps, &bad, "throttled_apps", cells[0], err.msg);
            continue;
        }
        if (kind == BACKEND_ROW_EXPIRED)
            continue;
        if (n == m->max_apps) {
            over = true; /* the statement asked for one row more than the cap */
            break;
        }
        /* A Go node's "no ratio given": keep ours, or 1, as it would. */
        double ratio = a.ratio < 0 ? cur_ratio_of(m, &cur, a.key) : a.ratio;
        v[n++] = (struct throttler_app){
                .key = a.key, .expire_at_ms = a.expire_at_ms, .ratio = ratio};
    }
    note_over_cap(m, over, &m->apps_over_logged, "throttled_apps", m->max_apps, "MaxThrottledApps");
    throttler_replace_apps(m->t, v, n);
    free(v);
    bad_rows_swap(&m->bad_apps, &bad);
    strmap_deinit_values(&cur.map, free);
    if (m->job_term == m->term)
        m->apps_loaded_term = m->term;
    maybe_serve(m);
    state_kick(m);
}

static void on_load_hosts(struct myconn *c, enum myconn_status status, const struct myresult *res,
                          const char *errmsg, void *arg)
{
    (void)c;
    struct mysql_leader *m = arg;
    if (status != MYCONN_OK || res->ncols < 3) {
        chan_fail(m, &m->hosts_chan, status,
                  status != MYCONN_OK ? errmsg : "unexpected result shape");
        if (is_missing_table(c, status))
            m->schema_ok = false;
        state_kick(m);
        return;
    }
    chan_ok(m, &m->hosts_chan);
    if (m->job_gen != m->ops_gen) {
        m->want_hosts = true;
        state_kick(m);
        return;
    }
    uint64_t now_ms = clock_wall_ms();
    struct strmap bad;
    strmap_init(&bad);
    struct throttler_host *v = xcalloc(res->nrows ? res->nrows : 1, sizeof(*v));
    size_t n = 0;
    bool over = false;
    for (size_t r = 0; r < res->nrows; r++) {
        struct backend_host h;
        struct err err = {0};
        const char *const *cells = res->cells + r * res->ncols;
        enum backend_row kind = backend_parse_host(cells, now_ms, &h, &err);
        if (kind == BACKEND_ROW_BAD) {
            bad_row(m, &m->bad_hosts, &bad, "skipped_hosts", cells[0], err.msg);
        } else if (kind == BACKEND_ROW_OK) {
            if (n == m->max_hosts) {
                over = true;
                break;
            }
            v[n++] = (struct throttler_host){.host = h.host, .expire_at_ms = h.expire_at_ms};
        }
    }
    note_over_cap(m, over, &m->hosts_over_logged, "skipped_hosts", m->max_hosts, "MaxSkippedHosts");
    throttler_replace_skipped_hosts(m->t, v, n);
    free(v);
    bad_rows_swap(&m->bad_hosts, &bad);
    if (m->job_term == m->term)
        m->hosts_loaded_term = m->term;
    maybe_serve(m);
    state_kick(m);
}

/* Starts the next wanted job when the state connection is idle. A failed
 * job is not retried here (that would spin on a dead backend); its timer or
 * the next election round asks again. */
static void state_kick(struct mysql_leader *m)
{
    if (m->stopping || myconn_is_busy(m->state_conn) || !m->schema_ok)
        return;
    char *sql;
    myconn_done_fn *cb;
    /* A load asks for one row more than the cap, to tell "exactly the cap"
     * from "more than the cap". */
    struct myquery_limits lim = {0};
    m->job_gen = m->ops_gen;
    m->job_term = m->term;
    if (m->want_apps) {
        m->want_apps = false;
        lim.max_rows = m->max_apps + 1;
        sql = backend_sql_load_apps(lim.max_rows);
        cb = on_load_apps;
    } else if (m->want_hosts) {
        m->want_hosts = false;
        lim.max_rows = m->max_hosts + 1;
        sql = backend_sql_load_hosts(lim.max_rows);
        cb = on_load_hosts;
    } else if (m->want_health) {
        m->want_health = false;
        sql = backend_sql_register_health(&m->ids);
        cb = on_health;
    } else {
        return;
    }
    lim.max_bytes = lim.max_rows * BACKEND_LOAD_ROW_BYTES_MAX;
    lim.timeout_ms = LOAD_TIMEOUT_MS + (uint32_t)(lim.max_rows / LOAD_ROWS_PER_TIMEOUT_MS);
    myconn_query_limited(m->state_conn, sql, cb == on_health ? NULL : &lim, cb, m);
    free(sql);
}

static void on_health_timer(uv_timer_t *h)
{
    struct mysql_leader *m = h->data;
    m->want_health = true;
    state_kick(m);
}

static void on_reload_timer(uv_timer_t *h)
{
    struct mysql_leader *m = h->data;
    /* Followers too: the original reloads apps on every node; we add the
     * skipped hosts, so an operator's call to any node reaches the leader. */
    m->want_apps = true;
    m->want_hosts = true;
    state_kick(m);
}

/* ---- ShareDomain ---- */

static void on_share_polled(const struct share_health *v, size_t n, void *arg)
{
    struct mysql_leader *m = arg;
    uint64_t now_ms = clock_wall_ms();
    for (size_t i = 0; i < n; i++)
        throttler_set_share_health(m->t, v[i].metric, v[i].seconds_since_healthy, now_ms);
}

static void on_share_timer(uv_timer_t *h)
{
    struct mysql_leader *m = h->data;
    if (!m->serving || m->share_services.len == 0 || share_poll_is_busy(m->share))
        return;
    const char **ids = xcalloc(m->share_services.len, sizeof(*ids));
    for (size_t i = 0; i < m->share_services.len; i++)
        ids[i] = m->share_services.v[i].service_id;
    share_poll_start(m->share, ids, m->share_services.len, on_share_polled, m);
    free(ids);
}

/* ---- operator commands (ops_conn) ---- */

static void op_finish(struct mysql_leader *m, struct op *o, int status, const char *msg)
{
    loop_cmd_finish(m->loop, o->cmd, status, msg);
    free(o->sql);
    free(o);
}

static const char *cmd_what(const struct loop_cmd *cmd)
{
    switch (cmd->kind) {
    case LOOP_CMD_THROTTLE_APP:
        return "throttle-app";
    case LOOP_CMD_UNTHROTTLE_APP:
        return "unthrottle-app";
    case LOOP_CMD_SKIP_HOST:
        return "skip-host";
    case LOOP_CMD_RECOVER_HOST:
        return "recover-host";
    }
    return "command";
}

static void op_pop(struct mysql_leader *m)
{
    m->ops_head = m->ops_head->next;
    if (m->ops_head == NULL)
        m->ops_tail = NULL;
}

/* The backend has the change: apply it here too and answer 200. */
static void op_apply(struct mysql_leader *m, struct op *o, const struct myresult *readback)
{
    struct loop_cmd *cmd = o->cmd;
    struct err err = {0};
    int rc = 0;
    m->ops_gen++;
    switch (cmd->kind) {
    case LOOP_CMD_THROTTLE_APP: {
        struct backend_app a = {0};
        enum backend_row kind = BACKEND_ROW_BAD;
        if (readback != NULL && readback->nrows == 1 && readback->ncols >= 5)
            kind = backend_parse_app(readback->cells, clock_wall_ms(), &a, &err);
        if (kind == BACKEND_ROW_OK) {
            throttler_put_app(m->t, cmd->name, a.expire_at_ms, a.ratio < 0 ? 1.0 : a.ratio);
            throttler_publish(m->t);
        } else {
            /* The row is written but could not be read back: the same
             * semantics on our copy, and the next reload settles it. */
            rc = throttler_throttle_app(m->t, cmd->name, cmd->has_ttl, cmd->ttl_min, cmd->has_ratio,
                                        cmd->ratio, &err);
        }
        break;
    }
    case LOOP_CMD_UNTHROTTLE_APP:
        throttler_unthrottle_app(m->t, cmd->name);
        break;
    case LOOP_CMD_SKIP_HOST:
        rc = throttler_skip_host(m->t, cmd->name, cmd->has_ttl, cmd->ttl_min, &err);
        break;
    case LOOP_CMD_RECOVER_HOST:
        throttler_recover_host(m->t, cmd->name);
        break;
    }
    if (rc < 0)
        log_warn("leader: %s %s: stored in the backend but not applied here: %s", cmd_what(cmd),
                 cmd->name, err.msg);
    op_pop(m);
    op_finish(m, o, 200, "OK");
}

static void on_op(struct myconn *c, enum myconn_status status, const struct myresult *res,
                  const char *errmsg, void *arg)
{
    struct mysql_leader *m = arg;
    struct op *o = m->ops_head;
    if (o->phase == OP_READ_BACK) {
        op_apply(m, o, status == MYCONN_OK ? res : NULL);
        ops_kick(m);
        return;
    }
    if (status == MYCONN_ERR_CONNECT && o->attempts < OP_ATTEMPTS && !m->stopping) {
        /* Nothing reached the server, so trying again cannot apply it twice. */
        ops_kick(m);
        return;
    }
    if (status != MYCONN_OK) {
        /* A statement sent and then lost (timeout, dropped connection) may
         * have been applied: say so rather than let the client assume not. */
        bool unknown = status == MYCONN_ERR_TIMEOUT || status == MYCONN_ERR_IO;
        char msg[256];
        snprintf(msg, sizeof(msg), "%s: backend %s: %s%s", cmd_what(o->cmd), m->backend, errmsg,
                 unknown ? "; the outcome is unknown: it may or may not be applied" : "");
        log_warn("leader: %s %s refused: %s", cmd_what(o->cmd), o->cmd->name, msg);
        op_pop(m);
        op_finish(m, o, 500, msg);
        ops_kick(m);
        return;
    }
    if (o->cmd->kind == LOOP_CMD_THROTTLE_APP) {
        m->ops_gen++;
        o->phase = OP_READ_BACK;
        char *sql = backend_sql_read_app(o->cmd->name);
        myconn_query(c, sql, on_op, m);
        free(sql);
        return;
    }
    op_apply(m, o, NULL);
    ops_kick(m);
}

static void ops_kick(struct mysql_leader *m)
{
    if (m->ops_head == NULL || myconn_is_busy(m->ops_conn))
        return;
    struct op *o = m->ops_head;
    o->attempts++;
    myconn_query(m->ops_conn, o->sql, on_op, m);
}

/* Checks @cmd and builds its statement; NULL with @msg set when refused. */
static char *op_sql(const struct mysql_leader *m, const struct loop_cmd *cmd, char *msg,
                    size_t size)
{
    const char *what = cmd_what(cmd);
    size_t len = strlen(cmd->name);
    if (len == 0 || len > BACKEND_NAME_MAX) {
        snprintf(msg, size, "%s: name must be 1 to %d bytes, got %zu", what, BACKEND_NAME_MAX, len);
        return NULL;
    }
    if (cmd->has_ttl && (cmd->ttl_min < 0 || cmd->ttl_min > TTL_MAX_MIN)) {
        snprintf(msg, size, "%s: ttl %" PRId64 " minutes is outside 0..%lld", what, cmd->ttl_min,
                 TTL_MAX_MIN);
        return NULL;
    }
    switch (cmd->kind) {
    case LOOP_CMD_THROTTLE_APP: {
        if (cmd->has_ratio && !(cmd->ratio >= 0 && cmd->ratio <= 1)) {
            snprintf(msg, size, "%s: ratio must be in [0..1] range; got %g", what, cmd->ratio);
            return NULL;
        }
        bool permanent = !cmd->has_ttl || cmd->ttl_min == 0;
        if (permanent && !m->apps_expiry_nullable) {
            snprintf(
                    msg, size,
                    "%s: backend %s: throttled_apps.expires_at is NOT NULL, so a throttle without ttl cannot be stored",
                    what, m->backend);
            return NULL;
        }
        return backend_sql_throttle_app(cmd->name, cmd->has_ttl, cmd->ttl_min, cmd->has_ratio,
                                        cmd->ratio);
    }
    case LOOP_CMD_UNTHROTTLE_APP:
        return backend_sql_unthrottle_app(cmd->name);
    case LOOP_CMD_SKIP_HOST:
        return backend_sql_skip_host(cmd->name,
                                     cmd->has_ttl && cmd->ttl_min > 0 ? cmd->ttl_min : 60);
    case LOOP_CMD_RECOVER_HOST:
        return backend_sql_recover_host(cmd->name);
    }
    snprintf(msg, size, "%s: unknown command", what);
    return NULL;
}

static void mysql_submit(struct leader *l, struct loop_cmd *cmd)
{
    struct mysql_leader *m = l->impl;
    char msg[256];
    if (m->stopping) {
        loop_cmd_finish(m->loop, cmd, 503, "shutting down");
        return;
    }
    /* The caps are checked before the backend is written: a request past
     * them changes nothing, here or there. Queued commands that will add an
     * entry count as added. */
    bool adds = false;
    if (cmd->kind == LOOP_CMD_THROTTLE_APP || cmd->kind == LOOP_CMD_SKIP_HOST) {
        bool app = cmd->kind == LOOP_CMD_THROTTLE_APP;
        adds = app ? throttler_app_is_new(m->t, cmd->name) : throttler_host_is_new(m->t, cmd->name);
        size_t pending = 0;
        for (const struct op *q = m->ops_head; q != NULL; q = q->next)
            pending += q->adds && q->cmd->kind == cmd->kind;
        struct err err = {0};
        int rc = 0;
        if (adds)
            rc = app ? throttler_room_for_app(m->t, cmd->name, pending, &err)
                     : throttler_room_for_host(m->t, cmd->name, pending, &err);
        if (rc < 0) {
            loop_cmd_finish(m->loop, cmd, 500, err.msg);
            return;
        }
    }
    char *sql = op_sql(m, cmd, msg, sizeof(msg));
    if (sql == NULL) {
        loop_cmd_finish(m->loop, cmd, 500, msg);
        return;
    }
    struct op *o = xcalloc(1, sizeof(*o));
    o->cmd = cmd;
    o->sql = sql;
    o->adds = adds;
    if (m->ops_tail != NULL)
        m->ops_tail->next = o;
    else
        m->ops_head = o;
    m->ops_tail = o;
    ops_kick(m);
}

/* ---- shutdown ---- */

static void shutdown_done(struct mysql_leader *m)
{
    if (m->done == NULL)
        return;
    void (*done)(void *arg) = m->done;
    m->done = NULL;
    uv_timer_stop(m->stop_timer);
    done(m->done_arg);
}

static void on_released(struct myconn *c, enum myconn_status status, const struct myresult *res,
                        const char *errmsg, void *arg)
{
    (void)c;
    struct mysql_leader *m = arg;
    if (status != MYCONN_OK)
        log_warn(
                "leader: backend %s: could not release the election row: %s; peers take over when it expires",
                m->backend, errmsg);
    else if (res->affected_rows > 0)
        log_info("leader: released leadership of domain %s", m->domain);
    shutdown_done(m);
}

static void release_send(struct mysql_leader *m)
{
    if (m->release_sent)
        return;
    m->release_sent = true;
    char *sql = backend_sql_release(&m->ids);
    myconn_query(m->elect_conn, sql, on_released, m);
    free(sql);
}

static void on_stop_timer(uv_timer_t *h)
{
    struct mysql_leader *m = h->data;
    log_warn(
            "leader: backend %s: no answer to the release within %d ms; peers take over when the row expires",
            m->backend, RELEASE_DEADLINE_MS);
    shutdown_done(m);
}

static void mysql_shutdown(struct leader *l, void (*done)(void *arg), void *arg)
{
    struct mysql_leader *m = l->impl;
    m->stopping = true;
    m->done = done;
    m->done_arg = arg;
    uv_timer_stop(m->elect_timer);
    uv_timer_stop(m->health_timer);
    uv_timer_stop(m->reload_timer);
    uv_timer_stop(m->share_timer);
    uv_timer_stop(m->takeover_timer);
    /* Stop answering as leader before the row is let go: a peer may lead
     * the instant it is. */
    m->forced = false;
    step_down(m, "shutting down");
    uv_timer_start(m->stop_timer, on_stop_timer, RELEASE_DEADLINE_MS, 0);
    /* On a busy connection the round's callback sends the release, so our
     * own refresh cannot land after it. */
    if (!m->elect_busy)
        release_send(m);
}

static void mysql_free(struct leader *l)
{
    struct mysql_leader *m = l->impl;
    if (m == NULL)
        return;
    loop_timer_close(&m->elect_timer);
    loop_timer_close(&m->health_timer);
    loop_timer_close(&m->reload_timer);
    loop_timer_close(&m->share_timer);
    loop_timer_close(&m->lease_timer);
    loop_timer_close(&m->takeover_timer);
    loop_timer_close(&m->stop_timer);
    share_poll_free(m->share);
    /* Abandoned queries never call back, so finish their commands here. */
    myconn_free(m->elect_conn);
    myconn_free(m->state_conn);
    myconn_free(m->ops_conn);
    while (m->ops_head != NULL) {
        struct op *o = m->ops_head;
        op_pop(m);
        op_finish(m, o, 503, "shutting down");
    }
    svc_list_clear(&m->share_services);
    svc_list_clear(&m->domain_services);
    strmap_deinit(&m->bad_apps);
    strmap_deinit(&m->bad_hosts);
    free(m->leader_id);
    free(m->status_sig);
    free(m->backend_buf);
    free(m->domain);
    free(m->share_domain);
    free(m->service_id);
    backend_ids_deinit(&m->ids);
    free(m);
    l->impl = NULL;
}

static const struct leader_ops mysql_ops = {"mysql-backend", mysql_submit, mysql_shutdown,
                                            mysql_free};

/* ---- start ---- */

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
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
                " is outside %d..%d (it must exceed twice the 1 s election interval plus the 1 s safety margin)",
                e, CONFIG_ELECTION_EXPIRY_MIN_SECS, CONFIG_ELECTION_EXPIRY_MAX_SECS);
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

int leader_mysql_init(struct leader *l, struct err *err)
{
    const struct config *cfg = l->p.cfg;
    int rc = check_settings(cfg, l->p.service_id, err);
    if (rc < 0)
        return rc;
    struct mysql_leader *m = xcalloc(1, sizeof(*m));
    m->l = l;
    m->loop = l->p.loop;
    m->t = l->p.throttler;
    m->domain = xstrdup(str_or_empty(cfg->domain));
    m->share_domain = xstrdup(str_or_empty(cfg->share_domain));
    m->service_id = xstrdup(l->p.service_id);
    backend_ids_init(&m->ids, m->domain, m->share_domain, m->service_id,
                     cfg->backend_election_expiry_secs);
    m->lease_ms = (uint64_t)m->ids.expiry_secs * 1000 - LEASE_MARGIN_MS;
    m->backend_buf = xasprintf("%s:%u/%s", cfg->backend_host, (unsigned)cfg->backend_port,
                               cfg->backend_schema);
    m->backend = m->backend_buf;
    m->forced = l->p.force_leadership;
    m->apps_expiry_nullable = true;
    m->max_apps = cfg->max_throttled_apps > 0 ? (size_t)cfg->max_throttled_apps
                                              : APP_THROTTLE_DEFAULT_MAX;
    m->max_hosts =
            cfg->max_skipped_hosts > 0 ? (size_t)cfg->max_skipped_hosts : SKIPPED_HOSTS_DEFAULT_MAX;
    m->elect_chan.name = "election";
    m->health_chan.name = "health";
    m->apps_chan.name = "throttled_apps";
    m->hosts_chan.name = "skipped_hosts";
    m->share_chan.name = "share-domain services";
    strmap_init(&m->bad_apps);
    strmap_init(&m->bad_hosts);
    char charset[64];
    backend_charset_of(cfg->backend_collation, charset, sizeof(charset));
    m->elect_conn = conn_new(m, cfg, charset);
    m->state_conn = conn_new(m, cfg, charset);
    m->ops_conn = conn_new(m, cfg, charset);
    m->share = share_poll_new(m->loop, SHARE_TIMEOUT_MS);
    if (m->share == NULL) {
        myconn_free(m->elect_conn);
        myconn_free(m->state_conn);
        myconn_free(m->ops_conn);
        free(m->domain);
        free(m->share_domain);
        free(m->service_id);
        backend_ids_deinit(&m->ids);
        free(m->backend_buf);
        free(m);
        return err_set(err, -ENOMEM,
                       "leader: cannot create the ShareDomain poller (curl_multi_init failed)");
    }
    l->impl = m;
    l->ops = &mysql_ops;

    m->elect_timer = loop_timer_new(m->loop, m);
    m->health_timer = loop_timer_new(m->loop, m);
    m->reload_timer = loop_timer_new(m->loop, m);
    m->share_timer = loop_timer_new(m->loop, m);
    m->lease_timer = loop_timer_new(m->loop, m);
    m->takeover_timer = loop_timer_new(m->loop, m);
    m->stop_timer = loop_timer_new(m->loop, m);
    /* The first round at once, so a lone node leads in about a second. */
    uv_timer_start(m->elect_timer, on_elect_timer, 0, ELECTION_INTERVAL_MS);
    uv_timer_start(m->health_timer, on_health_timer, 0, HEALTH_INTERVAL_MS);
    uv_timer_start(m->reload_timer, on_reload_timer, RELOAD_FIRST_MS, RELOAD_INTERVAL_MS);
    uv_timer_start(m->share_timer, on_share_timer, SHARE_INTERVAL_MS, SHARE_INTERVAL_MS);
    if (m->forced) {
        /* As the original: --force-leadership leads whatever the backend
         * says; the election still runs for the status endpoints. */
        m->serving = true;
        throttler_set_leader(m->t, true);
    }
    publish_status(m);
    log_info("leader: MySQL backend %s, domain %s, share domain %s, expiry %" PRId64
             " s (lease %" PRIu64 " ms)",
             m->backend, m->domain, m->share_domain[0] ? m->share_domain : "(none)",
             m->ids.expiry_secs, m->lease_ms);
    return 0;
}
