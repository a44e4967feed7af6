// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev registers through BAR 0: identity, 64-bit access rules, reserved
 * space, the access rules for odd sizes, and the error block (logging, RW1C,
 * fault injection). Every test starts from a soft reset. Interrupts stay
 * masked throughout (IRQ_MASK is never written).
 */
#define _GNU_SOURCE
#include <string.h>

#include "kselftest_harness.h"
#include "llmdev_test.h"

FIXTURE(regs) {
	struct llmdev_cards cs;
};

FIXTURE_SETUP(regs)
{
	int i;

	LLMDEV_CARDS_SETUP(&self->cs);
	for (i = 0; i < self->cs.n; i++)
		LLMDEV_RESET(&self->cs.card[i]);
}

FIXTURE_TEARDOWN(regs)
{
	int i;

	for (i = 0; i < self->cs.n; i++)
		llmdev_soft_reset(&self->cs.card[i]);
	llmdev_cards_close(&self->cs);
}

TEST_F(regs, identity)
{
	int i;

	LLMDEV_REQUIRE(&self->cs);
	for (i = 0; i < self->cs.n; i++) {
		struct llmdev_card *c = &self->cs.card[i];
		uint32_t caps = llmdev_rd32(c, LLMDEV_REG_CAPS);

		TH_LOG("%s: caps %#x serial %#" PRIx64 " hbm %#" PRIx64, c->bdf,
		       caps, llmdev_rd64(c, LLMDEV_REG_SERIAL),
		       llmdev_rd64(c, LLMDEV_REG_HBM_SIZE));
		EXPECT_EQ(LLMDEV_ID_MAGIC, llmdev_rd32(c, LLMDEV_REG_ID));
		EXPECT_EQ(LLMDEV_SPEC_MAJOR << 16 | LLMDEV_SPEC_MINOR,
			  llmdev_rd32(c, LLMDEV_REG_VERSION));
		EXPECT_EQ(LLMDEV_NUM_H2C_RINGS, LLMDEV_CAPS_H2C_RINGS(caps));
		EXPECT_EQ(LLMDEV_NUM_RINGS - LLMDEV_NUM_H2C_RINGS,
			  LLMDEV_CAPS_C2H_RINGS(caps));
		EXPECT_EQ(LLMDEV_NUM_LINK_PORTS, LLMDEV_CAPS_LINK_PORTS(caps));
		EXPECT_NE(0, caps & LLMDEV_CAPS_SCRUB);
		EXPECT_NE(0, caps & LLMDEV_CAPS_FAULT_INJECT);
		/* after reset: READY, not ENABLED, no ERROR */
		EXPECT_EQ(LLMDEV_STATUS_READY, llmdev_rd32(c, LLMDEV_REG_STATUS));
		EXPECT_EQ(LLMDEV_NUM_VECTORS, llmdev_rd32(c, LLMDEV_REG_NUM_VECTORS));
		EXPECT_EQ(c->res[LLMDEV_BAR_HBM].size,
			  llmdev_rd64(c, LLMDEV_REG_HBM_SIZE));
		EXPECT_EQ(LLMDEV_PERF_NUM_COUNTERS, llmdev_rd32(c, LLMDEV_REG_PERF_NUM));
	}
}

TEST_F(regs, serial_distinct)
{
	int i, j;

	LLMDEV_REQUIRE(&self->cs);
	for (i = 0; i < self->cs.n; i++) {
		uint64_t si = llmdev_rd64(&self->cs.card[i], LLMDEV_REG_SERIAL);

		for (j = 0; j < i; j++)
			EXPECT_NE(si, llmdev_rd64(&self->cs.card[j], LLMDEV_REG_SERIAL))
				TH_LOG("%s and %s share serial %#" PRIx64,
				       self->cs.card[i].bdf, self->cs.card[j].bdf, si);
		/* constant: a reset does not change it */
		LLMDEV_RESET(&self->cs.card[i]);
		EXPECT_EQ(si, llmdev_rd64(&self->cs.card[i], LLMDEV_REG_SERIAL));
	}
}

