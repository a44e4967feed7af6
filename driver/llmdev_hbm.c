// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: HBM regions: allocation, ownership, mmap, scrub on free.
 *
 * Placement is first fit (llmdev_alloc.c) over the regions' extents.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/mm.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "llmdev_drv.h"

void llmdev_hbm_init(struct llmdev_hbm *hbm, u64 size)
{
	mutex_init(&hbm->lock);
	INIT_LIST_HEAD(&hbm->regions);
	xa_init_flags(&hbm->handles, XA_FLAGS_ALLOC1);
	init_waitqueue_head(&hbm->idle);
	hbm->size = size;
	hbm->used = 0;
}

static void llmdev_region_destroy(struct llmdev_region *r)
{
	put_pid(r->pid);
	kfree(r);
}

/* Only at the final put of the device: nobody else can see the regions. */
void llmdev_hbm_fini(struct llmdev_device *ldev)
{
	struct llmdev_region *r, *tmp;

	list_for_each_entry_safe(r, tmp, &ldev->hbm.regions, ext.node)
		llmdev_region_destroy(r);
	INIT_LIST_HEAD(&ldev->hbm.regions);
	xa_destroy(&ldev->hbm.handles);
}

static u64 llmdev_hbm_largest_free_locked(struct llmdev_hbm *hbm)
{
	return llmdev_extent_largest_free(&hbm->regions, hbm->size);
}

u64 llmdev_hbm_largest_free(struct llmdev_hbm *hbm)
{
	u64 ret;

	mutex_lock(&hbm->lock);
	ret = llmdev_hbm_largest_free_locked(hbm);
	mutex_unlock(&hbm->lock);
	return ret;
}

u64 llmdev_hbm_used(struct llmdev_hbm *hbm)
{
	return READ_ONCE(hbm->used);
}

/* May the caller, through @lf, use (DMA, mmap, free) region @r? */
static int llmdev_region_access(struct llmdev_file *lf, struct llmdev_region *r)
{
	if (r->owner == lf)
		return 0;
	if (r->persistent &&
	    (uid_eq(r->uid, current_uid()) || capable(CAP_SYS_ADMIN)))
		return 0;
	return -EPERM;
}

static struct llmdev_region *llmdev_find_persistent(struct llmdev_hbm *hbm,
						    const char *name)
{
	struct llmdev_region *r;

	list_for_each_entry(r, &hbm->regions, ext.node)
		if (r->persistent && !r->dying && !strcmp(r->name, name))
			return r;
	return NULL;
}

static bool llmdev_name_ok(const char *name)
{
	return strnlen(name, LLMDEV_NAME_LEN) < LLMDEV_NAME_LEN;
}

int llmdev_hbm_ioctl_alloc(struct llmdev_file *lf, void __user *arg)
{
	struct llmdev_hbm *hbm = &lf->ldev->hbm;
	struct llmdev_hbm_alloc a;
	struct llmdev_region *r;
	struct list_head *prev;
	u64 len, align, offset;
	int ret;

	ret = llmdev_copy_from_user(&a, sizeof(a), sizeof(a), arg);
	if (ret)
		return ret;
	if ((a.flags & ~LLMDEV_HBM_PERSISTENT) || a.__reserved || !a.length ||
	    (a.align & (a.align - 1)) || !llmdev_name_ok(a.name) ||
	    ((a.flags & LLMDEV_HBM_PERSISTENT) && !a.name[0]))
		return -EINVAL;
	align = max_t(u64, a.align, LLMDEV_HBM_GRANULE);

	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	r->owner = lf;
	r->uid = current_uid();
	r->pid = get_task_pid(current, PIDTYPE_TGID);
	r->persistent = a.flags & LLMDEV_HBM_PERSISTENT;
	strscpy(r->name, a.name, sizeof(r->name));

	mutex_lock(&hbm->lock);
	if (r->persistent && llmdev_find_persistent(hbm, r->name)) {
		ret = -EEXIST;
		goto err_unlock;
	}
	ret = -ENOSPC;
	if (a.length > hbm->size)
		goto err_nospc;
	len = ALIGN(a.length, LLMDEV_HBM_GRANULE);
	ret = llmdev_extent_find(&hbm->regions, hbm->size, len, align, &offset,
				 &prev);
	if (ret)
		goto err_nospc;
	ret = xa_alloc(&hbm->handles, &r->handle, r, xa_limit_31b, GFP_KERNEL);
	if (ret)
		goto err_unlock;
	r->ext.offset = offset;
	r->ext.length = len;
	list_add(&r->ext.node, prev);
	WRITE_ONCE(hbm->used, hbm->used + len);
	a.largest_free = llmdev_hbm_largest_free_locked(hbm);
	mutex_unlock(&hbm->lock);

	a.handle = r->handle;
	a.hbm_offset = offset;
	a.mmap_offset = offset;
	if (copy_to_user(arg, &a, min_t(u32, a.size, sizeof(a)))) {
		/* the caller never learnt the handle: undo */
		llmdev_hbm_release_region(lf->ldev, r);
		return -EFAULT;
	}
	return 0;

err_nospc:
	a.largest_free = llmdev_hbm_largest_free_locked(hbm);
	mutex_unlock(&hbm->lock);
	llmdev_region_destroy(r);
	if (ret == -ENOSPC &&
	    copy_to_user(arg, &a, min_t(u32, a.size, sizeof(a))))
		return -EFAULT;
	return ret;
err_unlock:
	mutex_unlock(&hbm->lock);
	llmdev_region_destroy(r);
	return ret;
}

