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
 * them). check_sparse() checks the same by intervals, for regions too
 * large to hold (and every schedule besides): the ranges against the
 * plan's, sorted by qsort() and merged here; each read's transfers in
 * the strict order of card, buffer offset and region offset; and the
 * transfers and the padding tiling each region. Plans come from the shard
 * planner on models gguf_llama_write() writes (realistic layouts,
 * unaligned offsets and sizes), from hand for the corner cases (a range
 * read by several cards, or twice by one; gaps worth skipping; ranges
 * across many reads; offsets and counts for every pass of the radix sort,
 * and beyond what its keys hold), and at random.
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
	uint64_t bytes = 0, read_bytes = 0, prev_end = 0, rows = 0;
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
			ASSERT_LT(0, o->rows);
			if (o->rows == 1) {
				ASSERT_EQ(o->len, o->stride);
			} else {
				ASSERT_LT(o->len, o->stride);
			}
			ASSERT_GE(c->need, o->buf_off + (o->rows - 1) * o->stride + o->len);
			ASSERT_GE(p->cards[card].bytes, o->dst + o->rows * o->len);
			/* a card's transfers of a read are adjacent, in buffer order */
			if (i > c->first) {
				ASSERT_LE(last_card, card);
				if (last_card == card)
					ASSERT_LE(last_off, o->buf_off);
			}
			last_card = card;
			last_off = o->buf_off;
			for (uint64_t r = 0; r < o->rows; r++)
				for (uint64_t b = 0; b < o->len; b++) {
					uint64_t d = o->dst + r * o->len + b;

					img[card][d] = file_byte(file, c->off + o->buf_off +
								   r * o->stride + b);
					cover[card][d]++;
				}
			rows += o->rows;
		}
		n_ops += c->n_ops;
	}
	ASSERT_EQ(n_ops, s->n_ops);
	ASSERT_EQ(rows, s->n_rows);
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
		ASSERT_EQ(1, o->rows);
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
				    r->dst >= s->ranges[k - 1].dst +
					      sched_range_bytes(&s->ranges[k - 1]));
			ASSERT_LT(0, r->rows);
			if (r->rows == 1) {
				ASSERT_EQ(r->len, r->stride);
			} else {
				ASSERT_LT(r->len, r->stride);
				ASSERT_GT(r->len + LOAD_SCHED_SKIP, r->stride);
			}
			for (uint64_t j = 0; j < r->rows; j++)
				for (b = 0; b < r->len; b++)
					ASSERT_EQ(want[r->dst + j * r->len + b],
						  file_byte(file, r->src + j * r->stride + b));
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

/* @len bytes at @dst of card @card's region, from file offset @src (ZEROS: padding) */
struct span {
	uint32_t card;
	uint64_t dst, len, src;
};

#define ZEROS UINT64_MAX

static int span_by_card_dst(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	if (x->card != y->card)
		return x->card < y->card ? -1 : 1;
	return x->dst < y->dst ? -1 : (x->dst > y->dst);
}

/* transfer @y comes after @x in a read: by card, buffer offset, region offset */
static bool op_after(const struct sched_op *x, const struct sched_op *y)
{
	if (x->card != y->card)
		return x->card < y->card;
	if (x->buf_off != y->buf_off)
		return x->buf_off < y->buf_off;
	return x->dst < y->dst;
}

/*
 * Merge the @n spans at @sp that follow each other in the region and the
 * file; return how many are left.
 */
static size_t merge_spans(struct span *sp, size_t n)
{
	size_t i, m;

	for (i = 0, m = 0; i < n; i++) {
		struct span *prev = m ? &sp[m - 1] : NULL;

		if (prev && prev->card == sp[i].card && prev->dst + prev->len == sp[i].dst &&
		    prev->src + prev->len == sp[i].src) {
			prev->len += sp[i].len;
			continue;
		}
		sp[m++] = sp[i];
	}
	return m;
}

/*
 * Check schedule @s of plan @p (cards in @load) by intervals, without the
 * regions in memory: what check() does but the contents, and the orders
 * the schedule promises, strictly.
 */
