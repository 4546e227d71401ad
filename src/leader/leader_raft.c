/* SPDX-License-Identifier: MIT */
/* Leadership through raft (docs/ha.md#raft): runs canonical's libraft (its
 * libuv disk I/O and TCP transport) on our loop, checks the data directory
 * and the membership at start, and tells the throttler whether this node
 * leads. The state machine and the commands are in leader_raft_fsm.c. With
 * no RaftNodes: single-node mode, one voter and no network. Loop thread. */
#include "leader/leader_raft_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "core/xalloc.h"
#include "leader/raft_addr.h"
#include "log/log.h"
#include "loop/loop.h"
#include "snapshot/snapshot.h"
#include "throttler/throttler.h"

#define SINGLE_NODE_ID 1
/* A follower starts an election 1-2 election timeouts after it last heard
 * from the leader, and a leader that reached no majority for one election
 * timeout steps down: together they bound failover to about 2-3 s. */
#define ELECTION_TIMEOUT_MS 1000
/* How long a stopping leader waits for a peer to take over before it
 * closes anyway. */
#define TRANSFER_DEADLINE_MS (2ull * ELECTION_TIMEOUT_MS)
#define HEARTBEAT_TIMEOUT_MS 100
#define CONNECT_RETRY_MS     250
#define SEGMENT_SIZE         ((size_t)1024 * 1024)
/* How often raft's state is looked at (libraft 0.15 has no state callback). */
#define POLL_INTERVAL_MS 20
#define LOCK_FILE        "freno.lock"

/* ---- status ---- */

static const char *state_name(int state)
{
    /* The names hashicorp/raft reports, which the original shows. */
    switch (state) {
    case RAFT_FOLLOWER:
        return "Follower";
    case RAFT_CANDIDATE:
        return "Candidate";
    case RAFT_LEADER:
        return "Leader";
    default:
        return "Shutdown";
    }
}

int leader_raft_state(struct rnode *n)
{
    return n->raft_ready && !n->raft_closing ? raft_state(&n->raft) : RAFT_UNAVAILABLE;
}

bool leader_raft_is_usable(struct rnode *n)
{
    return leader_raft_state(n) == RAFT_LEADER && n->ready_term == n->raft.current_term;
}

static const char *leader_address(struct rnode *n)
{
    if (leader_raft_state(n) == RAFT_UNAVAILABLE)
        return "";
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader(&n->raft, &id, &addr);
    return addr != NULL ? addr : "";
}

/* Tells the throttler about raft's state when it changed. */
static void publish_status(struct rnode *n, int state, const char *leader, bool is_leader)
{
    log_info("raft: %s in term %llu, leader %s; this node %s", state_name(state),
             n->raft_ready ? n->raft.current_term : 0ull, leader[0] ? leader : "unknown",
             is_leader ? "leads and probes" : "does not lead");
    n->shown = true;
    n->shown_state = state;
    n->shown_is_leader = is_leader;
    free(n->shown_leader);
    n->shown_leader = xstrdup(leader);

    struct snap_leader s = leader_status(n->l, n->self, state_name(state), leader);
    s.is_leader = is_leader;
    s.healthy = state == RAFT_LEADER || state == RAFT_FOLLOWER;
    leader_publish(n->l, &s);
    throttler_set_leader(n->t, is_leader);
}

/* Publishes raft's state when it changed. A cluster node knows whether it
 * leads with its first state; a single node once it leads, which it does as
 * soon as it has elected itself. */
static void show_status(struct rnode *n)
{
    int state = leader_raft_state(n);
    const char *leader = leader_address(n);
    bool is_leader = !n->stopping && (n->forced || leader_raft_is_usable(n));
    if (!n->shown || n->shown_state != state || n->shown_is_leader != is_leader ||
        strcmp(n->shown_leader, leader) != 0)
        publish_status(n, state, leader, is_leader);
    if (n->forced || (n->single ? is_leader : state != RAFT_UNAVAILABLE))
        leader_set_known(n->l);
}

/* ---- leadership ---- */

static void on_barrier(struct raft_barrier *req, int status)
{
    struct rnode *n = req->data;
    n->barrier_pending = false;
    if (status == 0 && leader_raft_state(n) == RAFT_LEADER) {
        n->ready_term = n->raft.current_term;
        show_status(n);
    }
    leader_raft_pump(n);
}

