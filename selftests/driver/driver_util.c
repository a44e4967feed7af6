// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers shared by the llmdev driver selftests, compiled once into the
 * archive every driver_* test links (see driver_util.h for what each one
 * does and the rules they follow).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "driver_util.h"

/* ---- time ---------------------------------------------------------------- */

uint64_t ld_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * LD_NSEC_PER_SEC + ts.tv_nsec;
}

void ld_msleep(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- files, sysfs, vm.conf -------------------------------------------- */

int ld_read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	close(fd);
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

int ld_write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	n = n < 0 ? -errno : 0;
	close(fd);
	return n;
}

int ld_read_u64(const char *path, uint64_t *val)
{
	char buf[128], *end;
	int ret = ld_read_file(path, buf, sizeof(buf));

	if (ret)
		return ret;
	errno = 0;
	*val = strtoull(buf, &end, 0);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}

int ld_sysfs_path(char *buf, size_t len, unsigned int card, const char *attr)
{
	return snprintf(buf, len, LD_SYSFS_CLASS "/llmdev%u/%s", card, attr);
}

int ld_sysfs_u64(unsigned int card, const char *attr, uint64_t *val)
{
	char path[256];

	ld_sysfs_path(path, sizeof(path), card, attr);
	return ld_read_u64(path, val);
}

const char *ld_vmconf(const char *key, char *buf, size_t len)
{
	FILE *f = fopen(LD_VMCONF, "re");
	char line[256];
	size_t klen = strlen(key);
	const char *ret = NULL;

	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) || line[klen] != '=')
			continue;
		line[strcspn(line, "\r\n")] = 0;
		{
			size_t n = strlen(line + klen + 1);

			if (n >= len)
				n = len - 1;
			memcpy(buf, line + klen + 1, n);
			buf[n] = 0;
		}
		ret = buf;
		break;
	}
	fclose(f);
	return ret;
}

unsigned int ld_num_cards(void)
{
	char path[64];
	unsigned int n;

	for (n = 0; n < 64; n++) {
		snprintf(path, sizeof(path), "/dev/llmdev%u", n);
		if (access(path, F_OK))
			break;
	}
	return n;
}

int ld_open(unsigned int card)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/dev/llmdev%u", card);
	fd = open(path, O_RDWR | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* ---- random data ------------------------------------------------------ */

uint64_t ld_rand64(uint64_t *state)
{
	uint64_t x = *state;	/* xorshift64* */

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

void ld_fill(void *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1, v;
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		v = ld_rand64(&s);
		memcpy(p + i, &v, 8);
	}
	v = ld_rand64(&s);
	for (; i < len; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

long ld_cmp(const void *a, const void *b, size_t len)
{
	const uint8_t *x = a, *y = b;
	size_t i;

	if (!memcmp(a, b, len))
		return -1;
	for (i = 0; i < len; i++)
		if (x[i] != y[i])
			return (long)i;
	return -1;
}

long ld_memchk(const void *a, int val, size_t len)
{
	const uint8_t *p = a;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != (uint8_t)val)
			return (long)i;
	return -1;
}

long ld_nonzero(const void *a, size_t len)
{
	const uint8_t *p = a;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return (long)i;
	return -1;
}

void *ld_alloc_buf(size_t len)
{
	size_t map = (len + 2 * LD_PAGE - 1) & ~(LD_PAGE - 1);
	void *p = mmap(NULL, map, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	mprotect((char *)p + map - LD_PAGE, LD_PAGE, PROT_NONE);
	return p;
}

void ld_free_buf(void *p, size_t len)
{
	if (p)
		munmap(p, (len + 2 * LD_PAGE - 1) & ~(LD_PAGE - 1));
}

/* ---- raw ioctls --------------------------------------------------------- */

int ld_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) ? -errno : 0;
}

int ld_info(int fd, struct llmdev_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return ld_ioctl(fd, LLMDEV_INFO, info);
}

int ld_hbm_alloc(int fd, uint64_t length, uint64_t align, uint32_t flags,
		 const char *name, struct llmdev_hbm_alloc *out)
{
	struct llmdev_hbm_alloc tmp, *a = out ? out : &tmp;

	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->flags = flags;
	a->length = length;
	a->align = align;
	if (name)
		snprintf(a->name, sizeof(a->name), "%s", name);
	return ld_ioctl(fd, LLMDEV_HBM_ALLOC, a);
}

int ld_hbm_free(int fd, uint32_t handle)
{
	struct llmdev_hbm_free f = { .size = sizeof(f), .handle = handle };

	return ld_ioctl(fd, LLMDEV_HBM_FREE, &f);
}

int ld_hbm_open(int fd, const char *name, struct llmdev_hbm_open *out)
{
	struct llmdev_hbm_open tmp, *o = out ? out : &tmp;

	memset(o, 0, sizeof(*o));
	o->size = sizeof(*o);
	snprintf(o->name, sizeof(o->name), "%s", name);
	return ld_ioctl(fd, LLMDEV_HBM_OPEN, o);
}

int ld_hbm_list(int fd, struct llmdev_hbm_region **regions,
		unsigned int *count)
{
	struct llmdev_hbm_list l;
	struct llmdev_hbm_region *r = NULL;
	unsigned int cap = 0;
	int ret;

	for (;;) {
		memset(&l, 0, sizeof(l));
		l.size = sizeof(l);
		l.count = cap;
		l.entry_size = sizeof(*r);
		l.regions = (uintptr_t)r;
		ret = ld_ioctl(fd, LLMDEV_HBM_LIST, &l);
		if (ret) {
			free(r);
			return ret;
		}
		if (l.count <= cap)
			break;
		cap = l.count + 8;
		free(r);
		r = calloc(cap, sizeof(*r));
		if (!r)
			return -ENOMEM;
	}
	*regions = r;
	*count = l.count;
	return 0;
}

struct llmdev_hbm_region *
ld_find_region(struct llmdev_hbm_region *r, unsigned int n, uint32_t handle)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (r[i].handle == handle)
			return &r[i];
	return NULL;
}

