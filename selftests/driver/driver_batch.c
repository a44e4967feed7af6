// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev driver: registered host buffers (LLMDEV_BUF_REGISTER) and batched
 * DMA (LLMDEV_DMA_BATCH): data integrity at many sizes and shapes, the
 * checks and what a bad transfer does to its batch (nothing moves),
 * submit-and-wait, limits (RLIMIT_MEMLOCK, LLMDEV_MAX_BUFS, the bytes of
 * plain memory in a batch), unregister
 * while busy, fork and close with buffers registered and transfers in
 * flight, polling against a stalled ring, the quiet (no interrupt)
 * submit-and-wait of a small transfer, and transfers of rows
 * (LLMDEV_OP_ROWS).
 */
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <sys/resource.h>

#include "driver_util.h"
#include "kselftest_harness.h"

#define REGION		(8 * LD_MIB)
#define BUFLEN		(8 * LD_MIB)

static int buf_register(int fd, void *addr, uint64_t len, uint32_t flags,
			uint32_t *buf)
{
	struct llmdev_buf_register r = {
		.size = sizeof(r), .flags = flags,
		.user_addr = (uintptr_t)addr, .length = len,
	};
	int ret = ld_ioctl(fd, LLMDEV_BUF_REGISTER, &r);

	if (!ret && buf)
		*buf = r.buf;
	return ret;
}

static int buf_unregister(int fd, uint32_t buf)
{
	struct llmdev_buf_unregister u = { .size = sizeof(u), .buf = buf };

	return ld_ioctl(fd, LLMDEV_BUF_UNREGISTER, &u);
}

/*
 * A batch; 0 or the errno. With @wait, *@status gets the batch's status;
 * *@bad the error_index.
 */
static int batch(int fd, const struct llmdev_dma_op *ops, uint32_t n,
		 bool wait, uint64_t timeout_ns, uint64_t *fence, int *status,
		 uint32_t *bad)
{
	struct llmdev_dma_batch b = {
		.size = sizeof(b), .flags = wait ? LLMDEV_BATCH_WAIT : 0,
		.count = n, .op_size = sizeof(*ops), .ops = (uintptr_t)ops,
		.timeout_ns = timeout_ns,
	};
	int ret = ld_ioctl(fd, LLMDEV_DMA_BATCH, &b);

	if (fence)
		*fence = b.fence;
	if (status)
		*status = b.status;
	if (bad)
		*bad = b.error_index;
	return ret;
}

/* Queue and wait; the ioctl's error or the batch's status. */
static int batch_sync(int fd, const struct llmdev_dma_op *ops, uint32_t n)
{
	int ret, status = 0;

	ret = batch(fd, ops, n, true, LD_LONG_WAIT, NULL, &status, NULL);
	return ret ? ret : status;
}

static struct llmdev_dma_op op_buf(bool to_card, uint32_t handle, uint64_t off,
				   uint32_t buf, uint64_t boff, uint64_t len)
{
	return (struct llmdev_dma_op){
		.flags = (to_card ? LLMDEV_OP_TO_CARD : 0) | LLMDEV_OP_BUF,
		.handle = handle, .offset = off, .length = len,
		.buf = buf, .buf_offset = boff,
	};
}

static struct llmdev_dma_op op_user(bool to_card, uint32_t handle, uint64_t off,
				    void *p, uint64_t len)
{
	return (struct llmdev_dma_op){
		.flags = to_card ? LLMDEV_OP_TO_CARD : 0,
		.handle = handle, .offset = off, .length = len,
		.user_addr = (uintptr_t)p,
	};
}

static long vmlck_kb(void)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

FIXTURE(batch) {
	int kmsg;
	int fd;
	struct llmdev_info info;
	uint32_t handle;	/* REGION of HBM */
	uint8_t *mem;		/* BUFLEN + 2 pages, page aligned */
	uint8_t *chk;		/* BUFLEN, for reading back */
	uint64_t used0;
};

FIXTURE_SETUP(batch)
{
	struct llmdev_hbm_alloc a;

	LD_FIXTURE_START();
	LD_FIXTURE_OPEN_CARD0();
	self->used0 = self->info.hbm_used;
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, REGION, 0, 0, NULL, &a));
	self->handle = a.handle;
	self->mem = ld_alloc_buf(BUFLEN + 2 * LD_PAGE);
	self->chk = ld_alloc_buf(BUFLEN);
	ASSERT_NE(NULL, self->mem);
	ASSERT_NE(NULL, self->chk);
}

FIXTURE_TEARDOWN(batch)
{
	if (self->fd >= 0)
		close(self->fd);
	ld_free_buf(self->mem, BUFLEN + 2 * LD_PAGE);
	ld_free_buf(self->chk, BUFLEN);
	LD_EXPECT_NO_KERNEL_REPORTS(self->kmsg);
}

/* Read the whole region back into self->chk, plainly. */
static int read_region(FIXTURE_DATA(batch) *self)
{
	return ld_xfer(self->fd, self->handle, 0, self->chk, REGION, false,
		       LLMDEV_RING_ANY);
}

TEST_F(batch, register_and_unregister)
{
	long lck0 = vmlck_kb();
	uint32_t b1, b2;

	SETUP_OR_SKIP();
	ASSERT_EQ(0, buf_register(self->fd, self->mem, BUFLEN, 0, &b1));
	EXPECT_NE(0, b1);
	/* pinned memory is counted as locked (RLIMIT_MEMLOCK) */
	EXPECT_EQ(lck0 + (long)(BUFLEN / 1024), vmlck_kb());
	/* any alignment: a buffer starting inside a page */
	ASSERT_EQ(0, buf_register(self->fd, self->mem + 123, 5000,
				  LLMDEV_BUF_READ_ONLY, &b2));
	EXPECT_NE(b1, b2);
	EXPECT_EQ(lck0 + (long)(BUFLEN / 1024) + 8, vmlck_kb());
	EXPECT_EQ(0, buf_unregister(self->fd, b1));
	EXPECT_EQ(-ENOENT, buf_unregister(self->fd, b1));
	EXPECT_EQ(0, buf_unregister(self->fd, b2));
	EXPECT_EQ(lck0, vmlck_kb());
	EXPECT_EQ(-ENOENT, buf_unregister(self->fd, 0));
	EXPECT_EQ(-ENOENT, buf_unregister(self->fd, 12345));
}

