/* SPDX-License-Identifier: MIT */
/* Unit tests for snapshot/events, the rings that carry check records from
 * HTTP threads to the loop: one ring per producing thread, records drained
 * in each thread's order, a full ring or a full registry dropping and
 * counting, many producers against a draining consumer, and strings cut to
 * their fields. Producers are always fresh threads: a thread keeps its ring
 * for its lifetime, and the rings are freed between tests. */
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

#include <cmocka.h>

#include "core/clock.h"
#include "metrics/metrics.h"
#include "snapshot/events.h"

/* ---- producers ---- */

struct producer {
    pthread_t thread;
    unsigned id;
    unsigned count;  /* records to push */
    atomic_bool *go; /* NULL: start at once */
};

/* Pushes @count records whose app is "p<id>" and whose time is the
 * sequence number 1..count. */
static void *produce(void *arg)
{
    struct producer *p = arg;
    char app[16];
    snprintf(app, sizeof(app), "p%u", p->id);
    while (p->go != NULL && !atomic_load(p->go))
        ;
    for (unsigned i = 1; i <= p->count; i++)
        events_push(i, 200 + (int)(i % 3), app, "main", "10.0.0.1");
    return NULL;
}

static void start(struct producer *p, unsigned id, unsigned count, atomic_bool *go)
{
    *p = (struct producer){.id = id, .count = count, .go = go};
    assert_int_equal(pthread_create(&p->thread, NULL, produce, p), 0);
}

static void join(struct producer *p)
{
    assert_int_equal(pthread_join(p->thread, NULL), 0);
}

/* Runs one producer to completion. */
static void produce_all(unsigned id, unsigned count)
{
    struct producer p;
    start(&p, id, count, NULL);
    join(&p);
}

/* ---- the consumer's view ---- */

#define MAX_PRODUCERS 16

struct seen {
    uint64_t last[MAX_PRODUCERS]; /* last sequence number per producer */
    uint64_t count[MAX_PRODUCERS];
    uint64_t calls;
    unsigned order_errors; /* records out of their thread's order */
    int first_producer;    /* producer of the first record drained, -1: none */
};

static void on_record(const struct check_event *e, void *arg)
{
    struct seen *s = arg;
    unsigned id = 0;
    assert_int_equal(sscanf(e->app, "p%u", &id), 1);
    assert_true(id < MAX_PRODUCERS);
    if (s->calls++ == 0)
        s->first_producer = (int)id;
    if (e->at_ms != s->last[id] + 1)
        s->order_errors++;
    s->last[id] = e->at_ms;
    s->count[id]++;
    assert_int_equal(e->status, 200 + e->at_ms % 3);
    assert_string_equal(e->store, "main");
    assert_string_equal(e->client, "10.0.0.1");
}

static struct seen drain(void)
{
    struct seen s = {.first_producer = -1};
    size_t n = events_drain(on_record, &s);
    assert_int_equal(n, s.calls);
    return s;
}

static int teardown(void **state)
{
    (void)state;
    events_shutdown();
    return 0;
}

/* ---- tests ---- */

static void test_empty(void **state)
{
    (void)state;
    struct seen s = drain();
    assert_int_equal(s.calls, 0);
}

static void test_one_thread_in_order(void **state)
{
    (void)state;
    produce_all(0, 1000);
    struct seen s = drain();
    assert_int_equal(s.calls, 1000);
    assert_int_equal(s.order_errors, 0);
    assert_int_equal(s.last[0], 1000);
    /* Drained means gone; later records follow on. */
    assert_int_equal(drain().calls, 0);
}

static void test_rings_per_thread(void **state)
{
    (void)state;
    produce_all(0, 100);
    produce_all(1, 50);
    produce_all(2, 10);
    struct seen s = drain();
    assert_int_equal(s.calls, 160);
    assert_int_equal(s.count[0], 100);
    assert_int_equal(s.count[1], 50);
    assert_int_equal(s.count[2], 10);
    /* Each thread's records come in its order, one ring after the other. */
    assert_int_equal(s.order_errors, 0);
    assert_int_equal(s.first_producer, 0);
}

static void test_full_ring_drops_and_counts(void **state)
{
    (void)state;
    uint64_t dropped = metrics_get(METRICS_CHECK_EVENTS_DROPPED);
    produce_all(0, EVENTS_RING_SIZE + 10);
    assert_int_equal(metrics_get(METRICS_CHECK_EVENTS_DROPPED) - dropped, 10);
    struct seen s = drain();
    /* The first EVENTS_RING_SIZE are kept, the ones past them lost. */
    assert_int_equal(s.calls, EVENTS_RING_SIZE);
    assert_int_equal(s.order_errors, 0);
    assert_int_equal(s.last[0], EVENTS_RING_SIZE);
    assert_int_equal(metrics_get(METRICS_CHECK_EVENTS_DROPPED) - dropped, 10);
}

/* Pushes three full rings, each after the consumer drained the one
 * before. */
struct rounds {
    atomic_uint filled;  /* rounds pushed */
    atomic_uint drained; /* rounds drained */
};

static void *produce_rounds(void *arg)
{
    struct rounds *r = arg;
    uint64_t seq = 0;
    for (unsigned round = 0; round < 3; round++) {
        while (atomic_load(&r->drained) < round)
            ;
        for (unsigned i = 0; i < EVENTS_RING_SIZE; i++) {
            seq++;
            events_push(seq, 200 + (int)(seq % 3), "p0", "main", "10.0.0.1");
        }
        atomic_store(&r->filled, round + 1);
    }
    return NULL;
}

