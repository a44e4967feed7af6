// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev driver: the shard routing table (LLMDEV_ROUTE_SET / _GET).
 *
 *  - valid tables round-trip: GET returns what SET set, with hbm_offset
 *    and length filled in from the regions, and generation counts every
 *    table applied; GET with less room, larger entries, no room; count 0
 *    clears; the tables of two cards are independent;
 *  - every invalid table fails with the errno uapi/llmdev.h gives, the
 *    error_index of the first bad entry, and leaves the previous table in
 *    place (GET after each);
 *  - SET needs CAP_SYS_ADMIN (GET does not);
 *  - a routed region cannot be freed (EBUSY) until a table without it is
 *    set.
 */
#include "driver_util.h"
#include "kselftest_harness.h"

#define NREG		4
#define NO_INDEX	0xffffffffu

FIXTURE(route) {
	int kmsg;
	int fd;			/* card 0 */
	unsigned int ncards;
	struct llmdev_info info;
	uint32_t h[NREG];	/* persistent regions of card 0 */
	uint64_t off[NREG], len[NREG];
	uint32_t temp;		/* a region that is not persistent */
	int up_port;		/* a port of card 0 whose link is up, or -1 */
	int fd1;		/* card 1, or -1 */
};

FIXTURE_SETUP(route)
{
	struct llmdev_link_info l;
	struct llmdev_hbm_alloc a;
	char name[LLMDEV_NAME_LEN];
	unsigned int i, p;
	int ret;

	self->fd1 = -1;
	LD_FIXTURE_START();
	LD_FIXTURE_OPEN_CARD0();
	self->ncards = ld_num_cards();
	if (geteuid() != 0)
		SKIP(return, "needs root (CAP_SYS_ADMIN) to set routing tables");
	/* start from an empty table */
	ret = ld_route_set(self->fd, NULL, 0, NULL);
	ASSERT_EQ(0, ret) TH_LOG("clearing the routing table: %s", strerror(-ret));
	for (i = 0; i < NREG; i++) {
		snprintf(name, sizeof(name), "route-%d-%u", getpid(), i);
		ASSERT_EQ(0, ld_hbm_alloc(self->fd, (i + 1) * 64 * LD_KIB, 0,
					  LLMDEV_HBM_PERSISTENT, name, &a));
		self->h[i] = a.handle;
		self->off[i] = a.hbm_offset;
		self->len[i] = (i + 1) * 64 * LD_KIB;
	}
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 4096, 0, 0, NULL, &a));
	self->temp = a.handle;
	self->up_port = -1;
	for (p = 0; p < self->info.num_link_ports; p++) {
		if (!ld_link_wait(self->fd, p, LLMDEV_LINK_UP, 0)) {
			self->up_port = p;
			break;
		}
	}
	if (self->up_port < 0 && self->ncards > 1) {
		/* links may still be training after another test */
		for (p = 0; p < self->info.num_link_ports; p++) {
			ASSERT_EQ(0, ld_link_info(self->fd, p, &l));
			if (l.link_flags & LLMDEV_LINK_CABLED &&
			    !ld_link_wait(self->fd, p, LLMDEV_LINK_UP, 2000)) {
				self->up_port = p;
				break;
			}
		}
	}
	if (self->ncards > 1) {
		self->fd1 = ld_open(1);
		ASSERT_LE(0, self->fd1);
	}
}

FIXTURE_TEARDOWN(route)
{
	unsigned int i, p;

	LD_EXPECT_NO_KERNEL_REPORTS(self->kmsg);
	if (self->fd >= 0) {
		ld_route_set(self->fd, NULL, 0, NULL);
		for (i = 0; i < NREG; i++)
			if (self->h[i])
				ld_hbm_free(self->fd, self->h[i]);
		for (p = 0; p < self->info.num_link_ports; p++)
			ld_link_set(self->fd, p, 1);
		close(self->fd);
	}
	if (self->fd1 >= 0) {
		ld_route_set(self->fd1, NULL, 0, NULL);
		close(self->fd1);
	}
}