TEST_F(batch, register_errors)
{
	uint8_t *ro = mmap(NULL, LD_PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	uint8_t *none = mmap(NULL, LD_PAGE, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct llmdev_buf_register r = { .size = sizeof(r) };
	struct llmdev_hbm_alloc a;
	void *ap;
	uint32_t b;

	SETUP_OR_SKIP();
	ASSERT_NE(MAP_FAILED, ro);
	ASSERT_NE(MAP_FAILED, none);
	EXPECT_EQ(-EINVAL, buf_register(self->fd, self->mem, 0, 0, &b));
	EXPECT_EQ(-EINVAL, buf_register(self->fd, self->mem,
					LLMDEV_BUF_MAX_LENGTH + 1, 0, &b));
	EXPECT_EQ(-EINVAL, buf_register(self->fd, self->mem, 4096, 2, &b));
	EXPECT_EQ(-EINVAL, buf_register(self->fd, (void *)~0xfffUL, 8192, 0, &b));
	r.user_addr = (uintptr_t)self->mem;
	r.length = 4096;
	r.__reserved = 1;
	EXPECT_EQ(-EINVAL, ld_ioctl(self->fd, LLMDEV_BUF_REGISTER, &r));
	EXPECT_EQ(-EFAULT, buf_register(self->fd, none, LD_PAGE, 0, &b));
	EXPECT_EQ(-EFAULT, buf_register(self->fd, NULL, LD_PAGE, 0, &b));
	/* read-only memory: only as a read-only buffer */
	EXPECT_EQ(-EFAULT, buf_register(self->fd, ro, LD_PAGE, 0, &b));
	ASSERT_EQ(0, buf_register(self->fd, ro, LD_PAGE, LLMDEV_BUF_READ_ONLY, &b));
	EXPECT_EQ(0, buf_unregister(self->fd, b));
	/* the card's own aperture cannot be pinned */
	ASSERT_EQ(0, ld_hbm_alloc(self->fd, 8192, 0, 0, NULL, &a));
	ap = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, self->fd,
		  a.mmap_offset);
	ASSERT_NE(MAP_FAILED, ap);
	EXPECT_EQ(-EFAULT, buf_register(self->fd, ap, 8192, 0, &b));
	munmap(ap, 8192);
	ld_hbm_free(self->fd, a.handle);
	munmap(ro, LD_PAGE);
	munmap(none, LD_PAGE);
}

/*
 * LLMDEV_MAX_BUFS per file, then -EMFILE; another file has its own. (Read
 * only: a page may be in only LLMDEV_BUF_MAX_SHARE writable buffers.)
 */
TEST_F(batch, max_buffers)
{
	long lck0 = vmlck_kb(), lck;
	unsigned int i;
	uint32_t b;
	int fd2, ret = 0;

	SETUP_OR_SKIP();
	ASSERT_LE(0, lck0);
	for (i = 0; i < LLMDEV_MAX_BUFS; i++) {
		ret = buf_register(self->fd, self->mem + (i % 64) * 64, 64,
				   LLMDEV_BUF_READ_ONLY, &b);
		if (ret)
			break;
	}
	EXPECT_EQ(0, ret) TH_LOG("registration %u: %d", i, ret);
	EXPECT_EQ(-EMFILE, buf_register(self->fd, self->mem, 64,
					LLMDEV_BUF_READ_ONLY, &b));
	fd2 = ld_open(0);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(0, buf_register(fd2, self->mem, 64, LLMDEV_BUF_READ_ONLY, &b));
	close(fd2);
	/* one page each, counted as locked (the same page every time) */
	EXPECT_EQ(lck0 + (long)(LLMDEV_MAX_BUFS * (LD_PAGE / 1024)),
		  vmlck_kb());
	/* closing the file unregisters them all: nothing stays locked */
	close(self->fd);
	self->fd = -1;
	for (i = 0; i < 200 && (lck = vmlck_kb()) != lck0; i++)
		ld_msleep(10);
	EXPECT_EQ(lck0, lck) TH_LOG("VmLck %ld kB after close, %ld before",
				    lck, lck0);
}

/* A page in LLMDEV_BUF_MAX_SHARE writable buffers, of any file: -EBUSY. */
TEST_F(batch, writable_share_limit)
{
	uint32_t b[LLMDEV_BUF_MAX_SHARE + 1], ro;
	unsigned int i;
	int fd2;

	SETUP_OR_SKIP();
	fd2 = ld_open(1 % ld_num_cards());
	ASSERT_LE(0, fd2);
	for (i = 0; i < LLMDEV_BUF_MAX_SHARE; i++)
		ASSERT_EQ(0, buf_register(i & 1 ? fd2 : self->fd,
					  self->mem + 100 * i, 8192, 0, &b[i]));
	/* one page more: shares the first page with all of them */
	EXPECT_EQ(-EBUSY, buf_register(self->fd, self->mem + 4000, 200, 0, &b[i]));
	/* a page none of them reaches is fine; read-only always is */
	EXPECT_EQ(0, buf_register(self->fd, self->mem + 4 * LD_PAGE, 100, 0, &b[i]));
	EXPECT_EQ(0, buf_unregister(self->fd, b[i]));
	EXPECT_EQ(0, buf_register(self->fd, self->mem, 8192, LLMDEV_BUF_READ_ONLY,
				  &ro));
	/* when one goes, another may come */
	EXPECT_EQ(0, buf_unregister(self->fd, b[0]));
	EXPECT_EQ(0, buf_register(self->fd, self->mem + 4000, 200, 0, &b[0]));
	close(fd2);
}

/* As nobody, RLIMIT_MEMLOCK bounds what can be registered. */
TEST_F(batch, memlock_limit)
{
	pid_t pid;

	SETUP_OR_SKIP();
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct rlimit rl = { 64 * 1024, 64 * 1024 };
		uint32_t b;
		int fd;

		if (setrlimit(RLIMIT_MEMLOCK, &rl) || ld_drop_privs())
			_exit(10);
		fd = ld_open(0);
		if (fd < 0)
			_exit(11);
		if (buf_register(fd, self->mem, 32 * 1024, 0, &b))
			_exit(12);
		if (buf_register(fd, self->mem, 64 * 1024, 0, &b) != -ENOMEM)
			_exit(13);
		if (buf_unregister(fd, 1) && buf_unregister(fd, b))
			_exit(14);
		_exit(0);
	}
	EXPECT_EQ(0, ld_wait_child(pid));
}

/*
 * The limit is the user's, not the address space's: a process of the
 * same user with an mm of its own (a fork, or an execve() of a process
 * that kept the card open) has no fresh allowance.
 */
