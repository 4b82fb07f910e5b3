/* Instance life cycle: launch, start, stop, delete, list, exec, config,
   copy.  Each multi-step change records an intent first (store.c), so
   that reconcile.c can finish or undo it after a crash. */
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "manager/engine.h"
#include "manager/images.h"
#include "manager/internal.h"
#include "manager/netglue.h"
#include "manager/vm.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FORCED_STOP_WAIT_MS 10000
#define POWER_BUTTON_REPEAT_MS 2000

static json_t *
strv_to_json (const char *const *v, size_t n)
{
  json_t *a = json_array ();
  for (size_t i = 0; i < n; i++)
    json_array_append_new (a, json_string (v[i]));
  return a;
}

static int
launch_validate (const struct cl_launch_opts *o, cl_error_t *err)
{
  if (cl_validate_name (o->name, "instance name", err) < 0)
    return -1;
  for (size_t i = 0; i < o->n_env; i++)
    if (strchr (o->env[i], '=') == NULL || o->env[i][0] == '=')
      return cl_error_make (err, 0, "--env `%s`: expected KEY=VALUE", o->env[i]);
  for (size_t i = 0; i < o->n_networks; i++)
    if (cl_validate_name (o->networks[i], "network name", err) < 0)
      return -1;
  if (o->no_network && o->n_networks)
    return cl_error_make (err, 0, "--no-network and --network exclude each other");
  for (size_t i = 0; i < o->n_ports; i++)
    if (netglue_check_port (o->ports[i], err) < 0)
      return -1;
  if (o->no_network && o->n_ports)
    return cl_error_make (err, 0, "-p needs a network (remove --no-network)");
  if (o->cpus > 256)
    return cl_error_make (err, 0, "invalid --cpus `%u`: at most 256", o->cpus);
  return 0;
}

static json_t *
launch_config (const struct cl_launch_opts *o, bool ephemeral)
{
  json_t *c = json_object ();
  json_object_set_new (c, "cpus", json_integer (o->cpus));
  json_object_set_new (c, "memory", json_integer ((json_int_t)o->memory));
  json_object_set_new (c, "disk_size", json_integer ((json_int_t)o->disk_size));
  json_object_set_new (c, "env", strv_to_json (o->env, o->n_env));
  json_object_set_new (c, "networks", strv_to_json (o->networks, o->n_networks));
  json_object_set_new (c, "no_network", json_boolean (o->no_network));
  json_object_set_new (c, "ports", strv_to_json (o->ports, o->n_ports));
  if (o->argv && o->argc)
    json_object_set_new (c, "command", strv_to_json ((const char *const *)o->argv, o->argc));
  if (o->kernel)
    json_object_set_new (c, "kernel", json_string (o->kernel));
  if (o->initrd)
    json_object_set_new (c, "initrd", json_string (o->initrd));
  if (o->cmdline)
    json_object_set_new (c, "cmdline", json_string (o->cmdline));
  json_object_set_new (c, "ephemeral", json_boolean (ephemeral));
  return c;
}

/* The instance's files: containers an overlay's upper/work dirs and the
   mount point, VMs their disk. */
