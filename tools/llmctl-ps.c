// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl ps [DEV]: the processes that hold cards open, from the driver's
 * per-file usage in /proc/PID/fdinfo (docs/fdinfo.md): per process and
 * card, the fds (a file shared by several descriptors is counted once, by
 * its client id), regions and HBM they own, bytes moved by DMA each way,
 * DMA busy time and collectives. Then the persistent regions whose creator
 * has exited (they keep HBM until freed: 'llmctl unload', or
 * LLMDEV_HBM_FREE by a process of their uid).
 *
 * Processes of other users show only to root (their fdinfo is not
 * readable otherwise); the count of those skipped is printed.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llmctl.h"

/* one open llmdev file, as its fdinfo tells */
struct ps_file {
	int pid;
	int fd;
	int card;
	uint64_t client_id;
	uint64_t regions_private, regions_persistent;
	uint64_t memory_private, memory_persistent;
	uint64_t h2c_bytes, c2h_bytes, transfers, failed, inflight, busy_ns;
	uint64_t collectives;
};

/* what one process holds of one card */
struct ps_entry {
	int pid;
	char comm[64];
	int card;
	unsigned int nfds;
	struct ps_file sum;	/* the files' values added up (distinct files) */
};

static int parse_fdinfo(const char *path, struct ps_file *f)
{
	char line[256], key[64], card[64];
	bool ours = false;
	unsigned long long v;
	FILE *fp = fopen(path, "re");

	if (!fp)
		return -errno;
	f->card = -1;
	while (fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "llmdev-card:\t%63s", card) == 1) {
			if (!strncmp(card, "llmdev", 6))
				f->card = atoi(card + 6);
			continue;
		}
		if (sscanf(line, "%63[^:]:\t%llu", key, &v) != 2)
			continue;
		if (!strcmp(key, "llmdev-client-id")) {
			ours = true;
			f->client_id = v;
		}
#define KEY(k, m) else if (!strcmp(key, k)) f->m = v
		KEY("llmdev-regions-private", regions_private);
		KEY("llmdev-regions-persistent", regions_persistent);
		KEY("llmdev-memory-private", memory_private);
		KEY("llmdev-memory-persistent", memory_persistent);
		KEY("llmdev-dma-h2c-bytes", h2c_bytes);
		KEY("llmdev-dma-c2h-bytes", c2h_bytes);
		KEY("llmdev-dma-transfers", transfers);
		KEY("llmdev-dma-failed", failed);
		KEY("llmdev-dma-inflight", inflight);
		KEY("llmdev-engine-dma", busy_ns);
		KEY("llmdev-collectives", collectives);
#undef KEY
	}
	fclose(fp);
	return ours && f->card >= 0 ? 0 : -ENOENT;
}

static void comm_of(int pid, char *buf, size_t len)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	if (read_sysfs(path, buf, len))
		snprintf(buf, len, "?");
}

static int cmp_file(const void *a, const void *b)
{
	const struct ps_file *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->card != y->card)
		return x->card < y->card ? -1 : 1;
	if (x->client_id != y->client_id)
		return x->client_id < y->client_id ? -1 : 1;
	return x->fd - y->fd;
}

/*
 * Every llmdev file of every process (of @card, or all when < 0), sorted
 * by pid, card, client id. @unreadable counts the processes whose fds we
 * may not see. Return: the count, or -errno.
 */
