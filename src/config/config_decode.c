/* SPDX-License-Identifier: MIT */
/* Decoding: JSON text onto the settings, walking the key table (config_keys.c)
 * for each member's path, type, bounds and field. Like Go's encoding/json,
 * each file is decoded onto what earlier files set, null leaves a scalar
 * unchanged, and a later file's cluster replaces the whole cluster. Main
 * thread. */
#include "config/config_load.h"

#include <assert.h>
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/redact.h"
#include "core/xalloc.h"

/* ---- typed access to the fields the table points at ---- */

void *config_key_field(const struct config_key *k, struct config *cfg,
                       struct config_cluster_raw *cr)
{
    assert(k->base != CONFIG_BASE_NONE);
    assert(k->base == CONFIG_BASE_CONFIG || cr != NULL);
    char *base = k->base == CONFIG_BASE_CONFIG ? (char *)cfg : (char *)cr;
    return base + k->offset;
}

static bool is_scalar(enum config_key_type t)
{
    return t == CONFIG_KEY_INT || t == CONFIG_KEY_PORT || t == CONFIG_KEY_DOUBLE ||
           t == CONFIG_KEY_BOOL;
}

/* Stores number @d into scalar field @f (a bool is true unless @d is 0). The
 * decoder has checked @d against the key's bounds. */
static void scalar_set(const struct config_key *k, void *f, double d)
{
    assert(is_scalar(k->type));
    if (k->type == CONFIG_KEY_INT)
        *(int64_t *)f = (int64_t)d;
    else if (k->type == CONFIG_KEY_PORT)
        *(uint16_t *)f = (uint16_t)d;
    else if (k->type == CONFIG_KEY_BOOL)
        *(bool *)f = d != 0;
    else
        *(double *)f = d;
}

/* Reads scalar field @f as a number; exact, since every value was decoded
 * from a JSON number held as a double. */
static double scalar_get(const struct config_key *k, const void *f)
{
    assert(is_scalar(k->type));
    if (k->type == CONFIG_KEY_INT)
        return (double)*(const int64_t *)f;
    if (k->type == CONFIG_KEY_PORT)
        return *(const uint16_t *)f;
    if (k->type == CONFIG_KEY_BOOL)
        return *(const bool *)f;
    return *(const double *)f;
}

void config_key_init(const struct config_key *k, void *f)
{
    if (k->type == CONFIG_KEY_STRING)
        *(char **)f = xstrdup(k->def_str ? k->def_str : "");
    else if (is_scalar(k->type))
        scalar_set(k, f, k->def_num);
}

void config_key_deinit(const struct config_key *k, void *f)
{
    if (k->type == CONFIG_KEY_STRING) {
        if (k->flags & CONFIG_KEY_SECRET)
            config_free_secret(*(char **)f);
        else
            free(*(char **)f);
        *(char **)f = NULL;
    } else if (k->type == CONFIG_KEY_STRV) {
        config_strv_clear(f);
    } else if (k->type == CONFIG_KEY_METRICS) {
        config_metrics_clear(f);
    } else if (k->type == CONFIG_KEY_TOKENS) {
        config_tokens_clear(f);
    }
}

bool config_key_is_zero(const struct config_key *k, const void *f)
{
    if (k->type == CONFIG_KEY_STRING)
        return *(char *const *)f == NULL || **(char *const *)f == '\0';
    if (k->type == CONFIG_KEY_STRV)
        return ((const struct config_strv *)f)->len == 0;
    if (k->type == CONFIG_KEY_METRICS)
        return ((const struct config_metrics *)f)->len == 0;
    if (k->type == CONFIG_KEY_TOKENS)
        return ((const struct config_tokens *)f)->len == 0;
    if (is_scalar(k->type))
        return scalar_get(k, f) == 0;
    return true;
}

void config_key_copy(const struct config_key *k, void *dst, const void *src)
{
    if (k->type == CONFIG_KEY_STRING) {
        free(*(char **)dst);
        *(char **)dst = xstrdup(*(char *const *)src);
    } else if (k->type == CONFIG_KEY_STRV) {
        config_strv_copy(dst, src);
    } else if (k->type == CONFIG_KEY_METRICS) {
        config_metrics_copy(dst, src);
    } else if (k->type == CONFIG_KEY_TOKENS) {
        config_tokens_copy(dst, src);
    } else if (is_scalar(k->type)) {
        scalar_set(k, dst, scalar_get(k, src));
    }
}

