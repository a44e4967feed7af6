// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * Host-side tests of libllmdev: no card, no driver needed. The kernel's
 * kselftest harness (tools/testing/selftests/kselftest_harness.h) runs
 * each test in a child process of its own and prints TAP.
 *
 * The ioctls are served by a mock: this program defines ioctl(), which the
 * shared library's calls bind to, and answers the llmdev commands on one
 * descriptor (/dev/null opened through llmdev_open_path()) the way the
 * driver documents them; a test's changes to the mock's state end with
 * its child. Packaging (exports, install, pkg-config, static
 * and shared linking) is checked on the build tree this binary lives in:
 * $(O)/lib/test_llmdev_host or $(O)/host-tests/lib_host_test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <stddef.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "llmdev.h"

/*
 * An expected library error: the call returns -@e and sets errno to @e.
 * (A macro: the harness' ASSERTs need the test's _metadata.)
 */
#define ASSERT_ERR(call, e) do {					\
	int _ret, _errno;						\
									\
	errno = 0;							\
	_ret = (call);							\
	_errno = errno;							\
	ASSERT_EQ(-(e), _ret) TH_LOG("%s: errno %d", #call, _errno);	\
	ASSERT_EQ((e), _errno) TH_LOG("%s returned %d", #call, _ret);	\
} while (0)

/* ---- the mock driver ---------------------------------------------------- */

#define MOCK_MAX_SUB 64

static struct {
	int fd;			/* the descriptor served; -1: none */
	const char *bad;	/* first malformed argument seen */
	/* DMA */
	struct {
		struct llmdev_dma d;
		int status;
		int reaped;
	} sub[MOCK_MAX_SUB];
	unsigned int nsub, inflight, max_inflight;
	unsigned int limit;		/* EAGAIN beyond this many in flight */
	int fail_submit_at, fail_submit_errno;
	int fail_status_at, fail_status;
	int eintr;			/* waits to interrupt */
	int stuck;			/* ETIME for every bounded wait */
	unsigned int nwaits;
	uint64_t last_timeout;
	/* regions */
	unsigned int list_calls, nregions;
	struct llmdev_hbm_alloc last_alloc;
	/* links */
	struct llmdev_link_set last_link_set;
	/* groups: fds of group id i + 1, nranks 0 = free slot */
	struct {
		int32_t fds[LLMDEV_MAX_RANKS];
		unsigned int nranks;
	} group[4];
	/* collectives */
	struct llmdev_coll last_coll;
	struct llmdev_coll_buf last_bufs[LLMDEV_MAX_RANKS];
	/* routing table */
	struct llmdev_route_entry route[LLMDEV_ROUTE_MAX];
	unsigned int nroute, route_calls;
	uint32_t route_gen;
	int route_grow;		/* the table grows after the first GET */
	int route_dead;		/* SET fails as on a dead card */
} mock;

static void mock_reset(int fd)
{
	memset(&mock, 0, sizeof(mock));
	mock.fd = fd;
	mock.fail_submit_at = -1;
	mock.fail_status_at = -1;
}

static void mock_bad(const char *why)
{
	if (!mock.bad)
		mock.bad = why;
}

/* what copy_struct_from_user() and the reserved-field checks would see */
static void mock_check_size(const void *arg, size_t size)
{
	if (*(const __u32 *)arg != size)
		mock_bad("size is not sizeof(struct)");
}

static int mock_submit(struct llmdev_dma *d)
{
	unsigned int i = mock.nsub;

	mock_check_size(d, sizeof(*d));
	if (d->fence)
		mock_bad("dma: fence not zeroed");
	if ((int)i == mock.fail_submit_at)
		return mock.fail_submit_errno;
	if (mock.limit && mock.inflight >= mock.limit)
		return EAGAIN;
	if (i == MOCK_MAX_SUB)
		return ENOMEM;
	mock.sub[i].d = *d;
	mock.sub[i].status = (int)i == mock.fail_status_at ? mock.fail_status : 0;
	mock.nsub++;
	if (++mock.inflight > mock.max_inflight)
		mock.max_inflight = mock.inflight;
	d->fence = i + 1;
	return 0;
}

static int mock_wait(struct llmdev_fence_wait *w)
{
	unsigned int i;

	mock_check_size(w, sizeof(*w));
	if (w->status || w->__reserved || (w->flags & ~LLMDEV_WAIT_ANY))
		mock_bad("wait: status/reserved/flags not zero");
	mock.last_timeout = w->timeout_ns;
	if (++mock.nwaits > 10000) {
		mock_bad("wait: busy loop");
		mock.stuck = 0;
	}
	if (mock.eintr) {
		mock.eintr--;
		w->timeout_ns /= 2;	/* the driver stores the time left */
		return EINTR;
	}
	if (w->flags & LLMDEV_WAIT_ANY) {
		for (i = 0; i < mock.nsub && mock.sub[i].reaped; i++)
			;
	} else {
		i = w->fence - 1;
	}
	if (i >= mock.nsub || mock.sub[i].reaped)
		return ENOENT;
	if (mock.stuck && w->timeout_ns < (1ULL << 62))
		return ETIME;
	mock.sub[i].reaped = 1;
	mock.inflight--;
	w->fence = i + 1;
	w->status = mock.sub[i].status;
	return 0;
}

static int mock_list(struct llmdev_hbm_list *l)
{
	struct llmdev_hbm_region *r = (void *)(uintptr_t)l->regions;
	unsigned int i;

	mock_check_size(l, sizeof(*l));
	if (l->entry_size != sizeof(*r))
		mock_bad("list: entry_size");
	/* a region is created between the library's second and third call */
	if (++mock.list_calls == 2)
		mock.nregions++;
	for (i = 0; i < l->count && i < mock.nregions; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].handle = i + 1;
		snprintf(r[i].name, sizeof(r[i].name), "r%u", i + 1);
	}
	l->count = mock.nregions;
	return 0;
}

/* the struct of an ioctl whose fields from @from on must be zero on entry */
static void mock_check_zero(const void *arg, size_t from, size_t size,
			    const char *why)
{
	const unsigned char *p = arg;
	size_t i;

	for (i = from; i < size; i++)
		if (p[i])
			mock_bad(why);
}

static int mock_link_info(struct llmdev_link_info *l)
{
	mock_check_size(l, sizeof(*l));
	if (l->flags)
		mock_bad("link_info: flags");
	mock_check_zero(l, offsetof(struct llmdev_link_info, state), sizeof(*l),
			"link_info: outputs not zeroed");
	if (l->port >= 4)
		return EINVAL;
	l->state = LLMDEV_LINK_UP;
	l->link_flags = LLMDEV_LINK_ENABLED | LLMDEV_LINK_CABLED;
	l->peer_port = l->port ^ 1;
	l->peer_serial = 0x1000 + l->port;
	l->peer_minor = 1;
	l->tx_bytes = 100 * l->port;
	return 0;
}

static int mock_group_create(struct llmdev_group_create *c)
{
	const int32_t *fds = (const void *)(uintptr_t)c->fds;
	unsigned int i;

	mock_check_size(c, sizeof(*c));
	if (c->flags || c->group)
		mock_bad("group_create: flags/group not zeroed");
	if (!c->nranks || c->nranks > LLMDEV_MAX_RANKS)
		return EINVAL;
	for (i = 0; i < 4 && mock.group[i].nranks; i++)
		;
	if (i == 4)
		return EMFILE;
	memcpy(mock.group[i].fds, fds, c->nranks * sizeof(*fds));
	mock.group[i].nranks = c->nranks;
	c->group = i + 1;
	return 0;
}

static int mock_group_destroy(struct llmdev_group_destroy *d)
{
	mock_check_size(d, sizeof(*d));
	if (d->flags || d->__reserved)
		mock_bad("group_destroy: not zeroed");
	if (!d->group || d->group > 4 || !mock.group[d->group - 1].nranks)
		return ENOENT;
	mock.group[d->group - 1].nranks = 0;
	return 0;
}

