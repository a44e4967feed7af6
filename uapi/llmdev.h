/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR MIT) */
/*
 * llmdev: userspace ABI of the llmdev LLM-inference card driver.
 *
 * One character device per card, /dev/llmdevN. Every ioctl takes a pointer
 * to a struct that starts with "__u32 size" (the size of the struct as the
 * caller knows it) and "__u32 flags". Structs grow only by appending
 * fields; the size of a struct's first version never changes. The first
 * versions end at: llmdev_info.irq_vectors, llmdev_hbm_alloc.largest_free,
 * llmdev_hbm_free.__reserved, llmdev_hbm_list.regions,
 * llmdev_hbm_open.mmap_offset, llmdev_dma.fence,
 * llmdev_fence_wait.__reserved, llmdev_perf.counters,
 * llmdev_link_info.rx_errors, llmdev_link_set.enable,
 * llmdev_group_create.fds, llmdev_group_destroy.__reserved,
 * llmdev_coll.fence, llmdev_route.error_index, llmdev_reset.flags,
 * llmdev_buf_register.__reserved, llmdev_buf_unregister.__reserved,
 * llmdev_dma_batch.error_index; and of the array elements:
 * llmdev_hbm_region.name, llmdev_coll_buf.dst_offset,
 * llmdev_route_entry.length, llmdev_dma_op.buf_offset. Common rules, checked by every ioctl:
 *
 *  - size smaller than the first version of the struct: -EINVAL.
 *  - size between the first version and the kernel's struct: accepted; the
 *    fields the caller does not know read as zero, and replies are cut to
 *    the caller's size (so a binary built against an older header works).
 *  - size larger than the kernel's struct: the extra bytes must be zero,
 *    else -E2BIG (so a newer binary runs on an older kernel as long as it
 *    does not use the new fields). The same holds for the elements of an
 *    array whose element size the caller gives (llmdev_dma_batch.op_size,
 *    llmdev_coll.buf_size, llmdev_route.entry_size).
 *  - unknown bits in flags: -EINVAL. Reserved fields must be zero: -EINVAL.
 *  - unreadable or unwritable argument memory: -EFAULT. A call whose reply
 *    cannot be written has no effect, except where a call says otherwise.
 *  - the card was removed (hot-unplug): -ENODEV.
 *  - the card is dead: a reset failed (see LLMDEV_RESET): -EIO, from every
 *    call but LLMDEV_RESET and LLMDEV_HBM_FREE.
 *  - out of kernel memory: -ENOMEM.
 *  - an unknown command: -ENOTTY.
 *
 * Calls that need the hardware wait while the card is being reset (an FLR,
 * LLMDEV_RESET, or recovery from a PCIe error) and then go on; a fatal
 * signal ends the wait with -EINTR.
 *
 * Sizes, offsets and addresses are __aligned_u64. Timeouts are __u64
 * nanoseconds. A wait interrupted by a signal is restarted by the kernel
 * when the handler has SA_RESTART; otherwise it fails with EINTR (never
 * with the kernel-internal 512) and can be called again with the same
 * struct, which then holds the time left.
 *
 * Who may use a region (LLMDEV_HBM_OPEN, LLMDEV_HBM_FREE, mmap(), and
 * transfers: LLMDEV_DMA, LLMDEV_DMA_BATCH, LLMDEV_COLL):
 *  - the open file that created it, always (also when passed to another
 *    process), for as long as that file is open;
 *  - a persistent region also: a process with the same effective uid in
 *    the same user namespace as its creator had, provided the creator did
 *    not have CAP_SYS_ADMIN (in the initial user namespace). A region made
 *    with CAP_SYS_ADMIN (say, the weights `llmctl load` made as root) is
 *    for CAP_SYS_ADMIN only: a uid 0 without CAP_SYS_ADMIN (a container
 *    given the card, with or without a user namespace) may not use it;
 *  - CAP_SYS_ADMIN (in the initial user namespace): every persistent
 *    region.
 * Anyone else gets -EPERM (-EACCES from mmap()). LLMDEV_HBM_LIST shows
 * every persistent region to everyone, with its owner's uid.
 *
 * mmap(): the offset is a region's mmap_offset (or within it, page
 * aligned), the mapping must be MAP_SHARED and lie within one region.
 * Errors: -EINVAL not MAP_SHARED or not within one region; -EACCES a
 * region the caller may not use (see "Who may use a region"); -ENODEV the
 * card was removed. Once a region is freed or its card removed, its
 * mappings give SIGBUS, whatever device node or open file they were made
 * through. A reset zaps every mapping too; the next access maps the
 * region's pages again (its contents
 * survive a reset) or, if the reset left the card dead, gets SIGBUS.
 * A DMA buffer must be ordinary memory: an mmap of the aperture as the
 * user buffer of LLMDEV_DMA_SUBMIT gives -EFAULT.
 */
#ifndef _UAPI_LLMDEV_H
#define _UAPI_LLMDEV_H

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

