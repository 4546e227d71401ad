/* SPDX-License-Identifier: MIT */
/* Host sources: the one table of their names, which keys select one for a
 * cluster, and the finishing of each (static hosts, HAProxy, ProxySQL,
 * Vitess): values checked and turned into the forms the inventory reads.
 * Main thread. */
#include "config/config_load.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/hostport.h"
#include "core/strbuf.h"
#include "core/xalloc.h"

/* ---- static hosts ---- */

static void finish_static(struct config_loader *ld, struct config_cluster_raw *cr,
                          const char *cpath)
{
    struct config_cluster *c = &cr->c;
    const struct config_strv *hosts = &cr->static_hosts;

    c->static_hosts = xcalloc(hosts->len, sizeof(*c->static_hosts));
    for (size_t i = 0; i < hosts->len; i++) {
        struct hostport hp;
        const char *why;
        if (hostport_parse(hosts->v[i], c->port, &hp, &why) < 0) {
            char *got = config_clean(hosts->v[i]);
            config_diag_error(ld, cr->file, "%s.StaticHostsSettings.Hosts[%zu]: \"%s\": %s", cpath,
                              i, got, why);
            free(got);
            continue;
        }
        struct config_hostport *out = &c->static_hosts[c->static_hosts_len++];
        out->host = xstrdup(hp.host);
        out->port = hp.port;
    }
}

/* ---- HAProxy ---- */

/* "http://" and the host and port, with brackets around an IPv6 host. */
static char *http_base_url(const char *host, uint16_t port)
{
    char hp[HOSTPORT_TEXT_SIZE];
    hostport_format(hp, sizeof(hp), host, port);
    return xasprintf("http://%s", hp);
}

/* Checks "[user@]host[:port]", the authority of a URL (@len bytes at @auth). */
static const char *check_authority(const char *auth, size_t len)
{
    const char *at = memrchr(auth, '@', len);
    const char *h = at ? at + 1 : auth;
    char *hostport = xstrndup(h, (size_t)(auth + len - h));
    const char *colon = strchr(hostport, ':');
    const char *why = NULL;
    struct hostport hp;

    if (hostport[0] != '[' && colon != NULL && strchr(colon + 1, ':') != NULL)
        why = "an IPv6 address needs brackets in a URL";
    else
        hostport_parse(hostport, 0, &hp, &why);
    free(hostport);
    return why;
}

/* Turns one HAProxy address into a base URL without a trailing slash:
 * "host[:port]" gives "http://host:port" (port 80 if missing, as in the
 * original), "http(s)://[user@]host[:port][/path]" is checked and kept.
 * Returns NULL and sets *@why on error. */
static char *haproxy_url(const char *tok, const char **why)
{
    const char *sep = strstr(tok, "://");
    struct hostport hp;

    *why = NULL;
    if (sep == NULL)
        return hostport_parse(tok, 80, &hp, why) == 0 ? http_base_url(hp.host, hp.port) : NULL;
    const char *scheme = NULL;
    if ((size_t)(sep - tok) == 4 && strncasecmp(tok, "http", 4) == 0)
        scheme = "http";
    else if ((size_t)(sep - tok) == 5 && strncasecmp(tok, "https", 5) == 0)
        scheme = "https";
    else
        *why = "the scheme must be http or https";
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *path = auth + alen;
    if (*why == NULL && path[strcspn(path, "?#")] != '\0')
        *why = "a query or fragment is not supported";
    for (const char *q = path; *why == NULL && *q; q++) {
        if ((unsigned char)*q <= 0x20 || *q == 0x7f)
            *why = "invalid character in the path";
    }
    if (*why == NULL)
        *why = check_authority(auth, alen);
    if (*why != NULL)
        return NULL;
    size_t plen = strlen(path);
    while (plen > 0 && path[plen - 1] == '/')
        plen--;
    return xasprintf("%s://%.*s%.*s", scheme, (int)alen, auth, (int)plen, path);
}

/* Host and Port, which win over Addresses as in the original. */
static void haproxy_from_host_port(struct config_loader *ld, struct config_cluster_raw *cr,
                                   const char *cpath, bool has_addresses)
{
    const char *h = cr->haproxy_host;

    if (!hostport_is_host(h, strlen(h))) {
        char *got = config_clean(h);
        config_diag_error(ld, cr->file, "%s.HAProxySettings.Host: invalid host name \"%s\"", cpath,
                          got);
        free(got);
        return;
    }
    if (has_addresses)
        config_diag_warn(ld, cr->file,
                         "%s.HAProxySettings.Addresses: ignored because Host and Port are set",
                         cpath);
    config_strv_push(&cr->c.haproxy_addresses, http_base_url(h, cr->haproxy_port));
}

