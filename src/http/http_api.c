/* SPDX-License-Identifier: MIT */
/* API dispatch by one table indexed by route, the answer builders, the
 * checks and the listings. The check path formats its answer into a stack
 * buffer and takes no lock; other endpoints render JSON with jansson from
 * the snapshot. Control requests are in http_api_control.c, the dashboard
 * in http_api_dashboard.c. HTTP threads. */
#include "http/http_api_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/jsonfmt.h"
#include "core/limits.h"
#include "core/parse.h"
#include "http/check_body.h"
#include "http/router.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "snapshot/app_rule.h"
#include "snapshot/check.h"
#include "snapshot/events.h"
#include "snapshot/snapshot.h"

/* ---- small formatting helpers ---- */

/* An empty answer: every field zero but the buffer itself, which the answer
 * writes into (clearing its kilobytes for each request would cost more than
 * answering a check). */
void resp_reset(struct http_resp *resp)
{
    memset(resp, 0, offsetof(struct http_resp, small));
    resp->small[0] = '\0';
    resp->body = resp->small;
}

void resp_text(struct http_resp *resp, int status, bool json, const char *text)
{
    size_t n = strlen(text);
    resp->status = status;
    resp->json = json;
    if (n < sizeof(resp->small)) {
        memcpy(resp->small, text, n + 1);
        resp->body = resp->small;
        resp->heap = false;
    } else {
        resp->body = strdup(text);
        resp->heap = resp->body != NULL;
        if (resp->body == NULL) {
            resp->body = resp->small;
            resp->small[0] = '\0';
            n = 0;
        }
    }
    resp->len = n;
}

/* Takes ownership of @j. Encodes like Go's json.Encoder (trailing newline). */
void resp_json(struct http_resp *resp, int status, json_t *j, size_t flags)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | flags);
    json_decref(j);
    resp->status = status;
    resp->json = true;
    if (s == NULL) {
        resp_text(resp, 500, true, "{\"StatusCode\":500,\"Message\":\"encoding failed\"}\n");
        return;
    }
    size_t n = strlen(s);
    char *b = realloc(s, n + 2);
    if (b == NULL) {
        free(s);
        resp_text(resp, 500, true, "{\"StatusCode\":500,\"Message\":\"out of memory\"}\n");
        return;
    }
    b[n] = '\n';
    b[n + 1] = '\0';
    resp->body = b;
    resp->len = n + 1;
    resp->heap = true;
}

/* The general response {"StatusCode":N,"Message":"..."} with a formatted
 * message. Returns false, so that a validator can refuse with
 * "return resp_general(...)". */