static int mock_coll_submit(struct llmdev_coll *c)
{
	const struct llmdev_coll_buf *b = (const void *)(uintptr_t)c->bufs;
	struct llmdev_dma d = { .size = sizeof(d) };
	unsigned int n, r;
	int ret;

	mock_check_size(c, sizeof(*c));
	if (c->flags || c->fence)
		mock_bad("coll: flags/fence not zeroed");
	if (c->buf_size != sizeof(*b))
		mock_bad("coll: buf_size");
	mock.last_coll = *c;
	if (!c->group || c->group > 4 || !mock.group[c->group - 1].nranks)
		return ENOENT;
	n = mock.group[c->group - 1].nranks;
	for (r = 0; r < n; r++) {
		if (b[r].__reserved)
			mock_bad("coll: buf reserved not zeroed");
		if (b[r].fd != mock.group[c->group - 1].fds[r])
			return EINVAL;	/* not the rank's card */
		mock.last_bufs[r] = b[r];
	}
	if (!c->count || c->dtype > LLMDEV_DTYPE_I32)
		return EINVAL;
	/* a fence like a transfer's: the waits serve both */
	ret = mock_submit(&d);
	if (!ret)
		c->fence = d.fence;
	return ret;
}

static int mock_route_set(struct llmdev_route *rt)
{
	const struct llmdev_route_entry *e = (const void *)(uintptr_t)rt->entries;
	unsigned int i;

	mock_check_size(rt, sizeof(*rt));
	/* error_index comes preset as a dead card's dispatcher leaves it */
	if (rt->flags || rt->generation || rt->error_index != ~0U)
		mock_bad("route_set: not zeroed");
	if (rt->entry_size != sizeof(*e))
		mock_bad("route_set: entry_size");
	if (mock.route_dead)
		return EIO;	/* before the handler: nothing written back */
	rt->generation = mock.route_gen;
	rt->error_index = ~0U;
	if (rt->count > LLMDEV_ROUTE_MAX)
		return ENOSPC;
	for (i = 0; i < rt->count; i++) {
		if (e[i].tp_rank >= e[i].tp_size) {
			rt->error_index = i;
			return EINVAL;
		}
	}
	memcpy(mock.route, e, rt->count * sizeof(*e));
	for (i = 0; i < rt->count; i++) {
		mock.route[i].hbm_offset = 4096 * (i + 1);
		mock.route[i].length = 4096;
	}
	mock.nroute = rt->count;
	rt->generation = ++mock.route_gen;
	return 0;
}

static int mock_route_get(struct llmdev_route *rt)
{
	struct llmdev_route_entry *e = (void *)(uintptr_t)rt->entries;
	unsigned int i;

	mock_check_size(rt, sizeof(*rt));
	if (rt->flags || rt->generation || rt->error_index)
		mock_bad("route_get: not zeroed");
	if (rt->entry_size != sizeof(*e))
		mock_bad("route_get: entry_size");
	/* another table is applied between the library's first and second call */
	if (++mock.route_calls == 2 && mock.route_grow) {
		mock.route[mock.nroute] = mock.route[0];
		mock.nroute++;
		mock.route_gen++;
	}
	for (i = 0; i < rt->count && i < mock.nroute; i++)
		e[i] = mock.route[i];
	rt->count = mock.nroute;
	rt->generation = mock.route_gen;
	rt->error_index = ~0U;
	return 0;
}

static int mock_ioctl(unsigned long req, void *arg)
{
	switch (req) {
	case LLMDEV_LINK_INFO:
		return mock_link_info(arg);
	case LLMDEV_LINK_SET: {
		struct llmdev_link_set *l = arg;

		mock_check_size(arg, sizeof(*l));
		if (l->flags)
			mock_bad("link_set: flags");
		mock.last_link_set = *l;
		return l->port < 4 && l->enable <= 1 ? 0 : EINVAL;
	}
	case LLMDEV_GROUP_CREATE:
		return mock_group_create(arg);
	case LLMDEV_GROUP_DESTROY:
		return mock_group_destroy(arg);
	case LLMDEV_COLL_SUBMIT:
		return mock_coll_submit(arg);
	case LLMDEV_ROUTE_SET:
		return mock_route_set(arg);
	case LLMDEV_ROUTE_GET:
		return mock_route_get(arg);
	case LLMDEV_INFO: {
		struct llmdev_info *info = arg;
		static const struct llmdev_info zero;

		mock_check_size(arg, sizeof(*info));
		if (memcmp((char *)info + 4, (char *)&zero + 4, sizeof(*info) - 4))
			mock_bad("info: not zeroed");
		info->hbm_size = 1ULL << 34;
		return 0;
	}
	case LLMDEV_HBM_ALLOC: {
		struct llmdev_hbm_alloc *a = arg;

		mock_check_size(arg, sizeof(*a));
		if (a->handle || a->__reserved || a->hbm_offset ||
		    a->mmap_offset || a->largest_free)
			mock_bad("alloc: outputs not zeroed");
		mock.last_alloc = *a;
		if (!memchr(a->name, 0, sizeof(a->name)))
			return EINVAL;
		a->largest_free = 12345;
		if (a->length > (1ULL << 34))
			return ENOSPC;
		a->handle = 7;
		a->mmap_offset = 1ULL << 20;
		return 0;
	}
	case LLMDEV_HBM_FREE: {
		struct llmdev_hbm_free *f = arg;

		mock_check_size(arg, sizeof(*f));
		if (f->flags || f->__reserved)
			mock_bad("free: not zeroed");
		return f->handle == 7 ? 0 : ENOENT;
	}
	case LLMDEV_HBM_LIST:
		return mock_list(arg);
	case LLMDEV_HBM_OPEN: {
		struct llmdev_hbm_open *o = arg;

		mock_check_size(arg, sizeof(*o));
		if (o->flags || o->handle || o->__reserved || o->length)
			mock_bad("open: not zeroed");
		if (strcmp(o->name, "weights"))
			return ENOENT;
		o->handle = 9;
		o->length = 4096;
		return 0;
	}
	case LLMDEV_DMA_SUBMIT:
		return mock_submit(arg);
	case LLMDEV_FENCE_WAIT:
		return mock_wait(arg);
	case LLMDEV_PERF_READ: {
		struct llmdev_perf *p = arg;

		mock_check_size(arg, sizeof(*p));
		if (p->flags || p->num_counters || p->counters[0])
			mock_bad("perf: not zeroed");
		p->num_counters = LLMDEV_COUNTER_NUM;
		p->counters[LLMDEV_COUNTER_IRQS] = 3;
		return 0;
	}
	}
	return ENOTTY;
}

/* libllmdev.so's ioctl() calls bind to this one (exported, not hidden). */
__attribute__((visibility("default"))) int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;
	int e;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (mock.fd < 0 || fd != mock.fd)
		return syscall(SYS_ioctl, fd, req, arg);
	e = mock_ioctl(req, arg);
	if (e) {
		errno = e;
		return -1;
	}
	return 0;
}

/*
 * Once, before any test: no descriptor is served yet, and stdout is line
 * buffered (each test runs in a child that ends with _exit(), which would
 * drop what printf() left in the buffer).
 */
static void __attribute__((constructor)) mock_init(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	mock_reset(-1);
}

/* The mock serves self->dev: /dev/null, opened through the library. */
FIXTURE(mock) {
	struct llmdev *dev;
};

FIXTURE_SETUP(mock)
{
	ASSERT_EQ(0, llmdev_open_path("/dev/null", &self->dev));
	mock_reset(llmdev_fd(self->dev));
}

/* Every test ends with the mock having seen only well-formed arguments. */
FIXTURE_TEARDOWN(mock)
{
	EXPECT_EQ(NULL, mock.bad) TH_LOG("mock: %s", mock.bad);
	llmdev_close(self->dev);
	mock_reset(-1);
}

/* ---- API tests without a device ----------------------------------------- */

