// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev DMA rings, driven from userspace without a driver.
 *
 * The guest has no IOMMU, so a bus address is a physical address: buffers
 * are locked anonymous pages whose addresses come from /proc/self/pagemap
 * (root only). The descriptor ring, the completion ring and each SG table
 * sit in pages of their own; data buffers of more than one page use SGL
 * descriptors with one entry per page, as pages are not contiguous.
 *
 * The card only ever gets addresses of our own locked pages, or deliberately
 * invalid ones (beyond RAM: 1 << 46; MMIO: the card's own BAR 2). Every test
 * ends with a soft reset, which aborts all DMA, before the pages are freed.
 * Interrupts stay masked (IRQ_MASK all ones): there is no driver to take them.
 * Completions are polled with a 10 s bound.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <linux/pci_regs.h>

#include "kselftest_harness.h"
#include "llmdev_test.h"

#define BUF_LEN		((1u << 20) + 4 * LLMDEV_PAGE_SIZE)
#define BAD_ADDR	(1ull << 46)	/* far beyond the guest's RAM */
#define WAIT_MS		10000
#define GUARD		0xa5

FIXTURE(dma) {
	struct llmdev_cards cs;
	struct llmdev_card *c;
	struct llmdev_uring ring[LLMDEV_NUM_RINGS];
	struct llmdev_dmabuf src, dst;
	uint16_t cmd;
	uint64_t seed;
	uint64_t hbm_size;
};

static int start_card(struct llmdev_card *c, uint16_t *cmd)
{
	int ret;

	*cmd = llmdev_cfg_read16(c, PCI_COMMAND);
	ret = llmdev_soft_reset(c);
	if (ret)
		return ret;
	ret = llmdev_cfg_write16(c, PCI_COMMAND, *cmd | PCI_COMMAND_MASTER);
	if (ret)
		return ret;
	llmdev_wr32(c, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_ENABLE);
	return llmdev_rd32(c, LLMDEV_REG_IRQ_MASK) == 0xffffffffu ? 0 : -EIO;
}

FIXTURE_SETUP(dma)
{
	char err[256];
	unsigned int r;

	LLMDEV_CARDS_SETUP(&self->cs);
	self->c = &self->cs.card[0];
	self->hbm_size = self->c->res[LLMDEV_BAR_HBM].size;
	ASSERT_EQ(0, start_card(self->c, &self->cmd)) TH_LOG("%s", self->c->err);
	for (r = 0; r < LLMDEV_NUM_RINGS; r++)
		ASSERT_EQ(0, llmdev_uring_alloc(&self->ring[r], self->c, r,
						LLMDEV_RING_DEF_SIZE))
			TH_LOG("%s", self->ring[r].err);
	ASSERT_EQ(0, llmdev_dmabuf_alloc(&self->src, BUF_LEN, err, sizeof(err)))
		TH_LOG("%s", err);
	ASSERT_EQ(0, llmdev_dmabuf_alloc(&self->dst, BUF_LEN, err, sizeof(err)))
		TH_LOG("%s", err);
	self->seed = llmdev_seed(0x444d41ull);
}

FIXTURE_TEARDOWN(dma)
{
	unsigned int r;

	/* abort everything before the pages go back to the kernel */
	if (self->c) {
		llmdev_soft_reset(self->c);
		llmdev_cfg_write16(self->c, PCI_COMMAND, self->cmd);
	}
	for (r = 0; r < LLMDEV_NUM_RINGS; r++)
		llmdev_uring_free(&self->ring[r]);
	llmdev_dmabuf_free(&self->src);
	llmdev_dmabuf_free(&self->dst);
	llmdev_cards_close(&self->cs);
}

#define START_RING(r, sz) do {						\
	(r)->size = (sz);						\
	ASSERT_EQ(0, llmdev_uring_start(r)) TH_LOG("%s", (r)->err);	\
} while (0)

/* post one descriptor, ring, wait for its completion */
#define POST_WAIT(r, host, hbm, len, flags, sgc, ck, cp) do {		\
	llmdev_uring_post(r, host, hbm, len, flags, sgc, ck);		\
	llmdev_uring_doorbell(r);					\
	ASSERT_EQ(0, llmdev_uring_wait(r, cp, WAIT_MS)) TH_LOG("%s", (r)->err); \
	EXPECT_EQ((uint32_t)(ck), (cp)->cookie);			\
} while (0)

#define XFER(r, buf, off, len, hbm) \
	ASSERT_LT(0, llmdev_uring_xfer(r, buf, off, len, hbm)) TH_LOG("%s", (r)->err)

/* bytes outside [off, off + len) of the destination still hold GUARD */
static long guard_broken(struct llmdev_dmabuf *b, size_t off, size_t len)
{
	size_t i;

	for (i = 0; i < b->len; i++) {
		if (i == off)
			i += len;
		if (i < b->len && b->va[i] != GUARD)
			return i;
	}
	return -1;
}

static const size_t sizes[] = { 1, 7, 4096, 4097, 65536 + 3, 1 << 20 };

TEST_F_TIMEOUT(dma, roundtrip, 300)
{
	struct llmdev_card *c = self->c;
	uint64_t h2c_bytes = 0, c2h_bytes = 0, h2c_desc = 0, c2h_desc = 0;
	uint32_t doorbells = 0;
	unsigned int h, k, r;
	uint8_t *ap = malloc(1 << 20);

	LLMDEV_REQUIRE(&self->cs);
	ASSERT_NE(NULL, ap);
	for (r = 0; r < LLMDEV_NUM_RINGS; r++)
		START_RING(&self->ring[r], LLMDEV_RING_DEF_SIZE);

	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
		for (h = 0; h < LLMDEV_NUM_RINGS; h++) {
			/* every H2C ring with every C2H ring */
			struct llmdev_uring *in = &self->ring[h % 2];
			struct llmdev_uring *out = &self->ring[2 + h / 2];
			size_t len = sizes[k];
			size_t soff = (37 * k + 11 * h + 5) % LLMDEV_PAGE_SIZE;
			size_t doff = (53 * k + 7 * h + 3) % LLMDEV_PAGE_SIZE;
			uint64_t hbm = (2 * k + 1) * (1ull << 20) + 3 + 64 * h;
			int n;
			long d;

			llmdev_fill_random(self->src.va + soff, len, &self->seed);
			memset(self->dst.va, GUARD, self->dst.len);

			n = llmdev_uring_xfer(in, &self->src, soff, len, hbm);
			ASSERT_LT(0, n) TH_LOG("%s", in->err);
			h2c_desc += n;
			h2c_bytes += len;
			/* H2C on its own, checked through the aperture */
			if (len <= 65536 + 3) {
				llmdev_ap_read(c, hbm, ap, len);
				d = llmdev_memdiff(self->src.va + soff, ap, len);
				EXPECT_EQ(-1, d) TH_LOG("H2C ring %u, %zu bytes to HBM %#" PRIx64
							": HBM + %ld differs", in->n, len, hbm, d);
			}

			n = llmdev_uring_xfer(out, &self->dst, doff, len, hbm);
			ASSERT_LT(0, n) TH_LOG("%s", out->err);
			c2h_desc += n;
			c2h_bytes += len;
			d = llmdev_memdiff(self->src.va + soff, self->dst.va + doff, len);
			EXPECT_EQ(-1, d) TH_LOG("ring %u -> HBM %#" PRIx64 " -> ring %u, %zu bytes: byte %ld differs",
						in->n, hbm, out->n, len, d);
			d = guard_broken(&self->dst, doff, len);
			EXPECT_EQ(-1, d) TH_LOG("C2H ring %u, %zu bytes at +%zu wrote +%ld",
						out->n, len, doff, d);
		}

	for (r = 0; r < LLMDEV_NUM_RINGS; r++) {
		doorbells += self->ring[r].doorbells;
		EXPECT_EQ(self->ring[r].tail, llmdev_ring_rd(c, r, LLMDEV_RING_HEAD));
		EXPECT_EQ(self->ring[r].tail, llmdev_ring_rd(c, r, LLMDEV_RING_TAIL));
		EXPECT_EQ(self->ring[r].tail, llmdev_ring_rd(c, r, LLMDEV_RING_COMPLETED));
		EXPECT_EQ(LLMDEV_RING_STATUS_ENABLED, llmdev_ring_rd(c, r, LLMDEV_RING_STATUS));
	}
	/* the perf counters saw exactly what we moved */
	EXPECT_EQ(h2c_bytes, llmdev_perf(c, LLMDEV_PERF_H2C_BYTES));
	EXPECT_EQ(c2h_bytes, llmdev_perf(c, LLMDEV_PERF_C2H_BYTES));
	EXPECT_EQ(h2c_desc, llmdev_perf(c, LLMDEV_PERF_H2C_DESC));
	EXPECT_EQ(c2h_desc, llmdev_perf(c, LLMDEV_PERF_C2H_DESC));
	EXPECT_EQ(doorbells, llmdev_perf(c, LLMDEV_PERF_DOORBELLS));
	EXPECT_LT(0, llmdev_perf(c, LLMDEV_PERF_DMA_BUSY_NS));
	EXPECT_EQ(0, llmdev_perf(c, LLMDEV_PERF_IRQS));
	EXPECT_EQ(0, llmdev_perf(c, LLMDEV_PERF_ERRORS));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	TH_LOG("moved %" PRIu64 " + %" PRIu64 " bytes in %" PRIu64 " + %" PRIu64
	       " descriptors, %u doorbells, busy %" PRIu64 " ns",
	       h2c_bytes, c2h_bytes, h2c_desc, c2h_desc, doorbells,
	       llmdev_perf(c, LLMDEV_PERF_DMA_BUSY_NS));
	free(ap);
}

