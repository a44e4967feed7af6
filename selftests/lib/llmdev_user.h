/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Unprivileged users for the in-VM tests.
 *
 * Access to the cards is the udev rule's (udev/60-llmdev.rules): the nodes
 * belong to the group llmdev, mode 0660. A test that drops root becomes an
 * unprivileged uid either with that group (a user the rule lets in) or
 * without it (a user it keeps out). The group is looked up in /etc/group
 * by hand: the tests are static binaries, without NSS.
 */
#ifndef LLMDEV_USER_H
#define LLMDEV_USER_H

#include <stdbool.h>
#include <sys/types.h>

#define LLMDEV_GROUP		"llmdev"
#define LLMDEV_NOBODY		65534	/* the usual unprivileged user */
#define LLMDEV_OTHER_UID	65533	/* a second one, for ownership tests */

/*
 * llmdev_group_gid() - the gid of group @name in /etc/group
 * Return: 0 with *@gid set, -ENOENT if there is no such group, or another
 * negative errno if /etc/group cannot be read.
 */
int llmdev_group_gid(const char *name, gid_t *gid);

/*
 * llmdev_become() - drop root for good: become @uid with primary group
 * @uid (as for nobody), and as the only supplementary group the card
 * group if @card_group
 * Return: 0 or a negative errno (-ENOENT: @card_group but no group
 * llmdev in /etc/group).
 */
int llmdev_become(uid_t uid, bool card_group);

/*
 * llmdev_udev_settle() - wait until udevd has handled every event so far
 * (after the driver is loaded: the rule's group and mode are then on the
 * nodes); nothing to wait for without udevd
 * Return: 0, or the nonzero status of udevadm settle.
 */
int llmdev_udev_settle(void);

#endif /* LLMDEV_USER_H */
