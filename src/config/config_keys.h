/* SPDX-License-Identifier: MIT */
/* The table of every configuration key (private to config/): JSON path, type,
 * where the value is stored, default, bounds, inheritance and a description.
 * config/ decodes, expands, inherits and validates by walking this table.
 * The table is constant and may be read from any thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

enum config_key_type {
    CONFIG_KEY_STRING,   /* char * */
    CONFIG_KEY_INT,      /* int64_t; JSON 3.0 is accepted, 3.5 is not */
    CONFIG_KEY_PORT,     /* uint16_t, same rules as CONFIG_KEY_INT */
    CONFIG_KEY_DOUBLE,   /* double */
    CONFIG_KEY_BOOL,     /* bool */
    CONFIG_KEY_STRV,     /* struct config_strv, from an array of strings */
    CONFIG_KEY_OBJECT,   /* a JSON object whose members are keys of their own */
    CONFIG_KEY_CLUSTERS, /* Stores.MySQL.Clusters: cluster name -> cluster object */
    CONFIG_KEY_METRICS,  /* struct config_metrics, from metric name -> metric object */
    CONFIG_KEY_TOKENS,   /* struct config_tokens, from name -> string */
};

/* Which struct a key's offset points into. */
enum config_key_base {
    CONFIG_BASE_NONE,    /* objects: nothing stored */
    CONFIG_BASE_CONFIG,  /* struct config (top level and Stores.MySQL) */
    CONFIG_BASE_CLUSTER, /* struct config_cluster_raw (one cluster) */
    CONFIG_BASE_METRIC,  /* struct config_metric (one entry of a Metrics object) */
};

/* The value may be a password or token: never echo it in messages. */
#define CONFIG_KEY_SECRET 0x01u
/* ${NAME} is replaced from the environment; an unset variable gives "". */
#define CONFIG_KEY_ENV 0x02u
/* ${NAME} is replaced from the environment; an unset or empty one is an error. */
#define CONFIG_KEY_ENV_STRICT 0x04u
/* A zero value left after loading means the default (Go's "0 means unset"). */
#define CONFIG_KEY_ZERO_DEFAULT 0x08u
/* A non-empty value selects the key's host source for its cluster. */
#define CONFIG_KEY_SELECTS 0x10u
/* A reload (SIGHUP) cannot apply a change of this key: it is logged as
 * "needs a restart" and the running value stays (docs/config.md#reload). */
#define CONFIG_KEY_RESTART 0x20u

/* One cluster as decoded, before inheritance. The embedded cluster receives
 * the values that map one to one; the other members hold raw forms that
 * config_sources.c turns into the final fields. */
struct config_cluster_raw {
    struct config_cluster c;
    char *haproxy_host;
    uint16_t haproxy_port;
    char *haproxy_addresses; /* comma-separated, before normalization */
    struct config_strv static_hosts;
    const char *file;                  /* label of the file that defined the cluster (borrowed) */
    bool proxysql_addresses_inherited; /* from Stores.MySQL.ProxySQLAddresses */
};

struct config_key {
    const char *name; /* JSON path; "*" stands for a cluster name */
    enum config_key_type type;
    enum config_key_base base;
    size_t offset;
    unsigned flags;
    const char *def_str; /* CONFIG_KEY_STRING default, NULL for "" */
    double def_num;      /* numbers and bools */
    double min, max;     /* numbers: inclusive bounds */
    /* Cluster keys: the Stores.MySQL key whose value an empty or zero value
     * inherits, or NULL. */
    const char *inherit;
    /* Keys inside a host source object: that source (inheritance only applies
     * to the cluster's own source); CONFIG_SOURCE_NONE elsewhere. */
    enum config_host_source source;
    const char *desc;
};

/* Returns the table and stores its length in *@len. */
const struct config_key *config_keys_table(size_t *len);

/* Finds the key named @name directly under the object at table path @parent
 * ("" for the top level). Like Go's encoding/json, an exact match wins and a
 * case-insensitive one is accepted; *@exact tells which. NULL if unknown. */
const struct config_key *config_key_find(const char *parent, const char *name, bool *exact);

/* Returns the key with the full table path @name, or NULL. */
const struct config_key *config_key_by_name(const char *name);

/* Returns the last component of @k's path ("Port" for "Stores.MySQL.Port"). */
const char *config_key_leaf(const struct config_key *k);
