/* SPDX-License-Identifier: MIT */
/* Configuration loading. Like Go's encoding/json, each file is decoded in turn
 * onto the same settings, so later files override earlier keys; ${NAME}
 * expansion, Stores.MySQL inheritance and validation then run once on the
 * result. Every problem goes into a config_diag. Main thread; a returned
 * struct config is never modified. */
#include "config/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "config/config_keys.h"
#include "core/redact.h"
#include "core/xalloc.h"

/* Real configs are a few KB; this only stops a wrong path from eating memory. */
#define CONFIG_FILE_MAX (16u << 20)

#define CLUSTERS_PATH "Stores.MySQL.Clusters"

struct loader {
    struct config *cfg;
    struct config_cluster_raw **clusters;
    size_t clusters_len;
    size_t clusters_size;
    const struct config_key *keys;
    size_t keys_len;
    const char **origin; /* per key index: label of the file that last set it */
    const char *file;    /* label of the file being decoded */
    bool unparsed;       /* some file could not be parsed: skip cross-key checks */
    size_t errors_at_start;
    struct config_diag *diag;
};

static const char *const source_names[] = {
        [CONFIG_SOURCE_NONE] = "none",
        [CONFIG_SOURCE_STATIC] = "StaticHostsSettings",
        [CONFIG_SOURCE_HAPROXY] = "HAProxySettings",
        [CONFIG_SOURCE_PROXYSQL] = "ProxySQLSettings",
        [CONFIG_SOURCE_VITESS] = "VitessSettings",
};

/* ---- small helpers ---- */

