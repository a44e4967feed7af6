// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev-bench: an honest benchmark of the llmdev stack (docs/bench.md).
 *
 *   llmdev-bench [OPTIONS] [--load FILE -- COMMAND...]
 *
 * In one run: the cost of clock_gettime and of a null ioctl; the card
 * model's copy ceiling (bytes / DMA_BUSY_NS); DMA between host memory and
 * card 0 at every size, both directions, 1 and several transfers in
 * flight, through LLMDEV_DMA_SUBMIT, LLMDEV_DMA_BATCH from plain memory
 * and from registered buffers, and the 4 KiB round trip with
 * LLMDEV_BATCH_WAIT; AllReduce f32 sum over 2 and 4 cards; with --load, a
 * model load beside an O_DIRECT read of the same file. Every measured
 * operation's data is checked (a pattern that changes per iteration); a
 * mismatch fails the run. Figures: median and p99 (nearest rank) of the
 * samples, throughput from the median. A figure whose ioctl the driver
 * does not have (ENOTTY) is SKIP with the reason, never a number.
 *
 * Exit status: 0 ok, 1 usage, 2 failure (a verification failure, or an
 * operation that failed). The JSON (-o) is written in every case.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static const struct {
	const char *name;
	unsigned int bit;
	int (*fn)(struct bench *b);
} sections[] = {
	{ "clock", SEC_CLOCK, bench_clock },
	{ "null", SEC_NULL, bench_null },
	{ "ceiling", SEC_CEILING, bench_ceiling },
	{ "dma", SEC_DMA, bench_dma },
	{ "allreduce", SEC_ALLREDUCE, bench_allreduce },
	{ "load", SEC_LOAD, bench_load },
};

#define NSECTIONS	(sizeof(sections) / sizeof(sections[0]))

static const char *const inject_names[] = {
	[INJECT_NONE] = "none",
	[INJECT_STALE] = "stale",
	[INJECT_SHORT] = "short",
	[INJECT_HBM] = "hbm",
	[INJECT_ALLREDUCE] = "allreduce",
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: llmdev-bench [OPTIONS] [--load FILE [--load-verify] -- COMMAND...]\n"
		"Measure the llmdev stack in this machine: clock and null-ioctl cost, the\n"
		"card model's copy ceiling, DMA, AllReduce, and (--load) a model load beside\n"
		"an O_DIRECT read. Every transfer's data is checked. docs/bench.md.\n\n"
		"  -d, --device N        first card, /dev/llmdevN (default 0)\n"
		"      --only LIST       sections, comma-separated: clock,null,ceiling,dma,\n"
		"                        allreduce,load (default: all; load only with --load)\n"
		"  -s, --size SIZE       DMA transfer size, K/M/G suffix; repeatable\n"
		"                        (default 4K 64K 1M 64M)\n"
		"  -k, --inflight N      DMA transfers in flight; repeatable (default 1 4)\n"
		"  -r, --ranks N         AllReduce ranks; repeatable (default 2 4)\n"
		"  -S, --ar-size SIZE    AllReduce bytes per rank; repeatable (default 1M 64M)\n"
		"  -t, --time SECONDS    sampling time per figure (default 1)\n"
		"  -n, --samples MIN[,MAX]  samples per figure (default 5,1000)\n"
		"  -w, --warmup N        warm-up iterations per figure (default 2; 1 when an\n"
		"                        iteration moves 64 MiB or more)\n"
		"      --link-gbps N     the cards' peer-link pacing to record: N Gb/s, 0 unpaced\n"
		"      --link-gbps-model N  the link-gbps the cards were started with\n"
		"      --run NAME        name of this run, recorded with every figure\n"
		"      --load FILE       time COMMAND (after --) beside `dd iflag=direct` of FILE\n"
		"      --load-verify     after each timed COMMAND, run COMMAND --verify\n"
		"                        (untimed); it must succeed\n"
		"      --load-between CMD  sh command that undoes COMMAND: then COMMAND runs\n"
		"                        once untimed (a warm-up), CMD, and --load-rounds\n"
		"                        timed rounds with CMD between them; medians. After\n"
		"                        CMD every card's hbm_used must be back where it was\n"
		"                        before the first load within 60 s\n"
		"      --load-rounds N   timed rounds with --load-between (default 3)\n"
		"  -o, --json FILE       write the results as JSON (llmdev.bench/1), - = stdout\n"
		"      --smoke           tiny sizes, few samples: a test of the benchmark\n"
		"      --inject FAULT    corrupt data on purpose (stale, short, hbm, allreduce):\n"
		"                        the run must then fail with exit status 2\n"
		"  -h, --help            this help\n\n"
		"Exit status: 0 ok, 1 usage, 2 failure (data that does not verify, or an\n"
		"operation that failed).\n");
}

