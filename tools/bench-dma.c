// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev-bench: the cost of a clock read and of a null ioctl, the card
 * model's copy ceiling, and DMA between host memory and one card.
 *
 * A DMA figure is (size, transfers in flight, how they are submitted);
 * one iteration writes a fresh pattern into the host source buffers,
 * moves it to the card (timed: the host-to-card sample), fills the host
 * destination buffers with the pattern's complement, moves the card's
 * bytes back (timed: the card-to-host sample) and checks every byte. A
 * transfer to the card that did not happen leaves the previous
 * iteration's pattern there, one from the card that did not happen leaves
 * the complement: either fails the check.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* ---- the clock and the null ioctl ----------------------------------------------- */

#define CALLS_PER_SAMPLE	64
#define CALL_SAMPLES		200

/*
 * Each sample is the mean of CALLS_PER_SAMPLE back-to-back calls, so that
 * the two clock reads around it (which may cost more than the call) count
 * for 1/CALLS_PER_SAMPLE each. @call returns 0, or -1 when the call did
 * not do what was expected (it says so).
 */
/* One sample: the mean of @n back-to-back calls, in *@ns. */
static int call_sample(struct bench *b, int (*call)(struct bench *b, int fd), int fd,
		       unsigned int n, uint64_t *ns)
{
	uint64_t t0 = now_ns();
	unsigned int j;
	int ret = 0;

	for (j = 0; j < n && !ret; j++)
		ret = call(b, fd);
	*ns = (now_ns() - t0 + n / 2) / n;
	return ret;
}

static int time_calls(struct bench *b, int (*call)(struct bench *b, int fd), int fd,
		      struct summary *out)
{
	struct samples s = { 0 };
	unsigned int i;
	uint64_t ns;
	int ret = 0;

	for (i = 0; i < CALL_SAMPLES + 10 && !ret; i++) {
		ret = call_sample(b, call, fd, CALLS_PER_SAMPLE, &ns);
		/* the first 10 samples warm up */
		if (!ret && i >= 10)
			ret = samples_add(&s, ns);
	}
	if (!ret)
		samples_summarize(&s, out);
	samples_free(&s);
	return ret;
}

static int call_clock(struct bench *b, int fd)
{
	struct timespec ts;

	(void)b;
	(void)fd;
	return clock_gettime(CLOCK_MONOTONIC, &ts);
}

static int call_info(struct bench *b, int fd)
{
	struct llmdev_info info = { .size = sizeof(info) };

	if (!ioctl(fd, LLMDEV_INFO, &info))
		return 0;
	bench_error(b, "LLMDEV_INFO: %s", strerror(errno));
	return -1;
}

static int call_enotty(struct bench *b, int fd)
{
	if (ioctl(fd, _IO(LLMDEV_TYPE, 0xff), NULL) == -1 && errno == ENOTTY)
		return 0;
	bench_error(b, "an unknown ioctl: %s, expected ENOTTY", strerror(errno));
	return -1;
}

static int call_fence_poll(struct bench *b, int fd)
{
	struct llmdev_fence_wait w = { .size = sizeof(w), .flags = LLMDEV_WAIT_ANY };

	if (ioctl(fd, LLMDEV_FENCE_WAIT, &w) == -1 && errno == ENOENT)
		return 0;
	bench_error(b, "LLMDEV_FENCE_WAIT without fences: %s, expected ENOENT",
		    strerror(errno));
	return -1;
}

static struct json_object *call_figure(struct bench *b, const char *what,
				       const char *ioctl_name, const struct summary *s)
{
	struct json_object *f = figure_new(b);
	char t[2][32];

	jset_str(f, "call", what);
	if (ioctl_name)
		jset_str(f, "ioctl", ioctl_name);
	figure_summary(f, s);
	jset_u64(f, "calls_per_sample", CALLS_PER_SAMPLE);
	bench_say("%-44s median %9s  p99 %9s\n", what,
		  fmt_ns(s->median, t[0], sizeof(t[0])), fmt_ns(s->p99, t[1], sizeof(t[1])));
	return f;
}

int bench_clock(struct bench *b)
{
	struct summary s;

	if (time_calls(b, call_clock, -1, &s))
		return BENCH_FAIL;
	jset(b->root, "clock_gettime",
	     call_figure(b, "clock_gettime(CLOCK_MONOTONIC)", NULL, &s));
	return BENCH_OK;
}

/*
 * The null ioctl is LLMDEV_INFO: of the driver's ioctls the cheapest that
 * succeeds. It goes through the whole dispatcher (the size word read, the
 * struct copied in, the handler, the reply copied out) and touches no
 * register of the card (PERF_READ and LINK_INFO read the card's
 * registers: MMIO exits under TCG). An unknown command (-ENOTTY, the
 * dispatcher's first check) and a FENCE_WAIT that polls for no fence
 * (-ENOENT: copied in, not out) are measured beside it, as the floor
 * under it.
 */
