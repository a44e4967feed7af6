// SPDX-License-Identifier: GPL-2.0
/*
 * The schedule of `llmctl load`: reads of the file into staging buffers,
 * and per card and read the transfers to the card (load-sched.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "load-sched.h"

bool load_sched_always_sort;

/* a growing array of transfers, each with the chunk it belongs to */
struct op_vec {
	struct sched_op *op;
	size_t *chunk;
	size_t n, cap;
};

static int op_push(struct op_vec *v, size_t chunk, uint32_t card, uint64_t buf_off,
		   uint64_t dst, uint64_t len, uint64_t rows, uint64_t stride)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 1024;
		struct sched_op *op = realloc(v->op, cap * sizeof(*op));
		size_t *ch;

		if (!op)
			return -ENOMEM;
		v->op = op;
		ch = realloc(v->chunk, cap * sizeof(*ch));
		if (!ch)
			return -ENOMEM;
		v->chunk = ch;
		v->cap = cap;
	}
	v->op[v->n] = (struct sched_op){ .card = card, .buf_off = buf_off, .dst = dst,
					 .len = len, .rows = rows, .stride = stride };
	v->chunk[v->n++] = chunk;
	return 0;
}

/*
 * A sort key and the index of the element it stands for: radix_sort()
 * orders these, the caller then reorders its elements by @idx.
 */
struct sort_pair {
	uint64_t key;
	size_t idx;
};

#define RADIX_BITS	16
#define RADIX_SIZE	((size_t)1 << RADIX_BITS)
#define RADIX_MASK	(RADIX_SIZE - 1)

/*
 * Sort the @n pairs of @a by key, stably: pairs with equal keys stay in
 * the order they have in @a, so a caller that lists its elements in the
 * order of a tiebreak gets that tiebreak for free. This is a least
 * significant digit radix sort on 16-bit digits: a counting pass per
 * digit, from the lowest to the highest, each one stable, so that after
 * the last one the pairs are ordered by the whole key. A digit that is
 * the same in every key would leave the order as it is: its pass is
 * skipped (the keys below are short, or have few distinct values in
 * their high bits, so that most sorts take two or three passes). Keys
 * that are in order already take no pass at all.
 * On -ENOMEM @a is left as it was.
 */
static int radix_sort(struct sort_pair *a, size_t n)
{
	struct sort_pair *tmp, *from = a, *to, *t;
	uint64_t diff = 0;
	size_t *count, i, sum, c;
	unsigned int shift;
	bool sorted = true;

	/*
	 * The bits in which some key differs from the first one; and whether
	 * the keys are in order already (the ranges of a plan usually are).
	 */
	for (i = 1; i < n; i++) {
		diff |= a[i].key ^ a[0].key;
		if (a[i].key < a[i - 1].key)
			sorted = false;
	}
	if (sorted)
		return 0;
	/* (@a is in memory: n * sizeof(*a) does not overflow) */
	tmp = malloc(n * sizeof(*tmp));
	count = malloc(RADIX_SIZE * sizeof(*count));
	if (!tmp || !count) {
		free(tmp);
		free(count);
		return -ENOMEM;
	}
	to = tmp;
	for (shift = 0; shift < 64; shift += RADIX_BITS) {
		if (!((diff >> shift) & RADIX_MASK))
			continue;
		memset(count, 0, RADIX_SIZE * sizeof(*count));
		for (i = 0; i < n; i++)
			count[(from[i].key >> shift) & RADIX_MASK]++;
		/* each digit's first place in the output */
		for (i = 0, sum = 0; i < RADIX_SIZE; i++) {
			c = count[i];
			count[i] = sum;
			sum += c;
		}
		for (i = 0; i < n; i++)
			to[count[(from[i].key >> shift) & RADIX_MASK]++] = from[i];
		t = from;
		from = to;
		to = t;
	}
	if (from != a)
		memcpy(a, from, n * sizeof(*a));
	free(tmp);
	free(count);
	return 0;
}

/* the bits @v needs: 0 for 0 */
static unsigned int bit_width(uint64_t v)
{
	return v ? 64 - __builtin_clzll(v) : 0;
}