static void test_ring_wraps_around(void **state)
{
    (void)state;
    uint64_t dropped = metrics_get(METRICS_CHECK_EVENTS_DROPPED);
    struct rounds r = {0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, produce_rounds, &r), 0);
    struct seen s = {.first_producer = -1};
    size_t got[3] = {0};
    uint64_t deadline = clock_mono_ms() + 10000;
    for (unsigned round = 0; round < 3 && clock_mono_ms() < deadline;) {
        if (atomic_load(&r.filled) <= round)
            continue;
        got[round] = events_drain(on_record, &s);
        atomic_store(&r.drained, ++round);
    }
    /* Asserted once the producer is done: a failure must not free the
     * rings under it. */
    assert_int_equal(pthread_join(th, NULL), 0);
    for (unsigned round = 0; round < 3; round++)
        assert_int_equal(got[round], EVENTS_RING_SIZE);
    assert_int_equal(metrics_get(METRICS_CHECK_EVENTS_DROPPED) - dropped, 0);
    assert_int_equal(s.calls, 3 * EVENTS_RING_SIZE);
    assert_int_equal(s.order_errors, 0);
}

static void test_many_producers_while_draining(void **state)
{
    (void)state;
    const uint64_t per_thread = 1000;
    uint64_t dropped = metrics_get(METRICS_CHECK_EVENTS_DROPPED);
    atomic_bool go = false;
    struct producer p[MAX_PRODUCERS];
    for (unsigned i = 0; i < MAX_PRODUCERS; i++)
        start(&p[i], i, per_thread, &go);
    atomic_store(&go, true);
    struct seen s = {.first_producer = -1};
    uint64_t deadline = clock_mono_ms() + 10000;
    while (s.calls < MAX_PRODUCERS * per_thread && clock_mono_ms() < deadline)
        events_drain(on_record, &s);
    for (unsigned i = 0; i < MAX_PRODUCERS; i++)
        join(&p[i]);
    events_drain(on_record, &s);
    /* A thread's records fit in its ring: nothing is lost, every thread's
     * records arrive whole and in order. */
    assert_int_equal(metrics_get(METRICS_CHECK_EVENTS_DROPPED) - dropped, 0);
    assert_int_equal(s.calls, MAX_PRODUCERS * per_thread);
    assert_int_equal(s.order_errors, 0);
    for (unsigned i = 0; i < MAX_PRODUCERS; i++)
        assert_int_equal(s.count[i], per_thread);
}

static void test_registry_full_drops_and_counts(void **state)
{
    (void)state;
    uint64_t dropped = metrics_get(METRICS_CHECK_EVENTS_DROPPED);
    for (unsigned i = 0; i < EVENTS_MAX_RINGS + 3; i++)
        produce_all(i % 2, 1);
    assert_int_equal(metrics_get(METRICS_CHECK_EVENTS_DROPPED) - dropped, 3);
    struct seen s = {.first_producer = -1};
    assert_int_equal(events_drain(on_record, &s), EVENTS_MAX_RINGS);
    assert_int_equal(s.count[0] + s.count[1], EVENTS_MAX_RINGS);
}

struct long_strings {
    char app[400];
    char store[400];
    char client[400];
};

static void *push_long(void *arg)
{
    struct long_strings *l = arg;
    events_push(7, 429, l->app, l->store, l->client);
    events_push(8, 200, NULL, NULL, NULL);
    events_push(9, 200, "", "s", "c");
    return NULL;
}

struct cut {
    struct check_event e[3];
    size_t n;
};

static void keep(const struct check_event *e, void *arg)
{
    struct cut *c = arg;
    assert_true(c->n < 3);
    c->e[c->n++] = *e;
}

static void test_long_strings_cut(void **state)
{
    (void)state;
    struct long_strings l;
    memset(l.app, 'a', sizeof(l.app) - 1);
    memset(l.store, 's', sizeof(l.store) - 1);
    memset(l.client, 'c', sizeof(l.client) - 1);
    l.app[sizeof(l.app) - 1] = l.store[sizeof(l.store) - 1] = l.client[sizeof(l.client) - 1] = 0;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, push_long, &l), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    struct cut c = {0};
    assert_int_equal(events_drain(keep, &c), 3);
    assert_int_equal(c.e[0].at_ms, 7);
    assert_int_equal(c.e[0].status, 429);
    assert_int_equal(strlen(c.e[0].app), EVENT_APP_MAX);
    assert_int_equal(strlen(c.e[0].store), EVENT_STORE_MAX);
    assert_int_equal(strlen(c.e[0].client), EVENT_CLIENT_MAX);
    assert_memory_equal(c.e[0].app, l.app, EVENT_APP_MAX);
    /* NULL strings arrive empty. */
    assert_string_equal(c.e[1].app, "");
    assert_string_equal(c.e[1].store, "");
    assert_string_equal(c.e[1].client, "");
    assert_string_equal(c.e[2].store, "s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_teardown(test_empty, teardown),
            cmocka_unit_test_teardown(test_one_thread_in_order, teardown),
            cmocka_unit_test_teardown(test_rings_per_thread, teardown),
            cmocka_unit_test_teardown(test_full_ring_drops_and_counts, teardown),
            cmocka_unit_test_teardown(test_ring_wraps_around, teardown),
            cmocka_unit_test_teardown(test_many_producers_while_draining, teardown),
            cmocka_unit_test_teardown(test_registry_full_drops_and_counts, teardown),
            cmocka_unit_test_teardown(test_long_strings_cut, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
