/* SPDX-License-Identifier: MIT */
/* Unit tests for snapshot/events, the rings that carry check records from
 * HTTP threads to the loop: one ring per producing thread, records drained
 * in each thread's order, a full ring or a full registry dropping and
 * counting, many producers against a draining consumer, strings cut to
 * their fields, records of every length decoded byte for byte across wraps
 * and at every place a wrap can happen, the capacity in typical and largest
 * records, and the memory a busy ring keeps resident. Producers are always
 * fresh threads: a thread keeps its ring for its lifetime, and the rings are
 * freed between tests. */
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
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "metrics/metrics.h"
#include "snapshot/events.h"

/* Records of the producers below ("p<id>", "main", "10.0.0.1") one ring
 * holds. */
#define RING_RECORDS (EVENTS_RING_BYTES / EVENTS_RECORD_BYTES(2, 4, 8))

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
    produce_all(0, RING_RECORDS + 10);
    assert_int_equal(metrics_get(METRICS_CHECK_EVENTS_DROPPED) - dropped, 10);
    struct seen s = drain();
    /* The first RING_RECORDS are kept, the ones past them lost. */
    assert_int_equal(s.calls, RING_RECORDS);
    assert_int_equal(s.order_errors, 0);
    assert_int_equal(s.last[0], RING_RECORDS);
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
        for (unsigned i = 0; i < RING_RECORDS; i++) {
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
        assert_int_equal(got[round], RING_RECORDS);
    assert_int_equal(metrics_get(METRICS_CHECK_EVENTS_DROPPED) - dropped, 0);
    assert_int_equal(s.calls, 3 * RING_RECORDS);
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

static void keep_none(const struct check_event *e, void *arg)
{
    (void)e;
    (void)arg;
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

/* ---- checks in producer threads ---- */

/* cmocka's assertions work in the test's own thread only: a producer
 * thread notes the line of its first failed check, and the test asserts
 * there was none once the thread is joined. */
static _Atomic unsigned thread_failed_line;

#define THREAD_CHECK(cond)                                                                         \
    do {                                                                                           \
        unsigned none_ = 0;                                                                        \
        if (!(cond))                                                                               \
            atomic_compare_exchange_strong(&thread_failed_line, &none_, (unsigned)__LINE__);       \
    } while (0)

static void assert_threads_ok(void)
{
    unsigned line = atomic_exchange(&thread_failed_line, 0);
    if (line != 0)
        fail_msg("a producer thread's check failed at line %u", line);
}

/* ---- records of every length ---- */

/* A record whose names follow from its sequence number @seq alone, so the
 * consumer can rebuild what the producer pushed: lengths and bytes (never
 * 0) from a splitmix64 stream. Names may be longer than their field, to be
 * cut. */
struct gen_record {
    char app[EVENT_APP_MAX + 8];
    char store[EVENT_STORE_MAX + 8];
    char client[EVENT_CLIENT_MAX + 8];
    int status;
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void gen_name(char *dst, size_t len, uint64_t *x)
{
    for (size_t i = 0; i < len; i++)
        dst[i] = (char)(1 + splitmix64(x) % 255);
    dst[len] = '\0';
}

/* Random lengths 0..field+7 (the ones past the field are cut). */
static void gen_random(struct gen_record *g, uint64_t seq)
{
    uint64_t x = seq;
    gen_name(g->app, splitmix64(&x) % (EVENT_APP_MAX + 8), &x);
    gen_name(g->store, splitmix64(&x) % (EVENT_STORE_MAX + 8), &x);
    gen_name(g->client, splitmix64(&x) % (EVENT_CLIENT_MAX + 8), &x);
    g->status = (int)(splitmix64(&x) % 600);
}

static size_t min_len(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Compares a drained record with what gen_random() made for its time. */
static void check_random(const struct check_event *e)
{
    struct gen_record g;
    gen_random(&g, e->at_ms);
    size_t app_len = min_len(strlen(g.app), EVENT_APP_MAX);
    size_t store_len = min_len(strlen(g.store), EVENT_STORE_MAX);
    size_t client_len = min_len(strlen(g.client), EVENT_CLIENT_MAX);
    THREAD_CHECK((e->status) == (g.status));
    THREAD_CHECK((strlen(e->app)) == (app_len));
    THREAD_CHECK((strlen(e->store)) == (store_len));
    THREAD_CHECK((strlen(e->client)) == (client_len));
    THREAD_CHECK(memcmp(e->app, g.app, app_len) == 0);
    THREAD_CHECK(memcmp(e->store, g.store, store_len) == 0);
    THREAD_CHECK(memcmp(e->client, g.client, client_len) == 0);
}

static void push_random(uint64_t seq)
{
    struct gen_record g;
    gen_random(&g, seq);
    events_push(seq, g.status, g.app, g.store, g.client);
}

struct exact {
    uint64_t next;  /* the time the next record must carry */
    uint64_t bytes; /* ring bytes the records drained took */
};

static void on_random(const struct check_event *e, void *arg)
{
    struct exact *x = arg;
    THREAD_CHECK((e->at_ms) == (x->next));
    x->next++;
    check_random(e);
    x->bytes += EVENTS_RECORD_BYTES(strlen(e->app), strlen(e->store), strlen(e->client));
}

#define MIXED_RECORDS 200000
/* Records in flight at most: 400 of the largest fit in a ring with room for
 * a wrap, so the producer never drops. */
#define MIXED_WINDOW 400

struct mixed {
    atomic_uint_fast64_t drained;
};

static void *produce_mixed(void *arg)
{
    struct mixed *m = arg;
    for (uint64_t seq = 1; seq <= MIXED_RECORDS; seq++) {
        while (seq - atomic_load(&m->drained) > MIXED_WINDOW)
            ;
        push_random(seq);
    }
    return NULL;
}

static void test_mixed_lengths_many_wraps(void **state)
{
    (void)state;
    _Static_assert(
            MIXED_WINDOW * EVENTS_RECORD_BYTES(EVENT_APP_MAX, EVENT_STORE_MAX, EVENT_CLIENT_MAX) +
                            EVENTS_RECORD_ALIGN * 28 <=
                    EVENTS_RING_BYTES,
            "the window fits a ring");
    uint64_t dropped = metrics_get(METRICS_CHECK_EVENTS_DROPPED);
    struct mixed m = {0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, produce_mixed, &m), 0);
    struct exact x = {.next = 1};
    uint64_t deadline = clock_mono_ms() + 60000;
    while (x.next <= MIXED_RECORDS && clock_mono_ms() < deadline) {
        events_drain(on_random, &x);
        atomic_store(&m.drained, x.next - 1);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    events_drain(on_random, &x);
    assert_threads_ok();
    assert_int_equal(x.next, MIXED_RECORDS + 1);
    assert_int_equal(metrics_get(METRICS_CHECK_EVENTS_DROPPED) - dropped, 0);
    /* Many times round the ring. */
    assert_true(x.bytes > 100 * (uint64_t)EVENTS_RING_BYTES);
}

/* ---- every place a wrap can happen ---- */

/* A record of exactly @bytes ring bytes (a multiple of the alignment, 16 up
 * to the largest record): names of random bytes from @seq, lengths chosen to
 * fill it. */
static void push_sized(uint64_t seq, size_t bytes, char *app, char *store, char *client)
{
    size_t payload = bytes - EVENTS_RECORD_ALIGN;
    if (payload > EVENT_APP_MAX + EVENT_STORE_MAX + EVENT_CLIENT_MAX)
        payload = EVENT_APP_MAX + EVENT_STORE_MAX + EVENT_CLIENT_MAX;
    size_t app_len = min_len(payload, EVENT_APP_MAX);
    size_t store_len = min_len(payload - app_len, EVENT_STORE_MAX);
    size_t client_len = payload - app_len - store_len;
    THREAD_CHECK(EVENTS_RECORD_BYTES(app_len, store_len, client_len) == bytes);
    uint64_t x = seq;
    gen_name(app, app_len, &x);
    gen_name(store, store_len, &x);
    gen_name(client, client_len, &x);
    events_push(seq, 200, app, store, client);
}

struct sized_check {
    uint64_t next;
    size_t count;
};

static void on_sized(const struct check_event *e, void *arg)
{
    struct sized_check *c = arg;
    THREAD_CHECK((e->at_ms) == (c->next));
    c->next++;
    c->count++;
    char app[EVENT_APP_MAX + 1], store[EVENT_STORE_MAX + 1], client[EVENT_CLIENT_MAX + 1];
    uint64_t x = e->at_ms;
    gen_name(app, strlen(e->app), &x);
    gen_name(store, strlen(e->store), &x);
    gen_name(client, strlen(e->client), &x);
    THREAD_CHECK(strcmp(e->app, app) == 0);
    THREAD_CHECK(strcmp(e->store, store) == 0);
    THREAD_CHECK(strcmp(e->client, client) == 0);
    THREAD_CHECK((e->status) == (200));
}

struct placer {
    size_t off; /* where the next record starts, as the ring places it */
    uint64_t seq;
    struct sized_check check;
    char app[EVENT_APP_MAX + 1], store[EVENT_STORE_MAX + 1], client[EVENT_CLIENT_MAX + 1];
};

static void place(struct placer *p, size_t bytes)
{
    push_sized(++p->seq, bytes, p->app, p->store, p->client);
    p->off = p->off + bytes > EVENTS_RING_BYTES ? bytes : (p->off + bytes) % EVENTS_RING_BYTES;
}

static size_t drain_sized(struct placer *p)
{
    size_t before = p->check.count;
    THREAD_CHECK((events_drain(on_sized, &p->check)) == (p->check.count - before));
    return p->check.count - before;
}

/* Pushes and drains records that end exactly at offset @to of the ring. */
static void advance_to(struct placer *p, size_t to)
{
    const size_t largest = EVENTS_RECORD_BYTES(EVENT_APP_MAX, EVENT_STORE_MAX, EVENT_CLIENT_MAX);
    while (p->off != to) {
        size_t dist = (to + EVENTS_RING_BYTES - p->off) % EVENTS_RING_BYTES;
        size_t end = EVENTS_RING_BYTES - p->off;
        place(p, min_len(min_len(dist, end), largest));
        THREAD_CHECK((drain_sized(p)) == (1));
    }
}

static void *wrap_everywhere(void *arg)
{
    struct placer *p = arg;
    const size_t largest = EVENTS_RECORD_BYTES(EVENT_APP_MAX, EVENT_STORE_MAX, EVENT_CLIENT_MAX);
    for (size_t gap = EVENTS_RECORD_ALIGN; gap < largest; gap += EVENTS_RECORD_ALIGN) {
        /* A record that exactly fills the ring to its end; the next one
         * starts at 0 with no wrap marker, the whole ring free for it. */
        advance_to(p, EVENTS_RING_BYTES - gap);
        place(p, gap);
        place(p, 32);
        THREAD_CHECK((p->off) == (32));
        THREAD_CHECK((drain_sized(p)) == (2));
        /* One a header longer: a wrap marker where the tail stands, the
         * record at 0; the marker's bytes stay taken until drained. */
        advance_to(p, EVENTS_RING_BYTES - gap);
        place(p, gap + EVENTS_RECORD_ALIGN);
        THREAD_CHECK((p->off) == (gap + EVENTS_RECORD_ALIGN));
        size_t fill = (EVENTS_RING_BYTES - gap - (gap + EVENTS_RECORD_ALIGN)) / EVENTS_RECORD_ALIGN;
        uint64_t dropped = metrics_get(METRICS_CHECK_EVENTS_DROPPED);
        for (size_t i = 0; i < fill; i++)
            place(p, EVENTS_RECORD_ALIGN);
        THREAD_CHECK((metrics_get(METRICS_CHECK_EVENTS_DROPPED) - dropped) == (0));
        push_sized(p->seq + 1, EVENTS_RECORD_ALIGN, p->app, p->store, p->client);
        THREAD_CHECK((metrics_get(METRICS_CHECK_EVENTS_DROPPED) - dropped) == (1));
        THREAD_CHECK((drain_sized(p)) == (1 + fill));
        THREAD_CHECK((p->off) == (EVENTS_RING_BYTES - gap));
    }
    return NULL;
}

static void test_wrap_at_every_offset(void **state)
{
    (void)state;
    struct placer *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->check.next = 1;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wrap_everywhere, p), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_threads_ok();
    /* Each of the 28 gaps: 2 + fill records, plus the records that moved
     * the ring; all arrived, none lost. */
    assert_int_equal(p->check.next, p->seq + 1);
    assert_true(p->seq > 28 * 15000);
    free(p);
}

/* ---- capacity ---- */

static void *push_largest(void *arg)
{
    size_t *kept = arg;
    char app[EVENT_APP_MAX + 1], store[EVENT_STORE_MAX + 1], client[EVENT_CLIENT_MAX + 1];
    memset(app, 'a', EVENT_APP_MAX);
    memset(store, 's', EVENT_STORE_MAX);
    memset(client, 'c', EVENT_CLIENT_MAX);
    app[EVENT_APP_MAX] = store[EVENT_STORE_MAX] = client[EVENT_CLIENT_MAX] = '\0';
    for (unsigned round = 0; round < 2; round++) {
        uint64_t dropped = metrics_get(METRICS_CHECK_EVENTS_DROPPED);
        for (unsigned i = 0; i < 600; i++)
            events_push(i, 200, app, store, client);
        kept[round] = 600 - (metrics_get(METRICS_CHECK_EVENTS_DROPPED) - dropped);
        THREAD_CHECK((events_drain(keep_none, NULL)) == (kept[round]));
    }
    return NULL;
}

static void test_capacity(void **state)
{
    (void)state;
    /* What the documentation says: typical names take 48 bytes, 5461
     * records a ring; the largest 464 bytes, 564 records. */
    assert_int_equal(EVENTS_RECORD_BYTES(strlen("gh-ost"), strlen("main"), strlen("10.0.0.1")), 48);
    assert_int_equal(EVENTS_RING_BYTES / 48, 5461);
    assert_int_equal(RING_RECORDS, 8192); /* "p0", "main", "10.0.0.1": 32 bytes */
    assert_int_equal(EVENTS_RECORD_BYTES(EVENT_APP_MAX, EVENT_STORE_MAX, EVENT_CLIENT_MAX), 464);
    size_t kept[2];
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, push_largest, kept), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_threads_ok();
    /* From offset 0; then from the 448 bytes left at the end, which the
     * first record skips with a wrap marker. */
    assert_int_equal(kept[0], EVENTS_RING_BYTES / 464);
    assert_int_equal(kept[0], 564);
    assert_int_equal(kept[1], 564);
}

/* ---- memory ---- */

static size_t resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    THREAD_CHECK(f != NULL && fscanf(f, "%lu %lu", &size, &resident) == 2);
    if (f != NULL)
        fclose(f);
    return resident * (size_t)sysconf(_SC_PAGESIZE);
}

#define MEMORY_ROUNDS 1000
#define MEMORY_BATCH  1000

struct in_order {
    uint64_t last;
};

static void on_in_order(const struct check_event *e, void *arg)
{
    struct in_order *o = arg;
    THREAD_CHECK(e->at_ms == o->last + 1);
    o->last = e->at_ms;
}

static void *push_drain_million(void *arg)
{
    size_t *growth = arg;
    struct in_order s = {0};
    size_t before = 0;
    uint64_t seq = 0;
    for (unsigned round = 0; round < MEMORY_ROUNDS; round++) {
        for (unsigned i = 0; i < MEMORY_BATCH; i++) {
            seq++;
            events_push(seq, 200 + (int)(seq % 3), "p0", "main", "10.0.0.1");
        }
        events_drain(on_in_order, &s);
        if (round == 0)
            before = resident_bytes();
    }
    size_t after = resident_bytes();
    *growth = after > before ? after - before : 0;
    THREAD_CHECK(s.last == (uint64_t)MEMORY_ROUNDS * MEMORY_BATCH);
    return NULL;
}

/* ThreadSanitizer keeps shadow memory for every byte touched, several times
 * the byte itself. */
#if defined(__SANITIZE_THREAD__)
#define RESIDENT_SCALE 5
#else
#define RESIDENT_SCALE 1
#endif

/* A million records through one thread's ring, drained as they come: the
 * process grows by less than 1 MiB (the ring is EVENTS_RING_BYTES; fixed
 * records of the largest size would make it 1.9 MB, all resident once it
 * has wrapped). First in the group, before other tests' memory is reused. */
static void test_memory_bound(void **state)
{
    (void)state;
    size_t growth = 0;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, push_drain_million, &growth), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_threads_ok();
    printf("resident growth after %u records: %zu bytes\n", MEMORY_ROUNDS * MEMORY_BATCH, growth);
    assert_true(growth < RESIDENT_SCALE * 1024 * 1024);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_teardown(test_memory_bound, teardown),
            cmocka_unit_test_teardown(test_empty, teardown),
            cmocka_unit_test_teardown(test_one_thread_in_order, teardown),
            cmocka_unit_test_teardown(test_rings_per_thread, teardown),
            cmocka_unit_test_teardown(test_full_ring_drops_and_counts, teardown),
            cmocka_unit_test_teardown(test_ring_wraps_around, teardown),
            cmocka_unit_test_teardown(test_many_producers_while_draining, teardown),
            cmocka_unit_test_teardown(test_registry_full_drops_and_counts, teardown),
            cmocka_unit_test_teardown(test_long_strings_cut, teardown),
            cmocka_unit_test_teardown(test_mixed_lengths_many_wraps, teardown),
            cmocka_unit_test_teardown(test_wrap_at_every_offset, teardown),
            cmocka_unit_test_teardown(test_capacity, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
