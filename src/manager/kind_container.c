/* SPDX-License-Identifier: Apache-2.0 */
/* Container instances: an overlayfs root over the image's layers, with
   the instance's writable layer in INSTANCE/upper, run by the container
   engine (mgr_engine.h) under the cloison-monitor program.  The kind's table
   of operations (mgr_internal.h). */
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "manager/mgr_engine.h"
#include "manager/mgr_images.h"
#include "manager/mgr_internal.h"
#include "manager/monitor.h"
#include "manager/netglue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Image env, then the instance's --env entries replacing same keys. */
static char **
merge_env (char **image_env, json_t *inst_env)
{
  size_t n = 0, i, cap;
  char **env;
  json_t *e;

  while (image_env && image_env[n])
    n++;
  cap = n + json_array_size (inst_env) + 2;
  env = cl_xmalloc0 (cap * sizeof *env);
  for (i = 0; i < n; i++)
    env[i] = cl_xstrdup (image_env[i]);
  json_array_foreach (inst_env, i, e)
  {
    const char *kv = json_string_value (e), *eq = kv ? strchr (kv, '=') : NULL;
    size_t k;
    if (eq == NULL)
      continue;
    for (k = 0; k < n; k++)
      if (strncmp (env[k], kv, eq - kv + 1) == 0)
        break;
    free (env[k]);
    env[k] = cl_xstrdup (kv);
    if (k == n)
      n++;
  }
  return env;
}

static char *
overlay_options (struct mgr_image *img, const char *dir)
{
  size_t n = 0, len = 0;
  char *lower, *p, *opts;

  while (img->layers[n])
    len += strlen (img->layers[n++]) + 1;
  lower = p = cl_xmalloc0 (len + 1);
  /* overlayfs lists the uppermost lower layer first */
  for (size_t i = n; i-- > 0;)
    p += sprintf (p, "%s%s", p == lower ? "" : ":", img->layers[i]);
  opts = cl_strdup_printf ("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", lower, dir, dir);
  free (lower);
  return opts;
}

static int
container_create (struct cl_manager *m, struct instance *inst, struct mgr_image *img,
                  cl_error_t *err)
{
  cleanup_free char *dir = cl_mgr_instance_dir (m, inst->name);

  (void)img;
  for (const char *sub = "upper"; sub; sub = strcmp (sub, "upper") == 0  ? "work"
                                             : strcmp (sub, "work") == 0 ? "rootfs"
                                                                         : NULL)
    {
      cleanup_free char *p = cl_strdup_printf ("%s/%s", dir, sub);
      if (cl_mkdir_p (p, 0755, err) < 0)
        return -1;
    }
  return 0;
}

/* Runs fn on the container's writable layer, frozen if it runs so that
   the layer does not change meanwhile (must_freeze: a failure to freeze
   fails; else the copy goes on unfrozen). */
static int
with_frozen (struct cl_manager *m, struct instance *inst, bool must_freeze,
             int (*fn) (const char *src, const char *dst, cl_error_t *err), const char *src,
             const char *dst, cl_error_t *err)
{
  cleanup_free char *id = cl_mgr_instance_global_id (m, inst->name);
  cleanup_free char *eroot = cl_mgr_engine_root (m);
  /* frozen by the user: stays so (neither frozen nor thawed here) */
  bool running = strcmp (inst->status, "running") == 0, frozen = false;
  int r;

  if (running)
    {
      frozen = cl_mgr_engine_freeze (eroot, id, 1, err) == 0;
      if (!frozen && must_freeze)
        return -1;
    }
  r = fn (src, dst, err);
  if (frozen)
    {
      cl_error_t ignored = NULL;
      if (cl_mgr_engine_freeze (eroot, id, 0, &ignored) < 0)
        cl_error_release (&ignored);
    }
  return r;
}

static int
container_copy (struct cl_manager *m, struct instance *from, const char *sdir, const char *ddir,
                cl_error_t *err)
{
  cleanup_free char *su = cl_strdup_printf ("%s/upper", sdir);
  cleanup_free char *du = cl_strdup_printf ("%s/upper", ddir);
  cleanup_free char *dw = cl_strdup_printf ("%s/work", ddir);
  cleanup_free char *dr = cl_strdup_printf ("%s/rootfs", ddir);

  if (with_frozen (m, from, false, cl_mgr_tree_copy, su, du, err) < 0)
    return -1;
  return cl_mkdir_p (dw, 0755, err) < 0 || cl_mkdir_p (dr, 0755, err) < 0 ? -1 : 0;
}

