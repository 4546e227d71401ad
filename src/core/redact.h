/* SPDX-License-Identifier: MIT */
/* Masks credentials in text that goes into a log line, an error or an
 * answer: the user information of URLs (user:pw@ becomes ***@) and the
 * values of query parameters named like
 * credentials (token, password, secret, key, auth, sig, ...). Applied where
 * a message is formatted, so a secret never reaches a buffer that is
 * printed. Masking twice gives the same text. Pure; any thread. */
#pragma once

#include <stddef.h>

#define REDACT_MASK "***"

/* Copies @in into @out (@size bytes, NUL-terminated, cut if too long) with
 * every "scheme://" URL masked: the user information (everything before the
 * last '@' ahead of the URL's query, fragment or end) becomes "***", and so
 * does each credential-like query parameter's value. Returns @out. */
const char *redact_text(const char *in, char *out, size_t size);

/* The same for one address that may have no scheme, such as
 * "user:pw@host:11211" or "host:port/path?token=...": anything before its
 * last '@' ahead of '?' or '#' is masked too. Returns @out. */
const char *redact_address(const char *in, char *out, size_t size);

/* Heap copies (free() them) of redact_text() / redact_address(), whatever
 * the length of @in. */
char *redact_text_dup(const char *in);
char *redact_address_dup(const char *in);
