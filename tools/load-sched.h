/* SPDX-License-Identifier: GPL-2.0 */
/*
 * load-sched.h - the schedule of `llmctl load`: which reads of the model
 * file fill the staging buffers, and which transfers take each card's
 * bytes from a staging buffer to the card (tools/llmctl-load.c runs it).
 *
 * A plan (shard.h) says, for every card, which byte ranges of the file go
 * where in the card's region: a piece is @src_count rows of @src_len
 * bytes, @src_stride apart in the file and packed in the region (one row
 * for whole tensors and row slices, a row per matrix row for column
 * slices). The schedule keeps a piece's rows together as one strided
 * range, and a strided range's part in a read as one strided transfer,
 * so that its size grows with the pieces and reads, not with the rows
 * (a 70B model cut in 8 column slices has about 10 million rows). The
 * schedule is:
 *
 *  - reads ("chunks"): the file is read in ascending order, in chunks of
 *    at most @chunk bytes whose offset and length are multiples of @align
 *    (what O_DIRECT needs), each chunk into one staging buffer. Chunks do
 *    not overlap, so each byte of the file is read at most once however
 *    many cards need it; a stretch of the file that no card needs and is
 *    at least LOAD_SCHED_SKIP bytes long is not read at all (shorter ones
 *    are read through: a separate read costs more).
 *  - transfers ("ops"): for each chunk, each card's ranges that lie in it,
 *    as (offset in the staging buffer, offset in the region, length,
 *    rows, stride). A range that straddles two chunks is split there: the
 *    rows wholly in a chunk are one transfer, a row cut by the chunk's end
 *    is two transfers of one row each. A card's transfers
 *    of one chunk are adjacent in the array, in buffer order, so that one
 *    batch (LLMDEV_DMA_BATCH) per card and chunk moves them: a column
 *    slice is gathered by the card's DMA, not by the CPU.
 *  - zero padding: the bytes of each region below its size (shard_card
 *    .bytes) that no piece covers (the alignment between pieces), as
 *    transfers from a zero buffer of @zero_len bytes.
 *
 * The chunk a byte is read in depends only on the file offsets the plan
 * uses, so the schedule of a card's share is the same whichever other
 * cards are loaded with it.
 */
#ifndef LLMDEV_LOAD_SCHED_H
#define LLMDEV_LOAD_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shard.h"

/* gaps in what the cards need at least this long are not read */
#define LOAD_SCHED_SKIP		(1u << 20)

/**
 * struct sched_op - one transfer to a card: @rows rows of @len bytes, row
 * r at @buf_off + r * @stride in the buffer and at @dst + r * @len in the
 * region (what LLMDEV_OP_ROWS moves in one transfer)
 * @card:    index in plan->cards
 * @buf_off: byte offset of the first row in the chunk's staging buffer (in
 *           the zero buffer for padding: 0)
 * @dst:     byte offset in the card's region
 * @len:     bytes of each row, > 0
 * @rows:    rows, >= 1
 * @stride:  from one row's start to the next one's in the buffer: > @len
 *           when @rows > 1, @len when @rows is 1
 */
struct sched_op {
	uint32_t card;
	uint64_t buf_off;
	uint64_t dst;
	uint64_t len;
	uint64_t rows;
	uint64_t stride;
};

/**
 * struct sched_chunk - one read of the file
 * @off:   file offset, a multiple of the alignment
 * @len:   bytes to read, a multiple of the alignment (the last chunk may
 *         reach beyond the end of the file: the read is short there)
 * @need:  bytes from @off that the chunk's transfers use: a read that
 *         returns fewer means the file is shorter than the plan says
 * @first: index of its first transfer in load_sched.ops
 * @n_ops: its transfers, grouped by card (ascending), each card's in
 *         buffer order
 */
struct sched_chunk {
	uint64_t off, len, need;
	size_t first, n_ops;
};

