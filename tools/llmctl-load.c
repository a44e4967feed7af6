// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl load MODEL / unload MODEL: a GGUF model's shards into persistent
 * regions of the cards (one per card, named after the model, its stage
 * and its tensor-parallel rank: docs/llmctl.md), and out again. The plan
 * comes from tools/shard.c through make_plan() (llmctl-common.c).
 *
 * How load moves the bytes (the schedule is tools/load-sched.c):
 *
 *  - the file is read once, in ascending order, in aligned chunks of up
 *    to LOAD_CHUNK bytes, with O_DIRECT when the file system takes it
 *    (no copy through the page cache: under TCG a guest's copy runs at a
 *    fraction of what its O_DIRECT reads do), otherwise through the page
 *    cache. A reader thread reads ahead into LOAD_NBUF staging buffers
 *    while the main thread hands the full ones to the cards.
 *  - the staging buffers are registered (LLMDEV_BUF_REGISTER) on the
 *    handle of every card being loaded, so transfers pin nothing; for
 *    each chunk every card gets one batch (LLMDEV_DMA_BATCH) of the
 *    ranges it needs from that chunk, straight from the staging buffer:
 *    a bytes of the file needed by several cards is read once and sent to
 *    each, and a column slice (a strided range of rows) is gathered by the
 *    card's DMA, not copied together by the CPU: its rows within one
 *    chunk are one transfer of rows (LLMDEV_OP_ROWS), or one transfer per
 *    row with a driver older than that.
 *  - registered buffers count against RLIMIT_MEMLOCK (without
 *    CAP_IPC_LOCK): when the limit does not allow them, the buffers are
 *    made smaller, down to LOAD_MIN_CHUNK; below that they are not
 *    registered and each batch pins what it uses (the driver does that
 *    per transfer, without charging RLIMIT_MEMLOCK).
 *  - the schedule is made once the staging buffers are set up, for their
 *    size (a strided range per column slice: 0.01 s under TCG). The
 *    32 MiB of buffers are faulted in (the kernel zeroes them: 0.02-0.05
 *    s under TCG) by a thread of their own while the header is read, the
 *    cards opened and the plan made; registering them on 4 cards takes
 *    under 0.01 s.
 *  - the padding between pieces is written with zeros from a small zero
 *    buffer; --verify and the JSON's checksums read the regions back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "gguf.h"
#include "llmctl.h"
#include "load-sched.h"

#define LOAD_CHUNK	(8u << 20)	/* a staging buffer, one read */
#define LOAD_MIN_CHUNK	(64u << 10)	/* the smallest registered one */
#define LOAD_NBUF	4		/* reads run ahead of DMA by up to 3 */
#define LOAD_ALIGN	4096u		/* of O_DIRECT reads, at least */
#define LOAD_ZERO	4096u		/* the zero buffer for padding */
#define LOAD_HUGE	(2u << 20)	/* staging is aligned to huge pages */
#define LOAD_TIMEOUT_NS	(60ull * 1000000000)

/* ---- reading the file ----------------------------------------------------- */

/*
 * The model file, read with O_DIRECT when the file system takes it. Reads
 * are of aligned offsets and lengths into aligned memory (what O_DIRECT
 * needs); without O_DIRECT the same reads go through the page cache.
 */
struct freader {
	const char *path;
	int fd;
	bool direct;		/* reads use O_DIRECT (now) */
	bool fell_back;		/* O_DIRECT was refused by a read: buffered since */
	int refused;		/* the errno that refused O_DIRECT, 0 if none */
	uint64_t align;		/* of offsets and lengths */
	uint64_t fallback_off;	/* the read that refused O_DIRECT */
	uint64_t bytes;		/* read so far */
};

/*
 * The file that was checked and planned (@fd, gguf_fd()), opened again
 * through /proc, with O_DIRECT where its file system takes it: not @path,
 * which may name another file by now (a download renamed over it). Without
 * /proc, a duplicate of @fd, through the page cache.
 */
static int freader_open(struct freader *r, const char *path, int fd)
{
	char self[40];
	struct stat st;

	memset(r, 0, sizeof(*r));
	r->path = path;
	r->align = LOAD_ALIGN;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	r->fd = open(self, O_RDONLY | O_CLOEXEC | O_DIRECT);
	if (r->fd >= 0) {
		r->direct = true;
	} else {
		/* EINVAL: the file system does not do O_DIRECT (tmpfs, ...) */
		if (errno != EINVAL && errno != ENOENT)
			return -errno;
		/* ENOENT: no /proc to open the checked file again with O_DIRECT */
		r->refused = errno;
		r->fd = open(self, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0 && errno == ENOENT)
			r->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (r->fd < 0)
			return -errno;
	}
	if (!fstat(r->fd, &st) && S_ISBLK(st.st_mode)) {
		int lbs = 0;

		if (!ioctl(r->fd, BLKSSZGET, &lbs) && lbs > 0 && (uint64_t)lbs > r->align &&
		    !(lbs & (lbs - 1)))
			r->align = lbs;
	}
#ifdef STATX_DIOALIGN
	{
		struct statx sx;

		/* where the kernel says what O_DIRECT needs of this file */
		if (r->direct && !statx(r->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) &&
		    (sx.stx_mask & STATX_DIOALIGN)) {
			if (!sx.stx_dio_offset_align) {
				r->refused = EOPNOTSUPP;
				r->direct = false;
				if (fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) & ~O_DIRECT))
					return -errno;
			} else if (sx.stx_dio_offset_align > r->align ||
				   sx.stx_dio_mem_align > r->align) {
				r->align = sx.stx_dio_offset_align > sx.stx_dio_mem_align ?
					   sx.stx_dio_offset_align : sx.stx_dio_mem_align;
			}
		}
	}
#endif
	if (r->align > LOAD_HUGE) {	/* no file system asks that much */
		r->refused = EINVAL;
		r->direct = false;
		r->align = LOAD_ALIGN;
		if (fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) & ~O_DIRECT))
			return -errno;
	}
	if (!r->direct)
		posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return 0;
}

/*
 * Read [@off, @off + @len) into @buf (both aligned, @len too): the bytes
 * read, fewer only at the end of the file, or a negative errno. A read
 * that O_DIRECT refuses (EINVAL) is done again, and the rest too, through
 * the page cache.
 */
