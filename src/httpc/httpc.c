/* SPDX-License-Identifier: MIT */
/* libcurl multi driven by libuv, the integration curl documents for event
 * loops: curl tells us which sockets to watch (socket callback -> uv_poll)
 * and when to call back (timer callback -> uv_timer); we hand readiness back
 * with curl_fn.multi_socket_action() and collect finished transfers. Loop
 * thread; every request and socket context is owned by struct httpc.
 *
 * libcurl is opened on first use (core/dynlib.h): most configurations never
 * fetch anything over HTTP, and libcurl with what it links (Kerberos, LDAP,
 * SSH, HTTP/2...) is the largest part of an idle daemon's memory. Calls go
 * through curl_fn, whose types are curl.h's. */
#include "httpc/httpc.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <curl/curl.h>

#include "core/dynlib.h"
#include "core/err.h"
#include "core/redact.h"
#include "core/xalloc.h"
#include "log/log.h"
#include "loop/loop.h"
#include "loop/loop_timer.h"

/* Every libcurl function this file calls: field, symbol. */
#define CURL_FUNCTIONS(X)                                                                          \
    X(global_init, curl_global_init)                                                               \
    X(global_cleanup, curl_global_cleanup)                                                         \
    X(version_info, curl_version_info)                                                             \
    X(easy_init, curl_easy_init)                                                                   \
    X(easy_cleanup, curl_easy_cleanup)                                                             \
    X(easy_setopt, curl_easy_setopt)                                                               \
    X(easy_getinfo, curl_easy_getinfo)                                                             \
    X(easy_strerror, curl_easy_strerror)                                                           \
    X(multi_init, curl_multi_init)                                                                 \
    X(multi_cleanup, curl_multi_cleanup)                                                           \
    X(multi_setopt, curl_multi_setopt)                                                             \
    X(multi_add_handle, curl_multi_add_handle)                                                     \
    X(multi_remove_handle, curl_multi_remove_handle)                                               \
    X(multi_assign, curl_multi_assign)                                                             \
    X(multi_socket_action, curl_multi_socket_action)                                               \
    X(multi_info_read, curl_multi_info_read)                                                       \
    X(multi_strerror, curl_multi_strerror)

/* A member declaration: @field cannot be parenthesised. */
#define CURL_FN_FIELD(field, sym) __typeof__(sym) *field; /* NOLINT(bugprone-macro-parentheses) */
static struct {
    CURL_FUNCTIONS(CURL_FN_FIELD)
} curl_fn;
#undef CURL_FN_FIELD

/* The oldest libcurl with everything used here (CURLOPT_PROTOCOLS_STR). */
#define CURL_MIN_VERSION     0x075500
#define CURL_MIN_VERSION_STR "7.85.0"

static bool curl_loaded;

/* Option numbers encode the type of their value (curl.h, CURLOPTTYPE_*):
 * @opt, checked at compile time to be of @kind. */
#define OPT_OF_KIND(opt, kind)                                                                     \
    ((__typeof__(opt))((opt) + 0 * sizeof(char[(opt) / 10000 * 10000 == (kind) ? 1 : -1])))

/* curl_easy_setopt() and curl_multi_setopt() with their values' types
 * checked: curl.h's own checking macro cannot call through a pointer. */
#define easy_setopt_long(e, opt, v)                                                                \
    curl_fn.easy_setopt((e), OPT_OF_KIND(opt, CURLOPTTYPE_LONG), _Generic((v), long : (v)))
#define easy_setopt_str(e, opt, v)                                                                 \
    curl_fn.easy_setopt((e), OPT_OF_KIND(opt, CURLOPTTYPE_STRINGPOINT), (const char *){(v)})
#define easy_setopt_ptr(e, opt, v)                                                                 \
    curl_fn.easy_setopt((e), OPT_OF_KIND(opt, CURLOPTTYPE_OBJECTPOINT), (void *){(v)})
#define easy_setopt_fn(e, opt, type, v)                                                            \
    curl_fn.easy_setopt((e), OPT_OF_KIND(opt, CURLOPTTYPE_FUNCTIONPOINT), (type){(v)})
#define multi_setopt_ptr(m, opt, v)                                                                \
    curl_fn.multi_setopt((m), OPT_OF_KIND(opt, CURLOPTTYPE_OBJECTPOINT), (void *){(v)})
#define multi_setopt_fn(m, opt, type, v)                                                           \
    curl_fn.multi_setopt((m), OPT_OF_KIND(opt, CURLOPTTYPE_FUNCTIONPOINT), (type){(v)})