#define LLMDEV_TYPE		'L'

/*
 * The ABI's version: MINOR grows with each ioctl or field added (1.2:
 * LLMDEV_RESET). The driver reports it as its module version
 * (/sys/module/llmdev/version, "1.2"); libllmdev's version has the same
 * major and minor as the header it was built with.
 */
#define LLMDEV_ABI_MAJOR	1
#define LLMDEV_ABI_MINOR	2

/*
 * Besides this ABI, each open file of a card reports what it holds and did
 * in /proc/PID/fdinfo/FD ("llmdev-*" keys, DRM fdinfo style): an ABI for
 * tools, its keys listed in docs/fdinfo.md. hwmon, perf and devlink: see
 * docs/operators.md.
 */

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
	LLMDEV_CMD_LINK_INFO,
	LLMDEV_CMD_LINK_SET,
	LLMDEV_CMD_GROUP_CREATE,
	LLMDEV_CMD_GROUP_DESTROY,
	LLMDEV_CMD_COLL_SUBMIT,
	LLMDEV_CMD_ROUTE_SET,
	LLMDEV_CMD_ROUTE_GET,
	LLMDEV_CMD_RESET,
	LLMDEV_CMD_BUF_REGISTER,
	LLMDEV_CMD_BUF_UNREGISTER,
	LLMDEV_CMD_DMA_BATCH,
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
 * unless it is persistent: then it stays until LLMDEV_HBM_FREE by someone
 * who may use it (see "Who may use a region" at the top: its creator's
 * uid in its creator's user namespace, but CAP_SYS_ADMIN only if the
 * creator had CAP_SYS_ADMIN). Freed HBM is scrubbed by the card before it
 * can be allocated again; all of a card's HBM, persistent regions
 * included, is scrubbed when the driver binds the card and again when it
 * lets it go (unbind, rmmod, removal of a card that still answers).
 *
 * Errors: -EINVAL length 0, align not a power of two, name not terminated,
 * persistent without a name, unknown flags, reserved set; -ENOSPC no free
 * extent large enough (see largest_free); -EEXIST a persistent region of
 * that name exists; -ENOMEM out of kernel memory; -EFAULT the struct is
 * not writable (no region was made: nobody saw its handle).
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
 * Errors: -ENOENT no such region; -EPERM a region of another open file
 * that is not persistent, or a persistent region the caller may not use
 * (see "Who may use a region" at the top): the caller lacks CAP_SYS_ADMIN
 * and has another effective uid or user namespace than its creator, or
 * the creator had CAP_SYS_ADMIN; -EBUSY the card's routing table names
 * the region (LLMDEV_ROUTE_SET a table without it first). The struct is
 * input only.
 * If the card cannot scrub the region (it is dead, or the scrub fails),
 * the call still succeeds, but the HBM stays out of use (hbm_used counts
 * it) until a scrub after the next successful reset.
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
/*
 * made without CAP_SYS_ADMIN: the creator's uid (in its user namespace)
 * may use it too (see "Who may use a region"); a tool run with
 * CAP_SYS_ADMIN that finds one under a name it means to create should not
 * take it for its own, whatever its owner_uid (set by the drivers of
 * llmdev 1.3.0 on; older ones never set it)
 */
#define LLMDEV_REGION_UNPRIVILEGED	_BITUL(2)

