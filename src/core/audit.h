/* SPDX-License-Identifier: MIT */
/* One entry of the audit trail of control requests (docs/api.md#audit-trail):
 * who asked (token name, peer, X-Forwarded-For), what, with which
 * parameters, and the outcome. Every text field holds clean text: what the
 * client sent, cut to the field's size, with quotes, backslashes, control
 * characters (C0, DEL, C1, U+2028/9) and bytes that are not UTF-8 written
 * as JSON escapes; so a field can be put between double quotes in a log
 * line, a JSON document or a SQL string literal (after the usual SQL
 * escaping) as it is. Pure; any thread. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Field sizes, terminating NUL included: a whole record fits one log line
 * (LOG_LINE_MAX) and the columns of the backend's audit_log table. */
#define AUDIT_WHO_SIZE       40
#define AUDIT_PEER_SIZE      64
#define AUDIT_FORWARDED_SIZE 128
#define AUDIT_WHAT_SIZE      32
#define AUDIT_PARAMS_SIZE    384
#define AUDIT_MESSAGE_SIZE   200

struct audit_record {
    uint64_t at_ms;                       /* wall clock, epoch ms */
    int status;                           /* the answer's HTTP status */
    char who[AUDIT_WHO_SIZE];             /* token name; "-": no token was needed or none matched */
    char peer[AUDIT_PEER_SIZE];           /* client address */
    char forwarded[AUDIT_FORWARDED_SIZE]; /* X-Forwarded-For; "-" when absent */
    char what[AUDIT_WHAT_SIZE];           /* "throttle-app", "skip-host", ... */
    char params[AUDIT_PARAMS_SIZE];       /* a JSON object of the request's parameters */
    char message[AUDIT_MESSAGE_SIZE];     /* "OK" or why not */
};

/* Entries an audit trail keeps in memory (the newest), and the most that
 * GET /audit-log shows. */
#define AUDIT_TRAIL_MAX 1000

/* The newest records, at most @cap (<= AUDIT_TRAIL_MAX). Zero-initialize,
 * set cap, free v when done. */
struct audit_ring {
    struct audit_record *v;
    size_t cap;
    size_t len;
    size_t next; /* where the next record goes */
};

/* Appends a copy of @r, dropping the oldest when full. */
void audit_ring_push(struct audit_ring *ring, const struct audit_record *r);
/* A new array of the records, newest first (*@len of them; NULL when none). */
struct audit_record *audit_ring_newest_first(const struct audit_ring *ring, size_t *len);
/* Frees the records; the ring is empty and keeps its cap. */
void audit_ring_clear(struct audit_ring *ring);

/* Writes @src (NULL or "" gives "-") into @dst (@size bytes) as clean text;
 * a cut ends in "..." and never splits an escape or a character. Returns
 * the length. */
size_t audit_clean(char *dst, size_t size, const char *src);
/* Starts @r's params as an empty object. */
void audit_params_init(struct audit_record *r);
/* Adds "@key":"@value" (value cleaned; nothing when @value is NULL) to
 * @r's params; a member that does not fit is left out. */
void audit_params_add(struct audit_record *r, const char *key, const char *value);
/* The log line's text for @r (without the level and time), e.g.
 * who="ops" peer="10.0.0.1" forwarded="-" what="throttle-app"
 * params={"app":"etl","ttl":"60"} status=200 message="OK". Returns the length. */
size_t audit_format_line(char *buf, size_t size, const struct audit_record *r);
