// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: perf counters, as one consistent snapshot (ioctl) and one sysfs
 * file per counter (live values).
 */
#include <linux/device.h>
#include <linux/timekeeping.h>

#include "llmdev_drv.h"

static_assert((int)LLMDEV_COUNTER_NUM == (int)LLMDEV_PERF_NUM_COUNTERS);

/**
 * llmdev_perf_snapshot() - latch and read every counter at once
 * @ldev: the card
 * @perf: filled with the counters and both timestamps
 *
 * Waits while the card is being reset.
 *
 * Return: 0, -ENODEV if the card is gone, -EIO if it is dead, -EINTR.
 */
int llmdev_perf_snapshot(struct llmdev_device *ldev, struct llmdev_perf *perf)
{
	unsigned int i, n;
	int idx, ret;

	ret = llmdev_hw_enter(ldev, &idx);
	if (ret)
		return ret;
	mutex_lock(&ldev->perf_lock);
	llmdev_wr32(ldev, LLMDEV_REG_PERF_CTRL, LLMDEV_PERF_CTRL_SNAPSHOT);
	perf->host_time_ns = ktime_get_ns();
	perf->card_time_ns = llmdev_rd64(ldev, LLMDEV_REG_PERF_SNAP_TIME);
	n = min_t(u32, llmdev_rd32(ldev, LLMDEV_REG_PERF_NUM),
		  LLMDEV_MAX_COUNTERS);
	perf->num_counters = n;
	for (i = 0; i < n; i++)
		perf->counters[i] = llmdev_rd64(ldev, LLMDEV_REG_PERF_SNAP + 8 * i);
	mutex_unlock(&ldev->perf_lock);
	llmdev_exit(ldev, idx);
	return 0;
}

int llmdev_perf_ioctl_read(struct llmdev_ucmd *ucmd)
{
	struct llmdev_perf *perf = ucmd->cmd;

	if (perf->flags || perf->__reserved)
		return -EINVAL;
	perf->num_counters = 0;
	memset(perf->counters, 0, sizeof(perf->counters));
	return llmdev_perf_snapshot(ucmd->lf->ldev, perf);
}

struct llmdev_counter_attr {
	struct device_attribute attr;
	unsigned int index;
};

static ssize_t llmdev_counter_show(struct device *dev,
				   struct device_attribute *attr, char *buf)
{
	struct llmdev_counter_attr *ca =
		container_of(attr, struct llmdev_counter_attr, attr);
	struct llmdev_device *ldev = to_llmdev(dev);
	u64 val;
	int idx, ret;

	ret = llmdev_hw_enter(ldev, &idx);
	if (ret)
		return ret;
	val = llmdev_rd64(ldev, LLMDEV_REG_PERF_LIVE + 8 * ca->index);
	llmdev_exit(ldev, idx);
	return sysfs_emit(buf, "%llu\n", val);
}

#define LLMDEV_COUNTER(_name, _index)					\
	static struct llmdev_counter_attr llmdev_counter_##_name = {	\
		.attr = __ATTR(_name, 0444, llmdev_counter_show, NULL),	\
		.index = _index,					\
	}

LLMDEV_COUNTER(h2c_bytes, LLMDEV_COUNTER_H2C_BYTES);
LLMDEV_COUNTER(c2h_bytes, LLMDEV_COUNTER_C2H_BYTES);
LLMDEV_COUNTER(h2c_desc, LLMDEV_COUNTER_H2C_DESC);
LLMDEV_COUNTER(c2h_desc, LLMDEV_COUNTER_C2H_DESC);
LLMDEV_COUNTER(irqs, LLMDEV_COUNTER_IRQS);
LLMDEV_COUNTER(aperture_rd_bytes, LLMDEV_COUNTER_APERTURE_RD_BYTES);
LLMDEV_COUNTER(aperture_wr_bytes, LLMDEV_COUNTER_APERTURE_WR_BYTES);
LLMDEV_COUNTER(errors, LLMDEV_COUNTER_ERRORS);
LLMDEV_COUNTER(dma_busy_ns, LLMDEV_COUNTER_DMA_BUSY_NS);
LLMDEV_COUNTER(scrub_bytes, LLMDEV_COUNTER_SCRUB_BYTES);
LLMDEV_COUNTER(doorbells, LLMDEV_COUNTER_DOORBELLS);
LLMDEV_COUNTER(link_tx_bytes, LLMDEV_COUNTER_LINK_TX_BYTES);
LLMDEV_COUNTER(link_rx_bytes, LLMDEV_COUNTER_LINK_RX_BYTES);
LLMDEV_COUNTER(coll_ops, LLMDEV_COUNTER_COLL_OPS);
LLMDEV_COUNTER(coll_busy_ns, LLMDEV_COUNTER_COLL_BUSY_NS);

static struct attribute *llmdev_counter_attrs[] = {
	&llmdev_counter_h2c_bytes.attr.attr,
	&llmdev_counter_c2h_bytes.attr.attr,
	&llmdev_counter_h2c_desc.attr.attr,
	&llmdev_counter_c2h_desc.attr.attr,
	&llmdev_counter_irqs.attr.attr,
	&llmdev_counter_aperture_rd_bytes.attr.attr,
	&llmdev_counter_aperture_wr_bytes.attr.attr,
	&llmdev_counter_errors.attr.attr,
	&llmdev_counter_dma_busy_ns.attr.attr,
	&llmdev_counter_scrub_bytes.attr.attr,
	&llmdev_counter_doorbells.attr.attr,
	&llmdev_counter_link_tx_bytes.attr.attr,
	&llmdev_counter_link_rx_bytes.attr.attr,
	&llmdev_counter_coll_ops.attr.attr,
	&llmdev_counter_coll_busy_ns.attr.attr,
	NULL,
};

const struct attribute_group llmdev_counters_group = {
	.name = "counters",
	.attrs = llmdev_counter_attrs,
};