/* the fallback of sort_ranges() */
static int range_by_card_dst(const void *a, const void *b)
{
	const struct sched_range *x = a, *y = b;

	if (x->card != y->card)
		return x->card < y->card ? -1 : 1;
	if (x->dst != y->dst)
		return x->dst < y->dst ? -1 : 1;
	return 0;
}

/*
 * Sort the @n ranges of *@ranges by card, then region offset; the sorted
 * array replaces *@ranges. The key is card << 48 | dst: the card in bits
 * 48..63, the region offset in bits 0..47. A plan with a card at index
 * 2^16 or more, or a range at a region offset of 2^48 or more (256 TiB;
 * make_ranges() rejects it afterwards unless the card is that large),
 * does not fit: qsort() with range_by_card_dst() sorts it, as it did
 * before the radix sort. Both orders differ only among ranges of a card
 * at the same offset: they overlap, and make_ranges() rejects the plan
 * (-EINVAL) whichever comes first.
 */
static int sort_ranges(struct sched_range **ranges, size_t n)
{
	struct sched_range *r = *ranges, *sorted = NULL;
	struct sort_pair *pair = NULL;
	size_t i;
	int ret = -ENOMEM;

	/* in order already (what a plan usually gives): nothing to do */
	for (i = 1; i < n; i++)
		if (range_by_card_dst(&r[i - 1], &r[i]) > 0)
			break;
	if (i >= n)
		return 0;
	for (i = 0; i < n; i++)
		if (r[i].card >> 16 || r[i].dst >> 48)
			break;
	if (i < n) {
		qsort(r, n, sizeof(*r), range_by_card_dst);
		return 0;
	}
	pair = malloc(n * sizeof(*pair));
	sorted = malloc(n * sizeof(*sorted));
	if (!pair || !sorted)
		goto out;
	for (i = 0; i < n; i++)
		pair[i] = (struct sort_pair){ .key = (uint64_t)r[i].card << 48 | r[i].dst,
					      .idx = i };
	ret = radix_sort(pair, n);
	if (ret)
		goto out;
	for (i = 0; i < n; i++)
		sorted[i] = r[pair[i].idx];
	free(r);
	*ranges = sorted;
	sorted = NULL;
out:
	free(sorted);
	free(pair);
	return ret;
}

/*
 * @idx: the indexes of the @n ranges @r in file order, ranges at the same
 * offset by index (what make_chunks() walks). The key is the file offset,
 * all 64 bits of it. The pairs go in by index and the sort is stable, so
 * ranges at the same offset come out by index.
 */
static int sort_index_by_src(const struct sched_range *r, size_t n, size_t *idx)
{
	struct sort_pair *pair;
	size_t i;
	int ret;

	pair = malloc((n ? n : 1) * sizeof(*pair));
	if (!pair)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		pair[i] = (struct sort_pair){ .key = r[i].src, .idx = i };
	ret = radix_sort(pair, n);
	for (i = 0; i < n && !ret; i++)
		idx[i] = pair[i].idx;
	free(pair);
	return ret;
}

/* merging takes a pass over the cards per range: for a few cards only */
#define MERGE_MAX_CARDS	16

/*
 * Whether each card's ranges, in region order, are also in file order and
 * apart in the file: every one ends (its last row does) at or before the
 * next one starts, and at most MERGE_MAX_CARDS cards have ranges. A
 * plan's usually are (a card's pieces are the tensors in file order).
 * Then the file order of all the ranges is a merge of the cards'
 * (merge_by_src()), and the transfers come out of make_ops() in file
 * order card after card, so that their order by chunk, card and buffer
 * offset is a merge too (merge_ops()): no sort.
 */
static bool in_file_order(const struct load_sched *s)
{
	unsigned int cards = s->n_ranges ? 1 : 0;
	size_t i;

	for (i = 1; i < s->n_ranges; i++) {
		const struct sched_range *a = &s->ranges[i - 1], *b = &s->ranges[i];

		if (a->card != b->card)
			cards++;
		else if (sched_range_src_end(a) > b->src)
			return false;
	}
	return cards <= MERGE_MAX_CARDS;
}

