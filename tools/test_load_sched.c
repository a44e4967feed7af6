// SPDX-License-Identifier: GPL-2.0
/*
 * Host tests of the loader's schedule (tools/load-sched.c), on the
 * kernel's kselftest harness.
 *
 * Every schedule is checked by running it on a simulated file and cards
 * (check()): the reads must be aligned, no longer than a staging buffer,
 * in ascending order and disjoint (each byte of the file read at most
 * once); each transfer must lie in what its read returns; a card's
 * transfers of a read must be adjacent (one batch). Then each loaded
 * card's region is filled from the reads through the transfers and the
 * zero padding, every byte of it exactly once, and compared with the
 * region the plan describes (its pieces' source ranges, zeros between
 * them). Plans come from the shard planner on models gguf_llama_write()
 * writes (realistic layouts, unaligned offsets and sizes), and from hand
 * for the corner cases (a range read by several cards, or twice by one;
 * gaps worth skipping; ranges across many reads).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include "gguf.h"
#include "gguf-write.h"
#include "load-sched.h"
#include "shard.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char errbuf[512];

/* the simulated file: byte x of it */
static uint8_t file_byte(const uint8_t *file, uint64_t x)
{
	if (file)
		return file[x];
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	return (uint8_t)(x ^ (x >> 32)) | 1;	/* never 0: padding shows */
}

/*
 * Run schedule @s of plan @p (cards in @load) on the file @file of @size
 * bytes (NULL: file_byte() up to @size) with reads of @align and @chunk.
 */
