// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: peer links. The ports train on their own once both ends are
 * enabled; the driver enables them, reports their state (ioctl, sysfs,
 * generic netlink) and forwards the card's link events to netlink.
 */
#include <linux/capability.h>
#include <linux/device.h>
#include <linux/module.h>

#include "llmdev_drv.h"
#include "../uapi/llmdev_netlink.h"

static bool llmdev_links_enable = true;
module_param_named(links_enable, llmdev_links_enable, bool, 0444);
MODULE_PARM_DESC(links_enable, "Enable every peer-link port when binding to a card and after a reset (default: true)");

static u32 llmdev_link_reg(unsigned int port, u32 reg)
{
	return LLMDEV_LINK_BASE(port) + reg;
}

static u32 llmdev_link_rd32(struct llmdev_device *ldev, unsigned int port,
			    u32 reg)
{
	return llmdev_rd32(ldev, llmdev_link_reg(port, reg));
}

static u64 llmdev_link_rd64(struct llmdev_device *ldev, unsigned int port,
			    u32 reg)
{
	return llmdev_rd64(ldev, llmdev_link_reg(port, reg));
}

/*
 * Called at probe, once the card is enabled, and after a reset (which
 * disables the ports). Stale events are cleared before the ports are
 * enabled, so the events of their training are not lost.
 */
void llmdev_link_hw_start(struct llmdev_device *ldev)
{
	unsigned int p;
	u32 reg;

	mutex_lock(&ldev->link_lock);
	llmdev_wr32(ldev, LLMDEV_REG_LINK_EVENT,
		    llmdev_rd32(ldev, LLMDEV_REG_LINK_EVENT));
	for (p = 0; p < LLMDEV_NUM_LINK_PORTS && llmdev_links_enable; p++) {
		reg = llmdev_link_reg(p, LLMDEV_LINK_CTRL);
		llmdev_wr32(ldev, reg,
			    llmdev_rd32(ldev, reg) | LLMDEV_LINK_CTRL_ENABLE);
	}
	mutex_unlock(&ldev->link_lock);
}

/*
 * After a reset the card's enabled ports train again (12.1): wait for
 * them, up to 100 trainings, before the card is LIVE again, so that the
 * collectives queued or submitted meanwhile do not find them TRAINING
 * (LINK_DOWN, -ENOLINK). Both ends of a link turn UP at once, so the
 * other cards' ports are ready too. A port still training then waits for
 * an other end that is disabled or being reset itself. The caller owns
 * the card (llmdev_restart()): no llmdev_enter().
 */
void llmdev_link_wait_trained(struct llmdev_device *ldev)
{
	unsigned long end = jiffies +
		nsecs_to_jiffies(100ULL * LLMDEV_LINK_TRAIN_NS) + 1;
	bool training;
	unsigned int p;
	u32 status;

	do {
		training = false;
		for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
			status = llmdev_link_rd32(ldev, p, LLMDEV_LINK_STATUS);
			if (status == ~0u)
				return;	/* gone */
			training |= LLMDEV_LINK_STATE(status) ==
				    LLMDEV_LINK_STATE_TRAINING;
		}
		if (!training)
			return;
		usleep_range(200, 500);
	} while (time_before(jiffies, end));
}

static int llmdev_link_read(struct llmdev_device *ldev, unsigned int port,
			    struct llmdev_link_info *info, bool wait)
{
	struct llmdev_device *peer;
	u32 status, ctrl;
	int idx, ret;

	if (port >= LLMDEV_NUM_LINK_PORTS)
		return -EINVAL;
	if (wait) {
		ret = llmdev_hw_enter(ldev, &idx);
		if (ret)
			return ret;
	} else if (!llmdev_enter(ldev, &idx)) {
		return llmdev_gone(ldev) ?: -EAGAIN;
	}
	ctrl = llmdev_link_rd32(ldev, port, LLMDEV_LINK_CTRL);
	status = llmdev_link_rd32(ldev, port, LLMDEV_LINK_STATUS);
	switch (LLMDEV_LINK_STATE(status)) {
	case LLMDEV_LINK_STATE_UP:
		info->state = LLMDEV_LINK_UP;
		break;
	case LLMDEV_LINK_STATE_TRAINING:
		info->state = LLMDEV_LINK_TRAINING;
		break;
	default:
		info->state = LLMDEV_LINK_DOWN;
		break;
	}
	info->link_flags = 0;
	if (ctrl & LLMDEV_LINK_CTRL_ENABLE)
		info->link_flags |= LLMDEV_LINK_ENABLED;
	if (status & LLMDEV_LINK_STATUS_CABLED)
		info->link_flags |= LLMDEV_LINK_CABLED;
	if (info->state == LLMDEV_LINK_UP) {
		info->peer_serial = llmdev_link_rd64(ldev, port,
						     LLMDEV_LINK_PEER_SERIAL);
		info->peer_port = llmdev_link_rd32(ldev, port,
						   LLMDEV_LINK_PEER_PORT);
	} else {
		info->peer_serial = 0;
		info->peer_port = ~0u;
	}
	info->down_count = llmdev_link_rd32(ldev, port, LLMDEV_LINK_DOWN_COUNT);
	info->tx_bytes = llmdev_link_rd64(ldev, port, LLMDEV_LINK_TX_BYTES);
	info->rx_bytes = llmdev_link_rd64(ldev, port, LLMDEV_LINK_RX_BYTES);
	info->tx_errors = llmdev_link_rd64(ldev, port, LLMDEV_LINK_TX_ERRORS);
	info->rx_errors = llmdev_link_rd64(ldev, port, LLMDEV_LINK_RX_ERRORS);
	llmdev_exit(ldev, idx);