static struct llmdev_route_entry entry(uint32_t first, uint32_t last,
				       uint32_t rank, uint32_t size,
				       uint32_t handle, uint32_t hop)
{
	struct llmdev_route_entry e = {
		.layer_first = first,
		.layer_last = last,
		.tp_rank = rank,
		.tp_size = size,
		.handle = handle,
		.next_hop = hop,
	};

	return e;
}

/* GET must return @e[0 .. n-1] with the regions' offsets and lengths. */
static void expect_table(struct __test_metadata *_metadata,
			 FIXTURE_DATA(route) *self, int fd,
			 const struct llmdev_route_entry *e, uint32_t n,
			 uint32_t gen, const char *what)
{
	struct llmdev_route_entry got[LLMDEV_ROUTE_MAX + 1];
	uint32_t count = ~0u, g = ~0u, i, j;

	memset(got, 0xa5, sizeof(got));
	ASSERT_EQ(0, ld_route_get(fd, got, LLMDEV_ROUTE_MAX + 1, &count, &g));
	EXPECT_EQ(n, count) TH_LOG("%s: entries", what);
	EXPECT_EQ(gen, g) TH_LOG("%s: generation", what);
	for (i = 0; i < n && i < count; i++) {
		EXPECT_EQ(e[i].layer_first, got[i].layer_first) TH_LOG("%s: [%u]", what, i);
		EXPECT_EQ(e[i].layer_last, got[i].layer_last) TH_LOG("%s: [%u]", what, i);
		EXPECT_EQ(e[i].tp_rank, got[i].tp_rank) TH_LOG("%s: [%u]", what, i);
		EXPECT_EQ(e[i].tp_size, got[i].tp_size) TH_LOG("%s: [%u]", what, i);
		EXPECT_EQ(e[i].handle, got[i].handle) TH_LOG("%s: [%u]", what, i);
		EXPECT_EQ(e[i].next_hop, got[i].next_hop) TH_LOG("%s: [%u]", what, i);
		for (j = 0; j < NREG && fd == self->fd; j++) {
			if (self->h[j] != e[i].handle)
				continue;
			EXPECT_EQ(self->off[j], got[i].hbm_offset) TH_LOG("%s: [%u]", what, i);
			EXPECT_EQ(self->len[j], got[i].length) TH_LOG("%s: [%u]", what, i);
		}
	}
	/* nothing written beyond the table */
	EXPECT_EQ(-1, ld_memchk(&got[count <= LLMDEV_ROUTE_MAX ? count : 0], 0xa5,
				sizeof(got[0])));
}

static uint32_t generation(struct __test_metadata *_metadata, int fd)
{
	uint32_t count, gen = ~0u;

	ASSERT_EQ(0, ld_route_get(fd, NULL, 0, &count, &gen));
	return gen;
}

TEST_F(route, round_trip)
{
	struct llmdev_route_entry e[LLMDEV_ROUTE_MAX];
	struct llmdev_route rt;
	uint32_t gen, hop, i;

	SETUP_OR_SKIP();
	gen = generation(_metadata, self->fd);
	hop = self->up_port >= 0 ? (uint32_t)self->up_port : LLMDEV_HOP_HOST;
	/* two ranks of one stage, the next stage, a stage back to the host */
	e[0] = entry(0, 9, 0, 2, self->h[0], hop);
	e[1] = entry(0, 9, 1, 2, self->h[1], hop);
	e[2] = entry(10, 19, 0, 1, self->h[2], LLMDEV_HOP_HOST);
	e[3] = entry(20, LLMDEV_ROUTE_MAX_LAYER, 0, 255, self->h[3], LLMDEV_HOP_HOST);
	e[3].tp_rank = 254;
	/* SET ignores hbm_offset and length */
	e[0].hbm_offset = 0x123456789ULL;
	e[0].length = 1;
	memset(&rt, 0xa5, sizeof(rt));
	ASSERT_EQ(0, ld_route_set(self->fd, e, 4, &rt));
	EXPECT_EQ(gen + 1, rt.generation);
	EXPECT_EQ(NO_INDEX, rt.error_index);
	expect_table(_metadata, self, self->fd, e, 4, gen + 1, "first table");

	/* adjacent layers of one rank, one region twice, a single layer */
	e[0] = entry(0, 0, 0, 1, self->h[0], LLMDEV_HOP_HOST);
	e[1] = entry(1, 1, 0, 1, self->h[0], LLMDEV_HOP_HOST);
	ASSERT_EQ(0, ld_route_set(self->fd, e, 2, &rt));
	EXPECT_EQ(gen + 2, rt.generation);
	expect_table(_metadata, self, self->fd, e, 2, gen + 2, "second table");
	/* the same table again is another table applied */
	ASSERT_EQ(0, ld_route_set(self->fd, e, 2, &rt));
	EXPECT_EQ(gen + 3, rt.generation);

	/* the largest table */
	for (i = 0; i < LLMDEV_ROUTE_MAX; i++)
		e[i] = entry(i * 10, i * 10 + 9, i % 4, 4, self->h[i % NREG],
			     i % 2 ? hop : LLMDEV_HOP_HOST);
	ASSERT_EQ(0, ld_route_set(self->fd, e, LLMDEV_ROUTE_MAX, &rt));
	expect_table(_metadata, self, self->fd, e, LLMDEV_ROUTE_MAX, gen + 4, "32 entries");

	/* count 0 clears */
	ASSERT_EQ(0, ld_route_set(self->fd, NULL, 0, &rt));
	EXPECT_EQ(gen + 5, rt.generation);
	expect_table(_metadata, self, self->fd, e, 0, gen + 5, "cleared");
}

