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

/*
 * dlopen() @lib and fill @n pointers of @table from @names; on failure say
 * why (once: @failed remembers) and return false.
 */
static bool dl_table(const char *lib, void **table, const char *const *names,
		     size_t n, bool *failed)
{
	void *h;
	size_t i;

	if (*failed)
		return false;
	h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		msg("%s", dlerror());
		*failed = true;
		return false;
	}
	for (i = 0; i < n; i++) {
		table[i] = dlsym(h, names[i]);
		if (!table[i]) {
			msg("%s: %s", lib, dlerror());
			dlclose(h);
			*failed = true;
			return false;
		}
	}
	/* kept open: the table points into it until exit */
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

_Static_assert(sizeof(struct llmctl_kmod) ==
	       sizeof(kmod_names) / sizeof(kmod_names[0]) * sizeof(void *),
	       "kmod_names: one name per member of struct llmctl_kmod");
_Static_assert(sizeof(struct llmctl_pci) ==
	       sizeof(pci_names) / sizeof(pci_names[0]) * sizeof(void *),
	       "pci_names: one name per member of struct llmctl_pci");

#define N_KMOD	(sizeof(kmod_names) / sizeof(kmod_names[0]))
#define N_PCI	(sizeof(pci_names) / sizeof(pci_names[0]))

const struct llmctl_kmod *llmctl_kmod(void)
{
	static struct llmctl_kmod k;
	static bool done, failed;
	void *ptr[N_KMOD];

	if (!done && dl_table(LLMCTL_LIBKMOD, ptr, kmod_names, N_KMOD, &failed)) {
		/* the pointers dlsym() gives are the functions' (POSIX) */
		memcpy(&k, ptr, sizeof(k));
		done = true;
	}
	return done ? &k : NULL;
}

const struct llmctl_pci *llmctl_pci(void)
{
	static struct llmctl_pci p;
	static bool done, failed;
	void *ptr[N_PCI];

	if (!done && dl_table(LLMCTL_LIBPCI, ptr, pci_names, N_PCI, &failed)) {
		memcpy(&p, ptr, sizeof(p));
		done = true;
	}
	return done ? &p : NULL;
}
