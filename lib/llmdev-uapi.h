/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR MIT) */
/*
 * In-tree stand-in for the installed <llmdev-uapi.h>: `make install` copies
 * uapi/llmdev.h itself under that name, this file only forwards to it.
 */
#include "../uapi/llmdev.h"