TEST_F(route, get_sizes)
{
	struct llmdev_route_entry e[3], got[4], rev[3];
	uint8_t big[3 * (sizeof(e[0]) + 16)];
	struct llmdev_route rt;
	uint32_t count, gen, i;

	SETUP_OR_SKIP();
	e[0] = entry(0, 9, 0, 1, self->h[0], LLMDEV_HOP_HOST);
	e[1] = entry(10, 19, 0, 1, self->h[1], LLMDEV_HOP_HOST);
	e[2] = entry(20, 29, 0, 1, self->h[2], LLMDEV_HOP_HOST);
	ASSERT_EQ(0, ld_route_set(self->fd, e, 3, &rt));
	gen = rt.generation;

	/* room for one: one written, count says 3 */
	memset(got, 0xa5, sizeof(got));
	ASSERT_EQ(0, ld_route_get(self->fd, got, 1, &count, NULL));
	EXPECT_EQ(3, count);
	EXPECT_EQ(self->h[0], got[0].handle);
	EXPECT_EQ(-1, ld_memchk(&got[1], 0xa5, sizeof(got[1])));
	/* no room: only the count */
	ASSERT_EQ(0, ld_route_get(self->fd, NULL, 0, &count, NULL));
	EXPECT_EQ(3, count);

	/* larger entries: each entry's tail is zeroed */
	memset(&rt, 0, sizeof(rt));
	rt.size = sizeof(rt);
	rt.count = 3;
	rt.entry_size = sizeof(e[0]) + 16;
	rt.entries = (uintptr_t)big;
	memset(big, 0xa5, sizeof(big));
	ASSERT_EQ(0, ld_ioctl(self->fd, LLMDEV_ROUTE_GET, &rt));
	EXPECT_EQ(3, rt.count);
	EXPECT_EQ(gen, rt.generation);
	for (i = 0; i < 3; i++) {
		struct llmdev_route_entry *g = (void *)(big + i * (sizeof(e[0]) + 16));

		EXPECT_EQ(self->h[i], g->handle);
		EXPECT_EQ(self->off[i], g->hbm_offset);
		EXPECT_EQ(-1, ld_nonzero(big + i * (sizeof(e[0]) + 16) + sizeof(e[0]), 16))
			TH_LOG("tail of entry %u not zeroed", i);
	}
	/* ... and SET accepts them with zero tails, E2BIG with a non-zero one */
	memset(big, 0, sizeof(big));
	for (i = 0; i < 3; i++)
		memcpy(big + i * (sizeof(e[0]) + 16), &e[2 - i], sizeof(e[0]));
	rt.count = 3;
	rt.generation = 0;
	rt.error_index = 0;
	ASSERT_EQ(0, ld_ioctl(self->fd, LLMDEV_ROUTE_SET, &rt));
	EXPECT_EQ(gen + 1, rt.generation);
	big[2 * (sizeof(e[0]) + 16) + sizeof(e[0]) + 15] = 1;
	EXPECT_EQ(-E2BIG, ld_ioctl(self->fd, LLMDEV_ROUTE_SET, &rt));
	EXPECT_EQ(2, rt.error_index);
	EXPECT_EQ(gen + 1, rt.generation);
	rev[0] = e[2];
	rev[1] = e[1];
	rev[2] = e[0];
	expect_table(_metadata, self, self->fd, rev, 3, gen + 1, "after E2BIG");

	/* entry_size too small */
	rt.entry_size = sizeof(e[0]) - 1;
	EXPECT_EQ(-EINVAL, ld_ioctl(self->fd, LLMDEV_ROUTE_GET, &rt));
	rt.entry_size = 0;
	EXPECT_EQ(-EINVAL, ld_ioctl(self->fd, LLMDEV_ROUTE_GET, &rt));
}

