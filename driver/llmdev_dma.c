// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: DMA rings, transfers and their fences.
 *
 * A request (one LLMDEV_DMA_SUBMIT, or one LLMDEV_DMA_BATCH of up to
 * LLMDEV_BATCH_MAX transfers) has one fence. Its transfers become
 * descriptors on at most two rings, one per direction: a job per ring,
 * posted with one doorbell and an interrupt requested only for its last
 * descriptor. The host side of a transfer is either user memory pinned and
 * mapped for that transfer only (split into descriptors of up to
 * LLMDEV_DESC_MAX_SG segments), or a registered buffer, pinned and mapped
 * once, whose descriptors point into the buffer's own SG table
 * (llmdev_buf.c). The card completes descriptors in order on each ring;
 * when the jobs of a request are done, its fence is signalled with the
 * first error.
 *
 * Completions are found by the ring interrupt's threaded handler, and by
 * waiters that poll the completion rings before they sleep
 * (llmdev_dma_poll()): under light load that saves the interrupt, the
 * handler's wake-up and the waiter's, which under TCG cost far more than a
 * small transfer does. A waiter polls for poll_us, or for as long as the
 * bytes queued on the card's rings should take, up to poll_max_us; with
 * more queued than that, it sleeps first, until half a window before they
 * should be done (the card's rate is learnt from the large jobs).
 *
 * A small submit-and-wait request (LLMDEV_BATCH_WAIT, at most
 * LLMDEV_QUIET_BYTES, poll_us set) is "quiet": its descriptors ask for no
 * interrupt at all, as io_uring's polled I/O does not, since its waiter
 * polls for it. Nothing is lost if the waiter stops polling first (the
 * poll window ran out, a signal, its timeout): every waiter that stops
 * polling while quiet jobs are out has the watchdogs of the busy rings
 * look for completions every jiffy until those jobs are done
 * (llmdev_dma_sweep()), a waiter that sleeps on while they are out wakes
 * every 100 us to look itself (llmdev_fence_sleep()), and a quiet job that
 * waited out a reset is posted with its interrupt.
 *
 * A per-ring watchdog resets a ring that has outstanding descriptors but
 * made no progress for dma_timeout_ms, and fails the jobs on it with
 * -ETIMEDOUT; a ring the card halted on an error is reset the same way
 * with -EIO.
 */
#include <linux/dma-mapping.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/sched/clock.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "llmdev_drv.h"

unsigned int llmdev_dma_timeout_ms = 10000;
module_param_named(dma_timeout_ms, llmdev_dma_timeout_ms, uint, 0644);
MODULE_PARM_DESC(dma_timeout_ms, "A ring that makes no progress for this long is reset and its transfers fail with -ETIMEDOUT (default 10000)");

unsigned int llmdev_poll_us = 200;
module_param_named(poll_us, llmdev_poll_us, uint, 0644);
MODULE_PARM_DESC(poll_us, "A wait for a transfer polls the completion rings this long before it sleeps; 0 never polls (default 200)");

static unsigned int llmdev_poll_max_us = 1000;
module_param_named(poll_max_us, llmdev_poll_max_us, uint, 0644);
MODULE_PARM_DESC(poll_max_us, "... or, with more queued, as long as the queued bytes should take, up to this; with still more, sleep until then first (default 1000)");

/*
 * The rate a waiter assumes for the bytes queued ahead, until the card's
 * own is known (llmdev_dma_rate_sample()): 4 bytes/ns. Rates are kept in
 * bytes per ns << LLMDEV_RATE_SHIFT.
 */
#define LLMDEV_POLL_BYTES_PER_NS	4
#define LLMDEV_RATE_SHIFT		8
#define LLMDEV_RATE_MIN_BYTES		SZ_1M

/* the most a submit-and-wait moves for its jobs to be quiet (see the top) */
#define LLMDEV_QUIET_BYTES	(256 * 1024)

/*
 * Interrupt moderation (hardware.md 4.8): a ring interrupts when this many
 * jobs have completed, or this long after the first of them, or when it
 * goes idle; so a lone transfer is signalled at once and a stream of them
 * in batches.
 */
static unsigned int llmdev_coalesce_count = 8;
module_param_named(coalesce_count, llmdev_coalesce_count, uint, 0444);
MODULE_PARM_DESC(coalesce_count, "Ring interrupt after this many completed transfers, at the latest (1..65535; default 8; 0 or 1: after each)");

static unsigned int llmdev_coalesce_usecs = 50;
module_param_named(coalesce_usecs, llmdev_coalesce_usecs, uint, 0444);
MODULE_PARM_DESC(coalesce_usecs, "... or this many microseconds after the first of them (0..65535; default 50)");

/*
 * Plain memory (not registered) is pinned from submission to completion.
 * Transfers queue without bound on the card's side (LLMDEV_MAX_FENCES a
 * file, files without number), so what they pin is bounded here, for all
 * cards together (it is the host's memory): a submission that would go
 * past this waits for transfers to finish. Registered buffers count
 * against RLIMIT_MEMLOCK instead.
 */
static unsigned int llmdev_max_pinned_mb;
module_param_named(max_pinned_mb, llmdev_max_pinned_mb, uint, 0644);
MODULE_PARM_DESC(max_pinned_mb, "MiB of plain (unregistered) user memory the queued transfers of all cards may hold pinned; a submission past it waits for some to finish (default 0: a quarter of RAM)");

/*
 * A request's transfers go to the card as vector descriptors (hardware.md
 * 4.2.1) where it has them: runs of up to a page of transfers (170 with
 * 4 KiB pages), each run one descriptor, one completion. The card's work
 * and the host's for each descriptor, its fetch and completion, are then
 * done once a run instead of once a transfer: what many small blocks, KV
 * blocks for one, cost beyond their copy.
 */
static bool llmdev_desc_vec = true;
module_param_named(desc_vec, llmdev_desc_vec, bool, 0644);
MODULE_PARM_DESC(desc_vec, "Send the transfers of a batch as vector descriptors, where the card has them (default Y)");

/* entries of a vector table: a page of them at most */
#define LLMDEV_VEC_ENTRIES	min_t(u32, PAGE_SIZE / LLMDEV_VEC_SIZE, \
				      LLMDEV_DESC_MAX_SG)
/* a job of fewer descriptors than this keeps them */
#define LLMDEV_VEC_MIN_DESCS	4

static DEFINE_SPINLOCK(llmdev_pin_lock);	/* protects llmdev_pinned */
/* bytes of plain memory pinned for requests not finished, on all cards */
static u64 llmdev_pinned;
static DECLARE_WAIT_QUEUE_HEAD(llmdev_pin_wq);

#define LLMDEV_RING_MASK	(LLMDEV_RING_ENTRIES - 1)
#define LLMDEV_MAX_SEGMENT	(SZ_1G)

/*
 * Two transfers may target the same user memory at once (nothing forbids
 * it, and the result is the user's business). The DMA API's debug checks
 * warn about such overlapping mappings unless the CPU syncs are made
 * explicitly, so they are: mapped and unmapped with DMA_ATTR_SKIP_CPU_SYNC,
 * synced for the device after mapping and for the CPU before unmapping.
 */
#define LLMDEV_DMA_ATTRS	DMA_ATTR_SKIP_CPU_SYNC

/**
 * struct llmdev_xfer - one transfer's hold on its memory
 * @region: the HBM region
 * @region_ref: this transfer holds @region's busy count; else an earlier
 *              transfer of its request does (the same region, looked up
 *              once), and lets go of it at the same time
 * @buf: the registered buffer (busy count held), or NULL
 * @buf_offset: where in @buf the transfer starts
 * @length: its bytes
 * @to_card: direction
 * @pages: pinned user pages, without @buf
 * @nr_pages: number of @pages
 * @sgt: @pages mapped for DMA
 */
