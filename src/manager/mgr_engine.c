/* SPDX-License-Identifier: Apache-2.0 */
/* mgr_engine.h over the container engine library (src/container): the
   manager builds the OCI config in memory and calls create + start, exec,
   update, pause/resume, delete; never the cloison-runtime binary. */
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "container/container.h"
#include "manager/manager.h"
#include "manager/mgr_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static json_t *
strv_json (char **v)
{
  json_t *a = json_array ();
  for (; v && *v; v++)
    json_array_append_new (a, json_string (*v));
  return a;
}

static json_t *
resources_json (uint64_t memory, unsigned cpus)
{
  json_t *r = json_object ();
  /* CL_MGR_LIMIT_NONE: the limit lifted (-1, as in the OCI spec) */
  if (memory)
    json_object_set_new (
        r, "memory",
        json_pack ("{s:I}", "limit", memory == CL_MGR_LIMIT_NONE ? -1 : (json_int_t)memory));
  if (cpus)
    json_object_set_new (
        r, "cpu",
        json_pack ("{s:I, s:I}", "quota",
                   cpus == (unsigned)CL_MGR_LIMIT_NONE ? -1 : (json_int_t)cpus * 100000, "period",
                   (json_int_t)100000));
  return r;
}

static json_t *
container_config (const struct engine_spec *s)
{
  json_t *spec = cl_ctr_default_spec (false);
  json_t *process = json_object_get (spec, "process");
  json_t *root = json_object_get (spec, "root");
  json_t *linux_obj = json_object_get (spec, "linux");
  json_t *res = json_object_get (linux_obj, "resources");
  json_t *limits = resources_json (s->memory, s->cpus);

  json_object_set_new (process, "terminal", json_false ());
  json_object_set_new (process, "args", strv_json (s->argv));
  json_object_set_new (process, "env", strv_json (s->env));
  json_object_set_new (process, "cwd", json_string (s->cwd ? s->cwd : "/"));
  json_object_set_new (root, "path", json_string (s->rootfs));
  json_object_set_new (root, "readonly", json_false ());
  json_object_set_new (spec, "hostname", json_string (s->hostname));
  json_object_set_new (linux_obj, "cgroupsPath",
                       json_string_nocheck (cl_strdup_printf ("/cloison/%s", s->id)));
  json_object_update (res, limits);
  json_decref (limits);
  if (json_array_size (s->mounts))
    {
      json_t *mounts = json_object_get (spec, "mounts"), *e;
      size_t i;
      json_array_foreach (s->mounts, i, e)
      {
        bool ro = json_is_true (json_object_get (e, "readonly"));
        json_array_append_new (mounts, json_pack ("{s:O, s:s, s:O, s:[s, s]}", "destination",
                                                  json_object_get (e, "path"), "type", "bind",
                                                  "source", json_object_get (e, "source"),
                                                  "options", "rbind", ro ? "ro" : "rw"));
      }
    }
  return spec;
}

static bool
exists (const char *root, const char *id)
{
  cleanup_free char *p = cl_strdup_printf ("%s/%s", root, id);
  return access (p, F_OK) == 0;
}

int
cl_mgr_engine_start (const struct engine_spec *s, pid_t *pid, cl_error_t *err)
{
  cleanup_json json_t *config = container_config (s);
  cleanup_json json_t *state = NULL;
  struct cl_container_create_opts o = { .bundle = s->bundle, .config = config, .stdio = s->stdio };
  json_int_t p = 0;

  if (cl_mkdir_p (s->root, 0700, err) < 0)
    return -1;
  /* a container of a former run of this instance that was not removed
     (its monitor was killed) */
  if (exists (s->root, s->id) && cl_mgr_engine_destroy (s->root, s->id, err) < 0)
    return -1;
  if (cl_ctr_create (s->root, s->id, &o, err) < 0)
    return -1;
  if (cl_ctr_state (s->root, s->id, &state, err) < 0)
    goto fail;
  p = json_integer_value (json_object_get (state, "pid"));
  if (p <= 0)
    {
      cl_error_make (err, 0, "container `%s`: no init pid in its state", s->id);
      goto fail;
    }
  if ((s->before_exec && s->before_exec (s->opaque, (pid_t)p, err) < 0)
      || cl_ctr_start (s->root, s->id, err) < 0)
    goto fail;
  *pid = (pid_t)p;
  return 0;
fail:
  {
    cl_error_t ignored = NULL;
    if (cl_ctr_delete (s->root, s->id, true, &ignored) < 0)
      cl_error_release (&ignored);
  }
  return -1;
}

