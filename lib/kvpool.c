// SPDX-License-Identifier: (LGPL-2.1 OR MIT)
/*
 * kvpool.c - the KV-cache pool of libllmdev (LLMDEV_1.3): fixed-size
 * blocks in card HBM, registered host memory and an O_DIRECT disk file.
 * What it promises is in llmdev.h; how it keeps its books is here.
 *
 * Blocks: an array of struct kv_block, indexed by block id. A block's data
 * is in one tier at a time (tier, slot); while it moves (a DMA batch in
 * flight) it is "busy" and holds a slot in both tiers (dst_tier,
 * dst_slot). Each tier has a stack of free slots and an LRU list of the
 * blocks that may leave it (resident, not busy, not pinned, not held by
 * the call in progress), least recently used at the head.
 *
 * Names: (seq, index) -> block, in a chained hash table of entries; each
 * sequence has a list of its entries (for llmdev_kv_free_seq()), found
 * through a second table. Content hashes -> block, chained through the
 * blocks. A block's refs counts its entries; a hashed block with none is
 * "cached" and may be dropped when its room is needed.
 *
 * Moves: host -> HBM and HBM -> host are DMA batches on the pool's own
 * handle (at most LLMDEV_BATCH_MAX blocks each), kept in kv->batch[] until
 * their fence is reaped (kv_reap()): then the blocks' old slots are freed
 * (or, on failure, their new ones). Host -> disk and disk -> host are
 * pwrite()/pread() of one block, in the calling thread.
 *
 * Locking: kv->lock serializes every public call, waits included (see
 * llmdev.h). The statistics live in a shared mapping written with relaxed
 * atomics, so that a reader in another process (llmctl kv stats) never
 * sees a torn counter.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "llmdev.h"
#include "kvpool.h"

#define NIL			UINT32_MAX
#define KV_MAX_BATCHES		64	/* DMA batches in flight per pool */
/*
 * A move of many blocks goes to the card as KV_PIPE_PARTS DMA batches (of
 * KV_PIPE_MIN_BLOCKS at least), all queued before any is waited for: the
 * card moves the first while the next are prepared, here and in the driver
 * (which checks every element of a batch before it moves any). More parts
 * start the card sooner but cost more calls: 1000 blocks of 64 KiB in, as
 * 8 parts, ran at 0.80-0.84 of one 64 MiB transfer where 4 parts ran at
 * 0.75-0.83 (three alternating rounds in one VM).
 */
#define KV_PIPE_PARTS		8
#define KV_PIPE_MIN_BLOCKS	32
#define KV_FAILED_RING		64	/* failed fences remembered */
#define KV_DEFAULT_TIMEOUT	(30ULL * 1000000000ULL)
#define KV_SHM_MAGIC		0x3174736b6d6c6cULL	/* "llmkst1" */
#define KV_SHM_VERSION		1
#define KV_STATS_TRIES		64	/* names taken before a pool gives up */
#define KV_HIST_SUB		4	/* 16 buckets per power of two */
#define KV_HIST_N		((64 - KV_HIST_SUB + 1) << KV_HIST_SUB)

/* block flags */
#define B_USED		(1U << 0)
#define B_HASHED	(1U << 1)
#define B_BUSY		(1U << 2)	/* moving: batch says which */
#define B_LOST		(1U << 3)	/* contents lost, holds no slot */
#define B_LRU		(1U << 4)	/* on its tier's LRU list */
#define B_HOLD		(1U << 5)	/* taken by the call in progress */
#define B_MARK		(1U << 6)	/* seen once in this call's refs */

#define T_NONE		0xff

struct kv_block {
	uint32_t refs;
	uint32_t pins;
	uint32_t slot;
	uint32_t dst_slot;
	uint32_t prev, next;	/* LRU of its tier */
	uint32_t hnext;		/* content-hash chain; free list when unused */
	uint32_t batch;		/* index in kv->batch[] while busy */
	uint8_t tier;
	uint8_t dst_tier;
	uint8_t flags;
	uint8_t hash[LLMDEV_KV_HASH_LEN];
};

/* (seq, index) -> block */
struct kv_ent {
	uint64_t seq;
	uint32_t index;
	uint32_t block;
	uint32_t next;		/* bucket chain; free list when unused */
	uint32_t snext;		/* the sequence's list */
	uint32_t sq;		/* its sequence (kv->sqs index) */
};

/* a sequence: its entries */
struct kv_sq {
	uint64_t seq;
	uint32_t first;		/* entry list */
	uint32_t count;		/* 0: unused */
	uint32_t next;		/* bucket chain; free list when unused */
};

struct kv_batch {
	uint64_t fence;		/* the pool's; 0 = slot unused */
	uint64_t dev_fence;
	uint64_t t0;
	uint64_t bytes;
	uint64_t move;		/* its move's: the first batch's fence */
	uint32_t *blocks;
	uint32_t n;
	bool in;		/* host -> HBM */
};

struct kv_hist {
	uint64_t count;
	uint64_t b[KV_HIST_N];
};

struct kv_shm_tier {
	uint64_t blocks, used, pinned, hits, misses, evictions, drops;
	uint64_t bytes_in, bytes_out;
	struct kv_hist in, out;
};

/* The statistics file: this struct, mapped shared. */
struct kv_shm {
	uint64_t magic;
	uint32_t version;
	uint32_t size;
	int32_t pid;
	int32_t card;
	uint64_t starttime;	/* of pid, /proc/PID/stat field 22 */
	char name[LLMDEV_KV_NAME_LEN];
	uint64_t block_size, sequences, blocks, cached, hashed;
	uint64_t lookup_hits, lookup_misses, lost, errors;
	struct kv_shm_tier tier[LLMDEV_KV_TIERS];
};

struct llmdev_kv {
	pthread_mutex_t lock;	/* everything below, but the fields set once */
	struct llmdev_kv *all_next;	/* in kv_all, under kv_all_lock */
	pid_t pid;		/* the creator: a forked child may not use it */
	struct llmdev *dev;	/* own handle (NULL with a test backend) */
	const struct kv_backend *be;
	void *be_priv;
	uint32_t region, hostbuf;
	uint64_t bs;		/* block size */
	uint64_t timeout;
	int card;

	uint32_t nslots[LLMDEV_KV_TIERS];
	uint32_t *freel[LLMDEV_KV_TIERS];	/* free slot stacks */
	uint32_t nfree[LLMDEV_KV_TIERS];
	uint32_t outgoing[LLMDEV_KV_TIERS];	/* blocks in flight out */
	uint32_t head[LLMDEV_KV_TIERS], tail[LLMDEV_KV_TIERS];	/* LRU */
	uint32_t high[2], low[2];	/* watermarks in blocks: HBM, host */

	uint8_t *host;
	uint64_t host_len;
	int disk_fd;
	uint64_t disk_len;
	void *bounce;		/* one aligned block, for disk read/write */

	struct kv_block *blk;
	uint32_t nblk, blk_free;	/* array size, free list */
	uint32_t *hbuck;		/* content hash buckets */
	uint32_t hmask;

	struct kv_ent *ents;
	uint32_t nents, ent_free, ent_used;
	uint32_t *ebuck;
	uint32_t emask;
	struct kv_sq *sqs;
	uint32_t nsqs, sq_free, sq_used;
	uint32_t *sbuck;
	uint32_t smask;

	struct kv_batch batch[KV_MAX_BATCHES];
	uint64_t next_fence;
	struct { uint64_t fence, move; int status; } failed[KV_FAILED_RING];
	unsigned int failed_pos;
	/* prefetches of several batches: their fence (the last's), first's */
	struct { uint64_t last, first; } moves[KV_FAILED_RING];
	unsigned int moves_pos;

	struct kv_shm *st;
	bool st_file;
	char st_path[128];
};

/* ---- small things ---------------------------------------------------------- */

static int kv_err(int e)
{
	errno = e;
	return -e;
}

/* a negative errno also goes to errno */
static int kv_ret(int ret)
{
	if (ret < 0)
		errno = -ret;
	return ret;
}

static uint64_t kv_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

#define ST_ADD(kv, field, v) \
	__atomic_fetch_add(&(kv)->st->field, (uint64_t)(v), __ATOMIC_RELAXED)
#define ST_SET(kv, field, v) \
	__atomic_store_n(&(kv)->st->field, (uint64_t)(v), __ATOMIC_RELAXED)

static unsigned int kv_hist_index(uint64_t v)
{
	unsigned int e;

	if (v < (1U << KV_HIST_SUB))
		return v;
	e = 63 - __builtin_clzll(v);
	return ((e - KV_HIST_SUB + 1) << KV_HIST_SUB) |
	       ((v >> (e - KV_HIST_SUB)) & ((1U << KV_HIST_SUB) - 1));
}

/* the middle of bucket @i */
static uint64_t kv_hist_value(unsigned int i)
{
	unsigned int e, m;
	uint64_t lo, width;

	if (i < (1U << KV_HIST_SUB))
		return i;
	e = (i >> KV_HIST_SUB) + KV_HIST_SUB - 1;
	m = i & ((1U << KV_HIST_SUB) - 1);
	lo = ((uint64_t)((1U << KV_HIST_SUB) | m)) << (e - KV_HIST_SUB);
	width = 1ULL << (e - KV_HIST_SUB);
	return lo + width / 2;
}

