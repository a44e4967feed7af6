// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev multi-card blocks (spec 1.1) at register level, through sysfs BAR 0
 * and the BAR 2 aperture, without a driver:
 *
 *   - peer links: training to UP on the default ring with the right
 *     PEER_SERIAL / PEER_PORT, disable and FORCE_DOWN (both ends, DOWN_COUNT,
 *     retraining), ERROR_BURST counters at both ends, LINK_EVENT and
 *     EVENT_CAUSE, what a soft reset does to the peer;
 *   - the collective engine: AllReduce over 2 cards and over the whole ring
 *     (i32 sum, exact; f32/f16/bf16 and min/max against the documented
 *     order and rounding), per-port TX/RX byte counters against the formula,
 *     broadcast, the errors PARAM, LINK_DOWN, MISMATCH, TOPOLOGY, TIMEOUT,
 *     ABORTED, a DOWN_AFTER link drop midway and the recovery, a soft reset
 *     of a member while running;
 *   - the routing table: a valid commit, and every kind of invalid entry
 *     leaving the active table untouched;
 *   - resets (soft and FLR, alternating, of either member) at random moments
 *     of running AllReduces, 50 times: the others fail with ABORTED at once,
 *     no HBM changes after the reset, the next AllReduce is right;
 *   - the rate of f32 AllReduces (16 MiB per rank, once; LLMDEV_RATE_MIB and
 *     LLMDEV_RATE_RUNS for more) on 2 cards and on the whole ring (inputs
 *     loaded and results read back by DMA, every result checked): wall
 *     time and bytes / COLL_BUSY_NS, logged.
 *
 * The cards' order on the ring is found from PEER_SERIAL, not assumed. Tests
 * that need more cards than the VM has, or a cabling the VM does not have,
 * SKIP with the reason. Interrupts stay masked (IRQ_MASK is never written):
 * raised sources are only observed in IRQ_STATUS.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/pci_regs.h>

#include "kselftest_harness.h"
#include "llmdev_test.h"

#define NPORTS		LLMDEV_NUM_LINK_PORTS
#define LNK(p, r)	(LLMDEV_LINK_BASE(p) + (r))
#define SERIAL_BASE	0x4c4d000000000000ull	/* model default: + creation order */
#define SRC_OFF		0x100000ull
#define DST_OFF		0x400000ull
#define WAIT_MS		5000

#ifndef MIN
#define MIN(a, b)	((a) < (b) ? (a) : (b))
#endif

/* poll cond (an expression) every ms for up to ms milliseconds */
#define POLL(cond, ms) ({						\
	uint64_t __end = llmdev_now_ns() + (uint64_t)(ms) * 1000000ull;	\
	bool __ok;							\
	while (!(__ok = (cond)) && llmdev_now_ns() < __end)		\
		llmdev_sleep_ms(1);					\
	__ok;								\
})

FIXTURE(links) {
	struct llmdev_cards cs;
	int n;
	struct llmdev_card *c[LLMDEV_MAX_CARDS];
	uint64_t seed;
	uint64_t hbm;		/* smallest HBM of the cards */
	/* cabling, from PEER_SERIAL once every port is up: card index, port */
	int peer[LLMDEV_MAX_CARDS][NPORTS];
	unsigned int pport[LLMDEV_MAX_CARDS][NPORTS];
};

FIXTURE_SETUP(links)
{
	int i;

	LLMDEV_CARDS_SETUP(&self->cs);
	self->n = self->cs.n;
	self->hbm = ~0ull;
	for (i = 0; i < self->n; i++) {
		self->c[i] = &self->cs.card[i];
		LLMDEV_RESET(self->c[i]);
		self->hbm = MIN(self->hbm, self->c[i]->res[LLMDEV_BAR_HBM].size);
	}
	self->seed = llmdev_seed(0x4c494e4b53ull);
	if (self->n && llmdev_rd32(self->c[0], LLMDEV_REG_VERSION) <
	    (1u << 16 | 1))
		self->n = -1;	/* spec 1.0 card: the blocks are reserved */
}

FIXTURE_TEARDOWN(links)
{
	int i;

	for (i = 0; i < self->cs.n; i++)
		llmdev_soft_reset(&self->cs.card[i]);
	llmdev_cards_close(&self->cs);
}

#define NEED_CARDS(k) do {						\
	LLMDEV_REQUIRE(&self->cs);					\
	if (self->n < 0)						\
		SKIP(return, "spec version %#x: no multi-card blocks",	\
		     llmdev_rd32(self->c[0], LLMDEV_REG_VERSION));	\
	if (self->n < (k))						\
		SKIP(return, "needs %d cards, the VM has %d", (k), self->n); \
} while (0)

/* ---- links ---------------------------------------------------------------- */

static uint32_t lrd(struct llmdev_card *c, unsigned int p, uint32_t reg)
{
	return llmdev_rd32(c, LNK(p, reg));
}

static uint64_t lrd64(struct llmdev_card *c, unsigned int p, uint32_t reg)
{
	return llmdev_rd64(c, LNK(p, reg));
}

static uint32_t lstate(struct llmdev_card *c, unsigned int p)
{
	return LLMDEV_LINK_STATE(lrd(c, p, LLMDEV_LINK_STATUS));
}

static void lenable(struct llmdev_card *c, unsigned int p, bool on)
{
	llmdev_wr32(c, LNK(p, LLMDEV_LINK_CTRL), on ? LLMDEV_LINK_CTRL_ENABLE : 0);
}

static int card_by_serial(FIXTURE_DATA(links) *self, uint64_t serial)
{
	int i;

	for (i = 0; i < self->n; i++)
		if (llmdev_rd64(self->c[i], LLMDEV_REG_SERIAL) == serial)
			return i;
	return -1;
}

static bool all_cabled_up(FIXTURE_DATA(links) *self)
{
	int i;
	unsigned int p;

	for (i = 0; i < self->n; i++)
		for (p = 0; p < NPORTS; p++) {
			uint32_t st = lrd(self->c[i], p, LLMDEV_LINK_STATUS);

			if ((st & LLMDEV_LINK_STATUS_CABLED) &&
			    LLMDEV_LINK_STATE(st) != LLMDEV_LINK_STATE_UP)
				return false;
		}
	return true;
}

/* enable every port of every card, wait for the cabled ones, map the cables */
static void links_up(struct __test_metadata *_metadata, FIXTURE_DATA(links) *self)
{
	int i;
	unsigned int p;

	for (i = 0; i < self->n; i++)
		for (p = 0; p < NPORTS; p++)
			lenable(self->c[i], p, true);
	ASSERT_TRUE(POLL(all_cabled_up(self), WAIT_MS))
		TH_LOG("cabled ports not all UP after %d ms", WAIT_MS);
	for (i = 0; i < self->n; i++)
		for (p = 0; p < NPORTS; p++) {
			struct llmdev_card *c = self->c[i];

			self->peer[i][p] = -1;
			if (lstate(c, p) != LLMDEV_LINK_STATE_UP)
				continue;
			self->peer[i][p] = card_by_serial(self,
					lrd64(c, p, LLMDEV_LINK_PEER_SERIAL));
			self->pport[i][p] = lrd(c, p, LLMDEV_LINK_PEER_PORT);
			ASSERT_LE(0, self->peer[i][p]) TH_LOG("%s port %u: unknown peer", c->bdf, p);
			ASSERT_GT(NPORTS, self->pport[i][p]);
		}
}

/*
 * The ring through every card, following port 0 out and port 1 in, starting
 * at card 0: order[rank] = card. False if the cards are not cabled so.
 */
static bool ring_order(FIXTURE_DATA(links) *self, int *order)
{
	int r, cur = 0;

	for (r = 0; r < self->n; r++) {
		order[r] = cur;
		if (self->peer[cur][0] < 0 || self->pport[cur][0] != 1)
			return false;
		cur = self->peer[cur][0];
		if (r + 1 < self->n && cur == 0)
			return false;
	}
	return cur == 0;
}

/* a cable from card 0: card 0 port *pa <-> card *b port *pb */
static bool some_pair(FIXTURE_DATA(links) *self, unsigned int *pa, int *b,
		      unsigned int *pb)
{
	unsigned int p;

	for (p = 0; p < NPORTS; p++)
		if (self->peer[0][p] >= 0) {
			*pa = p;
			*b = self->peer[0][p];
			*pb = self->pport[0][p];
			return true;
		}
	return false;
}

static bool vm_default_cabling(void)
{
	char cables[256] = "";

	llmdev_vmconf_str("CABLES", cables, sizeof(cables));
	return !cables[0];
}

/* ---- collectives ------------------------------------------------------- */

struct cparm {
	uint64_t tag;
	uint32_t op;
	unsigned int rank, nranks, tx, rx;
	uint32_t chunk;
	uint64_t count, src, dst;
	uint32_t timeout_us;
};

static void coll_set(struct llmdev_card *c, const struct cparm *p)
{
	llmdev_wr64(c, LLMDEV_REG_COLL_TAG, p->tag);
	llmdev_wr32(c, LLMDEV_REG_COLL_OP, p->op);
	llmdev_wr32(c, LLMDEV_REG_COLL_RANK, p->rank | p->nranks << 8);
	llmdev_wr32(c, LLMDEV_REG_COLL_PORTS, p->tx | p->rx << 4);
	llmdev_wr32(c, LLMDEV_REG_COLL_CHUNK, p->chunk);
	llmdev_wr64(c, LLMDEV_REG_COLL_COUNT, p->count);
	llmdev_wr64(c, LLMDEV_REG_COLL_SRC, p->src);
	llmdev_wr64(c, LLMDEV_REG_COLL_DST, p->dst);
	llmdev_wr32(c, LLMDEV_REG_COLL_TIMEOUT_US, p->timeout_us);
}

static void coll_start(struct llmdev_card *c)
{
	llmdev_wr32(c, LLMDEV_REG_COLL_CTRL, LLMDEV_COLL_CTRL_START);
}

static uint32_t coll_status(struct llmdev_card *c)
{
	return llmdev_rd32(c, LLMDEV_REG_COLL_STATUS);
}

/* COLL_STATUS once not BUSY (or still BUSY after ms) */
static uint32_t coll_wait(struct llmdev_card *c, unsigned int ms)
{
	POLL(!(coll_status(c) & LLMDEV_COLL_STATUS_BUSY), ms);
	return coll_status(c);
}

#define COLL_ERROR(code)	(LLMDEV_COLL_STATUS_ERROR | (code) << 8)

static unsigned int esize(uint32_t dtype)
{
	return dtype == LLMDEV_COLL_DTYPE_F16 || dtype == LLMDEV_COLL_DTYPE_BF16 ? 2 : 4;
}

static uint64_t seg_elems(uint64_t count, unsigned int n, unsigned int k)
{
	return count / n + (k < count % n);
}

static uint64_t seg_start(uint64_t count, unsigned int n, unsigned int k)
{
	return k * (count / n) + MIN(k, count % n);
}

/* bytes rank r sends in an AllReduce: the documented segment schedule */
static uint64_t ar_tx_bytes(uint64_t count, unsigned int n, unsigned int r,
			    uint32_t dtype)
{
	uint64_t e = 0;
	unsigned int s;

	for (s = 0; s + 1 < n; s++) {
		e += seg_elems(count, n, (r + n - s) % n);		/* reduce-scatter */
		e += seg_elems(count, n, (r + 1 + n - s) % n);	/* all-gather */
	}
	return e * esize(dtype);
}

/* -- the documented arithmetic, with an independent half-precision oracle */

static float f32_of(uint32_t v)
{
	float f;

	memcpy(&f, &v, 4);
	return f;
}

static uint32_t bits_of(float f)
{
	uint32_t v;

	memcpy(&v, &f, 4);
	return v;
}

static float h2f(uint16_t h)
{
	_Float16 x;

	memcpy(&x, &h, 2);
	return (float)x;
}

static uint16_t f2h(float f)
{
	_Float16 x = (_Float16)f;	/* round to nearest even */
	uint16_t h;

	memcpy(&h, &x, 2);
	return h;
}

static uint16_t f2bf(float f)
{
	uint32_t x = bits_of(f);

	if (isnan(f))
		return (x >> 16) | 0x40;
	return (x + 0x7fff + ((x >> 16) & 1)) >> 16;
}

