/* SPDX-License-Identifier: MIT */
/* HTTPS with GnuTLS through libmicrohttpd. A generation holds the files'
 * bytes (certificates as DER, the key as read, the client CA as a trust
 * list); the current one is an RCU-protected pointer. The certificate
 * callback runs on MHD's threads during each handshake and copies the
 * certificate and key out of the generation it sees, so GnuTLS owns what it
 * uses (GNUTLS_CERT_RETR_DEINIT_ALL) and a reload never frees anything a
 * session still holds. Main thread creates, loop thread reloads. */
#include "http/http_tls.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <urcu-bp.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "core/tsan_grace.h"
#include "core/xalloc.h"
#include "log/log.h"

/* Longest certificate chain read from TLSCertFile. */
#define TLS_CHAIN_MAX 16

struct tls_gen {
    gnutls_datum_t der[TLS_CHAIN_MAX];
    unsigned chain_len;
    gnutls_datum_t key_pem;         /* wiped before it is freed */
    gnutls_x509_trust_list_t trust; /* NULL: no client certificates */
    struct rcu_head rcu;
};

struct http_tls {
    char *cert_file;
    char *key_file;
    char *ca_file; /* NULL: none */
    char *ca_pem;  /* as read at start, for MHD's certificate request */
    _Atomic(struct tls_gen *) gen;
};

/* The listener whose certificates the callback hands out. GnuTLS's callback
 * carries no argument of ours, and a process has one HTTP listener. */
static _Atomic(struct http_tls *) the_tls;

static void gen_free(struct tls_gen *g)
{
    if (g == NULL)
        return;
    for (unsigned i = 0; i < g->chain_len; i++)
        gnutls_free(g->der[i].data);
    if (g->key_pem.data != NULL) {
        gnutls_memset(g->key_pem.data, 0, g->key_pem.size);
        gnutls_free(g->key_pem.data);
    }
    if (g->trust != NULL)
        gnutls_x509_trust_list_deinit(g->trust, 1);
    free(g);
}

static void on_gen_rcu(struct rcu_head *h)
{
    GRACE_ELAPSED();
    gen_free(caa_container_of(h, struct tls_gen, rcu));
}

