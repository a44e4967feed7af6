// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl driver status|load|unload: the kernel module, through libkmod.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llmctl.h"
#include "llmctl-dl.h"

/*
 * The processes that hold a card open (a file descriptor or a mapping of
 * /dev/llmdevN), as "name (pid N), ..." in @buf. Return: their number.
 */
static int card_users(char *buf, size_t len)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	size_t used = 0;
	int n = 0;

	buf[0] = 0;
	while (proc && (de = readdir(proc))) {
		char path[PATH_MAX], target[PATH_MAX], comm[64], line[512];
		bool uses = false;
		struct dirent *fe;
		DIR *fds;
		FILE *f;

		if (de->d_name[0] < '1' || de->d_name[0] > '9' ||
		    (pid_t)atoi(de->d_name) == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", de->d_name);
		fds = opendir(path);
		while (fds && !uses && (fe = readdir(fds))) {
			ssize_t k;

			snprintf(path, sizeof(path), "/proc/%s/fd/%s", de->d_name, fe->d_name);
			k = readlink(path, target, sizeof(target) - 1);
			if (k > 0) {
				target[k] = 0;
				uses = !strncmp(target, "/dev/llmdev", 11);
			}
		}
		if (fds)
			closedir(fds);
		snprintf(path, sizeof(path), "/proc/%s/maps", de->d_name);
		f = uses ? NULL : fopen(path, "re");
		while (f && !uses && fgets(line, sizeof(line), f))
			uses = strstr(line, " /dev/llmdev") != NULL;
		if (f)
			fclose(f);
		if (!uses)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
		if (read_sysfs(path, comm, sizeof(comm)))
			strcpy(comm, "?");
		if (used < len)
			used += snprintf(buf + used, len - used, "%s%s (pid %s)",
					 n ? ", " : "", comm, de->d_name);
		n++;
	}
	if (proc)
		closedir(proc);
	return n;
}

static int driver_unload(void)
{
	const struct llmctl_kmod *k;
	struct kmod_ctx *ctx = kmod_open(&k);
	struct kmod_module *mod = NULL;
	char users[256];
	int ret, refcnt;

	if (!ctx)
		return -ENOMEM;
	ret = k->module_new_from_name(ctx, "llmdev", &mod);
	if (ret == 0) {
		refcnt = k->module_get_refcnt(mod);
		if (k->module_get_initstate(mod) < 0) {
			ret = 0;	/* not loaded: nothing to do */
		} else {
			ret = k->module_remove_module(mod, 0);
			if (ret == -EPERM)
				msg("unloading llmdev: not permitted (needs root or CAP_SYS_MODULE)");
			else if ((ret == -EAGAIN || ret == -EBUSY) && card_users(users, sizeof(users)))
				msg("unloading llmdev: cards are in use by %s; close them first",
				    users);
			else if (ret == -EAGAIN || ret == -EBUSY)
				msg("unloading llmdev: the module is in use (reference count %d)",
				    refcnt);
			else if (ret < 0)
				msg("unloading llmdev: %s", strerror(-ret));
		}
		k->module_unref(mod);
	}
	k->unref(ctx);
	return ret;
}

static int driver_status(int argc)
{
	const char *s;
	bool absent;
	int refcnt, cards;

	if (argc > 2)
		return usage_err("driver status takes no arguments");
	s = driver_state(&refcnt);
	absent = !strcmp(s, "absent");
	cards = llmdev_count() > 0 ? llmdev_count() : 0;
	print_start("llmdev.driver/1");
	print_string(PRINT_JSON, "state", NULL, s);
	print_text("llmdev: %s", absent ? "not loaded" : s);
	print_int(refcnt >= 0 ? PRINT_ANY : PRINT_JSON, "refcnt", ", reference count %d",
		  refcnt);
	print_int(absent ? PRINT_JSON : PRINT_ANY, "cards", ", cards %d", cards);
	print_text("\n");
	return print_done();
}

static int driver_load_cmd(int argc, char **argv)
{
	char params[1024] = "";
	const char *path = NULL;
	int i;

	for (i = 2; i < argc; i++) {
		if (strchr(argv[i], '=')) {
			if (strlen(params) + strlen(argv[i]) + 2 > sizeof(params))
				return usage_err("driver load: parameters too long");
			if (params[0])
				strcat(params, " ");
			strcat(params, argv[i]);
		} else if (!path) {
			path = argv[i];
		} else {
			return usage_err("driver load: unexpected '%s'", argv[i]);
		}
	}
	if (params[0] && driver_loaded()) {
		msg("llmdev is loaded already; unload it to load it with %s", params);
		return EXIT_FAIL;
	}
	return driver_load(path, params) ? EXIT_FAIL : 0;
}

int cmd_driver(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "status";

	/* after a subcommand too: "driver load --help" loads nothing */
	if (has_help(argc, argv)) {
		puts("usage: llmctl driver [status] [--json]\n"
		     "       llmctl driver load [PATH] [PARAM=VALUE...]\n"
		     "       llmctl driver unload\n\n"
		     "status   whether llmdev.ko is loaded, its reference count, its cards\n"
		     "load     load it by name (modules.dep), from PATH, or from $LLMCTL_MODULE,\n"
		     "         and wait (1 s at most) for the cabled peer links to come up\n"
		     "         (nothing to do when it is loaded)\n"
		     "unload   unload it; refused while cards are open");
		return 0;
	}
	if (!strcmp(sub, "status"))
		return driver_status(argc);
	if (!strcmp(sub, "load"))
		return driver_load_cmd(argc, argv);
	if (!strcmp(sub, "unload"))
		return argc > 2 ? usage_err("driver unload takes no arguments") :
		       driver_unload() ? EXIT_FAIL : 0;
	return usage_err("driver: unknown subcommand '%s'", sub);
}
