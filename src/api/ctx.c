/* SPDX-License-Identifier: Apache-2.0 */
/* The router's context: the state root, operations, events, and a few
   manager handles kept open for synchronous requests. */
#include "api/api_internal.h"
#include "common/cleanup.h"
#include "common/db.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const leftovers[] = { "incoming", "uploads" };

int
cl_api_ctx_new (const char *root, const struct cl_api_options *opts, struct cl_api_ctx **out,
                cl_error_t *err)
{
  struct cl_api_ctx *ctx = cl_xmalloc0 (sizeof *ctx);
  struct cl_manager *m = NULL;

  ctx->root = cl_xstrdup (root);
  ctx->body_limit = opts && opts->body_limit ? opts->body_limit : CL_API_BODY_LIMIT_DEFAULT;
  ctx->exec_helper = opts && opts->exec_helper ? cl_xstrdup (opts->exec_helper) : NULL;
  clock_gettime (CLOCK_MONOTONIC, &ctx->started);
  pthread_mutex_init (&ctx->lock, NULL);
  pthread_cond_init (&ctx->changed, NULL);
  ctx->inline_ops = opts && opts->inline_ops;
  ctx->op_ended = cl_api_watch_note;
  /* instances first: their interrupted work is undone or finished */
  if (cl_mgr_open (root, &m, err) < 0
      || (!ctx->inline_ops
          && (cl_db_open (root, &ctx->db, err) < 0 || cl_api_ops_init (ctx, err) < 0
              || cl_api_trust_init (ctx, err) < 0)))
    {
      if (m)
        cl_mgr_close (m);
      cl_api_ctx_free (ctx, 0);
      return -1;
    }
  /* what a dead daemon was receiving: archives of instances moved here
     (move.c), image uploads (upload.c) */
  if (!ctx->inline_ops)
    for (size_t i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++)
      {
        cleanup_free char *dir = cl_strdup_printf ("%s/%s", root, leftovers[i]);
        cl_error_t ignored = NULL;
        if (cl_rm_rf (dir, &ignored) < 0)
          cl_error_release (&ignored);
      }
  cl_api_manager_put (ctx, m);
  *out = ctx;
  return 0;
}

void
cl_api_ctx_shutdown (struct cl_api_ctx *ctx)
{
  pthread_mutex_lock (&ctx->lock);
  ctx->closing = true;
  pthread_cond_broadcast (&ctx->changed);
  pthread_mutex_unlock (&ctx->lock);
}

bool
cl_api_ctx_free (struct cl_api_ctx *ctx, int timeout_ms)
{
  struct timespec deadline;

  if (ctx == NULL)
    return true;
  clock_gettime (CLOCK_REALTIME, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  pthread_mutex_lock (&ctx->lock);
  ctx->closing = true;
  pthread_cond_broadcast (&ctx->changed);
  pthread_mutex_unlock (&ctx->lock);
  cl_api_watch_stop (ctx);
  pthread_mutex_lock (&ctx->lock);
  while (ctx->workers > 0)
    if (pthread_cond_timedwait (&ctx->changed, &ctx->lock, &deadline) == ETIMEDOUT)
      break;
  if (ctx->workers > 0)
    {
      pthread_mutex_unlock (&ctx->lock);
      return false;
    }
  pthread_mutex_unlock (&ctx->lock);
  for (size_t i = 0; i < ctx->n_pool; i++)
    cl_mgr_close (ctx->pool[i]);
  cl_api_ops_free (ctx);
  cl_api_events_free_ring (ctx);
  if (ctx->db)
    cl_db_close (ctx->db);
  pthread_cond_destroy (&ctx->changed);
  pthread_mutex_destroy (&ctx->lock);
  free (ctx->root);
  free (ctx->exec_helper);
  free (ctx);
  return true;
}

bool
cl_api_ctx_closing (struct cl_api_ctx *ctx)
{
  bool closing;

  pthread_mutex_lock (&ctx->lock);
  closing = ctx->closing;
  pthread_mutex_unlock (&ctx->lock);
  return closing;
}

const char *
cl_api_ctx_exec_helper (struct cl_api_ctx *ctx)
{
  return ctx->exec_helper;
}
