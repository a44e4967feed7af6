/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * llmdev: driver-internal definitions shared by the subsystems.
 */
#ifndef LLMDEV_DRV_H
#define LLMDEV_DRV_H

#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/hashtable.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/spinlock.h>
#include <linux/srcu.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "llmdev_alloc.h"
#include "llmdev_compat.h"
#include "llmdev_obs.h"
#include "llmdev_regs.h"
#include "../uapi/llmdev.h"

#define LLMDEV_NAME		"llmdev"

/*
 * The first versions of the array elements some ioctls take: a caller
 * built against the oldest header gives at least this entry_size/buf_size.
 */
#define LLMDEV_HBM_REGION_SIZE_VER0	offsetofend(struct llmdev_hbm_region, name)
#define LLMDEV_ROUTE_ENTRY_SIZE_VER0	offsetofend(struct llmdev_route_entry, length)
#define LLMDEV_COLL_BUF_SIZE_VER0	offsetofend(struct llmdev_coll_buf, dst_offset)
/*
 * Descriptors per ring (hardware.md 5: 2 to 4096). 1024 hold a batch of
 * 1000 KV blocks at once, without refills as completions make room (48 KiB
 * of coherent memory per ring: descriptors and completions).
 */
#define LLMDEV_RING_ENTRIES	1024
/* SG entries of a descriptor of rows (llmdev_buf_rows_descs()): a page */
#define LLMDEV_ROWS_SG		min_t(u32, PAGE_SIZE / LLMDEV_SG_SIZE, \
				      LLMDEV_DESC_MAX_SG)
#define LLMDEV_FENCE_HASH_BITS	6	/* 64 buckets for LLMDEV_MAX_FENCES */
#define LLMDEV_HBM_GRANULE	4096ULL
/* the module version: the uapi's ABI version (/sys/module/llmdev/version) */
#define LLMDEV_DRIVER_VERSION	__stringify(LLMDEV_ABI_MAJOR) "." __stringify(LLMDEV_ABI_MINOR)

extern unsigned int llmdev_dma_timeout_ms;
extern unsigned int llmdev_poll_us;
extern unsigned int llmdev_coll_timeout_ms;

struct llmdev_device;
struct llmdev_file;

/**
 * struct llmdev_region - an allocated extent of HBM
 * @ext: its extent of HBM, in llmdev_hbm.regions (sorted by offset);
 *       the length is a multiple of LLMDEV_HBM_GRANULE
 * @ref: held by the allocation (until its HBM is given back) and by every
 *       user mapping of it; the struct is freed with the last
 * @ldev: the card
 * @handle: id in llmdev_hbm.handles
 * @owner: the open file that owns it; NULL once it is persistent and
 *         its creator closed
 * @uid: creator's effective uid
 * @user_ns: creator's user namespace (a reference is held)
 * @pid: creator's thread group
 * @admin: its creator had CAP_SYS_ADMIN: others need CAP_SYS_ADMIN too
 * @persistent: survives its creator's file
 * @routed: named by the card's routing table; cannot be freed
 * @busy: transfers in flight on the region
 * @pending: allocated, but its creator has not yet learnt the handle
 *           (LLMDEV_HBM_ALLOC replies first): invisible to everyone else
 * @dying: being freed: no new users, not listed, mappings fault
 * @quarantined: its scrub failed: its HBM stays allocated until a scrub
 *               succeeds (after the next reset)
 * @name: optional name; unique among persistent regions
 */
struct llmdev_region {
	struct llmdev_extent ext;
	struct kref ref;
	struct llmdev_device *ldev;
	u32 handle;
	struct llmdev_file *owner;
	kuid_t uid;
	struct user_namespace *user_ns;
	struct pid *pid;
	bool admin;
	bool persistent;
	bool routed;
	unsigned int busy;
	bool pending;
	bool dying;
	bool quarantined;
	char name[LLMDEV_NAME_LEN];
};

