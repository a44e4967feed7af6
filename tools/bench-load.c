// SPDX-License-Identifier: GPL-2.0
/*
 * llmdev-bench: loading a model beside an O_DIRECT read of the same file.
 *
 * The page cache is dropped before each. The O_DIRECT read is
 * `dd if=FILE of=/dev/null bs=4M iflag=direct` (busybox and coreutils dd
 * both have iflag=direct); the load is the command given after "--"
 * (make bench: llmctl load FILE --tp 2 --pp 2). Both are timed from fork
 * to exit. Every timed load must make the cards' HBM in use (sysfs
 * hbm_used, summed over the cards) grow, by as much in every round: a
 * load that found the model there already and kept it measured nothing.
 * With --load-verify the command runs once more after each timed load,
 * untimed and before anything undoes it, with --verify appended (llmctl
 * load then checks every card's share against the file, the regions kept
 * as they are) and must succeed without allocating anything more. The
 * --load-between command that undoes a load must bring every card's
 * hbm_used back to where it was before the first load, within
 * HBM_SETTLE_S.
 */
#define _GNU_SOURCE
#include <dirent.h>
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
#define SYSFS_CLASS	"/sys/class/llmdev"
#define HBM_CARDS_MAX	64
#define HBM_SETTLE_S	60	/* for an unload's HBM to be given back */
#define HBM_POLL_US	20000

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

/* ---- HBM in use, per card (sysfs hbm_used) --------------------------------- */

struct hbm_snap {
	unsigned int n;
	unsigned int card[HBM_CARDS_MAX];	/* llmdevN */
	uint64_t used[HBM_CARDS_MAX];		/* its hbm_used, bytes */
};

/* Every card's hbm_used: 0, or BENCH_FAIL (said why). */
static int hbm_read(struct bench *b, struct hbm_snap *s)
{
	DIR *d = opendir(SYSFS_CLASS);
	struct dirent *e;
	int ret = 0;

	s->n = 0;
	if (!d) {
		bench_error(b, "load: %s: %s", SYSFS_CLASS, strerror(errno));
		return BENCH_FAIL;
	}
	while (!ret && (e = readdir(d))) {
		char path[300], buf[32];
		unsigned int card;
		ssize_t len;
		int fd, end = 0;

		if (sscanf(e->d_name, "llmdev%u%n", &card, &end) != 1 || e->d_name[end])
			continue;
		if (s->n == HBM_CARDS_MAX) {
			bench_error(b, "load: more than %u cards", HBM_CARDS_MAX);
			ret = BENCH_FAIL;
			break;
		}
		snprintf(path, sizeof(path), SYSFS_CLASS "/%s/hbm_used", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		len = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (len <= 0) {
			bench_error(b, "load: reading %s: %s", path,
				    len ? strerror(errno) : "empty");
			ret = BENCH_FAIL;
		} else {
			buf[len] = 0;
			s->card[s->n] = card;
			s->used[s->n++] = strtoull(buf, NULL, 0);
		}
		if (fd >= 0)
			close(fd);
	}
	closedir(d);
	if (!ret && !s->n) {
		bench_error(b, "load: no card in %s", SYSFS_CLASS);
		ret = BENCH_FAIL;
	}
	return ret;
}

static uint64_t hbm_sum(const struct hbm_snap *s)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < s->n; i++)
		sum += s->used[i];
	return sum;
}

/*
 * Wait until every card of @base uses no more HBM than it did then (the
 * regions a load made are all freed and scrubbed): 0, or BENCH_FAIL after
 * HBM_SETTLE_S (said why: @after names what should have freed them).
 */
