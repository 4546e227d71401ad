/* SPDX-License-Identifier: MIT */
/* Unit tests for leader/backend_sql: the election statements keep the
 * original's semantics, user text reaches SQL only as hex literals, hostile
 * backend rows are classified (not loaded), an expiry in the current second
 * counts as expired, and the shipped sql/backend-schema.sql matches what
 * --init-backend runs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/xalloc.h"
#include "leader/backend_sql.h"
#include "snapshot/app_rule.h"

#define T0 1700000000000ull

/* Domain "dc1:prod", ShareDomain "prod", service id "host-a:8087", expiry
 * 5 s; made by setup_ids() for the whole group. */
static struct backend_ids ids;

static int setup_ids(void **state)
{
    (void)state;
    backend_ids_init(&ids, "dc1:prod", "prod", "host-a:8087", 5);
    return 0;
}

static int teardown_ids(void **state)
{
    (void)state;
    backend_ids_deinit(&ids);
    return 0;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("expected to find\n  %s\nin\n  %s", needle, haystack);
}

static void test_attempt_leadership(void **state)
{
    (void)state;
    char *sql = backend_sql_attempt_leadership(&ids);
    /* "dc1:prod", "prod", "host-a:8087" as hex literals. */
    assert_contains(sql,
                    "values (X'6463313A70726F64', X'70726F64', X'686F73742D613A38303837', now())");
    assert_contains(sql, "insert ignore into service_election");
    /* Takeover first, then the refresh that depends on the new owner. */
    const char *takeover =
            strstr(sql, "service_id = if(last_seen_active < now() - interval 5 second, "
                        "values(service_id), service_id)");
    const char *share = strstr(sql, "share_domain = if(service_id = values(service_id), "
                                    "values(share_domain), share_domain)");
    const char *seen = strstr(sql, "last_seen_active = if(service_id = values(service_id), "
                                   "values(last_seen_active), last_seen_active)");
    assert_non_null(takeover);
    assert_non_null(share);
    assert_non_null(seen);
    assert_true(takeover < share && share < seen);
    free(sql);
}

static void test_read_and_health(void **state)
{
    (void)state;
    char *sql = backend_sql_read_leadership(&ids);
    assert_contains(sql, "ifnull(max(service_id) = X'686F73742D613A38303837', 0)");
    assert_contains(sql, "interval 6 second");
    assert_contains(sql, "where domain = X'6463313A70726F64'");
    free(sql);
    sql = backend_sql_register_health(&ids);
    assert_contains(sql,
                    "insert ignore into service_health (service_id, domain, share_domain, "
                    "last_seen_active) values (X'686F73742D613A38303837', X'6463313A70726F64', "
                    "X'70726F64', now())");
    free(sql);
    sql = backend_sql_share_domain_services(&ids);
    assert_contains(sql, "share_domain = X'70726F64'");
    assert_contains(sql, "service_id != X'686F73742D613A38303837'");
    free(sql);
    sql = backend_sql_release(&ids);
    assert_contains(
            sql, "where domain = X'6463313A70726F64' and service_id = X'686F73742D613A38303837'");
    free(sql);
    struct backend_ids none;
    backend_ids_init(&none, "dc1:prod", "", "host-a:8087", 5);
    sql = backend_sql_attempt_leadership(&none);
    assert_contains(sql, "X'6463313A70726F64', '', X'");
    free(sql);
    backend_ids_deinit(&none);
}

/* The whole text of the statements built from our ids, so that a change in
 * how they are put together cannot change what the backend runs. */
