// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev-bench: DMA throughput of a card beside memcpy of the same sizes,
 * and AllReduce across cards.
 *
 *   llmdev-bench [dma] [-d N] [-s SIZE]... [-t SECONDS] [-h]
 *   llmdev-bench allreduce [-d N] [-r RANKS] [-s SIZE]... [-t SECONDS] [-h]
 *
 * dma (the default): for every size, host-to-card and card-to-host
 * throughput through libllmdev's synchronous copies (submit + wait, one
 * transfer at a time), and a memcpy of the same size in this process,
 * each for about -t seconds.
 *
 * allreduce: f32 sum over cards N .. N+RANKS-1 (their links must form a
 * ring), out of place, one collective at a time (submit + wait) for about
 * -t seconds per size; SIZE is the bytes per rank. Prints the time per
 * AllReduce, algbw = SIZE / time and busbw = algbw * 2(RANKS-1)/RANKS,
 * the bandwidth each link needs (the definitions of nccl-tests), and
 * checks the result once.
 *
 * Sizes take K, M and G suffixes. Exit: 0 ok, 1 usage, 2 failure.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llmdev.h"

#define MAX_SIZES 16

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10; end++; break;
	case '\0': break;
	default: return -1;
	}
	if (*end || !v)
		return -1;
	*out = v;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: llmdev-bench [dma] [-d N] [-s SIZE]... [-t SECONDS]\n"
		"       llmdev-bench allreduce [-d N] [-r RANKS] [-s SIZE]... [-t SECONDS]\n"
		"dma: measure DMA throughput to and from card N's HBM beside memcpy.\n"
		"allreduce: measure f32 sum AllReduce over cards N .. N+RANKS-1\n"
		"(a ring of peer links); prints algbw and busbw = algbw * 2(RANKS-1)/RANKS.\n\n"
		"  -d, --device N    (first) card index, /dev/llmdevN (default 0)\n"
		"  -r, --ranks RANKS allreduce: number of cards (default 2)\n"
		"  -s, --size SIZE   transfer size (allreduce: bytes per rank), with\n"
		"                    K/M/G suffix; repeatable (default: dma 4K 1M 64M,\n"
		"                    allreduce 1M 64M)\n"
		"  -t, --time SECONDS  time per measurement (default 2)\n"
		"  -h, --help        this help\n");
}

static const char *human(double bytes_per_s, char *buf, size_t len)
{
	if (bytes_per_s >= 1e9)
		snprintf(buf, len, "%.2f GB/s", bytes_per_s / 1e9);
	else
		snprintf(buf, len, "%.1f MB/s", bytes_per_s / 1e6);
	return buf;
}

struct opts {
	unsigned int index;		/* -d */
	unsigned int ranks;		/* -r */
	uint64_t sizes[MAX_SIZES];	/* -s */
	unsigned int nsizes;
	double secs;			/* -t */
};

static int bench_dma(const struct opts *o)
{
	unsigned int nsizes = o->nsizes, index = o->index, i;
	const uint64_t *sizes = o->sizes;
	double secs = o->secs;
	struct llmdev *dev;
	int ret;

	ret = llmdev_open(index, &dev);
	if (ret) {
		fprintf(stderr, "llmdev-bench: llmdev%u: %s\n", index, llmdev_strerror(ret));
		return 2;
	}
	printf("%-10s %14s %14s %14s\n", "size", "host->card", "card->host", "memcpy");
	for (i = 0; i < nsizes; i++) {
		uint64_t n = sizes[i];
		struct llmdev_hbm_alloc a;
		double t0, dt[3];
		uint64_t iters[3] = { 0, 0, 0 };
		char *src = malloc(n), *dst = malloc(n);
		char b[3][32];
		int k;

		if (!src || !dst) {
			fprintf(stderr, "llmdev-bench: out of memory for %llu bytes\n",
				(unsigned long long)n);
			return 2;
		}
		memset(src, 0x5a, n);
		memset(dst, 0, n);
		ret = llmdev_hbm_alloc(dev, n, 0, 0, NULL, &a);
		if (ret) {
			fprintf(stderr, "llmdev-bench: llmdev%u: allocating %llu bytes of HBM: %s\n",
				index, (unsigned long long)n, llmdev_strerror(ret));
			return 2;
		}
		for (k = 0; k < 3; k++) {
			t0 = now();
			do {
				if (k == 0)
					ret = llmdev_copy_to_hbm(dev, a.handle, 0, src, n,
								 10000000000ull);
				else if (k == 1)
					ret = llmdev_copy_from_hbm(dev, a.handle, 0, dst, n,
								   10000000000ull);
				else
					memcpy(dst, src, n);
				if (ret) {
					fprintf(stderr, "llmdev-bench: llmdev%u: transfer of %llu bytes: %s\n",
						index, (unsigned long long)n,
						llmdev_strerror(ret));
					return 2;
				}
				iters[k]++;
				dt[k] = now() - t0;
			} while (dt[k] < secs);
			__asm__ volatile("" : : "r"(dst) : "memory");
		}
		if (memcmp(src, dst, n)) {
			fprintf(stderr, "llmdev-bench: llmdev%u: data read back differs\n", index);
			return 2;
		}
		printf("%-10llu %14s %14s %14s\n", (unsigned long long)n,
		       human(n * iters[0] / dt[0], b[0], sizeof(b[0])),
		       human(n * iters[1] / dt[1], b[1], sizeof(b[1])),
		       human(n * iters[2] / dt[2], b[2], sizeof(b[2])));
		llmdev_hbm_free(dev, a.handle);
		free(src);
		free(dst);
	}
	llmdev_close(dev);
	return 0;
}