struct buf {
    char *p;
    size_t len;
    size_t size;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->size) {
        b->size = (b->len + n + 1) * 2;
        b->p = xrealloc(b->p, b->size);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Returns the buffer's text, "" if nothing was added; the buffer is emptied. */
static char *buf_take(struct buf *b)
{
    char *s = b->p ? b->p : xstrdup("");
    *b = (struct buf){0};
    return s;
}

__attribute__((format(printf, 1, 0))) static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    assert(n >= 0);
    char *s = xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

/* Copies user text (a key, a cluster name, an address) for a message: one
 * line, at most 64 bytes, control bytes shown as '?', credentials masked
 * (user:password@ in an address or URL). */
static char *clean(const char *text)
{
    char *s = redact_address_dup(text);
    size_t n = strnlen(s, 65);
    char *out = xstrndup(s, n > 64 ? 61 : n);
    free(s);
    for (char *p = out; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
    if (n > 64) {
        char *longer = xasprintf("%s...", out);
        free(out);
        out = longer;
    }
    return out;
}

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

static void free_secret(char *s)
{
    if (s != NULL)
        explicit_bzero(s, strlen(s));
    free(s);
}

static void strv_clear(struct config_strv *sv)
{
    for (size_t i = 0; i < sv->len; i++)
        free(sv->v[i]);
    free(sv->v);
    sv->v = NULL;
    sv->len = 0;
}

/* Appends @s, taking ownership of it. */
static void strv_push(struct config_strv *sv, char *s)
{
    sv->v = xrealloc(sv->v, (sv->len + 1) * sizeof(*sv->v));
    sv->v[sv->len++] = s;
}

static void strv_copy(struct config_strv *dst, const struct config_strv *src)
{
    strv_clear(dst);
    for (size_t i = 0; i < src->len; i++)
        strv_push(dst, xstrdup(src->v[i]));
}

/* ---- diagnostics ---- */

static void diag_push(char ***v, size_t *len, char *msg)
{
    *v = xrealloc(*v, (*len + 1) * sizeof(**v));
    (*v)[(*len)++] = msg;
}

/* Adds "config <file>: <text>" (or "config: <text>" without a file). */
__attribute__((format(printf, 4, 5))) static void diag_add(struct loader *ld, bool error,
                                                           const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *body = vformat(fmt, ap);
    va_end(ap);
    char *msg = file ? xasprintf("config %s: %s", file, body) : xasprintf("config: %s", body);
    free(body);
    if (error)
        diag_push(&ld->diag->errors, &ld->diag->errors_len, msg);
    else
        diag_push(&ld->diag->warnings, &ld->diag->warnings_len, msg);
}

#define diag_error(ld, file, ...) diag_add((ld), true, (file), __VA_ARGS__)
#define diag_warn(ld, file, ...)  diag_add((ld), false, (file), __VA_ARGS__)

void config_diag_deinit(struct config_diag *d)
{
    for (size_t i = 0; i < d->errors_len; i++)
        free(d->errors[i]);
    for (size_t i = 0; i < d->warnings_len; i++)
        free(d->warnings[i]);
    free(d->errors);
    free(d->warnings);
    *d = (struct config_diag){0};
}

static void type_error(struct loader *ld, const struct config_key *k, const json_t *v,
                       const char *path, const char *expected)
{
    char *got = render(v, k && (k->flags & CONFIG_KEY_SECRET));
    diag_error(ld, ld->file, "%s: expected %s, got %s", path, expected, got);
    free(got);
}

/* ---- typed access to the fields the table points at ---- */

static void *key_field(const struct config_key *k, struct config *cfg,
                       struct config_cluster_raw *cr)
{
    assert(k->base != CONFIG_BASE_NONE);
    assert(k->base == CONFIG_BASE_CONFIG || cr != NULL);
    char *base = k->base == CONFIG_BASE_CONFIG ? (char *)cfg : (char *)cr;
    return base + k->offset;
}

/* Sets the field to its default; strings are assumed unset (NULL). */
static void key_init(const struct config_key *k, void *f)
{
    switch (k->type) {
    case CONFIG_KEY_STRING:
        *(char **)f = xstrdup(k->def_str ? k->def_str : "");
        break;
    case CONFIG_KEY_INT:
        *(int64_t *)f = (int64_t)k->def_num;
        break;
    case CONFIG_KEY_PORT:
        *(uint16_t *)f = (uint16_t)k->def_num;
        break;
    case CONFIG_KEY_DOUBLE:
        *(double *)f = k->def_num;
        break;
    case CONFIG_KEY_BOOL:
        *(bool *)f = k->def_num != 0;
        break;
    case CONFIG_KEY_STRV:
    case CONFIG_KEY_OBJECT:
    case CONFIG_KEY_CLUSTERS:
        break;
    }
}

/* Go's zero value: what "left empty" means for inheritance and defaults. */
static bool key_is_zero(const struct config_key *k, const void *f)
{
    switch (k->type) {
    case CONFIG_KEY_STRING:
        return *(char *const *)f == NULL || **(char *const *)f == '\0';
    case CONFIG_KEY_INT:
        return *(const int64_t *)f == 0;
    case CONFIG_KEY_PORT:
        return *(const uint16_t *)f == 0;
    case CONFIG_KEY_DOUBLE:
        return *(const double *)f == 0;
    case CONFIG_KEY_BOOL:
        return !*(const bool *)f;
    case CONFIG_KEY_STRV:
        return ((const struct config_strv *)f)->len == 0;
    case CONFIG_KEY_OBJECT:
    case CONFIG_KEY_CLUSTERS:
        break;
    }
    return true;
}

static void key_copy(const struct config_key *k, void *dst, const void *src)
{
    switch (k->type) {
    case CONFIG_KEY_STRING:
        free(*(char **)dst);
        *(char **)dst = xstrdup(*(char *const *)src);
        break;
    case CONFIG_KEY_INT:
        *(int64_t *)dst = *(const int64_t *)src;
        break;
    case CONFIG_KEY_PORT:
        *(uint16_t *)dst = *(const uint16_t *)src;
        break;
    case CONFIG_KEY_DOUBLE:
        *(double *)dst = *(const double *)src;
        break;
    case CONFIG_KEY_BOOL:
        *(bool *)dst = *(const bool *)src;
        break;
    case CONFIG_KEY_STRV:
        strv_copy(dst, src);
        break;
    case CONFIG_KEY_OBJECT:
    case CONFIG_KEY_CLUSTERS:
        break;
    }
}

/* ---- freeing ---- */

static void cluster_deinit(struct config_cluster *c)
{
    free(c->name);
    free(c->user);
    free_secret(c->password);
    free(c->collation);
    free(c->metric_query);
    free(c->http_check_path);
    strv_clear(&c->ignore_hosts);
    for (size_t i = 0; i < c->static_hosts_len; i++)
        free(c->static_hosts[i].host);
    free(c->static_hosts);
    strv_clear(&c->haproxy_addresses);
    free(c->haproxy_pool);
    strv_clear(&c->proxysql_addresses);
    free(c->proxysql_user);
    free_secret(c->proxysql_password);
    free(c->vitess_api);
    free(c->vitess_keyspace);
    free(c->vitess_shard);
    strv_clear(&c->vitess_cells);
    *c = (struct config_cluster){0};
}

/* Frees the raw-only members; the embedded cluster is left alone. */
static void cluster_raw_free_extras(struct config_cluster_raw *cr)
{
    free(cr->haproxy_host);
    free(cr->haproxy_addresses);
    strv_clear(&cr->static_hosts);
}

static void cluster_raw_free(struct config_cluster_raw *cr)
{
    if (cr == NULL)
        return;
    cluster_deinit(&cr->c);
    cluster_raw_free_extras(cr);
    free(cr);
}

void config_free(struct config *c)
{
    if (c == NULL)
        return;
    free(c->data_center);
    free(c->environment);
    free(c->domain);
    free(c->share_domain);
    free(c->raft_bind);
    free(c->raft_data_dir);
    strv_clear(&c->raft_nodes);
    free(c->backend_host);
    free(c->backend_schema);
    free(c->backend_user);
    free_secret(c->backend_password);
    free(c->backend_collation);
    strv_clear(&c->memcache_servers);
    free(c->memcache_path);
    free_secret(c->control_token);
    cluster_deinit(&c->mysql_defaults);
    for (size_t i = 0; i < c->clusters_len; i++)
        cluster_deinit(&c->clusters[i]);
    free(c->clusters);
    free(c);
}

/* Gives every string member of @c that is still NULL the value "", so readers
 * never test for NULL. */
static void cluster_fill_strings(struct config_cluster *c)
{
    char **all[] = {&c->name,
                    &c->user,
                    &c->password,
                    &c->collation,
                    &c->metric_query,
                    &c->http_check_path,
                    &c->haproxy_pool,
                    &c->proxysql_user,
                    &c->proxysql_password,
                    &c->vitess_api,
                    &c->vitess_keyspace,
                    &c->vitess_shard};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (*all[i] == NULL)
            *all[i] = xstrdup("");
    }
}

/* ---- decoding ---- */

static void loader_init(struct loader *ld, struct config_diag *diag)
{
    *ld = (struct loader){.diag = diag, .errors_at_start = diag->errors_len};
    ld->keys = config_keys_table(&ld->keys_len);
    ld->origin = xcalloc(ld->keys_len, sizeof(*ld->origin));
    ld->cfg = xcalloc(1, sizeof(*ld->cfg));
    for (size_t i = 0; i < ld->keys_len; i++) {
        if (ld->keys[i].base == CONFIG_BASE_CONFIG)
            key_init(&ld->keys[i], key_field(&ld->keys[i], ld->cfg, NULL));
    }
}

static void loader_clear_clusters(struct loader *ld)
{
    for (size_t i = 0; i < ld->clusters_len; i++)
        cluster_raw_free(ld->clusters[i]);
    ld->clusters_len = 0;
}

static void loader_deinit(struct loader *ld)
{
    loader_clear_clusters(ld);
    free(ld->clusters);
    free(ld->origin);
    config_free(ld->cfg);
    *ld = (struct loader){0};
}

static char *join_path(const char *parent, const char *leaf)
{
    return parent[0] ? xasprintf("%s.%s", parent, leaf) : xstrdup(leaf);
}

static void decode_number(struct loader *ld, const struct config_key *k, const json_t *v, void *f,
                          const char *path)
{
    bool integer = k->type != CONFIG_KEY_DOUBLE;
    const char *expected = integer ? "an integer" : "a number";

    if (!json_is_number(v)) {
        type_error(ld, k, v, path, expected);
        return;
    }
    double d = json_number_value(v);
    if (integer && d != floor(d)) {
        type_error(ld, k, v, path, expected);
        return;
    }
    if (d < k->min || d > k->max) {
        if (k->max == DBL_MAX)
            diag_error(ld, ld->file, "%s: expected a number >= %g, got %.15g", path, k->min, d);
        else
            diag_error(ld, ld->file, "%s: expected %.15g..%.15g, got %.15g", path, k->min, k->max,
                       d);
        return;
    }
    if (k->type == CONFIG_KEY_INT)
        *(int64_t *)f = (int64_t)d;
    else if (k->type == CONFIG_KEY_PORT)
        *(uint16_t *)f = (uint16_t)d;
    else
        *(double *)f = d;
}

static void decode_strv(struct loader *ld, const struct config_key *k, json_t *v,
                        struct config_strv *f, const char *path)
{
    if (json_is_null(v)) {
        /* Go sets a slice to nil on null. */
        strv_clear(f);
        return;
    }
    if (!json_is_array(v)) {
        type_error(ld, k, v, path, "an array of strings");
        return;
    }
    struct config_strv tmp = {0};
    bool ok = true;
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_string(e)) {
            char *got = render(e, false);
            diag_error(ld, ld->file, "%s[%zu]: expected a string, got %s", path, i, got);
            free(got);
            ok = false;
            continue;
        }
        strv_push(&tmp, xstrdup(json_string_value(e)));
    }
    if (ok) {
        strv_clear(f);
        *f = tmp;
    } else {
        strv_clear(&tmp);
    }
}

