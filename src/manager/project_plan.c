/* SPDX-License-Identifier: Apache-2.0 */
/* `cloison up` and friends over a parsed Cloisonfile (project_file.c).

   The plan: for each machine, what the file says (its spec) against what
   the last `up` applied (the projects table, one JSON state per project)
   and what runs.  Missing: created.  Stopped: started.  Only cpus or
   memory changed: applied live (containers; a VM at its next start).
   Anything else changed: the machine must be recreated, which `up` does
   with --recreate only.  Nothing to do: said so.

   Machines go in waves: those whose dependencies are up start together,
   each in a forked child with a manager of its own (the manager's calls
   are per process); a child provisions its machine, waits for its health
   check, and reports back one JSON line on a pipe.  A failure stops only
   the machines that depend on the one that failed; what is up stays up,
   and the next `up` continues from there. */
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "manager/manager.h"
#include "manager/mgr_internal.h"
#include "manager/monitor.h"
#include "manager/project_internal.h"
#include "manager/volume.h"
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Machines acted on at once (each launch is mostly waiting). */
#define UP_PARALLEL 8

static const char schema[] = "CREATE TABLE IF NOT EXISTS projects ("
                             " id TEXT PRIMARY KEY,"
                             " file TEXT NOT NULL,"
                             " state TEXT NOT NULL,"
                             " updated INTEGER NOT NULL);";

static int
state_load (struct cl_manager *m, struct cl_project *p, json_t **out, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  json_t *st = NULL;

  if (cl_db_exec (m->db, schema, err) < 0
      || cl_db_prepare (m->db, "SELECT state FROM projects WHERE id = ?", &s, err) < 0)
    return -1;
  sqlite3_bind_text (s, 1, p->id, -1, SQLITE_STATIC);
  if (sqlite3_step (s) == SQLITE_ROW)
    st = json_loads ((const char *)sqlite3_column_text (s, 0), 0, NULL);
  if (!json_is_object (st))
    {
      json_decref (st);
      st = json_object ();
    }
  if (!json_is_object (json_object_get (st, "machines")))
    json_object_set_new (st, "machines", json_object ());
  if (!json_is_object (json_object_get (st, "networks")))
    json_object_set_new (st, "networks", json_object ());
  *out = st;
  return 0;
}

static int
state_save (struct cl_manager *m, struct cl_project *p, json_t *st, cl_error_t *err)
{
  cleanup_free char *text = json_dumps (st, JSON_COMPACT | JSON_SORT_KEYS);

  return cl_mgr_store_run (m,
                           "INSERT INTO projects (id, file, state, updated) VALUES (?, ?, ?, ?)"
                           " ON CONFLICT (id) DO UPDATE SET file = excluded.file,"
                           " state = excluded.state, updated = excluded.updated",
                           "sssi", err, p->id, p->file, text, (int64_t)time (NULL));
}

/* --- what to do --- */

enum action
{
  ACT_NONE,     /* up to date and running */
  ACT_CREATE,   /* no instance */
  ACT_START,    /* stopped */
  ACT_LIVE,     /* cpus or memory changed */
  ACT_RECREATE, /* a change only a new instance takes (with --recreate) */
  ACT_BLOCKED,  /* the same without --recreate */
};

struct step
{
  struct prj_machine *mc;
  bool selected;
  enum action act;
  bool start_too; /* ACT_LIVE on a stopped instance */
  char *why;      /* which keys changed */
  json_t *ports;  /* the host ports forwarded: ["8081:80/tcp"] */
  json_t *applied;
  int state; /* 0 waiting, 1 running, 2 done, 3 failed, 4 skipped */
  pid_t pid;
  int fd;
  char buf[4096];
  size_t len;
};

static const char *const live_keys[] = { "cpus", "memory", NULL };

static bool
is_live_key (const char *k)
{
  for (size_t i = 0; live_keys[i]; i++)
    if (strcmp (k, live_keys[i]) == 0)
      return true;
  return false;
}

/* The keys of `want` that differ from `had`, comma separated ("" none);
 *live_only: every one of them can be applied to the instance as is. */
static char *
spec_diff (json_t *want, json_t *had, bool vm, bool *live_only)
{
  char out[512] = "";
  const char *k;
  json_t *v;

  *live_only = true;
  json_object_foreach (want, k, v)
  {
    if (json_equal (v, json_object_get (had, k)))
      continue;
    snprintf (out + strlen (out), sizeof out - strlen (out), "%s%s", out[0] ? ", " : "", k);
    /* a limit removed (0) cannot be set: only a new instance drops it */
    if (!is_live_key (k) || json_integer_value (v) == 0)
      *live_only = false;
  }
  json_object_foreach (had, k, v) if (!json_object_get (want, k))
  {
    snprintf (out + strlen (out), sizeof out - strlen (out), "%s%s", out[0] ? ", " : "", k);
    *live_only = false;
  }
  (void)vm;
  return cl_xstrdup (out);
}

