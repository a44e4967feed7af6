// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev driver: reset and recovery (LLMDEV_RESET, FLR through sysfs, AER).
 *
 * What a reset must do (uapi/llmdev.h, LLMDEV_RESET): transfers the card
 * had started end with -EIO, queued ones run after it; a running
 * collective with the card as a member ends with -EIO; regions, their
 * contents and the routing table survive; mappings are zapped and come
 * back on the next access; links retrain; the card is usable afterwards,
 * nothing leaks, and no call hangs.
 *
 * AER: a fatal error injected with QEMU's pcie_aer_inject_error (through
 * hostctl, the runner's monitor) makes the kernel's AER service reset the
 * link below the card's root port; the driver's error handlers take the
 * card through the same reset path, during DMA and a collective.
 *
 * LLMDEV_RESET_ROUNDS (environment) sets the rounds of the FLR soak
 * (default 100); LLMDEV_AER_ROUNDS those of the AER one (default 10).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "driver_util.h"
#include "kselftest_harness.h"

#define BUF_SIZE	(4 * LD_MIB)

static int reset_ioctl(int fd)
{
	struct llmdev_reset r = { .size = sizeof(r) };

	return ld_ioctl(fd, LLMDEV_RESET, &r);
}

/* A function-level reset through sysfs, as an operator does it. */
static int reset_sysfs(unsigned int card)
{
	char path[128];

	snprintf(path, sizeof(path), LD_SYSFS_CLASS "/llmdev%u/device/reset", card);
	return ld_write_file(path, "1");
}

static int card_state(unsigned int card, char *buf, size_t len)
{
	char path[128];

	snprintf(path, sizeof(path), LD_SYSFS_CLASS "/llmdev%u/state", card);
	return ld_read_file(path, buf, len);
}

static uint64_t reset_count(unsigned int card)
{
	uint64_t n = ~0ULL;

	ld_sysfs_u64(card, "reset_count", &n);
	return n;
}

FIXTURE(reset) {
	int kmsg;
	int fd;
	struct llmdev_info info;
	uint8_t *src, *dst;
};

FIXTURE_SETUP(reset)
{
	LD_FIXTURE_START();
	LD_FIXTURE_OPEN_CARD0();
	self->src = ld_alloc_buf(BUF_SIZE);
	self->dst = ld_alloc_buf(BUF_SIZE);
	ASSERT_NE(NULL, self->src);
	ASSERT_NE(NULL, self->dst);
}

FIXTURE_TEARDOWN(reset)
{
	char state[32] = "";

	if (self->fd >= 0)
		close(self->fd);
	ld_free_buf(self->src, BUF_SIZE);
	ld_free_buf(self->dst, BUF_SIZE);
	card_state(0, state, sizeof(state));
	EXPECT_STREQ("live", state);
	LD_EXPECT_NO_KERNEL_REPORTS(self->kmsg);
}

/* A round trip through a new region: the card works. */
static int card_works(int fd, uint8_t *src, uint8_t *dst, size_t len,
		      uint64_t seed)
{
	struct llmdev_hbm_alloc a;
	int ret;

	ret = ld_hbm_alloc(fd, len, 0, 0, NULL, &a);
	if (ret)
		return ret;
	ld_fill(src, len, seed);
	memset(dst, 0, len);
	ret = ld_xfer(fd, a.handle, 0, src, len, true, LLMDEV_RING_ANY);
	if (!ret)
		ret = ld_xfer(fd, a.handle, 0, dst, len, false, LLMDEV_RING_ANY);
	if (!ret && ld_cmp(src, dst, len) >= 0)
		ret = -EBADMSG;
	ld_hbm_free(fd, a.handle);
	return ret;
}

TEST_F(reset, ioctl_resets_and_counts)
{
	char state[32];
	uint64_t before, after;

	SETUP_OR_SKIP();
	before = reset_count(0);
	ASSERT_EQ(0, reset_ioctl(self->fd));
	after = reset_count(0);
	EXPECT_EQ(before + 1, after);
	ASSERT_EQ(0, card_state(0, state, sizeof(state)));
	EXPECT_STREQ("live", state);
	EXPECT_EQ(0, card_works(self->fd, self->src, self->dst, 64 * LD_KIB, 1));
	/* and through sysfs, the other way an operator resets a card */
	ASSERT_EQ(0, reset_sysfs(0));
	EXPECT_EQ(after + 1, reset_count(0));
	EXPECT_EQ(0, card_works(self->fd, self->src, self->dst, 64 * LD_KIB, 2));
}

TEST_F(reset, needs_cap_sys_admin)
{
	pid_t pid;

	SETUP_OR_SKIP();
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int fd;

		/* nobody, in the group the udev rule lets open the card */
		if (ld_drop_privs())
			_exit(10);
		fd = ld_open(0);
		if (fd < 0)
			_exit(11);
		_exit(reset_ioctl(fd) == -EPERM ? 0 : 12);
	}
	EXPECT_EQ(0, ld_wait_child(pid));
}

