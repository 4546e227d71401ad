/* SPDX-License-Identifier: MIT */
/* Pattern table router. Patterns mirror the original's paths so clients and
 * /help see the same API. Any thread. */
#include "http/router.h"

#include <stdbool.h>
#include <string.h>

struct pattern {
    const char *path;
    enum route_id id;
    bool get_only;
};

static const struct pattern patterns[] = {
        {"/lb-check", ROUTE_LB_CHECK, false},
        {"/_ping", ROUTE_LB_CHECK, false},
        {"/status", ROUTE_LB_CHECK, false},
        {"/leader-check", ROUTE_LEADER_CHECK, false},
        {"/raft/leader", ROUTE_CONSENSUS_LEADER, false},
        {"/raft/state", ROUTE_CONSENSUS_STATE, false},
        {"/consensus/leader", ROUTE_CONSENSUS_LEADER, false},
        {"/consensus/state", ROUTE_CONSENSUS_STATE, false},
        {"/consensus/status", ROUTE_CONSENSUS_STATUS, false},
        {"/hostname", ROUTE_HOSTNAME, false},
        {"/check/:app/:storeType/:storeName", ROUTE_CHECK, false},
        {"/check-if-exists/:app/:storeType/:storeName", ROUTE_CHECK_IF_EXISTS, false},
        {"/check-read/:app/:storeType/:storeName/:threshold", ROUTE_CHECK_READ, false},
        {"/check-read-if-exists/:app/:storeType/:storeName/:threshold", ROUTE_CHECK_READ_IF_EXISTS,
         false},
        {"/aggregated-metrics", ROUTE_AGGREGATED_METRICS, false},
        {"/metrics-health", ROUTE_METRICS_HEALTH, false},
        {"/throttle-app/:app", ROUTE_THROTTLE_APP, false},
        {"/throttle-app/:app/ratio/:ratio", ROUTE_THROTTLE_APP, false},
        {"/throttle-app/:app/ttl/:ttlMinutes", ROUTE_THROTTLE_APP, false},
        {"/throttle-app/:app/ttl/:ttlMinutes/ratio/:ratio", ROUTE_THROTTLE_APP, false},
        {"/unthrottle-app/:app", ROUTE_UNTHROTTLE_APP, false},
        {"/throttled-apps", ROUTE_THROTTLED_APPS, false},
        {"/recent-apps", ROUTE_RECENT_APPS, false},
        {"/recent-apps/:lastMinutes", ROUTE_RECENT_APPS, false},
        {"/skip-host/:hostName", ROUTE_SKIP_HOST, false},
        {"/skip-host/:hostName/ttl/:ttlMinutes", ROUTE_SKIP_HOST, false},
        {"/skipped-hosts", ROUTE_SKIPPED_HOSTS, false},
        {"/recover-host/:hostName", ROUTE_RECOVER_HOST, false},
        {"/debug/vars", ROUTE_DEBUG_VARS, false},
        {"/debug/metrics", ROUTE_DEBUG_VARS, false},
        {"/help", ROUTE_HELP, false},
        {"/config/memcache", ROUTE_CONFIG_MEMCACHE, true},
        {"/metrics", ROUTE_PROMETHEUS, false},
        {"/dashboard", ROUTE_DASHBOARD, false},
        {"/dashboard/app.js", ROUTE_DASHBOARD_JS, false},
        {"/dashboard/style.css", ROUTE_DASHBOARD_CSS, false},
        {"/metrics-history", ROUTE_METRICS_HISTORY, false},
        {"/cluster-metrics", ROUTE_CLUSTER_METRICS, false},
        {"/app-rule/:app", ROUTE_APP_RULE, false},
        {"/remove-app-rule/:app", ROUTE_REMOVE_APP_RULE, false},
        {"/app-rules", ROUTE_APP_RULES, false},
        {"/audit-log", ROUTE_AUDIT_LOG, true},
};

#define NPATTERNS (sizeof(patterns) / sizeof(patterns[0]))

/* /help lists what the original lists (it registers /config/memcache as a
 * plain GET and so leaves it out), plus our own endpoints (/metrics, app
 * rules, the dashboard and its JSON, the audit trail; not the dashboard's
 * script and style). */
static const char *const help_list[] = {
        "/lb-check",
        "/_ping",
        "/status",
        "/leader-check",
        "/raft/leader",
        "/raft/state",
        "/consensus/leader",
        "/consensus/state",
        "/consensus/status",
        "/hostname",
        "/check/:app/:storeType/:storeName",
        "/check-if-exists/:app/:storeType/:storeName",
        "/check-read/:app/:storeType/:storeName/:threshold",
        "/check-read-if-exists/:app/:storeType/:storeName/:threshold",
        "/aggregated-metrics",
        "/metrics-health",
        "/throttle-app/:app",
        "/throttle-app/:app/ratio/:ratio",
        "/throttle-app/:app/ttl/:ttlMinutes",
        "/throttle-app/:app/ttl/:ttlMinutes/ratio/:ratio",
        "/unthrottle-app/:app",
        "/throttled-apps",
        "/recent-apps",
        "/recent-apps/:lastMinutes",
        "/skip-host/:hostName",
        "/skip-host/:hostName/ttl/:ttlMinutes",
        "/skipped-hosts",
        "/recover-host/:hostName",
        "/debug/vars",
        "/debug/metrics",
        "/help",
        "/app-rule/:app",
        "/remove-app-rule/:app",
        "/app-rules",
        "/metrics",
        "/dashboard",
        "/metrics-history",
        "/cluster-metrics",
        "/audit-log",
        NULL};

