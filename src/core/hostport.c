/* SPDX-License-Identifier: MIT */
/* host:port parsing. The rules are those of the configuration's documented
 * forms (docs/config.md): brackets for an IPv6 literal with a port, strict
 * decimal ports, host names without URL or quoting characters. Pure. */
#include "core/hostport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static bool is_ipv6(const char *h, size_t len)
{
    char tmp[64];
    struct in6_addr addr;

    /* A zone ("fe80::1%eth0") is allowed; inet_pton does not take one. */
    const char *pct = memchr(h, '%', len);
    if (pct != NULL) {
        if (pct + 1 == h + len)
            return false;
        len = (size_t)(pct - h);
    }
    if (len == 0 || len >= sizeof(tmp))
        return false;
    memcpy(tmp, h, len);
    tmp[len] = '\0';
    return inet_pton(AF_INET6, tmp, &addr) == 1;
}

static bool is_hostname(const char *h, size_t len)
{
    if (len == 0 || len > HOSTPORT_HOST_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)h[i];
        if (ch <= 0x20 || ch == 0x7f || strchr("/?#@[]:\\\"'", ch) != NULL)
            return false;
    }
    return true;
}

bool hostport_is_host(const char *host, size_t len)
{
    return memchr(host, ':', len) != NULL ? is_ipv6(host, len) : is_hostname(host, len);
}

/* Parses a decimal port 1..65535 written with 1 to 5 digits. */
static bool parse_port(const char *s, uint16_t *port)
{
    size_t len = strlen(s);
    uint32_t v = 0;

    if (len == 0 || len > 5)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

/* The part of the text that names the host, and the port text if any. */
struct split {
    const char *host;
    size_t host_len;
    const char *port; /* NULL: no port */
};

/* "[v6]" or "[v6]:port". */
static const char *split_bracketed(const char *s, struct split *sp)
{
    const char *close = strchr(s, ']');
    if (close == NULL)
        return "missing ']'";
    sp->host = s + 1;
    sp->host_len = (size_t)(close - sp->host);
    if (close[1] == ':')
        sp->port = close + 2;
    else if (close[1] != '\0')
        return "unexpected text after ']'";
    if (!is_ipv6(sp->host, sp->host_len))
        return "invalid IPv6 address";
    return NULL;
}

/* "host", "host:port" or a bare IPv6 literal (two colons or more). */
static const char *split_plain(const char *s, struct split *sp)
{
    const char *colon = strchr(s, ':');

    sp->host = s;
    if (colon != NULL && strchr(colon + 1, ':') != NULL) {
        sp->host_len = strlen(s);
        return is_ipv6(s, sp->host_len) ? NULL : "invalid port or IPv6 address";
    }
    sp->host_len = colon ? (size_t)(colon - s) : strlen(s);
    if (colon != NULL)
        sp->port = colon + 1;
    if (sp->host_len == 0)
        return "empty host";
    if (sp->host_len > HOSTPORT_HOST_MAX)
        return "host name longer than 255 bytes";
    if (!is_hostname(s, sp->host_len))
        return "invalid host name";
    return NULL;
}

int hostport_parse(const char *s, uint16_t default_port, struct hostport *out, const char **why)
{
    struct split sp = {0};

    *why = s[0] == '[' ? split_bracketed(s, &sp) : split_plain(s, &sp);
    if (*why != NULL)
        return -EINVAL;
    out->port = default_port;
    if (sp.port != NULL && !parse_port(sp.port, &out->port)) {
        *why = "invalid port";
        return -ERANGE;
    }
    /* Both splitters checked the length (an IPv6 literal is far shorter). */
    memcpy(out->host, sp.host, sp.host_len);
    out->host[sp.host_len] = '\0';
    return 0;
}

int hostport_format(char *buf, size_t size, const char *host, uint16_t port)
{
    if (strchr(host, ':') != NULL)
        return snprintf(buf, size, "[%s]:%u", host, (unsigned)port);
    return snprintf(buf, size, "%s:%u", host, (unsigned)port);
}