int bench_null(struct bench *b)
{
	struct json_object *f, *alt;
	struct llmdev *dev;
	struct summary s;
	int ret, fd;

	ret = llmdev_open(b->o->index, &dev);
	if (ret) {
		bench_error(b, "llmdev%u: %s", b->o->index, llmdev_strerror(ret));
		return BENCH_FAIL;
	}
	fd = llmdev_fd(dev);
	ret = time_calls(b, call_info, fd, &s);
	if (ret)
		goto out;
	f = call_figure(b, "null ioctl: LLMDEV_INFO", "LLMDEV_INFO", &s);
	alt = json_object_new_array();
	jset(f, "alternatives", alt);
	jset(b->root, "null_ioctl", f);

	ret = time_calls(b, call_enotty, fd, &s);
	if (ret)
		goto out;
	json_object_array_add(alt, call_figure(b, "unknown ioctl (-ENOTTY)",
					       "_IO('L', 0xff)", &s));
	ret = time_calls(b, call_fence_poll, fd, &s);
	if (ret)
		goto out;
	json_object_array_add(alt, call_figure(b, "LLMDEV_FENCE_WAIT poll, no fence (-ENOENT)",
					       "LLMDEV_FENCE_WAIT", &s));
out:
	llmdev_close(dev);
	return ret ? BENCH_FAIL : BENCH_OK;
}

/* ---- DMA ------------------------------------------------------------------------- */

#define MAX_INFLIGHT	BENCH_LIST_MAX

enum dma_api {
	API_SUBMIT,		/* LLMDEV_DMA_SUBMIT per transfer, FENCE_WAIT each */
	API_BATCH,		/* one LLMDEV_DMA_BATCH, FENCE_WAIT its fence */
	API_BATCH_WAIT,		/* one LLMDEV_DMA_BATCH with LLMDEV_BATCH_WAIT */
};

static const char *const api_name[] = {
	[API_SUBMIT] = "submit",
	[API_BATCH] = "batch",
	[API_BATCH_WAIT] = "batch",
};

/* the ceilings measured beside a figure: each direction's, and both's */
enum { CEIL_H2C, CEIL_C2H, CEIL_BOTH, CEIL_N };

struct dma_cfg {
	uint64_t size;
	unsigned int k;		/* transfers in flight */
	enum dma_api api;
	bool reg;		/* from registered buffers (LLMDEV_OP_BUF) */
	/* Gb/s measured beside it: h2c, c2h, both together; 0: not */
	double ceiling[CEIL_N];
	uint64_t null_ns;	/* null ioctl median measured beside it; 0: not */
};

/*
 * Figures of up to NULL_BESIDE_BYTES an operation are set against the
 * null ioctl: a sample of it, the mean of NULL_BESIDE_CALLS calls, is
 * taken after each of their iterations, so that the ratio compares calls
 * made in the same seconds (the host's pace moves within a run).
 */
#define NULL_BESIDE_BYTES	(64u << 10)
#define NULL_BESIDE_CALLS	8

struct dma_ctx {
	struct bench *b;
	struct llmdev *dev;
	uint32_t handle;	/* the HBM region */
	uint64_t region_len;
	uint64_t mmap_offset;
	uint8_t *src, *dst;	/* host buffers, @arena bytes each */
	size_t arena;
	uint8_t *hbm;		/* the region through the aperture (--inject hbm) */
	/* what the driver does not support, and why; "" when it does */
	char no_batch[160], no_wait[160], no_reg[160];
	uint32_t src_buf, dst_buf;
	bool src_reg, dst_reg;
	unsigned int iterations;	/* in this context, for --inject stale */
};

static void dma_ctx_close(struct dma_ctx *c)
{
	if (c->src_reg)
		llmdev_buf_unregister(c->dev, c->src_buf);
	if (c->dst_reg)
		llmdev_buf_unregister(c->dev, c->dst_buf);
	if (c->hbm)
		llmdev_hbm_unmap(c->hbm, c->region_len);
	if (c->src)
		munmap(c->src, c->arena);
	if (c->dst)
		munmap(c->dst, c->arena);
	if (c->handle)
		llmdev_hbm_free(c->dev, c->handle);
	llmdev_close(c->dev);
	memset(c, 0, sizeof(*c));
}

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int dma_ctx_open(struct bench *b, struct dma_ctx *c, size_t arena)
{
	char sz[16];
	struct llmdev_hbm_alloc a;
	int ret;

	memset(c, 0, sizeof(*c));
	c->b = b;
	c->arena = arena;
	ret = llmdev_open(b->o->index, &c->dev);
	if (ret) {
		bench_error(b, "llmdev%u: %s", b->o->index, llmdev_strerror(ret));
		return ret;
	}
	ret = llmdev_hbm_alloc(c->dev, arena, 0, 0, NULL, &a);
	if (ret) {
		bench_error(b, "llmdev%u: allocating %s of HBM: %s%s", b->o->index,
			    fmt_size(arena, sz, sizeof(sz)), llmdev_strerror(ret),
			    ret == -ENOSPC ? " (start the VM with a larger --hbm-size)" : "");
		goto err;
	}
	c->handle = a.handle;
	c->region_len = arena;
	c->mmap_offset = a.mmap_offset;
	c->src = map_anon(arena);
	c->dst = map_anon(arena);
	if (!c->src || !c->dst) {
		bench_error(b, "out of memory for 2 x %s of host buffers",
			    fmt_size(arena, sz, sizeof(sz)));
		ret = -ENOMEM;
		goto err;
	}
	if (b->o->inject == INJECT_HBM) {
		c->hbm = llmdev_hbm_map(c->dev, c->mmap_offset, c->region_len,
					PROT_READ | PROT_WRITE);
		if (!c->hbm) {
			ret = -errno;
			bench_error(b, "mapping the region for --inject hbm: %s", strerror(errno));
			goto err;
		}
	}
	return 0;
err:
	dma_ctx_close(c);
	return ret ? ret : -EIO;
}