static void check_sparse(struct __test_metadata *_metadata, const struct shard_plan *p,
			 const bool *load, const struct load_sched *s, uint64_t align,
			 uint64_t chunk, uint64_t zero_len)
{
	uint64_t bytes = 0, read_bytes = 0, rows = 0, j;
	struct span *want, *have;
	size_t n = 0, i, k, m, c, ops = 0;

	/* the ranges: the plan's, by card and region offset, neighbours merged */
	for (c = 0; c < p->n_cards; c++)
		for (k = 0; load[c] && k < p->cards[c].n_pieces; k++)
			if (p->cards[c].pieces[k].src_len)
				n += p->cards[c].pieces[k].src_count;
	want = calloc(n + 1, sizeof(*want));
	ASSERT_NE(NULL, want);
	n = 0;
	for (c = 0; c < p->n_cards; c++)
		for (k = 0; load[c] && k < p->cards[c].n_pieces; k++) {
			const struct shard_piece *pc = &p->cards[c].pieces[k];

			for (j = 0; pc->src_len && j < pc->src_count; j++) {
				struct span *w = &want[n++];

				w->card = c;
				w->dst = pc->dst_offset + j * pc->src_len;
				w->len = pc->src_len;
				w->src = pc->src_offset + j * pc->src_stride;
			}
		}
	qsort(want, n, sizeof(*want), span_by_card_dst);
	m = merge_spans(want, n);
	/* the schedule's ranges, row by row, the same way */
	for (i = 0, n = 0; i < s->n_ranges; i++)
		n += s->ranges[i].rows;
	have = calloc(n + 1, sizeof(*have));
	ASSERT_NE(NULL, have);
	for (i = 0, n = 0, c = 0; i < s->n_ranges; i++) {
		const struct sched_range *r = &s->ranges[i];

		ASSERT_LT(0, r->rows) TH_LOG("range %zu", i);
		if (r->rows == 1) {
			ASSERT_EQ(r->len, r->stride) TH_LOG("range %zu", i);
		} else {
			ASSERT_LT(r->len, r->stride) TH_LOG("range %zu", i);
			ASSERT_GT(r->len + LOAD_SCHED_SKIP, r->stride) TH_LOG("range %zu", i);
		}
		ASSERT_TRUE(!i || r[-1].card < r->card ||
			    r[-1].dst + sched_range_bytes(&r[-1]) <= r->dst);
		for (; c <= r->card; c++)
			ASSERT_EQ(i, s->card_range[c]);
		for (j = 0; j < r->rows; j++)
			have[n++] = (struct span){ .card = r->card, .dst = r->dst + j * r->len,
						   .len = r->len, .src = r->src + j * r->stride };
		bytes += sched_range_bytes(r);
	}
	for (; c <= p->n_cards; c++)
		ASSERT_EQ(s->n_ranges, s->card_range[c]);
	ASSERT_EQ(m, merge_spans(have, n));
	for (i = 0; i < m; i++) {
		ASSERT_EQ(want[i].card, have[i].card) TH_LOG("span %zu", i);
		ASSERT_EQ(want[i].dst, have[i].dst) TH_LOG("span %zu", i);
		ASSERT_EQ(want[i].src, have[i].src) TH_LOG("span %zu", i);
		ASSERT_EQ(want[i].len, have[i].len) TH_LOG("span %zu", i);
	}
	ASSERT_EQ(bytes, s->bytes);
	free(want);
	free(have);

	/* the reads, each one's transfers strictly in order */
	have = calloc(s->n_rows + s->n_pad + 1, sizeof(*have));
	ASSERT_NE(NULL, have);
	for (k = 0, n = 0; k < s->n_chunks; k++) {
		const struct sched_chunk *ch = &s->chunks[k];

		ASSERT_EQ(0, ch->off % align);
		ASSERT_EQ(0, ch->len % align);
		ASSERT_LT(0, ch->len);
		ASSERT_GE(chunk, ch->len);
		ASSERT_GE(ch->len, ch->need);
		ASSERT_TRUE(!k || ch->off >= ch[-1].off + ch[-1].len) TH_LOG("read %zu", k);
		ASSERT_EQ(ops, ch->first);
		ASSERT_LT(0, ch->n_ops);
		ops += ch->n_ops;
		for (i = ch->first; i < ch->first + ch->n_ops; i++) {
			const struct sched_op *o = &s->ops[i];

			ASSERT_LT(o->card, p->n_cards);
			ASSERT_TRUE(load[o->card]);
			ASSERT_LT(0, o->len);
			ASSERT_LT(0, o->rows);
			ASSERT_TRUE(o->rows == 1 ? o->stride == o->len : o->stride > o->len);
			ASSERT_GE(ch->need, o->buf_off + (o->rows - 1) * o->stride + o->len);
			ASSERT_TRUE(i == ch->first || op_after(&o[-1], o))
				TH_LOG("read %zu: transfer %zu out of order", k, i);
			for (j = 0; j < o->rows; j++)
				have[n++] = (struct span){ .card = o->card,
							   .dst = o->dst + j * o->len,
							   .len = o->len,
							   .src = ch->off + o->buf_off +
								  j * o->stride };
			rows += o->rows;
		}
		read_bytes += ch->len;
	}
	ASSERT_EQ(ops, s->n_ops);
	ASSERT_EQ(rows, s->n_rows);
	ASSERT_EQ(n, s->n_rows);
	ASSERT_EQ(read_bytes, s->read_bytes);
	/* the padding: by card, each card's in region order */
	for (i = 0; i < s->n_pad; i++) {
		const struct sched_op *o = &s->pad[i];

		ASSERT_LT(o->card, p->n_cards);
		ASSERT_TRUE(load[o->card]);
		ASSERT_LT(0, o->len);
		ASSERT_GE(zero_len, o->len);
		ASSERT_EQ(0, o->buf_off);
		ASSERT_TRUE(!i || o[-1].card < o->card ||
			    (o[-1].card == o->card && o[-1].dst + o[-1].len <= o->dst));
		have[n++] = (struct span){ .card = o->card, .dst = o->dst, .len = o->len,
					   .src = ZEROS };
	}
	/*
	 * Each loaded card's region, tiled: every byte once, from the file
	 * offset its range says, and zeros where no range is.
	 */
	qsort(have, n, sizeof(*have), span_by_card_dst);
	for (c = 0, i = 0; c < p->n_cards; c++) {
		size_t r = s->card_range[c], end = s->card_range[c + 1];
		uint64_t pos = 0;

		for (; i < n && have[i].card == c; i++) {
			const struct span *h = &have[i];

			ASSERT_EQ(pos, h->dst)
				TH_LOG("card %zu, region offset %llu: %s", c,
				       (unsigned long long)pos,
				       h->dst > pos ? "not written" : "written twice");
			while (r < end && s->ranges[r].dst + sched_range_bytes(&s->ranges[r]) <=
						  h->dst)
				r++;
			if (h->src == ZEROS) {
				ASSERT_TRUE(r == end || s->ranges[r].dst >= h->dst + h->len)
					TH_LOG("card %zu: zeros over a range", c);
			} else {
				/* a single row may go on into the next range */
				uint64_t at = h->dst, src = h->src, left;

				while (at < h->dst + h->len) {
					while (r < end && s->ranges[r].dst +
							  sched_range_bytes(&s->ranges[r]) <= at)
						r++;
					ASSERT_LT(r, end);
					ASSERT_LE(s->ranges[r].dst, at);
					ASSERT_EQ(sched_range_src(&s->ranges[r], at, &left), src)
						TH_LOG("card %zu, region offset %llu", c,
						       (unsigned long long)at);
					if (left > h->dst + h->len - at)
						left = h->dst + h->len - at;
					at += left;
					src += left;
				}
			}
			pos += h->len;
		}
		ASSERT_EQ(load[c] ? p->cards[c].bytes : 0, pos) TH_LOG("card %zu", c);
	}
	ASSERT_EQ(n, i);
	free(have);
}

