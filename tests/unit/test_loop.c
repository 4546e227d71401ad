/* SPDX-License-Identifier: MIT */
/* Unit tests for the loop's command queue: the bound, one command at a time,
 * timeouts answered without the loop, commands whose clients had their
 * answer dropped instead of applied, shutdown, and the callback exactly once
 * under concurrent submitters, expiry and loop. And its deferred calls: once
 * each, never synchronously, cancellable, in order. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <uv.h>

#include "core/clock.h"
#include "loop/loop.h"

#define TIMEOUT_MS 1000u
#define FAR_FUTURE (clock_mono_ms() + 3600000ull)

/* What the handler saw; commands it keeps are finished by the test. */
struct handler {
    struct loop *l;
    int calls;
    char names[16][256];
    struct loop_cmd *held[16];
    int nheld;
    bool finish_at_once;
};

static void on_cmd(struct loop_cmd *cmd, void *arg)
{
    struct handler *h = arg;
    snprintf(h->names[h->calls % 16], sizeof(h->names[0]), "%s", cmd->name);
    h->calls++;
    if (h->finish_at_once)
        loop_cmd_finish(h->l, cmd, 200, NULL);
    else
        h->held[h->nheld++] = cmd;
}

static void on_done(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
}

static struct loop_cmd cmd_named(const char *name)
{
    struct loop_cmd c = {.kind = LOOP_CMD_THROTTLE_APP};
    snprintf(c.name, sizeof(c.name), "%s", name);
    return c;
}

static void run_once(struct loop *l)
{
    uv_run(loop_uv(l), UV_RUN_NOWAIT);
}

static struct loop *new_loop(struct handler *h, unsigned max)
{
    struct loop *l = loop_new();
    assert_non_null(l);
    h->l = l;
    loop_set_cmd_handler(l, on_cmd, h);
    loop_set_queue_max(l, max);
    return l;
}

static void test_answered_once(void **state)
{
    (void)state;
    struct handler h = {.finish_at_once = true};
    struct loop *l = new_loop(&h, 4);
    _Atomic int done = 0;
    struct loop_ticket *t;
    struct loop_cmd c = cmd_named("a");
    assert_int_equal(loop_cmd_submit(l, &c, TIMEOUT_MS, on_done, &done, &t), 0);
    assert_int_equal(atomic_load(&done), 0); /* never from inside submit */
    struct loop_cmd out;
    assert_int_equal(loop_ticket_result(l, t, &out), LOOP_CMD_PENDING);
    run_once(l);
    assert_int_equal(h.calls, 1);
    assert_int_equal(atomic_load(&done), 1);
    assert_int_equal(loop_ticket_result(l, t, &out), LOOP_CMD_ANSWERED);
    assert_int_equal(out.status, 200);
    assert_string_equal(out.msg, "OK");
    assert_string_equal(out.name, "a");
    /* An answered command does not expire. */
    assert_int_equal(loop_cmd_expire(l, FAR_FUTURE), 0);
    assert_int_equal(atomic_load(&done), 1);
    loop_ticket_release(l, t);
    loop_free(l);
}

static void test_queue_bound(void **state)
{
    (void)state;
    struct handler h = {0};
    struct loop *l = new_loop(&h, 3);
    _Atomic int done = 0;
    struct loop_ticket *t[4] = {0};
    for (int i = 0; i < 3; i++) {
        struct loop_cmd c = cmd_named("q");
        assert_int_equal(loop_cmd_submit(l, &c, TIMEOUT_MS, on_done, &done, &t[i]), 0);
    }
    /* One past the bound: refused at once, nothing queued. */
    struct loop_cmd c = cmd_named("one-too-many");
    assert_int_equal(loop_cmd_submit(l, &c, TIMEOUT_MS, on_done, &done, &t[3]), -EAGAIN);
    assert_null(t[3]);
    assert_int_equal(loop_cmd_stats(l).refused_full, 1);
    assert_int_equal(loop_cmd_stats(l).submitted, 3);

    /* One at a time: the second waits for the first to finish. */
    run_once(l);
    assert_int_equal(h.calls, 1);
    run_once(l);
    assert_int_equal(h.calls, 1);
    /* The one in flight still counts against the bound. */
    assert_int_equal(loop_cmd_submit(l, &c, TIMEOUT_MS, on_done, &done, &t[3]), -EAGAIN);
    loop_cmd_finish(l, h.held[0], 200, NULL);
    assert_int_equal(h.calls, 2);
    assert_int_equal(atomic_load(&done), 1);
    /* A place is free again. */
    assert_int_equal(loop_cmd_submit(l, &c, TIMEOUT_MS, on_done, &done, &t[3]), 0);
    loop_cmd_finish(l, h.held[1], 500, "refused");
    loop_cmd_finish(l, h.held[2], 200, NULL);
    loop_cmd_finish(l, h.held[3], 200, NULL);
    assert_int_equal(h.calls, 4);
    assert_int_equal(atomic_load(&done), 4);
    struct loop_cmd out;
    assert_int_equal(loop_ticket_result(l, t[1], &out), LOOP_CMD_ANSWERED);
    assert_int_equal(out.status, 500);
    assert_string_equal(out.msg, "refused");
    for (int i = 0; i < 4; i++)
        loop_ticket_release(l, t[i]);
    loop_free(l);
}