static float fop(float a, float b, uint32_t redop)
{
	if (isnan(a))
		return a;
	if (isnan(b))
		return b;
	if (redop == LLMDEV_COLL_REDOP_MIN)
		return b < a ? b : a;
	if (redop == LLMDEV_COLL_REDOP_MAX)
		return b > a ? b : a;
	return a + b;
}

/* receiver's element a op incoming element b, as stored bits */
static uint32_t elem_op(uint32_t dtype, uint32_t redop, uint32_t a, uint32_t b)
{
	int32_t x = a, y = b;

	switch (dtype) {
	case LLMDEV_COLL_DTYPE_I32:
		if (redop == LLMDEV_COLL_REDOP_MIN)
			return y < x ? b : a;
		if (redop == LLMDEV_COLL_REDOP_MAX)
			return y > x ? b : a;
		return a + b;
	case LLMDEV_COLL_DTYPE_F32:
		return bits_of(fop(f32_of(a), f32_of(b), redop));
	case LLMDEV_COLL_DTYPE_F16:
		return f2h(fop(h2f(a), h2f(b), redop));
	default:
		return f2bf(fop(f32_of(a << 16), f32_of(b << 16), redop));
	}
}

static uint32_t ld_elem(const uint8_t *p, uint64_t i, uint32_t dtype)
{
	uint32_t v = 0;

	memcpy(&v, p + i * esize(dtype), esize(dtype));
	return v;
}

static void st_elem(uint8_t *p, uint64_t i, uint32_t dtype, uint32_t v)
{
	memcpy(p + i * esize(dtype), &v, esize(dtype));
}

/* random finite inputs that cannot overflow when n of them are added */
static void fill_inputs(uint8_t *buf, uint64_t count, uint32_t dtype, uint64_t *seed)
{
	uint64_t i;

	for (i = 0; i < count; i++) {
		uint64_t r = llmdev_rand(seed);
		uint32_t v;

		switch (dtype) {
		case LLMDEV_COLL_DTYPE_I32:
			v = r;
			break;
		case LLMDEV_COLL_DTYPE_F32:
			v = (r & 0x807fffff) | (uint32_t)(100 + (r >> 40) % 50) << 23;
			break;
		case LLMDEV_COLL_DTYPE_F16:	/* exponents 0..24: subnormals to ~1000 */
			v = (r & 0x83ff) | (uint32_t)((r >> 40) % 25) << 10;
			break;
		default:
			v = (r & 0x807f) | (uint32_t)(100 + (r >> 40) % 50) << 7;
			break;
		}
		st_elem(buf, i, dtype, v);
	}
}

/*
 * The AllReduce result: segment k is accumulated along the ring starting at
 * rank k, acc = x[k]; acc = x[k + j] op acc for j = 1 .. n-1, rounded to the
 * data type at every step.
 */
static void allreduce_expect(uint8_t **x, unsigned int n, uint64_t count,
			     uint32_t dtype, uint32_t redop, uint8_t *out)
{
	unsigned int k, j;
	uint64_t e;

	for (k = 0; k < n; k++)
		for (e = seg_start(count, n, k);
		     e < seg_start(count, n, k) + seg_elems(count, n, k); e++) {
			uint32_t acc = ld_elem(x[k], e, dtype);

			for (j = 1; j < n; j++)
				acc = elem_op(dtype, redop,
					      ld_elem(x[(k + j) % n], e, dtype), acc);
			st_elem(out, e, dtype, acc);
		}
}

struct ring {
	unsigned int n;
	int card[LLMDEV_MAX_CARDS];	/* by rank */
	unsigned int tx[LLMDEV_MAX_CARDS], rx[LLMDEV_MAX_CARDS];
};

static void ring_all(FIXTURE_DATA(links) *self, const int *order, struct ring *g)
{
	int r;

	g->n = self->n;
	for (r = 0; r < self->n; r++) {
		g->card[r] = order[r];
		g->tx[r] = 0;
		g->rx[r] = 1;
	}
}

/* the two ends of one cable, full duplex: tx and rx on the same port */
static void ring_pair(int a, unsigned int pa, int b, unsigned int pb, struct ring *g)
{
	g->n = 2;
	g->card[0] = a;
	g->tx[0] = g->rx[0] = pa;
	g->card[1] = b;
	g->tx[1] = g->rx[1] = pb;
}

/* program and start every rank; even ranks out of place, odd ranks in place */
static void ring_start(FIXTURE_DATA(links) *self, const struct ring *g,
		       const struct cparm *base)
{
	unsigned int r;

	for (r = 0; r < g->n; r++) {
		struct cparm p = *base;

		p.rank = r;
		p.nranks = g->n;
		p.tx = g->tx[r];
		p.rx = g->rx[r];
		p.src = r % 2 ? DST_OFF : SRC_OFF;
		p.dst = DST_OFF;
		coll_set(self->c[g->card[r]], &p);
	}
	for (r = 0; r < g->n; r++)
		coll_start(self->c[g->card[r]]);
}

/*
 * A whole AllReduce with data: random inputs, run, compare every rank's DST
 * with the documented result, SRC untouched, and the link byte counters
 * against the segment schedule.
 */
static void allreduce_check(struct __test_metadata *_metadata,
			    FIXTURE_DATA(links) *self, const struct ring *g,
			    uint32_t dtype, uint32_t redop, uint64_t count,
			    uint32_t chunk)
{
	unsigned int n = g->n, r;
	uint64_t bytes = count * esize(dtype);
	uint64_t tx0[LLMDEV_MAX_CARDS], rx0[LLMDEV_MAX_CARDS];
	uint64_t ptx0[LLMDEV_MAX_CARDS], prx0[LLMDEV_MAX_CARDS];
	uint32_t done0[LLMDEV_MAX_CARDS];
	uint8_t *x[LLMDEV_MAX_CARDS], *want, *got;
	struct cparm p = {
		.tag = 0xa11ed0ce00000000ull | llmdev_rand(&self->seed) >> 32,
		.op = LLMDEV_COLL_OP(LLMDEV_COLL_KIND_ALLREDUCE, redop, dtype, 0),
		.chunk = chunk, .count = count,
	};
	long d;

	want = malloc(bytes);
	got = malloc(bytes);
	ASSERT_NE(NULL, want);
	ASSERT_NE(NULL, got);
	for (r = 0; r < n; r++) {
		struct llmdev_card *c = self->c[g->card[r]];

		x[r] = malloc(bytes);
		ASSERT_NE(NULL, x[r]);
		fill_inputs(x[r], count, dtype, &self->seed);
		llmdev_ap_write(c, r % 2 ? DST_OFF : SRC_OFF, x[r], bytes);
		if (r % 2 == 0) {	/* DST gets overwritten by the copy */
			llmdev_fill_random(got, bytes, &self->seed);
			llmdev_ap_write(c, DST_OFF, got, bytes);
		}
		tx0[r] = lrd64(c, g->tx[r], LLMDEV_LINK_TX_BYTES);
		rx0[r] = lrd64(c, g->rx[r], LLMDEV_LINK_RX_BYTES);
		ptx0[r] = llmdev_perf(c, LLMDEV_PERF_LINK_TX_BYTES);
		prx0[r] = llmdev_perf(c, LLMDEV_PERF_LINK_RX_BYTES);
		done0[r] = llmdev_rd32(c, LLMDEV_REG_COLL_COMPLETED);
	}
	allreduce_expect(x, n, count, dtype, redop, want);

	ring_start(self, g, &p);
	for (r = 0; r < n; r++) {
		struct llmdev_card *c = self->c[g->card[r]];
		uint32_t st = coll_wait(c, WAIT_MS);

		EXPECT_EQ(LLMDEV_COLL_STATUS_DONE, st)
			TH_LOG("rank %u (%s): status %#x", r, c->bdf, st);
		EXPECT_EQ(p.tag, llmdev_rd64(c, LLMDEV_REG_COLL_DONE_TAG));
		EXPECT_EQ(done0[r] + 1, llmdev_rd32(c, LLMDEV_REG_COLL_COMPLETED));
		EXPECT_NE(0, llmdev_rd32(c, LLMDEV_REG_EVENT_CAUSE) & LLMDEV_EVENT_COLL);
		EXPECT_NE(0, llmdev_rd32(c, LLMDEV_REG_IRQ_STATUS) & LLMDEV_IRQ_EVENT);
	}
	for (r = 0; r < n; r++) {
		struct llmdev_card *c = self->c[g->card[r]];
		struct llmdev_card *next = self->c[g->card[(r + 1) % n]];
		uint64_t tx = ar_tx_bytes(count, n, r, dtype);

		llmdev_ap_read(c, DST_OFF, got, bytes);
		d = llmdev_memdiff(want, got, bytes);
		EXPECT_EQ(-1, d) TH_LOG("rank %u: DST byte %ld (element %ld): %#x, want %#x",
				       r, d, d / (long)esize(dtype),
				       ld_elem(got, d / esize(dtype), dtype),
				       ld_elem(want, d / esize(dtype), dtype));
		if (r % 2 == 0) {
			llmdev_ap_read(c, SRC_OFF, got, bytes);
			EXPECT_EQ(-1, llmdev_memdiff(x[r], got, bytes))
				TH_LOG("rank %u: SRC changed", r);
		}
		EXPECT_EQ(tx, lrd64(c, g->tx[r], LLMDEV_LINK_TX_BYTES) - tx0[r])
			TH_LOG("rank %u port %u TX_BYTES", r, g->tx[r]);
		EXPECT_EQ(tx, lrd64(next, g->rx[(r + 1) % n], LLMDEV_LINK_RX_BYTES) -
			  rx0[(r + 1) % n])
			TH_LOG("rank %u port %u RX_BYTES", (r + 1) % n, g->rx[(r + 1) % n]);
		EXPECT_EQ(tx, llmdev_perf(c, LLMDEV_PERF_LINK_TX_BYTES) - ptx0[r]);
		EXPECT_EQ(tx, llmdev_perf(next, LLMDEV_PERF_LINK_RX_BYTES) -
			  prx0[(r + 1) % n]);
		if (count % n == 0)
			EXPECT_EQ(2 * (n - 1) * (count / n) * esize(dtype), tx);
	}
	for (r = 0; r < n; r++)
		free(x[r]);
	free(want);
	free(got);
}

/* ---- tests: links ------------------------------------------------------ */

TEST_F(links, reset_values)
{
	int i;
	unsigned int p;
	uint64_t gbps = 100;

	NEED_CARDS(1);
	llmdev_vmconf_u64("LINK_GBPS", &gbps);
	for (i = 0; i < self->n; i++) {
		struct llmdev_card *c = self->c[i];

		EXPECT_EQ(NPORTS, LLMDEV_CAPS_LINK_PORTS(llmdev_rd32(c, LLMDEV_REG_CAPS)));
		EXPECT_EQ(gbps, llmdev_rd32(c, LLMDEV_REG_LINK_GBPS));
		EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_LINK_EVENT));
		EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_EVENT_CAUSE));
		for (p = 0; p < NPORTS; p++) {
			EXPECT_EQ(0, lrd(c, p, LLMDEV_LINK_CTRL));
			EXPECT_EQ(LLMDEV_LINK_STATE_DOWN, lstate(c, p));
			EXPECT_EQ(0, lrd64(c, p, LLMDEV_LINK_PEER_SERIAL));
			EXPECT_EQ(~0u, lrd(c, p, LLMDEV_LINK_PEER_PORT));
			EXPECT_EQ(0, lrd(c, p, LLMDEV_LINK_DOWN_COUNT));
			EXPECT_EQ(0, lrd64(c, p, LLMDEV_LINK_TX_BYTES));
			EXPECT_EQ(0, lrd64(c, p, LLMDEV_LINK_RX_BYTES));
			EXPECT_EQ(0, lrd64(c, p, LLMDEV_LINK_TX_ERRORS));
			EXPECT_EQ(0, lrd64(c, p, LLMDEV_LINK_RX_ERRORS));
			EXPECT_EQ(0, lrd(c, p, LLMDEV_LINK_FAULT));
			EXPECT_EQ(0, lrd64(c, p, LLMDEV_LINK_DOWN_AFTER));
		}
		EXPECT_EQ(0, coll_status(c));
		EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_COLL_COMPLETED));
		EXPECT_EQ(0, llmdev_rd64(c, LLMDEV_REG_COLL_DONE_TAG));
		EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ROUTE_ACTIVE_NUM));
		EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ROUTE_GEN));
		EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ROUTE_STATUS));
		/* read-only registers refuse writes and log them */
		llmdev_wr32(c, LNK(0, LLMDEV_LINK_STATUS), LLMDEV_LINK_STATE_UP);
		llmdev_wr32(c, LLMDEV_REG_LINK_GBPS, 1);
		llmdev_wr32(c, LLMDEV_REG_COLL_STATUS, 1);
		EXPECT_EQ(LLMDEV_LINK_STATE_DOWN, lstate(c, 0));
		EXPECT_EQ(gbps, llmdev_rd32(c, LLMDEV_REG_LINK_GBPS));
		EXPECT_EQ(3, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
		EXPECT_ERR_LOGGED(c, 0, LLMDEV_ERR_REG_ACCESS, LLMDEV_SRC_NONE);
	}
}

