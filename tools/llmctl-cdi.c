// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl cdi generate: a Container Device Interface spec (CDI 0.5.0,
 * github.com/cncf-tags/container-device-interface, SPEC.md) for the cards,
 * so that a CDI-aware runtime (podman --device, containerd, CRI-O) gives a
 * container a card by name:
 *
 *	llmctl cdi generate -o /etc/cdi/llmdev.json
 *	podman run --device llmdev.org/card=0 ...      (or =all)
 *
 * Two devices per card, one named by its index and one by its serial (as
 * sysfs and udev's /dev/llmdev/by-serial/ spell it: 0x and 16 hex
 * digits), plus "all". Each device's edits add its device node: path,
 * type, major, minor and permissions as they are now; but the serial's
 * device, where udev made the by-serial link, names that link as its
 * hostPath (CDI 0.5.0) without a major and minor, so that the runtime
 * finds the card when it starts the container, wherever the next boot
 * numbered it. The spec's common edits bind-mount libllmdev, read-only,
 * at the same path. The JSON is the CDI spec's own format, not one of
 * llmctl's schemas.
 */
#define _GNU_SOURCE	/* mkostemp(), dladdr() */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <json-c/json.h>

#include "llmctl.h"

#define CDI_VERSION	"0.5.0"
#define CDI_KIND	"llmdev.org/card"

/* where to look when llmctl has libllmdev linked in statically */
static const char *const lib_dirs[] = {
	"/usr/local/lib", "/usr/local/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64",
	"/usr/lib", "/lib/x86_64-linux-gnu",
};

static json_object *device_node(int card, int *err)
{
	char path[64];
	struct stat st;
	json_object *o;

	snprintf(path, sizeof(path), "/dev/llmdev%d", card);
	if (stat(path, &st)) {
		*err = -errno;
		msg("%s: %s", path, strerror(errno));
		return NULL;
	}
	if (!S_ISCHR(st.st_mode)) {
		*err = -ENODEV;
		msg("%s: not a character device", path);
		return NULL;
	}
	o = json_object_new_object();
	json_object_object_add(o, "path", json_object_new_string(path));
	json_object_object_add(o, "type", json_object_new_string("c"));
	json_object_object_add(o, "major", json_object_new_int64(major(st.st_rdev)));
	json_object_object_add(o, "minor", json_object_new_int64(minor(st.st_rdev)));
	json_object_object_add(o, "permissions", json_object_new_string("rw"));
	return o;
}

/*
 * The node of the device named by @serial: the by-serial link as its
 * hostPath when it leads to /dev/llmdev@card, else that node as it is.
 */
static json_object *serial_node(int card, const char *serial, int *err)
{
	char link[96], path[64];
	struct stat ls, st;
	json_object *o;

	snprintf(link, sizeof(link), "/dev/llmdev/by-serial/%s", serial);
	snprintf(path, sizeof(path), "/dev/llmdev%d", card);
	if (stat(link, &ls) || stat(path, &st) || !S_ISCHR(ls.st_mode) ||
	    ls.st_rdev != st.st_rdev)
		return device_node(card, err);
	o = json_object_new_object();
	json_object_object_add(o, "path", json_object_new_string(path));
	json_object_object_add(o, "hostPath", json_object_new_string(link));
	json_object_object_add(o, "type", json_object_new_string("c"));
	json_object_object_add(o, "permissions", json_object_new_string("rw"));
	return o;
}

static json_object *device(const char *name, json_object *nodes)
{
	json_object *d = json_object_new_object(), *edits = json_object_new_object();

	json_object_object_add(d, "name", json_object_new_string(name));
	json_object_object_add(edits, "deviceNodes", nodes);
	json_object_object_add(d, "containerEdits", edits);
	return d;
}

/*
 * The libllmdev.so.1 this llmctl runs with, as the dynamic linker found
 * it (dladdr() of one of its functions), its directory made absolute; or
 * -ENOENT when libllmdev is linked into llmctl (the address is in llmctl).
 */
