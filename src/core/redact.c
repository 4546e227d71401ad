/* SPDX-License-Identifier: MIT */
/* Credential masking for messages (see redact.h). Any thread. Invariant:
 * the output never holds a byte of a masked part, even when cut short. */
#include "core/redact.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "core/xalloc.h"

/* An output buffer that drops what does not fit, so callers need no checks. */
struct out {
    char *buf;
    size_t size;
    size_t len;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->size == 0)
        return;
    size_t room = o->size - 1 - o->len;
    if (n > room)
        n = room;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

/* Where a URL written in free text ends: at white space, a quote, an angle
 * bracket or a control byte. */
static bool ends_token(char c)
{
    return c == '\0' || (unsigned char)c <= ' ' || c == '"' || c == '\'' || c == '`' || c == '<' ||
           c == '>' || c == 0x7f;
}

/* Query parameter names whose values are credentials. */
static bool is_secret_param(const char *name, size_t n)
{
    static const char *const parts[] = {"token", "secret", "passw", "pwd", "auth", "cred", "sig"};
    static const char *const whole[] = {"key", "apikey", "api_key", "api-key", "pass", "pw"};
    char low[64];
    if (n == 0 || n >= sizeof(low))
        return false;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] - 'A' + 'a' : name[i]);
    low[n] = '\0';
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (strstr(low, parts[i]) != NULL)
            return true;
    for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++)
        if (strcmp(low, whole[i]) == 0)
            return true;
    return false;
}

/* Masks one URL or address starting at @p (after any "scheme://") and
 * ending before @end; returns @end. The user information ends at the last
 * '@' before the query or fragment: a password holding an unescaped '/'
 * is still masked whole. */
static const char *mask_url(struct out *o, const char *p, const char *end)
{
    const char *q = p;
    while (q < end && *q != '?' && *q != '#')
        q++;
    const char *at = NULL;
    for (const char *s = p; s < q; s++)
        if (*s == '@')
            at = s;
    if (at != NULL) {
        put(o, REDACT_MASK, strlen(REDACT_MASK));
        p = at;
    }
    put(o, p, (size_t)(q - p));
    p = q;
    if (p >= end || *p != '?')
        goto rest;
    put(o, "?", 1);
    p++;
    while (p < end && *p != '#') {
        const char *amp = p;
        while (amp < end && *amp != '&' && *amp != '#')
            amp++;
        const char *eq = memchr(p, '=', (size_t)(amp - p));
        if (eq != NULL && is_secret_param(p, (size_t)(eq - p))) {
            put(o, p, (size_t)(eq - p) + 1);
            put(o, REDACT_MASK, strlen(REDACT_MASK));
        } else {
            put(o, p, (size_t)(amp - p));
        }
        p = amp;
        if (p < end && *p == '&') {
            put(o, "&", 1);
            p++;
        }
    }
rest:
    put(o, p, (size_t)(end - p));
    return end;
}

static bool is_scheme_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '-' || c == '.';
}

static void do_text(struct out *o, const char *in)
{
    const char *p = in;
    while (*p != '\0') {
        const char *sep = strstr(p, "://");
        if (sep == NULL || sep == p || !is_scheme_char(sep[-1])) {
            size_t n = sep == NULL ? strlen(p) : (size_t)(sep - p) + 3;
            put(o, p, n);
            p += n;
            continue;
        }
        put(o, p, (size_t)(sep - p) + 3);
        const char *start = sep + 3, *end = start;
        while (!ends_token(*end))
            end++;
        p = mask_url(o, start, end);
    }
}

static void do_address(struct out *o, const char *in)
{
    if (strstr(in, "://") != NULL) {
        do_text(o, in);
        return;
    }
    mask_url(o, in, in + strlen(in));
}

/* Runs @fn over @in (NULL: "") into @out of @size bytes; returns @out. */
static const char *redact_into(void (*fn)(struct out *, const char *), const char *in, char *out,
                               size_t size)
{
    struct out o = {out, size, 0};
    if (size > 0)
        out[0] = '\0';
    fn(&o, in != NULL ? in : "");
    return out;
}

const char *redact_text(const char *in, char *out, size_t size)
{
    return redact_into(do_text, in, out, size);
}

const char *redact_address(const char *in, char *out, size_t size)
{
    return redact_into(do_address, in, out, size);
}

/* Each mask stands for a distinct '@' or '=' of the input and adds at most
 * its own length, so the output fits in 1 + strlen(mask) bytes per input
 * byte. */
static size_t dup_size(const char *in)
{
    size_t n = in != NULL ? strlen(in) : 0;
    return n * (1 + strlen(REDACT_MASK)) + 1;
}

char *redact_text_dup(const char *in)
{
    size_t size = dup_size(in);
    char *out = xmalloc(size);
    redact_text(in, out, size);
    return out;
}

char *redact_address_dup(const char *in)
{
    size_t size = dup_size(in);
    char *out = xmalloc(size);
    redact_address(in, out, size);
    return out;
}
