/* SPDX-License-Identifier: MIT */
/* The bound behind MYCONN_COSTACK_SIZE: runs every shape of statement the
 * daemon sends through mysql/myasync against the live server of
 * FRENO_TEST_MYSQL_PORT, with each connector co-routine stack on its own
 * mapping with a PROT_NONE guard page below it (an overflow is a SIGSEGV,
 * not a silent corruption) and filled with a canary, and fails when the
 * deepest use passes MYCONN_COSTACK_BOUND (a quarter of the stack).
 *
 * The stacks are found by their size: the connector malloc()s exactly
 * MYCONN_COSTACK_SIZE bytes per connection, so this program replaces
 * malloc(), free() and realloc() and serves that size itself. It is built
 * without sanitizers (their allocator would not let it), from the myasync
 * sources rather than the instrumented library.
 *
 * The shapes: connecting (native password; ed25519, a client plugin the
 * connector loads with dlopen(), when the topology's freno_test_ed user
 * exists), SET NAMES ... COLLATE, every metric query kind (SELECT, SHOW
 * GLOBAL STATUS, SHOW SLAVE/REPLICA STATUS), the leader's writes and reads,
 * wide and long results up to the row limit, server errors, a failed login,
 * a query timeout followed by KILL QUERY on the next connection, and
 * connections the server killed while idle and while running. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <uv.h>

#include "loop/loop.h"
#include "mysql/myasync.h"
#include "mysql/myasync_impl.h"

/* ---- the allocator: guarded, canary-filled stacks ---- */

void *__libc_malloc(size_t n);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);
void *malloc(size_t n);
void *realloc(void *p, size_t n);
void free(void *p);

#define CANARY    0xA5
#define PAGE      4096u
#define MAXSTACKS 64

static unsigned char *stacks[MAXSTACKS];
static size_t deepest; /* over every stack seen, live or freed */
static int nstacks_seen;

static size_t stack_depth(const unsigned char *s)
{
    size_t i = 0;
    while (i < MYCONN_COSTACK_SIZE && s[i] == CANARY)
        i++;
    return MYCONN_COSTACK_SIZE - i;
}

static int stack_index(const void *p)
{
    for (int i = 0; i < MAXSTACKS; i++)
        if (p != NULL && stacks[i] == p)
            return i;
    return -1;
}

static void note_depth(const unsigned char *s)
{
    size_t d = stack_depth(s);
    if (d > deepest)
        deepest = d;
}