static void why(char *buf, size_t len, const char *what, int err)
{
	if (err == -ENOTTY)
		snprintf(buf, len, "%s: not supported by this driver (ENOTTY)", what);
	else
		snprintf(buf, len, "%s: %s", what, llmdev_strerror(err));
}

/*
 * What the driver supports: registered buffers (a registration of both
 * host buffers) and batches (a batch of one transfer, and one with
 * LLMDEV_BATCH_WAIT). -ENOTTY (an older driver) makes those figures
 * SKIP, and so does -EINVAL from the LLMDEV_DMA_BATCH ioctl itself when
 * only LLMDEV_BATCH_WAIT differs from the batch that just went through (a
 * driver with batches but not the flag: unknown flags are -EINVAL). Any
 * other failure fails the run: an -EINVAL that is the batch's status, or
 * from the wait for it, is a transfer that failed, not a missing flag.
 */
static int dma_probe(struct dma_ctx *c)
{
	struct llmdev_dma_op op = {
		.flags = LLMDEV_OP_TO_CARD, .handle = c->handle, .length = 1,
		.user_addr = (uintptr_t)c->src,
	};
	uint64_t fence;
	int ret, st;

	ret = llmdev_buf_register(c->dev, c->src, c->arena, LLMDEV_BUF_READ_ONLY,
				  &c->src_buf);
	if (!ret) {
		c->src_reg = true;
		ret = llmdev_buf_register(c->dev, c->dst, c->arena, 0, &c->dst_buf);
		c->dst_reg = !ret;
	}
	if (ret == -ENOTTY) {
		why(c->no_reg, sizeof(c->no_reg), "LLMDEV_BUF_REGISTER", ret);
	} else if (ret) {
		bench_error(c->b, "registering the host buffers: %s", llmdev_strerror(ret));
		return ret;
	}

	ret = llmdev_dma_batch(c->dev, &op, 1, 0, 0, &fence, NULL, NULL);
	if (!ret) {
		ret = llmdev_fence_wait(c->dev, fence, OP_TIMEOUT_NS, &st);
		if (!ret && st)
			ret = st;
	}
	if (ret == -ENOTTY) {
		why(c->no_batch, sizeof(c->no_batch), "LLMDEV_DMA_BATCH", ret);
		snprintf(c->no_wait, sizeof(c->no_wait), "%s", c->no_batch);
		if (!*c->no_reg)	/* registered buffers are used through batches */
			snprintf(c->no_reg, sizeof(c->no_reg), "%s", c->no_batch);
		return 0;
	} else if (ret) {
		bench_error(c->b, "a batch of one transfer: %s", llmdev_strerror(ret));
		return ret;
	}

	ret = llmdev_dma_batch(c->dev, &op, 1, LLMDEV_BATCH_WAIT, OP_TIMEOUT_NS,
			       &fence, &st, NULL);
	if (ret == -EINVAL) {
		/* the call itself: the same batch without the flag went through */
		snprintf(c->no_wait, sizeof(c->no_wait),
			 "LLMDEV_BATCH_WAIT: the flag is rejected by this driver "
			 "(LLMDEV_DMA_BATCH: EINVAL; without it the batch runs)");
		return 0;
	}
	if (ret == -ETIME) {
		/* queued, not done within the call: its fence tells */
		ret = llmdev_fence_wait(c->dev, fence, OP_TIMEOUT_NS, &st);
		if (ret) {
			bench_error(c->b, "waiting for a batch with LLMDEV_BATCH_WAIT: %s",
				    llmdev_strerror(ret));
			return ret;
		}
	} else if (ret) {
		bench_error(c->b, "a batch of one transfer with LLMDEV_BATCH_WAIT: %s",
			    llmdev_strerror(ret));
		return ret;
	}
	if (st) {
		bench_error(c->b, "a batch of one transfer with LLMDEV_BATCH_WAIT "
			    "completed with status %s", llmdev_strerror(st));
		return st;
	}
	return 0;
}