/* Shared folders, then volumes: [{source, path, readonly}], an image
   volume with `image_volume` (its name: the monitor loop-mounts it). */
static int
container_mounts (struct cl_manager *m, struct instance *inst, json_t **out, cl_error_t *err)
{
  json_t *vols = NULL, *e, *arr;
  size_t i;

  if (cl_mgr_volume_mounts (m, inst->name, &vols, err) < 0)
    return -1;
  arr = json_deep_copy (json_object_get (inst->config, "mounts"));
  if (!json_is_array (arr))
    {
      json_decref (arr);
      arr = json_array ();
    }
  json_array_foreach (vols, i, e)
  {
    json_t *mt
        = json_pack ("{s:O, s:O, s:O}", "source", json_object_get (e, "source"), "path",
                     json_object_get (e, "path"), "readonly", json_object_get (e, "readonly"));
    if (strcmp (json_string_value (json_object_get (e, "type")), "image") == 0)
      json_object_set (mt, "image_volume", json_object_get (e, "name"));
    json_array_append_new (arr, mt);
  }
  json_decref (vols);
  *out = arr;
  return 0;
}

static int
container_prepare (struct cl_manager *m, struct instance *inst, struct mgr_image *img,
                   const struct start_opts *o, struct monitor_args *a, cl_error_t *err)
{
  json_t *cmd = json_object_get (inst->config, "command");
  json_int_t memory = json_integer_value (json_object_get (inst->config, "memory"));
  json_int_t cpus = json_integer_value (json_object_get (inst->config, "cpus"));

  a->spec.root = cl_mgr_engine_root (m);
  a->spec.bundle = a->dir;
  a->spec.id = a->id;
  a->spec.hostname = a->name;
  a->spec.rootfs = cl_strdup_printf ("%s/rootfs", a->dir);
  a->spec.argv = json_array_size (cmd) ? cl_mgr_json_to_strv (cmd) : NULL;
  if (a->spec.argv == NULL)
    {
      size_t n = 0;
      while (img->cmd && img->cmd[n])
        n++;
      if (n == 0)
        return cl_error_raise (err, CL_ERR_INVALID,
                               "image `%s` has no command: give one after `--`", inst->image);
      a->spec.argv = cl_xmalloc0 ((n + 1) * sizeof (char *));
      for (size_t i = 0; i < n; i++)
        a->spec.argv[i] = cl_xstrdup (img->cmd[i]);
    }
  a->spec.env = merge_env (img->env, json_object_get (inst->config, "env"));
  a->spec.cwd = img->cwd ? cl_xstrdup (img->cwd) : NULL;
  a->spec.memory = (uint64_t)memory;
  a->spec.cpus = (unsigned)cpus;
  a->overlay_opts = overlay_options (img, a->dir);
  if (container_mounts (m, inst, &a->spec.mounts, err) < 0)
    return -1;
  a->net_pause = cl_mgr_netglue_wanted (inst);
  a->checkpoint_dir = o->restore_dir ? cl_xstrdup (o->restore_dir) : NULL;
  return 0;
}

/* A frozen container (a snapshot killed midway, before its recovery
   ran) would take no signal, not even SIGKILL under cgroup v1. */
static void
container_wake (struct cl_manager *m, struct instance *inst)
{
  cleanup_free char *id = cl_mgr_instance_global_id (m, inst->name);
  cleanup_free char *eroot = cl_mgr_engine_root (m);
  cl_error_t ignored = NULL;

  if (cl_mgr_engine_thaw (eroot, id, &ignored) < 0)
    cl_error_release (&ignored);
}

static int
container_freeze (struct cl_manager *m, struct instance *inst, bool freeze, cl_error_t *err)
{
  cleanup_free char *id = cl_mgr_instance_global_id (m, inst->name);
  cleanup_free char *eroot = cl_mgr_engine_root (m);

  return cl_mgr_engine_freeze (eroot, id, freeze, err);
}

static int
container_halt (struct cl_manager *m, struct instance *inst, cl_error_t *err)
{
  cleanup_free char *id = cl_mgr_instance_global_id (m, inst->name);
  cleanup_free char *eroot = cl_mgr_engine_root (m);

  return cl_mgr_engine_destroy (eroot, id, err);
}

/* The processes into CRIU's images (a restore hands the directory to the
   monitor, as a VM's state). */
