/* SPDX-License-Identifier: MIT */
/* libuv loop plus a bounded command queue. HTTP threads queue commands under
 * queue_lock and wake the loop with uv_async_send; the loop hands them to the
 * handler one at a time. Nobody waits: each command's submitter is called
 * back once its answer is ready, and a command whose timeout passed is
 * answered by loop_cmd_expire() from another thread, so a late or stalled
 * loop still answers. A command timed out before the loop took it is dropped,
 * never applied. A command lives in a heap record shared by its submitter and
 * the loop, freed by whichever lets go of it last. */
#include "loop/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/clock.h"
#include "core/xalloc.h"
#include "log/log.h"

/* Answers handed out per pass of loop_cmd_expire(); callbacks run with the
 * lock released, so each pass collects at most this many. */
#define EXPIRE_BATCH 64

struct cmd_rec {
    struct loop_cmd cmd;  /* first: loop_cmd_finish() casts back */
    struct cmd_rec *next; /* in the queue */
    /* The fields below are under queue_lock; cmd's status and msg too. */
    uint64_t deadline_mono_ms;
    enum loop_cmd_outcome outcome; /* LOOP_CMD_PENDING until answered */
    bool dispatched;               /* the loop took it: it may be applied */
    bool held_by_submitter;
    bool held_by_loop; /* queued or in flight */
    loop_cmd_done_fn *done;
    void *done_arg;
};

struct loop {
    uv_loop_t uv;
    uv_async_t wake;
    loop_cmd_fn *cmd_fn;
    void *cmd_arg;
    loop_cmd_finished_fn *finish_fn;
    void *finish_arg;
    bool dispatching; /* loop thread only: dispatch() is on the stack */
    /* queue_lock protects everything below and the fields of every cmd_rec
     * marked so. Nothing blocks while holding it, and no callback runs under
     * it. */
    pthread_mutex_t queue_lock;
    struct cmd_rec *head; /* queued, not taken by the loop yet */
    struct cmd_rec *tail;
    uv_timer_t heartbeat;
    uv_timer_t defer_timer;          /* runs the deferred calls; loop thread */
    struct loop_deferred defer_head; /* the queue's sentinel */
    _Atomic uint64_t alive_boot_ms;  /* written by the loop, read by any thread */
    struct cmd_rec *inflight;        /* taken, not finished; at most one */
    unsigned held;                   /* records held by the loop: queued + in flight */
    unsigned queue_max;
    bool closed;
    struct loop_cmd_stats stats;
};

static void rec_free_if_unheld(struct cmd_rec *r)
{
    if (!r->held_by_loop && !r->held_by_submitter)
        free(r);
}

/* Under queue_lock. */
static void rec_loop_release(struct loop *l, struct cmd_rec *r)
{
    r->held_by_loop = false;
    l->held--;
    rec_free_if_unheld(r);
}

/* Takes the next command the loop should carry out off the queue, dropping
 * those whose clients already have their answer. Under queue_lock. */
static struct cmd_rec *queue_take(struct loop *l)
{
    while (l->head != NULL) {
        struct cmd_rec *r = l->head;
        l->head = r->next;
        if (l->head == NULL)
            l->tail = NULL;
        r->next = NULL;
        if (r->outcome == LOOP_CMD_PENDING) {
            r->dispatched = true;
            return r;
        }
        l->stats.dropped++;
        rec_loop_release(l, r);
    }
    return NULL;
}

/* Records the loop's answer to @r, calls its submitter back and lets go of
 * it; the next command is not started here. Loop thread. */
static void complete(struct loop *l, struct cmd_rec *r, int status, const char *msg)
{
    loop_cmd_done_fn *done = NULL;
    void *arg = NULL;
    bool late = false;
    char name[sizeof(r->cmd.name)];
    pthread_mutex_lock(&l->queue_lock);
    if (l->inflight == r)
        l->inflight = NULL;
    if (r->outcome == LOOP_CMD_PENDING) {
        r->cmd.status = status;
        snprintf(r->cmd.msg, sizeof(r->cmd.msg), "%s",
                 msg ? msg : (status == 200 ? "OK" : "error"));
        r->outcome = LOOP_CMD_ANSWERED;
        done = r->done;
        arg = r->done_arg;
    } else if (r->outcome == LOOP_CMD_EXPIRED_RUNNING) {
        late = true;
        memcpy(name, r->cmd.name, sizeof(name));
    }
    rec_loop_release(l, r);
    pthread_mutex_unlock(&l->queue_lock);
    /* Its client was told the outcome is unknown; the log knows it. */
    if (late)
        log_info("loop: command for %s finished after its client timed out: %d %s", name, status,
                 msg ? msg : "");
    if (done != NULL)
        done(arg);
}

