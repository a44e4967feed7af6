// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev driver: ABI tests with raw ioctl(), one fixture variant per ioctl.
 *
 * The common rules of uapi/llmdev.h are checked for every ioctl: short size
 * -> EINVAL, larger size with a non-zero tail -> E2BIG, with a zero tail ->
 * works, non-zero reserved -> EINVAL, unknown flags -> EINVAL, bad argument
 * memory -> EFAULT, unknown commands -> ENOTTY. Then each ioctl's own
 * errors, and INFO and PERF_READ against sysfs. The peer-link, group,
 * collective and routing ioctls get the common checks here (on card 0
 * alone: a group of one rank, an empty routing table); their own errors
 * are in driver_links, driver_coll and driver_route.
 */
#include <stddef.h>

#include "driver_util.h"
#include "kselftest_harness.h"

#define ARGBUF		8192	/* big enough for any struct plus a tail */

struct abi_cmd;

FIXTURE(abi) {
	int kmsg;		/* /dev/kmsg, for kernel reports */
	int fd;			/* the file under test */
	int fd2;		/* another open file of the same card */
	uint32_t handle;	/* 1 MiB region of fd */
	uint32_t handle2;	/* 64 KiB region of fd2 */
	uint8_t *buf;		/* 64 KiB host buffer */
	char pname[LLMDEV_NAME_LEN];	/* persistent region of fd */
	uint32_t phandle;
	struct llmdev_hbm_region list[8];
	struct llmdev_info info;
	uint64_t aux;		/* per-command state: handle, fence */
	int32_t gfd[1];		/* fds of a group of one rank: fd */
	uint32_t group;		/* COLL_SUBMIT: its group */
	struct llmdev_coll_buf cbuf[1];	/* COLL_SUBMIT: in place in handle */
	bool ready;
};

/*
 * One ioctl: how to build an argument that succeeds, and how to undo a call
 * (which may or may not have succeeded: @ret).
 */
struct abi_cmd {
	const char *name;
	unsigned long cmd;
	size_t ksize;
	long reserved_off;	/* offset of a __u32 __reserved, -1 if none */
	uint32_t bad_flag;	/* lowest undefined flag bit */
	bool has_output;	/* the kernel writes the struct back */
	int (*prepare)(FIXTURE_DATA(abi) *self, void *arg);
	void (*cleanup)(FIXTURE_DATA(abi) *self, void *arg, int ret);
	size_t min_size;	/* the struct's first version */
};

#define offsetofend(type, member) \
	(offsetof(type, member) + sizeof(((type *)0)->member))

FIXTURE_VARIANT(abi) {
	const struct abi_cmd *c;
};

/* ---- per-command argument builders ---------------------------------- */

static int prep_info(FIXTURE_DATA(abi) *self, void *arg)
{
	return 0;
}

static int prep_alloc(FIXTURE_DATA(abi) *self, void *arg)
{
	struct llmdev_hbm_alloc *a = arg;

	a->length = 8192;
	return 0;
}

static void clean_alloc(FIXTURE_DATA(abi) *self, void *arg, int ret)
{
	struct llmdev_hbm_alloc *a = arg;

	if (!ret)
		ld_hbm_free(self->fd, a->handle);
}

static int prep_free(FIXTURE_DATA(abi) *self, void *arg)
{
	struct llmdev_hbm_free *f = arg;
	struct llmdev_hbm_alloc a;
	int ret = ld_hbm_alloc(self->fd, 4096, 0, 0, NULL, &a);

	if (ret)
		return ret;
	f->handle = a.handle;
	return 0;
}

static void clean_free(FIXTURE_DATA(abi) *self, void *arg, int ret)
{
	struct llmdev_hbm_free *f = arg;

	if (ret)
		ld_hbm_free(self->fd, f->handle);
}

static int prep_list(FIXTURE_DATA(abi) *self, void *arg)
{
	struct llmdev_hbm_list *l = arg;

	l->count = 8;
	l->entry_size = sizeof(struct llmdev_hbm_region);
	l->regions = (uintptr_t)self->list;
	return 0;
}

static int prep_open(FIXTURE_DATA(abi) *self, void *arg)
{
	struct llmdev_hbm_open *o = arg;

	memcpy(o->name, self->pname, sizeof(o->name));
	return 0;
}

static int prep_dma(FIXTURE_DATA(abi) *self, void *arg)
{
	struct llmdev_dma *d = arg;

	d->flags = LLMDEV_DMA_TO_CARD;
	d->handle = self->handle;
	d->ring = 0;
	d->offset = 4096;
	d->user_addr = (uintptr_t)self->buf;
	d->length = 4096;
	return 0;
}

static void clean_dma(FIXTURE_DATA(abi) *self, void *arg, int ret)
{
	struct llmdev_dma *d = arg;

	if (!ret)
		ld_wait(self->fd, d->fence, LD_LONG_WAIT, NULL);
}

static int prep_wait(FIXTURE_DATA(abi) *self, void *arg)
{
	struct llmdev_fence_wait *w = arg;
	uint64_t fence;
	int ret = ld_submit(self->fd, self->handle, 0, self->buf, 4096, true,
			    0, &fence);

	if (ret)
		return ret;
	self->aux = fence;
	w->fence = fence;
	w->timeout_ns = LD_LONG_WAIT;
	return 0;
}

static void clean_wait(FIXTURE_DATA(abi) *self, void *arg, int ret)
{
	if (ret)
		ld_wait(self->fd, self->aux, LD_LONG_WAIT, NULL);
}

static int prep_perf(FIXTURE_DATA(abi) *self, void *arg)
{
	return 0;
}

static int prep_link_info(FIXTURE_DATA(abi) *self, void *arg)
{
	struct llmdev_link_info *l = arg;

	l->port = 0;
	return 0;
}

/* enabling an enabled port changes nothing */
static int prep_link_set(FIXTURE_DATA(abi) *self, void *arg)
{
	struct llmdev_link_set *l = arg;

	l->port = LLMDEV_NUM_LINK_PORTS - 1;
	l->enable = 1;
	return 0;
}

static int prep_group_create(FIXTURE_DATA(abi) *self, void *arg)
{
	struct llmdev_group_create *c = arg;

	self->gfd[0] = self->fd;
	c->nranks = 1;
	c->fds = (uintptr_t)self->gfd;
	return 0;
}

static void clean_group_create(FIXTURE_DATA(abi) *self, void *arg, int ret)
{
	struct llmdev_group_create *c = arg;

	if (!ret)
		ld_group_destroy(self->fd, c->group);
}

static int prep_group_destroy(FIXTURE_DATA(abi) *self, void *arg)
{
	struct llmdev_group_destroy *d = arg;
	int ret;

	self->gfd[0] = self->fd;
	ret = ld_group_create(self->fd, self->gfd, 1, &d->group);
	return ret;
}

static void clean_group_destroy(FIXTURE_DATA(abi) *self, void *arg, int ret)
{
	struct llmdev_group_destroy *d = arg;

	if (ret)
		ld_group_destroy(self->fd, d->group);
}

static int prep_coll(FIXTURE_DATA(abi) *self, void *arg)
{
	struct llmdev_coll *c = arg;
	int ret;

	self->gfd[0] = self->fd;
	ret = ld_group_create(self->fd, self->gfd, 1, &self->group);
	if (ret)
		return ret;
	memset(self->cbuf, 0, sizeof(self->cbuf));
	self->cbuf[0].fd = self->fd;
	self->cbuf[0].src_handle = self->handle;
	self->cbuf[0].dst_handle = self->handle;
	c->group = self->group;
	c->op = LLMDEV_COLL_ALLREDUCE;
	c->dtype = LLMDEV_DTYPE_F32;
	c->redop = LLMDEV_REDOP_SUM;
	c->buf_size = sizeof(self->cbuf[0]);
	c->count = 1024;
	c->bufs = (uintptr_t)self->cbuf;
	return 0;
}

