/* SPDX-License-Identifier: MIT */
/* Memcache publishing: the loop keeps the newest state per key and hands
 * batches to one uv_work_t at a time. The work function touches only its
 * batch and the memcached_st, which the loop does not touch while a batch is
 * in flight. Loop thread, except on_work.
 *
 * libmemcached (with libhashkit and the C++ runtime it needs) is opened only
 * when MemcacheServers is set (core/dynlib.h); calls go through mc_fn, whose
 * types are libmemcached's headers'. */
#include "publish/memcache_pub.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <libhashkit-1.0/hashkit.h>
#include <libmemcached/memcached.h>

#include "config/config.h"
#include "core/dynlib.h"
#include "core/err.h"
#include "core/hostport.h"
#include "core/redact.h"
#include "core/strmap.h"
#include "core/xalloc.h"
#include "log/log.h"
#include "loop/loop.h"

#define TIMEOUT_MS  300
#define EXPIRY_SECS 1
#define KEY_MAX     250
/* Port of a server given without one (memcached's own default). */
#define MEMCACHED_PORT 11211

struct mp_state {
    bool dirty;
    bool set;     /* pending write is a set (else a delete) */
    bool deleted; /* the last write sent was a delete */
    bool bad_key; /* logged once, never written */
    char value[64];
};

struct mp_item {
    char *key;
    bool set;
    char value[64];
};

struct mp_batch {
    uv_work_t work;
    struct memcache_pub *m;
    struct mp_item *items;
    size_t n;
    size_t failed;
    char err[256];
};

struct memcache_pub {
    struct loop *loop;
    memcached_st *mc;
    char *path;
    struct strmap states; /* key -> struct mp_state * */
    struct mp_batch *in_flight;
    bool closing;
    bool failing;
};

/* Every libmemcached and libhashkit function this file calls, each a field
 * of mc_fn by its own name. libhashkit comes with libmemcached, which links
 * it. */
#define MEMCACHED_FUNCTIONS(X)                                                                     \
    X(memcached_create)                                                                            \
    X(memcached_free)                                                                              \
    X(memcached_server_add)                                                                        \
    X(memcached_behavior_set)                                                                      \
    X(memcached_set_hashkit)                                                                       \
    X(memcached_set)                                                                               \
    X(memcached_delete)                                                                            \
    X(memcached_strerror)                                                                          \
    X(hashkit_create)                                                                              \
    X(hashkit_set_custom_function)                                                                 \
    X(hashkit_free)

/* A member declaration: @sym cannot be parenthesised. */
#define MC_FN_FIELD(sym) __typeof__(sym) *sym; /* NOLINT(bugprone-macro-parentheses) */
static struct {
    MEMCACHED_FUNCTIONS(MC_FN_FIELD)
} mc_fn;
#undef MC_FN_FIELD

static bool mc_loaded;

/* Opens libmemcached once; after a failure the next call tries again.
 * Loop thread. */
static int mc_library_load(struct err *err)
{
    if (mc_loaded)
        return 0;
#define MC_FN_SYM(sym) {#sym, offsetof(__typeof__(mc_fn), sym)},
    static const struct dynlib_sym syms[] = {MEMCACHED_FUNCTIONS(MC_FN_SYM)};
#undef MC_FN_SYM
    struct err e = {0};
    if (dynlib_load("libmemcached.so.11", syms, sizeof(syms) / sizeof(syms[0]), &mc_fn, &e) < 0)
        return err_set(err, -ENOENT, "cannot load libmemcached: %s", e.msg);
    mc_loaded = true;
    log_info("memcache: libmemcached loaded");
    return 0;
}

/* Not a hash-table hash (those use core/hash): the server a key goes to must
 * be the one the original's Go client picks, CRC-32 IEEE of the key modulo
 * the server count, so this checksum is part of the protocol. */
