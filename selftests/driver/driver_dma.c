// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev driver: DMA transfers and fences. Round trips of random data on
 * every ring with odd sizes, unaligned buffers and odd region offsets; many
 * transfers in flight waited for in random order and with WAIT_ANY; poll();
 * timeouts; threads, processes and cards at once; close with transfers in
 * flight; the LLMDEV_MAX_FENCES limit.
 */
#include <pthread.h>

#include "driver_util.h"
#include "kselftest_harness.h"

static bool enough_memory(uint64_t bytes)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	unsigned long long kb = 0;

	if (!f)
		return true;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return !kb || kb * 1024 >= bytes;
}

/* ---- round trips, one variant per size -------------------------------- */

FIXTURE(rt) {
	int kmsg;		/* /dev/kmsg, for kernel reports */
	int fd;
	struct llmdev_info info;
};

FIXTURE_VARIANT(rt) {
	uint64_t len;
};

FIXTURE_VARIANT_ADD(rt, len_1) { .len = 1 };
FIXTURE_VARIANT_ADD(rt, len_3) { .len = 3 };
FIXTURE_VARIANT_ADD(rt, len_4095) { .len = 4095 };
FIXTURE_VARIANT_ADD(rt, len_4096) { .len = 4096 };
FIXTURE_VARIANT_ADD(rt, len_4097) { .len = 4097 };
FIXTURE_VARIANT_ADD(rt, len_65537) { .len = 65537 };
FIXTURE_VARIANT_ADD(rt, len_1M) { .len = LD_MIB };
FIXTURE_VARIANT_ADD(rt, len_16M) { .len = 16 * LD_MIB };
FIXTURE_VARIANT_ADD(rt, len_64M) { .len = 64 * LD_MIB };

FIXTURE_SETUP(rt)
{
	LD_FIXTURE_START();
	LD_FIXTURE_OPEN_CARD0();
}

FIXTURE_TEARDOWN(rt)
{
	LD_FIXTURE_END();
}

/*
 * One round trip: host buffer at page offset @uoff -> region offset @roff
 * on H2C ring @hr -> back on C2H ring @cr into another buffer at page
 * offset @uoff2. Checks the data, the host bytes around the destination
 * and the HBM bytes around the written range.
 */
static int round_trip(struct __test_metadata *_metadata, int fd, uint64_t len,
		      uint32_t hr, uint32_t cr, unsigned int uoff,
		      unsigned int uoff2, uint64_t roff, uint64_t seed)
{
	const uint64_t rlen = roff + len + 4096;
	struct llmdev_hbm_alloc a;
	uint8_t *src = ld_alloc_buf(len + uoff), *dst = ld_alloc_buf(len + uoff2 + 1);
	uint8_t edge[2] = { 0xff, 0xff };
	long bad;
	int ret;

	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, ld_hbm_alloc(fd, rlen, 0, 0, NULL, &a));
	ld_fill(src + uoff, len, seed);
	memset(dst, 0xa5, len + uoff2 + 1);

	ret = ld_xfer(fd, a.handle, roff, src + uoff, len, true, hr);
	EXPECT_EQ(0, ret) TH_LOG("H2C len %llu ring %u: %d", (unsigned long long)len, hr, ret);
	ret = ld_xfer(fd, a.handle, roff, dst + uoff2, len, false, cr);
	EXPECT_EQ(0, ret) TH_LOG("C2H len %llu ring %u: %d", (unsigned long long)len, cr, ret);
	bad = ld_cmp(src + uoff, dst + uoff2, len);
	EXPECT_EQ(-1, bad) TH_LOG("len %llu rings %u/%u uoff %u/%u roff %llu: byte %ld differs",
				 (unsigned long long)len, hr, cr, uoff, uoff2,
				 (unsigned long long)roff, bad);
	/* host bytes around the destination untouched */
	EXPECT_EQ(-1, ld_memchk(dst, 0xa5, uoff2))
		TH_LOG("C2H wrote before its buffer");
	EXPECT_EQ(0xa5, dst[uoff2 + len]) TH_LOG("C2H wrote after its buffer");
	/* HBM bytes around the written range still zero (fresh region) */
	if (roff) {
		ASSERT_EQ(0, ld_xfer(fd, a.handle, roff - 1, &edge[0], 1, false, cr));
		EXPECT_EQ(0, edge[0]) TH_LOG("H2C wrote before its range");
	}
	ASSERT_EQ(0, ld_xfer(fd, a.handle, roff + len, &edge[1], 1, false, cr));
	EXPECT_EQ(0, edge[1]) TH_LOG("H2C wrote after its range");

	EXPECT_EQ(0, ld_hbm_free(fd, a.handle));
	ld_free_buf(src, len + uoff);
	ld_free_buf(dst, len + uoff2 + 1);
	return 0;
}