int httpc_library_load(struct err *err)
{
    if (curl_loaded)
        return 0;
        /* After a failure the next call tries again: a library installed since
         * then is found at the next reload. */
#define CURL_FN_SYM(field, sym) {#sym, offsetof(__typeof__(curl_fn), field)},
    static const struct dynlib_sym syms[] = {CURL_FUNCTIONS(CURL_FN_SYM)};
#undef CURL_FN_SYM
    struct err e = {0};
    if (dynlib_load("libcurl.so.4", syms, sizeof(syms) / sizeof(syms[0]), &curl_fn, &e) < 0)
        return err_set(err, -ENOENT, "cannot load libcurl: %s", e.msg);
    const curl_version_info_data *v = curl_fn.version_info(CURLVERSION_NOW);
    if (v->version_num < CURL_MIN_VERSION)
        return err_set(err, -ENOENT, "libcurl %s is older than " CURL_MIN_VERSION_STR, v->version);
    if (curl_fn.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return err_set(err, -ENOENT, "libcurl %s: curl_global_init failed", v->version);
    curl_loaded = true;
    log_info("httpc: libcurl %s loaded", v->version);
    return 0;
}

void httpc_library_end(void)
{
    if (curl_loaded)
        curl_fn.global_cleanup();
    curl_loaded = false;
}

struct httpc {
    struct loop *loop;
    CURLM *multi;
    uv_timer_t *timer;
    struct httpc_req *reqs; /* in flight, doubly linked */
    size_t nreqs;
};

struct httpc_req {
    struct httpc *h;
    CURL *easy;
    char *body;
    size_t len;
    size_t cap;
    size_t max_body;
    bool too_big;
    httpc_done_fn *cb;
    void *arg;
    struct httpc_req *prev;
    struct httpc_req *next;
    char errbuf[CURL_ERROR_SIZE];
};

/* One per socket curl asks us to watch; freed when its poll handle closed. */
struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    struct httpc *h;
};

static void on_poll_closed(uv_handle_t *h)
{
    free(h->data); /* the struct sock_ctx the poll handle is part of */
}

static void req_unlink(struct httpc_req *r)
{
    struct httpc *h = r->h;
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        h->reqs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    h->nreqs--;
}

/* Frees @r, which must be unlinked; removing it again from the multi is a no-op. */
static void req_free(struct httpc_req *r)
{
    curl_fn.multi_remove_handle(r->h->multi, r->easy);
    curl_fn.easy_cleanup(r->easy);
    free(r->body);
    free(r);
}

/* Reports every finished transfer. Each callback may add or cancel requests,
 * so messages are read one at a time (removing a handle drops its message). */
static void drain_done(struct httpc *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_fn.multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct httpc_req *r = NULL;
        curl_fn.easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode cc = m->data.result;
        struct httpc_result res = {.body = r->body ? r->body : "", .len = r->len, .msg = ""};
        char msg[CURL_ERROR_SIZE + 64];
        if (cc == CURLE_OK) {
            curl_fn.easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
        } else {
            if (r->too_big) {
                res.code = -EFBIG;
                snprintf(msg, sizeof(msg), "body larger than %zu bytes", r->max_body);
            } else {
                res.code = cc == CURLE_OPERATION_TIMEDOUT     ? -ETIMEDOUT
                           : cc == CURLE_COULDNT_CONNECT      ? -ECONNREFUSED
                           : cc == CURLE_COULDNT_RESOLVE_HOST ? -EHOSTUNREACH
                                                              : -EIO;
                /* curl may quote the URL, credentials included. */
                redact_text(r->errbuf[0] ? r->errbuf : curl_fn.easy_strerror(cc), msg, sizeof(msg));
            }
            res.msg = msg;
        }
        req_unlink(r);
        curl_fn.multi_remove_handle(h->multi, r->easy);
        r->cb(&res, r->arg);
        req_free(r);
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock_ctx *sc = p->data;
    struct httpc *h = sc->h;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_fn.multi_socket_action(h->multi, sc->fd, flags, &running);
    drain_done(h);
}

