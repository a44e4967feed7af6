/* SPDX-License-Identifier: GPL-2.0 */
/*
 * llmdev-bench: what its parts share (tools/bench-*.c, tools/llmdev-bench.c).
 *
 * Every figure is a list of samples (nanoseconds) summed up as median and
 * p99 (nearest rank), min and max; throughput comes from the median. Data
 * is checked on every measured operation with a pattern that changes per
 * iteration; a mismatch makes the run fail (exit 2). The results are a
 * json-c tree, schema BENCH_SCHEMA (docs/bench.md).
 */
#ifndef LLMDEV_BENCH_H
#define LLMDEV_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "llmdev.h"

#define BENCH_SCHEMA	"llmdev.bench/1"
#define BENCH_LIST_MAX	16
#define SEC_NS		1000000000ull
#define OP_TIMEOUT_NS	(60 * SEC_NS)	/* one transfer or collective */

/* Exit status of the program, and of the section functions. */
#define BENCH_OK	0
#define BENCH_USAGE	1
#define BENCH_FAIL	2

/* sections, --only */
enum {
	SEC_CLOCK	= 1u << 0,
	SEC_NULL	= 1u << 1,
	SEC_CEILING	= 1u << 2,
	SEC_DMA		= 1u << 3,
	SEC_ALLREDUCE	= 1u << 4,
	SEC_LOAD	= 1u << 5,
};

/* --inject: break the data on purpose, to test the checking itself */
enum bench_inject {
	INJECT_NONE,
	INJECT_STALE,		/* skip a transfer to the card: stale data */
	INJECT_SHORT,		/* transfers from the card one byte short */
	INJECT_HBM,		/* change a byte on the card between the directions */
	INJECT_ALLREDUCE,	/* change one element of a collective's result */
};

struct bench_opts {
	unsigned int index;			/* -d: first card */
	unsigned int sections;			/* SEC_* */
	uint64_t sizes[BENCH_LIST_MAX];		/* DMA sizes */
	unsigned int nsizes;
	unsigned int inflight[BENCH_LIST_MAX];
	unsigned int ninflight;
	unsigned int ranks[BENCH_LIST_MAX];
	unsigned int nranks;
	uint64_t ar_sizes[BENCH_LIST_MAX];	/* bytes per rank */
	unsigned int nar_sizes;
	double secs;				/* sampling time per figure */
	unsigned int min_samples, max_samples, warmup;
	int link_gbps;				/* recorded: 0 unpaced, -1 unknown */
	int link_gbps_model;			/* the cards' link-gbps, -1 unknown */
	const char *run_name;
	const char *json_path;
	const char *load_file;
	char **load_cmd;			/* argv after "--" */
	bool load_verify;
	const char *load_between;		/* sh command undoing a load, or NULL */
	unsigned int load_rounds;		/* timed rounds, 1 .. BENCH_LOAD_ROUNDS_MAX */
	enum bench_inject inject;
	bool smoke;
};

#define BENCH_LOAD_ROUNDS_MAX	100

/* the state of one run */
struct bench {
	const struct bench_opts *o;
	struct json_object *root;	/* the results */
	struct json_object *dma;	/* the "dma" array */
	struct json_object *allreduce;	/* the "allreduce" array */
	const char *kernel;		/* for every figure's conditions */
	const char *clocksource;
	uint64_t iter;			/* global iteration: seeds never repeat */
	unsigned int failures;		/* verification failures */
	unsigned int errors;		/* other failures */
};

/* ---- time and statistics ------------------------------------------------- */

uint64_t now_ns(void);
double now_s(void);

struct samples {
	uint64_t *v;
	size_t n, cap;
};

struct summary {
	size_t n;
	uint64_t min, median, p99, max;
};

int samples_add(struct samples *s, uint64_t ns);
void samples_free(struct samples *s);
/* sorts @s; median and p99 are nearest-rank: the ceil(p * n)-th smallest */
void samples_summarize(struct samples *s, struct summary *out);

/*
 * The sampling loop of one figure: at least @warm iterations not counted,
 * then samples until there are o->max_samples, or o->min_samples and
 * o->secs of wall time have passed.
 */
struct sampler {
	const struct bench_opts *o;
	unsigned int warm, it;
	double t0;
};

void sampler_init(struct sampler *sp, const struct bench_opts *o, unsigned int warm);
/* is the iteration about to run a warm-up one? */
bool sampler_warming(const struct sampler *sp);
/* after an iteration: true to run another */
bool sampler_more(struct sampler *sp, size_t nsamples);

/* ---- data patterns --------------------------------------------------------- */

/* A seed for slot @slot of global iteration @iter; @salt tells uses apart. */
uint64_t pattern_seed(uint64_t iter, unsigned int slot, unsigned int salt);
/*
 * Byte i of the pattern is byte (i % 8) (little endian) of the 64-bit word
 * seed + (i / 8) * PATTERN_STEP: every word differs from every other
 * word of the buffer and from the same word under any other seed.
 */
void pattern_fill(void *buf, size_t len, uint64_t seed);
/* the pattern's complement: differs from the pattern in every byte */
void pattern_fill_inverse(void *buf, size_t len, uint64_t seed);
/* (size_t)-1 if @buf holds the pattern, else the first byte that differs */
size_t pattern_check(const void *buf, size_t len, uint64_t seed,
		     uint8_t *got, uint8_t *want);

/* ---- reporting ------------------------------------------------------------- */

/* a failure that is not about data: message, counted, the run fails */
void bench_error(struct bench *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* a verification failure: message, counted, the run fails */
void bench_mismatch(struct bench *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* progress, on stdout */
void bench_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* a figure's JSON object with its common members */
struct json_object *figure_new(struct bench *b);
void figure_summary(struct json_object *fig, const struct summary *s);
void figure_skip(struct json_object *fig, const char *reason);
void jset(struct json_object *o, const char *key, struct json_object *v);
void jset_u64(struct json_object *o, const char *key, uint64_t v);
void jset_str(struct json_object *o, const char *key, const char *v);
void jset_bool(struct json_object *o, const char *key, bool v);
/* a rate or ratio, rounded to 4 significant digits */
struct json_object *jnum(double v);	/* 4 significant digits; NULL if not finite */
void jset_num(struct json_object *o, const char *key, double v);

/* bits per second in Gb/s (1e9 bit/s) for @bytes moved in @ns */
double gbps(uint64_t bytes, uint64_t ns);
const char *fmt_ns(uint64_t ns, char *buf, size_t len);
const char *fmt_size(uint64_t bytes, char *buf, size_t len);

/* ---- the sections ------------------------------------------------------------ */

int bench_clock(struct bench *b);
int bench_null(struct bench *b);
int bench_ceiling(struct bench *b);
int bench_dma(struct bench *b);
int bench_allreduce(struct bench *b);
int bench_load(struct bench *b);

#endif /* LLMDEV_BENCH_H */
