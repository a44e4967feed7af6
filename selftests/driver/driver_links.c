// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev driver: peer links, through the ioctls, sysfs and generic netlink.
 *
 *  - LINK_INFO on every port of every card matches the VM's cabling (the
 *    default ring: card i port 0 to card i + 1 port 1, or CABLES= in
 *    vm.conf): state, flags, peer serial (from the peer's LLMDEV_INFO),
 *    peer port, peer minor; uncabled ports are down.
 *  - /sys/class/llmdev/llmdevN/linkP/ agrees with LINK_INFO.
 *  - LINK_SET: disable takes both ends down, enable brings them back;
 *    CAP_SYS_ADMIN needed (also when CAP_NET_ADMIN is kept) for the ioctl
 *    and for netlink LINK_SET; ports out of range are EINVAL.
 *  - netlink: family "llmdev", LINK_GET do and dump (every port of every
 *    card once), LINK_EVENT on both ends of a toggled link (by ioctl and by
 *    netlink), LINK_ERROR on both ends and the error counters (tx_errors
 *    of the injecting port, rx_errors of the far end) after an
 *    ERROR_BURST injected through BAR 0, a FORCE_DOWN "pulled cable" and
 *    its recovery.
 *
 * BAR 0 is mapped through sysfs resource0 while the driver is bound (needs
 * iomem=relaxed with CONFIG_IO_STRICT_DEVMEM); the tests that need it SKIP
 * without it. Every test leaves all ports enabled and up.
 */
#include "driver_util.h"
#include "driver_nl.h"
#include "kselftest_harness.h"

#define UP_MS		2000	/* a link trains in ~1 ms; generous for TCG */
#define EVENT_MS	3000

FIXTURE(links) {
	int kmsg;
	int fd;			/* unused; LD_FIXTURE_START sets it */
	unsigned int ncards, nports;
	int fds[LD_MAX_CARDS];
	struct llmdev_info info[LD_MAX_CARDS];
	int peer[LD_MAX_CARDS][LD_MAX_PORTS];	/* card * LD_MAX_PORTS + port */
	struct ld_bar0 bar[LD_MAX_CARDS];
};

static bool cabled(FIXTURE_DATA(links) *self, unsigned int c, unsigned int p)
{
	int q = self->peer[c][p];

	return q >= 0 && (unsigned int)q / LD_MAX_PORTS < self->ncards;
}

static unsigned int peer_card(FIXTURE_DATA(links) *self, unsigned int c,
			      unsigned int p)
{
	return self->peer[c][p] / LD_MAX_PORTS;
}

static unsigned int peer_port(FIXTURE_DATA(links) *self, unsigned int c,
			      unsigned int p)
{
	return self->peer[c][p] % LD_MAX_PORTS;
}

/* A cabled port of card 0 and its far end; false if card 0 has none. */
static bool first_link(FIXTURE_DATA(links) *self, unsigned int *p,
		       unsigned int *pc, unsigned int *pp)
{
	for (*p = 0; *p < self->nports; (*p)++) {
		if (cabled(self, 0, *p)) {
			*pc = peer_card(self, 0, *p);
			*pp = peer_port(self, 0, *p);
			return true;
		}
	}
	return false;
}

static void *bar(struct __test_metadata *_metadata,
		 FIXTURE_DATA(links) *self, unsigned int card)
{
	if (!self->bar[card].regs && ld_bar0_map(card, &self->bar[card]))
		return NULL;
	return (void *)self->bar[card].regs;
}

/* Every cabled port up, within UP_MS: 0 or the first port that is not. */
static int all_up(FIXTURE_DATA(links) *self, char *why, size_t len)
{
	unsigned int c, p;
	int ret;

	for (c = 0; c < self->ncards; c++) {
		for (p = 0; p < self->nports; p++) {
			if (!cabled(self, c, p))
				continue;
			ret = ld_link_wait(self->fds[c], p, LLMDEV_LINK_UP, UP_MS);
			if (ret) {
				snprintf(why, len, "llmdev%u port %u not up: %s",
					 c, p, strerror(-ret));
				return ret;
			}
		}
	}
	return 0;
}

FIXTURE_SETUP(links)
{
	char why[128];
	int ret;

	memset(self->fds, -1, sizeof(self->fds));
	LD_FIXTURE_START();
	self->ncards = ld_num_cards();
	if (self->ncards > LD_MAX_CARDS)
		self->ncards = LD_MAX_CARDS;
	if (self->ncards < 2)
		SKIP(return, "peer links need 2 cards, the VM has %u", self->ncards);
	LD_FIXTURE_OPEN_CARDS();
	self->nports = self->info[0].num_link_ports;
	ASSERT_EQ(LLMDEV_NUM_LINK_PORTS, self->nports);
	ASSERT_EQ(0, ld_topology(self->ncards, self->peer)) TH_LOG("bad CABLES= in vm.conf");
	ret = all_up(self, why, sizeof(why));
	ASSERT_EQ(0, ret) TH_LOG("at the start: %s", why);
}

FIXTURE_TEARDOWN(links)
{
	unsigned int c, p;
	char why[128];

	LD_EXPECT_NO_KERNEL_REPORTS(self->kmsg);
	/* leave every port enabled, without faults, and up */
	for (c = 0; c < self->ncards; c++) {
		if (self->fds[c] < 0)
			continue;
		for (p = 0; p < self->nports; p++) {
			if (self->bar[c].regs) {
				ld_wr32(&self->bar[c], LLMDEV_LINK_BASE(p) + LLMDEV_LINK_FAULT, 0);
				ld_wr64(&self->bar[c], LLMDEV_LINK_BASE(p) + LLMDEV_LINK_DOWN_AFTER, 0);
			}
			ld_link_set(self->fds[c], p, 1);
		}
	}
	if (self->ncards >= 2 && self->fds[self->ncards - 1] >= 0 &&
	    all_up(self, why, sizeof(why)))
		TH_LOG("teardown: %s", why);
	for (c = 0; c < LD_MAX_CARDS; c++) {
		ld_bar0_unmap(&self->bar[c]);
		if (self->fds[c] >= 0)
			close(self->fds[c]);
	}
}

/* ---- LINK_INFO and the cabling ----------------------------------------------- */

TEST_F(links, topology)
{
	struct llmdev_link_info l;
	unsigned int c, p, pc;

	SETUP_OR_SKIP();
	for (c = 0; c < self->ncards; c++) {
		for (p = 0; p < self->nports; p++) {
			ASSERT_EQ(0, ld_link_info(self->fds[c], p, &l));
			EXPECT_EQ(sizeof(l), l.size);
			EXPECT_EQ(p, l.port);
			EXPECT_TRUE(l.link_flags & LLMDEV_LINK_ENABLED)
				TH_LOG("llmdev%u port %u not enabled after probe", c, p);
			if (!cabled(self, c, p)) {
				EXPECT_EQ(LLMDEV_LINK_DOWN, l.state)
					TH_LOG("llmdev%u port %u has no cable", c, p);
				EXPECT_FALSE(l.link_flags & LLMDEV_LINK_CABLED);
				EXPECT_EQ(0, l.peer_serial);
				EXPECT_EQ(LLMDEV_NO_CARD, l.peer_minor);
				continue;
			}
			pc = peer_card(self, c, p);
			EXPECT_EQ(LLMDEV_LINK_UP, l.state)
				TH_LOG("llmdev%u port %u (cable to llmdev%u port %u)",
				       c, p, pc, peer_port(self, c, p));
			EXPECT_TRUE(l.link_flags & LLMDEV_LINK_CABLED);
			EXPECT_EQ(self->info[pc].serial, l.peer_serial)
				TH_LOG("llmdev%u port %u: peer serial %#llx, llmdev%u is %#llx",
				       c, p, (unsigned long long)l.peer_serial, pc,
				       (unsigned long long)self->info[pc].serial);
			EXPECT_EQ(peer_port(self, c, p), l.peer_port);
			EXPECT_EQ((int)pc, l.peer_minor);
			EXPECT_EQ(0, l.tx_errors);
			EXPECT_EQ(0, l.rx_errors);
		}
	}
}

TEST_F(links, out_of_range)
{
	struct llmdev_link_info l;
	uint32_t bad[] = { self->nports, LLMDEV_NUM_LINK_PORTS, 255, 0xffffffffu };
	unsigned int i;

	SETUP_OR_SKIP();
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(-EINVAL, ld_link_info(self->fds[0], bad[i], &l))
			TH_LOG("LINK_INFO port %u", bad[i]);
		EXPECT_EQ(-EINVAL, ld_link_set(self->fds[0], bad[i], 1))
			TH_LOG("LINK_SET port %u", bad[i]);
		EXPECT_EQ(-EINVAL, ld_link_set(self->fds[0], bad[i], 0))
			TH_LOG("LINK_SET port %u", bad[i]);
	}
	EXPECT_EQ(-EINVAL, ld_link_set(self->fds[0], 0, 2));
	EXPECT_EQ(-EINVAL, ld_link_set(self->fds[0], 0, 0xffffffffu));
	/* none of it touched a link */
	EXPECT_EQ(0, ld_link_wait(self->fds[0], 0, cabled(self, 0, 0) ?
				  LLMDEV_LINK_UP : LLMDEV_LINK_DOWN, 0));
}

