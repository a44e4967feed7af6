// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * Host test of the KV pool's bookkeeping (lib/kvpool.c), on the kernel's
 * kselftest harness, without a card: the pool runs on a backend that keeps
 * "HBM" in memory and does a batch's copies only when its fence is reaped,
 * so a slot reused while a batch is in flight, or a source changed before
 * the end of its move, shows up as wrong data. The disk tier is a real
 * O_DIRECT file in $TMPDIR (or /tmp).
 *
 * Every data test checks the blocks against a plain map kept by the test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "llmdev.h"
#include "kvpool.h"

#define BS	4096
#ifndef MIN
#define MIN(a, b)	((a) < (b) ? (a) : (b))
#endif

/* ---- the memory backend ------------------------------------------------------ */

#define FAKE_MAX_FENCES	256

struct fake {
	pthread_mutex_t lock;
	uint8_t *hbm;
	uint64_t hbm_len;
	uint8_t *host;
	uint64_t host_len;
	uint64_t next;
	struct {
		uint64_t fence;
		struct llmdev_dma_op *ops;
		unsigned int n;
		int status;
	} q[FAKE_MAX_FENCES];
	int fail_next;		/* the next batch's status */
	int refuse_next;	/* the next batch call's error */
	int copy_fail;		/* the next copy's error */
	unsigned int fail_skip;	/* batches that go through before those */
	unsigned int refuse_skip;
	unsigned int batches;	/* batch calls that queued */
	unsigned int in_call;	/* of those, waited for in the call */
	bool late_next;		/* the next in-call wait runs out (-ETIME) */
	unsigned int ops;	/* transfers queued */
};

static int fake_setup(void *priv, struct llmdev *dev, uint64_t hbm_len,
		      void *host, uint64_t host_len, uint32_t *region,
		      uint32_t *hostbuf)
{
	struct fake *f = priv;

	(void)dev;
	f->hbm = calloc(1, hbm_len);
	if (!f->hbm)
		return -ENOMEM;
	f->hbm_len = hbm_len;
	f->host = host;
	f->host_len = host_len;
	*region = 7;
	*hostbuf = 3;
	return 0;
}

static void fake_teardown(void *priv, struct llmdev *dev, uint32_t region,
			  uint32_t hostbuf, bool have_host)
{
	struct fake *f = priv;

	(void)dev; (void)region; (void)hostbuf; (void)have_host;
	free(f->hbm);
	f->hbm = NULL;
}

static int fake_batch(void *priv, struct llmdev *dev,
		      const struct llmdev_dma_op *ops, unsigned int n,
		      uint64_t *fence)
{
	struct fake *f = priv;
	unsigned int i, k;
	int ret = 0;

	(void)dev;
	pthread_mutex_lock(&f->lock);
	if (f->refuse_next && f->refuse_skip) {
		f->refuse_skip--;
	} else if (f->refuse_next) {
		ret = f->refuse_next;
		f->refuse_next = 0;
		goto out;
	}
	for (i = 0; i < n; i++) {
		/* what the driver checks */
		if (ops[i].handle != 7 || ops[i].buf != 3 ||
		    !(ops[i].flags & LLMDEV_OP_BUF) ||
		    ops[i].offset + ops[i].length > f->hbm_len ||
		    ops[i].buf_offset + ops[i].length > f->host_len) {
			ret = -EINVAL;
			goto out;
		}
	}
	for (k = 0; k < FAKE_MAX_FENCES && f->q[k].fence; k++)
		;
	if (k == FAKE_MAX_FENCES) {
		ret = -EAGAIN;
		goto out;
	}
	f->q[k].ops = malloc(sizeof(*ops) * n);
	if (!f->q[k].ops) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(f->q[k].ops, ops, sizeof(*ops) * n);
	f->q[k].n = n;
	f->q[k].fence = ++f->next;
	if (f->fail_next && f->fail_skip) {
		f->fail_skip--;
	} else {
		f->q[k].status = f->fail_next;
		f->fail_next = 0;
	}
	f->batches++;
	f->ops += n;
	*fence = f->q[k].fence;
out:
	pthread_mutex_unlock(&f->lock);
	return ret;
}

/* timeout 0: "still running"; otherwise the copies happen now */
static int fake_wait(void *priv, struct llmdev *dev, uint64_t fence,
		     uint64_t timeout_ns, int *status)
{
	struct fake *f = priv;
	unsigned int k, i;
	int ret = -ENOENT;

	(void)dev;
	pthread_mutex_lock(&f->lock);
	for (k = 0; k < FAKE_MAX_FENCES; k++) {
		struct llmdev_dma_op *op = f->q[k].ops;

		if (f->q[k].fence != fence)
			continue;
		if (!timeout_ns) {
			ret = -ETIME;
			break;
		}
		for (i = 0; !f->q[k].status && i < f->q[k].n; i++) {
			if (op[i].flags & LLMDEV_OP_TO_CARD)
				memcpy(f->hbm + op[i].offset,
				       f->host + op[i].buf_offset, op[i].length);
			else
				memcpy(f->host + op[i].buf_offset,
				       f->hbm + op[i].offset, op[i].length);
		}
		*status = f->q[k].status;
		free(op);
		memset(&f->q[k], 0, sizeof(f->q[k]));
		ret = 0;
		break;
	}
	pthread_mutex_unlock(&f->lock);
	return ret;
}

/* queue, then wait: copies now, unless late_next says the time ran out */
static int fake_batch_wait(void *priv, struct llmdev *dev,
			   const struct llmdev_dma_op *ops, unsigned int n,
			   uint64_t timeout_ns, uint64_t *fence, int *status)
{
	struct fake *f = priv;
	bool late;
	int ret;

	ret = fake_batch(priv, dev, ops, n, fence);
	if (ret)
		return ret;
	pthread_mutex_lock(&f->lock);
	f->in_call++;
	late = f->late_next;
	f->late_next = false;
	pthread_mutex_unlock(&f->lock);
	return fake_wait(priv, dev, *fence, late ? 0 : timeout_ns, status);
}

static int fake_copy(void *priv, struct llmdev *dev, uint32_t region,
		     bool to_card, uint64_t off, void *buf, uint64_t len,
		     uint64_t timeout_ns)
{
	struct fake *f = priv;

	(void)dev; (void)timeout_ns;
	if (region != 7 || off + len > f->hbm_len)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	if (f->copy_fail) {
		int ret = f->copy_fail;

		f->copy_fail = 0;
		pthread_mutex_unlock(&f->lock);
		return ret;
	}
	if (to_card)
		memcpy(f->hbm + off, buf, len);
	else
		memcpy(buf, f->hbm + off, len);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static const struct kv_backend fake_be = {
	.setup = fake_setup, .teardown = fake_teardown, .batch = fake_batch,
	.wait = fake_wait, .batch_wait = fake_batch_wait, .copy = fake_copy,
};

/*
 * realloc() (linked with --wrap=realloc, the pool's included) fails while
 * this is set: the pool's arrays cannot grow.
 */
static bool realloc_fails;

void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

/*
 * realloc_pause: the next realloc() (the pool growing an array) tells
 * realloc_paused, then waits a while before it returns, with the old array
 * freed and the new one not yet stored in the pool.
 */
static volatile int realloc_pause, realloc_paused;

void *__wrap_realloc(void *p, size_t n)
{
	void *q;

	if (realloc_fails)
		return NULL;
	if (!p || !realloc_pause ||
	    !__atomic_exchange_n(&realloc_pause, 0, __ATOMIC_SEQ_CST))
		return __real_realloc(p, n);
	/* moved for sure: the old array is freed, as a realloc() may do */
	q = malloc(n);
	if (q) {
		memcpy(q, p, MIN(n, malloc_usable_size(p)));
		free(p);
	}
	__atomic_store_n(&realloc_paused, 1, __ATOMIC_SEQ_CST);
	usleep(100 * 1000);
	return q;
}

/* ---- helpers ---------------------------------------------------------------------- */

static uint64_t rng_state = 0x12345678;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* block (seq, index) generation @gen: its bytes */
static void pattern(uint8_t *p, uint64_t seq, uint32_t index, uint32_t gen)
{
	uint64_t x = seq * 1000003 + index * 7919 + gen * 104729 + 1, i;

	for (i = 0; i < BS; i += 8) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		memcpy(p + i, &x, 8);
	}
}

static char disk_path[256];
static bool wm_default;

