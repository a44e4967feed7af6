// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: DMA rings, zero-copy transfers and their fences.
 *
 * A transfer (job) pins the user pages, maps them, and becomes one or more
 * descriptors (up to LLMDEV_DESC_MAX_SG segments each) on one ring. The
 * card completes descriptors in order; a job's fence is signalled when its
 * last descriptor completes. A per-ring watchdog resets a ring that has
 * outstanding descriptors but made no progress for dma_timeout_ms, and
 * fails the jobs on it with -ETIMEDOUT; a ring the card halted on an error
 * is reset the same way with -EIO.
 */
#include <linux/dma-mapping.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "llmdev_drv.h"

unsigned int llmdev_dma_timeout_ms = 10000;
module_param_named(dma_timeout_ms, llmdev_dma_timeout_ms, uint, 0644);
MODULE_PARM_DESC(dma_timeout_ms, "A ring that makes no progress for this long is reset and its transfers fail with -ETIMEDOUT (default 10000)");

#define LLMDEV_RING_MASK	(LLMDEV_RING_ENTRIES - 1)
#define LLMDEV_MAX_SEGMENT	(SZ_1G)

struct llmdev_job_desc {
	struct llmdev_hw_sg *table;	/* NULL for a single segment */
	dma_addr_t addr;		/* the segment, or the table */
	u32 count;
	u32 length;
	u64 hbm_addr;
};

/**
 * struct llmdev_job - one transfer, the unit a fence tracks
 * @fence: its fence, in the submitter's file
 * @node: in llmdev_ring.pending until fully posted, then llmdev_ring.active
 * @ring: the ring it runs on
 * @region: the HBM region (busy count held until the job finishes)
 * @to_card: direction
 * @pages: pinned user pages
 * @nr_pages: number of @pages
 * @sgt: the DMA-mapped pages
 * @descs: hardware descriptors to post
 * @nr_desc: number of @descs
 * @posted: descriptors posted
 * @done: descriptors completed
 * @status: 0 or the first error
 */
struct llmdev_job {
	struct llmdev_fence fence;
	struct list_head node;
	struct llmdev_ring *ring;
	struct llmdev_region *region;
	bool to_card;
	struct page **pages;
	unsigned int nr_pages;
	struct sg_table sgt;
	struct llmdev_job_desc *descs;
	unsigned int nr_desc;
	unsigned int posted;
	unsigned int done;
	int status;
};

static struct device *llmdev_dma_dev(struct llmdev_ring *ring)
{
	return &ring->ldev->pdev->dev;
}

/* ---- job construction and teardown ----------------------------------- */

static void llmdev_job_free_descs(struct llmdev_job *job)
{
	struct device *dev = llmdev_dma_dev(job->ring);
	unsigned int i;

	for (i = 0; i < job->nr_desc; i++)
		if (job->descs[i].table)
			dma_free_coherent(dev, job->descs[i].count * LLMDEV_SG_SIZE,
					  job->descs[i].table, job->descs[i].addr);
	kvfree(job->descs);
	job->descs = NULL;
}

/* Undo the pinning and mapping; the job struct stays for its fence. */
static void llmdev_job_release(struct llmdev_job *job)
{
	struct device *dev = llmdev_dma_dev(job->ring);

	if (job->descs)
		llmdev_job_free_descs(job);
	if (job->sgt.sgl) {
		dma_unmap_sgtable(dev, &job->sgt, job->to_card ? DMA_TO_DEVICE :
				  DMA_FROM_DEVICE, 0);
		sg_free_table(&job->sgt);
		job->sgt.sgl = NULL;
	}
	if (job->pages) {
		unpin_user_pages_dirty_lock(job->pages, job->nr_pages,
					    !job->to_card);
		kvfree(job->pages);
		job->pages = NULL;
	}
	if (job->region) {
		llmdev_region_put(job->ring->ldev, job->region);
		job->region = NULL;
	}
}

