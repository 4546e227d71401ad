/* SPDX-License-Identifier: MIT */
/* The body of a check answer (docs/api.md#check-body): the original's four
 * fields, and when the answer explains itself the extension fields (Metric,
 * Reason, Throttle, Rule, Metrics). Written into a caller's buffer, with no
 * allocation and no lock: it runs on the check path. Any thread. */
#pragma once

#include <stddef.h>

#include "core/hostport.h"
#include "core/limits.h"
#include "snapshot/check.h"

/* The most a rendered text field takes from its source, in bytes (then cut on
 * a character boundary): a reason, a per-metric message, a throttle key. */
#define CHECK_BODY_REASON_MAX  512
#define CHECK_BODY_MESSAGE_MAX 255
#define CHECK_BODY_KEY_MAX     255
/* The longest number and the original Message field as the body prints them. */
#define CHECK_BODY_NUMBER_MAX   32
#define CHECK_BODY_ORIGINAL_MAX 600

/* A bound on any body: the original fields, then the extension fields with
 * every text at its cap and escaped (a quote or backslash doubles; control
 * characters never reach the body), and one Metrics entry per metric. */
#define CHECK_BODY_MAX                                                                             \
    (96 + 3 * CHECK_BODY_NUMBER_MAX + CHECK_BODY_ORIGINAL_MAX + 16 + FRENO_METRIC_NAME_MAX + 16 +  \
     2 * CHECK_BODY_REASON_MAX + 64 + 2 * CHECK_BODY_KEY_MAX + 32 + CHECK_BODY_NUMBER_MAX + 16 +   \
     48 + 2 * CHECK_BODY_KEY_MAX +                                                                 \
     FRENO_METRICS_MAX * (96 + 40 + FRENO_METRIC_NAME_MAX + 2 * CHECK_BODY_NUMBER_MAX +            \
                          2 * HOSTPORT_TEXT_SIZE + 2 * CHECK_BODY_MESSAGE_MAX))

/* Writes the answer @res to the check @r into @buf of @size bytes
 * (CHECK_BODY_MAX always suffices) and returns its length (0 when not even
 * the original fields fit). The
 * extension fields are written when res->details; should they not fit
 * @size, the answer carries the original fields alone. Call it before the
 * snapshot @res points into is released. */
size_t check_body_render(char *buf, size_t size, const struct check_request *r,
                         const struct check_result *res);
