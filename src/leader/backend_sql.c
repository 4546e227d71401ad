/* SPDX-License-Identifier: MIT */
/* Statement text and row parsing for the MySQL backend. Pure: no I/O, no
 * clock. Strings go into SQL only as hex literals (myasync_hex_literal), so
 * no user text is ever parsed as SQL, whatever the connection charset. */
#include "leader/backend_sql.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/audit.h"
#include "core/parse.h"
#include "core/strbuf.h"
#include "core/xalloc.h"
#include "mysql/myasync.h"
#include "snapshot/app_rule.h"

const char *const backend_tables[BACKEND_TABLES_COUNT] = {
        "service_election",
        "service_health",
        "throttled_apps",
        "skipped_hosts",
};

/* The seed's columns, plus service_health as the original's source has it.
 * Two deliberate additions that do not change the columns: utf8mb4 (a server
 * default of latin1 would mangle app names), and expires_at spelled
 * "NULL DEFAULT NULL", because on a server with explicit_defaults_for_timestamp
 * off a bare TIMESTAMP is NOT NULL and a permanent throttle (NULL) would be
 * stored as "now", i.e. expire at once. */
static const char *const schema_ddl[BACKEND_TABLES_COUNT] = {
        "CREATE TABLE IF NOT EXISTS service_election (\n"
        "  domain varchar(32) NOT NULL,\n"
        "  share_domain varchar(32) NOT NULL,\n"
        "  service_id varchar(128) NOT NULL,\n"
        "  last_seen_active timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
        "  PRIMARY KEY (domain),\n"
        "  KEY share_domain_idx (share_domain,last_seen_active)\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",

        "CREATE TABLE IF NOT EXISTS service_health (\n"
        "  service_id varchar(128) NOT NULL,\n"
        "  domain varchar(32) NOT NULL,\n"
        "  share_domain varchar(32) NOT NULL,\n"
        "  last_seen_active timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
        "  PRIMARY KEY (service_id),\n"
        "  KEY last_seen_active_idx (last_seen_active)\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",

        "CREATE TABLE IF NOT EXISTS throttled_apps (\n"
        "  app_name varchar(128) NOT NULL,\n"
        "  throttled_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
        "  expires_at timestamp NULL DEFAULT NULL,\n"
        "  ratio double,\n"
        "  PRIMARY KEY (app_name)\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",

        "CREATE TABLE IF NOT EXISTS skipped_hosts (\n"
        "  host_name varchar(128) NOT NULL,\n"
        "  skipped_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
        "  expires_at timestamp NOT NULL,\n"
        "  PRIMARY KEY (host_name)\n"
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
};

static const char rules_ddl[] = "CREATE TABLE IF NOT EXISTS app_rules (\n"
                                "  app_name varchar(128) NOT NULL,\n"
                                "  rule varchar(1024) NOT NULL,\n"
                                "  ruled_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
                                "  expires_at timestamp NULL DEFAULT NULL,\n"
                                "  PRIMARY KEY (app_name)\n"
                                ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

const char *backend_rules_ddl(void)
{
    return rules_ddl;
}

static const char audit_ddl[] = "CREATE TABLE IF NOT EXISTS audit_log (\n"
                                "  id bigint unsigned NOT NULL AUTO_INCREMENT,\n"
                                "  at_ms bigint unsigned NOT NULL,\n"
                                "  service_id varchar(128) NOT NULL,\n"
                                "  who varchar(40) NOT NULL,\n"
                                "  peer varchar(64) NOT NULL,\n"
                                "  forwarded varchar(128) NOT NULL,\n"
                                "  what varchar(32) NOT NULL,\n"
                                "  params varchar(384) NOT NULL,\n"
                                "  status smallint unsigned NOT NULL,\n"
                                "  message varchar(200) NOT NULL,\n"
                                "  PRIMARY KEY (id),\n"
                                "  KEY at_ms_idx (at_ms)\n"
                                ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

const char *backend_audit_ddl(void)
{
    return audit_ddl;
}

const char *backend_schema_ddl(size_t i)
{
    return i < BACKEND_TABLES_COUNT ? schema_ddl[i] : NULL;
}

/* @s as a hex literal, on the heap. */
static char *hex(const char *s)
{
    size_t size = 2 * strlen(s) + 4;
    char *buf = xmalloc(size);
    size_t len = 0;
    /* Sized for the worst case, so -ENOSPC cannot happen. */
    if (myasync_hex_literal(buf, size, &len, s) < 0)
        abort();
    return buf;
}

static struct backend_name name_of(const char *text)
{
    return (struct backend_name){xstrdup(text), hex(text)};
}