static void clean_coll(FIXTURE_DATA(abi) *self, void *arg, int ret)
{
	struct llmdev_coll *c = arg;

	if (!ret)
		ld_wait(self->fd, c->fence, LD_LONG_WAIT, NULL);
	ld_group_destroy(self->fd, self->group);
}

/* an empty table: clears it (and GET reads the count) */
static int prep_route(FIXTURE_DATA(abi) *self, void *arg)
{
	struct llmdev_route *rt = arg;

	rt->entry_size = sizeof(struct llmdev_route_entry);
	return 0;
}

static const struct abi_cmd cmd_info = {
	"INFO", LLMDEV_INFO, sizeof(struct llmdev_info), -1, 1, true,
	prep_info, NULL,
	offsetofend(struct llmdev_info, irq_vectors),
};
static const struct abi_cmd cmd_alloc = {
	"HBM_ALLOC", LLMDEV_HBM_ALLOC, sizeof(struct llmdev_hbm_alloc),
	offsetof(struct llmdev_hbm_alloc, __reserved), 1 << 1, true,
	prep_alloc, clean_alloc,
	offsetofend(struct llmdev_hbm_alloc, largest_free),
};
static const struct abi_cmd cmd_free = {
	"HBM_FREE", LLMDEV_HBM_FREE, sizeof(struct llmdev_hbm_free),
	offsetof(struct llmdev_hbm_free, __reserved), 1, false,
	prep_free, clean_free,
	offsetofend(struct llmdev_hbm_free, __reserved),
};
static const struct abi_cmd cmd_list = {
	"HBM_LIST", LLMDEV_HBM_LIST, sizeof(struct llmdev_hbm_list), -1, 1, true,
	prep_list, NULL,
	offsetofend(struct llmdev_hbm_list, regions),
};
static const struct abi_cmd cmd_open = {
	"HBM_OPEN", LLMDEV_HBM_OPEN, sizeof(struct llmdev_hbm_open),
	offsetof(struct llmdev_hbm_open, __reserved), 1, true,
	prep_open, NULL,
	offsetofend(struct llmdev_hbm_open, mmap_offset),
};
static const struct abi_cmd cmd_dma = {
	"DMA_SUBMIT", LLMDEV_DMA_SUBMIT, sizeof(struct llmdev_dma), -1, 1 << 1,
	true, prep_dma, clean_dma,
	offsetofend(struct llmdev_dma, fence),
};
static const struct abi_cmd cmd_wait = {
	"FENCE_WAIT", LLMDEV_FENCE_WAIT, sizeof(struct llmdev_fence_wait),
	offsetof(struct llmdev_fence_wait, __reserved), 1 << 1, true,
	prep_wait, clean_wait,
	offsetofend(struct llmdev_fence_wait, __reserved),
};
static const struct abi_cmd cmd_perf = {
	"PERF_READ", LLMDEV_PERF_READ, sizeof(struct llmdev_perf),
	offsetof(struct llmdev_perf, __reserved), 1, true,
	prep_perf, NULL,
	offsetofend(struct llmdev_perf, counters),
};

static const struct abi_cmd cmd_link_info = {
	"LINK_INFO", LLMDEV_LINK_INFO, sizeof(struct llmdev_link_info), -1, 1,
	true, prep_link_info, NULL,
	offsetofend(struct llmdev_link_info, rx_errors),
};
static const struct abi_cmd cmd_link_set = {
	"LINK_SET", LLMDEV_LINK_SET, sizeof(struct llmdev_link_set), -1, 1,
	false, prep_link_set, NULL,
	offsetofend(struct llmdev_link_set, enable),
};
static const struct abi_cmd cmd_group_create = {
	"GROUP_CREATE", LLMDEV_GROUP_CREATE, sizeof(struct llmdev_group_create),
	-1, 1, true, prep_group_create, clean_group_create,
	offsetofend(struct llmdev_group_create, fds),
};
static const struct abi_cmd cmd_group_destroy = {
	"GROUP_DESTROY", LLMDEV_GROUP_DESTROY, sizeof(struct llmdev_group_destroy),
	offsetof(struct llmdev_group_destroy, __reserved), 1, false,
	prep_group_destroy, clean_group_destroy,
	offsetofend(struct llmdev_group_destroy, __reserved),
};
static const struct abi_cmd cmd_coll = {
	"COLL_SUBMIT", LLMDEV_COLL_SUBMIT, sizeof(struct llmdev_coll), -1, 1,
	true, prep_coll, clean_coll,
	offsetofend(struct llmdev_coll, fence),
};
static const struct abi_cmd cmd_route_set = {
	"ROUTE_SET", LLMDEV_ROUTE_SET, sizeof(struct llmdev_route), -1, 1,
	true, prep_route, NULL,
	offsetofend(struct llmdev_route, error_index),
};
static const struct abi_cmd cmd_route_get = {
	"ROUTE_GET", LLMDEV_ROUTE_GET, sizeof(struct llmdev_route), -1, 1,
	true, prep_route, NULL,
	offsetofend(struct llmdev_route, error_index),
};

static const struct abi_cmd cmd_reset = {
	"RESET", LLMDEV_RESET, sizeof(struct llmdev_reset), -1, 1, false,
	prep_info, NULL,
	offsetofend(struct llmdev_reset, flags),
};

FIXTURE_VARIANT_ADD(abi, info) { .c = &cmd_info };
FIXTURE_VARIANT_ADD(abi, hbm_alloc) { .c = &cmd_alloc };
FIXTURE_VARIANT_ADD(abi, hbm_free) { .c = &cmd_free };
FIXTURE_VARIANT_ADD(abi, hbm_list) { .c = &cmd_list };
FIXTURE_VARIANT_ADD(abi, hbm_open) { .c = &cmd_open };
FIXTURE_VARIANT_ADD(abi, dma_submit) { .c = &cmd_dma };
FIXTURE_VARIANT_ADD(abi, fence_wait) { .c = &cmd_wait };
FIXTURE_VARIANT_ADD(abi, perf_read) { .c = &cmd_perf };
FIXTURE_VARIANT_ADD(abi, link_info) { .c = &cmd_link_info };
FIXTURE_VARIANT_ADD(abi, link_set) { .c = &cmd_link_set };
FIXTURE_VARIANT_ADD(abi, group_create) { .c = &cmd_group_create };
FIXTURE_VARIANT_ADD(abi, group_destroy) { .c = &cmd_group_destroy };
FIXTURE_VARIANT_ADD(abi, coll_submit) { .c = &cmd_coll };
FIXTURE_VARIANT_ADD(abi, route_set) { .c = &cmd_route_set };
FIXTURE_VARIANT_ADD(abi, route_get) { .c = &cmd_route_get };
FIXTURE_VARIANT_ADD(abi, reset) { .c = &cmd_reset };

