/* SPDX-License-Identifier: MIT */
/* Leadership and replicated operator state through raft: canonical's libraft
 * with its libuv disk I/O and TCP transport, driven by our own loop. The
 * raft leader probes; throttle, unthrottle, skip and recover go through the
 * log as absolute values computed by the leader, one at a time, and are
 * applied on every node in log order. With no RaftNodes this is single-node
 * mode: one voter, no network, leader at once, state kept in RaftDataDir.
 * Loop thread. */
#include "leader/leader_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <raft.h>
#include <raft/uv.h>

#include "config/config.h"
#include "core/xalloc.h"
#include "leader/raft_addr.h"
#include "leader/raft_codec.h"
#include "log/log.h"
#include "loop/loop.h"
#include "snapshot/snapshot.h"
#include "throttler/throttler.h"

#define SINGLE_NODE_ID 1
/* A follower starts an election 1-2 election timeouts after it last heard
 * from the leader, and a leader that reached no majority for one election
 * timeout steps down: together they bound failover to about 2-3 s. */
#define ELECTION_TIMEOUT_MS  1000
#define HEARTBEAT_TIMEOUT_MS 100
#define CONNECT_RETRY_MS     250
/* Operator commands are rare and the state is usually small: snapshot often,
 * so a restart replays little and a new node catches up from one snapshot.
 * A snapshot costs in proportion to the state (up to MaxThrottledApps plus
 * MaxSkippedHosts entries), so with a large state it is taken after one
 * command per SNAPSHOT_ENTRIES_PER_COMMAND entries instead, keeping the
 * cost per command constant. */
#define SNAPSHOT_THRESHOLD           64
#define SNAPSHOT_ENTRIES_PER_COMMAND 64
#define SNAPSHOT_TRAILING            16
#define SEGMENT_SIZE                 ((size_t)1024 * 1024)
/* How often raft's state is looked at (libraft 0.15 has no state callback). */
#define POLL_INTERVAL_MS 20
#define LOCK_FILE        "freno.lock"

struct pending {
    struct loop_cmd *cmd;
    struct pending *next;
};

struct rnode {
    struct leader *l;
    struct throttler *t;
    const struct config *cfg;
    uv_loop_t *uv;
    bool single;
    bool forced;
    char *self; /* our raft address, as peers and /raft/leader show it */
    raft_id self_id;
    char **nodes; /* cluster mode: canonical RaftNodes, sorted, unique */
    size_t nnodes;
    char *dir;
    int lock_fd;

    struct raft raft;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft_uv_transport transport;
    bool transport_ready;
    bool io_ready;
    bool raft_ready; /* raft_init succeeded: raft_close is owed */
    bool raft_closing;
    bool raft_closed;

    /* Single-node mode's transport: no network, and a handle to call the
     * close callback from the loop rather than from inside libraft. */
    uv_timer_t null_timer;
    bool null_timer_open;
    raft_uv_transport_close_cb null_close_cb;

    uv_timer_t poll;
    bool poll_open;

    /* What the throttler was last told. */
    bool shown;
    int shown_state;
    char *shown_leader;
    bool shown_is_leader;

    /* Leadership is usable once a barrier of the current term is applied:
     * then every entry committed by earlier leaders is applied here too. */
    raft_term ready_term;
    bool barrier_pending;
    struct raft_barrier barrier;

    /* Operator commands: queued, and proposed one at a time so each is
     * planned against the state its predecessors left. */
    struct pending *head;
    struct pending *tail;
    struct loop_cmd *inflight;
    struct raft_apply apply_req;

    bool stopping;
    bool transfer_pending;
    uint64_t transfer_deadline_ms;
    struct raft_transfer transfer;
    void (*done)(void *arg);
    void *done_arg;
};

static struct loop *node_loop(struct rnode *n)
{
    return n->l->p.loop;
}

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

static int node_state(struct rnode *n)
{
    return n->raft_ready && !n->raft_closing ? raft_state(&n->raft) : RAFT_UNAVAILABLE;
}

static bool is_usable_leader(struct rnode *n)
{
    return node_state(n) == RAFT_LEADER && n->ready_term == n->raft.current_term;
}

static const char *leader_address(struct rnode *n)
{
    if (node_state(n) == RAFT_UNAVAILABLE)
        return "";
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader(&n->raft, &id, &addr);
    return addr != NULL ? addr : "";
}

