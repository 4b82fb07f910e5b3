/* SPDX-License-Identifier: Apache-2.0 */
/* What the container's init carries while it builds the root (ctr_init.c
   runs the sequence, rootfs.c builds the root), and the two steps both
   need: waiting for the runtime's GO and opening a path inside the root.
   Both halves depend on this file; it depends on neither. */
#ifndef CLOISON_CONTAINER_INIT_CTX_H
#define CLOISON_CONTAINER_INIT_CTX_H

#include "common/error.h"
#include "container/ctr_init.h"

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

struct init_ctx
{
  struct init_args *a;
  json_t *linux_obj;
  int rootfd;
  int devnull; /* the host's /dev/null, checked to be the 1:3 char device */
  int console_slave;
  bool dev_is_tmpfs;
  bool have_go;
};

/* Waits (once) for the runtime's GO: ids mapped; starts the cgroup and
   time namespaces. */
int cl_ctr_init_wait_go (struct init_ctx *c, cl_error_t *err);

/* Opens `path` inside the directory `rootfd` as if it were `/`
   (openat2 RESOLVE_IN_ROOT): symlinks cannot lead out. */
int cl_ctr_open_in_root (int rootfd, const char *path, int flags, mode_t mode);

#endif
