/* SPDX-License-Identifier: Apache-2.0 */
/* Events: lifecycle changes and operation updates, kept in a ring of the
   last API_EVENT_RING and read by streams that each follow their own
   position.  A reader too slow to keep up skips what the ring dropped. */
#include "api/api_internal.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum
{
  EV_LIFECYCLE = 1,
  EV_OPERATION = 2,
};

struct cl_api_events
{
  struct cl_api_ctx *ctx;
  uint64_t next;
  unsigned types;
};

void
cl_api_time_string (int64_t t, char *buf, size_t len)
{
  time_t tt = (time_t)t;
  struct tm tm;
  strftime (buf, len, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&tt, &tm));
}

void
cl_api_event_emit (struct cl_api_ctx *ctx, const char *type, json_t *metadata, bool locked)
{
  struct timespec ts;
  char when[40], frac[24];
  json_t *ev;

  clock_gettime (CLOCK_REALTIME, &ts);
  cl_api_time_string (ts.tv_sec, when, sizeof when);
  /* RFC 3339 with microseconds: "...:05.123456Z" */
  snprintf (frac, sizeof frac, ".%06dZ", (int)(ts.tv_nsec / 1000) % 1000000);
  strcpy (when + strlen (when) - 1, frac);
  ev = json_pack ("{s:s, s:s, s:o}", "type", type, "timestamp", when, "metadata", metadata);
  if (!locked)
    pthread_mutex_lock (&ctx->lock);
  json_decref (ctx->ring[ctx->ev_next % API_EVENT_RING]);
  ctx->ring[ctx->ev_next % API_EVENT_RING] = ev;
  ctx->ev_next++;
  if (ctx->observer)
    ctx->observer (ctx->observer_opaque, ev);
  pthread_cond_broadcast (&ctx->changed);
  if (!locked)
    pthread_mutex_unlock (&ctx->lock);
}

void
cl_api_ctx_observe (struct cl_api_ctx *ctx, cl_api_event_fn fn, void *opaque)
{
  pthread_mutex_lock (&ctx->lock);
  ctx->observer = fn;
  ctx->observer_opaque = opaque;
  pthread_mutex_unlock (&ctx->lock);
}

void
cl_api_lifecycle (struct cl_api_ctx *ctx, const char *action, const char *source)
{
  cl_api_event_emit (ctx, "lifecycle", json_pack ("{s:s, s:s}", "action", action, "source", source),
                     false);
}

void
cl_api_events_free_ring (struct cl_api_ctx *ctx)
{
  for (size_t i = 0; i < API_EVENT_RING; i++)
    json_decref (ctx->ring[i]);
}

static unsigned
type_bit (const char *t)
{
  return strcmp (t, "lifecycle") == 0   ? EV_LIFECYCLE
         : strcmp (t, "operation") == 0 ? EV_OPERATION
                                        : 0;
}

int
cl_api_events_next (struct cl_api_events *ev, int timeout_ms, char **line)
{
  struct cl_api_ctx *ctx = ev->ctx;
  struct timespec deadline;
  json_t *found = NULL;
  int r = 0;

  clock_gettime (CLOCK_REALTIME, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
  if (deadline.tv_nsec >= 1000000000)
    deadline.tv_sec++, deadline.tv_nsec -= 1000000000;
  pthread_mutex_lock (&ctx->lock);
  for (;;)
    {
      if (ev->next + API_EVENT_RING < ctx->ev_next)
        ev->next = ctx->ev_next - API_EVENT_RING; /* dropped: skip ahead */
      while (ev->next < ctx->ev_next && found == NULL)
        {
          json_t *e = ctx->ring[ev->next++ % API_EVENT_RING];
          if (type_bit (json_string_value (json_object_get (e, "type"))) & ev->types)
            found = json_incref (e);
        }
      if (found || ctx->closing)
        break;
      if (pthread_cond_timedwait (&ctx->changed, &ctx->lock, &deadline) == ETIMEDOUT)
        break;
    }
  if (found == NULL && ctx->closing)
    r = -1;
  pthread_mutex_unlock (&ctx->lock);
  if (found)
    {
      char *s = json_dumps (found, JSON_COMPACT);
      *line = cl_strdup_printf ("%s\n", s);
      free (s);
      json_decref (found);
      r = 1;
    }
  return r;
}

void
cl_api_events_free (struct cl_api_events *ev)
{
  free (ev);
}

int
cl_api_events_open (struct cl_api_ctx *ctx, const char *types, struct cl_api_events **out,
                    cl_error_t *err)
{
  struct cl_api_events *ev = cl_xmalloc0 (sizeof *ev);

  ev->ctx = ctx;
  ev->types = types ? 0 : EV_LIFECYCLE | EV_OPERATION;
  if (types)
    {
      char *copy = cl_xstrdup (types), *save = NULL;
      for (char *t = strtok_r (copy, ",", &save); t; t = strtok_r (NULL, ",", &save))
        {
          if (type_bit (t) == 0)
            {
              cl_error_make (err, 0,
                             "query parameter type: unknown event type `%s` (lifecycle, "
                             "operation)",
                             t);
              free (copy);
              free (ev);
              return -1;
            }
          ev->types |= type_bit (t);
        }
      free (copy);
    }
  pthread_mutex_lock (&ctx->lock);
  ev->next = ctx->ev_next; /* from now on */
  pthread_mutex_unlock (&ctx->lock);
  *out = ev;
  return 0;
}
