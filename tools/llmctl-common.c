// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl-common.c - what the commands of llmctl share: messages, signals,
 * the kernel module (libkmod), opening cards, links and routing tables as
 * text and JSON, and the model helpers of shard and load (options, region
 * names, the default card order, the plan).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "gguf.h"
#include "llmctl.h"
#include "llmctl-dl.h"
#include "../driver/llmdev_regs.h"

/* ---- messages ---------------------------------------------------------- */

static const char prog[] = "llmctl";

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

/* After getopt_long()'s own message (which names the command: argv[0]). */
int usage_hint(void)
{
	fprintf(stderr, "Try '%s --help'.\n", prog);
	return EXIT_USAGE;
}

bool is_help(const char *arg)
{
	return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

bool has_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++)
		if (is_help(argv[i]))
			return true;
	return false;
}

int print_done(void)
{
	int ret = print_end();

	if (!ret)
		return 0;
	msg("writing the output: %s", ret == -EINVAL ? "internal error (unbalanced JSON)" :
	    strerror(-ret));
	return EXIT_FAIL;
}

const char *admin_strerror(int err)
{
	return err == -EPERM ? "not permitted (needs CAP_SYS_ADMIN)" : llmdev_strerror(err);
}

volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

void catch_signals(bool hup)
{
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (hup)
		signal(SIGHUP, on_signal);
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int read_sysfs(const char *path, char *buf, size_t len)
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

/* ---- the kernel module (libkmod) ----------------------------------------- */

/* libkmod logs its errors on stderr too; our messages say it better */
static void kmod_quiet(void *data, int priority, const char *file, int line,
		       const char *fn, const char *format, va_list args)
{
	(void)data, (void)priority, (void)file, (void)line, (void)fn;
	(void)format, (void)args;
}

struct kmod_ctx *kmod_open(const struct llmctl_kmod **k)
{
	struct kmod_ctx *ctx;

	*k = llmctl_kmod();
	if (!*k)
		return NULL;
	ctx = (*k)->new(NULL, NULL);
	if (ctx)
		(*k)->set_log_fn(ctx, kmod_quiet, NULL);
	else
		msg("cannot initialise libkmod");
	return ctx;
}

const char *driver_state(int *refcnt)
{
	const struct llmctl_kmod *k;
	struct kmod_ctx *ctx = kmod_open(&k);
	struct kmod_module *mod = NULL;
	const char *state = "absent";
	int s;

	*refcnt = -1;
	if (!ctx)
		return state;
	if (k->module_new_from_name(ctx, "llmdev", &mod) == 0) {
		s = k->module_get_initstate(mod);
		if (s >= 0)
			state = k->module_initstate_str(s);
		if (s == KMOD_MODULE_LIVE)
			*refcnt = k->module_get_refcnt(mod);
		k->module_unref(mod);
	}
	k->unref(ctx);
	return state;
}

/*
 * What libkmod's initstate would say, read where it reads it: the module
 * is live, or built in (its /sys/module directory without an initstate).
 * Without libkmod: the commands that only ask this do not load it.
 */
bool driver_loaded(void)
{
	char state[32];
	struct stat st;

	if (!read_sysfs("/sys/module/llmdev/initstate", state, sizeof(state)))
		return !strcmp(state, "live");
	return !stat("/sys/module/llmdev", &st) && S_ISDIR(st.st_mode);
}

/* Whether a port of @dev is enabled and cabled but not up yet. */
static bool card_training(struct llmdev *dev)
{
	struct llmdev_link_info li;
	struct llmdev_info info;
	unsigned int p;

	if (llmdev_get_info(dev, &info))
		return false;
	for (p = 0; p < info.num_link_ports; p++)
		if (!llmdev_link_get_info(dev, p, &li) &&
		    li.state == LLMDEV_LINK_TRAINING &&
		    (li.link_flags & LLMDEV_LINK_ENABLED) &&
		    (li.link_flags & LLMDEV_LINK_CABLED))
			return true;
	return false;
}

/*
 * The driver enables the peer-link ports as it binds to a card and again
 * after a reset, and a cabled port comes up LLMDEV_LINK_TRAIN_NS after
 * both its ends are enabled. Wait for the ports of @card (-1: of every
 * card) to do that, 1 s at most (a port whose other end stays disabled
 * trains for ever), so that the command that loaded the driver or reset a
 * card sees the links a later command sees: load and a later shard apply
 * pick the same card order.
 */
void links_settle(int card)
{
	struct llmdev **devs = NULL, *one;
	struct timespec t0, t;
	bool training = true;
	int n, i;

	if (card >= 0) {
		if (llmdev_open(card, &one))
			return;
		devs = &one;
		n = 1;
	} else {
		n = open_cards_quiet(&devs);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (training) {
		for (i = 0, training = false; i < n && !training; i++)
			training = card_training(devs[i]);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (!training || (t.tv_sec - t0.tv_sec) * 1000000000LL +
				 t.tv_nsec - t0.tv_nsec >= 1000000000LL)
			break;
		usleep(1000);
	}
	if (card >= 0)
		llmdev_close(one);
	else
		close_cards(devs, n);
}

int driver_load(const char *path, const char *params)
{
	const struct llmctl_kmod *k;
	struct kmod_ctx *ctx;
	struct kmod_module *mod = NULL;
	struct utsname u;
	int ret;

	if (driver_loaded())
		return 0;
	ctx = kmod_open(&k);
	if (!ctx)
		return -ENOMEM;
	if (!path)
		path = getenv("LLMCTL_MODULE");
	if (path)
		ret = k->module_new_from_path(ctx, path, &mod);
	else
		ret = k->module_new_from_name(ctx, "llmdev", &mod);
	if (ret < 0) {
		msg("%s: %s", path ? path : "llmdev", strerror(-ret));
		goto out;
	}
	if (path)
		ret = k->module_insert_module(mod, 0, params);
	else
		ret = k->module_probe_insert_module(mod, 0, params, NULL, NULL,
						    NULL);
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
	if (!ret)
		links_settle(-1);
out:
	if (mod)
		k->module_unref(mod);
	k->unref(ctx);
	return ret;
}

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

/* ---- cards -------------------------------------------------------------- */

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

int open_cards(const char *name, struct llmdev ***devsp)
{
	struct llmdev **devs;
	int n, err, bad;

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
	if (llmdev_count() <= 0) {
		msg("no llmdev cards (the driver is loaded but bound to none)");
		return -1;
	}
	n = open_cards_all(devsp, &err, &bad);
	if (err) {
		/* every card or none: a command does not go on with some */
		msg("llmdev%d: %s%s", bad, llmdev_strerror(err),
		    err == -EACCES ? " (root, or a member of the group llmdev, may open it)" : "");
		close_cards(*devsp, n);
		*devsp = NULL;
		return -1;
	}
	return *devsp ? n : -1;
}

int open_cards_all(struct llmdev ***devsp, int *err, int *bad)
{
	int n = llmdev_count(), found = 0, i, ret;
	struct llmdev **devs = n > 0 ? calloc(n, sizeof(*devs)) : NULL;

	*err = 0;
	*bad = 0;
	/* minors need not be dense after hot-unplug: look a little further */
	for (i = 0; devs && found < n && i < n + 64; i++) {
		ret = llmdev_open(i, &devs[found]);
		if (!ret)
			found++;
		else if (ret != -ENOENT && ret != -ENODEV && ret != -ENXIO && !*err) {
			*err = ret;
			*bad = i;
		}
	}
	*devsp = devs;
	return found;
}

/* every card with a device node, without a message; the count (0 if none) */
int open_cards_quiet(struct llmdev ***devsp)
{
	int err, bad;

	return open_cards_all(devsp, &err, &bad);
}

void close_cards(struct llmdev **devs, int n)
{
	while (n-- > 0)
		llmdev_close(devs[n]);
	free(devs);
}

/* N of /dev/llmdevN */
int card_index(const struct llmdev *dev)
{
	return atoi(llmdev_name(dev) + strlen("llmdev"));
}

const char *link_state_name(uint32_t s)
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

const char *hop_name(uint32_t hop, char *buf, size_t len)
{
	if (hop == LLMDEV_HOP_HOST)
		return "host";
	snprintf(buf, len, "link%u", hop);
	return buf;
}

void print_links(struct llmdev *dev, const char *indent)
{
	struct llmdev_link_info li;
	unsigned int p;

	print_text("%s%-4s %-8s %-3s %-5s %-8s %-16s %-5s %10s %10s %8s %8s %5s\n", indent,
		   "PORT", "STATE", "EN", "CABLE", "PEER", "PEER_SERIAL", "PPORT", "TX", "RX",
		   "TX_ERR", "RX_ERR", "DOWNS");
	print_open_array("links");
	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
		bool up;

		if (llmdev_link_get_info(dev, p, &li))
			continue;
		up = li.state == LLMDEV_LINK_UP;
		print_open_object(NULL);
		print_text("%s", indent);
		print_uint(PRINT_ANY, "port", "%-4u ", p);
		print_string(PRINT_ANY, "state", "%-8s ", link_state_name(li.state));
		print_bool(PRINT_ANY, "enabled", "%-3s ", li.link_flags & LLMDEV_LINK_ENABLED);
		print_bool(PRINT_ANY, "cabled", "%-5s ", li.link_flags & LLMDEV_LINK_CABLED);
		/* a peer of another host has a serial but no card here */
		if (up && li.peer_minor >= 0) {
			char card[24];

			snprintf(card, sizeof(card), "llmdev%d", li.peer_minor);
			print_int(PRINT_JSON, "peer_card", NULL, li.peer_minor);
			print_string(PRINT_FP, NULL, "%-8s ", card);
		} else {
			print_null(PRINT_ANY, "peer_card", "%-8s ", "-");
		}
		if (up) {
			char serial[24];

			snprintf(serial, sizeof(serial), "%016llx",
				 (unsigned long long)li.peer_serial);
			print_string(PRINT_ANY, "peer_serial", "%-16s ", serial);
			print_uint(PRINT_ANY, "peer_port", "%-5u ", li.peer_port);
		} else {
			print_null(PRINT_ANY, "peer_serial", "%-16s ", "-");
			print_null(PRINT_ANY, "peer_port", "%-5s ", "-");
		}
		print_bytes(PRINT_ANY, "tx_bytes", "%10s ", li.tx_bytes);
		print_bytes(PRINT_ANY, "rx_bytes", "%10s ", li.rx_bytes);
		print_u64(PRINT_ANY, "tx_errors", "%8" PRIu64 " ", li.tx_errors);
		print_u64(PRINT_ANY, "rx_errors", "%8" PRIu64 " ", li.rx_errors);
		print_uint(PRINT_ANY, "down_count", "%5u\n", li.down_count);
		print_close_object();
	}
	print_close_array();
}

/* Counter @i's increase per second; a counter that went back was reset. */
static double rate_of(const struct llmdev_perf *now, const struct llmdev_perf *before,
		      unsigned int i, double dt)
{
	uint64_t was = now->counters[i] >= before->counters[i] ? before->counters[i] : 0;

	return (now->counters[i] - was) / dt;
}

void print_counters(const struct llmdev_perf *now, const struct llmdev_perf *before,
		    const char *indent)
{
	double dt = before ? (now->host_time_ns - before->host_time_ns) / 1e9 : 0;
	bool rates = before && dt > 0;
	char b[24];
	unsigned int i;

	print_open_object("counters");
	for (i = 0; i < now->num_counters && llmdev_counter_name(i); i++) {
		const char *name = llmdev_counter_name(i);
		uint64_t v = now->counters[i];
		bool bytes = strstr(name, "bytes") != NULL;
		bool ns = strstr(name, "_ns") != NULL;

		/* the JSON has the number, the text its human form */
		print_u64(PRINT_JSON, name, NULL, v);
		if (bytes)
			human_bytes(v, b, sizeof(b));
		else if (ns)
			snprintf(b, sizeof(b), "%.3f s", v / 1e9);
		else
			snprintf(b, sizeof(b), "%" PRIu64, v);
		print_text("%s%-18s %14s", indent, name, b);
		if (rates) {
			double rate = rate_of(now, before, i, dt);

			if (bytes)
				human_rate(rate, "B", b, sizeof(b));
			else if (ns)
				snprintf(b, sizeof(b), "%.1f%% busy", rate / 1e7);
			else
				snprintf(b, sizeof(b), "%.1f/s", rate);
			print_text("  %16s", b);
		}
		print_text("\n");
	}
	print_close_object();
	if (!rates)
		return;
	print_open_object("rates");
	for (i = 0; i < now->num_counters && llmdev_counter_name(i); i++)
		print_float(PRINT_JSON, llmdev_counter_name(i), NULL, rate_of(now, before, i, dt));
	print_close_object();
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

void print_routes(const char *key, const struct llmdev_route_entry *e, unsigned int n,
		  const struct llmdev_hbm_region *regs, unsigned int nregs,
		  const char *indent)
{
	unsigned int i;
	char hop[16];

	print_open_array(key);
	for (i = 0; i < n; i++) {
		print_open_object(NULL);
		print_text("%s", indent);
		print_uint(PRINT_ANY, "layer_first", "layers %u", e[i].layer_first);
		print_uint(PRINT_ANY, "layer_last", "-%u", e[i].layer_last);
		print_uint(PRINT_ANY, "tp_rank", " tp %u", e[i].tp_rank);
		print_uint(PRINT_ANY, "tp_size", "/%u", e[i].tp_size);
		print_uint(PRINT_ANY, "handle", " region %u", e[i].handle);
		print_string(PRINT_ANY, "region", " %s", region_of(regs, nregs, e[i].handle));
		print_string(PRINT_ANY, "next_hop", " -> %s",
			     hop_name(e[i].next_hop, hop, sizeof(hop)));
		print_u64(PRINT_ANY, "hbm_offset", ", at 0x%" PRIx64, e[i].hbm_offset);
		print_bytes(PRINT_ANY, "length", " (%s)\n", e[i].length);
		print_close_object();
	}
	print_close_array();
}

/* ---- models: shard and load ------------------------------------------------ */

static int parse_u32(const char *s, uint32_t max, uint32_t *v)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || end == s || *end || n > max || s[0] == '-')
		return -EINVAL;
	*v = n;
	return 0;
}