static void check_leadership(struct rnode *n)
{
    int state = leader_raft_state(n);
    if (state == RAFT_LEADER && !leader_raft_is_usable(n) && !n->barrier_pending && !n->stopping) {
        n->barrier.data = n;
        int rv = raft_barrier(&n->raft, &n->barrier, on_barrier);
        if (rv == 0)
            n->barrier_pending = true;
        else
            log_warn("raft: barrier: %s", raft_strerror(rv));
    }
    if (state != RAFT_LEADER && n->queue.head != NULL)
        leader_raft_fail_queued(n, 500, "not leader");
    show_status(n);
}

static void close_raft(struct rnode *n);
static void close_raft_now(struct rnode *n);

static void on_poll(uv_timer_t *h)
{
    struct rnode *n = h->data;
    check_leadership(n);
    leader_raft_show_audit(n);
    if (n->transfer_pending && loop_now_ms(leader_raft_loop(n)) >= n->transfer_deadline_ms) {
        log_warn("raft: leadership transfer did not finish in time, closing anyway");
        n->transfer_pending = false;
        close_raft(n);
    }
    if (n->close_waiting &&
        (n->audit_inflight == 0 || loop_now_ms(leader_raft_loop(n)) >= n->close_deadline_ms))
        close_raft_now(n);
}

/* ---- single-node transport: listens nowhere, connects nowhere ---- */

static int null_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    (void)t;
    (void)id;
    (void)address;
    return 0;
}

static int null_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    (void)t;
    (void)cb;
    return 0;
}

static int null_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                        const char *address, raft_uv_connect_cb cb)
{
    (void)t;
    (void)req;
    (void)id;
    (void)address;
    (void)cb;
    return RAFT_NOCONNECTION;
}

static void on_null_timer_closed(uv_handle_t *h)
{
    struct rnode *n = h->data;
    n->null_timer_open = false;
    if (n->null_close_cb != NULL)
        n->null_close_cb(&n->transport);
}

static void null_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct rnode *n = t->impl;
    n->null_close_cb = cb;
    uv_close((uv_handle_t *)&n->null_timer, on_null_timer_closed);
}

/* ---- start and stop ---- */

static void on_raft_closed(struct raft *r)
{
    struct rnode *n = r->data;
    n->raft_closed = true;
    log_info("raft: closed");
    leader_shutdown_finished(n->l);
}

static void close_raft_now(struct rnode *n)
{
    n->close_waiting = false;
    if (!n->raft_ready || n->raft_closing)
        return;
    n->raft_closing = true;
    n->raft.data = n;
    raft_close(&n->raft, on_raft_closed);
}

/* Closes raft once no audit entry is in flight: the poll closes it when the
 * last one is applied, or at the transfer deadline. */
static void close_raft(struct rnode *n)
{
    if (!n->raft_ready || n->raft_closing)
        return;
    if (n->audit_inflight == 0) {
        close_raft_now(n);
        return;
    }
    if (!n->close_waiting) {
        n->close_waiting = true;
        n->close_deadline_ms = loop_now_ms(leader_raft_loop(n)) + TRANSFER_DEADLINE_MS;
    }
}

static void on_transferred(struct raft_transfer *req)
{
    struct rnode *n = req->data;
    if (!n->transfer_pending)
        return;
    n->transfer_pending = false;
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader(&n->raft, &id, &addr);
    log_info("raft: leadership %s",
             addr != NULL && id != n->self_id ? "handed over" : "not handed over");
    close_raft(n);
}

static void raft_shutdown(struct leader *l)
{
    struct rnode *n = l->impl;
    n->stopping = true;
    leader_raft_fail_queued(n, 503, "shutting down");
    show_status(n);
    /* A leader hands over first, so the others need not wait for an
     * election timeout. */
    if (leader_raft_state(n) == RAFT_LEADER && !n->single) {
        n->transfer.data = n;
        if (raft_transfer(&n->raft, &n->transfer, 0, on_transferred) == 0) {
            n->transfer_pending = true;
            n->transfer_deadline_ms = loop_now_ms(leader_raft_loop(n)) + TRANSFER_DEADLINE_MS;
            return;
        }
    }
    close_raft(n);
    if (!n->raft_ready)
        leader_shutdown_finished(l);
}

static void on_poll_closed(uv_handle_t *h)
{
    struct rnode *n = h->data;
    n->poll_open = false;
}

