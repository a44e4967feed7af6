// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: devlink. `devlink dev info` shows the card's serial number, its
 * spec version and the driver's version; two health reporters tell of
 * trouble the driver handles itself:
 *
 *   dma   a DMA ring that stopped making progress (dma_timeout_ms) or that
 *         the card halted; the driver has reset the ring and failed its
 *         transfers by the time of the report. The dump holds the ring's
 *         registers as they were when the driver found it stuck.
 *         Recover: resets the card if it is dead (as LLMDEV_RESET does);
 *         nothing to do on a live card, whose ring is already reset.
 *   link  a peer-link port that counted CRC errors (LINK_ERROR event).
 *         The dump holds the port's state and counters at the report.
 *         Recover: retrains every enabled, cabled port that is not up.
 *
 * Reports come from a work item: the paths that find the trouble (the
 * ring watchdog, the error interrupt's thread, the event handler) only
 * note it. Without CONFIG_NET_DEVLINK in the kernel all of it compiles to
 * nothing.
 */
#include <linux/device.h>
#include <linux/workqueue.h>

#include "llmdev_drv.h"

#if IS_ENABLED(CONFIG_NET_DEVLINK)
#include <net/devlink.h>

/**
 * struct llmdev_dma_hang - what the driver saw of a stuck ring
 * @ring: hardware ring number
 * @status: errno its transfers failed with (-ETIMEDOUT, -EIO)
 * @head: LLMDEV_RING_HEAD
 * @tail: LLMDEV_RING_TAIL
 * @completed: LLMDEV_RING_COMPLETED
 * @hw_status: LLMDEV_RING_STATUS
 * @err_code: LLMDEV_RING_ERR_CODE
 */
struct llmdev_dma_hang {
	unsigned int ring;
	int status;
	u32 head;
	u32 tail;
	u32 completed;
	u32 hw_status;
	u32 err_code;
};

/**
 * struct llmdev_devlink - devlink's private part of a card
 * @ldev: the card
 * @dma: the "dma" health reporter
 * @link: the "link" health reporter
 * @lock: protects @hang, @hang_pending, @link_pending and @closed
 * @hang: per ring, the last hang not yet reported
 * @hang_pending: rings with a hang to report
 * @link_pending: ports with errors to report
 * @closed: the card is going: note nothing more
 * @work: reports what is pending
 */
struct llmdev_devlink {
	struct llmdev_device *ldev;
	struct devlink_health_reporter *dma;
	struct devlink_health_reporter *link;
	spinlock_t lock;		/* protects the pending reports, closed */
	struct llmdev_dma_hang hang[LLMDEV_NUM_RINGS];
	unsigned long hang_pending;
	unsigned long link_pending;
	bool closed;
	struct work_struct work;
};

static struct llmdev_devlink *llmdev_dl(struct llmdev_device *ldev)
{
	return ldev->devlink ? devlink_priv(ldev->devlink) : NULL;
}

static int llmdev_devlink_info_get(struct devlink *devlink,
				   struct devlink_info_req *req,
				   struct netlink_ext_ack *extack)
{
	struct llmdev_device *ldev = ((struct llmdev_devlink *)
				      devlink_priv(devlink))->ldev;
	char buf[32];
	int ret;

	ret = llmdev_devlink_info_driver_name_put(req, LLMDEV_NAME);
	if (ret)
		return ret;
	snprintf(buf, sizeof(buf), "%016llx", ldev->serial);
	ret = devlink_info_serial_number_put(req, buf);
	if (ret)
		return ret;
	snprintf(buf, sizeof(buf), "%u.%u", ldev->spec_version >> 16,
		 ldev->spec_version & 0xffff);
	ret = devlink_info_version_fixed_put(req, "spec", buf);
	if (ret)
		return ret;
	snprintf(buf, sizeof(buf), "%04x:%04x", ldev->pdev->vendor,
		 ldev->pdev->device);
	ret = devlink_info_version_fixed_put(req,
					     DEVLINK_INFO_VERSION_GENERIC_ASIC_ID,
					     buf);
	if (ret)
		return ret;
	return devlink_info_version_running_put(req, "driver",
						LLMDEV_DRIVER_VERSION);
}

static const struct devlink_ops llmdev_devlink_ops = {
	.info_get = llmdev_devlink_info_get,
};

/* ---- the dma reporter -------------------------------------------------------- */

/*
 * The devlink_fmsg_*() calls return nothing (6.7): an error is kept in the
 * message and reported by the core after the callback.
 */
static void llmdev_fmsg_hang(struct devlink_fmsg *fmsg,
			     const struct llmdev_dma_hang *h)
{
	devlink_fmsg_u32_pair_put(fmsg, "ring", h->ring);
	devlink_fmsg_string_pair_put(fmsg, "direction",
				     h->ring < LLMDEV_NUM_H2C_RINGS ? "h2c" : "c2h");
	devlink_fmsg_string_pair_put(fmsg, "cause",
				     h->status == -ETIMEDOUT ?
				     "no progress" : "halted by the card");
	devlink_fmsg_u32_pair_put(fmsg, "head", h->head);
	devlink_fmsg_u32_pair_put(fmsg, "tail", h->tail);
	devlink_fmsg_u32_pair_put(fmsg, "completed", h->completed);
	devlink_fmsg_u32_pair_put(fmsg, "status", h->hw_status);
	devlink_fmsg_u32_pair_put(fmsg, "err_code", h->err_code);
}

/* The ring's registers now; the caller is in a hardware section. */
static void llmdev_ring_snapshot(struct llmdev_device *ldev, unsigned int ring,
				 struct llmdev_dma_hang *h)
{
	u32 base = LLMDEV_RING_BASE(ring);

	h->ring = ring;
	h->head = llmdev_rd32(ldev, base + LLMDEV_RING_HEAD);
	h->tail = llmdev_rd32(ldev, base + LLMDEV_RING_TAIL);
	h->completed = llmdev_rd32(ldev, base + LLMDEV_RING_COMPLETED);
	h->hw_status = llmdev_rd32(ldev, base + LLMDEV_RING_STATUS);
	h->err_code = llmdev_rd32(ldev, base + LLMDEV_RING_ERR_CODE);
}

/* Every ring as it is now. */
static int llmdev_fmsg_rings(struct llmdev_device *ldev,
			     struct devlink_fmsg *fmsg)
{
	struct llmdev_dma_hang h[LLMDEV_NUM_RINGS] = {};
	unsigned int i;
	int idx, ret;

	ret = llmdev_hw_enter(ldev, &idx);
	if (ret)
		return ret;
	for (i = 0; i < LLMDEV_NUM_RINGS; i++)
		llmdev_ring_snapshot(ldev, i, &h[i]);
	llmdev_exit(ldev, idx);

	devlink_fmsg_u32_pair_put(fmsg, "dma_timeout_ms",
				  READ_ONCE(llmdev_dma_timeout_ms));
	devlink_fmsg_arr_pair_nest_start(fmsg, "rings");
	for (i = 0; i < LLMDEV_NUM_RINGS; i++) {
		devlink_fmsg_obj_nest_start(fmsg);
		devlink_fmsg_u32_pair_put(fmsg, "ring", i);
		devlink_fmsg_string_pair_put(fmsg, "direction",
					     i < LLMDEV_NUM_H2C_RINGS ? "h2c" : "c2h");
		devlink_fmsg_u32_pair_put(fmsg, "head", h[i].head);
		devlink_fmsg_u32_pair_put(fmsg, "tail", h[i].tail);
		devlink_fmsg_u32_pair_put(fmsg, "completed", h[i].completed);
		devlink_fmsg_u32_pair_put(fmsg, "status", h[i].hw_status);
		devlink_fmsg_obj_nest_end(fmsg);
	}
	devlink_fmsg_arr_pair_nest_end(fmsg);
	return 0;
}

static int llmdev_dma_diagnose(struct devlink_health_reporter *reporter,
			       struct devlink_fmsg *fmsg,
			       struct netlink_ext_ack *extack)
{
	struct llmdev_devlink *dl = devlink_health_reporter_priv(reporter);

	return llmdev_fmsg_rings(dl->ldev, fmsg);
}

static int llmdev_dma_dump(struct devlink_health_reporter *reporter,
			   struct devlink_fmsg *fmsg, void *priv_ctx,
			   struct netlink_ext_ack *extack)
{
	struct llmdev_devlink *dl = devlink_health_reporter_priv(reporter);

	if (priv_ctx) {
		llmdev_fmsg_hang(fmsg, priv_ctx);
		return 0;
	}
	return llmdev_fmsg_rings(dl->ldev, fmsg);
}

/*
 * A recover asked for from userspace (no @priv_ctx: the devlink core's
 * "health reporter recover") resets the card or retrains its links: it
 * needs CAP_SYS_ADMIN, as LLMDEV_RESET and a link's enable do, beyond the
 * CAP_NET_ADMIN devlink itself asks for. An automatic one, after the
 * driver's own report, runs in a kernel thread.
 */
static int llmdev_recover_allowed(void *priv_ctx, struct netlink_ext_ack *extack)
{
	if (priv_ctx || capable(CAP_SYS_ADMIN))
		return 0;
	NL_SET_ERR_MSG_MOD(extack, "recovering the card needs CAP_SYS_ADMIN");
	return -EPERM;
}

/* A live card has its ring reset already; a dead one is reset. */
static int llmdev_recover_card(struct llmdev_device *ldev,
			       struct netlink_ext_ack *extack)
{
	int ret = llmdev_gone(ldev);

	if (ret != -EIO)
		return ret;
	/* not pci_reset_function(): remove holds the device lock and waits
	 * for this operation in devlink_unregister()
	 */
	ret = pci_try_reset_function(ldev->pdev);
	if (!ret)
		ret = llmdev_gone(ldev);
	if (ret)
		NL_SET_ERR_MSG_MOD(extack, "the card did not come back from a reset");
	return ret;
}

static int llmdev_dma_recover(struct devlink_health_reporter *reporter,
			      void *priv_ctx, struct netlink_ext_ack *extack)
{
	struct llmdev_devlink *dl = devlink_health_reporter_priv(reporter);
	int ret = llmdev_recover_allowed(priv_ctx, extack);

	return ret ?: llmdev_recover_card(dl->ldev, extack);
}

static const struct devlink_health_reporter_ops llmdev_dma_reporter_ops = {
	.name = "dma",
	.diagnose = llmdev_dma_diagnose,
	.dump = llmdev_dma_dump,
	.recover = llmdev_dma_recover,
};

/* ---- the link reporter ------------------------------------------------------- */

static void llmdev_fmsg_port(struct devlink_fmsg *fmsg, unsigned int port,
			     const struct llmdev_link_info *li)
{
	static const char * const states[] = { "down", "training", "up" };

	devlink_fmsg_u32_pair_put(fmsg, "port", port);
	devlink_fmsg_string_pair_put(fmsg, "state",
				     li->state < ARRAY_SIZE(states) ?
				     states[li->state] : "unknown");
	devlink_fmsg_bool_pair_put(fmsg, "enabled",
				   li->link_flags & LLMDEV_LINK_ENABLED);
	devlink_fmsg_bool_pair_put(fmsg, "cabled",
				   li->link_flags & LLMDEV_LINK_CABLED);
	devlink_fmsg_u64_pair_put(fmsg, "peer_serial", li->peer_serial);
	devlink_fmsg_u32_pair_put(fmsg, "down_count", li->down_count);
	devlink_fmsg_u64_pair_put(fmsg, "tx_errors", li->tx_errors);
	devlink_fmsg_u64_pair_put(fmsg, "rx_errors", li->rx_errors);
}

/* the ports in @mask (all: ~0UL) as they are now */
static int llmdev_fmsg_ports(struct llmdev_device *ldev,
			     struct devlink_fmsg *fmsg, unsigned long mask)
{
	struct llmdev_link_info li;
	unsigned int p;
	int ret = 0;

	devlink_fmsg_arr_pair_nest_start(fmsg, "ports");
	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
		if (!(mask & BIT(p)))
			continue;
		ret = llmdev_link_get(ldev, p, &li);
		if (ret)
			break;
		devlink_fmsg_obj_nest_start(fmsg);
		llmdev_fmsg_port(fmsg, p, &li);
		devlink_fmsg_obj_nest_end(fmsg);
	}
	devlink_fmsg_arr_pair_nest_end(fmsg);
	return ret;
}

