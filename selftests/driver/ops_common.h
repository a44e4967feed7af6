/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What ops_driver and ops_unplug share: running a program with its output
 * captured, the card's hwmon directory, its perf PMU, moving a known
 * number of bytes. Static functions (the two tests are separate binaries,
 * each including this once); the helpers of driver_util.h are used too.
 */
#ifndef LLMDEV_OPS_COMMON_H
#define LLMDEV_OPS_COMMON_H

#include <dirent.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "driver_util.h"

#define OPS_UNUSED __attribute__((unused))

/* A program started in the background: its pid and output file. */
struct ops_bg {
	pid_t pid;
	char out[64];
};

/* Start /bin/sh -c @cmd with stdout and stderr in a file; 0 or -errno. */
static OPS_UNUSED int ops_bg_start(struct ops_bg *b, const char *tag, const char *cmd)
{
	snprintf(b->out, sizeof(b->out), "/tmp/ops-%s.%d", tag, getpid());
	b->pid = fork();
	if (b->pid < 0)
		return -errno;
	if (!b->pid) {
		int fd = open(b->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0)
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return 0;
}

/* Wait up to @secs for it: its exit status, 128 + signal, or -1 (killed at timeout). */
static OPS_UNUSED int ops_bg_wait(struct ops_bg *b, unsigned int secs)
{
	uint64_t end = ld_now_ns() + secs * LD_NSEC_PER_SEC;
	int st;

	while (ld_now_ns() < end) {
		pid_t r = waitpid(b->pid, &st, WNOHANG);

		if (r == b->pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		ld_msleep(50);
	}
	kill(b->pid, SIGKILL);
	waitpid(b->pid, &st, 0);
	return -1;
}

/* Create @path (empty); 0 or -errno. */
static OPS_UNUSED int ops_touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/* Wait up to @secs for @path to exist; true if it does. */
static OPS_UNUSED bool ops_wait_file(const char *path, unsigned int secs)
{
	uint64_t end = ld_now_ns() + secs * LD_NSEC_PER_SEC;

	while (access(path, F_OK)) {
		if (ld_now_ns() > end)
			return false;
		ld_msleep(50);
	}
	return true;
}

/*
 * A shell loop that runs @body every 0.2 s until @stop exists (at most
 * 300 s), exiting with the first failure's status.
 */
static OPS_UNUSED void ops_loop_cmd(char *buf, size_t len, const char *body, const char *stop)
{
	snprintf(buf, len, "i=0; while [ ! -e %s ] && [ $i -lt 1500 ]; do %s || exit $?; "
		 "sleep 0.2; i=$((i + 1)); done", stop, body);
}

/* What it printed (static buffer, NUL-terminated). */
static OPS_UNUSED const char *ops_bg_output(struct ops_bg *b)
{
	static char buf[65536];

	if (ld_read_file(b->out, buf, sizeof(buf)) < 0)
		buf[0] = 0;
	return buf;
}

/* Run @cmd (sh -c, stderr too) to the end: its output in @out; exit status or -1. */
static OPS_UNUSED int ops_run(const char *cmd, char *out, size_t len)
{
	struct ops_bg b;
	int rc;

	if (ops_bg_start(&b, "run", cmd))
		return -1;
	rc = ops_bg_wait(&b, 120);
	snprintf(out, len, "%s", ops_bg_output(&b));
	unlink(b.out);
	return rc;
}

static OPS_UNUSED bool ops_have(const char *prog)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

/* /sys/class/llmdev/llmdev<card>/device/hwmon/hwmonN; 0 or -ENOENT */
static OPS_UNUSED int ops_hwmon_dir(unsigned int card, char *buf, size_t len)
{
	char dir[128];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), LD_SYSFS_CLASS "/llmdev%u/device/hwmon", card);
	d = opendir(dir);
	if (!d)
		return -ENOENT;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "hwmon", 5)) {
			snprintf(buf, len, "%.100s/%.60s", dir, de->d_name);
			closedir(d);
			return 0;
		}
	closedir(d);
	return -ENOENT;
}

static OPS_UNUSED long ops_hwmon_long(const char *dir, const char *attr)
{
	char path[300], buf[64];

	snprintf(path, sizeof(path), "%s/%s", dir, attr);
	if (ld_read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	return strtol(buf, NULL, 10);
}

/* A counting event of card @card's PMU on CPU 0: the fd or -errno. */
static OPS_UNUSED int ops_pmu_open(unsigned int card, const char *event, uint64_t period,
				   int cpu, pid_t pid)
{
	char path[160], buf[64];
	struct perf_event_attr attr;
	unsigned long long config;
	int type, fd;

	snprintf(path, sizeof(path), "/sys/bus/event_source/devices/llmdev%u/type", card);
	if (ld_read_file(path, buf, sizeof(buf)) < 0)
		return -ENOENT;
	type = atoi(buf);
	snprintf(path, sizeof(path), "/sys/bus/event_source/devices/llmdev%u/events/%s",
		 card, event);
	if (ld_read_file(path, buf, sizeof(buf)) < 0) {
		if (strncmp(event, "config=", 7))
			return -ENOENT;
		snprintf(buf, sizeof(buf), "event=%s", event + 7);
	}
	if (sscanf(buf, "event=%llx", &config) != 1)
		return -EINVAL;
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = type;
	attr.config = config;
	attr.sample_period = period;
	fd = syscall(SYS_perf_event_open, &attr, pid, cpu, -1, 0);
	return fd < 0 ? -errno : fd;
}

static OPS_UNUSED int64_t ops_pmu_read(int fd)
{
	uint64_t v;

	return read(fd, &v, sizeof(v)) == sizeof(v) ? (int64_t)v : -1;
}

/* Move @bytes in 1 MiB transfers through region @handle (1 MiB) of @fd. */
static OPS_UNUSED int ops_move(int fd, uint32_t handle, uint64_t bytes, bool to_card)
{
	static uint8_t *buf;
	int ret;

	if (!buf) {
		buf = ld_alloc_buf(LD_MIB);
		if (!buf)
			return -ENOMEM;
		ld_fill(buf, LD_MIB, 1);
	}
	while (bytes) {
		uint64_t n = bytes < LD_MIB ? bytes : LD_MIB;

		ret = ld_xfer(fd, handle, 0, buf, n, to_card, LLMDEV_RING_ANY);
		if (ret)
			return ret;
		bytes -= n;
	}
	return 0;
}

/* The value perf stat -x, wrote for @event in @file, or -1 */
static OPS_UNUSED long long ops_perf_stat_value(const char *file, const char *event)
{
	char buf[8192], *line;

	if (ld_read_file(file, buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		if (strstr(line, event) && line[0] >= '0' && line[0] <= '9')
			return strtoll(line, NULL, 10);
	return -1;
}

#endif /* LLMDEV_OPS_COMMON_H */
