// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl kv bench [DEV] [options]: swap-out and swap-in of KV blocks
 * through libllmdev's KV pool, beside one transfer per block and one
 * 64 MiB transfer; and the prefetch overlap.
 * llmctl kv stats [PID]: the statistics of the KV pools processes have
 * open, from their statistics files (llmdev_kv_stats_read()).
 *
 * Why statistics files and not the driver's fdinfo: the tiers, the hits,
 * the disk file and the swap latencies are the library's books, not the
 * driver's (the driver sees an HBM region, a registered buffer and
 * batches), and a pool's host and disk tiers would need a new ioctl to
 * reach the kernel at all. A file per pool, mapped shared and written with
 * atomic counters, costs the pool no system call, is readable by any user
 * (0644) while /proc/PID/fdinfo needs ptrace rights, and outlives a
 * crashed process for a post-mortem (shown as exited).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "llmctl.h"

#define KV_MAX_LIST	16
#define NSEC		1000000000ULL
#define SINGLE_LEN	(64ULL << 20)

static const char *const tier_names[LLMDEV_KV_TIERS] = { "hbm", "host", "disk" };

/* ---- helpers ----------------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC + ts.tv_nsec;
}

/* "64K", "2M", "4096": a size in bytes, > 0 and without overflow */
static int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned int shift = 0;
	char *end;

	/* strtoull() takes "-1" for ULLONG_MAX */
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case 'G': case 'g': shift = 30; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'K': case 'k': shift = 10; end++; break;
	case '\0': break;
	default: return -1;
	}
	if (*end || !v || v > UINT64_MAX >> shift)
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* "16K,64K,1M" or "1,16,256" (@sizes: with suffixes) */
static int parse_list(const char *s, uint64_t *v, unsigned int *n, bool sizes)
{
	char *copy = strdup(s), *rest = copy, *tok;
	int ret = 0;

	*n = 0;
	if (!copy)
		return -1;
	/* strsep(): an empty item (",,", a comma at either end) is an error */
	while ((tok = strsep(&rest, ","))) {
		char *end;

		if (*n == KV_MAX_LIST) {
			ret = -1;
			break;
		}
		if (sizes) {
			if (parse_size(tok, &v[*n])) {
				ret = -1;
				break;
			}
		} else {
			errno = 0;
			v[*n] = strtoull(tok, &end, 10);
			if (errno || *end || end == tok || !v[*n]) {
				ret = -1;
				break;
			}
		}
		(*n)++;
	}
	free(copy);
	return ret || !*n ? -1 : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* median and p99 of @n samples (sorted in place) */
static void quantiles(uint64_t *s, unsigned int n, uint64_t *med, uint64_t *p99)
{
	unsigned int k;

	qsort(s, n, sizeof(*s), cmp_u64);
	*med = s[(n - 1) / 2];
	k = (unsigned int)((n * 99 + 99) / 100);
	*p99 = s[k ? k - 1 : 0];
}

static void pattern(uint8_t *p, uint64_t len, uint64_t tag)
{
	uint64_t x = tag * 0x9e3779b97f4a7c15ULL + 1, i;

	for (i = 0; i + 8 <= len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
}

/* ---- bench --------------------------------------------------------------------- */

struct bench_opts {
	uint64_t bs[KV_MAX_LIST];
	unsigned int nbs;
	uint64_t batch[KV_MAX_LIST];
	unsigned int nbatch;
	uint64_t max_bytes;
	double secs;
	unsigned int per_block_max;
};

struct result {
	bool out;
	uint64_t bs, batch;
	double blocks_per_s, gbps;
	uint64_t med, p99;
	double single;		/* the 64 MiB reference measured with it */
	double per_block[2];	/* blocks/s of one transfer per block (PB_*), measured with it */
	unsigned int transfers;	/* of a per_block row: how many were timed */
	unsigned int rounds;	/* of a results row: how many were timed */
};

#define MAX_SAMPLES	4096
/* blocks given new bytes and checked in every round of a figure */
#define BENCH_CHECK	8

/* A reference's timings, each way: [0] in (to the card), [1] out. */
struct samples {
	uint64_t *s[2];
	unsigned int n[2], cap;		/* samples each; room for */
};

static int samples_init(struct samples *sm, unsigned int cap)
{
	*sm = (struct samples){ .cap = cap };
	sm->s[0] = malloc(sizeof(uint64_t) * cap);
	sm->s[1] = malloc(sizeof(uint64_t) * cap);
	if (sm->s[0] && sm->s[1])
		return 0;
	free(sm->s[0]);
	free(sm->s[1]);
	*sm = (struct samples){ 0 };
	return -ENOMEM;
}

static void samples_free(struct samples *sm)
{
	free(sm->s[0]);
	free(sm->s[1]);
	*sm = (struct samples){ 0 };
}

/* Room for @k more each way. */
static int samples_room(struct samples *sm, unsigned int k)
{
	uint64_t *p;
	int d;

	while (sm->n[0] + k > sm->cap || sm->n[1] + k > sm->cap) {
		for (d = 0; d < 2; d++) {
			p = realloc(sm->s[d], sizeof(*p) * sm->cap * 2);
			if (!p) {
				msg("out of memory");
				return -ENOMEM;
			}
			sm->s[d] = p;
		}
		sm->cap *= 2;
	}
	return 0;
}

/*
 * Median and p99 of direction @d's samples from @from on.
 * Return: how many there were (0: none, or no memory to sort them).
 */
static unsigned int samples_quantiles(const struct samples *sm, unsigned int d,
				      unsigned int from, uint64_t *med, uint64_t *p99)
{
	unsigned int n = sm->n[d] - from;
	uint64_t *c;

	if (!n)
		return 0;
	c = malloc(sizeof(*c) * n);
	if (!c)
		return 0;
	memcpy(c, sm->s[d] + from, sizeof(*c) * n);
	quantiles(c, n, med, p99);
	free(c);
	return n;
}

/*
 * The reference: one 64 MiB transfer each way between a registered buffer
 * and a region of its own. It is measured between the rounds of every
 * figure, not once: on shared cores the host's speed drifts over seconds,
 * and a ratio is only worth something between figures taken together.
 * Every transfer is checked: each 4 KiB page carries the round's stamp
 * out and must bring it back; the rest of the pattern is checked at the end.
 */
#define SINGLE_EVERY_NS	(20 * 1000 * 1000)	/* of the figure's own time */

struct single {
	struct llmdev *dev;
	uint8_t *buf;
	uint32_t region, b;
	uint64_t round;
	struct samples sm;
};

static int single_open(struct llmdev *dev, struct single *sg)
{
	struct llmdev_hbm_alloc a;
	int ret;

	*sg = (struct single){ .dev = dev };
	sg->buf = mmap(NULL, SINGLE_LEN, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (samples_init(&sg->sm, 256) || sg->buf == MAP_FAILED) {
		msg("out of memory for 64 MiB");
		ret = -ENOMEM;
		goto fail;
	}
	pattern(sg->buf, SINGLE_LEN, 99);
	ret = llmdev_hbm_alloc(dev, SINGLE_LEN, 0, 0, NULL, &a);
	if (ret) {
		msg("%s: 64 MiB of HBM: %s", llmdev_name(dev), llmdev_strerror(ret));
		goto fail;
	}
	sg->region = a.handle;
	ret = llmdev_buf_register(dev, sg->buf, SINGLE_LEN, 0, &sg->b);
	if (ret) {
		msg("%s: registering 64 MiB: %s", llmdev_name(dev), llmdev_strerror(ret));
		llmdev_hbm_free(dev, sg->region);
		goto fail;
	}
	return 0;
fail:
	if (sg->buf != MAP_FAILED)
		munmap(sg->buf, SINGLE_LEN);
	samples_free(&sg->sm);
	sg->buf = NULL;
	return ret;
}

static void single_close(struct single *sg)
{
	if (!sg->buf)
		return;
	llmdev_buf_unregister(sg->dev, sg->b);
	llmdev_hbm_free(sg->dev, sg->region);
	munmap(sg->buf, SINGLE_LEN);
	samples_free(&sg->sm);
	sg->buf = NULL;
}

/* One transfer each way, timed and checked. */
static int single_round(struct single *sg)
{
	uint64_t stamp = ++sg->round, i, t0, got;
	int ret, status, d;

	ret = samples_room(&sg->sm, 1);
	if (ret)
		return ret;
	for (i = 0; i < SINGLE_LEN; i += 4096)
		memcpy(sg->buf + i, &stamp, 8);
	for (d = 0; d < 2 && !ret; d++) {
		struct llmdev_dma_op op = {
			.flags = LLMDEV_OP_BUF | (d ? 0 : LLMDEV_OP_TO_CARD),
			.handle = sg->region, .length = SINGLE_LEN, .buf = sg->b,
		};

		if (d)	/* the read must bring the stamps back */
			for (i = 0; i < SINGLE_LEN; i += 4096)
				memset(sg->buf + i, 0, 8);
		t0 = now_ns();
		ret = llmdev_dma_batch(sg->dev, &op, 1, LLMDEV_BATCH_WAIT, 60 * NSEC,
				       NULL, &status, NULL);
		if (!ret)
			ret = status;
		if (!ret)
			sg->sm.s[d][sg->sm.n[d]++] = now_ns() - t0;
	}
	for (i = 0; !ret && i < SINGLE_LEN; i += 4096) {
		memcpy(&got, sg->buf + i, 8);
		if (got != stamp)
			ret = -EIO;
	}
	if (ret)
		msg("%s: one 64 MiB transfer: %s", llmdev_name(sg->dev),
		    ret == -EIO ? "the data read back differs" : llmdev_strerror(ret));
	return ret;
}

/* GB/s of the median of samples @from.. in direction @d (0 in, 1 out). */
static double single_gbps(struct single *sg, unsigned int d, unsigned int from)
{
	uint64_t med, p99;

	if (!samples_quantiles(&sg->sm, d, from, &med, &p99))
		return 0;
	return (double)SINGLE_LEN / med;
}

/* The rest of the pattern, untouched by the stamps, came back every time. */
static int single_check(struct single *sg)
{
	uint8_t *want = malloc(SINGLE_LEN);
	uint64_t i;
	int ret = 0;

	if (!want) {
		msg("out of memory to check 64 MiB");
		return -ENOMEM;
	}
	pattern(want, SINGLE_LEN, 99);
	for (i = 0; i < SINGLE_LEN && !ret; i += 4096)
		if (memcmp(want + i + 8, sg->buf + i + 8, 4096 - 8))
			ret = -EIO;
	free(want);
	if (ret)
		msg("%s: 64 MiB read back differs from what was written", llmdev_name(sg->dev));
	return ret;
}

/* A first measurement, @secs long: rounds until then (3 at least). */
static int bench_single(struct single *sg, double secs)
{
	uint64_t start = now_ns();
	int ret;

	do
		ret = single_round(sg);
	while (!ret && (sg->sm.n[0] < 3 || now_ns() - start < secs * NSEC) &&
	       sg->sm.n[0] < 64);
	return ret;
}

/*
 * The other references: one transfer per block over @n blocks in turn,
 * between a region and the same memory, two ways:
 * - PB_PLAIN: llmdev_dma_submit() of ordinary memory and
 *   llmdev_fence_wait(), the way without batches or registered buffers
 *   (the one the ">= 10x" target is set against);
 * - PB_REG: the fastest way to move one block alone, from a registered
 *   buffer, submitted and waited for in one call (a batch of one op with
 *   LLMDEV_BATCH_WAIT, which polls).
 * Like the 64 MiB transfer they are measured first (all @n blocks each
 * way), then again between the rounds of every figure of their block size
 * (PB_SLICE blocks each way, with the 64 MiB transfers), so that a
 * figure's blocks/s is set against transfers taken with it: one measured
 * seconds before or after can see another host. Each read must restore the
 * first bytes of its block, zeroed before it; every block is checked at
 * the end (pb_check()).
 */
#define PB_SLICE	16

enum { PB_PLAIN, PB_REG, PB_WAYS };

struct pblock {
	struct llmdev *dev;
	uint8_t *buf;
	uint32_t region, b;		/* b: buf registered */
	uint64_t bs, n, next;		/* block size, blocks, next one to move */
	struct samples sm[PB_WAYS];
};

static int pb_open(struct llmdev *dev, uint64_t bs, uint64_t n, struct pblock *pb)
{
	struct llmdev_hbm_alloc a;
	uint64_t i;
	int ret;

	*pb = (struct pblock){ .dev = dev, .bs = bs, .n = n };
	pb->buf = mmap(NULL, n * bs, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (samples_init(&pb->sm[PB_PLAIN], 1024) || samples_init(&pb->sm[PB_REG], 1024) ||
	    pb->buf == MAP_FAILED) {
		msg("out of memory for %" PRIu64 " bytes", n * bs);
		ret = -ENOMEM;
		goto fail;
	}
	ret = llmdev_hbm_alloc(dev, n * bs, 0, 0, NULL, &a);
	if (ret) {
		msg("%s: %" PRIu64 " bytes of HBM: %s", llmdev_name(dev), n * bs,
		    llmdev_strerror(ret));
		goto fail;
	}
	pb->region = a.handle;
	for (i = 0; i < n; i++)
		pattern(pb->buf + i * bs, bs, i);
	ret = llmdev_buf_register(dev, pb->buf, n * bs, 0, &pb->b);
	if (ret) {
		msg("%s: registering %" PRIu64 " bytes: %s", llmdev_name(dev), n * bs,
		    llmdev_strerror(ret));
		llmdev_hbm_free(dev, pb->region);
		goto fail;
	}
	return 0;
fail:
	if (pb->buf != MAP_FAILED)
		munmap(pb->buf, n * bs);
	samples_free(&pb->sm[PB_PLAIN]);
	samples_free(&pb->sm[PB_REG]);
	pb->buf = NULL;
	return ret;
}

static void pb_close(struct pblock *pb)
{
	if (!pb->buf)
		return;
	llmdev_buf_unregister(pb->dev, pb->b);
	llmdev_hbm_free(pb->dev, pb->region);
	munmap(pb->buf, pb->n * pb->bs);
	samples_free(&pb->sm[PB_PLAIN]);
	samples_free(&pb->sm[PB_REG]);
	pb->buf = NULL;
}

/*
 * Block @i to the card (@d 0) or back (1), one transfer the way @way; its
 * time to *@ns.
 */
static int pb_one(struct pblock *pb, int way, int d, uint64_t i, uint64_t *ns)
{
	uint8_t *at = pb->buf + i * pb->bs;
	uint64_t fence, t0;
	int ret, status;

	if (d)
		memset(at, 0, 8);	/* the read must restore it */
	t0 = now_ns();
	if (way == PB_REG) {
		struct llmdev_dma_op op = {
			.flags = LLMDEV_OP_BUF | (d ? 0 : LLMDEV_OP_TO_CARD),
			.handle = pb->region, .offset = i * pb->bs, .length = pb->bs,
			.buf = pb->b, .buf_offset = i * pb->bs,
		};

		ret = llmdev_dma_batch(pb->dev, &op, 1, LLMDEV_BATCH_WAIT, 60 * NSEC,
				       NULL, &status, NULL);
	} else {
		ret = llmdev_dma_submit(pb->dev, pb->region, i * pb->bs, at, pb->bs,
					d ? 0 : LLMDEV_DMA_TO_CARD, LLMDEV_RING_ANY, &fence);
		if (!ret)
			ret = llmdev_fence_wait(pb->dev, fence, 60 * NSEC, &status);
	}
	if (!ret)
		ret = status;
	*ns = now_ns() - t0;
	if (ret)
		msg("%s: one %stransfer of %" PRIu64 " bytes: %s", llmdev_name(pb->dev),
		    way == PB_REG ? "registered " : "", pb->bs, llmdev_strerror(ret));
	return ret;
}

/*
 * Each way: @k blocks to the card one by one, then the same @k back, each
 * timed; after one untimed transfer to the card: the first after other
 * work (the 64 MiB transfers, a figure's rounds) took 4 to 6 times a
 * median one in a slice, a cost that a stream of transfers pays once, not
 * every PB_SLICE of them.
 */
static int pb_run(struct pblock *pb, uint64_t k)
{
	uint64_t first = pb->next, j, t;
	int ret = 0, d, w;

	for (w = 0; w < PB_WAYS && !ret; w++) {
		struct samples *sm = &pb->sm[w];

		ret = samples_room(sm, k);
		if (!ret)
			ret = pb_one(pb, w, 0, first, &t);
		for (d = 0; d < 2 && !ret; d++)
			for (j = 0; j < k && !ret; j++) {
				ret = pb_one(pb, w, d, (first + j) % pb->n, &t);
				if (!ret)
					sm->s[d][sm->n[d]++] = t;
			}
	}
	pb->next = (first + k) % pb->n;
	return ret;
}

/*
 * The samples of way @w from @from on in direction @d (0 in, 1 out) as a
 * figure of one block per transfer (@r), or only their blocks/s (@r NULL).
 */
static double pb_figure(struct pblock *pb, int w, unsigned int d, unsigned int from,
			struct result *r)
{
	uint64_t med, p99;
	unsigned int n;

	if (r)
		*r = (struct result){ .out = d, .bs = pb->bs, .batch = 1 };
	n = samples_quantiles(&pb->sm[w], d, from, &med, &p99);
	if (!n)
		return 0;
	if (r)
		*r = (struct result){ .out = d, .bs = pb->bs, .batch = 1, .med = med,
				      .p99 = p99, .blocks_per_s = 1e9 / med,
				      .gbps = (double)pb->bs / med, .transfers = n };
	return 1e9 / med;
}

/* Every block holds its pattern: each write and read moved it whole. */
static int pb_check(struct pblock *pb)
{
	uint8_t *want = malloc(pb->bs);
	uint64_t i;
	int ret = 0;

	if (!want) {
		msg("out of memory to check a block of %" PRIu64 " bytes", pb->bs);
		return -ENOMEM;
	}
	for (i = 0; i < pb->n && !ret; i++) {
		pattern(want, pb->bs, i);
		if (memcmp(want, pb->buf + i * pb->bs, pb->bs))
			ret = -EIO;
	}
	free(want);
	if (ret)
		msg("%s: a block of %" PRIu64 " bytes differs after one transfer each way",
		    llmdev_name(pb->dev), pb->bs);
	return ret;
}

static struct llmdev_kv *bench_pool(struct llmdev *dev, uint64_t bs, uint64_t n)
{
	LLMDEV_KV_OPTS(o, .block_size = bs, .hbm_blocks = n, .host_blocks = n,
		       .hbm_high_pct = 100, .hbm_low_pct = 99,
		       .flags = LLMDEV_KV_NO_STATS_FILE, .name = "bench");
	struct llmdev_kv *kv;
	int ret;

	ret = llmdev_kv_create(dev, &o, &kv);
	if (ret) {
		msg("%s: KV pool of %" PRIu64 " blocks of %" PRIu64 " bytes: %s",
		    llmdev_name(dev), n, bs, llmdev_strerror(ret));
		return NULL;
	}
	return kv;
}

/*
 * Fill (@write) or check @n pinned blocks through one DMA batch between
 * them and @buf: blocks @idx[k] (@idx NULL: blocks 0..@n-1), block i at
 * HBM offset @off[i] and holding pattern(@seed[i]).
 */
static int bench_data(struct llmdev_kv *kv, const uint64_t *off,
		      const uint64_t *seed, const uint64_t *idx, uint64_t n,
		      uint64_t bs, uint8_t *buf, bool write)
{
	struct llmdev_kv_info info;
	struct llmdev_dma_op *ops = calloc(n, sizeof(*ops));
	uint8_t *want = malloc(bs);
	int ret, status = 0;
	uint64_t i, k;

	if (!ops || !want) {
		free(ops);
		free(want);
		msg("out of memory");
		return -ENOMEM;
	}
	llmdev_kv_info(kv, &info);
	for (i = 0; i < n; i++) {
		uint64_t b = idx ? idx[i] : i;

		if (write)
			pattern(buf + i * bs, bs, seed[b]);
		else
			memset(buf + i * bs, 0, bs);
		ops[i].flags = write ? LLMDEV_OP_TO_CARD : 0;
		ops[i].handle = info.region;
		ops[i].offset = off[b];
		ops[i].length = bs;
		ops[i].user_addr = (uintptr_t)(buf + i * bs);
	}
	/* in batches the driver takes: of plain memory, 4 GiB at most */
	for (ret = 0, i = 0; !ret && i < n; i += k) {
		k = LLMDEV_BATCH_MAX_PLAIN_BYTES / bs;
		if (k > LLMDEV_BATCH_MAX)
			k = LLMDEV_BATCH_MAX;
		if (k > n - i)
			k = n - i;
		ret = llmdev_dma_batch(llmdev_kv_dev(kv), ops + i, k, LLMDEV_BATCH_WAIT,
				       60 * NSEC, NULL, &status, NULL);
		if (!ret)
			ret = status;
	}
	if (ret)
		msg("%s: %s the bench's blocks: %s", llmdev_name(llmdev_kv_dev(kv)),
		    write ? "writing" : "reading", llmdev_strerror(ret));
	for (i = 0; !ret && !write && i < n; i++) {
		uint64_t b = idx ? idx[i] : i;

		pattern(want, bs, seed[b]);
		if (memcmp(want, buf + i * bs, bs)) {
			msg("%s: block %" PRIu64 " of %" PRIu64 " bytes differs after the swaps",
			    llmdev_name(llmdev_kv_dev(kv)), b, bs);
			ret = -EIO;
		}
	}
	free(ops);
	free(want);
	return ret;
}

/*
 * Block @i (of sequence 1), swapped out just now: its bytes in host memory
 * are the swap-out's (pattern(@seed[i])); then new ones there, seed
 * @next, for the swap-in to bring. Through the pool's own reads and
 * writes of host memory: no DMA, no ring woken between the two timed
 * moves. @buf: room for a block.
 */
static int bench_host_block(struct llmdev_kv *kv, uint64_t i, uint64_t *seed,
			    uint64_t next, uint64_t bs, uint8_t *buf)
{
	uint8_t *want = malloc(bs);
	int ret;

	if (!want) {
		msg("out of memory");
		return -ENOMEM;
	}
	ret = llmdev_kv_tier(kv, 1, i);
	if (ret != LLMDEV_KV_HOST) {
		msg("%s: block %" PRIu64 " is not in host memory after the swap-out (%d)",
		    llmdev_name(llmdev_kv_dev(kv)), i, ret);
		ret = -EIO;
		goto out;
	}
	ret = llmdev_kv_read(kv, 1, i, buf);
	if (!ret) {
		pattern(want, bs, seed[i]);
		if (memcmp(want, buf, bs)) {
			msg("%s: block %" PRIu64 " of %" PRIu64 " bytes differs after the swap-out",
			    llmdev_name(llmdev_kv_dev(kv)), i, bs);
			ret = -EIO;
			goto out;
		}
		seed[i] = next;
		pattern(buf, bs, next);
		ret = llmdev_kv_write(kv, 1, i, buf);
	}
	if (ret)
		msg("%s: block %" PRIu64 " in host memory: %s",
		    llmdev_name(llmdev_kv_dev(kv)), i, llmdev_strerror(ret));
out:
	free(want);
	return ret;
}

/*
 * One block size and batch: a pool of @n blocks in HBM and @n in host
 * memory; swap all out (one eviction round), all in (one pin), again and
 * again, with the references (@sg, @pb) between rounds now and then; then
 * check every block's bytes. Every untimed round (below: the first, and
 * the one after each run of the references, about every 20 ms of rounds)
 * also gives BENCH_CHECK blocks (a different few each time) new bytes
 * before its swap-out and checks them after its swap-in; and the first of
 * them between the two, in host memory, where it gets new bytes again: a
 * swap-out or swap-in that moves nothing, or the wrong blocks, fails
 * there, also when a block comes back to the HBM slot it left. The timed
 * rounds are left as they are: a DMA just before one wakes a ring's
 * worker, which the round would then find awake. A round that follows other work (the
 * blocks' fill, the references) moves its blocks untimed: after the references,
 * swap-out of 1000 blocks of 64 KiB took a median 4.22-5.17 us a block
 * against 4.03-4.35 in the other rounds (six runs), the cost of the
 * measurement, not of the batch; the references' own runs start with an
 * untimed transfer for the same reason.
 */
static int bench_one(struct llmdev *dev, uint64_t bs, uint64_t n, double secs,
		     uint8_t *buf, struct single *sg, struct pblock *pb,
		     struct result *out, struct result *in)
{
	struct llmdev_kv_ref *refs = calloc(n, sizeof(*refs));
	uint64_t *off = calloc(n, sizeof(*off));
	uint64_t *seed = calloc(n, sizeof(*seed));
	uint64_t idx[BENCH_CHECK], turn = 0, nck = n < BENCH_CHECK ? n : BENCH_CHECK;
	uint64_t *so = malloc(sizeof(uint64_t) * MAX_SAMPLES);
	uint64_t *si = malloc(sizeof(uint64_t) * MAX_SAMPLES);
	struct llmdev_kv *kv = NULL;
	unsigned int rounds = 0;
	uint64_t i, t0, start, since = 0, tout, tin;
	bool settle = true;	/* this round follows other work: untimed */
	unsigned int from[2] = { sg->sm.n[0], sg->sm.n[1] };
	unsigned int pfrom[PB_WAYS][2] = {
		{ pb->sm[PB_PLAIN].n[0], pb->sm[PB_PLAIN].n[1] },
		{ pb->sm[PB_REG].n[0], pb->sm[PB_REG].n[1] },
	};
	int w;
	int ret = -ENOMEM;

	if (!refs || !off || !seed || !so || !si) {
		msg("out of memory");
		goto out;
	}
	kv = bench_pool(dev, bs, n);
	if (!kv) {
		ret = -1;
		goto out;
	}
	for (i = 0; i < n; i++) {
		refs[i] = (struct llmdev_kv_ref){ .seq = 1, .index = i };
		seed[i] = i;
		ret = llmdev_kv_alloc(kv, 1, i);
		if (ret) {
			msg("%s: KV block: %s", llmdev_name(dev), llmdev_strerror(ret));
			goto out;
		}
	}
	ret = llmdev_kv_pin(kv, refs, n, off);
	if (!ret)
		ret = bench_data(kv, off, seed, NULL, n, bs, buf, true);
	if (!ret)
		ret = llmdev_kv_unpin(kv, refs, n);
	if (ret)
		goto out;
	start = now_ns();
	do {
		/* an untimed round is checked (see the top); a timed one not */
		bool check = settle;

		/* new bytes for a few blocks, spread over the batch */
		turn++;
		for (i = 0; check && i < nck; i++) {
			idx[i] = (i * n / nck + turn) % n;
			seed[idx[i]] = turn << 32 | idx[i];
		}
		ret = check ? bench_data(kv, off, seed, idx, nck, bs, buf, true) : 0;
		if (ret)
			goto out;
		t0 = now_ns();
		ret = llmdev_kv_evict(kv, LLMDEV_KV_HBM, n);
		tout = now_ns() - t0;
		if (ret != (int)n) {
			msg("%s: swapping out %" PRIu64 " blocks: %s", llmdev_name(dev), n,
			    ret < 0 ? llmdev_strerror(ret) : "not all moved");
			ret = ret < 0 ? ret : -EIO;
			goto out;
		}
		ret = check ? bench_host_block(kv, idx[0], seed,
					       turn << 32 | 1ULL << 31 | idx[0], bs, buf) : 0;
		if (ret)
			goto out;
		t0 = now_ns();
		ret = llmdev_kv_pin(kv, refs, n, off);
		tin = now_ns() - t0;
		if (ret) {
			msg("%s: swapping in %" PRIu64 " blocks: %s", llmdev_name(dev), n,
			    llmdev_strerror(ret));
			goto out;
		}
		ret = check ? bench_data(kv, off, seed, idx, nck, bs, buf, false) : 0;
		if (ret)
			goto out;
		if (settle) {
			settle = false;
		} else {
			so[rounds] = tout;
			si[rounds] = tin;
			since += tout + tin;
			rounds++;
			/* the references, now and then (not timed in a round) */
			if (rounds == 1 || since >= SINGLE_EVERY_NS) {
				since = 0;
				settle = true;
				ret = single_round(sg);
				if (!ret)
					ret = pb_run(pb, PB_SLICE);
				if (ret)
					goto out;
			}
		}
		if (rounds < MAX_SAMPLES && (now_ns() - start < secs * NSEC || rounds < 5)) {
			ret = llmdev_kv_unpin(kv, refs, n);
			if (ret)
				goto out;
			continue;
		}
		break;
	} while (!stop);
	/* pinned: check what went through every round */
	ret = bench_data(kv, off, seed, NULL, n, bs, buf, false);
	*out = (struct result){ .out = true, .bs = bs, .batch = n, .rounds = rounds };
	*in = (struct result){ .out = false, .bs = bs, .batch = n, .rounds = rounds };
	if (ret || !rounds)	/* none: interrupted in the first round */
		goto out;
	quantiles(so, rounds, &out->med, &out->p99);
	quantiles(si, rounds, &in->med, &in->p99);
	out->blocks_per_s = n * 1e9 / out->med;
	in->blocks_per_s = n * 1e9 / in->med;
	out->gbps = (double)n * bs / out->med;
	in->gbps = (double)n * bs / in->med;
	out->single = single_gbps(sg, 1, from[1]);
	in->single = single_gbps(sg, 0, from[0]);
	for (w = 0; w < PB_WAYS; w++) {
		out->per_block[w] = pb_figure(pb, w, 1, pfrom[w][1], NULL);
		in->per_block[w] = pb_figure(pb, w, 0, pfrom[w][0], NULL);
	}
out:
	llmdev_kv_destroy(kv);
	free(refs);
	free(off);
	free(seed);
	free(so);
	free(si);
	return ret;
}

struct prefetch_result {
	uint64_t bs, n, compute_ns, without_ns, with_ns;
};

/*
 * A step that pins @n blocks swapped out to host memory: its pin time
 * without a prefetch, and with a prefetch issued one simulated step
 * earlier (the card computes: the host sleeps twice the swap-in time).
 */
static int bench_prefetch(struct llmdev *dev, uint64_t bs, uint64_t n,
			  struct prefetch_result *pr)
{
	struct llmdev_kv_ref *refs = calloc(n, sizeof(*refs));
	uint64_t *off = calloc(n, sizeof(*off)), *seed = calloc(n, sizeof(*seed));
	uint8_t *buf = malloc(n * bs);
	uint64_t s[2][16], t0, fence, i;
	struct llmdev_kv *kv = refs && off && seed && buf ? bench_pool(dev, bs, n) : NULL;
	bool said = !kv;	/* what went wrong */
	unsigned int k, d;
	int ret = kv ? 0 : -1;

	if (!refs || !off || !seed || !buf)
		msg("out of memory");

	for (i = 0; !ret && i < n; i++) {
		refs[i] = (struct llmdev_kv_ref){ .seq = 1, .index = i };
		seed[i] = i;
		ret = llmdev_kv_alloc(kv, 1, i);
	}
	/* the blocks' bytes, checked after every timed pin (untimed) */
	if (!ret)
		ret = llmdev_kv_pin(kv, refs, n, off);
	if (!ret) {
		ret = bench_data(kv, off, seed, NULL, n, bs, buf, true);
		said = ret;
	}
	if (!ret)
		ret = llmdev_kv_unpin(kv, refs, n);
	pr->bs = bs;
	pr->n = n;
	pr->compute_ns = 0;
	for (d = 0; !ret && d < 2; d++) {
		for (k = 0; !ret && k < 16; k++) {
			ret = llmdev_kv_evict(kv, LLMDEV_KV_HBM, n);
			if (ret != (int)n) {
				msg("%s: prefetch bench: swapping out %" PRIu64 " blocks: %s",
				    llmdev_name(dev), n,
				    ret < 0 ? llmdev_strerror(ret) : "not all moved");
				said = true;
				ret = ret < 0 ? ret : -EIO;
				break;
			}
			ret = 0;
			if (d) {
				struct timespec ts = {
					.tv_sec = pr->compute_ns / NSEC,
					.tv_nsec = pr->compute_ns % NSEC,
				};

				ret = llmdev_kv_prefetch(kv, refs, n, &fence);
				if (ret)
					break;
				nanosleep(&ts, NULL);	/* the step that overlaps it */
			}
			t0 = now_ns();
			ret = llmdev_kv_pin(kv, refs, n, off);
			s[d][k] = now_ns() - t0;
			if (!ret) {
				ret = bench_data(kv, off, seed, NULL, n, bs, buf, false);
				said = ret;
			}
			if (!ret)
				ret = llmdev_kv_unpin(kv, refs, n);
		}
		if (!ret && !d) {
			uint64_t p99;

			quantiles(s[0], 16, &pr->without_ns, &p99);
			pr->compute_ns = 2 * pr->without_ns;
		}
	}
	if (!ret) {
		uint64_t p99;

		quantiles(s[1], 16, &pr->with_ns, &p99);
	} else if (!said) {
		msg("%s: prefetch bench: %s", llmdev_name(dev), llmdev_strerror(ret));
	}
	llmdev_kv_destroy(kv);
	free(refs);
	free(off);
	free(seed);
	free(buf);
	return ret;
}

static void print_result(const struct result *r, double single)
{
	char b[16];

	print_open_object(NULL);
	print_string(PRINT_ANY, "dir", "%-4s", r->out ? "out" : "in");
	print_u64(PRINT_JSON, "block_size", NULL, r->bs);
	print_string(PRINT_FP, NULL, " %8s", human_bytes(r->bs, b, sizeof(b)));
	print_u64(PRINT_ANY, "batch", " %6" PRIu64, r->batch);
	print_float(PRINT_ANY, "blocks_per_s", " %11.0f", r->blocks_per_s);
	print_float(PRINT_ANY, "gbps", " %7.3f", r->gbps);
	print_u64(PRINT_ANY, "median_ns", " %11" PRIu64, r->med);
	print_u64(PRINT_ANY, "p99_ns", " %11" PRIu64, r->p99);
	print_float(PRINT_JSON, "single_64m_gbps", NULL, single);
	if (single > 0)
		print_float(PRINT_ANY, "vs_single_64m", " %6.2f", r->gbps / single);
	else
		print_null(PRINT_ANY, "vs_single_64m", " %6s", "-");
	if (r->transfers)	/* a per_block row: the reference itself */
		print_uint(PRINT_JSON, "transfers", NULL, r->transfers);
	if (r->rounds)		/* a results row: the rounds its figures are of */
		print_uint(PRINT_JSON, "rounds", NULL, r->rounds);
	if (r->per_block[PB_PLAIN] > 0) {
		print_float(PRINT_JSON, "per_block_blocks_per_s", NULL, r->per_block[PB_PLAIN]);
		print_float(PRINT_ANY, "vs_per_block", " %6.1f",
			    r->blocks_per_s / r->per_block[PB_PLAIN]);
	} else {
		print_null(PRINT_JSON, "per_block_blocks_per_s", NULL, NULL);
		print_null(PRINT_ANY, "vs_per_block", " %6s", "-");
	}
	if (r->per_block[PB_REG] > 0) {
		print_float(PRINT_JSON, "per_block_registered_blocks_per_s", NULL,
			    r->per_block[PB_REG]);
		print_float(PRINT_ANY, "vs_per_block_registered", " %6.1f",
			    r->blocks_per_s / r->per_block[PB_REG]);
	} else {
		print_null(PRINT_JSON, "per_block_registered_blocks_per_s", NULL, NULL);
		print_null(PRINT_ANY, "vs_per_block_registered", " %6s", "-");
	}
	print_text("\n");
	print_close_object();
}

static const char bench_usage[] =
	"usage: llmctl kv bench [DEV] [--block-sizes LIST] [--batches LIST]\n"
	"                       [--max-bytes SIZE] [--time SEC] [--json]\n\n"
	"Swap-out (HBM to host memory: one eviction round) and swap-in (host memory\n"
	"to HBM: one pin) of KV blocks through a libllmdev KV pool on DEV (default\n"
	"card 0), for every block size and batch (blocks per round) with batch *\n"
	"size <= --max-bytes. Beside three references, each also measured between\n"
	"the rounds of every figure, which is compared with them: one 64 MiB\n"
	"transfer from a registered buffer (vs64M); one transfer per block\n"
	"(llmdev_dma_submit and a wait each: vs1); one transfer per block from a\n"
	"registered buffer, submitted and waited for in one call (vs1reg). Then the\n"
	"pin time of a step with and without a prefetch one step ahead. Every\n"
	"block's bytes are checked after its swaps.\n"
	"Throughput (GB/s = 1e9 B/s) and blocks/s come from the median round; the\n"
	"round after the references is not timed.\n\n"
	"  --block-sizes LIST  default 16K,64K,256K,1M,2M\n"
	"  --batches LIST      default 1,16,256,1000,4096\n"
	"  --max-bytes SIZE    default 64M\n"
	"  --time SEC          time per measurement, at least 5 rounds (default 0.5)";

static int kv_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "block-sizes", required_argument, NULL, 'b' },
		{ "batches", required_argument, NULL, 'n' },
		{ "max-bytes", required_argument, NULL, 'm' },
		{ "time", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct bench_opts o = {
		.bs = { 16 << 10, 64 << 10, 256 << 10, 1 << 20, 2 << 20 }, .nbs = 5,
		.batch = { 1, 16, 256, 1000, 4096 }, .nbatch = 5,
		.max_bytes = 64 << 20, .secs = 0.5, .per_block_max = 256,
	};
	struct result *res = NULL, pbr[PB_WAYS][2 * KV_MAX_LIST];
	struct pblock pb = { 0 };
	struct prefetch_result pr = { 0 };
	struct single sg = { 0 };
	double gin = 0, gout = 0, single, tgt_ratio[2] = { -1, -1 }, tgt_x[PB_WAYS][2] = { { -1, -1 }, { -1, -1 } };
	unsigned int nres = 0, npb = 0, todo = 0, i, j, w;
	uint8_t *buf = MAP_FAILED;
	uint64_t buflen;
	struct llmdev *dev;
	char *end;
	int c, ret = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (parse_list(optarg, o.bs, &o.nbs, true))
				return usage_err("kv bench: --block-sizes wants sizes like 16K,64K, not '%s'", optarg);
			for (i = 0; i < o.nbs; i++)
				if (o.bs[i] % 4096 || o.bs[i] > LLMDEV_DMA_MAX_LENGTH)
					return usage_err("kv bench: a block size is a multiple of 4 KiB up to 1 GiB, not '%s'", optarg);
			break;
		case 'n':
			if (parse_list(optarg, o.batch, &o.nbatch, false))
				return usage_err("kv bench: --batches wants counts like 1,16,256, not '%s'", optarg);
			for (i = 0; i < o.nbatch; i++)
				if (o.batch[i] > LLMDEV_BATCH_MAX)
					return usage_err("kv bench: a batch is at most %u blocks", LLMDEV_BATCH_MAX);
			break;
		case 'm':
			if (parse_size(optarg, &o.max_bytes) || o.max_bytes < 4096)
				return usage_err("kv bench: --max-bytes wants a size, not '%s'", optarg);
			break;
		case 't':
			o.secs = strtod(optarg, &end);
			if (*end || !(o.secs > 0) || o.secs > 600)
				return usage_err("kv bench: --time wants seconds (> 0), not '%s'", optarg);
			break;
		case 'h':
			puts(bench_usage);
			return 0;
		default:
			return usage_hint();
		}
	}
	if (argc - optind > 1)
		return usage_err("kv bench: one card at most");
	/* the figures: each batch of each block size up to --max-bytes */
	for (i = 0; i < o.nbs; i++)
		for (j = 0; j < o.nbatch; j++)
			todo += o.batch[j] * o.bs[i] <= o.max_bytes;
	if (!todo)
		return usage_err("kv bench: nothing to measure: every batch of every block size is over --max-bytes (%" PRIu64 " bytes)",
				 o.max_bytes);
	if (need_driver() || open_card(optind < argc ? argv[optind] : "0", &dev))
		return EXIT_FAIL;
	buflen = o.max_bytes > SINGLE_LEN ? o.max_bytes : SINGLE_LEN;
	buf = mmap(NULL, buflen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	res = calloc(2 * o.nbs * o.nbatch, sizeof(*res));
	if (buf == MAP_FAILED || !res) {
		msg("out of memory for %" PRIu64 " bytes", buflen);
		ret = EXIT_FAIL;
		goto out;
	}
	catch_signals(false);
	if (single_open(dev, &sg) || bench_single(&sg, o.secs)) {
		ret = EXIT_FAIL;
		goto out;
	}
	for (i = 0; i < o.nbs && !stop; i++) {
		uint64_t n = o.max_bytes / o.bs[i];

		if (!n)
			continue;
		if (n > o.per_block_max)
			n = o.per_block_max;
		if (pb_open(dev, o.bs[i], n, &pb) || pb_run(&pb, n)) {
			ret = EXIT_FAIL;
			goto out;
		}
		for (j = 0; j < o.nbatch && !stop; j++) {
			if (o.batch[j] * o.bs[i] > o.max_bytes)
				continue;
			if (bench_one(dev, o.bs[i], o.batch[j], o.secs, buf, &sg, &pb,
				      &res[nres], &res[nres + 1])) {
				ret = EXIT_FAIL;
				goto out;
			}
			/* the targets: 1000 blocks of 64 KiB, against the references taken with them */
			if (o.bs[i] == 65536 && o.batch[j] == 1000) {
				tgt_ratio[0] = res[nres].gbps / res[nres].single;
				tgt_ratio[1] = res[nres + 1].gbps / res[nres + 1].single;
				for (w = 0; w < PB_WAYS; w++) {
					tgt_x[w][0] = res[nres].blocks_per_s /
						      res[nres].per_block[w];
					tgt_x[w][1] = res[nres + 1].blocks_per_s /
						      res[nres + 1].per_block[w];
				}
			}
			nres += 2;
		}
		/* the block size's rows: all of its transfers, in then out */
		for (w = 0; w < PB_WAYS; w++) {
			pb_figure(&pb, w, 0, 0, &pbr[w][npb]);
			pb_figure(&pb, w, 1, 0, &pbr[w][npb + 1]);
		}
		npb += 2;
		ret = pb_check(&pb);
		pb_close(&pb);
		if (ret) {
			ret = EXIT_FAIL;
			goto out;
		}
	}
	if (stop) {
		msg("interrupted");
		ret = EXIT_FAIL;
		goto out;
	}
	if (o.max_bytes >= 256 * 65536 && bench_prefetch(dev, 65536, 256, &pr)) {
		ret = EXIT_FAIL;
		goto out;
	}

	/* every reference transfer checked; the whole run's median for the top line */
	if (single_check(&sg)) {
		ret = EXIT_FAIL;
		goto out;
	}
	gin = single_gbps(&sg, 0, 0);
	gout = single_gbps(&sg, 1, 0);
	single = (gin + gout) / 2;
	print_start("llmdev.kv-bench/1");
	print_int(PRINT_ANY, "card", "card llmdev%d", card_index(dev));
	print_u64(PRINT_JSON, "max_bytes", NULL, o.max_bytes);
	print_float(PRINT_ANY, "time_s", ", %.2f s per measurement\n", o.secs);
	print_float(PRINT_ANY, "single_64m_gbps", "one 64 MiB transfer: %.3f GB/s", single);
	print_float(PRINT_ANY, "single_64m_in_gbps", " (in %.3f", gin);
	print_float(PRINT_ANY, "single_64m_out_gbps", ", out %.3f)\n\n", gout);
	print_text("%-4s %8s %6s %11s %7s %11s %11s %6s %6s %6s\n", "dir", "block", "batch",
		   "blocks/s", "GB/s", "median ns", "p99 ns", "vs64M", "vs1", "vs1reg");
	print_open_array("results");
	for (i = 0; i < nres; i++)
		print_result(&res[i], res[i].single);
	print_close_array();
	print_text("\none transfer per block (vs1: llmdev_dma_submit + llmdev_fence_wait):\n");
	print_open_array("per_block");
	for (i = 0; i < npb; i++)
		print_result(&pbr[PB_PLAIN][i], pbr[PB_PLAIN][i].out ? gout : gin);
	print_close_array();
	print_text("\none registered transfer per block (vs1reg: a batch of one, waited in the call):\n");
	print_open_array("per_block_registered");
	for (i = 0; i < npb; i++)
		print_result(&pbr[PB_REG][i], pbr[PB_REG][i].out ? gout : gin);
	print_close_array();
	print_open_object("prefetch");
	if (pr.n) {
		print_u64(PRINT_ANY, "block_size", "\nprefetch: %" PRIu64 " B blocks", pr.bs);
		print_u64(PRINT_ANY, "blocks", " x %" PRIu64, pr.n);
		print_u64(PRINT_ANY, "compute_ns", ", step %" PRIu64 " ns", pr.compute_ns);
		print_u64(PRINT_ANY, "pin_without_ns", ": pin %" PRIu64 " ns without", pr.without_ns);
		print_u64(PRINT_ANY, "pin_with_ns", ", %" PRIu64 " ns with a prefetch", pr.with_ns);
		print_float(PRINT_ANY, "ratio", " (%.3f)\n", (double)pr.with_ns / pr.without_ns);
	}
	print_close_object();
	print_open_object("targets");
	print_text("\ntargets (1000 blocks of 64 KiB in one batch):\n");
	if (tgt_ratio[0] >= 0) {
		print_float(PRINT_ANY, "batch_vs_single_64m_out", "  out: %.2f of one 64 MiB transfer (>= 0.80)", tgt_ratio[0]);
		print_float(PRINT_ANY, "batch_vs_single_64m_in", ", in: %.2f\n", tgt_ratio[1]);
		print_float(PRINT_ANY, "blocks_per_s_vs_per_block_out", "  out: %.1fx the blocks/s of one transfer per block (>= 10)", tgt_x[PB_PLAIN][0]);
		print_float(PRINT_ANY, "blocks_per_s_vs_per_block_in", ", in: %.1fx\n", tgt_x[PB_PLAIN][1]);
		print_float(PRINT_ANY, "blocks_per_s_vs_per_block_registered_out", "  (no target) out: %.1fx the blocks/s of one registered transfer per block", tgt_x[PB_REG][0]);
		print_float(PRINT_ANY, "blocks_per_s_vs_per_block_registered_in", ", in: %.1fx\n", tgt_x[PB_REG][1]);
	} else {
		print_null(PRINT_ANY, "batch_vs_single_64m_out", "  %s\n", "(not measured: needs 64K blocks, batch 1000)");
		print_null(PRINT_JSON, "batch_vs_single_64m_in", NULL, NULL);
		print_null(PRINT_JSON, "blocks_per_s_vs_per_block_out", NULL, NULL);
		print_null(PRINT_JSON, "blocks_per_s_vs_per_block_in", NULL, NULL);
		print_null(PRINT_JSON, "blocks_per_s_vs_per_block_registered_out", NULL, NULL);
		print_null(PRINT_JSON, "blocks_per_s_vs_per_block_registered_in", NULL, NULL);
	}
	if (pr.n)
		print_float(PRINT_ANY, "prefetch_ratio", "  prefetch: pin with / without %.3f (<= 0.10)\n",
			    (double)pr.with_ns / pr.without_ns);
	else
		print_null(PRINT_ANY, "prefetch_ratio", "  prefetch: %s\n", "not measured");
	print_close_object();
	ret = print_done();
out:
	pb_close(&pb);
	single_close(&sg);
	if (buf != MAP_FAILED)
		munmap(buf, buflen);
	free(res);
	llmdev_close(dev);
	return ret;
}

/* ---- stats ----------------------------------------------------------------------- */

static const char *stats_dir(void)
{
	const char *d = getenv("LLMDEV_KV_STATS_DIR");

	return d && *d ? d : LLMDEV_KV_STATS_DIR;
}

static void print_pool(const char *path, const struct llmdev_kv_stats *s)
{
	char b[16];
	unsigned int t;

	print_open_object(NULL);
	print_int(PRINT_ANY, "pid", "pid %d", s->pid);
	print_string(PRINT_ANY, "name", " pool %s", s->name);
	if (s->card >= 0)
		print_int(PRINT_ANY, "card", " on llmdev%d", s->card);
	else
		print_null(PRINT_ANY, "card", " on %s", "no card");
	print_bool(PRINT_JSON, "alive", NULL, s->alive);
	print_string(PRINT_FP, NULL, "%s\n", s->alive ? "" : " (process exited)");
	print_string(PRINT_JSON, "path", NULL, path);
	print_u64(PRINT_JSON, "block_size", NULL, s->block_size);
	print_string(PRINT_FP, NULL, "  blocks of %s", human_bytes(s->block_size, b, sizeof(b)));
	print_u64(PRINT_ANY, "blocks", ": %" PRIu64, s->blocks);
	print_u64(PRINT_ANY, "cached", " (%" PRIu64 " cached", s->cached);
	print_u64(PRINT_ANY, "hashed", ", %" PRIu64 " hashed)", s->hashed);
	print_u64(PRINT_ANY, "sequences", ", %" PRIu64 " sequences\n", s->sequences);
	print_u64(PRINT_ANY, "lookup_hits", "  prefix lookups: %" PRIu64 " hits", s->lookup_hits);
	print_u64(PRINT_ANY, "lookup_misses", ", %" PRIu64 " misses", s->lookup_misses);
	print_u64(PRINT_ANY, "lost", "; %" PRIu64 " lost", s->lost);
	print_u64(PRINT_ANY, "errors", ", %" PRIu64 " failed moves\n", s->errors);
	print_text("  %-5s %9s %9s %7s %9s %9s %9s %7s %10s %10s %12s %12s\n", "tier",
		   "blocks", "used", "pinned", "hits", "misses", "evicted", "drops",
		   "in", "out", "swap-in p50", "p99");
	print_open_array("tiers");
	for (t = 0; t < LLMDEV_KV_TIERS; t++) {
		const struct llmdev_kv_tier_stats *x = &s->tier[t];

		print_open_object(NULL);
		print_string(PRINT_ANY, "tier", "  %-5s", tier_names[t]);
		print_u64(PRINT_ANY, "blocks", " %9" PRIu64, x->blocks);
		print_u64(PRINT_ANY, "used", " %9" PRIu64, x->used);
		print_u64(PRINT_ANY, "pinned", " %7" PRIu64, x->pinned);
		print_u64(PRINT_ANY, "hits", " %9" PRIu64, x->hits);
		print_u64(PRINT_ANY, "misses", " %9" PRIu64, x->misses);
		print_u64(PRINT_ANY, "evictions", " %9" PRIu64, x->evictions);
		print_u64(PRINT_ANY, "drops", " %7" PRIu64, x->drops);
		print_bytes(PRINT_ANY, "bytes_in", " %10s", x->bytes_in);
		print_bytes(PRINT_ANY, "bytes_out", " %10s", x->bytes_out);
		print_u64(PRINT_JSON, "swap_in", NULL, x->swap_in);
		print_u64(PRINT_ANY, "swap_in_median_ns", " %10" PRIu64 "ns", x->swap_in_median_ns);
		print_u64(PRINT_ANY, "swap_in_p99_ns", " %10" PRIu64 "ns\n", x->swap_in_p99_ns);
		print_u64(PRINT_JSON, "swap_out", NULL, x->swap_out);
		print_u64(PRINT_JSON, "swap_out_median_ns", NULL, x->swap_out_median_ns);
		print_u64(PRINT_JSON, "swap_out_p99_ns", NULL, x->swap_out_p99_ns);
		print_close_object();
	}
	print_close_array();
	print_close_object();
}

static int kv_stats(int argc, char **argv)
{
	struct dirent **names = NULL;
	const char *dir = stats_dir();
	size_t plen = strlen(LLMDEV_KV_STATS_PREFIX);
	long pid = 0;
	char *end, path[512];
	int n, i, shown = 0, bad = 0, ret;

	if (has_help(argc, argv)) {
		puts("usage: llmctl kv stats [PID] [--json]\n\n"
		     "The KV pools that processes (PID: that one) have open: tiers, hits,\n"
		     "evictions, bytes moved and swap latencies, from the pools' statistics\n"
		     "files in $LLMDEV_KV_STATS_DIR (default " LLMDEV_KV_STATS_DIR "). A pool\n"
		     "whose process exited without closing it is shown as exited.");
		return 0;
	}
	if (argc > 2)
		return usage_err("usage: llmctl kv stats [PID]");
	if (argc == 2) {
		pid = strtol(argv[1], &end, 10);
		if (*end || end == argv[1] || pid <= 0)
			return usage_err("kv stats: PID must be a process id, not '%s'", argv[1]);
	}
	n = scandir(dir, &names, NULL, alphasort);
	if (n < 0) {
		msg("%s: %s", dir, strerror(errno));
		return EXIT_FAIL;
	}
	print_start("llmdev.kv-stats/1");
	print_open_array("pools");
	for (i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		struct llmdev_kv_stats s;

		/* LLMDEV_KV_STATS_PREFIX<pid>.<n>; with PID, that pid's only */
		if (!strncmp(name, LLMDEV_KV_STATS_PREFIX, plen) &&
		    (!pid || (strtol(name + plen, &end, 10) == pid && *end == '.'))) {
			snprintf(path, sizeof(path), "%s/%s", dir, name);
			ret = llmdev_kv_stats_read(path, &s, sizeof(s));
			if (!ret && (!pid || s.pid == pid)) {
				if (shown++)
					print_text("\n");
				print_pool(path, &s);
			} else if (ret && ret != -ENOENT) {	/* -ENOENT: just closed */
				msg("%s: %s", path,
				    ret == -EINVAL ? "not a KV pool's statistics file (or of another version)" :
				    ret == -ELOOP ? "a symlink (not followed)" :
				    llmdev_strerror(ret));
				bad++;
			}
		}
		free(names[i]);
	}
	free(names);
	print_close_array();
	if (!shown && pid)
		print_text("process %ld has no KV pool\n", pid);
	else if (!shown)
		print_text("no KV pools\n");
	ret = print_done();
	/* the pools that could be read are shown; the others are a failure */
	return ret ? ret : bad ? EXIT_FAIL : 0;
}

int cmd_kv(int argc, char **argv)
{
	if (argc < 2 || is_help(argv[1])) {
		if (argc < 2)
			return usage_err("usage: llmctl kv bench|stats ...");
		puts("usage: llmctl kv bench [DEV] [options] [--json]\n"
		     "       llmctl kv stats [PID] [--json]\n\n"
		     "bench  swap throughput and latency of KV blocks (see 'kv bench --help')\n"
		     "stats  the KV pools processes have open");
		return 0;
	}
	if (!strcmp(argv[1], "bench")) {
		argv[1] = "llmctl kv bench";	/* for getopt_long()'s messages */
		return kv_bench(argc - 1, argv + 1);
	}
	if (!strcmp(argv[1], "stats"))
		return kv_stats(argc - 1, argv + 1);
	return usage_err("kv: unknown subcommand '%s'", argv[1]);
}