/* "0,1,2,3" or "0-3" or a mix; each card once, a range upwards */
static int parse_cards(const char *s, struct model_opts *o)
{
	char *copy = strdup(s), *rest = copy, *tok;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	o->n_cards = 0;
	/* strsep(): an empty item (",,", a comma at either end) is an error */
	while ((tok = strsep(&rest, ","))) {
		char *dash = strchr(tok, '-');
		uint32_t a, b;

		if (dash)
			*dash = 0;
		if (parse_u32(tok, 255, &a) || (dash && parse_u32(dash + 1, 255, &b))) {
			ret = -EINVAL;
			break;
		}
		if (!dash)
			b = a;
		if (a > b) {
			ret = -EINVAL;
			break;
		}
		for (; a <= b && o->n_cards < SHARD_MAX_CARDS; a++) {
			uint32_t k;

			for (k = 0; k < o->n_cards && o->cards[k] != a; k++)
				;
			if (k < o->n_cards)
				break;	/* named twice */
			o->cards[o->n_cards++] = a;
		}
		if (a <= b) {
			ret = -EINVAL;
			break;
		}
	}
	free(copy);
	return ret || !o->n_cards ? -EINVAL : 0;
}

int parse_model_opts(int argc, char **argv, struct model_opts *o,
		     const char *usage, bool load)
{
	static const struct option opts[] = {
		{ "tp", required_argument, NULL, 't' },
		{ "pp", required_argument, NULL, 'p' },
		{ "cards", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "verify", no_argument, NULL, 'V' },
		{ "replace", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->tp = 1;
	o->pp = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:p:c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_u32(optarg, SHARD_MAX_CARDS, &o->tp) || !o->tp)
				return usage_err("--tp wants a number >= 1, not '%s'", optarg);
			break;
		case 'p':
			if (parse_u32(optarg, SHARD_MAX_CARDS, &o->pp) || !o->pp)
				return usage_err("--pp wants a number >= 1, not '%s'", optarg);
			break;
		case 'c':
			if (parse_cards(optarg, o))
				return usage_err("--cards wants card numbers like 0,1,2,3 or 0-3, not '%s'",
						 optarg);
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'V':
		case 'r':
			if (!load)
				return usage_err("--%s is an option of 'llmctl load'",
						 c == 'V' ? "verify" : "replace");
			if (c == 'V')
				o->verify = true;
			else
				o->replace = true;
			break;
		case 'h':
			puts(usage);
			return -1;
		default:
			return usage_hint();
		}
	}
	if (optind != argc - 1)
		return usage_err("%s", optind >= argc ? "a GGUF model file is needed" :
				 "one model file only");
	o->path = argv[optind];
	if ((uint64_t)o->tp * o->pp > SHARD_MAX_CARDS)
		return usage_err("--tp %u x --pp %u is too many cards", o->tp, o->pp);
	if (o->n_cards && o->n_cards != o->tp * o->pp)
		return usage_err("--cards lists %zu cards but --tp %u x --pp %u needs %u",
				 o->n_cards, o->tp, o->pp, o->tp * o->pp);
	return 0;
}

