/* SPDX-License-Identifier: MIT */
/* Unit tests for throttler/aggregate: a table of cases covering every branch
 * of docs/semantics.md#aggregation steps 1-6, then random clusters checked against a literal
 * reference of the original's loop. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "throttler/aggregate.h"

#define MAX_HOSTS 8

/* The cases read best as a table, one case per row, which clang-format
 * would break into a column of fields. */
/* clang-format off */

/* Shorthands for host rows. */
#define OK(v)     {.status = PROBE_OK, .value = (v)}
#define OK404(v)  {.status = PROBE_OK, .value = (v), .http_404 = true}
#define NONE      {.status = PROBE_NONE_YET}
#define NONE404   {.status = PROBE_NONE_YET, .http_404 = true}
#define ERR(m)    {.status = PROBE_ERR, .msg = (m)}
#define ERR404(m) {.status = PROBE_ERR, .msg = (m), .http_404 = true}
#define DIAL(m)   {.status = PROBE_ERR_DIAL, .msg = (m)}
#define ERR_NOMSG {.status = PROBE_ERR, .msg = NULL}
#define ERR_EMPTY {.status = PROBE_ERR, .msg = ""}

/* Parameters: tokens (IgnoreHostsCount), threshold, IgnoreDialTcpErrors. */
#define P(count, thr, dial) {.ignore_hosts_count = (count), .ignore_hosts_threshold = (thr), .ignore_dial_tcp_errors = (dial)}
#define P0 P(0, 0, false)

#define NOT_COLLECTED "Metric not collected yet"
#define NO_HOSTS      "No hosts found"

struct agg_case {
    const char *name;
    struct agg_host hosts[MAX_HOSTS];
    size_t n;
    struct agg_params params;
    bool ok;
    double value;    /* when ok */
    const char *msg; /* when !ok */
};

/* The five values of the original's own tests: sorted 0.3 0.6 1.1 1.2 1.7. */
#define FIVE OK(1.2), OK(1.7), OK(0.3), OK(0.6), OK(1.1)