static void check(struct __test_metadata *_metadata, const struct shard_plan *p,
		  const bool *load, const struct load_sched *s, const uint8_t *file,
		  uint64_t size, uint64_t align, uint64_t chunk, uint64_t zero_len)
{
	uint64_t bytes = 0, read_bytes = 0, prev_end = 0;
	size_t i, k, n_ops = 0;
	uint8_t **img = calloc(p->n_cards, sizeof(*img));
	uint8_t **cover = calloc(p->n_cards, sizeof(*cover));

	ASSERT_NE(NULL, img);
	ASSERT_NE(NULL, cover);
	for (i = 0; i < p->n_cards; i++) {
		img[i] = malloc(p->cards[i].bytes + 1);
		cover[i] = calloc(p->cards[i].bytes + 1, 1);
		ASSERT_NE(NULL, img[i]);
		ASSERT_NE(NULL, cover[i]);
		memset(img[i], 0xa5, p->cards[i].bytes + 1);
		if (load[i])
			bytes += p->cards[i].data_bytes;
	}
	/* the reads */
	for (k = 0; k < s->n_chunks; k++) {
		const struct sched_chunk *c = &s->chunks[k];
		uint32_t last_card = 0;
		uint64_t last_off = 0;

		ASSERT_EQ(0, c->off % align) TH_LOG("read %zu at %llu", k, (unsigned long long)c->off);
		ASSERT_EQ(0, c->len % align);
		ASSERT_LT(0, c->len);
		ASSERT_GE(chunk, c->len);
		ASSERT_TRUE(k == 0 || c->off >= prev_end) TH_LOG("read %zu overlaps the one before", k);
		ASSERT_GE(c->len, c->need);
		ASSERT_LT(0, c->n_ops) TH_LOG("read %zu serves nothing", k);
		ASSERT_GE(size, c->off + c->need) TH_LOG("read %zu needs more than the file", k);
		ASSERT_EQ(n_ops, c->first);
		prev_end = c->off + c->len;
		read_bytes += c->len;
		for (i = c->first; i < c->first + c->n_ops; i++) {
			const struct sched_op *o = &s->ops[i];
			uint32_t card = o->card;

			ASSERT_LT(card, p->n_cards);
			ASSERT_TRUE(load[card]);
			ASSERT_LT(0, o->len);
			ASSERT_GE(c->need, o->buf_off + o->len);
			ASSERT_GE(p->cards[card].bytes, o->dst + o->len);
			/* a card's transfers of a read are adjacent, in buffer order */
			if (i > c->first) {
				ASSERT_LE(last_card, card);
				if (last_card == card)
					ASSERT_LE(last_off, o->buf_off);
			}
			last_card = card;
			last_off = o->buf_off;
			for (uint64_t b = 0; b < o->len; b++) {
				img[card][o->dst + b] = file_byte(file, c->off + o->buf_off + b);
				cover[card][o->dst + b]++;
			}
		}
		n_ops += c->n_ops;
	}
	ASSERT_EQ(n_ops, s->n_ops);
	ASSERT_EQ(bytes, s->bytes);
	ASSERT_EQ(read_bytes, s->read_bytes);
	/* the padding */
	for (i = 0; i < s->n_pad; i++) {
		const struct sched_op *o = &s->pad[i];

		ASSERT_LT(o->card, p->n_cards);
		ASSERT_TRUE(load[o->card]);
		ASSERT_LT(0, o->len);
		ASSERT_GE(zero_len, o->len);
		ASSERT_EQ(0, o->buf_off);
		ASSERT_TRUE(i == 0 || s->pad[i - 1].card <= o->card);
		ASSERT_GE(p->cards[o->card].bytes, o->dst + o->len);
		for (uint64_t b = 0; b < o->len; b++) {
			img[o->card][o->dst + b] = 0;
			cover[o->card][o->dst + b]++;
		}
	}
	/* each region: every byte once, and what the plan puts there */
	for (i = 0; i < p->n_cards; i++) {
		const struct shard_card *c = &p->cards[i];
		uint8_t *want = calloc(c->bytes + 1, 1);
		uint64_t b, covered = 0;

		ASSERT_NE(NULL, want);
		for (k = 0; k < c->n_pieces; k++) {
			const struct shard_piece *pc = &c->pieces[k];

			for (uint64_t j = 0; j < pc->src_count; j++)
				for (b = 0; b < pc->src_len; b++)
					want[pc->dst_offset + j * pc->src_len + b] =
						file_byte(file, pc->src_offset + j * pc->src_stride + b);
		}
		for (b = 0; b < c->bytes; b++) {
			if (!load[i]) {
				ASSERT_EQ(0, cover[i][b]) TH_LOG("card %zu is not loaded", i);
				continue;
			}
			ASSERT_EQ(1, cover[i][b])
				TH_LOG("card %zu, region offset %llu written %u times", i,
				       (unsigned long long)b, cover[i][b]);
			ASSERT_EQ(want[b], img[i][b])
				TH_LOG("card %zu, region offset %llu", i, (unsigned long long)b);
			covered++;
		}
		ASSERT_EQ(0, cover[i][c->bytes]);
		/* the ranges --verify uses: the card's, in region order */
		ASSERT_LE(s->card_range[i], s->card_range[i + 1]);
		for (k = s->card_range[i]; k < s->card_range[i + 1]; k++) {
			const struct sched_range *r = &s->ranges[k];

			ASSERT_EQ(i, r->card);
			ASSERT_TRUE(k == s->card_range[i] ||
				    r->dst >= s->ranges[k - 1].dst + s->ranges[k - 1].len);
			for (b = 0; b < r->len; b++)
				ASSERT_EQ(want[r->dst + b], file_byte(file, r->src + b));
		}
		if (!load[i])
			ASSERT_EQ(s->card_range[i], s->card_range[i + 1]);
		free(want);
	}
	ASSERT_EQ(s->n_ranges, s->card_range[p->n_cards]);
	for (i = 0; i < p->n_cards; i++) {
		free(img[i]);
		free(cover[i]);
	}
	free(img);
	free(cover);
}

static void run(struct __test_metadata *_metadata, const struct shard_plan *p,
		const bool *load, const uint8_t *file, uint64_t size, uint64_t align,
		uint64_t chunk, uint64_t zero_len, struct load_sched **out)
{
	struct load_sched *s;

	ASSERT_EQ(0, load_sched_build(p, load, align, chunk, zero_len, &s));
	check(_metadata, p, load, s, file, size, align, chunk, zero_len);
	if (out)
		*out = s;
	else
		load_sched_free(s);
}

/* ---- plans of generated models ------------------------------------------- */

static uint8_t *read_all(const char *path, size_t *n)
{
	struct stat st;
	uint8_t *p = NULL;
	FILE *f = fopen(path, "rb");

	if (f && !fstat(fileno(f), &st)) {
		p = malloc(st.st_size ? st.st_size : 1);
		if (p && fread(p, 1, st.st_size, f) != (size_t)st.st_size) {
			free(p);
			p = NULL;
		}
		*n = st.st_size;
	}
	if (f)
		fclose(f);
	return p;
}

FIXTURE(model) {
	char path[64];
	struct gguf_file *g;
	uint8_t *file;
	size_t size;
};

