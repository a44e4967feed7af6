// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl-print.c - one call prints a value as text and as JSON (see
 * llmctl-print.h). The JSON is built and serialized by json-c.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "llmctl-print.h"

#define PRINT_DEPTH	16	/* nesting of objects and arrays */

static FILE *out;
static bool json_mode;
/* the object or array being built is stack[depth - 1]; stack[0] the root */
static struct json_object *stack[PRINT_DEPTH];
static unsigned int depth;
static int error;	/* the first failure since print_start(), negative errno */

static FILE *output(void)
{
	return out ? out : stdout;
}

static void drop(void)
{
	if (depth)
		json_object_put(stack[0]);
	depth = 0;
}

void print_init(FILE *f, bool json)
{
	drop();
	out = f;
	json_mode = json;
	error = 0;
}

bool print_is_json(void)
{
	return json_mode;
}

static void fail(int err)
{
	if (!error)
		error = err;
}

/*
 * Add @v to the container being built; it takes the reference. NULL is
 * JSON null to json-c: @v NULL with @null false means out of memory.
 */
static void add_value(const char *key, struct json_object *v, bool null)
{
	struct json_object *top;

	if (!v && !null) {
		fail(-ENOMEM);
		return;
	}
	if (!depth) {
		json_object_put(v);
		fail(-EINVAL);
		return;
	}
	top = stack[depth - 1];
	if (json_object_is_type(top, json_type_object)) {
		if (!key) {
			json_object_put(v);
			fail(-EINVAL);
		} else if (json_object_object_add(top, key, v)) {
			json_object_put(v);
			fail(-ENOMEM);
		}
	} else if (json_object_array_add(top, v)) {
		json_object_put(v);
		fail(-ENOMEM);
	}
}

static void add(const char *key, struct json_object *v)
{
	add_value(key, v, false);
}

static void add_null(const char *key)
{
	add_value(key, NULL, true);
}

/* What a call of type @t does now: JSON, text, or nothing. */
static bool to_json(enum print_type t)
{
	return json_mode && (t & PRINT_JSON);
}

static bool to_text(enum print_type t, const char *fmt)
{
	return !json_mode && (t & PRINT_FP) && fmt;
}

void print_start(const char *schema)
{
	if (!json_mode)
		return;
	drop();
	error = 0;
	stack[0] = json_object_new_object();
	if (!stack[0]) {
		fail(-ENOMEM);
		return;
	}
	depth = 1;
	print_string(PRINT_JSON, "schema", NULL, schema);
}

int print_end(void)
{
	FILE *f = output();
	int ret = 0;

	if (json_mode) {
		const char *s = NULL;

		ret = error;
		if (!ret && depth != 1)
			ret = -EINVAL;
		if (!ret) {
			s = json_object_to_json_string_ext(stack[0], JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE);
			if (!s)
				ret = -ENOMEM;
		}
		if (s) {
			fputs(s, f);
			fputc('\n', f);
		}
		drop();
		error = 0;
	}
	errno = 0;
	if ((fflush(f) == EOF || ferror(f)) && !ret)
		ret = errno ? -errno : -EIO;
	clearerr(f);
	return ret;
}

static void open_container(const char *key, struct json_object *c)
{
	if (!c) {
		fail(-ENOMEM);
		return;
	}
	if (depth >= PRINT_DEPTH) {
		json_object_put(c);
		fail(-EINVAL);
		return;
	}
	/* the parent holds the reference; the stack borrows it */
	add(key, c);
	if (!error)
		stack[depth++] = c;
}

void print_open_object(const char *key)
{
	if (json_mode && !error)
		open_container(key, json_object_new_object());
}

void print_open_array(const char *key)
{
	if (json_mode && !error)
		open_container(key, json_object_new_array());
}

static void close_container(json_type type)
{
	if (!json_mode || error)
		return;
	if (depth < 2 || !json_object_is_type(stack[depth - 1], type)) {
		fail(-EINVAL);
		return;
	}
	depth--;
}

void print_close_object(void)
{
	close_container(json_type_object);
}

void print_close_array(void)
{
	close_container(json_type_array);
}

/*
 * The length of the valid UTF-8 sequence at @s (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0.
 */
static size_t utf8_seq(const unsigned char *s)
{
	size_t n, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	/* the second byte's range excludes overlong forms and surrogates */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)	/* also stops at the NUL */
			return 0;
	return n;
}