int ld_submit(int fd, uint32_t handle, uint64_t offset, void *buf,
	      uint64_t length, bool to_card, uint32_t ring, uint64_t *fence)
{
	struct llmdev_dma d = {
		.size = sizeof(d),
		.flags = to_card ? LLMDEV_DMA_TO_CARD : 0,
		.handle = handle,
		.ring = ring,
		.offset = offset,
		.user_addr = (uintptr_t)buf,
		.length = length,
	};
	int ret = ld_ioctl(fd, LLMDEV_DMA_SUBMIT, &d);

	if (!ret && fence)
		*fence = d.fence;
	return ret;
}

int ld_wait(int fd, uint64_t fence, uint64_t timeout_ns, int *status)
{
	struct llmdev_fence_wait w = {
		.size = sizeof(w),
		.fence = fence,
		.timeout_ns = timeout_ns,
	};
	int ret = ld_ioctl(fd, LLMDEV_FENCE_WAIT, &w);

	if (!ret && status)
		*status = w.status;
	return ret;
}

int ld_wait_any(int fd, uint64_t timeout_ns, uint64_t *fence, int *status)
{
	struct llmdev_fence_wait w = {
		.size = sizeof(w),
		.flags = LLMDEV_WAIT_ANY,
		.timeout_ns = timeout_ns,
	};
	int ret = ld_ioctl(fd, LLMDEV_FENCE_WAIT, &w);

	if (!ret) {
		if (fence)
			*fence = w.fence;
		if (status)
			*status = w.status;
	}
	return ret;
}

int ld_xfer(int fd, uint32_t handle, uint64_t offset, void *buf,
	    uint64_t length, bool to_card, uint32_t ring)
{
	uint64_t fence;
	int ret, status;

	ret = ld_submit(fd, handle, offset, buf, length, to_card, ring, &fence);
	if (ret)
		return ret;
	ret = ld_wait(fd, fence, LD_LONG_WAIT, &status);
	return ret ? ret : status;
}

int ld_perf(int fd, struct llmdev_perf *p)
{
	memset(p, 0, sizeof(*p));
	p->size = sizeof(*p);
	return ld_ioctl(fd, LLMDEV_PERF_READ, p);
}

uint64_t ld_hbm_used_settle(unsigned int card, uint64_t want)
{
	uint64_t used = ~0ULL, end = ld_now_ns() + 2 * LD_NSEC_PER_SEC;

	do {
		if (ld_sysfs_u64(card, "hbm_used", &used))
			return ~0ULL;
		if (used == want)
			break;
		ld_msleep(20);
	} while (ld_now_ns() < end);
	return used;
}