static int
instance_files_create (struct cl_manager *m, struct instance *inst, struct mgr_image *img,
                       cl_error_t *err)
{
  cleanup_free char *dir = instance_dir (m, inst->name);

  if (inst->kind == KIND_VM)
    {
      if (cl_mkdir_p (dir, 0700, err) < 0)
        return -1;
      return vm_disk_create (m, inst, img, err);
    }
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

/* On a failure path: removes the instance and its intent; what cannot be
   removed now is left to the recovery (the intent stays then). */
static void
instance_undo (struct cl_manager *m, const char *name, int64_t intent)
{
  cl_error_t ignored = NULL;
  if (instance_destroy (m, name, intent, &ignored) < 0)
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

  if (launch_validate (o, err) < 0 || image_resolve (m, o->image, &img, err) < 0)
    return -1;
  inst = cl_xmalloc0 (sizeof *inst);
  inst->name = strdup (o->name);
  inst->kind = o->vm ? KIND_VM : KIND_CONTAINER;
  inst->image = strdup (img->ref);
  inst->status = strdup ("creating");
  inst->config = launch_config (o, ephemeral);
  json_object_set_new (inst->config, "image_id", json_string (img->id));
  inst->created = time (NULL);
  if (store_create (m, inst, op, intent, err) < 0)
    return -1;
  if (image_use (m, img->id, inst->name, err) < 0 || instance_files_create (m, inst, img, err) < 0
      || store_set_status (m, inst->name, "stopped", err) < 0)
    {
      instance_undo (m, inst->name, *intent);
      return -1;
    }
  free (inst->status);
  inst->status = strdup ("stopped");
  *out = steal_pointer (&inst);
  return 0;
}

int
cl_instance_launch (struct cl_manager *m, const struct cl_launch_opts *o, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance struct instance *inst = NULL;
  int64_t intent;

  if (cl_validate_name (o->name, "instance name", err) < 0
      || instance_lock (m, o->name, &lock, err) < 0
      || instance_create (m, o, false, "launch", &inst, &intent, err) < 0)
    return -1;
  /* a launch that cannot record its end fails whole: an intent left
     behind would make the recovery destroy what we reported launched */
  if (monitor_spawn (m, inst, false, NULL, err) < 0 || intent_end (m, intent, err) < 0)
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
cl_instance_run (struct cl_manager *m, const struct cl_launch_opts *o, int *exit_code,
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
      || instance_lock (m, o->name, &lock, err) < 0
      || instance_create (m, o, true, "run", &inst, &intent, err) < 0)
    return -1;
  if (monitor_spawn (m, inst, true, &monitor, err) < 0)
    {
      r = -1;
      goto out;
    }
  /* while the workload runs, others may stop or delete it: the intent
     stays ours (this process is alive), the lock does not */
  instance_unlock (&lock);
  if (store_get (m, inst->name, &after, err) < 0)
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
  instance_free (steal_pointer (&after));
  if (store_get (m, inst->name, &after, err) < 0)
    {
      r = -1;
      goto out;
    }
  *exit_code = after->has_exit_code ? after->exit_code : 255;
out:
  if (lock.fd < 0)
    {
      cl_error_t ignored = NULL;
      if (instance_lock (m, inst->name, &lock, &ignored) < 0)
        {
          cl_error_release (&ignored);
          return r; /* the intent stays: the recovery removes the rest */
        }
    }
  instance_undo (m, inst->name, intent);
  return r;
}

/* Refreshes *inst from the store after reconciling it with what runs. */
static int
instance_load (struct cl_manager *m, const char *name, struct instance **out, cl_error_t *err)
{
  struct instance *inst;

  if (store_get (m, name, &inst, err) < 0)
    return -1;
  if (reconcile_instance (m, inst, err) < 0)
    {
      instance_free (inst);
      return -1;
    }
  *out = inst;
  return 0;
}

static bool
is_running (struct instance *inst)
{
  return strcmp (inst->status, "running") == 0;
}

int
instance_start (struct cl_manager *m, const char *name, cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;
  int64_t intent;

  if (instance_load (m, name, &inst, err) < 0)
    return -1;
  if (is_running (inst))
    return cl_error_make (err, 0, "instance `%s` is already running", name);
  if (strcmp (inst->status, "stopped") != 0)
    return cl_error_make (err, 0, "instance `%s` is %s", name, inst->status);
  if (intent_begin (m, "start", name, NULL, &intent, err) < 0)
    return -1;
  if (monitor_spawn (m, inst, false, NULL, err) < 0)
    {
      intent_abandon (m, intent);
      return -1;
    }
  return intent_end (m, intent, err);
}

int
cl_instance_start (struct cl_manager *m, const char *name, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };

  if (instance_lock (m, name, &lock, err) < 0)
    return -1;
  return instance_start (m, name, err);
}

