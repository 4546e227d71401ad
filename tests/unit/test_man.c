/* SPDX-License-Identifier: MIT */
/* The CONFIGURATION KEYS section of man/freno.8 is generated from the keys
 * table (src/config/config_keys.c), so it cannot drift: this test fails when
 * the page differs from what the table gives, and `test_man --write`
 * rewrites that section in place (between the BEGIN and END comment lines).
 * A key added to the table is documented by running it once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config_keys.h"
#include "core/strbuf.h"

#define MAN_PAGE    FRENO_SOURCE_DIR "/man/freno.8"
#define BEGIN_MARK  ".\\\" BEGIN CONFIGURATION KEYS"
#define END_MARK    ".\\\" END CONFIGURATION KEYS"
#define CLUSTER_PFX "Stores.MySQL.Clusters.*."

/* @s as roff text: backslashes, hyphens (so that --flags stay ASCII), and a
 * leading dot or quote, which roff would take for a request. */
static void roff_text(struct strbuf *b, const char *s)
{
    if (*s == '.' || *s == '\'')
        strbuf_adds(b, "\\&");
    for (; *s; s++) {
        if (*s == '\\')
            strbuf_adds(b, "\\e");
        else if (*s == '-')
            strbuf_adds(b, "\\-");
        else
            strbuf_add(b, s, 1);
    }
}

/* A key's path in bold, with "*" (any cluster) as an italic "name". */
static void roff_key(struct strbuf *b, const char *name)
{
    strbuf_adds(b, "\\fB");
    for (const char *p = name; *p; p++) {
        if (*p == '*')
            strbuf_adds(b, "\\fIname\\fB");
        else if (*p == '-')
            strbuf_adds(b, "\\-");
        else
            strbuf_add(b, p, 1);
    }
    strbuf_adds(b, "\\fR");
}

static const char *group_of(const struct config_key *k)
{
    if (strncmp(k->name, CLUSTER_PFX, strlen(CLUSTER_PFX)) == 0)
        return strstr(k->name, "Settings") != NULL
                       ? "Host sources (one per cluster)"
                       : "Clusters (Stores.MySQL.Clusters.\\fIname\\fR)";
    if (strncmp(k->name, "Stores.MySQL.", 13) == 0)
        return "Stores.MySQL (defaults for every cluster)";
    return "Top level";
}

/* "port 1..65535; default 8087" and the like. */
static void roff_type(struct strbuf *b, const struct config_key *k)
{
    bool show_default = k->inherit == NULL;
    switch (k->type) {
    case CONFIG_KEY_STRING:
        strbuf_adds(b, "string");
        if (k->def_str != NULL && show_default) {
            strbuf_adds(b, "; default ");
            roff_text(b, k->def_str);
        }
        return;
    case CONFIG_KEY_INT:
        strbuf_addf(b, "integer %.15g..%.15g", k->min, k->max);
        break;
    case CONFIG_KEY_PORT:
        strbuf_addf(b, "port %.15g..%.15g", k->min, k->max);
        break;
    case CONFIG_KEY_DOUBLE:
        strbuf_addf(b, "number, at least %.15g", k->min);
        break;
    case CONFIG_KEY_BOOL:
        strbuf_adds(b, "boolean");
        if (show_default)
            strbuf_adds(b, k->def_num != 0 ? "; default true" : "; default false");
        return;
    case CONFIG_KEY_STRV:
        strbuf_adds(b, "array of strings");
        return;
    case CONFIG_KEY_OBJECT:
        strbuf_adds(b, "object");
        return;
    case CONFIG_KEY_CLUSTERS:
        strbuf_adds(b, "object, one member per cluster");
        return;
    case CONFIG_KEY_METRICS:
        strbuf_adds(b, "object, one member per metric");
        return;
    case CONFIG_KEY_TOKENS:
        strbuf_adds(b, "object, token name -> secret");
        return;
    }
    if (show_default)
        strbuf_addf(b, "; default %.15g", k->def_num);
}

