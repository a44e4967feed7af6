// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl monitor: the driver's generic netlink events (links going up or
 * down, link errors, failed collectives, card resets) as they happen.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "llmctl.h"
#include "../uapi/llmdev_netlink.h"

static long monitor_left = -1;
/* the first failure to write an event, which ends the monitor */
static int monitor_err;

/* a 64-bit attribute as 16 hex digits */
static void print_hex64(const char *key, const char *fmt, const struct nlattr *a)
{
	char hex[20];

	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)nla_get_u64(a));
	print_string(PRINT_ANY, key, fmt, hex);
}

static int monitor_event(struct nl_msg *m, void *arg)
{
	struct genlmsghdr *gh = nlmsg_data(nlmsg_hdr(m));
	struct nlattr *a[LLMDEV_A_MAX + 1];
	const char *what;
	struct timespec ts;
	struct tm tm;

	(void)arg;
	if (stop)
		return NL_STOP;	/* --count events printed already */
	if (genlmsg_parse(nlmsg_hdr(m), 0, a, LLMDEV_A_MAX, NULL) < 0 ||
	    !a[LLMDEV_A_CARD])
		return NL_SKIP;
	switch (gh->cmd) {
	case LLMDEV_GENL_CMD_LINK_EVENT:
		what = "link";
		break;
	case LLMDEV_GENL_CMD_LINK_ERROR:
		what = "link-error";
		break;
	case LLMDEV_GENL_CMD_COLL_ERROR:
		what = "collective-error";
		break;
	case LLMDEV_GENL_CMD_RESET_START:
		what = "reset-start";
		break;
	case LLMDEV_GENL_CMD_RESET_DONE:
		what = "reset-done";
		break;
	case LLMDEV_GENL_CMD_RESET_FAILED:
		what = "reset-failed";
		break;
	default:
		return NL_SKIP;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);

	print_start("llmdev.event/1");
	/* wall-clock seconds, truncated to the millisecond */
	print_float(PRINT_JSON, "time", NULL, ts.tv_sec + (ts.tv_nsec / 1000000) / 1e3);
	print_text("%02d:%02d:%02d.%03ld ", tm.tm_hour, tm.tm_min, tm.tm_sec,
		   ts.tv_nsec / 1000000);
	print_string(PRINT_ANY, "event", "%s ", what);
	print_uint(PRINT_ANY, "card", "llmdev%u", nla_get_u32(a[LLMDEV_A_CARD]));
	if (a[LLMDEV_A_PORT])
		print_uint(PRINT_ANY, "port", " link%u", nla_get_u32(a[LLMDEV_A_PORT]));
	if (a[LLMDEV_A_LINK_STATE])
		print_string(PRINT_ANY, "state", " %s",
			     link_state_name(nla_get_u32(a[LLMDEV_A_LINK_STATE])));
	if (a[LLMDEV_A_PEER_SERIAL])
		print_hex64("peer_serial", ", peer %s", a[LLMDEV_A_PEER_SERIAL]);
	if (a[LLMDEV_A_PEER_CARD])
		print_uint(PRINT_ANY, "peer_card", " (llmdev%u)", nla_get_u32(a[LLMDEV_A_PEER_CARD]));
	if (a[LLMDEV_A_PEER_PORT])
		print_uint(PRINT_ANY, "peer_port", " port %u", nla_get_u32(a[LLMDEV_A_PEER_PORT]));
	if (a[LLMDEV_A_TX_ERRORS])
		print_u64(PRINT_ANY, "tx_errors", ", tx errors %" PRIu64,
			  nla_get_u64(a[LLMDEV_A_TX_ERRORS]));
	if (a[LLMDEV_A_RX_ERRORS])
		print_u64(PRINT_ANY, "rx_errors", ", rx errors %" PRIu64,
			  nla_get_u64(a[LLMDEV_A_RX_ERRORS]));
	if (a[LLMDEV_A_COLL_TAG])
		print_hex64("tag", ", collective %s", a[LLMDEV_A_COLL_TAG]);
	if (a[LLMDEV_A_RESET_COUNT])
		print_uint(PRINT_ANY, "reset_count", ", resets %u",
			   nla_get_u32(a[LLMDEV_A_RESET_COUNT]));
	if (a[LLMDEV_A_RESET_REASON])
		print_string(PRINT_ANY, "reason", ", reason: %s",
			     nla_get_string(a[LLMDEV_A_RESET_REASON]));
	if (a[LLMDEV_A_ERRNO]) {
		uint32_t e = nla_get_u32(a[LLMDEV_A_ERRNO]);

		print_uint(PRINT_JSON, "errno", NULL, e);
		if (gh->cmd == LLMDEV_GENL_CMD_RESET_FAILED)
			print_text(": the card did not come back; its calls fail with %s",
				   strerror((int)e));
		else
			print_text(": %s", llmdev_strerror(-(int)e));
	}
	print_text("\n");
	monitor_err = print_done();
	if (monitor_err)
		stop = 1;
	if (monitor_left > 0 && --monitor_left == 0)
		stop = 1;
	return NL_OK;
}

