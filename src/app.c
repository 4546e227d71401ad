/* SPDX-License-Identifier: MIT */
/* Start and stop order: loop, throttler, leader, HTTP; on SIGTERM the leader
 * gives up leadership first (so a peer takes over at once), then the loop
 * stops and everything is torn down in reverse. The service manager hears
 * READY once HTTP is up and the leader knows its role. Main thread. */
#include "app.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "config/config.h"
#include "core/audit.h"
#include "core/err.h"
#include "core/fdlimit.h"
#include "core/xalloc.h"
#include "http/http_server.h"
#include "inventory/inventory.h"
#include "leader/leader.h"
#include "log/log.h"
#include "loop/loop.h"
#include "publish/memcache_pub.h"
#include "service/service.h"
#include "snapshot/events.h"
#include "snapshot/history.h"
#include "snapshot/snapshot.h"
#include "throttler/throttler.h"

/* Descriptors kept per probed host (its MySQL connection, and one for a
 * reconnect or its HTTP check) and per cluster (an inventory fetch and a
 * check in flight), on top of HttpReservedDescriptors. */
#define FDS_PER_HOST    2u
#define FDS_PER_CLUSTER 2u
/* Fewer HTTP connections than this is no service: refuse to start. */
#define HTTP_MIN_CONNECTIONS 16u
/* How often the descriptor budget follows the number of probed hosts. */
#define BUDGET_EVERY_MS 1000u

struct app {
    /* The config in force, which a reload replaces. The one the process
     * started with stays too (@boot_cfg): the leader, the HTTP server and
     * memcache publishing read it, and only keys that need a restart (which
     * a reload never changes) are theirs. */
    struct config *cfg;
    struct config *boot_cfg;
    const struct config_origin *origin;
    uint64_t nofile;
    unsigned http_threads;
    unsigned http_max;    /* connections the HTTP server was started with */
    unsigned http_budget; /* connections it keeps now */
    size_t probed_hosts;
    uv_timer_t budget_timer;
    struct http_server *http;
    struct loop *loop;
    struct throttler *throttler;
    struct inventory *inventory;
    struct memcache_pub *memcache;
    struct history *history; /* the dashboard's 15 minutes, read by HTTP threads */
    struct leader *leader;
    struct service *service;
    bool http_up;
    struct leader_role role; /* its strings point into the arrays below */
    char role_mode[16], role_state[16], role_leader[256];
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_signal_t sighup;
    bool stopping;
};

/* Tells the service manager what the node does now. Loop thread. */
static void app_notify(struct app *a)
{
    struct service_state st = {
            .http_up = a->http_up,
            .role_known = a->role.known,
            .is_leader = a->role.is_leader,
            .mode = a->role_mode,
            .state = a->role_state,
            .leader = a->role_leader,
            .clusters = a->cfg->clusters_len,
            .hosts = a->probed_hosts,
    };
    service_update(a->service, &st);
}

static void on_role(const struct leader_role *r, void *arg)
{
    struct app *a = arg;
    a->role.known = r->known;
    a->role.is_leader = r->is_leader;
    snprintf(a->role_mode, sizeof(a->role_mode), "%s", r->mode);
    snprintf(a->role_state, sizeof(a->role_state), "%s", r->state);
    snprintf(a->role_leader, sizeof(a->role_leader), "%s", r->leader_id);
    app_notify(a);
}

static void on_cmd(struct loop_cmd *cmd, void *arg)
{
    struct app *a = arg;
    if (a->stopping) {
        loop_cmd_finish(a->loop, cmd, 503, "shutting down");
        return;
    }
    leader_submit(a->leader, cmd);
}

/* Every control command the loop finished goes to the audit trail. */
static void on_cmd_finished(const struct loop_cmd *cmd, int status, const char *msg, void *arg)
{
    struct app *a = arg;
    struct audit_record r = cmd->audit;
    r.status = status;
    r.at_ms = loop_now_ms(a->loop);
    audit_clean(r.message, sizeof(r.message), msg);
    leader_audit(a->leader, &r);
}

