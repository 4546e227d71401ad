/* SPDX-License-Identifier: MIT */
/* libmicrohttpd glue. The access handler answers on its second call: the
 * first call only marks the request, because queuing a response on the first
 * call makes MHD close keep-alive connections. A control request is parked
 * (MHD_suspend_connection) while the loop works on it and resumed by
 * whoever answers it: the loop, or the keeper thread when it times out. The
 * keeper also closes connections whose request does not arrive whole in
 * time, through the connection table. <microhttpd.h> stays here. */
#include "http/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "core/clock.h"
#include "core/xalloc.h"
#include "http/acceptor.h"
#include "http/conn_table.h"
#include "http/http_api.h"
#include "http/http_tls.h"
#include "http/target.h"
#include "log/log.h"
#include "loop/loop.h"

/* Memory MHD gives each connection for the request line, the headers and
 * its buffers: a request whose head is larger gets 431/413 or a close.
 * libmicrohttpd 0.9.75 clears all of it after every keep-alive request, so
 * its size is CPU on every check: 24 KiB still takes the longest path the
 * router accepts sent fully percent-encoded (12 KiB) with 64 query
 * arguments and 7 KiB of other headers (more is 431); at 16 KiB such a
 * request got no answer at all. */
#define CONNECTION_MEMORY_BYTES (24u * 1024u)
/* Free memory each malloc arena keeps at the top of its heap instead of
 * returning it to the kernel: the connection memory above, taken and given
 * back once per connection, for 32 connections an HTTP thread. */
#define HEAP_KEEP_BYTES (32u * CONNECTION_MEMORY_BYTES)
/* Connections the kernel may hold completed before they are accepted. */
#define LISTEN_BACKLOG 1024u
/* Connections accepted and handed to an HTTP thread that has not taken them
 * yet: past this the listener pauses (ACCEPTOR_PAUSE_MS) and new connections
 * wait in the kernel's queue, so a thread that falls behind does not make
 * the listener hold descriptors for it. */
#define HANDED_MAX 256u
/* How often the keeper looks for timed-out commands and slow requests. */
#define KEEPER_TICK_MS 100u
/* How often the keeper logs what it closed, when it closed anything. */
#define KEEPER_REPORT_MS 60000u
/* The largest answer body an HTTP thread keeps built to send again (a
 * check's answer is 60 to 300 bytes). */
#define RESP_CACHE_BODY_MAX 512u
/* At shutdown, how long parked requests get to be answered. */
#define UNPARK_DEADLINE_MS 2000u

struct http_server {
    struct MHD_Daemon *mhd;
    struct acceptor *listener;
    struct http_api_ctx api;
    struct loop *loop;
    struct conn_table *conns;
    struct http_tls *tls; /* NULL: plain HTTP */
    bool client_certs;    /* every request needs a client certificate */
    uint32_t request_timeout_ms;
    uint32_t control_timeout_ms;
    _Atomic unsigned budget;  /* connections beyond this wait in the listen queue */
    _Atomic unsigned parked;  /* control requests suspended now */
    _Atomic unsigned handed;  /* accepted, not yet taken by an HTTP thread */
    _Atomic uint64_t refused; /* closed at once: over a budget lowered meanwhile */
    _Atomic uint64_t reaped;  /* closed by the keeper: request too slow */
    _Atomic bool stopping;
    pthread_t keeper;
    bool keeper_started;
};

/* A control request waiting for the loop; it is the request's req_cls. */
struct parked {
    struct loop_cmd cmd;
    struct loop_ticket *ticket;
    int submit_rc;
    bool suspended; /* only touched by the connection's MHD thread */
};

static int request_marker;
/* The URI log callback's verdict on a bad target becomes the request's first
 * req_cls: a pointer to the problem, told apart from every other req_cls.
 * Never written (not const only because req_cls is a plain void *). */
static enum http_target_problem target_problems[] = {HTTP_TARGET_NUL, HTTP_TARGET_BAD_ESCAPE,
                                                     HTTP_TARGET_TOO_MANY_ARGS};

static const enum http_target_problem *target_problem_of(const void *req_cls)
{
    for (size_t i = 0; i < sizeof(target_problems) / sizeof(target_problems[0]); i++)
        if (req_cls == &target_problems[i])
            return &target_problems[i];
    return NULL;
}

/* A parked control request's req_cls (not a marker). */
static bool is_parked(const void *req_cls)
{
    return req_cls != NULL && req_cls != &request_marker && target_problem_of(req_cls) == NULL;
}

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