	info->peer_minor = LLMDEV_NO_CARD;
	if (info->state == LLMDEV_LINK_UP) {
		peer = llmdev_find_by_serial(info->peer_serial);
		if (peer) {
			info->peer_minor = peer->minor;
			llmdev_put(peer);
		}
	}
	return 0;
}

/**
 * llmdev_link_get() - read the state of one port
 * @ldev: the card
 * @port: the port
 * @info: filled, except for its size, flags and port
 *
 * Waits while the card is being reset.
 *
 * Return: 0; -EINVAL if @port is out of range; -ENODEV if the card is gone;
 * -EIO if it is dead; -EINTR.
 */
int llmdev_link_get(struct llmdev_device *ldev, unsigned int port,
		    struct llmdev_link_info *info)
{
	return llmdev_link_read(ldev, port, info, true);
}

/**
 * llmdev_link_get_now() - llmdev_link_get() for the event handler
 * @ldev: the card
 * @port: the port
 * @info: filled, except for its size, flags and port
 *
 * Return: as llmdev_link_get(), and -EAGAIN while the card is being reset
 * (it never waits: a reset waits for the event handler).
 */
int llmdev_link_get_now(struct llmdev_device *ldev, unsigned int port,
			struct llmdev_link_info *info)
{
	return llmdev_link_read(ldev, port, info, false);
}

/**
 * llmdev_link_set() - enable or disable a port
 * @ldev: the card
 * @port: the port
 * @enable: enable it (it trains when its peer is enabled too), or take it down
 *
 * The caller checks the caller's privileges.
 *
 * Waits while the card is being reset.
 *
 * Return: 0; -EINVAL if @port is out of range; -ENODEV if the card is gone;
 * -EIO if it is dead; -EINTR.
 */
int llmdev_link_set(struct llmdev_device *ldev, unsigned int port, bool enable)
{
	u32 reg = llmdev_link_reg(port, LLMDEV_LINK_CTRL);
	u32 ctrl;
	int idx, ret;

	if (port >= LLMDEV_NUM_LINK_PORTS)
		return -EINVAL;
	ret = llmdev_hw_enter(ldev, &idx);
	if (ret)
		return ret;
	mutex_lock(&ldev->link_lock);
	ctrl = llmdev_rd32(ldev, reg);
	if (enable)
		ctrl |= LLMDEV_LINK_CTRL_ENABLE;
	else
		ctrl &= ~LLMDEV_LINK_CTRL_ENABLE;
	llmdev_wr32(ldev, reg, ctrl);
	mutex_unlock(&ldev->link_lock);
	llmdev_exit(ldev, idx);
	return 0;
}

/*
 * Return: the port is up; false if it is not, or the card is gone or dead.
 * Waits while the card is being reset.
 */
bool llmdev_link_is_up(struct llmdev_device *ldev, unsigned int port)
{
	u32 status;
	int idx;

	if (port >= LLMDEV_NUM_LINK_PORTS || llmdev_hw_enter(ldev, &idx))
		return false;
	status = llmdev_link_rd32(ldev, port, LLMDEV_LINK_STATUS);
	llmdev_exit(ldev, idx);
	return LLMDEV_LINK_STATE(status) == LLMDEV_LINK_STATE_UP;
}

int llmdev_link_ioctl_info(struct llmdev_ucmd *ucmd)
{
	struct llmdev_link_info *info = ucmd->cmd;

	if (info->flags || info->port >= LLMDEV_NUM_LINK_PORTS)
		return -EINVAL;
	return llmdev_link_get(ucmd->lf->ldev, info->port, info);
}