/* ---- sysfs ------------------------------------------------------------------ */

static int link_attr(unsigned int card, unsigned int port, const char *attr,
		     char *buf, size_t len)
{
	char path[256];

	snprintf(path, sizeof(path), LD_SYSFS_CLASS "/llmdev%u/link%u/%s",
		 card, port, attr);
	return ld_read_file(path, buf, len);
}

static const char *state_name(uint32_t state)
{
	switch (state) {
	case LLMDEV_LINK_DOWN:
		return "down";
	case LLMDEV_LINK_TRAINING:
		return "training";
	case LLMDEV_LINK_UP:
		return "up";
	}
	return "?";
}

/* the sysfs files of one port against a LINK_INFO taken just before */
static void check_sysfs(struct __test_metadata *_metadata,
			FIXTURE_DATA(links) *self, unsigned int c,
			unsigned int p)
{
	struct llmdev_link_info l, l2;
	static const char *const ctr[] = {
		"tx_bytes", "rx_bytes", "tx_errors", "rx_errors",
	};
	uint64_t before[4], after[4];
	char buf[128], want[64];
	unsigned int i;

	ASSERT_EQ(0, ld_link_info(self->fds[c], p, &l));
	ASSERT_EQ(0, link_attr(c, p, "state", buf, sizeof(buf)))
		TH_LOG("no %s/llmdev%u/link%u/state", LD_SYSFS_CLASS, c, p);
	EXPECT_STREQ(state_name(l.state), buf) TH_LOG("llmdev%u link%u", c, p);
	ASSERT_EQ(0, link_attr(c, p, "enabled", buf, sizeof(buf)));
	EXPECT_STREQ(l.link_flags & LLMDEV_LINK_ENABLED ? "1" : "0", buf);
	ASSERT_EQ(0, link_attr(c, p, "peer_serial", buf, sizeof(buf)));
	snprintf(want, sizeof(want), "0x%016llx", (unsigned long long)l.peer_serial);
	EXPECT_STREQ(want, buf) TH_LOG("llmdev%u link%u peer_serial", c, p);
	ASSERT_EQ(0, link_attr(c, p, "peer_port", buf, sizeof(buf)));
	if (l.state == LLMDEV_LINK_UP)
		snprintf(want, sizeof(want), "%u", l.peer_port);
	else
		snprintf(want, sizeof(want), "-1");
	EXPECT_STREQ(want, buf) TH_LOG("llmdev%u link%u peer_port", c, p);
	ASSERT_EQ(0, link_attr(c, p, "peer_card", buf, sizeof(buf)));
	if (l.peer_minor >= 0)
		snprintf(want, sizeof(want), "llmdev%d", l.peer_minor);
	else
		want[0] = 0;
	EXPECT_STREQ(want, buf) TH_LOG("llmdev%u link%u peer_card", c, p);
	ASSERT_EQ(0, link_attr(c, p, "down_count", buf, sizeof(buf)));
	snprintf(want, sizeof(want), "%u", l.down_count);
	EXPECT_STREQ(want, buf) TH_LOG("llmdev%u link%u down_count", c, p);

	/* counters: decimal, between two LINK_INFOs */
	before[0] = l.tx_bytes;
	before[1] = l.rx_bytes;
	before[2] = l.tx_errors;
	before[3] = l.rx_errors;
	for (i = 0; i < 4; i++) {
		char *end;
		uint64_t v;

		ASSERT_EQ(0, link_attr(c, p, ctr[i], buf, sizeof(buf)));
		errno = 0;
		v = strtoull(buf, &end, 10);
		EXPECT_TRUE(!errno && end != buf && !*end)
			TH_LOG("llmdev%u link%u/%s = \"%s\": not decimal", c, p, ctr[i], buf);
		after[i] = v;
	}
	ASSERT_EQ(0, ld_link_info(self->fds[c], p, &l2));
	EXPECT_TRUE(before[0] <= after[0] && after[0] <= l2.tx_bytes);
	EXPECT_TRUE(before[1] <= after[1] && after[1] <= l2.rx_bytes);
	EXPECT_TRUE(before[2] <= after[2] && after[2] <= l2.tx_errors);
	EXPECT_TRUE(before[3] <= after[3] && after[3] <= l2.rx_errors);
}