TEST_F_TIMEOUT(rt, every_ring, 120)
{
	uint64_t len = variant->len;
	unsigned int r, nr;

	SETUP_OR_SKIP();
	if (self->info.hbm_size - self->info.hbm_used < 2 * len + 65536)
		SKIP(return, "HBM too small for %llu bytes", (unsigned long long)len);
	if (!enough_memory(3 * len + 64 * LD_MIB))
		SKIP(return, "not enough guest memory for %llu bytes", (unsigned long long)len);
	nr = self->info.num_h2c_rings > self->info.num_c2h_rings ?
	     self->info.num_h2c_rings : self->info.num_c2h_rings;
	for (r = 0; r < nr; r++) {
		/* aligned first, then unaligned buffers and odd region offsets */
		round_trip(_metadata, self->fd, len, r % self->info.num_h2c_rings,
			   r % self->info.num_c2h_rings, 0, 0, 0, r);
		round_trip(_metadata, self->fd, len, r % self->info.num_h2c_rings,
			   (r + 1) % self->info.num_c2h_rings, 1 + 13 * r,
			   63 - 7 * r, 4093 + r * 2, r + 100);
	}
	round_trip(_metadata, self->fd, len, LLMDEV_RING_ANY, LLMDEV_RING_ANY,
		   33, 17, 1, 200);
}

/* ---- everything else ------------------------------------------------- */

FIXTURE(dma) {
	int kmsg;		/* /dev/kmsg, for kernel reports */
	int fd;
	struct llmdev_info info;
	uint64_t used0;
};

FIXTURE_SETUP(dma)
{
	LD_FIXTURE_START();
	LD_FIXTURE_OPEN_CARD0();
	self->used0 = self->info.hbm_used;
}

#define LD_PARAM_PINNED	"/sys/module/llmdev/parameters/max_pinned_mb"

/* max_pinned_mb as it was before a test changed it ("" untouched) */
static char pinned_saved[32];

FIXTURE_TEARDOWN(dma)
{
	if (pinned_saved[0]) {
		ld_write_file(LD_PARAM_PINNED, pinned_saved);
		pinned_saved[0] = 0;
	}
	LD_FIXTURE_END();
}

static void shuffle(unsigned int *v, unsigned int n, uint64_t seed)
{
	unsigned int i, j, t;

	for (i = n - 1; i > 0; i--) {
		j = ld_rand64(&seed) % (i + 1);
		t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
}

#define NFLIGHT	64
#define PIECE	(64 * 1024 + 3)

TEST_F(dma, many_in_flight)
{
	const uint64_t len = (uint64_t)NFLIGHT * PIECE;
	struct llmdev_hbm_alloc a;
	uint8_t *src = ld_alloc_buf(len), *dst = ld_alloc_buf(len);
	uint64_t fence[NFLIGHT], f;
	unsigned int order[NFLIGHT], i, seen[NFLIGHT] = { 0 };
	int status;
	long bad;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, len, 0, 0, NULL, &a));
	ld_fill(src, len, 64);
	memset(dst, 0, len);
	for (i = 0; i < NFLIGHT; i++) {
		ASSERT_EQ(0, ld_submit(self->fd, a.handle, (uint64_t)i * PIECE,
				       src + (uint64_t)i * PIECE, PIECE, true,
				       i % self->info.num_h2c_rings, &fence[i]));
		order[i] = i;
	}
	for (i = 0; i < NFLIGHT; i++)
		EXPECT_NE(fence[i], fence[(i + 1) % NFLIGHT]);
	shuffle(order, NFLIGHT, 1);
	for (i = 0; i < NFLIGHT; i++) {
		status = 1;
		ASSERT_EQ(0, ld_wait(self->fd, fence[order[i]], LD_LONG_WAIT, &status));
		EXPECT_EQ(0, status);
	}
	/* back with WAIT_ANY: every fence exactly once, then nothing */
	for (i = 0; i < NFLIGHT; i++)
		ASSERT_EQ(0, ld_submit(self->fd, a.handle, (uint64_t)i * PIECE,
				       dst + (uint64_t)i * PIECE, PIECE, false,
				       (i / 3) % self->info.num_c2h_rings, &fence[i]));
	for (i = 0; i < NFLIGHT; i++) {
		unsigned int k;

		status = 1;
		ASSERT_EQ(0, ld_wait_any(self->fd, LD_LONG_WAIT, &f, &status));
		EXPECT_EQ(0, status);
		for (k = 0; k < NFLIGHT && fence[k] != f; k++)
			;
		ASSERT_LT(k, NFLIGHT) TH_LOG("WAIT_ANY returned unknown fence %llu",
					     (unsigned long long)f);
		EXPECT_EQ(0, seen[k]) TH_LOG("fence %llu reported twice", (unsigned long long)f);
		seen[k]++;
	}
	EXPECT_EQ(-ENOENT, ld_wait_any(self->fd, 0, &f, &status));
	bad = ld_cmp(src, dst, len);
	EXPECT_EQ(-1, bad) TH_LOG("byte %ld (piece %ld) differs", bad, bad / PIECE);
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
	ld_free_buf(src, len);
	ld_free_buf(dst, len);
}