static void on_aggregated(const char *metric, bool has_value, bool ok, double value,
                          uint64_t now_ms, void *arg)
{
    memcache_pub_put(arg, metric, has_value, ok, value, now_ms);
}

static void on_leader_released(void *arg)
{
    struct app *a = arg;
    loop_stop(a->loop);
}

/* Descriptors kept from HTTP for the daemon with @hosts probed hosts. */
static uint64_t fd_reserve(const struct app *a, size_t hosts)
{
    uint64_t base = (uint64_t)a->cfg->http_reserved_descriptors + HTTP_SERVER_FDS(a->http_threads) +
                    FDS_PER_CLUSTER * a->cfg->clusters_len;
    return fdlimit_reserve(base, FDS_PER_HOST, hosts);
}

/* A host has a connection per metric of its cluster: descriptors are
 * counted per probe, each as a host was. */
static size_t probes_per_host(const struct config_cluster *c)
{
    return 1 + c->metrics.len;
}

static void count_host(const char *host, uint16_t port, void *arg)
{
    (void)host;
    (void)port;
    (*(size_t *)arg)++;
}

/* Inventories change the number of probed hosts; the HTTP connections give
 * way to their descriptors. Loop thread. */
static void on_budget_timer(uv_timer_t *h)
{
    struct app *a = h->data;
    size_t hosts = 0;
    for (size_t i = 0; i < a->cfg->clusters_len; i++) {
        size_t n = 0;
        throttler_each_cluster_host(a->throttler, i, count_host, &n);
        hosts += n * probes_per_host(&a->cfg->clusters[i]);
    }
    if (hosts == a->probed_hosts)
        return;
    a->probed_hosts = hosts;
    app_notify(a);
    uint64_t reserve = fd_reserve(a, hosts);
    unsigned budget = fdlimit_http_connections(a->nofile, reserve, a->http_max);
    if (budget < HTTP_MIN_CONNECTIONS) {
        log_warn(
                "app: %zu probed hosts need %llu of the %llu descriptors the open-files limit allows; HTTP keeps its minimum of %u connections and probes may fail: raise the limit",
                hosts, (unsigned long long)reserve, (unsigned long long)a->nofile,
                HTTP_MIN_CONNECTIONS);
        budget = HTTP_MIN_CONNECTIONS;
    }
    if (budget == a->http_budget)
        return;
    log_info("http: %zu probed hosts: up to %u connections (%llu descriptors kept)", hosts, budget,
             (unsigned long long)reserve);
    a->http_budget = budget;
    http_server_set_connection_budget(a->http, budget);
}

