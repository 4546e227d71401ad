/* SPDX-License-Identifier: MIT */
/* Entry point: flags (single or double dash, as the original's Go flag
 * package accepts), config loading, library set-up, then app_run(). The only
 * file that calls exit(). */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "app.h"
#include "config/config.h"
#include "core/fdlimit.h"
#include "core/hash.h"
#include "core/parse.h"
#include "core/xalloc.h"
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

static int parse_flags(int argc, char **argv, struct flags *f)
{
    for (int i = 1; i < argc; i++) {
        const char *name = opt_name(argv[i]);
        if (name == NULL) {
            fprintf(stderr, "freno: unexpected argument %s\n", argv[i]);
            return -EINVAL;
        }
        char key[64];
        const char *value = NULL;
        const char *eq = strchr(name, '=');
        size_t klen = eq ? (size_t)(eq - name) : strlen(name);
        if (klen >= sizeof(key)) {
            fprintf(stderr, "freno: unknown flag %s\n", argv[i]);
            return -EINVAL;
        }
        memcpy(key, name, klen);
        key[klen] = '\0';
        if (eq)
            value = eq + 1;

        struct {
            const char *name;
            bool *b;
        } bools[] = {{"http", &f->http},
                     {"force-leadership", &f->force_leadership},
                     {"enable-profiling", &f->enable_profiling},
                     {"quiet", &f->quiet},
                     {"verbose", &f->verbose},
                     {"debug", &f->debug},
                     {"stack", &f->stack},
                     {"version", &f->version},
                     {"help", &f->help},
                     {"h", &f->help},
                     {"init-backend", &f->init_backend}};
        bool matched = false;
        for (size_t j = 0; j < sizeof(bools) / sizeof(bools[0]); j++) {
            if (strcmp(key, bools[j].name) != 0)
                continue;
            matched = true;
            *bools[j].b = value == NULL || strcmp(value, "true") == 0 || strcmp(value, "1") == 0;
        }
        if (matched)
            continue;

        const char **strs[] = {&f->config, &f->raft_datadir, &f->raft_bind, &f->raft_nodes, NULL};
        const char *snames[] = {"config", "raft-datadir", "raft-bind", "raft-nodes", "http-port"};
        int which = -1;
        for (int j = 0; j < 5; j++)
            if (strcmp(key, snames[j]) == 0)
                which = j;
        if (which < 0) {
            fprintf(stderr, "freno: unknown flag %s (see --help)\n", argv[i]);
            return -EINVAL;
        }
        if (value == NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "freno: flag --%s needs a value\n", key);
                return -EINVAL;
            }
            value = argv[++i];
        }
        if (which == 4) {
            if (parse_i64(value, &f->http_port) < 0 || f->http_port < 1 || f->http_port > 65535) {
                fprintf(stderr, "freno: --http-port: expected a port number 1..65535, got \"%s\"\n",
                        value);
                return -EINVAL;
            }
        } else {
            *strs[which] = value;
        }
    }
    return 0;
}

static void strv_set_csv(struct config_strv *sv, const char *csv)
{
    for (size_t i = 0; i < sv->len; i++)
        free(sv->v[i]);
    free(sv->v);
    sv->v = NULL;
    sv->len = 0;
    const char *p = csv;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 0) {
            sv->v = xrealloc(sv->v, (sv->len + 1) * sizeof(char *));
            sv->v[sv->len++] = xstrndup(p, n);
        }
        p += n;
        if (*p == ',')
            p++;
    }
}

int main(int argc, char **argv)
{
    struct flags f = {0};
    if (parse_flags(argc, argv, &f) < 0)
        exit(2);
    if (f.help) {
        usage(stdout);
        exit(0);
    }
    if (f.version) {
        printf("%s\n", FRENO_VERSION);
        exit(0);
    }
    if (f.debug)
        log_set_level(LOG_LEVEL_DEBUG);
    else if (f.quiet)
        log_set_level(LOG_LEVEL_ERROR);
    else
        log_set_level(LOG_LEVEL_INFO);
    if (!f.http && !f.init_backend) {
        usage(stderr);
        exit(0);
    }

    static const char *const defaults[] = {"/etc/freno.conf.json", "conf/freno.conf.json"};
    const char *explicit_path[1] = {f.config};
    struct config *cfg = NULL;
    struct config_diag diag = {0};
    int rc = f.config ? config_load_files(explicit_path, 1, false, &cfg, &diag)
                      : config_load_files(defaults, 2, true, &cfg, &diag);
    for (size_t i = 0; i < diag.warnings_len; i++)
        log_warn("%s", diag.warnings[i]);
    for (size_t i = 0; i < diag.errors_len; i++)
        log_error("%s", diag.errors[i]);
    config_diag_deinit(&diag);
    if (rc < 0) {
        log_error("freno: refusing to start: the configuration has errors");
        exit(1);
    }
    if (f.http_port)
        cfg->listen_port = (uint16_t)f.http_port;
    if (f.raft_datadir) {
        free(cfg->raft_data_dir);
        cfg->raft_data_dir = xstrdup(f.raft_datadir);
    }
    if (f.raft_bind) {
        free(cfg->raft_bind);
        cfg->raft_bind = xstrdup(f.raft_bind);
    }
    if (f.raft_nodes)
        strv_set_csv(&cfg->raft_nodes, f.raft_nodes);
    if (f.enable_profiling)
        cfg->enable_profiling = true;

    /* A client that goes away mid-write must not kill the daemon. */
    struct sigaction sa = {0};
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    /* Draw the hash key before any thread starts and before any client name
     * reaches a map. */
    hash_init();
    if (myasync_library_init() < 0) {
        log_error("freno: cannot initialize the MariaDB client library");
        config_free(cfg);
        exit(1);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (f.init_backend) {
        struct err err = {0};
        rc = leader_init_backend(cfg, &err);
        if (rc < 0)
            log_error("%s", err.msg);
        else
            log_info("freno: backend schema is ready");
        config_free(cfg);
        curl_global_cleanup();
        myasync_library_end();
        exit(rc < 0 ? 1 : 0);
    }
    /* Slow clients must not be able to take the descriptors probes and the
     * backend need: use all the kernel allows, and budget them (app.c). */
    struct fdlimit_nofile nofile = {0};
    struct err ferr = {0};
    if (fdlimit_raise(&nofile, &ferr) < 0) {
        log_error("freno: %s", ferr.msg);
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
    /* From here on threads run and no log line may wait for stderr. */
    rc = log_start();
    if (rc < 0)
        log_warn("freno: log queue: %s; logging straight to stderr", strerror(-rc));
    struct app_params ap = {
            .cfg = cfg, .force_leadership = f.force_leadership, .nofile = nofile.soft};
    int code = app_run(&ap);
    log_stop();
    curl_global_cleanup();
    myasync_library_end();
    exit(code);
}
