// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev perf counters and sensors: PERF_NUM, PERF_CTRL.SNAPSHOT latching
 * (snapshot values stay put while live ones move; SNAP_TIME is the
 * TIMESTAMP of the latch), sensor ranges, idle readings, and the rise of
 * temperature and power under sustained DMA.
 *
 * Sustained DMA: two host-to-card rings kept full of 1 MiB SGL descriptors
 * for up to 384 MiB or 5 s, whichever comes first (at least 64 MiB). The
 * model derives activity from DMA_BUSY_NS over virtual time, smoothed with a
 * ~1 s time constant; on TCG the busy fraction is small, so the test only
 * asks for a rise of RISE_MC / RISE_MW above the idle reading and logs the
 * numbers.
 *
 * Two measurements (their figures are logged; the data of every measured
 * transfer is checked): the model's DMA ceiling, bytes / DMA_BUSY_NS for
 * 64 MiB posted at once on one ring, each way; and the latency of single
 * 4 KiB transfers whose completion is polled (no interrupts), median and
 * p99 of wall time in the guest.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <linux/pci_regs.h>

#include "kselftest_harness.h"
#include "llmdev_test.h"

#define TEMP_IDLE_MC	35000
#define TEMP_MAX_MC	(35000 + 45000)
#define TEMP_CRIT_MC	95000
#define POWER_IDLE_MW	20000
#define POWER_MAX_MW	(20000 + 55000)
#define POWER_CAP_MW	75000
#define RISE_MC		100	/* 0.1 degree */
#define RISE_MW		100

#define MIB		(1u << 20)
#define SUSTAIN_BYTES	(384ull * MIB)
#define SUSTAIN_MIN	(64ull * MIB)
#define SUSTAIN_NS	(5ull * 1000000000)
#define WAIT_MS		10000

FIXTURE(perf) {
	struct llmdev_cards cs;
	struct llmdev_card *c;
	uint16_t cmd;
	struct llmdev_uring ring[2];
	struct llmdev_dmabuf buf;
};

FIXTURE_SETUP(perf)
{
	LLMDEV_CARDS_SETUP(&self->cs);
	self->c = &self->cs.card[0];
	self->cmd = llmdev_cfg_read16(self->c, PCI_COMMAND);
	LLMDEV_RESET(self->c);
}

FIXTURE_TEARDOWN(perf)
{
	if (self->c) {
		llmdev_soft_reset(self->c);
		llmdev_cfg_write16(self->c, PCI_COMMAND, self->cmd);
	}
	llmdev_uring_free(&self->ring[0]);
	llmdev_uring_free(&self->ring[1]);
	llmdev_dmabuf_free(&self->buf);
	llmdev_cards_close(&self->cs);
}

static uint64_t snap(struct llmdev_card *c, unsigned int i)
{
	return llmdev_rd64(c, LLMDEV_REG_PERF_SNAP + 8 * i);
}