struct llmdev_xfer {
	struct llmdev_region *region;
	bool region_ref;
	struct llmdev_buf *buf;
	u64 buf_offset;
	u64 length;
	bool to_card;
	struct page **pages;
	unsigned int nr_pages;
	struct sg_table sgt;
};

/**
 * struct llmdev_job - the descriptors of a request on one ring
 * @req: its request
 * @node: in llmdev_ring.pending until fully posted, then llmdev_ring.active
 * @ring: the ring
 * @descs: the descriptors
 * @nr_desc: number of @descs (0: the request uses no such ring)
 * @posted: descriptors posted
 * @done: descriptors completed
 * @status: 0 or the first error of a descriptor
 * @quiet: posted with no interrupt asked for (counted in
 *         llmdev_device.quiet_jobs until it finishes)
 * @queued: its bytes, counted in llmdev_device.dma_queued until it finishes
 * @post_ns: local_clock() when it was queued
 * @one_desc: @descs when there is one (no allocation for a small transfer)
 */
struct llmdev_job {
	struct llmdev_req *req;
	struct list_head node;
	struct llmdev_ring *ring;
	struct llmdev_job_desc *descs;
	unsigned int nr_desc;
	unsigned int posted;
	unsigned int done;
	int status;
	bool quiet;
	u64 queued;
	u64 post_ns;
	struct llmdev_job_desc one_desc;
};

/**
 * struct llmdev_req - a request: the unit a fence tracks
 * @fence: its fence, in the submitter's file
 * @ref: held by the fence (until consumed) and by the finishing path
 * @ldev: the card
 * @job: its jobs: [0] host to card, [1] card to host
 * @pending: jobs not finished
 * @status: 0 or the first error
 * @nr_xfers: number of @xfers
 * @bytes: bytes it moves to the card [0] and from it [1] (fdinfo)
 * @rows: rows of its transfers (one for a transfer without
 *        LLMDEV_OP_ROWS), at most LLMDEV_BATCH_MAX
 * @quiet: its jobs ask for no interrupt (a small LLMDEV_BATCH_WAIT)
 * @pinned: bytes it counts in what is pinned on all cards (llmdev_pin_reserve())
 * @xfers: the transfers' holds on memory
 *
 * A request is not cleared when it is allocated: llmdev_req_init() sets
 * every field of it, its jobs and its transfers.
 */
struct llmdev_req {
	struct llmdev_fence fence;
	struct kref ref;
	struct llmdev_device *ldev;
	struct llmdev_job job[2];
	atomic_t pending;
	int status;
	unsigned int nr_xfers;
	u64 bytes[2];
	u32 rows;
	bool quiet;
	u64 pinned;
	struct llmdev_xfer xfers[];
};

static struct device *llmdev_dma_dev(struct llmdev_device *ldev)
{
	return &ldev->pdev->dev;
}

/* ---- requests: building and releasing ------------------------------------ */

/* Free the table a descriptor owns, if any. */
static void llmdev_job_desc_free(struct llmdev_device *ldev,
				 struct llmdev_job_desc *jd)
{
	if (jd->vec)
		dma_free_coherent(llmdev_dma_dev(ldev),
				  jd->count * LLMDEV_VEC_SIZE, jd->vtable,
				  jd->addr);
	else if (jd->table)
		dma_free_coherent(llmdev_dma_dev(ldev),
				  jd->count * LLMDEV_SG_SIZE, jd->table,
				  jd->addr);
	jd->vec = false;
	jd->table = NULL;
}

/* The descriptors are no longer on a ring: free them and their SG tables. */
static void llmdev_req_free_descs(struct llmdev_req *req)
{
	unsigned int j, i;

	for (j = 0; j < 2; j++) {
		struct llmdev_job *job = &req->job[j];

		for (i = 0; job->descs && i < job->nr_desc; i++)
			llmdev_job_desc_free(req->ldev, &job->descs[i]);
		if (job->descs != &job->one_desc)
			kvfree(job->descs);
		job->descs = NULL;
	}
}

/*
 * Requests of up to LLMDEV_REQ_CACHED_XFERS transfers, the small ones whose
 * cost is all latency, come from a cache of their own. Its constructor
 * keeps the slab allocator from clearing each object it hands out, which
 * it does with init_on_alloc (Debian's default) as kzalloc() would:
 * llmdev_req_init() sets every field instead, of requests from either
 * allocator. Under TCG a memset() of the 512-byte object kvzalloc() gave
 * ran as 64 translated blocks; the cache took a registered 4 KiB
 * submit-and-wait from 6.86-7.07 us to 6.49-6.64 us (four alternating
 * rounds in one VM, null ioctl 1.33-1.39 us).
 */
#define LLMDEV_REQ_CACHED_XFERS	4

static struct kmem_cache *llmdev_req_cache;

static size_t llmdev_req_size(unsigned int nr_xfers)
{
	struct llmdev_req *req;

	return struct_size(req, xfers, nr_xfers);
}

static void llmdev_req_ctor(void *obj)
{
	memset(obj, 0, llmdev_req_size(LLMDEV_REQ_CACHED_XFERS));
}

int llmdev_dma_cache_init(void)
{
	llmdev_req_cache = kmem_cache_create("llmdev_req",
					     llmdev_req_size(LLMDEV_REQ_CACHED_XFERS),
					     0, 0, llmdev_req_ctor);
	return llmdev_req_cache ? 0 : -ENOMEM;
}

void llmdev_dma_cache_fini(void)
{
	kmem_cache_destroy(llmdev_req_cache);
}

/*
 * Every field of a new request, so that nothing is left over from the
 * object's last use (a field added to struct llmdev_req is set here).
 */
static void llmdev_req_init(struct llmdev_req *req, struct llmdev_device *ldev,
			    unsigned int nr_xfers)
{
	unsigned int i, j;

	INIT_LIST_HEAD(&req->fence.list);
	INIT_HLIST_NODE(&req->fence.hnode);
	req->fence.seqno = 0;
	kref_init(&req->ref);
	req->ldev = ldev;
	for (j = 0; j < 2; j++) {
		struct llmdev_job *job = &req->job[j];

		job->req = req;
		INIT_LIST_HEAD(&job->node);
		job->ring = NULL;
		job->descs = NULL;
		job->nr_desc = 0;
		job->posted = 0;
		job->done = 0;
		job->status = 0;
		job->quiet = false;
		job->queued = 0;
		job->post_ns = 0;
		job->one_desc.addr = 0;
		job->one_desc.hbm_addr = 0;
		job->one_desc.length = 0;
		job->one_desc.count = 0;
		job->one_desc.vec = false;
		job->one_desc.table = NULL;
	}
	atomic_set(&req->pending, 0);
	req->status = 0;
	req->nr_xfers = nr_xfers;
	req->bytes[0] = 0;
	req->bytes[1] = 0;
	req->rows = 0;
	req->quiet = false;
	req->pinned = 0;
	for (i = 0; i < nr_xfers; i++) {
		struct llmdev_xfer *x = &req->xfers[i];

		x->region = NULL;
		x->region_ref = false;
		x->buf = NULL;
		x->buf_offset = 0;
		x->length = 0;
		x->to_card = false;
		x->pages = NULL;
		x->nr_pages = 0;
		x->sgt.sgl = NULL;
		x->sgt.nents = 0;
		x->sgt.orig_nents = 0;
	}
}

static struct llmdev_req *llmdev_req_mem_alloc(struct llmdev_device *ldev,
					       unsigned int nr_xfers)
{
	struct llmdev_req *req;

	/*
	 * A batch's request grows with its ops (up to LLMDEV_BATCH_MAX):
	 * charged to the caller's memory cgroup, as its descriptors are. The
	 * small ones, LLMDEV_MAX_FENCES a file at most, are not: charging
	 * costs their latency more than they weigh.
	 */
	if (nr_xfers <= LLMDEV_REQ_CACHED_XFERS)
		req = kmem_cache_alloc(llmdev_req_cache, GFP_KERNEL);
	else
		req = kvmalloc(llmdev_req_size(nr_xfers), GFP_KERNEL_ACCOUNT);
	if (req)
		llmdev_req_init(req, ldev, nr_xfers);
	return req;
}

