/* SPDX-License-Identifier: MIT */
/* Unit tests for http/conn_table: claiming and releasing slots, which
 * connections the reaper reports (only those waiting too long, once per
 * wait), and that a released connection is never reported, with threads
 * racing the reaper. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/conn_table.h"

#define LIMIT_MS 10000u

struct seen {
    int fds[64];
    int n;
};

static void on_reap(int fd, void *arg)
{
    struct seen *s = arg;
    s->fds[s->n++] = fd;
}

static void test_claim_release(void **state)
{
    (void)state;
    struct conn_table *t = conn_table_new(3);
    struct conn_slot *a = conn_table_claim(t, 10, 0);
    struct conn_slot *b = conn_table_claim(t, 11, 0);
    struct conn_slot *c = conn_table_claim(t, 12, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(conn_table_live(t), 3);
    /* Full: one past the size gets no slot. */
    assert_null(conn_table_claim(t, 13, 0));
    /* A connection's address, kept for its later requests, is gone when its
     * slot serves the next connection. */
    assert_string_equal(conn_slot_peer(b), "");
    snprintf(conn_slot_peer(b), CONN_PEER_SIZE, "%s", "2001:db8::1");
    conn_table_release(t, b);
    assert_int_equal(conn_table_live(t), 2);
    struct conn_slot *d = conn_table_claim(t, 13, 0);
    assert_ptr_equal(d, b);
    assert_string_equal(conn_slot_peer(d), "");
    conn_table_release(t, a);
    conn_table_release(t, c);
    conn_table_release(t, d);
    conn_table_release(t, NULL);
    assert_int_equal(conn_table_live(t), 0);
    conn_table_free(t);
}

static void test_reap_only_overdue_waiting(void **state)
{
    (void)state;
    struct conn_table *t = conn_table_new(8);
    struct conn_slot *idle = conn_table_claim(t, 20, 1000);
    struct conn_slot *busy = conn_table_claim(t, 21, 1000);
    struct conn_slot *late = conn_table_claim(t, 22, 5000);
    conn_slot_busy(busy);
    struct seen s = {0};
    /* Exactly the bound is still in time. */
    assert_int_equal(conn_table_reap(t, 1000 + LIMIT_MS, LIMIT_MS, on_reap, &s), 0);
    assert_int_equal(conn_table_reap(t, 1001 + LIMIT_MS, LIMIT_MS, on_reap, &s), 1);
    assert_int_equal(s.fds[0], 20);
    /* Reported once per wait. */
    assert_int_equal(conn_table_reap(t, 2000 + LIMIT_MS, LIMIT_MS, on_reap, &s), 0);
    /* A busy connection (its request arrived) has no bound... */
    assert_int_equal(conn_table_reap(t, 100000 + LIMIT_MS, LIMIT_MS, on_reap, &s), 1);
    assert_int_equal(s.fds[1], 22);
    /* ...until it answered; then the next request's clock starts. */
    conn_slot_waiting(busy, 200000);
    assert_int_equal(conn_table_reap(t, 200000 + LIMIT_MS, LIMIT_MS, on_reap, &s), 0);
    assert_int_equal(conn_table_reap(t, 200001 + LIMIT_MS, LIMIT_MS, on_reap, &s), 1);
    assert_int_equal(s.fds[2], 21);
    /* A clock that went backwards reports nothing. */
    conn_slot_waiting(idle, 900000);
    assert_int_equal(conn_table_reap(t, 1000, LIMIT_MS, on_reap, &s), 0);
    conn_table_release(t, idle);
    conn_table_release(t, busy);
    conn_table_release(t, late);
    conn_table_free(t);
}

/* ---- threads: the reaper never reports a socket after its release ---- */

#define WORKERS 4
#define ROUNDS  20000
#define SLOTS   8

struct race {
    struct conn_table *t;
    _Atomic int open[WORKERS * SLOTS]; /* 1 while the "socket" is open */
    _Atomic int stop;
    _Atomic long reaped;
    _Atomic long bad;
};

struct worker {
    struct race *r;
    int id;
};

static void on_race_reap(int fd, void *arg)
{
    struct race *r = arg;
    if (fd < 0 || fd >= WORKERS * SLOTS || atomic_load(&r->open[fd]) != 1)
        atomic_fetch_add(&r->bad, 1);
    atomic_fetch_add(&r->reaped, 1);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct race *r = w->r;
    for (int i = 0; i < ROUNDS; i++) {
        int fd = w->id * SLOTS + i % SLOTS;
        atomic_store(&r->open[fd], 1);
        struct conn_slot *s = conn_table_claim(r->t, fd, 0);
        if (s == NULL) {
            atomic_store(&r->open[fd], 0);
            continue;
        }
        if (i % 3 == 0)
            conn_slot_busy(s);
        if (i % 5 == 0)
            conn_slot_waiting(s, 0);
        conn_table_release(r->t, s);
        /* Closed only after the release, as MHD does after CLOSED. */
        atomic_store(&r->open[fd], 0);
    }
    return NULL;
}

static void *reaper_main(void *arg)
{
    struct race *r = arg;
    while (!atomic_load(&r->stop))
        conn_table_reap(r->t, 1000000, 0, on_race_reap, r);
    return NULL;
}

static void test_release_waits_for_reaper(void **state)
{
    (void)state;
    static struct race r;
    memset(&r, 0, sizeof(r));
    r.t = conn_table_new((size_t)WORKERS * 2);
    pthread_t ws[WORKERS], reaper;
    struct worker args[WORKERS];
    pthread_create(&reaper, NULL, reaper_main, &r);
    for (int i = 0; i < WORKERS; i++) {
        args[i] = (struct worker){.r = &r, .id = i};
        pthread_create(&ws[i], NULL, worker_main, &args[i]);
    }
    for (int i = 0; i < WORKERS; i++)
        pthread_join(ws[i], NULL);
    atomic_store(&r.stop, 1);
    pthread_join(reaper, NULL);
    assert_int_equal(atomic_load(&r.bad), 0);
    assert_int_equal(conn_table_live(r.t), 0);
    conn_table_free(r.t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_claim_release),
            cmocka_unit_test(test_reap_only_overdue_waiting),
            cmocka_unit_test(test_release_waits_for_reaper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