/*
 * The model part of its region names: the file's base name without
 * ".gguf" when that is at most MODEL_TAG_LEN characters of [A-Za-z0-9.-];
 * otherwise its first MODEL_TAG_KEEP characters (others replaced by '_'),
 * '~' and 6 hex digits of a hash of the whole base name, so that long
 * names sharing a prefix ("Meta-Llama-3-8B-Instruct-Q8_0" and
 * "...-Q4_0") do not share regions.
 */
#define MODEL_TAG_KEEP	(MODEL_TAG_LEN - 7)

static bool tag_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '.' || ch == '-';
}

void model_tag(const char *path, char tag[MODEL_TAG_LEN + 1])
{
	const char *base = strrchr(path, '/');
	uint32_t h = 2166136261u;	/* FNV-1a, 32 bit */
	bool plain = true;
	size_t i, n;

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n > 5 && !strcmp(base + n - 5, ".gguf"))
		n -= 5;
	for (i = 0; i < n; i++) {
		plain &= tag_char(base[i]);
		h = (h ^ (unsigned char)base[i]) * 16777619u;
	}
	if (plain && n <= MODEL_TAG_LEN) {
		memcpy(tag, base, n);
		tag[n] = 0;
		return;
	}
	for (i = 0; i < n && i < MODEL_TAG_KEEP; i++)
		tag[i] = tag_char(base[i]) ? base[i] : '_';
	snprintf(tag + i, MODEL_TAG_LEN + 1 - i, "~%06x", (unsigned int)(h & 0xffffff));
}

