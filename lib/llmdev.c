// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * libllmdev: wrappers around the llmdev ioctls. The driver validates the
 * arguments; this file only fills in the structs, names and finds devices,
 * and builds the synchronous copies on submit + wait. See llmdev.h.
 */
#define _GNU_SOURCE
#define _FILE_OFFSET_BITS 64	/* 64-bit mmap offsets on 32-bit hosts too */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "llmdev.h"

#define LLMDEV_SYSFS_CLASS	"/sys/class/llmdev"
#define LLMDEV_SYSFS_PCI	"/sys/bus/pci/devices"
/* transfers one llmdev_copy_*() keeps in flight (of LLMDEV_MAX_FENCES) */
#define LLMDEV_COPY_WINDOW	16

/*
 * A handle. Its groups point at it, and may be destroyed after it is
 * closed: llmdev_close() closes the file and marks it so (fd -1), and the
 * memory goes with the last of handle and groups (refs).
 */
struct llmdev {
	int fd;
	unsigned int refs;
	char name[NAME_MAX + 1];
};

#define offsetofend(type, member) \
	(offsetof(type, member) + sizeof(((type *)0)->member))

/*
 * The size of each struct's first version: all that a caller built against
 * the oldest header has. The plain calls write no more than this, whatever
 * this library's header says now; the _sz calls write what the caller says
 * it has. (A struct grows only by appending fields.)
 */
#define LLMDEV_INFO_V0		offsetofend(struct llmdev_info, irq_vectors)
#define LLMDEV_HBM_ALLOC_V0	offsetofend(struct llmdev_hbm_alloc, largest_free)
#define LLMDEV_HBM_OPEN_V0	offsetofend(struct llmdev_hbm_open, mmap_offset)
#define LLMDEV_HBM_REGION_V0	offsetofend(struct llmdev_hbm_region, name)
#define LLMDEV_PERF_V0		offsetofend(struct llmdev_perf, counters)
#define LLMDEV_LINK_INFO_V0	offsetofend(struct llmdev_link_info, rx_errors)
#define LLMDEV_ROUTE_V0		offsetofend(struct llmdev_route, error_index)
#define LLMDEV_ROUTE_ENTRY_V0	offsetofend(struct llmdev_route_entry, length)
#define LLMDEV_COLL_BUF_V0	offsetofend(struct llmdev_coll_buf, dst_offset)
#define LLMDEV_DMA_OP_V0	offsetofend(struct llmdev_dma_op, buf_offset)

/* Fail with @e (positive): set errno and return -@e. */
static int llmdev_err(int e)
{
	errno = e;
	return -e;
}

static int llmdev_ioctl(struct llmdev *dev, unsigned long cmd, void *arg)
{
	return ioctl(dev->fd, cmd, arg) ? -errno : 0;
}

/* Drop a reference to a handle; the last one frees it. */
static void llmdev_put(struct llmdev *dev)
{
	if (!__atomic_sub_fetch(&dev->refs, 1, __ATOMIC_ACQ_REL))
		free(dev);
}

/* Copy a name into a uapi name field; one too long stays unterminated
 * and the driver rejects it with -EINVAL. */
static void llmdev_set_name(char dst[LLMDEV_NAME_LEN], const char *name)
{
	memcpy(dst, name, strnlen(name, LLMDEV_NAME_LEN));
}

/* How every list ioctl (LLMDEV_HBM_LIST, LLMDEV_ROUTE_GET) starts. */
struct llmdev_list_hdr {
	__u32 size;
	__u32 flags;
	__u32 count;
	__u32 entry_size;
	__aligned_u64 array;
};

_Static_assert(offsetof(struct llmdev_hbm_list, regions) ==
	       offsetof(struct llmdev_list_hdr, array), "hbm_list layout");
_Static_assert(offsetof(struct llmdev_route, entries) ==
	       offsetof(struct llmdev_list_hdr, array), "route layout");

/*
 * Run a list ioctl with an array that grows until it holds every entry
 * (the list may grow between two calls). @arg, @argsize bytes, gets the
 * last reply. @esize is the caller's size of an entry, which the driver
 * fills in up to that size. On success *@array is malloc()ed, NULL when
 * empty.
 */
