// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev driver: errors and timeouts, provoked with the card's
 * FAULT_INJECT register (BAR 0, mapped through sysfs resource0 while the
 * driver is bound; needs iomem=relaxed on kernels with
 * CONFIG_IO_STRICT_DEVMEM).
 *
 *  - FAIL_NEXT_DESC: the transfer's fence reports -EIO, the next one works.
 *  - STALL_RING(n): with dma_timeout_ms lowered the fence reports
 *    -ETIMEDOUT in bounded time, the ring is reset and works again; a
 *    zero-timeout wait on the stalled fence gives ETIME.
 *  - waits interrupted by signals, with and without SA_RESTART.
 */
#include <sys/time.h>

#include "driver_util.h"
#include "kselftest_harness.h"

#define REGION	(4 * LD_MIB)
/*
 * dma_timeout_ms for every test of this file. One value throughout: the
 * driver arms a ring's watchdog with the value of the moment, so tests with
 * different values would disturb each other (see watchdog_rearm).
 */
#define TEST_TIMEOUT_MS	1000
#define MS		1000000ULL
#define XFER	(64 * LD_KIB + 5)

/* State shared by the two fixtures, "fault" and "stall" (per ring). */
struct fctx {
	int kmsg;			/* /dev/kmsg, for kernel reports */
	int fd;
	struct llmdev_info info;
	struct ld_bar0 bar;
	unsigned int timeout_ms;	/* dma_timeout_ms to restore */
	bool have_param;
	uint32_t handle;		/* REGION bytes */
	uint8_t *src, *dst;		/* XFER bytes each */
};

static void fctx_setup(struct __test_metadata *_metadata, struct fctx *self)
{
	struct llmdev_hbm_alloc a;

	LD_FIXTURE_START();
	LD_BAR0_MAP_OR_SKIP(0, &self->bar, return);
	if (!(ld_rd32(&self->bar, LLMDEV_REG_CAPS) & LLMDEV_CAPS_FAULT_INJECT))
		SKIP(return, "card has no fault injection");
	ld_wr32(&self->bar, LLMDEV_REG_FAULT_INJECT, 0);
	self->have_param = !ld_get_timeout_ms(&self->timeout_ms);
	if (self->have_param)
		ASSERT_EQ(0, ld_set_timeout_ms(TEST_TIMEOUT_MS));
	LD_FIXTURE_OPEN_CARD0();
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, REGION, 0, 0, NULL, &a));
	self->handle = a.handle;
	self->src = ld_alloc_buf(XFER);
	self->dst = ld_alloc_buf(XFER);
	ASSERT_NE(NULL, self->src);
	ASSERT_NE(NULL, self->dst);
}

static void fctx_teardown(struct fctx *self)
{
	if (self->bar.regs)
		ld_wr32(&self->bar, LLMDEV_REG_FAULT_INJECT, 0);
	if (self->have_param)
		ld_set_timeout_ms(self->timeout_ms);
	if (self->fd >= 0)
		close(self->fd);
	ld_bar0_unmap(&self->bar);
	ld_free_buf(self->src, XFER);
	ld_free_buf(self->dst, XFER);
}

FIXTURE(fault) {
	struct fctx c;
};

FIXTURE_SETUP(fault)
{
	fctx_setup(_metadata, &self->c);
}

FIXTURE_TEARDOWN(fault)
{
	LD_EXPECT_NO_KERNEL_REPORTS(self->c.kmsg);
	fctx_teardown(&self->c);
}

/* Tests that need the lowered DMA timeout; SKIP if impossible. */
#define NEED_TIMEOUT(ctx) do {						\
	if (!(ctx)->have_param)						\
		SKIP(return, "no %s", LD_PARAM_TIMEOUT);		\
} while (0)

/* round trip on rings @hr/@cr, checked */
static void check_round_trip(struct __test_metadata *_metadata,
			     struct fctx *self, uint32_t hr, uint32_t cr,
			     uint64_t seed)
{
	long bad;

	ld_fill(self->src, XFER, seed);
	memset(self->dst, 0, XFER);
	ASSERT_EQ(0, ld_xfer(self->fd, self->handle, 4099, self->src, XFER, true, hr));
	ASSERT_EQ(0, ld_xfer(self->fd, self->handle, 4099, self->dst, XFER, false, cr));
	bad = ld_cmp(self->src, self->dst, XFER);
	EXPECT_EQ(-1, bad) TH_LOG("rings %u/%u: byte %ld differs", hr, cr, bad);
}