/* ---- peer links ------------------------------------------------------------ */

int ld_link_info(int fd, unsigned int port, struct llmdev_link_info *l)
{
	memset(l, 0, sizeof(*l));
	l->size = sizeof(*l);
	l->port = port;
	return ld_ioctl(fd, LLMDEV_LINK_INFO, l);
}

int ld_link_set(int fd, unsigned int port, unsigned int enable)
{
	struct llmdev_link_set l = {
		.size = sizeof(l),
		.port = port,
		.enable = enable,
	};

	return ld_ioctl(fd, LLMDEV_LINK_SET, &l);
}

int ld_link_wait(int fd, unsigned int port, uint32_t state, unsigned int ms)
{
	uint64_t end = ld_now_ns() + ms * 1000000ULL;
	struct llmdev_link_info l;
	int ret;

	for (;;) {
		ret = ld_link_info(fd, port, &l);
		if (ret)
			return ret;
		if (l.state == state)
			return 0;
		if (ld_now_ns() > end)
			return -ETIME;
		ld_msleep(2);
	}
}

int ld_topology(unsigned int ncards, int peer[LD_MAX_CARDS][LD_MAX_PORTS])
{
	char buf[512];
	const char *s;
	unsigned int c, p, a, ap, b, bp;
	int n;

	for (c = 0; c < LD_MAX_CARDS; c++)
		for (p = 0; p < LD_MAX_PORTS; p++)
			peer[c][p] = -1;
	s = ld_vmconf("CABLES", buf, sizeof(buf));
	if (!s || !*s) {
		if (ncards < 2)
			return 0;
		for (c = 0; c < ncards && c < LD_MAX_CARDS; c++) {
			unsigned int next = (c + 1) % ncards;

			peer[c][0] = next * LD_MAX_PORTS + 1;
			peer[next][1] = c * LD_MAX_PORTS + 0;
		}
		return 0;
	}
	while (*s) {
		if (sscanf(s, "%u.%u-%u.%u%n", &a, &ap, &b, &bp, &n) != 4 ||
		    a >= LD_MAX_CARDS || b >= LD_MAX_CARDS ||
		    ap >= LD_MAX_PORTS || bp >= LD_MAX_PORTS)
			return -EINVAL;
		peer[a][ap] = b * LD_MAX_PORTS + bp;
		peer[b][bp] = a * LD_MAX_PORTS + ap;
		s += n;
		if (*s == ',')
			s++;
	}
	return 0;
}

/* ---- collective groups and collectives -------------------------------------- */

int ld_group_create(int fd, const int32_t *fds, unsigned int nranks,
		    uint32_t *group)
{
	struct llmdev_group_create c = {
		.size = sizeof(c),
		.nranks = nranks,
		.fds = (uintptr_t)fds,
	};
	int ret = ld_ioctl(fd, LLMDEV_GROUP_CREATE, &c);

	if (!ret && group)
		*group = c.group;
	return ret;
}

int ld_group_destroy(int fd, uint32_t group)
{
	struct llmdev_group_destroy d = { .size = sizeof(d), .group = group };

	return ld_ioctl(fd, LLMDEV_GROUP_DESTROY, &d);
}

int ld_coll_submit(int fd, uint32_t group, uint32_t op, uint32_t dtype,
		   uint32_t redop, uint32_t root, uint64_t count,
		   const struct llmdev_coll_buf *bufs, uint64_t *fence)
{
	struct llmdev_coll c = {
		.size = sizeof(c),
		.group = group,
		.op = op,
		.dtype = dtype,
		.redop = redop,
		.root = root,
		.buf_size = sizeof(*bufs),
		.count = count,
		.bufs = (uintptr_t)bufs,
	};
	int ret = ld_ioctl(fd, LLMDEV_COLL_SUBMIT, &c);

	if (!ret && fence)
		*fence = c.fence;
	return ret;
}

unsigned int ld_dtype_size(uint32_t dtype)
{
	return dtype == LLMDEV_DTYPE_F16 || dtype == LLMDEV_DTYPE_BF16 ? 2 : 4;
}

/* ---- routing table ---------------------------------------------------------- */

