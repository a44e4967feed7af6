// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl load MODEL / unload MODEL: a GGUF model's shards into persistent
 * regions of the cards (one per card, named after the model, its stage
 * and its tensor-parallel rank: docs/llmctl.md), and out again. The plan
 * comes from tools/shard.c through make_plan() (llmctl-common.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "gguf.h"
#include "llmctl.h"

#define LOAD_BUF_SIZE	(8u << 20)	/* one staging buffer */
#define LOAD_NBUF	4		/* DMA of 3 overlaps the filling of 1 */
#define LOAD_TIMEOUT_NS	(60ull * 1000000000)

/* ---- load ---------------------------------------------------------------- */

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

/*
 * Streams one card's share from the file into its region through
 * LOAD_NBUF staging buffers, checksumming what it sends. With no @dev it
 * only checksums (for --verify of a share that was already loaded).
 */
struct stager {
	struct llmdev *dev;
	uint32_t handle;
	uint8_t *buf[LOAD_NBUF];
	uint64_t fence[LOAD_NBUF];
	bool busy[LOAD_NBUF];
	unsigned int cur;
	uint64_t base;		/* region offset of buf[cur][0] */
	uint64_t fill;		/* bytes in buf[cur] */
	uint64_t sum;		/* checksum of everything staged, if @want_sum */
	bool want_sum;		/* --verify or --json (the only users) */
	uint64_t done;		/* bytes handed to DMA, all cards */
	uint64_t total;
	double t0, last;
	bool tty;
};

static void progress(struct stager *s, bool final)
{
	double t = now_s();
	char b1[16], b2[16], r[24];

	if (!s->tty || !s->total || (!final && t - s->last < 0.1))
		return;
	s->last = t;
	fprintf(stderr, "\rloading %3.0f%%  %s of %s  %s   ",
		100.0 * s->done / s->total,
		human_bytes(s->done, b1, sizeof(b1)),
		human_bytes(s->total, b2, sizeof(b2)),
		human_rate(s->done / (t - s->t0 + 1e-9), "B", r, sizeof(r)));
	if (final)
		fputc('\n', stderr);
}

static int stager_wait(struct stager *s, unsigned int i)
{
	int ret, status;

	if (!s->busy[i])
		return 0;
	ret = llmdev_fence_wait(s->dev, s->fence[i], LOAD_TIMEOUT_NS, &status);
	s->busy[i] = false;
	if (ret)
		return ret;
	return status;
}

/* Start @dev's share: region @handle from offset 0. */
static void stager_start(struct stager *s, struct llmdev *dev, uint32_t handle)
{
	s->dev = dev;
	s->handle = handle;
	s->cur = 0;
	s->base = 0;
	s->fill = 0;
	s->sum = FNV_INIT;
}

/* DMA the current buffer to the card and move to the next one. */
static int stager_flush(struct stager *s)
{
	unsigned int i = s->cur;
	int ret;

	if (!s->fill)
		return 0;
	if (s->want_sum)	/* a third of the load's CPU time in the VM */
		s->sum = fnv1a(s->sum, s->buf[i], s->fill);
	if (s->dev) {
		ret = llmdev_dma_submit(s->dev, s->handle, s->base, s->buf[i], s->fill,
					LLMDEV_DMA_TO_CARD, LLMDEV_RING_ANY, &s->fence[i]);
		if (ret)
			return ret;
		s->busy[i] = true;
		s->done += s->fill;
		progress(s, false);
	}
	s->base += s->fill;
	s->fill = 0;
	s->cur = (i + 1) % LOAD_NBUF;
	return stager_wait(s, s->cur);
}

/* Stage @len bytes read from the file at @off for region offset @dst. */
static int stage_range(struct stager *s, int fd, uint64_t off, uint64_t len,
		       uint64_t dst)
{
	int ret;

	/* zero padding up to @dst (pieces are aligned) */
	while (s->base + s->fill < dst) {
		uint64_t n = dst - s->base - s->fill;

		if (n > LOAD_BUF_SIZE - s->fill)
			n = LOAD_BUF_SIZE - s->fill;
		memset(s->buf[s->cur] + s->fill, 0, n);
		s->fill += n;
		if (s->fill == LOAD_BUF_SIZE && (ret = stager_flush(s)))
			return ret;
	}
	while (len) {
		uint64_t n = len < LOAD_BUF_SIZE - s->fill ? len : LOAD_BUF_SIZE - s->fill;
		ssize_t r;

		if (stop)
			return -EINTR;
		r = pread(fd, s->buf[s->cur] + s->fill, n, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ENODATA;	/* the file shrank under us */
		s->fill += r;
		off += r;
		len -= r;
		if (s->fill == LOAD_BUF_SIZE && (ret = stager_flush(s)))
			return ret;
	}
	return 0;
}

static int stager_finish(struct stager *s)
{
	unsigned int i;
	int ret = stager_flush(s), r;

	for (i = 0; i < LOAD_NBUF; i++) {
		r = stager_wait(s, i);
		if (!ret)
			ret = r;
	}
	return ret;
}

/* Stream card @c's share (no @dev: only checksum it); *@sum: its checksum. */
static int stage_card(struct stager *s, int fd, const struct shard_card *c,
		      struct llmdev *dev, uint32_t handle, uint64_t *sum)
{
	size_t k;
	int ret = 0, r2;

	stager_start(s, dev, handle);
	for (k = 0; k < c->n_pieces && !ret; k++) {
		const struct shard_piece *p = &c->pieces[k];
		uint64_t j, dst = p->dst_offset;

		for (j = 0; j < p->src_count && !ret; j++, dst += p->src_len)
			ret = stage_range(s, fd, p->src_offset + j * p->src_stride,
					  p->src_len, dst);
	}
	r2 = stager_finish(s);
	if (!ret)
		ret = r2;
	*sum = s->sum;
	return ret;
}

/* Read a region back and checksum it as stage_range() did. */
static int verify_region(struct llmdev *dev, uint32_t handle, uint64_t len,
			 uint8_t *buf, uint64_t want)
{
	uint64_t off, h = FNV_INIT;
	int ret;

	for (off = 0; off < len; off += LOAD_BUF_SIZE) {
		uint64_t n = len - off < LOAD_BUF_SIZE ? len - off : LOAD_BUF_SIZE;

		if (stop)
			return -EINTR;
		ret = llmdev_copy_from_hbm(dev, handle, off, buf, n, LOAD_TIMEOUT_NS);
		if (ret)
			return ret;
		h = fnv1a(h, buf, n);
	}
	return h == want ? 0 : -EBADMSG;
}

static const char *load_strerror(int err)
{
	switch (err) {
	case -EINTR:
		return "interrupted";
	case -ENODATA:
		return "the file is shorter than when it was checked";
	case -EBADMSG:
		return "checksum mismatch";
	default:
		return llmdev_strerror(err);
	}
}

/* what load does with each card */
enum load_action {
	LOAD_NEW,	/* allocate a region and fill it */
	LOAD_REPLACE,	/* free the region of that name, then as LOAD_NEW */
	LOAD_KEEP,	/* the share is there: leave it */
};

/*
 * What to do with card @i's region @name (before anything changes): keep
 * it, replace it, or make it. Return: 0, or EXIT_FAIL after a message.
 */
static int load_decide(struct llmdev *dev, const char *name, uint64_t need,
		       bool replace, enum load_action *act, uint32_t *handle)
{
	struct llmdev_route_entry *e = NULL;
	struct llmdev_hbm_open ho;
	unsigned int ne = 0, k;
	char b1[16], b2[16];
	int ret = llmdev_hbm_open(dev, name, &ho);

	*act = LOAD_NEW;
	if (ret == -ENOENT)
		return 0;
	if (ret) {
		msg("%s: region '%s': %s", llmdev_name(dev), name, llmdev_strerror(ret));
		return EXIT_FAIL;
	}
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

static const char load_usage[] =
	"usage: llmctl load MODEL.gguf [--tp N] [--pp M] [--cards LIST] [--verify] [--replace] [--json]\n\n"
	"Put every card's share of the model (see 'llmctl shard plan') into a\n"
	"persistent region named MODEL.sStT on that card. The file is streamed:\n"
	"reading overlaps DMA and the whole model is never held in memory. The\n"
	"model and the cards are checked before anything on the cards changes;\n"
	"a failure (or an interrupt) midway frees what this load allocated. A\n"
	"share that is already loaded with the same size is left alone unless\n"
	"--replace is given; one of another size needs --replace. --verify reads\n"
	"every region back (also the ones left alone) and compares checksums.";

int cmd_load(int argc, char **argv)
{
	enum load_action act[SHARD_MAX_CARDS];
	uint32_t handles[SHARD_MAX_CARDS], i, n, nkeep = 0;
	bool mine[SHARD_MAX_CARDS] = { 0 };
	uint64_t sums[SHARD_MAX_CARDS] = { 0 }, total = 0;
	struct stager s = { 0 };
	struct shard_plan *plan;
	struct model_opts o;
	struct gguf_file *g;
	struct llmdev **devs;
	char name[LLMDEV_NAME_LEN], b1[16], r[24];
	double t;
	int fd = -1, ret, rc = EXIT_FAIL;

	ret = parse_model_opts(argc, argv, &o, load_usage, true);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (make_plan(&o, true, &g, &plan, &devs))
		return EXIT_FAIL;
	n = plan->n_cards;
	/* an interrupt frees what this load allocated, as any failure does */
	catch_signals(true);
	fd = open(o.path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		msg("%s: %s", o.path, strerror(errno));
		goto out;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (i = 0; i < LOAD_NBUF; i++) {
		s.buf[i] = mmap(NULL, LOAD_BUF_SIZE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (s.buf[i] == MAP_FAILED) {
			s.buf[i] = NULL;
			msg("out of memory for staging buffers");
			goto out;
		}
	}

	/* what to do on each card; nothing has changed if this fails */
	for (i = 0; i < n; i++) {
		struct shard_card *c = &plan->cards[i];

		region_name(o.path, c->stage, c->tp_rank, name);
		if (load_decide(devs[i], name, c->need, o.replace, &act[i], &handles[i]))
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
		total += c->bytes;
	}

	s.total = total;
	s.tty = isatty(STDERR_FILENO) && !print_is_json();
	s.want_sum = o.verify || print_is_json();
	s.t0 = s.last = now_s();
	for (i = 0; i < n; i++) {
		if (act[i] == LOAD_KEEP)
			continue;
		ret = stage_card(&s, fd, &plan->cards[i], devs[i], handles[i], &sums[i]);
		if (ret) {
			progress(&s, true);
			region_name(o.path, plan->cards[i].stage, plan->cards[i].tp_rank, name);
			msg("%s: loading '%s': %s", llmdev_name(devs[i]), name,
			    load_strerror(ret));
			goto undo;
		}
	}
	progress(&s, true);
	t = now_s() - s.t0;

	for (i = 0; o.verify && i < n; i++) {
		struct shard_card *c = &plan->cards[i];

		region_name(o.path, c->stage, c->tp_rank, name);
		ret = 0;
		if (act[i] == LOAD_KEEP)	/* the file's checksum of the share */
			ret = stage_card(&s, fd, c, NULL, 0, &sums[i]);
		if (!ret)
			ret = verify_region(devs[i], handles[i], c->bytes, s.buf[0], sums[i]);
		if (ret) {
			msg("%s: verify '%s': %s%s", llmdev_name(devs[i]), name,
			    load_strerror(ret),
			    ret == -EBADMSG && act[i] == LOAD_KEEP ?
			    " (the region does not hold this share; --replace reloads it)" : "");
			goto undo;
		}
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
		/* known for what was sent (and summed) or read back */
		if ((act[i] != LOAD_KEEP && s.want_sum) || o.verify) {
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
	for (i = 0; i < LOAD_NBUF; i++)
		if (s.buf[i])
			munmap(s.buf[i], LOAD_BUF_SIZE);
	if (fd >= 0)
		close(fd);
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
		if (argc == 2 && is_help(argv[1]))
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
