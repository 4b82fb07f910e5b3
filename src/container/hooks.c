#include "container/hooks.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
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

static int
run_one (json_t *hook, const char *name, const char *state, cl_error_t *err)
{
  const char *path = json_string_value (json_object_get (hook, "path"));
  json_t *args = json_object_get (hook, "args"), *env = json_object_get (hook, "env");
  json_t *timeout = json_object_get (hook, "timeout");
  cleanup_free const char *const *argv = NULL;
  cleanup_free const char *const *envp = NULL;
  const char *default_argv[] = { path, NULL };
  int pipefd[2], status = 0, pidfd;
  long timeout_ms = timeout ? (long) json_integer_value (timeout) * 1000 : -1;
  pid_t pid;

  argv = json_array_size (args) ? strv_from_json (args) : NULL;
  envp = strv_from_json (env);
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
      execve (path, (char *const *) (argv ? argv : default_argv), (char *const *) envp);
      dprintf (2, "hook `%s`: %s\n", path, strerror (errno));
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

  pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
  if (pidfd >= 0)
    {
      struct pollfd p = { .fd = pidfd, .events = POLLIN };
      int r = poll (&p, 1, timeout_ms);
      close (pidfd);
      if (r == 0)
        {
          kill (pid, SIGKILL);
          waitpid (pid, NULL, 0);
          return cl_error_make (err, 0, "%s: hook `%s` timed out after %ld s", name, path,
                                timeout_ms / 1000);
        }
    }
  if (waitpid (pid, &status, 0) < 0)
    return cl_error_errno (err, "%s: wait for hook `%s`", name, path);
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    return 0;
  if (WIFSIGNALED (status))
    return cl_error_make (err, 0, "%s: hook `%s` killed by signal %d", name, path, WTERMSIG (status));
  return cl_error_make (err, 0, "%s: hook `%s` exited with status %d", name, path,
                        WEXITSTATUS (status));
}

int
hooks_run (json_t *hooks, const char *kind, json_t *state, cl_error_t *err)
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
    if (run_one (h, name, s, err) < 0)
      {
        if (strcmp (kind, "poststart") != 0 && strcmp (kind, "poststop") != 0)
          return -1;
        cl_warn ("%s", (*err)->msg);
        cl_error_release (err);
      }
  }
  return 0;
}