static int llmdev_job_pin(struct llmdev_job *job, u64 uaddr, u64 length)
{
	struct device *dev = llmdev_dma_dev(job->ring);
	unsigned int first = offset_in_page(uaddr);
	int pinned, ret;

	job->nr_pages = DIV_ROUND_UP(first + length, PAGE_SIZE);
	job->pages = kvmalloc_array(job->nr_pages, sizeof(*job->pages),
				    GFP_KERNEL);
	if (!job->pages)
		return -ENOMEM;
	pinned = pin_user_pages_fast(uaddr & PAGE_MASK, job->nr_pages,
				     job->to_card ? 0 : FOLL_WRITE, job->pages);
	if (pinned != job->nr_pages) {
		if (pinned > 0)
			unpin_user_pages(job->pages, pinned);
		kvfree(job->pages);
		job->pages = NULL;
		return pinned < 0 ? pinned : -EFAULT;
	}
	ret = sg_alloc_table_from_pages_segment(&job->sgt, job->pages,
						job->nr_pages, first, length,
						LLMDEV_MAX_SEGMENT, GFP_KERNEL);
	if (ret)
		return ret;
	ret = dma_map_sgtable(dev, &job->sgt, job->to_card ? DMA_TO_DEVICE :
			      DMA_FROM_DEVICE, 0);
	if (ret) {
		sg_free_table(&job->sgt);
		job->sgt.sgl = NULL;
	}
	return ret;
}

/* Split the mapped segments into descriptors of at most DESC_MAX_SG each. */
static int llmdev_job_build(struct llmdev_job *job, u64 hbm_addr)
{
	struct device *dev = llmdev_dma_dev(job->ring);
	unsigned int nents = job->sgt.nents, i, n = 0;
	struct scatterlist *sg;

	job->nr_desc = DIV_ROUND_UP(nents, LLMDEV_DESC_MAX_SG);
	job->descs = kvcalloc(job->nr_desc, sizeof(*job->descs), GFP_KERNEL);
	if (!job->descs)
		return -ENOMEM;

	for_each_sgtable_dma_sg(&job->sgt, sg, i) {
		struct llmdev_job_desc *d = &job->descs[i / LLMDEV_DESC_MAX_SG];
		unsigned int k = i % LLMDEV_DESC_MAX_SG;

		if (!k) {
			d->count = min_t(unsigned int, nents - i,
					 LLMDEV_DESC_MAX_SG);
			d->hbm_addr = hbm_addr;
			n++;
			if (d->count > 1) {
				size_t sz = d->count * LLMDEV_SG_SIZE;

				d->table = dma_alloc_coherent(dev, sz, &d->addr,
							      GFP_KERNEL);
				if (!d->table)
					return -ENOMEM;
			} else {
				d->addr = sg_dma_address(sg);
			}
		}
		if (d->table) {
			d->table[k].addr = cpu_to_le64(sg_dma_address(sg));
			d->table[k].length = cpu_to_le32(sg_dma_len(sg));
			d->table[k].reserved = 0;
		}
		d->length += sg_dma_len(sg);
		hbm_addr += sg_dma_len(sg);
	}
	WARN_ON(n != job->nr_desc);
	return 0;
}

/* ---- the ring ------------------------------------------------------------ */

static u32 llmdev_ring_reg(struct llmdev_ring *ring, u32 reg)
{
	return LLMDEV_RING_BASE(ring->index) + reg;
}

/* Program and enable the ring. Caller holds ring->lock or owns the ring. */
static void llmdev_ring_hw_init(struct llmdev_ring *ring)
{
	struct llmdev_device *ldev = ring->ldev;

	llmdev_wr32(ldev, llmdev_ring_reg(ring, LLMDEV_RING_CTRL),
		    LLMDEV_RING_CTRL_RESET);
	memset(ring->cmpl, 0, LLMDEV_RING_ENTRIES * LLMDEV_CMPL_SIZE);
	memset(ring->slot_job, 0, sizeof(ring->slot_job));
	ring->tail = 0;
	ring->completed = 0;
	llmdev_wr64(ldev, llmdev_ring_reg(ring, LLMDEV_RING_DESC_BASE),
		    ring->desc_dma);
	llmdev_wr64(ldev, llmdev_ring_reg(ring, LLMDEV_RING_CMPL_BASE),
		    ring->cmpl_dma);
	llmdev_wr32(ldev, llmdev_ring_reg(ring, LLMDEV_RING_SIZE),
		    LLMDEV_RING_ENTRIES);
	llmdev_wr32(ldev, llmdev_ring_reg(ring, LLMDEV_RING_IRQ_COALESCE), 0);
	llmdev_wr32(ldev, llmdev_ring_reg(ring, LLMDEV_RING_CTRL),
		    LLMDEV_RING_CTRL_ENABLE);
}

