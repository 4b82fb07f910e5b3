/* SPDX-License-Identifier: Apache-2.0 */
/* The context's idle manager handles, for synchronous requests and
   inline operations: below ctx.c and operations.c, which both use it. */
#include "api/api_internal.h"

int
cl_api_manager_get (struct cl_api_ctx *ctx, struct cl_manager **m, cl_error_t *err)
{
  pthread_mutex_lock (&ctx->lock);
  *m = ctx->n_pool ? ctx->pool[--ctx->n_pool] : NULL;
  pthread_mutex_unlock (&ctx->lock);
  if (*m)
    return 0;
  return cl_mgr_open (ctx->root, m, err);
}

void
cl_api_manager_put (struct cl_api_ctx *ctx, struct cl_manager *m)
{
  pthread_mutex_lock (&ctx->lock);
  if (ctx->n_pool < API_MANAGER_POOL)
    {
      ctx->pool[ctx->n_pool++] = m;
      m = NULL;
    }
  pthread_mutex_unlock (&ctx->lock);
  if (m)
    cl_mgr_close (m);
}
