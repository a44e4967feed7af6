// SPDX-License-Identifier: GPL-2.0
/*
 * libllmdev against the real driver: every call of the library, on every
 * card, with data compared byte for byte. (The library's host tests check
 * its logic against a mock; this checks it agrees with the kernel.) The
 * LLMDEV_1.1 calls: links, a group of cards 0 and 1 with an AllReduce and
 * a broadcast (SKIP with fewer than 2 cards), the routing table.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "llmdev.h"

#define SEC	1000000000ULL

static void fill(uint8_t *p, size_t n, unsigned int seed)
{
	size_t i;

	srand(seed);
	for (i = 0; i < n; i++)
		p[i] = rand();
}

/* The PCI address of card @index, from its sysfs device link. */
static int card_bdf(unsigned int index, char *bdf, size_t len)
{
	char link[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/class/llmdev/llmdev%u/device", index);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	snprintf(bdf, len, "%s", strrchr(target, '/') + 1);
	return 0;
}

FIXTURE(lib) {
	struct llmdev *dev;
	int ncards;
};

FIXTURE_SETUP(lib)
{
	self->dev = NULL;
	self->ncards = llmdev_count();
	if (self->ncards <= 0)
		SKIP(return, "no /dev/llmdev*: llmdev.ko not loaded?");
	ASSERT_EQ(0, llmdev_open(0, &self->dev));
}

FIXTURE_TEARDOWN(lib)
{
	llmdev_close(self->dev);
}

TEST_F(lib, open_three_ways)
{
	struct llmdev_info a, b, c;
	struct llmdev *byp, *bypci;
	char bdf[64];

	if (!self->dev)
		return;
	ASSERT_EQ(0, llmdev_get_info(self->dev, &a));
	ASSERT_EQ(0, llmdev_open_path("/dev/llmdev0", &byp));
	ASSERT_EQ(0, card_bdf(0, bdf, sizeof(bdf)));
	ASSERT_EQ(0, llmdev_open_pci(bdf, &bypci)) TH_LOG("bdf %s", bdf);
	ASSERT_EQ(0, llmdev_get_info(byp, &b));
	ASSERT_EQ(0, llmdev_get_info(bypci, &c));
	EXPECT_EQ(a.serial, b.serial);
	EXPECT_EQ(a.serial, c.serial);
	EXPECT_STREQ("llmdev0", llmdev_name(bypci));
	EXPECT_LE(0, llmdev_fd(byp));
	llmdev_close(byp);
	llmdev_close(bypci);
	/* a card that does not exist */
	EXPECT_EQ(-ENOENT, llmdev_open(200, &byp));
	EXPECT_EQ(ENOENT, errno);
}

TEST_F(lib, copy_every_card)
{
	const size_t n = 3 * 1024 * 1024 + 7;
	uint8_t *src = malloc(n + 8), *dst = malloc(n + 8);	/* room for the offsets */
	int i;

	if (!self->dev)
		return;
	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	for (i = 0; i < self->ncards; i++) {
		struct llmdev_hbm_alloc a;
		struct llmdev *d;

		ASSERT_EQ(0, llmdev_open(i, &d));
		ASSERT_EQ(0, llmdev_hbm_alloc(d, n + 100, 0, 0, NULL, &a));
		fill(src, n + 8, i + 1);
		memset(dst, 0, n + 8);
		ASSERT_EQ(0, llmdev_copy_to_hbm(d, a.handle, 99, src + 1, n - 1, 10 * SEC));
		ASSERT_EQ(0, llmdev_copy_from_hbm(d, a.handle, 99, dst + 3, n - 1, 10 * SEC));
		EXPECT_EQ(0, memcmp(src + 1, dst + 3, n - 1)) TH_LOG("card %d", i);
		EXPECT_EQ(0, llmdev_hbm_free(d, a.handle));
		llmdev_close(d);
	}
	free(src);
	free(dst);
}

TEST_F(lib, async_fences_and_map)
{
	const size_t n = 256 * 1024;
	struct llmdev_hbm_alloc a;
	uint64_t f1, f2, got;
	uint8_t *src = malloc(n), *map;
	int st;

	if (!self->dev)
		return;
	ASSERT_NE(NULL, src);
	fill(src, n, 7);
	ASSERT_EQ(0, llmdev_hbm_alloc(self->dev, n, 0, 0, "lib-map", &a));
	ASSERT_EQ(0, llmdev_dma_submit(self->dev, a.handle, 0, src, n / 2,
				       LLMDEV_DMA_TO_CARD, LLMDEV_RING_ANY, &f1));
	ASSERT_EQ(0, llmdev_dma_submit(self->dev, a.handle, n / 2, src + n / 2,
				       n / 2, LLMDEV_DMA_TO_CARD, 1, &f2));
	ASSERT_EQ(0, llmdev_fence_wait(self->dev, f1, 10 * SEC, &st));
	EXPECT_EQ(0, st);
	ASSERT_EQ(0, llmdev_fence_wait_any(self->dev, 10 * SEC, &got, &st));
	EXPECT_EQ(f2, got);
	EXPECT_EQ(0, st);
	EXPECT_EQ(-ENOENT, llmdev_fence_wait(self->dev, f1, 0, &st));
	/* what DMA wrote, the aperture shows */
	map = llmdev_hbm_map(self->dev, a.mmap_offset, n, PROT_READ);
	ASSERT_NE(NULL, map) TH_LOG("map: %s", strerror(errno));
	EXPECT_EQ(0, memcmp(map, src, n));
	EXPECT_EQ(0, llmdev_hbm_unmap(map, n));
	EXPECT_EQ(0, llmdev_hbm_free(self->dev, a.handle));
	free(src);
}

TEST_F(lib, persistent_list_open)
{
	struct llmdev_hbm_region *regions;
	struct llmdev_hbm_alloc a;
	struct llmdev_hbm_open o;
	struct llmdev *other;
	unsigned int count, i, found = 0;
	char name[32];

	if (!self->dev)
		return;
	snprintf(name, sizeof(name), "lib-%d", getpid());
	ASSERT_EQ(0, llmdev_hbm_alloc(self->dev, 8192, 0, LLMDEV_HBM_PERSISTENT,
				      name, &a));
	EXPECT_EQ(-EEXIST, llmdev_hbm_alloc(self->dev, 8192, 0,
					    LLMDEV_HBM_PERSISTENT, name, NULL));
	ASSERT_EQ(0, llmdev_open(0, &other));
	ASSERT_EQ(0, llmdev_hbm_list(other, &regions, &count));
	for (i = 0; i < count; i++)
		if (!strcmp(regions[i].name, name)) {
			found++;
			EXPECT_EQ(a.handle, regions[i].handle);
			EXPECT_TRUE(regions[i].flags & LLMDEV_REGION_PERSISTENT);
		}
	free(regions);
	EXPECT_EQ(1, found);
	ASSERT_EQ(0, llmdev_hbm_open(other, name, &o));
	EXPECT_EQ(a.handle, o.handle);
	EXPECT_EQ(8192, o.length);
	EXPECT_EQ(0, llmdev_hbm_free(other, o.handle));
	EXPECT_EQ(-ENOENT, llmdev_hbm_open(other, name, &o));
	llmdev_close(other);
}

TEST_F(lib, nospc_reports_largest_free)
{
	struct llmdev_hbm_alloc a;
	struct llmdev_info info;

	if (!self->dev)
		return;
	ASSERT_EQ(0, llmdev_get_info(self->dev, &info));
	memset(&a, 0, sizeof(a));
	EXPECT_EQ(-ENOSPC, llmdev_hbm_alloc(self->dev, info.hbm_size + 4096, 0,
					    0, NULL, &a));
	EXPECT_EQ(ENOSPC, errno);
	EXPECT_EQ(info.hbm_largest_free, a.largest_free);
	EXPECT_NE(NULL, llmdev_strerror(-ENOSPC));
}

TEST_F(lib, perf_counts_the_copy)
{
	struct llmdev_perf before, after;
	struct llmdev_hbm_alloc a;
	const size_t n = 1 << 20;
	uint8_t *buf = calloc(1, n);
	unsigned int i;

	if (!self->dev)
		return;
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, llmdev_hbm_alloc(self->dev, n, 0, 0, NULL, &a));
	ASSERT_EQ(0, llmdev_perf_read(self->dev, &before));
	ASSERT_EQ(0, llmdev_copy_to_hbm(self->dev, a.handle, 0, buf, n, 10 * SEC));
	ASSERT_EQ(0, llmdev_perf_read(self->dev, &after));
	EXPECT_EQ(before.counters[LLMDEV_COUNTER_H2C_BYTES] + n,
		  after.counters[LLMDEV_COUNTER_H2C_BYTES]);
	EXPECT_LT(before.host_time_ns, after.host_time_ns);
	for (i = 0; i < after.num_counters; i++)
		EXPECT_NE(NULL, llmdev_counter_name(i)) TH_LOG("counter %u", i);
	EXPECT_EQ(0, llmdev_hbm_free(self->dev, a.handle));
	free(buf);
}