/* Post what fits from the pending jobs. Caller holds ring->lock. */
static void llmdev_ring_post(struct llmdev_ring *ring)
{
	u32 space = LLMDEV_RING_ENTRIES - (ring->tail - ring->completed);
	u32 old_tail = ring->tail;
	struct llmdev_job *job, *tmp;

	list_for_each_entry_safe(job, tmp, &ring->pending, node) {
		while (space && job->posted < job->nr_desc) {
			struct llmdev_job_desc *jd = &job->descs[job->posted];
			struct llmdev_hw_desc *d;
			u32 slot = ring->tail & LLMDEV_RING_MASK;
			u32 flags = jd->table ? LLMDEV_DESC_F_SGL : 0;

			if (job->posted == job->nr_desc - 1)
				flags |= LLMDEV_DESC_F_IRQ;
			d = &ring->desc[slot];
			d->host_addr = cpu_to_le64(jd->addr);
			d->hbm_addr = cpu_to_le64(jd->hbm_addr);
			d->length = cpu_to_le32(jd->length);
			d->flags = cpu_to_le32(flags);
			d->sg_count = cpu_to_le32(jd->table ? jd->count : 0);
			d->cookie = cpu_to_le32(job->posted);
			ring->slot_job[slot] = job;
			ring->tail++;
			job->posted++;
			space--;
		}
		if (job->posted < job->nr_desc)
			break;
		list_move_tail(&job->node, &ring->active);
	}
	if (ring->tail == old_tail)
		return;
	dma_wmb();
	llmdev_wr32(ring->ldev, llmdev_ring_reg(ring, LLMDEV_RING_TAIL),
		    ring->tail);
	if (old_tail == ring->completed) {
		/* an idle ring became busy: the watchdog starts afresh */
		ring->last_progress = jiffies;
		mod_delayed_work(system_wq, &ring->timeout_work,
				 msecs_to_jiffies(llmdev_dma_timeout_ms));
	}
}

/*
 * Signal a finished job's fence. Sleeps (unpins pages). The region is let
 * go last, so that when LLMDEV_HBM_FREE returns, the fences of the
 * transfers it waited for are already signalled.
 */
static void llmdev_job_finish(struct llmdev_job *job, int status)
{
	struct llmdev_device *ldev = job->ring->ldev;
	struct llmdev_region *region = job->region;

	if (status && !job->status)
		job->status = status;
	job->region = NULL;
	llmdev_job_release(job);
	/* a waiter may free the job from here on */
	llmdev_fence_signal(&job->fence, job->status);
	if (region)
		llmdev_region_put(ldev, region);
}

static void llmdev_finish_list(struct list_head *jobs, int status)
{
	struct llmdev_job *job, *tmp;

	list_for_each_entry_safe(job, tmp, jobs, node) {
		list_del(&job->node);
		llmdev_job_finish(job, status);
	}
}

/*
 * Fail the jobs of a ring being reset: the oldest, the one the card was
 * working on, with @status; the ones queued behind it with -ECANCELED.
 */
static void llmdev_fail_ring_jobs(struct list_head *jobs, int status)
{
	struct llmdev_job *first;

	first = list_first_entry_or_null(jobs, struct llmdev_job, node);
	if (!first)
		return;
	list_del(&first->node);
	llmdev_job_finish(first, status);
	llmdev_finish_list(jobs, -ECANCELED);
}

void llmdev_dma_handle_ring(struct llmdev_ring *ring)
{
	LIST_HEAD(finished);

	spin_lock(&ring->lock);
	while (ring->completed != ring->tail) {
		struct llmdev_hw_cmpl *c;
		struct llmdev_job *job;
		u32 slot = ring->completed & LLMDEV_RING_MASK;
		u16 phase = (ring->completed / LLMDEV_RING_ENTRIES) & 1 ?
			    0 : LLMDEV_CMPL_F_PHASE;

		c = &ring->cmpl[slot];
		if ((le16_to_cpu(READ_ONCE(c->flags)) & LLMDEV_CMPL_F_PHASE) != phase)
			break;
		dma_rmb();
		job = ring->slot_job[slot];
		ring->slot_job[slot] = NULL;
		ring->completed++;
		ring->last_progress = jiffies;
		if (WARN_ON_ONCE(!job))
			continue;
		if (c->status && !job->status) {
			job->status = -EIO;
			dev_dbg(&ring->ldev->dev, "ring %u: descriptor failed, card status %u\n",
				ring->index, le16_to_cpu(c->status));
		}
		if (++job->done == job->nr_desc)
			list_move_tail(&job->node, &finished);
	}
	llmdev_ring_post(ring);
	spin_unlock(&ring->lock);
	llmdev_finish_list(&finished, 0);
}