uint32_t memcache_pub_crc32(const char *data, size_t len)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < len; i++) {
        crc ^= (unsigned char)data[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static uint32_t hash_key(const char *key, size_t len, void *ctx)
{
    (void)ctx;
    return memcache_pub_crc32(key, len);
}

int memcache_pub_format(char *buf, size_t size, uint64_t now_ms, double value)
{
    return snprintf(buf, size, "%" PRIu64 ":%.6f", now_ms, value);
}

static bool key_is_valid(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] <= ' ' || key[i] == 0x7f)
            return false;
    return true;
}

int memcache_pub_parse_server(const char *s, struct hostport *out, const char **why)
{
    /* user:password@ is not something memcached speaks. */
    if (strchr(s, '@') != NULL) {
        *why = "credentials are not supported";
        return -EINVAL;
    }
    return hostport_parse(s, MEMCACHED_PORT, out, why) < 0 ? -EINVAL : 0;
}

/* Adds every usable server of @cfg; the others are logged and left out. */
static void add_servers(memcached_st *mc, const struct config *cfg)
{
    for (size_t i = 0; i < cfg->memcache_servers.len; i++) {
        const char *s = cfg->memcache_servers.v[i];
        char shown[300];
        struct hostport hp;
        const char *why;
        if (memcache_pub_parse_server(s, &hp, &why) < 0) {
            /* Masked: an entry with '@' may carry a password. */
            log_warn("memcache: server \"%s\" ignored: %s", redact_address(s, shown, sizeof(shown)),
                     why);
            continue;
        }
        memcached_return_t rc = mc_fn.memcached_server_add(mc, hp.host, hp.port);
        if (rc != MEMCACHED_SUCCESS)
            log_warn("memcache: server \"%s\" ignored: %s", redact_address(s, shown, sizeof(shown)),
                     mc_fn.memcached_strerror(mc, rc));
    }
}

struct memcache_pub *memcache_pub_new(struct loop *loop, const struct config *cfg, struct err *err)
{
    if (cfg->memcache_servers.len == 0)
        return NULL;
    if (mc_library_load(err) < 0) {
        err_prefix(err, "memcache: MemcacheServers");
        return NULL;
    }
    memcached_st *mc = mc_fn.memcached_create(NULL);
    if (mc == NULL) {
        err_set(err, -ENOMEM, "memcache: cannot create the client");
        return NULL;
    }
    add_servers(mc, cfg);
    mc_fn.memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, TIMEOUT_MS);
    mc_fn.memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, TIMEOUT_MS);
    mc_fn.memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_SND_TIMEOUT, (uint64_t)TIMEOUT_MS * 1000);
    mc_fn.memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, (uint64_t)TIMEOUT_MS * 1000);
    mc_fn.memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 1);
    mc_fn.memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
    mc_fn.memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_DISTRIBUTION,
                                 MEMCACHED_DISTRIBUTION_MODULA);
    hashkit_st *hk = mc_fn.hashkit_create(NULL);
    if (hk != NULL) {
        mc_fn.hashkit_set_custom_function(hk, hash_key, NULL);
        mc_fn.memcached_set_hashkit(mc, hk);
        mc_fn.hashkit_free(hk);
    }
    struct memcache_pub *m = xcalloc(1, sizeof(*m));
    m->loop = loop;
    m->mc = mc;
    m->path = xstrdup(cfg->memcache_path && cfg->memcache_path[0] ? cfg->memcache_path : "freno");
    strmap_init(&m->states);
    return m;
}

void memcache_pub_free(struct memcache_pub *m)
{
    if (m == NULL)
        return;
    if (m->in_flight != NULL) {
        /* on_work_done() calls this again once the batch is back. */
        m->closing = true;
        uv_cancel((uv_req_t *)&m->in_flight->work);
        return;
    }
    strmap_deinit_values(&m->states, free);
    mc_fn.memcached_free(m->mc);
    free(m->path);
    free(m);
}

static void batch_free(struct mp_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->items[i].key);
    free(b->items);
    free(b);
}