/* Regions, their contents, mappings and the routing table survive. */
TEST_F(reset, keeps_regions_mappings_and_routes)
{
	struct llmdev_route_entry e = {
		.layer_first = 0, .layer_last = 3, .tp_rank = 0, .tp_size = 1,
		.next_hop = LLMDEV_HOP_HOST,
	}, got[2];
	struct llmdev_hbm_alloc mine, pers;
	uint32_t n = 0, gen0 = 0, gen1 = 0;
	struct llmdev_route out;
	volatile uint8_t *map;
	struct ld_bar0 bar;
	uint8_t v = 0;
	size_t len = BUF_SIZE / 2;

	SETUP_OR_SKIP();
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, len, 0, 0, NULL, &mine));
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, len, 0, LLMDEV_HBM_PERSISTENT,
				  "reset-keeps", &pers));
	ld_fill(self->src, len, 11);
	ld_fill(self->src + len, len, 12);
	ASSERT_EQ(0, ld_xfer(self->fd, mine.handle, 0, self->src, len, true, 0));
	ASSERT_EQ(0, ld_xfer(self->fd, pers.handle, 0, self->src + len, len,
			     true, 1));
	e.handle = pers.handle;
	ASSERT_EQ(0, ld_route_set(self->fd, &e, 1, &out));
	gen0 = out.generation;
	map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		   mine.mmap_offset);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, ld_touch(map + 4097, false, &v));
	EXPECT_EQ(self->src[4097], v);

	ASSERT_EQ(0, reset_sysfs(0));

	/* the mapping faults its pages back in, with the same contents */
	v = 0;
	EXPECT_EQ(0, ld_touch(map + 4097, false, &v));
	EXPECT_EQ(self->src[4097], v);
	v = 0;
	EXPECT_EQ(0, ld_touch(map + len - 1, false, &v));
	EXPECT_EQ(self->src[len - 1], v);
	munmap((void *)map, len);

	memset(self->dst, 0, BUF_SIZE);
	EXPECT_EQ(0, ld_xfer(self->fd, mine.handle, 0, self->dst, len, false, 0));
	EXPECT_EQ(0, ld_xfer(self->fd, pers.handle, 0, self->dst + len, len,
			     false, 1));
	EXPECT_EQ(-1, ld_cmp(self->src, self->dst, BUF_SIZE));

	ASSERT_EQ(0, ld_route_get(self->fd, got, 2, &n, &gen1));
	EXPECT_EQ(1, n);
	EXPECT_EQ(gen0, gen1);
	EXPECT_EQ(pers.handle, got[0].handle);
	EXPECT_EQ(-EBUSY, ld_hbm_free(self->fd, pers.handle));
	/* the card has the table again, not only the driver */
	if (ld_bar0_map(0, &bar) == 0) {
		EXPECT_EQ(1, ld_rd32(&bar, LLMDEV_REG_ROUTE_ACTIVE_NUM));
		EXPECT_EQ(pers.hbm_offset,
			  ld_rd64(&bar, LLMDEV_REG_ROUTE_ACTIVE +
				  LLMDEV_ROUTE_E_HBM_OFFSET));
		ld_bar0_unmap(&bar);
	} else {
		TH_LOG("BAR 0 not mapped (%s): the card's own table unchecked",
		       bar.why);
	}
	EXPECT_EQ(0, ld_route_set(self->fd, NULL, 0, NULL));
	EXPECT_EQ(0, ld_hbm_free(self->fd, pers.handle));
	EXPECT_EQ(0, ld_hbm_free(self->fd, mine.handle));
}

/* The links go down with the reset and train again. */
TEST_F(reset, links_retrain)
{
	int peer[LD_MAX_CARDS][LD_MAX_PORTS];
	unsigned int p, up = 0;

	SETUP_OR_SKIP();
	ASSERT_EQ(0, ld_topology(ld_num_cards(), peer));
	for (p = 0; p < LD_MAX_PORTS; p++)
		up += peer[0][p] >= 0;
	if (!up)
		SKIP(return, "card 0 has no cabled port");
	ASSERT_EQ(0, reset_ioctl(self->fd));
	for (p = 0; p < LD_MAX_PORTS; p++) {
		if (peer[0][p] < 0)
			continue;
		EXPECT_EQ(0, ld_link_wait(self->fd, p, LLMDEV_LINK_UP, 10000))
			TH_LOG("port %u did not come back up", p);
	}
}

/* ---- under load ------------------------------------------------------------ */

#define LOAD_XFERS	48
#define LOAD_LEN	(256 * LD_KIB)
#define LOAD_BYTES	(LOAD_XFERS * LOAD_LEN)

/*
 * Transfers on every ring, in both directions, each on a range of its own
 * (rings run in no order with respect to each other): the even ones write
 * new data to the first half of the region, the odd ones read back the
 * second half, written before the load. A reset lands in the middle.
 * Every fence must end, with 0 or -EIO, and the data of every transfer
 * that ended with 0 must be right.
 */