/*
 * Reset a ring: jobs with descriptors on it fail with @status; jobs that
 * had none posted are posted again on the fresh ring.
 */
static void llmdev_ring_recover(struct llmdev_ring *ring, int status)
{
	LIST_HEAD(failed);
	struct llmdev_job *job, *tmp;

	spin_lock(&ring->lock);
	list_splice_init(&ring->active, &failed);
	list_for_each_entry_safe(job, tmp, &ring->pending, node)
		if (job->posted)
			list_move_tail(&job->node, &failed);
	llmdev_ring_hw_init(ring);
	llmdev_ring_post(ring);
	spin_unlock(&ring->lock);
	if (!list_empty(&failed))
		dev_warn(&ring->ldev->dev, "ring %u reset: %s\n", ring->index,
			 status == -ETIMEDOUT ? "no progress, timed out" :
			 "halted by a card error");
	llmdev_fail_ring_jobs(&failed, status);
}

static void llmdev_ring_timeout(struct work_struct *work)
{
	struct llmdev_ring *ring = container_of(to_delayed_work(work),
						struct llmdev_ring, timeout_work);
	unsigned long timeout = msecs_to_jiffies(llmdev_dma_timeout_ms);
	bool busy, stuck;
	int idx;

	if (!llmdev_enter(ring->ldev, &idx))
		return;
	llmdev_dma_handle_ring(ring);	/* completions whose interrupt we lost */
	spin_lock(&ring->lock);
	busy = ring->completed != ring->tail;
	stuck = busy && time_after_eq(jiffies, ring->last_progress + timeout);
	spin_unlock(&ring->lock);
	if (stuck)
		llmdev_ring_recover(ring, -ETIMEDOUT);
	spin_lock(&ring->lock);
	if (ring->completed != ring->tail)
		schedule_delayed_work(&ring->timeout_work,
				      max_t(long, 1, ring->last_progress + timeout -
						     jiffies));
	spin_unlock(&ring->lock);
	llmdev_exit(ring->ldev, idx);
}

void llmdev_dma_handle_error(struct llmdev_device *ldev)
{
	u32 err = llmdev_rd32(ldev, LLMDEV_REG_ERR_STATUS);
	unsigned int i;

	if (err == ~0u)
		return;
	llmdev_wr32(ldev, LLMDEV_REG_ERR_STATUS, err);
	dev_dbg(&ldev->dev, "card error status %#x\n", err);
	for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
		struct llmdev_ring *ring = &ldev->ring[i];
		u32 st = llmdev_rd32(ldev, llmdev_ring_reg(ring, LLMDEV_RING_STATUS));

		if (st != ~0u && (st & LLMDEV_RING_STATUS_HALTED)) {
			dev_err(&ldev->dev, "ring %u halted by the card, error %u\n",
				i, llmdev_rd32(ldev, llmdev_ring_reg(ring,
						LLMDEV_RING_ERR_CODE)));
			llmdev_dma_handle_ring(ring);
			llmdev_ring_recover(ring, -EIO);
		}
	}
}

/* ---- ioctls ---------------------------------------------------------------- */

static struct llmdev_ring *llmdev_pick_ring(struct llmdev_device *ldev,
					    bool to_card, u32 ring)
{
	static atomic_t rr = ATOMIC_INIT(0);
	unsigned int base = to_card ? 0 : LLMDEV_NUM_H2C_RINGS;
	unsigned int n = to_card ? LLMDEV_NUM_H2C_RINGS :
			 LLMDEV_NUM_RINGS - LLMDEV_NUM_H2C_RINGS;

	if (ring == LLMDEV_RING_ANY)
		ring = (unsigned int)atomic_inc_return(&rr) % n;
	if (ring >= n)
		return NULL;
	return &ldev->ring[base + ring];
}

static void llmdev_job_destroy(struct llmdev_job *job)
{
	llmdev_job_release(job);
	kfree(job);
}

static void llmdev_job_free_fence(struct llmdev_fence *f)
{
	kfree(container_of(f, struct llmdev_job, fence));
}