#define AR_TIMEOUT_NS	60000000000ull	/* one AllReduce; the driver bounds it too */

/*
 * One size: every rank's region holds the input (rank r: r + 1.0) at 0
 * and receives the sum at @bytes; AllReduce until -t seconds have passed,
 * then check one rank's result: n(n+1)/2 everywhere.
 */
static int bench_allreduce_size(struct llmdev_group *g, struct llmdev **devs,
				 unsigned int n, uint64_t bytes, double secs)
{
	uint64_t count = bytes / sizeof(float), iters = 0, i;
	struct llmdev_coll_buf bufs[LLMDEV_MAX_RANKS];
	float *buf = malloc(bytes), want = n * (n + 1) / 2.0f;
	double t0, dt, algbw, busbw;
	struct llmdev_hbm_alloc a;
	unsigned int r;
	char b[2][32];
	int ret = 0;

	if (!buf) {
		fprintf(stderr, "llmdev-bench: out of memory for %llu bytes\n",
			(unsigned long long)bytes);
		return 2;
	}
	memset(bufs, 0, sizeof(bufs));
	for (r = 0; r < n; r++) {
		ret = llmdev_hbm_alloc(devs[r], 2 * bytes, 0, 0, NULL, &a);
		if (ret) {
			fprintf(stderr, "llmdev-bench: %s: allocating %llu bytes of HBM: %s\n",
				llmdev_name(devs[r]), 2 * (unsigned long long)bytes,
				llmdev_strerror(ret));
			goto out;
		}
		bufs[r].src_handle = bufs[r].dst_handle = a.handle;
		bufs[r].dst_offset = bytes;
		for (i = 0; i < count; i++)
			buf[i] = r + 1.0f;
		ret = llmdev_copy_to_hbm(devs[r], a.handle, 0, buf, bytes,
					 AR_TIMEOUT_NS);
		if (ret) {
			fprintf(stderr, "llmdev-bench: %s: writing the input: %s\n",
				llmdev_name(devs[r]), llmdev_strerror(ret));
			goto out;
		}
	}
	t0 = now();
	do {
		ret = llmdev_allreduce(g, bufs, count, LLMDEV_DTYPE_F32,
				       LLMDEV_REDOP_SUM, AR_TIMEOUT_NS);
		if (ret) {
			fprintf(stderr, "llmdev-bench: %s: AllReduce of %llu bytes: %s\n",
				llmdev_name(devs[0]), (unsigned long long)bytes,
				llmdev_strerror(ret));
			goto out;
		}
		iters++;
		dt = now() - t0;
	} while (dt < secs);

	r = n - 1;
	ret = llmdev_copy_from_hbm(devs[r], bufs[r].dst_handle, bytes, buf, bytes,
				   AR_TIMEOUT_NS);
	if (ret) {
		fprintf(stderr, "llmdev-bench: %s: reading the result: %s\n",
			llmdev_name(devs[r]), llmdev_strerror(ret));
		goto out;
	}
	for (i = 0; i < count && buf[i] == want; i++)
		;
	if (i < count) {
		fprintf(stderr, "llmdev-bench: %s: AllReduce result [%llu] is %g, not %g\n",
			llmdev_name(devs[r]), (unsigned long long)i, buf[i], want);
		ret = -EIO;
		goto out;
	}
	algbw = bytes * iters / dt;
	busbw = algbw * 2 * (n - 1) / n;
	printf("%-10llu %5u %12.1f %14s %14s\n", (unsigned long long)bytes, n,
	       dt / iters * 1e6, human(algbw, b[0], sizeof(b[0])),
	       human(busbw, b[1], sizeof(b[1])));
out:
	for (r = 0; r < n; r++)
		if (bufs[r].src_handle)
			llmdev_hbm_free(devs[r], bufs[r].src_handle);
	free(buf);
	return ret ? 2 : 0;
}

