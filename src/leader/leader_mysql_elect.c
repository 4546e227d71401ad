/* SPDX-License-Identifier: MIT */
/* Election and lease through the MySQL backend: the round every second on
 * the election connection (docs/ha.md#rounds), the lease it grants
 * (docs/ha.md#lease) and the release of the row at shutdown
 * (docs/ha.md#shutdown). Loop thread. Key invariant: this node answers as
 * leader only while it holds a lease that the database granted; see "Why
 * two nodes never both lead" below. */
#include "leader/leader_mysql_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/parse.h"
#include "core/xalloc.h"
#include "log/log.h"
#include "loop/loop_timer.h"
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

#define RELEASE_DEADLINE_MS 1800
/* After the moment the database will let a row go, so our statement's now()
 * is surely past it. */
#define TAKEOVER_SLACK_MS 50

static void release_send(struct mysql_leader *m);

/* ---- status ---- */

/* The status in one string, to tell whether it changed. */
static char *status_signature(const struct mysql_leader *m, const char *state,
                              const char *leader_id, uint64_t lease)
{
    size_t cap = 256 + strlen(leader_id);
    for (size_t i = 0; i < m->share_services.len; i++)
        cap += strlen(m->share_services.v[i].domain) + strlen(m->share_services.v[i].service_id) +
               2;
    for (size_t i = 0; i < m->domain_services.len; i++)
        cap += strlen(m->domain_services.v[i].service_id) + 1;
    char *sig = xmalloc(cap);
    size_t o = (size_t)snprintf(sig, cap, "%d|%d|%s|%s|%" PRIu64 "|", m->serving, m->healthy, state,
                                leader_id, lease);
    for (size_t i = 0; i < m->share_services.len; i++)
        o += (size_t)snprintf(sig + o, cap - o, "%s=%s,", m->share_services.v[i].domain,
                              m->share_services.v[i].service_id);
    o += (size_t)snprintf(sig + o, cap - o, "|");
    for (size_t i = 0; i < m->domain_services.len; i++)
        o += (size_t)snprintf(sig + o, cap - o, "%s,", m->domain_services.v[i].service_id);
    return sig;
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

void leader_mysql_publish_status(struct mysql_leader *m)
{
    /* As the original, State tells the election's view even when
     * --force-leadership makes this node lead anyway. */
    bool elected = m->forced ? m->leading : m->serving;
    const char *state = elected ? "Leader" : m->healthy ? "Healthy" : "Unhealthy";
    const char *leader_id = m->leading   ? m->ids.service_id.text
                            : m->healthy ? (m->leader_id ? m->leader_id : "")
                                         : "";
    uint64_t lease = m->serving && !m->forced ? m->lease_until_ms : 0;
    char *sig = status_signature(m, state, leader_id, lease);
    if (m->status_sig != NULL && strcmp(m->status_sig, sig) == 0) {
        free(sig);
        return;
    }
    free(m->status_sig);
    m->status_sig = sig;
    struct snap_leader s = leader_status(m->l, m->ids.service_id.text, state, leader_id);
    s.is_leader = m->serving;
    s.lease_until_boot_ms = lease;
    s.healthy = m->healthy;
    s.share_services = svc_list_copy(&m->share_services);
    s.share_services_len = m->share_services.len;
    s.domain_services = svc_list_copy(&m->domain_services);
    s.domain_services_len = m->domain_services.len;
    leader_publish(m->l, &s);
}

/* ---- leadership ---- */

static void start_serving(struct mysql_leader *m)
{
    if (m->serving)
        return;
    m->serving = true;
    throttler_set_leader(m->t, true);
    log_info("leader: leading domain %s (lease until %" PRIu64 " ms from now)", m->ids.domain.text,
             m->lease_until_ms - clock_boot_ms());
    leader_mysql_publish_status(m);
    leader_set_known(m->l);
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
    log_warn("leader: no longer leader of domain %s: %s", m->ids.domain.text, why);
    leader_mysql_publish_status(m);
    leader_set_known(m->l);
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
    log_info("leader: elected in domain %s; loading operator state before serving",
             m->ids.domain.text);
    /* Serve only once the state is loaded, so a throttle written by the
     * previous leader a moment ago is enforced from our first answer. */
    m->apps.want = true;
    m->hosts.want = true;
    m->rules.want = true;
    leader_mysql_state_kick(m);
}

void leader_mysql_maybe_serve(struct mysql_leader *m)
{
    if (m->leading && m->apps.loaded_term == m->term && m->hosts.loaded_term == m->term &&
        (m->rules.loaded_term == m->term || !m->rules_present) &&
        clock_boot_ms() < m->lease_until_ms)
        start_serving(m);
}

/* ---- election round (elect_conn, every second) ---- */

static void elect_start(struct mysql_leader *m);

static void elect_end(struct mysql_leader *m)
{
    m->elect_busy = false;
    leader_mysql_publish_status(m);
    /* Answered or failed, the first round tells whether this node leads;
     * when it elected this node, serving (its operator state loaded) or
     * stepping down does. */
    if (!m->leading || m->serving)
        leader_set_known(m->l);
    if (m->stopping) {
        release_send(m);
        return;
    }
    if (m->elect_again) {
        m->elect_again = false;
        elect_start(m);
    }
}

/* At shutdown a round goes no further: ending it sends the release. */
static bool round_stopped(struct mysql_leader *m)
{
    if (m->stopping)
        elect_end(m);
    return m->stopping;
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
    if (round_stopped(m))
        return;
    leader_mysql_svc_clear(&m->share_services);
    if (status != MYCONN_OK) {
        leader_mysql_chan_fail(m, &m->share_chan, status, errmsg);
    } else {
        leader_mysql_chan_ok(m, &m->share_chan);
        leader_mysql_svc_fill(&m->share_services, res, NULL);
    }
    elect_end(m);
}

/* The round's read says who leads: confirm our lease, or step down. */
static void on_read_leadership(struct myconn *c, enum myconn_status status,
                               const struct myresult *res, const char *errmsg, void *arg)
{
    struct mysql_leader *m = arg;
    if (round_stopped(m))
        return;
    if (status != MYCONN_OK || res->nrows != 1 || res->ncols < 2) {
        /* As the original: keep the state, but unhealthy; the lease still
         * runs out on its own. */
        leader_mysql_query_failed(m, &m->elect_chan, c, status,
                                  status != MYCONN_OK ? errmsg
                                                      : "read leadership: unexpected result shape");
        m->healthy = false;
        elect_end(m);
        return;
    }
    /* A round whose attempt failed is not a recovery, or a refresh that
     * keeps failing (say, no INSERT privilege) would log twice a second. */
    if (m->refresh_ok)
        leader_mysql_chan_ok(m, &m->elect_chan);
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
    leader_mysql_maybe_serve(m);
    if (m->ids.share_domain.text[0] == '\0') {
        elect_end(m);
        return;
    }
    leader_mysql_send(c, backend_sql_share_domain_services(&m->ids), on_share_services, m);
}

static void on_attempt(struct myconn *c, enum myconn_status status, const struct myresult *res,
                       const char *errmsg, void *arg)
{
    (void)res;
    struct mysql_leader *m = arg;
    if (round_stopped(m))
        return;
    m->refresh_ok = status == MYCONN_OK;
    if (!m->refresh_ok)
        leader_mysql_query_failed(m, &m->elect_chan, c, status, errmsg);
    /* Read even after a failed attempt, as the original does: followers
     * learn the leader, and a leader learns it was replaced. */
    leader_mysql_send(c, backend_sql_read_leadership(&m->ids), on_read_leadership, m);
}

static void attempt_send(struct mysql_leader *m)
{
    m->refresh_ok = false;
    m->refresh_sent_ms = clock_boot_ms();
    leader_mysql_send(m->elect_conn, backend_sql_attempt_leadership(&m->ids), on_attempt, m);
}

static void on_schema(struct myconn *c, enum myconn_status status, const struct myresult *res,
                      const char *errmsg, void *arg)
{
    (void)c;
    struct mysql_leader *m = arg;
    if (round_stopped(m))
        return;
    if (status != MYCONN_OK || res->ncols < BACKEND_SCHEMA_COLUMNS) {
        leader_mysql_chan_fail(m, &m->elect_chan, status,
                               status != MYCONN_OK ? errmsg : "schema check: bad result");
        m->healthy = false;
        elect_end(m);
        return;
    }
    char missing[sizeof(m->schema_missing)];
    bool nullable;
    backend_schema_check(res->cells, res->nrows, missing, sizeof(missing), &nullable);
    if (missing[0] != '\0') {
        leader_mysql_chan_ok(m, &m->elect_chan);
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
                "leader: backend %s: throttled_apps.expires_at is NOT NULL, so permanent throttles cannot be stored and are refused; fix: %s",
                m->backend, BACKEND_FIX_APPS_EXPIRY);
    m->apps_expiry_nullable = nullable;
    bool rules = backend_schema_has_rules(res->cells, res->nrows);
    if (!rules && (m->rules_present || !m->rules_absence_logged))
        log_warn(
                "leader: backend %s: no table %s, so per-app rules are off; create it with freno --init-backend --config FILE",
                m->backend, BACKEND_RULES_TABLE);
    else if (rules && !m->rules_present && m->rules_absence_logged)
        log_info("leader: backend %s: table %s present now", m->backend, BACKEND_RULES_TABLE);
    m->rules_absence_logged = !rules;
    m->rules_present = rules;
    m->schema_ok = true;
    attempt_send(m);
    leader_mysql_state_kick(m);
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
        leader_mysql_send(m->elect_conn, backend_sql_schema_columns(), on_schema, m);
    } else {
        attempt_send(m);
    }
    /* A promotion whose state load failed retries once a round. */
    if (m->leading && !m->serving) {
        m->apps.want |= m->apps.loaded_term != m->term;
        m->hosts.want |= m->hosts.loaded_term != m->term;
        m->rules.want |= m->rules.loaded_term != m->term;
        leader_mysql_state_kick(m);
    }
}