TEST_F(regs, timestamp_advances)
{
	struct llmdev_card *c;
	uint64_t t0, t1, h0, h1;

	LLMDEV_REQUIRE(&self->cs);
	c = &self->cs.card[0];
	t0 = llmdev_rd64(c, LLMDEV_REG_TIMESTAMP);
	h0 = llmdev_now_ns();
	llmdev_sleep_ms(20);
	t1 = llmdev_rd64(c, LLMDEV_REG_TIMESTAMP);
	h1 = llmdev_now_ns();
	TH_LOG("TIMESTAMP %" PRIu64 " -> %" PRIu64 " (+%" PRIu64 " ns, guest +%" PRIu64 " ns)",
	       t0, t1, t1 - t0, h1 - h0);
	EXPECT_NE(0, t0);
	ASSERT_LT(t0, t1);
	/* ns: 20 ms of guest time is at least a few ms of virtual time */
	EXPECT_LE(5000000ull, t1 - t0);
	EXPECT_GT(60ull * 1000000000ull, t1 - t0);
	/* a soft reset does not restart it */
	LLMDEV_RESET(c);
	EXPECT_LE(t1, llmdev_rd64(c, LLMDEV_REG_TIMESTAMP));
}

static uint64_t rd64_split(struct llmdev_card *c, uint32_t off)
{
	uint64_t lo = llmdev_rd32(c, off);

	return lo | (uint64_t)llmdev_rd32(c, off + 4) << 32;
}

static void wr64_split(struct llmdev_card *c, uint32_t off, uint64_t v)
{
	llmdev_wr32(c, off, (uint32_t)v);
	llmdev_wr32(c, off + 4, v >> 32);
}

TEST_F(regs, access_64bit)
{
	static const uint32_t ro[] = { LLMDEV_REG_SERIAL, LLMDEV_REG_HBM_SIZE };
	static const uint32_t rw[] = {
		LLMDEV_REG_SCRUB_ADDR, LLMDEV_REG_SCRUB_LEN,
		LLMDEV_RING_BASE(0) + LLMDEV_RING_DESC_BASE,
		LLMDEV_RING_BASE(3) + LLMDEV_RING_CMPL_BASE,
	};
	struct llmdev_card *c;
	uint64_t t0, t, t1;
	size_t i;

	LLMDEV_REQUIRE(&self->cs);
	c = &self->cs.card[0];
	for (i = 0; i < sizeof(ro) / sizeof(ro[0]); i++)
		EXPECT_EQ(llmdev_rd64(c, ro[i]), rd64_split(c, ro[i]))
			TH_LOG("register %#x", ro[i]);

	/* TIMESTAMP read as halves lies between two 64-bit reads */
	t0 = llmdev_rd64(c, LLMDEV_REG_TIMESTAMP);
	t = rd64_split(c, LLMDEV_REG_TIMESTAMP);
	t1 = llmdev_rd64(c, LLMDEV_REG_TIMESTAMP);
	EXPECT_LE(t0, t);
	EXPECT_LE(t, t1);

	for (i = 0; i < sizeof(rw) / sizeof(rw[0]); i++) {
		/* multiples of 4 KiB, valid for every 64-bit RW register */
		uint64_t a = 0x123456789abc000ull + i * 0x1000;
		uint64_t b = 0xfedcba9876540000ull - i * 0x1000;

		llmdev_wr64(c, rw[i], a);
		EXPECT_EQ(a, llmdev_rd64(c, rw[i])) TH_LOG("register %#x", rw[i]);
		EXPECT_EQ(a, rd64_split(c, rw[i])) TH_LOG("register %#x", rw[i]);
		wr64_split(c, rw[i], b);
		EXPECT_EQ(b, llmdev_rd64(c, rw[i])) TH_LOG("register %#x", rw[i]);
		/* the halves are independent */
		llmdev_wr32(c, rw[i] + 4, 0x11223344);
		EXPECT_EQ(0x11223344ull << 32 | (uint32_t)b, llmdev_rd64(c, rw[i]));
		llmdev_wr64(c, rw[i], 0);
	}
	/* none of this was an error */
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
}

TEST_F(regs, scratch)
{
	static const uint32_t pat[] = { 0xffffffff, 0, 0xa5a55a5a, 0x12345678 };
	int i;
	size_t j;

	LLMDEV_REQUIRE(&self->cs);
	for (i = 0; i < self->cs.n; i++) {
		struct llmdev_card *c = &self->cs.card[i];

		EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_SCRATCH));
		for (j = 0; j < sizeof(pat) / sizeof(pat[0]); j++) {
			llmdev_wr32(c, LLMDEV_REG_SCRATCH, pat[j] ^ i);
			EXPECT_EQ(pat[j] ^ i, llmdev_rd32(c, LLMDEV_REG_SCRATCH));
		}
	}
	/* cards do not share registers */
	for (i = 0; i < self->cs.n; i++)
		EXPECT_EQ(0x12345678u ^ i,
			  llmdev_rd32(&self->cs.card[i], LLMDEV_REG_SCRATCH));
}

