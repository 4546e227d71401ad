/* SPDX-License-Identifier: MIT */
/* The MySQL backend's statements and the parsing of its rows, kept pure so
 * they can be tested without a server. The election statements have the same
 * semantics and write the same rows and values as the Go original's, so our
 * nodes and its nodes in one Domain elect a single leader between them. Every
 * string that reaches SQL goes in as a hex literal. All times are the
 * database's now(). Any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/limits.h"

/* Column widths of the shipped schema (sql/backend-schema.sql). */
#define BACKEND_DOMAIN_MAX     32
#define BACKEND_SERVICE_ID_MAX FRENO_NAME_MAX
#define BACKEND_NAME_MAX       FRENO_NAME_MAX

/* The four tables, in the order of backend_schema_ddl(). */
#define BACKEND_TABLES_COUNT 4
extern const char *const backend_tables[BACKEND_TABLES_COUNT];

/* The CREATE TABLE IF NOT EXISTS statement of table @i (0..3); the text of
 * sql/backend-schema.sql is these four statements, each followed by ";". */
const char *backend_schema_ddl(size_t i);

/* The audit trail's table (docs/ha.md#audit-log): created by
 * --init-backend after the four and appended to sql/backend-schema.sql,
 * but optional: without it the daemon logs once and keeps the trail in
 * its log only. */
const char *backend_audit_ddl(void);
/* Inserts @n records (1..) carried out by @service_id_sql (a hex literal). */
struct audit_record;
char *backend_sql_audit_insert(const struct audit_record *v, size_t n, const char *service_id_sql);
/* The rows after id @after_id, oldest first, at most @limit; with
 * @after_id 0 the newest @limit. Columns: id, at_ms, status, who, peer,
 * forwarded, what, params, message. */
char *backend_sql_audit_select(uint64_t after_id, size_t limit);
/* Deletes rows older than @max_days, and all but the newest @max_rows by
 * id; at most @batch rows per statement. Two statements, by @which (0, 1). */
char *backend_sql_audit_prune(int which, int64_t max_days, int64_t max_rows, size_t batch);
/* Fills @r from a row of backend_sql_audit_select() and returns its id, or
 * 0 when the row is not one (a NULL or out-of-range cell). */
uint64_t backend_parse_audit(const char *const *cells, struct audit_record *r);

/* A name as text and as the SQL hex literal the statements use. */
struct backend_name {
    char *text;
    char *sql;
};

/* Who we are in the backend, made once: our Domain, ShareDomain and service
 * id, and the election expiry. */
struct backend_ids {
    struct backend_name domain;
    struct backend_name share_domain;
    struct backend_name service_id;
    int64_t expiry_secs; /* a row older than this is up for takeover */
};

/* Fills @ids with copies of the three names; backend_ids_deinit() frees. */
void backend_ids_init(struct backend_ids *ids, const char *domain, const char *share_domain,
                      const char *service_id, int64_t expiry_secs);
void backend_ids_deinit(struct backend_ids *ids);

/* Statements. Each returns a heap string the caller frees. */

/* Inserts our election row, or on the Domain's existing row: takes it over
 * if it has not been refreshed for expiry_secs, then refreshes share_domain
 * and last_seen_active only if the row is (now) ours. MySQL evaluates the
 * SET list left to right, which is what makes takeover and refresh one
 * atomic step. */
char *backend_sql_attempt_leadership(const struct backend_ids *ids);
/* One row: (is_leader 0/1, leader service_id or "", microseconds until the
 * row can be taken over or NULL when there is none). The statement the
 * original reads with, plus the third column. */
char *backend_sql_read_leadership(const struct backend_ids *ids);
/* Upserts our service_health row. */
char *backend_sql_register_health(const struct backend_ids *ids);
/* Rows (service_id) of our Domain seen within expiry_secs, sorted. */
char *backend_sql_healthy_domain_services(const struct backend_ids *ids);
/* Rows (domain, service_id) of the other live leaders in our ShareDomain. */
char *backend_sql_share_domain_services(const struct backend_ids *ids);
/* Makes our election row, if it is ours, look long expired, so that a peer
 * takes over at its next attempt. */
char *backend_sql_release(const struct backend_ids *ids);
/* Rows (table_name, column_name, is_nullable) of the four tables' columns in
 * the current schema: what backend_schema_check() needs. */
char *backend_sql_schema_columns(void);
#define BACKEND_SCHEMA_COLUMNS 3

/* Applies /throttle-app to the row of @key in one statement, with the
 * semantics of docs/semantics.md#app-throttles judged on the row: a missing or expired row is
 * (re)created with expiry now()+ttl (no TTL or TTL 0: NULL, never) and the
 * ratio given or 1; on a live row a TTL sets a new expiry (0: never) and a
 * ratio a new ratio, and what is not given is kept. @ratio must be in [0,1]. */
char *backend_sql_throttle_app(const char *key, bool has_ttl, int64_t ttl_min, bool has_ratio,
                               double ratio);
