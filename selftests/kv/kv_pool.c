// SPDX-License-Identifier: GPL-2.0
/*
 * The KV pool of libllmdev on a card (kselftest harness, in the VM):
 * block contents survive eviction to host memory and to disk and come back
 * bit-exact under random access, checked against a plain map kept by the
 * test; pool-full and disk-full errors; a disk file that is truncated or
 * cannot be written; a card reset during a swap; fork and close with
 * swaps in flight; llmctl kv stats and kv bench on a live pool.
 *
 * The disk tier lives on ext2 on a loop device (kv_util.h): the guest's
 * tmpfs refuses O_DIRECT, which the pool is checked to report.
 */
#include <pthread.h>
#include <sys/resource.h>

#include <json-c/json.h>

#include "kv_util.h"
#include "kselftest_harness.h"

#define BS		(16 * 1024)
#define NSEQ		12
#define NIDX		8

struct model {
	uint32_t gen[NSEQ][NIDX];	/* 0: no block */
};

FIXTURE(kv) {
	int kmsg;
	int fd;			/* unused by these tests; for the macros */
	struct llmdev *dev;
	bool have_fs;
	char why[128];
	char disk[64];
};

FIXTURE_SETUP(kv)
{
	LD_FIXTURE_START();
	ASSERT_EQ(0, llmdev_open(0, &self->dev));
	self->have_fs = kv_fs_setup(32, self->why, sizeof(self->why)) == 0;
	snprintf(self->disk, sizeof(self->disk), KV_MNT "/kv-disk");
}

FIXTURE_TEARDOWN(kv)
{
	llmdev_close(self->dev);
	if (self->have_fs)
		kv_fs_teardown();
	LD_EXPECT_NO_KERNEL_REPORTS(self->kmsg);
}

static bool wm_default;	/* else no watermark rounds: tests count moves */

static struct llmdev_kv *mkpool(struct llmdev *dev, uint64_t hbm, uint64_t host,
				uint64_t disk, const char *path, int *err)
{
	LLMDEV_KV_OPTS(o, .block_size = BS, .hbm_blocks = hbm, .host_blocks = host,
		       .disk_blocks = disk, .disk_path = disk ? path : NULL,
		       .name = "selftest", .timeout_ns = 20 * LD_NSEC_PER_SEC,
		       .hbm_high_pct = 100, .hbm_low_pct = 99,
		       .host_high_pct = 100, .host_low_pct = 99);
	struct llmdev_kv *kv = NULL;

	if (wm_default)
		o.hbm_high_pct = o.hbm_low_pct = o.host_high_pct = o.host_low_pct = 0;

	*err = llmdev_kv_create(dev, &o, &kv);
	return kv;
}

/* A block's bytes in HBM (it is pinned at @off). */
static int hbm_read(struct llmdev_kv *kv, uint64_t off, void *buf)
{
	struct llmdev_kv_info info;

	llmdev_kv_info(kv, &info);
	return llmdev_copy_from_hbm(llmdev_kv_dev(kv), info.region, off, buf, BS,
				    LD_LONG_WAIT);
}

static int hbm_write(struct llmdev_kv *kv, uint64_t off, const void *buf)
{
	struct llmdev_kv_info info;

	llmdev_kv_info(kv, &info);
	return llmdev_copy_to_hbm(llmdev_kv_dev(kv), info.region, off, buf, BS,
				  LD_LONG_WAIT);
}

/* Every block of the model, through pins (HBM) and llmdev_kv_read(). */
static void check_all(struct __test_metadata *_metadata, struct llmdev_kv *kv,
		      struct model *m)
{
	static uint8_t want[BS], got[BS];
	uint64_t s, off;
	uint32_t i;

