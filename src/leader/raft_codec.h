/* SPDX-License-Identifier: MIT */
/* What freno puts into the raft log and into raft snapshots: operator
 * commands with absolute expiry times, and the whole operator state (app
 * throttles and skipped hosts). Versioned JSON, so a log written by one build
 * reads in the next. Decoding treats its input as hostile: anything malformed
 * is an error with a message, never a crash. Pure code; any thread. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "core/audit.h"
#include "core/err.h"
#include "core/limits.h"

/* Longest key (app key or host name) the log carries: the backend's
 * varchar(128), which the HTTP layer and the throttler enforce too. */
#define RAFT_CODEC_KEY_MAX FRENO_NAME_MAX

enum raft_codec_op {
    RAFT_CODEC_THROTTLE = 1, /* key = app key; expire_at_ms (0: never), ratio */
    RAFT_CODEC_UNTHROTTLE,   /* key = app key */
    RAFT_CODEC_SKIP,         /* key = host; expire_at_ms */
    RAFT_CODEC_RECOVER,      /* key = host */
    RAFT_CODEC_SET_RULE,     /* key = app key; rule = its text; expire_at_ms (0: never) */
    RAFT_CODEC_REMOVE_RULE,  /* key = app key */
    RAFT_CODEC_AUDIT,        /* audit = one entry of the audit trail; no key */
};
#define RAFT_CODEC_OP_LAST RAFT_CODEC_AUDIT
/* Room for a per-app rule's text, its NUL included (APP_RULE_TEXT_MAX). */
#define RAFT_CODEC_RULE_MAX 1024

/* One replicated command. The leader computes the resulting entry (absolute
 * expiry, ratio) before proposing, so every node stores the same values. */
struct raft_codec_cmd {
    enum raft_codec_op op;
    char key[RAFT_CODEC_KEY_MAX + 1];
    uint64_t expire_at_ms;
    double ratio;
    char rule[RAFT_CODEC_RULE_MAX]; /* RAFT_CODEC_SET_RULE */
    struct audit_record audit;      /* RAFT_CODEC_AUDIT */
};

struct raft_codec_app {
    char *key;
    uint64_t expire_at_ms; /* 0: never */
    double ratio;
};

struct raft_codec_host {
    char *host;
    uint64_t expire_at_ms;
};

struct raft_codec_rule {
    char *key;
    uint64_t expire_at_ms; /* 0: never */
    char *rule;            /* its canonical text */
};

/* The operator state in a snapshot. Owns its arrays and strings. A
 * snapshot written before rules existed has none. */
struct raft_codec_state {
    struct raft_codec_app *apps;
    size_t apps_len;
    size_t apps_cap;
    struct raft_codec_host *hosts;
    size_t hosts_len;
    size_t hosts_cap;
    struct raft_codec_rule *rules;
    size_t rules_len;
    size_t rules_cap;
    /* Decoding: rules left out because their text is not a valid rule, and
     * the reason of the first. */
    size_t rules_skipped;
    char rules_skipped_first[256];
    /* The audit trail, oldest first (a snapshot without one has none). */
    struct audit_record *audit;
    size_t audit_len;
};

/* Name of @op as written in the log ("throttle", ...), or "?" if unknown. */
const char *raft_codec_op_name(enum raft_codec_op op);

/* Encodes @c into a new heap buffer (*@out, free() it) of *@len bytes.
 * Returns 0, or -EINVAL with @err set when @c itself is invalid (empty or
 * over-long key, ratio outside [0,1], unknown op). */
int raft_codec_encode_cmd(const struct raft_codec_cmd *c, char **out, size_t *len, struct err *err);
/* Decodes @len bytes at @buf (not NUL-terminated) into *@c. Returns 0, or
 * -EINVAL with @err set and *@c unspecified. */
int raft_codec_decode_cmd(const void *buf, size_t len, struct raft_codec_cmd *c, struct err *err);

/* Appends a copy of an app throttle / skipped host to @s. */
void raft_codec_state_add_app(struct raft_codec_state *s, const char *key, uint64_t expire_at_ms,
                              double ratio);
void raft_codec_state_add_host(struct raft_codec_state *s, const char *host, uint64_t expire_at_ms);
void raft_codec_state_add_rule(struct raft_codec_state *s, const char *key, uint64_t expire_at_ms,
                               const char *rule);
/* Appends a copy of audit entry @r to @s. */
void raft_codec_state_add_audit(struct raft_codec_state *s, const struct audit_record *r);
/* Frees what @s owns and empties it. */
void raft_codec_state_deinit(struct raft_codec_state *s);

/* Encodes @s (entries in key order, so equal states give equal bytes) into a
 * new heap buffer (*@out, free() it) of *@len bytes. Always succeeds. */
void raft_codec_encode_state(const struct raft_codec_state *s, char **out, size_t *len);
/* Decodes a snapshot into @s (empty on entry; filled on success only).
 * Returns 0, or -EINVAL with @err set. */
int raft_codec_decode_state(const void *buf, size_t len, struct raft_codec_state *s,
                            struct err *err);
