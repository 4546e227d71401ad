/* SPDX-License-Identifier: MIT */
/* The dashboard: its page, script and style as compiled in, the metric
 * history it charts (/metrics-history) and each cluster's metrics and hosts
 * (/cluster-metrics). Read-only. HTTP threads. */
#include "http/http_api_impl.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/jsonfmt.h"
#include "core/parse.h"
#include "http/dashboard.h"
#include "snapshot/history.h"
#include "snapshot/snapshot.h"

/* The page, its script and its style, as compiled in. */
void handle_dashboard(const struct api_call *c, struct http_resp *resp)
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

void handle_metrics_history(const struct api_call *c, struct http_resp *resp)
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

void handle_cluster_metrics(const struct api_call *c, struct http_resp *resp)
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
