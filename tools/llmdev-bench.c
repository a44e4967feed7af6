// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev-bench: DMA throughput of a card beside memcpy of the same sizes.
 *
 *   llmdev-bench [-d N] [-s SIZE]... [-t SECONDS] [-h]
 *
 * For every size: host-to-card and card-to-host throughput through
 * libllmdev's synchronous copies (submit + wait, one transfer at a time),
 * and a memcpy of the same size in this process, each for about -t seconds.
 * Sizes take K, M and G suffixes. Exit: 0 ok, 1 usage, 2 failure.
 */
#include <errno.h>
#include <getopt.h>
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
		"Usage: llmdev-bench [-d N] [-s SIZE]... [-t SECONDS]\n"
		"Measure DMA throughput to and from card N's HBM beside memcpy.\n\n"
		"  -d N        card index, /dev/llmdevN (default 0)\n"
		"  -s SIZE     transfer size, with K/M/G suffix; repeatable\n"
		"              (default: 4K 1M 64M)\n"
		"  -t SECONDS  time per measurement (default 2)\n"
		"  -h          this help\n");
}

static const char *human(double bytes_per_s, char *buf, size_t len)
{
	if (bytes_per_s >= 1e9)
		snprintf(buf, len, "%.2f GB/s", bytes_per_s / 1e9);
	else
		snprintf(buf, len, "%.1f MB/s", bytes_per_s / 1e6);
	return buf;
}

int main(int argc, char **argv)
{
	uint64_t sizes[MAX_SIZES] = { 4096, 1 << 20, 64 << 20 };
	unsigned int nsizes = 0, index = 0, i;
	double secs = 2;
	struct llmdev *dev;
	int opt, ret;

	while ((opt = getopt(argc, argv, "d:s:t:h")) != -1) {
		switch (opt) {
		case 'd':
			index = strtoul(optarg, NULL, 0);
			break;
		case 's':
			if (nsizes == MAX_SIZES || parse_size(optarg, &sizes[nsizes])) {
				fprintf(stderr, "llmdev-bench: bad size '%s'\n", optarg);
				return 1;
			}
			nsizes++;
			break;
		case 't':
			secs = strtod(optarg, NULL);
			if (secs <= 0) {
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
	if (!nsizes)
		nsizes = 3;

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