static int llmdev_list_ioctl(struct llmdev *dev, unsigned long cmd, void *arg,
			     size_t argsize, size_t esize, void **array,
			     unsigned int *count)
{
	struct llmdev_list_hdr *h = arg;
	unsigned int cap = 0;
	void *buf = NULL;
	int ret;

	for (;;) {
		memset(arg, 0, argsize);
		h->size = argsize;
		h->count = cap;
		h->entry_size = esize;
		h->array = (uintptr_t)buf;
		ret = llmdev_ioctl(dev, cmd, arg);
		if (ret || h->count <= cap)
			break;
		/* first call, or entries were added since: ask again */
		free(buf);
		cap = h->count;
		buf = calloc(cap, esize);
		if (!buf)
			return llmdev_err(ENOMEM);
	}
	if (ret) {
		free(buf);
		return llmdev_err(-ret);
	}
	if (!h->count) {
		free(buf);
		buf = NULL;
	}
	*array = buf;
	*count = h->count;
	return 0;
}

/* The kernel's name of the node behind @fd, else the last part of @path. */
static void llmdev_find_name(struct llmdev *dev, const char *path)
{
	char link[64], target[PATH_MAX];
	const char *base;
	struct stat st;
	ssize_t len;

	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (!fstat(dev->fd, &st) && S_ISCHR(st.st_mode)) {
		snprintf(link, sizeof(link), "/sys/dev/char/%u:%u",
			 major(st.st_rdev), minor(st.st_rdev));
		len = readlink(link, target, sizeof(target) - 1);
		if (len > 0) {
			target[len] = '\0';
			base = strrchr(target, '/');
			base = base ? base + 1 : target;
		}
	}
	snprintf(dev->name, sizeof(dev->name), "%.*s", NAME_MAX, base);
}

int llmdev_open_path(const char *path, struct llmdev **devp)
{
	struct llmdev *dev;

	if (!path || !devp)
		return llmdev_err(EINVAL);
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return llmdev_err(ENOMEM);
	dev->refs = 1;
	dev->fd = open(path, O_RDWR | O_CLOEXEC);
	if (dev->fd < 0) {
		int e = errno;

		free(dev);
		return llmdev_err(e);
	}
	llmdev_find_name(dev, path);
	*devp = dev;
	return 0;
}

int llmdev_open(unsigned int index, struct llmdev **devp)
{
	char path[32];

	snprintf(path, sizeof(path), "/dev/llmdev%u", index);
	return llmdev_open_path(path, devp);
}

int llmdev_open_pci(const char *bdf, struct llmdev **devp)
{
	char dir[PATH_MAX], node[PATH_MAX] = "";
	struct dirent *de;
	DIR *d;

	if (!bdf || !devp)
		return llmdev_err(EINVAL);
	/* "bus:dev.fn" has one colon, "domain:bus:dev.fn" two */
	snprintf(dir, sizeof(dir), LLMDEV_SYSFS_PCI "/%s%s/llmdev",
		 strchr(bdf, ':') == strrchr(bdf, ':') ? "0000:" : "", bdf);
	d = opendir(dir);
	if (!d)
		return llmdev_err(errno == ENOTDIR ? ENOENT : errno);
	while ((de = readdir(d))) {
		if (!strncmp(de->d_name, "llmdev", 6)) {
			snprintf(node, sizeof(node), "/dev/%s", de->d_name);
			break;
		}
	}
	closedir(d);
	if (!node[0])
		return llmdev_err(ENOENT);
	return llmdev_open_path(node, devp);
}

void llmdev_close(struct llmdev *dev)
{
	int e = errno;

	if (!dev)
		return;
	close(dev->fd);
	dev->fd = -1;
	llmdev_put(dev);
	errno = e;
}

int llmdev_fd(const struct llmdev *dev)
{
	return dev ? dev->fd : llmdev_err(EINVAL);
}

const char *llmdev_name(const struct llmdev *dev)
{
	if (!dev) {
		errno = EINVAL;
		return NULL;
	}
	return dev->name;
}