struct load {
	int fd;
	uint32_t handle;
	uint8_t *src;		/* LOAD_BYTES: [0, half) goes out, [half, end) is on the card */
	uint8_t *dst;		/* LOAD_BYTES: what comes back */
	uint64_t fence[LOAD_XFERS];
	int status[LOAD_XFERS];
};

static uint64_t load_off(unsigned int i)
{
	/* even i: the first half; odd i: the second */
	return (uint64_t)(i / 2) * LOAD_LEN + (i & 1 ? LOAD_BYTES / 2 : 0);
}

/*
 * A region with its second half written (load_start() submits the
 * transfers too; load_prepare() leaves that to load_submit())
 */
static bool load_prepare(struct load *l, int fd, uint64_t seed)
{
	struct llmdev_hbm_alloc a;

	l->fd = fd;
	if (ld_hbm_alloc(fd, LOAD_BYTES, 0, 0, NULL, &a))
		return false;
	l->handle = a.handle;
	ld_fill(l->src, LOAD_BYTES, seed);
	memset(l->dst, 0, LOAD_BYTES);
	if (ld_xfer(fd, l->handle, LOAD_BYTES / 2, l->src + LOAD_BYTES / 2,
		    LOAD_BYTES / 2, true, LLMDEV_RING_ANY))
		return false;
	return true;
}

/* the transfers of a load prepared by load_prepare() */
static bool load_submit(struct load *l)
{
	unsigned int i;

	for (i = 0; i < LOAD_XFERS; i++) {
		bool to_card = !(i & 1);
		uint64_t off = load_off(i);

		if (ld_submit(l->fd, l->handle, off,
			      (to_card ? l->src : l->dst) + off, LOAD_LEN,
			      to_card, (i / 2) % 2, &l->fence[i]))
			return false;
	}
	return true;
}

static bool load_start(struct load *l, int fd, uint64_t seed)
{
	return load_prepare(l, fd, seed) && load_submit(l);
}

/*
 * Reap every fence; check what finished. Return: transfers that ended with
 * 0, or -1 after a wrong status or wrong data (*why says which).
 */
static int load_finish(struct load *l, char *why, size_t len)
{
	unsigned int i, ok = 0;
	int ret = 0;

	for (i = 0; i < LOAD_XFERS; i++) {
		int r = ld_wait(l->fd, l->fence[i], LD_LONG_WAIT, &l->status[i]);

		if (r) {
			snprintf(why, len, "fence %u: wait %d", i, r);
			ret = -1;
		} else if (l->status[i] && l->status[i] != -EIO) {
			snprintf(why, len, "fence %u: status %d", i, l->status[i]);
			ret = -1;
		}
	}
	/* what the writes put on the card, read back now */
	if (!ret && ld_xfer(l->fd, l->handle, 0, l->dst, LOAD_BYTES / 2, false,
			    LLMDEV_RING_ANY)) {
		snprintf(why, len, "read back failed");
		ret = -1;
	}
	for (i = 0; i < LOAD_XFERS && !ret; i++) {
		uint64_t off = load_off(i);

		if (l->status[i])
			continue;
		ok++;
		if (ld_cmp(l->src + off, l->dst + off, LOAD_LEN) >= 0) {
			snprintf(why, len, "transfer %u (%s): wrong data", i,
				 i & 1 ? "from the card" : "to the card");
			ret = -1;
		}
	}
	ld_hbm_free(l->fd, l->handle);
	return ret ? ret : (int)ok;
}

TEST_F(reset, during_dma)
{
	struct load l = { 0 };
	char why[128] = "";
	int ok;

	SETUP_OR_SKIP();
	l.src = ld_alloc_buf(LOAD_BYTES);
	l.dst = ld_alloc_buf(LOAD_BYTES);
	ASSERT_NE(NULL, l.src);
	ASSERT_NE(NULL, l.dst);
	ASSERT_TRUE(load_start(&l, self->fd, 7));
	ASSERT_EQ(0, reset_ioctl(self->fd));
	ok = load_finish(&l, why, sizeof(why));
	EXPECT_LE(0, ok) TH_LOG("%s", why);
	TH_LOG("%d of %d transfers finished, the others ended with -EIO", ok,
	       LOAD_XFERS);
	EXPECT_EQ(0, card_works(self->fd, self->src, self->dst, BUF_SIZE, 3));
	EXPECT_EQ(0, ld_hbm_used_settle(0, 0));
	ld_free_buf(l.src, LOAD_BYTES);
	ld_free_buf(l.dst, LOAD_BYTES);
}

/*
 * The same with every ring stalled, so that the reset surely finds all 48
 * transfers on the card (unstalled, it often comes after they are done):
 * each must end with -EIO, none hang or report success, and the reset
 * (which clears FAULT_INJECT) leaves the card working.
 */