bool resp_general(struct http_resp *resp, int status, const char *fmt, ...)
{
    char msg[512], m[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (jsonfmt_string(m, sizeof(m), msg) == 0)
        jsonfmt_string(m, sizeof(m), "error");
    snprintf(resp->small, sizeof(resp->small), "{\"StatusCode\":%d,\"Message\":%s}\n", status, m);
    resp->status = status;
    resp->json = true;
    resp->body = resp->small;
    resp->len = strlen(resp->small);
    resp->heap = false;
    return false;
}

/* Refuses a request parameter with 500 "<what>: <param> "<value>" is not
 * <expected>", @value quoted as a JSON string ("..." when it is long).
 * Returns false, as resp_general(). */
bool resp_not_a(struct http_resp *resp, const char *what, const char *param, const char *value,
                const char *expected)
{
    char q[200];
    if (jsonfmt_string(q, sizeof(q), value) == 0)
        snprintf(q, sizeof(q), "\"...\"");
    return resp_general(resp, 500, "%s: %s %s is not %s", what, param, q, expected);
}

/* ---- randomness for ratio throttles: per-thread xorshift, no lock ---- */

static _Thread_local uint64_t rng_state;

static double rng_uniform(void)
{
    if (rng_state == 0) {
        rng_state = clock_mono_ms() ^ ((uint64_t)(uintptr_t)&rng_state * 0x9E3779B97F4A7C15ull);
        if (rng_state == 0)
            rng_state = 0x2545F4914F6CDD1Dull;
    }
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- handlers ---- */

/* A command holds any rule's text. */
_Static_assert(LOOP_CMD_RULE_MAX == APP_RULE_TEXT_MAX, "a control command holds any rule");

/* The check body fits the answer's own buffer, whatever the snapshot holds. */
_Static_assert(CHECK_BODY_MAX <= HTTP_RESP_SMALL, "a check answer fits http_resp.small");

/* Formats the answer @res to @r into @resp's own buffer; a refusal that
 * explains itself says when to come back. */
static void check_answer(struct http_resp *resp, const struct check_request *r,
                         const struct check_result *res)
{
    resp->status = res->status;
    resp->json = true;
    resp->body = resp->small;
    resp->len = check_body_render(resp->small, sizeof(resp->small), r, res);
    resp->heap = false;
    resp->retry_after_s = res->details ? res->retry_after_s : 0;
}

static void handle_check(const struct api_call *c, struct http_resp *resp)
{
    const struct http_req *req = c->req;
    enum route_id id = c->rt->id;
    struct check_request cr = {
            .app = route_param(c->rt, "app"),
            .store_type = route_param(c->rt, "storeType"),
            .store_name = route_param(c->rt, "storeName"),
            .metric = req->query(req->ctx, "metric"),
            .ok_if_not_exists = id == ROUTE_CHECK_IF_EXISTS || id == ROUTE_CHECK_READ_IF_EXISTS,
            .read_check = id == ROUTE_CHECK_READ || id == ROUTE_CHECK_READ_IF_EXISTS,
    };
    const char *t = route_param(c->rt, "threshold");
    if (cr.read_check && parse_double(t, &cr.override_threshold) < 0) {
        resp_not_a(resp, "check-read", "threshold", t, "a number");
        return;
    }
    const char *p = req->query(req->ctx, "p");
    cr.low_priority = p != NULL && strcmp(p, "low") == 0;
    const char *client = req->header(req->ctx, "X-Forwarded-For");
    if (client == NULL || client[0] == '\0')
        client = req->peer;

    cr.loop_alive_boot_ms = loop_alive_boot_ms(c->ctx->loop);
    cr.now_boot_ms = clock_boot_ms();
    uint64_t now_ms = clock_wall_ms();
    struct check_result res;
    const struct snapshot *s = snapshot_acquire();
    check_decide(s, &cr, now_ms, rng_uniform(), &res);
    /* The result's strings may point into the snapshot, which can be freed
     * as soon as the section ends: the body is complete before it does. */
    check_answer(resp, &cr, &res);
    snapshot_release(s);

    if (res.known_store) {
        metrics_count_check(res.status);
        events_push(now_ms, res.status, cr.app, cr.store_name, client);
    }
}

static void handle_lb_check(const struct api_call *c, struct http_resp *resp)
{
    (void)c;
    resp_general(resp, 200, "OK");
}

static void handle_help(const struct api_call *c, struct http_resp *resp)
{
    (void)c;
    json_t *a = json_array();
    for (const char *const *p = router_patterns(); *p; p++)
        json_array_append_new(a, json_string(*p));
    resp_json(resp, 200, a, 0);
}

/* The leader part of the snapshot, or NULL. */
static const struct snap_leader *leader_of(const struct api_call *c)
{
    return (c->s && c->s->leader) ? &c->s->leader->l : NULL;
}

static void handle_leader_check(const struct api_call *c, struct http_resp *resp)
{
    const struct snap_leader *l = leader_of(c);
    bool leader = l && l->is_leader &&
                  (l->lease_until_boot_ms == 0 || clock_boot_ms() < l->lease_until_boot_ms);
    resp_text(resp, leader ? 200 : 404, false, leader ? "\"HTTP 200\"\n" : "\"HTTP 404\"\n");
}

static void handle_consensus_leader(const struct api_call *c, struct http_resp *resp)
{
    const struct snap_leader *l = leader_of(c);
    const char *id = l ? l->leader_id : "";
    if (id == NULL || id[0] == '\0') {
        resp_text(resp, 500, false, "");
        return;
    }
    resp_json(resp, 200, json_string(id), 0);
}

static void handle_consensus_state(const struct api_call *c, struct http_resp *resp)
{
    const struct snap_leader *l = leader_of(c);
    resp_json(resp, 200, json_string((l && l->state) ? l->state : "Unhealthy"), 0);
}

static json_t *services_list(const struct snap_service *v, size_t len)
{
    json_t *a = json_array();
    for (size_t i = 0; i < len; i++)
        json_array_append_new(a, json_string(v[i].service_id));
    return a;
}

static void handle_consensus_status(const struct api_call *c, struct http_resp *resp)
{
    static const struct snap_leader none = {.state = "Unhealthy"};
    const struct snap_leader *l = leader_of(c);
    if (l == NULL)
        l = &none;
    json_t *o = json_object();
    json_object_set_new(o, "ServiceID", json_string(l->service_id ? l->service_id : ""));
    json_object_set_new(o, "Healthy", json_boolean(l->healthy));
    json_object_set_new(o, "IsLeader", json_boolean(l->is_leader));
    json_object_set_new(o, "Leader", json_string(l->leader_id ? l->leader_id : ""));
    json_object_set_new(o, "State", json_string(l->state ? l->state : ""));
    json_object_set_new(o, "Domain", json_string(l->domain ? l->domain : ""));
    json_object_set_new(o, "ShareDomain", json_string(l->share_domain ? l->share_domain : ""));
    json_t *m = json_object();
    for (size_t i = 0; i < l->share_services_len; i++)
        json_object_set_new(m, l->share_services[i].domain,
                            json_string(l->share_services[i].service_id));
    json_object_set_new(o, "ShareDomainServices", m);
    json_t *all = services_list(l->share_services, l->share_services_len);
    if (l->service_id != NULL && l->service_id[0] != '\0')
        json_array_insert_new(all, 0, json_string(l->service_id));
    json_object_set_new(o, "ShareDomainServicesList", all);
    json_object_set_new(o, "HealthyDomainServicesList",
                        services_list(l->domain_services, l->domain_services_len));
    resp_json(resp, 200, o, JSON_PRESERVE_ORDER);
}

static void handle_hostname(const struct api_call *c, struct http_resp *resp)
{
    if (c->s && c->s->hostname && c->s->hostname[0])
        resp_json(resp, 200, json_string(c->s->hostname), 0);
    else
        resp_text(resp, 500, false, "");
}

static void handle_aggregated(const struct api_call *c, struct http_resp *resp)
{
    const char *b = c->req->query(c->req->ctx, "brief");
    bool brief = b != NULL && strcmp(b, "true") == 0;
    const struct snap_clusters *cs = c->s ? c->s->clusters : NULL;
    json_t *o = json_object();
    for (size_t i = 0; cs && i < cs->len; i++) {
        for (size_t j = 0; j < cs->v[i].nmetrics; j++) {
            const struct snap_metric *m = &cs->v[i].metrics[j];
            if (!m->has_value)
                continue;
            char buf[400];
            if (m->ok)
                snprintf(buf, sizeof(buf), brief ? "%.3f" : "%f", m->value);
            else
                snprintf(buf, sizeof(buf), "error: %s", m->err ? m->err : "");
            json_object_set_new(o, m->name, json_string(buf));
        }
    }
    resp_json(resp, 200, o, JSON_SORT_KEYS);
}

static void handle_metrics_health(const struct api_call *c, struct http_resp *resp)
{
    const struct snap_clusters *cs = c->s ? c->s->clusters : NULL;
    json_t *o = json_object();
    for (size_t i = 0; cs && i < cs->len; i++) {
        for (size_t j = 0; j < cs->v[i].nmetrics; j++) {
            const struct snap_metric *m = &cs->v[i].metrics[j];
            if (m->last_healthy_at_ms == 0)
                continue;
            char ts[40];
            json_t *h = json_object();
            json_object_set_new(h, "LastHealthyAt",
                                json_string(clock_rfc3339(m->last_healthy_at_ms, ts, sizeof(ts))));
            uint64_t at = m->last_healthy_at_ms;
            uint64_t since = c->now_ms > at ? c->now_ms - at : 0;
            json_object_set_new(h, "SecondsSinceLastHealthy",
                                json_integer((json_int_t)(since / 1000)));
            json_object_set_new(o, m->name, h);
        }
    }
    resp_json(resp, 200, o, JSON_SORT_KEYS | JSON_PRESERVE_ORDER);
}

bool expired(uint64_t expire_at_ms, uint64_t now_ms)
{
    return expire_at_ms != 0 && expire_at_ms <= now_ms;
}

static void handle_throttled_apps(const struct api_call *c, struct http_resp *resp)
{
    const struct snap_apps *as = c->s ? c->s->apps : NULL;
    json_t *o = json_object();
    for (size_t i = 0; as && i < as->len; i++) {
        const struct snap_app *a = &as->v[i];
        if (expired(a->expire_at_ms, c->now_ms))
            continue;
        char ts[40];
        json_t *e = json_object();
        json_object_set_new(e, "ExpireAt",
                            json_string(clock_rfc3339(a->expire_at_ms, ts, sizeof(ts))));
        json_object_set_new(e, "Ratio",
                            a->ratio == floor(a->ratio) ? json_integer((json_int_t)a->ratio)
                                                        : json_real(a->ratio));
        json_object_set_new(o, a->key, e);
    }
    resp_json(resp, 200, o, JSON_SORT_KEYS | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
}

static void handle_skipped_hosts(const struct api_call *c, struct http_resp *resp)
{
    const struct snap_hosts *hs = c->s ? c->s->hosts : NULL;
    json_t *o = json_object();
    for (size_t i = 0; hs && i < hs->len; i++) {
        const struct snap_host *h = &hs->v[i];
        char ts[40];
        if (!expired(h->expire_at_ms, c->now_ms))
            json_object_set_new(o, h->host,
                                json_string(clock_rfc3339(h->expire_at_ms, ts, sizeof(ts))));
    }
    resp_json(resp, 200, o, JSON_SORT_KEYS);
}

#define RECENT_ENTRY_FMT ":{\"CheckedAtEpoch\":%" PRIu64 ",\"MinutesSinceChecked\":%" PRId64 "}"

/* Renders @rs into @b (@size bytes, enough for every entry) and returns the
 * length: the entries checked at most @last_minutes ago (all when <= 0). */
static size_t recent_apps_render(char *b, size_t size, const struct snap_recents *rs,
                                 int64_t last_minutes, uint64_t now_ms)
{
    size_t o = 0;
    b[o++] = '{';
    for (size_t i = 0; rs && i < rs->len; i++) {
        const struct snap_recent *r = &rs->v[i];
        int64_t mins =
                now_ms > r->checked_at_ms ? (int64_t)((now_ms - r->checked_at_ms) / 60000) : 0;
        if (last_minutes > 0 && mins > last_minutes)
            continue;
        if (o > 1)
            b[o++] = ',';
        size_t kl = strlen(r->key_json);
        memcpy(b + o, r->key_json, kl);
        o += kl;
        int w = snprintf(b + o, size - o, RECENT_ENTRY_FMT, r->checked_at_ms / 1000, mins);
        if (w > 0)
            o += (size_t)w < size - o ? (size_t)w : size - o - 1;
    }
    b[o++] = '}';
    b[o++] = '\n';
    b[o] = '\0';
    return o;
}

static void handle_recent_apps(const struct api_call *c, struct http_resp *resp)
{
    int64_t last_minutes = 0;
    const char *lm = route_param(c->rt, "lastMinutes");
    if (lm != NULL && parse_i64(lm, &last_minutes) < 0) {
        resp_not_a(resp, "recent-apps", "minutes", lm, "an integer");
        return;
    }
    /* Keys come JSON-encoded and sorted from the loop (at most MaxRecentApps
     * of them): one exactly sized buffer, one pass, no JSON objects. */
    const struct snap_recents *rs = c->s ? c->s->recents : NULL;
    size_t n = rs ? rs->len : 0;
    /* Per entry: the format, two 20-digit numbers and a comma. */
    size_t size = 4 + (rs ? rs->key_json_bytes : 0) + n * (sizeof(RECENT_ENTRY_FMT) + 41);
    char *b = malloc(size);
    if (b == NULL) {
        resp_general(resp, 500, "recent-apps: out of memory");
        return;
    }
    resp->status = 200;
    resp->json = true;
    resp->body = b;
    resp->len = recent_apps_render(b, size, rs, last_minutes, c->now_ms);
    resp->heap = true;
}

static void on_shared_text_sent(void *arg)
{
    snap_text_unref(arg);
}

/* Serves @body (@len bytes of @text) without copying it: the reference taken
 * here, inside the read-side section, keeps it alive until it is sent. */
static void resp_shared_text(struct http_resp *resp, bool json, struct snap_text *text, char *body,
                             size_t len)
{
    resp->status = 200;
    resp->json = json;
    resp->body = body;
    resp->len = len;
    resp->heap = false;
    resp->release = on_shared_text_sent;
    resp->release_arg = snap_text_ref(text);
}

/* /debug/vars and /metrics: the snapshot's renderings, shared. */
static void handle_text(const struct api_call *c, struct http_resp *resp)
{
    bool vars = c->rt->id == ROUTE_DEBUG_VARS;
    struct snap_text *t = c->s ? c->s->text : NULL;
    char *body = t ? (vars ? t->debug_vars_json : t->prometheus) : NULL;
    if (body == NULL)
        resp_text(resp, 200, vars, vars ? "{}\n" : "");
    else
        resp_shared_text(resp, vars, t, body, vars ? t->debug_vars_len : t->prometheus_len);
    if (!vars) /* the exposition format's own type, as scrapers expect */
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void handle_config_memcache(const struct api_call *c, struct http_resp *resp)
{
    resp_text(resp, 200, true, (c->s && c->s->memcache_json) ? c->s->memcache_json : "{}\n");
}

/* ---- dispatch ---- */

/* Indexed by enum route_id: the handler, whether it reads the snapshot
 * (see struct api_route), and the command a control route queues. */
static const struct api_route api_routes[] = {
        [ROUTE_LB_CHECK] = {handle_lb_check, false},
        [ROUTE_HELP] = {handle_help, false},
        [ROUTE_CHECK] = {handle_check, false},
        [ROUTE_CHECK_IF_EXISTS] = {handle_check, false},
        [ROUTE_CHECK_READ] = {handle_check, false},
        [ROUTE_CHECK_READ_IF_EXISTS] = {handle_check, false},
        [ROUTE_THROTTLE_APP] = {handle_control, true, LOOP_CMD_THROTTLE_APP},
        [ROUTE_UNTHROTTLE_APP] = {handle_control, true, LOOP_CMD_UNTHROTTLE_APP},
        [ROUTE_SKIP_HOST] = {handle_control, true, LOOP_CMD_SKIP_HOST},
        [ROUTE_RECOVER_HOST] = {handle_control, true, LOOP_CMD_RECOVER_HOST},
        [ROUTE_LEADER_CHECK] = {handle_leader_check, true},
        [ROUTE_CONSENSUS_LEADER] = {handle_consensus_leader, true},
        [ROUTE_CONSENSUS_STATE] = {handle_consensus_state, true},
        [ROUTE_CONSENSUS_STATUS] = {handle_consensus_status, true},
        [ROUTE_HOSTNAME] = {handle_hostname, true},
        [ROUTE_AGGREGATED_METRICS] = {handle_aggregated, true},
        [ROUTE_METRICS_HEALTH] = {handle_metrics_health, true},
        [ROUTE_THROTTLED_APPS] = {handle_throttled_apps, true},
        [ROUTE_SKIPPED_HOSTS] = {handle_skipped_hosts, true},
        [ROUTE_RECENT_APPS] = {handle_recent_apps, true},
        [ROUTE_DEBUG_VARS] = {handle_text, true},
        [ROUTE_PROMETHEUS] = {handle_text, true},
        [ROUTE_CONFIG_MEMCACHE] = {handle_config_memcache, true},
        [ROUTE_DASHBOARD] = {handle_dashboard, false},
        [ROUTE_DASHBOARD_JS] = {handle_dashboard, false},
        [ROUTE_DASHBOARD_CSS] = {handle_dashboard, false},
        [ROUTE_METRICS_HISTORY] = {handle_metrics_history, false},
        [ROUTE_CLUSTER_METRICS] = {handle_cluster_metrics, true},
        [ROUTE_APP_RULE] = {handle_control, true, LOOP_CMD_SET_APP_RULE},
        [ROUTE_REMOVE_APP_RULE] = {handle_control, true, LOOP_CMD_REMOVE_APP_RULE},
        [ROUTE_APP_RULES] = {handle_app_rules, true},
        [ROUTE_AUDIT_LOG] = {handle_audit_log, true},
};

/* The route's entry, or NULL when @rs is not a match or nothing handles it. */
static const struct api_route *api_route_of(enum route_status rs, const struct route *rt)
{
    if (rs != ROUTE_OK || (size_t)rt->id >= sizeof(api_routes) / sizeof(api_routes[0]))
        return NULL;
    return api_routes[rt->id].fn != NULL ? &api_routes[rt->id] : NULL;
}

/* Answers a path that matched no handler: 414, 405 or 404. */
static void resp_route_error(struct http_resp *resp, enum route_status rs)
{
    if (rs == ROUTE_TOO_LONG)
        resp_text(resp, 414, false, "414 URI Too Long\n");
    else if (rs == ROUTE_METHOD_NOT_ALLOWED)
        resp_text(resp, 405, false, "Method Not Allowed\n");
    else
        resp_text(resp, 404, false, "404 page not found\n");
}

void http_api_handle(const struct http_api_ctx *ctx, const struct http_req *req,
                     struct http_resp *resp)
{
    struct route rt;
    resp_reset(resp);
    enum route_status rs = router_match(req->method, req->path, &rt);
    const struct api_route *route = api_route_of(rs, &rt);
    if (route == NULL) {
        resp_route_error(resp, rs);
        return;
    }
    struct api_call c = {.ctx = ctx, .req = req, .rt = &rt, .route = route};
    if (!route->reads_snapshot) {
        route->fn(&c, resp);
        return;
    }
    c.now_ms = clock_wall_ms();
    c.s = snapshot_acquire();
    route->fn(&c, resp);
    snapshot_release(c.s);
}
