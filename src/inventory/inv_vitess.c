/* SPDX-License-Identifier: MIT */
/* Vitess host source: URL building, the tablet list parser (jansson) and one
 * GET per refresh. Loop thread; a refresh lives until its answer came. */
#include "inventory/inv_vitess.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "config/config.h"
#include "core/err.h"
#include "core/redact.h"
#include "core/xalloc.h"
#include "httpc/httpc.h"

#define TABLET_TYPE_REPLICA  2 /* topodata.TabletType REPLICA */
#define DEFAULT_TIMEOUT_SECS 5
#define MAX_BODY             ((size_t)64 * 1024 * 1024)

static bool blank(const char *s)
{
    return s[strspn(s, " \t\r\n")] == '\0';
}

/* Compares @cell with @want ignoring spaces around @want. */
static bool cell_is(const char *cell, const char *want)
{
    want += strspn(want, " \t");
    size_t n = strlen(want);
    while (n > 0 && (want[n - 1] == ' ' || want[n - 1] == '\t'))
        n--;
    return strlen(cell) == n && strncmp(cell, want, n) == 0;
}

static bool cell_ok(const json_t *tablet, const struct config_strv *cells)
{
    bool any = false;
    for (size_t i = 0; cells != NULL && i < cells->len; i++)
        any = any || !blank(cells->v[i]);
    if (!any)
        return true;
    const char *cell = json_string_value(json_object_get(json_object_get(tablet, "alias"), "cell"));
    if (cell == NULL)
        return false;
    for (size_t i = 0; i < cells->len; i++)
        if (!blank(cells->v[i]) && cell_is(cell, cells->v[i]))
            return true;
    return false;
}

static bool is_replica(const json_t *tablet)
{
    const json_t *type = json_object_get(tablet, "type");
    if (json_is_integer(type))
        return json_integer_value(type) == TABLET_TYPE_REPLICA;
    return json_is_string(type) && strcasecmp(json_string_value(type), "REPLICA") == 0;
}

/* As vtgate would judge it, minus lag and serving: no stats means realtime
 * stats are off and the tablet counts as healthy. */
static bool is_serveable(const json_t *tablet)
{
    const json_t *stats = json_object_get(tablet, "stats");
    if (stats == NULL || json_is_null(stats))
        return true;
    if (!json_is_object(stats))
        return false;
    const json_t *last_error = json_object_get(stats, "last_error");
    if (last_error != NULL && !json_is_null(last_error) &&
        (!json_is_string(last_error) || json_string_length(last_error) > 0))
        return false;
    const json_t *realtime = json_object_get(stats, "realtime");
    return realtime != NULL && !json_is_null(realtime);
}

int inv_vitess_parse(const char *json, size_t len, const struct config_strv *cells,
                     struct inv_hosts *out, struct err *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
    if (root == NULL)
        return err_set(err, -EINVAL, "tablets: invalid JSON at line %d column %d: %s", jerr.line,
                       jerr.column, jerr.text);
    if (!json_is_array(root)) {
        json_decref(root);
        return err_set(err, -EINVAL, "tablets: expected a JSON array of tablets");
    }
    size_t i;
    json_t *t;
    json_array_foreach(root, i, t)
    {
        if (!json_is_object(t) || !is_replica(t) || !cell_ok(t, cells) || !is_serveable(t))
            continue;
        const char *host = json_string_value(json_object_get(t, "mysql_hostname"));
        const json_t *port = json_object_get(t, "mysql_port");
        if (host == NULL || host[0] == '\0' || strcmp(host, "_") == 0 || !json_is_integer(port))
            continue;
        json_int_t p = json_integer_value(port);
        if (p < 1 || p > 65535)
            continue;
        inv_hosts_add(out, host, (uint16_t)p);
    }
    json_decref(root);
    return 0;
}

