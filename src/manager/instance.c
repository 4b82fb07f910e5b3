/* SPDX-License-Identifier: Apache-2.0 */
/* The public instance calls (manager.h): launch, run, start, stop,
   delete, list, info, exec, console, config, copy.  Each takes the
   instance's lock, then works through the life cycle (lifecycle.c) and
   the kind's table (cl_mgr_instance_ops); each multi-step change records an
   intent first (mgr_store.c), so that reconcile.c can finish or undo it
   after a crash. */
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "manager/mgr_images.h"
#include "manager/mgr_internal.h"
#include "manager/netglue.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int
launch_validate (const struct cl_launch_opts *o, cl_error_t *err)
{
  if (cl_validate_name (o->name, "instance name", err) < 0)
    return -1;
  for (size_t i = 0; i < o->n_env; i++)
    if (strchr (o->env[i], '=') == NULL || o->env[i][0] == '=')
      return cl_error_raise (err, CL_ERR_INVALID, "--env `%s`: expected KEY=VALUE", o->env[i]);
  for (size_t i = 0; i < o->n_networks; i++)
    {
      /* NAME@ADDRESS: a fixed address (checked as the network attaches) */
      const char *at = strchr (o->networks[i], '@');
      cleanup_free char *name = at ? strndup (o->networks[i], (size_t)(at - o->networks[i])) : NULL;
      if (cl_validate_name (name ? name : o->networks[i], "network name", err) < 0)
        return -1;
    }
  if (o->no_network && o->n_networks)
    return cl_error_raise (err, CL_ERR_INVALID, "--no-network and --network exclude each other");
  for (size_t i = 0; i < o->n_ports; i++)
    if (cl_mgr_netglue_check_port (o->ports[i], err) < 0)
      return -1;
  if (o->no_network && o->n_ports)
    return cl_error_raise (err, CL_ERR_INVALID, "-p needs a network (remove --no-network)");
  if (o->cpus > 256)
    return cl_error_raise (err, CL_ERR_INVALID, "invalid --cpus `%u`: at most 256", o->cpus);
  for (size_t i = 0; i < o->n_labels; i++)
    if (strchr (o->labels[i], '=') == NULL || o->labels[i][0] == '=')
      return cl_error_raise (err, CL_ERR_INVALID, "label `%s`: expected KEY=VALUE", o->labels[i]);
  return 0;
}

/* Shared folders: [{source, path, readonly}], each source an existing
   directory, by its absolute path. */
static int
launch_mounts (const struct cl_launch_opts *o, json_t **out, cl_error_t *err)
{
  cleanup_json json_t *arr = json_array ();

  for (size_t i = 0; i < o->n_mounts; i++)
    {
      cleanup_free char *src = NULL, *path = NULL, *real = NULL;
      struct stat st;
      bool ro;
      if (cl_mgr_mount_spec_parse (o->mounts[i], "--mount", &src, &path, &ro, err) < 0)
        return -1;
      real = realpath (src, NULL);
      if (real == NULL || stat (real, &st) < 0)
        return cl_error_errno (err, "--mount `%s`: folder `%s`", o->mounts[i], src);
      if (!S_ISDIR (st.st_mode))
        return cl_error_raise (err, CL_ERR_INVALID, "--mount `%s`: `%s` is not a directory",
                               o->mounts[i], src);
      json_array_append_new (
          arr, json_pack ("{s:s, s:s, s:b}", "source", real, "path", path, "readonly", ro));
    }
  *out = steal_pointer (&arr);
  return 0;
}

