// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers for the llmdev hardware selftests and tools; see llmdev_hw.h.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/pci_regs.h>

#include "llmdev_hw.h"

const char *const llmdev_perf_names[LLMDEV_PERF_NUM_COUNTERS] = {
	[LLMDEV_PERF_H2C_BYTES]		= "h2c_bytes",
	[LLMDEV_PERF_C2H_BYTES]		= "c2h_bytes",
	[LLMDEV_PERF_H2C_DESC]		= "h2c_desc",
	[LLMDEV_PERF_C2H_DESC]		= "c2h_desc",
	[LLMDEV_PERF_IRQS]		= "irqs",
	[LLMDEV_PERF_APERTURE_RD_BYTES]	= "aperture_rd_bytes",
	[LLMDEV_PERF_APERTURE_WR_BYTES]	= "aperture_wr_bytes",
	[LLMDEV_PERF_ERRORS]		= "errors",
	[LLMDEV_PERF_DMA_BUSY_NS]	= "dma_busy_ns",
	[LLMDEV_PERF_SCRUB_BYTES]	= "scrub_bytes",
	[LLMDEV_PERF_DOORBELLS]		= "doorbells",
	[LLMDEV_PERF_LINK_TX_BYTES]	= "link_tx_bytes",
	[LLMDEV_PERF_LINK_RX_BYTES]	= "link_rx_bytes",
	[LLMDEV_PERF_COLL_OPS]		= "coll_ops",
	[LLMDEV_PERF_COLL_BUSY_NS]	= "coll_busy_ns",
};

const char *const llmdev_err_names[LLMDEV_ERR_MAX + 1] = {
	[LLMDEV_ERR_NONE]	= "none",
	[LLMDEV_ERR_DESC_FETCH]	= "desc_fetch",
	[LLMDEV_ERR_HOST_ADDR]	= "host_addr",
	[LLMDEV_ERR_HBM_RANGE]	= "hbm_range",
	[LLMDEV_ERR_DESC_FORMAT] = "desc_format",
	[LLMDEV_ERR_DOORBELL]	= "doorbell",
	[LLMDEV_ERR_RING_CONFIG] = "ring_config",
	[LLMDEV_ERR_CMPL_WRITE]	= "cmpl_write",
	[LLMDEV_ERR_INJECTED]	= "injected",
	[LLMDEV_ERR_SCRUB]	= "scrub",
	[LLMDEV_ERR_REG_ACCESS]	= "reg_access",
};

const char *llmdev_perf_name(unsigned int i)
{
	return i < LLMDEV_PERF_NUM_COUNTERS ? llmdev_perf_names[i] : "?";
}

const char *llmdev_err_name(unsigned int code)
{
	return code <= LLMDEV_ERR_MAX ? llmdev_err_names[code] : "?";
}

static void seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* ---- sysfs --------------------------------------------------------------- */

static int read_text(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
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
	return 0;
}

int llmdev_sysfs_read_u64(const char *bdf, const char *attr, uint64_t *val)
{
	char path[256], buf[64], *end;
	int ret;

	snprintf(path, sizeof(path), LLMDEV_SYSFS_PCI "/%s/%s", bdf, attr);
	ret = read_text(path, buf, sizeof(buf));
	if (ret)
		return ret;
	errno = 0;
	*val = strtoull(buf, &end, 0);
	if (errno || end == buf)
		return -EINVAL;
	return 0;
}

int llmdev_sysfs_read_bars(const char *bdf, struct llmdev_bar res[6])
{
	char path[256];
	FILE *f;
	int i;

	snprintf(path, sizeof(path), LLMDEV_SYSFS_PCI "/%s/resource", bdf);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	for (i = 0; i < 6; i++) {
		unsigned long long s, e, fl;

		if (fscanf(f, "%llx %llx %llx", &s, &e, &fl) != 3) {
			fclose(f);
			return -EINVAL;
		}
		res[i].start = s;
		res[i].size = (s || e) ? e - s + 1 : 0;
		res[i].flags = fl;
	}
	fclose(f);
	return 0;
}

