/* SPDX-License-Identifier: GPL-2.0 */
/*
 * shard.h - the shard planner: which tensor of a llama-style GGUF model,
 * or which tensor-parallel slice of it, goes where in which card's HBM
 * region (`llmctl shard plan`; the loader walks the same plan).
 *
 * The model. general.architecture "llama" (the table in shard.c lists the
 * architectures with llama's tensor names and block structure), with
 *
 *   <arch>.block_count, .embedding_length, .feed_forward_length,
 *   .attention.head_count                      required, integers >= 1
 *   .attention.head_count_kv                   default head_count
 *   .attention.key_length / .value_length      default embedding_length /
 *                                              head_count (head dims)
 *   .rope.dimension_count                      default key_length
 *
 * and the tensors llama.cpp names, every shape checked against the
 * metadata (GGUF order: ne[0], the contiguous row length, first):
 *
 *   token_embd.weight         [embd, vocab]     vocab taken from it
 *   blk.N.attn_norm.weight    [embd]
 *   blk.N.attn_q.weight       [embd, head_count * key_length]
 *   blk.N.attn_k.weight       [embd, head_count_kv * key_length]
 *   blk.N.attn_v.weight       [embd, head_count_kv * value_length]
 *   blk.N.attn_output.weight  [head_count * value_length, embd]
 *   blk.N.ffn_norm.weight     [embd]
 *   blk.N.ffn_gate.weight     [embd, ff]
 *   blk.N.ffn_up.weight       [embd, ff]
 *   blk.N.ffn_down.weight     [ff, embd]
 *   output_norm.weight        [embd]
 *   output.weight             [embd, vocab]     optional: tied embeddings
 *   rope_freqs.weight         [rope dims / 2]   optional (llama 3.1+)
 *
 * Any other tensor (biases, blk.N beyond block_count, ...) fails the plan,
 * as llama.cpp refuses a model with tensors it does not expect: a plan
 * never silently leaves part of a model behind.
 *
 * The placement. Layers are split into @pp contiguous pipeline stages as
 * evenly as possible, the first (block_count % pp) stages taking one more.
 * Stage s, tensor-parallel rank t runs on card cards[s * tp + t]. Within a
 * stage:
 *  - attn_q/k/v, ffn_gate/up are split by rows (ne[1], outputs): rank t
 *    gets rows [t * n / tp, (t + 1) * n / tp), i.e. head_count / tp query
 *    heads and head_count_kv / tp KV heads; one contiguous source range;
 *  - attn_output, ffn_down are split by columns (ne[0], inputs), matching
 *    the row split of what feeds them; the source is ne[1] pieces, one per
 *    row, each a whole number of quantization blocks (else the plan fails
 *    naming the tensor); on the card the slice is packed row after row,
 *    i.e. it is itself a [cols / tp, ne[1]] tensor;
 *  - the norms are replicated on every rank of their stage;
 *  - stage 0 holds token_embd, whole, on each of its ranks (embedding
 *    lookup happens before layer_first);
 *  - the last stage holds output_norm (replicated) and output.weight split
 *    by rows (vocab-parallel: rank t gets its share of the vocabulary, the
 *    first vocab % tp ranks one token more). Without output.weight the
 *    embeddings are tied: token_embd.weight is placed a second time, split
 *    the same way, with role SHARD_ROLE_OUTPUT (so with pp = 1 a card holds
 *    it whole and its vocabulary slice: the loader addresses each by role);
 *  - rope_freqs, if present, is replicated on every card.
 * On each card the pieces are laid out in this order: rope_freqs,
 * token_embd, the blocks in layer order (the tensors of a block in the
 * order of the table above), output_norm, output; each at the next
 * multiple of the plan's alignment (SHARD_ALIGN by default).
 *
 * Capacity: a card's need is its region size rounded up to
 * SHARD_PAGE_SIZE; when the caller gives its free HBM the need must fit.
 *
 * JSON (shard_plan_print() in JSON mode, built with json-c), schema
 * "llmdev.shard-plan/1". Integers are JSON numbers (64-bit unsigned);
 * strings are UTF-8, each invalid byte becomes U+FFFD; members appear in
 * this order, and later versions of /1 only add members:
 *
 *   {"schema": "llmdev.shard-plan/1",
 *    "model": {"architecture": str, "name": str or null,
 *              "block_count", "embedding_length", "feed_forward_length",
 *              "head_count", "head_count_kv", "key_length", "value_length",
 *              "vocab_size": int, "tied_embeddings": bool,
 *              "tensor_bytes": int (all tensor data in the file)},
 *    "tp": int, "pp": int, "alignment": int (of each piece on a card),
 *    "cards": [ in stage-major, rank-minor order:
 *      {"card": int (the card's index), "stage": int, "tp_rank": int,
 *       "tp_size": int, "layer_first": int, "layer_last": int (inclusive),
 *       "embeddings": bool (holds token_embd: stage 0),
 *       "head": bool (holds output_norm and output: the last stage),
 *       "bytes": int (region size: end of the last piece),
 *       "need_bytes": int (bytes rounded up to 4 KiB),
 *       "free_bytes": int or null (as given; null = unknown),
 *       "data_bytes": int (sum of the pieces' bytes),
 *       "pieces": [
 *         {"tensor": str (name in the file), "index": int (in the file),
 *          "role": str ("token_embd", "attn_norm", "attn_q", "attn_k",
 *                  "attn_v", "attn_output", "ffn_norm", "ffn_gate",
 *                  "ffn_up", "ffn_down", "output_norm", "output",
 *                  "rope_freqs"),
 *          "layer": int or null (not in a block),
 *          "type": str (ggml type name, e.g. "q4_0"),
 *          "kind": "whole" | "rows" | "cols",
 *          "first": int, "count": int (rows: the row range of ne[1];
 *                  cols: the column range of ne[0]; whole: 0 and all
 *                  rows),
 *          "shape": [ne0, ne1] (of the slice as it lies on the card),
 *          "src_offset": int (absolute file offset of the first range),
 *          "src_len": int, "src_stride": int, "src_count": int
 *                  (src_count ranges of src_len bytes, src_stride apart;
 *                   whole and rows: one range, stride = len),
 *          "dst_offset": int (in the card's region), "bytes": int}]}]}
 */