TEST_F(reset, during_stalled_dma)
{
	struct load l = { 0 };
	char why[128] = "";
	struct ld_bar0 bar;
	uint32_t bits = 0;
	unsigned int r;
	int ok;

	SETUP_OR_SKIP();
	LD_BAR0_MAP_OR_SKIP(0, &bar, return);
	if (!(ld_rd32(&bar, LLMDEV_REG_CAPS) & LLMDEV_CAPS_FAULT_INJECT)) {
		ld_bar0_unmap(&bar);
		SKIP(return, "card has no fault injection");
	}
	for (r = 0; r < 2; r++)
		bits |= LLMDEV_FAULT_STALL_RING(ld_hw_ring(true, r)) |
			LLMDEV_FAULT_STALL_RING(ld_hw_ring(false, r));
	l.src = ld_alloc_buf(LOAD_BYTES);
	l.dst = ld_alloc_buf(LOAD_BYTES);
	ASSERT_NE(NULL, l.src);
	ASSERT_NE(NULL, l.dst);
	ASSERT_TRUE(load_prepare(&l, self->fd, 11));
	ld_wr32(&bar, LLMDEV_REG_FAULT_INJECT, bits);
	ASSERT_TRUE(load_submit(&l));
	ASSERT_EQ(0, reset_ioctl(self->fd));
	EXPECT_EQ(0, ld_rd32(&bar, LLMDEV_REG_FAULT_INJECT));
	ld_wr32(&bar, LLMDEV_REG_FAULT_INJECT, 0);
	ld_bar0_unmap(&bar);
	ok = load_finish(&l, why, sizeof(why));
	EXPECT_EQ(0, ok) TH_LOG("%s", why);
	for (r = 0; r < LOAD_XFERS; r++)
		EXPECT_EQ(-EIO, l.status[r]) TH_LOG("transfer %u", r);
	EXPECT_EQ(0, card_works(self->fd, self->src, self->dst, BUF_SIZE, 4));
	EXPECT_EQ(0, ld_hbm_used_settle(0, 0));
	ld_free_buf(l.src, LOAD_BYTES);
	ld_free_buf(l.dst, LOAD_BYTES);
}

/*
 * The FLR soak: rounds of a load and a reset (through sysfs or the ioctl
 * by turns), the card usable after each, nothing left allocated.
 */
TEST_F_TIMEOUT(reset, flr_soak, 900)
{
	const char *env = getenv("LLMDEV_RESET_ROUNDS");
	unsigned int rounds = env ? (unsigned int)atoi(env) : 100, i;
	uint64_t count0, t0 = ld_now_ns();
	struct load l = { 0 };
	char why[128] = "";
	long done = 0;
	int ok;

	SETUP_OR_SKIP();
	l.src = ld_alloc_buf(LOAD_BYTES);
	l.dst = ld_alloc_buf(LOAD_BYTES);
	ASSERT_NE(NULL, l.src);
	ASSERT_NE(NULL, l.dst);
	count0 = reset_count(0);
	for (i = 0; i < rounds; i++) {
		ASSERT_TRUE(load_start(&l, self->fd, i));
		if (i & 1) {
			ASSERT_EQ(0, reset_sysfs(0));
		} else {
			ASSERT_EQ(0, reset_ioctl(self->fd));
		}
		ok = load_finish(&l, why, sizeof(why));
		ASSERT_LE(0, ok) TH_LOG("round %u: %s", i, why);
		done += ok;
		ASSERT_EQ(0, card_works(self->fd, self->src, self->dst,
					64 * LD_KIB, i))
			TH_LOG("round %u: the card does not work", i);
	}
	EXPECT_EQ(count0 + rounds, reset_count(0));
	EXPECT_EQ(0, ld_hbm_used_settle(0, 0));
	TH_LOG("%u resets under load in %.1f s; %ld of %u transfers finished",
	       rounds, (ld_now_ns() - t0) / 1e9, done, rounds * LOAD_XFERS);
	ld_free_buf(l.src, LOAD_BYTES);
	ld_free_buf(l.dst, LOAD_BYTES);
}

/* ---- collectives ------------------------------------------------------------ */

#define COLL_COUNT	(8 * 1024 * 1024)	/* i32 per rank: 32 MiB */

struct reset_thread {
	int fd;
	int ret;
	atomic_bool done;
};

static void *reset_thread_fn(void *arg)
{
	struct reset_thread *t = arg;

	t->ret = reset_ioctl(t->fd);
	atomic_store(&t->done, true);
	return NULL;
}

/*
 * An AllReduce over cards 0 and 1 is running when card 1 is reset: the
 * collective ends with -EIO, and the next one is right. Those queued
 * behind it, and those submitted while the reset runs, wait for it and
 * run on the retrained links.
 */