/* A stalled loop: the timeout answers anyway, and the loop, once back,
 * drops what was still queued instead of applying it. */
static void test_expired_commands_are_dropped(void **state)
{
    (void)state;
    struct handler h = {0};
    struct loop *l = new_loop(&h, 8);
    _Atomic int done = 0;
    struct loop_ticket *running, *queued, *fresh;
    struct loop_cmd c = cmd_named("running");
    assert_int_equal(loop_cmd_submit(l, &c, TIMEOUT_MS, on_done, &done, &running), 0);
    run_once(l);
    assert_int_equal(h.calls, 1);
    c = cmd_named("queued");
    assert_int_equal(loop_cmd_submit(l, &c, TIMEOUT_MS, on_done, &done, &queued), 0);
    c = cmd_named("fresh");
    assert_int_equal(loop_cmd_submit(l, &c, 10u * TIMEOUT_MS, on_done, &done, &fresh), 0);

    assert_int_equal(loop_cmd_expire(l, clock_mono_ms()), 0); /* not due yet */
    assert_int_equal(loop_cmd_expire(l, clock_mono_ms() + TIMEOUT_MS + 1), 2);
    assert_int_equal(atomic_load(&done), 2);
    struct loop_cmd out;
    assert_int_equal(loop_ticket_result(l, running, &out), LOOP_CMD_EXPIRED_RUNNING);
    assert_int_equal(loop_ticket_result(l, queued, &out), LOOP_CMD_EXPIRED_QUEUED);
    assert_int_equal(loop_ticket_result(l, fresh, &out), LOOP_CMD_PENDING);
    assert_int_equal(loop_cmd_stats(l).expired_running, 1);
    assert_int_equal(loop_cmd_stats(l).expired_queued, 1);

    /* The running one finishes late: no second answer, and the next one
     * the loop carries out is "fresh": "queued" is dropped unapplied. */
    loop_cmd_finish(l, h.held[0], 200, NULL);
    assert_int_equal(atomic_load(&done), 2);
    assert_int_equal(loop_ticket_result(l, running, &out), LOOP_CMD_EXPIRED_RUNNING);
    assert_int_equal(h.calls, 2);
    assert_string_equal(h.names[1], "fresh");
    assert_int_equal(loop_cmd_stats(l).dropped, 1);
    loop_cmd_finish(l, h.held[1], 200, NULL);
    assert_int_equal(atomic_load(&done), 3);
    loop_ticket_release(l, running);
    loop_ticket_release(l, queued);
    loop_ticket_release(l, fresh);
    loop_free(l);
}

/* A client that goes away before its answer: never applied if still
 * queued, and never called back. */
static void test_released_before_answer(void **state)
{
    (void)state;
    struct handler h = {.finish_at_once = true};
    struct loop *l = new_loop(&h, 8);
    _Atomic int done = 0;
    struct loop_ticket *t;
    struct loop_cmd c = cmd_named("gone");
    assert_int_equal(loop_cmd_submit(l, &c, TIMEOUT_MS, on_done, &done, &t), 0);
    loop_ticket_release(l, t);
    run_once(l);
    assert_int_equal(h.calls, 0);
    assert_int_equal(atomic_load(&done), 0);
    assert_int_equal(loop_cmd_stats(l).dropped, 1);
    assert_int_equal(loop_cmd_expire(l, FAR_FUTURE), 0);
    loop_free(l);
}