/* why @cfg cannot run on this driver, or NULL */
static const char *dma_unsupported(const struct dma_ctx *c, const struct dma_cfg *cfg)
{
	if (cfg->reg && *c->no_reg)
		return c->no_reg;
	if (cfg->api == API_BATCH_WAIT && *c->no_wait)
		return c->no_wait;
	if (cfg->api != API_SUBMIT && *c->no_batch)
		return c->no_batch;
	return NULL;
}

/*
 * Move slot j (j < cfg->k) of the host buffer to or from the card:
 * host bytes j * size of src or dst, HBM bytes j * size of the region.
 * @len is the bytes per transfer (cfg->size, less with --inject short).
 * Returns once every transfer has ended.
 */
static int dma_move(struct dma_ctx *c, const struct dma_cfg *cfg, bool to_card,
		    uint64_t len)
{
	struct llmdev_dma_op ops[MAX_INFLIGHT];
	uint64_t fences[MAX_INFLIGHT], fence;
	uint8_t *host = to_card ? c->src : c->dst;
	unsigned int j, started = 0;
	int ret = 0, st, r;

	if (cfg->api == API_SUBMIT) {
		for (j = 0; j < cfg->k; j++) {
			ret = llmdev_dma_submit(c->dev, c->handle, j * cfg->size,
						host + j * cfg->size, len,
						to_card ? LLMDEV_DMA_TO_CARD : 0,
						LLMDEV_RING_ANY, &fences[j]);
			if (ret)
				break;
			started++;
		}
		for (j = 0; j < started; j++) {
			r = llmdev_fence_wait(c->dev, fences[j], OP_TIMEOUT_NS, &st);
			if (!r)
				r = st;
			if (r && !ret)
				ret = r;
		}
		return ret;
	}

	memset(ops, 0, sizeof(ops));
	for (j = 0; j < cfg->k; j++) {
		ops[j].flags = to_card ? LLMDEV_OP_TO_CARD : 0;
		ops[j].handle = c->handle;
		ops[j].offset = j * cfg->size;
		ops[j].length = len;
		if (cfg->reg) {
			ops[j].flags |= LLMDEV_OP_BUF;
			ops[j].buf = to_card ? c->src_buf : c->dst_buf;
			ops[j].buf_offset = j * cfg->size;
		} else {
			ops[j].user_addr = (uintptr_t)(host + j * cfg->size);
		}
	}
	if (cfg->api == API_BATCH_WAIT) {
		ret = llmdev_dma_batch(c->dev, ops, cfg->k, LLMDEV_BATCH_WAIT,
				       OP_TIMEOUT_NS, &fence, &st, NULL);
		if (ret == -ETIME)	/* queued, still running: wait it out */
			ret = llmdev_fence_wait(c->dev, fence, OP_TIMEOUT_NS, &st);
		return ret ? ret : st;
	}
	ret = llmdev_dma_batch(c->dev, ops, cfg->k, 0, 0, &fence, NULL, NULL);
	if (ret)
		return ret;
	ret = llmdev_fence_wait(c->dev, fence, OP_TIMEOUT_NS, &st);
	return ret ? ret : st;
}

static const char *cfg_name(const struct dma_cfg *cfg, char *buf, size_t len)
{
	char sz[16];

	snprintf(buf, len, "%s x%u %s%s %s", fmt_size(cfg->size, sz, sizeof(sz)), cfg->k,
		 api_name[cfg->api], cfg->api == API_BATCH_WAIT ? "+wait" : "",
		 cfg->reg ? "registered" : "plain");
	return buf;
}

/*
 * One iteration: both directions, timed separately, every byte checked.
 * Returns 0, -EBADMSG on a mismatch (reported), or the failure of a
 * transfer (not reported).
 */
static int dma_iteration(struct dma_ctx *c, const struct dma_cfg *cfg,
			 uint64_t *h2c_ns, uint64_t *c2h_ns)
{
	const struct bench_opts *o = c->b->o;
	uint64_t seeds[MAX_INFLIGHT], t0, len = cfg->size;
	uint64_t iter = c->b->iter++;
	unsigned int j;
	char name[64];
	int ret;

	for (j = 0; j < cfg->k; j++) {
		seeds[j] = pattern_seed(iter, j, 1);
		pattern_fill(c->src + j * cfg->size, cfg->size, seeds[j]);
	}
	t0 = now_ns();
	if (o->inject == INJECT_STALE && c->iterations >= 1)
		ret = 0;	/* the card keeps the previous iteration's bytes */
	else
		ret = dma_move(c, cfg, true, len);
	*h2c_ns = now_ns() - t0;
	if (ret)
		return ret;
	if (o->inject == INJECT_HBM)
		c->hbm[cfg->size / 2] ^= 0x10;

	for (j = 0; j < cfg->k; j++)
		pattern_fill_inverse(c->dst + j * cfg->size, cfg->size, seeds[j]);
	if (o->inject == INJECT_SHORT)
		len--;
	t0 = now_ns();
	ret = dma_move(c, cfg, false, len);
	*c2h_ns = now_ns() - t0;
	if (ret)
		return ret;
	c->iterations++;

	for (j = 0; j < cfg->k; j++) {
		uint8_t got, want;
		size_t at = pattern_check(c->dst + j * cfg->size, cfg->size, seeds[j],
					  &got, &want);

		if (at != (size_t)-1) {
			bench_mismatch(c->b, "DMA %s, transfer %u of %u: byte %zu read back from "
				       "llmdev%u is 0x%02x, not 0x%02x (lost or corrupted on "
				       "the way to or from the card)",
				       cfg_name(cfg, name, sizeof(name)), j + 1, cfg->k, at,
				       o->index, got, want);
			return -EBADMSG;
		}
	}
	return 0;
}

