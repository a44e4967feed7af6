/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * llmdev: first-fit extent allocation over a sorted list of used extents.
 * Pure logic, no locking and no hardware, so KUnit can test it alone.
 */
#ifndef LLMDEV_ALLOC_H
#define LLMDEV_ALLOC_H

#include <linux/list.h>
#include <linux/types.h>

/**
 * struct llmdev_extent - a used range, kept in a list sorted by offset
 * @node: list link
 * @offset: first byte
 * @length: bytes
 */
struct llmdev_extent {
	struct list_head node;
	u64 offset;
	u64 length;
};

int llmdev_extent_find(struct list_head *used, u64 size, u64 len, u64 align,
		       u64 *offset, struct list_head **prev);
u64 llmdev_extent_largest_free(struct list_head *used, u64 size);

#endif /* LLMDEV_ALLOC_H */
