// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: reset and recovery.
 *
 * Three ways lead here: a function-level reset through the PCI core
 * (LLMDEV_RESET, or writing /sys/bus/pci/devices/.../reset), which calls
 * reset_prepare and reset_done around the reset; and recovery from a PCIe
 * error reported by AER, which calls error_detected, then (after the bus
 * reset) slot_reset and resume. Either way the driver:
 *
 *  1. quiesces: the card's state becomes RESETTING, so hardware sections
 *     that start now wait (llmdev_hw_enter()) and those in progress are
 *     waited for (SRCU); every user mapping is zapped; the rings stop
 *     taking descriptors and their watchdogs are cancelled;
 *  2. halts the card, when it can still be reached: interrupts masked, a
 *     soft reset stops every DMA engine, so no page the driver is about to
 *     unpin can be written any more (on the AER path the bus reset does
 *     this, so step 3 waits for slot_reset);
 *  3. fails what the card had started: transfers with descriptors on a
 *     ring, and the card's part of a running collective, with -EIO.
 *     Transfers and collectives still queued in the driver stay queued;
 *  4. after the reset, checks that the card answers and is the same card,
 *     programs it as probe does (rings, routing table, links), and lets
 *     everything go on; or, when it is not back, marks it dead.
 *
 * A card is never left half-alive: it is LIVE or DEAD once the reset is
 * over, and an AER recovery that the PCI core gives up on (no resume)
 * marks it dead after LLMDEV_RECOVERY_TIMEOUT_MS.
 */
#include <linux/capability.h>
#include <linux/interrupt.h>
#include <linux/pci.h>

#include "llmdev_drv.h"
#include "../uapi/llmdev_netlink.h"

#define LLMDEV_RECOVERY_TIMEOUT_MS	30000

static void llmdev_set_state(struct llmdev_device *ldev, enum llmdev_state st)
{
	spin_lock(&ldev->state_lock);
	WRITE_ONCE(ldev->state, st);
	spin_unlock(&ldev->state_lock);
	wake_up_all(&ldev->state_wq);
}

static bool llmdev_not_resetting(struct llmdev_device *ldev)
{
	return READ_ONCE(ldev->state) != LLMDEV_STATE_RESETTING ||
	       READ_ONCE(ldev->unplugged);
}

/**
 * llmdev_wait_reset() - wait for the end of a reset (llmdev_hw_enter())
 * @ldev: the card
 * @killable: a fatal signal ends the wait
 *
 * Return: 0 when the card is no longer being reset; -EINTR a fatal signal.
 */
int llmdev_wait_reset(struct llmdev_device *ldev, bool killable)
{
	if (!killable) {
		wait_event(ldev->state_wq, llmdev_not_resetting(ldev));
		return 0;
	}
	if (wait_event_killable(ldev->state_wq, llmdev_not_resetting(ldev)))
		return -EINTR;
	return 0;
}

/*
 * Program a card that has just been reset, as probe does: rings and
 * interrupts (the routing table and the links are the callers'). The card
 * is ours alone (state RESETTING, or not yet visible at probe), so no
 * guard is needed.
 */
void llmdev_hw_start(struct llmdev_device *ldev)
{
	llmdev_dma_hw_start(ldev);
	llmdev_wr32(ldev, LLMDEV_REG_IRQ_MASK, lower_32_bits(~LLMDEV_IRQ_ALL));
	llmdev_wr32(ldev, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_ENABLE);
}

static void llmdev_sync_irqs(struct llmdev_device *ldev)
{
	int i;

	for (i = 0; i < ldev->nvec; i++)
		synchronize_irq(pci_irq_vector(ldev->pdev, i));
}

/* Step 1: nobody touches the card any more. */
static void llmdev_quiesce(struct llmdev_device *ldev, const char *why)
{
	ldev->reset_reason = why;
	llmdev_set_state(ldev, LLMDEV_STATE_RESETTING);
	synchronize_srcu(&ldev->unplug_srcu);
	dev_info(&ldev->dev, "%s: resetting the card\n", why);
	llmdev_nl_reset_event(ldev, LLMDEV_GENL_CMD_RESET_START, 0);
	llmdev_zap_mappings(ldev, 0, 0);
	llmdev_dma_stop(ldev);
}

/* Step 2: the card stops every engine (when it can still be reached). */
static void llmdev_halt(struct llmdev_device *ldev)
{
	if (pci_channel_offline(ldev->pdev) || !pci_device_is_present(ldev->pdev))
		return;
	llmdev_wr32(ldev, LLMDEV_REG_IRQ_MASK, ~0u);
	llmdev_pmu_save(ldev);		/* the reset clears the counters */
	llmdev_wr32(ldev, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_RESET);
	llmdev_rd32(ldev, LLMDEV_REG_STATUS);	/* flush the reset write */
	llmdev_sync_irqs(ldev);
}