#ifndef LLMDEV_SHARD_H
#define LLMDEV_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gguf.h"

#define SHARD_SCHEMA		"llmdev.shard-plan/1"
#define SHARD_ALIGN		256u	/* default alignment of pieces on a card */
#define SHARD_PAGE_SIZE		4096u	/* a card's need is rounded up to this */
#define SHARD_MAX_CARDS		4096u	/* tp * pp at most */

/* how a piece is cut from its tensor */
enum shard_kind {
	SHARD_WHOLE,	/* the whole tensor */
	SHARD_ROWS,	/* rows [first, first + count) of ne[1]: one range */
	SHARD_COLS,	/* columns [first, first + count) of ne[0]: a range per row */
};

/* what a piece is for; names as in llama.cpp's tensor names */
enum shard_role {
	SHARD_ROLE_TOKEN_EMBD,
	SHARD_ROLE_ATTN_NORM,
	SHARD_ROLE_ATTN_Q,
	SHARD_ROLE_ATTN_K,
	SHARD_ROLE_ATTN_V,
	SHARD_ROLE_ATTN_OUTPUT,
	SHARD_ROLE_FFN_NORM,
	SHARD_ROLE_FFN_GATE,
	SHARD_ROLE_FFN_UP,
	SHARD_ROLE_FFN_DOWN,
	SHARD_ROLE_OUTPUT_NORM,
	SHARD_ROLE_OUTPUT,
	SHARD_ROLE_ROPE_FREQS,
	SHARD_ROLE_COUNT
};

