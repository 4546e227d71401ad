/* SPDX-License-Identifier: MIT */
/* API handlers (SPEC §7), independent of the HTTP library: a request comes in
 * as plain strings, a response goes out as status + body. Reads go to the
 * published snapshot; writes are queued to the loop. HTTP threads. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct loop;

struct http_req {
    const char *method; /* "GET" / "HEAD" */
    const char *path;   /* decoded, without query */
    const char *peer;   /* client address without port ("::1", "10.0.0.1") */
    /* Lookups of a query argument / request header; NULL when absent. */
    const char *(*query)(void *ctx, const char *key);
    const char *(*header)(void *ctx, const char *key);
    void *ctx;
};

#define HTTP_RESP_SMALL 1536

struct http_resp {
    int status;
    bool json;  /* Content-Type: application/json */
    char *body; /* points to small, to a heap buffer (heap set) or into shared text (release set) */
    size_t len;
    bool heap; /* body must be free()d */
    /* When set, body is shared and stays valid until release(release_arg),
     * which the server calls once the response is sent or dropped. */
    void (*release)(void *arg);
    void *release_arg;
    char small[HTTP_RESP_SMALL];
};

struct http_api_ctx {
    struct loop *loop;
    unsigned cmd_timeout_ms;
};

/* Answers @req into @resp. */
void http_api_handle(const struct http_api_ctx *ctx, const struct http_req *req,
                     struct http_resp *resp);