TEST_F(reset, during_collective)
{
	int peer[LD_MAX_CARDS][LD_MAX_PORTS];
	struct llmdev_hbm_alloc a[2];
	struct llmdev_coll_buf b[2];
	size_t bytes = COLL_COUNT * 4;
	int32_t fds[2], *in[2], *out;
	unsigned int r, p;
	uint64_t fence, queued[2], during[64];
	struct reset_thread rt = { 0 };
	unsigned int n = 0, nok = 0;
	bool resetting;
	uint32_t group;
	bool linked = false;
	int status, fd1, ret = 0;
	pthread_t th;
	size_t i;

	SETUP_OR_SKIP();
	if (ld_num_cards() < 2)
		SKIP(return, "needs 2 cards");
	ASSERT_EQ(0, ld_topology(ld_num_cards(), peer));
	for (p = 0; p < LD_MAX_PORTS; p++)
		linked |= peer[0][p] >= 0 && peer[0][p] / LD_MAX_PORTS == 1;
	if (!linked)
		SKIP(return, "cards 0 and 1 are not cabled");
	fd1 = ld_open(1);
	ASSERT_LE(0, fd1);
	fds[0] = self->fd;
	fds[1] = fd1;
	in[0] = ld_alloc_buf(bytes);
	in[1] = ld_alloc_buf(bytes);
	out = ld_alloc_buf(bytes);
	ASSERT_TRUE(in[0] && in[1] && out);
	for (r = 0; r < 2; r++) {
		for (i = 0; i < COLL_COUNT; i++)
			in[r][i] = (int32_t)(i * 3 + r * 1000003);
		ASSERT_EQ(0, ld_hbm_alloc(fds[r], 2 * bytes, 0, 0, NULL, &a[r]));
		ASSERT_EQ(0, ld_xfer(fds[r], a[r].handle, 0, in[r], bytes, true,
				     LLMDEV_RING_ANY));
		b[r] = (struct llmdev_coll_buf){
			.fd = fds[r], .src_handle = a[r].handle,
			.dst_handle = a[r].handle, .dst_offset = bytes,
		};
	}
	for (r = 0; r < 2; r++)
		for (p = 0; p < LD_MAX_PORTS; p++)
			if (peer[r][p] >= 0 && peer[r][p] / LD_MAX_PORTS == 1 - r)
				ASSERT_EQ(0, ld_link_wait(fds[r], p, LLMDEV_LINK_UP,
							  10000));
	ASSERT_EQ(0, ld_group_create(self->fd, fds, 2, &group));
	ASSERT_EQ(0, ld_coll_submit(self->fd, group, LLMDEV_COLL_ALLREDUCE,
				    LLMDEV_DTYPE_I32, LLMDEV_REDOP_SUM, 0,
				    COLL_COUNT, b, &fence));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, ld_coll_submit(self->fd, group,
					    LLMDEV_COLL_ALLREDUCE,
					    LLMDEV_DTYPE_I32, LLMDEV_REDOP_SUM,
					    0, COLL_COUNT, b, &queued[i]));
	ASSERT_EQ(0, reset_ioctl(fd1));
	ASSERT_EQ(0, ld_wait(self->fd, fence, LD_LONG_WAIT, &status));
	if (!status) {
		TH_LOG("the AllReduce finished before the reset; nothing to see");
	} else {
		EXPECT_EQ(-EIO, status);
	}
	/*
	 * Those queued behind it waited for the reset, then ran on the
	 * retrained links: not -ENOLINK. (Until one has caught the reset,
	 * the next may have been the one running when it came: -EIO.)
	 */
	for (i = 0; i < 2; i++) {
		int st;

		ASSERT_EQ(0, ld_wait(self->fd, queued[i], LD_LONG_WAIT, &st));
		if (status) {
			EXPECT_EQ(0, st) TH_LOG("queued AllReduce %zu", i);
		} else {
			EXPECT_TRUE(st == 0 || st == -EIO)
				TH_LOG("queued AllReduce %zu: status %d", i, st);
		}
		status = status ?: st;
	}

	/* the links retrain; the next AllReduce is right */
	for (r = 0; r < 2; r++)
		for (p = 0; p < LD_MAX_PORTS; p++)
			if (peer[r][p] >= 0 && peer[r][p] / LD_MAX_PORTS == 1 - r)
				ASSERT_EQ(0, ld_link_wait(fds[r], p, LLMDEV_LINK_UP,
							  10000));
	ASSERT_EQ(0, ld_coll_submit(self->fd, group, LLMDEV_COLL_ALLREDUCE,
				    LLMDEV_DTYPE_I32, LLMDEV_REDOP_SUM, 0,
				    COLL_COUNT, b, &fence));
	ASSERT_EQ(0, ld_wait(self->fd, fence, LD_LONG_WAIT, &status));
	EXPECT_EQ(0, status);

	/* submitted while card 1 is being reset: accepted, and they run */
	rt.fd = fd1;
	ASSERT_EQ(0, pthread_create(&th, NULL, reset_thread_fn, &rt));
	/* once card 1 says it is being reset (an FLR takes 100 ms or more) */
	for (i = 0; i < 2000 && !atomic_load(&rt.done); i++) {
		char state[32] = "";

		if (!card_state(1, state, sizeof(state)) &&
		    !strncmp(state, "resetting", 9))
			break;
		usleep(1000);
	}
	resetting = !atomic_load(&rt.done) && i < 2000;
	while (resetting && !atomic_load(&rt.done) && n < 64 && !ret) {
		ret = ld_coll_submit(self->fd, group, LLMDEV_COLL_ALLREDUCE,
				     LLMDEV_DTYPE_I32, LLMDEV_REDOP_SUM, 0,
				     COLL_COUNT, b, &during[n]);
		n += !ret;
	}
	pthread_join(th, NULL);
	EXPECT_TRUE(resetting) TH_LOG("card 1 was never seen being reset");
	EXPECT_EQ(0, rt.ret);
	EXPECT_EQ(0, ret) TH_LOG("submit %u during the reset: %s", n,
				 strerror(-ret));
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, ld_wait(self->fd, during[i], LD_LONG_WAIT, &status));
		EXPECT_TRUE(status == 0 || status == -EIO)
			TH_LOG("AllReduce %zu of %u: %d", i, n, status);
		nok += !status;
	}
	TH_LOG("%u AllReduces submitted during the reset, %u ran", n, nok);
	/* the last one was submitted after any that the reset caught */
	if (n) {
		EXPECT_EQ(0, status);
	}
	for (r = 0; r < 2; r++) {
		ASSERT_EQ(0, ld_xfer(fds[r], a[r].handle, bytes, out, bytes,
				     false, LLMDEV_RING_ANY));
		for (i = 0; i < COLL_COUNT; i++)
			if (out[i] != (int32_t)((uint32_t)in[0][i] + (uint32_t)in[1][i]))
				break;
		EXPECT_EQ(COLL_COUNT, i) TH_LOG("rank %u: element %zu wrong", r, i);
	}
	ld_group_destroy(self->fd, group);
	for (r = 0; r < 2; r++)
		ld_hbm_free(fds[r], a[r].handle);
	close(fd1);
	ld_free_buf(in[0], bytes);
	ld_free_buf(in[1], bytes);
	ld_free_buf(out, bytes);
}