TEST_F(perf, snapshot)
{
	struct llmdev_card *c = self->c;
	uint64_t live[LLMDEV_PERF_NUM_COUNTERS], t0, t1, st;
	unsigned int i;

	LLMDEV_REQUIRE(&self->cs);
	EXPECT_EQ(LLMDEV_PERF_NUM_COUNTERS, llmdev_rd32(c, LLMDEV_REG_PERF_NUM));
	EXPECT_EQ(0, llmdev_rd64(c, LLMDEV_REG_PERF_SNAP_TIME));

	/* move some counters: aperture traffic and an error */
	for (i = 0; i < 100; i++)
		*(volatile uint64_t *)(c->bar2 + 8 * i) = i;
	(void)*(volatile uint32_t *)(c->bar2 + 0x100);
	llmdev_wr32(c, LLMDEV_REG_FAULT_INJECT, LLMDEV_FAULT_RAISE_ERROR);

	for (i = 0; i < LLMDEV_PERF_NUM_COUNTERS; i++)
		live[i] = llmdev_perf(c, i);
	EXPECT_EQ(800, live[LLMDEV_PERF_APERTURE_WR_BYTES]);
	EXPECT_EQ(4, live[LLMDEV_PERF_APERTURE_RD_BYTES]);
	EXPECT_EQ(1, live[LLMDEV_PERF_ERRORS]);

	t0 = llmdev_rd64(c, LLMDEV_REG_TIMESTAMP);
	llmdev_wr32(c, LLMDEV_REG_PERF_CTRL, LLMDEV_PERF_CTRL_SNAPSHOT);
	t1 = llmdev_rd64(c, LLMDEV_REG_TIMESTAMP);
	st = llmdev_rd64(c, LLMDEV_REG_PERF_SNAP_TIME);
	EXPECT_LE(t0, st);
	EXPECT_GE(t1, st);
	/* SNAPSHOT is write-only */
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_PERF_CTRL));
	/* nothing moved between our reads and the latch */
	for (i = 0; i < LLMDEV_PERF_NUM_COUNTERS; i++)
		EXPECT_EQ(live[i], snap(c, i)) TH_LOG("%s", llmdev_perf_name(i));

	/* live moves on, the snapshot stays */
	for (i = 0; i < 10; i++)
		*(volatile uint32_t *)(c->bar2 + 4 * i) = i;
	llmdev_wr32(c, LLMDEV_REG_FAULT_INJECT, LLMDEV_FAULT_RAISE_ERROR);
	llmdev_sleep_ms(10);
	EXPECT_EQ(840, llmdev_perf(c, LLMDEV_PERF_APERTURE_WR_BYTES));
	EXPECT_EQ(2, llmdev_perf(c, LLMDEV_PERF_ERRORS));
	EXPECT_EQ(800, snap(c, LLMDEV_PERF_APERTURE_WR_BYTES));
	EXPECT_EQ(1, snap(c, LLMDEV_PERF_ERRORS));
	EXPECT_EQ(st, llmdev_rd64(c, LLMDEV_REG_PERF_SNAP_TIME));

	/* a second latch catches up, with a later time */
	llmdev_wr32(c, LLMDEV_REG_PERF_CTRL, LLMDEV_PERF_CTRL_SNAPSHOT);
	EXPECT_EQ(840, snap(c, LLMDEV_PERF_APERTURE_WR_BYTES));
	EXPECT_EQ(2, snap(c, LLMDEV_PERF_ERRORS));
	EXPECT_LT(st, llmdev_rd64(c, LLMDEV_REG_PERF_SNAP_TIME));

	/* the snapshot registers are read-only; unused slots read 0 */
	llmdev_wr64(c, LLMDEV_REG_PERF_SNAP, 12345);
	EXPECT_EQ(0, snap(c, LLMDEV_PERF_H2C_BYTES));
	EXPECT_EQ(0, snap(c, LLMDEV_PERF_NUM_COUNTERS));
	EXPECT_EQ(0, llmdev_perf(c, LLMDEV_PERF_NUM_COUNTERS));
}

TEST_F(perf, sensor_ranges)
{
	int i;

	LLMDEV_REQUIRE(&self->cs);
	for (i = 0; i < self->cs.n; i++) {
		struct llmdev_card *c = &self->cs.card[i];
		uint32_t t = llmdev_rd32(c, LLMDEV_REG_TEMP_MC);
		uint32_t p = llmdev_rd32(c, LLMDEV_REG_POWER_MW);

		TH_LOG("%s: %u.%03u C (crit %u), %u.%03u W (cap %u)", c->bdf,
		       t / 1000, t % 1000, llmdev_rd32(c, LLMDEV_REG_TEMP_CRIT_MC),
		       p / 1000, p % 1000, llmdev_rd32(c, LLMDEV_REG_POWER_CAP_MW));
		EXPECT_EQ(TEMP_CRIT_MC, llmdev_rd32(c, LLMDEV_REG_TEMP_CRIT_MC));
		EXPECT_EQ(POWER_CAP_MW, llmdev_rd32(c, LLMDEV_REG_POWER_CAP_MW));
		EXPECT_LE(TEMP_IDLE_MC, t);
		EXPECT_GE(TEMP_MAX_MC, t);
		EXPECT_LE(POWER_IDLE_MW, p);
		EXPECT_GE(POWER_MAX_MW, p);
	}
}

