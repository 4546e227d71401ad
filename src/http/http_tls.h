/* SPDX-License-Identifier: MIT */
/* The HTTPS listener's certificate, key and client CA (GnuTLS). The files
 * are read into one immutable generation; a reload reads a new one and
 * swaps it in atomically (RCU), so handshakes in progress finish with the
 * one they started with. Every handshake gets its own copy of the
 * certificate and key, which GnuTLS frees with the session: an old
 * generation is freed once no handshake reads it. <gnutls/...> stays in
 * http_tls.c. */
#pragma once

#include <stdbool.h>

#include "core/err.h"

struct http_tls;

/* A function pointer of no particular type: the server casts it back to
 * the GnuTLS certificate callback type it is. */
typedef void http_tls_any_fn(void);

/* Reads @cert_file (PEM chain, leaf first), @key_file (PEM key) and, when
 * not NULL or "", @ca_file (PEM CA certificates that sign the client
 * certificates every request needs). Returns NULL with @err set on failure
 * (unreadable file, no certificate, a key that does not match). Makes it the
 * process's TLS listener: at most one exists at a time. Main thread. */
struct http_tls *http_tls_new(const char *cert_file, const char *key_file, const char *ca_file,
                              struct err *err);
/* Reads the same files again and, when they load, serves them from the next
 * handshake on; when they do not, the current ones stay and @err says why.
 * Returns 0 or negative. Loop thread (one reload at a time). */
int http_tls_reload(struct http_tls *t, struct err *err);
/* Frees @t (NULL is fine) once the listener using it has stopped. */
void http_tls_free(struct http_tls *t);
/* The PEM text of the client CA file read at start, or NULL when client
 * certificates are not asked for; valid until http_tls_free(). */
char *http_tls_client_ca_pem(struct http_tls *t);
/* GnuTLS's certificate callback (gnutls_certificate_retrieve_function3) for
 * MHD_OPTION_HTTPS_CERT_CALLBACK2. */
http_tls_any_fn *http_tls_cert_callback(void);
/* Tells whether the peer of the GnuTLS session @session presented a
 * certificate chain the current client CA signs, valid now, for TLS client
 * authentication. Always true without a client CA. HTTP threads. */
bool http_tls_client_ok(struct http_tls *t, void *session);