static struct json_object *dma_entry(struct bench *b, const struct dma_cfg *cfg,
				     bool to_card)
{
	struct json_object *f = figure_new(b);

	jset_u64(f, "size", cfg->size);
	jset_str(f, "dir", to_card ? "h2c" : "c2h");
	jset_u64(f, "inflight", cfg->k);
	jset_bool(f, "registered", cfg->reg);
	jset_str(f, "api", api_name[cfg->api]);
	jset_str(f, "wait", cfg->api == API_BATCH_WAIT ? "in_call" : "fence_wait");
	jset_u64(f, "card", b->o->index);
	return f;
}

static uint64_t max_u64(const uint64_t *v, unsigned int n)
{
	uint64_t m = 0;

	while (n--)
		if (v[n] > m)
			m = v[n];
	return m;
}

/* One transfer of the ceiling: the card's counters and the time around it. */
static int ceiling_move(struct dma_ctx *c, const struct dma_cfg *cfg, bool to_card,
			struct llmdev_perf p[2], uint64_t t[2])
{
	int ret = llmdev_perf_read(c->dev, &p[0]);

	t[0] = now_ns();
	if (!ret)
		ret = dma_move(c, cfg, to_card, cfg->size);
	t[1] = now_ns();
	if (!ret)
		ret = llmdev_perf_read(c->dev, &p[1]);
	return ret;
}

/*
 * Did the card count @iters transfers of @size each way: bytes[] (h2c,
 * c2h) exactly that, and busy[] not 0? 0, or -1 (reported as an error of
 * @what: a rate from such counters would be no ceiling at all).
 */
static int ceiling_counted(struct bench *b, const char *what, unsigned int iters,
			   uint64_t size, const uint64_t bytes[2], const uint64_t busy[2])
{
	if (bytes[0] == iters * size && bytes[1] == iters * size && busy[0] && busy[1])
		return 0;
	bench_error(b, "%s: the card counted %llu + %llu bytes in %llu + %llu ns "
		    "for %u x %llu bytes each way", what,
		    (unsigned long long)bytes[0], (unsigned long long)bytes[1],
		    (unsigned long long)busy[0], (unsigned long long)busy[1],
		    iters, (unsigned long long)size);
	return -1;
}

/*
 * One round of the ceiling: a transfer of @size each way through @c, its
 * bytes and busy time (h2c, c2h) added to @bytes and @busy unless @warm,
 * its data checked; the card's busy and wall times into @its if not NULL.
 * Return: 0, -EBADMSG (reported) or an llmdev error.
 */
static int ceiling_round(struct bench *b, struct dma_ctx *c, uint64_t size, bool warm,
			 uint64_t bytes[2], uint64_t busy[2], struct json_object *its)
{
	struct dma_cfg cfg = { .size = size, .k = 1, .api = API_SUBMIT };
	uint64_t seed = pattern_seed(b->iter++, 0, 2), t[4];
	struct llmdev_perf p[4];
	struct json_object *e;
	uint8_t got, want;
	char sz[16];
	size_t at;
	int ret;

	pattern_fill(c->src, size, seed);
	ret = ceiling_move(c, &cfg, true, &p[0], &t[0]);
	if (ret)
		return ret;
	pattern_fill_inverse(c->dst, size, seed);
	ret = ceiling_move(c, &cfg, false, &p[2], &t[2]);
	if (ret)
		return ret;
	at = pattern_check(c->dst, size, seed, &got, &want);
	if (at != (size_t)-1) {
		bench_mismatch(b, "ceiling: byte %zu of %s read back is 0x%02x, not 0x%02x",
			       at, fmt_size(size, sz, sizeof(sz)), got, want);
		return -EBADMSG;
	}
	if (its) {
		/* each transfer: the card's busy time beside the wall time */
		e = json_object_new_object();
		jset_bool(e, "counted", !warm);
		jset_u64(e, "h2c_busy_ns", p[1].counters[LLMDEV_COUNTER_DMA_BUSY_NS] -
					   p[0].counters[LLMDEV_COUNTER_DMA_BUSY_NS]);
		jset_u64(e, "h2c_wall_ns", t[1] - t[0]);
		jset_u64(e, "c2h_busy_ns", p[3].counters[LLMDEV_COUNTER_DMA_BUSY_NS] -
					   p[2].counters[LLMDEV_COUNTER_DMA_BUSY_NS]);
		jset_u64(e, "c2h_wall_ns", t[3] - t[2]);
		json_object_array_add(its, e);
	}
	if (warm)
		return 0;
	bytes[0] += p[1].counters[LLMDEV_COUNTER_H2C_BYTES] -
		    p[0].counters[LLMDEV_COUNTER_H2C_BYTES];
	busy[0] += p[1].counters[LLMDEV_COUNTER_DMA_BUSY_NS] -
		   p[0].counters[LLMDEV_COUNTER_DMA_BUSY_NS];
	bytes[1] += p[3].counters[LLMDEV_COUNTER_C2H_BYTES] -
		    p[2].counters[LLMDEV_COUNTER_C2H_BYTES];
	busy[1] += p[3].counters[LLMDEV_COUNTER_DMA_BUSY_NS] -
		   p[2].counters[LLMDEV_COUNTER_DMA_BUSY_NS];
	return 0;
}