	for (s = 0; s < NSEQ; s++)
		for (i = 0; i < NIDX; i++) {
			struct llmdev_kv_ref r = { .seq = s, .index = i };

			if (!m->gen[s][i])
				continue;
			kv_pattern(want, BS, s, i, m->gen[s][i]);
			ASSERT_EQ(0, llmdev_kv_read(kv, s, i, got));
			ASSERT_EQ(-1, ld_cmp(want, got, BS))
				TH_LOG("(%llu, %u) read from tier %d differs",
				       (unsigned long long)s, i, llmdev_kv_tier(kv, s, i));
			ASSERT_EQ(0, llmdev_kv_pin(kv, &r, 1, &off));
			ASSERT_EQ(0, hbm_read(kv, off, got));
			ASSERT_EQ(-1, ld_cmp(want, got, BS))
				TH_LOG("(%llu, %u) differs in HBM", (unsigned long long)s, i);
			ASSERT_EQ(0, llmdev_kv_unpin(kv, &r, 1));
		}
}

/*
 * Random steps: allocate and fill, pin a few and check them in HBM (and
 * overwrite one, as a step would), evict, prefetch, free; the pool has
 * far fewer HBM slots than blocks, so blocks keep moving between tiers.
 */
static void workout(struct __test_metadata *_metadata, struct llmdev_kv *kv,
		    struct model *m, unsigned int rounds, uint64_t seed)
{
	static uint8_t want[BS], got[BS];
	unsigned int r, gen = 1;

	for (r = 0; r < rounds; r++) {
		uint64_t s = ld_rand64(&seed) % NSEQ;
		uint32_t i = ld_rand64(&seed) % NIDX;
		unsigned int op = ld_rand64(&seed) % 8;
		int ret;

		if (!m->gen[s][i]) {
			ret = llmdev_kv_alloc(kv, s, i);
			if (ret == -ENOSPC)
				continue;
			ASSERT_EQ(0, ret);
			m->gen[s][i] = ++gen;
			kv_pattern(want, BS, s, i, gen);
			ASSERT_EQ(0, llmdev_kv_write(kv, s, i, want));
			continue;
		}
		switch (op) {
		case 0: case 1: case 2: {
			struct llmdev_kv_ref refs[6];
			uint64_t off[6];
			unsigned int n = 0, k;

			for (k = 0; k < 6; k++) {
				uint64_t s2 = ld_rand64(&seed) % NSEQ;
				uint32_t i2 = ld_rand64(&seed) % NIDX;

				if (m->gen[s2][i2])
					refs[n++] = (struct llmdev_kv_ref){ .seq = s2, .index = i2 };
			}
			ret = llmdev_kv_pin(kv, refs, n, off);
			if (ret == -ENOSPC)
				break;
			ASSERT_EQ(0, ret);
			for (k = 0; k < n; k++) {
				kv_pattern(want, BS, refs[k].seq, refs[k].index,
					   m->gen[refs[k].seq][refs[k].index]);
				ASSERT_EQ(0, hbm_read(kv, off[k], got));
				ASSERT_EQ(-1, ld_cmp(want, got, BS))
					TH_LOG("round %u: (%llu, %u) differs in HBM", r,
					       (unsigned long long)refs[k].seq, refs[k].index);
			}
			if (n && op == 0) {
				m->gen[refs[0].seq][refs[0].index] = ++gen;
				kv_pattern(want, BS, refs[0].seq, refs[0].index, gen);
				ASSERT_EQ(0, hbm_write(kv, off[0], want));
			}
			ASSERT_EQ(0, llmdev_kv_unpin(kv, refs, n));
			break;
		}
		case 3:
			kv_pattern(want, BS, s, i, m->gen[s][i]);
			ASSERT_EQ(0, llmdev_kv_read(kv, s, i, got));
			ASSERT_EQ(-1, ld_cmp(want, got, BS));
			break;
		case 4:
			ret = llmdev_kv_evict(kv, ld_rand64(&seed) & 1 ? LLMDEV_KV_HBM :
					      LLMDEV_KV_HOST, 1 + ld_rand64(&seed) % 16);
			ASSERT_TRUE(ret >= 0 || ret == -ENOSPC || ret == -EINVAL)
				TH_LOG("evict: %d", ret);
			break;
		case 5: {
			struct llmdev_kv_ref ref = { .seq = s, .index = i };
			uint64_t fence;

			ret = llmdev_kv_prefetch(kv, &ref, 1, &fence);
			if (ret == -ENOSPC)
				break;
			ASSERT_EQ(0, ret);
			break;
		}
		case 6:
			ASSERT_EQ(0, llmdev_kv_free(kv, s, i));
			m->gen[s][i] = 0;
			break;
		default:
			break;
		}
	}
}

