// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: PCI probe and remove, interrupts, the scrub engine, sysfs.
 */
#include <linux/debugfs.h>
#include <linux/fault-inject.h>
#include <linux/interrupt.h>
#include <linux/module.h>
#include <linux/pci.h>

#include "llmdev_drv.h"

static bool llmdev_use_msix = true;
module_param_named(msix, llmdev_use_msix, bool, 0444);
MODULE_PARM_DESC(msix, "Use MSI-X, one vector per ring (default: true); false forces one shared MSI or INTx vector");

/* the scrub engine gets 10 s plus 1 s per GiB */
#define LLMDEV_SCRUB_TIMEOUT_MS(len)	(10000 + ((len) >> 30) * 1000)

/* every bound card, for lookups across cards (peer links, collectives) */
static DEFINE_MUTEX(llmdev_devices_lock);
static LIST_HEAD(llmdev_devices);

/**
 * llmdev_find_by_serial() - the bound card with a serial number
 * @serial: the card's SERIAL register
 *
 * Return: the card with a reference held (llmdev_put()), or NULL.
 */
struct llmdev_device *llmdev_find_by_serial(u64 serial)
{
	struct llmdev_device *ldev, *found = NULL;

	mutex_lock(&llmdev_devices_lock);
	list_for_each_entry(ldev, &llmdev_devices, node) {
		if (ldev->serial == serial) {
			found = ldev;
			llmdev_get(found);
			break;
		}
	}
	mutex_unlock(&llmdev_devices_lock);
	return found;
}

/**
 * llmdev_next_device() - iterate over the bound cards by minor number
 * @minor: where to start
 *
 * Return: the card with the lowest minor >= @minor, with a reference held
 * (llmdev_put()), or NULL.
 */
struct llmdev_device *llmdev_next_device(int minor)
{
	struct llmdev_device *ldev, *found = NULL;

	mutex_lock(&llmdev_devices_lock);
	list_for_each_entry(ldev, &llmdev_devices, node)
		if (ldev->minor >= minor && (!found || ldev->minor < found->minor))
			found = ldev;
	if (found)
		llmdev_get(found);
	mutex_unlock(&llmdev_devices_lock);
	return found;
}

void llmdev_get(struct llmdev_device *ldev)
{
	get_device(&ldev->dev);
}

void llmdev_put(struct llmdev_device *ldev)
{
	put_device(&ldev->dev);
}

/* ---- interrupts ---------------------------------------------------------- */

/*
 * Events are rare, so every source is looked at on each one: EVENT_CAUSE
 * only says which to look at first, and a cause cleared here cannot hide
 * an event that its handler would still find.
 */
static void llmdev_handle_event(struct llmdev_device *ldev)
{
	int idx;
	u32 cause;

	wake_up_all(&ldev->scrub_wait);
	if (!llmdev_enter(ldev, &idx))
		return;		/* gone, or being reset */
	cause = llmdev_rd32(ldev, LLMDEV_REG_EVENT_CAUSE);
	if (cause != ~0u)	/* ~0: surprise removal */
		llmdev_wr32(ldev, LLMDEV_REG_EVENT_CAUSE, cause);
	llmdev_exit(ldev, idx);
	if (cause == ~0u)
		return;
	llmdev_link_handle_event(ldev);
	llmdev_coll_handle_event(ldev);
}

static irqreturn_t llmdev_ring_irq(int irq, void *data)
{
	struct llmdev_ring *ring = data;

	llmdev_wr32(ring->ldev, LLMDEV_REG_IRQ_STATUS,
		    LLMDEV_IRQ_RING(ring->index));
	llmdev_dma_handle_ring(ring);
	return IRQ_HANDLED;
}

static irqreturn_t llmdev_error_irq(int irq, void *data)
{
	struct llmdev_device *ldev = data;

	llmdev_wr32(ldev, LLMDEV_REG_IRQ_STATUS, LLMDEV_IRQ_ERROR);
	llmdev_dma_handle_error(ldev);
	return IRQ_HANDLED;
}

static irqreturn_t llmdev_event_irq(int irq, void *data)
{
	struct llmdev_device *ldev = data;

	llmdev_wr32(ldev, LLMDEV_REG_IRQ_STATUS, LLMDEV_IRQ_EVENT);
	llmdev_handle_event(ldev);
	return IRQ_HANDLED;
}

