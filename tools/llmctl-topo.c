// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl topo: a matrix of the cards, as nvidia-smi topo -m has it: how
 * each pair is connected over PCIe (from the sysfs device paths and NUMA
 * nodes) and over the peer links (the fewest up links from one to the
 * other; cards do not forward, so a route of more than one hop needs the
 * host or collectives' ring).
 *
 * PCIe relation of two cards, closest first:
 *   self         the same card
 *   switch       below the same PCIe switch (a bridge deeper than the root port)
 *   root_port    below the same root port, no switch shared
 *   host_bridge  the same host bridge (PCI root), different root ports
 *   numa_node    different host bridges, the same NUMA node
 *   sockets      different NUMA nodes: traffic crosses the inter-socket link
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmctl.h"
#include "../driver/llmdev_regs.h"

#define MAX_CARDS	64

struct topo_card {
	struct llmdev *dev;
	int index;
	char pci[32];
	char path[PATH_MAX];	/* the PCI device's sysfs path */
	int numa;
};

static const char *const rel_short[] = { "X", "SW", "RP", "HB", "NODE", "SYS" };
static const char *const rel_name[] = {
	"self", "switch", "root_port", "host_bridge", "numa_node", "sockets",
};

/* the n-th "/"-separated component of @p after /sys/devices/ (0: pciDDDD:BB) */
static int components(const char *p, const char *comp[], int max)
{
	int n = 0;

	if (strncmp(p, "/sys/devices/", 13))
		return 0;
	p += 13;
	while (*p && n < max) {
		comp[n++] = p;
		p = strchr(p, '/');
		if (!p)
			break;
		p++;
	}
	return n;
}

static size_t comp_len(const char *c)
{
	const char *e = strchr(c, '/');

	return e ? (size_t)(e - c) : strlen(c);
}

static int pcie_relation(const struct topo_card *a, const struct topo_card *b)
{
	const char *ca[32], *cb[32];
	int na, nb, k;

	if (a == b)
		return 0;
	na = components(a->path, ca, 32);
	nb = components(b->path, cb, 32);
	for (k = 0; k < na - 1 && k < nb - 1; k++)
		if (comp_len(ca[k]) != comp_len(cb[k]) || strncmp(ca[k], cb[k], comp_len(ca[k])))
			break;
	/* k components in common, the devices themselves excluded */
	if (k >= 3)
		return 1;
	if (k == 2)
		return 2;
	if (k == 1)
		return 3;
	if (a->numa == b->numa)
		return 4;
	return 5;
}

int link_hops(struct llmdev **devs, int n, int *hops)
{
	int adj[MAX_CARDS][MAX_CARDS] = {{0}};
	int i, j, p, k;

	if (n > MAX_CARDS)
		return -E2BIG;
	for (i = 0; i < n; i++)
		for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
			struct llmdev_link_info li;

			if (llmdev_link_get_info(devs[i], p, &li) || li.state != LLMDEV_LINK_UP ||
			    li.peer_minor < 0)
				continue;
			for (j = 0; j < n; j++)
				if (card_index(devs[j]) == li.peer_minor)
					adj[i][j] = 1;
		}
	/* BFS from each card; -1 unreachable */
	for (i = 0; i < n; i++) {
		int queue[MAX_CARDS], head = 0, tail = 0;

		for (j = 0; j < n; j++)
			hops[i * n + j] = -1;
		hops[i * n + i] = 0;
		queue[tail++] = i;
		while (head < tail) {
			k = queue[head++];
			for (j = 0; j < n; j++)
				if (adj[k][j] && hops[i * n + j] < 0) {
					hops[i * n + j] = hops[i * n + k] + 1;
					queue[tail++] = j;
				}
		}
	}
	return 0;
}

