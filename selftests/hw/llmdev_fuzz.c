// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev register fuzz: random 32-bit values written to every register
 * offset of BAR 0 (0x0000-0xbffc; the MSI-X table above is left alone),
 * several rounds, then random 1, 2, 4 and 8-byte reads and writes at random
 * (also misaligned) offsets. The card must never stop answering, its error
 * counters must agree with each other, and after a soft reset it must be
 * whole again: identity, reset values, a working aperture and error logging.
 *
 * Safety: bus mastering is off (so whatever DMA the random values start
 * cannot touch guest memory) and INTx is disabled (random IRQ_MASK values
 * cannot interrupt a guest that has no handler). The command register is
 * restored after the reset, when IRQ_MASK is all ones again.
 *
 * The seed is printed; LLMDEV_SEED=<n> replays a run.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <linux/pci_regs.h>

#include "kselftest_harness.h"
#include "llmdev_test.h"

#define ROUNDS		4
#define RANDOM_OPS	20000

FIXTURE(fuzz) {
	struct llmdev_cards cs;
	struct llmdev_card *c;
	uint16_t cmd;
	uint64_t seed;
};

FIXTURE_SETUP(fuzz)
{
	LLMDEV_CARDS_SETUP(&self->cs);
	self->c = &self->cs.card[0];
	self->cmd = llmdev_cfg_read16(self->c, PCI_COMMAND);
	LLMDEV_RESET(self->c);
	ASSERT_EQ(0, llmdev_cfg_write16(self->c, PCI_COMMAND,
					(self->cmd & ~PCI_COMMAND_MASTER) |
					PCI_COMMAND_INTX_DISABLE));
	self->seed = llmdev_seed(0x46555a5a31ull);
	TH_LOG("%s: seed %#" PRIx64 " (LLMDEV_SEED=%" PRIu64 " replays it)",
	       self->c->bdf, self->seed, self->seed);
}

FIXTURE_TEARDOWN(fuzz)
{
	if (self->c) {
		llmdev_soft_reset(self->c);
		llmdev_cfg_write16(self->c, PCI_COMMAND, self->cmd);
	}
	llmdev_cards_close(&self->cs);
}

/* still alive: the read-only identity never changes */
#define EXPECT_ALIVE(c, what) do {					\
	EXPECT_EQ(LLMDEV_ID_MAGIC, llmdev_rd32(c, LLMDEV_REG_ID))	\
		TH_LOG("%s", what);					\
	if (_metadata->passed == 0)					\
		return;							\
} while (0)

/* errors since the last reset, counted three ways */
static void check_err_counters(struct __test_metadata *_metadata,
			       struct llmdev_card *c, const char *when)
{
	uint32_t count = llmdev_rd32(c, LLMDEV_REG_ERR_COUNT);
	uint32_t head = llmdev_rd32(c, LLMDEV_REG_ERR_LOG_HEAD);
	uint64_t perf = llmdev_perf(c, LLMDEV_PERF_ERRORS);

	TH_LOG("%s: ERR_COUNT %u ERR_LOG_HEAD %u PERF_ERRORS %" PRIu64
	       " ERR_STATUS %#x RESET_COUNT %u", when, count, head, perf,
	       llmdev_rd32(c, LLMDEV_REG_ERR_STATUS),
	       llmdev_rd32(c, LLMDEV_REG_RESET_COUNT));
	EXPECT_EQ(count, head);
	EXPECT_EQ((uint64_t)count, perf);
	/* the newest entry, if any, has the right sequence number and a code */
	if (head) {
		EXPECT_EQ(head - 1, llmdev_log_rd32(c, head - 1, LLMDEV_ERR_LOG_SEQ));
		EXPECT_GE(LLMDEV_ERR_MAX, llmdev_log_rd32(c, head - 1, LLMDEV_ERR_LOG_CODE));
		EXPECT_NE(0, llmdev_log_rd32(c, head - 1, LLMDEV_ERR_LOG_CODE));
	}
	EXPECT_EQ(!!llmdev_rd32(c, LLMDEV_REG_ERR_STATUS),
		  !!(llmdev_rd32(c, LLMDEV_REG_STATUS) & LLMDEV_STATUS_ERROR));
}

