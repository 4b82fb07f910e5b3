/* SPDX-License-Identifier: Apache-2.0 */
/* Operations: long actions run in worker threads, each with its own
   cl_manager handle (SQLite connections are not shared between threads),
   in the order they were made for one instance.  Each status change is
   written to the api_operations table and sent as an event.  The table
   tells the next context which operations a dead process left behind. */
#include "api/api_internal.h"
#include "common/cancel.h"
#include "common/cleanup.h"
#include "common/db.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

enum
{
  OP_PENDING,
  OP_RUNNING,
  OP_SUCCESS,
  OP_FAILURE,
  OP_CANCELLED,
};

static const char *const status_names[]
    = { "pending", "running", "success", "failure", "cancelled" };
/* Incus's status codes, which its clients know */
static const int status_codes[] = { 105, 103, 200, 400, 401 };

struct api_op
{
  struct api_op *next;
  struct cl_api_ctx *ctx;
  char id[37];
  uint64_t seq;
  char *description;
  char *instance; /* ordering key; NULL when loaded from the table */
  bool is_instance;
  json_t *metadata; /* progress, result; NULL: none */
  char *source;     /* the lifecycle event's source */
  json_t *resources;
  json_t *args;
  const struct api_op_kind *kind;
  int status;
  char *err;
  int64_t created, updated;
  void *data; /* the kind's (data_ref, data_unref) */
  /* set (atomically) by DELETE of a running cancellable operation: the
     worker's cancellation points (common/cancel.h) read it */
  int cancel;
};

static void op_start (struct api_call *c, const struct api_op_kind *kind, const char *key,
                      json_t *resources, const char *source, bool instance, json_t *args,
                      json_t *metadata, void *data);

static const char schema[] = "CREATE TABLE IF NOT EXISTS api_operations ("
                             " id TEXT PRIMARY KEY,"
                             " seq INTEGER NOT NULL,"
                             " description TEXT NOT NULL,"
                             " resources TEXT NOT NULL,"
                             " status TEXT NOT NULL,"
                             " err TEXT NOT NULL DEFAULT '',"
                             " created INTEGER NOT NULL,"
                             " updated INTEGER NOT NULL,"
                             " owner_pid INTEGER NOT NULL,"
                             " owner_start INTEGER NOT NULL)";

static bool
finished (int status)
{
  return status >= OP_SUCCESS;
}

/* Pending: it has not begun; running: when its kind has cancellation
   points and it was not asked already. */
static bool
may_cancel (struct api_op *op)
{
  return op->status == OP_PENDING
         || (op->status == OP_RUNNING && op->kind && op->kind->cancellable
             && !__atomic_load_n (&op->cancel, __ATOMIC_RELAXED));
}

static int
status_from_name (const char *s)
{
  for (int i = 0; i <= OP_CANCELLED; i++)
    if (strcmp (status_names[i], s) == 0)
      return i;
  return OP_FAILURE;
}

static void
op_free (struct api_op *op)
{
  if (op->data && op->kind && op->kind->data_unref)
    op->kind->data_unref (op->data);
  free (op->description);
  free (op->instance);
  free (op->source);
  json_decref (op->resources);
  json_decref (op->args);
  json_decref (op->metadata);
  free (op->err);
  free (op);
}

static json_t *
op_json (struct api_op *op)
{
  char created[40], updated[40];

  cl_api_time_string (op->created, created, sizeof created);
  cl_api_time_string (op->updated, updated, sizeof updated);
  return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:O, s:O, s:b, s:s}", "id", op->id,
                    "class", op->kind && op->kind->op_class ? op->kind->op_class : "task",
                    "description", op->description, "created_at", created, "updated_at", updated,
                    "status", status_names[op->status], "status_code", status_codes[op->status],
                    "resources", op->resources, "metadata",
                    op->metadata ? op->metadata : json_null (), "may_cancel", may_cancel (op),
                    "err", op->err ? op->err : "");
}

/* Writes the operation's row; called with ctx->lock held.  A failure is
   logged: the operation itself goes on. */