static void kv_hist_add(struct kv_hist *h, uint64_t v)
{
	__atomic_fetch_add(&h->b[kv_hist_index(v)], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
}

/* the value below which a fraction @q of the samples lie; 0 without any */
static uint64_t kv_hist_quantile(const struct kv_hist *h, double q)
{
	uint64_t b[KV_HIST_N], total = 0, want, seen = 0;
	unsigned int i;

	for (i = 0; i < KV_HIST_N; i++) {
		b[i] = __atomic_load_n(&h->b[i], __ATOMIC_RELAXED);
		total += b[i];
	}
	if (!total)
		return 0;
	want = (uint64_t)(q * (double)total + 0.999999);
	if (!want)
		want = 1;
	for (i = 0; i < KV_HIST_N; i++) {
		seen += b[i];
		if (seen >= want)
			return kv_hist_value(i);
	}
	return kv_hist_value(KV_HIST_N - 1);
}

/* 64 bits of a content hash, for its bucket */
static uint64_t kv_hkey(const uint8_t *h)
{
	uint64_t k;

	memcpy(&k, h, sizeof(k));
	return k * 0x9e3779b97f4a7c15ULL;
}

static uint64_t kv_mix(uint64_t seq, uint32_t index)
{
	uint64_t k = seq * 0x9e3779b97f4a7c15ULL ^ (index + 0x632be59bd9b4e019ULL);

	k ^= k >> 31;
	return k * 0xbf58476d1ce4e5b9ULL;
}

/* ---- slots, LRU ------------------------------------------------------------ */

static uint32_t kv_slot_get(struct llmdev_kv *kv, unsigned int t)
{
	return kv->nfree[t] ? kv->freel[t][--kv->nfree[t]] : NIL;
}

static void kv_slot_put(struct llmdev_kv *kv, unsigned int t, uint32_t s)
{
	kv->freel[t][kv->nfree[t]++] = s;
}

static void kv_used_update(struct llmdev_kv *kv, unsigned int t)
{
	ST_SET(kv, tier[t].used, kv->nslots[t] - kv->nfree[t]);
}

/* @d more (or fewer) HBM blocks pinned: one atomic add for a whole call's */
static void kv_pinned_add(struct llmdev_kv *kv, int64_t d)
{
	if (d)
		ST_ADD(kv, tier[LLMDEV_KV_HBM].pinned, d);
}

static void kv_lru_del(struct llmdev_kv *kv, uint32_t id)
{
	struct kv_block *b = &kv->blk[id];

	if (!(b->flags & B_LRU))
		return;
	if (b->prev != NIL)
		kv->blk[b->prev].next = b->next;
	else
		kv->head[b->tier] = b->next;
	if (b->next != NIL)
		kv->blk[b->next].prev = b->prev;
	else
		kv->tail[b->tier] = b->prev;
	b->prev = b->next = NIL;
	b->flags &= ~B_LRU;
}

static void kv_lru_add_tail(struct llmdev_kv *kv, uint32_t id)
{
	struct kv_block *b = &kv->blk[id];
	unsigned int t = b->tier;

	b->prev = kv->tail[t];
	b->next = NIL;
	if (kv->tail[t] != NIL)
		kv->blk[kv->tail[t]].next = id;
	else
		kv->head[t] = id;
	kv->tail[t] = id;
	b->flags |= B_LRU;
}

/* Put a block where it belongs: on its tier's LRU if it may leave it. */
static void kv_lru_settle(struct llmdev_kv *kv, uint32_t id)
{
	struct kv_block *b = &kv->blk[id];

	kv_lru_del(kv, id);
	if ((b->flags & (B_BUSY | B_LOST | B_HOLD)) || b->pins ||
	    b->tier == T_NONE)
		return;
	kv_lru_add_tail(kv, id);
}

/* ---- blocks and the content hash ------------------------------------------- */

static int kv_grow(void **arr, uint32_t *n, size_t esize, uint32_t want)
{
	uint32_t nn = *n ? *n : 64;
	void *p;

	while (nn < want) {
		if (nn > UINT32_MAX / 2)
			return -ENOMEM;
		nn *= 2;
	}
	if (nn == *n)
		return 0;
	p = realloc(*arr, (size_t)nn * esize);
	if (!p)
		return -ENOMEM;
	memset((char *)p + (size_t)*n * esize, 0, (size_t)(nn - *n) * esize);
	*arr = p;
	*n = nn;
	return 0;
}

static uint32_t kv_block_new(struct llmdev_kv *kv)
{
	uint32_t id, old = kv->nblk, i;

	if (kv->blk_free == NIL) {
		if (kv_grow((void **)&kv->blk, &kv->nblk, sizeof(*kv->blk),
			    kv->nblk + 1))
			return NIL;
		for (i = kv->nblk; i-- > old;) {
			kv->blk[i].hnext = kv->blk_free;
			kv->blk_free = i;
		}
	}
	id = kv->blk_free;
	kv->blk_free = kv->blk[id].hnext;
	memset(&kv->blk[id], 0, sizeof(kv->blk[id]));
	kv->blk[id].flags = B_USED;
	kv->blk[id].prev = kv->blk[id].next = kv->blk[id].hnext = NIL;
	kv->blk[id].batch = NIL;
	kv->blk[id].tier = kv->blk[id].dst_tier = T_NONE;
	ST_ADD(kv, blocks, 1);
	return id;
}

static uint32_t kv_hash_find(struct llmdev_kv *kv, const uint8_t *h)
{
	uint32_t id = kv->hbuck[kv_hkey(h) & kv->hmask];

	while (id != NIL && memcmp(kv->blk[id].hash, h, LLMDEV_KV_HASH_LEN))
		id = kv->blk[id].hnext;
	return id;
}

static void kv_hash_del(struct llmdev_kv *kv, uint32_t id)
{
	struct kv_block *b = &kv->blk[id];
	uint32_t *p = &kv->hbuck[kv_hkey(b->hash) & kv->hmask];

	if (!(b->flags & B_HASHED))
		return;
	while (*p != id)
		p = &kv->blk[*p].hnext;
	*p = b->hnext;
	b->hnext = NIL;
	b->flags &= ~B_HASHED;
	ST_ADD(kv, hashed, -1);
}

/* Forget a block that no one owns and nothing moves: its slot is free. */
static void kv_block_release(struct llmdev_kv *kv, uint32_t id)
{
	struct kv_block *b = &kv->blk[id];

	kv_lru_del(kv, id);
	kv_hash_del(kv, id);
	if (b->tier != T_NONE) {
		kv_slot_put(kv, b->tier, b->slot);
		kv_used_update(kv, b->tier);
	}
	if (b->flags & B_LOST)
		ST_ADD(kv, lost, -1);
	b->flags = 0;
	b->hnext = kv->blk_free;
	kv->blk_free = id;
	ST_ADD(kv, blocks, -1);
}

/* A cached block (no owner) leaves the pool to make room. */
static void kv_drop(struct llmdev_kv *kv, uint32_t id)
{
	ST_ADD(kv, tier[kv->blk[id].tier].drops, 1);
	ST_ADD(kv, cached, -1);
	kv_block_release(kv, id);
}

/*
 * Block @id's contents are gone. One that no sequence owns (cached) is
 * forgotten at once: nobody would ever free it, and its hash could not be
 * found or set again. Not for a block in flight or held by a call.
 */
static void kv_mark_lost(struct llmdev_kv *kv, uint32_t id)
{
	struct kv_block *b = &kv->blk[id];

	if (!b->refs) {
		ST_ADD(kv, cached, -1);
		kv_block_release(kv, id);
		return;
	}
	kv_lru_del(kv, id);
	if (b->tier != T_NONE) {
		kv_slot_put(kv, b->tier, b->slot);
		kv_used_update(kv, b->tier);
	}
	b->tier = T_NONE;
	b->flags |= B_LOST;
	ST_ADD(kv, lost, 1);
}

/* ---- names: (seq, index) and sequences ------------------------------------- */

static uint32_t kv_sq_find(struct llmdev_kv *kv, uint64_t seq)
{
	uint32_t i = kv->sbuck[kv_mix(seq, 0) & kv->smask];

	while (i != NIL && kv->sqs[i].seq != seq)
		i = kv->sqs[i].next;
	return i;
}

static uint32_t kv_ent_find(struct llmdev_kv *kv, uint64_t seq, uint32_t index)
{
	uint32_t i = kv->ebuck[kv_mix(seq, index) & kv->emask];

	while (i != NIL && (kv->ents[i].seq != seq || kv->ents[i].index != index))
		i = kv->ents[i].next;
	return i;
}

static uint32_t kv_lookup_block(struct llmdev_kv *kv, uint64_t seq,
				uint32_t index)
{
	uint32_t e = kv_ent_find(kv, seq, index);

	return e == NIL ? NIL : kv->ents[e].block;
}

/* Grow a bucket array to @want (a power of two) and rechain. */
static int kv_rehash(uint32_t **buck, uint32_t *mask, uint32_t want)
{
	uint32_t *nb = malloc(sizeof(*nb) * want);

	if (!nb)
		return -ENOMEM;
	memset(nb, 0xff, sizeof(*nb) * want);
	free(*buck);
	*buck = nb;
	*mask = want - 1;
	return 0;
}

static int kv_ent_rehash(struct llmdev_kv *kv)
{
	uint32_t i, *bk;
	int ret;

	ret = kv_rehash(&kv->ebuck, &kv->emask, (kv->emask + 1) * 2);
	if (ret)
		return ret;
	for (i = 0; i < kv->nents; i++) {
		struct kv_ent *e = &kv->ents[i];

		if (e->block == NIL)
			continue;
		bk = &kv->ebuck[kv_mix(e->seq, e->index) & kv->emask];
		e->next = *bk;
		*bk = i;
	}
	return 0;
}

static int kv_sq_rehash(struct llmdev_kv *kv)
{
	uint32_t i, *bk;
	int ret;

	ret = kv_rehash(&kv->sbuck, &kv->smask, (kv->smask + 1) * 2);
	if (ret)
		return ret;
	for (i = 0; i < kv->nsqs; i++) {
		if (!kv->sqs[i].count)
			continue;
		bk = &kv->sbuck[kv_mix(kv->sqs[i].seq, 0) & kv->smask];
		kv->sqs[i].next = *bk;
		*bk = i;
	}
	return 0;
}

/* Name block @id (seq, index); the caller checked that the name is free. */
static int kv_ent_add(struct llmdev_kv *kv, uint64_t seq, uint32_t index,
		      uint32_t id)
{
	uint32_t e, s, old, i, *bk;
	int ret;

	if (kv->ent_used + 1 > kv->emask + 1 && (ret = kv_ent_rehash(kv)))
		return ret;
	if (kv->sq_used + 1 > kv->smask + 1 && (ret = kv_sq_rehash(kv)))
		return ret;
	/* room for the entry first: a new sequence is never left empty */
	if (kv->ent_free == NIL) {
		old = kv->nents;
		if (kv_grow((void **)&kv->ents, &kv->nents, sizeof(*kv->ents),
			    kv->nents + 1))
			return -ENOMEM;
		for (i = kv->nents; i-- > old;) {
			kv->ents[i].block = NIL;
			kv->ents[i].next = kv->ent_free;
			kv->ent_free = i;
		}
	}
	s = kv_sq_find(kv, seq);
	if (s == NIL) {
		if (kv->sq_free == NIL) {
			old = kv->nsqs;
			if (kv_grow((void **)&kv->sqs, &kv->nsqs, sizeof(*kv->sqs),
				    kv->nsqs + 1))
				return -ENOMEM;
			for (i = kv->nsqs; i-- > old;) {
				kv->sqs[i].next = kv->sq_free;
				kv->sq_free = i;
			}
		}
		s = kv->sq_free;
		kv->sq_free = kv->sqs[s].next;
		kv->sqs[s].seq = seq;
		kv->sqs[s].first = NIL;
		kv->sqs[s].count = 0;
		bk = &kv->sbuck[kv_mix(seq, 0) & kv->smask];
		kv->sqs[s].next = *bk;
		*bk = s;
		kv->sq_used++;
		ST_ADD(kv, sequences, 1);
	}
	e = kv->ent_free;
	kv->ent_free = kv->ents[e].next;
	kv->ents[e].seq = seq;
	kv->ents[e].index = index;
	kv->ents[e].block = id;
	kv->ents[e].sq = s;
	bk = &kv->ebuck[kv_mix(seq, index) & kv->emask];
	kv->ents[e].next = *bk;
	*bk = e;
	kv->ents[e].snext = kv->sqs[s].first;
	kv->sqs[s].first = e;
	kv->sqs[s].count++;
	kv->ent_used++;
	return 0;
}

static void kv_ent_del(struct llmdev_kv *kv, uint32_t e)
{
	struct kv_ent *en = &kv->ents[e];
	uint32_t s = en->sq, *p;

	p = &kv->ebuck[kv_mix(en->seq, en->index) & kv->emask];
	while (*p != e)
		p = &kv->ents[*p].next;
	*p = en->next;
	p = &kv->sqs[s].first;
	while (*p != e)
		p = &kv->ents[*p].snext;
	*p = en->snext;
	en->block = NIL;
	en->next = kv->ent_free;
	kv->ent_free = e;
	kv->ent_used--;
	if (--kv->sqs[s].count == 0) {
		p = &kv->sbuck[kv_mix(kv->sqs[s].seq, 0) & kv->smask];
		while (*p != s)
			p = &kv->sqs[*p].next;
		*p = kv->sqs[s].next;
		kv->sqs[s].next = kv->sq_free;
		kv->sq_free = s;
		kv->sq_used--;
		ST_ADD(kv, sequences, -1);
	}
}

/* ---- batches ---------------------------------------------------------------- */

static void kv_failed_note(struct llmdev_kv *kv, const struct kv_batch *bt,
			   int status)
{
	kv->failed[kv->failed_pos].fence = bt->fence;
	kv->failed[kv->failed_pos].move = bt->move;
	kv->failed[kv->failed_pos].status = status;
	kv->failed_pos = (kv->failed_pos + 1) % KV_FAILED_RING;
}

/* A batch ended with @status: move its blocks' books accordingly. */
static void kv_complete(struct llmdev_kv *kv, unsigned int bi, int status)
{
	struct kv_batch *bt = &kv->batch[bi];
	unsigned int from = bt->in ? LLMDEV_KV_HOST : LLMDEV_KV_HBM;
	unsigned int to = bt->in ? LLMDEV_KV_HBM : LLMDEV_KV_HOST;
	uint64_t dt = kv_now() - bt->t0;
	uint32_t i;

	for (i = 0; i < bt->n; i++) {
		uint32_t id = bt->blocks[i];
		struct kv_block *b = &kv->blk[id];

		if (!status) {
			kv_slot_put(kv, from, b->slot);
			b->tier = to;
			b->slot = b->dst_slot;
		} else {
			kv_slot_put(kv, to, b->dst_slot);
		}
		b->dst_tier = T_NONE;
		b->dst_slot = NIL;
		b->batch = NIL;
		b->flags &= ~B_BUSY;
		kv_lru_settle(kv, id);
	}
	kv->outgoing[from] -= bt->n;
	kv_used_update(kv, from);
	kv_used_update(kv, to);
	if (!status) {
		/* out of HBM: only ever an eviction */
		if (!bt->in)
			ST_ADD(kv, tier[from].evictions, bt->n);
		ST_ADD(kv, tier[from].bytes_out, bt->bytes);
		ST_ADD(kv, tier[to].bytes_in, bt->bytes);
		kv_hist_add(&kv->st->tier[to].in, dt);
		kv_hist_add(&kv->st->tier[from].out, dt);
	} else {
		ST_ADD(kv, errors, bt->n);
		kv_failed_note(kv, bt, status);
	}
	free(bt->blocks);
	memset(bt, 0, sizeof(*bt));
}

/*
 * Wait up to @timeout for batch @bi and complete it. Return: the batch's
 * status, -ETIME (still in flight), or the wait's error (then the batch
 * counts as failed with it: the card is gone, or the fence with it).
 */
static int kv_reap(struct llmdev_kv *kv, unsigned int bi, uint64_t timeout)
{
	int ret, status = 0;

	ret = kv->be->wait(kv->be_priv, kv->dev, kv->batch[bi].dev_fence,
			   timeout, &status);
	if (ret == -ETIME)
		return ret;
	if (ret)
		status = ret;
	kv_complete(kv, bi, status);
	return status;
}

/* Complete what has finished, without waiting. */
static void kv_poll(struct llmdev_kv *kv)
{
	unsigned int i;

	for (i = 0; i < KV_MAX_BATCHES; i++)
		if (kv->batch[i].fence)
			kv_reap(kv, i, 0);
}

/* Wait for the batch that moves block @id. */
static int kv_wait_block(struct llmdev_kv *kv, uint32_t id)
{
	int ret;

	if (!(kv->blk[id].flags & B_BUSY))
		return 0;
	ret = kv_reap(kv, kv->blk[id].batch, kv->timeout);
	return ret == -ETIME ? ret : 0;	/* a failed move leaves it in place */
}

/* The oldest batch in flight (optionally: out of HBM only), or -1. */
static int kv_oldest(struct llmdev_kv *kv, bool out_only)
{
	int i, best = -1;

	for (i = 0; i < KV_MAX_BATCHES; i++) {
		if (!kv->batch[i].fence || (out_only && kv->batch[i].in))
			continue;
		if (best < 0 || kv->batch[i].fence < kv->batch[best].fence)
			best = i;
	}
	return best;
}

/* Give back the slots reserved in tier @to for the moves of @ids. */
static void kv_unreserve(struct llmdev_kv *kv, const uint32_t *ids, uint32_t n,
			 unsigned int to)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		kv_slot_put(kv, to, kv->blk[ids[i]].dst_slot);
		kv->blk[ids[i]].dst_slot = NIL;
	}
	kv_used_update(kv, to);
}