/* Stores one scalar or array value. A JSON null leaves scalars unchanged and
 * empties arrays, as Go's decoder does. */
static void decode_value(struct loader *ld, const struct config_key *k, json_t *v, void *f,
                         const char *path)
{
    switch (k->type) {
    case CONFIG_KEY_STRING:
        if (json_is_null(v))
            return;
        if (!json_is_string(v)) {
            type_error(ld, k, v, path, "a string");
            return;
        }
        if (k->flags & CONFIG_KEY_SECRET)
            free_secret(*(char **)f);
        else
            free(*(char **)f);
        *(char **)f = xstrdup(json_string_value(v));
        return;
    case CONFIG_KEY_INT:
    case CONFIG_KEY_PORT:
    case CONFIG_KEY_DOUBLE:
        if (!json_is_null(v))
            decode_number(ld, k, v, f, path);
        return;
    case CONFIG_KEY_BOOL:
        if (json_is_null(v))
            return;
        if (!json_is_boolean(v)) {
            type_error(ld, k, v, path, "true or false");
            return;
        }
        *(bool *)f = json_is_true(v);
        return;
    case CONFIG_KEY_STRV:
        decode_strv(ld, k, v, f, path);
        return;
    case CONFIG_KEY_OBJECT:
    case CONFIG_KEY_CLUSTERS:
        break;
    }
    assert(!"not a value key");
}

static struct config_cluster_raw *cluster_raw_new(struct loader *ld, const char *name)
{
    struct config_cluster_raw *cr = xcalloc(1, sizeof(*cr));
    cr->c.name = xstrdup(name);
    cr->file = ld->file;
    for (size_t i = 0; i < ld->keys_len; i++) {
        if (ld->keys[i].base == CONFIG_BASE_CLUSTER)
            key_init(&ld->keys[i], key_field(&ld->keys[i], NULL, cr));
    }
    cr->haproxy_host = cr->haproxy_host ? cr->haproxy_host : xstrdup("");
    cr->haproxy_addresses = cr->haproxy_addresses ? cr->haproxy_addresses : xstrdup("");
    return cr;
}

/* A later file's entry replaces the whole cluster, as decoding into a Go map
 * of pointers does; other clusters are kept. */
static void loader_put_cluster(struct loader *ld, struct config_cluster_raw *cr)
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

static void decode_object(struct loader *ld, json_t *obj, const char *tpath, const char *dpath,
                          struct config_cluster_raw *cr);

/* Recursion is bounded: only objects listed in the key table are entered, so
 * the depth is at most six whatever the input. */
