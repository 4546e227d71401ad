/* SPDX-License-Identifier: MIT */
/* Configuration loading: reads the files, has each decoded in turn onto the
 * same settings (later files override earlier keys), then runs the
 * whole-config steps once on the result: ${NAME} expansion, defaults,
 * cross-key checks and each cluster's finishing. Every problem goes into a
 * config_diag. Main thread; a returned struct config is never modified. */
#include "config/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_load.h"
#include "core/strbuf.h"
#include "core/xalloc.h"

/* Real configs are a few KB; this only stops a wrong path from eating memory. */
#define CONFIG_FILE_MAX (16u << 20)

/* Whether top-level key @k stores into Stores.MySQL's defaults, which
 * config_cluster_deinit() frees. */
static bool in_mysql_defaults(const struct config_key *k)
{
    size_t at = offsetof(struct config, mysql_defaults);
    return k->offset >= at && k->offset < at + sizeof(struct config_cluster);
}

void config_free(struct config *c)
{
    size_t len;
    const struct config_key *keys = config_keys_table(&len);

    if (c == NULL)
        return;
    /* Every string and list of struct config is a key of the table. */
    for (size_t i = 0; i < len; i++) {
        if (keys[i].base == CONFIG_BASE_CONFIG && !in_mysql_defaults(&keys[i]))
            config_key_deinit(&keys[i], (char *)c + keys[i].offset);
    }
    config_cluster_deinit(&c->mysql_defaults);
    for (size_t i = 0; i < c->clusters_len; i++)
        config_cluster_deinit(&c->clusters[i]);
    free(c->clusters);
    free(c);
}

static void loader_init(struct config_loader *ld, struct config_diag *diag)
{
    *ld = (struct config_loader){.diag = diag, .errors_at_start = diag->errors_len};
    ld->keys = config_keys_table(&ld->keys_len);
    ld->origin = xcalloc(ld->keys_len, sizeof(*ld->origin));
    ld->cfg = xcalloc(1, sizeof(*ld->cfg));
    for (size_t i = 0; i < ld->keys_len; i++) {
        if (ld->keys[i].base == CONFIG_BASE_CONFIG)
            config_key_init(&ld->keys[i], config_key_field(&ld->keys[i], ld->cfg, NULL));
    }
}

static void loader_deinit(struct config_loader *ld)
{
    config_loader_clear_clusters(ld);
    free(ld->clusters);
    free(ld->origin);
    config_free(ld->cfg);
    *ld = (struct config_loader){0};
}

static void load_file(struct config_loader *ld, const char *path, bool skip_missing)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (skip_missing && (errno == ENOENT || errno == ENOTDIR))
            return;
        config_diag_error(ld, path, "open: %s", strerror(errno));
        ld->unparsed = true;
        return;
    }
    struct strbuf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b.len + n > CONFIG_FILE_MAX)
            break;
        strbuf_add(&b, chunk, n);
    }
    if (ferror(f)) {
        config_diag_error(ld, path, "read: %s", strerror(errno));
        ld->unparsed = true;
    } else if (n > 0) {
        config_diag_error(ld, path, "read: larger than %u bytes", CONFIG_FILE_MAX);
        ld->unparsed = true;
    } else {
        config_decode_text(ld, b.p ? b.p : "", b.len, path);
    }
    fclose(f);
    strbuf_deinit(&b);
}

/* Expansion and zero-means-default for the top-level keys, then the
 * defaults that depend on other keys. */
static void finish_top_level(struct config_loader *ld)
{
    struct config *cfg = ld->cfg;

    for (size_t i = 0; i < ld->keys_len; i++) {
        const struct config_key *k = &ld->keys[i];
        if (k->base != CONFIG_BASE_CONFIG)
            continue;
        void *f = config_key_field(k, cfg, NULL);
        if ((k->flags & CONFIG_KEY_ZERO_DEFAULT) && config_key_is_zero(k, f))
            config_key_init(k, f);
        config_expand_key(ld, k, f, ld->origin[i], k->name);
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
    config_cluster_fill_strings(&cfg->mysql_defaults);
    config_security_finish(ld);
    const struct config_key *mk = config_key_by_name("Stores.MySQL.Metrics");
    config_metrics_finish_defaults(ld, &cfg->mysql_defaults.metrics, ld->origin[mk - ld->keys]);

    if (!ld->unparsed) {
        if (cfg->raft_data_dir[0] == '\0' && cfg->backend_host[0] == '\0')
            config_diag_error(ld, NULL, "one of BackendMySQLHost or RaftDataDir must be set");
        if (cfg->backend_host[0] != '\0' && cfg->backend_schema[0] == '\0')
            config_diag_error(ld, NULL,
                              "BackendMySQLSchema must be set when BackendMySQLHost is set");
    }
}

static int compare_raw(const void *a, const void *b)
{
    const struct config_cluster_raw *const *x = a;
    const struct config_cluster_raw *const *y = b;
    return strcmp((*x)->c.name, (*y)->c.name);
}

/* Runs the whole-config steps, then hands the config to *@out or frees it. */
static int loader_finish(struct config_loader *ld, struct config **out)
{
    struct config *cfg = ld->cfg;

    finish_top_level(ld);
    if (ld->clusters_len > 0)
        qsort(ld->clusters, ld->clusters_len, sizeof(struct config_cluster_raw *), compare_raw);
    cfg->clusters = xcalloc(ld->clusters_len, sizeof(*cfg->clusters));
    for (size_t i = 0; i < ld->clusters_len; i++) {
        config_finish_cluster(ld, ld->clusters[i], &cfg->clusters[i]);
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

int config_load_files(const char *const *paths, size_t n, bool skip_missing, struct config **out,
                      struct config_diag *diag)
{
    struct config_loader ld;

    loader_init(&ld, diag);
    for (size_t i = 0; i < n; i++)
        load_file(&ld, paths[i], skip_missing);
    return loader_finish(&ld, out);
}

int config_load_string(const char *json, const char *name, struct config **out,
                       struct config_diag *diag)
{
    struct config_loader ld;

    loader_init(&ld, diag);
    config_decode_text(&ld, json, strlen(json), name);
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
