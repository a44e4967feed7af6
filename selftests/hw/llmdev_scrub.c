// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev HBM scrub engine: random data around a 4 KiB-aligned range, scrub
 * the range with a pattern, poll SCRUB_STATUS.DONE (bounded), and read back
 * the pattern inside and the untouched data outside. Bad ranges (misaligned,
 * zero, beyond HBM, wrapping 2^64) set SCRUB_STATUS.ERROR, log a SCRUB error
 * and touch nothing. A zero scrub leaves nothing non-zero that was written
 * by the aperture, a pattern scrub or a DMA (the model skips blocks it
 * knows to be zero). Interrupts stay masked; the event source is only
 * observed in IRQ_STATUS.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include <linux/pci_regs.h>

#include "kselftest_harness.h"
#include "llmdev_test.h"

#define MARGIN		(8 * 1024)
#define WAIT_MS		10000
#define WAIT_MS_PER_GIB	60000

FIXTURE(scrub) {
	struct llmdev_cards cs;
	struct llmdev_card *c;
	uint64_t seed;
	uint8_t *before, *after;
	size_t buflen;
};

FIXTURE_SETUP(scrub)
{
	LLMDEV_CARDS_SETUP(&self->cs);
	self->c = &self->cs.card[0];
	LLMDEV_RESET(self->c);
	self->seed = llmdev_seed(0x5343525542ull);
	self->buflen = 256 * 1024 + 2 * MARGIN;
	self->before = malloc(self->buflen);
	self->after = malloc(self->buflen);
	ASSERT_NE(NULL, self->before);
	ASSERT_NE(NULL, self->after);
}

FIXTURE_TEARDOWN(scrub)
{
	if (self->c)
		llmdev_soft_reset(self->c);
	free(self->before);
	free(self->after);
	llmdev_cards_close(&self->cs);
}

static void program(struct llmdev_card *c, uint64_t addr, uint64_t len, uint32_t pat)
{
	llmdev_wr64(c, LLMDEV_REG_SCRUB_ADDR, addr);
	llmdev_wr64(c, LLMDEV_REG_SCRUB_LEN, len);
	llmdev_wr32(c, LLMDEV_REG_SCRUB_PATTERN, pat);
	llmdev_wr32(c, LLMDEV_REG_SCRUB_CTRL, LLMDEV_SCRUB_CTRL_START);
}

/*
 * SCRUB_STATUS once the engine is no longer busy, or still busy after
 * WAIT_MS plus WAIT_MS_PER_GIB for each GiB of @len. The bound only catches
 * a hang: the model's HBM is host memory that a pattern scrub touches for
 * the first time, and the host's page faults set the pace. On a new virtual
 * machine as host, 4 GiB took 25 s (the host zeroing pages its hypervisor
 * had not backed yet) and more than 26 s in CI.
 */
static uint32_t wait_idle_len(struct llmdev_card *c, uint64_t len)
{
	uint64_t end = llmdev_now_ns() +
		       (WAIT_MS + (len >> 30) * WAIT_MS_PER_GIB) * 1000000ull;
	uint32_t st;

	for (;;) {
		st = llmdev_rd32(c, LLMDEV_REG_SCRUB_STATUS);
		if (!(st & LLMDEV_SCRUB_STATUS_BUSY) &&
		    (st & (LLMDEV_SCRUB_STATUS_DONE | LLMDEV_SCRUB_STATUS_ERROR)))
			return st;
		if (llmdev_now_ns() > end)
			return st;
		llmdev_sleep_ms(1);
	}
}

static uint32_t wait_idle(struct llmdev_card *c)
{
	return wait_idle_len(c, 0);
}

