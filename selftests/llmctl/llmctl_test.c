// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl in the VM: every subcommand run as a child process (stdout,
 * stderr and exit status captured), its JSON parsed with json-c
 * (tools/test-json.c: strict, UTF-8 checked), every object checked
 * against its schema in docs/llmctl.md (each documented member there, of
 * its type) and compared with what the driver says through libllmdev;
 * the failure cases with their message and exit status.
 *
 * The test manages the driver itself (llmctl driver load/unload) and puts
 * it back as it found it. It generates its models with gguf-gen in /tmp.
 * Tests that need more cards than the VM has say SKIP; the test for a
 * host without cards runs only in a VM started with --cards 0.
 *
 * Environment: LLMCTL, GGUF_GEN and LLMDEV_BENCH name the programs
 * (default: llmctl, gguf-gen and llmdev-bench from PATH); LLMCTL_MODULE
 * (set in the VM) is where llmctl loads the driver from.
 *
 * llmdev-bench is tested here too (its --smoke run and its --inject
 * faults), as the other tool of build/bin that talks to the cards.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "llmdev.h"		/* libllmdev */
#include "llmdev_regs.h"	/* PCI IDs, link ports */
#include "test-json.h"
#include "llmdev_user.h"	/* selftests/lib: unprivileged users */

#define NOBODY		65534
#define MODULE_DIR	"/sys/module/llmdev"
#define SEC		1000000000ULL
#define RUN_TIMEOUT	30		/* seconds any llmctl run may take */

/* ---- running llmctl ------------------------------------------------------ */

struct run {
	char cmd[512];		/* the command line, for messages */
	pid_t pid;
	int outfd, errfd;
	int rc;			/* exit status, 128 + signal, -1 timed out */
	char *out, *err;	/* what it printed */
	double seconds;		/* how long it ran */
	struct timespec t0;
};

#define AS_NOBODY	1u

static double since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

static const char *prog(const char *name)
{
	const char *env = getenv(!strcmp(name, "llmctl") ? "LLMCTL" :
				 !strcmp(name, "llmdev-bench") ? "LLMDEV_BENCH" :
				 "GGUF_GEN");

	return env && *env ? env : name;
}

/* Start argv[0] (a program name: see prog()) with its output in pipes. */
static int run_start(struct run *r, unsigned int flags, const char *const *argv)
{
	int out[2], err[2];
	size_t n = 0;
	int i;

	memset(r, 0, sizeof(*r));
	r->outfd = r->errfd = -1;
	for (i = 0; argv[i]; i++)
		n += snprintf(r->cmd + n, n < sizeof(r->cmd) ? sizeof(r->cmd) - n : 0,
			      "%s%s", i ? " " : "", argv[i]);
	if (pipe2(out, O_CLOEXEC))
		return -errno;
	if (pipe2(err, O_CLOEXEC)) {
		close(out[0]);
		close(out[1]);
		return -errno;
	}
	fflush(stdout);
	fflush(stderr);
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	r->pid = fork();
	if (r->pid < 0)
		return -errno;
	if (r->pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		/* nobody in the card group: the udev rule lets it in */
		if ((flags & AS_NOBODY) && llmdev_become(NOBODY, true))
			_exit(125);
		execvp(prog(argv[0]), (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", prog(argv[0]), strerror(errno));
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	r->outfd = out[0];
	r->errfd = err[0];
	return 0;
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
	char *b = realloc(*buf, *len + n + 1);

	if (!b)
		return;
	memcpy(b + *len, data, n);
	*len += n;
	b[*len] = 0;
	*buf = b;
}

/* Collect its output until it exits; kill it after @timeout seconds. */
static void run_finish(struct run *r, double timeout)
{
	size_t nout = 0, nerr = 0;
	int status;

	r->out = strdup("");
	r->err = strdup("");
	while (r->outfd >= 0 || r->errfd >= 0) {
		struct pollfd p[2] = { { r->outfd, POLLIN, 0 }, { r->errfd, POLLIN, 0 } };
		double left = timeout - since(&r->t0);
		char buf[4096];
		int k;

		if (left <= 0) {
			kill(r->pid, SIGKILL);
			break;
		}
		if (poll(p, 2, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			break;
		for (k = 0; k < 2; k++) {
			int *fd = k ? &r->errfd : &r->outfd;
			ssize_t n;

			if (*fd < 0 || !(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(*fd, buf, sizeof(buf));
			if (n > 0) {
				append(k ? &r->err : &r->out, k ? &nerr : &nout, buf, n);
			} else if (n == 0 || errno != EINTR) {
				close(*fd);
				*fd = -1;
			}
		}
	}
	if (r->outfd >= 0)
		close(r->outfd);
	if (r->errfd >= 0)
		close(r->errfd);
	r->outfd = r->errfd = -1;
	while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
		;
	r->seconds = since(&r->t0);
	if (r->seconds >= timeout)
		r->rc = -1;
	else if (WIFEXITED(status))
		r->rc = WEXITSTATUS(status);
	else
		r->rc = 128 + WTERMSIG(status);
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

static int run_argv(struct run *r, unsigned int flags, const char *const *argv)
{
	int ret = run_start(r, flags, argv);

	if (ret) {
		r->rc = -1;
		r->out = strdup("");
		r->err = strdup(strerror(-ret));
		return ret;
	}
	run_finish(r, RUN_TIMEOUT);
	return 0;
}

/* run(&r, "list", "--json"): llmctl with those arguments */
#define run(r, ...) \
	run_argv(r, 0, (const char *const[]){ "llmctl", __VA_ARGS__, NULL })
#define run_nobody(r, ...) \
	run_argv(r, AS_NOBODY, (const char *const[]){ "llmctl", __VA_ARGS__, NULL })

/* The run ended with @code and said @msg (maybe "") on stderr. */
#define EXPECT_RUN(r, code, msg) do {					\
	EXPECT_EQ(code, (r)->rc)					\
		TH_LOG("'%s': exit %d, expected %d; stderr: %s",	\
		       (r)->cmd, (r)->rc, code, (r)->err);		\
	EXPECT_NE(NULL, strstr((r)->err, msg))				\
		TH_LOG("'%s': stderr lacks \"%s\": %s", (r)->cmd, msg, (r)->err); \
} while (0)

/* Run llmctl with the arguments (as nobody); it ends with @code, says @msg. */
#define EXPECT_LLMCTL_AS(flags, code, msg, ...) do {			\
	struct run r_;							\
									\
	run_argv(&r_, flags, (const char *const[]){ "llmctl", __VA_ARGS__, NULL }); \
	EXPECT_RUN(&r_, code, msg);					\
	run_free(&r_);							\
} while (0)
#define EXPECT_LLMCTL(code, msg, ...) EXPECT_LLMCTL_AS(0, code, msg, __VA_ARGS__)
#define EXPECT_LLMCTL_NOBODY(code, msg, ...) \
	EXPECT_LLMCTL_AS(AS_NOBODY, code, msg, __VA_ARGS__)

#define ASSERT_RUN_OK(r) do {						\
	ASSERT_EQ(0, (r)->rc)						\
		TH_LOG("'%s': exit %d; stderr: %s", (r)->cmd, (r)->rc, (r)->err); \
} while (0)

/* ---- the schemas (docs/llmctl.md) ------------------------------------------- */

enum mtype { M_INT, M_NUM, M_STR, M_BOOL, M_ARR, M_OBJ };

/* a member: its type; or null too; or it may be missing */
struct member {
	const char *key;
	enum mtype type;
	bool null, optional;
};

#define INT(k)		{ k, M_INT, false, false }
#define INT_NULL(k)	{ k, M_INT, true, false }
#define NUM(k)		{ k, M_NUM, false, false }
#define STR(k)		{ k, M_STR, false, false }
#define STR_NULL(k)	{ k, M_STR, true, false }
#define BOOL(k)		{ k, M_BOOL, false, false }
#define ARR(k)		{ k, M_ARR, false, false }
#define OBJ(k)		{ k, M_OBJ, false, false }
#define END		{ NULL, M_INT, false, false }

static const struct member list_top[] = { STR("schema"), BOOL("driver_loaded"), ARR("cards"), END };
static const struct member list_card[] = {
	STR("pci"), STR("vendor"), STR("device"), STR("subvendor"), STR("subdevice"),
	STR_NULL("link_speed"), INT_NULL("link_width"), INT("numa_node"), STR("driver"),
	INT_NULL("card"), STR_NULL("device_node"), STR_NULL("state"), INT_NULL("hbm_total"),
	INT_NULL("hbm_used"), END };
static const struct member link_port[] = {
	INT("port"), STR("state"), BOOL("enabled"), BOOL("cabled"), STR_NULL("peer_serial"),
	INT_NULL("peer_port"), INT_NULL("peer_card"), INT("tx_bytes"), INT("rx_bytes"),
	INT("tx_errors"), INT("rx_errors"), INT("down_count"), END };
static const struct member route[] = {
	INT("layer_first"), INT("layer_last"), INT("tp_rank"), INT("tp_size"), INT("handle"),
	STR_NULL("region"), STR("next_hop"), INT("hbm_offset"), INT("length"), END };
static const struct member info_top[] = {
	STR("schema"), INT("card"), STR("pci"), STR_NULL("state"), INT("reset_count"),
	INT("reset_failures"), STR("serial"), STR("spec_version"),
	INT("numa_node"), INT("irq_vectors"), INT("hbm_total"), INT("hbm_used"),
	INT("hbm_largest_free"), OBJ("counters"), ARR("links"), ARR("regions"),
	INT("route_generation"), ARR("routes"), END };
static const struct member info_region[] = {
	INT("handle"), STR_NULL("name"), BOOL("persistent"), INT("hbm_offset"), INT("length"),
	INT("owner_uid"), END };
static const struct member driver_top[] = {
	STR("schema"), STR("state"), INT("refcnt"), INT("cards"), END };
static const struct member stats_top[] = { STR("schema"), ARR("cards"), END };
static const struct member stats_card[] = {
	INT("card"), INT("time_ns"), OBJ("counters"), ARR("links"),
	{ "rates", M_OBJ, false, true }, END };
static const struct member links_top[] = { STR("schema"), ARR("cards"), END };
static const struct member links_card[] = { INT("card"), ARR("links"), END };
static const struct member event_top[] = {
	STR("schema"), NUM("time"), STR("event"), INT("card"),
	{ "port", M_INT, false, true }, { "state", M_STR, false, true },
	{ "peer_serial", M_STR, false, true }, { "peer_card", M_INT, false, true },
	{ "peer_port", M_INT, false, true }, { "tx_errors", M_INT, false, true },
	{ "rx_errors", M_INT, false, true }, { "tag", M_STR, false, true },
	{ "errno", M_INT, false, true }, END };
/* the plan's members in full are the host test's (tools/test_shard.c) */
static const struct member plan_top[] = {
	STR("schema"), OBJ("model"), INT("tp"), INT("pp"), INT("alignment"), ARR("cards"), END };
static const struct member plan_card[] = {
	INT("card"), INT("stage"), INT("tp_rank"), INT("tp_size"), INT("layer_first"),
	INT("layer_last"), BOOL("embeddings"), BOOL("head"), INT("bytes"), INT("need_bytes"),
	INT_NULL("free_bytes"), INT("data_bytes"), ARR("pieces"), END };
static const struct member apply_top[] = { STR("schema"), INT("applied"), ARR("cards"), END };
static const struct member apply_card[] = {
	INT("card"), STR("region"), INT("handle"), INT("layer_first"), INT("layer_last"),
	INT("tp_rank"), INT("tp_size"), STR("next_hop"), INT("generation"), END };
static const struct member show_top[] = { STR("schema"), ARR("cards"), END };
static const struct member show_card[] = { INT("card"), INT("generation"), ARR("entries"), END };
static const struct member load_top[] = {
	STR("schema"), STR("model"), INT("bytes"), NUM("seconds"), BOOL("verified"),
	STR_NULL("read"), INT("read_bytes"), OBJ("staging"), INT("transfers"), INT("rows"),
	INT("batches"), ARR("cards"), END };
static const struct member load_card[] = {
	INT("card"), STR("region"), INT("handle"), INT("bytes"), BOOL("loaded"),
	BOOL("verified"), STR_NULL("checksum"), END };
static const struct member reset_top[] = {
	STR("schema"), INT("card"), STR("state"), INT("reset_count"), INT("reset_failures"),
	INT("error"), END };
static const struct member ps_top[] = {
	STR("schema"), ARR("processes"), ARR("unowned_regions"), INT("unreadable_processes"),
	END };
static const struct member ps_proc[] = {
	INT("pid"), STR("command"), INT("card"), ARR("fds"), INT("regions_private"),
	INT("regions_persistent"), INT("memory_private"), INT("memory_persistent"),
	INT("dma_h2c_bytes"), INT("dma_c2h_bytes"), INT("dma_transfers"), INT("dma_failed"),
	INT("dma_inflight"), INT("dma_busy_ns"), INT("collectives"), END };
static const struct member ps_region[] = {
	INT("card"), STR_NULL("name"), INT("owner_uid"), INT("creator_pid"), INT("length"), END };
static const struct member doctor_top[] = {
	STR("schema"), INT("level"), ARR("checks"), INT("passed"), INT("failed"), INT("skipped"),
	END };
static const struct member doctor_check[] = {
	STR("status"), STR("check"), INT_NULL("card"), STR("detail"), STR_NULL("fix"), END };
static const struct member topo_top[] = { STR("schema"), ARR("cards"), END };
static const struct member topo_card[] = {
	INT("card"), STR("pci"), INT("numa_node"), ARR("peers"), END };
static const struct member topo_peer[] = {
	INT("card"), STR("pcie"), INT_NULL("link_hops"), END };
static const struct member unload_top[] = { STR("schema"), ARR("regions"), INT("freed"), END };
static const struct member unload_region[] = { INT("card"), STR("region"), INT("length"), END };

/* Has object @v every member of @m, of its type? Else what is wrong in @err. */
static bool members_ok(struct json_object *v, const char *what, const struct member *m,
		       char *err, size_t len)
{
	for (; m->key; m++) {
		struct json_object *x = NULL;
		bool ok;

		if (!json_object_is_type(v, json_type_object)) {
			snprintf(err, len, "%s is not an object", what);
			return false;
		}
		if (!json_object_object_get_ex(v, m->key, &x)) {
			if (m->optional)
				continue;
			snprintf(err, len, "%s has no member \"%s\"", what, m->key);
			return false;
		}
		switch (m->type) {
		case M_INT:
			ok = json_object_is_type(x, json_type_int);
			break;
		case M_NUM:
			ok = json_object_is_type(x, json_type_int) ||
			     json_object_is_type(x, json_type_double);
			break;
		case M_STR:
			ok = json_object_is_type(x, json_type_string);
			break;
		case M_BOOL:
			ok = json_object_is_type(x, json_type_boolean);
			break;
		case M_ARR:
			ok = json_object_is_type(x, json_type_array);
			break;
		default:
			ok = json_object_is_type(x, json_type_object);
			break;
		}
		if (!ok && !(m->null && !x)) {
			snprintf(err, len, "%s: \"%s\" is %s", what, m->key,
				 json_type_to_name(json_object_get_type(x)));
			return false;
		}
	}
	return true;
}

/* every element of the array @key of @v */
static bool elements_ok(struct json_object *v, const char *key, const char *what,
			const struct member *m, char *err, size_t len)
{
	struct json_object *e;
	unsigned int i;

	for (i = 0; (e = jat(v, key, i)); i++)
		if (!members_ok(e, what, m, err, len))
			return false;
	return true;
}

/* every value of the object @key of @v is of type @type */
static bool values_ok(struct json_object *v, const char *key, json_type type, char *err,
		      size_t len)
{
	struct json_object *o = jget(v, key);

	if (!o)
		return true;	/* (optional: members_ok() checked the required) */
	json_object_object_foreach(o, name, x) {
		if (!json_object_is_type(x, type) &&
		    !(type == json_type_double && json_object_is_type(x, json_type_int))) {
			snprintf(err, len, "%s/%s is %s", key, name,
				 json_type_to_name(json_object_get_type(x)));
			return false;
		}
	}
	return true;
}

/* @j against the schema @schema (docs/llmctl.md); what is wrong in @err */
static bool schema_ok(struct json_object *j, const char *schema, char *err, size_t len)
{
	struct json_object *c;
	unsigned int i;

	if (!strcmp(schema, "llmdev.list/1"))
		return members_ok(j, "list", list_top, err, len) &&
		       elements_ok(j, "cards", "list card", list_card, err, len);
	if (!strcmp(schema, "llmdev.info/1"))
		return members_ok(j, "info", info_top, err, len) &&
		       values_ok(j, "counters", json_type_int, err, len) &&
		       elements_ok(j, "links", "link", link_port, err, len) &&
		       elements_ok(j, "regions", "region", info_region, err, len) &&
		       elements_ok(j, "routes", "route", route, err, len);
	if (!strcmp(schema, "llmdev.driver/1"))
		return members_ok(j, "driver", driver_top, err, len);
	if (!strcmp(schema, "llmdev.stats/1")) {
		if (!members_ok(j, "stats", stats_top, err, len))
			return false;
		for (i = 0; (c = jat(j, "cards", i)); i++)
			if (!members_ok(c, "stats card", stats_card, err, len) ||
			    !values_ok(c, "counters", json_type_int, err, len) ||
			    !values_ok(c, "rates", json_type_double, err, len) ||
			    !elements_ok(c, "links", "link", link_port, err, len))
				return false;
		return true;
	}
	if (!strcmp(schema, "llmdev.links/1")) {
		if (!members_ok(j, "links", links_top, err, len))
			return false;
		for (i = 0; (c = jat(j, "cards", i)); i++)
			if (!members_ok(c, "links card", links_card, err, len) ||
			    !elements_ok(c, "links", "link", link_port, err, len))
				return false;
		return true;
	}
	if (!strcmp(schema, "llmdev.event/1"))
		return members_ok(j, "event", event_top, err, len);
	if (!strcmp(schema, "llmdev.shard-plan/1"))
		return members_ok(j, "plan", plan_top, err, len) &&
		       elements_ok(j, "cards", "plan card", plan_card, err, len);
	if (!strcmp(schema, "llmdev.shard-apply/1"))
		return members_ok(j, "apply", apply_top, err, len) &&
		       elements_ok(j, "cards", "apply card", apply_card, err, len);
	if (!strcmp(schema, "llmdev.shard-show/1")) {
		if (!members_ok(j, "show", show_top, err, len))
			return false;
		for (i = 0; (c = jat(j, "cards", i)); i++)
			if (!members_ok(c, "show card", show_card, err, len) ||
			    !elements_ok(c, "entries", "route", route, err, len))
				return false;
		return true;
	}
	if (!strcmp(schema, "llmdev.reset/1"))
		return members_ok(j, "reset", reset_top, err, len);
	if (!strcmp(schema, "llmdev.ps/1"))
		return members_ok(j, "ps", ps_top, err, len) &&
		       elements_ok(j, "processes", "ps process", ps_proc, err, len) &&
		       elements_ok(j, "unowned_regions", "ps region", ps_region, err, len);
	if (!strcmp(schema, "llmdev.doctor/1"))
		return members_ok(j, "doctor", doctor_top, err, len) &&
		       elements_ok(j, "checks", "doctor check", doctor_check, err, len);
	if (!strcmp(schema, "llmdev.topo/1")) {
		if (!members_ok(j, "topo", topo_top, err, len))
			return false;
		for (i = 0; (c = jat(j, "cards", i)); i++)
			if (!members_ok(c, "topo card", topo_card, err, len) ||
			    !elements_ok(c, "peers", "topo peer", topo_peer, err, len))
				return false;
		return true;
	}
	if (!strcmp(schema, "llmdev.load/1"))
		return members_ok(j, "load", load_top, err, len) &&
		       elements_ok(j, "cards", "load card", load_card, err, len);
	if (!strcmp(schema, "llmdev.unload/1"))
		return members_ok(j, "unload", unload_top, err, len) &&
		       elements_ok(j, "regions", "unloaded region", unload_region, err, len);
	snprintf(err, len, "no such schema in docs/llmctl.md");
	return false;
}
/*
 * Parse its stdout (or one line of it) as JSON, of schema @schema and
 * with every member that schema documents; NULL with a message.
 */
static struct json_object *parse(struct __test_metadata *_metadata, const struct run *r,
				 const char *text, const char *schema)
{
	struct json_object *j;
	char err[256];
	const char *s;

	if (strchr(text, '\n') && strchr(text, '\n')[1]) {
		TH_LOG("'%s': more than one line: %s", r->cmd, text);
		return NULL;
	}
	j = jparse(text, err, sizeof(err));
	if (!j) {
		TH_LOG("'%s': not JSON (%s): %s", r->cmd, err, text);
		return NULL;
	}
	s = jstr(j, "schema");
	if (!s || strcmp(s, schema)) {
		TH_LOG("'%s': schema %s, expected %s", r->cmd, s ? s : "(none)", schema);
		json_object_put(j);
		return NULL;
	}
	if (!schema_ok(j, schema, err, sizeof(err))) {
		TH_LOG("'%s': %s: %s", r->cmd, err, text);
		json_object_put(j);
		return NULL;
	}
	return j;
}

#define ASSERT_JSON(var, r, schema) do {				\
	(var) = parse(_metadata, r, (r)->out, schema);			\
	ASSERT_NE(NULL, var);						\
} while (0)

/* ---- the driver and the cards ----------------------------------------------- */

static bool driver_live(void)
{
	char buf[32] = "";
	FILE *f = fopen(MODULE_DIR "/initstate", "re");

	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return !strncmp(buf, "live", 4);
}

/*
 * llmctl driver load|unload, quietly; 0 if the driver is then as wanted.
 * Loaded, the cards' nodes are as the udev rule makes them (for nobody).
 */
static int driver_set(bool loaded)
{
	struct run r;

	if (driver_live() != loaded) {
		if (run(&r, "driver", loaded ? "load" : "unload"))
			return -1;
		if (r.rc)
			fprintf(stderr, "# llmctl driver %s: exit %d: %s",
				loaded ? "load" : "unload", r.rc, r.err);
		run_free(&r);
	}
	if (loaded && llmdev_udev_settle())
		fprintf(stderr, "# udevadm settle failed\n");
	return driver_live() == loaded ? 0 : -1;
}

/* what the VM started with, put back at the end */
static bool driver_at_start;

static void restore_driver(void)
{
	if (driver_set(driver_at_start))
		fprintf(stderr, "# could not put the driver back as it was\n");
}

static void __attribute__((constructor)) remember_driver(void)
{
	driver_at_start = driver_live();
	atexit(restore_driver);
}

/* The PCI addresses of the cards, sorted, from sysfs; returns the count. */
static int pci_cards(char addr[][32], int max)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d))) {
		char path[PATH_MAX], buf[16];
		unsigned int v = 0, dev = 0;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vendor", de->d_name);
		f = fopen(path, "re");
		if (f) {
			if (fgets(buf, sizeof(buf), f))
				v = strtoul(buf, NULL, 0);
			fclose(f);
		}
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/device", de->d_name);
		f = fopen(path, "re");
		if (f) {
			if (fgets(buf, sizeof(buf), f))
				dev = strtoul(buf, NULL, 0);
			fclose(f);
		}
		if (v == LLMDEV_PCI_VENDOR_ID && dev == LLMDEV_PCI_DEVICE_ID && n < max)
			snprintf(addr[n++], 32, "%.31s", de->d_name);
	}
	if (d)
		closedir(d);
	qsort(addr, n, 32, (int (*)(const void *, const void *))strcmp);
	return n;
}

