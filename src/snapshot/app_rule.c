/* SPDX-License-Identifier: MIT */
/* Per-app rules: parsing from a control request or from stored JSON, the
 * canonical text, and the lookups the check path makes. Any thread. */
#include "snapshot/app_rule.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "core/jsonfmt.h"
#include "core/parse.h"
#include "core/text.h"

#define WHAT "app-rule"

bool app_rule_is_metric_name(const char *name)
{
    return text_is_metric_name(name);
}

static bool in_list(const char (*v)[FRENO_METRIC_NAME_MAX + 1], size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], name) == 0)
            return true;
    return false;
}

const struct app_rule_limit *app_rule_limit_of(const struct app_rule *r, const char *metric)
{
    for (size_t i = 0; i < r->nlimits; i++)
        if (strcmp(r->limits[i].metric, metric) == 0)
            return &r->limits[i];
    return NULL;
}

bool app_rule_equal(const struct app_rule *a, const struct app_rule *b)
{
    if (a->exempt != b->exempt || a->nmetrics != b->nmetrics || a->nlimits != b->nlimits)
        return false;
    for (size_t i = 0; i < a->nmetrics; i++)
        if (strcmp(a->metrics[i], b->metrics[i]) != 0)
            return false;
    for (size_t i = 0; i < a->nlimits; i++) {
        const struct app_rule_limit *x = &a->limits[i], *y = &b->limits[i];
        if (strcmp(x->metric, y->metric) != 0 || x->value != y->value || x->factor != y->factor)
            return false;
    }
    return true;
}

bool app_rule_applies(const struct app_rule *r, const char *metric)
{
    if (r->exempt)
        return false;
    return r->nmetrics == 0 || in_list(r->metrics, r->nmetrics, metric);
}

/* A metric name as it is printed in messages: JSON-quoted, cut. */
static const char *quoted(const char *s, char *buf, size_t size)
{
    if (jsonfmt_string(buf, size, s) == 0)
        snprintf(buf, size, "\"...\"");
    return buf;
}

static int check_name(const char *name, const char *where, struct err *err)
{
    char q[80];
    if (!app_rule_is_metric_name(name))
        return err_set(err, -EINVAL, WHAT ": %s: metric name %s is not 1 to %d of [A-Za-z0-9_-]",
                       where, quoted(name, q, sizeof(q)), FRENO_METRIC_NAME_MAX);
    return 0;
}

static int check_value(const struct app_rule_limit *l, struct err *err)
{
    if (l->factor && !(l->value > 0 && l->value <= APP_RULE_FACTOR_MAX))
        return err_set(err, -EINVAL, WHAT ": factor of %s must be above 0 and at most %g; got %g",
                       l->metric, APP_RULE_FACTOR_MAX, l->value);
    if (!l->factor && !(l->value >= 0 && l->value <= APP_RULE_THRESHOLD_MAX))
        return err_set(err, -EINVAL, WHAT ": threshold of %s must be in [0, %g]; got %g", l->metric,
                       APP_RULE_THRESHOLD_MAX, l->value);
    return 0;
}

/* Every rule, however it was made, passes these checks before use. */
static int rule_check(const struct app_rule *r, struct err *err)
{
    if (r->exempt && (r->nmetrics > 0 || r->nlimits > 0))
        return err_set(err, -EINVAL,
                       WHAT
                       ": exempt excludes metrics, threshold and factor: give one or the other");
    if (!r->exempt && r->nmetrics == 0 && r->nlimits == 0)
        return err_set(err, -EINVAL,
                       WHAT ": an empty rule: give threshold, factor, metrics or exempt=1");
    for (size_t i = 0; i < r->nmetrics; i++) {
        int rc = check_name(r->metrics[i], "metrics", err);
        if (rc < 0)
            return rc;
        if (in_list(r->metrics, i, r->metrics[i]))
            return err_set(err, -EINVAL, WHAT ": metrics: %s is named twice", r->metrics[i]);
    }
    for (size_t i = 0; i < r->nlimits; i++) {
        const struct app_rule_limit *l = &r->limits[i];
        int rc = check_name(l->metric, l->factor ? "factor" : "threshold", err);
        if (rc < 0 || (rc = check_value(l, err)) < 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->limits[j].metric, l->metric) == 0)
                return err_set(err, -EINVAL,
                               WHAT ": metric %s is given a threshold or factor twice", l->metric);
        if (r->nmetrics > 0 && !in_list(r->metrics, r->nmetrics, l->metric))
            return err_set(err, -EINVAL,
                           WHAT ": %s has a threshold or factor but is not in the rule's metrics",
                           l->metric);
    }
    return 0;
}

/* Copies @name (of @len bytes) into @dst, which holds a metric name; false
 * when it is too long to be one. */
static bool copy_name(char dst[FRENO_METRIC_NAME_MAX + 1], const char *name, size_t len)
{
    if (len > FRENO_METRIC_NAME_MAX)
        return false;
    memcpy(dst, name, len);
    dst[len] = '\0';
    return true;
}

