// SPDX-License-Identifier: GPL-2.0
/*
 * json-check.c - a strict JSON (RFC 8259) parser for tests; see
 * json-check.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-check.h"

#define JSON_MAX_DEPTH	64

struct parser {
	const char *start, *s;
	int depth;
	char *err;
	size_t errlen;
};

static struct json *fail(struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static struct json *fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err && p->errlen && !p->err[0]) {
		n = snprintf(p->err, p->errlen, "offset %zu: ", (size_t)(p->s - p->start));
		if (n >= 0 && (size_t)n < p->errlen) {
			va_start(ap, fmt);
			vsnprintf(p->err + n, p->errlen - n, fmt, ap);
			va_end(ap);
		}
	}
	return NULL;
}

static void ws(struct parser *p)
{
	while (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')
		p->s++;
}

/* the length of the valid UTF-8 sequence at @s, or 0 */
static int utf8_len(const unsigned char *s)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	int len, i;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	/* no overlong forms, no surrogates, nothing above U+10FFFF */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

static int hex4(const char *s, unsigned int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < 4; i++) {
		char c = s[i];

		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			*v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			*v |= c - 'A' + 10;
		else
			return -1;
	}
	return 0;
}

static size_t put_utf8(char *o, unsigned int cp)
{
	if (cp < 0x80) {
		o[0] = cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = 0xc0 | cp >> 6;
		o[1] = 0x80 | (cp & 0x3f);
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = 0xe0 | cp >> 12;
		o[1] = 0x80 | ((cp >> 6) & 0x3f);
		o[2] = 0x80 | (cp & 0x3f);
		return 3;
	}
	o[0] = 0xf0 | cp >> 18;
	o[1] = 0x80 | ((cp >> 12) & 0x3f);
	o[2] = 0x80 | ((cp >> 6) & 0x3f);
	o[3] = 0x80 | (cp & 0x3f);
	return 4;
}

/* A string at p->s, decoded into a malloc()ed buffer (*@out), or NULL. */
static char *string(struct parser *p)
{
	const char *q;
	char *out, *o;

	if (*p->s != '"')
		return (char *)fail(p, "expected a string");
	/* the decoded string is never longer than the text */
	for (q = p->s + 1; *q && *q != '"'; q++)
		if (*q == '\\' && q[1])
			q++;
	out = malloc(q - p->s + 1);
	if (!out)
		return (char *)fail(p, "out of memory");
	o = out;
	p->s++;
	for (;;) {
		unsigned char c = *p->s;
		unsigned int cp, lo;
		int n;

		if (c == '"') {
			p->s++;
			break;
		}
		if (!c) {
			fail(p, "unterminated string");
			goto bad;
		}
		if (c < 0x20) {
			fail(p, "control character 0x%02x in a string", c);
			goto bad;
		}
		if (c >= 0x80) {
			n = utf8_len((const unsigned char *)p->s);
			if (!n) {
				fail(p, "invalid UTF-8 in a string");
				goto bad;
			}
			memcpy(o, p->s, n);
			o += n;
			p->s += n;
			continue;
		}
		if (c != '\\') {
			*o++ = c;
			p->s++;
			continue;
		}
		c = *++p->s;
		switch (c) {
		case '"': case '\\': case '/':
			*o++ = c;
			break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			if (hex4(p->s + 1, &cp)) {
				fail(p, "bad \\u escape");
				goto bad;
			}
			p->s += 4;
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				fail(p, "lone low surrogate \\u%04x", cp);
				goto bad;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (p->s[1] != '\\' || p->s[2] != 'u' || hex4(p->s + 3, &lo) ||
				    lo < 0xdc00 || lo > 0xdfff) {
					fail(p, "lone high surrogate \\u%04x", cp);
					goto bad;
				}
				p->s += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (!cp) {
				fail(p, "\\u0000 in a string");
				goto bad;
			}
			o += put_utf8(o, cp);
			break;
		default:
			fail(p, "bad escape '\\%c'", c ? c : '0');
			goto bad;
		}
		p->s++;
	}
	*o = 0;
	return out;
bad:
	free(out);
	return NULL;
}

static int number(struct parser *p, struct json *v)
{
	const char *start = p->s;
	bool integer = true;
	char *end;

	if (*p->s == '-')
		p->s++, integer = false;
	if (*p->s == '0')
		p->s++;
	else if (*p->s >= '1' && *p->s <= '9')
		while (*p->s >= '0' && *p->s <= '9')
			p->s++;
	else
		return fail(p, "bad number"), -1;
	if (*p->s == '.') {
		integer = false;
		p->s++;
		if (*p->s < '0' || *p->s > '9')
			return fail(p, "bad number: no digit after '.'"), -1;
		while (*p->s >= '0' && *p->s <= '9')
			p->s++;
	}
	if (*p->s == 'e' || *p->s == 'E') {
		integer = false;
		p->s++;
		if (*p->s == '+' || *p->s == '-')
			p->s++;
		if (*p->s < '0' || *p->s > '9')
			return fail(p, "bad number: no digit in the exponent"), -1;
		while (*p->s >= '0' && *p->s <= '9')
			p->s++;
	}
	v->type = JSON_NUMBER;
	v->num = strtod(start, &end);
	if (integer) {
		errno = 0;
		v->uint = strtoull(start, &end, 10);
		v->is_uint = !errno;
	}
	return 0;
}

