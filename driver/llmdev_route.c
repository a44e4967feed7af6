// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: the shard routing table.
 *
 * Each entry says which layers and which tensor-parallel rank of the model
 * this card serves, from which persistent region, and where activations go
 * next (a link port or the host). A new table is checked as a whole, then
 * written to the card's staging table and committed, which the card does
 * atomically: all entries or none. Routed regions cannot be freed.
 */
#include <linux/capability.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "llmdev_drv.h"

#define LLMDEV_ROUTE_NO_INDEX	(~0U)

static int llmdev_route_check_entry(const struct llmdev_route_entry *e)
{
	if (e->layer_first > e->layer_last ||
	    e->layer_last > LLMDEV_ROUTE_MAX_LAYER)
		return -EINVAL;
	if (!e->tp_size || e->tp_size > 255 || e->tp_rank >= e->tp_size)
		return -EINVAL;
	if (e->next_hop != LLMDEV_HOP_HOST &&
	    e->next_hop >= LLMDEV_NUM_LINK_PORTS)
		return -EINVAL;
	return 0;
}

/* Checks that need nothing but the table. On failure *bad is the entry. */
static int llmdev_route_check_table(const struct llmdev_route_entry *e,
				    u32 n, u32 *bad)
{
	u32 i, j;
	int ret;

	for (i = 0; i < n; i++) {
		ret = llmdev_route_check_entry(&e[i]);
		if (ret) {
			*bad = i;
			return ret;
		}
	}
	for (j = 1; j < n; j++) {
		for (i = 0; i < j; i++) {
			if (e[i].tp_rank == e[j].tp_rank &&
			    e[i].layer_first <= e[j].layer_last &&
			    e[j].layer_first <= e[i].layer_last) {
				*bad = j;
				return -EEXIST;
			}
		}
	}
	return 0;
}

static int llmdev_route_check_links(struct llmdev_device *ldev,
				    const struct llmdev_route_entry *e, u32 n,
				    u32 *bad)
{
	u32 i;

	for (i = 0; i < n; i++) {
		if (e[i].next_hop != LLMDEV_HOP_HOST &&
		    !llmdev_link_is_up(ldev, e[i].next_hop)) {
			*bad = i;
			/* removed: -ENODEV; dead: -EIO (not the link's fault) */
			return llmdev_gone(ldev) ?: -ENOLINK;
		}
	}
	return 0;
}

/* Under the HBM lock: every entry names a live persistent region. */
static int llmdev_route_check_regions(struct llmdev_hbm *hbm,
				      struct llmdev_route_entry *e, u32 n,
				      u32 *bad)
{
	struct llmdev_region *r;
	u32 i;

	lockdep_assert_held(&hbm->lock);
	for (i = 0; i < n; i++) {
		r = xa_load(&hbm->handles, e[i].handle);
		if (!r || r->dying) {
			*bad = i;
			return -ENOENT;
		}
		if (!r->persistent) {
			*bad = i;
			return -EACCES;
		}
		e[i].hbm_offset = r->ext.offset;
		e[i].length = r->ext.length;
	}
	return 0;
}

static void llmdev_route_mark(struct llmdev_hbm *hbm,
			      const struct llmdev_route_entry *e, u32 n,
			      bool routed)
{
	struct llmdev_region *r;
	u32 i;

	for (i = 0; i < n; i++) {
		r = xa_load(&hbm->handles, e[i].handle);
		if (r)
			r->routed = routed;
	}
}

/* Write the table to the card and commit it; the caller may use the card. */
static int llmdev_route_write(struct llmdev_device *ldev,
			      const struct llmdev_route_entry *e, u32 n,
			      u32 *bad)
{
	u32 i, status;

	for (i = 0; i < n; i++) {
		u32 reg = LLMDEV_REG_ROUTE_STAGE + i * LLMDEV_ROUTE_ENTRY_SIZE;

		llmdev_wr32(ldev, reg + LLMDEV_ROUTE_E_LAYERS,
			    e[i].layer_first | e[i].layer_last << 16);
		llmdev_wr32(ldev, reg + LLMDEV_ROUTE_E_TP,
			    e[i].tp_rank | e[i].tp_size << 8 |
			    e[i].next_hop << 16 | LLMDEV_ROUTE_F_VALID << 24);
		llmdev_wr64(ldev, reg + LLMDEV_ROUTE_E_HBM_OFFSET,
			    e[i].hbm_offset);
		llmdev_wr64(ldev, reg + LLMDEV_ROUTE_E_HBM_LENGTH, e[i].length);
		llmdev_wr32(ldev, reg + LLMDEV_ROUTE_E_TAG, e[i].handle);
		llmdev_wr32(ldev, reg + LLMDEV_ROUTE_E_RESERVED, 0);
	}
	llmdev_wr32(ldev, LLMDEV_REG_ROUTE_STAGE_NUM, n);
	llmdev_wr32(ldev, LLMDEV_REG_ROUTE_CTRL, LLMDEV_ROUTE_CTRL_COMMIT);
	status = llmdev_rd32(ldev, LLMDEV_REG_ROUTE_STATUS);
	if (status == ~0u || (!(status & LLMDEV_ROUTE_STATUS_ERROR) &&
			      llmdev_rd32(ldev, LLMDEV_REG_ROUTE_ACTIVE_NUM) != n)) {
		/* gone (all ones), or not what was committed: no entry to blame */
		*bad = LLMDEV_ROUTE_NO_INDEX;
		dev_err(&ldev->dev, "routing table not committed (status %#x)\n",
			status);
		return -EIO;
	}
	if (status & LLMDEV_ROUTE_STATUS_ERROR) {
		*bad = LLMDEV_ROUTE_STATUS_INDEX(status);
		if (*bad >= n)
			*bad = LLMDEV_ROUTE_NO_INDEX;
		dev_err(&ldev->dev, "card refused routing table (status %#x)\n",
			status);
		return -EIO;
	}
	return 0;
}