TEST_F(fault, fail_next_desc)
{
	struct llmdev_perf p0, p1;
	uint64_t fence;
	int status;
	bool dir;

	SETUP_OR_SKIP();
	for (dir = false; ; dir = true) {
		ASSERT_EQ(0, ld_perf(self->c.fd, &p0));
		/* the region holds a known pattern */
		check_round_trip(_metadata, &self->c, 0, 0, 1 + dir);
		ld_fill(self->c.dst, XFER, 77);
		memset(self->c.dst, 0xa5, XFER);
		ld_wr32(&self->c.bar, LLMDEV_REG_FAULT_INJECT, LLMDEV_FAULT_FAIL_NEXT_DESC);
		ASSERT_EQ(0, ld_submit(self->c.fd, self->c.handle, 4099, self->c.dst, XFER,
				       dir, 0, &fence));
		status = 0;
		ASSERT_EQ(0, ld_wait(self->c.fd, fence, LD_LONG_WAIT, &status));
		EXPECT_EQ(-EIO, status) TH_LOG("%s transfer with an injected failure",
					       dir ? "H2C" : "C2H");
		EXPECT_EQ(0, ld_rd32(&self->c.bar, LLMDEV_REG_FAULT_INJECT) &
			     LLMDEV_FAULT_FAIL_NEXT_DESC);
		ASSERT_EQ(0, ld_perf(self->c.fd, &p1));
		EXPECT_LT(p0.counters[LLMDEV_COUNTER_ERRORS],
			  p1.counters[LLMDEV_COUNTER_ERRORS]);
		if (!dir) {
			/* a failed card-to-host moved nothing */
			EXPECT_EQ(-1, ld_memchk(self->c.dst, 0xa5, XFER));
		} else {
			/* a failed host-to-card left the region as it was */
			memset(self->c.dst, 0, XFER);
			ASSERT_EQ(0, ld_xfer(self->c.fd, self->c.handle, 4099, self->c.dst,
					     XFER, false, 1));
			EXPECT_EQ(-1, ld_cmp(self->c.src, self->c.dst, XFER));
		}
		/* the next transfers work */
		check_round_trip(_metadata, &self->c, 0, 0, 10 + dir);
		check_round_trip(_metadata, &self->c, 1, 1, 20 + dir);
		if (dir)
			break;
	}
}

/* With several transfers queued, exactly one fails. */
TEST_F(fault, fail_one_of_many)
{
	uint64_t fence[8];
	unsigned int i, failed = 0;
	int status;

	SETUP_OR_SKIP();
	ld_fill(self->c.src, XFER, 3);
	ld_wr32(&self->c.bar, LLMDEV_REG_FAULT_INJECT, LLMDEV_FAULT_FAIL_NEXT_DESC);
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, ld_submit(self->c.fd, self->c.handle, i * XFER, self->c.src,
				       XFER, true, i % 2, &fence[i]));
	for (i = 0; i < 8; i++) {
		status = 1;
		ASSERT_EQ(0, ld_wait(self->c.fd, fence[i], LD_LONG_WAIT, &status));
		EXPECT_TRUE(status == 0 || status == -EIO) TH_LOG("status %d", status);
		failed += status == -EIO;
	}
	EXPECT_EQ(1, failed);
	check_round_trip(_metadata, &self->c, 1, 0, 5);
}

/* RAISE_ERROR: an error interrupt with no transfer; the card keeps working. */
TEST_F(fault, error_interrupt)
{
	struct llmdev_perf p0, p1;

	SETUP_OR_SKIP();
	ASSERT_EQ(0, ld_perf(self->c.fd, &p0));
	ld_wr32(&self->c.bar, LLMDEV_REG_FAULT_INJECT, LLMDEV_FAULT_RAISE_ERROR);
	ld_msleep(100);
	ASSERT_EQ(0, ld_perf(self->c.fd, &p1));
	EXPECT_EQ(p0.counters[LLMDEV_COUNTER_ERRORS] + 1,
		  p1.counters[LLMDEV_COUNTER_ERRORS]);
	check_round_trip(_metadata, &self->c, 0, 1, 6);
	check_round_trip(_metadata, &self->c, LLMDEV_RING_ANY, LLMDEV_RING_ANY, 7);
}