static struct conn_slot *conn_slot_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci != NULL ? ci->socket_context : NULL;
}

static struct MHD_Response *build_response(const char *method, struct http_resp *resp)
{
    struct MHD_Response *r;
    if (resp->release != NULL) /* shared text: no copy, MHD drops our reference */
        r = MHD_create_response_from_buffer_with_free_callback_cls(
                resp->len, resp->body, resp->release, resp->release_arg);
    else if (resp->heap)
        r = MHD_create_response_from_buffer(resp->len, resp->body, MHD_RESPMEM_MUST_FREE);
    else
        r = MHD_create_response_from_buffer(resp->len, resp->body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        if (resp->release != NULL)
            resp->release(resp->release_arg);
        else if (resp->heap)
            free(resp->body);
        return NULL;
    }
    if (resp->content_type != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    else if (resp->json && strcmp(method, "GET") == 0)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    else if (!resp->json)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (resp->retry_after_s != 0) {
        char v[16];
        snprintf(v, sizeof(v), "%u", resp->retry_after_s);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    if (resp->csp) {
        MHD_add_response_header(r, "Content-Security-Policy", HTTP_DASHBOARD_CSP);
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    }
    return r;
}

/* The last small answer an HTTP thread sent, kept built to be sent again
 * while answers stay the same: a check asked over and over has the same
 * body until its value moves, at most once per aggregation (25 ms), and
 * building an MHD response takes five allocations and a mutex. MHD counts
 * a response's references, so one queued on a connection stays valid when
 * the cache lets it go. Freed when the thread ends. */
struct resp_cache {
    struct MHD_Response *r;
    int status;
    bool get; /* the Content-Type of a JSON answer depends on it */
    bool json;
    const char *content_type;
    size_t len;
    char body[RESP_CACHE_BODY_MAX];
};

static pthread_key_t resp_cache_key;
static pthread_once_t resp_cache_once = PTHREAD_ONCE_INIT;
static _Thread_local struct resp_cache *my_resp_cache;

static void on_thread_end(void *arg)
{
    struct resp_cache *c = arg;
    if (c->r != NULL)
        MHD_destroy_response(c->r);
    free(c);
}

static void resp_cache_key_init(void)
{
    if (pthread_key_create(&resp_cache_key, on_thread_end) != 0)
        abort();
}

static struct resp_cache *resp_cache_get(void)
{
    if (my_resp_cache == NULL) {
        pthread_once(&resp_cache_once, resp_cache_key_init);
        my_resp_cache = xcalloc(1, sizeof(*my_resp_cache));
        pthread_setspecific(resp_cache_key, my_resp_cache);
    }
    return my_resp_cache;
}

/* Whether @resp is a plain small answer, the kind the cache keeps. */
static bool resp_cacheable(const struct http_resp *resp)
{
    return resp->body == resp->small && resp->len <= RESP_CACHE_BODY_MAX && resp->release == NULL &&
           !resp->heap && resp->retry_after_s == 0 && !resp->csp;
}

static bool resp_cache_has(const struct resp_cache *c, bool get, const struct http_resp *resp)
{
    return c->r != NULL && c->status == resp->status && c->get == get && c->json == resp->json &&
           c->content_type == resp->content_type && c->len == resp->len &&
           memcmp(c->body, resp->body, resp->len) == 0;
}

static void resp_cache_keep(struct resp_cache *c, bool get, const struct http_resp *resp,
                            struct MHD_Response *r)
{
    if (c->r != NULL)
        MHD_destroy_response(c->r);
    c->r = r;
    c->status = resp->status;
    c->get = get;
    c->json = resp->json;
    c->content_type = resp->content_type;
    c->len = resp->len;
    memcpy(c->body, resp->body, resp->len);
}

static enum MHD_Result send_resp(struct MHD_Connection *conn, const char *method,
                                 struct http_resp *resp)
{
    bool get = strcmp(method, "GET") == 0;
    struct resp_cache *c = NULL;
    if (resp_cacheable(resp)) {
        c = resp_cache_get();
        if (resp_cache_has(c, get, resp))
            return MHD_queue_response(conn, (unsigned)resp->status, c->r);
    }
    struct MHD_Response *r = build_response(method, resp);
    if (r == NULL)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)resp->status, r);
    if (c != NULL)
        resp_cache_keep(c, get, resp, r); /* the cache holds our reference now */
    else
        MHD_destroy_response(r);
    return rc;
}

