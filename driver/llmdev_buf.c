// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: registered host buffers (LLMDEV_BUF_REGISTER).
 *
 * A buffer's pages are pinned (FOLL_LONGTERM), charged to RLIMIT_MEMLOCK
 * (the address space's and the user's) and mapped for the card's DMA
 * once. Its DMA segments are also written, once, as a hardware
 * scatter-gather table in coherent memory, so that a
 * transfer of any range of the buffer is at most three descriptors that
 * point into it (a partial first segment, whole segments, a partial last
 * one) and needs no allocation at all (llmdev_buf_descs()). Rows of it
 * (LLMDEV_OP_ROWS) are gathered by SG tables of their own, one descriptor
 * for up to a page of SG entries (llmdev_buf_rows_descs()).
 *
 * Transfers hold a count on the buffer (busy) from the moment they are
 * built until they finish; a busy buffer cannot be unregistered. The
 * file's buf_lock orders the end of a buffer (unregister, close) against
 * the card going away (llmdev_buf_unplug()).
 */
#include <linux/dma-mapping.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/cred.h>
#include <linux/sched/user.h>
#include <linux/slab.h>

#include "llmdev_drv.h"

/**
 * struct llmdev_buf - a registered buffer
 * @node: in llmdev_file.buf_list (under buf_lock), from its mapping on,
 *        also before its id is published
 * @id: its id in llmdev_file.bufs
 * @length: bytes
 * @read_only: only a source of transfers to the card
 * @pages: the pinned pages
 * @nr_pages: number of @pages
 * @mm: the mm its pages are charged to (mmgrab()ed)
 * @cred: the credentials whose user its pages are charged to as well
 *        (a reference, which keeps the user), or NULL
 * @sgt: the pages, mapped for DMA
 * @sgt_mapped: @sgt is mapped
 * @shared: its pages count in llmdev_share (writable buffers)
 * @mapped: @sgt and @table are mapped (not after the card was removed);
 *          under the file's xarray lock and buf_lock
 * @table: the mapped segments as hardware SG entries, coherent memory
 * @table_dma: bus address of @table
 * @seg_start: byte offset in the buffer where each segment starts
 * @nsegs: DMA segments
 * @need_sync: the DMA API wants the parts the card uses synced
 * @busy: transfers that use the buffer and have not finished
 */
struct llmdev_buf {
	struct list_head node;
	u32 id;
	u64 length;
	bool read_only;
	struct page **pages;
	unsigned long nr_pages;
	struct mm_struct *mm;
	const struct cred *cred;
	struct sg_table sgt;
	bool sgt_mapped;
	bool mapped;
	bool shared;
	struct llmdev_hw_sg *table;
	dma_addr_t table_dma;
	u64 *seg_start;
	u32 nsegs;
	bool need_sync;
	atomic_t busy;
};

/*
 * How many writable registered buffers, of any file and card, may hold one
 * page. The DMA API's debug checks warn when one cacheline is mapped for
 * the device to write more than 8 times at once (a user could trigger a
 * kernel warning at will otherwise); this leaves room for transfers from
 * plain memory and other devices.
 */
static DEFINE_MUTEX(llmdev_share_lock);	/* one buffer's pages at a time */
static DEFINE_XARRAY(llmdev_share);	/* pfn -> writable buffers holding it */

/* Count @b's pages as held, or fail with -EBUSY changing nothing. */
static int llmdev_buf_share(struct llmdev_buf *b)
{
	unsigned long i, done = 0;
	int ret = 0;

	mutex_lock(&llmdev_share_lock);
	for (i = 0; i < b->nr_pages; i++) {
		unsigned long pfn = page_to_pfn(b->pages[i]);
		unsigned long n = xa_to_value(xa_load(&llmdev_share, pfn) ?:
					      xa_mk_value(0));

		if (n >= LLMDEV_BUF_MAX_SHARE) {
			ret = -EBUSY;
			break;
		}
		ret = xa_err(xa_store(&llmdev_share, pfn, xa_mk_value(n + 1),
				      GFP_KERNEL));
		if (ret)
			break;
		done++;
	}
	for (i = 0; ret && i < done; i++) {
		unsigned long pfn = page_to_pfn(b->pages[i]);
		unsigned long n = xa_to_value(xa_load(&llmdev_share, pfn));

		if (n > 1)
			xa_store(&llmdev_share, pfn, xa_mk_value(n - 1), GFP_KERNEL);
		else
			xa_erase(&llmdev_share, pfn);
	}
	if (!ret)
		b->shared = true;
	mutex_unlock(&llmdev_share_lock);
	return ret;
}

