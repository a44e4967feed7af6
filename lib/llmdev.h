/* SPDX-License-Identifier: (LGPL-2.1 OR MIT) */
/*
 * libllmdev: a thin C library over the ioctls of the llmdev driver.
 *
 * Conventions (those of liburing and libbpf):
 *  - struct llmdev is an opaque handle on one open /dev/llmdevN.
 *  - Functions returning int return 0 (or a count) on success and a
 *    negative errno on failure; they also set errno to the positive value.
 *    Functions returning a pointer return NULL on failure and set errno.
 *  - The ioctl structs are those of <llmdev-uapi.h>. The library fills in
 *    their size and zeroes every field it does not set; the driver checks
 *    the arguments, the library only rejects NULL pointers (-EINVAL).
 *  - Structs grow by appending fields, so a program built against an older
 *    header may hand in a smaller struct than this header's. The plain
 *    calls read and write only the fields of a struct's first version
 *    (never more than any caller has). The _sz calls (LLMDEV_1.2) take the
 *    size of the caller's struct (or array element): call them with
 *    sizeof(*ptr) to get fields added later. They write exactly that many
 *    bytes (fields this library does not know are zeroed) and fail with
 *    -EINVAL for a size below the struct's first version.
 *  - A handle may be used from several threads at once; fences are per
 *    handle, so llmdev_fence_wait_any() in one thread can consume a fence
 *    another thread is waiting for (that wait then gives -ENOENT).
 */
#ifndef LLMDEV_H
#define LLMDEV_H

#include <linux/types.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "llmdev-uapi.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef LLMDEV_API
#define LLMDEV_API __attribute__((visibility("default")))
#endif

struct llmdev;

/**
 * llmdev_open() - open a card by index
 * @index: N of /dev/llmdevN
 * @devp: out: the new handle, to be released with llmdev_close()
 *
 * Return: 0; -ENOENT no such device node; -ENODEV the card was removed;
 * -EACCES; -ENOMEM; -EINVAL @devp is NULL.
 */
LLMDEV_API int llmdev_open(unsigned int index, struct llmdev **devp);

/**
 * llmdev_open_path() - open a card by device node path
 * @path: e.g. "/dev/llmdev0"
 * @devp: out: the new handle
 *
 * The file is opened read-write and close-on-exec.
 *
 * Return: 0, or a negative errno from open(2); -EINVAL a NULL argument.
 */
LLMDEV_API int llmdev_open_path(const char *path, struct llmdev **devp);

/**
 * llmdev_open_pci() - open a card by PCI address
 * @bdf: "0000:01:00.0", or "01:00.0" for domain 0
 * @devp: out: the new handle
 *
 * Finds /sys/bus/pci/devices/<bdf>/llmdev/llmdevN and opens /dev/llmdevN.
 *
 * Return: 0; -ENOENT no such PCI device, or the card has no device node
 * (the driver is not bound to it); -EINVAL a NULL argument; the errors of
 * llmdev_open_path().
 */
LLMDEV_API int llmdev_open_pci(const char *bdf, struct llmdev **devp);

/**
 * llmdev_close() - close a handle
 * @dev: the handle, or NULL (then nothing happens)
 *
 * Regions that are not persistent and transfers still in flight belong to
 * the open file: the driver lets the transfers finish and frees the regions.
 * errno is preserved.
 *
 * Return: nothing.
 */
LLMDEV_API void llmdev_close(struct llmdev *dev);

/**
 * llmdev_fd() - the file descriptor of a handle
 * @dev: the handle
 *
 * For poll(2) (POLLIN: completed fences are waiting to be reaped) and for
 * calls the library does not wrap. Do not close it.
 *
 * Return: the descriptor, or -EINVAL if @dev is NULL.
 */
LLMDEV_API int llmdev_fd(const struct llmdev *dev);

/**
 * llmdev_name() - the kernel's name of the card
 * @dev: the handle
 *
 * Return: e.g. "llmdev0", valid until llmdev_close(); NULL with errno set
 * to EINVAL if @dev is NULL.
 */
LLMDEV_API const char *llmdev_name(const struct llmdev *dev);

/**
 * llmdev_count() - how many cards have a device node
 *
 * Counts the entries of /sys/class/llmdev.
 *
 * Return: the number of cards, 0 when the driver is not loaded; a negative
 * errno if sysfs cannot be read.
 */
LLMDEV_API int llmdev_count(void);

/**
 * llmdev_get_info() - describe the card (LLMDEV_INFO)
 * @dev: the handle
 * @info: out
 *
 * Return: 0; -EINVAL a NULL argument; the errors of LLMDEV_INFO.
 */
LLMDEV_API int llmdev_get_info(struct llmdev *dev, struct llmdev_info *info);

/**
 * llmdev_get_info_sz() - llmdev_get_info() with the caller's struct size
 * @dev: the handle
 * @info: out
 * @size: sizeof(*@info) as the caller was built
 *
 * Return: as llmdev_get_info(); -EINVAL @size below the first version.
 */
LLMDEV_API int llmdev_get_info_sz(struct llmdev *dev, struct llmdev_info *info,
				  size_t size);

/**
 * llmdev_hbm_alloc() - allocate an HBM region (LLMDEV_HBM_ALLOC)
 * @dev: the handle
 * @length: bytes, rounded up to 4 KiB by the driver
 * @align: a power of two, or 0 for 4 KiB
 * @flags: LLMDEV_HBM_PERSISTENT or 0
 * @name: region name (at most LLMDEV_NAME_LEN - 1 bytes), or NULL
 * @out: out: handle, hbm_offset, mmap_offset, largest_free; may be NULL
 *
 * The region is freed when the handle is closed unless it is persistent.
 *
 * Return: 0; -ENOSPC no free extent large enough, @out->largest_free then
 * tells the largest region that would fit; -EINVAL a name too long and the
 * other errors of LLMDEV_HBM_ALLOC.
 */
LLMDEV_API int llmdev_hbm_alloc(struct llmdev *dev, uint64_t length,
				uint64_t align, uint32_t flags, const char *name,
				struct llmdev_hbm_alloc *out);

/**
 * llmdev_hbm_alloc_sz() - llmdev_hbm_alloc() with the caller's struct size
 * @dev: the handle
 * @length: bytes
 * @align: a power of two, or 0
 * @flags: LLMDEV_HBM_PERSISTENT or 0
 * @name: region name, or NULL
 * @out: out, may be NULL
 * @size: sizeof(*@out) as the caller was built (ignored if @out is NULL)
 *
 * Return: as llmdev_hbm_alloc(); -EINVAL @size below the first version.
 */
LLMDEV_API int llmdev_hbm_alloc_sz(struct llmdev *dev, uint64_t length,
				   uint64_t align, uint32_t flags,
				   const char *name,
				   struct llmdev_hbm_alloc *out, size_t size);

/**
 * llmdev_hbm_free() - free an HBM region (LLMDEV_HBM_FREE)
 * @dev: the handle
 * @handle: the region
 *
 * Return: 0; -EINVAL @dev is NULL; the errors of LLMDEV_HBM_FREE.
 */
