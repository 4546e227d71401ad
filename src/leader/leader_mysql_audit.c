/* SPDX-License-Identifier: MIT */
/* The audit trail with the MySQL backend (docs/ha.md#audit-log): finished
 * control commands are queued (bounded) and inserted in batches on a
 * connection of their own, so that a slow or missing audit_log never delays
 * an operator command or a reload; the rows every node writes are read back
 * for GET /audit-log; and the leader deletes rows past AuditLogMaxDays and
 * AuditLogMaxRows. Without the table the daemon says so once, keeps the
 * node's own entries in memory, and looks for the table again every minute.
 * Loop thread. */
#include "leader/leader_mysql_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/xalloc.h"
#include "log/log.h"
#include "loop/loop_timer.h"

/* Records waiting for the table, at most; past it the oldest is dropped
 * (and counted in a log line): the log line of each stays. */
#define AUDIT_QUEUE_MAX 256
/* Rows one insert carries. */
#define AUDIT_BATCH 32
/* How often new rows are read back, and failed inserts retried. */
#define AUDIT_TICK_MS 2000
/* How often the leader deletes old rows, and how many per statement. */
#define AUDIT_PRUNE_EVERY_MS 60000
#define AUDIT_PRUNE_BATCH    1000
/* How long a missing table is believed missing. */
#define AUDIT_MISSING_RETRY_MS 60000
/* The MySQL error of a statement on a table that does not exist. */
#define ER_NO_SUCH_TABLE 1146

enum audit_job { JOB_IDLE, JOB_INSERT, JOB_SELECT, JOB_PRUNE };

struct mysql_audit {
    struct mysql_leader *m;
    struct myconn *conn;
    uv_timer_t *timer;
    int64_t max_days;
    int64_t max_rows;
    struct audit_record q[AUDIT_QUEUE_MAX]; /* a ring: q[head] is the oldest */
    size_t head;
    size_t len;
    size_t sending; /* records in the insert in flight */
    uint64_t dropped;
    enum audit_job job;
    bool want_select;
    bool failed; /* the last statement failed: wait for the next tick */
    uint64_t last_id;
    bool missing;
    uint64_t retry_at_ms;
    uint64_t prune_at_ms;
    int prune_step; /* 0: by age, 1: by count */
    struct chan chan;
};

static void kick(struct mysql_audit *a);

static struct audit_record *queue_at(struct mysql_audit *a, size_t i)
{
    return &a->q[(a->head + i) % AUDIT_QUEUE_MAX];
}

static void queue_push(struct mysql_audit *a, const struct audit_record *r)
{
    if (a->len == AUDIT_QUEUE_MAX) {
        /* The batch in flight stays (sending <= AUDIT_BATCH < the queue);
         * the oldest waiting record goes. */
        for (size_t i = a->sending; i + 1 < a->len; i++)
            *queue_at(a, i) = *queue_at(a, i + 1);
        a->len--;
        if (a->dropped++ % 100 == 0)
            log_warn("leader: backend %s: audit_log: %d records wait for the table; %" PRIu64
                     " dropped so far (their log lines stay)",
                     a->m->backend, AUDIT_QUEUE_MAX, a->dropped);
    }
    *queue_at(a, a->len++) = *r;
}

/* Keeps @r in memory only, shown at GET /audit-log: the table is missing. */
static void keep_in_memory(struct mysql_audit *a, const struct audit_record *r)
{
    audit_ring_push(&a->m->l->audit, r);
    leader_show_audit(a->m->l, &a->m->l->audit);
}

static void on_missing(struct mysql_audit *a)
{
    if (!a->missing)
        log_warn(
                "leader: backend %s: table audit_log is missing (create it with freno --init-backend, or from sql/backend-schema.sql); the audit trail stays in the log and in memory, and the table is looked for again every %d s",
                a->m->backend, AUDIT_MISSING_RETRY_MS / 1000);
    a->missing = true;
    a->retry_at_ms = clock_mono_ms() + AUDIT_MISSING_RETRY_MS;
    for (size_t i = 0; i < a->len; i++)
        keep_in_memory(a, queue_at(a, i));
    a->len = a->sending = 0;
}

/* Handles a failed statement: a missing table, or a failure retried at
 * the next tick. */
static void job_failed(struct mysql_audit *a, const struct myconn *c, enum myconn_status status,
                       const char *msg)
{
    if (status == MYCONN_ERR_QUERY && myconn_last_errno(c) == ER_NO_SUCH_TABLE) {
        on_missing(a);
        return;
    }
    leader_mysql_chan_fail(a->m, &a->chan, status, msg);
    a->failed = true;
}

static void table_found(struct mysql_audit *a)
{
    if (a->missing)
        log_info("leader: backend %s: table audit_log found: the audit trail goes to it",
                 a->m->backend);
    a->missing = false;
    leader_mysql_chan_ok(a->m, &a->chan);
}