FIXTURE_SETUP(abi)
{
	struct llmdev_hbm_alloc a;
	int ret;

	self->kmsg = ld_kmsg_open();
	self->fd = self->fd2 = -1;
	if (access("/dev/llmdev0", F_OK))
		SKIP(return, "/dev/llmdev0 is missing: llmdev.ko not loaded?");
	self->fd = ld_open(0);
	ASSERT_LE(0, self->fd) TH_LOG("open /dev/llmdev0: %s", strerror(-self->fd));
	self->fd2 = ld_open(0);
	ASSERT_LE(0, self->fd2);
	ASSERT_EQ(0, ld_info(self->fd, &self->info));
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, LD_MIB, 0, 0, "abi", &a));
	self->handle = a.handle;
	ASSERT_EQ(0, ld_hbm_alloc(self->fd2, 64 * LD_KIB, 0, 0, NULL, &a));
	self->handle2 = a.handle;
	snprintf(self->pname, sizeof(self->pname), "abi-%d", getpid());
	ret = ld_hbm_alloc(self->fd, 4096, 0, LLMDEV_HBM_PERSISTENT,
			   self->pname, &a);
	ASSERT_EQ(0, ret) TH_LOG("persistent alloc: %s", strerror(-ret));
	self->phandle = a.handle;
	self->buf = ld_alloc_buf(64 * LD_KIB);
	ASSERT_NE(NULL, self->buf);
	ld_fill(self->buf, 64 * LD_KIB, 1);
	self->ready = true;
}

FIXTURE_TEARDOWN(abi)
{
	LD_EXPECT_NO_KERNEL_REPORTS(self->kmsg);
	if (self->fd >= 0) {
		if (self->phandle)
			ld_hbm_free(self->fd, self->phandle);
		close(self->fd);
	}
	if (self->fd2 >= 0)
		close(self->fd2);
	ld_free_buf(self->buf, 64 * LD_KIB);
}

/* Issue the command with @arg; undo its effect; return 0 or -errno. */
static int abi_call(FIXTURE_DATA(abi) *self, const struct abi_cmd *c, void *arg)
{
	int ret = ld_ioctl(self->fd, c->cmd, arg);

	if (c->cleanup)
		c->cleanup(self, arg, ret);
	return ret;
}

/* A fresh, valid argument at @arg (ARGBUF bytes), with size = @size. */
static int abi_prepare(FIXTURE_DATA(abi) *self, const struct abi_cmd *c,
		       void *arg, uint32_t size)
{
	memset(arg, 0, ARGBUF);
	*(uint32_t *)arg = c->ksize;
	if (c->prepare(self, arg))
		return -1;
	*(uint32_t *)arg = size;
	return 0;
}

TEST_F(abi, valid)
{
	uint8_t arg[ARGBUF];

	SETUP_OR_SKIP();
	ASSERT_EQ(0, abi_prepare(self, variant->c, arg, variant->c->ksize));
	EXPECT_EQ(0, abi_call(self, variant->c, arg))
		TH_LOG("%s with a valid argument: %s", variant->c->name,
		       strerror(errno));
}

/*
 * A binary built against the first version of the struct: it passes the
 * first version's size and has nothing after it. The call works, and the
 * kernel writes nothing past that size.
 */
TEST_F(abi, old_size)
{
	const struct abi_cmd *c = variant->c;
	uint8_t arg[ARGBUF];

	SETUP_OR_SKIP();
	ASSERT_LE(c->min_size, c->ksize);
	ASSERT_EQ(0, abi_prepare(self, c, arg, c->min_size));
	memset(arg + c->min_size, 0xee, ARGBUF - c->min_size);
	EXPECT_EQ(0, abi_call(self, c, arg))
		TH_LOG("%s at its first version's size %zu: %s", c->name,
		       c->min_size, strerror(errno));
	EXPECT_EQ(-1, ld_memchk(arg + c->min_size, 0xee, ARGBUF - c->min_size))
		TH_LOG("%s wrote past the caller's size", c->name);
	EXPECT_EQ(c->min_size, *(uint32_t *)arg)
		TH_LOG("%s changed the size field", c->name);
}

TEST_F(abi, short_size)
{
	const struct abi_cmd *c = variant->c;
	uint32_t sizes[] = { 0, 4, 8, c->min_size - 8, c->min_size - 4,
			     c->min_size - 1 };
	uint8_t arg[ARGBUF];
	unsigned int i;

	SETUP_OR_SKIP();
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (sizes[i] >= c->min_size)	/* a tiny struct: 8 - 8 */
			continue;
		ASSERT_EQ(0, abi_prepare(self, c, arg, sizes[i]));
		EXPECT_EQ(-EINVAL, abi_call(self, c, arg))
			TH_LOG("%s size %u (first version: %zu)", c->name,
			       sizes[i], c->min_size);
	}
}

TEST_F(abi, big_size_nonzero_tail)
{
	const struct abi_cmd *c = variant->c;
	uint32_t extra[] = { 1, 8, 64, ARGBUF - 8 - c->ksize };
	uint8_t arg[ARGBUF];
	unsigned int i;

	SETUP_OR_SKIP();
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		ASSERT_EQ(0, abi_prepare(self, c, arg, c->ksize + extra[i]));
		arg[c->ksize + extra[i] - 1] = 0x01;	/* last byte of tail */
		EXPECT_EQ(-E2BIG, abi_call(self, c, arg))
			TH_LOG("%s size %zu, last tail byte set", c->name,
			       c->ksize + extra[i]);
		ASSERT_EQ(0, abi_prepare(self, c, arg, c->ksize + extra[i]));
		arg[c->ksize] = 0x80;			/* first byte of tail */
		EXPECT_EQ(-E2BIG, abi_call(self, c, arg))
			TH_LOG("%s size %zu, first tail byte set", c->name,
			       c->ksize + extra[i]);
	}
}

TEST_F(abi, big_size_zero_tail)
{
	const struct abi_cmd *c = variant->c;
	uint32_t extra[] = { 1, 8, 64, ARGBUF - 8 - c->ksize };
	uint8_t arg[ARGBUF];
	unsigned int i;

	SETUP_OR_SKIP();
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		uint32_t size = c->ksize + extra[i];

		ASSERT_EQ(0, abi_prepare(self, c, arg, size));
		memset(arg + size, 0xee, ARGBUF - size);	/* beyond size */
		EXPECT_EQ(0, abi_call(self, c, arg))
			TH_LOG("%s size %u, zero tail: %s", c->name, size,
			       strerror(errno));
		/* the kernel writes back no more than its own struct */
		EXPECT_EQ(-1, ld_nonzero(arg + c->ksize, size - c->ksize))
			TH_LOG("%s wrote into the caller's tail", c->name);
		EXPECT_EQ(0xee, arg[size]);
	}
}

TEST_F(abi, reserved_nonzero)
{
	const struct abi_cmd *c = variant->c;
	uint8_t arg[ARGBUF];
	uint32_t bits[] = { 1, 0x80000000u };
	unsigned int i;

	SETUP_OR_SKIP();
	if (c->reserved_off < 0)
		SKIP(return, "%s has no reserved field", c->name);
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, abi_prepare(self, c, arg, c->ksize));
		*(uint32_t *)(arg + c->reserved_off) = bits[i];
		EXPECT_EQ(-EINVAL, abi_call(self, c, arg))
			TH_LOG("%s __reserved = %#x", c->name, bits[i]);
	}
}

TEST_F(abi, unknown_flags)
{
	const struct abi_cmd *c = variant->c;
	uint8_t arg[ARGBUF];
	uint32_t bit;

	SETUP_OR_SKIP();
	for (bit = c->bad_flag; bit; bit <<= 1) {
		ASSERT_EQ(0, abi_prepare(self, c, arg, c->ksize));
		((uint32_t *)arg)[1] |= bit;
		EXPECT_EQ(-EINVAL, abi_call(self, c, arg))
			TH_LOG("%s flags bit %#x", c->name, bit);
	}
}