/* Step 3: what the card had started will not finish. */
static void llmdev_fail_started(struct llmdev_device *ldev)
{
	llmdev_dma_fail_started(ldev, -EIO);
	llmdev_coll_fail_card(ldev, -EIO, false);
}

/**
 * llmdev_mark_dead() - give up on a card
 * @ldev: the card
 * @why: for the log
 *
 * Everything in flight or queued on it fails with -EIO, and so does every
 * call from now on, until a reset succeeds.
 */
void llmdev_mark_dead(struct llmdev_device *ldev, const char *why)
{
	spin_lock(&ldev->state_lock);
	ldev->reset_failures++;
	spin_unlock(&ldev->state_lock);
	llmdev_set_state(ldev, LLMDEV_STATE_DEAD);
	synchronize_srcu(&ldev->unplug_srcu);
	dev_err(&ldev->dev, "card is dead: %s; every call fails with -EIO until a reset succeeds\n",
		why);
	llmdev_zap_mappings(ldev, 0, 0);
	llmdev_dma_stop(ldev);
	llmdev_dma_fail_all(ldev, -EIO);
	llmdev_coll_fail_card(ldev, -EIO, true);
	llmdev_nl_reset_event(ldev, LLMDEV_GENL_CMD_RESET_FAILED, EIO);
}

/* Is the card back, and the same card? Return: NULL, or what is wrong. */
static const char *llmdev_card_check(struct llmdev_device *ldev)
{
	u32 id, version;

	if (!pci_device_is_present(ldev->pdev))
		return "the card does not answer";
	id = llmdev_rd32(ldev, LLMDEV_REG_ID);
	version = llmdev_rd32(ldev, LLMDEV_REG_VERSION);
	if (id != LLMDEV_ID_MAGIC || version != ldev->spec_version)
		return "the card does not identify itself";
	if (llmdev_rd64(ldev, LLMDEV_REG_SERIAL) != ldev->serial ||
	    llmdev_rd64(ldev, LLMDEV_REG_HBM_SIZE) != ldev->hbm.size)
		return "a different card answers";
	if (!(llmdev_rd32(ldev, LLMDEV_REG_STATUS) & LLMDEV_STATUS_READY))
		return "the card is not ready";
	return NULL;
}

/* Step 4: bring the card back, or mark it dead. */
static void llmdev_restart(struct llmdev_device *ldev)
{
	const char *bad = llmdev_card_check(ldev);
	int ret;

	if (bad) {
		llmdev_mark_dead(ldev, bad);
		return;
	}
	llmdev_wr32(ldev, LLMDEV_REG_CONTROL, LLMDEV_CONTROL_RESET);
	llmdev_hw_start(ldev);
	ret = llmdev_route_restore(ldev);
	if (ret) {
		llmdev_mark_dead(ldev, "the card refused its routing table");
		return;
	}
	spin_lock(&ldev->state_lock);
	ldev->reset_count++;
	spin_unlock(&ldev->state_lock);
	/*
	 * LIVE once the links have trained again: the collectives queued or
	 * submitted during the reset then run on them
	 */
	llmdev_link_hw_start(ldev);
	llmdev_link_wait_trained(ldev);
	llmdev_set_state(ldev, LLMDEV_STATE_LIVE);
	/* the training's events, which the event handler left to a live card */
	llmdev_link_handle_event(ldev);
	llmdev_dma_restart(ldev);
	llmdev_coll_kick();
	llmdev_hbm_rescrub(ldev);
	dev_info(&ldev->dev, "%s: the card is back (reset %u)\n",
		 ldev->reset_reason, ldev->reset_count);
	llmdev_nl_reset_event(ldev, LLMDEV_GENL_CMD_RESET_DONE, 0);
}

/* ---- function-level reset ----------------------------------------------------- */

static void llmdev_reset_prepare(struct pci_dev *pdev)
{
	struct llmdev_device *ldev = pci_get_drvdata(pdev);

	if (!ldev)
		return;
	llmdev_quiesce(ldev, "function reset");
	llmdev_halt(ldev);
	llmdev_fail_started(ldev);
}

static void llmdev_reset_done(struct pci_dev *pdev)
{
	struct llmdev_device *ldev = pci_get_drvdata(pdev);

	/*
	 * The PCI core restored config space from what it saved before the
	 * reset, and restoring forgets it: save it again, or the next AER
	 * recovery's slot_reset has nothing to restore after its bus reset.
	 */
	pci_save_state(pdev);
	if (ldev)
		llmdev_restart(ldev);
}

int llmdev_reset_ioctl(struct llmdev_ucmd *ucmd)
{
	struct llmdev_device *ldev = ucmd->lf->ldev;
	struct llmdev_reset *r = ucmd->cmd;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (r->flags)
		return -EINVAL;
	ret = pci_reset_function(ldev->pdev);
	/*
	 * -ENOTTY is also what a reset that ran and timed out returns (the
	 * card not ready after it): the card's state says which it was.
	 */
	if (llmdev_gone(ldev))
		return llmdev_gone(ldev);
	return ret == -ENOTTY ? -EOPNOTSUPP : ret;
}