TEST_F(links, sysfs_matches_ioctl)
{
	unsigned int c, p, pc, pp;
	char buf[64], path[256];

	SETUP_OR_SKIP();
	for (c = 0; c < self->ncards; c++)
		for (p = 0; p < self->nports; p++)
			check_sysfs(_metadata, self, c, p);
	/* no link%u beyond the ports */
	snprintf(path, sizeof(path), LD_SYSFS_CLASS "/llmdev0/link%u", self->nports);
	EXPECT_NE(0, access(path, F_OK));

	/* and with a link down: the far end's view too */
	ASSERT_TRUE(first_link(self, &p, &pc, &pp));
	ASSERT_EQ(0, ld_link_set(self->fds[0], p, 0));
	ASSERT_EQ(0, ld_link_wait(self->fds[0], p, LLMDEV_LINK_DOWN, UP_MS));
	ASSERT_EQ(0, ld_link_wait(self->fds[pc], pp, LLMDEV_LINK_TRAINING, UP_MS));
	check_sysfs(_metadata, self, 0, p);
	check_sysfs(_metadata, self, pc, pp);
	ASSERT_EQ(0, link_attr(pc, pp, "state", buf, sizeof(buf)));
	EXPECT_STREQ("training", buf);
	ASSERT_EQ(0, link_attr(0, p, "enabled", buf, sizeof(buf)));
	EXPECT_STREQ("0", buf);
	ASSERT_EQ(0, link_attr(0, p, "peer_card", buf, sizeof(buf)));
	EXPECT_STREQ("", buf);
	ASSERT_EQ(0, ld_link_set(self->fds[0], p, 1));
}