static struct json *value(struct parser *p);

/* the elements of an array or the members of an object */
static int members(struct parser *p, struct json *v, bool object)
{
	struct json **tail = &v->child;
	char close = object ? '}' : ']';

	p->s++;
	ws(p);
	if (*p->s == close) {
		p->s++;
		return 0;
	}
	for (;;) {
		struct json *m, *o;
		char *key = NULL;

		ws(p);
		if (object) {
			key = string(p);
			if (!key)
				return -1;
			for (o = v->child; o; o = o->next) {
				if (!strcmp(o->key, key)) {
					fail(p, "duplicate member \"%s\"", key);
					free(key);
					return -1;
				}
			}
			ws(p);
			if (*p->s != ':') {
				free(key);
				return fail(p, "expected ':'"), -1;
			}
			p->s++;
		}
		m = value(p);
		if (!m) {
			free(key);
			return -1;
		}
		m->key = key;
		*tail = m;
		tail = &m->next;
		v->len++;
		ws(p);
		if (*p->s == ',') {
			p->s++;
			ws(p);
			if (*p->s == close)
				return fail(p, "trailing comma"), -1;
			continue;
		}
		if (*p->s != close)
			return fail(p, "expected ',' or '%c'", close), -1;
		p->s++;
		return 0;
	}
}

static struct json *value(struct parser *p)
{
	static const struct {
		const char *word;
		enum json_type type;
		bool boolean;
	} words[] = {
		{ "true", JSON_BOOL, true },
		{ "false", JSON_BOOL, false },
		{ "null", JSON_NULL, false },
	};
	struct json *v;
	size_t i;
	int ret = -1;

	ws(p);
	if (p->depth >= JSON_MAX_DEPTH)
		return fail(p, "nested too deep");
	v = calloc(1, sizeof(*v));
	if (!v)
		return fail(p, "out of memory");
	p->depth++;
	switch (*p->s) {
	case '{':
		v->type = JSON_OBJECT;
		ret = members(p, v, true);
		break;
	case '[':
		v->type = JSON_ARRAY;
		ret = members(p, v, false);
		break;
	case '"':
		v->type = JSON_STRING;
		v->str = string(p);
		ret = v->str ? 0 : -1;
		break;
	default:
		if (*p->s == '-' || (*p->s >= '0' && *p->s <= '9')) {
			ret = number(p, v);
			break;
		}
		for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
			if (!strncmp(p->s, words[i].word, strlen(words[i].word))) {
				p->s += strlen(words[i].word);
				v->type = words[i].type;
				v->boolean = words[i].boolean;
				ret = 0;
				break;
			}
		}
		if (ret && *p->s)
			fail(p, "unexpected '%c'", *p->s);
		else if (ret)
			fail(p, "unexpected end of text");
	}
	p->depth--;
	if (ret) {
		json_free(v);
		return NULL;
	}
	return v;
}

struct json *json_parse(const char *text, char *err, size_t errlen)
{
	struct parser p = { .start = text, .s = text, .err = err, .errlen = errlen };
	struct json *v;

	if (err && errlen)
		err[0] = 0;
	v = value(&p);
	if (!v)
		return NULL;
	ws(&p);
	if (*p.s) {
		fail(&p, "text after the value");
		json_free(v);
		return NULL;
	}
	return v;
}

void json_free(struct json *v)
{
	while (v) {
		struct json *next = v->next;

		json_free(v->child);
		free(v->key);
		free(v->str);
		free(v);
		v = next;
	}
}

const struct json *json_get(const struct json *v, const char *path)
{
	while (v && *path) {
		size_t n = strcspn(path, "/");
		const struct json *c;

		if (v->type == JSON_OBJECT) {
			for (c = v->child; c; c = c->next)
				if (strlen(c->key) == n && !strncmp(c->key, path, n))
					break;
		} else if (v->type == JSON_ARRAY) {
			char *end;
			unsigned long i = strtoul(path, &end, 10);

			if (end != path + n || !n)
				return NULL;
			for (c = v->child; c && i; c = c->next)
				i--;
		} else {
			return NULL;
		}
		v = c;
		path += n;
		if (*path == '/')
			path++;
	}
	return v;
}

const char *json_get_str(const struct json *v, const char *path)
{
	v = json_get(v, path);
	return v && v->type == JSON_STRING ? v->str : NULL;
}

uint64_t json_get_uint(const struct json *v, const char *path, uint64_t def)
{
	v = json_get(v, path);
	return v && v->type == JSON_NUMBER && v->is_uint ? v->uint : def;
}

int json_get_bool(const struct json *v, const char *path)
{
	v = json_get(v, path);
	return v && v->type == JSON_BOOL ? v->boolean : -1;
}

bool json_is_null(const struct json *v, const char *path)
{
	v = json_get(v, path);
	return v && v->type == JSON_NULL;
}

static void report(const struct json *v, void (*num)(void *, const char *, uint64_t),
		   void *arg)
{
	for (; v; v = v->next) {
		if (v->key && v->type == JSON_NUMBER && v->is_uint)
			num(arg, v->key, v->uint);
		report(v->child, num, arg);
	}
}

int json_check(const char *s, void (*num)(void *arg, const char *key, uint64_t v),
	       void *arg)
{
	struct json *v = json_parse(s, NULL, 0);

	if (!v)
		return -1;
	if (num)
		report(v, num, arg);
	json_free(v);
	return 0;
}