static const struct agg_case cases[] = {
    /* Step 4: nothing to aggregate. */
    {"no hosts at all", {{0}}, 0, P0, false, 0, NO_HOSTS},
    {"single ok host", {OK(0.42)}, 1, P0, true, 0.42, NULL},
    {"zero is a value", {OK(0), OK(0)}, 2, P0, true, 0, NULL},
    /* Steps 5-6 without a threshold: each token drops the highest. */
    {"five, no tokens: worst", {FIVE}, 5, P0, true, 1.7, NULL},
    {"five, one token", {FIVE}, 5, P(1, 0, false), true, 1.2, NULL},
    {"five, two tokens", {FIVE}, 5, P(2, 0, false), true, 1.1, NULL},
    {"five, four tokens", {FIVE}, 5, P(4, 0, false), true, 0.3, NULL},
    {"five, five tokens: the last value stays", {FIVE}, 5, P(5, 0, false), true, 0.3, NULL},
    {"huge token count ends quickly", {FIVE}, 5, P(INT64_MAX, 0, false), true, 0.3, NULL},
    {"negative token count is zero", {FIVE}, 5, P(-3, 0, false), true, 1.7, NULL},
    {"single value survives tokens", {OK(9)}, 1, P(3, 0, false), true, 9, NULL},
    {"duplicates drop one at a time", {OK(2), OK(2), OK(1)}, 3, P(1, 0, false), true, 2, NULL},
    {"negative values", {OK(-1), OK(-5)}, 2, P0, true, -1, NULL},
    /* Step 5 with a threshold: only values above it are dropped. */
    {"threshold 1, one token", {FIVE}, 5, P(1, 1.0, false), true, 1.2, NULL},
    {"threshold 1, four tokens stop at the threshold", {FIVE}, 5, P(4, 1.0, false), true, 0.6, NULL},
    {"threshold 1, five tokens", {FIVE}, 5, P(5, 1.0, false), true, 0.6, NULL},
    {"threshold above every value drops nothing", {FIVE}, 5, P(3, 2.0, false), true, 1.7, NULL},
    {"value equal to threshold is kept", {FIVE}, 5, P(1, 1.7, false), true, 1.7, NULL},
    {"negative threshold means no threshold", {FIVE}, 5, P(1, -1, false), true, 1.2, NULL},
    {"threshold without tokens does nothing", {FIVE}, 5, P(0, 0.5, false), true, 1.7, NULL},
    {"many hosts, threshold between values", {OK(1), OK(2), OK(3), OK(4), OK(5), OK(6), OK(7), OK(8)}, 8, P(3, 6.5, false), true, 6, NULL},
    /* Step 1: HTTP 404 hosts are left out entirely. */
    {"404 host with the worst value is left out", {OK(0.5), OK404(99)}, 2, P0, true, 0.5, NULL},
    {"404 host without a result is left out", {OK(0.5), NONE404}, 2, P0, true, 0.5, NULL},
    {"404 host with an error is left out", {ERR404("boom"), OK(0.5)}, 2, P0, true, 0.5, NULL},
    {"every host 404", {OK404(1), OK404(2)}, 2, P0, false, 0, NO_HOSTS},
    {"404 hosts spend no tokens", {OK404(9), ERR404("x"), OK(3), OK(1)}, 4, P(1, 0, false), true, 1, NULL},
    /* Step 2: a host not collected yet spoils the cluster. */
    {"one host not collected yet", {OK(0.1), NONE, OK(0.2)}, 3, P0, false, 0, NOT_COLLECTED},
    {"not collected yet wins over tokens", {OK(0.1), NONE}, 2, P(5, 0, false), false, 0, NOT_COLLECTED},
    /* docs/semantics.md#aggregation, not map order: "not collected" wins even when an
     * earlier host has a fatal error. */
    {"not collected yet wins over an earlier error", {ERR("boom"), NONE}, 2, P0, false, 0, NOT_COLLECTED},
    /* Step 3: errors. */
    {"error host without tokens is the cluster's error", {OK(0.1), ERR("lag unknown")}, 2, P0, false, 0, "lag unknown"},
    {"error host skipped by a token, which then is spent", {ERR("boom"), OK(0.1), OK(0.9)}, 3, P(1, 0, false), true, 0.9, NULL},
    {"two error hosts, one token: the second error wins", {ERR("first"), OK(0.1), ERR("second")}, 3, P(1, 0, false), false, 0, "second"},
    {"errors spend tokens before values do", {ERR("e"), OK(3), OK(2), OK(1)}, 4, P(2, 0, false), true, 2, NULL},
    {"every host an error, all skipped", {ERR("a"), ERR("b")}, 2, P(2, 0, false), false, 0, NO_HOSTS},
    {"dial error ignored with IgnoreDialTcpErrors, no token spent", {DIAL("dial tcp 10.0.0.1:3306: connection refused"), OK(0.1), OK(0.9)}, 3, P(1, 0, true), true, 0.1, NULL},
    {"dial error is an error without IgnoreDialTcpErrors", {OK(0.1), DIAL("dial tcp 10.0.0.1:3306: connection refused")}, 2, P0, false, 0, "dial tcp 10.0.0.1:3306: connection refused"},
    {"dial error skipped by a token without IgnoreDialTcpErrors", {DIAL("dial tcp: refused"), OK(0.1), OK(0.9)}, 3, P(1, 0, false), true, 0.9, NULL},
    {"IgnoreDialTcpErrors does not cover other errors", {DIAL("d"), ERR("query failed")}, 2, P(0, 0, true), false, 0, "query failed"},
    {"only dial errors, all ignored", {DIAL("a"), DIAL("b")}, 2, P(0, 0, true), false, 0, NO_HOSTS},
    {"error without text", {ERR_NOMSG}, 1, P0, false, 0, "unknown probe error"},
    {"error with empty text", {ERR_EMPTY}, 1, P0, false, 0, "unknown probe error"},
    /* Go's sort puts NaN first, so a number is the worst while one is left. */
    {"NaN sorts below numbers", {OK(NAN), OK(1), OK(0.5)}, 3, P0, true, 1, NULL},
};

/* clang-format on */

static void run_case(const struct agg_case *c)
{
    struct agg_result r;
    memset(&r, 'x', sizeof(r)); /* every field must be written */
    aggregate_hosts(c->hosts, c->n, &c->params, &r);
    if (r.ok != c->ok || (c->ok && r.value != c->value) || (!c->ok && strcmp(r.msg, c->msg) != 0)) {
        r.msg[sizeof(r.msg) - 1] = '\0';
        fail_msg("case \"%s\": got ok=%d value=%g msg=\"%s\"", c->name, r.ok, r.value, r.msg);
    }
    if (c->ok)
        assert_string_equal(r.msg, "");
}