/*
 * Take a region out of use and give its HBM back: wait for transfers on
 * it, zap user mappings, scrub, unlink. The caller has set r->dying under
 * the lock, so nobody can start using it again.
 */
void llmdev_hbm_release_region(struct llmdev_device *ldev,
			       struct llmdev_region *r)
{
	struct llmdev_hbm *hbm = &ldev->hbm;
	int ret;

	mutex_lock(&hbm->lock);
	r->dying = true;
	xa_erase(&hbm->handles, r->handle);
	mutex_unlock(&hbm->lock);

	wait_event(hbm->idle, !READ_ONCE(r->busy));
	if (ldev->mapping)
		unmap_mapping_range(ldev->mapping, r->ext.offset, r->ext.length, 1);

	ret = llmdev_scrub(ldev, r->ext.offset, r->ext.length);
	if (ret && ret != -ENODEV) {
		/* never hand out HBM that may hold the old tenant's data */
		dev_warn(&ldev->dev, "quarantining HBM [%#llx, +%#llx)\n",
			 r->ext.offset, r->ext.length);
		return;
	}

	mutex_lock(&hbm->lock);
	list_del(&r->ext.node);
	WRITE_ONCE(hbm->used, hbm->used - r->ext.length);
	mutex_unlock(&hbm->lock);
	llmdev_region_destroy(r);
}

int llmdev_hbm_ioctl_free(struct llmdev_file *lf, void __user *arg)
{
	struct llmdev_hbm *hbm = &lf->ldev->hbm;
	struct llmdev_hbm_free f;
	struct llmdev_region *r;
	int ret;

	ret = llmdev_copy_from_user(&f, sizeof(f), sizeof(f), arg);
	if (ret)
		return ret;
	if (f.flags || f.__reserved)
		return -EINVAL;

	mutex_lock(&hbm->lock);
	r = xa_load(&hbm->handles, f.handle);
	if (!r || r->dying) {
		ret = -ENOENT;
	} else {
		ret = llmdev_region_access(lf, r);
		if (!ret && r->routed)
			ret = -EBUSY;
		if (!ret)
			r->dying = true;
	}
	mutex_unlock(&hbm->lock);
	if (ret)
		return ret;
	llmdev_hbm_release_region(lf->ldev, r);
	return 0;
}

static void llmdev_region_to_user(struct llmdev_file *lf,
				  struct llmdev_region *r,
				  struct llmdev_hbm_region *e)
{
	memset(e, 0, sizeof(*e));
	e->handle = r->handle;
	e->flags = (r->persistent ? LLMDEV_REGION_PERSISTENT : 0) |
		   (r->owner == lf ? LLMDEV_REGION_MINE : 0);
	e->hbm_offset = r->ext.offset;
	e->length = r->ext.length;
	e->owner_uid = from_kuid_munged(current_user_ns(), r->uid);
	e->owner_pid = pid_vnr(r->pid);
	strscpy(e->name, r->name, sizeof(e->name));
}

static bool llmdev_region_visible(struct llmdev_file *lf,
				  struct llmdev_region *r)
{
	return !r->dying && (r->persistent || r->owner == lf);
}

int llmdev_hbm_ioctl_list(struct llmdev_file *lf, void __user *arg)
{
	struct llmdev_hbm *hbm = &lf->ldev->hbm;
	struct llmdev_hbm_region *buf = NULL;
	struct llmdev_hbm_list l;
	struct llmdev_region *r;
	u32 n = 0, cap, i;
	int ret;

	ret = llmdev_copy_from_user(&l, sizeof(l), sizeof(l), arg);
	if (ret)
		return ret;
	if (l.flags || l.entry_size < sizeof(struct llmdev_hbm_region))
		return -EINVAL;

	mutex_lock(&hbm->lock);
	list_for_each_entry(r, &hbm->regions, ext.node)
		n += llmdev_region_visible(lf, r);
	cap = min(n, l.count);
	if (cap) {
		buf = kvcalloc(cap, sizeof(*buf), GFP_KERNEL);
		if (!buf) {
			mutex_unlock(&hbm->lock);
			return -ENOMEM;
		}
	}
	i = 0;
	list_for_each_entry(r, &hbm->regions, ext.node)
		if (i < cap && llmdev_region_visible(lf, r))
			llmdev_region_to_user(lf, r, &buf[i++]);
	mutex_unlock(&hbm->lock);

	for (i = 0; i < cap; i++) {
		void __user *dst = u64_to_user_ptr(l.regions + (u64)i * l.entry_size);

		if (copy_to_user(dst, &buf[i], sizeof(*buf)) ||
		    clear_user(dst + sizeof(*buf), l.entry_size - sizeof(*buf))) {
			ret = -EFAULT;
			break;
		}
	}
	kvfree(buf);
	if (ret)
		return ret;
	l.count = n;
	return copy_to_user(arg, &l, min_t(u32, l.size, sizeof(l))) ? -EFAULT : 0;
}

