// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev driver: module unload and reload, and hot-unplug of a card.
 * Runs last: it unloads the module, reloads it from
 * /llmdev/modules/llmdev.ko, and finally removes the last card from the VM
 * (hostctl hmp 'device_del llmdev<N-1>').
 *
 * Tests run in file order.
 */
#include <dirent.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>

#include "driver_util.h"
#include "kselftest_harness.h"

#define MODULE_KO	"/llmdev/modules/llmdev.ko"

static int delete_module(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK) ? -errno : 0;
}

static bool module_loaded(void)
{
	return access("/sys/module/llmdev", F_OK) == 0;
}

/* "name=value ..." for the parameters the module has now. */
static void module_params(char *buf, size_t len)
{
	DIR *d = opendir("/sys/module/llmdev/parameters");
	struct dirent *e;
	size_t used = 0;

	buf[0] = 0;
	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[300], val[128];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/module/llmdev/parameters/%s", e->d_name);
		if (ld_read_file(path, val, sizeof(val)) || !val[0] || strchr(val, ' '))
			continue;
		used += snprintf(buf + used, len > used ? len - used : 0, "%s%s=%s",
				 used ? " " : "", e->d_name, val);
	}
	closedir(d);
	if (used >= len)
		buf[0] = 0;
}

static int insert_module(const char *params)
{
	int fd = open(MODULE_KO, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, params, 0) ? -errno : 0;
	close(fd);
	return ret;
}

/* Wait until /dev/llmdev0..n-1 exist; the number found. */
static unsigned int wait_cards(unsigned int n, unsigned int ms)
{
	uint64_t end = ld_now_ns() + ms * 1000000ULL;

	while (ld_num_cards() < n && ld_now_ns() < end)
		ld_msleep(50);
	return ld_num_cards();
}

static unsigned int expected_cards(void)
{
	char buf[32];

	if (ld_vmconf("CARDS", buf, sizeof(buf)))
		return atoi(buf);
	return ld_num_cards();
}

/*
 * The PCI device behind card @card, a directory of /sys/devices (to find
 * it again once the driver let it go); 0 or -errno.
 */
static int card_pci_dir(unsigned int card, char *dir, size_t len)
{
	char link[128];

	snprintf(link, sizeof(link), "/sys/class/llmdev/llmdev%u/device", card);
	if (!realpath(link, dir))
		return -errno;
	return strlen(dir) < len ? 0 : -ENAMETOOLONG;
}

/*
 * Read @len bytes of HBM at @off through the aperture (BAR 2) of the PCI
 * device in @dir, with no driver bound; the first nonzero byte's index,
 * -1 if all are zero, or -2 - errno.
 */
static long aperture_nonzero(const char *dir, uint64_t off, size_t len)
{
	char path[PATH_MAX + 16];
	long page = sysconf(_SC_PAGESIZE), nz = -1;
	uint64_t base = off & ~(uint64_t)(page - 1);
	size_t maplen = off - base + len, i;
	volatile const uint8_t *p;
	void *m;
	int fd;

	snprintf(path, sizeof(path), "%s/resource2", dir);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -2 - errno;
	m = mmap(NULL, maplen, PROT_READ, MAP_SHARED, fd, base);
	close(fd);
	if (m == MAP_FAILED)
		return -2 - errno;
	p = (volatile const uint8_t *)m + (off - base);
	for (i = 0; i < len && nz < 0; i++)
		if (p[i])
			nz = i;
	munmap(m, maplen);
	return nz;
}

/* Round trip of @len random bytes on card @card; 0 or what went wrong. */
static int card_round_trip(int fd, uint64_t len, uint64_t seed)
{
	struct llmdev_hbm_alloc a;
	uint8_t *src = ld_alloc_buf(len), *dst = ld_alloc_buf(len);
	int ret;

	if (!src || !dst)
		return -ENOMEM;
	ret = ld_hbm_alloc(fd, len, 0, 0, NULL, &a);
	if (ret)
		goto out;
	ld_fill(src, len, seed);
	ret = ld_xfer(fd, a.handle, 0, src, len, true, LLMDEV_RING_ANY);
	if (!ret)
		ret = ld_xfer(fd, a.handle, 0, dst, len, false, LLMDEV_RING_ANY);
	if (!ret && ld_cmp(src, dst, len) >= 0)
		ret = -EILSEQ;
	ld_hbm_free(fd, a.handle);
out:
	ld_free_buf(src, len);
	ld_free_buf(dst, len);
	return ret;
}

