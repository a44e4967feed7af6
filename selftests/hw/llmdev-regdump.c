// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev-regdump: print the state of llmdev cards from their registers,
 * read through sysfs (no driver needed; works with one bound too, as it
 * only reads). Needs root.
 *
 *   llmdev-regdump                 every card
 *   llmdev-regdump 0000:01:00.0    one card (the domain may be left out)
 *
 * Exit status: 0 success, 1 usage error, 2 failure (the message names the
 * device).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "llmdev_hw.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: llmdev-regdump [-h|--help] [PCI_ADDRESS]\n"
		"Print identity, sensors, status, error and reset counts, the perf\n"
		"counters, the links, the collective engine and the routing table of\n"
		"every llmdev card (%04x:%04x), or of the one at PCI_ADDRESS (e.g.\n"
		"0000:01:00.0 or 01:00.0). Reads BAR 0 through sysfs; needs root.\n"
		"Exit status: 0 ok, 1 usage error, 2 failure.\n",
		LLMDEV_PCI_VENDOR_ID, LLMDEV_PCI_DEVICE_ID);
}

static void print_status(uint32_t st)
{
	printf("  %-14s %#x", "status", st);
	if (st & LLMDEV_STATUS_READY)
		printf(" ready");
	if (st & LLMDEV_STATUS_ERROR)
		printf(" error");
	if (st & LLMDEV_STATUS_ENABLED)
		printf(" enabled");
	printf("\n");
}

static int dump(const char *bdf)
{
	struct llmdev_card c;
	uint32_t id, ver, temp, crit, pw, cap, es;
	unsigned int i;
	char drv[64];

	if (llmdev_card_open(&c, bdf)) {
		fprintf(stderr, "llmdev-regdump: %s\n", c.err);
		return 2;
	}
	id = llmdev_rd32(&c, LLMDEV_REG_ID);
	if (id != LLMDEV_ID_MAGIC) {
		fprintf(stderr, "llmdev-regdump: %s: ID reads %#x, not %#x: card not responding\n",
			bdf, id, LLMDEV_ID_MAGIC);
		llmdev_card_close(&c);
		return 2;
	}
	ver = llmdev_rd32(&c, LLMDEV_REG_VERSION);
	temp = llmdev_rd32(&c, LLMDEV_REG_TEMP_MC);
	crit = llmdev_rd32(&c, LLMDEV_REG_TEMP_CRIT_MC);
	pw = llmdev_rd32(&c, LLMDEV_REG_POWER_MW);
	cap = llmdev_rd32(&c, LLMDEV_REG_POWER_CAP_MW);
	es = llmdev_rd32(&c, LLMDEV_REG_ERR_STATUS);

	printf("%s", bdf);
	if (llmdev_card_driver(bdf, drv, sizeof(drv)))
		printf(" (driver %s)", drv);
	printf("\n");
	printf("  %-14s %#010x\n", "id", id);
	printf("  %-14s %u.%u\n", "spec version", ver >> 16, ver & 0xffff);
	printf("  %-14s 0x%016" PRIx64 "\n", "serial", llmdev_rd64(&c, LLMDEV_REG_SERIAL));
	printf("  %-14s %" PRIu64 " MiB\n", "hbm size",
	       llmdev_rd64(&c, LLMDEV_REG_HBM_SIZE) >> 20);
	printf("  %-14s %u.%u °C (critical %u.%u °C)\n", "temperature",
	       temp / 1000, temp % 1000 / 100, crit / 1000, crit % 1000 / 100);
	printf("  %-14s %u.%u W (cap %u.%u W)\n", "power",
	       pw / 1000, pw % 1000 / 100, cap / 1000, cap % 1000 / 100);
	print_status(llmdev_rd32(&c, LLMDEV_REG_STATUS));
	printf("  %-14s %#x", "err_status", es);
	for (i = 1; i <= LLMDEV_ERR_MAX; i++)
		if (es & (1u << i))
			printf(" %s", llmdev_err_name(i));
	printf("\n");
	printf("  %-14s %u\n", "err_count", llmdev_rd32(&c, LLMDEV_REG_ERR_COUNT));
	printf("  %-14s %u\n", "reset_count", llmdev_rd32(&c, LLMDEV_REG_RESET_COUNT));
	printf("  perf counters:\n");
	for (i = 0; i < LLMDEV_PERF_NUM_COUNTERS; i++)
		printf("    %-18s %" PRIu64 "\n", llmdev_perf_name(i), llmdev_perf(&c, i));
	if (ver >= (1u << 16 | 1)) {
		static const char *const state[] = { "down", "training", "up", "?" };

		printf("  links (%u Gb/s), link_event %#x, event_cause %#x:\n",
		       llmdev_rd32(&c, LLMDEV_REG_LINK_GBPS),
		       llmdev_rd32(&c, LLMDEV_REG_LINK_EVENT),
		       llmdev_rd32(&c, LLMDEV_REG_EVENT_CAUSE));
		for (i = 0; i < LLMDEV_NUM_LINK_PORTS; i++) {
			uint32_t b = LLMDEV_LINK_BASE(i);
			uint32_t st = llmdev_rd32(&c, b + LLMDEV_LINK_STATUS);

			printf("    port %u %-8s%s%s", i, state[LLMDEV_LINK_STATE(st)],
			       st & LLMDEV_LINK_STATUS_CABLED ? " cabled" : "",
			       st & LLMDEV_LINK_STATUS_FORCED_DOWN ? " forced-down" : "");
			if (LLMDEV_LINK_STATE(st) == LLMDEV_LINK_STATE_UP)
				printf(" peer 0x%016" PRIx64 " port %u",
				       llmdev_rd64(&c, b + LLMDEV_LINK_PEER_SERIAL),
				       llmdev_rd32(&c, b + LLMDEV_LINK_PEER_PORT));
			printf(" tx %" PRIu64 " rx %" PRIu64 " errors %" PRIu64 "/%" PRIu64
			       " down %u\n",
			       llmdev_rd64(&c, b + LLMDEV_LINK_TX_BYTES),
			       llmdev_rd64(&c, b + LLMDEV_LINK_RX_BYTES),
			       llmdev_rd64(&c, b + LLMDEV_LINK_TX_ERRORS),
			       llmdev_rd64(&c, b + LLMDEV_LINK_RX_ERRORS),
			       llmdev_rd32(&c, b + LLMDEV_LINK_DOWN_COUNT));
		}
		printf("  %-14s status %#x, %u finished, last tag %#" PRIx64 "\n", "collective",
		       llmdev_rd32(&c, LLMDEV_REG_COLL_STATUS),
		       llmdev_rd32(&c, LLMDEV_REG_COLL_COMPLETED),
		       llmdev_rd64(&c, LLMDEV_REG_COLL_DONE_TAG));
		printf("  %-14s %u entries, generation %u, status %#x\n", "routing",
		       llmdev_rd32(&c, LLMDEV_REG_ROUTE_ACTIVE_NUM),
		       llmdev_rd32(&c, LLMDEV_REG_ROUTE_GEN),
		       llmdev_rd32(&c, LLMDEV_REG_ROUTE_STATUS));
	}
	llmdev_card_close(&c);
	return 0;
}

