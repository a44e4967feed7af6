/* SPDX-License-Identifier: GPL-2.0 */
/*
 * llmctl-dl.h - libkmod and libpci, opened when a command first needs them.
 *
 * Most commands need neither (load, shard, stats, link, kv ...), and
 * libkmod brings libcrypto, libzstd and liblzma with it: linked, the
 * dynamic loader maps and relocates all of them at every start, which
 * under emulation costs more than a small command's work. The calls go
 * through these tables; a library that cannot be opened is reported once,
 * with the loader's message, and the table is NULL.
 */
#ifndef LLMCTL_DL_H
#define LLMCTL_DL_H

#include <libkmod.h>
#include <pci/pci.h>

#define LLMCTL_LIBKMOD	"libkmod.so.2"
#define LLMCTL_LIBPCI	"libpci.so.3"

struct llmctl_kmod {
	typeof(&kmod_new) new;
	typeof(&kmod_unref) unref;
	typeof(&kmod_set_log_fn) set_log_fn;
	typeof(&kmod_module_new_from_name) module_new_from_name;
	typeof(&kmod_module_new_from_path) module_new_from_path;
	typeof(&kmod_module_unref) module_unref;
	typeof(&kmod_module_get_initstate) module_get_initstate;
	typeof(&kmod_module_initstate_str) module_initstate_str;
	typeof(&kmod_module_get_refcnt) module_get_refcnt;
	typeof(&kmod_module_insert_module) module_insert_module;
	typeof(&kmod_module_probe_insert_module) module_probe_insert_module;
	typeof(&kmod_module_remove_module) module_remove_module;
};

struct llmctl_pci {
	typeof(&pci_alloc) alloc;
	typeof(&pci_init) init;
	typeof(&pci_scan_bus) scan_bus;
	typeof(&pci_fill_info) fill_info;
	typeof(&pci_cleanup) cleanup;
};

/* The library's calls, or NULL (the reason printed, the first time). */
const struct llmctl_kmod *llmctl_kmod(void);
const struct llmctl_pci *llmctl_pci(void);

#endif