/* Tells the throttler about raft's state when it changed. */
static void show_status(struct rnode *n)
{
    int state = node_state(n);
    const char *leader = leader_address(n);
    bool is_leader = !n->stopping && (n->forced || is_usable_leader(n));
    if (n->shown && n->shown_state == state && n->shown_is_leader == is_leader &&
        strcmp(n->shown_leader, leader) == 0)
        return;
    log_info("raft: %s in term %llu, leader %s; this node %s", state_name(state),
             n->raft_ready ? n->raft.current_term : 0ull, leader[0] ? leader : "unknown",
             is_leader ? "leads and probes" : "does not lead");
    n->shown = true;
    n->shown_state = state;
    n->shown_is_leader = is_leader;
    free(n->shown_leader);
    n->shown_leader = xstrdup(leader);

    const struct config *cfg = n->cfg;
    struct snap_leader s = {
            .is_leader = is_leader,
            .healthy = state == RAFT_LEADER || state == RAFT_FOLLOWER,
            .leader_id = xstrdup(leader),
            .state = xstrdup(state_name(state)),
            .service_id = xstrdup(n->self),
            .domain = xstrdup(cfg->domain ? cfg->domain : ""),
            .share_domain = xstrdup(cfg->share_domain ? cfg->share_domain : ""),
    };
    throttler_set_leader_status(n->t, &s);
    throttler_set_leader(n->t, is_leader);
}

/* ---- operator commands ---- */

static void fail_queued(struct rnode *n, int status, const char *msg)
{
    while (n->head != NULL) {
        struct pending *p = n->head;
        n->head = p->next;
        loop_cmd_finish(node_loop(n), p->cmd, status, msg);
        free(p);
    }
    n->tail = NULL;
}

/* Turns an operator request into the absolute command every node applies. */
static int plan(struct rnode *n, const struct loop_cmd *cmd, struct raft_codec_cmd *out,
                struct err *err)
{
    uint64_t now_ms = loop_now_ms(node_loop(n));
    memset(out, 0, sizeof(*out));
    if (strlen(cmd->name) > RAFT_CODEC_KEY_MAX)
        return err_set(err, -EINVAL, "name longer than %d bytes", RAFT_CODEC_KEY_MAX);
    snprintf(out->key, sizeof(out->key), "%s", cmd->name);
    switch (cmd->kind) {
    case LOOP_CMD_THROTTLE_APP:
        out->op = RAFT_CODEC_THROTTLE;
        return throttler_plan_throttle_app(n->t, cmd->name, cmd->has_ttl, cmd->ttl_min,
                                           cmd->has_ratio, cmd->ratio, now_ms, &out->expire_at_ms,
                                           &out->ratio, err);
    case LOOP_CMD_UNTHROTTLE_APP:
        out->op = RAFT_CODEC_UNTHROTTLE;
        return 0;
    case LOOP_CMD_SKIP_HOST:
        out->op = RAFT_CODEC_SKIP;
        return throttler_plan_skip_host(n->t, cmd->name, cmd->has_ttl, cmd->ttl_min, now_ms,
                                        &out->expire_at_ms, err);
    case LOOP_CMD_RECOVER_HOST:
        out->op = RAFT_CODEC_RECOVER;
        return 0;
    }
    return err_set(err, -EINVAL, "unknown command %d", (int)cmd->kind);
}

/* Copies @len bytes of JSON into a raft_malloc'ed buffer padded with blanks
 * to a multiple of 8 bytes: libraft 0.15 writes entries unpadded but reads
 * them back as if padded, so any other length corrupts its segment files.
 * Trailing blanks are still valid JSON. */
static struct raft_buffer to_raft_buffer(const char *text, size_t len)
{
    size_t padded = (len + 7) / 8 * 8;
    struct raft_buffer buf = {.base = raft_malloc(padded ? padded : 8), .len = padded ? padded : 8};
    if (buf.base == NULL) {
        log_error("raft: out of memory for %zu bytes", buf.len);
        abort();
    }
    memcpy(buf.base, text, len);
    memset((char *)buf.base + len, ' ', buf.len - len);
    return buf;
}

static void pump(struct rnode *n);

static void on_applied(struct raft_apply *req, int status, void *result)
{
    struct rnode *n = req->data;
    (void)result;
    struct loop_cmd *cmd = n->inflight;
    n->inflight = NULL;
    if (status == 0) {
        throttler_publish_pending(n->t);
        loop_cmd_finish(node_loop(n), cmd, 200, "OK");
    } else if (status == RAFT_SHUTDOWN || n->stopping) {
        loop_cmd_finish(node_loop(n), cmd, 503, "shutting down");
    } else {
        /* The entry may still commit under the next leader: the outcome is
         * unknown, and retrying is safe since commands set absolute values. */
        char msg[200];
        snprintf(msg, sizeof(msg), "not leader: %s before the command was committed",
                 raft_strerror(status));
        loop_cmd_finish(node_loop(n), cmd, 500, msg);
    }
    pump(n);
}

