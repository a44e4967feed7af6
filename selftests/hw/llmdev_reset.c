// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev soft reset (CONTROL.RESET) and function-level reset: dirty every
 * writable register (and the error log, perf counters, snapshot, scrub
 * status, a stalled ring with a descriptor pending), reset, and check every
 * register of model-semantics "Reset values" is back, RESET_COUNT grew by
 * one, the pending descriptor was dropped, and HBM kept its contents.
 *
 * Interrupts: IRQ_MASK is set to a value that unmasks only ring 0, whose
 * source is never raised here, and INTx is disabled in PCI_COMMAND while the
 * mask is not all ones.
 *
 * Resets under load (fixture "load", soft reset and FLR): all four rings
 * move large SG transfers at once and the reset lands at a random moment
 * of it, 50 times. After each reset no byte of guest memory the aborted
 * transfers targeted may change any more (C2H buffers, completion rings:
 * a checksum right after the reset and again later), nor the HBM the H2C
 * rings were writing, and the registers are back at their reset values.
 * Afterwards a full round trip on every ring must move the right data.
 *
 * AER (fixture "aer"): errors injected with QEMU's pcie_aer_inject_error
 * (through hostctl, the runner's monitor): a correctable error and a
 * non-fatal uncorrectable one are recorded in the card's AER capability
 * and leave the card as it was; a fatal one is recovered by the guest's AER
 * driver with a link reset of the card's root port, which resets the card.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/pci_regs.h>

#include "kselftest_harness.h"
#include "llmdev_test.h"

#define HBM_PROBE	0x200000	/* where we check HBM survives */
#define HBM_PROBE_LEN	(64 * 1024)
#define HBM_SCRUB	0x300000	/* scrubbed before the reset */
#define HBM_DMA		0x400000	/* target of the aborted descriptor */

FIXTURE(rst) {
	struct llmdev_cards cs;
	struct llmdev_card *c;
	struct llmdev_uring ring;
	struct llmdev_dmabuf buf;
	uint16_t cmd;
	uint8_t *pat;
	uint64_t seed;
};

FIXTURE_SETUP(rst)
{
	char err[256];

	LLMDEV_CARDS_SETUP(&self->cs);
	self->c = &self->cs.card[0];
	self->cmd = llmdev_cfg_read16(self->c, PCI_COMMAND);
	LLMDEV_RESET(self->c);
	ASSERT_EQ(0, llmdev_uring_alloc(&self->ring, self->c, 0, 8))
		TH_LOG("%s", self->ring.err);
	ASSERT_EQ(0, llmdev_dmabuf_alloc(&self->buf, 4096, err, sizeof(err)))
		TH_LOG("%s", err);
	self->pat = malloc(HBM_PROBE_LEN);
	ASSERT_NE(NULL, self->pat);
	self->seed = llmdev_seed(0x5245534554ull);
}

FIXTURE_TEARDOWN(rst)
{
	if (self->c) {
		llmdev_soft_reset(self->c);
		llmdev_cfg_write16(self->c, PCI_COMMAND, self->cmd);
	}
	llmdev_uring_free(&self->ring);
	llmdev_dmabuf_free(&self->buf);
	free(self->pat);
	llmdev_cards_close(&self->cs);
}

/* Put a value in everything that has a reset value. */
static void dirty(struct __test_metadata *_metadata, FIXTURE_DATA(rst) *self)
{
	struct llmdev_card *c = self->c;
	unsigned int r;
	int t;

	/* HBM data that must survive */
	llmdev_fill_random(self->pat, HBM_PROBE_LEN, &self->seed);
	llmdev_ap_write(c, HBM_PROBE, self->pat, HBM_PROBE_LEN);
	llmdev_ap_write(c, HBM_DMA, self->pat, 4096);

	/* a finished scrub: SCRUB_STATUS.DONE, SCRUB_BYTES, IRQ_STATUS.EVENT */
	llmdev_wr64(c, LLMDEV_REG_SCRUB_ADDR, HBM_SCRUB);
	llmdev_wr64(c, LLMDEV_REG_SCRUB_LEN, 4096);
	llmdev_wr32(c, LLMDEV_REG_SCRUB_PATTERN, 0x5c5c5c5c);
	llmdev_wr32(c, LLMDEV_REG_SCRUB_CTRL, LLMDEV_SCRUB_CTRL_START);
	for (t = 0; t < 1000; t++) {
		if (llmdev_rd32(c, LLMDEV_REG_SCRUB_STATUS) & LLMDEV_SCRUB_STATUS_DONE)
			break;
		llmdev_sleep_ms(1);
	}
	EXPECT_EQ(LLMDEV_SCRUB_STATUS_DONE, llmdev_rd32(c, LLMDEV_REG_SCRUB_STATUS));
	/* different values in the scrub registers, no START */
	llmdev_wr64(c, LLMDEV_REG_SCRUB_ADDR, 0x123000);
	llmdev_wr64(c, LLMDEV_REG_SCRUB_LEN, 0x5000);
	llmdev_wr32(c, LLMDEV_REG_SCRUB_PATTERN, 0xabcdef01);

	/* an error: ERR_STATUS, ERR_COUNT, log, IRQ_STATUS.ERROR (masked) */
	llmdev_wr32(c, LLMDEV_REG_FAULT_INJECT, LLMDEV_FAULT_RAISE_ERROR);
	EXPECT_EQ(1, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));

	llmdev_wr32(c, LLMDEV_REG_SCRATCH, 0xdeadbeef);
	llmdev_wr32(c, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_ENABLE);
	EXPECT_NE(0, llmdev_rd32(c, LLMDEV_REG_STATUS) & LLMDEV_STATUS_ENABLED);

	/* every ring: stall it and give it a configuration */
	llmdev_wr32(c, LLMDEV_REG_FAULT_INJECT, LLMDEV_FAULT_FAIL_NEXT_DESC |
		    LLMDEV_FAULT_STALL_RING(0) | LLMDEV_FAULT_STALL_RING(1) |
		    LLMDEV_FAULT_STALL_RING(2) | LLMDEV_FAULT_STALL_RING(3));
	for (r = 1; r < LLMDEV_NUM_RINGS; r++) {
		llmdev_wr64(c, LLMDEV_RING_BASE(r) + LLMDEV_RING_DESC_BASE, 0x100000 * r);
		llmdev_wr64(c, LLMDEV_RING_BASE(r) + LLMDEV_RING_CMPL_BASE, 0x100040 * r);
		llmdev_ring_wr(c, r, LLMDEV_RING_SIZE, 16);
		llmdev_ring_wr(c, r, LLMDEV_RING_IRQ_COALESCE, 0x00100004);
	}
	/* ring 0 really enabled, with a descriptor waiting behind the stall */
	llmdev_ring_wr(c, 0, LLMDEV_RING_IRQ_COALESCE, 0x00200008);
	ASSERT_EQ(0, llmdev_uring_start(&self->ring)) TH_LOG("%s", self->ring.err);
	memset(self->buf.va, 0xee, 4096);
	llmdev_uring_post(&self->ring, self->buf.pa[0], HBM_DMA, 4096, 0, 0, 1);
	llmdev_uring_doorbell(&self->ring);
	llmdev_sleep_ms(50);
	EXPECT_EQ(0, llmdev_ring_rd(c, 0, LLMDEV_RING_HEAD));
	EXPECT_EQ(1, llmdev_ring_rd(c, 0, LLMDEV_RING_TAIL));
	EXPECT_NE(0, llmdev_ring_rd(c, 0, LLMDEV_RING_STATUS) & LLMDEV_RING_STATUS_STALLED);

	/* perf: live counters are non-zero by now; latch them */
	llmdev_wr32(c, LLMDEV_REG_PERF_CTRL, LLMDEV_PERF_CTRL_SNAPSHOT);
	EXPECT_NE(0, llmdev_rd64(c, LLMDEV_REG_PERF_SNAP + 8 * LLMDEV_PERF_APERTURE_WR_BYTES));
	EXPECT_NE(0, llmdev_rd64(c, LLMDEV_REG_PERF_SNAP_TIME));

	/* unmask ring 0 only (never raised here), with INTx off meanwhile */
	ASSERT_EQ(0, llmdev_cfg_write16(c, PCI_COMMAND,
					self->cmd | PCI_COMMAND_INTX_DISABLE));
	llmdev_wr32(c, LLMDEV_REG_IRQ_MASK, ~LLMDEV_IRQ_RING(0));
	EXPECT_EQ(~LLMDEV_IRQ_RING(0), llmdev_rd32(c, LLMDEV_REG_IRQ_MASK));
	EXPECT_NE(0, llmdev_rd32(c, LLMDEV_REG_IRQ_STATUS));
}