/*
 * LLMDEV_RING_ANY takes the direction's rings in turn: transfers submitted
 * one after another, each waited for, advance every ring's doorbell (TAIL,
 * read from BAR 0) by as many descriptors. (Once, one counter served both
 * directions and each submit drew from it twice: every transfer of a
 * direction went to the same ring.)
 */
TEST_F(dma, ring_any_takes_turns)
{
	unsigned int nr[2] = { self->info.num_h2c_rings, self->info.num_c2h_rings };
	uint32_t before[LLMDEV_NUM_RINGS], grew;
	struct llmdev_hbm_alloc a;
	struct ld_bar0 bar;
	unsigned int d, r, i, base;
	uint8_t *buf = ld_alloc_buf(4096);
	uint64_t f;
	int status;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, buf);
	LD_BAR0_MAP_OR_SKIP(0, &bar, goto out);
	ASSERT_LE(nr[0] + nr[1], LLMDEV_NUM_RINGS);
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 4096, 0, 0, NULL, &a));
	ld_fill(buf, 4096, 7);
	for (d = 0; d < 2; d++) {
		base = d ? nr[0] : 0;
		for (r = 0; r < nr[d]; r++)
			before[r] = ld_rd32(&bar, LLMDEV_RING_BASE(base + r) +
					    LLMDEV_RING_TAIL);
		/* one page from a page: one descriptor each */
		for (i = 0; i < 2 * nr[d]; i++) {
			ASSERT_EQ(0, ld_submit(self->fd, a.handle, 0, buf, 4096,
					       !d, LLMDEV_RING_ANY, &f));
			ASSERT_EQ(0, ld_wait(self->fd, f, LD_LONG_WAIT, &status));
			ASSERT_EQ(0, status);
		}
		for (r = 0; r < nr[d]; r++) {
			grew = ld_rd32(&bar, LLMDEV_RING_BASE(base + r) +
				       LLMDEV_RING_TAIL) - before[r];
			EXPECT_EQ(2, grew)
				TH_LOG("%s ring %u took %u of %u transfers",
				       d ? "card-to-host" : "host-to-card", r,
				       grew, 2 * nr[d]);
		}
	}
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
	ld_bar0_unmap(&bar);
out:
	ld_free_buf(buf, 4096);
}

static short poll_now(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

TEST_F(dma, poll)
{
	struct llmdev_hbm_alloc a;
	struct pollfd p = { .fd = self->fd, .events = POLLIN };
	uint8_t buf[4096];
	uint64_t f1, f2;
	int status, fd2;

	SETUP_OR_SKIP();
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 65536, 0, 0, NULL, &a));
	EXPECT_EQ(0, poll_now(self->fd)) TH_LOG("POLLIN before any transfer");
	ASSERT_EQ(0, ld_submit(self->fd, a.handle, 0, buf, sizeof(buf), true, 0, &f1));
	ASSERT_EQ(1, poll(&p, 1, 10000)) TH_LOG("no POLLIN after a completed transfer");
	EXPECT_EQ(POLLIN, p.revents & (POLLIN | POLLERR | POLLHUP));
	/* stays set until consumed */
	EXPECT_EQ(POLLIN, poll_now(self->fd) & POLLIN);
	EXPECT_EQ(POLLIN, poll_now(self->fd) & POLLIN);
	ASSERT_EQ(0, ld_wait(self->fd, f1, 0, &status));
	EXPECT_EQ(0, status);
	EXPECT_EQ(0, poll_now(self->fd)) TH_LOG("POLLIN after the fence was consumed");

	/* two complete, one consumed: still POLLIN */
	ASSERT_EQ(0, ld_submit(self->fd, a.handle, 0, buf, 2048, false, 0, &f1));
	ASSERT_EQ(0, ld_submit(self->fd, a.handle, 0, buf + 2048, 2048, false, 1, &f2));
	ASSERT_EQ(0, ld_wait(self->fd, f2, LD_LONG_WAIT, &status));
	ASSERT_EQ(1, poll(&p, 1, 10000));
	EXPECT_EQ(POLLIN, p.revents & POLLIN);
	ASSERT_EQ(0, ld_wait(self->fd, f1, 0, &status));
	EXPECT_EQ(0, poll_now(self->fd));

	/* WAIT_ANY consumes too */
	ASSERT_EQ(0, ld_submit(self->fd, a.handle, 0, buf, sizeof(buf), true, 1, &f1));
	ASSERT_EQ(1, poll(&p, 1, 10000));
	ASSERT_EQ(0, ld_wait_any(self->fd, 0, &f2, &status));
	EXPECT_EQ(f1, f2);
	EXPECT_EQ(0, poll_now(self->fd));

	/* another file sees nothing of ours */
	fd2 = ld_open(0);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, ld_submit(self->fd, a.handle, 0, buf, sizeof(buf), true, 0, &f1));
	ASSERT_EQ(1, poll(&p, 1, 10000));
	EXPECT_EQ(0, poll_now(fd2));
	close(fd2);
	ASSERT_EQ(0, ld_wait(self->fd, f1, 0, &status));
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
}