/* Proposes the next queued command when none is in flight. */
static void pump(struct rnode *n)
{
    while (n->inflight == NULL && n->head != NULL && !n->stopping) {
        if (node_state(n) != RAFT_LEADER) {
            fail_queued(n, 500, "not leader");
            return;
        }
        if (!is_usable_leader(n))
            return; /* the barrier's callback calls us again */
        struct pending *p = n->head;
        n->head = p->next;
        if (n->head == NULL)
            n->tail = NULL;
        struct loop_cmd *cmd = p->cmd;
        free(p);

        struct err err = {0};
        struct raft_codec_cmd c;
        char *text = NULL;
        size_t len = 0;
        if (plan(n, cmd, &c, &err) < 0 || raft_codec_encode_cmd(&c, &text, &len, &err) < 0) {
            loop_cmd_finish(node_loop(n), cmd, 500, err.msg);
            continue;
        }
        struct raft_buffer buf = to_raft_buffer(text, len);
        free(text);
        n->apply_req.data = n;
        int rv = raft_apply(&n->raft, &n->apply_req, &buf, 1, on_applied);
        if (rv != 0) {
            raft_free(buf.base);
            char msg[300];
            if (rv == RAFT_NOTLEADER)
                snprintf(msg, sizeof(msg), "not leader");
            else
                snprintf(msg, sizeof(msg), "raft: apply: %s", raft_errmsg(&n->raft));
            loop_cmd_finish(node_loop(n), cmd, 500, msg);
            continue;
        }
        n->inflight = cmd;
    }
}

static void raft_submit(struct leader *l, struct loop_cmd *cmd)
{
    struct rnode *n = l->impl;
    if (n->stopping) {
        loop_cmd_finish(node_loop(n), cmd, 503, "shutting down");
        return;
    }
    /* As the original: only the raft leader takes commands, forced or not. */
    if (node_state(n) != RAFT_LEADER) {
        loop_cmd_finish(node_loop(n), cmd, 500, "not leader");
        return;
    }
    struct pending *p = xcalloc(1, sizeof(*p));
    p->cmd = cmd;
    if (n->tail != NULL)
        n->tail->next = p;
    else
        n->head = p;
    n->tail = p;
    pump(n);
}

/* ---- leadership ---- */

static void on_barrier(struct raft_barrier *req, int status)
{
    struct rnode *n = req->data;
    n->barrier_pending = false;
    if (status == 0 && node_state(n) == RAFT_LEADER) {
        n->ready_term = n->raft.current_term;
        show_status(n);
    }
    pump(n);
}

static void check_leadership(struct rnode *n)
{
    int state = node_state(n);
    if (state == RAFT_LEADER && !is_usable_leader(n) && !n->barrier_pending && !n->stopping) {
        n->barrier.data = n;
        int rv = raft_barrier(&n->raft, &n->barrier, on_barrier);
        if (rv == 0)
            n->barrier_pending = true;
        else
            log_warn("raft: barrier: %s", raft_strerror(rv));
    }
    if (state != RAFT_LEADER && n->head != NULL)
        fail_queued(n, 500, "not leader");
    show_status(n);
}

static void close_raft(struct rnode *n);

static void on_poll(uv_timer_t *h)
{
    struct rnode *n = h->data;
    check_leadership(n);
    if (n->transfer_pending && loop_now_ms(node_loop(n)) >= n->transfer_deadline_ms) {
        log_warn("raft: leadership transfer did not finish in time, closing anyway");
        n->transfer_pending = false;
        close_raft(n);
    }
}

/* ---- state machine ---- */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct rnode *n = fsm->data;
    struct raft_codec_cmd c;
    struct err err = {0};
    *result = NULL;
    /* Every node skips a bad entry the same way; refusing it would stop
     * this node from ever applying anything after it. */
    if (raft_codec_decode_cmd(buf->base, buf->len, &c, &err) < 0) {
        log_error("raft: skipping a log entry: %s", err.msg);
        return 0;
    }
    log_debug("raft: apply %s %s", raft_codec_op_name(c.op), c.key);
    switch (c.op) {
    case RAFT_CODEC_THROTTLE:
        throttler_put_app(n->t, c.key, c.expire_at_ms, c.ratio);
        break;
    case RAFT_CODEC_UNTHROTTLE:
        throttler_remove_app(n->t, c.key);
        break;
    case RAFT_CODEC_SKIP:
        throttler_put_skipped_host(n->t, c.key, c.expire_at_ms);
        break;
    case RAFT_CODEC_RECOVER:
        throttler_remove_skipped_host(n->t, c.key);
        break;
    }
    /* Published by on_applied() on the leader, before it answers, and by
     * the throttler's next tick elsewhere: a replay of thousands of entries
     * at start must not rebuild the snapshot after each. */
    return 0;
}

static void collect_app(const char *key, uint64_t expire_at_ms, double ratio, void *arg)
{
    raft_codec_state_add_app(arg, key, expire_at_ms, ratio);
}

