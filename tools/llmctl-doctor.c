// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl doctor [--level 1|2]: health checks, as dcgmi diag or xbutil
 * validate have them. One line per check: PASS, FAIL or SKIP, what was
 * found and, for a failure, what to do. Exit status 0 only when no check
 * failed (skips do not fail).
 *
 * Level 1 (quick, changes nothing): the driver is loaded; driver,
 * library and card spec versions agree; module parameters are sane; per
 * card: it is live, its PCIe link runs at its maximum, its cabled peer
 * links are up, and the ports its routing table sends traffic to are up.
 * Level 2 adds, per card, a DMA self-test (1 MiB of a pattern to the card
 * and back, compared) and an AllReduce self-test over every card whose
 * links form a ring (f32 sum, every element of every rank checked); they
 * allocate HBM for the test and free it.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmctl.h"
#include "../driver/llmdev_regs.h"

#define SELFTEST_BYTES	(1u << 20)
#define SELFTEST_NS	(30ULL * 1000000000ULL)

static int n_pass, n_fail, n_skip;

enum { PASS, FAIL, SKIP };

/* One check's line: @fix (a printf format, or NULL) is said for a FAIL. */
static void __attribute__((format(printf, 5, 6)))
check(int status, const char *name, int card, const char *fix, const char *fmt, ...)
{
	static const char *const word[] = { "PASS", "FAIL", "SKIP" };
	char detail[512], label[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (card >= 0)
		snprintf(label, sizeof(label), "llmdev%d %s", card, name);
	else
		snprintf(label, sizeof(label), "%s", name);
	print_open_object(NULL);
	print_string(PRINT_ANY, "status", "%s  ", word[status]);
	print_string(PRINT_JSON, "check", NULL, name);
	if (card >= 0)
		print_int(PRINT_JSON, "card", NULL, card);
	else
		print_null(PRINT_JSON, "card", NULL, NULL);
	print_text("%-24s ", label);
	print_string(PRINT_ANY, "detail", "%s\n", detail);
	if (status == FAIL && fix)
		print_string(PRINT_ANY, "fix", "      fix: %s\n", fix);
	else
		print_null(PRINT_JSON, "fix", NULL, NULL);
	print_close_object();
	if (status == PASS)
		n_pass++;
	else if (status == FAIL)
		n_fail++;
	else
		n_skip++;
}

static int param_uint(const char *name, unsigned int *v)
{
	char path[PATH_MAX], buf[32];
	int ret;

	snprintf(path, sizeof(path), "/sys/module/llmdev/parameters/%s", name);
	ret = read_sysfs(path, buf, sizeof(buf));
	if (!ret)
		*v = (unsigned int)strtoul(buf, NULL, 10);
	return ret;
}

static void check_versions(struct llmdev **devs, int n)
{
	char ver[32], want[32], fix[128];
	unsigned int maj = 0, min = 0;
	int i;

	snprintf(want, sizeof(want), "%d.%d", LLMDEV_ABI_MAJOR, LLMDEV_ABI_MINOR);
	snprintf(fix, sizeof(fix), "install the driver and libllmdev of the same release (ABI %s)",
		 want);
	if (read_sysfs("/sys/module/llmdev/version", ver, sizeof(ver)) ||
	    sscanf(ver, "%u.%u", &maj, &min) != 2)
		check(FAIL, "versions", -1, fix,
		      "the driver has no version (built before ABI 1.2?); libllmdev %s", want);
	else if (maj != LLMDEV_ABI_MAJOR || min < LLMDEV_ABI_MINOR)
		check(FAIL, "versions", -1, fix,
		      "driver ABI %s is older than libllmdev's %s", ver, want);
	else
		check(PASS, "versions", -1, NULL, "driver ABI %s, libllmdev ABI %s", ver, want);
	for (i = 0; i < n; i++) {
		struct llmdev_info info;
		int card = card_index(devs[i]);

		if (llmdev_get_info(devs[i], &info)) {
			check(SKIP, "spec version", card, NULL, "the card does not answer");
			continue;
		}
		if (info.spec_version >> 16 != LLMDEV_SPEC_MAJOR)
			check(FAIL, "spec version", card,
			      "the card needs another driver: update the driver or the card's bitstream",
			      "spec %u.%u, the driver knows %u.x", info.spec_version >> 16,
			      info.spec_version & 0xffff, LLMDEV_SPEC_MAJOR);
		else
			check(PASS, "spec version", card, NULL, "spec %u.%u (driver knows up to %d.%d)",
			      info.spec_version >> 16, info.spec_version & 0xffff,
			      LLMDEV_SPEC_MAJOR, LLMDEV_SPEC_MINOR);
	}
}

/*
 * Append to @buf (@size bytes, *@len used) what snprintf() makes of @fmt;
 * what does not fit is cut, ending in "...": *@len never passes @size - 1.
 */
static void __attribute__((format(printf, 4, 5)))
append(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len >= size - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *len, size - *len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < size - *len) {
		*len += n;
		return;
	}
	*len = size - 1;
	if (size > 4)
		memcpy(buf + size - 4, "...", 4);
}

