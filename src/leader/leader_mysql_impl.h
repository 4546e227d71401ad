/* SPDX-License-Identifier: MIT */
/* Private to the MySQL backend leader (docs/ha.md#mysql-backend), whose
 * parts share one struct: leader_mysql.c starts and frees it,
 * leader_mysql_elect.c runs the election and the lease, leader_mysql_state.c
 * reloads the shared state, leader_mysql_ops.c carries out operator
 * commands. Loop thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/strmap.h"
#include "leader/backend_sql.h"
#include "leader/leader_impl.h"
#include "mysql/myasync.h"

struct config;
struct load_kind;
struct mysql_audit;
struct share_poll;

#define ELECTION_INTERVAL_MS 1000
/* How long before the database could let our row go we stop leading; see
 * "Why two nodes never both lead" in leader_mysql_elect.c. */
#define LEASE_MARGIN_MS 1000

/* One kind of backend work whose failures are logged once per change. */
struct chan {
    const char *name;
    bool failing;
    enum myconn_status status;
    char msg[256];
    uint64_t failures;
};

/* Other services as the status shows them. */
struct svc_list {
    struct snap_service *v;
    size_t len;
};

/* One operator table the state connection loads: throttled_apps,
 * skipped_hosts or app_rules. */
struct table_load {
    struct mysql_leader *m;
    const struct load_kind *kind; /* what differs between the two */
    size_t max;                   /* the most rows a load takes: the cap */
    bool want;                    /* a load is asked for */
    bool over_logged;             /* the last load found more live rows than @max */
    uint64_t loaded_term;         /* the term whose state the last good load brought */
    struct strmap bad;            /* "name\x1freason" of the rows the last load rejected */
    struct chan chan;
};

struct mysql_leader {
    struct leader *l;
    struct loop *loop;
    struct throttler *t;
    char *backend; /* "host:port/schema", for messages */
    struct backend_ids ids;
    uint64_t lease_ms;
    bool forced;

    struct myconn *elect_conn;
    struct myconn *state_conn;
    struct myconn *ops_conn;
    struct mysql_audit *audit; /* leader_mysql_audit.c, with its own connection */
    uv_timer_t *elect_timer;
    uv_timer_t *lease_timer;
    uv_timer_t *takeover_timer;
    uv_timer_t *stop_timer;
    uv_timer_t *health_timer;
    uv_timer_t *reload_timer;
    uv_timer_t *share_timer;
    struct share_poll *share;

    /* Election round. */
    bool elect_busy;
    bool elect_again; /* a takeover attempt came while a round ran */
    bool refresh_ok;
    bool schema_ok;
    bool apps_expiry_nullable;
    uint64_t refresh_sent_ms; /* clock_boot_ms() when the refresh was sent */
    char schema_missing[BACKEND_MISSING_TABLES_SIZE];

    /* Leadership: serving implies leading (except when forced), and leading
     * implies a lease that has not ended. */
    bool leading;
    bool serving;
    bool healthy;
    uint64_t lease_until_ms;
    uint64_t term; /* counts the times we became leader */
    char *leader_id;
    struct svc_list share_services;
    struct svc_list domain_services;
    char *status_sig;

    /* State connection jobs. */
    bool want_health;
    uint64_t ops_gen; /* bumped by every operator change applied locally */
    uint64_t job_gen;
    uint64_t job_term;
    struct table_load apps;
    struct table_load hosts;
    struct table_load rules; /* app_rules, when the backend has it */
    bool rules_present;
    bool rules_absence_logged;

    /* Operator commands, one at a time, in order (struct op). */
    struct leader_queue ops;

    struct chan elect_chan;
    struct chan health_chan;
    struct chan share_chan;

    bool stopping;
    bool release_sent;
};

/* leader_mysql.c */

/* Notes that work on @c succeeded, logging a recovery. */
void leader_mysql_chan_ok(struct mysql_leader *m, struct chan *c);
/* Notes that work on @c failed with @status and @msg, logging it when the
 * failure starts or changes. */
void leader_mysql_chan_fail(struct mysql_leader *m, struct chan *c, enum myconn_status status,
                            const char *msg);
/* leader_mysql_chan_fail(), and when the query on @c met a missing table,
 * the next round checks the schema again. */
void leader_mysql_query_failed(struct mysql_leader *m, struct chan *ch, const struct myconn *c,
                               enum myconn_status status, const char *msg);
/* Sends @sql (freed here) on @c, to be answered through @cb with @m. */
void leader_mysql_send(struct myconn *c, char *sql, myconn_done_fn *cb, struct mysql_leader *m);
/* Replaces @s with the rows of @res: (domain, service_id), or with @domain
 * given (service_id) in @domain. Rows with a NULL cell are left out. */
void leader_mysql_svc_fill(struct svc_list *s, const struct myresult *res, const char *domain);
void leader_mysql_svc_clear(struct svc_list *s);

/* leader_mysql_elect.c */

/* Creates the election's timers and starts its rounds, the first at once. */
void leader_mysql_elect_start(struct mysql_leader *m);
/* Closes the election's timers and frees the status it keeps. */
void leader_mysql_elect_deinit(struct mysql_leader *m);
/* Publishes what /leader-check and the consensus endpoints show, when it
 * changed. */
void leader_mysql_publish_status(struct mysql_leader *m);
/* Starts serving once a new leader's state is loaded and its lease runs. */
void leader_mysql_maybe_serve(struct mysql_leader *m);
/* leader_ops.shutdown: steps down, then releases the election row. */
void leader_mysql_shutdown(struct leader *l);

/* leader_mysql_state.c */

/* Sets up the loads with their caps from @cfg. */
void leader_mysql_state_init(struct mysql_leader *m, const struct config *cfg);
/* Creates the state connection's timers and starts them. */
void leader_mysql_state_start(struct mysql_leader *m);
/* Closes the state connection's timers and frees what the loads and the
 * health checks keep. */
void leader_mysql_state_deinit(struct mysql_leader *m);
/* Starts the next wanted job when the state connection is idle. */
void leader_mysql_state_kick(struct mysql_leader *m);

/* leader_mysql_ops.c */

/* leader_ops.submit: checks @cmd, then queues its statement. */
void leader_mysql_submit(struct leader *l, struct loop_cmd *cmd);
/* Answers every queued command 503, for a leader going away. */
void leader_mysql_ops_abandon(struct mysql_leader *m);

/* leader_mysql_audit.c */

/* Starts the audit trail's writes, reads and pruning on @conn (taken). */
void leader_mysql_audit_start(struct mysql_leader *m, const struct config *cfg,
                              struct myconn *conn);
/* Stops them and frees the connection; records still queued stay in the
 * log only. */
void leader_mysql_audit_free(struct mysql_leader *m);
/* leader_ops.audit: queues @r for the audit_log table. */
void leader_mysql_audit(struct leader *l, const struct audit_record *r);
