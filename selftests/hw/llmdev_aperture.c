// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev HBM aperture (BAR 2): random data written and read back at the start,
 * the middle and the very end of HBM, with 1, 2, 4 and 8-byte accesses,
 * aligned and not, from an unaligned host buffer; byte order; and the
 * APERTURE_RD/WR_BYTES counters, which must grow by exactly the bytes moved.
 * All accesses are our own volatile loops (memcpy may use 16-byte SSE
 * accesses that QEMU splits, which would make the counts unpredictable).
 * Misaligned reads are counted loosely (between 1x and 2x): QEMU's TCG
 * splits a misaligned MMIO load into two aligned loads of the same size.
 * Misaligned stores are split into single bytes and count exactly.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "llmdev_test.h"

#define CHUNK	(64 * 1024)

FIXTURE(ap) {
	struct llmdev_cards cs;
	uint8_t *src, *dst;	/* CHUNK + 16 each: room for misaligning */
	uint64_t seed;
};

FIXTURE_SETUP(ap)
{
	LLMDEV_CARDS_SETUP(&self->cs);
	self->src = malloc(CHUNK + 16);
	self->dst = malloc(CHUNK + 16);
	ASSERT_NE(NULL, self->src);
	ASSERT_NE(NULL, self->dst);
	self->seed = llmdev_seed(0x4150455254555245ull);
	TH_LOG("seed %#" PRIx64 " (set LLMDEV_SEED to change)", self->seed);
}

FIXTURE_TEARDOWN(ap)
{
	free(self->src);
	free(self->dst);
	llmdev_cards_close(&self->cs);
}

/* width-byte accesses from/to an arbitrary (unaligned) host buffer */
static void ap_write_w(struct llmdev_card *c, uint64_t off, const uint8_t *p,
		       size_t len, unsigned int w)
{
	volatile uint8_t *a = c->bar2 + off;
	size_t i;

	for (i = 0; i + w <= len; i += w) {
		switch (w) {
		case 1: *(volatile uint8_t *)(a + i) = p[i]; break;
		case 2: { uint16_t v; memcpy(&v, p + i, 2); *(volatile uint16_t *)(a + i) = v; break; }
		case 4: { uint32_t v; memcpy(&v, p + i, 4); *(volatile uint32_t *)(a + i) = v; break; }
		case 8: { uint64_t v; memcpy(&v, p + i, 8); *(volatile uint64_t *)(a + i) = v; break; }
		}
	}
}

static void ap_read_w(struct llmdev_card *c, uint64_t off, uint8_t *p,
		      size_t len, unsigned int w)
{
	volatile uint8_t *a = c->bar2 + off;
	size_t i;

	for (i = 0; i + w <= len; i += w) {
		switch (w) {
		case 1: p[i] = *(volatile uint8_t *)(a + i); break;
		case 2: { uint16_t v = *(volatile uint16_t *)(a + i); memcpy(p + i, &v, 2); break; }
		case 4: { uint32_t v = *(volatile uint32_t *)(a + i); memcpy(p + i, &v, 4); break; }
		case 8: { uint64_t v = *(volatile uint64_t *)(a + i); memcpy(p + i, &v, 8); break; }
		}
	}
}

/*
 * Write len bytes at off with width w, read them back with width r, compare,
 * and check the counters moved by exactly len each way.
 */
static int check_rw(struct __test_metadata *_metadata, struct llmdev_card *c,
		    uint8_t *src, uint8_t *dst, uint64_t off, size_t len,
		    unsigned int w, unsigned int r, uint64_t *seed)
{
	uint64_t wr0, rd0;
	long diff;

	llmdev_fill_random(src, len, seed);
	memset(dst, 0, len);
	wr0 = llmdev_perf(c, LLMDEV_PERF_APERTURE_WR_BYTES);
	rd0 = llmdev_perf(c, LLMDEV_PERF_APERTURE_RD_BYTES);
	ap_write_w(c, off, src, len, w);
	EXPECT_EQ(wr0 + len, llmdev_perf(c, LLMDEV_PERF_APERTURE_WR_BYTES))
		TH_LOG("%s: write %zu bytes at %#" PRIx64 " by %u", c->bdf, len, off, w);
	EXPECT_EQ(rd0, llmdev_perf(c, LLMDEV_PERF_APERTURE_RD_BYTES));
	ap_read_w(c, off, dst, len, r);
	if (off % r == 0) {
		EXPECT_EQ(rd0 + len, llmdev_perf(c, LLMDEV_PERF_APERTURE_RD_BYTES))
			TH_LOG("%s: read %zu bytes at %#" PRIx64 " by %u", c->bdf, len, off, r);
	} else {
		/*
		 * TCG turns a misaligned MMIO load into the two aligned loads
		 * around it, so the card sees (and counts) twice the bytes.
		 */
		uint64_t got = llmdev_perf(c, LLMDEV_PERF_APERTURE_RD_BYTES) - rd0;

		EXPECT_LE(len, got);
		EXPECT_GE(2 * len, got);
	}
	EXPECT_EQ(wr0 + len, llmdev_perf(c, LLMDEV_PERF_APERTURE_WR_BYTES));
	diff = llmdev_memdiff(src, dst, len);
	EXPECT_EQ(-1, diff)
		TH_LOG("%s: HBM %#" PRIx64 " + %ld: wrote %#x (by %u) read %#x (by %u)",
		       c->bdf, off, diff, src[diff < 0 ? 0 : diff], w,
		       dst[diff < 0 ? 0 : diff], r);
	return diff == -1 ? 0 : -1;
}