static bool
port_taken (uint16_t port, const char *proto, json_t *picked)
{
  int fd
      = socket (AF_INET, (strcmp (proto, "udp") == 0 ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons (port) };
  bool taken;
  json_t *e;
  size_t i;

  json_array_foreach (picked, i, e) if (json_integer_value (e) == port) return true;
  if (fd < 0)
    return false;
  taken = bind (fd, (struct sockaddr *)&a, sizeof a) < 0 && errno == EADDRINUSE;
  close (fd);
  return taken;
}

static bool
port_forwarded (struct cl_manager *m, uint16_t port, const char *proto)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  cl_error_t ignored = NULL;

  if (cl_db_prepare (m->db, "SELECT 1 FROM net_forwards WHERE host_port = ? AND proto = ?", &s,
                     &ignored)
      < 0)
    {
      cl_error_release (&ignored); /* no network was ever made */
      return false;
    }
  sqlite3_bind_int (s, 1, port);
  sqlite3_bind_text (s, 2, proto, -1, SQLITE_STATIC);
  return sqlite3_step (s) == SQLITE_ROW;
}

/* The host ports of a machine about to be created: as asked, or with
   `auto`, the next free one when that one is taken (said so). */
static int
pick_ports (struct cl_manager *m, struct step *s, json_t *picked, cl_error_t *err)
{
  json_t *e;
  size_t i;

  s->ports = json_array ();
  json_array_foreach (json_object_get (s->mc->spec, "ports"), i, e)
  {
    json_int_t host = json_integer_value (json_object_get (e, "host"));
    json_int_t port = json_integer_value (json_object_get (e, "port"));
    const char *proto = json_string_value (json_object_get (e, "protocol"));
    json_int_t h = host;
    while (port_taken ((uint16_t)h, proto, picked) || port_forwarded (m, (uint16_t)h, proto))
      {
        if (!json_is_true (json_object_get (e, "auto")))
          return cl_error_make (err, 0,
                                "machine `%s`: host port %lld/%s is taken (set `auto: true` to "
                                "take the next free one)",
                                s->mc->name, (long long)host, proto);
        if (++h > 65535)
          return cl_error_make (err, 0, "machine `%s`: no free host port from %lld", s->mc->name,
                                (long long)host);
      }
    if (h != host)
      printf ("%s: host port %lld/%s is taken: forwarding %lld -> %lld instead\n", s->mc->name,
              (long long)host, proto, (long long)h, (long long)port);
    json_array_append_new (picked, json_integer (h));
    json_array_append_new (s->ports, json_string_nocheck (cl_strdup_printf (
                                         "%lld:%lld/%s", (long long)h, (long long)port, proto)));
  }
  return 0;
}

static void
select_with_deps (struct cl_project *p, struct step *steps, struct prj_machine *mc)
{
  struct step *s = &steps[mc - p->machines];
  if (s->selected)
    return;
  s->selected = true;
  for (size_t d = 0; d < mc->ndeps; d++)
    select_with_deps (p, steps, cl_mgr_project_machine (p, mc->deps[d]));
}

static int
select_machines (struct cl_project *p, struct step *steps, const char **names, size_t n,
                 bool with_deps, cl_error_t *err)
{
  for (size_t i = 0; i < p->n; i++)
    steps[i].mc = &p->machines[i], steps[i].fd = -1, steps[i].selected = n == 0;
  for (size_t i = 0; i < n; i++)
    {
      struct prj_machine *mc = cl_mgr_project_machine (p, names[i]);
      if (mc == NULL)
        return cl_error_raise (err, CL_ERR_NOT_FOUND, "no machine `%s` in %s", names[i], p->file);
      if (with_deps)
        select_with_deps (p, steps, mc);
      else
        steps[mc - p->machines].selected = true;
    }
  return 0;
}

static void
steps_free (struct step *steps, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      free (steps[i].why);
      json_decref (steps[i].ports);
      if (steps[i].fd >= 0)
        close (steps[i].fd);
    }
  free (steps);
}

static int
plan (struct cl_manager *m, struct cl_project *p, json_t *state, struct step *steps, bool recreate,
      cl_error_t *err)
{
  cleanup_json json_t *picked = json_array ();
  json_t *applied_all = json_object_get (state, "machines");

  for (size_t i = 0; i < p->n; i++)
    {
      struct step *s = &steps[i];
      cleanup_instance struct instance *inst = NULL;
      cl_error_t missing = NULL;
      bool live;

      if (!s->selected)
        continue;
      s->applied = json_object_get (applied_all, s->mc->name);
      if (cl_mgr_instance_load (m, s->mc->instance, &inst, &missing) < 0)
        {
          cl_error_release (&missing);
          s->act = ACT_CREATE;
          if (pick_ports (m, s, picked, err) < 0)
            return -1;
          continue;
        }
      s->ports = json_incref (json_object_get (s->applied, "ports"));
      if (s->applied == NULL)
        s->why = cl_xstrdup ("not made by this file");
      else
        s->why = spec_diff (s->mc->spec, json_object_get (s->applied, "spec"),
                            inst->kind == KIND_VM, &live);
      if (s->why[0] == '\0')
        s->act = cl_mgr_instance_is_running (inst) ? ACT_NONE : ACT_START;
      else if (s->applied && live)
        {
          s->act = ACT_LIVE;
          s->start_too = !cl_mgr_instance_is_running (inst);
        }
      else if (recreate)
        {
          s->act = ACT_RECREATE;
          json_decref (s->ports);
          s->ports = NULL;
          /* its own ports are freed by the delete before the launch */
          if (pick_ports (m, s, json_array (), err) < 0)
            {
              cl_error_release (err);
              json_decref (s->ports);
              s->ports = json_incref (json_object_get (s->applied, "ports"));
            }
        }
      else
        s->act = ACT_BLOCKED;
    }
  return 0;
}