/*
 * With a single vector every source shares it: read IRQ_STATUS to find who
 * rang (5.3). The hard handler claims only the card's own sources, so a
 * shared INTx line is not claimed for other devices' interrupts, and
 * clears them, so that a level-triggered INTx line is deasserted before it
 * is unmasked again (the line is not IRQF_ONESHOT: that would have to
 * match every other device sharing it); the thread handles what it
 * cleared.
 */
static irqreturn_t llmdev_single_hardirq(int irq, void *data)
{
	struct llmdev_device *ldev = data;
	u32 status = llmdev_rd32(ldev, LLMDEV_REG_IRQ_STATUS);

	if (status == ~0u)
		return IRQ_NONE;	/* surprise removal */
	status &= lower_32_bits(LLMDEV_IRQ_ALL);
	if (!status)
		return IRQ_NONE;
	llmdev_wr32(ldev, LLMDEV_REG_IRQ_STATUS, status);
	atomic_or(status, &ldev->irq_single_pending);
	return IRQ_WAKE_THREAD;
}

static irqreturn_t llmdev_single_irq(int irq, void *data)
{
	struct llmdev_device *ldev = data;
	u32 status = atomic_xchg(&ldev->irq_single_pending, 0);
	unsigned int i;

	for (i = 0; i < LLMDEV_NUM_RINGS; i++)
		if (status & LLMDEV_IRQ_RING(i))
			llmdev_dma_handle_ring(&ldev->ring[i]);
	if (status & LLMDEV_IRQ_ERROR)
		llmdev_dma_handle_error(ldev);
	if (status & LLMDEV_IRQ_EVENT)
		llmdev_handle_event(ldev);
	return IRQ_HANDLED;
}

static int llmdev_irq_init(struct llmdev_device *ldev)
{
	struct pci_dev *pdev = ldev->pdev;
	unsigned int i;
	int ret;

	ldev->nvec = -ENOSPC;
	if (llmdev_use_msix)
		ldev->nvec = pci_alloc_irq_vectors(pdev, LLMDEV_NUM_VECTORS,
						   LLMDEV_NUM_VECTORS,
						   PCI_IRQ_MSIX);
	if (ldev->nvec < 0) {
		/*
		 * One vector for everything: completions of all rings, errors
		 * and events are demultiplexed from IRQ_STATUS, so a busy ring
		 * delays the others' completions by one handler run.
		 */
		ldev->nvec = pci_alloc_irq_vectors(pdev, 1, 1,
						   PCI_IRQ_MSI | PCI_IRQ_INTX);
		if (ldev->nvec < 0)
			return ldev->nvec;
		ret = request_threaded_irq(pci_irq_vector(pdev, 0),
					   llmdev_single_hardirq,
					   llmdev_single_irq, IRQF_SHARED,
					   dev_name(&ldev->dev), ldev);
		if (ret)
			goto err_free_vectors;
		dev_info(&pdev->dev, "using one shared %s vector\n",
			 pdev->msi_enabled ? "MSI" : "INTx");
		return 0;
	}

	for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
		ret = request_threaded_irq(pci_irq_vector(pdev, LLMDEV_VEC_RING(i)),
					   NULL, llmdev_ring_irq, IRQF_ONESHOT,
					   dev_name(&ldev->dev), &ldev->ring[i]);
		if (ret)
			goto err_free_rings;
	}
	ret = request_threaded_irq(pci_irq_vector(pdev, LLMDEV_VEC_ERROR), NULL,
				   llmdev_error_irq, IRQF_ONESHOT,
				   dev_name(&ldev->dev), ldev);
	if (ret)
		goto err_free_rings;
	ret = request_threaded_irq(pci_irq_vector(pdev, LLMDEV_VEC_EVENT), NULL,
				   llmdev_event_irq, IRQF_ONESHOT,
				   dev_name(&ldev->dev), ldev);
	if (ret)
		goto err_free_error;
	return 0;

err_free_error:
	free_irq(pci_irq_vector(pdev, LLMDEV_VEC_ERROR), ldev);
err_free_rings:
	while (i--)
		free_irq(pci_irq_vector(pdev, LLMDEV_VEC_RING(i)), &ldev->ring[i]);