/* the exported API and the version node of each symbol */
static const struct {
	const char *name, *version;
} api[] = {
	{ "llmdev_open", "LLMDEV_1.0" },
	{ "llmdev_open_path", "LLMDEV_1.0" },
	{ "llmdev_open_pci", "LLMDEV_1.0" },
	{ "llmdev_close", "LLMDEV_1.0" },
	{ "llmdev_fd", "LLMDEV_1.0" },
	{ "llmdev_name", "LLMDEV_1.0" },
	{ "llmdev_count", "LLMDEV_1.0" },
	{ "llmdev_get_info", "LLMDEV_1.0" },
	{ "llmdev_hbm_alloc", "LLMDEV_1.0" },
	{ "llmdev_hbm_free", "LLMDEV_1.0" },
	{ "llmdev_hbm_list", "LLMDEV_1.0" },
	{ "llmdev_hbm_open", "LLMDEV_1.0" },
	{ "llmdev_hbm_map", "LLMDEV_1.0" },
	{ "llmdev_hbm_unmap", "LLMDEV_1.0" },
	{ "llmdev_dma_submit", "LLMDEV_1.0" },
	{ "llmdev_fence_wait", "LLMDEV_1.0" },
	{ "llmdev_fence_wait_any", "LLMDEV_1.0" },
	{ "llmdev_copy_to_hbm", "LLMDEV_1.0" },
	{ "llmdev_copy_from_hbm", "LLMDEV_1.0" },
	{ "llmdev_perf_read", "LLMDEV_1.0" },
	{ "llmdev_counter_name", "LLMDEV_1.0" },
	{ "llmdev_strerror", "LLMDEV_1.0" },
	{ "llmdev_link_get_info", "LLMDEV_1.1" },
	{ "llmdev_link_set_enabled", "LLMDEV_1.1" },
	{ "llmdev_group_create", "LLMDEV_1.1" },
	{ "llmdev_group_destroy", "LLMDEV_1.1" },
	{ "llmdev_allreduce_submit", "LLMDEV_1.1" },
	{ "llmdev_broadcast_submit", "LLMDEV_1.1" },
	{ "llmdev_allreduce", "LLMDEV_1.1" },
	{ "llmdev_broadcast", "LLMDEV_1.1" },
	{ "llmdev_dtype_size", "LLMDEV_1.1" },
	{ "llmdev_route_set", "LLMDEV_1.1" },
	{ "llmdev_route_get", "LLMDEV_1.1" },
	{ "llmdev_get_info_sz", "LLMDEV_1.2" },
	{ "llmdev_hbm_alloc_sz", "LLMDEV_1.2" },
	{ "llmdev_hbm_list_sz", "LLMDEV_1.2" },
	{ "llmdev_hbm_open_sz", "LLMDEV_1.2" },
	{ "llmdev_perf_read_sz", "LLMDEV_1.2" },
	{ "llmdev_link_get_info_sz", "LLMDEV_1.2" },
	{ "llmdev_route_set_sz", "LLMDEV_1.2" },
	{ "llmdev_route_get_sz", "LLMDEV_1.2" },
	{ "llmdev_reset", "LLMDEV_1.2" },
	{ "llmdev_buf_register", "LLMDEV_1.2" },
	{ "llmdev_buf_unregister", "LLMDEV_1.2" },
	{ "llmdev_dma_batch", "LLMDEV_1.2" },
	{ "llmdev_kv_create", "LLMDEV_1.3" },
	{ "llmdev_kv_destroy", "LLMDEV_1.3" },
	{ "llmdev_kv_dev", "LLMDEV_1.3" },
	{ "llmdev_kv_info", "LLMDEV_1.3" },
	{ "llmdev_kv_alloc", "LLMDEV_1.3" },
	{ "llmdev_kv_lookup", "LLMDEV_1.3" },
	{ "llmdev_kv_set_hash", "LLMDEV_1.3" },
	{ "llmdev_kv_free", "LLMDEV_1.3" },
	{ "llmdev_kv_free_seq", "LLMDEV_1.3" },
	{ "llmdev_kv_pin", "LLMDEV_1.3" },
	{ "llmdev_kv_unpin", "LLMDEV_1.3" },
	{ "llmdev_kv_prefetch", "LLMDEV_1.3" },
	{ "llmdev_kv_wait", "LLMDEV_1.3" },
	{ "llmdev_kv_evict", "LLMDEV_1.3" },
	{ "llmdev_kv_tier", "LLMDEV_1.3" },
	{ "llmdev_kv_read", "LLMDEV_1.3" },
	{ "llmdev_kv_write", "LLMDEV_1.3" },
	{ "llmdev_kv_get_stats", "LLMDEV_1.3" },
	{ "llmdev_kv_stats_read", "LLMDEV_1.3" },
};
#define API_NUM (sizeof(api) / sizeof(api[0]))

TEST(open_missing)
{
	struct llmdev *dev = NULL;
	char first[NAME_MAX + 1] = "";
	FILE *f;

	ASSERT_ERR(llmdev_open(4000000000u, &dev), ENOENT);
	ASSERT_ERR(llmdev_open_path("/nonexistent/llmdev0", &dev), ENOENT);
	ASSERT_ERR(llmdev_open_pci("0000:ff:1f.7", &dev), ENOENT);
	ASSERT_ERR(llmdev_open_pci("ff:1f.7", &dev), ENOENT);
	ASSERT_EQ(NULL, dev);

	/* a PCI device the driver is not bound to: no node, -ENOENT */
	f = popen("for d in /sys/bus/pci/devices/*; do [ -e $d/llmdev ] || "
		  "{ basename $d; break; }; done 2>/dev/null", "r");
	if (f) {
		if (!fgets(first, sizeof(first), f))
			first[0] = '\0';
		pclose(f);
	}
	first[strcspn(first, "\n")] = '\0';
	if (first[0] && first[0] != '*') {
		TH_LOG("unbound PCI device %s", first);
		ASSERT_ERR(llmdev_open_pci(first, &dev), ENOENT);
		if (!strncmp(first, "0000:", 5)) {
			ASSERT_ERR(llmdev_open_pci(first + 5, &dev), ENOENT);
		}
	}
}

