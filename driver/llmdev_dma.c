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
 * @length: bytes it moves (for the file's fdinfo)
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
	u64 length;
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

/*
 * Two transfers may target the same user memory at once (nothing forbids
 * it, and the result is the user's business). The DMA API's debug checks
 * warn about such overlapping mappings unless the CPU syncs are made
 * explicitly, so they are: mapped and unmapped with DMA_ATTR_SKIP_CPU_SYNC,
 * synced for the device after mapping and for the CPU before unmapping.
 */
#define LLMDEV_DMA_ATTRS	DMA_ATTR_SKIP_CPU_SYNC

static enum dma_data_direction llmdev_job_dir(struct llmdev_job *job)
{
	return job->to_card ? DMA_TO_DEVICE : DMA_FROM_DEVICE;
}

/* Undo the pinning and mapping; the job struct stays for its fence. */
static void llmdev_job_release(struct llmdev_job *job)
{
	struct device *dev = llmdev_dma_dev(job->ring);

	if (job->descs)
		llmdev_job_free_descs(job);
	if (job->sgt.sgl) {
		dma_sync_sgtable_for_cpu(dev, &job->sgt, llmdev_job_dir(job));
		dma_unmap_sgtable(dev, &job->sgt, llmdev_job_dir(job),
				  LLMDEV_DMA_ATTRS);
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
	ret = dma_map_sgtable(dev, &job->sgt, llmdev_job_dir(job),
			      LLMDEV_DMA_ATTRS);
	if (ret) {
		sg_free_table(&job->sgt);
		job->sgt.sgl = NULL;
		return ret;
	}
	dma_sync_sgtable_for_device(dev, &job->sgt, llmdev_job_dir(job));
	return 0;
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

	if (ring->stopped)
		return;
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
	llmdev_usage_dma_end(job->fence.file, job->to_card, job->length,
			     job->status);
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

	if (!READ_ONCE(ring->stopped))
		llmdev_devlink_dma_hang(ring->ldev, ring->index, status);
	spin_lock(&ring->lock);
	if (ring->stopped) {
		/* the card is being reset: that deals with the ring */
		spin_unlock(&ring->lock);
		return;
	}
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
	unsigned int i;
	int idx;
	u32 err;

	if (!llmdev_enter(ldev, &idx))
		return;		/* gone, or being reset: that deals with it */
	err = llmdev_rd32(ldev, LLMDEV_REG_ERR_STATUS);
	if (err == ~0u) {
		llmdev_exit(ldev, idx);
		return;
	}
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
	llmdev_exit(ldev, idx);
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

/* The reply is written: the transfer gets its fence and goes to the card. */
static void llmdev_dma_submit_commit(struct llmdev_ucmd *ucmd)
{
	struct llmdev_job *job = ucmd->obj;
	struct llmdev_ring *ring = job->ring;
	struct llmdev_device *ldev = ring->ldev;
	int idx;

	llmdev_usage_dma_begin(job->fence.file);
	llmdev_fence_publish(&job->fence);
	idx = srcu_read_lock(&ldev->unplug_srcu);
	if (READ_ONCE(ldev->unplugged) ||
	    READ_ONCE(ldev->state) == LLMDEV_STATE_DEAD) {
		srcu_read_unlock(&ldev->unplug_srcu, idx);
		llmdev_job_finish(job, llmdev_gone(ldev) ?: -EIO);
		return;
	}
	/* while the card is being reset, the ring is stopped: it waits */
	spin_lock(&ring->lock);
	list_add_tail(&job->node, &ring->pending);
	llmdev_ring_post(ring);
	spin_unlock(&ring->lock);
	srcu_read_unlock(&ldev->unplug_srcu, idx);
}

static void llmdev_job_destroy(struct llmdev_job *job)
{
	llmdev_job_release(job);
	kfree(job);
}

static void llmdev_dma_submit_abort(struct llmdev_ucmd *ucmd)
{
	struct llmdev_job *job = ucmd->obj;

	llmdev_fence_unreserve(&job->fence);
	llmdev_job_destroy(job);
}

static void llmdev_job_free_fence(struct llmdev_fence *f)
{
	kfree(container_of(f, struct llmdev_job, fence));
}

int llmdev_dma_ioctl_submit(struct llmdev_ucmd *ucmd)
{
	struct llmdev_file *lf = ucmd->lf;
	struct llmdev_dma *d = ucmd->cmd;
	struct llmdev_region *region;
	struct llmdev_ring *ring;
	struct llmdev_job *job;
	int ret;

	if ((d->flags & ~LLMDEV_DMA_TO_CARD) || !d->length ||
	    d->length > LLMDEV_DMA_MAX_LENGTH)
		return -EINVAL;
	ring = llmdev_pick_ring(lf->ldev, d->flags & LLMDEV_DMA_TO_CARD, d->ring);
	if (!ring)
		return -EINVAL;
	if (d->user_addr + d->length < d->user_addr)
		return -EFAULT;

	job = kzalloc(sizeof(*job), GFP_KERNEL);
	if (!job)
		return -ENOMEM;
	ret = llmdev_fence_reserve(lf, &job->fence, llmdev_job_free_fence);
	if (ret) {
		kfree(job);
		return ret;
	}
	job->ring = ring;
	job->to_card = d->flags & LLMDEV_DMA_TO_CARD;
	job->length = d->length;
	region = llmdev_region_get(lf, d->handle, d->offset, d->length);
	if (IS_ERR(region)) {
		ret = PTR_ERR(region);
		goto err;
	}
	job->region = region;
	ret = llmdev_job_pin(job, d->user_addr, d->length);
	if (ret)
		goto err;
	ret = llmdev_job_build(job, region->ext.offset + d->offset);
	if (ret)
		goto err;

	d->fence = job->fence.seqno;
	ucmd->obj = job;
	ucmd->commit = llmdev_dma_submit_commit;
	ucmd->abort = llmdev_dma_submit_abort;
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

	for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
		spin_lock(&ldev->ring[i].lock);
		llmdev_ring_hw_init(&ldev->ring[i]);
		spin_unlock(&ldev->ring[i].lock);
	}
}

/**
 * llmdev_dma_stop() - post nothing more to the card
 * @ldev: the card, being reset or given up on
 *
 * Jobs stay where they are; the rings' watchdogs are cancelled.
 */
void llmdev_dma_stop(struct llmdev_device *ldev)
{
	unsigned int i;

	for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
		struct llmdev_ring *ring = &ldev->ring[i];

		spin_lock(&ring->lock);
		ring->stopped = true;
		spin_unlock(&ring->lock);
		cancel_delayed_work_sync(&ring->timeout_work);
	}
}

/*
 * Take the jobs off a stopped ring whose card no longer does DMA: every
 * job with descriptors on it, and with @all the queued ones too.
 */
static void llmdev_ring_take(struct llmdev_ring *ring, struct list_head *jobs,
			     bool all)
{
	struct llmdev_job *job, *tmp;

	spin_lock(&ring->lock);
	list_splice_tail_init(&ring->active, jobs);
	list_for_each_entry_safe(job, tmp, &ring->pending, node)
		if (all || job->posted)
			list_move_tail(&job->node, jobs);
	/* forget the descriptors: no completion will come for them */
	memset(ring->slot_job, 0, sizeof(ring->slot_job));
	ring->completed = ring->tail;
	spin_unlock(&ring->lock);
}

/**
 * llmdev_dma_fail_started() - fail the transfers the card had been given
 * @ldev: the card, stopped (llmdev_dma_stop()) and no longer doing DMA
 * @status: their fence status
 *
 * Transfers queued in the driver stay, for llmdev_dma_restart().
 */
void llmdev_dma_fail_started(struct llmdev_device *ldev, int status)
{
	unsigned int i;

	for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
		LIST_HEAD(failed);

		llmdev_ring_take(&ldev->ring[i], &failed, false);
		llmdev_finish_list(&failed, status);
	}
}

/**
 * llmdev_dma_fail_all() - fail every transfer
 * @ldev: the card, stopped and no longer doing DMA (removed, or dead)
 * @status: their fence status
 */
void llmdev_dma_fail_all(struct llmdev_device *ldev, int status)
{
	unsigned int i;

	for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
		LIST_HEAD(failed);

		llmdev_ring_take(&ldev->ring[i], &failed, true);
		llmdev_finish_list(&failed, status);
	}
}

/**
 * llmdev_dma_restart() - post again after a reset
 * @ldev: the card, reset and reprogrammed (llmdev_dma_hw_start())
 */
void llmdev_dma_restart(struct llmdev_device *ldev)
{
	unsigned int i;

	for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
		struct llmdev_ring *ring = &ldev->ring[i];

		spin_lock(&ring->lock);
		ring->stopped = false;
		llmdev_ring_post(ring);
		spin_unlock(&ring->lock);
	}
}

void llmdev_dma_fini(struct llmdev_device *ldev)
{
	unsigned int i;

	for (i = 0; i < LLMDEV_NUM_RINGS; i++)
		cancel_delayed_work_sync(&ldev->ring[i].timeout_work);
}