static json_t *
launch_config (const struct cl_launch_opts *o, bool ephemeral)
{
  json_t *c = json_object ();
  json_object_set_new (c, "cpus", json_integer (o->cpus));
  json_object_set_new (c, "memory", json_integer ((json_int_t)o->memory));
  json_object_set_new (c, "disk_size", json_integer ((json_int_t)o->disk_size));
  json_object_set_new (c, "env", cl_json_strings (o->env, o->n_env));
  json_object_set_new (c, "networks", cl_json_strings (o->networks, o->n_networks));
  json_object_set_new (c, "no_network", json_boolean (o->no_network));
  if (o->cold)
    json_object_set_new (c, "cold", json_true ());
  json_object_set_new (c, "ports", cl_json_strings (o->ports, o->n_ports));
  if (o->argv && o->argc)
    json_object_set_new (c, "command", cl_json_strings ((const char *const *)o->argv, o->argc));
  if (o->kernel)
    json_object_set_new (c, "kernel", json_string (o->kernel));
  if (o->initrd)
    json_object_set_new (c, "initrd", json_string (o->initrd));
  if (o->cmdline)
    json_object_set_new (c, "cmdline", json_string (o->cmdline));
  json_object_set_new (c, "ephemeral", json_boolean (ephemeral));
  if (o->n_labels)
    {
      json_t *labels = json_object ();
      for (size_t i = 0; i < o->n_labels; i++)
        {
          const char *eq = strchr (o->labels[i], '=');
          json_object_setn_new (labels, o->labels[i], (size_t)(eq - o->labels[i]),
                                json_string (eq + 1));
        }
      json_object_set_new (c, "labels", labels);
    }
  return c;
}

/* On a failure path: removes the instance and its intent; what cannot be
   removed now is left to the recovery (the intent stays then). */
static void
instance_undo (struct cl_manager *m, const char *name, int64_t intent)
{
  cl_error_t ignored = NULL;
  if (cl_mgr_instance_destroy (m, name, intent, &ignored) < 0)
    cl_error_release (&ignored);
}

/* Creates the row and files; leaves the intent open (returned).  The
   caller holds the instance's lock. */
static int
instance_create (struct cl_manager *m, const struct cl_launch_opts *o, bool ephemeral,
                 const char *op, struct instance **out, int64_t *intent, cl_error_t *err)
{
  cleanup_image struct mgr_image *img = NULL;
  cleanup_instance struct instance *inst = NULL;
  json_t *mounts = NULL;

  if (launch_validate (o, err) < 0 || launch_mounts (o, &mounts, err) < 0)
    return -1;
  if (cl_mgr_image_resolve (m, o->image, &img, err) < 0)
    {
      json_decref (mounts);
      return -1;
    }
  inst = cl_xmalloc0 (sizeof *inst);
  inst->name = cl_xstrdup (o->name);
  inst->kind = o->vm ? KIND_VM : KIND_CONTAINER;
  inst->image = cl_xstrdup (img->ref);
  inst->status = cl_xstrdup ("creating");
  inst->config = launch_config (o, ephemeral);
  json_object_set_new (inst->config, "mounts", mounts);
  json_object_set_new (inst->config, "image_id", json_string (img->id));
  inst->created = time (NULL);
  if (cl_mgr_store_create (m, inst, op, intent, err) < 0)
    return -1;
  if (cl_mgr_image_use (m, img->id, inst->name, err) < 0)
    {
      /* an `image rm` came between the look-up and the use: say so by
         the name the user gave */
      if ((*err)->status == ENOENT)
        {
          cl_error_release (err);
          cl_error_make (err, ENOENT, "image `%s` not found: it was removed during the launch",
                         o->image);
        }
      instance_undo (m, inst->name, *intent);
      return -1;
    }
  if (cl_mgr_volume_attach_specs (m, inst->name, o->volumes, o->n_volumes, err) < 0
      || cl_mgr_instance_ops (inst)->create (m, inst, img, err) < 0
      || cl_mgr_store_set_status (m, inst->name, "stopped", err) < 0)
    {
      instance_undo (m, inst->name, *intent);
      return -1;
    }
  free (inst->status);
  inst->status = cl_xstrdup ("stopped");
  *out = steal_pointer (&inst);
  return 0;
}