/* Parses the comma-separated list @s of metric names into r->metrics. */
static int parse_metrics(struct app_rule *r, const char *s, struct err *err)
{
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (r->nmetrics == APP_RULE_METRICS_MAX)
            return err_set(err, -EINVAL, WHAT ": metrics: more than %d names",
                           APP_RULE_METRICS_MAX);
        char *dst = r->metrics[r->nmetrics];
        if (!copy_name(dst, p, len))
            return err_set(err, -EINVAL, WHAT ": metrics: a name is longer than %d bytes",
                           FRENO_METRIC_NAME_MAX);
        if (!app_rule_is_metric_name(dst))
            return check_name(dst, "metrics", err);
        r->nmetrics++;
        if (e == NULL)
            return 0;
        p = e + 1;
    }
}

/* Parses @s, "N" (for @metric) or "m:N,m2:N2", into limits of kind
 * @factor. */
static int parse_limits(struct app_rule *r, const char *s, const char *metric, bool factor,
                        struct err *err)
{
    const char *param = factor ? "factor" : "threshold";
    char q[80];
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char item[FRENO_METRIC_NAME_MAX + 64];
        if (len >= sizeof(item))
            return err_set(err, -EINVAL, WHAT ": %s: an item is longer than %zu bytes", param,
                           sizeof(item) - 1);
        memcpy(item, p, len);
        item[len] = '\0';
        if (r->nlimits == APP_RULE_METRICS_MAX)
            return err_set(err, -EINVAL, WHAT ": more than %d thresholds and factors",
                           APP_RULE_METRICS_MAX);
        struct app_rule_limit *l = &r->limits[r->nlimits];
        char *colon = strchr(item, ':');
        const char *name = metric, *num = item;
        if (colon != NULL) {
            *colon = '\0';
            name = item;
            num = colon + 1;
        } else if (e != NULL || p != s) {
            return err_set(err, -EINVAL, WHAT ": %s: a list needs metric:number items", param);
        }
        if (!copy_name(l->metric, name, strlen(name)) || !app_rule_is_metric_name(l->metric))
            return check_name(name, param, err);
        if (parse_double(num, &l->value) < 0)
            return err_set(err, -EINVAL, WHAT ": %s of %s: %s is not a decimal number", param,
                           l->metric, quoted(num, q, sizeof(q)));
        l->factor = factor;
        int rc = check_value(l, err);
        if (rc < 0)
            return rc;
        r->nlimits++;
        if (e == NULL)
            return 0;
        p = e + 1;
    }
}

static int parse_bool(const char *s, bool *out, struct err *err)
{
    char q[80];
    if (strcmp(s, "1") == 0 || strcmp(s, "true") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(s, "0") == 0 || strcmp(s, "false") == 0) {
        *out = false;
        return 0;
    }
    return err_set(err, -EINVAL, WHAT ": exempt %s is not 1, 0, true or false",
                   quoted(s, q, sizeof(q)));
}

int app_rule_from_query(struct app_rule *r, const char *exempt, const char *metrics,
                        const char *metric, const char *threshold, const char *factor,
                        struct err *err)
{
    memset(r, 0, sizeof(*r));
    int rc = 0;
    if (exempt != NULL && (rc = parse_bool(exempt, &r->exempt, err)) < 0)
        return rc;
    if (metric != NULL && threshold == NULL && factor == NULL)
        return err_set(err, -EINVAL,
                       WHAT ": metric names the metric of a threshold or factor; "
                            "give one of them");
    if (metric != NULL && threshold != NULL && factor != NULL && strchr(threshold, ':') == NULL &&
        strchr(factor, ':') == NULL)
        return err_set(err, -EINVAL,
                       WHAT ": threshold and factor for the same metric: give one or the other");
    if (metric != NULL && (rc = check_name(metric, "metric", err)) < 0)
        return rc;
    const char *m = metric != NULL ? metric : FRENO_METRIC_DEFAULT;
    if (metrics != NULL && (rc = parse_metrics(r, metrics, err)) < 0)
        return rc;
    if (threshold != NULL && (rc = parse_limits(r, threshold, m, false, err)) < 0)
        return rc;
    if (factor != NULL && (rc = parse_limits(r, factor, m, true, err)) < 0)
        return rc;
    return rule_check(r, err);
}

/* ---- canonical text ---- */

/* Appends @s to @buf at *@o; false when it does not fit. */
static bool put(char *buf, size_t size, size_t *o, const char *s)
{
    size_t n = strlen(s);
    if (*o + n >= size)
        return false;
    memcpy(buf + *o, s, n + 1);
    *o += n;
    return true;
}