/* The region of stage @stage, rank @rank: "<model>.s<stage>t<rank>" */
void region_name(const char *path, uint32_t stage, uint32_t rank,
		 char name[LLMDEV_NAME_LEN])
{
	char tag[MODEL_TAG_LEN + 1];

	model_tag(path, tag);
	snprintf(name, LLMDEV_NAME_LEN, "%s.s%ut%u", tag, stage, rank);
}

/*
 * Region @name (@handle) on @dev was made by our effective uid? Anyone who
 * may open the card can make a region of a model's name first; loading
 * into it or routing it would give that user the model, or have the card
 * serve that user's bytes. (The uid is what LLMDEV_HBM_LIST tells: it
 * cannot tell a container's uid 0 from the host's.) @handle 0: the
 * region of that name, whatever its handle (after LLMDEV_HBM_OPEN said
 * -EPERM). Return: 0, or EXIT_FAIL after a message naming the region and
 * its owner.
 */
/* Has this process CAP_SYS_ADMIN (CapEff of /proc/self/status)? */
static bool have_sys_admin(void)
{
	unsigned long long eff = 0;
	char line[128];
	bool found = false;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return geteuid() == 0;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "CapEff: %llx", &eff) == 1;
	fclose(f);
	return found ? (eff >> 21) & 1 : geteuid() == 0;	/* CAP_SYS_ADMIN */
}