static void raft_free_node(struct leader *l)
{
    struct rnode *n = l->impl;
    if (n == NULL)
        return;
    n->stopping = true;
    leader_raft_fail_queued(n, 503, "shutting down");
    if (n->poll_open && !uv_is_closing((uv_handle_t *)&n->poll)) {
        uv_timer_stop(&n->poll);
        uv_close((uv_handle_t *)&n->poll, on_poll_closed);
    }
    close_raft(n);
    /* The loop may have stopped already: run it until libraft and our
     * handles are closed, since their memory is ours. */
    while ((n->raft_ready && !n->raft_closed) || n->poll_open)
        uv_run(n->uv, UV_RUN_ONCE);
    if (n->io_ready)
        raft_uv_close(&n->io);
    if (n->transport_ready && !n->single)
        raft_uv_tcp_close(&n->transport);
    if (n->null_timer_open) {
        n->null_close_cb = NULL;
        if (!uv_is_closing((uv_handle_t *)&n->null_timer))
            uv_close((uv_handle_t *)&n->null_timer, on_null_timer_closed);
        while (n->null_timer_open)
            uv_run(n->uv, UV_RUN_ONCE);
    }
    if (n->lock_fd != -1)
        close(n->lock_fd);
    for (size_t i = 0; i < n->nnodes; i++)
        free(n->nodes[i]);
    free(n->nodes);
    free(n->self);
    free(n->shown_leader);
    audit_ring_clear(&n->audit);
    free(n->audit_pending);
    free(n);
    l->impl = NULL;
}

/* mkdir -p: the original creates RaftDataDir too. */
static int make_dirs(const char *path, struct err *err)
{
    char buf[4096];
    int len = snprintf(buf, sizeof(buf), "%s", path);
    if (len <= 0 || (size_t)len >= sizeof(buf))
        return err_set(err, -ENAMETOOLONG, "raft: data directory %s: path too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0750) == -1 && errno != EEXIST)
            return err_set(err, -errno, "raft: data directory %s: mkdir %s: %s", path, buf,
                           strerror(errno));
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(path, &st) == -1)
        return err_set(err, -errno, "raft: data directory %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return err_set(err, -ENOTDIR, "raft: data directory %s: not a directory", path);
    return 0;
}

/* Two daemons on one data directory would corrupt it; libraft 0.15 does not
 * guard against that, so we hold an exclusive lock for our lifetime. */
static int lock_dir(struct rnode *n, struct err *err)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", n->dir, LOCK_FILE);
    n->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (n->lock_fd == -1)
        return err_set(err, -errno, "raft: data directory %s: open %s: %s", n->dir, LOCK_FILE,
                       strerror(errno));
    if (flock(n->lock_fd, LOCK_EX | LOCK_NB) == -1) {
        int e = errno;
        if (e == EWOULDBLOCK)
            return err_set(err, -EBUSY,
                           "raft: data directory %s: in use by another process (%s is locked)",
                           n->dir, LOCK_FILE);
        return err_set(err, -e, "raft: data directory %s: lock: %s", n->dir, strerror(e));
    }
    return 0;
}

/* libraft bootstraps a directory that has no metadata file, even when log
 * segments or snapshots are there: that would quietly start a new history
 * over the old one. Refuse instead. */
static int check_dir_contents(struct rnode *n, struct err *err)
{
    DIR *d = opendir(n->dir);
    if (d == NULL)
        return err_set(err, -errno, "raft: data directory %s: %s", n->dir, strerror(errno));
    bool meta = false, data = false;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strcmp(name, "metadata1") == 0 || strcmp(name, "metadata2") == 0)
            meta = true;
        else if (strncmp(name, "snapshot-", 9) == 0 || strncmp(name, "open-", 5) == 0 ||
                 (name[0] >= '0' && name[0] <= '9'))
            data = true;
    }
    closedir(d);
    if (data && !meta)
        return err_set(
                err, -EINVAL,
                "raft: data directory %s: log or snapshot files are there but the metadata files (metadata1, metadata2) are missing; restore them, or empty the directory (a cluster node then catches up from its peers)",
                n->dir);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Works out our address, id and the voters from the configuration. */