int llmdev_count(void)
{
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir(LLMDEV_SYSFS_CLASS);
	if (!d)
		return errno == ENOENT ? 0 : llmdev_err(errno);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/*
 * Zero a caller's out struct of @size bytes, that must hold at least the
 * first version (@v0), and set its size. Return: 0 or -EINVAL.
 */
static int llmdev_out(void *out, size_t size, size_t v0)
{
	if (!out || size < v0 || size > UINT32_MAX)
		return -EINVAL;
	memset(out, 0, size);
	*(__u32 *)out = size;
	return 0;
}

/*
 * Give the caller, whose struct has @size bytes, the reply @src of @len
 * bytes: what fits, zeroes after it, and the caller's size in front.
 */
static void llmdev_reply(void *out, size_t size, const void *src, size_t len)
{
	memcpy(out, src, size < len ? size : len);
	if (size > len)
		memset((char *)out + len, 0, size - len);
	*(__u32 *)out = size;
}

int llmdev_get_info_sz(struct llmdev *dev, struct llmdev_info *info,
		       size_t size)
{
	if (!dev || llmdev_out(info, size, LLMDEV_INFO_V0))
		return llmdev_err(EINVAL);
	return llmdev_ioctl(dev, LLMDEV_INFO, info);
}

int llmdev_get_info(struct llmdev *dev, struct llmdev_info *info)
{
	return llmdev_get_info_sz(dev, info, LLMDEV_INFO_V0);
}

int llmdev_hbm_alloc_sz(struct llmdev *dev, uint64_t length, uint64_t align,
			uint32_t flags, const char *name,
			struct llmdev_hbm_alloc *out, size_t size)
{
	struct llmdev_hbm_alloc a = {
		.size = sizeof(a),
		.flags = flags,
		.length = length,
		.align = align,
	};
	int ret;

	if (!dev || (out && (size < LLMDEV_HBM_ALLOC_V0 || size > UINT32_MAX)))
		return llmdev_err(EINVAL);
	if (name)
		llmdev_set_name(a.name, name);
	ret = llmdev_ioctl(dev, LLMDEV_HBM_ALLOC, &a);
	/* the driver fills largest_free also on -ENOSPC */
	if (out && (!ret || ret == -ENOSPC))
		llmdev_reply(out, size, &a, sizeof(a));
	return ret;
}

int llmdev_hbm_alloc(struct llmdev *dev, uint64_t length, uint64_t align,
		     uint32_t flags, const char *name,
		     struct llmdev_hbm_alloc *out)
{
	return llmdev_hbm_alloc_sz(dev, length, align, flags, name, out,
				   LLMDEV_HBM_ALLOC_V0);
}

int llmdev_hbm_free(struct llmdev *dev, uint32_t handle)
{
	struct llmdev_hbm_free f = { .size = sizeof(f), .handle = handle };

	if (!dev)
		return llmdev_err(EINVAL);
	return llmdev_ioctl(dev, LLMDEV_HBM_FREE, &f);
}

int llmdev_hbm_list_sz(struct llmdev *dev, struct llmdev_hbm_region **regions,
		       unsigned int *count, size_t entry_size)
{
	struct llmdev_hbm_list l;

	if (!dev || !regions || !count || entry_size < LLMDEV_HBM_REGION_V0 ||
	    entry_size > UINT32_MAX)
		return llmdev_err(EINVAL);
	*regions = NULL;
	*count = 0;
	return llmdev_list_ioctl(dev, LLMDEV_HBM_LIST, &l, sizeof(l),
				 entry_size, (void **)regions, count);
}

int llmdev_hbm_list(struct llmdev *dev, struct llmdev_hbm_region **regions,
		    unsigned int *count)
{
	return llmdev_hbm_list_sz(dev, regions, count, LLMDEV_HBM_REGION_V0);
}

int llmdev_hbm_open_sz(struct llmdev *dev, const char *name,
		       struct llmdev_hbm_open *out, size_t size)
{
	if (!dev || !name || llmdev_out(out, size, LLMDEV_HBM_OPEN_V0))
		return llmdev_err(EINVAL);
	llmdev_set_name(out->name, name);
	return llmdev_ioctl(dev, LLMDEV_HBM_OPEN, out);
}

int llmdev_hbm_open(struct llmdev *dev, const char *name,
		    struct llmdev_hbm_open *out)
{
	return llmdev_hbm_open_sz(dev, name, out, LLMDEV_HBM_OPEN_V0);
}

void *llmdev_hbm_map(struct llmdev *dev, uint64_t mmap_offset,
		     uint64_t length, int prot)
{
	void *addr;

	if (!dev) {
		errno = EINVAL;
		return NULL;
	}
	/* a 32-bit size_t would map less than asked for, and succeed */
	if (length > SIZE_MAX) {
		errno = ENOMEM;
		return NULL;
	}
	addr = mmap(NULL, length, prot, MAP_SHARED, dev->fd, mmap_offset);
	return addr == MAP_FAILED ? NULL : addr;
}

int llmdev_hbm_unmap(void *addr, uint64_t length)
{
	if (length > SIZE_MAX)
		return llmdev_err(EINVAL);
	return munmap(addr, length) ? -errno : 0;
}

int llmdev_dma_submit(struct llmdev *dev, uint32_t handle, uint64_t offset,
		      void *buf, uint64_t length, uint32_t flags,
		      uint32_t ring, uint64_t *fence)
{
	struct llmdev_dma d = {
		.size = sizeof(d),
		.flags = flags,
		.handle = handle,
		.ring = ring,
		.offset = offset,
		.user_addr = (uintptr_t)buf,
		.length = length,
	};
	int ret;

	if (!dev || !buf || !fence)
		return llmdev_err(EINVAL);
	/* a signal in the wait for pinned memory: nothing was queued */
	do
		ret = llmdev_ioctl(dev, LLMDEV_DMA_SUBMIT, &d);
	while (ret == -EINTR);
	if (!ret)
		*fence = d.fence;
	return ret;
}

static int llmdev_wait(struct llmdev *dev, uint32_t flags, uint64_t *fence,
		       uint64_t timeout_ns, int *status)
{
	struct llmdev_fence_wait w = {
		.size = sizeof(w),
		.flags = flags,
		.fence = *fence,
		.timeout_ns = timeout_ns,
	};
	int ret;

	/*
	 * Interrupted by a signal without SA_RESTART, the driver has stored
	 * the time left in w.timeout_ns: asking again resumes the wait.
	 */
	do
		ret = llmdev_ioctl(dev, LLMDEV_FENCE_WAIT, &w);
	while (ret == -EINTR);
	if (ret)
		return ret;
	*fence = w.fence;
	*status = w.status;
	return 0;
}

int llmdev_fence_wait(struct llmdev *dev, uint64_t fence, uint64_t timeout_ns,
		      int *status)
{
	if (!dev || !status)
		return llmdev_err(EINVAL);
	return llmdev_wait(dev, 0, &fence, timeout_ns, status);
}

int llmdev_fence_wait_any(struct llmdev *dev, uint64_t timeout_ns,
			  uint64_t *fence, int *status)
{
	uint64_t f = 0;
	int ret;

	if (!dev || !fence || !status)
		return llmdev_err(EINVAL);
	ret = llmdev_wait(dev, LLMDEV_WAIT_ANY, &f, timeout_ns, status);
	if (!ret)
		*fence = f;
	return ret;
}

static uint64_t llmdev_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * Copy @length bytes in transfers of at most LLMDEV_DMA_MAX_LENGTH, up to
 * LLMDEV_COPY_WINDOW of them in flight, reaped in submission (= buffer)
 * order. The first error stops the submissions; the transfers already
 * started are always waited for, so @buf is free again on return.
 */
static int llmdev_copy(struct llmdev *dev, uint32_t handle, uint64_t offset,
		       char *buf, uint64_t length, uint32_t flags,
		       uint64_t timeout_ns)
{
	uint64_t fences[LLMDEV_COPY_WINDOW], now, deadline, left, done = 0;
	unsigned int head = 0, n = 0;
	int ret = 0;	/* first failure among the transfers started */
	int sret = 0;	/* a transfer that could not be started */
	int r, status;

	if (!dev || !buf)
		return llmdev_err(EINVAL);
	now = llmdev_now_ns();
	deadline = timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;

	for (;;) {
		if (!ret && !sret && done < length && n < LLMDEV_COPY_WINDOW) {
			uint64_t chunk = length - done;

			if (chunk > LLMDEV_DMA_MAX_LENGTH)
				chunk = LLMDEV_DMA_MAX_LENGTH;
			r = llmdev_dma_submit(dev, handle, offset + done,
					      buf + done, chunk, flags,
					      LLMDEV_RING_ANY,
					      &fences[(head + n) % LLMDEV_COPY_WINDOW]);
			if (!r) {
				n++;
				done += chunk;
				continue;
			}
			/* -EAGAIN: the file's fences are used up; reap ours */
			if (r != -EAGAIN || !n)
				sret = r;
		}
		if (!n)
			break;
		if (ret || sret) {
			left = UINT64_MAX;	/* draining: the driver bounds it */
		} else {
			now = llmdev_now_ns();
			left = deadline > now ? deadline - now : 0;
		}
		r = llmdev_wait(dev, 0, &fences[head], left, &status);
		if (r == -ETIME) {
			if (!ret)
				ret = -ETIME;
			continue;
		}
		/* anything else ends the fence (-ENOENT: reaped elsewhere) */
		head = (head + 1) % LLMDEV_COPY_WINDOW;
		n--;
		if (!ret)
			ret = r ? r : status;
	}
	if (!ret)
		ret = sret;
	return ret ? llmdev_err(-ret) : 0;
}

int llmdev_copy_to_hbm(struct llmdev *dev, uint32_t handle, uint64_t offset,
		       const void *buf, uint64_t length, uint64_t timeout_ns)
{
	/* the driver only reads the buffer of a host-to-card transfer */
	return llmdev_copy(dev, handle, offset, (char *)buf, length,
			   LLMDEV_DMA_TO_CARD, timeout_ns);
}

int llmdev_copy_from_hbm(struct llmdev *dev, uint32_t handle, uint64_t offset,
			 void *buf, uint64_t length, uint64_t timeout_ns)
{
	return llmdev_copy(dev, handle, offset, buf, length, 0, timeout_ns);
}

int llmdev_link_get_info_sz(struct llmdev *dev, unsigned int port,
			    struct llmdev_link_info *info, size_t size)
{
	if (!dev || llmdev_out(info, size, LLMDEV_LINK_INFO_V0))
		return llmdev_err(EINVAL);
	info->port = port;
	return llmdev_ioctl(dev, LLMDEV_LINK_INFO, info);
}

int llmdev_link_get_info(struct llmdev *dev, unsigned int port,
			 struct llmdev_link_info *info)
{
	return llmdev_link_get_info_sz(dev, port, info, LLMDEV_LINK_INFO_V0);
}

int llmdev_link_set_enabled(struct llmdev *dev, unsigned int port, int enable)
{
	struct llmdev_link_set l = {
		.size = sizeof(l),
		.port = port,
		.enable = enable,
	};

	if (!dev)
		return llmdev_err(EINVAL);
	return llmdev_ioctl(dev, LLMDEV_LINK_SET, &l);
}

struct llmdev_group {
	struct llmdev *dev;		/* the file the group belongs to */
	uint32_t id;
	unsigned int nranks;
	struct llmdev *ranks[];
};

int llmdev_group_create(struct llmdev *dev, struct llmdev *const *ranks,
			unsigned int nranks, struct llmdev_group **groupp)
{
	struct llmdev_group_create c = {
		.size = sizeof(c),
		.nranks = nranks,
	};
	struct llmdev_group *g;
	unsigned int r;
	int32_t *fds;
	int ret;

	if (!dev || !ranks || !groupp)
		return llmdev_err(EINVAL);
	for (r = 0; r < nranks; r++)
		if (!ranks[r])
			return llmdev_err(EINVAL);
	/* nranks out of range is the driver's to reject; 0 still allocates */
	g = calloc(1, sizeof(*g) + (nranks + 1) * sizeof(g->ranks[0]));
	fds = calloc(nranks + 1, sizeof(*fds));
	if (!g || !fds) {
		free(g);
		free(fds);
		return llmdev_err(ENOMEM);
	}
	for (r = 0; r < nranks; r++) {
		g->ranks[r] = ranks[r];
		fds[r] = ranks[r]->fd;
	}
	c.fds = (uintptr_t)fds;
	ret = llmdev_ioctl(dev, LLMDEV_GROUP_CREATE, &c);
	free(fds);
	if (ret) {
		free(g);
		return llmdev_err(-ret);
	}
	/* a handle closed before the group is destroyed has fd -1: -EBADF */
	__atomic_add_fetch(&dev->refs, 1, __ATOMIC_RELAXED);
	for (r = 0; r < nranks; r++)
		__atomic_add_fetch(&ranks[r]->refs, 1, __ATOMIC_RELAXED);
	g->dev = dev;
	g->id = c.group;
	g->nranks = nranks;
	*groupp = g;
	return 0;
}

int llmdev_group_destroy(struct llmdev_group *group)
{
	struct llmdev_group_destroy d = { .size = sizeof(d) };
	unsigned int r;
	int ret;

	if (!group)
		return 0;
	d.group = group->id;
	/* the driver dropped the groups of a closed handle with its file */
	ret = group->dev->fd < 0 ? -EBADF :
	      llmdev_ioctl(group->dev, LLMDEV_GROUP_DESTROY, &d);
	llmdev_put(group->dev);
	for (r = 0; r < group->nranks; r++)
		llmdev_put(group->ranks[r]);
	free(group);
	return ret ? llmdev_err(-ret) : 0;
}

unsigned int llmdev_dtype_size(uint32_t dtype)
{
	switch (dtype) {
	case LLMDEV_DTYPE_F32:
	case LLMDEV_DTYPE_I32:
		return 4;
	case LLMDEV_DTYPE_F16:
	case LLMDEV_DTYPE_BF16:
		return 2;
	default:
		return 0;
	}
}

static int llmdev_coll_submit(struct llmdev_group *g,
			      const struct llmdev_coll_buf *bufs,
			      uint32_t op, uint64_t count, uint32_t dtype,
			      uint32_t redop, uint32_t root, uint64_t *fence)
{
	struct llmdev_coll_buf b[LLMDEV_MAX_RANKS];
	struct llmdev_coll c = {
		.size = sizeof(c),
		.op = op,
		.dtype = dtype,
		.redop = redop,
		.root = root,
		.buf_size = sizeof(b[0]),
		.count = count,
		.bufs = (uintptr_t)b,
	};
	unsigned int r;
	int ret;

	if (!g || !bufs || !fence)
		return llmdev_err(EINVAL);
	/* the driver accepted the group: nranks <= LLMDEV_MAX_RANKS */
	memset(b, 0, sizeof(b));
	for (r = 0; r < g->nranks; r++) {
		/* the caller's array has elements of the first version */
		const struct llmdev_coll_buf *in = (const void *)
			((const char *)bufs + r * LLMDEV_COLL_BUF_V0);

		b[r].fd = g->ranks[r]->fd;
		b[r].src_handle = in->src_handle;
		b[r].dst_handle = in->dst_handle;
		b[r].src_offset = in->src_offset;
		b[r].dst_offset = in->dst_offset;
	}
	c.group = g->id;
	ret = llmdev_ioctl(g->dev, LLMDEV_COLL_SUBMIT, &c);
	if (!ret)
		*fence = c.fence;
	return ret;
}

int llmdev_allreduce_submit(struct llmdev_group *group,
			    const struct llmdev_coll_buf *bufs, uint64_t count,
			    uint32_t dtype, uint32_t redop, uint64_t *fence)
{
	return llmdev_coll_submit(group, bufs, LLMDEV_COLL_ALLREDUCE, count,
				  dtype, redop, 0, fence);
}

int llmdev_broadcast_submit(struct llmdev_group *group,
			    const struct llmdev_coll_buf *bufs, uint64_t count,
			    uint32_t dtype, uint32_t root, uint64_t *fence)
{
	return llmdev_coll_submit(group, bufs, LLMDEV_COLL_BROADCAST, count,
				  dtype, 0, root, fence);
}

/*
 * Submit and wait. Past @timeout_ns, wait on without a limit (the driver
 * ends every collective within coll_timeout_ms) so that no fence is left
 * behind, and report -ETIME.
 */
static int llmdev_coll_sync(struct llmdev_group *g,
			    const struct llmdev_coll_buf *bufs, uint32_t op,
			    uint64_t count, uint32_t dtype, uint32_t redop,
			    uint32_t root, uint64_t timeout_ns)
{
	uint64_t fence;
	int ret, status;

	ret = llmdev_coll_submit(g, bufs, op, count, dtype, redop, root, &fence);
	if (ret)
		return ret;
	ret = llmdev_wait(g->dev, 0, &fence, timeout_ns, &status);
	if (ret == -ETIME) {
		ret = llmdev_wait(g->dev, 0, &fence, UINT64_MAX, &status);
		if (!ret || ret == -ENOENT)
			ret = -ETIME;
	} else if (!ret) {
		ret = status;
	}
	return ret ? llmdev_err(-ret) : 0;
}

int llmdev_allreduce(struct llmdev_group *group,
		     const struct llmdev_coll_buf *bufs, uint64_t count,
		     uint32_t dtype, uint32_t redop, uint64_t timeout_ns)
{
	return llmdev_coll_sync(group, bufs, LLMDEV_COLL_ALLREDUCE, count,
				dtype, redop, 0, timeout_ns);
}

int llmdev_broadcast(struct llmdev_group *group,
		     const struct llmdev_coll_buf *bufs, uint64_t count,
		     uint32_t dtype, uint32_t root, uint64_t timeout_ns)
{
	return llmdev_coll_sync(group, bufs, LLMDEV_COLL_BROADCAST, count,
				dtype, 0, root, timeout_ns);
}

int llmdev_route_set_sz(struct llmdev *dev,
			const struct llmdev_route_entry *entries,
			unsigned int count, size_t entry_size,
			struct llmdev_route *out, size_t out_size)
{
	/* error_index as the driver leaves it when it never gets the table */
	struct llmdev_route rt = {
		.size = sizeof(rt),
		.count = count,
		.entry_size = entry_size,
		.entries = (uintptr_t)entries,
		.error_index = ~0U,
	};
	int ret;

	if (!dev || (!entries && count) || entry_size < LLMDEV_ROUTE_ENTRY_V0 ||
	    entry_size > UINT32_MAX ||
	    (out && (out_size < LLMDEV_ROUTE_V0 || out_size > UINT32_MAX)))
		return llmdev_err(EINVAL);
	ret = llmdev_ioctl(dev, LLMDEV_ROUTE_SET, &rt);
	/* the driver reports generation and error_index if it gets that far */
	if (out)
		llmdev_reply(out, out_size, &rt, sizeof(rt));
	return ret;
}

int llmdev_route_set(struct llmdev *dev,
		     const struct llmdev_route_entry *entries,
		     unsigned int count, struct llmdev_route *out)
{
	return llmdev_route_set_sz(dev, entries, count, LLMDEV_ROUTE_ENTRY_V0,
				   out, LLMDEV_ROUTE_V0);
}

int llmdev_route_get_sz(struct llmdev *dev, struct llmdev_route_entry **entries,
			unsigned int *count, uint32_t *generation,
			size_t entry_size)
{
	struct llmdev_route rt;
	int ret;

	if (!dev || !entries || !count || entry_size < LLMDEV_ROUTE_ENTRY_V0 ||
	    entry_size > UINT32_MAX)
		return llmdev_err(EINVAL);
	*entries = NULL;
	*count = 0;
	ret = llmdev_list_ioctl(dev, LLMDEV_ROUTE_GET, &rt, sizeof(rt),
				entry_size, (void **)entries, count);
	if (!ret && generation)
		*generation = rt.generation;
	return ret;
}

int llmdev_route_get(struct llmdev *dev, struct llmdev_route_entry **entries,
		     unsigned int *count, uint32_t *generation)
{
	return llmdev_route_get_sz(dev, entries, count, generation,
				   LLMDEV_ROUTE_ENTRY_V0);
}

int llmdev_perf_read_sz(struct llmdev *dev, struct llmdev_perf *perf,
			size_t size)
{
	if (!dev || llmdev_out(perf, size, LLMDEV_PERF_V0))
		return llmdev_err(EINVAL);
	return llmdev_ioctl(dev, LLMDEV_PERF_READ, perf);
}

int llmdev_perf_read(struct llmdev *dev, struct llmdev_perf *perf)
{
	return llmdev_perf_read_sz(dev, perf, LLMDEV_PERF_V0);
}

int llmdev_buf_register(struct llmdev *dev, void *addr, uint64_t length,
			uint32_t flags, uint32_t *buf)
{
	struct llmdev_buf_register r = {
		.size = sizeof(r),
		.flags = flags,
		.user_addr = (uintptr_t)addr,
		.length = length,
	};
	int ret;

	if (!dev || !addr || !buf)
		return llmdev_err(EINVAL);
	ret = llmdev_ioctl(dev, LLMDEV_BUF_REGISTER, &r);
	if (!ret)
		*buf = r.buf;
	return ret;
}

int llmdev_buf_unregister(struct llmdev *dev, uint32_t buf)
{
	struct llmdev_buf_unregister u = { .size = sizeof(u), .buf = buf };

	if (!dev)
		return llmdev_err(EINVAL);
	return llmdev_ioctl(dev, LLMDEV_BUF_UNREGISTER, &u);
}

int llmdev_dma_batch(struct llmdev *dev, const struct llmdev_dma_op *ops,
		     unsigned int count, uint32_t flags, uint64_t timeout_ns,
		     uint64_t *fence, int *status, unsigned int *error_index)
{
	struct llmdev_dma_batch b = {
		.size = sizeof(b),
		.flags = flags,
		.count = count,
		/* the caller's array: elements of the first version */
		.op_size = LLMDEV_DMA_OP_V0,
		.ops = (uintptr_t)ops,
		.timeout_ns = timeout_ns,
		.error_index = ~0U,
	};
	int ret;

	if (error_index)
		*error_index = ~0U;
	if (!dev || !ops)
		return llmdev_err(EINVAL);
	/* only the wait for pinned memory, before anything is queued, ends so */
	do
		ret = llmdev_ioctl(dev, LLMDEV_DMA_BATCH, &b);
	while (ret == -EINTR);
	if (error_index)
		*error_index = b.error_index;
	if ((!ret || ret == -ETIME) && fence)
		*fence = b.fence;
	if (!ret && status)
		*status = (flags & LLMDEV_BATCH_WAIT) ? b.status : 0;
	return ret;
}

int llmdev_reset(struct llmdev *dev)
{
	struct llmdev_reset r = { .size = sizeof(r) };

	if (!dev)
		return llmdev_err(EINVAL);
	return llmdev_ioctl(dev, LLMDEV_RESET, &r);
}

static const char *const llmdev_counter_names[LLMDEV_COUNTER_NUM] = {
	[LLMDEV_COUNTER_H2C_BYTES] = "h2c_bytes",
	[LLMDEV_COUNTER_C2H_BYTES] = "c2h_bytes",
	[LLMDEV_COUNTER_H2C_DESC] = "h2c_desc",
	[LLMDEV_COUNTER_C2H_DESC] = "c2h_desc",
	[LLMDEV_COUNTER_IRQS] = "irqs",
	[LLMDEV_COUNTER_APERTURE_RD_BYTES] = "aperture_rd_bytes",
	[LLMDEV_COUNTER_APERTURE_WR_BYTES] = "aperture_wr_bytes",
	[LLMDEV_COUNTER_ERRORS] = "errors",
	[LLMDEV_COUNTER_DMA_BUSY_NS] = "dma_busy_ns",
	[LLMDEV_COUNTER_SCRUB_BYTES] = "scrub_bytes",
	[LLMDEV_COUNTER_DOORBELLS] = "doorbells",
	[LLMDEV_COUNTER_LINK_TX_BYTES] = "link_tx_bytes",
	[LLMDEV_COUNTER_LINK_RX_BYTES] = "link_rx_bytes",
	[LLMDEV_COUNTER_COLL_OPS] = "coll_ops",
	[LLMDEV_COUNTER_COLL_BUSY_NS] = "coll_busy_ns",
};

const char *llmdev_counter_name(unsigned int index)
{
	return index < LLMDEV_COUNTER_NUM ? llmdev_counter_names[index] : NULL;
}

const char *llmdev_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case ETIME:
		return "Transfer not complete yet (wait timed out, still pending)";
	case ETIMEDOUT:
		return "Card did not finish the transfer or collective in time (it was reset or aborted)";
	case EIO:
		return "Card reported a DMA or collective error";
	case ECANCELED:
		return "Transfer or collective was aborted";
	case ENOSPC:
		return "No room: not enough contiguous free HBM, a KV pool or its disk tier is full, or too many routing table entries";
	case EEXIST:
		return "Already exists: a persistent HBM region of that name, a KV block, or overlapping routing entries";
	case EAGAIN:
		return "Busy: too many transfers in flight on this handle (wait for some first), or another KV pool uses the disk file";
	case ENODEV:
		return "Card was removed";
	case ENOTTY:
		return "Not an llmdev device, or the driver does not know this command";
	case E2BIG:
		return "Too big: a DMA batch over LLMDEV_BATCH_MAX_PLAIN_BYTES of unregistered memory, or a field set that the driver (older than the library) does not know";
	case ENOLINK:
		return "A peer link between the cards is down";
	case EHOSTUNREACH:
		return "The peer links no longer form the group's ring";
	case EBUSY:
		return "In use: by the card's routing table, or by transfers in flight";
	case EPERM:
		return "Region belongs to another user or open file, or CAP_SYS_ADMIN is needed";
	default:
		return strerror(err < 0 ? -err : err);
	}
}
