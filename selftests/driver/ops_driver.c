// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev driver: what operators' tools see (docs/fdinfo.md, driver/
 * llmdev_obs.h): hwmon and `sensors`, the perf PMU (perf_event_open and
 * `perf stat`), devlink info and health reporters (`devlink`), per-file
 * usage in /proc/PID/fdinfo; and each of them across a card reset. The
 * unplug cases are in ops_unplug.
 *
 * Kernels without a facility (the debug kernel has no devlink) make its
 * tests SKIP with the reason; a missing tool (sensors, perf, devlink)
 * likewise.
 */
#include <ctype.h>

#include "kselftest_harness.h"
#include "ops_common.h"

#define MOVE_ENV	"LLMDEV_OPS_MOVE"

/*
 * `perf stat ... -- ops_driver` with LLMDEV_OPS_MOVE=N set: move N bytes
 * to card 0 and exit, before the harness starts.
 */
static void __attribute__((constructor)) ops_mover(void)
{
	const char *env = getenv(MOVE_ENV);
	struct llmdev_hbm_alloc a;
	int fd;

	if (!env)
		return;
	fd = ld_open(0);
	if (fd < 0 || ld_hbm_alloc(fd, LD_MIB, 0, 0, NULL, &a) ||
	    ops_move(fd, a.handle, strtoull(env, NULL, 0), true))
		_exit(1);
	_exit(0);
}

FIXTURE(ops) {
	int kmsg;
	int fd;
	struct llmdev_info info;
	unsigned int ncards;
	char pci[32];
};

FIXTURE_SETUP(ops)
{
	LD_FIXTURE_START();
	LD_FIXTURE_OPEN_CARD0();
	self->ncards = ld_num_cards();
	snprintf(self->pci, sizeof(self->pci), "%04x:%02x:%02x.%d", self->info.pci_domain,
		 self->info.pci_bus, self->info.pci_devfn >> 3, self->info.pci_devfn & 7);
}

FIXTURE_TEARDOWN(ops)
{
	if (self->fd >= 0)
		close(self->fd);
	LD_EXPECT_NO_KERNEL_REPORTS(self->kmsg);
}

/* ---- hwmon ------------------------------------------------------------------- */

TEST_F(ops, hwmon_attributes)
{
	char dir[256], path[300], buf[64];
	long t, p;

	SETUP_OR_SKIP();
	ASSERT_EQ(0, ops_hwmon_dir(0, dir, sizeof(dir))) TH_LOG("llmdev0 has no hwmon device");
	snprintf(path, sizeof(path), "%s/name", dir);
	ASSERT_EQ(0, ld_read_file(path, buf, sizeof(buf)));
	EXPECT_STREQ("llmdev", buf);
	snprintf(path, sizeof(path), "%s/temp1_label", dir);
	ASSERT_EQ(0, ld_read_file(path, buf, sizeof(buf)));
	EXPECT_STREQ("die", buf);
	snprintf(path, sizeof(path), "%s/power1_label", dir);
	ASSERT_EQ(0, ld_read_file(path, buf, sizeof(buf)));
	EXPECT_STREQ("board", buf);
	/* docs/hardware.md section 9 */
	t = ops_hwmon_long(dir, "temp1_input");
	EXPECT_LE(35000, t);
	EXPECT_GE(80000, t);
	EXPECT_EQ(95000, ops_hwmon_long(dir, "temp1_crit"));
	EXPECT_EQ(0, ops_hwmon_long(dir, "temp1_crit_alarm"));
	p = ops_hwmon_long(dir, "power1_input");
	EXPECT_LE(20000000, p);
	EXPECT_GE(75000000, p);
	EXPECT_EQ(75000000, ops_hwmon_long(dir, "power1_cap"));
	EXPECT_EQ(0, ops_hwmon_long(dir, "power1_cap_alarm"));
	/* read-only: a limit cannot be written */
	snprintf(path, sizeof(path), "%s/temp1_crit", dir);
	EXPECT_NE(0, ld_write_file(path, "90000"));
}

