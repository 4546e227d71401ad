/* SPDX-License-Identifier: MIT */
/* Raft log entries and snapshots as versioned JSON (jansson). A command is
 * {"v":1,"op":"throttle","key":"app","expire_at_ms":N,"ratio":R}, or for a
 * per-app rule {"v":1,"op":"rule","key":"app","expire_at_ms":N,"rule":"..."};
 * a snapshot is {"v":1,"apps":[{"key","expire_at_ms","ratio"}],"hosts":
 * [{"host","expire_at_ms"}],"rules":[{"key","expire_at_ms","rule"}]}, where
 * "rules" is absent from snapshots written before rules existed. Unknown members are ignored (room
 * to grow); a missing or mistyped member, or another version, is an error. Any thread. */
#include "leader/raft_codec.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/jsonfmt.h"
#include "core/xalloc.h"
#include "snapshot/app_rule.h"

_Static_assert(RAFT_CODEC_RULE_MAX == APP_RULE_TEXT_MAX, "a raft entry holds any rule");

#define FORMAT_VERSION 1

static const char *const op_names[] = {
        [RAFT_CODEC_THROTTLE] = "throttle", [RAFT_CODEC_UNTHROTTLE] = "unthrottle",
        [RAFT_CODEC_SKIP] = "skip",         [RAFT_CODEC_RECOVER] = "recover",
        [RAFT_CODEC_SET_RULE] = "rule",     [RAFT_CODEC_REMOVE_RULE] = "unrule",
        [RAFT_CODEC_AUDIT] = "audit",
};

const char *raft_codec_op_name(enum raft_codec_op op)
{
    if ((int)op < RAFT_CODEC_THROTTLE || (int)op > RAFT_CODEC_OP_LAST)
        return "?";
    return op_names[op];
}

static bool op_has_expiry(enum raft_codec_op op)
{
    return op == RAFT_CODEC_THROTTLE || op == RAFT_CODEC_SKIP || op == RAFT_CODEC_SET_RULE;
}

/* Checks the rule text @text of @key; 0 or -EINVAL with @err set. */
static int check_rule(const char *what, const char *key, const char *text, struct err *err)
{
    struct app_rule r;
    int rc = app_rule_parse(text, strlen(text), &r, err);
    if (rc < 0)
        err_prefix(err, "%s %s", what, key);
    return rc;
}

static bool ratio_is_valid(double r)
{
    return r >= 0 && r <= 1; /* false for NaN too */
}

/* Dumps @o (reference stolen) into a heap buffer without the trailing NUL in
 * *@len. */
static void dump(json_t *o, char **out, size_t *len)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s == NULL) {
        /* Only on allocation failure: our values are always encodable. */
        s = xstrdup("");
    }
    *len = strlen(s);
    *out = s;
}

/* An audit entry as a JSON object; NULL when a field is not UTF-8 (clean
 * text always is). */
static json_t *audit_to_json(const struct audit_record *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "at_ms", json_integer((json_int_t)(r->at_ms & INT64_MAX)));
    json_object_set_new(o, "status", json_integer(r->status));
    const char *names[] = {"who", "peer", "forwarded", "what", "params", "message"};
    const char *values[] = {r->who, r->peer, r->forwarded, r->what, r->params, r->message};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_t *v = json_string(values[i]);
        if (v == NULL) {
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, names[i], v);
    }
    return o;
}

/* Reads member @name of @o, a string shorter than @size bytes without NUL,
 * into @dst. */
static int get_text(const json_t *o, const char *what, const char *name, char *dst, size_t size,
                    struct err *err)
{
    const json_t *v = json_object_get(o, name);
    if (!json_is_string(v))
        return err_set(err, -EINVAL, "%s: \"%s\" must be a string", what, name);
    size_t n = json_string_length(v);
    if (n >= size || strlen(json_string_value(v)) != n)
        return err_set(err, -EINVAL, "%s: \"%s\" must be shorter than %zu bytes with no NUL", what,
                       name, size);
    memcpy(dst, json_string_value(v), n + 1);
    return 0;
}

static int get_ms(const json_t *o, const char *what, const char *name, uint64_t *out,
                  struct err *err);