static const char *tmpdir(void)
{
	const char *t = getenv("TMPDIR");

	return t && *t ? t : "/tmp";
}

/*
 * Blocks 0..@n-1 of sequence @seq, block i written with pattern(@seq, i,
 * @tag); their refs to @r, unless NULL.
 */
static int fill(struct llmdev_kv *kv, uint64_t seq, uint32_t n, uint32_t tag,
		struct llmdev_kv_ref *r)
{
	uint8_t want[BS];
	uint32_t i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = llmdev_kv_alloc(kv, seq, i);
		if (!ret) {
			pattern(want, seq, i, tag);
			ret = llmdev_kv_write(kv, seq, i, want);
		}
		if (ret)
			return ret;
		if (r)
			r[i] = (struct llmdev_kv_ref){ .seq = seq, .index = i };
	}
	return 0;
}

static struct llmdev_kv *mkpool(struct fake *f, uint64_t hbm, uint64_t host,
				uint64_t disk)
{
	/* no watermark rounds unless a test asks (wm_default) */
	LLMDEV_KV_OPTS(o, .block_size = BS, .hbm_blocks = hbm,
		       .host_blocks = host, .disk_blocks = disk,
		       .flags = LLMDEV_KV_NO_STATS_FILE,
		       .hbm_high_pct = 100, .hbm_low_pct = 99,
		       .host_high_pct = 100, .host_low_pct = 99);
	struct llmdev_kv *kv = NULL;

	if (wm_default) {
		o.hbm_high_pct = o.hbm_low_pct = 0;
		o.host_high_pct = o.host_low_pct = 0;
	}

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	if (disk) {
		snprintf(disk_path, sizeof(disk_path), "%s/kvpool-test.%d",
			 tmpdir(), getpid());
		o.disk_path = disk_path;
	}
	if (llmdev__kv_create_backend(NULL, &o, &fake_be, f, &kv))
		return NULL;
	return kv;
}

static void rmpool(struct llmdev_kv *kv)
{
	llmdev_kv_destroy(kv);
	if (disk_path[0])
		unlink(disk_path);
	disk_path[0] = 0;
}

/* the HBM copy of a pinned block */
static uint8_t *hbm_at(struct fake *f, uint64_t off)
{
	return f->hbm + off;
}

/* ---- options ---------------------------------------------------------------------- */

TEST(opts_checked)
{
	struct fake f;
	struct llmdev_kv *kv = NULL;
	struct {
		struct llmdev_kv_opts o;
		uint64_t more;
	} big;
	LLMDEV_KV_OPTS(o, .block_size = BS, .hbm_blocks = 4);

	memset(&f, 0, sizeof(f));
	o.flags = LLMDEV_KV_NO_STATS_FILE;
	ASSERT_EQ(-EINVAL, llmdev_kv_create(NULL, &o, &kv));
	ASSERT_EQ(-EINVAL, llmdev__kv_create_backend(NULL, NULL, &fake_be, &f, &kv));
	o.sz = 8;
	ASSERT_EQ(-EINVAL, llmdev__kv_create_backend(NULL, &o, &fake_be, &f, &kv));
	EXPECT_EQ(EINVAL, errno);
	o.sz = sizeof(o);
	o.block_size = 1000;
	ASSERT_EQ(-EINVAL, llmdev__kv_create_backend(NULL, &o, &fake_be, &f, &kv));
	o.block_size = BS;
	o.hbm_blocks = 0;
	ASSERT_EQ(-EINVAL, llmdev__kv_create_backend(NULL, &o, &fake_be, &f, &kv));
	o.hbm_blocks = 4;
	o.disk_blocks = 4;	/* no host tier, no path */
	ASSERT_EQ(-EINVAL, llmdev__kv_create_backend(NULL, &o, &fake_be, &f, &kv));
	o.disk_blocks = 0;
	o.hbm_high_pct = 50;
	o.hbm_low_pct = 60;
	ASSERT_EQ(-EINVAL, llmdev__kv_create_backend(NULL, &o, &fake_be, &f, &kv));
	o.hbm_high_pct = o.hbm_low_pct = 0;
	o.name = "a name that is much too long for the pool";
	ASSERT_EQ(-EINVAL, llmdev__kv_create_backend(NULL, &o, &fake_be, &f, &kv));
	o.name = NULL;
	o.flags |= 1U << 7;
	ASSERT_EQ(-EINVAL, llmdev__kv_create_backend(NULL, &o, &fake_be, &f, &kv));
	o.flags = LLMDEV_KV_NO_STATS_FILE;
	/* a newer caller's struct: zero tail fine, non-zero tail E2BIG */
	memset(&big, 0, sizeof(big));
	big.o = o;
	big.o.sz = sizeof(big);
	big.more = 1;
	ASSERT_EQ(-E2BIG, llmdev__kv_create_backend(NULL, &big.o, &fake_be, &f, &kv));
	big.more = 0;
	ASSERT_EQ(0, llmdev__kv_create_backend(NULL, &big.o, &fake_be, &f, &kv));
	llmdev_kv_destroy(kv);
	/* a tmpfs file refuses O_DIRECT */
	if (!access("/dev/shm", W_OK)) {
		char p[64];
		int fd;

		snprintf(p, sizeof(p), "/dev/shm/kvpool-test.%d", getpid());
		fd = open(p, O_RDWR | O_CREAT | O_DIRECT, 0600);
		if (fd >= 0) {
			/* tmpfs has O_DIRECT since Linux 6.6 */
			TH_LOG("/dev/shm takes O_DIRECT here: refusal not tested");
			close(fd);
			unlink(p);
			return;
		}
		o.host_blocks = 4;
		o.disk_blocks = 4;
		o.disk_path = p;
		ASSERT_EQ(-EOPNOTSUPP, llmdev__kv_create_backend(NULL, &o, &fake_be, &f, &kv));
		unlink(p);
	}
}

/* ---- names, sharing, pool full ------------------------------------------------------ */

TEST(alloc_free_full)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 4, 0, 0);
	struct llmdev_kv_stats st;
	uint8_t h[LLMDEV_KV_HASH_LEN] = { 1 };
	int i;

	ASSERT_NE(NULL, kv);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, llmdev_kv_alloc(kv, 1, i));
	ASSERT_EQ(-EEXIST, llmdev_kv_alloc(kv, 1, 0));
	/* no host tier: nothing can make room */
	ASSERT_EQ(-ENOSPC, llmdev_kv_alloc(kv, 2, 0));
	EXPECT_EQ(ENOSPC, errno);
	/* a hashed block freed stays cached, and can be dropped for room */
	ASSERT_EQ(0, llmdev_kv_set_hash(kv, 1, 3, h));
	ASSERT_EQ(0, llmdev_kv_set_hash(kv, 1, 3, h));
	ASSERT_EQ(-EEXIST, llmdev_kv_set_hash(kv, 1, 2, h));
	ASSERT_EQ(0, llmdev_kv_free(kv, 1, 3));
	ASSERT_EQ(-ENOENT, llmdev_kv_free(kv, 1, 3));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_EQ(1, st.cached);
	EXPECT_EQ(4, st.blocks);
	ASSERT_EQ(0, llmdev_kv_lookup(kv, h, 5, 0));	/* reused */
	ASSERT_EQ(-EEXIST, llmdev_kv_lookup(kv, h, 5, 0));
	ASSERT_EQ(0, llmdev_kv_free(kv, 5, 0));
	ASSERT_EQ(0, llmdev_kv_alloc(kv, 2, 0));	/* drops it */
	ASSERT_EQ(-ENOENT, llmdev_kv_lookup(kv, h, 6, 0));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_EQ(0, st.cached);
	EXPECT_EQ(1, st.tier[LLMDEV_KV_HBM].drops);
	EXPECT_EQ(1, st.lookup_hits);
	EXPECT_EQ(1, st.lookup_misses);
	EXPECT_EQ(2, st.sequences);
	ASSERT_EQ(3, llmdev_kv_free_seq(kv, 1));
	ASSERT_EQ(0, llmdev_kv_free_seq(kv, 1));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_EQ(1, st.sequences);
	EXPECT_EQ(1, st.blocks);
	EXPECT_EQ(1, st.tier[LLMDEV_KV_HBM].used);
	/* a short stats struct: EINVAL */
	ASSERT_EQ(-EINVAL, llmdev_kv_get_stats(kv, &st, 8));
	rmpool(kv);
}

