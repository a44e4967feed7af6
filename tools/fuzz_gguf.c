// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness of the GGUF reader: each input but its last byte is
 * written to a memfd and opened with gguf_open() by its /proc/self/fd
 * path, as a file on disk would be. A refused input must come with a
 * one-line message; an accepted one is walked completely (every value,
 * every lookup, the first and last bytes of every tensor's data) and its
 * invariants checked, so that ASan and UBSan see every byte the reader
 * hands out.
 *
 * The input's last byte is not part of the file: its value % 3 chooses
 * what the reader's O_DIRECT gets (enum direct_mode): refused at open
 * (EINVAL, as from a file system that does not take it: every read goes
 * through the page cache), granted, or granted at open and refused at the
 * first read (the switch to the page cache in the middle of the parse).
 * For that, tools/Makefile builds gguf.c for the fuzzer with its open()
 * and pread() calls renamed to fuzz_gguf_open() and fuzz_gguf_pread()
 * below, so the path the reader takes does not depend on whether this
 * kernel takes O_DIRECT on a memfd (Linux 6.6 and later do): a granted
 * O_DIRECT is the real one where the kernel takes it, else the plain file,
 * and in both cases every read of it must be of an offset, length and
 * buffer aligned to 4096 bytes, as O_DIRECT demands, or the harness
 * aborts. The same build makes the reader's chunks small (READ_CHUNK and
 * DIRECT_CHUNK), so that small inputs refill its buffer many times.
 *
 *   make -C tools O=... fuzz; $(O)/fuzz/fuzz_gguf [libFuzzer options] CORPUS...
 *
 * With FUZZ_GGUF_REPORT=1 in the environment, each input prints one line
 * to stderr: "fuzz_gguf: accepted ..." or "fuzz_gguf: refused ...", with
 * the O_DIRECT mode and the reads made (how the smoke test checks that its
 * seeds parse). $(O)/host-tests/gguf_fuzz_smoke runs it briefly on seeds
 * from gguf-gen.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include "gguf.h"

#define REQUIRE(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_gguf: %s:%d: %s\n", __FILE__, __LINE__, #cond); abort(); } } while (0)

#define DIRECT_ALIGN	4096u	/* gguf.c's: O_DIRECT's offset, length, memory */

static volatile uint64_t sink;

/* ---- O_DIRECT as the input's last byte says ------------------------------ */

enum direct_mode {
	DIRECT_REFUSED,		/* open with O_DIRECT: EINVAL */
	DIRECT_GRANTED,
	DIRECT_READ_REFUSED,	/* opens, the first read of it: EINVAL */
	DIRECT_MODES
};

static const char *const direct_name[] = {
	[DIRECT_REFUSED] = "O_DIRECT refused",
	[DIRECT_GRANTED] = "O_DIRECT granted",
	[DIRECT_READ_REFUSED] = "O_DIRECT reads refused",
};

/* this input's: the mode, the O_DIRECT descriptor (-1: none), the reads */
static enum direct_mode direct_mode;
static int direct_fd = -1;
static unsigned long direct_reads, plain_reads;

int fuzz_gguf_open(const char *path, int flags, ...);
ssize_t fuzz_gguf_pread(int fd, void *buf, size_t len, off_t off);

/* gguf.c's open() */
int fuzz_gguf_open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	int fd;

	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_list ap;

		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (!(flags & O_DIRECT))
		return open(path, flags, mode);
	if (direct_mode == DIRECT_REFUSED) {
		errno = EINVAL;
		return -1;
	}
	fd = open(path, flags, mode);
	if (fd < 0 && errno == EINVAL)	/* this kernel's memfd: no O_DIRECT */
		fd = open(path, flags & ~O_DIRECT, mode);
	REQUIRE(fd >= 0);
	direct_fd = fd;
	return fd;
}

/* gguf.c's pread() */
ssize_t fuzz_gguf_pread(int fd, void *buf, size_t len, off_t off)
{
	if (fd >= 0 && fd == direct_fd) {
		REQUIRE(off >= 0 && off % DIRECT_ALIGN == 0);
		REQUIRE(len % DIRECT_ALIGN == 0);
		REQUIRE((uintptr_t)buf % DIRECT_ALIGN == 0);
		if (direct_mode == DIRECT_READ_REFUSED) {
			errno = EINVAL;
			return -1;
		}
		direct_reads++;
	} else {
		plain_reads++;
	}
	return pread(fd, buf, len, off);
}

static void touch(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += b[i];
	sink += s;
}

static size_t elem_size(uint32_t type)
{
	switch (type) {
	case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
	case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
	case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
	default: return 8;
	}
}