/* Reads the audit entry @o into @r. */
static int audit_from_json(const json_t *o, const char *what, struct audit_record *r,
                           struct err *err)
{
    memset(r, 0, sizeof(*r));
    if (!json_is_object(o))
        return err_set(err, -EINVAL, "%s: \"audit\" must be an object", what);
    const json_t *st = json_object_get(o, "status");
    if (!json_is_integer(st) || json_integer_value(st) < 0 || json_integer_value(st) > 999)
        return err_set(err, -EINVAL, "%s: \"status\" must be an integer in [0..999]", what);
    r->status = (int)json_integer_value(st);
    if (get_ms(o, what, "at_ms", &r->at_ms, err) < 0 ||
        get_text(o, what, "who", r->who, sizeof(r->who), err) < 0 ||
        get_text(o, what, "peer", r->peer, sizeof(r->peer), err) < 0 ||
        get_text(o, what, "forwarded", r->forwarded, sizeof(r->forwarded), err) < 0 ||
        get_text(o, what, "what", r->what, sizeof(r->what), err) < 0 ||
        get_text(o, what, "params", r->params, sizeof(r->params), err) < 0 ||
        get_text(o, what, "message", r->message, sizeof(r->message), err) < 0)
        return -EINVAL;
    return 0;
}

int raft_codec_encode_cmd(const struct raft_codec_cmd *c, char **out, size_t *len, struct err *err)
{
    const char *name = raft_codec_op_name(c->op);
    if (strcmp(name, "?") == 0)
        return err_set(err, -EINVAL, "raft command: unknown operation %d", (int)c->op);
    if (c->op == RAFT_CODEC_AUDIT) {
        json_t *a = audit_to_json(&c->audit);
        if (a == NULL)
            return err_set(err, -EINVAL, "raft command audit: a field is not valid UTF-8");
        json_t *o = json_object();
        json_object_set_new(o, "v", json_integer(FORMAT_VERSION));
        json_object_set_new(o, "op", json_string(name));
        json_object_set_new(o, "audit", a);
        dump(o, out, len);
        return 0;
    }
    size_t key_len = strnlen(c->key, sizeof(c->key));
    if (key_len == 0 || key_len > RAFT_CODEC_KEY_MAX)
        return err_set(err, -EINVAL, "raft command %s: key must be 1 to %d bytes", name,
                       RAFT_CODEC_KEY_MAX);
    if (op_has_expiry(c->op) && c->expire_at_ms > (uint64_t)INT64_MAX)
        return err_set(err, -EINVAL, "raft command %s %s: expiry too far in the future", name,
                       c->key);
    if (c->op == RAFT_CODEC_THROTTLE && !ratio_is_valid(c->ratio))
        return err_set(err, -EINVAL, "raft command %s %s: ratio must be in [0..1] range", name,
                       c->key);

    if (c->op == RAFT_CODEC_SET_RULE && check_rule("raft command rule", c->key, c->rule, err) < 0)
        return -EINVAL;

    /* JSON strings are UTF-8; a key that is not would be dropped silently. */
    json_t *key = json_stringn(c->key, key_len);
    if (key == NULL)
        return err_set(err, -EINVAL, "raft command %s: key is not valid UTF-8", name);

    json_t *o = json_object();
    json_object_set_new(o, "v", json_integer(FORMAT_VERSION));
    json_object_set_new(o, "op", json_string(name));
    json_object_set_new(o, "key", key);
    if (op_has_expiry(c->op))
        json_object_set_new(o, "expire_at_ms", json_integer((json_int_t)c->expire_at_ms));
    if (c->op == RAFT_CODEC_THROTTLE)
        json_object_set_new(o, "ratio", json_real(c->ratio));
    if (c->op == RAFT_CODEC_SET_RULE)
        json_object_set_new(o, "rule", json_string(c->rule));
    dump(o, out, len);
    return 0;
}