/**
 * struct llmdev_hbm_region - one entry of LLMDEV_HBM_LIST
 * @handle: the region's handle
 * @flags: LLMDEV_REGION_*
 * @hbm_offset: offset in HBM
 * @length: bytes
 * @owner_uid: effective uid of the process that created it
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
 * Lists the persistent regions and the caller's own ones. Entries are
 * filled in up to entry_size (what the caller's header has); a larger
 * entry_size gets zeroes after the kernel's entry.
 * Errors: -EINVAL flags set, entry_size smaller than the first version of
 * the entry; -EFAULT regions not writable for the entries written;
 * -ENOMEM.
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
 * region of that name; -EPERM the caller may not use it (see "Who may use
 * a region" at the top): the caller lacks CAP_SYS_ADMIN and has another
 * effective uid or user namespace than its creator, or the creator had
 * CAP_SYS_ADMIN (a uid 0 without CAP_SYS_ADMIN cannot open the regions
 * root made with CAP_SYS_ADMIN).
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
 *        or LLMDEV_RING_ANY: the direction's rings in turn, per card
 * @offset: byte offset in the region
 * @user_addr: host buffer, any alignment
 * @length: bytes, 1 .. 1 GiB
 * @fence: out: identifies the transfer for LLMDEV_FENCE_WAIT and poll()
 *
 * The user pages are pinned for the duration of the transfer (zero copy).
 * The call returns as soon as the transfer is queued. What the transfers
 * of all cards hold pinned of memory that is not registered is bounded
 * (the max_pinned_mb module parameter, by default a quarter of RAM): a
 * transfer that would go past it waits, in this call, for others to
 * finish (any file's, any card's), unless nothing else is pinned.
 *
 * Errors: -EINVAL length 0 or too large, offset + length beyond the region
 * (or overflowing), bad ring; -ENOENT no such region; -EPERM a region the
 * caller may not use (see "Who may use a region" at the top); -EFAULT the
 * buffer is not mapped (or not writable for card-to-host), or the reply
 * could not be written (then nothing was started); -EAGAIN too many
 * transfers in flight on this file (LLMDEV_MAX_FENCES), wait for some
 * first; -EINTR a signal came while the call waited for pinned memory
 * (nothing was queued; the call is restarted if the handler asked for
 * it, SA_RESTART); -ENOMEM out of memory, or the
 * host could not map the buffer for the card (IOMMU space, or bounce
 * buffers: a guest that bounces all DMA through swiotlb, as confidential
 * guests do, moves at most its bounce pool, 64 MiB by default, in one
 * transfer); -ENODEV; -EIO the card is dead. While the card is being
 * reset, a transfer is queued and runs after the reset.
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
 *          reported a DMA error, or was reset while the transfer was on
 *          it (LLMDEV_RESET), or is dead; -ETIMEDOUT the card made no progress on
 *          this transfer for the dma_timeout_ms module parameter (the ring
 *          was reset); -ECANCELED the transfer was queued on the ring
 *          behind one that failed (-ETIMEDOUT, or -EIO for a DMA error the
 *          card reported), and the ring reset dropped it: submit it again;
 *          -ENODEV the card was removed
 * @__reserved: must be zero
 *
 * A completed fence is consumed: waiting on it again gives -ENOENT.
 * poll() reports POLLIN while the file has completed, unconsumed fences.
 *
 * Errors: -ENOENT no such fence on this file (or none at all with
 * LLMDEV_WAIT_ANY); -ETIME the fence did not complete within timeout_ns
 * (it is still pending and can be waited for again); -EFAULT the struct
 * is not writable (the fence is not consumed); -EINTR a signal arrived
 * and its handler has no SA_RESTART (timeout_ns holds the time left);
 * -ENODEV the card was removed; -EIO the card is dead.
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
	LLMDEV_COUNTER_LINK_TX_BYTES,
	LLMDEV_COUNTER_LINK_RX_BYTES,
	LLMDEV_COUNTER_COLL_OPS,
	LLMDEV_COUNTER_COLL_BUSY_NS,
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

/* ---- Peer links ------------------------------------------------------------ */

/* struct llmdev_link_info state */
enum llmdev_link_state {
	LLMDEV_LINK_DOWN,
	LLMDEV_LINK_TRAINING,	/* enabled, cabled, waiting for the peer */
	LLMDEV_LINK_UP,
};

/* struct llmdev_link_info link_flags */
#define LLMDEV_LINK_ENABLED	_BITUL(0)	/* software enabled the port */
#define LLMDEV_LINK_CABLED	_BITUL(1)	/* a cable leads to another card */

#define LLMDEV_NO_CARD		(-1)

/**
 * struct llmdev_link_info - LLMDEV_LINK_INFO: state of one peer-link port
 * @size: sizeof(struct llmdev_link_info)
 * @flags: must be 0
 * @port: in: port number, 0 .. num_link_ports - 1
 * @state: out: enum llmdev_link_state
 * @link_flags: out: LLMDEV_LINK_*
 * @peer_port: out: the peer's port, when up
 * @peer_serial: out: the peer card's serial number, when up; else 0
 * @peer_minor: out: N of the peer's /dev/llmdevN when up and the peer is
 *              a card of this host, else LLMDEV_NO_CARD
 * @down_count: out: times the link went from up to down
 * @tx_bytes: out: bytes sent on the port since card reset
 * @rx_bytes: out: bytes received
 * @tx_errors: out: frames the port had to send again
 * @rx_errors: out: frames received with CRC errors
 *
 * Errors: -EINVAL port out of range, flags set; -EINTR a fatal signal
 * while waiting for a reset; -EIO the card is dead.
 */
struct llmdev_link_info {
	__u32 size;
	__u32 flags;
	__u32 port;
	__u32 state;
	__u32 link_flags;
	__u32 peer_port;
	__aligned_u64 peer_serial;
	__s32 peer_minor;
	__u32 down_count;
	__aligned_u64 tx_bytes;
	__aligned_u64 rx_bytes;
	__aligned_u64 tx_errors;
	__aligned_u64 rx_errors;
};

#define LLMDEV_LINK_INFO	_IO(LLMDEV_TYPE, LLMDEV_CMD_LINK_INFO)

/**
 * struct llmdev_link_set - LLMDEV_LINK_SET: enable or disable a port
 * @size: sizeof(struct llmdev_link_set)
 * @flags: must be 0
 * @port: port number
 * @enable: 1 to enable (the link trains and comes up when the peer's port
 *          is enabled too), 0 to take it down
 *
 * The driver enables every port when it binds to a card (module parameter
 * links_enable). The struct is input only. Errors: -EPERM without
 * CAP_SYS_ADMIN; -EINVAL port out of range, enable not 0 or 1, flags set;
 * -EINTR a fatal signal while waiting for a reset; -EIO the card is dead.
 */
