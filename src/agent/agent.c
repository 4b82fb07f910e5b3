/* SPDX-License-Identifier: Apache-2.0 */
/* cloison-agent: the guest agent of cloison's VM initramfs (`cloison exec`
   on VM instances).  Usage: cloison-agent ROOT

   The initramfs init runs it before switch_root with ROOT = the mounted
   root disk: it opens ROOT, listens on AF_VSOCK port CL_AGENT_PORT, then
   goes to the background and returns, so that the init can switch_root
   right away.  Each command runs chrooted into ROOT (the descriptor still
   names the instance's root after switch_root moved it to /), so it sees
   the instance's files.  One connection, one command; the protocol is in
   protocol.h.  The host is trusted: requests are only bounded so that a
   bad one cannot exhaust the agent.

   `cloison-agent --pid1 --fs TAG ROOT`: the init of a VM-isolated
   container's guest: the same service in the foreground as PID 1;
   requests with a 'J' object run the container's processes
   (agent_spec.c), and the first one mounts the virtio-fs share TAG (the
   bundle's rootfs) on ROOT, so that a VM restored from a template (booted
   and snapshotted before any container existed) mounts the share it was
   given after the restore.

   `cloison-agent --go FILE`: a VM instance's template waits for its
   clone's own arguments (wait_go, docs/templates.md). */
#include "agent/agent_spec.h"
#include "agent/protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

/* --fs TAG: the virtio-fs share to mount on ROOT at the first request
   that carries a container's process. */
static const char *fs_tag;
/* The share was mounted at the agent's start (main). */
static bool share_mounted;

/* In the initramfs, not under ROOT: made once the container's first
   process has its rootfs and mounts.  An exec that arrives before (a
   clone of a template answers so fast that `start` + `exec` can) waits
   for it, at most SETUP_WAIT_US, rather than run in the bare initramfs. */
#define SETUP_DONE "/.cloison-setup-done"
#define SETUP_WAIT_US (60ull * 1000000ull)

/* The container's first process: the only request the host gives the
   guest's entropy (vm_container.c). */
static bool
first_process (json_t *spec)
{
  return json_object_get (spec, "entropy") != NULL;
}

/* The host's CLOISON_VMCTR_TRACE ("trace" in the request): the agent's
   steps on the console with the guest's monotonic time. */
static bool tracing;
static int trace_fd = 1;

static void
trace (const char *what)
{
  struct timespec ts;

  if (!tracing)
    return;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  dprintf (trace_fd, "agent-trace %lld.%03ld %s\n", (long long)ts.tv_sec, ts.tv_nsec / 1000000,
           what);
}

static void
setup_wait (void)
{
  for (unsigned long long waited = 0; waited < SETUP_WAIT_US; waited += 10000)
    {
      if (access (SETUP_DONE, F_OK) == 0)
        return;
      usleep (10000);
    }
}

static int
write_all (int fd, const void *buf, size_t n)
{
  const char *p = buf;

  while (n > 0)
    {
      ssize_t w = write (fd, p, n);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        return -1;
      p += w, n -= (size_t)w;
    }
  return 0;
}

static int
read_all (int fd, void *buf, size_t n)
{
  char *p = buf;

  while (n > 0)
    {
      ssize_t r = read (fd, p, n);
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        return -1;
      p += r, n -= (size_t)r;
    }
  return 0;
}

static int
send_frame (int fd, char type, const void *data, uint32_t len)
{
  unsigned char h[CL_AGENT_HEADER];

  cl_agent_header_encode (h, type, len);
  if (write_all (fd, h, sizeof h) < 0)
    return -1;
  return len ? write_all (fd, data, len) : 0;
}

struct request
{
  char *argv[CL_AGENT_MAX_ARGS + 1];
  char *envp[CL_AGENT_MAX_ARGS + 2];
  size_t argc, envc;
  bool pty;
  struct winsize ws;
  json_t *spec; /* 'J': a VM-isolated container's process, or NULL */
};

/* A 'T' or 'W' payload (its header read) into ws. */
static int
read_winsize (int fd, uint32_t len, struct winsize *ws)
{
  unsigned char p[CL_AGENT_WINSIZE_LEN];

  if (len != sizeof p || read_all (fd, p, sizeof p) < 0)
    return -1;
  *ws = (struct winsize){ 0 };
  cl_agent_winsize_decode (p, &ws->ws_row, &ws->ws_col);
  return 0;
}