TEST_F_TIMEOUT(ops, hwmon_follows_load, 60)
{
	struct llmdev_hbm_alloc a;
	char dir[256];
	long t0, p0, t1, p1;

	SETUP_OR_SKIP();
	ASSERT_EQ(0, ops_hwmon_dir(0, dir, sizeof(dir)));
	t0 = ops_hwmon_long(dir, "temp1_input");
	p0 = ops_hwmon_long(dir, "power1_input");
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, LD_MIB, 0, 0, NULL, &a));
	ASSERT_EQ(0, ops_move(self->fd, a.handle, 128 * LD_MIB, true));
	t1 = ops_hwmon_long(dir, "temp1_input");
	p1 = ops_hwmon_long(dir, "power1_input");
	TH_LOG("idle %ld m°C %ld µW, under load %ld m°C %ld µW", t0, p0, t1, p1);
	EXPECT_LT(35000, t1);
	EXPECT_LT(20000000, p1);
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
}

TEST_F(ops, sensors)
{
	char out[16384], *s = out;
	unsigned int n = 0;

	SETUP_OR_SKIP();
	if (!ops_have("sensors"))
		SKIP(return, "sensors (lm-sensors) is not installed in the guest");
	ASSERT_EQ(0, ops_run("sensors", out, sizeof(out))) TH_LOG("%s", out);
	while ((s = strstr(s, "llmdev-pci-"))) {
		n++;
		s++;
	}
	EXPECT_EQ(self->ncards, n) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "die:"));
	EXPECT_NE(NULL, strstr(out, "crit = +95.0"));
	EXPECT_NE(NULL, strstr(out, "board:"));
	EXPECT_NE(NULL, strstr(out, "cap =  75.00 W")) TH_LOG("%s", out);
}

/* ---- perf PMU --------------------------------------------------------------------- */

TEST_F(ops, pmu_counts_exactly)
{
	struct llmdev_hbm_alloc a;
	int h2c, c2h, desc;

	SETUP_OR_SKIP();
	h2c = ops_pmu_open(0, "h2c_bytes", 0, 0, -1);
	if (h2c == -ENOENT)
		SKIP(return, "no PMU llmdev0 (kernel without perf events?)");
	ASSERT_LE(0, h2c) TH_LOG("perf_event_open: %s", strerror(-h2c));
	c2h = ops_pmu_open(0, "c2h_bytes", 0, 0, -1);
	desc = ops_pmu_open(0, "h2c_desc", 0, 0, -1);
	ASSERT_LE(0, c2h);
	ASSERT_LE(0, desc);
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, LD_MIB, 0, 0, NULL, &a));
	ASSERT_EQ(0, ops_move(self->fd, a.handle, 3 * LD_MIB + 4096, true));
	ASSERT_EQ(0, ops_move(self->fd, a.handle, LD_MIB, false));
	EXPECT_EQ((int64_t)(3 * LD_MIB + 4096), ops_pmu_read(h2c));
	EXPECT_EQ((int64_t)LD_MIB, ops_pmu_read(c2h));
	EXPECT_LE(4, ops_pmu_read(desc));
	close(h2c);
	close(c2h);
	close(desc);
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
}

TEST_F(ops, pmu_refuses)
{
	int fd;

	SETUP_OR_SKIP();
	fd = ops_pmu_open(0, "h2c_bytes", 0, 0, -1);
	if (fd == -ENOENT)
		SKIP(return, "no PMU llmdev0");
	ASSERT_LE(0, fd);
	close(fd);
	/* sampling, a task's events, an unknown counter */
	fd = ops_pmu_open(0, "h2c_bytes", 1000, 0, -1);
	EXPECT_GT(0, fd) TH_LOG("a sampling event was accepted");
	fd = ops_pmu_open(0, "h2c_bytes", 0, -1, 0);
	EXPECT_GT(0, fd) TH_LOG("a per-task event was accepted");
	fd = ops_pmu_open(0, "config=0x40", 0, 0, -1);
	EXPECT_EQ(-EINVAL, fd);
	if (fd >= 0)
		close(fd);
}

