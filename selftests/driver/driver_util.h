/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the llmdev driver selftests: raw ioctl wrappers (the
 * tests check the ABI, not a library), sysfs and vm.conf readers, random
 * patterns, and BAR 0 access for fault injection. The functions are in
 * driver_util.c, compiled once into the archive every driver_* test links
 * (see the Makefile); the few macros that need the kselftest harness'
 * context (_metadata, self) are here.
 *
 * Every wrapper returns 0 or a negative errno, never exits: the tests
 * decide between ASSERT, EXPECT and SKIP. Every function here is also safe
 * to call from helper threads and forked children (no harness macros).
 */
#ifndef LLMDEV_DRIVER_UTIL_H
#define LLMDEV_DRIVER_UTIL_H

/* what the declarations need, and the system headers every test uses */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
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
#include <sys/types.h>
#include <sys/wait.h>

#include "llmdev.h"		/* uapi */
#include "llmdev_regs.h"	/* FAULT_INJECT bits, ring numbering */
#include "llmdev_user.h"	/* selftests/lib: unprivileged users */

#define LD_NSEC_PER_SEC	1000000000ULL
#define LD_LONG_WAIT	(30 * LD_NSEC_PER_SEC)	/* "forever" for a transfer */
#define LD_PAGE		4096UL
#define LD_KIB		1024ULL
#define LD_MIB		(1024ULL * 1024)

#define LD_SYSFS_CLASS	"/sys/class/llmdev"
#define LD_PARAM_TIMEOUT "/sys/module/llmdev/parameters/dma_timeout_ms"
#define LD_VMCONF	"/llmdev/vm.conf"

/*
 * The 6.1 harness runs the test body even when FIXTURE_SETUP() called
 * SKIP() (later kernels do not); every TEST_F starts with this.
 */
#define SETUP_OR_SKIP() do { if (_metadata->skip) return; } while (0)

/*
 * The fixtures' common steps. They are macros because the harness' SKIP,
 * ASSERT and EXPECT need the test's context (_metadata, self).
 *
 * LD_FIXTURE_START: watch the kernel log, and SKIP when the driver is not
 * loaded. LD_FIXTURE_OPEN_CARD0: open /dev/llmdev0 into self->fd and read
 * its info into self->info. LD_FIXTURE_OPEN_CARDS: the same for cards 0 ..
 * self->ncards - 1, into self->fds[] and self->info[].
 * LD_EXPECT_NO_KERNEL_REPORTS: the test fails if the kernel logged a
 * warning, BUG, KASAN or lockdep report since LD_FIXTURE_START.
 * LD_FIXTURE_END: that check, then close self->fd (if open).
 */
#define LD_FIXTURE_START()						\
	do {								\
		self->kmsg = ld_kmsg_open();				\
		self->fd = -1;						\
		if (access("/dev/llmdev0", F_OK))			\
			SKIP(return, "/dev/llmdev0 is missing: llmdev.ko not loaded?"); \
	} while (0)

#define LD_FIXTURE_OPEN_CARD0()						\
	do {								\
		self->fd = ld_open(0);					\
		ASSERT_LE(0, self->fd)					\
			TH_LOG("open /dev/llmdev0: %s", strerror(-self->fd)); \
		ASSERT_EQ(0, ld_info(self->fd, &self->info));		\
	} while (0)

#define LD_FIXTURE_OPEN_CARDS()						\
	do {								\
		unsigned int _c;					\
									\
		for (_c = 0; _c < self->ncards; _c++) {			\
			self->fds[_c] = ld_open(_c);			\
			ASSERT_LE(0, self->fds[_c]);			\
			ASSERT_EQ(0, ld_info(self->fds[_c], &self->info[_c])); \
		}							\
	} while (0)

#define LD_EXPECT_NO_KERNEL_REPORTS(kmsg_fd)				\
	do {								\
		char _kmsg[256];					\
		int _reports = ld_kmsg_problems(kmsg_fd, _kmsg, sizeof(_kmsg)); \
									\
		if (_reports)						\
			TH_LOG("%d kernel report(s) during the test, the first: %s", \
			       _reports, _kmsg);			\
		EXPECT_EQ(0, _reports);					\
	} while (0)