/* holes inside the implemented blocks, and the reserved blocks */
static const struct { uint32_t start, end; } reserved[] = {
	{ LLMDEV_REG_RESET_COUNT + 4, LLMDEV_REG_IRQ_STATUS },
	{ LLMDEV_REG_IRQ_MASK + 4, LLMDEV_REG_ERR_STATUS },
	{ LLMDEV_REG_FAULT_INJECT + 4, LLMDEV_REG_SCRUB_ADDR },
	{ LLMDEV_REG_SCRUB_STATUS + 4, LLMDEV_REG_ERR_LOG },
	{ LLMDEV_REG_ERR_LOG + LLMDEV_ERR_LOG_ENTRIES * LLMDEV_ERR_LOG_STRIDE,
	  LLMDEV_RING_BASE(0) },
	{ LLMDEV_RING_BASE(LLMDEV_NUM_RINGS), LLMDEV_RING_BASE(LLMDEV_MAX_RINGS) },
	{ LLMDEV_REG_PERF_SNAP_TIME + 8, LLMDEV_REG_PERF_LIVE },
	{ LLMDEV_REG_PERF_LIVE + 8 * LLMDEV_PERF_NUM_COUNTERS, LLMDEV_REG_PERF_SNAP },
	{ LLMDEV_REG_PERF_SNAP + 8 * LLMDEV_PERF_NUM_COUNTERS, LLMDEV_REG_TEMP_MC },
	{ LLMDEV_REG_POWER_CAP_MW + 4, LLMDEV_LINK_BASE(0) },
	{ LLMDEV_LINK_BASE(LLMDEV_NUM_LINK_PORTS), LLMDEV_REG_LINK_EVENT },
	{ LLMDEV_REG_LINK_GBPS + 4, LLMDEV_REG_COLL_CTRL },
	{ LLMDEV_REG_COLL_DONE_TAG + 8, LLMDEV_REG_ROUTE_CTRL },
	{ LLMDEV_REG_ROUTE_STATUS + 4, LLMDEV_REG_ROUTE_STAGE },
	{ LLMDEV_REG_ROUTE_STAGE + LLMDEV_ROUTE_ENTRIES * LLMDEV_ROUTE_ENTRY_SIZE,
	  LLMDEV_REG_ROUTE_ACTIVE },
	{ LLMDEV_REG_ROUTE_ACTIVE + LLMDEV_ROUTE_ENTRIES * LLMDEV_ROUTE_ENTRY_SIZE,
	  LLMDEV_REG_RESERVED_END },
};

/* an offset in reserved space */
#define RESERVED_OFF	LLMDEV_LINK_BASE(LLMDEV_NUM_LINK_PORTS)

TEST_F(regs, reserved_read_zero)
{
	struct llmdev_card *c;
	unsigned int bad = 0, n, r;
	size_t i;
	uint32_t off;

	LLMDEV_REQUIRE(&self->cs);
	c = &self->cs.card[0];
	for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		for (off = reserved[i].start; off < reserved[i].end; off += 4) {
			uint32_t v = llmdev_rd32(c, off);

			if (v && bad++ < 8)
				TH_LOG("reserved %#x reads %#x", off, v);
		}
	}
	for (r = 0; r < LLMDEV_NUM_RINGS; r++)
		for (off = LLMDEV_RING_BASE(r) + LLMDEV_RING_ERR_CODE + 4;
		     off < LLMDEV_RING_BASE(r + 1); off += 4) {
			uint32_t v = llmdev_rd32(c, off);

			if (v && bad++ < 8)
				TH_LOG("ring hole %#x reads %#x", off, v);
		}
	for (r = 0; r < LLMDEV_NUM_LINK_PORTS; r++) {
		/* link port holes: after FAULT, and after DOWN_AFTER */
		off = LLMDEV_LINK_BASE(r) + LLMDEV_LINK_FAULT + 4;
		if (llmdev_rd32(c, off) && bad++ < 8)
			TH_LOG("link hole %#x reads %#x", off, llmdev_rd32(c, off));
		for (off = LLMDEV_LINK_BASE(r) + LLMDEV_LINK_DOWN_AFTER + 8;
		     off < LLMDEV_LINK_BASE(r + 1); off += 4) {
			uint32_t v = llmdev_rd32(c, off);

			if (v && bad++ < 8)
				TH_LOG("link hole %#x reads %#x", off, v);
		}
	}
	EXPECT_EQ(0, bad);
	/* reading is never an error */
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	n = llmdev_rd32(c, LLMDEV_REG_ERR_LOG_HEAD);
	EXPECT_EQ(0, n);
}