TEST_F_TIMEOUT(kv, random_hbm_host, 300)
{
	static struct model m;
	struct llmdev_kv_stats st;
	struct llmdev_kv *kv;
	int err;

	SETUP_OR_SKIP();
	memset(&m, 0, sizeof(m));
	wm_default = true;
	kv = mkpool(self->dev, 12, NSEQ * NIDX, 0, NULL, &err);
	wm_default = false;
	ASSERT_EQ(0, err);
	workout(_metadata, kv, &m, 600, 11);
	check_all(_metadata, kv, &m);
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	TH_LOG("HBM: %llu evicted, %llu hits, %llu misses; swap-in p50 %llu ns p99 %llu ns",
	       (unsigned long long)st.tier[0].evictions, (unsigned long long)st.tier[0].hits,
	       (unsigned long long)st.tier[0].misses,
	       (unsigned long long)st.tier[0].swap_in_median_ns,
	       (unsigned long long)st.tier[0].swap_in_p99_ns);
	EXPECT_LT(0, st.tier[LLMDEV_KV_HBM].evictions);
	EXPECT_LT(0, st.tier[LLMDEV_KV_HOST].hits);
	EXPECT_EQ(0, st.errors);
	llmdev_kv_destroy(kv);
}

TEST_F_TIMEOUT(kv, random_three_tiers, 300)
{
	static struct model m;
	struct llmdev_kv_stats st;
	struct llmdev_kv *kv;
	int err;

	SETUP_OR_SKIP();
	if (!self->have_fs)
		SKIP(return, "%s", self->why);
	memset(&m, 0, sizeof(m));
	wm_default = true;
	kv = mkpool(self->dev, 8, 16, NSEQ * NIDX, self->disk, &err);
	wm_default = false;
	ASSERT_EQ(0, err) TH_LOG("pool: %s", llmdev_strerror(err));
	workout(_metadata, kv, &m, 600, 12);
	check_all(_metadata, kv, &m);
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	TH_LOG("host->disk %llu, disk hits %llu",
	       (unsigned long long)st.tier[1].evictions, (unsigned long long)st.tier[2].hits);
	EXPECT_LT(0, st.tier[LLMDEV_KV_HOST].evictions);
	EXPECT_LT(0, st.tier[LLMDEV_KV_DISK].hits);
	EXPECT_EQ(0, st.errors);
	llmdev_kv_destroy(kv);
}

TEST_F(kv, pool_full)
{
	struct llmdev_kv_ref r[4];
	struct llmdev_kv *kv;
	int err, i;

	SETUP_OR_SKIP();
	/* HBM and host memory, no disk: 4 + 4 blocks fit, the 9th does not */
	kv = mkpool(self->dev, 4, 4, 0, NULL, &err);
	ASSERT_EQ(0, err);
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, llmdev_kv_alloc(kv, 1, i)) TH_LOG("block %d", i);
	EXPECT_EQ(-ENOSPC, llmdev_kv_alloc(kv, 1, 8));
	EXPECT_EQ(ENOSPC, errno);
	/*
	 * Blocks 0-3 in host memory, 4-7 in HBM: with every slot taken,
	 * swapping 0 in needs room that only its own leaving would make
	 */
	EXPECT_EQ(-ENOSPC, llmdev_kv_pin(kv, (struct llmdev_kv_ref[]){ { .seq = 1, .index = 0 } },
					 1, NULL));
	/* pinning more than HBM holds */
	for (i = 0; i < 4; i++)
		r[i] = (struct llmdev_kv_ref){ .seq = 1, .index = 4 + i };
	ASSERT_EQ(0, llmdev_kv_pin(kv, r, 4, NULL));
	ASSERT_EQ(0, llmdev_kv_free(kv, 1, 0));
	EXPECT_EQ(-ENOSPC, llmdev_kv_pin(kv, (struct llmdev_kv_ref[]){ { .seq = 1, .index = 1 } },
					 1, NULL));
	ASSERT_EQ(0, llmdev_kv_unpin(kv, r, 4));
	llmdev_kv_destroy(kv);
	/* more HBM than the card has */
	kv = mkpool(self->dev, (64ULL << 30) / BS, 0, 0, NULL, &err);
	EXPECT_EQ(-ENOSPC, err);
	EXPECT_EQ(NULL, kv);
}

