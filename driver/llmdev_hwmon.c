// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: the card's sensors through hwmon (docs/hardware.md section 9).
 *
 *   temp1_input       die temperature, m°C (LLMDEV_REG_TEMP_MC)
 *   temp1_crit        critical limit, m°C (LLMDEV_REG_TEMP_CRIT_MC)
 *   temp1_crit_alarm  1 while temp1_input >= temp1_crit
 *   temp1_label       "die"
 *   power1_input      board power, µW (LLMDEV_REG_POWER_MW * 1000)
 *   power1_cap        power cap, µW (LLMDEV_REG_POWER_CAP_MW * 1000)
 *   power1_cap_alarm  1 while power1_input >= power1_cap
 *   power1_label      "board"
 *
 * The card has no alarm bits of its own (spec 1.x takes no action at its
 * limits): the alarms are the driver's comparison of a reading with its
 * limit, made at the time of the read. Limits are read-only. Reads wait
 * while the card is being reset and fail with -ENODEV once it is gone,
 * -EIO while it is dead.
 */
#include <linux/device.h>
#include <linux/hwmon.h>

#include "llmdev_drv.h"

static int llmdev_hwmon_rd(struct llmdev_device *ldev, u32 reg, long *val)
{
	int idx, ret;

	ret = llmdev_hw_enter(ldev, &idx);
	if (ret)
		return ret;
	*val = llmdev_rd32(ldev, reg);
	llmdev_exit(ldev, idx);
	return *val == ~0u ? -ENODEV : 0;	/* surprise removal */
}

/* @reading >= @limit, both read now */
static int llmdev_hwmon_alarm(struct llmdev_device *ldev, u32 reading,
			      u32 limit, long *val)
{
	long r, l;
	int ret;

	ret = llmdev_hwmon_rd(ldev, reading, &r);
	if (!ret)
		ret = llmdev_hwmon_rd(ldev, limit, &l);
	if (!ret)
		*val = r >= l;
	return ret;
}

static int llmdev_hwmon_read(struct device *dev, enum hwmon_sensor_types type,
			     u32 attr, int channel, long *val)
{
	struct llmdev_device *ldev = dev_get_drvdata(dev);
	int ret;

	switch (type) {
	case hwmon_temp:
		switch (attr) {
		case hwmon_temp_input:
			return llmdev_hwmon_rd(ldev, LLMDEV_REG_TEMP_MC, val);
		case hwmon_temp_crit:
			return llmdev_hwmon_rd(ldev, LLMDEV_REG_TEMP_CRIT_MC, val);
		case hwmon_temp_crit_alarm:
			return llmdev_hwmon_alarm(ldev, LLMDEV_REG_TEMP_MC,
						  LLMDEV_REG_TEMP_CRIT_MC, val);
		}
		break;
	case hwmon_power:
		switch (attr) {
		case hwmon_power_input:
			ret = llmdev_hwmon_rd(ldev, LLMDEV_REG_POWER_MW, val);
			*val *= 1000;
			return ret;
		case hwmon_power_cap:
			ret = llmdev_hwmon_rd(ldev, LLMDEV_REG_POWER_CAP_MW, val);
			*val *= 1000;
			return ret;
		case hwmon_power_cap_alarm:
			return llmdev_hwmon_alarm(ldev, LLMDEV_REG_POWER_MW,
						  LLMDEV_REG_POWER_CAP_MW, val);
		}
		break;
	default:
		break;
	}
	return -EOPNOTSUPP;
}

static int llmdev_hwmon_read_string(struct device *dev,
				    enum hwmon_sensor_types type, u32 attr,
				    int channel, const char **str)
{
	if (type == hwmon_temp && attr == hwmon_temp_label) {
		*str = "die";
		return 0;
	}
	if (type == hwmon_power && attr == hwmon_power_label) {
		*str = "board";
		return 0;
	}
	return -EOPNOTSUPP;
}

static umode_t llmdev_hwmon_is_visible(const void *data,
				       enum hwmon_sensor_types type, u32 attr,
				       int channel)
{
	return 0444;
}

static const struct hwmon_channel_info *llmdev_hwmon_info[] = {
	HWMON_CHANNEL_INFO(temp, HWMON_T_INPUT | HWMON_T_CRIT |
			   HWMON_T_CRIT_ALARM | HWMON_T_LABEL),
	HWMON_CHANNEL_INFO(power, HWMON_P_INPUT | HWMON_P_CAP |
			   HWMON_P_CAP_ALARM | HWMON_P_LABEL),
	NULL
};

static const struct hwmon_ops llmdev_hwmon_ops = {
	.is_visible = llmdev_hwmon_is_visible,
	.read = llmdev_hwmon_read,
	.read_string = llmdev_hwmon_read_string,
};

static const struct hwmon_chip_info llmdev_hwmon_chip = {
	.ops = &llmdev_hwmon_ops,
	.info = llmdev_hwmon_info,
};

static void llmdev_hwmon_put(void *data)
{
	llmdev_put(data);
}

/**
 * llmdev_hwmon_init() - register the card's hwmon device
 * @ldev: the card
 *
 * Managed by the PCI device: unregistered at unbind, after remove. The
 * hwmon device holds a reference on the card until then, so a read racing
 * with remove finds the card (gone: -ENODEV), never freed memory.
 *
 * Return: 0, or a negative errno; without hwmon in the kernel, 0.
 */
int llmdev_hwmon_init(struct llmdev_device *ldev)
{
	struct device *dev = &ldev->pdev->dev;
	struct device *hwmon;
	int ret;

	if (!IS_REACHABLE(CONFIG_HWMON))
		return 0;
	llmdev_get(ldev);
	ret = devm_add_action_or_reset(dev, llmdev_hwmon_put, ldev);
	if (ret)
		return ret;
	hwmon = devm_hwmon_device_register_with_info(dev, LLMDEV_NAME, ldev,
						     &llmdev_hwmon_chip, NULL);
	return PTR_ERR_OR_ZERO(hwmon);
}