/* Hands queued commands to the handler while none is in flight. A handler
 * that finishes at once re-enters through loop_cmd_finish(), which the
 * dispatching flag turns into one more turn of this loop. Loop thread. */
static void dispatch(struct loop *l)
{
    if (l->dispatching)
        return;
    l->dispatching = true;
    for (;;) {
        pthread_mutex_lock(&l->queue_lock);
        struct cmd_rec *r = NULL;
        if (l->inflight == NULL) {
            r = queue_take(l);
            l->inflight = r;
        }
        pthread_mutex_unlock(&l->queue_lock);
        if (r == NULL)
            break;
        if (l->cmd_fn != NULL)
            l->cmd_fn(&r->cmd, l->cmd_arg);
        else
            complete(l, r, 500, "not ready");
    }
    l->dispatching = false;
}

static void on_wake(uv_async_t *h)
{
    dispatch(h->data);
}

/* ---- heartbeat: proof of life for readers that cannot wait for the loop ---- */

static void on_heartbeat(uv_timer_t *h)
{
    struct loop *l = h->data;
    atomic_store_explicit(&l->alive_boot_ms, clock_boot_ms(), memory_order_release);
}

/* The timer does not keep the loop running: loop_stop() and the last
 * handle's close still end it. */
static void heartbeat_start(struct loop *l)
{
    atomic_init(&l->alive_boot_ms, clock_boot_ms());
    uv_timer_init(&l->uv, &l->heartbeat);
    l->heartbeat.data = l;
    uv_timer_start(&l->heartbeat, on_heartbeat, LOOP_HEARTBEAT_MS, LOOP_HEARTBEAT_MS);
    uv_unref((uv_handle_t *)&l->heartbeat);
}

uint64_t loop_alive_boot_ms(struct loop *l)
{
    return atomic_load_explicit(&l->alive_boot_ms, memory_order_acquire);
}

