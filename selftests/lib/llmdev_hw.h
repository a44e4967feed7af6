/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the llmdev hardware selftests and tools: they talk to the card
 * through sysfs only (no driver): find the cards, map BAR 0 and BAR 2 through
 * resource0/resource2, read and write config space through the config file,
 * and build DMA buffers whose bus addresses come from /proc/self/pagemap
 * (valid because the test guest has no IOMMU: bus address == physical).
 *
 * Functions return 0 or a negative errno and leave a message in the card's
 * or the caller's error buffer; they never exit, so tests decide between
 * ASSERT, EXPECT and SKIP.
 */
#ifndef LLMDEV_HW_H
#define LLMDEV_HW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llmdev_regs.h"

#define LLMDEV_SYSFS_PCI	"/sys/bus/pci/devices"
#define LLMDEV_MAX_CARDS	16
#define LLMDEV_VMCONF		"/llmdev/vm.conf"
#define LLMDEV_PAGE_SIZE	4096u

/* struct resource flags from include/linux/ioport.h (not exported to uapi) */
#define LLMDEV_IORESOURCE_IO		0x00000100
#define LLMDEV_IORESOURCE_MEM		0x00000200
#define LLMDEV_IORESOURCE_PREFETCH	0x00002000
#define LLMDEV_IORESOURCE_MEM_64	0x00100000

struct llmdev_bar {
	uint64_t start;		/* bus/physical address */
	uint64_t size;
	uint64_t flags;		/* LLMDEV_IORESOURCE_* */
};

struct llmdev_card {
	char bdf[32];		/* "0000:01:00.0" */
	char path[128];		/* /sys/bus/pci/devices/<bdf> */
	int cfg_fd;
	volatile uint8_t *bar0;
	volatile uint8_t *bar2;
	struct llmdev_bar res[6];
	char err[256];		/* last error, names the device */
};

/* ---- discovery and mapping ------------------------------------------- */

struct llmdev_cards {
	int n;
	struct llmdev_card card[LLMDEV_MAX_CARDS];
	char err[256];
};

/* Opens every card; -ENODEV (a reason to skip) when none or not root. */
int llmdev_cards_open(struct llmdev_cards *cs);
void llmdev_cards_close(struct llmdev_cards *cs);

/* Fills bdf[] with the llmdev cards sorted by PCI address; returns the count. */
int llmdev_find_cards(char bdf[][32], int max);
/* Opens config space, enables the device if needed, maps both BARs. */
int llmdev_card_open(struct llmdev_card *c, const char *bdf);
void llmdev_card_close(struct llmdev_card *c);
bool llmdev_card_present(const char *bdf);
/* 1 and the driver's name if a driver is bound to the card, else 0 */
int llmdev_card_driver(const char *bdf, char *drv, size_t len);

/* sysfs attribute of a PCI device, as a number ("0x1234\n") */
int llmdev_sysfs_read_u64(const char *bdf, const char *attr, uint64_t *val);
int llmdev_sysfs_read_bars(const char *bdf, struct llmdev_bar res[6]);

/* config space through the sysfs config file */
int llmdev_cfg_read(struct llmdev_card *c, unsigned int off, void *buf, size_t len);
int llmdev_cfg_write(struct llmdev_card *c, unsigned int off, const void *buf, size_t len);
uint16_t llmdev_cfg_read16(struct llmdev_card *c, unsigned int off);
int llmdev_cfg_write16(struct llmdev_card *c, unsigned int off, uint16_t val);
/* offset of a capability, 0 if absent */
unsigned int llmdev_cfg_find_cap(struct llmdev_card *c, uint8_t id);
unsigned int llmdev_cfg_find_ext_cap(struct llmdev_card *c, uint16_t id);

/* ---- register access: volatile, exactly one access of the given size ----- */

static inline uint32_t llmdev_rd32(struct llmdev_card *c, uint32_t off)
{
	return *(volatile uint32_t *)(c->bar0 + off);
}

static inline void llmdev_wr32(struct llmdev_card *c, uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(c->bar0 + off) = v;
}