/**
 * struct sched_range - one range of the plan: @rows rows of @len bytes,
 * row r at file offset @src + r * @stride, go to offset @dst + r * @len of
 * card @card's region. @stride is @len when @rows is 1, and above @len
 * and below @len + LOAD_SCHED_SKIP when @rows > 1. A piece whose rows
 * touch in the file is one range of one row; one whose rows overlap in
 * the file, or are LOAD_SCHED_SKIP or more apart (the gaps between them
 * are not read), is a range per row.
 */
struct sched_range {
	uint32_t card;
	uint64_t src, dst, len, rows, stride;
};

/* the bytes of range @r in the region (from @r->dst) */
static inline uint64_t sched_range_bytes(const struct sched_range *r)
{
	return r->rows * r->len;
}

/* the end of range @r in the file: one past its last row's last byte */
static inline uint64_t sched_range_src_end(const struct sched_range *r)
{
	return r->src + (r->rows - 1) * r->stride + r->len;
}

/*
 * The file offset of region offset @dst, which range @r covers; and in
 * *@n the bytes from there that are contiguous in both (to the row's end).
 */
static inline uint64_t sched_range_src(const struct sched_range *r, uint64_t dst,
				       uint64_t *n)
{
	uint64_t row = (dst - r->dst) / r->len, in = (dst - r->dst) % r->len;

	*n = r->len - in;
	return r->src + row * r->stride + in;
}

/**
 * struct load_sched - a schedule, made by load_sched_build()
 * @chunks:     the reads, in file order
 * @n_chunks:   their number
 * @ops:        the transfers of every chunk, chunk after chunk
 * @n_ops:      their number
 * @pad:        zero padding, by card, each in region order
 * @n_pad:      its transfers
 * @ranges:     the plan's ranges of the cards loaded, by card and in
 *              region order (what --verify compares with the file), with
 *              adjacent ranges merged
 * @n_ranges:   their number
 * @card_range: n_cards + 1 indexes: card i's ranges are
 *              ranges[card_range[i] .. card_range[i + 1])
 * @bytes:      the bytes the transfers from the file move, all cards
 * @n_rows:     the rows of the transfers from the file (of the ops), all
 *              cards: how many transfers a driver without LLMDEV_OP_ROWS
 *              takes
 * @read_bytes: the bytes the chunks read (the sum of their @len)
 * @merged:     each card's ranges were in file order, apart, so that the
 *              schedule was merged from the cards' rather than sorted
 *              (the same schedule, made faster; the tests check both ways)
 */
struct load_sched {
	struct sched_chunk *chunks;
	size_t n_chunks;
	struct sched_op *ops;
	size_t n_ops;
	struct sched_op *pad;
	size_t n_pad;
	struct sched_range *ranges;
	size_t n_ranges;
	size_t *card_range;
	uint64_t bytes, read_bytes, n_rows;
	bool merged;
};

/*
 * For the tests: when true, load_sched_build() sorts even ranges it could
 * merge (@merged stays false), to check the merge against the sort.
 */
extern bool load_sched_always_sort;

/**
 * load_sched_build() - make the schedule of loading some cards of a plan
 * @p:        the plan
 * @load:     p->n_cards flags: which cards to load (the others get no
 *            transfers and no ranges)
 * @align:    of the chunks' offsets and lengths, a power of two
 * @chunk:    the most a chunk reads (the staging buffer's size), a
 *            multiple of @align
 * @zero_len: size of the zero buffer padding comes from, > 0
 * @out:      the schedule; free it with load_sched_free()
 *
 * Return: 0; -EINVAL bad arguments, or a plan whose ranges of one card
 * overlap or reach beyond the card's bytes; -EOVERFLOW a range beyond
 * 2^64 (in the file or the region); -ENOMEM.
 */
int load_sched_build(const struct shard_plan *p, const bool *load, uint64_t align,
		     uint64_t chunk, uint64_t zero_len, struct load_sched **out);

/** load_sched_free() - free a schedule (NULL is fine) */
void load_sched_free(struct load_sched *s);

#endif /* LLMDEV_LOAD_SCHED_H */
