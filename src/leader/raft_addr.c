/* SPDX-License-Identifier: MIT */
/* Canonical raft addresses and node ids derived from them. Any thread. */
#include "leader/raft_addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/hash.h"
#include "core/hostport.h"

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Fills a missing port from @default_port, or says why it cannot. */
static int default_port_for(const char *addr, int64_t default_port, uint16_t *port, struct err *err)
{
    if (default_port == 0)
        return err_set(err, -EINVAL, "raft address %s: no port, and DefaultRaftPort is not set",
                       addr);
    if (default_port < 1 || default_port > 65535)
        return err_set(err, -EINVAL, "raft address %s: DefaultRaftPort %lld is not 1 to 65535",
                       addr, (long long)default_port);
    *port = (uint16_t)default_port;
    return 0;
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
    struct hostport hp;
    const char *why;
    int rc = hostport_parse(buf, 0, &hp, &why);
    if (rc == -ERANGE)
        return err_set(err, -EINVAL, "raft address %s: port must be 1 to 65535", buf);
    /* Whatever else is wrong, the host is not an IPv4 address. */
    const char *host = rc == 0 ? hp.host : buf;
    struct in_addr a;
    if (rc == 0 && hp.port == 0 && default_port_for(host, default_port, &hp.port, err) < 0)
        return -EINVAL;
    if (rc < 0 || inet_pton(AF_INET, host, &a) != 1)
        return err_set(
                err, -EINVAL,
                "raft address %s: not an IPv4 address; libraft's transport does not resolve host names",
                host);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, ip, sizeof(ip));
    snprintf(out, RAFT_ADDR_MAX, "%s:%u", ip, (unsigned)hp.port);
    return 0;
}

uint64_t raft_addr_id(const char *addr)
{
    /* Node ids are written to raft data dirs and derived by every node on
     * its own, so they come from the stable hash, never the keyed one. */
    uint64_t h = hash_stable64(addr, strlen(addr));
    return h == 0 ? 1 : h;
}