err_free_vectors:
	pci_free_irq_vectors(pdev);
	return ret;
}

static void llmdev_irq_fini(struct llmdev_device *ldev)
{
	struct pci_dev *pdev = ldev->pdev;
	unsigned int i;

	if (ldev->nvec == 1) {
		free_irq(pci_irq_vector(pdev, 0), ldev);
	} else {
		free_irq(pci_irq_vector(pdev, LLMDEV_VEC_EVENT), ldev);
		free_irq(pci_irq_vector(pdev, LLMDEV_VEC_ERROR), ldev);
		for (i = 0; i < LLMDEV_NUM_RINGS; i++)
			free_irq(pci_irq_vector(pdev, LLMDEV_VEC_RING(i)),
				 &ldev->ring[i]);
	}
	pci_free_irq_vectors(pdev);
}

/* ---- scrub engine ---------------------------------------------------------- */

static bool llmdev_scrub_finished(struct llmdev_device *ldev)
{
	/* a card that went away reads all ones: ERROR */
	return READ_ONCE(ldev->unplugged) ||
	       (llmdev_rd32(ldev, LLMDEV_REG_SCRUB_STATUS) &
		(LLMDEV_SCRUB_STATUS_DONE | LLMDEV_SCRUB_STATUS_ERROR));
}

/*
 * No scrub running: one that timed out may still be (START is ignored
 * then). A card that reads all ones is not waited for: its scrub fails.
 */
static bool llmdev_scrub_idle(struct llmdev_device *ldev)
{
	u32 status;

	if (READ_ONCE(ldev->unplugged))
		return true;
	status = llmdev_rd32(ldev, LLMDEV_REG_SCRUB_STATUS);
	return status == ~0u || !(status & LLMDEV_SCRUB_STATUS_BUSY);
}

/**
 * llmdev_scrub() - zero a range of HBM with the card's scrub engine
 * @ldev: the card
 * @offset: HBM offset, LLMDEV_SCRUB_ALIGN aligned
 * @length: bytes, a multiple of LLMDEV_SCRUB_ALIGN
 *
 * Waits while the card is being reset, even in a dying task.
 *
 * Return: 0, -ETIMEDOUT if the engine did not finish, -EIO if it refused
 * the range or the card is dead, -ENODEV if the card is gone.
 */
int llmdev_scrub(struct llmdev_device *ldev, u64 offset, u64 length)
{
	int idx, err, ret = 0;
	long left;
	u32 status;

	/* HBM is given back also when a task dies: wait for a reset then too */
	err = llmdev_hw_enter_nokill(ldev, &idx);
	if (err)
		return err;
	mutex_lock(&ldev->scrub_lock);
	/*
	 * An earlier scrub that timed out may still run: a START now would
	 * be ignored and its DONE taken for ours, the range left unscrubbed
	 * (11.5: wait for the engine first). Its length is not known here.
	 */
	if (!wait_event_timeout(ldev->scrub_wait, llmdev_scrub_idle(ldev),
				msecs_to_jiffies(LLMDEV_SCRUB_TIMEOUT_MS(ldev->hbm.size)))) {
		ret = -ETIMEDOUT;
		goto out;
	}
	llmdev_wr64(ldev, LLMDEV_REG_SCRUB_ADDR, offset);
	llmdev_wr64(ldev, LLMDEV_REG_SCRUB_LEN, length);
	llmdev_wr32(ldev, LLMDEV_REG_SCRUB_PATTERN, 0);
	llmdev_wr32(ldev, LLMDEV_REG_SCRUB_CTRL, LLMDEV_SCRUB_CTRL_START);
	left = wait_event_timeout(ldev->scrub_wait, llmdev_scrub_finished(ldev),
				  msecs_to_jiffies(LLMDEV_SCRUB_TIMEOUT_MS(length)));
	status = llmdev_rd32(ldev, LLMDEV_REG_SCRUB_STATUS);
	if (READ_ONCE(ldev->unplugged))
		ret = -ENODEV;
	else if (!left && !(status & LLMDEV_SCRUB_STATUS_DONE))
		ret = -ETIMEDOUT;
	else if (status & LLMDEV_SCRUB_STATUS_ERROR)
		ret = -EIO;
out:
	mutex_unlock(&ldev->scrub_lock);
	llmdev_exit(ldev, idx);
	if (ret && ret != -ENODEV)
		dev_err(&ldev->dev, "scrub of HBM [%#llx, +%#llx) failed: %d\n",
			offset, length, ret);
	return ret;
}

