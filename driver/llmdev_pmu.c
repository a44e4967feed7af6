// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: one perf PMU per card, named like its device node ("llmdev0"),
 * with the card's counters (docs/hardware.md section 8) as events:
 *
 *	perf stat -e llmdev0/h2c_bytes/ -a -- CMD
 *
 * counts the bytes the card's DMA engine moved to the card while CMD ran
 * (the counters are the card's, not a task's: -a). Counting only: no
 * sampling, no per-task events; events/ in sysfs lists the names,
 * cpumask says CPU 0, so that perf opens each event once.
 *
 * Reads take the live counter (8-byte reads cannot tear) plus what the
 * counter had reached at the card's earlier resets (saved by
 * llmdev_pmu_save() just before the reset clears it), so a count runs on
 * across resets. Only a reset whose card could not be read first (a PCIe
 * link that failed) loses what moved since the event's last read.
 * While the card is being reset, dead or gone, an event keeps its count.
 *
 * A card may go away while events count: its counters are read one last
 * time (when it is still there to read) and the events keep that value;
 * the PMU stays registered until the last of them is closed; it is
 * unregistered then (from a work item) and freed at module unload (every
 * event holds a reference on the module), so perf never sees a PMU freed
 * under it.
 */
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/perf_event.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "llmdev_drv.h"

/**
 * struct llmdev_pmu - a card's PMU
 * @pmu: registered with perf
 * @ldev: the card; NULL once it is gone (RCU: readers run with interrupts
 *        off, remove synchronises before the card may be freed)
 * @lock: protects @events and @closed
 * @events: events initialised and not yet destroyed
 * @closed: the card is gone: no new events
 * @base: per counter, the sum of its values at the card's resets; written
 *        while the card is being reset or removed, read in hardware
 *        sections (or, once @frozen, anywhere)
 * @frozen: the card is gone: @base holds the counters' last values
 * @orphan: in llmdev_pmu_orphans, when its card went with events left
 * @unregister: unregisters the orphan once its last event is destroyed
 * @name: "llmdevN"
 */
struct llmdev_pmu {
	struct pmu pmu;
	struct llmdev_device __rcu *ldev;
	spinlock_t lock;		/* protects events and closed */
	unsigned int events;
	bool closed;
	u64 base[LLMDEV_COUNTER_NUM];
	bool frozen;
	struct list_head orphan;
	struct work_struct unregister;
	char name[16];
};

/* PMUs whose card is gone, kept until module unload */
static DEFINE_MUTEX(llmdev_pmu_orphans_lock);	/* protects the list */
static LIST_HEAD(llmdev_pmu_orphans);

static struct llmdev_pmu *to_llmdev_pmu(struct pmu *pmu)
{
	return container_of(pmu, struct llmdev_pmu, pmu);
}

/* The counter of @event, resets included; false if unreadable now. */
static bool llmdev_pmu_sample(struct perf_event *event, u64 *val)
{
	struct llmdev_pmu *p = to_llmdev_pmu(event->pmu);
	u32 i = (u32)event->attr.config;
	struct llmdev_device *ldev;
	bool ok = false;
	int idx;

	rcu_read_lock();
	ldev = rcu_dereference(p->ldev);
	if (ldev && llmdev_enter(ldev, &idx)) {
		*val = llmdev_rd64(ldev, LLMDEV_REG_PERF_LIVE + 8 * i);
		ok = *val != ~0ULL;	/* surprise removal */
		*val += READ_ONCE(p->base[i]);
		llmdev_exit(ldev, idx);
	/* the acquire pairs with the release in llmdev_pmu_fini(): @base is final */
	} else if (!ldev && smp_load_acquire(&p->frozen)) {
		*val = READ_ONCE(p->base[i]);
		ok = true;
	}
	rcu_read_unlock();
	return ok;
}

static void llmdev_pmu_update(struct perf_event *event)
{
	struct hw_perf_event *hwc = &event->hw;
	u64 now, prev;

	if (!llmdev_pmu_sample(event, &now))
		return;
	prev = local64_read(&hwc->prev_count);
	local64_set(&hwc->prev_count, now);
	/*
	 * last_tag: prev_count holds a reading (the card may have been
	 * unreadable at start). now < prev: a reset the counters could not
	 * be saved at.
	 */
	if (hwc->last_tag && now > prev)
		local64_add(now - prev, &event->count);
	hwc->last_tag = 1;
}

static void llmdev_pmu_start(struct perf_event *event, int flags)
{
	struct hw_perf_event *hwc = &event->hw;
	u64 now;

	hwc->last_tag = llmdev_pmu_sample(event, &now);
	if (hwc->last_tag)
		local64_set(&hwc->prev_count, now);
	hwc->state = 0;
}

static void llmdev_pmu_stop(struct perf_event *event, int flags)
{
	struct hw_perf_event *hwc = &event->hw;

	if (!(hwc->state & PERF_HES_STOPPED) && (flags & PERF_EF_UPDATE))
		llmdev_pmu_update(event);
	hwc->state |= PERF_HES_STOPPED | PERF_HES_UPTODATE;
}