TEST_F(batch, memlock_limit_is_per_user)
{
	pid_t pid;

	SETUP_OR_SKIP();
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct rlimit rl = { 64 * 1024, 64 * 1024 };
		uint32_t b, b2;
		pid_t child;
		int fd, ret;

		if (setrlimit(RLIMIT_MEMLOCK, &rl) || ld_drop_privs())
			_exit(10);
		fd = ld_open(0);
		if (fd < 0)
			_exit(11);
		if (buf_register(fd, self->mem, 48 * 1024, 0, &b))
			_exit(12);
		child = fork();
		if (child < 0)
			_exit(13);
		if (!child) {
			int fd2 = ld_open(0);

			if (fd2 < 0)
				_exit(21);
			/* a new mm: its locked_vm is 0, the user's is not */
			if (buf_register(fd2, self->mem, 48 * 1024, 0, &b2) != -ENOMEM)
				_exit(22);
			if (buf_register(fd2, self->mem, 16 * 1024, 0, &b2))
				_exit(23);
			_exit(0);
		}
		ret = ld_wait_child(child);
		if (ret)
			_exit(ret);
		/* the grandchild's buffer went with its file */
		if (buf_unregister(fd, b))
			_exit(15);
		if (buf_register(fd, self->mem, 64 * 1024, 0, &b))
			_exit(16);
		_exit(0);
	}
	EXPECT_EQ(0, ld_wait_child(pid));
}

/*
 * Many shapes: transfers of odd lengths at odd offsets of an unaligned
 * buffer, straddling pages, through registered and plain memory, both
 * directions; every byte checked, and the bytes around what was written
 * untouched.
 */
TEST_F(batch, data_integrity_shapes)
{
	static const uint64_t lens[] = {
		1, 2, 3, 7, 511, 4095, 4096, 4097, 8191, 12289, 65536, 65537,
		1048575, 1048576 + 13,
	};
	const unsigned int n = sizeof(lens) / sizeof(lens[0]);
	struct llmdev_dma_op ops[2 * 14];
	uint8_t *base = self->mem + 777;	/* unaligned */
	uint64_t off = 0, boff = 0;
	uint32_t b;
	unsigned int i, round;

	SETUP_OR_SKIP();
	ASSERT_EQ(n, 14);
	ASSERT_EQ(0, buf_register(self->fd, base, BUFLEN, 0, &b));
	for (round = 0; round < 2; round++) {
		bool reg = round == 0;

		ld_fill(base, BUFLEN, 100 + round);
		/* out: to the card, each transfer to a range of its own */
		for (i = 0, off = 3, boff = 5; i < n; i++) {
			ops[i] = reg ? op_buf(true, self->handle, off, b, boff, lens[i]) :
				       op_user(true, self->handle, off, base + boff, lens[i]);
			off += lens[i] + 4099;
			boff += lens[i] + 1;
		}
		ASSERT_LE(off, REGION);
		ASSERT_EQ(0, batch_sync(self->fd, ops, n));
		ASSERT_EQ(0, read_region(self));
		for (i = 0, off = 3, boff = 5; i < n; i++) {
			EXPECT_EQ(-1, ld_cmp(base + boff, self->chk + off, lens[i]))
				TH_LOG("%s to card: length %llu", reg ? "registered" : "plain",
				       (unsigned long long)lens[i]);
			off += lens[i] + 4099;
			boff += lens[i] + 1;
		}
		/* back: from the card into zeroed memory with canaries */
		memset(base, 0xc5, BUFLEN);
		for (i = 0, off = 3, boff = 5; i < n; i++) {
			ops[i] = reg ? op_buf(false, self->handle, off, b, boff, lens[i]) :
				       op_user(false, self->handle, off, base + boff, lens[i]);
			off += lens[i] + 4099;
			boff += lens[i] + 1;
		}
		ASSERT_EQ(0, batch_sync(self->fd, ops, n));
		for (i = 0, off = 3, boff = 5; i < n; i++) {
			EXPECT_EQ(-1, ld_cmp(base + boff, self->chk + off, lens[i]))
				TH_LOG("%s from card: length %llu", reg ? "registered" : "plain",
				       (unsigned long long)lens[i]);
			EXPECT_EQ(0xc5, base[boff + lens[i]]) TH_LOG("canary after %llu",
				  (unsigned long long)lens[i]);
			off += lens[i] + 4099;
			boff += lens[i] + 1;
		}
	}
	EXPECT_EQ(0, buf_unregister(self->fd, b));
}

static struct llmdev_dma_op op_rows(bool to_card, uint32_t handle, uint64_t off,
				    uint32_t buf, uint64_t boff, uint64_t len,
				    uint32_t rows, uint64_t stride)
{
	struct llmdev_dma_op op = op_buf(to_card, handle, off, buf, boff, len);

	op.flags |= LLMDEV_OP_ROWS;
	op.rows = rows;
	op.buf_stride = stride;
	return op;
}

/*
 * LLMDEV_OP_ROWS: rows of a buffer gathered into a packed range of the
 * region and scattered back, at row lengths and strides that cross pages
 * and the buffer's DMA segments; the bytes between the rows stay as they
 * were, on both sides. The driver gathers a page of row pieces (256 with
 * 4 KiB pages) with one descriptor: 4097 rows of a byte are 17, the last
 * with one row; 9000 rows of 3 bytes, some across pages, are 36 or more.
 */