// NOLINTNEXTLINE(misc-no-recursion)
static void decode_clusters(struct loader *ld, json_t *v, const char *path)
{
    if (json_is_null(v)) {
        /* Go sets the map to nil. */
        loader_clear_clusters(ld);
        return;
    }
    if (!json_is_object(v)) {
        type_error(ld, NULL, v, path, "an object");
        return;
    }
    const char *name;
    json_t *cv;
    json_object_foreach(v, name, cv)
    {
        char *cname = clean(name);
        char *cpath = xasprintf("%s.%s", path, cname);
        if (json_is_object(cv)) {
            struct config_cluster_raw *cr = cluster_raw_new(ld, name);
            decode_object(ld, cv, CLUSTERS_PATH ".*", cpath, cr);
            loader_put_cluster(ld, cr);
        } else {
            type_error(ld, NULL, cv, cpath, "an object");
        }
        free(cpath);
        free(cname);
    }
}

/* Decodes the members of @obj, which sits at table path @tpath and is shown
 * as @dpath; @cr is the cluster being decoded, if any. Recursion: see above. */
// NOLINTNEXTLINE(misc-no-recursion)
static void decode_object(struct loader *ld, json_t *obj, const char *tpath, const char *dpath,
                          struct config_cluster_raw *cr)
{
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v)
    {
        bool exact;
        const struct config_key *k = config_key_find(tpath, name, &exact);
        if (k == NULL) {
            char *cname = clean(name);
            char *path = join_path(dpath, cname);
            diag_warn(ld, ld->file, "%s: unknown key", path);
            free(path);
            free(cname);
            continue;
        }
        char *path = join_path(dpath, config_key_leaf(k));
        if (!exact) {
            char *cname = clean(name);
            diag_warn(ld, ld->file, "%s: written as \"%s\"; matched ignoring case", path, cname);
            free(cname);
        }
        switch (k->type) {
        case CONFIG_KEY_OBJECT:
            /* null leaves a struct unchanged in Go. */
            if (json_is_object(v))
                decode_object(ld, v, k->name, path, cr);
            else if (!json_is_null(v))
                type_error(ld, k, v, path, "an object");
            break;
        case CONFIG_KEY_CLUSTERS:
            decode_clusters(ld, v, path);
            break;
        default:
            decode_value(ld, k, v, key_field(k, ld->cfg, cr), path);
            if (k->base == CONFIG_BASE_CONFIG)
                ld->origin[k - ld->keys] = ld->file;
            break;
        }
        free(path);
    }
}

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

static void load_text(struct loader *ld, const char *text, size_t len, const char *label)
{
    json_error_t je;

    ld->file = label;
    /* Go's json.Decoder reads the first value and ignores what follows, so
     * trailing text is a warning here, not an error. Numbers all become reals
     * so that an integer key may be written 3.0 and huge values fail our range
     * checks rather than the parser. */
    json_t *root = json_loadb(text, len, JSON_DISABLE_EOF_CHECK | JSON_DECODE_INT_AS_REAL, &je);
    if (root == NULL) {
        /* jansson quotes the text at the error ("near '...'"): that may be a
         * secret, on its key's line or on one of its own, so the position
         * alone is given. */
        char *near = strstr(je.text, " near '");
        if (near != NULL)
            *near = '\0';
        diag_error(ld, label, "line %d column %d: %s", je.line, je.column, je.text);
        ld->unparsed = true;
        return;
    }
    size_t pos = je.position > 0 ? (size_t)je.position : 0;
    while (pos < len && isspace((unsigned char)text[pos]))
        pos++;
    if (pos < len) {
        int line, column;
        text_position(text, pos, &line, &column);
        diag_warn(ld, label, "line %d column %d: ignoring text after the JSON object", line,
                  column);
    }
    if (json_is_object(root)) {
        decode_object(ld, root, "", "", NULL);
    } else {
        char *got = render(root, false);
        diag_error(ld, label, "expected a JSON object at the top level, got %s", got);
        free(got);
        ld->unparsed = true;
    }
    json_decref(root);
}

static void load_file(struct loader *ld, const char *path, bool skip_missing)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (skip_missing && (errno == ENOENT || errno == ENOTDIR))
            return;
        diag_error(ld, path, "open: %s", strerror(errno));
        ld->unparsed = true;
        return;
    }
    struct buf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b.len + n > CONFIG_FILE_MAX)
            break;
        buf_add(&b, chunk, n);
    }
    if (ferror(f)) {
        diag_error(ld, path, "read: %s", strerror(errno));
        ld->unparsed = true;
    } else if (n > 0) {
        diag_error(ld, path, "read: larger than %u bytes", CONFIG_FILE_MAX);
        ld->unparsed = true;
    } else {
        load_text(ld, b.p ? b.p : "", b.len, path);
    }
    fclose(f);
    free(b.p);
}

/* ---- ${NAME} expansion ---- */

/* Replaces every ${NAME} in @s with the variable's value. The original
 * replaces the WHOLE value with the first variable it finds and ignores the
 * text around it ("x${A}" becomes $A); we substitute in place, which is the
 * same for the usual whole-value "${A}" and what anyone writing "x${A}"
 * means. As in the original (os.Getenv), an unset variable gives "". With
 * @strict, an unset or empty variable is reported (as the original does for
 * HAProxy Addresses). The first such variable's name goes to *@missing
 * (caller frees). "${" without a closing brace and "${}" stay as written. */