/* A new sequence is not left behind, empty, when its entry cannot be had. */
TEST(no_empty_sequence_on_enomem)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 128, 0, 0);
	struct llmdev_kv_stats st;
	uint8_t h[LLMDEV_KV_HASH_LEN] = { 1, 2, 3 };
	int ret;

	ASSERT_NE(NULL, kv);
	/* 63 blocks; a 64th name for one of them fills the names' array */
	ASSERT_EQ(0, fill(kv, 1, 63, 1, NULL));
	ASSERT_EQ(0, llmdev_kv_set_hash(kv, 1, 0, h));
	ASSERT_EQ(0, llmdev_kv_lookup(kv, h, 3, 0));
	/* a block is free, but a 65th name needs the array to grow */
	realloc_fails = true;
	ret = llmdev_kv_alloc(kv, 2, 0);
	realloc_fails = false;
	ASSERT_EQ(-ENOMEM, ret);
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_EQ(2, st.sequences);
	EXPECT_EQ(63, st.blocks);
	ASSERT_EQ(0, llmdev_kv_alloc(kv, 2, 0));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_EQ(3, st.sequences);
	EXPECT_EQ(64, st.blocks);
	rmpool(kv);
}

TEST(pin_limits)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 4, 8, 0);
	struct llmdev_kv_ref r[6];
	uint64_t off[6];
	int i;

	ASSERT_NE(NULL, kv);
	for (i = 0; i < 6; i++) {
		ASSERT_EQ(0, llmdev_kv_alloc(kv, 9, i));
		r[i] = (struct llmdev_kv_ref){ .seq = 9, .index = i };
	}
	/* 6 blocks, 4 HBM slots */
	ASSERT_EQ(-ENOSPC, llmdev_kv_pin(kv, r, 6, off));
	ASSERT_EQ(0, llmdev_kv_pin(kv, r, 4, off));
	ASSERT_EQ(-ENOSPC, llmdev_kv_pin(kv, r + 4, 1, off));
	ASSERT_EQ(-EBUSY, llmdev_kv_free(kv, 9, 0));
	ASSERT_EQ(-EBUSY, llmdev_kv_free_seq(kv, 9));
	/* the same block twice: pinned twice, unpinned twice */
	ASSERT_EQ(0, llmdev_kv_pin(kv, (struct llmdev_kv_ref[]){ r[0], r[0] }, 2, off));
	EXPECT_EQ(off[0], off[1]);
	ASSERT_EQ(0, llmdev_kv_unpin(kv, r, 4));
	ASSERT_EQ(-EINVAL, llmdev_kv_unpin(kv, (struct llmdev_kv_ref[]){ r[0], r[0], r[0] }, 3));
	ASSERT_EQ(0, llmdev_kv_unpin(kv, (struct llmdev_kv_ref[]){ r[0], r[0] }, 2));
	ASSERT_EQ(-EINVAL, llmdev_kv_unpin(kv, r, 1));
	r[5].__reserved = 1;
	ASSERT_EQ(-EINVAL, llmdev_kv_pin(kv, r + 5, 1, off));
	r[5].__reserved = 0;
	ASSERT_EQ(-ENOENT, llmdev_kv_pin(kv, (struct llmdev_kv_ref[]){ { .seq = 77 } }, 1, off));
	ASSERT_EQ(-EINVAL, llmdev_kv_pin(kv, NULL, 1, off));
	ASSERT_EQ(0, llmdev_kv_pin(kv, NULL, 0, NULL));
	rmpool(kv);
}

/* Unpinning a block that is on its way in (a prefetch) fails, harmlessly. */
TEST(unpin_while_moving)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 4, 8, 0);
	struct llmdev_kv_ref r = { .seq = 1, .index = 0 };
	struct llmdev_kv_stats st;
	uint8_t want[BS];
	uint64_t fence, off;

	ASSERT_NE(NULL, kv);
	ASSERT_EQ(0, fill(kv, 1, 4, 1, NULL));
	ASSERT_EQ(4, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 4));
	ASSERT_EQ(0, llmdev_kv_prefetch(kv, &r, 1, &fence));
	ASSERT_EQ(-ETIME, llmdev_kv_wait(kv, fence, 0));
	ASSERT_EQ(-EINVAL, llmdev_kv_unpin(kv, &r, 1));
	ASSERT_EQ(0, llmdev_kv_wait(kv, fence, 1000000000));
	ASSERT_EQ(LLMDEV_KV_HBM, llmdev_kv_tier(kv, 1, 0));
	ASSERT_EQ(0, llmdev_kv_pin(kv, &r, 1, &off));
	ASSERT_GT(4 * BS, off);
	pattern(want, 1, 0, 1);
	ASSERT_EQ(0, memcmp(want, hbm_at(&f, off), BS));
	ASSERT_EQ(0, llmdev_kv_unpin(kv, &r, 1));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_EQ(1, st.tier[LLMDEV_KV_HBM].used);
	EXPECT_EQ(3, st.tier[LLMDEV_KV_HOST].used);
	rmpool(kv);
}

/* ---- data across tiers, against a map --------------------------------------------- */

struct model {
	uint32_t gen[64][32];	/* [seq][index]: 0 = no block */
};

static void random_workout(struct __test_metadata *_metadata, struct fake *f,
			   struct llmdev_kv *kv, unsigned int rounds,
			   unsigned int nseq, unsigned int nidx)
{
	static struct model m;
	uint8_t want[BS], got[BS];
	unsigned int r, gen = 1;

	memset(&m, 0, sizeof(m));
	for (r = 0; r < rounds; r++) {
		uint64_t seq = rnd() % nseq;
		uint32_t idx = rnd() % nidx, i;
		unsigned int op = rnd() % 10;
		int ret;

		if (!m.gen[seq][idx]) {
			ret = llmdev_kv_alloc(kv, seq, idx);
			if (ret == -ENOSPC)
				continue;
			ASSERT_EQ(0, ret);
			m.gen[seq][idx] = ++gen;
			pattern(want, seq, idx, gen);
			ASSERT_EQ(0, llmdev_kv_write(kv, seq, idx, want));
			continue;
		}
		pattern(want, seq, idx, m.gen[seq][idx]);
		switch (op) {
		case 0: case 1: case 2: {	/* a step: pin a few, check in HBM, maybe rewrite */
			struct llmdev_kv_ref refs[4];
			uint64_t off[4];
			unsigned int n = 0, k;

			for (k = 0; k < 4; k++) {
				uint64_t s2 = rnd() % nseq;
				uint32_t i2 = rnd() % nidx;

				if (m.gen[s2][i2])
					refs[n++] = (struct llmdev_kv_ref){ .seq = s2, .index = i2 };
			}
			ret = llmdev_kv_pin(kv, refs, n, off);
			if (ret == -ENOSPC)
				break;
			ASSERT_EQ(0, ret);
			for (k = 0; k < n; k++) {
				pattern(want, refs[k].seq, refs[k].index,
					m.gen[refs[k].seq][refs[k].index]);
				ASSERT_EQ(0, memcmp(want, hbm_at(f, off[k]), BS))
					TH_LOG("round %u: block (%llu, %u) wrong in HBM", r,
					       (unsigned long long)refs[k].seq, refs[k].index);
			}
			if (n && op == 0) {
				/* the step writes its first block */
				m.gen[refs[0].seq][refs[0].index] = ++gen;
				pattern(want, refs[0].seq, refs[0].index, gen);
				memcpy(hbm_at(f, off[0]), want, BS);
			}
			ASSERT_EQ(0, llmdev_kv_unpin(kv, refs, n));
			break;
		}
		case 3:
			ASSERT_EQ(0, llmdev_kv_read(kv, seq, idx, got));
			ASSERT_EQ(0, memcmp(want, got, BS))
				TH_LOG("round %u: read of (%llu, %u) in tier %d wrong", r,
				       (unsigned long long)seq, idx, llmdev_kv_tier(kv, seq, idx));
			break;
		case 4:
			ret = llmdev_kv_evict(kv, LLMDEV_KV_HBM, 1 + rnd() % 8);
			ASSERT_TRUE(ret >= 0 || ret == -ENOSPC);
			break;
		case 5:
			ret = llmdev_kv_evict(kv, LLMDEV_KV_HOST, 1 + rnd() % 8);
			ASSERT_TRUE(ret >= 0 || ret == -EINVAL || ret == -ENOSPC);
			break;
		case 6: {
			uint64_t fence;
			struct llmdev_kv_ref ref = { .seq = seq, .index = idx };

			ret = llmdev_kv_prefetch(kv, &ref, 1, &fence);
			if (ret == -ENOSPC)
				break;
			ASSERT_EQ(0, ret);
			if (rnd() & 1)
				ASSERT_EQ(0, llmdev_kv_wait(kv, fence, 1000000000));
			break;
		}
		case 7:
			ASSERT_EQ(0, llmdev_kv_free(kv, seq, idx));
			m.gen[seq][idx] = 0;
			break;
		default:
			for (i = 0; i < nidx; i++) {
				if (!m.gen[seq][i])
					continue;
				pattern(want, seq, i, m.gen[seq][i]);
				ASSERT_EQ(0, llmdev_kv_read(kv, seq, i, got));
				ASSERT_EQ(0, memcmp(want, got, BS));
			}
			break;
		}
	}
	/* everything, once more, through pins */
	for (uint64_t s = 0; s < nseq; s++)
		for (uint32_t i = 0; i < nidx; i++) {
			struct llmdev_kv_ref ref = { .seq = s, .index = i };
			uint64_t off;

			if (!m.gen[s][i])
				continue;
			pattern(want, s, i, m.gen[s][i]);
			ASSERT_EQ(0, llmdev_kv_pin(kv, &ref, 1, &off));
			ASSERT_EQ(0, memcmp(want, hbm_at(f, off), BS));
			ASSERT_EQ(0, llmdev_kv_unpin(kv, &ref, 1));
		}
}