static void test_statements_exact(void **state)
{
    (void)state;
    static const struct {
        char *(*build)(const struct backend_ids *ids);
        const char *want;
    } cases[] = {
            {backend_sql_attempt_leadership,
             "insert ignore into service_election (domain, share_domain, service_id, "
             "last_seen_active) values (X'6463313A70726F64', X'70726F64', "
             "X'686F73742D613A38303837', now()) on duplicate key update service_id = "
             "if(last_seen_active < now() - interval 5 second, values(service_id), service_id), "
             "share_domain = if(service_id = values(service_id), values(share_domain), "
             "share_domain), last_seen_active = if(service_id = values(service_id), "
             "values(last_seen_active), last_seen_active)"},
            {backend_sql_read_leadership,
             "select ifnull(max(service_id) = X'686F73742D613A38303837', 0) as is_leader, "
             "ifnull(max(service_id), '') as service_id, timestampdiff(microsecond, now(6), "
             "max(last_seen_active) + interval 6 second) as takeover_in_us from "
             "service_election where domain = X'6463313A70726F64'"},
            {backend_sql_register_health,
             "insert ignore into service_health (service_id, domain, share_domain, "
             "last_seen_active) values (X'686F73742D613A38303837', X'6463313A70726F64', "
             "X'70726F64', now()) on duplicate key update domain = values(domain), "
             "share_domain = values(share_domain), last_seen_active = values(last_seen_active)"},
            {backend_sql_healthy_domain_services,
             "select service_id from service_health where domain = X'6463313A70726F64' and "
             "last_seen_active >= now() - interval 5 second order by service_id"},
            {backend_sql_share_domain_services,
             "select domain, service_id from service_election where share_domain = X'70726F64' "
             "and last_seen_active >= now() - interval 5 second and service_id != "
             "X'686F73742D613A38303837' order by domain"},
            {backend_sql_release,
             "update service_election set last_seen_active = now() - interval 1 day where "
             "domain = X'6463313A70726F64' and service_id = X'686F73742D613A38303837'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *sql = cases[i].build(&ids);
        assert_string_equal(sql, cases[i].want);
        free(sql);
    }
    char *sql = backend_sql_schema_columns();
    assert_string_equal(sql, "select table_name, column_name, is_nullable from "
                             "information_schema.columns where table_schema = database() and "
                             "table_name in ('service_election', 'service_health', "
                             "'throttled_apps', 'skipped_hosts', 'app_rules')");
    free(sql);
    sql = backend_sql_read_app("a");
    assert_string_equal(sql, "select app_name, ratio, expires_at is null, timestampdiff(second, "
                             "now(), expires_at), timestampdiff(second, throttled_at, expires_at) "
                             "from throttled_apps where app_name = X'61'");
    free(sql);
}

/* Nothing an operator types reaches SQL as text. */
static void test_hostile_names_are_hex(void **state)
{
    (void)state;
    const char *evil = "x'); drop table throttled_apps; -- \\ \"";
    char *v[] = {
            backend_sql_throttle_app(evil, false, 0, false, 0),
            backend_sql_read_app(evil),
            backend_sql_unthrottle_app(evil),
            backend_sql_skip_host(evil, 60),
            backend_sql_recover_host(evil),
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        assert_null(strstr(v[i], "drop"));
        assert_null(strstr(v[i], "x')"));
        assert_contains(v[i], "X'782729");
        free(v[i]);
    }
}

static void test_throttle_app_variants(void **state)
{
    (void)state;
    char *sql = backend_sql_throttle_app("gh-ost", true, 30, true, 0.25);
    assert_contains(sql, "values (X'67682D6F7374', now(), now() + interval 30 minute, 0.25)");
    assert_contains(
            sql,
            "ratio = if((expires_at is null or expires_at > now()), values(ratio), values(ratio))");
    assert_contains(sql, "expires_at = if((expires_at is null or expires_at > now()), "
                         "values(expires_at), values(expires_at))");
    /* expires_at is assigned last, so the other conditions see the old one. */
    assert_true(strstr(sql, "ratio = if") < strstr(sql, "expires_at = if"));
    assert_true(strstr(sql, "throttled_at = if") < strstr(sql, "expires_at = if"));
    free(sql);

    /* No TTL, no ratio: a new row never expires with ratio 1; a live row
     * keeps both. */
    sql = backend_sql_throttle_app("a", false, 0, false, 0);
    assert_contains(sql, "values (X'61', now(), NULL, 1)");
    assert_contains(sql, "if(ratio >= 0 and ratio <= 1, ratio, 1)");
    assert_contains(sql, "now()), expires_at, values(expires_at))");
    free(sql);

    /* Ratio only: live row keeps its expiry (docs/semantics.md#app-throttles). */
    sql = backend_sql_throttle_app("a", false, 0, true, 0.5);
    assert_contains(sql, "values (X'61', now(), NULL, 0.5)");
    assert_contains(sql, "now()), values(ratio), values(ratio))");
    assert_contains(sql, "now()), expires_at, values(expires_at))");
    free(sql);

    /* TTL 0 given: never expires, also for a live row. */
    sql = backend_sql_throttle_app("a", true, 0, false, 0);
    assert_contains(sql, "values (X'61', now(), NULL, 1)");
    assert_contains(sql, "now()), values(expires_at), values(expires_at))");
    free(sql);

    sql = backend_sql_skip_host("db-7", 60);
    assert_contains(sql, "replace into skipped_hosts (host_name, skipped_at, expires_at) values "
                         "(X'64622D37', now(), now() + interval 60 minute)");
    free(sql);
    sql = backend_sql_unthrottle_app("a");
    assert_contains(sql, "update throttled_apps set expires_at = now() where app_name = X'61'");
    free(sql);
    sql = backend_sql_recover_host("h");
    assert_contains(sql, "update skipped_hosts set expires_at = now() where host_name = X'68'");
    free(sql);
}

static enum backend_row app(const char *name, const char *ratio, const char *never, const char *ttl,
                            const char *span, struct backend_app *out, struct err *err)
{
    const char *cells[5] = {name, ratio, never, ttl, span};
    memset(out, 0, sizeof(*out));
    err->msg[0] = '\0';
    return backend_parse_app(cells, T0, out, err);
}

/* The loads are bounded and deterministic: at most the limit asked for, the
 * most recently written first, ties broken by the primary key; only columns
 * of the original's schema are read, and plainly expired rows stay out. */
static void test_load_statements_are_bounded(void **state)
{
    (void)state;
    char *sql = backend_sql_load_apps(100001);
    assert_contains(sql, "select app_name, ratio, expires_at is null, "
                         "timestampdiff(second, now(), expires_at), "
                         "timestampdiff(second, throttled_at, expires_at) from throttled_apps");
    assert_contains(sql,
                    "where expires_at is null or expires_at > now() or expires_at < throttled_at");
    assert_contains(sql, " order by throttled_at desc, app_name limit 100001");
    free(sql);
    sql = backend_sql_load_hosts(7);
    assert_contains(sql, "from skipped_hosts where expires_at > now() or expires_at < skipped_at");
    assert_contains(sql, " order by skipped_at desc, host_name limit 7");
    free(sql);
}

static void test_parse_app_rows(void **state)
{
    (void)state;
    struct backend_app a;
    struct err err;
    assert_int_equal(app("gh-ost", "0.5", "0", "1800", "1800", &a, &err), BACKEND_ROW_OK);
    assert_string_equal(a.key, "gh-ost");
    assert_true(a.ratio == 0.5);
    assert_int_equal(a.expire_at_ms, T0 + 1800ull * 1000);

    assert_int_equal(app("perm", "1", "1", NULL, NULL, &a, &err), BACKEND_ROW_OK);
    assert_int_equal(a.expire_at_ms, 0);

    /* An expiry in the current second is expired, not permanent. */
    assert_int_equal(app("now", "1", "0", "0", "60", &a, &err), BACKEND_ROW_EXPIRED);
    assert_int_equal(app("past", "1", "0", "-30", "60", &a, &err), BACKEND_ROW_EXPIRED);

    /* A Go node's "no ratio given". */
    assert_int_equal(app("go", "-1", "1", NULL, NULL, &a, &err), BACKEND_ROW_OK);
    assert_true(a.ratio == -1);
}

static void test_parse_app_rejects(void **state)
{
    (void)state;
    struct backend_app a;
    struct err err;
    assert_int_equal(app("n", NULL, "1", NULL, NULL, &a, &err), BACKEND_ROW_BAD);
    assert_string_equal(err.msg, "ratio is NULL");
    assert_int_equal(app("n", "7", "1", NULL, NULL, &a, &err), BACKEND_ROW_BAD);
    assert_string_equal(err.msg, "ratio 7 is outside [0,1]");
    assert_int_equal(app("n", "abc", "1", NULL, NULL, &a, &err), BACKEND_ROW_BAD);
    assert_int_equal(app("n", "nan", "1", NULL, NULL, &a, &err), BACKEND_ROW_BAD);
    assert_int_equal(app("n", "1", "0", "-600", "-600", &a, &err), BACKEND_ROW_BAD);
    assert_contains(err.msg, "negative ttl");
    /* timestampdiff is NULL for a zero date. */
    assert_int_equal(app("n", "1", "0", NULL, NULL, &a, &err), BACKEND_ROW_BAD);
    assert_string_equal(err.msg, "invalid expires_at");
    assert_int_equal(app("", "1", "1", NULL, NULL, &a, &err), BACKEND_ROW_BAD);
    assert_int_equal(app(NULL, "1", "1", NULL, NULL, &a, &err), BACKEND_ROW_BAD);
    char *big = xmalloc(301);
    memset(big, 'x', 300);
    big[300] = '\0';
    assert_int_equal(app(big, "1", "1", NULL, NULL, &a, &err), BACKEND_ROW_BAD);
    assert_contains(err.msg, "300 bytes");
    big[128] = '\0';
    assert_int_equal(app(big, "1", "1", NULL, NULL, &a, &err), BACKEND_ROW_OK);
    free(big);
}

static void test_parse_host_rows(void **state)
{
    (void)state;
    struct backend_host h;
    struct err err = {0};
    const char *ok[3] = {"db-7", "3600", "3600"};
    assert_int_equal(backend_parse_host(ok, T0, &h, &err), BACKEND_ROW_OK);
    assert_string_equal(h.host, "db-7");
    assert_int_equal(h.expire_at_ms, T0 + 3600ull * 1000);
    const char *now[3] = {"db-7", "0", "10"};
    assert_int_equal(backend_parse_host(now, T0, &h, &err), BACKEND_ROW_EXPIRED);
    const char *neg[3] = {"db-7", "-3600", "-3600"};
    assert_int_equal(backend_parse_host(neg, T0, &h, &err), BACKEND_ROW_BAD);
    const char *noname[3] = {NULL, "10", "10"};
    assert_int_equal(backend_parse_host(noname, T0, &h, &err), BACKEND_ROW_BAD);
}

static void test_schema_check(void **state)
{
    (void)state;
    char missing[BACKEND_MISSING_TABLES_SIZE];
    bool nullable = true;
    const char *none[1] = {NULL};
    backend_schema_check(none, 0, missing, sizeof(missing), &nullable);
    assert_string_equal(missing, "service_election, service_health, throttled_apps, skipped_hosts");
    assert_false(nullable);
    const char *some[] = {
            "service_election", "domain", "NO",  "THROTTLED_APPS", "expires_at", "YES",
            "throttled_apps",   "ratio",  "YES",
    };
    backend_schema_check(some, 3, missing, sizeof(missing), &nullable);
    assert_string_equal(missing, "service_health, skipped_hosts");
    assert_true(nullable);
    const char *notnull[] = {"throttled_apps", "expires_at", "NO"};
    backend_schema_check(notnull, 1, missing, sizeof(missing), &nullable);
    assert_false(nullable);
}

/* The fix logged for a NOT NULL throttled_apps.expires_at gives the column
 * the definition the shipped schema has. */
static void test_fix_matches_schema(void **state)
{
    (void)state;
    const char *def = "expires_at timestamp NULL DEFAULT NULL";
    assert_contains(backend_schema_ddl(2), "CREATE TABLE IF NOT EXISTS throttled_apps");
    assert_contains(backend_schema_ddl(2), def);
    assert_contains(BACKEND_FIX_APPS_EXPIRY, "ALTER TABLE throttled_apps MODIFY ");
    assert_contains(BACKEND_FIX_APPS_EXPIRY, def);
}

static void test_charset_of(void **state)
{
    (void)state;
    char buf[BACKEND_CHARSET_SIZE];
    assert_string_equal(backend_charset_of(NULL, buf, sizeof(buf)), "utf8mb4");
    assert_string_equal(backend_charset_of("", buf, sizeof(buf)), "utf8mb4");
    assert_string_equal(backend_charset_of("utf8mb4_unicode_ci", buf, sizeof(buf)), "utf8mb4");
    assert_string_equal(backend_charset_of("latin1_swedish_ci", buf, sizeof(buf)), "latin1");
}

/* sql/backend-schema.sql is exactly the four statements, after comments. */
static void test_schema_file_matches(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof(path), "%s", __FILE__);
    char *slash = strrchr(path, '/');
    assert_non_null(slash);
    snprintf(slash, sizeof(path) - (size_t)(slash - path), "/../../sql/backend-schema.sql");
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *text = xcalloc(1, 65536);
    size_t len = 0;
    char line[1024];
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "--", 2) == 0)
            continue;
        size_t n = strlen(line);
        assert_true(len + n < 65536);
        memcpy(text + len, line, n + 1);
        len += n;
    }
    fclose(f);
    char *want = xcalloc(1, 65536);
    size_t wl = 0;
    for (size_t i = 0; i < BACKEND_TABLES_COUNT; i++)
        wl += (size_t)snprintf(want + wl, 65536 - wl, "\n%s;\n", backend_schema_ddl(i));
    wl += (size_t)snprintf(want + wl, 65536 - wl, "\n%s;\n", backend_rules_ddl());
    wl += (size_t)snprintf(want + wl, 65536 - wl, "\n%s;\n", backend_audit_ddl());
    assert_string_equal(text, want);
    assert_null(backend_schema_ddl(BACKEND_TABLES_COUNT));
    free(text);
    free(want);
}