static void check_whole(struct __test_metadata *_metadata, FIXTURE_DATA(fuzz) *self)
{
	struct llmdev_card *c = self->c;
	uint8_t out[4096], in[4096];
	uint32_t resets = llmdev_rd32(c, LLMDEV_REG_RESET_COUNT);
	unsigned int r;

	/* RESET_COUNT counts the random resets too, so compare with +1 */
	llmdev_wr32(c, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_RESET);
	EXPECT_EQ(resets + 1, llmdev_rd32(c, LLMDEV_REG_RESET_COUNT));
	EXPECT_EQ(LLMDEV_ID_MAGIC, llmdev_rd32(c, LLMDEV_REG_ID));
	EXPECT_EQ(LLMDEV_SPEC_MAJOR << 16 | LLMDEV_SPEC_MINOR,
		  llmdev_rd32(c, LLMDEV_REG_VERSION));
	EXPECT_EQ(LLMDEV_STATUS_READY, llmdev_rd32(c, LLMDEV_REG_STATUS));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_IRQ_STATUS));
	EXPECT_EQ(0xffffffffu, llmdev_rd32(c, LLMDEV_REG_IRQ_MASK));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_FAULT_INJECT));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_SCRUB_STATUS));
	for (r = 0; r < LLMDEV_NUM_RINGS; r++) {
		EXPECT_EQ(0, llmdev_ring_rd(c, r, LLMDEV_RING_STATUS));
		EXPECT_EQ(0, llmdev_ring_rd(c, r, LLMDEV_RING_HEAD));
	}
	EXPECT_EQ(c->res[LLMDEV_BAR_HBM].size, llmdev_rd64(c, LLMDEV_REG_HBM_SIZE));

	/* the aperture works */
	llmdev_fill_random(out, sizeof(out), &self->seed);
	llmdev_ap_write(c, 0x10000, out, sizeof(out));
	llmdev_ap_read(c, 0x10000, in, sizeof(in));
	EXPECT_EQ(-1, llmdev_memdiff(out, in, sizeof(in)));
	EXPECT_EQ(sizeof(out), llmdev_perf(c, LLMDEV_PERF_APERTURE_WR_BYTES));
	EXPECT_EQ(sizeof(in), llmdev_perf(c, LLMDEV_PERF_APERTURE_RD_BYTES));

	/* errors are logged as before */
	llmdev_wr32(c, LLMDEV_REG_VERSION, 0);
	EXPECT_EQ(1, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	EXPECT_ERR_LOGGED(c, 0, LLMDEV_ERR_REG_ACCESS, LLMDEV_SRC_NONE);
	llmdev_wr32(c, LLMDEV_REG_SCRATCH, 0x600d600d);
	EXPECT_EQ(0x600d600du, llmdev_rd32(c, LLMDEV_REG_SCRATCH));

	/* only now interrupts may be possible again */
	EXPECT_EQ(0, llmdev_cfg_write16(c, PCI_COMMAND, self->cmd));
}

TEST_F_TIMEOUT(fuzz, write32_every_register, 300)
{
	struct llmdev_card *c = self->c;
	const uint32_t nregs = LLMDEV_REG_RESERVED_END / 4;
	uint32_t *order;
	int round;
	uint32_t i;
	uint64_t t0 = llmdev_now_ns();

	LLMDEV_REQUIRE(&self->cs);
	order = malloc(nregs * sizeof(*order));
	ASSERT_NE(NULL, order);
	for (i = 0; i < nregs; i++)
		order[i] = i * 4;
	for (round = 0; round < ROUNDS; round++) {
		/* round 0 in address order, then shuffled */
		for (i = nregs - 1; round && i > 0; i--) {
			uint32_t j = llmdev_rand(&self->seed) % (i + 1), t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
		for (i = 0; i < nregs; i++) {
			llmdev_wr32(c, order[i], (uint32_t)llmdev_rand(&self->seed));
			if (i % 512 == 0)
				EXPECT_ALIVE(c, "during fuzz");
		}
		EXPECT_ALIVE(c, "after a round");
		check_err_counters(_metadata, c, "after round");
	}
	free(order);
	TH_LOG("%d rounds in %" PRIu64 " ms", ROUNDS, (llmdev_now_ns() - t0) / 1000000);
	check_whole(_metadata, self);
}

TEST_F_TIMEOUT(fuzz, random_size_access, 300)
{
	struct llmdev_card *c = self->c;
	volatile uint8_t *b = c->bar0;
	uint64_t t0 = llmdev_now_ns();
	unsigned int i;

	LLMDEV_REQUIRE(&self->cs);
	for (i = 0; i < RANDOM_OPS; i++) {
		uint64_t r = llmdev_rand(&self->seed);
		unsigned int size = 1u << (r & 3);		/* 1, 2, 4, 8 */
		bool write = r & 4;
		/* mostly aligned, sometimes not */
		uint32_t off = (r >> 8) % (LLMDEV_REG_RESERVED_END - 8);
		uint64_t v = llmdev_rand(&self->seed);

		if (r & 0x30)
			off &= ~(size - 1);
		if (write) {
			switch (size) {
			case 1: *(volatile uint8_t *)(b + off) = v; break;
			case 2: *(volatile uint16_t *)(b + off) = v; break;
			case 4: *(volatile uint32_t *)(b + off) = v; break;
			case 8: *(volatile uint64_t *)(b + off) = v; break;
			}
		} else {
			switch (size) {
			case 1: (void)*(volatile uint8_t *)(b + off); break;
			case 2: (void)*(volatile uint16_t *)(b + off); break;
			case 4: (void)*(volatile uint32_t *)(b + off); break;
			case 8: (void)*(volatile uint64_t *)(b + off); break;
			}
		}
		if (i % 512 == 0)
			EXPECT_ALIVE(c, "during fuzz");
	}
	EXPECT_ALIVE(c, "after fuzz");
	check_err_counters(_metadata, c, "after random accesses");
	TH_LOG("%u accesses in %" PRIu64 " ms", RANDOM_OPS,
	       (llmdev_now_ns() - t0) / 1000000);
	check_whole(_metadata, self);
}

/* 8-byte writes over the whole register space too */
TEST_F_TIMEOUT(fuzz, write64_every_register, 300)
{
	struct llmdev_card *c = self->c;
	uint32_t off;

	LLMDEV_REQUIRE(&self->cs);
	for (off = 0; off < LLMDEV_REG_RESERVED_END; off += 8) {
		llmdev_wr64(c, off, llmdev_rand(&self->seed));
		if (off % 2048 == 0)
			EXPECT_ALIVE(c, "during fuzz");
	}
	EXPECT_ALIVE(c, "after fuzz");
	check_err_counters(_metadata, c, "after 64-bit writes");
	check_whole(_metadata, self);
}

LLMDEV_HARNESS_MAIN