FIXTURE(unplug) {
	int kmsg;		/* /dev/kmsg, for kernel reports */
	int fd;
	unsigned int ncards;
};

FIXTURE_SETUP(unplug)
{
	LD_FIXTURE_START();
	self->ncards = ld_num_cards();
}

FIXTURE_TEARDOWN(unplug)
{
	LD_FIXTURE_END();
}

/* ---- module unload with users ---------------------------------------- */

TEST_F(unplug, rmmod_while_open)
{
	struct llmdev_info info;
	int ret;
	void *map;
	struct llmdev_hbm_alloc a;

	SETUP_OR_SKIP();
	if (!module_loaded())
		SKIP(return, "llmdev is built in");
	self->fd = ld_open(0);
	ASSERT_LE(0, self->fd);
	ret = delete_module("llmdev");
	EXPECT_NE(0, ret) TH_LOG("module unloaded under an open file");
	if (ret == 0) {
		/* put it back for the other tests */
		ASSERT_EQ(0, insert_module(""));
		return;
	}
	EXPECT_TRUE(ret == -EBUSY || ret == -EAGAIN);
	TH_LOG("rmmod with an open file -> %s (%d)", strerror(-ret), -ret);
	/* the open file still works */
	EXPECT_EQ(0, ld_info(self->fd, &info));
	EXPECT_EQ(0, card_round_trip(self->fd, 65536, 1));

	/* a mapping alone (file closed) also pins the module */
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 4096, 0, 0, NULL, &a));
	map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, a.mmap_offset);
	ASSERT_NE(MAP_FAILED, map);
	close(self->fd);
	self->fd = -1;
	ret = delete_module("llmdev");
	EXPECT_NE(0, ret) TH_LOG("module unloaded under a live mapping");
	if (ret == 0) {
		ASSERT_EQ(0, insert_module(""));
		return;
	}
	munmap(map, 4096);
}

TEST_F_TIMEOUT(unplug, rmmod_and_reload, 90)
{
	char params[512], name[LLMDEV_NAME_LEN], pci[PATH_MAX];
	struct llmdev_hbm_alloc a, b;
	struct llmdev_info info;
	uint64_t serial[64];
	unsigned int n, c;
	uint8_t *buf = ld_alloc_buf(65536);
	long nz;
	int ret, fd;

	SETUP_OR_SKIP();
	if (!module_loaded())
		SKIP(return, "llmdev is built in");
	if (access(MODULE_KO, R_OK))
		SKIP(return, "%s is missing", MODULE_KO);
	ASSERT_NE(NULL, buf);
	n = self->ncards;
	ASSERT_LE(n, 64);
	for (c = 0; c < n; c++)
		ASSERT_EQ(0, ld_sysfs_u64(c, "serial", &serial[c]));

	/* a persistent region with data, which the reload must not leak */
	fd = ld_open(0);
	ASSERT_LE(0, fd);
	snprintf(name, sizeof(name), "unplug-%d", getpid());
	ASSERT_EQ(0, ld_hbm_alloc(fd, 65536, 0, LLMDEV_HBM_PERSISTENT, name, &a));
	ld_fill(buf, 65536, 5);
	ASSERT_EQ(0, ld_xfer(fd, a.handle, 0, buf, 65536, true, 0));
	close(fd);
	ASSERT_EQ(0, card_pci_dir(0, pci, sizeof(pci)));

	module_params(params, sizeof(params));
	TH_LOG("reloading with \"%s\"", params);
	/* the last close may still be in flight: retry briefly */
	for (c = 0; c < 50; c++) {
		ret = delete_module("llmdev");
		if (ret != -EAGAIN && ret != -EBUSY)
			break;
		ld_msleep(100);
	}
	ASSERT_EQ(0, ret) TH_LOG("rmmod llmdev: %s", strerror(-ret));
	EXPECT_FALSE(module_loaded());
	EXPECT_NE(0, access("/sys/class/llmdev/llmdev0", F_OK));
	ld_msleep(200);
	EXPECT_EQ(0, ld_num_cards()) TH_LOG("device nodes left after rmmod");
	/* with no driver: what the card holds is what the next one would find */
	nz = aperture_nonzero(pci, a.hbm_offset, 65536);
	EXPECT_GE(nz, -1) TH_LOG("%s/resource2: %s", pci, strerror(-2 - nz));
	EXPECT_EQ(-1, nz) TH_LOG("byte %ld of the region was left on the card by rmmod", nz);

	ret = insert_module(params);
	if (ret == -EINVAL && params[0])
		ret = insert_module("");
	ASSERT_EQ(0, ret) TH_LOG("insmod %s: %s", MODULE_KO, strerror(-ret));
	EXPECT_EQ(n, wait_cards(n, 20000));
	EXPECT_EQ(expected_cards(), ld_num_cards());

	for (c = 0; c < n && c < ld_num_cards(); c++) {
		uint64_t s;

		fd = ld_open(c);
		ASSERT_LE(0, fd) TH_LOG("card %u after reload: %s", c, strerror(-fd));
		ASSERT_EQ(0, ld_info(fd, &info));
		ASSERT_EQ(0, ld_sysfs_u64(c, "serial", &s));
		EXPECT_EQ(serial[c], s) TH_LOG("card %u has another serial after reload", c);
		EXPECT_EQ(serial[c], info.serial);
		EXPECT_EQ(0, info.hbm_used) TH_LOG("card %u: HBM in use after reload", c);
		EXPECT_EQ(0, card_round_trip(fd, 256 * LD_KIB, c));
		if (c == 0) {
			/* the persistent region is gone and its HBM was scrubbed */
			EXPECT_EQ(-ENOENT, ld_hbm_open(fd, name, NULL));
			ASSERT_EQ(0, ld_hbm_alloc(fd, 65536, 0, 0, NULL, &b));
			EXPECT_EQ(a.hbm_offset, b.hbm_offset);
			ASSERT_EQ(0, ld_xfer(fd, b.handle, 0, buf, 65536, false, 0));
			nz = ld_nonzero(buf, 65536);
			EXPECT_EQ(-1, nz) TH_LOG("byte %ld of the old region survived the reload", nz);
			EXPECT_EQ(0, ld_hbm_free(fd, b.handle));
		}
		close(fd);
	}
	ld_free_buf(buf, 65536);
}

