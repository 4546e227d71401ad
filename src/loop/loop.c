/* SPDX-License-Identifier: MIT */
/* libuv loop plus a command queue. HTTP threads enqueue under queue_lock and
 * wake the loop with uv_async_send; the loop answers each command and
 * broadcasts queue_cond. A command lives in a heap record shared by the
 * waiter and the loop, freed by whichever lets go of it last. */
#include "loop/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "core/clock.h"
#include "core/xalloc.h"
#include "log/log.h"

struct cmd_rec {
    struct loop_cmd cmd; /* first: loop_cmd_finish() casts back */
    struct cmd_rec *next;
    bool done;
    int refs; /* under queue_lock */
};

struct loop {
    uv_loop_t uv;
    uv_async_t wake;
    loop_cmd_fn *cmd_fn;
    void *cmd_arg;
    /* queue_lock protects head/tail and every cmd_rec's done/refs. */
    pthread_mutex_t queue_lock;
    pthread_cond_t queue_cond;
    struct cmd_rec *head;
    struct cmd_rec *tail;
    uv_timer_t heartbeat;
    _Atomic uint64_t alive_boot_ms; /* written by the loop, read by any thread */
};

static void rec_unref_locked(struct cmd_rec *r)
{
    if (--r->refs == 0)
        free(r);
}

static void on_wake(uv_async_t *h)
{
    struct loop *l = h->data;
    pthread_mutex_lock(&l->queue_lock);
    struct cmd_rec *list = l->head;
    l->head = l->tail = NULL;
    pthread_mutex_unlock(&l->queue_lock);
    while (list != NULL) {
        struct cmd_rec *r = list;
        list = r->next;
        if (l->cmd_fn != NULL)
            l->cmd_fn(&r->cmd, l->cmd_arg);
        else
            loop_cmd_finish(l, &r->cmd, 500, "not ready");
    }
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
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->queue_cond, &ca);
    pthread_condattr_destroy(&ca);
    heartbeat_start(l);
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
    pthread_mutex_lock(&l->queue_lock);
    while (l->head != NULL) {
        struct cmd_rec *r = l->head;
        l->head = r->next;
        r->done = true;
        r->cmd.status = 503;
        rec_unref_locked(r);
    }
    pthread_mutex_unlock(&l->queue_lock);
    pthread_cond_destroy(&l->queue_cond);
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

void loop_submit_wait(struct loop *l, struct loop_cmd *cmd, uint32_t timeout_ms)
{
    struct cmd_rec *r = xcalloc(1, sizeof(*r));
    r->cmd = *cmd;
    r->refs = 2;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->queue_lock);
    if (l->tail != NULL)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    pthread_mutex_unlock(&l->queue_lock);
    uv_async_send(&l->wake);

    pthread_mutex_lock(&l->queue_lock);
    int rc = 0;
    while (!r->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&l->queue_cond, &l->queue_lock, &deadline);
    if (r->done) {
        *cmd = r->cmd;
    } else {
        cmd->status = 500;
        snprintf(cmd->msg, sizeof(cmd->msg),
                 "timed out after %u ms waiting for the command to be applied", timeout_ms);
    }
    rec_unref_locked(r);
    pthread_mutex_unlock(&l->queue_lock);
}

void loop_cmd_finish(struct loop *l, struct loop_cmd *cmd, int status, const char *msg)
{
    struct cmd_rec *r = (struct cmd_rec *)cmd;
    pthread_mutex_lock(&l->queue_lock);
    r->cmd.status = status;
    snprintf(r->cmd.msg, sizeof(r->cmd.msg), "%s", msg ? msg : (status == 200 ? "OK" : "error"));
    r->done = true;
    pthread_cond_broadcast(&l->queue_cond);
    rec_unref_locked(r);
    pthread_mutex_unlock(&l->queue_lock);
}

uint64_t loop_now_ms(struct loop *l)
{
    (void)l;
    return clock_wall_ms();
}