static void name_free(struct backend_name *n)
{
    free(n->text);
    free(n->sql);
}

void backend_ids_init(struct backend_ids *ids, const char *domain, const char *share_domain,
                      const char *service_id, int64_t expiry_secs)
{
    ids->domain = name_of(domain);
    ids->share_domain = name_of(share_domain);
    ids->service_id = name_of(service_id);
    ids->expiry_secs = expiry_secs;
}

void backend_ids_deinit(struct backend_ids *ids)
{
    name_free(&ids->domain);
    name_free(&ids->share_domain);
    name_free(&ids->service_id);
    memset(ids, 0, sizeof(*ids));
}

char *backend_sql_attempt_leadership(const struct backend_ids *ids)
{
    return xasprintf("insert ignore into service_election (domain, share_domain, service_id, "
                     "last_seen_active) values (%s, %s, %s, now()) on duplicate key update "
                     "service_id = if(last_seen_active < now() - interval %" PRId64
                     " second, values(service_id), service_id), "
                     "share_domain = if(service_id = values(service_id), values(share_domain), "
                     "share_domain), "
                     "last_seen_active = if(service_id = values(service_id), "
                     "values(last_seen_active), last_seen_active)",
                     ids->domain.sql, ids->share_domain.sql, ids->service_id.sql, ids->expiry_secs);
}

char *backend_sql_read_leadership(const struct backend_ids *ids)
{
    /* A row is taken over once now() - E > last_seen_active, with now()
     * in whole seconds: from last_seen_active + E + 1 on. The third column
     * says how far that is, in microseconds of the database clock. */
    return xasprintf("select ifnull(max(service_id) = %s, 0) as is_leader, "
                     "ifnull(max(service_id), '') as service_id, "
                     "timestampdiff(microsecond, now(6), max(last_seen_active) + "
                     "interval %" PRId64 " second) as takeover_in_us "
                     "from service_election where domain = %s",
                     ids->service_id.sql, ids->expiry_secs + 1, ids->domain.sql);
}

char *backend_sql_register_health(const struct backend_ids *ids)
{
    return xasprintf("insert ignore into service_health (service_id, domain, share_domain, "
                     "last_seen_active) values (%s, %s, %s, now()) on duplicate key update "
                     "domain = values(domain), share_domain = values(share_domain), "
                     "last_seen_active = values(last_seen_active)",
                     ids->service_id.sql, ids->domain.sql, ids->share_domain.sql);
}

char *backend_sql_healthy_domain_services(const struct backend_ids *ids)
{
    return xasprintf("select service_id from service_health where domain = %s "
                     "and last_seen_active >= now() - interval %" PRId64 " second "
                     "order by service_id",
                     ids->domain.sql, ids->expiry_secs);
}

char *backend_sql_share_domain_services(const struct backend_ids *ids)
{
    return xasprintf("select domain, service_id from service_election "
                     "where share_domain = %s "
                     "and last_seen_active >= now() - interval %" PRId64 " second "
                     "and service_id != %s order by domain",
                     ids->share_domain.sql, ids->expiry_secs, ids->service_id.sql);
}

char *backend_sql_release(const struct backend_ids *ids)
{
    /* A day, not expiry+1 seconds: peers configured with a longer expiry
     * than ours must see the row as expired too. */
    return xasprintf("update service_election set last_seen_active = now() - interval 1 day "
                     "where domain = %s and service_id = %s",
                     ids->domain.sql, ids->service_id.sql);
}

char *backend_sql_schema_columns(void)
{
    return xasprintf("select table_name, column_name, is_nullable from information_schema.columns "
                     "where table_schema = database() and table_name in "
                     "('%s', '%s', '%s', '%s', '%s')",
                     backend_tables[0], backend_tables[1], backend_tables[2], backend_tables[3],
                     BACKEND_RULES_TABLE);
}

/* A row is live when it has no expiry or one after the current second. */
#define APP_LIVE "(expires_at is null or expires_at > now())"