/* Sizes the HTTP server from the open-files limit and starts it. */
static struct http_server *http_start(struct app *a, struct err *err)
{
    const struct config *c = a->cfg;
    a->http_threads = http_server_thread_count(0);
    size_t hosts = 0;
    for (size_t i = 0; i < c->clusters_len; i++)
        hosts += c->clusters[i].static_hosts_len * probes_per_host(&c->clusters[i]);
    uint64_t reserve = fd_reserve(a, hosts);
    unsigned conns =
            fdlimit_http_connections(a->nofile, reserve, (unsigned)c->http_max_connections);
    if (conns < HTTP_MIN_CONNECTIONS) {
        err_set(err, -EMFILE,
                "app: the open-files limit %llu leaves %u HTTP connections after keeping %llu descriptors for the daemon (HttpReservedDescriptors %lld, %u per probed host); %u at least are needed: raise the limit (ulimit -n, LimitNOFILE=) or lower HttpReservedDescriptors",
                (unsigned long long)a->nofile, conns, (unsigned long long)reserve,
                (long long)c->http_reserved_descriptors, FDS_PER_HOST, HTTP_MIN_CONNECTIONS);
        return NULL;
    }
    a->http_max = a->http_budget = conns;
    a->probed_hosts = hosts;
    struct http_server_params hp = {
            .port = c->listen_port,
            .threads = a->http_threads,
            .loop = a->loop,
            .max_connections = conns,
            .max_per_address = (unsigned)c->http_max_connections_per_address,
            .request_timeout_ms = (uint32_t)c->http_request_timeout_secs * 1000u,
            .idle_timeout_s = (uint32_t)c->http_idle_timeout_secs,
            .control_timeout_ms = (uint32_t)c->control_timeout_millis,
            .control_queue_max = (unsigned)c->control_queue_length,
            .history = a->history,
            .listen_address = c->listen_address,
            .tls_cert_file = c->tls_cert_file,
            .tls_key_file = c->tls_key_file,
            .tls_client_ca_file = c->tls_client_ca_file,
    };
    struct http_server *http = http_server_start(&hp, err);
    if (http == NULL)
        return NULL;
    log_info(
            "http: up to %u connections, %lld from one address (open-files limit %llu, %llu descriptors kept for probes, inventory, backend and raft); a request must arrive within %lld s, idle connections close after %lld s; control: %lld commands queued at most, answered within %lld ms",
            conns, (long long)c->http_max_connections_per_address, (unsigned long long)a->nofile,
            (unsigned long long)reserve, (long long)c->http_request_timeout_secs,
            (long long)c->http_idle_timeout_secs, (long long)c->control_queue_length,
            (long long)c->control_timeout_millis);
    return http;
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct app *a = h->data;
    if (a->stopping) {
        log_warn("app: second signal %d, stopping now", signum);
        loop_stop(a->loop);
        return;
    }
    a->stopping = true;
    log_info("app: signal %d, shutting down", signum);
    service_stopping(a->service);
    leader_shutdown(a->leader, on_leader_released, a);
}

/* ---- reload (SIGHUP), docs/config.md#reload ---- */

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* One line per key that cannot change live, then one per cluster. */
static void reload_log_changes(const struct config_diff *d)
{
    for (size_t i = 0; i < d->restart_len; i++)
        log_warn("reload: %s changed and needs a restart; the running value stays", d->restart[i]);
    for (size_t i = 0; i < d->live_len; i++)
        log_info("reload: %s changed", d->live[i]);
    for (size_t i = 0; i < d->added_len; i++)
        log_info("reload: cluster %s added", d->added[i]);
    for (size_t i = 0; i < d->removed_len; i++)
        log_info("reload: cluster %s removed", d->removed[i]);
    for (size_t i = 0; i < d->changed_len; i++)
        log_info("reload: cluster %s changed", d->changed[i]);
}

/* The one line that sums a reload up. */
static void reload_log_summary(const struct config_diff *d)
{
    if (d->added_len + d->removed_len + d->changed_len + d->live_len + d->restart_len == 0) {
        log_info("reload: no change");
        return;
    }
    log_info("reload: %zu %s added, %zu removed, %zu changed, %zu %s changed, %zu %s a restart",
             d->added_len, plural(d->added_len, "cluster", "clusters"), d->removed_len,
             d->changed_len, d->live_len, plural(d->live_len, "key", "keys"), d->restart_len,
             plural(d->restart_len, "key needs", "keys need"));
}

/* Whether anything of @d applies live. */
static bool reload_has_live_changes(const struct config_diff *d)
{
    return d->added_len + d->removed_len + d->changed_len + d->live_len > 0;
}

static void config_free_cb(void *cfg)
{
    config_free(cfg);
}

/* State kept per cluster outside the throttler goes with the cluster, after
 * it stopped and before its name goes: the dashboard's history (its sweep
 * would drop it a second later; this makes /metrics-history agree with the
 * other endpoints at once). */
static void reload_clusters_removed(struct app *a, const struct config_diff *d)
{
    for (size_t i = 0; i < d->removed_len; i++)
        history_remove_cluster(a->history, d->removed[i]);
}

/* Puts @next in force: inventory sources and HTTP checks start again from
 * it (a new inventory refreshes at once; the throttler keeps the hosts it
 * has until then) and the throttler follows cluster by cluster. The config
 * it replaces stays valid (reload_retire() lets it go). Returns 0, or -errno
 * with @err set and nothing changed. */
