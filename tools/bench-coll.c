// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev-bench: AllReduce (f32 sum, out of place) over cards N ..
 * N + ranks - 1, which must form a ring of peer links.
 *
 * Per iteration every rank gets fresh input: element k of rank r is
 * base(k) + 1024 a(r), where base(k), 0 .. 1023, comes from a seed per
 * iteration and varies along the buffer, and the a(r) are distinct
 * positive integers whose sum is a power of two P >= ranks. Every value
 * and every sum is an integer below 2^24, exact in f32 whatever the order
 * of the additions; a contribution missing, counted twice or taken from
 * the wrong rank or offset changes the sum of that element. Each rank's
 * values lie in one binade ([1024 a, 1024 a + 1023]), and so do the sums
 * ([1024 P, 1024 P + 1023 ranks]): the floats are made with integer
 * instructions and a fixed exponent (under TCG every float instruction is
 * a call into softfloat, which made writing the input take longer than
 * the AllReduce). The output half of every rank's region is overwritten
 * with NaN before each AllReduce, together with the input (one untimed
 * transfer), and after it every rank's whole result is read back and
 * compared with the sums computed here.
 *
 * algbw = bytes per rank / time, busbw = algbw * 2 (ranks - 1) / ranks:
 * what each link of the ring carries (nccl-tests' definitions).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"

#define BASE_STEP	0x9e3779b1u	/* odd: base() runs through its range */

/*
 * Element k: the f32 of mul * base(k) + add, where every such value lies
 * in the binade of @add (the caller makes sure): exponent and shift are
 * the same for all, no float instruction is needed.
 */
static void ar_fill(uint32_t *v, uint64_t count, uint64_t seed, uint32_t mul,
		    uint32_t add)
{
	unsigned int e = 31 - __builtin_clz(add), sh = 23 - e;
	uint32_t hi = (127u + e) << 23, w = (uint32_t)seed;
	uint64_t k;

	for (k = 0; k < count; k++, w += BASE_STEP)
		v[k] = hi | (((mul * (w >> 22) + add) << sh) & 0x7fffffu);
}

/* a(r): 1, 2, .., n - 1, and the last one makes the sum a power of two */
static uint32_t ar_offset(unsigned int n, unsigned int r, uint32_t *sum)
{
	uint32_t part = (n - 1) * n / 2, p = 1;

	while (p < part + n)
		p <<= 1;
	*sum = p;
	return r < n - 1 ? r + 1 : p - part;
}

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

struct ar_ctx {
	struct bench *b;
	struct llmdev **devs;
	struct llmdev_group *g;
	unsigned int n;
	uint64_t size, count;
	struct llmdev_coll_buf bufs[LLMDEV_MAX_RANKS];
	uint64_t mmap_offset[LLMDEV_MAX_RANKS];
	uint32_t *io;		/* 2 * size: the input (f32), then NaN */
	float *out;		/* size: a rank's result */
	uint32_t *want;		/* size: the sums (f32) */
	double stage_s, check_s;	/* untimed: input written, results checked */
};

static const char *ar_name(const struct ar_ctx *c, char *buf, size_t len)
{
	char sz[16];

	snprintf(buf, len, "%u ranks x %s", c->n, fmt_size(c->size, sz, sizeof(sz)));
	return buf;
}

/* --inject allreduce: change one element of the last rank's result */
static int ar_corrupt(struct ar_ctx *c)
{
	unsigned int r = c->n - 1;
	float *p = llmdev_hbm_map(c->devs[r], c->mmap_offset[r], 2 * c->size,
				  PROT_READ | PROT_WRITE);

	if (!p)
		return -errno;
	p[c->count + c->count / 2] += 1.0f;
	llmdev_hbm_unmap(p, 2 * c->size);
	return 0;
}

static int ar_iteration(struct ar_ctx *c, uint64_t *ns)
{
	struct bench *b = c->b;
	uint64_t seed = pattern_seed(b->iter++, 0, 3), k, t0, fence;
	uint32_t psum;
	double t = now_s();
	unsigned int r;
	char name[48];
	float want;
	int ret, st;

	for (r = 0; r < c->n; r++) {
		ar_fill(c->io, c->count, seed, 1, 1024 * ar_offset(c->n, r, &psum));
		/* the input and, after it, NaN where the result goes */
		ret = llmdev_copy_to_hbm(c->devs[r], c->bufs[r].src_handle, 0, c->io,
					 2 * c->size, OP_TIMEOUT_NS);
		if (ret) {
			bench_error(b, "AllReduce %s: writing rank %u's input: %s",
				    ar_name(c, name, sizeof(name)), r, llmdev_strerror(ret));
			return ret;
		}
	}
	/* the sum over r of base + 1024 a(r): n base + 1024 P */
	ar_offset(c->n, 0, &psum);
	ar_fill(c->want, c->count, seed, c->n, 1024 * psum);
	c->stage_s += now_s() - t;

	t0 = now_ns();
	ret = llmdev_allreduce_submit(c->g, c->bufs, c->count, LLMDEV_DTYPE_F32,
				      LLMDEV_REDOP_SUM, &fence);
	if (!ret) {
		ret = llmdev_fence_wait(c->devs[0], fence, OP_TIMEOUT_NS, &st);
		if (!ret)
			ret = st;
	}
	*ns = now_ns() - t0;
	if (ret) {
		bench_error(b, "AllReduce %s: %s", ar_name(c, name, sizeof(name)),
			    llmdev_strerror(ret));
		return ret;
	}
	if (b->o->inject == INJECT_ALLREDUCE) {
		ret = ar_corrupt(c);
		if (ret) {
			bench_error(b, "--inject allreduce: %s", strerror(-ret));
			return ret;
		}
	}

	t = now_s();
	for (r = 0; r < c->n; r++) {
		ret = llmdev_copy_from_hbm(c->devs[r], c->bufs[r].dst_handle, c->size,
					   c->out, c->size, OP_TIMEOUT_NS);
		if (ret) {
			bench_error(b, "AllReduce %s: reading rank %u's result: %s",
				    ar_name(c, name, sizeof(name)), r, llmdev_strerror(ret));
			return ret;
		}
		if (!memcmp(c->out, c->want, c->size))
			continue;
		for (k = 0; k < c->count && !memcmp(&c->out[k], &c->want[k], 4); k++)
			;
		memcpy(&want, &c->want[k], 4);
		bench_mismatch(b, "AllReduce %s: rank %u (%s) element %llu is %g, not %g",
			       ar_name(c, name, sizeof(name)), r, llmdev_name(c->devs[r]),
			       (unsigned long long)k, c->out[k], want);
		return -EBADMSG;
	}
	c->check_s += now_s() - t;
	return 0;
}

static struct json_object *ar_entry(struct bench *b, unsigned int n, uint64_t size)
{
	const struct bench_opts *o = b->o;
	struct json_object *f = figure_new(b);
	char cards[32];

	jset_u64(f, "ranks", n);
	jset_u64(f, "size", size);
	jset_str(f, "dtype", "f32");
	jset_str(f, "op", "sum");
	jset_bool(f, "in_place", false);
	snprintf(cards, sizeof(cards), "llmdev%u..llmdev%u", o->index, o->index + n - 1);
	jset_str(f, "cards", cards);
	if (o->link_gbps >= 0)
		jset_u64(f, "link_gbps", o->link_gbps);
	else
		jset(f, "link_gbps", NULL);
	if (o->link_gbps_model >= 0)
		jset_u64(f, "link_gbps_model", o->link_gbps_model);
	return f;
}

static int ar_figure(struct ar_ctx *c)
{
	struct bench *b = c->b;
	struct json_object *f;
	struct samples s = { 0 };
	struct summary sum;
	struct sampler sp;
	double alg, bus;
	char name[48], t[2][32];
	int ret = 0;

	sampler_init(&sp, b->o, c->size >= (64u << 20) ? 1 : b->o->warmup);
	do {
		bool warm = sampler_warming(&sp);
		uint64_t ns;

		ret = ar_iteration(c, &ns);
		if (ret)
			break;
		if (!warm && samples_add(&s, ns)) {
			ret = -ENOMEM;
			break;
		}
	} while (sampler_more(&sp, s.n));
	if (ret && ret != -EBADMSG) {
		samples_free(&s);
		return BENCH_FAIL;
	}

	f = ar_entry(b, c->n, c->size);
	json_object_array_add(b->allreduce, f);
	if (ret) {
		/* the samples before the failure say nothing */
		jset_str(f, "status", "failed");
		jset_bool(f, "verified", false);
		bench_say("allreduce %-22s FAILED: the result did not verify\n",
			  ar_name(c, name, sizeof(name)));
		samples_free(&s);
		return BENCH_FAIL;
	}
	samples_summarize(&s, &sum);
	figure_summary(f, &sum);
	alg = gbps(c->size, sum.median);
	bus = alg * 2 * (c->n - 1) / c->n;
	jset_num(f, "algbw_gbps", alg);
	jset_num(f, "busbw_gbps", bus);
	jset_bool(f, "verified", true);
	/* what the checking cost, outside the samples */
	jset_num(f, "stage_s", c->stage_s);
	jset_num(f, "check_s", c->check_s);
	bench_say("allreduce %-22s median %9s  p99 %9s  algbw %7.3f  busbw %7.3f Gb/s  "
		  "link %s  n=%zu  verified\n", ar_name(c, name, sizeof(name)),
		  fmt_ns(sum.median, t[0], sizeof(t[0])), fmt_ns(sum.p99, t[1], sizeof(t[1])),
		  alg, bus, b->o->link_gbps < 0 ? "?" : b->o->link_gbps ? "paced" : "unpaced",
		  sum.n);
	samples_free(&s);
	return BENCH_OK;
}

static int ar_size(struct bench *b, struct llmdev **devs, struct llmdev_group *g,
		   unsigned int n, uint64_t size)
{
	struct ar_ctx c = {
		.b = b, .devs = devs, .g = g, .n = n, .size = size,
		.count = size / sizeof(float),
	};
	struct llmdev_hbm_alloc a;
	unsigned int r;
	char sz[16];
	int status = BENCH_FAIL, ret;

	c.io = map_anon(2 * size);
	c.out = map_anon(size);
	c.want = map_anon(size);
	if (!c.io || !c.out || !c.want) {
		bench_error(b, "out of memory for 4 x %s of host buffers",
			    fmt_size(size, sz, sizeof(sz)));
		goto out;
	}
	memset(c.io + c.count, 0xff, size);	/* NaN */
	for (r = 0; r < n; r++) {
		ret = llmdev_hbm_alloc(devs[r], 2 * size, 0, 0, NULL, &a);
		if (ret) {
			bench_error(b, "%s: allocating %s of HBM: %s", llmdev_name(devs[r]),
				    fmt_size(2 * size, sz, sizeof(sz)), llmdev_strerror(ret));
			goto out;
		}
		c.bufs[r].src_handle = c.bufs[r].dst_handle = a.handle;
		c.bufs[r].src_offset = 0;
		c.bufs[r].dst_offset = size;
		c.mmap_offset[r] = a.mmap_offset;
	}
	status = ar_figure(&c);
out:
	for (r = 0; r < n; r++)
		if (c.bufs[r].src_handle)
			llmdev_hbm_free(devs[r], c.bufs[r].src_handle);
	if (c.io)
		munmap(c.io, 2 * size);
	if (c.out)
		munmap(c.out, size);
	if (c.want)
		munmap(c.want, size);
	return status;
}

int bench_allreduce(struct bench *b)
{
	const struct bench_opts *o = b->o;
	int cards = llmdev_count(), status = BENCH_OK, ret;
	unsigned int i, j, r;

	/* a host whose cards cannot be counted is not a host without cards */
	if (cards < 0) {
		bench_error(b, "allreduce: counting the cards (/sys/class/llmdev): %s",
			    llmdev_strerror(cards));
		return BENCH_FAIL;
	}
	for (i = 0; i < o->nranks && !status; i++) {
		struct llmdev *devs[LLMDEV_MAX_RANKS] = { NULL };
		struct llmdev_group *g = NULL;
		unsigned int n = o->ranks[i];

		if (o->index + n > (unsigned int)cards) {
			char why[96];

			snprintf(why, sizeof(why), "needs %u cards from llmdev%u, the host has %d",
				 n, o->index, cards);
			for (j = 0; j < o->nar_sizes; j++) {
				struct json_object *f = ar_entry(b, n, o->ar_sizes[j]);

				figure_skip(f, why);
				json_object_array_add(b->allreduce, f);
			}
			bench_say("allreduce %u ranks: SKIP: %s\n", n, why);
			continue;
		}
		for (r = 0; r < n && !status; r++) {
			ret = llmdev_open(o->index + r, &devs[r]);
			if (ret) {
				bench_error(b, "llmdev%u: %s", o->index + r, llmdev_strerror(ret));
				status = BENCH_FAIL;
			}
		}
		if (!status) {
			ret = llmdev_group_create(devs[0], devs, n, &g);
			if (ret) {
				bench_error(b, "a group of llmdev%u..llmdev%u: %s", o->index,
					    o->index + n - 1, llmdev_strerror(ret));
				status = BENCH_FAIL;
			}
		}
		for (j = 0; j < o->nar_sizes && !status; j++)
			status = ar_size(b, devs, g, n, o->ar_sizes[j]);
		llmdev_group_destroy(g);
		for (r = 0; r < n; r++)
			llmdev_close(devs[r]);
	}
	return status;
}