static int llmdev_link_diagnose(struct devlink_health_reporter *reporter,
				struct devlink_fmsg *fmsg,
				struct netlink_ext_ack *extack)
{
	struct llmdev_devlink *dl = devlink_health_reporter_priv(reporter);

	return llmdev_fmsg_ports(dl->ldev, fmsg, ~0UL);
}

static int llmdev_link_dump(struct devlink_health_reporter *reporter,
			    struct devlink_fmsg *fmsg, void *priv_ctx,
			    struct netlink_ext_ack *extack)
{
	struct llmdev_devlink *dl = devlink_health_reporter_priv(reporter);

	return llmdev_fmsg_ports(dl->ldev, fmsg,
				 priv_ctx ? *(unsigned long *)priv_ctx : ~0UL);
}

static int llmdev_link_recover(struct devlink_health_reporter *reporter,
			       void *priv_ctx, struct netlink_ext_ack *extack)
{
	struct llmdev_devlink *dl = devlink_health_reporter_priv(reporter);
	struct llmdev_device *ldev = dl->ldev;
	struct llmdev_link_info li;
	unsigned int p;
	int ret;

	ret = llmdev_recover_allowed(priv_ctx, extack);
	if (ret)
		return ret;
	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
		ret = llmdev_link_get(ldev, p, &li);
		if (ret)
			return ret;
		if (li.state == LLMDEV_LINK_UP ||
		    (li.link_flags & (LLMDEV_LINK_ENABLED | LLMDEV_LINK_CABLED)) !=
		    (LLMDEV_LINK_ENABLED | LLMDEV_LINK_CABLED))
			continue;
		ret = llmdev_link_set(ldev, p, false);
		if (!ret)
			ret = llmdev_link_set(ldev, p, true);
		if (ret) {
			NL_SET_ERR_MSG_MOD(extack, "retraining a port failed");
			return ret;
		}
	}
	return 0;
}

