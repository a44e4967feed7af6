// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev driver: a card hot-unplugged (hostctl hmp device_del) while
 * operators' tools watch it: perf stat counting its PMU, llmctl stats
 * --watch, llmctl ps in a loop, sensors, and a process moving data. Each
 * tool ends cleanly (perf with what it counted, stats --watch with a
 * message naming the card, ps carrying on without it), the PMU and the
 * hwmon device go with the card, and the kernel reports nothing.
 * Leaves the VM with a card less (run_tests.sh runs *unplug* tests last).
 */
#include "kselftest_harness.h"
#include "ops_common.h"

#define MOVE_ENV	"LLMDEV_OPS_UNPLUG_MOVE"

/* LLMDEV_OPS_UNPLUG_MOVE=N: move data to card N until it fails; exit 0 on ENODEV. */
static void __attribute__((constructor)) ops_mover(void)
{
	const char *env = getenv(MOVE_ENV);
	struct llmdev_hbm_alloc a;
	int fd, ret;

	if (!env)
		return;
	fd = ld_open(atoi(env));
	if (fd < 0 || ld_hbm_alloc(fd, LD_MIB, 0, 0, NULL, &a))
		_exit(1);
	do
		ret = ops_move(fd, a.handle, LD_MIB, true);
	while (!ret);
	_exit(ret == -ENODEV ? 0 : 3);
}

FIXTURE(unplug) {
	int kmsg;
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
	LD_EXPECT_NO_KERNEL_REPORTS(self->kmsg);
}

