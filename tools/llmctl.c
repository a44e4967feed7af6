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
 * member naming its version, e.g. "llmdev.list/1" (docs/llmctl.md).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <libkmod.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>
#include <pci/pci.h>

#include "llmctl.h"
#include "../driver/llmdev_regs.h"
#include "../uapi/llmdev_netlink.h"

#define LLMCTL_VERSION	"1.0"
#define SYSFS_PCI	"/sys/bus/pci/devices"
#define SYSFS_CLASS	"/sys/class/llmdev"

bool json;
static const char *prog = "llmctl";

/* ---- messages and formatting ---------------------------------------------- */

void msg(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int usage_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", prog);
	return EXIT_USAGE;
}

/* "1.5 GiB"; buf must hold 16 bytes */
const char *human_bytes(uint64_t v, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double d = (double)v;
	unsigned int i = 0;

	while (d >= 1024 && i < sizeof(unit) / sizeof(unit[0]) - 1) {
		d /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%" PRIu64 " B", v);
	else
		snprintf(buf, len, "%.1f %s", d, unit[i]);
	return buf;
}

/* "1.23 GB/s", decimal as network and bus rates are */
const char *human_rate(double v, const char *what, char *buf, size_t len)
{
	static const char *const unit[] = { "", "k", "M", "G", "T" };
	unsigned int i = 0;

	while (v >= 1000 && i < sizeof(unit) / sizeof(unit[0]) - 1) {
		v /= 1000;
		i++;
	}
	snprintf(buf, len, "%.*f %s%s/s", i ? 2 : 0, v, unit[i], what);
	return buf;
}

/* llmdev_strerror(), but -EPERM of a privileged operation says what is needed */
const char *admin_strerror(int err)
{
	return err == -EPERM ? "not permitted (needs CAP_SYS_ADMIN)" : llmdev_strerror(err);
}

/* CLOCK_MONOTONIC in seconds */
double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static int read_sysfs(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

static const char *link_state_name(uint32_t s)
{
	switch (s) {
	case LLMDEV_LINK_DOWN:
		return "down";
	case LLMDEV_LINK_TRAINING:
		return "training";
	case LLMDEV_LINK_UP:
		return "up";
	default:
		return "unknown";
	}
}

/* ---- the kernel module (libkmod) -------------------------------------------- */

/* libkmod logs its errors on stderr too; our messages say it better */
static void kmod_quiet(void *data, int priority, const char *file, int line,
		       const char *fn, const char *format, va_list args)
{
	(void)data, (void)priority, (void)file, (void)line, (void)fn;
	(void)format, (void)args;
}

static struct kmod_ctx *kmod_open(void)
{
	struct kmod_ctx *ctx = kmod_new(NULL, NULL);

	if (ctx)
		kmod_set_log_fn(ctx, kmod_quiet, NULL);
	return ctx;
}

/* The module's state: "live", "coming", "going", "builtin" or "absent". */
static const char *driver_state(int *refcnt)
{
	struct kmod_ctx *ctx = kmod_open();
	struct kmod_module *mod = NULL;
	const char *state = "absent";
	int s;

	*refcnt = -1;
	if (!ctx)
		return state;
	if (kmod_module_new_from_name(ctx, "llmdev", &mod) == 0) {
		s = kmod_module_get_initstate(mod);
		if (s >= 0)
			state = kmod_module_initstate_str(s);
		if (s == KMOD_MODULE_LIVE)
			*refcnt = kmod_module_get_refcnt(mod);
		kmod_module_unref(mod);
	}
	kmod_unref(ctx);
	return state;
}

bool driver_loaded(void)
{
	int refcnt;
	const char *s = driver_state(&refcnt);

	return !strcmp(s, "live") || !strcmp(s, "builtin");
}

/*
 * Load llmdev: from @path if given, else from $LLMCTL_MODULE, else by name
 * through modules.dep. Return: 0 or a negative errno (message printed).
 */
static int driver_load(const char *path, const char *params)
{
	struct kmod_ctx *ctx;
	struct kmod_module *mod = NULL;
	struct utsname u;
	int ret;

	if (driver_loaded())
		return 0;
	ctx = kmod_open();
	if (!ctx) {
		msg("cannot initialise libkmod");
		return -ENOMEM;
	}
	if (!path)
		path = getenv("LLMCTL_MODULE");
	if (path)
		ret = kmod_module_new_from_path(ctx, path, &mod);
	else
		ret = kmod_module_new_from_name(ctx, "llmdev", &mod);
	if (ret < 0) {
		msg("%s: %s", path ? path : "llmdev", strerror(-ret));
		goto out;
	}
	if (path)
		ret = kmod_module_insert_module(mod, 0, params);
	else
		ret = kmod_module_probe_insert_module(mod, 0, params, NULL,
						      NULL, NULL);
	if (ret == -EEXIST) {
		ret = 0;	/* loaded meanwhile */
	} else if (ret == -EPERM) {
		msg("loading llmdev: not permitted (needs root or CAP_SYS_MODULE)");
	} else if (ret == -ENOENT && !path) {
		uname(&u);
		msg("llmdev.ko is not installed for kernel %s; give its path: llmctl driver load PATH",
		    u.release);
	} else if (ret < 0) {
		msg("loading %s: %s", path ? path : "llmdev", strerror(-ret));
	}
out:
	if (mod)
		kmod_module_unref(mod);
	kmod_unref(ctx);
	return ret;
}

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
	struct kmod_ctx *ctx = kmod_open();
	struct kmod_module *mod = NULL;
	char users[256];
	int ret, refcnt;

	if (!ctx)
		return -ENOMEM;
	ret = kmod_module_new_from_name(ctx, "llmdev", &mod);
	if (ret == 0) {
		refcnt = kmod_module_get_refcnt(mod);
		if (kmod_module_get_initstate(mod) < 0) {
			ret = 0;	/* not loaded: nothing to do */
		} else {
			ret = kmod_module_remove_module(mod, 0);
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
		kmod_module_unref(mod);
	}
	kmod_unref(ctx);
	return ret;
}

/* Subcommands that need the driver load it when it is missing and they may. */
int need_driver(void)
{
	if (driver_loaded())
		return 0;
	if (geteuid() != 0) {
		msg("the llmdev driver is not loaded (run 'llmctl driver load' as root)");
		return -ENOENT;
	}
	return driver_load(NULL, NULL) ? -ENOENT : 0;
}

static int cmd_driver(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "status";
	int refcnt, cards;

	if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
		puts("usage: llmctl driver [status]\n"
		     "       llmctl driver load [PATH] [PARAM=VALUE...]\n"
		     "       llmctl driver unload\n\n"
		     "status   whether llmdev.ko is loaded, its reference count, its cards\n"
		     "load     load it by name (modules.dep), from PATH, or from $LLMCTL_MODULE\n"
		     "         (nothing to do when it is loaded)\n"
		     "unload   unload it; refused while cards are open");
		return 0;
	}
	if (!strcmp(sub, "status")) {
		const char *s;

		if (argc > 2)
			return usage_err("driver status takes no arguments");
		s = driver_state(&refcnt);
		cards = llmdev_count() > 0 ? llmdev_count() : 0;
		if (json) {
			printf("{\"schema\":\"llmdev.driver/1\",\"state\":");
			json_str(s);
			printf(",\"refcnt\":%d,\"cards\":%d}\n", refcnt, cards);
		} else if (!strcmp(s, "absent")) {
			printf("llmdev: not loaded\n");
		} else {
			printf("llmdev: %s", s);
			if (refcnt >= 0)
				printf(", reference count %d", refcnt);
			printf(", %d card%s\n", cards, cards == 1 ? "" : "s");
		}
		return 0;
	}
	if (!strcmp(sub, "load")) {
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
	if (!strcmp(sub, "unload"))
		return argc > 2 ? usage_err("driver unload takes no arguments") :
		       driver_unload() ? EXIT_FAIL : 0;
	return usage_err("driver: unknown subcommand '%s'", sub);
}

/* ---- cards -------------------------------------------------------------- */

/*
 * Open a card named as N, llmdevN, /dev/llmdevN or a PCI address.
 * Prints the reason on failure.
 */
int open_card(const char *name, struct llmdev **devp)
{
	const char *num = strncmp(name, "llmdev", 6) ? name : name + 6;
	char *end;
	long n;
	int ret;

	n = strtol(num, &end, 10);
	if (*num >= '0' && *num <= '9' && !*end && n < INT_MAX)
		ret = llmdev_open((unsigned int)n, devp);
	else if (name[0] == '/')
		ret = llmdev_open_path(name, devp);
	else if (strchr(name, ':'))
		ret = llmdev_open_pci(name, devp);
	else
		ret = -EINVAL;
	if (!ret)
		return 0;
	if (ret == -EINVAL)
		msg("%s: not a card: give N, llmdevN, /dev/llmdevN or a PCI address", name);
	else if (ret == -ENOENT && !driver_loaded())
		msg("%s: the llmdev driver is not loaded", name);
	else if (ret == -ENOENT)
		msg("%s: no such card (%d with a device node; see 'llmctl list')", name,
		    llmdev_count());
	else
		msg("%s: %s", name, llmdev_strerror(ret));
	return ret;
}

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
	if (c->node[0]) {
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

/* Every llmdev card on the PCI bus, found with libpci. */
static int find_cards(struct card_pci **out)
{
	struct pci_access *pa = pci_alloc();
	struct card_pci *cards = NULL;
	struct pci_dev *d;
	int n = 0;

	pci_init(pa);
	pci_scan_bus(pa);
	for (d = pa->devices; d; d = d->next) {
		struct card_pci *c;

		pci_fill_info(d, PCI_FILL_IDENT | PCI_FILL_SUBSYS);
		if (d->vendor_id != LLMDEV_PCI_VENDOR_ID || d->device_id != LLMDEV_PCI_DEVICE_ID)
			continue;
		c = realloc(cards, (n + 1) * sizeof(*cards));
		if (!c) {
			free(cards);
			pci_cleanup(pa);
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
	pci_cleanup(pa);
	if (n > 1)
		qsort(cards, n, sizeof(*cards),
		      (int (*)(const void *, const void *))strcmp);
	*out = cards;
	return n;
}

static int cmd_list(int argc, char **argv)
{
	struct card_pci *cards;
	char b1[16], b2[16];
	bool loaded;
	int n, i;

	if (argc > 1) {
		if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
			puts("usage: llmctl list\n\n"
			     "Every llmdev card on the PCI bus, also when the driver is not loaded:\n"
			     "PCI address, IDs, PCIe link, NUMA node, driver, device node, HBM.");
			return 0;
		}
		return usage_err("list takes no arguments");
	}
	n = find_cards(&cards);
	if (n < 0) {
		msg("scanning the PCI bus: %s", strerror(-n));
		return EXIT_FAIL;
	}
	loaded = driver_loaded();
	if (json) {
		printf("{\"schema\":\"llmdev.list/1\",\"driver_loaded\":%s,\"cards\":[",
		       loaded ? "true" : "false");
		for (i = 0; i < n; i++) {
			struct card_pci *c = &cards[i];

			printf("%s{\"pci\":\"%s\",\"vendor\":\"%04x\",\"device\":\"%04x\","
			       "\"subvendor\":\"%04x\",\"subdevice\":\"%04x\",\"link_speed\":",
			       i ? "," : "", c->addr, c->vendor, c->device,
			       c->subvendor, c->subdevice);
			if (c->speed[0])
				json_str(c->speed);
			else
				printf("null");
			if (c->width > 0)
				printf(",\"link_width\":%d", c->width);
			else
				printf(",\"link_width\":null");
			printf(",\"numa_node\":%d,\"driver\":", c->numa);
			json_str(c->driver);
			if (c->node[0])
				printf(",\"card\":%d,\"device_node\":\"/dev/%s\"",
				       atoi(c->node + strlen("llmdev")), c->node);
			else
				printf(",\"card\":null,\"device_node\":null");
			if (c->have_hbm)
				printf(",\"hbm_total\":%" PRIu64 ",\"hbm_used\":%" PRIu64,
				       c->hbm_total, c->hbm_used);
			else
				printf(",\"hbm_total\":null,\"hbm_used\":null");
			putchar('}');
		}
		printf("]}\n");
	} else if (n) {
		printf("%-13s %-9s %-14s %4s  %-7s %-13s %10s %10s\n", "PCI", "ID",
		       "LINK", "NUMA", "DRIVER", "DEVICE", "HBM", "USED");
		for (i = 0; i < n; i++) {
			struct card_pci *c = &cards[i];
			char link[48], dev[270];

			if (c->speed[0] && c->width > 0)
				snprintf(link, sizeof(link), "%s x%d", c->speed, c->width);
			else
				strcpy(link, "-");
			snprintf(dev, sizeof(dev), "%s%s", c->node[0] ? "/dev/" : "-",
				 c->node);
			printf("%-13s %04x:%04x %-14s %4d  %-7s %-13s %10s %10s\n",
			       c->addr, c->vendor, c->device, link, c->numa,
			       c->driver, dev,
			       c->have_hbm ? human_bytes(c->hbm_total, b1, sizeof(b1)) : "-",
			       c->have_hbm ? human_bytes(c->hbm_used, b2, sizeof(b2)) : "-");
		}
		if (!loaded)
			printf("note: the llmdev driver is not loaded ('llmctl driver load')\n");
	}
	free(cards);
	if (!n) {
		msg("no llmdev cards on the PCI bus");
		return EXIT_FAIL;
	}
	return 0;
}

/* ---- info ------------------------------------------------------------------ */

static void print_links_table(struct llmdev *dev, const char *indent)
{
	struct llmdev_link_info li;
	char b1[16], b2[16];
	unsigned int p;

	printf("%s%-5s %-8s %-4s %-16s %-4s %10s %10s %8s %8s %5s\n", indent,
	       "PORT", "STATE", "EN", "PEER", "PORT", "TX", "RX", "TX_ERR",
	       "RX_ERR", "DOWNS");
	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
		char peer[24] = "-", pport[8] = "-";

		if (llmdev_link_get_info(dev, p, &li))
			continue;
		if (li.state == LLMDEV_LINK_UP) {
			if (li.peer_minor >= 0)
				snprintf(peer, sizeof(peer), "llmdev%d", li.peer_minor);
			else
				snprintf(peer, sizeof(peer), "%016llx",
					 (unsigned long long)li.peer_serial);
			snprintf(pport, sizeof(pport), "%u", li.peer_port);
		} else if (!(li.link_flags & LLMDEV_LINK_CABLED)) {
			snprintf(peer, sizeof(peer), "(no cable)");
		}
		printf("%s%-5u %-8s %-4s %-16s %-4s %10s %10s %8llu %8llu %5u\n",
		       indent, p, link_state_name(li.state),
		       li.link_flags & LLMDEV_LINK_ENABLED ? "yes" : "no", peer,
		       pport, human_bytes(li.tx_bytes, b1, sizeof(b1)),
		       human_bytes(li.rx_bytes, b2, sizeof(b2)),
		       (unsigned long long)li.tx_errors,
		       (unsigned long long)li.rx_errors, li.down_count);
	}
}

static void json_links(struct llmdev *dev)
{
	struct llmdev_link_info li;
	unsigned int p;
	bool first = true;

	printf("[");
	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
		if (llmdev_link_get_info(dev, p, &li))
			continue;
		printf("%s{\"port\":%u,\"state\":\"%s\",\"enabled\":%s,\"cabled\":%s,",
		       first ? "" : ",", p, link_state_name(li.state),
		       li.link_flags & LLMDEV_LINK_ENABLED ? "true" : "false",
		       li.link_flags & LLMDEV_LINK_CABLED ? "true" : "false");
		if (li.state == LLMDEV_LINK_UP && li.peer_minor >= 0)
			printf("\"peer_serial\":\"%016llx\",\"peer_port\":%u,\"peer_card\":%d,",
			       (unsigned long long)li.peer_serial, li.peer_port,
			       li.peer_minor);
		else if (li.state == LLMDEV_LINK_UP)	/* a card of another host */
			printf("\"peer_serial\":\"%016llx\",\"peer_port\":%u,\"peer_card\":null,",
			       (unsigned long long)li.peer_serial, li.peer_port);
		else
			printf("\"peer_serial\":null,\"peer_port\":null,\"peer_card\":null,");
		printf("\"tx_bytes\":%llu,\"rx_bytes\":%llu,\"tx_errors\":%llu,"
		       "\"rx_errors\":%llu,\"down_count\":%u}",
		       (unsigned long long)li.tx_bytes,
		       (unsigned long long)li.rx_bytes,
		       (unsigned long long)li.tx_errors,
		       (unsigned long long)li.rx_errors, li.down_count);
		first = false;
	}
	printf("]");
}

/* N of /dev/llmdevN */
int card_index(const struct llmdev *dev)
{
	return atoi(llmdev_name(dev) + strlen("llmdev"));
}

const char *hop_name(uint32_t hop, char *buf, size_t len)
{
	if (hop == LLMDEV_HOP_HOST)
		return "host";
	snprintf(buf, len, "link%u", hop);
	return buf;
}

/* The name of region @handle in @regs, or NULL. */
static const char *region_of(const struct llmdev_hbm_region *regs,
			     unsigned int nregs, uint32_t handle)
{
	unsigned int i;

	for (i = 0; i < nregs; i++)
		if (regs[i].handle == handle)
			return regs[i].name[0] ? regs[i].name : NULL;
	return NULL;
}

/*
 * A routing table, as text (one line per entry, after @indent) or as a
 * JSON array; @regs names the regions. Used by info and shard show.
 */
void print_routes(const struct llmdev_route_entry *e, unsigned int n,
		  const struct llmdev_hbm_region *regs, unsigned int nregs,
		  const char *indent)
{
	unsigned int i;
	char hop[16], b[16];

	if (json)
		putchar('[');
	for (i = 0; i < n; i++) {
		const char *name = region_of(regs, nregs, e[i].handle);

		if (!json) {
			printf("%slayers %u-%u tp %u/%u region %u %s%s(%s) -> %s\n", indent,
			       e[i].layer_first, e[i].layer_last, e[i].tp_rank,
			       e[i].tp_size, e[i].handle, name ? name : "", name ? " " : "",
			       human_bytes(e[i].length, b, sizeof(b)),
			       hop_name(e[i].next_hop, hop, sizeof(hop)));
			continue;
		}
		printf("%s{\"layer_first\":%u,\"layer_last\":%u,\"tp_rank\":%u,"
		       "\"tp_size\":%u,\"handle\":%u,\"region\":", i ? "," : "",
		       e[i].layer_first, e[i].layer_last, e[i].tp_rank, e[i].tp_size,
		       e[i].handle);
		if (name)
			json_str(name);
		else
			printf("null");
		printf(",\"next_hop\":\"%s\",\"hbm_offset\":%llu,\"length\":%llu}",
		       hop_name(e[i].next_hop, hop, sizeof(hop)),
		       (unsigned long long)e[i].hbm_offset,
		       (unsigned long long)e[i].length);
	}
	if (json)
		putchar(']');
}

static int cmd_info(int argc, char **argv)
{
	struct llmdev_hbm_region *regions = NULL;
	struct llmdev_route_entry *routes = NULL;
	unsigned int nregions = 0, nroutes = 0, i;
	struct llmdev_info info;
	struct llmdev_perf perf;
	struct llmdev *dev;
	char b1[16], b2[16], b3[16];
	uint32_t gen = 0;
	int ret;

	if (argc != 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		if (argc == 2)
			return puts("usage: llmctl info DEV\n\n"
				    "Everything about one card: identity, HBM, counters, links, regions,\n"
				    "routing table. DEV: N, llmdevN, /dev/llmdevN or a PCI address."), 0;
		return usage_err("usage: llmctl info DEV");
	}
	if (need_driver())
		return EXIT_FAIL;
	if (open_card(argv[1], &dev))
		return EXIT_FAIL;
	ret = llmdev_get_info(dev, &info);
	if (!ret)
		ret = llmdev_perf_read(dev, &perf);
	if (!ret)
		ret = llmdev_hbm_list(dev, &regions, &nregions);
	if (!ret)
		ret = llmdev_route_get(dev, &routes, &nroutes, &gen);
	if (ret) {
		msg("%s: %s", llmdev_name(dev), llmdev_strerror(ret));
		llmdev_close(dev);
		return EXIT_FAIL;
	}

	if (json) {
		printf("{\"schema\":\"llmdev.info/1\",\"card\":%d,\"pci\":\"%04x:%02x:%02x.%d\","
		       "\"serial\":\"%016llx\",\"spec_version\":\"%u.%u\",\"numa_node\":%d,"
		       "\"irq_vectors\":%u,\"hbm_total\":%llu,\"hbm_used\":%llu,"
		       "\"hbm_largest_free\":%llu,\"counters\":{",
		       card_index(dev), info.pci_domain, info.pci_bus,
		       info.pci_devfn >> 3, info.pci_devfn & 7,
		       (unsigned long long)info.serial, info.spec_version >> 16,
		       info.spec_version & 0xffff, info.numa_node, info.irq_vectors,
		       (unsigned long long)info.hbm_size,
		       (unsigned long long)info.hbm_used,
		       (unsigned long long)info.hbm_largest_free);
		for (i = 0; i < perf.num_counters && llmdev_counter_name(i); i++)
			printf("%s\"%s\":%llu", i ? "," : "", llmdev_counter_name(i),
			       (unsigned long long)perf.counters[i]);
		printf("},\"links\":");
		json_links(dev);
		printf(",\"regions\":[");
		for (i = 0; i < nregions; i++) {
			struct llmdev_hbm_region *r = &regions[i];

			printf("%s{\"handle\":%u,\"name\":", i ? "," : "", r->handle);
			if (r->name[0])
				json_str(r->name);
			else
				printf("null");
			printf(",\"persistent\":%s,\"hbm_offset\":%llu,\"length\":%llu,"
			       "\"owner_uid\":%u}",
			       r->flags & LLMDEV_REGION_PERSISTENT ? "true" : "false",
			       (unsigned long long)r->hbm_offset,
			       (unsigned long long)r->length, r->owner_uid);
		}
		printf("],\"route_generation\":%u,\"routes\":", gen);
		print_routes(routes, nroutes, regions, nregions, "");
		printf("}\n");
	} else {
		printf("%s\n", llmdev_name(dev));
		printf("  pci           %04x:%02x:%02x.%d (NUMA node %d, %u irq vector%s)\n",
		       info.pci_domain, info.pci_bus, info.pci_devfn >> 3,
		       info.pci_devfn & 7, info.numa_node, info.irq_vectors,
		       info.irq_vectors == 1 ? "" : "s");
		printf("  serial        %016llx\n", (unsigned long long)info.serial);
		printf("  spec version  %u.%u\n", info.spec_version >> 16,
		       info.spec_version & 0xffff);
		printf("  hbm           %s total, %s used, %s largest free\n",
		       human_bytes(info.hbm_size, b1, sizeof(b1)),
		       human_bytes(info.hbm_used, b2, sizeof(b2)),
		       human_bytes(info.hbm_largest_free, b3, sizeof(b3)));
		printf("  dma           %s to card, %s from card, %llu errors\n",
		       human_bytes(perf.counters[LLMDEV_COUNTER_H2C_BYTES], b1, sizeof(b1)),
		       human_bytes(perf.counters[LLMDEV_COUNTER_C2H_BYTES], b2, sizeof(b2)),
		       (unsigned long long)perf.counters[LLMDEV_COUNTER_ERRORS]);
		printf("  collectives   %llu\n",
		       (unsigned long long)perf.counters[LLMDEV_COUNTER_COLL_OPS]);
		printf("  links\n");
		print_links_table(dev, "    ");
		printf("  regions       %u\n", nregions);
		for (i = 0; i < nregions; i++)
			printf("    %-4u %-32s %10s at 0x%llx%s\n", regions[i].handle,
			       regions[i].name[0] ? regions[i].name : "-",
			       human_bytes(regions[i].length, b1, sizeof(b1)),
			       (unsigned long long)regions[i].hbm_offset,
			       regions[i].flags & LLMDEV_REGION_PERSISTENT ?
			       " persistent" : "");
		printf("  routing table %u entr%s (generation %u)\n", nroutes,
		       nroutes == 1 ? "y" : "ies", gen);
		print_routes(routes, nroutes, regions, nregions, "    ");
	}
	free(regions);
	free(routes);
	llmdev_close(dev);
	return 0;
}

/* ---- stats and link show ------------------------------------------------- */

volatile sig_atomic_t stop;

void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Open the card named, or every card. Return: count, or -1 (message printed). */
int open_cards(const char *name, struct llmdev ***devsp)
{
	struct llmdev **devs;
	int n, i, found = 0;

	if (need_driver())
		return -1;
	if (name) {
		devs = calloc(1, sizeof(*devs));
		if (!devs || open_card(name, &devs[0])) {
			free(devs);
			return -1;
		}
		*devsp = devs;
		return 1;
	}
	n = llmdev_count();
	if (n <= 0) {
		msg("no llmdev cards (the driver is loaded but bound to none)");
		return -1;
	}
	devs = calloc(n, sizeof(*devs));
	if (!devs)
		return -1;
	/* minors need not be dense after hot-unplug: look a little further */
	for (i = 0; found < n && i < n + 64; i++)
		if (!llmdev_open(i, &devs[found]))
			found++;
	*devsp = devs;
	return found;
}

void close_cards(struct llmdev **devs, int n)
{
	while (n-- > 0)
		llmdev_close(devs[n]);
	free(devs);
}

/* Counter @i's increase per second; a counter that went back was reset. */
static double rate_of(const struct llmdev_perf *now, const struct llmdev_perf *before,
		      unsigned int i, double dt)
{
	uint64_t was = now->counters[i] >= before->counters[i] ? before->counters[i] : 0;

	return (now->counters[i] - was) / dt;
}

static void print_stats(struct llmdev *dev, const struct llmdev_perf *now,
			const struct llmdev_perf *before, bool first_card)
{
	double dt = before ? (now->host_time_ns - before->host_time_ns) / 1e9 : 0;
	char b1[24], b2[24];
	unsigned int i;

	if (json) {
		printf("%s{\"card\":%d,\"time_ns\":%llu,\"counters\":{",
		       first_card ? "" : ",", card_index(dev),
		       (unsigned long long)now->host_time_ns);
		for (i = 0; i < now->num_counters && llmdev_counter_name(i); i++)
			printf("%s\"%s\":%llu", i ? "," : "", llmdev_counter_name(i),
			       (unsigned long long)now->counters[i]);
		printf("}");
		if (before && dt > 0) {
			printf(",\"rates\":{");
			for (i = 0; i < now->num_counters && llmdev_counter_name(i); i++)
				printf("%s\"%s\":%.1f", i ? "," : "",
				       llmdev_counter_name(i), rate_of(now, before, i, dt));
			printf("}");
		}
		printf(",\"links\":");
		json_links(dev);
		printf("}");
		return;
	}
	printf("%s\n", llmdev_name(dev));
	for (i = 0; i < now->num_counters && llmdev_counter_name(i); i++) {
		const char *name = llmdev_counter_name(i);
		uint64_t v = now->counters[i];
		bool bytes = strstr(name, "bytes") != NULL;
		bool ns = strstr(name, "_ns") != NULL;

		if (bytes)
			human_bytes(v, b1, sizeof(b1));
		else if (ns)
			snprintf(b1, sizeof(b1), "%.3f s", v / 1e9);
		else
			snprintf(b1, sizeof(b1), "%llu", (unsigned long long)v);
		printf("  %-18s %14s", name, b1);
		if (before && dt > 0) {
			double rate = rate_of(now, before, i, dt);

			if (bytes)
				human_rate(rate, "B", b2, sizeof(b2));
			else if (ns)
				snprintf(b2, sizeof(b2), "%.1f%% busy", rate / 1e7);
			else
				snprintf(b2, sizeof(b2), "%.1f/s", rate);
			printf("  %16s", b2);
		}
		putchar('\n');
	}
	print_links_table(dev, "  ");
}

static int cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "watch", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	struct llmdev_perf *now = NULL, *before = NULL;
	double watch = 0;
	long count = -1, round;
	struct llmdev **devs;
	int c, n, i, ret = 0;
	char *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "w:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'w':
			watch = strtod(optarg, &end);
			if (*end || watch <= 0 || watch > 86400)
				return usage_err("stats: --watch wants seconds (> 0), not '%s'", optarg);
			break;
		case 'c':
			count = strtol(optarg, &end, 10);
			if (*end || count < 1)
				return usage_err("stats: --count wants a positive number, not '%s'", optarg);
			break;
		case 'h':
			puts("usage: llmctl stats [DEV] [--watch SEC [--count N]] [--json]\n\n"
			     "Every perf counter of DEV (default: every card), in human units, and\n"
			     "the peer-link counters. With --watch, again every SEC seconds with\n"
			     "rates from the deltas, N times (default: until interrupted).");
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind > 1)
		return usage_err("stats: one card at most");
	if (count > 0 && !watch)
		return usage_err("stats: --count needs --watch");
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
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
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
		if (json)
			printf("{\"schema\":\"llmdev.stats/1\",\"cards\":[");
		else if (round)
			putchar('\n');
		for (i = 0; i < n; i++)
			print_stats(devs[i], &now[i], round ? &before[i] : NULL, !i);
		if (json)
			printf("]}\n");
		fflush(stdout);
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

static int cmd_link(int argc, char **argv)
{
	struct llmdev **devs;
	int n, i;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		if (argc < 2)
			return usage_err("usage: llmctl link show [DEV]");
		puts("usage: llmctl link show [DEV]\n"
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
	if (json)
		printf("{\"schema\":\"llmdev.links/1\",\"cards\":[");
	for (i = 0; i < n; i++) {
		if (json) {
			printf("%s{\"card\":%d,\"links\":", i ? "," : "",
			       card_index(devs[i]));
			json_links(devs[i]);
			printf("}");
		} else {
			printf("%s\n", llmdev_name(devs[i]));
			print_links_table(devs[i], "  ");
		}
	}
	if (json)
		printf("]}\n");
	close_cards(devs, n);
	return 0;
}

/* ---- monitor (generic netlink) ------------------------------------------- */

static long monitor_left = -1;

static int monitor_event(struct nl_msg *m, void *arg)
{
	struct genlmsghdr *gh = nlmsg_data(nlmsg_hdr(m));
	struct nlattr *a[LLMDEV_A_MAX + 1];
	const char *what;
	struct timespec ts;

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
	default:
		return NL_SKIP;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	if (json) {
		printf("{\"schema\":\"llmdev.event/1\",\"time\":%lld.%03ld,\"event\":\"%s\",\"card\":%u",
		       (long long)ts.tv_sec, ts.tv_nsec / 1000000, what,
		       nla_get_u32(a[LLMDEV_A_CARD]));
		if (a[LLMDEV_A_PORT])
			printf(",\"port\":%u", nla_get_u32(a[LLMDEV_A_PORT]));
		if (a[LLMDEV_A_LINK_STATE])
			printf(",\"state\":\"%s\"",
			       link_state_name(nla_get_u32(a[LLMDEV_A_LINK_STATE])));
		if (a[LLMDEV_A_PEER_SERIAL])
			printf(",\"peer_serial\":\"%016llx\"",
			       (unsigned long long)nla_get_u64(a[LLMDEV_A_PEER_SERIAL]));
		if (a[LLMDEV_A_PEER_CARD])
			printf(",\"peer_card\":%u", nla_get_u32(a[LLMDEV_A_PEER_CARD]));
		if (a[LLMDEV_A_PEER_PORT])
			printf(",\"peer_port\":%u", nla_get_u32(a[LLMDEV_A_PEER_PORT]));
		if (a[LLMDEV_A_TX_ERRORS])
			printf(",\"tx_errors\":%llu",
			       (unsigned long long)nla_get_u64(a[LLMDEV_A_TX_ERRORS]));
		if (a[LLMDEV_A_RX_ERRORS])
			printf(",\"rx_errors\":%llu",
			       (unsigned long long)nla_get_u64(a[LLMDEV_A_RX_ERRORS]));
		if (a[LLMDEV_A_COLL_TAG])
			printf(",\"tag\":\"%016llx\"",
			       (unsigned long long)nla_get_u64(a[LLMDEV_A_COLL_TAG]));
		if (a[LLMDEV_A_ERRNO])
			printf(",\"errno\":%u", nla_get_u32(a[LLMDEV_A_ERRNO]));
		printf("}\n");
	} else {
		struct tm tm;

		localtime_r(&ts.tv_sec, &tm);
		printf("%02d:%02d:%02d.%03ld llmdev%u ", tm.tm_hour, tm.tm_min,
		       tm.tm_sec, ts.tv_nsec / 1000000, nla_get_u32(a[LLMDEV_A_CARD]));
		if (gh->cmd == LLMDEV_GENL_CMD_COLL_ERROR) {
			uint32_t e = a[LLMDEV_A_ERRNO] ? nla_get_u32(a[LLMDEV_A_ERRNO]) : 0;

			printf("collective %016llx failed: %s\n",
			       a[LLMDEV_A_COLL_TAG] ?
			       (unsigned long long)nla_get_u64(a[LLMDEV_A_COLL_TAG]) : 0ULL,
			       llmdev_strerror(-(int)e));
		} else {
			printf("link%u ", a[LLMDEV_A_PORT] ? nla_get_u32(a[LLMDEV_A_PORT]) : 0);
			if (gh->cmd == LLMDEV_GENL_CMD_LINK_ERROR)
				printf("errors: tx %llu rx %llu\n",
				       a[LLMDEV_A_TX_ERRORS] ?
				       (unsigned long long)nla_get_u64(a[LLMDEV_A_TX_ERRORS]) : 0ULL,
				       a[LLMDEV_A_RX_ERRORS] ?
				       (unsigned long long)nla_get_u64(a[LLMDEV_A_RX_ERRORS]) : 0ULL);
			else if (!a[LLMDEV_A_LINK_STATE])
				printf("changed\n");
			else if (nla_get_u32(a[LLMDEV_A_LINK_STATE]) != LLMDEV_LINK_UP ||
				 !a[LLMDEV_A_PEER_PORT])
				printf("%s\n", link_state_name(nla_get_u32(a[LLMDEV_A_LINK_STATE])));
			else if (a[LLMDEV_A_PEER_CARD])
				printf("up, peer llmdev%u port %u\n",
				       nla_get_u32(a[LLMDEV_A_PEER_CARD]),
				       nla_get_u32(a[LLMDEV_A_PEER_PORT]));
			else
				printf("up, peer %016llx port %u\n",
				       a[LLMDEV_A_PEER_SERIAL] ?
				       (unsigned long long)nla_get_u64(a[LLMDEV_A_PEER_SERIAL]) : 0ULL,
				       nla_get_u32(a[LLMDEV_A_PEER_PORT]));
		}
	}
	fflush(stdout);
	if (monitor_left > 0 && --monitor_left == 0)
		stop = 1;
	return NL_OK;
}

static int cmd_monitor(int argc, char **argv)
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
			if (*end || timeout <= 0)
				return usage_err("monitor: --timeout wants seconds (> 0), not '%s'", optarg);
			break;
		case 'h':
			puts("usage: llmctl monitor [--count N] [--timeout SEC] [--json]\n\n"
			     "Print the driver's netlink events as they happen: links going up or\n"
			     "down, link errors, failed collectives. Stops after N events or SEC\n"
			     "seconds (exit status 2 if the timeout expires before N events).");
			return 0;
		default:
			return EXIT_USAGE;
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
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!json)
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
		if (ret <= 0)
			continue;
		ret = nl_recvmsgs_default(sk);
		if (ret < 0 && ret != -NLE_AGAIN && ret != -NLE_INTR) {
			msg("receiving events: %s", nl_geterror(ret));
			break;
		}
		ret = 0;
	}
	nl_socket_free(sk);
	if (ret < 0)
		return EXIT_FAIL;
	if (timed_out && monitor_left > 0) {
		msg("timed out after %g s with %ld event%s still to come", timeout,
		    monitor_left, monitor_left == 1 ? "" : "s");
		return EXIT_FAIL;
	}
	return 0;
}