/* ---- LINK_SET ------------------------------------------------------------------ */

TEST_F(links, disable_enable)
{
	struct llmdev_link_info a0, b0, a, b;
	unsigned int p, pc, pp, round;

	SETUP_OR_SKIP();
	ASSERT_TRUE(first_link(self, &p, &pc, &pp));
	for (round = 0; round < 2; round++) {
		/* round 0: disabled at card 0; round 1: at the far end */
		int xfd = round ? self->fds[pc] : self->fds[0];
		unsigned int xp = round ? pp : p;

		ASSERT_EQ(0, ld_link_info(self->fds[0], p, &a0));
		ASSERT_EQ(0, ld_link_info(self->fds[pc], pp, &b0));
		ASSERT_EQ(0, ld_link_set(xfd, xp, 0));
		EXPECT_EQ(0, ld_link_wait(self->fds[0], p, round ?
					  LLMDEV_LINK_TRAINING : LLMDEV_LINK_DOWN, UP_MS));
		EXPECT_EQ(0, ld_link_wait(self->fds[pc], pp, round ?
					  LLMDEV_LINK_DOWN : LLMDEV_LINK_TRAINING, UP_MS));
		ASSERT_EQ(0, ld_link_info(self->fds[0], p, &a));
		ASSERT_EQ(0, ld_link_info(self->fds[pc], pp, &b));
		EXPECT_EQ(!round, !(a.link_flags & LLMDEV_LINK_ENABLED));
		EXPECT_EQ(round, !(b.link_flags & LLMDEV_LINK_ENABLED));
		EXPECT_TRUE(a.link_flags & LLMDEV_LINK_CABLED);
		EXPECT_TRUE(b.link_flags & LLMDEV_LINK_CABLED);
		EXPECT_EQ(0, a.peer_serial);
		EXPECT_EQ(0, b.peer_serial);
		EXPECT_EQ(LLMDEV_NO_CARD, a.peer_minor);
		EXPECT_EQ(LLMDEV_NO_CARD, b.peer_minor);
		EXPECT_EQ(a0.down_count + 1, a.down_count);
		EXPECT_EQ(b0.down_count + 1, b.down_count);
		/* disabling twice is not an error and changes nothing */
		EXPECT_EQ(0, ld_link_set(xfd, xp, 0));
		ld_msleep(20);
		ASSERT_EQ(0, ld_link_info(self->fds[0], p, &a));
		EXPECT_EQ(a0.down_count + 1, a.down_count);

		ASSERT_EQ(0, ld_link_set(xfd, xp, 1));
		EXPECT_EQ(0, ld_link_wait(self->fds[0], p, LLMDEV_LINK_UP, UP_MS));
		EXPECT_EQ(0, ld_link_wait(self->fds[pc], pp, LLMDEV_LINK_UP, UP_MS));
		ASSERT_EQ(0, ld_link_info(self->fds[0], p, &a));
		ASSERT_EQ(0, ld_link_info(self->fds[pc], pp, &b));
		EXPECT_EQ(self->info[pc].serial, a.peer_serial);
		EXPECT_EQ(self->info[0].serial, b.peer_serial);
		EXPECT_EQ(pp, a.peer_port);
		EXPECT_EQ(p, b.peer_port);
		EXPECT_EQ((int)pc, a.peer_minor);
		EXPECT_EQ(0, b.peer_minor);
		EXPECT_EQ(a0.down_count + 1, a.down_count);
		/* enabling an up link changes nothing */
		EXPECT_EQ(0, ld_link_set(xfd, xp, 1));
		ld_msleep(20);
		ASSERT_EQ(0, ld_link_info(self->fds[0], p, &a));
		EXPECT_EQ(LLMDEV_LINK_UP, a.state);
		EXPECT_EQ(a0.down_count + 1, a.down_count);
	}
}

/* An uncabled port can be disabled and enabled; it stays down. */
TEST_F(links, uncabled_port)
{
	struct llmdev_link_info l;
	unsigned int p;

	SETUP_OR_SKIP();
	for (p = 0; p < self->nports && cabled(self, 0, p); p++)
		;
	if (p == self->nports)
		SKIP(return, "every port of llmdev0 is cabled");
	ASSERT_EQ(0, ld_link_set(self->fds[0], p, 0));
	ASSERT_EQ(0, ld_link_info(self->fds[0], p, &l));
	EXPECT_EQ(LLMDEV_LINK_DOWN, l.state);
	EXPECT_FALSE(l.link_flags & (LLMDEV_LINK_ENABLED | LLMDEV_LINK_CABLED));
	ASSERT_EQ(0, ld_link_set(self->fds[0], p, 1));
	ld_msleep(20);
	ASSERT_EQ(0, ld_link_info(self->fds[0], p, &l));
	EXPECT_EQ(LLMDEV_LINK_DOWN, l.state);
	EXPECT_EQ(LLMDEV_LINK_ENABLED, l.link_flags);
	EXPECT_EQ(0, l.down_count);
}