static void check_reset_values(struct __test_metadata *_metadata,
			       struct llmdev_card *c)
{
	unsigned int r, i;

	EXPECT_EQ(LLMDEV_ID_MAGIC, llmdev_rd32(c, LLMDEV_REG_ID));
	EXPECT_EQ(LLMDEV_SPEC_MAJOR << 16 | LLMDEV_SPEC_MINOR,
		  llmdev_rd32(c, LLMDEV_REG_VERSION));
	EXPECT_EQ(2u | 2u << 4 | 4u << 8 | LLMDEV_CAPS_SCRUB | LLMDEV_CAPS_FAULT_INJECT |
		  LLMDEV_CAPS_DESC_VEC, llmdev_rd32(c, LLMDEV_REG_CAPS));
	EXPECT_EQ(LLMDEV_STATUS_READY, llmdev_rd32(c, LLMDEV_REG_STATUS));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_CONTROL));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_SCRATCH));
	EXPECT_EQ(LLMDEV_NUM_VECTORS, llmdev_rd32(c, LLMDEV_REG_NUM_VECTORS));
	EXPECT_EQ(c->res[LLMDEV_BAR_HBM].size, llmdev_rd64(c, LLMDEV_REG_HBM_SIZE));

	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_IRQ_STATUS));
	EXPECT_EQ(0xffffffffu, llmdev_rd32(c, LLMDEV_REG_IRQ_MASK));

	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_STATUS));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_LOG_HEAD));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_FAULT_INJECT));
	for (i = 0; i < LLMDEV_ERR_LOG_ENTRIES * LLMDEV_ERR_LOG_STRIDE; i += 4)
		EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_LOG + i))
			TH_LOG("error log +%#x", i);

	EXPECT_EQ(0, llmdev_rd64(c, LLMDEV_REG_SCRUB_ADDR));
	EXPECT_EQ(0, llmdev_rd64(c, LLMDEV_REG_SCRUB_LEN));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_SCRUB_PATTERN));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_SCRUB_CTRL));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_SCRUB_STATUS));

	for (r = 0; r < LLMDEV_NUM_RINGS; r++) {
		uint32_t off;

		for (off = 0; off <= LLMDEV_RING_ERR_CODE; off += 4) {
			uint32_t want = off == LLMDEV_RING_DIR &&
				r >= LLMDEV_NUM_H2C_RINGS ? LLMDEV_DIR_C2H : 0;

			EXPECT_EQ(want, llmdev_ring_rd(c, r, off))
				TH_LOG("ring %u register %#x", r, off);
		}
	}

	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_PERF_CTRL));
	EXPECT_EQ(LLMDEV_PERF_NUM_COUNTERS, llmdev_rd32(c, LLMDEV_REG_PERF_NUM));
	EXPECT_EQ(0, llmdev_rd64(c, LLMDEV_REG_PERF_SNAP_TIME));
	for (i = 0; i < LLMDEV_PERF_NUM_COUNTERS; i++) {
		EXPECT_EQ(0, llmdev_perf(c, i)) TH_LOG("live %s", llmdev_perf_name(i));
		EXPECT_EQ(0, llmdev_rd64(c, LLMDEV_REG_PERF_SNAP + 8 * i))
			TH_LOG("snapshot %s", llmdev_perf_name(i));
	}
}