/*
 * The hardware section encloses the locks: a reset waits for it to end,
 * and takes route_lock itself (llmdev_route_restore()), so nobody may wait
 * for a reset while holding route_lock.
 */
static int llmdev_route_apply(struct llmdev_device *ldev,
			      struct llmdev_route_entry *e, u32 n, u32 *bad)
{
	struct llmdev_hbm *hbm = &ldev->hbm;
	int idx, ret;

	ret = llmdev_route_check_table(e, n, bad);
	if (!ret)
		ret = llmdev_route_check_links(ldev, e, n, bad);
	if (ret)
		return ret;

	ret = llmdev_hw_enter(ldev, &idx);
	if (ret)
		return ret;
	mutex_lock(&ldev->route_lock);
	mutex_lock(&hbm->lock);
	ret = llmdev_route_check_regions(hbm, e, n, bad);
	if (!ret)
		ret = llmdev_route_write(ldev, e, n, bad);
	if (!ret) {
		llmdev_route_mark(hbm, ldev->route, ldev->route_count, false);
		llmdev_route_mark(hbm, e, n, true);
		if (n)
			memcpy(ldev->route, e, n * sizeof(*e));
		ldev->route_count = n;
		ldev->route_gen++;
	}
	mutex_unlock(&hbm->lock);
	mutex_unlock(&ldev->route_lock);
	llmdev_exit(ldev, idx);
	return ret;
}

int llmdev_route_ioctl_set(struct llmdev_ucmd *ucmd)
{
	struct llmdev_device *ldev = ucmd->lf->ldev;
	struct llmdev_route *rt = ucmd->cmd;
	struct llmdev_route_entry *e = NULL;
	u32 i, bad = LLMDEV_ROUTE_NO_INDEX;
	int ret = 0;

	if (!capable(CAP_SYS_ADMIN))
		ret = -EPERM;
	else if (rt->flags || rt->entry_size < LLMDEV_ROUTE_ENTRY_SIZE_VER0)
		ret = -EINVAL;
	else if (rt->count > LLMDEV_ROUTE_MAX)
		ret = -ENOSPC;
	if (!ret && rt->count) {
		e = kcalloc(rt->count, sizeof(*e), GFP_KERNEL);
		if (!e)
			ret = -ENOMEM;
	}
	for (i = 0; !ret && i < rt->count; i++) {
		void __user *src = u64_to_user_ptr(rt->entries +
						   (u64)i * rt->entry_size);

		ret = copy_struct_from_user(&e[i], sizeof(*e), src,
					    rt->entry_size);
		if (ret)
			bad = i;
	}
	if (!ret)
		ret = llmdev_route_apply(ldev, e, rt->count, &bad);
	kfree(e);
	rt->error_index = ret ? bad : LLMDEV_ROUTE_NO_INDEX;
	rt->generation = READ_ONCE(ldev->route_gen);
	/* a rejected table is explained: error_index */
	ucmd->reply_on_error = true;
	return ret;
}

int llmdev_route_ioctl_get(struct llmdev_ucmd *ucmd)
{
	struct llmdev_device *ldev = ucmd->lf->ldev;
	struct llmdev_route *rt = ucmd->cmd;
	struct llmdev_route_entry *e;
	u32 i, n;
	int ret = 0;

	if (rt->flags || rt->entry_size < LLMDEV_ROUTE_ENTRY_SIZE_VER0)
		return -EINVAL;
	e = kcalloc(LLMDEV_ROUTE_MAX, sizeof(*e), GFP_KERNEL);
	if (!e)
		return -ENOMEM;

	mutex_lock(&ldev->route_lock);
	n = ldev->route_count;
	memcpy(e, ldev->route, n * sizeof(*e));
	rt->generation = ldev->route_gen;
	mutex_unlock(&ldev->route_lock);

	for (i = 0; i < min(n, rt->count); i++) {
		void __user *dst = u64_to_user_ptr(rt->entries +
						   (u64)i * rt->entry_size);
		u32 len = min_t(u32, rt->entry_size, sizeof(*e));

		if (copy_to_user(dst, &e[i], len) ||
		    clear_user(dst + len, rt->entry_size - len)) {
			ret = -EFAULT;
			break;
		}
	}
	kfree(e);
	if (ret)
		return ret;
	rt->count = n;
	rt->error_index = LLMDEV_ROUTE_NO_INDEX;
	return 0;
}

/*
 * After a reset: the card's table is empty; write ours again. The card is
 * the caller's alone (it is being reset). Return: 0, or -EIO.
 */
int llmdev_route_restore(struct llmdev_device *ldev)
{
	u32 bad;
	int ret;

	mutex_lock(&ldev->route_lock);
	ret = llmdev_route_write(ldev, ldev->route, ldev->route_count, &bad);
	mutex_unlock(&ldev->route_lock);
	return ret;
}

/* After probe or reset: the card's table is empty, and so is ours. */
void llmdev_route_hw_start(struct llmdev_device *ldev)
{
	mutex_lock(&ldev->route_lock);
	llmdev_wr32(ldev, LLMDEV_REG_ROUTE_STAGE_NUM, 0);
	llmdev_wr32(ldev, LLMDEV_REG_ROUTE_CTRL, LLMDEV_ROUTE_CTRL_COMMIT);
	ldev->route_count = 0;
	mutex_unlock(&ldev->route_lock);
}