static void llmdev_buf_unshare(struct llmdev_buf *b)
{
	unsigned long i;

	if (!b->shared)
		return;
	mutex_lock(&llmdev_share_lock);
	for (i = 0; i < b->nr_pages; i++) {
		unsigned long pfn = page_to_pfn(b->pages[i]);
		unsigned long n = xa_to_value(xa_load(&llmdev_share, pfn));

		/* a smaller count needs no memory: the entry is there */
		if (n > 1)
			xa_store(&llmdev_share, pfn, xa_mk_value(n - 1), GFP_KERNEL);
		else
			xa_erase(&llmdev_share, pfn);
	}
	b->shared = false;
	mutex_unlock(&llmdev_share_lock);
}

static struct device *llmdev_buf_dev(struct llmdev_device *ldev)
{
	return &ldev->pdev->dev;
}

static enum dma_data_direction llmdev_buf_dir(const struct llmdev_buf *b)
{
	return b->read_only ? DMA_TO_DEVICE : DMA_BIDIRECTIONAL;
}

/* Undo the DMA mapping (also when the card goes away before the file). */
static void llmdev_buf_unmap(struct llmdev_device *ldev, struct llmdev_buf *b)
{
	struct device *dev = llmdev_buf_dev(ldev);

	if (b->table) {
		dma_free_coherent(dev, (size_t)b->nsegs * LLMDEV_SG_SIZE,
				  b->table, b->table_dma);
		b->table = NULL;
	}
	if (b->sgt_mapped) {
		dma_unmap_sgtable(dev, &b->sgt, llmdev_buf_dir(b),
				  DMA_ATTR_SKIP_CPU_SYNC);
		b->sgt_mapped = false;
	}
}

/*
 * Charge @pages pinned pages to the caller's user against RLIMIT_MEMLOCK,
 * as io_uring and iommufd do: the mm's own count (account_locked_vm())
 * starts from zero in a new address space, so a process that keeps the
 * card open across execve() could pin again and again. With CAP_IPC_LOCK
 * nothing is charged (*@cred stays NULL). The user is reached through the
 * caller's credentials, which hold it (free_uid() is not exported before
 * Linux 5.11).
 */
static int llmdev_buf_charge_user(unsigned long pages, const struct cred **cred)
{
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	struct user_struct *u = current_user();
	long cur, next;

	*cred = NULL;
	if (capable(CAP_IPC_LOCK))
		return 0;
	cur = atomic_long_read(&u->locked_vm);
	do {
		next = cur + pages;
		if (next < cur || next > limit)
			return -ENOMEM;
	} while (!atomic_long_try_cmpxchg(&u->locked_vm, &cur, next));
	*cred = get_current_cred();
	return 0;
}

/* Called with the file's buf_lock held. */
static void llmdev_buf_destroy(struct llmdev_device *ldev, struct llmdev_buf *b)
{
	list_del(&b->node);
	llmdev_buf_unmap(ldev, b);
	if (b->sgt.sgl)
		sg_free_table(&b->sgt);
	kvfree(b->seg_start);
	llmdev_buf_unshare(b);
	if (b->pages) {
		unpin_user_pages_dirty_lock(b->pages, b->nr_pages, !b->read_only);
		kvfree(b->pages);
	}
	if (b->mm) {
		/* an mm that is gone has no locked_vm left to give back */
		if (mmget_not_zero(b->mm)) {
			account_locked_vm(b->mm, b->nr_pages, false);
			mmput(b->mm);
		}
		mmdrop(b->mm);
	}
	if (b->cred) {
		atomic_long_sub(b->nr_pages, &b->cred->user->locked_vm);
		put_cred(b->cred);
	}
	kfree(b);
}