/* schedules made by merging and by sorting (load_sched_build() chooses) */
static unsigned int n_merged, n_sorted;

static void same_but(struct __test_metadata *_metadata, const struct load_sched *a,
		     const struct load_sched *b, uint32_t moved, uint64_t delta);

/*
 * Build and check the schedule; one that was merged is also built by
 * sorting, and must be the same.
 */
static void run(struct __test_metadata *_metadata, const struct shard_plan *p,
		const bool *load, const uint8_t *file, uint64_t size, uint64_t align,
		uint64_t chunk, uint64_t zero_len, struct load_sched **out)
{
	struct load_sched *s, *sorted;

	ASSERT_EQ(0, load_sched_build(p, load, align, chunk, zero_len, &s));
	check(_metadata, p, load, s, file, size, align, chunk, zero_len);
	check_sparse(_metadata, p, load, s, align, chunk, zero_len);
	if (s->merged) {
		load_sched_always_sort = true;
		ASSERT_EQ(0, load_sched_build(p, load, align, chunk, zero_len, &sorted));
		load_sched_always_sort = false;
		ASSERT_FALSE(sorted->merged);
		same_but(_metadata, s, sorted, UINT32_MAX, 0);
		load_sched_free(sorted);
		n_merged++;
	} else {
		n_sorted++;
	}
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

#define MAX_PIECES 16

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

/* a column slice: a strided range, a transfer of rows per read */
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
	/*
	 * A strided range per card; per read and card the rows wholly in it
	 * (one transfer), and a row cut by its end (two transfers of a row).
	 * A row's halves are adjacent in the file but not on a card: no
	 * merging.
	 */
	ASSERT_EQ(2, s->n_ranges);
	for (size_t i = 0; i < 2; i++) {
		ASSERT_EQ(1000, s->ranges[i].rows);
		ASSERT_EQ(1500, s->ranges[i].len);
		ASSERT_EQ(3000, s->ranges[i].stride);
	}
	ASSERT_EQ(12, s->n_chunks);
	ASSERT_GE(2 * 2 * s->n_chunks, s->n_ops);
	ASSERT_LE(2000, s->n_rows);
	ASSERT_GE(2000 + 2 * s->n_chunks, s->n_rows);
	ASSERT_EQ(0, s->n_pad);
	load_sched_free(s);

	/* rows a gap worth skipping apart: a range each, read each alone */
	hand_init(&h, 1);
	piece(&h, 0, 4096, 100, 100 + LOAD_SCHED_SKIP + 8192, 5, 0);
	run(_metadata, &h.p, all, NULL, 8 << 20, 4096, 1 << 20, 4096, &s);
	ASSERT_EQ(5, s->n_ranges);
	ASSERT_EQ(5, s->n_chunks);
	ASSERT_EQ(5 * 4096, s->read_bytes);
	load_sched_free(s);

	/* rows that overlap in the file: a range each (a row goes twice) */
	hand_init(&h, 1);
	piece(&h, 0, 10, 100, 60, 7, 0);
	run(_metadata, &h.p, all, NULL, 1 << 20, 4096, 1 << 20, 4096, &s);
	ASSERT_EQ(7, s->n_ranges);
	ASSERT_EQ(7, s->n_ops);
	ASSERT_EQ(700, s->bytes);
	load_sched_free(s);

	/* a strided range whose last row a whole tensor continues */
	hand_init(&h, 1);
	piece(&h, 0, 0, 100, 300, 4, 0);
	piece(&h, 0, 1000, 500, 500, 1, 400);
	run(_metadata, &h.p, all, NULL, 1 << 20, 4096, 1 << 20, 4096, &s);
	ASSERT_EQ(2, s->n_ranges);
	ASSERT_EQ(2, s->n_ops);
	ASSERT_EQ(4, s->ops[0].rows);
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
	/* far beyond: at 2^50, sorted by qsort() (not the radix sort's key) */
	hand_init(&h, 1);
	piece(&h, 0, 0, 100, 100, 1, 1ull << 50);
	h.cards[0].bytes = 1000;
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

/* ---- the sorts: every radix pass, the fallbacks, random plans ----------- */

/* schedules @a and @b of the same plan but card @moved: the same but its region offsets */
static void same_but(struct __test_metadata *_metadata, const struct load_sched *a,
		     const struct load_sched *b, uint32_t moved, uint64_t delta)
{
	size_t i;

	ASSERT_EQ(a->n_chunks, b->n_chunks);
	for (i = 0; i < a->n_chunks; i++) {
		ASSERT_EQ(a->chunks[i].off, b->chunks[i].off);
		ASSERT_EQ(a->chunks[i].len, b->chunks[i].len);
		ASSERT_EQ(a->chunks[i].need, b->chunks[i].need);
		ASSERT_EQ(a->chunks[i].first, b->chunks[i].first);
		ASSERT_EQ(a->chunks[i].n_ops, b->chunks[i].n_ops);
	}
	ASSERT_EQ(a->n_ops, b->n_ops);
	for (i = 0; i < a->n_ops; i++) {
		ASSERT_EQ(a->ops[i].card, b->ops[i].card) TH_LOG("transfer %zu", i);
		ASSERT_EQ(a->ops[i].buf_off, b->ops[i].buf_off) TH_LOG("transfer %zu", i);
		ASSERT_EQ(a->ops[i].len, b->ops[i].len) TH_LOG("transfer %zu", i);
		ASSERT_EQ(a->ops[i].rows, b->ops[i].rows) TH_LOG("transfer %zu", i);
		ASSERT_EQ(a->ops[i].stride, b->ops[i].stride) TH_LOG("transfer %zu", i);
		ASSERT_EQ(a->ops[i].dst + (a->ops[i].card == moved ? delta : 0), b->ops[i].dst)
			TH_LOG("transfer %zu", i);
	}
	ASSERT_EQ(a->n_ranges, b->n_ranges);
	for (i = 0; i < a->n_ranges; i++) {
		ASSERT_EQ(a->ranges[i].card, b->ranges[i].card);
		ASSERT_EQ(a->ranges[i].src, b->ranges[i].src);
		ASSERT_EQ(a->ranges[i].len, b->ranges[i].len);
		ASSERT_EQ(a->ranges[i].rows, b->ranges[i].rows);
		ASSERT_EQ(a->ranges[i].stride, b->ranges[i].stride);
		ASSERT_EQ(a->ranges[i].dst + (a->ranges[i].card == moved ? delta : 0),
			  b->ranges[i].dst);
	}
	ASSERT_EQ(a->bytes, b->bytes);
	ASSERT_EQ(a->read_bytes, b->read_bytes);
	ASSERT_EQ(a->n_rows, b->n_rows);
}

/*
 * A 4-way column slice of 25,000 rows (4 strided ranges) and on each card
 * 25,000 rows that overlap in the file (100,000 ranges of a row), at
 * region offsets beyond 2^32 and file offsets beyond 2^32, in over 2^16
 * reads, so that every sort takes several radix passes. Then the same
 * with card 2's
 * region offsets 2^48 higher, beyond what the key of the sort by card
 * and region offset holds: qsort() sorts the ranges, and the schedule
 * must be the same but for those offsets.
 */
TEST(large)
{
	static const bool all[4] = { true, true, true, true };
	const uint64_t file = 5ull << 30, rows = 25000, dst = 1ull << 33;
	const uint64_t far = 1ull << 48;
	struct load_sched *a, *b;
	struct hand h;
	size_t c, k;

	hand_init(&h, 4);
	for (c = 0; c < 4; c++) {
		piece(&h, c, file + 8192 + c * 1000, 1000, 4096, rows, dst + c * 12345);
		piece(&h, c, file + 8192 + 4096 * rows + c * 1000, 1000, 600, rows,
		      dst + c * 12345 + 1000 * rows + 4096);
	}
	/* a norm twice on card 0 (tied embeddings), and on cards 1 and 2 */
	piece(&h, 0, file, 8000, 8000, 1, 8192);
	piece(&h, 0, file, 8000, 8000, 1, 0);
	piece(&h, 1, file + 100, 7000, 7000, 1, 0);
	piece(&h, 2, file, 8000, 8000, 1, 12281);
	ASSERT_EQ(0, load_sched_build(&h.p, all, 512, 1024, 1ull << 36, &a));
	check_sparse(_metadata, &h.p, all, a, 512, 1024, 1ull << 36);
	ASSERT_EQ(4 * rows + 8, a->n_ranges);
	ASSERT_LE(8 * rows + 4, a->n_rows);
	ASSERT_LT(1u << 16, a->n_chunks);

	for (k = 0; k < h.cards[2].n_pieces; k++)
		h.pieces[2][k].dst_offset += far;
	h.cards[2].bytes += far;
	ASSERT_EQ(0, load_sched_build(&h.p, all, 512, 1024, 1ull << 36, &b));
	check_sparse(_metadata, &h.p, all, b, 512, 1024, 1ull << 36);
	same_but(_metadata, a, b, 2, far);
	load_sched_free(a);
	load_sched_free(b);
}

/*
 * Reads of 2^60 bytes: the buffer offsets take 60 bits, the reads' index
 * 3 (8 reads) and the card 2, so the transfers' key would need 65 bits
 * and qsort() sorts them. Card 1 has the same ranges twice: its
 * transfers from one buffer offset go by region offset.
 */
TEST(huge_reads)
{
	static const bool all[4] = { true, true, true, true };
	const uint64_t chunk = 1ull << 60;
	struct load_sched *s;
	struct hand h;
	bool high = false;
	size_t i;

	hand_init(&h, 4);
	piece(&h, 0, 0, 1ull << 63, 1ull << 63, 1, 0);
	piece(&h, 1, (1ull << 61) + 12345, 1000, 5000, 50, 1 << 20);
	piece(&h, 1, (1ull << 61) + 12345, 1000, 5000, 50, 0);
	piece(&h, 2, (3ull << 59) + 7, 3000, 3001, 30, 0);
	piece(&h, 2, (13ull << 59) + 7, 3000, 3001, 30, 1 << 20);
	piece(&h, 3, chunk - 50000, 3000, 5000, 20, 100);	/* across a read */
	piece(&h, 3, 7 * chunk + 5, 100, 100, 1, 1 << 20);
	ASSERT_EQ(0, load_sched_build(&h.p, all, 4096, chunk, 1ull << 62, &s));
	check_sparse(_metadata, &h.p, all, s, 4096, chunk, 1ull << 62);
	ASSERT_EQ(8, s->n_chunks);
	for (i = 0; i < s->n_ops; i++)
		high |= s->ops[i].buf_off >> 59;
	ASSERT_TRUE(high);
	load_sched_free(s);
}

/*
 * A card at index 2^16, beyond what the ranges' key holds: the same
 * schedule as with the card at index 1, by qsort().
 */
TEST(many_cards)
{
	static const bool all[4] = { true, true, true, true };
	const size_t far = 1 << 16;
	struct load_sched *a, *b;
	struct shard_plan q;
	struct hand h;
	bool *load;
	size_t i;

	hand_init(&h, 2);
	piece(&h, 0, 5000, 3000, 10000, 40, 300000);
	piece(&h, 0, 100, 30000, 30000, 1, 0);
	piece(&h, 1, 8000, 3000, 10000, 40, 4096);
	piece(&h, 1, 5000, 3000, 10000, 40, 200000);	/* card 0's too */
	run(_metadata, &h.p, all, NULL, 1 << 20, 4096, 64 << 10, 4096, &a);

	q = h.p;
	q.n_cards = far + 1;
	q.cards = calloc(q.n_cards, sizeof(*q.cards));
	load = calloc(q.n_cards, sizeof(*load));
	ASSERT_NE(NULL, q.cards);
	ASSERT_NE(NULL, load);
	q.cards[0] = h.cards[0];
	q.cards[far] = h.cards[1];
	load[0] = load[far] = true;
	run(_metadata, &q, load, NULL, 1 << 20, 4096, 64 << 10, 4096, &b);
	for (i = 0; i < a->n_ops; i++)
		if (a->ops[i].card == 1)
			a->ops[i].card = far;
	for (i = 0; i < a->n_ranges; i++)
		if (a->ranges[i].card == 1)
			a->ranges[i].card = far;
	same_but(_metadata, a, b, 0, 0);
	ASSERT_EQ(a->n_pad, b->n_pad);
	for (i = 0; i < a->n_pad; i++) {
		ASSERT_EQ(a->pad[i].card ? far : 0, b->pad[i].card);
		ASSERT_EQ(a->pad[i].dst, b->pad[i].dst);
		ASSERT_EQ(a->pad[i].len, b->pad[i].len);
	}
	load_sched_free(a);
	load_sched_free(b);
	free(q.cards);
	free(load);
}

/* xorshift64*, seeded by each test that uses it: the same plans every run */
static uint64_t rnd_state;

/* a random number in [0, n) */
static uint64_t rnd(uint64_t n)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return (rnd_state * 0x2545f4914f6cdd1dull) % n;
}