/* Signals the workload's process (container init, VMM child) if it is
   still the one we started. */
static void
signal_workload (struct instance *inst, int sig)
{
  if (inst->init_pid > 0 && proc_alive (inst->init_pid, inst->init_start))
    kill (inst->init_pid, sig);
}

static bool
vm_power_button (struct cl_manager *m, struct instance *inst)
{
  cleanup_free char *dir = instance_dir (m, inst->name);
  cleanup_free char *sock = cl_strdup_printf ("%s/api.sock", dir);
  cl_error_t err = NULL;

  if (vm_api_power_button (sock, &err) == 0)
    return true;
  cl_debug ("instance `%s`: power button: %s", inst->name, err->msg);
  cl_error_release (&err);
  return false;
}

/* Stops whatever runs for the instance; graceful for timeout_ms first
   (0: forced at once).  The monitor records the exit; when it is gone
   too, this records it. */
static int
instance_halt (struct cl_manager *m, struct instance *inst, int timeout_ms, cl_error_t *err)
{
  cleanup_free char *id = instance_global_id (m, inst->name);
  cleanup_free char *eroot = engine_root (m);
  bool monitor_alive = proc_alive (inst->monitor_pid, inst->monitor_start);

  /* a frozen container (a snapshot killed midway, before its recovery
     ran) would take no signal, not even SIGKILL under cgroup v1 */
  if (monitor_alive && inst->kind == KIND_CONTAINER)
    {
      cl_error_t ignored = NULL;
      if (engine_thaw (eroot, id, &ignored) < 0)
        cl_error_release (&ignored);
    }
  if (monitor_alive && timeout_ms > 0)
    {
      /* a VM is asked through its power button: SIGTERM would stop the
         VMM at once, before the guest wrote back its disk.  Pressed again
         every 2 s: a guest still booting has not enabled it yet. */
      if (inst->kind == KIND_VM && vm_power_button (m, inst))
        {
          for (int left = timeout_ms; left > 0; left -= POWER_BUTTON_REPEAT_MS)
            {
              int wait = left < POWER_BUTTON_REPEAT_MS ? left : POWER_BUTTON_REPEAT_MS;
              if (proc_wait_exit (inst->monitor_pid, inst->monitor_start, wait))
                return 0;
              vm_power_button (m, inst); /* fails once the VM is stopping */
            }
          cl_warn ("instance `%s`: the guest did not shut down within %d s; stopping the VM",
                   inst->name, timeout_ms / 1000);
          timeout_ms = FORCED_STOP_WAIT_MS;
        }
      signal_workload (inst, SIGTERM);
      if (proc_wait_exit (inst->monitor_pid, inst->monitor_start, timeout_ms))
        return 0;
    }
  if (monitor_alive)
    {
      signal_workload (inst, SIGKILL);
      if (proc_wait_exit (inst->monitor_pid, inst->monitor_start, FORCED_STOP_WAIT_MS))
        return 0;
      cl_warn ("instance `%s`: the monitor did not exit; killing it", inst->name);
      kill (inst->monitor_pid, SIGKILL);
      proc_wait_exit (inst->monitor_pid, inst->monitor_start, FORCED_STOP_WAIT_MS);
    }
  signal_workload (inst, SIGKILL);
  if (inst->kind == KIND_CONTAINER && engine_destroy (eroot, id, err) < 0)
    return -1;
  return store_set_stopped (m, inst->name, false, 0, err);
}

int
instance_stop (struct cl_manager *m, const char *name, int timeout_s, bool force, cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;

  if (instance_load (m, name, &inst, err) < 0)
    return -1;
  if (!is_running (inst))
    return cl_error_make (err, 0, "instance `%s` is not running", name);
  return instance_halt (m, inst, force ? 0 : timeout_s * 1000, err);
}