static void collect_host(const char *host, uint64_t expire_at_ms, void *arg)
{
    raft_codec_state_add_host(arg, host, expire_at_ms);
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct rnode *n = fsm->data;
    struct raft_codec_state s = {0};
    throttler_each_app(n->t, collect_app, &s);
    throttler_each_skipped_host(n->t, collect_host, &s);
    char *text;
    size_t len;
    raft_codec_encode_state(&s, &text, &len);
    size_t entries = s.apps_len + s.hosts_len;
    raft_codec_state_deinit(&s);
    unsigned threshold = SNAPSHOT_THRESHOLD;
    if (entries / SNAPSHOT_ENTRIES_PER_COMMAND > threshold)
        threshold = (unsigned)(entries / SNAPSHOT_ENTRIES_PER_COMMAND);
    raft_set_snapshot_threshold(&n->raft, threshold);
    /* libraft frees both with raft_free (fsm version 1). */
    struct raft_buffer *b = raft_malloc(sizeof(*b));
    if (b == NULL) {
        free(text);
        return RAFT_NOMEM;
    }
    *b = to_raft_buffer(text, len);
    free(text);
    *bufs = b;
    *n_bufs = 1;
    log_debug("raft: snapshot of %zu bytes", len);
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct rnode *n = fsm->data;
    struct raft_codec_state s = {0};
    struct err err = {0};
    /* On failure libraft keeps ownership of @buf and frees it. */
    if (raft_codec_decode_state(buf->base, buf->len, &s, &err) < 0) {
        log_error("raft: cannot restore a snapshot: %s", err.msg);
        return RAFT_MALFORMED;
    }
    raft_free(buf->base);
    /* In one step each: entry by entry, every put would rebuild what the
     * snapshot shows, quadratic in the number of entries. */
    struct throttler_app *apps = xcalloc(s.apps_len ? s.apps_len : 1, sizeof(*apps));
    for (size_t i = 0; i < s.apps_len; i++)
        apps[i] = (struct throttler_app){.key = s.apps[i].key,
                                         .expire_at_ms = s.apps[i].expire_at_ms,
                                         .ratio = s.apps[i].ratio};
    throttler_replace_apps(n->t, apps, s.apps_len);
    free(apps);
    struct throttler_host *hosts = xcalloc(s.hosts_len ? s.hosts_len : 1, sizeof(*hosts));
    for (size_t i = 0; i < s.hosts_len; i++)
        hosts[i] = (struct throttler_host){.host = s.hosts[i].host,
                                           .expire_at_ms = s.hosts[i].expire_at_ms};
    throttler_replace_skipped_hosts(n->t, hosts, s.hosts_len);
    free(hosts);
    log_info("raft: restored a snapshot: %zu app throttle(s), %zu skipped host(s)", s.apps_len,
             s.hosts_len);
    raft_codec_state_deinit(&s);
    throttler_publish_pending(n->t);
    return 0;
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
    if (n->done != NULL) {
        void (*done)(void *) = n->done;
        n->done = NULL;
        done(n->done_arg);
    }
}

static void close_raft(struct rnode *n)
{
    if (!n->raft_ready || n->raft_closing)
        return;
    n->raft_closing = true;
    n->raft.data = n;
    raft_close(&n->raft, on_raft_closed);
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

static void raft_shutdown(struct leader *l, void (*done)(void *arg), void *arg)
{
    struct rnode *n = l->impl;
    n->stopping = true;
    n->done = done;
    n->done_arg = arg;
    fail_queued(n, 503, "shutting down");
    show_status(n);
    /* A leader hands over first, so the others need not wait for an
     * election timeout. */
    if (node_state(n) == RAFT_LEADER && !n->single) {
        n->transfer.data = n;
        if (raft_transfer(&n->raft, &n->transfer, 0, on_transferred) == 0) {
            n->transfer_pending = true;
            n->transfer_deadline_ms = loop_now_ms(node_loop(n)) + 2ull * ELECTION_TIMEOUT_MS;
            return;
        }
    }
    close_raft(n);
    if (!n->raft_ready)
        done(arg);
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
    n->done = NULL;
    fail_queued(n, 503, "shutting down");
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
    free(n->dir);
    free(n->shown_leader);
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

    n->fsm.version = 1;
    n->fsm.data = n;
    n->fsm.apply = fsm_apply;
    n->fsm.snapshot = fsm_snapshot;
    n->fsm.restore = fsm_restore;
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

static const struct leader_ops raft_ops = {"raft", raft_submit, raft_shutdown, raft_free_node};
static const struct leader_ops single_ops = {"single-node", raft_submit, raft_shutdown,
                                             raft_free_node};

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
    n->dir = xstrdup(cfg->raft_data_dir);
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
