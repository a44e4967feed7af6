// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev driver: collective groups, AllReduce and broadcast.
 *
 * Groups: the invalid cases of LLMDEV_GROUP_CREATE / _DESTROY with their
 * errnos, a ring that does not close (ENOLINK), LLMDEV_MAX_GROUPS.
 *
 * Collectives, for groups of 1, 2, 3 and 4 ranks (cards 0 .. n-1 in rank
 * order; a variant SKIPs when the VM's cabling has no such ring, e.g. 3
 * ranks in a VM with 4 cards, whose default ring has no cable from card 2
 * to card 0: run the file in a VM with 3 cards for those):
 *  - AllReduce sum/min/max on f32, f16, bf16 and i32, counts from 1 to
 *    16 Mi elements, in place and out of place, checked against a CPU
 *    emulation of the ring (below) that must match bit for bit, and the
 *    float sums also against the exact sum within a bound;
 *  - broadcast from every root;
 *  - the bytes every link port sent and received, against the algorithm;
 *  - collectives run in submission order; poll() on their fences;
 *  - the invalid submissions with their errnos, none leaving a fence;
 *  - a link going down in the middle of an AllReduce (LINK_DOWN_AFTER
 *    through BAR 0): the fence fails with ENOLINK in bounded time, every
 *    member sends a COLL_ERROR netlink event, and after the link is back
 *    the next AllReduce is right;
 *  - an unprivileged user runs collectives on regions it owns, and cannot
 *    use another file's.
 *
 * The reference. docs/hardware.md ("Collective engine") fixes the order
 * of the arithmetic: with n ranks, segment k has count / n + (k < count %
 * n) elements; the reduce-scatter carries segment k from rank k to k + 1,
 * k + 2, ... and each receiver combines "own value op incoming" in the
 * element type (f16 and bf16: computed in float, rounded to nearest even
 * after every step). So element i of segment k ends as
 *	x[k-1] op (x[k-2] op ( ... op (x[k+1] op x[k])))	(ranks mod n)
 * which ref_allreduce() computes the same way, and the card's result must
 * equal it exactly. The reference of a float sum (so every rank's result)
 * is also compared with the exact sum (in double, exact for these inputs):
 * |got - exact| <= (n - 1) * ulp(m),
 * m the largest partial sum in magnitude, ulp in the element type (each of
 * the n - 1 additions rounds by at most half an ulp of its result, and the
 * factor 2 covers a partial rounded up across a power of two and f16's
 * double rounding through float).
 */
#include <math.h>

#include "driver_util.h"
#include "driver_nl.h"
#include "kselftest_harness.h"

#define UP_MS		2000
#define WAIT_NS		(60 * LD_NSEC_PER_SEC)	/* bound for any collective */
#define MI		(1024ULL * 1024)

enum layout { IN_PLACE, SAME_REGION, TWO_REGIONS };

/* ---- element types and the reference ------------------------------------- */

static float h2f(uint16_t h)
{
	_Float16 x;

	memcpy(&x, &h, 2);
	return x;
}

static uint16_t f2h(float f)
{
	_Float16 x = f;	/* round to nearest even */
	uint16_t h;

	memcpy(&h, &x, 2);
	return h;
}

static float b2f(uint16_t b)
{
	uint32_t x = (uint32_t)b << 16;
	float f;

	memcpy(&f, &x, 4);
	return f;
}

static uint16_t f2b(float f)
{
	uint32_t x;

	memcpy(&x, &f, 4);
	if ((x & 0x7fffffff) > 0x7f800000)
		return (x >> 16) | 0x40;	/* quiet NaN */
	x += 0x7fff + ((x >> 16) & 1);		/* round to nearest even */
	return x >> 16;
}

static double elem(uint32_t dtype, const void *buf, uint64_t i)
{
	switch (dtype) {
	case LLMDEV_DTYPE_F32:
		return ((const float *)buf)[i];
	case LLMDEV_DTYPE_F16:
		return h2f(((const uint16_t *)buf)[i]);
	case LLMDEV_DTYPE_BF16:
		return b2f(((const uint16_t *)buf)[i]);
	default:
		return ((const int32_t *)buf)[i];
	}
}

static const char *dtype_name(uint32_t dtype)
{
	static const char *const names[] = { "f32", "f16", "bf16", "i32" };

	return dtype < 4 ? names[dtype] : "?";
}

static const char *redop_name(uint32_t redop)
{
	static const char *const names[] = { "sum", "min", "max" };

	return redop < 3 ? names[redop] : "?";
}

/*
 * Random inputs: any i32; floats normal, never zero, NaN or inf, with
 * exponents over 16 binades so that sums round, small enough that 4 ranks
 * never overflow.
 */
static void gen(uint32_t dtype, void *buf, uint64_t count, uint64_t seed)
{
	uint64_t i;

	ld_fill(buf, count * ld_dtype_size(dtype), seed);
	if (dtype == LLMDEV_DTYPE_F32) {
		uint32_t *v = buf;

		for (i = 0; i < count; i++)
			v[i] = (v[i] & 0x807fffff) | (119 + ((v[i] >> 23) & 0xf)) << 23;
	} else if (dtype == LLMDEV_DTYPE_F16) {
		uint16_t *v = buf;

		for (i = 0; i < count; i++)
			v[i] = (v[i] & 0x83ff) | (9 + ((v[i] >> 10) & 0xf)) << 10;
	} else if (dtype == LLMDEV_DTYPE_BF16) {
		uint16_t *v = buf;

		for (i = 0; i < count; i++)
			v[i] = (v[i] & 0x807f) | (119 + ((v[i] >> 7) & 0xf)) << 7;
	}
}

/* segment k of n: count / n + (k < count % n) elements */
static void segment(uint64_t count, unsigned int n, unsigned int k,
		    uint64_t *start, uint64_t *len)
{
	uint64_t q = count / n, rem = count % n;

	*len = q + (k < rem);
	*start = k * q + (k < rem ? k : rem);
}

/* acc[i] = own[i] op acc[i], in the element type */
static void combine(uint32_t dtype, uint32_t redop, const void *own, void *acc,
		    uint64_t len)
{
	uint64_t i;

	switch (dtype) {
	case LLMDEV_DTYPE_F32: {
		const float *a = own;
		float *b = acc;

		for (i = 0; i < len; i++)
			b[i] = redop == LLMDEV_REDOP_SUM ? a[i] + b[i] :
			       redop == LLMDEV_REDOP_MIN ? (a[i] < b[i] ? a[i] : b[i]) :
			       (a[i] > b[i] ? a[i] : b[i]);
		break;
	}
	case LLMDEV_DTYPE_I32: {
		const int32_t *a = own;
		int32_t *b = acc;

		for (i = 0; i < len; i++)
			b[i] = redop == LLMDEV_REDOP_SUM ?
			       (int32_t)((uint32_t)a[i] + (uint32_t)b[i]) :
			       redop == LLMDEV_REDOP_MIN ? (a[i] < b[i] ? a[i] : b[i]) :
			       (a[i] > b[i] ? a[i] : b[i]);
		break;
	}
	case LLMDEV_DTYPE_F16:
	case LLMDEV_DTYPE_BF16: {
		bool h = dtype == LLMDEV_DTYPE_F16;
		const uint16_t *a = own;
		uint16_t *b = acc;

		for (i = 0; i < len; i++) {
			float x = h ? h2f(a[i]) : b2f(a[i]);
			float y = h ? h2f(b[i]) : b2f(b[i]);

			if (redop == LLMDEV_REDOP_SUM)
				b[i] = h ? f2h(x + y) : f2b(x + y);
			else if (redop == LLMDEV_REDOP_MIN)
				b[i] = x < y ? a[i] : b[i];
			else
				b[i] = x > y ? a[i] : b[i];
		}
		break;
	}
	}
}

/* What the ring computes (see the top of the file). */
static void ref_allreduce(uint32_t dtype, uint32_t redop, unsigned int n,
			  uint64_t count, uint8_t *const *in, uint8_t *ref)
{
	unsigned int es = ld_dtype_size(dtype), k, j;
	uint64_t st, len;

	for (k = 0; k < n; k++) {
		segment(count, n, k, &st, &len);
		memcpy(ref + st * es, in[k] + st * es, len * es);
		for (j = 1; j < n; j++)
			combine(dtype, redop, in[(k + j) % n] + st * es,
				ref + st * es, len);
	}
}

static double ulp(uint32_t dtype, double x)
{
	int p = dtype == LLMDEV_DTYPE_F32 ? 24 : dtype == LLMDEV_DTYPE_F16 ? 11 : 8;
	double tiny = dtype == LLMDEV_DTYPE_F16 ? ldexp(1, -24) : ldexp(1, -149);
	double u;
	int e;

	frexp(x, &e);
	u = ldexp(1, e - p);
	return u > tiny ? u : tiny;
}

/*
 * Float sums against the exact sum (see the top): the number of elements
 * outside the bound; the first in *bad.
 */
static uint64_t naive_check(uint32_t dtype, unsigned int n, uint64_t count,
			    uint8_t *const *in, const uint8_t *got, uint64_t *bad,
			    double *gotv, double *want, double *tol)
{
	uint64_t st, len, i, nbad = 0;
	unsigned int k, j;

	for (k = 0; k < n; k++) {
		segment(count, n, k, &st, &len);
		for (i = st; i < st + len; i++) {
			double s = elem(dtype, in[k], i), m = fabs(s), t, g;

			for (j = 1; j < n; j++) {
				s += elem(dtype, in[(k + j) % n], i);
				if (fabs(s) > m)
					m = fabs(s);
			}
			t = (n - 1) * ulp(dtype, m);
			g = elem(dtype, got, i);
			if (fabs(g - s) > t) {
				if (!nbad++) {
					*bad = i;
					*gotv = g;
					*want = s;
					*tol = t;
				}
			}
		}
	}
	return nbad;
}

/* bytes rank r sends on its ring link in an AllReduce */
static uint64_t allreduce_tx(uint64_t count, unsigned int n, unsigned int r,
			     unsigned int es)
{
	uint64_t st, len, sum = 0;
	unsigned int s;

	for (s = 0; n > 1 && s < n - 1; s++) {
		segment(count, n, (r + n - s) % n, &st, &len);
		sum += len;
		segment(count, n, (r + 1 + n - s) % n, &st, &len);
		sum += len;
	}
	return sum * es;
}

/* ... and in a broadcast from @root */
static uint64_t broadcast_tx(uint64_t count, unsigned int n, unsigned int r,
			     unsigned int root, unsigned int es)
{
	return n > 1 && r != (root + n - 1) % n ? count * es : 0;
}

/* ---- the fixture ------------------------------------------------------------ */

FIXTURE(coll) {
	int kmsg;
	int fd;			/* unused; LD_FIXTURE_START sets it */
	unsigned int ncards, nranks;
	int fds[LD_MAX_CARDS];
	struct llmdev_info info[LD_MAX_CARDS];
	uint32_t group;		/* of cards 0 .. nranks - 1, on fds[0] */
	struct ld_bar0 bar[LD_MAX_CARDS];
};

FIXTURE_VARIANT(coll) {
	unsigned int nranks;
};

FIXTURE_VARIANT_ADD(coll, ranks1) { .nranks = 1 };
FIXTURE_VARIANT_ADD(coll, ranks2) { .nranks = 2 };
FIXTURE_VARIANT_ADD(coll, ranks3) { .nranks = 3 };
FIXTURE_VARIANT_ADD(coll, ranks4) { .nranks = 4 };

/* The port of card @a with an up link to card @b, or -1. */
static int port_to(int *fds, struct llmdev_info *info, unsigned int a,
		   unsigned int b)
{
	struct llmdev_link_info l;
	unsigned int p;

	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++)
		if (!ld_link_info(fds[a], p, &l) && l.state == LLMDEV_LINK_UP &&
		    l.peer_serial == info[b].serial)
			return p;
	return -1;
}