/*
 * The card is let go (unbind, rmmod): zero all of its HBM, so that what
 * its users left there does not reach whoever drives it next (vfio-pci
 * and a guest, another kernel after kexec). Called after the reset that
 * stopped the card's DMA, with its interrupts masked and nothing left to
 * wake a waiter: the engine is polled. Persistent regions end here too.
 */
static void llmdev_scrub_final(struct llmdev_device *ldev)
{
	unsigned long end = jiffies +
		msecs_to_jiffies(LLMDEV_SCRUB_TIMEOUT_MS(ldev->hbm.size));
	u32 status;

	/* the reset aborted any scrub, and nobody can start one now */
	llmdev_wr64(ldev, LLMDEV_REG_SCRUB_ADDR, 0);
	llmdev_wr64(ldev, LLMDEV_REG_SCRUB_LEN, ldev->hbm.size);
	llmdev_wr32(ldev, LLMDEV_REG_SCRUB_PATTERN, 0);
	llmdev_wr32(ldev, LLMDEV_REG_SCRUB_CTRL, LLMDEV_SCRUB_CTRL_START);
	for (;;) {
		status = llmdev_rd32(ldev, LLMDEV_REG_SCRUB_STATUS);
		if (status == ~0u || (status & (LLMDEV_SCRUB_STATUS_DONE |
						LLMDEV_SCRUB_STATUS_ERROR)) ||
		    time_after(jiffies, end))
			break;
		usleep_range(1000, 2000);
	}
	if (status != ~0u && (status & LLMDEV_SCRUB_STATUS_DONE) &&
	    !(status & LLMDEV_SCRUB_STATUS_ERROR))
		return;
	dev_warn(&ldev->dev, "HBM not scrubbed on removal (%s): data of its last users may remain on the card\n",
		 status == ~0u ? "card not responding" :
		 status & LLMDEV_SCRUB_STATUS_ERROR ? "scrub failed" :
		 "scrub timed out");
}

/* ---- sysfs ----------------------------------------------------------------- */

static ssize_t serial_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "0x%016llx\n", to_llmdev(dev)->serial);
}
static DEVICE_ATTR_RO(serial);

static ssize_t spec_version_show(struct device *dev,
				 struct device_attribute *attr, char *buf)
{
	u32 v = to_llmdev(dev)->spec_version;

	return sysfs_emit(buf, "%u.%u\n", v >> 16, v & 0xffff);
}
static DEVICE_ATTR_RO(spec_version);

static ssize_t hbm_total_show(struct device *dev, struct device_attribute *attr,
			      char *buf)
{
	return sysfs_emit(buf, "%llu\n", to_llmdev(dev)->hbm.size);
}
static DEVICE_ATTR_RO(hbm_total);

static ssize_t hbm_used_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	return sysfs_emit(buf, "%llu\n", llmdev_hbm_used(&to_llmdev(dev)->hbm));
}
static DEVICE_ATTR_RO(hbm_used);

static ssize_t numa_node_show(struct device *dev, struct device_attribute *attr,
			      char *buf)
{
	return sysfs_emit(buf, "%d\n", dev_to_node(&to_llmdev(dev)->pdev->dev));
}
static DEVICE_ATTR_RO(numa_node);

static ssize_t pcie_link_speed_show(struct device *dev,
				    struct device_attribute *attr, char *buf)
{
	static const char * const speeds[] = {
		"unknown", "2.5 GT/s", "5.0 GT/s", "8.0 GT/s", "16.0 GT/s",
		"32.0 GT/s", "64.0 GT/s",
	};
	u16 lnksta = 0;
	unsigned int s;

	pcie_capability_read_word(to_llmdev(dev)->pdev, PCI_EXP_LNKSTA, &lnksta);
	s = lnksta & PCI_EXP_LNKSTA_CLS;
	return sysfs_emit(buf, "%s\n", s < ARRAY_SIZE(speeds) ? speeds[s] : "unknown");
}
static DEVICE_ATTR_RO(pcie_link_speed);

