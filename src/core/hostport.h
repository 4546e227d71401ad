/* SPDX-License-Identifier: MIT */
/* The one parser for "host:port" text, whatever it names: MySQL hosts in the
 * config and in inventory answers, memcache servers, raft nodes. Callers add
 * their own policy (a default port, IPv4 only, ...) on top. Pure; any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest host accepted, in bytes (a DNS name has at most 253). */
#define HOSTPORT_HOST_MAX 255
/* Room for any text hostport_format() writes: "[host]:65535" and the NUL. */
#define HOSTPORT_TEXT_SIZE (HOSTPORT_HOST_MAX + 9)

struct hostport {
    char host[HOSTPORT_HOST_MAX + 1]; /* an IPv6 literal without its brackets */
    uint16_t port;                    /* 0 only when none was given and the default is 0 */
};

/* Parses @s: "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 literal
 * ("::1", "fe80::1%eth0"). A host name is 1..255 bytes without blanks,
 * control characters or any of /?#@[]:\"' and an IPv6 literal must parse; a
 * port is 1 to 5 decimal digits with a value of 1..65535, and when there is
 * none, @default_port (which may be 0) is used. Nothing around the text is
 * skipped. Returns 0 with @out filled, -EINVAL when the host or the shape is
 * wrong, or -ERANGE when the port is; then *@why names the problem in a few
 * words ("invalid port") and @out is unspecified. */
int hostport_parse(const char *s, uint16_t default_port, struct hostport *out, const char **why);

/* Tells whether the @len bytes at @host are a host hostport_parse() accepts
 * without brackets: a host name, or an IPv6 literal when there is a ':'. */
bool hostport_is_host(const char *host, size_t len);

/* Writes "host:port", or "[host]:port" when @host is an IPv6 literal, into
 * @buf of @size bytes (HOSTPORT_TEXT_SIZE holds any host hostport_parse()
 * gives). Returns what snprintf returns. */
int hostport_format(char *buf, size_t size, const char *host, uint16_t port);