/* Does the VM's cabling have a cable from card @a to card @b? */
static bool cable_to(int peer[LD_MAX_CARDS][LD_MAX_PORTS], unsigned int a,
		     unsigned int b)
{
	unsigned int p;

	for (p = 0; p < LD_MAX_PORTS; p++)
		if (peer[a][p] >= 0 && (unsigned int)peer[a][p] / LD_MAX_PORTS == b)
			return true;
	return false;
}

/* Wait until cards 0 .. n-1 form a ring of up links: 0, or the gap. */
static int ring_up(int *fds, struct llmdev_info *info, unsigned int n,
		   unsigned int *gap)
{
	uint64_t end = ld_now_ns() + UP_MS * 1000000ULL;
	unsigned int r;

	for (;;) {
		for (r = 0; n > 1 && r < n; r++)
			if (port_to(fds, info, r, (r + 1) % n) < 0)
				break;
		if (n < 2 || r == n)
			return 0;
		if (ld_now_ns() > end) {
			*gap = r;
			return -ENOLINK;
		}
		ld_msleep(5);
	}
}

static void restore_links(int *fds, struct ld_bar0 *bars, unsigned int ncards)
{
	unsigned int c, p;

	for (c = 0; c < ncards; c++) {
		if (fds[c] < 0)
			continue;
		for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
			if (bars[c].regs) {
				ld_wr32(&bars[c], LLMDEV_LINK_BASE(p) + LLMDEV_LINK_FAULT, 0);
				ld_wr64(&bars[c], LLMDEV_LINK_BASE(p) + LLMDEV_LINK_DOWN_AFTER, 0);
			}
			ld_link_set(fds[c], p, 1);
		}
	}
}

FIXTURE_SETUP(coll)
{
	int peer[LD_MAX_CARDS][LD_MAX_PORTS];
	unsigned int r, gap;
	int ret;

	memset(self->fds, -1, sizeof(self->fds));
	self->nranks = variant->nranks;
	LD_FIXTURE_START();
	self->ncards = ld_num_cards();
	if (self->ncards > LD_MAX_CARDS)
		self->ncards = LD_MAX_CARDS;
	if (self->ncards < self->nranks)
		SKIP(return, "%u ranks need %u cards, the VM has %u", self->nranks,
		     self->nranks, self->ncards);
	ASSERT_EQ(0, ld_topology(self->ncards, peer));
	for (r = 0; self->nranks > 1 && r < self->nranks; r++)
		if (!cable_to(peer, r, (r + 1) % self->nranks))
			SKIP(return, "cards 0-%u do not form a ring in this VM: no cable "
			     "from llmdev%u to llmdev%u (with the default cabling, %u "
			     "ranks need a VM with exactly %u cards)", self->nranks - 1,
			     r, (r + 1) % self->nranks, self->nranks, self->nranks);
	LD_FIXTURE_OPEN_CARDS();
	ret = ring_up(self->fds, self->info, self->nranks, &gap);
	ASSERT_EQ(0, ret) TH_LOG("no up link from llmdev%u to llmdev%u", gap,
				 (gap + 1) % self->nranks);
	ret = ld_group_create(self->fds[0], self->fds, self->nranks, &self->group);
	ASSERT_EQ(0, ret) TH_LOG("GROUP_CREATE of cards 0-%u: %s", self->nranks - 1,
				 strerror(-ret));
}

FIXTURE_TEARDOWN(coll)
{
	unsigned int c, gap;

	LD_EXPECT_NO_KERNEL_REPORTS(self->kmsg);
	restore_links(self->fds, self->bar, self->ncards);
	if (self->fds[0] >= 0 && ring_up(self->fds, self->info, self->ncards > 1 ?
					 self->nranks : 1, &gap))
		TH_LOG("teardown: the ring did not come back");
	for (c = 0; c < LD_MAX_CARDS; c++) {
		ld_bar0_unmap(&self->bar[c]);
		if (self->fds[c] >= 0)
			close(self->fds[c]);
	}
}

/* ---- running collectives --------------------------------------------------- */

static uint32_t alloc(struct __test_metadata *_metadata, int fd, uint64_t len)
{
	struct llmdev_hbm_alloc a;
	int ret = ld_hbm_alloc(fd, len, 0, 0, NULL, &a);

	ASSERT_EQ(0, ret) TH_LOG("allocating %llu bytes: %s",
				 (unsigned long long)len, strerror(-ret));
	return a.handle;
}

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

/* Regions for every rank's buffers of @bytes, laid out as @layout. */
static void setup_bufs(struct __test_metadata *_metadata,
		       FIXTURE_DATA(coll) *self, enum layout layout,
		       uint64_t bytes, struct llmdev_coll_buf *b)
{
	unsigned int r;

	memset(b, 0, self->nranks * sizeof(*b));
	for (r = 0; r < self->nranks; r++) {
		int fd = self->fds[r];

		b[r].fd = fd;
		switch (layout) {
		case IN_PLACE:
			/* element-aligned, not page-aligned */
			b[r].src_handle = b[r].dst_handle = alloc(_metadata, fd, bytes + 64);
			b[r].src_offset = b[r].dst_offset = 64;
			break;
		case SAME_REGION:
			b[r].src_handle = b[r].dst_handle =
				alloc(_metadata, fd, 2 * round_up(bytes, LD_PAGE));
			b[r].dst_offset = round_up(bytes, LD_PAGE);
			break;
		case TWO_REGIONS:
			b[r].src_handle = alloc(_metadata, fd, bytes);
			b[r].dst_handle = alloc(_metadata, fd, bytes);
			break;
		}
	}
}

static void free_bufs(FIXTURE_DATA(coll) *self, struct llmdev_coll_buf *b)
{
	unsigned int r;

	for (r = 0; r < self->nranks; r++) {
		if (b[r].src_handle)
			ld_hbm_free(self->fds[r], b[r].src_handle);
		if (b[r].dst_handle != b[r].src_handle)
			ld_hbm_free(self->fds[r], b[r].dst_handle);
	}
}

/* submit and wait: the submit error, or the fence status */
static int run_coll(FIXTURE_DATA(coll) *self, uint32_t op, uint32_t dtype,
		    uint32_t redop, uint32_t root, uint64_t count,
		    const struct llmdev_coll_buf *b)
{
	uint64_t fence;
	int ret, status = 1;

	ret = ld_coll_submit(self->fds[0], self->group, op, dtype, redop, root,
			     count, b, &fence);
	if (ret)
		return ret;
	ret = ld_wait(self->fds[0], fence, WAIT_NS, &status);
	return ret ? ret : status;
}

/*
 * Host buffers with 64 bytes to spare before ld_alloc_buf()'s guard page:
 * QEMU's TCG (7.2) reads 16 bytes for a scalar SSE operand in memory
 * (e.g. cvtss2sd of the last float of a buffer).
 */
#define SLACK	64

static void *xalloc(struct __test_metadata *_metadata, uint64_t bytes)
{
	void *p = ld_alloc_buf(bytes + SLACK);

	ASSERT_NE(NULL, p) TH_LOG("out of memory for %llu bytes",
				  (unsigned long long)bytes);
	return p;
}

