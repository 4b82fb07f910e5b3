/* SPDX-License-Identifier: Apache-2.0 */
/* The watcher: lifecycle events for what the API did not do itself (a
   workload that exits, a `cloison` command, another daemon's client).
   The state database says when anything changed (PRAGMA data_version
   moves when another connection commits); only then are the instances
   listed and compared with what was known.  An instance with an
   operation still to end is left to that operation, which records the
   status it leaves (cl_api_watch_note), so no change is told twice. */
#include "api/api_internal.h"
#include "common/cleanup.h"
#include "common/db.h"
#include "common/json.h"
#include "common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct watch
{
  struct cl_api_ctx *ctx;
  int interval_ms;
  sqlite3 *db;
  struct cl_manager *m;
};

static int64_t
data_version (sqlite3 *db)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  cl_error_t err = NULL;

  if (cl_db_prepare (db, "PRAGMA data_version", &s, &err) < 0)
    {
      cl_error_release (&err);
      return -1;
    }
  return sqlite3_step (s) == SQLITE_ROW ? sqlite3_column_int64 (s, 0) : -1;
}

static void
observed (struct cl_api_ctx *ctx, const char *action, const char *name)
{
  cleanup_free char *url = cl_api_url ("/1.0/instances/", name);
  cl_api_event_emit (
      ctx, "lifecycle",
      json_pack ("{s:s, s:s, s:{s:b}}", "action", action, "source", url, "context", "observed", 1),
      true);
}

/* name -> status of every instance, or NULL. */
static json_t *
statuses (struct cl_manager *m)
{
  json_t *list = NULL, *map, *e;
  cl_error_t err = NULL;
  size_t i;

  if (cl_mgr_instance_list (m, &list, &err) < 0)
    {
      cl_warn ("watch: list the instances: %s", err->msg);
      cl_error_release (&err);
      return NULL;
    }
  map = json_object ();
  json_array_foreach (list, i, e) json_object_set (
      map, json_string_value (json_object_get (e, "name")), json_object_get (e, "status"));
  json_decref (list);
  return map;
}

/* Compares with what was known and tells the differences (lock held). */
static void
compare (struct cl_api_ctx *ctx, json_t *now)
{
  const char *name;
  json_t *status, *tmp;
  void *it;

  json_object_foreach (now, name, status)
  {
    const char *was = json_string_value (json_object_get (ctx->known, name));
    const char *is = json_string_value (status);
    if (cl_api_instance_busy (ctx, name) || (was && strcmp (was, is) == 0))
      continue;
    if (was == NULL)
      observed (ctx, "instance-created", name);
    else if (strcmp (is, "frozen") == 0)
      observed (ctx, "instance-paused", name);
    else if (strcmp (is, "running") == 0)
      observed (ctx, strcmp (was, "frozen") == 0 ? "instance-resumed" : "instance-started", name);
    else if (strcmp (is, "stopped") == 0)
      observed (ctx, "instance-stopped", name);
    else
      observed (ctx, "instance-updated", name);
    json_object_set (ctx->known, name, status);
  }
  json_object_foreach_safe (ctx->known, it, name, tmp)
  {
    if (json_object_get (now, name) || cl_api_instance_busy (ctx, name))
      continue;
    observed (ctx, "instance-deleted", name);
    json_object_del (ctx->known, name);
  }
}

static void *
watch_run (void *arg)
{
  struct watch *w = arg;
  struct cl_api_ctx *ctx = w->ctx;
  int64_t seen = data_version (w->db);

  pthread_mutex_lock (&ctx->lock);
  while (!ctx->closing)
    {
      struct timespec deadline;
      int64_t v;
      json_t *now;

      clock_gettime (CLOCK_REALTIME, &deadline);
      deadline.tv_sec += w->interval_ms / 1000;
      deadline.tv_nsec += (long)(w->interval_ms % 1000) * 1000000;
      if (deadline.tv_nsec >= 1000000000)
        deadline.tv_sec++, deadline.tv_nsec -= 1000000000;
      while (!ctx->closing
             && pthread_cond_timedwait (&ctx->changed, &ctx->lock, &deadline) != ETIMEDOUT)
        ;
      if (ctx->closing)
        break;
      pthread_mutex_unlock (&ctx->lock);
      v = data_version (w->db);
      now = v != seen ? statuses (w->m) : NULL;
      if (now)
        seen = v;
      pthread_mutex_lock (&ctx->lock);
      if (now)
        compare (ctx, now);
      json_decref (now);
    }
  pthread_mutex_unlock (&ctx->lock);
  cl_mgr_close (w->m);
  cl_db_close (w->db);
  free (w);
  return NULL;
}

int
cl_api_watch_start (struct cl_api_ctx *ctx, int interval_ms, cl_error_t *err)
{
  struct watch *w = calloc (1, sizeof *w);
  json_t *known;
  int r;

  if (w == NULL)
    abort ();
  w->ctx = ctx;
  w->interval_ms = interval_ms > 0 ? interval_ms : 1000;
  if (cl_db_open (ctx->root, &w->db, err) < 0 || cl_mgr_open (ctx->root, &w->m, err) < 0
      || (known = statuses (w->m)) == NULL)
    {
      if (w->m)
        cl_mgr_close (w->m);
      if (w->db)
        cl_db_close (w->db);
      free (w);
      return *err ? -1 : cl_error_make (err, 0, "watch: list the instances");
    }
  pthread_mutex_lock (&ctx->lock);
  ctx->known = known;
  r = pthread_create (&ctx->watcher, NULL, watch_run, w);
  if (r != 0)
    {
      json_decref (ctx->known);
      ctx->known = NULL;
    }
  pthread_mutex_unlock (&ctx->lock);
  if (r != 0)
    {
      cl_mgr_close (w->m);
      cl_db_close (w->db);
      free (w);
      return cl_error_make (err, r, "start the watcher thread");
    }
  return 0;
}

static bool
watching (struct cl_api_ctx *ctx)
{
  bool w;

  pthread_mutex_lock (&ctx->lock);
  w = ctx->known != NULL;
  pthread_mutex_unlock (&ctx->lock);
  return w;
}

void
cl_api_watch_note (struct cl_api_ctx *ctx, struct cl_manager *m, const char *instance)
{
  cl_error_t err = NULL;
  json_t *info = NULL;

  if (!watching (ctx))
    return;
  if (cl_mgr_instance_info (m, instance, &info, &err) < 0)
    cl_error_release (&err);
  pthread_mutex_lock (&ctx->lock);
  if (info)
    json_object_set (ctx->known, instance, json_object_get (info, "status"));
  else
    json_object_del (ctx->known, instance);
  pthread_mutex_unlock (&ctx->lock);
  json_decref (info);
}

void
cl_api_watch_stop (struct cl_api_ctx *ctx)
{
  if (!watching (ctx))
    return;
  pthread_join (ctx->watcher, NULL); /* ctx->closing is set: it ends */
  json_decref (ctx->known);
  ctx->known = NULL;
}
