/* SPDX-License-Identifier: MIT */
/* What a reload changes: clusters added, removed and changed (compared by
 * name, every setting after inheritance), and top-level keys changed, split
 * by the key table's CONFIG_KEY_RESTART into those that apply live and those
 * that need a restart. Pure; main thread. */
#include "config/config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_load.h"
#include "core/xalloc.h"

static void push(const char ***v, size_t *len, const char *s)
{
    *v = xrealloc(*v, (*len + 1) * sizeof(**v));
    (*v)[(*len)++] = s;
}

void config_diff_deinit(struct config_diff *d)
{
    free(d->added);
    free(d->removed);
    free(d->changed);
    free(d->live);
    free(d->restart);
    *d = (struct config_diff){0};
}

/* NULL (an unset ControlToken) equals only NULL. */
static bool str_equal(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool strv_equal(const struct config_strv *a, const struct config_strv *b)
{
    if (a->len != b->len)
        return false;
    for (size_t i = 0; i < a->len; i++)
        if (!str_equal(a->v[i], b->v[i]))
            return false;
    return true;
}

static bool metrics_equal(const struct config_metrics *a, const struct config_metrics *b)
{
    if (a->len != b->len)
        return false;
    for (size_t i = 0; i < a->len; i++) {
        const struct config_metric *x = &a->v[i], *y = &b->v[i];
        if (!str_equal(x->name, y->name) || !str_equal(x->query, y->query) ||
            x->threshold != y->threshold || x->cache_millis != y->cache_millis ||
            x->ignore_hosts_threshold != y->ignore_hosts_threshold)
            return false;
    }
    return true;
}

static bool hostports_equal(const struct config_hostport *a, size_t alen,
                            const struct config_hostport *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (!str_equal(a[i].host, b[i].host) || a[i].port != b[i].port)
            return false;
    return true;
}

/* Every member of struct config_cluster: a member added there belongs here
 * too, or a reload would not see it change. */
bool config_cluster_equal(const struct config_cluster *a, const struct config_cluster *b)
{
    return str_equal(a->name, b->name) && str_equal(a->user, b->user) &&
           str_equal(a->password, b->password) && str_equal(a->collation, b->collation) &&
           str_equal(a->metric_query, b->metric_query) && a->cache_millis == b->cache_millis &&
           a->throttle_threshold == b->throttle_threshold && a->port == b->port &&
           a->ignore_hosts_count == b->ignore_hosts_count &&
           a->ignore_hosts_percent == b->ignore_hosts_percent &&
           a->ignore_hosts_threshold == b->ignore_hosts_threshold &&
           a->ignore_dial_tcp_errors == b->ignore_dial_tcp_errors &&
           a->http_check_port == b->http_check_port &&
           str_equal(a->http_check_path, b->http_check_path) &&
           strv_equal(&a->ignore_hosts, &b->ignore_hosts) &&
           metrics_equal(&a->metrics, &b->metrics) && a->source == b->source &&
           hostports_equal(a->static_hosts, a->static_hosts_len, b->static_hosts,
                           b->static_hosts_len) &&
           strv_equal(&a->haproxy_addresses, &b->haproxy_addresses) &&
           str_equal(a->haproxy_pool, b->haproxy_pool) &&
           strv_equal(&a->proxysql_addresses, &b->proxysql_addresses) &&
           str_equal(a->proxysql_user, b->proxysql_user) &&
           str_equal(a->proxysql_password, b->proxysql_password) &&
           a->proxysql_hostgroup_id == b->proxysql_hostgroup_id &&
           a->proxysql_ignore_server_ttl_secs == b->proxysql_ignore_server_ttl_secs &&
           str_equal(a->vitess_api, b->vitess_api) &&
           str_equal(a->vitess_keyspace, b->vitess_keyspace) &&
           str_equal(a->vitess_shard, b->vitess_shard) &&
           strv_equal(&a->vitess_cells, &b->vitess_cells) &&
           a->vitess_timeout_secs == b->vitess_timeout_secs;
}

/* Whether top-level key @k stores into Stores.MySQL's defaults (compared
 * through the clusters that inherit them). */
static bool in_mysql_defaults(const struct config_key *k)
{
    size_t at = offsetof(struct config, mysql_defaults);
    return k->offset >= at && k->offset < at + sizeof(struct config_cluster);
}

/* The top-level keys a reload compares: each stores into struct config
 * itself. */
static bool is_top_level(const struct config_key *k)
{
    return k->base == CONFIG_BASE_CONFIG && !in_mysql_defaults(k);
}

/* Same names with the same secrets, in the same order (the loader keeps
 * the file's order, so a reordered file counts as a change: harmless). */
static bool tokens_equal(const struct config_tokens *a, const struct config_tokens *b)
{
    if (a->len != b->len)
        return false;
    for (size_t i = 0; i < a->len; i++)
        if (!str_equal(a->names[i], b->names[i]) || !str_equal(a->secrets[i], b->secrets[i]))
            return false;
    return true;
}

static bool field_equal(const struct config_key *k, const void *a, const void *b)
{
    switch (k->type) {
    case CONFIG_KEY_STRING:
        return str_equal(*(char *const *)a, *(char *const *)b);
    case CONFIG_KEY_INT:
        return *(const int64_t *)a == *(const int64_t *)b;
    case CONFIG_KEY_PORT:
        return *(const uint16_t *)a == *(const uint16_t *)b;
    case CONFIG_KEY_DOUBLE:
        return *(const double *)a == *(const double *)b;
    case CONFIG_KEY_BOOL:
        return *(const bool *)a == *(const bool *)b;
    case CONFIG_KEY_STRV:
        return strv_equal(a, b);
    case CONFIG_KEY_METRICS:
        return metrics_equal(a, b);
    case CONFIG_KEY_TOKENS:
        return tokens_equal(a, b);
    case CONFIG_KEY_OBJECT:
    case CONFIG_KEY_CLUSTERS:
        break;
    }
    return true;
}

static const void *field_of(const struct config_key *k, const struct config *c)
{
    return (const char *)c + k->offset;
}

static void diff_keys(const struct config *old, const struct config *next, struct config_diff *d)
{
    size_t len;
    const struct config_key *keys = config_keys_table(&len);

    for (size_t i = 0; i < len; i++) {
        const struct config_key *k = &keys[i];
        if (!is_top_level(k) || field_equal(k, field_of(k, old), field_of(k, next)))
            continue;
        if (k->flags & CONFIG_KEY_RESTART)
            push(&d->restart, &d->restart_len, k->name);
        else
            push(&d->live, &d->live_len, k->name);
    }
}

/* Both cluster arrays are sorted by name: one merge pass. */
static void diff_clusters(const struct config *old, const struct config *next,
                          struct config_diff *d)
{
    size_t i = 0, j = 0;
    while (i < old->clusters_len && j < next->clusters_len) {
        const struct config_cluster *a = &old->clusters[i], *b = &next->clusters[j];
        int cmp = strcmp(a->name, b->name);
        if (cmp < 0) {
            push(&d->removed, &d->removed_len, a->name);
            i++;
        } else if (cmp > 0) {
            push(&d->added, &d->added_len, b->name);
            j++;
        } else {
            if (!config_cluster_equal(a, b))
                push(&d->changed, &d->changed_len, b->name);
            i++;
            j++;
        }
    }
    for (; i < old->clusters_len; i++)
        push(&d->removed, &d->removed_len, old->clusters[i].name);
    for (; j < next->clusters_len; j++)
        push(&d->added, &d->added_len, next->clusters[j].name);
}

void config_diff(const struct config *old, const struct config *next, struct config_diff *d)
{
    diff_clusters(old, next, d);
    diff_keys(old, next, d);
}

void config_keep_restart_keys(const struct config *old, struct config *next)
{
    size_t len;
    const struct config_key *keys = config_keys_table(&len);

    for (size_t i = 0; i < len; i++) {
        const struct config_key *k = &keys[i];
        if (!is_top_level(k) || !(k->flags & CONFIG_KEY_RESTART))
            continue;
        void *f = (char *)next + k->offset;
        if (field_equal(k, field_of(k, old), f))
            continue;
        config_key_deinit(k, f);
        if (k->type != CONFIG_KEY_STRING || *(char *const *)field_of(k, old) != NULL)
            config_key_copy(k, f, field_of(k, old));
    }
}
