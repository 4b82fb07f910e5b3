/* SPDX-License-Identifier: Apache-2.0 */
/* The instance core's life cycle, for any kind: load a row checked
   against what runs, start (a monitor), stop, destroy.  What differs
   between a container and a VM is asked of the kind's table
   (cl_mgr_instance_ops); the kinds never call back here.  Callers hold the
   instance's lock. */
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "manager/mgr_engine.h"
#include "manager/mgr_images.h"
#include "manager/mgr_internal.h"
#include "manager/netglue.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

int
cl_mgr_instance_load (struct cl_manager *m, const char *name, struct instance **out,
                      cl_error_t *err)
{
  struct instance *inst;

  if (cl_mgr_store_get (m, name, &inst, err) < 0)
    return -1;
  if (cl_mgr_reconcile_instance (m, inst, err) < 0)
    {
      cl_mgr_instance_free (inst);
      return -1;
    }
  *out = inst;
  return 0;
}

int
cl_mgr_reconcile_instance (struct cl_manager *m, struct instance *inst, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance struct instance *fresh = NULL;
  const struct instance_ops *ops;
  int r;

  if (!cl_mgr_instance_is_running (inst))
    return 0;
  if (cl_mgr_proc_alive (inst->monitor_pid, inst->monitor_start))
    return 0;
  /* The monitor looks dead.  The row may come from a read older than the
     monitor's last record (it exited after recording the end), and a
     command may be restarting the instance: judge again, under the
     instance's lock, on a fresh read. */
  if (!cl_mgr_instance_lock_held (m, inst->name))
    {
      r = cl_mgr_instance_trylock (m, inst->name, &lock, err);
      if (r <= 0)
        return r; /* another command is at work on it: its word wins */
    }
  if (cl_mgr_store_get (m, inst->name, &fresh, err) < 0)
    return -1;
  if (!cl_mgr_instance_is_running (fresh)
      || cl_mgr_proc_alive (fresh->monitor_pid, fresh->monitor_start))
    goto refreshed;
  /* the monitor died (kill -9, OOM): nothing records this workload's end,
     so end it now rather than leave it unsupervised */
  cl_warn ("instance `%s`: its monitor (pid %d) is gone; stopping it", fresh->name,
           (int)fresh->monitor_pid);
  if (fresh->init_pid > 0 && cl_mgr_proc_alive (fresh->init_pid, fresh->init_start))
    kill (fresh->init_pid, SIGKILL);
  ops = cl_mgr_instance_ops (fresh);
  if (ops->halt && ops->halt (m, fresh, err) < 0)
    return -1;
  if (cl_mgr_store_set_stopped (m, fresh->name, false, 0, err) < 0)
    return -1;
  free (fresh->status);
  fresh->status = cl_xstrdup ("stopped");
  fresh->has_exit_code = false;
refreshed:
  /* *inst takes the fresh row's contents */
  {
    struct instance tmp = *inst;
    *inst = *fresh;
    *fresh = tmp;
  }
  return 0;
}

int
cl_mgr_instance_start_locked (struct cl_manager *m, const char *name, const struct start_opts *o,
                              cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;
  int64_t intent;

  if (cl_mgr_instance_load (m, name, &inst, err) < 0)
    return -1;
  if (cl_mgr_instance_is_running (inst))
    return cl_error_raise (err, CL_ERR_CONFLICT, "instance `%s` is already running", name);
  if (strcmp (inst->status, "stopped") != 0)
    return cl_error_raise (err, CL_ERR_CONFLICT, "instance `%s` is %s", name, inst->status);
  if (cl_mgr_intent_begin (m, "start", name, NULL, &intent, err) < 0)
    return -1;
  /* a container checkpointed by a move (here, or received with its
     processes): restored once, whether that works or not */
  cleanup_free char *dir = cl_mgr_instance_dir (m, name);
  cleanup_free char *ckpt = cl_strdup_printf ("%s/" CL_MGR_CHECKPOINT_DIR, dir);
  cleanup_free char *ckpt_log = cl_strdup_printf ("%s.log", ckpt);
  struct start_opts with = *o;
  bool restoring
      = o->restore_dir == NULL && inst->kind == KIND_CONTAINER && access (ckpt, F_OK) == 0;
  if (restoring)
    with.restore_dir = ckpt;
  int r = cl_mgr_monitor_spawn (m, inst, &with, NULL, err);
  if (restoring)
    {
      cl_error_t ignored = NULL;
      if (cl_rm_rf (ckpt, &ignored) < 0 || cl_rm_rf (ckpt_log, &ignored) < 0)
        cl_error_release (&ignored);
    }
  if (r < 0)
    {
      cl_mgr_intent_abandon (m, intent);
      return -1;
    }
  return cl_mgr_intent_end (m, intent, err);
}

