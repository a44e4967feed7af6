// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl - the operator's tool for llmdev cards.
 *
 *   llmctl [-j|--json] COMMAND [ARGS]
 *
 * Exit status: 0 success, 1 usage error, 2 failure (with a message that
 * names the card and the cause). See llmctl(8) and llmctl --help.
 *
 * JSON output (-j/--json) is one object per command, with a "schema"
 * member naming its version, e.g. "llmdev.list/1" (docs/llmctl.md). Text
 * and JSON come from the same print calls (llmctl-print.h).
 *
 * Each command is a file of its own (llmctl-list.c, llmctl-info.c,
 * llmctl-driver.c, llmctl-stats.c, llmctl-link.c, llmctl-monitor.c,
 * llmctl-shard.c, llmctl-load.c, llmctl-reset.c, llmctl-ps.c,
 * llmctl-doctor.c, llmctl-topo.c, llmctl-cdi.c, llmctl-kv.c); what they
 * share is in
 * llmctl-common.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "llmctl.h"

#define LLMCTL_VERSION	"1.3.0"

static const struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} cmds[] = {
	{ "list", cmd_list, "every card on the PCI bus, with or without the driver" },
	{ "info", cmd_info, "everything about one card" },
	{ "driver", cmd_driver, "status, load or unload the kernel module" },
	{ "stats", cmd_stats, "perf and link counters, once or with --watch" },
	{ "link", cmd_link, "show peer links; enable or disable a port" },
	{ "monitor", cmd_monitor, "print netlink events as they happen" },
	{ "shard", cmd_shard, "plan, apply, show or clear the shard routing tables" },
	{ "load", cmd_load, "load a GGUF model's shards into persistent regions" },
	{ "unload", cmd_unload, "free a loaded model's regions" },
	{ "reset", cmd_reset, "reset a card; exit status 0 only when it is back" },
	{ "ps", cmd_ps, "processes holding cards: regions, HBM, DMA, collectives" },
	{ "doctor", cmd_doctor, "health checks, each PASS/FAIL/SKIP with what to do" },
	{ "topo", cmd_topo, "matrix of cards: PCIe relation and peer-link hops" },
	{ "cdi", cmd_cdi, "write a CDI spec for container runtimes" },
	{ "kv", cmd_kv, "KV-cache pools: swap benchmark, statistics" },
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: llmctl [-j|--json] COMMAND [ARGS]\n\n"
		"Manage llmdev LLM-inference cards.\n\ncommands:\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-9s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "\nDEV is N, llmdevN, /dev/llmdevN or a PCI address (0000:01:00.0).\n"
		"'llmctl COMMAND --help' describes a command. Exit status: 0 success,\n"
		"1 usage error, 2 failure.\n");
}

static bool is_json_opt(const char *arg)
{
	return !strcmp(arg, "-j") || !strcmp(arg, "--json");
}

/*
 * A command that succeeded, but whose output (help text included) could
 * not all be written, fails: print_done() checks what goes through
 * llmctl-print, this the rest.
 */
static int flushed(int rc)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		if (!rc) {
			msg("writing the output: %s", strerror(errno ? errno : EIO));
			rc = EXIT_FAIL;
		}
	}
	return rc;
}

int main(int argc, char **argv)
{
	bool json = false;
	int argi = 1, i, k;
	char name[32];
	size_t c;

	for (; argi < argc && argv[argi][0] == '-'; argi++) {
		if (is_json_opt(argv[argi])) {
			json = true;
		} else if (is_help(argv[argi])) {
			usage(stdout);
			return flushed(0);
		} else if (!strcmp(argv[argi], "--version")) {
			printf("llmctl %s\n", LLMCTL_VERSION);
			return flushed(0);
		} else {
			return usage_err("unknown option '%s'", argv[argi]);
		}
	}
	if (argi == argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	/* -j/--json may also come after the command, anywhere */
	for (i = k = argi + 1; i < argc; i++) {
		if (is_json_opt(argv[i]))
			json = true;
		else
			argv[k++] = argv[i];
	}
	argv[k] = NULL;
	argc = k;
	print_init(stdout, json);
	for (c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++)
		if (!strcmp(argv[argi], cmds[c].name)) {
			/* getopt_long()'s messages begin with argv[0] */
			snprintf(name, sizeof(name), "llmctl %s", cmds[c].name);
			argv[argi] = name;
			return flushed(cmds[c].fn(argc - argi, argv + argi));
		}
	return usage_err("unknown command '%s'", argv[argi]);
}