int region_check_owner(struct llmdev *dev, const char *name, uint32_t handle,
		       const char *path)
{
	struct llmdev_hbm_region *reg = NULL;
	unsigned int nreg = 0, k;
	uid_t me = geteuid();
	int ret = llmdev_hbm_list(dev, &reg, &nreg);

	if (ret) {
		msg("%s: listing the regions: %s", llmdev_name(dev),
		    llmdev_strerror(ret));
		return EXIT_FAIL;
	}
	for (k = 0; k < nreg; k++)
		if ((reg[k].flags & LLMDEV_REGION_PERSISTENT) &&
		    !strcmp(reg[k].name, name))
			break;
	if (k == nreg || (handle && reg[k].handle != handle)) {
		msg("%s: region '%s' went away meanwhile; run the command again",
		    llmdev_name(dev), name);
		ret = EXIT_FAIL;
	} else if (reg[k].owner_uid != (uint32_t)me) {
		char who[32] = "";

		if (reg[k].owner_uid)
			snprintf(who, sizeof(who), "as uid %u or ", reg[k].owner_uid);
		msg("%s: region '%s' belongs to uid %u, not to this user (uid %u): "
		    "refusing to use it for '%s'; free it %sas root "
		    "('llmctl unload %s'), then load again", llmdev_name(dev), name,
		    reg[k].owner_uid, (unsigned int)me, path, who, path);
		ret = EXIT_FAIL;
	} else if ((reg[k].flags & LLMDEV_REGION_UNPRIVILEGED) && have_sys_admin()) {
		/* uid 0 without CAP_SYS_ADMIN (a container, say) made it */
		msg("%s: region '%s' was made without CAP_SYS_ADMIN (uid %u, but not "
		    "this administrator): refusing to use it for '%s'; free it "
		    "('llmctl unload %s'), then load again", llmdev_name(dev), name,
		    reg[k].owner_uid, path, path);
		ret = EXIT_FAIL;
	}
	free(reg);
	return ret;
}