/*
 * Queue enough work that the last fence cannot be done yet: 15 transfers of
 * 4 MiB, then one of 32 MiB, whose copy takes 2-3 ms at the card model's
 * 10-15 GB/s. On a loaded host the model can still finish it before the
 * guest gets to its next call (with an IOMMU, where mapping the 32 MiB
 * makes the submit slow, it did in 1 of 3 runs): then the transfers are
 * waited for and queued again, WAIT_TIMEOUT_TRIES times at most.
 */
#define WAIT_TIMEOUT_TRIES	4

TEST_F(dma, wait_timeout)
{
	const unsigned int n = 16;
	const uint64_t piece = 4 * LD_MIB, last = 32 * LD_MIB;
	struct llmdev_hbm_alloc a;
	uint8_t *buf = ld_alloc_buf(last);
	uint64_t fence[16], t0, t1;
	unsigned int i, try, left = n;
	int status, ret = 0;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, last, 0, 0, NULL, &a));
	ld_fill(buf, last, 1);
	for (try = 0; try < WAIT_TIMEOUT_TRIES && !ret; try++) {
		for (i = 0; i < n; i++)
			ASSERT_EQ(0, ld_submit(self->fd, a.handle, 0, buf,
					       i < n - 1 ? piece : last, true, 0,
					       &fence[i]));
		ret = ld_wait(self->fd, fence[n - 1], 0, &status);
		if (ret)
			break;
		/* all done already: consume them, then try again */
		for (i = 0; i < n - 1; i++)
			ASSERT_EQ(0, ld_wait(self->fd, fence[i], LD_LONG_WAIT,
					     NULL));
	}
	if (!ret) {
		EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
		ld_free_buf(buf, last);
		SKIP(return,
		     "92 MiB finished before a zero-timeout wait, %u times: cannot test ETIME here (driver_fault does, with a stalled ring)",
		     WAIT_TIMEOUT_TRIES);
	}
	if (try)
		TH_LOG("the card finished before the zero-timeout wait %u time(s)",
		       try);
	EXPECT_EQ(-ETIME, ret);
	t0 = ld_now_ns();
	ret = ld_wait(self->fd, fence[n - 1], 1000000, &status);	/* 1 ms */
	t1 = ld_now_ns();
	if (ret) {
		EXPECT_EQ(-ETIME, ret);
		EXPECT_LE(1000000, t1 - t0) TH_LOG("1 ms timeout returned after %llu ns",
						   (unsigned long long)(t1 - t0));
	} else {
		left = n - 1;	/* it completed and was consumed */
	}
	/* still pending, and can be waited for again */
	for (i = 0; i < left; i++) {
		status = 1;
		ASSERT_EQ(0, ld_wait(self->fd, fence[i], LD_LONG_WAIT, &status));
		EXPECT_EQ(0, status);
	}
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
	ld_free_buf(buf, last);
}

/* ---- concurrency ------------------------------------------------------ */

struct worker {
	int fd;			/* shared, or -1: open card @card */
	unsigned int card;
	unsigned int id;
	unsigned int iters;
	int errors;
	char msg[160];
};