/*
 * A random plan of 1 to 4 cards, at file offsets from @base: whole tensors
 * and column slices, some of them at the same file offsets as others (on
 * other cards, or on the same card: tied embeddings), some adjacent in
 * both the file and the region (merged), with gaps in the file worth
 * skipping or not. Each card's pieces are shuffled: the ranges come to
 * load_sched_build() out of region order.
 */
static void random_plan(struct hand *h, uint64_t base)
{
	size_t n_cards = 1 + rnd(4), c, k, n, o;
	uint64_t src = base, len, stride, count, dst;

	hand_init(h, n_cards);
	for (c = 0; c < n_cards; c++) {
		n = 1 + rnd(MAX_PIECES);
		for (k = 0; k < n; k++) {
			size_t other = rnd(c + 1), n_other = h->cards[other].n_pieces;
			struct shard_piece *pc = NULL;

			if (n_other && !rnd(4))
				pc = &h->pieces[other][rnd(n_other)];
			dst = h->cards[c].bytes + (rnd(3) ? rnd(300) : 0);
			if (pc) {
				/* one of another card's, or of this card's */
				piece(h, c, pc->src_offset, pc->src_len, pc->src_stride,
				      pc->src_count, dst);
				continue;
			}
			len = 1 + rnd(2000);
			stride = len + (rnd(3) ? rnd(3000) : 0);
			if (!rnd(10))		/* rows that overlap in the file */
				stride = 1 + rnd(len);
			else if (!rnd(10))	/* rows a gap worth skipping apart */
				stride = len + LOAD_SCHED_SKIP - 1 + rnd(3);
			count = rnd(2) ? 1 + rnd(24) : 1;
			if (!rnd(8))
				src += LOAD_SCHED_SKIP + rnd(3 * LOAD_SCHED_SKIP);
			else
				src = base + rnd(4 << 20);
			piece(h, c, src, len, stride, count, dst);
		}
		for (k = n - 1; k > 0; k--) {
			struct shard_piece t = h->pieces[c][k];

			o = rnd(k + 1);
			h->pieces[c][k] = h->pieces[c][o];
			h->pieces[c][o] = t;
		}
	}
}