static const struct devlink_health_reporter_ops llmdev_link_reporter_ops = {
	.name = "link",
	.diagnose = llmdev_link_diagnose,
	.dump = llmdev_link_dump,
	.recover = llmdev_link_recover,
};

/* ---- reports ------------------------------------------------------------------- */

static void llmdev_devlink_work(struct work_struct *work)
{
	struct llmdev_devlink *dl = container_of(work, struct llmdev_devlink,
						 work);
	struct llmdev_dma_hang hang;
	unsigned long rings, ports;
	unsigned int r, p;
	char msg[64];

	spin_lock(&dl->lock);
	rings = dl->hang_pending;
	ports = dl->link_pending;
	dl->hang_pending = 0;
	dl->link_pending = 0;
	spin_unlock(&dl->lock);

	for_each_set_bit(r, &rings, LLMDEV_NUM_RINGS) {
		spin_lock(&dl->lock);
		hang = dl->hang[r];
		spin_unlock(&dl->lock);
		snprintf(msg, sizeof(msg), "DMA ring %u %s", r,
			 hang.status == -ETIMEDOUT ? "made no progress" :
			 "was halted by the card");
		devlink_health_report(dl->dma, msg, &hang);
	}
	for_each_set_bit(p, &ports, LLMDEV_NUM_LINK_PORTS) {
		unsigned long mask = BIT(p);

		snprintf(msg, sizeof(msg), "link%u counted errors", p);
		devlink_health_report(dl->link, msg, &mask);
	}
}