TEST(null_args)
{
	struct llmdev_route_entry route[1] = { { 0 } }, *routes;
	struct llmdev_coll_buf bufs[1] = { { 0 } };
	struct llmdev_hbm_region *regions;
	struct llmdev_hbm_open open_out;
	struct llmdev_link_info link;
	struct llmdev_group *group;
	struct llmdev_info info;
	struct llmdev_perf perf;
	struct llmdev *dev, *ranks[2];
	unsigned int count;
	uint64_t fence;
	uint32_t id;
	char buf[8];
	int status;

	ASSERT_ERR(llmdev_open(0, NULL), EINVAL);
	ASSERT_ERR(llmdev_open_path(NULL, &dev), EINVAL);
	ASSERT_ERR(llmdev_open_path("/dev/null", NULL), EINVAL);
	ASSERT_ERR(llmdev_open_pci(NULL, &dev), EINVAL);
	ASSERT_ERR(llmdev_open_pci("0000:00:00.0", NULL), EINVAL);
	ASSERT_ERR(llmdev_fd(NULL), EINVAL);
	errno = 0;
	ASSERT_EQ(NULL, llmdev_name(NULL));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_ERR(llmdev_get_info(NULL, &info), EINVAL);
	ASSERT_ERR(llmdev_hbm_alloc(NULL, 4096, 0, 0, NULL, NULL), EINVAL);
	ASSERT_ERR(llmdev_hbm_free(NULL, 1), EINVAL);
	ASSERT_ERR(llmdev_hbm_list(NULL, &regions, &count), EINVAL);
	ASSERT_ERR(llmdev_hbm_open(NULL, "x", &open_out), EINVAL);
	errno = 0;
	ASSERT_EQ(NULL, llmdev_hbm_map(NULL, 0, 4096, 0));
	ASSERT_EQ(EINVAL, errno);
	ASSERT_ERR(llmdev_dma_submit(NULL, 1, 0, buf, 8, 0, 0, &fence), EINVAL);
	ASSERT_ERR(llmdev_fence_wait(NULL, 1, 0, &status), EINVAL);
	ASSERT_ERR(llmdev_fence_wait_any(NULL, 0, &fence, &status), EINVAL);
	ASSERT_ERR(llmdev_copy_to_hbm(NULL, 1, 0, buf, 8, 0), EINVAL);
	ASSERT_ERR(llmdev_copy_from_hbm(NULL, 1, 0, buf, 8, 0), EINVAL);
	ASSERT_ERR(llmdev_perf_read(NULL, &perf), EINVAL);
	ASSERT_ERR(llmdev_link_get_info(NULL, 0, &link), EINVAL);
	ASSERT_ERR(llmdev_link_set_enabled(NULL, 0, 1), EINVAL);
	ASSERT_ERR(llmdev_group_create(NULL, ranks, 1, &group), EINVAL);
	ASSERT_ERR(llmdev_allreduce_submit(NULL, bufs, 1, 0, 0, &fence),
		   EINVAL);
	ASSERT_ERR(llmdev_broadcast_submit(NULL, bufs, 1, 0, 0, &fence),
		   EINVAL);
	ASSERT_ERR(llmdev_allreduce(NULL, bufs, 1, 0, 0, 0), EINVAL);
	ASSERT_ERR(llmdev_broadcast(NULL, bufs, 1, 0, 0, 0), EINVAL);
	ASSERT_ERR(llmdev_route_set(NULL, route, 1, NULL), EINVAL);
	ASSERT_ERR(llmdev_route_get(NULL, &routes, &count, NULL), EINVAL);
	ASSERT_EQ(0, llmdev_group_destroy(NULL));
	llmdev_close(NULL);

	/* NULL outputs on a valid handle */
	ASSERT_EQ(0, llmdev_open_path("/dev/null", &dev));
	ASSERT_ERR(llmdev_get_info(dev, NULL), EINVAL);
	ASSERT_ERR(llmdev_hbm_list(dev, NULL, &count), EINVAL);
	ASSERT_ERR(llmdev_hbm_list(dev, &regions, NULL), EINVAL);
	ASSERT_ERR(llmdev_hbm_open(dev, NULL, &open_out), EINVAL);
	ASSERT_ERR(llmdev_hbm_open(dev, "x", NULL), EINVAL);
	ASSERT_ERR(llmdev_dma_submit(dev, 1, 0, buf, 8, 0, 0, NULL), EINVAL);
	ASSERT_ERR(llmdev_dma_submit(dev, 1, 0, NULL, 8, 0, 0, &fence),
		   EINVAL);
	ASSERT_ERR(llmdev_buf_register(dev, NULL, 4096, 0, &id), EINVAL);
	ASSERT_ERR(llmdev_fence_wait(dev, 1, 0, NULL), EINVAL);
	ASSERT_ERR(llmdev_fence_wait_any(dev, 0, NULL, &status), EINVAL);
	ASSERT_ERR(llmdev_fence_wait_any(dev, 0, &fence, NULL), EINVAL);
	ASSERT_ERR(llmdev_copy_to_hbm(dev, 1, 0, NULL, 8, 0), EINVAL);
	ASSERT_ERR(llmdev_copy_from_hbm(dev, 1, 0, NULL, 8, 0), EINVAL);
	ASSERT_ERR(llmdev_perf_read(dev, NULL), EINVAL);
	ASSERT_ERR(llmdev_link_get_info(dev, 0, NULL), EINVAL);
	ranks[0] = dev;
	ranks[1] = NULL;
	ASSERT_ERR(llmdev_group_create(dev, NULL, 1, &group), EINVAL);
	ASSERT_ERR(llmdev_group_create(dev, ranks, 1, NULL), EINVAL);
	ASSERT_ERR(llmdev_group_create(dev, ranks, 2, &group), EINVAL);
	ASSERT_ERR(llmdev_route_set(dev, NULL, 1, NULL), EINVAL);
	ASSERT_ERR(llmdev_route_get(dev, NULL, &count, NULL), EINVAL);
	ASSERT_ERR(llmdev_route_get(dev, &routes, NULL, NULL), EINVAL);
	llmdev_close(dev);
}

TEST(counter_names)
{
	static const char *const want[] = {
		"h2c_bytes", "c2h_bytes", "h2c_desc", "c2h_desc", "irqs",
		"aperture_rd_bytes", "aperture_wr_bytes", "errors",
		"dma_busy_ns", "scrub_bytes", "doorbells", "link_tx_bytes",
		"link_rx_bytes", "coll_ops", "coll_busy_ns",
	};
	unsigned int i;

	ASSERT_EQ(LLMDEV_COUNTER_NUM, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < LLMDEV_COUNTER_NUM; i++) {
		ASSERT_NE(NULL, llmdev_counter_name(i));
		ASSERT_STREQ(want[i], llmdev_counter_name(i));
	}
	ASSERT_EQ(NULL, llmdev_counter_name(LLMDEV_COUNTER_NUM));
	ASSERT_EQ(NULL, llmdev_counter_name(LLMDEV_MAX_COUNTERS));
	ASSERT_EQ(NULL, llmdev_counter_name(UINT_MAX));
}

TEST(count)
{
	struct stat st;
	int n = llmdev_count();

	ASSERT_LE(0, n);
	if (stat("/sys/class/llmdev", &st)) {
		ASSERT_EQ(0, n);
	}
	TH_LOG("%d card(s)", n);
}

TEST(strerror_messages)
{
	static const int specific[] = {
		ETIME, ETIMEDOUT, EIO, ECANCELED, ENOSPC, EEXIST, EAGAIN,
		ENODEV, ENOTTY, E2BIG, EPERM, ENOLINK, EHOSTUNREACH, EBUSY,
	};
	unsigned int i;

	for (i = 0; i < sizeof(specific) / sizeof(specific[0]); i++) {
		const char *s = llmdev_strerror(-specific[i]);

		ASSERT_TRUE(s);
		ASSERT_TRUE(s[0]);
		ASSERT_STRNE(strerror(specific[i]), s);
		ASSERT_STREQ(llmdev_strerror(specific[i]), s);
	}
	ASSERT_STREQ(strerror(EINVAL), llmdev_strerror(-EINVAL));
	ASSERT_STREQ(strerror(ENOENT), llmdev_strerror(-ENOENT));
	ASSERT_NE(NULL, llmdev_strerror(-100000));
}

/* A file that is not a card: every ioctl is -ENOTTY, nothing crashes. */
TEST(not_a_card)
{
	struct llmdev_hbm_region *regions = (void *)1;
	struct llmdev_route_entry *routes;
	struct llmdev_link_info link;
	struct llmdev_group *group;
	struct llmdev_info info;
	struct llmdev *dev;
	unsigned int count = 1;
	char buf[16];
	int status;

	ASSERT_EQ(0, llmdev_open_path("/dev/null", &dev));
	ASSERT_LE(0, llmdev_fd(dev));
	ASSERT_STREQ("null", llmdev_name(dev));
	ASSERT_ERR(llmdev_get_info(dev, &info), ENOTTY);
	ASSERT_ERR(llmdev_fence_wait(dev, 1, 1000, &status), ENOTTY);
	ASSERT_ERR(llmdev_hbm_list(dev, &regions, &count), ENOTTY);
	ASSERT_EQ(NULL, regions);
	ASSERT_EQ(0, count);
	ASSERT_ERR(llmdev_copy_to_hbm(dev, 1, 0, buf, sizeof(buf), 1000),
		   ENOTTY);
	ASSERT_EQ(0, llmdev_copy_from_hbm(dev, 1, 0, buf, 0, 1000));
	ASSERT_ERR(llmdev_link_get_info(dev, 0, &link), ENOTTY);
	ASSERT_ERR(llmdev_link_set_enabled(dev, 0, 1), ENOTTY);
	group = (void *)1;
	ASSERT_ERR(llmdev_group_create(dev, &dev, 1, &group), ENOTTY);
	ASSERT_EQ((void *)1, group);	/* untouched on failure */
	ASSERT_ERR(llmdev_route_set(dev, NULL, 0, NULL), ENOTTY);
	routes = (void *)1;
	ASSERT_ERR(llmdev_route_get(dev, &routes, &count, NULL), ENOTTY);
	ASSERT_EQ(NULL, routes);
	ASSERT_EQ(0, count);
	errno = 0;
	ASSERT_EQ(NULL, llmdev_hbm_map(dev, 0, 4096, PROT_READ));
	ASSERT_NE(0, errno);
	errno = 1234;
	llmdev_close(dev);
	ASSERT_EQ(1234, errno);
}

/* ---- against the mock --------------------------------------------------- */