static int reload_apply(struct app *a, struct config *next, const struct config_diff *d,
                        struct err *err)
{
    struct inventory *inv = inventory_new(a->loop, next, a->throttler, err);
    if (inv == NULL)
        return err->code != 0 ? err->code : -ENOMEM;
    inventory_free(a->inventory);
    a->inventory = inv;
    throttler_reconfigure(a->throttler, next);
    reload_clusters_removed(a, d);
    a->cfg = next;
    app_notify(a);
    return 0;
}

/* Frees @prev, a config a reload replaced, once no HTTP thread can be
 * reading a snapshot that points into it; the config the process started
 * with stays. Nothing may use @prev after this call. */
static void reload_retire(struct app *a, struct config *prev)
{
    if (prev != NULL && prev != a->boot_cfg)
        snapshot_defer(config_free_cb, prev);
}

/* Reads the config again exactly as at start. One that does not load is
 * rejected with the start's messages and the running one stays; one that
 * loads applies live, but for the keys that need a restart, which keep
 * their running values. */
static void reload_config(struct app *a)
{
    struct config *next = NULL;
    if (a->origin == NULL) {
        log_warn("reload: no configuration source; the running configuration stays");
        return;
    }
    if (config_load_origin(a->origin, &next) < 0) {
        log_error(
                "reload: rejected: the configuration has errors; the running configuration stays");
        return;
    }
    /* The diff's names point into both configs: it goes before either. */
    struct config_diff d = {0};
    config_diff(a->cfg, next, &d);
    config_keep_restart_keys(a->cfg, next);
    struct config *prev = NULL;
    struct err err = {0};
    if (!reload_has_live_changes(&d)) {
        config_free(next);
        next = NULL;
    } else {
        prev = a->cfg;
        if (reload_apply(a, next, &d, &err) < 0) {
            log_error("reload: rejected: %s; the running configuration stays", err.msg);
            config_diff_deinit(&d);
            config_free(next);
            return;
        }
    }
    reload_log_changes(&d);
    reload_log_summary(&d);
    config_diff_deinit(&d);
    reload_retire(a, prev);
}

/* Re-reads the TLS certificate, key and client CA; a set that does not
 * load keeps the running one. Loop thread. */
static void app_reload_tls(struct app *a)
{
    struct err err = {0};
    if (http_server_reload_tls(a->http, &err) < 0)
        log_error("%s; the running certificate stays", err.msg);
}

/* SIGHUP, the reload (ExecReload= sends it): the service manager hears
 * RELOADING then READY around it. One step per concern. Loop thread. */
static void app_reload(struct app *a)
{
    service_reloading(a->service);
    reload_config(a);
    /* TLS certificate rotation: the files are re-read whatever the config
     * says (changing their paths needs a restart). */
    app_reload_tls(a);
    service_reloaded(a->service);
}

/* Tells whether @addr names only this machine: a loopback literal or
 * "localhost". */
static bool is_loopback(const char *addr)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, addr, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &v6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&v6);
    return strcmp(addr, "localhost") == 0;
}

/* Once at start: control requests that need no token, on a listener other
 * machines reach, let anyone throttle every app. */
static void warn_open_control(const struct config *c)
{
    if (c->control_token != NULL || c->control_tokens.len > 0 || is_loopback(c->listen_address))
        return;
    log_warn(
            "app: control requests (throttle-app, skip-host, ...) need no token and the listener is on %s: anyone who reaches port %u can throttle; set ControlToken or ControlTokens, or ListenAddress 127.0.0.1",
            c->listen_address[0] != '\0' ? c->listen_address : "every address",
            (unsigned)c->listen_port);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    struct app *a = h->data;
    if (!a->stopping)
        app_reload(a);
}

/* The descriptor budget's timer, and the signals (the loop thread handles
 * them): once HTTP is up. */
