/* SPDX-License-Identifier: MIT */
/* The project's hash functions. hash_str() is the one for tables: SipHash-2-4
 * (libsodium's crypto_shorthash) under a key drawn from the kernel's random
 * source once per process, so names a client chooses cannot be computed
 * offline to collide in our hash maps. hash_stable64() is the one for ids
 * that are persisted or compared across processes. Any thread. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define HASH_KEY_SIZE 16

/* Draws the process key (getrandom(2) through libsodium) unless that was
 * done already. Thread-safe; hash_str() does it on first use, so calling it
 * at start only moves the work there. Aborts, as running out of memory does,
 * if libsodium cannot initialize. */
void hash_init(void);
/* SipHash-2-4 of @len bytes at @data under @key, read as a little-endian
 * 64-bit number. Pure. */
uint64_t hash_bytes_keyed(const unsigned char key[HASH_KEY_SIZE], const void *data, size_t len);
/* SipHash-2-4 of the string @s (without its NUL) under the process key. */
uint64_t hash_str(const char *s);
/* FNV-1a 64 of @len bytes at @data: the same value on every machine, in
 * every process and in every version. For ids written to disk or agreed on
 * by several nodes without talking (raft node ids), never for hash tables
 * that hold names a client chooses (anyone can compute collisions). Pure. */
uint64_t hash_stable64(const void *data, size_t len);