LLMDEV_API int llmdev_hbm_free(struct llmdev *dev, uint32_t handle);

/**
 * llmdev_hbm_list() - list the persistent regions and the handle's own
 * @dev: the handle
 * @regions: out: a malloc()ed array, to be free()d by the caller; NULL when
 *           there are no regions
 * @count: out: entries in *@regions
 *
 * Asks the driver again if regions were created between sizing the array
 * and reading it.
 *
 * Return: 0; -EINVAL a NULL argument; -ENOMEM; the errors of
 * LLMDEV_HBM_LIST. On failure *@regions is NULL and *@count 0.
 */
LLMDEV_API int llmdev_hbm_list(struct llmdev *dev,
			       struct llmdev_hbm_region **regions,
			       unsigned int *count);

/**
 * llmdev_hbm_list_sz() - llmdev_hbm_list() with the caller's entry size
 * @dev: the handle
 * @regions: out: a malloc()ed array of entries of @entry_size bytes
 * @count: out: entries in *@regions
 * @entry_size: sizeof(**@regions) as the caller was built
 *
 * Return: as llmdev_hbm_list(); -EINVAL @entry_size below the first
 * version of struct llmdev_hbm_region.
 */
LLMDEV_API int llmdev_hbm_list_sz(struct llmdev *dev,
				  struct llmdev_hbm_region **regions,
				  unsigned int *count, size_t entry_size);

/**
 * llmdev_hbm_open() - look up a persistent region (LLMDEV_HBM_OPEN)
 * @dev: the handle
 * @name: its name
 * @out: out: handle, length, mmap_offset
 *
 * Return: 0; -EINVAL a NULL argument or a name too long; -ENOENT no
 * persistent region of that name; -EPERM the caller may not use it (not
 * its creator's uid and user namespace, or a region made with
 * CAP_SYS_ADMIN, and no CAP_SYS_ADMIN: uapi/llmdev.h, "Who may use a
 * region").
 */
LLMDEV_API int llmdev_hbm_open(struct llmdev *dev, const char *name,
			       struct llmdev_hbm_open *out);

/**
 * llmdev_hbm_open_sz() - llmdev_hbm_open() with the caller's struct size
 * @dev: the handle
 * @name: its name
 * @out: out
 * @size: sizeof(*@out) as the caller was built
 *
 * Return: as llmdev_hbm_open(); -EINVAL @size below the first version.
 */
LLMDEV_API int llmdev_hbm_open_sz(struct llmdev *dev, const char *name,
				  struct llmdev_hbm_open *out, size_t size);

/**
 * llmdev_hbm_map() - map (part of) a region into the process
 * @dev: the handle
 * @mmap_offset: the region's mmap_offset (plus a page-aligned offset in it)
 * @length: bytes
 * @prot: PROT_READ and/or PROT_WRITE
 *
 * A shared mapping through the card's HBM aperture. Accesses after the
 * region is freed get SIGBUS.
 *
 * Return: the address, or NULL with errno set (EINVAL a NULL @dev or a
 * range that is not inside one region the caller may use; ENOMEM @length
 * does not fit in a size_t (32-bit hosts); the errors of mmap(2)).
 */
LLMDEV_API void *llmdev_hbm_map(struct llmdev *dev, uint64_t mmap_offset,
				uint64_t length, int prot);

/**
 * llmdev_hbm_unmap() - undo llmdev_hbm_map()
 * @addr: the address it returned
 * @length: the length given to it
 *
 * Return: 0; -EINVAL @length does not fit in a size_t (32-bit hosts); a
 * negative errno from munmap(2).
 */
LLMDEV_API int llmdev_hbm_unmap(void *addr, uint64_t length);

/**
 * llmdev_dma_submit() - start a transfer (LLMDEV_DMA_SUBMIT)
 * @dev: the handle
 * @handle: the region
 * @offset: byte offset in the region
 * @buf: host buffer, any alignment; read for LLMDEV_DMA_TO_CARD, written
 *       otherwise. It must stay valid until the fence completes.
 * @length: bytes, 1 .. LLMDEV_DMA_MAX_LENGTH
 * @flags: LLMDEV_DMA_TO_CARD, or 0 for card to host
 * @ring: ring of that direction, or LLMDEV_RING_ANY
 * @fence: out: the transfer's fence, for llmdev_fence_wait()
 *
 * Return: 0 once the transfer is queued; -EINVAL a NULL argument; -EAGAIN
 * LLMDEV_MAX_FENCES fences are unreaped on this handle; the other errors
 * of LLMDEV_DMA_SUBMIT. A call that waits for pinned memory to go down
 * (max_pinned_mb) is asked again when a signal interrupts it:
 * it does not fail with -EINTR.
 */
LLMDEV_API int llmdev_dma_submit(struct llmdev *dev, uint32_t handle,
				 uint64_t offset, void *buf, uint64_t length,
				 uint32_t flags, uint32_t ring, uint64_t *fence);

/**
 * llmdev_fence_wait() - wait for a transfer and reap its fence
 * @dev: the handle
 * @fence: from llmdev_dma_submit()
 * @timeout_ns: how long to wait; 0 only checks
 * @status: out: the transfer's result, 0 or a negative errno (-EIO,
 *          -ETIMEDOUT, -ECANCELED, -ENODEV)
 *
 * A wait interrupted by a signal is resumed with the time left.
 *
 * Return: 0 the fence completed (and is consumed; see *@status); -ETIME
 * not yet (wait again); -ENOENT no such fence (or already reaped);
 * -EINVAL a NULL argument; -ENODEV the card was removed.
 */
LLMDEV_API int llmdev_fence_wait(struct llmdev *dev, uint64_t fence,
				 uint64_t timeout_ns, int *status);

/**
 * llmdev_fence_wait_any() - wait for any transfer of the handle
 * @dev: the handle
 * @timeout_ns: how long to wait; 0 only checks
 * @fence: out: the fence that completed (and is consumed)
 * @status: out: its result, as for llmdev_fence_wait()
 *
 * Return: 0; -ETIME transfers are pending but none completed in time;
 * -ENOENT the handle has no transfer at all; -EINVAL a NULL argument;
 * -ENODEV the card was removed.
 */
LLMDEV_API int llmdev_fence_wait_any(struct llmdev *dev, uint64_t timeout_ns,
				     uint64_t *fence, int *status);

/**
 * llmdev_copy_to_hbm() - copy host memory into a region, synchronously
 * @dev: the handle
 * @handle: the region
 * @offset: byte offset in the region
 * @buf: the data
 * @length: bytes, any size; split into transfers of at most
 *          LLMDEV_DMA_MAX_LENGTH kept in flight together
 * @timeout_ns: for the whole copy
 *
 * Whatever happens, the function returns only when none of its transfers
 * is in flight any more: @buf may be reused at once. When @timeout_ns
 * expires it stops submitting and waits for the transfers it started
 * (the driver ends every transfer, failing a stuck one with -ETIMEDOUT).
 *
 * Return: 0; the negative errno of the first transfer (in buffer order)
 * that could not be submitted or that failed; -ETIME @timeout_ns expired
 * first; -EINVAL a NULL argument.
 */