/* ---- hot-unplug -------------------------------------------------------- */

struct waiter {
	int fd;
	uint64_t fence;
	int ret;		/* 0 or -errno of FENCE_WAIT */
	int status;
	uint64_t woke_ns;
};

static void *waiter_thread(void *arg)
{
	struct waiter *w = arg;

	w->status = 1;
	w->ret = ld_wait(w->fd, w->fence, 60 * LD_NSEC_PER_SEC, &w->status);
	w->woke_ns = ld_now_ns();
	return NULL;
}

struct bystander {
	unsigned int card;
	volatile bool stop;
	unsigned int rounds;
	int error;
};

static void *bystander_thread(void *arg)
{
	struct bystander *b = arg;
	int fd = ld_open(b->card);

	if (fd < 0) {
		b->error = fd;
		return NULL;
	}
	while (!b->stop && !b->error) {
		b->error = card_round_trip(fd, 128 * LD_KIB + 7, b->rounds);
		b->rounds++;
	}
	close(fd);
	return NULL;
}

/*
 * A transfer from memory whose pages nobody supplies (a userfaultfd
 * range): its pin waits until the test gives them. The card's removal
 * must not wait for it.
 */
struct stuck_pin {
	int fd;
	uint32_t handle;
	void *mem;
	int uffd;
	int ret;
	volatile bool returned;
};

#define STUCK_LEN	65536

static void *stuck_pin_thread(void *arg)
{
	struct stuck_pin *sp = arg;

	sp->ret = ld_submit(sp->fd, sp->handle, 0, sp->mem, STUCK_LEN, true, 0, NULL);
	sp->returned = true;
	return NULL;
}

/* The userfaultfd range of @sp; 0 or -errno (no userfaultfd here). */
static int stuck_pin_setup(struct stuck_pin *sp)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	int ret;

	sp->uffd = syscall(__NR_userfaultfd, O_CLOEXEC);
	if (sp->uffd < 0)
		return -errno;
	sp->mem = mmap(NULL, STUCK_LEN, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sp->mem == MAP_FAILED) {
		ret = -errno;
		close(sp->uffd);
		return ret;
	}
	reg.range.start = (uintptr_t)sp->mem;
	reg.range.len = STUCK_LEN;
	if (ioctl(sp->uffd, UFFDIO_API, &api) ||
	    ioctl(sp->uffd, UFFDIO_REGISTER, &reg)) {
		ret = -errno;
		munmap(sp->mem, STUCK_LEN);
		close(sp->uffd);
		return ret;
	}
	return 0;
}