static ssize_t pcie_link_width_show(struct device *dev,
				    struct device_attribute *attr, char *buf)
{
	u16 lnksta = 0;

	pcie_capability_read_word(to_llmdev(dev)->pdev, PCI_EXP_LNKSTA, &lnksta);
	return sysfs_emit(buf, "%u\n", (lnksta & PCI_EXP_LNKSTA_NLW) >>
				      PCI_EXP_LNKSTA_NLW_SHIFT);
}
static DEVICE_ATTR_RO(pcie_link_width);

static ssize_t state_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	static const char * const names[] = {
		[LLMDEV_STATE_LIVE] = "live",
		[LLMDEV_STATE_RESETTING] = "resetting",
		[LLMDEV_STATE_DEAD] = "dead",
	};
	struct llmdev_device *ldev = to_llmdev(dev);

	if (READ_ONCE(ldev->unplugged))
		return sysfs_emit(buf, "removed\n");
	return sysfs_emit(buf, "%s\n", names[READ_ONCE(ldev->state)]);
}
static DEVICE_ATTR_RO(state);

static ssize_t reset_count_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(to_llmdev(dev)->reset_count));
}
static DEVICE_ATTR_RO(reset_count);

static ssize_t reset_failures_show(struct device *dev,
				   struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(to_llmdev(dev)->reset_failures));
}
static DEVICE_ATTR_RO(reset_failures);

static struct attribute *llmdev_attrs[] = {
	&dev_attr_state.attr,
	&dev_attr_reset_count.attr,
	&dev_attr_reset_failures.attr,
	&dev_attr_serial.attr,
	&dev_attr_spec_version.attr,
	&dev_attr_hbm_total.attr,
	&dev_attr_hbm_used.attr,
	&dev_attr_numa_node.attr,
	&dev_attr_pcie_link_speed.attr,
	&dev_attr_pcie_link_width.attr,
	NULL,
};

static const struct attribute_group llmdev_attr_group = {
	.attrs = llmdev_attrs,
};

const struct attribute_group *llmdev_groups[] = {
	&llmdev_attr_group,
	&llmdev_counters_group,
	&llmdev_link_attr_groups[0],
	&llmdev_link_attr_groups[1],
	&llmdev_link_attr_groups[2],
	&llmdev_link_attr_groups[3],
	NULL,
};

static_assert(LLMDEV_NUM_LINK_PORTS == 4);

/* ---- probe and remove ------------------------------------------------------ */

#ifdef CONFIG_FAULT_INJECTION_DEBUG_FS
/*
 * debugfs llmdev/fail_probe (Documentation/fault-injection): fails a rung
 * of the probe ladder with -ENOMEM, so that each error path of probe can
 * be taken on purpose (with "space" N and "times" 1: the Nth rung).
 * Allocation failures (failslab and fail-nth) reach the PCI, ACPI and IRQ
 * cores' allocations in a probe as well, and 6.1's have bugs under them.
 */
static DECLARE_FAULT_ATTR(llmdev_fail_probe);
static struct dentry *llmdev_debugfs;

static int llmdev_probe_fault(void)
{
	return should_fail(&llmdev_fail_probe, 1) ? -ENOMEM : 0;
}

static void llmdev_fault_init(void)
{
	llmdev_debugfs = debugfs_create_dir(KBUILD_MODNAME, NULL);
	fault_create_debugfs_attr("fail_probe", llmdev_debugfs,
				  &llmdev_fail_probe);
}

static void llmdev_fault_fini(void)
{
	debugfs_remove_recursive(llmdev_debugfs);
}
#else
static int llmdev_probe_fault(void)
{
	return 0;
}

static void llmdev_fault_init(void)
{
}

static void llmdev_fault_fini(void)
{
}
#endif

/*
 * Probe is a ladder of steps, each undone by the step of the same name in
 * the error path and in remove; a step undoes only what it did. What
 * llmdev_alloc() sets up (locks, lists, the refcount) is valid from the
 * start, so the final put (llmdev_dev_release()) is safe at any rung.
 */