void leader_mysql_elect_start(struct mysql_leader *m)
{
    m->lease_timer = loop_timer_new(m->loop, m);
    m->takeover_timer = loop_timer_new(m->loop, m);
    m->stop_timer = loop_timer_new(m->loop, m);
    /* The first round at once, so a lone node leads in about a second. */
    m->elect_timer = loop_timer_start(m->loop, on_elect_timer, m, 0, ELECTION_INTERVAL_MS);
}

void leader_mysql_elect_deinit(struct mysql_leader *m)
{
    loop_timer_close(&m->elect_timer);
    loop_timer_close(&m->lease_timer);
    loop_timer_close(&m->takeover_timer);
    loop_timer_close(&m->stop_timer);
    leader_mysql_svc_clear(&m->share_services);
    free(m->leader_id);
    free(m->status_sig);
}

/* ---- shutdown ---- */

static void shutdown_done(struct mysql_leader *m)
{
    uv_timer_stop(m->stop_timer);
    leader_shutdown_finished(m->l);
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
        log_info("leader: released leadership of domain %s", m->ids.domain.text);
    shutdown_done(m);
}

static void release_send(struct mysql_leader *m)
{
    if (m->release_sent)
        return;
    m->release_sent = true;
    leader_mysql_send(m->elect_conn, backend_sql_release(&m->ids), on_released, m);
}

static void on_stop_timer(uv_timer_t *h)
{
    struct mysql_leader *m = h->data;
    log_warn(
            "leader: backend %s: no answer to the release within %d ms; peers take over when the row expires",
            m->backend, RELEASE_DEADLINE_MS);
    shutdown_done(m);
}

void leader_mysql_shutdown(struct leader *l)
{
    struct mysql_leader *m = l->impl;
    m->stopping = true;
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