/* Pin, charge and map [uaddr, uaddr + length). */
static int llmdev_buf_pin_map(struct llmdev_device *ldev, struct llmdev_buf *b,
			      u64 uaddr)
{
	struct device *dev = llmdev_buf_dev(ldev);
	unsigned int first = offset_in_page(uaddr);
	struct scatterlist *sg;
	unsigned int i;
	long pinned;
	u64 pos;
	int ret;

	b->nr_pages = DIV_ROUND_UP(first + b->length, PAGE_SIZE);
	ret = llmdev_buf_charge_user(b->nr_pages, &b->cred);
	if (ret)
		return ret;
	ret = account_locked_vm(current->mm, b->nr_pages, true);
	if (ret)
		return ret;
	b->mm = current->mm;
	mmgrab(b->mm);

	b->pages = kvmalloc_array(b->nr_pages, sizeof(*b->pages), GFP_KERNEL);
	if (!b->pages)
		return -ENOMEM;
	pinned = pin_user_pages_fast(uaddr & PAGE_MASK, b->nr_pages,
				     FOLL_LONGTERM | (b->read_only ? 0 : FOLL_WRITE),
				     b->pages);
	if (pinned != b->nr_pages) {
		if (pinned > 0)
			unpin_user_pages(b->pages, pinned);
		kvfree(b->pages);
		b->pages = NULL;
		return pinned == -ENOMEM ? -ENOMEM : -EFAULT;
	}
	if (!b->read_only) {
		ret = llmdev_buf_share(b);
		if (ret)
			return ret;
	}
	ret = sg_alloc_table_from_pages_segment(&b->sgt, b->pages, b->nr_pages,
						first, b->length,
						dma_get_max_seg_size(dev),
						GFP_KERNEL);
	if (ret)
		return ret;
	ret = dma_map_sgtable(dev, &b->sgt, llmdev_buf_dir(b),
			      DMA_ATTR_SKIP_CPU_SYNC);
	if (ret)
		return -ENOMEM;	/* the host's mapping, not the card's -EIO */
	b->sgt_mapped = true;
	b->nsegs = b->sgt.nents;

	b->seg_start = kvmalloc_array(b->nsegs, sizeof(*b->seg_start),
				      GFP_KERNEL);
	b->table = dma_alloc_coherent(dev, (size_t)b->nsegs * LLMDEV_SG_SIZE,
				      &b->table_dma, GFP_KERNEL);
	if (!b->seg_start || !b->table)
		return -ENOMEM;
	pos = 0;
	for_each_sgtable_dma_sg(&b->sgt, sg, i) {
		/*
		 * Bounce buffers or cache maintenance (an IOMMU's DMA ops say
		 * so even when they bounce nothing): each transfer syncs the
		 * part it moves, llmdev_buf_sync()
		 */
		b->need_sync |= dma_need_sync(dev, sg_dma_address(sg));
		b->seg_start[i] = pos;
		b->table[i].addr = cpu_to_le64(sg_dma_address(sg));
		b->table[i].length = cpu_to_le32(sg_dma_len(sg));
		b->table[i].reserved = 0;
		pos += sg_dma_len(sg);
	}
	if (pos != b->length)
		return -EINVAL;
	b->mapped = true;
	return 0;
}

/* The reply is written: the buffer becomes reachable by its id. */
static void llmdev_buf_register_commit(struct llmdev_ucmd *ucmd)
{
	struct llmdev_buf *b = ucmd->obj;

	/* the slot is reserved: storing into it allocates nothing */
	WARN_ON(xa_is_err(xa_store(&ucmd->lf->bufs, b->id, b, GFP_KERNEL)));
}

static void llmdev_buf_register_abort(struct llmdev_ucmd *ucmd)
{
	struct llmdev_buf *b = ucmd->obj;

	mutex_lock(&ucmd->lf->buf_lock);
	xa_erase(&ucmd->lf->bufs, b->id);
	llmdev_buf_destroy(ucmd->lf->ldev, b);
	mutex_unlock(&ucmd->lf->buf_lock);
}