static int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10; end++; break;
	case '\0': break;
	default: return -1;
	}
	if (*end || !v || v > (1ull << 34))
		return -1;
	*out = v;
	return 0;
}

static int parse_uint(const char *s, unsigned int max, unsigned int *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_only(const char *s, unsigned int *out)
{
	char *copy = strdup(s), *rest = copy, *tok;
	unsigned int i;
	int ret = 0;

	if (!copy)
		return -1;
	*out = 0;
	/* strsep(): an empty item (",,", a comma at either end) is an error */
	while ((tok = strsep(&rest, ","))) {
		for (i = 0; i < NSECTIONS && strcmp(tok, sections[i].name); i++)
			;
		if (i == NSECTIONS) {
			ret = -1;
			break;
		}
		*out |= sections[i].bit;
	}
	free(copy);
	return ret || !*out ? -1 : 0;
}

/* ---- conditions ------------------------------------------------------------------- */

/* the first line of a file, without the newline; NULL if unreadable */
static char *read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	char *p = NULL;

	if (f) {
		p = fgets(buf, len, f);
		fclose(f);
	}
	if (p)
		buf[strcspn(buf, "\n")] = 0;
	return p;
}

static void add_conditions(struct bench *b, struct utsname *u, char *cs, size_t cslen)
{
	static const char *const params[] = {
		"dma_timeout_ms", "coll_timeout_ms", "msix", "links_enable", "poll_us",
		"poll_max_us",
	};
	struct json_object *root = b->root, *drv, *par;
	struct llmdev_info info;
	struct llmdev *dev;
	char buf[1024], path[128], date[32];
	const char *flavour = getenv("KERNEL");
	time_t t = time(NULL);
	unsigned int i;
	int n;

	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	jset_str(root, "date", date);
	b->kernel = u->release;
	jset_str(root, "kernel", u->release);
	jset_str(root, "kernel_flavour", flavour && *flavour ? flavour : NULL);
	b->clocksource = read_line("/sys/devices/system/clocksource/clocksource0/current_clocksource",
				   cs, cslen);
	jset_str(root, "clocksource", b->clocksource);
	jset_str(root, "cmdline", read_line("/proc/cmdline", buf, sizeof(buf)));
	jset_u64(root, "cpus", sysconf(_SC_NPROCESSORS_ONLN));
	n = llmdev_count();
	/* null when they cannot be counted: scripts/bench.py fails such a run */
	if (n < 0) {
		bench_error(b, "counting the cards (/sys/class/llmdev): %s", llmdev_strerror(n));
		jset(root, "cards", NULL);
	} else {
		jset_u64(root, "cards", n);
	}
	if (n > 0 && !llmdev_open(b->o->index, &dev)) {
		if (!llmdev_get_info(dev, &info)) {
			jset_u64(root, "hbm_size", info.hbm_size);
			snprintf(buf, sizeof(buf), "%u.%u", info.spec_version >> 16,
				 info.spec_version & 0xffff);
			jset_str(root, "spec_version", buf);
			jset_u64(root, "irq_vectors", info.irq_vectors);
		}
		llmdev_close(dev);
	}
	drv = json_object_new_object();
	jset_str(drv, "srcversion", read_line("/sys/module/llmdev/srcversion", buf, sizeof(buf)));
	par = json_object_new_object();
	for (i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		snprintf(path, sizeof(path), "/sys/module/llmdev/parameters/%s", params[i]);
		if (read_line(path, buf, sizeof(buf)))
			jset_str(par, params[i], buf);
	}
	jset(drv, "parameters", par);
	jset(root, "driver", drv);
	if (b->o->link_gbps >= 0)
		jset_u64(root, "link_gbps", b->o->link_gbps);
	if (b->o->link_gbps_model >= 0)
		jset_u64(root, "link_gbps_model", b->o->link_gbps_model);
}