/* HBM kept its data, and the dropped descriptor never ran */
static void check_hbm(struct __test_metadata *_metadata, FIXTURE_DATA(rst) *self)
{
	struct llmdev_card *c = self->c;
	uint8_t *got = malloc(HBM_PROBE_LEN);
	uint32_t w;
	long d;

	ASSERT_NE(NULL, got);
	llmdev_ap_read(c, HBM_PROBE, got, HBM_PROBE_LEN);
	d = llmdev_memdiff(self->pat, got, HBM_PROBE_LEN);
	EXPECT_EQ(-1, d) TH_LOG("HBM %#x + %ld changed by the reset", HBM_PROBE, d);
	llmdev_ap_read(c, HBM_DMA, got, 4096);
	d = llmdev_memdiff(self->pat, got, 4096);
	EXPECT_EQ(-1, d) TH_LOG("aborted descriptor wrote HBM %#x + %ld", HBM_DMA, d);
	w = *(volatile uint32_t *)(c->bar2 + HBM_SCRUB + 4092);
	EXPECT_EQ(0x5c5c5c5cu, w);
	free(got);

	/* no completion appeared for the aborted descriptor */
	llmdev_sleep_ms(50);
	for (w = 0; w < 16 * 8; w++)
		EXPECT_EQ(0, self->ring.cmpl.va[w]);
}