TEST_F_TIMEOUT(ops, pmu_across_reset, 60)
{
	struct llmdev_hbm_alloc a;
	struct llmdev_reset r = { .size = sizeof(r) };
	int fd;

	SETUP_OR_SKIP();
	fd = ops_pmu_open(0, "h2c_bytes", 0, 0, -1);
	if (fd == -ENOENT)
		SKIP(return, "no PMU llmdev0");
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, LD_MIB, 0, 0, NULL, &a));
	ASSERT_EQ(0, ops_move(self->fd, a.handle, 2 * LD_MIB, true));
	ASSERT_EQ(0, ld_ioctl(self->fd, LLMDEV_RESET, &r));
	ASSERT_EQ(0, ops_move(self->fd, a.handle, LD_MIB, true));
	EXPECT_EQ((int64_t)(3 * LD_MIB), ops_pmu_read(fd))
		TH_LOG("the count did not run on across the reset");
	close(fd);
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
}

TEST_F_TIMEOUT(ops, perf_stat, 120)
{
	char cmd[512], out[8192];
	long long v;

	SETUP_OR_SKIP();
	if (!ops_have("perf"))
		SKIP(return, "perf (linux-perf) is not installed in the guest");
	if (access("/sys/bus/event_source/devices/llmdev0", F_OK))
		SKIP(return, "no PMU llmdev0");
	snprintf(cmd, sizeof(cmd), "%s=%llu perf stat -x, -o /tmp/ops-perf.txt "
		 "-e llmdev0/h2c_bytes/,llmdev0/c2h_bytes/ -a -- /proc/%d/exe",
		 MOVE_ENV, 5 * LD_MIB + 12288, getpid());
	ASSERT_EQ(0, ops_run(cmd, out, sizeof(out))) TH_LOG("%s: %s", cmd, out);
	v = ops_perf_stat_value("/tmp/ops-perf.txt", "llmdev0/h2c_bytes/");
	EXPECT_EQ((long long)(5 * LD_MIB + 12288), v);
	EXPECT_EQ(0, ops_perf_stat_value("/tmp/ops-perf.txt", "llmdev0/c2h_bytes/"));
	unlink("/tmp/ops-perf.txt");
}

/* perf stat, llmctl stats --watch and llmctl ps while the card is reset */
TEST_F_TIMEOUT(ops, tools_across_reset, 180)
{
	struct ops_bg perf, watch, ps, load;
	char cmd[512], out[4096], ready[64], stop[64];
	long long v;
	int rc;

	SETUP_OR_SKIP();
	if (!ops_have("llmctl"))
		SKIP(return, "llmctl is not on PATH");
	snprintf(ready, sizeof(ready), "/tmp/ops-ready.%d", getpid());
	snprintf(stop, sizeof(stop), "/tmp/ops-stop.%d", getpid());
	unlink(ready);
	unlink(stop);
	/* moves data until the test ends, the reset's failures included */
	snprintf(cmd, sizeof(cmd), "while [ ! -e %s ]; do %s=%llu /proc/%d/exe; done", stop,
		 MOVE_ENV, 4 * LD_MIB, getpid());
	ASSERT_EQ(0, ops_bg_start(&load, "load", cmd));
	ASSERT_EQ(0, ops_bg_start(&watch, "watch", "exec llmctl stats 0 --watch 0.3"));
	ops_loop_cmd(cmd, sizeof(cmd), "llmctl ps >/dev/null", stop);
	ASSERT_EQ(0, ops_bg_start(&ps, "ps", cmd));
	perf.pid = 0;
	if (ops_have("perf")) {
		/* perf is slow to start: the reset waits until it counts */
		snprintf(cmd, sizeof(cmd), "perf stat -x, -e llmdev0/h2c_bytes/ -a -- sh -c "
			 "'touch %s; while [ ! -e %s ]; do sleep 0.2; done'", ready, stop);
		ASSERT_EQ(0, ops_bg_start(&perf, "perf", cmd));
		EXPECT_TRUE(ops_wait_file(ready, 120)) TH_LOG("perf stat did not start");
	}
	/* stats --watch printed a sample */
	for (rc = 0; rc < 1200 && !strstr(ops_bg_output(&watch), "llmdev0"); rc++)
		ld_msleep(100);
	ld_msleep(1000);
	ld_sysfs_u64(0, "counters/h2c_bytes", (uint64_t *)&v);
	TH_LOG("h2c_bytes before the reset: %lld", v);
	rc = ops_run("llmctl reset 0", out, sizeof(out));
	EXPECT_EQ(0, rc) TH_LOG("llmctl reset 0: %s", out);
	ld_msleep(1500);
	ASSERT_EQ(0, ops_touch(stop));
	/* stats --watch goes on through the reset; it ends at SIGTERM with 0 */
	kill(watch.pid, SIGTERM);
	rc = ops_bg_wait(&watch, 60);
	EXPECT_EQ(0, rc) TH_LOG("stats --watch across a reset: exit %d: %s", rc,
				ops_bg_output(&watch));
	rc = ops_bg_wait(&ps, 60);
	EXPECT_EQ(0, rc) TH_LOG("ps across a reset: exit %d: %s", rc, ops_bg_output(&ps));
	if (perf.pid) {
		rc = ops_bg_wait(&perf, 60);
		EXPECT_EQ(0, rc) TH_LOG("perf stat: %s", ops_bg_output(&perf));
		v = ops_perf_stat_value(perf.out, "llmdev0/h2c_bytes/");
		EXPECT_LT(0, v) TH_LOG("perf stat counted nothing: %s", ops_bg_output(&perf));
		unlink(perf.out);
	}
	EXPECT_EQ(0, ops_bg_wait(&load, 60));
	unlink(load.out);
	unlink(watch.out);
	unlink(ps.out);
	unlink(ready);
	unlink(stop);
}

