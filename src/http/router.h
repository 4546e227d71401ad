/* SPDX-License-Identifier: MIT */
/* URL routing for the API (docs/api.md#endpoints): a fixed table of path patterns with
 * ":name" parameters, matched segment by segment. Pure and allocation-free;
 * any thread. */
#pragma once

#include <stdbool.h>

#include <stddef.h>

enum route_id {
    ROUTE_LB_CHECK,
    ROUTE_LEADER_CHECK,
    ROUTE_CONSENSUS_LEADER,
    ROUTE_CONSENSUS_STATE,
    ROUTE_CONSENSUS_STATUS,
    ROUTE_HOSTNAME,
    ROUTE_CHECK,
    ROUTE_CHECK_IF_EXISTS,
    ROUTE_CHECK_READ,
    ROUTE_CHECK_READ_IF_EXISTS,
    ROUTE_AGGREGATED_METRICS,
    ROUTE_METRICS_HEALTH,
    ROUTE_THROTTLE_APP,
    ROUTE_UNTHROTTLE_APP,
    ROUTE_THROTTLED_APPS,
    ROUTE_RECENT_APPS,
    ROUTE_SKIP_HOST,
    ROUTE_SKIPPED_HOSTS,
    ROUTE_RECOVER_HOST,
    ROUTE_DEBUG_VARS,
    ROUTE_HELP,
    ROUTE_CONFIG_MEMCACHE,
    ROUTE_PROMETHEUS,
    ROUTE_DASHBOARD,
    ROUTE_DASHBOARD_JS,
    ROUTE_DASHBOARD_CSS,
    ROUTE_METRICS_HISTORY,
    ROUTE_CLUSTER_METRICS,
    ROUTE_APP_RULE,
    ROUTE_REMOVE_APP_RULE,
    ROUTE_APP_RULES,
    ROUTE_AUDIT_LOG,
};

#define ROUTE_PATH_MAX   4096
#define ROUTE_MAX_PARAMS 4

struct route {
    enum route_id id;
    size_t nparams;
    const char *name[ROUTE_MAX_PARAMS];  /* parameter names, e.g. "app" */
    const char *value[ROUTE_MAX_PARAMS]; /* point into buf */
    char buf[ROUTE_PATH_MAX + 1];
};

enum route_status {
    ROUTE_OK = 0,
    ROUTE_NOT_FOUND = 404,
    ROUTE_METHOD_NOT_ALLOWED = 405,
    ROUTE_TOO_LONG = 414,
};

/* True if @len bytes at @text are well-formed UTF-8 without control
 * characters (U+0000-U+001F, U+007F-U+009F): the rule for every name a
 * request carries, in its path (router_match applies it) or its query. No
 * allocation. */
bool router_text_is_clean(const char *text, size_t len);
/* Matches @method ("GET", "HEAD") and @path (already percent-decoded, no
 * query string) into @r. */
enum route_status router_match(const char *method, const char *path, struct route *r);
/* The parameter @name of a matched route, or NULL if the pattern has none. */
const char *route_param(const struct route *r, const char *name);
/* The registered patterns in order, for /help; NULL-terminated. */
const char *const *router_patterns(void);