TEST_F(rst, soft_reset)
{
	struct llmdev_card *c = self->c;
	uint32_t count;

	LLMDEV_REQUIRE(&self->cs);
	dirty(_metadata, self);
	count = llmdev_rd32(c, LLMDEV_REG_RESET_COUNT);
	/* other bits of the reset write are ignored */
	llmdev_wr32(c, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_RESET | LLMDEV_CONTROL_ENABLE);
	/* done before the write returns: no wait here */
	EXPECT_EQ(count + 1, llmdev_rd32(c, LLMDEV_REG_RESET_COUNT));
	check_reset_values(_metadata, c);
	ASSERT_EQ(0, llmdev_cfg_write16(c, PCI_COMMAND, self->cmd));
	check_hbm(_metadata, self);
	/* and it still works */
	EXPECT_EQ(0, llmdev_uring_start(&self->ring)) TH_LOG("%s", self->ring.err);
}

TEST_F(rst, reset_twice)
{
	struct llmdev_card *c = self->c;
	uint32_t count;

	LLMDEV_REQUIRE(&self->cs);
	count = llmdev_rd32(c, LLMDEV_REG_RESET_COUNT);
	llmdev_wr32(c, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_RESET);
	llmdev_wr32(c, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_RESET);
	EXPECT_EQ(count + 2, llmdev_rd32(c, LLMDEV_REG_RESET_COUNT));
	check_reset_values(_metadata, c);
}

/* FLR through sysfs (reset_method flr): the same as a soft reset */
TEST_F(rst, flr)
{
	struct llmdev_card *c = self->c;
	char path[256], methods[128] = "";
	uint32_t count;
	ssize_t n;
	int fd;

	LLMDEV_REQUIRE(&self->cs);
	snprintf(path, sizeof(path), "%s/reset_method", c->path);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		n = read(fd, methods, sizeof(methods) - 1);
		methods[n > 0 ? n : 0] = 0;
		close(fd);
	}
	if (!strstr(methods, "flr"))
		SKIP(return, "%s: reset_method is '%s', no flr", c->bdf, methods);
	/* reset only by FLR, not by a bus reset that takes other devices */
	fd = open(path, O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(3, write(fd, "flr", 3));
	close(fd);

	dirty(_metadata, self);
	count = llmdev_rd32(c, LLMDEV_REG_RESET_COUNT);
	snprintf(path, sizeof(path), "%s/reset", c->path);
	fd = open(path, O_WRONLY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(1, write(fd, "1", 1));
	close(fd);
	/* the kernel restored config space (BARs, command) after the FLR */
	EXPECT_EQ(count + 1, llmdev_rd32(c, LLMDEV_REG_RESET_COUNT));
	check_reset_values(_metadata, c);
	ASSERT_EQ(0, llmdev_cfg_write16(c, PCI_COMMAND, self->cmd));
	check_hbm(_metadata, self);

	snprintf(path, sizeof(path), "%s/reset_method", c->path);
	fd = open(path, O_WRONLY);
	if (fd >= 0) {
		/* back to the default list */
		if (write(fd, "default", 7) != 7)
			TH_LOG("could not restore reset_method");
		close(fd);
	}
}

/* ---- resets under load ---------------------------------------------------- */

#define LOAD_ROUNDS	50
#define LOAD_BYTES	(8u << 20)	/* per ring per round: 8 SGL descriptors */
#define LOAD_RING	16		/* descriptors per ring */
#define LOAD_HBM(r)	(0x1000000ull + (uint64_t)(r) * 0x1000000)	/* 16 MiB apart */
#define QUIET_MS	30		/* how long nothing may change after a reset */
#define WAIT_MS		10000

FIXTURE(load) {
	struct llmdev_cards cs;
	struct llmdev_card *c;
	struct llmdev_uring ring[LLMDEV_NUM_RINGS];
	struct llmdev_dmabuf buf[LLMDEV_NUM_RINGS];
	uint16_t cmd;
	uint64_t seed;
};

FIXTURE_VARIANT(load) {
	bool flr;
};

FIXTURE_VARIANT_ADD(load, soft_reset) {
	.flr = false,
};

FIXTURE_VARIANT_ADD(load, flr) {
	.flr = true,
};

FIXTURE_SETUP(load)
{
	char err[256];
	unsigned int r;

	LLMDEV_CARDS_SETUP(&self->cs);
	self->c = &self->cs.card[0];
	self->cmd = llmdev_cfg_read16(self->c, PCI_COMMAND);
	if (self->c->res[LLMDEV_BAR_HBM].size < LOAD_HBM(LLMDEV_NUM_RINGS))
		SKIP(return, "needs %llu MiB of HBM", LOAD_HBM(LLMDEV_NUM_RINGS) >> 20);
	if (variant->flr && !llmdev_card_has_flr(self->c))
		SKIP(return, "%s: no flr in reset_method", self->c->bdf);
	for (r = 0; r < LLMDEV_NUM_RINGS; r++) {
		ASSERT_EQ(0, llmdev_uring_alloc(&self->ring[r], self->c, r, LOAD_RING))
			TH_LOG("%s", self->ring[r].err);
		ASSERT_EQ(0, llmdev_dmabuf_alloc(&self->buf[r], LOAD_BYTES, err,
						 sizeof(err)))
			TH_LOG("%s", err);
	}
	self->seed = llmdev_seed(0x4c4f4144ull);
}

FIXTURE_TEARDOWN(load)
{
	unsigned int r;

	if (self->c) {
		llmdev_soft_reset(self->c);
		llmdev_cfg_write16(self->c, PCI_COMMAND, self->cmd);
	}
	for (r = 0; r < LLMDEV_NUM_RINGS; r++) {
		llmdev_uring_free(&self->ring[r]);
		llmdev_dmabuf_free(&self->buf[r]);
	}
	llmdev_cards_close(&self->cs);
}

/* FNV-1a over 64-bit words */
static uint64_t hash(const volatile void *p, size_t len)
{
	const volatile uint64_t *w = p;
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < len / 8; i++)
		h = (h ^ w[i]) * 0x100000001b3ull;
	return h;
}

