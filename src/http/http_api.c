/* SPDX-License-Identifier: MIT */
/* API handlers, dispatched by one table indexed by route. The check path
 * formats its answer into a stack buffer and takes no lock; other endpoints
 * render JSON with jansson from the snapshot. Control requests become loop
 * commands, which the server queues without holding a thread; their answers
 * are formatted here. HTTP threads. */
#include "http/http_api.h"

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

#include "core/audit.h"
#include "core/clock.h"
#include "core/jsonfmt.h"
#include "core/limits.h"
#include "core/parse.h"
#include "core/token.h"
#include "http/check_body.h"
#include "http/dashboard.h"
#include "http/router.h"
#include "log/log.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "snapshot/app_rule.h"
#include "snapshot/check.h"
#include "snapshot/events.h"
#include "snapshot/history.h"
#include "snapshot/snapshot.h"

/* ---- small formatting helpers ---- */

/* An empty answer: every field zero but the buffer itself, which the answer
 * writes into (clearing its kilobytes for each request would cost more than
 * answering a check). */
static void resp_reset(struct http_resp *resp)
{
    memset(resp, 0, offsetof(struct http_resp, small));
    resp->small[0] = '\0';
    resp->body = resp->small;
}

static void resp_text(struct http_resp *resp, int status, bool json, const char *text)
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
static void resp_json(struct http_resp *resp, int status, json_t *j, size_t flags)
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