/*
 * The runs of cards of @n > 0 elements @size bytes apart, whose card
 * number is at @card for the first one, ascending: their first indexes in
 * @start (@n after the last) and in @next, their number in *@runs.
 * Return 0, or -EINVAL when there are more than MERGE_MAX_CARDS.
 */
static int card_runs(const uint32_t *card, size_t size, size_t n, size_t *start,
		     size_t *next, size_t *runs)
{
	const char *p = (const char *)card;
	uint32_t prev = 0;
	size_t i, r = 0;

	for (i = 0; i < n && r <= MERGE_MAX_CARDS; i++, p += size) {
		uint32_t c = *(const uint32_t *)p;

		if (!i || c != prev)
			start[r++] = i;
		prev = c;
	}
	if (r > MERGE_MAX_CARDS)
		return -EINVAL;
	start[r] = n;
	memcpy(next, start, r * sizeof(*next));
	*runs = r;
	return 0;
}

/*
 * What sort_index_by_src() gives, for ranges in_file_order(): the next in
 * file order is the first of some card's remaining ones, the one of the
 * lowest card among those at the lowest offset (the lowest index: ranges
 * are by card).
 */
static int merge_by_src(const struct load_sched *s, size_t *idx)
{
	size_t start[MERGE_MAX_CARDS + 1], next[MERGE_MAX_CARDS], i, c, best, runs;

	if (!s->n_ranges)
		return 0;
	if (card_runs(&s->ranges[0].card, sizeof(s->ranges[0]), s->n_ranges, start, next,
		      &runs))
		return -EINVAL;
	for (i = 0; i < s->n_ranges; i++) {
		best = SIZE_MAX;
		for (c = 0; c < runs; c++)
			if (next[c] < start[c + 1] &&
			    (best == SIZE_MAX ||
			     s->ranges[next[c]].src < s->ranges[next[best]].src))
				best = c;
		idx[i] = next[best]++;
	}
	return 0;
}

/*
 * What sort_ops() gives, for the transfers of ranges in_file_order(): they
 * were made card after card, each card's in file order, so by chunk and
 * buffer offset; the order by chunk, card and buffer offset takes, for
 * each chunk, each card's that are in it, card after card.
 */
static int merge_ops(const struct op_vec *v, size_t n_chunks, size_t *order)
{
	size_t start[MERGE_MAX_CARDS + 1], next[MERGE_MAX_CARDS], k, c, runs, out = 0;

	if (!v->n)
		return 0;
	if (card_runs(&v->op[0].card, sizeof(v->op[0]), v->n, start, next, &runs))
		return -EINVAL;
	for (k = 0; k < n_chunks; k++)
		for (c = 0; c < runs; c++)
			while (next[c] < start[c + 1] && v->chunk[next[c]] == k)
				order[out++] = next[c]++;
	return out == v->n ? 0 : -EINVAL;
}

/* the fallback of sort_ops(): transfers by chunk, card, buffer and region offset */
static struct op_vec *sort_vec;

static int index_by_chunk(const void *a, const void *b)
{
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const struct sched_op *x = &sort_vec->op[i], *y = &sort_vec->op[j];

	if (sort_vec->chunk[i] != sort_vec->chunk[j])
		return sort_vec->chunk[i] < sort_vec->chunk[j] ? -1 : 1;
	if (x->card != y->card)
		return x->card < y->card ? -1 : 1;
	if (x->buf_off != y->buf_off)
		return x->buf_off < y->buf_off ? -1 : 1;
	return x->dst < y->dst ? -1 : (x->dst > y->dst);
}