/*
 * In a child: give up privileges (@nobody: become uid 65534; else only
 * drop CAP_SYS_ADMIN and stay root with CAP_NET_ADMIN), then try LINK_SET
 * by ioctl and by netlink on a cabled port. Exit codes: 0 both EPERM,
 * 10 + n failure n.
 */
static int try_unprivileged(unsigned int card, unsigned int port, bool nobody)
{
	struct llmdev_link_info l;
	struct ld_nl *nl;
	int fd, ret;

	fd = ld_open(card);
	if (fd < 0)
		return 10;
	if (nobody ? ld_drop_privs() : ld_drop_cap(CAP_SYS_ADMIN))
		return 11;
	/* reading is for everyone */
	if (ld_link_info(fd, port, &l) || l.state != LLMDEV_LINK_UP)
		return 12;
	if (ld_link_set(fd, port, 0) != -EPERM)
		return 13;
	if (ld_link_set(fd, port, 1) != -EPERM)
		return 14;
	ret = ld_nl_open(&nl, false);
	if (ret)
		return 15;
	if (ld_nl_link_set(nl, card, port, false) != -EPERM)
		return 16;
	/* reading through netlink is for everyone too */
	{
		struct ld_nl_msg m;

		if (ld_nl_link_get(nl, card, port, &m) || m.state != LLMDEV_LINK_UP)
			return 17;
	}
	ld_nl_close(nl);
	if (ld_link_info(fd, port, &l) || l.state != LLMDEV_LINK_UP)
		return 18;
	close(fd);
	return 0;
}

TEST_F(links, set_needs_cap_sys_admin)
{
	static const char *const what[] = {
		"open", "dropping privileges", "LINK_INFO",
		"LINK_SET disable not EPERM", "LINK_SET enable not EPERM",
		"netlink open", "netlink LINK_SET not EPERM",
		"netlink LINK_GET", "link changed",
	};
	unsigned int p, pc, pp, i;

	SETUP_OR_SKIP();
	ASSERT_TRUE(first_link(self, &p, &pc, &pp));
	for (i = 0; i < 2; i++) {
		pid_t pid = fork();
		int st;

		ASSERT_LE(0, pid);
		if (!pid)
			_exit(try_unprivileged(0, p, i == 1));
		st = ld_wait_child(pid);
		EXPECT_EQ(0, st) TH_LOG("%s: %s", i ? "as nobody" : "root without CAP_SYS_ADMIN",
					st >= 10 && st < 19 ? what[st - 10] : "crashed");
	}
	EXPECT_EQ(0, ld_link_wait(self->fds[0], p, LLMDEV_LINK_UP, 0));
}

/* ---- netlink --------------------------------------------------------------- */

#define NEED_NL(nl, events) do {					\
	int _r = ld_nl_open(&(nl), events);				\
	ASSERT_EQ(0, _r) TH_LOG("generic netlink family \"llmdev\"%s: %s", \
				(events) ? " group \"events\"" : "", strerror(-_r)); \
} while (0)

/* A LINK message against LINK_INFO of the same port. */
static void check_link_msg(struct __test_metadata *_metadata,
			   FIXTURE_DATA(links) *self, const struct ld_nl_msg *m,
			   const struct llmdev_link_info *l)
{
	const uint32_t must = LD_NL_HAS_CARD | LD_NL_HAS_SERIAL | LD_NL_HAS_PORT |
			      LD_NL_HAS_STATE | LD_NL_HAS_ENABLED;

	EXPECT_EQ(must, m->has & must) TH_LOG("attributes %#x", m->has);
	ASSERT_LT(m->card, self->ncards);
	EXPECT_EQ(self->info[m->card].serial, m->serial);
	EXPECT_EQ(l->state, m->state) TH_LOG("llmdev%u port %u", m->card, m->port);
	EXPECT_EQ(!!(l->link_flags & LLMDEV_LINK_ENABLED), m->enabled);
	if (l->state == LLMDEV_LINK_UP) {
		EXPECT_TRUE(m->has & LD_NL_HAS_PEER_SERIAL);
		EXPECT_EQ(l->peer_serial, m->peer_serial);
		EXPECT_TRUE(m->has & LD_NL_HAS_PEER_PORT);
		EXPECT_EQ(l->peer_port, m->peer_port);
		EXPECT_TRUE(m->has & LD_NL_HAS_PEER_CARD);
		EXPECT_EQ((uint32_t)l->peer_minor, m->peer_card);
	} else {
		EXPECT_FALSE(m->has & LD_NL_HAS_PEER_SERIAL && m->peer_serial);
		EXPECT_FALSE(m->has & LD_NL_HAS_PEER_CARD);
	}
	if (m->has & LD_NL_HAS_DOWN_COUNT)
		EXPECT_EQ(l->down_count, m->down_count);
	if (m->has & LD_NL_HAS_TX_ERRORS)
		EXPECT_EQ(l->tx_errors, m->tx_errors);
	if (m->has & LD_NL_HAS_RX_ERRORS)
		EXPECT_EQ(l->rx_errors, m->rx_errors);
}

