// SPDX-License-Identifier: GPL-2.0
/*
 * A card hot-unplugged (hostctl hmp 'device_del llmdevN') while its KV
 * pool has a swap-in and a swap-out in flight: both end with an error
 * (not a hang), every later call of the pool fails cleanly, and the pool
 * can be destroyed. Leaves the VM a card short: run it last.
 */
#include <pthread.h>

#include "kv_util.h"
#include "kselftest_harness.h"

#define BS	(64 * 1024)
#define N	16

struct evictor {
	struct llmdev_kv *kv;
	int ret;
};

static void *evict_thread(void *arg)
{
	struct evictor *e = arg;

	e->ret = llmdev_kv_evict(e->kv, LLMDEV_KV_HBM, N);
	return NULL;
}

FIXTURE(kvu) {
	int kmsg;
	int fd;
};

FIXTURE_SETUP(kvu)
{
	LD_FIXTURE_START();
}

FIXTURE_TEARDOWN(kvu)
{
	LD_EXPECT_NO_KERNEL_REPORTS(self->kmsg);
}

TEST_F_TIMEOUT(kvu, unplug_during_swap, 150)
{
	LLMDEV_KV_OPTS(o, .block_size = BS, .hbm_blocks = 2 * N, .host_blocks = 2 * N,
		       .hbm_high_pct = 100, .hbm_low_pct = 99, .name = "unplug",
		       .timeout_ns = 60 * LD_NSEC_PER_SEC);
	struct llmdev_kv_ref a[N];
	struct evictor ev = { .ret = 1 };
	unsigned int u, n = ld_num_cards(), timeout_ms = 0, i;
	struct llmdev_kv_stats st;
	struct llmdev *dev;
	struct llmdev_kv *kv;
	uint8_t *buf = malloc(BS);
	char cmd[128], path[64];
	uint64_t fence, t0;
	pthread_t th;
	int ret;

	SETUP_OR_SKIP();
	if (system("command -v hostctl >/dev/null 2>&1"))
		SKIP(return, "hostctl is not on PATH: cannot reach the QEMU monitor");
	if (n < 2)
		SKIP(return, "needs 2 cards, has %u", n);
	u = n - 1;
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, llmdev_open(u, &dev));
	ASSERT_EQ(0, llmdev_kv_create(dev, &o, &kv));
	llmdev_close(dev);	/* the pool has its own handle */
	for (i = 0; i < N; i++) {
		a[i] = (struct llmdev_kv_ref){ .seq = 1, .index = i };
		ASSERT_EQ(0, llmdev_kv_alloc(kv, 1, i));
		kv_pattern(buf, BS, 1, i, 1);
		ASSERT_EQ(0, llmdev_kv_write(kv, 1, i, buf));
	}
	ASSERT_EQ(N, llmdev_kv_evict(kv, LLMDEV_KV_HBM, N));
	for (i = 0; i < N; i++)
		ASSERT_EQ(0, llmdev_kv_alloc(kv, 2, i));
	/* seq 1 in host memory (swapped in below), seq 2 in HBM (out) */
	if (ld_get_timeout_ms(&timeout_ms) == 0)
		ld_set_timeout_ms(60000);	/* the stall must outlast the unplug */
	if (kv_stall(u, true, true) || kv_stall(u, false, true)) {
		llmdev_kv_destroy(kv);
		SKIP(return, "no BAR 0 access for fault injection");
	}
	ASSERT_EQ(0, llmdev_kv_prefetch(kv, a, N, &fence));
	ev.kv = kv;
	ASSERT_EQ(0, pthread_create(&th, NULL, evict_thread, &ev));
	ld_msleep(300);

	snprintf(cmd, sizeof(cmd), "hostctl hmp 'device_del llmdev%u' >/dev/null 2>&1", u);
	t0 = ld_now_ns();
	ASSERT_EQ(0, system(cmd));
	snprintf(path, sizeof(path), LD_SYSFS_CLASS "/llmdev%u", u);
	while (access(path, F_OK) == 0 && ld_now_ns() < t0 + 30 * LD_NSEC_PER_SEC)
		ld_msleep(100);
	ASSERT_NE(0, access(path, F_OK)) TH_LOG("llmdev%u still there 30 s after device_del", u);
	pthread_join(th, NULL);
	TH_LOG("swap-out across the unplug: %d (%s), after %llu ms", ev.ret,
	       ev.ret < 0 ? llmdev_strerror(ev.ret) : "moved",
	       (unsigned long long)(ld_now_ns() - t0) / 1000000);
	EXPECT_TRUE(ev.ret == -ENODEV || ev.ret == -EIO);
	ret = llmdev_kv_wait(kv, fence, LD_LONG_WAIT);
	TH_LOG("swap-in across the unplug: %d (%s)", ret, llmdev_strerror(ret));
	EXPECT_TRUE(ret == -ENODEV || ret == -EIO);
	/* the pool is there but the card is not */
	EXPECT_EQ(-ENODEV, llmdev_kv_pin(kv, a, N, NULL));
	EXPECT_EQ(-ENODEV, llmdev_kv_read(kv, 2, 0, buf));
	/* blocks in host memory still read */
	EXPECT_EQ(LLMDEV_KV_HOST, llmdev_kv_tier(kv, 1, 0));
	EXPECT_EQ(0, llmdev_kv_read(kv, 1, 0, buf));
	ASSERT_EQ(0, llmdev_kv_get_stats(kv, &st, sizeof(st)));
	EXPECT_LE(2 * N, st.errors);
	llmdev_kv_destroy(kv);
	if (timeout_ms)
		ld_set_timeout_ms(timeout_ms);
	free(buf);
}

TEST_HARNESS_MAIN