int
cl_instance_stop (struct cl_manager *m, const char *name, int timeout_s, bool force,
                  cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };

  if (instance_lock (m, name, &lock, err) < 0)
    return -1;
  return instance_stop (m, name, timeout_s, force, err);
}

int
cl_instance_restart (struct cl_manager *m, const char *name, int timeout_s, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance struct instance *inst = NULL;

  if (instance_lock (m, name, &lock, err) < 0 || instance_load (m, name, &inst, err) < 0)
    return -1;
  if (is_running (inst) && instance_halt (m, inst, timeout_s * 1000, err) < 0)
    return -1;
  return instance_start (m, name, err);
}

int
instance_destroy (struct cl_manager *m, const char *name, int64_t intent, cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;
  cleanup_free char *dir = instance_dir (m, name);
  cleanup_free char *id = instance_global_id (m, name);
  cleanup_free char *eroot = engine_root (m);
  cl_error_t ignored = NULL;

  if (store_get (m, name, &inst, &ignored) < 0)
    cl_error_release (&ignored);
  if (inst)
    {
      if (proc_alive (inst->monitor_pid, inst->monitor_start)
          || proc_alive (inst->init_pid, inst->init_start))
        if (instance_halt (m, inst, 0, err) < 0)
          return -1;
      image_unuse (m, instance_image_id (inst), name);
    }
  if (engine_destroy (eroot, id, err) < 0)
    return -1;
  if (netglue_detach (m, name, err) < 0)
    return -1;
  if (cl_rm_rf (dir, err) < 0)
    return -1;
  return store_delete (m, name, intent, err);
}

int
cl_instance_delete (struct cl_manager *m, const char *name, bool force, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  cleanup_instance struct instance *inst = NULL;
  int64_t intent;

  if (instance_lock (m, name, &lock, err) < 0 || instance_load (m, name, &inst, err) < 0)
    return -1;
  if (is_running (inst) && !force)
    return cl_error_make (err, 0, "instance `%s` is running: stop it first or use --force", name);
  if (intent_begin (m, "delete", name, NULL, &intent, err) < 0)
    return -1;
  /* the row and the intent go in one transaction */
  if (instance_destroy (m, name, intent, err) < 0)
    {
      intent_abandon (m, intent);
      return -1;
    }
  return 0;
}

static json_t *
instance_json (struct cl_manager *m, struct instance *inst, bool detailed)
{
  json_t *o = json_object ();

  json_object_set_new (o, "name", json_string (inst->name));
  json_object_set_new (o, "kind", json_string (inst->kind == KIND_VM ? "vm" : "container"));
  json_object_set_new (o, "image", json_string (inst->image));
  json_object_set_new (o, "status", json_string (inst->status));
  json_object_set_new (o, "created", json_integer (inst->created));
  json_object_set_new (o, "pid", is_running (inst) ? json_integer (inst->init_pid) : json_null ());
  json_object_set_new (o, "exit_code",
                       inst->has_exit_code ? json_integer (inst->exit_code) : json_null ());
  if (detailed)
    {
      json_t *snaps = NULL;
      cl_error_t ignored = NULL;
      json_object_set (o, "config", inst->config);
      json_object_set_new (o, "monitor_pid",
                           is_running (inst) ? json_integer (inst->monitor_pid) : json_null ());
      cleanup_free char *dir = instance_dir (m, inst->name);
      cleanup_free char *log = cl_strdup_printf ("%s/console.log", dir);
      json_object_set_new (o, "path", json_string (dir));
      json_object_set_new (o, "log", json_string (log));
      if (cl_snapshot_list (m, inst->name, &snaps, &ignored) < 0)
        cl_error_release (&ignored);
      else
        json_object_set_new (o, "snapshots", snaps);
      json_object_set_new (o, "network", netglue_info (m, inst->name));
    }
  return o;
}