TEST_F(mock, structs)
{
	struct llmdev_hbm_alloc a;
	struct llmdev_hbm_open o;
	struct llmdev_info info;
	struct llmdev_perf perf;

	memset(&info, 0xa5, sizeof(info));
	ASSERT_EQ(0, llmdev_get_info(self->dev, &info));
	ASSERT_EQ(sizeof(info), info.size);
	ASSERT_EQ(1ULL << 34, info.hbm_size);

	memset(&a, 0xa5, sizeof(a));
	ASSERT_EQ(0, llmdev_hbm_alloc(self->dev, 8192, 0, LLMDEV_HBM_PERSISTENT,
				      "weights", &a));
	ASSERT_EQ(7, a.handle);
	ASSERT_EQ(1ULL << 20, a.mmap_offset);
	ASSERT_EQ(8192, mock.last_alloc.length);
	ASSERT_EQ(0, mock.last_alloc.align);
	ASSERT_EQ(LLMDEV_HBM_PERSISTENT, mock.last_alloc.flags);
	ASSERT_STREQ("weights", mock.last_alloc.name);
	ASSERT_EQ(0, llmdev_hbm_alloc(self->dev, 4096, 0, 0, NULL, NULL));
	ASSERT_EQ('\0', mock.last_alloc.name[0]);

	memset(&a, 0, sizeof(a));
	ASSERT_ERR(llmdev_hbm_alloc(self->dev, 1ULL << 40, 0, 0, NULL, &a),
		   ENOSPC);
	ASSERT_EQ(12345, a.largest_free);
	/* 32 characters do not fit: the driver sees no terminator */
	ASSERT_ERR(llmdev_hbm_alloc(self->dev, 4096, 0, 0,
				    "0123456789abcdef0123456789abcdef", NULL),
		   EINVAL);
	ASSERT_EQ(0, llmdev_hbm_alloc(self->dev, 4096, 0, 0,
				      "0123456789abcdef0123456789abcde", NULL));

	ASSERT_EQ(0, llmdev_hbm_free(self->dev, 7));
	ASSERT_ERR(llmdev_hbm_free(self->dev, 8), ENOENT);
	memset(&o, 0xa5, sizeof(o));
	ASSERT_EQ(0, llmdev_hbm_open(self->dev, "weights", &o));
	ASSERT_EQ(9, o.handle);
	ASSERT_EQ(4096, o.length);
	ASSERT_ERR(llmdev_hbm_open(self->dev, "other", &o), ENOENT);
	memset(&perf, 0xa5, sizeof(perf));
	ASSERT_EQ(0, llmdev_perf_read(self->dev, &perf));
	ASSERT_EQ(LLMDEV_COUNTER_NUM, perf.num_counters);
	ASSERT_EQ(3, perf.counters[LLMDEV_COUNTER_IRQS]);
	ASSERT_EQ(0, perf.counters[0]);
}

TEST_F(mock, list_grows)
{
	struct llmdev_hbm_region *r;
	unsigned int count, i;

	mock.nregions = 2;
	ASSERT_EQ(0, llmdev_hbm_list(self->dev, &r, &count));
	ASSERT_EQ(3, mock.list_calls);
	ASSERT_EQ(3, count);
	for (i = 0; i < count; i++) {
		ASSERT_EQ(i + 1, r[i].handle);
	}
	ASSERT_STREQ("r3", r[2].name);
	free(r);

	mock_reset(llmdev_fd(self->dev));	/* no regions: one call, NULL */
	mock.list_calls = 5;
	ASSERT_EQ(0, llmdev_hbm_list(self->dev, &r, &count));
	ASSERT_EQ(NULL, r);
	ASSERT_EQ(0, count);
}

TEST_F(mock, fence_wait)
{
	uint64_t fence, f;
	int status = 1;
	char buf[64];

	ASSERT_EQ(0, llmdev_dma_submit(self->dev, 3, 128, buf, sizeof(buf),
				       LLMDEV_DMA_TO_CARD, 1, &fence));
	ASSERT_EQ(1, fence);
	ASSERT_EQ(3, mock.sub[0].d.handle);
	ASSERT_EQ(128, mock.sub[0].d.offset);
	ASSERT_EQ((uintptr_t)buf, mock.sub[0].d.user_addr);
	ASSERT_EQ(sizeof(buf), mock.sub[0].d.length);
	ASSERT_EQ(LLMDEV_DMA_TO_CARD, mock.sub[0].d.flags);
	ASSERT_EQ(1, mock.sub[0].d.ring);

	/* interrupted three times: resumed with the time the driver left */
	mock.eintr = 3;
	mock.sub[0].status = -ETIMEDOUT;
	ASSERT_EQ(0, llmdev_fence_wait(self->dev, fence, 8000, &status));
	ASSERT_EQ(-ETIMEDOUT, status);
	ASSERT_EQ(1000, mock.last_timeout);
	ASSERT_ERR(llmdev_fence_wait(self->dev, fence, 0, &status), ENOENT);

	ASSERT_EQ(0, llmdev_dma_submit(self->dev, 3, 0, buf, 1, 0,
				       LLMDEV_RING_ANY, &fence));
	mock.stuck = 1;
	ASSERT_ERR(llmdev_fence_wait(self->dev, fence, 0, &status), ETIME);
	ASSERT_ERR(llmdev_fence_wait_any(self->dev, 0, &f, &status), ETIME);
	mock.stuck = 0;
	mock.eintr = 1;
	ASSERT_EQ(0, llmdev_fence_wait_any(self->dev, 1000, &f, &status));
	ASSERT_EQ(fence, f);
	ASSERT_EQ(0, status);
	ASSERT_ERR(llmdev_fence_wait_any(self->dev, 0, &f, &status), ENOENT);
}

TEST_F(mock, links)
{
	struct llmdev_link_info l;

	memset(&l, 0xa5, sizeof(l));
	ASSERT_EQ(0, llmdev_link_get_info(self->dev, 2, &l));
	ASSERT_EQ(sizeof(l), l.size);
	ASSERT_EQ(0, l.flags);
	ASSERT_EQ(2, l.port);
	ASSERT_EQ(LLMDEV_LINK_UP, l.state);
	ASSERT_EQ(3, l.peer_port);
	ASSERT_EQ(0x1002, l.peer_serial);
	ASSERT_EQ(1, l.peer_minor);
	ASSERT_EQ(200, l.tx_bytes);
	ASSERT_ERR(llmdev_link_get_info(self->dev, 4, &l), EINVAL);

	ASSERT_EQ(0, llmdev_link_set_enabled(self->dev, 3, 0));
	ASSERT_EQ(3, mock.last_link_set.port);
	ASSERT_EQ(0, mock.last_link_set.enable);
	ASSERT_EQ(0, llmdev_link_set_enabled(self->dev, 1, 1));
	ASSERT_EQ(1, mock.last_link_set.port);
	ASSERT_EQ(1, mock.last_link_set.enable);
	/* the driver, not the library, rejects a bad enable */
	ASSERT_ERR(llmdev_link_set_enabled(self->dev, 1, 2), EINVAL);
	ASSERT_EQ(2, mock.last_link_set.enable);
}