static inline uint64_t llmdev_rd64(struct llmdev_card *c, uint32_t off)
{
	return *(volatile uint64_t *)(c->bar0 + off);
}

static inline void llmdev_wr64(struct llmdev_card *c, uint32_t off, uint64_t v)
{
	*(volatile uint64_t *)(c->bar0 + off) = v;
}

static inline uint32_t llmdev_ring_rd(struct llmdev_card *c, unsigned int ring,
				      uint32_t reg)
{
	return llmdev_rd32(c, LLMDEV_RING_BASE(ring) + reg);
}

static inline void llmdev_ring_wr(struct llmdev_card *c, unsigned int ring,
				  uint32_t reg, uint32_t v)
{
	llmdev_wr32(c, LLMDEV_RING_BASE(ring) + reg, v);
}

static inline uint64_t llmdev_perf(struct llmdev_card *c, unsigned int i)
{
	return llmdev_rd64(c, LLMDEV_REG_PERF_LIVE + 8 * i);
}

/* CONTROL.RESET; checks RESET_COUNT moved. Returns 0 or -EIO. */
int llmdev_soft_reset(struct llmdev_card *c);
/* write val to the card's sysfs attribute attr (e.g. "reset") */
int llmdev_card_sysfs_write(struct llmdev_card *c, const char *attr,
			    const char *val);
/* the kernel offers FLR in reset_method */
bool llmdev_card_has_flr(struct llmdev_card *c);
/*
 * FLR through sysfs (reset_method "flr", then "reset"; reset_method back to
 * the default list); the kernel saves and restores config space around it.
 * Checks RESET_COUNT moved. 0, -EOPNOTSUPP without FLR, or another -errno.
 */
int llmdev_card_flr(struct llmdev_card *c);

/* ---- HBM aperture, counted accesses ------------------------------------ */

/* 8-byte accesses where aligned, single bytes at the edges */
void llmdev_ap_write(struct llmdev_card *c, uint64_t off, const void *buf, size_t len);
void llmdev_ap_read(struct llmdev_card *c, uint64_t off, void *buf, size_t len);

/* ---- misc ------------------------------------------------------------- */

/* KEY=value from /llmdev/vm.conf (or $LLMDEV_VMCONF); -ENOENT if absent */
int llmdev_vmconf_u64(const char *key, uint64_t *val);
int llmdev_vmconf_str(const char *key, char *buf, size_t len);

uint64_t llmdev_now_ns(void);		/* CLOCK_MONOTONIC */
void llmdev_sleep_ms(unsigned int ms);

/* xorshift64* PRNG: deterministic, seeded by the test */
static inline uint64_t llmdev_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}
void llmdev_fill_random(void *buf, size_t len, uint64_t *seed);
/* seed from $LLMDEV_SEED (decimal or 0x hex), else def */
uint64_t llmdev_seed(uint64_t def);
/* index of first differing byte, or -1 */
long llmdev_memdiff(const void *a, const void *b, size_t len);

extern const char *const llmdev_perf_names[LLMDEV_PERF_NUM_COUNTERS];
extern const char *const llmdev_err_names[LLMDEV_ERR_MAX + 1];
const char *llmdev_perf_name(unsigned int i);
const char *llmdev_err_name(unsigned int code);

/* ---- DMA without a driver ---------------------------------------------- */

/*
 * Page-granular buffer, locked in memory, huge pages off (so khugepaged does
 * not move it), with the physical address of every page.
 */
struct llmdev_dmabuf {
	uint8_t *va;
	size_t len;		/* multiple of the page size */
	size_t npages;
	uint64_t *pa;
};

int llmdev_dmabuf_alloc(struct llmdev_dmabuf *b, size_t len, char *err, size_t errlen);
void llmdev_dmabuf_free(struct llmdev_dmabuf *b);
static inline uint64_t llmdev_dmabuf_pa(const struct llmdev_dmabuf *b, size_t off)
{
	return b->pa[off / LLMDEV_PAGE_SIZE] + off % LLMDEV_PAGE_SIZE;
}