static void unpark(struct http_server *srv, struct parked *p)
{
    if (!p->suspended)
        return;
    p->suspended = false;
    atomic_fetch_sub(&srv->parked, 1);
}

/* The command's answer is ready (loop thread, keeper thread, or the thread
 * stopping the server): let MHD call the handler again. */
static void on_answer_ready(void *arg)
{
    MHD_resume_connection(arg);
}

/* Parks the request: suspend first, so that an answer coming at once finds
 * the connection suspended, as MHD_resume_connection() requires. */
static enum MHD_Result park(struct http_server *srv, struct MHD_Connection *conn, void **req_cls,
                            const struct loop_cmd *cmd)
{
    struct parked *p = xcalloc(1, sizeof(*p));
    /* on_request() leaves its command uninitialized unless the handler
     * parked, and then the handler wrote all of it. */
    // cppcheck-suppress [ctuuninitvar, uninitvar]
    p->cmd = *cmd;
    *req_cls = p;
    p->suspended = true;
    atomic_fetch_add(&srv->parked, 1);
    MHD_suspend_connection(conn);
    p->submit_rc = loop_cmd_submit(srv->loop, cmd, srv->control_timeout_ms, on_answer_ready, conn,
                                   &p->ticket);
    if (p->submit_rc < 0)
        MHD_resume_connection(conn); /* refused: answer on the next call */
    return MHD_YES;
}

/* The handler's call after the parked request was resumed. */
static enum MHD_Result answer_parked(struct http_server *srv, struct MHD_Connection *conn,
                                     const char *method, struct parked *p)
{
    unpark(srv, p);
    struct loop_cmd answer = p->cmd;
    enum loop_cmd_outcome outcome = LOOP_CMD_PENDING;
    if (p->submit_rc == 0)
        outcome = loop_ticket_result(srv->loop, p->ticket, &answer);
    struct http_resp resp;
    http_api_control_answer(&srv->api, &answer, p->submit_rc, outcome, &resp);
    return send_resp(conn, method, &resp);
}

/* The raw request target, before MHD splits off the query and decodes it.
 * MHD cuts the request line into C strings in place, and writes the NUL that
 * ends the target over the space before the HTTP version: so when the byte
 * after the target's first NUL does not start "HTTP/", the target held a raw
 * NUL of its own, and the handler would see only the part before it. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    enum http_target_problem p = HTTP_TARGET_OK;
    if (strncmp(uri + strlen(uri) + 1, "HTTP/", 5) != 0)
        p = HTTP_TARGET_NUL;
    else
        p = http_target_check(uri);
    if (p == HTTP_TARGET_OK)
        return NULL;
    if (p == HTTP_TARGET_TOO_MANY_ARGS) {
        /* MHD stores every argument in the connection's fixed memory before
         * any handler runs, and with thousands it has no room left to
         * answer: close now rather than hold the descriptor until a timeout. */
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci != NULL)
            shutdown(ci->connect_fd, SHUT_RDWR);
    }
    for (size_t i = 0; i < sizeof(target_problems) / sizeof(target_problems[0]); i++)
        if (target_problems[i] == p)
            return &target_problems[i];
    return NULL;
}

static enum MHD_Result on_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    (void)kind;
    http_framing_add(cls, key, value ? value : "");
    return MHD_YES;
}

/* Answers at once, before any body is read (MHD then closes the connection):
 * the request is refused for its target or its body framing. */
static enum MHD_Result refuse(struct MHD_Connection *conn, const char *method, int status,
                              const char *why)
{
    struct http_resp resp = {.status = status};
    resp.body = resp.small;
    int n = snprintf(resp.small, sizeof(resp.small), "%d %s: %s\n", status,
                     status == 413   ? "Content Too Large"
                     : status == 501 ? "Not Implemented"
                                     : "Bad Request",
                     why);
    resp.len = n > 0 && (size_t)n < sizeof(resp.small) ? (size_t)n : strlen(resp.small);
    return send_resp(conn, method, &resp);
}

/* With TLSClientCAFile: whether the connection's client presented a
 * certificate the client CA signed. Verified on the connection's first
 * request and remembered in its slot: later requests on a kept-alive
 * connection cost a load, and allocate nothing. */
