/* SPDX-License-Identifier: MIT */
/* API handlers. The check path formats its answer into a stack buffer and
 * takes no lock; other endpoints render JSON with jansson from the snapshot.
 * Control requests become loop commands, which the server queues without
 * holding a thread; their answers are formatted here. HTTP threads. */
#include "http/http_api.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/jsonfmt.h"
#include "core/limits.h"
#include "core/parse.h"
#include "http/router.h"
#include "loop/loop.h"
#include "metrics/metrics.h"
#include "snapshot/check.h"
#include "snapshot/events.h"
#include "snapshot/snapshot.h"

/* ---- small formatting helpers ---- */

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

static void resp_general(struct http_resp *resp, int status, const char *msg)
{
    char m[600];
    if (jsonfmt_string(m, sizeof(m), msg) == 0)
        jsonfmt_string(m, sizeof(m), "error");
    snprintf(resp->small, sizeof(resp->small), "{\"StatusCode\":%d,\"Message\":%s}\n", status, m);
    resp->status = status;
    resp->json = true;
    resp->body = resp->small;
    resp->len = strlen(resp->small);
    resp->heap = false;
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

/* Formats the check answer for @res into @resp's own buffer. */
static void check_body(struct http_resp *resp, const struct check_result *res)
{
    char vbuf[40], tbuf[40], m[600];
    const char *v = res->value_json;
    const char *t = res->threshold_json;
    if (v == NULL)
        v = jsonfmt_number(vbuf, sizeof(vbuf), res->value) ? vbuf : "0";
    if (t == NULL)
        t = jsonfmt_number(tbuf, sizeof(tbuf), res->threshold) ? tbuf : "0";
    if (jsonfmt_string(m, sizeof(m), res->message ? res->message : "") == 0)
        snprintf(m, sizeof(m), "\"error message too long\"");
    int n = snprintf(resp->small, sizeof(resp->small),
                     "{\"StatusCode\":%d,\"Value\":%s,\"Threshold\":%s,\"Message\":%s}\n",
                     res->status, v, t, m);
    resp->status = res->status;
    resp->json = true;
    resp->body = resp->small;
    resp->len = (n > 0 && (size_t)n < sizeof(resp->small)) ? (size_t)n : strlen(resp->small);
    resp->heap = false;
}

static void handle_check(const struct http_api_ctx *ctx, const struct http_req *req,
                         const struct route *rt, struct http_resp *resp)
{
    struct check_request cr = {
            .app = route_param(rt, "app"),
            .store_type = route_param(rt, "storeType"),
            .store_name = route_param(rt, "storeName"),
            .ok_if_not_exists =
                    rt->id == ROUTE_CHECK_IF_EXISTS || rt->id == ROUTE_CHECK_READ_IF_EXISTS,
    };
    if (rt->id == ROUTE_CHECK_READ || rt->id == ROUTE_CHECK_READ_IF_EXISTS) {
        const char *t = route_param(rt, "threshold");
        char msg[300];
        if (parse_double(t, &cr.override_threshold) < 0) {
            char q[200];
            if (jsonfmt_string(q, sizeof(q), t) == 0)
                snprintf(q, sizeof(q), "\"...\"");
            snprintf(msg, sizeof(msg), "check-read: threshold %s is not a number", q);
            resp_general(resp, 500, msg);
            return;
        }
        cr.read_check = true;
    }
    const char *p = req->query(req->ctx, "p");
    cr.low_priority = p != NULL && strcmp(p, "low") == 0;
    const char *client = req->header(req->ctx, "X-Forwarded-For");
    if (client == NULL || client[0] == '\0')
        client = req->peer;

    cr.loop_alive_boot_ms = loop_alive_boot_ms(ctx->loop);
    cr.now_boot_ms = clock_boot_ms();
    uint64_t now_ms = clock_wall_ms();
    struct check_result res;
    const struct snapshot *s = snapshot_acquire();
    check_decide(s, &cr, now_ms, rng_uniform(), &res);
    /* The result's strings may point into the snapshot, which can be freed
     * as soon as the section ends: the body is complete before it does. */
    check_body(resp, &res);
    snapshot_release(s);

    if (res.known_store) {
        metrics_count_check(res.status);
        events_push(now_ms, res.status, cr.app, cr.store_name, client);
    }
}

static void handle_leader_check(const struct snapshot *s, struct http_resp *resp)
{
    bool leader = s && s->leader && s->leader->l.is_leader &&
                  (s->leader->l.lease_until_boot_ms == 0 ||
                   clock_boot_ms() < s->leader->l.lease_until_boot_ms);
    resp_text(resp, leader ? 200 : 404, false, leader ? "\"HTTP 200\"\n" : "\"HTTP 404\"\n");
}

static void handle_consensus_leader(const struct snapshot *s, struct http_resp *resp)
{
    const char *id = (s && s->leader) ? s->leader->l.leader_id : "";
    if (id == NULL || id[0] == '\0') {
        resp_text(resp, 500, false, "");
        return;
    }
    resp_json(resp, 200, json_string(id), 0);
}

static json_t *services_list(const struct snap_service *v, size_t len)
{
    json_t *a = json_array();
    for (size_t i = 0; i < len; i++)
        json_array_append_new(a, json_string(v[i].service_id));
    return a;
}

static void handle_consensus_status(const struct snapshot *s, struct http_resp *resp)
{
    static const struct snap_leader none = {.state = "Unhealthy"};
    const struct snap_leader *l = (s && s->leader) ? &s->leader->l : &none;
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

static void handle_aggregated(const struct http_req *req, const struct snapshot *s,
                              struct http_resp *resp)
{
    const char *b = req->query(req->ctx, "brief");
    bool brief = b != NULL && strcmp(b, "true") == 0;
    json_t *o = json_object();
    for (size_t i = 0; s && s->metrics && i < s->metrics->len; i++) {
        const struct snap_metric *m = &s->metrics->v[i];
        if (!m->has_value)
            continue;
        char buf[400];
        if (m->ok)
            snprintf(buf, sizeof(buf), brief ? "%.3f" : "%f", m->value);
        else
            snprintf(buf, sizeof(buf), "error: %s", m->err ? m->err : "");
        json_object_set_new(o, m->name, json_string(buf));
    }
    resp_json(resp, 200, o, JSON_SORT_KEYS);
}

static void handle_metrics_health(const struct snapshot *s, uint64_t now_ms, struct http_resp *resp)
{
    json_t *o = json_object();
    for (size_t i = 0; s && s->metrics && i < s->metrics->len; i++) {
        const struct snap_metric *m = &s->metrics->v[i];
        if (m->last_healthy_at_ms == 0)
            continue;
        char ts[40];
        json_t *h = json_object();
        json_object_set_new(h, "LastHealthyAt",
                            json_string(clock_rfc3339(m->last_healthy_at_ms, ts, sizeof(ts))));
        uint64_t since = now_ms > m->last_healthy_at_ms ? now_ms - m->last_healthy_at_ms : 0;
        json_object_set_new(h, "SecondsSinceLastHealthy", json_integer((json_int_t)(since / 1000)));
        json_object_set_new(o, m->name, h);
    }
    resp_json(resp, 200, o, JSON_SORT_KEYS | JSON_PRESERVE_ORDER);
}

static void handle_throttled_apps(const struct snapshot *s, uint64_t now_ms, struct http_resp *resp)
{
    json_t *o = json_object();
    for (size_t i = 0; s && s->apps && i < s->apps->len; i++) {
        const struct snap_app *a = &s->apps->v[i];
        if (a->expire_at_ms != 0 && a->expire_at_ms <= now_ms)
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

static void handle_skipped_hosts(const struct snapshot *s, uint64_t now_ms, struct http_resp *resp)
{
    json_t *o = json_object();
    for (size_t i = 0; s && s->hosts && i < s->hosts->len; i++) {
        const struct snap_host *h = &s->hosts->v[i];
        if (h->expire_at_ms != 0 && h->expire_at_ms <= now_ms)
            continue;
        char ts[40];
        json_object_set_new(o, h->host,
                            json_string(clock_rfc3339(h->expire_at_ms, ts, sizeof(ts))));
    }
    resp_json(resp, 200, o, JSON_SORT_KEYS);
}

#define RECENT_ENTRY_FMT ":{\"CheckedAtEpoch\":%" PRIu64 ",\"MinutesSinceChecked\":%" PRId64 "}"

static void handle_recent_apps(const struct route *rt, const struct snapshot *s, uint64_t now_ms,
                               struct http_resp *resp)
{
    int64_t last_minutes = 0;
    const char *lm = route_param(rt, "lastMinutes");
    if (lm != NULL && parse_i64(lm, &last_minutes) < 0) {
        char q[200], msg[300];
        if (jsonfmt_string(q, sizeof(q), lm) == 0)
            snprintf(q, sizeof(q), "\"...\"");
        snprintf(msg, sizeof(msg), "recent-apps: minutes %s is not an integer", q);
        resp_general(resp, 500, msg);
        return;
    }
    /* Keys come JSON-encoded and sorted from the loop (at most MaxRecentApps
     * of them): one exactly sized buffer, one pass, no JSON objects. */
    const struct snap_recents *rs = s ? s->recents : NULL;
    size_t n = rs ? rs->len : 0;
    /* Per entry: the format, two 20-digit numbers and a comma. */
    size_t size = 4 + (rs ? rs->key_json_bytes : 0) + n * (sizeof(RECENT_ENTRY_FMT) + 41);
    char *b = malloc(size);
    if (b == NULL) {
        resp_general(resp, 500, "recent-apps: out of memory");
        return;
    }
    size_t o = 0;
    b[o++] = '{';
    for (size_t i = 0; i < n; i++) {
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
    resp->status = 200;
    resp->json = true;
    resp->body = b;
    resp->len = o;
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

static bool control_authorized(const struct http_req *req, const struct snapshot *s)
{
    if (s == NULL || s->control_token == NULL || s->control_token[0] == '\0')
        return true;
    const char *auth = req->header(req->ctx, "Authorization");
    const char *tok = NULL;
    if (auth != NULL && strncmp(auth, "Bearer ", 7) == 0)
        tok = auth + 7;
    if (tok == NULL)
        tok = req->header(req->ctx, "X-Freno-Token");
    if (tok == NULL)
        return false;
    /* Constant-time compare so response timing does not leak the token. */
    size_t a = strlen(tok), b = strlen(s->control_token);
    unsigned char diff = (unsigned char)(a != b);
    for (size_t i = 0; i < a && i < b; i++)
        diff |= (unsigned char)(tok[i] ^ s->control_token[i]);
    return diff == 0;
}

static void handle_control(const struct http_req *req, const struct route *rt,
                           struct http_resp *resp)
{
    const struct snapshot *s = snapshot_acquire();
    bool ok = control_authorized(req, s);
    snapshot_release(s);
    if (!ok) {
        resp_general(resp, 401, "control request: missing or wrong token");
        return;
    }
    struct loop_cmd cmd = {0};
    const char *what = "";
    const char *name = NULL;
    switch (rt->id) {
    case ROUTE_THROTTLE_APP:
        cmd.kind = LOOP_CMD_THROTTLE_APP;
        what = "throttle-app";
        name = route_param(rt, "app");
        break;
    case ROUTE_UNTHROTTLE_APP:
        cmd.kind = LOOP_CMD_UNTHROTTLE_APP;
        what = "unthrottle-app";
        name = route_param(rt, "app");
        break;
    case ROUTE_SKIP_HOST:
        cmd.kind = LOOP_CMD_SKIP_HOST;
        what = "skip-host";
        name = route_param(rt, "hostName");
        break;
    default:
        cmd.kind = LOOP_CMD_RECOVER_HOST;
        what = "recover-host";
        name = route_param(rt, "hostName");
        break;
    }
    char msg[512];
    const char *store = NULL;
    if (cmd.kind == LOOP_CMD_THROTTLE_APP || cmd.kind == LOOP_CMD_UNTHROTTLE_APP)
        store = req->query(req->ctx, "store_name");
    int n = (store != NULL && store[0] != '\0')
                    ? snprintf(cmd.name, sizeof(cmd.name), "%s/%s", name, store)
                    : snprintf(cmd.name, sizeof(cmd.name), "%s", name);
    if (n < 0 || (size_t)n >= sizeof(cmd.name) || (size_t)n > FRENO_NAME_MAX) {
        snprintf(msg, sizeof(msg),
                 "%s: name of %d bytes is longer than the %d bytes the backend can store", what, n,
                 FRENO_NAME_MAX);
        resp_general(resp, 500, msg);
        return;
    }
    const char *ttl = route_param(rt, "ttlMinutes");
    if (ttl != NULL) {
        if (parse_i64(ttl, &cmd.ttl_min) < 0) {
            char q[200];
            if (jsonfmt_string(q, sizeof(q), ttl) == 0)
                snprintf(q, sizeof(q), "\"...\"");
            snprintf(msg, sizeof(msg), "%s: ttl %s is not an integer number of minutes", what, q);
            resp_general(resp, 500, msg);
            return;
        }
        if (cmd.ttl_min < 0) {
            snprintf(msg, sizeof(msg), "%s: negative ttl %lld", what, (long long)cmd.ttl_min);
            resp_general(resp, 500, msg);
            return;
        }
        cmd.has_ttl = true;
    }
    const char *ratio = route_param(rt, "ratio");
    if (ratio != NULL) {
        if (parse_double(ratio, &cmd.ratio) < 0) {
            char q[200];
            if (jsonfmt_string(q, sizeof(q), ratio) == 0)
                snprintf(q, sizeof(q), "\"...\"");
            snprintf(msg, sizeof(msg), "%s: ratio %s is not a number", what, q);
            resp_general(resp, 500, msg);
            return;
        }
        if (cmd.ratio < 0 || cmd.ratio > 1) {
            snprintf(msg, sizeof(msg), "%s: ratio must be in [0..1] range; got %g", what,
                     cmd.ratio);
            resp_general(resp, 500, msg);
            return;
        }
        cmd.has_ratio = true;
    }
    if (req->park == NULL) {
        resp_general(resp, 500, "control request: not available here");
        return;
    }
    /* The HTTP thread does not wait for the loop: the server parks the
     * request and answers through http_api_control_answer(). */
    *req->park = cmd;
    resp->park = true;
}

static const char *control_what(enum loop_cmd_kind kind)
{
    switch (kind) {
    case LOOP_CMD_THROTTLE_APP:
        return "throttle-app";
    case LOOP_CMD_UNTHROTTLE_APP:
        return "unthrottle-app";
    case LOOP_CMD_SKIP_HOST:
        return "skip-host";
    case LOOP_CMD_RECOVER_HOST:
        return "recover-host";
    }
    return "control request";
}

void http_api_control_answer(const struct http_api_ctx *ctx, const struct loop_cmd *cmd,
                             int submit_rc, enum loop_cmd_outcome outcome, struct http_resp *resp)
{
    memset(resp, 0, sizeof(*resp));
    resp->body = resp->small;
    const char *what = control_what(cmd->kind);
    /* By then the queue has moved on: a command either ran or timed out. */
    unsigned retry_s = (ctx->cmd_timeout_ms + 999) / 1000;
    char msg[512];
    if (submit_rc == -EAGAIN) {
        snprintf(msg, sizeof(msg),
                 "%s: the control queue is full (%u commands waiting); not applied, retry later",
                 what, ctx->cmd_queue_max);
        resp_general(resp, 503, msg);
        resp->retry_after_s = retry_s;
        return;
    }
    if (submit_rc < 0 || outcome == LOOP_CMD_SHUT_DOWN) {
        resp_general(resp, 503, "shutting down");
        return;
    }
    switch (outcome) {
    case LOOP_CMD_ANSWERED:
        if (cmd->status == 200)
            resp_general(resp, 200, "OK");
        else
            resp_general(resp, cmd->status ? cmd->status : 500, cmd->msg);
        return;
    case LOOP_CMD_EXPIRED_QUEUED:
        snprintf(msg, sizeof(msg),
                 "%s: timed out after %u ms waiting in the control queue; not applied, retry later",
                 what, ctx->cmd_timeout_ms);
        resp_general(resp, 503, msg);
        resp->retry_after_s = retry_s;
        return;
    case LOOP_CMD_EXPIRED_RUNNING:
        snprintf(
                msg, sizeof(msg),
                "%s: timed out after %u ms waiting for the command to be applied; the outcome is unknown: it may or may not be applied",
                what, ctx->cmd_timeout_ms);
        resp_general(resp, 500, msg);
        return;
    default:
        resp_general(resp, 500, "control request: no answer");
        return;
    }
}

static void handle_help(struct http_resp *resp)
{
    json_t *a = json_array();
    for (const char *const *p = router_patterns(); *p; p++)
        json_array_append_new(a, json_string(*p));
    resp_json(resp, 200, a, 0);
}

void http_api_handle(const struct http_api_ctx *ctx, const struct http_req *req,
                     struct http_resp *resp)
{
    (void)ctx; /* control requests are answered by http_api_control_answer() */
    struct route rt;
    memset(resp, 0, sizeof(*resp));
    resp->body = resp->small;
    enum route_status rs = router_match(req->method, req->path, &rt);
    if (rs == ROUTE_TOO_LONG) {
        resp_text(resp, 414, false, "414 URI Too Long\n");
        return;
    }
    if (rs == ROUTE_METHOD_NOT_ALLOWED) {
        resp_text(resp, 405, false, "Method Not Allowed\n");
        return;
    }
    if (rs != ROUTE_OK) {
        resp_text(resp, 404, false, "404 page not found\n");
        return;
    }
    switch (rt.id) {
    case ROUTE_CHECK:
    case ROUTE_CHECK_IF_EXISTS:
    case ROUTE_CHECK_READ:
    case ROUTE_CHECK_READ_IF_EXISTS:
        handle_check(ctx, req, &rt, resp);
        return;
    case ROUTE_THROTTLE_APP:
    case ROUTE_UNTHROTTLE_APP:
    case ROUTE_SKIP_HOST:
    case ROUTE_RECOVER_HOST:
        handle_control(req, &rt, resp);
        return;
    case ROUTE_LB_CHECK:
        resp_general(resp, 200, "OK");
        return;
    case ROUTE_HELP:
        handle_help(resp);
        return;
    default:
        break;
    }

    uint64_t now_ms = clock_wall_ms();
    const struct snapshot *s = snapshot_acquire();
    switch (rt.id) {
    case ROUTE_LEADER_CHECK:
        handle_leader_check(s, resp);
        break;
    case ROUTE_CONSENSUS_LEADER:
        handle_consensus_leader(s, resp);
        break;
    case ROUTE_CONSENSUS_STATE:
        resp_json(resp, 200,
                  json_string((s && s->leader && s->leader->l.state) ? s->leader->l.state
                                                                     : "Unhealthy"),
                  0);
        break;
    case ROUTE_CONSENSUS_STATUS:
        handle_consensus_status(s, resp);
        break;
    case ROUTE_HOSTNAME:
        if (s && s->hostname && s->hostname[0])
            resp_json(resp, 200, json_string(s->hostname), 0);
        else
            resp_text(resp, 500, false, "");
        break;
    case ROUTE_AGGREGATED_METRICS:
        handle_aggregated(req, s, resp);
        break;
    case ROUTE_METRICS_HEALTH:
        handle_metrics_health(s, now_ms, resp);
        break;
    case ROUTE_THROTTLED_APPS:
        handle_throttled_apps(s, now_ms, resp);
        break;
    case ROUTE_SKIPPED_HOSTS:
        handle_skipped_hosts(s, now_ms, resp);
        break;
    case ROUTE_RECENT_APPS:
        handle_recent_apps(&rt, s, now_ms, resp);
        break;
    case ROUTE_DEBUG_VARS:
        if (s && s->text && s->text->debug_vars_json)
            resp_shared_text(resp, true, s->text, s->text->debug_vars_json,
                             s->text->debug_vars_len);
        else
            resp_text(resp, 200, true, "{}\n");
        break;
    case ROUTE_PROMETHEUS:
        if (s && s->text && s->text->prometheus)
            resp_shared_text(resp, false, s->text, s->text->prometheus, s->text->prometheus_len);
        else
            resp_text(resp, 200, false, "");
        break;
    case ROUTE_CONFIG_MEMCACHE:
        resp_text(resp, 200, true, (s && s->memcache_json) ? s->memcache_json : "{}\n");
        break;
    default:
        resp_text(resp, 404, false, "404 page not found\n");
        break;
    }
    snapshot_release(s);
}