/**
 * struct llmdev_hbm - the card's HBM allocator
 * @lock: protects every field below and the regions' owner and busy fields
 * @regions: allocated regions, sorted by offset
 * @handles: handle -> region
 * @size: bytes of HBM
 * @used: bytes allocated
 * @idle: woken when a region's busy count drops to zero
 */
struct llmdev_hbm {
	struct mutex lock;		/* protects this struct and the regions */
	struct list_head regions;
	struct xarray handles;
	u64 size;
	u64 used;
	wait_queue_head_t idle;
};

struct llmdev_job;
struct llmdev_req;
struct llmdev_buf;

/**
 * struct llmdev_job_desc - one hardware descriptor, before it is posted
 * @addr: bus address of the host segment, or of the SG or vector table
 * @hbm_addr: HBM address (0 for a vector)
 * @length: bytes
 * @count: SG or vector entries at @addr, or 0 for a single segment
 * @vec: a vector descriptor (LLMDEV_DESC_F_VEC): @vtable, which it owns
 * @table: the SG table, when the descriptor owns it (else NULL: a single
 *         segment, or a registered buffer's table)
 * @sg: the SG entries at @addr, for the CPU (either kind of SG table)
 * @vtable: the vector table
 */
struct llmdev_job_desc {
	dma_addr_t addr;
	u64 hbm_addr;
	u32 length;
	u32 count;
	bool vec;
	union {
		struct {
			struct llmdev_hw_sg *table;
			const struct llmdev_hw_sg *sg;
		};
		struct llmdev_hw_vec *vtable;
	};
};

/**
 * struct llmdev_fence - completion token of a transfer or a collective
 * @list: in llmdev_file.done once signalled
 * @hnode: in llmdev_file.fences from publication until consumed
 * @file: the file that submitted the work
 * @seqno: the fence number userspace sees
 * @status: 0 or the negative errno the work finished with
 * @complete: signalled (set under the file's lock)
 * @claimed: a wait is consuming it (under the file's lock)
 * @free: frees the structure the fence is embedded in
 */
struct llmdev_fence {
	struct list_head list;
	struct hlist_node hnode;
	struct llmdev_file *file;
	u64 seqno;
	int status;
	bool complete;
	bool claimed;
	void (*free)(struct llmdev_fence *f);
};

/**
 * struct llmdev_ring - one DMA ring and its software state
 * @ldev: the card
 * @index: hardware ring number
 * @to_card: direction
 * @lock: protects every field below
 * @desc: descriptor ring, coherent memory
 * @cmpl: completion ring, coherent memory
 * @desc_dma: bus address of @desc
 * @cmpl_dma: bus address of @cmpl
 * @tail: descriptors posted (free-running, mirrors the TAIL register)
 * @completed: completions consumed (free-running)
 * @slot_job: job that owns each posted descriptor slot
 * @pending: jobs waiting for ring space, oldest first
 * @active: jobs with descriptors on the ring, oldest first
 * @last_progress: jiffies of the last completion, or of the post that
 *                 made an idle ring busy
 * @done_ns: local_clock() when its last job finished (the card's rate)
 * @stopped: the card is being reset: nothing is posted until it is back
 * @sweep: a waiter stopped polling while quiet jobs were out: the watchdog
 *         looks for completions every jiffy while the ring is busy
 * @timeout_work: watchdog: resets the ring when it stops making progress,
 *                and finds the completions nobody else looks for
 */
struct llmdev_ring {
	struct llmdev_device *ldev;
	unsigned int index;
	bool to_card;
	spinlock_t lock;		/* protects the fields below */
	struct llmdev_hw_desc *desc;
	struct llmdev_hw_cmpl *cmpl;
	dma_addr_t desc_dma;
	dma_addr_t cmpl_dma;
	u32 tail;
	u32 completed;
	struct llmdev_job **slot_job;
	struct list_head pending;
	struct list_head active;
	unsigned long last_progress;
	u64 done_ns;
	bool stopped;
	bool sweep;
	struct delayed_work timeout_work;
};