/* Compare rank @r's result with @want; log the first difference. */
static bool same_elems(struct __test_metadata *_metadata, uint32_t dtype,
		       const uint8_t *got, const uint8_t *want, uint64_t count,
		       const char *what, unsigned int r)
{
	unsigned int es = ld_dtype_size(dtype);
	long first = ld_cmp(got, want, count * es);
	uint64_t i, nbad = 0;

	if (first < 0)
		return true;
	for (i = first / es; i < count; i++)
		nbad += memcmp(got + i * es, want + i * es, es) != 0;
	i = first / es;
	TH_LOG("%s: rank %u: %llu of %llu elements differ, the first [%llu]: got "
	       "%#x (%g), want %#x (%g)", what, r, (unsigned long long)nbad,
	       (unsigned long long)count, (unsigned long long)i,
	       es == 4 ? *(uint32_t *)(got + i * es) : *(uint16_t *)(got + i * es),
	       elem(dtype, got, i),
	       es == 4 ? *(uint32_t *)(want + i * es) : *(uint16_t *)(want + i * es),
	       elem(dtype, want, i));
	return false;
}

/*
 * One AllReduce on cards 0 .. nranks-1 of random data, checked on every
 * rank (see the top of the file). Also: the sources of an out-of-place
 * run are left as they were.
 */
static void check_allreduce(struct __test_metadata *_metadata,
			    FIXTURE_DATA(coll) *self, uint32_t dtype,
			    uint32_t redop, uint64_t count, enum layout layout,
			    uint64_t seed)
{
	unsigned int n = self->nranks, es = ld_dtype_size(dtype), r;
	struct llmdev_coll_buf b[LLMDEV_MAX_RANKS];
	uint64_t bytes = count * es;
	uint8_t *in[LLMDEV_MAX_RANKS], *out, *ref;
	char what[96];
	int ret;

	snprintf(what, sizeof(what), "AllReduce %s %s of %llu, %u ranks, %s",
		 redop_name(redop), dtype_name(dtype), (unsigned long long)count,
		 n, layout == IN_PLACE ? "in place" :
		 layout == SAME_REGION ? "out of place" : "two regions");
	setup_bufs(_metadata, self, layout, bytes, b);
	out = xalloc(_metadata, bytes);
	ref = xalloc(_metadata, bytes);
	for (r = 0; r < n; r++) {
		in[r] = xalloc(_metadata, bytes);
		gen(dtype, in[r], count, seed * 64 + r);
		ASSERT_EQ(0, ld_xfer(self->fds[r], b[r].src_handle, b[r].src_offset,
				     in[r], bytes, true, LLMDEV_RING_ANY));
		if (layout != IN_PLACE) {
			memset(out, 0xa5, bytes);
			ASSERT_EQ(0, ld_xfer(self->fds[r], b[r].dst_handle,
					     b[r].dst_offset, out, bytes, true,
					     LLMDEV_RING_ANY));
		}
	}
	ret = run_coll(self, LLMDEV_COLL_ALLREDUCE, dtype, redop, 0, count, b);
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", what, strerror(-ret));

	ref_allreduce(dtype, redop, n, count, in, ref);
	/*
	 * Every rank's result must equal the reference bit for bit (below), so
	 * the reference alone is checked against the exact sum: once, not once
	 * per rank (16 Mi elements of double arithmetic cost seconds under TCG).
	 */
	if (dtype != LLMDEV_DTYPE_I32 && redop == LLMDEV_REDOP_SUM) {
		uint64_t bad = 0, nbad;
		double g = 0, w = 0, t = 0;

		nbad = naive_check(dtype, n, count, in, ref, &bad, &g, &w, &t);
		EXPECT_EQ(0, nbad) TH_LOG("%s: %llu elements of the expected result off "
			"the exact sum by more than (n-1) ulp, the first [%llu]: %.9g, "
			"exact %.9g, bound %.3g", what, (unsigned long long)nbad,
			(unsigned long long)bad, g, w, t);
	}
	for (r = 0; r < n; r++) {
		memset(out, 0x5a, bytes);
		ASSERT_EQ(0, ld_xfer(self->fds[r], b[r].dst_handle, b[r].dst_offset,
				     out, bytes, false, LLMDEV_RING_ANY));
		EXPECT_TRUE(same_elems(_metadata, dtype, out, ref, count, what, r));
		/* out of place: the source is untouched (small runs only) */
		if (layout != IN_PLACE && bytes <= MI) {
			ASSERT_EQ(0, ld_xfer(self->fds[r], b[r].src_handle,
					     b[r].src_offset, out, bytes, false,
					     LLMDEV_RING_ANY));
			EXPECT_EQ(-1, ld_cmp(out, in[r], bytes))
				TH_LOG("%s: rank %u: the source changed", what, r);
		}
	}
	for (r = 0; r < n; r++)
		ld_free_buf(in[r], bytes + SLACK);
	ld_free_buf(out, bytes + SLACK);
	ld_free_buf(ref, bytes + SLACK);
	free_bufs(self, b);
}

static const uint64_t counts[] = {
	1, 2, 3, 7, 1000, 4097, MI + 3, 16 * MI,
};
#define NCOUNTS		(sizeof(counts) / sizeof(counts[0]))

/*
 * LLMDEV_COLL_MAX_COUNT (environment): leave out the AllReduce counts
 * above it. The debug kernel's run sets it below 16 Mi: every count takes
 * the same driver code, and the largest only cost its time (the guest's
 * arithmetic of the reference, under TCG).
 */
static uint64_t count_cap(struct __test_metadata *_metadata)
{
	const char *env = getenv("LLMDEV_COLL_MAX_COUNT");
	unsigned long long cap;
	char *end;

	if (!env || !*env)
		return UINT64_MAX;
	errno = 0;
	cap = strtoull(env, &end, 0);
	/* a cap that leaves nothing to run would pass without testing */
	EXPECT_TRUE(!errno && !*end && cap >= 1)
		TH_LOG("LLMDEV_COLL_MAX_COUNT='%s': not a count of 1 or more", env);
	return !errno && !*end && cap >= 1 ? cap : UINT64_MAX;
}

/* every count, the layouts in turn; the largest in place (HBM) */
static void allreduce_counts(struct __test_metadata *_metadata,
			     FIXTURE_DATA(coll) *self, uint32_t dtype,
			     uint32_t redop, uint64_t max_count)
{
	uint64_t cap = count_cap(_metadata);
	unsigned int i;

	if (max_count > cap) {
		max_count = cap;
		TH_LOG("counts above %llu left out (LLMDEV_COLL_MAX_COUNT)",
		       (unsigned long long)max_count);
	}
	for (i = 0; i < NCOUNTS && counts[i] <= max_count; i++)
		check_allreduce(_metadata, self, dtype, redop, counts[i],
				counts[i] >= 16 * MI ? IN_PLACE : (enum layout)(i % 3),
				i + 100 * dtype + 10 * redop);
}

TEST_F_TIMEOUT(coll, allreduce_i32_sum, 600)
{
	SETUP_OR_SKIP();
	allreduce_counts(_metadata, self, LLMDEV_DTYPE_I32, LLMDEV_REDOP_SUM, 16 * MI);
}

TEST_F_TIMEOUT(coll, allreduce_f32_sum, 600)
{
	SETUP_OR_SKIP();
	allreduce_counts(_metadata, self, LLMDEV_DTYPE_F32, LLMDEV_REDOP_SUM, 16 * MI);
}

TEST_F_TIMEOUT(coll, allreduce_minmax, 600)
{
	static const uint32_t dtypes[] = {
		LLMDEV_DTYPE_I32, LLMDEV_DTYPE_F32, LLMDEV_DTYPE_F16, LLMDEV_DTYPE_BF16,
	};
	unsigned int d;

	SETUP_OR_SKIP();
	for (d = 0; d < 4; d++) {
		allreduce_counts(_metadata, self, dtypes[d], LLMDEV_REDOP_MIN, MI + 3);
		allreduce_counts(_metadata, self, dtypes[d], LLMDEV_REDOP_MAX, 4097);
	}
}

TEST_F_TIMEOUT(coll, allreduce_f16_sum, 600)
{
	SETUP_OR_SKIP();
	allreduce_counts(_metadata, self, LLMDEV_DTYPE_F16, LLMDEV_REDOP_SUM, MI + 3);
}

TEST_F_TIMEOUT(coll, allreduce_bf16_sum, 600)
{
	SETUP_OR_SKIP();
	allreduce_counts(_metadata, self, LLMDEV_DTYPE_BF16, LLMDEV_REDOP_SUM, MI + 3);
}