/* --- doing it (in a child per machine) --- */

static void
push_spec_strings (json_t *arr, const char ***v, size_t *n)
{
  json_t *e;
  size_t i;

  *n = json_array_size (arr);
  *v = cl_xmalloc0 ((*n + 1) * sizeof **v);
  json_array_foreach (arr, i, e) (*v)[i] = json_string_value (e);
}

static int
machine_launch (struct cl_manager *m, struct cl_project *p, struct step *s, cl_error_t *err)
{
  json_t *spec = s->mc->spec;
  struct cl_launch_opts o = { 0 };
  cleanup_free const char **env = NULL, **nets = NULL, **ports = NULL, **mounts = NULL;
  cleanup_free const char **vols = NULL;
  cleanup_free char *l1 = cl_strdup_printf ("cloison.project=%s", p->id);
  cleanup_free char *l2 = cl_strdup_printf ("cloison.machine=%s", s->mc->name);
  cleanup_free char *l3 = cl_strdup_printf ("cloison.file=%s", p->file);
  const char *labels[] = { l1, l2, l3 };
  char **argv = NULL;
  int r;

  o.image = json_string_value (json_object_get (spec, "image"));
  o.name = s->mc->instance;
  o.vm = strcmp (json_string_value (json_object_get (spec, "kind")), "vm") == 0;
  o.cpus = (unsigned)json_integer_value (json_object_get (spec, "cpus"));
  o.memory = (uint64_t)json_integer_value (json_object_get (spec, "memory"));
  o.disk_size = (uint64_t)json_integer_value (json_object_get (spec, "disk"));
  push_spec_strings (json_object_get (spec, "env"), &env, &o.n_env);
  o.env = env;
  push_spec_strings (json_object_get (spec, "networks"), &nets, &o.n_networks);
  o.no_network = json_is_true (json_object_get (spec, "no_network"));
  o.networks = nets;
  push_spec_strings (s->ports, &ports, &o.n_ports);
  o.ports = ports;
  push_spec_strings (json_object_get (spec, "mounts"), &mounts, &o.n_mounts);
  o.mounts = mounts;
  push_spec_strings (json_object_get (spec, "volumes"), &vols, &o.n_volumes);
  o.volumes = vols;
  o.labels = labels;
  o.n_labels = 3;
  if (json_object_get (spec, "command"))
    {
      argv = cl_mgr_json_to_strv (json_object_get (spec, "command"));
      o.argv = argv;
      o.argc = json_array_size (json_object_get (spec, "command"));
    }
  r = cl_mgr_instance_launch (m, &o, err);
  cl_strv_free (argv);
  return r;
}

static int
machine_apply_live (struct cl_manager *m, struct step *s, cl_error_t *err)
{
  json_t *had = json_object_get (s->applied, "spec");

  for (size_t i = 0; live_keys[i]; i++)
    {
      json_t *v = json_object_get (s->mc->spec, live_keys[i]);
      if (json_equal (v, json_object_get (had, live_keys[i])))
        continue;
      cleanup_free char *val = cl_strdup_printf ("%lld", (long long)json_integer_value (v));
      if (cl_mgr_instance_config_set (
              m, s->mc->instance,
              strcmp (live_keys[i], "cpus") == 0 ? "limits.cpu" : "limits.memory", val, err)
          < 0)
        return -1;
    }
  return 0;
}

static void
devnull_stdio (int *saved)
{
  int fd = open ("/dev/null", O_RDWR | O_CLOEXEC);

  for (int i = 0; i < 3; i++)
    saved[i] = dup (i);
  if (fd >= 0)
    {
      dup2 (fd, 0), dup2 (fd, 1), dup2 (fd, 2);
      close (fd);
    }
}

static void
restore_stdio (int *saved)
{
  for (int i = 0; i < 3; i++)
    if (saved[i] >= 0)
      dup2 (saved[i], i), close (saved[i]);
}