/* One invalid table: its errno and error_index, and the old table stays. */
struct bad_table {
	const char *what;
	int err;
	uint32_t index;			/* expected error_index */
	uint32_t count;
	struct llmdev_route_entry e[4];
};

TEST_F(route, invalid_keeps_table)
{
	struct llmdev_route_entry good[2], e[LLMDEV_ROUTE_MAX + 1];
	struct llmdev_route rt;
	uint32_t gen, i, h0, h1;
	struct bad_table t[16];
	unsigned int nt = 0;
	int ret;

	SETUP_OR_SKIP();
	h0 = self->h[0];
	h1 = self->h[1];
	good[0] = entry(0, 9, 0, 1, h0, LLMDEV_HOP_HOST);
	good[1] = entry(10, 19, 0, 1, h1, LLMDEV_HOP_HOST);
	ASSERT_EQ(0, ld_route_set(self->fd, good, 2, &rt));
	gen = rt.generation;

#define BAD(w, er, idx, n, ...) do {					\
		struct llmdev_route_entry _e[] = { __VA_ARGS__ };	\
		t[nt].what = w;						\
		t[nt].err = er;						\
		t[nt].index = idx;					\
		t[nt].count = n;					\
		memset(t[nt].e, 0, sizeof(t[nt].e));			\
		memcpy(t[nt].e, _e, sizeof(_e));			\
		nt++;							\
	} while (0)
	/* entry 0 is valid in each; entry 1 is the bad one unless said */
	BAD("layer_first > layer_last", EINVAL, 1, 2,
	    entry(0, 9, 0, 1, h0, LLMDEV_HOP_HOST), entry(20, 19, 0, 1, h1, LLMDEV_HOP_HOST));
	BAD("layer beyond LLMDEV_ROUTE_MAX_LAYER", EINVAL, 1, 2,
	    entry(0, 9, 0, 1, h0, LLMDEV_HOP_HOST),
	    entry(20, LLMDEV_ROUTE_MAX_LAYER + 1, 0, 1, h1, LLMDEV_HOP_HOST));
	BAD("tp_size 0", EINVAL, 1, 2,
	    entry(0, 9, 0, 1, h0, LLMDEV_HOP_HOST), entry(20, 29, 0, 0, h1, LLMDEV_HOP_HOST));
	BAD("tp_size 256", EINVAL, 1, 2,
	    entry(0, 9, 0, 1, h0, LLMDEV_HOP_HOST), entry(20, 29, 0, 256, h1, LLMDEV_HOP_HOST));
	BAD("tp_rank == tp_size", EINVAL, 1, 2,
	    entry(0, 9, 0, 1, h0, LLMDEV_HOP_HOST), entry(20, 29, 2, 2, h1, LLMDEV_HOP_HOST));
	BAD("next_hop = num_link_ports", EINVAL, 1, 2,
	    entry(0, 9, 0, 1, h0, LLMDEV_HOP_HOST),
	    entry(20, 29, 0, 1, h1, LLMDEV_NUM_LINK_PORTS));
	BAD("next_hop 0xfe", EINVAL, 1, 2,
	    entry(0, 9, 0, 1, h0, LLMDEV_HOP_HOST), entry(20, 29, 0, 1, h1, 0xfe));
	BAD("two bad entries: the first is reported", EINVAL, 1, 4,
	    entry(0, 9, 0, 1, h0, LLMDEV_HOP_HOST), entry(20, 19, 0, 1, h1, LLMDEV_HOP_HOST),
	    entry(30, 39, 0, 1, h1, LLMDEV_HOP_HOST), entry(50, 49, 0, 1, h1, LLMDEV_HOP_HOST));
	BAD("overlapping layers of one tp_rank", EEXIST, 2, 3,
	    entry(0, 9, 0, 2, h0, LLMDEV_HOP_HOST), entry(0, 9, 1, 2, h1, LLMDEV_HOP_HOST),
	    entry(9, 12, 0, 2, h1, LLMDEV_HOP_HOST));
	BAD("the same layers twice", EEXIST, 1, 2,
	    entry(5, 5, 0, 1, h0, LLMDEV_HOP_HOST), entry(5, 5, 0, 1, h0, LLMDEV_HOP_HOST));
	BAD("unknown handle", ENOENT, 1, 2,
	    entry(0, 9, 0, 1, h0, LLMDEV_HOP_HOST),
	    entry(20, 29, 0, 1, 0x7ffffff0, LLMDEV_HOP_HOST));
	BAD("region not persistent", EACCES, 1, 2,
	    entry(0, 9, 0, 1, h0, LLMDEV_HOP_HOST),
	    entry(20, 29, 0, 1, self->temp, LLMDEV_HOP_HOST));

	for (i = 0; i < nt; i++) {
		memset(&rt, 0xa5, sizeof(rt));
		ret = ld_route_set(self->fd, t[i].e, t[i].count, &rt);
		EXPECT_EQ(-t[i].err, ret) TH_LOG("%s: %s", t[i].what, strerror(-ret));
		EXPECT_EQ(t[i].index, rt.error_index) TH_LOG("%s: error_index", t[i].what);
		EXPECT_EQ(gen, rt.generation) TH_LOG("%s: generation", t[i].what);
		expect_table(_metadata, self, self->fd, good, 2, gen, t[i].what);
	}

	/* more than LLMDEV_ROUTE_MAX: ENOSPC, no entry to blame */
	for (i = 0; i <= LLMDEV_ROUTE_MAX; i++)
		e[i] = entry(i, i, 0, 1, h0, LLMDEV_HOP_HOST);
	ret = ld_route_set(self->fd, e, LLMDEV_ROUTE_MAX + 1, &rt);
	EXPECT_EQ(-ENOSPC, ret);
	EXPECT_EQ(NO_INDEX, rt.error_index);
	ret = ld_route_set(self->fd, e, 0xffffffffu, &rt);
	EXPECT_EQ(-ENOSPC, ret);
	expect_table(_metadata, self, self->fd, good, 2, gen, "count > 32");

	/* the struct itself */
	memset(&rt, 0, sizeof(rt));
	rt.size = sizeof(rt);
	rt.count = 1;
	rt.entry_size = sizeof(e[0]) - 4;
	rt.entries = (uintptr_t)e;
	EXPECT_EQ(-EINVAL, ld_ioctl(self->fd, LLMDEV_ROUTE_SET, &rt));
	rt.entry_size = sizeof(e[0]);
	rt.flags = 1;
	EXPECT_EQ(-EINVAL, ld_ioctl(self->fd, LLMDEV_ROUTE_SET, &rt));
	rt.flags = 0;
	rt.entries = 8;
	EXPECT_EQ(-EFAULT, ld_ioctl(self->fd, LLMDEV_ROUTE_SET, &rt));
	expect_table(_metadata, self, self->fd, good, 2, gen, "bad struct");
}