/* scrub [addr, addr+len) with data around it and check everything */
static void scrub_check(struct __test_metadata *_metadata, FIXTURE_DATA(scrub) *self,
			uint64_t addr, uint64_t len, uint32_t pat)
{
	struct llmdev_card *c = self->c;
	uint64_t lo = addr - MARGIN, span = len + 2 * MARGIN, i;
	uint64_t bytes0 = llmdev_perf(c, LLMDEV_PERF_SCRUB_BYTES);
	uint32_t st;

	ASSERT_GE(self->buflen, span);
	llmdev_fill_random(self->before, span, &self->seed);
	llmdev_ap_write(c, lo, self->before, span);
	llmdev_wr32(c, LLMDEV_REG_IRQ_STATUS, LLMDEV_IRQ_EVENT);

	program(c, addr, len, pat);
	st = wait_idle(c);
	ASSERT_EQ(LLMDEV_SCRUB_STATUS_DONE, st)
		TH_LOG("scrub %#" PRIx64 "+%#" PRIx64 ": status %#x", addr, len, st);
	EXPECT_EQ(bytes0 + len, llmdev_perf(c, LLMDEV_PERF_SCRUB_BYTES));
	EXPECT_NE(0, llmdev_rd32(c, LLMDEV_REG_IRQ_STATUS) & LLMDEV_IRQ_EVENT);
	EXPECT_EQ(0, llmdev_perf(c, LLMDEV_PERF_IRQS));

	llmdev_ap_read(c, lo, self->after, span);
	EXPECT_EQ(-1, llmdev_memdiff(self->before, self->after, MARGIN))
		TH_LOG("scrub changed data below %#" PRIx64, addr);
	EXPECT_EQ(-1, llmdev_memdiff(self->before + MARGIN + len,
				     self->after + MARGIN + len, MARGIN))
		TH_LOG("scrub changed data above %#" PRIx64, addr + len);
	for (i = 0; i < len; i += 4) {
		uint32_t w;

		memcpy(&w, self->after + MARGIN + i, 4);
		if (w != pat) {
			EXPECT_EQ(pat, w) TH_LOG("HBM %#" PRIx64 " not scrubbed", addr + i);
			break;
		}
	}
}

TEST_F_TIMEOUT(scrub, range, 120)
{
	LLMDEV_REQUIRE(&self->cs);
	scrub_check(_metadata, self, 0x100000, 4096, 0xdeadbeef);
	scrub_check(_metadata, self, 0x200000, 256 * 1024, 0x01020304);
	scrub_check(_metadata, self, 0x300000, 64 * 1024, 0);
	EXPECT_EQ(0, llmdev_rd32(self->c, LLMDEV_REG_ERR_COUNT));
}

TEST_F_TIMEOUT(scrub, last_page, 120)
{
	uint64_t size;

	LLMDEV_REQUIRE(&self->cs);
	size = self->c->res[LLMDEV_BAR_HBM].size;
	/* the range may end exactly at the end of HBM; check the data below */
	llmdev_fill_random(self->before, MARGIN, &self->seed);
	llmdev_ap_write(self->c, size - 4096 - MARGIN, self->before, MARGIN);
	program(self->c, size - 4096, 4096, 0x77777777);
	ASSERT_EQ(LLMDEV_SCRUB_STATUS_DONE, wait_idle(self->c));
	EXPECT_EQ(0x77777777u, *(volatile uint32_t *)(self->c->bar2 + size - 4));
	EXPECT_EQ(0x77777777u, *(volatile uint32_t *)(self->c->bar2 + size - 4096));
	llmdev_ap_read(self->c, size - 4096 - MARGIN, self->after, MARGIN);
	EXPECT_EQ(-1, llmdev_memdiff(self->before, self->after, MARGIN));
}

/* the whole of HBM, with a sample read back */
TEST_F_TIMEOUT(scrub, whole_hbm, 600)
{
	uint64_t size, off, t0;
	uint32_t st;

	LLMDEV_REQUIRE(&self->cs);
	size = self->c->res[LLMDEV_BAR_HBM].size;
	t0 = llmdev_now_ns();
	program(self->c, 0, size, 0x5a5aa5a5);
	st = wait_idle_len(self->c, size);
	ASSERT_EQ(LLMDEV_SCRUB_STATUS_DONE, st);
	TH_LOG("%" PRIu64 " MiB scrubbed in %" PRIu64 " ms", size >> 20,
	       (llmdev_now_ns() - t0) / 1000000);
	for (off = 0; off < size; off += size / 64 + 4092)
		EXPECT_EQ(0x5a5aa5a5u, *(volatile uint32_t *)(self->c->bar2 + off))
			TH_LOG("HBM %#" PRIx64, off);
	EXPECT_EQ(size, llmdev_perf(self->c, LLMDEV_PERF_SCRUB_BYTES));
}

/*
 * A reset stops a running scrub after its chunk in progress (hardware.md
 * 2.6, 10.2): a scrub of all of HBM, then a reset at once, leaves the last
 * page as it was, and the engine idle.
 */