/**
 * enum llmdev_state - what the card can do (struct llmdev_device.state)
 * @LLMDEV_STATE_LIVE: working
 * @LLMDEV_STATE_RESETTING: between reset_prepare and reset_done (FLR,
 *     LLMDEV_RESET, AER recovery): hardware sections wait for the end
 * @LLMDEV_STATE_DEAD: a reset failed: every call fails with -EIO until a
 *     reset succeeds
 */
enum llmdev_state {
	LLMDEV_STATE_LIVE,
	LLMDEV_STATE_RESETTING,
	LLMDEV_STATE_DEAD,
};

/**
 * struct llmdev_device - one card
 * @pdev: its PCI device
 * @regs: BAR 0
 * @hbm_phys: bus address of the HBM aperture (BAR 2)
 * @wc_cookie: the aperture's write-combining MTRR, if any
 * @minor: N of /dev/llmdevN
 * @cdev: the character device
 * @dev: the class device, parent of the sysfs attributes
 * @ref: held by the PCI binding and by every open file
 * @unplug_srcu: readers are ioctls and handlers touching the hardware
 *               (llmdev_enter(), llmdev_hw_enter())
 * @unplugged: set once, under SRCU, when the card is going away
 * @building: DMA requests built, not yet committed or undone (their
 *            mappings are the card's: an unplug waits for them)
 * @state: enum llmdev_state; changed under @state_lock, then SRCU is
 *         synchronised, so no hardware section of the old state is left
 * @state_lock: protects @state and the reset counters
 * @state_wq: woken when @state changes
 * @reset_count: resets the card came back from
 * @reset_failures: resets after which the card was dead
 * @reset_reason: what started the reset in progress (for the log)
 * @reset_watchdog: marks the card dead when an AER recovery never ends
 * @anon_inode: one inode for every open file of the card, whatever node
 *              it was opened through: its mapping holds every user
 *              mapping of the aperture, so they can all be zapped
 * @serial: serial number register
 * @spec_version: version register
 * @desc_vec: the card has vector descriptors (LLMDEV_CAPS_DESC_VEC)
 * @nvec: interrupt vectors in use
 * @hbm: the HBM allocator
 * @ring: the DMA rings
 * @quiet_jobs: jobs posted with no interrupt asked for, not finished
 * @dma_queued: bytes of the jobs posted or queued on the rings, not finished
 * @dma_rate: the card's DMA rate as measured, bytes/ns << 8 (0: not yet)
 * @scrub_lock: serialises use of the scrub engine
 * @scrub_wait: woken by the event interrupt
 * @perf_lock: serialises counter snapshots
 * @files_lock: protects @files
 * @files: open files, to wake and fail them on unplug
 * @node: in the list of all cards (llmdev_find_by_serial() and friends)
 * @link_lock: serialises changes of the link ports' configuration
 * @route_lock: protects @route and the routing-table registers
 * @route: the routing table as last applied (handles, not only offsets)
 * @route_count: entries in @route
 * @route_gen: tables applied since probe
 * @pmu: the perf PMU (llmdev_pmu.c), or NULL
 * @devlink: the devlink instance (llmdev_devlink.c), or NULL
 */
struct llmdev_device {
	struct pci_dev *pdev;
	void __iomem *regs;
	phys_addr_t hbm_phys;
	int wc_cookie;
	int minor;
	struct cdev cdev;
	struct device dev;
	struct srcu_struct unplug_srcu;
	bool unplugged;
	atomic_t building;
	enum llmdev_state state;
	spinlock_t state_lock;		/* protects state and the reset counters */
	wait_queue_head_t state_wq;
	unsigned int reset_count;
	unsigned int reset_failures;
	const char *reset_reason;
	struct delayed_work reset_watchdog;
	struct inode *anon_inode;
	u64 serial;
	u32 spec_version;
	bool desc_vec;
	int nvec;
	/* one vector: sources the hard handler cleared, for the thread */
	atomic_t irq_single_pending;
	struct llmdev_hbm hbm;
	struct llmdev_ring ring[LLMDEV_NUM_RINGS];
	atomic_t ring_next[2];	/* LLMDEV_RING_ANY's last pick, per direction */
	atomic_t quiet_jobs;
	atomic64_t dma_queued;
	u64 dma_rate;
	struct mutex scrub_lock;	/* one scrub at a time */
	wait_queue_head_t scrub_wait;
	struct mutex perf_lock;		/* one counter snapshot at a time */
	struct mutex files_lock;	/* protects files */
	struct list_head files;
	struct list_head node;
	struct mutex link_lock;		/* link port configuration */
	struct mutex route_lock;	/* routing table */
	struct llmdev_route_entry route[LLMDEV_ROUTE_MAX];
	unsigned int route_count;
	u32 route_gen;
	struct llmdev_pmu *pmu;
	struct devlink *devlink;
};