TEST(random_hbm_host)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 16, 48, 0);

	ASSERT_NE(NULL, kv);
	random_workout(_metadata, &f, kv, 4000, 8, 8);
	rmpool(kv);
}

TEST(random_three_tiers)
{
	struct fake f;
	struct llmdev_kv *kv;

	wm_default = true;	/* with the watermark rounds */
	kv = mkpool(&f, 8, 16, 64);
	wm_default = false;
	struct llmdev_kv_stats st;

	ASSERT_NE(NULL, kv);
	random_workout(_metadata, &f, kv, 6000, 16, 6);
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	TH_LOG("evictions hbm %llu host %llu; hits hbm %llu host %llu disk %llu",
	       (unsigned long long)st.tier[0].evictions, (unsigned long long)st.tier[1].evictions,
	       (unsigned long long)st.tier[0].hits, (unsigned long long)st.tier[1].hits,
	       (unsigned long long)st.tier[2].hits);
	EXPECT_LT(0, st.tier[LLMDEV_KV_HOST].evictions);
	EXPECT_LT(0, st.tier[LLMDEV_KV_DISK].hits);
	EXPECT_EQ(0, st.errors);
	rmpool(kv);
}

/* ---- watermarks, prefetch -------------------------------------------------------------- */

TEST(watermark_round_is_one_batch)
{
	struct fake f;
	struct llmdev_kv *kv;

	wm_default = true;
	kv = mkpool(&f, 20, 40, 0);
	wm_default = false;
	struct llmdev_kv_stats st;
	int i;

	ASSERT_NE(NULL, kv);
	/* 90 % of 20 = 18: the 19th block starts a round down to 75 % = 15 */
	for (i = 0; i < 18; i++)
		ASSERT_EQ(0, llmdev_kv_alloc(kv, 1, i));
	EXPECT_EQ(0, f.batches);
	ASSERT_EQ(0, llmdev_kv_alloc(kv, 1, 18));
	EXPECT_EQ(1, f.batches);
	EXPECT_EQ(4, f.ops);
	/*
	 * not waited for: the slots come back, and the evictions count, when
	 * it is reaped
	 */
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_EQ(0, st.tier[LLMDEV_KV_HBM].evictions);
	EXPECT_EQ(4, st.tier[LLMDEV_KV_HOST].used);
	/* the least recently used went: block 0..3 */
	EXPECT_EQ(LLMDEV_KV_HOST, llmdev_kv_tier(kv, 1, 0));
	EXPECT_EQ(LLMDEV_KV_HOST, llmdev_kv_tier(kv, 1, 3));
	EXPECT_EQ(LLMDEV_KV_HBM, llmdev_kv_tier(kv, 1, 4));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_EQ(4, st.tier[LLMDEV_KV_HBM].evictions);
	EXPECT_EQ(15, st.tier[LLMDEV_KV_HBM].used);
	EXPECT_EQ(1, st.tier[LLMDEV_KV_HBM].swap_out);
	rmpool(kv);
}

TEST(prefetch_then_pin)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 16, 16, 0);
	struct llmdev_kv_ref r[8];
	uint8_t want[BS];
	uint64_t fence, off[8];
	unsigned int b0;
	int i;

	ASSERT_NE(NULL, kv);
	ASSERT_EQ(0, fill(kv, 3, 8, 1, r));
	ASSERT_EQ(8, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 100));
	b0 = f.batches;
	ASSERT_EQ(0, llmdev_kv_prefetch(kv, r, 8, &fence));
	EXPECT_EQ(b0 + 1, f.batches);	/* one batch for the 8 */
	ASSERT_NE(0, fence);
	ASSERT_EQ(-ETIME, llmdev_kv_wait(kv, fence, 0));
	/* pin waits for the prefetch, queues nothing more */
	ASSERT_EQ(0, llmdev_kv_pin(kv, r, 8, off));
	EXPECT_EQ(b0 + 1, f.batches);
	for (i = 0; i < 8; i++) {
		pattern(want, 3, i, 1);
		ASSERT_EQ(0, memcmp(want, hbm_at(&f, off[i]), BS));
	}
	ASSERT_EQ(0, llmdev_kv_wait(kv, fence, 0));	/* done and gone: 0 */
	ASSERT_EQ(0, llmdev_kv_wait(kv, 0, 0));
	ASSERT_EQ(-ENOENT, llmdev_kv_wait(kv, fence + 100, 0));
	ASSERT_EQ(0, llmdev_kv_unpin(kv, r, 8));
	rmpool(kv);
}

/* Every batch of a prefetch reports to its fence; other batches do not. */
TEST(prefetch_fence_covers_its_batches)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 64, 64, 0);
	struct llmdev_kv_ref r[64];
	uint64_t fence, off[64];
	unsigned int b0, skip;
	int i;

	ASSERT_NE(NULL, kv);
	ASSERT_EQ(0, fill(kv, 1, 64, 1, r));
	/* the first batch of two fails, then the second */
	for (skip = 0; skip < 2; skip++) {
		ASSERT_EQ(64, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 64));
		b0 = f.batches;
		f.fail_next = -EIO;
		f.fail_skip = skip;
		ASSERT_EQ(0, llmdev_kv_prefetch(kv, r, 64, &fence));
		ASSERT_EQ(b0 + 2, f.batches);
		ASSERT_EQ(-EIO, llmdev_kv_wait(kv, fence, 1000000000));
		for (i = 0; i < 64; i++)
			EXPECT_EQ(i / 32 == (int)skip ? LLMDEV_KV_HOST : LLMDEV_KV_HBM,
				  llmdev_kv_tier(kv, 1, i));
		/* a pin brings the rest */
		ASSERT_EQ(0, llmdev_kv_pin(kv, r, 64, off));
		ASSERT_EQ(0, llmdev_kv_unpin(kv, r, 64));
	}
	/* a failed eviction is not the next prefetch's */
	ASSERT_EQ(32, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 32));
	f.fail_next = -EIO;
	ASSERT_EQ(-EIO, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 32));
	ASSERT_EQ(0, llmdev_kv_prefetch(kv, r, 64, &fence));
	ASSERT_NE(0, fence);
	ASSERT_EQ(0, llmdev_kv_wait(kv, fence, 1000000000));
	rmpool(kv);
}

/* ---- failures ------------------------------------------------------------------------ */