int
cl_mgr_instance_launch (struct cl_manager *m, const struct cl_launch_opts *o, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance struct instance *inst = NULL;
  int64_t intent;

  if (cl_validate_name (o->name, "instance name", err) < 0
      || cl_mgr_instance_lock (m, o->name, &lock, err) < 0
      || instance_create (m, o, false, "launch", &inst, &intent, err) < 0)
    return -1;
  /* a launch that cannot record its end fails whole: an intent left
     behind would make the recovery destroy what we reported launched */
  if (cl_mgr_monitor_spawn (m, inst, &(struct start_opts){ .attached = false }, NULL, err) < 0
      || cl_mgr_intent_end (m, intent, err) < 0)
    {
      instance_undo (m, inst->name, intent);
      return -1;
    }
  return 0;
}

static volatile sig_atomic_t forward_to;

static void
forward_signal (int sig)
{
  if (forward_to > 0)
    kill (forward_to, sig);
}

int
cl_mgr_instance_run (struct cl_manager *m, const struct cl_launch_opts *o, int *exit_code,
                     cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance struct instance *inst = NULL;
  cleanup_instance struct instance *after = NULL;
  struct sigaction sa = { .sa_handler = forward_signal };
  pid_t monitor;
  int64_t intent;
  int st, r = 0;

  if (cl_validate_name (o->name, "instance name", err) < 0
      || cl_mgr_instance_lock (m, o->name, &lock, err) < 0
      || instance_create (m, o, true, "run", &inst, &intent, err) < 0)
    return -1;
  if (cl_mgr_monitor_spawn (m, inst, &(struct start_opts){ .attached = true }, &monitor, err) < 0)
    {
      r = -1;
      goto out;
    }
  /* while the workload runs, others may stop or delete it: the intent
     stays ours (this process is alive), the lock does not */
  cl_mgr_instance_unlock (&lock);
  if (cl_mgr_store_get (m, inst->name, &after, err) < 0)
    {
      r = -1;
      goto out;
    }
  forward_to = after->init_pid;
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
  while (waitpid (monitor, &st, 0) < 0 && errno == EINTR)
    ;
  forward_to = 0;
  cl_mgr_instance_free (steal_pointer (&after));
  if (cl_mgr_store_get (m, inst->name, &after, err) < 0)
    {
      r = -1;
      goto out;
    }
  *exit_code = after->has_exit_code ? after->exit_code : 255;
out:
  if (lock.fd < 0)
    {
      cl_error_t ignored = NULL;
      if (cl_mgr_instance_lock (m, inst->name, &lock, &ignored) < 0)
        {
          cl_error_release (&ignored);
          return r; /* the intent stays: the recovery removes the rest */
        }
    }
  instance_undo (m, inst->name, intent);
  return r;
}

int
cl_mgr_instance_start (struct cl_manager *m, const char *name, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };

  if (cl_mgr_instance_lock (m, name, &lock, err) < 0)
    return -1;
  return cl_mgr_instance_start_locked (m, name, &(struct start_opts){ .attached = false }, err);
}

int
cl_mgr_instance_stop (struct cl_manager *m, const char *name, int timeout_s, bool force,
                      cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };

  if (cl_mgr_instance_lock (m, name, &lock, err) < 0)
    return -1;
  return cl_mgr_instance_stop_locked (m, name, timeout_s, force, err);
}

int
cl_mgr_instance_restart (struct cl_manager *m, const char *name, int timeout_s, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance struct instance *inst = NULL;

  if (cl_mgr_instance_lock (m, name, &lock, err) < 0
      || cl_mgr_instance_load (m, name, &inst, err) < 0)
    return -1;
  if (cl_mgr_instance_is_running (inst)
      && cl_mgr_instance_halt (m, inst, timeout_s * 1000, err) < 0)
    return -1;
  return cl_mgr_instance_start_locked (m, name, &(struct start_opts){ .attached = false }, err);
}