static int cmp_bdf(const void *a, const void *b)
{
	return strcmp(a, b);
}

int llmdev_find_cards(char bdf[][32], int max)
{
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir(LLMDEV_SYSFS_PCI);
	if (!d)
		return 0;
	while ((de = readdir(d)) && n < max) {
		uint64_t ven, dev;

		if (de->d_name[0] == '.')
			continue;
		if (llmdev_sysfs_read_u64(de->d_name, "vendor", &ven) ||
		    llmdev_sysfs_read_u64(de->d_name, "device", &dev))
			continue;
		if (ven != LLMDEV_PCI_VENDOR_ID || dev != LLMDEV_PCI_DEVICE_ID)
			continue;
		snprintf(bdf[n++], 32, "%.31s", de->d_name);
	}
	closedir(d);
	qsort(bdf, n, 32, cmp_bdf);
	return n;
}

int llmdev_card_driver(const char *bdf, char *drv, size_t len)
{
	char link[128], buf[256];
	ssize_t l;

	snprintf(link, sizeof(link), LLMDEV_SYSFS_PCI "/%.32s/driver", bdf);
	l = readlink(link, buf, sizeof(buf) - 1);
	if (l <= 0)
		return 0;
	buf[l] = 0;
	snprintf(drv, len, "%s", strrchr(buf, '/') ? strrchr(buf, '/') + 1 : buf);
	return 1;
}

bool llmdev_card_present(const char *bdf)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), LLMDEV_SYSFS_PCI "/%s", bdf);
	return stat(path, &st) == 0;
}

static volatile uint8_t *map_bar(struct llmdev_card *c, int bar, size_t size)
{
	char path[256];
	void *p;
	int fd;

	snprintf(path, sizeof(path), "%s/resource%d", c->path, bar);
	fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	if (fd < 0) {
		seterr(c->err, sizeof(c->err), "%s: open %s: %s", c->bdf, path,
		       strerror(errno));
		return NULL;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		seterr(c->err, sizeof(c->err), "%s: mmap %s (%zu bytes): %s",
		       c->bdf, path, size, strerror(errno));
		return NULL;
	}
	return p;
}

int llmdev_card_open(struct llmdev_card *c, const char *bdf)
{
	char path[256];
	uint64_t en;
	int ret;

	memset(c, 0, sizeof(*c));
	c->cfg_fd = -1;
	snprintf(c->bdf, sizeof(c->bdf), "%s", bdf);
	snprintf(c->path, sizeof(c->path), LLMDEV_SYSFS_PCI "/%s", bdf);

	ret = llmdev_sysfs_read_bars(bdf, c->res);
	if (ret) {
		seterr(c->err, sizeof(c->err), "%s: cannot read resource: %s",
		       bdf, strerror(-ret));
		return ret;
	}
	if (c->res[LLMDEV_BAR_REGS].size < LLMDEV_BAR_REGS_SIZE ||
	    !c->res[LLMDEV_BAR_HBM].size) {
		seterr(c->err, sizeof(c->err), "%s: BARs not assigned", bdf);
		return -ENODEV;
	}

	snprintf(path, sizeof(path), "%s/config", c->path);
	c->cfg_fd = open(path, O_RDWR | O_CLOEXEC);
	if (c->cfg_fd < 0) {
		ret = -errno;
		seterr(c->err, sizeof(c->err), "%s: open %s: %s", bdf, path,
		       strerror(errno));
		return ret;
	}

	/* no driver: enable memory decoding through sysfs once */
	if (!llmdev_sysfs_read_u64(bdf, "enable", &en) && !en) {
		int fd;

		snprintf(path, sizeof(path), "%s/enable", c->path);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "1", 1) != 1) {
			ret = -errno;
			seterr(c->err, sizeof(c->err), "%s: enable: %s", bdf,
			       strerror(errno));
			if (fd >= 0)
				close(fd);
			llmdev_card_close(c);
			return ret;
		}
		close(fd);
	}
	if (!(llmdev_cfg_read16(c, PCI_COMMAND) & PCI_COMMAND_MEMORY)) {
		seterr(c->err, sizeof(c->err), "%s: memory decoding disabled",
		       bdf);
		llmdev_card_close(c);
		return -EIO;
	}

	c->bar0 = map_bar(c, LLMDEV_BAR_REGS, LLMDEV_BAR_REGS_SIZE);
	if (!c->bar0) {
		llmdev_card_close(c);
		return -EIO;
	}
	c->bar2 = map_bar(c, LLMDEV_BAR_HBM, c->res[LLMDEV_BAR_HBM].size);
	if (!c->bar2) {
		llmdev_card_close(c);
		return -EIO;
	}
	return 0;
}