/* ---- stalled rings -------------------------------------------------- */

FIXTURE(stall) {
	struct fctx c;
};

FIXTURE_VARIANT(stall) {
	bool to_card;
	unsigned int ring;	/* uapi ring of that direction */
};

FIXTURE_VARIANT_ADD(stall, h2c_0) { .to_card = true, .ring = 0 };
FIXTURE_VARIANT_ADD(stall, h2c_1) { .to_card = true, .ring = 1 };
FIXTURE_VARIANT_ADD(stall, c2h_0) { .to_card = false, .ring = 0 };
FIXTURE_VARIANT_ADD(stall, c2h_1) { .to_card = false, .ring = 1 };

FIXTURE_SETUP(stall)
{
	fctx_setup(_metadata, &self->c);
}

FIXTURE_TEARDOWN(stall)
{
	LD_EXPECT_NO_KERNEL_REPORTS(self->c.kmsg);
	fctx_teardown(&self->c);
}

static void stall(struct fctx *self, bool to_card, unsigned int ring,
		  bool on)
{
	uint32_t v = ld_rd32(&self->bar, LLMDEV_REG_FAULT_INJECT);
	uint32_t bit = LLMDEV_FAULT_STALL_RING(ld_hw_ring(to_card, ring));

	ld_wr32(&self->bar, LLMDEV_REG_FAULT_INJECT, on ? v | bit : v & ~bit);
}

TEST_F_TIMEOUT(stall, stall_times_out, 60)
{
	const bool dir = variant->to_card;
	const unsigned int ring = variant->ring;
	uint64_t fence, f2, t0, t1;
	int status, ret;

	SETUP_OR_SKIP();
	NEED_TIMEOUT(&self->c);
	stall(&self->c, dir, ring, true);
	ASSERT_EQ(0, ld_submit(self->c.fd, self->c.handle, 0, self->c.src, XFER, dir,
			       ring, &fence));
	t0 = ld_now_ns();
	/* pending: a zero timeout polls */
	EXPECT_EQ(-ETIME, ld_wait(self->c.fd, fence, 0, &status));
	EXPECT_EQ(-ETIME, ld_wait_any(self->c.fd, 0, NULL, NULL))
		TH_LOG("WAIT_ANY, timeout 0, only a pending fence");
	/* the other ring of the direction is not affected */
	ret = ld_xfer(self->c.fd, self->c.handle, REGION / 2, self->c.dst, 4096, dir,
		      !ring);
	EXPECT_EQ(0, ret) TH_LOG("ring %u while ring %u stalls: %d", !ring, ring, ret);
	EXPECT_EQ(-ETIME, ld_wait(self->c.fd, fence, 100 * 1000000ULL, &status));

	status = 0;
	ret = ld_wait(self->c.fd, fence, LD_LONG_WAIT, &status);
	t1 = ld_now_ns();
	ASSERT_EQ(0, ret);
	EXPECT_EQ(-ETIMEDOUT, status);
	EXPECT_LE((TEST_TIMEOUT_MS - 100) * MS, t1 - t0) TH_LOG("timed out after %llu ms",
		(unsigned long long)(t1 - t0) / MS);
	EXPECT_GE((TEST_TIMEOUT_MS + 4000) * MS, t1 - t0)
		TH_LOG("took %llu ms with dma_timeout_ms %u",
		       (unsigned long long)(t1 - t0) / MS, TEST_TIMEOUT_MS);

	/* still stalled: a new transfer times out too, in bounded time */
	ASSERT_EQ(0, ld_submit(self->c.fd, self->c.handle, 0, self->c.src, 100, dir,
			       ring, &f2));
	ASSERT_EQ(0, ld_wait(self->c.fd, f2, LD_LONG_WAIT, &status));
	EXPECT_EQ(-ETIMEDOUT, status);

	/* cleared: the same ring works and moves the right bytes */
	stall(&self->c, dir, ring, false);
	check_round_trip(_metadata, &self->c, dir ? ring : 0, dir ? 0 : ring, 40 + ring);
	check_round_trip(_metadata, &self->c, dir ? ring : 1, dir ? 1 : ring, 50 + ring);
}

