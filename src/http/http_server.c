/* SPDX-License-Identifier: MIT */
/* libmicrohttpd glue. The access handler answers on its second call: the
 * first call only marks the request, because queuing a response on the first
 * call makes MHD close keep-alive connections. <microhttpd.h> stays here. */
#include "http/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "core/xalloc.h"
#include "http/http_api.h"
#include "log/log.h"

struct http_server {
    struct MHD_Daemon *mhd;
    struct http_api_ctx api;
};

static int request_marker;

static const char *lookup_query(void *ctx, const char *key)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, key);
}

static const char *lookup_header(void *ctx, const char *key)
{
    return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, key);
}

static void peer_address(struct MHD_Connection *conn, char *buf, size_t size)
{
    const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    buf[0] = '\0';
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
                  (socklen_t)size);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        /* A v4 client on the dual-stack socket shows as its v4 address. */
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)size);
        else
            inet_ntop(AF_INET6, a, buf, (socklen_t)size);
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)version;
    (void)upload_data;
    struct http_server *srv = cls;
    if (*req_cls == NULL) {
        *req_cls = &request_marker;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* bodies are ignored */
        return MHD_YES;
    }
    char peer[INET6_ADDRSTRLEN + 1];
    peer_address(conn, peer, sizeof(peer));
    struct http_req req = {
            .method = method,
            .path = url,
            .peer = peer,
            .query = lookup_query,
            .header = lookup_header,
            .ctx = conn,
    };
    struct http_resp resp;
    http_api_handle(&srv->api, &req, &resp);

    struct MHD_Response *r;
    if (resp.release != NULL) /* shared text: no copy, MHD drops our reference */
        r = MHD_create_response_from_buffer_with_free_callback_cls(resp.len, resp.body,
                                                                   resp.release, resp.release_arg);
    else if (resp.heap)
        r = MHD_create_response_from_buffer(resp.len, resp.body, MHD_RESPMEM_MUST_FREE);
    else
        r = MHD_create_response_from_buffer(resp.len, resp.body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        if (resp.release != NULL)
            resp.release(resp.release_arg);
        else if (resp.heap)
            free(resp.body);
        return MHD_NO;
    }
    if (resp.json && strcmp(method, "GET") == 0)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    else if (!resp.json)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)resp.status, r);
    MHD_destroy_response(r);
    return rc;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    log_debug("http: %s", buf);
}

struct http_server *http_server_start(const struct http_server_params *p, struct err *err)
{
    struct http_server *s = xcalloc(1, sizeof(*s));
    s->api.loop = p->loop;
    s->api.cmd_timeout_ms = 5000;
    unsigned threads = p->threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_DUAL_STACK |
                     MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    s->mhd = MHD_start_daemon(flags, p->port, NULL, NULL, on_request, s,
                              MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned)4096, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
                              MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
                              MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_END);
    if (s->mhd == NULL) {
        err_set(err, -EADDRINUSE, "http: cannot listen on port %u (in use, or no permission)",
                (unsigned)p->port);
        free(s);
        return NULL;
    }
    return s;
}

void http_server_stop(struct http_server *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->mhd);
    free(s);
}
