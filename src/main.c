/* SPDX-License-Identifier: MIT */
/* Entry point: flags (single or double dash, as the original's Go flag
 * package accepts), config loading, library set-up, then app_run(). The only
 * file that calls exit(). */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "config/config.h"
#include "core/fdlimit.h"
#include "core/hash.h"
#include "core/parse.h"
#include "httpc/httpc.h"
#include "leader/leader.h"
#include "log/log.h"
#include "mysql/myasync.h"

struct flags {
    const char *config;
    bool http;
    int64_t http_port;
    const char *raft_datadir;
    const char *raft_bind;
    const char *raft_nodes;
    bool force_leadership;
    bool enable_profiling;
    bool quiet, verbose, debug, stack;
    bool version, help;
    bool init_backend;
    const char *log_format;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: freno --http [--config FILE] [options]\n"
            "\n"
            "  --config FILE          config file (default: /etc/freno.conf.json, then conf/freno.conf.json)\n"
            "  --http                 run the HTTP service\n"
            "  --http-port N          listen on N (overrides ListenPort)\n"
            "  --raft-datadir DIR     raft data directory (overrides RaftDataDir)\n"
            "  --raft-bind ADDR       raft bind address (overrides RaftBind)\n"
            "  --raft-nodes A,B,C     raft nodes (overrides RaftNodes)\n"
            "  --force-leadership     act as leader whatever consensus says\n"
            "  --init-backend         create the MySQL backend tables and exit\n"
            "  --enable-profiling     accepted for compatibility\n"
            "  --quiet | --verbose | --debug   log level: error | info | debug (default info)\n"
            "  --log-format FORMAT    text (default) or json, one object per line\n"
            "  --stack                accepted for compatibility\n"
            "  --version              print the version\n"
            "  --help                 this text\n");
}

/* Returns the option name without its one or two leading dashes, or NULL. */
static const char *opt_name(const char *arg)
{
    if (arg[0] != '-')
        return NULL;
    arg++;
    if (arg[0] == '-')
        arg++;
    return arg[0] ? arg : NULL;
}

enum flag_kind { FLAG_BOOL, FLAG_STRING, FLAG_PORT };

static const struct flag_def {
    const char *name;
    enum flag_kind kind;
    size_t offset; /* of the member of struct flags */
} flag_defs[] = {
        {"http", FLAG_BOOL, offsetof(struct flags, http)},
        {"force-leadership", FLAG_BOOL, offsetof(struct flags, force_leadership)},
        {"enable-profiling", FLAG_BOOL, offsetof(struct flags, enable_profiling)},
        {"quiet", FLAG_BOOL, offsetof(struct flags, quiet)},
        {"verbose", FLAG_BOOL, offsetof(struct flags, verbose)},
        {"debug", FLAG_BOOL, offsetof(struct flags, debug)},
        {"stack", FLAG_BOOL, offsetof(struct flags, stack)},
        {"version", FLAG_BOOL, offsetof(struct flags, version)},
        {"help", FLAG_BOOL, offsetof(struct flags, help)},
        {"h", FLAG_BOOL, offsetof(struct flags, help)},
        {"init-backend", FLAG_BOOL, offsetof(struct flags, init_backend)},
        {"config", FLAG_STRING, offsetof(struct flags, config)},
        {"raft-datadir", FLAG_STRING, offsetof(struct flags, raft_datadir)},
        {"raft-bind", FLAG_STRING, offsetof(struct flags, raft_bind)},
        {"raft-nodes", FLAG_STRING, offsetof(struct flags, raft_nodes)},
        {"http-port", FLAG_PORT, offsetof(struct flags, http_port)},
        {"log-format", FLAG_STRING, offsetof(struct flags, log_format)},
};

static const struct flag_def *flag_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(flag_defs) / sizeof(flag_defs[0]); i++) {
        if (strlen(flag_defs[i].name) == len && strncmp(flag_defs[i].name, name, len) == 0)
            return &flag_defs[i];
    }
    return NULL;
}

/* Stores @value (NULL: none given) of flag @d into @f. */
static int flag_set(struct flags *f, const struct flag_def *d, const char *value)
{
    void *field = (char *)f + d->offset;

    switch (d->kind) {
    case FLAG_BOOL:
        *(bool *)field = value == NULL || strcmp(value, "true") == 0 || strcmp(value, "1") == 0;
        return 0;
    case FLAG_STRING:
        *(const char **)field = value;
        return 0;
    case FLAG_PORT:
        if (parse_i64(value, field) < 0 || *(int64_t *)field < 1 || *(int64_t *)field > 65535) {
            fprintf(stderr, "freno: --%s: expected a port number 1..65535, got \"%s\"\n", d->name,
                    value);
            return -EINVAL;
        }
        return 0;
    }
    return -EINVAL;
}

/* Reads every flag, as --name, -name, --name=value or --name value. */
static int parse_flags(int argc, char **argv, struct flags *f)
{
    for (int i = 1; i < argc; i++) {
        const char *name = opt_name(argv[i]);
        if (name == NULL) {
            fprintf(stderr, "freno: unexpected argument %s\n", argv[i]);
            return -EINVAL;
        }
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const char *value = eq ? eq + 1 : NULL;
        const struct flag_def *d = flag_find(name, len);
        if (d == NULL) {
            fprintf(stderr, "freno: unknown flag %s (see --help)\n", argv[i]);
            return -EINVAL;
        }
        if (d->kind != FLAG_BOOL && value == NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "freno: flag --%s needs a value\n", d->name);
                return -EINVAL;
            }
            value = argv[++i];
        }
        if (flag_set(f, d, value) < 0)
            return -EINVAL;
    }
    return 0;
}