TEST_F(links, netlink_get)
{
	struct ld_nl_msg m, *dump;
	struct llmdev_link_info l;
	unsigned int c, p, n, i;
	bool seen[LD_MAX_CARDS][LD_MAX_PORTS] = { { false } };
	struct ld_nl *nl;

	SETUP_OR_SKIP();
	NEED_NL(nl, false);
	for (c = 0; c < self->ncards; c++) {
		for (p = 0; p < self->nports; p++) {
			ASSERT_EQ(0, ld_nl_link_get(nl, c, p, &m)) TH_LOG("llmdev%u port %u", c, p);
			ASSERT_EQ(0, ld_link_info(self->fds[c], p, &l));
			EXPECT_EQ(LD_NL_LINK, m.cmd);
			EXPECT_EQ(c, m.card);
			EXPECT_EQ(p, m.port);
			check_link_msg(_metadata, self, &m, &l);
		}
	}
	/* out-of-range attributes fail the family's policy: -ERANGE */
	EXPECT_EQ(-ERANGE, ld_nl_link_get(nl, 0, self->nports, &m));
	EXPECT_EQ(-ERANGE, ld_nl_link_get(nl, 0, 0xffffffffu, &m));
	EXPECT_EQ(-ENODEV, ld_nl_link_get(nl, self->ncards + 10, 0, &m));
	EXPECT_EQ(-ENODEV, ld_nl_link_set(nl, self->ncards + 10, 0, true));
	EXPECT_EQ(-ERANGE, ld_nl_link_set(nl, 0, self->nports, true));

	/* the dump: every port of every card, once */
	dump = calloc(4 * LD_MAX_CARDS * LD_MAX_PORTS, sizeof(*dump));
	ASSERT_NE(NULL, dump);
	ASSERT_EQ(0, ld_nl_link_dump(nl, dump, 4 * LD_MAX_CARDS * LD_MAX_PORTS, &n));
	EXPECT_EQ(self->ncards * self->nports, n);
	for (i = 0; i < n && i < 4 * LD_MAX_CARDS * LD_MAX_PORTS; i++) {
		ASSERT_TRUE(dump[i].has & LD_NL_HAS_CARD && dump[i].has & LD_NL_HAS_PORT);
		ASSERT_LT(dump[i].card, self->ncards);
		ASSERT_LT(dump[i].port, self->nports);
		EXPECT_FALSE(seen[dump[i].card][dump[i].port])
			TH_LOG("llmdev%u port %u twice", dump[i].card, dump[i].port);
		seen[dump[i].card][dump[i].port] = true;
		ASSERT_EQ(0, ld_link_info(self->fds[dump[i].card], dump[i].port, &l));
		check_link_msg(_metadata, self, &dump[i], &l);
	}
	free(dump);
	ld_nl_close(nl);
}

#define ST(s)		(1u << (s))
#define NOT_UP		(ST(LLMDEV_LINK_DOWN) | ST(LLMDEV_LINK_TRAINING))

struct want {
	uint32_t card, port;
	uint32_t states;	/* mask of ST(state) */
};

/*
 * Wait for LINK_EVENTs, in any order: for each @want[i], the first event
 * of its (card, port) with a state in its mask, into @out[i]; others are
 * skipped (e.g. TRAINING on the way up). Return: how many did not come
 * within EVENT_MS (0: all did), or a negative errno.
 */
static int wait_link_events(struct ld_nl *nl, const struct want *want,
			    unsigned int n, struct ld_nl_msg *out)
{
	uint64_t end = ld_now_ns() + EVENT_MS * 1000000ULL;
	bool got[8] = { false };
	unsigned int i, missing = n;
	struct ld_nl_msg m;
	int ret;

	while (missing) {
		uint64_t now = ld_now_ns();

		if (now >= end)
			break;
		ret = ld_nl_next_event(nl, &m, (end - now) / 1000000 + 1);
		if (ret == -ETIME)
			break;
		if (ret)
			return ret;
		if (m.cmd != LD_NL_LINK_EVENT || m.state >= 32)
			continue;
		for (i = 0; i < n; i++) {
			if (!got[i] && m.card == want[i].card &&
			    m.port == want[i].port && want[i].states & ST(m.state)) {
				got[i] = true;
				out[i] = m;
				missing--;
				break;
			}
		}
	}
	return missing;
}

