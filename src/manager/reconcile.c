/* After a crash: intents whose owner died are finished or undone, and
   recorded statuses are checked against the processes that really run. */
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "manager/engine.h"
#include "manager/internal.h"
#include "manager/snapshot.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct intent
{
  int64_t id;
  char *op, *instance, *arg;
};

static int
intents_orphaned (struct cl_manager *m, struct intent **out, size_t *n, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  struct intent *v = NULL;
  size_t count = 0;

  if (cl_db_prepare (m->db,
                     "SELECT id, op, instance, arg, owner_pid, owner_start FROM instance_intents"
                     " ORDER BY id",
                     &s, err)
      < 0)
    return -1;
  while (sqlite3_step (s) == SQLITE_ROW)
    {
      const unsigned char *arg = sqlite3_column_text (s, 3);
      if (proc_alive (sqlite3_column_int (s, 4), (uint64_t)sqlite3_column_int64 (s, 5)))
        continue; /* still in progress in another process */
      v = realloc (v, (count + 1) * sizeof *v);
      if (v == NULL)
        abort ();
      v[count].id = sqlite3_column_int64 (s, 0);
      v[count].op = strdup ((const char *)sqlite3_column_text (s, 1));
      v[count].instance = strdup ((const char *)sqlite3_column_text (s, 2));
      v[count].arg = arg ? strdup ((const char *)arg) : NULL;
      count++;
    }
  *out = v;
  *n = count;
  return 0;
}

static int
intent_recover (struct cl_manager *m, struct intent *it, cl_error_t *err)
{
  cl_warn ("recovering interrupted `%s` of instance `%s`", it->op, it->instance);
  if (strcmp (it->op, "launch") == 0 || strcmp (it->op, "run") == 0 || strcmp (it->op, "copy") == 0
      || strcmp (it->op, "delete") == 0)
    return instance_destroy (m, it->instance, err);
  if (strncmp (it->op, "snapshot-", 9) == 0)
    return snapshot_recover (m, it->op, it->instance, it->arg, err);
  return 0; /* start: the instance's own reconcile tells what runs */
}

int
reconcile_intents (struct cl_manager *m, cl_error_t *err)
{
  struct intent *v;
  size_t n;
  int r = 0;

  if (intents_orphaned (m, &v, &n, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    {
      if (r == 0 && intent_recover (m, &v[i], err) < 0)
        r = cl_error_wrap (err, "recover the interrupted `%s` of instance `%s`", v[i].op,
                           v[i].instance);
      if (r == 0)
        intent_end (m, v[i].id);
      free (v[i].op);
      free (v[i].instance);
      free (v[i].arg);
    }
  free (v);
  return r;
}

int
reconcile_instance (struct cl_manager *m, struct instance *inst, cl_error_t *err)
{
  if (strcmp (inst->status, "running") != 0)
    return 0;
  if (proc_alive (inst->monitor_pid, inst->monitor_start))
    return 0;
  /* the monitor died (kill -9, OOM): nothing records this workload's end,
     so end it now rather than leave it unsupervised */
  cl_warn ("instance `%s`: its monitor (pid %d) is gone; stopping it", inst->name,
           (int)inst->monitor_pid);
  if (inst->init_pid > 0 && proc_alive (inst->init_pid, inst->init_start))
    kill (inst->init_pid, SIGKILL);
  if (inst->kind == KIND_CONTAINER)
    {
      cleanup_free char *id = instance_global_id (m, inst->name);
      cleanup_free char *eroot = engine_root (m);
      if (engine_destroy (eroot, id, err) < 0)
        return -1;
    }
  if (store_set_stopped (m, inst->name, false, 0, err) < 0)
    return -1;
  free (inst->status);
  inst->status = strdup ("stopped");
  inst->has_exit_code = false;
  return 0;
}