char *inv_vitess_url(const struct config_cluster *cc)
{
    size_t n = strlen(cc->vitess_api);
    while (n > 0 && cc->vitess_api[n - 1] == '/')
        n--;
    bool has_api = n >= 4 && strncmp(cc->vitess_api + n - 4, "/api", 4) == 0;
    char *ks = httpc_escape(cc->vitess_keyspace);
    char *shard = httpc_escape(cc->vitess_shard);
    char *cells = xstrdup("");
    for (size_t i = 0; i < cc->vitess_cells.len; i++) {
        if (blank(cc->vitess_cells.v[i]))
            continue;
        char *c = xstrndup(cc->vitess_cells.v[i] + strspn(cc->vitess_cells.v[i], " \t"),
                           strlen(cc->vitess_cells.v[i]));
        size_t cl = strlen(c);
        while (cl > 0 && (c[cl - 1] == ' ' || c[cl - 1] == '\t'))
            c[--cl] = '\0';
        char *e = httpc_escape(c);
        char *next = xasprintf("%s%s%s", cells, cells[0] ? "%2C" : "?cells=", e);
        free(cells);
        free(e);
        free(c);
        cells = next;
    }
    char *url = xasprintf("%.*s%s/keyspace/%s/tablets/%s%s", (int)n, cc->vitess_api,
                          has_api ? "" : "/api", ks, shard, cells);
    free(ks);
    free(shard);
    free(cells);
    return url;
}

struct vt_refresh {
    struct inv_vitess *v;
    const struct config_cluster *cc;
    inv_source_done_fn *done;
    void *arg;
    char *shown; /* the URL with its credentials masked, for every message */
    struct httpc_req *req;
    struct vt_refresh *prev;
    struct vt_refresh *next;
};

struct inv_vitess {
    struct httpc *http;
    struct vt_refresh *refreshes;
};

struct inv_vitess *inv_vitess_new(struct httpc *http)
{
    struct inv_vitess *v = xcalloc(1, sizeof(*v));
    v->http = http;
    return v;
}

static void refresh_unlink_free(struct vt_refresh *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        r->v->refreshes = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    free(r->shown);
    free(r);
}

void inv_vitess_free(struct inv_vitess *v)
{
    if (v == NULL)
        return;
    for (struct vt_refresh *r = v->refreshes, *next; r != NULL; r = next) {
        next = r->next;
        httpc_cancel(r->req);
        refresh_unlink_free(r);
    }
    free(v);
}

static void on_tablets(const struct httpc_result *res, void *arg)
{
    struct vt_refresh *r = arg;
    struct err err = {0};
    struct inv_hosts hosts = {0};
    if (res->code < 0)
        err_set(&err, res->code, "vitess GET %s: %s", r->shown, res->msg);
    else if (res->status != 200)
        err_set(&err, -EIO, "vitess GET %s: HTTP status %ld", r->shown, res->status);
    else if (inv_vitess_parse(res->body, res->len, &r->cc->vitess_cells, &hosts, &err) < 0)
        err_prefix(&err, "vitess %s", r->shown);
    if (err.code < 0)
        r->done(r->arg, NULL, &err);
    else
        r->done(r->arg, &hosts, NULL);
    inv_hosts_deinit(&hosts);
    refresh_unlink_free(r);
}

void inv_vitess_refresh(struct inv_vitess *v, const struct config_cluster *cc,
                        inv_source_done_fn *done, void *arg)
{
    struct vt_refresh *r = xcalloc(1, sizeof(*r));
    r->v = v;
    r->cc = cc;
    r->done = done;
    r->arg = arg;
    char *url = inv_vitess_url(cc);
    r->shown = redact_text_dup(url);
    r->next = v->refreshes;
    if (v->refreshes != NULL)
        v->refreshes->prev = r;
    v->refreshes = r;
    int64_t secs = cc->vitess_timeout_secs > 0 ? cc->vitess_timeout_secs : DEFAULT_TIMEOUT_SECS;
    if (secs > 3600)
        secs = 3600;
    struct err err = {0};
    r->req = httpc_get(v->http, url, (uint32_t)(secs * 1000), MAX_BODY, on_tablets, r, &err);
    free(url); /* curl keeps its own copy */
    if (r->req == NULL) {
        done(arg, NULL, &err);
        refresh_unlink_free(r);
    }
}