/*
 * Queue the moves of @ids (their dst_slot reserved) as one DMA batch:
 * @in host -> HBM, else HBM -> host. Takes @ids (malloc()ed) on success.
 * With @wait (the caller waits for it at once), the batch is queued and
 * waited for in one call where the backend can (its batch_wait);
 * then it may be complete on return, its slot free again. @move: NULL,
 * or the move the batch is part of (0: it is the first batch of it, whose
 * fence names the move from then on).
 * Return: the batch index, or a negative errno (the moves undone).
 */
static int kv_submit(struct llmdev_kv *kv, uint32_t *ids, uint32_t n, bool in,
		     bool wait, uint64_t *move)
{
	unsigned int from = in ? LLMDEV_KV_HOST : LLMDEV_KV_HBM;
	unsigned int to = in ? LLMDEV_KV_HBM : LLMDEV_KV_HOST;
	struct llmdev_dma_op *ops;
	struct kv_batch *bt;
	uint64_t fence = 0;
	int bi, ret, status = 0;
	bool done = false;	/* in the call */
	uint32_t i;

	bi = -1;
	for (i = 0; i < KV_MAX_BATCHES; i++)
		if (!kv->batch[i].fence) {
			bi = i;
			break;
		}
	if (bi < 0) {
		/* full: the oldest has to finish first */
		bi = kv_oldest(kv, false);
		ret = kv_reap(kv, bi, kv->timeout);
		if (ret == -ETIME)
			goto undo;
	}
	ops = calloc(n, sizeof(*ops));
	if (!ops) {
		ret = -ENOMEM;
		goto undo;
	}
	for (i = 0; i < n; i++) {
		struct kv_block *b = &kv->blk[ids[i]];
		uint32_t hslot = in ? b->slot : b->dst_slot;
		uint32_t cslot = in ? b->dst_slot : b->slot;

		ops[i].flags = LLMDEV_OP_BUF | (in ? LLMDEV_OP_TO_CARD : 0);
		ops[i].handle = kv->region;
		ops[i].offset = (uint64_t)cslot * kv->bs;
		ops[i].length = kv->bs;
		ops[i].buf = kv->hostbuf;
		ops[i].buf_offset = (uint64_t)hslot * kv->bs;
	}
	bt = &kv->batch[bi];
	bt->t0 = kv_now();
	if (wait && kv->be->batch_wait) {
		ret = kv->be->batch_wait(kv->be_priv, kv->dev, ops, n, kv->timeout,
					 &fence, &status);
		/*
		 * -ETIME: queued, still running, reaped later. Another error:
		 * nothing was queued, or the card is gone or dead (nothing
		 * more moves), or a fatal signal (the process is dying): the
		 * moves are undone either way.
		 */
		done = !ret;
		if (ret == -ETIME)
			ret = 0;
	} else {
		ret = kv->be->batch(kv->be_priv, kv->dev, ops, n, &fence);
	}
	free(ops);
	if (ret)
		goto undo;
	bt->fence = ++kv->next_fence;
	if (move && !*move)
		*move = bt->fence;
	bt->move = move ? *move : bt->fence;
	bt->dev_fence = fence;
	bt->blocks = ids;
	bt->n = n;
	bt->in = in;
	bt->bytes = (uint64_t)n * kv->bs;
	for (i = 0; i < n; i++) {
		struct kv_block *b = &kv->blk[ids[i]];

		kv_lru_del(kv, ids[i]);
		b->flags |= B_BUSY;
		b->batch = bi;
		b->dst_tier = to;
	}
	kv->outgoing[from] += n;
	if (done)
		kv_complete(kv, bi, status);
	return bi;

undo:
	kv_unreserve(kv, ids, n, to);
	ST_ADD(kv, errors, n);
	return ret;
}

/* Blocks per DMA batch of a move of @n blocks. */
static uint32_t kv_pipe_blocks(uint32_t n)
{
	uint32_t per = (n + KV_PIPE_PARTS - 1) / KV_PIPE_PARTS;

	return per < KV_PIPE_MIN_BLOCKS ? KV_PIPE_MIN_BLOCKS : per;
}

/* DMA batches of a move of @n blocks. */
static uint32_t kv_pipe_count(uint32_t n)
{
	uint32_t per = kv_pipe_blocks(n);

	return (n + per - 1) / per;
}

/*
 * Queue the moves of @ids (their dst_slot reserved; @ids stays the
 * caller's) as DMA batches of kv_pipe_blocks(@n), batch j moving ids
 * j * kv_pipe_blocks(@n) on; their pool fences go to @fences (room for
 * kv_pipe_count(@n)). When one cannot be queued, the moves from it on are
 * undone, the ones queued stay. (A batch may be completed, and its slot
 * reused, before the caller reaps it: kv_reap_fence() knows.) @wait: the
 * caller waits for them right after; a move of one batch is then waited
 * for in the call that queues it. @move: as kv_submit().
 * Return: how many batches were queued; *@err the error that stopped it.
 */
static uint32_t kv_submit_pipe(struct llmdev_kv *kv, const uint32_t *ids,
			       uint32_t n, bool in, bool wait, uint64_t *fences,
			       uint64_t *move, int *err)
{
	uint32_t per = kv_pipe_blocks(n), done, nb = 0, k;

	*err = 0;
	for (done = 0; done < n; done += k) {
		uint32_t *part;
		int bi;

		k = n - done < per ? n - done : per;
		part = malloc(sizeof(*part) * k);
		if (!part) {
			*err = -ENOMEM;
			break;
		}
		memcpy(part, ids + done, sizeof(*part) * k);
		bi = kv_submit(kv, part, k, in, wait && per >= n, move);
		if (bi < 0) {
			free(part);
			*err = bi;
			done += k;	/* kv_submit() undid these */
			break;
		}
		/* its fence (the batch may be complete, its slot free again) */
		fences[nb++] = kv->next_fence;
	}
	if (*err)
		kv_unreserve(kv, ids + done, n - done,
			     in ? LLMDEV_KV_HBM : LLMDEV_KV_HOST);
	return nb;
}

/*
 * Wait for the batch of pool fence @f and complete it, if nobody has.
 * Return: its status (of a batch completed before, as remembered), or -ETIME.
 */
static int kv_reap_fence(struct llmdev_kv *kv, uint64_t f, uint64_t timeout)
{
	unsigned int i;

	for (i = 0; i < KV_MAX_BATCHES; i++)
		if (kv->batch[i].fence == f)
			return kv_reap(kv, i, timeout);
	for (i = 0; i < KV_FAILED_RING; i++)
		if (kv->failed[i].fence == f)
			return kv->failed[i].status;
	return 0;
}

/* ---- disk ------------------------------------------------------------------- */

/*
 * Before a disk round: if someone truncated the file, the blocks beyond
 * its end are lost; give it its length back.
 */
static void kv_disk_check(struct llmdev_kv *kv)
{
	struct stat st;
	uint32_t id;

	if (kv->disk_fd < 0 || fstat(kv->disk_fd, &st) ||
	    (uint64_t)st.st_size >= kv->disk_len)
		return;
	for (id = 0; id < kv->nblk; id++) {
		struct kv_block *b = &kv->blk[id];

		if ((b->flags & B_USED) && b->tier == LLMDEV_KV_DISK &&
		    ((uint64_t)b->slot + 1) * kv->bs > (uint64_t)st.st_size)
			kv_mark_lost(kv, id);
	}
	if (ftruncate(kv->disk_fd, kv->disk_len))
		ST_ADD(kv, errors, 1);
}

