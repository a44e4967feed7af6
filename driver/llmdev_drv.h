/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * llmdev: driver-internal definitions shared by the subsystems.
 */
#ifndef LLMDEV_DRV_H
#define LLMDEV_DRV_H

#include <linux/cdev.h>
#include <linux/device.h>
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
#include "llmdev_regs.h"
#include "../uapi/llmdev.h"

#define LLMDEV_NAME		"llmdev"
#define LLMDEV_RING_ENTRIES	256
#define LLMDEV_HBM_GRANULE	4096ULL

extern unsigned int llmdev_dma_timeout_ms;
extern unsigned int llmdev_coll_timeout_ms;

struct llmdev_device;
struct llmdev_file;

/**
 * struct llmdev_region - an allocated extent of HBM
 * @ext: its extent of HBM, in llmdev_hbm.regions (sorted by offset);
 *       the length is a multiple of LLMDEV_HBM_GRANULE
 * @handle: id in llmdev_hbm.handles
 * @owner: the open file that owns it; NULL once it is persistent and
 *         its creator closed
 * @uid: creator's uid
 * @pid: creator's thread group
 * @persistent: survives its creator's file
 * @routed: named by the card's routing table; cannot be freed
 * @busy: transfers in flight on the region
 * @dying: being freed: no new users, not listed
 * @name: optional name; unique among persistent regions
 */