int llmdev_link_ioctl_set(struct llmdev_ucmd *ucmd)
{
	struct llmdev_link_set *set = ucmd->cmd;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (set->flags || set->port >= LLMDEV_NUM_LINK_PORTS || set->enable > 1)
		return -EINVAL;
	return llmdev_link_set(ucmd->lf->ldev, set->port, set->enable);
}

static void llmdev_link_log_state(struct llmdev_device *ldev,
				  unsigned int port)
{
	struct llmdev_link_info info;

	if (llmdev_link_get_now(ldev, port, &info))
		return;
	if (info.state == LLMDEV_LINK_UP)
		dev_info(&ldev->dev, "link%u up, peer %016llx port %u\n",
			 port, info.peer_serial, info.peer_port);
	else if (info.state == LLMDEV_LINK_DOWN)
		dev_info(&ldev->dev, "link%u down\n", port);
	else
		dev_dbg(&ldev->dev, "link%u training\n", port);
}

/*
 * Called from the threaded event interrupt handler: acknowledge the link
 * events and pass them on.
 */
void llmdev_link_handle_event(struct llmdev_device *ldev)
{
	unsigned int p;
	u32 events;
	int idx;

	/*
	 * Held over the whole: llmdev_remove() frees the devlink instance
	 * after its synchronize_srcu(), and before the interrupts go
	 */
	if (!llmdev_enter(ldev, &idx))
		return;
	events = llmdev_rd32(ldev, LLMDEV_REG_LINK_EVENT);
	if (events == ~0u)
		events = 0;	/* surprise removal */
	if (events)
		llmdev_wr32(ldev, LLMDEV_REG_LINK_EVENT, events);

	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
		if (events & LLMDEV_LINK_EVENT_STATE(p)) {
			llmdev_link_log_state(ldev, p);
			llmdev_nl_link_event(ldev, p, LLMDEV_GENL_CMD_LINK_EVENT);
		}
		if (events & LLMDEV_LINK_EVENT_ERROR(p)) {
			dev_warn_ratelimited(&ldev->dev, "link%u counted errors\n",
					     p);
			llmdev_nl_link_event(ldev, p, LLMDEV_GENL_CMD_LINK_ERROR);
			llmdev_devlink_link_error(ldev, p);
		}
	}
	llmdev_exit(ldev, idx);
}

/* ---- sysfs: /sys/class/llmdev/llmdevN/linkP/ ------------------------------ */

enum llmdev_link_field {
	LLMDEV_LINK_F_STATE,
	LLMDEV_LINK_F_ENABLED,
	LLMDEV_LINK_F_PEER_SERIAL,
	LLMDEV_LINK_F_PEER_PORT,
	LLMDEV_LINK_F_PEER_CARD,
	LLMDEV_LINK_F_DOWN_COUNT,
	LLMDEV_LINK_F_TX_BYTES,
	LLMDEV_LINK_F_RX_BYTES,
	LLMDEV_LINK_F_TX_ERRORS,
	LLMDEV_LINK_F_RX_ERRORS,
	LLMDEV_LINK_F_NUM
};

/**
 * struct llmdev_link_attr - a sysfs file of a port
 * @dattr: the attribute
 * @field: what the file shows, enum llmdev_link_field; also its index in
 *         llmdev_link_files.attrs, which leads to the port
 */
struct llmdev_link_attr {
	struct device_attribute dattr;
	unsigned int field;
};

/**
 * struct llmdev_link_files - the sysfs files of one port
 * @port: the port
 * @attrs: the files, indexed by field
 * @ptrs: pointers to @attrs, NULL-terminated, for the attribute group
 */
struct llmdev_link_files {
	unsigned int port;
	struct llmdev_link_attr attrs[LLMDEV_LINK_F_NUM];
	struct attribute *ptrs[LLMDEV_LINK_F_NUM + 1];
};

static const char * const llmdev_link_state_names[] = {
	[LLMDEV_LINK_DOWN] = "down",
	[LLMDEV_LINK_TRAINING] = "training",
	[LLMDEV_LINK_UP] = "up",
};

static ssize_t llmdev_link_show(struct device *dev,
				struct device_attribute *attr, char *buf)
{
	const struct llmdev_link_attr *la =
		container_of(attr, struct llmdev_link_attr, dattr);
	const struct llmdev_link_files *files =
		container_of(la - la->field, struct llmdev_link_files, attrs[0]);
	struct llmdev_link_info info;
	int ret;