/* Reads member @name of @o as a non-negative integer. */
static int get_ms(const json_t *o, const char *what, const char *name, uint64_t *out,
                  struct err *err)
{
    const json_t *v = json_object_get(o, name);
    if (v == NULL)
        return err_set(err, -EINVAL, "%s: missing \"%s\"", what, name);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return err_set(err, -EINVAL, "%s: \"%s\" must be a non-negative integer", what, name);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_ratio(const json_t *o, const char *what, double *out, struct err *err)
{
    const json_t *v = json_object_get(o, "ratio");
    if (v == NULL)
        return err_set(err, -EINVAL, "%s: missing \"ratio\"", what);
    if (!json_is_number(v) || !ratio_is_valid(json_number_value(v)))
        return err_set(err, -EINVAL, "%s: \"ratio\" must be a number in [0..1]", what);
    *out = json_number_value(v);
    return 0;
}

/* Member @name of @o as a string of 1..RAFT_CODEC_KEY_MAX bytes without NUL
 * bytes, pointing into @o; NULL with @err set when it is not one. */
static const char *get_key(const json_t *o, const char *what, const char *name, struct err *err)
{
    const json_t *v = json_object_get(o, name);
    if (v == NULL) {
        err_set(err, -EINVAL, "%s: missing \"%s\"", what, name);
        return NULL;
    }
    if (!json_is_string(v)) {
        err_set(err, -EINVAL, "%s: \"%s\" must be a string", what, name);
        return NULL;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > RAFT_CODEC_KEY_MAX || strlen(s) != n) {
        err_set(err, -EINVAL, "%s: \"%s\" must be 1 to %d bytes with no NUL", what, name,
                RAFT_CODEC_KEY_MAX);
        return NULL;
    }
    return s;
}

/* Member "rule" of @o, a string that fits @size bytes with its NUL, copied
 * into @out. */
static int get_rule(const json_t *o, const char *what, char *out, size_t size, struct err *err)
{
    const json_t *v = json_object_get(o, "rule");
    if (!json_is_string(v))
        return err_set(err, -EINVAL, "%s: \"rule\" must be a string", what);
    size_t n = json_string_length(v);
    if (n == 0 || n >= size || strlen(json_string_value(v)) != n)
        return err_set(err, -EINVAL, "%s: \"rule\" must be 1 to %zu bytes with no NUL", what,
                       size - 1);
    memcpy(out, json_string_value(v), n + 1);
    return 0;
}

/* Parses @buf as a JSON object of our format version. */
static json_t *load_object(const void *buf, size_t len, const char *what, struct err *err)
{
    json_error_t jerr;
    json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
        err_set(err, -EINVAL, "%s: line %d column %d: %s", what, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        err_set(err, -EINVAL, "%s: not a JSON object", what);
        json_decref(o);
        return NULL;
    }
    const json_t *v = json_object_get(o, "v");
    if (!json_is_integer(v) || json_integer_value(v) != FORMAT_VERSION) {
        if (json_is_integer(v))
            err_set(err, -EINVAL, "%s: unsupported format version %lld", what,
                    (long long)json_integer_value(v));
        else
            err_set(err, -EINVAL, "%s: missing format version", what);
        json_decref(o);
        return NULL;
    }
    return o;
}

int raft_codec_decode_cmd(const void *buf, size_t len, struct raft_codec_cmd *c, struct err *err)
{
    static const char what[] = "raft command";
    json_t *o = load_object(buf, len, what, err);
    if (o == NULL)
        return -EINVAL;
    int rc = -EINVAL;
    memset(c, 0, sizeof(*c));
    const char *op = json_string_value(json_object_get(o, "op"));
    for (int i = RAFT_CODEC_THROTTLE; op != NULL && i <= RAFT_CODEC_OP_LAST; i++)
        if (strcmp(op, op_names[i]) == 0)
            c->op = (enum raft_codec_op)i;
    if (c->op == 0) {
        err_set(err, -EINVAL, "%s: missing or unknown \"op\"", what);
        goto out;
    }
    if (c->op == RAFT_CODEC_AUDIT) {
        if (audit_from_json(json_object_get(o, "audit"), what, &c->audit, err) == 0)
            rc = 0;
        goto out;
    }
    const char *key = get_key(o, what, "key", err);
    if (key == NULL)
        goto out;
    memcpy(c->key, key, strlen(key) + 1);
    if (op_has_expiry(c->op) && get_ms(o, what, "expire_at_ms", &c->expire_at_ms, err) < 0)
        goto out;
    if (c->op == RAFT_CODEC_THROTTLE && get_ratio(o, what, &c->ratio, err) < 0)
        goto out;
    if (c->op == RAFT_CODEC_SET_RULE && (get_rule(o, what, c->rule, sizeof(c->rule), err) < 0 ||
                                         check_rule(what, c->key, c->rule, err) < 0))
        goto out;
    rc = 0;
out:
    json_decref(o);
    return rc;
}

void raft_codec_state_add_app(struct raft_codec_state *s, const char *key, uint64_t expire_at_ms,
                              double ratio)
{
    /* Grown geometrically: one slot at a time made a snapshot of 100,000
     * entries take minutes to decode. */
    if (s->apps_len == s->apps_cap) {
        s->apps_cap = s->apps_cap ? s->apps_cap * 2 : 16;
        s->apps = xrealloc(s->apps, s->apps_cap * sizeof(*s->apps));
    }
    s->apps[s->apps_len++] = (struct raft_codec_app){xstrdup(key), expire_at_ms, ratio};
}

void raft_codec_state_add_host(struct raft_codec_state *s, const char *host, uint64_t expire_at_ms)
{
    if (s->hosts_len == s->hosts_cap) {
        s->hosts_cap = s->hosts_cap ? s->hosts_cap * 2 : 16;
        s->hosts = xrealloc(s->hosts, s->hosts_cap * sizeof(*s->hosts));
    }
    s->hosts[s->hosts_len++] = (struct raft_codec_host){xstrdup(host), expire_at_ms};
}

void raft_codec_state_add_rule(struct raft_codec_state *s, const char *key, uint64_t expire_at_ms,
                               const char *rule)
{
    if (s->rules_len == s->rules_cap) {
        s->rules_cap = s->rules_cap ? s->rules_cap * 2 : 16;
        s->rules = xrealloc(s->rules, s->rules_cap * sizeof(*s->rules));
    }
    s->rules[s->rules_len++] = (struct raft_codec_rule){xstrdup(key), expire_at_ms, xstrdup(rule)};
}

void raft_codec_state_add_audit(struct raft_codec_state *s, const struct audit_record *r)
{
    s->audit = xrealloc(s->audit, (s->audit_len + 1) * sizeof(*s->audit));
    s->audit[s->audit_len++] = *r;
}

void raft_codec_state_deinit(struct raft_codec_state *s)
{
    for (size_t i = 0; i < s->rules_len; i++) {
        free(s->rules[i].key);
        free(s->rules[i].rule);
    }
    free(s->rules);
    free(s->audit);
    for (size_t i = 0; i < s->apps_len; i++)
        free(s->apps[i].key);
    for (size_t i = 0; i < s->hosts_len; i++)
        free(s->hosts[i].host);
    free(s->apps);
    free(s->hosts);
    memset(s, 0, sizeof(*s));
}

static int cmp_app(const void *a, const void *b)
{
    return strcmp(((const struct raft_codec_app *)a)->key, ((const struct raft_codec_app *)b)->key);
}

static int cmp_rule(const void *a, const void *b)
{
    return strcmp(((const struct raft_codec_rule *)a)->key,
                  ((const struct raft_codec_rule *)b)->key);
}

static int cmp_host(const void *a, const void *b)
{
    return strcmp(((const struct raft_codec_host *)a)->host,
                  ((const struct raft_codec_host *)b)->host);
}

/* A shallow copy of the @n elements of @size bytes at @v, in @cmp's order:
 * a copy, so the caller's array keeps its order. The throttler hands its
 * entries over sorted already, so the sort is usually skipped. */
static void *sorted_copy(const void *v, size_t n, size_t size,
                         int (*cmp)(const void *, const void *))
{
    char *c = xcalloc(n + 1, size);
    if (n > 0)
        memcpy(c, v, n * size);
    for (size_t i = 1; i < n; i++) {
        if (cmp(c + (i - 1) * size, c + i * size) > 0) {
            qsort(c, n, size, cmp);
            break;
        }
    }
    return c;
}

/* True if @s is UTF-8 as JSON needs it (no overlong forms, surrogates or
 * code points past U+10FFFF): the test jansson applies to strings. */
static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        size_t n;
        unsigned cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        p += n + 1;
    }
    return true;
}

