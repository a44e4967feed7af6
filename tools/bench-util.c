// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev-bench: time, statistics, data patterns and the JSON of figures.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SEC_NS + ts.tv_nsec;
}

double now_s(void)
{
	return now_ns() / 1e9;
}

/* ---- statistics ----------------------------------------------------------------- */

int samples_add(struct samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = ns;
	return 0;
}

void samples_free(struct samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* the ceil(p * n)-th smallest (nearest rank), p in (0, 1] */
static uint64_t rank(const struct samples *s, double p)
{
	size_t k = (size_t)ceil(p * s->n);

	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return s->v[k - 1];
}

void samples_summarize(struct samples *s, struct summary *out)
{
	memset(out, 0, sizeof(*out));
	if (!s->n)
		return;
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	out->n = s->n;
	out->min = s->v[0];
	out->max = s->v[s->n - 1];
	out->median = rank(s, 0.5);
	out->p99 = rank(s, 0.99);
}

void sampler_init(struct sampler *sp, const struct bench_opts *o, unsigned int warm)
{
	sp->o = o;
	sp->warm = warm;
	sp->it = 0;
	sp->t0 = now_s();
}

bool sampler_warming(const struct sampler *sp)
{
	return sp->it < sp->warm;
}

bool sampler_more(struct sampler *sp, size_t nsamples)
{
	const struct bench_opts *o = sp->o;

	sp->it++;
	if (sp->it < sp->warm)
		return true;
	if (sp->it == sp->warm) {
		/* the sampling time starts after the warm-up */
		sp->t0 = now_s();
		return true;
	}
	if (nsamples >= o->max_samples)
		return false;
	return nsamples < o->min_samples || now_s() - sp->t0 < o->secs;
}

/* ---- patterns ------------------------------------------------------------------- */

#define PATTERN_STEP	0x9e3779b97f4a7c15ull	/* odd: words never repeat */

/* splitmix64's finalizer: a seed per (iteration, slot, salt) */
uint64_t pattern_seed(uint64_t iter, unsigned int slot, unsigned int salt)
{
	uint64_t z = iter * 0x100000001b3ull + ((uint64_t)salt << 32 | slot) +
		     0x6a09e667f3bcc909ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fill(void *buf, size_t len, uint64_t seed, uint64_t flip)
{
	uint8_t *p = buf;
	size_t words = len / 8, i;
	uint64_t w = seed;

	for (i = 0; i < words; i++, w += PATTERN_STEP) {
		uint64_t v = w ^ flip;

		memcpy(p + 8 * i, &v, 8);
	}
	for (i = 0; i < len % 8; i++)
		p[8 * words + i] = (uint8_t)((w ^ flip) >> (8 * i));
}

void pattern_fill(void *buf, size_t len, uint64_t seed)
{
	fill(buf, len, seed, 0);
}

void pattern_fill_inverse(void *buf, size_t len, uint64_t seed)
{
	fill(buf, len, seed, ~0ull);
}

size_t pattern_check(const void *buf, size_t len, uint64_t seed,
		     uint8_t *got, uint8_t *want)
{
	const uint8_t *p = buf;
	size_t words = len / 8, i, j;
	uint64_t w = seed, v;

	for (i = 0; i < words; i++, w += PATTERN_STEP) {
		memcpy(&v, p + 8 * i, 8);
		if (v != w)
			break;
	}
	/* the first differing byte, in the word that differs or in the tail */
	for (j = 8 * i; j < len; j++) {
		uint8_t e = (uint8_t)((seed + (j / 8) * PATTERN_STEP) >> (8 * (j % 8)));

		if (p[j] != e) {
			*got = p[j];
			*want = e;
			return j;
		}
	}
	return (size_t)-1;
}

/* ---- messages ------------------------------------------------------------------- */

void bench_error(struct bench *b, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("llmdev-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	b->errors++;
}

void bench_mismatch(struct bench *b, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("llmdev-bench: VERIFICATION FAILED: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	b->failures++;
}

void bench_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

/* ---- JSON ------------------------------------------------------------------------ */

void jset(struct json_object *o, const char *key, struct json_object *v)
{
	json_object_object_add(o, key, v);
}

void jset_u64(struct json_object *o, const char *key, uint64_t v)
{
	jset(o, key, json_object_new_uint64(v));
}

void jset_str(struct json_object *o, const char *key, const char *v)
{
	jset(o, key, v ? json_object_new_string(v) : NULL);
}

void jset_bool(struct json_object *o, const char *key, bool v)
{
	jset(o, key, json_object_new_boolean(v));
}

struct json_object *jnum(double v)
{
	char s[32];

	if (!isfinite(v))
		return NULL;
	snprintf(s, sizeof(s), "%.4g", v);
	/* %.4g may say 1.234e+05: json-c writes the string as given */
	return json_object_new_double_s(v, s);
}

void jset_num(struct json_object *o, const char *key, double v)
{
	jset(o, key, jnum(v));
}

struct json_object *figure_new(struct bench *b)
{
	struct json_object *f = json_object_new_object();

	jset_str(f, "status", "ok");
	jset_str(f, "run", b->o->run_name);
	jset_str(f, "kernel", b->kernel);
	jset_str(f, "clocksource", b->clocksource);
	return f;
}

void figure_summary(struct json_object *f, const struct summary *s)
{
	jset_u64(f, "samples", s->n);
	jset_u64(f, "median_ns", s->median);
	jset_u64(f, "p99_ns", s->p99);
	jset_u64(f, "min_ns", s->min);
	jset_u64(f, "max_ns", s->max);
}

void figure_skip(struct json_object *f, const char *reason)
{
	jset_str(f, "status", "skip");
	jset_str(f, "reason", reason);
	jset_bool(f, "verified", false);
}

double gbps(uint64_t bytes, uint64_t ns)
{
	return ns ? bytes * 8.0 / ns : NAN;
}

const char *fmt_ns(uint64_t ns, char *buf, size_t len)
{
	if (ns >= 10 * SEC_NS)
		snprintf(buf, len, "%.1f s", ns / 1e9);
	else if (ns >= 10000000)
		snprintf(buf, len, "%.1f ms", ns / 1e6);
	else if (ns >= 10000)
		snprintf(buf, len, "%.1f us", ns / 1e3);
	else
		snprintf(buf, len, "%llu ns", (unsigned long long)ns);
	return buf;
}

const char *fmt_size(uint64_t bytes, char *buf, size_t len)
{
	if (bytes >= (1ull << 30) && !(bytes & ((1ull << 30) - 1)))
		snprintf(buf, len, "%lluG", (unsigned long long)(bytes >> 30));
	else if (bytes >= (1ull << 20) && !(bytes & ((1ull << 20) - 1)))
		snprintf(buf, len, "%lluM", (unsigned long long)(bytes >> 20));
	else if (bytes >= 1024 && !(bytes & 1023))
		snprintf(buf, len, "%lluK", (unsigned long long)(bytes >> 10));
	else
		snprintf(buf, len, "%llu", (unsigned long long)bytes);
	return buf;
}