#define LD_FIXTURE_END()						\
	do {								\
		LD_EXPECT_NO_KERNEL_REPORTS(self->kmsg);		\
		if (self->fd >= 0)					\
			close(self->fd);				\
	} while (0)

/* ---- time ---------------------------------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t ld_now_ns(void);
/* Sleep @ms milliseconds, resumed across signals. */
void ld_msleep(unsigned int ms);

/* ---- files, sysfs, vm.conf -------------------------------------------- */

/* The contents of @path into @buf (NUL-terminated, trailing blanks cut). */
int ld_read_file(const char *path, char *buf, size_t len);
/* Write the string @val to @path in one write(). */
int ld_write_file(const char *path, const char *val);
/* A number (any base strtoull() takes) from @path; -EINVAL if none. */
int ld_read_u64(const char *path, uint64_t *val);
/* /sys/class/llmdev/llmdev<card>/<attr> into @buf; snprintf()'s result. */
int ld_sysfs_path(char *buf, size_t len, unsigned int card, const char *attr);
/* A number from /sys/class/llmdev/llmdev<card>/<attr>. */
int ld_sysfs_u64(unsigned int card, const char *attr, uint64_t *val);
/* The value of a "KEY=value" line of /llmdev/vm.conf in @buf, or NULL. */
const char *ld_vmconf(const char *key, char *buf, size_t len);
/* Cards present: /dev/llmdev0 .. N-1. */
unsigned int ld_num_cards(void);
/*
 * Open /dev/llmdev<card>. Who may is the udev rule's business (the VM runs
 * udevd with udev/60-llmdev.rules): the tests never change the node.
 */
int ld_open(unsigned int card);

/* ---- random data ------------------------------------------------------ */

/* The next number of a xorshift64* sequence kept in *@state. */
uint64_t ld_rand64(uint64_t *state);
/* Fill @buf with the pseudo-random pattern of @seed (the same every time). */
void ld_fill(void *buf, size_t len, uint64_t seed);
/* Index of the first byte where @a and @b differ, or -1. */
long ld_cmp(const void *a, const void *b, size_t len);
/* Index of the first byte that is not @val, or -1. */
long ld_memchk(const void *a, int val, size_t len);
/* Index of the first non-zero byte, or -1. */
long ld_nonzero(const void *a, size_t len);
/* Anonymous page-aligned memory with a guard page after it; NULL if none. */
void *ld_alloc_buf(size_t len);
/* Free what ld_alloc_buf(@len) returned (NULL is fine). */
void ld_free_buf(void *p, size_t len);

/* ---- raw ioctls --------------------------------------------------------- */

/* ioctl(): 0 or -errno. */
int ld_ioctl(int fd, unsigned long cmd, void *arg);
/* LLMDEV_INFO into @info. */
int ld_info(int fd, struct llmdev_info *info);
/* LLMDEV_HBM_ALLOC; the reply in *@out unless NULL; @name may be NULL. */
int ld_hbm_alloc(int fd, uint64_t length, uint64_t align, uint32_t flags,
		 const char *name, struct llmdev_hbm_alloc *out);
/* LLMDEV_HBM_FREE of @handle. */
int ld_hbm_free(int fd, uint32_t handle);
/* LLMDEV_HBM_OPEN of the persistent region @name; the reply in *@out. */
int ld_hbm_open(int fd, const char *name, struct llmdev_hbm_open *out);
/* LLMDEV_HBM_LIST into a malloc'ed array; *@count is the number of regions. */
int ld_hbm_list(int fd, struct llmdev_hbm_region **regions,
		unsigned int *count);
/* The region @handle in a list of @n, or NULL. */
struct llmdev_hbm_region *
ld_find_region(struct llmdev_hbm_region *r, unsigned int n, uint32_t handle);
/* LLMDEV_DMA_SUBMIT of one transfer; its fence in *@fence unless NULL. */
int ld_submit(int fd, uint32_t handle, uint64_t offset, void *buf,
	      uint64_t length, bool to_card, uint32_t ring, uint64_t *fence);
