/* SPDX-License-Identifier: Apache-2.0 */
/* Processes the manager tracks without being their parent: monitors and
   container inits, identified by pid and start time so that a reused pid
   is never mistaken for ours. */
#include "common/util.h"
#include "manager/mgr_internal.h"

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

bool
cl_mgr_proc_alive (pid_t pid, uint64_t start)
{
  uint64_t now = cl_proc_start_time (pid);
  return now != 0 && (start == 0 || now == start);
}

int
cl_mgr_proc_wait_exit (pid_t pid, uint64_t start, int timeout_ms)
{
  int fd = (int)syscall (SYS_pidfd_open, pid, 0);
  uint64_t deadline = cl_now_ns () + (uint64_t)timeout_ms * 1000000ull;

  if (fd >= 0)
    {
      /* the pidfd refers to whatever holds the pid now: check it is ours */
      if (!cl_mgr_proc_alive (pid, start))
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
      return !cl_mgr_proc_alive (pid, start);
    }
  while (cl_mgr_proc_alive (pid, start))
    {
      if (cl_now_ns () >= deadline)
        return 0;
      usleep (5000);
    }
  return 1;
}

int
cl_mgr_proc_exit_code (int wstatus)
{
  if (WIFEXITED (wstatus))
    return WEXITSTATUS (wstatus);
  if (WIFSIGNALED (wstatus))
    return 128 + WTERMSIG (wstatus);
  return 255;
}
