/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * llmdev: what operators' tools see of a card besides its own ABI: hwmon
 * (llmdev_hwmon.c), a perf PMU (llmdev_pmu.c), devlink with health
 * reporters (llmdev_devlink.c) and per-file usage in /proc/PID/fdinfo
 * (llmdev_fdinfo.c). Included by llmdev_drv.h.
 */
#ifndef LLMDEV_OBS_H
#define LLMDEV_OBS_H

#include <linux/spinlock.h>
#include <linux/types.h>

struct llmdev_device;
struct llmdev_file;
struct seq_file;
struct file;

/**
 * struct llmdev_file_usage - what one open file did, for its fdinfo
 * @lock: protects every field below
 * @client_id: unique among every file of every card since the module
 *             loaded (one file shared by several processes shows the
 *             same id in each)
 * @h2c_bytes: bytes moved to the card by transfers that succeeded
 * @c2h_bytes: bytes moved from the card by transfers that succeeded
 * @transfers: transfers finished, whatever their status (each of a
 *             batch, LLMDEV_DMA_BATCH, counts)
 * @failed: transfers that finished with an error (a batch fails whole)
 * @busy_ns: time with at least one transfer in flight, finished periods
 * @busy_since: ktime of the start of the period in progress
 * @inflight: requests (a transfer or a batch) submitted, not yet finished
 * @collectives: collectives submitted through this file
 */
struct llmdev_file_usage {
	spinlock_t lock;		/* the fields below; process context only */
	u64 client_id;
	u64 h2c_bytes;
	u64 c2h_bytes;
	u64 transfers;
	u64 failed;
	u64 busy_ns;
	u64 busy_since;
	unsigned int inflight;
	u64 collectives;
};

/* llmdev_fdinfo.c: accounting points, and the fdinfo itself */
void llmdev_usage_init(struct llmdev_file_usage *u);
void llmdev_usage_dma_begin(struct llmdev_file *lf);
void llmdev_usage_dma_end(struct llmdev_file *lf, unsigned int transfers,
			  const u64 bytes[2], int status);
void llmdev_usage_coll(struct llmdev_file *lf);
void llmdev_show_fdinfo(struct seq_file *m, struct file *filp);

/* llmdev_hwmon.c: managed; undone at unbind after remove */
int llmdev_hwmon_init(struct llmdev_device *ldev);

/* llmdev_pmu.c */
int llmdev_pmu_init(struct llmdev_device *ldev);
void llmdev_pmu_fini(struct llmdev_device *ldev);
void llmdev_pmu_save(struct llmdev_device *ldev);
void llmdev_pmu_exit(void);

/* llmdev_devlink.c */
int llmdev_devlink_init(struct llmdev_device *ldev);
void llmdev_devlink_fini(struct llmdev_device *ldev);
void llmdev_devlink_dma_hang(struct llmdev_device *ldev, unsigned int ring,
			     int status);
void llmdev_devlink_link_error(struct llmdev_device *ldev, unsigned int port);

#endif /* LLMDEV_OBS_H */
