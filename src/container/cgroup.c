/* Placeholder so the runtime links; the real implementation follows. */
#include "container/cgroup.h"

#include <errno.h>

int
cl_cgroup_detect_mode (enum cl_cgroup_mode *mode, cl_error_t *err)
{
  (void) mode;
  return cl_error_make (err, ENOSYS, "cgroup: not implemented yet");
}

int
cl_cgroup_validate (json_t *linux_obj, cl_error_t *err)
{
  (void) linux_obj;
  (void) err;
  return 0;
}

int
cl_cgroup_enter (const char *id, json_t *linux_obj, pid_t pid, struct cl_cgroup **out,
                 cl_error_t *err)
{
  (void) id, (void) linux_obj, (void) pid;
  *out = NULL;
  return cl_error_make (err, ENOSYS, "cgroup: not implemented yet");
}

int
cl_cgroup_update (struct cl_cgroup *cg, json_t *resources, cl_error_t *err)
{
  (void) cg, (void) resources;
  return cl_error_make (err, ENOSYS, "cgroup: not implemented yet");
}

int
cl_cgroup_freeze (struct cl_cgroup *cg, bool frozen, cl_error_t *err)
{
  (void) cg, (void) frozen;
  return cl_error_make (err, ENOSYS, "cgroup: not implemented yet");
}

int
cl_cgroup_pids (struct cl_cgroup *cg, pid_t **pids, size_t *n, cl_error_t *err)
{
  (void) cg;
  *pids = NULL;
  *n = 0;
  return cl_error_make (err, ENOSYS, "cgroup: not implemented yet");
}

int
cl_cgroup_kill_all (struct cl_cgroup *cg, int signo, cl_error_t *err)
{
  (void) cg, (void) signo;
  return cl_error_make (err, ENOSYS, "cgroup: not implemented yet");
}

int
cl_cgroup_destroy (struct cl_cgroup *cg, cl_error_t *err)
{
  (void) cg, (void) err;
  return 0;
}

void
cl_cgroup_free (struct cl_cgroup *cg)
{
  (void) cg;
}

json_t *
cl_cgroup_save (struct cl_cgroup *cg)
{
  (void) cg;
  return json_object ();
}

int
cl_cgroup_load (json_t *saved, struct cl_cgroup **out, cl_error_t *err)
{
  (void) saved;
  *out = NULL;
  return cl_error_make (err, ENOSYS, "cgroup: not implemented yet");
}

int
cl_cgroup_mount (const char *target, unsigned long flags, cl_error_t *err)
{
  (void) target, (void) flags;
  return cl_error_make (err, ENOSYS, "cgroup mount: not implemented yet");
}

int
cl_cgroup_stats (struct cl_cgroup *cg, json_t **out, cl_error_t *err)
{
  (void) cg;
  *out = NULL;
  return cl_error_make (err, ENOSYS, "cgroup: not implemented yet");
}