static int worker_run(struct worker *w)
{
	const uint64_t rlen = 2 * LD_MIB, maxlen = 512 * LD_KIB;
	struct llmdev_hbm_alloc a;
	uint64_t seed = 0x1234 + w->id * 7919 + w->card;
	uint8_t *src = ld_alloc_buf(maxlen + 64), *dst = ld_alloc_buf(maxlen + 64);
	struct llmdev_info info;
	bool own = w->fd < 0;
	int fd = own ? ld_open(w->card) : w->fd;
	unsigned int i;
	int ret;

	if (fd < 0 || !src || !dst) {
		snprintf(w->msg, sizeof(w->msg), "setup: fd %d", fd);
		return ++w->errors;
	}
	ld_info(fd, &info);
	ret = ld_hbm_alloc(fd, rlen, 0, 0, NULL, &a);
	if (ret) {
		snprintf(w->msg, sizeof(w->msg), "alloc: %d", ret);
		return ++w->errors;
	}
	for (i = 0; i < w->iters; i++) {
		uint64_t len = 1 + ld_rand64(&seed) % maxlen;
		uint64_t off = ld_rand64(&seed) % (rlen - len);
		unsigned int so = ld_rand64(&seed) % 64, d = ld_rand64(&seed) % 64;
		long bad;

		ld_fill(src + so, len, seed);
		memset(dst + d, 0, len);
		ret = ld_xfer(fd, a.handle, off, src + so, len, true,
			      i % info.num_h2c_rings);
		if (!ret)
			ret = ld_xfer(fd, a.handle, off, dst + d, len, false,
				      (i + w->id) % info.num_c2h_rings);
		bad = ret ? 0 : ld_cmp(src + so, dst + d, len);
		if (ret || bad >= 0) {
			snprintf(w->msg, sizeof(w->msg),
				 "card %u worker %u iter %u: len %llu off %llu: ret %d, byte %ld differs",
				 w->card, w->id, i, (unsigned long long)len,
				 (unsigned long long)off, ret, bad);
			w->errors++;
			break;
		}
	}
	ld_hbm_free(fd, a.handle);
	if (own)
		close(fd);
	ld_free_buf(src, maxlen + 64);
	ld_free_buf(dst, maxlen + 64);
	return w->errors;
}

static void *worker_thread(void *arg)
{
	worker_run(arg);
	return NULL;
}

static void run_threads(struct __test_metadata *_metadata, struct worker *w,
			unsigned int n)
{
	pthread_t t[16];
	unsigned int i;

	for (i = 0; i < n; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, worker_thread, &w[i]));
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < n; i++)
		EXPECT_EQ(0, w[i].errors) TH_LOG("%s", w[i].msg);
}

TEST_F_TIMEOUT(dma, threads_shared_fd, 90)
{
	struct worker w[4];
	unsigned int i;

	SETUP_OR_SKIP();
	for (i = 0; i < 4; i++)
		w[i] = (struct worker){ .fd = self->fd, .id = i, .iters = 40 };
	run_threads(_metadata, w, 4);
	EXPECT_EQ(-ENOENT, ld_wait_any(self->fd, 0, NULL, NULL));
}

TEST_F_TIMEOUT(dma, threads_own_fd, 90)
{
	struct worker w[4];
	unsigned int i;

	SETUP_OR_SKIP();
	for (i = 0; i < 4; i++)
		w[i] = (struct worker){ .fd = -1, .id = i, .iters = 40 };
	run_threads(_metadata, w, 4);
	EXPECT_EQ(self->used0, ld_hbm_used_settle(0, self->used0));
}

TEST_F_TIMEOUT(dma, all_cards_at_once, 90)
{
	unsigned int n = ld_num_cards(), i;
	struct worker w[16];

	SETUP_OR_SKIP();
	if (n < 2)
		SKIP(return, "one card only");
	if (n > 8)
		n = 8;
	for (i = 0; i < 2 * n; i++)
		w[i] = (struct worker){ .fd = -1, .card = i % n, .id = i, .iters = 20 };
	run_threads(_metadata, w, 2 * n);
}

TEST_F_TIMEOUT(dma, processes, 90)
{
	unsigned int n = ld_num_cards(), i;
	pid_t pid[4];

	SETUP_OR_SKIP();
	for (i = 0; i < 4; i++) {
		pid[i] = fork();
		ASSERT_LE(0, pid[i]);
		if (pid[i] == 0) {
			struct worker w = { .fd = -1, .card = i % 2 % n, .id = i, .iters = 40 };

			if (worker_run(&w))
				fprintf(stderr, "# %s\n", w.msg);
			_exit(w.errors ? 1 : 0);
		}
	}
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, ld_wait_child(pid[i])) TH_LOG("process %u", i);
	EXPECT_EQ(self->used0, ld_hbm_used_settle(0, self->used0));
}

