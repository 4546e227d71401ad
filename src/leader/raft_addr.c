/* SPDX-License-Identifier: MIT */
/* Canonical raft addresses and node ids derived from them. Any thread. */
#include "leader/raft_addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/parse.h"

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int raft_addr_normalize(const char *in, int64_t default_port, char out[RAFT_ADDR_MAX],
                        struct err *err)
{
    char buf[256];
    while (is_blank(*in))
        in++;
    size_t n = strlen(in);
    while (n > 0 && is_blank(in[n - 1]))
        n--;
    if (n == 0)
        return err_set(err, -EINVAL, "raft address: empty");
    if (n >= sizeof(buf))
        return err_set(err, -EINVAL, "raft address %.40s...: too long", in);
    memcpy(buf, in, n);
    buf[n] = '\0';

    if (buf[0] == '[' || strchr(buf, ':') != strrchr(buf, ':'))
        return err_set(
                err, -EINVAL,
                "raft address %s: IPv6 is not supported by libraft's transport; use an IPv4 address",
                buf);
    int64_t port = default_port;
    char *colon = strchr(buf, ':');
    if (colon != NULL) {
        *colon = '\0';
        if (parse_i64(colon + 1, &port) < 0 || port < 1 || port > 65535)
            return err_set(err, -EINVAL, "raft address %s:%s: port must be 1 to 65535", buf,
                           colon + 1);
    } else if (port == 0) {
        return err_set(err, -EINVAL, "raft address %s: no port, and DefaultRaftPort is not set",
                       buf);
    } else if (port < 1 || port > 65535) {
        return err_set(err, -EINVAL, "raft address %s: DefaultRaftPort %lld is not 1 to 65535", buf,
                       (long long)port);
    }
    struct in_addr a;
    if (inet_pton(AF_INET, buf, &a) != 1)
        return err_set(
                err, -EINVAL,
                "raft address %s: not an IPv4 address; libraft's transport does not resolve host names",
                buf);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, ip, sizeof(ip));
    snprintf(out, RAFT_ADDR_MAX, "%s:%u", ip, (unsigned)port);
    return 0;
}

uint64_t raft_addr_id(const char *addr)
{
    uint64_t h = 14695981039346656037ull;
    for (const unsigned char *p = (const unsigned char *)addr; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h == 0 ? 1 : h;
}
