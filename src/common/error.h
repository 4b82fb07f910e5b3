/* SPDX-License-Identifier: Apache-2.0 */
/* Errors, after crun's libcrun_error_t: every fallible function returns an
   int (negative on failure) and takes `cl_error_t *err` last.  The message
   is built where the failure happened and wrapped with context on the way
   up; the front end prints it once, on one line. */
#ifndef CLOISON_ERROR_H
#define CLOISON_ERROR_H

#include <stdarg.h>

/* What kind of failure, set where it is raised, for a caller that must
   tell them apart (the REST API's status codes: 404, 409, 400, 503). */
enum cl_error_kind
{
  CL_ERR_FAILED = 0, /* anything else: the system's or our own (500) */
  CL_ERR_NOT_FOUND,  /* no such instance, snapshot, image, network (404) */
  CL_ERR_CONFLICT,   /* exists already, is (not) running, is in use (409) */
  CL_ERR_INVALID,    /* a value the caller gave is wrong (400) */
  CL_ERR_BUSY,       /* another command holds it for now: try again (503) */
};

struct cl_error_s
{
  int status; /* errno, or 0 when the failure is not a system error */
  enum cl_error_kind kind;
  char *msg;
};
typedef struct cl_error_s *cl_error_t;

/* Sets *err (if not already set) and returns -1.  With status != 0 the
   message ends with ": strerror(status)". */
int cl_error_make (cl_error_t *err, int status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* The same for a failure of a kind (status 0). */
int cl_error_raise (cl_error_t *err, enum cl_error_kind kind, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* Sets the kind of the pending error.  Returns -1. */
int cl_error_set_kind (cl_error_t *err, enum cl_error_kind kind);
/* The kind of an error (NULL: CL_ERR_FAILED). */
enum cl_error_kind cl_error_kind_of (cl_error_t err);
/* Same with errno as status. */
#define cl_error_errno(err, ...) cl_error_make ((err), errno, __VA_ARGS__)
/* Prefixes the pending error's message with "context: ".  Returns -1. */
int cl_error_wrap (cl_error_t *err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
void cl_error_release (cl_error_t *err);
/* Prints "prog: msg" on stderr and to the log, then releases.  Returns the
   exit code to use (1). */
int cl_error_report (cl_error_t *err, const char *prog);

#endif