/* next_hop must be a port whose link is up */
TEST_F(route, next_hop_link_down)
{
	struct llmdev_route_entry good[1], e[2];
	struct llmdev_link_info l;
	struct llmdev_route rt;
	unsigned int p, tested = 0;
	uint32_t gen;
	int ret;

	SETUP_OR_SKIP();
	good[0] = entry(0, 9, 0, 1, self->h[0], LLMDEV_HOP_HOST);
	ASSERT_EQ(0, ld_route_set(self->fd, good, 1, &rt));
	gen = rt.generation;
	e[0] = good[0];
	for (p = 0; p < self->info.num_link_ports; p++) {
		ASSERT_EQ(0, ld_link_info(self->fd, p, &l));
		if (l.state == LLMDEV_LINK_UP)
			continue;
		/* not up (uncabled): ENOLINK */
		e[1] = entry(10, 19, 0, 1, self->h[1], p);
		ret = ld_route_set(self->fd, e, 2, &rt);
		EXPECT_EQ(-ENOLINK, ret) TH_LOG("next_hop %u, link %s", p,
						l.link_flags & LLMDEV_LINK_CABLED ?
						"cabled, not up" : "not cabled");
		EXPECT_EQ(1, rt.error_index);
		tested++;
	}
	if (self->up_port >= 0) {
		p = self->up_port;
		e[1] = entry(10, 19, 0, 1, self->h[1], p);
		ASSERT_EQ(0, ld_link_set(self->fd, p, 0));
		ASSERT_EQ(0, ld_link_wait(self->fd, p, LLMDEV_LINK_DOWN, 2000));
		ret = ld_route_set(self->fd, e, 2, &rt);
		EXPECT_EQ(-ENOLINK, ret) TH_LOG("next_hop %u, disabled", p);
		EXPECT_EQ(1, rt.error_index);
		expect_table(_metadata, self, self->fd, good, 1, gen, "link down");
		ASSERT_EQ(0, ld_link_set(self->fd, p, 1));
		ASSERT_EQ(0, ld_link_wait(self->fd, p, LLMDEV_LINK_UP, 2000));
		ASSERT_EQ(0, ld_route_set(self->fd, e, 2, &rt));
		expect_table(_metadata, self, self->fd, e, 2, gen + 1, "link up again");
		tested++;
	}
	if (!tested)
		SKIP(return, "every port of llmdev0 is up and none can be taken down");
}