/* Broadcast from @root: every rank's dst gets the root's src. */
static void check_broadcast(struct __test_metadata *_metadata,
			    FIXTURE_DATA(coll) *self, uint32_t dtype,
			    uint64_t count, unsigned int root, enum layout layout,
			    uint64_t seed)
{
	unsigned int n = self->nranks, r;
	struct llmdev_coll_buf b[LLMDEV_MAX_RANKS];
	uint64_t bytes = count * ld_dtype_size(dtype);
	uint8_t *in, *out;
	char what[96];
	int ret;

	snprintf(what, sizeof(what), "broadcast %s of %llu from rank %u, %u ranks",
		 dtype_name(dtype), (unsigned long long)count, root, n);
	setup_bufs(_metadata, self, layout, bytes, b);
	in = xalloc(_metadata, bytes);
	out = xalloc(_metadata, bytes);
	gen(dtype, in, count, seed);
	memset(out, 0xa5, bytes);
	for (r = 0; r < n; r++) {
		if (r == root)
			ASSERT_EQ(0, ld_xfer(self->fds[r], b[r].src_handle,
					     b[r].src_offset, in, bytes, true,
					     LLMDEV_RING_ANY));
		if (r != root || layout != IN_PLACE)
			ASSERT_EQ(0, ld_xfer(self->fds[r], b[r].dst_handle,
					     b[r].dst_offset, out, bytes, true,
					     LLMDEV_RING_ANY));
	}
	/* the other ranks' source is documented as ignored */
	for (r = 0; r < n; r++) {
		if (r != root && layout == TWO_REGIONS) {
			ld_hbm_free(self->fds[r], b[r].src_handle);
			b[r].src_handle = 0x7fffffff;
			b[r].src_offset = ~0ULL;
		}
	}
	ret = run_coll(self, LLMDEV_COLL_BROADCAST, dtype, 0, root, count, b);
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", what, strerror(-ret));
	for (r = 0; r < n; r++) {
		memset(out, 0x5a, bytes);
		ASSERT_EQ(0, ld_xfer(self->fds[r], b[r].dst_handle, b[r].dst_offset,
				     out, bytes, false, LLMDEV_RING_ANY));
		EXPECT_TRUE(same_elems(_metadata, dtype, out, in, count, what, r));
	}
	for (r = 0; r < n; r++)
		if (r != root && layout == TWO_REGIONS)
			b[r].src_handle = 0;
	ld_free_buf(in, bytes + SLACK);
	ld_free_buf(out, bytes + SLACK);
	free_bufs(self, b);
}

TEST_F_TIMEOUT(coll, broadcast_every_root, 600)
{
	static const uint64_t bcounts[] = { 1, 7, 4097, MI + 3 };
	unsigned int root, i;

	SETUP_OR_SKIP();
	for (root = 0; root < self->nranks; root++)
		for (i = 0; i < 4; i++)
			check_broadcast(_metadata, self, i % 4, bcounts[i], root,
					(enum layout)((root + i) % 3), root * 10 + i);
}

/* ---- link byte counters --------------------------------------------------- */

struct snap {
	uint64_t tx[LD_MAX_CARDS][LD_MAX_PORTS], rx[LD_MAX_CARDS][LD_MAX_PORTS];
	uint64_t perf_tx[LD_MAX_CARDS], perf_rx[LD_MAX_CARDS], ops[LD_MAX_CARDS];
};

static void take_snap(struct __test_metadata *_metadata,
		      FIXTURE_DATA(coll) *self, struct snap *s)
{
	struct llmdev_link_info l;
	struct llmdev_perf perf;
	unsigned int c, p;

	for (c = 0; c < self->ncards; c++) {
		for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
			ASSERT_EQ(0, ld_link_info(self->fds[c], p, &l));
			s->tx[c][p] = l.tx_bytes;
			s->rx[c][p] = l.rx_bytes;
		}
		ASSERT_EQ(0, ld_perf(self->fds[c], &perf));
		s->perf_tx[c] = perf.counters[LLMDEV_COUNTER_LINK_TX_BYTES];
		s->perf_rx[c] = perf.counters[LLMDEV_COUNTER_LINK_RX_BYTES];
		s->ops[c] = perf.counters[LLMDEV_COUNTER_COLL_OPS];
	}
}

/*
 * The traffic between two snapshots: rank r sent exactly tx[r] bytes, all
 * on one port that leads to rank r + 1, and received tx[r - 1]; cards
 * outside the group and other ports moved nothing.
 */
static void check_traffic(struct __test_metadata *_metadata,
			  FIXTURE_DATA(coll) *self, const struct snap *a,
			  const struct snap *b, const uint64_t *tx,
			  const char *what)
{
	unsigned int n = self->nranks, c, p;

	for (c = 0; c < self->ncards; c++) {
		uint64_t stx = 0, srx = 0, want_tx = 0, want_rx = 0;
		unsigned int ports = 0;

		if (c < n) {
			want_tx = tx[c];
			want_rx = tx[(c + n - 1) % n];
		}
		for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
			uint64_t dtx = b->tx[c][p] - a->tx[c][p];

			stx += dtx;
			srx += b->rx[c][p] - a->rx[c][p];
			if (dtx) {
				struct llmdev_link_info l;

				ports++;
				ASSERT_EQ(0, ld_link_info(self->fds[c], p, &l));
				if (c < n)
					EXPECT_EQ(self->info[(c + 1) % n].serial, l.peer_serial)
						TH_LOG("%s: llmdev%u sent on port %u, which "
						       "does not lead to the next rank", what, c, p);
			}
		}
		EXPECT_EQ(want_tx, stx) TH_LOG("%s: llmdev%u link tx bytes", what, c);
		EXPECT_EQ(want_rx, srx) TH_LOG("%s: llmdev%u link rx bytes", what, c);
		EXPECT_GE(1, ports) TH_LOG("%s: llmdev%u sent on %u ports", what, c, ports);
		EXPECT_EQ(want_tx, b->perf_tx[c] - a->perf_tx[c])
			TH_LOG("%s: llmdev%u perf counter link_tx_bytes", what, c);
		EXPECT_EQ(want_rx, b->perf_rx[c] - a->perf_rx[c])
			TH_LOG("%s: llmdev%u perf counter link_rx_bytes", what, c);
		EXPECT_EQ(c < n ? 1 : 0, b->ops[c] - a->ops[c])
			TH_LOG("%s: llmdev%u perf counter coll_ops", what, c);
	}
}

TEST_F_TIMEOUT(coll, link_bytes, 300)
{
	unsigned int n = self->nranks, i, r, root;
	struct llmdev_coll_buf b[LLMDEV_MAX_RANKS];
	uint64_t tx[LLMDEV_MAX_RANKS];
	struct snap s0, s1;
	uint64_t cnt[6];
	char what[96];
	int ret;

	SETUP_OR_SKIP();
	/* divisible by n, and every remainder */
	cnt[0] = n * 4096;
	cnt[1] = n * 4096 + 1;
	cnt[2] = n * 4096 + n - 1;
	cnt[3] = 1;
	cnt[4] = 7;
	cnt[5] = n * 100000 + 3;
	setup_bufs(_metadata, self, TWO_REGIONS, cnt[5] * 4, b);
	for (i = 0; i < 6; i++) {
		uint32_t dtype = i % 2 ? LLMDEV_DTYPE_F16 : LLMDEV_DTYPE_F32;
		unsigned int es = ld_dtype_size(dtype);

		snprintf(what, sizeof(what), "AllReduce %s of %llu, %u ranks",
			 dtype_name(dtype), (unsigned long long)cnt[i], n);
		take_snap(_metadata, self, &s0);
		ret = run_coll(self, LLMDEV_COLL_ALLREDUCE, dtype, LLMDEV_REDOP_MAX, 0,
			       cnt[i], b);
		ASSERT_EQ(0, ret) TH_LOG("%s: %s", what, strerror(-ret));
		take_snap(_metadata, self, &s1);
		for (r = 0; r < n; r++)
			tx[r] = allreduce_tx(cnt[i], n, r, es);
		/* the formula itself, for divisible counts: 2(n-1)/n of the data */
		if (cnt[i] % n == 0)
			EXPECT_EQ(2 * (n - 1) * cnt[i] * es / n, tx[0]);
		check_traffic(_metadata, self, &s0, &s1, tx, what);

		root = i % n;
		snprintf(what, sizeof(what), "broadcast %s of %llu from %u, %u ranks",
			 dtype_name(dtype), (unsigned long long)cnt[i], root, n);
		take_snap(_metadata, self, &s0);
		ret = run_coll(self, LLMDEV_COLL_BROADCAST, dtype, 0, root, cnt[i], b);
		ASSERT_EQ(0, ret) TH_LOG("%s: %s", what, strerror(-ret));
		take_snap(_metadata, self, &s1);
		for (r = 0; r < n; r++)
			tx[r] = broadcast_tx(cnt[i], n, r, root, es);
		check_traffic(_metadata, self, &s0, &s1, tx, what);
	}
	free_bufs(self, b);
}

/* ---- ordering, poll, fences ------------------------------------------------ */

/*
 * Collectives run in submission order: an AllReduce in place, then a
 * broadcast of its result from rank n-1 into other regions, then another
 * AllReduce on the first buffers, all queued before waiting. poll() says
 * POLLIN once they are done; the fences belong to the submitting file.
 */