/* one end enabled trains; UP only once both ends are; identity exchanged */
TEST_F(links, train_default_ring)
{
	uint64_t base = SERIAL_BASE;
	int i, a, b, n;
	unsigned int p;
	struct llmdev_card *ca, *cb;

	NEED_CARDS(2);
	if (!vm_default_cabling())
		SKIP(return, "the VM has explicit cables (vm.conf CABLES)");
	n = self->n;
	for (i = 0; i < n; i++)
		if (llmdev_rd64(self->c[i], LLMDEV_REG_SERIAL) - base >= (uint64_t)n)
			SKIP(return, "%s: serial %#" PRIx64 " is not a default one",
			     self->c[i]->bdf, llmdev_rd64(self->c[i], LLMDEV_REG_SERIAL));
	/* card index k = serial - base: the k-th card created */
	a = card_by_serial(self, base);
	b = card_by_serial(self, base + 1);
	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	ca = self->c[a];
	cb = self->c[b];
	/* cabled before anything is enabled: ports 0 and 1, not 2 and 3 */
	for (i = 0; i < n; i++) {
		for (p = 0; p < NPORTS; p++) {
			EXPECT_EQ(p < 2 ? LLMDEV_LINK_STATUS_CABLED : 0,
				  lrd(self->c[i], p, LLMDEV_LINK_STATUS))
				TH_LOG("%s port %u", self->c[i]->bdf, p);
		}
	}

	lenable(ca, 0, true);
	EXPECT_EQ(LLMDEV_LINK_STATE_TRAINING, lstate(ca, 0));
	EXPECT_EQ(LLMDEV_LINK_EVENT_STATE(0), llmdev_rd32(ca, LLMDEV_REG_LINK_EVENT));
	EXPECT_EQ(LLMDEV_EVENT_LINK, llmdev_rd32(ca, LLMDEV_REG_EVENT_CAUSE));
	EXPECT_NE(0, llmdev_rd32(ca, LLMDEV_REG_IRQ_STATUS) & LLMDEV_IRQ_EVENT);
	llmdev_wr32(ca, LLMDEV_REG_LINK_EVENT, ~0u);
	llmdev_wr32(ca, LLMDEV_REG_EVENT_CAUSE, ~0u);
	EXPECT_EQ(0, llmdev_rd32(ca, LLMDEV_REG_LINK_EVENT));
	EXPECT_EQ(0, llmdev_rd32(ca, LLMDEV_REG_EVENT_CAUSE));
	/* the other end is still disabled: no link however long we wait */
	llmdev_sleep_ms(20);
	EXPECT_EQ(LLMDEV_LINK_STATE_TRAINING, lstate(ca, 0));
	EXPECT_EQ(LLMDEV_LINK_STATE_DOWN, lstate(cb, 1));
	EXPECT_EQ(0, llmdev_rd32(cb, LLMDEV_REG_LINK_EVENT));

	lenable(cb, 1, true);
	ASSERT_TRUE(POLL(lstate(ca, 0) == LLMDEV_LINK_STATE_UP &&
			 lstate(cb, 1) == LLMDEV_LINK_STATE_UP, WAIT_MS));
	EXPECT_EQ(base + 1, lrd64(ca, 0, LLMDEV_LINK_PEER_SERIAL));
	EXPECT_EQ(1, lrd(ca, 0, LLMDEV_LINK_PEER_PORT));
	EXPECT_EQ(base, lrd64(cb, 1, LLMDEV_LINK_PEER_SERIAL));
	EXPECT_EQ(0, lrd(cb, 1, LLMDEV_LINK_PEER_PORT));
	EXPECT_EQ(LLMDEV_LINK_EVENT_STATE(0), llmdev_rd32(ca, LLMDEV_REG_LINK_EVENT));
	/* cb went DOWN -> TRAINING -> UP: one bit, it is sticky */
	EXPECT_EQ(LLMDEV_LINK_EVENT_STATE(1), llmdev_rd32(cb, LLMDEV_REG_LINK_EVENT));
	EXPECT_EQ(LLMDEV_EVENT_LINK, llmdev_rd32(cb, LLMDEV_REG_EVENT_CAUSE));
	EXPECT_EQ(0, lrd(ca, 0, LLMDEV_LINK_DOWN_COUNT));

	/* the whole ring: card k port 0 <-> card k+1 port 1 */
	links_up(_metadata, self);
	for (i = 0; i < n; i++) {
		struct llmdev_card *c = self->c[i];
		uint64_t k = llmdev_rd64(c, LLMDEV_REG_SERIAL) - base;

		EXPECT_EQ(base + (k + 1) % n, lrd64(c, 0, LLMDEV_LINK_PEER_SERIAL));
		EXPECT_EQ(1, lrd(c, 0, LLMDEV_LINK_PEER_PORT));
		EXPECT_EQ(base + (k + n - 1) % n, lrd64(c, 1, LLMDEV_LINK_PEER_SERIAL));
		EXPECT_EQ(0, lrd(c, 1, LLMDEV_LINK_PEER_PORT));
		for (p = 2; p < NPORTS; p++) {
			/* enabled but not cabled: down */
			EXPECT_EQ(LLMDEV_LINK_STATE_DOWN, lrd(c, p, LLMDEV_LINK_STATUS));
			EXPECT_EQ(~0u, lrd(c, p, LLMDEV_LINK_PEER_PORT));
		}
		/* no errors from any of this */
		EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	}
}

/* disable or FORCE_DOWN one end: both ends lose the link, then retrain */
TEST_F(links, down_and_retrain)
{
	unsigned int pa, pb;
	int b;
	struct llmdev_card *ca, *cb;

	NEED_CARDS(2);
	links_up(_metadata, self);
	ASSERT_TRUE(some_pair(self, &pa, &b, &pb));
	ca = self->c[0];
	cb = self->c[b];
	llmdev_wr32(ca, LLMDEV_REG_LINK_EVENT, ~0u);
	llmdev_wr32(cb, LLMDEV_REG_LINK_EVENT, ~0u);

	/* disable b's end: b DOWN, a has lost its link and waits (TRAINING) */
	lenable(cb, pb, false);
	EXPECT_EQ(LLMDEV_LINK_STATUS_CABLED | LLMDEV_LINK_STATE_DOWN,
		  lrd(cb, pb, LLMDEV_LINK_STATUS));
	EXPECT_EQ(LLMDEV_LINK_STATUS_CABLED | LLMDEV_LINK_STATE_TRAINING,
		  lrd(ca, pa, LLMDEV_LINK_STATUS));
	EXPECT_EQ(1, lrd(ca, pa, LLMDEV_LINK_DOWN_COUNT));
	EXPECT_EQ(1, lrd(cb, pb, LLMDEV_LINK_DOWN_COUNT));
	EXPECT_EQ(0, lrd64(ca, pa, LLMDEV_LINK_PEER_SERIAL));
	EXPECT_EQ(~0u, lrd(ca, pa, LLMDEV_LINK_PEER_PORT));
	EXPECT_NE(0, llmdev_rd32(ca, LLMDEV_REG_LINK_EVENT) & LLMDEV_LINK_EVENT_STATE(pa));
	EXPECT_NE(0, llmdev_rd32(cb, LLMDEV_REG_LINK_EVENT) & LLMDEV_LINK_EVENT_STATE(pb));
	lenable(cb, pb, true);
	ASSERT_TRUE(POLL(lstate(ca, pa) == LLMDEV_LINK_STATE_UP &&
			 lstate(cb, pb) == LLMDEV_LINK_STATE_UP, WAIT_MS));
	EXPECT_EQ(llmdev_rd64(cb, LLMDEV_REG_SERIAL), lrd64(ca, pa, LLMDEV_LINK_PEER_SERIAL));

	/* FORCE_DOWN on a's end: both DOWN and marked forced, until cleared */
	llmdev_wr32(ca, LNK(pa, LLMDEV_LINK_FAULT), LLMDEV_LINK_FAULT_FORCE_DOWN);
	EXPECT_EQ(LLMDEV_LINK_FAULT_FORCE_DOWN, lrd(ca, pa, LLMDEV_LINK_FAULT));
	EXPECT_EQ(0, lrd(cb, pb, LLMDEV_LINK_FAULT));
	EXPECT_EQ(LLMDEV_LINK_STATUS_CABLED | LLMDEV_LINK_STATUS_FORCED_DOWN |
		  LLMDEV_LINK_STATE_DOWN, lrd(ca, pa, LLMDEV_LINK_STATUS));
	EXPECT_EQ(LLMDEV_LINK_STATUS_CABLED | LLMDEV_LINK_STATUS_FORCED_DOWN |
		  LLMDEV_LINK_STATE_DOWN, lrd(cb, pb, LLMDEV_LINK_STATUS));
	EXPECT_EQ(2, lrd(ca, pa, LLMDEV_LINK_DOWN_COUNT));
	EXPECT_EQ(2, lrd(cb, pb, LLMDEV_LINK_DOWN_COUNT));
	llmdev_sleep_ms(10);
	EXPECT_EQ(LLMDEV_LINK_STATE_DOWN, lstate(cb, pb));
	llmdev_wr32(ca, LNK(pa, LLMDEV_LINK_FAULT), 0);
	EXPECT_NE(LLMDEV_LINK_STATE_DOWN, lstate(ca, pa));
	ASSERT_TRUE(POLL(lstate(ca, pa) == LLMDEV_LINK_STATE_UP &&
			 lstate(cb, pb) == LLMDEV_LINK_STATE_UP, WAIT_MS));
	EXPECT_EQ(2, lrd(ca, pa, LLMDEV_LINK_DOWN_COUNT));
	EXPECT_EQ(pb, lrd(ca, pa, LLMDEV_LINK_PEER_PORT));

	/* FORCE_DOWN on a disabled end also keeps the other end down */
	lenable(ca, pa, false);
	llmdev_wr32(ca, LNK(pa, LLMDEV_LINK_FAULT), LLMDEV_LINK_FAULT_FORCE_DOWN);
	EXPECT_EQ(LLMDEV_LINK_STATUS_CABLED | LLMDEV_LINK_STATUS_FORCED_DOWN |
		  LLMDEV_LINK_STATE_DOWN, lrd(cb, pb, LLMDEV_LINK_STATUS));
	/* bits outside FORCE_DOWN are not stored */
	llmdev_wr32(ca, LNK(pa, LLMDEV_LINK_FAULT), ~LLMDEV_LINK_FAULT_ERROR_BURST);
	EXPECT_EQ(LLMDEV_LINK_FAULT_FORCE_DOWN, lrd(ca, pa, LLMDEV_LINK_FAULT));
	llmdev_wr32(ca, LNK(pa, LLMDEV_LINK_CTRL), ~0u);
	EXPECT_EQ(LLMDEV_LINK_CTRL_ENABLE, lrd(ca, pa, LLMDEV_LINK_CTRL));
	EXPECT_EQ(0, llmdev_rd32(ca, LLMDEV_REG_ERR_COUNT));
}

