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

#include "core/xalloc.h"

struct snapshot_box {
    struct snapshot s; /* first: readers get &box->s */
    struct rcu_head rcu;
};

/* RCU-protected; written by the loop only. A C11 atomic rather than
 * rcu_assign_pointer/rcu_dereference: same code on x86 and ARM, and
 * ThreadSanitizer understands the publication. */
static _Atomic(struct snapshot_box *) current;

/* liburcu's grace periods and call_rcu hand-off are invisible to
 * ThreadSanitizer: tell it that every read-side section, and the publisher's
 * writes, come before call_rcu frees a snapshot. */
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
static char grace_token;
#define GRACE_BEFORE_FREE() __tsan_release(&grace_token)
#define GRACE_ELAPSED()     __tsan_acquire(&grace_token)
#else
#define GRACE_BEFORE_FREE() ((void)0)
#define GRACE_ELAPSED()     ((void)0)
#endif

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

#define PART_REF(p)   atomic_fetch_add_explicit(&(p)->refs, 1, memory_order_relaxed)
#define PART_UNREF(p) (atomic_fetch_sub_explicit(&(p)->refs, 1, memory_order_acq_rel) == 1)

struct snap_metrics *snap_metrics_new(struct snap_metric *v, size_t len)
{
    struct snap_metrics *p = xcalloc(1, sizeof(*p));
    atomic_init(&p->refs, 1);
    p->v = v;
    p->len = len;
    return p;
}

void snap_metrics_unref(struct snap_metrics *p)
{
    if (p == NULL || !PART_UNREF(p))
        return;
    for (size_t i = 0; i < p->len; i++) {
        free(p->v[i].name);
        free(p->v[i].err);
        metric_live_unref(p->v[i].live);
    }
    free(p->v);
    free(p);
}

struct snap_apps *snap_apps_new(struct snap_app *v, size_t len)
{
    struct snap_apps *p = xcalloc(1, sizeof(*p));
    atomic_init(&p->refs, 1);
    p->v = v;
    p->len = len;
    return p;
}

struct snap_apps *snap_apps_new_packed(struct snap_app *v, size_t len, char *block)
{
    struct snap_apps *p = snap_apps_new(v, len);
    p->keys = block;
    return p;
}

void snap_apps_unref(struct snap_apps *p)
{
    if (p == NULL || !PART_UNREF(p))
        return;
    if (p->keys != NULL)
        free(p->keys);
    else
        for (size_t i = 0; i < p->len; i++)
            free(p->v[i].key);
    free(p->v);
    free(p);
}

struct snap_hosts *snap_hosts_new(struct snap_host *v, size_t len)
{
    struct snap_hosts *p = xcalloc(1, sizeof(*p));
    atomic_init(&p->refs, 1);
    p->v = v;
    p->len = len;
    return p;
}

struct snap_hosts *snap_hosts_new_packed(struct snap_host *v, size_t len, char *block)
{
    struct snap_hosts *p = snap_hosts_new(v, len);
    p->names = block;
    return p;
}

void snap_hosts_unref(struct snap_hosts *p)
{
    if (p == NULL || !PART_UNREF(p))
        return;
    if (p->names != NULL)
        free(p->names);
    else
        for (size_t i = 0; i < p->len; i++)
            free(p->v[i].host);
    free(p->v);
    free(p);
}

struct snap_recents *snap_recents_new(struct snap_recent *v, size_t len)
{
    struct snap_recents *p = xcalloc(1, sizeof(*p));
    atomic_init(&p->refs, 1);
    p->v = v;
    p->len = len;
    for (size_t i = 0; i < len; i++)
        p->key_json_bytes += strlen(v[i].key_json);
    return p;
}

void snap_recents_unref(struct snap_recents *p)
{
    if (p == NULL || !PART_UNREF(p))
        return;
    for (size_t i = 0; i < p->len; i++)
        free(p->v[i].key_json);
    free(p->v);
    free(p);
}

struct snap_text *snap_text_new(char *debug_vars_json, size_t debug_vars_len, char *prometheus,
                                size_t prometheus_len)
{
    struct snap_text *p = xcalloc(1, sizeof(*p));
    atomic_init(&p->refs, 1);
    p->debug_vars_json = debug_vars_json;
    p->debug_vars_len = debug_vars_len;
    p->prometheus = prometheus;
    p->prometheus_len = prometheus_len;
    return p;
}

struct snap_text *snap_text_ref(struct snap_text *p)
{
    PART_REF(p);
    return p;
}

void snap_text_unref(struct snap_text *p)
{
    if (p == NULL || !PART_UNREF(p))
        return;
    free(p->debug_vars_json);
    free(p->prometheus);
    free(p);
}

struct snap_leaders *snap_leaders_new(const struct snap_leader *l)
{
    struct snap_leaders *p = xcalloc(1, sizeof(*p));
    atomic_init(&p->refs, 1);
    p->l = *l;
    return p;
}

static void services_free(struct snap_service *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        free(v[i].domain);
        free(v[i].service_id);
    }
    free(v);
}

void snap_leaders_unref(struct snap_leaders *p)
{
    if (p == NULL || !PART_UNREF(p))
        return;
    free(p->l.leader_id);
    free(p->l.state);
    free(p->l.service_id);
    free(p->l.domain);
    free(p->l.share_domain);
    services_free(p->l.share_services, p->l.share_services_len);
    services_free(p->l.domain_services, p->l.domain_services_len);
    free(p);
}

void snapshot_parts_unref(struct snapshot *s)
{
    snap_metrics_unref(s->metrics);
    snap_apps_unref(s->apps);
    snap_hosts_unref(s->hosts);
    snap_recents_unref(s->recents);
    snap_text_unref(s->text);
    snap_leaders_unref(s->leader);
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
    if (b->s.metrics)
        PART_REF(b->s.metrics);
    if (b->s.apps)
        PART_REF(b->s.apps);
    if (b->s.hosts)
        PART_REF(b->s.hosts);
    if (b->s.recents)
        PART_REF(b->s.recents);
    if (b->s.text)
        PART_REF(b->s.text);
    if (b->s.leader)
        PART_REF(b->s.leader);
    struct snapshot_box *old = atomic_exchange_explicit(&current, b, memory_order_acq_rel);
    if (old != NULL) {
        GRACE_BEFORE_FREE();
        call_rcu(&old->rcu, on_rcu_free);
    }
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

const struct snap_metric *snapshot_find_metric(const struct snapshot *s, const char *cluster)
{
    if (s == NULL || s->metrics == NULL)
        return NULL;
    size_t lo = 0, hi = s->metrics->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(cluster, s->metrics->v[mid].cluster);
        if (c == 0)
            return &s->metrics->v[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const struct snap_app *snapshot_find_app(const struct snapshot *s, const char *key)
{
    if (s == NULL || s->apps == NULL)
        return NULL;
    size_t lo = 0, hi = s->apps->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, s->apps->v[mid].key);
        if (c == 0)
            return &s->apps->v[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