static int scan_proc(int card, struct ps_file **out, int *unreadable)
{
	struct ps_file *files = NULL, f;
	DIR *proc = opendir("/proc");
	struct dirent *p;
	int n = 0, cap = 0;

	*unreadable = 0;
	if (!proc)
		return -errno;
	while ((p = readdir(proc))) {
		char dir[PATH_MAX], path[PATH_MAX + 300];
		struct dirent *d;
		DIR *fds;

		if (!isdigit((unsigned char)p->d_name[0]))
			continue;
		snprintf(dir, sizeof(dir), "/proc/%s/fdinfo", p->d_name);
		fds = opendir(dir);
		if (!fds) {
			if (errno == EACCES)
				(*unreadable)++;
			continue;	/* exited meanwhile */
		}
		while ((d = readdir(fds))) {
			if (!isdigit((unsigned char)d->d_name[0]))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
			memset(&f, 0, sizeof(f));
			if (parse_fdinfo(path, &f) || (card >= 0 && f.card != card))
				continue;
			f.pid = atoi(p->d_name);
			f.fd = atoi(d->d_name);
			if (n == cap) {
				struct ps_file *nf;

				cap = cap ? 2 * cap : 16;
				nf = realloc(files, cap * sizeof(*files));
				if (!nf) {
					closedir(fds);
					closedir(proc);
					free(files);
					return -ENOMEM;
				}
				files = nf;
			}
			files[n++] = f;
		}
		closedir(fds);
	}
	closedir(proc);
	if (n)
		qsort(files, n, sizeof(*files), cmp_file);
	*out = files;
	return n;
}

static void add_file(struct ps_file *sum, const struct ps_file *f)
{
	sum->regions_private += f->regions_private;
	sum->regions_persistent += f->regions_persistent;
	sum->memory_private += f->memory_private;
	sum->memory_persistent += f->memory_persistent;
	sum->h2c_bytes += f->h2c_bytes;
	sum->c2h_bytes += f->c2h_bytes;
	sum->transfers += f->transfers;
	sum->failed += f->failed;
	sum->inflight += f->inflight;
	sum->busy_ns += f->busy_ns;
	sum->collectives += f->collectives;
}

static void print_entry(const struct ps_entry *e, const struct ps_file *files, int n)
{
	char b[24];
	int i;

	print_open_object(NULL);
	print_int(PRINT_ANY, "pid", "%7d ", e->pid);
	print_string(PRINT_ANY, "command", "%-16s ", e->comm);
	print_int(PRINT_JSON, "card", NULL, e->card);
	snprintf(b, sizeof(b), "llmdev%d", e->card);
	print_text("%-9s ", b);
	print_open_array("fds");
	for (i = 0; i < n; i++)
		if (files[i].pid == e->pid && files[i].card == e->card)
			print_int(PRINT_JSON, NULL, NULL, files[i].fd);
	print_close_array();
	print_uint(PRINT_FP, NULL, "%5u ", e->nfds);
	print_u64(PRINT_JSON, "regions_private", NULL, e->sum.regions_private);
	print_u64(PRINT_JSON, "regions_persistent", NULL, e->sum.regions_persistent);
	print_u64(PRINT_FP, NULL, "%7" PRIu64 " ",
		  e->sum.regions_private + e->sum.regions_persistent);
	print_bytes(PRINT_JSON, "memory_private", NULL, e->sum.memory_private);
	print_bytes(PRINT_JSON, "memory_persistent", NULL, e->sum.memory_persistent);
	print_bytes(PRINT_FP, NULL, "%10s ", e->sum.memory_private + e->sum.memory_persistent);
	print_bytes(PRINT_ANY, "dma_h2c_bytes", "%10s ", e->sum.h2c_bytes);
	print_bytes(PRINT_ANY, "dma_c2h_bytes", "%10s ", e->sum.c2h_bytes);
	print_u64(PRINT_ANY, "dma_transfers", "%9" PRIu64 " ", e->sum.transfers);
	print_u64(PRINT_JSON, "dma_failed", NULL, e->sum.failed);
	print_u64(PRINT_JSON, "dma_inflight", NULL, e->sum.inflight);
	print_u64(PRINT_JSON, "dma_busy_ns", NULL, e->sum.busy_ns);
	snprintf(b, sizeof(b), "%.3f s", e->sum.busy_ns / 1e9);
	print_text("%9s ", b);
	print_u64(PRINT_ANY, "collectives", "%5" PRIu64 "\n", e->sum.collectives);
	print_close_object();
}