/* Three more handles on /dev/null stand for the other cards of a group. */
TEST_F(mock, group)
{
	struct llmdev *other[3], *ranks[LLMDEV_MAX_RANKS + 1];
	struct llmdev_group *g[5], *g2;
	struct llmdev_coll_buf bufs[2] = { { 0 } };
	unsigned int i;
	uint64_t fence;

	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, llmdev_open_path("/dev/null", &other[i]));
	}
	ranks[0] = other[1];
	ranks[1] = self->dev;
	ranks[2] = other[0];
	ASSERT_EQ(0, llmdev_group_create(self->dev, ranks, 3, &g[0]));
	ASSERT_EQ(3, mock.group[0].nranks);
	ASSERT_EQ(llmdev_fd(other[1]), mock.group[0].fds[0]);
	ASSERT_EQ(llmdev_fd(self->dev), mock.group[0].fds[1]);
	ASSERT_EQ(llmdev_fd(other[0]), mock.group[0].fds[2]);

	/* the driver checks nranks; on failure nothing is returned */
	g2 = (void *)1;
	ASSERT_ERR(llmdev_group_create(self->dev, ranks, 0, &g2), EINVAL);
	for (i = 0; i <= LLMDEV_MAX_RANKS; i++)
		ranks[i] = other[i % 3];
	ASSERT_ERR(llmdev_group_create(self->dev, ranks, LLMDEV_MAX_RANKS + 1,
				       &g2), EINVAL);
	ASSERT_EQ((void *)1, g2);
	ASSERT_EQ(0, llmdev_group_create(self->dev, ranks, LLMDEV_MAX_RANKS,
					 &g[1]));
	ASSERT_EQ(LLMDEV_MAX_RANKS, mock.group[1].nranks);
	ASSERT_EQ(0, llmdev_group_create(self->dev, ranks, 1, &g[2]));
	ASSERT_EQ(0, llmdev_group_create(self->dev, ranks, 2, &g[3]));
	ASSERT_ERR(llmdev_group_create(self->dev, ranks, 2, &g[4]), EMFILE);

	ASSERT_EQ(0, llmdev_group_destroy(g[1]));
	ASSERT_EQ(0, mock.group[1].nranks);
	ASSERT_EQ(0, llmdev_group_create(self->dev, ranks, 2, &g[1]));
	/* the driver lost the group (e.g. a second destroy): memory freed anyway */
	mock.group[2].nranks = 0;
	ASSERT_ERR(llmdev_group_destroy(g[2]), ENOENT);
	for (i = 0; i < 4; i++) {
		if (i != 2) {
			ASSERT_EQ(0, llmdev_group_destroy(g[i]));
		}
	}

	/*
	 * Handles closed before their groups are destroyed: the groups keep
	 * them from being freed (run under ASan or valgrind to see it) and
	 * answer -EBADF, and nothing reaches another file that got the fd.
	 */
	ranks[0] = other[0];
	ranks[1] = other[1];
	mock.fd = llmdev_fd(other[2]);
	ASSERT_EQ(0, llmdev_group_create(other[2], ranks, 2, &g[0]));
	ASSERT_EQ(0, llmdev_group_create(other[2], ranks, 1, &g[1]));
	llmdev_close(other[2]);
	llmdev_close(other[1]);
	/* the new files get the old descriptors; the mock serves them */
	ASSERT_EQ(0, llmdev_open_path("/dev/null", &other[1]));
	ASSERT_EQ(0, llmdev_open_path("/dev/null", &other[2]));
	mock.fd = llmdev_fd(other[2]);
	ASSERT_ERR(llmdev_allreduce_submit(g[1], bufs, 1, LLMDEV_DTYPE_F32,
					   LLMDEV_REDOP_SUM, &fence), EBADF);
	ASSERT_ERR(llmdev_group_destroy(g[0]), EBADF);
	ASSERT_ERR(llmdev_group_destroy(g[1]), EBADF);
	ASSERT_EQ(2, mock.group[0].nranks);
	ASSERT_EQ(1, mock.group[1].nranks);
	mock.fd = llmdev_fd(self->dev);
	for (i = 0; i < 3; i++)
		llmdev_close(other[i]);
}

TEST_F(mock, coll)
{
	struct llmdev_coll_buf bufs[2];
	struct llmdev *other, *ranks[2];
	struct llmdev_group *g;
	uint64_t fence;
	int status;

	ASSERT_EQ(0, llmdev_open_path("/dev/null", &other));
	ranks[0] = other;
	ranks[1] = self->dev;
	ASSERT_EQ(0, llmdev_group_create(self->dev, ranks, 2, &g));

	/* the caller's fd and __reserved are not used: the library's are */
	memset(bufs, 0xa5, sizeof(bufs));
	bufs[0].src_handle = 1;
	bufs[0].dst_handle = 2;
	bufs[0].src_offset = 4096;
	bufs[0].dst_offset = 8192;
	bufs[1].src_handle = 3;
	bufs[1].dst_handle = 3;
	bufs[1].src_offset = 0;
	bufs[1].dst_offset = 0;
	ASSERT_EQ(0, llmdev_allreduce_submit(g, bufs, 1000, LLMDEV_DTYPE_BF16,
					     LLMDEV_REDOP_MAX, &fence));
	ASSERT_EQ(1, fence);
	ASSERT_EQ(1, mock.last_coll.group);
	ASSERT_EQ(LLMDEV_COLL_ALLREDUCE, mock.last_coll.op);
	ASSERT_EQ(LLMDEV_DTYPE_BF16, mock.last_coll.dtype);
	ASSERT_EQ(LLMDEV_REDOP_MAX, mock.last_coll.redop);
	ASSERT_EQ(0, mock.last_coll.root);
	ASSERT_EQ(1000, mock.last_coll.count);
	ASSERT_EQ(llmdev_fd(other), mock.last_bufs[0].fd);
	ASSERT_EQ(llmdev_fd(self->dev), mock.last_bufs[1].fd);
	ASSERT_EQ(1, mock.last_bufs[0].src_handle);
	ASSERT_EQ(2, mock.last_bufs[0].dst_handle);
	ASSERT_EQ(4096, mock.last_bufs[0].src_offset);
	ASSERT_EQ(8192, mock.last_bufs[0].dst_offset);
	ASSERT_EQ(3, mock.last_bufs[1].src_handle);
	ASSERT_EQ(0, mock.last_bufs[1].dst_offset);
	ASSERT_EQ(0, llmdev_fence_wait(self->dev, fence, 1000, &status));
	ASSERT_EQ(0, status);

	ASSERT_EQ(0, llmdev_broadcast_submit(g, bufs, 7, LLMDEV_DTYPE_I32, 1,
					     &fence));
	ASSERT_EQ(LLMDEV_COLL_BROADCAST, mock.last_coll.op);
	ASSERT_EQ(1, mock.last_coll.root);
	ASSERT_EQ(0, mock.last_coll.redop);
	ASSERT_EQ(7, mock.last_coll.count);
	ASSERT_EQ(LLMDEV_DTYPE_I32, mock.last_coll.dtype);
	ASSERT_EQ(0, llmdev_fence_wait(self->dev, fence, 1000, &status));

	/* synchronous: submit errors, the fence status, interrupted waits */
	ASSERT_ERR(llmdev_allreduce(g, bufs, 0, LLMDEV_DTYPE_F32, LLMDEV_REDOP_SUM,
				    1000), EINVAL);
	mock.fail_status_at = mock.nsub;
	mock.fail_status = -ENOLINK;
	ASSERT_ERR(llmdev_allreduce(g, bufs, 5, LLMDEV_DTYPE_F32, LLMDEV_REDOP_SUM,
				    1000), ENOLINK);
	ASSERT_EQ(0, mock.inflight);
	mock.eintr = 2;
	ASSERT_EQ(0, llmdev_broadcast(g, bufs, 5, LLMDEV_DTYPE_F16, 0, 1000));
	ASSERT_EQ(LLMDEV_COLL_BROADCAST, mock.last_coll.op);
	ASSERT_EQ(0, mock.inflight);
	/* timeout: -ETIME, but only after the collective has ended */
	mock.stuck = 1;
	ASSERT_ERR(llmdev_allreduce(g, bufs, 5, LLMDEV_DTYPE_F32, LLMDEV_REDOP_MIN,
				    1000), ETIME);
	ASSERT_EQ(0, mock.inflight);
	mock.stuck = 0;

	/* a group the driver no longer knows */
	mock.group[0].nranks = 0;
	ASSERT_ERR(llmdev_allreduce_submit(g, bufs, 5, LLMDEV_DTYPE_F32,
					   LLMDEV_REDOP_SUM, &fence), ENOENT);
	mock.group[0].nranks = 2;
	ASSERT_ERR(llmdev_allreduce_submit(g, NULL, 5, 0, 0, &fence), EINVAL);
	ASSERT_ERR(llmdev_allreduce_submit(g, bufs, 5, 0, 0, NULL), EINVAL);
	ASSERT_ERR(llmdev_broadcast(g, NULL, 5, 0, 0, 1000), EINVAL);
	ASSERT_EQ(0, llmdev_group_destroy(g));
	llmdev_close(other);
}