static int
read_request (int fd, struct request *rq)
{
  for (;;)
    {
      unsigned char h[CL_AGENT_HEADER];
      uint32_t len;
      char *s;

      if (read_all (fd, h, sizeof h) < 0)
        return -1;
      len = cl_agent_be32 (h + 1);
      if (h[0] == CL_AGENT_RUN)
        return rq->argc > 0 || rq->spec ? 0 : -1;
      if (h[0] == CL_AGENT_PTY)
        {
          if (read_winsize (fd, len, &rq->ws) < 0)
            return -1;
          rq->pty = true;
          continue;
        }
      if (h[0] == CL_AGENT_SPEC)
        {
          json_error_t je;
          if (len > CL_AGENT_MAX_SPEC || rq->spec || (s = malloc (len + 1)) == NULL
              || read_all (fd, s, len) < 0)
            return -1;
          rq->spec = json_loadb (s, len, 0, &je);
          free (s);
          if (!json_is_object (rq->spec))
            return -1;
          continue;
        }
      if (len > CL_AGENT_MAX_FRAME || rq->argc + rq->envc >= CL_AGENT_MAX_ARGS
          || (h[0] != CL_AGENT_ARG && h[0] != CL_AGENT_ENV))
        return -1;
      s = malloc (len + 1);
      if (s == NULL || read_all (fd, s, len) < 0)
        return -1;
      s[len] = '\0';
      if (h[0] == CL_AGENT_ARG)
        rq->argv[rq->argc++] = s;
      else
        rq->envp[rq->envc++] = s;
    }
}

/* A pty of the instance's devpts (its /dev/pts, which the child then
   finds under the name ttyname gives): the master, and *slave. */