/* ---- PCIe error recovery (AER) -------------------------------------------------- */

static void llmdev_recovery_timeout(struct work_struct *work)
{
	struct llmdev_device *ldev = container_of(to_delayed_work(work),
						  struct llmdev_device,
						  reset_watchdog);

	if (READ_ONCE(ldev->state) == LLMDEV_STATE_RESETTING)
		llmdev_mark_dead(ldev, "PCIe error recovery did not finish");
}

static pci_ers_result_t llmdev_error_detected(struct pci_dev *pdev,
					      pci_channel_state_t state)
{
	struct llmdev_device *ldev = pci_get_drvdata(pdev);

	if (!ldev)
		return PCI_ERS_RESULT_DISCONNECT;
	dev_warn(&ldev->dev, "PCIe error reported (channel %s)\n",
		 state == pci_channel_io_normal ? "normal" :
		 state == pci_channel_io_frozen ? "frozen" : "failed");
	switch (state) {
	case pci_channel_io_normal:
		/* the link still works: see in mmio_enabled whether we do */
		return PCI_ERS_RESULT_CAN_RECOVER;
	case pci_channel_io_frozen:
		llmdev_quiesce(ldev, "PCIe error recovery");
		schedule_delayed_work(&ldev->reset_watchdog,
				      msecs_to_jiffies(LLMDEV_RECOVERY_TIMEOUT_MS));
		return PCI_ERS_RESULT_NEED_RESET;
	case pci_channel_io_perm_failure:
	default:
		llmdev_quiesce(ldev, "PCIe error recovery");
		llmdev_mark_dead(ldev, "the PCIe link failed for good");
		return PCI_ERS_RESULT_DISCONNECT;
	}
}

/* After a non-fatal error: does the card still work as it should? */
static pci_ers_result_t llmdev_mmio_enabled(struct pci_dev *pdev)
{
	struct llmdev_device *ldev = pci_get_drvdata(pdev);

	if (!ldev)
		return PCI_ERS_RESULT_DISCONNECT;
	if (!llmdev_card_check(ldev) &&
	    !llmdev_rd32(ldev, LLMDEV_REG_ERR_STATUS))
		return PCI_ERS_RESULT_RECOVERED;
	/* reset it (slot_reset, without a bus reset: we do it ourselves) */
	llmdev_quiesce(ldev, "PCIe error recovery");
	schedule_delayed_work(&ldev->reset_watchdog,
			      msecs_to_jiffies(LLMDEV_RECOVERY_TIMEOUT_MS));
	return PCI_ERS_RESULT_NEED_RESET;
}

static pci_ers_result_t llmdev_slot_reset(struct pci_dev *pdev)
{
	struct llmdev_device *ldev = pci_get_drvdata(pdev);
	const char *bad;

	if (!ldev)
		return PCI_ERS_RESULT_DISCONNECT;
	if (READ_ONCE(ldev->state) != LLMDEV_STATE_RESETTING)
		llmdev_quiesce(ldev, "PCIe error recovery");
	pci_restore_state(pdev);
	pci_save_state(pdev);
	/* after a bus reset this is a no-op; after a non-fatal error, not */
	llmdev_halt(ldev);
	llmdev_fail_started(ldev);
	bad = llmdev_card_check(ldev);
	if (bad) {
		cancel_delayed_work(&ldev->reset_watchdog);
		llmdev_mark_dead(ldev, bad);
		return PCI_ERS_RESULT_DISCONNECT;
	}
	return PCI_ERS_RESULT_RECOVERED;
}

static void llmdev_resume(struct pci_dev *pdev)
{
	struct llmdev_device *ldev = pci_get_drvdata(pdev);

	if (!ldev)
		return;
	cancel_delayed_work_sync(&ldev->reset_watchdog);
	if (READ_ONCE(ldev->state) == LLMDEV_STATE_RESETTING)
		llmdev_restart(ldev);
}

const struct pci_error_handlers llmdev_err_handler = {
	.error_detected = llmdev_error_detected,
	.mmio_enabled = llmdev_mmio_enabled,
	.slot_reset = llmdev_slot_reset,
	.resume = llmdev_resume,
	.reset_prepare = llmdev_reset_prepare,
	.reset_done = llmdev_reset_done,
};

void llmdev_reset_init(struct llmdev_device *ldev)
{
	spin_lock_init(&ldev->state_lock);
	init_waitqueue_head(&ldev->state_wq);
	INIT_DELAYED_WORK(&ldev->reset_watchdog, llmdev_recovery_timeout);
	ldev->state = LLMDEV_STATE_LIVE;
}
