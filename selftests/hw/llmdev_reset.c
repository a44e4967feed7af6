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
 */
#define _GNU_SOURCE
#include <fcntl.h>
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
	EXPECT_EQ(2u | 2u << 4 | 4u << 8 | LLMDEV_CAPS_SCRUB | LLMDEV_CAPS_FAULT_INJECT,
		  llmdev_rd32(c, LLMDEV_REG_CAPS));
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

LLMDEV_HARNESS_MAIN