static int
open_pty (int rootfd, const struct winsize *ws, int *slave)
{
  int m = openat (rootfd, "dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);

  if (m < 0)
    return -1;
  if (unlockpt (m) < 0 || (*slave = ioctl (m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
    {
      int e = errno;
      close (m);
      errno = e;
      return -1;
    }
  if (ws->ws_row || ws->ws_col)
    ioctl (m, TIOCSWINSZ, ws);
  return m;
}

/* In the command's child: stdio to the pipes or the pty, root to the
   instance's. */
static void
exec_command (int rootfd, struct request *rq, int in, int out, int errfd)
{
  const char *path = NULL;

  trace ("child");
  if (tracing)
    trace_fd = fcntl (1, F_DUPFD_CLOEXEC, 3);
  setsid ();
  dup2 (in, 0), dup2 (out, 1), dup2 (errfd, 2);
  if (rq->pty && ioctl (0, TIOCSCTTY, 0) < 0)
    dprintf (2, "cloison-agent: TIOCSCTTY: %s\n", strerror (errno));
  for (int fd = 3; fd < 1024; fd++)
    if (fd != rootfd && fd != trace_fd)
      close (fd);
  if (fchdir (rootfd) < 0 || chroot (".") < 0 || chdir ("/") < 0)
    {
      dprintf (2, "cloison-agent: chroot into the instance's root: %s\n", strerror (errno));
      _exit (127);
    }
  close (rootfd);
  trace ("chrooted");
  if (rq->spec)
    cl_agent_spec_exec (rq->spec);
  for (size_t i = 0; i < rq->envc; i++)
    if (strncmp (rq->envp[i], "PATH=", 5) == 0)
      path = rq->envp[i];
  if (path == NULL)
    rq->envp[rq->envc++] = "PATH=" CL_AGENT_DEFAULT_PATH;
  rq->envp[rq->envc] = NULL;
  rq->argv[rq->argc] = NULL;
  environ = rq->envp;
  signal (SIGPIPE, SIG_DFL);
  execvp (rq->argv[0], rq->argv);
  dprintf (2, "cloison-agent: %s: %s\n", rq->argv[0], strerror (errno));
  _exit (errno == ENOENT ? 127 : 126);
}

static void
send_exit (int conn, uint32_t code)
{
  unsigned char be[4] = { code >> 24, code >> 16, code >> 8, code };

  send_frame (conn, CL_AGENT_EXIT, be, 4);
  shutdown (conn, SHUT_WR);
  _exit (0);
}

/* The command's stdin, fed from the host's 'I' frames: `pending` bytes
   wait in buf until the command takes them, and no frame is read from
   the host meanwhile (the host's stdin waits in the connection). */
struct command_stdin
{
  int fd; /* the pipe's write end or the pty master; -1 once closed */
  bool pty;
  char buf[CL_AGENT_MAX_FRAME];
  size_t off, pending;
};

static void
stdin_close (struct command_stdin *in)
{
  if (!in->pty && in->fd >= 0)
    close (in->fd);
  in->fd = -1;
  in->pending = 0;
}

/* One frame of the host after 'R'.  -1: the host left (or spoke
   nonsense), the command must die. */
static int
host_frame (int conn, struct command_stdin *in, int master, pid_t pid)
{
  unsigned char h[CL_AGENT_HEADER], sig[4];
  uint32_t len;
  struct winsize ws;
  struct termios t;

  if (read_all (conn, h, sizeof h) < 0)
    return -1;
  len = cl_agent_be32 (h + 1);
  switch (h[0])
    {
    case CL_AGENT_STDIN:
      if (len == 0 || len > CL_AGENT_MAX_FRAME || read_all (conn, in->buf, len) < 0)
        return -1;
      if (in->fd >= 0)
        in->off = 0, in->pending = len;
      return 0;
    case CL_AGENT_STDIN_EOF:
      if (len != 0)
        return -1;
      /* a terminal has no end of input: its EOF character ends a read */
      if (in->pty && in->fd >= 0 && tcgetattr (in->fd, &t) == 0 && (t.c_lflag & ICANON))
        {
          ssize_t w = write (in->fd, &t.c_cc[VEOF], 1);
          (void)w;
        }
      stdin_close (in);
      return 0;
    case CL_AGENT_SIGNAL:
      if (len != sizeof sig || read_all (conn, sig, sizeof sig) < 0)
        return -1;
      kill (pid, (int)cl_agent_be32 (sig));
      return 0;
    case CL_AGENT_WINSIZE:
      if (read_winsize (conn, len, &ws) < 0)
        return -1;
      if (master >= 0)
        ioctl (master, TIOCSWINSZ, &ws);
      return 0;
    default:
      return -1;
    }
}

/* One connection: read the request, run it, feed its stdin, relay its
   output, send its exit status. */
static void
serve (int rootfd, const char *root, int conn)
{
  static struct request rq;
  static struct command_stdin in;
  int inp[2], out[2], errp[2], st, master = -1, slave = -1;
  pid_t pid;
  struct pollfd p[4];
  char buf[16384];
  int open_outputs;

  signal (SIGCHLD, SIG_DFL);
  if (read_request (conn, &rq) < 0)
    _exit (1);
  tracing = json_is_true (json_object_get (rq.spec, "trace"));
  trace ("request");
  if (rq.spec && fs_tag)
    {
      /* the container's rootfs: mounted at the agent's start (and then in
         the template a clone was restored from), else at its first
         process; O_PATH: no FUSE OPENDIR round trip */
      int fd;
      if (!first_process (rq.spec))
        setup_wait ();
      cl_agent_spec_mount_root (rq.spec, fs_tag, root, share_mounted);
      trace ("rootfs mounted");
      fd = open (root, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fd >= 0)
        dup3 (fd, rootfd, O_CLOEXEC), close (fd);
    }
  if (rq.spec)
    cl_agent_spec_global (rq.spec, root);
  trace ("set up");
  if (rq.spec && fs_tag && first_process (rq.spec))
    {
      int fd = open (SETUP_DONE, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      if (fd >= 0)
        close (fd);
    }
  if (rq.pty)
    {
      master = open_pty (rootfd, &rq.ws, &slave);
      if (master < 0)
        {
          char msg[256];
          int n = snprintf (msg, sizeof msg,
                            "cloison-agent: open a pty (the instance's /dev/ptmx): %s\n",
                            strerror (errno));
          send_frame (conn, CL_AGENT_STDERR, msg, (uint32_t)n);
          send_exit (conn, 126);
        }
      inp[0] = out[1] = errp[1] = slave;
    }
  else if (pipe2 (inp, O_CLOEXEC) < 0 || pipe2 (out, O_CLOEXEC) < 0 || pipe2 (errp, O_CLOEXEC) < 0)
    _exit (1);
  pid = fork ();
  if (pid < 0)
    _exit (1);
  if (pid == 0)
    exec_command (rootfd, &rq, inp[0], out[1], errp[1]);
  if (rq.pty)
    {
      close (slave);
      in.fd = master, in.pty = true;
      p[0] = (struct pollfd){ .fd = master, .events = POLLIN };
      p[1] = (struct pollfd){ .fd = -1 };
      open_outputs = 1;
    }
  else
    {
      close (inp[0]), close (out[1]), close (errp[1]);
      in.fd = inp[1];
      p[0] = (struct pollfd){ .fd = out[0], .events = POLLIN };
      p[1] = (struct pollfd){ .fd = errp[0], .events = POLLIN };
      open_outputs = 2;
    }
  /* never blocked by a command that does not read its stdin */
  fcntl (in.fd, F_SETFL, fcntl (in.fd, F_GETFL) | O_NONBLOCK);
  p[2] = (struct pollfd){ .fd = conn };
  while (open_outputs > 0)
    {
      /* the host's next frame once the last stdin bytes are taken */
      p[2].events = in.pending ? 0 : POLLIN;
      p[3] = (struct pollfd){ .fd = in.pending ? in.fd : -1, .events = POLLOUT };
      if (poll (p, 4, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      for (int i = 0; i < 2; i++)
        if (p[i].revents)
          {
            ssize_t n = read (p[i].fd, buf, sizeof buf);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
              continue;
            if (n <= 0) /* EIO on a pty master: no one holds the slave */
              {
                if (!rq.pty)
                  close (p[i].fd);
                p[i].fd = -1;
                open_outputs--;
              }
            else if (send_frame (conn, i == 0 ? CL_AGENT_STDOUT : CL_AGENT_STDERR, buf, (uint32_t)n)
                     < 0)
              {
                kill (-pid, SIGKILL);
                _exit (1);
              }
          }
      if (p[3].revents)
        {
          ssize_t n = write (in.fd, in.buf + in.off, in.pending);
          if (n > 0)
            in.off += (size_t)n, in.pending -= (size_t)n;
          else if (n < 0 && errno != EAGAIN && errno != EINTR)
            stdin_close (&in); /* EPIPE: the command closed its stdin */
        }
      /* with stdin bytes pending only a hang-up or an error wakes it */
      if (p[2].revents && (in.pending || host_frame (conn, &in, master, pid) < 0))
        {
          /* the connection closed (or broke): the host left */
          kill (-pid, SIGKILL);
          p[2].fd = -1;
          stdin_close (&in);
        }
    }
  trace ("outputs closed");
  while (waitpid (pid, &st, 0) < 0)
    if (errno != EINTR)
      _exit (1);
  trace ("exited");
  send_exit (conn, WIFEXITED (st) ? (uint32_t)WEXITSTATUS (st) : 128u + (uint32_t)WTERMSIG (st));
}

static int
vsock_listen (unsigned port)
{
  struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = port, .svm_cid = VMADDR_CID_ANY };
  int lfd = socket (AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (lfd < 0 || bind (lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen (lfd, 16) < 0)
    {
      fprintf (stderr, "cloison-agent: vsock port %u: %s\n", port, strerror (errno));
      return -1;
    }
  return lfd;
}

/* --go FILE: the init of a VM instance's template (cloison.template)
   waits here, before its disks and NICs are probed, for the clone's "go"
   on CL_AGENT_GO_PORT: one request whose 'J' object carries "entropy",
   "time" and "hostname" (applied here, as for a container's first
   process), "cmdline", the instance's own kernel parameters, written to
   FILE for the init, and "args", its init's arguments (those after `--`
   on a kernel command line), one a line in FILE.args.  Exits 0 once the
   host has its answer. */
static int
write_go (const char *file, const char *params, json_t *args)
{
  char *path = malloc (strlen (file) + sizeof ".args");
  json_t *a;
  size_t i;
  int fd, r = 0;

  if (path == NULL)
    return -1;
  sprintf (path, "%s.args", file);
  fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  free (path);
  if (fd < 0)
    return -1;
  json_array_foreach (args, i, a)
  {
    const char *s = json_string_value (a);
    if (s == NULL || strchr (s, '\n') || write_all (fd, s, strlen (s)) < 0
        || write_all (fd, "\n", 1) < 0)
      r = -1;
  }
  if (close (fd) < 0)
    r = -1;
  fd = open (file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (r < 0 || fd < 0 || write_all (fd, params, strlen (params)) < 0)
    r = -1;
  if (fd >= 0 && close (fd) < 0)
    r = -1;
  return r;
}

static int
wait_go (const char *file)
{
  int lfd = vsock_listen (CL_AGENT_GO_PORT);

  if (lfd < 0)
    return 1;
  /* on the console: the template is snapshotted once this is seen */
  dprintf (1, "cloison-agent: ready\n");
  signal (SIGPIPE, SIG_IGN);
  for (;;)
    {
      static struct request rq;
      const char *args;
      int conn = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);

      if (conn < 0)
        {
          if (errno != EINTR)
            usleep (100000);
          continue;
        }
      memset (&rq, 0, sizeof rq);
      args = read_request (conn, &rq) == 0
                 ? json_string_value (json_object_get (rq.spec, "cmdline"))
                 : NULL;
      if (args == NULL || write_go (file, args, json_object_get (rq.spec, "args")) < 0)
        {
          unsigned char be[4] = { 0, 0, 0, 2 };
          send_frame (conn, CL_AGENT_EXIT, be, 4);
          close (conn);
          json_decref (rq.spec);
          continue;
        }
      cl_agent_spec_global (rq.spec, "/");
      send_exit (conn, 0); /* exits */
    }
}

int
main (int argc, char **argv)
{
  int rootfd, lfd;
  bool pid1 = argc >= 3 && strcmp (argv[1], "--pid1") == 0;
  const char *root;
  pid_t pid;

  if (argc == 3 && strcmp (argv[1], "--go") == 0)
    return wait_go (argv[2]);
  if (pid1 && argc == 5 && strcmp (argv[2], "--fs") == 0)
    fs_tag = argv[3];
  if (argc != 2 && !(pid1 && (argc == 3 || fs_tag)))
    {
      fprintf (stderr, "usage: cloison-agent [--pid1 [--fs TAG]] ROOT | --go FILE\n");
      return 2;
    }
  root = argv[argc - 1];
  /* The share at once, before "ready": a template is snapshotted with it
     mounted (the FUSE session set up, nothing looked up), so that a clone,
     whose share is its container's rootfs, skips the mount and its round
     trips.  Failing here, the first request mounts it. */
  if (fs_tag && mount (fs_tag, root, "virtiofs", 0, NULL) < 0)
    fprintf (stderr, "cloison-agent: mount the virtio-fs share %s on %s: %s\n", fs_tag, root,
             strerror (errno));
  else if (fs_tag)
    share_mounted = true;
  rootfd = open (root, (share_mounted ? O_PATH : O_RDONLY) | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    {
      fprintf (stderr, "cloison-agent: open `%s`: %s\n", root, strerror (errno));
      return 1;
    }
  lfd = vsock_listen (CL_AGENT_PORT);
  if (lfd < 0)
    return 1;
  /* --pid1 (a VM-isolated container): the agent is the guest's init, in
     the foreground; orphans are reaped by SIGCHLD's SIG_IGN below */
  pid = pid1 ? 0 : fork ();
  if (pid < 0)
    return 1;
  if (pid > 0)
    return 0; /* listening: the init goes on */
  if (!pid1)
    setsid ();
  else
    /* on the console: a template is snapshotted once this is seen, before
       any vsock traffic */
    dprintf (1, "cloison-agent: ready\n");
  if (chdir ("/") < 0)
    return 1;
  signal (SIGCHLD, SIG_IGN); /* connection children reap themselves */
  signal (SIGPIPE, SIG_IGN);
  for (;;)
    {
      int conn = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
      if (conn < 0)
        {
          if (errno != EINTR)
            usleep (100000);
          continue;
        }
      pid = fork ();
      if (pid == 0)
        {
          close (lfd);
          serve (rootfd, root, conn);
        }
      close (conn);
    }
}