/* what DMA may write: C2H buffers, every completion ring; and sampled HBM */
static uint64_t dma_targets_hash(FIXTURE_DATA(load) *self)
{
	struct llmdev_card *c = self->c;
	uint64_t h = 0, off;
	unsigned int r;

	for (r = 0; r < LLMDEV_NUM_RINGS; r++) {
		h ^= hash(self->ring[r].cmpl.va, self->ring[r].cmpl.len) * (2 * r + 1);
		if (r >= LLMDEV_NUM_H2C_RINGS)
			h ^= hash(self->buf[r].va, LOAD_BYTES) * (2 * r + 3);
		else
			for (off = 0; off < LOAD_BYTES; off += 16 * 1024 + 8)
				h = (h ^ *(volatile uint64_t *)(c->bar2 + LOAD_HBM(r) + off)) *
				    0x100000001b3ull;
	}
	return h;
}

/* every ring enabled with LOAD_BYTES posted: H2C from buf, C2H into buf */
static void load_start(struct __test_metadata *_metadata, FIXTURE_DATA(load) *self)
{
	struct llmdev_card *c = self->c;
	unsigned int r;

	ASSERT_EQ(0, llmdev_soft_reset(c)) TH_LOG("%s", c->err);
	ASSERT_EQ(0, llmdev_cfg_write16(c, PCI_COMMAND, self->cmd | PCI_COMMAND_MASTER));
	llmdev_wr32(c, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_ENABLE);
	for (r = 0; r < LLMDEV_NUM_RINGS; r++) {
		struct llmdev_uring *u = &self->ring[r];

		ASSERT_EQ(0, llmdev_uring_start(u)) TH_LOG("%s", u->err);
		u->sg_next = 0;
		if (r >= LLMDEV_NUM_H2C_RINGS)
			memset(self->buf[r].va, 0xa5, LOAD_BYTES);
		ASSERT_LT(0, llmdev_uring_post_buf(u, &self->buf[r], 0, LOAD_BYTES,
						   LOAD_HBM(r), LOAD_RING))
			TH_LOG("%s", u->err);
	}
	for (r = 0; r < LLMDEV_NUM_RINGS; r++)
		llmdev_uring_doorbell(&self->ring[r]);
}

static void load_reset(struct __test_metadata *_metadata, FIXTURE_DATA(load) *self,
		       const FIXTURE_VARIANT(load) *variant)
{
	struct llmdev_card *c = self->c;

	if (variant->flr) {
		ASSERT_EQ(0, llmdev_card_flr(c)) TH_LOG("%s", c->err);
	} else {
		ASSERT_EQ(0, llmdev_soft_reset(c)) TH_LOG("%s", c->err);
	}
}