TEST_F(links, error_burst)
{
	unsigned int pa, pb, p;
	int b;
	struct llmdev_card *ca, *cb;

	NEED_CARDS(2);
	links_up(_metadata, self);
	ASSERT_TRUE(some_pair(self, &pa, &b, &pb));
	ca = self->c[0];
	cb = self->c[b];
	llmdev_wr32(ca, LLMDEV_REG_LINK_EVENT, ~0u);
	llmdev_wr32(cb, LLMDEV_REG_LINK_EVENT, ~0u);
	llmdev_wr32(ca, LLMDEV_REG_EVENT_CAUSE, ~0u);
	llmdev_wr32(cb, LLMDEV_REG_EVENT_CAUSE, ~0u);
	llmdev_wr32(cb, LLMDEV_REG_IRQ_STATUS, ~0u);

	llmdev_wr32(ca, LNK(pa, LLMDEV_LINK_FAULT),
		    LLMDEV_LINK_FAULT_ERROR_BURST | 1000u << 16);
	EXPECT_EQ(1000, lrd64(ca, pa, LLMDEV_LINK_TX_ERRORS));
	EXPECT_EQ(0, lrd64(ca, pa, LLMDEV_LINK_RX_ERRORS));
	EXPECT_EQ(1000, lrd64(cb, pb, LLMDEV_LINK_RX_ERRORS));
	EXPECT_EQ(0, lrd64(cb, pb, LLMDEV_LINK_TX_ERRORS));
	EXPECT_EQ(LLMDEV_LINK_EVENT_ERROR(pa), llmdev_rd32(ca, LLMDEV_REG_LINK_EVENT));
	EXPECT_EQ(LLMDEV_LINK_EVENT_ERROR(pb), llmdev_rd32(cb, LLMDEV_REG_LINK_EVENT));
	EXPECT_EQ(LLMDEV_EVENT_LINK, llmdev_rd32(ca, LLMDEV_REG_EVENT_CAUSE));
	EXPECT_EQ(LLMDEV_EVENT_LINK, llmdev_rd32(cb, LLMDEV_REG_EVENT_CAUSE));
	EXPECT_EQ(LLMDEV_IRQ_EVENT, llmdev_rd32(cb, LLMDEV_REG_IRQ_STATUS));
	/* ERROR_BURST is write-only; the link stays up */
	EXPECT_EQ(0, lrd(ca, pa, LLMDEV_LINK_FAULT));
	EXPECT_EQ(LLMDEV_LINK_STATE_UP, lstate(ca, pa));
	EXPECT_EQ(LLMDEV_LINK_STATE_UP, lstate(cb, pb));

	/* the other way, and counts add up; LINK_EVENT bits are RW1C */
	llmdev_wr32(ca, LLMDEV_REG_LINK_EVENT, LLMDEV_LINK_EVENT_ERROR(pa));
	EXPECT_EQ(0, llmdev_rd32(ca, LLMDEV_REG_LINK_EVENT));
	llmdev_wr32(cb, LNK(pb, LLMDEV_LINK_FAULT),
		    LLMDEV_LINK_FAULT_ERROR_BURST | 0xffffu << 16);
	llmdev_wr32(cb, LNK(pb, LLMDEV_LINK_FAULT), LLMDEV_LINK_FAULT_ERROR_BURST | 1u << 16);
	EXPECT_EQ(0x10000, lrd64(cb, pb, LLMDEV_LINK_TX_ERRORS));
	EXPECT_EQ(0x10000, lrd64(ca, pa, LLMDEV_LINK_RX_ERRORS));
	EXPECT_EQ(1000, lrd64(ca, pa, LLMDEV_LINK_TX_ERRORS));
	EXPECT_EQ(LLMDEV_LINK_EVENT_ERROR(pa), llmdev_rd32(ca, LLMDEV_REG_LINK_EVENT));

	/* not up (count 0, a port without a cable, a disabled link): ignored */
	llmdev_wr32(ca, LLMDEV_REG_LINK_EVENT, ~0u);
	llmdev_wr32(ca, LNK(pa, LLMDEV_LINK_FAULT), LLMDEV_LINK_FAULT_ERROR_BURST);
	for (p = 0; p < NPORTS; p++)
		if (self->peer[0][p] < 0)
			llmdev_wr32(ca, LNK(p, LLMDEV_LINK_FAULT),
				    LLMDEV_LINK_FAULT_ERROR_BURST | 5u << 16);
	lenable(cb, pb, false);
	llmdev_wr32(ca, LLMDEV_REG_LINK_EVENT, ~0u);
	llmdev_wr32(ca, LNK(pa, LLMDEV_LINK_FAULT), LLMDEV_LINK_FAULT_ERROR_BURST | 7u << 16);
	EXPECT_EQ(1000, lrd64(ca, pa, LLMDEV_LINK_TX_ERRORS));
	EXPECT_EQ(0x10000, lrd64(cb, pb, LLMDEV_LINK_TX_ERRORS));
	for (p = 0; p < NPORTS; p++)
		if (p != pa)
			EXPECT_EQ(0, lrd64(ca, p, LLMDEV_LINK_TX_ERRORS));
	EXPECT_EQ(0, llmdev_rd32(ca, LLMDEV_REG_LINK_EVENT));
	/* links never use the error log */
	EXPECT_EQ(0, llmdev_rd32(ca, LLMDEV_REG_ERR_COUNT));
	EXPECT_EQ(0, llmdev_rd32(cb, LLMDEV_REG_ERR_COUNT));
}

/* a soft reset takes the card's links down; the peer sees it */
TEST_F(links, reset_drops_peer)
{
	unsigned int pa, pb;
	int b;
	struct llmdev_card *ca, *cb;

	NEED_CARDS(2);
	links_up(_metadata, self);
	ASSERT_TRUE(some_pair(self, &pa, &b, &pb));
	ca = self->c[0];
	cb = self->c[b];
	llmdev_wr32(cb, LLMDEV_REG_LINK_EVENT, ~0u);
	llmdev_wr32(cb, LLMDEV_REG_EVENT_CAUSE, ~0u);
	LLMDEV_RESET(ca);
	EXPECT_EQ(LLMDEV_LINK_STATUS_CABLED | LLMDEV_LINK_STATE_DOWN,
		  lrd(ca, pa, LLMDEV_LINK_STATUS));
	EXPECT_EQ(0, lrd(ca, pa, LLMDEV_LINK_CTRL));
	EXPECT_EQ(0, lrd(ca, pa, LLMDEV_LINK_DOWN_COUNT));
	EXPECT_EQ(0, llmdev_rd32(ca, LLMDEV_REG_LINK_EVENT));
	EXPECT_EQ(0, llmdev_rd32(ca, LLMDEV_REG_EVENT_CAUSE));
	EXPECT_EQ(LLMDEV_LINK_STATE_TRAINING, lstate(cb, pb));
	EXPECT_EQ(1, lrd(cb, pb, LLMDEV_LINK_DOWN_COUNT));
	EXPECT_NE(0, llmdev_rd32(cb, LLMDEV_REG_LINK_EVENT) & LLMDEV_LINK_EVENT_STATE(pb));
	EXPECT_EQ(LLMDEV_EVENT_LINK, llmdev_rd32(cb, LLMDEV_REG_EVENT_CAUSE));
	/* software enables it again: retrains */
	lenable(ca, pa, true);
	EXPECT_TRUE(POLL(lstate(ca, pa) == LLMDEV_LINK_STATE_UP, WAIT_MS));
}

/* ---- tests: collectives ------------------------------------------------ */

TEST_F_TIMEOUT(links, allreduce_2, 60)
{
	struct ring g;
	unsigned int pa, pb;
	int b;

	NEED_CARDS(2);
	links_up(_metadata, self);
	ASSERT_TRUE(some_pair(self, &pa, &b, &pb));
	ring_pair(0, pa, b, pb, &g);
	/* odd count: segments of different sizes; several chunks per step */
	allreduce_check(_metadata, self, &g, LLMDEV_COLL_DTYPE_I32,
			LLMDEV_COLL_REDOP_SUM, 3001, 1024);
	/* one chunk per step (default chunk), divisible count */
	allreduce_check(_metadata, self, &g, LLMDEV_COLL_DTYPE_I32,
			LLMDEV_COLL_REDOP_SUM, 4096, 0);
	/* no errors, and the event fired */
	EXPECT_EQ(0, llmdev_rd32(self->c[0], LLMDEV_REG_ERR_COUNT));
	EXPECT_EQ(2, llmdev_perf(self->c[0], LLMDEV_PERF_COLL_OPS));
	EXPECT_LT(0, llmdev_perf(self->c[0], LLMDEV_PERF_COLL_BUSY_NS));
}

TEST_F_TIMEOUT(links, allreduce_ring, 60)
{
	int order[LLMDEV_MAX_CARDS];
	struct ring g;

	NEED_CARDS(3);
	links_up(_metadata, self);
	if (!ring_order(self, order))
		SKIP(return, "the cards are not cabled as one port 0 -> port 1 ring");
	ring_all(self, order, &g);
	TH_LOG("AllReduce over %u cards", g.n);
	allreduce_check(_metadata, self, &g, LLMDEV_COLL_DTYPE_I32,
			LLMDEV_COLL_REDOP_SUM, 4096 * g.n, 2048);
	allreduce_check(_metadata, self, &g, LLMDEV_COLL_DTYPE_I32,
			LLMDEV_COLL_REDOP_SUM, 1003, 64);
	/* fewer elements than ranks: empty segments */
	allreduce_check(_metadata, self, &g, LLMDEV_COLL_DTYPE_I32,
			LLMDEV_COLL_REDOP_SUM, g.n - 1, 0);
}

/* every data type and reduction, in the documented order and rounding */
TEST_F_TIMEOUT(links, allreduce_dtypes, 60)
{
	static const uint32_t dt[] = { LLMDEV_COLL_DTYPE_F32, LLMDEV_COLL_DTYPE_F16,
				       LLMDEV_COLL_DTYPE_BF16, LLMDEV_COLL_DTYPE_I32 };
	int order[LLMDEV_MAX_CARDS];
	unsigned int pa, pb, i, op;
	struct ring g;
	int b;

	NEED_CARDS(2);
	links_up(_metadata, self);
	if (!ring_order(self, order)) {
		ASSERT_TRUE(some_pair(self, &pa, &b, &pb));
		ring_pair(0, pa, b, pb, &g);
	} else {
		ring_all(self, order, &g);
	}
	for (i = 0; i < sizeof(dt) / sizeof(dt[0]); i++)
		for (op = LLMDEV_COLL_REDOP_SUM; op <= LLMDEV_COLL_REDOP_MAX; op++)
			allreduce_check(_metadata, self, &g, dt[i], op, 1031, 128);
}

TEST_F_TIMEOUT(links, broadcast, 60)
{
	int order[LLMDEV_MAX_CARDS];
	uint64_t count = 5000, bytes = count * 2, tx0[LLMDEV_MAX_CARDS];
	uint8_t *data, *got;
	struct ring g;
	unsigned int r, root, pa, pb;
	int b;

	NEED_CARDS(2);
	links_up(_metadata, self);
	if (!ring_order(self, order)) {
		ASSERT_TRUE(some_pair(self, &pa, &b, &pb));
		ring_pair(0, pa, b, pb, &g);
	} else {
		ring_all(self, order, &g);
	}
	root = g.n - 1;
	data = malloc(bytes);
	got = malloc(bytes);
	ASSERT_NE(NULL, data);
	ASSERT_NE(NULL, got);
	llmdev_fill_random(data, bytes, &self->seed);
	llmdev_ap_write(self->c[g.card[root]], SRC_OFF, data, bytes);
	for (r = 0; r < g.n; r++) {
		struct llmdev_card *c = self->c[g.card[r]];
		struct cparm p = {
			.tag = 0xb0ca57, .rank = r, .nranks = g.n,
			.op = LLMDEV_COLL_OP(LLMDEV_COLL_KIND_BROADCAST, 0,
					     LLMDEV_COLL_DTYPE_BF16, root),
			.tx = g.tx[r], .rx = g.rx[r], .chunk = 1024, .count = count,
			/* SRC of the others is neither read nor checked */
			.src = r == root ? SRC_OFF : ~0ull, .dst = DST_OFF,
		};

		memset(got, r + 1, bytes);
		llmdev_ap_write(c, DST_OFF, got, bytes);
		tx0[r] = lrd64(c, g.tx[r], LLMDEV_LINK_TX_BYTES);
		coll_set(c, &p);
	}
	for (r = 0; r < g.n; r++)
		coll_start(self->c[g.card[r]]);
	for (r = 0; r < g.n; r++) {
		struct llmdev_card *c = self->c[g.card[r]];
		/* the link out of the rank before the root carries nothing */
		uint64_t want = (r + 1) % g.n == root ? 0 : bytes;

		EXPECT_EQ(LLMDEV_COLL_STATUS_DONE, coll_wait(c, WAIT_MS)) TH_LOG("rank %u", r);
		llmdev_ap_read(c, DST_OFF, got, bytes);
		EXPECT_EQ(-1, llmdev_memdiff(data, got, bytes)) TH_LOG("rank %u", r);
		EXPECT_EQ(want, lrd64(c, g.tx[r], LLMDEV_LINK_TX_BYTES) - tx0[r])
			TH_LOG("rank %u", r);
		EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
	}
	free(data);
	free(got);
}