/* persistent regions (of @card, or all) whose creator has exited */
static int print_orphans(int card)
{
	struct llmdev **devs;
	int n, i, found = 0;
	unsigned int j;

	print_open_array("unowned_regions");
	n = llmdev_count();
	devs = n > 0 ? calloc(n, sizeof(*devs)) : NULL;
	for (i = 0; devs && i < n + 64 && found < n; i++) {
		struct llmdev_hbm_region *r = NULL;
		unsigned int nr = 0;
		struct llmdev *dev;

		if (llmdev_open(i, &dev))
			continue;
		found++;
		if ((card < 0 || card == i) && !llmdev_hbm_list(dev, &r, &nr)) {
			for (j = 0; j < nr; j++) {
				char path[64];

				snprintf(path, sizeof(path), "/proc/%d", r[j].owner_pid);
				if (!(r[j].flags & LLMDEV_REGION_PERSISTENT) ||
				    (r[j].owner_pid > 0 && !access(path, F_OK)))
					continue;
				print_open_object(NULL);
				print_int(PRINT_ANY, "card", "  llmdev%d ", i);
				print_string(PRINT_ANY, "name", "%-32s ", r[j].name[0] ? r[j].name : NULL);
				print_uint(PRINT_ANY, "owner_uid", "uid %-6u ", r[j].owner_uid);
				print_int(PRINT_ANY, "creator_pid", "pid %-7d ", r[j].owner_pid);
				print_bytes(PRINT_ANY, "length", "%10s\n", r[j].length);
				print_close_object();
			}
			free(r);
		}
		llmdev_close(dev);
	}
	free(devs);
	print_close_array();
	return 0;
}

int cmd_ps(int argc, char **argv)
{
	struct ps_file *files = NULL;
	struct ps_entry e;
	int n, i, j, card = -1, unreadable;

	if (has_help(argc, argv) || argc > 2) {
		if (has_help(argc, argv))
			return puts("usage: llmctl ps [DEV] [--json]\n\n"
				    "The processes holding cards open (of DEV, or of every card): pid,\n"
				    "command, card, open files, regions and HBM they own, DMA bytes each\n"
				    "way, transfers, DMA busy time, collectives (from /proc/PID/fdinfo);\n"
				    "then the persistent regions whose creator has exited. Other users'\n"
				    "processes show only to root."), 0;
		return usage_err("usage: llmctl ps [DEV]");
	}
	if (argc == 2 && argv[1][0] == '-')
		return usage_err("ps: unknown option '%s'", argv[1]);
	if (!driver_loaded()) {
		msg("the llmdev driver is not loaded: no process holds a card");
		return EXIT_FAIL;
	}
	if (argc == 2) {
		struct llmdev *dev;

		if (open_card(argv[1], &dev))
			return EXIT_FAIL;
		card = card_index(dev);
		llmdev_close(dev);
	}
	n = scan_proc(card, &files, &unreadable);
	if (n < 0) {
		msg("reading /proc: %s", strerror(-n));
		return EXIT_FAIL;
	}
	print_start("llmdev.ps/1");
	print_text("%7s %-16s %-9s %5s %7s %10s %10s %10s %9s %9s %5s\n", "PID", "COMMAND",
		   "CARD", "FDS", "REGIONS", "HBM", "H2C", "C2H", "TRANSFERS", "DMA BUSY",
		   "COLL");
	print_open_array("processes");
	for (i = 0; i < n; i = j) {
		memset(&e, 0, sizeof(e));
		e.pid = files[i].pid;
		e.card = files[i].card;
		comm_of(e.pid, e.comm, sizeof(e.comm));
		for (j = i; j < n && files[j].pid == e.pid && files[j].card == e.card; j++) {
			e.nfds++;
			/* several fds of one file: count the file once */
			if (j == i || files[j].client_id != files[j - 1].client_id)
				add_file(&e.sum, &files[j]);
		}
		print_entry(&e, files, n);
	}
	print_close_array();
	print_text("persistent regions whose creator has exited:\n");
	print_orphans(card);
	print_int(PRINT_JSON, "unreadable_processes", NULL, unreadable);
	if (unreadable)
		print_text("note: %d processes of other users not shown (run as root)\n",
			   unreadable);
	free(files);
	return print_done();
}