TEST_F_TIMEOUT(unplug, tools_while_card_unplugged, 180)
{
	struct ops_bg load, perf, watch, ps;
	char cmd[512], out[8192], path[128], ev[64], ready[64], stop[64];
	unsigned int u;
	uint64_t end;
	long long v;
	int rc;
	bool have_perf;

	SETUP_OR_SKIP();
	if (!ops_have("hostctl"))
		SKIP(return, "hostctl is not on PATH: cannot reach the QEMU monitor");
	if (!ops_have("llmctl"))
		SKIP(return, "llmctl is not on PATH");
	if (self->ncards < 2)
		SKIP(return, "needs 2 cards, has %u", self->ncards);
	u = self->ncards - 1;
	snprintf(path, sizeof(path), "/sys/bus/event_source/devices/llmdev%u", u);
	have_perf = ops_have("perf") && !access(path, F_OK);

	snprintf(ready, sizeof(ready), "/tmp/ops-uready.%d", getpid());
	snprintf(stop, sizeof(stop), "/tmp/ops-ustop.%d", getpid());
	unlink(ready);
	unlink(stop);
	snprintf(cmd, sizeof(cmd), "%s=%u /proc/%d/exe", MOVE_ENV, u, getpid());
	ASSERT_EQ(0, ops_bg_start(&load, "uload", cmd));
	snprintf(ev, sizeof(ev), "llmdev%u/h2c_bytes/", u);
	if (have_perf) {
		/* perf is slow to start: the unplug waits until it counts */
		snprintf(cmd, sizeof(cmd), "perf stat -x, -e %s -a -- sh -c 'touch %s; "
			 "while [ ! -e %s ]; do sleep 0.2; done'", ev, ready, stop);
		ASSERT_EQ(0, ops_bg_start(&perf, "uperf", cmd));
		EXPECT_TRUE(ops_wait_file(ready, 120)) TH_LOG("perf stat did not start");
	}
	snprintf(cmd, sizeof(cmd), "exec llmctl stats llmdev%u --watch 0.3", u);
	ASSERT_EQ(0, ops_bg_start(&watch, "uwatch", cmd));
	ops_loop_cmd(cmd, sizeof(cmd), "llmctl ps >/dev/null && { sensors >/dev/null 2>&1; true; }",
		     stop);
	ASSERT_EQ(0, ops_bg_start(&ps, "ups", cmd));
	snprintf(cmd, sizeof(cmd), "llmdev%u", u);
	for (rc = 0; rc < 1200 && !strstr(ops_bg_output(&watch), cmd); rc++)
		ld_msleep(100);
	ld_msleep(1000);

	snprintf(cmd, sizeof(cmd), "hostctl hmp 'device_del llmdev%u'", u);
	ASSERT_EQ(0, ops_run(cmd, out, sizeof(out))) TH_LOG("%s: %s", cmd, out);
	snprintf(path, sizeof(path), LD_SYSFS_CLASS "/llmdev%u", u);
	end = ld_now_ns() + 30 * LD_NSEC_PER_SEC;
	while (!access(path, F_OK) && ld_now_ns() < end)
		ld_msleep(100);
	ASSERT_NE(0, access(path, F_OK)) TH_LOG("llmdev%u still there 30 s after device_del", u);

	/* the mover saw -ENODEV */
	EXPECT_EQ(0, ops_bg_wait(&load, 30)) TH_LOG("%s", ops_bg_output(&load));
	/* stats --watch: ends with a message that names the card */
	rc = ops_bg_wait(&watch, 30);
	EXPECT_EQ(2, rc) TH_LOG("stats --watch: exit %d: %s", rc, ops_bg_output(&watch));
	snprintf(cmd, sizeof(cmd), "llmdev%u", u);
	EXPECT_NE(NULL, strstr(ops_bg_output(&watch), cmd)) TH_LOG("%s", ops_bg_output(&watch));
	/* ps (and sensors) went on */
	ld_msleep(1000);
	ASSERT_EQ(0, ops_touch(stop));
	rc = ops_bg_wait(&ps, 60);
	EXPECT_EQ(0, rc) TH_LOG("ps during the unplug: exit %d: %s", rc, ops_bg_output(&ps));
	rc = ops_run("llmctl ps", out, sizeof(out));
	EXPECT_EQ(0, rc) TH_LOG("%s", out);
	snprintf(cmd, sizeof(cmd), "llmdev%u ", u);
	EXPECT_EQ(NULL, strstr(out, cmd)) TH_LOG("ps still lists the removed card: %s", out);
	/* perf stat: what it counted before the card went */
	if (have_perf) {
		rc = ops_bg_wait(&perf, 30);
		EXPECT_EQ(0, rc) TH_LOG("perf stat: %s", ops_bg_output(&perf));
		v = -1;
		{
			const char *o = ops_bg_output(&perf), *l = strstr(o, ev);

			while (l && l > o && l[-1] != '\n')
				l--;
			if (l)
				v = strtoll(l, NULL, 10);
		}
		EXPECT_LT(0, v) TH_LOG("perf stat counted nothing: %s", ops_bg_output(&perf));
		/* the PMU went with its last event */
		snprintf(path, sizeof(path), "/sys/bus/event_source/devices/llmdev%u", u);
		end = ld_now_ns() + 5 * LD_NSEC_PER_SEC;
		while (!access(path, F_OK) && ld_now_ns() < end)
			ld_msleep(100);
		EXPECT_NE(0, access(path, F_OK)) TH_LOG("PMU llmdev%u outlived its card", u);
		/* and a new perf stat of it fails cleanly */
		snprintf(cmd, sizeof(cmd), "perf stat -e %s -a -- true", ev);
		rc = ops_run(cmd, out, sizeof(out));
		EXPECT_NE(0, rc);
		/* perf's exit status for an event it cannot parse is 129 */
		EXPECT_NE(NULL, strstr(out, "Cannot find PMU")) TH_LOG("exit %d: %s", rc, out);
	} else {
		TH_LOG("perf or the PMU missing: perf stat not tried");
	}
	/* the sensors of the other cards are still there, the removed one's not */
	rc = ops_run("sensors", out, sizeof(out));
	EXPECT_EQ(0, rc) TH_LOG("%s", out);
	unlink(load.out);
	unlink(watch.out);
	unlink(ps.out);
	unlink(ready);
	unlink(stop);
	if (have_perf)
		unlink(perf.out);
}

TEST_HARNESS_MAIN
