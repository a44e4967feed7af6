// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev hot-unplug (runs last: the VM has one card less afterwards).
 *
 * Asks the host to remove the last card (`hostctl hmp 'device_del llmdevN'`,
 * N = CARDS - 1; the card sits behind root port rpN, so pciehp sees a
 * surprise-free removal through the attention button), waits up to 30 s for
 * its sysfs directory to go, then checks that every other card still answers
 * and still does a DMA round trip.
 *
 * Peer links (spec 1.1): before the removal every port is enabled and a long
 * collective (64-byte chunks over all of HBM) runs between the card that goes
 * and a card cabled to it. Afterwards that neighbour's collective has ended
 * (LINK_DOWN, or DONE if it was quicker than the unplug), its port saw the
 * link go (DOWN_COUNT, LINK_EVENT), and no remaining port names the card that
 * went as its peer once the links settle.
 *
 * SKIPs without hostctl on PATH, or with fewer than two cards.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/pci_regs.h>

#include "kselftest_harness.h"
#include "llmdev_test.h"

#define UNPLUG_WAIT_S	30

#ifndef MIN
#define MIN(a, b)	((a) < (b) ? (a) : (b))
#endif

static bool find_in_path(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH") ?: "/usr/bin:/bin";
	char *dup = strdup(path), *dir, *save = NULL;
	bool found = false;

	for (dir = strtok_r(dup, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/%s", dir, name);
		found = access(out, X_OK) == 0;
	}
	free(dup);
	if (!found)
		out[0] = 0;
	return found;
}

FIXTURE(unplug) {
	struct llmdev_cards cs;
	char hostctl[256];
	uint64_t cards;
};

FIXTURE_SETUP(unplug)
{
	LLMDEV_CARDS_SETUP(&self->cs);
	if (!find_in_path("hostctl", self->hostctl, sizeof(self->hostctl)))
		SKIP(return, "no hostctl on PATH: cannot ask the host to unplug");
	if (llmdev_vmconf_u64("CARDS", &self->cards))
		self->cards = self->cs.n;
}

FIXTURE_TEARDOWN(unplug)
{
	llmdev_cards_close(&self->cs);
}

static int run_hostctl(const char *hostctl, const char *hmp)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (!pid) {
		execl(hostctl, "hostctl", "-t", "30", "hmp", hmp, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define LNK(p, r)	(LLMDEV_LINK_BASE(p) + (r))

static bool cabled_up(struct llmdev_card *c, int n)
{
	unsigned int p;
	int i;

	for (i = 0; i < n; i++)
		for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
			uint32_t st = llmdev_rd32(&c[i], LNK(p, LLMDEV_LINK_STATUS));

			if ((st & LLMDEV_LINK_STATUS_CABLED) &&
			    LLMDEV_LINK_STATE(st) != LLMDEV_LINK_STATE_UP)
				return false;
		}
	return true;
}

static bool wait_cabled_up(struct llmdev_card *c, int n, unsigned int ms)
{
	uint64_t end = llmdev_now_ns() + ms * 1000000ull;

	while (!cabled_up(c, n)) {
		if (llmdev_now_ns() > end)
			return false;
		llmdev_sleep_ms(1);
	}
	return true;
}

/*
 * Links up everywhere, and a long collective between the last card and a
 * neighbour: *nb, *np = that card and its port; -1 if there is no cable.
 */
static void start_across(struct __test_metadata *_metadata, struct llmdev_cards *cs,
			 int *nb, unsigned int *np)
{
	struct llmdev_card *gone = &cs->card[cs->n - 1];
	uint64_t gserial = llmdev_rd64(gone, LLMDEV_REG_SERIAL), count;
	unsigned int p, gp = 0;
	int i;

	*nb = -1;
	if (llmdev_rd32(gone, LLMDEV_REG_VERSION) < (1u << 16 | 1))
		return;
	for (i = 0; i < cs->n; i++) {
		llmdev_soft_reset(&cs->card[i]);
		for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++)
			llmdev_wr32(&cs->card[i], LNK(p, LLMDEV_LINK_CTRL),
				    LLMDEV_LINK_CTRL_ENABLE);
	}
	ASSERT_TRUE(wait_cabled_up(cs->card, cs->n, 5000));
	for (i = 0; i < cs->n - 1 && *nb < 0; i++)
		for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++)
			if (llmdev_rd64(&cs->card[i], LNK(p, LLMDEV_LINK_PEER_SERIAL)) == gserial) {
				*nb = i;
				*np = p;
				gp = llmdev_rd32(&cs->card[i], LNK(p, LLMDEV_LINK_PEER_PORT));
				break;
			}
	if (*nb < 0)
		return;
	count = MIN(llmdev_rd64(gone, LLMDEV_REG_HBM_SIZE),
		    llmdev_rd64(&cs->card[*nb], LLMDEV_REG_HBM_SIZE)) / 4;
	for (i = 0; i < 2; i++) {
		struct llmdev_card *c = i ? gone : &cs->card[*nb];
		unsigned int port = i ? gp : *np;

		llmdev_wr64(c, LLMDEV_REG_COLL_TAG, 0x6011e);
		llmdev_wr32(c, LLMDEV_REG_COLL_OP,
			    LLMDEV_COLL_OP(LLMDEV_COLL_KIND_ALLREDUCE, LLMDEV_COLL_REDOP_SUM,
					   LLMDEV_COLL_DTYPE_I32, 0));
		llmdev_wr32(c, LLMDEV_REG_COLL_RANK, i | 2u << 8);
		llmdev_wr32(c, LLMDEV_REG_COLL_PORTS, port | port << 4);
		llmdev_wr32(c, LLMDEV_REG_COLL_CHUNK, LLMDEV_COLL_CHUNK_ALIGN);
		llmdev_wr64(c, LLMDEV_REG_COLL_COUNT, count);
		llmdev_wr64(c, LLMDEV_REG_COLL_SRC, 0);
		llmdev_wr64(c, LLMDEV_REG_COLL_DST, 0);
	}
	llmdev_wr32(&cs->card[*nb], LLMDEV_REG_COLL_CTRL, LLMDEV_COLL_CTRL_START);
	llmdev_wr32(gone, LLMDEV_REG_COLL_CTRL, LLMDEV_COLL_CTRL_START);
	EXPECT_EQ(LLMDEV_COLL_STATUS_BUSY | LLMDEV_COLL_STATUS_RUNNING,
		  llmdev_rd32(gone, LLMDEV_REG_COLL_STATUS));
	TH_LOG("%s port %u <-> %s port %u: links up, collective of %" PRIu64
	       " elements running across them", cs->card[*nb].bdf, *np, gone->bdf, gp, count);
}