TEST_F_TIMEOUT(coll, queued_in_order, 120)
{
	const uint64_t count = 10007;
	unsigned int n = self->nranks, r, i;
	struct llmdev_coll_buf a[LLMDEV_MAX_RANKS], c[LLMDEV_MAX_RANKS];
	uint64_t bytes = count * 4, fence[3];
	uint8_t *in[LLMDEV_MAX_RANKS], *ref1, *ref2, *out;
	struct pollfd pfd = { .fd = self->fds[0], .events = POLLIN };
	int status;

	SETUP_OR_SKIP();
	setup_bufs(_metadata, self, IN_PLACE, bytes, a);
	setup_bufs(_metadata, self, TWO_REGIONS, bytes, c);
	ref1 = xalloc(_metadata, bytes);
	ref2 = xalloc(_metadata, bytes);
	out = xalloc(_metadata, bytes);
	for (r = 0; r < n; r++) {
		in[r] = xalloc(_metadata, bytes);
		gen(LLMDEV_DTYPE_I32, in[r], count, 500 + r);
		ASSERT_EQ(0, ld_xfer(self->fds[r], a[r].src_handle, a[r].src_offset,
				     in[r], bytes, true, LLMDEV_RING_ANY));
	}
	/* c's sources: the results of the first AllReduce */
	for (r = 0; r < n; r++) {
		c[r].src_handle = a[r].dst_handle;
		c[r].src_offset = a[r].dst_offset;
	}
	ASSERT_EQ(0, ld_coll_submit(self->fds[0], self->group, LLMDEV_COLL_ALLREDUCE,
				    LLMDEV_DTYPE_I32, LLMDEV_REDOP_SUM, 0, count, a,
				    &fence[0]));
	ASSERT_EQ(0, ld_coll_submit(self->fds[0], self->group, LLMDEV_COLL_BROADCAST,
				    LLMDEV_DTYPE_I32, 0, n - 1, count, c, &fence[1]));
	ASSERT_EQ(0, ld_coll_submit(self->fds[0], self->group, LLMDEV_COLL_ALLREDUCE,
				    LLMDEV_DTYPE_I32, LLMDEV_REDOP_SUM, 0, count, a,
				    &fence[2]));
	EXPECT_TRUE(fence[0] != fence[1] && fence[1] != fence[2] && fence[0] != fence[2]);
	/* a fence of another file, even of a member card, is not there */
	if (n > 1)
		EXPECT_EQ(-ENOENT, ld_wait(self->fds[1], fence[2], 0, &status));
	ASSERT_EQ(1, poll(&pfd, 1, 30000));
	EXPECT_TRUE(pfd.revents & POLLIN);
	for (i = 0; i < 3; i++) {
		status = 1;
		ASSERT_EQ(0, ld_wait(self->fds[0], fence[i], WAIT_NS, &status));
		EXPECT_EQ(0, status) TH_LOG("collective %u: %s", i, strerror(-status));
	}
	/* all reaped: nothing to poll, nothing to wait for */
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	EXPECT_EQ(-ENOENT, ld_wait_any(self->fds[0], 0, NULL, NULL));

	/* ref1: after AllReduce 1; ref2: after the second, of n copies of ref1 */
	ref_allreduce(LLMDEV_DTYPE_I32, LLMDEV_REDOP_SUM, n, count, in, ref1);
	for (i = 0; i < count; i++)
		((uint32_t *)ref2)[i] = ((uint32_t *)ref1)[i] * n;
	for (r = 0; r < n; r++) {
		ASSERT_EQ(0, ld_xfer(self->fds[r], c[r].dst_handle, c[r].dst_offset,
				     out, bytes, false, LLMDEV_RING_ANY));
		EXPECT_TRUE(same_elems(_metadata, LLMDEV_DTYPE_I32, out, ref1, count,
				       "broadcast of the first AllReduce", r));
		ASSERT_EQ(0, ld_xfer(self->fds[r], a[r].dst_handle, a[r].dst_offset,
				     out, bytes, false, LLMDEV_RING_ANY));
		EXPECT_TRUE(same_elems(_metadata, LLMDEV_DTYPE_I32, out, ref2, count,
				       "second AllReduce", r));
	}
	for (r = 0; r < n; r++) {
		c[r].src_handle = 0;
		ld_free_buf(in[r], bytes + SLACK);
	}
	ld_free_buf(ref1, bytes + SLACK);
	ld_free_buf(ref2, bytes + SLACK);
	ld_free_buf(out, bytes + SLACK);
	free_bufs(self, a);
	free_bufs(self, c);
}

/* ---- invalid submissions ------------------------------------------------ */

struct bad_case {
	const char *what;
	int err;
	uint32_t op, dtype, redop, root, buf_size, flags;
	uint64_t count;
};

TEST_F(coll, invalid_submit)
{
	unsigned int n = self->nranks, r, i;
	struct llmdev_coll_buf b[LLMDEV_MAX_RANKS], bb[LLMDEV_MAX_RANKS + 1];
	const uint64_t count = 1024, len = 64 * LD_KIB;	/* region: 16 Ki f32 */
	struct llmdev_coll c;
	struct llmdev_hbm_alloc pa;
	uint8_t big[sizeof(bb) + 64];
	int other, devnull, closed, ret;
	const struct bad_case cases[] = {
		{ "op 0", EINVAL, 0, 0, 0, 0, sizeof(b[0]), 0, count },
		{ "op 3", EINVAL, 3, 0, 0, 0, sizeof(b[0]), 0, count },
		{ "dtype 4", EINVAL, LLMDEV_COLL_ALLREDUCE, 4, 0, 0, sizeof(b[0]), 0, count },
		{ "dtype ~0", EINVAL, LLMDEV_COLL_ALLREDUCE, ~0u, 0, 0, sizeof(b[0]), 0, count },
		{ "redop 3", EINVAL, LLMDEV_COLL_ALLREDUCE, 0, 3, 0, sizeof(b[0]), 0, count },
		{ "AllReduce root 1", EINVAL, LLMDEV_COLL_ALLREDUCE, 0, 0, 1, sizeof(b[0]), 0, count },
		{ "broadcast redop 1", EINVAL, LLMDEV_COLL_BROADCAST, 0, 1, 0, sizeof(b[0]), 0, count },
		{ "broadcast root n", EINVAL, LLMDEV_COLL_BROADCAST, 0, 0, n, sizeof(b[0]), 0, count },
		{ "broadcast root 16", EINVAL, LLMDEV_COLL_BROADCAST, 0, 0, 16, sizeof(b[0]), 0, count },
		{ "count 0", EINVAL, LLMDEV_COLL_ALLREDUCE, 0, 0, 0, sizeof(b[0]), 0, 0 },
		{ "count beyond the region", EINVAL, LLMDEV_COLL_ALLREDUCE, 0, 0, 0, sizeof(b[0]), 0, len / 4 + 1 },
		{ "count > LLMDEV_COLL_MAX_BYTES", EINVAL, LLMDEV_COLL_ALLREDUCE, 0, 0, 0, sizeof(b[0]), 0, LLMDEV_COLL_MAX_BYTES / 4 + 1 },
		{ "count ~0", EINVAL, LLMDEV_COLL_ALLREDUCE, LLMDEV_DTYPE_F16, 0, 0, sizeof(b[0]), 0, ~0ULL },
		{ "buf_size 0", EINVAL, LLMDEV_COLL_ALLREDUCE, 0, 0, 0, 0, 0, count },
		{ "buf_size - 1", EINVAL, LLMDEV_COLL_ALLREDUCE, 0, 0, 0, sizeof(b[0]) - 1, 0, count },
		{ "flags 1", EINVAL, LLMDEV_COLL_ALLREDUCE, 0, 0, 0, sizeof(b[0]), 1, count },
		{ "flags 1<<31", EINVAL, LLMDEV_COLL_ALLREDUCE, 0, 0, 0, sizeof(b[0]), 1u << 31, count },
	};

	SETUP_OR_SKIP();
	for (r = 0; r < n; r++) {
		memset(&b[r], 0, sizeof(b[r]));
		b[r].fd = self->fds[r];
		b[r].src_handle = alloc(_metadata, self->fds[r], len);
		b[r].dst_handle = alloc(_metadata, self->fds[r], len);
	}
	/* the valid one, to be sure */
	ASSERT_EQ(0, run_coll(self, LLMDEV_COLL_ALLREDUCE, 0, 0, 0, count, b));

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *k = &cases[i];

		memset(&c, 0, sizeof(c));
		c.size = sizeof(c);
		c.flags = k->flags;
		c.group = self->group;
		c.op = k->op;
		c.dtype = k->dtype;
		c.redop = k->redop;
		c.root = k->root;
		c.buf_size = k->buf_size;
		c.count = k->count;
		c.bufs = (uintptr_t)b;
		EXPECT_EQ(-k->err, ld_ioctl(self->fds[0], LLMDEV_COLL_SUBMIT, &c))
			TH_LOG("%s", k->what);
	}

	/* the buffers, one rank at a time */
