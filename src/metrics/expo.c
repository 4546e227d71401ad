/* SPDX-License-Identifier: MIT */
/* Prometheus text builder: one growing buffer; each family is declared once
 * (checked), and label values go through one escaping routine so client
 * strings can never end a line, a quote or the UTF-8 stream early. Owner
 * thread only. */
#include "metrics/expo.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistr.h>

#include "core/strmap.h"
#include "core/xalloc.h"

struct expo {
    char *buf;
    size_t len;
    size_t size;
    struct strmap families; /* names declared so far (values unused), to refuse a second # TYPE */
    char *family;           /* the current family's name; NULL before the first */
    enum expo_type type;    /* of the current family */
};

struct expo *expo_new(void)
{
    struct expo *e = xcalloc(1, sizeof(*e));
    e->size = 4096;
    e->buf = xmalloc(e->size);
    e->buf[0] = '\0';
    strmap_init(&e->families);
    return e;
}

static void forget_families(struct expo *e)
{
    strmap_deinit(&e->families);
    strmap_init(&e->families);
    free(e->family);
    e->family = NULL;
}

void expo_free(struct expo *e)
{
    if (e == NULL)
        return;
    forget_families(e);
    free(e->buf);
    free(e);
}

static void reserve(struct expo *e, size_t extra)
{
    if (e->len + extra + 1 <= e->size)
        return;
    size_t size = e->size * 2;
    if (size < e->len + extra + 1)
        size = e->len + extra + 1;
    e->buf = xrealloc(e->buf, size);
    e->size = size;
}

static void put(struct expo *e, const char *s, size_t n)
{
    reserve(e, n);
    memcpy(e->buf + e->len, s, n);
    e->len += n;
    e->buf[e->len] = '\0';
}

static void puts_(struct expo *e, const char *s)
{
    put(e, s, strlen(s));
}

/* Names come from code, so a bad one is a programmer error. The check stays
 * in builds with NDEBUG: a second # TYPE line fails every scrape. */
static void require(bool ok, const char *what, const char *name)
{
    if (ok)
        return;
    fprintf(stderr, "expo: %s: %s\n", what, name ? name : "(null)");
    abort();
}

static bool is_name(const char *s, bool colon)
{
    if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || (colon && c == ':');
        if (!ok)
            return false;
    }
    return true;
}

/* Escapes @s for a label value (@quote_too) or a HELP text: backslash and
 * line feed always, double quote in label values; invalid UTF-8 becomes
 * U+FFFD. With @dst, writes what fits whole in @size - 1 bytes plus a NUL;
 * returns the length escaped (all of it when @dst is NULL). */
static size_t escape(char *dst, size_t size, const char *s, bool quote_too)
{
    static const char replacement[] = "\xEF\xBF\xBD";
    const uint8_t *p = (const uint8_t *)s;
    size_t n = strlen(s), o = 0;
    while (n > 0) {
        const char *out;
        size_t out_len, take;
        ucs4_t uc;
        int len = u8_mbtoucr(&uc, p, n);
        if (len < 0) {
            out = replacement;
            out_len = 3;
            take = 1;
        } else if (uc == '\\' || uc == '\n' || (quote_too && uc == '"')) {
            out = uc == '\n' ? "\\n" : uc == '"' ? "\\\"" : "\\\\";
            out_len = 2;
            take = 1;
        } else {
            out = (const char *)p;
            out_len = (size_t)len;
            take = (size_t)len;
        }
        if (dst != NULL) {
            if (o + out_len >= size)
                break;
            memcpy(dst + o, out, out_len);
        }
        o += out_len;
        p += take;
        n -= take;
    }
    if (dst != NULL)
        dst[o] = '\0';
    return o;
}

size_t expo_escape_label_value(char *dst, size_t size, const char *value)
{
    if (size == 0)
        return 0;
    return escape(dst, size, value, true);
}

static void put_escaped(struct expo *e, const char *s, bool quote_too)
{
    size_t n = escape(NULL, 0, s, quote_too);
    reserve(e, n);
    escape(e->buf + e->len, n + 1, s, quote_too);
    e->len += n;
}

void expo_family(struct expo *e, const char *name, enum expo_type type, const char *help)
{
    require(is_name(name, true), "bad metric name", name);
    require(strmap_get(&e->families, name) == NULL, "family declared twice", name);
    strmap_put(&e->families, name, e);
    free(e->family);
    e->family = xstrdup(name);
    e->type = type;
    static const char *const types[] = {
            [EXPO_COUNTER] = "counter",
            [EXPO_GAUGE] = "gauge",
            [EXPO_SUMMARY] = "summary",
    };
    puts_(e, "# HELP ");
    puts_(e, name);
    puts_(e, " ");
    put_escaped(e, help, false);
    puts_(e, "\n# TYPE ");
    puts_(e, name);
    puts_(e, " ");
    puts_(e, types[type]);
    puts_(e, "\n");
}

static void put_series(struct expo *e, const char *suffix, const struct expo_label *labels,
                       size_t nlabels)
{
    require(e->family != NULL, "sample before any family", NULL);
    puts_(e, e->family);
    if (suffix != NULL && suffix[0] != '\0') {
        require(is_name(suffix, true), "bad suffix", suffix);
        puts_(e, suffix);
    }
    if (nlabels == 0) {
        puts_(e, " ");
        return;
    }
    puts_(e, "{");
    for (size_t i = 0; i < nlabels; i++) {
        require(is_name(labels[i].name, false) && strncmp(labels[i].name, "__", 2) != 0,
                "bad label name", labels[i].name);
        if (i > 0)
            puts_(e, ",");
        puts_(e, labels[i].name);
        puts_(e, "=\"");
        put_escaped(e, labels[i].value != NULL ? labels[i].value : "", true);
        puts_(e, "\"");
    }
    puts_(e, "} ");
}

void expo_sample(struct expo *e, const char *suffix, const struct expo_label *labels,
                 size_t nlabels, double value)
{
    char num[40];
    if (isnan(value)) {
        snprintf(num, sizeof(num), "NaN");
    } else if (isinf(value)) {
        snprintf(num, sizeof(num), "%s", value > 0 ? "+Inf" : "-Inf");
    } else {
        /* The shortest of the two precisions that reads back exactly. */
        snprintf(num, sizeof(num), "%.15g", value);
        if (strtod(num, NULL) != value)
            snprintf(num, sizeof(num), "%.17g", value);
    }
    put_series(e, suffix, labels, nlabels);
    puts_(e, num);
    puts_(e, "\n");
}

void expo_sample_u64(struct expo *e, const char *suffix, const struct expo_label *labels,
                     size_t nlabels, uint64_t value)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRIu64, value);
    put_series(e, suffix, labels, nlabels);
    puts_(e, num);
    puts_(e, "\n");
}

size_t expo_len(const struct expo *e)
{
    return e->len;
}

char *expo_take(struct expo *e, size_t *len)
{
    char *text = e->buf;
    *len = e->len;
    forget_families(e);
    e->size = 4096;
    e->buf = xmalloc(e->size);
    e->buf[0] = '\0';
    e->len = 0;
    return text;
}