/* The health check, until it succeeds or its time is up. */
static int
machine_health (struct cl_manager *m, struct prj_machine *mc, cl_error_t *err)
{
  json_t *h = mc->health;
  char **argv;
  uint64_t deadline;
  unsigned interval;
  int code = -1, tries = 0;

  if (h == NULL)
    return 0;
  argv = cl_mgr_json_to_strv (json_object_get (h, "command"));
  interval = (unsigned)json_integer_value (json_object_get (h, "interval_ms"));
  deadline
      = cl_now_ns () + (uint64_t)json_integer_value (json_object_get (h, "timeout_ms")) * 1000000;
  for (;;)
    {
      cl_error_t ignored = NULL;
      int saved[3];
      tries++;
      devnull_stdio (saved);
      int r
          = cl_mgr_instance_exec (m, mc->instance, argv, NULL, 0, CL_EXEC_TTY_OFF, &code, &ignored);
      restore_stdio (saved);
      if (r < 0)
        cl_error_release (&ignored);
      else if (code == 0)
        break;
      if (cl_now_ns () >= deadline)
        {
          cl_strv_free (argv);
          return cl_error_make (err, 0,
                                "machine `%s`: health check still failing after %d tries (last "
                                "exit %d)",
                                mc->name, tries, code);
        }
      usleep (interval * 1000);
    }
  cl_strv_free (argv);
  return 0;
}

static char *
step_key (json_t *step)
{
  cleanup_free char *text = json_dumps (step, JSON_COMPACT | JSON_SORT_KEYS);
  return cl_strdup_printf ("%016llx", (unsigned long long)cl_fnv1a64 (text));
}

/* The provisioning steps: `once` ones not yet done (all with `all`),
   `always` ones every time.  *done: the keys of the once steps run. */
static int
machine_provision (struct cl_manager *m, struct prj_machine *mc, json_t *done, bool all,
                   cl_error_t *err)
{
  json_t *st;
  size_t i;

  json_array_foreach (mc->provision, i, st)
  {
    cleanup_free char *key = step_key (st);
    const char *shell = json_string_value (json_object_get (st, "shell"));
    const char *user = json_string_value (json_object_get (st, "user"));
    bool once = strcmp (json_string_value (json_object_get (st, "run")), "once") == 0;
    bool seen = false;
    json_t *e;
    size_t k;
    int code;

    json_array_foreach (done, k, e) if (strcmp (json_string_value (e), key) == 0) seen = true;
    if (once && seen && !all)
      continue;
    char *root_argv[] = { "/bin/sh", "-c", (char *)shell, NULL };
    char *user_argv[] = { "su", "-s", "/bin/sh", "-c", (char *)shell, (char *)user, NULL };
    printf ("%s: provisioning (step %zu%s%s)\n", mc->name, i + 1, user ? " as " : "",
            user ? user : "");
    fflush (stdout);
    if (cl_mgr_instance_exec (m, mc->instance, user ? user_argv : root_argv, NULL, 0,
                              CL_EXEC_TTY_OFF, &code, err)
        < 0)
      return cl_error_wrap (err, "machine `%s`: provisioning step %zu", mc->name, i + 1);
    if (code != 0)
      return cl_error_make (err, 0, "machine `%s`: provisioning step %zu exited %d", mc->name,
                            i + 1, code);
    if (once && !seen)
      json_array_append_new (done, json_string (key));
  }
  return 0;
}

static const char *
action_word (const struct step *s)
{
  switch (s->act)
    {
    case ACT_CREATE:
      return "created";
    case ACT_START:
      return "started";
    case ACT_LIVE:
      return s->start_too ? "changed and started" : "changed live";
    case ACT_RECREATE:
      return "recreated";
    default:
      return "up to date";
    }
}

/* Passed its health check at the last up (or has none). */
static bool
step_healthy (struct step *s)
{
  json_t *h = json_object_get (s->applied, "healthy");
  return s->mc->health == NULL || h == NULL || json_is_true (h);
}

/* In the child: the machine's action, provisioning, health.  Reports
   {ok, error, provisioned} on fd. */
static void __attribute__ ((noreturn))
machine_child (const char *root, struct cl_project *p, struct step *s, bool provision_all, int fd)
{
  struct cl_manager *m = NULL;
  cl_error_t err = NULL;
  json_t *done = json_deep_copy (json_object_get (s->applied, "provisioned"));
  json_t *report;
  char *text;
  int r = 0;
  bool launched = false, healthy = false;

  if (!json_is_array (done) || s->act == ACT_CREATE || s->act == ACT_RECREATE)
    {
      json_decref (done);
      done = json_array ();
    }
  if (cl_mgr_open (root, &m, &err) < 0)
    r = -1;
  else
    switch (s->act)
      {
      case ACT_RECREATE:
        r = cl_mgr_instance_delete (m, s->mc->instance, true, &err);
        if (r == 0)
          r = machine_launch (m, p, s, &err);
        break;
      case ACT_CREATE:
        r = machine_launch (m, p, s, &err);
        break;
      case ACT_START:
        r = cl_mgr_instance_start (m, s->mc->instance, &err);
        break;
      case ACT_LIVE:
        r = machine_apply_live (m, s, &err);
        if (r == 0 && s->start_too)
          r = cl_mgr_instance_start (m, s->mc->instance, &err);
        break;
      default:
        break;
      }
  /* the instance is what the file says from here on, whatever fails next */
  launched = r == 0 && s->act != ACT_BLOCKED;
  if (r == 0 && s->act != ACT_NONE && s->act != ACT_BLOCKED)
    {
      bool vm = strcmp (json_string_value (json_object_get (s->mc->spec, "kind")), "vm") == 0;
      printf ("%s: %s%s\n", s->mc->name, action_word (s),
              s->act == ACT_LIVE && vm && !s->start_too ? " (a VM takes it at its next start)"
                                                        : "");
      fflush (stdout);
    }
  if (r == 0)
    r = machine_provision (m, s->mc, done, provision_all, &err);
  if (r == 0 && (s->act != ACT_NONE || !step_healthy (s)))
    r = machine_health (m, s->mc, &err);
  healthy = r == 0;
  report = json_pack ("{s:b, s:s?, s:o, s:b, s:b}", "ok", r == 0, "error",
                      r < 0 && err ? err->msg : NULL, "provisioned", done, "launched", launched,
                      "healthy", healthy);
  text = json_dumps (report, JSON_COMPACT);
  if (cl_write_all (fd, text, strlen (text)) < 0)
    r = -1;
  fflush (NULL);
  _exit (r == 0 ? 0 : 1);
}