static char *expand_env(const char *s, bool strict, char **missing)
{
    struct buf b = {0};
    const char *p = s;

    *missing = NULL;
    buf_add(&b, "", 0);
    for (;;) {
        const char *open = strstr(p, "${");
        const char *close = open ? strchr(open + 2, '}') : NULL;
        if (close == NULL || close == open + 2) {
            if (close == NULL) {
                buf_add(&b, p, strlen(p));
                break;
            }
            buf_add(&b, p, (size_t)(close + 1 - p));
            p = close + 1;
            continue;
        }
        buf_add(&b, p, (size_t)(open - p));
        char *name = xstrndup(open + 2, (size_t)(close - open - 2));
        const char *value = getenv(name);
        if (value == NULL || (strict && value[0] == '\0')) {
            value = "";
            if (*missing == NULL) {
                *missing = name;
                name = NULL;
            }
        }
        buf_add(&b, value, strlen(value));
        free(name);
        p = close + 1;
    }
    return buf_take(&b);
}

/* Expands one string field in place and reports a missing variable. */
static void expand_string(struct loader *ld, char **f, bool strict, bool secret, const char *file,
                          const char *path)
{
    if (strstr(*f, "${") == NULL)
        return;
    char *missing = NULL;
    char *v = expand_env(*f, strict, &missing);
    if (secret)
        free_secret(*f);
    else
        free(*f);
    *f = v;
    if (missing != NULL) {
        char *cname = clean(missing);
        if (strict)
            diag_error(ld, file, "%s: environment variable %s is not set", path, cname);
        else
            diag_warn(ld, file, "%s: environment variable %s is not set; it expands to nothing",
                      path, cname);
        free(cname);
        free(missing);
    }
}

static void expand_key(struct loader *ld, const struct config_key *k, void *f, const char *file,
                       const char *path)
{
    bool strict = k->flags & CONFIG_KEY_ENV_STRICT;
    bool secret = k->flags & CONFIG_KEY_SECRET;

    if (!(k->flags & (CONFIG_KEY_ENV | CONFIG_KEY_ENV_STRICT)))
        return;
    if (k->type == CONFIG_KEY_STRING) {
        expand_string(ld, f, strict, secret, file, path);
    } else if (k->type == CONFIG_KEY_STRV) {
        struct config_strv *sv = f;
        for (size_t i = 0; i < sv->len; i++) {
            char *epath = xasprintf("%s[%zu]", path, i);
            expand_string(ld, &sv->v[i], strict, secret, file, epath);
            free(epath);
        }
    }
}

/* ---- host and address parsing ---- */

static bool is_ipv6(const char *h, size_t len)
{
    char tmp[64];
    struct in6_addr addr;

    /* A zone ("fe80::1%eth0") is allowed; inet_pton does not take one. */
    const char *pct = memchr(h, '%', len);
    if (pct != NULL) {
        if (pct + 1 == h + len)
            return false;
        len = (size_t)(pct - h);
    }
    if (len == 0 || len >= sizeof(tmp))
        return false;
    memcpy(tmp, h, len);
    tmp[len] = '\0';
    return inet_pton(AF_INET6, tmp, &addr) == 1;
}

static bool is_hostname(const char *h, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)h[i];
        if (ch <= 0x20 || ch == 0x7f || strchr("/?#@[]:\\\"'", ch) != NULL)
            return false;
    }
    return true;
}

/* Parses a decimal port 1..65535 from @s (exactly @len bytes). */
static bool parse_port(const char *s, size_t len, uint16_t *port)
{
    uint32_t v = 0;
    if (len == 0 || len > 5)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

/* Splits "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 literal. A
 * missing port becomes @def_port. On success returns NULL and sets *@host
 * (without brackets, caller frees) and *@port; otherwise returns why not. */
static const char *split_host_port(const char *s, uint16_t def_port, char **host, uint16_t *port)
{
    const char *h = s;
    const char *p = NULL;
    size_t hlen;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL)
            return "missing ']'";
        h = s + 1;
        hlen = (size_t)(close - h);
        if (close[1] == ':')
            p = close + 2;
        else if (close[1] != '\0')
            return "unexpected text after ']'";
        if (!is_ipv6(h, hlen))
            return "invalid IPv6 address";
    } else {
        const char *colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            hlen = strlen(s);
            if (!is_ipv6(s, hlen))
                return "invalid port or IPv6 address";
        } else {
            hlen = colon ? (size_t)(colon - s) : strlen(s);
            if (colon != NULL)
                p = colon + 1;
            if (hlen == 0)
                return "empty host";
            if (!is_hostname(s, hlen))
                return "invalid host name";
        }
    }
    if (p != NULL) {
        if (!parse_port(p, strlen(p), port))
            return "invalid port";
    } else {
        *port = def_port;
    }
    *host = xstrndup(h, hlen);
    return NULL;
}

/* Formats host and port, with brackets around an IPv6 host. */
static char *format_host_port(const char *prefix, const char *host, uint16_t port)
{
    if (strchr(host, ':') != NULL)
        return xasprintf("%s[%s]:%u", prefix, host, (unsigned)port);
    return xasprintf("%s%s:%u", prefix, host, (unsigned)port);
}

/* Turns one HAProxy address into a base URL without a trailing slash:
 * "host[:port]" gives "http://host:port" (port 80 if missing, as in the
 * original), "http(s)://[user@]host[:port][/path]" is checked and kept.
 * Returns NULL and sets *@why on error. */