TEST_F(regs, ring_dir)
{
	unsigned int r;
	int i;

	LLMDEV_REQUIRE(&self->cs);
	for (i = 0; i < self->cs.n; i++)
		for (r = 0; r < LLMDEV_NUM_RINGS; r++) {
			struct llmdev_card *c = &self->cs.card[i];

			EXPECT_EQ(r < LLMDEV_NUM_H2C_RINGS ? LLMDEV_DIR_H2C : LLMDEV_DIR_C2H,
				  llmdev_ring_rd(c, r, LLMDEV_RING_DIR))
				TH_LOG("%s ring %u", c->bdf, r);
			/* DIR is read-only: a write is ignored and logged */
			llmdev_ring_wr(c, r, LLMDEV_RING_DIR, 1 - (r / 2));
			EXPECT_EQ(r < LLMDEV_NUM_H2C_RINGS ? LLMDEV_DIR_H2C : LLMDEV_DIR_C2H,
				  llmdev_ring_rd(c, r, LLMDEV_RING_DIR));
		}
}

/*
 * model-semantics: other sizes or misaligned: reads 0, writes ignored.
 * Misaligned reads are not checked: QEMU's TCG splits a misaligned MMIO load
 * into two aligned loads of the same size before the model sees it, so the
 * model cannot tell (a 4-byte load at ID+2 returns bytes 2-5 of ID/VERSION).
 * Misaligned stores are split into single bytes, which the model ignores.
 */
TEST_F(regs, odd_size_access)
{
	struct llmdev_card *c;
	volatile uint8_t *b;

	LLMDEV_REQUIRE(&self->cs);
	c = &self->cs.card[0];
	b = c->bar0;
	EXPECT_EQ(0, *(volatile uint8_t *)(b + LLMDEV_REG_ID));
	EXPECT_EQ(0, *(volatile uint16_t *)(b + LLMDEV_REG_ID));
	EXPECT_EQ(0, *(volatile uint16_t *)(b + LLMDEV_REG_ID + 2));

	llmdev_wr32(c, LLMDEV_REG_SCRATCH, 0x11111111);
	*(volatile uint8_t *)(b + LLMDEV_REG_SCRATCH) = 0xaa;
	*(volatile uint16_t *)(b + LLMDEV_REG_SCRATCH + 2) = 0xbbbb;
	*(volatile uint32_t *)(b + LLMDEV_REG_SCRATCH + 1) = 0xcccccccc;
	EXPECT_EQ(0x11111111, llmdev_rd32(c, LLMDEV_REG_SCRATCH));
	EXPECT_EQ(LLMDEV_ID_MAGIC, llmdev_rd32(c, LLMDEV_REG_ID));
}

TEST_F(regs, ro_write_logged)
{
	struct llmdev_card *c;
	uint64_t now;

	LLMDEV_REQUIRE(&self->cs);
	c = &self->cs.card[0];
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_STATUS));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_IRQ_STATUS));

	/* write to a read-only register: ignored, logged */
	llmdev_wr32(c, LLMDEV_REG_ID, 0xdeadbeef);
	EXPECT_EQ(LLMDEV_ID_MAGIC, llmdev_rd32(c, LLMDEV_REG_ID));
	EXPECT_EQ(1, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	EXPECT_EQ(1, llmdev_rd32(c, LLMDEV_REG_ERR_LOG_HEAD));
	EXPECT_ERR_LOGGED(c, 0, LLMDEV_ERR_REG_ACCESS, LLMDEV_SRC_NONE);
	now = llmdev_rd64(c, LLMDEV_REG_TIMESTAMP);
	EXPECT_LE(llmdev_log_rd64(c, 0, LLMDEV_ERR_LOG_TIME), now);
	EXPECT_NE(0, llmdev_rd32(c, LLMDEV_REG_STATUS) & LLMDEV_STATUS_ERROR);
	/* the error source is pending, but masked: no interrupt sent */
	EXPECT_EQ(LLMDEV_IRQ_ERROR, llmdev_rd32(c, LLMDEV_REG_IRQ_STATUS));
	EXPECT_EQ(0xffffffffu, llmdev_rd32(c, LLMDEV_REG_IRQ_MASK));
	EXPECT_EQ(0, llmdev_perf(c, LLMDEV_PERF_IRQS));
	EXPECT_EQ(1, llmdev_perf(c, LLMDEV_PERF_ERRORS));

	/* a write to reserved space: the same */
	llmdev_wr32(c, RESERVED_OFF, 1);
	EXPECT_EQ(0, llmdev_rd32(c, RESERVED_OFF));
	EXPECT_EQ(2, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	EXPECT_ERR_LOGGED(c, 1, LLMDEV_ERR_REG_ACCESS, LLMDEV_SRC_NONE);

	/* ERR_STATUS and IRQ_STATUS are write-1-to-clear; counters stay */
	llmdev_wr32(c, LLMDEV_REG_ERR_STATUS, 0);
	EXPECT_EQ(1u << LLMDEV_ERR_REG_ACCESS, llmdev_rd32(c, LLMDEV_REG_ERR_STATUS));
	llmdev_wr32(c, LLMDEV_REG_ERR_STATUS, 1u << LLMDEV_ERR_REG_ACCESS);
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_STATUS));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_STATUS) & LLMDEV_STATUS_ERROR);
	llmdev_wr32(c, LLMDEV_REG_IRQ_STATUS, LLMDEV_IRQ_ERROR);
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_IRQ_STATUS));
	EXPECT_EQ(2, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	EXPECT_EQ(2, llmdev_rd32(c, LLMDEV_REG_ERR_LOG_HEAD));
}