int ld_route_set(int fd, const struct llmdev_route_entry *e, uint32_t count,
		 struct llmdev_route *out)
{
	struct llmdev_route rt = {
		.size = sizeof(rt),
		.count = count,
		.entry_size = sizeof(*e),
		.entries = (uintptr_t)e,
	};
	int ret = ld_ioctl(fd, LLMDEV_ROUTE_SET, &rt);

	if (out)
		*out = rt;
	return ret;
}

int ld_route_get(int fd, struct llmdev_route_entry *e, uint32_t cap,
		 uint32_t *count, uint32_t *gen)
{
	struct llmdev_route rt = {
		.size = sizeof(rt),
		.count = cap,
		.entry_size = sizeof(*e),
		.entries = (uintptr_t)e,
	};
	int ret = ld_ioctl(fd, LLMDEV_ROUTE_GET, &rt);

	if (!ret) {
		if (count)
			*count = rt.count;
		if (gen)
			*gen = rt.generation;
	}
	return ret;
}

/* ---- BAR 0: fault injection --------------------------------------------- */

int ld_bar0_map(unsigned int card, struct ld_bar0 *b)
{
	char path[256];
	void *p;
	int fd;

	b->regs = NULL;
	ld_sysfs_path(path, sizeof(path), card, "device/resource0");
	fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	if (fd < 0) {
		snprintf(b->why, sizeof(b->why), "open %s: %s", path,
			 strerror(errno));
		return -errno;
	}
	p = mmap(NULL, LLMDEV_BAR_REGS_SIZE, PROT_READ | PROT_WRITE,
		 MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int err = errno;

		snprintf(b->why, sizeof(b->why),
			 "mmap %s: %s (CONFIG_IO_STRICT_DEVMEM needs iomem=relaxed)",
			 path, strerror(err));
		close(fd);
		return -err;
	}
	close(fd);
	b->regs = p;
	if (*(volatile uint32_t *)(b->regs + LLMDEV_REG_ID) != LLMDEV_ID_MAGIC) {
		snprintf(b->why, sizeof(b->why), "%s: bad ID register", path);
		munmap(p, LLMDEV_BAR_REGS_SIZE);
		b->regs = NULL;
		return -ENODEV;
	}
	return 0;
}

void ld_bar0_unmap(struct ld_bar0 *b)
{
	if (b->regs)
		munmap((void *)b->regs, LLMDEV_BAR_REGS_SIZE);
	b->regs = NULL;
}

uint32_t ld_rd32(struct ld_bar0 *b, uint32_t off)
{
	return *(volatile uint32_t *)(b->regs + off);
}

void ld_wr32(struct ld_bar0 *b, uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(b->regs + off) = v;
	__sync_synchronize();
}

uint64_t ld_rd64(struct ld_bar0 *b, uint32_t off)
{
	return *(volatile uint64_t *)(b->regs + off);
}

void ld_wr64(struct ld_bar0 *b, uint32_t off, uint64_t v)
{
	*(volatile uint64_t *)(b->regs + off) = v;
	__sync_synchronize();
}

unsigned int ld_hw_ring(bool to_card, unsigned int ring)
{
	return to_card ? ring : LLMDEV_NUM_H2C_RINGS + ring;
}

/* ---- module parameters ---------------------------------------------------- */

int ld_get_timeout_ms(unsigned int *ms)
{
	uint64_t v;
	int ret = ld_read_u64(LD_PARAM_TIMEOUT, &v);

	if (!ret)
		*ms = (unsigned int)v;
	return ret;
}

int ld_set_timeout_ms(unsigned int ms)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%u", ms);
	return ld_write_file(LD_PARAM_TIMEOUT, buf);
}

/* ---- SIGBUS/SIGSEGV-safe memory access ------------------------------------ */

static sigjmp_buf ld_fault_jmp;
static volatile sig_atomic_t ld_fault_sig;

static void ld_fault_handler(int sig)
{
	ld_fault_sig = sig;
	siglongjmp(ld_fault_jmp, 1);
}