int
cl_mgr_instance_freeze (struct cl_manager *m, const char *name, bool freeze, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance struct instance *inst = NULL;
  const struct instance_ops *ops;

  if (cl_mgr_instance_lock (m, name, &lock, err) < 0
      || cl_mgr_instance_load (m, name, &inst, err) < 0)
    return -1;
  if (strcmp (inst->status, freeze ? "running" : "frozen") != 0)
    return cl_error_raise (err, CL_ERR_CONFLICT, "instance `%s` is %s, not %s", name, inst->status,
                           freeze ? "running" : "frozen");
  ops = cl_mgr_instance_ops (inst);
  if (!ops->freeze)
    return cl_error_raise (err, CL_ERR_INVALID, "instance `%s`: a %s cannot be frozen", name,
                           ops->kind);
  if (ops->freeze (m, inst, freeze, err) < 0)
    return -1;
  return cl_mgr_store_set_status (m, name, freeze ? "frozen" : "running", err);
}

int
cl_mgr_instance_delete (struct cl_manager *m, const char *name, bool force, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance struct instance *inst = NULL;
  int64_t intent;

  if (cl_mgr_instance_lock (m, name, &lock, err) < 0
      || cl_mgr_instance_load (m, name, &inst, err) < 0)
    return -1;
  if (cl_mgr_instance_is_running (inst) && !force)
    return cl_error_raise (err, CL_ERR_CONFLICT,
                           "instance `%s` is running: stop it first or use --force", name);
  if (cl_mgr_intent_begin (m, "delete", name, NULL, &intent, err) < 0)
    return -1;
  /* the row and the intent go in one transaction */
  if (cl_mgr_instance_destroy (m, name, intent, err) < 0)
    {
      cl_mgr_intent_abandon (m, intent);
      return -1;
    }
  return 0;
}

static void
instance_summary (struct instance *inst, struct cl_instance_summary *s)
{
  bool running = cl_mgr_instance_is_running (inst);
  *s = (struct cl_instance_summary){
    .name = inst->name,
    .kind = cl_mgr_instance_ops (inst)->kind,
    .image = inst->image,
    .status = inst->status,
    .created = inst->created,
    .pid = running ? inst->init_pid : 0,
    .has_exit_code = inst->has_exit_code,
    .exit_code = inst->exit_code,
  };
}

static json_t *
summary_json (const struct cl_instance_summary *s)
{
  return json_pack ("{s:s, s:s, s:s, s:s, s:I, s:o, s:o}", "name", s->name, "kind", s->kind,
                    "image", s->image, "status", s->status, "created", (json_int_t)s->created,
                    "pid", s->pid ? json_integer (s->pid) : json_null (), "exit_code",
                    s->has_exit_code ? json_integer (s->exit_code) : json_null ());
}

static json_t *
instance_json (struct cl_manager *m, struct instance *inst, bool detailed)
{
  struct cl_instance_summary sum;
  json_t *o;

  instance_summary (inst, &sum);
  o = summary_json (&sum);
  if (detailed)
    {
      json_t *snaps = NULL;
      cl_error_t ignored = NULL;
      json_object_set (o, "config", inst->config);
      json_object_set_new (o, "monitor_pid",
                           cl_mgr_instance_is_running (inst) ? json_integer (inst->monitor_pid)
                                                             : json_null ());
      cleanup_free char *dir = cl_mgr_instance_dir (m, inst->name);
      cleanup_free char *log = cl_strdup_printf ("%s/console.log", dir);
      json_object_set_new (o, "path", json_string (dir));
      json_object_set_new (o, "log", json_string (log));
      if (cl_mgr_snapshot_list (m, inst->name, &snaps, &ignored) < 0)
        cl_error_release (&ignored);
      else
        json_object_set_new (o, "snapshots", snaps);
      json_object_set_new (o, "network", cl_mgr_netglue_info (m, inst->name));
      json_t *vols = NULL;
      if (cl_mgr_volume_mounts (m, inst->name, &vols, &ignored) < 0)
        cl_error_release (&ignored);
      else
        json_object_set_new (o, "volumes", vols);
    }
  return o;
}

