/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the KV pool's in-VM tests (kv_pool.c, kv_unplug.c) share: block
 * patterns, a model of the pool's contents to check against, a disk-tier
 * file system (ext2 on a loop device: the guest's tmpfs refuses O_DIRECT),
 * and the driver tests' helpers (driver_util.h: kernel log, BAR 0 fault
 * injection).
 */
#ifndef KV_UTIL_H
#define KV_UTIL_H

#include <sys/mount.h>

#include "driver_util.h"	/* uapi + helpers */
#include "../../lib/llmdev.h"	/* libllmdev, the KV pool */

#define KV_MNT		"/tmp/kv-mnt"
#define KV_IMG		"/tmp/kv-fs.img"

/* block (seq, index) generation @gen: its bytes */
static inline void kv_pattern(uint8_t *p, uint64_t len, uint64_t seq,
				 uint32_t index, uint32_t gen)
{
	uint64_t x = seq * 1000003 + index * 7919 + gen * 104729 + 1, i;

	for (i = 0; i + 8 <= len; i += 8) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		memcpy(p + i, &x, 8);
	}
}

static inline int kv_sh(const char *cmd)
{
	int st = system(cmd);

	return st == 0 ? 0 : -1;
}

/*
 * An ext2 file system of @mib MiB on a loop device at KV_MNT. Return: 0, or
 * -1 with @why set (no loop device, no ext2 in the kernel, no mke2fs).
 */
static inline int kv_fs_setup(unsigned int mib, char *why, size_t len)
{
	char cmd[512];

	umount(KV_MNT);
	snprintf(cmd, sizeof(cmd),
		 "set -e; rm -f " KV_IMG "; mkdir -p " KV_MNT "; "
		 "dd if=/dev/zero of=" KV_IMG " bs=1M count=0 seek=%u 2>/dev/null; "
		 "dev=$(losetup -f); losetup $dev " KV_IMG "; "
		 "mke2fs -q -m 0 $dev >/dev/null 2>&1 || mke2fs -m 0 $dev >/dev/null; "
		 "mount -t ext2 $dev " KV_MNT, mib);
	if (kv_sh(cmd)) {
		snprintf(why, len, "no ext2 on a loop device here (loop, ext4 modules, mke2fs?)");
		return -1;
	}
	return 0;
}

static inline void kv_fs_teardown(void)
{
	kv_sh("dev=$(awk '$2 == \"" KV_MNT "\" { print $1 }' /proc/mounts); "
	      "umount " KV_MNT " 2>/dev/null; [ -n \"$dev\" ] && losetup -d $dev; "
	      "rm -f " KV_IMG);
}

/* Stall (or release) every ring of one direction of card @card. */
static inline int kv_stall(unsigned int card, bool to_card, bool on)
{
	struct ld_bar0 bar;
	uint32_t bits = 0;
	unsigned int r;

	if (ld_bar0_map(card, &bar))
		return -1;
	for (r = 0; r < (to_card ? LLMDEV_NUM_H2C_RINGS :
			 LLMDEV_NUM_RINGS - LLMDEV_NUM_H2C_RINGS); r++)
		bits |= LLMDEV_FAULT_STALL_RING(ld_hw_ring(to_card, r));
	ld_wr32(&bar, LLMDEV_REG_FAULT_INJECT,
		on ? ld_rd32(&bar, LLMDEV_REG_FAULT_INJECT) | bits :
		     ld_rd32(&bar, LLMDEV_REG_FAULT_INJECT) & ~bits);
	ld_bar0_unmap(&bar);
	return 0;
}

#endif /* KV_UTIL_H */