TEST_F(regs, fault_inject_raise)
{
	struct llmdev_card *c;

	LLMDEV_REQUIRE(&self->cs);
	c = &self->cs.card[0];
	/* bits outside the valid mask are ignored */
	llmdev_wr32(c, LLMDEV_REG_FAULT_INJECT, ~LLMDEV_FAULT_VALID_MASK);
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_FAULT_INJECT));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));

	/* RAISE_ERROR is write-only and logs an injected error at once */
	llmdev_wr32(c, LLMDEV_REG_FAULT_INJECT, LLMDEV_FAULT_RAISE_ERROR);
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_FAULT_INJECT));
	EXPECT_EQ(1, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	EXPECT_ERR_LOGGED(c, 0, LLMDEV_ERR_INJECTED, LLMDEV_SRC_NONE);
	EXPECT_EQ(1u << LLMDEV_ERR_INJECTED, llmdev_rd32(c, LLMDEV_REG_ERR_STATUS));

	/* FAIL_NEXT_DESC stays armed until a descriptor uses it */
	llmdev_wr32(c, LLMDEV_REG_FAULT_INJECT, LLMDEV_FAULT_FAIL_NEXT_DESC);
	EXPECT_EQ(LLMDEV_FAULT_FAIL_NEXT_DESC, llmdev_rd32(c, LLMDEV_REG_FAULT_INJECT));
	EXPECT_EQ(1, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	llmdev_wr32(c, LLMDEV_REG_FAULT_INJECT, 0);
}

TEST_F(regs, err_log_wraps)
{
	const uint32_t n = LLMDEV_ERR_LOG_ENTRIES + 5;
	struct llmdev_card *c;
	uint64_t prev = 0;
	uint32_t seq;

	LLMDEV_REQUIRE(&self->cs);
	c = &self->cs.card[0];
	for (seq = 0; seq < n; seq++)
		llmdev_wr32(c, LLMDEV_REG_FAULT_INJECT, LLMDEV_FAULT_RAISE_ERROR);
	EXPECT_EQ(n, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	EXPECT_EQ(n, llmdev_rd32(c, LLMDEV_REG_ERR_LOG_HEAD));
	EXPECT_EQ(n, llmdev_perf(c, LLMDEV_PERF_ERRORS));
	/* the last ENTRIES errors are in the log, oldest first */
	for (seq = n - LLMDEV_ERR_LOG_ENTRIES; seq < n; seq++) {
		uint64_t t = llmdev_log_rd64(c, seq, LLMDEV_ERR_LOG_TIME);

		EXPECT_EQ(seq, llmdev_log_rd32(c, seq, LLMDEV_ERR_LOG_SEQ));
		EXPECT_EQ(LLMDEV_ERR_INJECTED, llmdev_log_rd32(c, seq, LLMDEV_ERR_LOG_CODE));
		EXPECT_LE(prev, t);
		prev = t;
	}
	/* soft reset clears the log */
	LLMDEV_RESET(c);
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_LOG_HEAD));
	for (seq = 0; seq < LLMDEV_ERR_LOG_ENTRIES; seq++)
		EXPECT_EQ(0, llmdev_log_rd32(c, seq, LLMDEV_ERR_LOG_CODE));
}

LLMDEV_HARNESS_MAIN