struct each
{
  cl_mgr_instance_fn fn;
  void *opaque;
  char **dead; /* recorded running, their monitor gone */
  size_t n_dead;
};

static void
check_running (void *opaque, struct instance *inst)
{
  struct each *e = opaque;

  if (!cl_mgr_proc_alive (inst->monitor_pid, inst->monitor_start))
    {
      e->dead = realloc (e->dead, (e->n_dead + 1) * sizeof *e->dead);
      if (e->dead == NULL)
        abort ();
      e->dead[e->n_dead++] = cl_xstrdup (inst->name);
    }
}

static void
each_summary (void *opaque, struct instance *inst)
{
  struct each *e = opaque;
  struct cl_instance_summary sum;

  instance_summary (inst, &sum);
  e->fn (e->opaque, &sum);
}

int
cl_mgr_instance_check (struct cl_manager *m, uint64_t *version, cl_error_t *err)
{
  struct each e = { NULL, NULL, NULL, 0 };
  unsigned int dv = 0;
  int r;

  /* the few recorded running checked against their processes (a pidfd
     each, see proc.c; only one whose monitor died is written, by
     cl_mgr_reconcile_instance) */
  r = cl_mgr_store_each (m, true, check_running, &e, err);
  for (size_t i = 0; i < e.n_dead; i++)
    {
      cleanup_instance struct instance *inst = NULL;
      cl_error_t ignored = NULL;
      if (r == 0
          && (cl_mgr_store_get (m, e.dead[i], &inst, &ignored) < 0
              || cl_mgr_reconcile_instance (m, inst, &ignored) < 0))
        cl_error_release (&ignored); /* shown as recorded */
      free (e.dead[i]);
    }
  free (e.dead);
  if (r < 0)
    return -1;
  /* the pager's data version: changed by any commit to the file, this
     handle's or another's, as seen by the read just made */
  if (version)
    {
      if (sqlite3_file_control (m->db, "main", SQLITE_FCNTL_DATA_VERSION, &dv) != SQLITE_OK)
        *version = 0;
      else
        *version = (uint64_t)m->serial << 32 | dv;
    }
  return 0;
}

int
cl_mgr_instance_rows (struct cl_manager *m, cl_mgr_instance_fn fn, void *opaque, cl_error_t *err)
{
  struct each e = { fn, opaque, NULL, 0 };

  /* one SELECT, its rows to fn as they come, without a copy */
  return cl_mgr_store_each (m, false, each_summary, &e, err);
}

int
cl_mgr_instance_each (struct cl_manager *m, cl_mgr_instance_fn fn, void *opaque, cl_error_t *err)
{
  if (cl_mgr_instance_check (m, NULL, err) < 0)
    return -1;
  return cl_mgr_instance_rows (m, fn, opaque, err);
}

static void
append_summary (void *opaque, const struct cl_instance_summary *s)
{
  json_array_append_new (opaque, summary_json (s));
}

int
cl_mgr_instance_list (struct cl_manager *m, json_t **out, cl_error_t *err)
{
  json_t *arr = json_array ();

  if (cl_mgr_instance_each (m, append_summary, arr, err) < 0)
    {
      json_decref (arr);
      return -1;
    }
  *out = arr;
  return 0;
}

int
cl_mgr_instance_info (struct cl_manager *m, const char *name, json_t **out, cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;

  if (cl_mgr_instance_load (m, name, &inst, err) < 0)
    return -1;
  *out = instance_json (m, inst, true);
  return 0;
}

int
cl_mgr_instance_exec (struct cl_manager *m, const char *name, char **argv, const char **env,
                      size_t n_env, enum cl_exec_tty tty, int *exit_code, cl_error_t *err)
{
  struct cl_exec_spec spec = { .argv = argv, .env = env, .n_env = n_env, .tty = tty };
  return cl_mgr_instance_exec_spec (m, name, &spec, exit_code, err);
}