/* Is a region named @name on card @card? Its handle in *@handle. */
static bool has_region(unsigned int card, const char *name, uint32_t *handle)
{
	struct llmdev_hbm_region *reg = NULL;
	unsigned int n = 0, i;
	struct llmdev *dev;
	bool found = false;

	if (llmdev_open(card, &dev))
		return false;
	if (!llmdev_hbm_list(dev, &reg, &n))
		for (i = 0; i < n; i++)
			if (!strcmp(reg[i].name, name)) {
				found = true;
				if (handle)
					*handle = reg[i].handle;
			}
	free(reg);
	llmdev_close(dev);
	return found;
}

/* Regions on card @card whose name starts with @prefix. */
static int count_regions(unsigned int card, const char *prefix)
{
	struct llmdev_hbm_region *reg = NULL;
	unsigned int n = 0, i;
	struct llmdev *dev;
	int found = 0;

	if (llmdev_open(card, &dev))
		return -1;
	if (!llmdev_hbm_list(dev, &reg, &n))
		for (i = 0; i < n; i++)
			found += !strncmp(reg[i].name, prefix, strlen(prefix));
	free(reg);
	llmdev_close(dev);
	return found;
}

/* The port of card @a whose link is up to card @b, or -1. */
static int port_between(unsigned int a, unsigned int b)
{
	struct llmdev_link_info li;
	struct llmdev *dev;
	int p, port = -1;

	if (llmdev_open(a, &dev))
		return -1;
	for (p = 0; p < LLMDEV_NUM_LINK_PORTS && port < 0; p++)
		if (!llmdev_link_get_info(dev, p, &li) && li.state == LLMDEV_LINK_UP &&
		    li.peer_minor == (int)b)
			port = p;
	llmdev_close(dev);
	return port;
}

/*
 * Cards for tp 2 x pp 2 on 4 cards: stage 0 ranks 0 and 1 on order[0] and
 * order[1], stage 1 on order[2] and order[3], each rank of stage 0 with a
 * link to the same rank of stage 1. Return: 0, or -1 if the cabling has
 * no such order.
 */
static int pipeline_order(unsigned int order[4])
{
	unsigned int a, b, c, d;

	for (a = 0; a < 4; a++)
		for (b = 0; b < 4; b++)
			for (c = 0; c < 4; c++) {
				d = 6 - a - b - c;
				if (a == b || a == c || b == c || d > 3 || d == a || d == b ||
				    d == c)
					continue;
				if (port_between(a, c) >= 0 && port_between(b, d) >= 0) {
					order[0] = a, order[1] = b, order[2] = c, order[3] = d;
					return 0;
				}
			}
	return -1;
}

/* gguf-gen a llama model into @path; 0 or -1 (message printed) */
static int make_model(const char *path, const char *layers, const char *embd,
		      const char *ff, const char *vocab)
{
	const char *argv[] = { "gguf-gen", "-o", path, "--layers", layers, "--embd", embd,
			       "--heads", "8", "--ff", ff, "--vocab", vocab,
			       "--type", "q8_0", NULL };
	struct run r;
	int rc;

	run_argv(&r, 0, argv);
	rc = r.rc;
	if (rc)
		fprintf(stderr, "# %s: exit %d: %s", r.cmd, rc, r.err);
	run_free(&r);
	return rc ? -1 : 0;
}

/* The whole file, NUL-terminated (also binary: *@len says how long). */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET)) {
		buf = malloc(n + 1);
		if (buf && fread(buf, 1, n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		if (buf)
			buf[n] = 0;	/* text can be read as a string */
		*len = n;
	}
	fclose(f);
	return buf;
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "we");
	int ret;

	if (!f)
		return -1;
	ret = fwrite(data, 1, len, f) == len ? 0 : -1;
	return fclose(f) || ret ? -1 : 0;
}

/* a sysfs file's contents without the newline (sysfs files have no size); 0 or -1 */
static int read_sysfs_str(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -1;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return n ? 0 : -1;
}

static int write_str(const char *path, const char *s)
{
	return write_file(path, s, strlen(s));
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n--) {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* ---- without the driver ------------------------------------------------------ */

FIXTURE(nodrv) {
	char pci[64][32];
	int ncards;
};

FIXTURE_SETUP(nodrv)
{
	if (geteuid())
		SKIP(return, "needs root");
	if (driver_set(false))
		SKIP(return, "cannot unload llmdev (in use?)");
	self->ncards = pci_cards(self->pci, 64);
}

FIXTURE_TEARDOWN(nodrv)
{
}

/* list finds the cards on the PCI bus with libpci, driver or not */
TEST_F(nodrv, list)
{
	struct json_object *c;
	struct json_object *j;
	struct run r;
	int i;

	if (_metadata->skip)
		return;
	if (!self->ncards)
		SKIP(return, "no cards in this VM (see no_cards)");
	run(&r, "list");
	ASSERT_RUN_OK(&r);
	for (i = 0; i < self->ncards; i++)
		EXPECT_NE(NULL, strstr(r.out, self->pci[i])) TH_LOG("%s missing: %s",
								   self->pci[i], r.out);
	EXPECT_NE(NULL, strstr(r.out, "the llmdev driver is not loaded"));
	run_free(&r);

	run(&r, "-j", "list");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.list/1");
	EXPECT_EQ(0, jbool(j, "driver_loaded"));
	ASSERT_EQ(self->ncards, jlen(j, "cards"));
	for (i = 0; (c = jat(j, "cards", i)); i++) {
		EXPECT_STREQ(self->pci[i], jstr(c, "pci"));
		EXPECT_STREQ("1234", jstr(c, "vendor"));
		EXPECT_STREQ("4c4d", jstr(c, "device"));
		EXPECT_STREQ("none", jstr(c, "driver"));
		EXPECT_TRUE(jnull(c, "card"));
		EXPECT_TRUE(jnull(c, "device_node"));
		EXPECT_TRUE(jnull(c, "hbm_total"));
		EXPECT_LT(0, (int)juint(c, "link_width", 0));
	}
	json_object_put(j);
	run_free(&r);

	run(&r, "-j", "driver", "status");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.driver/1");
	EXPECT_STREQ("absent", jstr(j, "state"));
	EXPECT_EQ(0, (int)juint(j, "cards", 9));
	json_object_put(j);
	run_free(&r);
	run(&r, "driver", "status");
	ASSERT_RUN_OK(&r);
	EXPECT_STREQ("llmdev: not loaded\n", r.out);
	run_free(&r);
}

/*
 * --help after a subcommand or its arguments prints the help, as root too,
 * and does nothing else: no driver loaded, no card opened.
 */
TEST_F(nodrv, help_after_subcommand)
{
	static const char *const cmds[][6] = {
		{ "llmctl", "link", "show", "--help" },
		{ "llmctl", "link", "show", "0", "-h" },
		{ "llmctl", "link", "set", "0", "1", "--help" },
		{ "llmctl", "driver", "load", "--help" },
		{ "llmctl", "driver", "load", "/nonexistent.ko", "--help" },
		{ "llmctl", "driver", "status", "--help" },
		{ "llmctl", "driver", "unload", "--help" },
		{ "llmctl", "info", "0", "--help" },
		{ "llmctl", "reset", "0", "--help" },
		{ "llmctl", "ps", "0", "--help" },
		{ "llmctl", "kv", "stats", "1", "--help" },
		{ "llmctl", "list", "--help" },
		{ "llmctl", "topo", "--help" },
		{ "llmctl", "unload", "x.gguf", "--help" },
		{ "llmctl", "shard", "show", "0", "--help" },
	};
	unsigned int i;
	struct run r;

	if (_metadata->skip)
		return;
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		run_argv(&r, 0, cmds[i]);
		EXPECT_EQ(0, r.rc) TH_LOG("'%s': exit %d; stderr: %s", r.cmd, r.rc, r.err);
		EXPECT_NE(NULL, strstr(r.out, "usage: llmctl "))
			TH_LOG("'%s': no help: %s", r.cmd, r.out);
		run_free(&r);
		EXPECT_FALSE(driver_live()) TH_LOG("'%s' loaded the driver", cmds[i][1]);
	}
}

/* what an ordinary user gets without the driver */
TEST_F(nodrv, unprivileged)
{
	struct run r;

	if (_metadata->skip)
		return;
	run_nobody(&r, "driver", "load");
	EXPECT_RUN(&r, 2, "loading llmdev: not permitted (needs root or CAP_SYS_MODULE)");
	EXPECT_FALSE(driver_live());
	run_free(&r);
	EXPECT_LLMCTL_NOBODY(2, "the llmdev driver is not loaded (run 'llmctl driver load' as root)",
		"info", "0");
	EXPECT_LLMCTL_NOBODY(2, "the llmdev driver is not loaded", "stats");
	EXPECT_LLMCTL_NOBODY(2, "the llmdev driver is not loaded", "monitor", "--count", "1");
	/* usage errors come first */
	EXPECT_LLMCTL_NOBODY(1, "usage: llmctl info DEV", "info");
	EXPECT_LLMCTL_NOBODY(1, "unknown command 'frobnicate'", "frobnicate");
	/* getopt_long()'s own messages name the command, then the hint */
	EXPECT_LLMCTL_NOBODY(1, "llmctl stats: unrecognized option '--bogus'\nTry 'llmctl --help'.",
		"stats", "--bogus");
	EXPECT_LLMCTL_NOBODY(1, "llmctl kv bench: option '--time' requires an argument\nTry",
		"kv", "bench", "--time");
	EXPECT_LLMCTL_NOBODY(1, "llmctl shard plan: unrecognized option '--bogus'",
		"shard", "plan", "--bogus");
	/* a command whose only argument is a card does not take an option for one */
	EXPECT_LLMCTL_NOBODY(1, "info: unknown option '--bogus'\nTry", "info", "--bogus");
	EXPECT_LLMCTL_NOBODY(1, "reset: unknown option '-x'", "reset", "-x");
	EXPECT_LLMCTL_NOBODY(1, "ps: unknown option '--bogus'", "ps", "--bogus");
	/* an empty item in a list is an error, not skipped */
	EXPECT_LLMCTL_NOBODY(1, "--block-sizes wants sizes like 16K,64K, not '16K,,64K'",
		"kv", "bench", "--block-sizes", "16K,,64K");
	EXPECT_LLMCTL_NOBODY(1, "--cards wants card numbers like 0,1,2,3 or 0-3, not '0,1,'",
		"shard", "plan", "--cards", "0,1,", "m.gguf");
	/* a range runs upwards; a card is named once */
	EXPECT_LLMCTL_NOBODY(1, "--cards wants card numbers like 0,1,2,3 or 0-3, not '0,3-1'",
		"shard", "plan", "--cards", "0,3-1", "m.gguf");
	EXPECT_LLMCTL_NOBODY(1, "--cards wants card numbers like 0,1,2,3 or 0-3, not '0,1,1'",
		"shard", "plan", "--cards", "0,1,1", "m.gguf");
	/* a size is not negative, and does not wrap */
	EXPECT_LLMCTL_NOBODY(1, "--max-bytes wants a size, not '-1'",
		"kv", "bench", "--max-bytes", "-1");
	EXPECT_LLMCTL_NOBODY(1, "--block-sizes wants sizes like 16K,64K, not '18014398509481988K'",
		"kv", "bench", "--block-sizes", "18014398509481988K");
	EXPECT_LLMCTL_NOBODY(1, "kv bench: nothing to measure: every batch of every block size is over --max-bytes (65536 bytes)",
		"kv", "bench", "--block-sizes", "1M", "--max-bytes", "64K");
	EXPECT_FALSE(driver_live());
}

/* a host without cards (a VM with --cards 0) */
TEST(no_cards)
{
	char pci[4][32];
	struct json_object *j;
	struct run r;

	if (geteuid())
		SKIP(return, "needs root");
	if (pci_cards(pci, 4))
		SKIP(return, "the VM has cards (run with --cards 0)");
	ASSERT_EQ(0, driver_set(false));
	run(&r, "list");
	EXPECT_RUN(&r, 2, "no llmdev cards on the PCI bus");
	EXPECT_STREQ("", r.out);
	run_free(&r);
	run(&r, "-j", "list");
	EXPECT_RUN(&r, 2, "no llmdev cards on the PCI bus");
	ASSERT_JSON(j, &r, "llmdev.list/1");
	EXPECT_EQ(0, jlen(j, "cards"));
	json_object_put(j);
	run_free(&r);

	ASSERT_EQ(0, driver_set(true));
	run(&r, "-j", "driver", "status");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.driver/1");
	EXPECT_STREQ("live", jstr(j, "state"));
	EXPECT_EQ(0, (int)juint(j, "cards", 9));
	json_object_put(j);
	run_free(&r);
	EXPECT_LLMCTL(2, "no llmdev cards (the driver is loaded but bound to none)", "stats");
	EXPECT_LLMCTL(2, "0: no such card (0 with a device node", "info", "0");
	EXPECT_LLMCTL(2, "no llmdev cards", "link", "show");
}

