/* SPDX-License-Identifier: Apache-2.0 */
/* Processes the manager tracks without being their parent: monitors and
   container inits, identified by pid and start time so that a reused pid
   is never mistaken for ours. */
#include "common/util.h"
#include "manager/mgr_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Processes seen alive, by pid and start time, each with a pidfd: it
   becomes readable when that very process ends, so a daemon listing
   its running instances again and again asks poll() instead of reading
   /proc/PID/stat each time.  Filled by the process that made it (a
   fork's copy refers to descriptors that may be closed or reused: it is
   dropped, not used). */
#define ALIVE_SLOTS 256

static struct
{
  pid_t pid;
  uint64_t start;
  int fd;
} alive_seen[ALIVE_SLOTS];
static pid_t alive_owner;
static pthread_mutex_t alive_lock = PTHREAD_MUTEX_INITIALIZER;

/* 1 alive, 0 ended, -1 not known here (called with alive_lock held). */
static int
alive_cached (pid_t pid, uint64_t start)
{
  struct pollfd p;
  size_t i = (size_t)pid % ALIVE_SLOTS;

  if (alive_owner != getpid ())
    {
      memset (alive_seen, 0, sizeof alive_seen);
      alive_owner = getpid ();
      return -1;
    }
  if (alive_seen[i].pid != pid || alive_seen[i].start != start || alive_seen[i].fd <= 0)
    return -1;
  p = (struct pollfd){ .fd = alive_seen[i].fd, .events = POLLIN };
  if (poll (&p, 1, 0) == 0)
    return 1;
  close (alive_seen[i].fd);
  memset (&alive_seen[i], 0, sizeof alive_seen[i]);
  return 0;
}

static void
alive_remember (pid_t pid, uint64_t start)
{
  size_t i = (size_t)pid % ALIVE_SLOTS;
  int fd = (int)syscall (SYS_pidfd_open, pid, 0);

  /* the pidfd refers to whatever held the pid when opened: ours? */
  if (fd < 0)
    return;
  if (cl_proc_start_time (pid) != start)
    {
      close (fd);
      return;
    }
  if (alive_seen[i].fd > 0)
    close (alive_seen[i].fd);
  alive_seen[i].pid = pid;
  alive_seen[i].start = start;
  alive_seen[i].fd = fd;
}

bool
cl_mgr_proc_alive (pid_t pid, uint64_t start)
{
  uint64_t now;
  int known;

  if (pid <= 0 || start == 0)
    {
      now = cl_proc_start_time (pid);
      return now != 0;
    }
  pthread_mutex_lock (&alive_lock);
  known = alive_cached (pid, start);
  if (known < 0 && (now = cl_proc_start_time (pid)) == start)
    {
      alive_remember (pid, start);
      known = 1;
    }
  pthread_mutex_unlock (&alive_lock);
  return known == 1;
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