struct llmdev_link_set {
	__u32 size;
	__u32 flags;
	__u32 port;
	__u32 enable;
};

#define LLMDEV_LINK_SET		_IO(LLMDEV_TYPE, LLMDEV_CMD_LINK_SET)

/* ---- Collective groups and collectives ----------------------------------- */

#define LLMDEV_MAX_RANKS	16
#define LLMDEV_MAX_GROUPS	64	/* per open file */

/**
 * struct llmdev_group_create - LLMDEV_GROUP_CREATE: a group of cards
 * @size: sizeof(struct llmdev_group_create)
 * @flags: must be 0
 * @nranks: number of cards, 1 .. LLMDEV_MAX_RANKS
 * @group: out: the group's id on this file
 * @fds: user pointer to __s32[nranks]: an open file of each card, in rank
 *       order (the file this ioctl is called on may be one of them)
 *
 * The ranks must form a ring over links that are up: for every rank r
 * there is an up link from card r to card (r + 1) % nranks. The driver
 * picks the ports. A group lives until LLMDEV_GROUP_DESTROY or until this
 * file is closed; it does not keep the member files open.
 *
 * Errors: -EINVAL nranks out of range, flags set, an fd that is not an
 * llmdev card, the same card twice; -EBADF an fd that is not open;
 * -EFAULT fds not readable, or the struct not writable (no group was
 * made); -ENOLINK no link that is up from some rank to the next (also
 * when a member is dead); -EMFILE LLMDEV_MAX_GROUPS groups exist on this
 * file; -ENOMEM.
 */
struct llmdev_group_create {
	__u32 size;
	__u32 flags;
	__u32 nranks;
	__u32 group;
	__aligned_u64 fds;
};

#define LLMDEV_GROUP_CREATE	_IO(LLMDEV_TYPE, LLMDEV_CMD_GROUP_CREATE)

/**
 * struct llmdev_group_destroy - LLMDEV_GROUP_DESTROY
 * @size: sizeof(struct llmdev_group_destroy)
 * @flags: must be 0
 * @group: the group's id
 * @__reserved: must be zero
 *
 * Collectives already submitted on the group still complete. The struct
 * is input only.
 * Errors: -ENOENT no such group on this file; -EINVAL flags or reserved
 * set.
 */
struct llmdev_group_destroy {
	__u32 size;
	__u32 flags;
	__u32 group;
	__u32 __reserved;
};

#define LLMDEV_GROUP_DESTROY	_IO(LLMDEV_TYPE, LLMDEV_CMD_GROUP_DESTROY)

/* struct llmdev_coll op */
enum llmdev_coll_op {
	LLMDEV_COLL_ALLREDUCE = 1,
	LLMDEV_COLL_BROADCAST = 2,
};

/* struct llmdev_coll redop (AllReduce) */
enum llmdev_redop {
	LLMDEV_REDOP_SUM,
	LLMDEV_REDOP_MIN,
	LLMDEV_REDOP_MAX,
};

/* struct llmdev_coll dtype */
enum llmdev_dtype {
	LLMDEV_DTYPE_F32,
	LLMDEV_DTYPE_F16,
	LLMDEV_DTYPE_BF16,
	LLMDEV_DTYPE_I32,
};

/**
 * struct llmdev_coll_buf - one rank's buffers in a collective
 * @fd: an open file of the rank's card; the regions are looked up and
 *      access-checked as for that file
 * @src_handle: region holding the input (AllReduce: every rank;
 *              broadcast: the root only, ignored on the other ranks)
 * @dst_handle: region receiving the result
 * @__reserved: must be zero
 * @src_offset: byte offset of the input in its region
 * @dst_offset: byte offset of the output in its region
 *
 * The input and output may be the same bytes (in place) but must not
 * overlap otherwise.
 */
struct llmdev_coll_buf {
	__s32 fd;
	__u32 src_handle;
	__u32 dst_handle;
	__u32 __reserved;
	__aligned_u64 src_offset;
	__aligned_u64 dst_offset;
};

#define LLMDEV_COLL_MAX_BYTES	_BITULL(32)	/* count * element size */

