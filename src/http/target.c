/* SPDX-License-Identifier: MIT */
/* Request target and body framing checks: see target.h. */
#include "http/target.h"

#include <string.h>
#include <strings.h>

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

enum http_target_problem http_target_check(const char *raw)
{
    size_t len = strlen(raw);
    unsigned args = 0;
    bool in_query = false;
    for (size_t i = 0; i < len; i++) {
        char c = raw[i];
        if (c == '%') {
            if (!is_hex(raw[i + 1]) || !is_hex(raw[i + 2]))
                return HTTP_TARGET_BAD_ESCAPE;
            if (raw[i + 1] == '0' && raw[i + 2] == '0')
                return HTTP_TARGET_NUL;
            i += 2;
        } else if (c == '?' && !in_query) {
            in_query = true;
            args = 1;
        } else if (c == '&' && in_query && ++args > HTTP_TARGET_ARGS_MAX) {
            return HTTP_TARGET_TOO_MANY_ARGS;
        }
    }
    return HTTP_TARGET_OK;
}

const char *http_target_problem_text(enum http_target_problem p)
{
    switch (p) {
    case HTTP_TARGET_NUL:
        return "the request target holds a NUL byte";
    case HTTP_TARGET_BAD_ESCAPE:
        return "the request target holds a malformed percent-escape";
    case HTTP_TARGET_TOO_MANY_ARGS:
        return "the request target has too many query arguments";
    default:
        return "";
    }
}

void http_framing_add(struct http_framing *f, const char *name, const char *value)
{
    if (strcasecmp(name, "Content-Length") == 0) {
        f->content_lengths++;
        size_t n = strlen(value);
        unsigned long long v = 0;
        bool ok = n > 0 && n <= 20;
        for (size_t i = 0; ok && i < n; i++) {
            ok = value[i] >= '0' && value[i] <= '9';
            if (ok)
                v = v * 10 + (unsigned)(value[i] - '0');
        }
        if (!ok || v > HTTP_BODY_MAX)
            f->content_length_bad = true;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        f->transfer_encodings++;
        if (strcasecmp(value, "chunked") != 0)
            f->transfer_encoding_bad = true;
    }
}

int http_framing_verdict(const struct http_framing *f, const char **why)
{
    if (f->content_lengths > 1) {
        *why = "more than one Content-Length";
        return 400;
    }
    if (f->transfer_encodings > 1 || (f->transfer_encodings > 0 && f->content_lengths > 0)) {
        *why = "a body framed twice (Transfer-Encoding with Content-Length, or twice)";
        return 400;
    }
    if (f->transfer_encoding_bad) {
        *why = "a Transfer-Encoding other than chunked";
        return 501;
    }
    if (f->content_length_bad) {
        *why = "a Content-Length that is not a number up to 65536";
        return 413;
    }
    return 0;
}