static int llmdev_hw_init(struct llmdev_device *ldev)
{
	struct pci_dev *pdev = ldev->pdev;
	u32 id = llmdev_rd32(ldev, LLMDEV_REG_ID);

	ldev->spec_version = llmdev_rd32(ldev, LLMDEV_REG_VERSION);
	if (id != LLMDEV_ID_MAGIC ||
	    ldev->spec_version >> 16 != LLMDEV_SPEC_MAJOR) {
		dev_err(&pdev->dev, "unsupported card: id %#x, spec version %#x\n",
			id, ldev->spec_version);
		return -ENODEV;
	}
	llmdev_wr32(ldev, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_RESET);
	/* vector descriptors came with 1.2, and a card says it has them */
	ldev->desc_vec = (ldev->spec_version & 0xffff) >= 2 &&
			 (llmdev_rd32(ldev, LLMDEV_REG_CAPS) & LLMDEV_CAPS_DESC_VEC);
	ldev->serial = llmdev_rd64(ldev, LLMDEV_REG_SERIAL);
	ldev->hbm.size = llmdev_rd64(ldev, LLMDEV_REG_HBM_SIZE);
	if (ldev->hbm.size > pci_resource_len(pdev, LLMDEV_BAR_HBM)) {
		dev_err(&pdev->dev, "HBM of %llu bytes does not fit BAR %d\n",
			ldev->hbm.size, LLMDEV_BAR_HBM);
		return -ENODEV;
	}
	return 0;
}

static void llmdev_wc_fini(void *data)
{
	struct llmdev_device *ldev = data;

	arch_phys_wc_del(ldev->wc_cookie);
	arch_io_free_memtype_wc(ldev->hbm_phys,
				pci_resource_len(ldev->pdev, LLMDEV_BAR_HBM));
	llmdev_put(ldev);	/* managed actions run after remove's put */
}

static int llmdev_pci_init(struct llmdev_device *ldev)
{
	struct pci_dev *pdev = ldev->pdev;
	resource_size_t len;
	int ret;

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	ret = pcim_iomap_regions(pdev, BIT(LLMDEV_BAR_REGS), LLMDEV_NAME);
	if (ret)
		return ret;
	ldev->regs = pcim_iomap_table(pdev)[LLMDEV_BAR_REGS];
	/*
	 * The aperture is only mapped to userspace, never by the kernel. The
	 * region is managed: it is released at unbind without a call of ours.
	 */
	ret = pcim_request_region(pdev, LLMDEV_BAR_HBM, LLMDEV_NAME);
	if (ret)
		return ret;
	ldev->hbm_phys = pci_resource_start(pdev, LLMDEV_BAR_HBM);
	len = pci_resource_len(pdev, LLMDEV_BAR_HBM);
	/*
	 * User mappings are write-combined; the PFNs inserted at fault time
	 * get the memory type reserved here (PAT), as GPU drivers do for
	 * their VRAM apertures.
	 */
	ret = arch_io_reserve_memtype_wc(ldev->hbm_phys, len);
	if (ret)
		return ret;
	ldev->wc_cookie = arch_phys_wc_add(ldev->hbm_phys, len);
	llmdev_get(ldev);
	ret = devm_add_action_or_reset(&pdev->dev, llmdev_wc_fini, ldev);
	if (ret)
		return ret;
	pci_set_master(pdev);
	return dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
}

static void llmdev_dev_release(struct device *dev)
{
	struct llmdev_device *ldev = to_llmdev(dev);

	llmdev_hbm_fini(ldev);
	llmdev_inode_fini(ldev);
	cleanup_srcu_struct(&ldev->unplug_srcu);
	pci_dev_put(ldev->pdev);
	kfree(ldev);
}

static struct llmdev_device *llmdev_alloc(struct pci_dev *pdev)
{
	struct llmdev_device *ldev;
	int ret;