struct llmdev_region {
	struct llmdev_extent ext;
	u32 handle;
	struct llmdev_file *owner;
	kuid_t uid;
	struct pid *pid;
	bool persistent;
	bool routed;
	unsigned int busy;
	bool dying;
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

/**
 * struct llmdev_fence - completion token of a transfer or a collective
 * @list: in llmdev_file.done once signalled
 * @file: the file that submitted the work
 * @seqno: the fence number userspace sees
 * @status: 0 or the negative errno the work finished with
 * @complete: signalled (set under the file's lock)
 * @free: frees the structure the fence is embedded in
 */
struct llmdev_fence {
	struct list_head list;
	struct llmdev_file *file;
	u64 seqno;
	int status;
	bool complete;
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
 * @timeout_work: watchdog: resets the ring when it stops making progress
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
	struct llmdev_job *slot_job[LLMDEV_RING_ENTRIES];
	struct list_head pending;
	struct list_head active;
	unsigned long last_progress;
	struct delayed_work timeout_work;
};

/**
 * struct llmdev_device - one card
 * @pdev: its PCI device
 * @regs: BAR 0
 * @hbm_phys: bus address of the HBM aperture (BAR 2)
 * @minor: N of /dev/llmdevN
 * @cdev: the character device
 * @dev: the class device, parent of the sysfs attributes
 * @ref: held by the PCI binding and by every open file
 * @unplug_srcu: readers are ioctls and handlers touching the hardware
 * @unplugged: set once, under SRCU, when the card is going away
 * @serial: serial number register
 * @spec_version: version register
 * @nvec: interrupt vectors in use
 * @hbm: the HBM allocator
 * @ring: the DMA rings
 * @scrub_lock: serialises use of the scrub engine
 * @scrub_wait: woken by the event interrupt
 * @perf_lock: serialises counter snapshots
 * @files_lock: protects @files and @mapping
 * @mapping: address space of the device node, for zapping user mappings
 * @files: open files, to wake and fail them on unplug
 * @node: in the list of all cards (llmdev_find_by_serial() and friends)
 * @link_lock: serialises changes of the link ports' configuration
 * @route_lock: protects @route and the routing-table registers
 * @route: the routing table as last applied (handles, not only offsets)
 * @route_count: entries in @route
 * @route_gen: tables applied since probe
 */
struct llmdev_device {
	struct pci_dev *pdev;
	void __iomem *regs;
	phys_addr_t hbm_phys;
	int minor;
	struct cdev cdev;
	struct device dev;
	struct srcu_struct unplug_srcu;
	bool unplugged;
	u64 serial;
	u32 spec_version;
	int nvec;
	struct llmdev_hbm hbm;
	struct llmdev_ring ring[LLMDEV_NUM_RINGS];
	struct mutex scrub_lock;	/* one scrub at a time */
	wait_queue_head_t scrub_wait;
	struct mutex perf_lock;		/* one counter snapshot at a time */
	struct mutex files_lock;	/* protects files and mapping */
	struct list_head files;
	struct address_space *mapping;
	struct list_head node;
	struct mutex link_lock;		/* link port configuration */
	struct mutex route_lock;	/* routing table */
	struct llmdev_route_entry route[LLMDEV_ROUTE_MAX];
	unsigned int route_count;
	u32 route_gen;
};

/**
 * struct llmdev_file - an open file of a card
 * @ldev: the card (reference held)
 * @node: in llmdev_device.files
 * @lock: protects @done, @next_fence, @nfences, @inflight and the jobs'
 *        complete flags; @fences has its own lock
 * @fences: fence number -> job, until consumed
 * @done: completed, unconsumed jobs
 * @next_fence: next fence number to hand out
 * @nfences: fences handed out and not yet consumed
 * @inflight: jobs not yet complete
 * @wq: woken when a job completes
 * @groups: collective groups created on this file, id -> group
 */
struct llmdev_file {
	struct llmdev_device *ldev;
	struct list_head node;
	spinlock_t lock;		/* protects done and the counters */
	struct xarray fences;
	struct list_head done;
	u64 next_fence;
	unsigned int nfences;
	unsigned int inflight;
	wait_queue_head_t wq;
	struct xarray groups;
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

/* Hot-unplug guard around hardware access, as drm_dev_enter() does. */
static inline bool llmdev_enter(struct llmdev_device *ldev, int *idx)
{
	*idx = srcu_read_lock(&ldev->unplug_srcu);
	if (READ_ONCE(ldev->unplugged)) {
		srcu_read_unlock(&ldev->unplug_srcu, *idx);
		return false;
	}
	return true;
}

static inline void llmdev_exit(struct llmdev_device *ldev, int idx)
{
	srcu_read_unlock(&ldev->unplug_srcu, idx);
}

void llmdev_get(struct llmdev_device *ldev);
void llmdev_put(struct llmdev_device *ldev);

/* llmdev_pci.c: every card; the lookups return a reference (llmdev_put) */
struct llmdev_device *llmdev_find_by_serial(u64 serial);
struct llmdev_device *llmdev_next_device(int minor);	/* lowest minor >= @minor */

/* llmdev_cdev.c */
int llmdev_cdev_init(void);
void llmdev_cdev_fini(void);
int llmdev_cdev_add(struct llmdev_device *ldev);
void llmdev_cdev_del(struct llmdev_device *ldev);
int llmdev_copy_from_user(void *dst, size_t ksize, size_t min_size,
			  const void __user *src);
extern const struct attribute_group *llmdev_groups[];

/* llmdev_hbm.c */
void llmdev_hbm_init(struct llmdev_hbm *hbm, u64 size);
void llmdev_hbm_fini(struct llmdev_device *ldev);
int llmdev_hbm_ioctl_alloc(struct llmdev_file *lf, void __user *arg);
int llmdev_hbm_ioctl_free(struct llmdev_file *lf, void __user *arg);
int llmdev_hbm_ioctl_list(struct llmdev_file *lf, void __user *arg);
int llmdev_hbm_ioctl_open(struct llmdev_file *lf, void __user *arg);
void llmdev_hbm_release_file(struct llmdev_file *lf);
void llmdev_hbm_release_region(struct llmdev_device *ldev,
			       struct llmdev_region *r);
struct llmdev_region *llmdev_region_get(struct llmdev_file *lf, u32 handle,
					u64 offset, u64 length);
void llmdev_region_put(struct llmdev_device *ldev, struct llmdev_region *r);
int llmdev_hbm_mmap(struct llmdev_file *lf, struct vm_area_struct *vma);
u64 llmdev_hbm_largest_free(struct llmdev_hbm *hbm);
u64 llmdev_hbm_used(struct llmdev_hbm *hbm);

/* llmdev_dma.c */
int llmdev_dma_init(struct llmdev_device *ldev);
void llmdev_dma_fini(struct llmdev_device *ldev);
void llmdev_dma_hw_start(struct llmdev_device *ldev);
int llmdev_dma_ioctl_submit(struct llmdev_file *lf, void __user *arg);
void llmdev_dma_handle_ring(struct llmdev_ring *ring);
void llmdev_dma_handle_error(struct llmdev_device *ldev);
void llmdev_dma_unplug(struct llmdev_device *ldev);

/* llmdev_fence.c */
int llmdev_fence_reserve(struct llmdev_file *lf, struct llmdev_fence *f,
			 void (*free)(struct llmdev_fence *f));
void llmdev_fence_unreserve(struct llmdev_fence *f);
int llmdev_fence_publish(struct llmdev_fence *f);
void llmdev_fence_signal(struct llmdev_fence *f, int status);
int llmdev_fence_ioctl_wait(struct llmdev_file *lf, void __user *arg);
__poll_t llmdev_fence_poll(struct llmdev_file *lf);
void llmdev_fence_release_file(struct llmdev_file *lf);

/* llmdev_coll.c */
int llmdev_group_ioctl_create(struct llmdev_file *lf, void __user *arg);
int llmdev_group_ioctl_destroy(struct llmdev_file *lf, void __user *arg);
int llmdev_coll_ioctl_submit(struct llmdev_file *lf, void __user *arg);
void llmdev_coll_release_file(struct llmdev_file *lf);
void llmdev_coll_handle_event(struct llmdev_device *ldev);
void llmdev_coll_unplug(struct llmdev_device *ldev);
void llmdev_coll_fini(void);
struct llmdev_file *llmdev_file_get(int fd, struct file **filp);

/* llmdev_route.c */
int llmdev_route_ioctl_set(struct llmdev_file *lf, void __user *arg);
int llmdev_route_ioctl_get(struct llmdev_file *lf, void __user *arg);
void llmdev_route_hw_start(struct llmdev_device *ldev);

/* llmdev_pci.c */
int llmdev_scrub(struct llmdev_device *ldev, u64 offset, u64 length);

/* llmdev_link.c */
void llmdev_link_hw_start(struct llmdev_device *ldev);
void llmdev_link_handle_event(struct llmdev_device *ldev);
int llmdev_link_get(struct llmdev_device *ldev, unsigned int port,
		    struct llmdev_link_info *info);
int llmdev_link_set(struct llmdev_device *ldev, unsigned int port,
		    bool enable);
int llmdev_link_ioctl_info(struct llmdev_file *lf, void __user *arg);
int llmdev_link_ioctl_set(struct llmdev_file *lf, void __user *arg);
bool llmdev_link_is_up(struct llmdev_device *ldev, unsigned int port);
extern const struct attribute_group llmdev_link_attr_groups[LLMDEV_NUM_LINK_PORTS];

/* llmdev_netlink.c */
int llmdev_netlink_init(void);
void llmdev_netlink_fini(void);
void llmdev_nl_link_event(struct llmdev_device *ldev, unsigned int port,
			  u8 cmd);
void llmdev_nl_coll_error(struct llmdev_device *ldev, u64 tag, int err);

/* llmdev_perf.c */
int llmdev_perf_snapshot(struct llmdev_device *ldev, struct llmdev_perf *perf);
int llmdev_perf_ioctl_read(struct llmdev_file *lf, void __user *arg);
extern const struct attribute_group llmdev_counters_group;

#endif /* LLMDEV_DRV_H */
