// SPDX-License-Identifier: GPL-2.0
/*
 * gguf-gen: write a llama-shaped GGUF v3 model with random weights, for
 * tests of model loading and sharding without a real model.
 *
 *   gguf-gen -o FILE [--layers N] [--embd N] [--heads N] [--heads-kv N]
 *            [--ff N] [--vocab N] [--ctx N] [--type f32|f16|q8_0|q4_0]
 *            [--seed N] [--name S]
 *
 * The data is streamed: a model of several GiB takes as long as the disk
 * needs to take it. Exit: 0 ok, 1 usage, 2 failure.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf-write.h"

static void usage(FILE *f)
{
	const struct gguf_llama_params d = GGUF_LLAMA_DEFAULTS;

	fprintf(f,
		"Usage: gguf-gen -o FILE [OPTIONS]\n"
		"Write a llama-architecture GGUF v3 model with random weights.\n\n"
		"  -o, --output FILE   the model file to write (replaced)\n"
		"      --layers N      transformer blocks (default %" PRIu32 ")\n"
		"      --embd N        embedding length (default %" PRIu32 ")\n"
		"      --heads N       attention heads (default %" PRIu32 ")\n"
		"      --heads-kv N    key/value heads (default: --heads)\n"
		"      --ff N          feed-forward length (default %" PRIu32 ")\n"
		"      --vocab N       vocabulary size (default %" PRIu32 ")\n"
		"      --ctx N         context length (default %" PRIu32 ")\n"
		"      --type T        f32, f16, q8_0 or q4_0 (default f16); norms are f32\n"
		"      --seed N        random seed (default %" PRIu64 "); same seed, same file\n"
		"      --name S        general.name (default %s)\n"
		"  -h, --help          this help\n\n"
		"embd must be a multiple of heads, heads of heads-kv, and embd and ff of\n"
		"the type's block size (32 for q8_0 and q4_0).\n"
		"Exit status: 0 ok, 1 usage error, 2 failure.\n",
		d.layers, d.embd, d.heads, d.ff, d.vocab, d.ctx, d.seed, d.name);
}

static int parse_u32(const char *opt, const char *s, uint32_t *v)
{
	unsigned long long n;
	char *end;

	errno = 0;
	n = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-' || n > UINT32_MAX) {
		fprintf(stderr, "gguf-gen: --%s: '%s' is not a number 0..%u\n",
			opt, s, UINT32_MAX);
		return -1;
	}
	*v = n;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output",	required_argument, NULL, 'o' },
		{ "layers",	required_argument, NULL, 'l' },
		{ "embd",	required_argument, NULL, 'e' },
		{ "heads",	required_argument, NULL, 'H' },
		{ "heads-kv",	required_argument, NULL, 'k' },
		{ "ff",		required_argument, NULL, 'f' },
		{ "vocab",	required_argument, NULL, 'v' },
		{ "ctx",	required_argument, NULL, 'c' },
		{ "type",	required_argument, NULL, 't' },
		{ "seed",	required_argument, NULL, 's' },
		{ "name",	required_argument, NULL, 'n' },
		{ "help",	no_argument,	   NULL, 'h' },
		{ 0 }
	};
	struct gguf_llama_params p = GGUF_LLAMA_DEFAULTS;
	const char *out = NULL;
	uint32_t heads_kv = 0, seed;
	char err[256];
	int c, t;

	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		const char *name = c == 'o' || c == 'h' || c == '?' ? NULL :
				   opts[strchr("oleHkfvctsn", c) - "oleHkfvctsn"].name;
		int bad = 0;

		switch (c) {
		case 'o': out = optarg; break;
		case 'l': bad = parse_u32(name, optarg, &p.layers); break;
		case 'e': bad = parse_u32(name, optarg, &p.embd); break;
		case 'H': bad = parse_u32(name, optarg, &p.heads); break;
		case 'k': bad = parse_u32(name, optarg, &heads_kv); break;
		case 'f': bad = parse_u32(name, optarg, &p.ff); break;
		case 'v': bad = parse_u32(name, optarg, &p.vocab); break;
		case 'c': bad = parse_u32(name, optarg, &p.ctx); break;
		case 's':
			bad = parse_u32(name, optarg, &seed);
			p.seed = seed;
			break;
		case 'n': p.name = optarg; break;
		case 't':
			t = gguf_type_by_name(optarg);
			if (t < 0) {
				fprintf(stderr, "gguf-gen: --type: unknown type '%s'\n", optarg);
				return 1;
			}
			p.type = t;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
		if (bad)
			return 1;
	}
	if (optind < argc) {
		fprintf(stderr, "gguf-gen: unexpected argument '%s'\n", argv[optind]);
		return 1;
	}
	if (!out) {
		fprintf(stderr, "gguf-gen: no output file (-o FILE)\n");
		usage(stderr);
		return 1;
	}
	p.heads_kv = heads_kv ? heads_kv : p.heads;
	if (gguf_llama_check(&p, err, sizeof(err))) {
		fprintf(stderr, "gguf-gen: %s\n", err);
		return 1;
	}
	if (gguf_llama_write(out, &p, err, sizeof(err))) {
		fprintf(stderr, "gguf-gen: %s: %s\n", out, err);
		unlink(out);
		return 2;
	}
	return 0;
}