LLMDEV_API int llmdev_copy_to_hbm(struct llmdev *dev, uint32_t handle,
				  uint64_t offset, const void *buf,
				  uint64_t length, uint64_t timeout_ns);

/**
 * llmdev_copy_from_hbm() - copy a region into host memory, synchronously
 * @dev: the handle
 * @handle: the region
 * @offset: byte offset in the region
 * @buf: where to write
 * @length: bytes, any size
 * @timeout_ns: for the whole copy
 *
 * As llmdev_copy_to_hbm(), in the other direction.
 *
 * Return: as llmdev_copy_to_hbm().
 */
LLMDEV_API int llmdev_copy_from_hbm(struct llmdev *dev, uint32_t handle,
				    uint64_t offset, void *buf,
				    uint64_t length, uint64_t timeout_ns);

/**
 * llmdev_perf_read() - snapshot the card's counters (LLMDEV_PERF_READ)
 * @dev: the handle
 * @perf: out; counters[] is indexed by enum llmdev_counter, names from
 *        llmdev_counter_name()
 *
 * Return: 0; -EINVAL a NULL argument; the errors of LLMDEV_PERF_READ.
 */
LLMDEV_API int llmdev_perf_read(struct llmdev *dev, struct llmdev_perf *perf);

/**
 * llmdev_perf_read_sz() - llmdev_perf_read() with the caller's struct size
 * @dev: the handle
 * @perf: out
 * @size: sizeof(*@perf) as the caller was built
 *
 * Return: as llmdev_perf_read(); -EINVAL @size below the first version.
 */
LLMDEV_API int llmdev_perf_read_sz(struct llmdev *dev, struct llmdev_perf *perf,
				   size_t size);

/* ---- Peer links (LLMDEV_1.1) ----------------------------------------------- */

/**
 * llmdev_link_get_info() - state of one peer-link port (LLMDEV_LINK_INFO)
 * @dev: the handle
 * @port: 0 .. num_link_ports - 1 (see llmdev_get_info())
 * @info: out: state, flags, the peer when up, the port's counters
 *
 * Return: 0; -EINVAL a NULL argument or a port out of range; the other
 * errors of LLMDEV_LINK_INFO.
 */
LLMDEV_API int llmdev_link_get_info(struct llmdev *dev, unsigned int port,
				    struct llmdev_link_info *info);

/**
 * llmdev_link_get_info_sz() - llmdev_link_get_info() with the caller's size
 * @dev: the handle
 * @port: the port
 * @info: out
 * @size: sizeof(*@info) as the caller was built
 *
 * Return: as llmdev_link_get_info(); -EINVAL @size below the first version.
 */
LLMDEV_API int llmdev_link_get_info_sz(struct llmdev *dev, unsigned int port,
				       struct llmdev_link_info *info,
				       size_t size);

/**
 * llmdev_link_set_enabled() - enable or disable a port (LLMDEV_LINK_SET)
 * @dev: the handle
 * @port: the port
 * @enable: 1: the link trains and comes up once the peer's port is enabled
 *          too; 0: the link goes down at both ends
 *
 * The call returns at once; llmdev_link_get_info() tells when the link is
 * up.
 *
 * Return: 0; -EPERM without CAP_SYS_ADMIN; -EINVAL @dev is NULL, a port out
 * of range, @enable not 0 or 1; the other errors of LLMDEV_LINK_SET.
 */
LLMDEV_API int llmdev_link_set_enabled(struct llmdev *dev, unsigned int port,
				       int enable);

/* ---- Collectives (LLMDEV_1.1) ---------------------------------------------- */

/* A group of cards in rank order, for collectives; opaque. */
struct llmdev_group;

/**
 * llmdev_group_create() - make a group of cards (LLMDEV_GROUP_CREATE)
 * @dev: the handle the group belongs to: the collectives of the group are
 *       submitted on it and their fences are waited for on it
 * @ranks: a handle of every card, in rank order (@dev may be one of them)
 * @nranks: entries in @ranks, 1 .. LLMDEV_MAX_RANKS
 * @groupp: out: the new group, to be released with llmdev_group_destroy()
 *
 * Every rank's card must have an up link to the next rank's card, the last
 * rank's to the first's (a ring). The group does not keep the handles open:
 * @dev and those in @ranks must stay open while the group is used (a
 * collective on a group one of whose handles was closed fails with
 * -EBADF). It may be destroyed after they are closed.
 *
 * Return: 0; -ENOLINK the ranks do not form a ring of up links; -EINVAL a
 * NULL argument, @nranks out of range, the same card twice; -EMFILE
 * LLMDEV_MAX_GROUPS groups exist on @dev; -ENOMEM; the other errors of
 * LLMDEV_GROUP_CREATE.
 */
LLMDEV_API int llmdev_group_create(struct llmdev *dev,
				   struct llmdev *const *ranks,
				   unsigned int nranks,
				   struct llmdev_group **groupp);

/**
 * llmdev_group_destroy() - release a group (LLMDEV_GROUP_DESTROY)
 * @group: the group, or NULL (then nothing happens)
 *
 * Collectives already submitted on the group still complete, and their
 * fences can still be waited for. The group's memory is freed whatever
 * the driver answers.
 *
 * Return: 0; -ENOENT the driver no longer knows the group; -EBADF its
 * handle was closed (llmdev_close(), which dropped the driver's groups of
 * the handle with its file).
 */
LLMDEV_API int llmdev_group_destroy(struct llmdev_group *group);

/**
 * llmdev_allreduce_submit() - start an AllReduce (LLMDEV_COLL_SUBMIT)
 * @group: the group
 * @bufs: one entry per rank, in rank order: src_handle and src_offset (the
 *        input), dst_handle and dst_offset (the result), in regions of that
 *        rank's card the rank's handle may use. The library fills in fd
 *        from the rank's handle and ignores the caller's fd and
 *        __reserved. src and dst may be the same bytes (in place) but must
 *        not overlap otherwise.
 * @count: elements per rank
 * @dtype: enum llmdev_dtype
 * @redop: enum llmdev_redop
 * @fence: out: completes when every rank has finished; wait for it with
 *         llmdev_fence_wait() on the group's handle
 *
 * Every rank's dst receives the element-wise reduction of every rank's
 * src, computed as the driver documents for LLMDEV_COLL_SUBMIT.
 *
 * Return: 0 once the collective is queued; -EINVAL a NULL argument, a bad
 * dtype, redop or count, a buffer beyond its region, src and dst
 * overlapping; -ENOENT no such region or group; -ENOLINK a link of the
 * ring is down; -EAGAIN too many fences on the group's handle; the other
 * errors of LLMDEV_COLL_SUBMIT.
 */
LLMDEV_API int llmdev_allreduce_submit(struct llmdev_group *group,
				       const struct llmdev_coll_buf *bufs,
				       uint64_t count, uint32_t dtype,
				       uint32_t redop, uint64_t *fence);