/* Give the range its pages (zeros): the pin goes on. */
static int stuck_pin_release(struct stuck_pin *sp)
{
	struct uffdio_zeropage z = {
		.range = { .start = (uintptr_t)sp->mem, .len = STUCK_LEN },
	};

	return ioctl(sp->uffd, UFFDIO_ZEROPAGE, &z) ? -errno : 0;
}

static int run_hostctl(const char *cmd, char *out, size_t len)
{
	char line[512];
	FILE *p;
	size_t used = 0;

	snprintf(line, sizeof(line), "hostctl hmp '%s' 2>&1", cmd);
	p = popen(line, "r");
	if (!p)
		return -errno;
	out[0] = 0;
	while (used + 1 < len && fgets(out + used, len - used, p))
		used = strlen(out);
	return pclose(p);
}

static bool have_hostctl(void)
{
	return system("command -v hostctl >/dev/null 2>&1") == 0;
}

TEST_F_TIMEOUT(unplug, hot_unplug_last_card, 120)
{
	struct waiter w = { .ret = 1 };
	struct bystander by = { .card = 0 };
	struct stuck_pin sp = { .ret = 1 };
	bool stuck = false;
	pthread_t st;
	struct llmdev_hbm_alloc a;
	struct llmdev_info info;
	struct ld_bar0 bar = { 0 };
	unsigned int u, timeout_ms = 0;
	pthread_t wt, bt;
	char cmd[128], out[1024], path[64];
	volatile uint8_t *map;
	uint8_t *buf = ld_alloc_buf(65536), v = 0;
	uint64_t t0, end;
	bool stalled = false, have_param;
	struct llmdev_perf perf;
	struct pollfd pfd;
	short rev;
	int ret, sig, fd0;

	SETUP_OR_SKIP();
	if (!have_hostctl())
		SKIP(return, "hostctl is not on PATH: cannot reach the QEMU monitor");
	if (self->ncards < 2)
		SKIP(return, "needs 2 cards, has %u", self->ncards);
	ASSERT_NE(NULL, buf);
	u = self->ncards - 1;
	have_param = !ld_get_timeout_ms(&timeout_ms);
	if (have_param)
		ld_set_timeout_ms(60000);	/* the stall must outlast the unplug */

	self->fd = ld_open(u);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 65536, 0, 0, NULL, &a));
	map = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd, a.mmap_offset);
	ASSERT_NE(MAP_FAILED, map);
	map[0] = 0x3c;

	/* a transfer that cannot finish: the waiter sleeps until the unplug */
	if (ld_bar0_map(u, &bar) == 0) {
		ld_wr32(&bar, LLMDEV_REG_FAULT_INJECT, LLMDEV_FAULT_STALL_RING(0));
		stalled = true;
	} else {
		TH_LOG("no BAR 0 (%s): the waiter waits on an ordinary transfer", bar.why);
	}
	ASSERT_EQ(0, ld_submit(self->fd, a.handle, 0, buf, 65536, true, 0, &w.fence));
	w.fd = self->fd;
	ASSERT_EQ(0, pthread_create(&wt, NULL, waiter_thread, &w));
	ASSERT_EQ(0, pthread_create(&bt, NULL, bystander_thread, &by));
	/* and a transfer whose pin waits for userspace */
	ret = stuck_pin_setup(&sp);
	if (ret) {
		TH_LOG("no userfaultfd (%s): no transfer stuck in its pin", strerror(-ret));
	} else {
		sp.fd = self->fd;
		sp.handle = a.handle;
		ASSERT_EQ(0, pthread_create(&st, NULL, stuck_pin_thread, &sp));
		stuck = true;
	}
	ld_msleep(300);
	if (stuck)
		EXPECT_FALSE(sp.returned) TH_LOG("the pin of a userfaultfd range did not wait (%d)",
						 sp.ret);

	snprintf(cmd, sizeof(cmd), "device_del llmdev%u", u);
	t0 = ld_now_ns();
	ret = run_hostctl(cmd, out, sizeof(out));
	ASSERT_EQ(0, ret) TH_LOG("hostctl hmp '%s': %d: %s", cmd, ret, out);
	if (out[0])
		TH_LOG("hostctl: %s", out);
	/* the bar mapping points at a device that is going away: drop it */
	if (stalled)
		ld_bar0_unmap(&bar);

	/* pciehp takes a few seconds (attention button) */
	snprintf(path, sizeof(path), LD_SYSFS_CLASS "/llmdev%u", u);
	end = t0 + 30 * LD_NSEC_PER_SEC;
	while (access(path, F_OK) == 0 && ld_now_ns() < end)
		ld_msleep(100);
	if (stuck && access(path, F_OK) == 0) {
		/* let the removal go on, not to leave the VM with it */
		stuck_pin_release(&sp);
		ld_msleep(2000);
	}
	ASSERT_NE(0, access(path, F_OK)) TH_LOG("llmdev%u still present 30 s after device_del%s",
						u, stuck ? " (waiting for a stuck pin?)" : "");
	TH_LOG("card %u removed after %llu ms", u, (unsigned long long)(ld_now_ns() - t0) / 1000000);
	if (stuck) {
		/* the pin gets its pages now, and finds the card gone */
		EXPECT_FALSE(sp.returned);
		EXPECT_EQ(0, stuck_pin_release(&sp));
		pthread_join(st, NULL);
		EXPECT_EQ(-ENODEV, sp.ret);
		close(sp.uffd);
		munmap(sp.mem, STUCK_LEN);
	}

	/* the waiter wakes with -ENODEV */
	pthread_join(wt, NULL);
	if (stalled) {
		EXPECT_TRUE(w.ret == -ENODEV || (w.ret == 0 && w.status == -ENODEV))
			TH_LOG("waiter woke with ret %d status %d", w.ret, w.status);
		EXPECT_GE(t0 + 30 * LD_NSEC_PER_SEC, w.woke_ns);
	}
	/* every ioctl on the open file: -ENODEV */
	EXPECT_EQ(-ENODEV, ld_info(self->fd, &info));
	EXPECT_EQ(-ENODEV, ld_hbm_alloc(self->fd, 4096, 0, 0, NULL, NULL));
	EXPECT_EQ(-ENODEV, ld_hbm_free(self->fd, a.handle));
	EXPECT_EQ(-ENODEV, ld_submit(self->fd, a.handle, 0, buf, 16, true, 0, NULL));
	EXPECT_EQ(-ENODEV, ld_wait_any(self->fd, 0, NULL, NULL));
	EXPECT_EQ(-ENODEV, ld_hbm_open(self->fd, "x", NULL));
	EXPECT_EQ(-ENODEV, ld_perf(self->fd, &perf));
	pfd.fd = self->fd;
	pfd.events = POLLIN;
	poll(&pfd, 1, 0);
	rev = pfd.revents;
	TH_LOG("poll() after unplug: revents %#x", rev);
	EXPECT_NE(0, rev & (POLLERR | POLLHUP));

	/* the old mapping: no crash (SIGBUS is fine) */
	sig = ld_touch(map, false, &v);
	EXPECT_TRUE(sig == 0 || sig == SIGBUS) TH_LOG("read of a removed card's mapping: signal %d", sig);
	TH_LOG("mapping after unplug: %s, value %#x", sig ? "SIGBUS" : "readable", v);
	sig = ld_touch(map + 100, true, NULL);
	EXPECT_TRUE(sig == 0 || sig == SIGBUS);
	/* a new mapping is refused */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->fd,
				   a.mmap_offset));
	munmap((void *)map, 65536);
	EXPECT_EQ(0, close(self->fd));
	self->fd = -1;
	ret = ld_open(u);
	EXPECT_GT(0, ret) TH_LOG("opened a removed card");
	if (ret >= 0)
		close(ret);

	/* the other card kept working all along */
	ld_msleep(300);
	by.stop = true;
	pthread_join(bt, NULL);
	EXPECT_EQ(0, by.error) TH_LOG("card 0 after %u round trips: %d", by.rounds, by.error);
	EXPECT_LT(0, by.rounds);
	fd0 = ld_open(0);
	ASSERT_LE(0, fd0);
	EXPECT_EQ(0, card_round_trip(fd0, LD_MIB, 99));
	close(fd0);
	if (have_param)
		ld_set_timeout_ms(timeout_ms);
	ld_free_buf(buf, 65536);
}