/* ---- messages about values ---- */

/* Describes a JSON value for "expected X, got Y": the value itself, or only
 * its kind when it may be a secret. */
static char *render(const json_t *v, bool secret)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return xstrdup("an object");
    case JSON_ARRAY:
        return xstrdup("an array");
    case JSON_TRUE:
        return xstrdup("true");
    case JSON_FALSE:
        return xstrdup("false");
    case JSON_NULL:
        return xstrdup("null");
    case JSON_INTEGER:
    case JSON_REAL:
        if (secret)
            return xstrdup("a number");
        return xasprintf("%.15g", json_number_value(v));
    case JSON_STRING:
        break;
    }
    if (secret)
        return xstrdup("a string");
    /* A URL or address in the wrong place may carry credentials. */
    char *masked = redact_address_dup(json_string_value(v));
    json_t *mv = json_string(masked);
    free(masked);
    char *q = mv != NULL ? json_dumps(mv, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
    json_decref(mv);
    if (q == NULL)
        return xstrdup("a string");
    char *out;
    if (strlen(q) > 60)
        out = xasprintf("%.56s...\"", q);
    else
        out = xstrdup(q);
    free(q);
    return out;
}

void config_type_error(struct config_loader *ld, const struct config_key *k, const json_t *v,
                       const char *path, const char *expected)
{
    char *got = render(v, k && (k->flags & CONFIG_KEY_SECRET));
    config_diag_error(ld, ld->file, "%s: expected %s, got %s", path, expected, got);
    free(got);
}

/* ---- values ---- */

static void decode_number(struct config_loader *ld, const struct config_key *k, const json_t *v,
                          void *f, const char *path)
{
    bool integer = k->type != CONFIG_KEY_DOUBLE;
    const char *expected = integer ? "an integer" : "a number";

    if (!json_is_number(v)) {
        config_type_error(ld, k, v, path, expected);
        return;
    }
    double d = json_number_value(v);
    if (integer && d != floor(d)) {
        config_type_error(ld, k, v, path, expected);
        return;
    }
    if (d < k->min || d > k->max) {
        if (k->max == DBL_MAX)
            config_diag_error(ld, ld->file, "%s: expected a number >= %g, got %.15g", path, k->min,
                              d);
        else
            config_diag_error(ld, ld->file, "%s: expected %.15g..%.15g, got %.15g", path, k->min,
                              k->max, d);
        return;
    }
    scalar_set(k, f, d);
}

static void decode_strv(struct config_loader *ld, const struct config_key *k, json_t *v,
                        struct config_strv *f, const char *path)
{
    if (!json_is_array(v)) {
        config_type_error(ld, k, v, path, "an array of strings");
        return;
    }
    struct config_strv tmp = {0};
    bool ok = true;
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_string(e)) {
            char *got = render(e, false);
            config_diag_error(ld, ld->file, "%s[%zu]: expected a string, got %s", path, i, got);
            free(got);
            ok = false;
            continue;
        }
        config_strv_push(&tmp, xstrdup(json_string_value(e)));
    }
    if (ok) {
        config_strv_clear(f);
        *f = tmp;
    } else {
        config_strv_clear(&tmp);
    }
}

void config_decode_value(struct config_loader *ld, const struct config_key *k, json_t *v, void *f,
                         const char *path)
{
    if (k->type == CONFIG_KEY_STRV) {
        decode_strv(ld, k, v, f, path);
    } else if (k->type == CONFIG_KEY_STRING) {
        if (!json_is_string(v)) {
            config_type_error(ld, k, v, path, "a string");
            return;
        }
        config_key_deinit(k, f);
        *(char **)f = xstrdup(json_string_value(v));
    } else if (k->type == CONFIG_KEY_BOOL) {
        if (!json_is_boolean(v))
            config_type_error(ld, k, v, path, "true or false");
        else
            scalar_set(k, f, json_is_true(v));
    } else {
        assert(is_scalar(k->type));
        decode_number(ld, k, v, f, path);
    }
}