/**
 * struct llmdev_file - an open file of a card
 * @ldev: the card (reference held)
 * @node: in llmdev_device.files
 * @lock: protects @fences, @done, @next_fence, @nfences, @inflight and the
 *        jobs' complete flags
 * @fences: fence number -> job, published and not yet consumed (a hash
 *          table: a fence costs no allocation, as an xarray's nodes did for
 *          every transfer once the numbers spread)
 * @done: completed, unconsumed jobs
 * @next_fence: next fence number to hand out
 * @nfences: fences handed out and not yet consumed
 * @inflight: jobs not yet complete
 * @wq: woken when a job completes
 * @groups: collective groups created on this file, id -> group
 * @bufs: registered buffers, id -> struct llmdev_buf
 * @buf_lock: serialises the end of a buffer against its unmapping when the
 *            card goes away; protects @buf_list
 * @buf_list: every buffer of the file that is mapped, published or not
 * @usage: what the file did, for its fdinfo (llmdev_fdinfo.c)
 * @uid: the effective uid that opened it: whose turn its collectives take
 */
struct llmdev_file {
	struct llmdev_device *ldev;
	struct list_head node;
	spinlock_t lock;		/* see above */
	DECLARE_HASHTABLE(fences, LLMDEV_FENCE_HASH_BITS);
	struct list_head done;
	u64 next_fence;
	unsigned int nfences;
	unsigned int inflight;
	wait_queue_head_t wq;
	struct xarray groups;
	struct xarray bufs;
	struct mutex buf_lock;		/* see above */
	struct list_head buf_list;
	struct llmdev_file_usage usage;
	kuid_t uid;
};

static inline struct llmdev_device *to_llmdev(struct device *dev)
{
	return container_of(dev, struct llmdev_device, dev);
}

static inline u32 llmdev_rd32(struct llmdev_device *ldev, u32 reg)
{
	return readl(ldev->regs + reg);
}

static inline void llmdev_wr32(struct llmdev_device *ldev, u32 reg, u32 val)
{
	writel(val, ldev->regs + reg);
}

static inline u64 llmdev_rd64(struct llmdev_device *ldev, u32 reg)
{
	return readq(ldev->regs + reg);
}

static inline void llmdev_wr64(struct llmdev_device *ldev, u32 reg, u64 val)
{
	writeq(val, ldev->regs + reg);
}

/*
 * Hot-unplug guard around hardware access, as drm_dev_enter() does. It does
 * not sleep, and fails while the card is being reset or is dead too: for
 * interrupt handlers, work items and paths under spinlocks, which must
 * leave the hardware alone then. Paths that may sleep use llmdev_hw_enter().
 */
static inline bool llmdev_enter(struct llmdev_device *ldev, int *idx)
{
	*idx = srcu_read_lock(&ldev->unplug_srcu);
	if (READ_ONCE(ldev->unplugged) ||
	    READ_ONCE(ldev->state) != LLMDEV_STATE_LIVE) {
		srcu_read_unlock(&ldev->unplug_srcu, *idx);
		return false;
	}
	return true;
}

static inline void llmdev_exit(struct llmdev_device *ldev, int idx)
{
	srcu_read_unlock(&ldev->unplug_srcu, idx);
}