static bool resp_general(struct http_resp *resp, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* The general response {"StatusCode":N,"Message":"..."} with a formatted
 * message. Returns false, so that a validator can refuse with
 * "return resp_general(...)". */
static bool resp_general(struct http_resp *resp, int status, const char *fmt, ...)
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
static bool resp_not_a(struct http_resp *resp, const char *what, const char *param,
                       const char *value, const char *expected)
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

struct api_route;

/* One request on its way through a handler. */
struct api_call {
    const struct http_api_ctx *ctx;
    const struct http_req *req;
    const struct route *rt;
    const struct api_route *route;
    /* Set only for routes that read the snapshot: valid until the handler
     * returns, so whatever the answer shows is copied (or referenced) first. */
    const struct snapshot *s;
    uint64_t now_ms; /* wall clock, likewise */
};

typedef void api_handler_fn(const struct api_call *c, struct http_resp *resp);

struct api_route {
    api_handler_fn *fn;
    /* http_api_handle() runs fn inside a read-side section and sets c->s and
     * c->now_ms. The check handler opens its own, around the decision only. */
    bool reads_snapshot;
    enum loop_cmd_kind command; /* what a control route queues */
};

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

static bool expired(uint64_t expire_at_ms, uint64_t now_ms)
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

/* ---- dashboard ---- */

/* The page, its script and its style, as compiled in. */
static void handle_dashboard(const struct api_call *c, struct http_resp *resp)
{
    const unsigned char *body = dashboard_index_html;
    resp->content_type = "text/html; charset=utf-8";
    if (c->rt->id == ROUTE_DASHBOARD_JS) {
        body = dashboard_app_js;
        resp->content_type = "text/javascript; charset=utf-8";
    } else if (c->rt->id == ROUTE_DASHBOARD_CSS) {
        body = dashboard_style_css;
        resp->content_type = "text/css; charset=utf-8";
    }
    resp_text(resp, 200, false, (const char *)body);
    resp->csp = true;
}

/* The ?cluster= argument of a dashboard request: NULL when absent; false
 * (with @resp set) when it is not clean text. */
static bool cluster_arg(const struct api_call *c, const char *what, const char **out,
                        struct http_resp *resp)
{
    const char *name = c->req->query(c->req->ctx, "cluster");
    *out = name;
    if (name != NULL && !router_text_is_clean(name, strlen(name)))
        return resp_general(resp, 400,
                            "%s: cluster holds a control character or bytes that are not UTF-8",
                            what);
    return true;
}

static void handle_metrics_history(const struct api_call *c, struct http_resp *resp)
{
    const char *cluster;
    int64_t since = 0;
    if (!cluster_arg(c, "metrics-history", &cluster, resp))
        return;
    const char *since_arg = c->req->query(c->req->ctx, "since");
    if (since_arg != NULL && (parse_i64(since_arg, &since) < 0 || since < 0)) {
        resp_not_a(resp, "metrics-history", "since", since_arg, "a number of seconds");
        return;
    }
    if (c->ctx->history == NULL) {
        resp_general(resp, 404, "metrics-history: no history kept here");
        return;
    }
    bool found;
    size_t len;
    char *body = history_render_json(c->ctx->history, cluster, (uint64_t)since, &len, &found);
    if (!found) {
        free(body);
        char q[200];
        if (jsonfmt_string(q, sizeof(q), cluster) == 0)
            snprintf(q, sizeof(q), "\"...\"");
        resp_general(resp, 404, "metrics-history: no cluster %s", q);
        return;
    }
    resp->status = 200;
    resp->json = true;
    resp->body = body;
    resp->len = len;
    resp->heap = true;
    resp->csp = true;
}

/* A number, or null when not finite. */
static json_t *json_number_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *cluster_hosts_json(const struct snap_probe_set *set, uint64_t now_ms)
{
    json_t *a = json_array();
    for (size_t i = 0; set != NULL && i < set->len; i++) {
        const struct snap_probe *p = &set->v[i];
        json_t *h = json_object();
        json_object_set_new(h, "Host", json_string(p->host));
        json_object_set_new(h, "Probed", json_boolean(p->at_ms != 0));
        json_object_set_new(h, "Ok", json_boolean(p->ok));
        json_object_set_new(h, "Value", p->ok ? json_number_or_null(p->value) : json_null());
        json_object_set_new(h, "Error", json_string(p->err ? p->err : ""));
        json_object_set_new(h, "AgeMillis",
                            json_integer(p->at_ms != 0 && now_ms > p->at_ms
                                                 ? (json_int_t)(now_ms - p->at_ms)
                                                 : 0));
        json_object_set_new(h, "HttpCheck404", json_boolean(p->http_404));
        json_object_set_new(h, "ProbeErrors", json_integer((json_int_t)p->probe_errors));
        json_array_append_new(a, h);
    }
    return a;
}

static json_t *cluster_json(const struct snapshot *s, const struct snap_cluster *cl,
                            bool with_hosts, uint64_t now_ms)
{
    json_t *o = json_object();
    json_object_set_new(o, "Name", json_string(cl->name));
    json_t *ms = json_array();
    for (size_t j = 0; j < cl->nmetrics; j++) {
        const struct snap_metric *m = &cl->metrics[j];
        json_t *e = json_object();
        json_object_set_new(e, "Metric", json_string(m->metric));
        json_object_set_new(e, "Name", json_string(m->name));
        json_object_set_new(e, "Threshold", json_number_or_null(m->threshold));
        json_object_set_new(e, "HasValue", json_boolean(m->has_value));
        json_object_set_new(e, "Ok", json_boolean(m->has_value && m->ok));
        json_object_set_new(e, "Value",
                            m->has_value && m->ok ? json_number_or_null(m->value) : json_null());
        json_object_set_new(e, "Error",
                            json_string(m->has_value && !m->ok && m->err ? m->err : ""));
        json_object_set_new(e, "Host", json_string(m->host ? m->host : ""));
        if (with_hosts)
            json_object_set_new(e, "Hosts",
                                cluster_hosts_json(snapshot_find_probes(s, m->name), now_ms));
        json_array_append_new(ms, e);
    }
    json_object_set_new(o, "Metrics", ms);
    return o;
}

static void handle_cluster_metrics(const struct api_call *c, struct http_resp *resp)
{
    const char *cluster;
    if (!cluster_arg(c, "cluster-metrics", &cluster, resp))
        return;
    /* ?hosts=false: the overview of many clusters, without their hosts. */
    const char *h = c->req->query(c->req->ctx, "hosts");
    bool with_hosts = h == NULL || strcmp(h, "false") != 0;
    const struct snap_clusters *cs = c->s ? c->s->clusters : NULL;
    json_t *a = json_array();
    bool found = cluster == NULL;
    for (size_t i = 0; cs && i < cs->len; i++) {
        if (cluster != NULL && strcmp(cs->v[i].name, cluster) != 0)
            continue;
        found = true;
        json_array_append_new(a, cluster_json(c->s, &cs->v[i], with_hosts, c->now_ms));
    }
    if (!found) {
        json_decref(a);
        char q[200];
        if (jsonfmt_string(q, sizeof(q), cluster) == 0)
            snprintf(q, sizeof(q), "\"...\"");
        resp_general(resp, 404, "cluster-metrics: no cluster %s", q);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "Now", json_integer((json_int_t)c->now_ms));
    json_object_set_new(o, "Clusters", a);
    resp_json(resp, 200, o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    resp->csp = true;
}

/* ---- control requests ---- */

/* The last instant an expiry may name: 9999-12-31T23:59:59Z, the end of
 * RFC 3339's four-digit years and of MySQL's DATETIME. */
#define TTL_END_MS 253402300799000ull

/* Indexed by enum loop_cmd_kind. */
static const struct control_kind {
    const char *what;       /* the request's name in messages */
    const char *name_param; /* the route parameter naming the app or host */
    bool has_store;         /* ?store_name=S makes the key "<name>/S" */
    int bad_status;         /* a name past FRENO_NAME_MAX: the original's 500, else 400 */
} control_kinds[] = {
        [LOOP_CMD_THROTTLE_APP] = {"throttle-app", "app", true, 500},
        [LOOP_CMD_UNTHROTTLE_APP] = {"unthrottle-app", "app", true, 500},
        [LOOP_CMD_SKIP_HOST] = {"skip-host", "hostName", false, 500},
        [LOOP_CMD_RECOVER_HOST] = {"recover-host", "hostName", false, 500},
        [LOOP_CMD_SET_APP_RULE] = {"app-rule", "app", true, 400},
        [LOOP_CMD_REMOVE_APP_RULE] = {"remove-app-rule", "app", true, 400},
};

static const struct control_kind *control_kind_of(enum loop_cmd_kind kind)
{
    if ((size_t)kind < sizeof(control_kinds) / sizeof(control_kinds[0]))
        return &control_kinds[kind];
    return NULL;
}

/* Whether the request may control: no token is needed, or it presents
 * one; then @who (AUDIT_WHO_SIZE bytes) gets the token's name, else "-". */
static bool control_authorized(const struct http_req *req, const struct snapshot *s, char *who)
{
    snprintf(who, AUDIT_WHO_SIZE, "-");
    if (s == NULL || token_set_len(s->tokens) == 0)
        return true;
    const char *auth = req->header(req->ctx, "Authorization");
    const char *tok = NULL;
    if (auth != NULL && strncmp(auth, "Bearer ", 7) == 0)
        tok = auth + 7;
    if (tok == NULL)
        tok = req->header(req->ctx, "X-Freno-Token");
    /* Keyed digests compared in constant time: the answer's timing tells
     * nothing about the secrets. */
    const char *name = token_set_match(s->tokens, tok);
    if (name == NULL)
        return false;
    snprintf(who, AUDIT_WHO_SIZE, "%s", name);
    return true;
}

/* Starts the audit record of control request @c of kind @k: who asked and
 * with which parameters, as sent. */
static void audit_begin(const struct api_call *c, const struct control_kind *k,
                        struct audit_record *r)
{
    const struct http_req *req = c->req;
    memset(r, 0, sizeof(*r));
    audit_clean(r->peer, sizeof(r->peer), req->peer);
    audit_clean(r->forwarded, sizeof(r->forwarded), req->header(req->ctx, "X-Forwarded-For"));
    audit_clean(r->what, sizeof(r->what), k->what);
    audit_params_init(r);
    audit_params_add(r, k->name_param, route_param(c->rt, k->name_param));
    if (k->has_store)
        audit_params_add(r, "store_name", req->query(req->ctx, "store_name"));
    audit_params_add(r, "ttl", route_param(c->rt, "ttlMinutes"));
    audit_params_add(r, "ratio", route_param(c->rt, "ratio"));
    if (k == &control_kinds[LOOP_CMD_SET_APP_RULE]) {
        static const char *const rule_params[] = {"metric",  "threshold", "factor",
                                                  "metrics", "exempt",    "ttl"};
        for (size_t i = 0; i < sizeof(rule_params) / sizeof(rule_params[0]); i++)
            audit_params_add(r, rule_params[i], req->query(req->ctx, rule_params[i]));
    }
}

/* Ends @r with the answer @resp (a general response) and logs it. */
static void audit_end(struct audit_record *r, const struct http_resp *resp)
{
    r->status = resp->status;
    r->at_ms = clock_wall_ms();
    json_t *j = json_loadb(resp->body, resp->len, 0, NULL);
    const char *m = json_string_value(json_object_get(j, "Message"));
    audit_clean(r->message, sizeof(r->message), m != NULL ? m : "");
    json_decref(j);
    char line[LOG_LINE_MAX];
    audit_format_line(line, sizeof(line), r);
    log_info("audit: %s", line);
}

/* Sets @cmd's name: the app or host, as "<app>/<store_name>" when the
 * request names a store; at most FRENO_NAME_MAX bytes. */
static bool control_name(const struct api_call *c, const struct control_kind *k,
                         struct loop_cmd *cmd, struct http_resp *resp)
{
    const char *name = route_param(c->rt, k->name_param);
    const char *store = k->has_store ? c->req->query(c->req->ctx, "store_name") : NULL;
    if (store != NULL && !router_text_is_clean(store, strlen(store)))
        return resp_general(resp, 400,
                            "%s: store_name holds a control character or bytes that are not UTF-8",
                            k->what);
    int n = (store != NULL && store[0] != '\0')
                    ? snprintf(cmd->name, sizeof(cmd->name), "%s/%s", name, store)
                    : snprintf(cmd->name, sizeof(cmd->name), "%s", name);
    if (n >= 0 && (size_t)n < sizeof(cmd->name) && (size_t)n <= FRENO_NAME_MAX)
        return true;
    return resp_general(resp, k->bad_status,
                        "%s: name of %d bytes is longer than the %d bytes the backend can store",
                        k->what, n, FRENO_NAME_MAX);
}

/* Sets @cmd's options from the route: ttl/<minutes> (an integer, not
 * negative) and ratio/<r> (a number in [0,1]), judged in that order. */
static bool control_options(const struct api_call *c, const char *what, struct loop_cmd *cmd,
                            struct http_resp *resp)
{
    const char *ttl = route_param(c->rt, "ttlMinutes");
    const char *ratio = route_param(c->rt, "ratio");
    if (ttl != NULL && parse_i64(ttl, &cmd->ttl_min) < 0)
        return resp_not_a(resp, what, "ttl", ttl, "an integer number of minutes");
    if (ttl != NULL && cmd->ttl_min < 0)
        return resp_general(resp, 500, "%s: negative ttl %lld", what, (long long)cmd->ttl_min);
    /* An expiry must print as RFC 3339 and fit the backend's DATETIME. */
    uint64_t now_ms = clock_wall_ms();
    if (ttl != NULL &&
        (now_ms >= TTL_END_MS || (uint64_t)cmd->ttl_min > (TTL_END_MS - now_ms) / 60000))
        return resp_general(resp, 500, "%s: ttl %lld minutes ends after 9999-12-31", what,
                            (long long)cmd->ttl_min);
    if (ratio != NULL && parse_double(ratio, &cmd->ratio) < 0)
        return resp_not_a(resp, what, "ratio", ratio, "a number");
    if (ratio != NULL && (cmd->ratio < 0 || cmd->ratio > 1))
        return resp_general(resp, 500, "%s: ratio must be in [0..1] range; got %g", what,
                            cmd->ratio);
    cmd->has_ttl = ttl != NULL;
    cmd->has_ratio = ratio != NULL;
    return true;
}

/* Sets the rule and TTL of an app-rule request from its query (docs/api.md#app-rule):
 * every parameter is checked here, so that a bad one is a 400 that names it,
 * and the loop gets the rule's canonical text. */
static bool rule_options(const struct api_call *c, struct loop_cmd *cmd, struct http_resp *resp)
{
    const struct http_req *req = c->req;
    const char *app = route_param(c->rt, "app");
    if (strcmp(app, CHECK_APP_FRENO) == 0 || strcmp(app, CHECK_APP_SHARE_DOMAIN) == 0)
        return resp_general(resp, 400, "app-rule: %s is the daemon's own app; it takes no rule",
                            app);
    const char *ttl = req->query(req->ctx, "ttl");
    if (ttl != NULL && (parse_i64(ttl, &cmd->ttl_min) < 0 || cmd->ttl_min < 0)) {
        return resp_general(resp, 400,
                            "app-rule: ttl %.40s is not a whole number of minutes, 0 or more", ttl);
    }
    uint64_t now_ms = clock_wall_ms();
    if (ttl != NULL &&
        (now_ms >= TTL_END_MS || (uint64_t)cmd->ttl_min > (TTL_END_MS - now_ms) / 60000))
        return resp_general(resp, 400, "app-rule: ttl %lld minutes ends after 9999-12-31",
                            (long long)cmd->ttl_min);
    cmd->has_ttl = ttl != NULL;
    struct app_rule rule;
    struct err err = {0};
    if (app_rule_from_query(&rule, req->query(req->ctx, "exempt"), req->query(req->ctx, "metrics"),
                            req->query(req->ctx, "metric"), req->query(req->ctx, "threshold"),
                            req->query(req->ctx, "factor"), &err) < 0)
        return resp_general(resp, 400, "%s", err.msg);
    if (app_rule_format(&rule, cmd->rule, sizeof(cmd->rule)) == 0)
        return resp_general(resp, 500, "app-rule: the rule does not fit its text");
    return true;
}

static void handle_control(const struct api_call *c, struct http_resp *resp)
{
    const struct control_kind *k = &control_kinds[c->route->command];
    struct loop_cmd cmd = {.kind = c->route->command};
    audit_begin(c, k, &cmd.audit);
    if (!control_authorized(c->req, c->s, cmd.audit.who)) {
        resp_general(resp, 401, "control request: missing or wrong token");
        audit_end(&cmd.audit, resp);
        return;
    }
    bool rule = cmd.kind == LOOP_CMD_SET_APP_RULE || cmd.kind == LOOP_CMD_REMOVE_APP_RULE;
    if (!control_name(c, k, &cmd, resp) ||
        (rule ? cmd.kind == LOOP_CMD_SET_APP_RULE && !rule_options(c, &cmd, resp)
              : !control_options(c, k->what, &cmd, resp))) {
        audit_end(&cmd.audit, resp);
        return;
    }
    if (c->req->park == NULL) {
        resp_general(resp, 500, "control request: not available here");
        audit_end(&cmd.audit, resp);
        return;
    }
    /* The HTTP thread does not wait for the loop: the server parks the
     * request and answers through http_api_control_answer(). */
    *c->req->park = cmd;
    resp->park = true;
}

/* /app-rules: every rule not expired, by key (docs/api.md#app-rules). */
static void handle_app_rules(const struct api_call *c, struct http_resp *resp)
{
    const struct snap_rules *rs = c->s ? c->s->rules : NULL;
    json_t *o = json_object();
    for (size_t i = 0; rs && i < rs->len; i++) {
        const struct snap_rule *r = &rs->v[i];
        if (expired(r->expire_at_ms, c->now_ms))
            continue;
        char ts[40];
        json_t *e = json_object();
        json_t *metrics = json_array();
        json_t *thresholds = json_object();
        json_t *factors = json_object();
        for (size_t j = 0; j < r->rule.nmetrics; j++)
            json_array_append_new(metrics, json_string(r->rule.metrics[j]));
        for (size_t j = 0; j < r->rule.nlimits; j++) {
            const struct app_rule_limit *l = &r->rule.limits[j];
            json_t *num = l->value == floor(l->value) && fabs(l->value) < 1e15
                                  ? json_integer((json_int_t)l->value)
                                  : json_real(l->value);
            json_object_set_new(l->factor ? factors : thresholds, l->metric, num);
        }
        json_object_set_new(e, "ExpireAt",
                            json_string(clock_rfc3339(r->expire_at_ms, ts, sizeof(ts))));
        json_object_set_new(e, "Exempt", json_boolean(r->rule.exempt));
        json_object_set_new(e, "Metrics", metrics);
        json_object_set_new(e, "Thresholds", thresholds);
        json_object_set_new(e, "Factors", factors);
        json_object_set_new(o, r->key, e);
    }
    resp_json(resp, 200, o, JSON_SORT_KEYS | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
}

void http_api_control_answer(const struct http_api_ctx *ctx, const struct loop_cmd *cmd,
                             int submit_rc, enum loop_cmd_outcome outcome, struct http_resp *resp)
{
    resp_reset(resp);
    const struct control_kind *k = control_kind_of(cmd->kind);
    const char *what = k ? k->what : "control request";
    /* By then the queue has moved on: a command either ran or timed out. */
    unsigned retry_s = (ctx->cmd_timeout_ms + 999) / 1000;
    if (submit_rc == -EAGAIN) {
        resp_general(
                resp, 503,
                "%s: the control queue is full (%u commands waiting); not applied, retry later",
                what, ctx->cmd_queue_max);
        resp->retry_after_s = retry_s;
    } else if (submit_rc < 0 || outcome == LOOP_CMD_SHUT_DOWN) {
        resp_general(resp, 503, "shutting down");
    } else if (outcome == LOOP_CMD_ANSWERED && cmd->status == 200) {
        resp_general(resp, 200, "OK");
    } else if (outcome == LOOP_CMD_ANSWERED) {
        resp_general(resp, cmd->status ? cmd->status : 500, "%s", cmd->msg);
    } else if (outcome == LOOP_CMD_EXPIRED_QUEUED) {
        resp_general(
                resp, 503,
                "%s: timed out after %u ms waiting in the control queue; not applied, retry later",
                what, ctx->cmd_timeout_ms);
        resp->retry_after_s = retry_s;
    } else if (outcome == LOOP_CMD_EXPIRED_RUNNING) {
        resp_general(
                resp, 500,
                "%s: timed out after %u ms waiting for the command to be applied; the outcome is unknown: it may or may not be applied",
                what, ctx->cmd_timeout_ms);
    } else {
        resp_general(resp, 500, "control request: no answer");
    }
    struct audit_record r = cmd->audit;
    audit_end(&r, resp);
}

/* ---- the audit trail ---- */

/* Entries GET /audit-log shows without ?limit=. */
#define AUDIT_LOG_DEFAULT_LIMIT 100

static json_t *audit_json(const struct audit_record *r)
{
    char ts[40];
    json_t *o = json_object();
    json_object_set_new(o, "At", json_string(clock_rfc3339(r->at_ms, ts, sizeof(ts))));
    json_object_set_new(o, "Who", json_string(r->who));
    json_object_set_new(o, "Peer", json_string(r->peer));
    json_object_set_new(o, "Forwarded", json_string(r->forwarded));
    json_object_set_new(o, "What", json_string(r->what));
    json_t *params = json_loads(r->params, 0, NULL);
    json_object_set_new(o, "Params", params != NULL ? params : json_string(r->params));
    json_object_set_new(o, "Status", json_integer(r->status));
    json_object_set_new(o, "Message", json_string(r->message));
    return o;
}

/* GET /audit-log[?limit=N]: the newest control commands first. It shows
 * who acted from where, so it needs a control token when they are
 * required. */
static void handle_audit_log(const struct api_call *c, struct http_resp *resp)
{
    char who[AUDIT_WHO_SIZE];
    if (!control_authorized(c->req, c->s, who)) {
        resp_general(resp, 401, "audit-log: missing or wrong token");
        return;
    }
    int64_t limit = AUDIT_LOG_DEFAULT_LIMIT;
    const char *l = c->req->query(c->req->ctx, "limit");
    if (l != NULL && (parse_i64(l, &limit) < 0 || limit < 1 || limit > AUDIT_TRAIL_MAX)) {
        char q[200];
        if (jsonfmt_string(q, sizeof(q), l) == 0)
            snprintf(q, sizeof(q), "\"...\"");
        resp_general(resp, 400, "audit-log: limit %s is not an integer in 1..%d", q,
                     AUDIT_TRAIL_MAX);
        return;
    }
    const struct snap_audit *a = c->s ? c->s->audit : NULL;
    json_t *arr = json_array();
    for (size_t i = 0; a != NULL && i < a->len && i < (size_t)limit; i++)
        json_array_append_new(arr, audit_json(&a->v[i]));
    resp_json(resp, 200, arr, JSON_PRESERVE_ORDER);
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