static int llmdev_pmu_add(struct perf_event *event, int flags)
{
	event->hw.state = PERF_HES_STOPPED | PERF_HES_UPTODATE;
	if (flags & PERF_EF_START)
		llmdev_pmu_start(event, flags);
	return 0;
}

static void llmdev_pmu_del(struct perf_event *event, int flags)
{
	llmdev_pmu_stop(event, PERF_EF_UPDATE);
}

static void llmdev_pmu_read(struct perf_event *event)
{
	if (!(event->hw.state & PERF_HES_STOPPED))
		llmdev_pmu_update(event);
}

static void llmdev_pmu_event_destroy(struct perf_event *event)
{
	struct llmdev_pmu *p = to_llmdev_pmu(event->pmu);
	bool last;

	spin_lock(&p->lock);
	last = !--p->events && p->closed;
	spin_unlock(&p->lock);
	if (last)
		schedule_work(&p->unregister);
}

static int llmdev_pmu_event_init(struct perf_event *event)
{
	struct llmdev_pmu *p = to_llmdev_pmu(event->pmu);

	if (event->attr.type != event->pmu->type)
		return -ENOENT;
	/* card-wide counters: no sampling, no task context */
	if (is_sampling_event(event) || event->cpu < 0 ||
	    (event->attach_state & PERF_ATTACH_TASK))
		return -EINVAL;
	if (event->attr.config >= LLMDEV_COUNTER_NUM)
		return -EINVAL;
	spin_lock(&p->lock);
	if (p->closed) {
		spin_unlock(&p->lock);
		return -ENODEV;
	}
	p->events++;
	spin_unlock(&p->lock);
	event->destroy = llmdev_pmu_event_destroy;
	return 0;
}

/* ---- sysfs: format/, events/, cpumask --------------------------------------- */

PMU_FORMAT_ATTR(event, "config:0-7");

static struct attribute *llmdev_pmu_format_attrs[] = {
	&format_attr_event.attr,
	NULL,
};

static const struct attribute_group llmdev_pmu_format_group = {
	.name = "format",
	.attrs = llmdev_pmu_format_attrs,
};

#define LLMDEV_PMU_EVENT(_name, _config)				\
	PMU_EVENT_ATTR_STRING(_name, llmdev_pmu_event_##_name,		\
			      "event=" __stringify(_config))

LLMDEV_PMU_EVENT(h2c_bytes, 0);
LLMDEV_PMU_EVENT(c2h_bytes, 1);
LLMDEV_PMU_EVENT(h2c_desc, 2);
LLMDEV_PMU_EVENT(c2h_desc, 3);
LLMDEV_PMU_EVENT(irqs, 4);
LLMDEV_PMU_EVENT(aperture_rd_bytes, 5);
LLMDEV_PMU_EVENT(aperture_wr_bytes, 6);
LLMDEV_PMU_EVENT(errors, 7);
LLMDEV_PMU_EVENT(dma_busy_ns, 8);
LLMDEV_PMU_EVENT(scrub_bytes, 9);
LLMDEV_PMU_EVENT(doorbells, 10);
LLMDEV_PMU_EVENT(link_tx_bytes, 11);
LLMDEV_PMU_EVENT(link_rx_bytes, 12);
LLMDEV_PMU_EVENT(coll_ops, 13);
LLMDEV_PMU_EVENT(coll_busy_ns, 14);

static_assert(LLMDEV_COUNTER_H2C_BYTES == 0 && LLMDEV_COUNTER_COLL_BUSY_NS == 14 &&
	      LLMDEV_COUNTER_NUM == 15);

static struct attribute *llmdev_pmu_event_attrs[] = {
	&llmdev_pmu_event_h2c_bytes.attr.attr,
	&llmdev_pmu_event_c2h_bytes.attr.attr,
	&llmdev_pmu_event_h2c_desc.attr.attr,
	&llmdev_pmu_event_c2h_desc.attr.attr,
	&llmdev_pmu_event_irqs.attr.attr,
	&llmdev_pmu_event_aperture_rd_bytes.attr.attr,
	&llmdev_pmu_event_aperture_wr_bytes.attr.attr,
	&llmdev_pmu_event_errors.attr.attr,
	&llmdev_pmu_event_dma_busy_ns.attr.attr,
	&llmdev_pmu_event_scrub_bytes.attr.attr,
	&llmdev_pmu_event_doorbells.attr.attr,
	&llmdev_pmu_event_link_tx_bytes.attr.attr,
	&llmdev_pmu_event_link_rx_bytes.attr.attr,
	&llmdev_pmu_event_coll_ops.attr.attr,
	&llmdev_pmu_event_coll_busy_ns.attr.attr,
	NULL,
};

static const struct attribute_group llmdev_pmu_events_group = {
	.name = "events",
	.attrs = llmdev_pmu_event_attrs,
};

static ssize_t cpumask_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "0\n");
}
static DEVICE_ATTR_RO(cpumask);

static struct attribute *llmdev_pmu_cpumask_attrs[] = {
	&dev_attr_cpumask.attr,
	NULL,
};