/**
 * llmdev_devlink_dma_hang() - note a stuck or halted ring for the reporter
 * @ldev: the card
 * @ring: hardware ring number
 * @status: the errno its transfers fail with
 *
 * Called in a hardware section (llmdev_enter()), before the ring is reset;
 * does not sleep.
 */
void llmdev_devlink_dma_hang(struct llmdev_device *ldev, unsigned int ring,
			     int status)
{
	struct llmdev_devlink *dl = llmdev_dl(ldev);
	struct llmdev_dma_hang h;

	if (!dl || ring >= LLMDEV_NUM_RINGS)
		return;
	llmdev_ring_snapshot(ldev, ring, &h);
	h.status = status;
	spin_lock(&dl->lock);
	if (!dl->closed) {
		dl->hang[ring] = h;
		dl->hang_pending |= BIT(ring);
		schedule_work(&dl->work);
	}
	spin_unlock(&dl->lock);
}

/**
 * llmdev_devlink_link_error() - note errors counted on a port
 * @ldev: the card
 * @port: the port
 *
 * Does not sleep.
 */
void llmdev_devlink_link_error(struct llmdev_device *ldev, unsigned int port)
{
	struct llmdev_devlink *dl = llmdev_dl(ldev);

	if (!dl || port >= LLMDEV_NUM_LINK_PORTS)
		return;
	spin_lock(&dl->lock);
	if (!dl->closed) {
		dl->link_pending |= BIT(port);
		schedule_work(&dl->work);
	}
	spin_unlock(&dl->lock);
}

