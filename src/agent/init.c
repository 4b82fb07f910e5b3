/* SPDX-License-Identifier: Apache-2.0 */
/* cloison-init: PID 1 of a VM instance that runs a command (the
   instance's `-- CMD...`), like `docker run --init`.
   Usage: cloison-init ROOT CMD [ARGS...]

   The initramfs init (scripts/images/vm-init.sh) mounts the instance's
   root disk at ROOT, moves /dev, /proc and /sys under it, starts the guest
   agent, then execs this.  It:
   - runs CMD chrooted into ROOT, found through PATH there (PATH is the
     agent's default), on the console;
   - reaps every orphan (it is PID 1);
   - on SIGTERM, SIGINT (Ctrl-Alt-Del), SIGPWR or an ACPI power button
     press (KEY_POWER on /dev/input/event*, the `button` driver: what
     cloison-vmm's `PUT /vm/state {"state":"shutdown"}` and `cloison
     stop` send), passes SIGTERM to CMD, and SIGKILL 5 s later (well
     within `cloison stop`'s default 10 s);
   - when CMD exits: prints "cloison-init: exit N" on the console, stops
     what is left, syncs, remounts ROOT read-only, writes N to
     CL_VMM_STATUS_PORT (cloison-vmm exits with it) and powers off, so
     that what CMD wrote is on the disk (a PID 1 that exits makes the
     kernel panic, without writing back anything).
   Static, like the agent: it runs before and after the root switch. */
#include "agent/protocol.h"
#include "vmm/vmm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_INPUTS 8
#define KILL_AFTER_S 5
#define KEY_POWER_CODE 116

static void __attribute__ ((format (printf, 1, 2)))
say (const char *fmt, ...)
{
  char line[512];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (line, sizeof line, fmt, ap);
  va_end (ap);
  dprintf (1, "cloison-init: %s\n", line);
}

static pid_t
start_command (const char *root, char **argv, const sigset_t *old_mask)
{
  pid_t pid = fork ();

  if (pid != 0)
    return pid;
  sigprocmask (SIG_SETMASK, old_mask, NULL);
  for (int sig = 1; sig < NSIG; sig++)
    signal (sig, SIG_DFL);
  if (chroot (root) < 0 || chdir ("/") < 0)
    {
      say ("chroot into `%s`: %s", root, strerror (errno));
      _exit (127);
    }
  setenv ("PATH", CL_AGENT_DEFAULT_PATH, 1);
  execvp (argv[0], argv);
  dprintf (2, "cloison-init: %s: %s\n", argv[0], strerror (errno));
  _exit (errno == ENOENT ? 127 : 126);
}

/* The input devices that may carry a power button (evdev nodes). */
static int
open_inputs (const char *root, struct pollfd *p, int max)
{
  char dir[4096];
  DIR *d;
  struct dirent *e;
  int n = 0;

  snprintf (dir, sizeof dir, "%s/dev/input", root);
  d = opendir (dir);
  if (d == NULL)
    return 0;
  while ((e = readdir (d)) != NULL && n < max)
    {
      char path[4096 + 256];
      if (strncmp (e->d_name, "event", 5) != 0)
        continue;
      snprintf (path, sizeof path, "%s/%s", dir, e->d_name);
      int fd = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0)
        p[n++] = (struct pollfd){ .fd = fd, .events = POLLIN };
    }
  closedir (d);
  return n;
}

static int
power_pressed (int fd)
{
  struct input_event ev[16];
  ssize_t n = read (fd, ev, sizeof ev);

  for (ssize_t i = 0; i < n / (ssize_t)sizeof ev[0]; i++)
    if (ev[i].type == EV_KEY && ev[i].code == KEY_POWER_CODE && ev[i].value == 1)
      return 1;
  return 0;
}

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A guest restored from a VM instance's warm template (its command line
   is the template's, docs/templates.md).  There, in the VM lab, a
   user-mode `outb` after ioperm takes SIGSEGV (the TSS's I/O bitmap,
   written after the restore, is not what the CPU checks), and this
   kernel has no /dev/port: the status is left to the "cloison-init:
   exit N" line on the console, which the host reads instead. */