#define BAD_BUF(rank, err, what, change) do {				\
		memcpy(bb, b, sizeof(b));				\
		change;							\
		ret = ld_coll_submit(self->fds[0], self->group,	\
				     LLMDEV_COLL_ALLREDUCE, 0, 0, 0, count, bb, NULL); \
		EXPECT_EQ(-(err), ret) TH_LOG("rank %u: %s", rank, what); \
	} while (0)
	other = ld_open(0);
	ASSERT_LE(0, other);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, devnull);
	closed = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, closed);
	close(closed);
	ASSERT_EQ(0, ld_hbm_alloc(other, len, 0, 0, NULL, &pa));
	for (r = 0; r < n; r++) {
		BAD_BUF(r, EINVAL, "src beyond the region",
			bb[r].src_offset = len - 4 * count + 4);
		BAD_BUF(r, EINVAL, "dst beyond the region",
			bb[r].dst_offset = len - 4 * count + 4);
		BAD_BUF(r, EINVAL, "src offset ~0", bb[r].src_offset = ~0ULL);
		BAD_BUF(r, EINVAL, "dst offset overflowing",
			bb[r].dst_offset = ~0ULL - 4 * count + 5);
		BAD_BUF(r, EINVAL, "src and dst overlapping by one element",
			bb[r].dst_handle = bb[r].src_handle;
			bb[r].dst_offset = 4);
		BAD_BUF(r, EINVAL, "src and dst overlapping, dst first",
			bb[r].dst_handle = bb[r].src_handle;
			bb[r].src_offset = 4 * count - 4);
		BAD_BUF(r, EINVAL, "reserved set", bb[r].__reserved = 1);
		BAD_BUF(r, EINVAL, "fd of /dev/null", bb[r].fd = devnull);
		BAD_BUF(r, EBADF, "fd closed", bb[r].fd = closed);
		BAD_BUF(r, EBADF, "fd -1", bb[r].fd = -1);
		BAD_BUF(r, ENOENT, "src handle unknown", bb[r].src_handle = 0x7ffffff0);
		BAD_BUF(r, ENOENT, "dst handle unknown", bb[r].dst_handle = 0x7ffffff0);
		if (n > 1)
			BAD_BUF(r, EINVAL, "fd of the next rank's card",
				bb[r].fd = self->fds[(r + 1) % n]);
		if (r == 0) {
			/* another file of card 0: its regions are not ours */
			BAD_BUF(r, EPERM, "src region of another file",
				bb[0].src_handle = pa.handle);
			BAD_BUF(r, EPERM, "dst region of another file",
				bb[0].dst_handle = pa.handle);
			/* through that file, our regions are not its */
			BAD_BUF(r, EPERM, "fd of another file of the card",
				bb[0].fd = other);
		}
	}
	/* in place is fine; so is the next element on */
	memcpy(bb, b, sizeof(b));
	bb[0].dst_handle = bb[0].src_handle;
	bb[0].dst_offset = 4 * count;
	ASSERT_EQ(0, run_coll(self, LLMDEV_COLL_ALLREDUCE, 0, 0, 0, count, bb));
	memcpy(bb, b, sizeof(b));
	bb[0].dst_handle = bb[0].src_handle;
	ASSERT_EQ(0, run_coll(self, LLMDEV_COLL_ALLREDUCE, 0, 0, 0, count, bb));

	/* buf_size larger than ours: a zero tail works, a non-zero one is E2BIG */
	memset(big, 0, sizeof(big));
	for (r = 0; r < n; r++)
		memcpy(big + r * (sizeof(b[0]) + 8), &b[r], sizeof(b[0]));
	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.group = self->group;
	c.op = LLMDEV_COLL_ALLREDUCE;
	c.buf_size = sizeof(b[0]) + 8;
	c.count = count;
	c.bufs = (uintptr_t)big;
	ASSERT_EQ(0, ld_ioctl(self->fds[0], LLMDEV_COLL_SUBMIT, &c));
	ASSERT_EQ(0, ld_wait(self->fds[0], c.fence, WAIT_NS, &ret));
	EXPECT_EQ(0, ret);
	big[(n - 1) * (sizeof(b[0]) + 8) + sizeof(b[0]) + 7] = 1;
	c.fence = 0;
	EXPECT_EQ(-E2BIG, ld_ioctl(self->fds[0], LLMDEV_COLL_SUBMIT, &c));
	/* bufs not readable */
	c.buf_size = sizeof(b[0]);
	c.bufs = 8;
	EXPECT_EQ(-EFAULT, ld_ioctl(self->fds[0], LLMDEV_COLL_SUBMIT, &c));

	/* unknown group; a group of another file */
	EXPECT_EQ(-ENOENT, ld_coll_submit(self->fds[0], self->group + 1000,
					  LLMDEV_COLL_ALLREDUCE, 0, 0, 0, count, b, NULL));
	EXPECT_EQ(-ENOENT, ld_coll_submit(other, self->group, LLMDEV_COLL_ALLREDUCE,
					  0, 0, 0, count, b, NULL));

	/* none of the failures left a fence behind */
	EXPECT_EQ(-ENOENT, ld_wait_any(self->fds[0], 0, NULL, NULL));
	close(other);
	close(devnull);
}

/* ---- links going down ----------------------------------------------------- */

#define NEED_BAR(card) do {						\
	if (!self->bar[card].regs)					\
		LD_BAR0_MAP_OR_SKIP(card, &self->bar[card], return);	\
	if (!(ld_rd32(&self->bar[card], LLMDEV_REG_CAPS) & LLMDEV_CAPS_FAULT_INJECT)) \
		SKIP(return, "card has no fault injection");		\
} while (0)

/* A ring link taken down by software: submissions fail with ENOLINK. */
TEST_F_TIMEOUT(coll, submit_link_down, 120)
{
	struct llmdev_coll_buf b[LLMDEV_MAX_RANKS];
	int p, ret;

	SETUP_OR_SKIP();
	if (self->nranks < 2)
		SKIP(return, "one rank uses no link");
	setup_bufs(_metadata, self, IN_PLACE, 4096, b);
	p = port_to(self->fds, self->info, self->nranks - 1, 0);
	ASSERT_LE(0, p);
	ASSERT_EQ(0, ld_link_set(self->fds[self->nranks - 1], p, 0));
	ret = run_coll(self, LLMDEV_COLL_ALLREDUCE, 0, 0, 0, 1024, b);
	EXPECT_EQ(-ENOLINK, ret) TH_LOG("link llmdev%u port %d disabled: %s",
					self->nranks - 1, p, strerror(-ret));
	ret = run_coll(self, LLMDEV_COLL_BROADCAST, 0, 0, 0, 1024, b);
	EXPECT_EQ(-ENOLINK, ret);
	EXPECT_EQ(-ENOENT, ld_wait_any(self->fds[0], 0, NULL, NULL));
	ASSERT_EQ(0, ld_link_set(self->fds[self->nranks - 1], p, 1));
	ASSERT_EQ(0, ld_link_wait(self->fds[self->nranks - 1], p, LLMDEV_LINK_UP, UP_MS));
	EXPECT_EQ(0, run_coll(self, LLMDEV_COLL_ALLREDUCE, 0, 0, 0, 1024, b));
	free_bufs(self, b);
}

/*
 * LINK_DOWN_AFTER on rank 0's ring port, far less than the AllReduce
 * sends: the fence fails with ENOLINK within 5 s, every member reports a
 * COLL_ERROR with the same tag, the link stays down until the fault is
 * cleared (the card sets FORCE_DOWN when the budget runs out: both are
 * cleared), then comes back and the next AllReduce is right.
 */
TEST_F_TIMEOUT(coll, link_down_midway, 180)
{
	const uint64_t count = 8 * MI;	/* f32: 32 MiB per rank */
	unsigned int n = self->nranks, r, got = 0, enolink = 0;
	struct llmdev_coll_buf b[LLMDEV_MAX_RANKS];
	bool seen[LD_MAX_CARDS] = { false };
	uint64_t fence, t0, dt, tag = 0;
	struct llmdev_link_info l;
	struct ld_nl_msg m;
	struct ld_nl *ev;
	int p, ret, status = 1;

	SETUP_OR_SKIP();
	if (n < 2)
		SKIP(return, "one rank uses no link");
	NEED_BAR(0);
	ret = ld_nl_open(&ev, true);
	ASSERT_EQ(0, ret) TH_LOG("netlink family \"llmdev\" group \"events\": %s",
				 strerror(-ret));
	setup_bufs(_metadata, self, IN_PLACE, count * 4, b);
	p = port_to(self->fds, self->info, 0, 1);
	ASSERT_LE(0, p);
	ld_nl_drain(ev);
	ld_wr64(&self->bar[0], LLMDEV_LINK_BASE(p) + LLMDEV_LINK_DOWN_AFTER, MI);

	t0 = ld_now_ns();
	ASSERT_EQ(0, ld_coll_submit(self->fds[0], self->group, LLMDEV_COLL_ALLREDUCE,
				    LLMDEV_DTYPE_F32, LLMDEV_REDOP_SUM, 0, count, b,
				    &fence));
	ret = ld_wait(self->fds[0], fence, 5 * LD_NSEC_PER_SEC, &status);
	dt = ld_now_ns() - t0;
	ASSERT_EQ(0, ret) TH_LOG("the collective did not end within 5 s: %s",
				 strerror(-ret));
	EXPECT_EQ(-ENOLINK, status) TH_LOG("fence status %d (%s) after %llu ms", status,
					   strerror(-status),
					   (unsigned long long)(dt / 1000000));

	/* a COLL_ERROR from every member, one tag */
	while (got < n && !ld_nl_next_event(ev, &m, 3000)) {
		if (m.cmd != LD_NL_COLL_ERROR)
			continue;
		ASSERT_TRUE(m.has & LD_NL_HAS_CARD);
		ASSERT_LT(m.card, self->ncards);
		EXPECT_LT(m.card, n) TH_LOG("COLL_ERROR from llmdev%u, not a member", m.card);
		EXPECT_FALSE(seen[m.card]) TH_LOG("two COLL_ERRORs from llmdev%u", m.card);
		EXPECT_EQ(self->info[m.card].serial, m.serial);
		EXPECT_TRUE(m.has & LD_NL_HAS_COLL_TAG && m.has & LD_NL_HAS_ERRNO);
		if (!got)
			tag = m.coll_tag;
		EXPECT_EQ(tag, m.coll_tag);
		EXPECT_TRUE(m.err == ENOLINK || m.err == ECANCELED)
			TH_LOG("llmdev%u: COLL_ERROR errno %u", m.card, m.err);
		enolink += m.err == ENOLINK;
		if (!seen[m.card])
			got++;
		seen[m.card] = true;
	}
	EXPECT_EQ(n, got) TH_LOG("COLL_ERROR events from %u of %u members", got, n);
	EXPECT_LE(1, enolink) TH_LOG("no member reported ENOLINK");

	/* down until the fault is cleared; then the ring works again */
	ASSERT_EQ(0, ld_link_info(self->fds[0], p, &l));
	EXPECT_NE(LLMDEV_LINK_UP, l.state);
	EXPECT_EQ(-ENOLINK, run_coll(self, LLMDEV_COLL_ALLREDUCE, 0, 0, 0, 1024, b));
	/* the card pulled the cable itself (FORCE_DOWN); put it back */
	ld_wr64(&self->bar[0], LLMDEV_LINK_BASE(p) + LLMDEV_LINK_DOWN_AFTER, 0);
	ld_wr32(&self->bar[0], LLMDEV_LINK_BASE(p) + LLMDEV_LINK_FAULT, 0);
	ASSERT_EQ(0, ld_link_wait(self->fds[0], p, LLMDEV_LINK_UP, UP_MS));
	for (r = 0; r < n; r++)
		ASSERT_LE(0, port_to(self->fds, self->info, r, (r + 1) % n));
	free_bufs(self, b);
	check_allreduce(_metadata, self, LLMDEV_DTYPE_F32, LLMDEV_REDOP_SUM, MI + 3,
			TWO_REGIONS, 77);
	ld_nl_close(ev);
}