/* Per-app rules: statements (hex literals only), the bounded load, rows as
 * a hostile writer may leave them, and the optional table in the schema. */
static void test_rules(void **state)
{
    (void)state;
    char *sql = backend_sql_set_rule("a'b", "{\"Exempt\":true}", 30);
    assert_contains(sql, "replace into app_rules (app_name, rule, ruled_at, expires_at) values "
                         "(X'612762', X'7B22457865");
    assert_contains(sql, "now(), now() + interval 30 minute)");
    assert_null(strstr(sql, "Exempt"));
    free(sql);
    sql = backend_sql_set_rule("a", "{\"Exempt\":true}", 0);
    assert_contains(sql, "now(), NULL)");
    free(sql);
    sql = backend_sql_remove_rule("a");
    assert_string_equal(sql, "delete from app_rules where app_name = X'61'");
    free(sql);
    sql = backend_sql_load_rules(1001);
    assert_contains(sql, "from app_rules where expires_at is null or expires_at > now() or "
                         "expires_at < ruled_at order by ruled_at desc, app_name limit 1001");
    free(sql);

    struct backend_rule r;
    struct app_rule rule;
    struct err err = {0};
    const char *ok[5] = {"gh-ost", "{\"Thresholds\":{\"default\":2}}", "1", NULL, NULL};
    assert_int_equal(backend_parse_rule(ok, T0, &r, &rule, &err), BACKEND_ROW_OK);
    assert_string_equal(r.key, "gh-ost");
    assert_true(r.expire_at_ms == 0 && rule.nlimits == 1 && rule.limits[0].value == 2);
    const char *ttl[5] = {"x", "{\"Exempt\":true}", "0", "60", "120"};
    assert_int_equal(backend_parse_rule(ttl, T0, &r, &rule, &err), BACKEND_ROW_OK);
    assert_true(r.expire_at_ms == T0 + 60000 && rule.exempt);
    const char *gone[5] = {"x", "{\"Exempt\":true}", "0", "0", "120"};
    assert_int_equal(backend_parse_rule(gone, T0, &r, &rule, &err), BACKEND_ROW_EXPIRED);
    const char *bad[][5] = {
            {"", "{\"Exempt\":true}", "1", NULL, NULL},
            {"x", NULL, "1", NULL, NULL},
            {"x", "not json", "1", NULL, NULL},
            {"x", "{\"Thresholds\":{\"default\":-1}}", "1", NULL, NULL},
            {"x", "{}", "1", NULL, NULL},
            {"x", "{\"Exempt\":true}", "0", "60", "-5"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err.msg[0] = '\0';
        if (backend_parse_rule(bad[i], T0, &r, &rule, &err) != BACKEND_ROW_BAD ||
            err.msg[0] == '\0')
            fail_msg("row %zu was not rejected", i);
    }

    const char *with[] = {"throttled_apps", "ratio", "YES", "APP_RULES", "rule", "NO"};
    assert_true(backend_schema_has_rules(with, 2));
    assert_false(backend_schema_has_rules(with, 1));
    sql = backend_sql_schema_columns();
    assert_contains(sql, "'skipped_hosts', 'app_rules')");
    free(sql);
    assert_contains(backend_rules_ddl(), "CREATE TABLE IF NOT EXISTS app_rules");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_attempt_leadership),
            cmocka_unit_test(test_read_and_health),
            cmocka_unit_test(test_statements_exact),
            cmocka_unit_test(test_hostile_names_are_hex),
            cmocka_unit_test(test_throttle_app_variants),
            cmocka_unit_test(test_load_statements_are_bounded),
            cmocka_unit_test(test_parse_app_rows),
            cmocka_unit_test(test_parse_app_rejects),
            cmocka_unit_test(test_parse_host_rows),
            cmocka_unit_test(test_schema_check),
            cmocka_unit_test(test_fix_matches_schema),
            cmocka_unit_test(test_charset_of),
            cmocka_unit_test(test_schema_file_matches),
            cmocka_unit_test(test_rules),
    };
    return cmocka_run_group_tests(tests, setup_ids, teardown_ids);
}