/*
 * @order: the indexes of the transfers of @v by chunk, card, buffer offset
 * and region offset. The key is chunk << (cb + ob) | card << ob | buf_off,
 * each field as wide as its largest value needs: ob bits for the buffer
 * offset (less than the chunk size, but that is the caller's choice),
 * above them cb bits for the card, and above those kb bits for the
 * chunk's index. kb + ob is about the bits of the number of chunks times
 * the chunk size: 7 + 23 for a 795 MB model in llmctl's 8 MiB chunks.
 * Where kb + cb + ob reaches 64 (a schedule of 2^(64 - cb) bytes of
 * chunks, or a card index near 2^32) qsort() with index_by_chunk() sorts
 * them; below 64 every shift is below 64 too.
 *
 * The region offset is not in the key, and need not be: make_ops() makes
 * the transfers range after range, in the order of s->ranges (by card,
 * then region offset; a card's ranges do not overlap in its region), and
 * a range's in ascending file and region offset. Two transfers with the
 * same chunk, card and buffer offset start at the same file offset, so
 * they come from two ranges of that card, and the one made first is the
 * one lower in the region. The stable sort keeps that order, which is
 * the one index_by_chunk() gives them.
 */
static int sort_ops(struct op_vec *v, size_t *order)
{
	uint64_t max_chunk = 0, max_card = 0, max_off = 0;
	unsigned int kb, cb, ob;
	struct sort_pair *pair;
	size_t i;
	int ret;

	for (i = 0; i < v->n; i++) {
		order[i] = i;
		if (v->chunk[i] > max_chunk)
			max_chunk = v->chunk[i];
		if (v->op[i].card > max_card)
			max_card = v->op[i].card;
		if (v->op[i].buf_off > max_off)
			max_off = v->op[i].buf_off;
	}
	kb = bit_width(max_chunk);
	cb = bit_width(max_card);
	ob = bit_width(max_off);
	if (kb + cb + ob >= 64) {
		sort_vec = v;
		qsort(order, v->n, sizeof(*order), index_by_chunk);
		sort_vec = NULL;
		return 0;
	}
	pair = malloc((v->n ? v->n : 1) * sizeof(*pair));
	if (!pair)
		return -ENOMEM;
	for (i = 0; i < v->n; i++)
		pair[i] = (struct sort_pair){ .key = (uint64_t)v->chunk[i] << (cb + ob) |
						     (uint64_t)v->op[i].card << ob |
						     v->op[i].buf_off,
					      .idx = i };
	ret = radix_sort(pair, v->n);
	for (i = 0; i < v->n && !ret; i++)
		order[i] = pair[i].idx;
	free(pair);
	return ret;
}

/*
 * How many ranges piece @pc becomes (make_ranges()): none without bytes,
 * one for rows that touch in the file (or a single row), one strided
 * range for rows apart by less than LOAD_SCHED_SKIP, else one per row.
 */
static uint64_t piece_ranges(const struct shard_piece *pc)
{
	if (!pc->src_len || !pc->src_count)
		return 0;
	if (pc->src_count == 1 || pc->src_stride == pc->src_len)
		return 1;
	if (pc->src_stride < pc->src_len || pc->src_stride - pc->src_len >= LOAD_SCHED_SKIP)
		return pc->src_count;
	return 1;
}

/* whether piece @pc's rows end below 2^64 in the file and in the region */
static bool piece_fits(const struct shard_piece *pc)
{
	uint64_t span, bytes, end;

	return !__builtin_mul_overflow(pc->src_count - 1, pc->src_stride, &span) &&
	       !__builtin_add_overflow(span, pc->src_len, &span) &&
	       !__builtin_add_overflow(span, pc->src_offset, &end) &&
	       !__builtin_mul_overflow(pc->src_count, pc->src_len, &bytes) &&
	       !__builtin_add_overflow(bytes, pc->dst_offset, &end);
}