TEST_F(lib, links)
{
	struct llmdev_link_info l;
	struct llmdev_info info;
	unsigned int p, up = 0;

	if (!self->dev)
		return;
	ASSERT_EQ(0, llmdev_get_info(self->dev, &info));
	for (p = 0; p < info.num_link_ports; p++) {
		ASSERT_EQ(0, llmdev_link_get_info(self->dev, p, &l));
		EXPECT_EQ(p, l.port);
		up += l.state == LLMDEV_LINK_UP;
	}
	EXPECT_EQ(self->ncards > 1, up > 0);
	EXPECT_EQ(-EINVAL, llmdev_link_get_info(self->dev, info.num_link_ports, &l));
	EXPECT_EQ(EINVAL, errno);
	/* port 3 is not cabled by default: enabling it is harmless */
	EXPECT_EQ(0, llmdev_link_set_enabled(self->dev, 3, 1));
	EXPECT_EQ(-EINVAL, llmdev_link_set_enabled(self->dev, 3, 2));
}

TEST_F(lib, allreduce_and_broadcast)
{
	const uint64_t count = 100003, bytes = count * 4;
	struct llmdev_coll_buf bufs[2];
	struct llmdev *d[2] = { NULL, NULL };
	struct llmdev_group *g;
	struct llmdev_hbm_alloc a;
	int32_t *in[2], *out;
	uint64_t fence, i;
	unsigned int r;
	int st;

	if (!self->dev)
		return;
	if (self->ncards < 2)
		SKIP(return, "needs 2 cards, the VM has %d", self->ncards);
	out = malloc(bytes);
	ASSERT_NE(NULL, out);
	memset(bufs, 0, sizeof(bufs));
	for (r = 0; r < 2; r++) {
		ASSERT_EQ(0, llmdev_open(r, &d[r]));
		ASSERT_EQ(0, llmdev_hbm_alloc(d[r], 2 * bytes, 0, 0, NULL, &a));
		bufs[r].fd = -1;	/* the library fills it in */
		bufs[r].src_handle = bufs[r].dst_handle = a.handle;
		bufs[r].dst_offset = bytes;
		in[r] = malloc(bytes);
		ASSERT_NE(NULL, in[r]);
		fill((uint8_t *)in[r], bytes, 40 + r);
		ASSERT_EQ(0, llmdev_copy_to_hbm(d[r], a.handle, 0, in[r], bytes, 10 * SEC));
	}
	ASSERT_EQ(0, llmdev_group_create(self->dev, d, 2, &g));
	ASSERT_EQ(0, llmdev_allreduce(g, bufs, count, LLMDEV_DTYPE_I32,
				      LLMDEV_REDOP_SUM, 30 * SEC));
	for (r = 0; r < 2; r++) {
		ASSERT_EQ(0, llmdev_copy_from_hbm(d[r], bufs[r].dst_handle, bytes, out,
						  bytes, 10 * SEC));
		for (i = 0; i < count; i++)
			if (out[i] != (int32_t)((uint32_t)in[0][i] + (uint32_t)in[1][i]))
				break;
		EXPECT_EQ(count, i) TH_LOG("rank %u: element %llu", r,
					   (unsigned long long)i);
	}
	/* broadcast rank 1's input, asynchronously, waited on the group's handle */
	ASSERT_EQ(0, llmdev_broadcast_submit(g, bufs, count, LLMDEV_DTYPE_F32, 1,
					     &fence));
	ASSERT_EQ(0, llmdev_fence_wait(self->dev, fence, 30 * SEC, &st));
	EXPECT_EQ(0, st);
	ASSERT_EQ(0, llmdev_copy_from_hbm(d[0], bufs[0].dst_handle, bytes, out,
					  bytes, 10 * SEC));
	EXPECT_EQ(0, memcmp(out, in[1], bytes));
	EXPECT_EQ(-EINVAL, llmdev_allreduce(g, bufs, 0, LLMDEV_DTYPE_I32,
					    LLMDEV_REDOP_SUM, 30 * SEC));
	EXPECT_EQ(-EINVAL, llmdev_broadcast(g, bufs, count, LLMDEV_DTYPE_I32, 2,
					    30 * SEC));
	EXPECT_EQ(0, llmdev_group_destroy(g));
	for (r = 0; r < 2; r++) {
		llmdev_close(d[r]);
		free(in[r]);
	}
	free(out);
}