/* SIZE descriptors in flight at once, one doorbell */
TEST_F_TIMEOUT(dma, fill_ring, 120)
{
	struct llmdev_uring *in = &self->ring[0], *out = &self->ring[2];
	const uint32_t n = LLMDEV_RING_DEF_SIZE, each = LLMDEV_PAGE_SIZE / n;
	struct llmdev_hw_cmpl cp;
	uint32_t i;

	LLMDEV_REQUIRE(&self->cs);
	START_RING(in, n);
	START_RING(out, n);
	llmdev_fill_random(self->src.va, LLMDEV_PAGE_SIZE, &self->seed);
	memset(self->dst.va, GUARD, LLMDEV_PAGE_SIZE);

	/* descriptor i moves bytes [i*each, (i+1)*each) to HBM in reverse order */
	for (i = 0; i < n; i++)
		llmdev_uring_post(in, self->src.pa[0] + i * each,
				  0x10000 + (n - 1 - i) * each, each, 0, 0, 100 + i);
	llmdev_uring_doorbell(in);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, llmdev_uring_wait(in, &cp, WAIT_MS)) TH_LOG("%s", in->err);
		EXPECT_EQ(100 + i, cp.cookie);
		EXPECT_EQ(i, cp.desc_index);
		EXPECT_EQ(0, cp.status);
		EXPECT_EQ(each, cp.bytes);
		EXPECT_EQ(LLMDEV_CMPL_F_PHASE, cp.flags);
	}
	EXPECT_EQ(n, llmdev_ring_rd(self->c, 0, LLMDEV_RING_HEAD));
	EXPECT_EQ(0, llmdev_ring_rd(self->c, 0, LLMDEV_RING_STATUS) & LLMDEV_RING_STATUS_BUSY);

	/* and back, reversing again */
	for (i = 0; i < n; i++)
		llmdev_uring_post(out, self->dst.pa[0] + i * each,
				  0x10000 + (n - 1 - i) * each, each, 0, 0, 200 + i);
	llmdev_uring_doorbell(out);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, llmdev_uring_wait(out, &cp, WAIT_MS)) TH_LOG("%s", out->err);
		EXPECT_EQ(200 + i, cp.cookie);
		EXPECT_EQ(0, cp.status);
	}
	EXPECT_EQ(-1, llmdev_memdiff(self->src.va, self->dst.va, LLMDEV_PAGE_SIZE));
	EXPECT_EQ(2, llmdev_perf(self->c, LLMDEV_PERF_DOORBELLS));
}

/* more than SIZE descriptors in total: slots reused, phase flips each pass */
TEST_F_TIMEOUT(dma, wrap_around, 120)
{
	const uint32_t size = 4, total = 4 * 10 + 3, each = 512;
	struct llmdev_uring *rings[2] = { &self->ring[1], &self->ring[3] };
	struct llmdev_hw_cmpl cp;
	unsigned int d;

	LLMDEV_REQUIRE(&self->cs);
	llmdev_fill_random(self->src.va, total * each, &self->seed);
	memset(self->dst.va, GUARD, self->dst.len);
	for (d = 0; d < 2; d++) {
		struct llmdev_uring *r = rings[d];
		struct llmdev_dmabuf *b = d ? &self->dst : &self->src;
		uint32_t posted = 0, done = 0;

		START_RING(r, size);
		while (done < total) {
			/* batches of 1..size, crossing the end of the ring */
			uint32_t batch = 1 + llmdev_rand(&self->seed) % size, i;

			if (batch > total - posted)
				batch = total - posted;
			for (i = 0; i < batch; i++, posted++)
				llmdev_uring_post(r, llmdev_dmabuf_pa(b, posted * each),
						  0x40000 + posted * each, each, 0, 0,
						  0x1000 * d + posted);
			llmdev_uring_doorbell(r);
			for (i = 0; i < batch; i++, done++) {
				ASSERT_EQ(0, llmdev_uring_wait(r, &cp, WAIT_MS))
					TH_LOG("%s", r->err);
				EXPECT_EQ(0x1000 * d + done, cp.cookie);
				EXPECT_EQ(done, cp.desc_index);
				EXPECT_EQ(0, cp.status);
				EXPECT_EQ(llmdev_uring_phase(r, done), cp.flags & LLMDEV_CMPL_F_PHASE)
					TH_LOG("completion %u", done);
			}
		}
		EXPECT_EQ(total, llmdev_ring_rd(self->c, r->n, LLMDEV_RING_HEAD));
		EXPECT_EQ(total, llmdev_ring_rd(self->c, r->n, LLMDEV_RING_COMPLETED));
	}
	EXPECT_EQ(-1, llmdev_memdiff(self->src.va, self->dst.va, total * each));
}

/* a failed descriptor: its status, the log, no data moved, the ring goes on */
#define EXPECT_FAILED_DESC(c, r, cp, code, seq) do {			\
	EXPECT_EQ((uint16_t)(code), (cp)->status)			\
		TH_LOG("status %u, want %u", (cp)->status, code);	\
	EXPECT_EQ(0, (cp)->bytes);					\
	EXPECT_ERR_LOGGED(c, seq, code, LLMDEV_SRC((r)->n, (cp)->desc_index % (r)->size)); \
	EXPECT_EQ((uint32_t)(code), llmdev_ring_rd(c, (r)->n, LLMDEV_RING_ERR_CODE)); \
	EXPECT_EQ(0, llmdev_ring_rd(c, (r)->n, LLMDEV_RING_STATUS) & LLMDEV_RING_STATUS_HALTED); \
} while (0)