/* --help, --version, the log format and level; without --http or
 * --init-backend there is nothing to do but show the usage. Exits when that
 * is all, or with 2 on a bad --log-format. */
static void handle_early_flags(const struct flags *f)
{
    enum log_format format = LOG_FORMAT_TEXT;
    if (f->log_format != NULL && log_format_parse(f->log_format, &format) < 0) {
        fprintf(stderr, "freno: --log-format: expected text or json, got \"%s\"\n", f->log_format);
        exit(2);
    }
    log_set_format(format);
    if (f->help) {
        usage(stdout);
        exit(0);
    }
    if (f->version) {
        printf("%s\n", FRENO_VERSION);
        exit(0);
    }
    if (f->debug)
        log_set_level(LOG_LEVEL_DEBUG);
    else if (f->quiet)
        log_set_level(LOG_LEVEL_ERROR);
    else
        log_set_level(LOG_LEVEL_INFO);
    if (!f->http && !f->init_backend) {
        usage(stderr);
        exit(0);
    }
}

/* Where the config comes from (--config and the flags that override keys);
 * app.c reloads from the same on SIGHUP. */
static struct config_origin config_origin_of(const struct flags *f)
{
    return (struct config_origin){
            .path = f->config,
            .http_port = f->http_port,
            .raft_datadir = f->raft_datadir,
            .raft_bind = f->raft_bind,
            .raft_nodes = f->raft_nodes,
            .enable_profiling = f->enable_profiling,
    };
}

/* Loads the config, logging every warning and error. Exits on errors. */
static struct config *load_config(const struct config_origin *o)
{
    struct config *cfg = NULL;
    if (config_load_origin(o, &cfg) < 0) {
        log_error("freno: refusing to start: the configuration has errors");
        exit(1);
    }
    return cfg;
}

/* What runs before any thread: signals, the hash key, the MariaDB client
 * library (libcurl and libmemcached are opened when first used).
 * Exits on failure. */
static void init_process(struct config *cfg)
{
    /* A client that goes away mid-write must not kill the daemon. */
    struct sigaction sa = {0};
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    /* A reload asked for while the daemon starts must not end it (app.c
     * handles SIGHUP once the loop runs). */
    sigaction(SIGHUP, &sa, NULL);

    /* Draw the hash key before any thread starts and before any client name
     * reaches a map. */
    hash_init();
    if (myasync_library_init() < 0) {
        log_error("freno: cannot initialize the MariaDB client library");
        config_free(cfg);
        exit(1);
    }
}

static void end_process(void)
{
    httpc_library_end();
    myasync_library_end();
}

/* --init-backend: creates the backend tables and exits. */
static void init_backend(struct config *cfg)
{
    struct err err = {0};
    int rc = leader_init_backend(cfg, &err);
    if (rc < 0)
        log_error("%s", err.msg);
    else
        log_info("freno: backend schema is ready");
    config_free(cfg);
    end_process();
    exit(rc < 0 ? 1 : 0);
}

/* Slow clients must not be able to take the descriptors probes and the
 * backend need: use all the kernel allows, and budget them (app.c). Returns
 * the soft limit in force; exits if it cannot be read. */
static uint64_t raise_nofile(struct config *cfg)
{
    struct fdlimit_nofile nofile = {0};
    struct err err = {0};
    if (fdlimit_raise(&nofile, &err) < 0) {
        log_error("freno: %s", err.msg);
        config_free(cfg);
        exit(1);
    }
    char hard[24];
    if (nofile.hard == UINT64_MAX)
        snprintf(hard, sizeof(hard), "unlimited");
    else
        snprintf(hard, sizeof(hard), "%llu", (unsigned long long)nofile.hard);
    if (nofile.soft != nofile.soft_before)
        log_info("freno: open files limit raised from %llu to %llu (hard limit %s)",
                 (unsigned long long)nofile.soft_before, (unsigned long long)nofile.soft, hard);
    else
        log_info("freno: open files limit %llu (hard limit %s)", (unsigned long long)nofile.soft,
                 hard);
    return nofile.soft;
}

/* Memory per probed host (docs/semantics.md#memory-per-host): the MariaDB
 * connector calloc()s a 16 KB read-ahead buffer per connection, of which a
 * probe uses a few hundred bytes. glibc clears calloc() memory unless it comes fresh from
 * the kernel, and with its default top pad (128 KB) it mostly does not; with
 * no pad the heap grows by what is asked and the pages nobody writes are
 * never made resident: 8 KB less per host, measured at 500 hosts. The price
 * is one brk() per growth of the heap, which stops growing once the hosts
 * are connected. */
static void tune_malloc(void)
{
    mallopt(M_TOP_PAD, 0);
}

int main(int argc, char **argv)
{
    tune_malloc();
    struct flags f = {0};
    if (parse_flags(argc, argv, &f) < 0)
        exit(2);
    handle_early_flags(&f);
    struct config_origin origin = config_origin_of(&f);
    struct config *cfg = load_config(&origin);
    init_process(cfg);
    if (f.init_backend)
        init_backend(cfg);
    uint64_t nofile = raise_nofile(cfg);
    /* From here on threads run and no log line may wait for stderr. */
    int rc = log_start();
    if (rc < 0)
        log_warn("freno: log queue: %s; logging straight to stderr", strerror(-rc));
    struct app_params ap = {.cfg = cfg,
                            .origin = &origin,
                            .force_leadership = f.force_leadership,
                            .nofile = nofile};
    int code = app_run(&ap);
    log_stop();
    end_process();
    exit(code);
}
