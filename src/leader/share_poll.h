/* SPDX-License-Identifier: MIT */
/* ShareDomain polling: GET http://<service_id>/metrics-health of every other
 * live leader in our ShareDomain, in parallel, with libcurl's multi interface
 * driven by the loop (no threads, nothing blocks), and the worst
 * SecondsSinceLastHealthy per metric over all answers. Loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct loop;
struct err;
struct share_poll;

struct share_health {
    char *metric; /* "mysql/<cluster>" */
    int64_t seconds_since_healthy;
};

/* Called once per round on the loop with the worst value per metric over all
 * peers that answered (@v is valid only during the call). */
typedef void share_poll_done_fn(const struct share_health *v, size_t n, void *arg);

/* Creates an idle poller; each request is bounded by @timeout_ms. Loads
 * libcurl (httpc): returns NULL with @err set when that fails. */
struct share_poll *share_poll_new(struct loop *loop, uint32_t timeout_ms, struct err *err);
/* Abandons any round in flight (its callback is not called) and frees @p.
 * NULL is fine. */
void share_poll_free(struct share_poll *p);
/* Starts a round over @service_ids ("host:port", copied). Returns 0, or
 * -EBUSY while a round is in flight; @fn runs later, never inside this call. */
int share_poll_start(struct share_poll *p, const char *const *service_ids, size_t n,
                     share_poll_done_fn *fn, void *arg);
bool share_poll_is_busy(const struct share_poll *p);

/* Parses a /metrics-health body ({"mysql/c":{"SecondsSinceLastHealthy":N,...}})
 * and calls @fn for each metric. Returns 0, or -EINVAL with @err set (and no
 * call made) when the body is not such an object. Any thread. */
int share_poll_parse(const char *body, size_t len,
                     void (*fn)(const char *metric, int64_t seconds, void *arg), void *arg,
                     struct err *err);