TEST_F(batch, rows)
{
	static const struct { uint64_t len, stride; uint32_t rows; } shape[] = {
		{ 1, 1, 1 }, { 1, 3, 1000 }, { 1088, 2176, 700 }, { 4096, 4096, 64 },
		{ 4095, 8193, 300 }, { 65537, 100000, 20 }, { 1, 4096, 400 },
		{ 1, 2, 4097 }, { 3, 5, 9000 },
	};
	const unsigned int n = sizeof(shape) / sizeof(shape[0]);
	uint8_t *base = self->mem + 333;	/* unaligned */
	struct llmdev_dma_op ops[9];
	uint64_t off, boff, r;
	uint8_t *pat;
	unsigned int i;
	uint32_t b;

	SETUP_OR_SKIP();
	ASSERT_EQ(9, n);
	ASSERT_EQ(0, buf_register(self->fd, base, BUFLEN, 0, &b));
	/* the region starts as a known pattern: what no row covers keeps it */
	pat = ld_alloc_buf(REGION);
	ASSERT_NE(NULL, pat);
	ld_fill(pat, REGION, 31);
	ASSERT_EQ(0, ld_xfer(self->fd, self->handle, 0, pat, REGION, true,
			     LLMDEV_RING_ANY));
	ld_fill(base, BUFLEN, 32);
	for (i = 0, off = 5, boff = 7; i < n; i++) {
		ops[i] = op_rows(true, self->handle, off, b, boff, shape[i].len, shape[i].rows,
				 shape[i].stride);
		off += shape[i].len * shape[i].rows + 100;
		boff += shape[i].stride * (shape[i].rows - 1) + shape[i].len + 3;
	}
	ASSERT_LE(off, REGION);
	ASSERT_LE(boff, BUFLEN);
	ASSERT_EQ(0, batch_sync(self->fd, ops, n));
	ASSERT_EQ(0, read_region(self));
	for (i = 0, off = 5, boff = 7; i < n; i++) {
		for (r = 0; r < shape[i].rows; r++)
			ASSERT_EQ(-1, ld_cmp(base + boff + r * shape[i].stride,
					     self->chk + off + r * shape[i].len, shape[i].len))
				TH_LOG("to card: shape %u row %llu", i, (unsigned long long)r);
		/* the 100 bytes after the packed rows are untouched */
		off += shape[i].len * shape[i].rows;
		EXPECT_EQ(-1, ld_cmp(pat + off, self->chk + off, 100))
			TH_LOG("after the rows of shape %u", i);
		off += 100;
		boff += shape[i].stride * (shape[i].rows - 1) + shape[i].len + 3;
	}

	/* and back, into a buffer whose bytes between the rows must stay */
	memset(base, 0xc5, BUFLEN);
	for (i = 0; i < n; i++)
		ops[i].flags &= ~LLMDEV_OP_TO_CARD;
	ASSERT_EQ(0, batch_sync(self->fd, ops, n));
	for (i = 0, off = 5, boff = 7; i < n; i++) {
		for (r = 0; r < shape[i].rows; r++) {
			ASSERT_EQ(-1, ld_cmp(base + boff + r * shape[i].stride,
					     self->chk + off + r * shape[i].len, shape[i].len))
				TH_LOG("from card: shape %u row %llu", i, (unsigned long long)r);
			if (shape[i].stride > shape[i].len)
				ASSERT_EQ(0xc5, base[boff + r * shape[i].stride + shape[i].len])
					TH_LOG("between rows: shape %u row %llu", i,
					       (unsigned long long)r);
		}
		off += shape[i].len * shape[i].rows + 100;
		boff += shape[i].stride * (shape[i].rows - 1) + shape[i].len + 3;
	}
	EXPECT_EQ(0, buf_unregister(self->fd, b));
	ld_free_buf(pat, REGION);
}

/* What LLMDEV_OP_ROWS refuses, and the bound on a batch's rows. */
TEST_F(batch, rows_errors)
{
	struct llmdev_dma_op ops[3], bad;
	struct {
		const char *what;
		struct llmdev_dma_op op;
		int err;
	} cases[9];
	unsigned int i, nc = 0;
	uint32_t b, rob, idx;
	int ret;

	SETUP_OR_SKIP();
	ASSERT_EQ(0, buf_register(self->fd, self->mem, LD_MIB, 0, &b));
	ASSERT_EQ(0, buf_register(self->fd, self->mem + LD_MIB, LD_MIB,
				  LLMDEV_BUF_READ_ONLY, &rob));
	cases[nc++] = (typeof(cases[0])){ "rows 0", op_rows(true, self->handle, 0, b, 0, 8, 0, 8), -EINVAL };
	cases[nc++] = (typeof(cases[0])){ "stride below length", op_rows(true, self->handle, 0, b, 0, 8, 2, 7), -EINVAL };
	cases[nc++] = (typeof(cases[0])){ "without a buffer", op_rows(true, self->handle, 0, b, 0, 8, 2, 8), -EINVAL };
	cases[nc - 1].op.flags &= ~LLMDEV_OP_BUF;
	cases[nc++] = (typeof(cases[0])){ "last row beyond the buffer", op_rows(true, self->handle, 0, b, 0, 8, 2, LD_MIB - 7), -EINVAL };
	cases[nc++] = (typeof(cases[0])){ "rows beyond the region", op_rows(true, self->handle, REGION - 100, b, 0, 8, 13, 8), -EINVAL };
	cases[nc++] = (typeof(cases[0])){ "stride overflows", op_rows(true, self->handle, 0, b, 0, 8, 3, ~0ULL / 2), -EINVAL };
	cases[nc++] = (typeof(cases[0])){ "more than the most bytes", op_rows(true, self->handle, 0, b, 0, LLMDEV_DMA_MAX_LENGTH / 2 + 1, 2, LLMDEV_DMA_MAX_LENGTH), -EINVAL };
	cases[nc++] = (typeof(cases[0])){ "more rows than a batch holds", op_rows(true, self->handle, 0, b, 0, 1, LLMDEV_BATCH_MAX, 1), -EINVAL };
	cases[nc++] = (typeof(cases[0])){ "into read-only", op_rows(false, self->handle, 0, rob, 0, 8, 4, 16), -EACCES };

	for (i = 0; i < nc; i++) {
		bad = cases[i].op;
		ops[0] = op_rows(true, self->handle, 0, b, 0, 16, 4, 32);
		ops[1] = bad;
		ops[2] = op_buf(true, self->handle, 4096, b, 4096, 64);
		ret = batch(self->fd, ops, 3, false, 0, NULL, NULL, &idx);
		EXPECT_EQ(cases[i].err, ret) TH_LOG("%s", cases[i].what);
		EXPECT_EQ(1, idx) TH_LOG("%s: error_index", cases[i].what);
	}
	/* no fence was left */
	EXPECT_EQ(-ENOENT, ld_wait_any(self->fd, 0, NULL, NULL));
	/* all the rows a batch may have, the first op's four and the rest */
	ops[0] = op_rows(true, self->handle, 0, b, 0, 16, 4, 32);
	ops[1] = op_rows(true, self->handle, 64, b, 0, 1, LLMDEV_BATCH_MAX - 4, 1);
	EXPECT_EQ(0, batch_sync(self->fd, ops, 2));
	EXPECT_EQ(0, buf_unregister(self->fd, b));
	EXPECT_EQ(0, buf_unregister(self->fd, rob));
}

/* Both directions and both kinds of memory in one batch. */
TEST_F(batch, mixed_batch)
{
	struct llmdev_dma_op ops[4];
	uint8_t *plain = self->chk;
	uint32_t b;

	SETUP_OR_SKIP();
	ASSERT_EQ(0, buf_register(self->fd, self->mem, BUFLEN, 0, &b));
	ld_fill(self->mem, LD_MIB, 1);
	ld_fill(plain, LD_MIB, 2);
	ops[0] = op_buf(true, self->handle, 0, b, 0, LD_MIB);
	ops[1] = op_user(true, self->handle, LD_MIB, plain, LD_MIB);
	ASSERT_EQ(0, batch_sync(self->fd, ops, 2));
	memset(self->mem + 2 * LD_MIB, 0, 2 * LD_MIB);
	ops[0] = op_buf(false, self->handle, LD_MIB, b, 2 * LD_MIB, LD_MIB);
	ops[1] = op_user(false, self->handle, 0, self->mem + 3 * LD_MIB, LD_MIB);
	ops[2] = op_buf(true, self->handle, 4 * LD_MIB, b, 0, 4096);
	ops[3] = op_user(true, self->handle, 5 * LD_MIB, plain, 4096);
	ASSERT_EQ(0, batch_sync(self->fd, ops, 4));
	EXPECT_EQ(-1, ld_cmp(self->mem + 2 * LD_MIB, plain, LD_MIB));
	EXPECT_EQ(-1, ld_cmp(self->mem + 3 * LD_MIB, self->mem, LD_MIB));
	EXPECT_EQ(0, buf_unregister(self->fd, b));
}