FIXTURE_VARIANT(model) {
	uint32_t type, tp, pp;
};

FIXTURE_VARIANT_ADD(model, f32_tp1_pp1) { .type = GGUF_TENSOR_F32, .tp = 1, .pp = 1 };
FIXTURE_VARIANT_ADD(model, q8_0_tp2_pp2) { .type = GGUF_TENSOR_Q8_0, .tp = 2, .pp = 2 };
FIXTURE_VARIANT_ADD(model, q4_0_tp4_pp1) { .type = GGUF_TENSOR_Q4_0, .tp = 4, .pp = 1 };
FIXTURE_VARIANT_ADD(model, f16_tp2_pp1) { .type = GGUF_TENSOR_F16, .tp = 2, .pp = 1 };
FIXTURE_VARIANT_ADD(model, f16_tp1_pp3) { .type = GGUF_TENSOR_F16, .tp = 1, .pp = 3 };

FIXTURE_SETUP(model)
{
	struct gguf_llama_params lp = GGUF_LLAMA_DEFAULTS;
	int fd;

	snprintf(self->path, sizeof(self->path), "/tmp/load-sched-test.XXXXXX");
	fd = mkstemp(self->path);
	ASSERT_LE(0, fd);
	close(fd);
	lp.layers = 3;
	lp.embd = 128;
	lp.heads = 4;
	lp.heads_kv = 4;
	lp.ff = 256;
	lp.vocab = 301;		/* odd: nothing lands on a round offset */
	lp.type = variant->type;
	lp.seed = 3;
	ASSERT_EQ(0, gguf_llama_write(self->path, &lp, errbuf, sizeof(errbuf)))
		TH_LOG("%s", errbuf);
	ASSERT_EQ(0, gguf_open(self->path, &self->g, errbuf, sizeof(errbuf)))
		TH_LOG("%s", errbuf);
	self->file = read_all(self->path, &self->size);
	ASSERT_NE(NULL, self->file);
	/* what O_DIRECT makes hard: an unaligned size and unaligned tensors */
	ASSERT_NE(0, self->size % 4096);
}

FIXTURE_TEARDOWN(model)
{
	free(self->file);
	gguf_close(self->g);
	unlink(self->path);
}

/* every card, each card alone, every other card; several read geometries */
TEST_F(model, schedules)
{
	static const struct { uint64_t align, chunk, zero; } geo[] = {
		{ 4096, 8 << 20, 4096 },	/* llmctl's */
		{ 4096, 64 << 10, 4096 },	/* a small RLIMIT_MEMLOCK */
		{ 4096, 4096, 64 },		/* every range split */
		{ 512, 1536, 16 },
		{ 65536, 65536, 1 },
	};
	struct shard_opts o = { .tp = variant->tp, .pp = variant->pp };
	struct shard_plan *p;
	bool load[16];
	size_t i, j, g;

	ASSERT_EQ(0, shard_plan_build(self->g, &o, &p, errbuf, sizeof(errbuf)))
		TH_LOG("%s", errbuf);
	ASSERT_GE(N(load), p->n_cards);
	/* the first tensor is not on a 4 KiB boundary */
	ASSERT_NE(0, p->cards[0].pieces[0].src_offset % 4096);
	for (g = 0; g < N(geo); g++) {
		for (i = 0; i < p->n_cards; i++)
			load[i] = true;
		run(_metadata, p, load, self->file, self->size, geo[g].align, geo[g].chunk,
		    geo[g].zero, NULL);
		for (j = 0; j < p->n_cards && p->n_cards > 1; j++) {
			for (i = 0; i < p->n_cards; i++)
				load[i] = i == j;
			run(_metadata, p, load, self->file, self->size, geo[g].align,
			    geo[g].chunk, geo[g].zero, NULL);
			for (i = 0; i < p->n_cards; i++)
				load[i] = (i + j) % 2;
			run(_metadata, p, load, self->file, self->size, geo[g].align,
			    geo[g].chunk, geo[g].zero, NULL);
		}
	}
	shard_plan_free(p);
}