TEST(failed_batches_keep_data)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 8, 8, 0);
	struct llmdev_kv_ref r = { .seq = 1, .index = 0 };
	struct llmdev_kv_stats st;
	uint8_t want[BS], got[BS];
	uint64_t off, fence;

	ASSERT_NE(NULL, kv);
	ASSERT_EQ(0, llmdev_kv_alloc(kv, 1, 0));
	pattern(want, 1, 0, 5);
	ASSERT_EQ(0, llmdev_kv_write(kv, 1, 0, want));
	/* eviction fails: the block stays in HBM */
	f.fail_next = -EIO;
	ASSERT_EQ(-EIO, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 1));
	EXPECT_EQ(LLMDEV_KV_HBM, llmdev_kv_tier(kv, 1, 0));
	f.refuse_next = -EAGAIN;
	ASSERT_EQ(-EAGAIN, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 1));
	ASSERT_EQ(1, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 1));
	/* swap-in fails (a card reset, an unplug): stays in host memory */
	f.fail_next = -ENODEV;
	ASSERT_EQ(-ENODEV, llmdev_kv_pin(kv, &r, 1, &off));
	EXPECT_EQ(LLMDEV_KV_HOST, llmdev_kv_tier(kv, 1, 0));
	f.fail_next = -EIO;
	ASSERT_EQ(0, llmdev_kv_prefetch(kv, &r, 1, &fence));
	ASSERT_EQ(-EIO, llmdev_kv_wait(kv, fence, 1000000000));
	EXPECT_EQ(LLMDEV_KV_HOST, llmdev_kv_tier(kv, 1, 0));
	ASSERT_EQ(0, llmdev_kv_read(kv, 1, 0, got));
	ASSERT_EQ(0, memcmp(want, got, BS));
	ASSERT_EQ(0, llmdev_kv_pin(kv, &r, 1, &off));
	ASSERT_EQ(0, memcmp(want, hbm_at(&f, off), BS));
	ASSERT_EQ(0, llmdev_kv_unpin(kv, &r, 1));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_EQ(0, st.tier[LLMDEV_KV_HBM].pinned);
	EXPECT_LE(3, st.errors);
	/* the one eviction that moved it, not the ones that failed */
	EXPECT_EQ(1, st.tier[LLMDEV_KV_HBM].evictions);
	rmpool(kv);
}

/*
 * A move the caller waits for, of one batch, is queued and waited for in
 * one call (the backend's batch_wait); a failed one, a refused one and one
 * whose wait runs out end as they would otherwise. Longer moves and those
 * nobody waits for (a prefetch) queue and return.
 */
TEST(short_moves_wait_in_call)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 256, 256, 0);
	struct llmdev_kv_ref r[128];
	struct llmdev_kv_stats st;
	uint8_t want[BS], got[BS];
	uint64_t off[128], fence;
	unsigned int nhost;
	int i;

	ASSERT_NE(NULL, kv);
	ASSERT_EQ(0, fill(kv, 4, 128, 5, r));
	/* 8 out and back in: one call each */
	ASSERT_EQ(8, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 8));
	EXPECT_EQ(1, f.in_call);
	ASSERT_EQ(LLMDEV_KV_HOST, llmdev_kv_tier(kv, 4, 7));
	ASSERT_EQ(0, llmdev_kv_pin(kv, r, 8, off));
	EXPECT_EQ(2, f.in_call);
	for (i = 0; i < 8; i++) {
		pattern(want, 4, i, 5);
		ASSERT_EQ(0, memcmp(want, hbm_at(&f, off[i]), BS)) TH_LOG("block %d", i);
	}
	ASSERT_EQ(0, llmdev_kv_unpin(kv, r, 8));
	/* the LRU end is now blocks 8..: fails, is refused, runs late */
	f.fail_next = -EIO;
	ASSERT_EQ(-EIO, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 8));
	EXPECT_EQ(LLMDEV_KV_HBM, llmdev_kv_tier(kv, 4, 8));
	f.refuse_next = -EAGAIN;
	ASSERT_EQ(-EAGAIN, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 8));
	EXPECT_EQ(LLMDEV_KV_HBM, llmdev_kv_tier(kv, 4, 8));
	f.late_next = true;
	ASSERT_EQ(8, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 8));	/* reaped after */
	for (i = 0, nhost = 0; i < 128; i++)
		nhost += llmdev_kv_tier(kv, 4, i) == LLMDEV_KV_HOST;
	EXPECT_EQ(8, nhost);
	EXPECT_EQ(4, f.in_call);	/* the refused one queued nothing */
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_EQ(16, st.errors);
	EXPECT_EQ(8, st.tier[LLMDEV_KV_HOST].used);
	/* 128 blocks go as 4 batches, queued; a prefetch is not waited for */
	ASSERT_EQ(128, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 128) + 8);
	EXPECT_EQ(4, f.in_call);
	ASSERT_EQ(0, llmdev_kv_prefetch(kv, r, 4, &fence));
	EXPECT_EQ(4, f.in_call);
	ASSERT_EQ(0, llmdev_kv_wait(kv, fence, 1000000000));
	ASSERT_EQ(0, llmdev_kv_pin(kv, r, 128, off));
	EXPECT_EQ(4, f.in_call);
	for (i = 0; i < 128; i++) {
		pattern(want, 4, i, 5);
		ASSERT_EQ(0, memcmp(want, hbm_at(&f, off[i]), BS)) TH_LOG("block %d", i);
		ASSERT_EQ(0, llmdev_kv_read(kv, 4, i, got));
		ASSERT_EQ(0, memcmp(want, got, BS)) TH_LOG("block %d", i);
	}
	ASSERT_EQ(0, llmdev_kv_unpin(kv, r, 128));
	rmpool(kv);
}

/*
 * A long move goes as several batches (KV_PIPE_PARTS): one of them failing,
 * or refused, part way loses nothing, and says what moved.
 */
TEST(long_moves_fail_part_way)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 256, 256, 0);
	struct llmdev_kv_ref r[128];
	struct llmdev_kv_stats st;
	uint8_t want[BS], got[BS];
	uint64_t off[128];
	unsigned int b0, nhost;
	int i;

	ASSERT_NE(NULL, kv);
	ASSERT_EQ(0, fill(kv, 2, 128, 9, r));
	/* 4 batches of 32; the third fails: 96 left */
	b0 = f.batches;
	f.fail_skip = 2;
	f.fail_next = -EIO;
	ASSERT_EQ(96, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 128));
	EXPECT_EQ(b0 + 4, f.batches);
	for (i = 0, nhost = 0; i < 128; i++) {
		int t = llmdev_kv_tier(kv, 2, i);

		ASSERT_EQ(i >= 64 && i < 96 ? LLMDEV_KV_HBM : LLMDEV_KV_HOST, t)
			TH_LOG("block %d", i);
		nhost += t == LLMDEV_KV_HOST;
	}
	EXPECT_EQ(96, nhost);
	/* the second batch refused: the first one's 32 left, the rest stayed */
	ASSERT_EQ(0, llmdev_kv_pin(kv, r, 128, off));
	ASSERT_EQ(0, llmdev_kv_unpin(kv, r, 128));
	f.refuse_skip = 1;
	f.refuse_next = -EAGAIN;
	ASSERT_EQ(32, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 128));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_EQ(32, st.tier[LLMDEV_KV_HOST].used);
	EXPECT_EQ(96, st.tier[LLMDEV_KV_HBM].used);
	ASSERT_EQ(128, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 128) + 32);
	/* swap-in with its second batch failing: an error, no pin kept */
	f.fail_skip = 1;
	f.fail_next = -ENODEV;
	ASSERT_EQ(-ENODEV, llmdev_kv_pin(kv, r, 128, off));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_EQ(0, st.tier[LLMDEV_KV_HBM].pinned);
	for (i = 0; i < 128; i++) {
		pattern(want, 2, i, 9);
		ASSERT_EQ(0, llmdev_kv_read(kv, 2, i, got));
		ASSERT_EQ(0, memcmp(want, got, BS)) TH_LOG("block %d", i);
	}
	/* and all of it comes in after all */
	ASSERT_EQ(0, llmdev_kv_pin(kv, r, 128, off));
	for (i = 0; i < 128; i++) {
		pattern(want, 2, i, 9);
		ASSERT_EQ(0, memcmp(want, hbm_at(&f, off[i]), BS)) TH_LOG("block %d", i);
	}
	ASSERT_EQ(0, llmdev_kv_unpin(kv, r, 128));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_EQ(0, st.tier[LLMDEV_KV_HBM].pinned);
	EXPECT_EQ(32 + 32 + 32, st.errors);	/* the failed and refused batches */
	rmpool(kv);
}