int
cl_instance_list (struct cl_manager *m, json_t **out, cl_error_t *err)
{
  char **names;
  json_t *arr = json_array ();

  if (store_names (m, &names, err) < 0)
    {
      json_decref (arr);
      return -1;
    }
  for (char **n = names; *n; n++)
    {
      struct instance *inst;
      cl_error_t ignored = NULL;
      if (instance_load (m, *n, &inst, &ignored) < 0)
        {
          cl_error_release (&ignored); /* deleted meanwhile */
          continue;
        }
      json_array_append_new (arr, instance_json (m, inst, false));
      instance_free (inst);
    }
  {
    /* networks: free what instances that no longer exist left behind */
    cl_error_t ignored = NULL;
    if (netglue_cleanup (m, &ignored) < 0)
      {
        cl_warn ("network cleanup: %s", ignored->msg);
        cl_error_release (&ignored);
      }
  }
  for (char **n = names; *n; n++)
    free (*n);
  free (names);
  *out = arr;
  return 0;
}

int
cl_instance_info (struct cl_manager *m, const char *name, json_t **out, cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;

  if (instance_load (m, name, &inst, err) < 0)
    return -1;
  *out = instance_json (m, inst, true);
  return 0;
}

int
cl_instance_exec (struct cl_manager *m, const char *name, char **argv, const char **env,
                  size_t n_env, enum cl_exec_tty tty, int *exit_code, cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;
  cleanup_free char *id = instance_global_id (m, name);
  cleanup_free char *eroot = engine_root (m);
  char **extra;
  int r;

  if (instance_load (m, name, &inst, err) < 0)
    return -1;
  if (!is_running (inst))
    return cl_error_make (err, 0, "instance `%s` is not running", name);
  if (inst->kind == KIND_VM)
    return vm_exec (m, inst, argv, env, n_env, tty, exit_code, err);
  extra = cl_xmalloc0 ((n_env + 1) * sizeof *extra);
  for (size_t i = 0; i < n_env; i++)
    extra[i] = (char *)env[i];
  r = engine_exec (eroot, id, argv, extra, exit_code, err);
  free (extra);
  return r;
}

int
cl_instance_log_path (struct cl_manager *m, const char *name, char **path, cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;

  if (store_get (m, name, &inst, err) < 0)
    return -1;
  *path = cl_strdup_printf ("%s/instances/%s/console.log", m->root, name);
  return 0;
}

int
cl_instance_console (struct cl_manager *m, const char *name, int *exit_code, cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;
  char *sh[] = { "/bin/sh", NULL };

  if (instance_load (m, name, &inst, err) < 0)
    return -1;
  if (inst->kind == KIND_VM)
    {
      if (!is_running (inst))
        return cl_error_make (err, 0, "instance `%s` is not running", name);
      return vm_console (m, inst, exit_code, err);
    }
  return cl_instance_exec (m, name, sh, NULL, 0, CL_EXEC_TTY_AUTO, exit_code, err);
}

int
cl_instance_config_set (struct cl_manager *m, const char *name, const char *key, const char *value,
                        cl_error_t *err)
{
  cleanup_instance struct instance *inst = NULL;
  cleanup_free char *id = instance_global_id (m, name);
  cleanup_free char *eroot = engine_root (m);
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  uint64_t memory = 0;
  unsigned cpus = 0;

  if (instance_lock (m, name, &lock, err) < 0 || instance_load (m, name, &inst, err) < 0)
    return -1;
  if (strcmp (key, "limits.memory") == 0)
    {
      if (cl_parse_size (value, "limits.memory", &memory, err) < 0)
        return -1;
      if (memory < (4u << 20))
        return cl_error_make (err, 0, "limits.memory `%s`: at least 4M", value);
      json_object_set_new (inst->config, "memory", json_integer ((json_int_t)memory));
    }
  else if (strcmp (key, "limits.cpu") == 0)
    {
      char *end;
      unsigned long v = strtoul (value, &end, 10);
      if (*value == '\0' || *end || v == 0 || v > 256)
        return cl_error_make (err, 0, "limits.cpu `%s`: expected a number of CPUs (1-256)", value);
      cpus = (unsigned)v;
      json_object_set_new (inst->config, "cpus", json_integer (cpus));
    }
  else
    return cl_error_make (err, 0, "unknown key `%s` (limits.memory, limits.cpu)", key);
  if (is_running (inst) && inst->kind == KIND_CONTAINER
      && engine_set_limits (eroot, id, memory, cpus, err) < 0)
    return cl_error_wrap (err, "apply %s live", key);
  return store_set_config (m, name, inst->config, err);
}

