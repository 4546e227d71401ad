/* SPDX-License-Identifier: MIT */
/* Host lists for inventory sources. Any thread, no shared state. */
#include "inventory/inv_hosts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/hostport.h"
#include "core/xalloc.h"

bool inv_hosts_add(struct inv_hosts *l, const char *host, uint16_t port)
{
    for (size_t i = 0; i < l->len; i++)
        if (l->v[i].port == port && strcmp(l->v[i].host, host) == 0)
            return false;
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->len].host = xstrdup(host);
    l->v[l->len].port = port;
    l->len++;
    return true;
}

void inv_hosts_merge(struct inv_hosts *l, const struct inv_hosts *src)
{
    for (size_t i = 0; i < src->len; i++)
        inv_hosts_add(l, src->v[i].host, src->v[i].port);
}

void inv_hosts_deinit(struct inv_hosts *l)
{
    for (size_t i = 0; i < l->len; i++)
        free(l->v[i].host);
    free(l->v);
    l->v = NULL;
    l->len = l->cap = 0;
}

int inv_split_host_port(const char *s, uint16_t default_port, char **host, uint16_t *port)
{
    struct hostport hp;
    const char *why;

    if (hostport_parse(s, default_port, &hp, &why) < 0 || hp.port == 0)
        return -EINVAL;
    *host = xstrdup(hp.host);
    *port = hp.port;
    return 0;
}
