/* SPDX-License-Identifier: Apache-2.0 */
/* The container's root, built by its init before pivot_root: mounts
   (targets opened inside the root, never through the image's links),
   devices, the console, masked and read-only paths, sysctls, then
   pivot_root. */
#ifndef CLOISON_CONTAINER_ROOTFS_H
#define CLOISON_CONTAINER_ROOTFS_H

#include "common/error.h"
#include "container/init_ctx.h"

#include <jansson.h>
#include <stdbool.h>

/* CVE-2025-31133: the host's /dev/null, opened and checked (1:3) before
   the container can touch anything; masked files are bound from it. */
int cl_ctr_rootfs_open_host_devnull (struct init_ctx *c, cl_error_t *err);
/* Everything from the root's bind mount to pivot_root (hooks
   prestart/createRuntime/createContainer included). */
int cl_ctr_rootfs_setup (struct init_ctx *c, cl_error_t *err);
/* The bind mounts of `mounts` (the spec's array) made under the directory
   rootfd as the init makes them (targets created and opened inside the
   root), the others skipped: a VM-isolated container's shim calls it in
   a mount namespace of its own before sharing the tree with the guest. */
int cl_ctr_rootfs_bind_mounts (int rootfd, const char *bundle, json_t *mounts, cl_error_t *err);
/* Creates (if needed) the mount point `dest` under the directory rootfd
   (a directory, or an empty file when not dir), inside the root; an
   O_PATH descriptor of it. */
int cl_ctr_rootfs_make_target (int rootfd, const char *dest, bool dir, cl_error_t *err);

#endif
