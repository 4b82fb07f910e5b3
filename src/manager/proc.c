/* Processes the manager tracks without being their parent: monitors and
   container inits, identified by pid and start time so that a reused pid
   is never mistaken for ours. */
#include "common/util.h"
#include "manager/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

uint64_t
proc_start_time (pid_t pid)
{
  char path[64], buf[1024], *p;
  unsigned long long start = 0;
  ssize_t n;
  int fd, field;

  if (pid <= 0)
    return 0;
  snprintf (path, sizeof path, "/proc/%d/stat", (int)pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  n = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  /* comm may hold spaces and parentheses: fields resume after the last ')' */
  p = strrchr (buf, ')');
  if (p == NULL)
    return 0;
  if (p[2] == 'Z' || p[2] == 'X')
    return 0; /* a zombie has exited */
  for (field = 2; field < 22 && p; field++)
    p = strchr (p + 1, ' ');
  if (p == NULL || sscanf (p + 1, "%llu", &start) != 1)
    return 0;
  return start;
}

bool
proc_alive (pid_t pid, uint64_t start)
{
  uint64_t now = proc_start_time (pid);
  return now != 0 && (start == 0 || now == start);
}

int
proc_wait_exit (pid_t pid, uint64_t start, int timeout_ms)
{
  int fd = (int)syscall (SYS_pidfd_open, pid, 0);
  uint64_t deadline = cl_now_ns () + (uint64_t)timeout_ms * 1000000ull;

  if (fd >= 0)
    {
      /* the pidfd refers to whatever holds the pid now: check it is ours */
      if (!proc_alive (pid, start))
        {
          close (fd);
          return 1;
        }
      struct pollfd p = { .fd = fd, .events = POLLIN };
      int r;
      do
        r = poll (&p, 1, timeout_ms);
      while (r < 0 && errno == EINTR);
      close (fd);
      if (r > 0)
        return 1;
      return !proc_alive (pid, start);
    }
  while (proc_alive (pid, start))
    {
      if (cl_now_ns () >= deadline)
        return 0;
      usleep (5000);
    }
  return 1;
}

int
proc_exit_code (int wstatus)
{
  if (WIFEXITED (wstatus))
    return WEXITSTATUS (wstatus);
  if (WIFSIGNALED (wstatus))
    return 128 + WTERMSIG (wstatus);
  return 255;
}