/* ---- devlink ------------------------------------------------------------------------ */

static bool devlink_ok(struct __test_metadata *_metadata, char *why, size_t len)
{
	char out[4096];

	if (!ops_have("devlink")) {
		snprintf(why, len, "devlink (iproute2) is not installed in the guest");
		return false;
	}
	if (ops_run("devlink dev show", out, sizeof(out))) {
		snprintf(why, len, "the kernel has no devlink (CONFIG_NET_DEVLINK): %.200s", out);
		return false;
	}
	return true;
}

TEST_F(ops, devlink_info)
{
	char why[4200], cmd[128], out[4096], want[64];

	SETUP_OR_SKIP();
	if (!devlink_ok(_metadata, why, sizeof(why)))
		SKIP(return, "%.900s", why);
	snprintf(cmd, sizeof(cmd), "devlink dev info pci/%s", self->pci);
	ASSERT_EQ(0, ops_run(cmd, out, sizeof(out))) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "driver llmdev")) TH_LOG("%s", out);
	snprintf(want, sizeof(want), "serial_number %016llx", (unsigned long long)self->info.serial);
	EXPECT_NE(NULL, strstr(out, want)) TH_LOG("%s", out);
	snprintf(want, sizeof(want), "spec %u.%u", self->info.spec_version >> 16,
		 self->info.spec_version & 0xffff);
	EXPECT_NE(NULL, strstr(out, want)) TH_LOG("%s", out);
	snprintf(want, sizeof(want), "driver %d.%d", LLMDEV_ABI_MAJOR, LLMDEV_ABI_MINOR);
	EXPECT_NE(NULL, strstr(out, want)) TH_LOG("%s", out);
}

/* the reporter's error count, from devlink health show */
static int reporter_errors(const char *pci, const char *reporter)
{
	char cmd[160], out[2048], *e;

	snprintf(cmd, sizeof(cmd), "devlink health show pci/%s reporter %s", pci, reporter);
	if (ops_run(cmd, out, sizeof(out)))
		return -1;
	/* "state error error 1": the count is the " error " with a number */
	for (e = strstr(out, " error "); e && !isdigit((unsigned char)e[7]);
	     e = strstr(e + 1, " error "))
		;
	return e ? atoi(e + 7) : -1;
}