int
cl_mgr_instance_exec_spec (struct cl_manager *m, const char *name, const struct cl_exec_spec *spec,
                           int *exit_code, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance struct instance *inst = NULL;

  /* the lock until the process has joined the container: a snapshot or
     a copy freezes it, a restore stops it, and an exec in between would
     fail half-way; the wait for the process holds no lock */
  if (cl_mgr_instance_lock (m, name, &lock, err) < 0
      || cl_mgr_instance_load (m, name, &inst, err) < 0)
    return -1;
  /* frozen: the command would hang frozen too */
  if (strcmp (inst->status, "running") != 0)
    return cl_mgr_not_running (err, name, inst->status);
  return cl_mgr_instance_ops (inst)->exec (m, inst, spec, &lock, exit_code, err);
}

int
cl_mgr_not_running (cl_error_t *err, const char *name, const char *status)
{
  if (status == NULL || strcmp (status, "stopped") == 0)
    return cl_error_raise (err, CL_ERR_CONFLICT, "instance `%s` is not running", name);
  return cl_error_raise (err, CL_ERR_CONFLICT, "instance `%s` is %s, not running", name, status);
}

int
cl_mgr_instance_log_path (struct cl_manager *m, const char *name, char **path, cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;

  if (cl_mgr_store_get (m, name, &inst, err) < 0)
    return -1;
  *path = cl_strdup_printf ("%s/instances/%s/console.log", m->root, name);
  return 0;
}

int
cl_mgr_instance_console (struct cl_manager *m, const char *name, int *exit_code, cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;
  char *sh[] = { "/bin/sh", NULL };

  if (cl_mgr_instance_load (m, name, &inst, err) < 0)
    return -1;
  if (cl_mgr_instance_ops (inst)->console)
    {
      if (!cl_mgr_instance_is_running (inst))
        return cl_error_raise (err, CL_ERR_CONFLICT, "instance `%s` is not running", name);
      return cl_mgr_instance_ops (inst)->console (m, inst, exit_code, err);
    }
  /* on a terminal, a pty of the container's (job control) */
  return cl_mgr_instance_exec (m, name, sh, NULL, 0,
                               isatty (0) && isatty (1) ? CL_EXEC_TTY_ON : CL_EXEC_TTY_AUTO,
                               exit_code, err);
}

int
cl_mgr_instance_config_set (struct cl_manager *m, const char *name, const char *key,
                            const char *value, cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  const struct instance_ops *ops;
  uint64_t memory = 0;
  unsigned cpus = 0;

  if (cl_mgr_instance_lock (m, name, &lock, err) < 0
      || cl_mgr_instance_load (m, name, &inst, err) < 0)
    return -1;
  if (value == NULL && (strcmp (key, "limits.memory") == 0 || strcmp (key, "limits.cpu") == 0))
    {
      /* back to the default: no limit (live: lifted) */
      bool mem = strcmp (key, "limits.memory") == 0;
      json_object_set_new (inst->config, mem ? "memory" : "cpus", json_integer (0));
      if (mem)
        memory = CL_MGR_LIMIT_NONE;
      else
        cpus = (unsigned)CL_MGR_LIMIT_NONE;
    }
  else if (strcmp (key, "limits.memory") == 0)
    {
      if (cl_parse_size (value, "limits.memory", &memory, err) < 0)
        return -1;
      if (memory < (4u << 20))
        return cl_error_raise (err, CL_ERR_INVALID, "limits.memory `%s`: at least 4M", value);
      json_object_set_new (inst->config, "memory", json_integer ((json_int_t)memory));
    }
  else if (strcmp (key, "limits.cpu") == 0)
    {
      char *end;
      unsigned long v = strtoul (value, &end, 10);
      if (*value == '\0' || *end || v == 0 || v > 256)
        return cl_error_raise (err, CL_ERR_INVALID,
                               "limits.cpu `%s`: expected a number of CPUs (1-256)", value);
      cpus = (unsigned)v;
      json_object_set_new (inst->config, "cpus", json_integer (cpus));
    }
  else
    return cl_error_raise (err, CL_ERR_INVALID, "unknown key `%s` (limits.memory, limits.cpu)",
                           key);
  ops = cl_mgr_instance_ops (inst);
  if (cl_mgr_instance_is_running (inst) && ops->set_limits
      && ops->set_limits (m, inst, memory, cpus, err) < 0)
    return cl_error_wrap (err, "apply %s live", key);
  return cl_mgr_store_set_config (m, name, inst->config, err);
}