static bool client_cert_ok(struct http_server *srv, struct MHD_Connection *conn)
{
    struct conn_slot *slot = conn_slot_of(conn);
    enum conn_tls_verdict v = slot != NULL ? conn_slot_tls_verdict(slot) : CONN_TLS_UNKNOWN;
    if (v != CONN_TLS_UNKNOWN)
        return v == CONN_TLS_OK;
    const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    bool ok = http_tls_client_ok(srv->tls, ci != NULL ? ci->tls_session : NULL);
    if (slot != NULL)
        conn_slot_set_tls_verdict(slot, ok ? CONN_TLS_OK : CONN_TLS_REFUSED);
    return ok;
}

/* The first call for a request, once its head has arrived: refuse what must
 * not reach a handler, else mark the request and wait for the second call. */
static enum MHD_Result first_call(struct http_server *srv, struct MHD_Connection *conn,
                                  const char *method, void **req_cls)
{
    const enum http_target_problem *p = target_problem_of(*req_cls);
    *req_cls = &request_marker;
    if (srv->client_certs && !client_cert_ok(srv, conn)) {
        struct http_resp resp = {.status = 403};
        resp.body = resp.small;
        resp.len = (size_t)snprintf(
                resp.small, sizeof(resp.small),
                "403 Forbidden: a client certificate signed by TLSClientCAFile is required\n");
        return send_resp(conn, method, &resp);
    }
    if (p != NULL)
        return refuse(conn, method, 400, http_target_problem_text(*p));
    struct http_framing f = {0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, on_header, &f);
    const char *why = NULL;
    int status = http_framing_verdict(&f, &why);
    if (status != 0)
        return refuse(conn, method, status, why);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)version;
    (void)upload_data;
    struct http_server *srv = cls;
    if (*req_cls == NULL || target_problem_of(*req_cls) != NULL)
        return first_call(srv, conn, method, req_cls);
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* bodies are ignored */
        return MHD_YES;
    }
    if (is_parked(*req_cls))
        return answer_parked(srv, conn, method, *req_cls);
    /* The request is whole: the time bound on receiving it ends here. */
    struct conn_slot *slot = conn_slot_of(conn);
    if (slot != NULL)
        conn_slot_busy(slot);

    char own_peer[CONN_PEER_SIZE];
    char *peer = slot != NULL ? conn_slot_peer(slot) : own_peer;
    if (slot == NULL || peer[0] == '\0')
        peer_address(conn, peer, CONN_PEER_SIZE);
    /* Written only by a control request that parks (a whole command, about
     * 2.7 KB): left uninitialized so that checks do not clear it. */
    struct loop_cmd park_cmd;
    struct http_req req = {
            .method = method,
            .path = url,
            .peer = peer,
            .query = lookup_query,
            .header = lookup_header,
            .ctx = conn,
            .park = &park_cmd,
    };
    struct http_resp resp;
    http_api_handle(&srv->api, &req, &resp);
    if (resp.park) /* then http_api_handle() wrote the whole command */
        return park(srv, conn, req_cls, &park_cmd);
    return send_resp(conn, method, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    struct http_server *srv = cls;
    if (is_parked(*req_cls)) {
        struct parked *p = *req_cls;
        unpark(srv, p);
        loop_ticket_release(srv->loop, p->ticket);
        free(p);
    }
    *req_cls = NULL;
    /* The next request on this connection must arrive in time from now. */
    struct conn_slot *slot = conn_slot_of(conn);
    if (slot != NULL)
        conn_slot_waiting(slot, clock_mono_ms());
}

/* MHD closes a socket only after reporting it closed here, so a slot holds a
 * live descriptor from STARTED until its release in CLOSED. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http_server *srv = cls;
    if (toe != MHD_CONNECTION_NOTIFY_STARTED) {
        conn_table_release(srv->conns, *socket_context);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct conn_slot *s =
            ci != NULL ? conn_table_claim(srv->conns, ci->connect_fd, clock_mono_ms()) : NULL;
    *socket_context = s;
    /* After the claim: the listener may count it twice, never not at all. */
    atomic_fetch_sub(&srv->handed, 1);
    if (ci == NULL)
        return;
    if (s == NULL || conn_table_live(srv->conns) > atomic_load(&srv->budget)) {
        /* Over the descriptor budget: MHD sees the end of input and closes. */
        shutdown(ci->connect_fd, SHUT_RDWR);
        atomic_fetch_add(&srv->refused, 1);
    }
}

