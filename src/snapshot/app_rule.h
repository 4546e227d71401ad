/* SPDX-License-Identifier: MIT */
/* Per-app rules (docs/semantics.md#app-rules): for one app key ("app" or
 * "app/store"), its own threshold per metric (absolute, or a factor of the
 * cluster's), which metrics apply to it, or that it is exempt from metrics.
 * A rule travels as its canonical JSON text (control command, backend row,
 * raft entry) and is kept as a fixed-size value, so the check path reads it
 * without allocating. Parsing treats every input as hostile. Any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/limits.h"

/* Metrics a rule names at most, in its Metrics list and in its thresholds
 * and factors together: as many as a cluster can have. */
#define APP_RULE_METRICS_MAX FRENO_METRICS_MAX
/* Room for the canonical text of any valid rule, its NUL included. */
#define APP_RULE_TEXT_MAX 1024
/* Default of MaxAppRules: rules held at once. */
#define APP_RULES_DEFAULT_MAX 1000
/* Bounds of the numbers a rule holds: a threshold in [0, 1e15], a factor in
 * (0, 1e6]. */
#define APP_RULE_THRESHOLD_MAX 1e15
#define APP_RULE_FACTOR_MAX    1e6

struct app_rule_limit {
    char metric[FRENO_METRIC_NAME_MAX + 1];
    double value; /* the threshold, or the factor of the cluster's threshold */
    bool factor;
};

struct app_rule {
    bool exempt;     /* no metric applies (throttles still do); nothing else is set */
    size_t nmetrics; /* 0: every metric applies; else only these */
    char metrics[APP_RULE_METRICS_MAX][FRENO_METRIC_NAME_MAX + 1];
    size_t nlimits;
    struct app_rule_limit limits[APP_RULE_METRICS_MAX];
};

/* Whether @name may name a metric in a rule: FRENO_METRIC_DEFAULT, or a
 * Metrics name (1 to FRENO_METRIC_NAME_MAX of [A-Za-z0-9_-]). */
bool app_rule_is_metric_name(const char *name);

/* Builds @r from the query parameters of a control request (each NULL when
 * absent): exempt ("1"/"true" or "0"/"false"), metrics ("a,b"), threshold
 * and factor ("N" for the metric @metric names, default
 * FRENO_METRIC_DEFAULT; or "m:N,m2:N2"). Returns 0, or -EINVAL with @err
 * set to a one-line reason beginning with "app-rule: ". */
int app_rule_from_query(struct app_rule *r, const char *exempt, const char *metrics,
                        const char *metric, const char *threshold, const char *factor,
                        struct err *err);

/* Writes the canonical JSON text of @r ({"Exempt":true}, or
 * {"Metrics":[...],"Thresholds":{...},"Factors":{...}} with empty members
 * left out) into @buf; returns its length (always below
 * APP_RULE_TEXT_MAX for a valid rule), or 0 when @size is too small. */
size_t app_rule_format(const struct app_rule *r, char *buf, size_t size);

/* Parses the JSON text @text (@len bytes) into @r with every check
 * app_rule_from_query() makes. Returns 0, or -EINVAL with @err set. */
int app_rule_parse(const char *text, size_t len, struct app_rule *r, struct err *err);

/* Whether @a and @b are the same rule, member by member. */
bool app_rule_equal(const struct app_rule *a, const struct app_rule *b);

/* Check path (no allocation): whether metric @metric applies to an app held
 * by @r, and the limit @r sets for it (NULL: the cluster's threshold). */
bool app_rule_applies(const struct app_rule *r, const char *metric);
const struct app_rule_limit *app_rule_limit_of(const struct app_rule *r, const char *metric);
