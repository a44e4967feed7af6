/* SPDX-License-Identifier: GPL-2.0 */
/*
 * llmctl-print.h - one call prints a value both as text and as JSON.
 *
 * The idea is iproute2's (lib/json_print.c): a command prints through
 * calls such as
 *
 *	print_u64(PRINT_ANY, "hbm_total", "  hbm %s\n", v);
 *
 * and the mode chosen once (print_init()) decides what the call does. In
 * text mode a call whose type has PRINT_FP prints the value with its
 * printf format (nothing when the format is NULL); in JSON mode a call
 * whose type has PRINT_JSON adds the value to the object being built
 * under @key (or appends it to the array being built when @key is NULL).
 * So the text and the JSON of a command come from the same calls and the
 * same variables: they cannot drift apart. PRINT_FP and PRINT_JSON alone
 * are for what only one form has (a table header; a raw value beside its
 * human form).
 *
 * The JSON is built with json-c and written by print_end(), one object on
 * one line: print_start() makes the object and its "schema" member,
 * print_open_object()/print_open_array() nest. Text is written as the
 * calls come. In the JSON, each byte of a string that is not valid UTF-8
 * becomes U+FFFD; in the text, print_string() writes control characters
 * and backslashes as \xNN (a model's or a region's name cannot move the
 * cursor).
 *
 * Each format takes exactly one argument, of the value's type:
 * print_string() and print_null() a string, print_uint() unsigned int,
 * print_int() int, print_u64() uint64_t (PRIu64), print_float() double,
 * print_bool() "yes" or "no", print_bytes() the human form ("1.5 GiB").
 *
 * Not thread-safe: one printer per process.
 */
#ifndef LLMCTL_PRINT_H
#define LLMCTL_PRINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum print_type {
	PRINT_FP = 1,		/* text only */
	PRINT_JSON = 2,		/* JSON only */
	PRINT_ANY = PRINT_FP | PRINT_JSON,
};

/* Where and how to print: @json true for JSON. Default: stdout, text. */
void print_init(FILE *out, bool json);
bool print_is_json(void);

/* Start an object with "schema": @schema (JSON); nothing in text mode. */
void print_start(const char *schema);
/*
 * Write the object (JSON: on one line) and flush the output.
 * Return: 0, -ENOMEM if building the JSON ran out of memory, -EINVAL if
 * the opens and closes did not pair up, or the errno of a failed write.
 */
int print_end(void);

/* JSON only: nest an object or an array under @key (NULL in an array). */
void print_open_object(const char *key);
void print_close_object(void);
void print_open_array(const char *key);
void print_close_array(void);

/* @s NULL: JSON null, and "-" for the text */
void print_string(enum print_type t, const char *key, const char *fmt, const char *s);
void print_uint(enum print_type t, const char *key, const char *fmt, unsigned int v);
void print_int(enum print_type t, const char *key, const char *fmt, int v);
void print_u64(enum print_type t, const char *key, const char *fmt, uint64_t v);
/* JSON: a number with 3 decimals (null if not finite) */
void print_float(enum print_type t, const char *key, const char *fmt, double v);
void print_bool(enum print_type t, const char *key, const char *fmt, bool v);
/* JSON null; the text prints @text */
void print_null(enum print_type t, const char *key, const char *fmt, const char *text);
/* JSON: the number of bytes; text: human_bytes() of it */
void print_bytes(enum print_type t, const char *key, const char *fmt, uint64_t v);
/* text only, printf-style */
void print_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "1.5 GiB" (binary units, "512 B" below 1 KiB); @buf holds 16 bytes */
const char *human_bytes(uint64_t v, char *buf, size_t len);
/* "1.23 GB/s" with @what "B": decimal, as bus and network rates are */
const char *human_rate(double v, const char *what, char *buf, size_t len);

#endif /* LLMCTL_PRINT_H */
