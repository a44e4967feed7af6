// SPDX-License-Identifier: GPL-2.0-only
/*
 * llmdev: what each open file holds and did, in /proc/PID/fdinfo/FD, in
 * the style of DRM's fdinfo (Documentation/gpu/drm-usage-stats.rst):
 * "key:\tvalue" lines, keys prefixed "llmdev-". The keys and their
 * meaning are an ABI for tools (llmctl ps); docs/fdinfo.md lists them.
 *
 *   llmdev-driver:            llmdev
 *   llmdev-card:              llmdevN
 *   llmdev-pdev:              PCI address of the card
 *   llmdev-serial:            the card's serial number, 16 hex digits
 *   llmdev-client-id:         unique per open file (the same in every
 *                             process that shares the file)
 *   llmdev-regions-private:   regions the file owns that go with it
 *   llmdev-regions-persistent: persistent regions it created and still owns
 *   llmdev-memory-private:    their HBM, bytes
 *   llmdev-memory-persistent: their HBM, bytes
 *   llmdev-dma-h2c-bytes:     bytes moved to the card by its transfers
 *                             that succeeded
 *   llmdev-dma-c2h-bytes:     bytes moved from the card, likewise
 *   llmdev-dma-transfers:     transfers finished, failed ones included
 *   llmdev-dma-failed:        transfers that failed
 *   llmdev-dma-inflight:      requests (a transfer, or a batch) submitted
 *                             and not finished
 *   llmdev-engine-dma:        "N ns": time with a transfer of the file in
 *                             flight (like drm-engine-<name>)
 *   llmdev-collectives:       collectives submitted through the file
 *
 * Counters count from the open and never go down.
 */
#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/ktime.h>
#include <linux/seq_file.h>

#include "llmdev_drv.h"

static atomic64_t llmdev_client_ids = ATOMIC64_INIT(0);

void llmdev_usage_init(struct llmdev_file_usage *u)
{
	spin_lock_init(&u->lock);
	u->client_id = atomic64_inc_return(&llmdev_client_ids);
}

/* A request of @lf was submitted and will finish (llmdev_usage_dma_end()). */
void llmdev_usage_dma_begin(struct llmdev_file *lf)
{
	struct llmdev_file_usage *u = &lf->usage;

	spin_lock(&u->lock);
	if (!u->inflight++)
		u->busy_since = ktime_get_ns();
	spin_unlock(&u->lock);
}

/*
 * A request of @transfers transfers, moving @bytes to [0] and from [1]
 * the card, finished with @status (a request fails or succeeds whole).
 */
void llmdev_usage_dma_end(struct llmdev_file *lf, unsigned int transfers,
			  const u64 bytes[2], int status)
{
	struct llmdev_file_usage *u = &lf->usage;

	spin_lock(&u->lock);
	u->transfers += transfers;
	if (status) {
		u->failed += transfers;
	} else {
		u->h2c_bytes += bytes[0];
		u->c2h_bytes += bytes[1];
	}
	if (!WARN_ON_ONCE(!u->inflight) && !--u->inflight)
		u->busy_ns += ktime_get_ns() - u->busy_since;
	spin_unlock(&u->lock);
}

void llmdev_usage_coll(struct llmdev_file *lf)
{
	struct llmdev_file_usage *u = &lf->usage;

	spin_lock(&u->lock);
	u->collectives++;
	spin_unlock(&u->lock);
}

void llmdev_show_fdinfo(struct seq_file *m, struct file *filp)
{
	struct llmdev_file *lf = filp->private_data;
	struct llmdev_device *ldev = lf->ldev;
	struct llmdev_file_usage *u = &lf->usage, snap;
	u64 mem[2] = {}, nreg[2] = {};
	struct llmdev_region *r;

	mutex_lock(&ldev->hbm.lock);
	list_for_each_entry(r, &ldev->hbm.regions, ext.node) {
		if (r->owner != lf || r->pending || r->dying)
			continue;
		mem[r->persistent] += r->ext.length;
		nreg[r->persistent]++;
	}
	mutex_unlock(&ldev->hbm.lock);

	spin_lock(&u->lock);
	snap = *u;
	spin_unlock(&u->lock);
	if (snap.inflight)
		snap.busy_ns += ktime_get_ns() - snap.busy_since;

	seq_printf(m, "llmdev-driver:\t%s\n", LLMDEV_NAME);
	seq_printf(m, "llmdev-card:\t%s\n", dev_name(&ldev->dev));
	seq_printf(m, "llmdev-pdev:\t%s\n", pci_name(ldev->pdev));
	seq_printf(m, "llmdev-serial:\t%016llx\n", ldev->serial);
	seq_printf(m, "llmdev-client-id:\t%llu\n", snap.client_id);
	seq_printf(m, "llmdev-regions-private:\t%llu\n", nreg[0]);
	seq_printf(m, "llmdev-regions-persistent:\t%llu\n", nreg[1]);
	seq_printf(m, "llmdev-memory-private:\t%llu\n", mem[0]);
	seq_printf(m, "llmdev-memory-persistent:\t%llu\n", mem[1]);
	seq_printf(m, "llmdev-dma-h2c-bytes:\t%llu\n", snap.h2c_bytes);
	seq_printf(m, "llmdev-dma-c2h-bytes:\t%llu\n", snap.c2h_bytes);
	seq_printf(m, "llmdev-dma-transfers:\t%llu\n", snap.transfers);
	seq_printf(m, "llmdev-dma-failed:\t%llu\n", snap.failed);
	seq_printf(m, "llmdev-dma-inflight:\t%u\n", snap.inflight);
	seq_printf(m, "llmdev-engine-dma:\t%llu ns\n", snap.busy_ns);
	seq_printf(m, "llmdev-collectives:\t%llu\n", snap.collectives);
}