/* ---- unprivileged --------------------------------------------------------- */

/*
 * In a child that became nobody: open the cards, allocate, make a group,
 * run an AllReduce and check it; a region of root's file is EPERM.
 * Exit: 0, or 10 + the step that failed.
 */
static int unprivileged(unsigned int n, uint32_t roots_handle)
{
	const uint64_t count = 4097, bytes = count * 4;
	struct llmdev_coll_buf b[LLMDEV_MAX_RANKS];
	int fds[LLMDEV_MAX_RANKS], status;
	uint8_t *in[LLMDEV_MAX_RANKS], *ref, *out;
	struct llmdev_hbm_alloc a;
	uint64_t fence;
	uint32_t group;
	unsigned int r;

	if (ld_drop_privs())
		return 10;
	ref = malloc(bytes);
	out = malloc(bytes);
	if (!ref || !out)
		return 11;
	memset(b, 0, sizeof(b));
	for (r = 0; r < n; r++) {
		fds[r] = ld_open(r);
		if (fds[r] < 0)
			return 12;
		if (ld_hbm_alloc(fds[r], bytes, 0, 0, NULL, &a))
			return 13;
		b[r].fd = fds[r];
		b[r].src_handle = b[r].dst_handle = a.handle;
		in[r] = malloc(bytes);
		if (!in[r])
			return 11;
		gen(LLMDEV_DTYPE_I32, in[r], count, 900 + r);
		if (ld_xfer(fds[r], a.handle, 0, in[r], bytes, true, LLMDEV_RING_ANY))
			return 14;
	}
	if (ld_group_create(fds[0], fds, n, &group))
		return 15;
	if (ld_coll_submit(fds[0], group, LLMDEV_COLL_ALLREDUCE, LLMDEV_DTYPE_I32,
			   LLMDEV_REDOP_SUM, 0, count, b, &fence) ||
	    ld_wait(fds[0], fence, WAIT_NS, &status) || status)
		return 16;
	ref_allreduce(LLMDEV_DTYPE_I32, LLMDEV_REDOP_SUM, n, count, in, ref);
	for (r = 0; r < n; r++) {
		if (ld_xfer(fds[r], b[r].dst_handle, 0, out, bytes, false,
			    LLMDEV_RING_ANY))
			return 17;
		if (memcmp(out, ref, bytes))
			return 18;
	}
	b[0].src_handle = roots_handle;
	if (ld_coll_submit(fds[0], group, LLMDEV_COLL_ALLREDUCE, LLMDEV_DTYPE_I32,
			   LLMDEV_REDOP_SUM, 0, count, b, &fence) != -EPERM)
		return 19;
	if (ld_group_destroy(fds[0], group))
		return 20;
	return 0;
}

TEST_F_TIMEOUT(coll, unprivileged_user, 120)
{
	static const char *const what[] = {
		"dropping privileges", "memory", "open", "HBM_ALLOC", "DMA",
		"GROUP_CREATE", "AllReduce", "reading back", "wrong result",
		"root's region not EPERM", "GROUP_DESTROY",
	};
	uint32_t h;
	pid_t pid;
	int st;

	SETUP_OR_SKIP();
	h = alloc(_metadata, self->fds[0], 64 * LD_KIB);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(unprivileged(self->nranks, h));
	st = ld_wait_child(pid);
	EXPECT_EQ(0, st) TH_LOG("as nobody: %s", st >= 10 && st <= 20 ?
				what[st - 10] : "crashed");
}

/*
 * Another user's collective, queued behind 8 long ones of root's: it runs
 * after one more of root's (the users take turns), not after all 8. The
 * child, as nobody, makes a group of its own on card 0 and says it is
 * ready; root queues its 8 and says go; the child submits, waits, and
 * reads the card's collective counter (LLMDEV_COUNTER_COLL_OPS) at once
 * itself: the collectives that finished before its own, against the count
 * when it was ready, are written back.
 */
static int turns_child(int ready, int go, int done)
{
	struct llmdev_coll_buf b = { 0 };
	struct llmdev_hbm_alloc a;
	struct llmdev_perf p0, p1;
	int fd, status = 1, ret;
	uint64_t fence, before;
	uint32_t group;
	char c;

	if (ld_drop_privs())
		return 10;
	fd = ld_open(0);
	if (fd < 0)
		return 11;
	if (ld_hbm_alloc(fd, 2 * LD_PAGE, 0, 0, NULL, &a))
		return 12;
	if (ld_group_create(fd, &fd, 1, &group))
		return 13;
	b.fd = fd;
	b.src_handle = b.dst_handle = a.handle;
	b.dst_offset = LD_PAGE;
	if (ld_perf(fd, &p0))
		return 16;
	if (write(ready, "r", 1) != 1 || read(go, &c, 1) != 1)
		return 14;
	ret = ld_coll_submit(fd, group, LLMDEV_COLL_ALLREDUCE, LLMDEV_DTYPE_I32,
			     LLMDEV_REDOP_SUM, 0, LD_PAGE / 4, &b, &fence);
	if (ret || ld_wait(fd, fence, WAIT_NS, &status) || status)
		return 15;
	if (ld_perf(fd, &p1))
		return 16;
	/* its own is one of them */
	before = p1.counters[LLMDEV_COUNTER_COLL_OPS] -
		 p0.counters[LLMDEV_COUNTER_COLL_OPS] - 1;
	if (write(done, &before, sizeof(before)) != sizeof(before))
		return 14;
	return 0;
}

TEST_F_TIMEOUT(coll, users_take_turns, 180)
{
	static const char *const what[] = {
		"dropping privileges", "open", "HBM_ALLOC", "GROUP_CREATE",
		"pipe", "its collective", "PERF_READ",
	};
	const unsigned int queued = 8;
	struct llmdev_coll_buf b = { 0 };
	uint64_t bytes, fence[8], before = ~0ULL;
	int p_ready[2], p_go[2], p_done[2], status, st;
	uint32_t group;
	unsigned int i;
	pid_t pid;
	char c;

	SETUP_OR_SKIP();
	if (self->nranks != 1)
		SKIP(return, "one card is enough: run with ranks1");
	/* long ones: the child reads the counter before the next one ends */
	bytes = self->info[0].hbm_size / 4;
	if (bytes > 256 * LD_MIB)
		bytes = 256 * LD_MIB;
	b.fd = self->fds[0];
	b.src_handle = alloc(_metadata, self->fds[0], bytes);
	b.dst_handle = alloc(_metadata, self->fds[0], bytes);
	group = self->group;
	ASSERT_EQ(0, pipe(p_ready));
	ASSERT_EQ(0, pipe(p_go));
	ASSERT_EQ(0, pipe(p_done));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(turns_child(p_ready[1], p_go[0], p_done[1]));
	close(p_ready[1]);
	close(p_go[0]);
	close(p_done[1]);
	ASSERT_EQ(1, read(p_ready[0], &c, 1)) TH_LOG("the child did not get ready");
	for (i = 0; i < queued; i++)
		ASSERT_EQ(0, ld_coll_submit(self->fds[0], group, LLMDEV_COLL_ALLREDUCE,
					    LLMDEV_DTYPE_I32, LLMDEV_REDOP_SUM, 0,
					    bytes / 4, &b, &fence[i]));
	ASSERT_EQ(1, write(p_go[1], "g", 1));
	EXPECT_EQ(sizeof(before), read(p_done[0], &before, sizeof(before)));
	st = ld_wait_child(pid);
	EXPECT_EQ(0, st) TH_LOG("as nobody: %s", st >= 10 && st <= 16 ?
				what[st - 10] : "crashed");
	for (i = 0; i < queued; i++) {
		EXPECT_EQ(0, ld_wait(self->fds[0], fence[i], WAIT_NS, &status));
		EXPECT_EQ(0, status) TH_LOG("collective %u: %s", i, strerror(-status));
	}
	/*
	 * The one running, the next in root's turn, then nobody's: 2, and
	 * those that end while the child wakes up to read the counter (one
	 * at times on the debug kernel). All 8 in one queue.
	 */
	TH_LOG("%llu of root's %u collectives of %llu MiB finished before nobody's",
	       (unsigned long long)before, queued, (unsigned long long)(bytes >> 20));
	EXPECT_LE(before, 4) TH_LOG("nobody's collective waited for root's queue");
	close(p_ready[0]);
	close(p_go[1]);
	close(p_done[0]);
	ld_hbm_free(self->fds[0], b.src_handle);
	ld_hbm_free(self->fds[0], b.dst_handle);
}