static void
op_persist (struct api_op *op)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  cleanup_free char *res = json_dumps (op->resources, JSON_COMPACT);
  cl_error_t err = NULL;

  if (op->ctx->inline_ops)
    return;
  if (cl_db_prepare (op->ctx->db,
                     "INSERT OR REPLACE INTO api_operations (id, seq, description, resources,"
                     " status, err, created, updated, owner_pid, owner_start)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     &s, &err)
      == 0)
    {
      sqlite3_bind_text (s, 1, op->id, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (s, 2, (sqlite3_int64)op->seq);
      sqlite3_bind_text (s, 3, op->description, -1, SQLITE_STATIC);
      sqlite3_bind_text (s, 4, res, -1, SQLITE_STATIC);
      sqlite3_bind_text (s, 5, status_names[op->status], -1, SQLITE_STATIC);
      sqlite3_bind_text (s, 6, op->err ? op->err : "", -1, SQLITE_STATIC);
      sqlite3_bind_int64 (s, 7, op->created);
      sqlite3_bind_int64 (s, 8, op->updated);
      sqlite3_bind_int (s, 9, (int)getpid ());
      sqlite3_bind_int64 (s, 10, (sqlite3_int64)cl_proc_start_time (getpid ()));
      if (cl_db_step_done (op->ctx->db, s, &err) == 0)
        return;
    }
  cl_warn ("operation %s: record its status: %s", op->id, err->msg);
  cl_error_release (&err);
}

/* Status change, with ctx->lock held: recorded, sent as an event, and
   waiters woken. */
static void
op_set_status (struct api_op *op, int status, const char *errmsg)
{
  op->status = status;
  op->updated = time (NULL);
  if (errmsg)
    {
      free (op->err);
      op->err = cl_xstrdup (errmsg);
    }
  op_persist (op);
  cl_api_event_emit (op->ctx, "operation", op_json (op), true);
}

void
cl_api_ops_count (struct cl_api_ctx *ctx, int counts[OP_STATUS_COUNT])
{
  pthread_mutex_lock (&ctx->lock);
  for (struct api_op *o = ctx->ops; o; o = o->next)
    counts[o->status]++;
  pthread_mutex_unlock (&ctx->lock);
}

const char *
cl_api_op_status_name (int status)
{
  return status_names[status];
}

bool
cl_api_instance_busy (struct cl_api_ctx *ctx, const char *instance)
{
  for (struct api_op *o = ctx->ops; o; o = o->next)
    if (o->instance && strcmp (o->instance, instance) == 0 && !finished (o->status))
      return true;
  return false;
}

/* Is an operation made earlier on the same instance still to end? */
static bool
must_wait (struct api_op *op)
{
  for (struct api_op *o = op->next; o; o = o->next)
    if (o->instance && strcmp (o->instance, op->instance) == 0 && !finished (o->status))
      return true;
  return false;
}

/* Runs the operation's action and records how it ended; called with
   ctx->lock held (released while the action runs).  m: a handle to use,
   NULL to open one of its own. */
static void
op_run (struct api_op *op, struct cl_manager *m)
{
  struct cl_api_ctx *ctx = op->ctx;
  bool own = m == NULL;
  cl_error_t err = NULL;
  int r = 0;

  op_set_status (op, OP_RUNNING, NULL);
  pthread_mutex_unlock (&ctx->lock);

  if (own)
    r = cl_mgr_open (ctx->root, &m, &err);
  if (r == 0)
    {
      if (op->kind->cancellable)
        cl_cancel_scope (&op->cancel);
      r = op->kind->fn (op, m, op->args, &err);
      cl_cancel_scope (NULL);
    }
  if (m)
    {
      if (op->is_instance && ctx->op_ended)
        ctx->op_ended (ctx, m, op->instance);
      if (own)
        cl_mgr_close (m);
    }

  pthread_mutex_lock (&ctx->lock);
  if (r < 0)
    cl_debug ("operation %s (%s): %s", op->id, op->description, err->msg);
  /* a cancelled one that still ended well stays a success */
  if (r < 0 && __atomic_load_n (&op->cancel, __ATOMIC_RELAXED))
    op_set_status (op, OP_CANCELLED, "cancelled");
  else
    op_set_status (op, r < 0 ? OP_FAILURE : OP_SUCCESS, r < 0 ? err->msg : NULL);
  if (r == 0 && op->kind->lifecycle_action)
    cl_api_event_emit (
        ctx, "lifecycle",
        json_pack ("{s:s, s:s}", "action", op->kind->lifecycle_action, "source", op->source), true);
  cl_error_release (&err);
}

static void *
op_worker (void *arg)
{
  struct api_op *op = arg;
  struct cl_api_ctx *ctx = op->ctx;

  pthread_mutex_lock (&ctx->lock);
  while (op->status == OP_PENDING && must_wait (op))
    pthread_cond_wait (&ctx->changed, &ctx->lock);
  if (op->status != OP_CANCELLED)
    op_run (op, NULL);
  else if (op->data && op->kind->data_unref)
    {
      /* cancelled before it began: its data (an upload's file) goes now,
         not when the operation is dropped from the list */
      op->kind->data_unref (op->data);
      op->data = NULL;
    }
  ctx->workers--;
  pthread_cond_broadcast (&ctx->changed);
  pthread_mutex_unlock (&ctx->lock);
  return NULL;
}

static void
make_uuid (char out[37])
{
  unsigned char b[16];

  if (getrandom (b, sizeof b, 0) != (ssize_t)sizeof b)
    {
      uint64_t t = cl_now_ns ();
      for (size_t i = 0; i < sizeof b; i++)
        b[i] = (unsigned char)(t >> (i % 8 * 8)) ^ (unsigned char)(i * 37);
    }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  snprintf (out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
            b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
            b[15]);
}

/* Drops the oldest finished operations past API_OPS_KEPT (lock held). */
static void
ops_prune (struct cl_api_ctx *ctx)
{
  size_t n = 0;
  struct api_op **pp = &ctx->ops;

  while (*pp)
    {
      struct api_op *op = *pp;
      if (++n > API_OPS_KEPT && finished (op->status))
        {
          cleanup_stmt sqlite3_stmt *s = NULL;
          cl_error_t err = NULL;
          if (ctx->inline_ops)
            ;
          else if (cl_db_prepare (ctx->db, "DELETE FROM api_operations WHERE id = ?", &s, &err)
                   == 0)
            {
              sqlite3_bind_text (s, 1, op->id, -1, SQLITE_STATIC);
              if (cl_db_step_done (ctx->db, s, &err) < 0)
                cl_error_release (&err);
            }
          else
            cl_error_release (&err);
          *pp = op->next;
          op_free (op);
          continue;
        }
      pp = &op->next;
    }
}

void
cl_api_op_start (struct api_call *c, const struct api_op_kind *kind, const char *instance,
                 const char *source, json_t *args)
{
  cleanup_free char *url = cl_api_url ("/1.0/instances/", instance);
  cl_api_op_start_for (c, kind, instance, json_pack ("{s:[s]}", "instances", url),
                       source ? source : url, true, args);
}

struct cl_api_ctx *
cl_api_op_ctx (struct api_op *op)
{
  return op->ctx;
}

void
cl_api_op_set_metadata (struct api_op *op, json_t *metadata, const char *source)
{
  pthread_mutex_lock (&op->ctx->lock);
  json_decref (op->metadata);
  op->metadata = metadata;
  if (source)
    {
      free (op->source);
      op->source = cl_xstrdup (source);
    }
  op->updated = time (NULL);
  cl_api_event_emit (op->ctx, "operation", op_json (op), true);
  pthread_mutex_unlock (&op->ctx->lock);
}

void *
cl_api_op_data (struct api_op *op)
{
  return op->data;
}

void *
cl_api_op_data_ref (struct cl_api_ctx *ctx, const char *id, const struct api_op_kind *kind)
{
  void *data = NULL;

  pthread_mutex_lock (&ctx->lock);
  for (struct api_op *op = ctx->ops; op; op = op->next)
    if (strcmp (op->id, id) == 0 && op->kind == kind && op->data)
      data = kind->data_ref (op->data);
  pthread_mutex_unlock (&ctx->lock);
  return data;
}

void
cl_api_op_start_for (struct api_call *c, const struct api_op_kind *kind, const char *key,
                     json_t *resources, const char *source, bool instance, json_t *args)
{
  op_start (c, kind, key, resources, source, instance, args, NULL, NULL);
}

void
cl_api_op_start_data (struct api_call *c, const struct api_op_kind *kind, const char *key,
                      json_t *resources, const char *source, json_t *args, json_t *metadata,
                      void *data)
{
  op_start (c, kind, key, resources, source, false, args, metadata, data);
}

static void
op_start (struct api_call *c, const struct api_op_kind *kind, const char *key, json_t *resources,
          const char *source, bool instance, json_t *args, json_t *metadata, void *data)
{
  struct cl_api_ctx *ctx = c->ctx;
  struct api_op *op = cl_xmalloc0 (sizeof *op);
  pthread_attr_t attr;
  pthread_t t;
  json_t *body;
  int r;

  make_uuid (op->id);
  op->ctx = ctx;
  op->description = cl_xstrdup (kind->description);
  op->instance = cl_xstrdup (key);
  op->is_instance = instance;
  op->source = cl_xstrdup (source);
  op->resources = resources;
  op->args = args;
  op->kind = kind;
  op->metadata = metadata;
  op->data = data;
  op->created = op->updated = time (NULL);
  op->status = OP_PENDING;

  pthread_mutex_lock (&ctx->lock);
  if (ctx->closing)
    {
      pthread_mutex_unlock (&ctx->lock);
      op_free (op);
      cl_api_reply_error (c, 503, "the server is shutting down");
      return;
    }
  op->seq = ++ctx->op_seq;
  op->next = ctx->ops;
  ctx->ops = op;
  ops_prune (ctx);
  op_set_status (op, OP_PENDING, NULL);
  if (ctx->inline_ops)
    {
      /* to its end here (the reply carries it ended); operations are one
         at a time in such a context, so none waits for another */
      struct cl_manager *m = NULL;
      cl_error_t err = NULL;
      pthread_mutex_unlock (&ctx->lock);
      if (cl_api_manager_get (ctx, &m, &err) < 0)
        cl_error_release (&err);
      pthread_mutex_lock (&ctx->lock);
      op_run (op, m);
      body = op_json (op);
      pthread_mutex_unlock (&ctx->lock);
      if (m)
        cl_api_manager_put (ctx, m);
      goto reply;
    }
  body = op_json (op);
  pthread_attr_init (&attr);
  pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
  r = pthread_create (&t, &attr, op_worker, op);
  pthread_attr_destroy (&attr);
  if (r != 0)
    {
      op_set_status (op, OP_FAILURE, "could not start a worker thread");
      pthread_mutex_unlock (&ctx->lock);
      json_decref (body);
      cl_api_reply_error (c, 500, "start a worker thread: %s", strerror (r));
      return;
    }
  ctx->workers++;
  ctx->ops_started++;
  pthread_mutex_unlock (&ctx->lock);

reply:
  cl_api_response_clear (c->resp);
  c->resp->status = 202;
  c->resp->content_type = "application/json";
  c->resp->location = cl_strdup_printf ("/1.0/operations/%s", op->id);
  c->resp->json
      = json_pack ("{s:s, s:s, s:i, s:s, s:o}", "type", "async", "status", "Operation created",
                   "status_code", 100, "operation", c->resp->location, "metadata", body);
}

/* ---- the table ---- */

int
cl_api_ops_init (struct cl_api_ctx *ctx, cl_error_t *err)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  struct api_op **tail = &ctx->ops;
  int64_t now = time (NULL);

  if (cl_db_exec (ctx->db, schema, err) < 0
      || cl_db_prepare (ctx->db,
                        "SELECT id, seq, description, resources, status, err, created, updated,"
                        " owner_pid, owner_start FROM api_operations ORDER BY seq DESC",
                        &s, err)
             < 0)
    return -1;
  while (sqlite3_step (s) == SQLITE_ROW)
    {
      struct api_op *op = cl_xmalloc0 (sizeof *op);
      json_error_t je;
      pid_t owner = sqlite3_column_int (s, 8);
      uint64_t owner_start = (uint64_t)sqlite3_column_int64 (s, 9);
      op->ctx = ctx;
      snprintf (op->id, sizeof op->id, "%s", (const char *)sqlite3_column_text (s, 0));
      op->seq = (uint64_t)sqlite3_column_int64 (s, 1);
      op->description = cl_xstrdup ((const char *)sqlite3_column_text (s, 2));
      op->resources = json_loads ((const char *)sqlite3_column_text (s, 3), 0, &je);
      if (op->resources == NULL)
        op->resources = json_object ();
      op->status = status_from_name ((const char *)sqlite3_column_text (s, 4));
      op->err = cl_xstrdup ((const char *)sqlite3_column_text (s, 5));
      op->created = sqlite3_column_int64 (s, 6);
      op->updated = sqlite3_column_int64 (s, 7);
      if (ctx->op_seq < op->seq)
        ctx->op_seq = op->seq;
      if (!finished (op->status) && (owner_start == 0 || cl_proc_start_time (owner) != owner_start))
        {
          /* its process died: nothing will end it */
          cl_warn ("operation %s (%s) was interrupted: marked failed", op->id, op->description);
          op->status = OP_FAILURE;
          op->updated = now;
          free (op->err);
          op->err = cl_xstrdup ("interrupted: the process running it stopped before it ended");
          op_persist (op);
        }
      *tail = op;
      tail = &op->next;
    }
  ops_prune (ctx);
  return 0;
}

