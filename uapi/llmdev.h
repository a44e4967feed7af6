/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR MIT) */
/*
 * llmdev: userspace ABI of the llmdev LLM-inference card driver.
 *
 * One character device per card, /dev/llmdevN. Every ioctl takes a pointer
 * to a struct that starts with "__u32 size" (the size of the struct as the
 * caller knows it) and "__u32 flags". Common rules, checked by every ioctl:
 *
 *  - size smaller than the first version of the struct: -EINVAL.
 *  - size larger than the kernel's struct: the extra bytes must be zero,
 *    else -E2BIG (so a newer binary runs on an older kernel as long as it
 *    does not use the new fields).
 *  - unknown bits in flags: -EINVAL. Reserved fields must be zero: -EINVAL.
 *  - unreadable or unwritable argument memory: -EFAULT.
 *  - the card was removed (hot-unplug): -ENODEV.
 *  - an unknown command: -ENOTTY.
 *
 * Sizes, offsets and addresses are __aligned_u64. Timeouts are __u64
 * nanoseconds. A wait interrupted by a signal is restarted by the kernel
 * when the handler has SA_RESTART; otherwise it fails with EINTR (never
 * with the kernel-internal 512) and can be called again with the same
 * struct, which then holds the time left.
 *
 * mmap(): the offset is a region's mmap_offset (or within it, page
 * aligned), the mapping must be MAP_SHARED and lie within one region.
 * Errors: -EINVAL not MAP_SHARED or not within one region; -EACCES a
 * region the caller may not use; -ENODEV the card was removed. Once a
 * region is freed or its card removed, its mappings give SIGBUS.
 * A DMA buffer must be ordinary memory: an mmap of the aperture as the
 * user buffer of LLMDEV_DMA_SUBMIT gives -EFAULT.
 */
#ifndef _UAPI_LLMDEV_H
#define _UAPI_LLMDEV_H

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

#define LLMDEV_TYPE		'L'

enum {
	LLMDEV_CMD_BASE = 0x80,
	LLMDEV_CMD_INFO = LLMDEV_CMD_BASE,
	LLMDEV_CMD_HBM_ALLOC,
	LLMDEV_CMD_HBM_FREE,
	LLMDEV_CMD_HBM_LIST,
	LLMDEV_CMD_HBM_OPEN,
	LLMDEV_CMD_DMA_SUBMIT,
	LLMDEV_CMD_FENCE_WAIT,
	LLMDEV_CMD_PERF_READ,
};

#define LLMDEV_NAME_LEN		32

/**
 * struct llmdev_info - LLMDEV_INFO: describe the card
 * @size: sizeof(struct llmdev_info)
 * @flags: must be 0
 * @spec_version: hardware spec version, major << 16 | minor
 * @num_h2c_rings: host-to-card DMA rings
 * @num_c2h_rings: card-to-host DMA rings
 * @num_link_ports: peer-link ports
 * @serial: card serial number
 * @hbm_size: bytes of HBM
 * @hbm_used: bytes of HBM allocated to regions
 * @hbm_largest_free: the largest region that can be allocated now
 * @pci_domain: PCI domain of the card
 * @pci_bus: PCI bus
 * @pci_devfn: PCI device and function
 * @numa_node: NUMA node of the card, -1 if none
 * @irq_vectors: interrupt vectors in use (8 with MSI-X, 1 with MSI)
 *
 * Every field but size and flags is output; their input values are
 * ignored. Errors: the common ones.
 */
struct llmdev_info {
	__u32 size;
	__u32 flags;
	__u32 spec_version;
	__u32 num_h2c_rings;
	__u32 num_c2h_rings;
	__u32 num_link_ports;
	__aligned_u64 serial;
	__aligned_u64 hbm_size;
	__aligned_u64 hbm_used;
	__aligned_u64 hbm_largest_free;
	__u32 pci_domain;
	__u16 pci_bus;
	__u16 pci_devfn;
	__s32 numa_node;
	__u32 irq_vectors;
};