/* Is @name the region of a stage and rank of the model @tag? */
bool is_model_region(const char *name, const char *tag)
{
	size_t n = strlen(tag), d;

	if (strncmp(name, tag, n) || name[n] != '.' || name[n + 1] != 's')
		return false;
	name += n + 2;
	d = strspn(name, "0123456789");
	if (!d || name[d] != 't')
		return false;
	name += d + 1;
	d = strspn(name, "0123456789");
	return d && !name[d];
}

/* The port of @from whose link is up to @to; -ENOLINK if none. */
int port_to(struct llmdev *from, struct llmdev *to)
{
	struct llmdev_link_info li;
	struct llmdev_info fi, ti;
	unsigned int p;

	if (llmdev_get_info(from, &fi) || llmdev_get_info(to, &ti))
		return -ENODEV;
	for (p = 0; p < fi.num_link_ports; p++)
		if (!llmdev_link_get_info(from, p, &li) &&
		    li.state == LLMDEV_LINK_UP && li.peer_serial == ti.serial)
			return p;
	return -ENOLINK;
}

/*
 * The default card order for --pp > 1 (no --cards): the first one in which
 * each stage's card has a link that is up to the next stage's card of the
 * same rank (shard_order_cards()). @o->cards holds 0 .. n - 1 and keeps it
 * when there is none (shard apply then says which hop has no link).
 */
static void default_order(struct model_opts *o)
{
	uint32_t i, j, n = o->tp * o->pp, max = 0, slots;
	struct llmdev **devs = NULL;
	uint32_t *order = NULL;
	bool *linked = NULL;
	int count = llmdev_count();

	if (o->pp == 1 || count <= 0 || (uint32_t)count < n)
		return;
	/* minors need not be dense after hot-unplug: look a little further */
	slots = (uint32_t)count + 64 < SHARD_MAX_CARDS ? (uint32_t)count + 64 : SHARD_MAX_CARDS;
	devs = calloc(slots, sizeof(*devs));
	order = calloc(n, sizeof(*order));
	if (!devs || !order)
		goto out;
	for (i = 0; i < slots; i++)
		if (!llmdev_open(i, &devs[i]))
			max = i + 1;
	linked = calloc((size_t)max * max, sizeof(*linked));
	if (!linked)
		goto out;
	for (i = 0; i < max; i++)
		for (j = 0; j < max; j++)
			if (i != j && devs[i] && devs[j])
				linked[i * max + j] = port_to(devs[i], devs[j]) >= 0;
	if (max >= n && !shard_order_cards(o->tp, o->pp, max, linked, order))
		memcpy(o->cards, order, n * sizeof(*order));
out:
	free(linked);
	free(order);
	for (i = 0; i < max; i++)
		if (devs[i])
			llmdev_close(devs[i]);
	free(devs);
}

