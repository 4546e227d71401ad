/* SPDX-License-Identifier: MIT */
/* Host lists for inventory sources. Any thread, no shared state. */
#include "inventory/inv_hosts.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/parse.h"
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

static int parse_port(const char *s, uint16_t *port)
{
    uint32_t v;
    if (parse_u32(s, &v) < 0 || v == 0 || v > 65535)
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

int inv_split_host_port(const char *s, uint16_t default_port, char **host, uint16_t *port)
{
    const char *end;
    const char *port_str = NULL;
    const char *begin = s;

    if (s[0] == '[') {
        end = strchr(s, ']');
        if (end == NULL)
            return -EINVAL;
        begin = s + 1;
        if (end[1] == ':')
            port_str = end + 2;
        else if (end[1] != '\0')
            return -EINVAL;
    } else {
        const char *colon = strchr(s, ':');
        end = s + strlen(s);
        /* Two or more colons without brackets: a bare IPv6 address. */
        if (colon != NULL && strchr(colon + 1, ':') == NULL) {
            end = colon;
            port_str = colon + 1;
        }
    }
    if (end == begin)
        return -EINVAL;
    uint16_t p = default_port;
    if (port_str != NULL && parse_port(port_str, &p) < 0)
        return -EINVAL;
    if (p == 0)
        return -EINVAL;
    *host = xstrndup(begin, (size_t)(end - begin));
    *port = p;
    return 0;
}