/*
 * A random plan whose cards' ranges are in file order, apart (what
 * load_sched_build() merges rather than sorts, as it does real plans): 1
 * to 4 cards, tensors one after the other in the file, each replicated
 * on every card, on one card, or sliced by columns across the cards, at
 * region offsets one after the other with or without a gap; gaps in the
 * file worth skipping or not.
 */
static void ordered_plan(struct hand *h, uint64_t base)
{
	size_t n_cards = 1 + rnd(4), c, k, n = 1 + rnd(MAX_PIECES);
	uint64_t src = base, len, rows;

	hand_init(h, n_cards);
	for (k = 0; k < n; k++) {
		switch (rnd(3)) {
		case 0:		/* the same bytes on every card */
			len = 1 + rnd(5000);
			for (c = 0; c < n_cards; c++)
				piece(h, c, src, len, len, 1, h->cards[c].bytes + rnd(2) * rnd(300));
			src += len;
			break;
		case 1:		/* on one card */
			len = 1 + rnd(5000);
			c = rnd(n_cards);
			piece(h, c, src, len, len, 1, h->cards[c].bytes + rnd(2) * rnd(300));
			src += len;
			break;
		default:	/* row r's c-th part on card c */
			len = 1 + rnd(700);
			rows = 1 + rnd(24);
			for (c = 0; c < n_cards; c++)
				piece(h, c, src + c * len, len, len * n_cards, rows,
				      h->cards[c].bytes + rnd(2) * rnd(300));
			src += len * n_cards * rows;
			break;
		}
		if (!rnd(8))
			src += LOAD_SCHED_SKIP + rnd(3 * LOAD_SCHED_SKIP);
		else
			src += rnd(2) * rnd(3000);
	}
}