TEST_F(abi, efault_null)
{
	SETUP_OR_SKIP();
	EXPECT_EQ(-EFAULT, ld_ioctl(self->fd, variant->c->cmd, NULL));
	EXPECT_EQ(-EFAULT, ld_ioctl(self->fd, variant->c->cmd, (void *)8));
}

TEST_F(abi, efault_unmapped)
{
	void *p = mmap(NULL, LD_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	SETUP_OR_SKIP();
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-EFAULT, ld_ioctl(self->fd, variant->c->cmd, p));
	munmap(p, LD_PAGE);
}

/* size and flags readable, the rest of the struct in an unmapped page */
TEST_F(abi, efault_partial)
{
	const struct abi_cmd *c = variant->c;
	uint8_t *p = mmap(NULL, 2 * LD_PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t arg[ARGBUF];
	size_t readable;
	uint8_t *at;

	SETUP_OR_SKIP();
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, mprotect(p + LD_PAGE, LD_PAGE, PROT_NONE));
	ASSERT_EQ(0, abi_prepare(self, c, arg, c->ksize));
	/* the size is readable, the rest of the struct is not */
	readable = c->ksize > 8 ? 8 : 4;
	at = p + LD_PAGE - readable;
	memcpy(at, arg, readable);
	EXPECT_EQ(-EFAULT, ld_ioctl(self->fd, c->cmd, at));
	if (c->cleanup)
		c->cleanup(self, arg, -EFAULT);
	munmap(p, 2 * LD_PAGE);
}

/* a valid argument in read-only memory: only output ioctls fault */
TEST_F(abi, efault_readonly)
{
	const struct abi_cmd *c = variant->c;
	uint64_t used0 = 0, used1 = 0;
	uint8_t *p = mmap(NULL, LD_PAGE * 3, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int ret;

	SETUP_OR_SKIP();
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, abi_prepare(self, c, p, c->ksize));
	ASSERT_EQ(0, mprotect(p, LD_PAGE * 3, PROT_READ));
	ld_sysfs_u64(0, "hbm_used", &used0);
	ret = ld_ioctl(self->fd, c->cmd, p);
	if (!c->has_output) {
		EXPECT_EQ(0, ret);
	} else {
		EXPECT_EQ(-EFAULT, ret) TH_LOG("%s into read-only memory", c->name);
	}
	if (c->cmd == LLMDEV_HBM_ALLOC) {
		/* the caller never learnt the handle: nothing may leak */
		ld_sysfs_u64(0, "hbm_used", &used1);
		EXPECT_EQ(used0, used1) TH_LOG("HBM_ALLOC leaked a region after EFAULT");
	} else if (c->cmd == LLMDEV_DMA_SUBMIT || c->cmd == LLMDEV_COLL_SUBMIT) {
		uint64_t fence;
		int status;

		/* the caller never learnt the fence: report an orphan */
		ret = ld_wait_any(self->fd, 2 * LD_NSEC_PER_SEC, &fence, &status);
		EXPECT_EQ(-ENOENT, ret)
			TH_LOG("%s returned EFAULT but left fence %llu", c->name,
			       (unsigned long long)fence);
		if (c->cmd == LLMDEV_COLL_SUBMIT)
			ld_group_destroy(self->fd, self->group);
	} else if (c->cmd == LLMDEV_FENCE_WAIT) {
		/* undocumented whether the fence is consumed; reap it */
		ret = ld_wait(self->fd, self->aux, LD_LONG_WAIT, NULL);
		TH_LOG("after FENCE_WAIT -> EFAULT the fence is %s",
		       ret ? "gone (consumed)" : "still there");
	} else if (c->cleanup) {
		c->cleanup(self, p, ret);
	}
	munmap(p, LD_PAGE * 3);
}

/* ---- unknown commands ---------------------------------------------------- */

FIXTURE(card) {
	int kmsg;		/* /dev/kmsg, for kernel reports */
	int fd;
	struct llmdev_info info;
};

FIXTURE_SETUP(card)
{
	LD_FIXTURE_START();
	LD_FIXTURE_OPEN_CARD0();
}

FIXTURE_TEARDOWN(card)
{
	LD_EXPECT_NO_KERNEL_REPORTS(self->kmsg);
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(card, unknown_commands)
{
	uint8_t arg[ARGBUF] = { 0 };
	const unsigned long cmds[] = {
		_IO('L', 0xdf),
		_IO('L', LLMDEV_CMD_BASE - 1),
		_IO('L', LLMDEV_CMD_DMA_BATCH + 1),
		_IO('L', 0xff),
		_IO('L', 0),
		_IO('M', LLMDEV_CMD_INFO),
		_IOWR('L', LLMDEV_CMD_INFO, struct llmdev_info),
		_IOR('L', LLMDEV_CMD_INFO, struct llmdev_info),
		_IOW('L', LLMDEV_CMD_HBM_FREE, struct llmdev_hbm_free),
		0x5401,	/* TCGETS */
	};
	unsigned int i;

	SETUP_OR_SKIP();
	*(uint32_t *)arg = sizeof(struct llmdev_info);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		EXPECT_EQ(-ENOTTY, ld_ioctl(self->fd, cmds[i], arg))
			TH_LOG("command %#lx", cmds[i]);
	}
}

/* ---- INFO and PERF_READ values -------------------------------------------- */

TEST_F(card, info_matches_sysfs)
{
	struct llmdev_info *i = &self->info;
	char path[256], buf[256], want[64];
	uint64_t v;
	unsigned int card, n = ld_num_cards();
	unsigned int dom, bus, dev, fn;
	const char *bdf;

	SETUP_OR_SKIP();
	for (card = 0; card < n; card++) {
		int fd = ld_open(card);

		ASSERT_LE(0, fd);
		ASSERT_EQ(0, ld_info(fd, i));
		EXPECT_EQ(sizeof(*i), i->size);
		EXPECT_EQ(0, i->flags);
		ASSERT_EQ(0, ld_sysfs_u64(card, "serial", &v));
		EXPECT_EQ(v, i->serial);
		ASSERT_EQ(0, ld_sysfs_u64(card, "hbm_total", &v));
		EXPECT_EQ(v, i->hbm_size);
		ASSERT_EQ(0, ld_sysfs_u64(card, "hbm_used", &v));
		EXPECT_EQ(v, i->hbm_used);
		EXPECT_LE(i->hbm_largest_free, i->hbm_size - i->hbm_used);
		ld_sysfs_path(path, sizeof(path), card, "spec_version");
		ASSERT_EQ(0, ld_read_file(path, buf, sizeof(buf)));
		snprintf(want, sizeof(want), "%u.%u", i->spec_version >> 16,
			 i->spec_version & 0xffff);
		EXPECT_STREQ(want, buf);
		EXPECT_EQ(LLMDEV_SPEC_MAJOR, i->spec_version >> 16);
		ld_sysfs_path(path, sizeof(path), card, "numa_node");
		ASSERT_EQ(0, ld_read_file(path, buf, sizeof(buf)));
		EXPECT_EQ(atoi(buf), i->numa_node);
		EXPECT_EQ(2, i->num_h2c_rings);
		EXPECT_EQ(2, i->num_c2h_rings);
		EXPECT_EQ(LLMDEV_NUM_LINK_PORTS, i->num_link_ports);
		EXPECT_TRUE(i->irq_vectors == 8 || i->irq_vectors == 1)
			TH_LOG("irq_vectors %u", i->irq_vectors);
		/* PCI address: the class device's parent */
		ld_sysfs_path(path, sizeof(path), card, "device");
		ASSERT_LT(0, readlink(path, buf, sizeof(buf) - 1));
		buf[sizeof(buf) - 1] = 0;
		bdf = strrchr(buf, '/') ? strrchr(buf, '/') + 1 : buf;
		ASSERT_EQ(4, sscanf(bdf, "%x:%x:%x.%x", &dom, &bus, &dev, &fn));
		EXPECT_EQ(dom, i->pci_domain);
		EXPECT_EQ(bus, i->pci_bus);
		EXPECT_EQ((dev << 3) | fn, i->pci_devfn);
		if (card > 0) {
			uint64_t s0;

			ASSERT_EQ(0, ld_sysfs_u64(0, "serial", &s0));
			EXPECT_NE(s0, i->serial) TH_LOG("cards 0 and %u share a serial", card);
		}
		close(fd);
	}
	ASSERT_EQ(0, ld_info(self->fd, i));
}

