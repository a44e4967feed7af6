/* SPDX-License-Identifier: GPL-2.0 */
/*
 * json-check.h - a strict JSON (RFC 8259) parser for the tests of what the
 * tools print: the shard planner's host test and the llmctl VM test.
 * Written independently of the printers it checks.
 *
 * Strict: one value and nothing else but white space; no trailing commas,
 * no leading zeros, no control characters or invalid UTF-8 in strings
 * (overlong forms and surrogates included), no lone surrogate escapes,
 * no "\u0000", no duplicate member names in an object, at most 64 levels
 * of nesting. Strings are decoded (escapes to UTF-8).
 */
#ifndef LLMDEV_JSON_CHECK_H
#define LLMDEV_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum json_type {
	JSON_NULL,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

/**
 * struct json - one parsed value
 * @type:    enum json_type
 * @key:     the member name when the value is in an object, else NULL
 * @boolean: JSON_BOOL: its value
 * @num:     JSON_NUMBER: its value (rounded to double)
 * @is_uint: JSON_NUMBER: written as a non-negative integer (no sign,
 *           fraction or exponent) that fits in 64 bits
 * @uint:    its exact value when @is_uint
 * @str:     JSON_STRING: the decoded string
 * @child:   JSON_ARRAY, JSON_OBJECT: the first element or member
 * @len:     JSON_ARRAY, JSON_OBJECT: elements or members
 * @next:    the next element or member of the parent
 */
struct json {
	enum json_type type;
	char *key;
	bool boolean;
	double num;
	bool is_uint;
	uint64_t uint;
	char *str;
	struct json *child;
	size_t len;
	struct json *next;
};

/**
 * json_parse() - parse a JSON text
 * @text:   NUL-terminated
 * @err:    on failure, "offset N: what was wrong"; may be NULL
 * @errlen: its size
 *
 * Return: the value, to be freed with json_free(); NULL if @text is not
 * one JSON value (or memory ran out).
 */
struct json *json_parse(const char *text, char *err, size_t errlen);

/** json_free() - free what json_parse() returned (NULL is fine) */
void json_free(struct json *v);

/**
 * json_get() - a member of an object, or an element of an array
 * @v:    the object or array (NULL is fine)
 * @path: member names and array indexes separated by '/', e.g.
 *        "cards/0/links/2/state"; "" is @v itself
 *
 * Return: the value, or NULL if @v has no such path.
 */
const struct json *json_get(const struct json *v, const char *path);

/* Shorthands for json_get(): NULL unless the value has that type. */
const char *json_get_str(const struct json *v, const char *path);
/* the value, or @def when missing or not a non-negative integer */
uint64_t json_get_uint(const struct json *v, const char *path, uint64_t def);
/* 1 true, 0 false, -1 missing or not a boolean */
int json_get_bool(const struct json *v, const char *path);
/* is the value there and null? */
bool json_is_null(const struct json *v, const char *path);

/**
 * json_check() - validate a JSON text and report its integer members
 * @s:   the text
 * @num: called for each object member whose value is a non-negative
 *       integer, in document order, with its name; may be NULL
 * @arg: passed to @num
 *
 * Return: 0 if @s is one JSON value and nothing else (but white space),
 * -1 otherwise.
 */
int json_check(const char *s, void (*num)(void *arg, const char *key, uint64_t v),
	       void *arg);

#endif /* LLMDEV_JSON_CHECK_H */
