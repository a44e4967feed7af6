// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev driver: who may open a card, and its stable names.
 *
 * The driver makes its nodes root-only; udev/60-llmdev.rules (shipped by
 * llmdev-dkms, applied in the VM by the udevd /init starts) gives them to
 * the group llmdev with mode 0660 and adds /dev/llmdev/by-serial/<serial>
 * and /dev/llmdev/by-path/<pci address>. Checked for every card:
 *  - the node: a character device, root:llmdev, 0660;
 *  - the links lead to the card whose serial and PCI address they name;
 *  - an unprivileged user in the group opens it, also through the links;
 *  - one outside the group gets EACCES, however it names the card;
 *  - root opens it.
 */
#include <limits.h>
#include <stdlib.h>

#include "driver_util.h"
#include "kselftest_harness.h"

FIXTURE(perm) {
	int kmsg;
	int fd;			/* unused; LD_FIXTURE_START sets it */
	unsigned int ncards;
	gid_t gid;		/* of the group llmdev */
};

FIXTURE_SETUP(perm)
{
	int ret;

	LD_FIXTURE_START();
	if (geteuid())
		SKIP(return, "needs root (it becomes other users)");
	ret = llmdev_group_gid(LLMDEV_GROUP, &self->gid);
	ASSERT_EQ(0, ret) TH_LOG("group " LLMDEV_GROUP " in /etc/group: %s", strerror(-ret));
	self->ncards = ld_num_cards();
	ASSERT_LT(0, self->ncards);
}

FIXTURE_TEARDOWN(perm)
{
	LD_EXPECT_NO_KERNEL_REPORTS(self->kmsg);
	if (self->kmsg >= 0)
		close(self->kmsg);
}

/* The card's names: node, by-serial link, by-path link. */
static int card_names(unsigned int card, char node[64], char serial[PATH_MAX],
		      char path[PATH_MAX])
{
	char buf[PATH_MAX], val[64];
	ssize_t n;
	int ret;

	snprintf(node, 64, "/dev/llmdev%u", card);
	ld_sysfs_path(buf, sizeof(buf), card, "serial");
	ret = ld_read_file(buf, val, sizeof(val));
	if (ret < 0)
		return ret;
	val[strcspn(val, "\n")] = 0;
	snprintf(serial, PATH_MAX, "/dev/llmdev/by-serial/%s", val);
	/* the class device's parent: /sys/class/llmdev/llmdevN/device */
	ld_sysfs_path(buf, sizeof(buf), card, "device");
	n = readlink(buf, val, sizeof(val) - 1);
	if (n < 0)
		return -errno;
	val[n] = 0;
	snprintf(path, PATH_MAX, "/dev/llmdev/by-path/%s", strrchr(val, '/') ?
		 strrchr(val, '/') + 1 : val);
	return 0;
}

/* In a child: become @uid (in the card group or not) and open @name. */
static int open_as(uid_t uid, bool card_group, const char *name)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (llmdev_become(uid, card_group))
			_exit(100);
		fd = open(name, O_RDWR | O_CLOEXEC);
		if (fd >= 0)
			_exit(0);
		_exit(errno < 100 ? errno : 99);
	}
	return ld_wait_child(pid);
}

TEST_F(perm, node_mode_and_group)
{
	char node[64];
	struct stat st;
	unsigned int c;

	SETUP_OR_SKIP();
	for (c = 0; c < self->ncards; c++) {
		snprintf(node, sizeof(node), "/dev/llmdev%u", c);
		ASSERT_EQ(0, stat(node, &st)) TH_LOG("%s: %s", node, strerror(errno));
		EXPECT_TRUE(S_ISCHR(st.st_mode)) TH_LOG("%s: not a character device", node);
		EXPECT_EQ(0660, st.st_mode & 07777) TH_LOG("%s: mode %04o", node,
							  st.st_mode & 07777);
		EXPECT_EQ(0, st.st_uid) TH_LOG("%s: owner %u", node, st.st_uid);
		EXPECT_EQ(self->gid, st.st_gid) TH_LOG("%s: group %u, llmdev is %u", node,
						       st.st_gid, self->gid);
	}
}

TEST_F(perm, stable_names)
{
	char node[64], serial[PATH_MAX], path[PATH_MAX];
	char want[PATH_MAX], got[PATH_MAX];
	unsigned int c;

	SETUP_OR_SKIP();
	for (c = 0; c < self->ncards; c++) {
		ASSERT_EQ(0, card_names(c, node, serial, path));
		ASSERT_NE(NULL, realpath(node, want));
		if (realpath(serial, got)) {
			EXPECT_STREQ(want, got) TH_LOG("%s", serial);
		} else {
			EXPECT_EQ(0, errno) TH_LOG("%s: %s", serial, strerror(errno));
		}
		if (realpath(path, got)) {
			EXPECT_STREQ(want, got) TH_LOG("%s", path);
		} else {
			EXPECT_EQ(0, errno) TH_LOG("%s: %s", path, strerror(errno));
		}
	}
}

TEST_F(perm, group_member_opens)
{
	char node[64], serial[PATH_MAX], path[PATH_MAX];
	unsigned int c;

	SETUP_OR_SKIP();
	for (c = 0; c < self->ncards; c++) {
		ASSERT_EQ(0, card_names(c, node, serial, path));
		EXPECT_EQ(0, open_as(LLMDEV_NOBODY, true, node)) TH_LOG("%s", node);
		EXPECT_EQ(0, open_as(LLMDEV_NOBODY, true, serial)) TH_LOG("%s", serial);
		EXPECT_EQ(0, open_as(LLMDEV_NOBODY, true, path)) TH_LOG("%s", path);
	}
}

TEST_F(perm, outsider_denied)
{
	char node[64], serial[PATH_MAX], path[PATH_MAX];
	unsigned int c;

	SETUP_OR_SKIP();
	for (c = 0; c < self->ncards; c++) {
		ASSERT_EQ(0, card_names(c, node, serial, path));
		EXPECT_EQ(EACCES, open_as(LLMDEV_NOBODY, false, node)) TH_LOG("%s", node);
		EXPECT_EQ(EACCES, open_as(LLMDEV_OTHER_UID, false, node)) TH_LOG("%s", node);
		EXPECT_EQ(EACCES, open_as(LLMDEV_NOBODY, false, serial)) TH_LOG("%s", serial);
		EXPECT_EQ(EACCES, open_as(LLMDEV_NOBODY, false, path)) TH_LOG("%s", path);
	}
}

TEST_F(perm, root_opens)
{
	unsigned int c;
	int fd;

	SETUP_OR_SKIP();
	for (c = 0; c < self->ncards; c++) {
		fd = ld_open(c);
		EXPECT_LE(0, fd) TH_LOG("llmdev%u: %s", c, strerror(-fd));
		if (fd >= 0)
			close(fd);
	}
}

TEST_HARNESS_MAIN