static void llmdev_req_mem_free(struct llmdev_req *req)
{
	if (req->nr_xfers <= LLMDEV_REQ_CACHED_XFERS)
		kmem_cache_free(llmdev_req_cache, req);
	else
		kvfree(req);
}

static void llmdev_req_release(struct kref *ref)
{
	llmdev_req_mem_free(container_of(ref, struct llmdev_req, ref));
}

static void llmdev_req_put(struct llmdev_req *req)
{
	kref_put(&req->ref, llmdev_req_release);
}

static void llmdev_req_free_fence(struct llmdev_fence *f)
{
	llmdev_req_put(container_of(f, struct llmdev_req, fence));
}

/* Give back what a transfer pinned and mapped for itself, and its buffer. */
static void llmdev_xfer_unpin(struct llmdev_device *ldev, struct llmdev_xfer *x)
{
	enum dma_data_direction dir = x->to_card ? DMA_TO_DEVICE :
				      DMA_FROM_DEVICE;

	/*
	 * What the card wrote into a registered buffer, to the CPU; and the
	 * buffer is free to unregister before the fence says the transfer
	 * is over (a waiter unregisters it at once, and must not see -EBUSY)
	 */
	if (x->buf) {
		if (!x->to_card)
			llmdev_buf_sync(ldev, x->buf, x->buf_offset, x->length,
					true);
		llmdev_buf_put(x->buf);
		x->buf = NULL;
	}
	if (x->sgt.sgl) {
		dma_sync_sgtable_for_cpu(llmdev_dma_dev(ldev), &x->sgt, dir);
		dma_unmap_sgtable(llmdev_dma_dev(ldev), &x->sgt, dir,
				  LLMDEV_DMA_ATTRS);
		sg_free_table(&x->sgt);
		x->sgt.sgl = NULL;
	}
	if (x->pages) {
		unpin_user_pages_dirty_lock(x->pages, x->nr_pages, !x->to_card);
		kvfree(x->pages);
		x->pages = NULL;
	}
}

/* Let go of the region (and a buffer still held); last, after the fence is signalled. */
static void llmdev_xfer_put(struct llmdev_device *ldev, struct llmdev_xfer *x)
{
	if (x->buf) {
		llmdev_buf_put(x->buf);
		x->buf = NULL;
	}
	if (x->region_ref)
		llmdev_region_put(ldev, x->region);
	x->region = NULL;
	x->region_ref = false;
}

/* ---- the bound on pinned plain memory ---------------------------------- */

static u64 llmdev_pin_cap(void)
{
	unsigned int mb = READ_ONCE(llmdev_max_pinned_mb);

	return mb ? (u64)mb << 20 : ((u64)totalram_pages() << PAGE_SHIFT) / 4;
}

/*
 * An op of plain memory (not a registered buffer) that is pinned: one of a
 * bad length fails later, in llmdev_req_add(), and pins nothing.
 */
static bool llmdev_op_plain(const struct llmdev_dma_op *op)
{
	return !(op->flags & LLMDEV_OP_BUF) && op->length &&
	       op->length <= LLMDEV_DMA_MAX_LENGTH;
}

/* The bytes of the pages @count ops of plain memory pin, as xfer_pin() does. */
static u64 llmdev_plain_pinned(const struct llmdev_dma_op *ops,
			       unsigned int count)
{
	u64 bytes = 0;
	unsigned int i;

	for (i = 0; i < count; i++) {
		const struct llmdev_dma_op *op = &ops[i];

		/* counted even when its address wraps: its pin fails then */
		if (!llmdev_op_plain(op))
			continue;
		bytes += PFN_UP(offset_in_page(op->user_addr) + op->length) <<
			 PAGE_SHIFT;
	}
	return bytes;
}

/* Is there room for @bytes? Nothing pinned: always (one larger request). */
static bool llmdev_pin_room(u64 bytes)
{
	u64 pinned = READ_ONCE(llmdev_pinned);

	return !pinned || pinned + bytes <= llmdev_pin_cap();
}

static bool llmdev_pin_try(u64 bytes)
{
	bool ok;

	spin_lock(&llmdev_pin_lock);
	ok = llmdev_pin_room(bytes);
	if (ok)
		llmdev_pinned += bytes;
	spin_unlock(&llmdev_pin_lock);
	return ok;
}

/* A card is going away: its waiters give up (llmdev_pin_reserve()). */
void llmdev_dma_wake_pinners(void)
{
	wake_up_all(&llmdev_pin_wq);
}

/*
 * Count @bytes of plain memory in what is pinned, waiting for room.
 * Not in the unplug section: an unplug wakes the waiter instead.
 * Return: 0, -ERESTARTSYS (a signal: nothing was started, the call may be
 * restarted), -ENODEV.
 */
static int llmdev_pin_reserve(struct llmdev_device *ldev, u64 bytes)
{
	int ret;

	if (!bytes)
		return 0;
	for (;;) {
		if (llmdev_pin_try(bytes))
			return 0;
		if (READ_ONCE(ldev->unplugged))
			return -ENODEV;
		ret = wait_event_interruptible(llmdev_pin_wq,
					       llmdev_pin_room(bytes) ||
					       READ_ONCE(ldev->unplugged));
		if (ret)
			return ret;
	}
}

static void llmdev_pin_release(u64 bytes)
{
	if (!bytes)
		return;
	spin_lock(&llmdev_pin_lock);
	llmdev_pinned -= bytes;
	spin_unlock(&llmdev_pin_lock);
	/* its barrier pairs with the one of the waiter's wait_event() */
	if (wq_has_sleeper(&llmdev_pin_wq))
		wake_up_all(&llmdev_pin_wq);
}

/* Undo a request that was never queued (its fence is not published). */
static void llmdev_req_destroy(struct llmdev_req *req)
{
	unsigned int i;

	llmdev_req_free_descs(req);
	for (i = 0; i < req->nr_xfers; i++) {
		llmdev_xfer_unpin(req->ldev, &req->xfers[i]);
		llmdev_xfer_put(req->ldev, &req->xfers[i]);
	}
	llmdev_pin_release(req->pinned);
	llmdev_fence_unreserve(&req->fence);
	llmdev_req_put(req);
}

/*
 * Signal a finished request's fence. Sleeps (unpins pages). The regions
 * are let go last, so that when LLMDEV_HBM_FREE returns, the fences of
 * the transfers it waited for are already signalled.
 */
static void llmdev_req_finish(struct llmdev_req *req)
{
	unsigned int i;

	llmdev_req_free_descs(req);
	for (i = 0; i < req->nr_xfers; i++)
		llmdev_xfer_unpin(req->ldev, &req->xfers[i]);
	/* before the fence: its waiter may submit at once */
	llmdev_pin_release(req->pinned);
	kref_get(&req->ref);
	llmdev_usage_dma_end(req->fence.file, req->nr_xfers, req->bytes,
			     READ_ONCE(req->status));
	/* a waiter may drop the fence's reference from here on */
	llmdev_fence_signal(&req->fence, READ_ONCE(req->status));
	for (i = 0; i < req->nr_xfers; i++)
		llmdev_xfer_put(req->ldev, &req->xfers[i]);
	llmdev_req_put(req);
}

/* The job asks for its interrupt from now on, or has finished. */
static void llmdev_job_unquiet(struct llmdev_job *job)
{
	if (job->quiet) {
		job->quiet = false;
		atomic_dec(&job->req->ldev->quiet_jobs);
	}
}