TEST_F(kv, disk_full_and_refused)
{
	struct llmdev_kv *kv, *kv2;
	struct rlimit old, lim;
	int err;

	SETUP_OR_SKIP();
	/* tmpfs refuses O_DIRECT (before Linux 6.6) */
	kv = mkpool(self->dev, 4, 4, 4, "/tmp/kv-on-tmpfs", &err);
	if (err != -EOPNOTSUPP)
		TH_LOG("tmpfs: %s (kernel has O_DIRECT on tmpfs?)", llmdev_strerror(err));
	else
		EXPECT_EQ(NULL, kv);
	llmdev_kv_destroy(kv);
	unlink("/tmp/kv-on-tmpfs");
	if (!self->have_fs)
		SKIP(return, "%s", self->why);
	/* 64 MiB of disk tier on a 32 MiB file system */
	kv = mkpool(self->dev, 4, 4, (64 << 20) / BS, self->disk, &err);
	EXPECT_EQ(-ENOSPC, err);
	EXPECT_EQ(NULL, kv);
	unlink(self->disk);
	/* a file size limit below the disk tier */
	signal(SIGXFSZ, SIG_IGN);
	ASSERT_EQ(0, getrlimit(RLIMIT_FSIZE, &old));
	lim = old;
	lim.rlim_cur = 1 << 20;
	ASSERT_EQ(0, setrlimit(RLIMIT_FSIZE, &lim));
	kv = mkpool(self->dev, 4, 4, (2 << 20) / BS, self->disk, &err);
	ASSERT_EQ(0, setrlimit(RLIMIT_FSIZE, &old));
	EXPECT_EQ(-EFBIG, err);
	EXPECT_EQ(NULL, kv);
	llmdev_kv_destroy(kv);
	unlink(self->disk);
	/* a second pool on the same file */
	kv = mkpool(self->dev, 4, 4, 4, self->disk, &err);
	ASSERT_EQ(0, err);
	kv2 = mkpool(self->dev, 4, 4, 4, self->disk, &err);
	EXPECT_EQ(-EWOULDBLOCK, err);
	EXPECT_EQ(NULL, kv2);
	llmdev_kv_destroy(kv);
}

/* Fill @n blocks of (seq 1) and push them all to disk. */
static void to_disk(struct __test_metadata *_metadata, struct llmdev_kv *kv,
		    unsigned int n)
{
	uint8_t want[BS];
	unsigned int i;

	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, llmdev_kv_alloc(kv, 1, i));
		kv_pattern(want, BS, 1, i, 1);
		ASSERT_EQ(0, llmdev_kv_write(kv, 1, i, want));
	}
	ASSERT_EQ((int)n, llmdev_kv_evict(kv, LLMDEV_KV_HBM, n));
	ASSERT_EQ((int)n, llmdev_kv_evict(kv, LLMDEV_KV_HOST, n));
	for (i = 0; i < n; i++)
		ASSERT_EQ(LLMDEV_KV_DISK, llmdev_kv_tier(kv, 1, i));
}

