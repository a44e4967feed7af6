/* SPDX-License-Identifier: GPL-2.0 */
/*
 * test-json.h - how the tests read what llmctl and the shard planner
 * print: json-c, strictly, and typed look-ups that fail on a wrong type as
 * on a missing member (tools/test_shard.c, selftests/llmctl).
 */
#ifndef LLMDEV_TEST_JSON_H
#define LLMDEV_TEST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/**
 * jparse() - parse one JSON text with json-c
 * @text:   NUL-terminated
 * @err:    on failure, what was wrong and where; may be NULL
 * @errlen: its size
 *
 * json-c in strict mode with UTF-8 validation: no trailing commas, no
 * leading zeros, no invalid UTF-8; and nothing but white space may follow
 * the value. The value must be an object or an array.
 *
 * Return: the value, to be released with json_object_put(); NULL on error.
 */
struct json_object *jparse(const char *text, char *err, size_t errlen);

/**
 * jget() - a member of an object or an element of an array, by path
 * @v:    the object or array (NULL is fine)
 * @path: member names and array indexes separated by '/', e.g.
 *        "cards/0/links/2/state"; "" is @v itself
 *
 * Return: the value, or NULL if there is no such path. json-c's null is
 * NULL too: tell it apart with jnull().
 */
struct json_object *jget(struct json_object *v, const char *path);

/* the string, or NULL if missing or not a string */
const char *jstr(struct json_object *v, const char *path);
/* the value, or @def if missing or not an integer >= 0 */
uint64_t juint(struct json_object *v, const char *path, uint64_t def);
/* the value, or @def if missing or not an integer in int's range */
int jint(struct json_object *v, const char *path, int def);
/* the value of an integer or a finite number, or @def */
double jnum(struct json_object *v, const char *path, double def);
/* 1 true, 0 false, -1 missing or not a boolean */
int jbool(struct json_object *v, const char *path);
/* is the member there and null? */
bool jnull(struct json_object *v, const char *path);
/* is the member there (null or not)? */
bool jhas(struct json_object *v, const char *path);
/* the elements of an array, or -1 if missing or not an array */
int jlen(struct json_object *v, const char *path);
/* element @i of the array at @path, or NULL */
struct json_object *jat(struct json_object *v, const char *path, size_t i);

#endif /* LLMDEV_TEST_JSON_H */
