/* SPDX-License-Identifier: MIT */
/* The messages of a configuration load: every error and warning goes into a
 * config_diag as one line naming the file and the key path, with user text
 * cut short and its credentials masked. Main thread. */
#include "config/config_load.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/redact.h"
#include "core/strbuf.h"
#include "core/xalloc.h"

static void diag_push(char ***v, size_t *len, char *msg)
{
    *v = xrealloc(*v, (*len + 1) * sizeof(**v));
    (*v)[(*len)++] = msg;
}

void config_diag_add(struct config_loader *ld, bool error, const char *file, const char *fmt, ...)
{
    struct strbuf b = {0};
    va_list ap;

    if (file != NULL)
        strbuf_addf(&b, "config %s: ", file);
    else
        strbuf_adds(&b, "config: ");
    va_start(ap, fmt);
    strbuf_vaddf(&b, fmt, ap);
    va_end(ap);
    if (error)
        diag_push(&ld->diag->errors, &ld->diag->errors_len, strbuf_take(&b));
    else
        diag_push(&ld->diag->warnings, &ld->diag->warnings_len, strbuf_take(&b));
}

void config_diag_deinit(struct config_diag *d)
{
    for (size_t i = 0; i < d->errors_len; i++)
        free(d->errors[i]);
    for (size_t i = 0; i < d->warnings_len; i++)
        free(d->warnings[i]);
    free(d->errors);
    free(d->warnings);
    *d = (struct config_diag){0};
}

char *config_clean(const char *text)
{
    char *s = redact_address_dup(text);
    size_t n = strnlen(s, 65);
    char *out = xstrndup(s, n > 64 ? 61 : n);
    free(s);
    for (char *p = out; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
    if (n > 64) {
        char *longer = xasprintf("%s...", out);
        free(out);
        out = longer;
    }
    return out;
}

void config_free_secret(char *s)
{
    if (s != NULL)
        explicit_bzero(s, strlen(s));
    free(s);
}