/* Steps to run on an up-to-date machine: `always` ones, `once` ones not
   done yet. */
static bool
provision_pending (struct step *s)
{
  json_t *done = json_object_get (s->applied, "provisioned"), *st, *e;
  size_t i, k;

  json_array_foreach (s->mc->provision, i, st)
  {
    cleanup_free char *key = step_key (st);
    bool seen = false;
    if (strcmp (json_string_value (json_object_get (st, "run")), "always") == 0)
      return true;
    json_array_foreach (done, k, e) seen |= strcmp (json_string_value (e), key) == 0;
    if (!seen)
      return true;
  }
  return false;
}

static int
spawn_step (struct cl_manager *m, struct cl_project *p, struct step *s, bool provision_all,
            cl_error_t *err)
{
  int fds[2];

  if (pipe2 (fds, O_CLOEXEC) < 0)
    return cl_error_errno (err, "pipe");
  fflush (NULL);
  /* SQLite's per-process lock bookkeeping must not cross fork(): the
     child opens a connection of its own from a clean slate (as the
     monitors do, monitor.c) */
  cl_db_close (m->db);
  m->db = NULL;
  s->pid = fork ();
  if (s->pid != 0 && cl_db_open (m->root, &m->db, err) == 0)
    cl_mgr_db_tune (m->db);
  else if (s->pid != 0)
    {
      close (fds[0]);
      close (fds[1]);
      return -1; /* the child goes on; its result is lost */
    }
  if (s->pid < 0)
    {
      close (fds[0]);
      close (fds[1]);
      return cl_error_errno (err, "fork");
    }
  if (s->pid == 0)
    {
      close (fds[0]);
      cl_mgr_locks_close (m); /* the project's lock stays the parent's */
      machine_child (m->root, p, s, provision_all, fds[1]);
    }
  close (fds[1]);
  s->fd = fds[0];
  s->state = 1;
  return 0;
}

static bool
deps_state (struct cl_project *p, struct step *steps, struct step *s, bool *failed)
{
  bool ready = true;

  *failed = false;
  for (size_t d = 0; d < s->mc->ndeps; d++)
    {
      struct step *ds = &steps[cl_mgr_project_machine (p, s->mc->deps[d]) - p->machines];
      if (!ds->selected)
        continue;
      if (ds->state >= 3)
        *failed = true;
      if (ds->state != 2)
        ready = false;
    }
  return ready;
}

/* Waits for one running child; records its result. */
static int
reap_one (struct cl_project *p, struct step *steps, json_t *state)
{
  struct pollfd pfd[UP_PARALLEL];
  struct step *who[UP_PARALLEL];
  size_t n = 0;

  for (size_t i = 0; i < p->n && n < UP_PARALLEL; i++)
    if (steps[i].state == 1)
      {
        pfd[n] = (struct pollfd){ .fd = steps[i].fd, .events = POLLIN };
        who[n++] = &steps[i];
      }
  if (n == 0)
    return 0;
  while (poll (pfd, n, -1) < 0)
    if (errno != EINTR)
      return -1;
  for (size_t k = 0; k < n; k++)
    {
      struct step *s = who[k];
      ssize_t got;
      int st;
      if (!pfd[k].revents)
        continue;
      got = read (s->fd, s->buf + s->len, sizeof s->buf - 1 - s->len);
      if (got > 0)
        {
          s->len += (size_t)got;
          continue;
        }
      s->buf[s->len] = '\0';
      close (s->fd);
      s->fd = -1;
      while (waitpid (s->pid, &st, 0) < 0 && errno == EINTR)
        ;
      json_t *rep = json_loads (s->buf, 0, NULL);
      bool ok = json_is_true (json_object_get (rep, "ok"));
      if (!ok)
        {
          const char *why = json_string_value (json_object_get (rep, "error"));
          fprintf (stderr, "%s: failed: %s\n", s->mc->name, why ? why : "its process died");
        }
      /* what it applied: the spec, its ports, the steps done */
      bool launched = json_is_true (json_object_get (rep, "launched"));
      if (launched || s->applied)
        {
          json_t *rec = json_object ();
          /* a machine waiting for --recreate keeps what it was made of */
          json_object_set (rec, "spec",
                           launched ? s->mc->spec : json_object_get (s->applied, "spec"));
          json_object_set_new (rec, "healthy",
                               json_boolean (json_is_true (json_object_get (rep, "healthy"))));
          json_object_set_new (rec, "ports", s->ports ? json_incref (s->ports) : json_array ());
          if (json_is_array (json_object_get (rep, "provisioned")))
            json_object_set (rec, "provisioned", json_object_get (rep, "provisioned"));
          json_object_set_new (json_object_get (state, "machines"), s->mc->name, rec);
        }
      else if (s->act == ACT_CREATE || s->act == ACT_RECREATE)
        json_object_del (json_object_get (state, "machines"), s->mc->name);
      json_decref (rep);
      s->state = ok ? 2 : 3;
    }
  return 0;
}

