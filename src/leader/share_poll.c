/* SPDX-License-Identifier: MIT */
/* libcurl multi on libuv: curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when to wake it (CURLMOPT_TIMERFUNCTION); a
 * uv_poll per socket and one uv_timer feed curl_multi_socket_action. Loop
 * thread only. Invariant: a socket's uv_poll is closed when curl says
 * CURL_POLL_REMOVE, which it does before closing the socket, so libuv never
 * watches a descriptor that was reused. Peer failures are logged once per
 * change of state, not once a second. */
#include "leader/share_poll.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/strmap.h"
#include "core/xalloc.h"
#include "log/log.h"
#include "loop/loop.h"

/* A /metrics-health body is a few hundred bytes per cluster. */
#define BODY_MAX (1u << 20)

struct request {
    struct share_poll *p;
    CURL *easy;
    char *peer;
    char *body;
    size_t body_len;
    bool too_big;
    char errbuf[CURL_ERROR_SIZE];
};

struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    struct share_poll *p;
};

struct share_poll {
    uv_loop_t *uv;
    CURLM *multi;
    uv_timer_t *timer; /* heap: freed, with @p, in its close callback */
    uint32_t timeout_ms;
    struct request **reqs; /* of the round in flight */
    size_t nreqs;
    size_t pending;
    struct strmap worst;   /* metric -> int64_t * during a round */
    struct strmap failing; /* peer -> char * (reason) while it fails */
    share_poll_done_fn *fn;
    void *arg;
};

static void check_done(struct share_poll *p);

/* ---- parsing ---- */

int share_poll_parse(const char *body, size_t len,
                     void (*fn)(const char *metric, int64_t seconds, void *arg), void *arg,
                     struct err *err)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (root == NULL)
        return err_set(err, -EINVAL, "invalid JSON at line %d column %d: %s", je.line, je.column,
                       je.text);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = err_set(err, -EINVAL, "expected a JSON object");
        goto out;
    }
    const char *metric;
    json_t *v;
    /* Validate everything first so a bad body reports nothing at all. */
    json_object_foreach(root, metric, v)
    {
        json_t *s = json_is_object(v) ? json_object_get(v, "SecondsSinceLastHealthy") : NULL;
        if (s == NULL || !json_is_number(s) || !isfinite(json_number_value(s))) {
            rc = err_set(err, -EINVAL, "%.100s: no numeric SecondsSinceLastHealthy", metric);
            goto out;
        }
    }
    json_object_foreach(root, metric, v)
    {
        json_t *s = json_object_get(v, "SecondsSinceLastHealthy");
        double d = json_number_value(s);
        int64_t secs = json_is_integer(s) ? (int64_t)json_integer_value(s)
                       : d > 9e18         ? INT64_MAX
                       : d < -9e18        ? INT64_MIN
                                          : (int64_t)d;
        fn(metric, secs, arg);
    }
out:
    json_decref(root);
    return rc;
}

/* ---- curl on uv ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct request *r = userp;
    size_t n = size * nmemb;
    if (r->body_len + n > BODY_MAX) {
        r->too_big = true;
        return 0; /* aborts the transfer */
    }
    r->body = xrealloc(r->body, r->body_len + n + 1);
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