/* errors found at START: ERROR with PARAM at once, nothing posted */
TEST_F(links, param_errors)
{
	struct llmdev_card *c;
	uint64_t hbm;
	const uint32_t ar = LLMDEV_COLL_OP(LLMDEV_COLL_KIND_ALLREDUCE,
					   LLMDEV_COLL_REDOP_SUM, LLMDEV_COLL_DTYPE_I32, 0);
	struct cparm ok = { .tag = 7, .op = ar, .rank = 0, .nranks = 1,
			    .count = 1024, .src = SRC_OFF, .dst = DST_OFF };
	struct { const char *why; struct cparm p; } bad[] = {
		{ "kind 0", ok }, { "kind 3", ok }, { "dtype 4", ok }, { "redop 3", ok },
		{ "reserved op bits", ok }, { "nranks 0", ok }, { "nranks 17", ok },
		{ "rank = nranks", ok }, { "root = nranks", ok }, { "tx port 4", ok },
		{ "rx port 15", ok }, { "count 0", ok }, { "chunk 32", ok },
		{ "chunk 100", ok }, { "SRC beyond HBM", ok }, { "DST beyond HBM", ok },
		{ "DST wraps", ok }, { "count * size beyond 2^64", ok },
		{ "SRC and DST overlap", ok }, { "DST overlaps SRC", ok },
	};
	uint8_t buf[4096], out[4096];
	unsigned int i, done = 0;

	NEED_CARDS(1);
	c = self->c[0];
	hbm = c->res[LLMDEV_BAR_HBM].size;
	bad[0].p.op = LLMDEV_COLL_OP(0, 0, LLMDEV_COLL_DTYPE_I32, 0);
	bad[1].p.op = LLMDEV_COLL_OP(3, 0, LLMDEV_COLL_DTYPE_I32, 0);
	bad[2].p.op = LLMDEV_COLL_OP(LLMDEV_COLL_KIND_ALLREDUCE, 0, 4, 0);
	bad[3].p.op = LLMDEV_COLL_OP(LLMDEV_COLL_KIND_ALLREDUCE, 3, LLMDEV_COLL_DTYPE_I32, 0);
	bad[4].p.op = ar | 1u << 24;
	bad[5].p.nranks = 0;
	bad[6].p.nranks = LLMDEV_COLL_MAX_RANKS + 1;
	bad[7].p.rank = 1;
	bad[8].p.op = LLMDEV_COLL_OP(LLMDEV_COLL_KIND_BROADCAST, 0, LLMDEV_COLL_DTYPE_I32, 1);
	bad[9].p.tx = 4;
	bad[10].p.rx = 15;
	bad[11].p.count = 0;
	bad[12].p.chunk = 32;
	bad[13].p.chunk = 100;
	bad[14].p.src = hbm - 4092;
	bad[15].p.dst = hbm - 4092;
	bad[16].p.dst = ~0ull - 100;
	bad[17].p.count = 1ull << 62;
	bad[18].p.src = DST_OFF + 4;
	bad[19].p.dst = SRC_OFF - 4092;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bad[i].p.tag = 0x100 + i;
		coll_set(c, &bad[i].p);
		coll_start(c);
		/* decided before the write completes */
		EXPECT_EQ(COLL_ERROR(LLMDEV_COLL_ERR_PARAM), coll_status(c))
			TH_LOG("%s", bad[i].why);
		EXPECT_EQ(++done, llmdev_rd32(c, LLMDEV_REG_COLL_COMPLETED));
		EXPECT_EQ(0x100 + i, llmdev_rd64(c, LLMDEV_REG_COLL_DONE_TAG));
	}
	EXPECT_EQ(done, llmdev_perf(c, LLMDEV_PERF_COLL_OPS));
	EXPECT_EQ(LLMDEV_EVENT_COLL, llmdev_rd32(c, LLMDEV_REG_EVENT_CAUSE));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));

	/* one rank: SRC copied to DST, done; START cleared the error */
	llmdev_fill_random(buf, sizeof(buf), &self->seed);
	llmdev_ap_write(c, SRC_OFF, buf, sizeof(buf));
	ok.count = sizeof(buf) / 4;
	ok.tag = 0x1;
	coll_set(c, &ok);
	coll_start(c);
	EXPECT_EQ(LLMDEV_COLL_STATUS_DONE, coll_wait(c, WAIT_MS));
	llmdev_ap_read(c, DST_OFF, out, sizeof(out));
	EXPECT_EQ(-1, llmdev_memdiff(buf, out, sizeof(out)));
	EXPECT_EQ(0, lrd64(c, 0, LLMDEV_LINK_TX_BYTES));
	/* a broadcast ignores redop (0xf here); one rank: the root copies */
	ok.op = LLMDEV_COLL_OP(LLMDEV_COLL_KIND_BROADCAST, 0xf, LLMDEV_COLL_DTYPE_F16, 0);
	ok.tag = 0x2;
	coll_set(c, &ok);
	coll_start(c);
	EXPECT_EQ(LLMDEV_COLL_STATUS_DONE, coll_wait(c, WAIT_MS));
	EXPECT_EQ(2, llmdev_rd64(c, LLMDEV_REG_COLL_DONE_TAG));
	/* the parameter registers read back; COLL_CTRL reads 0 */
	EXPECT_EQ(ok.op, llmdev_rd32(c, LLMDEV_REG_COLL_OP));
	EXPECT_EQ(1u << 8, llmdev_rd32(c, LLMDEV_REG_COLL_RANK));
	EXPECT_EQ(SRC_OFF, llmdev_rd64(c, LLMDEV_REG_COLL_SRC));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_COLL_CTRL));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));
}

TEST_F(links, link_down_error)
{
	struct llmdev_card *c;
	struct cparm p = {
		.tag = 0xd0, .rank = 0, .nranks = 2, .tx = 0, .rx = 1, .count = 64,
		.op = LLMDEV_COLL_OP(LLMDEV_COLL_KIND_ALLREDUCE, 0, LLMDEV_COLL_DTYPE_I32, 0),
		.src = DST_OFF, .dst = DST_OFF,
	};

	NEED_CARDS(1);
	c = self->c[0];
	/* links disabled after reset: fails at once */
	coll_set(c, &p);
	coll_start(c);
	EXPECT_EQ(COLL_ERROR(LLMDEV_COLL_ERR_LINK_DOWN), coll_status(c));
	EXPECT_EQ(1, llmdev_rd32(c, LLMDEV_REG_COLL_COMPLETED));
	EXPECT_EQ(0xd0, llmdev_rd64(c, LLMDEV_REG_COLL_DONE_TAG));
	/* a port without a cable never comes up */
	if (self->n >= 2) {
		links_up(_metadata, self);
		p.tx = p.rx = 3;
		if (self->peer[0][3] < 0) {
			coll_set(c, &p);
			coll_start(c);
			EXPECT_EQ(COLL_ERROR(LLMDEV_COLL_ERR_LINK_DOWN), coll_status(c));
		}
	}
}

TEST_F(links, mismatch_and_topology)
{
	struct llmdev_card *ca, *cb;
	unsigned int pa, pb, q;
	int b;
	struct cparm p = {
		.tag = 0x3131, .nranks = 2, .count = 256, .src = DST_OFF, .dst = DST_OFF,
		.op = LLMDEV_COLL_OP(LLMDEV_COLL_KIND_ALLREDUCE, 0, LLMDEV_COLL_DTYPE_I32, 0),
	};

	NEED_CARDS(2);
	links_up(_metadata, self);
	ASSERT_TRUE(some_pair(self, &pa, &b, &pb));
	ca = self->c[0];
	cb = self->c[b];

	/* different counts: both fail with MISMATCH when the last one posts */
	p.rank = 0;
	p.tx = p.rx = pa;
	coll_set(ca, &p);
	coll_start(ca);
	EXPECT_EQ(LLMDEV_COLL_STATUS_BUSY, coll_status(ca));
	p.rank = 1;
	p.tx = p.rx = pb;
	p.count = 512;
	coll_set(cb, &p);
	coll_start(cb);
	EXPECT_EQ(COLL_ERROR(LLMDEV_COLL_ERR_MISMATCH), coll_status(ca));
	EXPECT_EQ(COLL_ERROR(LLMDEV_COLL_ERR_MISMATCH), coll_status(cb));
	EXPECT_EQ(0x3131, llmdev_rd64(ca, LLMDEV_REG_COLL_DONE_TAG));

	/* the same rank twice: rank 1 never posts, so nothing completes */
	p.count = 256;
	p.rank = 0;
	p.tag++;
	coll_set(cb, &p);
	p.tx = p.rx = pa;
	coll_set(ca, &p);
	coll_start(ca);
	coll_start(cb);
	EXPECT_EQ(LLMDEV_COLL_STATUS_BUSY, coll_status(cb));
	llmdev_wr32(ca, LLMDEV_REG_COLL_CTRL, LLMDEV_COLL_CTRL_ABORT);
	llmdev_wr32(cb, LLMDEV_REG_COLL_CTRL, LLMDEV_COLL_CTRL_ABORT);
	EXPECT_EQ(COLL_ERROR(LLMDEV_COLL_ERR_ABORTED), coll_status(ca));

	/* b's tx cable does not arrive on a's rx port: TOPOLOGY on both */
	for (q = 0; q < NPORTS; q++)
		if (q != pa && lstate(ca, q) == LLMDEV_LINK_STATE_UP)
			break;
	if (q == NPORTS) {
		/* a has one cable: a's rx on a port without one is LINK_DOWN */
		TH_LOG("card 0 has one cable: no TOPOLOGY case");
		return;
	}
	p.tag++;
	p.rank = 0;
	p.tx = pa;
	p.rx = q;		/* up, but b's cable arrives on pa */
	coll_set(ca, &p);
	p.rank = 1;
	p.tx = p.rx = pb;
	coll_set(cb, &p);
	coll_start(ca);
	coll_start(cb);
	EXPECT_EQ(COLL_ERROR(LLMDEV_COLL_ERR_TOPOLOGY), coll_status(ca));
	EXPECT_EQ(COLL_ERROR(LLMDEV_COLL_ERR_TOPOLOGY), coll_status(cb));
	EXPECT_EQ(0, lrd64(ca, pa, LLMDEV_LINK_TX_BYTES));
}