void
cl_api_ops_free (struct cl_api_ctx *ctx)
{
  while (ctx->ops)
    {
      struct api_op *op = ctx->ops;
      ctx->ops = op->next;
      op_free (op);
    }
}

/* ---- handlers ---- */

static struct api_op *
op_find (struct api_call *c)
{
  for (struct api_op *op = c->ctx->ops; op; op = op->next)
    if (strcmp (op->id, c->params[0]) == 0)
      return op;
  return NULL;
}

void
cl_api_operations_list (struct api_call *c)
{
  json_t *list = json_array ();
  long recursion;

  if (cl_api_query_int (c, "recursion", 0, 1, 0, &recursion) < 0)
    {
      json_decref (list);
      return;
    }
  pthread_mutex_lock (&c->ctx->lock);
  for (struct api_op *op = c->ctx->ops; op; op = op->next)
    json_array_append_new (list,
                           recursion ? op_json (op) : json_sprintf ("/1.0/operations/%s", op->id));
  pthread_mutex_unlock (&c->ctx->lock);
  cl_api_reply_sync (c, 200, list);
}

/* Replies with the operation once it ended or `timeout` seconds passed
   (-1: no limit, 0: at once). */
static void
op_reply (struct api_call *c, long timeout)
{
  struct cl_api_ctx *ctx = c->ctx;
  struct timespec deadline;
  struct api_op *op;
  json_t *j = NULL;

  clock_gettime (CLOCK_REALTIME, &deadline);
  deadline.tv_sec += timeout;
  pthread_mutex_lock (&ctx->lock);
  /* found again after each wake-up: pruning may free what ended */
  while ((op = op_find (c)) && !finished (op->status) && !ctx->closing && timeout != 0)
    if (timeout < 0)
      pthread_cond_wait (&ctx->changed, &ctx->lock);
    else if (pthread_cond_timedwait (&ctx->changed, &ctx->lock, &deadline) == ETIMEDOUT)
      {
        op = op_find (c);
        break;
      }
  if (op)
    j = op_json (op);
  pthread_mutex_unlock (&ctx->lock);
  if (j == NULL)
    cl_api_reply_error (c, 404, "operation `%s` not found", c->params[0]);
  else
    cl_api_reply_sync (c, 200, j);
}