static int resolve_nodes(struct rnode *n, struct err *err)
{
    const struct config *cfg = n->cfg;
    const char *bind =
            cfg->raft_bind != NULL && cfg->raft_bind[0] ? cfg->raft_bind : CONFIG_RAFT_BIND_DEFAULT;
    char self[RAFT_ADDR_MAX];
    struct err aerr = {0};
    int rc = raft_addr_normalize(bind, cfg->default_raft_port, self, &aerr);
    if (n->single) {
        /* Nothing connects to a single node: its address is only a name. */
        n->self = xstrdup(rc == 0 ? self : bind);
        n->self_id = SINGLE_NODE_ID;
        return 0;
    }
    if (rc < 0) {
        err_set(err, rc, "%s", aerr.msg);
        err_prefix(err, "raft: RaftBind");
        return rc;
    }
    n->self = xstrdup(self);
    n->nodes = xcalloc(cfg->raft_nodes.len, sizeof(*n->nodes));
    for (size_t i = 0; i < cfg->raft_nodes.len; i++) {
        char addr[RAFT_ADDR_MAX];
        rc = raft_addr_normalize(cfg->raft_nodes.v[i], cfg->default_raft_port, addr, &aerr);
        if (rc < 0) {
            err_set(err, rc, "%s", aerr.msg);
            err_prefix(err, "raft: RaftNodes[%zu]", i);
            return rc;
        }
        bool dup = false;
        for (size_t j = 0; j < n->nnodes; j++)
            dup = dup || strcmp(n->nodes[j], addr) == 0;
        if (!dup)
            n->nodes[n->nnodes++] = xstrdup(addr);
    }
    qsort(n->nodes, n->nnodes, sizeof(*n->nodes), cmp_str);
    bool found = false;
    for (size_t i = 0; i < n->nnodes; i++) {
        found = found || strcmp(n->nodes[i], n->self) == 0;
        for (size_t j = 0; j < i; j++)
            if (raft_addr_id(n->nodes[i]) == raft_addr_id(n->nodes[j]))
                return err_set(err, -EINVAL, "raft: RaftNodes %s and %s hash to the same id",
                               n->nodes[j], n->nodes[i]);
    }
    if (!found)
        return err_set(
                err, -EINVAL,
                "raft: RaftBind %s is not one of RaftNodes; list every node, this one included, with the address it binds",
                n->self);
    n->self_id = raft_addr_id(n->self);
    return 0;
}

static int bootstrap(struct rnode *n, struct err *err)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = 0;
    if (n->single) {
        rv = raft_configuration_add(&conf, n->self_id, n->self, RAFT_VOTER);
    } else {
        for (size_t i = 0; i < n->nnodes && rv == 0; i++)
            rv = raft_configuration_add(&conf, raft_addr_id(n->nodes[i]), n->nodes[i], RAFT_VOTER);
    }
    if (rv == 0)
        rv = raft_bootstrap(&n->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == 0) {
        log_info("raft: bootstrapped %s in %s", n->single ? "a single-node cluster" : "the cluster",
                 n->dir);
        return 0;
    }
    if (rv == RAFT_CANTBOOTSTRAP)
        return 0; /* state exists: the normal restart */
    return err_set(err, -EIO, "raft: data directory %s: bootstrap: %s", n->dir,
                   n->raft.io->errmsg[0] ? n->raft.io->errmsg : raft_strerror(rv));
}

/* After start: the stored configuration rules; say so when it differs from
 * what this node was told, and refuse to run as a non-member. */
static int check_configuration(struct rnode *n, struct err *err)
{
    const struct raft_configuration *c = &n->raft.configuration;
    bool member = false;
    for (unsigned i = 0; i < c->n; i++)
        member = member || (c->servers[i].id == n->self_id && c->servers[i].role == RAFT_VOTER);
    if (!member)
        return err_set(
                err, -EINVAL,
                "raft: data directory %s: this node (%s) is not a voter of the cluster stored there; %s",
                n->dir, n->self,
                n->single
                        ? "it holds a multi-node cluster: start with its RaftNodes or an empty directory"
                        : "it was created with other RaftNodes or RaftBind: start with an empty directory");
    bool same = c->n == (n->single ? 1 : n->nnodes);
    for (size_t i = 0; same && !n->single && i < n->nnodes; i++) {
        bool found = false;
        for (unsigned j = 0; j < c->n; j++)
            found = found || c->servers[j].id == raft_addr_id(n->nodes[i]);
        same = found;
    }
    if (!same)
        log_warn(
                "raft: RaftNodes differ from the membership stored in %s (%u node(s)); membership changes are not supported, the stored one is used",
                n->dir, c->n);
    return 0;
}