void llmdev_card_close(struct llmdev_card *c)
{
	if (c->bar0)
		munmap((void *)c->bar0, LLMDEV_BAR_REGS_SIZE);
	if (c->bar2)
		munmap((void *)c->bar2, c->res[LLMDEV_BAR_HBM].size);
	if (c->cfg_fd >= 0)
		close(c->cfg_fd);
	c->bar0 = c->bar2 = NULL;
	c->cfg_fd = -1;
}

/* ---- config space ------------------------------------------------------ */

int llmdev_cfg_read(struct llmdev_card *c, unsigned int off, void *buf, size_t len)
{
	ssize_t n = pread(c->cfg_fd, buf, len, off);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int llmdev_cfg_write(struct llmdev_card *c, unsigned int off, const void *buf,
		     size_t len)
{
	ssize_t n = pwrite(c->cfg_fd, buf, len, off);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

uint16_t llmdev_cfg_read16(struct llmdev_card *c, unsigned int off)
{
	uint16_t v = 0xffff;

	llmdev_cfg_read(c, off, &v, 2);
	return v;
}

int llmdev_cfg_write16(struct llmdev_card *c, unsigned int off, uint16_t val)
{
	return llmdev_cfg_write(c, off, &val, 2);
}

unsigned int llmdev_cfg_find_cap(struct llmdev_card *c, uint8_t id)
{
	uint8_t pos = 0, hdr[2];
	int ttl = 48;

	if (!(llmdev_cfg_read16(c, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return 0;
	if (llmdev_cfg_read(c, PCI_CAPABILITY_LIST, &pos, 1))
		return 0;
	while (pos >= 0x40 && ttl--) {
		pos &= ~3;
		if (llmdev_cfg_read(c, pos, hdr, 2))
			return 0;
		if (hdr[0] == id)
			return pos;
		pos = hdr[1];
	}
	return 0;
}

unsigned int llmdev_cfg_find_ext_cap(struct llmdev_card *c, uint16_t id)
{
	unsigned int pos = PCI_CFG_SPACE_SIZE;
	int ttl = (PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) / 8;
	uint32_t hdr;

	while (pos >= PCI_CFG_SPACE_SIZE && ttl--) {
		if (llmdev_cfg_read(c, pos, &hdr, 4) || !hdr || hdr == ~0u)
			return 0;
		if (PCI_EXT_CAP_ID(hdr) == id)
			return pos;
		pos = PCI_EXT_CAP_NEXT(hdr);
	}
	return 0;
}

/* ---- registers and aperture --------------------------------------------- */

int llmdev_soft_reset(struct llmdev_card *c)
{
	uint32_t before = llmdev_rd32(c, LLMDEV_REG_RESET_COUNT);

	llmdev_wr32(c, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_RESET);
	if (llmdev_rd32(c, LLMDEV_REG_RESET_COUNT) != before + 1) {
		seterr(c->err, sizeof(c->err),
		       "%s: soft reset: RESET_COUNT %u -> %u", c->bdf, before,
		       llmdev_rd32(c, LLMDEV_REG_RESET_COUNT));
		return -EIO;
	}
	return 0;
}

int llmdev_card_sysfs_write(struct llmdev_card *c, const char *attr,
			    const char *val)
{
	char path[256];
	ssize_t n;
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", c->path, attr);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		seterr(c->err, sizeof(c->err), "%s: %s", path, strerror(errno));
		return err;
	}
	n = write(fd, val, strlen(val));
	err = n < 0 ? -errno : 0;
	if (n != (ssize_t)strlen(val))
		seterr(c->err, sizeof(c->err), "write %s to %s: %s", val, path,
		       n < 0 ? strerror(errno) : "short write");
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : err ? err : -EIO;
}

bool llmdev_card_has_flr(struct llmdev_card *c)
{
	char path[256], methods[128] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/reset_method", c->path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, methods, sizeof(methods) - 1);
	methods[n > 0 ? n : 0] = 0;
	close(fd);
	return strstr(methods, "flr") != NULL;
}

int llmdev_card_flr(struct llmdev_card *c)
{
	uint32_t before = llmdev_rd32(c, LLMDEV_REG_RESET_COUNT);
	int ret;

	if (!llmdev_card_has_flr(c)) {
		seterr(c->err, sizeof(c->err), "%s: no flr in reset_method", c->bdf);
		return -EOPNOTSUPP;
	}
	/* only an FLR: not a bus reset, which would take the root port too */
	ret = llmdev_card_sysfs_write(c, "reset_method", "flr");
	if (!ret)
		ret = llmdev_card_sysfs_write(c, "reset", "1");
	llmdev_card_sysfs_write(c, "reset_method", "default");
	if (ret)
		return ret;
	if (llmdev_rd32(c, LLMDEV_REG_RESET_COUNT) != before + 1) {
		seterr(c->err, sizeof(c->err), "%s: FLR: RESET_COUNT %u -> %u",
		       c->bdf, before, llmdev_rd32(c, LLMDEV_REG_RESET_COUNT));
		return -EIO;
	}
	return 0;
}

void llmdev_ap_write(struct llmdev_card *c, uint64_t off, const void *buf,
		     size_t len)
{
	const uint8_t *p = buf;

	while (len && (off & 7)) {
		*(volatile uint8_t *)(c->bar2 + off) = *p;
		off++, p++, len--;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		*(volatile uint64_t *)(c->bar2 + off) = v;
		off += 8, p += 8, len -= 8;
	}
	while (len) {
		*(volatile uint8_t *)(c->bar2 + off) = *p;
		off++, p++, len--;
	}
}

void llmdev_ap_read(struct llmdev_card *c, uint64_t off, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len && (off & 7)) {
		*p = *(volatile uint8_t *)(c->bar2 + off);
		off++, p++, len--;
	}
	while (len >= 8) {
		uint64_t v = *(volatile uint64_t *)(c->bar2 + off);

		memcpy(p, &v, 8);
		off += 8, p += 8, len -= 8;
	}
	while (len) {
		*p = *(volatile uint8_t *)(c->bar2 + off);
		off++, p++, len--;
	}
}

/* ---- misc ----------------------------------------------------------------- */

int llmdev_vmconf_str(const char *key, char *buf, size_t len)
{
	const char *path = getenv("LLMDEV_VMCONF") ?: LLMDEV_VMCONF;
	size_t klen = strlen(key);
	char line[512];
	int ret = -ENOENT;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		char *v;

		if (strncmp(line, key, klen) || line[klen] != '=')
			continue;
		v = line + klen + 1;
		v[strcspn(v, "\r\n")] = 0;
		/* tolerate shell quoting */
		if ((v[0] == '"' || v[0] == '\'') && strlen(v) >= 2 &&
		    v[strlen(v) - 1] == v[0]) {
			v[strlen(v) - 1] = 0;
			v++;
		}
		snprintf(buf, len, "%s", v);
		ret = 0;
	}
	fclose(f);
	return ret;
}

int llmdev_vmconf_u64(const char *key, uint64_t *val)
{
	char buf[128], *end;
	int ret = llmdev_vmconf_str(key, buf, sizeof(buf));

	if (ret)
		return ret;
	errno = 0;
	*val = strtoull(buf, &end, 0);
	if (errno || end == buf)
		return -EINVAL;
	/* accept K/M/G suffixes, as QEMU does */
	switch (*end) {
	case 'k': case 'K': *val <<= 10; break;
	case 'm': case 'M': *val <<= 20; break;
	case 'g': case 'G': *val <<= 30; break;
	}
	return 0;
}

uint64_t llmdev_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

void llmdev_sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

void llmdev_fill_random(void *buf, size_t len, uint64_t *seed)
{
	uint8_t *p = buf;

	while (len >= 8) {
		uint64_t v = llmdev_rand(seed);

		memcpy(p, &v, 8);
		p += 8, len -= 8;
	}
	while (len--)
		*p++ = llmdev_rand(seed);
}

uint64_t llmdev_seed(uint64_t def)
{
	const char *e = getenv("LLMDEV_SEED");
	uint64_t s;

	if (!e || !*e)
		return def;
	s = strtoull(e, NULL, 0);
	return s ? s : def;	/* xorshift needs a non-zero state */
}

long llmdev_memdiff(const void *a, const void *b, size_t len)
{
	const uint8_t *x = a, *y = b;
	size_t i;

	if (!memcmp(a, b, len))
		return -1;
	for (i = 0; i < len; i++)
		if (x[i] != y[i])
			return i;
	return -1;
}

/* ---- DMA buffers ---------------------------------------------------------- */

int llmdev_dmabuf_alloc(struct llmdev_dmabuf *b, size_t len, char *err,
			size_t errlen)
{
	size_t i;
	int fd;

	memset(b, 0, sizeof(*b));
	len = (len + LLMDEV_PAGE_SIZE - 1) & ~(size_t)(LLMDEV_PAGE_SIZE - 1);
	b->va = mmap(NULL, len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->va == MAP_FAILED) {
		b->va = NULL;
		seterr(err, errlen, "mmap %zu: %s", len, strerror(errno));
		return -ENOMEM;
	}
	b->len = len;
	b->npages = len / LLMDEV_PAGE_SIZE;
	/* no THP: khugepaged would migrate the pages under the card */
	madvise(b->va, len, MADV_NOHUGEPAGE);
	madvise(b->va, len, MADV_DONTFORK);
	if (mlock(b->va, len)) {
		seterr(err, errlen, "mlock %zu: %s", len, strerror(errno));
		llmdev_dmabuf_free(b);
		return -ENOMEM;
	}
	memset(b->va, 0, len);

	b->pa = calloc(b->npages, sizeof(*b->pa));
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (!b->pa || fd < 0) {
		seterr(err, errlen, "pagemap: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		llmdev_dmabuf_free(b);
		return -EIO;
	}
	for (i = 0; i < b->npages; i++) {
		uint64_t vpn = ((uintptr_t)b->va >> 12) + i, e;

		if (pread(fd, &e, 8, vpn * 8) != 8 || !(e >> 63) ||
		    !(e & ((1ull << 55) - 1))) {
			seterr(err, errlen,
			       "no physical address for page %zu (need root): entry %#" PRIx64,
			       i, e);
			close(fd);
			llmdev_dmabuf_free(b);
			return -EPERM;
		}
		b->pa[i] = (e & ((1ull << 55) - 1)) << 12;
	}
	close(fd);
	return 0;
}

void llmdev_dmabuf_free(struct llmdev_dmabuf *b)
{
	if (b->va)
		munmap(b->va, b->len);
	free(b->pa);
	memset(b, 0, sizeof(*b));
}

/* ---- rings -------------------------------------------------------------- */

int llmdev_uring_alloc(struct llmdev_uring *r, struct llmdev_card *c,
		       unsigned int n, uint32_t size)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->c = c;
	r->n = n;
	r->size = size;
	if (size > LLMDEV_RING_MAX_PAGE) {
		seterr(r->err, sizeof(r->err), "ring size %u > %u", size,
		       LLMDEV_RING_MAX_PAGE);
		return -EINVAL;
	}
	ret = llmdev_dmabuf_alloc(&r->desc, LLMDEV_PAGE_SIZE, r->err, sizeof(r->err));
	if (!ret)
		ret = llmdev_dmabuf_alloc(&r->cmpl, LLMDEV_PAGE_SIZE, r->err,
					  sizeof(r->err));
	if (!ret)
		ret = llmdev_dmabuf_alloc(&r->sg, LLMDEV_SG_POOL * LLMDEV_PAGE_SIZE,
					  r->err, sizeof(r->err));
	if (ret)
		llmdev_uring_free(r);
	return ret;
}

void llmdev_uring_free(struct llmdev_uring *r)
{
	llmdev_dmabuf_free(&r->desc);
	llmdev_dmabuf_free(&r->cmpl);
	llmdev_dmabuf_free(&r->sg);
}

int llmdev_uring_start(struct llmdev_uring *r)
{
	struct llmdev_card *c = r->c;

	memset(r->desc.va, 0, r->desc.len);
	memset(r->cmpl.va, 0, r->cmpl.len);
	r->tail = r->seen = 0;
	__sync_synchronize();
	llmdev_ring_wr(c, r->n, LLMDEV_RING_CTRL, 0);
	llmdev_wr64(c, LLMDEV_RING_BASE(r->n) + LLMDEV_RING_DESC_BASE, r->desc.pa[0]);
	llmdev_wr64(c, LLMDEV_RING_BASE(r->n) + LLMDEV_RING_CMPL_BASE, r->cmpl.pa[0]);
	llmdev_ring_wr(c, r->n, LLMDEV_RING_SIZE, r->size);
	llmdev_ring_wr(c, r->n, LLMDEV_RING_CTRL, LLMDEV_RING_CTRL_ENABLE);
	if (!(llmdev_ring_rd(c, r->n, LLMDEV_RING_STATUS) & LLMDEV_RING_STATUS_ENABLED)) {
		seterr(r->err, sizeof(r->err),
		       "%s: ring %u not enabled (status %#x err_code %u)",
		       c->bdf, r->n, llmdev_ring_rd(c, r->n, LLMDEV_RING_STATUS),
		       llmdev_ring_rd(c, r->n, LLMDEV_RING_ERR_CODE));
		return -EIO;
	}
	return 0;
}

void llmdev_uring_reset(struct llmdev_uring *r)
{
	llmdev_ring_wr(r->c, r->n, LLMDEV_RING_CTRL, LLMDEV_RING_CTRL_RESET);
	r->tail = r->seen = 0;
}

void llmdev_uring_post(struct llmdev_uring *r, uint64_t host, uint64_t hbm,
		       uint32_t len, uint32_t flags, uint32_t sg_count,
		       uint32_t cookie)
{
	volatile struct llmdev_hw_desc *d = llmdev_uring_slot(r, r->tail);

	d->host_addr = host;
	d->hbm_addr = hbm;
	d->length = len;
	d->flags = flags;
	d->sg_count = sg_count;
	d->cookie = cookie;
	r->tail++;
}

void llmdev_uring_doorbell(struct llmdev_uring *r)
{
	__sync_synchronize();	/* descriptors visible before the doorbell */
	llmdev_ring_wr(r->c, r->n, LLMDEV_RING_TAIL, r->tail);
	r->doorbells++;
}

int llmdev_uring_wait(struct llmdev_uring *r, struct llmdev_hw_cmpl *out,
		      unsigned int timeout_ms)
{
	volatile struct llmdev_hw_cmpl *e = (volatile struct llmdev_hw_cmpl *)
		(r->cmpl.va + (r->seen % r->size) * LLMDEV_CMPL_SIZE);
	uint16_t want = llmdev_uring_phase(r, r->seen);
	uint64_t deadline = llmdev_now_ns() + timeout_ms * 1000000ull;
	unsigned int spins = 0;

	while ((e->flags & LLMDEV_CMPL_F_PHASE) != want) {
		if (llmdev_now_ns() > deadline) {
			struct llmdev_card *c = r->c;

			seterr(r->err, sizeof(r->err),
			       "%s: ring %u: no completion %u after %u ms (head %u tail %u completed %u status %#x err_code %u)",
			       c->bdf, r->n, r->seen, timeout_ms,
			       llmdev_ring_rd(c, r->n, LLMDEV_RING_HEAD),
			       llmdev_ring_rd(c, r->n, LLMDEV_RING_TAIL),
			       llmdev_ring_rd(c, r->n, LLMDEV_RING_COMPLETED),
			       llmdev_ring_rd(c, r->n, LLMDEV_RING_STATUS),
			       llmdev_ring_rd(c, r->n, LLMDEV_RING_ERR_CODE));
			return -ETIMEDOUT;
		}
		if (++spins > 64)
			usleep(20);
		else
			sched_yield();
	}
	__sync_synchronize();
	out->cookie = e->cookie;
	out->bytes = e->bytes;
	out->status = e->status;
	out->flags = e->flags;
	out->desc_index = e->desc_index;
	r->seen++;
	return 0;
}

int llmdev_uring_post_buf(struct llmdev_uring *r, struct llmdev_dmabuf *buf,
			  size_t off, size_t len, uint64_t hbm, unsigned int max_desc)
{
	int ndesc = 0;

	if (off + len > buf->len || !len) {
		seterr(r->err, sizeof(r->err), "bad xfer %zu+%zu of %zu", off,
		       len, buf->len);
		return -EINVAL;
	}
	while (len) {
		size_t in_page = LLMDEV_PAGE_SIZE - off % LLMDEV_PAGE_SIZE;
		size_t chunk = 0;
		uint32_t nsg = 0;

		if ((unsigned int)ndesc >= max_desc ||
		    r->tail - r->seen >= r->size ||
		    (len > in_page && r->sg_next >= LLMDEV_SG_POOL)) {
			seterr(r->err, sizeof(r->err),
			       "%s: ring %u: no room for %zu more bytes",
			       r->c->bdf, r->n, len);
			return -ENOSPC;
		}
		if (len <= in_page) {
			/* one page: a plain descriptor */
			llmdev_uring_post(r, llmdev_dmabuf_pa(buf, off),
					  hbm, len, 0, 0, 0xc0000000 | r->tail);
			chunk = len;
		} else {
			uint8_t *sgp = r->sg.va + r->sg_next * LLMDEV_PAGE_SIZE;
			volatile struct llmdev_hw_sg *sg = (void *)sgp;

			while (len - chunk && nsg < LLMDEV_SG_PER_PAGE) {
				size_t o = off + chunk;
				size_t l = LLMDEV_PAGE_SIZE - o % LLMDEV_PAGE_SIZE;

				if (l > len - chunk)
					l = len - chunk;
				sg[nsg].addr = llmdev_dmabuf_pa(buf, o);
				sg[nsg].length = l;
				sg[nsg].reserved = 0;
				nsg++;
				chunk += l;
			}
			llmdev_uring_post(r, r->sg.pa[r->sg_next], hbm,
					  chunk, LLMDEV_DESC_F_SGL, nsg,
					  0xc0000000 | r->tail);
			r->sg_next++;
		}
		off += chunk;
		hbm += chunk;
		len -= chunk;
		ndesc++;
	}
	return ndesc;
}

int llmdev_uring_wait_ok(struct llmdev_uring *r, unsigned int timeout_ms)
{
	uint32_t idx = r->seen;
	volatile struct llmdev_hw_desc *d = llmdev_uring_slot(r, idx);
	struct llmdev_hw_cmpl cp;
	int ret = llmdev_uring_wait(r, &cp, timeout_ms);

	if (ret)
		return ret;
	if (cp.status || cp.bytes != d->length || cp.cookie != d->cookie ||
	    cp.desc_index != idx) {
		seterr(r->err, sizeof(r->err),
		       "%s: ring %u desc %u: status %u (%s) bytes %u/%u cookie %#x/%#x index %u",
		       r->c->bdf, r->n, idx, cp.status,
		       cp.status <= LLMDEV_ERR_MAX ? llmdev_err_names[cp.status] : "?",
		       cp.bytes, d->length, cp.cookie, d->cookie, cp.desc_index);
		return -EIO;
	}
	return 0;
}

int llmdev_uring_xfer(struct llmdev_uring *r, struct llmdev_dmabuf *buf,
		      size_t off, size_t len, uint64_t hbm)
{
	unsigned int batch_max = r->size < LLMDEV_SG_POOL ? r->size : LLMDEV_SG_POOL;
	int ndesc = 0;

	if (off + len > buf->len || !len) {
		seterr(r->err, sizeof(r->err), "bad xfer %zu+%zu of %zu", off,
		       len, buf->len);
		return -EINVAL;
	}
	while (len) {
		/* at most batch_max descriptors at a time: SG pages are reused */
		size_t part = len, in_page = LLMDEV_PAGE_SIZE - off % LLMDEV_PAGE_SIZE;
		int batch, i, ret;

		if (part > in_page) {
			size_t max = in_page + (size_t)(batch_max * LLMDEV_SG_PER_PAGE - 1) *
				     LLMDEV_PAGE_SIZE;

			if (part > max)
				part = max;
		}
		r->sg_next = 0;
		batch = llmdev_uring_post_buf(r, buf, off, part, hbm, batch_max);
		if (batch < 0)
			return batch;
		llmdev_uring_doorbell(r);
		for (i = 0; i < batch; i++) {
			ret = llmdev_uring_wait_ok(r, 10000);
			if (ret)
				return ret;
			ndesc++;
		}
		off += part;
		hbm += part;
		len -= part;
	}
	return ndesc;
}

/* ---- all cards ------------------------------------------------------------ */

int llmdev_cards_open(struct llmdev_cards *cs)
{
	char bdf[LLMDEV_MAX_CARDS][32];
	int n, i, ret;

	memset(cs, 0, sizeof(*cs));
	if (geteuid()) {
		seterr(cs->err, sizeof(cs->err), "needs root (sysfs BAR mmap, pagemap)");
		return -ENODEV;
	}
	n = llmdev_find_cards(bdf, LLMDEV_MAX_CARDS);
	if (!n) {
		seterr(cs->err, sizeof(cs->err), "no llmdev card (%04x:%04x) in " LLMDEV_SYSFS_PCI,
		       LLMDEV_PCI_VENDOR_ID, LLMDEV_PCI_DEVICE_ID);
		return -ENODEV;
	}
	for (i = 0; i < n; i++) {
		char drv[64];

		/* a driver owns the registers: poking them would break it */
		if (llmdev_card_driver(bdf[i], drv, sizeof(drv))) {
			seterr(cs->err, sizeof(cs->err),
			       "%s is bound to driver %s; these tests need unbound cards",
			       bdf[i], drv);
			return -ENODEV;
		}
	}
	for (i = 0; i < n; i++) {
		ret = llmdev_card_open(&cs->card[i], bdf[i]);
		if (ret) {
			snprintf(cs->err, sizeof(cs->err), "%s", cs->card[i].err);
			llmdev_cards_close(cs);
			return ret == -ENODEV ? -EIO : ret;
		}
		cs->n++;
	}
	return 0;
}

void llmdev_cards_close(struct llmdev_cards *cs)
{
	int i;

	for (i = 0; i < cs->n; i++)
		llmdev_card_close(&cs->card[i]);
	cs->n = 0;
}
