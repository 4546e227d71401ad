/* SPDX-License-Identifier: MIT */
/* A small asynchronous HTTP GET client for the inventory sources, HTTP
 * checks and ShareDomain polling: libcurl's multi interface driven by the loop (uv_poll per socket,
 * one uv_timer), so no request ever blocks the loop and connections are
 * reused. Loop thread only. <curl/curl.h> stays inside httpc.c, and libcurl
 * is opened only when a client is first created. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct err;
struct loop;
struct httpc;
struct httpc_req;

struct httpc_result {
    int code;         /* 0, or a negative errno-style code when no answer came */
    long status;      /* HTTP status when code is 0 */
    const char *body; /* NUL-terminated; valid during the callback only */
    size_t len;
    const char *msg; /* when code < 0: "<curl detail>"; "" otherwise */
};

/* Called once per request from the loop, never from inside httpc_get(),
 * unless the request was cancelled. The callback may start new requests and
 * cancel other ones. */
typedef void httpc_done_fn(const struct httpc_result *r, void *arg);

/* Opens libcurl ("libcurl.so.4") and initialises it, once; later calls
 * return at once. Returns 0, or -ENOENT with @err set to one line saying why
 * (missing library, missing symbol, older than 7.85.0); the next call
 * tries again. Loop thread. */
int httpc_library_load(struct err *err);
/* curl_global_cleanup() if httpc_library_load() succeeded. Once no client
 * is left, at exit. */
void httpc_library_end(void);

/* Creates a client on @loop, loading libcurl first if needed. Returns NULL
 * with @err set if libcurl cannot be loaded or set up. */
struct httpc *httpc_new(struct loop *loop, struct err *err);
/* Cancels every request (callbacks are not called) and frees the client; its
 * libuv handles are closed asynchronously. NULL is fine. */
void httpc_free(struct httpc *h);

/* Starts GET @url, failing after @timeout_ms in total; a body larger than
 * @max_body bytes is an error. Returns the request (valid until its callback
 * ran or it was cancelled), or NULL with @err set. */
struct httpc_req *httpc_get(struct httpc *h, const char *url, uint32_t timeout_ms, size_t max_body,
                            httpc_done_fn *cb, void *arg, struct err *err);
/* Abandons @r: its callback is not called. NULL is fine. */
void httpc_cancel(struct httpc_req *r);

/* Percent-encodes @s for a URL path segment or query value (unreserved
 * characters are kept). Returns a new string. Any thread. */
char *httpc_escape(const char *s);
