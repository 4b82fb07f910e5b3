/* SPDX-License-Identifier: Apache-2.0 */
/* The host side of the guest agent's protocol (src/agent/protocol.h):
   frames and the session of one process (stdio, signals, the exit
   status).  Replies come from the guest and are untrusted: each frame is
   checked here, once, by cl_mgr_agent_frame_read.  Apart from the VM
   instances' CIDs and exec (vm_agent.c, the manager's database), so
   that cloison-vmctr, which runs for every VM-isolated container, links
   without the database. */
#include "agent/protocol.h"
#include "common/cleanup.h"
#include "common/util.h"
#include "manager/mgr_vm.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

int
cl_mgr_agent_send_frame (int fd, char type, const void *data, size_t len, cl_error_t *err)
{
  unsigned char h[CL_AGENT_HEADER];

  if (len > CL_AGENT_MAX_FRAME)
    return cl_error_raise (err, CL_ERR_INVALID,
                           "exec: an argument or variable is longer than %u bytes",
                           CL_AGENT_MAX_FRAME);
  cl_agent_header_encode (h, type, (uint32_t)len);
  if (cl_write_all (fd, h, sizeof h) < 0 || (len && cl_write_all (fd, data, len) < 0))
    return cl_error_errno (err, "send the command to the guest agent");
  return 0;
}

int
cl_mgr_agent_send_string (int fd, char type, const char *s, cl_error_t *err)
{
  return cl_mgr_agent_send_frame (fd, type, s, strlen (s), err);
}

/* Reads exactly n bytes; 0 at a clean EOF before the first byte. */
static int
read_exact (int fd, void *buf, size_t n, cl_error_t *err)
{
  size_t got = 0;

  while (got < n)
    {
      ssize_t r = read (fd, (char *)buf + got, n - got);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        return cl_error_errno (err, "read from the guest agent");
      if (r == 0)
        {
          if (got == 0)
            return 0;
          return cl_error_make (err, 0, "guest agent: truncated frame");
        }
      got += (size_t)r;
    }
  return 1;
}

int
cl_mgr_agent_frame_read (int fd, char *type, void *buf, uint32_t *len, cl_error_t *err)
{
  unsigned char h[CL_AGENT_HEADER];
  int r = read_exact (fd, h, sizeof h, err);

  if (r <= 0)
    return r;
  *type = (char)h[0];
  *len = cl_agent_be32 (h + 1);
  if (*type != CL_AGENT_STDOUT && *type != CL_AGENT_STDERR && *type != CL_AGENT_EXIT)
    return cl_error_make (err, 0, "guest agent: unknown frame type 0x%02x", h[0]);
  if (*len > CL_AGENT_MAX_FRAME)
    return cl_error_make (err, 0, "guest agent: frame of %u bytes (at most %u)", *len,
                          CL_AGENT_MAX_FRAME);
  if (*type == CL_AGENT_EXIT && *len != 4)
    return cl_error_make (err, 0, "guest agent: exit frame of %u bytes (expected 4)", *len);
  if (*len && read_exact (fd, buf, *len, err) <= 0)
    return cl_error_make (err, 0, "guest agent: truncated frame");
  return 1;
}

/* The size of our terminal (stdin's, else stdout's); 0 0 without one. */
void
cl_mgr_agent_terminal_size (unsigned char *payload)
{
  struct winsize ws = { 0 };

  if (ioctl (0, TIOCGWINSZ, &ws) < 0 && ioctl (1, TIOCGWINSZ, &ws) < 0)
    ws = (struct winsize){ 0 };
  cl_agent_winsize_encode (payload, ws.ws_row, ws.ws_col);
}

static volatile sig_atomic_t session_winch, session_stop, session_forward_on;
static volatile sig_atomic_t session_pending[NSIG];

static void
session_signal (int sig)
{
  if (sig == SIGWINCH)
    session_winch = 1;
  else if (session_forward_on)
    session_pending[sig] = 1;
  else
    session_stop = sig;
}

/* Signals a VM-isolated container's shim passes to the process ('K'). */
static const int forwarded[]
    = { SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGPWR };

/* The frame on its way to the agent: sent without blocking, so that its
   replies are read meanwhile whatever the command does with its stdin. */
struct outgoing
{
  unsigned char *buf; /* CL_AGENT_HEADER + CL_AGENT_MAX_FRAME */
  size_t off, len;
  bool broken; /* the agent stopped reading (the command ended) */
};

static void
outgoing_send (int conn, struct outgoing *o)
{
  ssize_t n = send (conn, o->buf + o->off, o->len - o->off, MSG_DONTWAIT | MSG_NOSIGNAL);

  if (n > 0)
    o->off += (size_t)n;
  else if (n < 0 && errno != EAGAIN && errno != EINTR)
    o->broken = true; /* its reply (the exit status) is still to read */
  if (o->off == o->len || o->broken)
    o->off = o->len = 0;
}

/* Reads a chunk of stdin into an 'I' frame, or makes the 'C' frame at its
   end.  Returns false when stdin is over. */
static bool
outgoing_stdin (int in, struct outgoing *o)
{
  ssize_t n = read (in, o->buf + CL_AGENT_HEADER, CL_AGENT_MAX_FRAME);

  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return true;
  cl_agent_header_encode (o->buf, n > 0 ? CL_AGENT_STDIN : CL_AGENT_STDIN_EOF,
                          n > 0 ? (uint32_t)n : 0);
  o->off = 0, o->len = CL_AGENT_HEADER + (n > 0 ? (size_t)n : 0);
  return n > 0;
}