	ldev = kzalloc(sizeof(*ldev), GFP_KERNEL);
	if (!ldev)
		return ERR_PTR(-ENOMEM);
	ret = init_srcu_struct(&ldev->unplug_srcu);
	if (ret) {
		kfree(ldev);
		return ERR_PTR(ret);
	}
	ldev->pdev = pci_dev_get(pdev);
	ldev->minor = -1;
	llmdev_reset_init(ldev);
	llmdev_hbm_init(&ldev->hbm);
	mutex_init(&ldev->scrub_lock);
	init_waitqueue_head(&ldev->scrub_wait);
	mutex_init(&ldev->perf_lock);
	mutex_init(&ldev->files_lock);
	INIT_LIST_HEAD(&ldev->files);
	INIT_LIST_HEAD(&ldev->node);
	mutex_init(&ldev->link_lock);
	mutex_init(&ldev->route_lock);
	device_initialize(&ldev->dev);
	ldev->dev.release = llmdev_dev_release;
	ldev->dev.parent = &pdev->dev;
	ldev->dev.groups = llmdev_groups;
	return ldev;
}

/* Bring the card to a known state: empty rings and table, all HBM zero. */
static int llmdev_card_init(struct llmdev_device *ldev)
{
	int ret;

	llmdev_wr32(ldev, LLMDEV_REG_IRQ_MASK, lower_32_bits(~LLMDEV_IRQ_ALL));
	ret = llmdev_scrub(ldev, 0, ldev->hbm.size);
	if (ret)
		return ret;
	llmdev_hw_start(ldev);
	llmdev_route_hw_start(ldev);
	return 0;
}

static void llmdev_card_fini(struct llmdev_device *ldev)
{
	if (pci_device_is_present(ldev->pdev)) {
		llmdev_wr32(ldev, LLMDEV_REG_IRQ_MASK, ~0u);
		llmdev_wr32(ldev, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_RESET);
		/*
		 * Flush the reset write (hardware.md 10.2): no DMA after this
		 * read, so the jobs may be failed and their pages unpinned.
		 */
		llmdev_rd32(ldev, LLMDEV_REG_STATUS);
	}
}

static int llmdev_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct llmdev_device *ldev;
	int ret;

	ldev = llmdev_alloc(pdev);
	if (IS_ERR(ldev))
		return PTR_ERR(ldev);
	pci_set_drvdata(pdev, ldev);

	ret = llmdev_probe_fault() ?: llmdev_pci_init(ldev); /* managed */
	if (ret)
		goto err_put;
	ret = llmdev_probe_fault() ?: llmdev_hw_init(ldev);
	if (ret)
		goto err_put;
	/* undone by the final put */
	ret = llmdev_probe_fault() ?: llmdev_inode_init(ldev);
	if (ret)
		goto err_put;
	/* names the device; not yet visible */
	ret = llmdev_probe_fault() ?: llmdev_cdev_add(ldev);
	if (ret)
		goto err_put;
	ret = llmdev_probe_fault() ?: llmdev_dma_init(ldev);
	if (ret)
		goto err_cdev_del;
	ret = llmdev_probe_fault() ?: llmdev_irq_init(ldev);
	if (ret)
		goto err_dma_fini;
	ret = llmdev_probe_fault() ?: llmdev_card_init(ldev);
	if (ret)
		goto err_card_fini;
	/* the config space AER recovery restores after a bus reset */
	pci_save_state(pdev);

	ret = llmdev_probe_fault() ?: device_add(&ldev->dev);
	if (ret)
		goto err_card_fini;
	ret = llmdev_probe_fault() ?: llmdev_hwmon_init(ldev); /* managed */
	if (ret)
		goto err_device_del;
	ret = llmdev_probe_fault() ?: llmdev_pmu_init(ldev);
	if (ret)
		goto err_device_del;
	ret = llmdev_probe_fault() ?: llmdev_devlink_init(ldev);
	if (ret)
		goto err_pmu_fini;
	/*
	 * Last: from here files can be opened (the node, there since
	 * device_add(), answers -ENXIO until now), and undoing that takes
	 * all of llmdev_remove().
	 */
	ret = llmdev_probe_fault() ?: cdev_add(&ldev->cdev, ldev->dev.devt, 1);
	if (ret)
		goto err_devlink_fini;
	mutex_lock(&llmdev_devices_lock);
	list_add_tail(&ldev->node, &llmdev_devices);
	mutex_unlock(&llmdev_devices_lock);
	llmdev_link_hw_start(ldev);

	dev_info(&pdev->dev, "%s: serial %016llx, spec %u.%u, %llu MiB HBM, %d irq vector%s\n",
		 dev_name(&ldev->dev), ldev->serial, ldev->spec_version >> 16,
		 ldev->spec_version & 0xffff, ldev->hbm.size >> 20, ldev->nvec,
		 ldev->nvec == 1 ? "" : "s");
	return 0;

