/* SPDX-License-Identifier: MIT */
/* The keys that say who may reach the daemon and do what: ControlTokens
 * (a name -> secret object of its own key type), the TLS files and
 * ListenAddress. Only their form is checked here; the files are read and the
 * address resolved when the listener starts (or reloads). Main thread. */
#include "config/config_load.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/xalloc.h"

void config_tokens_clear(struct config_tokens *t)
{
    for (size_t i = 0; i < t->len; i++) {
        free(t->names[i]);
        config_free_secret(t->secrets[i]);
    }
    free(t->names);
    free(t->secrets);
    t->names = t->secrets = NULL;
    t->len = 0;
}

static void tokens_put(struct config_tokens *t, const char *name, const char *secret)
{
    for (size_t i = 0; i < t->len; i++) {
        if (strcmp(t->names[i], name) == 0) {
            config_free_secret(t->secrets[i]);
            t->secrets[i] = xstrdup(secret);
            return;
        }
    }
    t->names = xrealloc(t->names, (t->len + 1) * sizeof(*t->names));
    t->secrets = xrealloc(t->secrets, (t->len + 1) * sizeof(*t->secrets));
    t->names[t->len] = xstrdup(name);
    t->secrets[t->len] = xstrdup(secret);
    t->len++;
}

void config_tokens_copy(struct config_tokens *dst, const struct config_tokens *src)
{
    config_tokens_clear(dst);
    for (size_t i = 0; i < src->len; i++)
        tokens_put(dst, src->names[i], src->secrets[i]);
}

void config_tokens_decode(struct config_loader *ld, const struct config_key *k, json_t *v,
                          const char *path, struct config_tokens *t)
{
    if (!json_is_object(v)) {
        config_type_error(ld, k, v, path, "an object of token name -> secret");
        return;
    }
    const char *name;
    json_t *e;
    json_object_foreach(v, name, e)
    {
        char *cname = config_clean(name);
        if (!json_is_string(e)) {
            config_type_error(ld, k, e, path, "a string secret");
        } else if (t->len >= CONFIG_TOKENS_MAX) {
            config_diag_error(ld, ld->file, "%s: more than %d tokens", path, CONFIG_TOKENS_MAX);
            free(cname);
            return;
        } else {
            tokens_put(t, name, json_string_value(e));
        }
        free(cname);
    }
}

void config_tokens_expand(struct config_loader *ld, struct config_tokens *t, const char *file)
{
    const struct config_key *k = config_key_by_name("ControlTokens");
    for (size_t i = 0; i < t->len; i++) {
        char *cname = config_clean(t->names[i]);
        char *path = xasprintf("ControlTokens.%s", cname);
        size_t errors = ld->diag->errors_len;
        config_expand_key(ld, &(struct config_key){.type = CONFIG_KEY_STRING, .flags = k->flags},
                          &t->secrets[i], file, path);
        /* An empty secret would let an empty token in; one from a missing
         * variable is reported by the expansion already. */
        if (t->secrets[i][0] == '\0' && ld->diag->errors_len == errors)
            config_diag_error(ld, NULL, "%s: empty secret", path);
        free(path);
        free(cname);
    }
}

static bool token_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > TOKEN_NAME_MAX)
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* A host name as RFC 1123 writes one: dot-separated labels of letters,
 * digits and inner hyphens, at most 253 bytes. */
static bool host_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return false;
    for (const char *p = s; *p;) {
        size_t l = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-");
        if (l == 0 || l > 63 || p[0] == '-' || p[l - 1] == '-')
            return false;
        p += l;
        if (*p == '.')
            p++; /* a trailing one means fully qualified */
        else if (*p != '\0')
            return false;
    }
    return true;
}

bool config_listen_address_ok(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1 || host_name_ok(s);
}

void config_security_finish(struct config_loader *ld)
{
    struct config *c = ld->cfg;
    if ((c->tls_cert_file[0] == '\0') != (c->tls_key_file[0] == '\0'))
        config_diag_error(ld, NULL, "TLSCertFile and TLSKeyFile must be set together (%s is empty)",
                          c->tls_cert_file[0] == '\0' ? "TLSCertFile" : "TLSKeyFile");
    if (c->tls_client_ca_file[0] != '\0' && c->tls_cert_file[0] == '\0')
        config_diag_error(ld, NULL, "TLSClientCAFile needs TLSCertFile and TLSKeyFile");
    if (c->listen_address[0] != '\0' && !config_listen_address_ok(c->listen_address)) {
        char *clean = config_clean(c->listen_address);
        config_diag_error(ld, NULL,
                          "ListenAddress: \"%s\" is not an IPv4 or IPv6 address or a host name",
                          clean);
        free(clean);
    }
    for (size_t i = 0; i < c->control_tokens.len; i++) {
        char *cname = config_clean(c->control_tokens.names[i]);
        if (!token_name_ok(c->control_tokens.names[i]))
            config_diag_error(ld, NULL,
                              "ControlTokens: name \"%s\" must be 1..%d bytes of A-Z a-z 0-9 _ -",
                              cname, TOKEN_NAME_MAX);
        else if (strcmp(c->control_tokens.names[i], TOKEN_DEFAULT_NAME) == 0)
            config_diag_error(ld, NULL,
                              "ControlTokens: the name \"%s\" is reserved for ControlToken",
                              TOKEN_DEFAULT_NAME);
        free(cname);
    }
}