TEST_F(kv, disk_truncated_or_unwritable)
{
	struct llmdev_kv_ref r = { .seq = 1, .index = 0 };
	uint8_t want[BS], got[BS];
	struct rlimit old, lim;
	struct llmdev_kv *kv;
	uint64_t off;
	int err, i;

	SETUP_OR_SKIP();
	if (!self->have_fs)
		SKIP(return, "%s", self->why);
	kv = mkpool(self->dev, 4, 4, 64, self->disk, &err);
	ASSERT_EQ(0, err);
	to_disk(_metadata, kv, 4);
	/* truncated behind the pool's back: the blocks are lost, and say so */
	ASSERT_EQ(0, truncate(self->disk, 2 * BS));
	EXPECT_EQ(0, llmdev_kv_read(kv, 1, 0, got));
	kv_pattern(want, BS, 1, 0, 1);
	EXPECT_EQ(-1, ld_cmp(want, got, BS));
	r.index = 3;
	EXPECT_EQ(-EIO, llmdev_kv_pin(kv, &r, 1, &off));
	EXPECT_EQ(-EIO, llmdev_kv_tier(kv, 1, 2));
	/* written again, it is whole */
	kv_pattern(want, BS, 1, 3, 2);
	ASSERT_EQ(0, llmdev_kv_write(kv, 1, 3, want));
	ASSERT_EQ(0, llmdev_kv_pin(kv, &r, 1, &off));
	ASSERT_EQ(0, hbm_read(kv, off, got));
	EXPECT_EQ(-1, ld_cmp(want, got, BS));
	ASSERT_EQ(0, llmdev_kv_unpin(kv, &r, 1));
	llmdev_kv_destroy(kv);
	unlink(self->disk);

	/* a disk that refuses writes (RLIMIT_FSIZE): blocks stay in host memory */
	kv = mkpool(self->dev, 4, 4, 64, self->disk, &err);
	ASSERT_EQ(0, err);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, llmdev_kv_alloc(kv, 2, i));
		kv_pattern(want, BS, 2, i, 1);
		ASSERT_EQ(0, llmdev_kv_write(kv, 2, i, want));
	}
	ASSERT_EQ(4, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 4));
	signal(SIGXFSZ, SIG_IGN);
	ASSERT_EQ(0, getrlimit(RLIMIT_FSIZE, &old));
	lim = old;
	lim.rlim_cur = 0;
	ASSERT_EQ(0, setrlimit(RLIMIT_FSIZE, &lim));
	err = llmdev_kv_evict(kv, LLMDEV_KV_HOST, 4);
	ASSERT_EQ(0, setrlimit(RLIMIT_FSIZE, &old));
	EXPECT_EQ(-EFBIG, err);
	for (i = 0; i < 4; i++) {
		struct llmdev_kv_ref ri = { .seq = 2, .index = i };

		kv_pattern(want, BS, 2, i, 1);
		EXPECT_EQ(LLMDEV_KV_HOST, llmdev_kv_tier(kv, 2, i));
		ASSERT_EQ(0, llmdev_kv_pin(kv, &ri, 1, &off));
		ASSERT_EQ(0, hbm_read(kv, off, got));
		EXPECT_EQ(-1, ld_cmp(want, got, BS));
		ASSERT_EQ(0, llmdev_kv_unpin(kv, &ri, 1));
	}
	llmdev_kv_destroy(kv);
}

/* Fill blocks (seq 1, 0..n-1) and swap them out to host memory. */
static void to_host(struct __test_metadata *_metadata, struct llmdev_kv *kv,
		    struct llmdev_kv_ref *r, unsigned int n)
{
	uint8_t want[BS];
	unsigned int i;

	for (i = 0; i < n; i++) {
		r[i] = (struct llmdev_kv_ref){ .seq = 1, .index = i };
		ASSERT_EQ(0, llmdev_kv_alloc(kv, 1, i));
		kv_pattern(want, BS, 1, i, 1);
		ASSERT_EQ(0, llmdev_kv_write(kv, 1, i, want));
	}
	ASSERT_EQ((int)n, llmdev_kv_evict(kv, LLMDEV_KV_HBM, n));
}

static void check_blocks(struct __test_metadata *_metadata, struct llmdev_kv *kv,
			 struct llmdev_kv_ref *r, unsigned int n)
{
	uint8_t want[BS], got[BS];
	uint64_t off;
	unsigned int i;

	for (i = 0; i < n; i++) {
		kv_pattern(want, BS, 1, i, 1);
		ASSERT_EQ(0, llmdev_kv_pin(kv, &r[i], 1, &off));
		ASSERT_EQ(0, hbm_read(kv, off, got));
		EXPECT_EQ(-1, ld_cmp(want, got, BS)) TH_LOG("block %u", i);
		ASSERT_EQ(0, llmdev_kv_unpin(kv, &r[i], 1));
	}
}

struct evictor {
	struct llmdev_kv *kv;
	int ret;
};

static void *evict_thread(void *arg)
{
	struct evictor *e = arg;

	e->ret = llmdev_kv_evict(e->kv, LLMDEV_KV_HBM, 32);
	return NULL;
}

