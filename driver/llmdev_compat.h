/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * llmdev: the one place that knows kernel versions.
 *
 * The driver is written against the newest kernel's API; what an older
 * kernel lacks is provided here, so that the rest of the driver reads like
 * upstream code and knows no versions. Where distributions backport an API
 * change (RHEL does, to kernels whose version number predates it), the test
 * is for the feature, not the version. Supported: 5.10 to the newest
 * (`make compat` builds against Debian's bullseye, bookworm, trixie and sid
 * kernels).
 *
 * Adding a shim: name the kernel version that changed the API, and test,
 * in this order of preference, a macro the change added or removed, a
 * feature probe (Kbuild's llmdev-has: does the kernel's header declare
 * it?), or LINUX_VERSION_CODE where nothing else tells.
 */
#ifndef LLMDEV_COMPAT_H
#define LLMDEV_COMPAT_H

#include <linux/device.h>
#include <linux/mm.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>
#include <net/devlink.h>
#include <net/genetlink.h>

/*
 * ALIGN() and friends: in <linux/align.h> after 5.10, in kernel.h before;
 * kernel.h includes align.h where it exists. (Not __has_include(): sparse
 * 0.6.4 cannot parse it.)
 */
#include <linux/kernel.h>

/*
 * 6.4, "driver core: class: remove module * from class_create()": the
 * owner argument is gone. Before, class_create() was a macro (and it is
 * one wherever the old form survives, backports or not).
 */
#ifdef class_create
#define llmdev_class_create(name)	class_create(THIS_MODULE, name)
#else
#define llmdev_class_create(name)	class_create(name)
#endif

/*
 * __uninitialized: a stack variable the kernel's automatic initialisation
 * (CONFIG_INIT_STACK_ALL_ZERO) leaves alone. Where the kernel does not
 * define it, such a variable is zeroed as any other.
 */
#ifndef __uninitialized
#define __uninitialized
#endif

/*
 * 6.8 renamed PCI_IRQ_LEGACY to PCI_IRQ_INTX; the old name is gone by 6.12.
 */
#ifndef PCI_IRQ_INTX
#define PCI_IRQ_INTX			PCI_IRQ_LEGACY
#endif

/*
 * pcim_request_region(): a BAR released at unbind. Public since 6.11; before,
 * pci_request_region() after pcim_enable_device() did the same. That
 * hybrid is gone by 7.2 (6.12 still has it): there a BAR requested with
 * pci_request_region() stays busy after unbind, and the next probe fails.
 */
#ifndef LLMDEV_HAVE_PCIM_REQUEST_REGION
static inline int pcim_request_region(struct pci_dev *pdev, int bar,
				      const char *name)
{
	return pci_request_region(pdev, bar, name);
}
#endif

/*
 * 6.3, "mm: introduce vma->vm_flags wrapper functions": vm_flags became
 * read-only, changed through vm_flags_set() and friends.
 */
#ifndef LLMDEV_HAVE_VM_FLAGS_SET
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}
#endif

/*
 * 6.4, "mm: introduce per-VMA lock": a fault may hold the VMA's lock
 * instead of mmap_lock; release_fault_lock() (6.5) drops whichever it
 * holds. Before, a fault always held mmap_lock for reading.
 */
#ifndef LLMDEV_HAVE_RELEASE_FAULT_LOCK
static inline void release_fault_lock(struct vm_fault *vmf)
{
	mmap_read_unlock(vmf->vma->vm_mm);
}
#endif

/*
 * 5.15, "devlink: Set device as early as possible": devlink_alloc() takes
 * the device and devlink_register() no longer does (devlink_alloc_ns()
 * came with it). Called through these two everywhere.
 */
#ifdef LLMDEV_HAVE_DEVLINK_ALLOC_NS
static inline struct devlink *
llmdev_devlink_alloc(const struct devlink_ops *ops, size_t size,
		     struct device *dev)
{
	return devlink_alloc(ops, size, dev);
}

static inline void llmdev_devlink_register(struct devlink *devlink,
					   struct device *dev)
{
	devlink_register(devlink);
}
#else
static inline struct devlink *
llmdev_devlink_alloc(const struct devlink_ops *ops, size_t size,
		     struct device *dev)
{
	return devlink_alloc(ops, size);
}

static inline void llmdev_devlink_register(struct devlink *devlink,
					   struct device *dev)
{
	/* fails only for a devlink registered already */
	WARN_ON(devlink_register(devlink, dev));
}
#endif

/*
 * After 6.12 (7.2 has it), the graceful period moved into the reporter ops:
 * default_graceful_period (ours is 0, the default).
 */
#ifdef LLMDEV_HAVE_DEVLINK_DEFAULT_GRACEFUL_PERIOD
#define llmdev_health_reporter_create(devlink, ops, priv)		\
	devlink_health_reporter_create(devlink, ops, priv)
#else
#define llmdev_health_reporter_create(devlink, ops, priv)		\
	devlink_health_reporter_create(devlink, ops, 0, priv)
#endif

/*
 * 6.3, "devlink: remove devlink_info_driver_name_put()": the core names
 * the driver itself; before, the driver had to.
 */
#ifdef LLMDEV_HAVE_DEVLINK_INFO_DRIVER_NAME_PUT
#define llmdev_devlink_info_driver_name_put devlink_info_driver_name_put
#else
static inline int llmdev_devlink_info_driver_name_put(struct devlink_info_req *req,
						      const char *name)
{
	return 0;
}
#endif

/*
 * 5.15, "lib/scatterlist: Provide a dedicated function to support table
 * append": sg_alloc_table_from_pages_segment() replaced
 * __sg_alloc_table_from_pages(), which returned the last entry.
 */
#ifndef LLMDEV_HAVE_SG_ALLOC_TABLE_FROM_PAGES_SEGMENT
static inline int sg_alloc_table_from_pages_segment(struct sg_table *sgt,
						    struct page **pages,
						    unsigned int n_pages,
						    unsigned int offset,
						    unsigned long size,
						    unsigned int max_segment,
						    gfp_t gfp_mask)
{
	return PTR_ERR_OR_ZERO(__sg_alloc_table_from_pages(sgt, pages, n_pages,
							   offset, size,
							   max_segment, NULL,
							   0, gfp_mask));
}
#endif

/*
 * GENL_REQ_ATTR_CHECK() (in 6.1, not in 5.10): true, with the missing
 * attribute reported in extack, when a required attribute is absent.
 */
#ifndef GENL_REQ_ATTR_CHECK
#define GENL_REQ_ATTR_CHECK(info, attr) ({				\
	const struct genl_info *__info = (info);			\
	bool __missing = !__info->attrs[attr];				\
									\
	if (__missing)							\
		NL_SET_ERR_MSG(__info->extack,				\
			       "missing required attribute");		\
	__missing;							\
})
#endif

#endif /* LLMDEV_COMPAT_H */