/* Thousands of small blocks in one batch: the KV-cache shape. */
#define LD_PARAM_DESC_VEC "/sys/module/llmdev/parameters/desc_vec"

/*
 * Descriptors the card processed in direction @to_card since @p0 (updated
 * to now).
 */
static uint64_t descs_since(int fd, struct llmdev_perf *p0, bool to_card)
{
	struct llmdev_perf p1 = { .size = sizeof(p1) };
	unsigned int c = to_card ? LLMDEV_COUNTER_H2C_DESC :
				   LLMDEV_COUNTER_C2H_DESC;
	uint64_t n;

	if (ld_perf(fd, &p1))
		return UINT64_MAX;
	n = p1.counters[c] - p0->counters[c];
	*p0 = p1;
	return n;
}

/*
 * 2048 blocks scattered over HBM, to the card from a registered buffer and
 * back into plain memory, each way in one batch: with vector descriptors
 * (spec 1.2), a page of blocks to a descriptor (170 of 4 KiB pages'
 * 24-byte entries); with the module's desc_vec off, a descriptor a block.
 */
TEST_F(batch, many_blocks)
{
	const unsigned int nblk = 2048, blk = 4096;
	struct llmdev_dma_op *ops = calloc(nblk, sizeof(*ops));
	struct llmdev_perf p0 = { .size = sizeof(p0) };
	const uint64_t vec_descs = (nblk + 169) / 170;
	char saved[16] = "Y";
	bool vec_card;
	uint64_t n;
	uint32_t b;
	unsigned int i, pass;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, ops);
	vec_card = (self->info.spec_version & 0xffff) >= 2;
	if (ld_read_file(LD_PARAM_DESC_VEC, saved, sizeof(saved)))
		SKIP(free(ops); return, "no desc_vec parameter: an older module");
	ASSERT_EQ(0, buf_register(self->fd, self->mem, BUFLEN, 0, &b));
	for (pass = 0; pass < 2; pass++) {
		bool vec = vec_card && pass == 0;

		ASSERT_EQ(0, ld_write_file(LD_PARAM_DESC_VEC, pass ? "N" : "Y"));
		ld_fill(self->mem, BUFLEN, 9 + pass);
		ASSERT_EQ(0, ld_perf(self->fd, &p0));
		/* scattered: block i of the buffer to a pseudo-random HBM slot */
		for (i = 0; i < nblk; i++)
			ops[i] = op_buf(true, self->handle,
					(uint64_t)((i * 977 + 13) % nblk) * blk, b,
					(uint64_t)i * blk, blk);
		ASSERT_EQ(0, batch_sync(self->fd, ops, nblk));
		n = descs_since(self->fd, &p0, true);
		EXPECT_EQ(true, vec ? n <= vec_descs : n == nblk)
			TH_LOG("%" PRIu64 " descriptors, vectors %s", n,
			       vec ? "on" : "off");
		/* and back, in another order, to a zeroed buffer */
		memset(self->chk, 0, BUFLEN);
		for (i = 0; i < nblk; i++)
			ops[i] = op_user(false, self->handle,
					 (uint64_t)((i * 977 + 13) % nblk) * blk,
					 self->chk + (uint64_t)i * blk, blk);
		ASSERT_EQ(0, batch_sync(self->fd, ops, nblk));
		n = descs_since(self->fd, &p0, false);
		EXPECT_EQ(true, vec ? n <= vec_descs : n == nblk)
			TH_LOG("%" PRIu64 " descriptors, vectors %s", n,
			       vec ? "on" : "off");
		EXPECT_EQ(-1, ld_cmp(self->mem, self->chk, (size_t)nblk * blk))
			TH_LOG("vector descriptors %s", vec ? "on" : "off");
	}
	EXPECT_EQ(0, ld_write_file(LD_PARAM_DESC_VEC, saved));
	EXPECT_EQ(0, buf_unregister(self->fd, b));
	free(ops);
}

