// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl-dl.c - libkmod and libpci, opened on first use (see llmctl-dl.h).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "llmctl.h"
#include "llmctl-dl.h"

#define DL_MAX	16	/* calls a table holds at most */

/*
 * Once: dlopen() @lib and copy the @n functions @names into @table (@size
 * bytes: a struct of @n function pointers; the pointers dlsym() gives are
 * the functions', as POSIX has it). On failure say why, once, and return
 * false, then and every time after.
 */
static bool dl_table(const char *lib, const char *const *names, size_t n,
		     void *table, size_t size, bool *done, bool *failed)
{
	void *h, *ptr[DL_MAX];
	size_t i;

	if (*done || *failed)
		return *done;
	h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		msg("%s", dlerror());
		*failed = true;
		return false;
	}
	for (i = 0; i < n; i++) {
		ptr[i] = dlsym(h, names[i]);
		if (!ptr[i]) {
			msg("%s: %s", lib, dlerror());
			dlclose(h);
			*failed = true;
			return false;
		}
	}
	/* kept open: the table points into it until exit */
	memcpy(table, ptr, size);
	*done = true;
	return true;
}

/* the names of the functions in the order of the struct's members */
static const char *const kmod_names[] = {
	"kmod_new", "kmod_unref", "kmod_set_log_fn",
	"kmod_module_new_from_name", "kmod_module_new_from_path",
	"kmod_module_unref", "kmod_module_get_initstate",
	"kmod_module_initstate_str", "kmod_module_get_refcnt",
	"kmod_module_insert_module", "kmod_module_probe_insert_module",
	"kmod_module_remove_module",
};

static const char *const pci_names[] = {
	"pci_alloc", "pci_init", "pci_scan_bus", "pci_fill_info", "pci_cleanup",
};

#define N_NAMES(names)	(sizeof(names) / sizeof((names)[0]))

_Static_assert(sizeof(struct llmctl_kmod) == N_NAMES(kmod_names) * sizeof(void *) &&
	       N_NAMES(kmod_names) <= DL_MAX,
	       "kmod_names: one name per member of struct llmctl_kmod");
_Static_assert(sizeof(struct llmctl_pci) == N_NAMES(pci_names) * sizeof(void *) &&
	       N_NAMES(pci_names) <= DL_MAX,
	       "pci_names: one name per member of struct llmctl_pci");

#define DL_TABLE(lib, names, table, done, failed) \
	dl_table(lib, names, N_NAMES(names), &(table), sizeof(table), &(done), &(failed))

const struct llmctl_kmod *llmctl_kmod(void)
{
	static struct llmctl_kmod k;
	static bool done, failed;

	return DL_TABLE(LLMCTL_LIBKMOD, kmod_names, k, done, failed) ? &k : NULL;
}

const struct llmctl_pci *llmctl_pci(void)
{
	static struct llmctl_pci p;
	static bool done, failed;

	return DL_TABLE(LLMCTL_LIBPCI, pci_names, p, done, failed) ? &p : NULL;
}
