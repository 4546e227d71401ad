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

#define CONFIG_CLUSTERS_PATH "Stores.MySQL.Clusters"

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