TEST_F(mock, route)
{
	struct llmdev_route_entry e[LLMDEV_ROUTE_MAX + 1], *got;
	struct llmdev_route out;
	unsigned int count, i;
	uint32_t gen = 0;

	memset(e, 0, sizeof(e));
	for (i = 0; i <= LLMDEV_ROUTE_MAX; i++) {
		e[i].layer_first = i;
		e[i].layer_last = i;
		e[i].tp_size = 1;
		e[i].handle = 10 + i;
		e[i].next_hop = LLMDEV_HOP_HOST;
	}
	memset(&out, 0xa5, sizeof(out));
	ASSERT_EQ(0, llmdev_route_set(self->dev, e, 3, &out));
	ASSERT_EQ(1, out.generation);
	ASSERT_EQ(~0U, out.error_index);
	ASSERT_EQ(0, llmdev_route_get(self->dev, &got, &count, &gen));
	ASSERT_EQ(3, count);
	ASSERT_EQ(1, gen);
	for (i = 0; i < count; i++) {
		ASSERT_EQ(10 + i, got[i].handle);
		ASSERT_EQ(i, got[i].layer_first);
		ASSERT_EQ(4096 * (i + 1), got[i].hbm_offset);
		ASSERT_EQ(4096, got[i].length);
	}
	free(got);

	/* rejected: out says which entry; the table stays */
	e[1].tp_rank = 1;
	ASSERT_ERR(llmdev_route_set(self->dev, e, 3, &out), EINVAL);
	ASSERT_EQ(1, out.error_index);
	ASSERT_EQ(1, out.generation);
	e[1].tp_rank = 0;
	ASSERT_ERR(llmdev_route_set(self->dev, e, LLMDEV_ROUTE_MAX + 1, &out),
		   ENOSPC);
	ASSERT_EQ(0, llmdev_route_set(self->dev, e, LLMDEV_ROUTE_MAX, NULL));
	mock.route_calls = 0;
	ASSERT_EQ(0, llmdev_route_get(self->dev, &got, &count, NULL));
	ASSERT_EQ(LLMDEV_ROUTE_MAX, count);
	ASSERT_EQ(2, mock.route_calls);
	ASSERT_EQ(10 + LLMDEV_ROUTE_MAX - 1, got[LLMDEV_ROUTE_MAX - 1].handle);
	free(got);

	/* the table grows between sizing and reading: asked again */
	ASSERT_EQ(0, llmdev_route_set(self->dev, e, 2, NULL));
	mock.route_calls = 0;
	mock.route_grow = 1;
	ASSERT_EQ(0, llmdev_route_get(self->dev, &got, &count, &gen));
	ASSERT_EQ(3, mock.route_calls);
	ASSERT_EQ(3, count);
	ASSERT_EQ(4, gen);
	ASSERT_EQ(10, got[2].handle);
	free(got);
	mock.route_grow = 0;

	/* a dead card: the driver never saw the table, no entry is blamed */
	mock.route_dead = 1;
	memset(&out, 0xa5, sizeof(out));
	ASSERT_ERR(llmdev_route_set(self->dev, e, 2, &out), EIO);
	ASSERT_EQ(~0U, out.error_index);
	ASSERT_EQ(0, out.generation);
	mock.route_dead = 0;

	/* cleared: no array */
	ASSERT_EQ(0, llmdev_route_set(self->dev, NULL, 0, &out));
	ASSERT_EQ(5, out.generation);
	got = (void *)1;
	ASSERT_EQ(0, llmdev_route_get(self->dev, &got, &count, NULL));
	ASSERT_EQ(NULL, got);
	ASSERT_EQ(0, count);
}

TEST(dtype_size)
{
	ASSERT_EQ(4, llmdev_dtype_size(LLMDEV_DTYPE_F32));
	ASSERT_EQ(4, llmdev_dtype_size(LLMDEV_DTYPE_I32));
	ASSERT_EQ(2, llmdev_dtype_size(LLMDEV_DTYPE_F16));
	ASSERT_EQ(2, llmdev_dtype_size(LLMDEV_DTYPE_BF16));
	ASSERT_EQ(0, llmdev_dtype_size(LLMDEV_DTYPE_I32 + 1));
	ASSERT_EQ(0, llmdev_dtype_size(UINT32_MAX));
}

#define GiB (1ULL << 30)
/* never dereferenced: the mock does not touch user memory */
#define FAKE_BUF ((char *)(uintptr_t)0x10000000)

TEST_F(mock, copy_split)
{
	uint64_t len = 2 * GiB + GiB / 2 + 3;
	unsigned int i;

	ASSERT_EQ(0, llmdev_copy_to_hbm(self->dev, 5, 4096, FAKE_BUF, len,
					1000000000));
	ASSERT_EQ(3, mock.nsub);
	ASSERT_EQ(0, mock.inflight);
	ASSERT_EQ(3, mock.max_inflight);
	for (i = 0; i < 3; i++) {
		struct llmdev_dma *d = &mock.sub[i].d;

		ASSERT_EQ(5, d->handle);
		ASSERT_EQ(LLMDEV_DMA_TO_CARD, d->flags);
		ASSERT_EQ(LLMDEV_RING_ANY, d->ring);
		ASSERT_EQ(4096 + i * GiB, d->offset);
		ASSERT_EQ((uintptr_t)FAKE_BUF + i * GiB, d->user_addr);
		ASSERT_EQ((i < 2 ? GiB : GiB / 2 + 3), d->length);
	}

	mock_reset(llmdev_fd(self->dev));
	ASSERT_EQ(0, llmdev_copy_from_hbm(self->dev, 5, 0, FAKE_BUF, 100,
					  1000000000));
	ASSERT_EQ(1, mock.nsub);
	ASSERT_EQ(0, mock.sub[0].d.flags);
	ASSERT_EQ(100, mock.sub[0].d.length);
	ASSERT_EQ(0, mock.inflight);

	/* more chunks than the window, and fences running out (-EAGAIN) */
	mock_reset(llmdev_fd(self->dev));
	mock.limit = 2;
	ASSERT_EQ(0, llmdev_copy_from_hbm(self->dev, 5, 0, FAKE_BUF, 40 * GiB,
					  1000000000));
	ASSERT_EQ(40, mock.nsub);
	ASSERT_EQ(2, mock.max_inflight);
	ASSERT_EQ(0, mock.inflight);
	ASSERT_EQ(39 * GiB, mock.sub[39].d.offset);
	mock_reset(llmdev_fd(self->dev));
	ASSERT_EQ(0, llmdev_copy_from_hbm(self->dev, 5, 0, FAKE_BUF, 40 * GiB,
					  1000000000));
	ASSERT_EQ(40, mock.nsub);
	ASSERT_EQ(16, mock.max_inflight);
	ASSERT_EQ(0, mock.inflight);
}

TEST_F(mock, copy_errors)
{
	/* the second transfer fails: its error, all five reaped */
	mock.fail_status_at = 1;
	mock.fail_status = -EIO;
	ASSERT_ERR(llmdev_copy_to_hbm(self->dev, 5, 0, FAKE_BUF, 5 * GiB,
				      1000000000), EIO);
	ASSERT_EQ(5, mock.nsub);
	ASSERT_EQ(0, mock.inflight);

	/* the third cannot be submitted: the two in flight are reaped */
	mock_reset(llmdev_fd(self->dev));
	mock.fail_submit_at = 2;
	mock.fail_submit_errno = EFAULT;
	ASSERT_ERR(llmdev_copy_to_hbm(self->dev, 5, 0, FAKE_BUF, 5 * GiB,
				      1000000000), EFAULT);
	ASSERT_EQ(2, mock.nsub);
	ASSERT_EQ(0, mock.inflight);

	/* ...but an earlier transfer's failure comes first */
	mock_reset(llmdev_fd(self->dev));
	mock.fail_submit_at = 2;
	mock.fail_submit_errno = EFAULT;
	mock.fail_status_at = 0;
	mock.fail_status = -ECANCELED;
	ASSERT_ERR(llmdev_copy_to_hbm(self->dev, 5, 0, FAKE_BUF, 5 * GiB,
				      1000000000), ECANCELED);
	ASSERT_EQ(0, mock.inflight);

	/* -EAGAIN with nothing of ours in flight is the caller's problem */
	mock_reset(llmdev_fd(self->dev));
	mock.fail_submit_at = 0;
	mock.fail_submit_errno = EAGAIN;
	ASSERT_ERR(llmdev_copy_to_hbm(self->dev, 5, 0, FAKE_BUF, 5 * GiB,
				      1000000000), EAGAIN);

	/* timeout: -ETIME, but only after every transfer has finished */
	mock_reset(llmdev_fd(self->dev));
	mock.stuck = 1;
	ASSERT_ERR(llmdev_copy_from_hbm(self->dev, 5, 0, FAKE_BUF, 3 * GiB,
					1000), ETIME);
	ASSERT_EQ(3, mock.nsub);
	ASSERT_EQ(0, mock.inflight);
}

