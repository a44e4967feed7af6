/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gguf.h - reader of llama.cpp's GGUF model files (versions 2 and 3).
 *
 * gguf_open() reads the header, the metadata and the tensor infos, checks
 * all of it against the file, and keeps it in memory; the tensor data stays
 * in the file (gguf_read_data() reads it in pieces of the caller's size).
 * A file that is malformed, truncated or hostile fails gguf_open() with a
 * one-line message saying what is wrong and where, e.g.
 *
 *   tensor 12 'blk.3.attn_q.weight': data [2097184, +1048576) beyond end of
 *   file (size 2621472)
 *
 * Layout (all little-endian; strings are a u64 length then the bytes, no
 * NUL):
 *
 *   "GGUF", u32 version, u64 tensor_count, u64 metadata_kv_count,
 *   metadata_kv_count x { string key, u32 value_type, value },
 *   tensor_count x { string name, u32 n_dims, u64 dims[n_dims],
 *                    u32 ggml_type, u64 offset },
 *   padding to general.alignment (default 32), tensor data.
 *
 * An array value is a u32 element type, a u64 count, then the elements.
 *
 * What is accepted, beyond the layout (the limits bound what a hostile
 * file can make gguf_open() do; none is close to what real models need):
 *  - version 2 or 3; version 1 (32-bit counts) and big-endian files are
 *    refused with a message saying so;
 *  - at most GGUF_MAX_KV metadata pairs and GGUF_MAX_TENSORS tensors, and
 *    never more than the rest of the file could hold (checked before any
 *    allocation);
 *  - keys: 1..GGUF_MAX_KEY_LEN bytes, no NUL, unique;
 *  - string values: at most GGUF_MAX_STRING_LEN bytes (NULs allowed: use
 *    the length);
 *  - arrays: of any scalar type or of strings; arrays of arrays are
 *    refused, as llama.cpp refuses them;
 *  - bool values are 0 or 1;
 *  - everything gguf_open() allocates is at most GGUF_MAX_MEMORY bytes;
 *  - general.alignment, if present, is a uint32 power of two;
 *  - tensor names: 1..GGUF_MAX_NAME_LEN bytes (ggml's GGML_MAX_NAME less
 *    the NUL), no NUL, unique;
 *  - n_dims 1..GGUF_MAX_DIMS, every dimension >= 1, the element count and
 *    the byte size fit in int64_t, dims[0] a multiple of the type's block
 *    size, a type from the table below (gguf_type_info());
 *  - tensor offsets are multiples of the alignment, tensor data lies
 *    within the file and no two tensors overlap (gaps and any order are
 *    fine; llama.cpp itself writes them back to back, in order).
 *
 * Hosts are little-endian (x86-64, arm64); the reader refuses to build on
 * a big-endian one.
 */
#ifndef LLMDEV_GGUF_H
#define LLMDEV_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GGUF_MAGIC		"GGUF"
#define GGUF_DEFAULT_ALIGNMENT	32
#define GGUF_MAX_DIMS		4

#define GGUF_MAX_KV		(1u << 20)
#define GGUF_MAX_TENSORS	(1u << 20)
#define GGUF_MAX_KEY_LEN	65535u
#define GGUF_MAX_NAME_LEN	63u
#define GGUF_MAX_STRING_LEN	(1u << 20)
#define GGUF_MAX_MEMORY		(256ull << 20)

/* metadata value types, as numbered in the file */
enum gguf_type {
	GGUF_TYPE_UINT8		= 0,
	GGUF_TYPE_INT8		= 1,
	GGUF_TYPE_UINT16	= 2,
	GGUF_TYPE_INT16		= 3,
	GGUF_TYPE_UINT32	= 4,
	GGUF_TYPE_INT32		= 5,
	GGUF_TYPE_FLOAT32	= 6,
	GGUF_TYPE_BOOL		= 7,
	GGUF_TYPE_STRING	= 8,
	GGUF_TYPE_ARRAY		= 9,
	GGUF_TYPE_UINT64	= 10,
	GGUF_TYPE_INT64		= 11,
	GGUF_TYPE_FLOAT64	= 12,
	GGUF_TYPE_COUNT
};

/* tensor types: ggml's enum ggml_type; gaps are types ggml removed */
enum gguf_tensor_type {
	GGUF_TENSOR_F32		= 0,
	GGUF_TENSOR_F16		= 1,
	GGUF_TENSOR_Q4_0	= 2,
	GGUF_TENSOR_Q4_1	= 3,
	GGUF_TENSOR_Q5_0	= 6,
	GGUF_TENSOR_Q5_1	= 7,
	GGUF_TENSOR_Q8_0	= 8,
	GGUF_TENSOR_Q8_1	= 9,
	GGUF_TENSOR_Q2_K	= 10,
	GGUF_TENSOR_Q3_K	= 11,
	GGUF_TENSOR_Q4_K	= 12,
	GGUF_TENSOR_Q5_K	= 13,
	GGUF_TENSOR_Q6_K	= 14,
	GGUF_TENSOR_Q8_K	= 15,
	GGUF_TENSOR_IQ2_XXS	= 16,
	GGUF_TENSOR_IQ2_XS	= 17,
	GGUF_TENSOR_IQ3_XXS	= 18,
	GGUF_TENSOR_IQ1_S	= 19,
	GGUF_TENSOR_IQ4_NL	= 20,
	GGUF_TENSOR_IQ3_S	= 21,
	GGUF_TENSOR_IQ2_S	= 22,
	GGUF_TENSOR_IQ4_XS	= 23,
	GGUF_TENSOR_I8		= 24,
	GGUF_TENSOR_I16		= 25,
	GGUF_TENSOR_I32		= 26,
	GGUF_TENSOR_I64		= 27,
	GGUF_TENSOR_F64		= 28,
	GGUF_TENSOR_IQ1_M	= 29,
	GGUF_TENSOR_BF16	= 30,
	GGUF_TENSOR_TQ1_0	= 34,
	GGUF_TENSOR_TQ2_0	= 35,
	GGUF_TENSOR_MXFP4	= 39,
	GGUF_TENSOR_NVFP4	= 40,
	GGUF_TENSOR_Q1_0	= 41,
	GGUF_TENSOR_TYPE_COUNT
};

/**
 * struct gguf_type_info - storage of one tensor type
 * @name:	ggml's name, e.g. "q4_K"
 * @block_size:	elements per block (1 for plain types)
 * @type_size:	bytes per block
 */
struct gguf_type_info {
	const char *name;
	uint32_t block_size;
	uint32_t type_size;
};

/**
 * struct gguf_str - a string value
 * @len: length in bytes
 * @s:   the bytes, followed by a NUL (not counted in @len)
 */
struct gguf_str {
	uint64_t len;
	const char *s;
};

/**
 * struct gguf_kv - one metadata pair, as read
 * @key:	the key, NUL-terminated
 * @type:	enum gguf_type of the value
 * @elem_type:	arrays: enum gguf_type of the elements; otherwise @type
 * @n:		arrays: number of elements; otherwise 1
 * @v:		the value: @v.u for UINT8/16/32/64 and BOOL, @v.i for INT8..64,
 *		@v.f for FLOAT32/64 (widened), @v.str for STRING, @v.arr for
 *		arrays: @n elements of @elem_type in their file width (uint8_t,
 *		int16_t, float, ...; BOOL as uint8_t), or @n struct gguf_str
 *		for arrays of strings.
 */
struct gguf_kv {
	const char *key;
	uint32_t type;
	uint32_t elem_type;
	uint64_t n;
	union {
		uint64_t u;
		int64_t i;
		double f;
		struct gguf_str str;
		const void *arr;
	} v;
};

/**
 * struct gguf_tensor - one tensor info, checked
 * @name:	the name, NUL-terminated
 * @n_dims:	number of dimensions, 1..GGUF_MAX_DIMS
 * @dims:	dimensions in GGUF (ggml ne[]) order: dims[0] is the length of
 *		a row, the contiguous one; unused ones are 1
 * @type:	enum gguf_tensor_type
 * @n_elements:	product of @dims
 * @offset:	offset of the data within the data section
 * @size:	bytes of data
 * @file_offset: absolute offset of the data in the file
 */
struct gguf_tensor {
	const char *name;
	uint32_t n_dims;
	uint64_t dims[GGUF_MAX_DIMS];
	uint32_t type;
	uint64_t n_elements;
	uint64_t offset;
	uint64_t size;
	uint64_t file_offset;
};

struct gguf_file;

/**
 * gguf_open() - read and check a GGUF file's header, metadata and tensor infos
 * @path:   the file (a regular file or a block device)
 * @out:    the handle, on success
 * @err:    on failure, a one-line message naming the problem and where it
 *          is (without the path; the caller adds it); may be NULL
 * @errlen: size of @err
 *
 * Reads with pread() in bounded chunks; never reads the tensor data.
 *
 * Return: 0, or a negative errno: -EINVAL for a malformed file, -E2BIG for
 * one beyond the limits above, -ENOMEM, or the error of open()/pread().
 */
int gguf_open(const char *path, struct gguf_file **out, char *err, size_t errlen);

/**
 * gguf_close() - close the file and free everything gguf_open() allocated
 * @f: the handle, or NULL
 */
void gguf_close(struct gguf_file *f);

/** gguf_version() - Return: the file's format version (2 or 3). */
uint32_t gguf_version(const struct gguf_file *f);

/** gguf_alignment() - Return: general.alignment, or the default 32. */
uint32_t gguf_alignment(const struct gguf_file *f);

/** gguf_data_offset() - Return: the file offset of the tensor data section. */
uint64_t gguf_data_offset(const struct gguf_file *f);

/** gguf_file_size() - Return: the size of the file in bytes. */
uint64_t gguf_file_size(const struct gguf_file *f);

/**
 * gguf_fd() - the file checked, open (read-only) until gguf_close()
 * @f: the handle
 *
 * Return: its file descriptor: read the data through it (or through
 * /proc/self/fd/N), not through the path, which may name another file by
 * then.
 */
int gguf_fd(const struct gguf_file *f);

/** gguf_kv_count() - Return: the number of metadata pairs. */
size_t gguf_kv_count(const struct gguf_file *f);

/**
 * gguf_kv() - metadata pair by index, in file order
 * Return: the pair, or NULL if @i is out of range.
 */
const struct gguf_kv *gguf_kv(const struct gguf_file *f, size_t i);

/**
 * gguf_find_kv() - metadata pair by key (binary search)
 * Return: the pair, or NULL if there is none.
 */
const struct gguf_kv *gguf_find_kv(const struct gguf_file *f, const char *key);

/*
 * Typed lookups. The value's type must be exactly the one asked for
 * (llama.cpp's loader is as strict): a UINT32 key is not read by
 * gguf_get_u64(). Each returns 0 and stores the value, -ENOENT if there is
 * no such key, or -EINVAL if it has another type.
 */
int gguf_get_u32(const struct gguf_file *f, const char *key, uint32_t *v);
int gguf_get_u64(const struct gguf_file *f, const char *key, uint64_t *v);
int gguf_get_f32(const struct gguf_file *f, const char *key, float *v);
/* @v: NUL-terminated; valid until gguf_close() */
int gguf_get_str(const struct gguf_file *f, const char *key, const char **v);

/**
 * gguf_get_array() - array value by key, with its element type checked
 * @f:         the file
 * @key:       the key
 * @elem_type: the enum gguf_type the elements must have
 * @elems:     the elements (see struct gguf_kv @v.arr); for
 *             GGUF_TYPE_STRING, a const struct gguf_str *
 * @n:         the number of elements
 *
 * Return: 0, -ENOENT if there is no such key, -EINVAL if it is not an
 * array of @elem_type.
 */
int gguf_get_array(const struct gguf_file *f, const char *key,
		   uint32_t elem_type, const void **elems, uint64_t *n);

/** gguf_tensor_count() - Return: the number of tensors. */
size_t gguf_tensor_count(const struct gguf_file *f);

/**
 * gguf_tensor() - tensor by index, in file order
 * Return: the tensor, or NULL if @i is out of range.
 */
const struct gguf_tensor *gguf_tensor(const struct gguf_file *f, size_t i);

/**
 * gguf_find_tensor() - tensor by name (binary search)
 * Return: the tensor, or NULL if there is none.
 */
const struct gguf_tensor *gguf_find_tensor(const struct gguf_file *f,
					   const char *name);

/**
 * gguf_read_data() - read part of a tensor's data
 * @f:   the file
 * @t:   one of @f's tensors
 * @off: offset within the tensor's data
 * @buf: destination
 * @len: bytes wanted
 *
 * Return: the number of bytes read, min(@len, @t->size - @off) (0 at or
 * past the end), or a negative errno (-EIO if the file shrank).
 */
ssize_t gguf_read_data(const struct gguf_file *f, const struct gguf_tensor *t,
		       uint64_t off, void *buf, size_t len);

/**
 * gguf_type_info() - the storage of a tensor type
 * Return: the entry, or NULL for a type number ggml does not define (or
 * no longer supports in files).
 */
const struct gguf_type_info *gguf_type_info(uint32_t type);

/**
 * gguf_type_by_name() - tensor type by ggml name, case-insensitive ("q8_0")
 * Return: the enum gguf_tensor_type, or -1 if there is none.
 */
int gguf_type_by_name(const char *name);

/**
 * gguf_tensor_bytes() - bytes of a tensor of @type with these dimensions
 * @type:   enum gguf_tensor_type
 * @n_dims: 1..GGUF_MAX_DIMS
 * @dims:   each >= 1
 * @n_elements: if not NULL, the product of @dims
 * @size:   the bytes
 *
 * Return: 0; -EINVAL for an unknown type, a bad @n_dims or dimension, or
 * dims[0] not a multiple of the block size; -EOVERFLOW if the element
 * count or the size does not fit in int64_t.
 */
int gguf_tensor_bytes(uint32_t type, uint32_t n_dims, const uint64_t *dims,
		      uint64_t *n_elements, uint64_t *size);

/** gguf_value_type_name() - Return: "uint32", "string", ...; "?" if unknown. */
const char *gguf_value_type_name(uint32_t type);

#endif /* LLMDEV_GGUF_H */