TEST_F_TIMEOUT(dma, bad_host_addr, 120)
{
	struct llmdev_card *c = self->c;
	struct llmdev_uring *in = &self->ring[0], *out = &self->ring[2];
	volatile struct llmdev_hw_sg *sg;
	struct llmdev_hw_cmpl cp;
	uint8_t pat[4096], got[4096];
	uint32_t seq = 0;

	LLMDEV_REQUIRE(&self->cs);
	START_RING(in, 8);
	START_RING(out, 8);
	memset(pat, 0x3c, sizeof(pat));
	llmdev_ap_write(c, 0x20000, pat, sizeof(pat));

	/* H2C from beyond RAM */
	POST_WAIT(in, BAD_ADDR, 0x20000, 4096, 0, 0, 1, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_HOST_ADDR, seq);
	EXPECT_EQ((uint64_t)(BAD_ADDR), llmdev_log_rd64(c, seq, LLMDEV_ERR_LOG_ADDR));
	seq++;
	llmdev_ap_read(c, 0x20000, got, sizeof(got));
	EXPECT_EQ(-1, llmdev_memdiff(pat, got, sizeof(got)));
	/* failed descriptors raise the ring source (and error), masked */
	EXPECT_EQ(LLMDEV_IRQ_RING(0) | LLMDEV_IRQ_ERROR,
		  llmdev_rd32(c, LLMDEV_REG_IRQ_STATUS));
	EXPECT_EQ(0, llmdev_perf(c, LLMDEV_PERF_IRQS));

	/* the ring goes on: the next good descriptor works */
	llmdev_fill_random(self->src.va, 4096, &self->seed);
	POST_WAIT(in, self->src.pa[0], 0x20000, 4096, 0, 0, 2, &cp);
	EXPECT_EQ(0, cp.status);
	EXPECT_EQ(4096, cp.bytes);
	llmdev_ap_read(c, 0x20000, got, sizeof(got));
	EXPECT_EQ(-1, llmdev_memdiff(self->src.va, got, sizeof(got)));

	/* H2C from MMIO: the card's own HBM aperture is not host RAM */
	POST_WAIT(in, c->res[LLMDEV_BAR_HBM].start, 0x20000, 4096, 0, 0, 3, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_HOST_ADDR, seq);
	EXPECT_EQ((uint64_t)(c->res[LLMDEV_BAR_HBM].start), llmdev_log_rd64(c, seq, LLMDEV_ERR_LOG_ADDR));
	seq++;

	/* C2H to beyond RAM */
	POST_WAIT(out, BAD_ADDR, 0x20000, 4096, 0, 0, 5, &cp);
	EXPECT_FAILED_DESC(c, out, &cp, LLMDEV_ERR_HOST_ADDR, seq);
	EXPECT_EQ((uint64_t)(BAD_ADDR), llmdev_log_rd64(c, seq, LLMDEV_ERR_LOG_ADDR));
	seq++;

	/* SGL C2H: first page good, second bad: nothing written at all */
	memset(self->dst.va, GUARD, self->dst.len);
	sg = (volatile struct llmdev_hw_sg *)out->sg.va;
	sg[0].addr = self->dst.pa[0];
	sg[0].length = 4096;
	sg[0].reserved = 0;
	sg[1].addr = BAD_ADDR;
	sg[1].length = 4096;
	sg[1].reserved = 0;
	POST_WAIT(out, out->sg.pa[0], 0x20000, 8192, LLMDEV_DESC_F_SGL, 2, 6, &cp);
	EXPECT_FAILED_DESC(c, out, &cp, LLMDEV_ERR_HOST_ADDR, seq);
	EXPECT_EQ((uint64_t)(BAD_ADDR), llmdev_log_rd64(c, seq, LLMDEV_ERR_LOG_ADDR));
	seq++;
	EXPECT_EQ(-1, guard_broken(&self->dst, 0, 0));

	/* and C2H still works */
	POST_WAIT(out, self->dst.pa[0], 0x20000, 4096, 0, 0, 7, &cp);
	EXPECT_EQ(0, cp.status);
	EXPECT_EQ(-1, llmdev_memdiff(self->src.va, self->dst.va, 4096));

	EXPECT_EQ(seq, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	EXPECT_EQ(seq, llmdev_perf(c, LLMDEV_PERF_ERRORS));
	/* failed descriptors count as processed, but move no bytes */
	EXPECT_EQ(3, llmdev_perf(c, LLMDEV_PERF_H2C_DESC));
	EXPECT_EQ(3, llmdev_perf(c, LLMDEV_PERF_C2H_DESC));
	EXPECT_EQ(4096, llmdev_perf(c, LLMDEV_PERF_H2C_BYTES));
	EXPECT_EQ(4096, llmdev_perf(c, LLMDEV_PERF_C2H_BYTES));
}

TEST_F_TIMEOUT(dma, hbm_range, 120)
{
	struct llmdev_card *c = self->c;
	struct llmdev_uring *in = &self->ring[1], *out = &self->ring[3];
	struct llmdev_hw_cmpl cp;
	uint64_t sz = self->hbm_size;
	uint32_t seq = 0;

	LLMDEV_REQUIRE(&self->cs);
	START_RING(in, 8);
	START_RING(out, 8);
	llmdev_fill_random(self->src.va, 4096, &self->seed);

	/* hbm_addr + length wraps around 2^64 */
	POST_WAIT(in, self->src.pa[0], ~0ull - 100, 4096, 0, 0, 1, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_HBM_RANGE, seq);
	EXPECT_EQ((uint64_t)(~0ull - 100), llmdev_log_rd64(c, seq, LLMDEV_ERR_LOG_ADDR));
	seq++;
	/* one byte past the end */
	POST_WAIT(in, self->src.pa[0], sz - 4095, 4096, 0, 0, 2, &cp);
	EXPECT_EQ(LLMDEV_ERR_HBM_RANGE, cp.status);
	seq++;
	/* starting at the end */
	POST_WAIT(in, self->src.pa[0], sz, 1, 0, 0, 3, &cp);
	EXPECT_EQ(LLMDEV_ERR_HBM_RANGE, cp.status);
	seq++;
	/* exactly the last 4 KiB is fine, both ways */
	POST_WAIT(in, self->src.pa[0], sz - 4096, 4096, 0, 0, 4, &cp);
	EXPECT_EQ(0, cp.status);
	memset(self->dst.va, GUARD, self->dst.len);
	POST_WAIT(out, self->dst.pa[0], sz - 4096, 4096, 0, 0, 5, &cp);
	EXPECT_EQ(0, cp.status);
	EXPECT_EQ(-1, llmdev_memdiff(self->src.va, self->dst.va, 4096));
	/* C2H out of range writes nothing */
	memset(self->dst.va, GUARD, self->dst.len);
	POST_WAIT(out, self->dst.pa[0], sz - 2048, 4096, 0, 0, 6, &cp);
	EXPECT_FAILED_DESC(c, out, &cp, LLMDEV_ERR_HBM_RANGE, seq);
	EXPECT_EQ((uint64_t)(sz - 2048), llmdev_log_rd64(c, seq, LLMDEV_ERR_LOG_ADDR));
	seq++;
	EXPECT_EQ(-1, guard_broken(&self->dst, 0, 0));
	EXPECT_EQ(seq, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
}

TEST_F_TIMEOUT(dma, desc_format, 120)
{
	struct llmdev_card *c = self->c;
	struct llmdev_uring *in = &self->ring[0];
	volatile struct llmdev_hw_sg *sg;
	struct llmdev_hw_cmpl cp;
	uint32_t seq = 0;

	LLMDEV_REQUIRE(&self->cs);
	START_RING(in, 16);
	sg = (volatile struct llmdev_hw_sg *)in->sg.va;

	/* zero length */
	POST_WAIT(in, self->src.pa[0], 0, 0, 0, 0, 1, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_DESC_FORMAT, seq);
	seq++;
	/* unknown flag */
	POST_WAIT(in, self->src.pa[0], 0, 64, 1u << 7, 0, 2, &cp);
	EXPECT_EQ(LLMDEV_ERR_DESC_FORMAT, cp.status);
	seq++;
	/* SGL with no entries, and with too many */
	POST_WAIT(in, in->sg.pa[0], 0, 64, LLMDEV_DESC_F_SGL, 0, 3, &cp);
	EXPECT_EQ(LLMDEV_ERR_DESC_FORMAT, cp.status);
	seq++;
	POST_WAIT(in, in->sg.pa[0], 0, 64, LLMDEV_DESC_F_SGL, LLMDEV_DESC_MAX_SG + 1, 4, &cp);
	EXPECT_EQ(LLMDEV_ERR_DESC_FORMAT, cp.status);
	seq++;
	/* SG entries: reserved set, zero length, lengths not adding up */
	sg[0].addr = self->src.pa[0];
	sg[0].length = 64;
	sg[0].reserved = 1;
	POST_WAIT(in, in->sg.pa[0], 0, 64, LLMDEV_DESC_F_SGL, 1, 5, &cp);
	EXPECT_EQ(LLMDEV_ERR_DESC_FORMAT, cp.status);
	seq++;
	sg[0].reserved = 0;
	sg[0].length = 0;
	POST_WAIT(in, in->sg.pa[0], 0, 64, LLMDEV_DESC_F_SGL, 1, 6, &cp);
	EXPECT_EQ(LLMDEV_ERR_DESC_FORMAT, cp.status);
	seq++;
	sg[0].length = 32;
	POST_WAIT(in, in->sg.pa[0], 0, 64, LLMDEV_DESC_F_SGL, 1, 7, &cp);
	EXPECT_EQ(LLMDEV_ERR_DESC_FORMAT, cp.status);
	seq++;
	/*
	 * more than length at the first entry: check 10 there, before the
	 * entry's memory is looked at (it is not RAM)
	 */
	sg[0].addr = BAD_ADDR;
	sg[0].length = 128;
	POST_WAIT(in, in->sg.pa[0], 0, 64, LLMDEV_DESC_F_SGL, 1, 17, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_DESC_FORMAT, seq);
	EXPECT_EQ(0, llmdev_log_rd64(c, seq, LLMDEV_ERR_LOG_ADDR));
	seq++;
	sg[0].addr = self->src.pa[0];
	/* SG table not in RAM: descriptor fails, ring not halted */
	POST_WAIT(in, BAD_ADDR, 0, 64, LLMDEV_DESC_F_SGL, 1, 8, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_DESC_FETCH, seq);
	EXPECT_EQ((uint64_t)(BAD_ADDR), llmdev_log_rd64(c, seq, LLMDEV_ERR_LOG_ADDR));
	seq++;
	/* a good SGL after all that */
	sg[0].length = 64;
	llmdev_fill_random(self->src.va, 64, &self->seed);
	POST_WAIT(in, in->sg.pa[0], 0x800, 64, LLMDEV_DESC_F_SGL, 1, 9, &cp);
	EXPECT_EQ(0, cp.status);
	EXPECT_EQ(64, cp.bytes);
	EXPECT_EQ(*(uint64_t *)self->src.va, *(volatile uint64_t *)(c->bar2 + 0x800));
	EXPECT_EQ(seq, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	EXPECT_EQ(10, llmdev_perf(c, LLMDEV_PERF_H2C_DESC));
	EXPECT_EQ(64, llmdev_perf(c, LLMDEV_PERF_H2C_BYTES));
}

/*
 * Vector descriptors (spec 1.2, 4.2.1): one descriptor moves many blocks,
 * each between a host buffer and an HBM range of its own, scattered both
 * ways; every entry is checked before anything moves.
 */
#define VEC_N		64

static void vec_block(unsigned int k, size_t *off, uint32_t *len, uint64_t *hbm)
{
	*off = (37u * k) % 512;
	*len = 1 + (211u * k) % 3500;
	/* HBM slots in a scattered order, 4 KiB apart; never overlapping */
	*hbm = 0x100000 + (uint64_t)((k * 23u) % VEC_N) * 4096 + (7u * k) % 64;
}

static void vec_set(volatile struct llmdev_hw_vec *v, uint64_t host,
		    uint64_t hbm, uint32_t len)
{
	v->host_addr = host;
	v->hbm_addr = hbm;
	v->length = len;
	v->reserved = 0;
}

TEST_F_TIMEOUT(dma, vector, 120)
{
	struct llmdev_card *c = self->c;
	struct llmdev_uring *in = &self->ring[1], *out = &self->ring[2];
	volatile struct llmdev_hw_vec *vi, *vo;
	struct llmdev_hw_cmpl cp;
	uint32_t total = 0, len;
	uint8_t got[4096];
	unsigned int k;
	uint64_t hbm;
	size_t off;
	long d;

	LLMDEV_REQUIRE(&self->cs);
	ASSERT_NE(0, llmdev_rd32(c, LLMDEV_REG_CAPS) & LLMDEV_CAPS_DESC_VEC);
	START_RING(in, 8);
	START_RING(out, 8);
	vi = (volatile struct llmdev_hw_vec *)in->sg.va;
	vo = (volatile struct llmdev_hw_vec *)out->sg.va;
	llmdev_fill_random(self->src.va, VEC_N * LLMDEV_PAGE_SIZE, &self->seed);
	memset(self->dst.va, GUARD, self->dst.len);
	for (k = 0; k < VEC_N; k++) {
		vec_block(k, &off, &len, &hbm);
		vec_set(&vi[k], self->src.pa[k] + off, hbm, len);
		/* back in another order: entry k brings block VEC_N - 1 - k */
		vec_block(VEC_N - 1 - k, &off, &len, &hbm);
		vec_set(&vo[k], self->dst.pa[VEC_N - 1 - k] + off, hbm, len);
		total += len;
	}
	POST_WAIT(in, in->sg.pa[0], 0, total, LLMDEV_DESC_F_VEC, VEC_N, 1, &cp);
	EXPECT_EQ(0, cp.status);
	EXPECT_EQ(total, cp.bytes);
	for (k = 0; k < VEC_N; k++) {
		vec_block(k, &off, &len, &hbm);
		llmdev_ap_read(c, hbm, got, len);
		d = llmdev_memdiff(self->src.va + k * LLMDEV_PAGE_SIZE + off, got, len);
		EXPECT_EQ(-1, d) TH_LOG("entry %u: HBM %#" PRIx64 " + %ld differs", k, hbm, d);
	}
	POST_WAIT(out, out->sg.pa[0], 0, total, LLMDEV_DESC_F_VEC, VEC_N, 2, &cp);
	EXPECT_EQ(0, cp.status);
	EXPECT_EQ(total, cp.bytes);
	for (k = 0; k < VEC_N; k++) {
		size_t p = k * LLMDEV_PAGE_SIZE;

		vec_block(k, &off, &len, &hbm);
		d = llmdev_memdiff(self->src.va + p + off, self->dst.va + p + off, len);
		EXPECT_EQ(-1, d) TH_LOG("entry for block %u: byte %ld differs", k, d);
		/* nothing but the blocks was written */
		memset(self->dst.va + p + off, GUARD, len);
	}
	EXPECT_EQ(-1, guard_broken(&self->dst, 0, 0));
	/* one descriptor each way, every byte counted */
	EXPECT_EQ(1, llmdev_perf(c, LLMDEV_PERF_H2C_DESC));
	EXPECT_EQ(1, llmdev_perf(c, LLMDEV_PERF_C2H_DESC));
	EXPECT_EQ(total, llmdev_perf(c, LLMDEV_PERF_H2C_BYTES));
	EXPECT_EQ(total, llmdev_perf(c, LLMDEV_PERF_C2H_BYTES));

	/* entries that overlap in HBM: the later one's data stays */
	vec_set(&vi[0], self->src.pa[0], 0x9000, 64);
	vec_set(&vi[1], self->src.pa[1], 0x9000, 64);
	POST_WAIT(in, in->sg.pa[0], 0, 128, LLMDEV_DESC_F_VEC, 2, 3, &cp);
	EXPECT_EQ(0, cp.status);
	llmdev_ap_read(c, 0x9000, got, 64);
	EXPECT_EQ(-1, llmdev_memdiff(self->src.va + LLMDEV_PAGE_SIZE, got, 64));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
}

TEST_F_TIMEOUT(dma, vector_format, 120)
{
	struct llmdev_card *c = self->c;
	struct llmdev_uring *in = &self->ring[0], *out = &self->ring[3];
	uint64_t tpa = in->sg.pa[0], sz = self->hbm_size;
	volatile struct llmdev_hw_vec *v, *vo;
	struct llmdev_hw_cmpl cp;
	uint32_t seq = 0;

	LLMDEV_REQUIRE(&self->cs);
	START_RING(in, 32);
	START_RING(out, 8);
	v = (volatile struct llmdev_hw_vec *)in->sg.va;
	vo = (volatile struct llmdev_hw_vec *)out->sg.va;
	vec_set(&v[0], self->src.pa[0], 0x1000, 64);
	vec_set(&v[1], self->src.pa[1], 0x3000, 64);

	/* VEC and SGL together; VEC with an hbm_addr */
	POST_WAIT(in, tpa, 0, 128, LLMDEV_DESC_F_VEC | LLMDEV_DESC_F_SGL, 2, 1, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_DESC_FORMAT, seq);
	seq++;
	POST_WAIT(in, tpa, 0x1000, 128, LLMDEV_DESC_F_VEC, 2, 2, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_DESC_FORMAT, seq);
	seq++;
	/* no entries, too many */
	POST_WAIT(in, tpa, 0, 128, LLMDEV_DESC_F_VEC, 0, 3, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_DESC_FORMAT, seq);
	seq++;
	POST_WAIT(in, tpa, 0, 128, LLMDEV_DESC_F_VEC, LLMDEV_DESC_MAX_SG + 1, 4, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_DESC_FORMAT, seq);
	seq++;
	/* the table not in RAM: the descriptor fails, the ring goes on */
	POST_WAIT(in, BAD_ADDR, 0, 128, LLMDEV_DESC_F_VEC, 2, 5, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_DESC_FETCH, seq);
	EXPECT_EQ((uint64_t)BAD_ADDR, llmdev_log_rd64(c, seq, LLMDEV_ERR_LOG_ADDR));
	seq++;
	/* entry 1 reserved, then of length 0: logged at the entry */
	v[1].reserved = 1;
	POST_WAIT(in, tpa, 0, 128, LLMDEV_DESC_F_VEC, 2, 6, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_DESC_FORMAT, seq);
	EXPECT_EQ(tpa + LLMDEV_VEC_SIZE, llmdev_log_rd64(c, seq, LLMDEV_ERR_LOG_ADDR));
	seq++;
	v[1].reserved = 0;
	v[1].length = 0;
	POST_WAIT(in, tpa, 0, 128, LLMDEV_DESC_F_VEC, 2, 7, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_DESC_FORMAT, seq);
	seq++;
	/* entry 1 past the end of HBM (check 8a), and wrapping around 2^64 */
	vec_set(&v[1], self->src.pa[1], sz - 32, 64);
	POST_WAIT(in, tpa, 0, 128, LLMDEV_DESC_F_VEC, 2, 8, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_HBM_RANGE, seq);
	EXPECT_EQ(sz - 32, llmdev_log_rd64(c, seq, LLMDEV_ERR_LOG_ADDR));
	seq++;
	v[1].hbm_addr = ~0ull - 10;
	POST_WAIT(in, tpa, 0, 128, LLMDEV_DESC_F_VEC, 2, 9, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_HBM_RANGE, seq);
	seq++;
	/* entry 1's host memory not RAM */
	vec_set(&v[1], BAD_ADDR, 0x3000, 64);
	POST_WAIT(in, tpa, 0, 128, LLMDEV_DESC_F_VEC, 2, 10, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_HOST_ADDR, seq);
	EXPECT_EQ((uint64_t)BAD_ADDR, llmdev_log_rd64(c, seq, LLMDEV_ERR_LOG_ADDR));
	seq++;
	/* lengths passing length at entry 1: check 10 before its memory */
	POST_WAIT(in, tpa, 0, 100, LLMDEV_DESC_F_VEC, 2, 11, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_DESC_FORMAT, seq);
	EXPECT_EQ(0, llmdev_log_rd64(c, seq, LLMDEV_ERR_LOG_ADDR));
	seq++;
	/* and short of it */
	vec_set(&v[1], self->src.pa[1], 0x3000, 64);
	POST_WAIT(in, tpa, 0, 129, LLMDEV_DESC_F_VEC, 2, 12, &cp);
	EXPECT_FAILED_DESC(c, in, &cp, LLMDEV_ERR_DESC_FORMAT, seq);
	seq++;

	/* C2H: entry 0 good, entry 1 beyond HBM: nothing written at all */
	memset(self->dst.va, GUARD, self->dst.len);
	vec_set(&vo[0], self->dst.pa[0], 0x1000, 64);
	vec_set(&vo[1], self->dst.pa[1], sz, 64);
	POST_WAIT(out, out->sg.pa[0], 0, 128, LLMDEV_DESC_F_VEC, 2, 13, &cp);
	EXPECT_FAILED_DESC(c, out, &cp, LLMDEV_ERR_HBM_RANGE, seq);
	seq++;
	EXPECT_EQ(-1, guard_broken(&self->dst, 0, 0));

	/* the good vector after all that */
	llmdev_fill_random(self->src.va, 2 * LLMDEV_PAGE_SIZE, &self->seed);
	POST_WAIT(in, tpa, 0, 128, LLMDEV_DESC_F_VEC, 2, 14, &cp);
	EXPECT_EQ(0, cp.status);
	EXPECT_EQ(128, cp.bytes);
	vo[1].hbm_addr = 0x3000;
	POST_WAIT(out, out->sg.pa[0], 0, 128, LLMDEV_DESC_F_VEC, 2, 15, &cp);
	EXPECT_EQ(0, cp.status);
	EXPECT_EQ(-1, llmdev_memdiff(self->src.va, self->dst.va, 64));
	EXPECT_EQ(-1, llmdev_memdiff(self->src.va + LLMDEV_PAGE_SIZE,
				     self->dst.va + LLMDEV_PAGE_SIZE, 64));
	EXPECT_EQ(seq, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	EXPECT_EQ(128, llmdev_perf(c, LLMDEV_PERF_H2C_BYTES));
}

TEST_F_TIMEOUT(dma, fail_next_desc, 120)
{
	struct llmdev_card *c = self->c;
	struct llmdev_uring *out = &self->ring[2];
	struct llmdev_hw_cmpl cp;

	LLMDEV_REQUIRE(&self->cs);
	START_RING(out, 8);
	memset(self->dst.va, GUARD, self->dst.len);
	llmdev_wr32(c, LLMDEV_REG_FAULT_INJECT, LLMDEV_FAULT_FAIL_NEXT_DESC);
	llmdev_uring_post(out, self->dst.pa[0], 0, 4096, 0, 0, 1);
	llmdev_uring_post(out, self->dst.pa[1], 0, 4096, 0, 0, 2);
	llmdev_uring_doorbell(out);
	ASSERT_EQ(0, llmdev_uring_wait(out, &cp, WAIT_MS)) TH_LOG("%s", out->err);
	EXPECT_EQ(1, cp.cookie);
	EXPECT_FAILED_DESC(c, out, &cp, LLMDEV_ERR_INJECTED, 0);
	ASSERT_EQ(0, llmdev_uring_wait(out, &cp, WAIT_MS)) TH_LOG("%s", out->err);
	EXPECT_EQ(2, cp.cookie);
	EXPECT_EQ(0, cp.status);
	EXPECT_EQ(4096, cp.bytes);
	/* used once, then cleared */
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_FAULT_INJECT));
	EXPECT_EQ(1, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	/* the failed one did not write the host page */
	EXPECT_EQ(-1, guard_broken(&self->dst, 4096, 4096));
}

TEST_F_TIMEOUT(dma, stall_ring, 120)
{
	struct llmdev_card *c = self->c;
	struct llmdev_uring *in = &self->ring[1], *other = &self->ring[0];
	struct llmdev_hw_cmpl cp;
	uint32_t st, i;

	LLMDEV_REQUIRE(&self->cs);
	START_RING(in, 8);
	START_RING(other, 8);
	llmdev_wr32(c, LLMDEV_REG_FAULT_INJECT, LLMDEV_FAULT_STALL_RING(1));
	EXPECT_NE(0, llmdev_ring_rd(c, 1, LLMDEV_RING_STATUS) & LLMDEV_RING_STATUS_STALLED);
	for (i = 0; i < 3; i++)
		llmdev_uring_post(in, self->src.pa[i], 0x1000 * i, 4096, 0, 0, 10 + i);
	llmdev_uring_doorbell(in);
	llmdev_sleep_ms(300);
	EXPECT_EQ(0, llmdev_ring_rd(c, 1, LLMDEV_RING_HEAD));
	EXPECT_EQ(3, llmdev_ring_rd(c, 1, LLMDEV_RING_TAIL));
	EXPECT_EQ(0, llmdev_ring_rd(c, 1, LLMDEV_RING_COMPLETED));
	st = llmdev_ring_rd(c, 1, LLMDEV_RING_STATUS);
	EXPECT_EQ(LLMDEV_RING_STATUS_ENABLED | LLMDEV_RING_STATUS_BUSY |
		  LLMDEV_RING_STATUS_STALLED, st);
	EXPECT_EQ(0, ((volatile struct llmdev_hw_cmpl *)in->cmpl.va)->flags);

	/* other rings are not stalled */
	POST_WAIT(other, self->src.pa[4], 0x8000, 64, 0, 0, 99, &cp);
	EXPECT_EQ(0, cp.status);

	llmdev_wr32(c, LLMDEV_REG_FAULT_INJECT, 0);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, llmdev_uring_wait(in, &cp, WAIT_MS)) TH_LOG("%s", in->err);
		EXPECT_EQ(10 + i, cp.cookie);
		EXPECT_EQ(0, cp.status);
	}
	EXPECT_EQ(3, llmdev_ring_rd(c, 1, LLMDEV_RING_HEAD));
	EXPECT_EQ(LLMDEV_RING_STATUS_ENABLED, llmdev_ring_rd(c, 1, LLMDEV_RING_STATUS));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
}

TEST_F_TIMEOUT(dma, doorbell_errors, 120)
{
	struct llmdev_card *c = self->c;
	struct llmdev_uring *in = &self->ring[0];
	struct llmdev_hw_cmpl cp;
	uint32_t seq = 0, i, db;

	LLMDEV_REQUIRE(&self->cs);
	START_RING(in, 8);

	/* more than SIZE beyond HEAD: ignored, logged */
	llmdev_ring_wr(c, 0, LLMDEV_RING_TAIL, 9);
	EXPECT_EQ(0, llmdev_ring_rd(c, 0, LLMDEV_RING_TAIL));
	EXPECT_EQ(LLMDEV_ERR_DOORBELL, llmdev_log_rd32(c, seq, LLMDEV_ERR_LOG_CODE));
	EXPECT_EQ(0u, llmdev_log_rd32(c, seq, LLMDEV_ERR_LOG_SOURCE) >> 16);
	seq++;
	/* "behind" HEAD is far ahead in u32 arithmetic */
	llmdev_ring_wr(c, 0, LLMDEV_RING_TAIL, 0xffffffff);
	EXPECT_EQ(0, llmdev_ring_rd(c, 0, LLMDEV_RING_TAIL));
	seq++;
	EXPECT_EQ(seq, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	EXPECT_NE(0, llmdev_rd32(c, LLMDEV_REG_ERR_STATUS) & (1u << LLMDEV_ERR_DOORBELL));
	EXPECT_EQ(0, llmdev_perf(c, LLMDEV_PERF_DOORBELLS));
	EXPECT_EQ(0, llmdev_ring_rd(c, 0, LLMDEV_RING_HEAD));

	/* exactly SIZE is fine */
	llmdev_fill_random(self->src.va, 8 * 512, &self->seed);
	for (i = 0; i < 8; i++)
		llmdev_uring_post(in, self->src.pa[0] + 512 * i, 0x30000 + 512 * i,
				  512, 0, 0, i);
	llmdev_uring_doorbell(in);
	for (i = 0; i < 8; i++) {
		ASSERT_EQ(0, llmdev_uring_wait(in, &cp, WAIT_MS)) TH_LOG("%s", in->err);
		EXPECT_EQ(0, cp.status);
	}
	EXPECT_EQ(1, llmdev_perf(c, LLMDEV_PERF_DOORBELLS));
	/* with HEAD at 8: 17 is too far, 16 is not */
	llmdev_ring_wr(c, 0, LLMDEV_RING_TAIL, 17);
	EXPECT_EQ(8, llmdev_ring_rd(c, 0, LLMDEV_RING_TAIL));
	seq++;
	llmdev_ring_wr(c, 0, LLMDEV_RING_TAIL, 7);
	EXPECT_EQ(8, llmdev_ring_rd(c, 0, LLMDEV_RING_TAIL));
	seq++;
	EXPECT_EQ(seq, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));

	/* a doorbell on a ring that is not enabled */
	db = llmdev_perf(c, LLMDEV_PERF_DOORBELLS);
	llmdev_ring_wr(c, 3, LLMDEV_RING_TAIL, 1);
	EXPECT_EQ(0, llmdev_ring_rd(c, 3, LLMDEV_RING_TAIL));
	EXPECT_EQ(LLMDEV_ERR_DOORBELL, llmdev_log_rd32(c, seq, LLMDEV_ERR_LOG_CODE));
	EXPECT_EQ(3u, llmdev_log_rd32(c, seq, LLMDEV_ERR_LOG_SOURCE) >> 16);
	seq++;
	EXPECT_EQ(seq, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	EXPECT_EQ(db, llmdev_perf(c, LLMDEV_PERF_DOORBELLS));

	/* the ring still works */
	POST_WAIT(in, self->src.pa[1], 0x38000, 100, 0, 0, 77, &cp);
	EXPECT_EQ(0, cp.status);
	EXPECT_EQ(8, cp.desc_index);
	EXPECT_EQ(*(uint64_t *)(self->src.va + 4096), *(volatile uint64_t *)(c->bar2 + 0x38000));
}

/* wait until the ring reports HALTED */
static uint32_t wait_halted(struct llmdev_card *c, unsigned int r)
{
	uint64_t end = llmdev_now_ns() + WAIT_MS * 1000000ull;
	uint32_t st;

	do {
		st = llmdev_ring_rd(c, r, LLMDEV_RING_STATUS);
		if (st & LLMDEV_RING_STATUS_HALTED)
			break;
		llmdev_sleep_ms(1);
	} while (llmdev_now_ns() < end);
	return st;
}

TEST_F_TIMEOUT(dma, bad_desc_base, 120)
{
	struct llmdev_card *c = self->c;
	struct llmdev_uring *in = &self->ring[0];
	uint32_t base = LLMDEV_RING_BASE(0);

	LLMDEV_REQUIRE(&self->cs);
	llmdev_wr64(c, base + LLMDEV_RING_DESC_BASE, BAD_ADDR);
	llmdev_wr64(c, base + LLMDEV_RING_CMPL_BASE, in->cmpl.pa[0]);
	llmdev_ring_wr(c, 0, LLMDEV_RING_SIZE, 8);
	llmdev_ring_wr(c, 0, LLMDEV_RING_CTRL, LLMDEV_RING_CTRL_ENABLE);
	ASSERT_NE(0, llmdev_ring_rd(c, 0, LLMDEV_RING_STATUS) & LLMDEV_RING_STATUS_ENABLED);
	llmdev_ring_wr(c, 0, LLMDEV_RING_TAIL, 2);

	EXPECT_NE(0, wait_halted(c, 0) & LLMDEV_RING_STATUS_HALTED);
	EXPECT_EQ(LLMDEV_ERR_DESC_FETCH, llmdev_ring_rd(c, 0, LLMDEV_RING_ERR_CODE));
	EXPECT_ERR_LOGGED(c, 0, LLMDEV_ERR_DESC_FETCH, LLMDEV_SRC(0, 0));
	EXPECT_EQ(BAD_ADDR, llmdev_log_rd64(c, 0, LLMDEV_ERR_LOG_ADDR));
	EXPECT_EQ(0, llmdev_ring_rd(c, 0, LLMDEV_RING_HEAD));
	EXPECT_EQ(0, llmdev_ring_rd(c, 0, LLMDEV_RING_COMPLETED));
	EXPECT_EQ(0, ((volatile struct llmdev_hw_cmpl *)in->cmpl.va)->flags);
	/* stays halted: one error, not one per retry */
	llmdev_sleep_ms(50);
	EXPECT_EQ(1, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));

	/* CTRL.RESET recovers it; the base registers keep their values */
	llmdev_ring_wr(c, 0, LLMDEV_RING_CTRL, LLMDEV_RING_CTRL_RESET);
	EXPECT_EQ(0, llmdev_ring_rd(c, 0, LLMDEV_RING_STATUS));
	EXPECT_EQ(0, llmdev_ring_rd(c, 0, LLMDEV_RING_HEAD));
	EXPECT_EQ(0, llmdev_ring_rd(c, 0, LLMDEV_RING_TAIL));
	EXPECT_EQ(0, llmdev_ring_rd(c, 0, LLMDEV_RING_COMPLETED));
	EXPECT_EQ(0, llmdev_ring_rd(c, 0, LLMDEV_RING_ERR_CODE));
	EXPECT_EQ(0, llmdev_ring_rd(c, 0, LLMDEV_RING_CTRL) & LLMDEV_RING_CTRL_ENABLE);
	EXPECT_EQ(BAD_ADDR, llmdev_rd64(c, base + LLMDEV_RING_DESC_BASE));
	EXPECT_EQ(in->cmpl.pa[0], llmdev_rd64(c, base + LLMDEV_RING_CMPL_BASE));
	EXPECT_EQ(8, llmdev_ring_rd(c, 0, LLMDEV_RING_SIZE));

	START_RING(in, 8);
	llmdev_fill_random(self->src.va, 3 * LLMDEV_PAGE_SIZE, &self->seed);
	XFER(in, &self->src, 100, 2 * LLMDEV_PAGE_SIZE, 0x5000);
	EXPECT_EQ(*(uint64_t *)(self->src.va + 100), *(volatile uint64_t *)(c->bar2 + 0x5000));
}

TEST_F_TIMEOUT(dma, bad_cmpl_base, 120)
{
	struct llmdev_card *c = self->c;
	struct llmdev_uring *in = &self->ring[1];
	uint32_t base = LLMDEV_RING_BASE(1);

	LLMDEV_REQUIRE(&self->cs);
	memset(in->desc.va, 0, 4096);
	llmdev_wr64(c, base + LLMDEV_RING_DESC_BASE, in->desc.pa[0]);
	llmdev_wr64(c, base + LLMDEV_RING_CMPL_BASE, BAD_ADDR);
	llmdev_ring_wr(c, 1, LLMDEV_RING_SIZE, 8);
	llmdev_ring_wr(c, 1, LLMDEV_RING_CTRL, LLMDEV_RING_CTRL_ENABLE);
	in->tail = 0;
	llmdev_uring_post(in, self->src.pa[0], 0x6000, 64, 0, 0, 1);
	llmdev_uring_doorbell(in);
	EXPECT_NE(0, wait_halted(c, 1) & LLMDEV_RING_STATUS_HALTED);
	EXPECT_EQ(LLMDEV_ERR_CMPL_WRITE, llmdev_ring_rd(c, 1, LLMDEV_RING_ERR_CODE));
	EXPECT_ERR_LOGGED(c, 0, LLMDEV_ERR_CMPL_WRITE, LLMDEV_SRC(1, 0));
	EXPECT_EQ(BAD_ADDR, llmdev_log_rd64(c, 0, LLMDEV_ERR_LOG_ADDR));
	EXPECT_EQ(0, llmdev_ring_rd(c, 1, LLMDEV_RING_COMPLETED));
	llmdev_ring_wr(c, 1, LLMDEV_RING_CTRL, LLMDEV_RING_CTRL_RESET);
	EXPECT_EQ(0, llmdev_ring_rd(c, 1, LLMDEV_RING_STATUS));
	START_RING(in, 8);
	XFER(in, &self->src, 0, 64, 0x6000);
}

TEST_F_TIMEOUT(dma, ring_config, 120)
{
	static const uint32_t bad_sizes[] = { 0, 1, 3, 6, 100, LLMDEV_RING_MAX_ENTRIES * 2 };
	struct llmdev_card *c = self->c;
	struct llmdev_uring *r = &self->ring[2];
	uint32_t base = LLMDEV_RING_BASE(2), seq = 0;
	size_t i;

	LLMDEV_REQUIRE(&self->cs);
	llmdev_wr64(c, base + LLMDEV_RING_DESC_BASE, r->desc.pa[0]);
	llmdev_wr64(c, base + LLMDEV_RING_CMPL_BASE, r->cmpl.pa[0]);
	for (i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++, seq++) {
		llmdev_ring_wr(c, 2, LLMDEV_RING_SIZE, bad_sizes[i]);
		llmdev_ring_wr(c, 2, LLMDEV_RING_CTRL, LLMDEV_RING_CTRL_ENABLE);
		EXPECT_EQ(0, llmdev_ring_rd(c, 2, LLMDEV_RING_STATUS) & LLMDEV_RING_STATUS_ENABLED)
			TH_LOG("size %u", bad_sizes[i]);
		EXPECT_EQ(LLMDEV_ERR_RING_CONFIG, llmdev_log_rd32(c, seq, LLMDEV_ERR_LOG_CODE))
			TH_LOG("size %u", bad_sizes[i]);
	}
	llmdev_ring_wr(c, 2, LLMDEV_RING_SIZE, 8);
	/* misaligned bases */
	llmdev_wr64(c, base + LLMDEV_RING_DESC_BASE, r->desc.pa[0] + 32);
	llmdev_ring_wr(c, 2, LLMDEV_RING_CTRL, LLMDEV_RING_CTRL_ENABLE);
	EXPECT_EQ(0, llmdev_ring_rd(c, 2, LLMDEV_RING_STATUS) & LLMDEV_RING_STATUS_ENABLED);
	EXPECT_EQ(LLMDEV_ERR_RING_CONFIG, llmdev_log_rd32(c, seq, LLMDEV_ERR_LOG_CODE));
	seq++;
	llmdev_wr64(c, base + LLMDEV_RING_DESC_BASE, r->desc.pa[0]);
	llmdev_wr64(c, base + LLMDEV_RING_CMPL_BASE, r->cmpl.pa[0] + 16);
	llmdev_ring_wr(c, 2, LLMDEV_RING_CTRL, LLMDEV_RING_CTRL_ENABLE);
	EXPECT_EQ(0, llmdev_ring_rd(c, 2, LLMDEV_RING_STATUS) & LLMDEV_RING_STATUS_ENABLED);
	EXPECT_EQ(LLMDEV_ERR_RING_CONFIG, llmdev_log_rd32(c, seq, LLMDEV_ERR_LOG_CODE));
	seq++;
	EXPECT_EQ(seq, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	EXPECT_NE(0, llmdev_rd32(c, LLMDEV_REG_ERR_STATUS) & (1u << LLMDEV_ERR_RING_CONFIG));

	/* largest and smallest sizes are accepted */
	START_RING(r, 2);
	llmdev_uring_reset(r);
	START_RING(r, 8);
	/* while enabled, base and size writes are ignored and logged */
	llmdev_wr64(c, base + LLMDEV_RING_DESC_BASE, r->desc.pa[0] + 4096);
	llmdev_ring_wr(c, 2, LLMDEV_RING_SIZE, 16);
	EXPECT_EQ(r->desc.pa[0], llmdev_rd64(c, base + LLMDEV_RING_DESC_BASE));
	EXPECT_EQ(8, llmdev_ring_rd(c, 2, LLMDEV_RING_SIZE));
	EXPECT_EQ(LLMDEV_ERR_REG_ACCESS, llmdev_log_rd32(c, seq, LLMDEV_ERR_LOG_CODE));
	EXPECT_LE(seq + 2, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	/* and the ring works */
	memset(self->dst.va, GUARD, self->dst.len);
	XFER(r, &self->dst, 10, 5000, 0);
	EXPECT_EQ(-1, guard_broken(&self->dst, 10, 5000));
}

TEST_F_TIMEOUT(dma, ring_max_size, 120)
{
	struct llmdev_card *c = self->c;
	struct llmdev_dmabuf d, cm;
	char err[256];
	uint32_t base = LLMDEV_RING_BASE(3);

	LLMDEV_REQUIRE(&self->cs);
	/* 4096 entries: descriptors need 128 KiB; only the enable is tested */
	ASSERT_EQ(0, llmdev_dmabuf_alloc(&d, LLMDEV_PAGE_SIZE, err, sizeof(err)));
	ASSERT_EQ(0, llmdev_dmabuf_alloc(&cm, LLMDEV_PAGE_SIZE, err, sizeof(err)));
	llmdev_wr64(c, base + LLMDEV_RING_DESC_BASE, d.pa[0]);
	llmdev_wr64(c, base + LLMDEV_RING_CMPL_BASE, cm.pa[0]);
	llmdev_ring_wr(c, 3, LLMDEV_RING_SIZE, LLMDEV_RING_MAX_ENTRIES);
	llmdev_ring_wr(c, 3, LLMDEV_RING_CTRL, LLMDEV_RING_CTRL_ENABLE);
	EXPECT_NE(0, llmdev_ring_rd(c, 3, LLMDEV_RING_STATUS) & LLMDEV_RING_STATUS_ENABLED);
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	llmdev_ring_wr(c, 3, LLMDEV_RING_CTRL, LLMDEV_RING_CTRL_RESET);
	EXPECT_EQ(0, llmdev_ring_rd(c, 3, LLMDEV_RING_STATUS));
	llmdev_dmabuf_free(&d);
	llmdev_dmabuf_free(&cm);
}

/* descriptors wait while CONTROL.ENABLE is clear */
TEST_F_TIMEOUT(dma, control_enable_gate, 120)
{
	struct llmdev_card *c = self->c;
	struct llmdev_uring *in = &self->ring[0];
	struct llmdev_hw_cmpl cp;

	LLMDEV_REQUIRE(&self->cs);
	llmdev_wr32(c, LLMDEV_REG_CONTROL, 0);
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_STATUS) & LLMDEV_STATUS_ENABLED);
	START_RING(in, 8);
	llmdev_uring_post(in, self->src.pa[0], 0, 64, 0, 0, 5);
	llmdev_uring_doorbell(in);
	llmdev_sleep_ms(200);
	EXPECT_EQ(0, llmdev_ring_rd(c, 0, LLMDEV_RING_HEAD));
	EXPECT_NE(0, llmdev_ring_rd(c, 0, LLMDEV_RING_STATUS) & LLMDEV_RING_STATUS_BUSY);
	llmdev_wr32(c, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_ENABLE);
	EXPECT_NE(0, llmdev_rd32(c, LLMDEV_REG_STATUS) & LLMDEV_STATUS_ENABLED);
	ASSERT_EQ(0, llmdev_uring_wait(in, &cp, WAIT_MS)) TH_LOG("%s", in->err);
	EXPECT_EQ(5, cp.cookie);
	EXPECT_EQ(0, cp.status);
}

/* F_IRQ with everything masked: the source is pending, nothing is sent */
TEST_F_TIMEOUT(dma, irq_masked, 120)
{
	struct llmdev_card *c = self->c;
	struct llmdev_uring *out = &self->ring[3];
	struct llmdev_hw_cmpl cp;

	LLMDEV_REQUIRE(&self->cs);
	START_RING(out, 8);
	POST_WAIT(out, self->dst.pa[0], 0, 64, 0, 0, 1, &cp);
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_IRQ_STATUS));
	POST_WAIT(out, self->dst.pa[0], 0, 64, LLMDEV_DESC_F_IRQ, 0, 2, &cp);
	EXPECT_EQ(0, cp.status);
	EXPECT_EQ(LLMDEV_IRQ_RING(3), llmdev_rd32(c, LLMDEV_REG_IRQ_STATUS));
	EXPECT_EQ(0, llmdev_perf(c, LLMDEV_PERF_IRQS));
	llmdev_wr32(c, LLMDEV_REG_IRQ_STATUS, LLMDEV_IRQ_RING(3));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_IRQ_STATUS));
}