/*
 * The ceiling measured beside the figures it is compared with: rounds of
 * CEILING_BESIDE round trips of the largest size, one before the first
 * figure of 1 MiB or more and one after each; a figure gets the median of
 * the round trips on either side of it: in its own direction (the bytes
 * a round trip moved that way / the busy time of that transfer: a copy
 * into the card and one out of it need not run at one rate, HBM being
 * written with non-temporal stores and read with plain loads), and both
 * directions together (its bytes / its busy time; CEIL_H2C and CEIL_C2H
 * index ceiling_round()'s bytes[] and busy[]). On shared cores the host's
 * speed drifts over seconds, so a ceiling measured once, first, does not
 * say what the card could do meanwhile; and one round trip can be slowed
 * by what is not the card's doing (the host faulting in guest pages that
 * the guest kernel has just moved), which a median of 4 shrugs off, as
 * the figure's own median does with its slow samples.
 */
#define CEILING_BESIDE	2

struct ceiling_beside {
	struct dma_ctx c;
	uint64_t size;
	/* Gb/s, CEIL_*: the round before the next figure */
	double before[CEIL_N][CEILING_BESIDE];
	bool open, have;
};

/*
 * A round: the rates (CEIL_*) of each of its CEILING_BESIDE round trips,
 * each held to what bench_ceiling() holds its own to: the card counted
 * exactly the bytes moved each way, in a busy time that is not 0.
 * Return: 0, -EBADMSG (reported: data or counters) or an llmdev error.
 */