/* INFO is output only: a struct reused from an earlier call works */
TEST_F(card, info_reuse_struct)
{
	struct llmdev_info i;
	int ret;

	SETUP_OR_SKIP();
	ASSERT_EQ(0, ld_info(self->fd, &i));
	ret = ld_ioctl(self->fd, LLMDEV_INFO, &i);
	EXPECT_EQ(0, ret) TH_LOG("INFO on the struct of a previous INFO: %s (output fields must be ignored on input)",
				 strerror(-ret));
}

TEST_F(card, info_hbm_accounting)
{
	struct llmdev_info a, b;
	struct llmdev_hbm_alloc r;

	SETUP_OR_SKIP();
	ASSERT_EQ(0, ld_info(self->fd, &a));
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 3 * LD_PAGE + 1, 0, 0, NULL, &r));
	ASSERT_EQ(0, ld_info(self->fd, &b));
	EXPECT_EQ(a.hbm_used + 4 * LD_PAGE, b.hbm_used);
	ASSERT_EQ(0, ld_hbm_free(self->fd, r.handle));
	ASSERT_EQ(0, ld_info(self->fd, &b));
	EXPECT_EQ(a.hbm_used, b.hbm_used);
	EXPECT_EQ(a.hbm_largest_free, b.hbm_largest_free);
}

static const char * const counter_names[LLMDEV_COUNTER_NUM] = {
	"h2c_bytes", "c2h_bytes", "h2c_desc", "c2h_desc", "irqs",
	"aperture_rd_bytes", "aperture_wr_bytes", "errors", "dma_busy_ns",
	"scrub_bytes", "doorbells", "link_tx_bytes", "link_rx_bytes",
	"coll_ops", "coll_busy_ns",
};

TEST_F(card, perf_read)
{
	struct llmdev_perf p0, p1;
	struct llmdev_hbm_alloc a;
	uint64_t t0, t1, v;
	uint8_t *buf = ld_alloc_buf(12345);
	char path[256];
	unsigned int i;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, buf);
	t0 = ld_now_ns();
	ASSERT_EQ(0, ld_perf(self->fd, &p0));
	t1 = ld_now_ns();
	EXPECT_EQ(LLMDEV_COUNTER_NUM, p0.num_counters);
	EXPECT_LE(t0, p0.host_time_ns);
	EXPECT_GE(t1, p0.host_time_ns);
	EXPECT_NE(0, p0.card_time_ns);
	for (i = LLMDEV_COUNTER_NUM; i < LLMDEV_MAX_COUNTERS; i++)
		EXPECT_EQ(0, p0.counters[i]) TH_LOG("counter %u beyond num_counters", i);

	/* sysfs counters/ agree with the snapshot on an idle card */
	for (i = 0; i < LLMDEV_COUNTER_NUM; i++) {
		snprintf(path, sizeof(path), "counters/%s", counter_names[i]);
		ASSERT_EQ(0, ld_sysfs_u64(0, path, &v)) TH_LOG("%s", path);
		if (i == LLMDEV_COUNTER_DMA_BUSY_NS || i == LLMDEV_COUNTER_IRQS) {
			EXPECT_LE(p0.counters[i], v) TH_LOG("%s", path);
		} else {
			EXPECT_EQ(p0.counters[i], v) TH_LOG("%s", path);
		}
	}

	/* one transfer each way moves the byte and descriptor counters */
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 65536, 0, 0, NULL, &a));
	ld_fill(buf, 12345, 7);
	ASSERT_EQ(0, ld_xfer(self->fd, a.handle, 100, buf, 12345, true, 0));
	ASSERT_EQ(0, ld_xfer(self->fd, a.handle, 100, buf, 12345, false, 0));
	ASSERT_EQ(0, ld_perf(self->fd, &p1));
	EXPECT_EQ(p0.counters[LLMDEV_COUNTER_H2C_BYTES] + 12345,
		  p1.counters[LLMDEV_COUNTER_H2C_BYTES]);
	EXPECT_EQ(p0.counters[LLMDEV_COUNTER_C2H_BYTES] + 12345,
		  p1.counters[LLMDEV_COUNTER_C2H_BYTES]);
	EXPECT_LT(p0.counters[LLMDEV_COUNTER_H2C_DESC],
		  p1.counters[LLMDEV_COUNTER_H2C_DESC]);
	EXPECT_LT(p0.counters[LLMDEV_COUNTER_C2H_DESC],
		  p1.counters[LLMDEV_COUNTER_C2H_DESC]);
	EXPECT_LT(p0.counters[LLMDEV_COUNTER_DOORBELLS],
		  p1.counters[LLMDEV_COUNTER_DOORBELLS]);
	EXPECT_LT(p0.card_time_ns, p1.card_time_ns);
	EXPECT_LT(p0.host_time_ns, p1.host_time_ns);
	for (i = 0; i < LLMDEV_COUNTER_NUM; i++)
		EXPECT_LE(p0.counters[i], p1.counters[i])
			TH_LOG("counter %u went backwards", i);
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
	ld_free_buf(buf, 12345);
}

/* ---- HBM_ALLOC errors ----------------------------------------------------- */