/*
 * A card removed while a collective across it is in flight and more wait
 * behind it: every one of them fails (-ENODEV, or -ECANCELED for members
 * aborted because of it) within bounded time, and once the model has
 * re-cabled the ring over the remaining cards, a collective on them works.
 * To keep the collective in flight until the removal whatever the timing,
 * the removed card's engine is first given a collective of the test's own
 * (through BAR 0) that waits forever for a peer: the driver's start on that
 * card is refused, so the other members wait for it.
 */
#define UNPLUG_COLL_OPS		4
#define LD_PARAM_COLL_TIMEOUT	"/sys/module/llmdev/parameters/coll_timeout_ms"

static void occupy_engine(struct ld_bar0 *bar)
{
	ld_wr64(bar, LLMDEV_REG_COLL_TAG, 0x7e57ull << 32);
	ld_wr32(bar, LLMDEV_REG_COLL_OP, LLMDEV_COLL_OP(LLMDEV_COLL_KIND_ALLREDUCE,
							LLMDEV_COLL_REDOP_SUM,
							LLMDEV_COLL_DTYPE_F32, 0));
	ld_wr32(bar, LLMDEV_REG_COLL_RANK, 0 | 2 << 8);	/* rank 0 of 2 */
	ld_wr32(bar, LLMDEV_REG_COLL_PORTS, 0 | 1 << 4);	/* ring ports, up */
	ld_wr32(bar, LLMDEV_REG_COLL_CHUNK, 0);
	ld_wr64(bar, LLMDEV_REG_COLL_COUNT, 1);
	ld_wr64(bar, LLMDEV_REG_COLL_SRC, 0);
	ld_wr64(bar, LLMDEV_REG_COLL_DST, 0);
	ld_wr32(bar, LLMDEV_REG_COLL_TIMEOUT_US, 0);	/* wait forever */
	ld_wr32(bar, LLMDEV_REG_COLL_CTRL, LLMDEV_COLL_CTRL_START);
}