TEST_F(links, timeout_and_busy)
{
	struct llmdev_card *ca;
	unsigned int pa, pb;
	uint32_t errs;
	uint64_t t0;
	int b;
	struct cparm p = {
		.tag = 0x7173, .rank = 0, .nranks = 2, .count = 256, .src = DST_OFF,
		.dst = DST_OFF, .timeout_us = 20000,
		.op = LLMDEV_COLL_OP(LLMDEV_COLL_KIND_ALLREDUCE, 0, LLMDEV_COLL_DTYPE_I32, 0),
	};

	NEED_CARDS(2);
	links_up(_metadata, self);
	ASSERT_TRUE(some_pair(self, &pa, &b, &pb));
	ca = self->c[0];
	p.tx = p.rx = pa;
	coll_set(ca, &p);
	t0 = llmdev_rd64(ca, LLMDEV_REG_TIMESTAMP);
	coll_start(ca);
	EXPECT_EQ(LLMDEV_COLL_STATUS_BUSY, coll_status(ca));
	/* START again and parameter writes while BUSY: refused and logged */
	errs = llmdev_rd32(ca, LLMDEV_REG_ERR_COUNT);
	coll_start(ca);
	llmdev_wr64(ca, LLMDEV_REG_COLL_COUNT, 1);
	EXPECT_EQ(errs + 2, llmdev_rd32(ca, LLMDEV_REG_ERR_COUNT));
	EXPECT_ERR_LOGGED(ca, errs, LLMDEV_ERR_REG_ACCESS, LLMDEV_SRC_NONE);
	EXPECT_EQ(256, llmdev_rd64(ca, LLMDEV_REG_COLL_COUNT));
	EXPECT_EQ(LLMDEV_COLL_STATUS_BUSY, coll_status(ca));
	EXPECT_EQ(0, llmdev_rd32(ca, LLMDEV_REG_COLL_COMPLETED));

	EXPECT_EQ(COLL_ERROR(LLMDEV_COLL_ERR_TIMEOUT), coll_wait(ca, WAIT_MS));
	EXPECT_LE(t0 + 20000000ull, llmdev_rd64(ca, LLMDEV_REG_TIMESTAMP));
	EXPECT_EQ(1, llmdev_rd32(ca, LLMDEV_REG_COLL_COMPLETED));
	/* the peer never posted: untouched */
	EXPECT_EQ(0, coll_status(self->c[b]));
	EXPECT_EQ(0, llmdev_rd32(self->c[b], LLMDEV_REG_COLL_COMPLETED));
	/* the late peer now waits alone (no timeout): abort it */
	p.rank = 1;
	p.tx = p.rx = pb;
	p.timeout_us = 0;
	coll_set(self->c[b], &p);
	coll_start(self->c[b]);
	llmdev_sleep_ms(30);
	EXPECT_EQ(LLMDEV_COLL_STATUS_BUSY, coll_status(self->c[b]));
	llmdev_wr32(self->c[b], LLMDEV_REG_COLL_CTRL, LLMDEV_COLL_CTRL_ABORT);
	EXPECT_EQ(COLL_ERROR(LLMDEV_COLL_ERR_ABORTED), coll_status(self->c[b]));
	/* ABORT with nothing posted: no effect */
	llmdev_wr32(self->c[b], LLMDEV_REG_COLL_CTRL, LLMDEV_COLL_CTRL_ABORT);
	EXPECT_EQ(1, llmdev_rd32(self->c[b], LLMDEV_REG_COLL_COMPLETED));
}

/* a long collective (64-byte chunks) to abort or reset while it runs */
static void start_long(FIXTURE_DATA(links) *self, const struct ring *g)
{
	struct cparm p = {
		.tag = 0x10c, .chunk = 64, .count = 1 << 20,
		.op = LLMDEV_COLL_OP(LLMDEV_COLL_KIND_ALLREDUCE, 0, LLMDEV_COLL_DTYPE_I32, 0),
	};
	unsigned int r;

	for (r = 0; r < g->n; r++) {
		p.rank = r;
		p.nranks = g->n;
		p.tx = g->tx[r];
		p.rx = g->rx[r];
		p.src = p.dst = DST_OFF;
		coll_set(self->c[g->card[r]], &p);
	}
	for (r = 0; r < g->n; r++)
		coll_start(self->c[g->card[r]]);
}

TEST_F(links, abort_running)
{
	struct ring g;
	unsigned int pa, pb;
	uint64_t tx;
	int b;

	NEED_CARDS(2);
	links_up(_metadata, self);
	ASSERT_TRUE(some_pair(self, &pa, &b, &pb));
	ring_pair(0, pa, b, pb, &g);
	start_long(self, &g);
	/* every member posted: running at once */
	EXPECT_EQ(LLMDEV_COLL_STATUS_BUSY | LLMDEV_COLL_STATUS_RUNNING,
		  coll_status(self->c[0]));
	EXPECT_EQ(LLMDEV_COLL_STATUS_BUSY | LLMDEV_COLL_STATUS_RUNNING,
		  coll_status(self->c[b]));
	llmdev_sleep_ms(5);
	llmdev_wr32(self->c[b], LLMDEV_REG_COLL_CTRL, LLMDEV_COLL_CTRL_ABORT);
	EXPECT_EQ(COLL_ERROR(LLMDEV_COLL_ERR_ABORTED), coll_status(self->c[0]));
	EXPECT_EQ(COLL_ERROR(LLMDEV_COLL_ERR_ABORTED), coll_status(self->c[b]));
	tx = lrd64(self->c[0], pa, LLMDEV_LINK_TX_BYTES);
	TH_LOG("aborted after %" PRIu64 " of %u bytes", tx, 4u << 20);
	EXPECT_GT(4ull << 20, tx);
	llmdev_sleep_ms(5);
	EXPECT_EQ(tx, lrd64(self->c[0], pa, LLMDEV_LINK_TX_BYTES));
	EXPECT_EQ(1, llmdev_rd32(self->c[0], LLMDEV_REG_COLL_COMPLETED));
	EXPECT_EQ(1, llmdev_perf(self->c[b], LLMDEV_PERF_COLL_OPS));
	/* the links are still up and the engine works again */
	allreduce_check(_metadata, self, &g, LLMDEV_COLL_DTYPE_I32,
			LLMDEV_COLL_REDOP_SUM, 1000, 0);
}

TEST_F(links, reset_running_member)
{
	struct ring g;
	unsigned int pa, pb;
	int b;

	NEED_CARDS(2);
	links_up(_metadata, self);
	ASSERT_TRUE(some_pair(self, &pa, &b, &pb));
	ring_pair(0, pa, b, pb, &g);
	start_long(self, &g);
	EXPECT_EQ(LLMDEV_COLL_STATUS_BUSY | LLMDEV_COLL_STATUS_RUNNING,
		  coll_status(self->c[b]));
	LLMDEV_RESET(self->c[0]);
	EXPECT_EQ(COLL_ERROR(LLMDEV_COLL_ERR_ABORTED), coll_status(self->c[b]));
	EXPECT_EQ(0, coll_status(self->c[0]));
	EXPECT_EQ(0, llmdev_rd32(self->c[0], LLMDEV_REG_COLL_COMPLETED));
	EXPECT_EQ(LLMDEV_LINK_STATE_TRAINING, lstate(self->c[b], pb));
}

/* DOWN_AFTER drops a link midway: every member fails; then it recovers */
TEST_F_TIMEOUT(links, down_after, 60)
{
	int order[LLMDEV_MAX_CARDS];
	const uint64_t count = 16384, chunk = 1024;
	struct llmdev_card *victim, *peer;
	struct ring g;
	unsigned int r, pa, pb, vp;
	uint64_t budget;
	int b;

	NEED_CARDS(2);
	links_up(_metadata, self);
	if (!ring_order(self, order)) {
		ASSERT_TRUE(some_pair(self, &pa, &b, &pb));
		ring_pair(0, pa, b, pb, &g);
	} else {
		ring_all(self, order, &g);
	}
	/* rank 1's tx link drops after 5 chunks, in the reduce-scatter */
	victim = self->c[g.card[1]];
	vp = g.tx[1];
	peer = self->c[g.card[2 % g.n]];
	budget = 5 * chunk;
	llmdev_wr64(victim, LNK(vp, LLMDEV_LINK_DOWN_AFTER), budget);
	EXPECT_EQ(budget, lrd64(victim, vp, LLMDEV_LINK_DOWN_AFTER));
	{
		struct cparm p = {
			.tag = 0xdead, .chunk = chunk, .count = count,
			.op = LLMDEV_COLL_OP(LLMDEV_COLL_KIND_ALLREDUCE, 0,
					     LLMDEV_COLL_DTYPE_I32, 0),
		};

		ring_start(self, &g, &p);
	}
	for (r = 0; r < g.n; r++) {
		EXPECT_EQ(COLL_ERROR(LLMDEV_COLL_ERR_LINK_DOWN),
			  coll_wait(self->c[g.card[r]], WAIT_MS)) TH_LOG("rank %u", r);
	}
	/* exactly the budget went out; the card set FORCE_DOWN itself */
	EXPECT_EQ(budget, lrd64(victim, vp, LLMDEV_LINK_TX_BYTES));
	EXPECT_EQ(0, lrd64(victim, vp, LLMDEV_LINK_DOWN_AFTER));
	EXPECT_EQ(LLMDEV_LINK_FAULT_FORCE_DOWN, lrd(victim, vp, LLMDEV_LINK_FAULT));
	EXPECT_EQ(LLMDEV_LINK_STATUS_CABLED | LLMDEV_LINK_STATUS_FORCED_DOWN |
		  LLMDEV_LINK_STATE_DOWN, lrd(victim, vp, LLMDEV_LINK_STATUS));
	EXPECT_EQ(LLMDEV_LINK_STATE_DOWN, lstate(peer, g.rx[2 % g.n]));
	EXPECT_EQ(1, lrd(victim, vp, LLMDEV_LINK_DOWN_COUNT));
	EXPECT_NE(0, llmdev_rd32(victim, LLMDEV_REG_LINK_EVENT) & LLMDEV_LINK_EVENT_STATE(vp));
	/* stays down */
	llmdev_sleep_ms(10);
	EXPECT_EQ(LLMDEV_LINK_STATE_DOWN, lstate(victim, vp));

	/* software clears the fault: retrains, and the collective works */
	llmdev_wr32(victim, LNK(vp, LLMDEV_LINK_FAULT), 0);
	ASSERT_TRUE(POLL(all_cabled_up(self), WAIT_MS));
	allreduce_check(_metadata, self, &g, LLMDEV_COLL_DTYPE_I32,
			LLMDEV_COLL_REDOP_SUM, count, chunk);
	/* DOWN_AFTER large enough: counts down, the link stays */
	llmdev_wr64(victim, LNK(vp, LLMDEV_LINK_DOWN_AFTER), 1ull << 40);
	allreduce_check(_metadata, self, &g, LLMDEV_COLL_DTYPE_I32,
			LLMDEV_COLL_REDOP_SUM, count, chunk);
	EXPECT_EQ((1ull << 40) - ar_tx_bytes(count, g.n, 1, LLMDEV_COLL_DTYPE_I32),
		  lrd64(victim, vp, LLMDEV_LINK_DOWN_AFTER));
	EXPECT_EQ(LLMDEV_LINK_STATE_UP, lstate(victim, vp));
}

/* ---- tests: resets of running collectives ---------------------------------- */

#define RESET_ROUNDS	50
#define RESET_COUNT_EL	(4u << 20)	/* i32 elements: 16 MiB per rank */
#define RESET_CHUNK	(4u << 10)	/* many ticks: an FLR takes a while */
#define RESET_QUIET_MS	30

/* HBM words spread over [off, off + len): changes if an engine still runs */
static uint64_t hbm_sample(struct llmdev_card *c, uint64_t off, uint64_t len)
{
	uint64_t h = 0xcbf29ce484222325ull, o;

	for (o = 0; o + 8 <= len; o += 32 * 1024 + 8)
		h = (h ^ *(volatile uint64_t *)(c->bar2 + off + o)) * 0x100000001b3ull;
	return h;
}

/* every port of every card enabled, the cabled ones up */
static void all_up(struct __test_metadata *_metadata, FIXTURE_DATA(links) *self)
{
	int i;
	unsigned int p;

	for (i = 0; i < self->n; i++)
		for (p = 0; p < NPORTS; p++)
			lenable(self->c[i], p, true);
	ASSERT_TRUE(POLL(all_cabled_up(self), WAIT_MS))
		TH_LOG("cabled ports not all UP after %d ms", WAIT_MS);
}

static void start_pair(FIXTURE_DATA(links) *self, const struct ring *g,
		       uint64_t tag)
{
	struct cparm p = {
		.tag = tag, .chunk = RESET_CHUNK, .count = RESET_COUNT_EL,
		.op = LLMDEV_COLL_OP(LLMDEV_COLL_KIND_ALLREDUCE, LLMDEV_COLL_REDOP_SUM,
				     LLMDEV_COLL_DTYPE_I32, 0),
	};
	unsigned int r;

	for (r = 0; r < g->n; r++) {
		p.rank = r;
		p.nranks = g->n;
		p.tx = g->tx[r];
		p.rx = g->rx[r];
		/* rank 0 out of place, rank 1 in place */
		p.src = r ? DST_OFF : DST_OFF + RESET_COUNT_EL * 4ull;
		p.dst = DST_OFF;
		coll_set(self->c[g->card[r]], &p);
	}
	for (r = 0; r < g->n; r++)
		coll_start(self->c[g->card[r]]);
}