/**
 * llmdev_broadcast_submit() - start a broadcast (LLMDEV_COLL_SUBMIT)
 * @group: the group
 * @bufs: one entry per rank, in rank order, as for
 *        llmdev_allreduce_submit(); the source is read on the root only
 * @count: elements
 * @dtype: enum llmdev_dtype
 * @root: rank whose src is copied to every rank's dst (its own too)
 * @fence: out: completes when every rank has finished
 *
 * Return: as llmdev_allreduce_submit(); -EINVAL also a root out of range.
 */
LLMDEV_API int llmdev_broadcast_submit(struct llmdev_group *group,
				       const struct llmdev_coll_buf *bufs,
				       uint64_t count, uint32_t dtype,
				       uint32_t root, uint64_t *fence);

/**
 * llmdev_allreduce() - AllReduce, synchronously
 * @group: the group
 * @bufs: as for llmdev_allreduce_submit()
 * @count: elements per rank
 * @dtype: enum llmdev_dtype
 * @redop: enum llmdev_redop
 * @timeout_ns: how long to wait
 *
 * Submits, then waits for the fence. As with llmdev_copy_to_hbm(), the
 * function returns only once the collective has ended: when @timeout_ns
 * expires first it keeps waiting (the driver ends every collective within
 * its coll_timeout_ms parameter) and then returns -ETIME.
 *
 * Return: 0; the errors of llmdev_allreduce_submit(); the collective's
 * failure (-ENOLINK a link went down during it, -EHOSTUNREACH,
 * -ETIMEDOUT, -ECANCELED, -ENODEV, -EIO: see LLMDEV_COLL_SUBMIT); -ETIME
 * @timeout_ns expired first.
 */
LLMDEV_API int llmdev_allreduce(struct llmdev_group *group,
				const struct llmdev_coll_buf *bufs,
				uint64_t count, uint32_t dtype, uint32_t redop,
				uint64_t timeout_ns);

/**
 * llmdev_broadcast() - broadcast, synchronously
 * @group: the group
 * @bufs: as for llmdev_broadcast_submit()
 * @count: elements
 * @dtype: enum llmdev_dtype
 * @root: the source rank
 * @timeout_ns: how long to wait
 *
 * As llmdev_allreduce(), for llmdev_broadcast_submit().
 *
 * Return: as llmdev_allreduce().
 */
LLMDEV_API int llmdev_broadcast(struct llmdev_group *group,
				const struct llmdev_coll_buf *bufs,
				uint64_t count, uint32_t dtype, uint32_t root,
				uint64_t timeout_ns);

/**
 * llmdev_dtype_size() - bytes of one element of a collective
 * @dtype: enum llmdev_dtype
 *
 * Return: 4 (f32, i32) or 2 (f16, bf16); 0 for an unknown type.
 */
LLMDEV_API unsigned int llmdev_dtype_size(uint32_t dtype);

/* ---- Shard routing table (LLMDEV_1.1) --------------------------------------- */

/**
 * llmdev_route_set() - replace the card's routing table (LLMDEV_ROUTE_SET)
 * @dev: the handle
 * @entries: the new table; hbm_offset and length are ignored
 * @count: entries, 0 .. LLMDEV_ROUTE_MAX; 0 clears the table
 * @out: out, also on failure: generation (tables applied since the driver
 *       bound) and error_index (the first rejected entry, or ~0); may be
 *       NULL. A card that is dead (-EIO) or removed (-ENODEV) before the
 *       driver reads the table leaves error_index ~0 and generation 0.
 *
 * All entries or none: a rejected table leaves the previous one in place.
 *
 * Return: 0; -EPERM without CAP_SYS_ADMIN; -ENOSPC more than
 * LLMDEV_ROUTE_MAX entries; -EINVAL @dev NULL, @entries NULL with a
 * non-zero @count, a malformed entry; -EEXIST overlapping layers of one
 * tp_rank; -ENOENT no region with that handle; -EACCES a region that is
 * not persistent; -ENOLINK next_hop is a port whose link is not up; the
 * other errors of LLMDEV_ROUTE_SET.
 */
LLMDEV_API int llmdev_route_set(struct llmdev *dev,
				const struct llmdev_route_entry *entries,
				unsigned int count, struct llmdev_route *out);

/**
 * llmdev_route_set_sz() - llmdev_route_set() with the caller's sizes
 * @dev: the handle
 * @entries: the new table, entries of @entry_size bytes
 * @count: entries
 * @entry_size: sizeof(*@entries) as the caller was built
 * @out: out, may be NULL
 * @out_size: sizeof(*@out) as the caller was built (ignored if @out is NULL)
 *
 * Return: as llmdev_route_set(); -EINVAL a size below the first version.
 */
LLMDEV_API int llmdev_route_set_sz(struct llmdev *dev,
				   const struct llmdev_route_entry *entries,
				   unsigned int count, size_t entry_size,
				   struct llmdev_route *out, size_t out_size);

/**
 * llmdev_route_get() - read the card's routing table (LLMDEV_ROUTE_GET)
 * @dev: the handle
 * @entries: out: a malloc()ed array, to be free()d by the caller, with
 *           hbm_offset and length filled in; NULL when the table is empty
 * @count: out: entries in *@entries
 * @generation: out: tables applied since the driver bound; may be NULL
 *
 * Asks the driver again if the table grew between sizing the array and
 * reading it.
 *
 * Return: 0; -EINVAL a NULL argument (but @generation); -ENOMEM; the
 * errors of LLMDEV_ROUTE_GET. On failure *@entries is NULL and *@count 0.
 */
LLMDEV_API int llmdev_route_get(struct llmdev *dev,
				struct llmdev_route_entry **entries,
				unsigned int *count, uint32_t *generation);

/**
 * llmdev_route_get_sz() - llmdev_route_get() with the caller's entry size
 * @dev: the handle
 * @entries: out: a malloc()ed array of entries of @entry_size bytes
 * @count: out: entries in *@entries
 * @generation: out, may be NULL
 * @entry_size: sizeof(**@entries) as the caller was built
 *
 * Return: as llmdev_route_get(); -EINVAL @entry_size below the first
 * version.
 */
LLMDEV_API int llmdev_route_get_sz(struct llmdev *dev,
				   struct llmdev_route_entry **entries,
				   unsigned int *count, uint32_t *generation,
				   size_t entry_size);

/* ---- Registered buffers and batched DMA (LLMDEV_1.2) ----------------------- */

/**
 * llmdev_buf_register() - pin and map host memory for DMA once (LLMDEV_BUF_REGISTER)
 * @dev: the handle
 * @addr: start of the buffer, any alignment
 * @length: bytes
 * @flags: LLMDEV_BUF_READ_ONLY or 0
 * @buf: out: the buffer's id, for struct llmdev_dma_op (LLMDEV_OP_BUF)
 *
 * Transfers from and to a registered buffer skip the per-transfer pinning
 * and mapping. It counts against RLIMIT_MEMLOCK (unless CAP_IPC_LOCK).
 *
 * Return: 0; -EINVAL a NULL argument; -ENOMEM RLIMIT_MEMLOCK reached; the
 * other errors of LLMDEV_BUF_REGISTER.
 */
LLMDEV_API int llmdev_buf_register(struct llmdev *dev, void *addr,
				   uint64_t length, uint32_t flags,
				   uint32_t *buf);