const char *const *router_patterns(void)
{
    return help_list;
}

/* Compares one pattern segment [ps, pe) to a path segment [s, e). */
static bool seg_match(const char *ps, size_t plen, const char *s, size_t len)
{
    if (plen > 0 && ps[0] == ':')
        return len > 0;
    return plen == len && memcmp(ps, s, len) == 0;
}

static bool try_pattern(const struct pattern *p, char *path, struct route *r)
{
    const char *pp = p->path;
    char *s = path;
    size_t np = 0;
    const char *pvals[ROUTE_MAX_PARAMS];
    const char *pnames[ROUTE_MAX_PARAMS];
    char *ends[ROUTE_MAX_PARAMS];

    while (*pp == '/' && *s == '/') {
        pp++;
        s++;
        const char *pe = strchr(pp, '/');
        size_t plen = pe ? (size_t)(pe - pp) : strlen(pp);
        char *se = strchr(s, '/');
        size_t len = se ? (size_t)(se - s) : strlen(s);
        if (!seg_match(pp, plen, s, len))
            return false;
        if (pp[0] == ':') {
            if (np == ROUTE_MAX_PARAMS)
                return false;
            pnames[np] = pp + 1;
            pvals[np] = s;
            ends[np] = s + len;
            np++;
        }
        pp += plen;
        s += len;
    }
    if (*pp != '\0' || *s != '\0')
        return false;
    r->nparams = np;
    for (size_t i = 0; i < np; i++) {
        r->name[i] = pnames[i];
        r->value[i] = pvals[i];
        *ends[i] = '\0';
    }
    r->id = p->id;
    return true;
}

/* True if @s holds only well-formed UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF) and no control characters. Names taken from the
 * path end up in JSON, log lines, the backend's utf8mb4 columns and raft
 * entries, none of which can carry them faithfully. A short loop rather than
 * a library: this runs on the check path, which must not allocate, and the
 * Debian libraries that validate UTF-8 (glib, libunistring) would be new
 * dependencies for these few lines. */
bool router_text_is_clean(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        size_t n;
        unsigned lo = 0x80, hi = 0xbf; /* range of the first continuation byte */
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return false; /* continuation byte, 0xc0/0xc1 or 0xf5.. */
        }
        if (len - i <= n)
            return false;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= n; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return false;
        /* C1 controls (U+0080..U+009F) are control characters too. */
        if (c == 0xc2 && s[i + 1] <= 0x9f)
            return false;
        i += n + 1;
    }
    return true;
}

/* Whether @pattern's first segment is [@seg, @seg + @len). */
static bool first_segment_is(const char *pattern, const char *seg, size_t len)
{
    return strncmp(pattern + 1, seg, len) == 0 &&
           (pattern[1 + len] == '/' || pattern[1 + len] == '\0');
}

enum route_status router_match(const char *method, const char *path, struct route *r)
{
    bool is_get = strcmp(method, "GET") == 0;
    bool is_head = strcmp(method, "HEAD") == 0;
    size_t len = strlen(path);
    if (len > ROUTE_PATH_MAX)
        return ROUTE_TOO_LONG;
    /* No route has a name with control characters or bytes that are not
     * UTF-8: such a path names nothing here, and a control request carrying
     * one must not store a name that renders differently everywhere else. */
    if (!router_text_is_clean(path, len))
        return ROUTE_NOT_FOUND;
    /* A trailing slash names the same resource, as the original's router
     * redirects it; answering directly spares clients a redirect. */
    while (len > 1 && path[len - 1] == '/')
        len--;
    bool path_found = false;
    /* try_pattern() only writes into buf when it matches, so one copy serves
     * every pattern until a match whose method is not allowed. */
    memcpy(r->buf, path, len);
    r->buf[len] = '\0';
    /* Every pattern starts with a literal segment: one comparison of it
     * passes over the patterns that cannot match (a check is the 11th). */
    const char *first = r->buf[0] == '/' ? r->buf + 1 : NULL;
    size_t first_len = first != NULL ? strcspn(first, "/") : 0;
    for (size_t i = 0; i < NPATTERNS; i++) {
        if (first != NULL && !first_segment_is(patterns[i].path, first, first_len))
            continue;
        if (!try_pattern(&patterns[i], r->buf, r))
            continue;
        path_found = true;
        if (is_get || (is_head && !patterns[i].get_only))
            return ROUTE_OK;
        memcpy(r->buf, path, len);
        r->buf[len] = '\0';
    }
    return path_found ? ROUTE_METHOD_NOT_ALLOWED : ROUTE_NOT_FOUND;
}

const char *route_param(const struct route *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->nparams; i++) {
        const char *pn = r->name[i];
        if (strncmp(pn, name, n) == 0 && (pn[n] == '\0' || pn[n] == '/'))
            return r->value[i];
    }
    return NULL;
}