int main(int argc, char **argv)
{
	char bdf[LLMDEV_MAX_CARDS][32], want[32];
	int n, i, rc = 0;
	uint64_t ven, dev;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout);
		return 0;
	}
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		usage(stderr);
		return 1;
	}
	if (geteuid()) {
		fprintf(stderr, "llmdev-regdump: needs root to map the card registers\n");
		return 2;
	}
	if (argc == 2) {
		/* accept bus:dev.fn without the domain */
		if (strlen(argv[1]) >= sizeof(want) - 5) {
			fprintf(stderr, "llmdev-regdump: %s: not a PCI address\n", argv[1]);
			return 1;
		}
		snprintf(want, sizeof(want), "%s%s",
			 strchr(argv[1], ':') == strrchr(argv[1], ':') ? "0000:" : "",
			 argv[1]);
		if (llmdev_sysfs_read_u64(want, "vendor", &ven) ||
		    llmdev_sysfs_read_u64(want, "device", &dev)) {
			fprintf(stderr, "llmdev-regdump: %s: no such PCI device\n", want);
			return 2;
		}
		if (ven != LLMDEV_PCI_VENDOR_ID || dev != LLMDEV_PCI_DEVICE_ID) {
			fprintf(stderr, "llmdev-regdump: %s: not an llmdev card (%04" PRIx64
				":%04" PRIx64 ")\n", want, ven, dev);
			return 2;
		}
		return dump(want);
	}
	n = llmdev_find_cards(bdf, LLMDEV_MAX_CARDS);
	if (!n) {
		fprintf(stderr, "llmdev-regdump: no llmdev card (%04x:%04x) in %s\n",
			LLMDEV_PCI_VENDOR_ID, LLMDEV_PCI_DEVICE_ID, LLMDEV_SYSFS_PCI);
		return 2;
	}
	for (i = 0; i < n; i++) {
		if (i)
			printf("\n");
		if (dump(bdf[i]))
			rc = 2;
	}
	return rc;
}
