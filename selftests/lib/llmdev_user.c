// SPDX-License-Identifier: GPL-2.0
/*
 * Unprivileged users for the in-VM tests: see llmdev_user.h.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llmdev_user.h"

int llmdev_group_gid(const char *name, gid_t *gid)
{
	size_t len = strlen(name);
	char line[1024], *p, *end;
	int ret = -ENOENT;
	unsigned long v;
	FILE *f;

	f = fopen("/etc/group", "re");
	if (!f)
		return -errno;
	/* name:password:gid:members */
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, len) || line[len] != ':')
			continue;
		p = strchr(line + len + 1, ':');
		if (!p)
			continue;
		errno = 0;
		v = strtoul(p + 1, &end, 10);
		if (errno || end == p + 1 || *end != ':' || v > (gid_t)-2)
			continue;
		*gid = (gid_t)v;
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

int llmdev_udev_settle(void)
{
	if (access("/run/udev/control", F_OK))
		return 0;
	return system("udevadm settle --timeout=30");
}

int llmdev_become(uid_t uid, bool card_group)
{
	gid_t g;
	int ret;

	if (card_group) {
		ret = llmdev_group_gid(LLMDEV_GROUP, &g);
		if (ret)
			return ret;
		if (setgroups(1, &g))
			return -errno;
	} else if (setgroups(0, NULL)) {
		return -errno;
	}
	if (setgid((gid_t)uid) || setuid(uid))
		return -errno;
	return 0;
}