/**
 * struct shard_opts - what to plan for
 * @tp:      tensor-parallel ranks per stage, >= 1
 * @pp:      pipeline stages, 1..block_count
 * @cards:   @n_cards card indexes, distinct; NULL: 0..tp * pp - 1
 * @n_cards: must be tp * pp when @cards is given
 * @free:    free HBM bytes of each card, parallel to @cards (or to the
 *           default 0..tp * pp - 1); 0 = unknown, not checked; NULL: none
 * @align:   alignment of the pieces on a card, a power of two; 0 =
 *           SHARD_ALIGN
 */
struct shard_opts {
	uint32_t tp, pp;
	const uint32_t *cards;
	size_t n_cards;
	const uint64_t *free;
	uint32_t align;
};

/**
 * struct shard_piece - one tensor, or one slice of one, on a card
 * @tensor:     index of the tensor in the file (gguf_tensor())
 * @name:       its name (a copy: the plan outlives the gguf_file)
 * @role:       enum shard_role
 * @layer:      the block, or -1 for a tensor outside the blocks
 * @type:       enum gguf_tensor_type
 * @kind:       enum shard_kind
 * @first:      first row (SHARD_ROWS, SHARD_WHOLE: 0) or column (SHARD_COLS)
 * @count:      rows or columns; SHARD_WHOLE: all rows (ne[1] * ne[2] * ne[3])
 * @ne:         shape of the slice as laid out on the card (ne[0] contiguous)
 * @src_offset: absolute file offset of the first source range
 * @src_len:    bytes of each source range
 * @src_stride: bytes from one source range to the next (= @src_len when
 *              @src_count is 1)
 * @src_count:  source ranges: 1, or ne[1] of the tensor for SHARD_COLS;
 *              they are packed back to back on the card
 * @dst_offset: offset in the card's region, a multiple of the alignment
 * @bytes:      @src_len * @src_count
 */
struct shard_piece {
	size_t tensor;
	char name[GGUF_MAX_NAME_LEN + 1];
	enum shard_role role;
	int32_t layer;
	uint32_t type;
	enum shard_kind kind;
	uint64_t first, count;
	uint64_t ne[2];
	uint64_t src_offset, src_len, src_stride, src_count;
	uint64_t dst_offset;
	uint64_t bytes;
};

/**
 * struct shard_card - one card's share: what the loader copies and what
 * the routing table needs
 * @card:        the card's index (from shard_opts.cards)
 * @stage:       pipeline stage, 0..pp - 1
 * @tp_rank:     rank within the stage, 0..tp - 1
 * @tp_size:     tp
 * @layer_first: first block of the stage
 * @layer_last:  last block of the stage (inclusive)
 * @embeddings:  holds token_embd (stage 0): runs the lookup before
 *               @layer_first
 * @head:        holds output_norm and output (the last stage): runs them
 *               after @layer_last
 * @pieces:      @n_pieces pieces, in region order
 * @n_pieces:    their number
 * @bytes:       region size: the end of the last piece
 * @need:        @bytes rounded up to SHARD_PAGE_SIZE
 * @free:        free HBM bytes as given, 0 if unknown
 * @data_bytes:  sum of the pieces' bytes (@bytes less alignment padding)
 */
struct shard_card {
	uint32_t card;
	uint32_t stage, tp_rank, tp_size;
	uint32_t layer_first, layer_last;
	bool embeddings, head;
	struct shard_piece *pieces;
	size_t n_pieces;
	uint64_t bytes, need, free, data_bytes;
};

/**
 * struct shard_model - the model's shape, as the plan read it
 * @arch:         general.architecture
 * @name:         general.name, or NULL
 * @n_layer:      block_count
 * @n_embd:       embedding_length
 * @n_ff:         feed_forward_length
 * @n_head:       attention.head_count
 * @n_head_kv:    attention.head_count_kv
 * @key_length:   head dimension of queries and keys
 * @value_length: head dimension of values
 * @n_vocab:      rows of token_embd.weight
 * @tied:         no output.weight: the head uses token_embd.weight
 * @tensor_bytes: all tensor data in the file
 */
struct shard_model {
	char *arch;
	char *name;
	uint32_t n_layer, n_embd, n_ff, n_head, n_head_kv;
	uint32_t key_length, value_length;
	uint64_t n_vocab;
	bool tied;
	uint64_t tensor_bytes;
};