/* ---- with the driver ----------------------------------------------------------- */

FIXTURE(drv) {
	int ncards;
	char pci[64][32];
};

FIXTURE_SETUP(drv)
{
	if (geteuid())
		SKIP(return, "needs root");
	if (driver_set(true))
		SKIP(return, "cannot load llmdev (is LLMCTL_MODULE set?)");
	self->ncards = llmdev_count();
	ASSERT_EQ(pci_cards(self->pci, 64), self->ncards);
	if (!self->ncards)
		SKIP(return, "no cards in this VM (see no_cards)");
}

FIXTURE_TEARDOWN(drv)
{
}

/* How many cabled ports of @card are still training; -1 on an error. */
static int ports_training(int card)
{
	struct llmdev_link_info li;
	struct llmdev *dev;
	int p, n = 0;

	if (llmdev_open(card, &dev))
		return -1;
	for (p = 0; p < LLMDEV_NUM_LINK_PORTS && n >= 0; p++) {
		if (llmdev_link_get_info(dev, p, &li))
			n = -1;
		else if ((li.link_flags & LLMDEV_LINK_CABLED) &&
			 li.state == LLMDEV_LINK_TRAINING)
			n++;
	}
	llmdev_close(dev);
	return n;
}

TEST_F(drv, driver_load_unload)
{
	struct llmdev *dev;
	int i;
	char want[64];
	struct json_object *j;
	struct run r;

	if (_metadata->skip)
		return;
	run(&r, "-j", "driver", "status");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.driver/1");
	EXPECT_STREQ("live", jstr(j, "state"));
	EXPECT_EQ(self->ncards, (int)juint(j, "cards", 0));
	EXPECT_EQ(0, (int)juint(j, "refcnt", 9));
	json_object_put(j);
	run_free(&r);
	run(&r, "driver", "load");	/* loaded: nothing to do */
	EXPECT_RUN(&r, 0, "");
	run_free(&r);
	run(&r, "driver", "load", "msix=0");	/* but parameters cannot be applied */
	EXPECT_RUN(&r, 2, "llmdev is loaded already; unload it to load it with msix=0");
	run_free(&r);

	/* unloading while a card is open names who has it */
	ASSERT_EQ(0, llmdev_open(0, &dev));
	run(&r, "driver", "unload");
	snprintf(want, sizeof(want), "cards are in use by llmctl_test (pid %d); close them first",
		 getpid());
	EXPECT_RUN(&r, 2, want);
	EXPECT_EQ(NULL, strstr(r.err, "libkmod"));	/* no library noise */
	run_free(&r);
	EXPECT_TRUE(driver_live());
	llmdev_close(dev);

	EXPECT_LLMCTL_NOBODY(2, "unloading llmdev: not permitted (needs root or CAP_SYS_MODULE)",
		"driver", "unload");
	EXPECT_TRUE(driver_live());

	EXPECT_LLMCTL(0, "", "driver", "unload");
	EXPECT_FALSE(driver_live());
	run(&r, "driver", "unload");	/* not loaded: nothing to do */
	EXPECT_RUN(&r, 0, "");
	run_free(&r);
	EXPECT_LLMCTL(2, "/nonexistent/llmdev.ko: No such file or directory",
		"driver", "load", "/nonexistent/llmdev.ko");
	EXPECT_LLMCTL(0, "", "driver", "load");
	EXPECT_TRUE(driver_live());
	EXPECT_EQ(self->ncards, llmdev_count());
	/* and it returns once the cabled ports have trained */
	for (i = 0; i < self->ncards; i++)
		EXPECT_EQ(0, ports_training(i)) TH_LOG("llmdev%d", i);
}

TEST_F(drv, list)
{
	struct json_object *c;
	struct json_object *j;
	struct run r;
	int i;

	if (_metadata->skip)
		return;
	run(&r, "list", "--json");	/* -j/--json also after the command */
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.list/1");
	EXPECT_EQ(1, jbool(j, "driver_loaded"));
	ASSERT_EQ(self->ncards, jlen(j, "cards"));
	for (i = 0; (c = jat(j, "cards", i)); i++) {
		int card = (int)juint(c, "card", 999);
		struct llmdev_info info;
		struct llmdev *dev;
		char node[32], bdf[32];

		EXPECT_STREQ(self->pci[i], jstr(c, "pci"));
		EXPECT_STREQ("llmdev", jstr(c, "driver"));
		snprintf(node, sizeof(node), "/dev/llmdev%d", card);
		EXPECT_STREQ(node, jstr(c, "device_node"));
		ASSERT_EQ(0, llmdev_open(card, &dev));
		ASSERT_EQ(0, llmdev_get_info(dev, &info));
		snprintf(bdf, sizeof(bdf), "%04x:%02x:%02x.%d", info.pci_domain, info.pci_bus,
			 info.pci_devfn >> 3, info.pci_devfn & 7);
		EXPECT_STREQ(bdf, jstr(c, "pci"));
		EXPECT_EQ(info.hbm_size, juint(c, "hbm_total", 0));
		EXPECT_EQ(info.hbm_used, juint(c, "hbm_used", 1));
		EXPECT_EQ(info.numa_node, jint(c, "numa_node", -2));
		llmdev_close(dev);
	}
	json_object_put(j);
	run_free(&r);

	run(&r, "list");
	ASSERT_RUN_OK(&r);
	EXPECT_NE(NULL, strstr(r.out, "/dev/llmdev0"));
	EXPECT_EQ(NULL, strstr(r.out, "not loaded"));
	run_free(&r);
	EXPECT_LLMCTL(1, "list takes no arguments", "list", "extra");
}

TEST_F(drv, info)
{
	static const char *const names[] = { "1", "llmdev1", "/dev/llmdev1", NULL };
	struct llmdev_hbm_alloc a;
	struct llmdev_link_info li;
	struct llmdev_info info;
	struct json_object *l, *g;
	struct llmdev *dev;
	unsigned int card = self->ncards > 1 ? 1 : 0, p;
	char bdf[32], serial[20], cardname[16];
	struct json_object *j;
	struct run r;
	int i;

	if (_metadata->skip)
		return;
	ASSERT_EQ(0, llmdev_open(card, &dev));
	ASSERT_EQ(0, llmdev_get_info(dev, &info));
	ASSERT_EQ(0, llmdev_hbm_alloc(dev, 3 * 4096, 0, LLMDEV_HBM_PERSISTENT,
				      "llmctl-test.info", &a));
	ASSERT_EQ(0, llmdev_get_info(dev, &info));
	snprintf(bdf, sizeof(bdf), "%04x:%02x:%02x.%d", info.pci_domain, info.pci_bus,
		 info.pci_devfn >> 3, info.pci_devfn & 7);
	snprintf(serial, sizeof(serial), "%016llx", (unsigned long long)info.serial);
	snprintf(cardname, sizeof(cardname), "%u", card);

	/* the four ways to name a card give the same card */
	for (i = 0; i < 4; i++) {
		const char *name = names[i] ? names[i] : bdf;

		if (card == 0 && names[i])
			name = names[i][0] == '/' ? "/dev/llmdev0" :
			       names[i][0] == 'l' ? "llmdev0" : "0";
		run(&r, "-j", "info", name);
		ASSERT_RUN_OK(&r);
		ASSERT_JSON(j, &r, "llmdev.info/1");
		EXPECT_EQ(card, juint(j, "card", 999)) TH_LOG("info %s", name);
		EXPECT_STREQ(serial, jstr(j, "serial"));
		json_object_put(j);
		run_free(&r);
	}

	run(&r, "-j", "info", cardname);
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.info/1");
	EXPECT_STREQ(bdf, jstr(j, "pci"));
	EXPECT_EQ(info.hbm_size, juint(j, "hbm_total", 0));
	EXPECT_EQ(info.hbm_used, juint(j, "hbm_used", 0));
	EXPECT_EQ(info.hbm_largest_free, juint(j, "hbm_largest_free", 0));
	EXPECT_EQ(info.irq_vectors, juint(j, "irq_vectors", 0));
	EXPECT_NE(UINT64_MAX, juint(j, "counters/h2c_bytes", UINT64_MAX));
	EXPECT_EQ(LLMDEV_COUNTER_NUM, json_object_object_length(jget(j, "counters")));
	/* the links, port by port */
	ASSERT_EQ(info.num_link_ports, jlen(j, "links"));
	for (p = 0; (l = jat(j, "links", p)); p++) {
		ASSERT_EQ(0, llmdev_link_get_info(dev, p, &li));
		EXPECT_EQ(p, juint(l, "port", 99));
		EXPECT_STREQ(li.state == LLMDEV_LINK_UP ? "up" :
			     li.state == LLMDEV_LINK_DOWN ? "down" : "training",
			     jstr(l, "state"));
		EXPECT_EQ(!!(li.link_flags & LLMDEV_LINK_CABLED), jbool(l, "cabled"));
		if (li.state == LLMDEV_LINK_UP && li.peer_minor >= 0) {
			EXPECT_EQ(li.peer_minor, (int)juint(l, "peer_card", 99));
		} else {
			EXPECT_TRUE(jnull(l, "peer_card"));
		}
	}
	/* our region, as the driver lists it */
	g = NULL;
	for (i = 0; (l = jat(j, "regions", i)); i++)
		if (jstr(l, "name") && !strcmp(jstr(l, "name"), "llmctl-test.info"))
			g = l;
	ASSERT_NE(NULL, g) TH_LOG("region missing: %s", r.out);
	EXPECT_EQ(a.handle, juint(g, "handle", 0));
	EXPECT_EQ(a.hbm_offset, juint(g, "hbm_offset", 1));
	EXPECT_EQ(3 * 4096, juint(g, "length", 0));
	EXPECT_EQ(1, jbool(g, "persistent"));
	EXPECT_EQ(0, juint(g, "owner_uid", 1));
	json_object_put(j);
	run_free(&r);

	run(&r, "info", cardname);
	ASSERT_RUN_OK(&r);
	EXPECT_NE(NULL, strstr(r.out, serial));
	EXPECT_NE(NULL, strstr(r.out, "llmctl-test.info"));
	run_free(&r);
	EXPECT_EQ(0, llmdev_hbm_free(dev, a.handle));
	llmdev_close(dev);

	EXPECT_LLMCTL(2, "llmdev99: no such card", "info", "llmdev99");
	EXPECT_LLMCTL(2, "0000:7f:1f.7: no such card", "info", "0000:7f:1f.7");
	EXPECT_LLMCTL(2, "foo: not a card", "info", "foo");
	EXPECT_LLMCTL(1, "usage: llmctl info DEV", "info");
}

/* stats --watch: two samples, the second with rates from the deltas */
TEST_F(drv, stats_watch)
{
	struct llmdev_perf before, after;
	struct json_object *c1, *c2;
	struct json_object *j1, *j2;
	struct llmdev *dev;
	struct run r;
	char *nl;
	pid_t traffic;
	double dt;

	if (_metadata->skip)
		return;
	/* DMA to card 0 for the whole sampling */
	traffic = fork();
	ASSERT_LE(0, traffic);
	if (traffic == 0) {
		struct llmdev_hbm_alloc a;
		static char buf[1 << 20];
		struct timespec t0;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (llmdev_open(0, &dev) || llmdev_hbm_alloc(dev, sizeof(buf), 0, 0, NULL, &a))
			_exit(1);
		while (since(&t0) < 3)
			if (llmdev_copy_to_hbm(dev, a.handle, 0, buf, sizeof(buf), 10 * SEC))
				_exit(1);
		_exit(0);
	}
	ASSERT_EQ(0, llmdev_open(0, &dev));
	usleep(200000);
	ASSERT_EQ(0, llmdev_perf_read(dev, &before));
	run(&r, "stats", "0", "--watch", "0.2", "--count", "2", "--json");
	ASSERT_EQ(0, llmdev_perf_read(dev, &after));
	kill(traffic, SIGTERM);
	waitpid(traffic, NULL, 0);
	llmdev_close(dev);
	ASSERT_RUN_OK(&r);

	/* one object per line */
	nl = strchr(r.out, '\n');
	ASSERT_NE(NULL, nl);
	*nl = 0;
	j1 = parse(_metadata, &r, r.out, "llmdev.stats/1");
	j2 = parse(_metadata, &r, nl + 1, "llmdev.stats/1");
	ASSERT_NE(NULL, j1);
	ASSERT_NE(NULL, j2);
	ASSERT_EQ(1, jlen(j1, "cards"));
	c1 = jat(j1, "cards", 0);
	c2 = jat(j2, "cards", 0);
	EXPECT_EQ(0, juint(c1, "card", 9));
	EXPECT_FALSE(jhas(c1, "rates"));	/* no rates in the first sample */
	ASSERT_NE(NULL, jget(c2, "rates"));
	dt = (juint(c2, "time_ns", 0) - juint(c1, "time_ns", 0)) / 1e9;
	EXPECT_TRUE(dt >= 0.19 && dt < 3) TH_LOG("samples %.3f s apart", dt);
	EXPECT_TRUE(juint(c1, "time_ns", 0) >= before.host_time_ns);
	EXPECT_TRUE(juint(c2, "time_ns", 0) <= after.host_time_ns);
	ASSERT_EQ(LLMDEV_COUNTER_NUM, json_object_object_length(jget(c2, "counters")));
	ASSERT_EQ(LLMDEV_COUNTER_NUM, json_object_object_length(jget(c2, "rates")));
	json_object_object_foreach(jget(c2, "counters"), key, v) {
		uint64_t n1, n2;
		char path[64];
		double want, rate;

		(void)v;
		snprintf(path, sizeof(path), "counters/%s", key);
		n1 = juint(c1, path, UINT64_MAX);
		n2 = juint(c2, path, 0);
		snprintf(path, sizeof(path), "rates/%s", key);
		rate = jnum(c2, path, -1);
		ASSERT_LE(0, rate) TH_LOG("no rate of %s", key);
		EXPECT_LE(n1, n2) TH_LOG("%s went back", key);
		want = (n2 - n1) / dt;
		EXPECT_TRUE(rate >= want - 0.06 - want * 1e-9 &&
			    rate <= want + 0.06 + want * 1e-9)
			TH_LOG("%s: rate %.3f, (%llu - %llu) / %.6f = %.3f", key, rate,
			       (unsigned long long)n2, (unsigned long long)n1, dt, want);
	}
	/* the traffic shows */
	EXPECT_LT(0, jnum(c2, "rates/h2c_bytes", 0));
	EXPECT_LE(before.counters[LLMDEV_COUNTER_H2C_BYTES],
		  juint(c1, "counters/h2c_bytes", 0));
	EXPECT_GE(after.counters[LLMDEV_COUNTER_H2C_BYTES],
		  juint(c2, "counters/h2c_bytes", UINT64_MAX));
	json_object_put(j1);
	json_object_put(j2);
	run_free(&r);

	/* every card */
	run(&r, "-j", "stats");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j1, &r, "llmdev.stats/1");
	EXPECT_EQ(self->ncards, jlen(j1, "cards"));
	json_object_put(j1);
	run_free(&r);

	EXPECT_LLMCTL(1, "--count needs --watch", "stats", "--count", "2");
	EXPECT_LLMCTL(1, "--watch wants seconds", "stats", "--watch", "0");
	EXPECT_LLMCTL(2, "llmdev99: no such card", "stats", "llmdev99");
}

/* wait until port @port of @card is (or is not) up */
static bool wait_link(struct llmdev *dev, unsigned int port, bool up)
{
	struct llmdev_link_info li;
	int i;

	for (i = 0; i < 500; i++) {
		if (!llmdev_link_get_info(dev, port, &li) &&
		    (li.state == LLMDEV_LINK_UP) == up)
			return true;
		usleep(10000);
	}
	return false;
}

TEST_F(drv, link)
{
	struct llmdev_link_info li;
	struct json_object *l;
	struct llmdev *dev;
	char ports[16];
	struct json_object *j;
	struct run r;
	int port;

	if (_metadata->skip)
		return;
	if (self->ncards < 2)
		SKIP(return, "needs 2 cards with a link");
	port = port_between(0, 1);
	if (port < 0)
		SKIP(return, "no link between llmdev0 and llmdev1");
	snprintf(ports, sizeof(ports), "%d", port);
	ASSERT_EQ(0, llmdev_open(0, &dev));

	/* an ordinary user may look but not touch */
	run_nobody(&r, "-j", "link", "show", "0");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.links/1");
	l = jget(j, "cards/0/links");
	ASSERT_NE(NULL, l);
	ASSERT_EQ(LLMDEV_NUM_LINK_PORTS, jlen(l, ""));
	EXPECT_EQ(0, juint(j, "cards/0/card", 9));
	l = jget(l, ports);
	EXPECT_STREQ("up", jstr(l, "state"));
	EXPECT_EQ(1, juint(l, "peer_card", 9));
	ASSERT_EQ(0, llmdev_link_get_info(dev, port, &li));
	EXPECT_EQ(li.peer_port, juint(l, "peer_port", 99));
	EXPECT_EQ(li.tx_bytes, juint(l, "tx_bytes", 1));
	json_object_put(j);
	run_free(&r);
	run_nobody(&r, "link", "set", "0", ports, "down");
	EXPECT_RUN(&r, 2, "llmdev0: link");
	EXPECT_NE(NULL, strstr(r.err, ": not permitted (needs CAP_SYS_ADMIN)"));
	run_free(&r);
	EXPECT_TRUE(wait_link(dev, port, true));

	/* root takes it down and up again */
	EXPECT_LLMCTL(0, "", "link", "set", "0", ports, "down");
	EXPECT_TRUE(wait_link(dev, port, false));
	run(&r, "-j", "link", "show", "llmdev0");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.links/1");
	l = jget(jget(j, "cards/0/links"), ports);
	EXPECT_STREQ("down", jstr(l, "state"));
	EXPECT_EQ(0, jbool(l, "enabled"));
	EXPECT_TRUE(jnull(l, "peer_card"));
	json_object_put(j);
	run_free(&r);
	EXPECT_LLMCTL(0, "", "link", "set", "0", ports, "up");
	EXPECT_TRUE(wait_link(dev, port, true));
	llmdev_close(dev);

	run(&r, "link", "show");
	ASSERT_RUN_OK(&r);
	EXPECT_NE(NULL, strstr(r.out, "llmdev1"));
	run_free(&r);
	EXPECT_LLMCTL(1, "port must be 0..3", "link", "set", "0", "7", "up");
	EXPECT_LLMCTL(1, "usage: llmctl link set DEV PORT up|down",
		"link", "set", "0", ports, "sideways");
}