/* LLMDEV_FENCE_WAIT for @fence; its status in *@status unless NULL. */
int ld_wait(int fd, uint64_t fence, uint64_t timeout_ns, int *status);
/* LLMDEV_FENCE_WAIT with LLMDEV_WAIT_ANY; the fence reaped and its status. */
int ld_wait_any(int fd, uint64_t timeout_ns, uint64_t *fence, int *status);
/* One synchronous transfer: the ioctl error, else the fence status. */
int ld_xfer(int fd, uint32_t handle, uint64_t offset, void *buf,
	    uint64_t length, bool to_card, uint32_t ring);
/* LLMDEV_PERF_READ into @p. */
int ld_perf(int fd, struct llmdev_perf *p);
/* hbm_used from sysfs, polled until it is @want or 2 s pass; ~0 on error. */
uint64_t ld_hbm_used_settle(unsigned int card, uint64_t want);

/* ---- peer links ------------------------------------------------------------ */

/* LLMDEV_LINK_INFO of @port into @l. */
int ld_link_info(int fd, unsigned int port, struct llmdev_link_info *l);
/* LLMDEV_LINK_SET: enable (1) or disable (0) @port. */
int ld_link_set(int fd, unsigned int port, unsigned int enable);
/* Poll LINK_INFO until @port is in @state: 0, -ETIME after @ms, or -errno. */
int ld_link_wait(int fd, unsigned int port, uint32_t state, unsigned int ms);

#define LD_MAX_CARDS	16
#define LD_MAX_PORTS	LLMDEV_NUM_LINK_PORTS

/*
 * The cabling of the VM: peer[c][p] is card * LD_MAX_PORTS + port of the
 * other end of card c's port p, or -1. From "CABLES=0.0-1.1,1.0-2.1,..."
 * in vm.conf (scripts/vm.py --cables) when set, else the default: a ring,
 * card i port 0 to card i + 1 port 1 (none with one card). -EINVAL if
 * CABLES does not parse.
 */
int ld_topology(unsigned int ncards, int peer[LD_MAX_CARDS][LD_MAX_PORTS]);

/* ---- collective groups and collectives -------------------------------------- */

/* LLMDEV_GROUP_CREATE of the cards @fds (rank order); its id in *@group. */
int ld_group_create(int fd, const int32_t *fds, unsigned int nranks,
		    uint32_t *group);
/* LLMDEV_GROUP_DESTROY of @group. */
int ld_group_destroy(int fd, uint32_t group);
/* LLMDEV_COLL_SUBMIT, one buffer per rank in @bufs; the fence in *@fence. */
int ld_coll_submit(int fd, uint32_t group, uint32_t op, uint32_t dtype,
		   uint32_t redop, uint32_t root, uint64_t count,
		   const struct llmdev_coll_buf *bufs, uint64_t *fence);
/* Bytes per element of an LLMDEV_DTYPE_* (2 or 4). */
unsigned int ld_dtype_size(uint32_t dtype);

/* ---- routing table ---------------------------------------------------------- */

/* LLMDEV_ROUTE_SET; *@out (unless NULL): the struct as the driver left it */
int ld_route_set(int fd, const struct llmdev_route_entry *e, uint32_t count,
		 struct llmdev_route *out);
/* LLMDEV_ROUTE_GET into @e (room for @cap); the table's size in *@count. */
int ld_route_get(int fd, struct llmdev_route_entry *e, uint32_t cap,
		 uint32_t *count, uint32_t *gen);

/* ---- BAR 0: fault injection --------------------------------------------- */

struct ld_bar0 {
	volatile uint8_t *regs;
	char why[512];		/* reason, when mapping failed */
};

/*
 * Map card @card's BAR 0 through sysfs (resource0) and check its ID
 * register; on failure b->regs is NULL and b->why says why.
 */
int ld_bar0_map(unsigned int card, struct ld_bar0 *b);
/*
 * Map card @card's BAR 0 into @bar, or SKIP (then @statement) where the
 * system refuses the mapping (no resource0, CONFIG_IO_STRICT_DEVMEM); a
 * card whose ID register reads wrong fails the test instead. A macro: the
 * harness' SKIP and ASSERT need the test's context.
 */
