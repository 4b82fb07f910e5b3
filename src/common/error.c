/* SPDX-License-Identifier: Apache-2.0 */
#include "common/error.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
vformat (const char *fmt, va_list ap)
{
  char *s = NULL;
  if (vasprintf (&s, fmt, ap) < 0)
    abort ();
  return s;
}

static int
error_new (cl_error_t *err, int status, enum cl_error_kind kind, const char *fmt, va_list ap)
{
  char *msg;

  if (err == NULL || *err != NULL)
    return -1;
  msg = vformat (fmt, ap);
  if (status)
    {
      char *full = NULL;
      if (asprintf (&full, "%s: %s", msg, strerror (status)) < 0)
        abort ();
      free (msg);
      msg = full;
    }
  *err = calloc (1, sizeof **err);
  if (*err == NULL)
    abort ();
  (*err)->status = status;
  (*err)->kind = kind;
  (*err)->msg = msg;
  return -1;
}

int
cl_error_make (cl_error_t *err, int status, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  error_new (err, status, CL_ERR_FAILED, fmt, ap);
  va_end (ap);
  return -1;
}

int
cl_error_raise (cl_error_t *err, enum cl_error_kind kind, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  error_new (err, 0, kind, fmt, ap);
  va_end (ap);
  return -1;
}

int
cl_error_set_kind (cl_error_t *err, enum cl_error_kind kind)
{
  if (err && *err)
    (*err)->kind = kind;
  return -1;
}

enum cl_error_kind
cl_error_kind_of (cl_error_t err)
{
  return err ? err->kind : CL_ERR_FAILED;
}

int
cl_error_wrap (cl_error_t *err, const char *fmt, ...)
{
  va_list ap;
  char *ctx, *full = NULL;

  if (err == NULL || *err == NULL)
    return -1;
  va_start (ap, fmt);
  ctx = vformat (fmt, ap);
  va_end (ap);
  if (asprintf (&full, "%s: %s", ctx, (*err)->msg) < 0)
    abort ();
  free (ctx);
  free ((*err)->msg);
  (*err)->msg = full;
  return -1;
}

void
cl_error_release (cl_error_t *err)
{
  if (err == NULL || *err == NULL)
    return;
  free ((*err)->msg);
  free (*err);
  *err = NULL;
}

int
cl_error_report (cl_error_t *err, const char *prog)
{
  if (err && *err)
    {
      /* One line, whatever the message carried. */
      for (char *p = (*err)->msg; *p; p++)
        if (*p == '\n')
          *p = ' ';
      cl_log_write (CL_LOG_ERROR, "%s", (*err)->msg);
      fprintf (stderr, "%s: %s\n", prog, (*err)->msg);
    }
  cl_error_release (err);
  return 1;
}