/* The card is gone or dead: the errno for a caller. 0 while it works. */
static inline int llmdev_gone(struct llmdev_device *ldev)
{
	if (READ_ONCE(ldev->unplugged))
		return -ENODEV;
	if (READ_ONCE(ldev->state) == LLMDEV_STATE_DEAD)
		return -EIO;
	return 0;
}

int llmdev_wait_reset(struct llmdev_device *ldev, bool killable);

static inline int __llmdev_hw_enter(struct llmdev_device *ldev, int *idx,
				    bool killable)
{
	int ret;

	for (;;) {
		*idx = srcu_read_lock(&ldev->unplug_srcu);
		ret = llmdev_gone(ldev);
		if (!ret && READ_ONCE(ldev->state) == LLMDEV_STATE_LIVE)
			return 0;
		srcu_read_unlock(&ldev->unplug_srcu, *idx);
		if (!ret)
			ret = llmdev_wait_reset(ldev, killable);
		if (ret)
			return ret;
	}
}

/**
 * llmdev_hw_enter() - enter a section that uses the hardware, and may sleep
 * @ldev: the card
 * @idx: out: for llmdev_exit()
 *
 * Waits while the card is being reset. Never call it holding a lock the
 * reset path takes (llmdev_reset.c): the reset waits for sections that
 * have entered, not for those waiting to.
 *
 * Return: 0 (then call llmdev_exit()); -ENODEV the card is gone; -EIO the
 * card is dead; -EINTR a fatal signal ended the wait.
 */
static inline int llmdev_hw_enter(struct llmdev_device *ldev, int *idx)
{
	return __llmdev_hw_enter(ldev, idx, true);
}

/*
 * llmdev_hw_enter() for work that must be done even by a dying task
 * (giving back a closed file's HBM): the wait for a reset is not killable.
 * Resets end in bounded time (an AER recovery that never ends marks the
 * card dead).
 */
static inline int llmdev_hw_enter_nokill(struct llmdev_device *ldev, int *idx)
{
	return __llmdev_hw_enter(ldev, idx, false);
}

void llmdev_get(struct llmdev_device *ldev);
void llmdev_put(struct llmdev_device *ldev);

/**
 * struct llmdev_ucmd - one ioctl call, as the dispatcher hands it over
 * @lf: the caller's file
 * @cmd: the argument struct, copied in and zero-extended to the kernel's
 *       size; the dispatcher copies it back (cut to the caller's size)
 *       when the handler returns 0
 * @user_size: the size the caller gave
 * @reply_on_error: copy @cmd back also when the handler fails (replies
 *                  that carry information about the failure)
 * @commit: if set, called once the reply was written: makes the handler's
 *          new object visible (iommufd_object_finalize())
 * @abort: if set, called instead of @commit when the reply could not be
 *         written: undoes the handler's work, which nobody else can have
 *         seen (iommufd_object_abort())
 * @obj: the handler's pending object, for @commit and @abort
 * @finish: if set, called after @commit: a second step of the call that
 *          needs the first one's object visible (LLMDEV_BATCH_WAIT waits
 *          for the batch it queued); it may set @commit, @abort, @obj and
 *          @reply_on_error again, and its reply is written as the first's
 */
struct llmdev_ucmd {
	struct llmdev_file *lf;
	void *cmd;
	u32 user_size;
	bool reply_on_error;
	void (*commit)(struct llmdev_ucmd *ucmd);
	void (*abort)(struct llmdev_ucmd *ucmd);
	void *obj;
	int (*finish)(struct llmdev_ucmd *ucmd);
};

/* llmdev_pci.c: every card; the lookups return a reference (llmdev_put) */
struct llmdev_device *llmdev_find_by_serial(u64 serial);
struct llmdev_device *llmdev_next_device(int minor);	/* lowest minor >= @minor */
int llmdev_scrub(struct llmdev_device *ldev, u64 offset, u64 length);