TEST_F_TIMEOUT(unplug, hot_unplug_during_collective, 150)
{
	int fds[LLMDEV_MAX_RANKS], ret, status, i;
	struct llmdev_coll_buf bufs[LLMDEV_MAX_RANKS];
	uint64_t fences[UNPLUG_COLL_OPS], t0, end;
	unsigned int n, r, u, failed = 0;
	struct llmdev_hbm_alloc a;
	struct ld_bar0 bar = { 0 };
	char cmd[128], out[1024], path[64], old_timeout[32] = "";
	uint32_t group, solo;

	SETUP_OR_SKIP();
	if (!have_hostctl())
		SKIP(return, "hostctl is not on PATH: cannot reach the QEMU monitor");
	n = self->ncards;
	if (n < 3)
		SKIP(return, "needs 3 cards, has %u", n);
	u = n - 1;
	LD_BAR0_MAP_OR_SKIP(u, &bar, return);
	memset(bufs, 0, sizeof(bufs));
	for (r = 0; r < n; r++) {
		fds[r] = ld_open(r);
		ASSERT_LE(0, fds[r]);
		ASSERT_EQ(0, ld_hbm_alloc(fds[r], 1 << 20, 0, 0, NULL, &a));
		bufs[r].fd = fds[r];
		bufs[r].src_handle = a.handle;
		bufs[r].dst_handle = a.handle;
	}
	/* a card an earlier test plugged back in may still be training */
	end = ld_now_ns() + 10 * LD_NSEC_PER_SEC;
	while ((ret = ld_group_create(fds[0], fds, n, &group)) == -ENOLINK &&
	       ld_now_ns() < end)
		ld_msleep(100);
	if (ret == -ENOLINK) {
		int peer[LD_MAX_CARDS][LD_MAX_PORTS], p;
		bool cabled = true, next;

		/* cabled as a ring, the links must come up: only a VM without one skips */
		ASSERT_EQ(0, ld_topology(n, peer));
		for (r = 0; r < n; r++) {
			next = false;
			for (p = 0; p < LD_MAX_PORTS; p++)
				next |= peer[r][p] >= 0 &&
					(unsigned int)peer[r][p] / LD_MAX_PORTS == (r + 1) % n;
			cabled &= next;
		}
		if (!cabled)
			SKIP(return, "cards 0..%u are not cabled as a ring", u);
	}
	ASSERT_EQ(0, ret) TH_LOG("cards 0..%u are cabled as a ring, links not up after 10 s", u);
	/* and a group of the card to be removed alone (no link to check) */
	ASSERT_EQ(0, ld_group_create(fds[0], &fds[u], 1, &solo));

	/* the driver's watchdog must not end the collective before the removal */
	ld_read_file(LD_PARAM_COLL_TIMEOUT, old_timeout, sizeof(old_timeout));
	ASSERT_EQ(0, ld_write_file(LD_PARAM_COLL_TIMEOUT, "120000"));
	occupy_engine(&bar);
	EXPECT_NE(0u, ld_rd32(&bar, LLMDEV_REG_COLL_STATUS) & LLMDEV_COLL_STATUS_BUSY);
	for (i = 0; i < UNPLUG_COLL_OPS; i++) {
		ret = ld_coll_submit(fds[0], group, LLMDEV_COLL_ALLREDUCE, LLMDEV_DTYPE_F32,
				     LLMDEV_REDOP_SUM, 0, 1024, bufs, &fences[i]);
		ASSERT_EQ(0, ret) TH_LOG("submit %d: %s", i, strerror(-ret));
	}
	ld_msleep(200);
	EXPECT_EQ(-ETIME, ld_wait(fds[0], fences[0], 0, &status))
		TH_LOG("the first collective ended before the removal: %d", status);

	snprintf(cmd, sizeof(cmd), "device_del llmdev%u", u);
	t0 = ld_now_ns();
	ret = run_hostctl(cmd, out, sizeof(out));
	ld_bar0_unmap(&bar);
	ASSERT_EQ(0, ret) TH_LOG("hostctl hmp '%s': %d: %s", cmd, ret, out);
	snprintf(path, sizeof(path), LD_SYSFS_CLASS "/llmdev%u", u);
	end = t0 + 30 * LD_NSEC_PER_SEC;
	while (access(path, F_OK) == 0 && ld_now_ns() < end)
		ld_msleep(100);
	ASSERT_NE(0, access(path, F_OK)) TH_LOG("llmdev%u still present 30 s after device_del", u);

	/* every fence ends soon after the removal, with the removal's error */
	for (i = 0; i < UNPLUG_COLL_OPS; i++) {
		ret = ld_wait(fds[0], fences[i], 10 * LD_NSEC_PER_SEC, &status);
		EXPECT_EQ(0, ret) TH_LOG("fence %d: %s", i, strerror(-ret));
		if (!ret)
			EXPECT_EQ(-ENODEV, status) TH_LOG("fence %d: status %d (%s)",
							 i, status, strerror(-status));
		failed += !ret && status;
	}
	TH_LOG("%u collectives failed, all ended %llu ms after device_del", failed,
	       (unsigned long long)(ld_now_ns() - t0) / 1000000);
	EXPECT_EQ(0, ld_group_destroy(fds[0], group));
	/* the one-card group of the removed card: refused, not queued */
	ret = ld_coll_submit(fds[0], solo, LLMDEV_COLL_ALLREDUCE, LLMDEV_DTYPE_F32,
			     LLMDEV_REDOP_SUM, 0, 1024, &bufs[u], &fences[0]);
	EXPECT_EQ(-ENODEV, ret);
	EXPECT_EQ(0, ld_group_destroy(fds[0], solo));
	close(fds[u]);
	if (old_timeout[0])
		ld_write_file(LD_PARAM_COLL_TIMEOUT, old_timeout);

	/* the remaining cards: a ring again once their links have retrained */
	end = ld_now_ns() + 10 * LD_NSEC_PER_SEC;
	do {
		ret = ld_group_create(fds[0], fds, u, &group);
		if (ret == -ENOLINK)
			ld_msleep(100);
	} while (ret == -ENOLINK && ld_now_ns() < end);
	ASSERT_EQ(0, ret) TH_LOG("group of the %u remaining cards: %s", u, strerror(-ret));
	ret = ld_coll_submit(fds[0], group, LLMDEV_COLL_ALLREDUCE, LLMDEV_DTYPE_I32,
			     LLMDEV_REDOP_SUM, 0, 4096, bufs, &fences[0]);
	ASSERT_EQ(0, ret);
	EXPECT_EQ(0, ld_wait(fds[0], fences[0], 10 * LD_NSEC_PER_SEC, &status));
	EXPECT_EQ(0, status);
	for (r = 0; r < u; r++)
		close(fds[r]);
}

TEST_HARNESS_MAIN