int cmd_monitor(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct nl_sock *sk;
	double timeout = 0, deadline;
	bool timed_out = false;
	int c, grp, ret = 0;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			monitor_left = strtol(optarg, &end, 10);
			if (*end || monitor_left < 1)
				return usage_err("monitor: --count wants a positive number, not '%s'", optarg);
			break;
		case 't':
			timeout = strtod(optarg, &end);
			/* !(> 0) also refuses NaN; a day at most keeps poll()'s ms in an int */
			if (*end || end == optarg || !(timeout > 0) || timeout > 86400)
				return usage_err("monitor: --timeout wants seconds (> 0, up to 86400), not '%s'",
						 optarg);
			break;
		case 'h':
			puts("usage: llmctl monitor [--count N] [--timeout SEC] [--json]\n\n"
			     "Print the driver's netlink events as they happen: links going up or\n"
			     "down, link errors, failed collectives, card resets (started, done,\n"
			     "failed); with --json one object per event and line. Stops after N\n"
			     "events or SEC seconds (exit status 2 if the timeout expires before\n"
			     "N events).");
			return 0;
		default:
			return usage_hint();
		}
	}
	if (optind < argc)
		return usage_err("monitor takes no arguments");
	if (need_driver())
		return EXIT_FAIL;
	sk = nl_socket_alloc();
	if (!sk || genl_connect(sk)) {
		msg("cannot open a generic netlink socket");
		return EXIT_FAIL;
	}
	grp = genl_ctrl_resolve_grp(sk, LLMDEV_GENL_NAME, LLMDEV_GENL_MCGRP_EVENTS);
	if (grp < 0) {
		msg("netlink family '%s' not found: %s (is llmdev.ko loaded?)",
		    LLMDEV_GENL_NAME, nl_geterror(grp));
		nl_socket_free(sk);
		return EXIT_FAIL;
	}
	nl_socket_disable_seq_check(sk);
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, monitor_event, NULL);
	ret = nl_socket_add_membership(sk, grp);
	if (ret) {
		msg("joining '%s': %s", LLMDEV_GENL_MCGRP_EVENTS, nl_geterror(ret));
		nl_socket_free(sk);
		return EXIT_FAIL;
	}
	nl_socket_set_nonblocking(sk);
	catch_signals(false);
	if (!print_is_json())
		fprintf(stderr, "listening for llmdev events (Ctrl-C to stop)\n");
	/*
	 * poll(), not a blocking receive: libnl retries a receive that a
	 * signal interrupts, and poll() gives the timeout for free.
	 */
	deadline = now_s() + timeout;
	while (!stop) {
		struct pollfd pfd = { .fd = nl_socket_get_fd(sk), .events = POLLIN };
		int ms = -1;

		if (timeout > 0) {
			double left = deadline - now_s();

			if (left <= 0) {
				timed_out = true;
				break;
			}
			ms = (int)(left * 1000) + 1;
		}
		ret = poll(&pfd, 1, ms);
		if (ret < 0 && errno != EINTR) {
			msg("waiting for events: %s", strerror(errno));
			break;
		}
		if (ret <= 0) {
			ret = 0;	/* a signal (Ctrl-C) stops it: not a failure */
			continue;
		}
		ret = nl_recvmsgs_default(sk);
		if (ret < 0 && ret != -NLE_AGAIN && ret != -NLE_INTR) {
			msg("receiving events: %s", nl_geterror(ret));
			break;
		}
		ret = 0;
	}
	nl_socket_free(sk);
	if (ret < 0 || monitor_err)
		return EXIT_FAIL;
	if (timed_out && monitor_left > 0) {
		msg("timed out after %g s with %ld event%s still to come", timeout,
		    monitor_left, monitor_left == 1 ? "" : "s");
		return EXIT_FAIL;
	}
	return 0;
}