/**
 * struct llmdev_coll - LLMDEV_COLL_SUBMIT: start an AllReduce or broadcast
 * @size: sizeof(struct llmdev_coll)
 * @flags: must be 0
 * @group: a group of this file
 * @op: enum llmdev_coll_op
 * @dtype: enum llmdev_dtype
 * @redop: enum llmdev_redop for AllReduce; 0 for broadcast
 * @root: the source rank of a broadcast; 0 for AllReduce
 * @buf_size: sizeof(struct llmdev_coll_buf) as the caller knows it
 * @count: elements per rank, 1 .. LLMDEV_COLL_MAX_BYTES / element size
 * @bufs: user pointer to struct llmdev_coll_buf[nranks], in rank order
 * @fence: out: completes when every rank has finished
 *
 * AllReduce runs as a ring reduce-scatter and all-gather (docs/hardware.md
 * section 13, "Collective engine"): every link of the ring carries
 * 2 * (nranks - 1) / nranks of the data. Integer results are exact; float
 * sums are combined in ring order in the element type, so they differ
 * from a sequential sum by rounding only (at most nranks - 1 roundings of
 * the element type per element). Min and max are exact.
 *
 * Collectives of all groups and files run one at a time. A user's
 * collectives (those submitted on files its effective uid opened) run in
 * submission order; when several users have collectives queued they take
 * turns, one collective each, so that one user's long queue does not
 * hold up another's. The fence
 * status is 0 or: -ENOLINK a link of the ring went down during the
 * collective; -EHOSTUNREACH the links no longer form the
 * group's ring; -ETIMEDOUT it did not finish within the coll_timeout_ms
 * module parameter; -ECANCELED it was aborted; -ENODEV a member card was
 * removed; -EIO the card refused it, or a member was reset while it ran,
 * or is dead. Every member is stopped in each case; the cards stay usable.
 * A collective queued while a member is being reset waits for the end of
 * the reset, and the same user's later collectives wait behind it (other
 * users' go on).
 *
 * Errors: -ENOENT no such group or region; -EINVAL bad op, dtype, redop,
 * root, count or buf_size, a buffer beyond its region, src and dst
 * overlapping without being equal, an fd that is not the rank's card,
 * reserved field set; -EBADF an fd that is not open; -EPERM a region the
 * caller may not use (see "Who may use a region" at the top); -ENOLINK a
 * link of the group's ring is not up;
 * -EAGAIN too many fences on this file; -EFAULT bufs not readable, or
 * the struct not writable (nothing was started); -ENODEV a member card was
 * removed; -EIO a member card is dead; -ENOMEM.
 */
struct llmdev_coll {
	__u32 size;
	__u32 flags;
	__u32 group;
	__u32 op;
	__u32 dtype;
	__u32 redop;
	__u32 root;
	__u32 buf_size;
	__aligned_u64 count;
	__aligned_u64 bufs;
	__aligned_u64 fence;
};

#define LLMDEV_COLL_SUBMIT	_IO(LLMDEV_TYPE, LLMDEV_CMD_COLL_SUBMIT)

/* ---- Shard routing table --------------------------------------------------- */

#define LLMDEV_ROUTE_MAX	32	/* entries per card */
#define LLMDEV_ROUTE_MAX_LAYER	65535
#define LLMDEV_HOP_HOST		0xffU	/* next hop: back to the host */

/**
 * struct llmdev_route_entry - one entry of a card's routing table
 * @layer_first: first layer this shard serves
 * @layer_last: last layer (inclusive), <= LLMDEV_ROUTE_MAX_LAYER
 * @tp_rank: tensor-parallel rank of the shard
 * @tp_size: tensor-parallel ranks, 1 .. 255
 * @handle: persistent region on this card that holds the shard
 * @next_hop: link port that leads to the next pipeline stage, or
 *            LLMDEV_HOP_HOST
 * @hbm_offset: out (LLMDEV_ROUTE_GET): the region's offset in HBM;
 *              ignored by LLMDEV_ROUTE_SET
 * @length: out (LLMDEV_ROUTE_GET): the region's length; ignored by SET
 */
struct llmdev_route_entry {
	__u32 layer_first;
	__u32 layer_last;
	__u32 tp_rank;
	__u32 tp_size;
	__u32 handle;
	__u32 next_hop;
	__aligned_u64 hbm_offset;
	__aligned_u64 length;
};

/**
 * struct llmdev_route - LLMDEV_ROUTE_SET / LLMDEV_ROUTE_GET
 * @size: sizeof(struct llmdev_route)
 * @flags: must be 0
 * @count: SET: entries in @entries (0 clears the table); GET: in: room in
 *         @entries, out: entries in the table (entries written: the
 *         smaller of the two)
 * @entry_size: sizeof(struct llmdev_route_entry) as the caller knows it
 * @entries: user pointer to struct llmdev_route_entry[count]
 * @generation: out: tables applied on this card since the driver bound
 * @error_index: out, SET: the first entry that was rejected, or ~0
 *
 * SET replaces the card's whole table, all entries or none: a rejected
 * table leaves the previous one in place. A routed region cannot be
 * freed (-EBUSY) until a table without it is set.
 *
 * Errors (SET): -EPERM without CAP_SYS_ADMIN; -ENOSPC more than
 * LLMDEV_ROUTE_MAX entries; -EINVAL entry_size too small, a malformed
 * entry (layer_first > layer_last, a layer beyond LLMDEV_ROUTE_MAX_LAYER,
 * tp_size 0 or > 255, tp_rank >= tp_size, next_hop neither a port nor
 * LLMDEV_HOP_HOST); -EEXIST two entries with the same tp_rank and
 * overlapping layers; -ENOENT no region with that handle; -EACCES the
 * region is not persistent; -ENOLINK next_hop is a port whose link is not
 * up; -EIO the card refused the table, or is dead; -ENOMEM; -EFAULT
 * entries not readable, or the reply could not be written (the table may
 * have been applied then: generation tells). GET: -EINVAL entry_size too
 * small or flags set; -EFAULT entries not writable; -ENOMEM.
 */