TEST_F_TIMEOUT(load, reset_mid_dma, 600)
{
	struct llmdev_card *c = self->c;
	uint64_t t0, full_us, hbm_seed;
	unsigned int round, r, caught = 0;
	uint32_t cmpl_seen = 0;

	LLMDEV_REQUIRE(&self->cs);
	/* HBM the C2H rings read: known data */
	for (r = 0; r < LLMDEV_NUM_RINGS; r++)
		llmdev_fill_random(self->buf[r].va, LOAD_BYTES, &self->seed);
	hbm_seed = self->seed;
	/* two rounds without a reset: how long the load takes once HBM is warm */
	for (round = 0; round < 2; round++) {
		load_start(_metadata, self);
		t0 = llmdev_now_ns();
		for (r = 0; r < LLMDEV_NUM_RINGS; r++)
			while (self->ring[r].seen != self->ring[r].tail)
				ASSERT_EQ(0, llmdev_uring_wait_ok(&self->ring[r], WAIT_MS))
					TH_LOG("%s", self->ring[r].err);
		full_us = (llmdev_now_ns() - t0) / 1000 + 1;
	}
	TH_LOG("%u MiB on each of %u rings at once: %" PRIu64 " us undisturbed",
	       LOAD_BYTES >> 20, LLMDEV_NUM_RINGS, full_us);

	for (round = 0; round < LOAD_ROUNDS; round++) {
		/* the reset lands when a random ring has done a random part */
		unsigned int victim = llmdev_rand(&self->seed) % LLMDEV_NUM_RINGS;
		uint32_t target = llmdev_rand(&self->seed) % (LOAD_BYTES >> 20);
		uint64_t before, after, end;
		bool busy = false;

		llmdev_fill_random(self->buf[0].va, 4096, &self->seed);
		load_start(_metadata, self);
		end = llmdev_now_ns() + WAIT_MS * 1000000ull;
		while (llmdev_ring_rd(c, victim, LLMDEV_RING_HEAD) < target &&
		       llmdev_now_ns() < end)
			;
		for (r = 0; r < LLMDEV_NUM_RINGS; r++) {
			uint32_t head = llmdev_ring_rd(c, r, LLMDEV_RING_HEAD);

			busy |= head != self->ring[r].tail;
			cmpl_seen += head;
		}
		load_reset(_metadata, self, variant);
		caught += busy;
		/* nothing the aborted transfers target changes after the reset */
		before = dma_targets_hash(self);
		llmdev_sleep_ms(QUIET_MS);
		after = dma_targets_hash(self);
		ASSERT_EQ(before, after)
			TH_LOG("round %u: guest memory or HBM changed after the reset", round);
		for (r = 0; r < LLMDEV_NUM_RINGS; r++) {
			EXPECT_EQ(0, llmdev_ring_rd(c, r, LLMDEV_RING_HEAD));
			EXPECT_EQ(0, llmdev_ring_rd(c, r, LLMDEV_RING_STATUS));
		}
		EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_IRQ_STATUS));
		EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
		if (variant->flr)	/* the kernel restored config space */
			EXPECT_NE(0, llmdev_cfg_read16(c, PCI_COMMAND) & PCI_COMMAND_MEMORY);
	}
	TH_LOG("%u of %u resets hit the rings with transfers pending "
	       "(%u of %u descriptors had completed before them)", caught, LOAD_ROUNDS,
	       cmpl_seen, LOAD_ROUNDS * LLMDEV_NUM_RINGS * (LOAD_BYTES >> 20));
	EXPECT_LE(LOAD_ROUNDS / 2, caught);

	/* and the card moves data right: every ring, the whole buffer */
	self->seed = hbm_seed;
	ASSERT_EQ(0, llmdev_soft_reset(c));
	ASSERT_EQ(0, llmdev_cfg_write16(c, PCI_COMMAND, self->cmd | PCI_COMMAND_MASTER));
	llmdev_wr32(c, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_ENABLE);
	for (r = 0; r < LLMDEV_NUM_RINGS; r++)
		ASSERT_EQ(0, llmdev_uring_start(&self->ring[r])) TH_LOG("%s", self->ring[r].err);
	for (r = 0; r < LLMDEV_NUM_H2C_RINGS; r++) {
		llmdev_fill_random(self->buf[r].va, LOAD_BYTES, &self->seed);
		ASSERT_LT(0, llmdev_uring_xfer(&self->ring[r], &self->buf[r], 0, LOAD_BYTES,
					       LOAD_HBM(r + LLMDEV_NUM_H2C_RINGS)))
			TH_LOG("%s", self->ring[r].err);
	}
	for (r = LLMDEV_NUM_H2C_RINGS; r < LLMDEV_NUM_RINGS; r++) {
		struct llmdev_dmabuf *src = &self->buf[r - LLMDEV_NUM_H2C_RINGS];
		long d;

		memset(self->buf[r].va, 0x5a, LOAD_BYTES);
		ASSERT_LT(0, llmdev_uring_xfer(&self->ring[r], &self->buf[r], 0, LOAD_BYTES,
					       LOAD_HBM(r)))
			TH_LOG("%s", self->ring[r].err);
		d = llmdev_memdiff(src->va, self->buf[r].va, LOAD_BYTES);
		EXPECT_EQ(-1, d) TH_LOG("ring %u: byte %ld differs", r, d);
	}
}