char *backend_sql_throttle_app(const char *key, bool has_ttl, int64_t ttl_min, bool has_ratio,
                               double ratio)
{
    char *k = hex(key);
    char expiry[64], r[64];
    if (has_ttl && ttl_min > 0)
        snprintf(expiry, sizeof(expiry), "now() + interval %" PRId64 " minute", ttl_min);
    else
        snprintf(expiry, sizeof(expiry), "NULL");
    snprintf(r, sizeof(r), "%.17g", has_ratio ? ratio : 1.0);
    /* expires_at is assigned last, so every condition before it still sees
     * the row's old expiry. A kept ratio that is not a valid one (a Go
     * node's -1 "not given", or a hand-written row) becomes 1. */
    char *sql = xasprintf("insert into throttled_apps (app_name, throttled_at, expires_at, ratio) "
                          "values (%s, now(), %s, %s) on duplicate key update "
                          "ratio = if(" APP_LIVE ", %s, values(ratio)), "
                          "throttled_at = if(" APP_LIVE ", throttled_at, values(throttled_at)), "
                          "expires_at = if(" APP_LIVE ", %s, values(expires_at))",
                          k, expiry, r,
                          has_ratio ? "values(ratio)" : "if(ratio >= 0 and ratio <= 1, ratio, 1)",
                          has_ttl ? "values(expires_at)" : "expires_at");
    free(k);
    return sql;
}

#define APP_SELECT                                                                                 \
    "select app_name, ratio, expires_at is null, timestampdiff(second, now(), expires_at), "       \
    "timestampdiff(second, throttled_at, expires_at) from throttled_apps"

char *backend_sql_read_app(const char *key)
{
    char *k = hex(key);
    char *sql = xasprintf(APP_SELECT " where app_name = %s", k);
    free(k);
    return sql;
}

char *backend_sql_load_apps(size_t limit)
{
    /* Unthrottled rows stay in the table forever (as in the original), so
     * plainly expired ones are left on the server. The limit keeps a table
     * that other nodes filled past our cap from costing more than the cap;
     * app_name is the primary key, so the order is total. */
    return xasprintf(APP_SELECT " where expires_at is null or expires_at > now() "
                                "or expires_at < throttled_at "
                                "order by throttled_at desc, app_name limit %zu",
                     limit);
}

char *backend_sql_unthrottle_app(const char *key)
{
    char *k = hex(key);
    char *sql = xasprintf("update throttled_apps set expires_at = now() where app_name = %s", k);
    free(k);
    return sql;
}

char *backend_sql_skip_host(const char *host, int64_t ttl_min)
{
    char *h = hex(host);
    char *sql = xasprintf("replace into skipped_hosts (host_name, skipped_at, expires_at) "
                          "values (%s, now(), now() + interval %" PRId64 " minute)",
                          h, ttl_min);
    free(h);
    return sql;
}

char *backend_sql_recover_host(const char *host)
{
    char *h = hex(host);
    char *sql = xasprintf("update skipped_hosts set expires_at = now() where host_name = %s", h);
    free(h);
    return sql;
}

char *backend_sql_load_hosts(size_t limit)
{
    return xasprintf("select host_name, timestampdiff(second, now(), expires_at), "
                     "timestampdiff(second, skipped_at, expires_at) from skipped_hosts "
                     "where expires_at > now() or expires_at < skipped_at "
                     "order by skipped_at desc, host_name limit %zu",
                     limit);
}

char *backend_sql_set_rule(const char *key, const char *text, int64_t ttl_min)
{
    char *k = hex(key), *r = hex(text);
    char expiry[64];
    if (ttl_min > 0)
        snprintf(expiry, sizeof(expiry), "now() + interval %" PRId64 " minute", ttl_min);
    else
        snprintf(expiry, sizeof(expiry), "NULL");
    char *sql = xasprintf("replace into app_rules (app_name, rule, ruled_at, expires_at) "
                          "values (%s, %s, now(), %s)",
                          k, r, expiry);
    free(k);
    free(r);
    return sql;
}

char *backend_sql_remove_rule(const char *key)
{
    char *k = hex(key);
    char *sql = xasprintf("delete from app_rules where app_name = %s", k);
    free(k);
    return sql;
}

char *backend_sql_load_rules(size_t limit)
{
    return xasprintf("select app_name, rule, expires_at is null, "
                     "timestampdiff(second, now(), expires_at), "
                     "timestampdiff(second, ruled_at, expires_at) from app_rules "
                     "where expires_at is null or expires_at > now() or expires_at < ruled_at "
                     "order by ruled_at desc, app_name limit %zu",
                     limit);
}

/* ---- rows ---- */

static bool name_ok(const char *name, const char *what, struct err *err)
{
    if (name == NULL || name[0] == '\0') {
        err_set(err, -EINVAL, "empty %s", what);
        return false;
    }
    size_t len = strlen(name);
    if (len > BACKEND_NAME_MAX) {
        err_set(err, -EINVAL, "%s of %zu bytes is longer than %d", what, len, BACKEND_NAME_MAX);
        return false;
    }
    return true;
}

