/* SPDX-License-Identifier: MIT */
/* Queries and their results: starts the query in flight, reads the rows of a
 * mysql_use_result() result into one buffer within the query's row and byte
 * limits, and ends the query with its callback. Loop thread. Invariant: a
 * result over a limit is never buffered whole; reading stops and the
 * connection is dropped. */
#include "mysql/myasync_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errmsg.h>

#include "core/xalloc.h"

void myconn_rows_free(struct rowbuf *r)
{
    for (size_t i = 0; i < r->ncols; i++)
        free(r->colnames[i]);
    free(r->colnames);
    free(r->offs);
    free(r->data);
    free(r->cells);
    memset(r, 0, sizeof(*r));
}

/* Appends one row; returns false (with @why set) when the result would grow
 * past @max_rows rows or @max_bytes bytes of cells (each cell counts its
 * length plus one). */
static bool rows_add(struct rowbuf *r, MYSQL_ROW row, const unsigned long *lengths, size_t max_rows,
                     size_t max_bytes, char *why, size_t why_size)
{
    if (r->nrows >= max_rows) {
        snprintf(why, why_size, "more than %zu rows", max_rows);
        return false;
    }
    size_t row_bytes = 0;
    for (size_t i = 0; i < r->ncols; i++)
        if (row[i] != NULL)
            row_bytes += (size_t)lengths[i] + 1;
    if (row_bytes > max_bytes || r->data_len > max_bytes - row_bytes) {
        snprintf(why, why_size, "more than %zu bytes", max_bytes);
        return false;
    }
    if (r->ncells + r->ncols > r->offs_cap) {
        size_t cap = r->offs_cap ? r->offs_cap * 2 : 16;
        while (cap < r->ncells + r->ncols)
            cap *= 2;
        r->offs = xrealloc(r->offs, cap * sizeof(*r->offs));
        r->offs_cap = cap;
    }
    if (r->data_len + row_bytes > r->data_cap) {
        size_t cap = r->data_cap ? r->data_cap * 2 : 256;
        while (cap < r->data_len + row_bytes)
            cap *= 2;
        r->data = xrealloc(r->data, cap);
        r->data_cap = cap;
    }
    for (size_t i = 0; i < r->ncols; i++) {
        if (row[i] == NULL) {
            r->offs[r->ncells++] = CELL_NULL;
            continue;
        }
        memcpy(r->data + r->data_len, row[i], lengths[i]);
        r->data[r->data_len + lengths[i]] = '\0';
        r->offs[r->ncells++] = r->data_len;
        r->data_len += (size_t)lengths[i] + 1;
    }
    r->nrows++;
    return true;
}

static bool same_names(const struct rowbuf *r, const MYSQL_FIELD *fields, unsigned int nfields)
{
    if (r->colnames == NULL || r->ncols != nfields)
        return false;
    for (unsigned int i = 0; i < nfields; i++)
        if (strcmp(r->colnames[i], fields[i].name) != 0)
            return false;
    return true;
}

/* Readies c->rows for a result with @fields, on the kept buffers when
 * there are. */
static void rows_begin(struct myconn *c, const MYSQL_FIELD *fields, unsigned int nfields)
{
    struct rowbuf *r = &c->rows;
    myconn_rows_free(r);
    *r = c->spare;
    memset(&c->spare, 0, sizeof(c->spare));
    if (same_names(r, fields, nfields))
        return;
    for (size_t i = 0; i < r->ncols; i++)
        free(r->colnames[i]);
    free(r->colnames);
    r->ncols = nfields;
    r->colnames = xcalloc(nfields, sizeof(*r->colnames));
    for (unsigned int i = 0; i < nfields; i++)
        r->colnames[i] = xstrdup(fields[i].name);
}

/* Turns the offsets into the pointers the callback sees, once the data
 * buffer no longer moves. */
static void rows_cells(struct rowbuf *r)
{
    if (r->cells == NULL || r->cells_cap < r->ncells) {
        free(r->cells);
        r->cells_cap = r->ncells ? r->ncells : 1;
        r->cells = xcalloc(r->cells_cap, sizeof(*r->cells));
    }
    for (size_t i = 0; i < r->ncells; i++)
        r->cells[i] = r->offs[i] == CELL_NULL ? NULL : r->data + r->offs[i];
}

/* Keeps @r's buffers for the next query when they are small, with its
 * column names (the next result of the same query has the same ones). */
static void rows_keep(struct myconn *c, struct rowbuf *r)
{
    const struct rowbuf *s = &c->spare;
    bool spare_taken =
            s->colnames != NULL || s->offs != NULL || s->data != NULL || s->cells != NULL;
    if (c->freeing || spare_taken || r->offs_cap * sizeof(*r->offs) > MYCONN_KEEP_BYTES ||
        r->data_cap > MYCONN_KEEP_BYTES) {
        myconn_rows_free(r);
        return;
    }
    r->ncells = 0;
    r->data_len = 0;
    r->nrows = 0;
    r->affected_rows = 0;
    c->spare = *r;
    memset(r, 0, sizeof(*r));
}