int ld_touch(volatile uint8_t *p, bool write, uint8_t *val)
{
	struct sigaction sa = { .sa_handler = ld_fault_handler }, obus, osegv;
	int ret = 0;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &obus);
	sigaction(SIGSEGV, &sa, &osegv);
	ld_fault_sig = 0;
	if (sigsetjmp(ld_fault_jmp, 1) == 0) {
		if (write)
			*p = val ? *val : 0x5a;
		else if (val)
			*val = *p;
		else
			(void)*p;
	} else {
		ret = ld_fault_sig;
	}
	sigaction(SIGBUS, &obus, NULL);
	sigaction(SIGSEGV, &osegv, NULL);
	return ret;
}

/* ---- kernel log ------------------------------------------------------------ */

int ld_kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

int ld_kmsg_problems(int fd, char *first, size_t len)
{
	static const char * const bad[] = {
		"WARNING:", "BUG:", "BUG ", "Oops", "Call Trace", "KASAN", "UBSAN",
		"nonexistent resource", "circular locking", "lock held",
		"refcount_t", "list_add corruption", "list_del corruption",
		"general protection", "blocked for more than", "leak",
	};
	char rec[2048];
	ssize_t n;
	int count = 0;
	unsigned int i;

	if (len)
		first[0] = 0;
	if (fd < 0)
		return 0;
	for (;;) {
		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records */
		if (n <= 0)
			break;
		rec[n] = 0;
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char *msg = strchr(rec, ';');

			if (!strstr(msg ? msg : rec, bad[i]))
				continue;
			if (!count++ && len) {
				msg = msg ? msg + 1 : rec;
				msg[strcspn(msg, "\n")] = 0;
				snprintf(first, len, "%.*s", (int)len - 1, msg);
			}
			break;
		}
	}
	close(fd);
	return count;
}

/* ---- failslab (debug kernel): make this task's slab allocations fail ------ */

static const char * const ld_failslab_attr[LD_FAILSLAB_NATTR] = {
	"probability", "interval", "times", "space", "verbose", "task-filter",
	"ignore-gfp-wait", "cache-filter",
};

int ld_failslab_setup(struct ld_failslab *f)
{
	static const char * const val[LD_FAILSLAB_NATTR] = {
		"100", "1", "-1", "0", "0", "Y", "N", "N",
	};
	char path[128];
	unsigned int i;

	f->ok = false;
	for (i = 0; i < LD_FAILSLAB_NATTR; i++) {
		snprintf(path, sizeof(path), LD_FAILSLAB "/%s", ld_failslab_attr[i]);
		if (ld_read_file(path, f->saved[i], sizeof(f->saved[i])))
			return -ENOENT;
	}
	for (i = 0; i < LD_FAILSLAB_NATTR; i++) {
		snprintf(path, sizeof(path), LD_FAILSLAB "/%s", ld_failslab_attr[i]);
		if (ld_write_file(path, val[i]))
			return -EIO;
	}
	f->ok = true;
	return 0;
}

void ld_failslab_restore(struct ld_failslab *f)
{
	char path[128];
	unsigned int i;

	if (!f->ok)
		return;
	for (i = 0; i < LD_FAILSLAB_NATTR; i++) {
		snprintf(path, sizeof(path), LD_FAILSLAB "/%s", ld_failslab_attr[i]);
		ld_write_file(path, f->saved[i]);
	}
}

int ld_ioctl_nomem(int fd, unsigned long cmd, void *arg)
{
	int mf = open("/proc/thread-self/make-it-fail", O_WRONLY | O_CLOEXEC);
	int ret;

	if (mf < 0)
		return -EOPNOTSUPP;
	if (write(mf, "1", 1) != 1) {
		close(mf);
		return -EOPNOTSUPP;
	}
	ret = ioctl(fd, cmd, arg) ? -errno : 0;
	if (write(mf, "0", 1) != 1)
		ret = -EOPNOTSUPP;
	close(mf);
	return ret;
}

/* ---- child processes ---------------------------------------------------- */

int ld_wait_child(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

int ld_drop_cap(unsigned int cap)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2];

	if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0))
		return -errno;
	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[cap / 32].effective &= ~(1u << (cap % 32));
	d[cap / 32].permitted &= ~(1u << (cap % 32));
	d[cap / 32].inheritable &= ~(1u << (cap % 32));
	if (syscall(SYS_capset, &h, d))
		return -errno;
	return 0;
}

int ld_drop_privs(void)
{
	return llmdev_become(LLMDEV_NOBODY, true);
}