static int bench_allreduce(const struct opts *o)
{
	struct llmdev *devs[LLMDEV_MAX_RANKS] = { NULL };
	unsigned int n = o->ranks, r, i;
	struct llmdev_group *g = NULL;
	int ret, status = 2;

	for (r = 0; r < n; r++) {
		ret = llmdev_open(o->index + r, &devs[r]);
		if (ret) {
			fprintf(stderr, "llmdev-bench: llmdev%u: %s\n", o->index + r,
				llmdev_strerror(ret));
			goto out;
		}
	}
	ret = llmdev_group_create(devs[0], devs, n, &g);
	if (ret) {
		fprintf(stderr, "llmdev-bench: a group of llmdev%u..llmdev%u: %s\n",
			o->index, o->index + n - 1, llmdev_strerror(ret));
		goto out;
	}
	printf("AllReduce f32 sum, llmdev%u..llmdev%u, out of place\n",
	       o->index, o->index + n - 1);
	printf("%-10s %5s %12s %14s %14s\n", "size", "ranks", "time/op us",
	       "algbw", "busbw");
	for (i = 0; i < o->nsizes; i++) {
		if (o->sizes[i] % sizeof(float)) {
			fprintf(stderr, "llmdev-bench: size %llu is not a whole number of f32\n",
				(unsigned long long)o->sizes[i]);
			goto out;
		}
		if (bench_allreduce_size(g, devs, n, o->sizes[i], o->secs))
			goto out;
	}
	status = 0;
out:
	llmdev_group_destroy(g);
	for (r = 0; r < n; r++)
		llmdev_close(devs[r]);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "ranks", required_argument, NULL, 'r' },
		{ "size", required_argument, NULL, 's' },
		{ "time", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .ranks = 2, .secs = 2 };
	bool allreduce = false;
	char *end;
	int opt;

	if (argc > 1 && !strcmp(argv[1], "allreduce")) {
		allreduce = true;
		argv++;
		argc--;
	} else if (argc > 1 && !strcmp(argv[1], "dma")) {
		argv++;
		argc--;
	}
	while ((opt = getopt_long(argc, argv, "d:r:s:t:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			o.index = strtoul(optarg, NULL, 0);
			break;
		case 'r':
			errno = 0;
			o.ranks = strtoul(optarg, &end, 0);
			if (errno || *end || !o.ranks || o.ranks > LLMDEV_MAX_RANKS) {
				fprintf(stderr, "llmdev-bench: bad number of ranks '%s' (1..%u)\n",
					optarg, LLMDEV_MAX_RANKS);
				return 1;
			}
			break;
		case 's':
			if (o.nsizes == MAX_SIZES || parse_size(optarg, &o.sizes[o.nsizes])) {
				fprintf(stderr, "llmdev-bench: bad size '%s'\n", optarg);
				return 1;
			}
			o.nsizes++;
			break;
		case 't':
			o.secs = strtod(optarg, NULL);
			if (o.secs <= 0) {
				fprintf(stderr, "llmdev-bench: bad time '%s'\n", optarg);
				return 1;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}
	if (!o.nsizes && allreduce) {
		o.sizes[o.nsizes++] = 1 << 20;
		o.sizes[o.nsizes++] = 64 << 20;
	} else if (!o.nsizes) {
		o.sizes[o.nsizes++] = 4096;
		o.sizes[o.nsizes++] = 1 << 20;
		o.sizes[o.nsizes++] = 64 << 20;
	}
	return allreduce ? bench_allreduce(&o) : bench_dma(&o);
}