static const struct attribute_group llmdev_pmu_cpumask_group = {
	.attrs = llmdev_pmu_cpumask_attrs,
};

static const struct attribute_group *llmdev_pmu_groups[] = {
	&llmdev_pmu_format_group,
	&llmdev_pmu_events_group,
	&llmdev_pmu_cpumask_group,
	NULL,
};

/* ---- registration -------------------------------------------------------------- */

static void llmdev_pmu_unregister_fn(struct work_struct *work)
{
	perf_pmu_unregister(&container_of(work, struct llmdev_pmu,
					  unregister)->pmu);
}

/**
 * llmdev_pmu_init() - register the card's PMU
 * @ldev: the card, named already (llmdev_cdev_add())
 *
 * Return: 0, also when the PMU cannot be registered (the card works
 * without it; a warning says so); -ENOMEM.
 */
int llmdev_pmu_init(struct llmdev_device *ldev)
{
	struct llmdev_pmu *p;
	int ret;

	if (!IS_ENABLED(CONFIG_PERF_EVENTS))
		return 0;
	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	spin_lock_init(&p->lock);
	INIT_LIST_HEAD(&p->orphan);
	INIT_WORK(&p->unregister, llmdev_pmu_unregister_fn);
	RCU_INIT_POINTER(p->ldev, ldev);
	strscpy(p->name, dev_name(&ldev->dev), sizeof(p->name));
	p->pmu = (struct pmu) {
		.module = THIS_MODULE,
		.task_ctx_nr = perf_invalid_context,
		.capabilities = PERF_PMU_CAP_NO_INTERRUPT |
				PERF_PMU_CAP_NO_EXCLUDE,
		.attr_groups = llmdev_pmu_groups,
		.event_init = llmdev_pmu_event_init,
		.add = llmdev_pmu_add,
		.del = llmdev_pmu_del,
		.start = llmdev_pmu_start,
		.stop = llmdev_pmu_stop,
		.read = llmdev_pmu_read,
	};
	ret = perf_pmu_register(&p->pmu, p->name, -1);
	if (ret) {
		/*
		 * Not fatal: the card works without it. (A PMU of the same
		 * name may still be registered: a card removed while perf
		 * counted it and bound again before perf closed its events.)
		 */
		dev_warn(&ldev->dev, "no perf PMU: registering %s failed: %d\n",
			 p->name, ret);
		kfree(p);
		return 0;
	}
	ldev->pmu = p;
	return 0;
}

/**
 * llmdev_pmu_fini() - the card is going: its PMU counts no more
 * @ldev: the card, marked unplugged
 *
 * Unregisters the PMU now if no event is open on it, else once the last
 * one is closed.
 */
void llmdev_pmu_fini(struct llmdev_device *ldev)
{
	struct llmdev_pmu *p = ldev->pmu;
	bool busy;

	if (!p)
		return;
	/* the last values, while the card can still be read (no hardware
	 * section runs: the card is marked unplugged)
	 */
	if (pci_device_is_present(ldev->pdev))
		llmdev_pmu_save(ldev);
	ldev->pmu = NULL;
	RCU_INIT_POINTER(p->ldev, NULL);
	/* @base is written: publish it (llmdev_pmu_sample() acquires) */
	smp_store_release(&p->frozen, true);
	spin_lock(&p->lock);
	p->closed = true;
	busy = p->events;
	spin_unlock(&p->lock);
	if (!busy) {
		/* no event: nobody samples the card (perf_pmu_unregister() waits) */
		perf_pmu_unregister(&p->pmu);
		kfree(p);
		return;
	}
	/* samplers of the events still open are done with the card */
	synchronize_rcu();
	mutex_lock(&llmdev_pmu_orphans_lock);
	list_add_tail(&p->orphan, &llmdev_pmu_orphans);
	mutex_unlock(&llmdev_pmu_orphans_lock);
}

/**
 * llmdev_pmu_save() - keep the counters' values across a reset
 * @ldev: the card, being reset (no hardware section runs) and reachable
 *
 * Called just before the reset that clears the counters.
 */
void llmdev_pmu_save(struct llmdev_device *ldev)
{
	struct llmdev_pmu *p = ldev->pmu;
	unsigned int i;
	u64 v;

	if (!p)
		return;
	for (i = 0; i < LLMDEV_COUNTER_NUM; i++) {
		v = llmdev_rd64(ldev, LLMDEV_REG_PERF_LIVE + 8 * i);
		if (v != ~0ULL)
			WRITE_ONCE(p->base[i], p->base[i] + v);
	}
}

/* Module exit: no event is left (each holds the module); free the orphans. */
void llmdev_pmu_exit(void)
{
	struct llmdev_pmu *p, *tmp;

	mutex_lock(&llmdev_pmu_orphans_lock);
	list_for_each_entry_safe(p, tmp, &llmdev_pmu_orphans, orphan) {
		flush_work(&p->unregister);
		list_del(&p->orphan);
		kfree(p);
	}
	mutex_unlock(&llmdev_pmu_orphans_lock);
}