/**
 * llmdev_buf_unregister() - undo llmdev_buf_register() (LLMDEV_BUF_UNREGISTER)
 * @dev: the handle
 * @buf: the buffer's id
 *
 * Return: 0; -EBUSY transfers using it have not finished; -ENOENT no such
 * buffer; -EINVAL @dev is NULL.
 */
LLMDEV_API int llmdev_buf_unregister(struct llmdev *dev, uint32_t buf);

/**
 * llmdev_dma_batch() - queue many transfers with one fence (LLMDEV_DMA_BATCH)
 * @dev: the handle
 * @ops: the transfers (struct llmdev_dma_op, as of this header's first
 *       version of it)
 * @count: transfers, 1 .. LLMDEV_BATCH_MAX
 * @flags: LLMDEV_BATCH_WAIT to wait for the batch in the same call, or 0
 * @timeout_ns: with LLMDEV_BATCH_WAIT: how long to wait
 * @fence: out: the batch's fence (with LLMDEV_BATCH_WAIT and a return of
 *         0 it is already consumed); may be NULL
 * @status: out, with LLMDEV_BATCH_WAIT and a return of 0: the batch's
 *          status (0 or a negative errno, as llmdev_fence_wait()); may be
 *          NULL
 * @error_index: out, when the call fails because of one transfer: its
 *               index, else ~0U; may be NULL
 *
 * All transfers are checked before any is queued: one bad transfer fails
 * the call and nothing moves. A transfer of rows (LLMDEV_OP_ROWS) fails
 * with -EINVAL on a driver older than that flag.
 *
 * Return: 0; -ETIME (with LLMDEV_BATCH_WAIT) the batch is queued but not
 * finished: wait for *@fence; -EINVAL @dev or @ops NULL; -E2BIG the
 * transfers without LLMDEV_OP_BUF move more than
 * LLMDEV_BATCH_MAX_PLAIN_BYTES in all (*@error_index: the first one past
 * it; nothing was pinned; split the batch or register the memory); the
 * other errors of LLMDEV_DMA_BATCH. As llmdev_dma_submit(), a signal in
 * the wait for pinned memory does not end the call with -EINTR.
 */
LLMDEV_API int llmdev_dma_batch(struct llmdev *dev,
				const struct llmdev_dma_op *ops,
				unsigned int count, uint32_t flags,
				uint64_t timeout_ns, uint64_t *fence,
				int *status, unsigned int *error_index);

/* ---- Reset (LLMDEV_1.2) ----------------------------------------------------- */

/**
 * llmdev_reset() - reset the card (LLMDEV_RESET)
 * @dev: the handle
 *
 * The card's sysfs directory counts the resets (reset_count).
 * What a reset does to transfers, collectives, regions, mappings and the
 * routing table is described at LLMDEV_RESET in <llmdev-uapi.h>.
 *
 * Return: 0 the card is back; -EPERM without CAP_SYS_ADMIN; -EIO the card
 * did not come back and is dead; -EOPNOTSUPP the platform cannot reset it;
 * -EINVAL @dev is NULL; the other errors of LLMDEV_RESET.
 */
LLMDEV_API int llmdev_reset(struct llmdev *dev);

/* ---- KV-cache pool (LLMDEV_1.3) ------------------------------------------- */

/*
 * A pool of fixed-size KV-cache blocks on one card, in up to three tiers:
 * card HBM (one region), host memory (registered once for DMA) and a disk
 * file (read and written with O_DIRECT). A block lives in exactly one tier
 * at a time. Sequences own blocks by (seq, index); a block may also carry a
 * content hash (e.g. SHA-256 of its tokens and of its prefix), through
 * which other sequences share it (prefix reuse): a block is freed when its
 * last (seq, index) lets go of it, except a hashed one, which stays cached
 * (and can be found again by its hash) until its room is needed.
 *
 * A step pins the blocks it uses: they are brought into HBM (DMA batches
 * for all that were in host memory or on disk: a long move goes as up to
 * eight, all queued at once, so that the card moves one while the next is
 * prepared; a short one, of one batch (up to 32 blocks), is queued and
 * waited for in one call, LLMDEV_BATCH_WAIT, which spares small swaps an
 * interrupt and a wake-up) and stay there, at the HBM
 * offset the pin returns, until unpinned. When HBM use rises above its
 * high watermark, the least recently used unpinned blocks are moved to
 * host memory until use is at the low watermark, in one round of DMA
 * batches (not waited for: the room is reclaimed when they are done);
 * host memory overflows to disk the same way. A block whose room is needed
 * in the last tier can only be dropped when it is cached (no owner left);
 * otherwise the call that needed the room fails with -ENOSPC (pool full).
 * llmdev_kv_prefetch() starts bringing a step's blocks into HBM ahead of
 * the step and returns a fence.
 *
 * Locking: one mutex per pool serializes every call, including the waits
 * for DMA and disk I/O that a call does itself (a pin that swaps blocks
 * in, a synchronous eviction); batches that run in the background (a
 * prefetch, a watermark eviction) hold no lock while they run. Calls from
 * several threads are safe, and are served one at a time.
 *
 * The pool works on a handle of its own (the card's device node opened
 * again), so its fences cannot be consumed by llmdev_fence_wait_any() on
 * the caller's handle; its HBM region belongs to that handle
 * (llmdev_kv_dev(), struct llmdev_kv_info.region). A forked child cannot
 * use its parent's pool: every call but llmdev_kv_destroy() fails there
 * with -ECHILD, and llmdev_kv_destroy() in the child frees only the
 * child's copy of the bookkeeping (the parent's pool goes on unharmed).
 * The host tier is not inherited by children (MADV_DONTFORK), nor are the
 * pool's files (its disk file and its own device file are closed in the
 * child as it starts, so a child cannot keep the disk file locked once it
 * runs). fork() waits until
 * no other thread is inside a call of any pool, for as long as such a
 * call waits for its own DMA or disk I/O.
 *
 * Statistics are also published in a small file (LLMDEV_KV_STATS_DIR,
 * "llmdev-kv.<pid>.<n>"), mapped shared, that `llmctl kv stats` reads
 * with llmdev_kv_stats_read(); it is removed by llmdev_kv_destroy().
 */
struct llmdev_kv;

/* Tiers, as indices of struct llmdev_kv_stats.tier. */
enum llmdev_kv_tier {
	LLMDEV_KV_HBM,
	LLMDEV_KV_HOST,
	LLMDEV_KV_DISK,
	LLMDEV_KV_TIERS,
};

#define LLMDEV_KV_HASH_LEN	32	/* bytes of a content hash */
#define LLMDEV_KV_NAME_LEN	32
/* where the statistics files are, unless $LLMDEV_KV_STATS_DIR says otherwise */
#define LLMDEV_KV_STATS_DIR	"/dev/shm"
#define LLMDEV_KV_STATS_PREFIX	"llmdev-kv."

/* struct llmdev_kv_opts flags */
#define LLMDEV_KV_NO_STATS_FILE	(1U << 0)	/* publish no statistics file */