static void check_params(void)
{
	static const struct { const char *name; unsigned int lo, hi; } p[] = {
		{ "dma_timeout_ms", 100, 600000 },
		{ "coll_timeout_ms", 100, 600000 },
	};
	char buf[512] = "", fix[256], links[8] = "";
	size_t len = 0;
	bool bad = false;
	unsigned int i, v;

	for (i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
		if (param_uint(p[i].name, &v)) {
			append(buf, sizeof(buf), &len, "%s%s unreadable",
			       len ? ", " : "", p[i].name);
			bad = true;
			continue;
		}
		append(buf, sizeof(buf), &len, "%s%s=%u", len ? ", " : "",
		       p[i].name, v);
		if (v < p[i].lo || v > p[i].hi) {
			append(buf, sizeof(buf), &len, " (outside %u..%u)",
			       p[i].lo, p[i].hi);
			bad = true;
		}
	}
	if (!read_sysfs("/sys/module/llmdev/parameters/links_enable", links, sizeof(links)))
		append(buf, sizeof(buf), &len, ", links_enable=%s", links);
	snprintf(fix, sizeof(fix), "set it between the bounds: echo 10000 > "
		 "/sys/module/llmdev/parameters/<name>, or reload with 'llmctl driver load <name>=10000'");
	if (bad)
		check(FAIL, "module parameters", -1, fix, "%s", buf);
	else if (links[0] == 'N')
		check(FAIL, "module parameters", -1,
		      "reload the driver without links_enable=0 (or enable ports: 'llmctl link set')",
		      "%s: peer links stay down", buf);
	else
		check(PASS, "module parameters", -1, NULL, "%s", buf);
}