int llmdev_buf_ioctl_register(struct llmdev_ucmd *ucmd)
{
	struct llmdev_buf_register *r = ucmd->cmd;
	struct llmdev_device *ldev = ucmd->lf->ldev;
	struct llmdev_buf *b;
	int ret;

	if ((r->flags & ~LLMDEV_BUF_READ_ONLY) || r->__reserved ||
	    !r->length || r->length > LLMDEV_BUF_MAX_LENGTH ||
	    r->user_addr + r->length < r->user_addr)
		return -EINVAL;
	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	b->length = r->length;
	b->read_only = r->flags & LLMDEV_BUF_READ_ONLY;
	atomic_set(&b->busy, 0);
	/*
	 * Under buf_lock, and on the file's list from here on: if the card
	 * goes away, llmdev_buf_unplug() unmaps this buffer too.
	 */
	mutex_lock(&ucmd->lf->buf_lock);
	list_add(&b->node, &ucmd->lf->buf_list);
	ret = llmdev_gone(ldev) ?: llmdev_buf_pin_map(ldev, b, r->user_addr);
	if (ret)
		goto err;
	/* reserve an id; it leads nowhere until the commit */
	ret = xa_alloc(&ucmd->lf->bufs, &b->id, NULL,
		       XA_LIMIT(1, LLMDEV_MAX_BUFS), GFP_KERNEL);
	if (ret) {
		if (ret == -EBUSY)
			ret = -EMFILE;
		goto err;
	}
	mutex_unlock(&ucmd->lf->buf_lock);
	r->buf = b->id;
	ucmd->obj = b;
	ucmd->commit = llmdev_buf_register_commit;
	ucmd->abort = llmdev_buf_register_abort;
	return 0;

err:
	llmdev_buf_destroy(ldev, b);
	mutex_unlock(&ucmd->lf->buf_lock);
	return ret;
}

int llmdev_buf_ioctl_unregister(struct llmdev_ucmd *ucmd)
{
	struct llmdev_buf_unregister *u = ucmd->cmd;
	struct xarray *bufs = &ucmd->lf->bufs;
	struct llmdev_buf *b;
	int ret = 0;

	if (u->flags || u->__reserved)
		return -EINVAL;
	mutex_lock(&ucmd->lf->buf_lock);
	xa_lock(bufs);
	b = xa_load(bufs, u->buf);
	if (!b)
		ret = -ENOENT;
	else if (atomic_read(&b->busy))
		ret = -EBUSY;
	else
		__xa_erase(bufs, u->buf);
	xa_unlock(bufs);
	if (!ret)
		llmdev_buf_destroy(ucmd->lf->ldev, b);
	mutex_unlock(&ucmd->lf->buf_lock);
	return ret;
}

/**
 * llmdev_buf_get() - look up a buffer for a transfer and mark it busy
 * @lf: the file
 * @id: the buffer's id
 * @offset: byte offset in the buffer
 * @length: bytes
 * @to_card: the direction of the transfer
 *
 * Return: the buffer (llmdev_buf_put() when the transfer is over), or
 * ERR_PTR(-ENOENT) no such buffer, -EINVAL the range is not inside it,
 * -EACCES a transfer from the card into a read-only buffer, -ENODEV the
 * card was removed (the buffer is no longer mapped).
 */
struct llmdev_buf *llmdev_buf_get(struct llmdev_file *lf, u32 id, u64 offset,
				  u64 length, bool to_card)
{
	struct llmdev_buf *b;

	xa_lock(&lf->bufs);
	b = xa_load(&lf->bufs, id);
	b = b ? llmdev_buf_get_again(b, offset, length, to_card) : ERR_PTR(-ENOENT);
	xa_unlock(&lf->bufs);
	return b;
}

/**
 * llmdev_buf_get_again() - llmdev_buf_get() of a buffer already held
 * @b: the buffer, busy: an earlier transfer of the same batch holds it
 * @offset: byte offset in the buffer
 * @length: bytes
 * @to_card: the direction of the transfer
 *
 * The checks of llmdev_buf_get() without the lookup: a batch whose
 * transfers use one buffer looks it up once.
 *
 * Return: @b, busy once more, or the ERR_PTR()s of llmdev_buf_get().
 */
struct llmdev_buf *llmdev_buf_get_again(struct llmdev_buf *b, u64 offset,
					u64 length, bool to_card)
{
	if (offset > b->length || length > b->length - offset)
		return ERR_PTR(-EINVAL);
	if (!to_card && b->read_only)
		return ERR_PTR(-EACCES);
	if (!READ_ONCE(b->mapped))
		return ERR_PTR(-ENODEV);
	atomic_inc(&b->busy);
	return b;
}

void llmdev_buf_put(struct llmdev_buf *b)
{
	atomic_dec(&b->busy);
}