/*
 * Random plans, cards and read geometries, at file offsets up to 2^40:
 * every other plan one in file order; both ways of making the schedule
 * are taken, and the merged ones agree with the sorted ones (run()).
 */
TEST(random_plans)
{
	struct hand *h = calloc(1, sizeof(*h));
	uint64_t align, chunk, zero_len;
	unsigned int merged = n_merged, sorted = n_sorted;
	bool load[4];
	size_t i, c;

	ASSERT_NE(NULL, h);
	rnd_state = 0x9e3779b97f4a7c15ull;
	for (i = 0; i < 800; i++) {
		if (i % 2)
			ordered_plan(h, rnd(1ull << 40));
		else
			random_plan(h, rnd(1ull << 40));
		for (c = 0; c < h->p.n_cards; c++)
			load[c] = rnd(4);
		align = 512u << rnd(4);
		chunk = rnd(4) ? align * (1 + rnd(32)) : 8 << 20;
		zero_len = 1 + rnd(8192);
		run(_metadata, &h->p, load, NULL, 1ull << 42, align, chunk, zero_len, NULL);
	}
	free(h);
	TH_LOG("%u schedules merged, %u sorted", n_merged - merged, n_sorted - sorted);
	ASSERT_LT(300, n_merged - merged);
	ASSERT_LT(300, n_sorted - sorted);
}

TEST_HARNESS_MAIN