void *malloc(size_t n)
{
    if (n != MYCONN_COSTACK_SIZE)
        return __libc_malloc(n);
    int slot = stack_index(NULL);
    for (int i = 0; i < MAXSTACKS && slot < 0; i++)
        if (stacks[i] == NULL)
            slot = i;
    if (slot < 0)
        return __libc_malloc(n);
    unsigned char *m =
            mmap(NULL, n + PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    /* The stack grows down: the guard is the page below its lowest byte. */
    if (mprotect(m, PAGE, PROT_NONE) != 0)
        abort();
    memset(m + PAGE, CANARY, n);
    stacks[slot] = m + PAGE;
    nstacks_seen++;
    return m + PAGE;
}

void free(void *p)
{
    int i = stack_index(p);
    if (i < 0) {
        __libc_free(p);
        return;
    }
    note_depth(stacks[i]);
    munmap(stacks[i] - PAGE, MYCONN_COSTACK_SIZE + PAGE);
    stacks[i] = NULL;
}

void *realloc(void *p, size_t n)
{
    int i = stack_index(p);
    if (i < 0)
        return __libc_realloc(p, n);
    void *q = __libc_malloc(n);
    if (q != NULL)
        memcpy(q, p, n < MYCONN_COSTACK_SIZE ? n : MYCONN_COSTACK_SIZE);
    free(p);
    return q;
}

static size_t deepest_now(void)
{
    for (int i = 0; i < MAXSTACKS; i++)
        if (stacks[i] != NULL)
            note_depth(stacks[i]);
    return deepest;
}

/* ---- running statements ---- */

struct outcome {
    bool done;
    enum myconn_status status;
    char msg[512];
    char cell0[64];
};

static uv_loop_t *uv;
static struct loop *lp;
static int failures;

static void on_done(struct myconn *c, enum myconn_status status, const struct myresult *res,
                    const char *errmsg, void *arg)
{
    (void)c;
    struct outcome *o = arg;
    o->done = true;
    o->status = status;
    snprintf(o->msg, sizeof(o->msg), "%s", errmsg);
    if (res != NULL && res->nrows > 0 && res->ncols > 0 && res->cells[0] != NULL)
        snprintf(o->cell0, sizeof(o->cell0), "%s", res->cells[0]);
}

static struct outcome run(struct myconn *c, const char *sql, uint32_t timeout_ms)
{
    struct outcome o = {0};
    struct myquery_limits lim = {.timeout_ms = timeout_ms};
    if (myconn_query_limited(c, sql, &lim, on_done, &o) != 0) {
        fprintf(stderr, "costack: %s: busy\n", sql);
        exit(1);
    }
    while (!o.done)
        uv_run(uv, UV_RUN_ONCE);
    return o;
}

/* Runs @sql and reports the deepest use so far; @want is the expected
 * status. */
static struct outcome shape(struct myconn *c, const char *what, const char *sql,
                            enum myconn_status want, uint32_t timeout_ms)
{
    struct outcome o = run(c, sql, timeout_ms);
    size_t d = deepest_now();
    printf("  %-44s %-8s deepest so far %5zu bytes\n", what, o.status == MYCONN_OK ? "ok" : "error",
           d);
    if (o.status != want) {
        fprintf(stderr, "costack: %s: status %d, want %d: %s\n", what, o.status, want, o.msg);
        failures++;
    }
    return o;
}

static struct myconn *conn(const char *host, uint16_t port, const char *user, const char *password,
                           const char *collation)
{
    struct myconn_params p = {
            .host = host,
            .port = port,
            .user = user,
            .password = password,
            .database = "information_schema",
            .collation = collation,
            .connect_timeout_ms = 3000,
            .query_timeout_ms = 5000,
    };
    return myconn_new(lp, &p);
}

int main(void)
{
    const char *port_s = getenv("FRENO_TEST_MYSQL_PORT");
    if (port_s == NULL || *port_s == '\0') {
        const char *opt = getenv("FRENO_TEST_MYSQL_OPTIONAL");
        fprintf(stderr, "costack: FRENO_TEST_MYSQL_PORT is not set (a live server is needed)\n");
        return opt != NULL && opt[0] == '1' ? 77 : 1;
    }
    uint16_t port = (uint16_t)strtoul(port_s, NULL, 10);
    const char *user = getenv("FRENO_TEST_MYSQL_USER") ? getenv("FRENO_TEST_MYSQL_USER") : "root";
    const char *password =
            getenv("FRENO_TEST_MYSQL_PASSWORD") ? getenv("FRENO_TEST_MYSQL_PASSWORD") : "";

    /* Each line out before a guard page ends the run. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (myasync_library_init() < 0)
        return 1;
    lp = loop_new();
    uv = loop_uv(lp);
    printf("costack: stack %zu bytes, bound %zu bytes\n", MYCONN_COSTACK_SIZE,
           MYCONN_COSTACK_BOUND);

    struct myconn *c = conn("127.0.0.1", port, user, password, "utf8mb4_unicode_ci");
    struct myconn *admin = conn("127.0.0.1", port, user, password, NULL);
    shape(c, "connect, SET NAMES ... COLLATE, SELECT", "select 1", MYCONN_OK, 0);
    shape(c, "lag query", "select unix_timestamp(now(6)) - unix_timestamp(now()) as lag_check",
          MYCONN_OK, 0);
    shape(c, "SHOW GLOBAL STATUS", "show global status like 'threads_running'", MYCONN_OK, 0);
    shape(c, "SHOW SLAVE STATUS", "show slave status", MYCONN_OK, 0);
    shape(c, "SHOW REPLICA STATUS", "show replica status", MYCONN_OK, 0);
    shape(c, "SHOW GLOBAL VARIABLES (wide, long)", "show global variables", MYCONN_OK, 0);
    shape(c, "wide rows", "select * from information_schema.columns limit 500", MYCONN_OK, 0);
    shape(c, "row limit", "select seq from mysql.seq_1_to_20000", MYCONN_ERR_QUERY, 0);
    shape(c, "reconnect after it, a 70 KB cell", "select repeat('x', 70000)", MYCONN_OK, 0);
    shape(c, "DDL", "create temporary table meta.costack (k varchar(64) primary key, v int)",
          MYCONN_OK, 0);
    shape(c, "INSERT IGNORE", "insert ignore into meta.costack values ('a', 1), ('b', 2)",
          MYCONN_OK, 0);
    shape(c, "REPLACE", "replace into meta.costack values ('a', 3)", MYCONN_OK, 0);
    shape(c, "UPDATE", "update meta.costack set v = v + 1", MYCONN_OK, 0);
    shape(c, "INSERT ... ON DUPLICATE KEY UPDATE",
          "insert into meta.costack values ('b', 5) on duplicate key update v = values(v)",
          MYCONN_OK, 0);
    shape(c, "NULL and NOW()", "select null, now(), timestampdiff(second, now(), now())", MYCONN_OK,
          0);
    shape(c, "syntax error", "selec 1", MYCONN_ERR_QUERY, 0);
    shape(c, "unknown table", "select * from nope.nope", MYCONN_ERR_QUERY, 0);

    /* A timeout marks the server thread; the next connection kills it. */
    shape(c, "query timeout", "select sleep(3)", MYCONN_ERR_TIMEOUT, 200);
    shape(c, "reconnect, KILL QUERY, SELECT", "select 2", MYCONN_OK, 0);

    /* The server kills the connection while idle, then while running. */
    struct outcome id = shape(c, "connection id", "select connection_id()", MYCONN_OK, 0);
    char sql[96];
    snprintf(sql, sizeof(sql), "kill %s", id.cell0);
    shape(admin, "KILL (admin connection)", sql, MYCONN_OK, 0);
    uv_sleep(100);
    for (int i = 0; i < 5; i++)
        uv_run(uv, UV_RUN_NOWAIT);
    shape(c, "after the server killed it while idle", "select 3", MYCONN_OK, 0);
    id = shape(c, "connection id", "select connection_id()", MYCONN_OK, 0);
    snprintf(sql, sizeof(sql), "kill %s", id.cell0);
    struct outcome running = {0};
    myconn_query(c, "select sleep(2)", on_done, &running);
    for (int i = 0; i < 3; i++)
        uv_run(uv, UV_RUN_NOWAIT);
    shape(admin, "KILL of a running query's connection", sql, MYCONN_OK, 0);
    while (!running.done)
        uv_run(uv, UV_RUN_ONCE);
    shape(c, "after the server killed it while running", "select 4", MYCONN_OK, 0);
    myconn_free(c);

    struct myconn *bad = conn("127.0.0.1", port, "no_such_user_freno", "wrong", NULL);
    shape(bad, "failed login", "select 1", MYCONN_ERR_CONNECT, 0);
    myconn_free(bad);
    struct myconn *v6 = conn("::1", port, user, password, NULL);
    shape(v6, "IPv6 connect", "select 1", MYCONN_OK, 0);
    myconn_free(v6);

    /* ed25519: the connector dlopen()s client_ed25519.so on the
     * co-routine. scripts/topology.sh creates the user. */
    struct outcome has =
            run(admin, "select count(*) from mysql.user where user = 'freno_test_ed'", 0);
    if (has.status == MYCONN_OK && strcmp(has.cell0, "0") != 0) {
        struct myconn *ed = conn("127.0.0.1", port, "freno_test_ed", "freno_test", NULL);
        shape(ed, "ed25519 login (client plugin)", "select 1", MYCONN_OK, 0);
        myconn_free(ed);
    } else {
        fprintf(stderr,
                "costack: user freno_test_ed is missing (scripts/topology.sh creates it)\n");
        failures++;
    }
    myconn_free(admin);
    for (int i = 0; i < 5; i++)
        uv_run(uv, UV_RUN_NOWAIT);

    size_t d = deepest_now();
    printf("costack: %d stacks, deepest use %zu of %zu bytes (bound %zu)\n", nstacks_seen, d,
           MYCONN_COSTACK_SIZE, MYCONN_COSTACK_BOUND);
    if (nstacks_seen == 0) {
        fprintf(stderr, "costack: no co-routine stack of %zu bytes was allocated\n",
                MYCONN_COSTACK_SIZE);
        failures++;
    }
    if (d > MYCONN_COSTACK_BOUND) {
        fprintf(stderr, "costack: deepest use %zu bytes is past the bound %zu\n", d,
                MYCONN_COSTACK_BOUND);
        failures++;
    }
    loop_free(lp);
    myasync_library_end();
    return failures == 0 ? 0 : 1;
}
