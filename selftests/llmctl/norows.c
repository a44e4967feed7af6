// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev-norows.so: preloaded into llmctl (LD_PRELOAD), it makes the
 * driver look like one from before LLMDEV_OP_ROWS. An LLMDEV_DMA_BATCH
 * with an LLMDEV_OP_ROWS op fails as such a driver fails it (the flag is
 * unknown, the rows are a reserved field): -EINVAL, error_index naming
 * the op, nothing queued. Every refusal adds a line to the file named by
 * $LLMDEV_NOROWS_LOG, when set. Other ioctls pass through.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "llmdev.h"

static void note_refusal(void)
{
	const char *path = getenv("LLMDEV_NOROWS_LOG");
	int fd;

	if (!path || !*path)
		return;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, "refused\n", 8) != 8) {
		/* the test then sees fewer refusals than it caused */
	}
	close(fd);
}

int ioctl(int fd, unsigned long request, ...)
{
	static int (*real)(int, unsigned long, ...);
	struct llmdev_dma_batch *b;
	va_list ap;
	void *arg;
	uint32_t i;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!real) {
		real = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
		if (!real) {
			errno = ENOSYS;
			return -1;
		}
	}
	b = arg;
	if (request == LLMDEV_DMA_BATCH && b && b->op_size >= sizeof(struct llmdev_dma_op)) {
		const char *ops = (const char *)(uintptr_t)b->ops;

		for (i = 0; ops && i < b->count; i++) {
			const struct llmdev_dma_op *o =
				(const void *)(ops + (size_t)i * b->op_size);

			if (o->flags & LLMDEV_OP_ROWS) {
				b->error_index = i;
				note_refusal();
				errno = EINVAL;
				return -1;
			}
		}
	}
	return real(fd, request, arg);
}