/* llmdev_reset.c */
void llmdev_reset_init(struct llmdev_device *ldev);
int llmdev_reset_ioctl(struct llmdev_ucmd *ucmd);
void llmdev_mark_dead(struct llmdev_device *ldev, const char *why);
void llmdev_hw_start(struct llmdev_device *ldev);
extern const struct pci_error_handlers llmdev_err_handler;

/* llmdev_cdev.c */
int llmdev_cdev_init(void);
void llmdev_cdev_fini(void);
int llmdev_cdev_add(struct llmdev_device *ldev);
void llmdev_cdev_del(struct llmdev_device *ldev);
int llmdev_inode_init(struct llmdev_device *ldev);
void llmdev_inode_fini(struct llmdev_device *ldev);
void llmdev_zap_mappings(struct llmdev_device *ldev, u64 offset, u64 length);
extern const struct attribute_group *llmdev_groups[];

/* llmdev_hbm.c */
void llmdev_hbm_init(struct llmdev_hbm *hbm);
void llmdev_hbm_fini(struct llmdev_device *ldev);
int llmdev_hbm_ioctl_alloc(struct llmdev_ucmd *ucmd);
int llmdev_hbm_ioctl_free(struct llmdev_ucmd *ucmd);
int llmdev_hbm_ioctl_list(struct llmdev_ucmd *ucmd);
int llmdev_hbm_ioctl_open(struct llmdev_ucmd *ucmd);
void llmdev_hbm_release_file(struct llmdev_file *lf);
struct llmdev_region *llmdev_region_get(struct llmdev_file *lf, u32 handle,
					u64 offset, u64 length);
void llmdev_region_put(struct llmdev_device *ldev, struct llmdev_region *r);
int llmdev_hbm_mmap(struct llmdev_file *lf, struct vm_area_struct *vma);
u64 llmdev_hbm_largest_free(struct llmdev_hbm *hbm);
u64 llmdev_hbm_used(struct llmdev_hbm *hbm);
void llmdev_hbm_rescrub(struct llmdev_device *ldev);

/* llmdev_dma.c */
int llmdev_dma_cache_init(void);
void llmdev_dma_cache_fini(void);
void llmdev_dma_wake_pinners(void);
int llmdev_dma_init(struct llmdev_device *ldev);
void llmdev_dma_fini(struct llmdev_device *ldev);
void llmdev_dma_hw_start(struct llmdev_device *ldev);
int llmdev_dma_ioctl_submit(struct llmdev_ucmd *ucmd);
int llmdev_dma_ioctl_batch(struct llmdev_ucmd *ucmd);
bool llmdev_dma_poll(struct llmdev_device *ldev);
void llmdev_dma_sweep(struct llmdev_device *ldev);
u64 llmdev_dma_poll_delay(struct llmdev_device *ldev);
bool llmdev_dma_poll_until(struct llmdev_device *ldev, bool (*done)(void *arg),
			   void *arg);
void llmdev_dma_handle_ring(struct llmdev_ring *ring);
void llmdev_dma_handle_error(struct llmdev_device *ldev);
void llmdev_dma_stop(struct llmdev_device *ldev);
void llmdev_dma_fail_started(struct llmdev_device *ldev, int status);
void llmdev_dma_fail_all(struct llmdev_device *ldev, int status);
void llmdev_dma_restart(struct llmdev_device *ldev);

/* llmdev_buf.c */
int llmdev_buf_ioctl_register(struct llmdev_ucmd *ucmd);
int llmdev_buf_ioctl_unregister(struct llmdev_ucmd *ucmd);
struct llmdev_buf *llmdev_buf_get(struct llmdev_file *lf, u32 id, u64 offset,
				  u64 length, bool to_card);
struct llmdev_buf *llmdev_buf_get_again(struct llmdev_buf *b, u64 offset,
					u64 length, bool to_card);
void llmdev_buf_put(struct llmdev_buf *b);
unsigned int llmdev_buf_descs(const struct llmdev_buf *b, u64 off, u64 len,
			      u64 hbm, struct llmdev_job_desc *d);
