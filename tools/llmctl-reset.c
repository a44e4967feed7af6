// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl reset DEV: reset a card (LLMDEV_RESET through llmdev_reset(),
 * CAP_SYS_ADMIN) and say whether it came back. Exit status 0 only when
 * the card is live afterwards; 2, with a message naming the card and the
 * cause, when the reset was refused or failed or left the card dead.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmctl.h"

int card_state(int card, char *buf, size_t len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "/sys/class/llmdev/llmdev%d/state", card);
	return read_sysfs(path, buf, len);
}

unsigned int card_attr_uint(int card, const char *attr)
{
	char path[PATH_MAX], buf[32];

	snprintf(path, sizeof(path), "/sys/class/llmdev/llmdev%d/%s", card, attr);
	return read_sysfs(path, buf, sizeof(buf)) ? 0 : (unsigned int)strtoul(buf, NULL, 10);
}

int cmd_reset(int argc, char **argv)
{
	unsigned int count;
	struct llmdev *dev;
	char state[32];
	int ret, card;

	if (has_help(argc, argv) || argc != 2) {
		if (has_help(argc, argv))
			return puts("usage: llmctl reset DEV [--json]\n\n"
				    "Reset the card (needs CAP_SYS_ADMIN): transfers and collectives in\n"
				    "flight fail, mappings are zapped, regions and the routing table are\n"
				    "kept, links train again (waited for, 1 s at most). Exit status 0 only\n"
				    "when the card is back.\n"
				    "DEV: N, llmdevN, /dev/llmdevN or a PCI address."), 0;
		return usage_err("usage: llmctl reset DEV");
	}
	if (argc == 2 && argv[1][0] == '-')
		return usage_err("reset: unknown option '%s'", argv[1]);
	if (need_driver())
		return EXIT_FAIL;
	if (open_card(argv[1], &dev))
		return EXIT_FAIL;
	card = card_index(dev);
	ret = llmdev_reset(dev);
	llmdev_close(dev);
	if (!ret)
		links_settle(card);
	if (ret == -EPERM || ret == -EOPNOTSUPP || ret == -ENODEV || ret == -EINTR) {
		msg("llmdev%d: reset: %s", card,
		    ret == -EOPNOTSUPP ? "this platform cannot reset the card" :
		    admin_strerror(ret));
		return EXIT_FAIL;
	}
	if (card_state(card, state, sizeof(state)))
		snprintf(state, sizeof(state), "unknown");
	count = card_attr_uint(card, "reset_count");

	print_start("llmdev.reset/1");
	print_int(PRINT_ANY, "card", "llmdev%d: ", card);
	print_string(PRINT_JSON, "state", NULL, state);
	print_uint(PRINT_JSON, "reset_count", NULL, count);
	print_uint(PRINT_JSON, "reset_failures", NULL, card_attr_uint(card, "reset_failures"));
	print_int(PRINT_JSON, "error", NULL, ret);
	if (!ret && !strcmp(state, "live"))
		print_text("reset; the card is back (%u resets since the driver bound)\n", count);
	else
		print_text("reset failed\n");
	if (print_done())
		return EXIT_FAIL;
	if (ret) {
		msg("llmdev%d: reset failed: %s; the card is %s (see the kernel log; "
		    "'llmctl reset llmdev%d' tries again, reloading the driver is the last resort)",
		    card, ret == -EIO ? "the card did not come back" : llmdev_strerror(ret),
		    state, card);
		return EXIT_FAIL;
	}
	if (strcmp(state, "live")) {
		msg("llmdev%d: the reset returned but the card is %s", card, state);
		return EXIT_FAIL;
	}
	return 0;
}
