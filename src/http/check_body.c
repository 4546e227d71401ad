/* SPDX-License-Identifier: MIT */
/* Check answer bodies: the original's four fields exactly as before, then,
 * for answers that explain themselves, the reason and every metric's state.
 * A bounded writer over the caller's buffer: no allocation, no lock, and a
 * body that cannot fit falls back to the original fields. Any thread. */
#include "http/check_body.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/jsonfmt.h"
#include "core/text.h"

/* A bounded writer: once something does not fit, it stops (full). */
struct out {
    char *b;
    size_t size;
    size_t len;
    bool full;
};

static void out_raw(struct out *o, const char *s, size_t n)
{
    if (o->full || o->len + n >= o->size) {
        o->full = true;
        return;
    }
    memcpy(o->b + o->len, s, n);
    o->len += n;
    o->b[o->len] = '\0';
}

static void out_fmt(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_fmt(struct out *o, const char *fmt, ...)
{
    if (o->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->b + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->size - o->len) {
        o->full = true;
        o->b[o->len] = '\0';
        return;
    }
    o->len += (size_t)n;
}

/* Whether the first @max bytes of @s (or all of it) are printable ASCII,
 * which needs no repair: names and hosts always are. */
static bool is_plain(const char *s, size_t max)
{
    for (size_t i = 0; i < max && s[i] != '\0'; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* @s as a JSON string: at most @max bytes of it, made printable UTF-8 first
 * (so no control character is left to escape), quotes and backslashes
 * escaped. */
static void out_str(struct out *o, const char *s, size_t max)
{
    char t[CHECK_BODY_REASON_MAX + 1];
    if (max > sizeof(t) - 1)
        max = sizeof(t) - 1;
    if (s == NULL)
        s = "";
    const char *p = s;
    size_t len = strnlen(s, max);
    if (!is_plain(s, max)) {
        len = text_printable(t, max + 1, s);
        p = t;
    }
    out_raw(o, "\"", 1);
    const char *end = p + len;
    while (p < end) {
        size_t n = 0;
        /* text_printable() wrote the @len bytes read here; the analyzer
         * cannot see into it. */
        // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
        while (p + n < end && p[n] != '"' && p[n] != '\\')
            n++;
        out_raw(o, p, n);
        p += n;
        if (p < end) {
            char esc[2] = {'\\', *p++};
            out_raw(o, esc, 2);
        }
    }
    out_raw(o, "\"", 1);
}

/* @v in decimal: every check prints its status code, and this is a tenth
 * of what vsnprintf() costs. */
static void out_int(struct out *o, int v)
{
    char b[16];
    size_t i = sizeof(b);
    unsigned u = v < 0 ? 0u - (unsigned)v : (unsigned)v;
    do {
        b[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        b[--i] = '-';
    out_raw(o, b + i, sizeof(b) - i);
}

/* @x as the check body prints numbers: @json when preformatted. */
static void out_num(struct out *o, const char *json, double x)
{
    char b[CHECK_BODY_NUMBER_MAX + 8];
    if (json == NULL)
        json = jsonfmt_number(b, sizeof(b), x) ? b : "0";
    out_raw(o, json, strlen(json));
}

/* The original's fields: {"StatusCode","Value","Threshold","Message"
 * (without the closing brace). */
static void out_original(struct out *o, const struct check_result *res)
{
    char m[CHECK_BODY_ORIGINAL_MAX];
    if (jsonfmt_string(m, sizeof(m), res->message ? res->message : "") == 0)
        snprintf(m, sizeof(m), "\"error message too long\"");
    out_raw(o, "{\"StatusCode\":", 14);
    out_int(o, res->status);
    out_raw(o, ",\"Value\":", 9);
    out_num(o, res->value_json, res->value);
    out_raw(o, ",\"Threshold\":", 13);
    out_num(o, res->threshold_json, res->threshold);
    out_raw(o, ",\"Message\":", 11);
    out_raw(o, m, strlen(m));
}

/* The decided metric, or NULL. */
static const struct check_metric *decided(const struct check_result *res)
{
    if (res->decided_by < 0 || (size_t)res->decided_by >= res->nmetrics)
        return NULL;
    return &res->metrics[res->decided_by];
}

/* What a metric's threshold_from reads as in answers. */
static const char *threshold_from_name(enum check_threshold_from f)
{
    switch (f) {
    case CHECK_THRESHOLD_READ:
        return "check-read";
    case CHECK_THRESHOLD_RULE:
        return "rule";
    case CHECK_THRESHOLD_RULE_FACTOR:
        return "rule-factor";
    case CHECK_THRESHOLD_CLUSTER:
        break;
    }
    return "cluster";
}

/* The reason metric @cm gives for its status. */
static void reason_metric(struct out *o, const struct check_result *res,
                          const struct check_metric *cm)
{
    const struct snap_metric *m = cm->m;
    char v[CHECK_BODY_NUMBER_MAX + 8], t[CHECK_BODY_NUMBER_MAX + 8];
    const char *host = m->host != NULL ? m->host : "";
    bool by_rule;
    switch (cm->status) {
    case 404:
        out_fmt(o, "%s: no value on this node (not the leader, not collected yet, or expired)",
                m->name);
        break;
    case 500:
        if (host[0] != '\0')
            out_fmt(o, "%s: error on %s: %s", m->name, host, cm->message ? cm->message : "");
        else
            out_fmt(o, "%s: %s", m->name, cm->message ? cm->message : "");
        break;
    case 429:
        if (!cm->over) {
            out_fmt(o, "%s: a ShareDomain peer saw it unhealthy for %lld s", m->name,
                    (long long)m->share_seconds_since_healthy);
            break;
        }
        if (jsonfmt_number(v, sizeof(v), m->value) == 0)
            snprintf(v, sizeof(v), "?");
        if (jsonfmt_number(t, sizeof(t), cm->threshold) == 0)
            snprintf(t, sizeof(t), "?");
        by_rule = res->rule != NULL && (cm->threshold_from == CHECK_THRESHOLD_RULE ||
                                        cm->threshold_from == CHECK_THRESHOLD_RULE_FACTOR);
        out_fmt(o, "%s: %s%s%s is above the threshold %s%s%s", m->name, v, host[0] ? " on " : "",
                host, t, by_rule ? " set by app rule " : "", by_rule ? res->rule->key : "");
        break;
    default:
        break;
    }
}

/* Fills @buf with the one-line reason of @res (empty for 200). */
static void reason_text(char *buf, size_t size, const struct check_request *r,
                        const struct check_result *res)
{
    struct out o = {.b = buf, .size = size};
    const struct check_metric *cm = decided(res);
    const char *cluster = res->cluster != NULL ? res->cluster->name : r->store_name;
    char ts[40];
    buf[0] = '\0';
    switch (res->reason) {
    case CHECK_REASON_NONE:
        break;
    case CHECK_REASON_NOT_MYSQL:
        out_fmt(&o, "store type %s is not mysql", r->store_type);
        break;
    case CHECK_REASON_NO_APP:
        out_fmt(&o, "no app indicated");
        break;
    case CHECK_REASON_LOW_PRIORITY:
        out_fmt(&o, "low priority: %s refused a normal check within the last %d ms",
                cm != NULL ? cm->m->name : cluster, CHECK_LOW_PRIORITY_WINDOW_MS);
        break;
    case CHECK_REASON_THROTTLED:
        out_fmt(&o, "app %s is throttled by an operator: %s, ratio %g, %s%s", r->app,
                res->throttle->key, res->throttle->ratio,
                res->throttle->expire_at_ms != 0 ? "until " : "no expiry",
                res->throttle->expire_at_ms != 0
                        ? clock_rfc3339(res->throttle->expire_at_ms, ts, sizeof(ts))
                        : "");
        break;
    case CHECK_REASON_STALE:
        out_fmt(&o, "%s", res->message);
        break;
    case CHECK_REASON_NO_CLUSTER:
        out_fmt(&o, "mysql/%s: no such cluster", cluster);
        break;
    case CHECK_REASON_NO_METRIC:
        out_fmt(&o, "mysql/%s has no metric named %s", cluster, r->metric ? r->metric : "");
        break;
    case CHECK_REASON_METRIC:
        if (cm != NULL)
            reason_metric(&o, res, cm);
        break;
    }
    /* A cut reason is still a reason. */
    buf[size - 1] = '\0';
}

static void out_throttle(struct out *o, const struct snap_app *a)
{
    char ts[40];
    out_raw(o, ",\"Throttle\":{\"Key\":", 19);
    out_str(o, a->key, CHECK_BODY_KEY_MAX);
    out_fmt(o, ",\"ExpireAt\":\"%s\",\"Ratio\":", clock_rfc3339(a->expire_at_ms, ts, sizeof(ts)));
    out_num(o, NULL, a->ratio);
    out_raw(o, "}", 1);
}

/* "Rule":{"Key":..,"Exempt":..}: the app rule that shaped the answer. */
static void out_rule(struct out *o, const struct snap_rule *r)
{
    out_raw(o, ",\"Rule\":{\"Key\":", 15);
    out_str(o, r->key, CHECK_BODY_KEY_MAX);
    out_fmt(o, ",\"Exempt\":%s}", r->rule.exempt ? "true" : "false");
}

static void out_metric(struct out *o, const struct check_metric *cm, bool with_from)
{
    const struct snap_metric *m = cm->m;
    out_raw(o, "{\"Metric\":", 10);
    out_str(o, m->metric, FRENO_METRIC_NAME_MAX);
    out_raw(o, ",\"StatusCode\":", 14);
    out_int(o, cm->status);
    out_raw(o, ",\"Value\":", 9);
    bool valued = m->has_value && m->ok;
    out_num(o, valued ? m->value_json : "0", 0);
    out_raw(o, ",\"Threshold\":", 13);
    out_num(o, cm->threshold_json, cm->threshold);
    out_raw(o, ",\"Host\":", 8);
    out_str(o, m->has_value ? m->host : "", HOSTPORT_TEXT_SIZE);
    out_raw(o, ",\"Message\":", 11);
    out_str(o, cm->message, CHECK_BODY_MESSAGE_MAX);
    if (with_from)
        out_fmt(o, ",\"ThresholdFrom\":\"%s\"", threshold_from_name(cm->threshold_from));
    out_raw(o, "}", 1);
}

static void out_details(struct out *o, const struct check_request *r,
                        const struct check_result *res)
{
    /* Zeroed: clang-analyzer cannot follow vsnprintf and took its bytes for
     * garbage (513 bytes, only on answers that explain themselves). */
    char reason[CHECK_BODY_REASON_MAX + 1] = {0};
    const struct check_metric *cm = decided(res);
    out_raw(o, ",\"Metric\":", 10);
    out_str(o, cm != NULL ? cm->m->metric : "", FRENO_METRIC_NAME_MAX);
    reason_text(reason, sizeof(reason), r, res);
    out_raw(o, ",\"Reason\":", 10);
    out_str(o, reason, CHECK_BODY_REASON_MAX);
    if (res->reason == CHECK_REASON_THROTTLED && res->throttle != NULL)
        out_throttle(o, res->throttle);
    if (res->rule != NULL)
        out_rule(o, res->rule);
    out_raw(o, ",\"Metrics\":[", 12);
    for (size_t i = 0; i < res->nmetrics; i++) {
        if (i > 0)
            out_raw(o, ",", 1);
        out_metric(o, &res->metrics[i], res->rule != NULL);
    }
    out_raw(o, "]", 1);
}

size_t check_body_render(char *buf, size_t size, const struct check_request *r,
                         const struct check_result *res)
{
    struct out o = {.b = buf, .size = size};
    out_original(&o, res);
    if (res->details)
        out_details(&o, r, res);
    out_raw(&o, "}\n", 2);
    if (o.full && res->details) {
        /* Cannot happen with CHECK_BODY_MAX bytes; a smaller buffer still
         * gets a whole answer. */
        o = (struct out){.b = buf, .size = size};
        out_original(&o, res);
        out_raw(&o, "}\n", 2);
    }
    if (o.full) {
        buf[0] = '\0';
        return 0;
    }
    return o.len;
}