static void test_table(void **state)
{
    (void)state;
    assert_true(sizeof(cases) / sizeof(cases[0]) >= 20);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

static void test_long_error_is_truncated(void **state)
{
    (void)state;
    char msg[1000];
    memset(msg, 'e', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    struct agg_host h = ERR(msg);
    struct agg_params p = {0};
    struct agg_result r;
    aggregate_hosts(&h, 1, &p, &r);
    assert_false(r.ok);
    assert_int_equal(strlen(r.msg), sizeof(r.msg) - 1);
    assert_memory_equal(r.msg, msg, sizeof(r.msg) - 1);
}

/* The original's loop, transcribed step by step (hosts in array order, a
 * token spent per round whatever happens). Small token counts only. */
static void reference(const struct agg_host *hosts, size_t n, const struct agg_params *p,
                      struct agg_result *out)
{
    double values[MAX_HOSTS];
    size_t nv = 0;
    int64_t tokens = p->ignore_hosts_count;
    for (size_t i = 0; i < n; i++) {
        if (!hosts[i].http_404 && hosts[i].status == PROBE_NONE_YET) {
            out->ok = false;
            snprintf(out->msg, sizeof(out->msg), "%s", NOT_COLLECTED);
            return;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (hosts[i].http_404)
            continue;
        if (hosts[i].status != PROBE_OK) {
            if (p->ignore_dial_tcp_errors && hosts[i].status == PROBE_ERR_DIAL)
                continue;
            if (tokens > 0) {
                tokens--;
                continue;
            }
            out->ok = false;
            snprintf(out->msg, sizeof(out->msg), "%s", hosts[i].msg);
            return;
        }
        values[nv++] = hosts[i].value;
    }
    if (nv == 0) {
        out->ok = false;
        snprintf(out->msg, sizeof(out->msg), "%s", NO_HOSTS);
        return;
    }
    /* Insertion sort: obviously right for eight values. */
    for (size_t i = 1; i < nv; i++) {
        for (size_t j = i; j > 0 && values[j - 1] > values[j]; j--) {
            double t = values[j];
            values[j] = values[j - 1];
            values[j - 1] = t;
        }
    }
    for (; tokens > 0; tokens--) {
        bool drop = nv > 1 &&
                    (p->ignore_hosts_threshold <= 0 || values[nv - 1] > p->ignore_hosts_threshold);
        if (drop)
            nv--;
    }
    out->ok = true;
    out->value = values[nv - 1];
}

static uint64_t rng_state = 0x853c49e6748fea9bull;

static unsigned rng(unsigned bound)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (unsigned)((rng_state * 2685821657736338717ull) >> 33) % bound;
}

static void test_random_against_reference(void **state)
{
    (void)state;
    static const char *const msgs[] = {"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"};
    for (int round = 0; round < 50000; round++) {
        struct agg_host hosts[MAX_HOSTS];
        size_t n = rng(MAX_HOSTS + 1);
        for (size_t i = 0; i < n; i++) {
            unsigned roll = rng(100);
            hosts[i] = (struct agg_host){
                    .status = roll < 3    ? PROBE_NONE_YET
                              : roll < 15 ? PROBE_ERR
                              : roll < 27 ? PROBE_ERR_DIAL
                                          : PROBE_OK,
                    .value = (double)rng(20) / 4,
                    .msg = msgs[i],
                    .http_404 = rng(10) == 0,
            };
        }
        struct agg_params p = {
                .ignore_hosts_count = (int64_t)rng(8) - 1,
                .ignore_hosts_threshold = rng(3) == 0 ? 0 : (double)rng(20) / 4 - 0.5,
                .ignore_dial_tcp_errors = rng(2) == 0,
        };
        struct agg_result got, want;
        aggregate_hosts(hosts, n, &p, &got);
        reference(hosts, n, &p, &want);
        assert_int_equal(got.ok, want.ok);
        if (want.ok)
            assert_true(got.value == want.value);
        else
            assert_string_equal(got.msg, want.msg);
        /* The host named is the first host with the result. */
        if (got.ok || (strcmp(got.msg, NOT_COLLECTED) != 0 && strcmp(got.msg, NO_HOSTS) != 0)) {
            assert_true(got.host < n);
            const struct agg_host *h = &hosts[got.host];
            assert_false(h->http_404);
            if (got.ok)
                assert_true(h->status == PROBE_OK &&
                            (h->value == got.value || (isnan(h->value) && isnan(got.value))));
            else
                assert_string_equal(h->msg, got.msg);
        } else {
            assert_int_equal(got.host, AGG_NO_HOST);
        }
    }
}

/* IgnoreHostsPercent: max(count, floor(hosts * percent / 100)), exact for
 * percentages with up to six decimals (docs/semantics.md#aggregation). */
static void test_allowance_rounding(void **state)
{
    (void)state;
    static const struct {
        int64_t count;
        double percent;
        size_t hosts;
        int64_t want;
    } rounding[] = {
            /* 3 hosts */
            {0, 33, 3, 0},         /* 0.99 */
            {0, 33.333333, 3, 0},  /* 0.999999 */
            {0, 33.3333334, 3, 0}, /* taken to six decimals: 33.333333 */
            {0, 33.3333336, 3, 1}, /* 33.333334 */
            {0, 34, 3, 1},         /* 1.02 */
            {0, 50, 3, 1},         /* 1.5 */
            {0, 66.67, 3, 2},      /* 2.0001 */
            {0, 100, 3, 3},
            {1, 10, 3, 1}, /* 0.3: IgnoreHostsCount wins */
            {2, 50, 3, 2},
            /* 10 hosts */
            {0, 10, 10, 1}, /* exactly 1, not 0.999... */
            {0, 9.99, 10, 0},
            {0, 19.9, 10, 1},
            {0, 25, 10, 2}, /* 2.5 */
            {0, 30, 10, 3},
            {0, 0.1, 10, 0},
            {4, 25, 10, 4},
            /* 25 hosts */
            {0, 3, 25, 0},  /* 0.75 */
            {0, 4, 25, 1},  /* exactly 1 */
            {0, 10, 25, 2}, /* 2.5 */
            {0, 12, 25, 3}, /* exactly 3 */
            {0, 20, 25, 5},
            {0, 33.3, 25, 8}, /* 8.325 */
            {1, 3, 25, 1},
            /* degenerate */
            {0, 0, 1000, 0},
            {0, 50, 0, 0},
            {-5, 0, 10, 0},
            {-5, 20, 10, 2},
            {0, -1, 10, 0},
            {0, 150, 10, 10}, /* more than 100 counts as 100 */
            {INT64_MAX, 50, 10, INT64_MAX},
    };
    for (size_t i = 0; i < sizeof(rounding) / sizeof(rounding[0]); i++) {
        int64_t got =
                aggregate_allowance(rounding[i].count, rounding[i].percent, rounding[i].hosts);
        if (got != rounding[i].want)
            fail_msg("count %lld, %g %% of %zu hosts: got %lld, want %lld",
                     (long long)rounding[i].count, rounding[i].percent, rounding[i].hosts,
                     (long long)got, (long long)rounding[i].want);
    }
    /* Every whole percentage of 1..1000 hosts agrees with integer arithmetic. */
    for (size_t n = 1; n <= 1000; n++)
        for (int pct = 0; pct <= 100; pct++)
            assert_int_equal(aggregate_allowance(0, pct, n), (int64_t)(n * (size_t)pct / 100));
}

/* @n hosts, the first @bad of them at 100 and the others at 1, aggregated
 * with IgnoreHostsPercent @percent (and IgnoreHostsCount @count). */
static struct agg_result percent_cluster(size_t n, size_t bad, int64_t count, double percent,
                                         double threshold)
{
    struct agg_host hosts[32];
    assert_true(n <= 32);
    for (size_t i = 0; i < n; i++)
        hosts[i] = (struct agg_host){.status = PROBE_OK, .value = i < bad ? 100 : 1};
    struct agg_params p = {.ignore_hosts_count = count,
                           .ignore_hosts_percent = percent,
                           .ignore_hosts_threshold = threshold};
    struct agg_result r;
    aggregate_hosts(hosts, n, &p, &r);
    assert_true(r.ok);
    return r;
}

static void test_percent_at_3_10_25_hosts(void **state)
{
    (void)state;
    /* 3 hosts, 50 %: one host may be left out. */
    assert_true(percent_cluster(3, 1, 0, 50, 0).value == 1);
    assert_true(percent_cluster(3, 2, 0, 50, 0).value == 100);
    assert_true(percent_cluster(3, 1, 0, 33, 0).value == 100); /* 0.99 rounds down */
    /* 10 hosts, 25 %: two. */
    assert_true(percent_cluster(10, 2, 0, 25, 0).value == 1);
    assert_true(percent_cluster(10, 3, 0, 25, 0).value == 100);
    /* 10 hosts, 10 %: exactly one. */
    assert_true(percent_cluster(10, 1, 0, 10, 0).value == 1);
    assert_true(percent_cluster(10, 2, 0, 10, 0).value == 100);
    /* 25 hosts, 10 %: two (2.5 rounds down). */
    assert_true(percent_cluster(25, 2, 0, 10, 0).value == 1);
    assert_true(percent_cluster(25, 3, 0, 10, 0).value == 100);
    /* The larger of the count and the percentage. */
    assert_true(percent_cluster(25, 3, 3, 10, 0).value == 1);
    assert_true(percent_cluster(10, 3, 1, 25, 0).value == 100);
    /* The same rules as the count: only values above IgnoreHostsThreshold. */
    assert_true(percent_cluster(10, 2, 0, 25, 200).value == 100);
    assert_true(percent_cluster(10, 2, 0, 25, 50).value == 1);
    /* The last value always stays. */
    assert_true(percent_cluster(3, 3, 0, 100, 0).value == 100);

    /* Failing hosts spend the same allowance, and HTTP 404 hosts are not
     * counted: 10 hosts of which 2 are 404 leave 8, 25 % of 8 is 2. */
    struct agg_host hosts[10];
    for (size_t i = 0; i < 10; i++)
        hosts[i] = (struct agg_host){.status = PROBE_OK, .value = 1};
    hosts[0] = (struct agg_host){.status = PROBE_ERR, .msg = "down"};
    hosts[1] = (struct agg_host){.status = PROBE_OK, .value = 100};
    hosts[2] = (struct agg_host){.status = PROBE_OK, .value = 100, .http_404 = true};
    hosts[3] = (struct agg_host){.status = PROBE_OK, .value = 100, .http_404 = true};
    struct agg_params p = {.ignore_hosts_percent = 25};
    struct agg_result r;
    aggregate_hosts(hosts, 10, &p, &r);
    assert_true(r.ok && r.value == 1);
    hosts[4].value = 100; /* a third bad host: the allowance of 2 is spent */
    aggregate_hosts(hosts, 10, &p, &r);
    assert_true(r.ok && r.value == 100);
    hosts[2].http_404 = false; /* 9 hosts counted: still 2 (2.25) */
    hosts[2].value = 1;
    aggregate_hosts(hosts, 10, &p, &r);
    assert_true(r.ok && r.value == 100);
}

/* The aggregate names the host whose value or error it is. */
static void test_result_host(void **state)
{
    (void)state;
    struct agg_host five[] = {FIVE};
    struct agg_params p0 = {0};
    struct agg_result r;
    aggregate_hosts(five, 5, &p0, &r);
    assert_int_equal(r.host, 1); /* 1.7 */
    struct agg_params p2 = {.ignore_hosts_count = 2};
    aggregate_hosts(five, 5, &p2, &r);
    assert_int_equal(r.host, 4); /* 1.1 */
    /* Among equal values the host listed first; the last listed is left out
     * first. */
    struct agg_host ties[] = {OK(1), OK(3), OK(2), OK(3), OK(3)};
    aggregate_hosts(ties, 5, &p0, &r);
    assert_true(r.value == 3);
    assert_int_equal(r.host, 1);
    struct agg_params p2t = {.ignore_hosts_count = 2};
    aggregate_hosts(ties, 5, &p2t, &r);
    assert_true(r.value == 3);
    assert_int_equal(r.host, 1);
    struct agg_params p3 = {.ignore_hosts_count = 3};
    aggregate_hosts(ties, 5, &p3, &r);
    assert_true(r.value == 2);
    assert_int_equal(r.host, 2);
    struct agg_host nans[] = {OK(NAN), OK(NAN)};
    aggregate_hosts(nans, 2, &p0, &r);
    assert_int_equal(r.host, 0);
    /* An error names its host; cluster-level errors none. */
    struct agg_host err[] = {OK(1), ERR("boom")};
    aggregate_hosts(err, 2, &p0, &r);
    assert_false(r.ok);
    assert_int_equal(r.host, 1);
    struct agg_host none[] = {OK(1), NONE};
    aggregate_hosts(none, 2, &p0, &r);
    assert_int_equal(r.host, AGG_NO_HOST);
    aggregate_hosts(NULL, 0, &p0, &r);
    assert_int_equal(r.host, AGG_NO_HOST);
    struct agg_host only404[] = {OK404(1)};
    aggregate_hosts(only404, 1, &p0, &r);
    assert_int_equal(r.host, AGG_NO_HOST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_table),
            cmocka_unit_test(test_allowance_rounding),
            cmocka_unit_test(test_percent_at_3_10_25_hosts),
            cmocka_unit_test(test_result_host),
            cmocka_unit_test(test_long_error_is_truncated),
            cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