/* Transfers queued behind a stalled one: all end, none hangs. */
TEST_F_TIMEOUT(stall, stall_queue_drains, 60)
{
	const bool dir = variant->to_card;
	const unsigned int ring = variant->ring;
	uint64_t fence[4];
	unsigned int i;
	int status;

	SETUP_OR_SKIP();
	NEED_TIMEOUT(&self->c);
	stall(&self->c, dir, ring, true);
	for (i = 0; i < 4; i++)	/* separate bytes: no overlapping DMA */
		ASSERT_EQ(0, ld_submit(self->c.fd, self->c.handle, i * XFER,
				       self->c.src + i * 4096, 4096, dir, ring,
				       &fence[i]));
	ASSERT_EQ(0, ld_wait(self->c.fd, fence[0], LD_LONG_WAIT, &status));
	EXPECT_EQ(-ETIMEDOUT, status);
	stall(&self->c, dir, ring, false);
	for (i = 1; i < 4; i++) {
		status = 1;
		ASSERT_EQ(0, ld_wait(self->c.fd, fence[i], LD_LONG_WAIT, &status));
		EXPECT_TRUE(status == 0 || status == -ETIMEDOUT || status == -ECANCELED)
			TH_LOG("queued transfer %u: status %d", i, status);
		TH_LOG("transfer %u queued behind the stalled one: status %d", i, status);
	}
	check_round_trip(_metadata, &self->c, dir ? ring : 0, dir ? 0 : ring, 60);
}

/* Closing a file, or freeing a region, with a stalled transfer is bounded. */
TEST_F_TIMEOUT(stall, stall_close_and_free, 60)
{
	const bool dir = variant->to_card;
	const unsigned int ring = variant->ring;
	struct llmdev_hbm_alloc a;
	uint64_t t0, t1;
	int fd2, status;

	SETUP_OR_SKIP();
	NEED_TIMEOUT(&self->c);
	stall(&self->c, dir, ring, true);
	fd2 = ld_open(0);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, ld_hbm_alloc(fd2, 65536, 0, 0, NULL, &a));
	ASSERT_EQ(0, ld_submit(fd2, a.handle, 0, self->c.src, 4096, dir, ring, NULL));
	t0 = ld_now_ns();
	close(fd2);
	t1 = ld_now_ns();
	EXPECT_GE((TEST_TIMEOUT_MS + 4000) * MS, t1 - t0) TH_LOG("close took %llu ms",
		(unsigned long long)(t1 - t0) / 1000000);

	ASSERT_EQ(0, ld_hbm_alloc(self->c.fd, 65536, 0, 0, NULL, &a));
	ASSERT_EQ(0, ld_submit(self->c.fd, a.handle, 0, self->c.src, 4096, dir, ring, NULL));
	t0 = ld_now_ns();
	EXPECT_EQ(0, ld_hbm_free(self->c.fd, a.handle));
	t1 = ld_now_ns();
	EXPECT_GE((TEST_TIMEOUT_MS + 4000) * MS, t1 - t0) TH_LOG("free took %llu ms",
		(unsigned long long)(t1 - t0) / 1000000);
	stall(&self->c, dir, ring, false);
	/* reap the timed-out fence of the freed region */
	status = 1;
	EXPECT_EQ(0, ld_wait_any(self->c.fd, LD_LONG_WAIT, NULL, &status));
	EXPECT_NE(0, status);
	check_round_trip(_metadata, &self->c, dir ? ring : 0, dir ? 0 : ring, 70);
}