TEST_F_TIMEOUT(links, reset_mid_collective, 600)
{
	uint64_t bytes = RESET_COUNT_EL * 4ull, t0, full_us;
	unsigned int pa, pb, round, caught = 0, flrs = 0;
	bool flr;
	struct ring g;
	int b;

	NEED_CARDS(2);
	if (self->hbm < DST_OFF + 2 * bytes)
		SKIP(return, "needs %llu MiB of HBM", (unsigned long long)(DST_OFF + 2 * bytes) >> 20);
	flr = llmdev_card_has_flr(self->c[0]);
	links_up(_metadata, self);
	ASSERT_TRUE(some_pair(self, &pa, &b, &pb));
	ring_pair(0, pa, b, pb, &g);

	/* how long one takes, undisturbed */
	t0 = llmdev_now_ns();
	start_pair(self, &g, 0x5e7000);
	EXPECT_EQ(LLMDEV_COLL_STATUS_DONE, coll_wait(self->c[0], 60000));
	EXPECT_EQ(LLMDEV_COLL_STATUS_DONE, coll_wait(self->c[b], 60000));
	full_us = (llmdev_now_ns() - t0) / 1000 + 1;
	TH_LOG("AllReduce i32 %" PRIu64 " MiB, chunk %u KiB, 2 ranks: %" PRIu64
	       " us undisturbed; %u resets while they run%s", bytes >> 20, RESET_CHUNK >> 10,
	       full_us, RESET_ROUNDS, flr ? ", soft and FLR" : " (soft only: no FLR)");

	for (round = 0; round < RESET_ROUNDS; round++) {
		int victim = round % 2 ? b : 0, other = round % 2 ? 0 : b;
		struct llmdev_card *cv = self->c[victim], *co = self->c[other];
		unsigned int op = other ? pb : pa;
		uint64_t hv, ho, tx, tx0, target, end;
		uint32_t st;

		all_up(_metadata, self);
		/* the reset lands when a random part of the data has moved */
		tx0 = lrd64(co, op, LLMDEV_LINK_TX_BYTES);
		target = tx0 + llmdev_rand(&self->seed) % bytes;
		start_pair(self, &g, 0x5e7100 + round);
		end = llmdev_now_ns() + WAIT_MS * 1000000ull;
		while (lrd64(co, op, LLMDEV_LINK_TX_BYTES) < target &&
		       !(coll_status(co) & LLMDEV_COLL_STATUS_DONE) &&
		       llmdev_now_ns() < end)
			;
		if (flr && round % 4 >= 2) {
			ASSERT_EQ(0, llmdev_card_flr(cv)) TH_LOG("%s", cv->err);
			flrs++;
		} else {
			ASSERT_EQ(0, llmdev_soft_reset(cv)) TH_LOG("%s", cv->err);
		}
		/* the other member has finished by the time the reset returned */
		st = coll_status(co);
		EXPECT_TRUE(st == LLMDEV_COLL_STATUS_DONE ||
			    st == COLL_ERROR(LLMDEV_COLL_ERR_ABORTED))
			TH_LOG("round %u: the other member's status %#x", round, st);
		caught += st != LLMDEV_COLL_STATUS_DONE;
		EXPECT_EQ(0, coll_status(cv));
		/* and nothing moves any more */
		hv = hbm_sample(cv, DST_OFF, bytes);
		ho = hbm_sample(co, DST_OFF, bytes);
		tx = lrd64(co, op, LLMDEV_LINK_TX_BYTES);
		llmdev_sleep_ms(RESET_QUIET_MS);
		EXPECT_EQ(hv, hbm_sample(cv, DST_OFF, bytes))
			TH_LOG("round %u: the reset card's HBM changed after the reset", round);
		EXPECT_EQ(ho, hbm_sample(co, DST_OFF, bytes))
			TH_LOG("round %u: the other card's HBM changed after the reset", round);
		EXPECT_EQ(tx, lrd64(co, op, LLMDEV_LINK_TX_BYTES));
		EXPECT_EQ(0, coll_status(cv));
		if (_metadata->passed == 0)
			return;
	}
	TH_LOG("%u of %u resets (%u FLRs) hit a running AllReduce", caught,
	       RESET_ROUNDS, flrs);
	EXPECT_LE(RESET_ROUNDS / 2, caught);
	/* the engines are whole: exact results again */
	all_up(_metadata, self);
	allreduce_check(_metadata, self, &g, LLMDEV_COLL_DTYPE_I32,
			LLMDEV_COLL_REDOP_SUM, 100003, 0);
	allreduce_check(_metadata, self, &g, LLMDEV_COLL_DTYPE_F32,
			LLMDEV_COLL_REDOP_SUM, 65536 + 7, 4096);
}

/* ---- tests: rate -------------------------------------------------------------- */

/*
 * Bytes per rank and runs: 16 MiB once by default (CI); set
 * LLMDEV_RATE_MIB (1-64) and LLMDEV_RATE_RUNS (1-9) to measure.
 */
#define RATE_MAX_RUNS	9

static uint64_t env_num(const char *name, uint64_t def, uint64_t min, uint64_t max)
{
	const char *e = getenv(name);
	uint64_t v = e ? strtoull(e, NULL, 0) : def;

	return v < min ? min : v > max ? max : v;
}

/* HBM of one card by DMA: ring 0 in, ring 2 out */
struct hbm_dma {
	struct llmdev_card *c;
	struct llmdev_uring in, out;
	uint16_t cmd;
};

static int hbm_dma_open(struct hbm_dma *h, struct llmdev_card *c)
{
	int ret;

	memset(h, 0, sizeof(*h));
	h->c = c;
	h->cmd = llmdev_cfg_read16(c, PCI_COMMAND);
	ret = llmdev_cfg_write16(c, PCI_COMMAND, h->cmd | PCI_COMMAND_MASTER);
	llmdev_wr32(c, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_ENABLE);
	if (!ret)
		ret = llmdev_uring_alloc(&h->in, c, 0, LLMDEV_SG_POOL);
	if (!ret)
		ret = llmdev_uring_alloc(&h->out, c, 2, LLMDEV_SG_POOL);
	if (!ret)
		ret = llmdev_uring_start(&h->in);
	if (!ret)
		ret = llmdev_uring_start(&h->out);
	return ret;
}

static void hbm_dma_close(struct hbm_dma *h)
{
	if (!h->c)
		return;
	llmdev_uring_reset(&h->in);
	llmdev_uring_reset(&h->out);
	llmdev_rd32(h->c, LLMDEV_REG_STATUS);	/* flushed: no more DMA from them */
	llmdev_uring_free(&h->in);
	llmdev_uring_free(&h->out);
	llmdev_cfg_write16(h->c, PCI_COMMAND, h->cmd);
	h->c = NULL;
}

static bool scrub_wait(struct llmdev_card *c, uint64_t addr, uint64_t len,
		       uint32_t pattern)
{
	llmdev_wr64(c, LLMDEV_REG_SCRUB_ADDR, addr);
	llmdev_wr64(c, LLMDEV_REG_SCRUB_LEN, len);
	llmdev_wr32(c, LLMDEV_REG_SCRUB_PATTERN, pattern);
	llmdev_wr32(c, LLMDEV_REG_SCRUB_CTRL, LLMDEV_SCRUB_CTRL_START);
	return POLL(llmdev_rd32(c, LLMDEV_REG_SCRUB_STATUS) & LLMDEV_SCRUB_STATUS_DONE,
		    60000);
}

/*
 * f32 sum over the ranks of g, rate_bytes per rank (SRC at 0, DST right
 * after it), rate_runs times: DST is poisoned by the scrub engine before
 * each run, and every rank's result is read back and checked after it.
 */
static void allreduce_rate(struct __test_metadata *_metadata,
			   FIXTURE_DATA(links) *self, const struct ring *g)
{
	const uint64_t rate_bytes = env_num("LLMDEV_RATE_MIB", 16, 1, 64) << 20;
	const unsigned int rate_runs = env_num("LLMDEV_RATE_RUNS", 1, 1, RATE_MAX_RUNS);
	const uint64_t count = rate_bytes / 4;
	unsigned int n = g->n, r, run, i;
	struct hbm_dma dma[LLMDEV_MAX_CARDS];
	struct llmdev_dmabuf x[LLMDEV_MAX_CARDS], res;
	uint64_t wall[RATE_MAX_RUNS], busy[RATE_MAX_RUNS], gbps;
	uint8_t *xp[LLMDEV_MAX_CARDS], *want = malloc(rate_bytes);
	char err[256];

	ASSERT_NE(NULL, want);
	memset(dma, 0, sizeof(dma));
	memset(x, 0, sizeof(x));
	memset(&res, 0, sizeof(res));
	ASSERT_EQ(0, llmdev_dmabuf_alloc(&res, rate_bytes, err, sizeof(err))) TH_LOG("%s", err);
	for (r = 0; r < n; r++) {
		struct llmdev_card *c = self->c[g->card[r]];

		ASSERT_EQ(0, llmdev_dmabuf_alloc(&x[r], rate_bytes, err, sizeof(err)))
			TH_LOG("%s", err);
		xp[r] = x[r].va;
		fill_inputs(x[r].va, count, LLMDEV_COLL_DTYPE_F32, &self->seed);
		ASSERT_EQ(0, hbm_dma_open(&dma[r], c)) TH_LOG("%s", c->err);
		ASSERT_LT(0, llmdev_uring_xfer(&dma[r].in, &x[r], 0, rate_bytes, 0))
			TH_LOG("%s", dma[r].in.err);
	}
	allreduce_expect(xp, n, count, LLMDEV_COLL_DTYPE_F32, LLMDEV_COLL_REDOP_SUM, want);

	for (run = 0; run < rate_runs; run++) {
		struct cparm p = {
			.tag = 0x5a7e000 + run,
			.op = LLMDEV_COLL_OP(LLMDEV_COLL_KIND_ALLREDUCE, LLMDEV_COLL_REDOP_SUM,
					     LLMDEV_COLL_DTYPE_F32, 0),
			.count = count, .src = 0, .dst = rate_bytes,
		};
		uint64_t b0[LLMDEV_MAX_CARDS], t0;

		for (r = 0; r < n; r++) {
			struct llmdev_card *c = self->c[g->card[r]];

			ASSERT_TRUE(scrub_wait(c, rate_bytes, rate_bytes, 0x7fbad000 + run));
			p.rank = r;
			p.nranks = n;
			p.tx = g->tx[r];
			p.rx = g->rx[r];
			coll_set(c, &p);
			b0[r] = llmdev_perf(c, LLMDEV_PERF_COLL_BUSY_NS);
		}
		t0 = llmdev_now_ns();
		for (r = 0; r < n; r++)
			coll_start(self->c[g->card[r]]);
		/* no sleeping here: the wall time would be the sleep's */
		for (r = 0; r < n; r++) {
			uint64_t end = t0 + 60000000000ull;
			uint32_t st;

			while ((st = coll_status(self->c[g->card[r]])) & LLMDEV_COLL_STATUS_BUSY &&
			       llmdev_now_ns() < end)
				;
			ASSERT_EQ(LLMDEV_COLL_STATUS_DONE, st) TH_LOG("run %u rank %u", run, r);
		}
		wall[run] = llmdev_now_ns() - t0;
		busy[run] = 0;
		for (r = 0; r < n; r++) {
			uint64_t bz = llmdev_perf(self->c[g->card[r]], LLMDEV_PERF_COLL_BUSY_NS) -
				      b0[r];
			long d;

			busy[run] = bz > busy[run] ? bz : busy[run];
			ASSERT_LT(0, llmdev_uring_xfer(&dma[r].out, &res, 0, rate_bytes,
						       rate_bytes))
				TH_LOG("%s", dma[r].out.err);
			d = llmdev_memdiff(want, res.va, rate_bytes);
			EXPECT_EQ(-1, d) TH_LOG("run %u rank %u: DST byte %ld differs", run, r, d);
		}
	}
	/* the median run by wall time */
	for (run = 0; run < rate_runs; run++) {
		unsigned int below = 0;

		for (i = 0; i < rate_runs; i++)
			below += wall[i] < wall[run];
		if (below == rate_runs / 2)
			break;
	}
	if (run == rate_runs)
		run = 0;
	gbps = rate_bytes * 100 / busy[run];
	for (i = 0; i < rate_runs; i++)
		TH_LOG("run %u: wall %.1f ms, COLL_BUSY_NS %.1f ms", i, wall[i] / 1e6,
		       busy[i] / 1e6);
	TH_LOG("AllReduce f32 sum %llu MiB x %u ranks, links %u Gb/s, median of %u runs "
	       "by wall time: wall %.1f ms, COLL_BUSY_NS %.1f ms: bytes/busy %"
	       PRIu64 ".%02" PRIu64 " GB/s, busbw %.2f GB/s",
	       (unsigned long long)rate_bytes >> 20, n,
	       llmdev_rd32(self->c[g->card[0]], LLMDEV_REG_LINK_GBPS), rate_runs,
	       wall[run] / 1e6, busy[run] / 1e6, gbps / 100, gbps % 100,
	       rate_bytes * 2.0 * (n - 1) / n / busy[run]);
	for (r = 0; r < n; r++) {
		hbm_dma_close(&dma[r]);
		llmdev_dmabuf_free(&x[r]);
	}
	llmdev_dmabuf_free(&res);
	free(want);
}