int
cl_mgr_engine_exec (const char *root, const char *id, const struct engine_exec *e, int *exit_code,
                    cl_error_t *err)
{
  struct cl_container_exec_opts o = {
    .args = (const char *const *)e->argv,
    .env = (const char *const *)e->env,
    .cwd = e->cwd,
    .user = e->user,
    .tty = e->tty,
    .started = e->started,
    .started_opaque = e->opaque,
  };
  return cl_ctr_exec (root, id, &o, exit_code, err);
}

int
cl_mgr_engine_set_limits (const char *root, const char *id, uint64_t memory, unsigned cpus,
                          cl_error_t *err)
{
  cleanup_json json_t *res = resources_json (memory, cpus);
  return cl_ctr_update (root, id, res, err);
}

int
cl_mgr_engine_destroy (const char *root, const char *id, cl_error_t *err)
{
  if (!exists (root, id))
    return 0;
  return cl_ctr_delete (root, id, true, err);
}

int
cl_mgr_engine_freeze (const char *root, const char *id, int frozen, cl_error_t *err)
{
  return frozen ? cl_ctr_pause (root, id, err) : cl_ctr_resume (root, id, err);
}

int
cl_mgr_engine_thaw (const char *root, const char *id, cl_error_t *err)
{
  return exists (root, id) ? cl_ctr_thaw (root, id, err) : 0;
}

/* The container's console (INSTANCE/console.log, its stdout and stderr
   when detached) is a file of no mount of the container's: CRIU takes it
   as an external file (`file[MNT_ID:INODE]`, the key kept in the images
   as CONSOLE_KEY) and is handed it again at restore (--inherit-fd). */
#define CONSOLE_KEY "cloison-console"

static char *
console_key (const struct engine_spec *s, pid_t pid)
{
  cleanup_free char *log = cl_strdup_printf ("%s/console.log", s->bundle);
  struct stat want, got;

  if (stat (log, &want) < 0)
    return NULL;
  for (int fd = 0; fd < 3; fd++)
    {
      cleanup_free char *path = cl_strdup_printf ("/proc/%d/fd/%d", (int)pid, fd);
      cleanup_free char *info = cl_strdup_printf ("/proc/%d/fdinfo/%d", (int)pid, fd);
      cleanup_free char *text = NULL;
      cl_error_t ignored = NULL;
      size_t len;
      const char *mnt;
      if (stat (path, &got) < 0 || got.st_dev != want.st_dev || got.st_ino != want.st_ino)
        continue;
      if (cl_read_file (info, &text, &len, &ignored) < 0)
        {
          cl_error_release (&ignored);
          return NULL;
        }
      mnt = strstr (text, "mnt_id:");
      if (mnt == NULL)
        return NULL;
      return cl_strdup_printf ("file[%x:%llx]", (unsigned)strtoul (mnt + 7, NULL, 10),
                               (unsigned long long)got.st_ino);
    }
  return NULL;
}

/* CRIU's logs and work files beside its images, IMAGE_DIR.log (kept
   out of what a snapshot restore or a move reads). */
static char *
criu_work (const char *image_dir)
{
  return cl_strdup_printf ("%s.log", image_dir);
}