/* uapi ring r of a direction is the hardware ring the header implies */
TEST_F(stall, ring_mapping)
{
	const bool dir = variant->to_card;
	const unsigned int ring = variant->ring;
	uint64_t fence;
	int status;

	SETUP_OR_SKIP();
	stall(&self->c, dir, ring, true);
	ASSERT_EQ(0, ld_submit(self->c.fd, self->c.handle, 0, self->c.src, 4096, dir,
			       ring, &fence));
	EXPECT_EQ(-ETIME, ld_wait(self->c.fd, fence, 200 * MS, &status))
		TH_LOG("uapi %s ring %u is not hardware ring %u",
		       dir ? "H2C" : "C2H", ring, ld_hw_ring(dir, ring));
	/* every other ring works meanwhile */
	EXPECT_EQ(0, ld_xfer(self->c.fd, self->c.handle, 8192, self->c.dst, 4096, dir, !ring));
	EXPECT_EQ(0, ld_xfer(self->c.fd, self->c.handle, 8192, self->c.dst, 4096, !dir, 0));
	EXPECT_EQ(0, ld_xfer(self->c.fd, self->c.handle, 8192, self->c.dst, 4096, !dir, 1));
	stall(&self->c, dir, ring, false);
	status = 1;
	ASSERT_EQ(0, ld_wait(self->c.fd, fence, LD_LONG_WAIT, &status));
	/* completes once resumed, unless the watchdog was quicker */
	EXPECT_TRUE(status == 0 || status == -ETIMEDOUT) TH_LOG("status %d", status);
}

/* ---- signals ---------------------------------------------------------- */

static volatile sig_atomic_t sig_count;
static volatile sig_atomic_t sig_clear_after;	/* clear the stall at this count */
static volatile uint32_t *sig_fault_reg;

static void on_alarm(int sig)
{
	sig_count++;
	if (sig_clear_after && sig_count == sig_clear_after && sig_fault_reg)
		*sig_fault_reg = 0;
	if (sig_count >= 10) {
		struct itimerval stop = { { 0, 0 }, { 0, 0 } };

		setitimer(ITIMER_REAL, &stop, NULL);
	}
}

static void arm_timer(unsigned int ms, bool restart, unsigned int clear_after,
		      struct fctx *self)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct itimerval it = {
		{ ms / 1000, (ms % 1000) * 1000 },
		{ ms / 1000, (ms % 1000) * 1000 },
	};

	sigemptyset(&sa.sa_mask);
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigaction(SIGALRM, &sa, NULL);
	sig_count = 0;
	sig_clear_after = clear_after;
	sig_fault_reg = (volatile uint32_t *)(self->bar.regs + LLMDEV_REG_FAULT_INJECT);
	setitimer(ITIMER_REAL, &it, NULL);
}

static void disarm_timer(void)
{
	struct itimerval stop = { { 0, 0 }, { 0, 0 } };

	setitimer(ITIMER_REAL, &stop, NULL);
	signal(SIGALRM, SIG_DFL);
}

/*
 * The wait is interrupted twice, then the handler un-stalls the ring: the
 * wait must return the transfer's real result, the data must be right.
 */
static void signal_wait(struct __test_metadata *_metadata,
			struct fctx *self, bool restart)
{
	struct llmdev_fence_wait w;
	uint64_t fence, left = 0;
	unsigned int eintr = 0;
	int ret, err;

	ld_fill(self->src, XFER, 90 + restart);
	stall(self, true, 0, true);
	ASSERT_EQ(0, ld_submit(self->fd, self->handle, 0, self->src, XFER, true, 0,
			       &fence));
	arm_timer(100, restart, 3, self);
	memset(&w, 0, sizeof(w));
	w.size = sizeof(w);
	w.fence = fence;
	w.timeout_ns = LD_LONG_WAIT;
	for (;;) {
		ret = ioctl(self->fd, LLMDEV_FENCE_WAIT, &w);
		err = errno;
		EXPECT_NE(512, err) TH_LOG("ERESTARTSYS leaked to userspace");
		if (!ret || err != EINTR || restart || eintr > 20)
			break;
		/* documented: retry with the same struct, which holds the time left */
		eintr++;
		left = w.timeout_ns;
	}
	disarm_timer();
	ld_wr32(&self->bar, LLMDEV_REG_FAULT_INJECT, 0);
	EXPECT_LE(1, sig_count) TH_LOG("no signal arrived during the wait");
	EXPECT_EQ(0, ret) TH_LOG("%s SA_RESTART: FENCE_WAIT failed with %s (%d)",
				 restart ? "with" : "without", strerror(err), err);
	if (eintr) {
		TH_LOG("without SA_RESTART: %u EINTR returns (documented at FENCE_WAIT; the header's preamble says waits restart transparently)",
		       eintr);
		EXPECT_GT(LD_LONG_WAIT, left) TH_LOG("timeout_ns not updated on EINTR");
		EXPECT_LT(LD_LONG_WAIT - 10 * LD_NSEC_PER_SEC, left);
	}
	if (ret)	/* the fence must still be there */
		ASSERT_EQ(0, ld_wait(self->fd, fence, LD_LONG_WAIT, &w.status));
	EXPECT_EQ(0, w.status);
	EXPECT_EQ(fence, w.fence);
	memset(self->dst, 0, XFER);
	ASSERT_EQ(0, ld_xfer(self->fd, self->handle, 0, self->dst, XFER, false, 0));
	EXPECT_EQ(-1, ld_cmp(self->src, self->dst, XFER));
}