static int library_in_use(char *out, size_t len)
{
	char dir[PATH_MAX], real[PATH_MAX];
	const char *base;
	Dl_info info;

	if (!dladdr((void *)llmdev_open, &info) || !info.dli_fname)
		return -ENOENT;
	base = strrchr(info.dli_fname, '/');
	base = base ? base + 1 : info.dli_fname;
	if (strncmp(base, "libllmdev.so", strlen("libllmdev.so")))
		return -ENOENT;
	snprintf(dir, sizeof(dir), "%.*s", (int)(base - info.dli_fname), info.dli_fname);
	if (!realpath(dir[0] ? dir : ".", real))
		return -errno;
	if ((size_t)snprintf(out, len, "%s/%s", real, base) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static int find_library(char *out, size_t len)
{
	size_t i;

	if (!library_in_use(out, len))
		return 0;
	for (i = 0; i < sizeof(lib_dirs) / sizeof(lib_dirs[0]); i++) {
		snprintf(out, len, "%s/libllmdev.so.1", lib_dirs[i]);
		if (!access(out, R_OK))
			return 0;
	}
	return -ENOENT;
}

/*
 * @text and a newline into @path, whole or not at all: a new file of our
 * own beside it (mkostemp(): O_EXCL, no symlink followed, no name another
 * user can guess and prepare), readable by all (a container runtime
 * reads it) whatever the umask, synced, then renamed over @path.
 */
static int write_spec(const char *path, const char *text)
{
	char tmp[PATH_MAX];
	size_t len = strlen(text), done = 0;
	ssize_t w;
	int fd, ret = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0644))
		ret = -errno;
	while (!ret && done <= len) {
		/* the text, then its newline */
		w = done < len ? write(fd, text + done, len - done) : write(fd, "\n", 1);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			ret = w < 0 ? -errno : -EIO;
		else
			done += w;
	}
	if (!ret && fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

int cmd_cdi(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "library", required_argument, NULL, 'l' },
		{ "no-library", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ }
	};
	const char *output = NULL, *library = NULL;
	char libpath[PATH_MAX], name[24];
	json_object *spec, *devices, *all, *node, *edits;
	struct llmdev_info info;
	struct llmdev **devs;
	bool nolib = false;
	int c, n, i, ret = 0, err = 0;
	const char *text;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case 'l':
			library = optarg;
			break;
		case 'n':
			nolib = true;
			break;
		case 'h':
			puts("usage: llmctl cdi generate [-o FILE] [--library PATH | --no-library]\n\n"
			     "Write a CDI spec (kind " CDI_KIND ") for every card: devices \"0\",\n"
			     "\"1\", ... (the card's index), \"0x<serial>\" (its serial, as in sysfs)\n"
			     "and \"all\", each adding its /dev/llmdevN, and a read-only bind mount of\n"
			     "libllmdev.so.1 (the one llmctl runs with; if llmctl has it built in,\n"
			     "the first in the usual library directories; or --library).\n"
			     "Indices follow probe order and may change at the next boot: regenerate\n"
			     "the spec then. A serial's device takes the card from udev's\n"
			     "/dev/llmdev/by-serial/ link where there is one, so it stays the same\n"
			     "card. Default output: stdout; -o writes FILE atomically (e.g.\n"
			     "/etc/cdi/llmdev.json). Then: podman run --device " CDI_KIND "=0 ...");
			return 0;
		default:
			return usage_hint();
		}
	}
	if (optind >= argc || strcmp(argv[optind], "generate") || optind + 1 < argc)
		return usage_err("usage: llmctl cdi generate [-o FILE] [--library PATH]");
	if (!nolib) {
		if (library) {
			if (access(library, R_OK)) {
				msg("%s: %s", library, strerror(errno));
				return EXIT_FAIL;
			}
			if (!realpath(library, libpath)) {
				msg("%s: %s", library, strerror(errno));
				return EXIT_FAIL;
			}
		} else if (find_library(libpath, sizeof(libpath))) {
			msg("libllmdev.so.1 is not installed ('make install'); give --library PATH "
			    "or --no-library");
			return EXIT_FAIL;
		}
	}
	n = open_cards(NULL, &devs);
	if (n < 0)
		return EXIT_FAIL;

	spec = json_object_new_object();
	json_object_object_add(spec, "cdiVersion", json_object_new_string(CDI_VERSION));
	json_object_object_add(spec, "kind", json_object_new_string(CDI_KIND));
	devices = json_object_new_array();
	all = json_object_new_array();
	for (i = 0; i < n && !err; i++) {
		int card = card_index(devs[i]);
		json_object *nodes = json_object_new_array();

		node = device_node(card, &err);
		if (!node) {
			json_object_put(nodes);
			break;
		}
		json_object_array_add(all, json_object_get(node));
		json_object_array_add(nodes, node);
		snprintf(name, sizeof(name), "%d", card);
		json_object_array_add(devices, device(name, nodes));

		err = llmdev_get_info(devs[i], &info);
		if (err) {
			msg("%s: %s", llmdev_name(devs[i]), llmdev_strerror(err));
			break;
		}
		snprintf(name, sizeof(name), "0x%016" PRIx64, (uint64_t)info.serial);
		node = serial_node(card, name, &err);
		if (!node)
			break;
		nodes = json_object_new_array();
		json_object_array_add(nodes, node);
		json_object_array_add(devices, device(name, nodes));
	}
	close_cards(devs, n);
	json_object_array_add(devices, device("all", all));
	json_object_object_add(spec, "devices", devices);
	if (!nolib) {
		json_object *mounts = json_object_new_array(), *m = json_object_new_object();
		json_object *o = json_object_new_array();

		edits = json_object_new_object();
		json_object_object_add(m, "hostPath", json_object_new_string(libpath));
		json_object_object_add(m, "containerPath", json_object_new_string(libpath));
		json_object_array_add(o, json_object_new_string("ro"));
		json_object_array_add(o, json_object_new_string("nosuid"));
		json_object_array_add(o, json_object_new_string("nodev"));
		json_object_array_add(o, json_object_new_string("bind"));
		json_object_object_add(m, "options", o);
		json_object_array_add(mounts, m);
		json_object_object_add(edits, "mounts", mounts);
		json_object_object_add(spec, "containerEdits", edits);
	}
	if (err) {
		json_object_put(spec);
		return EXIT_FAIL;
	}
	text = json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PRETTY |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text) {
		msg("out of memory");
		json_object_put(spec);
		return EXIT_FAIL;
	}
	if (output) {
		err = write_spec(output, text);
		if (err) {
			msg("writing %s: %s", output, strerror(-err));
			ret = EXIT_FAIL;
		}
	} else if (printf("%s\n", text) < 0 || fflush(stdout)) {
		msg("writing the spec: %s", strerror(errno));
		ret = EXIT_FAIL;
	}
	json_object_put(spec);
	return ret;
}