static void check_card(struct llmdev *dev)
{
	int card = card_index(dev), p, ret;
	char state[32], path[PATH_MAX], cur[64] = "", max[64] = "", fix[160];
	char cw[16] = "", mw[16] = "", pci[32];
	struct llmdev_route_entry *routes = NULL;
	unsigned int nroutes = 0, i;
	struct llmdev_info info;
	uint32_t gen;
	char down[128] = "";
	size_t len = 0;
	int ncabled = 0;

	if (card_state(card, state, sizeof(state)))
		snprintf(state, sizeof(state), "unknown");
	snprintf(fix, sizeof(fix), "'llmctl reset llmdev%d'; if it stays dead, reload the driver",
		 card);
	check(strcmp(state, "live") ? FAIL : PASS, "state", card, fix, "%s, %u reset(s), %u failed",
	      state, card_attr_uint(card, "reset_count"), card_attr_uint(card, "reset_failures"));
	if (strcmp(state, "live"))
		return;

	ret = llmdev_get_info(dev, &info);
	if (ret) {
		check(FAIL, "info", card, "see the kernel log", "%s", llmdev_strerror(ret));
		return;
	}
	snprintf(pci, sizeof(pci), "%04x:%02x:%02x.%d", info.pci_domain, info.pci_bus,
		 info.pci_devfn >> 3, info.pci_devfn & 7);
#define PCI_ATTR(a, b) do {							\
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/" a, pci);	\
		if (read_sysfs(path, b, sizeof(b)))					\
			b[0] = 0;							\
	} while (0)
	PCI_ATTR("current_link_speed", cur);
	PCI_ATTR("max_link_speed", max);
	PCI_ATTR("current_link_width", cw);
	PCI_ATTR("max_link_width", mw);
#undef PCI_ATTR
	if (!cur[0] || !max[0] || strstr(cur, "Unknown") || strstr(max, "Unknown"))
		check(SKIP, "pcie link", card, NULL, "speed not reported by the platform");
	else if (strcmp(cur, max) || strcmp(cw, mw))
		check(FAIL, "pcie link", card,
		      "reseat the card or check the slot; a degraded link limits DMA",
		      "%s x%s, the card can %s x%s", cur, cw, max, mw);
	else
		check(PASS, "pcie link", card, NULL, "%s x%s", cur, cw);

	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
		struct llmdev_link_info li;

		if (llmdev_link_get_info(dev, p, &li) || !(li.link_flags & LLMDEV_LINK_CABLED))
			continue;
		ncabled++;
		if (li.state != LLMDEV_LINK_UP)
			append(down, sizeof(down), &len, "%s%d (%s)", len ? ", " : "",
			       p, link_state_name(li.state));
	}
	snprintf(fix, sizeof(fix), "enable the ports ('llmctl link set llmdev%d PORT up') and "
		 "check the cables and the peer cards", card);
	if (!ncabled)
		check(SKIP, "links", card, NULL, "no port is cabled");
	else if (len)
		check(FAIL, "links", card, fix, "cabled port(s) not up: %s", down);
	else
		check(PASS, "links", card, NULL, "%d cabled port(s), all up", ncabled);

	ret = llmdev_route_get(dev, &routes, &nroutes, &gen);
	if (ret) {
		check(FAIL, "routes", card, "see the kernel log", "reading the routing table: %s",
		      llmdev_strerror(ret));
		return;
	}
	len = 0;
	down[0] = 0;
	for (i = 0; i < nroutes; i++) {
		struct llmdev_link_info li;
		uint32_t hop = routes[i].next_hop;

		if (hop == LLMDEV_HOP_HOST)
			continue;
		if (hop >= LLMDEV_NUM_LINK_PORTS || llmdev_link_get_info(dev, hop, &li) ||
		    li.state != LLMDEV_LINK_UP)
			append(down, sizeof(down), &len, "%slayers %u-%u -> link%u",
			       len ? ", " : "", routes[i].layer_first,
			       routes[i].layer_last, hop);
	}
	snprintf(fix, sizeof(fix), "bring the links up ('llmctl link set llmdev%d PORT up') or "
		 "apply a plan for the links there are ('llmctl shard apply')", card);
	if (!nroutes)
		check(SKIP, "routes", card, NULL, "no routing table loaded");
	else if (len)
		check(FAIL, "routes", card, fix, "next hop down: %s", down);
	else
		check(PASS, "routes", card, NULL, "%u entr%s, every next hop up", nroutes,
		      nroutes == 1 ? "y" : "ies");
	free(routes);
}

static uint32_t pattern(uint32_t i, uint32_t seed)
{
	uint32_t x = i * 2654435761u ^ seed;

	x ^= x >> 15;
	x *= 2246822519u;
	return x ^ (x >> 13);
}

static void dma_selftest(struct llmdev *dev)
{
	int card = card_index(dev), ret;
	struct llmdev_hbm_alloc a;
	uint32_t *out, *in, i, bad = 0;
	char fix[160];

	snprintf(fix, sizeof(fix), "see the kernel log and 'devlink health show'; "
		 "'llmctl reset llmdev%d' and run doctor again", card);
	out = malloc(SELFTEST_BYTES);
	in = malloc(SELFTEST_BYTES);
	if (!out || !in) {
		check(FAIL, "dma self-test", card, NULL, "out of memory");
		goto out;
	}
	for (i = 0; i < SELFTEST_BYTES / 4; i++)
		out[i] = pattern(i, card + 1);
	memset(in, 0, SELFTEST_BYTES);
	ret = llmdev_hbm_alloc(dev, SELFTEST_BYTES, 0, 0, NULL, &a);
	if (ret) {
		check(ret == -ENOSPC ? SKIP : FAIL, "dma self-test", card, fix,
		      "allocating 1 MiB of HBM: %s", llmdev_strerror(ret));
		goto out;
	}
	ret = llmdev_copy_to_hbm(dev, a.handle, 0, out, SELFTEST_BYTES, SELFTEST_NS);
	if (!ret)
		ret = llmdev_copy_from_hbm(dev, a.handle, 0, in, SELFTEST_BYTES, SELFTEST_NS);
	llmdev_hbm_free(dev, a.handle);
	if (ret) {
		check(FAIL, "dma self-test", card, fix, "transfer failed: %s", llmdev_strerror(ret));
		goto out;
	}
	for (i = 0; i < SELFTEST_BYTES / 4; i++)
		bad += in[i] != out[i];
	if (bad)
		check(FAIL, "dma self-test", card, fix, "%u of %u words read back wrong", bad,
		      SELFTEST_BYTES / 4);
	else
		check(PASS, "dma self-test", card, NULL, "1 MiB to the card and back, identical");
out:
	free(out);
	free(in);
}

