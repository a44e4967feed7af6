// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl link show [DEV] | link set DEV PORT up|down: the peer-link ports.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmctl.h"
#include "../driver/llmdev_regs.h"

int cmd_link(int argc, char **argv)
{
	struct llmdev **devs;
	int n, i;

	if (argc < 2)
		return usage_err("usage: llmctl link show [DEV]");
	/* after any subcommand too: no card is opened, no driver loaded */
	if (has_help(argc, argv)) {
		puts("usage: llmctl link show [DEV] [--json]\n"
		     "       llmctl link set DEV PORT up|down\n\n"
		     "show  every port of DEV (default: every card): state, peer, counters\n"
		     "set   enable or disable a port (needs CAP_SYS_ADMIN)");
		return 0;
	}
	if (!strcmp(argv[1], "set")) {
		struct llmdev *dev;
		char *end;
		long port;
		int ret;

		if (argc != 5 || (strcmp(argv[4], "up") && strcmp(argv[4], "down")))
			return usage_err("usage: llmctl link set DEV PORT up|down");
		port = strtol(argv[3], &end, 10);
		if (end == argv[3] || *end || port < 0 || port >= LLMDEV_NUM_LINK_PORTS)
			return usage_err("link set: port must be 0..%d", LLMDEV_NUM_LINK_PORTS - 1);
		if (need_driver() || open_card(argv[2], &dev))
			return EXIT_FAIL;
		ret = llmdev_link_set_enabled(dev, port, !strcmp(argv[4], "up"));
		if (ret)
			msg("%s: link%ld: %s", llmdev_name(dev), port, admin_strerror(ret));
		llmdev_close(dev);
		return ret ? EXIT_FAIL : 0;
	}
	if (strcmp(argv[1], "show"))
		return usage_err("link: unknown subcommand '%s'", argv[1]);
	if (argc > 3)
		return usage_err("usage: llmctl link show [DEV]");
	n = open_cards(argc == 3 ? argv[2] : NULL, &devs);
	if (n < 0)
		return EXIT_FAIL;
	print_start("llmdev.links/1");
	print_open_array("cards");
	for (i = 0; i < n; i++) {
		print_open_object(NULL);
		print_int(PRINT_ANY, "card", "llmdev%d\n", card_index(devs[i]));
		print_links(devs[i], "  ");
		print_close_object();
	}
	print_close_array();
	close_cards(devs, n);
	return print_done();
}