/* A JSON string of @s with each byte that is not valid UTF-8 as U+FFFD. */
static struct json_object *json_string(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	struct json_object *v;
	size_t bad = 0, i, n;
	char *copy, *p;

	for (i = 0; s[i]; i += n ? n : 1) {
		n = utf8_seq(s + i);
		bad += !n;
	}
	if (!bad)
		return json_object_new_string(str);
	copy = malloc(strlen(str) + 2 * bad + 1);
	if (!copy)
		return NULL;
	for (i = 0, p = copy; s[i]; i += n ? n : 1) {
		n = utf8_seq(s + i);
		if (n) {
			memcpy(p, s + i, n);
			p += n;
		} else {
			memcpy(p, "\xef\xbf\xbd", 3);
			p += 3;
		}
	}
	*p = 0;
	v = json_object_new_string(copy);
	free(copy);
	return v;
}

static bool text_escaped(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == '\\';
}

/* @s with control characters and backslashes as \xNN */
static void print_text_string(const char *fmt, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = 0, i;
	char *copy, *p;

	for (i = 0; s[i]; i++)
		n += text_escaped(s[i]);
	copy = n ? malloc(i + 3 * n + 1) : NULL;
	if (!copy) {	/* nothing to escape (or no memory: as it is) */
		fprintf(output(), fmt, str);
		return;
	}
	for (i = 0, p = copy; s[i]; i++) {
		if (text_escaped(s[i]))
			p += sprintf(p, "\\x%02x", s[i]);
		else
			*p++ = s[i];
	}
	*p = 0;
	fprintf(output(), fmt, copy);
	free(copy);
}

void print_string(enum print_type t, const char *key, const char *fmt, const char *s)
{
	if (to_json(t))
		s ? add(key, json_string(s)) : add_null(key);
	else if (to_text(t, fmt))
		print_text_string(fmt, s ? s : "-");
}

void print_null(enum print_type t, const char *key, const char *fmt, const char *text)
{
	if (to_json(t))
		add_null(key);
	else if (to_text(t, fmt))
		fprintf(output(), fmt, text);
}

void print_uint(enum print_type t, const char *key, const char *fmt, unsigned int v)
{
	if (to_json(t))
		add(key, json_object_new_uint64(v));
	else if (to_text(t, fmt))
		fprintf(output(), fmt, v);
}

void print_int(enum print_type t, const char *key, const char *fmt, int v)
{
	if (to_json(t))
		add(key, json_object_new_int64(v));
	else if (to_text(t, fmt))
		fprintf(output(), fmt, v);
}

void print_u64(enum print_type t, const char *key, const char *fmt, uint64_t v)
{
	if (to_json(t))
		add(key, json_object_new_uint64(v));
	else if (to_text(t, fmt))
		fprintf(output(), fmt, v);
}

void print_float(enum print_type t, const char *key, const char *fmt, double v)
{
	if (to_json(t)) {
		char s[64];

		if (!isfinite(v)) {
			add_null(key);
			return;
		}
		snprintf(s, sizeof(s), "%.3f", v);
		add(key, json_object_new_double_s(v, s));
	} else if (to_text(t, fmt)) {
		fprintf(output(), fmt, v);
	}
}

void print_bool(enum print_type t, const char *key, const char *fmt, bool v)
{
	if (to_json(t))
		add(key, json_object_new_boolean(v));
	else if (to_text(t, fmt))
		fprintf(output(), fmt, v ? "yes" : "no");
}

void print_bytes(enum print_type t, const char *key, const char *fmt, uint64_t v)
{
	char b[16];

	if (to_json(t))
		add(key, json_object_new_uint64(v));
	else if (to_text(t, fmt))
		fprintf(output(), fmt, human_bytes(v, b, sizeof(b)));
}

void print_text(const char *fmt, ...)
{
	va_list ap;

	if (json_mode)
		return;
	va_start(ap, fmt);
	vfprintf(output(), fmt, ap);
	va_end(ap);
}

const char *human_bytes(uint64_t v, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double d = (double)v;
	unsigned int i = 0;

	while (d >= 1024 && i < sizeof(unit) / sizeof(unit[0]) - 1) {
		d /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%" PRIu64 " B", v);
	else
		snprintf(buf, len, "%.1f %s", d, unit[i]);
	return buf;
}

const char *human_rate(double v, const char *what, char *buf, size_t len)
{
	static const char *const unit[] = { "", "k", "M", "G", "T" };
	unsigned int i = 0;

	while (v >= 1000 && i < sizeof(unit) / sizeof(unit[0]) - 1) {
		v /= 1000;
		i++;
	}
	snprintf(buf, len, "%.*f %s%s/s", i ? 2 : 0, v, unit[i], what);
	return buf;
}