static void on_timeout(uv_timer_t *t)
{
    struct httpc *h = t->data;
    int running;
    curl_fn.multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_done(h);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct httpc *h = userp;
    struct sock_ctx *sc = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (sc != NULL) {
            /* Stop now: curl closes the socket right after this returns. */
            uv_poll_stop(&sc->poll);
            uv_close((uv_handle_t *)&sc->poll, on_poll_closed);
            curl_fn.multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    if (sc == NULL) {
        sc = xcalloc(1, sizeof(*sc));
        sc->fd = fd;
        sc->h = h;
        int rc = uv_poll_init_socket(loop_uv(h->loop), &sc->poll, fd);
        if (rc != 0) {
            log_error("inventory: http: watching socket %d: %s", (int)fd, uv_strerror(rc));
            free(sc);
            return -1;
        }
        sc->poll.data = sc;
        curl_fn.multi_assign(h->multi, fd, sc);
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&sc->poll, ev, on_poll);
    return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct httpc *h = userp;
    if (timeout_ms < 0)
        uv_timer_stop(h->timer);
    else
        uv_timer_start(h->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t on_write(char *data, size_t size, size_t n, void *arg)
{
    struct httpc_req *r = arg;
    size_t add = size * n;
    if (add > r->max_body - r->len) {
        r->too_big = true;
        return 0;
    }
    size_t need = r->len + add + 1;
    if (need > r->cap) {
        /* At least double, so that appending stays linear overall. */
        size_t cap = r->cap > 2048 ? 2 * r->cap : 4096;
        r->cap = cap > need ? cap : need;
        r->body = xrealloc(r->body, r->cap);
    }
    memcpy(r->body + r->len, data, add);
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

struct httpc *httpc_new(struct loop *loop, struct err *err)
{
    if (httpc_library_load(err) < 0)
        return NULL;
    CURLM *multi = curl_fn.multi_init();
    if (multi == NULL) {
        err_set(err, -ENOMEM, "inventory: http: curl_multi_init failed");
        return NULL;
    }
    struct httpc *h = xcalloc(1, sizeof(*h));
    h->loop = loop;
    h->multi = multi;
    h->timer = loop_timer_new(loop, h);
    multi_setopt_fn(multi, CURLMOPT_SOCKETFUNCTION, curl_socket_callback, on_curl_socket);
    multi_setopt_ptr(multi, CURLMOPT_SOCKETDATA, h);
    multi_setopt_fn(multi, CURLMOPT_TIMERFUNCTION, curl_multi_timer_callback, on_curl_timer);
    multi_setopt_ptr(multi, CURLMOPT_TIMERDATA, h);
    return h;
}

void httpc_free(struct httpc *h)
{
    if (h == NULL)
        return;
    for (struct httpc_req *r = h->reqs, *next; r != NULL; r = next) {
        next = r->next;
        req_free(r); /* the whole list goes: no need to unlink */
    }
    h->reqs = NULL;
    /* Closes cached connections, which reports their sockets as removed. */
    curl_fn.multi_cleanup(h->multi);
    loop_timer_close(&h->timer);
    free(h);
}

struct httpc_req *httpc_get(struct httpc *h, const char *url, uint32_t timeout_ms, size_t max_body,
                            httpc_done_fn *cb, void *arg, struct err *err)
{
    CURL *e = curl_fn.easy_init();
    if (e == NULL) {
        char shown[512];
        err_set(err, -ENOMEM, "GET %s: curl_easy_init failed",
                redact_text(url, shown, sizeof(shown)));
        return NULL;
    }
    struct httpc_req *r = xmalloc(sizeof(*r));
    *r = (struct httpc_req){.h = h, .easy = e, .max_body = max_body, .cb = cb, .arg = arg};
    easy_setopt_str(e, CURLOPT_URL, url);
    easy_setopt_ptr(e, CURLOPT_PRIVATE, r);
    easy_setopt_fn(e, CURLOPT_WRITEFUNCTION, curl_write_callback, on_write);
    easy_setopt_ptr(e, CURLOPT_WRITEDATA, r);
    easy_setopt_ptr(e, CURLOPT_ERRORBUFFER, r->errbuf);
    easy_setopt_long(e, CURLOPT_NOSIGNAL, 1L);
    easy_setopt_long(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    easy_setopt_long(e, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    easy_setopt_str(e, CURLOPT_PROTOCOLS_STR, "http,https");
    easy_setopt_str(e, CURLOPT_USERAGENT, "freno/" FRENO_VERSION);
    easy_setopt_str(e, CURLOPT_ACCEPT_ENCODING, "");
    CURLMcode mc = curl_fn.multi_add_handle(h->multi, e);
    if (mc != CURLM_OK) {
        err_set(err, -EIO, "GET %s: %s", url, curl_fn.multi_strerror(mc));
        curl_fn.easy_cleanup(e);
        free(r);
        return NULL;
    }
    r->next = h->reqs;
    if (h->reqs != NULL)
        h->reqs->prev = r;
    h->reqs = r;
    h->nreqs++;
    return r;
}

void httpc_cancel(struct httpc_req *r)
{
    if (r == NULL)
        return;
    req_unlink(r);
    req_free(r);
}

char *httpc_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = xmalloc(n * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~';
        if (keep) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}