/* small H2C + C2H round trip on one card; 0 if the bytes came back */
static int roundtrip(struct llmdev_card *c, char *err, size_t errlen)
{
	struct llmdev_uring in, out;
	struct llmdev_dmabuf src, dst;
	uint64_t seed = 0x554e504c5547ull;
	uint16_t cmd = llmdev_cfg_read16(c, PCI_COMMAND);
	int ret;

	memset(&in, 0, sizeof(in));
	memset(&out, 0, sizeof(out));
	memset(&dst, 0, sizeof(dst));
	ret = llmdev_dmabuf_alloc(&src, 3 * 4096, err, errlen);
	if (!ret)
		ret = llmdev_dmabuf_alloc(&dst, 3 * 4096, err, errlen);
	if (!ret)
		ret = llmdev_uring_alloc(&in, c, 1, 8);
	if (!ret)
		ret = llmdev_uring_alloc(&out, c, 2, 8);
	if (ret)
		goto out;
	llmdev_soft_reset(c);
	llmdev_cfg_write16(c, PCI_COMMAND, cmd | PCI_COMMAND_MASTER);
	llmdev_wr32(c, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_ENABLE);
	llmdev_fill_random(src.va, src.len, &seed);
	ret = llmdev_uring_start(&in) ?: llmdev_uring_start(&out);
	if (!ret && llmdev_uring_xfer(&in, &src, 5, 8000, 0x1234) < 0)
		ret = -EIO;
	if (!ret && llmdev_uring_xfer(&out, &dst, 9, 8000, 0x1234) < 0)
		ret = -EIO;
	if (ret)
		snprintf(err, errlen, "%s", in.err[0] ? in.err : out.err);
	else if (llmdev_memdiff(src.va + 5, dst.va + 9, 8000) != -1) {
		snprintf(err, errlen, "%s: data differs after round trip", c->bdf);
		ret = -EIO;
	}
	llmdev_soft_reset(c);
	llmdev_cfg_write16(c, PCI_COMMAND, cmd);
out:
	llmdev_uring_free(&in);
	llmdev_uring_free(&out);
	llmdev_dmabuf_free(&src);
	llmdev_dmabuf_free(&dst);
	return ret;
}