TEST_F(card, alloc_errors)
{
	struct llmdev_hbm_alloc a, b;
	char name[64];
	int ret;

	SETUP_OR_SKIP();
	EXPECT_EQ(-EINVAL, ld_hbm_alloc(self->fd, 0, 0, 0, NULL, &a));
	EXPECT_EQ(-EINVAL, ld_hbm_alloc(self->fd, 4096, 3, 0, NULL, &a));
	EXPECT_EQ(-EINVAL, ld_hbm_alloc(self->fd, 4096, 4097, 0, NULL, &a));
	EXPECT_EQ(-EINVAL, ld_hbm_alloc(self->fd, 4096, 3ULL << 20, 0, NULL, &a));
	EXPECT_EQ(-EINVAL, ld_hbm_alloc(self->fd, 4096, ~0ULL, 0, NULL, &a));
	/* persistent needs a name */
	EXPECT_EQ(-EINVAL, ld_hbm_alloc(self->fd, 4096, 0,
					LLMDEV_HBM_PERSISTENT, NULL, &a));
	/* name not terminated */
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.length = 4096;
	memset(a.name, 'x', sizeof(a.name));
	EXPECT_EQ(-EINVAL, ld_ioctl(self->fd, LLMDEV_HBM_ALLOC, &a));
	a.flags = LLMDEV_HBM_PERSISTENT;
	EXPECT_EQ(-EINVAL, ld_ioctl(self->fd, LLMDEV_HBM_ALLOC, &a));

	/* -ENOSPC reports largest_free */
	ret = ld_hbm_alloc(self->fd, self->info.hbm_size + 4096, 0, 0, NULL, &a);
	EXPECT_EQ(-ENOSPC, ret);
	ASSERT_EQ(0, ld_info(self->fd, &self->info));
	EXPECT_EQ(self->info.hbm_largest_free, a.largest_free);
	EXPECT_EQ(-ENOSPC, ld_hbm_alloc(self->fd, ~0ULL, 0, 0, NULL, &a))
		TH_LOG("length ~0 must not wrap when rounded up");
	EXPECT_EQ(-ENOSPC, ld_hbm_alloc(self->fd, ~0ULL - 4094, 0, 0, NULL, &a));
	/* a power of two beyond the HBM cannot be honoured */
	ret = ld_hbm_alloc(self->fd, 4096, 1ULL << 63, 0, NULL, &a);
	EXPECT_TRUE(ret == -ENOSPC || (ret == 0 && a.hbm_offset == 0))
		TH_LOG("align 1<<63: %d offset %#llx", ret,
		       (unsigned long long)a.hbm_offset);
	if (!ret)
		ld_hbm_free(self->fd, a.handle);

	/* -EEXIST: duplicate persistent name */
	snprintf(name, sizeof(name), "abi-dup-%d", getpid());
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 4096, 0, LLMDEV_HBM_PERSISTENT,
				  name, &a));
	EXPECT_EQ(-EEXIST, ld_hbm_alloc(self->fd, 8192, 0,
					LLMDEV_HBM_PERSISTENT, name, NULL));
	/* a non-persistent region may share the name */
	ret = ld_hbm_alloc(self->fd, 4096, 0, 0, name, &b);
	EXPECT_EQ(0, ret) TH_LOG("non-persistent region named like a persistent one: %d", ret);
	if (!ret)
		ld_hbm_free(self->fd, b.handle);
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
	/* the name is free again */
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 4096, 0, LLMDEV_HBM_PERSISTENT,
				  name, &a));
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
}

TEST_F(card, alloc_align_and_rounding)
{
	struct llmdev_hbm_alloc a, pad;
	struct llmdev_hbm_region *r;
	unsigned int n;
	uint64_t aligns[] = { 1, 2, 512, 4096, 8192, 65536, LD_MIB, 4 * LD_MIB };
	unsigned int i;

	SETUP_OR_SKIP();
	for (i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
		/* a 4 KiB region first, so the next free offset is unaligned */
		ASSERT_EQ(0, ld_hbm_alloc(self->fd, 4096, 0, 0, NULL, &pad));
		ASSERT_EQ(0, ld_hbm_alloc(self->fd, 5000, aligns[i], 0, NULL, &a));
		EXPECT_EQ(0, a.hbm_offset % (aligns[i] < 4096 ? 4096 : aligns[i]))
			TH_LOG("align %llu: offset %#llx",
			       (unsigned long long)aligns[i],
			       (unsigned long long)a.hbm_offset);
		ASSERT_EQ(0, ld_hbm_list(self->fd, &r, &n));
		ASSERT_NE(NULL, ld_find_region(r, n, a.handle));
		EXPECT_EQ(8192, ld_find_region(r, n, a.handle)->length);
		EXPECT_EQ(a.hbm_offset, ld_find_region(r, n, a.handle)->hbm_offset);
		free(r);
		EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
		EXPECT_EQ(0, ld_hbm_free(self->fd, pad.handle));
	}
}

/* ---- HBM_FREE errors ----------------------------------------------------- */

TEST_F(card, free_errors)
{
	struct llmdev_hbm_alloc a;
	int fd2 = ld_open(0);

	SETUP_OR_SKIP();
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-ENOENT, ld_hbm_free(self->fd, 0));
	EXPECT_EQ(-ENOENT, ld_hbm_free(self->fd, 0xdeadbeef));
	EXPECT_EQ(-ENOENT, ld_hbm_free(self->fd, ~0u));
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 4096, 0, 0, NULL, &a));
	/* a region of another open file, same process: -EPERM */
	EXPECT_EQ(-EPERM, ld_hbm_free(fd2, a.handle));
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
	EXPECT_EQ(-ENOENT, ld_hbm_free(self->fd, a.handle));
	close(fd2);
}

/* ---- HBM_LIST ------------------------------------------------------------- */

TEST_F(card, list_semantics)
{
	struct llmdev_hbm_alloc a[3], other, pers;
	struct llmdev_hbm_region big[16 * 2];
	struct llmdev_hbm_list l;
	struct llmdev_hbm_region *r;
	char name[LLMDEV_NAME_LEN];
	unsigned int n, i, total;
	int fd2 = ld_open(0);
	size_t esz = sizeof(struct llmdev_hbm_region);
	void *ro;

	SETUP_OR_SKIP();
	ASSERT_LE(0, fd2);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, ld_hbm_alloc(self->fd, 4096 * (i + 1), 0, 0, "mine", &a[i]));
	ASSERT_EQ(0, ld_hbm_alloc(fd2, 4096, 0, 0, "other", &other));
	snprintf(name, sizeof(name), "abi-list-%d", getpid());
	ASSERT_EQ(0, ld_hbm_alloc(fd2, 4096, 0, LLMDEV_HBM_PERSISTENT, name, &pers));

	ASSERT_EQ(0, ld_hbm_list(self->fd, &r, &n));
	for (i = 0; i < 3; i++) {
		struct llmdev_hbm_region *e = ld_find_region(r, n, a[i].handle);

		ASSERT_NE(NULL, e);
		EXPECT_EQ(LLMDEV_REGION_MINE, e->flags);
		EXPECT_EQ(a[i].hbm_offset, e->hbm_offset);
		EXPECT_EQ(4096 * (i + 1), e->length);
		EXPECT_EQ(getuid(), e->owner_uid);
		EXPECT_EQ(getpid(), e->owner_pid);
		EXPECT_STREQ("mine", e->name);
	}
	/* another file's private region is invisible, persistent ones are not */
	EXPECT_EQ(NULL, ld_find_region(r, n, other.handle));
	ASSERT_NE(NULL, ld_find_region(r, n, pers.handle));
	EXPECT_EQ(LLMDEV_REGION_PERSISTENT, ld_find_region(r, n, pers.handle)->flags);
	EXPECT_STREQ(name, ld_find_region(r, n, pers.handle)->name);
	total = n;
	free(r);

	/* count 0, no array: just the number */
	memset(&l, 0, sizeof(l));
	l.size = sizeof(l);
	l.entry_size = esz;
	ASSERT_EQ(0, ld_ioctl(self->fd, LLMDEV_HBM_LIST, &l));
	EXPECT_EQ(total, l.count);

	/* count 1: one entry written, the total returned */
	memset(big, 0xa5, sizeof(big));
	l.count = 1;
	l.regions = (uintptr_t)big;
	ASSERT_EQ(0, ld_ioctl(self->fd, LLMDEV_HBM_LIST, &l));
	EXPECT_EQ(total, l.count);
	EXPECT_NE(0xa5a5a5a5u, big[0].handle);
	EXPECT_EQ(0xa5a5a5a5u, big[1].handle) TH_LOG("wrote beyond count");

	/* a larger entry_size: entries at that stride, the tail zeroed */
	if (total < 16) {
		memset(big, 0xa5, sizeof(big));
		l.count = 16;
		l.entry_size = 2 * esz;
		ASSERT_EQ(0, ld_ioctl(self->fd, LLMDEV_HBM_LIST, &l));
		EXPECT_EQ(total, l.count);
		for (i = 0; i < total; i++) {
			struct llmdev_hbm_region *e = &big[2 * i];

			EXPECT_EQ(-1, ld_nonzero(&big[2 * i + 1], esz))
				TH_LOG("entry %u: tail not zeroed", i);
			if (e->handle == a[0].handle)
				EXPECT_EQ(a[0].hbm_offset, e->hbm_offset);
		}
		EXPECT_EQ(0xa5a5a5a5u, big[2 * total].handle);
	}

	/* -EINVAL entry_size smaller than the first version */
	l.count = 16;
	l.entry_size = esz - 1;
	EXPECT_EQ(-EINVAL, ld_ioctl(self->fd, LLMDEV_HBM_LIST, &l));
	l.entry_size = 0;
	EXPECT_EQ(-EINVAL, ld_ioctl(self->fd, LLMDEV_HBM_LIST, &l));
	l.entry_size = 8;
	EXPECT_EQ(-EINVAL, ld_ioctl(self->fd, LLMDEV_HBM_LIST, &l));

	/* -EFAULT: array unmapped or read-only */
	l.entry_size = esz;
	l.regions = 8;
	EXPECT_EQ(-EFAULT, ld_ioctl(self->fd, LLMDEV_HBM_LIST, &l));
	ro = mmap(NULL, 16 * esz, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ro);
	l.regions = (uintptr_t)ro;
	EXPECT_EQ(-EFAULT, ld_ioctl(self->fd, LLMDEV_HBM_LIST, &l));
	munmap(ro, 16 * esz);
	/* a huge count with a small array: entries beyond the regions untouched */
	l.count = 0xffffffffu;
	l.regions = (uintptr_t)big;
	l.entry_size = esz;
	if (total < 32)
		EXPECT_EQ(0, ld_ioctl(self->fd, LLMDEV_HBM_LIST, &l));

	EXPECT_EQ(0, ld_hbm_free(fd2, pers.handle));
	for (i = 0; i < 3; i++)
		EXPECT_EQ(0, ld_hbm_free(self->fd, a[i].handle));
	close(fd2);
}