/**
 * struct llmdev_kv_opts - how to make a pool (libbpf-style options)
 * @sz: sizeof(struct llmdev_kv_opts) as the caller was built; set it with
 *      LLMDEV_KV_OPTS(). Fields past @sz read as 0; bytes past this
 *      library's struct must be zero (-E2BIG otherwise).
 * @flags: LLMDEV_KV_NO_STATS_FILE or 0
 * @block_size: bytes per block, a multiple of 4096, at most
 *              LLMDEV_DMA_MAX_LENGTH
 * @hbm_blocks: blocks in the HBM tier (one region of @hbm_blocks *
 *              @block_size bytes), >= 1
 * @host_blocks: blocks in the host tier, 0 for none (then no disk tier
 *               either); at most LLMDEV_BUF_MAX_LENGTH bytes
 * @disk_blocks: blocks in the disk tier, 0 for none
 * @disk_path: the disk tier's file, created if missing (mode 0600),
 *             locked (flock) while the pool lives, and preallocated; its
 *             contents do not outlive the pool. Required with
 *             @disk_blocks, and refused (-EINVAL) without it.
 * @hbm_high_pct: HBM use (percent of @hbm_blocks) above which an eviction
 *                round starts; 0 means 90
 * @hbm_low_pct: where the round stops; 0 means 75; below @hbm_high_pct
 * @host_high_pct: as @hbm_high_pct, for host memory to disk
 * @host_low_pct: as @hbm_low_pct, for host memory
 * @timeout_ns: how long a call waits for one DMA batch; 0 means 30 s
 * @name: the pool's name in its statistics (at most LLMDEV_KV_NAME_LEN - 1
 *        bytes), or NULL for "kv"
 */
struct llmdev_kv_opts {
	size_t sz;
	uint32_t flags;
	uint64_t block_size;
	uint64_t hbm_blocks;
	uint64_t host_blocks;
	uint64_t disk_blocks;
	const char *disk_path;
	unsigned int hbm_high_pct;
	unsigned int hbm_low_pct;
	unsigned int host_high_pct;
	unsigned int host_low_pct;
	uint64_t timeout_ns;
	const char *name;
};

/* Declare and initialize options: LLMDEV_KV_OPTS(o, .block_size = 65536); */
#define LLMDEV_KV_OPTS(NAME, ...)					\
	struct llmdev_kv_opts NAME = ({					\
		memset(&NAME, 0, sizeof(struct llmdev_kv_opts));	\
		(struct llmdev_kv_opts){				\
			.sz = sizeof(struct llmdev_kv_opts),		\
			__VA_ARGS__					\
		};							\
	})

/**
 * struct llmdev_kv_ref - a block, as a sequence knows it
 * @seq: the sequence
 * @index: the block's index in the sequence
 * @__reserved: must be zero
 */
struct llmdev_kv_ref {
	uint64_t seq;
	uint32_t index;
	uint32_t __reserved;
};

/**
 * struct llmdev_kv_info - what a pool is
 * @block_size: bytes per block
 * @blocks: blocks per tier, [enum llmdev_kv_tier]
 * @region: the HBM region of llmdev_kv_dev()'s handle that holds the
 *          HBM tier; block offsets from llmdev_kv_pin() are in it
 * @stats_path: the statistics file, "" without one
 */
struct llmdev_kv_info {
	uint64_t block_size;
	uint64_t blocks[LLMDEV_KV_TIERS];
	uint32_t region;
	char stats_path[128];
};

/**
 * struct llmdev_kv_tier_stats - one tier's statistics
 * @blocks: capacity, in blocks
 * @used: blocks held (cached ones and those in flight into it included)
 * @pinned: pinned blocks (HBM only)
 * @hits: blocks that a pin, prefetch or lookup found in this tier (a
 *        call that fails after looking, and is made again, counts them
 *        again)
 * @misses: blocks that a pin or prefetch wanted and that were in a lower
 *          tier (for the HBM and host tiers; counted as @hits are)
 * @evictions: blocks moved out of this tier to the next one
 * @drops: cached blocks dropped from this tier to make room
 * @bytes_in: bytes moved into this tier (from any other)
 * @bytes_out: bytes moved out of this tier
 * @swap_in: moves into this tier (DMA batches for HBM and host memory,
 *           disk reads for host memory)
 * @swap_in_median_ns: median time of a move in, from its start to when the
 *                     pool saw it finish
 * @swap_in_p99_ns: 99th percentile of it
 * @swap_out: moves out of this tier (rounds)
 * @swap_out_median_ns: median time of a move out
 * @swap_out_p99_ns: 99th percentile of it
 *
 * The percentiles come from a log-linear histogram: within 1/16 (6 %).
 */
struct llmdev_kv_tier_stats {
	uint64_t blocks;
	uint64_t used;
	uint64_t pinned;
	uint64_t hits;
	uint64_t misses;
	uint64_t evictions;
	uint64_t drops;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t swap_in;
	uint64_t swap_in_median_ns;
	uint64_t swap_in_p99_ns;
	uint64_t swap_out;
	uint64_t swap_out_median_ns;
	uint64_t swap_out_p99_ns;
};

/**
 * struct llmdev_kv_stats - a pool's statistics
 * @size: sizeof(struct llmdev_kv_stats) as the caller knows it (written by
 *        the library)
 * @card: N of the pool's /dev/llmdevN
 * @pid: the process that owns the pool
 * @alive: 1 while that process runs (llmdev_kv_stats_read()), else 0
 * @name: the pool's name
 * @block_size: bytes per block
 * @sequences: sequences that own blocks
 * @blocks: blocks in the pool (cached ones included)
 * @cached: blocks no sequence owns, kept for their hash
 * @hashed: blocks with a content hash
 * @lookup_hits: llmdev_kv_lookup() calls that found the hash
 * @lookup_misses: llmdev_kv_lookup() calls that did not
 * @lost: blocks whose contents were lost (a disk read that failed, or the
 *        disk file cut short under them); a cached block whose contents
 *        are lost leaves the pool instead (its hash is no longer found)
 * @errors: moves that failed (DMA or disk I/O)
 * @tier: per tier, [enum llmdev_kv_tier]
 */
struct llmdev_kv_stats {
	uint32_t size;
	int32_t card;
	int32_t pid;
	uint32_t alive;
	char name[LLMDEV_KV_NAME_LEN];
	uint64_t block_size;
	uint64_t sequences;
	uint64_t blocks;
	uint64_t cached;
	uint64_t hashed;
	uint64_t lookup_hits;
	uint64_t lookup_misses;
	uint64_t lost;
	uint64_t errors;
	struct llmdev_kv_tier_stats tier[LLMDEV_KV_TIERS];
};

