/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshots: containers keep a copy of their writable layer, VMs of their
   disk (and with --stateful, the VMM's memory and device state), under
   INSTANCE/snapshots/SNAP; what is copied is the kind's (.snapshot,
   .restore in cl_mgr_instance_ops).  Restore swaps the copy back in by rename,
   with an intent that says whether the copy was whole; a stateful one
   starts the VM with the state as a start option. */
#include "common/cleanup.h"
#include "common/util.h"
#include "manager/mgr_engine.h"
#include "manager/mgr_internal.h"
#include "manager/mgr_snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *
snap_dir (struct cl_manager *m, const char *instance, const char *snap)
{
  return cl_strdup_printf ("%s/instances/%s/snapshots/%s", m->root, instance, snap);
}

static void
rm_quiet (const char *path)
{
  cl_error_t ignored = NULL;
  if (cl_rm_rf (path, &ignored) < 0)
    cl_error_release (&ignored);
}

int
cl_mgr_snapshot_create (struct cl_manager *m, const char *instance, const char *snap, bool stateful,
                        cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance struct instance *inst = NULL;
  cleanup_free char *sdir = NULL, *dir = cl_mgr_instance_dir (m, instance);
  int64_t intent;

  if (cl_validate_name (snap, "snapshot name", err) < 0
      || cl_mgr_instance_lock (m, instance, &lock, err) < 0
      || cl_mgr_instance_load (m, instance, &inst, err) < 0)
    return -1;
  if (stateful && strcmp (inst->status, "running") != 0)
    return cl_error_raise (err, CL_ERR_CONFLICT, "--stateful: instance `%s` is not running",
                           instance);
  if (cl_mgr_intent_begin (m, "snapshot-create", instance, snap, &intent, err) < 0)
    return -1;
  if (cl_mgr_store_snapshot_add (m, instance, snap, stateful, err) < 0)
    {
      cl_mgr_intent_abandon (m, intent);
      return -1;
    }
  sdir = snap_dir (m, instance, snap);
  if (cl_mkdir_p (sdir, 0700, err) < 0
      || cl_mgr_instance_ops (inst)->snapshot (m, inst, dir, sdir, stateful, err) < 0
      || cl_mgr_store_snapshot_ready (m, instance, snap, err) < 0)
    {
      cl_error_t ignored = NULL;
      rm_quiet (sdir);
      if (cl_mgr_store_snapshot_del (m, instance, snap, &ignored) < 0)
        cl_error_release (&ignored);
      cl_mgr_intent_abandon (m, intent);
      return -1;
    }
  return cl_mgr_intent_end (m, intent, err);
}

int
cl_mgr_checkpoint_check (struct cl_manager *m, cl_error_t *err)
{
  cleanup_free char *root = cl_mgr_engine_root (m);
  return cl_mgr_engine_criu_check (root, err);
}

int
cl_mgr_instance_checkpoint (struct cl_manager *m, const char *name, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance struct instance *inst = NULL;
  cleanup_free char *dir = cl_mgr_instance_dir (m, name);
  cleanup_free char *images = cl_strdup_printf ("%s/" CL_MGR_CHECKPOINT_DIR, dir);
  cleanup_free char *logs = cl_strdup_printf ("%s.log", images);

  if (cl_mgr_instance_lock (m, name, &lock, err) < 0
      || cl_mgr_instance_load (m, name, &inst, err) < 0)
    return -1;
  if (strcmp (inst->status, "running") != 0)
    return cl_error_raise (err, CL_ERR_CONFLICT, "instance `%s` is not running", name);
  if (cl_mgr_instance_ops (inst)->checkpoint == NULL)
    return cl_error_raise (err, CL_ERR_INVALID,
                           "instance `%s`: only containers are checkpointed (a VM moves by live "
                           "migration)",
                           name);
  rm_quiet (images);
  rm_quiet (logs);
  if (cl_mgr_instance_ops (inst)->checkpoint (m, inst, dir, images, false, err) < 0)
    {
      rm_quiet (images);
      rm_quiet (logs);
      return -1;
    }
  /* CRIU ended the processes: the monitor records the stop */
  return cl_mgr_instance_halt (m, inst, 0, err);
}