/* ---- HBM_OPEN ------------------------------------------------------------- */

TEST_F(card, open_errors)
{
	struct llmdev_hbm_alloc a, priv;
	struct llmdev_hbm_open o;
	char name[LLMDEV_NAME_LEN];
	int fd2 = ld_open(0);
	int ret;

	SETUP_OR_SKIP();
	ASSERT_LE(0, fd2);
	snprintf(name, sizeof(name), "abi-open-%d", getpid());
	EXPECT_EQ(-ENOENT, ld_hbm_open(self->fd, name, &o));
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 3 * 4096 + 10, 0,
				  LLMDEV_HBM_PERSISTENT, name, &a));
	ASSERT_EQ(0, ld_hbm_open(fd2, name, &o));
	EXPECT_EQ(a.handle, o.handle);
	EXPECT_EQ(4 * 4096, o.length);
	EXPECT_EQ(a.mmap_offset, o.mmap_offset);

	/* a non-persistent region cannot be opened by name */
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 4096, 0, 0, "abi-private", &priv));
	EXPECT_EQ(-ENOENT, ld_hbm_open(fd2, "abi-private", &o));
	EXPECT_EQ(-ENOENT, ld_hbm_open(self->fd, "abi-private", &o));

	/* unterminated and empty names: not listed in the header */
	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	memset(o.name, 'x', sizeof(o.name));
	ret = ld_ioctl(self->fd, LLMDEV_HBM_OPEN, &o);
	EXPECT_TRUE(ret == -EINVAL || ret == -ENOENT);
	if (ret == -EINVAL)
		TH_LOG("HBM_OPEN unterminated name -> EINVAL (header lists only ENOENT/EPERM)");
	ret = ld_hbm_open(self->fd, "", &o);
	EXPECT_TRUE(ret == -EINVAL || ret == -ENOENT);
	if (ret == -EINVAL)
		TH_LOG("HBM_OPEN empty name -> EINVAL (header lists only ENOENT/EPERM)");

	EXPECT_EQ(0, ld_hbm_free(fd2, a.handle)) TH_LOG("same uid frees through another file");
	EXPECT_EQ(-ENOENT, ld_hbm_open(self->fd, name, &o));
	EXPECT_EQ(0, ld_hbm_free(self->fd, priv.handle));
	close(fd2);
}

/* ---- DMA_SUBMIT errors ----------------------------------------------------- */

TEST_F(card, dma_errors)
{
	struct llmdev_hbm_alloc a, other;
	uint8_t *buf = ld_alloc_buf(2 * LD_PAGE);
	void *none = mmap(NULL, LD_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *ro = mmap(NULL, LD_PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd2 = ld_open(0);
	uint64_t fence;
	int status;
	int ret;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, buf);
	ASSERT_NE(MAP_FAILED, none);
	ASSERT_NE(MAP_FAILED, ro);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 2 * LD_PAGE, 0, 0, NULL, &a));
	ASSERT_EQ(0, ld_hbm_alloc(fd2, LD_PAGE, 0, 0, NULL, &other));

	/* -EINVAL: length, range, ring */
	EXPECT_EQ(-EINVAL, ld_submit(self->fd, a.handle, 0, buf, 0, true, 0, NULL));
	EXPECT_EQ(-EINVAL, ld_submit(self->fd, a.handle, 0, buf,
				     LLMDEV_DMA_MAX_LENGTH + 1, true, 0, NULL));
	EXPECT_EQ(-EINVAL, ld_submit(self->fd, a.handle, 0, buf, ~0ULL, true, 0, NULL));
	EXPECT_EQ(-EINVAL, ld_submit(self->fd, a.handle, 1, buf, 2 * LD_PAGE,
				     true, 0, NULL));
	EXPECT_EQ(-EINVAL, ld_submit(self->fd, a.handle, 2 * LD_PAGE, buf, 1,
				     true, 0, NULL));
	EXPECT_EQ(-EINVAL, ld_submit(self->fd, a.handle, ~0ULL - 10, buf, 100,
				     true, 0, NULL)) TH_LOG("offset + length overflows");
	EXPECT_EQ(-EINVAL, ld_submit(self->fd, a.handle, ~0ULL, buf, 1, false, 0, NULL));
	EXPECT_EQ(-EINVAL, ld_submit(self->fd, a.handle, 0, buf, 1, true,
				     self->info.num_h2c_rings, NULL));
	EXPECT_EQ(-EINVAL, ld_submit(self->fd, a.handle, 0, buf, 1, false,
				     self->info.num_c2h_rings, NULL));
	EXPECT_EQ(-EINVAL, ld_submit(self->fd, a.handle, 0, buf, 1, true,
				     LLMDEV_RING_ANY - 1, NULL));
	EXPECT_EQ(-EINVAL, ld_submit(self->fd, a.handle, 0, buf, 1, false, 16, NULL));

	/* -ENOENT, -EPERM */
	EXPECT_EQ(-ENOENT, ld_submit(self->fd, 0xdeadbeef, 0, buf, 1, true, 0, NULL));
	EXPECT_EQ(-ENOENT, ld_submit(self->fd, 0, 0, buf, 1, true, 0, NULL));
	EXPECT_EQ(-EPERM, ld_submit(self->fd, other.handle, 0, buf, 1, true, 0, NULL));
	EXPECT_EQ(-EPERM, ld_submit(self->fd, other.handle, 0, buf, 1, false, 0, NULL));

	/* -EFAULT: unmapped buffer, or read-only for card-to-host */
	EXPECT_EQ(-EFAULT, ld_submit(self->fd, a.handle, 0, none, 16, true, 0, NULL));
	EXPECT_EQ(-EFAULT, ld_submit(self->fd, a.handle, 0, none, 16, false, 0, NULL));
	EXPECT_EQ(-EFAULT, ld_submit(self->fd, a.handle, 0, NULL, 16, true, 0, NULL));
	EXPECT_EQ(-EFAULT, ld_submit(self->fd, a.handle, 0, ro, 16, false, 0, NULL));
	/* buffer running into the guard page */
	EXPECT_EQ(-EFAULT, ld_submit(self->fd, a.handle, 0, buf + LD_PAGE,
				     LD_PAGE + 1, true, 0, NULL));
	/* kernel address */
	EXPECT_EQ(-EFAULT, ld_submit(self->fd, a.handle, 0,
				     (void *)0xffff888000000000ULL, 16, true, 0, NULL));
	/* no fence was left behind by the failures */
	EXPECT_EQ(-ENOENT, ld_wait_any(self->fd, 0, &fence, &status));

	/* read-only memory is fine as a source */
	ret = ld_submit(self->fd, a.handle, 0, ro, 16, true, 0, &fence);
	EXPECT_EQ(0, ret) TH_LOG("host-to-card from a read-only buffer: %d", ret);
	if (!ret) {
		ASSERT_EQ(0, ld_wait(self->fd, fence, LD_LONG_WAIT, &status));
		EXPECT_EQ(0, status);
	}
	/* LLMDEV_RING_ANY and the last valid ring work; the exact end of the region */
	EXPECT_EQ(0, ld_xfer(self->fd, a.handle, 2 * LD_PAGE - 1, buf, 1, true,
			     LLMDEV_RING_ANY));
	EXPECT_EQ(0, ld_xfer(self->fd, a.handle, 0, buf, 2 * LD_PAGE, false,
			     LLMDEV_RING_ANY));
	EXPECT_EQ(0, ld_xfer(self->fd, a.handle, 0, buf, 1, true,
			     self->info.num_h2c_rings - 1));
	EXPECT_EQ(0, ld_xfer(self->fd, a.handle, 0, buf, 1, false,
			     self->info.num_c2h_rings - 1));

	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
	/* a freed region is gone */
	EXPECT_EQ(-ENOENT, ld_submit(self->fd, a.handle, 0, buf, 1, true, 0, NULL));
	close(fd2);
	ld_free_buf(buf, 2 * LD_PAGE);
	munmap(none, LD_PAGE);
	munmap(ro, LD_PAGE);
}