static int kv_pio(int fd, bool wr, void *buf, uint64_t len, uint64_t off)
{
	uint64_t done = 0;
	ssize_t n;

	while (done < len) {
		if (wr)
			n = pwrite(fd, (char *)buf + done, len - done, off + done);
		else
			n = pread(fd, (char *)buf + done, len - done, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;	/* end of file: truncated */
		done += n;
	}
	return 0;
}

/* Drop cached blocks of tier @t, least recently used first, to have @k free. */
static void kv_drop_cached(struct llmdev_kv *kv, unsigned int t, uint32_t k)
{
	uint32_t id = kv->head[t], next;

	while (kv->nfree[t] < k && id != NIL) {
		next = kv->blk[id].next;
		if (!kv->blk[id].refs)
			kv_drop(kv, id);
		id = next;
	}
}

/*
 * Move up to @want blocks from host memory to disk (or drop cached ones
 * when the disk has no room). Return: the number that left host memory,
 * or the first disk error when none did.
 */
static int kv_evict_host(struct llmdev_kv *kv, uint32_t want)
{
	uint32_t moved = 0, id, next;
	int err = 0;

	if (kv->nslots[LLMDEV_KV_DISK]) {
		kv_disk_check(kv);
		if (kv->nfree[LLMDEV_KV_DISK] < want)
			kv_drop_cached(kv, LLMDEV_KV_DISK, want);
	}
	id = kv->head[LLMDEV_KV_HOST];
	while (moved < want && id != NIL) {
		struct kv_block *b = &kv->blk[id];
		uint32_t d;
		uint64_t t0;
		int ret;

		next = b->next;
		d = kv_slot_get(kv, LLMDEV_KV_DISK);
		if (d == NIL) {
			if (!b->refs) {
				kv_drop(kv, id);
				moved++;
			}
			id = next;
			continue;
		}
		t0 = kv_now();
		ret = kv_pio(kv->disk_fd, true, kv->host + (uint64_t)b->slot * kv->bs,
			     kv->bs, (uint64_t)d * kv->bs);
		if (ret) {
			kv_slot_put(kv, LLMDEV_KV_DISK, d);
			ST_ADD(kv, errors, 1);
			err = ret;
			break;
		}
		kv_lru_del(kv, id);
		kv_slot_put(kv, LLMDEV_KV_HOST, b->slot);
		b->tier = LLMDEV_KV_DISK;
		b->slot = d;
		kv_lru_settle(kv, id);
		ST_ADD(kv, tier[LLMDEV_KV_HOST].evictions, 1);
		ST_ADD(kv, tier[LLMDEV_KV_HOST].bytes_out, kv->bs);
		ST_ADD(kv, tier[LLMDEV_KV_DISK].bytes_in, kv->bs);
		kv_hist_add(&kv->st->tier[LLMDEV_KV_HOST].out, kv_now() - t0);
		kv_hist_add(&kv->st->tier[LLMDEV_KV_DISK].in, kv_now() - t0);
		moved++;
		id = next;
	}
	kv_used_update(kv, LLMDEV_KV_HOST);
	kv_used_update(kv, LLMDEV_KV_DISK);
	return moved ? (int)moved : err;
}

/* Have @k free host slots if possible. Return: 0, or the error why not. */
static int kv_room_host(struct llmdev_kv *kv, uint32_t k)
{
	uint32_t target;
	int ret;

	if (kv->nfree[LLMDEV_KV_HOST] >= k)
		return 0;
	if (k > kv->nslots[LLMDEV_KV_HOST])
		return -ENOSPC;
	/* down to the low watermark while at it */
	target = kv->nslots[LLMDEV_KV_HOST] - kv->low[1];
	if (target < k)
		target = k;
	target -= kv->nfree[LLMDEV_KV_HOST];
	ret = kv_evict_host(kv, target);
	if (kv->nfree[LLMDEV_KV_HOST] >= k)
		return 0;
	return ret < 0 ? ret : -ENOSPC;
}

/* Read disk block @id into host memory (held there for the caller). */
static int kv_disk_in(struct llmdev_kv *kv, uint32_t id)
{
	struct kv_block *b = &kv->blk[id];
	uint64_t t0;
	uint32_t s;
	int ret;

	kv_disk_check(kv);
	if (b->flags & B_LOST)
		return -EIO;
	ret = kv_room_host(kv, 1);
	if (ret)
		return ret;
	s = kv_slot_get(kv, LLMDEV_KV_HOST);
	t0 = kv_now();
	ret = kv_pio(kv->disk_fd, false, kv->host + (uint64_t)s * kv->bs, kv->bs,
		     (uint64_t)b->slot * kv->bs);
	if (ret) {
		kv_slot_put(kv, LLMDEV_KV_HOST, s);
		ST_ADD(kv, errors, 1);
		kv_mark_lost(kv, id);
		return -EIO;
	}
	kv_lru_del(kv, id);
	kv_slot_put(kv, LLMDEV_KV_DISK, b->slot);
	b->tier = LLMDEV_KV_HOST;
	b->slot = s;
	ST_ADD(kv, tier[LLMDEV_KV_DISK].bytes_out, kv->bs);
	ST_ADD(kv, tier[LLMDEV_KV_HOST].bytes_in, kv->bs);
	kv_hist_add(&kv->st->tier[LLMDEV_KV_HOST].in, kv_now() - t0);
	kv_hist_add(&kv->st->tier[LLMDEV_KV_DISK].out, kv_now() - t0);
	kv_used_update(kv, LLMDEV_KV_HOST);
	kv_used_update(kv, LLMDEV_KV_DISK);
	return 0;
}

/* ---- eviction out of HBM ------------------------------------------------------ */

/*
 * One round: up to @want least recently used unpinned HBM blocks go to
 * host memory in DMA batches (kv_submit_pipe(); cached ones are dropped
 * when host memory has no room). With @wait, the batches are waited for.
 * Return: blocks that left or are leaving HBM (a failed batch's did not),
 * or an error when none did.
 */
static int kv_evict_hbm(struct llmdev_kv *kv, uint32_t want, bool wait)
{
	uint32_t *ids, n = 0, dropped = 0, id, next, room = 0, nb, j, moved;
	uint32_t per;
	uint64_t *fences;
	int ret = 0, err;

	if (want > LLMDEV_BATCH_MAX)
		want = LLMDEV_BATCH_MAX;
	for (id = kv->head[LLMDEV_KV_HBM]; id != NIL && room < want;
	     id = kv->blk[id].next)
		room++;
	if (!room)
		return 0;
	want = room;
	if (kv->nslots[LLMDEV_KV_HOST]) {
		ret = kv_room_host(kv, want);
		if (ret && !kv->nfree[LLMDEV_KV_HOST])
			kv_drop_cached(kv, LLMDEV_KV_HOST, want);
	}
	ids = malloc(sizeof(*ids) * want);
	if (!ids)
		return -ENOMEM;
	for (id = kv->head[LLMDEV_KV_HBM]; id != NIL && n + dropped < want;
	     id = next) {
		struct kv_block *b = &kv->blk[id];
		uint32_t s;

		next = b->next;
		s = kv_slot_get(kv, LLMDEV_KV_HOST);
		if (s == NIL) {
			if (!b->refs) {
				kv_drop(kv, id);
				dropped++;
			}
			continue;
		}
		b->dst_slot = s;
		ids[n++] = id;
	}
	kv_used_update(kv, LLMDEV_KV_HOST);
	if (!n) {
		free(ids);
		return dropped ? (int)dropped : (ret ? ret : -ENOSPC);
	}
	per = kv_pipe_blocks(n);
	fences = malloc(sizeof(*fences) * kv_pipe_count(n));
	if (!fences) {
		kv_unreserve(kv, ids, n, LLMDEV_KV_HOST);
		free(ids);
		return dropped ? (int)dropped : -ENOMEM;
	}
	nb = kv_submit_pipe(kv, ids, n, false, wait, fences, NULL, &err);
	free(ids);
	/* the blocks of the batches queued */
	moved = nb * per < n ? nb * per : n;
	for (j = 0; wait && j < nb; j++) {
		ret = kv_reap_fence(kv, fences[j], kv->timeout);
		if (ret) {
			/* this batch's blocks did not leave (or not yet) */
			moved -= (j + 1) * per < n ? per : n - j * per;
			if (!err)
				err = ret;
		}
	}
	free(fences);
	if (moved + dropped)
		return moved + dropped;
	return err ? err : -ENOSPC;
}

/* Have @k free HBM slots. Return: 0 or why not (-ENOSPC: pool full). */
static int kv_room_hbm(struct llmdev_kv *kv, uint32_t k)
{
	uint32_t target;
	int ret = 0, bi;

	if (kv->nfree[LLMDEV_KV_HBM] >= k)
		return 0;
	kv_poll(kv);
	/* evictions in flight free slots when they end */
	while (kv->nfree[LLMDEV_KV_HBM] < k && (bi = kv_oldest(kv, true)) >= 0) {
		ret = kv_reap(kv, bi, kv->timeout);
		if (ret == -ETIME)
			return ret;
	}
	if (kv->nfree[LLMDEV_KV_HBM] >= k)
		return 0;
	/* down to the low watermark while at it */
	target = kv->nslots[LLMDEV_KV_HBM] - kv->low[0];
	if (target < k)
		target = k;
	target -= kv->nfree[LLMDEV_KV_HBM];
	ret = kv_evict_hbm(kv, target, true);
	if (kv->nfree[LLMDEV_KV_HBM] >= k)
		return 0;
	return ret < 0 ? ret : -ENOSPC;
}

/* After HBM filled up: start a round (not waited for) above the watermark. */
static void kv_watermark(struct llmdev_kv *kv)
{
	uint32_t used = kv->nslots[LLMDEV_KV_HBM] - kv->nfree[LLMDEV_KV_HBM] -
			kv->outgoing[LLMDEV_KV_HBM];

	if (used > kv->high[0] && (kv->nslots[LLMDEV_KV_HOST] ||
				   kv->head[LLMDEV_KV_HBM] != NIL))
		kv_evict_hbm(kv, used - kv->low[0], false);
	used = kv->nslots[LLMDEV_KV_HOST] - kv->nfree[LLMDEV_KV_HOST];
	if (kv->nslots[LLMDEV_KV_DISK] && used > kv->high[1])
		kv_evict_host(kv, used - kv->low[1]);
}

/* ---- the calls ------------------------------------------------------------------ */

static int kv_enter(struct llmdev_kv *kv)
{
	if (!kv)
		return -EINVAL;
	if (getpid() != kv->pid)
		return -ECHILD;
	pthread_mutex_lock(&kv->lock);
	return 0;
}

static int kv_leave(struct llmdev_kv *kv, int ret)
{
	pthread_mutex_unlock(&kv->lock);
	return kv_ret(ret);
}

int llmdev_kv_alloc(struct llmdev_kv *kv, uint64_t seq, uint32_t index)
{
	uint32_t id;
	int ret = kv_enter(kv);

	if (ret)
		return kv_ret(ret);
	kv_poll(kv);
	if (kv_ent_find(kv, seq, index) != NIL)
		return kv_leave(kv, -EEXIST);
	ret = kv_room_hbm(kv, 1);
	if (ret)
		return kv_leave(kv, ret);
	id = kv_block_new(kv);
	if (id == NIL)
		return kv_leave(kv, -ENOMEM);
	kv->blk[id].tier = LLMDEV_KV_HBM;
	kv->blk[id].slot = kv_slot_get(kv, LLMDEV_KV_HBM);
	kv->blk[id].refs = 1;
	ret = kv_ent_add(kv, seq, index, id);
	if (ret) {
		kv_block_release(kv, id);
		return kv_leave(kv, ret);
	}
	kv_used_update(kv, LLMDEV_KV_HBM);
	kv_lru_settle(kv, id);
	kv_watermark(kv);
	return kv_leave(kv, 0);
}

int llmdev_kv_lookup(struct llmdev_kv *kv, const void *hash, uint64_t seq,
		     uint32_t index)
{
	struct kv_block *b;
	uint32_t id;
	int ret;

	if (!hash)
		return kv_err(EINVAL);
	ret = kv_enter(kv);
	if (ret)
		return kv_ret(ret);
	if (kv_ent_find(kv, seq, index) != NIL)
		return kv_leave(kv, -EEXIST);
	id = kv_hash_find(kv, hash);
	if (id == NIL) {
		ST_ADD(kv, lookup_misses, 1);
		return kv_leave(kv, -ENOENT);
	}
	b = &kv->blk[id];
	if (b->flags & B_LOST)
		return kv_leave(kv, -EIO);
	ret = kv_ent_add(kv, seq, index, id);
	if (ret)
		return kv_leave(kv, ret);
	if (!b->refs++)
		ST_ADD(kv, cached, -1);
	ST_ADD(kv, lookup_hits, 1);
	ST_ADD(kv, tier[b->flags & B_BUSY ? b->dst_tier : b->tier].hits, 1);
	if (b->flags & B_LRU) {
		kv_lru_del(kv, id);
		kv_lru_add_tail(kv, id);
	}
	return kv_leave(kv, 0);
}

int llmdev_kv_set_hash(struct llmdev_kv *kv, uint64_t seq, uint32_t index,
		       const void *hash)
{
	struct kv_block *b;
	uint32_t id, other, *bk;
	int ret;

	if (!hash)
		return kv_err(EINVAL);
	ret = kv_enter(kv);
	if (ret)
		return kv_ret(ret);
	id = kv_lookup_block(kv, seq, index);
	if (id == NIL)
		return kv_leave(kv, -ENOENT);
	b = &kv->blk[id];
	if (b->flags & B_HASHED)
		return kv_leave(kv, memcmp(b->hash, hash, LLMDEV_KV_HASH_LEN) ?
				-EEXIST : 0);
	other = kv_hash_find(kv, hash);
	if (other != NIL)
		return kv_leave(kv, -EEXIST);
	memcpy(b->hash, hash, LLMDEV_KV_HASH_LEN);
	bk = &kv->hbuck[kv_hkey(b->hash) & kv->hmask];
	b->hnext = *bk;
	*bk = id;
	b->flags |= B_HASHED;
	ST_ADD(kv, hashed, 1);
	return kv_leave(kv, 0);
}

/* Entry @e lets go of its block. The caller checked it is not pinned. */
static int kv_unref(struct llmdev_kv *kv, uint32_t e)
{
	uint32_t id = kv->ents[e].block;
	struct kv_block *b = &kv->blk[id];
	int ret;

	if (b->refs == 1 && !(b->flags & B_HASHED)) {
		/* its slots are free only once nothing moves it */
		ret = kv_wait_block(kv, id);
		if (ret)
			return ret;
	}
	kv_ent_del(kv, e);
	if (--b->refs)
		return 0;
	if (b->flags & B_HASHED && !(b->flags & B_LOST)) {
		ST_ADD(kv, cached, 1);
		return 0;
	}
	kv_block_release(kv, id);
	return 0;
}

int llmdev_kv_free(struct llmdev_kv *kv, uint64_t seq, uint32_t index)
{
	uint32_t e;
	int ret = kv_enter(kv);

	if (ret)
		return kv_ret(ret);
	e = kv_ent_find(kv, seq, index);
	if (e == NIL)
		return kv_leave(kv, -ENOENT);
	if (kv->blk[kv->ents[e].block].pins)
		return kv_leave(kv, -EBUSY);
	return kv_leave(kv, kv_unref(kv, e));
}

int llmdev_kv_free_seq(struct llmdev_kv *kv, uint64_t seq)
{
	uint32_t s, e;
	int ret = kv_enter(kv), n = 0;

	if (ret)
		return kv_ret(ret);
	s = kv_sq_find(kv, seq);
	if (s == NIL)
		return kv_leave(kv, 0);
	for (e = kv->sqs[s].first; e != NIL; e = kv->ents[e].snext)
		if (kv->blk[kv->ents[e].block].pins)
			return kv_leave(kv, -EBUSY);
	while (kv_sq_find(kv, seq) == s && (e = kv->sqs[s].first) != NIL) {
		ret = kv_unref(kv, e);
		if (ret)
			return kv_leave(kv, ret);
		n++;
	}
	return kv_leave(kv, n);
}

/*
 * Resolve @refs into distinct blocks (B_MARK set on them; the caller
 * clears it with kv_unmark()). *@ids gets @count block ids (NIL-free),
 * *@uniq the distinct ones, *@nu their count.
 */
static int kv_resolve(struct llmdev_kv *kv, const struct llmdev_kv_ref *refs,
		      unsigned int count, uint32_t **ids, uint32_t **uniq,
		      uint32_t *nu)
{
	uint32_t *a, *u, i, n = 0;

	*ids = *uniq = NULL;
	*nu = 0;
	a = malloc(sizeof(*a) * (count ? count : 1));
	u = malloc(sizeof(*u) * (count ? count : 1));
	if (!a || !u) {
		free(a);
		free(u);
		return -ENOMEM;
	}
	for (i = 0; i < count; i++) {
		uint32_t id;

		if (refs[i].__reserved) {
			free(a);
			free(u);
			return -EINVAL;
		}
		id = kv_lookup_block(kv, refs[i].seq, refs[i].index);
		if (id == NIL) {
			free(a);
			free(u);
			return -ENOENT;
		}
		a[i] = id;
	}
	for (i = 0; i < count; i++) {
		if (kv->blk[a[i]].flags & B_MARK)
			continue;
		kv->blk[a[i]].flags |= B_MARK;
		u[n++] = a[i];
	}
	*ids = a;
	*uniq = u;
	*nu = n;
	return 0;
}

static void kv_unmark(struct llmdev_kv *kv, uint32_t *u, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		kv->blk[u[i]].flags &= ~(B_MARK | B_HOLD);
		kv_lru_settle(kv, u[i]);
	}
}