#define LLMDEV_RING_DEF_SIZE	64
#define LLMDEV_RING_MAX_PAGE	(LLMDEV_PAGE_SIZE / LLMDEV_DESC_SIZE)	/* 128 */
#define LLMDEV_SG_POOL		16	/* SG pages: SGL descriptors in flight */
#define LLMDEV_SG_PER_PAGE	(LLMDEV_PAGE_SIZE / LLMDEV_SG_SIZE)	/* 256 */

/*
 * One ring driven from userspace. The descriptor ring, the completion ring
 * and each SG table live in pages of their own.
 */
struct llmdev_uring {
	struct llmdev_card *c;
	unsigned int n;		/* ring index */
	uint32_t size;
	uint32_t tail;		/* descriptors posted (not necessarily rung) */
	uint32_t seen;		/* completions consumed */
	uint32_t doorbells;	/* TAIL writes by llmdev_uring_doorbell() */
	struct llmdev_dmabuf desc;
	struct llmdev_dmabuf cmpl;
	struct llmdev_dmabuf sg;	/* LLMDEV_SG_POOL pages */
	unsigned int sg_next;
	char err[256];
};

/* allocate the host memory of a ring (size <= 128) */
int llmdev_uring_alloc(struct llmdev_uring *r, struct llmdev_card *c,
		       unsigned int n, uint32_t size);
void llmdev_uring_free(struct llmdev_uring *r);
/* program DESC_BASE/CMPL_BASE/SIZE, CTRL.ENABLE; clears host rings */
int llmdev_uring_start(struct llmdev_uring *r);
/* CTRL.RESET and forget host indices */
void llmdev_uring_reset(struct llmdev_uring *r);

static inline volatile struct llmdev_hw_desc *
llmdev_uring_slot(struct llmdev_uring *r, uint32_t idx)
{
	return (volatile struct llmdev_hw_desc *)
		(r->desc.va + (idx % r->size) * LLMDEV_DESC_SIZE);
}

/* write a descriptor at slot tail and tail++ (no doorbell) */
void llmdev_uring_post(struct llmdev_uring *r, uint64_t host, uint64_t hbm,
		       uint32_t len, uint32_t flags, uint32_t sg_count,
		       uint32_t cookie);
void llmdev_uring_doorbell(struct llmdev_uring *r);
/*
 * Wait for the next completion (phase bit), copy it out and consume it.
 * Returns 0, or -ETIMEDOUT after timeout_ms.
 */
int llmdev_uring_wait(struct llmdev_uring *r, struct llmdev_hw_cmpl *out,
		      unsigned int timeout_ms);
/* expected phase flag of completion number n */
static inline uint16_t llmdev_uring_phase(struct llmdev_uring *r, uint32_t n)
{
	return (n / r->size) % 2 ? 0 : LLMDEV_CMPL_F_PHASE;
}

/*
 * Move len bytes between buf+off and HBM at hbm through this ring (its
 * direction decides which way), with SGL descriptors of one entry per page
 * (at most 256 per descriptor) or one plain descriptor when the bytes sit in
 * a single page. Posts, rings, waits; every completion must succeed.
 * Returns the number of descriptors used, or a negative errno (r->err says why).
 */
int llmdev_uring_xfer(struct llmdev_uring *r, struct llmdev_dmabuf *buf,
		      size_t off, size_t len, uint64_t hbm);
/*
 * Post (no doorbell) the descriptors that move len bytes between buf+off and
 * HBM at hbm, as llmdev_uring_xfer() would, using at most max_desc
 * descriptors and the SG pages from r->sg_next on (the caller sets it to 0
 * when all earlier SGL descriptors have completed). Returns the number of
 * descriptors, or -ENOSPC (nothing beyond what fitted was posted; r->err
 * says so) or -EINVAL.
 */
int llmdev_uring_post_buf(struct llmdev_uring *r, struct llmdev_dmabuf *buf,
			  size_t off, size_t len, uint64_t hbm, unsigned int max_desc);
/* Wait for the next completion and check it is a success of its descriptor. */
int llmdev_uring_wait_ok(struct llmdev_uring *r, unsigned int timeout_ms);

#endif /* LLMDEV_HW_H */