TEST_F(fault, signal_with_sa_restart)
{
	SETUP_OR_SKIP();
	signal_wait(_metadata, &self->c, true);
}

TEST_F(fault, signal_without_sa_restart)
{
	SETUP_OR_SKIP();
	signal_wait(_metadata, &self->c, false);
}

/*
 * A bounded wait that keeps being interrupted still ends near its timeout:
 * a restart must not start the timeout over.
 */
TEST_F_TIMEOUT(fault, signal_bounded_wait, 60)
{
	struct llmdev_fence_wait w;
	uint64_t fence, t0, t1;
	int ret, err;

	SETUP_OR_SKIP();
	stall(&self->c, true, 0, true);
	ASSERT_EQ(0, ld_submit(self->c.fd, self->c.handle, 0, self->c.src, 4096, true, 0,
			       &fence));
	arm_timer(120, true, 0, &self->c);	/* 10 signals, 120 ms apart */
	memset(&w, 0, sizeof(w));
	w.size = sizeof(w);
	w.fence = fence;
	w.timeout_ns = 600 * MS;
	t0 = ld_now_ns();
	ret = ioctl(self->c.fd, LLMDEV_FENCE_WAIT, &w);
	err = errno;
	t1 = ld_now_ns();
	disarm_timer();
	EXPECT_LE(2, sig_count);
	EXPECT_EQ(-1, ret) TH_LOG("status %d", w.status);
	EXPECT_EQ(ETIME, err) TH_LOG("interrupted 600 ms wait: %s (%d)", strerror(err), err);
	EXPECT_GE((600 + 400) * MS, t1 - t0)
		TH_LOG("a 600 ms wait interrupted every 120 ms took %llu ms: the timeout restarts from scratch",
		       (unsigned long long)(t1 - t0) / MS);
	EXPECT_LE(550 * MS, t1 - t0);
	/* documented: the time left is written back on each interruption */
	EXPECT_GE(600 * MS, w.timeout_ns);
	ld_wr32(&self->c.bar, LLMDEV_REG_FAULT_INJECT, 0);
	ASSERT_EQ(0, ld_wait(self->c.fd, fence, LD_LONG_WAIT, &w.status));
	EXPECT_TRUE(w.status == 0 || w.status == -ETIMEDOUT);
}

/*
 * A fatal signal ends a waiter at once (the wait is killable): the child
 * dies long before the watchdog (10 s here) would end its transfer. The
 * file is the parent's too, so that the child's exit does not close it:
 * a close waits for the file's transfers (see fault.close_waits).
 */
TEST_F(fault, sigkill_waiter)
{
	uint64_t fence, t0, t1;
	struct llmdev_hbm_alloc a;
	int pfd[2], st, fd;
	pid_t pid;
	char c;

	SETUP_OR_SKIP();
	NEED_TIMEOUT(&self->c);
	ASSERT_EQ(0, ld_set_timeout_ms(10000));
	fd = ld_open(0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ld_hbm_alloc(fd, 4096, 0, 0, NULL, &a));
	stall(&self->c, true, 0, true);
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (ld_submit(fd, a.handle, 0, self->c.src, 4096, true, 0, &fence))
			_exit(2);
		if (write(pfd[1], "x", 1) != 1)
			_exit(3);
		ld_wait(fd, fence, LD_LONG_WAIT, NULL);
		_exit(4);
	}
	close(pfd[1]);
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	ld_msleep(200);
	t0 = ld_now_ns();
	kill(pid, SIGKILL);
	st = ld_wait_child(pid);
	t1 = ld_now_ns();
	EXPECT_EQ(128 + SIGKILL, st);
	EXPECT_GT(3000 * MS, t1 - t0)
		TH_LOG("the killed waiter took %llu ms to die",
		       (unsigned long long)(t1 - t0) / MS);
	close(pfd[0]);
	ld_wr32(&self->c.bar, LLMDEV_REG_FAULT_INJECT, 0);
	close(fd);
	ASSERT_EQ(0, ld_set_timeout_ms(TEST_TIMEOUT_MS));
	check_round_trip(_metadata, &self->c, 0, 0, 80);
}