/*
 * Bring the distinct blocks @u into HBM: disk ones read into host memory,
 * then the host ones in DMA batches. With @pin, each is pinned once it is
 * there (all or nothing: on failure the pins taken are given back) and the
 * batches are waited for; without, *@fence gets the last batch's fence.
 */
static int kv_bring_in(struct llmdev_kv *kv, uint32_t *u, uint32_t n, bool pin,
		       uint64_t *fence)
{
	uint32_t i, nin = 0, done, *in = NULL, pinned_now = 0, npinned = 0;
	uint32_t found[LLMDEV_KV_TIERS] = { 0 }, upto = 0, newly = 0, t;
	uint64_t move = 0;	/* a prefetch's: its first batch's fence */
	int ret = 0;

	if (fence)
		*fence = 0;
	/* what is moving now has to arrive first */
	for (i = 0; i < n; i++) {
		ret = kv_wait_block(kv, u[i]);
		if (ret)
			return ret;
	}
	for (i = 0; i < n; i++) {
		struct kv_block *b = &kv->blk[u[i]];

		if (b->flags & B_LOST)
			return -EIO;
		npinned += b->pins ? 0 : 1;
	}
	if (pin && kv->st->tier[LLMDEV_KV_HBM].pinned + npinned >
	    kv->nslots[LLMDEV_KV_HBM])
		return -ENOSPC;
	/*
	 * statistics: where each was found, counted here and added once a
	 * tier (an atomic add each: under TCG, 2000 of them took about as
	 * long as the rest of a swap-in's work before its first batch)
	 */
	for (i = 0; i < n; i++)
		found[kv->blk[u[i]].tier]++;
	for (t = 0; t < LLMDEV_KV_TIERS; t++) {
		upto += found[t];
		if (found[t])
			ST_ADD(kv, tier[t].hits, found[t]);
		if (n - upto)	/* found in a lower tier: a miss here */
			ST_ADD(kv, tier[t].misses, n - upto);
	}
	/* pin (or hold) what is in HBM, so that no room-making moves it */
	for (i = 0; i < n; i++) {
		struct kv_block *b = &kv->blk[u[i]];

		if (b->tier != LLMDEV_KV_HBM)
			continue;
		if (pin) {
			newly += !b->pins++;
			pinned_now++;
		}
		b->flags |= B_HOLD;
		kv_lru_del(kv, u[i]);
	}
	kv_pinned_add(kv, newly);
	in = malloc(sizeof(*in) * (n ? n : 1));
	if (!in) {
		ret = -ENOMEM;
		goto fail;
	}
	/* the others, held in host memory */
	for (i = 0; i < n; i++) {
		struct kv_block *b = &kv->blk[u[i]];

		if (b->tier == LLMDEV_KV_HBM)
			continue;
		/* the disk check of an earlier one's read found it lost */
		if (b->flags & B_LOST) {
			ret = -EIO;
			goto fail;
		}
		b->flags |= B_HOLD;
		kv_lru_del(kv, u[i]);
		if (b->tier == LLMDEV_KV_DISK) {
			ret = kv_disk_in(kv, u[i]);
			if (ret)
				goto fail;
		}
		in[nin++] = u[i];
	}
	for (done = 0; done < nin;) {
		uint32_t chunk = nin - done, k, j, nb, per;
		uint64_t *fences;
		int err;

		if (chunk > LLMDEV_BATCH_MAX)
			chunk = LLMDEV_BATCH_MAX;
		if (chunk > kv->nslots[LLMDEV_KV_HBM])
			chunk = kv->nslots[LLMDEV_KV_HBM];
		ret = kv_room_hbm(kv, chunk);
		if (ret)
			goto fail;
		per = kv_pipe_blocks(chunk);
		fences = malloc(sizeof(*fences) * kv_pipe_count(chunk));
		if (!fences) {
			ret = -ENOMEM;
			goto fail;
		}
		for (k = 0; k < chunk; k++)
			kv->blk[in[done + k]].dst_slot = kv_slot_get(kv, LLMDEV_KV_HBM);
		kv_used_update(kv, LLMDEV_KV_HBM);
		/* all queued first: the card moves one while the next is prepared */
		nb = kv_submit_pipe(kv, in + done, chunk, true, pin, fences,
				    fence ? &move : NULL, &err);
		if (nb && fence)
			*fence = fences[nb - 1];
		for (j = 0; pin && j < nb && !ret; j++) {
			ret = kv_reap_fence(kv, fences[j], kv->timeout);
			for (k = j * per, newly = 0; !ret && k < chunk && k < (j + 1) * per;
			     k++) {
				struct kv_block *b = &kv->blk[in[done + k]];

				if (b->tier != LLMDEV_KV_HBM || (b->flags & B_BUSY)) {
					ret = -EIO;	/* not there after all */
					break;
				}
				newly += !b->pins++;
				pinned_now++;
			}
			kv_pinned_add(kv, newly);
		}
		free(fences);
		if (!ret)
			ret = err;
		if (ret)
			goto fail;
		done += chunk;
	}
	free(in);
	/* a prefetch's fence stands for all of its batches (llmdev_kv_wait()) */
	if (fence && *fence && *fence != move) {
		kv->moves[kv->moves_pos].last = *fence;
		kv->moves[kv->moves_pos].first = move;
		kv->moves_pos = (kv->moves_pos + 1) % KV_FAILED_RING;
	}
	return 0;

fail:
	free(in);
	if (pin) {
		/* give back the pins taken by this call: the first ones in u[] in HBM */
		for (i = 0, newly = 0; i < n && pinned_now; i++) {
			struct kv_block *b = &kv->blk[u[i]];

			if (b->tier != LLMDEV_KV_HBM || !b->pins ||
			    (b->flags & B_BUSY))
				continue;
			/* only blocks this call pinned have B_HOLD and pins */
			if (!(b->flags & B_HOLD))
				continue;
			newly += !--b->pins;
			pinned_now--;
		}
		kv_pinned_add(kv, -(int64_t)newly);
	}
	return ret;
}