/* A bad transfer fails the whole batch: nothing moves, error_index says which. */
TEST_F(batch, bad_op_moves_nothing)
{
	uint8_t *none = mmap(NULL, LD_PAGE, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct llmdev_dma_op ops[4], bad;
	struct {
		const char *what;
		struct llmdev_dma_op op;
		int err;
	} cases[10];
	uint32_t b, rob, idx;
	unsigned int i, nc = 0;
	uint64_t fence;
	int ret;

	SETUP_OR_SKIP();
	ASSERT_NE(MAP_FAILED, none);
	ASSERT_EQ(0, buf_register(self->fd, self->mem, LD_MIB, 0, &b));
	ASSERT_EQ(0, buf_register(self->fd, self->mem + LD_MIB, LD_MIB,
				  LLMDEV_BUF_READ_ONLY, &rob));
	cases[nc++] = (typeof(cases[0])){ "flags", op_buf(true, self->handle, 0, b, 0, 8), -EINVAL };
	cases[nc - 1].op.flags |= 4;
	cases[nc++] = (typeof(cases[0])){ "reserved", op_buf(true, self->handle, 0, b, 0, 8), -EINVAL };
	cases[nc - 1].op.__reserved = 1;
	cases[nc++] = (typeof(cases[0])){ "length 0", op_buf(true, self->handle, 0, b, 0, 0), -EINVAL };
	cases[nc++] = (typeof(cases[0])){ "beyond region", op_buf(true, self->handle, REGION - 4, b, 0, 8), -EINVAL };
	cases[nc++] = (typeof(cases[0])){ "beyond buffer", op_buf(true, self->handle, 0, b, LD_MIB - 4, 8), -EINVAL };
	cases[nc++] = (typeof(cases[0])){ "no region", op_buf(true, 0x7fff0000, 0, b, 0, 8), -ENOENT };
	cases[nc++] = (typeof(cases[0])){ "no buffer", op_buf(true, self->handle, 0, 4000, 0, 8), -ENOENT };
	cases[nc++] = (typeof(cases[0])){ "into read-only", op_buf(false, self->handle, 0, rob, 0, 8), -EACCES };
	cases[nc++] = (typeof(cases[0])){ "unmapped", op_user(true, self->handle, 0, none, 8), -EFAULT };
	cases[nc++] = (typeof(cases[0])){ "unmapped from card", op_user(false, self->handle, 0, none, 8), -EFAULT };

	/* HBM starts as a known pattern, which no failed batch may change */
	ld_fill(self->chk, REGION, 21);
	ASSERT_EQ(0, ld_xfer(self->fd, self->handle, 0, self->chk, REGION, true,
			     LLMDEV_RING_ANY));
	ld_fill(self->mem, 2 * LD_MIB, 22);
	for (i = 0; i < nc; i++) {
		bad = cases[i].op;
		ops[0] = op_buf(true, self->handle, 0, b, 0, 4096);
		ops[1] = op_user(true, self->handle, 8192, self->mem, 4096);
		ops[2] = bad;
		ops[3] = op_buf(true, self->handle, 16384, b, 4096, 4096);
		fence = ~0ULL;
		ret = batch(self->fd, ops, 4, false, 0, &fence, NULL, &idx);
		EXPECT_EQ(cases[i].err, ret) TH_LOG("%s", cases[i].what);
		EXPECT_EQ(2, idx) TH_LOG("%s: error_index", cases[i].what);
	}
	/*
	 * The same after a transfer of the same region and buffer, whose
	 * lookups the bad one reuses: the same checks, the same errors
	 */
	for (i = 0; i < nc; i++) {
		bad = cases[i].op;
		ops[0] = op_buf(true, self->handle, 0, b, 0, 4096);
		ops[1] = op_buf(true, self->handle, 8192, bad.buf == rob ? rob : b, 0, 4096);
		ops[2] = bad;
		ops[3] = op_buf(true, self->handle, 16384, b, 4096, 4096);
		fence = ~0ULL;
		ret = batch(self->fd, ops, 4, false, 0, &fence, NULL, &idx);
		EXPECT_EQ(cases[i].err, ret) TH_LOG("%s, after the same region", cases[i].what);
		EXPECT_EQ(2, idx) TH_LOG("%s, after the same region: error_index", cases[i].what);
	}
	/* no fence was left, nothing moved */
	EXPECT_EQ(-ENOENT, ld_wait_any(self->fd, 0, NULL, NULL));
	memset(self->mem, 0, REGION);
	ASSERT_EQ(0, ld_xfer(self->fd, self->handle, 0, self->mem, REGION, false,
			     LLMDEV_RING_ANY));
	EXPECT_EQ(-1, ld_cmp(self->chk, self->mem, REGION));

	/* errors of the batch itself */
	ops[0] = op_buf(true, self->handle, 0, b, 0, 8);
	EXPECT_EQ(-EINVAL, batch(self->fd, ops, 0, false, 0, NULL, NULL, &idx));
	EXPECT_EQ(~0U, idx);
	EXPECT_EQ(-EINVAL, batch(self->fd, ops, LLMDEV_BATCH_MAX + 1, false, 0,
				 NULL, NULL, NULL));
	{
		struct llmdev_dma_batch bb = {
			.size = sizeof(bb), .count = 1, .op_size = 8,
			.ops = (uintptr_t)ops,
		};

		EXPECT_EQ(-EINVAL, ld_ioctl(self->fd, LLMDEV_DMA_BATCH, &bb));
		bb.op_size = sizeof(ops[0]);
		bb.flags = 2;
		EXPECT_EQ(-EINVAL, ld_ioctl(self->fd, LLMDEV_DMA_BATCH, &bb));
		bb.flags = 0;
		bb.ops = (uintptr_t)none;
		EXPECT_EQ(-EFAULT, ld_ioctl(self->fd, LLMDEV_DMA_BATCH, &bb));
	}
	EXPECT_EQ(0, buf_unregister(self->fd, b));
	EXPECT_EQ(0, buf_unregister(self->fd, rob));
	munmap(none, LD_PAGE);
}

/* A larger op_size with a zero tail works; a dirty tail is -E2BIG. */
TEST_F(batch, op_size_grows)
{
	struct {
		struct llmdev_dma_op op;
		uint64_t tail;
	} big[2];
	struct llmdev_dma_batch b = {
		.size = sizeof(b), .flags = LLMDEV_BATCH_WAIT, .count = 2,
		.op_size = sizeof(big[0]), .ops = (uintptr_t)big,
		.timeout_ns = LD_LONG_WAIT,
	};

	SETUP_OR_SKIP();
	memset(big, 0, sizeof(big));
	big[0].op = op_user(true, self->handle, 0, self->mem, 4096);
	big[1].op = op_user(true, self->handle, 4096, self->mem, 4096);
	EXPECT_EQ(0, ld_ioctl(self->fd, LLMDEV_DMA_BATCH, &b));
	EXPECT_EQ(0, b.status);
	big[1].tail = 1;
	EXPECT_EQ(-E2BIG, ld_ioctl(self->fd, LLMDEV_DMA_BATCH, &b));
	EXPECT_EQ(1, b.error_index);
}

/*
 * The ops of plain (not registered) memory may move
 * LLMDEV_BATCH_MAX_PLAIN_BYTES in all, the same memory counted each time
 * it is named; one byte more is -E2BIG naming the op past the cap, before
 * any op is looked at or pinned. Registered buffers do not count. Nothing
 * here pins more than a page: where the cap lets a batch through, its
 * first op names no region, which fails it before anything is pinned.
 */
TEST_F(batch, plain_bytes_capped)
{
	const uint32_t n = LLMDEV_BATCH_MAX_PLAIN_BYTES / REGION;
	struct llmdev_dma_op *ops = calloc(n + 2, sizeof(*ops));
	uint32_t b, i, idx;

	SETUP_OR_SKIP();
	ASSERT_NE(NULL, ops);
	ASSERT_EQ(0, buf_register(self->fd, self->mem, BUFLEN, 0, &b));
	for (i = 0; i <= n; i++)
		ops[i] = op_user(i & 1, self->handle, 0, self->mem, REGION);
	/* n ops reach the cap, op n is past it (either direction counts) */
	idx = 0;
	EXPECT_EQ(-E2BIG, batch(self->fd, ops, n + 1, false, 0, NULL, NULL,
				&idx));
	EXPECT_EQ(n, idx);
	ops[n] = op_user(true, self->handle, REGION - 1, self->mem, 1);
	idx = 0;
	EXPECT_EQ(-E2BIG, batch(self->fd, ops, n + 1, true, LD_LONG_WAIT, NULL,
				NULL, &idx));
	EXPECT_EQ(n, idx);
	/* checked before the ops: op 0's missing region does not come first */
	ops[0].handle = 0x7fff0000;
	idx = 0;
	EXPECT_EQ(-E2BIG, batch(self->fd, ops, n + 1, false, 0, NULL, NULL,
				&idx));
	EXPECT_EQ(n, idx);
	/* the cap itself is allowed: op 0 fails, on its region */
	idx = 0;
	EXPECT_EQ(-ENOENT, batch(self->fd, ops, n, false, 0, NULL, NULL, &idx));
	EXPECT_EQ(0, idx);
	/* a registered buffer's op does not count; a plain byte after it does */
	ops[n] = op_buf(true, self->handle, 0, b, 0, REGION);
	idx = 0;
	EXPECT_EQ(-ENOENT, batch(self->fd, ops, n + 1, false, 0, NULL, NULL,
				 &idx));
	EXPECT_EQ(0, idx);
	ops[n + 1] = op_user(false, self->handle, 0, self->mem, 1);
	idx = 0;
	EXPECT_EQ(-E2BIG, batch(self->fd, ops, n + 2, false, 0, NULL, NULL,
				&idx));
	EXPECT_EQ(n + 1, idx);
	/* no fence was left */
	EXPECT_EQ(-ENOENT, ld_wait_any(self->fd, 0, NULL, NULL));
	EXPECT_EQ(0, buf_unregister(self->fd, b));
	/* and a plain batch still runs */
	ld_fill(self->mem, 4096, 41);
	ops[0] = op_user(true, self->handle, 0, self->mem, 4096);
	ops[1] = op_user(false, self->handle, 0, self->chk, 4096);
	EXPECT_EQ(0, batch_sync(self->fd, ops, 1));
	EXPECT_EQ(0, batch_sync(self->fd, ops + 1, 1));
	EXPECT_EQ(-1, ld_cmp(self->mem, self->chk, 4096));
	free(ops);
}

/* Submit-and-wait: the status comes back, the fence is consumed. */
TEST_F(batch, submit_and_wait)
{
	struct llmdev_dma_op op;
	uint64_t fence;
	int status = 1;
	uint32_t b;

	SETUP_OR_SKIP();
	ASSERT_EQ(0, buf_register(self->fd, self->mem, LD_MIB, 0, &b));
	op = op_buf(true, self->handle, 0, b, 0, 4096);
	ASSERT_EQ(0, batch(self->fd, &op, 1, true, LD_LONG_WAIT, &fence,
			   &status, NULL));
	EXPECT_EQ(0, status);
	EXPECT_EQ(-ENOENT, ld_wait(self->fd, fence, 0, NULL));
	/* a timeout of 0 on a big batch: -ETIME, the fence is there to wait for */
	op = op_buf(true, self->handle, 0, b, 0, LD_MIB);
	{
		struct llmdev_dma_op many[8];
		unsigned int i;
		int ret;

		for (i = 0; i < 8; i++)
			many[i] = op;
		ret = batch(self->fd, many, 8, true, 0, &fence, &status, NULL);
		if (ret == -ETIME) {
			EXPECT_EQ(0, ld_wait(self->fd, fence, LD_LONG_WAIT, &status));
			EXPECT_EQ(0, status);
		} else {
			EXPECT_EQ(0, ret) TH_LOG("8 MiB done before a 0 ns wait ended");
		}
	}
	EXPECT_EQ(0, buf_unregister(self->fd, b));
}

/*
 * Stall both host-to-card rings, then submit-and-wait 4 KiB from buffer @b
 * for @timeout_ns: the wait must end with -ETIME, the transfer queued.
 */
static void stalled_submit(struct __test_metadata *_metadata,
			   struct ld_bar0 *bar, int fd, uint32_t handle,
			   uint32_t b, uint64_t timeout_ns, uint64_t *fence)
{
	struct llmdev_dma_op op = op_buf(true, handle, 0, b, 0, 4096);
	int status = 0, ret;

	ld_wr32(bar, LLMDEV_REG_FAULT_INJECT, LLMDEV_FAULT_STALL_RING(0) |
		LLMDEV_FAULT_STALL_RING(1));
	ret = batch(fd, &op, 1, true, timeout_ns, fence, &status, NULL);
	EXPECT_EQ(-ETIME, ret) TH_LOG("a stalled ring answered (%d, status %d)",
				      ret, status);
}

/* Polling off or on, a stalled ring still times out and recovers. */
TEST_F(batch, stalled_ring_times_out)
{
	unsigned int old_ms = 0;
	struct ld_bar0 bar;
	uint64_t fence;
	int status = 0;
	uint32_t b;

	SETUP_OR_SKIP();
	LD_BAR0_MAP_OR_SKIP(0, &bar, return);
	ASSERT_EQ(0, ld_get_timeout_ms(&old_ms));
	ASSERT_EQ(0, ld_set_timeout_ms(500));
	ASSERT_EQ(0, buf_register(self->fd, self->mem, LD_MIB, 0, &b));
	stalled_submit(_metadata, &bar, self->fd, self->handle, b,
		       100 * 1000 * 1000ULL, &fence);
	/* the buffer is in use */
	EXPECT_EQ(-EBUSY, buf_unregister(self->fd, b));
	/* the watchdog resets the ring: -ETIMEDOUT */
	EXPECT_EQ(0, ld_wait(self->fd, fence, 5 * LD_NSEC_PER_SEC, &status));
	EXPECT_EQ(-ETIMEDOUT, status);
	ld_wr32(&bar, LLMDEV_REG_FAULT_INJECT, 0);
	EXPECT_EQ(0, buf_unregister(self->fd, b));
	ASSERT_EQ(0, ld_set_timeout_ms(old_ms));
	ld_bar0_unmap(&bar);
	/* and the ring works again */
	ld_fill(self->mem, 4096, 5);
	EXPECT_EQ(0, ld_xfer(self->fd, self->handle, 0, self->mem, 4096, true,
			     LLMDEV_RING_ANY));
}

#define LD_PARAM_POLL_US "/sys/module/llmdev/parameters/poll_us"

/* poll_us as the module has it now (into @buf, to restore), 0 if unreadable */
static int poll_us_now(char *buf, size_t len)
{
	return ld_read_file(LD_PARAM_POLL_US, buf, len) ? 0 : atoi(buf);
}

/*
 * A small submit-and-wait is polled for, so it asks for no interrupt: 200
 * of them, both ways, raise (almost) none, and every byte arrives.
 */
TEST_F(batch, quiet_waits_raise_no_interrupt)
{
	struct llmdev_perf p0 = { .size = sizeof(p0) };
	struct llmdev_perf p1 = { .size = sizeof(p1) };
	struct llmdev_dma_op op;
	char poll_us[32] = "";
	uint64_t fence, irqs;
	int status, i;
	uint32_t b;

	SETUP_OR_SKIP();
	if (!poll_us_now(poll_us, sizeof(poll_us)))
		SKIP(return, "poll_us is 0 or unreadable: waits do not poll");
	ASSERT_EQ(0, buf_register(self->fd, self->mem, 2 * 4096, 0, &b));
	ASSERT_EQ(0, ld_perf(self->fd, &p0));
	for (i = 0; i < 200; i++) {
		bool to_card = !(i & 1);

		if (to_card)
			ld_fill(self->mem, 4096, i);
		op = op_buf(to_card, self->handle, 0, b, to_card ? 0 : 4096,
			    4096);
		status = -1;
		ASSERT_EQ(0, batch(self->fd, &op, 1, true, LD_LONG_WAIT,
				   &fence, &status, NULL));
		ASSERT_EQ(0, status);
		if (!to_card)
			ASSERT_EQ(-1, ld_cmp(self->mem, self->mem + 4096, 4096))
				TH_LOG("round trip %d came back different", i / 2);
	}
	ASSERT_EQ(0, ld_perf(self->fd, &p1));
	irqs = p1.counters[LLMDEV_COUNTER_IRQS] - p0.counters[LLMDEV_COUNTER_IRQS];
	/* not one per transfer (link and sensor events may still come) */
	EXPECT_GE(10, irqs) TH_LOG("%llu interrupts for 200 polled transfers",
				   (unsigned long long)irqs);
	EXPECT_EQ(0, buf_unregister(self->fd, b));
}

/*
 * A quiet transfer whose waiter gave up (its timeout, on a stalled ring)
 * has no interrupt coming: it is still found and its fence signalled
 * soon after the ring moves again, with nobody polling for it (poll_us 0),
 * long before the watchdog (set to a minute) would look.
 */
TEST_F(batch, quiet_job_outlives_its_wait)
{
	struct pollfd pfd = { .events = POLLIN };
	char poll_us[32] = "";
	unsigned int old_ms = 0;
	struct ld_bar0 bar;
	uint64_t fence, t0;
	int status = 0;
	uint32_t b;

	SETUP_OR_SKIP();
	if (!poll_us_now(poll_us, sizeof(poll_us)))
		SKIP(return, "poll_us is 0 or unreadable: no transfer is quiet");
	LD_BAR0_MAP_OR_SKIP(0, &bar, return);
	ASSERT_EQ(0, ld_get_timeout_ms(&old_ms));
	ASSERT_EQ(0, ld_set_timeout_ms(60000));
	ASSERT_EQ(0, buf_register(self->fd, self->mem, 4096, 0, &b));
	ld_fill(self->mem, 4096, 77);
	stalled_submit(_metadata, &bar, self->fd, self->handle, b,
		       20 * 1000 * 1000ULL, &fence);
	/* nobody polls from here on */
	EXPECT_EQ(0, ld_write_file(LD_PARAM_POLL_US, "0"));
	ld_wr32(&bar, LLMDEV_REG_FAULT_INJECT, 0);
	t0 = ld_now_ns();
	pfd.fd = self->fd;
	EXPECT_EQ(1, poll(&pfd, 1, 5000)) TH_LOG("the fence was never signalled");
	EXPECT_GT(3 * LD_NSEC_PER_SEC, ld_now_ns() - t0);
	EXPECT_EQ(0, ld_wait(self->fd, fence, 0, &status));
	EXPECT_EQ(0, status);
	EXPECT_EQ(0, ld_write_file(LD_PARAM_POLL_US, poll_us));
	EXPECT_EQ(0, buf_unregister(self->fd, b));
	ASSERT_EQ(0, ld_set_timeout_ms(old_ms));
	ld_bar0_unmap(&bar);
	/* it arrived */
	ASSERT_EQ(0, ld_xfer(self->fd, self->handle, 0, self->chk, 4096, false,
			     LLMDEV_RING_ANY));
	EXPECT_EQ(-1, ld_cmp(self->mem, self->chk, 4096));
}

/*
 * After fork(), the child shares the file: it reaches the parent's pages
 * through the parent's buffer (what was pinned), not its own copy.
 */
TEST_F(batch, fork_reaches_parents_pages)
{
	struct llmdev_dma_op op;
	uint32_t b;
	pid_t pid;

	SETUP_OR_SKIP();
	memset(self->mem, 0, LD_MIB);
	ASSERT_EQ(0, buf_register(self->fd, self->mem, LD_MIB, 0, &b));
	ld_fill(self->chk, LD_MIB, 31);
	ASSERT_EQ(0, ld_xfer(self->fd, self->handle, 0, self->chk, LD_MIB, true,
			     LLMDEV_RING_ANY));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		op = op_buf(false, self->handle, 0, b, 0, LD_MIB);
		if (batch_sync(self->fd, &op, 1))
			_exit(10);
		/* the child's copy of the memory did not change */
		_exit(ld_nonzero(self->mem, LD_MIB) == -1 ? 0 : 11);
	}
	EXPECT_EQ(0, ld_wait_child(pid));
	EXPECT_EQ(-1, ld_cmp(self->chk, self->mem, LD_MIB));
	EXPECT_EQ(0, buf_unregister(self->fd, b));
}

