// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl list: every llmdev card on the PCI bus (libpci), with or without
 * the driver: address, IDs, PCIe link, NUMA node, driver, device node, HBM.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llmctl.h"
#include "llmctl-dl.h"
#include "../driver/llmdev_regs.h"

#define SYSFS_PCI	"/sys/bus/pci/devices"
#define SYSFS_CLASS	"/sys/class/llmdev"

struct card_pci {
	char addr[32];
	uint16_t vendor, device, subvendor, subdevice;
	char speed[32];
	int width;	/* lanes, 0 if unknown */
	int numa;
	char driver[32];
	char node[256];	/* llmdevN, or "" */
	uint64_t hbm_total, hbm_used;
	bool have_hbm;
	char state[16];	/* live, resetting, dead, removed; "" without the driver */
};

static void card_sysfs(struct card_pci *c)
{
	char path[PATH_MAX], buf[128];

	/* "16.0 GT/s PCIe" -> "16.0 GT/s"; "" when unknown */
	snprintf(path, sizeof(path), SYSFS_PCI "/%s/current_link_speed", c->addr);
	if (read_sysfs(path, c->speed, sizeof(c->speed)) || !strncmp(c->speed, "Unknown", 7))
		c->speed[0] = 0;
	else if (strstr(c->speed, " PCIe"))
		*strstr(c->speed, " PCIe") = 0;
	snprintf(path, sizeof(path), SYSFS_PCI "/%s/current_link_width", c->addr);
	c->width = read_sysfs(path, buf, sizeof(buf)) ? 0 : atoi(buf);
	snprintf(path, sizeof(path), SYSFS_PCI "/%s/numa_node", c->addr);
	c->numa = read_sysfs(path, buf, sizeof(buf)) ? -1 : atoi(buf);
	snprintf(path, sizeof(path), SYSFS_PCI "/%s/driver", c->addr);
	{
		char target[PATH_MAX];
		ssize_t n = readlink(path, target, sizeof(target) - 1);

		if (n > 0) {
			target[n] = 0;
			snprintf(c->driver, sizeof(c->driver), "%s",
				 strrchr(target, '/') + 1);
		} else {
			strcpy(c->driver, "none");
		}
	}
	c->node[0] = 0;
	snprintf(path, sizeof(path), SYSFS_PCI "/%s/llmdev", c->addr);
	{
		DIR *dir = opendir(path);
		struct dirent *de;

		while (dir && (de = readdir(dir)))
			if (!strncmp(de->d_name, "llmdev", 6))
				snprintf(c->node, sizeof(c->node), "%s", de->d_name);
		if (dir)
			closedir(dir);
	}
	c->have_hbm = false;
	c->state[0] = 0;
	if (c->node[0]) {
		snprintf(path, sizeof(path), SYSFS_CLASS "/%s/state", c->node);
		if (read_sysfs(path, c->state, sizeof(c->state)))
			c->state[0] = 0;
		snprintf(path, sizeof(path), SYSFS_CLASS "/%s/hbm_total", c->node);
		if (!read_sysfs(path, buf, sizeof(buf))) {
			c->hbm_total = strtoull(buf, NULL, 0);
			snprintf(path, sizeof(path), SYSFS_CLASS "/%s/hbm_used",
				 c->node);
			if (!read_sysfs(path, buf, sizeof(buf))) {
				c->hbm_used = strtoull(buf, NULL, 0);
				c->have_hbm = true;
			}
		}
	}
}

/*
 * libpci's default error handler prints and exits with 1, the usage
 * error's status: a failure it cannot go on from (no usable /sys/bus/pci
 * or /proc/bus/pci) is a failure, 2, with llmctl's prefix.
 */