/* The plan's ranges of the cards to load, by card and region offset, checked and merged. */
static int make_ranges(const struct shard_plan *p, const bool *load, struct load_sched *s)
{
	size_t n = 0, i, k, out;
	uint64_t j, m;
	int ret;

	for (i = 0; i < p->n_cards; i++)
		for (k = 0; load[i] && k < p->cards[i].n_pieces; k++) {
			const struct shard_piece *pc = &p->cards[i].pieces[k];

			m = piece_ranges(pc);
			if (m && !piece_fits(pc))
				return -EOVERFLOW;
			if (m > SIZE_MAX / 2 - n)
				return -ENOMEM;
			n += m;
		}
	if (n > SIZE_MAX / sizeof(*s->ranges))
		return -ENOMEM;
	/* (every member of every range is set below) */
	s->ranges = malloc((n ? n : 1) * sizeof(*s->ranges));
	s->card_range = calloc(p->n_cards + 1, sizeof(*s->card_range));
	if (!s->ranges || !s->card_range)
		return -ENOMEM;
	n = 0;
	for (i = 0; i < p->n_cards; i++)
		for (k = 0; load[i] && k < p->cards[i].n_pieces; k++) {
			const struct shard_piece *pc = &p->cards[i].pieces[k];
			struct sched_range *r = &s->ranges[n];

			m = piece_ranges(pc);
			if (m == 1) {
				r->card = i;
				r->src = pc->src_offset;
				r->dst = pc->dst_offset;
				if (pc->src_count == 1 || pc->src_stride == pc->src_len) {
					r->len = pc->src_count * pc->src_len;
					r->rows = 1;
					r->stride = r->len;
				} else {
					r->len = pc->src_len;
					r->rows = pc->src_count;
					r->stride = pc->src_stride;
				}
				n++;
				continue;
			}
			for (j = 0; j < m; j++, r++, n++)
				*r = (struct sched_range){ .card = i,
							   .src = pc->src_offset + j * pc->src_stride,
							   .dst = pc->dst_offset + j * pc->src_len,
							   .len = pc->src_len, .rows = 1,
							   .stride = pc->src_len };
		}
	ret = sort_ranges(&s->ranges, n);
	if (ret)
		return ret;
	/* no overlap within a card, nothing beyond its bytes; merge neighbours */
	for (i = 0, out = 0; i < n; i++) {
		struct sched_range *r = &s->ranges[i], *prev = out ? &s->ranges[out - 1] : NULL;

		if (r->dst + sched_range_bytes(r) > p->cards[r->card].bytes)
			return -EINVAL;
		if (prev && prev->card == r->card) {
			if (prev->dst + sched_range_bytes(prev) > r->dst)
				return -EINVAL;
			/* single rows that follow each other in the file and the region */
			if (prev->rows == 1 && r->rows == 1 && prev->dst + prev->len == r->dst &&
			    prev->src + prev->len == r->src) {
				prev->len += r->len;
				prev->stride = prev->len;
				continue;
			}
		}
		s->ranges[out++] = *r;
	}
	s->n_ranges = out;
	for (i = 0, k = 0; i <= p->n_cards; i++) {
		while (k < out && s->ranges[k].card < i)
			k++;
		s->card_range[i] = k;
	}
	return 0;
}

/* zeros for [from, to) of card @card, from the zero buffer */
static int push_zeros(struct op_vec *v, uint32_t card, uint64_t from, uint64_t to,
		      uint64_t zero_len)
{
	int ret = 0;

	while (from < to && !ret) {
		uint64_t n = to - from < zero_len ? to - from : zero_len;

		ret = op_push(v, 0, card, 0, from, n, 1, n);
		from += n;
	}
	return ret;
}

/* The zero padding: what no range covers below each loaded card's bytes. */
static int make_pad(const struct shard_plan *p, const bool *load, uint64_t zero_len,
		    struct load_sched *s)
{
	struct op_vec v = { 0 };
	size_t i, k;
	int ret = 0;

	for (i = 0; i < p->n_cards && !ret; i++) {
		uint64_t pos = 0;

		if (!load[i])
			continue;
		for (k = s->card_range[i]; k < s->card_range[i + 1] && !ret; k++) {
			ret = push_zeros(&v, i, pos, s->ranges[k].dst, zero_len);
			pos = s->ranges[k].dst + sched_range_bytes(&s->ranges[k]);
		}
		if (!ret)
			ret = push_zeros(&v, i, pos, p->cards[i].bytes, zero_len);
	}
	free(v.chunk);
	s->pad = v.op;
	s->n_pad = v.n;
	return ret;
}