/*
 * In a child without CAP_SYS_ADMIN (@nobody: as uid 65534; else root
 * without that one capability): SET is EPERM, GET works. Exit: 0, or
 * 10 + the step that failed.
 */
static int unprivileged(uint32_t handle, bool nobody)
{
	struct llmdev_route_entry e = entry(0, 1, 0, 1, handle, LLMDEV_HOP_HOST);
	uint32_t count;
	int fd;

	fd = ld_open(0);
	if (fd < 0)
		return 10;
	if (nobody ? ld_drop_privs() : ld_drop_cap(CAP_SYS_ADMIN))
		return 11;
	if (ld_route_set(fd, &e, 1, NULL) != -EPERM)
		return 12;
	if (ld_route_set(fd, NULL, 0, NULL) != -EPERM)
		return 13;
	if (ld_route_get(fd, &e, 1, &count, NULL) || count != 1 || e.layer_last != 9)
		return 14;
	close(fd);
	return 0;
}

TEST_F(route, needs_cap_sys_admin)
{
	static const char *const what[] = {
		"open", "dropping privileges", "SET not EPERM", "clearing not EPERM",
		"GET",
	};
	struct llmdev_route_entry good[1];
	struct llmdev_route rt;
	unsigned int i;

	SETUP_OR_SKIP();
	good[0] = entry(0, 9, 0, 1, self->h[0], LLMDEV_HOP_HOST);
	ASSERT_EQ(0, ld_route_set(self->fd, good, 1, &rt));
	for (i = 0; i < 2; i++) {
		pid_t pid = fork();
		int st;

		ASSERT_LE(0, pid);
		if (!pid)
			_exit(unprivileged(self->h[1], i));
		st = ld_wait_child(pid);
		EXPECT_EQ(0, st) TH_LOG("%s: %s", i ? "as nobody" : "root without CAP_SYS_ADMIN",
					st >= 10 && st < 15 ? what[st - 10] : "crashed");
	}
	expect_table(_metadata, self, self->fd, good, 1, rt.generation, "after the children");
}