/* A pin counts, per tier, where each block was found and where it was not. */
TEST(hits_misses_pinned)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 4, 4, 4);
	struct llmdev_kv_ref r[3];
	struct llmdev_kv_stats a, b;
	uint64_t off[3];
	unsigned int t;

	ASSERT_NE(NULL, kv);
	ASSERT_EQ(0, fill(kv, 5, 3, 2, r));
	/* block 0 to disk, 1 to host memory, 2 stays in HBM */
	ASSERT_EQ(2, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 2));
	ASSERT_EQ(1, llmdev_kv_evict(kv, LLMDEV_KV_HOST, 1));
	ASSERT_EQ(LLMDEV_KV_DISK, llmdev_kv_tier(kv, 5, 0));
	ASSERT_EQ(LLMDEV_KV_HOST, llmdev_kv_tier(kv, 5, 1));
	ASSERT_EQ(LLMDEV_KV_HBM, llmdev_kv_tier(kv, 5, 2));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &a, sizeof(a)));
	ASSERT_EQ(0, llmdev_kv_pin(kv, r, 3, off));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &b, sizeof(b)));
	for (t = 0; t < LLMDEV_KV_TIERS; t++) {
		EXPECT_EQ(1, b.tier[t].hits - a.tier[t].hits) TH_LOG("tier %u", t);
		/* not in HBM: 2 (host, disk); not in host memory either: 1 */
		EXPECT_EQ(2 - t, b.tier[t].misses - a.tier[t].misses) TH_LOG("tier %u", t);
	}
	EXPECT_EQ(3, b.tier[LLMDEV_KV_HBM].pinned);
	/* pinned twice, counted once; unpinned once, still pinned */
	ASSERT_EQ(0, llmdev_kv_pin(kv, r, 1, off));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &b, sizeof(b)));
	EXPECT_EQ(3, b.tier[LLMDEV_KV_HBM].pinned);
	ASSERT_EQ(0, llmdev_kv_unpin(kv, r, 3));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &b, sizeof(b)));
	EXPECT_EQ(1, b.tier[LLMDEV_KV_HBM].pinned);
	ASSERT_EQ(0, llmdev_kv_unpin(kv, r, 1));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &b, sizeof(b)));
	EXPECT_EQ(0, b.tier[LLMDEV_KV_HBM].pinned);
	rmpool(kv);
}

TEST(disk_truncated)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 4, 4, 16);
	struct llmdev_kv_ref r = { .seq = 2, .index = 0 };
	uint8_t want[BS], got[BS];
	uint64_t off;
	int i;

	ASSERT_NE(NULL, kv);
	ASSERT_EQ(0, fill(kv, 2, 4, 1, NULL));
	ASSERT_EQ(4, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 4));
	ASSERT_EQ(4, llmdev_kv_evict(kv, LLMDEV_KV_HOST, 4));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(LLMDEV_KV_DISK, llmdev_kv_tier(kv, 2, i));
	ASSERT_EQ(0, truncate(disk_path, 0));
	ASSERT_EQ(-EIO, llmdev_kv_pin(kv, &r, 1, &off));
	ASSERT_EQ(-EIO, llmdev_kv_tier(kv, 2, 1));
	ASSERT_EQ(-EIO, llmdev_kv_read(kv, 2, 2, got));
	/* whole again once written; the file has its length back */
	pattern(want, 2, 0, 2);
	ASSERT_EQ(0, llmdev_kv_write(kv, 2, 0, want));
	ASSERT_EQ(0, llmdev_kv_pin(kv, &r, 1, &off));
	ASSERT_EQ(0, memcmp(want, hbm_at(&f, off), BS));
	ASSERT_EQ(0, llmdev_kv_unpin(kv, &r, 1));
	ASSERT_EQ(3, llmdev_kv_free_seq(kv, 2) - 1);
	rmpool(kv);
}

/*
 * The file cut short under the second of two blocks, found while the
 * first is read in: the pin fails, and neither is moved as if whole.
 */
TEST(disk_cut_short_during_pin)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 4, 4, 16);
	struct llmdev_kv_ref r[2] = { { .seq = 2, .index = 0 },
				      { .seq = 2, .index = 1 } };
	struct llmdev_kv_stats st;
	uint8_t want[BS], got[BS];
	uint64_t off[2];

	ASSERT_NE(NULL, kv);
	ASSERT_EQ(0, fill(kv, 2, 4, 1, NULL));
	ASSERT_EQ(4, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 4));
	ASSERT_EQ(4, llmdev_kv_evict(kv, LLMDEV_KV_HOST, 4));
	/* disk slots are handed out from 0: (2, 0) in the first */
	ASSERT_EQ(0, truncate(disk_path, BS));
	ASSERT_EQ(-EIO, llmdev_kv_pin(kv, r, 2, off));
	ASSERT_EQ(LLMDEV_KV_HOST, llmdev_kv_tier(kv, 2, 0));
	ASSERT_EQ(-EIO, llmdev_kv_tier(kv, 2, 1));
	ASSERT_EQ(0, llmdev_kv_read(kv, 2, 0, got));
	pattern(want, 2, 0, 1);
	ASSERT_EQ(0, memcmp(want, got, BS));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_EQ(3, st.lost);
	EXPECT_EQ(0, st.tier[LLMDEV_KV_HBM].used);
	EXPECT_EQ(1, st.tier[LLMDEV_KV_HOST].used);
	EXPECT_EQ(0, st.tier[LLMDEV_KV_DISK].used);
	EXPECT_EQ(0, st.tier[LLMDEV_KV_HBM].pinned);
	ASSERT_EQ(0, llmdev_kv_pin(kv, r, 1, off));
	ASSERT_EQ(0, memcmp(want, hbm_at(&f, off[0]), BS));
	ASSERT_EQ(0, llmdev_kv_unpin(kv, r, 1));
	rmpool(kv);
}

/* A cached block lost on disk leaves the pool: its hash can serve again. */
TEST(disk_lost_cached_block)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 4, 4, 16);
	uint8_t h[LLMDEV_KV_HASH_LEN] = { 1, 2, 3 };
	struct llmdev_kv_stats st;

	ASSERT_NE(NULL, kv);
	ASSERT_EQ(0, fill(kv, 3, 1, 1, NULL));
	ASSERT_EQ(0, llmdev_kv_set_hash(kv, 3, 0, h));
	ASSERT_EQ(0, llmdev_kv_free(kv, 3, 0));		/* cached */
	ASSERT_EQ(1, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 1));
	ASSERT_EQ(1, llmdev_kv_evict(kv, LLMDEV_KV_HOST, 1));
	ASSERT_EQ(0, truncate(disk_path, 0));
	ASSERT_EQ(0, fill(kv, 4, 1, 1, NULL));
	ASSERT_EQ(LLMDEV_KV_HBM, llmdev_kv_tier(kv, 4, 0));	/* a disk check */
	ASSERT_EQ(-ENOENT, llmdev_kv_lookup(kv, h, 5, 0));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_EQ(1, st.blocks);
	EXPECT_EQ(0, st.cached);
	EXPECT_EQ(0, st.lost);
	EXPECT_EQ(0, st.hashed);
	EXPECT_EQ(0, st.tier[LLMDEV_KV_DISK].used);
	ASSERT_EQ(0, llmdev_kv_set_hash(kv, 4, 0, h));
	ASSERT_EQ(0, llmdev_kv_lookup(kv, h, 5, 0));
	rmpool(kv);
}

/* A failed write to a lost block leaves it lost. */
TEST(lost_block_write_fails)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 4, 4, 8);
	struct llmdev_kv_stats st;
	uint8_t want[BS], got[BS];

	ASSERT_NE(NULL, kv);
	ASSERT_EQ(0, fill(kv, 2, 1, 1, NULL));
	ASSERT_EQ(1, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 1));
	ASSERT_EQ(1, llmdev_kv_evict(kv, LLMDEV_KV_HOST, 1));
	ASSERT_EQ(0, truncate(disk_path, 0));
	ASSERT_EQ(-EIO, llmdev_kv_tier(kv, 2, 0));
	pattern(want, 2, 0, 2);
	f.copy_fail = -ENODEV;
	ASSERT_EQ(-ENODEV, llmdev_kv_write(kv, 2, 0, want));
	ASSERT_EQ(-EIO, llmdev_kv_tier(kv, 2, 0));
	ASSERT_EQ(-EIO, llmdev_kv_read(kv, 2, 0, got));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_EQ(1, st.lost);
	EXPECT_EQ(0, st.tier[LLMDEV_KV_HBM].used);
	ASSERT_EQ(0, llmdev_kv_write(kv, 2, 0, want));
	ASSERT_EQ(0, llmdev_kv_read(kv, 2, 0, got));
	ASSERT_EQ(0, memcmp(want, got, BS));
	rmpool(kv);
}

