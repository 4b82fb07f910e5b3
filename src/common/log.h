/* SPDX-License-Identifier: Apache-2.0 */
/* Logging.  Default: warnings and errors on stderr.  `--log FILE` sends
   them to a file instead, as text or as JSON lines {"level","msg","time"}
   (the form podman's conmon reads on failure). */
#ifndef CLOISON_LOG_H
#define CLOISON_LOG_H

enum cl_log_level
{
  CL_LOG_ERROR,
  CL_LOG_WARNING,
  CL_LOG_INFO,
  CL_LOG_DEBUG,
};

/* path NULL: stderr.  json: JSON lines.  Returns -1 with errno on failure. */
int cl_log_init (const char *path, int json, int debug);
void cl_log_write (enum cl_log_level level, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

/* fn gets every message of `level` info and above (debug ones too with
   debug set), whatever the output's own filter, from any thread and with
   any lock held: it must not block nor take locks of the caller's. */
typedef void (*cl_log_hook_fn) (void *opaque, enum cl_log_level level, const char *msg);
void cl_log_set_hook (cl_log_hook_fn fn, void *opaque);
const char *cl_log_level_name (enum cl_log_level level);

#define cl_debug(...) cl_log_write (CL_LOG_DEBUG, __VA_ARGS__)
#define cl_info(...) cl_log_write (CL_LOG_INFO, __VA_ARGS__)
#define cl_warn(...) cl_log_write (CL_LOG_WARNING, __VA_ARGS__)

#endif