/* idle: readings do not rise, and sit at the idle value once settled */
TEST_F(perf, sensors_idle)
{
	struct llmdev_card *c = self->c;
	uint32_t t0, p0, t1, p1;

	LLMDEV_REQUIRE(&self->cs);
	t0 = llmdev_rd32(c, LLMDEV_REG_TEMP_MC);
	p0 = llmdev_rd32(c, LLMDEV_REG_POWER_MW);
	llmdev_sleep_ms(300);
	t1 = llmdev_rd32(c, LLMDEV_REG_TEMP_MC);
	p1 = llmdev_rd32(c, LLMDEV_REG_POWER_MW);
	TH_LOG("idle: %u -> %u mC, %u -> %u mW", t0, t1, p0, p1);
	EXPECT_GE(t0, t1);
	EXPECT_GE(p0, p1);
	if (t0 == TEMP_IDLE_MC)
		EXPECT_EQ(TEMP_IDLE_MC, t1);
	if (p0 == POWER_IDLE_MW)
		EXPECT_EQ(POWER_IDLE_MW, p1);
}

TEST_F_TIMEOUT(perf, sensors_rise_under_dma, 120)
{
	struct llmdev_card *c = self->c;
	uint64_t hbm_size = c->res[LLMDEV_BAR_HBM].size;
	uint64_t moved = 0, t_start, busy0, busy, vt0, vt;
	uint32_t temp0, pow0, temp1, pow1, n = 0;
	volatile struct llmdev_hw_sg *sg;
	char err[256];
	unsigned int r, i;

	LLMDEV_REQUIRE(&self->cs);
	ASSERT_EQ(0, llmdev_cfg_write16(c, PCI_COMMAND, self->cmd | PCI_COMMAND_MASTER));
	llmdev_wr32(c, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_ENABLE);
	ASSERT_EQ(0, llmdev_dmabuf_alloc(&self->buf, MIB, err, sizeof(err))) TH_LOG("%s", err);
	for (r = 0; r < 2; r++) {
		ASSERT_EQ(0, llmdev_uring_alloc(&self->ring[r], c, r, 64))
			TH_LOG("%s", self->ring[r].err);
		ASSERT_EQ(0, llmdev_uring_start(&self->ring[r])) TH_LOG("%s", self->ring[r].err);
		/* one SG table for the whole 1 MiB buffer, reused by every descriptor */
		sg = (volatile struct llmdev_hw_sg *)self->ring[r].sg.va;
		for (i = 0; i < MIB / LLMDEV_PAGE_SIZE; i++) {
			sg[i].addr = self->buf.pa[i];
			sg[i].length = LLMDEV_PAGE_SIZE;
			sg[i].reserved = 0;
		}
	}

	temp0 = llmdev_rd32(c, LLMDEV_REG_TEMP_MC);
	pow0 = llmdev_rd32(c, LLMDEV_REG_POWER_MW);
	busy0 = llmdev_perf(c, LLMDEV_PERF_DMA_BUSY_NS);
	vt0 = llmdev_rd64(c, LLMDEV_REG_TIMESTAMP);
	t_start = llmdev_now_ns();
	while (moved < SUSTAIN_BYTES && llmdev_now_ns() - t_start < SUSTAIN_NS) {
		const unsigned int batch = 32;

		for (r = 0; r < 2; r++) {
			struct llmdev_uring *u = &self->ring[r];

			for (i = 0; i < batch; i++, n++)
				llmdev_uring_post(u, u->sg.pa[0], (n * (uint64_t)MIB) %
						  (hbm_size - MIB), MIB, LLMDEV_DESC_F_SGL,
						  MIB / LLMDEV_PAGE_SIZE, n);
			llmdev_uring_doorbell(u);
		}
		for (r = 0; r < 2; r++)
			for (i = 0; i < batch; i++) {
				struct llmdev_hw_cmpl cp;

				ASSERT_EQ(0, llmdev_uring_wait(&self->ring[r], &cp, WAIT_MS))
					TH_LOG("%s", self->ring[r].err);
				ASSERT_EQ(0, cp.status);
				moved += MIB;
			}
	}
	temp1 = llmdev_rd32(c, LLMDEV_REG_TEMP_MC);
	pow1 = llmdev_rd32(c, LLMDEV_REG_POWER_MW);
	busy = llmdev_perf(c, LLMDEV_PERF_DMA_BUSY_NS) - busy0;
	vt = llmdev_rd64(c, LLMDEV_REG_TIMESTAMP) - vt0;
	TH_LOG("%" PRIu64 " MiB in %" PRIu64 " ms (virtual %" PRIu64 " ms), busy %" PRIu64
	       " ms (%.1f%%): %u -> %u mC, %u -> %u mW",
	       moved / MIB, (llmdev_now_ns() - t_start) / 1000000, vt / 1000000,
	       busy / 1000000, vt ? 100.0 * busy / vt : 0.0, temp0, temp1, pow0, pow1);
	EXPECT_EQ(moved, llmdev_perf(c, LLMDEV_PERF_H2C_BYTES));
	EXPECT_LE(SUSTAIN_MIN, moved);
	EXPECT_LT(0, busy);
	EXPECT_LE(temp0 + RISE_MC, temp1);
	EXPECT_LE(pow0 + RISE_MW, pow1);
	EXPECT_GE(TEMP_MAX_MC, temp1);
	EXPECT_GE(TEMP_CRIT_MC, temp1);
	EXPECT_GE(POWER_CAP_MW, pow1);
}