TEST_F_TIMEOUT(ops, devlink_dma_reporter, 90)
{
	char why[4200], cmd[160], out[8192];
	struct llmdev_hbm_alloc a;
	struct ld_bar0 bar = { 0 };
	unsigned int old_ms;
	uint8_t *buf = ld_alloc_buf(65536);
	int before, after = -1, i, ret;
	pid_t pid;

	SETUP_OR_SKIP();
	if (!devlink_ok(_metadata, why, sizeof(why)))
		SKIP(return, "%.900s", why);
	snprintf(cmd, sizeof(cmd), "devlink health diagnose pci/%s reporter dma", self->pci);
	ASSERT_EQ(0, ops_run(cmd, out, sizeof(out))) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "rings")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "dma_timeout_ms")) TH_LOG("%s", out);
	LD_BAR0_MAP_OR_SKIP(0, &bar, return);
	ASSERT_EQ(0, ld_get_timeout_ms(&old_ms));
	/*
	 * The dump is of the first report since it was last cleared: one
	 * from an earlier test in this boot (driver_batch stalls rings) would
	 * be shown instead of this one's.
	 */
	snprintf(cmd, sizeof(cmd), "devlink health dump clear pci/%s reporter dma", self->pci);
	ASSERT_EQ(0, ops_run(cmd, out, sizeof(out))) TH_LOG("%s", out);
	before = reporter_errors(self->pci, "dma");
	ASSERT_LE(0, before);
	/* the report stays an error until recovered by hand (below) */
	snprintf(cmd, sizeof(cmd), "devlink health set pci/%s reporter dma auto_recover false",
		 self->pci);
	ASSERT_EQ(0, ops_run(cmd, out, sizeof(out))) TH_LOG("%s", out);
	/* a stalled ring: the watchdog resets it and the reporter hears of it */
	ASSERT_EQ(0, ld_set_timeout_ms(300));
	ld_wr32(&bar, LLMDEV_REG_FAULT_INJECT, LLMDEV_FAULT_STALL_RING(ld_hw_ring(true, 0)));
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 65536, 0, 0, NULL, &a));
	ret = ld_xfer(self->fd, a.handle, 0, buf, 65536, true, 0);
	ld_wr32(&bar, LLMDEV_REG_FAULT_INJECT, 0);
	ld_set_timeout_ms(old_ms);
	EXPECT_EQ(-ETIMEDOUT, ret);
	for (i = 0; i < 50 && (after = reporter_errors(self->pci, "dma")) <= before; i++)
		ld_msleep(100);
	EXPECT_EQ(before + 1, after);
	snprintf(cmd, sizeof(cmd), "devlink health dump show pci/%s reporter dma", self->pci);
	ASSERT_EQ(0, ops_run(cmd, out, sizeof(out))) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "ring: 0")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "cause: no progress")) TH_LOG("%s", out);
	snprintf(cmd, sizeof(cmd), "devlink health dump clear pci/%s reporter dma", self->pci);
	EXPECT_EQ(0, ops_run(cmd, out, sizeof(out))) TH_LOG("%s", out);
	snprintf(cmd, sizeof(cmd), "devlink health recover pci/%s reporter dma", self->pci);
	/* with CAP_NET_ADMIN (devlink's own check) but not CAP_SYS_ADMIN: no */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0))
			_exit(2);
		ret = ops_run(cmd, out, sizeof(out));
		if (ret && strstr(out, "needs CAP_SYS_ADMIN"))
			_exit(0);
		fprintf(stderr, "# exit %d: %s\n", ret, out);
		_exit(1);
	}
	ASSERT_EQ(pid, waitpid(pid, &i, 0));
	EXPECT_TRUE(WIFEXITED(i) && WEXITSTATUS(i) == 0)
		TH_LOG("'%s' without CAP_SYS_ADMIN was not refused (status %#x)", cmd, i);
	EXPECT_EQ(0, ops_run(cmd, out, sizeof(out))) TH_LOG("%s", out);
	snprintf(cmd, sizeof(cmd), "devlink health set pci/%s reporter dma auto_recover true",
		 self->pci);
	EXPECT_EQ(0, ops_run(cmd, out, sizeof(out))) TH_LOG("%s", out);
	/* the ring works again */
	EXPECT_EQ(0, ld_xfer(self->fd, a.handle, 0, buf, 65536, true, 0));
	ld_bar0_unmap(&bar);
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
}