/* ---- AER -------------------------------------------------------------------- */

#define SERIAL_BASE	0x4c4d000000000000ull	/* the model's: + creation order */

/* QEMU's id of card @card (the runner names them llmdev<creation order>) */
static int qemu_id(unsigned int card, char *id, size_t len)
{
	uint64_t serial;
	int ret = ld_sysfs_u64(card, "serial", &serial);

	if (ret)
		return ret;
	if (serial - SERIAL_BASE >= 64)
		return -ENOENT;
	snprintf(id, len, "llmdev%u", (unsigned int)(serial - SERIAL_BASE));
	return 0;
}

/*
 * An uncorrectable internal error, fatal, into QEMU's device @id: started
 * here, its outcome read by aer_inject_end() (the monitor's round trip is
 * slow: the work it should hit is submitted in between).
 */
static FILE *aer_inject_start(const char *id)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd),
		 "hostctl -t 30 hmp 'pcie_aer_inject_error %s INTN' 2>&1", id);
	return popen(cmd, "r");
}

static int aer_inject_end(FILE *f, char *out, size_t len)
{
	size_t n = fread(out, 1, len - 1, f);

	out[n] = 0;
	return pclose(f) ? -EIO : 0;
}

/* the reset count of @card past @count and the card live again */
static int wait_recovered(unsigned int card, uint64_t count, int ms)
{
	char state[32];

	for (; ms > 0; ms -= 20) {
		if (reset_count(card) > count && !card_state(card, state, sizeof(state)) &&
		    !strcmp(state, "live"))
			return 0;
		ld_msleep(20);
	}
	return -ETIMEDOUT;
}

/*
 * Rounds of a fatal AER error on card 0 while transfers run on all of its
 * rings and an AllReduce over cards 0 and 1 runs (when they are cabled):
 * each fence ends with 0 or -EIO, the data of what finished is right, the
 * card counts one reset per error and works after each, and nothing stays
 * allocated.
 */