static void walk_kv(const struct gguf_file *f, const struct gguf_kv *kv)
{
	const void *elems;
	uint64_t n;

	REQUIRE(kv->key[0] && gguf_find_kv(f, kv->key) == kv);
	REQUIRE(kv->type < GGUF_TYPE_COUNT && kv->elem_type < GGUF_TYPE_COUNT);
	if (kv->type == GGUF_TYPE_STRING) {
		REQUIRE(kv->v.str.s[kv->v.str.len] == '\0');
		touch(kv->v.str.s, kv->v.str.len);
	} else if (kv->type == GGUF_TYPE_ARRAY) {
		REQUIRE(kv->elem_type != GGUF_TYPE_ARRAY);
		REQUIRE(!gguf_get_array(f, kv->key, kv->elem_type, &elems, &n));
		REQUIRE(elems == kv->v.arr && n == kv->n);
		if (kv->elem_type != GGUF_TYPE_STRING) {
			touch(elems, n * elem_size(kv->elem_type));
			return;
		}
		for (uint64_t i = 0; i < n; i++) {
			const struct gguf_str *s = (const struct gguf_str *)elems + i;

			REQUIRE(s->s[s->len] == '\0');
			touch(s->s, s->len);
		}
	} else {
		REQUIRE(kv->n == 1 && kv->elem_type == kv->type);
		sink += kv->v.u;
	}
}

static void walk_tensor(const struct gguf_file *f, const struct gguf_tensor *t)
{
	uint64_t n, size;
	uint8_t buf[64];
	ssize_t r;

	REQUIRE(gguf_find_tensor(f, t->name) == t);
	REQUIRE(gguf_type_info(t->type));
	REQUIRE(!gguf_tensor_bytes(t->type, t->n_dims, t->dims, &n, &size));
	REQUIRE(n == t->n_elements && size == t->size && size > 0);
	REQUIRE(t->offset % gguf_alignment(f) == 0);
	REQUIRE(t->file_offset == gguf_data_offset(f) + t->offset);
	REQUIRE(t->file_offset + t->size <= gguf_file_size(f));
	r = gguf_read_data(f, t, 0, buf, sizeof(buf));
	REQUIRE(r == (ssize_t)(t->size < sizeof(buf) ? t->size : sizeof(buf)));
	touch(buf, r);
	r = gguf_read_data(f, t, t->size - 1, buf, sizeof(buf));
	REQUIRE(r == 1);
	REQUIRE(gguf_read_data(f, t, t->size, buf, sizeof(buf)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1, report = -1;
	static char path[64];
	struct gguf_file *f;
	char err[512];
	const void *elems;
	const char *s;
	uint32_t u32;
	uint64_t n;
	size_t done = 0;
	int ret;

	if (fd < 0) {
		const char *r = getenv("FUZZ_GGUF_REPORT");

		fd = memfd_create("fuzz_gguf", MFD_CLOEXEC);
		REQUIRE(fd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		report = r && *r && strcmp(r, "0");
	}
	/* the last byte: how O_DIRECT goes; the file is the rest */
	direct_mode = size ? data[size - 1] % DIRECT_MODES : DIRECT_REFUSED;
	if (size)
		size--;
	direct_fd = -1;
	direct_reads = plain_reads = 0;
	REQUIRE(!ftruncate(fd, 0));
	while (done < size) {
		ssize_t w = pwrite(fd, data + done, size - done, done);

		REQUIRE(w > 0);
		done += w;
	}

	ret = gguf_open(path, &f, err, sizeof(err));
	/* its O_DIRECT descriptor is closed: the number may come back */
	direct_fd = -1;
	if (ret) {
		REQUIRE(err[0] && !strchr(err, '\n'));
		if (report)
			fprintf(stderr, "fuzz_gguf: refused (%zu bytes, %s; %lu O_DIRECT and "
				"%lu other reads): %s\n", size, direct_name[direct_mode],
				direct_reads, plain_reads, err);
		return 0;
	}
	if (report)
		fprintf(stderr, "fuzz_gguf: accepted (%zu bytes, %s; %lu O_DIRECT and %lu "
			"other reads): GGUF v%u, %zu keys, %zu tensors, data at %llu\n", size,
			direct_name[direct_mode], direct_reads, plain_reads, gguf_version(f),
			gguf_kv_count(f), gguf_tensor_count(f),
			(unsigned long long)gguf_data_offset(f));
	REQUIRE(gguf_version(f) == 2 || gguf_version(f) == 3);
	REQUIRE(gguf_data_offset(f) % gguf_alignment(f) == 0);
	for (size_t i = 0; i < gguf_kv_count(f); i++)
		walk_kv(f, gguf_kv(f, i));
	for (size_t i = 0; i < gguf_tensor_count(f); i++)
		walk_tensor(f, gguf_tensor(f, i));
	REQUIRE(!gguf_kv(f, gguf_kv_count(f)) && !gguf_tensor(f, gguf_tensor_count(f)));
	/* the lookups llmctl makes */
	if (!gguf_get_str(f, "general.architecture", &s))
		touch(s, strlen(s));
	if (!gguf_get_u32(f, "llama.block_count", &u32))
		sink += u32;
	if (!gguf_get_array(f, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, &elems, &n))
		sink += n;
	gguf_close(f);
	return 0;
}