static bool
restored_from_template (const char *root)
{
  char path[4096], buf[4096];
  ssize_t n;
  int fd;

  snprintf (path, sizeof path, "%s/proc/cmdline", root);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  n = read (fd, buf, sizeof buf - 1);
  close (fd);
  buf[n > 0 ? n : 0] = '\0';
  return strstr (buf, "cloison.template") != NULL;
}

/* Everything but PID 1 goes; the disk is written back and left clean;
   cloison-vmm gets `code` as the guest's exit status. */
static void
power_off (const char *root, int code)
{
  kill (-1, SIGTERM);
  for (int i = 0; i < 20; i++)
    {
      while (waitpid (-1, NULL, WNOHANG) > 0)
        ;
      if (kill (-1, 0) < 0 && errno == ESRCH)
        break;
      usleep (50000);
    }
  kill (-1, SIGKILL);
  while (waitpid (-1, NULL, WNOHANG) > 0)
    ;
  sync ();
  if (mount (NULL, root, NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
    say ("remount `%s` read-only: %s", root, strerror (errno));
  sync ();
  if (!restored_from_template (root) && ioperm (CL_VMM_STATUS_PORT, 1, 1) == 0)
    outb ((unsigned char)code, CL_VMM_STATUS_PORT);
  reboot (RB_POWER_OFF);
  for (;;)
    pause ();
}

int
main (int argc, char **argv)
{
  struct pollfd p[1 + MAX_INPUTS];
  sigset_t mask, old_mask;
  const char *root;
  pid_t cmd;
  int ninputs, status = 0, code;
  double kill_at = 0;

  if (argc < 3)
    {
      dprintf (2, "usage: cloison-init ROOT CMD [ARGS...]\n");
      return 2;
    }
  root = argv[1];
  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGINT);
  sigaddset (&mask, SIGPWR);
  sigprocmask (SIG_BLOCK, &mask, &old_mask);
  p[0] = (struct pollfd){ .fd = signalfd (-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK), .events = POLLIN };
  /* Ctrl-Alt-Del: a signal to us rather than an immediate reboot */
  reboot (RB_DISABLE_CAD);
  ninputs = open_inputs (root, p + 1, MAX_INPUTS);
  cmd = start_command (root, argv + 2, &old_mask);
  if (cmd < 0)
    {
      say ("fork: %s", strerror (errno));
      power_off (root, 127);
    }

  for (;;)
    {
      int timeout = -1;
      if (kill_at > 0)
        timeout = kill_at > now_s () ? (int)((kill_at - now_s ()) * 1000) + 1 : 0;
      int r = poll (p, 1 + ninputs, timeout);
      bool stop = false;

      if (r < 0 && errno != EINTR)
        break;
      if (kill_at > 0 && now_s () >= kill_at)
        {
          kill (cmd, SIGKILL);
          kill_at = 0;
        }
      if (r > 0 && p[0].revents)
        {
          struct signalfd_siginfo si;
          while (read (p[0].fd, &si, sizeof si) == (ssize_t)sizeof si)
            if (si.ssi_signo != SIGCHLD)
              stop = true;
        }
      for (int i = 1; r > 0 && i <= ninputs; i++)
        if (p[i].revents && power_pressed (p[i].fd))
          stop = true;
      if (stop && kill_at == 0)
        {
          say ("stopping (SIGTERM to the command, SIGKILL in %d s)", KILL_AFTER_S);
          kill (cmd, SIGTERM);
          kill_at = now_s () + KILL_AFTER_S;
        }
      /* reap: the command, and orphans reparented to PID 1 */
      pid_t w;
      bool done = false;
      while ((w = waitpid (-1, &status, WNOHANG)) > 0)
        if (w == cmd)
          {
            done = true;
            break;
          }
      if (done)
        break;
    }
  code = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
  say ("exit %d", code);
  power_off (root, code);
  return 0;
}