/**
 * llmdev_kv_create() - make a KV-cache pool on a card
 * @dev: the card; the pool opens it again for a handle of its own, so
 *       @dev may be closed afterwards
 * @opts: the options (see struct llmdev_kv_opts)
 * @kvp: out: the pool, to be released with llmdev_kv_destroy()
 *
 * Allocates the HBM region, maps and registers the host tier, creates and
 * preallocates the disk file and the statistics file.
 *
 * Return: 0; -EINVAL a NULL argument, @opts->sz too small, a block size
 * that is not a multiple of 4096 or too large, no HBM blocks, a disk tier
 * without a host tier or without a path, a path without disk blocks,
 * watermarks out of order, a name
 * too long; -E2BIG unknown non-zero option bytes; -EOPNOTSUPP the disk
 * file's file system refuses O_DIRECT (tmpfs does); -EWOULDBLOCK another
 * pool uses the disk file; -ENOSPC the card has not enough free HBM, or
 * the disk file's file system has not room for it; -EFBIG the disk file
 * would exceed RLIMIT_FSIZE (checked first: no SIGXFSZ); -ENOMEM also
 * RLIMIT_MEMLOCK reached; the
 * errors of open(2) for the disk and statistics files, of
 * llmdev_hbm_alloc() and llmdev_buf_register().
 */
LLMDEV_API int llmdev_kv_create(struct llmdev *dev,
				const struct llmdev_kv_opts *opts,
				struct llmdev_kv **kvp);

/**
 * llmdev_kv_destroy() - release a pool
 * @kv: the pool, or NULL (then nothing happens)
 *
 * Waits (up to the pool's timeout each) for the pool's batches still in
 * flight, then frees the region, the host memory, closes and keeps the
 * disk file (its contents are meaningless), removes the statistics file
 * and closes the pool's handle. Transfers that did not finish in time are
 * left to the driver, which ends them when the handle is closed. errno is
 * preserved.
 *
 * Return: nothing.
 */
LLMDEV_API void llmdev_kv_destroy(struct llmdev_kv *kv);

/**
 * llmdev_kv_dev() - the pool's own handle on the card
 * @kv: the pool
 *
 * For transfers into and out of pinned blocks (the region of
 * struct llmdev_kv_info). Do not close it, and do not call
 * llmdev_fence_wait_any() on it: that could consume the pool's fences.
 *
 * Return: the handle; NULL with errno EINVAL if @kv is NULL, ECHILD in a
 * forked child of the process that created the pool.
 */
LLMDEV_API struct llmdev *llmdev_kv_dev(struct llmdev_kv *kv);

/**
 * llmdev_kv_info() - describe a pool
 * @kv: the pool
 * @info: out
 *
 * Return: 0; -EINVAL a NULL argument; -ECHILD in a forked child.
 */
LLMDEV_API int llmdev_kv_info(struct llmdev_kv *kv, struct llmdev_kv_info *info);

/**
 * llmdev_kv_alloc() - give a sequence a new block
 * @kv: the pool
 * @seq: the sequence
 * @index: the block's index in it
 *
 * The block is made in HBM (making room there first if needed: waiting
 * for an eviction round), unpinned and with undefined contents: pin it to
 * write it.
 *
 * Return: 0; -EEXIST (@seq, @index) has a block; -ENOSPC no room in any
 * tier (pool full: every block in HBM pinned, or every tier holding
 * blocks that sequences own); -ECHILD in a forked child; -EINVAL @kv is
 * NULL; the errors of an eviction round (llmdev_kv_evict()).
 */
LLMDEV_API int llmdev_kv_alloc(struct llmdev_kv *kv, uint64_t seq,
			       uint32_t index);

/**
 * llmdev_kv_lookup() - reuse a block by its content hash (prefix reuse)
 * @kv: the pool
 * @hash: LLMDEV_KV_HASH_LEN bytes
 * @seq: the sequence that gets the block
 * @index: at this index
 *
 * If a block with @hash exists, (@seq, @index) shares it (one reference
 * more): its contents need not be computed again. Counted in the
 * statistics as a lookup hit or miss, and as a hit of the block's tier.
 *
 * Return: 0 found and shared; -ENOENT no block has that hash (a miss);
 * -EEXIST (@seq, @index) has a block; -EINVAL a NULL argument; -ECHILD in
 * a forked child; -EIO the block's contents were lost.
 */
LLMDEV_API int llmdev_kv_lookup(struct llmdev_kv *kv, const void *hash,
				uint64_t seq, uint32_t index);

/**
 * llmdev_kv_set_hash() - give a block its content hash, once it is full
 * @kv: the pool
 * @seq: the sequence
 * @index: the block
 * @hash: LLMDEV_KV_HASH_LEN bytes
 *
 * From then on llmdev_kv_lookup() finds the block, and it stays cached
 * when no sequence owns it any more. The caller promises that the
 * contents do not change after this.
 *
 * Return: 0; -EEXIST another block has that hash (the block stays without
 * one; share that one with llmdev_kv_lookup() instead), or this block has
 * a different hash already; -ENOENT no such block; -EINVAL a NULL
 * argument; -ECHILD in a forked child.
 */
LLMDEV_API int llmdev_kv_set_hash(struct llmdev_kv *kv, uint64_t seq,
				  uint32_t index, const void *hash);

/**
 * llmdev_kv_free() - a sequence lets go of one block
 * @kv: the pool
 * @seq: the sequence
 * @index: the block
 *
 * The block is freed once no sequence owns it, unless it has a hash: then
 * it stays cached.
 *
 * Return: 0; -ENOENT no such block; -EBUSY it is pinned; -EINVAL @kv is
 * NULL; -ECHILD in a forked child.
 */
LLMDEV_API int llmdev_kv_free(struct llmdev_kv *kv, uint64_t seq,
			      uint32_t index);

/**
 * llmdev_kv_free_seq() - a sequence lets go of all its blocks
 * @kv: the pool
 * @seq: the sequence
 *
 * Return: the number of blocks let go of (0 for an unknown sequence);
 * -EBUSY one is pinned (then none is let go of); -EINVAL @kv is NULL;
 * -ECHILD in a forked child.
 */
LLMDEV_API int llmdev_kv_free_seq(struct llmdev_kv *kv, uint64_t seq);

/**
 * llmdev_kv_pin() - bring a step's blocks into HBM and keep them there
 * @kv: the pool
 * @refs: the blocks (the same block may appear more than once)
 * @count: entries in @refs
 * @offsets: out: each block's byte offset in the pool's region; may be
 *           NULL
 *
 * Blocks in HBM are pinned at once; the others are read from disk into
 * host memory if they are there, and moved into HBM with DMA batches,
 * after making room (an eviction round, waited for) if needed. Blocks on
 * their way in from a prefetch are waited for. A pin counts: unpin as many
 * times. All or nothing: on failure nothing is pinned (blocks may have
 * moved).
 *
 * Return: 0; -ENOENT a block that does not exist; -ENOSPC more blocks
 * pinned than HBM holds, or no room for them; -EIO a block's contents
 * were lost (a disk read failed: that block is marked lost), or the
 * card failed the transfer; -ETIME a batch did not finish within the
 * pool's timeout (it goes on: call again); -EINVAL a NULL argument, a
 * reserved field set; -ECHILD in a forked child; the other errors of
 * llmdev_dma_batch() and of the batch (-ENODEV the card was removed).
 */
LLMDEV_API int llmdev_kv_pin(struct llmdev_kv *kv,
			     const struct llmdev_kv_ref *refs,
			     unsigned int count, uint64_t *offsets);