/*
 * A process dies with buffers registered and batches in flight: its
 * files close, the transfers finish, the pages are unpinned, and the HBM
 * of its regions comes back.
 */
TEST_F(batch, exit_with_transfers_in_flight)
{
	uint64_t used;
	pid_t pid;

	SETUP_OR_SKIP();
	ld_sysfs_u64(0, "hbm_used", &used);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct llmdev_dma_op ops[16];
		struct llmdev_hbm_alloc a;
		unsigned int i;
		uint32_t b;
		int fd = ld_open(0);

		if (fd < 0 || ld_hbm_alloc(fd, 4 * LD_MIB, 0, 0, NULL, &a) ||
		    buf_register(fd, self->mem, 4 * LD_MIB, 0, &b))
			_exit(10);
		for (i = 0; i < 16; i++)
			ops[i] = op_buf(i & 1, a.handle, (i % 4) * LD_MIB, b,
					(i % 4) * LD_MIB, LD_MIB);
		for (i = 0; i < 8; i++)
			if (batch(fd, ops, 16, false, 0, NULL, NULL, NULL))
				_exit(11);
		_exit(0);	/* no wait, no unregister, no close */
	}
	EXPECT_EQ(0, ld_wait_child(pid));
	EXPECT_EQ(used, ld_hbm_used_settle(0, used));
}

TEST_HARNESS_MAIN
