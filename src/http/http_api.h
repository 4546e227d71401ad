/* SPDX-License-Identifier: MIT */
/* API handlers (docs/api.md), independent of the HTTP library: a request comes in
 * as plain strings, a response goes out as status + body. Reads go to the
 * published snapshot; writes are queued to the loop. HTTP threads. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "loop/loop.h"

struct history;

struct http_req {
    const char *method; /* "GET" / "HEAD" */
    const char *path;   /* decoded, without query */
    const char *peer;   /* client address without port ("::1", "10.0.0.1") */
    /* Lookups of a query argument / request header; NULL when absent. */
    const char *(*query)(void *ctx, const char *key);
    const char *(*header)(void *ctx, const char *key);
    void *ctx;
    /* Where a control request leaves its command for the loop (then
     * http_resp.park is set); NULL refuses control requests. */
    struct loop_cmd *park;
};

/* Room for any answer written in place: the longest check answer, which
 * lists every metric of a cluster (http/check_body.h, CHECK_BODY_MAX), and
 * the general response. It lives on the answering thread's stack. */
#define HTTP_RESP_SMALL 16384

/* What the dashboard may load: its own script, style and JSON from this
 * daemon, nothing else (no inline script, no frame, no form). */
#define HTTP_DASHBOARD_CSP                                                                         \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "                \
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

struct http_resp {
    int status;
    bool json; /* Content-Type: application/json */
    /* When set, the Content-Type instead of the one json implies. */
    const char *content_type;
    char *body; /* points to small, to a heap buffer (heap set) or into shared text (release set) */
    size_t len;
    bool heap; /* body must be free()d */
    /* No answer yet: queue req->park, and answer with
     * http_api_control_answer() once the loop did. */
    bool park;
    unsigned retry_after_s; /* non-zero: send a Retry-After header */
    /* The dashboard's answers: send a Content-Security-Policy that allows
     * nothing from outside this daemon (docs/api.md#dashboard). */
    bool csp;
    /* When set, body is shared and stays valid until release(release_arg),
     * which the server calls once the response is sent or dropped. */
    void (*release)(void *arg);
    void *release_arg;
    char small[HTTP_RESP_SMALL];
};

struct http_api_ctx {
    struct loop *loop;       /* for its heartbeat (checks refuse a stalled loop) */
    unsigned cmd_timeout_ms; /* how long a control request waits for the loop */
    unsigned cmd_queue_max;  /* the loop's command queue bound, for messages */
    struct history *history; /* /metrics-history's source; NULL: none */
};

/* Answers @req into @resp, or sets resp->park for a control request. */
void http_api_handle(const struct http_api_ctx *ctx, const struct http_req *req,
                     struct http_resp *resp);
/* Answers a parked control request @cmd: @submit_rc is what
 * loop_cmd_submit() returned, and if 0, @outcome and @cmd's status and msg
 * are what loop_ticket_result() gave. */
void http_api_control_answer(const struct http_api_ctx *ctx, const struct loop_cmd *cmd,
                             int submit_rc, enum loop_cmd_outcome outcome, struct http_resp *resp);