static int64_t freader_read(struct freader *r, void *buf, uint64_t off, uint64_t len)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t n = pread(r->fd, (uint8_t *)buf + done, len - done, off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && r->direct) {
			if (fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) & ~O_DIRECT))
				return -errno;
			r->direct = false;
			r->fell_back = true;
			r->refused = EINVAL;
			r->fallback_off = off + done;
			continue;
		}
		if (n < 0)
			return -errno;
		if (!n)
			break;
		done += n;
	}
	r->bytes += done;
	return done;
}

/* ---- staging buffers -------------------------------------------------------- */

/* Start @fn(@arg) in a thread of its own, which leaves signals (^C) to this one. */
static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = -pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

/*
 * LOAD_NBUF staging buffers of @chunk bytes and a zero buffer, in one
 * mapping aligned to huge pages (fewer, longer DMA segments), registered
 * on the handle of every card that is loaded, or not at all.
 */
struct staging {
	void *raw;		/* the mapping, for munmap() */
	size_t raw_len;
	uint8_t *base;		/* its first huge page boundary */
	uint8_t *mem[LOAD_NBUF];
	uint8_t *zero;		/* LOAD_ZERO zeros */
	uint64_t chunk;		/* bytes of each buffer */
	bool registered;
	int reg_err;		/* why LOAD_CHUNK buffers could not be registered */
	uint64_t reg_chunk;	/* the smallest size tried */
	uint32_t (*ids)[LOAD_NBUF + 1];	/* per card: the buffers' ids, the zero one last */
	unsigned int n_cards;
	pthread_t toucher;	/* staging_touch(), while touching */
	bool touching;
};

/* buffers of @chunk bytes from the base, the zero buffer after them */
static void staging_layout(struct staging *st, uint64_t chunk)
{
	unsigned int k;

	for (k = 0; k < LOAD_NBUF; k++)
		st->mem[k] = st->base + k * chunk;
	st->zero = st->base + LOAD_NBUF * chunk;
	st->chunk = chunk;
}

static void staging_unregister(struct staging *st, struct llmdev **devs)
{
	unsigned int i, k;

	for (i = 0; st->ids && i < st->n_cards; i++)
		for (k = 0; k <= LOAD_NBUF; k++)
			if (st->ids[i][k]) {
				llmdev_buf_unregister(devs[i], st->ids[i][k]);
				st->ids[i][k] = 0;
			}
	st->registered = false;
}

/* Register every buffer, of @chunk bytes, on each card in @load. */
static int staging_register(struct staging *st, struct llmdev **devs, const bool *load,
			    uint64_t chunk)
{
	unsigned int i, k;
	int ret = 0;

	staging_layout(st, chunk);
	/*
	 * Read-only: the cards only read them. That pins nothing for writing,
	 * so any number of cards can share the pages (a writable buffer's are
	 * in LLMDEV_BUF_MAX_SHARE at most), and registering and unregistering
	 * is cheaper. staging_touch() wrote every page first, so what is
	 * pinned is the memory the reads fill.
	 */
	for (i = 0; i < st->n_cards && !ret; i++)
		for (k = 0; load[i] && k <= LOAD_NBUF && !ret; k++)
			ret = llmdev_buf_register(devs[i], k < LOAD_NBUF ? st->mem[k] : st->zero,
						  k < LOAD_NBUF ? chunk : LOAD_ZERO,
						  LLMDEV_BUF_READ_ONLY, &st->ids[i][k]);
	if (ret)
		staging_unregister(st, devs);
	else
		st->registered = true;
	return ret;
}

/*
 * Fault every page in for writing before it is pinned read-only: a page
 * never written is the shared zero page, which a read-only pin would hold
 * on to while the reads went to a new one. The kernel zeroes each page
 * as it comes: for 32 MiB, about as long as reading the model's header,
 * opening the cards and planning take, which is what it runs beside.
 */
static void *staging_touch(void *arg)
{
	struct staging *st = arg;
	uint8_t *p;

	for (p = st->base; p < st->base + (size_t)LOAD_NBUF * LOAD_CHUNK + LOAD_ZERO;
	     p += 4096)
		*(volatile uint8_t *)p = 0;
	return NULL;
}

static void staging_touched(struct staging *st)
{
	if (st->touching)
		pthread_join(st->toucher, NULL);
	st->touching = false;
}

/*
 * Map the buffers and start faulting them in, in a thread of their own
 * (here, if none can be started). Return: 0, or -ENOMEM (message printed).
 */