/* the bytes several cards need are read once: the reads cover the file once */
TEST_F(model, read_once)
{
	struct shard_opts o = { .tp = variant->tp, .pp = variant->pp };
	struct shard_plan *p;
	struct load_sched *s;
	bool load[16];
	uint64_t data = 0;
	size_t i;

	ASSERT_EQ(0, shard_plan_build(self->g, &o, &p, errbuf, sizeof(errbuf)));
	for (i = 0; i < p->n_cards; i++) {
		load[i] = true;
		data += p->cards[i].data_bytes;
	}
	run(_metadata, p, load, self->file, self->size, 4096, 8 << 20, 4096, &s);
	/* the model fits in one staging buffer: one read of the tensor data */
	ASSERT_EQ(1, s->n_chunks);
	ASSERT_GE(self->size + 4095, s->chunks[0].off + s->chunks[0].len);
	ASSERT_LE(self->size - s->chunks[0].off, s->chunks[0].len);
	ASSERT_EQ(data, s->bytes);
	/* replicated tensors (the norms, token_embd) are sent more than read */
	if (p->tp > 1)
		ASSERT_LT(s->read_bytes, s->bytes);
	load_sched_free(s);
	shard_plan_free(p);
}

/* ---- plans made by hand ------------------------------------------------------ */

#define MAX_PIECES 8

struct hand {
	struct shard_plan p;
	struct shard_card cards[4];
	struct shard_piece pieces[4][MAX_PIECES];
};

/* piece @k of card @c: @count ranges of @len bytes @stride apart from @src to @dst */
static void piece(struct hand *h, size_t c, uint64_t src, uint64_t len, uint64_t stride,
		  uint64_t count, uint64_t dst)
{
	struct shard_card *card = &h->cards[c];
	struct shard_piece *pc = &h->pieces[c][card->n_pieces++];

	memset(pc, 0, sizeof(*pc));
	snprintf(pc->name, sizeof(pc->name), "t%zu.%zu", c, card->n_pieces);
	pc->kind = count > 1 ? SHARD_COLS : SHARD_WHOLE;
	pc->src_offset = src;
	pc->src_len = len;
	pc->src_stride = stride;
	pc->src_count = count;
	pc->dst_offset = dst;
	pc->bytes = len * count;
	card->data_bytes += pc->bytes;
	if (dst + pc->bytes > card->bytes)
		card->bytes = dst + pc->bytes;
}

static void hand_init(struct hand *h, size_t n_cards)
{
	memset(h, 0, sizeof(*h));
	h->p.cards = h->cards;
	h->p.n_cards = n_cards;
	h->p.tp = n_cards;
	h->p.pp = 1;
	for (size_t i = 0; i < n_cards; i++) {
		h->cards[i].card = i;
		h->cards[i].pieces = h->pieces[i];
	}
}

/* one range for two cards, and twice for one card (tied embeddings, pp 1) */
TEST(shared_ranges)
{
	static const bool all[4] = { true, true, true, true };
	struct load_sched *s;
	struct hand h;

	hand_init(&h, 3);
	piece(&h, 0, 1000, 50000, 50000, 1, 0);
	piece(&h, 0, 1000, 50000, 50000, 1, 50176);	/* the same bytes again */
	piece(&h, 1, 1000, 50000, 50000, 1, 256);
	piece(&h, 2, 30000, 100, 300, 70, 0);		/* inside the others */
	run(_metadata, &h.p, all, NULL, 1 << 20, 4096, 16384, 4096, &s);
	/* each byte read once: [1000, 51000) in 4 KiB blocks */
	ASSERT_EQ(53248, s->read_bytes);
	ASSERT_EQ(4, s->n_chunks);
	load_sched_free(s);
}

/* a gap of LOAD_SCHED_SKIP or more that no card needs is not read */
TEST(gaps)
{
	static const bool all[4] = { true, true, true, true };
	uint64_t far = 3 * (uint64_t)LOAD_SCHED_SKIP;
	struct load_sched *s;
	struct hand h;

	hand_init(&h, 2);
	piece(&h, 0, 100, 5000, 5000, 1, 0);
	piece(&h, 0, 100 + far, 5000, 5000, 1, 8192);
	piece(&h, 1, 5000 + LOAD_SCHED_SKIP / 2, 100, 100, 1, 0);	/* read through */
	run(_metadata, &h.p, all, NULL, 8 << 20, 4096, 1 << 20, 4096, &s);
	ASSERT_EQ(2, s->n_chunks);
	ASSERT_EQ(0, s->chunks[0].off);
	ASSERT_EQ(532480, s->chunks[0].len);
	ASSERT_EQ(far, s->chunks[1].off);
	ASSERT_GT(2 * (uint64_t)LOAD_SCHED_SKIP, s->read_bytes);
	/* the padding of card 0: [5000, 8192) */
	ASSERT_EQ(1, s->n_pad);
	ASSERT_EQ(5000, s->pad[0].dst);
	ASSERT_EQ(3192, s->pad[0].len);
	load_sched_free(s);
}