TEST_F_TIMEOUT(scrub, reset_stops_it, 120)
{
	uint64_t size, last;
	uint8_t want[4096], got[4096];

	LLMDEV_REQUIRE(&self->cs);
	size = self->c->res[LLMDEV_BAR_HBM].size;
	ASSERT_LT(16ull << 20, size);
	last = size - sizeof(want);
	llmdev_fill_random(want, sizeof(want), &self->seed);
	llmdev_ap_write(self->c, last, want, sizeof(want));
	program(self->c, 0, size, 0x5a5aa5a5);
	LLMDEV_RESET(self->c);
	EXPECT_EQ(0, llmdev_rd32(self->c, LLMDEV_REG_SCRUB_STATUS) &
		  LLMDEV_SCRUB_STATUS_BUSY);
	llmdev_ap_read(self->c, last, got, sizeof(got));
	EXPECT_EQ(-1, llmdev_memdiff(want, got, sizeof(want)))
		TH_LOG("the scrub went on to the end of HBM through the reset");
}

TEST_F_TIMEOUT(scrub, bad_range, 120)
{
	struct llmdev_card *c;
	uint64_t size;
	uint32_t seq = 0;
	size_t i;
	uint8_t pat[4096], got[4096];

	LLMDEV_REQUIRE(&self->cs);
	c = self->c;
	size = c->res[LLMDEV_BAR_HBM].size;
	{
		const struct { uint64_t addr, len; const char *why; } bad[] = {
			{ 0x1000 + 8, 4096, "address not aligned" },
			{ 0x1000, 4096 + 4, "length not a multiple of 4 KiB" },
			{ 0x1000, 0, "zero length" },
			{ size - 4096, 8192, "past the end" },
			{ size, 4096, "starting at the end" },
			{ ~0ull & ~4095ull, 8192, "wrapping 2^64" },
		};

		memset(pat, 0x42, sizeof(pat));
		llmdev_ap_write(c, 0x1000, pat, sizeof(pat));
		llmdev_ap_write(c, size - 4096, pat, sizeof(pat));
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++, seq++) {
			uint32_t st;

			program(c, bad[i].addr, bad[i].len, 0xbad0bad0);
			st = wait_idle(c);
			EXPECT_EQ(LLMDEV_SCRUB_STATUS_ERROR, st)
				TH_LOG("%s: status %#x", bad[i].why, st);
			EXPECT_EQ(seq + 1, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT))
				TH_LOG("%s", bad[i].why);
			EXPECT_ERR_LOGGED(c, seq, LLMDEV_ERR_SCRUB, LLMDEV_SRC_NONE);
		}
		llmdev_ap_read(c, 0x1000, got, sizeof(got));
		EXPECT_EQ(-1, llmdev_memdiff(pat, got, sizeof(got)));
		llmdev_ap_read(c, size - 4096, got, sizeof(got));
		EXPECT_EQ(-1, llmdev_memdiff(pat, got, sizeof(got)));
		EXPECT_EQ(0, llmdev_perf(c, LLMDEV_PERF_SCRUB_BYTES));
	}
	/* START clears ERROR; a good range works after bad ones */
	scrub_check(_metadata, self, 0x10000, 4096, 0x600d600d);
}

/*
 * A zero scrub of whole 2 MiB blocks may skip the blocks the model knows to
 * be zero: every way of writing HBM must make that knowledge go. The range
 * is zeroed first (so that what earlier tests wrote marks no block), then
 * each 2 MiB block is written by one way only - the aperture, a pattern
 * scrub or a host-to-card DMA, one page inside the block and its last page
 * - and the whole range is scrubbed with zero (once whole blocks, once with
 * partial blocks at both ends, written by the aperture); every written
 * spot must read zero. The second round writes each block the way another
 * one was written in the first.
 */
#define ZBLOCK		(2u << 20)
#define ZBASE		(8ull << 20)		/* 2 MiB aligned */
#define ZBLOCKS		6

enum zway { ZWAY_APERTURE, ZWAY_SCRUB, ZWAY_DMA, ZWAYS };

static const char * const zway_name[ZWAYS] = { "aperture", "pattern scrub", "DMA" };

static void ap_put64(struct llmdev_card *c, uint64_t off, uint64_t v)
{
	llmdev_ap_write(c, off, &v, sizeof(v));
}

static uint64_t ap_get64(struct llmdev_card *c, uint64_t off)
{
	uint64_t v;

	llmdev_ap_read(c, off, &v, sizeof(v));
	return v;
}

