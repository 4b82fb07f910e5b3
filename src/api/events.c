/* SPDX-License-Identifier: Apache-2.0 */
/* Events: lifecycle changes and operation updates, kept in a ring of the
   last API_EVENT_RING and read by streams that each follow their own
   position.  A reader too slow to keep up skips what the ring dropped. */
#include "api/api_internal.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum
{
  EV_LIFECYCLE = 1,
  EV_OPERATION = 2,
  EV_LOGGING = 4,
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
         : strcmp (t, "logging") == 0   ? EV_LOGGING
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
                             "operation, logging)",
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

/* ---- logging events ----
   A message may be logged with any lock held, ctx->lock included (an
   operation's end): the hook only writes a record to a pipe (dropped when
   the pipe is full), and a thread of its own makes the events. */

static int log_pipe[2] = { -1, -1 };
static pthread_t log_thread;

static void
log_to_pipe (void *opaque, enum cl_log_level level, const char *msg)
{
  char rec[PIPE_BUF];
  int n = snprintf (rec, sizeof rec - 1, "%d %s", (int)level, msg);

  (void)opaque;
  if (n < 0)
    return;
  if (n > (int)sizeof rec - 2)
    n = (int)sizeof rec - 2;
  for (int i = 0; i < n; i++)
    if (rec[i] == '\n')
      rec[i] = ' ';
  rec[n++] = '\n';
  if (write (log_pipe[1], rec, (size_t)n) < 0)
    return; /* full: dropped, as a slow reader's events are */
}

/* One record: "LEVEL MESSAGE"; false for the stop record. */
static bool
log_record (struct cl_api_ctx *ctx, char *rec)
{
  char *msg = strchr (rec, ' ');
  int level = atoi (rec);

  if (rec[0] == 'X')
    return false;
  if (msg && level >= CL_LOG_ERROR && level <= CL_LOG_DEBUG)
    cl_api_event_emit (ctx, "logging",
                       json_pack ("{s:s, s:s, s:{}}", "level",
                                  cl_log_level_name ((enum cl_log_level)level), "message", msg + 1,
                                  "context"),
                       false);
  return true;
}

/* (read(2), not stdio: a FILE waiting in a read holds its lock, which
   fflush(NULL) before a fork would wait on) */
static void *
log_events (void *opaque)
{
  struct cl_api_ctx *ctx = opaque;
  char buf[2 * PIPE_BUF];
  size_t len = 0;
  ssize_t n;

  while ((n = read (log_pipe[0], buf + len, sizeof buf - 1 - len)) > 0 || (n < 0 && errno == EINTR))
    {
      char *start = buf, *nl;
      len += n > 0 ? (size_t)n : 0;
      buf[len] = '\0';
      while ((nl = memchr (start, '\n', len - (size_t)(start - buf))))
        {
          *nl = '\0';
          if (!log_record (ctx, start))
            goto out;
          start = nl + 1;
        }
      len -= (size_t)(start - buf);
      memmove (buf, start, len);
      if (len == sizeof buf - 1)
        len = 0; /* no record is that long */
    }
out:
  close (log_pipe[0]);
  return NULL;
}

int
cl_api_logging_events_start (struct cl_api_ctx *ctx, cl_error_t *err)
{
  if (pipe2 (log_pipe, O_CLOEXEC) < 0)
    return cl_error_errno (err, "pipe");
  fcntl (log_pipe[1], F_SETFL, O_NONBLOCK);
  if (pthread_create (&log_thread, NULL, log_events, ctx) != 0)
    {
      close (log_pipe[0]);
      close (log_pipe[1]);
      log_pipe[0] = log_pipe[1] = -1;
      return cl_error_make (err, 0, "no thread for the logging events");
    }
  cl_log_set_hook (log_to_pipe, NULL);
  return 0;
}

void
cl_api_logging_events_stop (void)
{
  static const char stop[] = "X\n";

  if (log_pipe[1] < 0)
    return;
  cl_log_set_hook (NULL, NULL);
  /* the write end stays open: a message being logged right now may
     still write to it (the process's exit closes it) */
  fcntl (log_pipe[1], F_SETFL, 0);
  if (write (log_pipe[1], stop, sizeof stop - 1) == (ssize_t)(sizeof stop - 1))
    pthread_join (log_thread, NULL);
}
