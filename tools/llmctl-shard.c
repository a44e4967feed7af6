// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl shard plan|apply|show|clear: where a GGUF model's tensors go
 * (tools/shard.c plans it), and the routing tables that name the cards'
 * regions. The regions themselves are made by llmctl load
 * (llmctl-load.c); the helpers both use are in llmctl-common.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "llmctl.h"

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
		if (region_check_owner(devs[i], name, ho.handle, o->path))
			goto out;
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
	print_start("llmdev.shard-apply/1");
	print_uint(PRINT_ANY, "applied", "routing tables written on %u cards\n", n);
	print_open_array("cards");
	for (i = 0; i < n; i++) {
		const struct shard_card *c = &plan->cards[i];
		char name[LLMDEV_NAME_LEN], hop[16];

		region_name(o->path, c->stage, c->tp_rank, name);
		print_open_object(NULL);
		print_int(PRINT_ANY, "card", "llmdev%d:", card_index(devs[i]));
		print_string(PRINT_ANY, "region", " region %s", name);
		print_uint(PRINT_ANY, "handle", " (%u)", e[i].handle);
		print_uint(PRINT_ANY, "layer_first", " layers %u", e[i].layer_first);
		print_uint(PRINT_ANY, "layer_last", "-%u", e[i].layer_last);
		print_uint(PRINT_ANY, "tp_rank", " tp %u", e[i].tp_rank);
		print_uint(PRINT_ANY, "tp_size", "/%u", e[i].tp_size);
		print_string(PRINT_ANY, "next_hop", " -> %s",
			     hop_name(e[i].next_hop, hop, sizeof(hop)));
		print_uint(PRINT_ANY, "generation", ", generation %u\n", gen[i]);
		print_close_object();
	}
	print_close_array();
	rc = print_done();
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

static int shard_clear(const char *name)
{
	struct llmdev **devs;
	int n, i, ret, rc = 0;

	n = open_cards(name, &devs);
	if (n < 0)
		return EXIT_FAIL;
	for (i = 0; i < n; i++) {
		ret = llmdev_route_set(devs[i], NULL, 0, NULL);
		if (ret) {
			msg("%s: clearing the routing table: %s", llmdev_name(devs[i]),
			    admin_strerror(ret));
			rc = EXIT_FAIL;
			if (ret == -EPERM)
				break;	/* the same for every card */
		}
	}
	close_cards(devs, n);
	return rc;
}

static int shard_show(const char *name)
{
	struct llmdev **devs;
	int n, i, rc = 0;

	n = open_cards(name, &devs);
	if (n < 0)
		return EXIT_FAIL;
	print_start("llmdev.shard-show/1");
	print_open_array("cards");
	for (i = 0; i < n; i++) {
		struct llmdev_hbm_region *reg = NULL;
		struct llmdev_route_entry *e = NULL;
		unsigned int count = 0, nreg = 0;
		uint32_t gen = 0;
		int ret;

		ret = llmdev_route_get(devs[i], &e, &count, &gen);
		if (!ret)
			ret = llmdev_hbm_list(devs[i], &reg, &nreg);
		if (ret) {
			msg("%s: reading the routing table: %s", llmdev_name(devs[i]),
			    llmdev_strerror(ret));
			rc = EXIT_FAIL;
		} else {
			print_open_object(NULL);
			print_int(PRINT_ANY, "card", "llmdev%d", card_index(devs[i]));
			print_uint(PRINT_ANY, "generation", " (generation %u)", gen);
			print_text("%s\n", count ? "" : ": empty");
			print_routes("entries", e, count, reg, nreg, "  ");
			print_close_object();
		}
		free(e);
		free(reg);
	}
	print_close_array();
	close_cards(devs, n);
	return print_done() ? EXIT_FAIL : rc;
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
	bool plan_only;
	int ret;

	if (argc < 2)
		return usage_err("usage: llmctl shard plan|apply|show|clear ...");
	if (is_help(argv[1]))
		return puts(shard_usage), 0;
	if (!strcmp(argv[1], "show") || !strcmp(argv[1], "clear")) {
		bool clear = argv[1][0] == 'c';
		int i, devarg = 0;

		for (i = 2; i < argc; i++) {
			if (is_help(argv[i]))
				return puts(shard_usage), 0;
			else if (!devarg && argv[i][0] != '-')
				devarg = i;
			else
				return usage_err("shard %s: unexpected '%s'", argv[1], argv[i]);
		}
		return clear ? shard_clear(devarg ? argv[devarg] : NULL) :
		       shard_show(devarg ? argv[devarg] : NULL);
	}
	if (strcmp(argv[1], "plan") && strcmp(argv[1], "apply"))
		return usage_err("shard: unknown subcommand '%s'", argv[1]);
	plan_only = !strcmp(argv[1], "plan");
	/* for getopt_long()'s messages */
	argv[1] = plan_only ? "llmctl shard plan" : "llmctl shard apply";
	ret = parse_model_opts(argc - 1, argv + 1, &o, shard_usage, false);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (plan_only) {
		struct shard_plan *plan;
		struct gguf_file *g;
		struct llmdev **devs;

		if (make_plan(&o, false, &g, &plan, &devs))
			return EXIT_FAIL;
		shard_plan_print(plan, o.verbose);
		free_plan(g, plan, devs, o.tp * o.pp);
		return print_done();
	}
	return shard_apply(&o);
}
