// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev-bench: loading a model beside an O_DIRECT read of the same file.
 *
 * The page cache is dropped before each. The O_DIRECT read is
 * `dd if=FILE of=/dev/null bs=4M iflag=direct` (busybox and coreutils dd
 * both have iflag=direct); the load is the command given after "--"
 * (make bench: llmctl load FILE --tp 2 --pp 2). Both are timed from fork
 * to exit. With --load-verify the command runs once more, untimed, with
 * --verify appended (llmctl load then checks every card's share against
 * the file) and must succeed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define DD_BS		(4u << 20)

static int file_bytes(const char *path, uint64_t *bytes)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st))
		ret = -errno;
	else if (S_ISBLK(st.st_mode))
		ret = ioctl(fd, BLKGETSIZE64, bytes) ? -errno : 0;
	else
		*bytes = st.st_size;
	close(fd);
	return ret;
}

static int drop_caches(void)
{
	int fd, ret = 0;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, "3\n", 2) != 2)
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * Run @argv with stdin from /dev/null; its stderr goes to @err (up to
 * @errlen - 1 bytes, NUL-terminated) when @err is given, else to ours;
 * its stdout is ours.
 * Returns the exit status (128 + signal), or -1 if it could not start.
 */
static int run(char *const *argv, char *err, size_t errlen, double *secs)
{
	int pfd[2] = { -1, -1 }, status;
	size_t got = 0;
	double t0;
	pid_t pid;

	if (err && pipe2(pfd, O_CLOEXEC))
		return -1;
	fflush(stdout);
	fflush(stderr);
	t0 = now_s();
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		int null = open("/dev/null", O_RDONLY);

		if (null >= 0)
			dup2(null, STDIN_FILENO);
		if (err)
			dup2(pfd[1], STDERR_FILENO);
		execvp(argv[0], argv);
		fprintf(stderr, "llmdev-bench: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (err) {
		ssize_t n;

		close(pfd[1]);
		/* all of it, keeping what fits */
		for (;;) {
			char scratch[512];

			if (got < errlen - 1)
				n = read(pfd[0], err + got, errlen - 1 - got);
			else
				n = read(pfd[0], scratch, sizeof(scratch));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			if (got < errlen - 1)
				got += n;
		}
		err[got] = 0;
		close(pfd[0]);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	*secs = now_s() - t0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static const char *joined(char *const *argv, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = 0;
	for (; *argv && at < len; argv++)
		at += snprintf(buf + at, len - at, "%s%s", at ? " " : "", *argv);
	return buf;
}

int bench_load(struct bench *b)
{
	const struct bench_opts *o = b->o;
	char ifarg[4096 + 8], cmdline[1024], err[4096];
	char *dd[] = { "dd", ifarg, "of=/dev/null", "bs=4M", "iflag=direct", NULL };
	unsigned long long full, part;
	uint64_t bytes;
	double t_dd, t_cmd;
	struct json_object *f;
	int ret, rc;
	char *p;

	ret = file_bytes(o->load_file, &bytes);
	if (ret) {
		bench_error(b, "%s: %s", o->load_file, strerror(-ret));
		return BENCH_FAIL;
	}
	snprintf(ifarg, sizeof(ifarg), "if=%s", o->load_file);
	joined(o->load_cmd, cmdline, sizeof(cmdline));

	ret = drop_caches();
	if (ret) {
		bench_error(b, "dropping the page cache: %s", strerror(-ret));
		return BENCH_FAIL;
	}
	rc = run(dd, err, sizeof(err), &t_dd);
	/* "N+M records in": N full blocks of 4 MiB and M partial ones */
	p = strstr(err, "records in");
	while (p && p > err && p[-1] != '\n')
		p--;
	if (rc || !p || sscanf(p, "%llu+%llu records in", &full, &part) != 2 ||
	    full * DD_BS > bytes || (full + part) * DD_BS < bytes) {
		bench_error(b, "%s (exit %d) did not read the %llu bytes of %s:\n%s",
			    joined(dd, cmdline, sizeof(cmdline)), rc,
			    (unsigned long long)bytes, o->load_file, err);
		return BENCH_FAIL;
	}
	joined(o->load_cmd, cmdline, sizeof(cmdline));

	ret = drop_caches();
	if (ret) {
		bench_error(b, "dropping the page cache: %s", strerror(-ret));
		return BENCH_FAIL;
	}
	bench_say("load: %s\n", cmdline);
	/* stderr in a pipe: no progress meter on the (serial) console */
	rc = run(o->load_cmd, err, sizeof(err), &t_cmd);
	if (rc) {
		bench_error(b, "%s: exit status %d:\n%s", cmdline, rc, err);
		return BENCH_FAIL;
	}

	f = figure_new(b);
	jset_str(f, "file", o->load_file);
	jset_u64(f, "bytes", bytes);
	jset_str(f, "command", cmdline);
	jset_num(f, "llmctl_s", t_cmd);
	jset_str(f, "direct_read", "dd bs=4M iflag=direct");
	jset_num(f, "direct_read_s", t_dd);
	jset_num(f, "llmctl_gbps", bytes * 8 / t_cmd / 1e9);
	jset_num(f, "direct_read_gbps", bytes * 8 / t_dd / 1e9);
	jset(b->root, "load", f);

	if (o->load_verify) {
		char **argv;
		double t;
		int n;

		for (n = 0; o->load_cmd[n]; n++)
			;
		argv = calloc(n + 2, sizeof(*argv));
		if (!argv) {
			bench_error(b, "out of memory");
			return BENCH_FAIL;
		}
		memcpy(argv, o->load_cmd, n * sizeof(*argv));
		argv[n] = "--verify";
		rc = run(argv, err, sizeof(err), &t);
		free(argv);
		jset_bool(f, "verified", !rc);
		if (rc) {
			jset_str(f, "status", "failed");
			bench_mismatch(b, "%s --verify: exit status %d: the cards do not hold "
				       "the file's bytes:\n%s", cmdline, rc, err);
			return BENCH_FAIL;
		}
	} else {
		jset_bool(f, "verified", false);
	}
	bench_say("load: %llu bytes: %s %.2f s (%.3f Gb/s); O_DIRECT read %.2f s "
		  "(%.3f Gb/s)%s\n", (unsigned long long)bytes, o->load_cmd[0], t_cmd,
		  bytes * 8 / t_cmd / 1e9, t_dd, bytes * 8 / t_dd / 1e9,
		  o->load_verify ? "; verified" : "");
	return BENCH_OK;
}