static struct json_object *u64_array(const uint64_t *v, unsigned int n)
{
	struct json_object *a = json_object_new_array();

	while (n--)
		json_object_array_add(a, json_object_new_uint64(*v++));
	return a;
}

static struct json_object *uint_array(const unsigned int *v, unsigned int n)
{
	struct json_object *a = json_object_new_array();

	while (n--)
		json_object_array_add(a, json_object_new_uint64(*v++));
	return a;
}

static void add_options(struct bench *b)
{
	const struct bench_opts *o = b->o;
	struct json_object *opt = json_object_new_object(), *sec = json_object_new_array();
	unsigned int i;

	for (i = 0; i < NSECTIONS; i++)
		if (o->sections & sections[i].bit)
			json_object_array_add(sec, json_object_new_string(sections[i].name));
	jset(opt, "sections", sec);
	jset_u64(opt, "card", o->index);
	jset(opt, "sizes", u64_array(o->sizes, o->nsizes));
	jset(opt, "inflight", uint_array(o->inflight, o->ninflight));
	jset(opt, "ranks", uint_array(o->ranks, o->nranks));
	jset(opt, "ar_sizes", u64_array(o->ar_sizes, o->nar_sizes));
	jset_num(opt, "time_s", o->secs);
	jset_u64(opt, "min_samples", o->min_samples);
	jset_u64(opt, "max_samples", o->max_samples);
	jset_u64(opt, "warmup", o->warmup);
	jset_bool(opt, "smoke", o->smoke);
	jset_str(opt, "inject", inject_names[o->inject]);
	jset(b->root, "options", opt);
}

static int write_json(struct bench *b)
{
	int flags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE;
	const char *path = b->o->json_path;

	if (!path)
		return 0;
	if (!strcmp(path, "-")) {
		fflush(stdout);
		puts(json_object_to_json_string_ext(b->root, flags));
		return fflush(stdout) ? -1 : 0;
	}
	if (json_object_to_file_ext(path, b->root, flags)) {
		fprintf(stderr, "llmdev-bench: writing %s: %s\n", path, json_util_get_last_err());
		return -1;
	}
	return 0;
}

/* ---- main --------------------------------------------------------------------------- */

enum {
	OPT_ONLY = 256, OPT_LINK, OPT_LINK_MODEL, OPT_RUN, OPT_LOAD, OPT_LOAD_VERIFY,
	OPT_SMOKE, OPT_INJECT, OPT_LOAD_BETWEEN, OPT_LOAD_ROUNDS,
};

