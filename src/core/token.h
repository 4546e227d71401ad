/* SPDX-License-Identifier: MIT */
/* Control tokens: named secrets kept only as keyed digests (BLAKE2b under a
 * key drawn at random per set), matched against what a request presents in
 * time that depends neither on which token matches nor on how much of a
 * secret a guess gets right. Built once, then read by any thread. */
#pragma once

#include <stddef.h>

/* Longest token name, in bytes (docs/config.md, ControlTokens). */
#define TOKEN_NAME_MAX 32
/* The name of ControlToken's secret in the audit trail. */
#define TOKEN_DEFAULT_NAME "default"

struct token_set;

/* An empty set. */
struct token_set *token_set_new(void);
/* Adds @secret (not kept) under @name (at most TOKEN_NAME_MAX bytes, longer
 * ones are cut). */
void token_set_add(struct token_set *s, const char *name, const char *secret);
/* Number of tokens in @s (NULL: 0). */
size_t token_set_len(const struct token_set *s);
/* The name of the token whose secret is @presented, or NULL when none is
 * (or @presented is NULL). Every token is compared, whichever matches. */
const char *token_set_match(const struct token_set *s, const char *presented);
/* Frees @s (NULL is fine). */
void token_set_free(struct token_set *s);