/**
 * llmdev_kv_unpin() - undo one llmdev_kv_pin() of the blocks
 * @kv: the pool
 * @refs: the blocks
 * @count: entries in @refs
 *
 * The blocks become the most recently used: the last to be evicted. May
 * start an eviction round (not waited for) when HBM is above its high
 * watermark.
 *
 * Return: 0; -ENOENT a block that does not exist; -EINVAL a block that is
 * not pinned (then nothing is unpinned), a NULL argument; -ECHILD in a
 * forked child.
 */
LLMDEV_API int llmdev_kv_unpin(struct llmdev_kv *kv,
			       const struct llmdev_kv_ref *refs,
			       unsigned int count);

/**
 * llmdev_kv_prefetch() - start bringing blocks into HBM ahead of a step
 * @kv: the pool
 * @refs: the blocks
 * @count: entries in @refs
 * @fence: out: completes when they are in HBM; 0 if they already are
 *
 * Blocks on disk are read into host memory in the call; those in host
 * memory go to HBM with DMA batches that the call does not wait for.
 * Making room in HBM may wait for an eviction round. A later
 * llmdev_kv_pin() of the blocks waits for what is still in flight.
 *
 * Return: 0; the errors of llmdev_kv_pin().
 */
LLMDEV_API int llmdev_kv_prefetch(struct llmdev_kv *kv,
				  const struct llmdev_kv_ref *refs,
				  unsigned int count, uint64_t *fence);

/**
 * llmdev_kv_wait() - wait for a prefetch
 * @kv: the pool
 * @fence: from llmdev_kv_prefetch()
 * @timeout_ns: how long to wait; 0 only checks
 *
 * Return: 0 done (also for fence 0, and for a fence already waited for);
 * -ETIME not yet; the error of the first of the prefetch's DMA batches
 * that failed (-EIO, -ENODEV, ...: its blocks stayed in host memory), as
 * long as it is among the pool's last 64 failures (and the prefetch among
 * its last 64 of more than one batch); -ENOENT no such fence; -EINVAL @kv
 * is NULL; -ECHILD in a forked child.
 */
LLMDEV_API int llmdev_kv_wait(struct llmdev_kv *kv, uint64_t fence,
			      uint64_t timeout_ns);

/**
 * llmdev_kv_evict() - move blocks out of a tier now
 * @kv: the pool
 * @tier: LLMDEV_KV_HBM (to host memory) or LLMDEV_KV_HOST (to disk)
 * @count: at most this many, least recently used first, unpinned only
 *
 * One round, waited for: for HBM DMA batches (after making room in host
 * memory, which may write to disk); for host memory, disk writes.
 *
 * Return: the number of blocks moved; -EINVAL a bad tier (or one the pool
 * has not, or no lower tier), @kv NULL; -ENOSPC no room below; -ECHILD in
 * a forked child; the errors of llmdev_dma_batch() and of the batch; of
 * pwrite(2) (-ENOSPC the disk is full; -EFBIG RLIMIT_FSIZE lowered below
 * the disk file's size since the pool was created, with SIGXFSZ ignored or
 * handled: the kernel's default action for it ends the process).
 */
LLMDEV_API int llmdev_kv_evict(struct llmdev_kv *kv, unsigned int tier,
			       unsigned int count);

/**
 * llmdev_kv_tier() - where a block is
 * @kv: the pool
 * @seq: the sequence
 * @index: the block
 *
 * Return: an enum llmdev_kv_tier (the destination, for a block in flight,
 * after waiting for it); -ENOENT no such block; -EIO its contents were
 * lost; -EINVAL @kv is NULL; -ECHILD in a forked child.
 */
LLMDEV_API int llmdev_kv_tier(struct llmdev_kv *kv, uint64_t seq,
			      uint32_t index);

/**
 * llmdev_kv_read() - copy a block's contents out, wherever it is
 * @kv: the pool
 * @seq: the sequence
 * @index: the block
 * @buf: block_size bytes, any alignment
 *
 * The block does not move (a block in flight is waited for first), and
 * this counts as no hit or miss.
 *
 * Return: 0; -ENOENT no such block; -EIO its contents are lost, or a read
 * failed; -EINVAL a NULL argument; -ECHILD in a forked child; the errors
 * of llmdev_copy_from_hbm() and pread(2).
 */
LLMDEV_API int llmdev_kv_read(struct llmdev_kv *kv, uint64_t seq,
			      uint32_t index, void *buf);

/**
 * llmdev_kv_write() - set a block's contents, wherever it is
 * @kv: the pool
 * @seq: the sequence
 * @index: the block
 * @buf: block_size bytes, any alignment
 *
 * As llmdev_kv_read(), the other way; a lost block is whole again after
 * it (still lost if the write fails).
 *
 * Return: as llmdev_kv_read() (the errors of llmdev_copy_to_hbm() and
 * pwrite(2)).
 */
LLMDEV_API int llmdev_kv_write(struct llmdev_kv *kv, uint64_t seq,
			       uint32_t index, const void *buf);

/**
 * llmdev_kv_get_stats() - a pool's statistics
 * @kv: the pool
 * @st: out
 * @size: sizeof(*@st) as the caller was built
 *
 * Return: 0; -EINVAL a NULL argument or @size below the first version;
 * -ECHILD in a forked child.
 */
LLMDEV_API int llmdev_kv_get_stats(struct llmdev_kv *kv,
				   struct llmdev_kv_stats *st, size_t size);

/**
 * llmdev_kv_stats_read() - read a pool's statistics file
 * @path: a file LLMDEV_KV_STATS_DIR/LLMDEV_KV_STATS_PREFIX* (of any
 *        process)
 * @st: out; @st->alive tells whether the owner still runs
 * @size: sizeof(*@st) as the caller was built
 *
 * The file is read in one pread(2), without the owner's lock: counters
 * may be of moments a few microseconds apart. It must be a regular file
 * (no symlink is followed). Where /proc hides the owner's start time
 * (hidepid), @st->alive cannot tell a reused pid from the owner.
 *
 * Return: 0; -EINVAL a NULL argument, @size below the first version, not
 * a regular file, not a statistics file (or of another version); -ELOOP
 * a symlink; -ENOMEM; the errors of open(2) and pread(2).
 */
LLMDEV_API int llmdev_kv_stats_read(const char *path,
				    struct llmdev_kv_stats *st, size_t size);

/**
 * llmdev_counter_name() - name of a perf counter
 * @index: an enum llmdev_counter
 *
 * Return: e.g. "h2c_bytes"; NULL if @index >= LLMDEV_COUNTER_NUM.
 */
LLMDEV_API const char *llmdev_counter_name(unsigned int index);

/**
 * llmdev_strerror() - describe an error returned by the library
 * @err: a negative errno (a positive one is accepted too)
 *
 * Return: a static string; for the codes with a specific meaning in llmdev
 * (-ETIME, -ENOSPC, -EAGAIN, -ENOTTY, ...) it says what it means for a
 * card, otherwise it is strerror(-@err).
 */
LLMDEV_API const char *llmdev_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* LLMDEV_H */
