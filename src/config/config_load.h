/* SPDX-License-Identifier: MIT */
/* Private to config/: the state of one load (struct config_loader) and the
 * steps config.c runs on it: messages (config_diag.c), JSON decoding by the
 * key table (config_decode.c), ${NAME} expansion (config_expand.c), string
 * lists (config_strv.c), per-cluster finishing (config_cluster.c) and host
 * sources (config_sources.c). Main thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "config/config_keys.h"

/* jansson's value type, named without its header. */
struct json_t;

#define CONFIG_CLUSTERS_PATH "Stores.MySQL.Clusters"
/* The table path of a Metrics entry's members, whichever Metrics holds it. */
#define CONFIG_METRIC_PATH "Stores.MySQL.Metrics.*"
/* Entries one Metrics object may hold, null ones included: it bounds the
 * work of decoding, while the bound on metrics (FRENO_METRICS_MAX) is
 * checked once inheritance is done. */
#define CONFIG_METRICS_ENTRIES_MAX 64

struct config_loader {
    struct config *cfg;
    struct config_cluster_raw **clusters;
    size_t clusters_len;
    size_t clusters_size;
    const struct config_key *keys;
    size_t keys_len;
    const char **origin; /* per key index: label of the file that last set it */
    const char *file;    /* label of the file being decoded */
    bool unparsed;       /* some file could not be parsed: skip cross-key checks */
    size_t errors_at_start;
    struct config_diag *diag;
};

/* ---- messages (config_diag.c) ---- */

/* Adds "config <file>: <text>" (or "config: <text>" when @file is NULL) to
 * the errors or the warnings of @ld. */