/* @order gets a ring of up links through every card, from devs[0]. */
static bool find_ring(int n, const int *hops, int *order)
{
	bool used[64] = { false };
	int k, j;

	order[0] = 0;
	used[0] = true;
	for (k = 1; k < n; k++) {
		for (j = 0; j < n; j++)
			if (!used[j] && hops[order[k - 1] * n + j] == 1)
				break;
		if (j == n)
			return false;
		order[k] = j;
		used[j] = true;
	}
	return n == 2 || hops[order[n - 1] * n + order[0]] == 1;
}

static void allreduce_selftest(struct llmdev **devs, int n)
{
	const uint64_t count = 4096;
	const size_t bytes = count * sizeof(float);
	struct llmdev_coll_buf bufs[64];
	struct llmdev *ranks[64];
	struct llmdev_group *g = NULL;
	uint32_t handles[64] = { 0 };
	int order[64], *hops, r, ret, allocated = 0;
	uint64_t i, bad = 0;
	float *buf = NULL;
	char detail[64];

	if (n < 2) {
		check(SKIP, "allreduce self-test", -1, NULL, "needs two cards or more");
		return;
	}
	if (n > 64) {
		check(SKIP, "allreduce self-test", -1, NULL, "more than 64 cards");
		return;
	}
	hops = calloc(n * n, sizeof(*hops));
	buf = malloc(bytes);
	if (!hops || !buf || link_hops(devs, n, hops)) {
		check(FAIL, "allreduce self-test", -1, NULL, "out of memory");
		goto out;
	}
	if (!find_ring(n, hops, order)) {
		check(SKIP, "allreduce self-test", -1, NULL,
		      "the up links of the %d cards do not form a ring", n);
		goto out;
	}
	for (r = 0; r < n; r++) {
		struct llmdev_hbm_alloc a;

		ranks[r] = devs[order[r]];
		ret = llmdev_hbm_alloc(ranks[r], 2 * bytes, 0, 0, NULL, &a);
		if (ret) {
			check(ret == -ENOSPC ? SKIP : FAIL, "allreduce self-test",
			      card_index(ranks[r]), "see the kernel log", "allocating HBM: %s",
			      llmdev_strerror(ret));
			goto out;
		}
		handles[r] = a.handle;
		allocated = r + 1;
		for (i = 0; i < count; i++)
			buf[i] = (float)((i + 3 * r) % 97) + (float)r;
		ret = llmdev_copy_to_hbm(ranks[r], a.handle, 0, buf, bytes, SELFTEST_NS);
		if (ret) {
			check(FAIL, "allreduce self-test", card_index(ranks[r]), "see the kernel log",
			      "writing the input: %s", llmdev_strerror(ret));
			goto out;
		}
		memset(&bufs[r], 0, sizeof(bufs[r]));
		bufs[r].src_handle = a.handle;
		bufs[r].dst_handle = a.handle;
		bufs[r].dst_offset = bytes;
	}
	ret = llmdev_group_create(ranks[0], ranks, n, &g);
	if (!ret)
		ret = llmdev_allreduce(g, bufs, count, LLMDEV_DTYPE_F32, LLMDEV_REDOP_SUM,
				       SELFTEST_NS);
	if (ret) {
		check(FAIL, "allreduce self-test", -1,
		      "check the links ('llmctl link show', 'devlink health show') and the kernel log",
		      "AllReduce over %d cards: %s", n, llmdev_strerror(ret));
		goto out;
	}
	for (r = 0; r < n; r++) {
		ret = llmdev_copy_from_hbm(ranks[r], handles[r], bytes, buf, bytes, SELFTEST_NS);
		if (ret) {
			bad += count;
			continue;
		}
		for (i = 0; i < count; i++) {
			float want = 0;
			int q;

			for (q = 0; q < n; q++)
				want += (float)((i + 3 * q) % 97) + (float)q;
			bad += buf[i] != want;
		}
	}
	snprintf(detail, sizeof(detail), "%d ranks", n);
	if (bad)
		check(FAIL, "allreduce self-test", -1,
		      "the cards computed a wrong sum: report it with 'llmctl info' of each card",
		      "f32 sum over %s: %llu of %llu elements wrong", detail,
		      (unsigned long long)bad, (unsigned long long)(count * n));
	else
		check(PASS, "allreduce self-test", -1, NULL,
		      "f32 sum of %llu elements over %s, every rank's result checked",
		      (unsigned long long)count, detail);
out:
	llmdev_group_destroy(g);
	for (r = 0; r < allocated; r++)
		llmdev_hbm_free(ranks[r], handles[r]);
	free(hops);
	free(buf);
}