/*
 * Closing a file waits for its transfers (their pages stay pinned until
 * the card is done), so the close of a file whose transfer is stalled
 * returns when the watchdog ends that transfer, not before and not never.
 */
TEST_F_TIMEOUT(fault, close_waits, 60)
{
	struct llmdev_hbm_alloc a;
	uint64_t fence, t0, t1;
	int fd;

	SETUP_OR_SKIP();
	NEED_TIMEOUT(&self->c);
	fd = ld_open(0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ld_hbm_alloc(fd, 4096, 0, 0, NULL, &a));
	stall(&self->c, true, 0, true);
	ASSERT_EQ(0, ld_submit(fd, a.handle, 0, self->c.src, 4096, true, 0,
			       &fence));
	t0 = ld_now_ns();
	close(fd);
	t1 = ld_now_ns();
	ld_wr32(&self->c.bar, LLMDEV_REG_FAULT_INJECT, 0);
	EXPECT_LE((TEST_TIMEOUT_MS - 100) * MS, t1 - t0)
		TH_LOG("close returned after %llu ms, the watchdog is %u ms",
		       (unsigned long long)(t1 - t0) / MS, TEST_TIMEOUT_MS);
	EXPECT_GE((TEST_TIMEOUT_MS + 4000) * MS, t1 - t0);
	check_round_trip(_metadata, &self->c, 0, 0, 81);
}

/*
 * A lowered dma_timeout_ms applies to the next stall on a ring even when
 * that ring's watchdog was last armed with a larger value.
 */
TEST_F_TIMEOUT(fault, watchdog_rearm, 60)
{
	uint64_t fence, t0, t1;
	int status;

	SETUP_OR_SKIP();
	NEED_TIMEOUT(&self->c);
	/* let an armed watchdog of ring 1 run out: it re-arms only when busy */
	ld_msleep(TEST_TIMEOUT_MS + 500);
	/* a transfer with a 20 s timeout, which completes at once */
	ASSERT_EQ(0, ld_set_timeout_ms(20000));
	stall(&self->c, true, 1, true);
	ASSERT_EQ(0, ld_submit(self->c.fd, self->c.handle, 0, self->c.src, 4096, true, 1,
			       &fence));
	EXPECT_EQ(-ETIME, ld_wait(self->c.fd, fence, 100 * MS, &status));
	stall(&self->c, true, 1, false);
	ASSERT_EQ(0, ld_wait(self->c.fd, fence, LD_LONG_WAIT, &status));
	EXPECT_EQ(0, status);
	/* now 1 s, and a stall */
	ASSERT_EQ(0, ld_set_timeout_ms(TEST_TIMEOUT_MS));
	stall(&self->c, true, 1, true);
	ASSERT_EQ(0, ld_submit(self->c.fd, self->c.handle, 0, self->c.src, 4096, true, 1,
			       &fence));
	t0 = ld_now_ns();
	ASSERT_EQ(0, ld_wait(self->c.fd, fence, LD_LONG_WAIT, &status));
	t1 = ld_now_ns();
	EXPECT_EQ(-ETIMEDOUT, status);
	EXPECT_GE((TEST_TIMEOUT_MS + 4000) * MS, t1 - t0)
		TH_LOG("dma_timeout_ms %u, but the stall ended after %llu ms: the watchdog kept the old 20 s delay",
		       TEST_TIMEOUT_MS, (unsigned long long)(t1 - t0) / MS);
	stall(&self->c, true, 1, false);
	check_round_trip(_metadata, &self->c, 1, 0, 81);
}

TEST_HARNESS_MAIN