TEST_F_TIMEOUT(unplug, last_card, 90)
{
	char hmp[64], gone[32], err[256];
	uint64_t serial[LLMDEV_MAX_CARDS];
	int i, n, rc, waited_ms = 0, nb;
	unsigned int np = 0, p;

	LLMDEV_REQUIRE(&self->cs);
	if (!self->hostctl[0])
		SKIP(return, "no hostctl on PATH");
	n = self->cs.n;
	if (n < 2 || self->cards < 2)
		SKIP(return, "needs at least 2 cards (found %d, CARDS=%" PRIu64 ")",
		     n, self->cards);
	ASSERT_EQ((uint64_t)n, self->cards) TH_LOG("a card is missing already");

	for (i = 0; i < n; i++) {
		serial[i] = llmdev_rd64(&self->cs.card[i], LLMDEV_REG_SERIAL);
		TH_LOG("%s serial %#" PRIx64, self->cs.card[i].bdf, serial[i]);
	}
	start_across(_metadata, &self->cs, &nb, &np);
	/* stop touching the card that goes away */
	snprintf(gone, sizeof(gone), "%s", self->cs.card[n - 1].bdf);
	llmdev_card_close(&self->cs.card[n - 1]);
	self->cs.n = n - 1;

	snprintf(hmp, sizeof(hmp), "device_del llmdev%d", n - 1);
	TH_LOG("hostctl hmp '%s' (expect %s to go)", hmp, gone);
	rc = run_hostctl(self->hostctl, hmp);
	ASSERT_EQ(0, rc) TH_LOG("hostctl hmp '%s' failed: %d", hmp, rc);

	for (;;) {
		char bdf[LLMDEV_MAX_CARDS][32];
		int now = llmdev_find_cards(bdf, LLMDEV_MAX_CARDS);

		if (now < n)
			break;
		ASSERT_GT(UNPLUG_WAIT_S * 1000, waited_ms)
			TH_LOG("still %d cards after %d s", now, UNPLUG_WAIT_S);
		llmdev_sleep_ms(100);
		waited_ms += 100;
	}
	TH_LOG("card gone after %d ms", waited_ms);
	/* exactly one card went, and it was the one we asked for */
	{
		char bdf[LLMDEV_MAX_CARDS][32];

		EXPECT_EQ(n - 1, llmdev_find_cards(bdf, LLMDEV_MAX_CARDS));
	}
	EXPECT_FALSE(llmdev_card_present(gone)) TH_LOG("%s still present", gone);
	for (i = 0; i < n - 1; i++)
		EXPECT_TRUE(llmdev_card_present(self->cs.card[i].bdf))
			TH_LOG("%s went away instead", self->cs.card[i].bdf);

	/* the neighbour lost its link and its collective; nobody names the card */
	if (nb >= 0) {
		struct llmdev_card *c = &self->cs.card[nb];
		uint64_t end = llmdev_now_ns() + UNPLUG_WAIT_S * 1000000000ull;
		uint32_t st;

		/*
		 * The guest may drop the sysfs directory before the host has
		 * removed the card: wait until the neighbour sees the link go.
		 */
		while (!llmdev_rd32(c, LNK(np, LLMDEV_LINK_DOWN_COUNT)) &&
		       llmdev_now_ns() < end)
			llmdev_sleep_ms(10);
		st = llmdev_rd32(c, LLMDEV_REG_COLL_STATUS);
		TH_LOG("%s: collective status %#x, port %u down %u times", c->bdf, st, np,
		       llmdev_rd32(c, LNK(np, LLMDEV_LINK_DOWN_COUNT)));
		EXPECT_EQ(0, st & LLMDEV_COLL_STATUS_BUSY);
		if (st & LLMDEV_COLL_STATUS_ERROR)
			EXPECT_EQ(LLMDEV_COLL_ERR_LINK_DOWN, LLMDEV_COLL_STATUS_ERR(st));
		EXPECT_LE(1, llmdev_rd32(c, LNK(np, LLMDEV_LINK_DOWN_COUNT)));
		EXPECT_NE(0, llmdev_rd32(c, LLMDEV_REG_LINK_EVENT) &
			  LLMDEV_LINK_EVENT_STATE(np));
		EXPECT_NE(0, llmdev_rd32(c, LLMDEV_REG_EVENT_CAUSE) & LLMDEV_EVENT_LINK);
		/* the default ring closes again without the card */
		EXPECT_TRUE(wait_cabled_up(self->cs.card, n - 1, 5000));
		for (i = 0; i < n - 1; i++) {
			for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
				EXPECT_NE(serial[n - 1], llmdev_rd64(&self->cs.card[i],
						LNK(p, LLMDEV_LINK_PEER_SERIAL)))
					TH_LOG("%s port %u", self->cs.card[i].bdf, p);
			}
		}
	}

	/* the others carry on */
	for (i = 0; i < n - 1; i++) {
		struct llmdev_card *c = &self->cs.card[i];

		EXPECT_EQ(LLMDEV_ID_MAGIC, llmdev_rd32(c, LLMDEV_REG_ID)) TH_LOG("%s", c->bdf);
		EXPECT_EQ(serial[i], llmdev_rd64(c, LLMDEV_REG_SERIAL));
		EXPECT_EQ(0, roundtrip(c, err, sizeof(err))) TH_LOG("%s", err);
	}
}

int main(int argc, char **argv)
{
	char bdf[LLMDEV_MAX_CARDS][32], path[256];
	uint64_t cards;
	int n;

	if (geteuid()) {
		ksft_print_header();
		ksft_exit_skip("needs root\n");
	}
	if (!find_in_path("hostctl", path, sizeof(path))) {
		ksft_print_header();
		ksft_exit_skip("no hostctl on PATH: cannot ask the host to unplug a card\n");
	}
	n = llmdev_find_cards(bdf, LLMDEV_MAX_CARDS);
	if (llmdev_vmconf_u64("CARDS", &cards))
		cards = n;
	if (n < 2 || cards < 2) {
		ksft_print_header();
		ksft_exit_skip("needs at least 2 cards (found %d, CARDS=%" PRIu64 ")\n",
			       n, cards);
	}
	return test_harness_run(argc, argv);
}