static void llmdev_job_finish(struct llmdev_job *job, int status)
{
	struct llmdev_req *req = job->req;

	llmdev_job_unquiet(job);
	if (job->queued) {
		atomic64_sub(job->queued, &req->ldev->dma_queued);
		job->queued = 0;
	}
	if (status && !job->status)
		job->status = status;
	if (job->status)
		cmpxchg(&req->status, 0, job->status);
	if (atomic_dec_and_test(&req->pending))
		llmdev_req_finish(req);
}

/*
 * Pin @length bytes of user memory at @uaddr for one transfer, into
 * @x->pages. Needs nothing of the card: done before the unplug section,
 * since a fault may wait on userspace (userfaultfd, FUSE) as long as it
 * likes, and an unplug must not wait for that.
 */
static int llmdev_xfer_pin(struct llmdev_xfer *x, bool to_card, u64 uaddr,
			   u64 length)
{
	unsigned int first = offset_in_page(uaddr);
	int pinned;

	if (uaddr + length < uaddr)
		return -EFAULT;
	x->to_card = to_card;
	x->nr_pages = DIV_ROUND_UP(first + length, PAGE_SIZE);
	/*
	 * The page array and the scatterlist grow with what userspace asks
	 * to move: charged to its memory cgroup (__GFP_ACCOUNT), and bounded
	 * per batch by LLMDEV_BATCH_MAX_PLAIN_BYTES.
	 */
	x->pages = kvmalloc_array(x->nr_pages, sizeof(*x->pages),
				  GFP_KERNEL_ACCOUNT);
	if (!x->pages)
		return -ENOMEM;
	pinned = pin_user_pages_fast(uaddr & PAGE_MASK, x->nr_pages,
				     x->to_card ? 0 : FOLL_WRITE, x->pages);
	if (pinned != x->nr_pages) {
		if (pinned > 0)
			unpin_user_pages(x->pages, pinned);
		kvfree(x->pages);
		x->pages = NULL;
		return pinned == -ENOMEM ? -ENOMEM : -EFAULT;
	}
	return 0;
}

/* Map for the card the pages llmdev_xfer_pin() pinned (in the section). */
static int llmdev_xfer_map(struct llmdev_device *ldev, struct llmdev_xfer *x,
			   u64 uaddr, u64 length)
{
	struct device *dev = llmdev_dma_dev(ldev);
	enum dma_data_direction dir = x->to_card ? DMA_TO_DEVICE :
				      DMA_FROM_DEVICE;
	unsigned int first = offset_in_page(uaddr);
	int ret;

	ret = sg_alloc_table_from_pages_segment(&x->sgt, x->pages, x->nr_pages,
						first, length,
						dma_get_max_seg_size(dev),
						GFP_KERNEL_ACCOUNT);
	if (ret)
		return ret;
	ret = dma_map_sgtable(dev, &x->sgt, dir, LLMDEV_DMA_ATTRS);
	if (ret) {
		sg_free_table(&x->sgt);
		x->sgt.sgl = NULL;
		/* the host's mapping (IOMMU, bounce buffers), not the card's -EIO */
		return -ENOMEM;
	}
	dma_sync_sgtable_for_device(dev, &x->sgt, dir);
	return 0;
}

/*
 * The descriptors of a pinned transfer: its mapped segments, up to
 * LLMDEV_DESC_MAX_SG per descriptor, each group of more than one with an
 * SG table of its own. With @d NULL, only count them.
 */
static int llmdev_xfer_descs(struct llmdev_device *ldev, struct llmdev_xfer *x,
			     u64 hbm, struct llmdev_job_desc *d,
			     unsigned int *n)
{
	unsigned int nents = x->sgt.nents, i;
	struct scatterlist *sg;

	if (!d) {
		*n = DIV_ROUND_UP(nents, LLMDEV_DESC_MAX_SG);
		return 0;
	}
	*n = 0;
	for_each_sgtable_dma_sg(&x->sgt, sg, i) {
		struct llmdev_job_desc *jd = &d[i / LLMDEV_DESC_MAX_SG];
		unsigned int k = i % LLMDEV_DESC_MAX_SG;

		if (!k) {
			unsigned int cnt = min_t(unsigned int, nents - i,
						 LLMDEV_DESC_MAX_SG);

			jd->hbm_addr = hbm;
			jd->length = 0;
			jd->count = cnt > 1 ? cnt : 0;
			jd->vec = false;
			jd->table = NULL;
			(*n)++;
			if (cnt > 1) {
				jd->table = dma_alloc_coherent(llmdev_dma_dev(ldev),
							       cnt * LLMDEV_SG_SIZE,
							       &jd->addr,
							       GFP_KERNEL);
				if (!jd->table) {
					jd->count = 0;
					return -ENOMEM;
				}
				jd->sg = jd->table;
			} else {
				jd->addr = sg_dma_address(sg);
			}
		}
		if (jd->table) {
			jd->table[k].addr = cpu_to_le64(sg_dma_address(sg));
			jd->table[k].length = cpu_to_le32(sg_dma_len(sg));
			jd->table[k].reserved = 0;
		}
		jd->length += sg_dma_len(sg);
		hbm += sg_dma_len(sg);
	}
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
	/*
	 * Flush the posted reset write (hardware.md 4.7): once the read
	 * returns, the ring does no more DMA, so its completion ring may be
	 * zeroed and the host pages of the jobs it had may be unpinned.
	 */
	llmdev_rd32(ldev, llmdev_ring_reg(ring, LLMDEV_RING_STATUS));
	memset(ring->cmpl, 0, LLMDEV_RING_ENTRIES * LLMDEV_CMPL_SIZE);
	memset(ring->slot_job, 0, LLMDEV_RING_ENTRIES * sizeof(*ring->slot_job));
	ring->tail = 0;
	ring->completed = 0;
	llmdev_wr64(ldev, llmdev_ring_reg(ring, LLMDEV_RING_DESC_BASE),
		    ring->desc_dma);
	llmdev_wr64(ldev, llmdev_ring_reg(ring, LLMDEV_RING_CMPL_BASE),
		    ring->cmpl_dma);
	llmdev_wr32(ldev, llmdev_ring_reg(ring, LLMDEV_RING_SIZE),
		    LLMDEV_RING_ENTRIES);
	llmdev_wr32(ldev, llmdev_ring_reg(ring, LLMDEV_RING_IRQ_COALESCE),
		    min(llmdev_coalesce_count, 0xffffu) |
		    min(llmdev_coalesce_usecs, 0xffffu) << 16);
	llmdev_wr32(ldev, llmdev_ring_reg(ring, LLMDEV_RING_CTRL),
		    LLMDEV_RING_CTRL_ENABLE);
}

/*
 * Post what fits from the pending jobs; one doorbell. Caller holds
 * ring->lock. A job asks for an interrupt after its last descriptor only;
 * but when the ring fills up before a job is all posted, the descriptors
 * that made it are asked for one too (half way and at the end), or nobody
 * would come back to post the rest. Nothing is posted once a reset has
 * begun, before the ring is stopped too: what is pending then runs after
 * it (llmdev_dma_restart()), as LLMDEV_DMA_SUBMIT says, not to fail with
 * what the card had started.
 */