/* One reply; 1 when it was the exit status (in *exit_code). */
static int
session_reply (int conn, unsigned char *buf, int out, int errfd, int *exit_code, cl_error_t *err)
{
  char type;
  uint32_t len, code;
  int r = cl_mgr_agent_frame_read (conn, &type, buf, &len, err);

  if (r < 0)
    return -1;
  if (r == 0)
    return cl_error_make (err, 0, "guest agent: connection closed before the exit status");
  if (type == CL_AGENT_EXIT)
    {
      code = cl_agent_be32 (buf);
      if (code > 255)
        return cl_error_make (err, 0, "guest agent: exit status %u out of range", code);
      *exit_code = (int)code;
      return 1;
    }
  /* a closed stdout/stderr of ours must not stop the command's status */
  (void)cl_write_all (type == CL_AGENT_STDOUT ? out : errfd, buf, len);
  return 0;
}

int
cl_mgr_agent_session (int conn, int in, int out, int errfd, bool tty, int *exit_code,
                      cl_error_t *err)
{
  return cl_mgr_agent_session_full (conn, in, out, errfd, tty, false, exit_code, err);
}

int
cl_mgr_agent_session_full (int conn, int in, int out, int errfd, bool tty, bool forward,
                           int *exit_code, cl_error_t *err)
{
  static const int tty_sigs[] = { SIGWINCH, SIGINT, SIGTERM, SIGHUP, SIGQUIT };
  int sigs[16];
  size_t nsigs = 0;
  cleanup_free unsigned char *reply = malloc (CL_AGENT_MAX_FRAME);
  cleanup_free unsigned char *frame = malloc (CL_AGENT_HEADER + CL_AGENT_MAX_FRAME);
  struct outgoing o = { .buf = frame };
  struct sigaction sa = { .sa_handler = session_signal }, old[16];
  sigset_t block, wait_mask;
  struct termios saved, raw;
  bool stdin_open = in >= 0, is_raw, masked = tty || forward;
  int r = 0;

  if (reply == NULL || frame == NULL)
    return cl_error_errno (err, "malloc");
  /* on a pty, the terminal's signals end the session (and restore the
     terminal) instead of killing us; with `forward` they go to the
     command ('K') instead; ppoll lets them in, nowhere else */
  session_winch = session_stop = 0;
  session_forward_on = forward;
  memset ((void *)session_pending, 0, sizeof session_pending);
  if (tty)
    for (size_t i = 0; i < sizeof tty_sigs / sizeof *tty_sigs; i++)
      sigs[nsigs++] = tty_sigs[i];
  if (forward)
    for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
      {
        bool have = false;
        for (size_t k = 0; k < nsigs; k++)
          have |= sigs[k] == forwarded[i];
        if (!have)
          sigs[nsigs++] = forwarded[i];
      }
  sigemptyset (&block);
  for (size_t i = 0; i < nsigs; i++)
    {
      sigaddset (&block, sigs[i]);
      sigaction (sigs[i], &sa, &old[i]);
    }
  sigprocmask (SIG_BLOCK, &block, &wait_mask);
  /* our terminal goes raw while the command has the guest's (every key
     for it), once the signals that end us are caught: restored below
     whatever ends the session */
  is_raw = tty && in >= 0 && tcgetattr (in, &saved) == 0;
  if (is_raw)
    {
      raw = saved;
      cfmakeraw (&raw);
      tcsetattr (in, TCSADRAIN, &raw);
    }
  while (r == 0)
    {
      struct pollfd p[2] = {
        { .fd = conn, .events = POLLIN | (o.len ? POLLOUT : 0) },
        { .fd = stdin_open && o.len == 0 && !o.broken ? in : -1, .events = POLLIN },
      };

      if (session_stop)
        {
          *exit_code = 128 + session_stop;
          break;
        }
      for (size_t i = 0; forward && o.len == 0 && !o.broken && i < nsigs; i++)
        if (session_pending[sigs[i]])
          {
            session_pending[sigs[i]] = 0;
            unsigned char *b = o.buf + CL_AGENT_HEADER;
            cl_agent_header_encode (o.buf, CL_AGENT_SIGNAL, 4);
            b[0] = 0, b[1] = 0, b[2] = 0, b[3] = (unsigned char)sigs[i];
            o.off = 0, o.len = CL_AGENT_HEADER + 4;
          }
      if (o.len && p[0].events == POLLIN)
        continue; /* a signal's frame was just made: poll for sending it */
      if (session_winch && o.len == 0 && !o.broken)
        {
          session_winch = 0;
          cl_mgr_agent_terminal_size (o.buf + CL_AGENT_HEADER);
          cl_agent_header_encode (o.buf, CL_AGENT_WINSIZE, CL_AGENT_WINSIZE_LEN);
          o.off = 0, o.len = CL_AGENT_HEADER + CL_AGENT_WINSIZE_LEN;
          continue;
        }
      if (ppoll (p, 2, NULL, masked ? &wait_mask : NULL) < 0)
        {
          if (errno != EINTR)
            r = cl_error_errno (err, "poll");
          continue;
        }
      if (p[0].revents & POLLOUT)
        outgoing_send (conn, &o);
      if (p[1].revents)
        stdin_open = outgoing_stdin (in, &o);
      if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
        r = session_reply (conn, reply, out, errfd, exit_code, err);
    }
  if (is_raw)
    tcsetattr (in, TCSADRAIN, &saved);
  sigprocmask (SIG_SETMASK, &wait_mask, NULL);
  for (size_t i = 0; i < nsigs; i++)
    sigaction (sigs[i], &old[i], NULL);
  session_forward_on = 0;
  return r < 0 ? -1 : 0;
}
