/* SPDX-License-Identifier: Apache-2.0 */
#include "container/ctr_state.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "container/container.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *
cl_ctr_state_root (const char *root)
{
  static char user_root[4096];
  const char *xdg;

  if (root && *root)
    return root;
  /* Rootless, as runc: under $XDG_RUNTIME_DIR. */
  if (geteuid () != 0 && (xdg = getenv ("XDG_RUNTIME_DIR")) && *xdg)
    {
      snprintf (user_root, sizeof user_root, "%s/cloison-runtime", xdg);
      return user_root;
    }
  return CL_CONTAINER_DEFAULT_ROOT;
}

int
cl_ctr_state_dir_create (const char *root, const char *id, char **dir, cl_error_t *err)
{
  cleanup_free char *d = NULL;

  if (cl_validate_name (id, "container id", err) < 0)
    return -1;
  root = cl_ctr_state_root (root);
  if (mkdir (root, 0711) < 0 && errno != EEXIST)
    {
      if (errno != ENOENT || cl_mkdir_p (root, 0711, err) < 0)
        return cl_error_errno (err, "state root `%s`", root);
    }
  d = cl_strdup_printf ("%s/%s", root, id);
  if (mkdir (d, 0700) < 0)
    {
      if (errno == EEXIST)
        return cl_error_make (err, 0, "container `%s` already exists", id);
      return cl_error_errno (err, "mkdir `%s`", d);
    }
  *dir = steal_pointer (&d);
  return 0;
}

int
cl_ctr_state_load (const char *root, const char *id, struct container_state *st, cl_error_t *err)
{
  cleanup_free char *path = NULL;
  cleanup_free char *buf = NULL;
  json_error_t je;
  json_int_t v;

  memset (st, 0, sizeof *st);
  if (cl_validate_name (id, "container id", err) < 0)
    return -1;
  st->dir = cl_strdup_printf ("%s/%s", cl_ctr_state_root (root), id);
  path = cl_strdup_printf ("%s/state.json", st->dir);
  {
    cl_error_t e = NULL;
    if (cl_read_file (path, &buf, NULL, &e) < 0)
      {
        int status = e->status;
        cl_error_release (&e);
        cl_ctr_state_release (st);
        if (status == ENOENT)
          return cl_error_make (err, 0, "container `%s` does not exist", id);
        return cl_error_make (err, status, "read `%s`", path);
      }
  }
  st->doc = json_loads (buf, 0, &je);
  if (st->doc == NULL)
    {
      cl_ctr_state_release (st);
      return cl_error_make (err, 0, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    }
  st->id = cl_xstrdup (id);
  v = json_integer_value (json_object_get (st->doc, "pid"));
  st->pid = (pid_t) v;
  st->pid_start = (uint64_t) json_integer_value (json_object_get (st->doc, "pidStart"));
  return 0;
}

int
cl_ctr_state_save (struct container_state *st, cl_error_t *err)
{
  cleanup_free char *path = cl_strdup_printf ("%s/state.json", st->dir);
  cleanup_free char *s = NULL;

  json_object_set_new (st->doc, "pid", json_integer (st->pid));
  json_object_set_new (st->doc, "pidStart", json_integer ((json_int_t) st->pid_start));
  s = json_dumps (st->doc, JSON_COMPACT);
  return cl_write_file (path, s, strlen (s), 1, err);
}

static char *
state_new_path (struct container_state *st)
{
  return cl_strdup_printf ("%s/state.json.new", st->dir);
}

int
cl_ctr_state_save_begin (struct container_state *st, cl_error_t *err)
{
  cleanup_free char *path = state_new_path (st);
  cleanup_free char *s = NULL;
  cleanup_close int fd = -1;

  json_object_set_new (st->doc, "pid", json_integer (st->pid));
  json_object_set_new (st->doc, "pidStart", json_integer ((json_int_t) st->pid_start));
  s = json_dumps (st->doc, JSON_COMPACT);
  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return cl_error_errno (err, "open `%s`", path);
  if (cl_write_all (fd, s, strlen (s)) < 0)
    return cl_error_errno (err, "write `%s`", path);
  return 0;
}

int
cl_ctr_state_save_commit (struct container_state *st, cl_error_t *err)
{
  cleanup_free char *from = state_new_path (st);
  cleanup_free char *to = cl_strdup_printf ("%s/state.json", st->dir);
  if (rename (from, to) < 0)
    return cl_error_errno (err, "rename `%s`", from);
  return 0;
}

int
cl_ctr_state_dir_remove (const char *dir, cl_error_t *err)
{
  static const char *const files[] = { "state.json", "state.json.new", "exec.fifo" };
  cleanup_close int fd = open (dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

  if (fd < 0)
    return errno == ENOENT ? 0 : cl_rm_rf (dir, err);
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
    unlinkat (fd, files[i], 0);
  if (rmdir (dir) == 0 || errno == ENOENT)
    return 0;
  return cl_rm_rf (dir, err);
}

void
cl_ctr_state_release (struct container_state *st)
{
  free (st->id);
  free (st->dir);
  json_decref (st->doc);
  memset (st, 0, sizeof *st);
}

bool
cl_ctr_state_pid_alive (struct container_state *st)
{
  return st->pid > 0 && cl_proc_start_time (st->pid) == st->pid_start;
}

const char *
cl_ctr_state_status (struct container_state *st)
{
  cleanup_free char *fifo = NULL;

  if (!cl_ctr_state_pid_alive (st))
    return "stopped";
  fifo = cl_strdup_printf ("%s/exec.fifo", st->dir);
  if (access (fifo, F_OK) == 0)
    return "created";
  if (json_is_true (json_object_get (st->doc, "paused")))
    return "paused";
  return "running";
}

json_t *
cl_ctr_state_public (struct container_state *st)
{
  const char *status = cl_ctr_state_status (st);
  json_t *o = json_object ();
  json_t *ann = json_object_get (st->doc, "annotations");

  json_object_set_new (o, "ociVersion", json_string (OCI_SPEC_VERSION));
  json_object_set_new (o, "id", json_string (st->id));
  json_object_set_new (o, "status", json_string (status));
  json_object_set_new (o, "pid", json_integer (strcmp (status, "stopped") == 0 ? 0 : st->pid));
  json_object_set (o, "bundle", json_object_get (st->doc, "bundle"));
  json_object_set (o, "rootfs", json_object_get (st->doc, "rootfs"));
  json_object_set (o, "created", json_object_get (st->doc, "created"));
  json_object_set (o, "owner", json_object_get (st->doc, "owner"));
  json_object_set_new (o, "annotations", ann ? json_incref (ann) : json_object ());
  return o;
}

char *
cl_ctr_state_now_rfc3339 (void)
{
  struct timespec ts;
  struct tm tm;
  char buf[64];
  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  strftime (buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return cl_strdup_printf ("%s.%09ldZ", buf, ts.tv_nsec);
}