static void llmdev_ring_post(struct llmdev_ring *ring)
{
	u32 space = LLMDEV_RING_ENTRIES - (ring->tail - ring->completed);
	u32 old_tail = ring->tail, n;
	struct llmdev_job *job, *tmp;

	if (ring->stopped ||
	    READ_ONCE(ring->ldev->state) == LLMDEV_STATE_RESETTING)
		return;
	list_for_each_entry_safe(job, tmp, &ring->pending, node) {
		while (space && job->posted < job->nr_desc) {
			struct llmdev_job_desc *jd = &job->descs[job->posted];
			struct llmdev_hw_desc *d;
			u32 slot = ring->tail & LLMDEV_RING_MASK;
			u32 flags = jd->vec ? LLMDEV_DESC_F_VEC :
				    jd->count ? LLMDEV_DESC_F_SGL : 0;

			if (job->posted == job->nr_desc - 1 && !job->quiet)
				flags |= LLMDEV_DESC_F_IRQ;
			d = &ring->desc[slot];
			d->host_addr = cpu_to_le64(jd->addr);
			d->hbm_addr = cpu_to_le64(jd->hbm_addr);
			d->length = cpu_to_le32(jd->length);
			d->flags = cpu_to_le32(flags);
			d->sg_count = cpu_to_le32(jd->count);
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
	n = ring->tail - old_tail;
	if (!n)
		return;
	if (!list_empty(&ring->pending)) {
		ring->desc[(ring->tail - 1) & LLMDEV_RING_MASK].flags |=
			cpu_to_le32(LLMDEV_DESC_F_IRQ);
		ring->desc[(old_tail + n / 2) & LLMDEV_RING_MASK].flags |=
			cpu_to_le32(LLMDEV_DESC_F_IRQ);
	}
	dma_wmb();
	llmdev_wr32(ring->ldev, llmdev_ring_reg(ring, LLMDEV_RING_TAIL),
		    ring->tail);
	if (old_tail == ring->completed) {
		unsigned long delay = msecs_to_jiffies(llmdev_dma_timeout_ms);
		struct delayed_work *dw = &ring->timeout_work;

		/*
		 * An idle ring became busy: the watchdog counts from now. One
		 * armed to fire no later does (it finds the progress since and
		 * waits out the rest), and costs less than re-arming it.
		 */
		ring->last_progress = jiffies;
		if (!delayed_work_pending(dw) ||
		    time_after(READ_ONCE(dw->timer.expires), jiffies + delay))
			mod_delayed_work(system_wq, dw, delay);
	}
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

/* Is there a completion the host has not consumed? Caller holds the lock. */
static bool llmdev_ring_has_cmpl(struct llmdev_ring *ring)
{
	u32 slot = ring->completed & LLMDEV_RING_MASK;
	u16 phase = (ring->completed / LLMDEV_RING_ENTRIES) & 1 ?
		    0 : LLMDEV_CMPL_F_PHASE;

	return ring->completed != ring->tail &&
	       (le16_to_cpu(READ_ONCE(ring->cmpl[slot].flags)) &
		LLMDEV_CMPL_F_PHASE) == phase;
}

/*
 * Learn the card's rate from the jobs of LLMDEV_RATE_MIN_BYTES or more: a
 * job's bytes over the time since it could start moving (queued, or the
 * ring's previous job done). Caller holds the ring's lock.
 */
static void llmdev_dma_rate_sample(struct llmdev_ring *ring,
				   struct llmdev_job *job)
{
	struct llmdev_device *ldev = ring->ldev;
	u64 now = local_clock(), start = max(job->post_ns, ring->done_ns);
	u64 rate, old;

	ring->done_ns = now;
	if (job->queued < LLMDEV_RATE_MIN_BYTES || now <= start)
		return;
	rate = div64_u64(job->queued << LLMDEV_RATE_SHIFT, now - start);
	old = READ_ONCE(ldev->dma_rate);
	WRITE_ONCE(ldev->dma_rate, old ? (old * 7 + rate) / 8 : rate);
}

/* How long the bytes queued on the card's rings should take, in ns. */
static u64 llmdev_dma_expect_ns(struct llmdev_device *ldev)
{
	u64 rate = READ_ONCE(ldev->dma_rate);

	if (!rate)
		rate = (u64)LLMDEV_POLL_BYTES_PER_NS << LLMDEV_RATE_SHIFT;
	return div64_u64((u64)atomic64_read(&ldev->dma_queued) <<
			 LLMDEV_RATE_SHIFT, rate);
}

/**
 * llmdev_dma_poll_delay() - how long a waiter sleeps before it polls
 * @ldev: the card
 *
 * Return: 0 when the queued bytes should be done within poll_max_us; else
 * until half a poll window before they should be, in ns.
 */
u64 llmdev_dma_poll_delay(struct llmdev_device *ldev)
{
	u64 max = (u64)READ_ONCE(llmdev_poll_max_us) * NSEC_PER_USEC;
	u64 expect = llmdev_dma_expect_ns(ldev);

	return expect > max ? expect - max / 2 : 0;
}

void llmdev_dma_handle_ring(struct llmdev_ring *ring)
{
	LIST_HEAD(finished);

	spin_lock(&ring->lock);
	while (llmdev_ring_has_cmpl(ring)) {
		u32 slot = ring->completed & LLMDEV_RING_MASK;
		struct llmdev_hw_cmpl *c = &ring->cmpl[slot];
		struct llmdev_job *job;

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
		if (++job->done == job->nr_desc) {
			llmdev_dma_rate_sample(ring, job);
			list_move_tail(&job->node, &finished);
		}
	}
	llmdev_ring_post(ring);
	spin_unlock(&ring->lock);
	llmdev_finish_list(&finished, 0);
}

/**
 * llmdev_dma_poll() - consume the completions the card has written
 * @ldev: the card
 *
 * For waiters that poll instead of sleeping until the interrupt's handler
 * runs. Finished requests are finished (and their fences signalled) here.
 *
 * Return: some ring has descriptors outstanding (worth polling again).
 */
bool llmdev_dma_poll(struct llmdev_device *ldev)
{
	bool busy = false;
	unsigned int i;

	for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
		struct llmdev_ring *ring = &ldev->ring[i];

		/* a peek without the lock: the handler rechecks under it */
		if (READ_ONCE(ring->completed) == READ_ONCE(ring->tail))
			continue;
		busy = true;
		llmdev_dma_handle_ring(ring);
	}
	return busy;
}

/**
 * llmdev_dma_sweep() - a waiter stops polling: quiet jobs must still be found
 * @ldev: the card
 *
 * While quiet jobs (no interrupt asked for) are out, the watchdog of every
 * busy ring looks for completions every jiffy until they are done.
 */
void llmdev_dma_sweep(struct llmdev_device *ldev)
{
	unsigned int i;
	int idx;

	if (!atomic_read(&ldev->quiet_jobs) || !llmdev_enter(ldev, &idx))
		return;
	for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
		struct llmdev_ring *ring = &ldev->ring[i];

		spin_lock(&ring->lock);
		if (!ring->stopped && ring->completed != ring->tail) {
			ring->sweep = true;
			mod_delayed_work(system_wq, &ring->timeout_work, 1);
		}
		spin_unlock(&ring->lock);
	}
	llmdev_exit(ldev, idx);
}

/**
 * llmdev_dma_poll_until() - poll while @done is false, for a while
 * @ldev: the card
 * @done: the condition
 * @arg: for @done
 *
 * For poll_us, or as long as the bytes queued on the rings should take (at
 * the card's rate as last measured), up to poll_max_us: a wake-up after a
 * sleep costs more than the polling (under TCG on a busy host, some 100 us
 * each, and a sleeping waiter needs two or three of them).
 *
 * Return: @done became true.
 */
bool llmdev_dma_poll_until(struct llmdev_device *ldev,
			   bool (*done)(void *arg), void *arg)
{
	u64 ns = (u64)READ_ONCE(llmdev_poll_us) * NSEC_PER_USEC;
	u64 max = (u64)READ_ONCE(llmdev_poll_max_us) * NSEC_PER_USEC;
	u64 end;
	bool busy;

	if (llmdev_gone(ldev))
		return false;
	/*
	 * The caller has just found @done false (or slept until it became
	 * true). A small transfer the card did at its doorbell is complete
	 * already: a first look before the clock is read (two reads a
	 * transfer).
	 */
	busy = llmdev_dma_poll(ldev);
	if (done(arg))
		return true;
	if (!busy)
		return false;
	ns = max(ns, min(max, llmdev_dma_expect_ns(ldev)));
	end = local_clock() + ns;

	for (;;) {
		if (local_clock() >= end || llmdev_gone(ldev))
			return false;
		busy = llmdev_dma_poll(ldev);
		if (done(arg))
			break;
		/* nothing on the rings: the fence is not a transfer's */
		if (!busy)
			return false;
		/*
		 * Only when still waiting: under TCG a PAUSE leaves the
		 * translated code, about as dear as a small transfer.
		 */
		if (need_resched())
			cond_resched();
		else
			cpu_relax();
	}
	return true;
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
	if (!atomic_read(&ring->ldev->quiet_jobs) ||
	    ring->completed == ring->tail)
		ring->sweep = false;
	/* a post while this ran may have armed it for later than a sweep */
	if (ring->completed != ring->tail && ring->sweep)
		mod_delayed_work(system_wq, &ring->timeout_work, 1);
	else if (ring->completed != ring->tail)
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

/* ---- submission ------------------------------------------------------------ */

/*
 * The ring of a direction: @ring, or with LLMDEV_RING_ANY the direction's
 * next ring in turn, per card. (One counter for both directions, which a
 * request consults once each, gave every request the same ring of each.)
 */
static struct llmdev_ring *llmdev_pick_ring(struct llmdev_device *ldev,
					    bool to_card, u32 ring)
{
	unsigned int base = to_card ? 0 : LLMDEV_NUM_H2C_RINGS;
	unsigned int n = to_card ? LLMDEV_NUM_H2C_RINGS :
			 LLMDEV_NUM_RINGS - LLMDEV_NUM_H2C_RINGS;
	atomic_t *next = &ldev->ring_next[to_card ? 0 : 1];

	if (ring == LLMDEV_RING_ANY)
		ring = (unsigned int)atomic_inc_return(next) % n;
	if (ring >= n)
		return NULL;
	return &ldev->ring[base + ring];
}

static struct llmdev_req *llmdev_req_alloc(struct llmdev_file *lf,
					   unsigned int nr_xfers, int *err)
{
	struct llmdev_req *req;

	req = llmdev_req_mem_alloc(lf->ldev, nr_xfers);
	if (!req) {
		*err = -ENOMEM;
		return NULL;
	}
	*err = llmdev_fence_reserve(lf, &req->fence, llmdev_req_free_fence);
	if (*err) {
		llmdev_req_mem_free(req);
		return NULL;
	}
	return req;
}

/*
 * Pin the user memory of the request's plain transfers, before the unplug
 * section (llmdev_xfer_pin()). An op whose length is wrong is left for
 * llmdev_req_add() to refuse; the first op that cannot be pinned ends it,
 * with *@pin_err its error for llmdev_req_add() to give when it gets
 * there, so that the first bad op of a batch is still the one named.
 */
static void llmdev_req_pin(struct llmdev_req *req,
			   const struct llmdev_dma_op *ops, unsigned int count,
			   int *pin_err)
{
	unsigned int i;

	*pin_err = 0;
	for (i = 0; i < count; i++) {
		const struct llmdev_dma_op *op = &ops[i];

		if (!llmdev_op_plain(op))
			continue;
		*pin_err = llmdev_xfer_pin(&req->xfers[i],
					   op->flags & LLMDEV_OP_TO_CARD,
					   op->user_addr, op->length);
		if (*pin_err)
			return;
	}
}

/*
 * One transfer's checks and holds: region, buffer or pinned user memory.
 * @prev: the transfer before it in the batch (NULL for the first), whose
 * region and buffer it reuses, with the same checks, when it names the
 * same ones: a batch of many transfers between one region and one buffer
 * looks each up once.
 * @pin_err: the error of the first plain op llmdev_req_pin() could not pin
 */
static int llmdev_req_add(struct llmdev_file *lf, struct llmdev_req *req,
			  unsigned int i, const struct llmdev_dma_op *op,
			  const struct llmdev_dma_op *prev, int pin_err)
{
	struct llmdev_xfer *x = &req->xfers[i];
	u64 rows = 1, bytes = op->length, span = op->length;
	struct llmdev_region *region;
	struct llmdev_buf *buf;

	if ((op->flags & ~(LLMDEV_OP_TO_CARD | LLMDEV_OP_BUF | LLMDEV_OP_ROWS)) ||
	    !op->length || op->length > LLMDEV_DMA_MAX_LENGTH)
		return -EINVAL;
	if (op->flags & LLMDEV_OP_ROWS) {
		/* rows of a buffer, packed in the region (uapi) */
		rows = op->rows;
		if (!(op->flags & LLMDEV_OP_BUF) || !rows ||
		    op->buf_stride < op->length ||
		    rows > LLMDEV_DMA_MAX_LENGTH / op->length ||
		    op->buf_stride > (U64_MAX - op->length) / rows)
			return -EINVAL;
		bytes = rows * op->length;
		span = (rows - 1) * op->buf_stride + op->length;
	} else if (op->__reserved) {
		return -EINVAL;
	}
	/* a bound on the descriptors: as many rows as transfers at most */
	if (rows > LLMDEV_BATCH_MAX - req->rows)
		return -EINVAL;
	req->rows += rows;
	x->to_card = op->flags & LLMDEV_OP_TO_CARD;
	req->bytes[x->to_card ? 0 : 1] += bytes;
	if (prev && prev->handle == op->handle) {
		/* held by the first transfer of the run, until they all end */
		region = x[-1].region;
		if (op->offset > region->ext.length ||
		    bytes > region->ext.length - op->offset)
			return -EINVAL;
	} else {
		region = llmdev_region_get(lf, op->handle, op->offset, bytes);
		if (IS_ERR(region))
			return PTR_ERR(region);
		x->region_ref = true;
	}
	x->region = region;
	if (!(op->flags & LLMDEV_OP_BUF)) {
		/* not pinned: the op llmdev_req_pin() stopped at */
		if (!x->pages)
			return pin_err ?: -EFAULT;
		return llmdev_xfer_map(lf->ldev, x, op->user_addr, op->length);
	}
	if (prev && (prev->flags & LLMDEV_OP_BUF) && prev->buf == op->buf)
		buf = llmdev_buf_get_again(x[-1].buf, op->buf_offset, span,
					   x->to_card);
	else
		buf = llmdev_buf_get(lf, op->buf, op->buf_offset, span,
				     x->to_card);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	x->buf = buf;
	x->buf_offset = op->buf_offset;
	x->length = span;
	llmdev_buf_sync(lf->ldev, buf, op->buf_offset, span, false);
	return 0;
}

/*
 * The descriptors of transfer @op of a registered buffer; with @d NULL,
 * only count them. Rows (LLMDEV_OP_ROWS) are gathered by SG tables of
 * their own, a page of rows or so to a descriptor, not a descriptor
 * each.
 */
static int llmdev_op_buf_descs(struct llmdev_device *ldev,
			       const struct llmdev_buf *b,
			       const struct llmdev_dma_op *op,
			       u64 hbm, struct llmdev_job_desc *d,
			       unsigned int *n)
{
	if ((op->flags & LLMDEV_OP_ROWS) && op->rows > 1)
		return llmdev_buf_rows_descs(llmdev_dma_dev(ldev), b,
					     op->buf_offset, op->length,
					     op->rows, op->buf_stride, hbm,
					     d, n);
	*n = llmdev_buf_descs(b, op->buf_offset, op->length, hbm, d);
	return 0;
}

/* The vector entries descriptor @jd becomes: one a host segment. */
static u32 llmdev_vec_entries(const struct llmdev_job_desc *jd)
{
	return jd->count ? jd->count : 1;
}

static void llmdev_vec_set(struct llmdev_hw_vec *v, u64 host, u64 hbm,
			   u32 length)
{
	v->host_addr = cpu_to_le64(host);
	v->hbm_addr = cpu_to_le64(hbm);
	v->length = cpu_to_le32(length);
	v->reserved = 0;
}

/*
 * Gather a job's descriptors into vector descriptors: each run of them
 * that fits a vector table (LLMDEV_VEC_ENTRIES entries, under 4 GiB)
 * becomes one, its SG tables flattened into entries (and those it owned
 * freed). Where a table cannot be allocated, the descriptors from there on
 * stay as they are: they move the same bytes.
 */
static void llmdev_job_vectorize(struct llmdev_device *ldev,
				 struct llmdev_job *job)
{
	struct llmdev_job_desc *d = job->descs;
	unsigned int n = job->nr_desc, i = 0, out = 0;

	if (!ldev->desc_vec || !READ_ONCE(llmdev_desc_vec) ||
	    n < LLMDEV_VEC_MIN_DESCS)
		return;
	while (i < n) {
		unsigned int end = i, k, e = 0;
		struct llmdev_hw_vec *v;
		u32 entries = 0;
		u64 bytes = 0;
		dma_addr_t addr;

		while (end < n &&
		       entries + llmdev_vec_entries(&d[end]) <= LLMDEV_VEC_ENTRIES &&
		       bytes + d[end].length <= U32_MAX) {
			entries += llmdev_vec_entries(&d[end]);
			bytes += d[end].length;
			end++;
		}
		if (end - i < 2) {
			/* alone, or too many entries for a table: as it is */
			d[out++] = d[i++];
			continue;
		}
		v = dma_alloc_coherent(llmdev_dma_dev(ldev),
				       entries * LLMDEV_VEC_SIZE, &addr,
				       GFP_KERNEL | __GFP_NOWARN);
		if (!v) {
			memmove(&d[out], &d[i], (n - i) * sizeof(*d));
			out += n - i;
			break;
		}
		for (k = i; k < end; k++) {
			struct llmdev_job_desc *jd = &d[k];
			u64 hbm = jd->hbm_addr;
			u32 s;

			if (!jd->count) {
				llmdev_vec_set(&v[e++], jd->addr, hbm, jd->length);
				continue;
			}
			for (s = 0; s < jd->count; s++) {
				u32 len = le32_to_cpu(jd->sg[s].length);

				llmdev_vec_set(&v[e++], le64_to_cpu(jd->sg[s].addr),
					       hbm, len);
				hbm += len;
			}
			llmdev_job_desc_free(ldev, jd);
		}
		d[out].addr = addr;
		d[out].hbm_addr = 0;
		d[out].length = bytes;
		d[out].count = entries;
		d[out].vec = true;
		d[out].vtable = v;
		out++;
		i = end;
	}
	job->nr_desc = out;
}

/*
 * Lay out the jobs' descriptors: count them per direction, allocate, fill,
 * gather into vectors.
 * @ops: the transfers, to find their offsets again.
 */
static int llmdev_req_build(struct llmdev_req *req,
			    const struct llmdev_dma_op *ops,
			    struct llmdev_ring **rings)
{
	unsigned int i, n, pos[2] = { 0, 0 }, j;
	int ret;

	for (i = 0; i < req->nr_xfers; i++) {
		struct llmdev_xfer *x = &req->xfers[i];

		if (x->buf)
			llmdev_op_buf_descs(req->ldev, x->buf, &ops[i], 0,
					    NULL, &n);
		else
			llmdev_xfer_descs(req->ldev, x, 0, NULL, &n);
		req->job[x->to_card ? 0 : 1].nr_desc += n;
	}
	for (j = 0; j < 2; j++) {
		struct llmdev_job *job = &req->job[j];

		if (!job->nr_desc)
			continue;
		job->ring = rings[j];
		if (job->nr_desc == 1)
			job->descs = &job->one_desc;
		else
			job->descs = kvcalloc(job->nr_desc, sizeof(*job->descs),
					      GFP_KERNEL_ACCOUNT);
		if (!job->descs)
			return -ENOMEM;
	}
	for (i = 0; i < req->nr_xfers; i++) {
		struct llmdev_xfer *x = &req->xfers[i];
		struct llmdev_job *job = &req->job[x->to_card ? 0 : 1];
		u64 hbm = x->region->ext.offset + ops[i].offset;
		struct llmdev_job_desc *d = &job->descs[pos[x->to_card ? 0 : 1]];

		if (x->buf)
			ret = llmdev_op_buf_descs(req->ldev, x->buf, &ops[i],
						  hbm, d, &n);
		else
			ret = llmdev_xfer_descs(req->ldev, x, hbm, d, &n);
		if (ret)
			return ret;
		pos[x->to_card ? 0 : 1] += n;
	}
	for (j = 0; j < 2; j++)
		llmdev_job_vectorize(req->ldev, &req->job[j]);
	return 0;
}

/*
 * A request built is committed or undone: what it mapped for the card is
 * on the rings, or given back (llmdev_remove() waits for this).
 */
static void llmdev_req_built_done(struct llmdev_device *ldev)
{
	if (atomic_dec_and_test(&ldev->building))
		wake_up_all(&ldev->state_wq);
}

/* The reply is written: the request gets its fence and goes to the card. */
static void llmdev_req_commit(struct llmdev_ucmd *ucmd)
{
	struct llmdev_req *req = ucmd->obj;
	struct llmdev_device *ldev = req->ldev;
	unsigned int j, jobs = 0;
	int idx, gone;

	for (j = 0; j < 2; j++)
		jobs += !!req->job[j].nr_desc;
	atomic_set(&req->pending, jobs);
	llmdev_usage_dma_begin(req->fence.file);
	llmdev_fence_publish(&req->fence);

	idx = srcu_read_lock(&ldev->unplug_srcu);
	gone = llmdev_gone(ldev);
	for (j = 0; j < 2; j++) {
		struct llmdev_job *job = &req->job[j];

		if (!job->nr_desc)
			continue;
		if (gone) {
			llmdev_job_finish(job, gone);
			continue;
		}
		if (req->quiet) {
			job->quiet = true;
			atomic_inc(&ldev->quiet_jobs);
		}
		job->queued = req->bytes[j];
		job->post_ns = local_clock();
		atomic64_add(job->queued, &ldev->dma_queued);
		/* while the card is being reset, the ring is stopped: it waits */
		spin_lock(&job->ring->lock);
		list_add_tail(&job->node, &job->ring->pending);
		llmdev_ring_post(job->ring);
		spin_unlock(&job->ring->lock);
	}
	srcu_read_unlock(&ldev->unplug_srcu, idx);
	llmdev_req_built_done(ldev);
}

static void llmdev_req_abort(struct llmdev_ucmd *ucmd)
{
	struct llmdev_req *req = ucmd->obj;
	struct llmdev_device *ldev = req->ldev;

	llmdev_req_destroy(req);
	llmdev_req_built_done(ldev);
}

/* A request of @count transfers from @ops, ready to commit into @ucmd. */
static int llmdev_req_submit(struct llmdev_ucmd *ucmd,
			     const struct llmdev_dma_op *ops,
			     unsigned int count, u32 ring_h2c, u32 ring_c2h,
			     u64 *fence, u32 *bad)
{
	struct llmdev_file *lf = ucmd->lf;
	struct llmdev_device *ldev = lf->ldev;
	u64 pinned = llmdev_plain_pinned(ops, count);
	struct llmdev_ring *rings[2];
	struct llmdev_req *req;
	int idx, ret, pin_err;
	unsigned int i;

	rings[0] = llmdev_pick_ring(ldev, true, ring_h2c);
	rings[1] = llmdev_pick_ring(ldev, false, ring_c2h);
	if (!rings[0] || !rings[1])
		return -EINVAL;
	ret = llmdev_pin_reserve(ldev, pinned);
	if (ret)
		return ret;
	req = llmdev_req_alloc(lf, count, &ret);
	if (!req) {
		llmdev_pin_release(pinned);
		return ret;
	}
	req->pinned = pinned;
	llmdev_req_pin(req, ops, count, &pin_err);
	/*
	 * Building reads registered buffers' SG tables: an unplug, which
	 * frees them, waits for this section (a reset does not free them).
	 */
	idx = srcu_read_lock(&ldev->unplug_srcu);
	if (READ_ONCE(ldev->unplugged)) {
		ret = -ENODEV;
		goto err;
	}
	for (i = 0; i < count; i++) {
		ret = llmdev_req_add(lf, req, i, &ops[i], i ? &ops[i - 1] : NULL,
				     pin_err);
		if (ret) {
			*bad = i;
			goto err;
		}
	}
	ret = llmdev_req_build(req, ops, rings);
	if (ret)
		goto err;
	*fence = req->fence.seqno;
	ucmd->obj = req;
	ucmd->commit = llmdev_req_commit;
	ucmd->abort = llmdev_req_abort;
	/* before the section ends: an unplug that waits for it sees it */
	atomic_inc(&ldev->building);
	goto out;

err:
	llmdev_req_destroy(req);
out:
	srcu_read_unlock(&ldev->unplug_srcu, idx);
	return ret;
}

int llmdev_dma_ioctl_submit(struct llmdev_ucmd *ucmd)
{
	struct llmdev_dma *d = ucmd->cmd;
	struct llmdev_dma_op op = {
		.flags = d->flags & LLMDEV_DMA_TO_CARD ? LLMDEV_OP_TO_CARD : 0,
		.handle = d->handle,
		.offset = d->offset,
		.length = d->length,
		.user_addr = d->user_addr,
	};
	u32 bad;

	if ((d->flags & ~LLMDEV_DMA_TO_CARD) || !d->length ||
	    d->length > LLMDEV_DMA_MAX_LENGTH)
		return -EINVAL;
	if (d->user_addr + d->length < d->user_addr)
		return -EFAULT;
	/* the ring the caller chose is of the transfer's direction */
	return llmdev_req_submit(ucmd, &op, 1,
				 op.flags ? d->ring : LLMDEV_RING_ANY,
				 op.flags ? LLMDEV_RING_ANY : d->ring,
				 &d->fence, &bad);
}

/* LLMDEV_BATCH_WAIT: the batch is queued; wait for it, poll first. */
static int llmdev_dma_batch_wait(struct llmdev_ucmd *ucmd)
{
	struct llmdev_dma_batch *b = ucmd->cmd;

	return llmdev_fence_wait_queued(ucmd, b->fence, b->timeout_ns,
					&b->status);
}

#define LLMDEV_DMA_OP_SIZE_VER0	offsetofend(struct llmdev_dma_op, buf_offset)

/*
 * The ops of memory that is not registered pin and map it for the batch
 * only, with a page array, a scatterlist and SG tables of their own: at
 * most LLMDEV_BATCH_MAX_PLAIN_BYTES of them, or -E2BIG with *@bad the op
 * past it. Checked before any op is looked at, so nothing is pinned. An
 * op longer than LLMDEV_DMA_MAX_LENGTH is not counted (it fails with
 * -EINVAL): the sum, of LLMDEV_BATCH_MAX ops at most, cannot wrap.
 */
static int llmdev_batch_check_plain(const struct llmdev_dma_op *ops,
				    u32 count, u32 *bad)
{
	u64 plain = 0;
	u32 i;

	for (i = 0; i < count; i++) {
		if ((ops[i].flags & LLMDEV_OP_BUF) ||
		    ops[i].length > LLMDEV_DMA_MAX_LENGTH)
			continue;
		plain += ops[i].length;
		if (plain > LLMDEV_BATCH_MAX_PLAIN_BYTES) {
			*bad = i;
			return -E2BIG;
		}
	}
	return 0;
}

/*
 * A batch of up to this many ops is copied to the stack, not allocated.
 * The array is not zeroed first (the kernel's automatic stack
 * initialisation would: 24 stores, one at a time under TCG): only the ops
 * copied in are read.
 */
#define LLMDEV_BATCH_STACK_OPS	4

int llmdev_dma_ioctl_batch(struct llmdev_ucmd *ucmd)
{
	struct llmdev_dma_op stack_ops[LLMDEV_BATCH_STACK_OPS] __uninitialized;
	struct llmdev_dma_batch *b = ucmd->cmd;
	struct llmdev_dma_op *ops;
	u32 i, bad = ~0U;
	int ret;

	b->error_index = ~0U;
	b->status = 0;
	/* every failure is explained: error_index (~0 for the batch itself) */
	ucmd->reply_on_error = true;
	if ((b->flags & ~LLMDEV_BATCH_WAIT) || !b->count ||
	    b->count > LLMDEV_BATCH_MAX || b->op_size < LLMDEV_DMA_OP_SIZE_VER0)
		return -EINVAL;
	if (b->count <= ARRAY_SIZE(stack_ops))
		ops = stack_ops;
	else
		ops = kvmalloc_array(b->count, sizeof(*ops), GFP_KERNEL_ACCOUNT);
	if (!ops)
		return -ENOMEM;
	if (b->op_size == sizeof(*ops)) {
		if (copy_from_user(ops, u64_to_user_ptr(b->ops),
				   (size_t)b->count * sizeof(*ops)))
			ret = -EFAULT;
		else
			ret = 0;
	} else {
		for (ret = 0, i = 0; !ret && i < b->count; i++) {
			ret = copy_struct_from_user(&ops[i], sizeof(*ops),
						    u64_to_user_ptr(b->ops +
								    (u64)i * b->op_size),
						    b->op_size);
			if (ret)
				bad = i;
		}
	}
	if (!ret)
		ret = llmdev_batch_check_plain(ops, b->count, &bad);
	if (!ret)
		ret = llmdev_req_submit(ucmd, ops, b->count, LLMDEV_RING_ANY,
					LLMDEV_RING_ANY, &b->fence, &bad);
	if (ops != stack_ops)
		kvfree(ops);
	if (ret) {
		b->error_index = bad;
		return ret;
	}
	if (b->flags & LLMDEV_BATCH_WAIT) {
		struct llmdev_req *req = ucmd->obj;

		/* its caller polls for it: no interrupt (see the top) */
		req->quiet = b->timeout_ns && READ_ONCE(llmdev_poll_us) &&
			     req->bytes[0] + req->bytes[1] <= LLMDEV_QUIET_BYTES;
		ucmd->finish = llmdev_dma_batch_wait;
	}
	return 0;
}

/* ---- setup and teardown ---------------------------------------------------- */

int llmdev_dma_init(struct llmdev_device *ldev)
{
	struct device *dev = &ldev->pdev->dev;
	unsigned int i;

	/*
	 * Segments no larger than one mapping may be: bounce buffers (swiotlb,
	 * which confidential guests use for all DMA) take 256 KiB at most
	 */
	dma_set_max_seg_size(dev, rounddown(min_t(size_t, LLMDEV_MAX_SEGMENT,
						  dma_max_mapping_size(dev)),
					    PAGE_SIZE));
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
		ring->slot_job = devm_kcalloc(dev, LLMDEV_RING_ENTRIES,
					      sizeof(*ring->slot_job),
					      GFP_KERNEL);
		if (!ring->desc || !ring->cmpl || !ring->slot_job)
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
	memset(ring->slot_job, 0, LLMDEV_RING_ENTRIES * sizeof(*ring->slot_job));
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
		struct llmdev_job *job;

		spin_lock(&ring->lock);
		ring->stopped = false;
		/* their waiters may have stopped polling long ago */
		list_for_each_entry(job, &ring->pending, node)
			llmdev_job_unquiet(job);
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