void config_diag_add(struct config_loader *ld, bool error, const char *file, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
#define config_diag_error(ld, file, ...) config_diag_add((ld), true, (file), __VA_ARGS__)
#define config_diag_warn(ld, file, ...)  config_diag_add((ld), false, (file), __VA_ARGS__)

/* Copies user text (a key, a cluster name, an address) for a message: one
 * line, at most 64 bytes, control bytes shown as '?', credentials masked
 * (user:password@ in an address or URL). The caller frees it. */
char *config_clean(const char *text);
/* Wipes and frees a string that may hold a password; NULL is fine. */
void config_free_secret(char *s);

/* ---- string lists (config_strv.c) ---- */

/* Frees every item and the array; the list is empty and reusable. */
void config_strv_clear(struct config_strv *sv);
/* Appends @s, taking ownership of it. */
void config_strv_push(struct config_strv *sv, char *s);
/* Makes @dst a copy of @src. */
void config_strv_copy(struct config_strv *dst, const struct config_strv *src);

/* ---- decoding by the key table (config_decode.c) ---- */

/* The field key @k stores into: in @cfg or in the cluster @cr. */
void *config_key_field(const struct config_key *k, struct config *cfg,
                       struct config_cluster_raw *cr);
/* Sets the field to its default; strings are assumed unset (NULL). */
void config_key_init(const struct config_key *k, void *f);
/* Frees what the field owns (a string, wiped first if secret, or a list)
 * and leaves it NULL or empty; plain values are left alone. */
void config_key_deinit(const struct config_key *k, void *f);
/* Go's zero value: what "left empty" means for inheritance and defaults. */
bool config_key_is_zero(const struct config_key *k, const void *f);
/* Copies the value of field @src into field @dst, both of @k's type. */
void config_key_copy(const struct config_key *k, void *dst, const void *src);
/* Reports a value of the wrong type: "<path>: expected <expected>, got <v>". */
void config_type_error(struct config_loader *ld, const struct config_key *k, const struct json_t *v,
                       const char *path, const char *expected);
/* Finds the key of member @name of the object at table path @tpath, shown as
 * @dpath; warns about an unknown key or one matched ignoring case. Returns
 * the key and sets *@path to its display path (caller frees), or NULL. */
const struct config_key *config_member_key(struct config_loader *ld, const char *tpath,
                                           const char *dpath, const char *name, char **path);
/* Stores one scalar or array value other than null into field @f of @k. */
void config_decode_value(struct config_loader *ld, const struct config_key *k, struct json_t *v,
                         void *f, const char *path);
/* Decodes the JSON text @text (@len bytes) labelled @label onto the settings
 * decoded so far, as Go's encoding/json does. */
void config_decode_text(struct config_loader *ld, const char *text, size_t len, const char *label);
/* Frees every decoded cluster. */
void config_loader_clear_clusters(struct config_loader *ld);

/* ---- ${NAME} expansion (config_expand.c) ---- */

/* Expands ${NAME} in the field @f of key @k if the key allows it, reporting
 * unset variables against @file and the display path @path. */
void config_expand_key(struct config_loader *ld, const struct config_key *k, void *f,
                       const char *file, const char *path);

/* ---- Metrics (config_metrics.c) ---- */

/* Decodes the Metrics object @v shown at @path onto @ms: an entry replaces
 * the entry of the same name (a later file's included), null marks the name
 * dropped. */
void config_metrics_decode(struct config_loader *ld, struct json_t *v, const char *path,
                           struct config_metrics *ms);
/* Frees every entry; the list is empty and reusable. */
void config_metrics_clear(struct config_metrics *ms);
/* Makes @dst a copy of @src. */
void config_metrics_copy(struct config_metrics *dst, const struct config_metrics *src);
/* Finishes Stores.MySQL.Metrics (last set in @file): drops the null entries,
 * sorts by name and checks the count. */
void config_metrics_finish_defaults(struct config_loader *ld, struct config_metrics *ms,
                                    const char *file);
/* Finishes a cluster's Metrics shown at @cpath: every Stores.MySQL metric,
 * then the cluster's own entries by name (a zero member takes the inherited
 * one's value, null drops the inherited metric), sorted by name; checks the
 * count and warns about a metric without a query. */
void config_metrics_finish_cluster(struct config_loader *ld, struct config_metrics *ms,
                                   const struct config_metrics *defaults, const char *file,
                                   const char *cpath);

/* ---- per-cluster finishing (config_cluster.c) ---- */

/* Expands, inherits from Stores.MySQL, picks and checks the host source of
 * @cr; on return @out owns what @cr->c owned. */
void config_finish_cluster(struct config_loader *ld, struct config_cluster_raw *cr,
                           struct config_cluster *out);
/* Frees what a cluster owns and zeroes it. */
void config_cluster_deinit(struct config_cluster *c);
/* Gives every string member of @c that is still NULL the value "", so
 * readers never test for NULL. */
void config_cluster_fill_strings(struct config_cluster *c);

/* ---- host sources (config_sources.c) ---- */

/* Picks the host source of @cr from the keys that select one; reports none
 * or several (then CONFIG_SOURCE_NONE). */
enum config_host_source config_source_pick(struct config_loader *ld, struct config_cluster_raw *cr,
                                           const char *cpath);
/* Checks the settings of @cr's host source (@cr->c.source) and turns them
 * into the forms the inventory reads; @cpath is the cluster's display path. */
void config_source_finish(struct config_loader *ld, struct config_cluster_raw *cr,
                          const char *cpath);

/* ---- ControlTokens and the listener (config_security.c) ---- */

/* Frees every name and (wiped) secret; the map is empty and reusable. */
void config_tokens_clear(struct config_tokens *t);
/* Makes @dst a copy of @src. */
void config_tokens_copy(struct config_tokens *dst, const struct config_tokens *src);
/* Decodes the object @v shown at @path onto @t: a member replaces the
 * secret of the same name (a later file's included). */
void config_tokens_decode(struct config_loader *ld, const struct config_key *k, struct json_t *v,
                          const char *path, struct config_tokens *t);
/* Expands ${NAME} in every secret (strictly: unset or empty is an error). */
void config_tokens_expand(struct config_loader *ld, struct config_tokens *t, const char *file);
/* Checks the top-level TLS, ListenAddress and ControlTokens keys of @ld's
 * config once every file is decoded and expanded. */
void config_security_finish(struct config_loader *ld);
