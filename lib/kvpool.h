/* SPDX-License-Identifier: (LGPL-2.1 OR MIT) */
/*
 * kvpool.h - the KV pool's inside, for its host test: the pool moves data
 * through a backend, the card's (llmdev_dma_batch() and friends) in the
 * library, a memory-only one in lib/test_kvpool.c. Not installed.
 */
#ifndef LLMDEV_KVPOOL_H
#define LLMDEV_KVPOOL_H

#include <stdbool.h>
#include <stdint.h>

#include "llmdev.h"

/**
 * struct kv_backend - how a pool reaches the card
 * @setup: make the HBM region (set *@region) and register the host tier
 *         (@host, @host_len; set *@hostbuf)
 * @teardown: undo @setup (may fail quietly: the handle is closed next)
 * @batch: queue @n transfers, return their fence (no wait)
 * @wait: wait for a fence: 0 with *@status, -ETIME, or another errno
 * @batch_wait: queue @n transfers and wait for them in the same call, up to
 *              @timeout_ns: 0 with *@status (done), -ETIME with *@fence
 *              (queued, still running), or another errno (not queued);
 *              NULL: @batch, then @wait
 * @copy: synchronous copy between @buf and HBM offset @off of the region
 */
struct kv_backend {
	int (*setup)(void *priv, struct llmdev *dev, uint64_t hbm_len,
		     void *host, uint64_t host_len, uint32_t *region,
		     uint32_t *hostbuf);
	void (*teardown)(void *priv, struct llmdev *dev, uint32_t region,
			 uint32_t hostbuf, bool have_host);
	int (*batch)(void *priv, struct llmdev *dev,
		     const struct llmdev_dma_op *ops, unsigned int n,
		     uint64_t *fence);
	int (*wait)(void *priv, struct llmdev *dev, uint64_t fence,
		    uint64_t timeout_ns, int *status);
	int (*batch_wait)(void *priv, struct llmdev *dev,
			  const struct llmdev_dma_op *ops, unsigned int n,
			  uint64_t timeout_ns, uint64_t *fence, int *status);
	int (*copy)(void *priv, struct llmdev *dev, uint32_t region,
		    bool to_card, uint64_t off, void *buf, uint64_t len,
		    uint64_t timeout_ns);
};

/*
 * llmdev_kv_create() with another backend and no device (@dev may be
 * NULL: the pool then has no handle of its own). Hidden: for tests that
 * link libllmdev.a.
 */
int llmdev__kv_create_backend(struct llmdev *dev, const struct llmdev_kv_opts *opts,
		      const struct kv_backend *be, void *priv,
		      struct llmdev_kv **kvp);

/* the host tier's memory, for a test backend */
void *llmdev__kv_host_mem(struct llmdev_kv *kv);

#endif /* LLMDEV_KVPOOL_H */
