// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl stats [DEV] [--watch SEC [--count N]]: the perf counters, with
 * rates between samples, and the peer-link counters.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llmctl.h"

static void print_stats(struct llmdev *dev, const struct llmdev_perf *now,
			const struct llmdev_perf *before)
{
	print_open_object(NULL);
	print_int(PRINT_ANY, "card", "llmdev%d\n", card_index(dev));
	print_u64(PRINT_JSON, "time_ns", NULL, now->host_time_ns);
	print_counters(now, before, "  ");
	print_links(dev, "  ");
	print_close_object();
}

int cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "watch", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'c' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct llmdev_perf *now = NULL, *before = NULL;
	double watch = 0;
	long count = -1, round;
	struct llmdev **devs;
	int c, n, i, ret = 0;
	bool om = false;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "w:c:f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (!strcmp(optarg, "openmetrics"))
				om = true;
			else if (strcmp(optarg, "text"))
				return usage_err("stats: --format is text or openmetrics, not '%s'",
						 optarg);
			break;
		case 'w':
			watch = strtod(optarg, &end);
			/* !(> 0) also refuses NaN */
			if (*end || end == optarg || !(watch > 0) || watch > 86400)
				return usage_err("stats: --watch wants seconds (> 0), not '%s'", optarg);
			break;
		case 'c':
			count = strtol(optarg, &end, 10);
			if (*end || count < 1)
				return usage_err("stats: --count wants a positive number, not '%s'", optarg);
			break;
		case 'h':
			puts("usage: llmctl stats [DEV] [--watch SEC [--count N]] [--json]\n"
			     "       llmctl stats [DEV] --format openmetrics [--watch SEC [--count N]]\n\n"
			     "Every perf counter of DEV (default: every card), in human units, and\n"
			     "the peer-link counters. With --watch, again every SEC seconds with\n"
			     "rates from the deltas, N times (default: until interrupted); with\n"
			     "--json one object per sample and line. --format openmetrics writes\n"
			     "the OpenMetrics text format (Prometheus, node_exporter's textfile\n"
			     "collector): every card's counters, HBM, sensors and links, ending\n"
			     "with '# EOF' (with --watch, one exposition per sample).");
			return 0;
		default:
			return usage_hint();
		}
	}
	if (argc - optind > 1)
		return usage_err("stats: one card at most");
	if (count > 0 && !watch)
		return usage_err("stats: --count needs --watch");
	if (om && print_is_json())
		return usage_err("stats: --format openmetrics and --json exclude each other");
	n = open_cards(optind < argc ? argv[optind] : NULL, &devs);
	if (n < 0)
		return EXIT_FAIL;
	now = calloc(n, sizeof(*now));
	before = calloc(n, sizeof(*before));
	if (!now || !before) {
		msg("out of memory");
		ret = EXIT_FAIL;
		goto out;
	}
	catch_signals(false);
	for (round = 0; !stop; round++) {
		/* every card first: a failure prints no half sample */
		for (i = 0; i < n; i++) {
			before[i] = now[i];
			c = llmdev_perf_read(devs[i], &now[i]);
			if (c) {
				msg("%s: reading counters: %s", llmdev_name(devs[i]),
				    llmdev_strerror(c));
				ret = EXIT_FAIL;
				goto out;
			}
		}
		if (om) {
			c = print_openmetrics(stdout, devs, now, n);
			if (c) {
				msg("writing the metrics: %s", strerror(-c));
				ret = EXIT_FAIL;
				goto out;
			}
			goto next;
		}
		print_start("llmdev.stats/1");
		if (round)
			print_text("\n");
		print_open_array("cards");
		for (i = 0; i < n; i++)
			print_stats(devs[i], &now[i], round ? &before[i] : NULL);
		print_close_array();
		ret = print_done();
		if (ret)
			goto out;
next:
		if (!watch || (count > 0 && round + 1 >= count))
			break;
		{
			struct timespec ts = { (time_t)watch,
					       (long)((watch - (time_t)watch) * 1e9) };

			while (nanosleep(&ts, &ts) && errno == EINTR && !stop)
				;
		}
	}
out:
	free(now);
	free(before);
	close_cards(devs, n);
	return ret;
}