static int kv_pin_or_prefetch(struct llmdev_kv *kv,
			      const struct llmdev_kv_ref *refs,
			      unsigned int count, uint64_t *offsets,
			      uint64_t *fence, bool pin)
{
	uint32_t *ids, *u, nu, i;
	int ret;

	if (!refs && count)
		return kv_err(EINVAL);
	ret = kv_enter(kv);
	if (ret)
		return kv_ret(ret);
	kv_poll(kv);
	ret = kv_resolve(kv, refs, count, &ids, &u, &nu);
	if (ret)
		return kv_leave(kv, ret);
	ret = kv_bring_in(kv, u, nu, pin, fence);
	if (!ret && pin) {
		/* one pin per appearance: the first was taken above */
		for (i = 0; i < count; i++) {
			struct kv_block *b = &kv->blk[ids[i]];

			if (b->flags & B_MARK)
				b->flags &= ~B_MARK;
			else
				b->pins++;
		}
	}
	if (!ret && offsets)
		for (i = 0; i < count; i++)
			offsets[i] = (uint64_t)kv->blk[ids[i]].slot * kv->bs;
	kv_unmark(kv, u, nu);
	free(ids);
	free(u);
	if (!pin)
		kv_watermark(kv);
	return kv_leave(kv, ret);
}

int llmdev_kv_pin(struct llmdev_kv *kv, const struct llmdev_kv_ref *refs,
		  unsigned int count, uint64_t *offsets)
{
	return kv_pin_or_prefetch(kv, refs, count, offsets, NULL, true);
}

int llmdev_kv_prefetch(struct llmdev_kv *kv, const struct llmdev_kv_ref *refs,
		       unsigned int count, uint64_t *fence)
{
	uint64_t f;
	int ret;

	ret = kv_pin_or_prefetch(kv, refs, count, NULL, &f, false);
	if (!ret && fence)
		*fence = f;
	return ret;
}

int llmdev_kv_unpin(struct llmdev_kv *kv, const struct llmdev_kv_ref *refs,
		    unsigned int count)
{
	uint32_t *ids, *u, nu, i, unpinned = 0;
	bool counted;
	int ret;

	if (!refs && count)
		return kv_err(EINVAL);
	ret = kv_enter(kv);
	if (ret)
		return kv_ret(ret);
	ret = kv_resolve(kv, refs, count, &ids, &u, &nu);
	if (ret)
		return kv_leave(kv, ret);
	/*
	 * every block must have as many pins as it appears; a block with
	 * none may be moving (a prefetch), its dst_slot taken
	 */
	for (i = 0; i < nu && !ret; i++)
		if (!kv->blk[u[i]].pins)
			ret = -EINVAL;
	counted = !ret;
	for (i = 0; counted && i < nu; i++)
		kv->blk[u[i]].dst_slot = 0;	/* a counter: pinned, not moving */
	for (i = 0; counted && i < count; i++) {
		struct kv_block *b = &kv->blk[ids[i]];

		if (++b->dst_slot > b->pins)
			ret = -EINVAL;
	}
	for (i = 0; i < nu; i++) {
		struct kv_block *b = &kv->blk[u[i]];

		if (!ret) {
			b->pins -= b->dst_slot;
			unpinned += !b->pins;
		}
		if (counted)
			b->dst_slot = NIL;
		/* the most recently used, last to be evicted */
		b->flags &= ~B_MARK;
		kv_lru_settle(kv, u[i]);
	}
	kv_pinned_add(kv, -(int64_t)unpinned);
	free(ids);
	free(u);
	if (!ret)
		kv_watermark(kv);
	return kv_leave(kv, ret);
}

int llmdev_kv_wait(struct llmdev_kv *kv, uint64_t fence, uint64_t timeout_ns)
{
	uint64_t move = fence, at = 0;
	int ret = kv_enter(kv), r, status = 0;
	unsigned int i;

	if (ret)
		return kv_ret(ret);
	if (fence > kv->next_fence)
		return kv_leave(kv, -ENOENT);
	/* this one and every earlier one */
	for (i = 0; i < KV_MAX_BATCHES; i++) {
		if (!kv->batch[i].fence || kv->batch[i].fence > fence)
			continue;
		r = kv_reap(kv, i, timeout_ns);
		if (r == -ETIME)
			return kv_leave(kv, r);
	}
	if (!fence)
		return kv_leave(kv, 0);
	/* the move it stands for: every batch of a prefetch reports to it */
	for (i = 0; i < KV_FAILED_RING; i++)
		if (kv->moves[i].last == fence) {
			move = kv->moves[i].first;
			break;
		}
	/* the first of them that failed */
	for (i = 0; i < KV_FAILED_RING; i++) {
		if (!kv->failed[i].fence ||
		    (kv->failed[i].fence != fence && kv->failed[i].move != move))
			continue;
		if (!at || kv->failed[i].fence < at) {
			at = kv->failed[i].fence;
			status = kv->failed[i].status;
		}
	}
	return kv_leave(kv, status);
}

int llmdev_kv_evict(struct llmdev_kv *kv, unsigned int tier, unsigned int count)
{
	int ret;

	ret = kv_enter(kv);
	if (ret)
		return kv_ret(ret);
	kv_poll(kv);
	if (tier == LLMDEV_KV_HBM && kv->nslots[LLMDEV_KV_HOST])
		ret = count ? kv_evict_hbm(kv, count, true) : 0;
	else if (tier == LLMDEV_KV_HOST && kv->nslots[LLMDEV_KV_DISK])
		ret = count ? kv_evict_host(kv, count) : 0;
	else
		ret = -EINVAL;
	return kv_leave(kv, ret);
}

int llmdev_kv_tier(struct llmdev_kv *kv, uint64_t seq, uint32_t index)
{
	uint32_t id;
	int ret = kv_enter(kv);

	if (ret)
		return kv_ret(ret);
	id = kv_lookup_block(kv, seq, index);
	if (id == NIL)
		return kv_leave(kv, -ENOENT);
	ret = kv_wait_block(kv, id);
	if (ret)
		return kv_leave(kv, ret);
	kv_disk_check(kv);
	if (kv->blk[id].flags & B_LOST)
		return kv_leave(kv, -EIO);
	return kv_leave(kv, kv->blk[id].tier);
}

static int kv_rw(struct llmdev_kv *kv, uint64_t seq, uint32_t index,
		 void *buf, bool wr)
{
	bool rewrite = false;	/* of a lost block */
	struct kv_block *b;
	uint32_t id;
	int ret;

	if (!buf)
		return kv_err(EINVAL);
	ret = kv_enter(kv);
	if (ret)
		return kv_ret(ret);
	id = kv_lookup_block(kv, seq, index);
	if (id == NIL)
		return kv_leave(kv, -ENOENT);
	ret = kv_wait_block(kv, id);
	if (ret)
		return kv_leave(kv, ret);
	b = &kv->blk[id];
	kv_disk_check(kv);
	if (b->flags & B_LOST) {
		if (!wr)
			return kv_leave(kv, -EIO);
		/* whole again: a new home in HBM */
		b->flags |= B_HOLD;
		ret = kv_room_hbm(kv, 1);
		b->flags &= ~B_HOLD;
		if (ret)
			return kv_leave(kv, ret);
		b->tier = LLMDEV_KV_HBM;
		b->slot = kv_slot_get(kv, LLMDEV_KV_HBM);
		b->flags &= ~B_LOST;
		ST_ADD(kv, lost, -1);
		kv_used_update(kv, LLMDEV_KV_HBM);
		kv_lru_settle(kv, id);
		rewrite = true;
	}
	switch (b->tier) {
	case LLMDEV_KV_HBM:
		ret = kv->be->copy(kv->be_priv, kv->dev, kv->region, wr,
				   (uint64_t)b->slot * kv->bs, buf, kv->bs,
				   kv->timeout);
		/* not whole after all: lost as before */
		if (ret && rewrite)
			kv_mark_lost(kv, id);
		break;
	case LLMDEV_KV_HOST:
		if (wr)
			memcpy(kv->host + (uint64_t)b->slot * kv->bs, buf, kv->bs);
		else
			memcpy(buf, kv->host + (uint64_t)b->slot * kv->bs, kv->bs);
		break;
	default:
		if (wr)
			memcpy(kv->bounce, buf, kv->bs);
		ret = kv_pio(kv->disk_fd, wr, kv->bounce, kv->bs,
			     (uint64_t)b->slot * kv->bs);
		if (!ret && !wr)
			memcpy(buf, kv->bounce, kv->bs);
		if (ret == -EIO && !wr) {
			ST_ADD(kv, errors, 1);
			kv_mark_lost(kv, id);
		}
		break;
	}
	return kv_leave(kv, ret);
}

int llmdev_kv_read(struct llmdev_kv *kv, uint64_t seq, uint32_t index, void *buf)
{
	return kv_rw(kv, seq, index, buf, false);
}

int llmdev_kv_write(struct llmdev_kv *kv, uint64_t seq, uint32_t index,
		    const void *buf)
{
	return kv_rw(kv, seq, index, (void *)buf, true);
}

/* ---- statistics ----------------------------------------------------------------- */

#define KV_STATS_V0	offsetofend_kv(struct llmdev_kv_stats, tier)
#define offsetofend_kv(type, member) \
	(offsetof(type, member) + sizeof(((type *)0)->member))