static void __attribute__((noreturn, format(printf, 1, 2))) pci_fatal(char *fmt, ...)
{
	va_list ap;

	fputs("llmctl: libpci: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_FAIL);
}

/* Every llmdev card on the PCI bus, found with libpci. */
static int find_cards(struct card_pci **out)
{
	const struct llmctl_pci *pci = llmctl_pci();
	struct card_pci *cards = NULL;
	struct pci_access *pa;
	struct pci_dev *d;
	int n = 0;

	if (!pci)
		return -ENOSYS;
	pa = pci->alloc();
	pa->error = pci_fatal;
	pci->init(pa);
	pci->scan_bus(pa);
	for (d = pa->devices; d; d = d->next) {
		struct card_pci *c;

		pci->fill_info(d, PCI_FILL_IDENT | PCI_FILL_SUBSYS);
		if (d->vendor_id != LLMDEV_PCI_VENDOR_ID || d->device_id != LLMDEV_PCI_DEVICE_ID)
			continue;
		c = realloc(cards, (n + 1) * sizeof(*cards));
		if (!c) {
			free(cards);
			pci->cleanup(pa);
			return -ENOMEM;
		}
		cards = c;
		c = &cards[n++];
		memset(c, 0, sizeof(*c));
		snprintf(c->addr, sizeof(c->addr), "%04x:%02x:%02x.%d",
			 d->domain, d->bus, d->dev, d->func);
		c->vendor = d->vendor_id;
		c->device = d->device_id;
		c->subvendor = d->subsys_vendor_id;
		c->subdevice = d->subsys_id;
		card_sysfs(c);
	}
	pci->cleanup(pa);
	if (n > 1)
		qsort(cards, n, sizeof(*cards),
		      (int (*)(const void *, const void *))strcmp);
	*out = cards;
	return n;
}

static void print_card(const struct card_pci *c)
{
	char hex[8], link[48], node[270];

	print_open_object(NULL);
	print_string(PRINT_ANY, "pci", "%-13s ", c->addr);
	snprintf(hex, sizeof(hex), "%04x", c->vendor);
	print_string(PRINT_ANY, "vendor", "%s:", hex);
	snprintf(hex, sizeof(hex), "%04x", c->device);
	print_string(PRINT_ANY, "device", "%s ", hex);
	snprintf(hex, sizeof(hex), "%04x", c->subvendor);
	print_string(PRINT_ANY, "subvendor", "%s:", hex);
	snprintf(hex, sizeof(hex), "%04x", c->subdevice);
	print_string(PRINT_ANY, "subdevice", "%s ", hex);
	/* one column of text, two members of JSON */
	if (c->speed[0] && c->width > 0)
		snprintf(link, sizeof(link), "%s x%d", c->speed, c->width);
	else
		strcpy(link, "-");
	print_string(PRINT_FP, NULL, "%-14s ", link);
	print_string(PRINT_JSON, "link_speed", NULL, c->speed[0] ? c->speed : NULL);
	if (c->width > 0)
		print_int(PRINT_JSON, "link_width", NULL, c->width);
	else
		print_null(PRINT_JSON, "link_width", NULL, NULL);
	print_int(PRINT_ANY, "numa_node", "%4d  ", c->numa);
	print_string(PRINT_ANY, "driver", "%-7s ", c->driver);
	if (c->node[0]) {
		print_int(PRINT_JSON, "card", NULL, atoi(c->node + strlen("llmdev")));
		snprintf(node, sizeof(node), "/dev/%s", c->node);
		print_string(PRINT_ANY, "device_node", "%-13s ", node);
	} else {
		print_null(PRINT_JSON, "card", NULL, NULL);
		print_null(PRINT_ANY, "device_node", "%-13s ", "-");
	}
	if (c->state[0])
		print_string(PRINT_ANY, "state", "%-9s ", c->state);
	else
		print_null(PRINT_ANY, "state", "%-9s ", "-");
	if (c->have_hbm) {
		print_bytes(PRINT_ANY, "hbm_total", "%10s ", c->hbm_total);
		print_bytes(PRINT_ANY, "hbm_used", "%10s\n", c->hbm_used);
	} else {
		print_null(PRINT_ANY, "hbm_total", "%10s ", "-");
		print_null(PRINT_ANY, "hbm_used", "%10s\n", "-");
	}
	print_close_object();
}

int cmd_list(int argc, char **argv)
{
	struct card_pci *cards;
	bool loaded;
	int n, i, ret;

	if (argc > 1) {
		if (has_help(argc, argv)) {
			puts("usage: llmctl list [--json]\n\n"
			     "Every llmdev card on the PCI bus, also when the driver is not loaded:\n"
			     "PCI address, IDs (vendor:device subsystem), PCIe link, NUMA node,\n"
			     "driver, device node, state (live, resetting, dead), HBM.");
			return 0;
		}
		return usage_err("list takes no arguments");
	}
	n = find_cards(&cards);
	if (n == -ENOSYS)
		return EXIT_FAIL;	/* no libpci: said why */
	if (n < 0) {
		msg("scanning the PCI bus: %s", strerror(-n));
		return EXIT_FAIL;
	}
	loaded = driver_loaded();
	print_start("llmdev.list/1");
	print_bool(PRINT_JSON, "driver_loaded", NULL, loaded);
	if (n)
		print_text("%-13s %-9s %-9s %-14s %4s  %-7s %-13s %-9s %10s %10s\n", "PCI", "ID",
			   "SUBSYS", "LINK", "NUMA", "DRIVER", "DEVICE", "STATE", "HBM", "USED");
	print_open_array("cards");
	for (i = 0; i < n; i++)
		print_card(&cards[i]);
	print_close_array();
	if (n && !loaded)
		print_text("note: the llmdev driver is not loaded ('llmctl driver load')\n");
	free(cards);
	/* without cards: the JSON (an empty array) still, the text nothing */
	ret = print_done();
	if (!n) {
		msg("no llmdev cards on the PCI bus");
		return EXIT_FAIL;
	}
	return ret;
}