static char *haproxy_url(const char *tok, const char **why)
{
    char *host = NULL;
    uint16_t port;
    const char *sep = strstr(tok, "://");

    if (sep == NULL) {
        *why = split_host_port(tok, 80, &host, &port);
        if (*why != NULL)
            return NULL;
        char *u = format_host_port("http://", host, port);
        free(host);
        return u;
    }
    const char *scheme;
    if ((size_t)(sep - tok) == 4 && strncasecmp(tok, "http", 4) == 0) {
        scheme = "http";
    } else if ((size_t)(sep - tok) == 5 && strncasecmp(tok, "https", 5) == 0) {
        scheme = "https";
    } else {
        *why = "the scheme must be http or https";
        return NULL;
    }
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *path = auth + alen;
    if (path[strcspn(path, "?#")] != '\0') {
        *why = "a query or fragment is not supported";
        return NULL;
    }
    for (const char *q = path; *q; q++) {
        if ((unsigned char)*q <= 0x20 || *q == 0x7f) {
            *why = "invalid character in the path";
            return NULL;
        }
    }
    const char *at = memrchr(auth, '@', alen);
    const char *hp = at ? at + 1 : auth;
    char *hostport = xstrndup(hp, (size_t)(auth + alen - hp));
    if (hostport[0] != '[' && strchr(hostport, ':') != NULL &&
        strchr(strchr(hostport, ':') + 1, ':') != NULL) {
        *why = "an IPv6 address needs brackets in a URL";
    } else {
        *why = split_host_port(hostport, 0, &host, &port);
    }
    free(hostport);
    free(host);
    if (*why != NULL)
        return NULL;
    size_t plen = strlen(path);
    while (plen > 0 && path[plen - 1] == '/')
        plen--;
    return xasprintf("%s://%.*s%.*s", scheme, (int)alen, auth, (int)plen, path);
}

/* ---- per-cluster finishing: expansion, inheritance, host sources ---- */

/* Display path of cluster key @k under the cluster at @cpath. */
static char *cluster_key_path(const char *cpath, const struct config_key *k)
{
    return xasprintf("%s.%s", cpath, k->name + strlen(CLUSTERS_PATH ".*."));
}

static void finish_static(struct loader *ld, struct config_cluster_raw *cr, const char *cpath)
{
    struct config_cluster *c = &cr->c;
    const struct config_strv *hosts = &cr->static_hosts;

    c->static_hosts = xcalloc(hosts->len, sizeof(*c->static_hosts));
    for (size_t i = 0; i < hosts->len; i++) {
        struct config_hostport *hp = &c->static_hosts[c->static_hosts_len];
        const char *why = split_host_port(hosts->v[i], c->port, &hp->host, &hp->port);
        if (why != NULL) {
            char *got = clean(hosts->v[i]);
            diag_error(ld, cr->file, "%s.StaticHostsSettings.Hosts[%zu]: \"%s\": %s", cpath, i, got,
                       why);
            free(got);
            continue;
        }
        c->static_hosts_len++;
    }
}

static void finish_haproxy(struct loader *ld, struct config_cluster_raw *cr, const char *cpath)
{
    struct config_cluster *c = &cr->c;
    bool has_addresses = cr->haproxy_addresses[strspn(cr->haproxy_addresses, " \t,")] != '\0';

    if (c->haproxy_pool[0] == '\0')
        diag_error(ld, cr->file, "%s.HAProxySettings.PoolName: must be set", cpath);

    /* As in the original, Host and Port win over Addresses. */
    if (cr->haproxy_host[0] != '\0' && cr->haproxy_port > 0) {
        const char *h = cr->haproxy_host;
        size_t hlen = strlen(h);
        if (strchr(h, ':') ? !is_ipv6(h, hlen) : !is_hostname(h, hlen)) {
            char *got = clean(h);
            diag_error(ld, cr->file, "%s.HAProxySettings.Host: invalid host name \"%s\"", cpath,
                       got);
            free(got);
            return;
        }
        if (has_addresses)
            diag_warn(ld, cr->file,
                      "%s.HAProxySettings.Addresses: ignored because Host and Port are set", cpath);
        strv_push(&c->haproxy_addresses, format_host_port("http://", h, cr->haproxy_port));
        return;
    }
    if (!has_addresses) {
        if (cr->haproxy_host[0] != '\0' || cr->haproxy_port > 0)
            diag_error(ld, cr->file, "%s.HAProxySettings: Host and Port must be set together",
                       cpath);
        else
            diag_error(ld, cr->file, "%s.HAProxySettings: set Host and Port, or Addresses", cpath);
        return;
    }
    size_t index = 0;
    for (const char *p = cr->haproxy_addresses; *p;) {
        size_t n = strcspn(p, ",");
        char *tok = xstrndup(p, n);
        p += n + (p[n] == ',');
        char *t = tok;
        while (isspace((unsigned char)*t))
            t++;
        size_t tlen = strlen(t);
        while (tlen > 0 && isspace((unsigned char)t[tlen - 1]))
            t[--tlen] = '\0';
        if (tlen > 0) {
            const char *why = NULL;
            char *u = haproxy_url(t, &why);
            index++;
            if (u != NULL) {
                strv_push(&c->haproxy_addresses, u);
            } else if (strchr(t, '@') != NULL) {
                /* user:password@ may be in there: do not echo it. */
                diag_error(ld, cr->file, "%s.HAProxySettings.Addresses: address %zu: %s", cpath,
                           index, why);
            } else {
                char *got = clean(t);
                diag_error(ld, cr->file, "%s.HAProxySettings.Addresses: \"%s\": %s", cpath, got,
                           why);
                free(got);
            }
        }
        free(tok);
    }
}