TEST_F_TIMEOUT(ops, devlink_link_reporter, 60)
{
	char why[4200], cmd[160], out[8192];
	struct llmdev_link_info li = { .size = sizeof(li) };
	struct ld_bar0 bar = { 0 };
	int before, after = -1, i, p = -1;

	SETUP_OR_SKIP();
	if (!devlink_ok(_metadata, why, sizeof(why)))
		SKIP(return, "%.900s", why);
	for (i = 0; i < LLMDEV_NUM_LINK_PORTS && p < 0; i++)
		if (!ld_link_info(self->fd, i, &li) && li.state == LLMDEV_LINK_UP)
			p = i;
	if (p < 0)
		SKIP(return, "llmdev0 has no link up");
	LD_BAR0_MAP_OR_SKIP(0, &bar, return);
	before = reporter_errors(self->pci, "link");
	ASSERT_LE(0, before);
	ld_wr32(&bar, LLMDEV_LINK_BASE(p) + LLMDEV_LINK_FAULT,
		LLMDEV_LINK_FAULT_ERROR_BURST | 5u << 16);
	for (i = 0; i < 50 && (after = reporter_errors(self->pci, "link")) <= before; i++)
		ld_msleep(100);
	EXPECT_LT(before, after);
	snprintf(cmd, sizeof(cmd), "devlink health dump show pci/%s reporter link", self->pci);
	ASSERT_EQ(0, ops_run(cmd, out, sizeof(out))) TH_LOG("%s", out);
	snprintf(why, sizeof(why), "port: %d", p);
	EXPECT_NE(NULL, strstr(out, why)) TH_LOG("%s", out);
	snprintf(cmd, sizeof(cmd), "devlink health diagnose pci/%s reporter link", self->pci);
	ASSERT_EQ(0, ops_run(cmd, out, sizeof(out))) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "rx_errors")) TH_LOG("%s", out);
	ld_bar0_unmap(&bar);
}

/* ---- fdinfo ---------------------------------------------------------------------------- */

static long long fdinfo_key(int fd, const char *key)
{
	char path[64], buf[4096], *k;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (ld_read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	k = strstr(buf, key);
	if (!k || k[strlen(key)] != ':')
		return -1;
	return strtoll(k + strlen(key) + 2, NULL, 10);
}

TEST_F(ops, fdinfo)
{
	struct llmdev_hbm_alloc a, b;
	char path[64], buf[4096], want[64];
	uint8_t *mem = ld_alloc_buf(LD_MIB);
	int fd, fd2, dupfd;

	SETUP_OR_SKIP();
	fd = ld_open(0);
	fd2 = ld_open(0);
	ASSERT_LE(0, fd);
	ASSERT_LE(0, fd2);
	dupfd = dup(fd);
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	ASSERT_EQ(0, ld_read_file(path, buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, "llmdev-driver:\tllmdev\n")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "llmdev-card:\tllmdev0\n")) TH_LOG("%s", buf);
	snprintf(want, sizeof(want), "llmdev-pdev:\t%s\n", self->pci);
	EXPECT_NE(NULL, strstr(buf, want)) TH_LOG("%s", buf);
	snprintf(want, sizeof(want), "llmdev-serial:\t%016llx\n",
		 (unsigned long long)self->info.serial);
	EXPECT_NE(NULL, strstr(buf, want)) TH_LOG("%s", buf);
	EXPECT_EQ(0, fdinfo_key(fd, "llmdev-regions-private"));
	EXPECT_EQ(0, fdinfo_key(fd, "llmdev-dma-transfers"));
	/* one file, one id; another file, another */
	EXPECT_EQ(fdinfo_key(fd, "llmdev-client-id"), fdinfo_key(dupfd, "llmdev-client-id"));
	EXPECT_NE(fdinfo_key(fd, "llmdev-client-id"), fdinfo_key(fd2, "llmdev-client-id"));

	ASSERT_EQ(0, ld_hbm_alloc(fd, LD_MIB, 0, 0, NULL, &a));
	ASSERT_EQ(0, ld_hbm_alloc(fd, 3 * LD_PAGE, 0, LLMDEV_HBM_PERSISTENT, "ops-fdinfo", &b));
	ASSERT_EQ(0, ld_xfer(fd, a.handle, 0, mem, LD_MIB, true, LLMDEV_RING_ANY));
	ASSERT_EQ(0, ld_xfer(fd, a.handle, 0, mem, 12288, false, LLMDEV_RING_ANY));
	ASSERT_EQ(0, ld_xfer(fd, a.handle, 0, mem, 4096, false, LLMDEV_RING_ANY));
	/* a transfer beyond its region fails at submit: not counted */
	EXPECT_EQ(-EINVAL, ld_xfer(fd, a.handle, LD_MIB, mem, 4096, true, LLMDEV_RING_ANY));
	EXPECT_EQ(1, fdinfo_key(fd, "llmdev-regions-private"));
	EXPECT_EQ(1, fdinfo_key(fd, "llmdev-regions-persistent"));
	EXPECT_EQ((long long)LD_MIB, fdinfo_key(fd, "llmdev-memory-private"));
	EXPECT_EQ((long long)(3 * LD_PAGE), fdinfo_key(fd, "llmdev-memory-persistent"));
	EXPECT_EQ((long long)LD_MIB, fdinfo_key(fd, "llmdev-dma-h2c-bytes"));
	EXPECT_EQ(16384, fdinfo_key(fd, "llmdev-dma-c2h-bytes"));
	EXPECT_EQ(3, fdinfo_key(fd, "llmdev-dma-transfers"));
	EXPECT_EQ(0, fdinfo_key(fd, "llmdev-dma-failed"));
	EXPECT_EQ(0, fdinfo_key(fd, "llmdev-dma-inflight"));
	EXPECT_LT(0, fdinfo_key(fd, "llmdev-engine-dma"));
	EXPECT_EQ(0, fdinfo_key(fd, "llmdev-collectives"));
	/* the other file owns nothing */
	EXPECT_EQ(0, fdinfo_key(fd2, "llmdev-memory-private"));
	EXPECT_EQ(0, fdinfo_key(fd2, "llmdev-dma-h2c-bytes"));
	/* freed: no longer counted */
	EXPECT_EQ(0, ld_hbm_free(fd, a.handle));
	EXPECT_EQ(0, fdinfo_key(fd, "llmdev-memory-private"));
	EXPECT_EQ(0, ld_hbm_free(fd, b.handle));
	EXPECT_EQ(0, fdinfo_key(fd, "llmdev-regions-persistent"));
	close(dupfd);
	close(fd);
	close(fd2);
}

