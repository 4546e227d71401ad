/* SPDX-License-Identifier: MIT */
/* Unit tests for what leader.c gives its implementations (leader_impl.h):
 * the command queue keeps arrival order, the shutdown callback runs once
 * and never after leader_free() began, and the published status copies its
 * strings and fills an unset Domain or ShareDomain with "". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "leader/leader_impl.h"
#include "snapshot/snapshot.h"

static void test_queue_keeps_order(void **state)
{
    (void)state;
    struct leader_queue q = {0};
    struct leader_queued e[3] = {0};
    assert_null(leader_queue_pop(&q));
    leader_queue_push(&q, &e[0]);
    leader_queue_push(&q, &e[1]);
    assert_ptr_equal(leader_queue_pop(&q), &e[0]);
    /* Pushing after a pop goes behind what is still queued. */
    leader_queue_push(&q, &e[2]);
    assert_ptr_equal(leader_queue_pop(&q), &e[1]);
    assert_ptr_equal(leader_queue_pop(&q), &e[2]);
    assert_null(leader_queue_pop(&q));
    assert_null(q.head);
    assert_null(q.tail);
    /* An emptied queue takes entries again. */
    leader_queue_push(&q, &e[1]);
    assert_ptr_equal(q.head, &e[1]);
    assert_ptr_equal(q.tail, &e[1]);
    assert_null(e[1].next);
    assert_ptr_equal(leader_queue_pop(&q), &e[1]);
}

static int calls;

static void count_call(void *arg)
{
    assert_ptr_equal(arg, &calls);
    calls++;
}

static int shutdowns;

static void fake_shutdown(struct leader *l)
{
    shutdowns++;
    /* Finishing twice, as a release answer and its deadline may, calls the
     * callback once. */
    leader_shutdown_finished(l);
    leader_shutdown_finished(l);
}

static void fake_submit(struct leader *l, struct loop_cmd *cmd)
{
    (void)l;
    (void)cmd;
}

static void fake_free(struct leader *l)
{
    /* What is torn down now is not a graceful stop. */
    leader_shutdown_finished(l);
}

static const struct leader_ops fake_ops = {"test", fake_submit, fake_shutdown, fake_free, NULL};

static void test_shutdown_callback_runs_once(void **state)
{
    (void)state;
    struct leader *l = calloc(1, sizeof(*l));
    l->ops = &fake_ops;
    calls = 0;
    leader_shutdown(l, count_call, &calls);
    assert_int_equal(shutdowns, 1);
    assert_int_equal(calls, 1);
    leader_free(l);
    assert_int_equal(calls, 1);

    /* Freed without a completed shutdown: the callback is not called. */
    l = calloc(1, sizeof(*l));
    l->ops = &fake_ops;
    l->done = count_call;
    l->done_arg = &calls;
    leader_free(l);
    assert_int_equal(calls, 1);
}

static void status_free(struct snap_leader *s)
{
    free(s->leader_id);
    free(s->state);
    free(s->service_id);
    free(s->domain);
    free(s->share_domain);
}

static void test_status_copies(void **state)
{
    (void)state;
    struct config cfg = {0};
    struct leader l = {.p = {.cfg = &cfg}};
    char id[] = "host-a:8087";
    struct snap_leader s = leader_status(&l, id, "Leader", id);
    id[0] = 'X';
    assert_string_equal(s.service_id, "host-a:8087");
    assert_string_equal(s.leader_id, "host-a:8087");
    assert_string_equal(s.state, "Leader");
    assert_string_equal(s.domain, "");
    assert_string_equal(s.share_domain, "");
    assert_false(s.is_leader);
    assert_int_equal(s.share_services_len, 0);
    status_free(&s);

    cfg.domain = "dc1:prod";
    cfg.share_domain = "prod";
    s = leader_status(&l, "a", "Follower", "");
    assert_string_equal(s.domain, "dc1:prod");
    assert_string_equal(s.share_domain, "prod");
    assert_string_equal(s.leader_id, "");
    assert_ptr_not_equal(s.domain, cfg.domain);
    status_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_queue_keeps_order),
            cmocka_unit_test(test_shutdown_callback_runs_once),
            cmocka_unit_test(test_status_copies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