void myconn_gate_leave(struct myconn *c)
{
    if (c->in_gate) {
        c->in_gate = false;
        loop_gate_leave(c->connect_gate);
    }
}

void myconn_finish(struct myconn *c, enum myconn_status status, const char *msg)
{
    c->deadline_at = 0;
    myconn_gate_leave(c);
    myconn_wait_stop(c);
    struct rowbuf rows = c->rows;
    memset(&c->rows, 0, sizeof(c->rows));
    if (status != MYCONN_OK)
        myconn_rows_free(&rows);
    else
        rows_cells(&rows);
    char errmsg[512];
    snprintf(errmsg, sizeof(errmsg), "%s", msg != NULL ? msg : "");
    myconn_done_fn *cb = c->cb;
    void *arg = c->arg;
    c->cb = NULL;
    c->arg = NULL;
    c->busy = false;
    if (c->sql_cap > MYCONN_KEEP_BYTES) {
        free(c->sql);
        c->sql = NULL;
        c->sql_cap = 0;
    }
    struct myresult res = {
            .nrows = rows.nrows,
            .ncols = rows.ncols,
            .colnames = (const char *const *)rows.colnames,
            .cells = rows.cells,
            .affected_rows = rows.affected_rows,
    };
    if (cb != NULL)
        cb(c, status, status == MYCONN_OK ? &res : NULL, errmsg, arg);
    /* The callback may have freed the connection: then c->freeing is set
     * and c itself stays valid until its timers closed. */
    rows_keep(c, &rows);
}

void myconn_finish_fmt(struct myconn *c, enum myconn_status status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    myconn_finish(c, status, msg);
}

static bool is_client_error(unsigned int code)
{
    return code >= CR_MIN_ERROR && code <= CR_MAX_ERROR;
}

/* Fails the query with the connector's error. A server error leaves the
 * connection usable; a client-side error (lost connection, out of sync)
 * drops it so that the next query reconnects. */
static int fail_query(struct myconn *c)
{
    unsigned int code = mysql_errno(c->mysql);
    c->last_errno = code;
    char msg[512];
    snprintf(msg, sizeof(msg), "query %s: %s [mysql %u]", c->name, mysql_error(c->mysql), code);
    enum myconn_status st = MYCONN_ERR_QUERY;
    if (code == 0 || is_client_error(code)) {
        st = MYCONN_ERR_IO;
        myconn_drop(c, false);
    }
    myconn_finish(c, st, msg);
    return STEP_DONE;
}

/* mysql_real_query() in two halves: sending, then reading the answer once
 * the socket is readable (OP_RESULT_WAIT), so that no read fails with
 * EAGAIN first. */
int myconn_start_query(struct myconn *c)
{
    myconn_deadline_start(c, c->cur_timeout_ms);
    c->op = OP_QUERY;
    return mysql_send_query_start(&c->ret_int, c->mysql, c->sql, (unsigned long)c->sql_len);
}

int myconn_send_done(struct myconn *c)
{
    if (c->ret_int != 0)
        return fail_query(c);
    c->op = OP_RESULT_WAIT;
    return MYSQL_WAIT_READ;
}

int myconn_query_done(struct myconn *c)
{
    if (c->ret_int != 0)
        return fail_query(c);
    unsigned int nfields = mysql_field_count(c->mysql);
    if (nfields == 0) {
        c->rows.affected_rows = mysql_affected_rows(c->mysql);
        if (mysql_more_results(c->mysql))
            myconn_drop(c, false);
        myconn_finish(c, MYCONN_OK, NULL);
        return STEP_DONE;
    }
    c->res = mysql_use_result(c->mysql);
    if (c->res == NULL)
        return fail_query(c);
    const MYSQL_FIELD *fields = mysql_fetch_fields(c->res);
    rows_begin(c, fields, nfields);
    c->op = OP_FETCH;
    return mysql_fetch_row_start(&c->ret_row, c->res);
}

int myconn_fetch_done(struct myconn *c)
{
    if (c->ret_row != NULL) {
        char why[64];
        if (!rows_add(&c->rows, c->ret_row, mysql_fetch_lengths(c->res), c->max_rows, c->max_bytes,
                      why, sizeof(why))) {
            myconn_drop(c, false);
            myconn_finish_fmt(c, MYCONN_ERR_QUERY, "query %s: result too large: %s", c->name, why);
            return STEP_DONE;
        }
        c->op = OP_FETCH;
        return mysql_fetch_row_start(&c->ret_row, c->res);
    }
    /* The result is over, by its end or by an error (which detaches it from
     * the connection): freeing it does no I/O now. */
    mysql_free_result(c->res);
    c->res = NULL;
    if (mysql_errno(c->mysql) != 0)
        return fail_query(c);
    /* A CALL leaves more results behind; dropping the connection is simpler
     * than reading them, and CALL is not what probes run. */
    if (mysql_more_results(c->mysql))
        myconn_drop(c, false);
    myconn_finish(c, MYCONN_OK, NULL);
    return STEP_DONE;
}