/* ---- FENCE_WAIT errors ------------------------------------------------------ */

TEST_F(card, wait_errors)
{
	struct llmdev_hbm_alloc a;
	uint8_t buf[256];
	uint64_t fence, f2;
	int status;
	int fd2 = ld_open(0);

	SETUP_OR_SKIP();
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-ENOENT, ld_wait(self->fd, 0, 0, &status));
	EXPECT_EQ(-ENOENT, ld_wait(self->fd, 12345678, 0, &status));
	EXPECT_EQ(-ENOENT, ld_wait(self->fd, ~0ULL, LD_NSEC_PER_SEC, &status));
	EXPECT_EQ(-ENOENT, ld_wait_any(self->fd, 0, &fence, &status));
	EXPECT_EQ(-ENOENT, ld_wait_any(self->fd, LD_NSEC_PER_SEC, &fence, &status));

	ASSERT_EQ(0, ld_hbm_alloc(self->fd, LD_PAGE, 0, 0, NULL, &a));
	ASSERT_EQ(0, ld_submit(self->fd, a.handle, 0, buf, sizeof(buf), true, 0, &fence));
	/* fences belong to the file */
	EXPECT_EQ(-ENOENT, ld_wait(fd2, fence, LD_NSEC_PER_SEC, &status));
	EXPECT_EQ(-ENOENT, ld_wait_any(fd2, 0, &f2, &status));
	status = 1;
	ASSERT_EQ(0, ld_wait(self->fd, fence, LD_LONG_WAIT, &status));
	EXPECT_EQ(0, status);
	/* consumed */
	EXPECT_EQ(-ENOENT, ld_wait(self->fd, fence, 0, &status));
	EXPECT_EQ(-ENOENT, ld_wait_any(self->fd, 0, &f2, &status));

	/* WAIT_ANY reports the fence that completed */
	ASSERT_EQ(0, ld_submit(self->fd, a.handle, 0, buf, sizeof(buf), false, 1, &fence));
	f2 = 0;
	status = 1;
	ASSERT_EQ(0, ld_wait_any(self->fd, LD_LONG_WAIT, &f2, &status));
	EXPECT_EQ(fence, f2);
	EXPECT_EQ(0, status);
	EXPECT_EQ(-ENOENT, ld_wait(self->fd, fence, 0, &status));
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
	close(fd2);
}

/* -ENOMEM, with failslab (debug kernel) */
TEST_F(card, enomem)
{
	struct llmdev_hbm_alloc a, r;
	struct llmdev_dma d;
	struct ld_failslab fs;
	uint8_t buf[64];
	uint64_t used0 = 0, used1 = 0;
	int ret, ret2;

	SETUP_OR_SKIP();
	if (access(LD_FAILSLAB, F_OK))
		SKIP(return, "no %s (needs CONFIG_FAILSLAB and debugfs: the debug kernel)",
		     LD_FAILSLAB);
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 4096, 0, 0, NULL, &r));
	ASSERT_EQ(0, ld_failslab_setup(&fs));
	ld_sysfs_u64(0, "hbm_used", &used0);

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.length = 4096;
	ret = ld_ioctl_nomem(self->fd, LLMDEV_HBM_ALLOC, &a);

	memset(&d, 0, sizeof(d));
	d.size = sizeof(d);
	d.flags = LLMDEV_DMA_TO_CARD;
	d.handle = r.handle;
	d.user_addr = (uintptr_t)buf;
	d.length = sizeof(buf);
	ret2 = ld_ioctl_nomem(self->fd, LLMDEV_DMA_SUBMIT, &d);
	ld_failslab_restore(&fs);

	EXPECT_EQ(-ENOMEM, ret);
	if (!ret)
		ld_hbm_free(self->fd, a.handle);
	ld_sysfs_u64(0, "hbm_used", &used1);
	EXPECT_EQ(used0, used1);
	EXPECT_EQ(-ENOMEM, ret2);
	if (!ret2)
		ld_wait(self->fd, d.fence, LD_LONG_WAIT, NULL);
	/* nothing half-done is left */
	EXPECT_EQ(-ENOENT, ld_wait_any(self->fd, 0, NULL, NULL));
	EXPECT_EQ(0, ld_xfer(self->fd, r.handle, 0, buf, sizeof(buf), true, 0));
	EXPECT_EQ(0, ld_hbm_free(self->fd, r.handle));
}

/* fence numbers are never reused within a file */
TEST_F(card, fences_unique)
{
	struct llmdev_hbm_alloc a;
	uint8_t buf[64];
	uint64_t seen[64];
	unsigned int i, j;

	SETUP_OR_SKIP();
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, LD_PAGE, 0, 0, NULL, &a));
	for (i = 0; i < 64; i++) {
		ASSERT_EQ(0, ld_submit(self->fd, a.handle, i, buf, 1, true, 0, &seen[i]));
		ASSERT_EQ(0, ld_wait(self->fd, seen[i], LD_LONG_WAIT, NULL));
		for (j = 0; j < i; j++)
			EXPECT_NE(seen[j], seen[i]);
	}
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
}

TEST_HARNESS_MAIN