/* The generated section, both marker lines included. */
static char *keys_section(void)
{
    struct strbuf b = {0};
    size_t len;
    const struct config_key *keys = config_keys_table(&len);
    const char *group = NULL;
    strbuf_adds(&b, BEGIN_MARK ": generated from src/config/config_keys.c by `build/test_man "
                               "--write`; do not edit by hand\n");
    for (size_t i = 0; i < len; i++) {
        const struct config_key *k = &keys[i];
        if (group == NULL || strcmp(group, group_of(k)) != 0) {
            group = group_of(k);
            strbuf_addf(&b, ".SS %s\n", group);
        }
        strbuf_adds(&b, ".TP\n");
        roff_key(&b, k->name);
        strbuf_adds(&b, " (");
        roff_type(&b, k);
        strbuf_adds(&b, ")\n");
        /* Descriptions are written lower case, as messages are; here they
         * start sentences. */
        char first[2] = {k->desc[0], '\0'};
        if (first[0] >= 'a' && first[0] <= 'z')
            first[0] = (char)(first[0] - 'a' + 'A');
        roff_text(&b, first);
        roff_text(&b, k->desc + 1);
        strbuf_adds(&b, ".");
        if (k->inherit != NULL) {
            strbuf_adds(&b, " Empty or 0: the value of ");
            roff_key(&b, k->inherit);
            strbuf_adds(&b, ".");
        }
        if (k->flags & CONFIG_KEY_ZERO_DEFAULT)
            strbuf_adds(&b, " 0 means the default.");
        if (k->flags & CONFIG_KEY_SELECTS)
            strbuf_adds(&b, " Setting it selects this host source.");
        if (k->flags & CONFIG_KEY_ENV)
            strbuf_adds(&b, " ${\\fINAME\\fR} is replaced from the environment.");
        if (k->flags & CONFIG_KEY_ENV_STRICT)
            strbuf_adds(&b, " ${\\fINAME\\fR} is replaced from the environment; an unset or "
                            "empty variable is an error.");
        if (k->flags & CONFIG_KEY_SECRET)
            strbuf_adds(&b, " Secret: never logged or shown.");
        if (k->flags & CONFIG_KEY_RESTART)
            strbuf_adds(&b, " A change needs a restart: SIGHUP logs it and keeps the running "
                            "value.");
        strbuf_adds(&b, "\n");
    }
    strbuf_adds(&b, END_MARK "\n");
    return strbuf_take(&b);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct strbuf b = {0};
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        strbuf_add(&b, buf, n);
    fclose(f);
    return b.p != NULL ? strbuf_take(&b) : calloc(1, 1);
}

/* The section in @page, from the BEGIN line to the end of the END line. */
static bool find_section(const char *page, const char **begin, const char **end)
{
    *begin = strstr(page, BEGIN_MARK);
    const char *e = *begin != NULL ? strstr(*begin, END_MARK) : NULL;
    if (e == NULL)
        return false;
    const char *nl = strchr(e, '\n');
    *end = nl != NULL ? nl + 1 : e + strlen(e); /* the END line may be the last, unended */
    return true;
}

static void test_keys_section_matches_the_table(void **state)
{
    (void)state;
    char *page = read_file(MAN_PAGE);
    if (page == NULL)
        fail_msg("cannot read %s", MAN_PAGE);
    const char *begin, *end;
    if (!find_section(page, &begin, &end))
        fail_msg("%s: no \"%s\" ... \"%s\" section", MAN_PAGE, BEGIN_MARK, END_MARK);
    char *want = keys_section();
    size_t have_len = (size_t)(end - begin);
    bool same = have_len == strlen(want) && memcmp(begin, want, have_len) == 0;
    free(want);
    free(page);
    if (!same)
        fail_msg("%s: the configuration keys differ from src/config/config_keys.c; run "
                 "build/test_man --write and commit the page",
                 MAN_PAGE);
}

/* Every key of the table appears in the page (a check of the generator). */
static void test_every_key_is_in_the_page(void **state)
{
    (void)state;
    char *section = keys_section();
    size_t len;
    const struct config_key *keys = config_keys_table(&len);
    for (size_t i = 0; i < len; i++) {
        struct strbuf b = {0};
        roff_key(&b, keys[i].name);
        if (strstr(section, b.p) == NULL)
            fail_msg("key %s is missing from the generated section", keys[i].name);
        strbuf_deinit(&b);
    }
    free(section);
}

static int write_page(void)
{
    char *page = read_file(MAN_PAGE);
    const char *begin, *end;
    if (page == NULL || !find_section(page, &begin, &end)) {
        fprintf(stderr, "test_man: %s: cannot read it, or it has no keys section\n", MAN_PAGE);
        free(page);
        return 1;
    }
    char *section = keys_section();
    FILE *f = fopen(MAN_PAGE, "wb");
    int rc = f == NULL;
    if (f != NULL) {
        fwrite(page, 1, (size_t)(begin - page), f);
        fputs(section, f);
        fputs(end, f);
        rc = fclose(f) != 0;
    }
    if (rc != 0)
        fprintf(stderr, "test_man: cannot write %s\n", MAN_PAGE);
    else
        printf("test_man: wrote the configuration keys into %s\n", MAN_PAGE);
    free(section);
    free(page);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--write") == 0)
        return write_page();
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_keys_section_matches_the_table),
            cmocka_unit_test(test_every_key_is_in_the_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