TEST_F_TIMEOUT(kv, reset_during_swap, 120)
{
	struct evictor ev = { .ret = 1 };
	struct llmdev_kv_ref r[32];
	struct llmdev_kv *kv;
	pthread_t th;
	uint64_t fence;
	int err;

	SETUP_OR_SKIP();
	kv = mkpool(self->dev, 32, 32, 0, NULL, &err);
	ASSERT_EQ(0, err);
	to_host(_metadata, kv, r, 32);
	/* a swap-in in flight on stalled rings, then the card is reset */
	if (kv_stall(0, true, true)) {
		llmdev_kv_destroy(kv);
		SKIP(return, "no BAR 0 access for fault injection");
	}
	ASSERT_EQ(0, llmdev_kv_prefetch(kv, r, 32, &fence));
	ld_msleep(100);
	EXPECT_EQ(-ETIME, llmdev_kv_wait(kv, fence, 0));
	ASSERT_EQ(0, llmdev_reset(self->dev));
	kv_stall(0, true, false);
	err = llmdev_kv_wait(kv, fence, LD_LONG_WAIT);
	TH_LOG("swap-in across the reset: %s", err ? llmdev_strerror(err) : "done");
	EXPECT_TRUE(err == 0 || err == -EIO);
	/* whatever arrived or not: every block is whole (and now in HBM) */
	check_blocks(_metadata, kv, r, 32);

	/* a swap-out (waited for, in a thread) across a reset */
	ASSERT_EQ(0, kv_stall(0, false, true));
	ev.kv = kv;
	ASSERT_EQ(0, pthread_create(&th, NULL, evict_thread, &ev));
	ld_msleep(300);
	ASSERT_EQ(0, llmdev_reset(self->dev));
	kv_stall(0, false, false);
	pthread_join(th, NULL);
	TH_LOG("swap-out across the reset: %d (%s)", ev.ret,
	       ev.ret < 0 ? llmdev_strerror(ev.ret) : "blocks moved");
	EXPECT_TRUE(ev.ret == -EIO || ev.ret == 32);
	check_blocks(_metadata, kv, r, 32);
	llmdev_kv_destroy(kv);
}

TEST_F_TIMEOUT(kv, fork_and_close_in_flight, 120)
{
	struct llmdev_kv_ref r[16];
	struct llmdev_kv *kv;
	uint64_t fence, used0 = 0, used1 = 0;
	int err, status;
	pid_t pid;

	SETUP_OR_SKIP();
	ld_sysfs_u64(0, "hbm_used", &used0);
	kv = mkpool(self->dev, 16, 16, 0, NULL, &err);
	ASSERT_EQ(0, err);
	to_host(_metadata, kv, r, 16);
	ASSERT_EQ(0, llmdev_kv_prefetch(kv, r, 16, &fence));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int bad = llmdev_kv_pin(kv, r, 16, NULL) != -ECHILD ||
			  llmdev_kv_wait(kv, fence, 0) != -ECHILD ||
			  llmdev_kv_alloc(kv, 9, 9) != -ECHILD;

		llmdev_kv_destroy(kv);	/* the child's copy only */
		_exit(bad);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status);
	ASSERT_EQ(0, llmdev_kv_wait(kv, fence, LD_LONG_WAIT));
	check_blocks(_metadata, kv, r, 16);
	/* closed with a swap-in in flight */
	ASSERT_EQ(16, llmdev_kv_evict(kv, LLMDEV_KV_HBM, 16));
	ASSERT_EQ(0, llmdev_kv_prefetch(kv, r, 16, &fence));
	llmdev_kv_destroy(kv);
	/* its region went with it */
	used1 = ld_hbm_used_settle(0, used0);
	EXPECT_EQ(used0, used1);
	/* and a child that exits with the pool open, mid-swap */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct llmdev *d;
		struct llmdev_kv *k2;

		if (llmdev_open(0, &d))
			_exit(2);
		k2 = mkpool(d, 16, 16, 0, NULL, &err);
		if (!k2)
			_exit(3);
		for (int i = 0; i < 16; i++)
			llmdev_kv_alloc(k2, 1, i);
		llmdev_kv_evict(k2, LLMDEV_KV_HBM, 16);
		llmdev_kv_prefetch(k2, r, 16, &fence);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status);
	EXPECT_EQ(used0, ld_hbm_used_settle(0, used0));
}