struct llmdev_route {
	__u32 size;
	__u32 flags;
	__u32 count;
	__u32 entry_size;
	__aligned_u64 entries;
	__u32 generation;
	__u32 error_index;
};

#define LLMDEV_ROUTE_SET	_IO(LLMDEV_TYPE, LLMDEV_CMD_ROUTE_SET)
#define LLMDEV_ROUTE_GET	_IO(LLMDEV_TYPE, LLMDEV_CMD_ROUTE_GET)

/* ---- Reset ------------------------------------------------------------------- */

/**
 * struct llmdev_reset - LLMDEV_RESET: reset the card
 * @size: sizeof(struct llmdev_reset)
 * @flags: must be 0
 *
 * The struct is input only: nothing is written back.
 *
 * A function-level reset of the card (the PCI core's pci_reset_function():
 * FLR where the card has it). A reset started any other way (writing 1 to
 * /sys/bus/pci/devices/.../reset, or the kernel's recovery from a PCIe
 * error reported by AER) does the same to the driver's state:
 *
 *  - transfers whose descriptors the card had been given end with fence
 *    status -EIO; transfers still queued in the driver run after the reset.
 *  - a running collective that has the card as a member ends with -EIO
 *    (on every member); queued collectives run after the reset.
 *  - HBM regions, per-file and persistent, and their contents are kept, and
 *    so is the routing table (the driver writes it to the card again).
 *  - every user mapping of the card is zapped; the next access maps the
 *    pages again.
 *  - the link ports are enabled again (as at probe) and retrain.
 *  - the perf counters start again from zero.
 *  - the generic netlink family multicasts LLMDEV_GENL_CMD_RESET_START and
 *    then RESET_DONE, or RESET_FAILED (uapi/llmdev_netlink.h, installed
 *    as <llmdev-netlink.h>).
 *  - /sys/class/llmdev/llmdevN/ counts reset_count and reset_failures, and
 *    its state file reads "live", "resetting" or "dead".
 *
 * Calls made during the reset wait for its end. If the card does not come
 * back (it does not answer, or does not identify itself), it is marked
 * dead: everything in flight ends with -EIO, every call but LLMDEV_RESET
 * fails with -EIO, mappings give SIGBUS; another LLMDEV_RESET that
 * succeeds brings it back.
 *
 * Errors: -EPERM without CAP_SYS_ADMIN; -EIO the card did not come back
 * and is now dead; -EOPNOTSUPP the platform cannot reset the card. The call
 * is not ended by signals: a reset already under way (another
 * LLMDEV_RESET, a PCIe error recovery) is waited for first.
 */
struct llmdev_reset {
	__u32 size;
	__u32 flags;
};

#define LLMDEV_RESET		_IO(LLMDEV_TYPE, LLMDEV_CMD_RESET)

/* ---- Registered host buffers and batched DMA ------------------------------- */

/* struct llmdev_buf_register flags */
#define LLMDEV_BUF_READ_ONLY	_BITUL(0)	/* only a source for transfers to the card */

#define LLMDEV_MAX_BUFS		4096		/* registered buffers per open file */
#define LLMDEV_BUF_MAX_SHARE	4		/* writable buffers one page may be in */
#define LLMDEV_BUF_MAX_LENGTH	_BITULL(36)	/* 64 GiB */