TEST_F(route, routed_region_busy)
{
	struct llmdev_route_entry e[2];
	struct llmdev_hbm_region *r;
	struct llmdev_route rt;
	unsigned int n;
	int other;

	SETUP_OR_SKIP();
	e[0] = entry(0, 9, 0, 1, self->h[0], LLMDEV_HOP_HOST);
	e[1] = entry(10, 19, 0, 1, self->h[1], LLMDEV_HOP_HOST);
	ASSERT_EQ(0, ld_route_set(self->fd, e, 2, &rt));
	EXPECT_EQ(-EBUSY, ld_hbm_free(self->fd, self->h[0]));
	EXPECT_EQ(-EBUSY, ld_hbm_free(self->fd, self->h[1]));
	/* also from another file of the owner */
	other = ld_open(0);
	ASSERT_LE(0, other);
	EXPECT_EQ(-EBUSY, ld_hbm_free(other, self->h[1]));
	close(other);
	/* still there */
	ASSERT_EQ(0, ld_hbm_list(self->fd, &r, &n));
	EXPECT_NE(NULL, ld_find_region(r, n, self->h[0]));
	EXPECT_NE(NULL, ld_find_region(r, n, self->h[1]));
	free(r);
	/* an unrouted one frees */
	EXPECT_EQ(0, ld_hbm_free(self->fd, self->h[2]));
	self->h[2] = 0;
	/* a table without h[0]: h[0] frees, h[1] not */
	e[0] = e[1];
	ASSERT_EQ(0, ld_route_set(self->fd, e, 1, &rt));
	EXPECT_EQ(0, ld_hbm_free(self->fd, self->h[0]));
	self->h[0] = 0;
	EXPECT_EQ(-EBUSY, ld_hbm_free(self->fd, self->h[1]));
	/* a rejected table does not release it either */
	e[1] = entry(0, 0, 0, 0, self->h[3], LLMDEV_HOP_HOST);
	EXPECT_EQ(-EINVAL, ld_route_set(self->fd, e, 2, &rt));
	EXPECT_EQ(-EBUSY, ld_hbm_free(self->fd, self->h[1]));
	/* cleared: everything frees */
	ASSERT_EQ(0, ld_route_set(self->fd, NULL, 0, &rt));
	EXPECT_EQ(0, ld_hbm_free(self->fd, self->h[1]));
	self->h[1] = 0;
}

/* Each card has its own table and generation. */
TEST_F(route, per_card)
{
	struct llmdev_route_entry e[1], e1[1];
	struct llmdev_hbm_alloc a;
	struct llmdev_route rt;
	char name[LLMDEV_NAME_LEN];
	uint32_t gen0, gen1;

	SETUP_OR_SKIP();
	if (self->fd1 < 0)
		SKIP(return, "needs 2 cards, the VM has %u", self->ncards);
	snprintf(name, sizeof(name), "route1-%d", getpid());
	ASSERT_EQ(0, ld_hbm_alloc(self->fd1, 4096, 0, LLMDEV_HBM_PERSISTENT, name, &a));
	ASSERT_EQ(0, ld_route_set(self->fd1, NULL, 0, NULL));
	gen1 = generation(_metadata, self->fd1);
	e[0] = entry(0, 9, 0, 1, self->h[0], LLMDEV_HOP_HOST);
	ASSERT_EQ(0, ld_route_set(self->fd, e, 1, &rt));
	gen0 = rt.generation;
	expect_table(_metadata, self, self->fd1, e, 0, gen1, "card 1 after a SET on card 0");
	e1[0] = entry(5, 6, 0, 1, a.handle, LLMDEV_HOP_HOST);
	ASSERT_EQ(0, ld_route_set(self->fd1, e1, 1, &rt));
	EXPECT_EQ(gen1 + 1, rt.generation);
	expect_table(_metadata, self, self->fd, e, 1, gen0, "card 0 after a SET on card 1");
	expect_table(_metadata, self, self->fd1, e1, 1, gen1 + 1, "card 1");
	ASSERT_EQ(0, ld_route_set(self->fd1, NULL, 0, NULL));
	EXPECT_EQ(0, ld_hbm_free(self->fd1, a.handle));
}

TEST_HARNESS_MAIN