/* Whether the listener may accept a connection: within the budget, counting
 * those handed to an HTTP thread and not taken yet, and with fewer than
 * HANDED_MAX of those. Otherwise new connections wait in the kernel's queue.
 * The listener's thread. */
static bool on_room(void *arg)
{
    struct http_server *srv = arg;
    unsigned handed = atomic_load(&srv->handed);
    return handed < HANDED_MAX && conn_table_live(srv->conns) + handed < atomic_load(&srv->budget);
}

/* A connection the listener accepted, handed to an HTTP thread, which MHD
 * picks by descriptor number (consecutive connections alternate between
 * threads). MHD closes it itself when it refuses it
 * (HttpMaxConnectionsPerAddress). The listener's thread. */
static void on_accept(int fd, const struct sockaddr *addr, socklen_t addrlen, void *arg)
{
    struct http_server *srv = arg;
    atomic_fetch_add(&srv->handed, 1);
    if (MHD_add_connection(srv->mhd, fd, addr, addrlen) != MHD_YES)
        atomic_fetch_sub(&srv->handed, 1);
}

static void on_reap(int fd, void *arg)
{
    (void)arg;
    /* MHD reads end of input, closes the connection and reports it. */
    shutdown(fd, SHUT_RDWR);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* The keeper: answers commands the loop did not answer in time (so a
 * stalled loop still answers its clients) and closes connections whose
 * request is too slow. Its own thread, independent of the loop. */
static void *keeper_main(void *arg)
{
    struct http_server *s = arg;
    uint64_t report_at = clock_mono_ms() + KEEPER_REPORT_MS;
    uint64_t reported_reaped = 0, reported_refused = 0;
    while (!atomic_load(&s->stopping)) {
        sleep_ms(KEEPER_TICK_MS);
        uint64_t now = clock_mono_ms();
        loop_cmd_expire(s->loop, now);
        size_t n = conn_table_reap(s->conns, now, s->request_timeout_ms, on_reap, s);
        atomic_fetch_add(&s->reaped, n);
        if (now < report_at)
            continue;
        report_at = now + KEEPER_REPORT_MS;
        uint64_t reaped = atomic_load(&s->reaped), refused = atomic_load(&s->refused);
        if (reaped != reported_reaped)
            log_warn(
                    "http: closed %llu connection(s) in the last minute that did not send a whole request within %u ms",
                    (unsigned long long)(reaped - reported_reaped), s->request_timeout_ms);
        if (refused != reported_refused)
            log_warn(
                    "http: closed %llu connection(s) in the last minute at once: over the connection budget of %u",
                    (unsigned long long)(refused - reported_refused), atomic_load(&s->budget));
        reported_reaped = reaped;
        reported_refused = refused;
    }
    return NULL;
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

/* Every new connection takes CONNECTION_MEMORY_BYTES from its thread's
 * heap and gives them back when it closes. With glibc's default trim
 * threshold (128 KiB) a few connections freed at once make the heap shrink
 * (madvise, and a TLB flush on every thread), and the next connections
 * fault the same pages in again, zeroed by the kernel and then by calloc():
 * one madvise() per 20 connections and 3-5 % of the CPU a Connection: close
 * request costs (perf: page faults, page clearing, flush interrupts). Keeping up
 * to HEAP_KEEP_BYTES free per arena spares that; memory freed after a
 * burst beyond it still goes back. Process-wide; set once, before the
 * HTTP threads start. */
static void keep_heap_for_connections(void)
{
    /* Refused only by other allocators (AddressSanitizer's): nothing to do. */
    if (mallopt(M_TRIM_THRESHOLD, (int)HEAP_KEEP_BYTES) != 1)
        log_debug("http: the allocator keeps its own heap trim threshold");
}

unsigned http_server_thread_count(unsigned requested)
{
    if (requested != 0)
        return requested;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* MHD's own connection limit, per HTTP thread, set where the listener's
 * bound (the budget, connections waiting to be taken included) always
 * comes first: MHD refusing a connection in its thread would close it
 * without reporting it, and the listener would count it as waiting forever. */
static unsigned mhd_connection_limit(unsigned max_connections, unsigned threads)
{
    uint64_t per_thread = (uint64_t)max_connections + HANDED_MAX + 1u;
    uint64_t all = per_thread * threads;
    return all > UINT32_MAX ? UINT32_MAX : (unsigned)all;
}

/* MHD options beyond the fixed ones: TLS. */
#define EXTRA_OPTIONS_MAX 2

struct http_server *http_server_start(const struct http_server_params *p, struct err *err)
{
    struct http_server *s = xcalloc(1, sizeof(*s));
    s->loop = p->loop;
    s->api.loop = p->loop;
    s->api.cmd_timeout_ms = p->control_timeout_ms;
    s->api.cmd_queue_max = p->control_queue_max;
    s->api.history = p->history;
    s->request_timeout_ms = p->request_timeout_ms;
    s->control_timeout_ms = p->control_timeout_ms;
    atomic_init(&s->budget, p->max_connections);
    s->conns = conn_table_new(p->max_connections);
    keep_heap_for_connections();
    unsigned threads = http_server_thread_count(p->threads);
    /* The listener accepts; MHD gets each connection with
     * MHD_add_connection(). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET |
                     MHD_USE_ITC;
    struct MHD_OptionItem extra[EXTRA_OPTIONS_MAX + 1];
    size_t nextra = 0;
    s->listener = acceptor_new(p->listen_address, p->port, LISTEN_BACKLOG, err);
    if (s->listener == NULL)
        goto fail;
    if (p->tls_cert_file != NULL && p->tls_cert_file[0] != '\0') {
        if (MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK2) != MHD_YES) {
            err_set(err, -ENOTSUP,
                    "http: this libmicrohttpd cannot serve TLS with certificate rotation (no HTTPS certificate callback)");
            goto fail;
        }
        s->tls = http_tls_new(p->tls_cert_file, p->tls_key_file, p->tls_client_ca_file, err);
        if (s->tls == NULL) {
            err_prefix(err, "http");
            goto fail;
        }
        flags |= MHD_USE_TLS;
        extra[nextra++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK2, 0,
                                                  (void *)http_tls_cert_callback()};
        char *ca = http_tls_client_ca_pem(s->tls);
        if (ca != NULL) {
            extra[nextra++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, ca};
            s->client_certs = true;
        }
    }
    extra[nextra] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    s->mhd = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, s, MHD_OPTION_THREAD_POOL_SIZE, threads,
            MHD_OPTION_CONNECTION_LIMIT, mhd_connection_limit(p->max_connections, threads),
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, p->max_per_address, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)p->idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
            (size_t)CONNECTION_MEMORY_BYTES, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_ARRAY, extra, MHD_OPTION_END);
    if (s->mhd == NULL) {
        err_set(err, -EIO, "http: cannot start the HTTP threads (see the debug log)");
        goto fail;
    }
    if (acceptor_start(s->listener, on_accept, on_room, s, err) < 0) {
        MHD_stop_daemon(s->mhd);
        goto fail;
    }
    int rc = pthread_create(&s->keeper, NULL, keeper_main, s);
    if (rc != 0) {
        err_set(err, -rc, "http: cannot start the keeper thread: %s", strerror(rc));
        acceptor_free(s->listener); /* no more connections for MHD */
        s->listener = NULL;
        MHD_stop_daemon(s->mhd);
        goto fail;
    }
    s->keeper_started = true;
    return s;
fail:
    acceptor_free(s->listener);
    http_tls_free(s->tls);
    conn_table_free(s->conns);
    free(s);
    return NULL;
}

int http_server_reload_tls(struct http_server *s, struct err *err)
{
    if (s == NULL || s->tls == NULL)
        return 0;
    int rc = http_tls_reload(s->tls, err);
    if (rc < 0)
        err_prefix(err, "http: SIGHUP");
    return rc;
}

void http_server_set_connection_budget(struct http_server *s, unsigned max)
{
    atomic_store(&s->budget, max);
}

void http_server_stop(struct http_server *s)
{
    if (s == NULL)
        return;
    /* MHD must not be stopped with suspended connections: answer every
     * parked request first and let MHD's threads send the answers. */
    loop_cmd_close(s->loop);
    uint64_t deadline = clock_mono_ms() + UNPARK_DEADLINE_MS;
    while (atomic_load(&s->parked) > 0 && clock_mono_ms() < deadline)
        sleep_ms(5);
    if (atomic_load(&s->parked) > 0)
        log_warn("http: %u parked request(s) not answered at shutdown", atomic_load(&s->parked));
    atomic_store(&s->stopping, true);
    if (s->keeper_started)
        pthread_join(s->keeper, NULL);
    acceptor_free(s->listener);
    MHD_stop_daemon(s->mhd);
    http_tls_free(s->tls);
    conn_table_free(s->conns);
    free(s);
}
