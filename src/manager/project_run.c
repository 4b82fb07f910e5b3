/* SPDX-License-Identifier: Apache-2.0 */
/* up, down and provision for the API: the planner (project_plan.c) run in
   a process of its own, the cloison-project program, whose stdout and
   stderr are pipes, so that what it prints -- one line per change, and
   the provisioning steps' own output -- reaches the caller line by line
   (an operation's metadata) and never the server's own output.  A
   program, not a fork: the daemon is threaded, and a fork of it may only
   exec (another thread may hold a lock, SQLite's or malloc's, that the
   child would wait on forever).  It has a manager of its own, as the
   planner's per-machine children have. */
#include "common/cleanup.h"
#include "common/paths.h"
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
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

enum verb
{
  CL_PROJECT_UP,
  CL_PROJECT_DOWN,
  CL_PROJECT_PROVISION,
};
struct call
{
  enum verb verb;
  struct cl_project_up_opts up; /* machines: every verb's; the rest: up's */
  bool destroy, volumes;        /* down's */
};

/* The job's project and call; names: the machines' (borrowed from job). */
static int
call_from_json (json_t *job, struct cl_project **p, struct call *c, const char ***names,
                cl_error_t *err)
{
  json_t *arr = json_object_get (job, "machines"), *e;
  const char *verb = json_string_value (json_object_get (job, "verb"));
  size_t i;

  if (cl_mgr_project_from_json (json_object_get (job, "project"), p, err) < 0)
    return -1;
  *names = cl_xmalloc0 ((json_array_size (arr) + 1) * sizeof **names);
  json_array_foreach (arr, i, e) (*names)[i] = json_string_value (e);
  *c = (struct call){ .verb = CL_PROJECT_UP };
  c->up.machines = *names;
  c->up.n_machines = json_array_size (arr);
  c->up.recreate = json_is_true (json_object_get (job, "recreate"));
  c->up.provision = json_is_true (json_object_get (job, "provision"));
  c->destroy = json_is_true (json_object_get (job, "destroy"));
  c->volumes = json_is_true (json_object_get (job, "volumes"));
  if (verb && strcmp (verb, "down") == 0)
    c->verb = CL_PROJECT_DOWN;
  else if (verb && strcmp (verb, "provision") == 0)
    c->verb = CL_PROJECT_PROVISION;
  return 0;
}

static int
run_verb (const char *root, json_t *job, cl_error_t *err)
{
  cleanup_mgr struct cl_manager *m = NULL;
  cleanup_project struct cl_project *p = NULL;
  cleanup_free const char **names = NULL;
  struct call c;

  if (call_from_json (job, &p, &c, &names, err) < 0 || cl_mgr_open (root, &m, err) < 0)
    return -1;
  switch (c.verb)
    {
    case CL_PROJECT_UP:
      return cl_mgr_project_up (m, p, &c.up, err);
    case CL_PROJECT_DOWN:
      return cl_mgr_project_down (m, p, c.up.machines, c.up.n_machines, c.destroy, c.volumes, err);
    default:
      return cl_mgr_project_provision (m, p, c.up.machines, c.up.n_machines, err);
    }
}

int
cl_mgr_project_job_main (void)
{
  cl_error_t err = NULL;
  json_error_t jerr;
  cleanup_json json_t *args = json_loadfd (3, 0, &jerr);
  const char *root = json_string_value (json_object_get (args, "root"));
  int r;

  close (3);
  if (root == NULL)
    r = cl_error_make (&err, 0, "cloison-project: malformed arguments");
  else
    r = run_verb (root, json_object_get (args, "job"), &err);
  fflush (NULL);
  if (r < 0)
    {
      cleanup_json json_t *j = json_pack ("{s:i, s:s}", "kind", (int)cl_error_kind_of (err),
                                          "message", err && err->msg ? err->msg : "failed");
      cleanup_free char *text = json_dumps (j, JSON_COMPACT);
      if (text == NULL || cl_write_all (4, text, strlen (text)) < 0)
        return 126;
    }
  return r < 0 ? 2 : r;
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

/* The program's fds, given the pipes' ends: dups above 2 so that no
   dup2 in the child overwrites another source.  -1 on error. */
static int
high_fd (int fd)
{
  return fcntl (fd, F_DUPFD_CLOEXEC, 10);
}

int
cl_mgr_project_run_captured (const char *root, json_t *job, cl_mgr_project_line_fn fn, void *opaque,
                             int *code, cl_error_t *err)
{
  cleanup_free char *prog = cl_piece_path (CL_PIECE_PROJECT), *text = NULL;
  cleanup_json json_t *args = json_pack ("{s:s, s:O}", "root", root, "job", job);
  cleanup_close int argfd = -1;
  int po[2], pe[2], pr[2], kid[5] = { -1, -1, -1, -1, -1 };
  struct sink sinks[2];
  bool open_[2] = { true, true };
  char report[4096];
  ssize_t n;
  pid_t pid;
  int st = 0;
  bool exited = false;

  if (access (prog, X_OK) < 0)
    return cl_error_errno (err, "cloison-project `%s`", prog);
  /* the arguments in a memfd: written before the fork, as the fork of a
     threaded daemon may only exec */
  text = json_dumps (args, JSON_COMPACT);
  argfd = memfd_create ("cloison-project-args", MFD_CLOEXEC);
  if (argfd < 0 || cl_write_all (argfd, text, strlen (text)) < 0 || lseek (argfd, 0, SEEK_SET) < 0)
    return cl_error_errno (err, "cloison-project's arguments");
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
  /* stdin /dev/null, stdout, stderr, the arguments, the report */
  kid[0] = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  kid[1] = high_fd (po[1]);
  kid[2] = high_fd (pe[1]);
  kid[3] = high_fd (argfd);
  kid[4] = high_fd (pr[1]);
  close (po[1]), close (pe[1]), close (pr[1]);
  pid = -1;
  if (kid[0] >= 0 && kid[1] >= 0 && kid[2] >= 0 && kid[3] >= 0 && kid[4] >= 0)
    {
      fflush (NULL);
      pid = fork ();
    }
  if (pid == 0)
    {
      char *argv[] = { prog, NULL };
      for (int k = 0; k < 5; k++)
        if (dup2 (kid[k], k) < 0)
          _exit (127);
      execv (prog, argv);
      _exit (127);
    }
  for (int k = 0; k < 5; k++)
    if (kid[k] >= 0)
      close (kid[k]);
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
  if (WIFEXITED (st) && WEXITSTATUS (st) == 127)
    return cl_error_make (err, 0, "cloison-project `%s`: could not be started", prog);
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