/* ---- clusters ---- */

static struct config_cluster_raw *cluster_raw_new(struct config_loader *ld, const char *name)
{
    struct config_cluster_raw *cr = xcalloc(1, sizeof(*cr));
    cr->c.name = xstrdup(name);
    cr->file = ld->file;
    for (size_t i = 0; i < ld->keys_len; i++) {
        if (ld->keys[i].base == CONFIG_BASE_CLUSTER)
            config_key_init(&ld->keys[i], config_key_field(&ld->keys[i], NULL, cr));
    }
    cr->haproxy_host = cr->haproxy_host ? cr->haproxy_host : xstrdup("");
    cr->haproxy_addresses = cr->haproxy_addresses ? cr->haproxy_addresses : xstrdup("");
    return cr;
}

static void cluster_raw_free(struct config_cluster_raw *cr)
{
    config_cluster_deinit(&cr->c);
    free(cr->haproxy_host);
    free(cr->haproxy_addresses);
    config_strv_clear(&cr->static_hosts);
    free(cr);
}

void config_loader_clear_clusters(struct config_loader *ld)
{
    for (size_t i = 0; i < ld->clusters_len; i++)
        cluster_raw_free(ld->clusters[i]);
    ld->clusters_len = 0;
}

/* A later file's entry replaces the whole cluster, as decoding into a Go map
 * of pointers does; other clusters are kept. */
static void loader_put_cluster(struct config_loader *ld, struct config_cluster_raw *cr)
{
    for (size_t i = 0; i < ld->clusters_len; i++) {
        if (strcmp(ld->clusters[i]->c.name, cr->c.name) == 0) {
            cluster_raw_free(ld->clusters[i]);
            ld->clusters[i] = cr;
            return;
        }
    }
    if (ld->clusters_len == ld->clusters_size) {
        ld->clusters_size = ld->clusters_size ? ld->clusters_size * 2 : 8;
        ld->clusters =
                xrealloc(ld->clusters, ld->clusters_size * sizeof(struct config_cluster_raw *));
    }
    ld->clusters[ld->clusters_len++] = cr;
}

/* ---- objects ---- */

static void decode_object(struct config_loader *ld, json_t *obj, const char *tpath,
                          const char *dpath, struct config_cluster_raw *cr);

/* Recursion is bounded: only objects listed in the key table are entered, so
 * the depth is at most six whatever the input. */
// NOLINTNEXTLINE(misc-no-recursion)
static void decode_clusters(struct config_loader *ld, json_t *v, const char *path)
{
    if (!json_is_object(v)) {
        config_type_error(ld, NULL, v, path, "an object");
        return;
    }
    const char *name;
    json_t *cv;
    json_object_foreach(v, name, cv)
    {
        char *cname = config_clean(name);
        char *cpath = xasprintf("%s.%s", path, cname);
        if (json_is_object(cv)) {
            struct config_cluster_raw *cr = cluster_raw_new(ld, name);
            decode_object(ld, cv, CONFIG_CLUSTERS_PATH ".*", cpath, cr);
            loader_put_cluster(ld, cr);
        } else {
            config_type_error(ld, NULL, cv, cpath, "an object");
        }
        free(cpath);
        free(cname);
    }
}

static char *join_path(const char *parent, const char *leaf)
{
    return parent[0] ? xasprintf("%s.%s", parent, leaf) : xstrdup(leaf);
}

const struct config_key *config_member_key(struct config_loader *ld, const char *tpath,
                                           const char *dpath, const char *name, char **path)
{
    bool exact;
    const struct config_key *k = config_key_find(tpath, name, &exact);
    char *cname = config_clean(name);

    if (k == NULL) {
        char *shown = join_path(dpath, cname);
        config_diag_warn(ld, ld->file, "%s: unknown key", shown);
        free(shown);
    } else {
        *path = join_path(dpath, config_key_leaf(k));
        if (!exact)
            config_diag_warn(ld, ld->file, "%s: written as \"%s\"; matched ignoring case", *path,
                             cname);
    }
    free(cname);
    return k;
}