static uint64_t align_down(uint64_t v, uint64_t a)
{
	return v & ~(a - 1);
}

/* (the caller checks that it does not overflow) */
static uint64_t align_up(uint64_t v, uint64_t a)
{
	return align_down(v + a - 1, a);
}

/* The reads: the ranges' union in file order, cut into aligned chunks. */
static int make_chunks(uint64_t align, uint64_t chunk, const size_t *idx,
		       struct load_sched *s)
{
	size_t cap = 0, i = 0;

	while (i < s->n_ranges) {
		const struct sched_range *r = &s->ranges[idx[i]];
		uint64_t start = align_down(r->src, align), end = sched_range_src_end(r), off;

		/* an extent: ranges until a gap worth skipping */
		for (i++; i < s->n_ranges; i++) {
			uint64_t next;

			r = &s->ranges[idx[i]];
			next = align_down(r->src, align);
			if (end > UINT64_MAX - align)
				return -EOVERFLOW;
			if (next > align_up(end, align) &&
			    next - align_up(end, align) >= LOAD_SCHED_SKIP)
				break;
			if (sched_range_src_end(r) > end)
				end = sched_range_src_end(r);
		}
		if (end > UINT64_MAX - align)
			return -EOVERFLOW;
		end = align_up(end, align);
		for (off = start; off < end; off += chunk) {
			struct sched_chunk *c;

			if (s->n_chunks == cap) {
				cap = cap ? cap * 2 : 64;
				c = realloc(s->chunks, cap * sizeof(*c));
				if (!c)
					return -ENOMEM;
				s->chunks = c;
			}
			c = &s->chunks[s->n_chunks++];
			*c = (struct sched_chunk){ .off = off,
						   .len = end - off < chunk ? end - off : chunk };
			s->read_bytes += c->len;
		}
	}
	return 0;
}

/*
 * The chunk that holds file offset @off (there is one). @hint: the one
 * that held the offset looked for before, where the search starts: a
 * card's ranges come in region order, which is usually file order too,
 * so that the answer is usually @hint or a chunk or two after it.
 */