/* ---- main ------------------------------------------------------------------- */

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "list", cmd_list, "every card on the PCI bus, with or without the driver" },
	{ "info", cmd_info, "everything about one card" },
	{ "driver", cmd_driver, "status, load or unload the kernel module" },
	{ "stats", cmd_stats, "perf and link counters, once or with --watch" },
	{ "link", cmd_link, "show peer links; enable or disable a port" },
	{ "monitor", cmd_monitor, "print netlink events as they happen" },
	{ "shard", cmd_shard, "plan, apply, show or clear the shard routing tables" },
	{ "load", cmd_load, "load a GGUF model's shards into persistent regions" },
	{ "unload", cmd_unload, "free a loaded model's regions" },
};

static void usage(FILE *f)
{
	unsigned int i;

	fprintf(f, "usage: llmctl [-j|--json] COMMAND [ARGS]\n\n"
		"Manage llmdev LLM-inference cards.\n\ncommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nDEV is N, llmdevN, /dev/llmdevN or a PCI address (0000:01:00.0).\n"
		"'llmctl COMMAND --help' describes a command. Exit status: 0 success,\n"
		"1 usage error, 2 failure.\n");
}

int main(int argc, char **argv)
{
	unsigned int i, k;
	int argi = 1;

	for (; argi < argc && argv[argi][0] == '-'; argi++) {
		if (!strcmp(argv[argi], "-j") || !strcmp(argv[argi], "--json")) {
			json = true;
		} else if (!strcmp(argv[argi], "-h") || !strcmp(argv[argi], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[argi], "--version")) {
			printf("llmctl %s\n", LLMCTL_VERSION);
			return 0;
		} else {
			return usage_err("unknown option '%s'", argv[argi]);
		}
	}
	if (argi == argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	/* -j/--json may also come after the command, anywhere */
	for (i = k = argi + 1; i < (unsigned int)argc; i++) {
		if (!strcmp(argv[i], "-j") || !strcmp(argv[i], "--json"))
			json = true;
		else
			argv[k++] = argv[i];
	}
	argv[k] = NULL;
	argc = k;
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[argi], commands[i].name))
			return commands[i].fn(argc - argi, argv + argi);
	return usage_err("unknown command '%s'", argv[argi]);
}
