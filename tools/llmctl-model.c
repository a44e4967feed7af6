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
	while ((c = getopt_long(argc, argv, "t:p:c:vh", opts, NULL)) != -1) {
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

/*
 * The model part of its region names: the file's base name without
 * ".gguf" when that is at most MODEL_TAG_LEN characters of [A-Za-z0-9._-];
 * otherwise its first MODEL_TAG_KEEP characters (others replaced by '_'),
 * '~' and 6 hex digits of a hash of the whole base name, so that long
 * names sharing a prefix ("Meta-Llama-3-8B-Instruct-Q8_0" and
 * "...-Q4_0") do not share regions.
 */
#define MODEL_TAG_LEN	20
#define MODEL_TAG_KEEP	(MODEL_TAG_LEN - 7)

static bool tag_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '.' || ch == '-';
}

static void model_tag(const char *path, char tag[MODEL_TAG_LEN + 1])
{
	const char *base = strrchr(path, '/');
	uint32_t h = 2166136261u;	/* FNV-1a, 32 bit */
	bool plain = true;
	size_t i, n;

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n > 5 && !strcmp(base + n - 5, ".gguf"))
		n -= 5;
	for (i = 0; i < n; i++) {
		plain &= tag_char(base[i]);
		h = (h ^ (unsigned char)base[i]) * 16777619u;
	}
	if (plain && n <= MODEL_TAG_LEN) {
		memcpy(tag, base, n);
		tag[n] = 0;
		return;
	}
	for (i = 0; i < n && i < MODEL_TAG_KEEP; i++)
		tag[i] = tag_char(base[i]) ? base[i] : '_';
	snprintf(tag + i, MODEL_TAG_LEN + 1 - i, "~%06x", (unsigned int)(h & 0xffffff));
}

/* The region of stage @stage, rank @rank: "<model>.s<stage>t<rank>" */
static void region_name(const char *path, uint32_t stage, uint32_t rank,
			char name[LLMDEV_NAME_LEN])
{
	char tag[MODEL_TAG_LEN + 1];

	model_tag(path, tag);
	snprintf(name, LLMDEV_NAME_LEN, "%s.s%ut%u", tag, stage, rank);
}

/* Is @name the region of a stage and rank of the model @tag? */
static bool is_model_region(const char *name, const char *tag)
{
	size_t n = strlen(tag), d;

	if (strncmp(name, tag, n) || name[n] != '.' || name[n + 1] != 's')
		return false;
	name += n + 2;
	d = strspn(name, "0123456789");
	if (!d || name[d] != 't')
		return false;
	name += d + 1;
	d = strspn(name, "0123456789");
	return d && !name[d];
}

/* The port of @from whose link is up to @to; -ENOLINK if none. */
static int port_to(struct llmdev *from, struct llmdev *to)
{
	struct llmdev_link_info li;
	struct llmdev_info fi, ti;
	unsigned int p;

	if (llmdev_get_info(from, &fi) || llmdev_get_info(to, &ti))
		return -ENODEV;
	for (p = 0; p < fi.num_link_ports; p++)
		if (!llmdev_link_get_info(from, p, &li) &&
		    li.state == LLMDEV_LINK_UP && li.peer_serial == ti.serial)
			return p;
	return -ENOLINK;
}

/*
 * The default card order for --pp > 1 (no --cards): the first one in which
 * each stage's card has a link that is up to the next stage's card of the
 * same rank (shard_order_cards()). @o->cards holds 0 .. n - 1 and keeps it
 * when there is none (shard apply then says which hop has no link).
 */
static void default_order(struct model_opts *o)
{
	uint32_t i, j, n = o->tp * o->pp, max = 0, slots;
	struct llmdev **devs = NULL;
	uint32_t *order = NULL;
	bool *linked = NULL;
	int count = llmdev_count();

	if (o->pp == 1 || count <= 0 || (uint32_t)count < n)
		return;
	/* minors need not be dense after hot-unplug: look a little further */
	slots = (uint32_t)count + 64 < SHARD_MAX_CARDS ? (uint32_t)count + 64 : SHARD_MAX_CARDS;
	devs = calloc(slots, sizeof(*devs));
	order = calloc(n, sizeof(*order));
	if (!devs || !order)
		goto out;
	for (i = 0; i < slots; i++)
		if (!llmdev_open(i, &devs[i]))
			max = i + 1;
	linked = calloc((size_t)max * max, sizeof(*linked));
	if (!linked)
		goto out;
	for (i = 0; i < max; i++)
		for (j = 0; j < max; j++)
			if (i != j && devs[i] && devs[j])
				linked[i * max + j] = port_to(devs[i], devs[j]) >= 0;
	if (max >= n && !shard_order_cards(o->tp, o->pp, max, linked, order))
		memcpy(o->cards, order, n * sizeof(*order));
out:
	free(linked);
	free(order);
	for (i = 0; i < max; i++)
		if (devs[i])
			llmdev_close(devs[i]);
	free(devs);
}