/* Appends the limits of kind @factor as "Name":{...} when there are any. */
static bool put_limits(const struct app_rule *r, bool factor, char *buf, size_t size, size_t *o)
{
    bool first = true;
    for (size_t i = 0; i < r->nlimits; i++) {
        const struct app_rule_limit *l = &r->limits[i];
        if (l->factor != factor)
            continue;
        char num[64];
        if (jsonfmt_number(num, sizeof(num), l->value) == 0)
            return false;
        bool ok = put(buf, size, o,
                      first ? (*o > 1 ? (factor ? ",\"Factors\":{\"" : ",\"Thresholds\":{\"")
                                      : (factor ? "\"Factors\":{\"" : "\"Thresholds\":{\""))
                            : ",\"") &&
                  put(buf, size, o, l->metric) && put(buf, size, o, "\":") &&
                  put(buf, size, o, num);
        if (!ok)
            return false;
        first = false;
    }
    return first || put(buf, size, o, "}");
}

size_t app_rule_format(const struct app_rule *r, char *buf, size_t size)
{
    size_t o = 0;
    if (size == 0)
        return 0;
    buf[0] = '\0';
    if (r->exempt)
        return put(buf, size, &o, "{\"Exempt\":true}") ? o : 0;
    bool ok = put(buf, size, &o, "{");
    if (r->nmetrics > 0) {
        ok = ok && put(buf, size, &o, "\"Metrics\":[");
        for (size_t i = 0; ok && i < r->nmetrics; i++)
            ok = put(buf, size, &o, i ? ",\"" : "\"") && put(buf, size, &o, r->metrics[i]) &&
                 put(buf, size, &o, "\"");
        ok = ok && put(buf, size, &o, "]");
    }
    ok = ok && put_limits(r, false, buf, size, &o) && put_limits(r, true, buf, size, &o) &&
         put(buf, size, &o, "}");
    if (!ok) {
        buf[0] = '\0';
        return 0;
    }
    return o;
}

/* ---- parsing stored text ---- */

/* Reads the object @o of name -> number into limits of kind @factor. */
static int parse_json_limits(struct app_rule *r, json_t *o, bool factor, struct err *err)
{
    const char *member = factor ? "Factors" : "Thresholds";
    if (o == NULL)
        return 0;
    if (!json_is_object(o))
        return err_set(err, -EINVAL, WHAT ": %s must be an object", member);
    const char *name;
    json_t *v;
    json_object_foreach(o, name, v)
    {
        if (r->nlimits == APP_RULE_METRICS_MAX)
            return err_set(err, -EINVAL, WHAT ": more than %d thresholds and factors",
                           APP_RULE_METRICS_MAX);
        struct app_rule_limit *l = &r->limits[r->nlimits];
        if (!copy_name(l->metric, name, strlen(name)) || !app_rule_is_metric_name(l->metric))
            return check_name(name, member, err);
        if (!json_is_number(v))
            return err_set(err, -EINVAL, WHAT ": %s.%s must be a number", member, l->metric);
        l->value = json_number_value(v);
        l->factor = factor;
        r->nlimits++;
    }
    return 0;
}

int app_rule_parse(const char *text, size_t len, struct app_rule *r, struct err *err)
{
    memset(r, 0, sizeof(*r));
    if (len >= APP_RULE_TEXT_MAX)
        return err_set(err, -EINVAL, WHAT ": rule text of %zu bytes is longer than %d", len,
                       APP_RULE_TEXT_MAX - 1);
    json_error_t jerr;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL)
        return err_set(err, -EINVAL, WHAT ": rule text: column %d: %s", jerr.column, jerr.text);
    int rc = -EINVAL;
    if (!json_is_object(o)) {
        err_set(err, -EINVAL, WHAT ": rule text is not a JSON object");
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "Exempt") != 0 && strcmp(key, "Metrics") != 0 &&
            strcmp(key, "Thresholds") != 0 && strcmp(key, "Factors") != 0) {
            char q[80];
            err_set(err, -EINVAL, WHAT ": unknown member %s", quoted(key, q, sizeof(q)));
            goto out;
        }
    }
    const json_t *ex = json_object_get(o, "Exempt");
    if (ex != NULL && !json_is_boolean(ex)) {
        err_set(err, -EINVAL, WHAT ": Exempt must be true or false");
        goto out;
    }
    r->exempt = json_is_true(ex);
    const json_t *ms = json_object_get(o, "Metrics");
    if (ms != NULL && !json_is_array(ms)) {
        err_set(err, -EINVAL, WHAT ": Metrics must be an array");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(ms); i++) {
        const json_t *e = json_array_get(ms, i);
        if (r->nmetrics == APP_RULE_METRICS_MAX) {
            err_set(err, -EINVAL, WHAT ": Metrics: more than %d names", APP_RULE_METRICS_MAX);
            goto out;
        }
        if (!json_is_string(e) || strlen(json_string_value(e)) != json_string_length(e) ||
            !copy_name(r->metrics[r->nmetrics], json_string_value(e), json_string_length(e))) {
            err_set(err, -EINVAL, WHAT ": Metrics[%zu] is not a metric name", i);
            goto out;
        }
        r->nmetrics++;
    }
    if (parse_json_limits(r, json_object_get(o, "Thresholds"), false, err) < 0 ||
        parse_json_limits(r, json_object_get(o, "Factors"), true, err) < 0)
        goto out;
    rc = rule_check(r, err);
out:
    json_decref(o);
    return rc;
}
