/* cloison-agent: the guest agent of cloison's VM initramfs (`cloison exec`
   on VM instances).  Usage: cloison-agent ROOT

   The initramfs init runs it before switch_root with ROOT = the mounted
   root disk: it opens ROOT, listens on AF_VSOCK port CL_AGENT_PORT, then
   goes to the background and returns, so that the init can switch_root
   right away.  Each command runs chrooted into ROOT (the descriptor still
   names the instance's root after switch_root moved it to /), so it sees
   the instance's files.  One connection, one command; the protocol is in
   protocol.h.  The host is trusted: requests are only bounded so that a
   bad one cannot exhaust the agent. */
#include "agent/protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

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
  unsigned char h[CL_AGENT_HEADER] = { (unsigned char)type, len >> 24, len >> 16, len >> 8, len };

  if (write_all (fd, h, sizeof h) < 0)
    return -1;
  return len ? write_all (fd, data, len) : 0;
}

struct request
{
  char *argv[CL_AGENT_MAX_ARGS + 1];
  char *envp[CL_AGENT_MAX_ARGS + 2];
  size_t argc, envc;
};

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
      len = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
      if (h[0] == CL_AGENT_RUN)
        return rq->argc > 0 ? 0 : -1;
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

/* In the command's child: stdio to the pipes, root to the instance's. */
static void
exec_command (int rootfd, struct request *rq, int in, int out, int errfd)
{
  const char *path = NULL;

  setsid ();
  dup2 (in, 0), dup2 (out, 1), dup2 (errfd, 2);
  for (int fd = 3; fd < 1024; fd++)
    if (fd != rootfd)
      close (fd);
  if (fchdir (rootfd) < 0 || chroot (".") < 0 || chdir ("/") < 0)
    {
      dprintf (2, "cloison-agent: chroot into the instance's root: %s\n", strerror (errno));
      _exit (127);
    }
  close (rootfd);
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

/* One connection: read the request, run it, relay its output, send its
   exit status. */
static void
serve (int rootfd, int conn)
{
  static struct request rq;
  int in[2], out[2], errp[2], st;
  pid_t pid;
  struct pollfd p[3];
  char buf[16384];
  int open_pipes = 2;
  uint32_t code;

  signal (SIGCHLD, SIG_DFL);
  if (read_request (conn, &rq) < 0)
    _exit (1);
  if (pipe2 (in, O_CLOEXEC) < 0 || pipe2 (out, O_CLOEXEC) < 0 || pipe2 (errp, O_CLOEXEC) < 0)
    _exit (1);
  pid = fork ();
  if (pid < 0)
    _exit (1);
  if (pid == 0)
    exec_command (rootfd, &rq, in[0], out[1], errp[1]);
  close (in[0]), close (in[1]), close (out[1]), close (errp[1]);
  p[0] = (struct pollfd){ .fd = out[0], .events = POLLIN };
  p[1] = (struct pollfd){ .fd = errp[0], .events = POLLIN };
  p[2] = (struct pollfd){ .fd = conn, .events = POLLIN };
  while (open_pipes > 0)
    {
      if (poll (p, 3, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      for (int i = 0; i < 2; i++)
        if (p[i].revents)
          {
            ssize_t n = read (p[i].fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
              continue;
            if (n <= 0)
              {
                close (p[i].fd);
                p[i].fd = -1;
                open_pipes--;
              }
            else if (send_frame (conn, i == 0 ? CL_AGENT_STDOUT : CL_AGENT_STDERR, buf, (uint32_t)n)
                     < 0)
              {
                kill (-pid, SIGKILL);
                _exit (1);
              }
          }
      if (p[2].revents)
        {
          /* the host sends nothing after 'R': data or EOF means it left */
          kill (-pid, SIGKILL);
          p[2].fd = -1;
        }
    }
  while (waitpid (pid, &st, 0) < 0)
    if (errno != EINTR)
      _exit (1);
  code = WIFEXITED (st) ? (uint32_t)WEXITSTATUS (st) : 128u + (uint32_t)WTERMSIG (st);
  {
    unsigned char be[4] = { code >> 24, code >> 16, code >> 8, code };
    send_frame (conn, CL_AGENT_EXIT, be, 4);
  }
  shutdown (conn, SHUT_WR);
  _exit (0);
}

int
main (int argc, char **argv)
{
  struct sockaddr_vm sa
      = { .svm_family = AF_VSOCK, .svm_port = CL_AGENT_PORT, .svm_cid = VMADDR_CID_ANY };
  int rootfd, lfd;
  pid_t pid;

  if (argc != 2)
    {
      fprintf (stderr, "usage: cloison-agent ROOT\n");
      return 2;
    }
  rootfd = open (argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    {
      fprintf (stderr, "cloison-agent: open `%s`: %s\n", argv[1], strerror (errno));
      return 1;
    }
  lfd = socket (AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0 || bind (lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen (lfd, 16) < 0)
    {
      fprintf (stderr, "cloison-agent: vsock port %u: %s\n", CL_AGENT_PORT, strerror (errno));
      return 1;
    }
  pid = fork ();
  if (pid < 0)
    return 1;
  if (pid > 0)
    return 0; /* listening: the init goes on */
  setsid ();
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
          serve (rootfd, conn);
        }
      close (conn);
    }
}
