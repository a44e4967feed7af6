// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl shard / load / unload: from a GGUF file to sharded weights in the
 * cards' HBM and the routing tables that name them.
 *
 * Every card of a plan gets one persistent region, named after the model
 * file, its stage and its tensor-parallel rank ("<model>.s<S>t<T>", the
 * model part being the file's base name without ".gguf", at most 20
 * characters of [A-Za-z0-9._-]). `load` fills the regions; `shard apply`
 * points each card's routing table at its region; `unload` frees them.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include "gguf.h"
#include "llmctl.h"
#include "shard.h"

#define LOAD_BUF_SIZE	(8u << 20)	/* one staging buffer */
#define LOAD_NBUF	4		/* DMA of 3 overlaps the filling of 1 */
#define LOAD_TIMEOUT_NS	(60ull * 1000000000)

struct model_opts {
	const char *path;
	uint32_t tp, pp;
	uint32_t cards[SHARD_MAX_CARDS];
	size_t n_cards;
	int format;
	bool verify, replace;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_u32(const char *s, uint32_t max, uint32_t *v)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || end == s || *end || n > max || s[0] == '-')
		return -EINVAL;
	*v = n;
	return 0;
}

/* "0,1,2,3" or "0-3" or a mix */
static int parse_cards(const char *s, struct model_opts *o)
{
	char *copy = strdup(s), *tok, *save = NULL;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	o->n_cards = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(tok, '-');
		uint32_t a, b;

		if (dash)
			*dash = 0;
		if (parse_u32(tok, 255, &a) || (dash && parse_u32(dash + 1, 255, &b))) {
			ret = -EINVAL;
			break;
		}
		if (!dash)
			b = a;
		for (; a <= b && o->n_cards < SHARD_MAX_CARDS; a++)
			o->cards[o->n_cards++] = a;
		if (a <= b || !o->n_cards) {
			ret = -EINVAL;
			break;
		}
	}
	free(copy);
	return ret || !o->n_cards ? -EINVAL : 0;
}

/*
 * Common options of shard plan/apply, load: MODEL --tp N --pp M
 * [--cards LIST]. Returns 0, or EXIT_USAGE after a message; -1 for --help.
 */