/**
 * struct llmdev_buf_register - LLMDEV_BUF_REGISTER: pin and map host memory once
 * @size: sizeof(struct llmdev_buf_register)
 * @flags: LLMDEV_BUF_READ_ONLY or 0
 * @user_addr: start of the buffer, any alignment
 * @length: bytes, 1 .. LLMDEV_BUF_MAX_LENGTH
 * @buf: out: the buffer's id on this open file
 * @__reserved: must be zero
 *
 * The pages are pinned and mapped for the card's DMA until the buffer is
 * unregistered or the file is closed, so transfers from and to it
 * (LLMDEV_DMA_BATCH with LLMDEV_OP_BUF) pin and map nothing. The pinned
 * pages count against RLIMIT_MEMLOCK, of the process and, as io_uring's
 * registered buffers do, of its user (every process of the user together,
 * with io_uring's and other pinned pages) unless the caller has
 * CAP_IPC_LOCK. Without LLMDEV_BUF_READ_ONLY the
 * memory must be writable (transfers from the card write it); with it, the
 * buffer can only be the source of transfers to the card.
 *
 * A buffer is the memory of the process that registered it, as it was
 * when registered: a child after fork() that shares the file reaches the
 * parent's pages through it, not its own copy; an munmap() or mremap() of
 * the range does not change what the card reads and writes. Where the
 * platform's DMA needs it (bounce buffers, caches the card does not
 * snoop), each transfer syncs the part of the buffer it moves.
 *
 * Errors: -EINVAL length 0 or too large, unknown flags, reserved set, the
 * range wraps; -EFAULT the range is not mapped (or not writable, without
 * LLMDEV_BUF_READ_ONLY), or holds memory that cannot be pinned (device
 * memory, such as a mapping of the aperture); -ENOMEM out of memory,
 * RLIMIT_MEMLOCK reached, or the host could not map the buffer for the
 * card (as LLMDEV_DMA_SUBMIT; a registered buffer holds its bounce
 * buffers while it is registered); -EMFILE LLMDEV_MAX_BUFS buffers on this
 * file;
 * -EBUSY (without LLMDEV_BUF_READ_ONLY) a page of the range is in
 * LLMDEV_BUF_MAX_SHARE writable buffers already (of any file or card);
 * -ENODEV; -EIO the card is dead.
 */
struct llmdev_buf_register {
	__u32 size;
	__u32 flags;
	__aligned_u64 user_addr;
	__aligned_u64 length;
	__u32 buf;
	__u32 __reserved;
};

#define LLMDEV_BUF_REGISTER	_IO(LLMDEV_TYPE, LLMDEV_CMD_BUF_REGISTER)

/**
 * struct llmdev_buf_unregister - LLMDEV_BUF_UNREGISTER
 * @size: sizeof(struct llmdev_buf_unregister)
 * @flags: must be 0
 * @buf: the buffer's id
 * @__reserved: must be zero
 *
 * Unpins and unmaps the buffer. Closing the file unregisters every buffer
 * (after the file's transfers have finished). The struct is input only.
 *
 * Errors: -ENOENT no such buffer on this file; -EBUSY transfers that use
 * the buffer have not finished (wait for their fences first); -EINVAL
 * flags or reserved set.
 */
struct llmdev_buf_unregister {
	__u32 size;
	__u32 flags;
	__u32 buf;
	__u32 __reserved;
};

#define LLMDEV_BUF_UNREGISTER	_IO(LLMDEV_TYPE, LLMDEV_CMD_BUF_UNREGISTER)

/* struct llmdev_dma_op flags */
#define LLMDEV_OP_TO_CARD	_BITUL(0)	/* else card to host */
#define LLMDEV_OP_BUF		_BITUL(1)	/* host side: buf + buf_offset, not user_addr */
#define LLMDEV_OP_ROWS		_BITUL(2)	/* with LLMDEV_OP_BUF: rows, buf_stride apart */

/**
 * struct llmdev_dma_op - one transfer of an LLMDEV_DMA_BATCH
 * @flags: LLMDEV_OP_TO_CARD, LLMDEV_OP_BUF, LLMDEV_OP_ROWS
 * @handle: the HBM region
 * @offset: byte offset in the region
 * @length: bytes, 1 .. LLMDEV_DMA_MAX_LENGTH; with LLMDEV_OP_ROWS, of
 *          each row
 * @user_addr: without LLMDEV_OP_BUF: the host memory (pinned for this
 *             transfer only, as LLMDEV_DMA_SUBMIT does)
 * @buf_stride: with LLMDEV_OP_ROWS: bytes from one row's start to the
 *              next one's in the buffer, at least @length
 * @buf: with LLMDEV_OP_BUF: a registered buffer of this file
 * @__reserved: without LLMDEV_OP_ROWS: must be zero
 * @rows: with LLMDEV_OP_ROWS: rows, at least 1
 * @buf_offset: with LLMDEV_OP_BUF: byte offset in the buffer
 *
 * LLMDEV_OP_ROWS (with LLMDEV_OP_BUF) gathers or scatters rows in one
 * transfer: row r (0 .. @rows - 1) is @length bytes at @buf_offset + r *
 * @buf_stride in the buffer and at @offset + r * @length in the region
 * (the region side is packed), e.g. a column slice of a matrix whose rows
 * are @buf_stride bytes. The rows move in order; all of them count as one
 * transfer of @rows * @length bytes, at most LLMDEV_DMA_MAX_LENGTH. The
 * rows of a batch's transfers (1 for a transfer without LLMDEV_OP_ROWS)
 * are LLMDEV_BATCH_MAX at most in all. A driver before this flag fails
 * such an op with -EINVAL.
 */
struct llmdev_dma_op {
	__u32 flags;
	__u32 handle;
	__aligned_u64 offset;
	__aligned_u64 length;
	union {
		__aligned_u64 user_addr;
		__aligned_u64 buf_stride;
	};
	__u32 buf;
	union {
		__u32 __reserved;
		__u32 rows;
	};
	__aligned_u64 buf_offset;
};