/* ---- setup and teardown ---------------------------------------------------------- */

/**
 * llmdev_devlink_init() - the card's devlink instance and health reporters
 * @ldev: the card
 *
 * Return: 0 or a negative errno.
 */
int llmdev_devlink_init(struct llmdev_device *ldev)
{
	struct llmdev_devlink *dl;
	struct devlink *devlink;
	int ret;

	devlink = llmdev_devlink_alloc(&llmdev_devlink_ops, sizeof(*dl),
				       &ldev->pdev->dev);
	if (!devlink)
		return -ENOMEM;
	dl = devlink_priv(devlink);
	dl->ldev = ldev;
	spin_lock_init(&dl->lock);
	INIT_WORK(&dl->work, llmdev_devlink_work);
	dl->dma = llmdev_health_reporter_create(devlink,
						&llmdev_dma_reporter_ops, dl);
	if (IS_ERR(dl->dma)) {
		ret = PTR_ERR(dl->dma);
		goto err_free;
	}
	dl->link = llmdev_health_reporter_create(devlink,
						 &llmdev_link_reporter_ops, dl);
	if (IS_ERR(dl->link)) {
		ret = PTR_ERR(dl->link);
		goto err_dma;
	}
	llmdev_devlink_register(devlink, &ldev->pdev->dev);
	ldev->devlink = devlink;
	return 0;

err_dma:
	devlink_health_reporter_destroy(dl->dma);
err_free:
	devlink_free(devlink);
	return ret;
}

void llmdev_devlink_fini(struct llmdev_device *ldev)
{
	struct devlink *devlink = ldev->devlink;
	struct llmdev_devlink *dl;

	if (!devlink)
		return;
	dl = devlink_priv(devlink);
	spin_lock(&dl->lock);
	dl->closed = true;
	spin_unlock(&dl->lock);
	cancel_work_sync(&dl->work);
	devlink_unregister(devlink);
	ldev->devlink = NULL;
	devlink_health_reporter_destroy(dl->link);
	devlink_health_reporter_destroy(dl->dma);
	devlink_free(devlink);
}

#else /* !CONFIG_NET_DEVLINK */

int llmdev_devlink_init(struct llmdev_device *ldev)
{
	return 0;
}

void llmdev_devlink_fini(struct llmdev_device *ldev)
{
}

void llmdev_devlink_dma_hang(struct llmdev_device *ldev, unsigned int ring,
			     int status)
{
}

void llmdev_devlink_link_error(struct llmdev_device *ldev, unsigned int port)
{
}

#endif /* CONFIG_NET_DEVLINK */