TEST_F_TIMEOUT(reset, aer_fatal_soak, 900)
{
	const char *env = getenv("LLMDEV_AER_ROUNDS");
	unsigned int rounds = env ? (unsigned int)atoi(env) : 10, i, r, p;
	int peer[LD_MAX_CARDS][LD_MAX_PORTS];
	struct llmdev_hbm_alloc a[2];
	struct llmdev_coll_buf b[2];
	const size_t count = 8 * 1024 * 1024, bytes = count * 4;	/* 32 MiB */
	int32_t fds[2] = { -1, -1 }, *in = NULL;
	uint64_t count0, fence, width0 = 0, width = 0;
	struct load l = { 0 };
	char id[32], out[512], why[128] = "";
	unsigned int coll_ok = 0, coll_eio = 0;
	bool linked = false;
	uint32_t group = 0;
	int ok, status;
	long done = 0;

	SETUP_OR_SKIP();
	if (system("command -v hostctl >/dev/null 2>&1"))
		SKIP(return, "no hostctl on PATH: cannot reach QEMU's monitor");
	if (qemu_id(0, id, sizeof(id)))
		SKIP(return, "card 0's serial is not the model's default: its QEMU id is unknown");
	/* the AER service adds these to the root ports it serves */
	if (system("ls /sys/bus/pci/devices/*/aer_rootport_total_err_fatal >/dev/null 2>&1"))
		SKIP(return, "the kernel has no AER service on the root ports");
	l.src = ld_alloc_buf(LOAD_BYTES);
	l.dst = ld_alloc_buf(LOAD_BYTES);
	ASSERT_NE(NULL, l.src);
	ASSERT_NE(NULL, l.dst);

	/* an AllReduce over cards 0 and 1, if they are cabled */
	if (ld_num_cards() >= 2 && !ld_topology(ld_num_cards(), peer))
		for (p = 0; p < LD_MAX_PORTS; p++)
			linked |= peer[0][p] >= 0 && peer[0][p] / LD_MAX_PORTS == 1;
	if (linked) {
		fds[0] = self->fd;
		fds[1] = ld_open(1);
		ASSERT_LE(0, fds[1]);
		in = ld_alloc_buf(bytes);
		ASSERT_NE(NULL, in);
		for (r = 0; r < 2; r++) {
			for (i = 0; i < count; i++)
				in[i] = (int32_t)(i * 7 + r);
			ASSERT_EQ(0, ld_hbm_alloc(fds[r], 2 * bytes, 0, 0, NULL, &a[r]));
			ASSERT_EQ(0, ld_xfer(fds[r], a[r].handle, 0, in, bytes, true,
					     LLMDEV_RING_ANY));
			b[r] = (struct llmdev_coll_buf){
				.fd = fds[r], .src_handle = a[r].handle,
				.dst_handle = a[r].handle, .dst_offset = bytes,
			};
		}
		ASSERT_EQ(0, ld_group_create(self->fd, fds, 2, &group));
	}

	ASSERT_EQ(0, ld_sysfs_u64(0, "device/max_link_width", &width0));
	count0 = reset_count(0);
	for (i = 0; i < rounds; i++) {
		uint64_t before = reset_count(0);
		FILE *inj;

		if (linked)
			for (r = 0; r < 2; r++)
				for (p = 0; p < LD_MAX_PORTS; p++)
					if (peer[r][p] >= 0 && peer[r][p] / LD_MAX_PORTS == 1 - r)
						ASSERT_EQ(0, ld_link_wait(fds[r], p, LLMDEV_LINK_UP,
									  10000));
		ASSERT_TRUE(load_prepare(&l, self->fd, 100 + i));
		inj = aer_inject_start(id);
		ASSERT_NE(NULL, inj);
		if (linked)
			ASSERT_EQ(0, ld_coll_submit(self->fd, group, LLMDEV_COLL_ALLREDUCE,
						    LLMDEV_DTYPE_I32, LLMDEV_REDOP_SUM, 0,
						    count, b, &fence));
		ASSERT_TRUE(load_submit(&l));
		ASSERT_EQ(0, aer_inject_end(inj, out, sizeof(out))) TH_LOG("%s", out);
		ASSERT_EQ(0, wait_recovered(0, before, 30000))
			TH_LOG("round %u: no recovery in 30 s after a fatal error", i);
		ok = load_finish(&l, why, sizeof(why));
		ASSERT_LE(0, ok) TH_LOG("round %u: %s", i, why);
		done += ok;
		if (linked) {
			ASSERT_EQ(0, ld_wait(self->fd, fence, LD_LONG_WAIT, &status));
			ASSERT_TRUE(status == 0 || status == -EIO)
				TH_LOG("round %u: AllReduce status %d", i, status);
			if (status)
				coll_eio++;
			else
				coll_ok++;
		}
		ASSERT_EQ(0, card_works(self->fd, self->src, self->dst, 64 * LD_KIB, i))
			TH_LOG("round %u: the card does not work", i);
	}
	EXPECT_EQ(count0 + rounds, reset_count(0));
	/* the PCIe link the card reports is the one it had ('llmctl doctor') */
	EXPECT_EQ(0, ld_sysfs_u64(0, "device/max_link_width", &width));
	EXPECT_EQ(width0, width);
	TH_LOG("%u fatal AER errors recovered; %ld of %u transfers finished; AllReduce: %u finished, %u ended with -EIO",
	       rounds, done, rounds * LOAD_XFERS, coll_ok, coll_eio);
	if (linked) {
		int32_t *res = ld_alloc_buf(bytes);

		/* the next AllReduce is right */
		ASSERT_NE(NULL, res);
		for (r = 0; r < 2; r++)
			for (p = 0; p < LD_MAX_PORTS; p++)
				if (peer[r][p] >= 0 && peer[r][p] / LD_MAX_PORTS == 1 - r)
					ASSERT_EQ(0, ld_link_wait(fds[r], p, LLMDEV_LINK_UP, 10000));
		ASSERT_EQ(0, ld_coll_submit(self->fd, group, LLMDEV_COLL_ALLREDUCE,
					    LLMDEV_DTYPE_I32, LLMDEV_REDOP_SUM, 0,
					    count, b, &fence));
		ASSERT_EQ(0, ld_wait(self->fd, fence, LD_LONG_WAIT, &status));
		EXPECT_EQ(0, status);
		ASSERT_EQ(0, ld_xfer(fds[1], a[1].handle, bytes, res, bytes, false,
				     LLMDEV_RING_ANY));
		for (i = 0; i < count; i++)
			if (res[i] != (int32_t)(i * 7 * 2 + 1))
				break;
		EXPECT_EQ(count, i) TH_LOG("element %u wrong", i);
		ld_free_buf(res, bytes);
		ld_group_destroy(self->fd, group);
		for (r = 0; r < 2; r++)
			ld_hbm_free(fds[r], a[r].handle);
		close(fds[1]);
		ld_free_buf(in, bytes);
	}
	EXPECT_EQ(0, ld_hbm_used_settle(0, 0));
	if (linked)
		EXPECT_EQ(0, ld_hbm_used_settle(1, 0));
	ld_free_buf(l.src, LOAD_BYTES);
	ld_free_buf(l.dst, LOAD_BYTES);
}