/* ---- all rings at once, every shape ------------------------------------- */

#define SHAPE_ROUNDS	12
#define SHAPE_DESC	4			/* per ring per round */
#define SHAPE_QUARTER	(1u << 20)		/* host bytes per descriptor */
#define SHAPE_BUF	(SHAPE_DESC * SHAPE_QUARTER)
#define SHAPE_HBM(k)	(0x800000ull + (uint64_t)(k) * SHAPE_QUARTER)

struct seg {
	uint32_t off;	/* in the ring's buffer */
	uint32_t len;
};

struct shape {
	struct seg seg[LLMDEV_SG_PER_PAGE];
	unsigned int n;
	uint32_t len;
	unsigned int kind;
	const char *what;
};

/*
 * Segments covering len bytes inside [base, base + SHAPE_QUARTER) of a
 * buffer: kind 0 one piece inside a page (a plain descriptor), 1 whole pages
 * from a random offset, 2 pieces of 1..600 bytes, 3 pages in reverse order.
 * False if the kind cannot hold len bytes.
 */
static bool make_shape(struct shape *sh, unsigned int kind, uint32_t base,
		       uint32_t len, uint64_t *seed)
{
	const uint32_t P = LLMDEV_PAGE_SIZE;
	uint32_t off, done = 0, k, npages;

	sh->n = 0;
	sh->len = len;
	sh->kind = kind;
	switch (kind) {
	case 0:
		if (len > P)
			return false;
		sh->what = "plain";
		off = llmdev_rand(seed) % (P - len + 1);
		sh->seg[sh->n++] = (struct seg){ base + off, len };
		return true;
	case 1:
		sh->what = "pages";
		off = llmdev_rand(seed) % P;
		while (done < len) {
			uint32_t o = off + done, l = P - o % P;

			if (sh->n == LLMDEV_SG_PER_PAGE || o + 1 > SHAPE_QUARTER)
				return false;
			l = l < len - done ? l : len - done;
			sh->seg[sh->n++] = (struct seg){ base + o, l };
			done += l;
		}
		return true;
	case 2:
		sh->what = "small pieces";
		off = llmdev_rand(seed) % P;
		while (done < len) {
			uint32_t o = off + done, l = 1 + llmdev_rand(seed) % 600;

			if (sh->n == LLMDEV_SG_PER_PAGE || o + 1 > SHAPE_QUARTER)
				return false;
			l = l < P - o % P ? l : P - o % P;
			l = l < len - done ? l : len - done;
			sh->seg[sh->n++] = (struct seg){ base + o, l };
			done += l;
		}
		return true;
	default:
		sh->what = "pages reversed";
		npages = (len + P - 1) / P;
		if (npages > LLMDEV_SG_PER_PAGE || npages * P > SHAPE_QUARTER)
			return false;
		for (k = npages; k-- > 0;) {
			uint32_t l = k ? P : len - (npages - 1) * P;

			sh->seg[sh->n++] = (struct seg){ base + k * P, l };
		}
		return true;
	}
}