static uint64_t ld(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void kv_stats_fill(const struct kv_shm *sh, struct llmdev_kv_stats *st,
			  size_t size)
{
	struct llmdev_kv_stats s;
	unsigned int t;

	memset(&s, 0, sizeof(s));
	s.size = size;
	s.card = sh->card;
	s.pid = sh->pid;
	memcpy(s.name, sh->name, sizeof(s.name));
	s.name[sizeof(s.name) - 1] = 0;
	s.block_size = ld(&sh->block_size);
	s.sequences = ld(&sh->sequences);
	s.blocks = ld(&sh->blocks);
	s.cached = ld(&sh->cached);
	s.hashed = ld(&sh->hashed);
	s.lookup_hits = ld(&sh->lookup_hits);
	s.lookup_misses = ld(&sh->lookup_misses);
	s.lost = ld(&sh->lost);
	s.errors = ld(&sh->errors);
	for (t = 0; t < LLMDEV_KV_TIERS; t++) {
		const struct kv_shm_tier *x = &sh->tier[t];
		struct llmdev_kv_tier_stats *y = &s.tier[t];

		y->blocks = ld(&x->blocks);
		y->used = ld(&x->used);
		y->pinned = ld(&x->pinned);
		y->hits = ld(&x->hits);
		y->misses = ld(&x->misses);
		y->evictions = ld(&x->evictions);
		y->drops = ld(&x->drops);
		y->bytes_in = ld(&x->bytes_in);
		y->bytes_out = ld(&x->bytes_out);
		y->swap_in = ld(&x->in.count);
		y->swap_in_median_ns = kv_hist_quantile(&x->in, 0.5);
		y->swap_in_p99_ns = kv_hist_quantile(&x->in, 0.99);
		y->swap_out = ld(&x->out.count);
		y->swap_out_median_ns = kv_hist_quantile(&x->out, 0.5);
		y->swap_out_p99_ns = kv_hist_quantile(&x->out, 0.99);
	}
	memcpy(st, &s, size < sizeof(s) ? size : sizeof(s));
	if (size > sizeof(s))
		memset((char *)st + sizeof(s), 0, size - sizeof(s));
}

int llmdev_kv_get_stats(struct llmdev_kv *kv, struct llmdev_kv_stats *st,
			size_t size)
{
	int ret;

	if (!st || size < KV_STATS_V0 || size > UINT32_MAX)
		return kv_err(EINVAL);
	ret = kv_enter(kv);
	if (ret)
		return kv_ret(ret);
	kv_poll(kv);
	kv_stats_fill(kv->st, st, size);
	st->alive = 1;
	return kv_leave(kv, 0);
}

/* /proc/PID/stat field 22, 0 if unknown */
static uint64_t kv_starttime(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long v = 0;
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* fields 3.. follow ") "; 22 is the 20th of them */
	for (i = 0; i < 19 && p; i++)
		p = strchr(p + 1, ' ');
	if (p)
		sscanf(p + 1, "%llu", &v);
	return v;
}

int llmdev_kv_stats_read(const char *path, struct llmdev_kv_stats *st,
			 size_t size)
{
	struct kv_shm *sh;
	uint64_t start;
	struct stat s;
	ssize_t n;
	int fd, ret = 0;

	if (!path || !st || size < KV_STATS_V0 || size > UINT32_MAX)
		return kv_err(EINVAL);
	/*
	 * Anyone may put a file in the directory: no symlink followed, no
	 * FIFO waited on, only a regular file read; and read, not mapped,
	 * so that its owner cannot truncate it under us (SIGBUS).
	 */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return kv_err(errno);
	if (fstat(fd, &s)) {
		ret = -errno;
		close(fd);
		return kv_ret(ret);
	}
	if (!S_ISREG(s.st_mode) || (uint64_t)s.st_size < sizeof(*sh)) {
		close(fd);
		return kv_err(EINVAL);
	}
	sh = malloc(sizeof(*sh));
	if (!sh) {
		close(fd);
		return kv_err(ENOMEM);
	}
	/* the magic first (offset 0): written last, it vouches for the rest */
	n = pread(fd, sh, sizeof(*sh), 0);
	ret = n < 0 ? -errno : 0;
	close(fd);
	if (!ret && ((size_t)n != sizeof(*sh) || sh->magic != KV_SHM_MAGIC ||
		     sh->version != KV_SHM_VERSION || sh->size != sizeof(*sh) ||
		     sh->pid <= 0))
		ret = -EINVAL;
	if (ret) {
		free(sh);
		return kv_ret(ret);
	}
	kv_stats_fill(sh, st, size);
	/* its process, unless the pid was reused (start time unknown: hidepid) */
	start = kv_starttime(sh->pid);
	st->alive = (kill(sh->pid, 0) == 0 || errno == EPERM) &&
		    (!start || !sh->starttime || start == sh->starttime);
	free(sh);
	return 0;
}

static int kv_stats_setup(struct llmdev_kv *kv, const struct llmdev_kv_opts *o)
{
	static unsigned int counter;
	unsigned int tries;
	const char *dir;
	int fd, ret;

	if (o->flags & LLMDEV_KV_NO_STATS_FILE) {
		kv->st = calloc(1, sizeof(*kv->st));
		return kv->st ? 0 : -ENOMEM;
	}
	dir = secure_getenv("LLMDEV_KV_STATS_DIR");
	if (!dir || !*dir)
		dir = LLMDEV_KV_STATS_DIR;
	/*
	 * A new file of our own: one already there, another user's or left
	 * by a dead process that had our pid, is not ours to take (its owner
	 * could truncate it under our mapping); the next name is tried.
	 */
	for (tries = 0;; tries++) {
		if ((size_t)snprintf(kv->st_path, sizeof(kv->st_path), "%s/%s%d.%u",
				     dir, LLMDEV_KV_STATS_PREFIX, (int)getpid(),
				     __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED)) >=
		    sizeof(kv->st_path))
			return -ENAMETOOLONG;
		fd = open(kv->st_path,
			  O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd >= 0 || errno != EEXIST || tries + 1 == KV_STATS_TRIES)
			break;
	}
	if (fd < 0)
		return -errno;
	/* readable by all, whatever the umask: `llmctl kv stats` of an operator */
	if (fchmod(fd, 0644) || ftruncate(fd, sizeof(*kv->st))) {
		ret = -errno;
		close(fd);
		unlink(kv->st_path);
		return ret;
	}
	kv->st = mmap(NULL, sizeof(*kv->st), PROT_READ | PROT_WRITE, MAP_SHARED,
		      fd, 0);
	ret = kv->st == MAP_FAILED ? -errno : 0;
	close(fd);
	if (ret) {
		kv->st = NULL;
		unlink(kv->st_path);
		return ret;
	}
	kv->st_file = true;
	return 0;
}

static void kv_stats_teardown(struct llmdev_kv *kv, bool owner)
{
	if (!kv->st)
		return;
	if (kv->st_file) {
		if (owner)
			unlink(kv->st_path);
		munmap(kv->st, sizeof(*kv->st));
	} else {
		free(kv->st);
	}
	kv->st = NULL;
}

/* ---- the card's backend ------------------------------------------------------------ */

static int kv_dev_setup(void *priv, struct llmdev *dev, uint64_t hbm_len,
			void *host, uint64_t host_len, uint32_t *region,
			uint32_t *hostbuf)
{
	struct llmdev_hbm_alloc a;
	int ret;

	(void)priv;
	ret = llmdev_hbm_alloc(dev, hbm_len, 0, 0, "kv", &a);
	if (ret)
		return ret;
	*region = a.handle;
	if (!host_len)
		return 0;
	ret = llmdev_buf_register(dev, host, host_len, 0, hostbuf);
	if (ret)
		llmdev_hbm_free(dev, a.handle);
	return ret;
}

static void kv_dev_teardown(void *priv, struct llmdev *dev, uint32_t region,
			    uint32_t hostbuf, bool have_host)
{
	(void)priv;
	if (have_host)
		llmdev_buf_unregister(dev, hostbuf);
	llmdev_hbm_free(dev, region);
}

static int kv_dev_batch(void *priv, struct llmdev *dev,
			const struct llmdev_dma_op *ops, unsigned int n,
			uint64_t *fence)
{
	(void)priv;
	return llmdev_dma_batch(dev, ops, n, 0, 0, fence, NULL, NULL);
}

static int kv_dev_wait(void *priv, struct llmdev *dev, uint64_t fence,
		       uint64_t timeout_ns, int *status)
{
	(void)priv;
	return llmdev_fence_wait(dev, fence, timeout_ns, status);
}

/* LLMDEV_BATCH_WAIT came with LLMDEV_DMA_BATCH (libllmdev 1.2): no fallback */
static int kv_dev_batch_wait(void *priv, struct llmdev *dev,
			     const struct llmdev_dma_op *ops, unsigned int n,
			     uint64_t timeout_ns, uint64_t *fence, int *status)
{
	(void)priv;
	return llmdev_dma_batch(dev, ops, n, LLMDEV_BATCH_WAIT, timeout_ns, fence,
				status, NULL);
}

static int kv_dev_copy(void *priv, struct llmdev *dev, uint32_t region,
		       bool to_card, uint64_t off, void *buf, uint64_t len,
		       uint64_t timeout_ns)
{
	(void)priv;
	if (to_card)
		return llmdev_copy_to_hbm(dev, region, off, buf, len, timeout_ns);
	return llmdev_copy_from_hbm(dev, region, off, buf, len, timeout_ns);
}

static const struct kv_backend kv_dev_backend = {
	.setup = kv_dev_setup,
	.teardown = kv_dev_teardown,
	.batch = kv_dev_batch,
	.wait = kv_dev_wait,
	.batch_wait = kv_dev_batch_wait,
	.copy = kv_dev_copy,
};

/* ---- create and destroy ------------------------------------------------------------ */

#define KV_OPTS_V0	offsetofend_kv(struct llmdev_kv_opts, name)

/* The disk tier's file: O_DIRECT, locked, preallocated. */
static int kv_disk_open(struct llmdev_kv *kv, const char *path)
{
	struct rlimit rl;
	int fd, ret;

	fd = open(path, O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600);
	if (fd < 0)
		/* tmpfs (before Linux 6.6) and others refuse O_DIRECT */
		return errno == EINVAL ? -EOPNOTSUPP : -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	/*
	 * Over RLIMIT_FSIZE, fallocate() and the writes would raise SIGXFSZ,
	 * which ends the process unless it is ignored: say -EFBIG instead
	 */
	if (!getrlimit(RLIMIT_FSIZE, &rl) && rl.rlim_cur != RLIM_INFINITY &&
	    kv->disk_len > rl.rlim_cur) {
		close(fd);
		return -EFBIG;
	}
	ret = fallocate(fd, 0, 0, kv->disk_len) ? -errno : 0;
	if (ret == -EOPNOTSUPP) {
		/*
		 * No preallocation here (ext2, say): a sparse file, but only
		 * when the file system has the room for all of it now
		 */
		struct statvfs sv;
		struct stat st;

		if (fstatvfs(fd, &sv) || fstat(fd, &st))
			ret = -errno;
		else if ((uint64_t)sv.f_bavail * sv.f_frsize +
			 (uint64_t)st.st_blocks * 512 < kv->disk_len)
			ret = -ENOSPC;
		else
			ret = ftruncate(fd, kv->disk_len) ? -errno : 0;
	}
	if (ret) {
		close(fd);
		return ret;
	}
	kv->disk_fd = fd;
	return 0;
}

static int kv_reopen(struct llmdev *dev, struct llmdev **own)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", llmdev_fd(dev));
	return llmdev_open_path(path, own);
}

static unsigned int kv_pct(unsigned int v, unsigned int dflt)
{
	return v ? v : dflt;
}

/*
 * Every pool of the process, for fork(). The child's copy of a pool must
 * not be taken while another thread of the parent is half way through
 * changing it (llmdev_kv_destroy() in the child frees that copy: a pointer
 * realloc() had just freed would be freed twice), so fork() waits until no
 * call is inside any pool. And the child must not keep the pool's files:
 * the disk file's lock (flock() belongs to the open file, which the child
 * shares) and the pool's own device file (the driver ends the batches
 * left to it when the last reference goes).
 */
static pthread_mutex_t kv_all_lock = PTHREAD_MUTEX_INITIALIZER;
static struct llmdev_kv *kv_all;
static pthread_once_t kv_atfork_once = PTHREAD_ONCE_INIT;

static void kv_atfork_prepare(void)
{
	struct llmdev_kv *kv;

	pthread_mutex_lock(&kv_all_lock);
	for (kv = kv_all; kv; kv = kv->all_next)
		pthread_mutex_lock(&kv->lock);
}

