/* SPDX-License-Identifier: Apache-2.0 */
/* Errors, after crun's libcrun_error_t: every fallible function returns an
   int (negative on failure) and takes `cl_error_t *err` last.  The message
   is built where the failure happened and wrapped with context on the way
   up; the front end prints it once, on one line. */
#ifndef CLOISON_ERROR_H
#define CLOISON_ERROR_H

#include <stdarg.h>

struct cl_error_s
{
  int status; /* errno, or 0 when the failure is not a system error */
  char *msg;
};
typedef struct cl_error_s *cl_error_t;

/* Sets *err (if not already set) and returns -1.  With status != 0 the
   message ends with ": strerror(status)". */
int cl_error_make (cl_error_t *err, int status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* Same with errno as status. */
#define cl_error_errno(err, ...) cl_error_make ((err), errno, __VA_ARGS__)
/* Prefixes the pending error's message with "context: ".  Returns -1. */
int cl_error_wrap (cl_error_t *err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
void cl_error_release (cl_error_t *err);
/* Prints "prog: msg" on stderr and to the log, then releases.  Returns the
   exit code to use (1). */
int cl_error_report (cl_error_t *err, const char *prog);

#endif
