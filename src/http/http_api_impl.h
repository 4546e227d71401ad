/* SPDX-License-Identifier: MIT */
/* What the API's handler files share (http_api.c: dispatch, checks,
 * listings; http_api_dashboard.c: the dashboard and its JSON;
 * http_api_control.c: control requests, rules and the audit trail): one
 * request on its way, the answer builders, and the handlers the route
 * table names. Not for use outside src/http. HTTP threads. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "http/http_api.h"
#include "http/router.h"
#include "loop/loop.h"

struct snapshot;

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

/* ---- answers (http_api.c) ---- */

/* An empty answer: every field zero but the buffer itself. */
void resp_reset(struct http_resp *resp);
/* @text (copied) with @status. */
void resp_text(struct http_resp *resp, int status, bool json, const char *text);
/* Takes ownership of @j. Encodes like Go's json.Encoder (trailing newline). */
void resp_json(struct http_resp *resp, int status, json_t *j, size_t flags);
/* The general response {"StatusCode":N,"Message":"..."} with a formatted
 * message. Returns false, so that a validator can refuse with
 * "return resp_general(...)". */
bool resp_general(struct http_resp *resp, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Refuses a request parameter with 500 "<what>: <param> "<value>" is not
 * <expected>". Returns false, as resp_general(). */
bool resp_not_a(struct http_resp *resp, const char *what, const char *param, const char *value,
                const char *expected);
/* Whether an entry expiring at @expire_at_ms (0: never) is gone at @now_ms. */
bool expired(uint64_t expire_at_ms, uint64_t now_ms);

/* ---- handlers in the other files ---- */

void handle_dashboard(const struct api_call *c, struct http_resp *resp);
void handle_metrics_history(const struct api_call *c, struct http_resp *resp);
void handle_cluster_metrics(const struct api_call *c, struct http_resp *resp);
void handle_control(const struct api_call *c, struct http_resp *resp);
void handle_app_rules(const struct api_call *c, struct http_resp *resp);
void handle_audit_log(const struct api_call *c, struct http_resp *resp);