	ret = llmdev_link_get(to_llmdev(dev), files->port, &info);
	if (ret)
		return ret;
	switch (la->field) {
	case LLMDEV_LINK_F_STATE:
		return sysfs_emit(buf, "%s\n",
				  llmdev_link_state_names[info.state]);
	case LLMDEV_LINK_F_ENABLED:
		return sysfs_emit(buf, "%u\n",
				  !!(info.link_flags & LLMDEV_LINK_ENABLED));
	case LLMDEV_LINK_F_PEER_SERIAL:
		return sysfs_emit(buf, "0x%016llx\n", info.peer_serial);
	case LLMDEV_LINK_F_PEER_PORT:
		if (info.peer_port == ~0u)
			return sysfs_emit(buf, "-1\n");
		return sysfs_emit(buf, "%u\n", info.peer_port);
	case LLMDEV_LINK_F_PEER_CARD:
		if (info.peer_minor == LLMDEV_NO_CARD)
			return sysfs_emit(buf, "\n");
		return sysfs_emit(buf, LLMDEV_NAME "%d\n", info.peer_minor);
	case LLMDEV_LINK_F_DOWN_COUNT:
		return sysfs_emit(buf, "%u\n", info.down_count);
	case LLMDEV_LINK_F_TX_BYTES:
		return sysfs_emit(buf, "%llu\n", info.tx_bytes);
	case LLMDEV_LINK_F_RX_BYTES:
		return sysfs_emit(buf, "%llu\n", info.rx_bytes);
	case LLMDEV_LINK_F_TX_ERRORS:
		return sysfs_emit(buf, "%llu\n", info.tx_errors);
	case LLMDEV_LINK_F_RX_ERRORS:
		return sysfs_emit(buf, "%llu\n", info.rx_errors);
	}
	return -EINVAL;
}

#define LLMDEV_LINK_ATTR(_name, _field)					\
	[LLMDEV_LINK_F_##_field] = {					\
		.dattr = __ATTR(_name, 0444, llmdev_link_show, NULL),	\
		.field = LLMDEV_LINK_F_##_field,			\
	}

#define LLMDEV_LINK_PTR(_files, _field)					\
	[LLMDEV_LINK_F_##_field] = &(_files).attrs[LLMDEV_LINK_F_##_field].dattr.attr

#define LLMDEV_LINK_FILES(_port)					\
static struct llmdev_link_files llmdev_link##_port = {			\
	.port = _port,							\
	.attrs = {							\
		LLMDEV_LINK_ATTR(state, STATE),				\
		LLMDEV_LINK_ATTR(enabled, ENABLED),			\
		LLMDEV_LINK_ATTR(peer_serial, PEER_SERIAL),		\
		LLMDEV_LINK_ATTR(peer_port, PEER_PORT),			\
		LLMDEV_LINK_ATTR(peer_card, PEER_CARD),			\
		LLMDEV_LINK_ATTR(down_count, DOWN_COUNT),		\
		LLMDEV_LINK_ATTR(tx_bytes, TX_BYTES),			\
		LLMDEV_LINK_ATTR(rx_bytes, RX_BYTES),			\
		LLMDEV_LINK_ATTR(tx_errors, TX_ERRORS),			\
		LLMDEV_LINK_ATTR(rx_errors, RX_ERRORS),			\
	},								\
	.ptrs = {							\
		LLMDEV_LINK_PTR(llmdev_link##_port, STATE),		\
		LLMDEV_LINK_PTR(llmdev_link##_port, ENABLED),		\
		LLMDEV_LINK_PTR(llmdev_link##_port, PEER_SERIAL),	\
		LLMDEV_LINK_PTR(llmdev_link##_port, PEER_PORT),		\
		LLMDEV_LINK_PTR(llmdev_link##_port, PEER_CARD),		\
		LLMDEV_LINK_PTR(llmdev_link##_port, DOWN_COUNT),	\
		LLMDEV_LINK_PTR(llmdev_link##_port, TX_BYTES),		\
		LLMDEV_LINK_PTR(llmdev_link##_port, RX_BYTES),		\
		LLMDEV_LINK_PTR(llmdev_link##_port, TX_ERRORS),		\
		LLMDEV_LINK_PTR(llmdev_link##_port, RX_ERRORS),		\
	},								\
}

LLMDEV_LINK_FILES(0);
LLMDEV_LINK_FILES(1);
LLMDEV_LINK_FILES(2);
LLMDEV_LINK_FILES(3);

const struct attribute_group llmdev_link_attr_groups[LLMDEV_NUM_LINK_PORTS] = {
	{ .name = "link0", .attrs = llmdev_link0.ptrs },
	{ .name = "link1", .attrs = llmdev_link1.ptrs },
	{ .name = "link2", .attrs = llmdev_link2.ptrs },
	{ .name = "link3", .attrs = llmdev_link3.ptrs },
};

static_assert(LLMDEV_NUM_LINK_PORTS == 4, "one LLMDEV_LINK_FILES() per port");
