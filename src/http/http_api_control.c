/* SPDX-License-Identifier: MIT */
/* Control requests (throttle, unthrottle, skip, recover, app rules): the
 * token, the parameters, the loop command and its answer, each with its
 * audit line; and the listings that belong to them (/app-rules,
 * /audit-log). The server queues the commands without holding a thread.
 * HTTP threads. */
#include "http/http_api_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
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
#include "log/log.h"
#include "snapshot/app_rule.h"
#include "snapshot/check.h"
#include "snapshot/snapshot.h"

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

void handle_control(const struct api_call *c, struct http_resp *resp)
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
void handle_app_rules(const struct api_call *c, struct http_resp *resp)
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
void handle_audit_log(const struct api_call *c, struct http_resp *resp)
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