/* monitor --count N prints N events (here: a link toggled meanwhile) */
TEST_F_TIMEOUT(drv, monitor, 60)
{
	struct llmdev *dev;
	struct run m, r;
	char ports[16], *line;
	int port, events = 0, i, st;

	if (_metadata->skip)
		return;
	if (self->ncards < 2)
		SKIP(return, "needs 2 cards with a link");
	port = port_between(0, 1);
	if (port < 0)
		SKIP(return, "no link between llmdev0 and llmdev1");
	snprintf(ports, sizeof(ports), "%d", port);
	ASSERT_EQ(0, llmdev_open(0, &dev));

	ASSERT_EQ(0, run_start(&m, 0, (const char *const[]){ "llmctl", "-j", "monitor",
				"--count", "3", "--timeout", "20", NULL }));
	/* toggle until the monitor had its events (it may start late) */
	for (i = 0; i < 20 && waitpid(m.pid, &st, WNOHANG) == 0; i++) {
		run(&r, "link", "set", "0", ports, "down");
		run_free(&r);
		wait_link(dev, port, false);
		run(&r, "link", "set", "0", ports, "up");
		run_free(&r);
		wait_link(dev, port, true);
	}
	/* waitpid() may have reaped it: then run_finish() sees no child */
	if (i < 20 && waitpid(m.pid, &st, WNOHANG) < 0) {
		m.pid = fork();		/* a stand-in with its exit status */
		if (m.pid == 0)
			_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 1);
	}
	run_finish(&m, 25);
	llmdev_close(dev);
	EXPECT_RUN(&m, 0, "");
	for (line = strtok(m.out, "\n"); line; line = strtok(NULL, "\n")) {
		struct json_object *j = parse(_metadata, &m, line, "llmdev.event/1");
		const char *state;
		int card;

		ASSERT_NE(NULL, j);
		EXPECT_STREQ("link", jstr(j, "event"));
		card = (int)juint(j, "card", 99);
		EXPECT_TRUE(card == 0 || card == 1) TH_LOG("event of card %d", card);
		state = jstr(j, "state");
		EXPECT_TRUE(state && (!strcmp(state, "up") || !strcmp(state, "down") ||
				      !strcmp(state, "training")));
		EXPECT_LT(1e9, jnum(j, "time", 0));	/* seconds since 1970 */
		json_object_put(j);
		events++;
	}
	EXPECT_EQ(3, events) TH_LOG("events: %s", m.out);
	run_free(&m);

	/* no events: the timeout ends it, with status 2 */
	run(&r, "monitor", "--count", "1", "--timeout", "0.5");
	EXPECT_RUN(&r, 2, "timed out after 0.5 s with 1 event still to come");
	EXPECT_LT(r.seconds, 10);
	run_free(&r);
	run(&r, "monitor", "--timeout", "0.3");		/* no --count: fine */
	EXPECT_RUN(&r, 0, "");
	run_free(&r);
}

/* a card's reset is announced: monitor prints its start and its end */
TEST_F_TIMEOUT(drv, monitor_reset, 60)
{
	bool started = false, done = false;
	unsigned int start_count = 0;
	struct run m, r;
	char *line;

	if (_metadata->skip)
		return;
	ASSERT_EQ(0, run_start(&m, 0, (const char *const[]){ "llmctl", "-j", "monitor",
				"--timeout", "4", NULL }));
	usleep(500000);		/* the monitor joins the group */
	run(&r, "reset", "0");
	ASSERT_RUN_OK(&r);
	run_free(&r);
	run_finish(&m, 10);
	EXPECT_RUN(&m, 0, "");
	for (line = strtok(m.out, "\n"); line; line = strtok(NULL, "\n")) {
		struct json_object *j = parse(_metadata, &m, line, "llmdev.event/1");
		const char *ev;

		ASSERT_NE(NULL, j);
		ev = jstr(j, "event");
		if (ev && juint(j, "card", 99) == 0 && !strcmp(ev, "reset-start")) {
			EXPECT_FALSE(started);
			started = true;
			start_count = (unsigned int)juint(j, "reset_count", 999);
			EXPECT_STREQ("function reset", jstr(j, "reason"));
		} else if (ev && juint(j, "card", 99) == 0 && !strcmp(ev, "reset-done")) {
			EXPECT_TRUE(started) TH_LOG("reset-done before reset-start");
			done = true;
			EXPECT_EQ(start_count + 1, (unsigned int)juint(j, "reset_count", 0));
			EXPECT_STREQ("function reset", jstr(j, "reason"));
		} else {
			EXPECT_TRUE(ev && !strcmp(ev, "link")) TH_LOG("event: %s", line);
		}
		json_object_put(j);
	}
	EXPECT_TRUE(started && done) TH_LOG("events: %s", m.out);
	run_free(&m);
}

#define SMALL_MODEL	"/tmp/llmctl-test-small.gguf"
#define JUNK		"/tmp/llmctl-test-junk"

TEST_F(drv, shard_plan)
{
	struct json_object *c;
	struct llmdev_hbm_alloc fill;
	struct llmdev_info info;
	struct llmdev *dev;
	unsigned int tp = self->ncards >= 2 ? 2 : 1, pp = self->ncards >= 4 ? 2 : 1, i;
	unsigned int order[4] = { 0, 1, 2, 3 };
	char tps[8], pps[8], want[128];
	struct json_object *j;
	struct run r;

	if (_metadata->skip)
		return;
	ASSERT_EQ(0, make_model(SMALL_MODEL, "4", "256", "512", "1024"));
	snprintf(tps, sizeof(tps), "%u", tp);
	snprintf(pps, sizeof(pps), "%u", pp);

	/*
	 * Without --cards, two stages go on the first order whose pipeline
	 * hops are links (on the default ring 0-1-2-3-0: 0,1,3,2), or 0..3
	 * when there is none (pipeline_order() leaves @order alone then)
	 */
	if (pp == 2 && self->ncards == 4)
		(void)pipeline_order(order);
	run(&r, "shard", "plan", SMALL_MODEL, "--tp", tps, "--pp", pps, "--json");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.shard-plan/1");
	EXPECT_EQ(tp, juint(j, "tp", 0));
	EXPECT_EQ(pp, juint(j, "pp", 0));
	EXPECT_EQ(4, juint(j, "model/block_count", 0));
	ASSERT_EQ(tp * pp, jlen(j, "cards"));
	for (i = 0; (c = jat(j, "cards", i)); i++) {
		EXPECT_EQ(order[i], juint(c, "card", 99));
		EXPECT_EQ(i / tp, juint(c, "stage", 99));
		EXPECT_EQ(i % tp, juint(c, "tp_rank", 99));
		EXPECT_EQ(i / tp * 4 / pp, juint(c, "layer_first", 99));
		EXPECT_EQ((i / tp + 1) * 4 / pp - 1, juint(c, "layer_last", 99));
		ASSERT_EQ(0, llmdev_open(order[i], &dev));
		ASSERT_EQ(0, llmdev_get_info(dev, &info));
		EXPECT_EQ(info.hbm_largest_free, juint(c, "free_bytes", 0));
		llmdev_close(dev);
	}
	json_object_put(j);
	run_free(&r);
	run(&r, "shard", "plan", SMALL_MODEL, "--tp", tps, "--pp", pps);
	ASSERT_RUN_OK(&r);
	snprintf(want, sizeof(want), "plan: tp %u x pp %u on %u card", tp, pp, tp * pp);
	EXPECT_NE(NULL, strstr(r.out, want)) TH_LOG("%s", r.out);
	run_free(&r);

	/* what does not fit the model */
	EXPECT_LLMCTL(2, "--tp 3 does not divide llama.attention.head_count 8",
		"shard", "plan", SMALL_MODEL, "--tp", "3");
	run(&r, "shard", "plan", SMALL_MODEL, "--pp", "5");
	EXPECT_RUN(&r, 2, "");
	EXPECT_NE(NULL, strstr(r.err, "--pp 5")) TH_LOG("%s", r.err);
	run_free(&r);
	EXPECT_LLMCTL(1, "--cards lists 3 cards but --tp 2 x --pp 1 needs 2",
		"shard", "plan", SMALL_MODEL, "--tp", "2", "--cards", "0,1,2");
	EXPECT_LLMCTL(1, "a GGUF model file is needed", "shard", "plan");
	/* what is not a model */
	ASSERT_EQ(0, write_file(JUNK, "not a model\n", 12));
	EXPECT_LLMCTL(2, JUNK ": header: bad magic 6e 6f 74 20, expected \"GGUF\"",
		"shard", "plan", JUNK);
	unlink(JUNK);
	EXPECT_LLMCTL(2, "/nonexistent.gguf: No such file or directory",
		"shard", "plan", "/nonexistent.gguf");

	/* a card too full for its share: the plan names it and the sizes */
	ASSERT_EQ(0, llmdev_open(0, &dev));
	ASSERT_EQ(0, llmdev_get_info(dev, &info));
	ASSERT_EQ(0, llmdev_hbm_alloc(dev, info.hbm_largest_free - 64 * 1024, 0, 0, NULL,
				      &fill));
	run(&r, "shard", "plan", SMALL_MODEL);
	EXPECT_RUN(&r, 2, "card 0 (stage 0, tp rank 0) needs ");
	EXPECT_NE(NULL, strstr(r.err, "but has 64.0 KiB (65536 bytes) free")) TH_LOG("%s", r.err);
	run_free(&r);
	llmdev_close(dev);
	/* without the driver the plan says it cannot check */
	EXPECT_LLMCTL_NOBODY(0, "", "shard", "plan", SMALL_MODEL);
	unlink(SMALL_MODEL);
}

/*
 * No order whose pipeline hops are links (llmdev0's ports all disabled):
 * the default is 0..3, load uses it, and apply names the hop without a link
 */
TEST_F_TIMEOUT(drv, shard_order_fallback, 90)
{
	bool was_up[LLMDEV_NUM_LINK_PORTS];
	struct llmdev_link_info li;
	struct json_object *c;
	struct llmdev *dev;
	unsigned int i, p;
	struct json_object *j;
	struct run r;

	if (_metadata->skip)
		return;
	if (self->ncards != 4)
		SKIP(return, "needs 4 cards, the VM has %d", self->ncards);
	ASSERT_EQ(0, make_model(SMALL_MODEL, "4", "256", "512", "1024"));
	ASSERT_EQ(0, llmdev_open(0, &dev));
	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
		ASSERT_EQ(0, llmdev_link_get_info(dev, p, &li));
		was_up[p] = li.state == LLMDEV_LINK_UP;
		ASSERT_EQ(0, llmdev_link_set_enabled(dev, p, false));
	}
	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++)
		ASSERT_TRUE(wait_link(dev, p, false));

	run(&r, "shard", "plan", SMALL_MODEL, "--tp", "2", "--pp", "2", "-j");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.shard-plan/1");
	for (i = 0; (c = jat(j, "cards", i)); i++)
		EXPECT_EQ(i, juint(c, "card", 99));
	EXPECT_EQ(4, i);
	json_object_put(j);
	run_free(&r);
	run(&r, "load", SMALL_MODEL, "--tp", "2", "--pp", "2");
	ASSERT_RUN_OK(&r);
	EXPECT_NE(NULL, strstr(r.out, "llmdev2: llmctl-test-small.s1t0")) TH_LOG("%s", r.out);
	run_free(&r);
	EXPECT_LLMCTL(2, "llmdev0: no link that is up to llmdev2 (stage 0 rank 0 to stage 1 rank 0)",
		"shard", "apply", SMALL_MODEL, "--tp", "2", "--pp", "2");
	run(&r, "unload", SMALL_MODEL);
	ASSERT_RUN_OK(&r);
	run_free(&r);

	/* the links back as they were */
	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++)
		EXPECT_EQ(0, llmdev_link_set_enabled(dev, p, true));
	for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++)
		if (was_up[p])
			EXPECT_TRUE(wait_link(dev, p, true));
	llmdev_close(dev);
	unlink(SMALL_MODEL);
}

/* ---- a model on 4 cards, tp 2 x pp 2 ---------------------------------------- */

#define MODEL		"/tmp/llmctl-test.gguf"
#define TAG		"llmctl-test"

FIXTURE(model) {
	unsigned int order[4];
	char cards[16];		/* "--cards" value */
	char loop[32];		/* a loop device the test attached, or "" */
	int loop_fd;
};

FIXTURE_SETUP(model)
{
	struct run r;

	if (geteuid())
		SKIP(return, "needs root");
	if (driver_set(true))
		SKIP(return, "cannot load llmdev (is LLMCTL_MODULE set?)");
	if (llmdev_count() < 4)
		SKIP(return, "needs 4 cards, the VM has %d", llmdev_count());
	if (pipeline_order(self->order))
		SKIP(return, "no 2 pairs of linked cards for 2 pipeline stages");
	snprintf(self->cards, sizeof(self->cards), "%u,%u,%u,%u", self->order[0],
		 self->order[1], self->order[2], self->order[3]);
	if (access(MODEL, R_OK))
		ASSERT_EQ(0, make_model(MODEL, "4", "512", "1024", "2048"));
	/* a clean start */
	run(&r, "shard", "clear");
	run_free(&r);
	run(&r, "unload", MODEL);
	run_free(&r);
}

FIXTURE_TEARDOWN(model)
{
	struct run r;

	if (self->loop[0]) {
		run(&r, "unload", self->loop);
		run_free(&r);
		ioctl(self->loop_fd, LOOP_CLR_FD, 0);
		close(self->loop_fd);
	}

	run(&r, "shard", "clear");
	run_free(&r);
	run(&r, "unload", MODEL);
	run_free(&r);
}

#define LAYOUT(self) "--tp", "2", "--pp", "2", "--cards", (self)->cards

/* the regions hold what the plan puts there, byte for byte */
static void check_regions(struct __test_metadata *_metadata, struct json_object *plan,
			  struct json_object *load)
{
	size_t flen = 0;
	char *file = read_file(MODEL, &flen);
	struct json_object *c, *p;
	unsigned int i, k;

	ASSERT_NE(NULL, file);
	for (i = 0; (c = jat(plan, "cards", i)); i++) {
		unsigned int card = juint(c, "card", 99);
		uint64_t bytes = juint(c, "bytes", 0);
		char name[32], sum[20];
		uint32_t handle = 0;
		struct llmdev *dev;
		uint8_t *buf;

		snprintf(name, sizeof(name), TAG ".s%llut%llu",
			 (unsigned long long)juint(c, "stage", 99),
			 (unsigned long long)juint(c, "tp_rank", 99));
		ASSERT_TRUE(has_region(card, name, &handle)) TH_LOG("llmdev%u: no %s", card, name);
		buf = malloc(bytes);
		ASSERT_NE(NULL, buf);
		ASSERT_EQ(0, llmdev_open(card, &dev));
		ASSERT_EQ(0, llmdev_copy_from_hbm(dev, handle, 0, buf, bytes, 10 * SEC));
		llmdev_close(dev);
		for (k = 0; (p = jat(c, "pieces", k)); k++) {
			uint64_t off = juint(p, "src_offset", 0);
			uint64_t len = juint(p, "src_len", 0);
			uint64_t stride = juint(p, "src_stride", 0);
			uint64_t count = juint(p, "src_count", 0);
			uint64_t dst = juint(p, "dst_offset", 0), m;

			for (m = 0; m < count; m++) {
				ASSERT_LE(off + m * stride + len, flen);
				ASSERT_LE(dst + (m + 1) * len, bytes);
				ASSERT_EQ(0, memcmp(buf + dst + m * len, file + off + m * stride, len))
					TH_LOG("llmdev%u: %s, range %llu", card,
					       jstr(p, "tensor"), (unsigned long long)m);
			}
		}
		/* the checksum load printed is that of the region's bytes */
		snprintf(sum, sizeof(sum), "%016llx", (unsigned long long)fnv1a(buf, bytes));
		for (k = 0; (p = jat(load, "cards", k)); k++)
			if (juint(p, "card", 99) == card) {
				EXPECT_STREQ(name, jstr(p, "region"));
				EXPECT_STREQ(sum, jstr(p, "checksum"));
				EXPECT_EQ(bytes, juint(p, "bytes", 0));
				EXPECT_EQ(handle, juint(p, "handle", 0));
			}
		free(buf);
	}
	free(file);
}

/* the routing tables are what shard apply said and what the plan wants */
static void check_routes(struct __test_metadata *_metadata, const unsigned int order[4],
			 struct json_object *apply)
{
	unsigned int i;

	ASSERT_EQ(4, juint(apply, "applied", 0));
	for (i = 0; i < 4; i++) {
		struct json_object *a = jat(apply, "cards", i);
		struct llmdev_route_entry *e = NULL;
		unsigned int n = 0, stage = i / 2, rank = i % 2;
		char name[32], hop[16];
		uint32_t gen, handle = 0;
		struct llmdev *dev;
		int port;

		snprintf(name, sizeof(name), TAG ".s%ut%u", stage, rank);
		ASSERT_TRUE(has_region(order[i], name, &handle));
		ASSERT_EQ(0, llmdev_open(order[i], &dev));
		ASSERT_EQ(0, llmdev_route_get(dev, &e, &n, &gen));
		llmdev_close(dev);
		ASSERT_EQ(1, n) TH_LOG("llmdev%u", order[i]);
		EXPECT_EQ(stage * 2, e[0].layer_first);
		EXPECT_EQ(stage * 2 + 1, e[0].layer_last);
		EXPECT_EQ(rank, e[0].tp_rank);
		EXPECT_EQ(2, e[0].tp_size);
		EXPECT_EQ(handle, e[0].handle);
		/* stage 0 sends to the same rank of stage 1; stage 1 to the host */
		port = stage ? -1 : port_between(order[i], order[i + 2]);
		EXPECT_EQ(stage ? LLMDEV_HOP_HOST : (uint32_t)port, e[0].next_hop);
		if (port >= 0)
			snprintf(hop, sizeof(hop), "link%d", port);
		else
			strcpy(hop, "host");
		EXPECT_EQ(order[i], juint(a, "card", 99));
		EXPECT_STREQ(name, jstr(a, "region"));
		EXPECT_STREQ(hop, jstr(a, "next_hop"));
		EXPECT_EQ(gen, juint(a, "generation", 0));
		free(e);
	}
}