int llmdev_hbm_ioctl_open(struct llmdev_file *lf, void __user *arg)
{
	struct llmdev_hbm *hbm = &lf->ldev->hbm;
	struct llmdev_hbm_open o;
	struct llmdev_region *r;
	int ret;

	ret = llmdev_copy_from_user(&o, sizeof(o), sizeof(o), arg);
	if (ret)
		return ret;
	if (o.flags || o.__reserved || !llmdev_name_ok(o.name) || !o.name[0])
		return -EINVAL;

	mutex_lock(&hbm->lock);
	r = llmdev_find_persistent(hbm, o.name);
	ret = r ? llmdev_region_access(lf, r) : -ENOENT;
	if (!ret) {
		o.handle = r->handle;
		o.length = r->ext.length;
		o.mmap_offset = r->ext.offset;
	}
	mutex_unlock(&hbm->lock);
	if (ret)
		return ret;
	return copy_to_user(arg, &o, min_t(u32, o.size, sizeof(o))) ? -EFAULT : 0;
}

/**
 * llmdev_region_get() - look up a region for a transfer and mark it busy
 * @lf: the caller's file
 * @handle: region handle
 * @offset: byte offset in the region
 * @length: bytes
 *
 * Return: the region, or ERR_PTR(-ENOENT) no such region, -EPERM not the
 * caller's, -EINVAL the range does not fit in it.
 */
struct llmdev_region *llmdev_region_get(struct llmdev_file *lf, u32 handle,
					u64 offset, u64 length)
{
	struct llmdev_hbm *hbm = &lf->ldev->hbm;
	struct llmdev_region *r;
	int ret;

	mutex_lock(&hbm->lock);
	r = xa_load(&hbm->handles, handle);
	if (!r || r->dying)
		ret = -ENOENT;
	else
		ret = llmdev_region_access(lf, r);
	if (!ret && (offset > r->ext.length || length > r->ext.length - offset))
		ret = -EINVAL;
	if (!ret)
		r->busy++;
	mutex_unlock(&hbm->lock);
	return ret ? ERR_PTR(ret) : r;
}

void llmdev_region_put(struct llmdev_device *ldev, struct llmdev_region *r)
{
	struct llmdev_hbm *hbm = &ldev->hbm;
	bool idle;

	mutex_lock(&hbm->lock);
	idle = !--r->busy;
	mutex_unlock(&hbm->lock);
	if (idle)
		wake_up_all(&hbm->idle);
}

int llmdev_hbm_mmap(struct llmdev_file *lf, struct vm_area_struct *vma)
{
	struct llmdev_device *ldev = lf->ldev;
	struct llmdev_hbm *hbm = &ldev->hbm;
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 len = vma->vm_end - vma->vm_start;
	struct llmdev_region *r;
	int idx, ret = -EINVAL;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (!llmdev_enter(ldev, &idx))
		return -ENODEV;
	mutex_lock(&hbm->lock);
	list_for_each_entry(r, &hbm->regions, ext.node) {
		if (r->dying || off < r->ext.offset || off - r->ext.offset > r->ext.length ||
		    len > r->ext.length - (off - r->ext.offset))
			continue;
		ret = llmdev_region_access(lf, r);
		if (ret)
			ret = -EACCES;
		break;
	}
	if (!ret) {
		vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
		vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);
		ret = io_remap_pfn_range(vma, vma->vm_start,
					 (ldev->hbm_phys + off) >> PAGE_SHIFT,
					 len, vma->vm_page_prot);
	}
	mutex_unlock(&hbm->lock);
	llmdev_exit(ldev, idx);
	return ret;
}

/* The file is closing: free its regions, hand persistent ones to nobody. */
void llmdev_hbm_release_file(struct llmdev_file *lf)
{
	struct llmdev_device *ldev = lf->ldev;
	struct llmdev_hbm *hbm = &ldev->hbm;
	struct llmdev_region *r;

	for (;;) {
		struct llmdev_region *victim = NULL;

		mutex_lock(&hbm->lock);
		list_for_each_entry(r, &hbm->regions, ext.node) {
			if (r->owner != lf)
				continue;
			r->owner = NULL;
			if (!r->persistent && !r->dying) {
				r->dying = true;
				victim = r;
				break;
			}
		}
		mutex_unlock(&hbm->lock);
		if (!victim)
			break;
		llmdev_hbm_release_region(ldev, victim);
	}
}