static void test_close(void **state)
{
    (void)state;
    struct handler h = {0};
    struct loop *l = new_loop(&h, 8);
    _Atomic int done = 0;
    struct loop_ticket *a, *b, *c3;
    struct loop_cmd c = cmd_named("a");
    assert_int_equal(loop_cmd_submit(l, &c, TIMEOUT_MS, on_done, &done, &a), 0);
    run_once(l);
    assert_int_equal(loop_cmd_submit(l, &c, TIMEOUT_MS, on_done, &done, &b), 0);
    loop_cmd_close(l);
    assert_int_equal(atomic_load(&done), 2);
    struct loop_cmd out;
    assert_int_equal(loop_ticket_result(l, a, &out), LOOP_CMD_SHUT_DOWN);
    assert_int_equal(loop_ticket_result(l, b, &out), LOOP_CMD_SHUT_DOWN);
    assert_int_equal(loop_cmd_submit(l, &c, TIMEOUT_MS, on_done, &done, &c3), -ESHUTDOWN);
    assert_null(c3);
    loop_cmd_finish(l, h.held[0], 200, NULL);
    assert_int_equal(h.calls, 1); /* b was dropped */
    assert_int_equal(atomic_load(&done), 2);
    loop_ticket_release(l, a);
    loop_ticket_release(l, b);
    loop_free(l);
}

/* Records still queued when the loop is freed belong to it alone. */
static void test_free_with_queued(void **state)
{
    (void)state;
    struct handler h = {0};
    struct loop *l = new_loop(&h, 8);
    _Atomic int done = 0;
    struct loop_ticket *t1, *t2;
    struct loop_cmd c = cmd_named("left");
    assert_int_equal(loop_cmd_submit(l, &c, TIMEOUT_MS, on_done, &done, &t1), 0);
    assert_int_equal(loop_cmd_submit(l, &c, TIMEOUT_MS, on_done, &done, &t2), 0);
    run_once(l);
    loop_cmd_close(l);
    assert_int_equal(atomic_load(&done), 2);
    /* The submitters let go; the loop still holds one in flight and one
     * queued, which loop_free() releases (ASan checks for leaks). */
    loop_ticket_release(l, t1);
    loop_ticket_release(l, t2);
    loop_free(l);
}

/* ---- concurrency: every submitted command answered exactly once ---- */

#define SUBMITTERS    4
#define PER_SUBMITTER 300

struct stress {
    struct loop *l;
    struct handler h;
    _Atomic int stop;
    _Atomic int answers[SUBMITTERS * PER_SUBMITTER];
    _Atomic int accepted;
};

struct submitter {
    struct stress *st;
    int id;
};

static void *submitter_main(void *arg)
{
    struct submitter *sub = arg;
    struct stress *st = sub->st;
    for (int i = 0; i < PER_SUBMITTER; i++) {
        int k = sub->id * PER_SUBMITTER + i;
        struct loop_cmd c = cmd_named("s");
        struct loop_ticket *t = NULL;
        /* Timeouts of 0-2 ms race the loop's answer and the expiry. */
        int rc = loop_cmd_submit(st->l, &c, (uint32_t)(k % 3), on_done, &st->answers[k], &t);
        if (rc == 0) {
            atomic_fetch_add(&st->accepted, 1);
            struct timespec ts = {0, 1000000L}; /* 1 ms: wait for an answer */
            struct loop_cmd out;
            while (loop_ticket_result(st->l, t, &out) == LOOP_CMD_PENDING)
                nanosleep(&ts, NULL);
        }
        loop_ticket_release(st->l, t);
    }
    return NULL;
}