/* The same offsets on different cards hold different data. */
TEST_F(dma, cards_are_separate)
{
	unsigned int n = ld_num_cards(), c;
	const uint64_t len = 65536;
	uint8_t *buf = ld_alloc_buf(len), *got = ld_alloc_buf(len);
	int fds[16];
	uint32_t h[16];

	SETUP_OR_SKIP();
	if (n < 2)
		SKIP(return, "one card only");
	if (n > 16)
		n = 16;
	for (c = 0; c < n; c++) {
		struct llmdev_hbm_alloc a;

		fds[c] = ld_open(c);
		ASSERT_LE(0, fds[c]);
		ASSERT_EQ(0, ld_hbm_alloc(fds[c], len, 0, 0, NULL, &a));
		h[c] = a.handle;
		ld_fill(buf, len, 1000 + c);
		ASSERT_EQ(0, ld_xfer(fds[c], h[c], 0, buf, len, true, 0));
	}
	for (c = 0; c < n; c++) {
		ld_fill(buf, len, 1000 + c);
		ASSERT_EQ(0, ld_xfer(fds[c], h[c], 0, got, len, false, 0));
		EXPECT_EQ(-1, ld_cmp(buf, got, len)) TH_LOG("card %u", c);
		EXPECT_EQ(0, ld_hbm_free(fds[c], h[c]));
		close(fds[c]);
	}
	ld_free_buf(buf, len);
	ld_free_buf(got, len);
}

/* ---- teardown with work in flight ------------------------------------- */

/* @n transfers of @piece bytes, alternating directions, each its own bytes */
static int submit_many(int fd, uint32_t handle, uint8_t *buf, uint64_t piece,
		       unsigned int n, unsigned int rings)
{
	unsigned int i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = ld_submit(fd, handle, i * piece, buf + i * piece, piece, i & 1,
				(i / 2) % rings, NULL);
		if (ret)
			return ret;
	}
	return 0;
}

TEST_F_TIMEOUT(dma, close_in_flight, 60)
{
	const uint64_t piece = 128 * LD_KIB, n = 128, len = n * piece;
	struct llmdev_hbm_alloc a, b;
	uint8_t *buf = ld_alloc_buf(len);
	uint8_t *src = ld_alloc_buf(piece), *dst = ld_alloc_buf(piece);
	unsigned int r;
	pid_t pid;
	int fd2;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, buf);
	ld_fill(buf, len, 3);
	/* close() with 128 transfers queued */
	fd2 = ld_open(0);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, ld_hbm_alloc(fd2, len, 0, 0, NULL, &a));
	ASSERT_EQ(0, submit_many(fd2, a.handle, buf, piece, n, 2));
	close(fd2);
	/* the buffer may be reused at once */
	memset(buf, 0, len);
	EXPECT_EQ(self->used0, ld_hbm_used_settle(0, self->used0));

	/* a process exiting (fd and memory gone) with transfers queued */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		uint8_t *cb = ld_alloc_buf(len);
		int fd = ld_open(0);

		if (fd < 0 || !cb || ld_hbm_alloc(fd, len, 0, 0, NULL, &a))
			_exit(2);
		ld_fill(cb, len, 4);
		_exit(submit_many(fd, a.handle, cb, piece, n, 2) ? 3 : 0);
	}
	EXPECT_EQ(0, ld_wait_child(pid));
	EXPECT_EQ(self->used0, ld_hbm_used_settle(0, self->used0));

	/* the card still works, on every ring */
	fd2 = ld_open(0);
	ASSERT_LE(0, fd2);
	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	ASSERT_EQ(0, ld_hbm_alloc(fd2, piece, 0, 0, NULL, &b));
	for (r = 0; r < 2; r++) {
		ld_fill(src, piece, 50 + r);
		ASSERT_EQ(0, ld_xfer(fd2, b.handle, 0, src, piece, true, r));
		ASSERT_EQ(0, ld_xfer(fd2, b.handle, 0, dst, piece, false, r));
		EXPECT_EQ(-1, ld_cmp(src, dst, piece));
	}
	ld_free_buf(src, piece);
	ld_free_buf(dst, piece);
	close(fd2);
	EXPECT_EQ(self->used0, ld_hbm_used_settle(0, self->used0));
	ld_free_buf(buf, len);
}

/* Transfers from a buffer that is the region's own aperture mapping. */
TEST_F(dma, buffer_is_device_memory)
{
	struct llmdev_hbm_alloc a;
	void *map;
	int ret;

	SETUP_OR_SKIP();
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 65536, 0, 0, NULL, &a));
	map = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		   a.mmap_offset);
	ASSERT_NE(MAP_FAILED, map);
	ret = ld_xfer(self->fd, a.handle, 0, map, 4096, true, 0);
	EXPECT_TRUE(ret == -EFAULT || ret == 0)
		TH_LOG("DMA from an HBM mapping: %d", ret);
	TH_LOG("DMA with a PFNMAP (aperture) user buffer -> %d (%s)", ret,
	       ret ? strerror(-ret) : "ok");
	munmap(map, 65536);
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
}

/*
 * "-EAGAIN too many transfers in flight on this file (LLMDEV_MAX_FENCES)";
 * the limit is on unreaped fences, complete or not.
 */