/*
 * Open the model, check that the plan fits it, open the plan's cards (when
 * the driver is there) and make the plan, checking the cards' free HBM: a
 * card's largest free extent, plus the model's own region on it (loading
 * again reuses or replaces it). @devs gets tp * pp handles (NULL when @need_cards is false
 * and the driver is missing).
 */
static int make_plan(struct model_opts *o, bool need_cards,
		     struct gguf_file **gp, struct shard_plan **planp,
		     struct llmdev ***devsp)
{
	struct shard_opts so = { .tp = o->tp, .pp = o->pp };
	uint32_t n = o->tp * o->pp;
	struct llmdev **devs = NULL;
	uint64_t *free_hbm = NULL;
	bool auto_order;
	char err[512];
	uint32_t i;
	int ret;

	ret = gguf_open(o->path, gp, err, sizeof(err));
	if (ret) {
		msg("%s: %s", o->path, err);
		return EXIT_FAIL;
	}
	auto_order = !o->n_cards;
	if (auto_order) {
		for (i = 0; i < n; i++)
			o->cards[i] = i;
		o->n_cards = n;
	}
	so.cards = o->cards;
	so.n_cards = o->n_cards;

	/* the model and the options first: their errors do not need cards */
	ret = shard_plan_build(*gp, &so, planp, err, sizeof(err));
	if (ret) {
		msg("%s: %s", o->path, err);
		goto fail;
	}
	shard_plan_free(*planp);
	*planp = NULL;
	if (need_cards && need_driver())
		goto fail;
	/* after loading the driver: load and a later apply agree on the order */
	if (auto_order && driver_loaded())
		default_order(o);
	if (need_cards || driver_loaded()) {
		devs = calloc(n, sizeof(*devs));
		free_hbm = calloc(n, sizeof(*free_hbm));
		if (!devs || !free_hbm) {
			msg("out of memory");
			goto fail;
		}
		for (i = 0; i < n; i++) {
			char name[LLMDEV_NAME_LEN];
			struct llmdev_hbm_open ho;
			struct llmdev_info info;

			ret = llmdev_open(o->cards[i], &devs[i]);
			if (ret == -ENOENT) {
				msg("card %u does not exist (--tp %u x --pp %u needs %u cards; %d have a device node)",
				    o->cards[i], o->tp, o->pp, n, llmdev_count());
				goto fail;
			}
			if (!ret)
				ret = llmdev_get_info(devs[i], &info);
			if (ret) {
				msg("llmdev%u: %s", o->cards[i], llmdev_strerror(ret));
				goto fail;
			}
			free_hbm[i] = info.hbm_largest_free;
			region_name(o->path, i / o->tp, i % o->tp, name);
			if (!llmdev_hbm_open(devs[i], name, &ho))
				free_hbm[i] += ho.length;
			if (!free_hbm[i])
				free_hbm[i] = 1;	/* full: 0 would mean "unknown" */
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

/*
 * Two passes, so that all cards or none change: find every card's region
 * and next hop first (most failures end here, with no table touched);
 * then write the tables, putting back the ones already written if a card
 * refuses its table.
 */
static int shard_apply(struct model_opts *o)
{
	struct llmdev_route_entry *old[SHARD_MAX_CARDS] = { 0 };
	unsigned int nold[SHARD_MAX_CARDS] = { 0 };
	struct llmdev_route_entry *e = NULL;
	uint32_t gen[SHARD_MAX_CARDS];
	struct shard_plan *plan;
	struct gguf_file *g;
	struct llmdev **devs;
	uint32_t i, n, done = 0;
	int ret, rc = EXIT_FAIL;

	if (make_plan(o, true, &g, &plan, &devs))
		return EXIT_FAIL;
	n = plan->n_cards;
	e = calloc(n, sizeof(*e));
	if (!e) {
		msg("out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const struct shard_card *c = &plan->cards[i];
		char name[LLMDEV_NAME_LEN];
		struct llmdev_hbm_open ho;

		region_name(o->path, c->stage, c->tp_rank, name);
		ret = llmdev_hbm_open(devs[i], name, &ho);
		if (ret) {
			msg("%s: region '%s': %s%s", llmdev_name(devs[i]), name,
			    admin_strerror(ret),
			    ret == -ENOENT ? " (run 'llmctl load' with the same layout first)" : "");
			goto out;
		}
		e[i].layer_first = c->layer_first;
		e[i].layer_last = c->layer_last;
		e[i].tp_rank = c->tp_rank;
		e[i].tp_size = c->tp_size;
		e[i].handle = ho.handle;
		e[i].next_hop = LLMDEV_HOP_HOST;
		if (c->stage + 1 < plan->pp) {
			ret = port_to(devs[i], devs[i + plan->tp]);
			if (ret < 0) {
				msg("%s: no link that is up to %s (stage %u rank %u to stage %u rank %u); "
				    "see 'llmctl link show' and choose --cards to match the cabling",
				    llmdev_name(devs[i]), llmdev_name(devs[i + plan->tp]),
				    c->stage, c->tp_rank, c->stage + 1, c->tp_rank);
				goto out;
			}
			e[i].next_hop = ret;
		}
	}
	for (i = 0; i < n; i++) {
		ret = llmdev_route_get(devs[i], &old[i], &nold[i], NULL);
		if (ret) {
			msg("%s: reading the routing table: %s", llmdev_name(devs[i]),
			    llmdev_strerror(ret));
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		struct llmdev_route r;

		ret = llmdev_route_set(devs[i], &e[i], 1, &r);
		if (ret) {
			msg("%s: routing table refused: %s", llmdev_name(devs[i]),
			    admin_strerror(ret));
			goto undo;
		}
		gen[i] = r.generation;
		done = i + 1;
	}
	if (json)
		printf("{\"schema\":\"llmdev.shard-apply/1\",\"applied\":%u,\"cards\":[", n);
	for (i = 0; i < n; i++) {
		const struct shard_card *c = &plan->cards[i];
		char name[LLMDEV_NAME_LEN], hop[16];

		region_name(o->path, c->stage, c->tp_rank, name);
		if (json)
			printf("%s{\"card\":%d,\"region\":\"%s\",\"handle\":%u,\"layer_first\":%u,"
			       "\"layer_last\":%u,\"tp_rank\":%u,\"tp_size\":%u,"
			       "\"next_hop\":\"%s\",\"generation\":%u}", i ? "," : "",
			       card_index(devs[i]), name, e[i].handle, e[i].layer_first,
			       e[i].layer_last, e[i].tp_rank, e[i].tp_size,
			       hop_name(e[i].next_hop, hop, sizeof(hop)), gen[i]);
		else
			printf("%s: layers %u-%u tp %u/%u region %s -> %s\n",
			       llmdev_name(devs[i]), e[i].layer_first, e[i].layer_last,
			       e[i].tp_rank, e[i].tp_size, name,
			       hop_name(e[i].next_hop, hop, sizeof(hop)));
	}
	if (json)
		printf("]}\n");
	rc = 0;
	goto out;
undo:
	for (i = 0; i < done; i++) {
		ret = llmdev_route_set(devs[i], old[i], nold[i], NULL);
		if (ret)
			msg("%s: restoring the previous routing table failed: %s",
			    llmdev_name(devs[i]), llmdev_strerror(ret));
	}
	if (done)
		msg("the previous routing tables of %u card%s were put back", done,
		    done == 1 ? "" : "s");
out:
	for (i = 0; i < n; i++)
		free(old[i]);
	free(e);
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
		struct llmdev_hbm_region *reg = NULL;
		struct llmdev_route_entry *e = NULL;
		unsigned int count = 0, nreg = 0;
		uint32_t gen = 0;
		int ret;

		if (clear) {
			ret = llmdev_route_set(devs[i], NULL, 0, NULL);
			if (ret) {
				msg("%s: clearing the routing table: %s", llmdev_name(devs[i]),
				    admin_strerror(ret));
				rc = EXIT_FAIL;
				if (ret == -EPERM)
					break;	/* the same for every card */
			}
			continue;
		}
		ret = llmdev_route_get(devs[i], &e, &count, &gen);
		if (!ret)
			ret = llmdev_hbm_list(devs[i], &reg, &nreg);
		if (ret) {
			msg("%s: reading the routing table: %s", llmdev_name(devs[i]),
			    llmdev_strerror(ret));
			rc = EXIT_FAIL;
		} else if (json) {
			printf("%s{\"card\":%d,\"generation\":%u,\"entries\":", first ? "" : ",",
			       card_index(devs[i]), gen);
			first = false;
			print_routes(e, count, reg, nreg, "");
			printf("}");
		} else {
			printf("%s (generation %u)%s\n", llmdev_name(devs[i]), gen,
			       count ? "" : ": empty");
			print_routes(e, count, reg, nreg, "  ");
		}
		free(e);
		free(reg);
	}
	if (json && !clear)
		printf("]}\n");
	close_cards(devs, n);
	return rc;
}

static const char shard_usage[] =
	"usage: llmctl shard plan MODEL.gguf [--tp N] [--pp M] [--cards LIST] [--json|-v]\n"
	"       llmctl shard apply MODEL.gguf [--tp N] [--pp M] [--cards LIST] [--json]\n"
	"       llmctl shard show [DEV] [--json]\n"
	"       llmctl shard clear [DEV]\n\n"
	"plan   which tensor, or which tensor-parallel slice, goes to which card;\n"
	"       checks that each card's share fits its largest free HBM extent\n"
	"       (when the driver is loaded). --tp must divide the head counts.\n"
	"       Stage s, rank t runs on card LIST[s * tp + t]. Default: 0..tp-1\n"
	"       for one stage; else the first order in which each stage's card\n"
	"       has a link that is up to the next stage's card of the same rank\n"
	"       (0..tp*pp-1 if none).\n"
	"apply  point every card's routing table at its loaded share (see\n"
	"       'llmctl load') and at the link to the next stage's card of the\n"
	"       same rank; all cards or none; needs CAP_SYS_ADMIN\n"
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
			if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
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
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
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
	s.tty = isatty(STDERR_FILENO) && !json;
	s.want_sum = o.verify || json;
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
	if (json) {
		printf("{\"schema\":\"llmdev.load/1\",\"model\":");
		json_str(o.path);
		printf(",\"bytes\":%llu,\"seconds\":%.3f,\"verified\":%s,\"cards\":[",
		       (unsigned long long)total, t, o.verify ? "true" : "false");
		for (i = 0; i < n; i++) {
			struct shard_card *c = &plan->cards[i];

			region_name(o.path, c->stage, c->tp_rank, name);
			printf("%s{\"card\":%u,\"region\":\"%s\",\"handle\":%u,\"bytes\":%llu,"
			       "\"loaded\":%s,\"verified\":%s,\"checksum\":", i ? "," : "",
			       c->card, name, handles[i], (unsigned long long)c->bytes,
			       act[i] == LOAD_KEEP ? "false" : "true",
			       o.verify ? "true" : "false");
			if (act[i] != LOAD_KEEP || o.verify)
				printf("\"%016llx\"}", (unsigned long long)sums[i]);
			else
				printf("null}");
		}
		printf("]}\n");
	} else {
		for (i = 0; i < n; i++) {
			struct shard_card *c = &plan->cards[i];

			region_name(o.path, c->stage, c->tp_rank, name);
			printf("%s: %-28s %10s  %s%s\n", llmdev_name(devs[i]), name,
			       human_bytes(c->bytes, b1, sizeof(b1)),
			       act[i] == LOAD_KEEP ? "already loaded" : "loaded",
			       o.verify ? ", verified" : "");
		}
		if (nkeep == n)
			printf("nothing to load: every share is on its card already\n");
		else
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
	char tag[MODEL_TAG_LEN + 1];
	struct llmdev **devs;
	int n, i, rc = 0, freed = 0;
	bool denied = false;

	if (argc != 2 || argv[1][0] == '-') {
		if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
			return puts("usage: llmctl unload MODEL.gguf\n\n"
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
	if (json)
		printf("{\"schema\":\"llmdev.unload/1\",\"regions\":[");
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
			if (json)
				printf("%s{\"card\":%d,\"region\":\"%s\",\"length\":%llu}",
				       freed ? "," : "", card_index(devs[i]), reg[j].name,
				       (unsigned long long)reg[j].length);
			else
				printf("%s: freed %s\n", llmdev_name(devs[i]), reg[j].name);
			freed++;
		}
next:
		free(reg);
		free(e);
		if (denied)
			break;
	}
	close_cards(devs, n);
	if (json)
		printf("],\"freed\":%d}\n", freed);
	else if (!freed && !rc)
		printf("nothing to unload: no region of model '%s' on any card\n", tag);
	return rc;
}