/* llmctl's output as JSON; NULL if it failed */
static struct json_object *llmctl_json(const char *args, int *rc)
{
	char cmd[512], *out = NULL;
	size_t len = 0, cap = 0;
	struct json_object *j;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "llmctl %s --json", args);
	p = popen(cmd, "r");
	if (!p)
		return NULL;
	for (;;) {
		if (len + 4096 > cap) {
			cap = cap * 2 + 8192;
			out = realloc(out, cap);
		}
		size_t n = fread(out + len, 1, cap - len - 1, p);

		if (!n)
			break;
		len += n;
	}
	out[len] = 0;
	st = pclose(p);
	*rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	j = json_tokener_parse(out);
	free(out);
	return j;
}

static struct json_object *member(struct json_object *o, const char *k)
{
	struct json_object *v = NULL;

	json_object_object_get_ex(o, k, &v);
	return v;
}

TEST_F_TIMEOUT(kv, llmctl_kv, 300)
{
	struct json_object *j, *pools, *pool = NULL, *tiers, *res, *h;
	struct llmdev_kv_ref r[8];
	struct llmdev_kv *kv;
	size_t i, k;
	int err, rc;

	SETUP_OR_SKIP();
	if (system("command -v llmctl >/dev/null 2>&1"))
		SKIP(return, "llmctl is not on PATH");
	kv = mkpool(self->dev, 8, 8, 0, NULL, &err);
	ASSERT_EQ(0, err);
	to_host(_metadata, kv, r, 8);
	ASSERT_EQ(0, llmdev_kv_pin(kv, r, 8, NULL));
	j = llmctl_json("kv stats", &rc);
	ASSERT_NE(NULL, j);
	EXPECT_EQ(0, rc);
	EXPECT_STREQ("llmdev.kv-stats/1", json_object_get_string(member(j, "schema")));
	pools = member(j, "pools");
	ASSERT_TRUE(json_object_is_type(pools, json_type_array));
	for (i = 0; i < json_object_array_length(pools); i++) {
		struct json_object *p = json_object_array_get_idx(pools, i);

		if (json_object_get_int(member(p, "pid")) == getpid())
			pool = p;
	}
	ASSERT_NE(NULL, pool) TH_LOG("llmctl kv stats does not show this process's pool");
	EXPECT_STREQ("selftest", json_object_get_string(member(pool, "name")));
	EXPECT_EQ(0, json_object_get_int(member(pool, "card")));
	EXPECT_TRUE(json_object_get_boolean(member(pool, "alive")));
	EXPECT_EQ(8, json_object_get_int64(member(pool, "blocks")));
	tiers = member(pool, "tiers");
	ASSERT_EQ(3, json_object_array_length(tiers));
	h = json_object_array_get_idx(tiers, 0);
	{
		EXPECT_STREQ("hbm", json_object_get_string(member(h, "tier")));
		EXPECT_EQ(8, json_object_get_int64(member(h, "pinned")));
		EXPECT_EQ(8, json_object_get_int64(member(h, "evictions")));
		EXPECT_EQ(8, json_object_get_int64(member(h, "misses")));
		EXPECT_EQ(8 * BS, json_object_get_int64(member(h, "bytes_in")));
		EXPECT_LT(0, json_object_get_int64(member(h, "swap_in_median_ns")));
		EXPECT_LE(json_object_get_int64(member(h, "swap_in_median_ns")),
			  json_object_get_int64(member(h, "swap_in_p99_ns")));
	}
	json_object_put(j);
	ASSERT_EQ(0, llmdev_kv_unpin(kv, r, 8));
	llmdev_kv_destroy(kv);

	/* a small bench: every documented member */
	j = llmctl_json("kv bench 0 --block-sizes 16K,64K --batches 1,8 --max-bytes 512K --time 0.05",
			&rc);
	ASSERT_NE(NULL, j);
	EXPECT_EQ(0, rc);
	EXPECT_STREQ("llmdev.kv-bench/1", json_object_get_string(member(j, "schema")));
	EXPECT_LT(0, json_object_get_double(member(j, "single_64m_gbps")));
	res = member(j, "results");
	ASSERT_EQ(8, json_object_array_length(res));
	for (i = 0; i < json_object_array_length(res); i++) {
		struct json_object *x = json_object_array_get_idx(res, i);
		const char *d = json_object_get_string(member(x, "dir"));

		EXPECT_TRUE(d && (!strcmp(d, "out") || !strcmp(d, "in")));
		EXPECT_TRUE(json_object_get_int64(member(x, "block_size")) == 16384 ||
			    json_object_get_int64(member(x, "block_size")) == 65536);
		EXPECT_LT(0, json_object_get_int64(member(x, "batch")));
		EXPECT_LT(0, json_object_get_double(member(x, "blocks_per_s")));
		EXPECT_LT(0, json_object_get_double(member(x, "gbps")));
		EXPECT_LT(0, json_object_get_int64(member(x, "median_ns")));
		EXPECT_LE(json_object_get_int64(member(x, "median_ns")),
			  json_object_get_int64(member(x, "p99_ns")));
		EXPECT_LE(5, json_object_get_int64(member(x, "rounds")));
		/* the per-block reference measured with this figure */
		EXPECT_LT(0, json_object_get_double(member(x, "per_block_blocks_per_s")));
		EXPECT_LT(0, json_object_get_double(member(x, "vs_per_block")));
		EXPECT_LT(0, json_object_get_double(member(x,
				"per_block_registered_blocks_per_s")));
		EXPECT_LT(0, json_object_get_double(member(x, "vs_per_block_registered")));
	}
	for (k = 0; k < 2; k++) {
		res = member(j, k ? "per_block_registered" : "per_block");
		ASSERT_EQ(4, json_object_array_length(res));
		for (i = 0; i < json_object_array_length(res); i++) {
			struct json_object *x = json_object_array_get_idx(res, i);

			/* in then out, per size: 32 or 8 blocks each way, then 16 per slice */
			EXPECT_STREQ(i % 2 ? "out" : "in",
				     json_object_get_string(member(x, "dir")));
			EXPECT_EQ(i < 2 ? 16384 : 65536,
				  json_object_get_int64(member(x, "block_size")));
			EXPECT_EQ(1, json_object_get_int64(member(x, "batch")));
			EXPECT_LE(8 + 16, json_object_get_int64(member(x, "transfers")));
			EXPECT_LT(0, json_object_get_double(member(x, "blocks_per_s")));
			EXPECT_TRUE(json_object_object_get_ex(x, "vs_per_block", NULL));
			EXPECT_EQ(json_type_null,
				  json_object_get_type(member(x, "vs_per_block")));
			EXPECT_TRUE(json_object_object_get_ex(x, "vs_per_block_registered",
							      NULL));
			EXPECT_EQ(json_type_null,
				  json_object_get_type(member(x, "vs_per_block_registered")));
		}
	}
	/* 64 KiB in batches of 1000 were not measured: the targets are null */
	res = member(j, "targets");
	for (k = 0; k < 4; k++) {
		static const char *const t[] = {
			"blocks_per_s_vs_per_block_out", "blocks_per_s_vs_per_block_in",
			"blocks_per_s_vs_per_block_registered_out",
			"blocks_per_s_vs_per_block_registered_in",
		};
		struct json_object *v = NULL;

		EXPECT_TRUE(json_object_object_get_ex(res, t[k], &v)) TH_LOG("%s", t[k]);
		EXPECT_EQ(json_type_null, json_object_get_type(v)) TH_LOG("%s", t[k]);
	}
	json_object_put(j);
	/* usage errors */
	EXPECT_EQ(1, WEXITSTATUS(system("llmctl kv bench --batches 0 2>/dev/null")));
	EXPECT_EQ(1, WEXITSTATUS(system("llmctl kv stats nope 2>/dev/null")));
	EXPECT_EQ(2, WEXITSTATUS(system("llmctl kv bench 9 2>/dev/null")));
}

TEST_HARNESS_MAIN