/* toggle card 0's first link (by ioctl or netlink) and watch both ends */
static void toggle_and_watch(struct __test_metadata *_metadata,
			     FIXTURE_DATA(links) *self, bool by_netlink)
{
	struct ld_nl *ev, *req = NULL;
	struct llmdev_link_info l;
	unsigned int p, pc, pp;
	struct ld_nl_msg m[2];
	struct want w[2];
	int ret;

	ASSERT_TRUE(first_link(self, &p, &pc, &pp));
	NEED_NL(ev, true);
	if (by_netlink)
		NEED_NL(req, false);
	ld_nl_drain(ev);

	ret = by_netlink ? ld_nl_link_set(req, 0, p, false) :
			   ld_link_set(self->fds[0], p, 0);
	ASSERT_EQ(0, ret);
	w[0] = (struct want){ 0, p, ST(LLMDEV_LINK_DOWN) };
	w[1] = (struct want){ pc, pp, ST(LLMDEV_LINK_TRAINING) };
	ret = wait_link_events(ev, w, 2, m);
	EXPECT_EQ(0, ret) TH_LOG("LINK_EVENTs missing: llmdev0 port %u down "
				 "and/or llmdev%u port %u training", p, pc, pp);
	if (!ret) {
		ASSERT_EQ(0, ld_link_info(self->fds[0], p, &l));
		check_link_msg(_metadata, self, &m[0], &l);
		EXPECT_EQ(0, m[0].enabled);
		EXPECT_EQ(self->info[pc].serial, m[1].serial);
		EXPECT_EQ(1, m[1].enabled);
		EXPECT_FALSE(m[1].has & LD_NL_HAS_PEER_CARD);
	}

	ld_nl_drain(ev);
	ret = by_netlink ? ld_nl_link_set(req, 0, p, true) :
			   ld_link_set(self->fds[0], p, 1);
	ASSERT_EQ(0, ret);
	w[0] = (struct want){ 0, p, ST(LLMDEV_LINK_UP) };
	w[1] = (struct want){ pc, pp, ST(LLMDEV_LINK_UP) };
	ret = wait_link_events(ev, w, 2, m);
	EXPECT_EQ(0, ret) TH_LOG("LINK_EVENTs missing: llmdev0 port %u and/or "
				 "llmdev%u port %u up", p, pc, pp);
	if (!ret) {
		ASSERT_EQ(0, ld_link_info(self->fds[0], p, &l));
		check_link_msg(_metadata, self, &m[0], &l);
		EXPECT_EQ(self->info[pc].serial, m[0].peer_serial);
		EXPECT_EQ(pp, m[0].peer_port);
		EXPECT_EQ(pc, m[0].peer_card);
		ASSERT_EQ(0, ld_link_info(self->fds[pc], pp, &l));
		check_link_msg(_metadata, self, &m[1], &l);
		EXPECT_EQ(self->info[0].serial, m[1].peer_serial);
		EXPECT_EQ(p, m[1].peer_port);
		EXPECT_EQ(0, m[1].peer_card);
	}
	ld_nl_close(ev);
	ld_nl_close(req);
}

TEST_F(links, netlink_events_ioctl_toggle)
{
	SETUP_OR_SKIP();
	toggle_and_watch(_metadata, self, false);
}

TEST_F(links, netlink_events_netlink_toggle)
{
	SETUP_OR_SKIP();
	toggle_and_watch(_metadata, self, true);
}

/* ---- faults through BAR 0 ------------------------------------------------- */

#define NEED_BAR(card) do {						\
	if (!bar(_metadata, self, card))				\
		SKIP(return, "no BAR 0 access: %s", self->bar[card].why); \
	if (!(ld_rd32(&self->bar[card], LLMDEV_REG_CAPS) & LLMDEV_CAPS_FAULT_INJECT)) \
		SKIP(return, "card has no fault injection");		\
} while (0)