/* ---- the build products ------------------------------------------------- */

static int run(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int ret;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ret = system(cmd);
	if (ret)
		printf("# command failed (%d): %s\n", ret, cmd);
	return ret;
}

static int have(const char *tool)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

/* self->dir: $(O), two levels above this binary (see the top of the file) */
FIXTURE(build) {
	char dir[PATH_MAX];
};

FIXTURE_SETUP(build)
{
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	ASSERT_LT(0, len);
	exe[len] = '\0';
	snprintf(self->dir, sizeof(self->dir), "%s", dirname(dirname(exe)));
}

FIXTURE_TEARDOWN(build)
{
}

TEST_F(build, exports)
{
	char cmd[PATH_MAX + 128], line[256];
	unsigned int n = 0, i;
	int found[API_NUM] = { 0 };
	FILE *f;

	if (!have("nm"))
		SKIP(return, "nm not installed");
	snprintf(cmd, sizeof(cmd),
		 "nm -D --defined-only %s/lib/libllmdev.so.1", self->dir);
	f = popen(cmd, "r");
	ASSERT_TRUE(f);
	while (fgets(line, sizeof(line), f)) {
		char type, name[200], *ver;

		line[strcspn(line, "\n")] = '\0';
		/* "0000000000001234 T llmdev_open@@LLMDEV_1.0" */
		if (sscanf(line, "%*s %c %199s", &type, name) != 2)
			continue;
		if (type == 'A' && !strncmp(name, "LLMDEV_1.", 9))
			continue;	/* the version nodes themselves */
		ver = strstr(name, "@@");
		if (!ver) {
			TH_LOG("unversioned export: %s", line);
			n = 1000;
			continue;
		}
		*ver = '\0';
		ver += 2;
		for (i = 0; i < API_NUM && strcmp(api[i].name, name); i++)
			;
		if (i == API_NUM || type != 'T') {
			TH_LOG("export not in the API: %s", line);
			n = 1000;
			continue;
		}
		if (strcmp(ver, api[i].version)) {
			TH_LOG("%s is in %s, want %s", name, ver, api[i].version);
			n = 1000;
			continue;
		}
		found[i]++;
		n++;
	}
	ASSERT_EQ(0, pclose(f));
	for (i = 0; i < API_NUM; i++)
		if (found[i] != 1)
			TH_LOG("%s exported %d times", api[i].name, found[i]);
	ASSERT_EQ(API_NUM, n);
}

TEST_F(build, symlinks)
{
	char p[PATH_MAX + 32], t[64];
	ssize_t len;

	snprintf(p, sizeof(p), "%s/lib/libllmdev.so", self->dir);
	len = readlink(p, t, sizeof(t) - 1);
	ASSERT_LT(0, len);
	t[len] = '\0';
	ASSERT_STREQ("libllmdev.so.1", t);
	snprintf(p, sizeof(p), "%s/lib/libllmdev.so.1", self->dir);
	len = readlink(p, t, sizeof(t) - 1);
	ASSERT_LT(0, len);
	t[len] = '\0';
	ASSERT_STREQ("libllmdev.so." LIB_VERSION, t);
	if (have("objdump")) {
		ASSERT_EQ(0, run("objdump -p %s/lib/libllmdev.so." LIB_VERSION " | "
				 "grep -q 'SONAME *libllmdev.so.1$'", self->dir));
	}
}

/*
 * Install into a scratch DESTDIR, then build a program with the flags
 * pkg-config gives for the installed llmdev.pc, once against the static
 * archive and once against the shared library, and run both.
 */
TEST_F_TIMEOUT(build, install_pkgconfig, 300)
{
	static const char prog[] =
		"#include <errno.h>\n"
		"#include <string.h>\n"
		"#include <llmdev.h>\n"
		"int main(void)\n{\n"
		"	struct llmdev *dev;\n"
		"	if (strcmp(llmdev_counter_name(LLMDEV_COUNTER_IRQS), \"irqs\"))\n"
		"		return 1;\n"
		"	if (llmdev_dtype_size(LLMDEV_DTYPE_BF16) != 2)\n"
		"		return 1;\n"
		"	return llmdev_open_path(\"/nonexistent\", &dev) == -ENOENT &&\n"
		"	       errno == ENOENT ? 0 : 1;\n"
		"}\n";
	char tmp[] = "/tmp/llmdev-host-test.XXXXXX", env[2 * PATH_MAX];
	const char *cc = getenv("CC") ? getenv("CC") : "cc";
	struct stat st;
	FILE *f;
	int ret = 1;

	if (stat(LLMDEV_SRC "/Makefile", &st))
		SKIP(return, "source tree %s not found", LLMDEV_SRC);
	if (!have("make") || !have("pkg-config") || !have(cc))
		SKIP(return, "needs make, pkg-config and %s", cc);
	ASSERT_TRUE(mkdtemp(tmp));
	snprintf(env, sizeof(env), "PKG_CONFIG_PATH=%s/usr/lib/pkgconfig "
		 "PKG_CONFIG_SYSROOT_DIR=%s PKG_CONFIG_LIBDIR=/nonexistent",
		 tmp, tmp);

	/* a make of its own, not a child of the one running `make check` */
	if (run("env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL "
		"make -s --no-print-directory -C %s O=%s install DESTDIR=%s "
		"PREFIX=/usr >/dev/null", LLMDEV_SRC, self->dir, tmp))
		goto out;
	if (run("cd %s/usr && test -f include/llmdev.h && "
		"test -f include/llmdev-uapi.h && test -f lib/libllmdev.a && "
		"test -f lib/libllmdev.so." LIB_VERSION " && "
		"test \"$(readlink lib/libllmdev.so.1)\" = libllmdev.so." LIB_VERSION " && "
		"test \"$(readlink lib/libllmdev.so)\" = libllmdev.so.1 && "
		"grep -qx 'prefix=/usr' lib/pkgconfig/llmdev.pc", tmp))
		goto out;
	if (run("%s pkg-config --exists --print-errors llmdev && "
		"%s pkg-config --cflags llmdev | grep -q -- '-I%s/usr/include' && "
		"%s pkg-config --libs llmdev | grep -q -- '-lllmdev'",
		env, env, tmp, env))
		goto out;

	{
		char path[PATH_MAX + 16];

		snprintf(path, sizeof(path), "%s/prog.c", tmp);
		f = fopen(path, "w");
		if (!f)
			goto out;
		fputs(prog, f);
		fclose(f);
	}
	/* static: -Wl,-Bstatic makes -lllmdev pick libllmdev.a */
	if (run("cd %s && %s -Wall -Werror -o prog-static prog.c "
		"$(%s pkg-config --cflags llmdev) -Wl,-Bstatic "
		"$(%s pkg-config --libs llmdev) -Wl,-Bdynamic && ./prog-static && "
		"! (nm -D prog-static 2>/dev/null | grep -q ' U llmdev_')",
		tmp, cc, env, env))
		goto out;
	if (run("cd %s && %s -Wall -Werror -o prog-shared prog.c "
		"$(%s pkg-config --cflags --libs llmdev) && "
		"LD_LIBRARY_PATH=%s/usr/lib ./prog-shared",
		tmp, cc, env, tmp))
		goto out;
	ret = 0;
out:
	run("rm -rf %s", tmp);
	ASSERT_EQ(0, ret) TH_LOG("a step failed: see the command above");
}

TEST_HARNESS_MAIN