TEST_F_TIMEOUT(model, load_apply_unload, 90)
{
	struct json_object *plan, *load, *apply, *show;
	uint32_t handles[4], h, gen[4];
	struct llmdev_hbm_alloc other;
	struct llmdev *dev;
	struct run r;
	unsigned int i;

	if (_metadata->skip)
		return;
	run(&r, "shard", "plan", MODEL, LAYOUT(self), "--json");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(plan, &r, "llmdev.shard-plan/1");
	run_free(&r);

	/* load --verify */
	run(&r, "-j", "load", MODEL, LAYOUT(self), "--verify");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(load, &r, "llmdev.load/1");
	EXPECT_EQ(1, jbool(load, "verified"));
	for (i = 0; i < 4; i++) {
		struct json_object *c = jat(load, "cards", i);

		EXPECT_EQ(1, jbool(c, "loaded"));
		EXPECT_EQ(1, jbool(c, "verified"));
		EXPECT_EQ(self->order[i], juint(c, "card", 99));
		ASSERT_TRUE(has_region(self->order[i], jstr(c, "region"), &handles[i]));
	}
	check_regions(_metadata, plan, load);
	json_object_put(load);
	run_free(&r);

	/* again: nothing to do, and --verify checks what is there */
	run(&r, "load", MODEL, LAYOUT(self), "--verify");
	ASSERT_RUN_OK(&r);
	EXPECT_NE(NULL, strstr(r.out, "already loaded, verified")) TH_LOG("%s", r.out);
	EXPECT_NE(NULL, strstr(r.out, "nothing to load")) TH_LOG("%s", r.out);
	run_free(&r);
	for (i = 0; i < 4; i++) {
		char name[32];

		snprintf(name, sizeof(name), TAG ".s%ut%u", i / 2, i % 2);
		ASSERT_TRUE(has_region(self->order[i], name, &h));
		EXPECT_EQ(handles[i], h) TH_LOG("%s was reloaded", name);
	}

	/* --replace loads again */
	run(&r, "-j", "load", MODEL, LAYOUT(self), "--replace");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(load, &r, "llmdev.load/1");
	EXPECT_EQ(1, jbool(load, "cards/0/loaded"));
	EXPECT_LT(0, juint(load, "bytes", 0));
	check_regions(_metadata, plan, load);
	json_object_put(load);
	run_free(&r);

	/* apply: each card routes its layers and rank to the next stage */
	EXPECT_LLMCTL_NOBODY(2, "not permitted (needs CAP_SYS_ADMIN)",
		"shard", "apply", MODEL, LAYOUT(self));
	run(&r, "-j", "shard", "apply", MODEL, LAYOUT(self));
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(apply, &r, "llmdev.shard-apply/1");
	check_routes(_metadata, self->order, apply);
	json_object_put(apply);
	run_free(&r);

	run(&r, "-j", "shard", "show");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(show, &r, "llmdev.shard-show/1");
	ASSERT_EQ(4, jlen(show, "cards"));
	for (i = 0; i < 4; i++) {
		struct json_object *c = jat(show, "cards", i);
		struct llmdev_route_entry *e = NULL;
		unsigned int n = 0;

		ASSERT_EQ(0, llmdev_open(i, &dev));
		ASSERT_EQ(0, llmdev_route_get(dev, &e, &n, &gen[i]));
		llmdev_close(dev);
		EXPECT_EQ(i, juint(c, "card", 99));
		EXPECT_EQ(gen[i], juint(c, "generation", 0));
		ASSERT_EQ(n, jlen(c, "entries"));
		EXPECT_EQ(e[0].layer_first, juint(c, "entries/0/layer_first", 99));
		EXPECT_EQ(e[0].tp_rank, juint(c, "entries/0/tp_rank", 99));
		EXPECT_EQ(e[0].handle, juint(c, "entries/0/handle", 99));
		EXPECT_EQ(e[0].length, juint(c, "entries/0/length", 0));
		EXPECT_NE(NULL, jstr(c, "entries/0/region"));
		free(e);
	}
	json_object_put(show);
	run_free(&r);
	run(&r, "shard", "show");
	ASSERT_RUN_OK(&r);
	EXPECT_NE(NULL, strstr(r.out, "layers 0-1 tp 0/2 region")) TH_LOG("%s", r.out);
	EXPECT_NE(NULL, strstr(r.out, "-> host")) TH_LOG("%s", r.out);
	run_free(&r);

	/* routed regions are not replaced behind the table's back */
	EXPECT_LLMCTL(2, "the routing table uses it ('llmctl shard clear' first)",
		"load", MODEL, LAYOUT(self), "--replace");
	/* an ordinary user can neither clear nor unload a routed model */
	EXPECT_LLMCTL_NOBODY(2, "clearing the routing table: not permitted (needs CAP_SYS_ADMIN)",
		"shard", "clear");
	EXPECT_LLMCTL_NOBODY(2, "removing the routes to the model: not permitted (needs CAP_SYS_ADMIN)",
		"unload", MODEL);
	for (i = 0; i < 4; i++) {
		struct llmdev_route_entry *e = NULL;
		unsigned int n = 0;
		uint32_t g;

		ASSERT_EQ(0, llmdev_open(i, &dev));
		ASSERT_EQ(0, llmdev_route_get(dev, &e, &n, &g));
		llmdev_close(dev);
		EXPECT_EQ(1, n);
		EXPECT_EQ(gen[i], g) TH_LOG("llmdev%u's table changed", i);
		free(e);
	}

	/* unload: the routes go first, then the regions; not another model's */
	ASSERT_EQ(0, llmdev_open(0, &dev));
	ASSERT_EQ(0, llmdev_hbm_alloc(dev, 4096, 0, LLMDEV_HBM_PERSISTENT, TAG ".small.s0t0",
				      &other));
	run(&r, "-j", "unload", MODEL);
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(show, &r, "llmdev.unload/1");
	EXPECT_EQ(4, juint(show, "freed", 0));
	json_object_put(show);
	run_free(&r);
	EXPECT_TRUE(has_region(0, TAG ".small.s0t0", NULL));
	EXPECT_EQ(0, llmdev_hbm_free(dev, other.handle));
	llmdev_close(dev);
	for (i = 0; i < 4; i++) {
		struct llmdev_route_entry *e = NULL;
		unsigned int n = 9;

		EXPECT_EQ(0, count_regions(i, TAG ".s"));
		ASSERT_EQ(0, llmdev_open(i, &dev));
		ASSERT_EQ(0, llmdev_route_get(dev, &e, &n, NULL));
		llmdev_close(dev);
		EXPECT_EQ(0, n);
		free(e);
	}
	run(&r, "unload", MODEL);
	ASSERT_RUN_OK(&r);
	EXPECT_NE(NULL, strstr(r.out, "nothing to unload")) TH_LOG("%s", r.out);
	run_free(&r);
	json_object_put(plan);
}

/* shard apply changes every card's table or none */
TEST_F(model, apply_all_or_none)
{
	struct llmdev_route_entry *before[4] = { 0 }, *after = NULL;
	unsigned int nbefore[4], nafter, i;
	uint32_t genb[4], gena, handle;
	struct llmdev *dev;
	char name[32];
	struct run r;

	if (_metadata->skip)
		return;
	/*
	 * Without --cards and without the driver: load loads it first and
	 * then picks the order apply picks, the first whose hops are links
	 * (the checks below find the shares on self->order)
	 */
	ASSERT_EQ(0, driver_set(false));
	run(&r, "load", MODEL, "--tp", "2", "--pp", "2");
	ASSERT_RUN_OK(&r);
	run_free(&r);
	run(&r, "shard", "apply", MODEL, "--tp", "2", "--pp", "2");
	ASSERT_RUN_OK(&r);
	run_free(&r);

	/* the last card loses its share */
	snprintf(name, sizeof(name), "%u", self->order[3]);
	run(&r, "shard", "clear", name);
	ASSERT_RUN_OK(&r);
	run_free(&r);
	snprintf(name, sizeof(name), TAG ".s1t1");
	ASSERT_TRUE(has_region(self->order[3], name, &handle));
	ASSERT_EQ(0, llmdev_open(self->order[3], &dev));
	ASSERT_EQ(0, llmdev_hbm_free(dev, handle));
	llmdev_close(dev);

	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, llmdev_open(i, &dev));
		ASSERT_EQ(0, llmdev_route_get(dev, &before[i], &nbefore[i], &genb[i]));
		llmdev_close(dev);
	}
	run(&r, "shard", "apply", MODEL, LAYOUT(self));
	EXPECT_RUN(&r, 2, "region 'llmctl-test.s1t1': ");
	EXPECT_NE(NULL, strstr(r.err, "run 'llmctl load' with the same layout first"));
	run_free(&r);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, llmdev_open(i, &dev));
		ASSERT_EQ(0, llmdev_route_get(dev, &after, &nafter, &gena));
		llmdev_close(dev);
		EXPECT_EQ(genb[i], gena) TH_LOG("llmdev%u's table was written", i);
		ASSERT_EQ(nbefore[i], nafter);
		EXPECT_EQ(0, nafter ? memcmp(before[i], after, nafter * sizeof(*after)) : 0);
		free(after);
		free(before[i]);
	}

	/* a layout the cabling does not carry: refused before any change */
	run(&r, "load", MODEL, LAYOUT(self));	/* the missing share */
	ASSERT_RUN_OK(&r);
	run_free(&r);
	if (port_between(self->order[0], self->order[3]) >= 0)
		return;		/* the stage-1 pair swapped still has links */
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, llmdev_open(i, &dev));
		ASSERT_EQ(0, llmdev_route_get(dev, &before[i], &nbefore[i], &genb[i]));
		llmdev_close(dev);
		free(before[i]);
	}
	snprintf(name, sizeof(name), "%u,%u,%u,%u", self->order[0], self->order[1],
		 self->order[3], self->order[2]);
	run(&r, "shard", "apply", MODEL, "--tp", "2", "--pp", "2", "--cards", name);
	EXPECT_RUN(&r, 2, "no link that is up to llmdev");
	EXPECT_NE(NULL, strstr(r.err, "(stage 0 rank 0 to stage 1 rank 0)"));
	run_free(&r);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, llmdev_open(i, &dev));
		ASSERT_EQ(0, llmdev_route_get(dev, &after, &nafter, &gena));
		llmdev_close(dev);
		EXPECT_EQ(genb[i], gena) TH_LOG("llmdev%u's table was written", i);
		free(after);
	}
}

/* shares already on the cards that are not this file's */
TEST_F(model, stale_shares)
{
	static const char *const path = "/tmp/" TAG "-stale.gguf";
	static char junk[4096];
	struct llmdev_hbm_open ho;
	struct llmdev *dev;
	uint32_t handle, h;
	unsigned long long bad;
	const char *p;
	struct run r;

	if (_metadata->skip)
		return;
	ASSERT_EQ(0, make_model(path, "2", "256", "512", "1024"));

	/* --verify notices a share whose bytes changed */
	run(&r, "load", path, "--tp", "2");
	ASSERT_RUN_OK(&r);
	run_free(&r);
	ASSERT_TRUE(has_region(1, TAG "-stale.s0t1", &handle));
	ASSERT_EQ(0, llmdev_open(1, &dev));
	ASSERT_EQ(0, llmdev_hbm_open(dev, TAG "-stale.s0t1", &ho));
	memset(junk, 0x5a, sizeof(junk));
	ASSERT_EQ(0, llmdev_copy_to_hbm(dev, ho.handle, 8192, junk, sizeof(junk), 10 * SEC));
	llmdev_close(dev);
	run(&r, "load", path, "--tp", "2", "--verify");
	EXPECT_RUN(&r, 2, "llmdev1: verify '" TAG "-stale.s0t1': region offset ");
	EXPECT_NE(NULL, strstr(r.err, ") differs from the file (the region does not hold this "
			       "share; --replace reloads it)")) TH_LOG("%s", r.err);
	/* the first byte that differs is one of those written */
	p = strstr(r.err, "region offset ");
	ASSERT_NE(NULL, p);
	bad = strtoull(p + strlen("region offset "), NULL, 10);
	EXPECT_LE(8192, bad);
	EXPECT_GT(8192 + sizeof(junk), bad);
	run_free(&r);
	ASSERT_TRUE(has_region(1, TAG "-stale.s0t1", &h));	/* not ours to free */
	EXPECT_EQ(handle, h);
	EXPECT_LLMCTL(0, "", "load", path, "--tp", "2", "--verify", "--replace");

	/* a share of another size (the file changed) needs --replace */
	ASSERT_EQ(0, make_model(path, "2", "512", "512", "1024"));
	run(&r, "load", path, "--tp", "2");
	EXPECT_RUN(&r, 2, "llmdev0: region '" TAG "-stale.s0t0' exists with ");
	EXPECT_NE(NULL, strstr(r.err, "--replace reloads it, 'llmctl unload' frees it"));
	run_free(&r);
	ASSERT_TRUE(has_region(1, TAG "-stale.s0t1", &h));
	EXPECT_LLMCTL(0, "", "-j", "load", path, "--tp", "2", "--replace", "--verify");
	EXPECT_LLMCTL(0, "", "unload", path);
	EXPECT_EQ(0, count_regions(0, TAG "-stale"));
	EXPECT_EQ(0, count_regions(1, TAG "-stale"));
	unlink(path);
}

/* a bad model file changes nothing on any card */
TEST_F(model, bad_file)
{
	static const char *const trunc = "/tmp/" TAG "-trunc.gguf";
	static const char *const junk = "/tmp/" TAG "-junk.gguf";
	uint64_t used[4];
	size_t len = 0;
	char *data = read_file(MODEL, &len);
	struct llmdev_info info;
	struct llmdev *dev;
	struct run r;
	unsigned int i;

	if (_metadata->skip)
		return;
	ASSERT_NE(NULL, data);
	ASSERT_EQ(0, write_file(trunc, data, len * 2 / 3));
	memcpy(data, "GGUX", 4);
	ASSERT_EQ(0, write_file(junk, data, len));
	free(data);
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, llmdev_open(i, &dev));
		ASSERT_EQ(0, llmdev_get_info(dev, &info));
		llmdev_close(dev);
		used[i] = info.hbm_used;
	}

	run(&r, "load", trunc, LAYOUT(self));
	EXPECT_RUN(&r, 2, "beyond end of file");
	EXPECT_NE(NULL, strstr(r.err, trunc));
	run_free(&r);
	EXPECT_LLMCTL(2, "header: bad magic", "load", junk, LAYOUT(self));
	EXPECT_LLMCTL(2, "beyond end of file", "shard", "apply", trunc, LAYOUT(self));
	for (i = 0; i < 4; i++) {
		struct json_object *j;
		char card[16];

		snprintf(card, sizeof(card), "%u", i);
		EXPECT_EQ(0, count_regions(i, TAG "-"));
		run(&r, "-j", "info", card);
		ASSERT_RUN_OK(&r);
		ASSERT_JSON(j, &r, "llmdev.info/1");
		EXPECT_EQ(used[i], juint(j, "hbm_used", 1));
		EXPECT_EQ(0, jlen(j, "regions"));
		json_object_put(j);
		run_free(&r);
	}
	unlink(trunc);
	unlink(junk);
}

/* long file names that share a prefix get regions of their own */
TEST_F_TIMEOUT(model, long_names, 90)
{
	static const char *const a = "/tmp/Meta-Llama-3-8B-Instruct-Q8_0.gguf";
	static const char *const b = "/tmp/Meta-Llama-3-8B-Instruct-abliterated-Q8_0.gguf";
	char ra[40], rb[40], card[12];
	const char *str;
	uint32_t handle;
	struct json_object *j;
	struct run r;

	if (_metadata->skip)
		return;
	/* the same generator and seed: the same size, the same bytes */
	ASSERT_EQ(0, make_model(a, "2", "256", "512", "1024"));
	ASSERT_EQ(0, make_model(b, "2", "256", "512", "1024"));
	snprintf(card, sizeof(card), "%u", self->order[0]);

	run(&r, "load", a, "--cards", card, "-j");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.load/1");
	str = jstr(j, "cards/0/region");
	ASSERT_NE(NULL, str);
	snprintf(ra, sizeof(ra), "%s", str);
	json_object_put(j);
	run_free(&r);
	/* the documented form: 13 characters, '~', 6 hex digits of FNV-1a */
	EXPECT_STREQ("Meta-Llama-3-~9c7777.s0t0", ra);

	run(&r, "load", b, "--cards", card, "-j");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.load/1");
	str = jstr(j, "cards/0/region");
	ASSERT_NE(NULL, str);
	snprintf(rb, sizeof(rb), "%s", str);
	EXPECT_EQ(1, jbool(j, "cards/0/loaded"));	/* not "already loaded" */
	json_object_put(j);
	run_free(&r);
	EXPECT_STRNE(ra, rb);
	EXPECT_EQ(0, strncmp(rb, "Meta-Llama-3-~", 14)) TH_LOG("%s", rb);

	run(&r, "unload", a);
	ASSERT_RUN_OK(&r);
	run_free(&r);
	EXPECT_FALSE(has_region(self->order[0], ra, &handle));
	EXPECT_TRUE(has_region(self->order[0], rb, &handle));
	run(&r, "unload", b);
	ASSERT_RUN_OK(&r);
	run_free(&r);
	EXPECT_FALSE(has_region(self->order[0], rb, &handle));
	unlink(a);
	unlink(b);
}

/*
 * A share's name taken first by another user (nobody makes the region
 * "<model>.s0t0" of the right size before root loads): load refuses to
 * keep or replace it, shard apply to route it, each naming the region and
 * its owner; once root has freed it, load works.
 */
