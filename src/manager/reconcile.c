/* SPDX-License-Identifier: Apache-2.0 */
/* After a crash: intents whose owner died are finished or undone (the
   check of one instance's status against the processes that really run
   is cl_mgr_reconcile_instance, in lifecycle.c). */
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"
#include "manager/mgr_internal.h"
#include "manager/mgr_snapshot.h"

#include <stdlib.h>
#include <string.h>

struct intent
{
  int64_t id;
  char *op, *instance, *arg;
};

/* Intents whose owner looked dead in one read: candidates only.  That
   read may come from a snapshot older than the owner's last commit (an
   owner that removed its intent and exited since), so each is judged again
   under the instance's lock (intent_orphaned). */
static int
intents_candidates (struct cl_manager *m, struct intent **out, size_t *n, cl_error_t *err)
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
      if (cl_mgr_proc_alive (sqlite3_column_int (s, 4), (uint64_t)sqlite3_column_int64 (s, 5)))
        continue; /* still in progress in another process */
      v = realloc (v, (count + 1) * sizeof *v);
      if (v == NULL)
        abort ();
      v[count].id = sqlite3_column_int64 (s, 0);
      v[count].op = cl_xstrdup ((const char *)sqlite3_column_text (s, 1));
      v[count].instance = cl_xstrdup ((const char *)sqlite3_column_text (s, 2));
      v[count].arg = arg ? cl_xstrdup ((const char *)arg) : NULL;
      count++;
    }
  *out = v;
  *n = count;
  return 0;
}

/* An intent is orphaned when, with the instance's lock taken (its owner
   held it for every change), the intent is still there in a fresh read
   and its owner is gone: an owner holds the lock whenever it adds or
   removes its intent, so neither can change under this check.  (An
   attached `run` keeps its intent while it waits for its workload,
   without the lock: its process is alive, and that is checked last.) */
static int
intent_orphaned (struct cl_manager *m, struct intent *it, cl_error_t *err)
{
  pid_t owner;
  uint64_t owner_start;
  int r = cl_mgr_intent_exists (m, it->id, &owner, &owner_start, err);

  if (r <= 0)
    return r;
  return !cl_mgr_proc_alive (owner, owner_start);
}

static int
intent_recover (struct cl_manager *m, struct intent *it, cl_error_t *err)
{
  cl_warn ("recovering interrupted `%s` of instance `%s`", it->op, it->instance);
  if (strcmp (it->op, "launch") == 0 || strcmp (it->op, "run") == 0 || strcmp (it->op, "copy") == 0
      || strcmp (it->op, "receive") == 0 || strcmp (it->op, "delete") == 0)
    return cl_mgr_instance_destroy (m, it->instance, it->id, err);
  if (strncmp (it->op, "snapshot-", 9) == 0
      && cl_mgr_snapshot_recover (m, it->op, it->instance, it->arg, err) < 0)
    return -1;
  if (strcmp (it->op, "move-out") == 0)
    return cl_mgr_move_out_recover (m, it->instance, it->arg, it->id, err);
  /* start: the instance's own reconcile tells what runs */
  return cl_mgr_intent_end (m, it->id, err);
}

static int
intent_reconcile (struct cl_manager *m, struct intent *it, cl_error_t *err)
{
  cleanup_instance_lock struct instance_lock lock = { .fd = -1 };
  int r = cl_mgr_instance_trylock (m, it->instance, &lock, err);

  if (r <= 0)
    return r; /* busy: its owner (or another recovery) is at work */
  r = intent_orphaned (m, it, err);
  if (r <= 0)
    return r;
  if (intent_recover (m, it, err) < 0)
    return cl_error_wrap (err, "recover the interrupted `%s` of instance `%s`", it->op,
                          it->instance);
  return 0;
}

int
cl_mgr_reconcile_intents (struct cl_manager *m, cl_error_t *err)
{
  struct intent *v;
  size_t n;
  int r = 0;

  if (intents_candidates (m, &v, &n, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    {
      if (r >= 0 && intent_reconcile (m, &v[i], err) < 0)
        r = -1;
      else if (r >= 0)
        r++;
      free (v[i].op);
      free (v[i].instance);
      free (v[i].arg);
    }
  free (v);
  return r;
}