/*
 * Open the model, check that the plan fits it, open the plan's cards (when
 * the driver is there) and make the plan, checking the cards' free HBM: a
 * card's largest free extent, plus the model's own region on it (loading
 * again reuses or replaces it). @devs gets tp * pp handles (NULL when @need_cards is false
 * and the driver is missing).
 */
int make_plan(struct model_opts *o, bool need_cards, struct gguf_file **gp,
	      struct shard_plan **planp, struct llmdev ***devsp)
{
	struct shard_opts so = { .tp = o->tp, .pp = o->pp };
	uint32_t n = o->tp * o->pp;
	struct llmdev **devs = NULL;
	uint64_t *free_hbm = NULL;
	bool auto_order;
	char err[512];
	uint32_t i;
	int ret;

	ret = gguf_open(o->path, gp, err, sizeof(err));
	if (ret) {
		msg("%s: %s", o->path, err);
		return EXIT_FAIL;
	}
	auto_order = !o->n_cards;
	if (auto_order) {
		for (i = 0; i < n; i++)
			o->cards[i] = i;
		o->n_cards = n;
	}
	so.cards = o->cards;
	so.n_cards = o->n_cards;

	/* the model and the options first: their errors do not need cards */
	ret = shard_plan_build(*gp, &so, planp, err, sizeof(err));
	if (ret) {
		msg("%s: %s", o->path, err);
		goto fail;
	}
	shard_plan_free(*planp);
	*planp = NULL;
	if (need_cards && need_driver())
		goto fail;
	/* after loading the driver: load and a later apply agree on the order */
	if (auto_order && driver_loaded())
		default_order(o);
	if (need_cards || driver_loaded()) {
		devs = calloc(n, sizeof(*devs));
		free_hbm = calloc(n, sizeof(*free_hbm));
		if (!devs || !free_hbm) {
			msg("out of memory");
			goto fail;
		}
		for (i = 0; i < n; i++) {
			char name[LLMDEV_NAME_LEN];
			struct llmdev_hbm_open ho;
			struct llmdev_info info;

			ret = llmdev_open(o->cards[i], &devs[i]);
			if (ret == -ENOENT) {
				msg("card %u does not exist (--tp %u x --pp %u needs %u cards; %d have a device node)",
				    o->cards[i], o->tp, o->pp, n, llmdev_count());
				goto fail;
			}
			if (!ret)
				ret = llmdev_get_info(devs[i], &info);
			if (ret) {
				msg("llmdev%u: %s", o->cards[i], llmdev_strerror(ret));
				goto fail;
			}
			free_hbm[i] = info.hbm_largest_free;
			region_name(o->path, i / o->tp, i % o->tp, name);
			if (!llmdev_hbm_open(devs[i], name, &ho))
				free_hbm[i] += ho.length;
			if (!free_hbm[i])
				free_hbm[i] = 1;	/* full: 0 would mean "unknown" */
		}
		so.free = free_hbm;
	} else {
		msg("note: the llmdev driver is not loaded; the plan does not check free HBM");
	}
	ret = shard_plan_build(*gp, &so, planp, err, sizeof(err));
	if (ret) {
		msg("%s: %s", o->path, err);
		goto fail;
	}
	free(free_hbm);
	*devsp = devs;
	return 0;
fail:
	if (devs)
		close_cards(devs, n);
	free(free_hbm);
	gguf_close(*gp);
	*gp = NULL;
	return EXIT_FAIL;
}

void free_plan(struct gguf_file *g, struct shard_plan *p, struct llmdev **devs,
	       uint32_t n)
{
	shard_plan_free(p);
	gguf_close(g);
	if (devs)
		close_cards(devs, n);
}