static void on_insert(struct myconn *c, enum myconn_status status, const struct myresult *res,
                      const char *errmsg, void *arg)
{
    (void)res;
    struct mysql_audit *a = arg;
    a->job = JOB_IDLE;
    if (status != MYCONN_OK) {
        a->sending = 0;
        job_failed(a, c, status, errmsg);
        kick(a);
        return;
    }
    table_found(a);
    a->head = (a->head + a->sending) % AUDIT_QUEUE_MAX;
    a->len -= a->sending;
    a->sending = 0;
    a->want_select = true;
    kick(a);
}

static void on_select(struct myconn *c, enum myconn_status status, const struct myresult *res,
                      const char *errmsg, void *arg)
{
    struct mysql_audit *a = arg;
    a->job = JOB_IDLE;
    if (status != MYCONN_OK) {
        job_failed(a, c, status, errmsg);
        kick(a);
        return;
    }
    table_found(a);
    bool changed = false;
    for (size_t i = 0; i < res->nrows && res->ncols >= 9; i++) {
        struct audit_record r;
        uint64_t id = backend_parse_audit(res->cells + i * res->ncols, &r);
        if (id == 0)
            continue; /* a row we did not write: not shown */
        if (id > a->last_id)
            a->last_id = id;
        audit_ring_push(&a->m->l->audit, &r);
        changed = true;
    }
    if (changed)
        leader_show_audit(a->m->l, &a->m->l->audit);
    kick(a);
}

static void on_prune(struct myconn *c, enum myconn_status status, const struct myresult *res,
                     const char *errmsg, void *arg)
{
    struct mysql_audit *a = arg;
    a->job = JOB_IDLE;
    if (status != MYCONN_OK) {
        /* Not again before the next round (a missing DELETE grant would
         * fail every tick). */
        a->prune_step = 0;
        a->prune_at_ms = clock_mono_ms() + AUDIT_PRUNE_EVERY_MS;
        job_failed(a, c, status, errmsg);
        kick(a);
        return;
    }
    /* A full batch: more to delete, at once; else the next step. */
    if (res == NULL || res->affected_rows < AUDIT_PRUNE_BATCH) {
        a->prune_step++;
        if (a->prune_step > 1) {
            a->prune_step = 0;
            a->prune_at_ms = clock_mono_ms() + AUDIT_PRUNE_EVERY_MS;
        }
    }
    kick(a);
}

/* Sends @sql (freed here) on the audit connection. */
static void audit_send(struct mysql_audit *a, char *sql, myconn_done_fn *cb)
{
    myconn_query(a->conn, sql, cb, a);
    free(sql);
}

static void kick(struct mysql_audit *a)
{
    if (a->job != JOB_IDLE || a->failed || a->m->stopping)
        return;
    uint64_t now = clock_mono_ms();
    if (a->missing && now < a->retry_at_ms)
        return;
    if (a->len > 0) {
        a->sending = a->len < AUDIT_BATCH ? a->len : AUDIT_BATCH;
        struct audit_record batch[AUDIT_BATCH];
        for (size_t i = 0; i < a->sending; i++)
            batch[i] = *queue_at(a, i);
        a->job = JOB_INSERT;
        audit_send(a, backend_sql_audit_insert(batch, a->sending, a->m->ids.service_id.sql),
                   on_insert);
        return;
    }
    if (a->want_select || a->missing) {
        a->want_select = false;
        a->job = JOB_SELECT;
        audit_send(a, backend_sql_audit_select(a->last_id, AUDIT_TRAIL_MAX), on_select);
        return;
    }
    /* Only the serving leader deletes, so nodes do not race each other. */
    if (a->m->serving && now >= a->prune_at_ms) {
        a->job = JOB_PRUNE;
        audit_send(
                a,
                backend_sql_audit_prune(a->prune_step, a->max_days, a->max_rows, AUDIT_PRUNE_BATCH),
                on_prune);
    }
}

static void on_tick(uv_timer_t *h)
{
    struct mysql_audit *a = h->data;
    a->failed = false;
    a->want_select = true;
    kick(a);
}

void leader_mysql_audit_start(struct mysql_leader *m, const struct config *cfg, struct myconn *conn)
{
    struct mysql_audit *a = xcalloc(1, sizeof(*a));
    a->m = m;
    a->conn = conn;
    a->max_days = cfg->audit_log_max_days;
    a->max_rows = cfg->audit_log_max_rows;
    a->chan.name = "audit_log";
    a->want_select = true;
    a->prune_at_ms = clock_mono_ms() + AUDIT_TICK_MS;
    m->audit = a;
    a->timer = loop_timer_start(m->loop, on_tick, a, AUDIT_TICK_MS, AUDIT_TICK_MS);
    kick(a);
}

void leader_mysql_audit_free(struct mysql_leader *m)
{
    struct mysql_audit *a = m->audit;
    if (a == NULL)
        return;
    loop_timer_close(&a->timer);
    myconn_free(a->conn);
    free(a);
    m->audit = NULL;
}

void leader_mysql_audit(struct leader *l, const struct audit_record *r)
{
    struct mysql_leader *m = l->impl;
    struct mysql_audit *a = m != NULL ? m->audit : NULL;
    if (a == NULL)
        return;
    if (a->missing && clock_mono_ms() < a->retry_at_ms) {
        keep_in_memory(a, r);
        return;
    }
    queue_push(a, r);
    kick(a);
}