TEST_F(drv, load_squatted)
{
	static const char *const path = "/tmp/llmctl-test-squat.gguf";
	static const char *const name = "llmctl-test-squat.s0t0";
	struct json_object *j;
	uint32_t handle = 0, h = 0;
	uint64_t need;
	struct run r;
	pid_t pid;
	int st;

	if (_metadata->skip)
		return;
	ASSERT_EQ(0, make_model(path, "2", "256", "512", "1024"));
	run(&r, "unload", path);
	run_free(&r);
	run(&r, "shard", "plan", path, "--cards", "0", "--json");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.shard-plan/1");
	need = juint(j, "cards/0/need_bytes", 0);
	json_object_put(j);
	run_free(&r);
	ASSERT_LT(0, need);

	/* nobody takes the name first, with just the size the share needs */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct llmdev_hbm_alloc a;
		struct llmdev *dev;

		if (llmdev_become(NOBODY, true) || llmdev_open(0, &dev) ||
		    llmdev_hbm_alloc(dev, need, 0, LLMDEV_HBM_PERSISTENT, name, &a))
			_exit(1);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st)) TH_LOG("nobody's region: %#x", st);
	ASSERT_TRUE(has_region(0, name, &handle));

	run(&r, "load", path, "--cards", "0");
	EXPECT_RUN(&r, 2, "llmdev0: region 'llmctl-test-squat.s0t0' belongs to uid 65534, "
		   "not to this user (uid 0)");
	EXPECT_NE(NULL, strstr(r.err, "free it as uid 65534 or as root ('llmctl unload "))
		TH_LOG("%s", r.err);
	EXPECT_EQ(NULL, strstr(r.out, "already loaded")) TH_LOG("%s", r.out);
	run_free(&r);
	EXPECT_LLMCTL(2, "region 'llmctl-test-squat.s0t0' belongs to uid 65534",
		"load", path, "--cards", "0", "--replace");
	EXPECT_LLMCTL(2, "region 'llmctl-test-squat.s0t0' belongs to uid 65534",
		"shard", "apply", path, "--cards", "0");
	/* still nobody's, and routed nowhere */
	ASSERT_TRUE(has_region(0, name, &h));
	EXPECT_EQ(handle, h);

	/* root frees it; then the load is root's own */
	run(&r, "unload", path);
	ASSERT_RUN_OK(&r);
	run_free(&r);
	EXPECT_FALSE(has_region(0, name, NULL));
	run(&r, "load", path, "--cards", "0");
	ASSERT_RUN_OK(&r);
	run_free(&r);
	EXPECT_LLMCTL(0, "", "unload", path);

	/* uid 0 without CAP_SYS_ADMIN (a container's root) takes it first */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct __user_cap_header_struct hd = {
			.version = _LINUX_CAPABILITY_VERSION_3,
		};
		struct __user_cap_data_struct d[2];
		struct llmdev_hbm_alloc a;
		struct llmdev *dev;

		if (syscall(SYS_capget, &hd, d))
			_exit(2);
		d[0].effective &= ~(1u << CAP_SYS_ADMIN);
		d[0].permitted &= ~(1u << CAP_SYS_ADMIN);
		d[0].inheritable &= ~(1u << CAP_SYS_ADMIN);
		if (syscall(SYS_capset, &hd, d) || llmdev_open(0, &dev) ||
		    llmdev_hbm_alloc(dev, need, 0, LLMDEV_HBM_PERSISTENT, name, &a))
			_exit(1);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st)) TH_LOG("uid 0's region: %#x", st);
	ASSERT_TRUE(has_region(0, name, &handle));
	run(&r, "load", path, "--cards", "0");
	EXPECT_RUN(&r, 2, "llmdev0: region 'llmctl-test-squat.s0t0' was made without "
		   "CAP_SYS_ADMIN");
	EXPECT_EQ(NULL, strstr(r.out, "already loaded")) TH_LOG("%s", r.out);
	run_free(&r);
	EXPECT_LLMCTL(2, "was made without CAP_SYS_ADMIN", "shard", "apply", path,
		"--cards", "0");
	ASSERT_TRUE(has_region(0, name, &h));
	EXPECT_EQ(handle, h);
	EXPECT_LLMCTL(0, "", "unload", path);
	EXPECT_FALSE(has_region(0, name, NULL));
	unlink(path);
}

/* a card without room for its share: refused before any card changes */
TEST_F(model, no_room)
{
	struct llmdev_hbm_alloc fill;
	struct llmdev_info info;
	struct llmdev *dev;
	struct run r;
	unsigned int i;

	if (_metadata->skip)
		return;
	ASSERT_EQ(0, llmdev_open(self->order[3], &dev));
	ASSERT_EQ(0, llmdev_get_info(dev, &info));
	ASSERT_EQ(0, llmdev_hbm_alloc(dev, info.hbm_largest_free - 4096, 0, 0, NULL, &fill));
	run(&r, "load", MODEL, LAYOUT(self));
	EXPECT_RUN(&r, 2, "(stage 1, tp rank 1) needs ");
	EXPECT_NE(NULL, strstr(r.err, "but has 4.0 KiB (4096 bytes) free")) TH_LOG("%s", r.err);
	run_free(&r);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, count_regions(i, TAG ".s"));
	llmdev_close(dev);
}

/* an interrupted load frees the regions it made */
TEST_F(model, interrupted)
{
	static const char *const big = "/tmp/" TAG "-big.gguf";
	struct run r;
	unsigned int i;
	int k;

	if (_metadata->skip)
		return;
	ASSERT_EQ(0, make_model(big, "8", "512", "1408", "8192"));
	ASSERT_EQ(0, run_start(&r, 0, (const char *const[]){ "llmctl", "load", big, "--tp", "2",
				"--pp", "2", "--cards", self->cards, NULL }));
	/* the regions are all made before any data moves: then stop it */
	for (k = 0; k < 2000 && count_regions(self->order[3], TAG "-big.s") < 1; k++)
		usleep(5000);
	kill(r.pid, SIGINT);
	run_finish(&r, RUN_TIMEOUT);
	EXPECT_RUN(&r, 2, ": interrupted");
	run_free(&r);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, count_regions(i, TAG "-big.s")) TH_LOG("llmdev%u", i);
	unlink(big);
}

/* ---- reset, ps, doctor, topo, openmetrics, cdi (issue 13) ---------------------------- */

/* What the new commands say without the driver. */
TEST_F(nodrv, ops_commands)
{
	struct json_object *j, *c;
	struct run r;

	if (_metadata->skip)
		return;
	run(&r, "-j", "doctor");
	EXPECT_RUN(&r, 2, "");
	ASSERT_JSON(j, &r, "llmdev.doctor/1");
	EXPECT_EQ(1, (int)juint(j, "failed", 0));
	c = jat(j, "checks", 0);
	EXPECT_STREQ("FAIL", jstr(c, "status"));
	EXPECT_STREQ("driver", jstr(c, "check"));
	EXPECT_NE(NULL, strstr(jstr(c, "fix") ?: "", "llmctl driver load"));
	json_object_put(j);
	run_free(&r);
	run(&r, "doctor");
	EXPECT_EQ(2, r.rc);
	EXPECT_NE(NULL, strstr(r.out, "FAIL  driver"));
	EXPECT_NE(NULL, strstr(r.out, "fix: 'llmctl driver load'"));
	run_free(&r);
	EXPECT_LLMCTL(2, "the llmdev driver is not loaded: no process holds a card", "ps");
	EXPECT_LLMCTL_NOBODY(2, "the llmdev driver is not loaded", "reset", "0");
	EXPECT_LLMCTL_NOBODY(2, "the llmdev driver is not loaded", "topo");
	EXPECT_LLMCTL_NOBODY(2, "the llmdev driver is not loaded",
		"cdi", "generate", "--no-library");
	EXPECT_FALSE(driver_live());
}

/*
 * kv stats needs no driver. Anyone may leave files in the statistics
 * directory: one that is not a pool's is named and the exit status is 2;
 * a FIFO is not waited on.
 */
TEST_F(nodrv, kv_stats_strangers)
{
	char dir[64], junk[128], fifo[128];
	int fd;

	if (_metadata->skip)
		return;
	snprintf(dir, sizeof(dir), "/tmp/kvstats-test.%d", getpid());
	ASSERT_EQ(0, mkdir(dir, 0755));
	ASSERT_EQ(0, chmod(dir, 0755));
	snprintf(junk, sizeof(junk), "%s/llmdev-kv.1234.0", dir);
	snprintf(fifo, sizeof(fifo), "%s/llmdev-kv.fifo", dir);
	fd = open(junk, O_CREAT | O_WRONLY, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 100000));
	close(fd);
	ASSERT_EQ(0, mkfifo(fifo, 0644));
	ASSERT_EQ(0, chmod(fifo, 0644));
	setenv("LLMDEV_KV_STATS_DIR", dir, 1);
	EXPECT_LLMCTL_NOBODY(2, "llmdev-kv.fifo: not a KV pool's statistics file", "kv", "stats");
	EXPECT_LLMCTL_NOBODY(2, "llmdev-kv.1234.0: not a KV pool's statistics file", "kv", "stats");
	/* with a PID, only the files of that pid's name */
	EXPECT_LLMCTL_NOBODY(0, "", "kv", "stats", "4321");
	EXPECT_LLMCTL_NOBODY(2, "llmdev-kv.1234.0: not a KV pool's statistics file",
		"kv", "stats", "1234");
	unsetenv("LLMDEV_KV_STATS_DIR");
	unlink(junk);
	unlink(fifo);
	EXPECT_EQ(0, rmdir(dir));
}

/* A host without cards, the driver loaded. */
TEST(no_cards_ops)
{
	char pci[4][32];
	struct json_object *j;
	struct run r;

	if (geteuid())
		SKIP(return, "needs root");
	if (pci_cards(pci, 4))
		SKIP(return, "the VM has cards (run with --cards 0)");
	ASSERT_EQ(0, driver_set(true));
	run(&r, "-j", "ps");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.ps/1");
	EXPECT_EQ(0, jlen(j, "processes"));
	json_object_put(j);
	run_free(&r);
	run(&r, "doctor");
	EXPECT_EQ(2, r.rc);
	EXPECT_NE(NULL, strstr(r.out, "FAIL  cards")) TH_LOG("%s", r.out);
	run_free(&r);
	EXPECT_LLMCTL(2, "no llmdev cards", "topo");
	EXPECT_LLMCTL(2, "no llmdev cards", "stats", "--format", "openmetrics");
	EXPECT_LLMCTL(2, "no llmdev cards", "cdi", "generate", "--no-library");
	EXPECT_LLMCTL(2, "0: no such card", "reset", "0");
}

TEST_F(drv, state_and_reset)
{
	struct json_object *j, *c;
	unsigned int before;
	struct run r;
	int i;

	if (_metadata->skip)
		return;
	run(&r, "-j", "list");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.list/1");
	for (i = 0; (c = jat(j, "cards", i)); i++) {
		EXPECT_STREQ("live", jstr(c, "state"));
	}
	json_object_put(j);
	run_free(&r);
	run(&r, "list");
	EXPECT_NE(NULL, strstr(r.out, " live ")) TH_LOG("%s", r.out);
	run_free(&r);
	run(&r, "-j", "info", "0");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.info/1");
	EXPECT_STREQ("live", jstr(j, "state"));
	before = (unsigned int)juint(j, "reset_count", 999);
	EXPECT_EQ(0, (int)juint(j, "reset_failures", 9));
	json_object_put(j);
	run_free(&r);

	run(&r, "reset", "0");
	ASSERT_RUN_OK(&r);
	EXPECT_NE(NULL, strstr(r.out, "llmdev0: reset; the card is back")) TH_LOG("%s", r.out);
	run_free(&r);
	EXPECT_EQ(0, ports_training(0));	/* the links are back too */
	run(&r, "-j", "reset", "llmdev0");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.reset/1");
	EXPECT_STREQ("live", jstr(j, "state"));
	EXPECT_EQ(before + 2, (unsigned int)juint(j, "reset_count", 0));
	EXPECT_EQ(0, jint(j, "error", 1));
	json_object_put(j);
	run_free(&r);
	run(&r, "info", "0");
	ASSERT_RUN_OK(&r);
	EXPECT_NE(NULL, strstr(r.out, "state          live")) TH_LOG("%s", r.out);
	run_free(&r);

	run_nobody(&r, "reset", "0");
	EXPECT_RUN(&r, 2, "llmdev0: reset: not permitted (needs CAP_SYS_ADMIN)");
	EXPECT_STREQ("", r.out);
	run_free(&r);
	EXPECT_LLMCTL(1, "usage: llmctl reset DEV", "reset");
	EXPECT_LLMCTL(2, "99: no such card", "reset", "99");
}

/* A child holds card 0: ps shows what it owns and moved; then it exits. */
TEST_F(drv, ps)
{
	int go[2], done[2], i, found = 0;
	struct json_object *j, *c;
	struct llmdev_hbm_open ho;
	struct llmdev *dev;
	uint32_t handle;
	char pidstr[16];
	struct run r;
	pid_t pid;
	char ch;

	if (_metadata->skip)
		return;
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		static char buf[1 << 20];
		struct llmdev_hbm_alloc a, b;

		if (llmdev_open(0, &dev) ||
		    llmdev_hbm_alloc(dev, 1 << 20, 0, 0, NULL, &a) ||
		    llmdev_hbm_alloc(dev, 8192, 0, LLMDEV_HBM_PERSISTENT, "llmctl-test.ps", &b) ||
		    llmdev_copy_to_hbm(dev, a.handle, 0, buf, sizeof(buf), SEC * 30) ||
		    llmdev_copy_to_hbm(dev, a.handle, 0, buf, sizeof(buf), SEC * 30))
			_exit(1);
		if (write(go[1], "x", 1) != 1 || read(done[0], &ch, 1) != 1)
			_exit(2);
		_exit(0);
	}
	close(go[1]);
	close(done[0]);
	ASSERT_EQ(1, read(go[0], &ch, 1));

	run(&r, "-j", "ps");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.ps/1");
	for (i = 0; (c = jat(j, "processes", i)); i++) {
		if (jint(c, "pid", 0) != pid)
			continue;
		found++;
		EXPECT_EQ(0, jint(c, "card", -1));
		EXPECT_STREQ("llmctl_test", jstr(c, "command"));
		EXPECT_EQ(1, jlen(c, "fds"));
		EXPECT_EQ(1, (int)juint(c, "regions_private", 0));
		EXPECT_EQ(1, (int)juint(c, "regions_persistent", 0));
		EXPECT_EQ(1u << 20, juint(c, "memory_private", 0));
		EXPECT_EQ(8192, (int)juint(c, "memory_persistent", 0));
		EXPECT_EQ(2u << 20, juint(c, "dma_h2c_bytes", 0));
		EXPECT_EQ(0, (int)juint(c, "dma_c2h_bytes", 1));
		EXPECT_LT(0, (int)juint(c, "dma_transfers", 0));
		EXPECT_LT(0, juint(c, "dma_busy_ns", 0));
	}
	EXPECT_EQ(1, found) TH_LOG("pid %d not in: %s", pid, r.out);
	EXPECT_EQ(0, jint(j, "unreadable_processes", -1));
	json_object_put(j);
	run_free(&r);

	snprintf(pidstr, sizeof(pidstr), "%7d", pid);
	run(&r, "ps");
	ASSERT_RUN_OK(&r);
	EXPECT_NE(NULL, strstr(r.out, pidstr)) TH_LOG("%s", r.out);
	EXPECT_NE(NULL, strstr(r.out, "llmctl_test")) TH_LOG("%s", r.out);
	run_free(&r);
	if (self->ncards > 1) {
		run(&r, "ps", "1");
		ASSERT_RUN_OK(&r);
		EXPECT_EQ(NULL, strstr(r.out, pidstr)) TH_LOG("ps 1 shows card 0's holder: %s", r.out);
		run_free(&r);
	}
	/* an ordinary user does not see root's processes, and is told so */
	run_nobody(&r, "-j", "ps");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.ps/1");
	EXPECT_LT(0, jint(j, "unreadable_processes", 0));
	for (i = 0; (c = jat(j, "processes", i)); i++) {
		EXPECT_NE(pid, jint(c, "pid", 0));
	}
	json_object_put(j);
	run_free(&r);
	EXPECT_LLMCTL(1, "usage: llmctl ps [DEV]", "ps", "0", "1");

	/* the child exits: its persistent region stays, ps names it */
	ASSERT_EQ(1, write(done[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &i, 0));
	EXPECT_EQ(0, i);
	run(&r, "-j", "ps");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.ps/1");
	found = 0;
	for (i = 0; (c = jat(j, "processes", i)); i++) {
		EXPECT_NE(pid, jint(c, "pid", 0));
	}
	for (i = 0; (c = jat(j, "unowned_regions", i)); i++) {
		if (jstr(c, "name") && !strcmp(jstr(c, "name"), "llmctl-test.ps")) {
			found++;
			EXPECT_EQ(pid, jint(c, "creator_pid", 0));
			EXPECT_EQ(8192, (int)juint(c, "length", 0));
		}
	}
	EXPECT_EQ(1, found) TH_LOG("%s", r.out);
	json_object_put(j);
	run_free(&r);
	ASSERT_TRUE(has_region(0, "llmctl-test.ps", &handle));
	ASSERT_EQ(0, llmdev_open(0, &dev));
	EXPECT_EQ(0, llmdev_hbm_open(dev, "llmctl-test.ps", &ho));
	EXPECT_EQ(0, llmdev_hbm_free(dev, handle));
	llmdev_close(dev);
	close(go[0]);
	close(done[1]);
}

TEST_F(drv, topo)
{
	static const char *const rel[] = {
		"switch", "root_port", "host_bridge", "numa_node", "sockets", NULL };
	struct json_object *j, *c, *p;
	struct run r;
	int i, k, n;

	if (_metadata->skip)
		return;
	run(&r, "-j", "topo");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.topo/1");
	ASSERT_EQ(self->ncards, jlen(j, "cards"));
	for (i = 0; (c = jat(j, "cards", i)); i++) {
		EXPECT_EQ(self->ncards - 1, jlen(c, "peers"));
		EXPECT_STREQ(self->pci[i], jstr(c, "pci"));
		for (k = 0; (p = jat(c, "peers", k)); k++) {
			int a = jint(c, "card", -1), b = jint(p, "card", -1);
			bool direct = port_between(a, b) >= 0;

			for (n = 0; rel[n] && strcmp(rel[n], jstr(p, "pcie") ?: ""); n++)
				;
			EXPECT_NE(NULL, rel[n]) TH_LOG("pcie relation %s", jstr(p, "pcie"));
			if (direct) {
				EXPECT_EQ(1, jint(p, "link_hops", -1));
			} else {
				EXPECT_NE(1, jint(p, "link_hops", 1));
			}
		}
	}
	json_object_put(j);
	run_free(&r);
	run(&r, "topo");
	ASSERT_RUN_OK(&r);
	EXPECT_NE(NULL, strstr(r.out, "PCIe")) TH_LOG("%s", r.out);
	EXPECT_NE(NULL, strstr(r.out, "links")) TH_LOG("%s", r.out);
	run_free(&r);
	EXPECT_LLMCTL(1, "topo takes no arguments", "topo", "extra");
}