static int start(struct rnode *n, struct err *err)
{
    int rv;
    if (n->single) {
        memset(&n->transport, 0, sizeof(n->transport));
        n->transport.impl = n;
        n->transport.init = null_init;
        n->transport.listen = null_listen;
        n->transport.connect = null_connect;
        n->transport.close = null_close;
        uv_timer_init(n->uv, &n->null_timer);
        n->null_timer.data = n;
        n->null_timer_open = true;
    } else {
        rv = raft_uv_tcp_init(&n->transport, n->uv);
        if (rv != 0)
            return err_set(err, -EIO, "raft: transport: %s", raft_strerror(rv));
    }
    n->transport_ready = true;

    rv = raft_uv_init(&n->io, n->uv, n->dir, &n->transport);
    if (rv != 0)
        return err_set(err, -EIO, "raft: data directory %s: %s", n->dir,
                       n->io.errmsg[0] ? n->io.errmsg : raft_strerror(rv));
    n->io_ready = true;
    raft_uv_set_segment_size(&n->io, SEGMENT_SIZE);
    /* Snapshots are a few KB of JSON; plain files let an operator read them. */
    raft_uv_set_snapshot_compression(&n->io, false);
    raft_uv_set_connect_retry_delay(&n->io, CONNECT_RETRY_MS);
    /* Auto-recovery moves a damaged last segment aside and starts without
     * it: committed commands would vanish silently. Refuse to start instead. */
    raft_uv_set_auto_recovery(&n->io, false);

    leader_raft_fsm_init(n);
    rv = raft_init(&n->raft, &n->io, &n->fsm, n->self_id, n->self);
    if (rv != 0)
        return err_set(err, -EIO, "raft: data directory %s: %s", n->dir,
                       raft_errmsg(&n->raft)[0] ? raft_errmsg(&n->raft) : raft_strerror(rv));
    n->raft_ready = true;
    n->raft.data = n;
    raft_set_election_timeout(&n->raft, ELECTION_TIMEOUT_MS);
    raft_set_heartbeat_timeout(&n->raft, HEARTBEAT_TIMEOUT_MS);
    raft_set_snapshot_threshold(&n->raft, SNAPSHOT_THRESHOLD);
    raft_set_snapshot_trailing(&n->raft, SNAPSHOT_TRAILING);
    /* A node cut off from the others must not raise its term and depose a
     * healthy leader when it comes back. */
    raft_set_pre_vote(&n->raft, true);

    if (bootstrap(n, err) < 0)
        return -EIO;
    rv = raft_start(&n->raft);
    if (rv != 0)
        return err_set(err, -EIO, "raft: data directory %s: cannot load the raft state: %s", n->dir,
                       raft_errmsg(&n->raft)[0] ? raft_errmsg(&n->raft) : raft_strerror(rv));
    if (check_configuration(n, err) < 0)
        return -EINVAL;
    uv_timer_init(n->uv, &n->poll);
    n->poll.data = n;
    n->poll_open = true;
    uv_timer_start(&n->poll, on_poll, POLL_INTERVAL_MS, POLL_INTERVAL_MS);
    return 0;
}

static const struct leader_ops raft_ops = {"raft", leader_raft_submit, raft_shutdown,
                                           raft_free_node, leader_raft_audit};
static const struct leader_ops single_ops = {"single-node", leader_raft_submit, raft_shutdown,
                                             raft_free_node, leader_raft_audit};

int leader_raft_init(struct leader *l, struct err *err)
{
    const struct config *cfg = l->p.cfg;
    struct rnode *n = xcalloc(1, sizeof(*n));
    n->l = l;
    n->t = l->p.throttler;
    n->cfg = cfg;
    n->uv = loop_uv(l->p.loop);
    n->single = cfg->raft_nodes.len == 0;
    n->forced = l->p.force_leadership;
    n->lock_fd = -1;
    n->dir = cfg->raft_data_dir;
    l->impl = n;
    l->ops = n->single ? &single_ops : &raft_ops;

    int rc = resolve_nodes(n, err);
    if (rc == 0)
        rc = make_dirs(n->dir, err);
    if (rc == 0)
        rc = lock_dir(n, err);
    if (rc == 0)
        rc = check_dir_contents(n, err);
    if (rc == 0)
        rc = start(n, err);
    if (rc < 0) {
        raft_free_node(l);
        return rc;
    }
    log_info("raft: %s node %s (id %llu), data in %s%s", n->single ? "single" : "cluster", n->self,
             (unsigned long long)n->self_id, n->dir, n->forced ? ", leadership forced" : "");
    check_leadership(n);
    return 0;
}