int llmdev_buf_rows_descs(struct device *dev, const struct llmdev_buf *b,
			  u64 off, u64 len, u32 rows, u64 stride, u64 hbm,
			  struct llmdev_job_desc *d, unsigned int *n);
void llmdev_buf_sync(struct llmdev_device *ldev, const struct llmdev_buf *b,
		     u64 off, u64 len, bool for_cpu);
void llmdev_buf_release_file(struct llmdev_file *lf);
void llmdev_buf_unplug(struct llmdev_device *ldev);

/* llmdev_fence.c */
int llmdev_fence_reserve(struct llmdev_file *lf, struct llmdev_fence *f,
			 void (*free)(struct llmdev_fence *f));
void llmdev_fence_unreserve(struct llmdev_fence *f);
void llmdev_fence_publish(struct llmdev_fence *f);
void llmdev_fence_signal(struct llmdev_fence *f, int status);
int llmdev_fence_ioctl_wait(struct llmdev_ucmd *ucmd);
int llmdev_fence_wait_queued(struct llmdev_ucmd *ucmd, u64 seqno, u64 timeout_ns,
			     s32 *status);
__poll_t llmdev_fence_poll(struct llmdev_file *lf);
void llmdev_fence_release_file(struct llmdev_file *lf);

/* llmdev_coll.c */
int llmdev_group_ioctl_create(struct llmdev_ucmd *ucmd);
int llmdev_group_ioctl_destroy(struct llmdev_ucmd *ucmd);
int llmdev_coll_ioctl_submit(struct llmdev_ucmd *ucmd);
void llmdev_coll_release_file(struct llmdev_file *lf);
void llmdev_coll_handle_event(struct llmdev_device *ldev);
void llmdev_coll_fail_card(struct llmdev_device *ldev, int status,
			   bool queued);
void llmdev_coll_kick(void);
void llmdev_coll_fini(void);
struct llmdev_file *llmdev_file_get(int fd, struct file **filp);

/* llmdev_route.c */
int llmdev_route_ioctl_set(struct llmdev_ucmd *ucmd);
int llmdev_route_ioctl_get(struct llmdev_ucmd *ucmd);
void llmdev_route_hw_start(struct llmdev_device *ldev);
int llmdev_route_restore(struct llmdev_device *ldev);

/* llmdev_link.c */
void llmdev_link_hw_start(struct llmdev_device *ldev);
void llmdev_link_wait_trained(struct llmdev_device *ldev);
void llmdev_link_handle_event(struct llmdev_device *ldev);
int llmdev_link_get(struct llmdev_device *ldev, unsigned int port,
		    struct llmdev_link_info *info);
int llmdev_link_get_now(struct llmdev_device *ldev, unsigned int port,
			struct llmdev_link_info *info);
int llmdev_link_set(struct llmdev_device *ldev, unsigned int port,
		    bool enable);
int llmdev_link_ioctl_info(struct llmdev_ucmd *ucmd);
int llmdev_link_ioctl_set(struct llmdev_ucmd *ucmd);
bool llmdev_link_is_up(struct llmdev_device *ldev, unsigned int port);
extern const struct attribute_group llmdev_link_attr_groups[LLMDEV_NUM_LINK_PORTS];

/* llmdev_netlink.c */
int llmdev_netlink_init(void);
void llmdev_netlink_fini(void);
void llmdev_nl_link_event(struct llmdev_device *ldev, unsigned int port,
			  u8 cmd);
void llmdev_nl_coll_error(struct llmdev_device *ldev, u64 tag, int err);
void llmdev_nl_reset_event(struct llmdev_device *ldev, u8 cmd, int err);

/* llmdev_perf.c */
int llmdev_perf_snapshot(struct llmdev_device *ldev, struct llmdev_perf *perf);
int llmdev_perf_ioctl_read(struct llmdev_ucmd *ucmd);
extern const struct attribute_group llmdev_counters_group;

#endif /* LLMDEV_DRV_H */