static const unsigned int widths[] = { 1, 2, 4, 8 };

TEST_F_TIMEOUT(ap, start_middle_end, 120)
{
	int i;

	LLMDEV_REQUIRE(&self->cs);
	for (i = 0; i < self->cs.n; i++) {
		struct llmdev_card *c = &self->cs.card[i];
		uint64_t size = c->res[LLMDEV_BAR_HBM].size;
		uint64_t where[] = { 0, size / 2 - CHUNK / 2, size - CHUNK };
		size_t k, j;

		for (k = 0; k < 3; k++)
			for (j = 0; j < 4; j++) {
				/* the first card gets all widths, the others 8 */
				unsigned int w = i ? 8 : widths[j];
				size_t len = CHUNK;

				/* reading by another width checks the byte lanes */
				check_rw(_metadata, c, self->src + 1, self->dst + 3,
					 where[k] + CHUNK - len, len, w,
					 widths[(j + 1) % 4], &self->seed);
				if (i)
					break;
			}
	}
}

TEST_F(ap, last_bytes)
{
	struct llmdev_card *c;
	uint64_t size;
	unsigned int k;

	LLMDEV_REQUIRE(&self->cs);
	c = &self->cs.card[0];
	size = c->res[LLMDEV_BAR_HBM].size;
	for (k = 0; k < 4; k++) {
		unsigned int w = widths[k];

		check_rw(_metadata, c, self->src + 5, self->dst + 7, size - w, w,
			 w, w, &self->seed);
		/* an 8-byte-aligned tail read byte by byte */
		check_rw(_metadata, c, self->src, self->dst, size - 8, 8, w, 1,
			 &self->seed);
	}
	*(volatile uint8_t *)(c->bar2 + size - 1) = 0x5a;
	EXPECT_EQ(0x5a, *(volatile uint8_t *)(c->bar2 + size - 1));
}

TEST_F(ap, unaligned_access)
{
	static const unsigned int offs[] = { 1, 3, 5, 7 };
	struct llmdev_card *c;
	uint64_t size;
	size_t k, j;

	LLMDEV_REQUIRE(&self->cs);
	c = &self->cs.card[0];
	size = c->res[LLMDEV_BAR_HBM].size;
	for (k = 0; k < 4; k++)
		for (j = 1; j < 4; j++) {
			/* 2/4/8-byte accesses at odd addresses */
			check_rw(_metadata, c, self->src + k, self->dst + 1,
				 0x100000 + offs[k], 4096, widths[j], widths[j],
				 &self->seed);
			check_rw(_metadata, c, self->src + 1, self->dst + k,
				 size - 4096 - 16 + offs[k], 4096, widths[j], 1,
				 &self->seed);
		}
}

TEST_F(ap, byte_order)
{
	struct llmdev_card *c;
	uint8_t b[8];
	int k;

	LLMDEV_REQUIRE(&self->cs);
	c = &self->cs.card[0];
	*(volatile uint64_t *)(c->bar2 + 0x2000) = 0x0807060504030201ull;
	for (k = 0; k < 8; k++)
		b[k] = *(volatile uint8_t *)(c->bar2 + 0x2000 + k);
	for (k = 0; k < 8; k++)
		EXPECT_EQ(k + 1, b[k]);
	EXPECT_EQ(0x0403, *(volatile uint16_t *)(c->bar2 + 0x2002));
	EXPECT_EQ(0x08070605u, *(volatile uint32_t *)(c->bar2 + 0x2004));
	EXPECT_EQ(0x06050403u, *(volatile uint32_t *)(c->bar2 + 0x2002));
	*(volatile uint16_t *)(c->bar2 + 0x2003) = 0xaabb;
	EXPECT_EQ(0x080706aabb030201ull, *(volatile uint64_t *)(c->bar2 + 0x2000));
}

/* cards have their own HBM */
TEST_F(ap, cards_independent)
{
	int i;

	LLMDEV_REQUIRE(&self->cs);
	if (self->cs.n < 2)
		SKIP(return, "one card");
	for (i = 0; i < self->cs.n; i++)
		*(volatile uint64_t *)(self->cs.card[i].bar2 + 0x3000) =
			0x1111111111111111ull * (i + 1);
	for (i = 0; i < self->cs.n; i++)
		EXPECT_EQ(0x1111111111111111ull * (i + 1),
			  *(volatile uint64_t *)(self->cs.card[i].bar2 + 0x3000));
}

LLMDEV_HARNESS_MAIN