/* a column slice: a transfer per row, gathered per read */
TEST(columns)
{
	static const bool all[4] = { true, true, true, true };
	struct load_sched *s;
	struct hand h;

	hand_init(&h, 2);
	/* 1000 rows of 3000 bytes, split in two columns of 1500 */
	piece(&h, 0, 777, 1500, 3000, 1000, 0);
	piece(&h, 1, 777 + 1500, 1500, 3000, 1000, 0);
	run(_metadata, &h.p, all, NULL, 4 << 20, 4096, 256 << 10, 4096, &s);
	/* a row's halves are adjacent in the file but not on a card: no merging */
	ASSERT_LE(2000, s->n_ops);
	ASSERT_EQ(0, s->n_pad);
	load_sched_free(s);

	/* a whole tensor in rows of a piece each: merged into one range */
	hand_init(&h, 1);
	piece(&h, 0, 5, 100, 100, 300, 0);
	run(_metadata, &h.p, all, NULL, 1 << 20, 4096, 1 << 20, 4096, &s);
	ASSERT_EQ(1, s->n_ranges);
	ASSERT_EQ(1, s->n_ops);
	load_sched_free(s);
}

TEST(bad)
{
	static const bool all[4] = { true, true, true, true };
	struct load_sched *s = (void *)1;
	struct hand h;

	hand_init(&h, 1);
	piece(&h, 0, 0, 100, 100, 1, 0);
	EXPECT_EQ(-EINVAL, load_sched_build(&h.p, all, 3, 4096, 4096, &s));
	EXPECT_EQ(NULL, s);
	EXPECT_EQ(-EINVAL, load_sched_build(&h.p, all, 0, 4096, 4096, &s));
	EXPECT_EQ(-EINVAL, load_sched_build(&h.p, all, 4096, 6000, 4096, &s));
	EXPECT_EQ(-EINVAL, load_sched_build(&h.p, all, 4096, 0, 4096, &s));
	EXPECT_EQ(-EINVAL, load_sched_build(&h.p, all, 4096, 4096, 0, &s));
	EXPECT_EQ(-EINVAL, load_sched_build(NULL, all, 4096, 4096, 4096, &s));
	/* two ranges of a card that overlap on the card */
	piece(&h, 0, 500, 100, 100, 1, 50);
	EXPECT_EQ(-EINVAL, load_sched_build(&h.p, all, 4096, 4096, 4096, &s));
	/* a range beyond the card's bytes */
	hand_init(&h, 1);
	piece(&h, 0, 0, 100, 100, 1, 0);
	h.cards[0].bytes = 99;
	EXPECT_EQ(-EINVAL, load_sched_build(&h.p, all, 4096, 4096, 4096, &s));
	/* beyond 2^64 */
	hand_init(&h, 1);
	piece(&h, 0, UINT64_MAX - 10, 100, 100, 1, 0);
	EXPECT_EQ(-EOVERFLOW, load_sched_build(&h.p, all, 4096, 4096, 4096, &s));
	hand_init(&h, 1);
	piece(&h, 0, UINT64_MAX - 200, 100, 100, 1, 0);
	EXPECT_EQ(-EOVERFLOW, load_sched_build(&h.p, all, 4096, 4096, 4096, &s));
}

/* nothing to load: an empty schedule */
TEST(nothing)
{
	static const bool none[4];
	struct load_sched *s;
	struct hand h;

	hand_init(&h, 2);
	piece(&h, 0, 0, 100, 100, 1, 0);
	piece(&h, 1, 0, 100, 100, 1, 0);
	ASSERT_EQ(0, load_sched_build(&h.p, none, 4096, 4096, 4096, &s));
	EXPECT_EQ(0, s->n_chunks);
	EXPECT_EQ(0, s->n_ops);
	EXPECT_EQ(0, s->n_pad);
	EXPECT_EQ(0, s->n_ranges);
	EXPECT_EQ(0, s->bytes);
	load_sched_free(s);
}

TEST_HARNESS_MAIN