int cmd_topo(int argc, char **argv)
{
	struct topo_card cards[MAX_CARDS];
	struct llmdev **devs;
	int n, i, j, *hops, ret;
	char b[16];

	if (argc > 1) {
		if (has_help(argc, argv))
			return puts("usage: llmctl topo [--json]\n\n"
				    "Every pair of cards: PCIe relation (X self, SW same switch, RP same\n"
				    "root port, HB same host bridge, NODE same NUMA node, SYS across\n"
				    "sockets) and peer-link hops (fewest up links; - none)."), 0;
		return usage_err("topo takes no arguments");
	}
	n = open_cards(NULL, &devs);
	if (n < 0)
		return EXIT_FAIL;
	if (n > MAX_CARDS) {
		msg("more than %d cards", MAX_CARDS);
		close_cards(devs, n);
		return EXIT_FAIL;
	}
	hops = calloc(n * n + 1, sizeof(*hops));
	if (!hops) {
		close_cards(devs, n);
		return EXIT_FAIL;
	}
	for (i = 0; i < n; i++) {
		struct llmdev_info info;
		char link[PATH_MAX];

		cards[i].dev = devs[i];
		cards[i].index = card_index(devs[i]);
		ret = llmdev_get_info(devs[i], &info);
		if (ret) {
			msg("%s: %s", llmdev_name(devs[i]), llmdev_strerror(ret));
			free(hops);
			close_cards(devs, n);
			return EXIT_FAIL;
		}
		snprintf(cards[i].pci, sizeof(cards[i].pci), "%04x:%02x:%02x.%d",
			 info.pci_domain, info.pci_bus, info.pci_devfn >> 3, info.pci_devfn & 7);
		cards[i].numa = info.numa_node;
		snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s", cards[i].pci);
		if (!realpath(link, cards[i].path))
			cards[i].path[0] = 0;
	}
	ret = link_hops(devs, n, hops);
	if (ret) {
		msg("peer links: %s", strerror(-ret));
		free(hops);
		close_cards(devs, n);
		return EXIT_FAIL;
	}

	print_start("llmdev.topo/1");
	print_text("PCIe%*s", 6, "");
	for (j = 0; j < n; j++)
		print_text("%-9s", llmdev_name(devs[j]));
	print_text("%5s  %s\n", "NUMA", "PCI");
	for (i = 0; i < n; i++) {
		print_text("%-10s", llmdev_name(devs[i]));
		for (j = 0; j < n; j++)
			print_text("%-9s", rel_short[pcie_relation(&cards[i], &cards[j])]);
		print_text("%5d  %s\n", cards[i].numa, cards[i].pci);
	}
	print_text("\nlinks%*s", 5, "");
	for (j = 0; j < n; j++)
		print_text("%-9s", llmdev_name(devs[j]));
	print_text("\n");
	print_open_array("cards");
	for (i = 0; i < n; i++) {
		print_open_object(NULL);
		print_int(PRINT_JSON, "card", NULL, cards[i].index);
		print_string(PRINT_JSON, "pci", NULL, cards[i].pci);
		print_int(PRINT_JSON, "numa_node", NULL, cards[i].numa);
		print_text("%-10s", llmdev_name(devs[i]));
		print_open_array("peers");
		for (j = 0; j < n; j++) {
			int h = hops[i * n + j];

			if (i == j)
				snprintf(b, sizeof(b), "X");
			else if (h < 0)
				snprintf(b, sizeof(b), "-");
			else
				snprintf(b, sizeof(b), "%d", h);
			print_text("%-9s", b);
			if (i == j)
				continue;
			print_open_object(NULL);
			print_int(PRINT_JSON, "card", NULL, cards[j].index);
			print_string(PRINT_JSON, "pcie", NULL,
				     rel_name[pcie_relation(&cards[i], &cards[j])]);
			if (h < 0)
				print_null(PRINT_JSON, "link_hops", NULL, NULL);
			else
				print_int(PRINT_JSON, "link_hops", NULL, h);
			print_close_object();
		}
		print_close_array();
		print_text("\n");
		print_close_object();
	}
	print_close_array();
	print_text("\nPCIe: X self, SW same switch, RP same root port, HB same host bridge,\n"
		   "NODE same NUMA node, SYS across sockets. links: fewest up peer links\n"
		   "between the cards (- none).\n");
	free(hops);
	close_cards(devs, n);
	return print_done();
}
