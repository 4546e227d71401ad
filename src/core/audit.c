/* SPDX-License-Identifier: MIT */
/* Clean text for the audit trail: what a client sends is data, and may
 * carry anything (control characters to forge log lines, bytes that are not
 * UTF-8 to break JSON or SQL). */
#include "core/audit.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "core/xalloc.h"

/* Room kept at the end of a cut field for "..." and the NUL. */
#define CUT_MARK     "..."
#define CUT_MARK_LEN 3

static size_t escape_one(const uint8_t *s, size_t n, char esc[12], size_t *take)
{
    static const char hex[] = "0123456789abcdef";
    ucs4_t uc;
    int len = u8_mbtoucr(&uc, s, n);
    if (len < 0) {
        /* A byte that starts no UTF-8 character: show it, as U+00XX. */
        *take = 1;
        uc = s[0];
    } else {
        *take = (size_t)len;
    }
    bool control = uc < 0x20 || (uc >= 0x7f && uc <= 0x9f) || uc == 0x2028 || uc == 0x2029;
    if (len >= 0 && (uc == '"' || uc == '\\')) {
        esc[0] = '\\';
        esc[1] = (char)uc;
        return 2;
    }
    if (len < 0 || control) {
        snprintf(esc, 12, "\\u%c%c%c%c", hex[(uc >> 12) & 15], hex[(uc >> 8) & 15],
                 hex[(uc >> 4) & 15], hex[uc & 15]);
        return 6;
    }
    memcpy(esc, s, *take);
    return *take;
}

/* The length of @s (@n bytes) as clean text. */
static size_t clean_len(const uint8_t *s, size_t n)
{
    size_t total = 0;
    while (n > 0) {
        char esc[12];
        size_t take;
        total += escape_one(s, n, esc, &take);
        s += take;
        n -= take;
    }
    return total;
}

size_t audit_clean(char *dst, size_t size, const char *src)
{
    if (size == 0)
        return 0;
    if (src == NULL || src[0] == '\0')
        src = "-";
    const uint8_t *s = (const uint8_t *)src;
    size_t n = strlen(src), o = 0;
    /* Cut: keep room for the mark, and never split an escape or a
     * character. */
    bool cut = clean_len(s, n) > size - 1;
    size_t room = !cut ? size - 1 : size > CUT_MARK_LEN + 1 ? size - 1 - CUT_MARK_LEN : 0;
    while (n > 0) {
        char esc[12];
        size_t take;
        size_t el = escape_one(s, n, esc, &take);
        if (o + el > room)
            break;
        memcpy(dst + o, esc, el);
        o += el;
        s += take;
        n -= take;
    }
    if (cut && size > CUT_MARK_LEN + 1) {
        memcpy(dst + o, CUT_MARK, CUT_MARK_LEN);
        o += CUT_MARK_LEN;
    }
    dst[o] = '\0';
    return o;
}

void audit_params_init(struct audit_record *r)
{
    snprintf(r->params, sizeof(r->params), "{}");
}

void audit_params_add(struct audit_record *r, const char *key, const char *value)
{
    if (value == NULL)
        return;
    char v[AUDIT_PARAMS_SIZE];
    audit_clean(v, sizeof(v), value);
    size_t len = strlen(r->params); /* ends with '}' */
    char *at = r->params + len - 1;
    size_t room = sizeof(r->params) - (len - 1);
    int w = snprintf(at, room, "%s\"%s\":\"%s\"}", len > 2 ? "," : "", key, v);
    if (w < 0 || (size_t)w >= room)
        snprintf(at, room, "}"); /* does not fit: left out */
}

size_t audit_format_line(char *buf, size_t size, const struct audit_record *r)
{
    int w = snprintf(
            buf, size,
            "who=\"%s\" peer=\"%s\" forwarded=\"%s\" what=\"%s\" params=%s status=%d message=\"%s\"",
            r->who, r->peer, r->forwarded, r->what, r->params, r->status, r->message);
    if (w < 0)
        return 0;
    return (size_t)w < size ? (size_t)w : size - 1;
}

void audit_ring_push(struct audit_ring *ring, const struct audit_record *r)
{
    if (ring->cap == 0)
        return;
    if (ring->v == NULL)
        ring->v = xcalloc(ring->cap, sizeof(*ring->v));
    ring->v[ring->next] = *r;
    ring->next = (ring->next + 1) % ring->cap;
    if (ring->len < ring->cap)
        ring->len++;
}

struct audit_record *audit_ring_newest_first(const struct audit_ring *ring, size_t *len)
{
    *len = ring->len;
    if (ring->len == 0)
        return NULL;
    struct audit_record *out = xmalloc(ring->len * sizeof(*out));
    for (size_t i = 0; i < ring->len; i++)
        out[i] = ring->v[(ring->next + ring->cap - 1 - i) % ring->cap];
    return out;
}

void audit_ring_clear(struct audit_ring *ring)
{
    free(ring->v);
    ring->v = NULL;
    ring->len = 0;
    ring->next = 0;
}
