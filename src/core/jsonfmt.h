/* SPDX-License-Identifier: MIT */
/* JSON scalar formatting compatible with Go's encoding/json. Any thread. */
#pragma once

#include <stddef.h>

/* Formats @v the way Go's encoding/json does (shortest round-trip, no
 * exponent for 1e-6 <= |v| < 1e21); non-finite values print as 0. Returns
 * the length written, or 0 if @size is too small. */
size_t jsonfmt_number(char *buf, size_t size, double v);
/* Writes @s as a JSON string literal (with quotes; <, > and & escaped as Go
 * does) into @buf; returns the length, or 0 if it does not fit. */
size_t jsonfmt_string(char *buf, size_t size, const char *s);
/* Writes the six bytes of the JSON escape \u00XX for byte @c into @out;
 * returns 6. */
size_t jsonfmt_escape_byte(char out[6], unsigned char c);
