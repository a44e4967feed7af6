// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: first-fit extent allocation. The gaps between the used extents
 * are the free ones; cards hold tens of regions, so a list walk is cheap
 * and the largest free extent is exact.
 */
#include <linux/errno.h>
#include <linux/minmax.h>

#include "llmdev_alloc.h"
#include "llmdev_compat.h"

/**
 * llmdev_extent_find() - find the first gap that holds an aligned extent
 * @used: used extents, sorted by offset
 * @size: size of the whole space
 * @len: bytes wanted, > 0
 * @align: alignment, a power of two
 * @offset: out: where the extent fits
 * @prev: out: the list position to insert it after
 *
 * Return: 0, or -ENOSPC if no gap is large enough.
 */
int llmdev_extent_find(struct list_head *used, u64 size, u64 len, u64 align,
		       u64 *offset, struct list_head **prev)
{
	struct list_head *before = used;
	struct llmdev_extent *e;
	u64 start = 0, a;

	list_for_each_entry(e, used, node) {
		a = ALIGN(start, align);
		if (a >= start && a <= e->offset && e->offset - a >= len)
			goto found;
		start = e->offset + e->length;
		before = &e->node;
	}
	a = ALIGN(start, align);
	if (a >= start && a <= size && size - a >= len)
		goto found;
	return -ENOSPC;
found:
	*offset = a;
	*prev = before;
	return 0;
}

/**
 * llmdev_extent_largest_free() - the largest gap
 * @used: used extents, sorted by offset
 * @size: size of the whole space
 *
 * Return: bytes in the largest free extent.
 */
u64 llmdev_extent_largest_free(struct list_head *used, u64 size)
{
	struct llmdev_extent *e;
	u64 start = 0, best = 0;

	list_for_each_entry(e, used, node) {
		best = max(best, e->offset - start);
		start = e->offset + e->length;
	}
	return max(best, size - start);
}