/**
 * struct shard_plan - a plan, made by shard_plan_build()
 * @model:   the model
 * @tp:      tensor-parallel ranks per stage
 * @pp:      pipeline stages
 * @align:   alignment of pieces on a card
 * @cards:   tp * pp cards, stage-major: cards[s * tp + t]
 * @n_cards: their number
 */
struct shard_plan {
	struct shard_model model;
	uint32_t tp, pp;
	uint32_t align;
	struct shard_card *cards;
	size_t n_cards;
};

/**
 * shard_plan_build() - plan the placement of a model on tp * pp cards
 * @g:      the model, as gguf_open() accepted it
 * @opts:   tp, pp, the cards and their free HBM
 * @out:    the plan, on success; free it with shard_plan_free()
 * @err:    on failure, one line naming the cause, e.g.
 *          "--tp 3 does not divide llama.attention.head_count_kv 8",
 *          "missing tensor 'blk.7.ffn_up.weight'",
 *          "card 2 (stage 1, tp rank 0) needs 1.5 GiB (1610612736 bytes)
 *          but has 1.0 GiB (1073741824 bytes) free"; may be NULL
 * @errlen: size of @err
 *
 * Reads only the metadata and the tensor infos, never the tensor data.
 *
 * Return: 0; -EINVAL for options that do not fit the model or a model the
 * planner does not support; -ENOSPC if a card's share exceeds its free
 * HBM; -EOVERFLOW if a region's size does not fit in 64 bits; -ENOMEM.
 * On failure *@out is NULL.
 */
int shard_plan_build(const struct gguf_file *g, const struct shard_opts *opts,
		     struct shard_plan **out, char *err, size_t errlen);

/**
 * shard_plan_free() - free a plan
 * @p: the plan, or NULL
 */
void shard_plan_free(struct shard_plan *p);

/**
 * shard_order_cards() - a card order in which every pipeline hop is a link
 * @tp, @pp:   the layout (tp * pp cards)
 * @n:         the cards to choose from: 0 .. @n - 1
 * @linked:    an @n x @n matrix: linked[a * n + b] when card a has a link
 *             that is up to card b
 * @cards:     out: tp * pp cards, stage-major (as shard_opts.cards)
 *
 * Finds the order, lowest card numbers first, in which the card of stage s,
 * rank t is linked to the card of stage s + 1, rank t, so that every stage
 * can send its activations to the next one over a direct link (a routing
 * table entry names the port of its next hop; a card does not forward).
 * With @pp 1 that is 0 .. tp - 1. The search visits at most a million
 * partial orders, ample for a host's cards.
 *
 * Return: 0; -ENOENT if no order was found; -EINVAL if tp * pp is 0 or
 * more than @n or SHARD_MAX_CARDS; -ENOMEM.
 */
int shard_order_cards(uint32_t tp, uint32_t pp, uint32_t n, const bool *linked,
		      uint32_t *cards);

/**
 * shard_plan_print() - print a plan through the print module
 * @p:       the plan
 * @verbose: the text has a line per piece too (the JSON always has them)
 *
 * Text or JSON (the schema above) as print_init() chose
 * (tools/llmctl-print.h); this starts the object, the caller ends it with
 * print_end().
 */
void shard_plan_print(const struct shard_plan *p, bool verbose);

/** shard_kind_name() - Return: "whole", "rows", "cols"; "?" if unknown. */
const char *shard_kind_name(enum shard_kind kind);

/** shard_role_name() - Return: "token_embd", "attn_q", ...; "?" if unknown. */
const char *shard_role_name(enum shard_role role);

/**
 * shard_human_bytes() - format a byte count for people: "512 B", "1.5 GiB"
 * @v:   the bytes
 * @buf: where, at least 16 bytes
 * @len: its size
 *
 * Return: @buf.
 */
const char *shard_human_bytes(uint64_t v, char *buf, size_t len);

#endif /* LLMDEV_SHARD_H */
