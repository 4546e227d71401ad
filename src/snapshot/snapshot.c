/* SPDX-License-Identifier: MIT */
/* Snapshot publication with liburcu's bulletproof flavour: readers need no
 * registration (MHD's pool threads come and go on their own), take no lock
 * and touch no shared cache line but their own. The loop swaps the pointer
 * and hands the old snapshot to call_rcu, which frees it after every reader
 * that could see it has left its read-side section. */
#include "snapshot/snapshot.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-bp.h>

#include "core/tsan_grace.h"
#include "core/xalloc.h"

struct snapshot_box {
    struct snapshot s; /* first: readers get &box->s */
    struct rcu_head rcu;
};

/* RCU-protected; written by the loop only. A C11 atomic rather than
 * rcu_assign_pointer/rcu_dereference: same code on x86 and ARM, and
 * ThreadSanitizer understands the publication. */
static _Atomic(struct snapshot_box *) current;

struct metric_live *metric_live_new(void)
{
    struct metric_live *m = xcalloc(1, sizeof(*m));
    atomic_init(&m->refs, 1);
    return m;
}

struct metric_live *metric_live_ref(struct metric_live *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void metric_live_unref(struct metric_live *m)
{
    if (m != NULL && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        free(m);
}

/* ---- parts ----
 * Every part (struct snap_metrics, snap_apps, ...) begins with a struct
 * snap_part, so these helpers count them all; each part type brings the
 * function that frees what it owns. */

/* A heap copy of the part @tmpl of @size bytes holding one reference, whose
 * contents @free_contents frees. */
static void *part_dup(const void *tmpl, size_t size, void (*free_contents)(struct snap_part *p))
{
    struct snap_part *p = xmalloc(size);
    memcpy(p, tmpl, size);
    atomic_init(&p->refs, 1);
    p->free_contents = free_contents;
    return p;
}

/* Takes one more reference on @part (NULL is fine). */
static void part_ref(void *part)
{
    struct snap_part *p = part;
    if (p != NULL)
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

/* Drops one reference on @part (NULL is fine); the last one frees it. */
static void part_unref(void *part)
{
    struct snap_part *p = part;
    if (p == NULL || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    p->free_contents(p);
    free(p);
}

/* ---- each part type: what it owns, its constructors, its release ---- */

static void clusters_free(struct snap_part *part)
{
    struct snap_clusters *p = (struct snap_clusters *)part;
    for (size_t i = 0; i < p->len; i++) {
        struct snap_cluster *c = &p->v[i];
        for (size_t j = 0; j < c->nmetrics; j++) {
            free(c->metrics[j].name);
            free(c->metrics[j].err);
            free(c->metrics[j].host);
            metric_live_unref(c->metrics[j].live);
        }
        free(c->metrics);
        free(c->name);
    }
    free(p->v);
}

struct snap_clusters *snap_clusters_new(struct snap_cluster *v, size_t len)
{
    struct snap_clusters p = {.v = v, .len = len};
    return part_dup(&p, sizeof(p), clusters_free);
}

void snap_clusters_unref(struct snap_clusters *p)
{
    part_unref(p);
}

static void probes_free(struct snap_part *part)
{
    struct snap_probes *p = (struct snap_probes *)part;
    for (size_t i = 0; i < p->len; i++) {
        struct snap_probe_set *set = &p->v[i];
        for (size_t j = 0; j < set->len; j++) {
            free(set->v[j].host);
            free(set->v[j].err);
        }
        free(set->v);
        free(set->metric);
    }
    free(p->v);
}

struct snap_probes *snap_probes_new(struct snap_probe_set *v, size_t len)
{
    struct snap_probes p = {.v = v, .len = len};
    return part_dup(&p, sizeof(p), probes_free);
}

void snap_probes_unref(struct snap_probes *p)
{
    part_unref(p);
}

/* Apps and hosts parts have one shape: entries that begin with their name
 * (struct snap_app.key, struct snap_host.host), which may be packed into
 * one block. */
_Static_assert(offsetof(struct snap_app, key) == 0, "an app entry begins with its name");
_Static_assert(offsetof(struct snap_host, host) == 0, "a host entry begins with its name");

/* Frees the @len entries of @size bytes at @v and their names: the @block
 * they were packed into, or else each one. */
static void named_entries_free(char *block, void *v, size_t len, size_t size)
{
    free(block);
    for (size_t i = 0; block == NULL && i < len; i++)
        free(*(char **)((char *)v + i * size));
    free(v);
}

static void apps_free(struct snap_part *part)
{
    struct snap_apps *p = (struct snap_apps *)part;
    named_entries_free(p->keys, p->v, p->len, sizeof(*p->v));
}

static void hosts_free(struct snap_part *part)
{
    struct snap_hosts *p = (struct snap_hosts *)part;
    named_entries_free(p->names, p->v, p->len, sizeof(*p->v));
}

struct snap_apps *snap_apps_new(struct snap_app *v, size_t len)
{
    return snap_apps_new_packed(v, len, NULL);
}

struct snap_hosts *snap_hosts_new(struct snap_host *v, size_t len)
{
    return snap_hosts_new_packed(v, len, NULL);
}

struct snap_apps *snap_apps_new_packed(struct snap_app *v, size_t len, char *block)
{
    struct snap_apps p = {.v = v, .len = len, .keys = block};
    return part_dup(&p, sizeof(p), apps_free);
}

struct snap_hosts *snap_hosts_new_packed(struct snap_host *v, size_t len, char *block)
{
    struct snap_hosts p = {.v = v, .len = len, .names = block};
    return part_dup(&p, sizeof(p), hosts_free);
}

void snap_apps_unref(struct snap_apps *p)
{
    part_unref(p);
}

void snap_hosts_unref(struct snap_hosts *p)
{
    part_unref(p);
}

static void recents_free(struct snap_part *part)
{
    struct snap_recents *p = (struct snap_recents *)part;
    for (size_t i = 0; i < p->len; i++)
        free(p->v[i].key_json);
    free(p->v);
}

struct snap_recents *snap_recents_new(struct snap_recent *v, size_t len)
{
    struct snap_recents p = {.v = v, .len = len};
    for (size_t i = 0; i < len; i++)
        p.key_json_bytes += strlen(v[i].key_json);
    return part_dup(&p, sizeof(p), recents_free);
}

void snap_recents_unref(struct snap_recents *p)
{
    part_unref(p);
}

static void text_free(struct snap_part *part)
{
    struct snap_text *p = (struct snap_text *)part;
    free(p->debug_vars_json);
    free(p->prometheus);
}

struct snap_text *snap_text_new(char *debug_vars_json, size_t debug_vars_len, char *prometheus,
                                size_t prometheus_len)
{
    struct snap_text p = {.debug_vars_json = debug_vars_json,
                          .debug_vars_len = debug_vars_len,
                          .prometheus = prometheus,
                          .prometheus_len = prometheus_len};
    return part_dup(&p, sizeof(p), text_free);
}

struct snap_text *snap_text_ref(struct snap_text *p)
{
    part_ref(p);
    return p;
}

void snap_text_unref(struct snap_text *p)
{
    part_unref(p);
}

static void services_free(struct snap_service *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        free(v[i].domain);
        free(v[i].service_id);
    }
    free(v);
}

static void leaders_free(struct snap_part *part)
{
    struct snap_leader *l = &((struct snap_leaders *)part)->l;
    free(l->leader_id);
    free(l->state);
    free(l->service_id);
    free(l->domain);
    free(l->share_domain);
    services_free(l->share_services, l->share_services_len);
    services_free(l->domain_services, l->domain_services_len);
}

struct snap_leaders *snap_leaders_new(const struct snap_leader *l)
{
    struct snap_leaders p = {.l = *l};
    return part_dup(&p, sizeof(p), leaders_free);
}

void snap_leaders_unref(struct snap_leaders *p)
{
    part_unref(p);
}

static void rules_free(struct snap_part *part)
{
    struct snap_rules *p = (struct snap_rules *)part;
    named_entries_free(p->keys, p->v, p->len, sizeof(*p->v));
}

_Static_assert(offsetof(struct snap_rule, key) == 0, "a rule entry begins with its name");

struct snap_rules *snap_rules_new_packed(struct snap_rule *v, size_t len, char *block)
{
    struct snap_rules p = {.v = v, .len = len, .keys = block};
    return part_dup(&p, sizeof(p), rules_free);
}

void snap_rules_unref(struct snap_rules *p)
{
    part_unref(p);
}

/* ---- snapshots ---- */

static void audit_free(struct snap_part *part)
{
    free(((struct snap_audit *)part)->v);
}

struct snap_audit *snap_audit_new(struct audit_record *v, size_t len)
{
    struct snap_audit p = {.v = v, .len = len};
    return part_dup(&p, sizeof(p), audit_free);
}

void snap_audit_unref(struct snap_audit *p)
{
    part_unref(p);
}

/* Calls @fn on each part of @s (NULL ones included). */
static void each_part(const struct snapshot *s, void (*fn)(void *part))
{
    void *parts[] = {s->clusters, s->probes, s->apps,  s->hosts, s->recents,
                     s->text,     s->leader, s->rules, s->audit};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        fn(parts[i]);
}

void snapshot_parts_unref(struct snapshot *s)
{
    each_part(s, part_unref);
}

static void box_free(struct snapshot_box *b)
{
    snapshot_parts_unref(&b->s);
    free(b);
}

static void on_rcu_free(struct rcu_head *head)
{
    GRACE_ELAPSED();
    box_free((struct snapshot_box *)(void *)((char *)head - offsetof(struct snapshot_box, rcu)));
}

void snapshot_init(void)
{
    atomic_store(&current, NULL);
}

void snapshot_shutdown(void)
{
    struct snapshot_box *old = atomic_exchange(&current, NULL);
    synchronize_rcu();
    if (old != NULL)
        box_free(old);
    rcu_barrier();
}

void snapshot_publish(const struct snapshot *tmpl)
{
    struct snapshot_box *b = xcalloc(1, sizeof(*b));
    b->s = *tmpl;
    each_part(&b->s, part_ref);
    struct snapshot_box *old = atomic_exchange_explicit(&current, b, memory_order_acq_rel);
    if (old != NULL) {
        GRACE_BEFORE_FREE();
        call_rcu(&old->rcu, on_rcu_free);
    }
}

struct deferred {
    struct rcu_head rcu;
    void (*fn)(void *arg);
    void *arg;
};

static void on_rcu_deferred(struct rcu_head *head)
{
    GRACE_ELAPSED();
    struct deferred *d = (struct deferred *)(void *)((char *)head - offsetof(struct deferred, rcu));
    d->fn(d->arg);
    free(d);
}

void snapshot_defer(void (*fn)(void *arg), void *arg)
{
    struct deferred *d = xcalloc(1, sizeof(*d));
    d->fn = fn;
    d->arg = arg;
    GRACE_BEFORE_FREE();
    call_rcu(&d->rcu, on_rcu_deferred);
}

const struct snapshot *snapshot_acquire(void)
{
    rcu_read_lock();
    struct snapshot_box *b = atomic_load_explicit(&current, memory_order_acquire);
    return b ? &b->s : NULL;
}

void snapshot_release(const struct snapshot *s)
{
    (void)s;
    GRACE_BEFORE_FREE();
    rcu_read_unlock();
}

static int cmp_cluster_name(const void *name, const void *c)
{
    return strcmp(name, ((const struct snap_cluster *)c)->name);
}

static int cmp_probes_metric(const void *metric, const void *set)
{
    return strcmp(metric, ((const struct snap_probe_set *)set)->metric);
}

static int cmp_app_key(const void *key, const void *a)
{
    return strcmp(key, ((const struct snap_app *)a)->key);
}

const struct snap_cluster *snapshot_find_cluster(const struct snapshot *s, const char *name)
{
    if (s == NULL || s->clusters == NULL)
        return NULL;
    return bsearch(name, s->clusters->v, s->clusters->len, sizeof(*s->clusters->v),
                   cmp_cluster_name);
}

const struct snap_probe_set *snapshot_find_probes(const struct snapshot *s, const char *metric)
{
    if (s == NULL || s->probes == NULL)
        return NULL;
    return bsearch(metric, s->probes->v, s->probes->len, sizeof(*s->probes->v), cmp_probes_metric);
}

const struct snap_metric *snap_cluster_metric(const struct snap_cluster *c, const char *metric)
{
    for (size_t i = 0; c != NULL && i < c->nmetrics; i++)
        if (strcmp(c->metrics[i].metric, metric) == 0)
            return &c->metrics[i];
    return NULL;
}

const struct snap_app *snapshot_find_app(const struct snapshot *s, const char *key)
{
    if (s == NULL || s->apps == NULL)
        return NULL;
    return bsearch(key, s->apps->v, s->apps->len, sizeof(*s->apps->v), cmp_app_key);
}

static int cmp_rule_key(const void *key, const void *r)
{
    return strcmp(key, ((const struct snap_rule *)r)->key);
}

const struct snap_rule *snapshot_find_rule(const struct snapshot *s, const char *key)
{
    if (s == NULL || s->rules == NULL)
        return NULL;
    return bsearch(key, s->rules->v, s->rules->len, sizeof(*s->rules->v), cmp_rule_key);
}