static int count_checks(struct json_object *j, const char *check, const char *status)
{
	struct json_object *c;
	int i, n = 0;

	for (i = 0; (c = jat(j, "checks", i)); i++)
		if (!strcmp(jstr(c, "check") ?: "", check) &&
		    !strcmp(jstr(c, "status") ?: "", status))
			n++;
	return n;
}

TEST_F_TIMEOUT(drv, doctor, 180)
{
	struct json_object *j, *c;
	char old[32];
	struct run r;
	int i;

	if (_metadata->skip)
		return;
	run(&r, "doctor");
	ASSERT_EQ(0, r.rc) TH_LOG("llmctl doctor: exit %d:\n%s%s", r.rc, r.out, r.err);
	EXPECT_NE(NULL, strstr(r.out, "PASS  driver")) TH_LOG("%s", r.out);
	EXPECT_EQ(NULL, strstr(r.out, "FAIL  ")) TH_LOG("%s", r.out);
	run_free(&r);
	run(&r, "-j", "doctor", "--level", "2");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(j, &r, "llmdev.doctor/1");
	EXPECT_EQ(2, jint(j, "level", 0));
	EXPECT_EQ(0, jint(j, "failed", 1));
	EXPECT_EQ(self->ncards, count_checks(j, "dma self-test", "PASS"));
	EXPECT_EQ(self->ncards, count_checks(j, "state", "PASS"));
	EXPECT_EQ(1, count_checks(j, "versions", "PASS"));
	if (self->ncards >= 2)
		EXPECT_EQ(1, count_checks(j, "allreduce self-test", "PASS")) TH_LOG("%s", r.out);
	for (i = 0; (c = jat(j, "checks", i)); i++) {
		EXPECT_TRUE(jnull(c, "fix"));
	}
	json_object_put(j);
	run_free(&r);

	/* a parameter out of bounds: FAIL, with what to do, exit 2 */
	ASSERT_EQ(0, read_sysfs_str("/sys/module/llmdev/parameters/dma_timeout_ms", old,
				    sizeof(old)));
	ASSERT_EQ(0, write_str("/sys/module/llmdev/parameters/dma_timeout_ms", "50"));
	run(&r, "-j", "doctor");
	EXPECT_EQ(2, r.rc);
	j = parse(_metadata, &r, r.out, "llmdev.doctor/1");
	ASSERT_NE(NULL, j);
	EXPECT_EQ(1, count_checks(j, "module parameters", "FAIL"));
	for (i = 0; (c = jat(j, "checks", i)); i++) {
		if (!strcmp(jstr(c, "status"), "FAIL")) {
			EXPECT_NE(NULL, jstr(c, "fix"));
		}
	}
	json_object_put(j);
	run_free(&r);
	run(&r, "doctor");
	EXPECT_EQ(2, r.rc);
	EXPECT_NE(NULL, strstr(r.out, "FAIL  module parameters")) TH_LOG("%s", r.out);
	EXPECT_NE(NULL, strstr(r.out, "fix: ")) TH_LOG("%s", r.out);
	run_free(&r);
	ASSERT_EQ(0, write_str("/sys/module/llmdev/parameters/dma_timeout_ms", old));

	/* a cabled port taken down */
	if (self->ncards >= 2 && port_between(0, 1) >= 0) {
		char port[8];

		snprintf(port, sizeof(port), "%d", port_between(0, 1));
		run(&r, "link", "set", "0", port, "down");
		ASSERT_RUN_OK(&r);
		run_free(&r);
		run(&r, "doctor");
		EXPECT_EQ(2, r.rc);
		EXPECT_NE(NULL, strstr(r.out, "FAIL  llmdev0 links")) TH_LOG("%s", r.out);
		run_free(&r);
		run(&r, "link", "set", "0", port, "up");
		ASSERT_RUN_OK(&r);
		run_free(&r);
		for (i = 0; i < 100 && port_between(0, 1) < 0; i++)
			usleep(50000);
	}
	EXPECT_LLMCTL(1, "doctor: --level is 1 or 2, not '3'", "doctor", "--level", "3");
}

/*
 * A strict reading of the OpenMetrics 1.0 text format as llmctl writes it:
 * families introduced by TYPE (then UNIT, then HELP), never repeated, the
 * unit a suffix of the name, samples named after their family (_total for
 * counters), labels name="value", values numbers, "# EOF" last.
 */
static bool om_check(const char *text, int ncards, char *err, size_t len)
{
	char family[128] = "", type[16] = "", names[64][128];
	int nfam = 0, samples = 0, f;
	const char *line = text, *end;

	if (!*text || strlen(text) < 6 || strcmp(text + strlen(text) - 6, "# EOF\n")) {
		snprintf(err, len, "does not end with '# EOF\\n'");
		return false;
	}
	for (; *line; line = end + 1) {
		char l[512], name[128], rest[400];
		size_t n;

		end = strchr(line, '\n');
		if (!end) {
			snprintf(err, len, "a line without its newline");
			return false;
		}
		n = end - line;
		if (n >= sizeof(l)) {
			snprintf(err, len, "a line of %zu bytes", n);
			return false;
		}
		memcpy(l, line, n);
		l[n] = 0;
		if (!strcmp(l, "# EOF")) {
			if (end[1]) {
				snprintf(err, len, "text after # EOF");
				return false;
			}
			break;
		}
		if (!strncmp(l, "# TYPE ", 7)) {
			if (sscanf(l + 7, "%127s %15s", family, type) != 2 ||
			    (strcmp(type, "counter") && strcmp(type, "gauge"))) {
				snprintf(err, len, "bad TYPE line: %.100s", l);
				return false;
			}
			for (f = 0; f < nfam; f++)
				if (!strcmp(names[f], family)) {
					snprintf(err, len, "family %s twice", family);
					return false;
				}
			if (nfam < 64)
				snprintf(names[nfam++], sizeof(names[0]), "%s", family);
			samples = 0;
			continue;
		}
		if (!strncmp(l, "# UNIT ", 7)) {
			char unit[64];

			if (sscanf(l + 7, "%127s %63s", name, unit) != 2 || strcmp(name, family) ||
			    strlen(family) <= strlen(unit) ||
			    strcmp(family + strlen(family) - strlen(unit), unit) ||
			    family[strlen(family) - strlen(unit) - 1] != '_') {
				snprintf(err, len, "bad UNIT line: %.100s", l);
				return false;
			}
			continue;
		}
		if (!strncmp(l, "# HELP ", 7)) {
			if (sscanf(l + 7, "%127s", name) != 1 || strcmp(name, family) || samples) {
				snprintf(err, len, "HELP out of place: %.100s", l);
				return false;
			}
			continue;
		}
		if (l[0] == '#') {
			snprintf(err, len, "unknown comment: %.100s", l);
			return false;
		}
		/* a sample: name{labels} value */
		{
			char want[140], *brace, *sp, *v;
			double d;

			if (sscanf(l, "%127[a-zA-Z0-9_:]%399[^\n]", name, rest) != 2 || !family[0]) {
				snprintf(err, len, "bad sample: %.100s", l);
				return false;
			}
			snprintf(want, sizeof(want), "%s%s", family,
				 strcmp(type, "counter") ? "" : "_total");
			if (strcmp(name, want)) {
				snprintf(err, len, "sample %s in family %s (%s)", name, family, type);
				return false;
			}
			brace = rest;
			if (*brace != '{' || !(sp = strstr(brace, "} ")) ||
			    !strstr(brace, "card=\"llmdev")) {
				snprintf(err, len, "bad labels: %.100s", l);
				return false;
			}
			v = sp + 2;
			d = strtod(v, &sp);
			if (sp == v || *sp || d < 0) {
				snprintf(err, len, "bad value: %.100s", l);
				return false;
			}
			samples++;
		}
	}
	if (nfam < 20) {
		snprintf(err, len, "only %d families", nfam);
		return false;
	}
	(void)ncards;
	return true;
}

TEST_F(drv, stats_openmetrics)
{
	char err[256], want[64];
	struct run r;
	const char *s;
	int n;

	if (_metadata->skip)
		return;
	run(&r, "stats", "--format", "openmetrics");
	ASSERT_RUN_OK(&r);
	EXPECT_TRUE(om_check(r.out, self->ncards, err, sizeof(err))) TH_LOG("%s", err);
	snprintf(want, sizeof(want), "llmdev_card{card=\"llmdev%d\"", self->ncards - 1);
	EXPECT_NE(NULL, strstr(r.out, want));
	EXPECT_NE(NULL, strstr(r.out, "llmdev_dma_h2c_bytes_total{card=\"llmdev0\""));
	EXPECT_NE(NULL, strstr(r.out, "llmdev_temperature_celsius{card=\"llmdev0\""));
	/* for scripts/openmetrics-check.py, which reads the test log */
	printf("==== llmctl openmetrics begin ====\n%s==== llmctl openmetrics end ====\n", r.out);
	fflush(stdout);
	run_free(&r);
	run(&r, "stats", "0", "--format", "openmetrics", "--watch", "0.2", "--count", "2");
	ASSERT_RUN_OK(&r);
	for (n = 0, s = r.out; (s = strstr(s, "# EOF\n")); s++)
		n++;
	EXPECT_EQ(2, n);
	EXPECT_EQ(NULL, strstr(r.out, "card=\"llmdev1\"")) TH_LOG("stats 0 shows card 1");
	run_free(&r);
	EXPECT_LLMCTL(1, "--format openmetrics and --json exclude each other",
		"-j", "stats", "--format", "openmetrics");
	EXPECT_LLMCTL(1, "--format is text or openmetrics, not 'xml'", "stats", "--format", "xml");
}