/* Thread pool: talks to memcached. Touches only @b and the client. */
static void on_work(uv_work_t *w)
{
    struct mp_batch *b = w->data;
    memcached_st *mc = b->m->mc;
    for (size_t i = 0; i < b->n; i++) {
        const struct mp_item *it = &b->items[i];
        memcached_return_t rc;
        if (it->set)
            rc = mc_fn.memcached_set(mc, it->key, strlen(it->key), it->value, strlen(it->value),
                                     EXPIRY_SECS, 0);
        else
            rc = mc_fn.memcached_delete(mc, it->key, strlen(it->key), 0);
        if (rc == MEMCACHED_SUCCESS || (!it->set && rc == MEMCACHED_NOTFOUND))
            continue;
        if (b->failed++ == 0)
            snprintf(b->err, sizeof(b->err), "%s %s: %s", it->set ? "set" : "delete", it->key,
                     mc_fn.memcached_strerror(mc, rc));
    }
}

static void dispatch(struct memcache_pub *m);

static void on_work_done(uv_work_t *w, int status)
{
    struct mp_batch *b = w->data;
    struct memcache_pub *m = b->m;
    m->in_flight = NULL;
    if (m->closing) {
        batch_free(b);
        memcache_pub_free(m);
        return;
    }
    /* Logged on changes only: while a server is down libmemcached alternates
     * between "connection failure" and "disabled until retry". */
    if (status == 0 && b->failed > 0 && !m->failing) {
        log_warn("memcache: %zu of %zu writes failed: %s", b->failed, b->n, b->err);
        m->failing = true;
    } else if (status == 0 && b->failed == 0 && m->failing) {
        log_info("memcache: writes succeed again");
        m->failing = false;
    }
    batch_free(b);
    dispatch(m);
}

static void dispatch(struct memcache_pub *m)
{
    if (m->in_flight != NULL || m->closing)
        return;
    size_t n = 0, it = 0;
    const char *key;
    void *val;
    while (strmap_next(&m->states, &it, &key, &val))
        n += ((struct mp_state *)val)->dirty;
    if (n == 0)
        return;
    struct mp_batch *b = xcalloc(1, sizeof(*b));
    b->m = m;
    b->items = xcalloc(n, sizeof(*b->items));
    it = 0;
    while (strmap_next(&m->states, &it, &key, &val)) {
        struct mp_state *st = val;
        if (!st->dirty)
            continue;
        st->dirty = false;
        st->deleted = !st->set;
        struct mp_item *item = &b->items[b->n++];
        item->key = xstrdup(key);
        item->set = st->set;
        memcpy(item->value, st->value, sizeof(item->value));
    }
    b->work.data = b;
    m->in_flight = b;
    int rc = uv_queue_work(loop_uv(m->loop), &b->work, on_work, on_work_done);
    if (rc != 0) {
        log_error("memcache: cannot queue a batch: %s", uv_strerror(rc));
        m->in_flight = NULL;
        batch_free(b);
    }
}

void memcache_pub_put(struct memcache_pub *m, const char *metric, bool has_value, bool ok,
                      double value, uint64_t now_ms)
{
    char key[KEY_MAX + 64];
    snprintf(key, sizeof(key), "%s/%s", m->path, metric);
    struct mp_state *st = strmap_get(&m->states, key);
    if (st == NULL) {
        st = xcalloc(1, sizeof(*st));
        st->bad_key = !key_is_valid(key);
        if (st->bad_key)
            log_warn("memcache: key \"%s\" is not a valid memcached key, not published", key);
        strmap_put(&m->states, key, st);
    }
    if (st->bad_key)
        return;
    if (has_value && ok) {
        st->set = true;
        st->dirty = true;
        memcache_pub_format(st->value, sizeof(st->value), now_ms, value);
    } else if (!st->deleted || st->set) {
        /* An error aggregate: delete the key, once per change. */
        st->set = false;
        st->dirty = !st->deleted;
    }
    dispatch(m);
}