/* ---- measurements ------------------------------------------------------ */

#define CEIL_DESC	64		/* x 1 MiB, one doorbell */
#define CEIL_RUNS	3
#define LAT_OPS		2000
#define LAT_WARMUP	200

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* sorts v; the q-quantile (0..1) */
static uint64_t quantile(uint64_t *v, size_t n, double q)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[(size_t)(q * (n - 1) + 0.5)];
}

/* a ring of r->size entries whose first SG table maps all of buf */
static void sg_whole_buf(struct llmdev_uring *u, struct llmdev_dmabuf *b)
{
	volatile struct llmdev_hw_sg *sg = (volatile struct llmdev_hw_sg *)u->sg.va;
	size_t i;

	for (i = 0; i < b->npages; i++) {
		sg[i].addr = b->pa[i];
		sg[i].length = LLMDEV_PAGE_SIZE;
		sg[i].reserved = 0;
	}
}

/*
 * bytes / DMA_BUSY_NS of 64 MiB at once (64 descriptors of 1 MiB on one
 * ring, one doorbell), host to card then card to host; three runs each.
 * The 1 MiB host buffer is copied to every MiB of HBM, and back: the
 * buffer must come back as it went.
 */
TEST_F_TIMEOUT(perf, dma_ceiling, 180)
{
	struct llmdev_card *c = self->c;
	uint64_t gbps[2][CEIL_RUNS], wall[2][CEIL_RUNS];
	uint64_t seed = llmdev_seed(0x4345494cull);
	uint8_t *orig = malloc(MIB);
	char err[256];
	unsigned int d, run, i;

	LLMDEV_REQUIRE(&self->cs);
	ASSERT_NE(NULL, orig);
	if (c->res[LLMDEV_BAR_HBM].size < CEIL_DESC * MIB)
		SKIP(return, "needs %u MiB of HBM", CEIL_DESC);
	ASSERT_EQ(0, llmdev_cfg_write16(c, PCI_COMMAND, self->cmd | PCI_COMMAND_MASTER));
	llmdev_wr32(c, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_ENABLE);
	ASSERT_EQ(0, llmdev_dmabuf_alloc(&self->buf, MIB, err, sizeof(err))) TH_LOG("%s", err);
	llmdev_fill_random(self->buf.va, MIB, &seed);
	memcpy(orig, self->buf.va, MIB);
	for (d = 0; d < 2; d++) {
		/* ring 0 host to card, ring 2 card to host */
		struct llmdev_uring *u = &self->ring[d];

		ASSERT_EQ(0, llmdev_uring_alloc(u, c, 2 * d, CEIL_DESC)) TH_LOG("%s", u->err);
		ASSERT_EQ(0, llmdev_uring_start(u)) TH_LOG("%s", u->err);
		sg_whole_buf(u, &self->buf);
		for (run = 0; run < CEIL_RUNS; run++) {
			uint64_t busy0, busy, t0;

			/* what comes back must be the card's, not what was there */
			if (d)
				memset(self->buf.va, 0, MIB);
			busy0 = llmdev_perf(c, LLMDEV_PERF_DMA_BUSY_NS);
			t0 = llmdev_now_ns();
			for (i = 0; i < CEIL_DESC; i++)
				llmdev_uring_post(u, u->sg.pa[0], (uint64_t)i * MIB, MIB,
						  LLMDEV_DESC_F_SGL, MIB / LLMDEV_PAGE_SIZE, i);
			llmdev_uring_doorbell(u);
			for (i = 0; i < CEIL_DESC; i++)
				ASSERT_EQ(0, llmdev_uring_wait_ok(u, WAIT_MS)) TH_LOG("%s", u->err);
			wall[d][run] = llmdev_now_ns() - t0;
			busy = llmdev_perf(c, LLMDEV_PERF_DMA_BUSY_NS) - busy0;
			ASSERT_LT(0, busy);
			/* 10^9 bytes/s, x 100 */
			gbps[d][run] = CEIL_DESC * MIB * 100ull / busy;
			if (d)
				EXPECT_EQ(-1, llmdev_memdiff(orig, self->buf.va, MIB))
					TH_LOG("run %u: the buffer did not come back from HBM as it went",
					       run);
		}
	}
	for (d = 0; d < 2; d++) {
		uint64_t g[CEIL_RUNS], w[CEIL_RUNS];

		memcpy(g, gbps[d], sizeof(g));
		memcpy(w, wall[d], sizeof(w));
		TH_LOG("ceiling %s, %u MiB at once on one ring: bytes/DMA_BUSY_NS "
		       "median %" PRIu64 ".%02" PRIu64 " GB/s (runs %" PRIu64 ".%02"
		       PRIu64 ", %" PRIu64 ".%02" PRIu64 ", %" PRIu64 ".%02" PRIu64
		       "), wall median %" PRIu64 " us", d ? "card-to-host" : "host-to-card",
		       CEIL_DESC, quantile(g, CEIL_RUNS, 0.5) / 100,
		       quantile(g, CEIL_RUNS, 0.5) % 100,
		       gbps[d][0] / 100, gbps[d][0] % 100, gbps[d][1] / 100,
		       gbps[d][1] % 100, gbps[d][2] / 100, gbps[d][2] % 100,
		       quantile(w, CEIL_RUNS, 0.5) / 1000);
	}
	free(orig);
}