struct loop *loop_new(void)
{
    struct loop *l = xcalloc(1, sizeof(*l));
    if (uv_loop_init(&l->uv) != 0) {
        free(l);
        return NULL;
    }
    uv_async_init(&l->uv, &l->wake, on_wake);
    l->wake.data = l;
    pthread_mutex_init(&l->queue_lock, NULL);
    heartbeat_start(l);
    uv_timer_init(&l->uv, &l->defer_timer);
    l->defer_timer.data = l;
    l->defer_head.prev = l->defer_head.next = &l->defer_head;
    l->queue_max = LOOP_CMD_QUEUE_MAX_DEFAULT;
    return l;
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void loop_free(struct loop *l)
{
    if (l == NULL)
        return;
    uv_walk(&l->uv, on_walk_close, NULL);
    uv_run(&l->uv, UV_RUN_DEFAULT);
    if (uv_loop_close(&l->uv) != 0)
        log_warn("loop: handles still open at exit");
    /* Submitters are gone by now (the HTTP server stops first); what is left
     * is the loop's share of records nobody carried out. */
    pthread_mutex_lock(&l->queue_lock);
    while (l->head != NULL) {
        struct cmd_rec *r = l->head;
        l->head = r->next;
        rec_loop_release(l, r);
    }
    l->tail = NULL;
    if (l->inflight != NULL) {
        rec_loop_release(l, l->inflight);
        l->inflight = NULL;
    }
    pthread_mutex_unlock(&l->queue_lock);
    pthread_mutex_destroy(&l->queue_lock);
    free(l);
}

void *loop_uv(struct loop *l)
{
    return &l->uv;
}

int loop_run(struct loop *l)
{
    return uv_run(&l->uv, UV_RUN_DEFAULT);
}

void loop_stop(struct loop *l)
{
    uv_stop(&l->uv);
}

void loop_set_cmd_handler(struct loop *l, loop_cmd_fn *fn, void *arg)
{
    l->cmd_fn = fn;
    l->cmd_arg = arg;
}

void loop_set_queue_max(struct loop *l, unsigned max)
{
    pthread_mutex_lock(&l->queue_lock);
    l->queue_max = max > 0 ? max : 1;
    pthread_mutex_unlock(&l->queue_lock);
}

int loop_cmd_submit(struct loop *l, const struct loop_cmd *cmd, uint32_t timeout_ms,
                    loop_cmd_done_fn *done, void *arg, struct loop_ticket **out)
{
    *out = NULL;
    struct cmd_rec *r = xcalloc(1, sizeof(*r));
    r->cmd = *cmd;
    r->cmd.status = 0;
    r->cmd.msg[0] = '\0';
    r->deadline_mono_ms = clock_mono_ms() + timeout_ms;
    r->outcome = LOOP_CMD_PENDING;
    r->held_by_submitter = true;
    r->held_by_loop = true;
    r->done = done;
    r->done_arg = arg;

    int rc = 0;
    pthread_mutex_lock(&l->queue_lock);
    if (l->closed) {
        rc = -ESHUTDOWN;
    } else if (l->held >= l->queue_max) {
        l->stats.refused_full++;
        rc = -EAGAIN;
    } else {
        if (l->tail != NULL)
            l->tail->next = r;
        else
            l->head = r;
        l->tail = r;
        l->held++;
        l->stats.submitted++;
        /* Set before the lock goes: the answer may come at any moment now. */
        *out = (struct loop_ticket *)r;
    }
    pthread_mutex_unlock(&l->queue_lock);
    if (rc < 0) {
        free(r);
        return rc;
    }
    uv_async_send(&l->wake);
    return 0;
}

enum loop_cmd_outcome loop_ticket_result(struct loop *l, const struct loop_ticket *t,
                                         struct loop_cmd *out)
{
    const struct cmd_rec *r = (const struct cmd_rec *)t;
    pthread_mutex_lock(&l->queue_lock);
    *out = r->cmd;
    enum loop_cmd_outcome o = r->outcome;
    pthread_mutex_unlock(&l->queue_lock);
    return o;
}

void loop_ticket_release(struct loop *l, struct loop_ticket *t)
{
    if (t == NULL)
        return;
    struct cmd_rec *r = (struct cmd_rec *)t;
    pthread_mutex_lock(&l->queue_lock);
    if (r->outcome == LOOP_CMD_PENDING)
        r->outcome = r->dispatched ? LOOP_CMD_EXPIRED_RUNNING : LOOP_CMD_EXPIRED_QUEUED;
    r->held_by_submitter = false;
    rec_free_if_unheld(r);
    pthread_mutex_unlock(&l->queue_lock);
}

/* Marks @r answered with the outcome that fits its state and collects its
 * callback. Under queue_lock. */
static void answer_locked(struct loop *l, struct cmd_rec *r, bool closing, loop_cmd_done_fn **done,
                          void **arg)
{
    if (closing) {
        r->outcome = LOOP_CMD_SHUT_DOWN;
    } else if (r->dispatched) {
        r->outcome = LOOP_CMD_EXPIRED_RUNNING;
        l->stats.expired_running++;
    } else {
        r->outcome = LOOP_CMD_EXPIRED_QUEUED;
        l->stats.expired_queued++;
    }
    *done = r->done;
    *arg = r->done_arg;
}

static bool is_due(const struct cmd_rec *r, bool closing, uint64_t now_mono_ms)
{
    return r->outcome == LOOP_CMD_PENDING && (closing || r->deadline_mono_ms <= now_mono_ms);
}

/* Answers every pending command that is due (all of them when @closing),
 * calling back with the lock released. */
static size_t answer_due(struct loop *l, bool closing, uint64_t now_mono_ms)
{
    size_t total = 0;
    for (;;) {
        loop_cmd_done_fn *fns[EXPIRE_BATCH];
        void *args[EXPIRE_BATCH];
        size_t n = 0;
        pthread_mutex_lock(&l->queue_lock);
        if (closing)
            l->closed = true;
        if (l->inflight != NULL && is_due(l->inflight, closing, now_mono_ms)) {
            answer_locked(l, l->inflight, closing, &fns[n], &args[n]);
            n++;
        }
        for (struct cmd_rec *r = l->head; r != NULL && n < EXPIRE_BATCH; r = r->next) {
            if (is_due(r, closing, now_mono_ms)) {
                answer_locked(l, r, closing, &fns[n], &args[n]);
                n++;
            }
        }
        pthread_mutex_unlock(&l->queue_lock);
        /* The records stay held by their submitters until these calls
         * returned and they released them, so the pointers stay good. */
        for (size_t i = 0; i < n; i++) {
            if (fns[i] != NULL)
                fns[i](args[i]);
        }
        total += n;
        if (n < EXPIRE_BATCH)
            return total;
    }
}

size_t loop_cmd_expire(struct loop *l, uint64_t now_mono_ms)
{
    return answer_due(l, false, now_mono_ms);
}

void loop_cmd_close(struct loop *l)
{
    answer_due(l, true, 0);
}

void loop_cmd_finish(struct loop *l, struct loop_cmd *cmd, int status, const char *msg)
{
    if (l->finish_fn != NULL)
        l->finish_fn(cmd, status, msg != NULL ? msg : (status == 200 ? "OK" : "error"),
                     l->finish_arg);
    complete(l, (struct cmd_rec *)cmd, status, msg);
    dispatch(l);
}

void loop_set_finish_hook(struct loop *l, loop_cmd_finished_fn *fn, void *arg)
{
    l->finish_fn = fn;
    l->finish_arg = arg;
}

struct loop_cmd_stats loop_cmd_stats(struct loop *l)
{
    pthread_mutex_lock(&l->queue_lock);
    struct loop_cmd_stats s = l->stats;
    pthread_mutex_unlock(&l->queue_lock);
    return s;
}

uint64_t loop_now_ms(struct loop *l)
{
    (void)l;
    return clock_wall_ms();
}

/* ---- deferred calls: one queue, one timer ---- */

static void deferred_unlink(struct loop_deferred *d)
{
    d->prev->next = d->next;
    d->next->prev = d->prev;
    d->prev = d->next = d;
    d->queued = false;
}

/* Runs the calls queued so far. The batch is moved to a sentinel of its own
 * first, so calls deferred meanwhile wait for the next batch, and a call may
 * cancel (or free the owner of) any other one still waiting. */
static void on_defer_timer(uv_timer_t *h)
{
    struct loop *l = h->data;
    if (l->defer_head.next == &l->defer_head)
        return; /* every call queued was cancelled */
    struct loop_deferred batch;
    batch.next = l->defer_head.next;
    batch.prev = l->defer_head.prev;
    batch.next->prev = &batch;
    batch.prev->next = &batch;
    l->defer_head.prev = l->defer_head.next = &l->defer_head;
    while (batch.next != &batch) {
        struct loop_deferred *d = batch.next;
        deferred_unlink(d);
        d->fn(d);
    }
}

void loop_deferred_init(struct loop_deferred *d, loop_deferred_fn *fn)
{
    d->prev = d->next = d;
    d->fn = fn;
    d->queued = false;
    d->gate_place = false;
}

void loop_defer(struct loop *l, struct loop_deferred *d)
{
    if (d->queued)
        return;
    bool was_empty = l->defer_head.next == &l->defer_head;
    d->prev = l->defer_head.prev;
    d->next = &l->defer_head;
    d->prev->next = d;
    l->defer_head.prev = d;
    d->queued = true;
    if (was_empty)
        uv_timer_start(&l->defer_timer, on_defer_timer, 0, 0);
}

void loop_defer_cancel(struct loop *l, struct loop_deferred *d)
{
    (void)l;
    if (d->queued)
        deferred_unlink(d);
}

/* ---- gates: a bound on operations at once ---- */

void loop_gate_init(struct loop_gate *g, struct loop *l, unsigned max)
{
    g->loop = l;
    g->max = max > 0 ? max : 1;
    g->inside = 0;
    g->waiting.prev = g->waiting.next = &g->waiting;
}

/* Hands free places to the first waiters: each is deferred holding its
 * place, so a newcomer in the same loop turn cannot take it. */
static void gate_wake(struct loop_gate *g)
{
    while (g->inside < g->max && g->waiting.next != &g->waiting) {
        struct loop_deferred *d = g->waiting.next;
        deferred_unlink(d);
        d->gate_place = true;
        g->inside++;
        loop_defer(g->loop, d);
    }
}

bool loop_gate_enter(struct loop_gate *g, struct loop_deferred *d)
{
    if (d->gate_place) {
        d->gate_place = false;
        return true;
    }
    if (d->queued)
        deferred_unlink(d);
    if (g->inside < g->max && g->waiting.next == &g->waiting) {
        g->inside++;
        return true;
    }
    d->prev = g->waiting.prev;
    d->next = &g->waiting;
    d->prev->next = d;
    g->waiting.prev = d;
    d->queued = true;
    return false;
}

void loop_gate_leave(struct loop_gate *g)
{
    if (g->inside > 0)
        g->inside--;
    gate_wake(g);
}

void loop_gate_cancel(struct loop_gate *g, struct loop_deferred *d)
{
    if (d->queued)
        deferred_unlink(d);
    if (d->gate_place) {
        d->gate_place = false;
        loop_gate_leave(g);
    }
}

unsigned loop_gate_inside(const struct loop_gate *g)
{
    return g->inside;
}

unsigned loop_gate_waiting(const struct loop_gate *g)
{
    unsigned n = 0;
    for (const struct loop_deferred *d = g->waiting.next; d != &g->waiting; d = d->next)
        n++;
    return n;
}
