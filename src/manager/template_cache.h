/* SPDX-License-Identifier: Apache-2.0 */
/* A directory of warm templates, capped (template_cache.c). */
#ifndef CLOISON_MANAGER_TEMPLATE_CACHE_H
#define CLOISON_MANAGER_TEMPLATE_CACHE_H

#include "common/error.h"

#include <jansson.h>
#include <stdint.h>

#define TEMPLATE_CACHE_CAP (2ull << 30)

/* [{name, size (bytes on disk), used (epoch s: the directory's mtime,
   touched by every clone)}] of the cache `dir`. */
json_t *cl_mgr_template_cache_list (const char *dir);
/* One template and its lock and failure log. */
int cl_mgr_template_cache_remove (const char *dir, const char *name, cl_error_t *err);
/* DIR/cap, else TEMPLATE_CACHE_CAP. */
int cl_mgr_template_cache_cap (const char *dir, uint64_t *cap, cl_error_t *err);
/* Removes the least recently used templates (never the path `keep`)
   until the cache fits its cap. */
int cl_mgr_template_cache_prune (const char *dir, const char *keep, cl_error_t *err);
/* The files a template depends on, as a key's first part (caller frees):
   "KERNEL:SIZE:MTIME|INITRD:SIZE:MTIME|VMM:SIZE:MTIME", the VMM being
   this program (the VMM runs in a fork of it): a new build of it, whose
   machine state or devices may differ, makes new templates. */
char *cl_mgr_template_key_files (const char *kernel, const char *initrd, cl_error_t *err);

#endif