/* Reads the chain of @path into @g as DER; sets *@leaf to the first one. */
static int load_chain(struct tls_gen *g, const char *path, gnutls_x509_crt_t *leaf, struct err *err)
{
    gnutls_datum_t pem = {0};
    int rc = gnutls_load_file(path, &pem);
    if (rc < 0)
        return err_set(err, -EIO, "TLSCertFile %s: cannot read it: %s", path, gnutls_strerror(rc));
    gnutls_x509_crt_t crts[TLS_CHAIN_MAX];
    unsigned n = TLS_CHAIN_MAX;
    rc = gnutls_x509_crt_list_import(crts, &n, &pem, GNUTLS_X509_FMT_PEM,
                                     GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
    gnutls_free(pem.data);
    if (rc < 0)
        return err_set(err, -EINVAL, "TLSCertFile %s: %s", path, gnutls_strerror(rc));
    if (rc == 0)
        return err_set(err, -EINVAL, "TLSCertFile %s: no PEM certificate in it", path);
    n = (unsigned)rc;
    int out = 0;
    for (unsigned i = 0; i < n; i++) {
        if (out == 0 && gnutls_x509_crt_export2(crts[i], GNUTLS_X509_FMT_DER, &g->der[i]) < 0)
            out = err_set(err, -EINVAL, "TLSCertFile %s: certificate %u cannot be encoded", path,
                          i + 1);
        else if (out == 0)
            g->chain_len++;
        if (i == 0 && out == 0)
            *leaf = crts[0];
        else
            gnutls_x509_crt_deinit(crts[i]);
    }
    if (out < 0 && g->chain_len > 0)
        gnutls_x509_crt_deinit(crts[0]);
    return out;
}

/* Reads the key of @path into @g and checks that it belongs to @leaf. */
static int load_key(struct tls_gen *g, const char *path, gnutls_x509_crt_t leaf, struct err *err)
{
    int rc = gnutls_load_file(path, &g->key_pem);
    if (rc < 0)
        return err_set(err, -EIO, "TLSKeyFile %s: cannot read it: %s", path, gnutls_strerror(rc));
    gnutls_x509_privkey_t key;
    gnutls_x509_privkey_init(&key);
    rc = gnutls_x509_privkey_import2(key, &g->key_pem, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (rc < 0) {
        gnutls_x509_privkey_deinit(key);
        return err_set(err, -EINVAL, "TLSKeyFile %s: %s", path, gnutls_strerror(rc));
    }
    unsigned char kid[64], cid[64];
    size_t klen = sizeof(kid), clen = sizeof(cid);
    int krc = gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, kid, &klen);
    int crc = gnutls_x509_crt_get_key_id(leaf, GNUTLS_KEYID_USE_SHA256, cid, &clen);
    gnutls_x509_privkey_deinit(key);
    if (krc < 0 || crc < 0 || klen != clen || memcmp(kid, cid, klen) != 0)
        return err_set(err, -EINVAL, "TLSKeyFile %s: the key does not belong to the certificate",
                       path);
    return 0;
}

static int load_trust(struct tls_gen *g, const char *path, struct err *err)
{
    gnutls_x509_trust_list_init(&g->trust, 0);
    int rc = gnutls_x509_trust_list_add_trust_file(g->trust, path, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
    if (rc < 0)
        return err_set(err, -EINVAL, "TLSClientCAFile %s: %s", path, gnutls_strerror(rc));
    if (rc == 0)
        return err_set(err, -EINVAL, "TLSClientCAFile %s: no PEM certificate in it", path);
    return 0;
}

/* Reads every file of @t into a new generation, or NULL with @err set. */
static struct tls_gen *gen_load(const struct http_tls *t, char *summary, size_t size,
                                struct err *err)
{
    struct tls_gen *g = xcalloc(1, sizeof(*g));
    gnutls_x509_crt_t leaf = NULL;
    int rc = load_chain(g, t->cert_file, &leaf, err);
    if (rc == 0)
        rc = load_key(g, t->key_file, leaf, err);
    if (rc == 0 && t->ca_file != NULL)
        rc = load_trust(g, t->ca_file, err);
    if (rc == 0) {
        char dn[256] = "";
        size_t dnlen = sizeof(dn);
        if (gnutls_x509_crt_get_dn(leaf, dn, &dnlen) < 0)
            snprintf(dn, sizeof(dn), "?");
        time_t until = gnutls_x509_crt_get_expiration_time(leaf);
        struct tm tm;
        char when[32] = "?";
        if (gmtime_r(&until, &tm) != NULL)
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(summary, size, "subject %s, %u certificate(s) in the chain, valid until %s", dn,
                 g->chain_len, when);
        if (until < time(NULL))
            log_warn("http: TLSCertFile %s: the certificate expired at %s", t->cert_file, when);
    }
    if (leaf != NULL)
        gnutls_x509_crt_deinit(leaf);
    if (rc < 0) {
        gen_free(g);
        return NULL;
    }
    return g;
}

static int on_cert(gnutls_session_t session, const struct gnutls_cert_retr_st *info,
                   gnutls_pcert_st **certs, unsigned int *certs_length, gnutls_ocsp_data_st **ocsp,
                   unsigned int *ocsp_length, gnutls_privkey_t *privkey, unsigned int *flags)
{
    (void)session;
    (void)info;
    *certs = NULL;
    *certs_length = 0;
    *ocsp = NULL;
    *ocsp_length = 0;
    *privkey = NULL;
    *flags = GNUTLS_CERT_RETR_DEINIT_ALL;
    struct http_tls *t = atomic_load(&the_tls);
    if (t == NULL)
        return -1;
    int rc = -1;
    rcu_read_lock();
    const struct tls_gen *g = atomic_load(&t->gen);
    gnutls_pcert_st *pc = gnutls_calloc(g->chain_len, sizeof(*pc));
    gnutls_privkey_t key = NULL;
    unsigned n = 0;
    if (pc == NULL || gnutls_privkey_init(&key) < 0)
        goto out;
    if (gnutls_privkey_import_x509_raw(key, &g->key_pem, GNUTLS_X509_FMT_PEM, NULL, 0) < 0)
        goto out;
    for (; n < g->chain_len; n++)
        if (gnutls_pcert_import_x509_raw(&pc[n], &g->der[n], GNUTLS_X509_FMT_DER, 0) < 0)
            goto out;
    *certs = pc;
    *certs_length = n;
    *privkey = key;
    pc = NULL;
    key = NULL;
    rc = 0;
out:
    GRACE_BEFORE_FREE();
    rcu_read_unlock();
    if (pc != NULL) {
        for (unsigned i = 0; i < n; i++)
            gnutls_pcert_deinit(&pc[i]);
        gnutls_free(pc);
    }
    if (key != NULL)
        gnutls_privkey_deinit(key);
    return rc;
}

http_tls_any_fn *http_tls_cert_callback(void)
{
    gnutls_certificate_retrieve_function3 *fn = on_cert;
    return (http_tls_any_fn *)fn;
}

struct http_tls *http_tls_new(const char *cert_file, const char *key_file, const char *ca_file,
                              struct err *err)
{
    struct http_tls *t = xcalloc(1, sizeof(*t));
    t->cert_file = xstrdup(cert_file);
    t->key_file = xstrdup(key_file);
    if (ca_file != NULL && ca_file[0] != '\0') {
        t->ca_file = xstrdup(ca_file);
        gnutls_datum_t pem = {0};
        if (gnutls_load_file(ca_file, &pem) < 0) {
            err_set(err, -EIO, "TLSClientCAFile %s: cannot read it", ca_file);
            goto fail;
        }
        t->ca_pem = xstrndup((const char *)pem.data, pem.size);
        gnutls_free(pem.data);
    }
    char summary[400];
    struct tls_gen *g = gen_load(t, summary, sizeof(summary), err);
    if (g == NULL)
        goto fail;
    atomic_init(&t->gen, g);
    log_info("http: TLS certificate %s: %s%s", cert_file, summary,
             t->ca_file != NULL ? "; client certificates required" : "");
    atomic_store(&the_tls, t);
    return t;
fail:
    http_tls_free(t);
    return NULL;
}

int http_tls_reload(struct http_tls *t, struct err *err)
{
    char summary[400];
    struct tls_gen *g = gen_load(t, summary, sizeof(summary), err);
    if (g == NULL)
        return err->code;
    struct tls_gen *old = atomic_exchange(&t->gen, g);
    GRACE_BEFORE_FREE();
    call_rcu(&old->rcu, on_gen_rcu);
    log_info("http: TLS certificate %s reloaded: %s", t->cert_file, summary);
    return 0;
}

void http_tls_free(struct http_tls *t)
{
    if (t == NULL)
        return;
    struct http_tls *expected = t;
    atomic_compare_exchange_strong(&the_tls, &expected, NULL);
    /* The listener has stopped: no handshake reads the generation now. */
    gen_free(atomic_load(&t->gen));
    free(t->cert_file);
    free(t->key_file);
    free(t->ca_file);
    free(t->ca_pem);
    free(t);
}

char *http_tls_client_ca_pem(struct http_tls *t)
{
    return t != NULL ? t->ca_pem : NULL;
}

bool http_tls_client_ok(struct http_tls *t, void *session)
{
    if (t == NULL || t->ca_file == NULL)
        return true;
    if (session == NULL)
        return false;
    unsigned n = 0;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(session, &n);
    if (peers == NULL || n == 0)
        return false;
    if (n > TLS_CHAIN_MAX)
        n = TLS_CHAIN_MAX;
    gnutls_x509_crt_t chain[TLS_CHAIN_MAX];
    unsigned have = 0;
    bool ok = false;
    for (; have < n; have++) {
        gnutls_x509_crt_init(&chain[have]);
        if (gnutls_x509_crt_import(chain[have], &peers[have], GNUTLS_X509_FMT_DER) < 0) {
            gnutls_x509_crt_deinit(chain[have]);
            goto out;
        }
    }
    static char client_auth[] = GNUTLS_KP_TLS_WWW_CLIENT;
    gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID,
                                     .data = (unsigned char *)client_auth};
    unsigned status = 0;
    rcu_read_lock();
    const struct tls_gen *g = atomic_load(&t->gen);
    int rc = gnutls_x509_trust_list_verify_crt2(g->trust, chain, have, &purpose, 1, 0, &status,
                                                NULL);
    GRACE_BEFORE_FREE();
    rcu_read_unlock();
    ok = rc == 0 && status == 0;
out:
    for (unsigned i = 0; i < have; i++)
        gnutls_x509_crt_deinit(chain[i]);
    return ok;
}