static int
container_checkpoint (struct cl_manager *m, struct instance *inst, const char *dir,
                      const char *images, bool leave_running, cl_error_t *err)
{
  cleanup_free char *eroot = cl_mgr_engine_root (m);
  cleanup_free char *id = cl_mgr_instance_global_id (m, inst->name);
  cleanup_free char *rootfs = cl_strdup_printf ("%s/rootfs", dir);
  cleanup_json json_t *mounts = NULL;

  if (container_mounts (m, inst, &mounts, err) < 0)
    return -1;
  /* with networks: its namespace is not dumped (CRIU would have to make
     the veth and plug its other end); the restore attaches the networks
     to a new one again and restores into it */
  struct engine_spec s = { .root = eroot,
                           .id = id,
                           .bundle = dir,
                           .rootfs = rootfs,
                           .mounts = mounts,
                           .net_external = cl_mgr_netglue_wanted (inst) };
  return cl_mgr_engine_checkpoint (&s, images, leave_running, err);
}

static int
container_snapshot (struct cl_manager *m, struct instance *inst, const char *dir, const char *sdir,
                    bool stateful, cl_error_t *err)
{
  cleanup_free char *upper = cl_strdup_printf ("%s/upper", dir);
  cleanup_free char *copy = cl_strdup_printf ("%s/upper", sdir);

  cleanup_free char *images = cl_strdup_printf ("%s/state", sdir); /* as a VM's */
  cleanup_free char *id = cl_mgr_instance_global_id (m, inst->name);
  cleanup_free char *eroot = cl_mgr_engine_root (m);
  cl_error_t ignored = NULL;
  int r;

  /* frozen, the writable layer does not change under the copy */
  if (!stateful)
    return with_frozen (m, inst, true, cl_mgr_tree_copy, upper, copy, err);
  /* stateful: the copy and CRIU's dump under one freeze, so that the
     files and the processes agree (CRIU checks the sizes of open files
     at restore); CRIU seizes the frozen tasks and leaves them frozen */
  if (cl_mgr_engine_freeze (eroot, id, 1, err) < 0)
    return -1;
  r = cl_mgr_tree_copy (upper, copy, err);
  if (r == 0)
    r = container_checkpoint (m, inst, dir, images, true, err);
  if (cl_mgr_engine_freeze (eroot, id, 0, &ignored) < 0)
    cl_error_release (&ignored);
  return r;
}

static void
exec_started (void *lock)
{
  cl_mgr_instance_unlock (lock);
}

static int
container_exec (struct cl_manager *m, struct instance *inst, const struct cl_exec_spec *spec,
                struct instance_lock *held, int *exit_code, cl_error_t *err)
{
  cleanup_free char *id = cl_mgr_instance_global_id (m, inst->name);
  cleanup_free char *eroot = cl_mgr_engine_root (m);
  char **extra = cl_xmalloc0 ((spec->n_env + 1) * sizeof *extra);
  struct engine_exec e = { .argv = spec->argv,
                           .env = extra,
                           .cwd = spec->cwd,
                           .user = spec->user,
                           .tty = spec->tty == CL_EXEC_TTY_ON,
                           .started = exec_started,
                           .opaque = held };
  int r;

  /* tty on: a pty in the container (its devpts, a controlling terminal
     for job control) proxied to our stdio; else our stdio itself */
  for (size_t i = 0; i < spec->n_env; i++)
    extra[i] = (char *)spec->env[i];
  r = cl_mgr_engine_exec (eroot, id, &e, exit_code, err);
  free (extra);
  return r;
}

static int
container_set_limits (struct cl_manager *m, struct instance *inst, uint64_t memory, unsigned cpus,
                      cl_error_t *err)
{
  cleanup_free char *id = cl_mgr_instance_global_id (m, inst->name);
  cleanup_free char *eroot = cl_mgr_engine_root (m);

  return cl_mgr_engine_set_limits (eroot, id, memory, cpus, err);
}

const struct instance_ops container_ops = {
  .kind = "container",
  .create = container_create,
  .copy = container_copy,
  .prepare = container_prepare,
  .wake = container_wake,
  .freeze = container_freeze,
  .shutdown = NULL, /* SIGTERM to the init */
  .halt = container_halt,
  .snapshot = container_snapshot,
  .checkpoint = container_checkpoint,
  .restore = cl_mgr_tree_copy,
  .exec = container_exec,
  .console = NULL, /* a shell through exec */
  .set_limits = container_set_limits,
};
