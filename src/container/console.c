/* SPDX-License-Identifier: Apache-2.0 */
#include "container/console.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO ('T', 0x41)
#endif

int
cl_ctr_console_send_fd (int sock, int fd, const char *name)
{
  char buf[CMSG_SPACE (sizeof (int))];
  struct iovec iov = { .iov_base = (void *) name, .iov_len = strlen (name) + 1 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf,
                        .msg_controllen = sizeof buf };
  struct cmsghdr *c;

  memset (buf, 0, sizeof buf);
  c = CMSG_FIRSTHDR (&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (c), &fd, sizeof (int));
  return sendmsg (sock, &msg, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

int
cl_ctr_console_recv_fd (int sock)
{
  char buf[CMSG_SPACE (sizeof (int))], data[256];
  struct iovec iov = { .iov_base = data, .iov_len = sizeof data };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf,
                        .msg_controllen = sizeof buf };
  struct cmsghdr *c;
  int fd;

  if (recvmsg (sock, &msg, MSG_CMSG_CLOEXEC) < 0)
    return -1;
  c = CMSG_FIRSTHDR (&msg);
  if (c == NULL || c->cmsg_type != SCM_RIGHTS)
    {
      errno = EBADMSG;
      return -1;
    }
  memcpy (&fd, CMSG_DATA (c), sizeof fd);
  return fd;
}

int
cl_ctr_console_send_to_socket (const char *path, int master, cl_error_t *err)
{
  cleanup_close int sock = -1;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };

  if (strlen (path) >= sizeof addr.sun_path)
    return cl_error_make (err, ENAMETOOLONG, "console socket `%s`", path);
  strcpy (addr.sun_path, path);
  sock = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0)
    return cl_error_errno (err, "console socket: socket");
  if (connect (sock, (struct sockaddr *) &addr, sizeof addr) < 0)
    return cl_error_errno (err, "connect to console socket `%s`", path);
  if (cl_ctr_console_send_fd (sock, master, "/dev/ptmx") < 0)
    return cl_error_errno (err, "send the console to `%s`", path);
  return 0;
}

int
cl_ctr_console_open_pty (const char *ptmx_path, json_t *console_size, int *master, int *slave,
                         cl_error_t *err)
{
  cleanup_close int m = -1;
  int unlock = 0, s;

  m = open (ptmx_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0)
    return cl_error_errno (err, "open `%s`", ptmx_path);
  if (ioctl (m, TIOCSPTLCK, &unlock) < 0)
    return cl_error_errno (err, "unlock pty");
  s = ioctl (m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (s < 0)
    return cl_error_errno (err, "open the pty slave");
  if (console_size)
    {
      struct winsize ws = { 0 };
      ws.ws_row = (unsigned short) json_integer_value (json_object_get (console_size, "height"));
      ws.ws_col = (unsigned short) json_integer_value (json_object_get (console_size, "width"));
      ioctl (s, TIOCSWINSZ, &ws);
    }
  *master = steal_fd (&m);
  *slave = s;
  return 0;
}

static int
copy_once (int from, int to)
{
  char buf[8192];
  ssize_t n = read (from, buf, sizeof buf);
  if (n <= 0)
    return -1;
  return cl_write_all (to, buf, (size_t) n);
}

void
cl_ctr_console_proxy (int master)
{
  struct termios saved, raw;
  bool is_tty = tcgetattr (0, &saved) == 0;
  struct pollfd p[2] = { { .fd = 0, .events = POLLIN }, { .fd = master, .events = POLLIN } };
  struct winsize ws;

  if (is_tty)
    {
      if (ioctl (0, TIOCGWINSZ, &ws) == 0)
        ioctl (master, TIOCSWINSZ, &ws);
      raw = saved;
      cfmakeraw (&raw);
      tcsetattr (0, TCSANOW, &raw);
    }
  for (;;)
    {
      if (poll (p, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          break;
        }
      if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
        if (copy_once (master, 1) < 0)
          break;
      if (p[0].revents & (POLLIN | POLLHUP))
        if (copy_once (0, master) < 0)
          p[0].fd = -1; /* stdin closed: keep reading output */
    }
  if (is_tty)
    tcsetattr (0, TCSANOW, &saved);
}