int cmd_doctor(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct llmdev **devs = NULL;
	int c, level = 1, n = 0, i, err = 0, bad = 0;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			level = (int)strtol(optarg, &end, 10);
			if (*end || (level != 1 && level != 2))
				return usage_err("doctor: --level is 1 or 2, not '%s'", optarg);
			break;
		case 'h':
			puts("usage: llmctl doctor [--level 1|2] [--json]\n\n"
			     "Health checks, one line each: PASS, FAIL (with what to do) or SKIP.\n"
			     "Level 1: driver loaded, versions, module parameters; per card: state,\n"
			     "PCIe link, cabled links up, next hops of the routing table up.\n"
			     "Level 2 adds a DMA self-test per card and an AllReduce self-test over\n"
			     "the cards (data checked). Exit status 0 only when nothing failed.");
			return 0;
		default:
			return usage_hint();
		}
	}
	if (optind < argc)
		return usage_err("doctor takes no arguments but --level");
	n_pass = n_fail = n_skip = 0;
	print_start("llmdev.doctor/1");
	print_int(PRINT_JSON, "level", NULL, level);
	print_open_array("checks");
	if (!driver_loaded()) {
		check(FAIL, "driver", -1, "'llmctl driver load' (as root)",
		      "the llmdev driver is not loaded");
	} else {
		check(PASS, "driver", -1, NULL, "llmdev loaded");
		n = open_cards_all(&devs, &err, &bad);
		if (err)
			check(FAIL, "cards", -1,
			      err == -EACCES ? "run as root, or join the group llmdev" : NULL,
			      "/dev/llmdev%d: %s", bad, llmdev_strerror(err));
		else if (n <= 0)
			check(FAIL, "cards", -1,
			      "check 'llmctl list': cards without the driver bound, or none installed",
			      "no card is bound to the driver");
		else
			check(PASS, "cards", -1, NULL, "%d card(s)", n);
		check_versions(devs, n > 0 ? n : 0);
		check_params();
		for (i = 0; i < n; i++)
			check_card(devs[i]);
		if (level >= 2 && n > 0) {
			for (i = 0; i < n; i++) {
				char st[32];

				if (card_state(card_index(devs[i]), st, sizeof(st)) || strcmp(st, "live"))
					check(SKIP, "dma self-test", card_index(devs[i]), NULL,
					      "the card is not live");
				else
					dma_selftest(devs[i]);
			}
			allreduce_selftest(devs, n);
		}
	}
	print_close_array();
	print_int(PRINT_JSON, "passed", NULL, n_pass);
	print_int(PRINT_JSON, "failed", NULL, n_fail);
	print_int(PRINT_JSON, "skipped", NULL, n_skip);
	print_text("%d PASS, %d FAIL, %d SKIP\n", n_pass, n_fail, n_skip);
	close_cards(devs, n);
	if (print_done())
		return EXIT_FAIL;
	return n_fail ? EXIT_FAIL : 0;
}