/* struct llmdev_dma_batch flags */
#define LLMDEV_BATCH_WAIT	_BITUL(0)	/* and wait for it, in the same call */

#define LLMDEV_BATCH_MAX	65536		/* ops per batch */
/* bytes of a batch's ops without LLMDEV_OP_BUF, in all (4 GiB) */
#define LLMDEV_BATCH_MAX_PLAIN_BYTES	_BITULL(32)

/**
 * struct llmdev_dma_batch - LLMDEV_DMA_BATCH: many transfers, one fence
 * @size: sizeof(struct llmdev_dma_batch)
 * @flags: LLMDEV_BATCH_WAIT or 0
 * @count: transfers in @ops, 1 .. LLMDEV_BATCH_MAX
 * @op_size: sizeof(struct llmdev_dma_op) as the caller knows it
 * @ops: user pointer to struct llmdev_dma_op[count]
 * @timeout_ns: with LLMDEV_BATCH_WAIT: how long to wait; else ignored
 * @fence: out: the batch's fence, signalled when every transfer has
 *         finished, with the first error (the statuses of
 *         LLMDEV_FENCE_WAIT)
 * @status: out, with LLMDEV_BATCH_WAIT when the call returns 0: the
 *          batch's status (its fence is then consumed)
 * @error_index: out: when the call fails because of one transfer, its
 *               index in @ops; else ~0
 *
 * Every transfer is checked (its region, its range, its host memory or
 * buffer, pinned if it is not registered) before any of them is queued: a
 * bad one fails the whole call, nothing moves, and @error_index names it.
 * The transfers of memory that is not registered (without LLMDEV_OP_BUF)
 * are pinned and mapped for the batch only, so they may move
 * LLMDEV_BATCH_MAX_PLAIN_BYTES in all (their @length summed, the same
 * memory counted as often as it is named); that is checked first, before
 * any transfer is looked at or pinned. Transfers of registered buffers do
 * not count: move more through a registered buffer, or in several batches.
 * Like LLMDEV_DMA_SUBMIT's, they wait for room under max_pinned_mb first.
 * Transfers to the card go to one host-to-card ring, transfers from it to
 * one card-to-host ring (each direction's rings in turn, batch after
 * batch), each direction in order; the two directions run
 * in parallel, in no order with respect to each other. The card is told
 * of each ring's transfers with one doorbell, and interrupts only after
 * the last.
 *
 * With LLMDEV_BATCH_WAIT the call waits for the batch like
 * LLMDEV_FENCE_WAIT (first polling the card briefly, see the poll_us
 * module parameter), up to @timeout_ns: it returns 0 with @status set and
 * the fence consumed, or -ETIME with the batch still running (wait for
 * @fence). Signals do not end this wait (the batch is already queued, the
 * call cannot be restarted); a fatal signal does.
 *
 * Errors: -EINVAL count 0 or too large, op_size below the first version of
 * the op, unknown flags in the batch or an op, reserved set, a length 0 or
 * too large, a range beyond its region or buffer, LLMDEV_OP_ROWS without
 * LLMDEV_OP_BUF, with @rows 0, a @buf_stride below @length or rows of more
 * than LLMDEV_DMA_MAX_LENGTH bytes in all, more than LLMDEV_BATCH_MAX rows
 * in the batch; -E2BIG the transfers without LLMDEV_OP_BUF move more than
 * LLMDEV_BATCH_MAX_PLAIN_BYTES in all (@error_index: the first one past
 * it; nothing was pinned), or (the common rules) an op's bytes beyond the
 * kernel's struct llmdev_dma_op are not zero; -ENOENT no such region
 * or buffer; -EPERM a region the caller may not use (see "Who may use a
 * region" at the top); -EACCES a transfer
 * from the card into an LLMDEV_BUF_READ_ONLY buffer; -EFAULT @ops not
 * readable, host memory not mapped (or not writable for a transfer from
 * the card), or the reply could not be written (then nothing was queued;
 * with LLMDEV_BATCH_WAIT, a reply after the wait that cannot be written
 * loses the status of a batch that ran); -EAGAIN too many fences on this
 * file; -EINTR a signal came while the call waited for room under
 * max_pinned_mb (nothing was queued; restarted with SA_RESTART); -ETIME
 * (with LLMDEV_BATCH_WAIT)
 * the batch is queued but not finished; -ENOMEM; -ENODEV; -EIO the card
 * is dead.
 */
struct llmdev_dma_batch {
	__u32 size;
	__u32 flags;
	__u32 count;
	__u32 op_size;
	__aligned_u64 ops;
	__aligned_u64 timeout_ns;
	__aligned_u64 fence;
	__s32 status;
	__u32 error_index;
};

#define LLMDEV_DMA_BATCH	_IO(LLMDEV_TYPE, LLMDEV_CMD_DMA_BATCH)

#endif /* _UAPI_LLMDEV_H */