int
cl_instance_copy (struct cl_manager *m, const char *src, const char *dst, cl_error_t *err)
{
  cleanup_instance struct instance *from = NULL;
  cleanup_instance struct instance *to = NULL;
  cleanup_free char *sdir = NULL, *ddir = NULL, *sid = NULL;
  cleanup_free char *eroot = engine_root (m);
  cleanup_instance_lock struct instance_lock lock1 = { .fd = -1 };
  cleanup_instance_lock struct instance_lock lock2 = { .fd = -1 };
  int64_t intent;
  int r;

  if (cl_validate_name (dst, "instance name", err) < 0)
    return -1;
  /* both locks, always in the same order: two crossed copies wait, never
     deadlock */
  if (strcmp (src, dst) != 0
      && (instance_lock (m, strcmp (src, dst) < 0 ? src : dst, &lock1, err) < 0
          || instance_lock (m, strcmp (src, dst) < 0 ? dst : src, &lock2, err) < 0))
    return -1;
  if (instance_load (m, src, &from, err) < 0)
    return -1;
  to = cl_xmalloc0 (sizeof *to);
  to->name = strdup (dst);
  to->kind = from->kind;
  to->image = strdup (from->image);
  to->config = json_deep_copy (from->config);
  json_object_set_new (to->config, "ephemeral", json_false ());
  to->created = time (NULL);
  if (store_create (m, to, "copy", &intent, err) < 0)
    return -1;
  sdir = instance_dir (m, src);
  ddir = instance_dir (m, dst);
  sid = instance_global_id (m, src);
  r = image_use (m, instance_image_id (to), dst, err);
  if (r == 0 && to->kind == KIND_CONTAINER)
    {
      cleanup_free char *su = cl_strdup_printf ("%s/upper", sdir);
      cleanup_free char *du = cl_strdup_printf ("%s/upper", ddir);
      cleanup_free char *dw = cl_strdup_printf ("%s/work", ddir);
      cleanup_free char *dr = cl_strdup_printf ("%s/rootfs", ddir);
      bool frozen = is_running (from) && engine_freeze (eroot, sid, 1, err) == 0;
      r = cl_mkdir_p (ddir, 0700, err);
      if (r == 0)
        r = tree_copy (su, du, err);
      if (frozen)
        {
          cl_error_t ignored = NULL;
          if (engine_freeze (eroot, sid, 0, &ignored) < 0)
            cl_error_release (&ignored);
        }
      if (r == 0)
        r = cl_mkdir_p (dw, 0755, err) < 0 || cl_mkdir_p (dr, 0755, err) < 0 ? -1 : 0;
    }
  else if (r == 0)
    r = vm_disk_copy (m, from, dst, err);
  if (r == 0)
    r = store_set_status (m, dst, "stopped", err);
  if (r == 0)
    r = intent_end (m, intent, err);
  if (r < 0)
    instance_undo (m, dst, intent);
  return r;
}

int
cl_instance_image_in_use (struct cl_manager *m, const char *image, char **user, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;

  if (cl_db_prepare (m->db, "SELECT name FROM instances WHERE image = ? LIMIT 1", &s, err) < 0)
    return -1;
  sqlite3_bind_text (s, 1, image, -1, SQLITE_STATIC);
  if (sqlite3_step (s) != SQLITE_ROW)
    return 0;
  *user = strdup ((const char *)sqlite3_column_text (s, 0));
  return 1;
}
