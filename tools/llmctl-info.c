// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl info DEV: everything about one card: identity, HBM, counters,
 * links, regions, routing table.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "llmctl.h"

static void print_regions(const struct llmdev_hbm_region *r, unsigned int n)
{
	unsigned int i;

	print_text("  regions        %u\n", n);
	if (n)
		print_text("    %-6s %-32s %-10s %-12s %10s %s\n", "HANDLE", "NAME", "PERSISTENT",
			   "OFFSET", "LENGTH", "OWNER_UID");
	print_open_array("regions");
	for (i = 0; i < n; i++) {
		print_open_object(NULL);
		print_uint(PRINT_ANY, "handle", "    %-6u ", r[i].handle);
		print_string(PRINT_ANY, "name", "%-32s ", r[i].name[0] ? r[i].name : NULL);
		print_bool(PRINT_ANY, "persistent", "%-10s ", r[i].flags & LLMDEV_REGION_PERSISTENT);
		print_u64(PRINT_ANY, "hbm_offset", "0x%-10" PRIx64 " ", r[i].hbm_offset);
		print_bytes(PRINT_ANY, "length", "%10s ", r[i].length);
		print_uint(PRINT_ANY, "owner_uid", "%u\n", r[i].owner_uid);
		print_close_object();
	}
	print_close_array();
}

int cmd_info(int argc, char **argv)
{
	struct llmdev_hbm_region *regions = NULL;
	struct llmdev_route_entry *routes = NULL;
	unsigned int nregions = 0, nroutes = 0;
	struct llmdev_info info;
	struct llmdev_perf perf;
	struct llmdev *dev;
	char buf[32];
	uint32_t gen = 0;
	int ret;

	if (has_help(argc, argv) || argc != 2) {
		if (has_help(argc, argv))
			return puts("usage: llmctl info DEV [--json]\n\n"
				    "Everything about one card: identity, HBM, counters, links, regions,\n"
				    "routing table. DEV: N, llmdevN, /dev/llmdevN or a PCI address."), 0;
		return usage_err("usage: llmctl info DEV");
	}
	if (argc == 2 && argv[1][0] == '-')
		return usage_err("info: unknown option '%s'", argv[1]);
	if (need_driver())
		return EXIT_FAIL;
	if (open_card(argv[1], &dev))
		return EXIT_FAIL;
	ret = llmdev_get_info(dev, &info);
	if (!ret)
		ret = llmdev_perf_read(dev, &perf);
	if (!ret)
		ret = llmdev_hbm_list(dev, &regions, &nregions);
	if (!ret)
		ret = llmdev_route_get(dev, &routes, &nroutes, &gen);
	if (ret) {
		char state[16];

		if (ret == -EIO && !card_state(card_index(dev), state, sizeof(state)) &&
		    !strcmp(state, "dead"))
			msg("%s: the card is dead (a reset failed; see the kernel log): "
			    "'llmctl reset %s' tries again", llmdev_name(dev), llmdev_name(dev));
		else
			msg("%s: %s", llmdev_name(dev), llmdev_strerror(ret));
		llmdev_close(dev);
		return EXIT_FAIL;
	}

	print_start("llmdev.info/1");
	print_int(PRINT_ANY, "card", "llmdev%d\n", card_index(dev));
	snprintf(buf, sizeof(buf), "%04x:%02x:%02x.%d", info.pci_domain, info.pci_bus,
		 info.pci_devfn >> 3, info.pci_devfn & 7);
	print_string(PRINT_ANY, "pci", "  pci            %s\n", buf);
	if (card_state(card_index(dev), buf, sizeof(buf)))
		print_null(PRINT_ANY, "state", "  state          %s", "-");
	else
		print_string(PRINT_ANY, "state", "  state          %s", buf);
	print_uint(PRINT_ANY, "reset_count", " (%u resets", card_attr_uint(card_index(dev),
									      "reset_count"));
	print_uint(PRINT_ANY, "reset_failures", ", %u failed)\n",
		   card_attr_uint(card_index(dev), "reset_failures"));
	snprintf(buf, sizeof(buf), "%016llx", (unsigned long long)info.serial);
	print_string(PRINT_ANY, "serial", "  serial         %s\n", buf);
	snprintf(buf, sizeof(buf), "%u.%u", info.spec_version >> 16, info.spec_version & 0xffff);
	print_string(PRINT_ANY, "spec_version", "  spec version   %s\n", buf);
	print_int(PRINT_ANY, "numa_node", "  numa node      %d\n", info.numa_node);
	print_uint(PRINT_ANY, "irq_vectors", "  irq vectors    %u\n", info.irq_vectors);
	print_bytes(PRINT_ANY, "hbm_total", "  hbm            %s total", info.hbm_size);
	print_bytes(PRINT_ANY, "hbm_used", ", %s used", info.hbm_used);
	print_bytes(PRINT_ANY, "hbm_largest_free", ", %s largest free\n", info.hbm_largest_free);
	print_text("  counters\n");
	print_counters(&perf, NULL, "    ");
	print_text("  links\n");
	print_links(dev, "    ");
	print_regions(regions, nregions);
	print_text("  routing table  %u entr%s", nroutes, nroutes == 1 ? "y" : "ies");
	print_uint(PRINT_ANY, "route_generation", " (generation %u)\n", gen);
	print_routes("routes", routes, nroutes, regions, nregions, "    ");
	free(regions);
	free(routes);
	llmdev_close(dev);
	return print_done();
}
