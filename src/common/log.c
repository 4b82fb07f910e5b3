/* SPDX-License-Identifier: Apache-2.0 */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;
static int log_json;
static int log_debug;
static int log_to_file;
static cl_log_hook_fn log_hook;
static void *log_hook_opaque;

void
cl_log_set_hook (cl_log_hook_fn fn, void *opaque)
{
  log_hook_opaque = opaque;
  __atomic_store_n (&log_hook, fn, __ATOMIC_RELEASE);
}

int
cl_log_init (const char *path, int json, int debug)
{
  log_json = json;
  log_debug = debug;
  if (path && *path)
    {
      int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (fd < 0)
        return -1;
      log_fd = fd;
      log_to_file = 1;
    }
  return 0;
}

static const char *const level_names[] = { "error", "warning", "info", "debug" };

const char *
cl_log_level_name (enum cl_log_level level)
{
  return level_names[level];
}

void
cl_log_write (enum cl_log_level level, const char *fmt, ...)
{
  char *msg = NULL, *line = NULL;
  va_list ap;
  int saved = errno, n;

  cl_log_hook_fn hook = __atomic_load_n (&log_hook, __ATOMIC_ACQUIRE);
  bool out_wants = !(level > CL_LOG_WARNING && !log_debug && !log_to_file)
                   /* Errors reach stderr through cl_error_report; here
                      they go only to a log file. */
                   && !(level == CL_LOG_ERROR && !log_to_file);

  if (level == CL_LOG_DEBUG && !log_debug)
    return;
  if (!out_wants && hook == NULL)
    return;
  va_start (ap, fmt);
  n = vasprintf (&msg, fmt, ap);
  va_end (ap);
  if (n < 0)
    goto out;
  if (hook)
    hook (log_hook_opaque, level, msg);
  if (!out_wants)
    goto out;

  if (log_json)
    {
      struct timeval tv;
      struct tm tm;
      char ts[64];
      json_t *o;

      gettimeofday (&tv, NULL);
      gmtime_r (&tv.tv_sec, &tm);
      n = strftime (ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
      snprintf (ts + n, sizeof ts - n, ".%06ldZ", (long)tv.tv_usec);
      o = json_pack ("{s:s, s:s, s:s}", "level", level_names[level], "msg", msg, "time", ts);
      line = o ? json_dumps (o, JSON_COMPACT) : NULL;
      json_decref (o);
      if (line)
        dprintf (log_fd, "%s\n", line);
    }
  else
    dprintf (log_fd, "%s: %s\n", level_names[level], msg);
out:
  free (msg);
  free (line);
  errno = saved;
}