TEST_F(ops, fdinfo_failed_transfer)
{
	struct llmdev_hbm_alloc a;
	struct ld_bar0 bar = { 0 };
	uint8_t *mem = ld_alloc_buf(65536);

	SETUP_OR_SKIP();
	LD_BAR0_MAP_OR_SKIP(0, &bar, return);
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 65536, 0, 0, NULL, &a));
	ld_wr32(&bar, LLMDEV_REG_FAULT_INJECT, LLMDEV_FAULT_FAIL_NEXT_DESC);
	EXPECT_EQ(-EIO, ld_xfer(self->fd, a.handle, 0, mem, 4096, true, LLMDEV_RING_ANY));
	ld_wr32(&bar, LLMDEV_REG_FAULT_INJECT, 0);
	EXPECT_EQ(1, fdinfo_key(self->fd, "llmdev-dma-failed"));
	EXPECT_EQ(1, fdinfo_key(self->fd, "llmdev-dma-transfers"));
	EXPECT_EQ(0, fdinfo_key(self->fd, "llmdev-dma-h2c-bytes"));
	ld_bar0_unmap(&bar);
	EXPECT_EQ(0, ld_hbm_free(self->fd, a.handle));
}

/* an ordinary user reads the sensors, but not root's fdinfo, and no PMU events */
TEST_F(ops, unprivileged)
{
	char dir[256], path[64];
	pid_t pid;
	int st;

	SETUP_OR_SKIP();
	ASSERT_EQ(0, ops_hwmon_dir(0, dir, sizeof(dir)));
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", getpid(), self->fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char buf[64];
		int fd;

		if (setgid(65534) || setuid(65534))
			_exit(10);
		if (ops_hwmon_long(dir, "temp1_input") < 35000)
			_exit(11);
		if (ld_read_file(path, buf, sizeof(buf)) != -EACCES)
			_exit(12);
		/* card-wide events need CAP_PERFMON (perf_event_paranoid) */
		fd = ops_pmu_open(0, "h2c_bytes", 0, 0, -1);
		if (fd >= 0 && ld_read_file("/proc/sys/kernel/perf_event_paranoid", buf,
					    sizeof(buf)) == 0 && atoi(buf) > 0)
			_exit(13);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
		TH_LOG("as nobody: step %d failed (11 hwmon, 12 fdinfo readable, 13 PMU open)",
		       WEXITSTATUS(st));
}

TEST_HARNESS_MAIN