/* A JSON null, as Go's decoder takes it: a slice or a map (Metrics too)
 * becomes nil (empty), a struct or a scalar keeps its value. */
static void decode_null(struct config_loader *ld, const struct config_key *k,
                        struct config_cluster_raw *cr)
{
    if (k->type == CONFIG_KEY_CLUSTERS)
        config_loader_clear_clusters(ld);
    else if (k->type == CONFIG_KEY_STRV)
        config_strv_clear(config_key_field(k, ld->cfg, cr));
    else if (k->type == CONFIG_KEY_METRICS)
        config_metrics_clear(config_key_field(k, ld->cfg, cr));
    else if (k->type == CONFIG_KEY_TOKENS)
        config_tokens_clear(config_key_field(k, ld->cfg, cr));
}

/* Decodes the members of @obj, which sits at table path @tpath and is shown
 * as @dpath; @cr is the cluster being decoded, if any. Recursion: see above. */
// NOLINTNEXTLINE(misc-no-recursion)
static void decode_object(struct config_loader *ld, json_t *obj, const char *tpath,
                          const char *dpath, struct config_cluster_raw *cr)
{
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v)
    {
        char *path = NULL;
        const struct config_key *k = config_member_key(ld, tpath, dpath, name, &path);
        if (k == NULL)
            continue;
        if (json_is_null(v))
            decode_null(ld, k, cr);
        else if (k->type == CONFIG_KEY_OBJECT && json_is_object(v))
            decode_object(ld, v, k->name, path, cr);
        else if (k->type == CONFIG_KEY_OBJECT)
            config_type_error(ld, k, v, path, "an object");
        else if (k->type == CONFIG_KEY_CLUSTERS)
            decode_clusters(ld, v, path);
        else if (k->type == CONFIG_KEY_METRICS)
            config_metrics_decode(ld, v, path, config_key_field(k, ld->cfg, cr));
        else if (k->type == CONFIG_KEY_TOKENS)
            config_tokens_decode(ld, k, v, path, config_key_field(k, ld->cfg, cr));
        else
            config_decode_value(ld, k, v, config_key_field(k, ld->cfg, cr), path);
        if (k->base == CONFIG_BASE_CONFIG)
            ld->origin[k - ld->keys] = ld->file;
        free(path);
    }
}

/* ---- text ---- */

/* Returns the 1-based line and column of byte @pos of @text. */
static void text_position(const char *text, size_t pos, int *line, int *column)
{
    *line = 1;
    *column = 1;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *column = 1;
        } else {
            (*column)++;
        }
    }
}

/* Go's json.Decoder reads the first value and ignores what follows, so
 * trailing text is a warning, not an error. */
static void warn_trailing(struct config_loader *ld, const char *text, size_t len, size_t pos,
                          const char *label)
{
    while (pos < len && isspace((unsigned char)text[pos]))
        pos++;
    if (pos < len) {
        int line, column;
        text_position(text, pos, &line, &column);
        config_diag_warn(ld, label, "line %d column %d: ignoring text after the JSON object", line,
                         column);
    }
}

void config_decode_text(struct config_loader *ld, const char *text, size_t len, const char *label)
{
    json_error_t je;

    ld->file = label;
    /* Numbers all become reals so that an integer key may be written 3.0 and
     * huge values fail our range checks rather than the parser. */
    json_t *root = json_loadb(text, len, JSON_DISABLE_EOF_CHECK | JSON_DECODE_INT_AS_REAL, &je);
    if (root == NULL) {
        /* jansson quotes the text at the error ("near '...'"): that may be a
         * secret, on its key's line or on one of its own, so the position
         * alone is given. */
        char *near = strstr(je.text, " near '");
        if (near != NULL)
            *near = '\0';
        config_diag_error(ld, label, "line %d column %d: %s", je.line, je.column, je.text);
        ld->unparsed = true;
        return;
    }
    warn_trailing(ld, text, len, je.position > 0 ? (size_t)je.position : 0, label);
    if (json_is_object(root)) {
        decode_object(ld, root, "", "", NULL);
    } else {
        char *got = render(root, false);
        config_diag_error(ld, label, "expected a JSON object at the top level, got %s", got);
        free(got);
        ld->unparsed = true;
    }
    json_decref(root);
}