static int hbm_settle(struct bench *b, const struct hbm_snap *base, const char *after)
{
	double end = now_s() + HBM_SETTLE_S;
	struct hbm_snap now;
	unsigned int i, j;

	for (;;) {
		bool settled = true;

		if (hbm_read(b, &now))
			return BENCH_FAIL;
		for (i = 0; i < base->n; i++) {
			for (j = 0; j < now.n && now.card[j] != base->card[i]; j++)
				;
			if (j == now.n) {
				bench_error(b, "load: llmdev%u is gone (after %s)", base->card[i],
					    after);
				return BENCH_FAIL;
			}
			if (now.used[j] > base->used[i]) {
				settled = false;
				if (now_s() >= end) {
					bench_error(b, "load: %d s after %s, llmdev%u still has "
						    "%llu bytes of HBM in use, %llu before the "
						    "first load: the regions were not freed",
						    HBM_SETTLE_S, after, base->card[i],
						    (unsigned long long)now.used[j],
						    (unsigned long long)base->used[i]);
					return BENCH_FAIL;
				}
				break;
			}
		}
		if (settled)
			return 0;
		usleep(HBM_POLL_US);
	}
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

/* the median of @n seconds (nearest rank, as the figures' medians); sorts @v */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median_s(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[(n + 1) / 2 - 1];
}

/* Drop the page cache, then time dd of the whole file: 0 or BENCH_FAIL (said why). */
static int timed_dd(struct bench *b, uint64_t bytes, double *secs)
{
	const struct bench_opts *o = b->o;
	char ifarg[4096 + 8], cmdline[1024], err[4096];
	char *dd[] = { "dd", ifarg, "of=/dev/null", "bs=4M", "iflag=direct", NULL };
	unsigned long long full, part;
	int ret, rc;
	char *p;

	snprintf(ifarg, sizeof(ifarg), "if=%s", o->load_file);
	ret = drop_caches();
	if (ret) {
		bench_error(b, "dropping the page cache: %s", strerror(-ret));
		return BENCH_FAIL;
	}
	rc = run(dd, err, sizeof(err), secs);
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
	return 0;
}

/* Run the load command (with the page cache dropped first when @timed). */
static int load_once(struct bench *b, const char *cmdline, bool timed, double *secs)
{
	char err[4096];
	int ret, rc;

	if (timed) {
		ret = drop_caches();
		if (ret) {
			bench_error(b, "dropping the page cache: %s", strerror(-ret));
			return BENCH_FAIL;
		}
	}
	/* stderr in a pipe: no progress meter on the (serial) console */
	rc = run(b->o->load_cmd, err, sizeof(err), secs);
	if (rc) {
		bench_error(b, "%s%s: exit status %d:\n%s", cmdline, timed ? "" : " (warm-up)",
			    rc, err);
		return BENCH_FAIL;
	}
	return 0;
}

/*
 * Undo a load with the --load-between command, and wait until the cards
 * have every byte of HBM back that they had in @base (before the first
 * load): an unload that freed nothing, or not all, fails here.
 */
static int load_between(struct bench *b, const struct hbm_snap *base)
{
	char *sh[] = { "/bin/sh", "-c", (char *)b->o->load_between, NULL };
	char err[4096], what[600];
	double t;
	int rc;

	rc = run(sh, err, sizeof(err), &t);
	if (rc) {
		bench_error(b, "--load-between '%s': exit status %d:\n%s", b->o->load_between,
			    rc, err);
		return BENCH_FAIL;
	}
	snprintf(what, sizeof(what), "--load-between '%s'", b->o->load_between);
	return hbm_settle(b, base, what);
}

/*
 * The untimed run of the load command with --verify appended, over the
 * load just timed (its regions are kept, read back and compared with the
 * file). It must succeed and allocate nothing: HBM in use as in @loaded.
 * 0, or BENCH_FAIL (said why; a verification failure counted as one).
 */
static int verify_load(struct bench *b, const char *cmdline, unsigned int round,
		       const struct hbm_snap *loaded)
{
	const struct bench_opts *o = b->o;
	struct hbm_snap after;
	char **argv, err[4096];
	double t;
	int n, rc;

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
	if (rc) {
		bench_mismatch(b, "%s --verify (after timed load %u): exit status %d: the cards "
			       "do not hold the file's bytes:\n%s", cmdline, round + 1, rc, err);
		return BENCH_FAIL;
	}
	if (hbm_read(b, &after))
		return BENCH_FAIL;
	if (hbm_sum(&after) != hbm_sum(loaded)) {
		bench_mismatch(b, "%s --verify (after timed load %u) changed the HBM in use "
			       "from %llu to %llu bytes: the timed load did not leave the "
			       "model's regions as --verify needs them", cmdline, round + 1,
			       (unsigned long long)hbm_sum(loaded),
			       (unsigned long long)hbm_sum(&after));
		return BENCH_FAIL;
	}
	return 0;
}

/*
 * With --load-between: a warm-up load (the first load of a boot also
 * pays for the model's HBM being touched for the first time on the host),
 * then --load-rounds rounds of dd and the load, the load undone between
 * them; the medians. Without: one round. Each timed load must have made
 * the HBM in use grow, by the same bytes every round, and (--load-verify)
 * is verified before it is undone.
 */
int bench_load(struct bench *b)
{
	const struct bench_opts *o = b->o;
	double t_dd[BENCH_LOAD_ROUNDS_MAX], t_cmd[BENCH_LOAD_ROUNDS_MAX], m_dd, m_cmd;
	struct json_object *f, *a_dd, *a_cmd;
	unsigned int r, rounds = o->load_rounds ? o->load_rounds : 1;
	struct hbm_snap base, loaded;
	uint64_t bytes, grew = 0;
	char cmdline[1024];
	int ret;

	ret = file_bytes(o->load_file, &bytes);
	if (ret) {
		bench_error(b, "%s: %s", o->load_file, strerror(-ret));
		return BENCH_FAIL;
	}
	joined(o->load_cmd, cmdline, sizeof(cmdline));
	bench_say("load: %s%s\n", cmdline, o->load_between ? " (a warm-up, then rounds)" : "");
	/* the HBM in use before any load: what every unload must bring back */
	if (hbm_read(b, &base))
		return BENCH_FAIL;
	if (o->load_between) {
		if (load_once(b, cmdline, false, &t_cmd[0]) || load_between(b, &base))
			return BENCH_FAIL;
	}
	for (r = 0; r < rounds; r++) {
		if (timed_dd(b, bytes, &t_dd[r]) || load_once(b, cmdline, true, &t_cmd[r]))
			return BENCH_FAIL;
		if (hbm_read(b, &loaded))
			return BENCH_FAIL;
		if (hbm_sum(&loaded) <= hbm_sum(&base)) {
			bench_error(b, "%s (timed load %u): the cards' HBM in use did not grow "
				    "(%llu bytes before the first load, %llu now): nothing was "
				    "loaded; was the model on the cards already?", cmdline, r + 1,
				    (unsigned long long)hbm_sum(&base),
				    (unsigned long long)hbm_sum(&loaded));
			return BENCH_FAIL;
		}
		if (r && hbm_sum(&loaded) - hbm_sum(&base) != grew) {
			bench_error(b, "%s (timed load %u): the HBM in use grew by %llu bytes, "
				    "by %llu in the first round: the rounds did not load the same",
				    cmdline, r + 1,
				    (unsigned long long)(hbm_sum(&loaded) - hbm_sum(&base)),
				    (unsigned long long)grew);
			return BENCH_FAIL;
		}
		grew = hbm_sum(&loaded) - hbm_sum(&base);
		/* the data of every timed load, before anything undoes it */
		if (o->load_verify && verify_load(b, cmdline, r, &loaded)) {
			f = figure_new(b);
			jset_str(f, "status", "failed");
			jset_str(f, "file", o->load_file);
			jset_u64(f, "bytes", bytes);
			jset_str(f, "command", cmdline);
			jset(f, "failed_round", json_object_new_int(r + 1));
			jset_bool(f, "verified", false);
			jset(b->root, "load", f);
			return BENCH_FAIL;
		}
		/* the last load stays */
		if (o->load_between && r + 1 < rounds && load_between(b, &base))
			return BENCH_FAIL;
	}
	a_dd = json_object_new_array();
	a_cmd = json_object_new_array();
	for (r = 0; a_dd && a_cmd && r < rounds; r++) {
		json_object_array_add(a_dd, jnum(t_dd[r]));
		json_object_array_add(a_cmd, jnum(t_cmd[r]));
	}
	m_dd = median_s(t_dd, rounds);
	m_cmd = median_s(t_cmd, rounds);

	f = figure_new(b);
	jset_str(f, "file", o->load_file);
	jset_u64(f, "bytes", bytes);
	jset_str(f, "command", cmdline);
	jset_num(f, "llmctl_s", m_cmd);
	jset_str(f, "direct_read", "dd bs=4M iflag=direct");
	jset_num(f, "direct_read_s", m_dd);
	jset_num(f, "llmctl_gbps", bytes * 8 / m_cmd / 1e9);
	jset_num(f, "direct_read_gbps", bytes * 8 / m_dd / 1e9);
	jset(f, "rounds", json_object_new_int(rounds));
	jset(f, "warmup", json_object_new_boolean(!!o->load_between));
	jset(f, "llmctl_samples_s", a_cmd);
	jset(f, "direct_read_samples_s", a_dd);
	jset_u64(f, "hbm_loaded_bytes", grew);
	/* every round's load verified (a failure returned above) */
	jset_bool(f, "verified", o->load_verify);
	jset(b->root, "load", f);

	bench_say("load: %llu bytes: %s %.2f s (%.3f Gb/s); O_DIRECT read %.2f s "
		  "(%.3f Gb/s)%s%s\n", (unsigned long long)bytes, o->load_cmd[0], m_cmd,
		  bytes * 8 / m_cmd / 1e9, m_dd, bytes * 8 / m_dd / 1e9,
		  rounds > 1 ? "; medians of the rounds" : "",
		  o->load_verify ? (rounds > 1 ? "; every round verified" : "; verified") : "");
	return BENCH_OK;
}