/* The segment that holds byte @off of the buffer. */
static u32 llmdev_buf_seg(const struct llmdev_buf *b, u64 off)
{
	u32 lo = 0, hi = b->nsegs;

	while (hi - lo > 1) {
		u32 mid = lo + (hi - lo) / 2;

		if (b->seg_start[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static u32 llmdev_buf_seg_len(const struct llmdev_buf *b, u32 k)
{
	return le32_to_cpu(b->table[k].length);
}

/**
 * llmdev_buf_descs() - the descriptors of a transfer of part of a buffer
 * @b: the buffer
 * @off: byte offset in the buffer
 * @len: bytes, > 0, within the buffer
 * @hbm: HBM address of the transfer
 * @d: where to write them (NULL: only count)
 *
 * A partial first segment and a partial last segment are single-segment
 * descriptors; the whole segments between them one SGL descriptor per
 * LLMDEV_DESC_MAX_SG, pointing into the buffer's SG table.
 *
 * Return: the number of descriptors.
 */
unsigned int llmdev_buf_descs(const struct llmdev_buf *b, u64 off, u64 len,
			      u64 hbm, struct llmdev_job_desc *d)
{
	u64 end = off + len;
	unsigned int n = 0;
	u32 k = llmdev_buf_seg(b, off);

	while (off < end) {
		u64 seg_end = b->seg_start[k] + llmdev_buf_seg_len(b, k);
		u32 whole = 0;

		if (off == b->seg_start[k] && seg_end <= end) {
			/* whole segments from k on, up to the table's limit */
			while (k + whole < b->nsegs && whole < LLMDEV_DESC_MAX_SG &&
			       b->seg_start[k + whole] +
			       llmdev_buf_seg_len(b, k + whole) <= end)
				whole++;
		}
		if (whole > 1) {
			u64 bytes = b->seg_start[k + whole - 1] +
				    llmdev_buf_seg_len(b, k + whole - 1) - off;

			if (d) {
				d[n].addr = b->table_dma + (u64)k * LLMDEV_SG_SIZE;
				d[n].count = whole;
				d[n].length = bytes;
				d[n].hbm_addr = hbm;
				d[n].vec = false;
				d[n].table = NULL;
				d[n].sg = &b->table[k];
			}
			off += bytes;
			hbm += bytes;
			k += whole;
		} else {
			u64 bytes = min(seg_end, end) - off;

			if (d) {
				d[n].addr = le64_to_cpu(b->table[k].addr) +
					    (off - b->seg_start[k]);
				d[n].count = 0;
				d[n].length = bytes;
				d[n].hbm_addr = hbm;
				d[n].vec = false;
				d[n].table = NULL;
			}
			off += bytes;
			hbm += bytes;
			k++;
		}
		n++;
	}
	return n;
}

/* The DMA segments [@off, @off + @len) of the buffer touches: 1 or more. */
static u32 llmdev_buf_pieces(const struct llmdev_buf *b, u64 off, u64 len)
{
	u32 k = llmdev_buf_seg(b, off), n = 1;

	while (b->seg_start[k] + llmdev_buf_seg_len(b, k) < off + len) {
		k++;
		n++;
	}
	return n;
}

/**
 * llmdev_buf_rows_descs() - the descriptors of rows of a buffer, packed in HBM
 * @dev: the device that allocates the SG tables (with @d only)
 * @b: the buffer
 * @off: byte offset of the first row in the buffer
 * @len: bytes of each row, > 0
 * @rows: rows, > 0, each @stride bytes after the one before, all within
 *        the buffer
 * @stride: >= @len
 * @hbm: HBM address of the first row; the others follow it, packed
 * @d: where to write them (NULL: only count)
 * @n: the number of descriptors
 *
 * The rows' pieces (a row's part in each DMA segment it touches) are the
 * entries of SG tables of their own, LLMDEV_ROWS_SG (a page of entries)
 * to a descriptor: the card gathers them into one contiguous run of HBM,
 * as it would one row. A descriptor left with one entry addresses it
 * directly. The tables are coherent memory owned by the descriptors
 * (llmdev_job_desc.table), a page each at most, so that a busy system's
 * fragmented memory does not fail a large transfer of rows.
 *
 * Return: 0, or -ENOMEM (the descriptors written so far own their tables).
 */
int llmdev_buf_rows_descs(struct device *dev, const struct llmdev_buf *b,
			  u64 off, u64 len, u32 rows, u64 stride, u64 hbm,
			  struct llmdev_job_desc *d, unsigned int *n)
{
	u64 pos = off, end = off + len, entries = 0;
	u32 r, k, j;

	for (r = 0; r < rows; r++)
		entries += llmdev_buf_pieces(b, off + (u64)r * stride, len);
	*n = DIV_ROUND_UP(entries, LLMDEV_ROWS_SG);
	if (!d)
		return 0;
	k = llmdev_buf_seg(b, pos);
	r = 0;
	for (j = 0; j < *n; j++) {
		struct llmdev_job_desc *jd = &d[j];
		u32 cnt = min_t(u64, entries - (u64)j * LLMDEV_ROWS_SG,
				LLMDEV_ROWS_SG), e;

		jd->hbm_addr = hbm;
		jd->length = 0;
		jd->count = 0;
		jd->vec = false;
		jd->table = NULL;
		if (cnt > 1) {
			jd->table = dma_alloc_coherent(dev, cnt * LLMDEV_SG_SIZE,
						       &jd->addr, GFP_KERNEL);
			if (!jd->table)
				return -ENOMEM;
			jd->sg = jd->table;
			jd->count = cnt;
		}
		for (e = 0; e < cnt; e++) {
			u64 seg_end, piece, addr;

			if (pos == end) {
				r++;
				pos = off + (u64)r * stride;
				end = pos + len;
				k = llmdev_buf_seg(b, pos);
			}
			seg_end = b->seg_start[k] + llmdev_buf_seg_len(b, k);
			piece = min(seg_end, end) - pos;
			addr = le64_to_cpu(b->table[k].addr) + (pos - b->seg_start[k]);
			if (jd->table) {
				jd->table[e].addr = cpu_to_le64(addr);
				jd->table[e].length = cpu_to_le32(piece);
				jd->table[e].reserved = 0;
			} else {
				jd->addr = addr;
			}
			jd->length += piece;
			hbm += piece;
			pos += piece;
			if (pos == seg_end)
				k++;
		}
	}
	return 0;
}

/**
 * llmdev_buf_sync() - hand part of a buffer to the card or back to the CPU
 * @ldev: the card
 * @b: the buffer
 * @off: byte offset in the buffer
 * @len: bytes, > 0, within the buffer
 * @for_cpu: after the card wrote it (true), or before the card uses it
 *
 * Nothing to do, and nothing done, where the DMA API needs no syncs for
 * the buffer's mapping (no IOMMU, no bounce buffers, coherent caches).
 */
void llmdev_buf_sync(struct llmdev_device *ldev, const struct llmdev_buf *b,
		     u64 off, u64 len, bool for_cpu)
{
	struct device *dev = llmdev_buf_dev(ldev);
	enum dma_data_direction dir = llmdev_buf_dir(b);
	u64 end = off + len;
	u32 k;

	if (!b->need_sync)
		return;
	for (k = llmdev_buf_seg(b, off); off < end; k++) {
		u64 seg_off = off - b->seg_start[k];
		u64 bytes = min_t(u64, end - off, llmdev_buf_seg_len(b, k) - seg_off);
		dma_addr_t addr = le64_to_cpu(b->table[k].addr);

		if (for_cpu)
			dma_sync_single_range_for_cpu(dev, addr, seg_off, bytes, dir);
		else
			dma_sync_single_range_for_device(dev, addr, seg_off, bytes,
							 dir);
		off += bytes;
	}
}

/* The file is closing, its transfers are over: unregister everything. */
void llmdev_buf_release_file(struct llmdev_file *lf)
{
	struct llmdev_buf *b;
	unsigned long id;

	mutex_lock(&lf->buf_lock);
	xa_for_each(&lf->bufs, id, b) {
		xa_erase(&lf->bufs, id);
		WARN_ON(atomic_read(&b->busy));
		llmdev_buf_destroy(lf->ldev, b);
	}
	mutex_unlock(&lf->buf_lock);
	xa_destroy(&lf->bufs);
}

/*
 * The card is going away: unmap every buffer from its DMA now, while the
 * device is still there. The pages stay pinned until the files close.
 * Transfers have all been failed; nothing new can start (!b->mapped).
 */
void llmdev_buf_unplug(struct llmdev_device *ldev)
{
	struct llmdev_file *lf;
	struct llmdev_buf *b;

	mutex_lock(&ldev->files_lock);
	list_for_each_entry(lf, &ldev->files, node) {
		mutex_lock(&lf->buf_lock);
		xa_lock(&lf->bufs);
		list_for_each_entry(b, &lf->buf_list, node)
			b->mapped = false;
		xa_unlock(&lf->bufs);
		list_for_each_entry(b, &lf->buf_list, node)
			llmdev_buf_unmap(ldev, b);
		mutex_unlock(&lf->buf_lock);
	}
	mutex_unlock(&ldev->files_lock);
}