/* ---- groups --------------------------------------------------------------- */

FIXTURE(group) {
	int kmsg;
	int fd;
	unsigned int ncards;
	int fds[LD_MAX_CARDS];
	struct llmdev_info info[LD_MAX_CARDS];
	struct ld_bar0 bar[LD_MAX_CARDS];
};

FIXTURE_SETUP(group)
{
	unsigned int gap;

	memset(self->fds, -1, sizeof(self->fds));
	LD_FIXTURE_START();
	self->ncards = ld_num_cards();
	if (self->ncards > LD_MAX_CARDS)
		self->ncards = LD_MAX_CARDS;
	if (self->ncards < 2)
		SKIP(return, "groups of cards need 2 cards, the VM has %u", self->ncards);
	LD_FIXTURE_OPEN_CARDS();
	ASSERT_EQ(0, ring_up(self->fds, self->info, 2, &gap))
		TH_LOG("no up link between llmdev0 and llmdev1");
}

FIXTURE_TEARDOWN(group)
{
	unsigned int c, gap;

	LD_EXPECT_NO_KERNEL_REPORTS(self->kmsg);
	restore_links(self->fds, self->bar, self->ncards);
	if (self->fds[0] >= 0 && self->ncards >= 2 &&
	    ring_up(self->fds, self->info, 2, &gap))
		TH_LOG("teardown: llmdev0 and llmdev1 not linked again");
	for (c = 0; c < LD_MAX_CARDS; c++)
		if (self->fds[c] >= 0)
			close(self->fds[c]);
}

TEST_F(group, invalid)
{
	int32_t fds[LLMDEV_MAX_RANKS + 1];
	struct llmdev_group_create c;
	int devnull, closed, again;
	unsigned int i;
	uint32_t g;

	SETUP_OR_SKIP();
	for (i = 0; i <= LLMDEV_MAX_RANKS; i++)
		fds[i] = self->fds[i % 2];
	EXPECT_EQ(-EINVAL, ld_group_create(self->fds[0], fds, 0, &g));
	EXPECT_EQ(-EINVAL, ld_group_create(self->fds[0], fds, LLMDEV_MAX_RANKS + 1, &g));
	EXPECT_EQ(-EINVAL, ld_group_create(self->fds[0], fds, 0xffffffffu, &g));
	/* the same card twice: the same file, or two files of it */
	fds[1] = self->fds[0];
	EXPECT_EQ(-EINVAL, ld_group_create(self->fds[0], fds, 2, &g));
	again = ld_open(0);
	ASSERT_LE(0, again);
	fds[0] = self->fds[0];
	fds[1] = self->fds[1];
	fds[2] = again;
	EXPECT_EQ(-EINVAL, ld_group_create(self->fds[0], fds, 3, &g));
	/* not a card; not open */
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, devnull);
	closed = open("/dev/null", O_RDWR | O_CLOEXEC);
	close(closed);
	fds[1] = devnull;
	EXPECT_EQ(-EINVAL, ld_group_create(self->fds[0], fds, 2, &g));
	fds[1] = closed;
	EXPECT_EQ(-EBADF, ld_group_create(self->fds[0], fds, 2, &g));
	fds[1] = -1;
	EXPECT_EQ(-EBADF, ld_group_create(self->fds[0], fds, 2, &g));
	/* flags, unreadable fds */
	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.flags = 1;
	c.nranks = 1;
	c.fds = (uintptr_t)self->fds;
	EXPECT_EQ(-EINVAL, ld_ioctl(self->fds[0], LLMDEV_GROUP_CREATE, &c));
	c.flags = 0;
	c.fds = 8;
	EXPECT_EQ(-EFAULT, ld_ioctl(self->fds[0], LLMDEV_GROUP_CREATE, &c));
	/* a group of one card needs no link; the file needs not be a member */
	fds[0] = self->fds[1];
	ASSERT_EQ(0, ld_group_create(self->fds[0], fds, 1, &g));
	EXPECT_EQ(0, ld_group_destroy(self->fds[0], g));
	fds[0] = self->fds[0];
	fds[1] = self->fds[1];
	ASSERT_EQ(0, ld_group_create(again, fds, 2, &g));
	EXPECT_EQ(0, ld_group_destroy(again, g));
	close(again);
	close(devnull);
}

TEST_F(group, broken_ring)
{
	int32_t fds[3] = { self->fds[0], self->fds[1], -1 };
	struct llmdev_link_info l;
	unsigned int p;
	uint32_t g;

	SETUP_OR_SKIP();
	if (self->ncards >= 4) {
		/* the default ring of 4 has no cable from card 2 to card 0 */
		fds[2] = self->fds[2];
		if (port_to(self->fds, self->info, 2, 0) < 0)
			EXPECT_EQ(-ENOLINK, ld_group_create(self->fds[0], fds, 3, &g));
	}
	/* every link from card 1 to card 0 down: {0, 1} is no ring */
	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
		ASSERT_EQ(0, ld_link_info(self->fds[1], p, &l));
		if (l.state == LLMDEV_LINK_UP && l.peer_serial == self->info[0].serial)
			ASSERT_EQ(0, ld_link_set(self->fds[1], p, 0));
	}
	EXPECT_EQ(-ENOLINK, ld_group_create(self->fds[0], fds, 2, &g));
	/* the order matters not: 1 -> 0 is missing either way */
	fds[0] = self->fds[1];
	fds[1] = self->fds[0];
	EXPECT_EQ(-ENOLINK, ld_group_create(self->fds[0], fds, 2, &g));
	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++)
		ld_link_set(self->fds[1], p, 1);
	EXPECT_EQ(0, ring_up(self->fds, self->info, 2, &p));
	EXPECT_EQ(0, ld_group_create(self->fds[0], fds, 2, &g));
}

TEST_F_TIMEOUT(group, destroy, 60)
{
	struct llmdev_coll_buf b[2];
	struct llmdev_group_destroy d;
	uint32_t g, g2, h[2];
	uint64_t fence;
	unsigned int r;
	int status = 1;

	SETUP_OR_SKIP();
	EXPECT_EQ(-ENOENT, ld_group_destroy(self->fds[0], 0));
	EXPECT_EQ(-ENOENT, ld_group_destroy(self->fds[0], 12345));
	ASSERT_EQ(0, ld_group_create(self->fds[0], self->fds, 2, &g));
	/* a group belongs to its file */
	EXPECT_EQ(-ENOENT, ld_group_destroy(self->fds[1], g));
	memset(&d, 0, sizeof(d));
	d.size = sizeof(d);
	d.group = g;
	d.__reserved = 1;
	EXPECT_EQ(-EINVAL, ld_ioctl(self->fds[0], LLMDEV_GROUP_DESTROY, &d));

	/* destroyed with a collective in flight: it still completes */
	memset(b, 0, sizeof(b));
	for (r = 0; r < 2; r++) {
		h[r] = alloc(_metadata, self->fds[r], 4 * MI);
		b[r].fd = self->fds[r];
		b[r].src_handle = b[r].dst_handle = h[r];
	}
	ASSERT_EQ(0, ld_coll_submit(self->fds[0], g, LLMDEV_COLL_ALLREDUCE,
				    LLMDEV_DTYPE_F32, LLMDEV_REDOP_SUM, 0, MI, b, &fence));
	EXPECT_EQ(0, ld_group_destroy(self->fds[0], g));
	ASSERT_EQ(0, ld_wait(self->fds[0], fence, WAIT_NS, &status));
	EXPECT_EQ(0, status);
	EXPECT_EQ(-ENOENT, ld_group_destroy(self->fds[0], g));
	EXPECT_EQ(-ENOENT, ld_coll_submit(self->fds[0], g, LLMDEV_COLL_ALLREDUCE,
					  LLMDEV_DTYPE_F32, LLMDEV_REDOP_SUM, 0, MI,
					  b, &fence));
	/* ids are not reused at once? at least a new one works */
	ASSERT_EQ(0, ld_group_create(self->fds[0], self->fds, 2, &g2));
	ASSERT_EQ(0, ld_coll_submit(self->fds[0], g2, LLMDEV_COLL_BROADCAST,
				    LLMDEV_DTYPE_I32, 0, 1, 1000, b, &fence));
	ASSERT_EQ(0, ld_wait(self->fds[0], fence, WAIT_NS, &status));
	EXPECT_EQ(0, status);
}

TEST_F(group, max_groups)
{
	uint32_t g[LLMDEV_MAX_GROUPS + 1];
	unsigned int i, j;
	int ret;

	SETUP_OR_SKIP();
	for (i = 0; i < LLMDEV_MAX_GROUPS; i++) {
		ret = ld_group_create(self->fds[0], &self->fds[i % 2], 1, &g[i]);
		ASSERT_EQ(0, ret) TH_LOG("group %u: %s", i, strerror(-ret));
		for (j = 0; j < i; j++)
			ASSERT_NE(g[j], g[i]);
	}
	EXPECT_EQ(-EMFILE, ld_group_create(self->fds[0], self->fds, 1, &g[i]));
	/* another file has its own */
	ASSERT_EQ(0, ld_group_create(self->fds[1], self->fds, 1, &g[i]));
	EXPECT_EQ(0, ld_group_destroy(self->fds[0], g[7]));
	EXPECT_EQ(0, ld_group_create(self->fds[0], self->fds, 2, &g[7]));
}

TEST_HARNESS_MAIN