TEST_F_TIMEOUT(scrub, zero_after_writes, 120)
{
	struct llmdev_card *c = self->c;
	struct llmdev_uring ring;
	struct llmdev_dmabuf buf;
	uint16_t cmd = llmdev_cfg_read16(c, PCI_COMMAND);
	uint64_t spots[2 * ZBLOCKS + 2];
	unsigned int way[2 * ZBLOCKS + 2];
	unsigned int n = 0, i, j, round;
	char err[256];

	LLMDEV_REQUIRE(&self->cs);
	ASSERT_EQ(0, llmdev_uring_alloc(&ring, c, 0, 8)) TH_LOG("%s", ring.err);
	ASSERT_EQ(0, llmdev_dmabuf_alloc(&buf, LLMDEV_PAGE_SIZE, err, sizeof(err)))
		TH_LOG("%s", err);
	ASSERT_EQ(0, llmdev_cfg_write16(c, PCI_COMMAND, cmd | PCI_COMMAND_MASTER));
	llmdev_wr32(c, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_ENABLE);
	ASSERT_EQ(0, llmdev_uring_start(&ring)) TH_LOG("%s", ring.err);
	memset(buf.va, 0x99, LLMDEV_PAGE_SIZE);

	/* from the block below the range to the one above it: all zero */
	program(c, ZBASE - ZBLOCK, (ZBLOCKS + 2) * (uint64_t)ZBLOCK, 0);
	ASSERT_EQ(LLMDEV_SCRUB_STATUS_DONE, wait_idle_len(c, (ZBLOCKS + 2) * (uint64_t)ZBLOCK));

	for (round = 0; round < 2; round++) {
		uint64_t lo = round ? ZBASE - 8192 : ZBASE;
		uint64_t len = round ? ZBLOCKS * (uint64_t)ZBLOCK + 8192 + 4096 :
			       ZBLOCKS * (uint64_t)ZBLOCK;

		n = 0;
		for (i = 0; i < ZBLOCKS; i++) {
			uint64_t blk = ZBASE + (uint64_t)i * ZBLOCK;
			uint64_t page[2] = {
				blk + 4096 * (1 + llmdev_rand(&self->seed) % 500),
				blk + ZBLOCK - 4096,	/* the end of the block */
			};

			for (j = 0; j < 2; j++) {
				uint64_t at = page[j] + 4096 - 8;

				way[n] = (i + round) % ZWAYS;
				switch (way[n]) {
				case ZWAY_APERTURE:
					ap_put64(c, at, 0x1122334455667788ull);
					break;
				case ZWAY_SCRUB:
					program(c, page[j], 4096, 0xfeedf00d);
					ASSERT_EQ(LLMDEV_SCRUB_STATUS_DONE, wait_idle(c));
					break;
				default:
					ASSERT_LT(0, llmdev_uring_xfer(&ring, &buf, 0,
								       LLMDEV_PAGE_SIZE,
								       page[j]))
						TH_LOG("%s", ring.err);
					break;
				}
				ASSERT_NE(0, ap_get64(c, at))
					TH_LOG("block %u: nothing written by %s", i,
					       zway_name[way[n]]);
				spots[n++] = at;
			}
		}
		if (round) {
			/* and in the partial blocks at both ends */
			way[n] = ZWAY_APERTURE;
			spots[n++] = lo + 8;
			way[n] = ZWAY_APERTURE;
			spots[n++] = lo + len - 16;
			ap_put64(c, lo + 8, 0x5555);
			ap_put64(c, lo + len - 16, 0x6666);
		}
		program(c, lo, len, 0);
		ASSERT_EQ(LLMDEV_SCRUB_STATUS_DONE, wait_idle_len(c, len));
		for (i = 0; i < n; i++) {
			/* braces: the TH_LOG is a loop that follows the check */
			EXPECT_EQ(0, ap_get64(c, spots[i]))
				TH_LOG("round %u: HBM %#" PRIx64 " (written by %s) not zero",
				       round, spots[i], zway_name[way[i]]);
		}
	}
	llmdev_soft_reset(c);
	llmdev_cfg_write16(c, PCI_COMMAND, cmd);
	llmdev_uring_free(&ring);
	llmdev_dmabuf_free(&buf);
}

LLMDEV_HARNESS_MAIN