#define LLMDEV_INFO		_IO(LLMDEV_TYPE, LLMDEV_CMD_INFO)

/* struct llmdev_hbm_alloc flags */
#define LLMDEV_HBM_PERSISTENT	_BITUL(0)	/* outlives the file; needs a name */

/**
 * struct llmdev_hbm_alloc - LLMDEV_HBM_ALLOC: allocate an HBM region
 * @size: sizeof(struct llmdev_hbm_alloc)
 * @flags: LLMDEV_HBM_PERSISTENT or 0
 * @length: bytes, > 0; rounded up to 4 KiB
 * @align: alignment in bytes, a power of two, 0 means 4 KiB
 * @name: NUL-terminated name, unique on the card among persistent regions;
 *        required with LLMDEV_HBM_PERSISTENT, optional otherwise
 * @handle: out: the region's handle, valid on this card
 * @__reserved: must be zero
 * @hbm_offset: out: offset of the region in the card's HBM
 * @mmap_offset: out: offset to pass to mmap() on this fd
 * @largest_free: out, also when the call fails with -ENOSPC: the largest
 *                region that can be allocated now
 *
 * A region belongs to the open file and is freed when the file is closed,
 * unless it is persistent: then it stays until LLMDEV_HBM_FREE by its owner
 * (the uid that created it) or by CAP_SYS_ADMIN. Freed HBM is scrubbed by
 * the card before it can be allocated again.
 *
 * Errors: -EINVAL length 0, align not a power of two, name not terminated,
 * persistent without a name; -ENOSPC no free extent large enough (see
 * largest_free); -EEXIST a persistent region of that name exists;
 * -ENOMEM out of kernel memory.
 */
struct llmdev_hbm_alloc {
	__u32 size;
	__u32 flags;
	__aligned_u64 length;
	__aligned_u64 align;
	char name[LLMDEV_NAME_LEN];
	__u32 handle;
	__u32 __reserved;
	__aligned_u64 hbm_offset;
	__aligned_u64 mmap_offset;
	__aligned_u64 largest_free;
};

#define LLMDEV_HBM_ALLOC	_IO(LLMDEV_TYPE, LLMDEV_CMD_HBM_ALLOC)

/**
 * struct llmdev_hbm_free - LLMDEV_HBM_FREE: free an HBM region
 * @size: sizeof(struct llmdev_hbm_free)
 * @flags: must be 0
 * @handle: the region
 * @__reserved: must be zero
 *
 * Transfers in flight on the region finish first. Existing mmaps of the
 * region are zapped; later accesses through them get SIGBUS.
 *
 * Errors: -ENOENT no such region; -EPERM a persistent region the caller
 * neither owns nor may administer (CAP_SYS_ADMIN), or a region of another
 * open file.
 */
struct llmdev_hbm_free {
	__u32 size;
	__u32 flags;
	__u32 handle;
	__u32 __reserved;
};

#define LLMDEV_HBM_FREE		_IO(LLMDEV_TYPE, LLMDEV_CMD_HBM_FREE)

/* struct llmdev_hbm_region flags */
#define LLMDEV_REGION_PERSISTENT	_BITUL(0)
#define LLMDEV_REGION_MINE		_BITUL(1)	/* owned by this open file */

/**
 * struct llmdev_hbm_region - one entry of LLMDEV_HBM_LIST
 * @handle: the region's handle
 * @flags: LLMDEV_REGION_*
 * @hbm_offset: offset in HBM
 * @length: bytes
 * @owner_uid: uid that created it
 * @owner_pid: pid (thread-group id) that created it, in the caller's namespace, 0 if not visible
 * @name: its name, may be empty
 */
struct llmdev_hbm_region {
	__u32 handle;
	__u32 flags;
	__aligned_u64 hbm_offset;
	__aligned_u64 length;
	__u32 owner_uid;
	__s32 owner_pid;
	char name[LLMDEV_NAME_LEN];
};