TEST_F_TIMEOUT(dma, max_fences, 90)
{
	struct llmdev_hbm_alloc a, b;
	uint8_t *buf = ld_alloc_buf(LLMDEV_MAX_FENCES * 64);
	uint64_t f, first = 0;
	unsigned int i;
	int ret, status, fd2;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 65536, 0, 0, NULL, &a));
	for (i = 0; i < LLMDEV_MAX_FENCES; i++) {
		/* card-to-host ones into separate cache lines: no overlap */
		ret = ld_submit(self->fd, a.handle, i % 65536, buf + 64 * i, 1, i & 1,
				i % 2, &f);
		ASSERT_EQ(0, ret) TH_LOG("submit %u of %u: %d", i, LLMDEV_MAX_FENCES, ret);
		if (!i)
			first = f;
	}
	ret = ld_submit(self->fd, a.handle, 0, buf, 1, true, 0, &f);
	EXPECT_EQ(-EAGAIN, ret) TH_LOG("fence %u beyond LLMDEV_MAX_FENCES, at once: %d",
				      LLMDEV_MAX_FENCES + 1, ret);
	if (!ret)
		ld_wait(self->fd, f, LD_LONG_WAIT, NULL);
	/* let them complete: complete but unreaped fences still count */
	ld_msleep(1000);
	ret = ld_submit(self->fd, a.handle, 0, buf, 1, true, 0, &f);
	EXPECT_EQ(-EAGAIN, ret) TH_LOG("fence %u beyond LLMDEV_MAX_FENCES, after completion: %d",
				      LLMDEV_MAX_FENCES + 1, ret);
	if (!ret)
		ld_wait(self->fd, f, LD_LONG_WAIT, NULL);
	/* one reaped: room for exactly one */
	ASSERT_EQ(0, ld_wait(self->fd, first, LD_LONG_WAIT, &status));
	EXPECT_EQ(0, ld_submit(self->fd, a.handle, 0, buf, 1, true, 0, &f));
	EXPECT_EQ(-EAGAIN, ld_submit(self->fd, a.handle, 0, buf, 1, true, 0, NULL));
	/* another file has its own budget */
	fd2 = ld_open(0);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, ld_hbm_alloc(fd2, 4096, 0, 0, NULL, &b));
	EXPECT_EQ(0, ld_xfer(fd2, b.handle, 0, buf, 1, true, 0));
	close(fd2);
	/* reap everything */
	for (i = 0; ld_wait_any(self->fd, LD_LONG_WAIT, &f, &status) == 0; i++)
		EXPECT_EQ(0, status);
	EXPECT_EQ(LLMDEV_MAX_FENCES, i);
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
	ld_free_buf(buf, LLMDEV_MAX_FENCES * 64);
}

struct pin_submit {
	int fd;
	uint32_t handle;
	uint64_t offset;
	void *buf;
	uint64_t len;
	int ret;
	uint64_t fence;
	volatile bool returned;
};

static void *pin_submit_thread(void *arg)
{
	struct pin_submit *p = arg;

	p->ret = ld_submit(p->fd, p->handle, p->offset, p->buf, p->len, true, 0,
			   &p->fence);
	p->returned = true;
	return NULL;
}

static void on_usr1(int sig)
{
	(void)sig;
}

/*
 * Plain memory pinned for queued transfers is bounded, for all cards
 * together (max_pinned_mb, set to 8 here): with the first host-to-card
 * ring stalled, 8 MiB queue at once and 1 MiB more waits until they
 * finish, on this card and (with 2 cards) on another; a signal ends that
 * wait with -EINTR and nothing queued.
 */