static int
ensure_networks (struct cl_manager *m, struct cl_project *p, json_t *state, cl_error_t *err)
{
  const char *name;
  json_t *net;

  json_object_foreach (p->networks, name, net)
  {
    const char *global = json_string_value (json_object_get (net, "global"));
    const char *mode = json_string_value (json_object_get (net, "mode"));
    json_t *applied = json_object_get (json_object_get (state, "networks"), name);
    json_t *shown = NULL;
    cl_error_t missing = NULL;

    if (cl_net_show (m->db, global, &shown, &missing) == 0)
      {
        json_decref (shown);
        if (applied && !json_equal (applied, net))
          printf ("network %s: changed in the file: `cloison down --destroy` then `up` remakes "
                  "it\n",
                  name);
        continue;
      }
    cl_error_release (&missing);
    struct cl_net_config cfg = {
      .name = global,
      .subnet = json_string_value (json_object_get (net, "subnet")),
      .mode = mode == NULL || strcmp (mode, "nat") == 0 ? CL_NET_NAT
              : strcmp (mode, "routed") == 0            ? CL_NET_ROUTED
                                                        : CL_NET_ISOLATED,
    };
    if (cl_net_create (m->db, &cfg, err) < 0)
      return cl_error_wrap (err, "network `%s`", name);
    json_object_set (json_object_get (state, "networks"), name, net);
    printf ("network %s: created (%s)\n", name, global);
  }
  return 0;
}

static int
ensure_volumes (struct cl_manager *m, struct cl_project *p, cl_error_t *err)
{
  const char *name;
  json_t *vol;

  json_object_foreach (p->volumes, name, vol)
  {
    const char *global = json_string_value (json_object_get (vol, "global"));
    if (cl_mgr_volume_type (m, global, NULL, NULL, NULL) == 0)
      continue;
    if (cl_mgr_volume_create (m, global,
                              (uint64_t)json_integer_value (json_object_get (vol, "size")), err)
        < 0)
      return cl_error_wrap (err, "volume `%s`", name);
    printf ("volume %s: created (%s)\n", name, global);
  }
  return 0;
}

static int
project_lock (struct cl_manager *m, struct cl_project *p, struct instance_lock *l, cl_error_t *err)
{
  cleanup_free char *key = cl_strdup_printf ("project:%s", p->id);
  return cl_mgr_instance_lock (m, key, l, err);
}

/* What every command on a project holds: its lock, its last applied
   state, a step per machine of the file (chosen ones selected). */
struct project_run
{
  struct instance_lock lock;
  json_t *state;
  struct step *steps;
  size_t n;
};

static void
project_end (struct project_run *run)
{
  cl_mgr_instance_unlock (&run->lock);
  json_decref (run->state);
  if (run->steps)
    steps_free (run->steps, run->n);
}
#define cleanup_project_run __attribute__ ((cleanup (project_end)))

static int
project_begin (struct cl_manager *m, struct cl_project *p, const char **names, size_t n,
               bool with_deps, struct project_run *run, cl_error_t *err)
{
  run->lock.fd = -1;
  run->n = p->n;
  run->steps = cl_xmalloc0 (p->n * sizeof *run->steps);
  if (select_machines (p, run->steps, names, n, with_deps, err) < 0
      || project_lock (m, p, &run->lock, err) < 0 || state_load (m, p, &run->state, err) < 0)
    return -1;
  return 0;
}

