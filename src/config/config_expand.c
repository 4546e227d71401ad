/* SPDX-License-Identifier: MIT */
/* ${NAME} expansion of the keys whose table entry allows it, reading the
 * environment once every file is decoded (docs/config.md, "Environment
 * variables"). Main thread. */
#include "config/config_load.h"

#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "core/xalloc.h"

/* Replaces every ${NAME} in @s with the variable's value. The original
 * replaces the WHOLE value with the first variable it finds and ignores the
 * text around it ("x${A}" becomes $A); we substitute in place, which is the
 * same for the usual whole-value "${A}" and what anyone writing "x${A}"
 * means. As in the original (os.Getenv), an unset variable gives "". With
 * @strict, an unset or empty variable is reported (as the original does for
 * HAProxy Addresses). The first such variable's name goes to *@missing
 * (caller frees). "${" without a closing brace and "${}" stay as written. */
static char *expand_env(const char *s, bool strict, char **missing)
{
    struct strbuf b = {0};
    const char *p = s;

    *missing = NULL;
    for (;;) {
        const char *open = strstr(p, "${");
        const char *close = open ? strchr(open + 2, '}') : NULL;
        if (close == NULL) {
            strbuf_adds(&b, p);
            break;
        }
        if (close == open + 2) {
            strbuf_add(&b, p, (size_t)(close + 1 - p));
            p = close + 1;
            continue;
        }
        strbuf_add(&b, p, (size_t)(open - p));
        char *name = xstrndup(open + 2, (size_t)(close - open - 2));
        const char *value = getenv(name);
        if (value == NULL || (strict && value[0] == '\0')) {
            value = "";
            if (*missing == NULL) {
                *missing = name;
                name = NULL;
            }
        }
        strbuf_adds(&b, value);
        free(name);
        p = close + 1;
    }
    return strbuf_take(&b);
}

/* Expands one string field in place and reports a missing variable. */
static void expand_string(struct config_loader *ld, char **f, bool strict, bool secret,
                          const char *file, const char *path)
{
    if (strstr(*f, "${") == NULL)
        return;
    char *missing = NULL;
    char *v = expand_env(*f, strict, &missing);
    if (secret)
        config_free_secret(*f);
    else
        free(*f);
    *f = v;
    if (missing != NULL) {
        char *cname = config_clean(missing);
        if (strict)
            config_diag_error(ld, file, "%s: environment variable %s is %s", path, cname,
                              getenv(missing) != NULL ? "empty" : "not set");
        else
            config_diag_warn(ld, file,
                             "%s: environment variable %s is not set; it expands to nothing", path,
                             cname);
        free(cname);
        free(missing);
    }
}

void config_expand_key(struct config_loader *ld, const struct config_key *k, void *f,
                       const char *file, const char *path)
{
    bool strict = k->flags & CONFIG_KEY_ENV_STRICT;
    bool secret = k->flags & CONFIG_KEY_SECRET;

    if (!(k->flags & (CONFIG_KEY_ENV | CONFIG_KEY_ENV_STRICT)))
        return;
    if (k->type == CONFIG_KEY_STRING) {
        expand_string(ld, f, strict, secret, file, path);
    } else if (k->type == CONFIG_KEY_STRV) {
        struct config_strv *sv = f;
        for (size_t i = 0; i < sv->len; i++) {
            char *epath = xasprintf("%s[%zu]", path, i);
            expand_string(ld, &sv->v[i], strict, secret, file, epath);
            free(epath);
        }
    } else if (k->type == CONFIG_KEY_TOKENS) {
        config_tokens_expand(ld, f, file);
    }
}