int llmdev_dma_ioctl_submit(struct llmdev_file *lf, void __user *arg)
{
	struct llmdev_device *ldev = lf->ldev;
	struct llmdev_region *region;
	struct llmdev_ring *ring;
	struct llmdev_job *job;
	struct llmdev_dma d;
	int idx, ret;

	ret = llmdev_copy_from_user(&d, sizeof(d), sizeof(d), arg);
	if (ret)
		return ret;
	if ((d.flags & ~LLMDEV_DMA_TO_CARD) || !d.length ||
	    d.length > LLMDEV_DMA_MAX_LENGTH)
		return -EINVAL;
	ring = llmdev_pick_ring(ldev, d.flags & LLMDEV_DMA_TO_CARD, d.ring);
	if (!ring)
		return -EINVAL;
	if (d.user_addr + d.length < d.user_addr)
		return -EFAULT;

	job = kzalloc(sizeof(*job), GFP_KERNEL);
	if (!job)
		return -ENOMEM;
	ret = llmdev_fence_reserve(lf, &job->fence, llmdev_job_free_fence);
	if (ret) {
		kfree(job);
		return ret;
	}
	d.fence = job->fence.seqno;
	job->ring = ring;
	job->to_card = d.flags & LLMDEV_DMA_TO_CARD;
	region = llmdev_region_get(lf, d.handle, d.offset, d.length);
	if (IS_ERR(region)) {
		ret = PTR_ERR(region);
		goto err;
	}
	job->region = region;
	ret = llmdev_job_pin(job, d.user_addr, d.length);
	if (ret)
		goto err;
	ret = llmdev_job_build(job, region->ext.offset + d.offset);
	if (ret)
		goto err;
	ret = llmdev_fence_publish(&job->fence);
	if (ret)
		goto err;
	if (copy_to_user(arg, &d, min_t(u32, d.size, sizeof(d)))) {
		ret = -EFAULT;
		goto err;
	}

	if (!llmdev_enter(ldev, &idx)) {
		ret = -ENODEV;
		goto err;
	}
	spin_lock(&ring->lock);
	list_add_tail(&job->node, &ring->pending);
	llmdev_ring_post(ring);
	spin_unlock(&ring->lock);
	llmdev_exit(ldev, idx);
	return 0;

err:
	llmdev_fence_unreserve(&job->fence);
	llmdev_job_destroy(job);
	return ret;
}

/* ---- setup and teardown ---------------------------------------------------- */

int llmdev_dma_init(struct llmdev_device *ldev)
{
	struct device *dev = &ldev->pdev->dev;
	unsigned int i;

	dma_set_max_seg_size(dev, LLMDEV_MAX_SEGMENT);
	for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
		struct llmdev_ring *ring = &ldev->ring[i];

		ring->ldev = ldev;
		ring->index = i;
		ring->to_card = i < LLMDEV_NUM_H2C_RINGS;
		spin_lock_init(&ring->lock);
		INIT_LIST_HEAD(&ring->pending);
		INIT_LIST_HEAD(&ring->active);
		INIT_DELAYED_WORK(&ring->timeout_work, llmdev_ring_timeout);
		ring->desc = dmam_alloc_coherent(dev, LLMDEV_RING_ENTRIES *
						 LLMDEV_DESC_SIZE,
						 &ring->desc_dma, GFP_KERNEL);
		ring->cmpl = dmam_alloc_coherent(dev, LLMDEV_RING_ENTRIES *
						 LLMDEV_CMPL_SIZE,
						 &ring->cmpl_dma, GFP_KERNEL);
		if (!ring->desc || !ring->cmpl)
			return -ENOMEM;
	}
	return 0;
}

void llmdev_dma_hw_start(struct llmdev_device *ldev)
{
	unsigned int i;

	for (i = 0; i < LLMDEV_NUM_RINGS; i++)
		llmdev_ring_hw_init(&ldev->ring[i]);
}

/* The card is going away and no longer does DMA: fail every job. */
void llmdev_dma_unplug(struct llmdev_device *ldev)
{
	unsigned int i;

	for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
		struct llmdev_ring *ring = &ldev->ring[i];
		LIST_HEAD(failed);

		cancel_delayed_work_sync(&ring->timeout_work);
		spin_lock(&ring->lock);
		list_splice_init(&ring->active, &failed);
		list_splice_tail_init(&ring->pending, &failed);
		spin_unlock(&ring->lock);
		llmdev_finish_list(&failed, -ENODEV);
	}
}

void llmdev_dma_fini(struct llmdev_device *ldev)
{
	unsigned int i;

	for (i = 0; i < LLMDEV_NUM_RINGS; i++)
		cancel_delayed_work_sync(&ldev->ring[i].timeout_work);
}