static void finish_proxysql(struct loader *ld, struct config_cluster_raw *cr, const char *cpath,
                            bool own_addresses)
{
    struct config_cluster *c = &cr->c;
    struct config_strv *a = &c->proxysql_addresses;

    if (a->len == 0)
        diag_error(ld, cr->file, "%s.ProxySQLSettings.Addresses: must be set here or in %s", cpath,
                   "Stores.MySQL.ProxySQLAddresses");
    for (size_t i = 0; i < a->len; i++) {
        char *host;
        uint16_t port;
        /* A missing port is MySQL's default, as with the original's driver. */
        const char *why = split_host_port(a->v[i], 3306, &host, &port);
        if (why != NULL) {
            char *got = clean(a->v[i]);
            diag_error(ld, cr->file, "%s.ProxySQLSettings.Addresses[%zu]%s: \"%s\": %s", cpath, i,
                       own_addresses ? "" : " (from Stores.MySQL.ProxySQLAddresses)", got, why);
            free(got);
            continue;
        }
        free(a->v[i]);
        a->v[i] = format_host_port("", host, port);
        free(host);
    }
    if (c->proxysql_user[0] == '\0')
        diag_error(ld, cr->file, "%s.ProxySQLSettings.User: must be set here or in %s", cpath,
                   "Stores.MySQL.ProxySQLUser");
    if (c->proxysql_hostgroup_id < 1)
        diag_error(ld, cr->file, "%s.ProxySQLSettings.HostgroupID: must be at least 1", cpath);
}

static void finish_vitess(struct loader *ld, struct config_cluster_raw *cr, const char *cpath)
{
    struct config_cluster *c = &cr->c;

    if (c->vitess_api[0] == '\0') {
        diag_error(ld, cr->file, "%s.VitessSettings.API: must be set", cpath);
    } else if (strncasecmp(c->vitess_api, "http://", 7) != 0 &&
               strncasecmp(c->vitess_api, "https://", 8) != 0) {
        char *got = clean(c->vitess_api);
        diag_error(ld, cr->file,
                   "%s.VitessSettings.API: expected an http:// or https:// URL, got \"%s\"", cpath,
                   got);
        free(got);
    }
    if (c->vitess_keyspace[0] == '\0')
        diag_error(ld, cr->file, "%s.VitessSettings.Keyspace: must be set", cpath);

    /* The original trims cells and drops empty ones when it builds the URL. */
    struct config_strv cells = {0};
    for (size_t i = 0; i < c->vitess_cells.len; i++) {
        const char *s = c->vitess_cells.v[i];
        while (isspace((unsigned char)*s))
            s++;
        size_t n = strlen(s);
        while (n > 0 && isspace((unsigned char)s[n - 1]))
            n--;
        if (n > 0)
            strv_push(&cells, xstrndup(s, n));
    }
    strv_clear(&c->vitess_cells);
    c->vitess_cells = cells;
}

/* Joins the names of the sources in @mask: "A", "A<last>B", "A, B<last>C". */
static char *join_sources(unsigned mask, const char *last)
{
    struct buf names = {0};
    size_t count = 0;

    mask &= ((1u << (CONFIG_SOURCE_VITESS + 1)) - 1) & ~(1u << CONFIG_SOURCE_NONE);
    for (unsigned s = CONFIG_SOURCE_STATIC; s <= CONFIG_SOURCE_VITESS; s++) {
        if (!(mask & (1u << s)))
            continue;
        const char *glue = count == 0 ? "" : (mask >> (s + 1) ? ", " : last);
        buf_add(&names, glue, strlen(glue));
        buf_add(&names, source_names[s], strlen(source_names[s]));
        count++;
    }
    return buf_take(&names);
}

/* Picks the host source from the keys that select one; reports none or
 * several. */
static enum config_host_source pick_source(struct loader *ld, struct config_cluster_raw *cr,
                                           const char *cpath)
{
    unsigned seen = 0;

    for (size_t i = 0; i < ld->keys_len; i++) {
        const struct config_key *k = &ld->keys[i];
        if ((k->flags & CONFIG_KEY_SELECTS) && !key_is_zero(k, key_field(k, NULL, cr)))
            seen |= 1u << k->source;
    }
    if (seen != 0 && (seen & (seen - 1)) == 0)
        return (enum config_host_source)__builtin_ctz(seen);

    char *list = join_sources(seen ? seen : ~0u, seen ? " and " : " or ");
    if (seen == 0)
        diag_error(ld, cr->file, "%s: no host source; set one of %s", cpath, list);
    else
        diag_error(ld, cr->file, "%s: more than one host source: %s", cpath, list);
    free(list);
    return CONFIG_SOURCE_NONE;
}

/* Tells whether @name can appear as one path segment of a check URL. */
static bool is_cluster_name(const char *name)
{
    if (name[0] == '\0')
        return false;
    for (const char *p = name; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 0x20 || ch == 0x7f || strchr("/?#%", ch) != NULL)
            return false;
    }
    return true;
}

/* Finishes one cluster; on return @out owns what @cr->c owned. */
static void finish_cluster(struct loader *ld, struct config_cluster_raw *cr,
                           struct config_cluster *out)
{
    struct config_cluster *c = &cr->c;
    char *cname = clean(c->name);
    char *cpath = xasprintf(CLUSTERS_PATH ".%s", cname);

    if (!is_cluster_name(c->name))
        diag_warn(ld, cr->file, "%s: this cluster name cannot be used in /check/<app>/mysql/<name>",
                  cpath);