int
cl_mgr_engine_criu_check (const char *root, cl_error_t *err)
{
  return cl_ctr_criu_check (NULL, root, err);
}

int
cl_mgr_engine_checkpoint (const struct engine_spec *s, const char *image_dir, bool leave_running,
                          cl_error_t *err)
{
  cleanup_json json_t *config = container_config (s);
  cleanup_free char *work = criu_work (image_dir);
  cleanup_json json_t *state = NULL;
  cleanup_free char *key = NULL, *keyfile = cl_strdup_printf ("%s/" CONSOLE_KEY, image_dir);
  cleanup_free char *ext = NULL;
  char *extra[2] = { NULL, NULL };
  struct cl_container_checkpoint_opts o = { .image_path = image_dir,
                                            .work_path = work,
                                            .leave_running = leave_running,
                                            .config = config,
                                            .extra_args = extra,
                                            .external_netns = s->net_external };

  if (cl_ctr_state (s->root, s->id, &state, err) < 0)
    return -1;
  key = console_key (s, (pid_t)json_integer_value (json_object_get (state, "pid")));
  if (key)
    extra[0] = ext = cl_strdup_printf ("--external=%s", key);
  if (cl_ctr_checkpoint (s->root, s->id, &o, err) < 0)
    return -1;
  return key ? cl_write_file (keyfile, key, strlen (key), 1, err) : 0;
}

int
cl_mgr_engine_restore (const struct engine_spec *s, const char *image_dir, pid_t *pid,
                       cl_error_t *err)
{
  cleanup_json json_t *config = container_config (s);
  cleanup_json json_t *state = NULL;
  cleanup_free char *work = criu_work (image_dir);
  cleanup_free char *keyfile = cl_strdup_printf ("%s/" CONSOLE_KEY, image_dir);
  cleanup_free char *log = cl_strdup_printf ("%s/console.log", s->bundle);
  cleanup_free char *key = NULL, *inherit = NULL;
  cleanup_close int logfd = -1;
  char *extra[2] = { NULL, NULL };
  struct cl_container_checkpoint_opts o = { .image_path = image_dir,
                                            .work_path = work,
                                            .bundle = s->bundle,
                                            .config = config,
                                            .rootfs = s->rootfs,
                                            .extra_args = extra,
                                            .netns = s->netns };
  json_int_t p;
  size_t len;

  if (access (keyfile, F_OK) == 0)
    {
      /* criu inherits it (no O_CLOEXEC) */
      if (cl_read_file (keyfile, &key, &len, err) < 0)
        return -1;
      logfd = open (log, O_WRONLY | O_APPEND | O_CREAT, 0640);
      if (logfd < 0)
        return cl_error_errno (err, "open `%s`", log);
      extra[0] = inherit = cl_strdup_printf ("--inherit-fd=fd[%d]:%s", logfd, key);
    }

  if (cl_mkdir_p (s->root, 0700, err) < 0)
    return -1;
  if (exists (s->root, s->id) && cl_mgr_engine_destroy (s->root, s->id, err) < 0)
    return -1;
  if (cl_mkdir_p (work, 0700, err) < 0 || cl_ctr_restore (s->root, s->id, &o, err) < 0)
    return -1;
  /* a stateful snapshot dumps the container frozen, and CRIU restores it
     so: it runs again now */
  if (cl_ctr_thaw (s->root, s->id, err) < 0)
    {
      cl_error_t ignored = NULL;
      if (cl_mgr_engine_destroy (s->root, s->id, &ignored) < 0)
        cl_error_release (&ignored);
      return -1;
    }
  if (cl_ctr_state (s->root, s->id, &state, err) < 0)
    return -1;
  p = json_integer_value (json_object_get (state, "pid"));
  if (p <= 0)
    return cl_error_make (err, 0, "container `%s`: no init pid after its restore", s->id);
  *pid = (pid_t)p;
  return 0;
}