/* "qom-set" of the model's x-fail-reset on QEMU's card @id */
static int set_fail_reset(const char *id, bool on)
{
	char cmd[192];

	snprintf(cmd, sizeof(cmd),
		 "hostctl -t 30 hmp 'qom-set /machine/peripheral/%s x-fail-reset %s' 2>&1 | "
		 "grep -q . && exit 1 || exit 0", id, on ? "on" : "off");
	return system(cmd) ? -EIO : 0;
}

/* whether the kernel log has said @what since this opened it */
static bool kmsg_says(int fd, const char *what)
{
	char line[1024];
	ssize_t n;

	while ((n = read(fd, line, sizeof(line) - 1)) > 0) {
		line[n] = 0;
		if (strstr(line, what))
			return true;
	}
	return false;
}

/*
 * A card that does not come back from a reset (the model's x-fail-reset,
 * docs/hardware.md 10.5) is marked dead, never half-alive: the reset
 * fails, sysfs says dead and counts the failure, the log says so, every
 * call fails with -EIO; a reset that works brings it back, regions kept.
 */
TEST_F_TIMEOUT(reset, dead_card_comes_back, 300)
{
	struct llmdev_hbm_alloc a, b, c;
	uint64_t fails0 = ~0ULL, fails1 = ~0ULL, fence;
	char id[32], state[32] = "";
	int ret, kmsg;

	SETUP_OR_SKIP();
	if (system("command -v hostctl >/dev/null 2>&1"))
		SKIP(return, "no hostctl on PATH: cannot reach QEMU's monitor");
	if (qemu_id(0, id, sizeof(id)))
		SKIP(return, "card 0's serial is not the model's default: its QEMU id is unknown");
	kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	ASSERT_LE(0, kmsg);
	lseek(kmsg, 0, SEEK_END);
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 64 * LD_KIB, 0, 0, NULL, &a));
	ld_fill(self->src, 64 * LD_KIB, 77);
	ASSERT_EQ(0, ld_xfer(self->fd, a.handle, 0, self->src, 64 * LD_KIB, true,
			     LLMDEV_RING_ANY));
	ASSERT_EQ(0, ld_sysfs_u64(0, "reset_failures", &fails0));
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 64 * LD_KIB, 0, 0, NULL, &c));

	ASSERT_EQ(0, set_fail_reset(id, true));
	ret = reset_ioctl(self->fd);
	/* whatever happens next, the card must not stay dead for the rest */
	EXPECT_EQ(0, set_fail_reset(id, false));
	EXPECT_EQ(-EIO, ret);
	EXPECT_EQ(0, card_state(0, state, sizeof(state)));
	EXPECT_STREQ("dead", state);
	EXPECT_EQ(0, ld_sysfs_u64(0, "reset_failures", &fails1));
	EXPECT_EQ(fails0 + 1, fails1);
	EXPECT_TRUE(kmsg_says(kmsg, "card is dead"));
	close(kmsg);
	EXPECT_EQ(-EIO, ld_hbm_alloc(self->fd, 64 * LD_KIB, 0, 0, NULL, &b));
	EXPECT_EQ(-EIO, ld_submit(self->fd, a.handle, 0, self->dst, 4096, false, 0,
				  &fence));
	/* freeing works on a dead card: the HBM waits for a scrub (below) */
	EXPECT_EQ(0, ld_hbm_free(self->fd, c.handle));

	/* a reset that works: live again, the region and its data kept */
	ASSERT_EQ(0, reset_ioctl(self->fd));
	EXPECT_EQ(0, card_state(0, state, sizeof(state)));
	EXPECT_STREQ("live", state);
	memset(self->dst, 0, 64 * LD_KIB);
	EXPECT_EQ(0, ld_xfer(self->fd, a.handle, 0, self->dst, 64 * LD_KIB, false,
			     LLMDEV_RING_ANY));
	EXPECT_GT(0, ld_cmp(self->src, self->dst, 64 * LD_KIB));
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
	EXPECT_EQ(0, card_works(self->fd, self->src, self->dst, BUF_SIZE, 78));
	EXPECT_EQ(0, ld_hbm_used_settle(0, 0));
}

TEST_HARNESS_MAIN