static void *expirer_main(void *arg)
{
    struct stress *st = arg;
    struct timespec ts = {0, 200000L};
    while (!atomic_load(&st->stop)) {
        loop_cmd_expire(st->l, clock_mono_ms());
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_concurrent_answers_once(void **state)
{
    (void)state;
    static struct stress st;
    memset(&st, 0, sizeof(st));
    st.h.finish_at_once = true;
    st.l = new_loop(&st.h, 8);
    pthread_t subs[SUBMITTERS], expirer;
    struct submitter args[SUBMITTERS];
    pthread_create(&expirer, NULL, expirer_main, &st);
    for (int i = 0; i < SUBMITTERS; i++) {
        args[i] = (struct submitter){.st = &st, .id = i};
        pthread_create(&subs[i], NULL, submitter_main, &args[i]);
    }
    /* This thread is the loop. */
    bool joined[SUBMITTERS] = {0};
    int left = SUBMITTERS;
    while (left > 0) {
        uv_run(loop_uv(st.l), UV_RUN_NOWAIT);
        for (int i = 0; i < SUBMITTERS; i++) {
            if (!joined[i] && pthread_tryjoin_np(subs[i], NULL) == 0) {
                joined[i] = true;
                left--;
            }
        }
        struct timespec ts = {0, 100000L};
        nanosleep(&ts, NULL);
    }
    atomic_store(&st.stop, 1);
    pthread_join(expirer, NULL);
    int answered = 0;
    for (int k = 0; k < SUBMITTERS * PER_SUBMITTER; k++) {
        assert_in_range(atomic_load(&st.answers[k]), 0, 1);
        answered += atomic_load(&st.answers[k]);
    }
    assert_int_equal(answered, atomic_load(&st.accepted));
    assert_true(atomic_load(&st.accepted) > 0);
    loop_free(st.l);
}

/* ---- deferred calls ---- */

struct deferrer {
    struct loop_deferred d;
    struct loop *l;
    int calls;
    int order;               /* when it ran, counting from 1 */
    struct deferrer *cancel; /* cancelled by this one's call */
    bool again;              /* defers itself once more from its call */
};
static int defer_clock;

static void on_deferred(struct loop_deferred *d)
{
    struct deferrer *x = (struct deferrer *)(void *)((char *)d - offsetof(struct deferrer, d));
    x->calls++;
    x->order = ++defer_clock;
    if (x->cancel != NULL)
        loop_defer_cancel(x->l, &x->cancel->d);
    if (x->again) {
        x->again = false;
        loop_defer(x->l, &x->d);
        assert_int_equal(x->calls, 1); /* not from inside loop_defer() */
    }
}

static void test_deferred_calls(void **state)
{
    (void)state;
    struct loop *l = loop_new();
    uv_loop_t *uv = loop_uv(l);
    struct deferrer x[4];
    memset(x, 0, sizeof(x));
    for (int i = 0; i < 4; i++) {
        loop_deferred_init(&x[i].d, on_deferred);
        x[i].l = l;
    }
    defer_clock = 0;
    x[0].cancel = &x[2]; /* x[2] is queued behind x[0]: it never runs */
    x[1].again = true;
    for (int i = 0; i < 3; i++) {
        loop_defer(l, &x[i].d);
        loop_defer(l, &x[i].d); /* queued once */
    }
    loop_defer(l, &x[3].d);
    loop_defer_cancel(l, &x[3].d);
    loop_defer_cancel(l, &x[3].d); /* not queued any more: nothing */
    assert_int_equal(x[0].calls + x[1].calls + x[2].calls + x[3].calls, 0);
    for (int i = 0; i < 10; i++)
        uv_run(uv, UV_RUN_NOWAIT);
    assert_int_equal(x[0].calls, 1);
    assert_int_equal(x[0].order, 1);
    assert_int_equal(x[1].calls, 2); /* and its second call came after the first batch */
    assert_int_equal(x[1].order, 3);
    assert_int_equal(x[2].calls, 0);
    assert_int_equal(x[3].calls, 0);
    /* Everything queued cancelled before the timer fires: nothing runs. */
    loop_defer(l, &x[3].d);
    loop_defer_cancel(l, &x[3].d);
    uv_run(uv, UV_RUN_NOWAIT);
    assert_int_equal(x[3].calls, 0);
    /* And the queue works again afterwards. */
    loop_defer(l, &x[3].d);
    uv_run(uv, UV_RUN_NOWAIT);
    assert_int_equal(x[3].calls, 1);
    loop_free(l);
}

/* A caller of a gate: enters when called, records the order it got in. */
struct gatecomer {
    struct loop_deferred d;
    struct loop_gate *g;
    int calls;
    int inside_order; /* 0 while outside */
};

static int gate_clock;

static void on_gate_call(struct loop_deferred *d)
{
    struct gatecomer *x = (struct gatecomer *)(void *)d;
    x->calls++;
    if (loop_gate_enter(x->g, &x->d))
        x->inside_order = ++gate_clock;
}

static void gate_try(struct gatecomer *x)
{
    if (loop_gate_enter(x->g, &x->d))
        x->inside_order = ++gate_clock;
}

static void run_turns(uv_loop_t *uv)
{
    for (int i = 0; i < 10; i++)
        uv_run(uv, UV_RUN_NOWAIT);
}

static void test_gate(void **state)
{
    (void)state;
    struct loop *l = loop_new();
    uv_loop_t *uv = loop_uv(l);
    struct loop_gate g;
    loop_gate_init(&g, l, 2);
    struct gatecomer x[6];
    memset(x, 0, sizeof(x));
    for (int i = 0; i < 6; i++) {
        loop_deferred_init(&x[i].d, on_gate_call);
        x[i].g = &g;
    }
    gate_clock = 0;
    /* Two places: the first two are in at once, the next three wait. */
    for (int i = 0; i < 5; i++)
        gate_try(&x[i]);
    assert_int_equal(x[0].inside_order, 1);
    assert_int_equal(x[1].inside_order, 2);
    for (int i = 2; i < 5; i++)
        assert_int_equal(x[i].inside_order, 0);
    assert_int_equal(loop_gate_inside(&g), 2);
    assert_int_equal(loop_gate_waiting(&g), 3);
    /* Waiting is not being called: nothing runs before a place is free. */
    run_turns(uv);
    assert_int_equal(x[2].calls + x[3].calls + x[4].calls, 0);
    /* x[3] gives up while waiting: it is never called. */
    loop_gate_cancel(&g, &x[3].d);
    assert_int_equal(loop_gate_waiting(&g), 2);
    /* A place is freed: the first waiter (x[2]) gets it, and a newcomer in
     * the same turn (x[5]) cannot take it. */
    loop_gate_leave(&g);
    gate_try(&x[5]);
    assert_int_equal(x[5].inside_order, 0);
    assert_int_equal(loop_gate_inside(&g), 2); /* x[1] and x[2]'s given place */
    run_turns(uv);
    assert_int_equal(x[2].calls, 1);
    assert_int_equal(x[2].inside_order, 3);
    assert_int_equal(x[3].calls, 0);
    assert_int_equal(x[4].inside_order, 0);
    /* x[4] is given the next place but cancels before its call: the place
     * passes on to x[5], the next in line. */
    loop_gate_leave(&g);
    assert_int_equal(loop_gate_waiting(&g), 1);
    loop_gate_cancel(&g, &x[4].d);
    assert_int_equal(loop_gate_waiting(&g), 0);
    run_turns(uv);
    assert_int_equal(x[4].calls, 0);
    assert_int_equal(x[5].calls, 1);
    assert_int_equal(x[5].inside_order, 4);
    assert_int_equal(loop_gate_inside(&g), 2);
    /* Everyone leaves: the gate is empty, and an extra leave is harmless. */
    loop_gate_leave(&g);
    loop_gate_leave(&g);
    loop_gate_leave(&g);
    assert_int_equal(loop_gate_inside(&g), 0);
    /* A bound of 0 means 1. */
    loop_gate_init(&g, l, 0);
    gate_try(&x[0]);
    gate_try(&x[1]);
    assert_int_equal(loop_gate_inside(&g), 1);
    assert_int_equal(loop_gate_waiting(&g), 1);
    loop_gate_cancel(&g, &x[1].d);
    loop_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_answered_once),
            cmocka_unit_test(test_queue_bound),
            cmocka_unit_test(test_expired_commands_are_dropped),
            cmocka_unit_test(test_released_before_answer),
            cmocka_unit_test(test_close),
            cmocka_unit_test(test_free_with_queued),
            cmocka_unit_test(test_concurrent_answers_once),
            cmocka_unit_test(test_deferred_calls),
            cmocka_unit_test(test_gate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