static void app_start_timers_and_signals(struct app *a)
{
    uv_timer_init(loop_uv(a->loop), &a->budget_timer);
    a->budget_timer.data = a;
    uv_timer_start(&a->budget_timer, on_budget_timer, BUDGET_EVERY_MS, BUDGET_EVERY_MS);
    uv_signal_init(loop_uv(a->loop), &a->sigterm);
    uv_signal_init(loop_uv(a->loop), &a->sigint);
    uv_signal_init(loop_uv(a->loop), &a->sighup);
    a->sigterm.data = a->sigint.data = a->sighup.data = a;
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    uv_signal_start(&a->sigint, on_signal, SIGINT);
    uv_signal_start(&a->sighup, on_sighup, SIGHUP);
}

/* Everything app_run() built, in reverse (parts it never built are NULL). */
static void app_teardown(struct app *a)
{
    a->stopping = true;
    if (a->http != NULL)
        uv_timer_stop(&a->budget_timer);
    http_server_stop(a->http);
    leader_free(a->leader);
    inventory_free(a->inventory);
    if (a->throttler != NULL)
        throttler_set_aggregate_hook(a->throttler, NULL, NULL);
    memcache_pub_free(a->memcache);
    throttler_free(a->throttler);
    history_free(a->history);
    service_free(a->service);
    loop_free(a->loop);
    snapshot_shutdown();
    events_shutdown();
    if (a->cfg != a->boot_cfg)
        config_free(a->cfg);
    config_free(a->boot_cfg);
}

int app_run(const struct app_params *p)
{
    struct app a = {.cfg = p->cfg, .boot_cfg = p->cfg, .origin = p->origin, .nofile = p->nofile};
    int code = 1;
    struct err err = {0};
    char hostname[256] = "";
    if (gethostname(hostname, sizeof(hostname) - 1) == -1)
        snprintf(hostname, sizeof(hostname), "localhost");
    char *service_id = xasprintf("%s:%u", hostname, (unsigned)a.cfg->listen_port);

    snapshot_init();
    a.loop = loop_new();
    if (a.loop == NULL) {
        log_error("app: cannot create the event loop");
        goto out;
    }
    a.service = service_new(a.loop);
    a.history = history_new();
    a.throttler = throttler_new(&(struct throttler_params){.loop = a.loop,
                                                           .cfg = a.cfg,
                                                           .hostname = hostname,
                                                           .service_id = service_id,
                                                           .history = a.history});
    a.inventory = inventory_new(a.loop, a.cfg, a.throttler, &err);
    if (a.inventory == NULL) {
        log_error("%s", err.msg);
        goto out;
    }
    a.memcache = memcache_pub_new(a.loop, a.cfg, &err);
    if (a.memcache == NULL && err.code < 0) {
        log_error("%s", err.msg);
        goto out;
    }
    if (a.memcache != NULL)
        throttler_set_aggregate_hook(a.throttler, on_aggregated, a.memcache);
    struct leader_params lp = {
            .loop = a.loop,
            .cfg = a.cfg,
            .throttler = a.throttler,
            .service_id = service_id,
            .force_leadership = p->force_leadership,
            .on_role = on_role,
            .role_arg = &a,
    };
    a.leader = leader_new(&lp, &err);
    if (a.leader == NULL) {
        log_error("%s", err.msg);
        goto out;
    }
    loop_set_cmd_handler(a.loop, on_cmd, &a);
    loop_set_finish_hook(a.loop, on_cmd_finished, &a);
    loop_set_queue_max(a.loop, (unsigned)a.cfg->control_queue_length);
    a.http = http_start(&a, &err);
    if (a.http == NULL) {
        log_error("%s", err.msg);
        goto out;
    }
    app_start_timers_and_signals(&a);
    log_info("app: listening on %s port %u (%s), %zu cluster(s), service id %s",
             a.cfg->listen_address[0] != '\0' ? a.cfg->listen_address : "every address",
             (unsigned)a.cfg->listen_port, a.cfg->tls_cert_file[0] != '\0' ? "HTTPS" : "HTTP",
             a.cfg->clusters_len, service_id);
    warn_open_control(a.cfg);
    a.http_up = true;
    app_notify(&a);
    loop_run(a.loop);
    code = 0;
out:
    app_teardown(&a);
    free(service_id);
    log_info("app: stopped");
    return code;
}