static bool cdi_name_ok(const char *s)
{
	if (!s || !*s || !isalnum((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.:-", *s))
			return false;
	return true;
}

/* The card whose sysfs serial is @serial, or -1. */
static int cdi_card_of_serial(unsigned int ncards, const char *serial)
{
	char path[64], buf[32];
	unsigned int c;

	for (c = 0; c < ncards; c++) {
		snprintf(path, sizeof(path), "/sys/class/llmdev/llmdev%u/serial", c);
		if (!read_sysfs_str(path, buf, sizeof(buf)) && !strcmp(buf, serial))
			return c;
	}
	return -1;
}

/*
 * Card 0's serial device, from the spec on stdout: its one device node
 * (a new reference, or NULL). @spec gets the spec, to put.
 */
static struct json_object *cdi_serial_node(struct __test_metadata *_metadata,
					   const char *serial,
					   struct json_object **spec)
{
	struct json_object *d;
	char err[128];
	struct run r;
	int i;

	*spec = NULL;
	run(&r, "cdi", "generate", "--no-library");
	EXPECT_EQ(0, r.rc) TH_LOG("%s", r.err);
	*spec = jparse(r.out, err, sizeof(err));
	run_free(&r);
	if (!*spec)
		return NULL;
	for (i = 0; (d = jat(*spec, "devices", i)); i++)
		if (!strcmp(jstr(d, "name"), serial))
			return jat(d, "containerEdits/deviceNodes", 0);
	return NULL;
}

/*
 * Card 0's by-serial link (the VM's init makes them, as udev does) taken
 * away, then leading to another card: neither is taken, the device node
 * is /dev/llmdev0 as it is now. The link is put back.
 */
static void cdi_by_serial_link(struct __test_metadata *_metadata, int ncards)
{
	char serial[32], link[80], saved[96], target[64];
	struct json_object *spec, *node;
	ssize_t n;
	int i;

	ASSERT_EQ(0, read_sysfs_str("/sys/class/llmdev/llmdev0/serial", serial,
				    sizeof(serial)));
	snprintf(link, sizeof(link), "/dev/llmdev/by-serial/%s", serial);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0) {
		TH_LOG("%s: %s: link cases not tested", link, strerror(errno));
		return;
	}
	target[n] = 0;
	snprintf(saved, sizeof(saved), "%s.saved", link);
	ASSERT_EQ(0, rename(link, saved));
	for (i = 0; i < 2; i++) {
		if (i && (ncards < 2 || symlink("../../llmdev1", link)))
			break;
		node = cdi_serial_node(_metadata, serial, &spec);
		EXPECT_NE(NULL, node) TH_LOG("case %d: no device %s", i, serial);
		if (node) {
			EXPECT_STREQ("/dev/llmdev0", jstr(node, "path"));
			EXPECT_EQ(NULL, jstr(node, "hostPath"));
			EXPECT_NE(NULL, jget(node, "major"));
			EXPECT_NE(NULL, jget(node, "minor"));
		}
		json_object_put(spec);
	}
	unlink(link);
	EXPECT_EQ(0, rename(saved, link));
}

/* the CDI spec's required fields (SPEC.md of container-device-interface) */
TEST_F(drv, cdi_generate)
{
	struct json_object *j, *d, *node, *m;
	char *file;
	struct run r;
	struct stat st;
	char path[32], err[128], link[64];
	unsigned int a, b, c;
	size_t flen = 0;
	int i, k, found, card;
	mode_t mask;

	if (_metadata->skip)
		return;
	mkdir("/tmp/cdi-lib", 0755);
	ASSERT_EQ(0, write_file("/tmp/cdi-lib/libllmdev.so.1", "x", 1));
	run(&r, "cdi", "generate", "--library", "/tmp/cdi-lib/libllmdev.so.1");
	ASSERT_RUN_OK(&r);
	j = jparse(r.out, err, sizeof(err));
	ASSERT_NE(NULL, j) TH_LOG("not JSON (%s): %s", err, r.out);
	ASSERT_NE(NULL, jstr(j, "cdiVersion"));
	EXPECT_EQ(3, sscanf(jstr(j, "cdiVersion"), "%u.%u.%u", &a, &b, &c));
	ASSERT_NE(NULL, jstr(j, "kind"));
	EXPECT_NE(NULL, strchr(jstr(j, "kind"), '/'));
	EXPECT_STREQ("llmdev.org/card", jstr(j, "kind"));
	/* by index, by serial, and all */
	ASSERT_EQ(2 * self->ncards + 1, jlen(j, "devices"));
	for (i = 0; (d = jat(j, "devices", i)); i++) {
		const char *name = jstr(d, "name");

		ASSERT_TRUE(cdi_name_ok(name)) TH_LOG("device name %s", name);
		ASSERT_NE(NULL, jget(d, "containerEdits"));
		k = jlen(d, "containerEdits/deviceNodes");
		if (!strcmp(name, "all")) {
			EXPECT_EQ(self->ncards, k);
			continue;
		}
		ASSERT_EQ(1, k);
		node = jat(d, "containerEdits/deviceNodes", 0);
		if (!strncmp(name, "0x", 2)) {
			/* the card of that serial, through its by-serial link */
			EXPECT_EQ(18, strlen(name));
			card = cdi_card_of_serial(self->ncards, name);
			ASSERT_LE(0, card) TH_LOG("no card has serial %s", name);
			snprintf(path, sizeof(path), "/dev/llmdev%d", card);
			EXPECT_STREQ(path, jstr(node, "path"));
			snprintf(link, sizeof(link), "/dev/llmdev/by-serial/%s", name);
			if (access(link, F_OK)) {
				TH_LOG("%s: missing (no udev?)", link);
			} else {
				EXPECT_STREQ(link, jstr(node, "hostPath"));
				EXPECT_EQ(NULL, jget(node, "major"));
				EXPECT_EQ(NULL, jget(node, "minor"));
				EXPECT_STREQ("c", jstr(node, "type"));
				continue;
			}
		} else {
			snprintf(path, sizeof(path), "/dev/llmdev%s", name);
		}
		EXPECT_STREQ(path, jstr(node, "path"));
		ASSERT_EQ(0, stat(path, &st));
		EXPECT_EQ(major(st.st_rdev), juint(node, "major", 0));
		EXPECT_EQ(minor(st.st_rdev), juint(node, "minor", 999));
		EXPECT_STREQ("c", jstr(node, "type"));
	}
	ASSERT_EQ(1, jlen(j, "containerEdits/mounts"));
	m = jat(j, "containerEdits/mounts", 0);
	EXPECT_STREQ("/tmp/cdi-lib/libllmdev.so.1", jstr(m, "hostPath"));
	EXPECT_STREQ("/tmp/cdi-lib/libllmdev.so.1", jstr(m, "containerPath"));
	for (found = 0, k = 0; jat(m, "options", k); k++)
		found += !strcmp(json_object_get_string(jat(m, "options", k)), "ro");
	EXPECT_EQ(1, found);
	json_object_put(j);
	/* -o writes the same spec to a file */
	unlink("/tmp/cdi.json");
	run_free(&r);
	run(&r, "cdi", "generate", "--library", "/tmp/cdi-lib/libllmdev.so.1", "-o",
	    "/tmp/cdi.json");
	ASSERT_RUN_OK(&r);
	EXPECT_STREQ("", r.out);
	file = read_file("/tmp/cdi.json", &flen);
	ASSERT_NE(NULL, file);
	file[flen] = 0;
	j = jparse(file, err, sizeof(err));
	EXPECT_NE(NULL, j);
	EXPECT_EQ(2 * self->ncards + 1, jlen(j, "devices"));
	json_object_put(j);
	free(file);
	run_free(&r);
	cdi_by_serial_link(_metadata, self->ncards);
	/*
	 * readable by all whatever the umask; a file planted where a fixed
	 * temporary name would be is not followed, nor written
	 */
	ASSERT_EQ(0, write_file("/tmp/cdi-victim", "keep", 4));
	unlink("/tmp/cdi.json.tmp");
	ASSERT_EQ(0, symlink("/tmp/cdi-victim", "/tmp/cdi.json.tmp"));
	mask = umask(077);
	run(&r, "cdi", "generate", "--no-library", "-o", "/tmp/cdi.json");
	umask(mask);
	ASSERT_RUN_OK(&r);
	ASSERT_EQ(0, lstat("/tmp/cdi.json", &st));
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_EQ(0644, st.st_mode & 07777);
	file = read_file("/tmp/cdi-victim", &flen);
	ASSERT_NE(NULL, file);
	EXPECT_EQ(4, flen);
	free(file);
	unlink("/tmp/cdi.json.tmp");
	unlink("/tmp/cdi-victim");
	run_free(&r);
	/* failures */
	EXPECT_LLMCTL(2, "/nonexistent/libllmdev.so.1: No such file or directory",
		"cdi", "generate", "--library", "/nonexistent/libllmdev.so.1");
	if (access("/usr/local/lib/libllmdev.so.1", F_OK) &&
	    access("/usr/lib/x86_64-linux-gnu/libllmdev.so.1", F_OK)) {
		EXPECT_LLMCTL(2, "libllmdev.so.1 is not installed", "cdi", "generate");
	}
	EXPECT_LLMCTL(1, "usage: llmctl cdi generate", "cdi", "frobnicate");
	EXPECT_LLMCTL(2, "writing /nonexistent/dir/cdi.json",
		"cdi", "generate", "--no-library", "-o", "/nonexistent/dir/cdi.json");
}

/*
 * A file system that refuses O_DIRECT (tmpfs before Linux 6.6, as /tmp
 * is here) is read through the page cache, with the same result; the
 * file is read once, however many cards need each byte.
 */
TEST_F_TIMEOUT(model, load_buffered, 90)
{
	struct json_object *load;
	struct stat st;
	bool direct;
	struct run r;
	int fd;

	if (_metadata->skip)
		return;
	fd = open(MODEL, O_RDONLY | O_DIRECT | O_CLOEXEC);
	direct = fd >= 0;
	if (fd >= 0) {
		close(fd);
	} else {
		ASSERT_EQ(EINVAL, errno);
	}
	ASSERT_EQ(0, stat(MODEL, &st));

	run(&r, "-j", "load", MODEL, LAYOUT(self), "--verify");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(load, &r, "llmdev.load/1");
	EXPECT_EQ(1, jbool(load, "verified"));
	EXPECT_STREQ(direct ? "direct" : "buffered", jstr(load, "read"));
	/* once: at most the file's size, rounded up to the reads' alignment */
	EXPECT_LT(0, juint(load, "read_bytes", 0));
	EXPECT_GE(((uint64_t)st.st_size + 4095) & ~4095ull, juint(load, "read_bytes", 0));
	EXPECT_EQ(1, jbool(load, "staging/registered"));
	EXPECT_LE(4, juint(load, "batches", 0));
	EXPECT_LE(juint(load, "batches", 0), juint(load, "transfers", 0));
	EXPECT_LE(juint(load, "transfers", 0), juint(load, "rows", 0));
	json_object_put(load);
	run_free(&r);

	/* -v says how it read */
	run(&r, "load", MODEL, LAYOUT(self), "--replace", "-v");
	ASSERT_RUN_OK(&r);
	if (direct) {
		EXPECT_NE(NULL, strstr(r.err, MODEL ": O_DIRECT reads")) TH_LOG("%s", r.err);
	} else {
		EXPECT_NE(NULL, strstr(r.err, MODEL ": buffered reads through the page cache "
				       "(slower: every byte is copied): the file system "
				       "refuses O_DIRECT (Invalid argument)")) TH_LOG("%s", r.err);
	}
	EXPECT_NE(NULL, strstr(r.err, "staging: 4 buffers of ")) TH_LOG("%s", r.err);
	EXPECT_NE(NULL, strstr(r.err, ", registered on 4 cards")) TH_LOG("%s", r.err);
	run_free(&r);
}

/*
 * Without CAP_IPC_LOCK the registered staging buffers count against
 * RLIMIT_MEMLOCK: under a small limit they are smaller, under a tiny one
 * not registered at all (each transfer pins its memory); the load is
 * the same.
 */
TEST_F_TIMEOUT(model, load_memlock, 120)
{
	static const struct {
		rlim_t limit;
		bool registered;
	} cases[] = {
		/* 4 cards x (4 buffers + 4 KiB of zeros): 128 KiB buffers fit */
		{ 4 << 20, true },
		/* not even 4 buffers of 64 KiB on one card */
		{ 64 << 10, false },
	};
	struct json_object *load;
	struct rlimit old, rl;
	unsigned int k;
	struct run r;

	if (_metadata->skip)
		return;
	ASSERT_EQ(0, getrlimit(RLIMIT_MEMLOCK, &old));
	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		uint64_t bytes;

		/* the child run as nobody inherits it */
		rl.rlim_cur = cases[k].limit;
		rl.rlim_max = old.rlim_max < cases[k].limit ? cases[k].limit : old.rlim_max;
		ASSERT_EQ(0, setrlimit(RLIMIT_MEMLOCK, &rl));
		run_nobody(&r, "-j", "load", MODEL, LAYOUT(self), "--verify", "--replace");
		ASSERT_EQ(0, setrlimit(RLIMIT_MEMLOCK, &old));
		ASSERT_RUN_OK(&r);
		ASSERT_JSON(load, &r, "llmdev.load/1");
		run_free(&r);
		EXPECT_EQ(1, jbool(load, "verified"));
		EXPECT_EQ(1, jbool(load, "cards/3/loaded"));
		EXPECT_EQ(cases[k].registered, jbool(load, "staging/registered"))
			TH_LOG("RLIMIT_MEMLOCK %llu", (unsigned long long)cases[k].limit);
		bytes = juint(load, "staging/buffer_bytes", 0);
		if (cases[k].registered) {
			EXPECT_LE(64 << 10, bytes);
			EXPECT_GE(cases[k].limit, 4 * (4 * bytes + 4096))
				TH_LOG("%llu-byte buffers", (unsigned long long)bytes);
		} else {
			EXPECT_EQ(8 << 20, bytes);
		}
		json_object_put(load);
	}
}

/* lines in file @path (0 if it cannot be read) */
static int count_lines(const char *path)
{
	FILE *f = fopen(path, "re");
	int c, n = 0;

	if (!f)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/*
 * A driver from before LLMDEV_OP_ROWS: llmdev-norows.so, preloaded into
 * llmctl, fails a batch with a transfer of rows as that driver does
 * (-EINVAL, error_index naming it, nothing queued). llmctl sees the first
 * refusal and sends every row as a transfer of its own from then on; the
 * cards get the same bytes. Without it, the column slices' rows go as
 * transfers of rows.
 */
TEST_F_TIMEOUT(model, load_without_rows, 120)
{
	char so[PATH_MAX], log[] = "/tmp/llmctl-norows.XXXXXX", *slash;
	struct json_object *load;
	struct run r;
	ssize_t n;
	int fd;

	if (_metadata->skip)
		return;
	n = readlink("/proc/self/exe", so, sizeof(so) - sizeof("llmdev-norows.so"));
	ASSERT_LT(0, n);
	so[n] = 0;
	slash = strrchr(so, '/');
	ASSERT_NE(NULL, slash);
	strcpy(slash + 1, "llmdev-norows.so");
	ASSERT_EQ(0, access(so, R_OK)) TH_LOG("%s: %s", so, strerror(errno));
	fd = mkstemp(log);
	ASSERT_LE(0, fd);
	close(fd);

	setenv("LD_PRELOAD", so, 1);
	setenv("LLMDEV_NOROWS_LOG", log, 1);
	run(&r, "-j", "load", MODEL, LAYOUT(self), "--verify", "--replace");
	unsetenv("LD_PRELOAD");
	unsetenv("LLMDEV_NOROWS_LOG");
	EXPECT_EQ(1, count_lines(log)) TH_LOG("batches refused (%s)", r.err);
	unlink(log);
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(load, &r, "llmdev.load/1");
	run_free(&r);
	EXPECT_EQ(1, jbool(load, "verified"));
	EXPECT_EQ(1, jbool(load, "cards/3/loaded"));
	EXPECT_EQ(1, jbool(load, "staging/registered"));
	/* row by row: a transfer each */
	EXPECT_LT(0, juint(load, "rows", 0));
	EXPECT_EQ(juint(load, "rows", 0), juint(load, "transfers", 0));
	json_object_put(load);

	run(&r, "-j", "load", MODEL, LAYOUT(self), "--verify", "--replace");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(load, &r, "llmdev.load/1");
	run_free(&r);
	EXPECT_EQ(1, jbool(load, "verified"));
	EXPECT_LT(juint(load, "transfers", 0), juint(load, "rows", 0));
	json_object_put(load);
}

/* Attach @path read-only to a free loop device (its name in @dev): its fd or -errno. */
static int loop_attach(const char *path, char *dev, size_t len)
{
	int ctl, n, fd, lfd, ret = 0;

	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -errno;
	n = ioctl(ctl, LOOP_CTL_GET_FREE);
	if (n < 0)
		ret = -errno;
	close(ctl);
	if (ret)
		return ret;
	snprintf(dev, len, "/dev/loop%d", n);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	lfd = open(dev, O_RDONLY | O_CLOEXEC);
	if (lfd < 0) {
		ret = -errno;
	} else if (ioctl(lfd, LOOP_SET_FD, fd)) {
		ret = -errno;
		close(lfd);
	}
	close(fd);
	return ret ? ret : lfd;
}

/*
 * A block device takes O_DIRECT: the model through a loop device loads
 * with O_DIRECT reads, into the same bytes as the buffered load of the
 * file.
 */
TEST_F_TIMEOUT(model, load_direct, 120)
{
	static const char *const img = "/tmp/" TAG "-dio.img";
	struct json_object *a, *b;
	size_t len = 0, padded;
	char *data = read_file(MODEL, &len);
	unsigned int i;
	struct run r;
	int fd;

	if (_metadata->skip)
		return;
	/* a loop device has whole 512-byte sectors: pad the file */
	ASSERT_NE(NULL, data);
	padded = (len + 4095) & ~(size_t)4095;
	data = realloc(data, padded);
	ASSERT_NE(NULL, data);
	memset(data + len, 0, padded - len);
	ASSERT_EQ(0, write_file(img, data, padded));
	free(data);
	fd = loop_attach(img, self->loop, sizeof(self->loop));
	if (fd < 0) {
		self->loop[0] = 0;
		unlink(img);
		SKIP(return, "no loop device (%s): the guest needs loop.ko", strerror(-fd));
	}
	self->loop_fd = fd;

	run(&r, "-j", "load", MODEL, LAYOUT(self));
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(a, &r, "llmdev.load/1");
	run_free(&r);
	run(&r, "-j", "load", self->loop, LAYOUT(self), "--verify");
	ASSERT_RUN_OK(&r);
	ASSERT_JSON(b, &r, "llmdev.load/1");
	run_free(&r);
	EXPECT_STREQ("direct", jstr(b, "read"));
	EXPECT_LT(0, juint(b, "read_bytes", 0));
	EXPECT_GE(padded, juint(b, "read_bytes", 0));
	EXPECT_EQ(1, jbool(b, "verified"));
	EXPECT_EQ(1, jbool(b, "staging/registered"));
	EXPECT_EQ(juint(a, "bytes", 0), juint(b, "bytes", 1));
	for (i = 0; i < 4; i++) {
		struct json_object *x = jat(a, "cards", i), *y = jat(b, "cards", i);

		ASSERT_NE(NULL, x);
		ASSERT_NE(NULL, y);
		EXPECT_EQ(juint(x, "card", 99), juint(y, "card", 98));
		EXPECT_STREQ(jstr(x, "checksum"), jstr(y, "checksum"))
			TH_LOG("llmdev%llu", (unsigned long long)juint(x, "card", 99));
	}
	json_object_put(a);
	json_object_put(b);

	run(&r, "load", self->loop, LAYOUT(self), "--replace", "-v");
	ASSERT_RUN_OK(&r);
	EXPECT_NE(NULL, strstr(r.err, ": O_DIRECT reads, 4096-byte aligned")) TH_LOG("%s", r.err);
	run_free(&r);
	run(&r, "unload", self->loop);
	ASSERT_RUN_OK(&r);
	run_free(&r);
	EXPECT_EQ(0, ioctl(fd, LOOP_CLR_FD, 0));
	close(fd);
	self->loop[0] = 0;
	unlink(img);
}

/* ---- llmdev-bench ----------------------------------------------------------- */

#define BENCH_TIMEOUT	240	/* seconds a --smoke run may take */
#define BENCH_JSON	"/tmp/llmctl-test-bench.json"

/* llmdev-bench @argv (-o BENCH_JSON added); its document, or NULL */
static struct json_object *bench_run(struct __test_metadata *_metadata, struct run *r,
				     const char *const *argv)
{
	const char *av[32];
	struct json_object *j;
	char err[256], *text;
	size_t n = 0, len;

	while (argv[n] && n < 28) {
		av[n] = argv[n];
		n++;
	}
	av[n++] = "-o";
	av[n++] = BENCH_JSON;
	av[n] = NULL;
	unlink(BENCH_JSON);
	if (run_start(r, 0, av)) {
		TH_LOG("cannot start llmdev-bench");
		return NULL;
	}
	run_finish(r, BENCH_TIMEOUT);
	text = read_file(BENCH_JSON, &len);
	if (!text) {
		TH_LOG("'%s' (exit %d) wrote no %s: %s", r->cmd, r->rc, BENCH_JSON, r->err);
		return NULL;
	}
	j = jparse(text, err, sizeof(err));
	if (!j)
		TH_LOG("'%s': %s is not JSON (%s)", r->cmd, BENCH_JSON, err);
	free(text);
	if (j && (!jstr(j, "schema") || strcmp(jstr(j, "schema"), "llmdev.bench/1"))) {
		TH_LOG("'%s': schema %s", r->cmd, jstr(j, "schema") ?: "(none)");
		json_object_put(j);
		j = NULL;
	}
	return j;
}

/*
 * A --smoke run: exit 0, status "ok", every figure verified or skipped
 * with a reason, the null ioctl measured, and beside the small DMA
 * figures too.
 */
TEST_F_TIMEOUT(drv, bench_smoke, BENCH_TIMEOUT + 30)
{
	const char *const argv[] = { "llmdev-bench", "--smoke", NULL };
	unsigned int ok = 0, beside = 0, ar_ok = 0;
	struct json_object *j, *e;
	struct run r;
	int i, n;

	j = bench_run(_metadata, &r, argv);
	ASSERT_NE(NULL, j) TH_LOG("%s", r.err);
	EXPECT_EQ(0, r.rc) TH_LOG("%s\n%s", r.out, r.err);
	EXPECT_STREQ("ok", jstr(j, "status") ?: "(none)");
	EXPECT_EQ(0, juint(j, "verification_failures", 1));
	EXPECT_LT(0, juint(j, "null_ioctl/median_ns", 0));
	n = jlen(j, "dma");
	EXPECT_LT(0, n);
	for (i = 0; i < n; i++) {
		const char *st;

		e = jat(j, "dma", i);
		st = jstr(e, "status") ?: "(none)";
		if (!strcmp(st, "skip")) {
			EXPECT_NE(NULL, jstr(e, "reason")) TH_LOG("dma[%d] skipped without a reason", i);
			continue;
		}
		EXPECT_STREQ("ok", st) TH_LOG("dma[%d]", i);
		EXPECT_EQ(1, jbool(e, "verified")) TH_LOG("dma[%d]", i);
		EXPECT_LT(0, juint(e, "median_ns", 0)) TH_LOG("dma[%d]", i);
		if (juint(e, "size", 0) * juint(e, "inflight", 0) <= 65536) {
			EXPECT_LT(0, juint(e, "null_ioctl_ns", 0))
				TH_LOG("dma[%d]: no null ioctl beside it", i);
			beside++;
		}
		ok++;
	}
	EXPECT_LT(0, ok) TH_LOG("no DMA figure measured");
	EXPECT_LT(0, beside);
	n = jlen(j, "allreduce");
	for (i = 0; i < n; i++) {
		e = jat(j, "allreduce", i);
		if (!strcmp(jstr(e, "status") ?: "", "skip"))
			continue;
		EXPECT_STREQ("ok", jstr(e, "status") ?: "(none)") TH_LOG("allreduce[%d]", i);
		EXPECT_EQ(1, jbool(e, "verified")) TH_LOG("allreduce[%d]", i);
		ar_ok++;
	}
	if (self->ncards >= 2)
		EXPECT_LT(0, ar_ok) TH_LOG("%d cards and no AllReduce measured", self->ncards);
	json_object_put(j);
	run_free(&r);
}

/*
 * Each --inject fault breaks the data on its way: the run must see it
 * (exit 2, status "failed", a verification failure counted).
 */
TEST_F_TIMEOUT(drv, bench_inject, 4 * BENCH_TIMEOUT)
{
	static const char *const dma_faults[] = { "stale", "short", "hbm" };
	struct json_object *j;
	unsigned int f;
	struct run r;

	for (f = 0; f < 4; f++) {
		const char *fault = f < 3 ? dma_faults[f] : "allreduce";
		const char *const dma_argv[] = {
			"llmdev-bench", "--smoke", "--only", "dma", "-s", "4K", "-k", "1",
			"--inject", fault, NULL };
		const char *const ar_argv[] = {
			"llmdev-bench", "--smoke", "--only", "allreduce", "-r", "2",
			"--inject", fault, NULL };

		if (f == 3 && self->ncards < 2) {
			TH_LOG("--inject allreduce: not tried, needs 2 cards");
			break;
		}
		j = bench_run(_metadata, &r, f < 3 ? dma_argv : ar_argv);
		EXPECT_NE(NULL, j) TH_LOG("--inject %s: %s", fault, r.err);
		EXPECT_EQ(2, r.rc) TH_LOG("--inject %s: %s\n%s", fault, r.out, r.err);
		if (j) {
			EXPECT_STREQ("failed", jstr(j, "status") ?: "(none)")
				TH_LOG("--inject %s", fault);
			EXPECT_LE(1, juint(j, "verification_failures", 0))
				TH_LOG("--inject %s: not seen", fault);
			json_object_put(j);
		}
		run_free(&r);
	}
}

TEST_HARNESS_MAIN