TEST_F_TIMEOUT(dma, pinned_plain_bounded, 90)
{
	const uint64_t len = 16 * LD_MIB;
	uint8_t *buf = ld_alloc_buf(len), *back = ld_alloc_buf(len);
	uint32_t stall = LLMDEV_FAULT_STALL_RING(ld_hw_ring(true, 0));
	struct sigaction sa = { .sa_handler = on_usr1 }, old_sa;
	struct llmdev_hbm_alloc a;
	struct pin_submit p;
	struct ld_bar0 bar;
	uint64_t f1, f2, f3;
	int status;
	pthread_t t;

	SETUP_OR_SKIP();
	LD_BAR0_MAP_OR_SKIP(0, &bar, return);
	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, back);
	ASSERT_EQ(0, ld_read_file(LD_PARAM_PINNED, pinned_saved, sizeof(pinned_saved)))
		TH_LOG("no max_pinned_mb parameter");
	ASSERT_EQ(0, ld_write_file(LD_PARAM_PINNED, "8"));
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, len, 0, 0, NULL, &a));
	ld_fill(buf, len, 77);

	/* 6 + 2 MiB queue on the stalled ring: the bound exactly */
	ld_wr32(&bar, LLMDEV_REG_FAULT_INJECT, stall);
	ASSERT_EQ(0, ld_submit(self->fd, a.handle, 0, buf, 6 * LD_MIB, true, 0, &f1));
	ASSERT_EQ(0, ld_submit(self->fd, a.handle, 6 * LD_MIB, buf + 6 * LD_MIB,
			       2 * LD_MIB, true, 0, &f2));
	/* 1 MiB more waits for them */
	p = (struct pin_submit){ .fd = self->fd, .handle = a.handle,
				 .offset = 8 * LD_MIB, .buf = buf + 8 * LD_MIB,
				 .len = LD_MIB };
	ASSERT_EQ(0, pthread_create(&t, NULL, pin_submit_thread, &p));
	ld_msleep(300);
	EXPECT_FALSE(p.returned) TH_LOG("a submission past max_pinned_mb returned %d at once",
					p.ret);
	ld_wr32(&bar, LLMDEV_REG_FAULT_INJECT, 0);
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(0, p.ret);
	EXPECT_EQ(0, ld_wait(self->fd, f1, LD_LONG_WAIT, &status));
	EXPECT_EQ(0, status);
	EXPECT_EQ(0, ld_wait(self->fd, f2, LD_LONG_WAIT, &status));
	EXPECT_EQ(0, status);
	if (!p.ret) {
		EXPECT_EQ(0, ld_wait(self->fd, p.fence, LD_LONG_WAIT, &status));
		EXPECT_EQ(0, status);
	}
	EXPECT_EQ(0, ld_xfer(self->fd, a.handle, 0, back, 9 * LD_MIB, false,
			     LLMDEV_RING_ANY));
	EXPECT_EQ(-1, ld_cmp(buf, back, 9 * LD_MIB));

	/* the bound is the host's: another card's transfer waits too */
	if (ld_num_cards() > 1) {
		struct pin_submit q;
		struct llmdev_hbm_alloc a1;
		int fd1 = ld_open(1);

		ASSERT_LE(0, fd1);
		ASSERT_EQ(0, ld_hbm_alloc(fd1, LD_MIB, 0, 0, NULL, &a1));
		ld_wr32(&bar, LLMDEV_REG_FAULT_INJECT, stall);
		ASSERT_EQ(0, ld_submit(self->fd, a.handle, 0, buf, 8 * LD_MIB, true, 0, &f1));
		q = (struct pin_submit){ .fd = fd1, .handle = a1.handle,
					 .buf = buf + 8 * LD_MIB, .len = LD_MIB };
		ASSERT_EQ(0, pthread_create(&t, NULL, pin_submit_thread, &q));
		ld_msleep(300);
		EXPECT_FALSE(q.returned) TH_LOG("card 1 did not wait for card 0's pinned memory");
		ld_wr32(&bar, LLMDEV_REG_FAULT_INJECT, 0);
		ASSERT_EQ(0, pthread_join(t, NULL));
		EXPECT_EQ(0, q.ret);
		EXPECT_EQ(0, ld_wait(self->fd, f1, LD_LONG_WAIT, &status));
		EXPECT_EQ(0, status);
		if (!q.ret) {
			EXPECT_EQ(0, ld_wait(fd1, q.fence, LD_LONG_WAIT, &status));
			EXPECT_EQ(0, status);
		}
		EXPECT_EQ(0, ld_hbm_free(fd1, a1.handle));
		close(fd1);
	}

	/* a signal ends the wait: -EINTR, nothing queued */
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, &old_sa));
	ld_wr32(&bar, LLMDEV_REG_FAULT_INJECT, stall);
	ASSERT_EQ(0, ld_submit(self->fd, a.handle, 0, buf, 8 * LD_MIB, true, 0, &f3));
	p.returned = false;
	p.ret = 1;
	ASSERT_EQ(0, pthread_create(&t, NULL, pin_submit_thread, &p));
	ld_msleep(300);
	EXPECT_FALSE(p.returned);
	pthread_kill(t, SIGUSR1);
	ASSERT_EQ(0, pthread_join(t, NULL));
	EXPECT_EQ(-EINTR, p.ret);
	ld_wr32(&bar, LLMDEV_REG_FAULT_INJECT, 0);
	EXPECT_EQ(0, ld_wait(self->fd, f3, LD_LONG_WAIT, &status));
	EXPECT_EQ(0, status);
	/* f1, f2, f3 and the thread's first were all; nothing else is there */
	EXPECT_EQ(-ENOENT, ld_wait_any(self->fd, 0, NULL, NULL));
	sigaction(SIGUSR1, &old_sa, NULL);
	ld_bar0_unmap(&bar);
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
	ld_free_buf(buf, len);
	ld_free_buf(back, len);
}

TEST_HARNESS_MAIN