/**
 * struct llmdev_hbm_list - LLMDEV_HBM_LIST: list regions
 * @size: sizeof(struct llmdev_hbm_list)
 * @flags: must be 0
 * @count: in: entries @regions has room for; out: regions that exist
 *         (entries written: the smaller of the two)
 * @entry_size: sizeof(struct llmdev_hbm_region) as the caller knows it
 * @regions: user pointer to an array of struct llmdev_hbm_region
 *
 * Lists the persistent regions and the caller's own ones.
 * Errors: -EINVAL entry_size smaller than the first version of the entry.
 */
struct llmdev_hbm_list {
	__u32 size;
	__u32 flags;
	__u32 count;
	__u32 entry_size;
	__aligned_u64 regions;
};

#define LLMDEV_HBM_LIST		_IO(LLMDEV_TYPE, LLMDEV_CMD_HBM_LIST)

/**
 * struct llmdev_hbm_open - LLMDEV_HBM_OPEN: use a persistent region
 * @size: sizeof(struct llmdev_hbm_open)
 * @flags: must be 0
 * @name: NUL-terminated name of a persistent region
 * @handle: out: its handle
 * @__reserved: must be zero
 * @length: out: its length
 * @mmap_offset: out: offset to pass to mmap() on this fd
 *
 * Errors: -EINVAL name empty or not terminated; -ENOENT no persistent
 * region of that name; -EPERM the caller is neither its owner nor
 * CAP_SYS_ADMIN.
 */
struct llmdev_hbm_open {
	__u32 size;
	__u32 flags;
	char name[LLMDEV_NAME_LEN];
	__u32 handle;
	__u32 __reserved;
	__aligned_u64 length;
	__aligned_u64 mmap_offset;
};

#define LLMDEV_HBM_OPEN		_IO(LLMDEV_TYPE, LLMDEV_CMD_HBM_OPEN)

/* struct llmdev_dma flags */
#define LLMDEV_DMA_TO_CARD	_BITUL(0)	/* else card to host */

#define LLMDEV_RING_ANY		0xffffffffU

/**
 * struct llmdev_dma - LLMDEV_DMA_SUBMIT: start a transfer
 * @size: sizeof(struct llmdev_dma)
 * @flags: LLMDEV_DMA_TO_CARD or 0 (card to host)
 * @handle: the region
 * @ring: DMA ring for the direction (0 .. num rings of that direction - 1),
 *        or LLMDEV_RING_ANY
 * @offset: byte offset in the region
 * @user_addr: host buffer, any alignment
 * @length: bytes, 1 .. 1 GiB
 * @fence: out: identifies the transfer for LLMDEV_FENCE_WAIT and poll()
 *
 * The user pages are pinned for the duration of the transfer (zero copy).
 * The call returns as soon as the transfer is queued.
 *
 * Errors: -EINVAL length 0 or too large, offset + length beyond the region
 * (or overflowing), bad ring; -ENOENT no such region; -EPERM a region the
 * caller may not use; -EFAULT the buffer is not mapped (or not writable for
 * card-to-host); -EAGAIN too many transfers in flight on this file
 * (LLMDEV_MAX_FENCES), wait for some first; -ENOMEM.
 */
struct llmdev_dma {
	__u32 size;
	__u32 flags;
	__u32 handle;
	__u32 ring;
	__aligned_u64 offset;
	__aligned_u64 user_addr;
	__aligned_u64 length;
	__aligned_u64 fence;
};

#define LLMDEV_DMA_SUBMIT	_IO(LLMDEV_TYPE, LLMDEV_CMD_DMA_SUBMIT)

#define LLMDEV_MAX_FENCES	1024	/* unreaped transfers per open file */
#define LLMDEV_DMA_MAX_LENGTH	_BITULL(30)