err_devlink_fini:
	llmdev_devlink_fini(ldev);
err_pmu_fini:
	llmdev_pmu_fini(ldev);
err_device_del:
	device_del(&ldev->dev);
err_card_fini:
	llmdev_card_fini(ldev);
	llmdev_irq_fini(ldev);
err_dma_fini:
	llmdev_dma_fini(ldev);
err_cdev_del:
	llmdev_cdev_del(ldev);
err_put:
	pci_set_drvdata(pdev, NULL);
	llmdev_put(ldev);
	return ret;
}

static void llmdev_remove(struct pci_dev *pdev)
{
	struct llmdev_device *ldev = pci_get_drvdata(pdev);

	mutex_lock(&llmdev_devices_lock);
	list_del_init(&ldev->node);
	mutex_unlock(&llmdev_devices_lock);

	/* No new opens; ioctls in progress finish, later ones get -ENODEV. */
	cdev_del(&ldev->cdev);
	WRITE_ONCE(ldev->unplugged, true);
	wake_up_all(&ldev->scrub_wait);
	wake_up_all(&ldev->state_wq);
	llmdev_dma_wake_pinners();
	synchronize_srcu(&ldev->unplug_srcu);
	/* requests built before: mapped for the card, committed or undone soon */
	wait_event(ldev->state_wq, !atomic_read(&ldev->building));
	cancel_delayed_work_sync(&ldev->reset_watchdog);
	llmdev_devlink_fini(ldev);
	llmdev_pmu_fini(ldev);

	/* existing mappings of the aperture get SIGBUS from now on */
	llmdev_zap_mappings(ldev, 0, 0);

	llmdev_card_fini(ldev);
	if (pci_device_is_present(pdev))
		llmdev_scrub_final(ldev);
	llmdev_irq_fini(ldev);
	wake_up_all(&ldev->scrub_wait);
	llmdev_dma_stop(ldev);
	llmdev_coll_fail_card(ldev, -ENODEV, true);
	llmdev_dma_fail_all(ldev, -ENODEV);
	llmdev_buf_unplug(ldev);
	llmdev_dma_fini(ldev);
	device_del(&ldev->dev);
	llmdev_cdev_del(ldev);
	pci_set_drvdata(pdev, NULL);
	llmdev_put(ldev);
}

static const struct pci_device_id llmdev_pci_ids[] = {
	{ PCI_DEVICE_SUB(LLMDEV_PCI_VENDOR_ID, LLMDEV_PCI_DEVICE_ID,
			 LLMDEV_PCI_SUBVENDOR_ID, PCI_ANY_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, llmdev_pci_ids);

static struct pci_driver llmdev_pci_driver = {
	.name = LLMDEV_NAME,
	.id_table = llmdev_pci_ids,
	.probe = llmdev_probe,
	.remove = llmdev_remove,
	.err_handler = &llmdev_err_handler,
};

static int __init llmdev_init(void)
{
	int ret;

	ret = llmdev_cdev_init();
	if (ret)
		return ret;
	ret = llmdev_netlink_init();
	if (ret)
		goto err_cdev;
	ret = llmdev_dma_cache_init();
	if (ret)
		goto err_netlink;
	llmdev_fault_init();
	ret = pci_register_driver(&llmdev_pci_driver);
	if (ret)
		goto err_fault;
	return 0;

err_fault:
	llmdev_fault_fini();
	llmdev_dma_cache_fini();
err_netlink:
	llmdev_netlink_fini();
err_cdev:
	llmdev_cdev_fini();
	return ret;
}

static void __exit llmdev_fini(void)
{
	pci_unregister_driver(&llmdev_pci_driver);
	llmdev_fault_fini();
	llmdev_pmu_exit();
	llmdev_coll_fini();
	llmdev_dma_cache_fini();
	llmdev_netlink_fini();
	llmdev_cdev_fini();
}

module_init(llmdev_init);
module_exit(llmdev_fini);

MODULE_DESCRIPTION("llmdev LLM inference card driver");
MODULE_LICENSE("GPL");
MODULE_VERSION(LLMDEV_DRIVER_VERSION);