/* the next completion by spinning on its phase bit, bounded */
static int spin_completion(struct llmdev_uring *u, uint64_t timeout_ns)
{
	volatile struct llmdev_hw_cmpl *e = (volatile struct llmdev_hw_cmpl *)
		(u->cmpl.va + (u->seen % u->size) * LLMDEV_CMPL_SIZE);
	uint16_t want = llmdev_uring_phase(u, u->seen);
	uint64_t deadline = 0;
	unsigned int spins = 0;

	while ((e->flags & LLMDEV_CMPL_F_PHASE) != want) {
		/* the clock is an MMIO read here (HPET): look at it rarely */
		if (++spins % 4096 == 0) {
			if (!deadline)
				deadline = llmdev_now_ns() + timeout_ns;
			else if (llmdev_now_ns() > deadline)
				return -ETIMEDOUT;
		}
	}
	__sync_synchronize();
	if (e->status || e->desc_index != u->seen)
		return -EIO;
	u->seen++;
	return 0;
}

/*
 * One 4 KiB transfer at a time, its completion polled: the wall time from
 * before the descriptor is written to after its completion is seen, median
 * and p99 of LAT_OPS after LAT_WARMUP, each way. The page's contents change
 * every time and are checked now and then (outside the timed part).
 */
TEST_F_TIMEOUT(perf, dma_latency_polled, 180)
{
	static uint64_t lat[LAT_OPS], clk[LAT_OPS];
	struct llmdev_card *c = self->c;
	const uint64_t hbm = 0x200000;
	uint64_t seed = llmdev_seed(0x4c4154ull);
	char err[256];
	unsigned int d, i;

	LLMDEV_REQUIRE(&self->cs);
	ASSERT_EQ(0, llmdev_cfg_write16(c, PCI_COMMAND, self->cmd | PCI_COMMAND_MASTER));
	llmdev_wr32(c, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_ENABLE);
	ASSERT_EQ(0, llmdev_dmabuf_alloc(&self->buf, LLMDEV_PAGE_SIZE, err, sizeof(err)))
		TH_LOG("%s", err);
	/* what two clock reads cost, to read the figures with */
	for (i = 0; i < LAT_OPS; i++) {
		uint64_t t0 = llmdev_now_ns();

		clk[i] = llmdev_now_ns() - t0;
	}
	for (d = 0; d < 2; d++) {
		struct llmdev_uring *u = &self->ring[d];
		volatile uint64_t *w = (volatile uint64_t *)self->buf.va;

		ASSERT_EQ(0, llmdev_uring_alloc(u, c, 2 * d, 64)) TH_LOG("%s", u->err);
		ASSERT_EQ(0, llmdev_uring_start(u)) TH_LOG("%s", u->err);
		llmdev_fill_random(self->buf.va, LLMDEV_PAGE_SIZE, &seed);
		for (i = 0; i < LAT_WARMUP + LAT_OPS; i++) {
			uint64_t v = llmdev_rand(&seed), t0, t1;
			unsigned int k = i % (LLMDEV_PAGE_SIZE / 8);

			if (d == 0)
				w[k] = v;	/* what goes to HBM */
			else
				*(volatile uint64_t *)(c->bar2 + hbm + 8 * k) = v;
			t0 = llmdev_now_ns();
			llmdev_uring_post(u, self->buf.pa[0], hbm, LLMDEV_PAGE_SIZE, 0, 0, i);
			llmdev_uring_doorbell(u);
			ASSERT_EQ(0, spin_completion(u, 10000000000ull))
				TH_LOG("%s op %u: no good completion", d ? "C2H" : "H2C", i);
			t1 = llmdev_now_ns();
			if (i >= LAT_WARMUP)
				lat[i - LAT_WARMUP] = t1 - t0;
			if (d == 0) {
				ASSERT_EQ(v, *(volatile uint64_t *)(c->bar2 + hbm + 8 * k))
					TH_LOG("H2C op %u: HBM word %u", i, k);
			} else {
				ASSERT_EQ(v, w[k]) TH_LOG("C2H op %u: host word %u", i, k);
			}
		}
		TH_LOG("%s 4 KiB, polled, one at a time: median %.1f us, p99 %.1f us "
		       "(%u ops; two clock reads cost %.1f us median)",
		       d ? "card-to-host" : "host-to-card",
		       quantile(lat, LAT_OPS, 0.5) / 1e3, quantile(lat, LAT_OPS, 0.99) / 1e3,
		       LAT_OPS, quantile(clk, LAT_OPS, 0.5) / 1e3);
	}
}

LLMDEV_HARNESS_MAIN