/* Addresses: a comma-separated list; blanks around entries are dropped. */
static void haproxy_from_addresses(struct config_loader *ld, struct config_cluster_raw *cr,
                                   const char *cpath)
{
    struct config_strv items = {0};
    size_t index = 0;

    config_strv_set_csv(&items, cr->haproxy_addresses);
    for (size_t i = 0; i < items.len; i++) {
        char *t = items.v[i];
        while (isspace((unsigned char)*t))
            t++;
        size_t tlen = strlen(t);
        while (tlen > 0 && isspace((unsigned char)t[tlen - 1]))
            t[--tlen] = '\0';
        if (tlen == 0)
            continue;
        const char *why;
        char *u = haproxy_url(t, &why);
        index++;
        if (u != NULL) {
            config_strv_push(&cr->c.haproxy_addresses, u);
        } else if (strchr(t, '@') != NULL) {
            /* user:password@ may be in there: do not echo it. */
            config_diag_error(ld, cr->file, "%s.HAProxySettings.Addresses: address %zu: %s", cpath,
                              index, why);
        } else {
            char *got = config_clean(t);
            config_diag_error(ld, cr->file, "%s.HAProxySettings.Addresses: \"%s\": %s", cpath, got,
                              why);
            free(got);
        }
    }
    config_strv_clear(&items);
}

static void finish_haproxy(struct config_loader *ld, struct config_cluster_raw *cr,
                           const char *cpath)
{
    bool has_addresses = cr->haproxy_addresses[strspn(cr->haproxy_addresses, " \t,")] != '\0';

    if (cr->c.haproxy_pool[0] == '\0')
        config_diag_error(ld, cr->file, "%s.HAProxySettings.PoolName: must be set", cpath);
    if (cr->haproxy_host[0] != '\0' && cr->haproxy_port > 0)
        haproxy_from_host_port(ld, cr, cpath, has_addresses);
    else if (has_addresses)
        haproxy_from_addresses(ld, cr, cpath);
    else if (cr->haproxy_host[0] != '\0' || cr->haproxy_port > 0)
        config_diag_error(ld, cr->file, "%s.HAProxySettings: Host and Port must be set together",
                          cpath);
    else
        config_diag_error(ld, cr->file, "%s.HAProxySettings: set Host and Port, or Addresses",
                          cpath);
}

/* ---- ProxySQL ---- */

static void finish_proxysql(struct config_loader *ld, struct config_cluster_raw *cr,
                            const char *cpath)
{
    struct config_cluster *c = &cr->c;
    struct config_strv *a = &c->proxysql_addresses;

    if (a->len == 0)
        config_diag_error(ld, cr->file, "%s.ProxySQLSettings.Addresses: must be set here or in %s",
                          cpath, "Stores.MySQL.ProxySQLAddresses");
    for (size_t i = 0; i < a->len; i++) {
        struct hostport hp;
        const char *why;
        /* A missing port is MySQL's default, as with the original's driver. */
        if (hostport_parse(a->v[i], 3306, &hp, &why) < 0) {
            char *got = config_clean(a->v[i]);
            config_diag_error(
                    ld, cr->file, "%s.ProxySQLSettings.Addresses[%zu]%s: \"%s\": %s", cpath, i,
                    cr->proxysql_addresses_inherited ? " (from Stores.MySQL.ProxySQLAddresses)"
                                                     : "",
                    got, why);
            free(got);
            continue;
        }
        char text[HOSTPORT_TEXT_SIZE];
        hostport_format(text, sizeof(text), hp.host, hp.port);
        free(a->v[i]);
        a->v[i] = xstrdup(text);
    }
    if (c->proxysql_user[0] == '\0')
        config_diag_error(ld, cr->file, "%s.ProxySQLSettings.User: must be set here or in %s",
                          cpath, "Stores.MySQL.ProxySQLUser");
    if (c->proxysql_hostgroup_id < 1)
        config_diag_error(ld, cr->file, "%s.ProxySQLSettings.HostgroupID: must be at least 1",
                          cpath);
}

/* ---- Vitess ---- */