int
cl_mgr_instance_migrate (struct cl_manager *m, const char *name, const char *uri, const char *token,
                         json_t **figures, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance struct instance *inst = NULL;

  *figures = NULL;
  if (cl_mgr_instance_lock (m, name, &lock, err) < 0
      || cl_mgr_instance_load (m, name, &inst, err) < 0)
    return -1;
  if (strcmp (inst->status, "running") != 0)
    return cl_error_raise (err, CL_ERR_CONFLICT, "instance `%s` is %s, not running", name,
                           inst->status);
  if (cl_mgr_instance_ops (inst)->migrate == NULL)
    return cl_error_raise (err, CL_ERR_INVALID,
                           "instance `%s`: only VMs migrate live (a container moves by "
                           "checkpoint)",
                           name);
  return cl_mgr_instance_ops (inst)->migrate (m, inst, uri, token, figures, err);
}

int
cl_mgr_snapshot_list (struct cl_manager *m, const char *instance, json_t **out, cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;
  cleanup_stmt sqlite3_stmt *s = NULL;
  json_t *arr;

  if (cl_mgr_store_get (m, instance, &inst, err) < 0)
    return -1;
  if (cl_db_prepare (m->db,
                     "SELECT name, created, stateful FROM instance_snapshots"
                     " WHERE instance = ? AND ready = 1 ORDER BY created, name",
                     &s, err)
      < 0)
    return -1;
  sqlite3_bind_text (s, 1, instance, -1, SQLITE_STATIC);
  arr = json_array ();
  while (sqlite3_step (s) == SQLITE_ROW)
    json_array_append_new (arr, json_pack ("{s:s, s:I, s:b}", "name",
                                           (const char *)sqlite3_column_text (s, 0), "created",
                                           (json_int_t)sqlite3_column_int64 (s, 1), "stateful",
                                           sqlite3_column_int (s, 2)));
  *out = arr;
  return 0;
}

/* The files a restore swaps: the writable layer or the disk. */
static void
restore_paths (struct cl_manager *m, const char *instance, const char *snap, char **from,
               char **staged, char **live)
{
  cleanup_free char *dir = cl_mgr_instance_dir (m, instance);
  cleanup_free char *sdir = snap_dir (m, instance, snap);
  cleanup_free char *disk = cl_strdup_printf ("%s/disk.img", sdir);
  bool vm = access (disk, F_OK) == 0;
  const char *what = vm ? "disk.img" : "upper";

  *from = cl_strdup_printf ("%s/%s", sdir, what);
  *staged = cl_strdup_printf ("%s/%s.restore", dir, what);
  *live = cl_strdup_printf ("%s/%s", dir, what);
}

/* Second half of a restore: the staged copy is whole; idempotent. */
static int
restore_swap (struct cl_manager *m, const char *instance, const char *snap, cl_error_t *err)
{
  cleanup_free char *from = NULL, *staged = NULL, *live = NULL;
  cleanup_free char *dir = cl_mgr_instance_dir (m, instance);
  cleanup_free char *work = cl_strdup_printf ("%s/work", dir);

  restore_paths (m, instance, snap, &from, &staged, &live);
  if (access (staged, F_OK) != 0)
    return 0; /* already swapped */
  if (strstr (live, "/upper") && cl_rm_rf (live, err) < 0)
    return -1;
  if (rename (staged, live) < 0)
    return cl_error_errno (err, "rename `%s`", staged);
  /* overlayfs's work dir belongs with the upper dir it served */
  if (access (work, F_OK) == 0 && (cl_rm_rf (work, err) < 0 || cl_mkdir_p (work, 0755, err) < 0))
    return -1;
  return 0;
}

