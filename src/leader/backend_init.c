/* SPDX-License-Identifier: MIT */
/* freno --init-backend: creates the backend schema (if missing), its four
 * tables and the app_rules table of per-app rules idempotently, then checks
 * them. Runs on the main thread before the daemon's loop exists, on a
 * private loop that it spins until done, so the MariaDB client stays behind
 * myasync like everywhere else. */
#include "leader/leader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config/config.h"
#include "core/xalloc.h"
#include "leader/backend_sql.h"
#include "log/log.h"
#include "loop/loop.h"
#include "mysql/myasync.h"

#define INIT_CONNECT_TIMEOUT_MS 5000
#define INIT_QUERY_TIMEOUT_MS   30000 /* DDL may wait for a metadata lock */
#define INIT_DEADLINE_MS        120000
#define SCHEMA_NAME_MAX         64 /* MySQL's longest identifier */

enum init_step {
    STEP_SCHEMA_EXISTS,
    STEP_CREATE_SCHEMA,
    STEP_USE,
    STEP_TABLES, /* + table index */
    STEP_RULES = STEP_TABLES + BACKEND_TABLES_COUNT,
    STEP_AUDIT,
    STEP_CHECK,
    STEP_DONE,
};

struct init {
    struct loop *loop;
    struct myconn *conn;
    const struct config *cfg;
    char *schema_ident; /* `schema`, backquoted */
    int step;
    int rc;
    struct err *err;
    uv_timer_t deadline;
};

static void init_next(struct init *in);

static void init_fail(struct init *in, int code, const char *what, const char *msg)
{
    in->rc = err_set(in->err, code, "init-backend %s:%u/%s: %s: %s", in->cfg->backend_host,
                     (unsigned)in->cfg->backend_port, in->cfg->backend_schema, what, msg);
    loop_stop(in->loop);
}

static void on_query(struct myconn *c, enum myconn_status status, const struct myresult *res,
                     const char *errmsg, void *arg)
{
    (void)c;
    struct init *in = arg;
    if (status != MYCONN_OK) {
        const char *what = in->step == STEP_SCHEMA_EXISTS   ? "look up the schema"
                           : in->step == STEP_CREATE_SCHEMA ? "create the schema"
                           : in->step == STEP_USE           ? "use the schema"
                           : in->step == STEP_CHECK         ? "check the tables"
                           : in->step == STEP_RULES         ? BACKEND_RULES_TABLE
                           : in->step == STEP_AUDIT         ? "audit_log"
                                                    : backend_tables[in->step - STEP_TABLES];
        init_fail(in, -EIO, what, errmsg);
        return;
    }
    switch (in->step) {
    case STEP_SCHEMA_EXISTS:
        in->step = res->nrows > 0 ? STEP_USE : STEP_CREATE_SCHEMA;
        break;
    case STEP_CREATE_SCHEMA:
        log_info("init-backend: created schema %s", in->schema_ident);
        in->step = STEP_USE;
        break;
    case STEP_CHECK: {
        char missing[BACKEND_MISSING_TABLES_SIZE];
        bool nullable;
        backend_schema_check(res->cells, res->nrows, missing, sizeof(missing), &nullable);
        if (missing[0] != '\0' || !backend_schema_has_rules(res->cells, res->nrows)) {
            init_fail(in, -EIO, "check the tables", "still missing after CREATE");
            return;
        }
        if (!nullable)
            log_warn(
                    "init-backend: the existing throttled_apps.expires_at is NOT NULL, so permanent throttles are refused; fix: %s",
                    BACKEND_FIX_APPS_EXPIRY);
        in->step = STEP_DONE;
        break;
    }
    default:
        in->step++;
        break;
    }
    init_next(in);
}