int
cl_mgr_instance_copy (struct cl_manager *m, const char *src, const char *dst, cl_error_t *err)
{
  cleanup_instance struct instance *from = NULL;
  cleanup_instance struct instance *to = NULL;
  cleanup_free char *sdir = cl_mgr_instance_dir (m, src), *ddir = cl_mgr_instance_dir (m, dst);
  cleanup_instance_lock struct instance_lock lock1 = { .fd = -1 };
  cleanup_instance_lock struct instance_lock lock2 = { .fd = -1 };
  int64_t intent;
  int r;

  if (cl_validate_name (dst, "instance name", err) < 0)
    return -1;
  /* both locks, always in the same order: two crossed copies wait, never
     deadlock */
  if (strcmp (src, dst) != 0
      && (cl_mgr_instance_lock (m, strcmp (src, dst) < 0 ? src : dst, &lock1, err) < 0
          || cl_mgr_instance_lock (m, strcmp (src, dst) < 0 ? dst : src, &lock2, err) < 0))
    return -1;
  if (cl_mgr_instance_load (m, src, &from, err) < 0)
    return -1;
  to = cl_xmalloc0 (sizeof *to);
  to->name = cl_xstrdup (dst);
  to->kind = from->kind;
  to->image = cl_xstrdup (from->image);
  to->config = json_deep_copy (from->config);
  json_object_set_new (to->config, "ephemeral", json_false ());
  to->created = time (NULL);
  if (cl_mgr_store_create (m, to, "copy", &intent, err) < 0)
    return -1;
  r = cl_mgr_image_use (m, cl_mgr_instance_image_id (to), dst, err);
  if (r == 0)
    r = cl_mkdir_p (ddir, 0700, err);
  if (r == 0)
    r = cl_mgr_instance_ops (from)->copy (m, from, sdir, ddir, err);
  if (r == 0)
    r = cl_mgr_store_set_status (m, dst, "stopped", err);
  if (r == 0)
    r = cl_mgr_intent_end (m, intent, err);
  if (r < 0)
    instance_undo (m, dst, intent);
  return r;
}

int
cl_mgr_instance_image_in_use (struct cl_manager *m, const char *image, char **user, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;

  if (cl_db_prepare (m->db, "SELECT name FROM instances WHERE image = ? LIMIT 1", &s, err) < 0)
    return -1;
  sqlite3_bind_text (s, 1, image, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_ROW)
    return 0;
  *user = cl_xstrdup ((const char *)sqlite3_column_text (s, 0));
  return 1;
}

/* A running VM's live migration in: an empty sparse disk of the source's
   size (which the block migration fills), and its monitor started with
   the migration's listening socket instead of a boot; it records the
   instance running once the guest runs here. */