/* a shape of a random kind for len bytes (whole pages always fit) */
static void any_shape(struct shape *sh, uint32_t base, uint32_t len, uint64_t *seed)
{
	unsigned int kind = llmdev_rand(seed) % 4, i;

	for (i = 0; i < 4; i++)
		if (make_shape(sh, (kind + i) % 4, base, len, seed))
			return;
	make_shape(sh, 1, base, len, seed);
}

/* post one descriptor for sh: plain, or SGL through SG page sgp */
static void post_shape(struct llmdev_uring *u, struct llmdev_dmabuf *b,
		       const struct shape *sh, unsigned int sgp, uint64_t hbm)
{
	volatile struct llmdev_hw_sg *sg;
	unsigned int i;

	if (sh->n == 1 && sh->seg[0].off / LLMDEV_PAGE_SIZE ==
	    (sh->seg[0].off + sh->len - 1) / LLMDEV_PAGE_SIZE) {
		llmdev_uring_post(u, llmdev_dmabuf_pa(b, sh->seg[0].off), hbm, sh->len,
				  0, 0, u->tail);
		return;
	}
	sg = (volatile struct llmdev_hw_sg *)(u->sg.va + sgp * LLMDEV_PAGE_SIZE);
	for (i = 0; i < sh->n; i++) {
		sg[i].addr = llmdev_dmabuf_pa(b, sh->seg[i].off);
		sg[i].length = sh->seg[i].len;
		sg[i].reserved = 0;
	}
	llmdev_uring_post(u, u->sg.pa[sgp], hbm, sh->len, LLMDEV_DESC_F_SGL, sh->n,
			  u->tail);
}