static int staging_map(struct staging *st)
{
	memset(st, 0, sizeof(*st));
	st->raw_len = (size_t)LOAD_NBUF * LOAD_CHUNK + LOAD_ZERO + LOAD_HUGE;
	st->raw = mmap(NULL, st->raw_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (st->raw == MAP_FAILED) {
		st->raw = NULL;
		msg("out of memory for staging buffers");
		return -ENOMEM;
	}
	/* huge pages: fewer, longer DMA segments (the slack covers the alignment) */
	st->base = (uint8_t *)(((uintptr_t)st->raw + LOAD_HUGE - 1) &
			       ~(uintptr_t)(LOAD_HUGE - 1));
	madvise(st->base, (size_t)LOAD_NBUF * LOAD_CHUNK, MADV_HUGEPAGE);
	staging_layout(st, LOAD_CHUNK);
	st->touching = !start_thread(&st->toucher, staging_touch, st);
	if (!st->touching)
		staging_touch(st);
	return 0;
}

/*
 * Register the buffers staging_map() made on the cards in @load (if any),
 * as large as RLIMIT_MEMLOCK allows but at least @min bytes each; if even
 * that fails, leave them unregistered, LOAD_CHUNK bytes each (reg_err
 * says why). Return: 0, or -ENOMEM (message printed).
 */
static int staging_setup(struct staging *st, unsigned int n_cards, struct llmdev **devs,
			 const bool *load, uint64_t min)
{
	bool any = false;
	uint64_t chunk;
	unsigned int i;

	st->n_cards = n_cards;
	st->ids = calloc(n_cards, sizeof(*st->ids));
	if (!st->ids) {
		msg("out of memory for staging buffers");
		return -ENOMEM;
	}
	staging_touched(st);
	for (i = 0; i < n_cards; i++)
		any |= load[i];
	for (chunk = LOAD_CHUNK; any; chunk /= 2) {
		int ret = staging_register(st, devs, load, chunk);

		st->reg_chunk = chunk;
		if (!ret)
			return 0;
		if (chunk == LOAD_CHUNK)
			st->reg_err = ret;
		/* -ENOMEM is RLIMIT_MEMLOCK (or memory): try smaller */
		if (ret != -ENOMEM || chunk / 2 < min)
			break;
	}
	staging_layout(st, LOAD_CHUNK);
	return 0;
}

static void staging_free(struct staging *st, struct llmdev **devs)
{
	staging_touched(st);
	staging_unregister(st, devs);
	if (st->raw)
		munmap(st->raw, st->raw_len);
	free(st->ids);
	memset(st, 0, sizeof(*st));
}

/* ---- the pipeline ------------------------------------------------------------ */

/* a batch in flight */
struct inflight {
	uint32_t card;
	uint64_t fence;
	bool done;
};

/* the batches of one staging buffer's chunk */
struct slot {
	struct inflight *b;
	size_t n, cap;
	int err;	/* the first error of a batch done, until all are */
};

/*
 * The reader thread fills chunk k into buffer k % LOAD_NBUF once chunk
 * k - LOAD_NBUF is done with (its batches finished); the main thread
 * sends each chunk when it is filled.
 */
struct pipeline {
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* filled, freed, err, abort or reader_waiting changed */
	size_t filled;		/* chunks [0, filled) are read */
	size_t freed;		/* chunks [0, freed) are done with: buffers free */
	int err;		/* the reader's error (with err_chunk) */
	size_t err_chunk;
	bool abort;		/* the main thread gave up */
	bool reader_waiting;	/* for a buffer */
	double t_read;		/* the reader's time in read(), seconds */
	/* read-only while the reader runs */
	const struct load_sched *s;
	struct freader *fr;
	struct staging *st;
};

static void *reader_main(void *arg)
{
	struct pipeline *pl = arg;
	size_t k;

	for (k = 0; k < pl->s->n_chunks; k++) {
		const struct sched_chunk *c = &pl->s->chunks[k];
		int64_t got;
		double t;
		int err = 0;

		pthread_mutex_lock(&pl->lock);
		while (!pl->abort && k >= pl->freed + LOAD_NBUF) {
			pl->reader_waiting = true;
			pthread_cond_broadcast(&pl->cond);
			pthread_cond_wait(&pl->cond, &pl->lock);
		}
		pl->reader_waiting = false;
		if (pl->abort) {
			pthread_mutex_unlock(&pl->lock);
			break;
		}
		pthread_mutex_unlock(&pl->lock);

		t = now_s();
		got = freader_read(pl->fr, pl->st->mem[k % LOAD_NBUF], c->off, c->len);
		t = now_s() - t;
		if (got < 0)
			err = got;
		else if ((uint64_t)got < c->need)
			err = -ENODATA;	/* the file shrank under us */

		pthread_mutex_lock(&pl->lock);
		pl->t_read += t;
		if (err) {
			pl->err = err;
			pl->err_chunk = k;
		} else {
			pl->filled = k + 1;
		}
		pthread_cond_broadcast(&pl->cond);
		pthread_mutex_unlock(&pl->lock);
		if (err)
			break;
	}
	return NULL;
}

/* what the main thread keeps */
struct loader {
	struct llmdev **devs;
	const uint32_t *handles;
	const struct load_sched *s;
	struct staging *st;
	struct pipeline pl;
	struct slot slot[LOAD_NBUF];
	struct slot pad;		/* the zero padding's batches */
	struct llmdev_dma_op *ops;	/* a batch being built */
	size_t ops_cap;
	size_t submitted;		/* chunks sent */
	uint64_t done, total;		/* bytes sent */
	unsigned int n_batches, n_ops, n_rows;
	bool rows;			/* the driver takes LLMDEV_OP_ROWS (until it refuses) */
	double t0, last;
	/* where the main thread's time went (-v) */
	double t_send, t_wait_read, t_wait_dma;
	bool tty;
};

static void progress(struct loader *l, bool final)
{
	double t = now_s();
	char b1[16], b2[16], r[24];

	if (!l->tty || !l->total || (!final && t - l->last < 0.1))
		return;
	l->last = t;
	fprintf(stderr, "\rloading %3.0f%%  %s of %s  %s   ",
		100.0 * l->done / l->total,
		human_bytes(l->done, b1, sizeof(b1)),
		human_bytes(l->total, b2, sizeof(b2)),
		human_rate(l->done / (t - l->t0 + 1e-9), "B", r, sizeof(r)));
	if (final)
		fputc('\n', stderr);
}

/*
 * Wait for the batches of @sl (all of them with @block, else only
 * check): 0 when all are done (the first error of a batch is returned
 * then, also when it was seen by an earlier call that returned -ETIME:
 * its fence is consumed), -ETIME some are not done yet (only without
 * @block).
 */
static int slot_wait(struct loader *l, struct slot *sl, bool block)
{
	int ret;
	size_t i;

	for (i = 0; i < sl->n; i++) {
		struct inflight *b = &sl->b[i];
		int r, status = 0;

		if (b->done)
			continue;
		r = llmdev_fence_wait(l->devs[b->card], b->fence, block ? LOAD_TIMEOUT_NS : 0,
				      &status);
		if (r == -ETIME && !block)
			return -ETIME;
		b->done = true;
		if (!sl->err)
			sl->err = r ? r : status;
	}
	ret = sl->err;
	sl->n = 0;
	sl->err = 0;
	return ret;
}

/* Chunk l->pl.freed is done with: wait for it (@block) and free its buffer. */
static int retire(struct loader *l, bool block)
{
	int ret = slot_wait(l, &l->slot[l->pl.freed % LOAD_NBUF], block);

	if (ret == -ETIME)
		return ret;
	pthread_mutex_lock(&l->pl.lock);
	l->pl.freed++;
	pthread_cond_broadcast(&l->pl.cond);
	pthread_mutex_unlock(&l->pl.lock);
	return ret;
}

static int slot_add(struct slot *sl, uint32_t card, uint64_t fence)
{
	if (sl->n == sl->cap) {
		size_t cap = sl->cap ? sl->cap * 2 : 16;
		struct inflight *b = realloc(sl->b, cap * sizeof(*b));

		if (!b)
			return -ENOMEM;
		sl->b = b;
		sl->cap = cap;
	}
	sl->b[sl->n++] = (struct inflight){ .card = card, .fence = fence };
	return 0;
}

/*
 * Send @n transfers of card @card from buffer @k (LOAD_NBUF: the zero
 * buffer) as batches; their fences go to @sl. A transfer of rows (a
 * column slice's rows in one chunk) goes from a registered buffer as one
 * LLMDEV_OP_ROWS transfer; from memory that is not registered, or once a
 * driver older than LLMDEV_OP_ROWS has refused one, row by row.
 */
static int send_ops(struct loader *l, struct slot *sl, uint32_t card, unsigned int k,
		    const struct sched_op *op, size_t n)
{
	uint8_t *mem = k < LOAD_NBUF ? l->st->mem[k] : l->st->zero;
	size_t i = 0;
	uint64_t r = 0;		/* the next row of op[i] to send */

	while (i < n) {
		size_t i0 = i, count = 0;
		uint64_t r0 = r, bytes = 0, rows = 0, fence;
		unsigned int bad = ~0U;
		int ret;

		while (i < n && count < LLMDEV_BATCH_MAX) {
			const struct sched_op *s = &op[i];
			struct llmdev_dma_op *o;
			uint64_t take = 1, buf_off = s->buf_off + r * s->stride;

			if (count == l->ops_cap) {
				size_t cap = l->ops_cap ? l->ops_cap * 2 : 256;

				if (cap > LLMDEV_BATCH_MAX)
					cap = LLMDEV_BATCH_MAX;
				o = realloc(l->ops, cap * sizeof(*o));
				if (!o)
					return -ENOMEM;
				l->ops = o;
				l->ops_cap = cap;
			}
			o = &l->ops[count++];
			memset(o, 0, sizeof(*o));
			o->flags = LLMDEV_OP_TO_CARD;
			o->handle = l->handles[card];
			o->offset = s->dst + r * s->len;
			o->length = s->len;
			if (l->st->registered) {
				o->flags |= LLMDEV_OP_BUF;
				o->buf = l->st->ids[card][k];
				o->buf_offset = buf_off;
				if (l->rows && s->rows - r > 1) {
					take = s->rows - r;
					if (take > UINT32_MAX)
						take = UINT32_MAX;
					if (take > LLMDEV_DMA_MAX_LENGTH / s->len)
						take = LLMDEV_DMA_MAX_LENGTH / s->len;
					if (take > 1) {
						o->flags |= LLMDEV_OP_ROWS;
						o->rows = take;
						o->buf_stride = s->stride;
					} else {
						take = 1;
					}
				}
			} else {
				o->user_addr = (uintptr_t)(mem + buf_off);
			}
			bytes += take * s->len;
			rows += take;
			r += take;
			if (r == s->rows) {
				i++;
				r = 0;
			}
		}
		ret = llmdev_dma_batch(l->devs[card], l->ops, count, 0, 0, &fence, NULL, &bad);
		if (ret == -EINVAL && bad < count && (l->ops[bad].flags & LLMDEV_OP_ROWS)) {
			/* a driver from before LLMDEV_OP_ROWS: nothing was queued */
			l->rows = false;
			i = i0;
			r = r0;
			continue;
		}
		if (!ret)
			ret = slot_add(sl, card, fence);
		if (ret)
			return ret;
		l->n_batches++;
		l->n_ops += count;
		l->n_rows += rows;
		if (k < LOAD_NBUF)
			l->done += bytes;
	}
	return 0;
}

/* Send chunk @k: a batch per card, from its buffer. */
static int send_chunk(struct loader *l, size_t k)
{
	const struct sched_chunk *c = &l->s->chunks[k];
	const struct sched_op *op = &l->s->ops[c->first];
	double t = now_s();
	size_t i = 0, j;
	int ret = 0;

	while (i < c->n_ops && !ret) {
		for (j = i + 1; j < c->n_ops && op[j].card == op[i].card; j++)
			;
		ret = send_ops(l, &l->slot[k % LOAD_NBUF], op[i].card, k % LOAD_NBUF, op + i,
			       j - i);
		i = j;
	}
	l->t_send += now_s() - t;
	progress(l, false);
	return ret;
}

/* Send the zero padding of every card. */
static int send_pad(struct loader *l)
{
	const struct sched_op *op = l->s->pad;
	size_t i = 0, j, n = l->s->n_pad;
	int ret = 0;

	while (i < n && !ret) {
		for (j = i + 1; j < n && op[j].card == op[i].card; j++)
			;
		ret = send_ops(l, &l->pad, op[i].card, LOAD_NBUF, op + i, j - i);
		i = j;
	}
	return ret;
}

/*
 * Run the schedule: the reader thread reads, this thread sends. Return 0
 * once every transfer has finished, or the first error (then too only
 * once nothing is in flight); *@bad_chunk: the chunk a read failed in.
 */
static int load_run(struct loader *l, struct freader *fr, size_t *bad_chunk)
{
	struct pipeline *pl = &l->pl;
	pthread_t reader;
	double t;
	int ret, r;
	size_t k;

	*bad_chunk = SIZE_MAX;
	pthread_mutex_init(&pl->lock, NULL);
	pthread_cond_init(&pl->cond, NULL);
	pl->s = l->s;
	pl->fr = fr;
	pl->st = l->st;
	ret = start_thread(&reader, reader_main, pl);
	if (ret)
		goto out_destroy;

	ret = send_pad(l);
	for (k = 0; k < l->s->n_chunks && !ret; k++) {
		int rerr = 0;

		if (stop) {
			ret = -EINTR;
			break;
		}
		pthread_mutex_lock(&pl->lock);
		while (pl->filled <= k && !pl->err) {
			double t = now_s();

			/* the reader waits for a buffer: free the oldest */
			if (pl->reader_waiting && pl->freed < l->submitted) {
				pthread_mutex_unlock(&pl->lock);
				ret = retire(l, true);
				l->t_wait_dma += now_s() - t;
				pthread_mutex_lock(&pl->lock);
				if (ret)
					break;
				continue;
			}
			pthread_cond_wait(&pl->cond, &pl->lock);
			l->t_wait_read += now_s() - t;
		}
		if (pl->filled <= k && !ret) {
			rerr = pl->err;
			*bad_chunk = pl->err_chunk;
		}
		pthread_mutex_unlock(&pl->lock);
		if (ret || rerr) {
			ret = ret ? ret : rerr;
			break;
		}
		ret = send_chunk(l, k);
		l->submitted = k + 1;
		/* buffers whose batches are done go back to the reader */
		while (!ret && pl->freed < l->submitted && !(ret = retire(l, false)))
			;
		if (ret == -ETIME)
			ret = 0;
	}

	/* nothing may be in flight when the buffers go */
	t = now_s();
	pthread_mutex_lock(&pl->lock);
	pl->abort = ret != 0;
	pthread_cond_broadcast(&pl->cond);
	pthread_mutex_unlock(&pl->lock);
	while (pl->freed < l->submitted) {
		r = retire(l, true);
		if (!ret)
			ret = r;
	}
	r = slot_wait(l, &l->pad, true);
	if (!ret)
		ret = r;
	l->t_wait_dma += now_s() - t;
	pthread_mutex_lock(&pl->lock);
	pl->abort = true;
	pthread_cond_broadcast(&pl->cond);
	pthread_mutex_unlock(&pl->lock);
	pthread_join(reader, NULL);
	if (!ret && pl->err) {	/* (only if nothing needed the chunk) */
		ret = pl->err;
		*bad_chunk = pl->err_chunk;
	}
out_destroy:
	pthread_cond_destroy(&pl->cond);
	pthread_mutex_destroy(&pl->lock);
	for (k = 0; k < LOAD_NBUF; k++)
		free(l->slot[k].b);
	free(l->pad.b);
	free(l->ops);
	return ret;
}

/* ---- reading back ------------------------------------------------------------ */

/* FNV-1a, 64 bit: the checksum of a region's image */
static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
	while (n--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define FNV_INIT	0xcbf29ce484222325ULL

/* an aligned window of the file, for comparing regions with it */
struct fwin {
	uint8_t *mem;
	uint64_t cap;		/* bytes of @mem */
	uint64_t off, len;	/* what it holds */
	bool valid;
};

/* @len (at most cap - align) bytes of the file at @off, in *@p */
static int fwin_get(struct freader *fr, struct fwin *w, uint64_t off, uint64_t len,
		    const uint8_t **p)
{
	if (!w->valid || off < w->off || off + len > w->off + w->len) {
		uint64_t start = off & ~(fr->align - 1);
		int64_t got = freader_read(fr, w->mem, start, w->cap);

		w->valid = false;
		if (got < 0)
			return got;
		w->off = start;
		w->len = got;
		w->valid = true;
		if (off + len > w->off + w->len)
			return -ENODATA;
	}
	*p = w->mem + (off - w->off);
	return 0;
}

/* the first of @n bytes at @a that differs from @b: its index, or @n */
static size_t first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i;

	if (!memcmp(a, b, n))
		return n;
	for (i = 0; a[i] == b[i]; i++)
		;
	return i;
}

/* what readback() compares with: the file (the card's ranges) and zeros */
struct expect {
	struct freader *fr;
	struct fwin win;
	const struct sched_range *r;	/* the card's ranges, in region order */
	size_t n;
	const uint8_t *zero;		/* LOAD_ZERO zeros */
};

/* Compare @n bytes read back from region offset @off with what belongs there. */
static int compare(struct expect *e, const uint8_t *got, uint64_t off, uint64_t n,
		   uint64_t *bad)
{
	uint64_t end = off + n, pos = off;
	size_t k;

	/* skip the ranges that end before @off (the caller goes in order) */
	while (e->n && e->r->dst + sched_range_bytes(e->r) <= off) {
		e->r++;
		e->n--;
	}
	for (k = 0; pos < end; k++) {
		const struct sched_range *r = k < e->n ? &e->r[k] : NULL;
		uint64_t stop = r && r->dst < end ? (r->dst > pos ? r->dst : pos) : end;

		/* padding before the range (or up to @end) */
		while (pos < stop) {
			uint64_t m = stop - pos < LOAD_ZERO ? stop - pos : LOAD_ZERO;
			size_t d = first_diff(got + (pos - off), e->zero, m);

			if (d < m) {
				*bad = pos + d;
				return -EBADMSG;
			}
			pos += m;
		}
		if (!r || r->dst >= end)
			break;
		/* the range's part in [pos, end), from the file */
		stop = r->dst + sched_range_bytes(r) < end ? r->dst + sched_range_bytes(r) : end;
		while (pos < stop) {
			uint64_t m = stop - pos, row_left, src = sched_range_src(r, pos, &row_left);
			const uint8_t *want = NULL;
			size_t d;
			int ret;

			if (m > row_left)
				m = row_left;
			if (m > e->win.cap - e->fr->align)
				m = e->win.cap - e->fr->align;
			ret = fwin_get(e->fr, &e->win, src, m, &want);
			if (ret)
				return ret;
			d = first_diff(got + (pos - off), want, m);
			if (d < m) {
				*bad = pos + d;
				return -EBADMSG;
			}
			pos += m;
		}
	}
	return 0;
}

/*
 * Read @len bytes of a region back (into @buf, @cap bytes at a time) and
 * checksum them; with @e, compare them with the file too (-EBADMSG, and
 * the region offset of the first difference in *@bad).
 */
static int readback(struct llmdev *dev, uint32_t handle, uint64_t len, uint8_t *buf,
		    uint64_t cap, struct expect *e, uint64_t *sum, uint64_t *bad)
{
	uint64_t off, h = FNV_INIT;
	int ret;

	for (off = 0; off < len; off += cap) {
		uint64_t n = len - off < cap ? len - off : cap;

		if (stop)
			return -EINTR;
		ret = llmdev_copy_from_hbm(dev, handle, off, buf, n, LOAD_TIMEOUT_NS);
		if (ret)
			return ret;
		h = fnv1a(h, buf, n);
		if (e) {
			ret = compare(e, buf, off, n, bad);
			if (ret)
				return ret;
		}
	}
	*sum = h;
	return 0;
}

/* what is at region offset @off of card @c: a tensor's name, or "padding" */
static const char *what_is_at(const struct shard_card *c, uint64_t off)
{
	size_t k;

	for (k = 0; k < c->n_pieces; k++)
		if (off >= c->pieces[k].dst_offset &&
		    off - c->pieces[k].dst_offset < c->pieces[k].bytes)
			return c->pieces[k].name;
	return "padding";
}

static const char *load_strerror(int err)
{
	switch (err) {
	case -EINTR:
		return "interrupted";
	case -ENODATA:
		return "the file is shorter than when it was checked";
	default:
		return llmdev_strerror(err);
	}
}

/* ---- load -------------------------------------------------------------------- */

/* what load does with each card */
enum load_action {
	LOAD_NEW,	/* allocate a region and fill it */
	LOAD_REPLACE,	/* free the region of that name, then as LOAD_NEW */
	LOAD_KEEP,	/* the share is there: leave it */
};

/*
 * What to do with card @i's region @name of model @path (before anything
 * changes): keep it, replace it, or make it. One that another uid made is
 * none of ours: neither kept nor replaced. Return: 0, or EXIT_FAIL after a
 * message.
 */
static int load_decide(struct llmdev *dev, const char *path, const char *name,
		       uint64_t need, bool replace, enum load_action *act,
		       uint32_t *handle)
{
	struct llmdev_route_entry *e = NULL;
	struct llmdev_hbm_open ho;
	unsigned int ne = 0, k;
	char b1[16], b2[16];
	int ret = llmdev_hbm_open(dev, name, &ho);

	*act = LOAD_NEW;
	if (ret == -ENOENT)
		return 0;
	/* another uid's region: say whose */
	if (ret == -EPERM && region_check_owner(dev, name, 0, path))
		return EXIT_FAIL;
	if (ret) {
		msg("%s: region '%s': %s", llmdev_name(dev), name, llmdev_strerror(ret));
		return EXIT_FAIL;
	}
	if (region_check_owner(dev, name, ho.handle, path))
		return EXIT_FAIL;
	*handle = ho.handle;
	if (ho.length == need && !replace) {
		*act = LOAD_KEEP;
		return 0;
	}
	if (!replace) {
		msg("%s: region '%s' exists with %s but this plan needs %s; "
		    "--replace reloads it, 'llmctl unload' frees it", llmdev_name(dev),
		    name, human_bytes(ho.length, b1, sizeof(b1)),
		    human_bytes(need, b2, sizeof(b2)));
		return EXIT_FAIL;
	}
	ret = llmdev_route_get(dev, &e, &ne, NULL);
	if (ret) {
		msg("%s: reading the routing table: %s", llmdev_name(dev),
		    llmdev_strerror(ret));
		return EXIT_FAIL;
	}
	for (k = 0; k < ne && e[k].handle != ho.handle; k++)
		;
	free(e);
	if (k < ne) {
		msg("%s: cannot replace region '%s': the routing table uses it "
		    "('llmctl shard clear' first)", llmdev_name(dev), name);
		return EXIT_FAIL;
	}
	*act = LOAD_REPLACE;
	return 0;
}

/* -v: how the file is read and how the staging buffers are set up */
static void say_how(const struct freader *fr, const struct staging *st,
		    const struct load_sched *s, unsigned int n_load)
{
	char b1[16], b2[16], b3[16];
	struct rlimit rl;

	if (fr->direct)
		msg("%s: O_DIRECT reads, %" PRIu64 "-byte aligned", fr->path, fr->align);
	else if (fr->refused == ENOENT)
		msg("%s: buffered reads through the page cache (slower: every byte is "
		    "copied): no /proc/self/fd to open the checked file with O_DIRECT",
		    fr->path);
	else
		msg("%s: buffered reads through the page cache (slower: every byte is "
		    "copied): the file system refuses O_DIRECT (%s)", fr->path,
		    strerror(fr->refused));
	if (!n_load)
		return;
	if (st->registered) {
		msg("staging: %u buffers of %s, registered on %u card%s%s", LOAD_NBUF,
		    human_bytes(st->chunk, b1, sizeof(b1)), n_load, n_load == 1 ? "" : "s",
		    st->chunk < LOAD_CHUNK ? " (smaller: RLIMIT_MEMLOCK)" : "");
	} else if (!getrlimit(RLIMIT_MEMLOCK, &rl) && st->reg_err == -ENOMEM &&
		   rl.rlim_cur != RLIM_INFINITY) {
		msg("staging: %u buffers of %s, not registered: RLIMIT_MEMLOCK (%s) is too "
		    "small for %u buffers of %s on %u card%s; each transfer pins its "
		    "memory (slower)", LOAD_NBUF, human_bytes(st->chunk, b1, sizeof(b1)),
		    human_bytes(rl.rlim_cur, b2, sizeof(b2)), LOAD_NBUF,
		    human_bytes(st->reg_chunk, b3, sizeof(b3)), n_load, n_load == 1 ? "" : "s");
	} else {
		msg("staging: %u buffers of %s, not registered (%s); each transfer pins "
		    "its memory (slower)", LOAD_NBUF, human_bytes(st->chunk, b1, sizeof(b1)),
		    /* (llmdev_strerror() says what EBUSY means for a region) */
		    st->reg_err == -EBUSY ? strerror(EBUSY) : llmdev_strerror(st->reg_err));
	}
	msg("%s to %u card%s: %zu reads of %s, %zu ranges (%zu of them padding)",
	    human_bytes(s->bytes, b1, sizeof(b1)), n_load, n_load == 1 ? "" : "s",
	    s->n_chunks, human_bytes(s->read_bytes, b2, sizeof(b2)), s->n_ops + s->n_pad,
	    s->n_pad);
}

static const char load_usage[] =
	"usage: llmctl load MODEL.gguf [--tp N] [--pp M] [--cards LIST] [--verify] [--replace]\n"
	"                   [-v] [--json]\n\n"
	"Put every card's share of the model (see 'llmctl shard plan') into a\n"
	"persistent region named MODEL.sStT on that card. The file is read once,\n"
	"with O_DIRECT where the file system allows it, into staging buffers\n"
	"registered with the cards; reading overlaps DMA, each card's part of a\n"
	"read goes to it in one batch, and the whole model is never held in\n"
	"memory. The model and the cards are checked before anything on the\n"
	"cards changes; a failure (or an interrupt) midway frees what this load\n"
	"allocated. A share that is already loaded with the same size is left\n"
	"alone unless --replace is given; one of another size needs --replace.\n"
	"--verify reads every region back (also the ones left alone) and\n"
	"compares it with the file. -v says how the file is read and staged,\n"
	"and where the time went.";

int cmd_load(int argc, char **argv)
{
	enum load_action act[SHARD_MAX_CARDS];
	uint32_t handles[SHARD_MAX_CARDS], i, n, nkeep = 0, n_load = 0;
	bool mine[SHARD_MAX_CARDS] = { 0 }, load[SHARD_MAX_CARDS] = { 0 };
	bool all[SHARD_MAX_CARDS], want_sum, registered = false, have_sum[SHARD_MAX_CARDS] = { 0 };
	uint64_t sums[SHARD_MAX_CARDS] = { 0 }, total = 0, read_bytes = 0;
	bool read_direct = false;
	struct load_sched *s = NULL, *vs = NULL;
	struct staging st = { 0 };
	struct loader l = { 0 };
	struct freader fr = { .fd = -1 };
	struct shard_plan *plan;
	struct model_opts o;
	struct gguf_file *g;
	struct llmdev **devs;
	char name[LLMDEV_NAME_LEN], b1[16], r[24];
	double t = 0, t_reg, t_sched;
	int ret, rc = EXIT_FAIL;

	ret = parse_model_opts(argc, argv, &o, load_usage, true);
	if (ret)
		return ret < 0 ? 0 : ret;
	/* their pages are faulted in while the plan is made */
	if (staging_map(&st))
		return EXIT_FAIL;
	if (make_plan(&o, true, &g, &plan, &devs)) {
		staging_free(&st, NULL);
		return EXIT_FAIL;
	}
	n = plan->n_cards;
	/* an interrupt frees what this load allocated, as any failure does */
	catch_signals(true);
	ret = freader_open(&fr, o.path, gguf_fd(g));
	if (ret) {
		msg("%s: %s", o.path, strerror(-ret));
		goto out;
	}

	/* what to do on each card; nothing has changed if this fails */
	for (i = 0; i < n; i++) {
		struct shard_card *c = &plan->cards[i];

		region_name(o.path, c->stage, c->tp_rank, name);
		if (load_decide(devs[i], o.path, name, c->need, o.replace, &act[i],
				&handles[i]))
			goto out;
		nkeep += act[i] == LOAD_KEEP;
	}
	/* then every region, before any data moves */
	for (i = 0; i < n; i++) {
		struct shard_card *c = &plan->cards[i];
		struct llmdev_hbm_alloc a;

		if (act[i] == LOAD_KEEP)
			continue;
		region_name(o.path, c->stage, c->tp_rank, name);
		if (act[i] == LOAD_REPLACE) {
			ret = llmdev_hbm_free(devs[i], handles[i]);
			if (ret) {
				msg("%s: cannot replace region '%s': %s", llmdev_name(devs[i]),
				    name, llmdev_strerror(ret));
				goto undo;
			}
		}
		ret = llmdev_hbm_alloc(devs[i], c->need, 0, LLMDEV_HBM_PERSISTENT,
				       name, &a);
		if (ret) {
			msg("%s: allocating %s for '%s': %s", llmdev_name(devs[i]),
			    human_bytes(c->need, b1, sizeof(b1)), name,
			    llmdev_strerror(ret));
			goto undo;
		}
		handles[i] = a.handle;
		mine[i] = true;
		load[i] = true;
		n_load++;
		total += c->bytes;
	}

	l.t0 = l.last = now_s();
	/* two alignments at least: --verify compares a buffer less one of them */
	ret = staging_setup(&st, n, devs, load, LOAD_MIN_CHUNK > 2 * fr.align ?
			    LOAD_MIN_CHUNK : 2 * fr.align);
	t_reg = now_s() - l.t0;
	if (ret)
		goto undo;
	t_sched = now_s();
	ret = load_sched_build(plan, load, fr.align, st.chunk, LOAD_ZERO, &s);
	t_sched = now_s() - t_sched;
	if (ret) {
		msg("%s: planning the reads: %s", o.path, strerror(-ret));
		goto undo;
	}
	if (o.verbose) {
		say_how(&fr, &st, s, n_load);
		msg("setup %.2f s: staging %.2f s, schedule %.2f s", now_s() - l.t0, t_reg,
		    t_sched);
	}
	if (n_load) {
		size_t bad_chunk;

		l.devs = devs;
		l.handles = handles;
		l.s = s;
		l.st = &st;
		l.total = s->bytes;
		l.tty = isatty(STDERR_FILENO) && !print_is_json();
		l.rows = true;
		ret = load_run(&l, &fr, &bad_chunk);
		progress(&l, true);
		if (ret) {
			if (bad_chunk != SIZE_MAX)
				msg("%s: reading %" PRIu64 " bytes at offset %" PRIu64 ": %s",
				    o.path, s->chunks[bad_chunk].len, s->chunks[bad_chunk].off,
				    load_strerror(ret));
			else
				msg("loading '%s': %s", o.path, load_strerror(ret));
			goto undo;
		}
		if (o.verbose)
			msg("%u batches of %u transfers (%u rows); reading %.2f s; sending %.2f s, "
			    "waiting for reads %.2f s and for DMA %.2f s", l.n_batches, l.n_ops,
			    l.n_rows, l.pl.t_read, l.t_send, l.t_wait_read, l.t_wait_dma);
		if (fr.fell_back && o.verbose)
			msg("%s: a read at offset %" PRIu64 " refused O_DIRECT (%s): the rest "
			    "went through the page cache", o.path, fr.fallback_off,
			    strerror(fr.refused));
	}
	t = now_s() - l.t0;
	/* how the load read (--verify reads the file again, after this) */
	read_bytes = fr.bytes;
	read_direct = fr.direct && !fr.fell_back;
	/* the buffers are no longer the cards' business */
	registered = st.registered;
	staging_unregister(&st, devs);

	/* read back: the checksums (--verify, --json), and with --verify compare */
	want_sum = o.verify || print_is_json();
	for (i = 0; i < n; i++)
		all[i] = true;
	if (o.verify) {
		ret = load_sched_build(plan, all, fr.align, st.chunk, LOAD_ZERO, &vs);
		if (ret) {
			msg("%s: planning the reads: %s", o.path, strerror(-ret));
			goto undo;
		}
	}
	for (i = 0; i < n && want_sum; i++) {
		struct shard_card *c = &plan->cards[i];
		struct expect e = {
			.fr = &fr,
			.win = { .mem = st.mem[1], .cap = st.chunk },
			.zero = st.zero,
		};
		uint64_t bad = 0;

		if (act[i] == LOAD_KEEP && !o.verify)
			continue;
		if (vs) {
			e.r = &vs->ranges[vs->card_range[i]];
			e.n = vs->card_range[i + 1] - vs->card_range[i];
		}
		region_name(o.path, c->stage, c->tp_rank, name);
		ret = readback(devs[i], handles[i], c->bytes, st.mem[0], st.chunk,
			       vs ? &e : NULL, &sums[i], &bad);
		if (ret == -EBADMSG) {
			msg("%s: verify '%s': region offset %" PRIu64 " (%s) differs from the "
			    "file%s", llmdev_name(devs[i]), name, bad, what_is_at(c, bad),
			    act[i] == LOAD_KEEP ?
			    " (the region does not hold this share; --replace reloads it)" : "");
			goto undo;
		}
		if (ret) {
			msg("%s: %s '%s': %s", llmdev_name(devs[i]),
			    o.verify ? "verify" : "reading back", name, load_strerror(ret));
			goto undo;
		}
		have_sum[i] = true;
	}

	print_start("llmdev.load/1");
	print_string(PRINT_ANY, "model", "model %s: ", o.path);
	if (nkeep == n) {
		print_bytes(PRINT_JSON, "bytes", NULL, total);
		print_float(PRINT_JSON, "seconds", NULL, t);
		print_text("nothing to load: every share is on its card already");
	} else {
		print_bytes(PRINT_ANY, "bytes", "%s", total);
		print_float(PRINT_ANY, "seconds", " in %.2f s", t);
		print_text(" (%s)", human_rate(total / (t + 1e-9), "B", r, sizeof(r)));
	}
	print_bool(PRINT_JSON, "verified", NULL, o.verify);
	print_text("%s\n", o.verify ? ", verified" : "");
	/* how (later members of llmdev.load/1) */
	if (read_bytes)
		print_string(PRINT_JSON, "read", NULL, read_direct ? "direct" : "buffered");
	else
		print_null(PRINT_JSON, "read", NULL, NULL);
	print_u64(PRINT_JSON, "read_bytes", NULL, read_bytes);
	print_open_object("staging");
	print_uint(PRINT_JSON, "buffers", NULL, LOAD_NBUF);
	print_u64(PRINT_JSON, "buffer_bytes", NULL, st.chunk);
	print_bool(PRINT_JSON, "registered", NULL, registered);
	print_close_object();
	print_uint(PRINT_JSON, "transfers", NULL, l.n_ops);
	print_uint(PRINT_JSON, "rows", NULL, l.n_rows);
	print_uint(PRINT_JSON, "batches", NULL, l.n_batches);
	print_open_array("cards");
	for (i = 0; i < n; i++) {
		struct shard_card *c = &plan->cards[i];
		char sum[20];

		region_name(o.path, c->stage, c->tp_rank, name);
		print_open_object(NULL);
		print_uint(PRINT_ANY, "card", "llmdev%u: ", c->card);
		print_string(PRINT_ANY, "region", "%-28s ", name);
		print_uint(PRINT_ANY, "handle", "handle %-4u ", handles[i]);
		print_bytes(PRINT_ANY, "bytes", "%10s  ", c->bytes);
		print_bool(PRINT_JSON, "loaded", NULL, act[i] != LOAD_KEEP);
		print_text("%s", act[i] == LOAD_KEEP ? "already loaded" : "loaded");
		print_bool(PRINT_JSON, "verified", NULL, o.verify);
		print_text("%s", o.verify ? ", verified" : "");
		if (have_sum[i]) {
			snprintf(sum, sizeof(sum), "%016llx", (unsigned long long)sums[i]);
			print_string(PRINT_ANY, "checksum", ", checksum %s", sum);
		} else {
			print_null(PRINT_JSON, "checksum", NULL, NULL);
		}
		print_text("\n");
		print_close_object();
	}
	print_close_array();
	rc = print_done();
	goto out;
undo:
	for (i = 0; i < n; i++) {
		if (!mine[i])
			continue;
		ret = llmdev_hbm_free(devs[i], handles[i]);
		if (ret)
			msg("%s: freeing the region this load allocated: %s",
			    llmdev_name(devs[i]), llmdev_strerror(ret));
	}
out:
	load_sched_free(s);
	load_sched_free(vs);
	staging_free(&st, devs);
	if (fr.fd >= 0)
		close(fr.fd);
	free_plan(g, plan, devs, n);
	return rc;
}

/* ---- unload ---------------------------------------------------------------- */

int cmd_unload(int argc, char **argv)
{
	char tag[MODEL_TAG_LEN + 1];
	struct llmdev **devs;
	int n, i, rc = 0, freed = 0;
	bool denied = false;

	if (argc != 2 || argv[1][0] == '-') {
		if (has_help(argc, argv))
			return puts("usage: llmctl unload MODEL.gguf [--json]\n\n"
				    "Free the regions 'llmctl load' made for the model on every card\n"
				    "(MODEL.sStT; the file need not exist any more). Routing-table\n"
				    "entries naming them are removed first (needs CAP_SYS_ADMIN when\n"
				    "there are any)."), 0;
		return usage_err("usage: llmctl unload MODEL.gguf");
	}
	model_tag(argv[1], tag);
	if (!tag[0])
		return usage_err("unload: '%s' names no model", argv[1]);
	n = open_cards(NULL, &devs);
	if (n < 0)
		return EXIT_FAIL;
	print_start("llmdev.unload/1");
	print_open_array("regions");
	for (i = 0; i < n; i++) {
		struct llmdev_hbm_region *reg = NULL;
		struct llmdev_route_entry *e = NULL;
		unsigned int nreg = 0, ne = 0, k, j, keep;
		int ret;

		ret = llmdev_hbm_list(devs[i], &reg, &nreg);
		if (!ret)
			ret = llmdev_route_get(devs[i], &e, &ne, NULL);
		if (ret) {
			msg("%s: %s", llmdev_name(devs[i]), llmdev_strerror(ret));
			rc = EXIT_FAIL;
			goto next;
		}
		/* drop the routes to the model's regions */
		for (keep = 0, k = 0; k < ne; k++) {
			bool ours = false;

			for (j = 0; j < nreg; j++)
				if (reg[j].handle == e[k].handle &&
				    is_model_region(reg[j].name, tag))
					ours = true;
			if (!ours)
				e[keep++] = e[k];
		}
		if (keep != ne) {
			ret = llmdev_route_set(devs[i], e, keep, NULL);
			if (ret) {
				msg("%s: removing the routes to the model: %s",
				    llmdev_name(devs[i]), admin_strerror(ret));
				rc = EXIT_FAIL;
				denied = ret == -EPERM;	/* the same on every card */
				goto next;
			}
		}
		for (j = 0; j < nreg; j++) {
			if (!(reg[j].flags & LLMDEV_REGION_PERSISTENT) ||
			    !is_model_region(reg[j].name, tag))
				continue;
			ret = llmdev_hbm_free(devs[i], reg[j].handle);
			if (ret) {
				msg("%s: freeing '%s': %s", llmdev_name(devs[i]), reg[j].name,
				    llmdev_strerror(ret));
				rc = EXIT_FAIL;
				continue;
			}
			print_open_object(NULL);
			print_int(PRINT_ANY, "card", "llmdev%d: ", card_index(devs[i]));
			print_string(PRINT_ANY, "region", "freed %s", reg[j].name);
			print_bytes(PRINT_ANY, "length", " (%s)\n", reg[j].length);
			print_close_object();
			freed++;
		}
next:
		free(reg);
		free(e);
		if (denied)
			break;
	}
	close_cards(devs, n);
	print_close_array();
	print_int(PRINT_JSON, "freed", NULL, freed);
	if (!freed && !rc)
		print_text("nothing to unload: no region of model '%s' on any card\n", tag);
	return print_done() ? EXIT_FAIL : rc;
}