/* ---- AER ------------------------------------------------------------------- */

#define SERIAL_BASE	0x4c4d000000000000ull	/* model default: + creation order */

FIXTURE(aer) {
	struct llmdev_cards cs;
	struct llmdev_card *c;
	char id[32];
	unsigned int aer;	/* AER capability offset */
	uint8_t cfg[64];	/* the header, as the kernel set it up */
};

FIXTURE_SETUP(aer)
{
	uint64_t serial;

	LLMDEV_CARDS_SETUP(&self->cs);
	self->c = &self->cs.card[0];
	if (system("command -v hostctl >/dev/null 2>&1"))
		SKIP(return, "no hostctl on PATH: cannot reach QEMU's monitor");
	/* the runner names the cards llmdev<N>, N = creation order = serial */
	serial = llmdev_rd64(self->c, LLMDEV_REG_SERIAL);
	if (serial - SERIAL_BASE >= LLMDEV_MAX_CARDS)
		SKIP(return, "%s: serial %#" PRIx64 ": cannot tell its QEMU id",
		     self->c->bdf, serial);
	snprintf(self->id, sizeof(self->id), "llmdev%u",
		 (unsigned int)(serial - SERIAL_BASE));
	self->aer = llmdev_cfg_find_ext_cap(self->c, PCI_EXT_CAP_ID_ERR);
	ASSERT_NE(0, self->aer);
	ASSERT_EQ(0, llmdev_cfg_read(self->c, 0, self->cfg, sizeof(self->cfg)));
	LLMDEV_RESET(self->c);
}

FIXTURE_TEARDOWN(aer)
{
	llmdev_cards_close(&self->cs);
}

/* "pcie_aer_inject_error [flags] <id> <error>" through the runner's monitor */
static int inject(FIXTURE_DATA(aer) *self, const char *flags, const char *err,
		  char *out, size_t len)
{
	char cmd[256];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "hostctl -t 30 hmp 'pcie_aer_inject_error %s %s %s' 2>&1",
		 flags, self->id, err);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	n = fread(out, 1, len - 1, f);
	out[n] = 0;
	return pclose(f);
}

static uint32_t cfg32(struct llmdev_card *c, unsigned int off)
{
	uint32_t v = 0;

	llmdev_cfg_read(c, off, &v, sizeof(v));
	return v;
}

/* an error the card logs and the kernel handles without a reset */
static void aer_kept(struct __test_metadata *_metadata, FIXTURE_DATA(aer) *self,
		     const char *flags, const char *err, unsigned int status_reg,
		     uint32_t bit)
{
	struct llmdev_card *c = self->c;
	uint32_t resets = llmdev_rd32(c, LLMDEV_REG_RESET_COUNT), one = bit;
	unsigned int exp = llmdev_cfg_find_cap(c, PCI_CAP_ID_EXP);
	uint32_t lnkcap;
	uint16_t lnksta;
	char out[512];

	ASSERT_NE(0, exp);
	lnkcap = cfg32(c, exp + PCI_EXP_LNKCAP);
	lnksta = llmdev_cfg_read16(c, exp + PCI_EXP_LNKSTA);
	/* the model's link: x16 at 16 GT/s (also after earlier tests' errors) */
	ASSERT_EQ(16, (lnkcap & PCI_EXP_LNKCAP_MLW) >> 4);
	ASSERT_EQ(PCI_EXP_LNKCAP_SLS_16_0GB, lnkcap & PCI_EXP_LNKCAP_SLS);
	llmdev_wr32(c, LLMDEV_REG_SCRATCH, 0x0ae40ae4);
	ASSERT_EQ(0, inject(self, flags, err, out, sizeof(out))) TH_LOG("%s", out);
	ASSERT_NE(NULL, strstr(out, "OK id: ")) TH_LOG("hostctl said: %s", out);
	/* the kernel's AER service runs from an interrupt: give it time */
	llmdev_sleep_ms(1000);
	EXPECT_NE(0, cfg32(c, self->aer + status_reg) & bit)
		TH_LOG("%s: status %#x", err, cfg32(c, self->aer + status_reg));
	/* nothing happened to the card itself */
	EXPECT_EQ(resets, llmdev_rd32(c, LLMDEV_REG_RESET_COUNT));
	EXPECT_EQ(0x0ae40ae4u, llmdev_rd32(c, LLMDEV_REG_SCRATCH));
	EXPECT_EQ(LLMDEV_ID_MAGIC, llmdev_rd32(c, LLMDEV_REG_ID));
	/*
	 * nor to its link (QEMU's injection of an uncorrectable error
	 * stores Device Status as 32 bits, over LNKCAP)
	 */
	EXPECT_EQ(lnkcap, cfg32(c, exp + PCI_EXP_LNKCAP));
	EXPECT_EQ(lnksta, llmdev_cfg_read16(c, exp + PCI_EXP_LNKSTA));
	/* the status is RW1C */
	ASSERT_EQ(0, llmdev_cfg_write(c, self->aer + status_reg, &one, sizeof(one)));
	EXPECT_EQ(0, cfg32(c, self->aer + status_reg) & bit);
}