    size_t errors = ld->diag->errors_len;
    for (size_t i = 0; i < ld->keys_len; i++) {
        const struct config_key *k = &ld->keys[i];
        if (k->base != CONFIG_BASE_CLUSTER)
            continue;
        char *kpath = cluster_key_path(cpath, k);
        expand_key(ld, k, key_field(k, NULL, cr), cr->file, kpath);
        free(kpath);
    }
    /* A missing variable in HAProxy Addresses is already reported; parsing
     * what is left of the value would only add confusing errors. */
    bool expanded = ld->diag->errors_len == errors;

    enum config_host_source source = pick_source(ld, cr, cpath);
    bool own_proxysql_addresses = c->proxysql_addresses.len > 0;

    for (size_t i = 0; i < ld->keys_len; i++) {
        const struct config_key *k = &ld->keys[i];
        if (k->base != CONFIG_BASE_CLUSTER)
            continue;
        void *f = key_field(k, NULL, cr);
        if (k->inherit != NULL && (k->source == CONFIG_SOURCE_NONE || k->source == source) &&
            key_is_zero(k, f)) {
            const struct config_key *from = config_key_by_name(k->inherit);
            assert(from != NULL && from->type == k->type);
            key_copy(k, f, key_field(from, ld->cfg, NULL));
        }
        if ((k->flags & CONFIG_KEY_ZERO_DEFAULT) && key_is_zero(k, f))
            key_init(k, f);
    }

    c->source = source;
    switch (expanded ? source : CONFIG_SOURCE_NONE) {
    case CONFIG_SOURCE_STATIC:
        finish_static(ld, cr, cpath);
        break;
    case CONFIG_SOURCE_HAPROXY:
        finish_haproxy(ld, cr, cpath);
        break;
    case CONFIG_SOURCE_PROXYSQL:
        finish_proxysql(ld, cr, cpath, own_proxysql_addresses);
        break;
    case CONFIG_SOURCE_VITESS:
        finish_vitess(ld, cr, cpath);
        break;
    case CONFIG_SOURCE_NONE:
        break;
    }

    for (size_t i = 0; i < c->ignore_hosts.len; i++) {
        if (c->ignore_hosts.v[i][0] == '\0')
            diag_warn(ld, cr->file,
                      "%s.IgnoreHosts[%zu]: an empty string matches every host, so none is probed",
                      cpath, i);
    }

    cluster_fill_strings(c);
    *out = *c;
    cr->c = (struct config_cluster){0};
    free(cpath);
    free(cname);
}

static int compare_raw(const void *a, const void *b)
{
    const struct config_cluster_raw *const *x = a;
    const struct config_cluster_raw *const *y = b;
    return strcmp((*x)->c.name, (*y)->c.name);
}

/* Runs the whole-config steps, then hands the config to *@out or frees it. */
static int loader_finish(struct loader *ld, struct config **out)
{
    struct config *cfg = ld->cfg;

    for (size_t i = 0; i < ld->keys_len; i++) {
        const struct config_key *k = &ld->keys[i];
        if (k->base != CONFIG_BASE_CONFIG)
            continue;
        void *f = key_field(k, cfg, NULL);
        if ((k->flags & CONFIG_KEY_ZERO_DEFAULT) && key_is_zero(k, f))
            key_init(k, f);
        expand_key(ld, k, f, ld->origin[i], k->name);
    }
    /* The Go original builds the default in its MySQL backend code; same rule. */
    if (cfg->domain[0] == '\0') {
        free(cfg->domain);
        cfg->domain = xasprintf("%s:%s", cfg->data_center, cfg->environment);
    }
    if (cfg->control_token[0] == '\0') {
        free(cfg->control_token);
        cfg->control_token = NULL;
    }
    cluster_fill_strings(&cfg->mysql_defaults);

    if (!ld->unparsed) {
        if (cfg->raft_data_dir[0] == '\0' && cfg->backend_host[0] == '\0')
            diag_error(ld, NULL, "one of BackendMySQLHost or RaftDataDir must be set");
        if (cfg->backend_host[0] != '\0' && cfg->backend_schema[0] == '\0')
            diag_error(ld, NULL, "BackendMySQLSchema must be set when BackendMySQLHost is set");
    }

    if (ld->clusters_len > 0)
        qsort(ld->clusters, ld->clusters_len, sizeof(struct config_cluster_raw *), compare_raw);
    cfg->clusters = xcalloc(ld->clusters_len, sizeof(*cfg->clusters));
    for (size_t i = 0; i < ld->clusters_len; i++) {
        finish_cluster(ld, ld->clusters[i], &cfg->clusters[i]);
        cfg->clusters_len++;
    }

    int rc = 0;
    if (ld->diag->errors_len > ld->errors_at_start) {
        *out = NULL;
        rc = -EINVAL;
    } else {
        *out = cfg;
        ld->cfg = NULL;
    }
    loader_deinit(ld);
    return rc;
}

/* ---- public API ---- */

int config_load_files(const char *const *paths, size_t n, bool skip_missing, struct config **out,
                      struct config_diag *diag)
{
    struct loader ld;

    loader_init(&ld, diag);
    for (size_t i = 0; i < n; i++)
        load_file(&ld, paths[i], skip_missing);
    return loader_finish(&ld, out);
}

int config_load_string(const char *json, const char *name, struct config **out,
                       struct config_diag *diag)
{
    struct loader ld;

    loader_init(&ld, diag);
    load_text(&ld, json, strlen(json), name);
    return loader_finish(&ld, out);
}

const struct config_cluster *config_find_cluster(const struct config *c, const char *name)
{
    size_t lo = 0;
    size_t hi = c->clusters_len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(name, c->clusters[mid].name);
        if (cmp == 0)
            return &c->clusters[mid];
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
