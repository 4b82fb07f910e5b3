/* SPDX-License-Identifier: Apache-2.0 */
/* up, down and provision for the API: the planner (project_plan.c) run in
   a child process whose stdout and stderr are pipes, so that what it
   prints -- one line per change, and the provisioning steps' own output
   -- reaches the caller line by line (an operation's metadata) and never
   the server's own output.  The child has a manager of its own, as the
   planner's per-machine children have. */
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "manager/manager.h"
#include "manager/project_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int
run_verb (const char *root, struct cl_project *p, const struct cl_project_call *c, cl_error_t *err)
{
  cleanup_mgr struct cl_manager *m = NULL;

  if (cl_mgr_open (root, &m, err) < 0)
    return -1;
  switch (c->verb)
    {
    case CL_PROJECT_UP:
      return cl_mgr_project_up (m, p, &c->up, err);
    case CL_PROJECT_DOWN:
      return cl_mgr_project_down (m, p, c->up.machines, c->up.n_machines, c->destroy, c->volumes,
                                  err);
    default:
      return cl_mgr_project_provision (m, p, c->up.machines, c->up.n_machines, err);
    }
}

static void __attribute__ ((noreturn))
child (const char *root, struct cl_project *p, const struct cl_project_call *c, int out, int errs,
       int report)
{
  cl_error_t err = NULL;
  int null = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  int r;

  if (null < 0 || dup2 (null, 0) < 0 || dup2 (out, 1) < 0 || dup2 (errs, 2) < 0)
    _exit (127);
  r = run_verb (root, p, c, &err);
  fflush (NULL);
  if (r < 0)
    {
      json_t *j = json_pack ("{s:i, s:s}", "kind", (int)cl_error_kind_of (err), "message",
                             err && err->msg ? err->msg : "failed");
      char *text = json_dumps (j, JSON_COMPACT);
      if (text && cl_write_all (report, text, strlen (text)) < 0)
        _exit (126);
    }
  _exit (r < 0 ? 2 : r);
}

struct sink
{
  int fd;
  bool is_err;
  char buf[8192];
  size_t len;
};

/* Hands on the complete lines read so far (all of it when `eof`). */
static void
sink_lines (struct sink *s, bool eof, cl_mgr_project_line_fn fn, void *opaque)
{
  size_t start = 0;

  for (size_t i = 0; i < s->len; i++)
    if (s->buf[i] == '\n' || (i + 1 == s->len && (eof || s->len == sizeof s->buf)))
      {
        size_t end = s->buf[i] == '\n' ? i : i + 1;
        cleanup_free char *line = cl_xmalloc0 (end - start + 1);
        memcpy (line, s->buf + start, end - start);
        fn (opaque, s->is_err, line);
        start = i + 1;
      }
  memmove (s->buf, s->buf + start, s->len - start);
  s->len -= start;
}

/* Reads what the pipe has; false at its end. */
static bool
sink_read (struct sink *s, cl_mgr_project_line_fn fn, void *opaque)
{
  for (;;)
    {
      ssize_t got = read (s->fd, s->buf + s->len, sizeof s->buf - s->len);
      if (got > 0)
        {
          s->len += (size_t)got;
          sink_lines (s, false, fn, opaque);
          continue;
        }
      if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
      sink_lines (s, true, fn, opaque);
      return false;
    }
}

int
cl_mgr_project_run_captured (const char *root, struct cl_project *p,
                             const struct cl_project_call *c, cl_mgr_project_line_fn fn,
                             void *opaque, int *code, cl_error_t *err)
{
  int po[2], pe[2], pr[2];
  struct sink sinks[2];
  bool open_[2] = { true, true };
  char report[4096];
  ssize_t n;
  pid_t pid;
  int st = 0;
  bool exited = false;

  if (pipe2 (po, O_CLOEXEC) < 0)
    return cl_error_errno (err, "pipe");
  if (pipe2 (pe, O_CLOEXEC) < 0)
    {
      close (po[0]), close (po[1]);
      return cl_error_errno (err, "pipe");
    }
  if (pipe2 (pr, O_CLOEXEC) < 0)
    {
      close (po[0]), close (po[1]), close (pe[0]), close (pe[1]);
      return cl_error_errno (err, "pipe");
    }
  fflush (NULL);
  pid = fork ();
  if (pid == 0)
    {
      close (po[0]), close (pe[0]), close (pr[0]);
      child (root, p, c, po[1], pe[1], pr[1]);
    }
  close (po[1]), close (pe[1]), close (pr[1]);
  if (pid < 0)
    {
      close (po[0]), close (pe[0]), close (pr[0]);
      return cl_error_errno (err, "fork");
    }
  sinks[0] = (struct sink){ .fd = po[0], .is_err = false };
  sinks[1] = (struct sink){ .fd = pe[0], .is_err = true };
  fcntl (po[0], F_SETFL, O_NONBLOCK);
  fcntl (pe[0], F_SETFL, O_NONBLOCK);
  /* until both pipes end, or the child has exited and they are drained
     (a process it left running may hold them) */
  while (open_[0] || open_[1])
    {
      struct pollfd pfd[2] = { { .fd = open_[0] ? po[0] : -1, .events = POLLIN },
                               { .fd = open_[1] ? pe[0] : -1, .events = POLLIN } };
      if (poll (pfd, 2, exited ? 0 : 200) < 0 && errno != EINTR)
        break;
      for (int k = 0; k < 2; k++)
        if (open_[k] && (pfd[k].revents || exited))
          open_[k] = sink_read (&sinks[k], fn, opaque);
      if (exited)
        {
          for (int k = 0; k < 2; k++)
            if (open_[k])
              sink_lines (&sinks[k], true, fn, opaque);
          break;
        }
      if (waitpid (pid, &st, WNOHANG) == pid)
        exited = true;
    }
  close (po[0]), close (pe[0]);
  if (!exited)
    while (waitpid (pid, &st, 0) < 0 && errno == EINTR)
      ;
  n = read (pr[0], report, sizeof report - 1);
  close (pr[0]);
  if (!WIFEXITED (st) || WEXITSTATUS (st) > 2)
    return cl_error_make (err, 0, "the project's process died (status %d)", st);
  *code = WEXITSTATUS (st);
  if (*code == 2)
    {
      report[n > 0 ? n : 0] = '\0';
      cleanup_json json_t *j = json_loads (report, 0, NULL);
      const char *msg = json_string_value (json_object_get (j, "message"));
      return cl_error_raise (err,
                             (enum cl_error_kind)json_integer_value (json_object_get (j, "kind")),
                             "%s", msg ? msg : "failed");
    }
  return 0;
}