TEST(disk_unwritable)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 4, 4, 64);
	struct rlimit old, lim;
	uint8_t want[BS], got[BS];
	int i;

	ASSERT_NE(NULL, kv);
	ASSERT_EQ(0, fill(kv, 4, 4, 1, NULL));
	ASSERT_EQ(4, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 4));
	/* no write beyond 0: every disk slot is past the limit */
	signal(SIGXFSZ, SIG_IGN);
	ASSERT_EQ(0, getrlimit(RLIMIT_FSIZE, &old));
	lim = old;
	lim.rlim_cur = 0;
	ASSERT_EQ(0, setrlimit(RLIMIT_FSIZE, &lim));
	/* the stack hands out slot 0 first: allowed up to 0 bytes means EFBIG */
	i = llmdev_kv_evict(kv, LLMDEV_KV_HOST, 4);
	ASSERT_EQ(0, setrlimit(RLIMIT_FSIZE, &old));
	ASSERT_EQ(-EFBIG, i);
	for (i = 0; i < 4; i++) {
		pattern(want, 4, i, 1);
		ASSERT_EQ(LLMDEV_KV_HOST, llmdev_kv_tier(kv, 4, i));
		ASSERT_EQ(0, llmdev_kv_read(kv, 4, i, got));
		ASSERT_EQ(0, memcmp(want, got, BS));
	}
	ASSERT_EQ(4, llmdev_kv_evict(kv, LLMDEV_KV_HOST, 4));
	rmpool(kv);
}

/* ---- processes and threads --------------------------------------------------------------- */

TEST(fork_child_cannot_use_it)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 4, 4, 0);
	struct llmdev_kv_ref r = { .seq = 1, .index = 0 };
	uint8_t want[BS], got[BS];
	uint64_t fence;
	int status;
	pid_t pid;

	ASSERT_NE(NULL, kv);
	ASSERT_EQ(0, llmdev_kv_alloc(kv, 1, 0));
	pattern(want, 1, 0, 1);
	ASSERT_EQ(0, llmdev_kv_write(kv, 1, 0, want));
	ASSERT_EQ(1, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 1));
	/* a move in flight across the fork */
	ASSERT_EQ(0, llmdev_kv_prefetch(kv, &r, 1, &fence));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int bad = llmdev_kv_alloc(kv, 2, 0) != -ECHILD ||
			  llmdev_kv_pin(kv, &r, 1, NULL) != -ECHILD ||
			  llmdev_kv_wait(kv, fence, 0) != -ECHILD;

		/* nor its handle, which is not the card's any more */
		errno = 0;
		bad |= llmdev_kv_dev(kv) != NULL || errno != ECHILD;

		llmdev_kv_destroy(kv);
		_exit(bad);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
	ASSERT_EQ(0, llmdev_kv_wait(kv, fence, 1000000000));
	ASSERT_EQ(0, llmdev_kv_read(kv, 1, 0, got));
	ASSERT_EQ(0, memcmp(want, got, BS));
	rmpool(kv);
}

/* a thread of the parent allocates blocks until the pool grows an array */
static void *grow_thread(void *arg)
{
	struct llmdev_kv *kv = arg;
	uint64_t seq;

	for (seq = 1; seq <= 100; seq++)
		if (llmdev_kv_alloc(kv, seq, 0))
			return (void *)1;
	return NULL;
}

/*
 * fork() while another thread is inside the pool, growing an array: the
 * child's copy is a consistent one, which llmdev_kv_destroy() frees without
 * a double free (glibc aborted the child: the array realloc() had freed,
 * still in the pool, was freed again).
 */
TEST(fork_while_another_thread_grows_it)
{
	struct llmdev_kv *kv;
	struct fake f;
	void *tret;
	pthread_t th;
	int status, i;
	pid_t pid;

	kv = mkpool(&f, 128, 0, 0);
	ASSERT_NE(NULL, kv);
	realloc_paused = 0;
	realloc_pause = 1;
	ASSERT_EQ(0, pthread_create(&th, NULL, grow_thread, kv));
	for (i = 0; i < 5000 && !realloc_paused; i++)
		usleep(1000);
	ASSERT_TRUE(realloc_paused) TH_LOG("the pool grew no array");
	pid = fork();	/* waits for the other thread to leave the pool */
	ASSERT_LE(0, pid);
	if (pid == 0) {
		llmdev_kv_destroy(kv);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status) TH_LOG("child: %s", WIFSIGNALED(status) ?
				    strsignal(WTERMSIG(status)) : "exit");
	pthread_join(th, &tret);
	EXPECT_EQ(NULL, tret);
	rmpool(kv);
}

/*
 * A child that never touches the pool does not keep its disk file locked:
 * the parent can destroy the pool and make it again on the same file.
 */
/* a disk file over RLIMIT_FSIZE: -EFBIG from the create, not SIGXFSZ */
TEST(disk_over_fsize_limit)
{
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct rlimit lim = { .rlim_cur = BS, .rlim_max = BS };
		struct llmdev_kv *kv = NULL;
		struct fake f;
		char path[256];
		int ret;

		snprintf(path, sizeof(path), "%s/kvpool-test.%d", tmpdir(), getpid());
		LLMDEV_KV_OPTS(o, .block_size = BS, .hbm_blocks = 4, .host_blocks = 4,
			       .disk_blocks = 4, .disk_path = path,
			       .flags = LLMDEV_KV_NO_STATS_FILE);
		memset(&f, 0, sizeof(f));
		pthread_mutex_init(&f.lock, NULL);
		if (setrlimit(RLIMIT_FSIZE, &lim))
			_exit(2);
		ret = llmdev__kv_create_backend(NULL, &o, &fake_be, &f, &kv);
		unlink(path);
		_exit(ret == -EFBIG && !kv ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status)) TH_LOG("the child died of signal %d",
					      WTERMSIG(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST(forked_child_keeps_no_disk_lock)
{
	struct llmdev_kv *kv;
	int pfd[2], ready[2], status;
	struct fake f;
	pid_t pid;
	char c;

	kv = mkpool(&f, 4, 4, 4);
	ASSERT_NE(NULL, kv);
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* running: the pool's files were closed as it started */
		close(pfd[1]);
		if (write(ready[1], "r", 1) != 1)
			_exit(2);
		_exit(read(pfd[0], &c, 1) < 0);	/* until the parent is done */
	}
	close(pfd[0]);
	close(ready[1]);
	ASSERT_EQ(1, read(ready[0], &c, 1));
	close(ready[0]);
	llmdev_kv_destroy(kv);
	kv = mkpool(&f, 4, 4, 4);
	EXPECT_NE(NULL, kv) TH_LOG("the child still holds the disk file's lock");
	close(pfd[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status);
	if (kv)
		rmpool(kv);
	else
		unlink(disk_path);
}

TEST(destroy_with_moves_in_flight)
{
	struct fake f;
	struct llmdev_kv *kv;
	int i;

	wm_default = true;
	kv = mkpool(&f, 8, 8, 0);
	wm_default = false;
	ASSERT_NE(NULL, kv);
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, llmdev_kv_alloc(kv, 1, i));
	/* the watermark round is in flight */
	EXPECT_EQ(1, f.batches);
	rmpool(kv);
	/* every fence was reaped */
	for (i = 0; i < FAKE_MAX_FENCES; i++)
		EXPECT_EQ(0, f.q[i].fence);
}

struct thr {
	struct llmdev_kv *kv;
	struct fake *f;
	uint64_t seq;
	int bad;
};

static void *thread_fn(void *arg)
{
	struct thr *t = arg;
	uint8_t want[BS], got[BS];
	uint32_t gen[8] = { 0 };
	unsigned int r, i;
	uint64_t x = t->seq * 77 + 1;

	for (i = 0; i < 8; i++) {
		if (llmdev_kv_alloc(t->kv, t->seq, i)) {
			t->bad = 1;
			return NULL;
		}
		gen[i] = 1;
		pattern(want, t->seq, i, 1);
		llmdev_kv_write(t->kv, t->seq, i, want);
	}
	for (r = 0; r < 300 && !t->bad; r++) {
		struct llmdev_kv_ref ref;

		x = x * 6364136223846793005ULL + 1;
		i = (x >> 33) % 8;
		ref = (struct llmdev_kv_ref){ .seq = t->seq, .index = i };
		if ((x >> 20) & 1) {
			pattern(want, t->seq, i, gen[i]);
			if (llmdev_kv_read(t->kv, t->seq, i, got) ||
			    memcmp(want, got, BS))
				t->bad = 2;
		} else if ((x >> 21) & 1) {
			gen[i]++;
			pattern(want, t->seq, i, gen[i]);
			if (llmdev_kv_write(t->kv, t->seq, i, want))
				t->bad = 3;
		} else {
			uint64_t off;
			int ret = llmdev_kv_pin(t->kv, &ref, 1, &off);

			if (ret == -ENOSPC)
				continue;
			if (ret) {
				t->bad = 4;
				break;
			}
			/* while pinned, it does not move */
			pattern(want, t->seq, i, gen[i]);
			if (llmdev_kv_read(t->kv, t->seq, i, got) || memcmp(want, got, BS))
				t->bad = 5;
			if (llmdev_kv_unpin(t->kv, &ref, 1))
				t->bad = 6;
		}
		if (!(r % 17))
			llmdev_kv_evict(t->kv, LLMDEV_KV_HBM, 3);
	}
	return NULL;
}

TEST(threads)
{
	struct fake f;
	struct llmdev_kv *kv = mkpool(&f, 16, 64, 0);
	struct thr t[4];
	pthread_t th[4];
	int i;

	ASSERT_NE(NULL, kv);
	for (i = 0; i < 4; i++) {
		t[i] = (struct thr){ .kv = kv, .f = &f, .seq = 100 + i };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, thread_fn, &t[i]));
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, t[i].bad) TH_LOG("thread %d failed at step %d", i, t[i].bad);
	}
	rmpool(kv);
}