static int
receive_live (struct cl_manager *m, const char *name, const struct cl_mgr_live_in *live,
              cl_error_t *err)
{
  cleanup_free char *dir = cl_mgr_instance_dir (m, name);
  cleanup_free char *disk = cl_strdup_printf ("%s/disk.img", dir);
  cleanup_instance struct instance *inst = NULL;
  cleanup_close int fd = -1;

  if (live->listen_fd <= 0)
    return cl_error_raise (err, CL_ERR_INVALID, "live move of `%s`: no listening socket", name);
  fd = open (disk, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || ftruncate (fd, (off_t)live->disk_size) < 0)
    return cl_error_errno (err, "create `%s`", disk);
  if (cl_mgr_store_get (m, name, &inst, err) < 0)
    return -1;
  if (live->listening)
    live->listening (live->opaque);
  return cl_mgr_monitor_spawn (
      m, inst,
      &(struct start_opts){ .incoming_fd = live->listen_fd, .incoming_token = live->token }, NULL,
      err);
}

int
cl_mgr_instance_receive (struct cl_manager *m, const char *name, const char *kind, json_t *config,
                         const char *archive, char **image_layers, char **volumes,
                         const struct cl_mgr_live_in *live, cl_error_t *err)
{
  cleanup_instance struct instance *to = NULL;
  cleanup_image struct mgr_image *img = NULL;
  cleanup_free char *dir = cl_mgr_instance_dir (m, name);
  cleanup_free char *work = cl_strdup_printf ("%s/work", dir);
  cleanup_free char *rootfs = cl_strdup_printf ("%s/rootfs", dir);
  cleanup_free char *imgdir = cl_strdup_printf ("%s/image", dir);
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  const char *image_id = json_string_value (json_object_get (config, "image_id"));
  int64_t intent;
  int r;

  if (cl_validate_name (name, "instance name", err) < 0)
    return -1;
  if (strcmp (kind, "container") != 0 && strcmp (kind, "vm") != 0)
    return cl_error_raise (err, CL_ERR_INVALID, "kind: expected container or vm, got `%s`", kind);
  if (image_id == NULL)
    return cl_error_raise (err, CL_ERR_INVALID, "config.image_id: required field missing");
  if (cl_mgr_instance_lock (m, name, &lock, err) < 0)
    return -1;
  /* an image sent along is named by its id */
  if (image_layers == NULL && cl_mgr_image_resolve (m, image_id, &img, err) < 0)
    return -1;
  to = cl_xmalloc0 (sizeof *to);
  to->name = cl_xstrdup (name);
  to->kind = strcmp (kind, "vm") == 0 ? KIND_VM : KIND_CONTAINER;
  to->image = cl_xstrdup (img ? img->ref : image_id);
  to->status = cl_xstrdup ("creating");
  to->config = json_deep_copy (config);
  json_object_set_new (to->config, "ephemeral", json_false ());
  to->created = time (NULL);
  if (cl_mgr_store_create (m, to, "receive", &intent, err) < 0)
    return -1;
  r = cl_mkdir_p (dir, 0700, err);
  if (r == 0)
    r = cl_mgr_tree_extract (archive, dir, err);
  if (r == 0)
    cl_mgr_crash_point ("receive-extracted");
  if (r == 0 && image_layers)
    {
      r = cl_mgr_image_receive (m, imgdir, image_layers, image_id, err);
      if (cl_rm_rf (imgdir, r < 0 ? NULL : err) < 0)
        r = -1;
    }
  if (r == 0)
    r = cl_mgr_image_use (m, image_id, name, err);
  if (r == 0 && to->kind == KIND_CONTAINER)
    r = cl_mkdir_p (work, 0755, err) < 0 || cl_mkdir_p (rootfs, 0755, err) < 0 ? -1 : 0;
  if (r == 0 && volumes)
    {
      size_t n = 0;
      while (volumes[n])
        n++;
      r = cl_mgr_volume_attach_specs (m, name, (const char **)volumes, n, err);
    }
  if (r == 0 && live)
    r = receive_live (m, name, live, err); /* running when it returns 0 */
  else if (r == 0)
    r = cl_mgr_store_set_status (m, name, "stopped", err);
  if (r == 0)
    r = cl_mgr_intent_end (m, intent, err);
  if (r < 0)
    instance_undo (m, name, intent);
  return r;
}