#define LD_BAR0_MAP_OR_SKIP(card, bar, statement)			\
	do {								\
		int _ret = ld_bar0_map(card, bar);			\
									\
		ASSERT_NE(-ENODEV, _ret) TH_LOG("%s", (bar)->why);	\
		if (_ret)						\
			SKIP(statement, "no BAR 0 access: %s", (bar)->why); \
	} while (0)
/* Undo ld_bar0_map() (safe if it failed). */
void ld_bar0_unmap(struct ld_bar0 *b);
/* 32-bit register read at @off. */
uint32_t ld_rd32(struct ld_bar0 *b, uint32_t off);
/* 32-bit register write at @off, followed by a full barrier. */
void ld_wr32(struct ld_bar0 *b, uint32_t off, uint32_t v);
/* 64-bit register read: one aligned 8-byte access (docs/hardware.md 1.1). */
uint64_t ld_rd64(struct ld_bar0 *b, uint32_t off);
/* 64-bit register write: one aligned 8-byte access, then a full barrier. */
void ld_wr64(struct ld_bar0 *b, uint32_t off, uint64_t v);
/* Hardware ring number of a uapi (direction, ring) pair. */
unsigned int ld_hw_ring(bool to_card, unsigned int ring);

/* ---- module parameters ---------------------------------------------------- */

/* The llmdev.dma_timeout_ms module parameter. */
int ld_get_timeout_ms(unsigned int *ms);
/* Set the llmdev.dma_timeout_ms module parameter. */
int ld_set_timeout_ms(unsigned int ms);

/* ---- SIGBUS/SIGSEGV-safe memory access ------------------------------------ */

/*
 * Read (or write, if @write) one byte at @p; returns 0, or the signal the
 * access raised (SIGBUS, SIGSEGV). The read byte goes to *@val, a write
 * stores *@val (0x5a if @val is NULL). One access at a time per process:
 * the handler's jump buffer is shared.
 */
int ld_touch(volatile uint8_t *p, bool write, uint8_t *val);

/* ---- kernel log ------------------------------------------------------------ */

/*
 * /dev/kmsg from now on; -1 if unavailable. Tests scan it at teardown so a
 * kernel warning is pinned on the test that caused it.
 */
int ld_kmsg_open(void);
/*
 * Kernel problem reports since ld_kmsg_open(): their number; the first one
 * in @first. Closes @fd.
 */
int ld_kmsg_problems(int fd, char *first, size_t len);

/* ---- failslab (debug kernel): make this task's slab allocations fail ------ */

#define LD_FAILSLAB	"/sys/kernel/debug/failslab"
#define LD_FAILSLAB_NATTR 8	/* the attributes ld_failslab_setup() sets */

struct ld_failslab {
	char saved[LD_FAILSLAB_NATTR][32];
	bool ok;
};

/*
 * Save failslab's settings into @f, then make every slab allocation of a
 * task with make-it-fail set fail: -ENOENT without failslab (no debugfs or
 * CONFIG_FAILSLAB), -EIO if a setting was refused.
 */
int ld_failslab_setup(struct ld_failslab *f);
/* Put back the settings ld_failslab_setup() saved (nothing if it failed). */
void ld_failslab_restore(struct ld_failslab *f);
/* ioctl() with this task's slab allocations failing; 0 or -errno. */
int ld_ioctl_nomem(int fd, unsigned long cmd, void *arg);

/* ---- child processes ---------------------------------------------------- */

/* Wait for a child; its exit code, or 128 + signal. */
int ld_wait_child(pid_t pid);
/*
 * Give up one capability for good, staying root otherwise (uid 0, the
 * other capabilities): used in forked children.
 */
int ld_drop_cap(unsigned int cap);
/*
 * Become nobody (65534) for good, in the group the udev rule gives the
 * cards (see selftests/lib/llmdev_user.h): used in forked children.
 */
int ld_drop_privs(void);

#endif /* LLMDEV_DRIVER_UTIL_H */
