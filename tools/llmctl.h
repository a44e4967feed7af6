/* SPDX-License-Identifier: GPL-2.0 */
/*
 * llmctl.h - what the parts of llmctl share: the commands (one file per
 * object: llmctl-list.c, llmctl-info.c, ...), messages, the driver, cards,
 * and the model helpers of shard and load (llmctl-common.c). Output goes
 * through the print module (llmctl-print.h).
 */
#ifndef LLMCTL_H
#define LLMCTL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "llmdev.h"
#include "llmctl-print.h"
#include "shard.h"

#define EXIT_USAGE	1
#define EXIT_FAIL	2

/* the commands, dispatched by llmctl.c's cmds[]; argv[0] is the command */
int cmd_list(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_driver(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_link(int argc, char **argv);
int cmd_monitor(int argc, char **argv);
int cmd_shard(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_unload(int argc, char **argv);
int cmd_reset(int argc, char **argv);
int cmd_ps(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_topo(int argc, char **argv);
int cmd_cdi(int argc, char **argv);
int cmd_kv(int argc, char **argv);

/* ---- messages ---------------------------------------------------------- */

/* "llmctl: " + message + newline on stderr */
void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* the same, then "Try 'llmctl --help'."; returns EXIT_USAGE */
int usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* after getopt_long()'s own message: "Try 'llmctl --help'."; EXIT_USAGE */
int usage_hint(void);
/* "-h" or "--help" */
bool is_help(const char *arg);
/* some argument after argv[0] is "-h" or "--help" */
bool has_help(int argc, char **argv);
/* print_end(), and a message if the output could not be written: 0 or EXIT_FAIL */
int print_done(void);
/* llmdev_strerror(), but -EPERM of a privileged operation says what is needed */
const char *admin_strerror(int err);

extern volatile sig_atomic_t stop;	/* set by SIGINT/SIGTERM (and SIGHUP) */
/* let SIGINT and SIGTERM (and SIGHUP if @hup) set @stop */
void catch_signals(bool hup);

/* CLOCK_MONOTONIC in seconds */
double now_s(void);
/* a sysfs attribute without its trailing newline; 0 or -errno */
int read_sysfs(const char *path, char *buf, size_t len);

/* ---- the kernel module (libkmod) --------------------------------------- */

struct kmod_ctx;
struct llmctl_kmod;
/*
 * A libkmod context that logs nothing (our messages say it better), and
 * the library's calls in *@k; NULL (the reason printed) if either fails.
 */
struct kmod_ctx *kmod_open(const struct llmctl_kmod **k);
/* "live", "coming", "going", "builtin" or "absent"; @refcnt -1 unless live */
const char *driver_state(int *refcnt);
bool driver_loaded(void);
/*
 * Load llmdev: from @path if given, else from $LLMCTL_MODULE, else by name
 * through modules.dep, then links_settle(-1). Return: 0 or a negative
 * errno (message printed).
 */
int driver_load(const char *path, const char *params);
/*
 * wait, 1 s at most, until no enabled, cabled port of @card (-1: of any
 * card) is still training (after loading the driver or a reset)
 */
void links_settle(int card);
/* load the driver if missing and permitted; 0 or -ENOENT (message printed) */
int need_driver(void);

/* ---- cards -------------------------------------------------------------- */

/* open N, llmdevN, /dev/llmdevN or a PCI address; message on failure */
int open_card(const char *name, struct llmdev **devp);
/* open @name, or every card; returns the count or -1 (message printed) */
int open_cards(const char *name, struct llmdev ***devsp);
/* every card with a device node, no message; the count (0 if none) */
int open_cards_quiet(struct llmdev ***devsp);
/*
 * as open_cards_quiet(), but a card that is there and cannot be opened
 * (-EACCES, ...) is an error: *@err, and its minor in *@bad (0 if none)
 */
int open_cards_all(struct llmdev ***devsp, int *err, int *bad);
void close_cards(struct llmdev **devs, int n);
/* N of /dev/llmdevN */
int card_index(const struct llmdev *dev);
/* llmdevN's sysfs "state": live, resetting, dead, removed; 0 or -errno */
int card_state(int card, char *buf, size_t len);
/* an unsigned sysfs attribute of llmdevN (reset_count, ...); 0 if unreadable */
unsigned int card_attr_uint(int card, const char *attr);
/*
 * The fewest up peer links from each of @devs to each other: @hops[i * n + j],
 * 0 for i == j, -1 if none. Return: 0 or -E2BIG (more than 64 cards).
 */
int link_hops(struct llmdev **devs, int n, int *hops);
/* "down", "training", "up" */
const char *link_state_name(uint32_t state);
/* "host" or "linkN" */
const char *hop_name(uint32_t hop, char *buf, size_t len);

/* Every port of @dev: the array "links", or a table with @indent. */
void print_links(struct llmdev *dev, const char *indent);
/*
 * Every perf counter: the object "counters" (and "rates", per second
 * since @before, when given), or a line per counter with @indent.
 */
void print_counters(const struct llmdev_perf *now, const struct llmdev_perf *before,
		    const char *indent);
/*
 * A routing table: the array @key, or a line per entry with @indent;
 * @regs names the regions. Used by info and shard show.
 */
void print_routes(const char *key, const struct llmdev_route_entry *e, unsigned int n,
		  const struct llmdev_hbm_region *regs, unsigned int nregs,
		  const char *indent);

/*
 * The OpenMetrics exposition of @devs with their counters @perf
 * (llmctl-openmetrics.c). Return: 0, -ENOMEM, -EIO (a failed write) or
 * the error of a card (message printed).
 */
int print_openmetrics(FILE *f, struct llmdev **devs, const struct llmdev_perf *perf, int n);

/* ---- models: shard and load ---------------------------------------------- */

struct model_opts {
	const char *path;
	uint32_t tp, pp;
	uint32_t cards[SHARD_MAX_CARDS];
	size_t n_cards;
	bool verbose, verify, replace;
};

/*
 * The options of shard plan/apply and load: MODEL --tp N --pp M
 * [--cards LIST] (and --verify, --replace with @load). Return: 0,
 * EXIT_USAGE after a message, or -1 after printing @usage for --help.
 */
int parse_model_opts(int argc, char **argv, struct model_opts *o,
		     const char *usage, bool load);

/* the model part of its region names (docs/llmctl.md, "Region names") */
#define MODEL_TAG_LEN	20
void model_tag(const char *path, char tag[MODEL_TAG_LEN + 1]);
/* The region of stage @stage, rank @rank: "<model>.s<stage>t<rank>" */
void region_name(const char *path, uint32_t stage, uint32_t rank,
		 char name[LLMDEV_NAME_LEN]);
/* Is @name the region of a stage and rank of the model @tag? */
bool is_model_region(const char *name, const char *tag);
/*
 * Region @name (@handle, just opened; 0: whatever its handle) on @dev made
 * by our effective uid, and, when we have CAP_SYS_ADMIN, with it? Return:
 * 0, or EXIT_FAIL after a message that says whose it is and what to do
 * (@path: the model, for the message).
 */
int region_check_owner(struct llmdev *dev, const char *name, uint32_t handle,
		       const char *path);
/* The port of @from whose link is up to @to; -ENOLINK if none. */
int port_to(struct llmdev *from, struct llmdev *to);
/*
 * Open the model and make the plan (with the cards' free HBM when the
 * driver is there, or when @need_cards: then the driver is loaded if it
 * may be). @devsp gets tp * pp handles, or NULL. Return: 0, or EXIT_FAIL
 * after a message.
 */
int make_plan(struct model_opts *o, bool need_cards, struct gguf_file **gp,
	      struct shard_plan **planp, struct llmdev ***devsp);
void free_plan(struct gguf_file *g, struct shard_plan *p, struct llmdev **devs,
	       uint32_t n);

#endif /* LLMCTL_H */