/* Sets @err and returns BACKEND_ROW_BAD, so a rejection is one statement. */
static enum backend_row bad(struct err *err, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static enum backend_row bad(struct err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vset(err, -EINVAL, fmt, ap);
    va_end(ap);
    return BACKEND_ROW_BAD;
}

/* Shared by apps and hosts: the expiry from the database's ttl (seconds
 * from its now()) and span (expiry minus creation). */
static enum backend_row parse_expiry(const char *ttl_s, const char *span_s, uint64_t now_ms,
                                     uint64_t *expire_at_ms, struct err *err)
{
    int64_t ttl, span;
    /* timestampdiff is NULL for a zero or otherwise invalid timestamp. */
    if (ttl_s == NULL || span_s == NULL || parse_i64(ttl_s, &ttl) < 0 ||
        parse_i64(span_s, &span) < 0)
        return bad(err, "invalid expires_at");
    if (span < 0)
        return bad(err, "expires_at is %" PRId64 " s before the row was written (negative ttl)",
                   -span);
    /* Seconds are whole on both sides: 0 means the current second, which
     * counts as expired (the original takes it for "never expires"). */
    if (ttl <= 0)
        return BACKEND_ROW_EXPIRED;
    if ((uint64_t)ttl > (UINT64_MAX - now_ms) / 1000)
        return bad(err, "expires_at too far in the future");
    *expire_at_ms = now_ms + (uint64_t)ttl * 1000;
    return BACKEND_ROW_OK;
}

enum backend_row backend_parse_app(const char *const *cells, uint64_t now_ms,
                                   struct backend_app *out, struct err *err)
{
    const char *name = cells[0], *ratio_s = cells[1], *never = cells[2];
    if (!name_ok(name, "app_name", err))
        return BACKEND_ROW_BAD;
    double ratio;
    if (ratio_s == NULL)
        return bad(err, "ratio is NULL");
    if (parse_double(ratio_s, &ratio) < 0)
        return bad(err, "ratio \"%.40s\" is not a number", ratio_s);
    if (ratio > 1)
        return bad(err, "ratio %.40s is outside [0,1]", ratio_s);
    /* A Go node writes -1 when the operator gave no ratio. */
    if (ratio < 0)
        ratio = -1;
    out->key = name;
    out->ratio = ratio;
    out->expire_at_ms = 0;
    if (never != NULL && strcmp(never, "1") == 0)
        return BACKEND_ROW_OK;
    return parse_expiry(cells[3], cells[4], now_ms, &out->expire_at_ms, err);
}

enum backend_row backend_parse_host(const char *const *cells, uint64_t now_ms,
                                    struct backend_host *out, struct err *err)
{
    if (!name_ok(cells[0], "host_name", err))
        return BACKEND_ROW_BAD;
    out->host = cells[0];
    return parse_expiry(cells[1], cells[2], now_ms, &out->expire_at_ms, err);
}

enum backend_row backend_parse_rule(const char *const *cells, uint64_t now_ms,
                                    struct backend_rule *out, struct app_rule *rule,
                                    struct err *err)
{
    const char *name = cells[0], *text = cells[1], *never = cells[2];
    if (!name_ok(name, "app_name", err))
        return BACKEND_ROW_BAD;
    if (text == NULL)
        return bad(err, "rule is NULL");
    if (app_rule_parse(text, strlen(text), rule, err) < 0)
        return BACKEND_ROW_BAD;
    out->key = name;
    out->expire_at_ms = 0;
    if (never != NULL && strcmp(never, "1") == 0)
        return BACKEND_ROW_OK;
    return parse_expiry(cells[3], cells[4], now_ms, &out->expire_at_ms, err);
}

bool backend_schema_has_rules(const char *const *cells, size_t nrows)
{
    for (size_t r = 0; r < nrows; r++) {
        const char *table = cells[r * BACKEND_SCHEMA_COLUMNS];
        if (table != NULL && strcasecmp(table, BACKEND_RULES_TABLE) == 0)
            return true;
    }
    return false;
}

void backend_schema_check(const char *const *cells, size_t nrows, char *missing,
                          size_t missing_size, bool *apps_expiry_nullable)
{
    bool seen[BACKEND_TABLES_COUNT] = {false};
    *apps_expiry_nullable = false;
    for (size_t r = 0; r < nrows; r++) {
        const char *const *row = cells + r * BACKEND_SCHEMA_COLUMNS;
        const char *table = row[0], *column = row[1], *nullable = row[2];
        if (table == NULL || column == NULL)
            continue;
        for (size_t i = 0; i < BACKEND_TABLES_COUNT; i++)
            if (strcasecmp(table, backend_tables[i]) == 0)
                seen[i] = true;
        if (strcasecmp(table, "throttled_apps") == 0 && strcasecmp(column, "expires_at") == 0)
            *apps_expiry_nullable = nullable != NULL && strcasecmp(nullable, "YES") == 0;
    }
    size_t len = 0;
    missing[0] = '\0';
    for (size_t i = 0; i < BACKEND_TABLES_COUNT; i++) {
        if (seen[i])
            continue;
        int n = snprintf(missing + len, missing_size - len, "%s%s", len ? ", " : "",
                         backend_tables[i]);
        if (n < 0 || (size_t)n >= missing_size - len)
            break;
        len += (size_t)n;
    }
}

const char *backend_charset_of(const char *collation, char *buf, size_t size)
{
    if (collation == NULL || collation[0] == '\0') {
        snprintf(buf, size, "utf8mb4");
        return buf;
    }
    const char *us = strchr(collation, '_');
    size_t n = us ? (size_t)(us - collation) : strlen(collation);
    snprintf(buf, size, "%.*s", (int)n, collation);
    return buf;
}

char *backend_sql_audit_insert(const struct audit_record *v, size_t n, const char *service_id_sql)
{
    struct strbuf b = {0};
    strbuf_adds(&b, "insert into audit_log (at_ms, service_id, who, peer, forwarded, what, params, "
                    "status, message) values ");
    for (size_t i = 0; i < n; i++) {
        const struct audit_record *r = &v[i];
        const char *texts[] = {r->who, r->peer, r->forwarded, r->what, r->params};
        strbuf_addf(&b, "%s(%" PRIu64 ", %s", i > 0 ? ", " : "", r->at_ms, service_id_sql);
        for (size_t j = 0; j < sizeof(texts) / sizeof(texts[0]); j++) {
            char *h = hex(texts[j]);
            strbuf_addf(&b, ", %s", h);
            free(h);
        }
        char *m = hex(r->message);
        strbuf_addf(&b, ", %d, %s)", r->status < 0 ? 0 : r->status, m);
        free(m);
    }
    return strbuf_take(&b);
}

char *backend_sql_audit_select(uint64_t after_id, size_t limit)
{
    if (after_id == 0)
        return xasprintf("select * from (select id, at_ms, status, who, peer, forwarded, what, "
                         "params, message from audit_log order by id desc limit %zu) t order by id",
                         limit);
    return xasprintf("select id, at_ms, status, who, peer, forwarded, what, params, message from "
                     "audit_log where id > %" PRIu64 " order by id limit %zu",
                     after_id, limit);
}

char *backend_sql_audit_prune(int which, int64_t max_days, int64_t max_rows, size_t batch)
{
    if (which == 0)
        return xasprintf("delete from audit_log where at_ms < unix_timestamp(now(3)) * 1000 - "
                         "%" PRId64 " limit %zu",
                         max_days * 86400000, batch);
    /* MariaDB reads the table it deletes from only through a derived table. */
    return xasprintf("delete from audit_log where id <= (select m from (select max(id) - %" PRId64
                     " as m from audit_log) t) limit %zu",
                     max_rows, batch);
}

/* Copies text cell @s into @dst (@size bytes); false when NULL or too long. */
static bool audit_cell(const char *s, char *dst, size_t size)
{
    if (s == NULL || strlen(s) >= size)
        return false;
    memcpy(dst, s, strlen(s) + 1);
    return true;
}

uint64_t backend_parse_audit(const char *const *cells, struct audit_record *r)
{
    memset(r, 0, sizeof(*r));
    int64_t id = 0, at = 0, status = 0;
    if (cells[0] == NULL || cells[1] == NULL || cells[2] == NULL || parse_i64(cells[0], &id) < 0 ||
        parse_i64(cells[1], &at) < 0 || parse_i64(cells[2], &status) < 0 || id <= 0 || at < 0 ||
        status < 0 || status > 999)
        return 0;
    r->at_ms = (uint64_t)at;
    r->status = (int)status;
    if (!audit_cell(cells[3], r->who, sizeof(r->who)) ||
        !audit_cell(cells[4], r->peer, sizeof(r->peer)) ||
        !audit_cell(cells[5], r->forwarded, sizeof(r->forwarded)) ||
        !audit_cell(cells[6], r->what, sizeof(r->what)) ||
        !audit_cell(cells[7], r->params, sizeof(r->params)) ||
        !audit_cell(cells[8], r->message, sizeof(r->message)))
        return 0;
    return (uint64_t)id;
}