static void init_next(struct init *in)
{
    char *sql = NULL;
    if (in->step == STEP_DONE) {
        log_info(
                "init-backend: %s:%u/%s: tables service_election, service_health, throttled_apps, skipped_hosts and app_rules are ready, and audit_log for the audit trail",
                in->cfg->backend_host, (unsigned)in->cfg->backend_port, in->cfg->backend_schema);
        loop_stop(in->loop);
        return;
    }
    if (in->step == STEP_SCHEMA_EXISTS) {
        char lit[2 * SCHEMA_NAME_MAX + 4];
        size_t len = 0;
        if (myasync_hex_literal(lit, sizeof(lit), &len, in->cfg->backend_schema) < 0) {
            init_fail(in, -EINVAL, "schema name", "too long");
            return;
        }
        sql = xasprintf(
                "select schema_name from information_schema.schemata where schema_name = %s", lit);
    } else if (in->step == STEP_CREATE_SCHEMA) {
        sql = xasprintf("CREATE DATABASE IF NOT EXISTS %s DEFAULT CHARACTER SET utf8mb4",
                        in->schema_ident);
    } else if (in->step == STEP_USE) {
        sql = xasprintf("USE %s", in->schema_ident);
    } else if (in->step == STEP_CHECK) {
        sql = backend_sql_schema_columns();
    } else if (in->step == STEP_RULES) {
        sql = xstrdup(backend_rules_ddl());
    } else if (in->step == STEP_AUDIT) {
        sql = xstrdup(backend_audit_ddl());
    } else {
        sql = xstrdup(backend_schema_ddl((size_t)(in->step - STEP_TABLES)));
    }
    int rc = myconn_query(in->conn, sql, on_query, in);
    free(sql);
    if (rc < 0)
        init_fail(in, rc, "query", "connection busy");
}

static void on_deadline(uv_timer_t *t)
{
    struct init *in = t->data;
    char msg[64];
    snprintf(msg, sizeof(msg), "not done within %d s", INIT_DEADLINE_MS / 1000);
    init_fail(in, -ETIMEDOUT, "all steps", msg);
}

/* `name` with backquotes doubled: the schema comes from the config file,
 * but quoting costs nothing. */
static char *quote_ident(const char *name)
{
    size_t n = strlen(name), o = 0;
    char *q = xmalloc(2 * n + 3);
    q[o++] = '`';
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '`')
            q[o++] = '`';
        q[o++] = name[i];
    }
    q[o++] = '`';
    q[o] = '\0';
    return q;
}

int leader_init_backend(const struct config *cfg, struct err *err)
{
    if (cfg->backend_host == NULL || cfg->backend_host[0] == '\0')
        return err_set(err, -EINVAL,
                       "init-backend: BackendMySQLHost is not set in the configuration");
    if (cfg->backend_schema == NULL || cfg->backend_schema[0] == '\0' ||
        strlen(cfg->backend_schema) > SCHEMA_NAME_MAX)
        return err_set(err, -EINVAL, "init-backend: BackendMySQLSchema must be 1 to %d characters",
                       SCHEMA_NAME_MAX);
    struct init in = {.cfg = cfg, .err = err, .step = STEP_SCHEMA_EXISTS};
    in.loop = loop_new();
    if (in.loop == NULL)
        return err_set(err, -ENOMEM, "init-backend: cannot create an event loop");
    char charset[BACKEND_CHARSET_SIZE];
    backend_charset_of(cfg->backend_collation, charset, sizeof(charset));
    struct myconn_params p = {
            .host = cfg->backend_host,
            .port = cfg->backend_port,
            .user = cfg->backend_user ? cfg->backend_user : "",
            .password = cfg->backend_password ? cfg->backend_password : "",
            .database = NULL, /* it may not exist yet */
            .charset = charset,
            .collation = cfg->backend_collation && cfg->backend_collation[0]
                                 ? cfg->backend_collation
                                 : NULL,
            .connect_timeout_ms = INIT_CONNECT_TIMEOUT_MS,
            .query_timeout_ms = INIT_QUERY_TIMEOUT_MS,
    };
    in.conn = myconn_new(in.loop, &p);
    in.schema_ident = quote_ident(cfg->backend_schema);
    uv_timer_init(loop_uv(in.loop), &in.deadline);
    in.deadline.data = &in;
    uv_timer_start(&in.deadline, on_deadline, INIT_DEADLINE_MS, 0);
    init_next(&in);
    if (in.rc == 0)
        loop_run(in.loop);
    uv_timer_stop(&in.deadline);
    myconn_free(in.conn);
    /* loop_free closes the deadline timer (and whatever myconn left). */
    loop_free(in.loop);
    free(in.schema_ident);
    return in.rc;
}