#define ADD(list, n, v)							\
	do {								\
		if ((n) == BENCH_LIST_MAX) {				\
			bad_arg = NULL;					\
			goto bad;					\
		}							\
		(list)[(n)++] = (v);					\
	} while (0)

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "only", required_argument, NULL, OPT_ONLY },
		{ "size", required_argument, NULL, 's' },
		{ "inflight", required_argument, NULL, 'k' },
		{ "ranks", required_argument, NULL, 'r' },
		{ "ar-size", required_argument, NULL, 'S' },
		{ "time", required_argument, NULL, 't' },
		{ "samples", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "link-gbps", required_argument, NULL, OPT_LINK },
		{ "link-gbps-model", required_argument, NULL, OPT_LINK_MODEL },
		{ "run", required_argument, NULL, OPT_RUN },
		{ "load", required_argument, NULL, OPT_LOAD },
		{ "load-verify", no_argument, NULL, OPT_LOAD_VERIFY },
		{ "load-between", required_argument, NULL, OPT_LOAD_BETWEEN },
		{ "load-rounds", required_argument, NULL, OPT_LOAD_ROUNDS },
		{ "json", required_argument, NULL, 'o' },
		{ "smoke", no_argument, NULL, OPT_SMOKE },
		{ "inject", required_argument, NULL, OPT_INJECT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench_opts o = {
		.secs = 1, .min_samples = 5, .max_samples = 1000, .warmup = 2,
		.link_gbps = -1, .link_gbps_model = -1, .run_name = "default",
	};
	struct bench b = { .o = &o };
	struct json_object *secs;
	const char *bad_arg = NULL;
	bool only = false;
	struct utsname u;
	unsigned int i, v;
	char cs[64], *end;
	uint64_t sz;
	int opt, status = BENCH_OK;

	while ((opt = getopt_long(argc, argv, "d:s:k:r:S:t:n:w:o:h", longopts, NULL)) != -1) {
		bad_arg = optarg;
		switch (opt) {
		case 'd':
			if (parse_uint(optarg, 255, &o.index))
				goto bad;
			break;
		case OPT_ONLY:
			if (parse_only(optarg, &o.sections))
				goto bad;
			only = true;
			break;
		case 's':
			if (parse_size(optarg, &sz) || sz > LLMDEV_DMA_MAX_LENGTH)
				goto bad;
			ADD(o.sizes, o.nsizes, sz);
			break;
		case 'k':
			if (parse_uint(optarg, BENCH_LIST_MAX, &v) || !v)
				goto bad;
			ADD(o.inflight, o.ninflight, v);
			break;
		case 'r':
			if (parse_uint(optarg, LLMDEV_MAX_RANKS, &v) || v < 2)
				goto bad;
			ADD(o.ranks, o.nranks, v);
			break;
		case 'S':
			if (parse_size(optarg, &sz) || sz % sizeof(float) ||
			    sz > LLMDEV_COLL_MAX_BYTES)
				goto bad;
			ADD(o.ar_sizes, o.nar_sizes, sz);
			break;
		case 't':
			errno = 0;
			o.secs = strtod(optarg, &end);
			if (errno || *end || !(o.secs >= 0 && o.secs <= 3600))
				goto bad;
			break;
		case 'n':
			errno = 0;
			o.min_samples = strtoul(optarg, &end, 10);
			o.max_samples = o.min_samples > 1000 ? o.min_samples : 1000;
			if (*end == ',')
				o.max_samples = strtoul(end + 1, &end, 10);
			if (errno || *end || !o.min_samples || o.max_samples < o.min_samples ||
			    o.max_samples > 1000000)
				goto bad;
			break;
		case 'w':
			if (parse_uint(optarg, 1000, &o.warmup))
				goto bad;
			break;
		case OPT_LINK:
		case OPT_LINK_MODEL:
			if (parse_uint(optarg, 100000, &v))
				goto bad;
			*(opt == OPT_LINK ? &o.link_gbps : &o.link_gbps_model) = v;
			break;
		case OPT_RUN:
			o.run_name = optarg;
			break;
		case OPT_LOAD:
			o.load_file = optarg;
			break;
		case OPT_LOAD_VERIFY:
			o.load_verify = true;
			break;
		case OPT_LOAD_BETWEEN:
			o.load_between = optarg;
			break;
		case OPT_LOAD_ROUNDS:
			if (parse_uint(optarg, BENCH_LOAD_ROUNDS_MAX, &o.load_rounds) ||
			    !o.load_rounds)
				goto bad;
			break;
		case 'o':
			o.json_path = optarg;
			break;
		case OPT_SMOKE:
			o.smoke = true;
			break;
		case OPT_INJECT:
			for (i = 1; i < sizeof(inject_names) / sizeof(inject_names[0]) &&
			     strcmp(optarg, inject_names[i]); i++)
				;
			if (i == sizeof(inject_names) / sizeof(inject_names[0]))
				goto bad;
			o.inject = i;
			break;
		case 'h':
			usage(stdout);
			return BENCH_OK;
		default:
			usage(stderr);
			return BENCH_USAGE;
		}
	}
	bad_arg = NULL;
	if (optind < argc) {
		if (!o.load_file) {
			fprintf(stderr, "llmdev-bench: a command (%s) needs --load FILE\n",
				argv[optind]);
			return BENCH_USAGE;
		}
		o.load_cmd = argv + optind;
	} else if (o.load_file) {
		fprintf(stderr, "llmdev-bench: --load needs the command to time after --\n");
		return BENCH_USAGE;
	}
	if (o.load_between && !o.load_file) {
		fprintf(stderr, "llmdev-bench: --load-between needs --load FILE -- COMMAND\n");
		return BENCH_USAGE;
	}
	if (o.load_rounds && !o.load_between) {
		fprintf(stderr, "llmdev-bench: --load-rounds needs --load-between\n");
		return BENCH_USAGE;
	}
	if (o.load_between && !o.load_rounds)
		o.load_rounds = 3;
	if (!o.load_between)
		o.load_rounds = 1;
	if (!only)
		o.sections = SEC_CLOCK | SEC_NULL | SEC_CEILING | SEC_DMA | SEC_ALLREDUCE |
			     (o.load_file ? SEC_LOAD : 0);
	if ((o.sections & SEC_LOAD) && !o.load_file) {
		fprintf(stderr, "llmdev-bench: the load section needs --load FILE -- COMMAND\n");
		return BENCH_USAGE;
	}
	if (o.smoke) {
		/* small, and odd sizes: the tails of the pattern, unaligned offsets */
		static const uint64_t sizes[] = { 4096, 4099, 65536 };
		static const uint64_t ar_sizes[] = { 4096, 65536 + 4 };

		if (!o.nsizes)
			for (i = 0; i < 3; i++)
				o.sizes[o.nsizes++] = sizes[i];
		if (!o.nar_sizes)
			for (i = 0; i < 2; i++)
				o.ar_sizes[o.nar_sizes++] = ar_sizes[i];
		o.secs = 0;
		o.min_samples = 3;
		o.max_samples = 3;
		o.warmup = 1;
	}
	if (!o.nsizes) {
		static const uint64_t sizes[] = { 4096, 65536, 1 << 20, 64 << 20 };

		for (i = 0; i < 4; i++)
			o.sizes[o.nsizes++] = sizes[i];
	}
	if (!o.ninflight) {
		o.inflight[o.ninflight++] = 1;
		o.inflight[o.ninflight++] = 4;
	}
	if (!o.nranks) {
		o.ranks[o.nranks++] = 2;
		o.ranks[o.nranks++] = 4;
	}
	if (!o.nar_sizes) {
		o.ar_sizes[o.nar_sizes++] = 1 << 20;
		o.ar_sizes[o.nar_sizes++] = 64 << 20;
	}

	/* rates and ratios are written with 4 significant digits (jset_num) */
	b.root = json_object_new_object();
	b.dma = json_object_new_array();
	b.allreduce = json_object_new_array();
	jset_str(b.root, "schema", BENCH_SCHEMA);
	uname(&u);
	add_conditions(&b, &u, cs, sizeof(cs));
	add_options(&b);
	jset_str(b.root, "run", o.run_name);
	jset(b.root, "dma", b.dma);
	jset(b.root, "allreduce", b.allreduce);

	bench_say("llmdev-bench: kernel %s (%s), clocksource %s, %s; run '%s'%s\n",
		  u.release, getenv("KERNEL") ? getenv("KERNEL") : "?",
		  b.clocksource ? b.clocksource : "?",
		  o.link_gbps < 0 ? "link pacing not recorded" :
		  o.link_gbps ? "links paced" : "links unpaced", o.run_name,
		  o.inject ? " (--inject: this run must fail)" : "");
	secs = json_object_new_object();
	jset(b.root, "section_seconds", secs);
	for (i = 0; i < NSECTIONS && !status; i++) {
		double t0 = now_s();

		if (!(o.sections & sections[i].bit))
			continue;
		status = sections[i].fn(&b);
		jset_num(secs, sections[i].name, now_s() - t0);
	}

	if (b.failures || b.errors)
		status = BENCH_FAIL;
	jset_str(b.root, "status", status ? "failed" : "ok");
	jset_u64(b.root, "verification_failures", b.failures);
	jset_u64(b.root, "errors", b.errors);
	if (write_json(&b))
		status = BENCH_FAIL;
	json_object_put(b.root);
	if (status)
		fprintf(stderr, "llmdev-bench: FAILED (%u verification failure%s, %u other error%s)\n",
			b.failures, b.failures == 1 ? "" : "s", b.errors, b.errors == 1 ? "" : "s");
	return status;

bad:
	if (bad_arg)
		fprintf(stderr, "llmdev-bench: bad argument '%s'\n", bad_arg);
	else
		fprintf(stderr, "llmdev-bench: too many values for an option (at most %u)\n",
			BENCH_LIST_MAX);
	return BENCH_USAGE;
}
