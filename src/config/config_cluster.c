/* SPDX-License-Identifier: MIT */
/* Finishing one cluster after every file is decoded: ${NAME} expansion, then
 * inheritance from Stores.MySQL and zero-means-default, then its host source
 * (config_sources.c); and the lifetime of a cluster's members. Main thread. */
#include "config/config_load.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"

/* The cluster's own members are at the start of config_cluster_raw, so a
 * cluster key whose offset falls inside struct config_cluster names a member
 * of every struct config_cluster, Stores.MySQL's defaults included. */
static_assert(offsetof(struct config_cluster_raw, c) == 0, "the cluster comes first");

static bool in_cluster(const struct config_key *k)
{
    return k->base == CONFIG_BASE_CLUSTER && k->offset < sizeof(struct config_cluster);
}

/* Every string and list of a cluster has a key in the table, but for the
 * name and the two members config_sources.c derives (haproxy_addresses and
 * static_hosts), so the table drives filling and freeing. */
void config_cluster_fill_strings(struct config_cluster *c)
{
    size_t len;
    const struct config_key *keys = config_keys_table(&len);

    if (c->name == NULL)
        c->name = xstrdup("");
    for (size_t i = 0; i < len; i++) {
        if (!in_cluster(&keys[i]) || keys[i].type != CONFIG_KEY_STRING)
            continue;
        char **s = (char **)((char *)c + keys[i].offset);
        if (*s == NULL)
            *s = xstrdup("");
    }
}

void config_cluster_deinit(struct config_cluster *c)
{
    size_t len;
    const struct config_key *keys = config_keys_table(&len);

    for (size_t i = 0; i < len; i++) {
        if (in_cluster(&keys[i]))
            config_key_deinit(&keys[i], (char *)c + keys[i].offset);
    }
    free(c->name);
    config_strv_clear(&c->haproxy_addresses);
    for (size_t i = 0; i < c->static_hosts_len; i++)
        free(c->static_hosts[i].host);
    free(c->static_hosts);
    *c = (struct config_cluster){0};
}

/* Display path of cluster key @k under the cluster at @cpath. */
static char *cluster_key_path(const char *cpath, const struct config_key *k)
{
    return xasprintf("%s.%s", cpath, k->name + strlen(CONFIG_CLUSTERS_PATH ".*."));
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

/* Expands every cluster key; returns false if a variable was missing where
 * that is an error. */
static bool expand_cluster(struct config_loader *ld, struct config_cluster_raw *cr,
                           const char *cpath)
{
    size_t errors = ld->diag->errors_len;

    for (size_t i = 0; i < ld->keys_len; i++) {
        const struct config_key *k = &ld->keys[i];
        if (k->base != CONFIG_BASE_CLUSTER)
            continue;
        char *kpath = cluster_key_path(cpath, k);
        config_expand_key(ld, k, config_key_field(k, NULL, cr), cr->file, kpath);
        free(kpath);
    }
    return ld->diag->errors_len == errors;
}

/* Fills zero values from Stores.MySQL (keys of other host sources than
 * @source excepted), then zero-means-default keys from their defaults.
 * Metrics are merged by name instead. */
static void inherit(struct config_loader *ld, struct config_cluster_raw *cr,
                    enum config_host_source source, const char *cpath)
{
    for (size_t i = 0; i < ld->keys_len; i++) {
        const struct config_key *k = &ld->keys[i];
        if (k->base != CONFIG_BASE_CLUSTER)
            continue;
        void *f = config_key_field(k, NULL, cr);
        if (k->type == CONFIG_KEY_METRICS) {
            config_metrics_finish_cluster(ld, f, &ld->cfg->mysql_defaults.metrics, cr->file, cpath);
            continue;
        }
        if (k->inherit != NULL && (k->source == CONFIG_SOURCE_NONE || k->source == source) &&
            config_key_is_zero(k, f)) {
            const struct config_key *from = config_key_by_name(k->inherit);
            assert(from != NULL && from->type == k->type);
            config_key_copy(k, f, config_key_field(from, ld->cfg, NULL));
        }
        if ((k->flags & CONFIG_KEY_ZERO_DEFAULT) && config_key_is_zero(k, f))
            config_key_init(k, f);
    }
}

void config_finish_cluster(struct config_loader *ld, struct config_cluster_raw *cr,
                           struct config_cluster *out)
{
    struct config_cluster *c = &cr->c;
    char *cname = config_clean(c->name);
    char *cpath = xasprintf(CONFIG_CLUSTERS_PATH ".%s", cname);

    if (!is_cluster_name(c->name))
        config_diag_warn(ld, cr->file,
                         "%s: this cluster name cannot be used in /check/<app>/mysql/<name>",
                         cpath);
    /* A missing variable in HAProxy Addresses is already reported; parsing
     * what is left of the value would only add confusing errors. */
    bool expanded = expand_cluster(ld, cr, cpath);

    c->source = config_source_pick(ld, cr, cpath);
    cr->proxysql_addresses_inherited = c->proxysql_addresses.len == 0;
    inherit(ld, cr, c->source, cpath);
    if (expanded)
        config_source_finish(ld, cr, cpath);

    for (size_t i = 0; i < c->ignore_hosts.len; i++) {
        if (c->ignore_hosts.v[i][0] == '\0')
            config_diag_warn(
                    ld, cr->file,
                    "%s.IgnoreHosts[%zu]: an empty string matches every host, so none is probed",
                    cpath, i);
    }

    config_cluster_fill_strings(c);
    *out = *c;
    cr->c = (struct config_cluster){0};
    free(cpath);
    free(cname);
}