/* the bytes a shape covers, in descriptor order */
static void gather(uint8_t *out, const uint8_t *buf, const struct shape *sh)
{
	unsigned int i;

	for (i = 0; i < sh->n; i++) {
		memcpy(out, buf + sh->seg[i].off, sh->seg[i].len);
		out += sh->seg[i].len;
	}
}

static void scatter(uint8_t *buf, const uint8_t *in, const struct shape *sh)
{
	unsigned int i;

	for (i = 0; i < sh->n; i++) {
		memcpy(buf + sh->seg[i].off, in, sh->seg[i].len);
		in += sh->seg[i].len;
	}
}

TEST_F_TIMEOUT(dma, all_rings_shapes, 300)
{
	struct llmdev_dmabuf b[LLMDEV_NUM_RINGS];
	/* what each HBM region of the last round holds, and its length */
	uint8_t *want[2 * SHAPE_DESC], *shadow = malloc(SHAPE_BUF);
	uint32_t wlen[2 * SHAPE_DESC];
	unsigned int round, r, d, kinds[4] = { 0 };
	uint64_t moved = 0;
	char err[256];

	LLMDEV_REQUIRE(&self->cs);
	ASSERT_NE(NULL, shadow);
	if (self->hbm_size < SHAPE_HBM(2 * SHAPE_DESC))
		SKIP(return, "needs more HBM");
	memset(b, 0, sizeof(b));
	for (r = 0; r < LLMDEV_NUM_RINGS; r++) {
		ASSERT_EQ(0, llmdev_dmabuf_alloc(&b[r], SHAPE_BUF, err, sizeof(err)))
			TH_LOG("%s", err);
		START_RING(&self->ring[r], LLMDEV_RING_DEF_SIZE);
	}
	for (d = 0; d < 2 * SHAPE_DESC; d++) {
		want[d] = malloc(SHAPE_QUARTER);
		ASSERT_NE(NULL, want[d]);
		wlen[d] = 0;
	}

	for (round = 0; round <= SHAPE_ROUNDS; round++) {
		struct shape sh[LLMDEV_NUM_RINGS][SHAPE_DESC];
		uint8_t *next[2 * SHAPE_DESC];

		/* host to card: new data into the regions; the old stays in want */
		for (r = 0; r < LLMDEV_NUM_H2C_RINGS && round < SHAPE_ROUNDS; r++) {
			llmdev_fill_random(b[r].va, SHAPE_BUF, &self->seed);
			for (d = 0; d < SHAPE_DESC; d++) {
				unsigned int k = r * SHAPE_DESC + d;
				uint32_t len = 1 + llmdev_rand(&self->seed) %
					       (d % 2 ? 4096 : 600 * 1024);

				any_shape(&sh[r][d], d * SHAPE_QUARTER, len, &self->seed);
				post_shape(&self->ring[r], &b[r], &sh[r][d], d,
					   SHAPE_HBM(k + (round % 2) * 2 * SHAPE_DESC));
			}
		}
		/* card to host: read back what the last round wrote */
		for (r = LLMDEV_NUM_H2C_RINGS; r < LLMDEV_NUM_RINGS && round; r++) {
			memset(b[r].va, GUARD, SHAPE_BUF);
			for (d = 0; d < SHAPE_DESC; d++) {
				unsigned int k = (r - LLMDEV_NUM_H2C_RINGS) * SHAPE_DESC + d;

				any_shape(&sh[r][d], d * SHAPE_QUARTER, wlen[k], &self->seed);
				post_shape(&self->ring[r], &b[r], &sh[r][d], d,
					   SHAPE_HBM(k + ((round - 1) % 2) * 2 * SHAPE_DESC));
			}
		}
		/* all rings at once */
		for (r = 0; r < LLMDEV_NUM_RINGS; r++)
			if (self->ring[r].tail != self->ring[r].seen)
				llmdev_uring_doorbell(&self->ring[r]);
		for (r = 0; r < LLMDEV_NUM_RINGS; r++)
			while (self->ring[r].seen != self->ring[r].tail)
				ASSERT_EQ(0, llmdev_uring_wait_ok(&self->ring[r], WAIT_MS))
					TH_LOG("round %u: %s", round, self->ring[r].err);

		/* every byte read back, and nothing around it touched */
		for (r = LLMDEV_NUM_H2C_RINGS; r < LLMDEV_NUM_RINGS && round; r++) {
			memset(shadow, GUARD, SHAPE_BUF);
			for (d = 0; d < SHAPE_DESC; d++) {
				unsigned int k = (r - LLMDEV_NUM_H2C_RINGS) * SHAPE_DESC + d;

				scatter(shadow, want[k], &sh[r][d]);
				kinds[sh[r][d].kind]++;
				moved += wlen[k];
			}
			for (d = 0; d < SHAPE_DESC; d++) {
				long at = llmdev_memdiff(shadow + d * SHAPE_QUARTER,
							 b[r].va + d * SHAPE_QUARTER,
							 SHAPE_QUARTER);

				EXPECT_EQ(-1, at) TH_LOG("round %u ring %u desc %u (%s, %u bytes, "
							 "%u entries): byte %ld of its quarter",
							 round, r, d, sh[r][d].what, sh[r][d].len,
							 sh[r][d].n, at);
			}
		}
		/* what the regions hold now */
		for (r = 0; r < LLMDEV_NUM_H2C_RINGS && round < SHAPE_ROUNDS; r++)
			for (d = 0; d < SHAPE_DESC; d++) {
				unsigned int k = r * SHAPE_DESC + d;

				next[k] = want[k];
				gather(next[k], b[r].va, &sh[r][d]);
				wlen[k] = sh[r][d].len;
			}
		for (r = 0; r < LLMDEV_NUM_RINGS; r++)
			self->ring[r].sg_next = 0;
	}
	TH_LOG("%" PRIu64 " bytes checked in %u rounds of %u descriptors on %u rings: "
	       "%u plain, %u pages, %u small pieces, %u pages reversed (card to host)",
	       moved, SHAPE_ROUNDS, SHAPE_DESC, LLMDEV_NUM_RINGS, kinds[0], kinds[1],
	       kinds[2], kinds[3]);
	EXPECT_EQ(0, llmdev_rd32(self->c, LLMDEV_REG_ERR_COUNT));
	for (r = 0; r < LLMDEV_NUM_RINGS; r++)
		llmdev_dmabuf_free(&b[r]);
	for (d = 0; d < 2 * SHAPE_DESC; d++)
		free(want[d]);
	free(shadow);
}

