// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: HBM regions: allocation, ownership, mmap, scrub on free.
 *
 * Placement is first fit (llmdev_alloc.c) over the regions' extents.
 *
 * A region is reachable by its handle only once its creator has learnt the
 * handle (LLMDEV_HBM_ALLOC's reply was written), and stops being reachable
 * the moment it starts dying. Its struct lives on while user mappings
 * point at it (they fault to SIGBUS then); its HBM is given back after
 * the transfers on it have finished, every mapping of it is zapped and the
 * card has scrubbed it. HBM whose scrub failed is kept out of use
 * (quarantined) until a later scrub succeeds, after the next reset.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/user_namespace.h>

#include "llmdev_drv.h"

/* pages a fault maps at once, around the one that faulted */
#define LLMDEV_FAULT_AROUND	16

void llmdev_hbm_init(struct llmdev_hbm *hbm)
{
	mutex_init(&hbm->lock);
	INIT_LIST_HEAD(&hbm->regions);
	xa_init_flags(&hbm->handles, XA_FLAGS_ALLOC1);
	init_waitqueue_head(&hbm->idle);
}

static void llmdev_region_release(struct kref *ref)
{
	struct llmdev_region *r = container_of(ref, struct llmdev_region, ref);

	put_pid(r->pid);
	put_user_ns(r->user_ns);
	kfree(r);
}

static void llmdev_region_unref(struct llmdev_region *r)
{
	kref_put(&r->ref, llmdev_region_release);
}

/* Only at the final put of the device: nobody else can see the regions. */
void llmdev_hbm_fini(struct llmdev_device *ldev)
{
	struct llmdev_region *r, *tmp;

	list_for_each_entry_safe(r, tmp, &ldev->hbm.regions, ext.node) {
		list_del(&r->ext.node);
		llmdev_region_unref(r);
	}
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

/*
 * May the caller, through @lf, use (open, DMA, mmap, free) region @r?
 *
 * Through the file that made it, always. A persistent region also by the
 * creator's effective uid (as for files, and as capable() looks) in the
 * creator's user namespace, unless its creator had CAP_SYS_ADMIN: a uid
 * alone does not tell the host's root from a container's uid 0 that has
 * no user namespace of its own. And by CAP_SYS_ADMIN, always.
 */
static int llmdev_region_access(struct llmdev_file *lf, struct llmdev_region *r)
{
	if (r->owner == lf)
		return 0;
	if (!r->persistent)
		return -EPERM;
	if (!r->admin && uid_eq(r->uid, current_euid()) &&
	    r->user_ns == current_user_ns())
		return 0;
	return capable(CAP_SYS_ADMIN) ? 0 : -EPERM;
}

/* A live persistent region of that name; @pending ones count too if asked. */
static struct llmdev_region *llmdev_find_persistent(struct llmdev_hbm *hbm,
						    const char *name,
						    bool pending)
{
	struct llmdev_region *r;

	list_for_each_entry(r, &hbm->regions, ext.node)
		if (r->persistent && !r->dying && (pending || !r->pending) &&
		    !strcmp(r->name, name))
			return r;
	return NULL;
}

static bool llmdev_name_ok(const char *name)
{
	return strnlen(name, LLMDEV_NAME_LEN) < LLMDEV_NAME_LEN;
}

/* The reply is written: the region becomes reachable by its handle. */
static void llmdev_hbm_alloc_commit(struct llmdev_ucmd *ucmd)
{
	struct llmdev_hbm *hbm = &ucmd->lf->ldev->hbm;
	struct llmdev_region *r = ucmd->obj;

	mutex_lock(&hbm->lock);
	/* the slot is reserved: storing into it allocates nothing */
	WARN_ON(xa_is_err(xa_store(&hbm->handles, r->handle, r, GFP_KERNEL)));
	r->pending = false;
	mutex_unlock(&hbm->lock);
}

/*
 * The caller never learnt the handle: take the region back. Nobody else
 * could reach it, and its HBM was scrubbed when it was last freed.
 */
static void llmdev_hbm_alloc_abort(struct llmdev_ucmd *ucmd)
{
	struct llmdev_hbm *hbm = &ucmd->lf->ldev->hbm;
	struct llmdev_region *r = ucmd->obj;

	mutex_lock(&hbm->lock);
	xa_erase(&hbm->handles, r->handle);
	list_del(&r->ext.node);
	WRITE_ONCE(hbm->used, hbm->used - r->ext.length);
	mutex_unlock(&hbm->lock);
	llmdev_region_unref(r);
}

int llmdev_hbm_ioctl_alloc(struct llmdev_ucmd *ucmd)
{
	struct llmdev_device *ldev = ucmd->lf->ldev;
	struct llmdev_hbm_alloc *a = ucmd->cmd;
	struct llmdev_hbm *hbm = &ldev->hbm;
	struct llmdev_region *r;
	struct list_head *prev;
	u64 len, align, offset;
	int ret;

	if ((a->flags & ~LLMDEV_HBM_PERSISTENT) || a->__reserved ||
	    !a->length || (a->align & (a->align - 1)) ||
	    !llmdev_name_ok(a->name) ||
	    ((a->flags & LLMDEV_HBM_PERSISTENT) && !a->name[0]))
		return -EINVAL;
	align = max_t(u64, a->align, LLMDEV_HBM_GRANULE);

	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	kref_init(&r->ref);
	r->ldev = ldev;
	r->owner = ucmd->lf;
	r->uid = current_euid();
	r->user_ns = get_user_ns(current_user_ns());
	r->pid = get_task_pid(current, PIDTYPE_TGID);
	/* asked without an audit record: not having it is no failure */
	r->admin = ns_capable_noaudit(&init_user_ns, CAP_SYS_ADMIN);
	r->persistent = a->flags & LLMDEV_HBM_PERSISTENT;
	r->pending = true;
	strscpy(r->name, a->name, sizeof(r->name));

	mutex_lock(&hbm->lock);
	if (r->persistent && llmdev_find_persistent(hbm, r->name, true)) {
		ret = -EEXIST;
		goto err_unlock;
	}
	ret = -ENOSPC;
	if (a->length > hbm->size)
		goto err_nospc;
	len = ALIGN(a->length, LLMDEV_HBM_GRANULE);
	ret = llmdev_extent_find(&hbm->regions, hbm->size, len, align, &offset,
				 &prev);
	if (ret)
		goto err_nospc;
	/* reserve a handle; it leads nowhere until the commit */
	ret = xa_alloc(&hbm->handles, &r->handle, NULL, xa_limit_31b,
		       GFP_KERNEL);
	if (ret)
		goto err_unlock;
	r->ext.offset = offset;
	r->ext.length = len;
	list_add(&r->ext.node, prev);
	WRITE_ONCE(hbm->used, hbm->used + len);
	a->largest_free = llmdev_hbm_largest_free_locked(hbm);
	mutex_unlock(&hbm->lock);

	a->handle = r->handle;
	a->hbm_offset = offset;
	a->mmap_offset = offset;
	ucmd->obj = r;
	ucmd->commit = llmdev_hbm_alloc_commit;
	ucmd->abort = llmdev_hbm_alloc_abort;
	return 0;

err_nospc:
	/* the caller learns how much it could have had */
	a->largest_free = llmdev_hbm_largest_free_locked(hbm);
	if (ret == -ENOSPC)
		ucmd->reply_on_error = true;
err_unlock:
	mutex_unlock(&hbm->lock);
	llmdev_region_unref(r);
	return ret;
}

/* Give a region's HBM back. Called with the lock held. */
static void llmdev_hbm_unlink(struct llmdev_hbm *hbm, struct llmdev_region *r)
{
	lockdep_assert_held(&hbm->lock);
	list_del(&r->ext.node);
	WRITE_ONCE(hbm->used, hbm->used - r->ext.length);
}

/*
 * Take a region out of use and give its HBM back: wait for transfers on
 * it, zap user mappings, scrub, unlink. The caller has set r->dying under
 * the lock, so nobody can start using it again.
 */
static void llmdev_hbm_release_region(struct llmdev_device *ldev,
				      struct llmdev_region *r)
{
	struct llmdev_hbm *hbm = &ldev->hbm;
	int ret;

	mutex_lock(&hbm->lock);
	xa_erase(&hbm->handles, r->handle);
	mutex_unlock(&hbm->lock);

	wait_event(hbm->idle, !READ_ONCE(r->busy));
	/* faults see r->dying from now on: SIGBUS */
	llmdev_zap_mappings(ldev, r->ext.offset, r->ext.length);

	ret = llmdev_scrub(ldev, r->ext.offset, r->ext.length);
	mutex_lock(&hbm->lock);
	if (ret && ret != -ENODEV) {
		/* never hand out HBM that may hold the old tenant's data */
		dev_warn(&ldev->dev, "quarantining HBM [%#llx, +%#llx) until a scrub succeeds\n",
			 r->ext.offset, r->ext.length);
		r->quarantined = true;
		mutex_unlock(&hbm->lock);
		return;
	}
	llmdev_hbm_unlink(hbm, r);
	mutex_unlock(&hbm->lock);
	llmdev_region_unref(r);
}

/**
 * llmdev_hbm_rescrub() - try again to scrub quarantined HBM
 * @ldev: the card, after a reset that brought it back
 */
void llmdev_hbm_rescrub(struct llmdev_device *ldev)
{
	struct llmdev_hbm *hbm = &ldev->hbm;
	struct llmdev_region *r, *victim;

	for (;;) {
		victim = NULL;
		mutex_lock(&hbm->lock);
		list_for_each_entry(r, &hbm->regions, ext.node) {
			if (r->quarantined) {
				victim = r;
				break;
			}
		}
		mutex_unlock(&hbm->lock);
		if (!victim)
			return;
		if (llmdev_scrub(ldev, victim->ext.offset, victim->ext.length))
			return;		/* still broken: leave the rest too */
		mutex_lock(&hbm->lock);
		llmdev_hbm_unlink(hbm, victim);
		mutex_unlock(&hbm->lock);
		dev_info(&ldev->dev, "HBM [%#llx, +%#llx) scrubbed, back in use\n",
			 victim->ext.offset, victim->ext.length);
		llmdev_region_unref(victim);
	}
}

int llmdev_hbm_ioctl_free(struct llmdev_ucmd *ucmd)
{
	struct llmdev_device *ldev = ucmd->lf->ldev;
	struct llmdev_hbm_free *f = ucmd->cmd;
	struct llmdev_hbm *hbm = &ldev->hbm;
	struct llmdev_region *r;
	int ret;

	if (f->flags || f->__reserved)
		return -EINVAL;

	mutex_lock(&hbm->lock);
	r = xa_load(&hbm->handles, f->handle);
	if (!r || r->dying) {
		ret = -ENOENT;
	} else {
		ret = llmdev_region_access(ucmd->lf, r);
		if (!ret && r->routed)
			ret = -EBUSY;
		if (!ret)
			r->dying = true;
	}
	mutex_unlock(&hbm->lock);
	if (ret)
		return ret;
	llmdev_hbm_release_region(ldev, r);
	return 0;
}

static void llmdev_region_to_user(struct llmdev_file *lf,
				  struct llmdev_region *r,
				  struct llmdev_hbm_region *e)
{
	memset(e, 0, sizeof(*e));
	e->handle = r->handle;
	e->flags = (r->persistent ? LLMDEV_REGION_PERSISTENT : 0) |
		   (r->owner == lf ? LLMDEV_REGION_MINE : 0) |
		   (r->admin ? 0 : LLMDEV_REGION_UNPRIVILEGED);
	e->hbm_offset = r->ext.offset;
	e->length = r->ext.length;
	e->owner_uid = from_kuid_munged(current_user_ns(), r->uid);
	e->owner_pid = pid_vnr(r->pid);
	strscpy(e->name, r->name, sizeof(e->name));
}

static bool llmdev_region_visible(struct llmdev_file *lf,
				  struct llmdev_region *r)
{
	return !r->dying && !r->pending && (r->persistent || r->owner == lf);
}

int llmdev_hbm_ioctl_list(struct llmdev_ucmd *ucmd)
{
	struct llmdev_hbm *hbm = &ucmd->lf->ldev->hbm;
	struct llmdev_hbm_list *l = ucmd->cmd;
	struct llmdev_hbm_region *buf = NULL;
	struct llmdev_region *r;
	u32 n = 0, cap, i;

	if (l->flags || l->entry_size < LLMDEV_HBM_REGION_SIZE_VER0)
		return -EINVAL;

	mutex_lock(&hbm->lock);
	list_for_each_entry(r, &hbm->regions, ext.node)
		n += llmdev_region_visible(ucmd->lf, r);
	cap = min(n, l->count);
	if (cap) {
		buf = kvcalloc(cap, sizeof(*buf), GFP_KERNEL);
		if (!buf) {
			mutex_unlock(&hbm->lock);
			return -ENOMEM;
		}
	}
	i = 0;
	list_for_each_entry(r, &hbm->regions, ext.node)
		if (i < cap && llmdev_region_visible(ucmd->lf, r))
			llmdev_region_to_user(ucmd->lf, r, &buf[i++]);
	mutex_unlock(&hbm->lock);

	for (i = 0; i < cap; i++) {
		void __user *dst = u64_to_user_ptr(l->regions +
						   (u64)i * l->entry_size);
		u32 len = min_t(u32, l->entry_size, sizeof(*buf));

		if (copy_to_user(dst, &buf[i], len) ||
		    clear_user(dst + len, l->entry_size - len)) {
			kvfree(buf);
			return -EFAULT;
		}
	}
	kvfree(buf);
	l->count = n;
	return 0;
}

int llmdev_hbm_ioctl_open(struct llmdev_ucmd *ucmd)
{
	struct llmdev_hbm *hbm = &ucmd->lf->ldev->hbm;
	struct llmdev_hbm_open *o = ucmd->cmd;
	struct llmdev_region *r;
	int ret;

	if (o->flags || o->__reserved || !llmdev_name_ok(o->name) ||
	    !o->name[0])
		return -EINVAL;

	mutex_lock(&hbm->lock);
	r = llmdev_find_persistent(hbm, o->name, false);
	ret = r ? llmdev_region_access(ucmd->lf, r) : -ENOENT;
	if (!ret) {
		o->handle = r->handle;
		o->length = r->ext.length;
		o->mmap_offset = r->ext.offset;
	}
	mutex_unlock(&hbm->lock);
	return ret;
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
	/* every transfer ends here: skip the queue's lock when nobody waits */
	if (idle && wq_has_sleeper(&hbm->idle))
		wake_up_all(&hbm->idle);
}

/* ---- user mappings --------------------------------------------------------- */

/*
 * A mapping holds a reference on its region's struct, not on its HBM:
 * once the region dies (freed, or its file closed), faults get SIGBUS, and
 * they never reach HBM that was given to someone else since.
 */
static void llmdev_vm_open(struct vm_area_struct *vma)
{
	struct llmdev_region *r = vma->vm_private_data;

	kref_get(&r->ref);
}

static void llmdev_vm_close(struct vm_area_struct *vma)
{
	llmdev_region_unref(vma->vm_private_data);
}

/*
 * Map the faulting page and a few around it. The HBM lock orders this
 * against a region dying: a fault either sees r->dying, or maps pages
 * before the zap that follows dying takes them away again.
 */
static vm_fault_t llmdev_vm_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct llmdev_region *r = vma->vm_private_data;
	struct llmdev_device *ldev = r->ldev;
	struct llmdev_hbm *hbm = &ldev->hbm;
	unsigned long addr, start, end, pgoff;
	vm_fault_t ret = VM_FAULT_SIGBUS;
	u64 off;
	int idx;

	/*
	 * A reset is under way: wait for it without the mmap lock, which
	 * the reset may need to make progress (someone it waits for may be
	 * pinning this process's memory), and have the fault retried.
	 */
	if (READ_ONCE(ldev->state) == LLMDEV_STATE_RESETTING &&
	    fault_flag_allow_retry_first(vmf->flags)) {
		if (vmf->flags & FAULT_FLAG_RETRY_NOWAIT)
			return VM_FAULT_RETRY;
		/* the vma, its file and with it the card may go meanwhile */
		llmdev_get(ldev);
		release_fault_lock(vmf);
		llmdev_wait_reset(ldev, true);
		llmdev_put(ldev);
		return VM_FAULT_RETRY;
	}
	if (llmdev_hw_enter(ldev, &idx))
		return VM_FAULT_SIGBUS;
	mutex_lock(&hbm->lock);
	if (r->dying)
		goto out;
	/*
	 * the vma lies within the region: checked at mmap, never expands;
	 * pages around the fault, from at most half the window before it
	 * (a subtraction from a low address would wrap)
	 */
	start = vmf->address & PAGE_MASK;
	if (start - vma->vm_start > LLMDEV_FAULT_AROUND / 2 * PAGE_SIZE)
		start -= LLMDEV_FAULT_AROUND / 2 * PAGE_SIZE;
	else
		start = vma->vm_start;
	end = min(vma->vm_end, start + LLMDEV_FAULT_AROUND * PAGE_SIZE);
	for (addr = start; addr < end; addr += PAGE_SIZE) {
		pgoff = vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
		off = (u64)pgoff << PAGE_SHIFT;
		if (WARN_ON_ONCE(off < r->ext.offset ||
				 off >= r->ext.offset + r->ext.length))
			goto out;
		ret = vmf_insert_pfn(vma, addr,
				     (ldev->hbm_phys + off) >> PAGE_SHIFT);
		/* only the faulting page must succeed */
		if (ret != VM_FAULT_NOPAGE && addr == (vmf->address & PAGE_MASK))
			goto out;
	}
	ret = VM_FAULT_NOPAGE;
out:
	mutex_unlock(&hbm->lock);
	llmdev_exit(ldev, idx);
	return ret;
}

static const struct vm_operations_struct llmdev_vm_ops = {
	.open = llmdev_vm_open,
	.close = llmdev_vm_close,
	.fault = llmdev_vm_fault,
};

int llmdev_hbm_mmap(struct llmdev_file *lf, struct vm_area_struct *vma)
{
	struct llmdev_hbm *hbm = &lf->ldev->hbm;
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 len = vma->vm_end - vma->vm_start;
	struct llmdev_region *r, *found = NULL;
	int ret;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	ret = llmdev_gone(lf->ldev);
	if (ret)
		return ret;
	mutex_lock(&hbm->lock);
	ret = -EINVAL;
	list_for_each_entry(r, &hbm->regions, ext.node) {
		if (r->dying || r->pending || off < r->ext.offset ||
		    off - r->ext.offset > r->ext.length ||
		    len > r->ext.length - (off - r->ext.offset))
			continue;
		ret = llmdev_region_access(lf, r) ? -EACCES : 0;
		found = r;
		break;
	}
	if (!ret)
		kref_get(&found->ref);
	mutex_unlock(&hbm->lock);
	if (ret)
		return ret;

	/* pages are inserted at fault time (llmdev_vm_fault()) */
	vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);
	vma->vm_private_data = found;
	vma->vm_ops = &llmdev_vm_ops;
	return 0;
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
