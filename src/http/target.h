/* SPDX-License-Identifier: MIT */
/* Checks on a request before any handler sees it: its raw target (the path
 * and query as sent, before percent-decoding) and the headers that say how
 * its body is framed. What the HTTP library would otherwise decode into C
 * strings silently (a %00 or a raw NUL cutting a name short, a malformed
 * escape kept as is) or wait on for a long time (a body framed in a way it
 * half understands) is refused here, once, with a reason. No allocation, no
 * lock; any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Query arguments a request may carry: the API reads at most two, and the
 * library stores each in the connection's fixed memory, where thousands
 * would leave no room to answer. */
#define HTTP_TARGET_ARGS_MAX 64
/* Largest request body announced with Content-Length: the API reads none. */
#define HTTP_BODY_MAX 65536u

enum http_target_problem {
    HTTP_TARGET_OK,
    HTTP_TARGET_NUL,          /* %00, or a raw NUL inside the target */
    HTTP_TARGET_BAD_ESCAPE,   /* '%' not followed by two hex digits */
    HTTP_TARGET_TOO_MANY_ARGS /* more than HTTP_TARGET_ARGS_MAX query arguments */
};

/* Judges the raw target @raw (a C string: a raw NUL must be caught before,
 * by whoever knows where the target ends). */
enum http_target_problem http_target_check(const char *raw);
/* A short phrase for @p ("a NUL byte", ...). */
const char *http_target_problem_text(enum http_target_problem p);

/* Body framing, from the request's headers, fed one header at a time. */
struct http_framing {
    unsigned content_lengths;    /* Content-Length headers seen */
    unsigned transfer_encodings; /* Transfer-Encoding headers seen */
    bool content_length_bad;     /* not a decimal number, or over HTTP_BODY_MAX */
    bool transfer_encoding_bad;  /* a Transfer-Encoding other than exactly "chunked" */
};
/* Takes one request header into @f. */
void http_framing_add(struct http_framing *f, const char *name, const char *value);
/* The status to refuse the request with (400, 413 or 501), or 0 if the
 * framing is fine; *@why gets a short reason. */
int http_framing_verdict(const struct http_framing *f, const char **why);
