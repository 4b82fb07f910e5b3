/* SPDX-License-Identifier: Apache-2.0 */
#include "container/hooks.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const *
strv_from_json (json_t *arr)
{
  size_t i, n = json_array_size (arr);
  const char **v = cl_xmalloc0 ((n + 1) * sizeof *v);
  for (i = 0; i < n; i++)
    v[i] = json_string_value (json_array_get (arr, i));
  return v;
}

/* What a hook printed, for the error message: its first bytes, one line. */
static char *
hook_output (int fd)
{
  char buf[512];
  ssize_t n = pread (fd, buf, sizeof buf - 1, 0);
  buf[n > 0 ? n : 0] = '\0';
  for (char *c = buf; *c; c++)
    if (*c == '\n')
      *c = ' ';
  while (n > 0 && buf[n - 1] == ' ')
    buf[--n] = '\0';
  return cl_xstrdup (buf);
}

static int hook_failed (cl_error_t *err, int out, int errfd, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static int
hook_failed (cl_error_t *err, int out, int errfd, const char *fmt, ...)
{
  cleanup_free char *what = NULL, *o = hook_output (out), *e = hook_output (errfd);
  va_list ap;
  va_start (ap, fmt);
  if (vasprintf (&what, fmt, ap) < 0)
    what = NULL;
  va_end (ap);
  return cl_error_make (err, 0, "%s, stdout: %s, stderr: %s", what ? what : "hook failed", o, e);
}

static int
run_one (json_t *hook, const char *name, const char *state, json_t *default_env, const char *cwd,
         cl_error_t *err)
{
  const char *path = json_string_value (json_object_get (hook, "path"));
  json_t *args = json_object_get (hook, "args"), *env = json_object_get (hook, "env");
  json_t *timeout = json_object_get (hook, "timeout");
  cleanup_free const char *const *argv = NULL;
  cleanup_free const char *const *envp = NULL;
  const char *default_argv[] = { path, NULL };
  cleanup_close int out = -1, errfd = -1;
  int pipefd[2], status = 0, pidfd;
  long timeout_ms = timeout ? (long)json_integer_value (timeout) * 1000 : -1;
  pid_t pid;

  argv = json_array_size (args) ? strv_from_json (args) : NULL;
  /* No `env`: the runtime's environment, as runc (Go's exec.Cmd), or for
     the hooks run in the container, the container process's (runc's init
     has no other by then). */
  if (env == NULL)
    env = default_env;
  envp = env ? strv_from_json (env) : NULL;
  out = memfd_create ("hook-stdout", MFD_CLOEXEC);
  errfd = memfd_create ("hook-stderr", MFD_CLOEXEC);
  if (out < 0 || errfd < 0)
    return cl_error_errno (err, "%s: memfd_create", name);
  if (pipe2 (pipefd, O_CLOEXEC) < 0)
    return cl_error_errno (err, "%s: pipe", name);
  pid = fork ();
  if (pid < 0)
    {
      close (pipefd[0]);
      close (pipefd[1]);
      return cl_error_errno (err, "%s: fork", name);
    }
  if (pid == 0)
    {
      dup2 (pipefd[0], 0);
      dup2 (out, 1);
      dup2 (errfd, 2);
      if (cwd && chdir (cwd) < 0)
        {
          dprintf (2, "chdir `%s`: %s", cwd, strerror (errno));
          _exit (127);
        }
      execve (path, (char *const *)(argv ? argv : default_argv),
              envp ? (char *const *)envp : environ);
      dprintf (2, "%s", strerror (errno));
      _exit (127);
    }
  close (pipefd[0]);
  /* A hook may not read its stdin: ignore EPIPE. */
  {
    struct sigaction ign = { .sa_handler = SIG_IGN }, old;
    sigaction (SIGPIPE, &ign, &old);
    cl_write_all (pipefd[1], state, strlen (state));
    sigaction (SIGPIPE, &old, NULL);
  }
  close (pipefd[1]);

  pidfd = (int)syscall (SYS_pidfd_open, pid, 0);
  if (pidfd >= 0)
    {
      struct pollfd p = { .fd = pidfd, .events = POLLIN };
      int r = poll (&p, 1, timeout_ms);
      close (pidfd);
      if (r == 0)
        {
          kill (pid, SIGKILL);
          waitpid (pid, NULL, 0);
          return hook_failed (err, out, errfd, "%s: hook `%s` timed out after %ld s", name, path,
                              timeout_ms / 1000);
        }
    }
  if (waitpid (pid, &status, 0) < 0)
    return cl_error_errno (err, "%s: wait for hook `%s`", name, path);
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    return 0;
  if (WIFSIGNALED (status))
    return hook_failed (err, out, errfd, "%s: hook `%s` killed by signal %d", name, path,
                        WTERMSIG (status));
  return hook_failed (err, out, errfd, "%s: hook `%s` exited with status %d", name, path,
                      WEXITSTATUS (status));
}

int
cl_ctr_hooks_run (json_t *hooks, const char *kind, json_t *state, json_t *default_env,
                  const char *cwd, cl_error_t *err)
{
  json_t *list = json_object_get (hooks, kind), *h;
  cleanup_free char *s = NULL;
  size_t i;

  if (json_array_size (list) == 0)
    return 0;
  s = json_dumps (state, JSON_COMPACT);
  json_array_foreach (list, i, h)
  {
    cleanup_free char *name = cl_strdup_printf ("hooks.%s[%zu]", kind, i);
    if (run_one (h, name, s, default_env, cwd, err) < 0)
      {
        if (strcmp (kind, "poststop") != 0)
          return -1;
        cl_warn ("%s", (*err)->msg);
        cl_error_release (err);
        return 0;
      }
  }
  return 0;
}