static int ceiling_beside_round(struct bench *b, struct ceiling_beside *cb,
				double rate[CEIL_N][CEILING_BESIDE])
{
	unsigned int i, d;
	int ret = 0;

	for (i = 0; i < CEILING_BESIDE && !ret; i++) {
		uint64_t bytes[2] = { 0 }, busy[2] = { 0 };

		ret = ceiling_round(b, &cb->c, cb->size, false, bytes, busy, NULL);
		if (ret)
			break;
		if (ceiling_counted(b, "ceiling beside the DMA figures", 1, cb->size,
				    bytes, busy))
			return -EBADMSG;
		for (d = CEIL_H2C; d <= CEIL_C2H; d++)
			rate[d][i] = gbps(bytes[d], busy[d]);
		rate[CEIL_BOTH][i] = gbps(bytes[0] + bytes[1], busy[0] + busy[1]);
	}
	return ret;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of ceiling @d (CEIL_*) of the round before and of @after. */
static double ceiling_beside_median(const struct ceiling_beside *cb,
				    double after[CEIL_N][CEILING_BESIDE], unsigned int d)
{
	double r[2 * CEILING_BESIDE];

	memcpy(r, cb->before[d], sizeof(cb->before[d]));
	memcpy(r + CEILING_BESIDE, after[d], sizeof(cb->before[d]));
	qsort(r, 2 * CEILING_BESIDE, sizeof(*r), cmp_double);
	return (r[CEILING_BESIDE - 1] + r[CEILING_BESIDE]) / 2;
}

static void dma_report(struct bench *b, const struct dma_cfg *cfg, struct samples *s,
		       bool to_card, bool ok, const char *skip)
{
	struct json_object *f = dma_entry(b, cfg, to_card);
	char name[64], t[2][32], pct[48] = "";
	struct summary sum;
	double rate, ceiling;

	cfg_name(cfg, name, sizeof(name));
	if (skip) {
		figure_skip(f, skip);
		bench_say("dma %-30s %s  SKIP: %s\n", name, to_card ? "h2c" : "c2h", skip);
		json_object_array_add(b->dma, f);
		return;
	}
	if (!ok) {
		/* the samples before the failure say nothing */
		jset_str(f, "status", "failed");
		jset_bool(f, "verified", false);
		json_object_array_add(b->dma, f);
		bench_say("dma %-30s %s  FAILED: data did not verify\n", name,
			  to_card ? "h2c" : "c2h");
		return;
	}
	samples_summarize(s, &sum);
	figure_summary(f, &sum);
	rate = gbps(cfg->size * cfg->k, sum.median);
	jset_num(f, "gbps", rate);
	ceiling = cfg->ceiling[to_card ? CEIL_H2C : CEIL_C2H];
	if (cfg->ceiling[CEIL_BOTH] > 0)
		jset_num(f, "ceiling_gbps", cfg->ceiling[CEIL_BOTH]);
	if (ceiling > 0)
		jset_num(f, "dir_ceiling_gbps", ceiling);
	if (cfg->null_ns)
		jset_u64(f, "null_ioctl_ns", cfg->null_ns);
	jset_bool(f, "verified", true);
	json_object_array_add(b->dma, f);
	if (ceiling > 0)
		snprintf(pct, sizeof(pct), "  %5.1f %% of %.1f", rate / ceiling * 100,
			 ceiling);
	else if (cfg->null_ns)
		snprintf(pct, sizeof(pct), "  %5.1fx null ioctl %" PRIu64 " ns",
			 (double)sum.median / cfg->null_ns, cfg->null_ns);
	bench_say("dma %-30s %s  median %9s  p99 %9s  %8.3f Gb/s  n=%zu  verified%s\n", name,
		  to_card ? "h2c" : "c2h", fmt_ns(sum.median, t[0], sizeof(t[0])),
		  fmt_ns(sum.p99, t[1], sizeof(t[1])), rate, sum.n, pct);
}

/* One figure: both directions. BENCH_OK, or BENCH_FAIL (reported). */
static int dma_figure(struct dma_ctx *c, const struct dma_cfg *cfg_in,
		      struct ceiling_beside *cb)
{
	struct bench *b = c->b;
	struct dma_cfg cfgv = *cfg_in, *cfg = &cfgv;
	const char *skip = dma_unsupported(c, cfg);
	bool beside = cb->open && cfg->size * cfg->k >= (1u << 20);
	bool null_beside = cfg->size * cfg->k <= NULL_BESIDE_BYTES;
	struct samples h2c = { 0 }, c2h = { 0 }, nul = { 0 };
	int fd = llmdev_fd(c->dev);
	struct sampler sp;
	char name[64];
	int ret = 0, cret = 0, nfail = 0;

	if (skip) {
		dma_report(b, cfg, NULL, true, false, skip);
		dma_report(b, cfg, NULL, false, false, skip);
		return BENCH_OK;
	}
	if (beside && !cb->have) {
		/* a round trip warms the ceiling's region up; then the round before */
		uint64_t bytes[2] = { 0 }, busy[2] = { 0 };

		ret = ceiling_round(b, &cb->c, cb->size, true, bytes, busy, NULL);
		if (!ret)
			ret = ceiling_beside_round(b, cb, cb->before);
		if (ret) {
			if (ret != -EBADMSG)
				bench_error(b, "ceiling: %s", llmdev_strerror(ret));
			return BENCH_FAIL;
		}
		cb->have = true;
	}
	/* a warm-up iteration at least; two up to 64 MiB a sample */
	sampler_init(&sp, b->o, cfg->size * cfg->k >= (64u << 20) ? 1 : b->o->warmup);
	do {
		bool warm = sampler_warming(&sp);
		uint64_t th, tc;

		ret = dma_iteration(c, cfg, &th, &tc);
		if (ret)
			break;
		if (!warm && (samples_add(&h2c, th) || samples_add(&c2h, tc))) {
			ret = -ENOMEM;
			break;
		}
		if (null_beside) {
			uint64_t ns;

			/* call_info() says why it failed; the figure goes on without it */
			nfail = call_sample(b, call_info, fd, NULL_BESIDE_CALLS, &ns);
			null_beside = !nfail;
			if (!nfail && !warm && samples_add(&nul, ns)) {
				ret = -ENOMEM;
				break;
			}
		}
	} while (sampler_more(&sp, h2c.n));
	if (!ret && !nfail && nul.n) {
		struct summary ns;

		samples_summarize(&nul, &ns);
		cfg->null_ns = ns.median;
	}

	/* the ceiling's round after it: its failure is not the figure's */
	if (!ret && beside) {
		double after[CEIL_N][CEILING_BESIDE];
		unsigned int d;

		cret = ceiling_beside_round(b, cb, after);
		if (!cret) {
			for (d = 0; d < CEIL_N; d++)
				cfg->ceiling[d] = ceiling_beside_median(cb, after, d);
			memcpy(cb->before, after, sizeof(after));
		} else if (cret != -EBADMSG) {
			bench_error(b, "ceiling after DMA %s: %s",
				    cfg_name(cfg, name, sizeof(name)), llmdev_strerror(cret));
		}
	}
	if (ret && ret != -EBADMSG)
		bench_error(b, "DMA %s: %s", cfg_name(cfg, name, sizeof(name)),
			    llmdev_strerror(ret));
	if (!ret || ret == -EBADMSG) {
		dma_report(b, cfg, &h2c, true, !ret, NULL);
		dma_report(b, cfg, &c2h, false, !ret, NULL);
	}
	samples_free(&h2c);
	samples_free(&c2h);
	samples_free(&nul);
	return ret || cret || nfail ? BENCH_FAIL : BENCH_OK;
}

int bench_dma(struct bench *b)
{
	static const struct { enum dma_api api; bool reg; } modes[] = {
		{ API_SUBMIT, false },
		{ API_BATCH, false },
		{ API_BATCH, true },
	};
	const struct bench_opts *o = b->o;
	unsigned int kmax = 0, i, j, m;
	struct ceiling_beside cb = { .size = max_u64(o->sizes, o->nsizes) };
	struct dma_ctx c;
	int status = BENCH_OK;

	for (i = 0; i < o->ninflight; i++)
		if (o->inflight[i] > kmax)
			kmax = o->inflight[i];
	if (dma_ctx_open(b, &c, max_u64(o->sizes, o->nsizes) * kmax))
		return BENCH_FAIL;
	if (dma_probe(&c)) {
		dma_ctx_close(&c);
		return BENCH_FAIL;
	}
	/* the ceiling beside the figures of 1 MiB and more (not with --smoke) */
	if (!o->smoke && cb.size >= (1u << 20)) {
		if (dma_ctx_open(b, &cb.c, cb.size)) {
			dma_ctx_close(&c);
			return BENCH_FAIL;
		}
		cb.open = true;
	}
	for (i = 0; i < o->nsizes && !status; i++) {
		for (j = 0; j < o->ninflight && !status; j++) {
			for (m = 0; m < sizeof(modes) / sizeof(modes[0]) && !status; m++) {
				struct dma_cfg cfg = {
					.size = o->sizes[i], .k = o->inflight[j],
					.api = modes[m].api, .reg = modes[m].reg,
				};

				status = dma_figure(&c, &cfg, &cb);
			}
			/* the 4 KiB round trip in one call: submit and wait */
			for (m = 0; m < 2 && !status && o->sizes[i] == 4096 &&
			     o->inflight[j] == 1; m++) {
				struct dma_cfg cfg = {
					.size = o->sizes[i], .k = 1,
					.api = API_BATCH_WAIT, .reg = m,
				};

				status = dma_figure(&c, &cfg, &cb);
			}
		}
	}
	if (cb.open)
		dma_ctx_close(&cb.c);
	dma_ctx_close(&c);
	return status;
}

/* ---- the model's copy ceiling ------------------------------------------------------ */

/*
 * Bytes moved / DMA_BUSY_NS over large transfers, one at a time, both
 * directions, after a warm-up round trip: DMA_BUSY_NS counts the time the
 * card model spends on descriptors (copying), not the driver's or the
 * guest's.
 */
int bench_ceiling(struct bench *b)
{
	const struct bench_opts *o = b->o;
	uint64_t size = max_u64(o->sizes, o->nsizes);
	uint64_t bytes[2] = { 0 }, busy[2] = { 0 };
	unsigned int it, warm = 1, iters = o->smoke ? 1 : 3;
	struct json_object *its = json_object_new_array();
	struct json_object *f;
	struct dma_ctx c;
	char sz[16];
	int ret = 0;

	if (dma_ctx_open(b, &c, size))
		return BENCH_FAIL;
	/*
	 * The first transfer into a region fresh from the scrub engine also
	 * pays for the model's first touch of its pages: it warms up, its
	 * figures are in transfers_detail only.
	 */
	for (it = 0; it < warm + iters && !ret; it++)
		ret = ceiling_round(b, &c, size, it < warm, bytes, busy, its);
	dma_ctx_close(&c);
	if (ret && ret != -EBADMSG)
		bench_error(b, "ceiling: %s", llmdev_strerror(ret));
	if (ret) {
		json_object_put(its);
		return BENCH_FAIL;
	}
	if (ceiling_counted(b, "ceiling", iters, size, bytes, busy)) {
		json_object_put(its);
		return BENCH_FAIL;
	}
	f = figure_new(b);
	jset_u64(f, "size", size);
	jset_u64(f, "transfers", 2 * iters);
	jset_u64(f, "warmup_transfers", 2 * warm);
	jset_u64(f, "bytes", bytes[0] + bytes[1]);
	jset_u64(f, "busy_ns", busy[0] + busy[1]);
	jset_num(f, "gbps", gbps(bytes[0] + bytes[1], busy[0] + busy[1]));
	jset_num(f, "h2c_gbps", gbps(bytes[0], busy[0]));
	jset_num(f, "c2h_gbps", gbps(bytes[1], busy[1]));
	jset_bool(f, "verified", true);
	jset(f, "transfers_detail", its);
	jset(b->root, "ceiling", f);
	jset_num(b->root, "ceiling_gbps", gbps(bytes[0] + bytes[1], busy[0] + busy[1]));
	bench_say("%-44s %.3f Gb/s (h2c %.3f, c2h %.3f; %u x %s each way)\n",
		  "model copy ceiling (bytes / DMA_BUSY_NS)",
		  gbps(bytes[0] + bytes[1], busy[0] + busy[1]), gbps(bytes[0], busy[0]),
		  gbps(bytes[1], busy[1]), iters, fmt_size(size, sz, sizeof(sz)));
	return BENCH_OK;
}
