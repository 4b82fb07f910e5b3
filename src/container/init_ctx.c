/* SPDX-License-Identifier: Apache-2.0 */
#include "container/init_ctx.h"
#include "common/util.h"
#include "container/spec.h"
#include "container/sync.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

int
cl_ctr_open_in_root (int rootfd, const char *path, int flags, mode_t mode)
{
  struct open_how how = { .flags = (uint64_t)flags | O_CLOEXEC,
                          .mode = (flags & O_CREAT) ? mode : 0,
                          .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  while (*path == '/')
    path++;
  if (*path == '\0')
    path = ".";
  return (int)syscall (SYS_openat2, rootfd, path, &how, sizeof how);
}

/* linux.timeOffsets, written before any process enters the new time
   namespace (the real init is forked after). */
static int
set_time_offsets (struct init_ctx *c, cl_error_t *err)
{
  json_t *offsets = json_object_get (c->linux_obj, "timeOffsets"), *v;
  const char *clock;
  char buf[256];
  size_t len = 0;

  json_object_foreach (offsets, clock, v)
  {
    int n = snprintf (buf + len, sizeof buf - len, "%s %lld %lld\n", clock,
                      json_integer_value (json_object_get (v, "secs")),
                      json_integer_value (json_object_get (v, "nanosecs")));
    if (n < 0 || (size_t)n >= sizeof buf - len)
      return cl_error_make (err, 0, "linux.timeOffsets: too long");
    len += (size_t)n;
  }
  if (len && cl_write_file ("/proc/self/timens_offsets", buf, len, 0, err) < 0)
    return cl_error_wrap (err, "linux.timeOffsets");
  return 0;
}

/* GO: ids are mapped and we are in the container's cgroup.  The cgroup
   (and time) namespaces start from here. */
int
cl_ctr_init_wait_go (struct init_ctx *c, cl_error_t *err)
{
  json_t *ns = json_object_get (c->linux_obj, "namespaces"), *v;
  struct sync_msg msg;
  size_t i;

  if (c->have_go)
    return 0;
  if (cl_ctr_sync_recv (c->a->sync_fd, SYNC_GO, &msg, err) < 0)
    return -1;
  c->have_go = true;
  prctl (PR_SET_DUMPABLE, 0);
  json_array_foreach (ns, i, v)
  {
    const char *type = json_string_value (json_object_get (v, "type"));
    int flag = cl_ctr_spec_namespace_flag (type);
    if (flag == CLONE_NEWPID && !json_object_get (v, "path") && !(c->a->ns_new & CLONE_NEWPID)
        && unshare (CLONE_NEWPID) < 0)
      return cl_error_errno (err, "linux.namespaces[%zu]: unshare pid", i);
    if ((flag == CLONE_NEWCGROUP || flag == CLONE_NEWTIME) && !json_object_get (v, "path"))
      {
        if (unshare (flag) < 0)
          return cl_error_errno (err, "linux.namespaces[%zu]: unshare %s", i, type);
        if (flag == CLONE_NEWTIME && set_time_offsets (c, err) < 0)
          return -1;
      }
  }
  return 0;
}