static void on_sock_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock_ctx *ctx = h->data;
    struct share_poll *p = ctx->p;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    /* May call on_socket(REMOVE) for this very socket, closing @h. */
    curl_multi_socket_action(p->multi, ctx->fd, flags, &running);
    check_done(p);
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    struct share_poll *p = userp;
    struct sock_ctx *ctx = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ctx != NULL) {
            curl_multi_assign(p->multi, s, NULL);
            uv_poll_stop(&ctx->poll);
            uv_close((uv_handle_t *)&ctx->poll, on_sock_closed);
        }
        return 0;
    }
    if (ctx == NULL) {
        ctx = xcalloc(1, sizeof(*ctx));
        ctx->fd = s;
        ctx->p = p;
        ctx->poll.data = ctx;
        if (uv_poll_init_socket(p->uv, &ctx->poll, s) != 0) {
            free(ctx);
            return -1;
        }
        curl_multi_assign(p->multi, s, ctx);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&ctx->poll, events, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    struct share_poll *p = t->data;
    int running;
    curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(p);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct share_poll *p = userp;
    if (timeout_ms < 0)
        uv_timer_stop(p->timer);
    else
        uv_timer_start(p->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- rounds ---- */

static void request_free(struct request *r)
{
    if (r == NULL)
        return;
    if (r->easy != NULL) {
        curl_multi_remove_handle(r->p->multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    free(r->peer);
    free(r->body);
    free(r);
}

static void note_worst(const char *metric, int64_t seconds, void *arg)
{
    struct share_poll *p = arg;
    int64_t *w = strmap_get(&p->worst, metric);
    if (w == NULL) {
        w = xmalloc(sizeof(*w));
        *w = seconds;
        strmap_put(&p->worst, metric, w);
    } else if (seconds > *w) {
        *w = seconds;
    }
}

/* Logs a peer's failure when it starts or its reason changes, and its
 * recovery, so a dead peer costs two lines, not one a second. */
static void peer_state(struct share_poll *p, const char *peer, const char *reason)
{
    char *was = strmap_get(&p->failing, peer);
    if (reason == NULL) {
        if (was != NULL) {
            log_info("share-domain: %s: metrics-health answers again", peer);
            free(strmap_del(&p->failing, peer));
        }
        return;
    }
    if (was != NULL && strcmp(was, reason) == 0)
        return;
    log_warn("share-domain: %s: metrics-health: %s", peer, reason);
    free(strmap_put(&p->failing, peer, xstrdup(reason)));
}

static void request_done(struct share_poll *p, struct request *r, CURLcode code)
{
    char reason[CURL_ERROR_SIZE + 64];
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (r->too_big) {
        snprintf(reason, sizeof(reason), "answer larger than %u bytes", BODY_MAX);
    } else if (code != CURLE_OK) {
        snprintf(reason, sizeof(reason), "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
    } else if (status != 200) {
        snprintf(reason, sizeof(reason), "HTTP status %ld", status);
    } else {
        struct err err = {0};
        if (share_poll_parse(r->body ? r->body : "", r->body_len, note_worst, p, &err) < 0)
            snprintf(reason, sizeof(reason), "%s", err.msg);
        else
            reason[0] = '\0';
    }
    peer_state(p, r->peer, reason[0] ? reason : NULL);
}

static void round_finish(struct share_poll *p)
{
    size_t n = p->worst.len, i = 0;
    struct share_health *v = xcalloc(n ? n : 1, sizeof(*v));
    const char *key;
    void *val;
    for (size_t it = 0; strmap_next(&p->worst, &it, &key, &val);) {
        v[i].metric = xstrdup(key);
        v[i].seconds_since_healthy = *(int64_t *)val;
        free(val);
        i++;
    }
    strmap_deinit(&p->worst);
    strmap_init(&p->worst);
    for (size_t j = 0; j < p->nreqs; j++)
        request_free(p->reqs[j]);
    free(p->reqs);
    p->reqs = NULL;
    p->nreqs = 0;
    share_poll_done_fn *fn = p->fn;
    p->fn = NULL;
    fn(v, i, p->arg);
    for (size_t j = 0; j < i; j++)
        free(v[j].metric);
    free(v);
}

static void check_done(struct share_poll *p)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(p->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        struct request *r = (struct request *)priv;
        CURLcode code = m->data.result;
        /* Done with the handle now, so curl drops its sockets from our polls. */
        curl_multi_remove_handle(p->multi, r->easy);
        request_done(p, r, code);
        curl_easy_cleanup(r->easy);
        r->easy = NULL;
        p->pending--;
    }
    if (p->fn != NULL && p->pending == 0)
        round_finish(p);
}

/* ---- public ---- */

struct share_poll *share_poll_new(struct loop *loop, uint32_t timeout_ms)
{
    struct share_poll *p = xcalloc(1, sizeof(*p));
    p->uv = loop_uv(loop);
    p->timeout_ms = timeout_ms;
    p->multi = curl_multi_init();
    if (p->multi == NULL) {
        free(p);
        return NULL;
    }
    p->timer = xcalloc(1, sizeof(*p->timer));
    uv_timer_init(p->uv, p->timer);
    p->timer->data = p;
    strmap_init(&p->worst);
    strmap_init(&p->failing);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
    return p;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct share_poll *p = h->data;
    free(h);
    free(p);
}

void share_poll_free(struct share_poll *p)
{
    if (p == NULL)
        return;
    p->fn = NULL;
    for (size_t j = 0; j < p->nreqs; j++)
        request_free(p->reqs[j]);
    free(p->reqs);
    curl_multi_cleanup(p->multi);
    const char *key;
    void *val;
    for (size_t it = 0; strmap_next(&p->worst, &it, &key, &val);)
        free(val);
    strmap_deinit(&p->worst);
    for (size_t it = 0; strmap_next(&p->failing, &it, &key, &val);)
        free(val);
    strmap_deinit(&p->failing);
    uv_timer_stop(p->timer);
    uv_close((uv_handle_t *)p->timer, on_timer_closed);
}

bool share_poll_is_busy(const struct share_poll *p)
{
    return p->fn != NULL;
}

/* Peers that left the ShareDomain need no memory of their failures. */
static void forget_gone_peers(struct share_poll *p, const char *const *service_ids, size_t n)
{
    const char *key;
    void *val;
    char **gone = NULL;
    size_t ngone = 0;
    for (size_t it = 0; strmap_next(&p->failing, &it, &key, &val);) {
        bool listed = false;
        for (size_t i = 0; i < n && !listed; i++)
            listed = strcmp(service_ids[i], key) == 0;
        if (listed)
            continue;
        gone = xrealloc(gone, (ngone + 1) * sizeof(*gone));
        gone[ngone++] = xstrdup(key);
    }
    for (size_t i = 0; i < ngone; i++) {
        free(strmap_del(&p->failing, gone[i]));
        free(gone[i]);
    }
    free(gone);
}

int share_poll_start(struct share_poll *p, const char *const *service_ids, size_t n,
                     share_poll_done_fn *fn, void *arg)
{
    if (p->fn != NULL)
        return -EBUSY;
    forget_gone_peers(p, service_ids, n);
    p->fn = fn;
    p->arg = arg;
    p->reqs = xcalloc(n ? n : 1, sizeof(struct request *));
    p->nreqs = 0;
    p->pending = 0;
    for (size_t i = 0; i < n; i++) {
        struct request *r = xcalloc(1, sizeof(*r));
        r->p = p;
        r->peer = xstrdup(service_ids[i]);
        r->easy = curl_easy_init();
        p->reqs[p->nreqs++] = r;
        if (r->easy == NULL) {
            peer_state(p, r->peer, "cannot create a curl handle");
            continue;
        }
        char *url = xasprintf("http://%s/metrics-health", service_ids[i]);
        curl_easy_setopt(r->easy, CURLOPT_URL, url);
        free(url);
        curl_easy_setopt(r->easy, CURLOPT_PRIVATE, (char *)r);
        curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
        curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
        curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)p->timeout_ms);
        curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http");
        if (curl_multi_add_handle(p->multi, r->easy) != CURLM_OK) {
            peer_state(p, r->peer, "cannot start the request");
            curl_easy_cleanup(r->easy);
            r->easy = NULL;
            continue;
        }
        p->pending++;
    }
    /* Even with nothing to wait for, the callback must not run inside this
     * call: let the timer deliver it. */
    if (p->pending == 0)
        uv_timer_start(p->timer, on_timeout, 0, 0);
    return 0;
}