TEST_F(links, error_burst)
{
	const unsigned int burst = 7;
	struct llmdev_link_info a0, b0, a, b;
	unsigned int p, pc, pp, got = 0;
	struct ld_nl_msg m;
	struct ld_nl *ev;
	uint64_t end;
	int ret = 0;

	SETUP_OR_SKIP();
	NEED_BAR(0);
	ASSERT_TRUE(first_link(self, &p, &pc, &pp));
	NEED_NL(ev, true);
	ld_nl_drain(ev);
	ASSERT_EQ(0, ld_link_info(self->fds[0], p, &a0));
	ASSERT_EQ(0, ld_link_info(self->fds[pc], pp, &b0));
	/* the injecting port's frames arrive corrupted: it replays them */
	ld_wr32(&self->bar[0], LLMDEV_LINK_BASE(p) + LLMDEV_LINK_FAULT,
		LLMDEV_LINK_FAULT_ERROR_BURST | burst << 16);

	/* a LINK_ERROR from each end */
	end = ld_now_ns() + 3000 * 1000000ULL;
	while (got != 3 && ld_now_ns() < end) {
		ret = ld_nl_next_event(ev, &m, 3000);
		if (ret)
			break;
		if (m.cmd != LD_NL_LINK_ERROR)
			continue;
		if (m.card == 0 && m.port == p && !(got & 1)) {
			got |= 1;
			EXPECT_EQ(a0.tx_errors + burst, m.tx_errors);
			EXPECT_EQ(self->info[0].serial, m.serial);
		} else if (m.card == pc && m.port == pp && !(got & 2)) {
			got |= 2;
			EXPECT_EQ(b0.rx_errors + burst, m.rx_errors);
			EXPECT_EQ(self->info[pc].serial, m.serial);
		}
	}
	EXPECT_EQ(3, got) TH_LOG("LINK_ERROR missing from %s%s (%s)",
				 got & 1 ? "" : "llmdev0 (the injecting end) ",
				 got & 2 ? "" : "the receiving end", strerror(-ret));
	ASSERT_EQ(0, ld_link_info(self->fds[0], p, &a));
	ASSERT_EQ(0, ld_link_info(self->fds[pc], pp, &b));
	EXPECT_EQ(a0.tx_errors + burst, a.tx_errors)
		TH_LOG("tx_errors (replays) of the injecting port");
	EXPECT_EQ(b0.rx_errors + burst, b.rx_errors)
		TH_LOG("rx_errors (CRC errors) of the far end");
	EXPECT_EQ(a0.rx_errors, a.rx_errors);
	EXPECT_EQ(b0.tx_errors, b.tx_errors);
	/* errors do not take the link down */
	EXPECT_EQ(LLMDEV_LINK_UP, a.state);
	EXPECT_EQ(LLMDEV_LINK_UP, b.state);
	EXPECT_EQ(a0.down_count, a.down_count);
	check_sysfs(_metadata, self, 0, p);
	check_sysfs(_metadata, self, pc, pp);
	/* ERROR_BURST is write-only: nothing stays set */
	EXPECT_EQ(0, ld_rd32(&self->bar[0], LLMDEV_LINK_BASE(p) + LLMDEV_LINK_FAULT) &
		     LLMDEV_LINK_FAULT_ERROR_BURST);
	ld_nl_close(ev);
}

/* FORCE_DOWN: the cable is "pulled" until the bit is cleared. */
TEST_F(links, force_down)
{
	struct llmdev_link_info a0, b0, a, b;
	unsigned int p, pc, pp;
	struct ld_nl_msg m[2];
	struct want w[2];
	struct ld_nl *ev;

	SETUP_OR_SKIP();
	NEED_BAR(0);
	ASSERT_TRUE(first_link(self, &p, &pc, &pp));
	NEED_NL(ev, true);
	ld_nl_drain(ev);
	ASSERT_EQ(0, ld_link_info(self->fds[0], p, &a0));
	ASSERT_EQ(0, ld_link_info(self->fds[pc], pp, &b0));
	ld_wr32(&self->bar[0], LLMDEV_LINK_BASE(p) + LLMDEV_LINK_FAULT,
		LLMDEV_LINK_FAULT_FORCE_DOWN);
	w[0] = (struct want){ 0, p, NOT_UP };
	w[1] = (struct want){ pc, pp, NOT_UP };
	EXPECT_EQ(0, wait_link_events(ev, w, 2, m))
		TH_LOG("LINK_EVENTs missing: llmdev0 port %u, llmdev%u port %u "
		       "leaving up", p, pc, pp);
	ASSERT_EQ(0, ld_link_info(self->fds[0], p, &a));
	ASSERT_EQ(0, ld_link_info(self->fds[pc], pp, &b));
	EXPECT_NE(LLMDEV_LINK_UP, a.state);
	EXPECT_NE(LLMDEV_LINK_UP, b.state);
	/* still enabled by software: it comes back by itself */
	EXPECT_TRUE(a.link_flags & LLMDEV_LINK_ENABLED);
	EXPECT_EQ(a0.down_count + 1, a.down_count);
	EXPECT_EQ(b0.down_count + 1, b.down_count);
	ld_msleep(50);
	ASSERT_EQ(0, ld_link_info(self->fds[0], p, &a));
	EXPECT_NE(LLMDEV_LINK_UP, a.state) TH_LOG("up again while FORCE_DOWN is set");

	ld_nl_drain(ev);
	ld_wr32(&self->bar[0], LLMDEV_LINK_BASE(p) + LLMDEV_LINK_FAULT, 0);
	w[0] = (struct want){ 0, p, ST(LLMDEV_LINK_UP) };
	w[1] = (struct want){ pc, pp, ST(LLMDEV_LINK_UP) };
	EXPECT_EQ(0, wait_link_events(ev, w, 2, m))
		TH_LOG("LINK_EVENTs missing: both ends up again");
	EXPECT_EQ(0, ld_link_wait(self->fds[0], p, LLMDEV_LINK_UP, UP_MS));
	EXPECT_EQ(0, ld_link_wait(self->fds[pc], pp, LLMDEV_LINK_UP, UP_MS));
	ASSERT_EQ(0, ld_link_info(self->fds[0], p, &a));
	EXPECT_EQ(self->info[pc].serial, a.peer_serial);
	ld_nl_close(ev);
}

TEST_HARNESS_MAIN