static void finish_vitess(struct config_loader *ld, struct config_cluster_raw *cr,
                          const char *cpath)
{
    struct config_cluster *c = &cr->c;

    if (c->vitess_api[0] == '\0') {
        config_diag_error(ld, cr->file, "%s.VitessSettings.API: must be set", cpath);
    } else if (strncasecmp(c->vitess_api, "http://", 7) != 0 &&
               strncasecmp(c->vitess_api, "https://", 8) != 0) {
        char *got = config_clean(c->vitess_api);
        config_diag_error(ld, cr->file,
                          "%s.VitessSettings.API: expected an http:// or https:// URL, got \"%s\"",
                          cpath, got);
        free(got);
    }
    if (c->vitess_keyspace[0] == '\0')
        config_diag_error(ld, cr->file, "%s.VitessSettings.Keyspace: must be set", cpath);

    /* The original trims cells and drops empty ones when it builds the URL. */
    struct config_strv cells = {0};
    for (size_t i = 0; i < c->vitess_cells.len; i++) {
        const char *s = c->vitess_cells.v[i];
        while (isspace((unsigned char)*s))
            s++;
        size_t n = strlen(s);
        while (n > 0 && isspace((unsigned char)s[n - 1]))
            n--;
        if (n > 0)
            config_strv_push(&cells, xstrndup(s, n));
    }
    config_strv_clear(&c->vitess_cells);
    c->vitess_cells = cells;
}

/* ---- the table ---- */

typedef void finish_fn(struct config_loader *ld, struct config_cluster_raw *cr, const char *cpath);

static const struct {
    const char *key;  /* the settings object that selects the source */
    const char *name; /* the short name log lines use */
    finish_fn *finish;
} sources[] = {
        [CONFIG_SOURCE_NONE] = {"none", "none", NULL},
        [CONFIG_SOURCE_STATIC] = {"StaticHostsSettings", "static", finish_static},
        [CONFIG_SOURCE_HAPROXY] = {"HAProxySettings", "haproxy", finish_haproxy},
        [CONFIG_SOURCE_PROXYSQL] = {"ProxySQLSettings", "proxysql", finish_proxysql},
        [CONFIG_SOURCE_VITESS] = {"VitessSettings", "vitess", finish_vitess},
};

#define SOURCES_LEN (sizeof(sources) / sizeof(sources[0]))

const char *config_source_key(enum config_host_source s)
{
    return (size_t)s < SOURCES_LEN ? sources[s].key : sources[CONFIG_SOURCE_NONE].key;
}

const char *config_source_name(enum config_host_source s)
{
    return (size_t)s < SOURCES_LEN ? sources[s].name : sources[CONFIG_SOURCE_NONE].name;
}

void config_source_finish(struct config_loader *ld, struct config_cluster_raw *cr,
                          const char *cpath)
{
    if (sources[cr->c.source].finish != NULL)
        sources[cr->c.source].finish(ld, cr, cpath);
}

/* Joins the names of the sources in @mask: "A", "A<last>B", "A, B<last>C". */
static char *join_sources(unsigned mask, const char *last)
{
    struct strbuf names = {0};
    size_t count = 0;

    mask &= ((1u << SOURCES_LEN) - 1) & ~(1u << CONFIG_SOURCE_NONE);
    for (unsigned s = CONFIG_SOURCE_NONE + 1; s < SOURCES_LEN; s++) {
        if (!(mask & (1u << s)))
            continue;
        strbuf_adds(&names, count == 0 ? "" : (mask >> (s + 1) ? ", " : last));
        strbuf_adds(&names, sources[s].key);
        count++;
    }
    return strbuf_take(&names);
}

enum config_host_source config_source_pick(struct config_loader *ld, struct config_cluster_raw *cr,
                                           const char *cpath)
{
    unsigned seen = 0;

    for (size_t i = 0; i < ld->keys_len; i++) {
        const struct config_key *k = &ld->keys[i];
        if ((k->flags & CONFIG_KEY_SELECTS) &&
            !config_key_is_zero(k, config_key_field(k, NULL, cr)))
            seen |= 1u << k->source;
    }
    if (seen != 0 && (seen & (seen - 1)) == 0)
        return (enum config_host_source)__builtin_ctz(seen);

    char *list = join_sources(seen ? seen : ~0u, seen ? " and " : " or ");
    if (seen == 0)
        config_diag_error(ld, cr->file, "%s: no host source; set one of %s", cpath, list);
    else
        config_diag_error(ld, cr->file, "%s: more than one host source: %s", cpath, list);
    free(list);
    return CONFIG_SOURCE_NONE;
}