static int parse_model_opts(int argc, char **argv, struct model_opts *o,
			    const char *usage, bool load)
{
	static const struct option opts[] = {
		{ "tp", required_argument, NULL, 't' },
		{ "pp", required_argument, NULL, 'p' },
		{ "cards", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "verify", no_argument, NULL, 'V' },
		{ "replace", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->tp = 1;
	o->pp = 1;
	o->format = SHARD_PRINT_TABLE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:p:c:jvh", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_u32(optarg, SHARD_MAX_CARDS, &o->tp) || !o->tp)
				return usage_err("--tp wants a number >= 1, not '%s'", optarg);
			break;
		case 'p':
			if (parse_u32(optarg, SHARD_MAX_CARDS, &o->pp) || !o->pp)
				return usage_err("--pp wants a number >= 1, not '%s'", optarg);
			break;
		case 'c':
			if (parse_cards(optarg, o))
				return usage_err("--cards wants card numbers like 0,1,2,3 or 0-3, not '%s'",
						 optarg);
			break;
		case 'j':
			json = true;
			break;
		case 'v':
			o->format = SHARD_PRINT_VERBOSE;
			break;
		case 'V':
		case 'r':
			if (!load)
				return usage_err("--%s is an option of 'llmctl load'",
						 c == 'V' ? "verify" : "replace");
			if (c == 'V')
				o->verify = true;
			else
				o->replace = true;
			break;
		case 'h':
			puts(usage);
			return -1;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1)
		return usage_err("%s", optind >= argc ? "a GGUF model file is needed" :
				 "one model file only");
	o->path = argv[optind];
	if ((uint64_t)o->tp * o->pp > SHARD_MAX_CARDS)
		return usage_err("--tp %u x --pp %u is too many cards", o->tp, o->pp);
	if (o->n_cards && o->n_cards != o->tp * o->pp)
		return usage_err("--cards lists %zu cards but --tp %u x --pp %u needs %u",
				 o->n_cards, o->tp, o->pp, o->tp * o->pp);
	if (json)
		o->format = SHARD_PRINT_JSON;
	return 0;
}

/* The region name of one card's share of the model. */
static void region_name(const char *path, const struct shard_card *c,
			char name[LLMDEV_NAME_LEN])
{
	const char *base = strrchr(path, '/');
	char model[21];
	size_t i, n;

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n > 5 && !strcmp(base + n - 5, ".gguf"))
		n -= 5;
	for (i = 0; i < n && i < sizeof(model) - 1; i++) {
		char ch = base[i];

		model[i] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			   (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ?
			   ch : '_';
	}
	model[i] = 0;
	snprintf(name, LLMDEV_NAME_LEN, "%s.s%ut%u", model, c->stage, c->tp_rank);
}

/* The prefix every region of a model has: "<model>.s" */
static void region_prefix(const char *path, char prefix[LLMDEV_NAME_LEN])
{
	struct shard_card c = { 0 };
	char *s;

	region_name(path, &c, prefix);
	s = strrchr(prefix, '.');
	s[2] = 0;	/* keep ".s" */
}

/*
 * Open the model, open the plan's cards (when the driver is there) and
 * make the plan, checking the cards' free HBM. @devs gets tp * pp handles
 * (NULL when @need_cards is false and the driver is missing).
 */
static int make_plan(struct model_opts *o, bool need_cards,
		     struct gguf_file **gp, struct shard_plan **planp,
		     struct llmdev ***devsp)
{
	struct shard_opts so = { .tp = o->tp, .pp = o->pp };
	uint32_t n = o->tp * o->pp;
	struct llmdev **devs = NULL;
	uint64_t *free_hbm = NULL;
	char err[512];
	uint32_t i;
	int ret;

	ret = gguf_open(o->path, gp, err, sizeof(err));
	if (ret) {
		msg("%s: %s", o->path, err);
		return EXIT_FAIL;
	}
	if (!o->n_cards) {
		for (i = 0; i < n; i++)
			o->cards[i] = i;
		o->n_cards = n;
	}
	so.cards = o->cards;
	so.n_cards = o->n_cards;

	if (need_cards && need_driver())
		goto fail;
	if (need_cards || driver_loaded()) {
		devs = calloc(n, sizeof(*devs));
		free_hbm = calloc(n, sizeof(*free_hbm));
		if (!devs || !free_hbm) {
			msg("out of memory");
			goto fail;
		}
		for (i = 0; i < n; i++) {
			struct llmdev_info info;

			ret = llmdev_open(o->cards[i], &devs[i]);
			if (ret == -ENOENT) {
				msg("card %u does not exist (%d card%s with a device node)",
				    o->cards[i], llmdev_count(),
				    llmdev_count() == 1 ? "" : "s");
				goto fail;
			}
			if (!ret)
				ret = llmdev_get_info(devs[i], &info);
			if (ret) {
				msg("llmdev%u: %s", o->cards[i], llmdev_strerror(ret));
				goto fail;
			}
			free_hbm[i] = info.hbm_largest_free;
		}
		so.free = free_hbm;
	} else {
		msg("note: the llmdev driver is not loaded; the plan does not check free HBM");
	}
	ret = shard_plan_build(*gp, &so, planp, err, sizeof(err));
	if (ret) {
		msg("%s: %s", o->path, err);
		goto fail;
	}
	free(free_hbm);
	*devsp = devs;
	return 0;
fail:
	if (devs)
		close_cards(devs, n);
	free(free_hbm);
	gguf_close(*gp);
	*gp = NULL;
	return EXIT_FAIL;
}

static void free_plan(struct gguf_file *g, struct shard_plan *p,
		      struct llmdev **devs, uint32_t n)
{
	shard_plan_free(p);
	gguf_close(g);
	if (devs)
		close_cards(devs, n);
}

/* ---- shard ------------------------------------------------------------------ */

/* The port of @from whose link is up to @to; -ENOLINK if none. */
static int port_to(struct llmdev *from, struct llmdev *to)
{
	struct llmdev_link_info li;
	struct llmdev_info ti;
	unsigned int p;

	if (llmdev_get_info(to, &ti))
		return -ENODEV;
	for (p = 0; p < ti.num_link_ports; p++)
		if (!llmdev_link_get_info(from, p, &li) &&
		    li.state == LLMDEV_LINK_UP && li.peer_serial == ti.serial)
			return p;
	return -ENOLINK;
}

static int shard_apply(struct model_opts *o)
{
	struct llmdev_route_entry *old[SHARD_MAX_CARDS] = { 0 };
	unsigned int nold[SHARD_MAX_CARDS] = { 0 };
	struct llmdev_route_entry e;
	struct shard_plan *plan;
	struct gguf_file *g;
	struct llmdev **devs;
	uint32_t i, n, done = 0;
	int ret, rc = EXIT_FAIL;

	if (make_plan(o, true, &g, &plan, &devs))
		return EXIT_FAIL;
	n = plan->n_cards;
	for (i = 0; i < n; i++) {
		ret = llmdev_route_get(devs[i], &old[i], &nold[i], NULL);
		if (ret) {
			msg("%s: reading the routing table: %s", llmdev_name(devs[i]),
			    llmdev_strerror(ret));
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		const struct shard_card *c = &plan->cards[i];
		struct llmdev_hbm_open ho;
		char name[LLMDEV_NAME_LEN], hop[16];
		struct llmdev_route r;

		region_name(o->path, c, name);
		ret = llmdev_hbm_open(devs[i], name, &ho);
		if (ret) {
			msg("%s: region '%s': %s%s", llmdev_name(devs[i]), name,
			    llmdev_strerror(ret),
			    ret == -ENOENT ? " (run 'llmctl load' with the same layout first)" : "");
			goto undo;
		}
		memset(&e, 0, sizeof(e));
		e.layer_first = c->layer_first;
		e.layer_last = c->layer_last;
		e.tp_rank = c->tp_rank;
		e.tp_size = c->tp_size;
		e.handle = ho.handle;
		e.next_hop = LLMDEV_HOP_HOST;
		if (c->stage + 1 < plan->pp) {
			ret = port_to(devs[i], devs[i + plan->tp]);
			if (ret < 0) {
				msg("%s: no link that is up to %s (stage %u to %u)",
				    llmdev_name(devs[i]), llmdev_name(devs[i + plan->tp]),
				    c->stage, c->stage + 1);
				goto undo;
			}
			e.next_hop = ret;
		}
		ret = llmdev_route_set(devs[i], &e, 1, &r);
		if (ret) {
			msg("%s: routing table refused: %s%s", llmdev_name(devs[i]),
			    llmdev_strerror(ret),
			    ret == -EPERM ? " (needs CAP_SYS_ADMIN)" : "");
			goto undo;
		}
		done = i + 1;
		if (!json)
			printf("%s: layers %u-%u tp %u/%u region %s -> %s\n",
			       llmdev_name(devs[i]), e.layer_first, e.layer_last,
			       e.tp_rank, e.tp_size, name,
			       hop_name(e.next_hop, hop, sizeof(hop)));
	}
	if (json)
		printf("{\"schema\":\"llmdev.shard-apply/1\",\"applied\":%u}\n", n);
	rc = 0;
	goto out;
undo:
	/* all or none: put back the tables already replaced */
	for (i = 0; i < done; i++) {
		ret = llmdev_route_set(devs[i], old[i], nold[i], NULL);
		if (ret)
			msg("%s: restoring the previous routing table failed: %s",
			    llmdev_name(devs[i]), llmdev_strerror(ret));
	}
	if (done)
		msg("no routing table changed (%u restored)", done);
out:
	for (i = 0; i < n; i++)
		free(old[i]);
	free_plan(g, plan, devs, n);
	return rc;
}

static int shard_show(const char *name, bool clear)
{
	struct llmdev **devs;
	int n, i, rc = 0;
	bool first = true;

	n = open_cards(name, &devs);
	if (n < 0)
		return EXIT_FAIL;
	if (json && !clear)
		printf("{\"schema\":\"llmdev.shard-show/1\",\"cards\":[");
	for (i = 0; i < n; i++) {
		struct llmdev_route_entry *e = NULL;
		unsigned int count = 0, k;
		uint32_t gen = 0;
		char hop[16], b[16];
		int ret;

		if (clear) {
			ret = llmdev_route_set(devs[i], NULL, 0, NULL);
			if (ret) {
				msg("%s: clearing the routing table: %s%s", llmdev_name(devs[i]),
				    llmdev_strerror(ret),
				    ret == -EPERM ? " (needs CAP_SYS_ADMIN)" : "");
				rc = EXIT_FAIL;
			}
			continue;
		}
		ret = llmdev_route_get(devs[i], &e, &count, &gen);
		if (ret) {
			msg("%s: %s", llmdev_name(devs[i]), llmdev_strerror(ret));
			rc = EXIT_FAIL;
			continue;
		}
		if (json) {
			printf("%s{\"card\":\"%s\",\"generation\":%u,\"entries\":[",
			       first ? "" : ",", llmdev_name(devs[i]), gen);
			for (k = 0; k < count; k++)
				printf("%s{\"layer_first\":%u,\"layer_last\":%u,\"tp_rank\":%u,"
				       "\"tp_size\":%u,\"handle\":%u,\"next_hop\":\"%s\","
				       "\"hbm_offset\":%llu,\"length\":%llu}", k ? "," : "",
				       e[k].layer_first, e[k].layer_last, e[k].tp_rank,
				       e[k].tp_size, e[k].handle,
				       hop_name(e[k].next_hop, hop, sizeof(hop)),
				       (unsigned long long)e[k].hbm_offset,
				       (unsigned long long)e[k].length);
			printf("]}");
		} else {
			printf("%s (generation %u): %s\n", llmdev_name(devs[i]), gen,
			       count ? "" : "empty");
			for (k = 0; k < count; k++)
				printf("  layers %u-%u tp %u/%u region %u (%s) -> %s\n",
				       e[k].layer_first, e[k].layer_last, e[k].tp_rank,
				       e[k].tp_size, e[k].handle,
				       human_bytes(e[k].length, b, sizeof(b)),
				       hop_name(e[k].next_hop, hop, sizeof(hop)));
		}
		first = false;
		free(e);
	}
	if (json && !clear)
		printf("]}\n");
	close_cards(devs, n);
	return rc;
}

static const char shard_usage[] =
	"usage: llmctl shard plan MODEL.gguf [--tp N] [--pp M] [--cards LIST] [--json|-v]\n"
	"       llmctl shard apply MODEL.gguf [--tp N] [--pp M] [--cards LIST]\n"
	"       llmctl shard show [DEV] [--json]\n"
	"       llmctl shard clear [DEV]\n\n"
	"plan   which tensor, or which tensor-parallel slice, goes to which card;\n"
	"       checks that each card's share fits its largest free HBM extent\n"
	"       (when the driver is loaded). --tp must divide the head counts.\n"
	"       Stage s, rank t runs on card LIST[s * tp + t] (default 0..tp*pp-1).\n"
	"apply  point every card's routing table at its loaded share (see\n"
	"       'llmctl load'), all cards or none; needs CAP_SYS_ADMIN\n"
	"show   the routing tables\n"
	"clear  empty the routing tables; needs CAP_SYS_ADMIN";

int cmd_shard(int argc, char **argv)
{
	struct model_opts o;
	int ret;

	if (argc < 2)
		return usage_err("usage: llmctl shard plan|apply|show|clear ...");
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return puts(shard_usage), 0;
	if (!strcmp(argv[1], "show") || !strcmp(argv[1], "clear")) {
		bool clear = argv[1][0] == 'c';
		int i, devarg = 0;

		for (i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
				json = true;
			else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
				return puts(shard_usage), 0;
			else if (!devarg && argv[i][0] != '-')
				devarg = i;
			else
				return usage_err("shard %s: unexpected '%s'", argv[1], argv[i]);
		}
		return shard_show(devarg ? argv[devarg] : NULL, clear);
	}
	if (strcmp(argv[1], "plan") && strcmp(argv[1], "apply"))
		return usage_err("shard: unknown subcommand '%s'", argv[1]);
	ret = parse_model_opts(argc - 1, argv + 1, &o, shard_usage, false);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (!strcmp(argv[1], "plan")) {
		struct shard_plan *plan;
		struct gguf_file *g;
		struct llmdev **devs;

		if (make_plan(&o, false, &g, &plan, &devs))
			return EXIT_FAIL;
		ret = shard_plan_print(stdout, plan, o.format);
		free_plan(g, plan, devs, o.tp * o.pp);
		return ret ? EXIT_FAIL : 0;
	}
	return shard_apply(&o);
}

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

struct stager {
	struct llmdev *dev;
	uint32_t handle;
	uint8_t *buf[LOAD_NBUF];
	uint64_t fence[LOAD_NBUF];
	bool busy[LOAD_NBUF];
	unsigned int cur;
	uint64_t base;		/* region offset of buf[cur][0] */
	uint64_t fill;		/* bytes in buf[cur] */
	uint64_t sum;		/* checksum of everything staged */
	uint64_t done;		/* bytes handed to DMA, all cards */
	uint64_t total;
	double t0, last;
	bool tty;
};

static void progress(struct stager *s, bool final)
{
	double t = now_s();
	char b1[16], b2[16], r[24];

	if (!s->tty || (!final && t - s->last < 0.1))
		return;
	s->last = t;
	fprintf(stderr, "\rloading %3.0f%%  %s of %s  %s   ",
		s->total ? 100.0 * s->done / s->total : 100.0,
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

/* DMA the current buffer to the card and move to the next one. */
static int stager_flush(struct stager *s)
{
	unsigned int i = s->cur;
	int ret;

	if (!s->fill)
		return 0;
	s->sum = fnv1a(s->sum, s->buf[i], s->fill);
	ret = llmdev_dma_submit(s->dev, s->handle, s->base, s->buf[i], s->fill,
				LLMDEV_DMA_TO_CARD, LLMDEV_RING_ANY, &s->fence[i]);
	if (ret)
		return ret;
	s->busy[i] = true;
	s->done += s->fill;
	progress(s, false);
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
		ssize_t r = pread(fd, s->buf[s->cur] + s->fill, n, off);

		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;	/* the file shrank under us */
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

/* Read a region back and checksum it as stage_range() did. */
static int verify_region(struct llmdev *dev, uint32_t handle, uint64_t len,
			 uint8_t *buf, uint64_t want, uint64_t *got)
{
	uint64_t off, h = FNV_INIT;
	int ret;

	for (off = 0; off < len; off += LOAD_BUF_SIZE) {
		uint64_t n = len - off < LOAD_BUF_SIZE ? len - off : LOAD_BUF_SIZE;

		ret = llmdev_copy_from_hbm(dev, handle, off, buf, n, LOAD_TIMEOUT_NS);
		if (ret)
			return ret;
		h = fnv1a(h, buf, n);
	}
	*got = h;
	return h == want ? 0 : -EBADMSG;
}

/* Is the card's share already there? 1 yes, 0 no (or replaced), <0 error. */
static int existing_region(struct llmdev *dev, const char *name, uint64_t need,
			   bool replace)
{
	struct llmdev_hbm_open ho;
	int ret = llmdev_hbm_open(dev, name, &ho);

	if (ret == -ENOENT)
		return 0;
	if (ret) {
		msg("%s: region '%s': %s", llmdev_name(dev), name, llmdev_strerror(ret));
		return ret;
	}
	if (ho.length == need && !replace)
		return 1;
	ret = llmdev_hbm_free(dev, ho.handle);
	if (ret) {
		msg("%s: cannot replace region '%s': %s%s", llmdev_name(dev), name,
		    llmdev_strerror(ret),
		    ret == -EBUSY ? " (it is routed: 'llmctl shard clear' first)" : "");
		return ret;
	}
	return 0;
}

static const char load_usage[] =
	"usage: llmctl load MODEL.gguf [--tp N] [--pp M] [--cards LIST] [--verify] [--replace]\n\n"
	"Put every card's share of the model (see 'llmctl shard plan') into a\n"
	"persistent region named MODEL.sStT on that card. The file is streamed:\n"
	"reading overlaps DMA and the whole model is never held in memory. The\n"
	"model is checked completely before anything on the cards changes; a\n"
	"failure midway frees what this load allocated. A share that is already\n"
	"loaded is left alone unless --replace is given. --verify reads every\n"
	"region back and compares checksums.";

int cmd_load(int argc, char **argv)
{
	uint32_t handles[SHARD_MAX_CARDS], i, n;
	bool mine[SHARD_MAX_CARDS] = { 0 }, skip[SHARD_MAX_CARDS] = { 0 };
	uint64_t sums[SHARD_MAX_CARDS] = { 0 }, total = 0, got;
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

	/* allocate every region first: no card changes if one cannot */
	for (i = 0; i < n; i++) {
		struct shard_card *c = &plan->cards[i];
		struct llmdev_hbm_alloc a;

		region_name(o.path, c, name);
		ret = existing_region(devs[i], name, c->need, o.replace);
		if (ret < 0)
			goto undo;
		if (ret == 1) {
			skip[i] = true;
			continue;
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
	s.tty = isatty(STDERR_FILENO) && !json;
	s.t0 = s.last = now_s();
	for (i = 0; i < n; i++) {
		struct shard_card *c = &plan->cards[i];
		size_t k;

		if (skip[i])
			continue;
		s.dev = devs[i];
		s.handle = handles[i];
		s.cur = 0;
		s.base = 0;
		s.fill = 0;
		s.sum = FNV_INIT;
		ret = 0;
		for (k = 0; k < c->n_pieces && !ret && !stop; k++) {
			struct shard_piece *p = &c->pieces[k];
			uint64_t j, dst = p->dst_offset;

			for (j = 0; j < p->src_count && !ret; j++, dst += p->src_len)
				ret = stage_range(&s, fd, p->src_offset + j * p->src_stride,
						  p->src_len, dst);
		}
		if (!ret && stop)
			ret = -EINTR;
		{
			int r2 = stager_finish(&s);

			if (!ret)
				ret = r2;
		}
		if (ret) {
			progress(&s, true);
			region_name(o.path, c, name);
			msg("%s: loading '%s': %s", llmdev_name(devs[i]), name,
			    ret == -EINTR ? "interrupted" : llmdev_strerror(ret));
			goto undo;
		}
		sums[i] = s.sum;
	}
	progress(&s, true);
	t = now_s() - s.t0;

	if (o.verify) {
		for (i = 0; i < n; i++) {
			if (skip[i])
				continue;
			region_name(o.path, &plan->cards[i], name);
			ret = verify_region(devs[i], handles[i], plan->cards[i].bytes,
					    s.buf[0], sums[i], &got);
			if (ret) {
				msg("%s: verify '%s': %s", llmdev_name(devs[i]), name,
				    ret == -EBADMSG ? "checksum mismatch" : llmdev_strerror(ret));
				goto undo;
			}
		}
	}
	if (json) {
		printf("{\"schema\":\"llmdev.load/1\",\"model\":");
		json_str(o.path);
		printf(",\"bytes\":%llu,\"seconds\":%.3f,\"verified\":%s,\"cards\":[",
		       (unsigned long long)total, t, o.verify ? "true" : "false");
		for (i = 0; i < n; i++) {
			region_name(o.path, &plan->cards[i], name);
			printf("%s{\"card\":%u,\"region\":", i ? "," : "",
			       plan->cards[i].card);
			json_str(name);
			printf(",\"bytes\":%llu,\"loaded\":%s,\"checksum\":\"%016llx\"}",
			       (unsigned long long)plan->cards[i].bytes,
			       skip[i] ? "false" : "true", (unsigned long long)sums[i]);
		}
		printf("]}\n");
	} else {
		for (i = 0; i < n; i++) {
			region_name(o.path, &plan->cards[i], name);
			printf("%s: %-28s %10s  %s\n", llmdev_name(devs[i]), name,
			       human_bytes(plan->cards[i].bytes, b1, sizeof(b1)),
			       skip[i] ? "already loaded" :
			       o.verify ? "loaded, verified" : "loaded");
		}
		printf("%s in %.2f s (%s)\n", human_bytes(total, b1, sizeof(b1)), t,
		       human_rate(total / (t + 1e-9), "B", r, sizeof(r)));
	}
	rc = 0;
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
	char prefix[LLMDEV_NAME_LEN];
	struct llmdev **devs;
	int n, i, rc = 0, freed = 0;

	if (argc != 2 || argv[1][0] == '-') {
		if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
			return puts("usage: llmctl unload MODEL.gguf\n\n"
				    "Free the regions 'llmctl load' made for the model on every card.\n"
				    "Routing-table entries naming them are removed first (needs\n"
				    "CAP_SYS_ADMIN when there are any)."), 0;
		return usage_err("usage: llmctl unload MODEL.gguf");
	}
	region_prefix(argv[1], prefix);
	n = open_cards(NULL, &devs);
	if (n < 0)
		return EXIT_FAIL;
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
				    !strncmp(reg[j].name, prefix, strlen(prefix)))
					ours = true;
			if (!ours)
				e[keep++] = e[k];
		}
		if (keep != ne) {
			ret = llmdev_route_set(devs[i], e, keep, NULL);
			if (ret) {
				msg("%s: removing routes to the model: %s%s", llmdev_name(devs[i]),
				    llmdev_strerror(ret),
				    ret == -EPERM ? " (needs CAP_SYS_ADMIN)" : "");
				rc = EXIT_FAIL;
				goto next;
			}
		}
		for (j = 0; j < nreg; j++) {
			if (!(reg[j].flags & LLMDEV_REGION_PERSISTENT) ||
			    strncmp(reg[j].name, prefix, strlen(prefix)))
				continue;
			ret = llmdev_hbm_free(devs[i], reg[j].handle);
			if (ret) {
				msg("%s: freeing '%s': %s", llmdev_name(devs[i]), reg[j].name,
				    llmdev_strerror(ret));
				rc = EXIT_FAIL;
				continue;
			}
			if (!json)
				printf("%s: freed %s\n", llmdev_name(devs[i]), reg[j].name);
			freed++;
		}
next:
		free(reg);
		free(e);
	}
	close_cards(devs, n);
	if (json)
		printf("{\"schema\":\"llmdev.unload/1\",\"freed\":%d}\n", freed);
	else if (!freed && !rc)
		printf("nothing to unload: no region named %s* on any card\n", prefix);
	return rc;
}