/* The row of @key in the column layout of backend_sql_load_apps(). */
char *backend_sql_read_app(const char *key);
char *backend_sql_unthrottle_app(const char *key);
/* Skips @host for @ttl_min minutes (callers pass the 60 minute default). */
char *backend_sql_skip_host(const char *host, int64_t ttl_min);
char *backend_sql_recover_host(const char *host);
/* Rows (app_name, ratio, expires_at is null, ttl_seconds, span_seconds) of
 * throttled_apps that are live or malformed, plainly expired rows left out:
 * at most @limit, the most recently throttled first (ties by name, so the
 * same rows every time). */
char *backend_sql_load_apps(size_t limit);
#define BACKEND_APP_COLUMNS 5
/* Rows (host_name, ttl_seconds, span_seconds) of skipped_hosts that are live
 * or malformed: at most @limit, the most recently skipped first. */
char *backend_sql_load_hosts(size_t limit);
#define BACKEND_HOST_COLUMNS 3
/* An upper bound on the bytes (each cell plus its NUL) of one row of either
 * load: a name of 128 utf8mb4 characters and the numbers as text. */
#define BACKEND_LOAD_ROW_BYTES_MAX 640

/* Row parsing. */

enum backend_row {
    BACKEND_ROW_OK,
    BACKEND_ROW_EXPIRED, /* a normal row whose time has passed: ignored quietly */
    BACKEND_ROW_BAD,     /* malformed: rejected with the reason in @err */
};

struct backend_app {
    const char *key;       /* points into the row */
    uint64_t expire_at_ms; /* 0: never */
    double ratio;          /* [0,1], or -1: not given (a Go node's sentinel) */
};

/* Parses one row of backend_sql_load_apps() (BACKEND_APP_COLUMNS cells, NULL
 * for SQL NULL).
 * Expiry is taken relative to @now_ms from the database's own ttl, so node
 * and database clocks need not agree; an expiry in the current second is
 * already expired. */
enum backend_row backend_parse_app(const char *const *cells, uint64_t now_ms,
                                   struct backend_app *out, struct err *err);

struct backend_host {
    const char *host;
    uint64_t expire_at_ms;
};

/* Parses one row of backend_sql_load_hosts() (BACKEND_HOST_COLUMNS cells). */
enum backend_row backend_parse_host(const char *const *cells, uint64_t now_ms,
                                    struct backend_host *out, struct err *err);

/* Per-app rules (docs/ha.md#app-rules): an optional fifth table. A backend
 * without it works as before, with no rules; the original never reads it. */
#define BACKEND_RULES_TABLE "app_rules"
/* Its CREATE TABLE IF NOT EXISTS statement (also in sql/backend-schema.sql). */
const char *backend_rules_ddl(void);
/* Whether the rows of backend_sql_schema_columns() show the rules table. */
bool backend_schema_has_rules(const char *const *cells, size_t nrows);
/* Stores the rule @text of @key, replacing any, expiring in @ttl_min
 * minutes (0: never). */
char *backend_sql_set_rule(const char *key, const char *text, int64_t ttl_min);
char *backend_sql_remove_rule(const char *key);
/* Rows (app_name, rule, expires_at is null, ttl_seconds, span_seconds) of
 * live or malformed rules: at most @limit, the most recently set first. */
char *backend_sql_load_rules(size_t limit);
#define BACKEND_RULE_COLUMNS 5
/* An upper bound on the bytes of one row of that load. */
#define BACKEND_RULE_ROW_BYTES_MAX 2048

struct app_rule;
struct backend_rule {
    const char *key;       /* points into the row */
    uint64_t expire_at_ms; /* 0: never */
};
/* Parses one row of backend_sql_load_rules() into @out and @rule. */
enum backend_row backend_parse_rule(const char *const *cells, uint64_t now_ms,
                                    struct backend_rule *out, struct app_rule *rule,
                                    struct err *err);

/* Room for the names of all four tables joined with ", ". */
#define BACKEND_MISSING_TABLES_SIZE 128
/* The statement that makes a throttled_apps.expires_at created NOT NULL
 * (by an older schema) accept the NULL of a permanent throttle. */
#define BACKEND_FIX_APPS_EXPIRY                                                                    \
    "ALTER TABLE throttled_apps MODIFY expires_at timestamp NULL DEFAULT NULL"

/* Result of backend_sql_schema_columns(): the tables missing (names joined
 * with ", " into @missing, "" if none) and whether throttled_apps.expires_at
 * accepts NULL (false also when the table is missing). */
void backend_schema_check(const char *const *cells, size_t nrows, char *missing,
                          size_t missing_size, bool *apps_expiry_nullable);

/* Charset for a connection with collation @collation ("utf8mb4_bin" ->
 * "utf8mb4"), written to @buf (BACKEND_CHARSET_SIZE bytes hold any). NULL
 * or "" gives "utf8mb4". */
#define BACKEND_CHARSET_SIZE 64
const char *backend_charset_of(const char *collation, char *buf, size_t size);