int
cl_mgr_snapshot_restore (struct cl_manager *m, const char *instance, const char *snap,
                         cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;
  cleanup_free char *from = NULL, *staged = NULL, *live = NULL, *arg = NULL;
  cleanup_free char *sdir = snap_dir (m, instance, snap);
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  bool running, stateful = false;
  int64_t intent;
  int r;

  if (cl_mgr_instance_lock (m, instance, &lock, err) < 0
      || cl_mgr_instance_load (m, instance, &inst, err) < 0)
    return -1;
  r = cl_mgr_store_snapshot_get (m, instance, snap, &stateful, err);
  if (r < 0)
    return -1;
  if (r == 0)
    return cl_error_raise (err, CL_ERR_NOT_FOUND, "snapshot `%s` of instance `%s` not found", snap,
                           instance);
  running = cl_mgr_instance_is_running (inst);
  if (running && cl_mgr_instance_stop_locked (m, instance, 0, true, err) < 0)
    return -1;
  arg = cl_strdup_printf ("copy:%s", snap);
  if (cl_mgr_intent_begin (m, "snapshot-restore", instance, arg, &intent, err) < 0)
    return -1;
  restore_paths (m, instance, snap, &from, &staged, &live);
  rm_quiet (staged);
  r = cl_mgr_instance_ops (inst)->restore (from, staged, err);
  if (r < 0)
    {
      rm_quiet (staged);
      cl_mgr_intent_abandon (m, intent);
      return -1;
    }
  free (arg);
  arg = cl_strdup_printf ("swap:%s", snap);
  if (cl_mgr_intent_set_arg (m, intent, arg, err) < 0 || restore_swap (m, instance, snap, err) < 0)
    {
      cl_mgr_intent_abandon (m, intent);
      return -1;
    }
  if (cl_mgr_intent_end (m, intent, err) < 0)
    return -1;
  if (stateful)
    {
      cleanup_free char *state = cl_strdup_printf ("%s/state", sdir);
      return cl_mgr_instance_start_locked (m, instance,
                                           &(struct start_opts){ .restore_dir = state }, err);
    }
  if (running)
    return cl_mgr_instance_start_locked (m, instance, &(struct start_opts){ .attached = false },
                                         err);
  return 0;
}

int
cl_mgr_snapshot_delete (struct cl_manager *m, const char *instance, const char *snap,
                        cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance struct instance *inst = NULL;
  cleanup_free char *sdir = snap_dir (m, instance, snap);
  int64_t intent;
  int r;

  if (cl_mgr_instance_lock (m, instance, &lock, err) < 0
      || cl_mgr_store_get (m, instance, &inst, err) < 0)
    return -1;
  r = cl_mgr_store_snapshot_get (m, instance, snap, NULL, err);
  if (r < 0)
    return -1;
  if (r == 0)
    return cl_error_raise (err, CL_ERR_NOT_FOUND, "snapshot `%s` of instance `%s` not found", snap,
                           instance);
  if (cl_mgr_intent_begin (m, "snapshot-delete", instance, snap, &intent, err) < 0)
    return -1;
  r = cl_rm_rf (sdir, err);
  if (r == 0)
    r = cl_mgr_store_snapshot_del (m, instance, snap, err);
  if (r == 0)
    return cl_mgr_intent_end (m, intent, err);
  cl_mgr_intent_abandon (m, intent);
  return r;
}

int
cl_mgr_snapshot_recover (struct cl_manager *m, const char *op, const char *instance,
                         const char *arg, cl_error_t *err)
{
  cleanup_free char *id = cl_mgr_instance_global_id (m, instance);
  cleanup_free char *eroot = cl_mgr_engine_root (m);
  const char *snap = arg ? strchr (arg, ':') : NULL;
  cl_error_t ignored = NULL;

  snap = snap ? snap + 1 : arg;
  if (snap == NULL)
    return 0;
  if (strcmp (op, "snapshot-create") == 0 || strcmp (op, "snapshot-delete") == 0)
    {
      cleanup_free char *sdir = snap_dir (m, instance, snap);
      /* a create may have died with the container frozen */
      if (strcmp (op, "snapshot-create") == 0 && cl_mgr_engine_freeze (eroot, id, 0, &ignored) < 0)
        cl_error_release (&ignored);
      if (cl_rm_rf (sdir, err) < 0)
        return -1;
      return cl_mgr_store_snapshot_del (m, instance, snap, err);
    }
  if (strcmp (op, "snapshot-restore") == 0)
    {
      cleanup_free char *from = NULL, *staged = NULL, *live = NULL;
      if (strncmp (arg, "swap:", 5) == 0)
        return restore_swap (m, instance, snap, err);
      restore_paths (m, instance, snap, &from, &staged, &live);
      rm_quiet (staged); /* the copy may be partial: the restore did not happen */
    }
  return 0;
}
