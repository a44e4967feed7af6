/* SPDX-License-Identifier: GPL-2.0 */
/*
 * llmctl.h - what the parts of llmctl share: messages, formatting, cards.
 */
#ifndef LLMCTL_H
#define LLMCTL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llmdev.h"

#define EXIT_USAGE	1
#define EXIT_FAIL	2

extern bool json;			/* -j/--json */
extern volatile sig_atomic_t stop;	/* set by SIGINT/SIGTERM */

/* "llmctl: " + message + newline on stderr */
void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* the same, then "Try 'llmctl --help'."; returns EXIT_USAGE */
int usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void on_signal(int sig);

const char *human_bytes(uint64_t v, char *buf, size_t len);
const char *human_rate(double v, const char *what, char *buf, size_t len);
void json_str(const char *s);
double now_s(void);
const char *admin_strerror(int err);
int card_index(const struct llmdev *dev);
/* "host" or "linkN" */
const char *hop_name(uint32_t hop, char *buf, size_t len);
void print_routes(const struct llmdev_route_entry *e, unsigned int n,
		  const struct llmdev_hbm_region *regs, unsigned int nregs,
		  const char *indent);

bool driver_loaded(void);
/* load the driver if missing and permitted; 0 or -ENOENT (message printed) */
int need_driver(void);
/* open N, llmdevN, /dev/llmdevN or a PCI address; message on failure */
int open_card(const char *name, struct llmdev **devp);
/* open @name, or every card; returns the count or -1 (message printed) */
int open_cards(const char *name, struct llmdev ***devsp);
void close_cards(struct llmdev **devs, int n);

/* llmctl-model.c */
int cmd_shard(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_unload(int argc, char **argv);

#endif /* LLMCTL_H */