/* Decimal digits by hand: snprintf for each of 200,000 entries was most of
 * the encoding time. */
static void put_u64(FILE *f, uint64_t v)
{
    char d[24];
    size_t n = sizeof(d);
    do {
        d[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    fwrite(d + n, 1, sizeof(d) - n, f);
}

/* Writes @s (UTF-8) as a JSON string. */
static void put_string(FILE *f, const char *s)
{
    bool plain = true;
    for (const unsigned char *p = (const unsigned char *)s; *p && plain; p++)
        plain = *p >= 0x20 && *p != '"' && *p != '\\' && *p != '<' && *p != '>' && *p != '&';
    if (plain) {
        /* Nothing to escape, the common case. */
        fputc('"', f);
        fputs(s, f);
        fputc('"', f);
        return;
    }
    char small[6 * RAFT_CODEC_KEY_MAX + 3];
    size_t size = strlen(s) * 6 + 3;
    char *q = size <= sizeof(small) ? small : xmalloc(size);
    size_t n = jsonfmt_string(q, size, s);
    fwrite(q, 1, n, f);
    if (q != small)
        free(q);
}

/* Writes the start of an entry, {"<name>":<key>,"expire_at_ms":N, after a
 * comma unless it is the first. Expiries past INT64_MAX ms cannot occur
 * (the throttler bounds TTLs to what a clock can show); they are clamped
 * rather than wrapped if one did. */
static void put_entry(FILE *f, bool first, const char *name, const char *key, uint64_t expire_at_ms)
{
    fputs(first ? "{\"" : ",{\"", f);
    fputs(name, f);
    fputs("\":", f);
    put_string(f, key);
    fputs(",\"expire_at_ms\":", f);
    put_u64(f, expire_at_ms > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : expire_at_ms);
}

/* Written directly rather than through a jansson tree: a snapshot of
 * 200,000 entries is taken on the loop every 64 commands, and building the
 * tree took most of a second. Numbers are printed shortest and read back
 * exactly; equal states give equal bytes. Entries whose key is not UTF-8
 * cannot be written; they cannot come from the log either (commands with
 * such keys are refused). */
void raft_codec_encode_state(const struct raft_codec_state *s, char **out, size_t *len)
{
    struct raft_codec_app *apps = sorted_copy(s->apps, s->apps_len, sizeof(*apps), cmp_app);
    struct raft_codec_host *hosts = sorted_copy(s->hosts, s->hosts_len, sizeof(*hosts), cmp_host);
    struct raft_codec_rule *rules = sorted_copy(s->rules, s->rules_len, sizeof(*rules), cmp_rule);
    FILE *f = open_memstream(out, len);
    if (f == NULL)
        abort(); /* out of memory: fatal, as in xmalloc */
    fprintf(f, "{\"v\":%d,\"apps\":[", FORMAT_VERSION);
    bool first = true;
    for (size_t i = 0; i < s->apps_len; i++) {
        if (!utf8_valid(apps[i].key))
            continue;
        put_entry(f, first, "key", apps[i].key, apps[i].expire_at_ms);
        char num[64];
        size_t n = jsonfmt_number(num, sizeof(num), apps[i].ratio);
        fputs(",\"ratio\":", f);
        fwrite(num, 1, n, f);
        fputc('}', f);
        first = false;
    }
    fputs("],\"hosts\":[", f);
    first = true;
    for (size_t i = 0; i < s->hosts_len; i++) {
        if (!utf8_valid(hosts[i].host))
            continue;
        put_entry(f, first, "host", hosts[i].host, hosts[i].expire_at_ms);
        fputc('}', f);
        first = false;
    }
    fputs("]", f);
    /* A state without rules or audit trail is written as before they
     * existed. */
    if (s->rules_len > 0) {
        fputs(",\"rules\":[", f);
        first = true;
        for (size_t i = 0; i < s->rules_len; i++) {
            if (!utf8_valid(rules[i].key) || !utf8_valid(rules[i].rule))
                continue;
            put_entry(f, first, "key", rules[i].key, rules[i].expire_at_ms);
            fputs(",\"rule\":", f);
            put_string(f, rules[i].rule);
            fputc('}', f);
            first = false;
        }
        fputs("]", f);
    }
    if (s->audit_len > 0) {
        fputs(",\"audit\":[", f);
        first = true;
        for (size_t i = 0; i < s->audit_len; i++) {
            json_t *a = audit_to_json(&s->audit[i]);
            char *text = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;
            json_decref(a);
            if (text == NULL)
                continue;
            if (!first)
                fputc(',', f);
            fputs(text, f);
            free(text);
            first = false;
        }
        fputs("]", f);
    }
    fputs("}", f);
    /* Writes to memory fail only when it runs out: fatal, as in xmalloc. */
    bool failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed)
        abort();
    free(apps);
    free(hosts);
    free(rules);
}

/* Element @i of the snapshot's array @name, which must be an object; where
 * it stands ("raft snapshot: apps[3]") goes to @where for messages. NULL
 * with @err set otherwise. */
static const json_t *entry_at(const json_t *array, const char *what, const char *name, size_t i,
                              char *where, size_t size, struct err *err)
{
    snprintf(where, size, "%s: %s[%zu]", what, name, i);
    const json_t *e = json_array_get(array, i);
    if (!json_is_object(e)) {
        err_set(err, -EINVAL, "%s: not an object", where);
        return NULL;
    }
    return e;
}

int raft_codec_decode_state(const void *buf, size_t len, struct raft_codec_state *s,
                            struct err *err)
{
    static const char what[] = "raft snapshot";
    struct raft_codec_state tmp = {0};
    char where[64];
    json_t *o = load_object(buf, len, what, err);
    if (o == NULL)
        return -EINVAL;
    int rc = -EINVAL;
    const json_t *apps = json_object_get(o, "apps");
    const json_t *hosts = json_object_get(o, "hosts");
    if (!json_is_array(apps) || !json_is_array(hosts)) {
        err_set(err, -EINVAL, "%s: \"apps\" and \"hosts\" must be arrays", what);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(apps); i++) {
        const json_t *e = entry_at(apps, what, "apps", i, where, sizeof(where), err);
        const char *key = e != NULL ? get_key(e, where, "key", err) : NULL;
        uint64_t at = 0;
        double ratio = 0;
        if (key == NULL || get_ms(e, where, "expire_at_ms", &at, err) < 0 ||
            get_ratio(e, where, &ratio, err) < 0)
            goto out;
        raft_codec_state_add_app(&tmp, key, at, ratio);
    }
    for (size_t i = 0; i < json_array_size(hosts); i++) {
        const json_t *e = entry_at(hosts, what, "hosts", i, where, sizeof(where), err);
        const char *host = e != NULL ? get_key(e, where, "host", err) : NULL;
        uint64_t at = 0;
        if (host == NULL || get_ms(e, where, "expire_at_ms", &at, err) < 0)
            goto out;
        raft_codec_state_add_host(&tmp, host, at);
    }
    /* Absent from snapshots written before rules existed. */
    const json_t *rules = json_object_get(o, "rules");
    if (rules != NULL && !json_is_array(rules)) {
        err_set(err, -EINVAL, "%s: \"rules\" must be an array", what);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(rules); i++) {
        const json_t *e = entry_at(rules, what, "rules", i, where, sizeof(where), err);
        const char *key = e != NULL ? get_key(e, where, "key", err) : NULL;
        uint64_t at = 0;
        char text[RAFT_CODEC_RULE_MAX];
        if (key == NULL || get_ms(e, where, "expire_at_ms", &at, err) < 0 ||
            get_rule(e, where, text, sizeof(text), err) < 0)
            goto out;
        /* A rule this build cannot read (a later one wrote it) is left
         * out alone: the rest of the state still loads. */
        struct err rule_err = {0};
        if (check_rule(where, key, text, &rule_err) < 0) {
            if (tmp.rules_skipped++ == 0)
                snprintf(tmp.rules_skipped_first, sizeof(tmp.rules_skipped_first), "%s",
                         rule_err.msg);
            continue;
        }
        raft_codec_state_add_rule(&tmp, key, at, text);
    }
    /* Optional: snapshots written before the audit trail have none. */
    const json_t *audit = json_object_get(o, "audit");
    if (audit != NULL && !json_is_array(audit)) {
        err_set(err, -EINVAL, "%s: \"audit\" must be an array", what);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(audit) && i < AUDIT_TRAIL_MAX; i++) {
        snprintf(where, sizeof(where), "%s: audit[%zu]", what, i);
        struct audit_record r;
        if (audit_from_json(json_array_get(audit, i), where, &r, err) < 0)
            goto out;
        raft_codec_state_add_audit(&tmp, &r);
    }
    *s = tmp;
    memset(&tmp, 0, sizeof(tmp));
    rc = 0;
out:
    raft_codec_state_deinit(&tmp);
    json_decref(o);
    return rc;
}
