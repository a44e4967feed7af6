/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gguf-write.h - writing GGUF version 3 files: a streaming writer, and on
 * top of it a generator of llama-shaped test models with random weights
 * (gguf-gen, the host tests and the fuzz seeds use it).
 *
 * The writer keeps the metadata and the tensor infos in memory, writes
 * them when the data begins, and then takes the tensor data in pieces of
 * any size, in tensor order, inserting the alignment padding itself; the
 * data is never held in memory, so files of any size are cheap to write.
 *
 *   gguf_writer_open() -> gguf_writer_add*() ... -> gguf_writer_add_tensor() ...
 *   -> gguf_writer_begin_data() -> gguf_writer_write() ... -> gguf_writer_close()
 *
 * Every function returns 0 or a negative errno and, on failure, writes a
 * one-line message (without the path) into the buffer given to
 * gguf_writer_open(), which must live until gguf_writer_close().
 */
#ifndef LLMDEV_GGUF_WRITE_H
#define LLMDEV_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

struct gguf_writer;

/**
 * gguf_writer_open() - create (or truncate) @path for writing
 * @path:   the file
 * @out:    the writer
 * @err:    message buffer for this and every later call on the writer
 * @errlen: its size
 *
 * Return: 0 or a negative errno.
 */
int gguf_writer_open(const char *path, struct gguf_writer **out,
		     char *err, size_t errlen);

/**
 * gguf_writer_add() - add a scalar or string metadata pair
 * @w:    the writer
 * @key:  the key
 * @type: enum gguf_type, not GGUF_TYPE_ARRAY
 * @val:  the C value: uint8_t ... double of the type's width, uint8_t for
 *        BOOL, a NUL-terminated const char * (not a pointer to one) for
 *        STRING
 *
 * "general.alignment" (UINT32, a power of two) also sets the alignment of
 * the tensor data; add it before any tensor.
 *
 * Return: 0 or a negative errno.
 */
int gguf_writer_add(struct gguf_writer *w, const char *key, uint32_t type,
		    const void *val);

/**
 * gguf_writer_add_array() - add an array metadata pair
 * @w:         the writer
 * @key:       the key
 * @elem_type: enum gguf_type of the elements, not GGUF_TYPE_ARRAY
 * @elems:     @n values of the C type gguf_writer_add() takes, or for
 *             strings @n NUL-terminated const char *
 * @n:         the number of elements
 *
 * Return: 0 or a negative errno.
 */
int gguf_writer_add_array(struct gguf_writer *w, const char *key,
			  uint32_t elem_type, const void *elems, uint64_t n);

/**
 * gguf_writer_add_tensor() - add a tensor info; offsets are assigned in order
 * @w:      the writer
 * @name:   the tensor's name
 * @type:   enum gguf_tensor_type
 * @n_dims: 1..GGUF_MAX_DIMS
 * @dims:   GGUF order (dims[0] is the row length)
 *
 * Return: 0 or a negative errno (-EINVAL for sizes gguf_tensor_bytes()
 * refuses).
 */
int gguf_writer_add_tensor(struct gguf_writer *w, const char *name,
			   uint32_t type, uint32_t n_dims, const uint64_t *dims);

/**
 * gguf_writer_begin_data() - write the header, metadata and tensor infos
 * Return: 0 or a negative errno. No metadata or tensor can be added after.
 */
int gguf_writer_begin_data(struct gguf_writer *w);

/**
 * gguf_writer_write() - write the next @len bytes of tensor data
 * @w:   the writer, after gguf_writer_begin_data()
 * @buf: the bytes; they may span tensors
 * @len: their number
 *
 * Return: 0 or a negative errno (-EINVAL: more than the tensors hold).
 */
int gguf_writer_write(struct gguf_writer *w, const void *buf, size_t len);

/**
 * gguf_writer_close() - finish the file and free the writer
 * @w: the writer, or NULL
 *
 * Writes the header if gguf_writer_begin_data() was not called (a file
 * without tensors).
 *
 * Return: 0, -EINVAL if tensor data is missing, or the error of writing.
 * The file is left in place either way.
 */
int gguf_writer_close(struct gguf_writer *w);

/**
 * struct gguf_llama_params - shape of a llama-architecture test model
 * @layers:   block_count
 * @embd:     embedding_length; a multiple of @heads and of @type's block
 * @heads:    attention.head_count
 * @heads_kv: attention.head_count_kv; divides @heads
 * @ff:       feed_forward_length; a multiple of @type's block
 * @vocab:    tokens, >= 3
 * @ctx:      context_length
 * @type:     of the 2-D weights: F32, F16, Q8_0 or Q4_0 (norms are F32)
 * @seed:     of the random weights; the same seed writes the same file
 * @name:     general.name
 */
struct gguf_llama_params {
	uint32_t layers, embd, heads, heads_kv, ff, vocab, ctx;
	uint32_t type;
	uint64_t seed;
	const char *name;
};

/** GGUF_LLAMA_DEFAULTS - the parameters gguf-gen uses by default */
#define GGUF_LLAMA_DEFAULTS (struct gguf_llama_params){			\
	.layers = 2, .embd = 256, .heads = 8, .heads_kv = 8, .ff = 512,	\
	.vocab = 1024, .ctx = 2048, .type = GGUF_TENSOR_F16, .seed = 1,	\
	.name = "llmdev-test" }

/**
 * gguf_llama_check() - check model parameters
 * Return: 0, or -EINVAL with the reason in @err.
 */
int gguf_llama_check(const struct gguf_llama_params *p, char *err, size_t errlen);

/**
 * gguf_llama_write() - write a llama-shaped GGUF model with random weights
 * @path:   the file
 * @p:      its shape (checked with gguf_llama_check())
 * @err:    message on failure, without the path
 * @errlen: its size
 *
 * The metadata is what llama.cpp's converter writes for
 * general.architecture = llama, the tensors are named and shaped as
 * llama.cpp names them (token_embd, output_norm, output, blk.N.attn_norm,
 * attn_q/k/v/output, ffn_norm, ffn_gate/up/down), and quantized blocks
 * have the ggml layout (an f16 scale, then the quants) with random
 * contents.
 *
 * Return: 0 or a negative errno.
 */
int gguf_llama_write(const char *path, const struct gguf_llama_params *p,
		     char *err, size_t errlen);

#endif /* LLMDEV_GGUF_WRITE_H */