/* Signals the workload's process (container init, VMM child) if it is
   still the one we started. */
static void
signal_workload (struct instance *inst, int sig)
{
  if (inst->init_pid > 0 && cl_mgr_proc_alive (inst->init_pid, inst->init_start))
    kill (inst->init_pid, sig);
}

/* The monitor records the exit; when it is gone too, this records it. */
int
cl_mgr_instance_halt (struct cl_manager *m, struct instance *inst, int timeout_ms, cl_error_t *err)
{
  const struct instance_ops *ops = cl_mgr_instance_ops (inst);
  bool monitor_alive = cl_mgr_proc_alive (inst->monitor_pid, inst->monitor_start);

  if (monitor_alive && ops->wake)
    ops->wake (m, inst);
  if (monitor_alive && timeout_ms > 0)
    {
      if (ops->shutdown && ops->shutdown (m, inst, &timeout_ms))
        return 0;
      signal_workload (inst, SIGTERM);
      if (cl_mgr_proc_wait_exit (inst->monitor_pid, inst->monitor_start, timeout_ms))
        return 0;
    }
  if (monitor_alive)
    {
      signal_workload (inst, SIGKILL);
      if (cl_mgr_proc_wait_exit (inst->monitor_pid, inst->monitor_start, FORCED_STOP_WAIT_MS))
        return 0;
      cl_warn ("instance `%s`: the monitor did not exit; killing it", inst->name);
      kill (inst->monitor_pid, SIGKILL);
      cl_mgr_proc_wait_exit (inst->monitor_pid, inst->monitor_start, FORCED_STOP_WAIT_MS);
    }
  signal_workload (inst, SIGKILL);
  if (ops->halt && ops->halt (m, inst, err) < 0)
    return -1;
  return cl_mgr_store_set_stopped (m, inst->name, false, 0, err);
}

int
cl_mgr_instance_stop_locked (struct cl_manager *m, const char *name, int timeout_s, bool force,
                             cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;

  if (cl_mgr_instance_load (m, name, &inst, err) < 0)
    return -1;
  if (!cl_mgr_instance_is_running (inst))
    return cl_error_raise (err, CL_ERR_CONFLICT, "instance `%s` is not running", name);
  return cl_mgr_instance_halt (m, inst, force ? 0 : timeout_s * 1000, err);
}

int
cl_mgr_instance_destroy (struct cl_manager *m, const char *name, int64_t intent, cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;
  cleanup_free char *dir = cl_mgr_instance_dir (m, name);
  cleanup_free char *id = cl_mgr_instance_global_id (m, name);
  cleanup_free char *eroot = cl_mgr_engine_root (m);
  cl_error_t ignored = NULL;

  if (cl_mgr_store_get (m, name, &inst, &ignored) < 0)
    cl_error_release (&ignored);
  if (inst)
    {
      if (cl_mgr_proc_alive (inst->monitor_pid, inst->monitor_start)
          || cl_mgr_proc_alive (inst->init_pid, inst->init_start))
        if (cl_mgr_instance_halt (m, inst, 0, err) < 0)
          return -1;
      cl_mgr_image_unuse (m, cl_mgr_instance_image_id (inst), name);
    }
  /* whatever the kind (the row may be gone already): a container the
     engine may hold under the instance's id */
  if (cl_mgr_engine_destroy (eroot, id, err) < 0)
    return -1;
  if (cl_mgr_netglue_detach (m, name, err) < 0)
    return -1;
  if (cl_rm_rf (dir, err) < 0)
    return -1;
  return cl_mgr_store_delete (m, name, intent, err);
}