int
cl_mgr_project_up (struct cl_manager *m, struct cl_project *p, const struct cl_project_up_opts *o,
                   cl_error_t *err)
{
  cleanup_project_run struct project_run run = { .lock = { .fd = -1 } };
  cleanup_json json_t *before = NULL;
  struct step *steps;
  json_t *state;
  size_t running = 0, idle = 0, blocked = 0, failed = 0;
  int r = -1;

  if (project_begin (m, p, o->machines, o->n_machines, true, &run, err) < 0)
    return -1;
  steps = run.steps;
  state = run.state;
  if ((before = json_deep_copy (state)) == NULL || ensure_networks (m, p, state, err) < 0
      || ensure_volumes (m, p, err) < 0 || plan (m, p, state, steps, o->recreate, err) < 0)
    goto out;
  for (size_t i = 0; i < p->n; i++)
    if (steps[i].selected && steps[i].act == ACT_BLOCKED)
      {
        printf ("%s: must be recreated (%s changed): run `cloison up --recreate`\n",
                steps[i].mc->name, steps[i].why);
        blocked++;
      }
  fflush (stdout);
  for (;;)
    {
      bool progress = false;
      for (size_t i = 0; i < p->n && running < UP_PARALLEL; i++)
        {
          struct step *s = &steps[i];
          bool dep_failed;
          if (!s->selected || s->state != 0)
            continue;
          if (!deps_state (p, steps, s, &dep_failed))
            {
              if (dep_failed)
                {
                  fprintf (stderr, "%s: not started: a machine it depends on failed\n",
                           s->mc->name);
                  s->state = 4;
                  progress = true;
                }
              continue;
            }
          if ((s->act == ACT_NONE || s->act == ACT_BLOCKED) && !o->provision
              && !provision_pending (s) && step_healthy (s))
            {
              s->state = 2; /* nothing to fork for */
              progress = true;
              continue;
            }
          if (spawn_step (m, p, s, o->provision, err) < 0)
            goto out;
          running++;
          progress = true;
        }
      if (running == 0 && !progress)
        break;
      if (running)
        {
          size_t before = 0, after = 0;
          for (size_t i = 0; i < p->n; i++)
            before += steps[i].state == 1;
          if (reap_one (p, steps, state) < 0)
            {
              cl_error_errno (err, "poll");
              goto out;
            }
          for (size_t i = 0; i < p->n; i++)
            after += steps[i].state == 1;
          running -= before - after;
        }
    }
  for (size_t i = 0; i < p->n; i++)
    if (steps[i].selected)
      {
        if (steps[i].state >= 3)
          failed++;
        else if (steps[i].act == ACT_NONE)
          idle++;
      }
  /* nothing changed, nothing written: a no-op up only reads */
  if (!json_equal (state, before) && state_save (m, p, state, err) < 0)
    goto out;
  if (failed == 0 && blocked == 0 && idle > 0)
    {
      size_t selected = 0;
      for (size_t i = 0; i < p->n; i++)
        selected += steps[i].selected;
      if (idle == selected)
        printf ("nothing to do: %zu machine%s up to date\n", idle, idle > 1 ? "s" : "");
    }
  if (failed)
    fprintf (stderr, "up: %zu machine%s failed: run `cloison up` again once fixed\n", failed,
             failed > 1 ? "s" : "");
  r = failed || blocked ? 1 : 0;
out:
  fflush (stdout);
  return r;
}

int
cl_mgr_project_down (struct cl_manager *m, struct cl_project *p, const char **machines, size_t n,
                     bool destroy, bool volumes, cl_error_t *err)
{
  cleanup_project_run struct project_run run = { .lock = { .fd = -1 } };
  struct step *steps;
  json_t *state;
  int r = -1;

  if (project_begin (m, p, machines, n, false, &run, err) < 0)
    return -1;
  steps = run.steps;
  state = run.state;
  /* dependants first: the file's order reversed keeps most of it */
  for (size_t i = p->n; i-- > 0;)
    {
      struct step *s = &steps[i];
      cleanup_instance struct instance *inst = NULL;
      cl_error_t missing = NULL;
      if (!s->selected)
        continue;
      if (cl_mgr_instance_load (m, s->mc->instance, &inst, &missing) < 0)
        {
          cl_error_release (&missing);
          json_object_del (json_object_get (state, "machines"), s->mc->name);
          continue;
        }
      if (destroy)
        {
          if (cl_mgr_instance_delete (m, s->mc->instance, true, err) < 0)
            goto out;
          json_object_del (json_object_get (state, "machines"), s->mc->name);
          printf ("%s: deleted\n", s->mc->name);
        }
      else if (cl_mgr_instance_is_running (inst))
        {
          if (cl_mgr_instance_stop (m, s->mc->instance, 10, false, err) < 0)
            goto out;
          printf ("%s: stopped\n", s->mc->name);
        }
    }
  if (destroy && n == 0)
    {
      const char *name;
      json_t *v;
      json_object_foreach (p->networks, name, v)
      {
        cl_error_t missing = NULL;
        if (cl_net_delete (m->db, json_string_value (json_object_get (v, "global")), &missing) < 0)
          cl_error_release (&missing);
        else
          printf ("network %s: deleted\n", name);
      }
      json_object_clear (json_object_get (state, "networks"));
      json_object_foreach (p->volumes, name, v)
      {
        cl_error_t missing = NULL;
        if (!volumes)
          break;
        if (cl_mgr_volume_delete (m, json_string_value (json_object_get (v, "global")), &missing)
            < 0)
          cl_error_release (&missing);
        else
          printf ("volume %s: deleted\n", name);
      }
      if (cl_mgr_store_run (m, "DELETE FROM projects WHERE id = ?", "s", err, p->id) < 0)
        goto out;
      r = 0;
      goto out;
    }
  r = state_save (m, p, state, err);
out:
  fflush (stdout);
  return r;
}

