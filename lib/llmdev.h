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
 * persistent region of that name; -EPERM not the owner nor CAP_SYS_ADMIN.
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
 * range that is not inside one region the caller may use; the errors of
 * mmap(2)).
 */
LLMDEV_API void *llmdev_hbm_map(struct llmdev *dev, uint64_t mmap_offset,
				uint64_t length, int prot);

/**
 * llmdev_hbm_unmap() - undo llmdev_hbm_map()
 * @addr: the address it returned
 * @length: the length given to it
 *
 * Return: 0, or a negative errno from munmap(2).
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
 * of LLMDEV_DMA_SUBMIT.
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
 * @dev and those in @ranks must stay open while the group is used.
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
 * handle was closed.
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
 *       NULL
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
 * the call and nothing moves.
 *
 * Return: 0; -ETIME (with LLMDEV_BATCH_WAIT) the batch is queued but not
 * finished: wait for *@fence; -EINVAL @dev or @ops NULL; the other errors
 * of LLMDEV_DMA_BATCH.
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