TEST_F_TIMEOUT(links, allreduce_rate, 900)
{
	int order[LLMDEV_MAX_CARDS];
	unsigned int pa, pb;
	struct ring g;
	int b;

	NEED_CARDS(2);
	if (self->hbm < 2 * (env_num("LLMDEV_RATE_MIB", 16, 1, 64) << 20))
		SKIP(return, "needs %llu MiB of HBM",
		     (unsigned long long)env_num("LLMDEV_RATE_MIB", 16, 1, 64) * 2);
	links_up(_metadata, self);
	ASSERT_TRUE(some_pair(self, &pa, &b, &pb));
	ring_pair(0, pa, b, pb, &g);
	allreduce_rate(_metadata, self, &g);
	if (self->n > 2 && ring_order(self, order)) {
		ring_all(self, order, &g);
		allreduce_rate(_metadata, self, &g);
	}
}

/* ---- tests: routing table ---------------------------------------------- */

static void route_entry(struct llmdev_card *c, uint32_t base, unsigned int i,
			uint32_t first, uint32_t last, uint32_t rank, uint32_t size,
			uint32_t hop, uint32_t flags, uint64_t off, uint64_t len,
			uint32_t tag, uint32_t rsv)
{
	uint32_t e = base + i * LLMDEV_ROUTE_ENTRY_SIZE;

	llmdev_wr32(c, e + LLMDEV_ROUTE_E_LAYERS, first | last << 16);
	llmdev_wr32(c, e + LLMDEV_ROUTE_E_TP, rank | size << 8 | hop << 16 | flags << 24);
	llmdev_wr64(c, e + LLMDEV_ROUTE_E_HBM_OFFSET, off);
	llmdev_wr64(c, e + LLMDEV_ROUTE_E_HBM_LENGTH, len);
	llmdev_wr32(c, e + LLMDEV_ROUTE_E_TAG, tag);
	llmdev_wr32(c, e + LLMDEV_ROUTE_E_RESERVED, rsv);
}

static void route_read(struct llmdev_card *c, uint32_t base, uint32_t *w)
{
	unsigned int i;

	for (i = 0; i < LLMDEV_ROUTE_ENTRIES * LLMDEV_ROUTE_ENTRY_SIZE / 4; i++)
		w[i] = llmdev_rd32(c, base + 4 * i);
}

TEST_F(links, routing_table)
{
	enum { words = LLMDEV_ROUTE_ENTRIES * LLMDEV_ROUTE_ENTRY_SIZE / 4 };
	const uint32_t V = LLMDEV_ROUTE_F_VALID, H = LLMDEV_ROUTE_HOP_HOST;
	uint32_t stage[words], active[words], now[words];
	struct llmdev_card *c;
	uint64_t hbm;
	unsigned int i, k;

	NEED_CARDS(1);
	c = self->c[0];
	hbm = c->res[LLMDEV_BAR_HBM].size;

	/* a valid table of three entries, one ending at the end of HBM */
	route_entry(c, LLMDEV_REG_ROUTE_STAGE, 0, 0, 15, 0, 2, 0, V, 0, 1 << 20, 0x11, 0);
	route_entry(c, LLMDEV_REG_ROUTE_STAGE, 1, 16, 16, 1, 2, H, V, 1 << 20, 4096, 0x22, 0);
	route_entry(c, LLMDEV_REG_ROUTE_STAGE, 2, 17, 31, 0, 1, 3, V, hbm - 8192, 8192, 0x33, 0);
	/* a leftover beyond STAGE_NUM is not committed */
	route_entry(c, LLMDEV_REG_ROUTE_STAGE, 3, 5, 4, 0, 0, 9, 0, 0, 0, 0x44, 1);
	llmdev_wr32(c, LLMDEV_REG_ROUTE_STAGE_NUM, 3);
	EXPECT_EQ(3, llmdev_rd32(c, LLMDEV_REG_ROUTE_STAGE_NUM));
	route_read(c, LLMDEV_REG_ROUTE_STAGE, stage);
	EXPECT_EQ(1u << 20, stage[8 + LLMDEV_ROUTE_E_HBM_OFFSET / 4]);
	llmdev_wr32(c, LLMDEV_REG_ROUTE_CTRL, LLMDEV_ROUTE_CTRL_COMMIT);
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ROUTE_STATUS));
	EXPECT_EQ(3, llmdev_rd32(c, LLMDEV_REG_ROUTE_ACTIVE_NUM));
	EXPECT_EQ(1, llmdev_rd32(c, LLMDEV_REG_ROUTE_GEN));
	route_read(c, LLMDEV_REG_ROUTE_ACTIVE, active);
	for (i = 0; i < words; i++) {
		EXPECT_EQ(i < 24 ? stage[i] : 0, active[i]) TH_LOG("active word %u", i);
	}
	EXPECT_EQ(hbm - 8192, llmdev_rd64(c, LLMDEV_REG_ROUTE_ACTIVE + 2 * 32 +
					  LLMDEV_ROUTE_E_HBM_OFFSET));
	/* the active table is read-only */
	llmdev_wr32(c, LLMDEV_REG_ROUTE_ACTIVE, 0);
	EXPECT_EQ(stage[0], llmdev_rd32(c, LLMDEV_REG_ROUTE_ACTIVE));
	EXPECT_EQ(1, llmdev_rd32(c, LLMDEV_REG_ERR_COUNT));

	/* each invalid case, at index 1 after a valid entry: refused */
	for (k = 0; k < 13; k++) {
		uint32_t first = 0, last = 3, rank = 0, size = 1, hop = 1, flags = V, rsv = 0;
		uint64_t off = 0, len = 4096;
		const char *why = "?";

		switch (k) {
		case 0: flags = 0; why = "VALID clear"; break;
		case 1: flags = V | 2; why = "unknown flag"; break;
		case 2: first = 4; why = "first > last"; break;
		case 3: size = 0; why = "tp_size 0"; break;
		case 4: rank = 2; size = 2; why = "tp_rank >= tp_size"; break;
		case 5: hop = NPORTS; why = "hop = port 4"; break;
		case 6: hop = 0xfe; why = "hop 0xfe"; break;
		case 7: len = 0; why = "length 0"; break;
		case 8: off = hbm - 4096; len = 8192; why = "beyond HBM"; break;
		case 9: off = ~0ull - 4095; why = "offset + length wraps"; break;
		case 10: off = hbm; why = "offset at the end"; break;
		case 11: rsv = 1; why = "reserved word"; break;
		case 12: why = "STAGE_NUM 33"; break;
		}
		route_entry(c, LLMDEV_REG_ROUTE_STAGE, 1, first, last, rank, size, hop,
			    flags, off, len, 0x5555, rsv);
		llmdev_wr32(c, LLMDEV_REG_ROUTE_STAGE_NUM,
			    k == 12 ? LLMDEV_ROUTE_ENTRIES + 1 : 2);
		llmdev_wr32(c, LLMDEV_REG_ROUTE_CTRL, LLMDEV_ROUTE_CTRL_COMMIT);
		EXPECT_EQ(LLMDEV_ROUTE_STATUS_ERROR |
			  (k == 12 ? LLMDEV_ROUTE_ENTRIES : 1u) << 8,
			  llmdev_rd32(c, LLMDEV_REG_ROUTE_STATUS)) TH_LOG("%s", why);
		EXPECT_EQ(3, llmdev_rd32(c, LLMDEV_REG_ROUTE_ACTIVE_NUM)) TH_LOG("%s", why);
		EXPECT_EQ(1, llmdev_rd32(c, LLMDEV_REG_ROUTE_GEN)) TH_LOG("%s", why);
		route_read(c, LLMDEV_REG_ROUTE_ACTIVE, now);
		EXPECT_EQ(0, memcmp(active, now, sizeof(now))) TH_LOG("%s", why);
	}
	/* the first bad entry is reported */
	route_entry(c, LLMDEV_REG_ROUTE_STAGE, 0, 1, 0, 0, 1, H, V, 0, 1, 0, 0);
	llmdev_wr32(c, LLMDEV_REG_ROUTE_STAGE_NUM, 2);
	llmdev_wr32(c, LLMDEV_REG_ROUTE_CTRL, LLMDEV_ROUTE_CTRL_COMMIT);
	EXPECT_EQ(LLMDEV_ROUTE_STATUS_ERROR, llmdev_rd32(c, LLMDEV_REG_ROUTE_STATUS));

	/* a good commit clears the status; an empty table is a valid one */
	route_entry(c, LLMDEV_REG_ROUTE_STAGE, 0, 7, 7, 0, 1, H, V, 0, 1, 0, 0);
	llmdev_wr32(c, LLMDEV_REG_ROUTE_STAGE_NUM, 1);
	llmdev_wr32(c, LLMDEV_REG_ROUTE_CTRL, LLMDEV_ROUTE_CTRL_COMMIT);
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ROUTE_STATUS));
	EXPECT_EQ(2, llmdev_rd32(c, LLMDEV_REG_ROUTE_GEN));
	EXPECT_EQ(1, llmdev_rd32(c, LLMDEV_REG_ROUTE_ACTIVE_NUM));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ROUTE_ACTIVE + 32));
	llmdev_wr32(c, LLMDEV_REG_ROUTE_STAGE_NUM, 0);
	llmdev_wr32(c, LLMDEV_REG_ROUTE_CTRL, LLMDEV_ROUTE_CTRL_COMMIT);
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ROUTE_ACTIVE_NUM));
	EXPECT_EQ(3, llmdev_rd32(c, LLMDEV_REG_ROUTE_GEN));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ROUTE_ACTIVE));

	/* soft reset clears both tables */
	llmdev_wr32(c, LLMDEV_REG_ROUTE_STAGE_NUM, 1);
	llmdev_wr32(c, LLMDEV_REG_ROUTE_CTRL, LLMDEV_ROUTE_CTRL_COMMIT);
	EXPECT_EQ(1, llmdev_rd32(c, LLMDEV_REG_ROUTE_ACTIVE_NUM));
	LLMDEV_RESET(c);
	route_read(c, LLMDEV_REG_ROUTE_STAGE, now);
	for (i = 0; i < words; i++)
		EXPECT_EQ(0, now[i]);
	route_read(c, LLMDEV_REG_ROUTE_ACTIVE, now);
	for (i = 0; i < words; i++)
		EXPECT_EQ(0, now[i]);
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ROUTE_ACTIVE_NUM));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ROUTE_STAGE_NUM));
	EXPECT_EQ(0, llmdev_rd32(c, LLMDEV_REG_ROUTE_GEN));
}

LLMDEV_HARNESS_MAIN