static void kv_atfork_parent(void)
{
	struct llmdev_kv *kv;

	for (kv = kv_all; kv; kv = kv->all_next)
		pthread_mutex_unlock(&kv->lock);
	pthread_mutex_unlock(&kv_all_lock);
}

/* the child: the same, once the pools' files are closed */
static void kv_atfork_child(void)
{
	struct llmdev_kv *kv;
	int null;

	for (kv = kv_all; kv; kv = kv->all_next) {
		if (kv->disk_fd >= 0) {
			close(kv->disk_fd);
			kv->disk_fd = -1;
		}
		/*
		 * The handle's descriptor now names /dev/null, which
		 * llmdev_kv_destroy() closes in the child (only async-signal-
		 * safe calls here)
		 */
		null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (kv->dev && null >= 0)
			dup3(null, llmdev_fd(kv->dev), O_CLOEXEC);
		if (null >= 0)
			close(null);
	}
	kv_atfork_parent();
}

static void kv_atfork_register(void)
{
	pthread_atfork(kv_atfork_prepare, kv_atfork_parent, kv_atfork_child);
}

static void kv_all_add(struct llmdev_kv *kv)
{
	pthread_once(&kv_atfork_once, kv_atfork_register);
	pthread_mutex_lock(&kv_all_lock);
	kv->all_next = kv_all;
	kv_all = kv;
	pthread_mutex_unlock(&kv_all_lock);
}

/* Take a pool out of kv_all, if it is there (a process has few pools). */
static void kv_all_del(struct llmdev_kv *kv)
{
	struct llmdev_kv **pp;

	pthread_mutex_lock(&kv_all_lock);
	for (pp = &kv_all; *pp; pp = &(*pp)->all_next) {
		if (*pp == kv) {
			*pp = kv->all_next;
			break;
		}
	}
	pthread_mutex_unlock(&kv_all_lock);
}

int llmdev__kv_create_backend(struct llmdev *dev, const struct llmdev_kv_opts *opts,
		      const struct kv_backend *be, void *priv,
		      struct llmdev_kv **kvp)
{
	struct llmdev_kv_opts o;
	struct llmdev_kv *kv;
	const char *name;
	unsigned int t, hh, hl, sh, sl;
	size_t i;
	int ret;

	if (!opts || !kvp || opts->sz < KV_OPTS_V0)
		return kv_err(EINVAL);
	for (i = sizeof(o); i < opts->sz; i++)
		if (((const char *)opts)[i])
			return kv_err(E2BIG);
	memset(&o, 0, sizeof(o));
	memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	name = o.name ? o.name : "kv";
	hh = kv_pct(o.hbm_high_pct, 90);
	hl = kv_pct(o.hbm_low_pct, 75);
	sh = kv_pct(o.host_high_pct, 90);
	sl = kv_pct(o.host_low_pct, 75);
	if ((o.flags & ~LLMDEV_KV_NO_STATS_FILE) || !o.block_size ||
	    o.block_size % 4096 || o.block_size > LLMDEV_DMA_MAX_LENGTH ||
	    !o.hbm_blocks || o.hbm_blocks >= NIL || o.host_blocks >= NIL ||
	    o.disk_blocks >= NIL || (o.disk_blocks && !o.host_blocks) ||
	    (o.disk_blocks && !o.disk_path) || (!o.disk_blocks && o.disk_path) ||
	    hh > 100 || sh > 100 || hl >= hh || sl >= sh ||
	    strlen(name) >= LLMDEV_KV_NAME_LEN ||
	    o.hbm_blocks > UINT64_MAX / o.block_size ||
	    o.host_blocks * (unsigned __int128)o.block_size > LLMDEV_BUF_MAX_LENGTH ||
	    o.disk_blocks > (uint64_t)INT64_MAX / o.block_size)
		return kv_err(EINVAL);

	kv = calloc(1, sizeof(*kv));
	if (!kv)
		return kv_err(ENOMEM);
	pthread_mutex_init(&kv->lock, NULL);
	kv->pid = getpid();
	kv->be = be;
	kv->be_priv = priv;
	kv->bs = o.block_size;
	kv->timeout = o.timeout_ns ? o.timeout_ns : KV_DEFAULT_TIMEOUT;
	kv->disk_fd = -1;
	kv->card = -1;
	kv->host = MAP_FAILED;
	kv->blk_free = kv->ent_free = kv->sq_free = NIL;
	kv->nslots[LLMDEV_KV_HBM] = o.hbm_blocks;
	kv->nslots[LLMDEV_KV_HOST] = o.host_blocks;
	kv->nslots[LLMDEV_KV_DISK] = o.disk_blocks;
	kv->high[0] = (uint64_t)o.hbm_blocks * hh / 100;
	kv->low[0] = (uint64_t)o.hbm_blocks * hl / 100;
	kv->high[1] = (uint64_t)o.host_blocks * sh / 100;
	kv->low[1] = (uint64_t)o.host_blocks * sl / 100;
	for (t = 0; t < LLMDEV_KV_TIERS; t++) {
		uint32_t s;

		kv->head[t] = kv->tail[t] = NIL;
		kv->freel[t] = malloc(sizeof(uint32_t) * (kv->nslots[t] ? kv->nslots[t] : 1));
		if (!kv->freel[t]) {
			ret = -ENOMEM;
			goto err;
		}
		/* slot 0 on top */
		for (s = kv->nslots[t]; s-- > 0;)
			kv->freel[t][kv->nfree[t]++] = s;
	}
	ret = kv_rehash(&kv->hbuck, &kv->hmask, 1024);
	if (!ret)
		ret = kv_rehash(&kv->ebuck, &kv->emask, 1024);
	if (!ret)
		ret = kv_rehash(&kv->sbuck, &kv->smask, 256);
	if (ret)
		goto err;
	while (kv->hmask + 1 < kv->nslots[0] + kv->nslots[1] + kv->nslots[2] &&
	       kv->hmask < (1U << 30)) {
		ret = kv_rehash(&kv->hbuck, &kv->hmask, (kv->hmask + 1) * 2);
		if (ret)
			goto err;
	}
	ret = posix_memalign(&kv->bounce, 4096, kv->bs);
	if (ret) {
		kv->bounce = NULL;
		ret = -ret;
		goto err;
	}
	if (dev) {
		ret = kv_reopen(dev, &kv->dev);
		if (ret)
			goto err;
		sscanf(llmdev_name(kv->dev), "llmdev%d", &kv->card);
	}
	ret = kv_stats_setup(kv, &o);
	if (ret)
		goto err;
	kv->st->version = KV_SHM_VERSION;
	kv->st->size = sizeof(*kv->st);
	kv->st->pid = kv->pid;
	kv->st->card = kv->card;
	kv->st->starttime = kv_starttime(kv->pid);
	snprintf(kv->st->name, sizeof(kv->st->name), "%s", name);
	kv->st->block_size = kv->bs;
	for (t = 0; t < LLMDEV_KV_TIERS; t++)
		kv->st->tier[t].blocks = kv->nslots[t];
	/* last: a reader that sees it sees the rest (llmdev_kv_stats_read()) */
	__atomic_store_n(&kv->st->magic, KV_SHM_MAGIC, __ATOMIC_RELEASE);

	if (o.host_blocks) {
		kv->host_len = o.host_blocks * o.block_size;
		kv->host = mmap(NULL, kv->host_len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (kv->host == MAP_FAILED) {
			ret = -errno;
			goto err;
		}
		/* a child does not need it, nor its pinning copied */
		madvise(kv->host, kv->host_len, MADV_DONTFORK);
		/*
		 * Huge pages where the system gives them on request: a block
		 * is then one run of memory for the card, not one a page.
		 */
		madvise(kv->host, kv->host_len, MADV_HUGEPAGE);
	}
	if (o.disk_blocks) {
		kv->disk_len = o.disk_blocks * o.block_size;
		ret = kv_disk_open(kv, o.disk_path);
		if (ret)
			goto err;
	}
	ret = be->setup(priv, kv->dev, o.hbm_blocks * o.block_size,
			kv->host_len ? kv->host : NULL, kv->host_len,
			&kv->region, &kv->hostbuf);
	if (ret)
		goto err;
	kv_all_add(kv);
	*kvp = kv;
	return 0;

err:
	kv->pid = 0;	/* nothing of the card's to free */
	llmdev_kv_destroy(kv);
	return kv_err(-ret);
}

int llmdev_kv_create(struct llmdev *dev, const struct llmdev_kv_opts *opts,
		     struct llmdev_kv **kvp)
{
	if (!dev)
		return kv_err(EINVAL);
	return llmdev__kv_create_backend(dev, opts, &kv_dev_backend, NULL, kvp);
}

void llmdev_kv_destroy(struct llmdev_kv *kv)
{
	bool owner;
	unsigned int i;
	int e = errno;

	if (!kv)
		return;
	kv_all_del(kv);
	owner = kv->pid == getpid();
	if (owner) {
		pthread_mutex_lock(&kv->lock);
		for (i = 0; i < KV_MAX_BATCHES; i++)
			if (kv->batch[i].fence && kv_reap(kv, i, kv->timeout) == -ETIME)
				free(kv->batch[i].blocks);	/* left to the driver */
		kv->be->teardown(kv->be_priv, kv->dev, kv->region, kv->hostbuf,
				 kv->host_len != 0);
		pthread_mutex_unlock(&kv->lock);
	} else {
		for (i = 0; i < KV_MAX_BATCHES; i++)
			free(kv->batch[i].blocks);
	}
	/* a forked child has no host tier (MADV_DONTFORK) */
	if (kv->host != MAP_FAILED && (owner || kv->pid == 0))
		munmap(kv->host, kv->host_len);
	if (kv->disk_fd >= 0)
		close(kv->disk_fd);
	kv_stats_teardown(kv, owner || kv->pid == 0);
	llmdev_close(kv->dev);
	for (i = 0; i < LLMDEV_KV_TIERS; i++)
		free(kv->freel[i]);
	free(kv->blk);
	free(kv->hbuck);
	free(kv->ents);
	free(kv->ebuck);
	free(kv->sqs);
	free(kv->sbuck);
	free(kv->bounce);
	pthread_mutex_destroy(&kv->lock);
	free(kv);
	errno = e;
}

struct llmdev *llmdev_kv_dev(struct llmdev_kv *kv)
{
	if (!kv) {
		errno = EINVAL;
		return NULL;
	}
	/* a forked child's copy of the handle is not the card's (/dev/null) */
	if (getpid() != kv->pid) {
		errno = ECHILD;
		return NULL;
	}
	return kv->dev;
}

int llmdev_kv_info(struct llmdev_kv *kv, struct llmdev_kv_info *info)
{
	unsigned int t;
	int ret;

	if (!info)
		return kv_err(EINVAL);
	ret = kv_enter(kv);
	if (ret)
		return kv_ret(ret);
	memset(info, 0, sizeof(*info));
	info->block_size = kv->bs;
	for (t = 0; t < LLMDEV_KV_TIERS; t++)
		info->blocks[t] = kv->nslots[t];
	info->region = kv->region;
	if (kv->st_file)
		snprintf(info->stats_path, sizeof(info->stats_path), "%s",
			 kv->st_path);
	return kv_leave(kv, 0);
}

void *llmdev__kv_host_mem(struct llmdev_kv *kv)
{
	return kv->host == MAP_FAILED ? NULL : kv->host;
}