TEST_F(lib, route_table)
{
	struct llmdev_route_entry e[2], *got;
	struct llmdev_hbm_alloc a;
	struct llmdev_route out;
	unsigned int count;
	uint32_t gen;
	char name[32];

	if (!self->dev)
		return;
	snprintf(name, sizeof(name), "lib-route-%d", getpid());
	ASSERT_EQ(0, llmdev_hbm_alloc(self->dev, 8192, 0, LLMDEV_HBM_PERSISTENT,
				      name, &a));
	memset(e, 0, sizeof(e));
	e[0].layer_last = 3;
	e[0].tp_size = 1;
	e[0].handle = a.handle;
	e[0].next_hop = LLMDEV_HOP_HOST;
	e[1] = e[0];
	e[1].layer_first = 2;
	ASSERT_EQ(0, llmdev_route_set(self->dev, e, 1, &out));
	EXPECT_EQ(~0u, out.error_index);
	ASSERT_EQ(0, llmdev_route_get(self->dev, &got, &count, &gen));
	EXPECT_EQ(out.generation, gen);
	ASSERT_EQ(1, count);
	EXPECT_EQ(a.handle, got[0].handle);
	EXPECT_EQ(a.hbm_offset, got[0].hbm_offset);
	EXPECT_EQ(8192, got[0].length);
	free(got);
	EXPECT_EQ(-EBUSY, llmdev_hbm_free(self->dev, a.handle));
	EXPECT_EQ(-EEXIST, llmdev_route_set(self->dev, e, 2, &out));
	EXPECT_EQ(1, out.error_index);
	ASSERT_EQ(0, llmdev_route_set(self->dev, NULL, 0, NULL));
	ASSERT_EQ(0, llmdev_route_get(self->dev, &got, &count, NULL));
	EXPECT_EQ(NULL, got);
	EXPECT_EQ(0, count);
	EXPECT_EQ(0, llmdev_hbm_free(self->dev, a.handle));
}

TEST_HARNESS_MAIN