void
cl_api_operation_get (struct api_call *c)
{
  op_reply (c, 0);
}

void
cl_api_operation_wait (struct api_call *c)
{
  long timeout;

  if (cl_api_query_int (c, "timeout", -1, 86400, -1, &timeout) == 0)
    op_reply (c, timeout);
}

/* A running operation asked to stop gets this long to reach a
   cancellation point and undo its work, before DELETE answers. */
#define CANCEL_WAIT_S 30

void
cl_api_operation_cancel (struct api_call *c)
{
  struct cl_api_ctx *ctx = c->ctx;
  struct timespec deadline;
  struct api_op *op;
  json_t *j = NULL;
  int status = -1;
  bool cancellable = false, asked = false;
  cleanup_free char *what = NULL;

  pthread_mutex_lock (&ctx->lock);
  op = op_find (c);
  if (op)
    {
      status = op->status;
      cancellable = may_cancel (op);
      asked = __atomic_load_n (&op->cancel, __ATOMIC_RELAXED) != 0;
      what = cl_xstrdup (op->description);
      if (status == OP_PENDING)
        {
          /* its worker sees it when it wakes, and returns */
          op_set_status (op, OP_CANCELLED, "cancelled");
          pthread_cond_broadcast (&ctx->changed);
        }
      else if (cancellable)
        {
          /* its worker stops at its next cancellation point, undoes what
             it did and ends `cancelled`: waited for here, a while */
          __atomic_store_n (&op->cancel, 1, __ATOMIC_RELAXED);
          clock_gettime (CLOCK_REALTIME, &deadline);
          deadline.tv_sec += CANCEL_WAIT_S;
          while ((op = op_find (c)) && !finished (op->status) && !ctx->closing)
            if (pthread_cond_timedwait (&ctx->changed, &ctx->lock, &deadline) == ETIMEDOUT)
              {
                op = op_find (c);
                break;
              }
        }
      if (op)
        j = op_json (op);
    }
  pthread_mutex_unlock (&ctx->lock);
  if (status < 0)
    cl_api_reply_error (c, 404, "operation `%s` not found", c->params[0]);
  else if (!cancellable)
    {
      if (finished (status))
        cl_api_reply_error (c, 409, "operation `%s` is %s: it ended already", c->params[0],
                            status_names[status]);
      else if (asked)
        cl_api_reply_error (c, 409, "operation `%s` (%s) is being cancelled already", c->params[0],
                            what);
      else
        cl_api_reply_error (c, 409,
                            "operation `%s` (%s) is running and cannot be cancelled: it has no"
                            " point where it could stop and leave nothing behind",
                            c->params[0], what);
      json_decref (j);
    }
  else if (j == NULL)
    cl_api_reply_error (c, 404, "operation `%s` not found", c->params[0]);
  else
    cl_api_reply_sync (c, 200, j);
}