/* struct llmdev_fence_wait flags */
#define LLMDEV_WAIT_ANY		_BITUL(0)	/* ignore @fence: any completed one */

/**
 * struct llmdev_fence_wait - LLMDEV_FENCE_WAIT: wait for a transfer
 * @size: sizeof(struct llmdev_fence_wait)
 * @flags: LLMDEV_WAIT_ANY or 0
 * @fence: in: the fence (ignored with LLMDEV_WAIT_ANY); out: the fence
 *         that completed
 * @timeout_ns: how long to wait; 0 polls. When a signal interrupts the
 *              wait, the kernel writes the time left here before the call
 *              is restarted (or fails with EINTR, for a handler without
 *              SA_RESTART), so a retry with the same struct keeps the
 *              original deadline
 * @status: out: 0, or the transfer's negative errno: -EIO the card
 *          reported a DMA error; -ETIMEDOUT the card made no progress on
 *          this transfer for the dma_timeout_ms module parameter (the ring
 *          was reset); -ECANCELED the transfer was queued behind one that
 *          failed so, and the ring reset dropped it: submit it again;
 *          -ENODEV the card was removed
 * @__reserved: must be zero
 *
 * A completed fence is consumed: waiting on it again gives -ENOENT.
 * poll() reports POLLIN while the file has completed, unconsumed fences.
 *
 * Errors: -ENOENT no such fence on this file (or none at all with
 * LLMDEV_WAIT_ANY); -ETIME the fence did not complete within timeout_ns
 * (it is still pending and can be waited for again); -EFAULT the struct
 * is not writable (the fence is not consumed).
 */
struct llmdev_fence_wait {
	__u32 size;
	__u32 flags;
	__aligned_u64 fence;
	__aligned_u64 timeout_ns;
	__s32 status;
	__u32 __reserved;
};

#define LLMDEV_FENCE_WAIT	_IO(LLMDEV_TYPE, LLMDEV_CMD_FENCE_WAIT)

/* Perf counter indices, as the card numbers them. */
enum llmdev_counter {
	LLMDEV_COUNTER_H2C_BYTES,
	LLMDEV_COUNTER_C2H_BYTES,
	LLMDEV_COUNTER_H2C_DESC,
	LLMDEV_COUNTER_C2H_DESC,
	LLMDEV_COUNTER_IRQS,
	LLMDEV_COUNTER_APERTURE_RD_BYTES,
	LLMDEV_COUNTER_APERTURE_WR_BYTES,
	LLMDEV_COUNTER_ERRORS,
	LLMDEV_COUNTER_DMA_BUSY_NS,
	LLMDEV_COUNTER_SCRUB_BYTES,
	LLMDEV_COUNTER_DOORBELLS,
	LLMDEV_COUNTER_NUM,
};

#define LLMDEV_MAX_COUNTERS	32

/**
 * struct llmdev_perf - LLMDEV_PERF_READ: snapshot every counter at once
 * @size: sizeof(struct llmdev_perf)
 * @flags: must be 0
 * @num_counters: out: counters the card has (LLMDEV_COUNTER_NUM today)
 * @__reserved: must be zero
 * @card_time_ns: out: card timestamp of the snapshot
 * @host_time_ns: out: CLOCK_MONOTONIC when the snapshot was taken
 * @counters: out: values, indexed by enum llmdev_counter
 *
 * Counters count from card reset and never go backwards until the next
 * reset. Errors: the common ones.
 */
struct llmdev_perf {
	__u32 size;
	__u32 flags;
	__u32 num_counters;
	__u32 __reserved;
	__aligned_u64 card_time_ns;
	__aligned_u64 host_time_ns;
	__aligned_u64 counters[LLMDEV_MAX_COUNTERS];
};

#define LLMDEV_PERF_READ	_IO(LLMDEV_TYPE, LLMDEV_CMD_PERF_READ)

#endif /* _UAPI_LLMDEV_H */