/* a small round trip on every card */
TEST_F_TIMEOUT(dma, every_card, 120)
{
	int i;

	LLMDEV_REQUIRE(&self->cs);
	for (i = 0; i < self->cs.n; i++) {
		struct llmdev_card *c = &self->cs.card[i];
		struct llmdev_uring in, out;
		uint16_t cmd;

		if (i) {
			ASSERT_EQ(0, start_card(c, &cmd)) TH_LOG("%s", c->err);
		}
		ASSERT_EQ(0, llmdev_uring_alloc(&in, c, 0, 8)) TH_LOG("%s", in.err);
		ASSERT_EQ(0, llmdev_uring_alloc(&out, c, 3, 8)) TH_LOG("%s", out.err);
		EXPECT_EQ(0, llmdev_uring_start(&in)) TH_LOG("%s", in.err);
		EXPECT_EQ(0, llmdev_uring_start(&out)) TH_LOG("%s", out.err);
		llmdev_fill_random(self->src.va + 1, 3 * 4096 + 1, &self->seed);
		memset(self->dst.va, GUARD, self->dst.len);
		EXPECT_LT(0, llmdev_uring_xfer(&in, &self->src, 1, 3 * 4096 + 1, 0x777))
			TH_LOG("%s", in.err);
		EXPECT_LT(0, llmdev_uring_xfer(&out, &self->dst, 2, 3 * 4096 + 1, 0x777))
			TH_LOG("%s", out.err);
		EXPECT_EQ(-1, llmdev_memdiff(self->src.va + 1, self->dst.va + 2, 3 * 4096 + 1))
			TH_LOG("%s", c->bdf);
		/* abort before the rings' pages go away */
		if (i) {
			llmdev_soft_reset(c);
			llmdev_cfg_write16(c, PCI_COMMAND, cmd);
		} else {
			llmdev_uring_reset(&in);
			llmdev_uring_reset(&out);
		}
		llmdev_uring_free(&in);
		llmdev_uring_free(&out);
	}
}

LLMDEV_HARNESS_MAIN
