/* SPDX-License-Identifier: MIT */
/* Leader selection and what the implementations share (leader_impl.h), and
 * the in-memory local implementation used only when neither a backend nor a
 * raft data directory is configured (the config loader normally refuses
 * that): this node leads from the first instant and applies operator
 * commands directly. Loop thread. */
#include "leader/leader.h"

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/xalloc.h"
#include "leader/leader_impl.h"
#include "log/log.h"
#include "snapshot/snapshot.h"
#include "throttler/throttler.h"

static void local_submit(struct leader *l, struct loop_cmd *cmd)
{
    throttler_apply_cmd(l->p.throttler, cmd);
}

static void local_shutdown(struct leader *l)
{
    throttler_set_leader(l->p.throttler, false);
    leader_shutdown_finished(l);
}

static void local_free(struct leader *l)
{
    (void)l;
}

static const struct leader_ops forced_ops = {"forced", local_submit, local_shutdown, local_free,
                                             NULL};
static const struct leader_ops memory_ops = {"in-memory", local_submit, local_shutdown, local_free,
                                             NULL};

int leader_local_init(struct leader *l, struct err *err)
{
    (void)err;
    l->ops = l->p.force_leadership ? &forced_ops : &memory_ops;
    struct snap_leader s = leader_status(l, l->p.service_id, "Leader", l->p.service_id);
    s.is_leader = true;
    s.healthy = true;
    leader_publish(l, &s);
    throttler_set_leader(l->p.throttler, true);
    leader_set_known(l);
    return 0;
}

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

struct leader *leader_new(const struct leader_params *p, struct err *err)
{
    struct leader *l = xcalloc(1, sizeof(*l));
    l->p = *p;
    l->audit.cap = AUDIT_TRAIL_MAX;
    int rc;
    /* As in the original, a configured backend wins over raft settings.
     * RaftDataDir with no RaftNodes is raft's single-node mode. */
    if (is_set(p->cfg->backend_host))
        rc = leader_mysql_init(l, err);
    else if (is_set(p->cfg->raft_data_dir))
        rc = leader_raft_init(l, err);
    else
        rc = leader_local_init(l, err);
    if (rc < 0) {
        free(l->state);
        free(l->leader_id);
        free(l);
        return NULL;
    }
    log_info("leader: %s mode, service id %s", l->ops->kind, p->service_id);
    return l;
}

void leader_submit(struct leader *l, struct loop_cmd *cmd)
{
    l->ops->submit(l, cmd);
}

void leader_audit(struct leader *l, const struct audit_record *r)
{
    if (l->ops->audit != NULL) {
        l->ops->audit(l, r);
        return;
    }
    audit_ring_push(&l->audit, r);
    leader_show_audit(l, &l->audit);
}

void leader_show_audit(struct leader *l, const struct audit_ring *ring)
{
    throttler_set_audit(l->p.throttler, ring);
}

void leader_shutdown(struct leader *l, void (*done)(void *arg), void *arg)
{
    l->done = done;
    l->done_arg = arg;
    l->ops->shutdown(l);
}

void leader_shutdown_finished(struct leader *l)
{
    void (*done)(void *arg) = l->done;
    if (done == NULL)
        return;
    l->done = NULL;
    done(l->done_arg);
}

void leader_free(struct leader *l)
{
    if (l == NULL)
        return;
    l->done = NULL; /* what is torn down now is not a graceful stop */
    l->ops->free(l);
    free(l->state);
    free(l->leader_id);
    audit_ring_clear(&l->audit);
    free(l);
}

static void tell_role(struct leader *l)
{
    if (l->p.on_role == NULL)
        return;
    struct leader_role r = {
            .known = l->known,
            .is_leader = l->is_leader,
            .mode = l->ops != NULL ? l->ops->kind : "",
            .state = l->state != NULL ? l->state : "",
            .leader_id = l->leader_id != NULL ? l->leader_id : "",
    };
    l->p.on_role(&r, l->p.role_arg);
}

void leader_publish(struct leader *l, const struct snap_leader *s)
{
    bool changed = l->state == NULL || l->is_leader != s->is_leader ||
                   strcmp(l->state, s->state) != 0 || strcmp(l->leader_id, s->leader_id) != 0;
    if (changed) {
        l->is_leader = s->is_leader;
        free(l->state);
        l->state = xstrdup(s->state);
        free(l->leader_id);
        l->leader_id = xstrdup(s->leader_id);
    }
    throttler_set_leader_status(l->p.throttler, s);
    if (changed)
        tell_role(l);
}

void leader_set_known(struct leader *l)
{
    if (l->known)
        return;
    l->known = true;
    tell_role(l);
}

void leader_queue_push(struct leader_queue *q, struct leader_queued *e)
{
    e->next = NULL;
    if (q->tail != NULL)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
}

struct leader_queued *leader_queue_pop(struct leader_queue *q)
{
    struct leader_queued *e = q->head;
    if (e == NULL)
        return NULL;
    q->head = e->next;
    if (q->head == NULL)
        q->tail = NULL;
    e->next = NULL;
    return e;
}

struct snap_leader leader_status(const struct leader *l, const char *service_id, const char *state,
                                 const char *leader_id)
{
    const struct config *cfg = l->p.cfg;
    return (struct snap_leader){
            .leader_id = xstrdup(leader_id),
            .state = xstrdup(state),
            .service_id = xstrdup(service_id),
            .domain = xstrdup(cfg->domain ? cfg->domain : ""),
            .share_domain = xstrdup(cfg->share_domain ? cfg->share_domain : ""),
    };
}