int
cl_mgr_project_status (struct cl_manager *m, struct cl_project *p, json_t **out, cl_error_t *err)
{
  cleanup_json json_t *state = NULL;
  json_t *arr;

  if (state_load (m, p, &state, err) < 0)
    return -1;
  arr = json_array ();
  for (size_t i = 0; i < p->n; i++)
    {
      struct prj_machine *mc = &p->machines[i];
      json_t *applied = json_object_get (json_object_get (state, "machines"), mc->name);
      json_t *info = NULL, *row, *addrs = json_array (), *e;
      cl_error_t missing = NULL;
      size_t k;
      row = json_pack ("{s:s, s:s, s:O, s:O}", "machine", mc->name, "instance", mc->instance,
                       "kind", json_object_get (mc->spec, "kind"), "image",
                       json_object_get (mc->spec, "image"));
      if (cl_mgr_instance_info (m, mc->instance, &info, &missing) < 0)
        {
          cl_error_release (&missing);
          json_object_set_new (row, "status", json_string ("absent"));
        }
      else
        {
          json_object_set (row, "status", json_object_get (info, "status"));
          json_array_foreach (json_object_get (info, "network"), k, e)
          {
            const char *a = json_string_value (json_object_get (e, "address"));
            if (a)
              json_array_append_new (addrs, json_string (a));
          }
        }
      json_object_set_new (row, "addresses", addrs);
      json_object_set_new (row, "ports",
                           applied && json_object_get (applied, "ports")
                               ? json_incref (json_object_get (applied, "ports"))
                               : json_array ());
      bool live;
      cleanup_free char *why
          = applied ? spec_diff (mc->spec, json_object_get (applied, "spec"), false, &live)
                    : cl_xstrdup (info ? "not made by this file" : "");
      json_object_set_new (row, "changed", json_string (why));
      json_decref (info);
      json_array_append_new (arr, row);
    }
  *out = arr;
  return 0;
}

int
cl_mgr_project_provision (struct cl_manager *m, struct cl_project *p, const char **machines,
                          size_t n, cl_error_t *err)
{
  cleanup_project_run struct project_run run = { .lock = { .fd = -1 } };
  struct step *steps;
  json_t *state;
  int r = -1;

  if (project_begin (m, p, machines, n, false, &run, err) < 0)
    return -1;
  steps = run.steps;
  state = run.state;
  for (size_t i = 0; i < p->n; i++)
    {
      struct step *s = &steps[i];
      json_t *rec = json_object_get (json_object_get (state, "machines"), s->mc->name);
      json_t *done;
      if (!s->selected || json_array_size (s->mc->provision) == 0)
        continue;
      if (rec == NULL)
        {
          cl_error_raise (err, CL_ERR_CONFLICT, "machine `%s` is not up: run `cloison up` first",
                          s->mc->name);
          goto out;
        }
      done = json_object_get (rec, "provisioned");
      if (!json_is_array (done))
        {
          done = json_array ();
          json_object_set_new (rec, "provisioned", done);
        }
      if (machine_provision (m, s->mc, done, true, err) < 0)
        {
          cl_error_t ignored = NULL;
          if (state_save (m, p, state, &ignored) < 0)
            cl_error_release (&ignored);
          goto out;
        }
    }
  r = state_save (m, p, state, err);
out:
  fflush (stdout);
  return r;
}

int
cl_mgr_project_list (struct cl_manager *m, const char *id, json_t **out, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  json_t *arr;

  if (cl_db_exec (m->db, schema, err) < 0
      || cl_db_prepare (m->db,
                        "SELECT id, file, state, updated FROM projects"
                        " WHERE ?1 IS NULL OR id = ?1 ORDER BY id",
                        &s, err)
             < 0)
    return -1;
  if (id)
    sqlite3_bind_text (s, 1, id, -1, SQLITE_STATIC);
  arr = json_array ();
  while (sqlite3_step (s) == SQLITE_ROW)
    {
      cleanup_json json_t *st = json_loads ((const char *)sqlite3_column_text (s, 2), 0, NULL);
      json_t *names = json_array ();
      const char *name;
      json_t *v;
      json_object_foreach (json_object_get (st, "machines"), name, v)
          json_array_append_new (names, json_string (name));
      json_array_append_new (
          arr, json_pack ("{s:s, s:s, s:I, s:o}", "id", (const char *)sqlite3_column_text (s, 0),
                          "file", (const char *)sqlite3_column_text (s, 1), "updated",
                          (json_int_t)sqlite3_column_int64 (s, 3), "machines", names));
    }
  if (id && json_array_size (arr) == 0)
    {
      json_decref (arr);
      return cl_error_raise (err, CL_ERR_NOT_FOUND, "no project `%s` (never brought up)", id);
    }
  *out = arr;
  return 0;
}
