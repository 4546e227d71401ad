/* SPDX-License-Identifier: MIT */
/* ShareDomain rounds over the shared asynchronous HTTP client (httpc): one
 * GET per peer, all in parallel, the worst value per metric kept until the
 * last answer. Loop thread only. Peer failures are logged once per change of
 * state, not once a second. */
#include "leader/share_poll.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <jansson.h>

#include "core/err.h"
#include "core/redact.h"
#include "core/strmap.h"
#include "core/xalloc.h"
#include "httpc/httpc.h"
#include "log/log.h"
#include "loop/loop_timer.h"

/* A /metrics-health body is a few hundred bytes per cluster. */
#define BODY_MAX (1u << 20)

struct request {
    struct share_poll *p;
    struct httpc_req *req; /* NULL once answered */
    char *peer;
};

struct share_poll {
    struct httpc *http;
    uv_timer_t *timer;
    uint32_t timeout_ms;
    struct request **reqs; /* of the round in flight */
    size_t nreqs;
    size_t pending;
    struct strmap worst;   /* metric -> int64_t * during a round */
    struct strmap failing; /* peer -> char * (reason) while it fails */
    share_poll_done_fn *fn;
    void *arg;
};

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

static void round_finish(struct share_poll *p);

static void request_free(struct request *r)
{
    if (r == NULL)
        return;
    httpc_cancel(r->req);
    free(r->peer);
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

static void check_done(struct share_poll *p)
{
    if (p->fn != NULL && p->pending == 0)
        round_finish(p);
}

static void on_reply(const struct httpc_result *res, void *arg)
{
    struct request *r = arg;
    struct share_poll *p = r->p;
    char reason[300];
    r->req = NULL;
    if (res->code < 0) {
        redact_text(res->msg, reason, sizeof(reason));
    } else if (res->status != 200) {
        snprintf(reason, sizeof(reason), "HTTP status %ld", res->status);
    } else {
        struct err err = {0};
        if (share_poll_parse(res->body, res->len, note_worst, p, &err) < 0)
            snprintf(reason, sizeof(reason), "%s", err.msg);
        else
            reason[0] = '\0';
    }
    peer_state(p, r->peer, reason[0] ? reason : NULL);
    p->pending--;
    check_done(p);
}

static void on_timeout(uv_timer_t *t)
{
    check_done(t->data);
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

/* ---- public ---- */

struct share_poll *share_poll_new(struct loop *loop, uint32_t timeout_ms, struct err *err)
{
    struct httpc *http = httpc_new(loop, err);
    if (http == NULL) {
        err_prefix(err, "leader: ShareDomain");
        return NULL;
    }
    struct share_poll *p = xcalloc(1, sizeof(*p));
    p->http = http;
    p->timeout_ms = timeout_ms;
    p->timer = loop_timer_new(loop, p);
    strmap_init(&p->worst);
    strmap_init(&p->failing);
    return p;
}

void share_poll_free(struct share_poll *p)
{
    if (p == NULL)
        return;
    p->fn = NULL;
    for (size_t j = 0; j < p->nreqs; j++)
        request_free(p->reqs[j]);
    free(p->reqs);
    httpc_free(p->http);
    strmap_deinit_values(&p->worst, free);
    strmap_deinit_values(&p->failing, free);
    /* Closed, the timer calls nothing back, so @p can go at once. */
    loop_timer_close(&p->timer);
    free(p);
}

bool share_poll_is_busy(const struct share_poll *p)
{
    return p->fn != NULL;
}

struct peer_list {
    const char *const *service_ids;
    size_t n;
};

static bool is_gone(const char *key, void *value, void *arg)
{
    (void)value;
    const struct peer_list *l = arg;
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->service_ids[i], key) == 0)
            return false;
    return true;
}

/* Peers that left the ShareDomain need no memory of their failures. */
static void forget_gone_peers(struct share_poll *p, const char *const *service_ids, size_t n)
{
    struct peer_list l = {service_ids, n};
    strmap_delete_if(&p->failing, is_gone, &l, free);
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
        p->reqs[p->nreqs++] = r;
        char *url = xasprintf("http://%s/metrics-health", service_ids[i]);
        struct err err = {0};
        r->req = httpc_get(p->http, url, p->timeout_ms, BODY_MAX, on_reply, r, &err);
        free(url);
        if (r->req == NULL) {
            peer_state(p, r->peer, err.msg);
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