static size_t find_chunk(const struct load_sched *s, uint64_t off, size_t hint)
{
	size_t lo = 0, hi = s->n_chunks, step;

	if (hint < s->n_chunks && s->chunks[hint].off <= off) {
		for (step = 0; step < 4; step++, hint++)
			if (hint + 1 == s->n_chunks || s->chunks[hint + 1].off > off)
				return hint;
		lo = hint;
	}

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->chunks[mid].off <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Range @r's parts in the chunks it spans, into @v: the rows wholly in a
 * chunk as one transfer, a row cut by a chunk's end as one transfer in
 * each chunk. *@hint: the chunk of the last part (find_chunk()).
 */
static int range_ops(const struct load_sched *s, const struct sched_range *r,
		     struct op_vec *v, size_t *hint)
{
	uint64_t j = 0, in = 0;	/* the row to move next, and its bytes moved */
	int ret = 0;

	while (j < r->rows && !ret) {
		uint64_t row = r->src + j * r->stride, pos = row + in, cend, n;
		const struct sched_chunk *c;

		if (!s->n_chunks)
			return -EINVAL;
		*hint = find_chunk(s, pos, *hint);
		c = &s->chunks[*hint];
		/* the chunks of an extent tile it (make_chunks()) */
		if (c->off > pos || c->off + c->len <= pos)
			return -EINVAL;
		cend = c->off + c->len;
		if (in || row + r->len > cend) {
			uint64_t stop = row + r->len < cend ? row + r->len : cend;

			ret = op_push(v, *hint, r->card, pos - c->off, r->dst + j * r->len + in,
				      stop - pos, 1, stop - pos);
			in += stop - pos;
			if (in == r->len) {
				j++;
				in = 0;
			}
			continue;
		}
		/* the rows from row j on that end in the chunk */
		n = r->rows - j;
		if (n > 1 && (cend - row - r->len) / r->stride + 1 < n)
			n = (cend - row - r->len) / r->stride + 1;
		ret = op_push(v, *hint, r->card, row - c->off, r->dst + j * r->len, r->len, n,
			      n > 1 ? r->stride : r->len);
		j += n;
	}
	return ret;
}

/* the end of transfer @o in its buffer */
static uint64_t op_buf_end(const struct sched_op *o)
{
	return o->buf_off + (o->rows - 1) * o->stride + o->len;
}

/*
 * Every range's parts in the chunks it spans; then by chunk, card, buffer.
 * @ordered: the ranges are in_file_order().
 */
static int make_ops(struct load_sched *s, bool ordered)
{
	struct op_vec v = { 0 };
	size_t i, out, *order = NULL, hint = 0;
	int ret = 0;

	for (i = 0; i < s->n_ranges && !ret; i++)
		ret = range_ops(s, &s->ranges[i], &v, &hint);
	if (!ret && v.n) {
		order = malloc(v.n * sizeof(*order));
		s->ops = malloc(v.n * sizeof(*s->ops));
		if (!order || !s->ops)
			ret = -ENOMEM;
	}
	if (!ret)
		ret = ordered ? merge_ops(&v, s->n_chunks, order) : sort_ops(&v, order);
	if (ret)
		goto out;
	for (i = 0, out = 0; i < v.n; i++) {
		const struct sched_op *o = &v.op[order[i]];
		size_t ch = v.chunk[order[i]];
		struct sched_chunk *c = &s->chunks[ch];
		struct sched_op *prev = out ? &s->ops[out - 1] : NULL;

		if (!c->n_ops)
			c->first = out;
		if (c->need < op_buf_end(o))
			c->need = op_buf_end(o);
		/* single rows contiguous in the buffer and in the region: one */
		if (prev && c->n_ops && prev->card == o->card && prev->rows == 1 &&
		    o->rows == 1 && prev->buf_off + prev->len == o->buf_off &&
		    prev->dst + prev->len == o->dst) {
			prev->len += o->len;
			prev->stride = prev->len;
			continue;
		}
		s->ops[out++] = *o;
		c->n_ops++;
	}
	s->n_ops = out;
	for (i = 0; i < out; i++)
		s->n_rows += s->ops[i].rows;
	/* a read that a gap read through spans entirely serves nothing: drop it */
	s->read_bytes = 0;
	for (i = 0, out = 0; i < s->n_chunks; i++) {
		if (!s->chunks[i].n_ops)
			continue;
		s->chunks[out++] = s->chunks[i];
		s->read_bytes += s->chunks[i].len;
	}
	s->n_chunks = out;
out:
	free(order);
	free(v.op);
	free(v.chunk);
	return ret;
}

int load_sched_build(const struct shard_plan *p, const bool *load, uint64_t align,
		     uint64_t chunk, uint64_t zero_len, struct load_sched **out)
{
	struct load_sched *s;
	size_t i, *idx = NULL;
	int ret;

	*out = NULL;
	if (!p || !load || !align || (align & (align - 1)) || !chunk || chunk % align ||
	    !zero_len)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	ret = make_ranges(p, load, s);
	if (!ret)
		ret = make_pad(p, load, zero_len, s);
	if (!ret && s->n_ranges) {
		idx = malloc(s->n_ranges * sizeof(*idx));
		if (!idx)
			ret = -ENOMEM;
	}
	if (!ret) {
		for (i = 0; i < s->n_ranges; i++)
			s->bytes += sched_range_bytes(&s->ranges[i]);
		s->merged = !load_sched_always_sort && in_file_order(s);
		if (s->merged)
			ret = merge_by_src(s, idx);
		else
			ret = sort_index_by_src(s->ranges, s->n_ranges, idx);
	}
	if (!ret)
		ret = make_chunks(align, chunk, idx, s);
	if (!ret)
		ret = make_ops(s, s->merged);
	free(idx);
	if (ret) {
		load_sched_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

void load_sched_free(struct load_sched *s)
{
	if (!s)
		return;
	free(s->chunks);
	free(s->ops);
	free(s->pad);
	free(s->ranges);
	free(s->card_range);
	free(s);
}