/* ---- the statistics file ------------------------------------------------------------------- */

TEST(stats_file)
{
	char dir[256];
	struct fake f;
	struct llmdev_kv *kv = NULL;
	struct llmdev_kv_info info;
	struct llmdev_kv_stats st;
	LLMDEV_KV_OPTS(o, .block_size = BS, .hbm_blocks = 4, .host_blocks = 4,
		       .name = "test-pool", .hbm_high_pct = 100, .hbm_low_pct = 99);
	int i;

	snprintf(dir, sizeof(dir), "%s/kvstats.%d", tmpdir(), getpid());
	ASSERT_EQ(0, mkdir(dir, 0700));
	setenv("LLMDEV_KV_STATS_DIR", dir, 1);
	memset(&f, 0, sizeof(f));
	pthread_mutex_init(&f.lock, NULL);
	ASSERT_EQ(0, llmdev__kv_create_backend(NULL, &o, &fake_be, &f, &kv));
	ASSERT_EQ(0, llmdev_kv_info(kv, &info));
	ASSERT_EQ(0, strncmp(info.stats_path, dir, strlen(dir)));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, llmdev_kv_alloc(kv, 1, i));
	ASSERT_EQ(2, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 2));
	ASSERT_EQ(0, llmdev_kv_stats_read(info.stats_path, &st, sizeof(st)));
	EXPECT_EQ(1, st.alive);
	EXPECT_EQ(getpid(), st.pid);
	EXPECT_STREQ("test-pool", st.name);
	EXPECT_EQ(4, st.blocks);
	EXPECT_EQ(2, st.tier[LLMDEV_KV_HBM].evictions);
	EXPECT_EQ(2 * BS, st.tier[LLMDEV_KV_HOST].bytes_in);
	EXPECT_EQ(1, st.tier[LLMDEV_KV_HBM].swap_out);
	EXPECT_LT(0, st.tier[LLMDEV_KV_HBM].swap_out_median_ns);
	EXPECT_LE(st.tier[LLMDEV_KV_HBM].swap_out_median_ns,
		  st.tier[LLMDEV_KV_HBM].swap_out_p99_ns);
	llmdev_kv_destroy(kv);
	ASSERT_NE(0, access(info.stats_path, F_OK));
	ASSERT_EQ(-ENOENT, llmdev_kv_stats_read(info.stats_path, &st, sizeof(st)));
	/* not a statistics file */
	{
		char p[300];
		int fd;

		snprintf(p, sizeof(p), "%s/junk", dir);
		fd = open(p, O_CREAT | O_WRONLY, 0600);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, ftruncate(fd, 100000));
		close(fd);
		ASSERT_EQ(-EINVAL, llmdev_kv_stats_read(p, &st, sizeof(st)));
		unlink(p);
	}
	rmdir(dir);
	unsetenv("LLMDEV_KV_STATS_DIR");
}

/*
 * Anyone may put files in the statistics directory (/dev/shm): a pool
 * never takes one it did not create, its own is readable by all whatever
 * the umask, and the reader reads regular files only, without waiting.
 */
TEST(stats_file_not_taken_over)
{
	LLMDEV_KV_OPTS(o, .block_size = BS, .hbm_blocks = 4, .name = "mine",
		       .hbm_high_pct = 100, .hbm_low_pct = 99);
	char dir[256], p[300], q[300];
	struct llmdev_kv_info info;
	struct llmdev_kv_stats st;
	struct llmdev_kv *kv = NULL;
	struct stat s;
	struct fake f;
	mode_t mask;
	int fd, i;

	snprintf(dir, sizeof(dir), "%s/kvstats2.%d", tmpdir(), getpid());
	ASSERT_EQ(0, mkdir(dir, 0700));
	setenv("LLMDEV_KV_STATS_DIR", dir, 1);
	/* the next names this process would take, there already */
	for (i = 0; i < 200; i++) {
		snprintf(p, sizeof(p), "%s/%s%d.%d", dir, LLMDEV_KV_STATS_PREFIX,
			 (int)getpid(), i);
		fd = open(p, O_CREAT | O_WRONLY, 0666);
		ASSERT_LE(0, fd);
		close(fd);
	}
	memset(&f, 0, sizeof(f));
	pthread_mutex_init(&f.lock, NULL);
	mask = umask(077);
	i = llmdev__kv_create_backend(NULL, &o, &fake_be, &f, &kv);
	umask(mask);
	/* they are all left alone; the pool gives up after 64 names */
	ASSERT_EQ(-EEXIST, i);
	for (i = 0; i < 200; i++) {
		snprintf(p, sizeof(p), "%s/%s%d.%d", dir, LLMDEV_KV_STATS_PREFIX,
			 (int)getpid(), i);
		ASSERT_EQ(0, stat(p, &s));
		EXPECT_EQ(0, s.st_size);
		if (i >= 64)
			unlink(p);
	}
	mask = umask(077);
	i = llmdev__kv_create_backend(NULL, &o, &fake_be, &f, &kv);
	umask(mask);
	ASSERT_EQ(0, i);
	ASSERT_EQ(0, llmdev_kv_info(kv, &info));
	ASSERT_EQ(0, stat(info.stats_path, &s));
	EXPECT_EQ(0644, s.st_mode & 07777);
	ASSERT_EQ(0, llmdev_kv_stats_read(info.stats_path, &st, sizeof(st)));
	EXPECT_STREQ("mine", st.name);
	/* a symlink to it is not followed */
	snprintf(q, sizeof(q), "%s/%slink", dir, LLMDEV_KV_STATS_PREFIX);
	ASSERT_EQ(0, symlink(info.stats_path, q));
	EXPECT_EQ(-ELOOP, llmdev_kv_stats_read(q, &st, sizeof(st)));
	unlink(q);
	/* a FIFO is not waited on, a directory not read */
	ASSERT_EQ(0, mkfifo(q, 0600));
	EXPECT_EQ(-EINVAL, llmdev_kv_stats_read(q, &st, sizeof(st)));
	unlink(q);
	ASSERT_EQ(0, mkdir(q, 0700));
	EXPECT_EQ(-EINVAL, llmdev_kv_stats_read(q, &st, sizeof(st)));
	rmdir(q);
	/* one too short, or not yet written (no magic) */
	fd = open(q, O_CREAT | O_RDWR, 0600);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, llmdev_kv_stats_read(q, &st, sizeof(st)));
	ASSERT_EQ(0, ftruncate(fd, 1 << 20));
	EXPECT_EQ(-EINVAL, llmdev_kv_stats_read(q, &st, sizeof(st)));
	close(fd);
	unlink(q);
	llmdev_kv_destroy(kv);
	for (i = 0; i < 64; i++) {
		snprintf(p, sizeof(p), "%s/%s%d.%d", dir, LLMDEV_KV_STATS_PREFIX,
			 (int)getpid(), i);
		unlink(p);
	}
	EXPECT_EQ(0, rmdir(dir));
	unsetenv("LLMDEV_KV_STATS_DIR");
}

TEST_HARNESS_MAIN
