// SPDX-License-Identifier: GPL-2.0
/*
 * test-json.c - how the tests read JSON: json-c, strictly, with typed
 * look-ups by path (see test-json.h).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-json.h"

struct json_object *jparse(const char *text, char *err, size_t errlen)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *v = NULL;
	enum json_tokener_error e;
	size_t len = strlen(text), end;

	if (!tok) {
		if (err)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	v = json_tokener_parse_ex(tok, text, (int)len);
	e = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (e != json_tokener_success) {
		if (err)
			snprintf(err, errlen, "offset %zu: %s", end,
				 e == json_tokener_continue ? "the text ends inside the value" :
				 json_tokener_error_desc(e));
		json_object_put(v);
		return NULL;
	}
	end += strspn(text + end, " \t\r\n");
	if (end != len || !(json_object_is_type(v, json_type_object) ||
			    json_object_is_type(v, json_type_array))) {
		if (err)
			snprintf(err, errlen, end != len ? "offset %zu: text after the value" :
				 "offset %zu: not an object or an array", end);
		json_object_put(v);
		return NULL;
	}
	return v;
}

/* 0 and the value (NULL for null) at @path, or -1 if it is not there */
static int lookup(struct json_object *v, const char *path, struct json_object **res)
{
	char *ptr;
	int ret;

	*res = NULL;
	if (!v)
		return -1;
	if (!*path) {
		*res = v;
		return 0;
	}
	/* "a/0/b" is the JSON pointer "/a/0/b" (RFC 6901) */
	ptr = malloc(strlen(path) + 2);
	if (!ptr)
		return -1;
	ptr[0] = '/';
	strcpy(ptr + 1, path);
	ret = json_pointer_get(v, ptr, res);
	free(ptr);
	return ret ? -1 : 0;
}

struct json_object *jget(struct json_object *v, const char *path)
{
	struct json_object *res;

	return lookup(v, path, &res) ? NULL : res;
}

static struct json_object *typed(struct json_object *v, const char *path, json_type type)
{
	struct json_object *res = jget(v, path);

	return res && json_object_is_type(res, type) ? res : NULL;
}

const char *jstr(struct json_object *v, const char *path)
{
	struct json_object *s = typed(v, path, json_type_string);

	return s ? json_object_get_string(s) : NULL;
}

uint64_t juint(struct json_object *v, const char *path, uint64_t def)
{
	struct json_object *n = typed(v, path, json_type_int);

	/* json-c keeps integers above INT64_MAX as uint64 */
	if (!n || (json_object_get_int64(n) < 0 && json_object_get_uint64(n) <= INT64_MAX))
		return def;
	return json_object_get_uint64(n);
}

int jint(struct json_object *v, const char *path, int def)
{
	struct json_object *n = typed(v, path, json_type_int);
	int64_t i;

	if (!n)
		return def;
	errno = 0;
	i = json_object_get_int64(n);
	return errno || i < INT_MIN || i > INT_MAX ? def : (int)i;
}

double jnum(struct json_object *v, const char *path, double def)
{
	struct json_object *n = jget(v, path);
	double d;

	if (!n || !(json_object_is_type(n, json_type_int) ||
		    json_object_is_type(n, json_type_double)))
		return def;
	d = json_object_get_double(n);
	return isfinite(d) ? d : def;
}

int jbool(struct json_object *v, const char *path)
{
	struct json_object *b = typed(v, path, json_type_boolean);

	return b ? json_object_get_boolean(b) : -1;
}

bool jnull(struct json_object *v, const char *path)
{
	struct json_object *res;

	return !lookup(v, path, &res) && !res;
}

bool jhas(struct json_object *v, const char *path)
{
	struct json_object *res;

	return !lookup(v, path, &res);
}

int jlen(struct json_object *v, const char *path)
{
	struct json_object *a = typed(v, path, json_type_array);

	return a ? (int)json_object_array_length(a) : -1;
}

struct json_object *jat(struct json_object *v, const char *path, size_t i)
{
	struct json_object *a = typed(v, path, json_type_array);

	return a && i < json_object_array_length(a) ? json_object_array_get_idx(a, i) : NULL;
}