TEST_F_TIMEOUT(aer, correctable, 120)
{
	LLMDEV_REQUIRE(&self->cs);
	aer_kept(_metadata, self, "-c", "RCVR", PCI_ERR_COR_STATUS, PCI_ERR_COR_RCVR);
}

TEST_F_TIMEOUT(aer, uncorrectable_nonfatal, 120)
{
	LLMDEV_REQUIRE(&self->cs);
	/* poisoned TLP: not fatal by the card's default severity */
	aer_kept(_metadata, self, "", "POISON_TLP", PCI_ERR_UNCOR_STATUS,
		 PCI_ERR_UNC_POISON_TLP);
}

/*
 * An internal error is fatal: the kernel's AER service resets the link
 * below the root port (a secondary bus reset), which resets the card and
 * its config space. With no driver to restore it, the test puts back the
 * header the kernel had set up, then the card must be a card after reset.
 */
TEST_F_TIMEOUT(aer, uncorrectable_fatal, 120)
{
	struct llmdev_card *c = self->c;
	uint32_t resets = llmdev_rd32(c, LLMDEV_REG_RESET_COUNT);
	uint64_t end;
	char out[512];
	unsigned int off;
	uint16_t cmd;

	LLMDEV_REQUIRE(&self->cs);
	llmdev_wr32(c, LLMDEV_REG_SCRATCH, 0x0ae40ae4);
	ASSERT_EQ(0, inject(self, "", "INTN", out, sizeof(out))) TH_LOG("%s", out);
	ASSERT_NE(NULL, strstr(out, "OK id: ")) TH_LOG("hostctl said: %s", out);
	/* the link reset clears the command register among the rest */
	end = llmdev_now_ns() + 30000000000ull;
	while ((llmdev_cfg_read16(c, PCI_COMMAND) & PCI_COMMAND_MEMORY) &&
	       llmdev_now_ns() < end)
		llmdev_sleep_ms(10);
	ASSERT_EQ(0, llmdev_cfg_read16(c, PCI_COMMAND) & PCI_COMMAND_MEMORY)
		TH_LOG("no link reset after a fatal error");
	/* let the AER service finish, then restore the header, command last */
	llmdev_sleep_ms(1000);
	for (off = PCI_BASE_ADDRESS_0; off <= PCI_BASE_ADDRESS_5; off += 4)
		ASSERT_EQ(0, llmdev_cfg_write(c, off, self->cfg + off, 4));
	ASSERT_EQ(0, llmdev_cfg_write(c, PCI_INTERRUPT_LINE, self->cfg + PCI_INTERRUPT_LINE, 1));
	memcpy(&cmd, self->cfg + PCI_COMMAND, sizeof(cmd));
	ASSERT_EQ(0, llmdev_cfg_write16(c, PCI_COMMAND, cmd));

	EXPECT_EQ(LLMDEV_ID_MAGIC, llmdev_rd32(c, LLMDEV_REG_ID));
	EXPECT_EQ(resets + 1, llmdev_rd32(c, LLMDEV_REG_RESET_COUNT));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_SCRATCH));
	EXPECT_EQ(0xffffffffu, llmdev_rd32(c, LLMDEV_REG_IRQ_MASK));
	EXPECT_NE(0, cfg32(c, self->aer + PCI_ERR_UNCOR_STATUS) & PCI_ERR_UNC_INTN)
		TH_LOG("the error status should survive the link reset (sticky)");
	resets = PCI_ERR_UNC_INTN;
	llmdev_cfg_write(c, self->aer + PCI_ERR_UNCOR_STATUS, &resets, 4);
}

LLMDEV_HARNESS_MAIN
