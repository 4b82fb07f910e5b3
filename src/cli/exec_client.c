/* SPDX-License-Identifier: Apache-2.0 */
/* exec and console through the API's websockets (exec_client.h). */
#include "cli/exec_client.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#define FRAME_MAX (1u << 20)
#define DETACH_KEY 0x1d /* Ctrl-], as the local console */

enum
{
  WS_STDIN,
  WS_STDOUT,
  WS_STDERR,
  WS_CONTROL,
  N_WS
};

/* One session: the websockets, where their bytes go, and the terminal. */
struct session
{
  struct cl_api_wsc *ws[N_WS]; /* NULL: not there (a pty has no 1 and 2) */
  int out_fd[N_WS];            /* where a websocket's bytes go, -1: nowhere */
  bool output[N_WS];           /* carries output: the session lasts until it closes */
  bool open[N_WS];
  bool console; /* one websocket (0), its text frames ours and errors theirs */
  bool tty;     /* the local terminal in raw mode */
  bool stdin_open;
  bool stdin_is_tty;
  struct termios saved;
  char *error; /* a console's error, sent as a text frame */
};

static int signal_pipe[2] = { -1, -1 };

static void
on_signal (int sig)
{
  int saved = errno;
  unsigned char b = (unsigned char)sig;
  if (write (signal_pipe[1], &b, 1) < 0)
    {
      /* full: the signal is dropped, as the kernel would merge it */
    }
  errno = saved;
}

static const int forwarded[] = { SIGWINCH, SIGINT, SIGTERM, SIGHUP, SIGQUIT };

static int
signals_catch (cl_error_t *err)
{
  struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };

  if (signal_pipe[0] < 0 && pipe2 (signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
    return cl_error_errno (err, "pipe");
  sigemptyset (&sa.sa_mask);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    sigaction (forwarded[i], &sa, NULL);
  /* a reader of our output gone: EPIPE, the session still ends cleanly */
  signal (SIGPIPE, SIG_IGN);
  return 0;
}

static void
signals_restore (void)
{
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    signal (forwarded[i], SIG_DFL);
}

static void
terminal_size (unsigned *w, unsigned *h)
{
  struct winsize ws;
  *w = 80;
  *h = 24;
  if ((ioctl (0, TIOCGWINSZ, &ws) == 0 || ioctl (1, TIOCGWINSZ, &ws) == 0) && ws.ws_col
      && ws.ws_row)
    {
      *w = ws.ws_col;
      *h = ws.ws_row;
    }
}

static void
terminal_raw (struct session *s)
{
  struct termios raw;
  s->stdin_is_tty = tcgetattr (0, &s->saved) == 0;
  if (!s->tty || !s->stdin_is_tty)
    return;
  raw = s->saved;
  cfmakeraw (&raw);
  tcsetattr (0, TCSADRAIN, &raw);
}

static void
terminal_restore (struct session *s)
{
  if (s->tty && s->stdin_is_tty)
    tcsetattr (0, TCSADRAIN, &s->saved);
}

/* The control websocket's (or a console's own) message. */
static void
send_control (struct session *s, json_t *msg)
{
  struct cl_api_wsc *ctl = s->console ? s->ws[WS_STDIN] : s->ws[WS_CONTROL];
  cleanup_free char *text = json_dumps (msg, JSON_COMPACT);

  if (ctl && text)
    cl_api_wsc_send (ctl, 1, text, strlen (text));
  json_decref (msg);
}

static void
on_caught (struct session *s, int sig)
{
  unsigned w, h;

  if (sig == SIGWINCH)
    {
      if (!s->tty)
        return;
      terminal_size (&w, &h);
      send_control (s, json_pack ("{s:s, s:{s:I, s:I}}", "command", "window-resize", "args",
                                  "width", (json_int_t)w, "height", (json_int_t)h));
    }
  else if (s->console)
    s->open[WS_STDIN] = false; /* leaving the console */
  else
    send_control (s, json_pack ("{s:s, s:i}", "command", "signal", "signal", sig));
}

/* Our stdin to the command (or the console); false: nothing more. */
static void
forward_stdin (struct session *s)
{
  char buf[16384];
  ssize_t n = read (0, buf, sizeof buf);
  char *detach;

  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (n <= 0)
    {
      s->stdin_open = false;
      /* an empty message ends the command's stdin (a pty has none to end) */
      if (!s->tty && !s->console)
        cl_api_wsc_send (s->ws[WS_STDIN], 2, "", 0);
      return;
    }
  if (s->console && s->stdin_is_tty && (detach = memchr (buf, DETACH_KEY, (size_t)n)))
    {
      n = detach - buf;
      s->open[WS_STDIN] = false;
    }
  if (n > 0 && cl_api_wsc_send (s->ws[WS_STDIN], 2, buf, (size_t)n) < 0)
    s->stdin_open = false;
}

/* Every whole frame websocket i has; false once it is closed. */
static bool
drain_ws (struct session *s, int i)
{
  for (;;)
    {
      cleanup_free char *p = NULL;
      size_t len;
      int op = cl_api_wsc_recv (s->ws[i], &p, &len);

      if (op == -2)
        return true;
      if (op == -1 || op == 8)
        return false; /* the server closes the connection after its close frame */
      if (op == 9)
        cl_api_wsc_send (s->ws[i], 10, p, len);
      else if (op == 1 && s->console)
        {
          free (s->error);
          s->error = steal_pointer (&p);
        }
      else if ((op == 0 || op == 1 || op == 2) && s->out_fd[i] >= 0 && len
               && cl_write_all (s->out_fd[i], p, len) < 0)
        {
          /* our reader is gone: the command gets the SIGPIPE it would
             writing to that pipe itself, and the rest is read and dropped */
          s->out_fd[i] = -1;
          if (!s->console)
            send_control (s, json_pack ("{s:s, s:i}", "command", "signal", "signal", SIGPIPE));
        }
    }
}

/* Are the websockets that carry output all closed? */
static bool
output_done (struct session *s)
{
  for (int i = 0; i < N_WS; i++)
    if (s->ws[i] && s->open[i] && s->output[i])
      return false;
  return true;
}

static int
session_loop (struct session *s, cl_error_t *err)
{
  while (!output_done (s))
    {
      struct pollfd p[N_WS + 2];
      int which[N_WS + 2], n = 0;

      p[n] = (struct pollfd){ .fd = s->stdin_open ? 0 : -1, .events = POLLIN };
      which[n++] = -1;
      p[n] = (struct pollfd){ .fd = signal_pipe[0], .events = POLLIN };
      which[n++] = -2;
      for (int i = 0; i < N_WS; i++)
        if (s->ws[i] && s->open[i])
          {
            p[n] = (struct pollfd){ .fd = cl_api_wsc_fd (s->ws[i]), .events = POLLIN };
            which[n++] = i;
          }
      if (poll (p, (nfds_t)n, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return cl_error_errno (err, "poll");
        }
      for (int k = 0; k < n; k++)
        {
          if (p[k].revents == 0)
            continue;
          if (which[k] == -1)
            {
              if (p[k].revents & POLLNVAL)
                s->stdin_open = false;
              else
                forward_stdin (s);
            }
          else if (which[k] == -2)
            {
              unsigned char sig;
              while (read (signal_pipe[0], &sig, 1) == 1)
                on_caught (s, sig);
            }
          else if (!drain_ws (s, which[k]))
            s->open[which[k]] = false;
        }
    }
  return 0;
}

static void
session_end (struct session *s)
{
  terminal_restore (s);
  signals_restore ();
  for (int i = 0; i < N_WS; i++)
    cl_api_wsc_close (s->ws[i]);
  free (s->error);
}

static int
no_server (cl_error_t *err)
{
  return cl_error_make (err, 0, "exec and console through the API need a daemon or a remote");
}

/* POSTs body (an exec's, or an attached run's) to exec_path with the
   session's fields added, and runs the session on its websockets. */
static int
exec_session (struct cli_client *c, const char *exec_path, json_t *body, bool tty, int *exit_code,
              cl_error_t *err)
{
  static const char *const slots[N_WS] = { "0", "1", "2", "control" };
  const struct cl_api_remote *remote = cli_client_remote (c);
  cleanup_free char *text = NULL;
  cleanup_json json_t *done = NULL;
  struct session s = { .tty = tty, .stdin_open = true };
  struct cl_api_response resp;
  const char *op_url, *op_id;
  json_t *fds;
  unsigned w, h;
  int r = 0;

  if (remote == NULL)
    return no_server (err);
  terminal_size (&w, &h);
  json_object_set_new (body, "interactive", json_boolean (tty));
  json_object_set_new (body, "wait-for-websocket", json_true ());
  json_object_set_new (body, "width", json_integer (w));
  json_object_set_new (body, "height", json_integer (h));
  text = json_dumps (body, JSON_COMPACT);
  {
    struct cl_api_request req
        = { .method = "POST", .path = exec_path, .body = text, .body_len = strlen (text) };
    if (cli_request (c, &req, &resp, err) < 0)
      return -1;
  }
  op_url = json_string_value (json_object_get (resp.json, "operation"));
  op_id = json_string_value (json_object_get (json_object_get (resp.json, "metadata"), "id"));
  fds = json_object_get (json_object_get (json_object_get (resp.json, "metadata"), "metadata"),
                         "fds");
  if (resp.status != 202 || op_url == NULL || op_id == NULL || !json_is_object (fds))
    {
      const char *msg = json_string_value (json_object_get (resp.json, "error"));
      r = msg ? cl_error_make (err, 0, "%s", msg)
              : cl_error_make (err, 0, "POST %s: HTTP status %d", exec_path, resp.status);
      cl_api_response_clear (&resp);
      return r;
    }
  if (signals_catch (err) < 0)
    {
      cl_api_response_clear (&resp);
      return -1;
    }
  for (int i = 0; i < N_WS && r == 0; i++)
    {
      const char *secret = json_string_value (json_object_get (fds, slots[i]));
      cleanup_free char *pq = NULL;

      s.out_fd[i] = -1;
      if (secret == NULL)
        continue;
      pq = cl_strdup_printf ("/1.0/operations/%s/websocket?secret=%s", op_id, secret);
      r = cl_api_remote_ws_open (remote, pq, FRAME_MAX, &s.ws[i], err);
      s.open[i] = r == 0;
      s.output[i] = i == WS_STDOUT || i == WS_STDERR || (i == WS_STDIN && tty);
      if (s.output[i])
        s.out_fd[i] = i == WS_STDERR ? 2 : 1;
    }
  op_url = cl_xstrdup (op_url);
  cl_api_response_clear (&resp);
  if (r < 0)
    {
      /* the operation's own reason (it ended: the instance stopped...) */
      cl_error_t why = NULL;
      if (strstr ((*err)->msg, "has ended") && cli_wait_operation (c, op_url, NULL, &why) < 0)
        {
          cl_error_release (err);
          *err = why;
        }
      free ((char *)op_url);
      session_end (&s);
      return -1;
    }
  terminal_raw (&s);
  r = session_loop (&s, err);
  session_end (&s);
  if (r == 0 && cli_wait_operation (c, op_url, &done, err) < 0)
    r = -1;
  free ((char *)op_url);
  if (r < 0)
    return -1;
  *exit_code = (int)json_integer_value (json_object_get (done, "return"));
  return 0;
}

int
cli_exec_api (struct cli_client *c, const char *name, char **cmd, size_t ncmd, const char **env,
              size_t n_env, bool tty, int *exit_code, cl_error_t *err)
{
  cleanup_free char *path = cl_api_url ("/1.0/instances/", name);
  cleanup_free char *exec_path = cl_strdup_printf ("%s/exec", path);
  cleanup_json json_t *body = NULL;
  json_t *argv = json_array (), *envo = json_object ();

  for (size_t i = 0; i < ncmd; i++)
    json_array_append_new (argv, json_string (cmd[i]));
  for (size_t i = 0; i < n_env; i++)
    {
      const char *eq = strchr (env[i], '=');
      cleanup_free char *k = strndup (env[i], (size_t)(eq - env[i]));
      json_object_set_new (envo, k, json_string (eq + 1));
    }
  body = json_pack ("{s:o, s:o}", "command", argv, "environment", envo);
  return exec_session (c, exec_path, body, tty, exit_code, err);
}

int
cli_run_api (struct cli_client *c, json_t *launch, bool tty, int *exit_code, cl_error_t *err)
{
  json_object_set_new (launch, "attach", json_true ());
  return exec_session (c, "/1.0/instances", launch, tty, exit_code, err);
}

int
cli_console_api (struct cli_client *c, const char *name, int *exit_code, cl_error_t *err)
{
  const struct cl_api_remote *remote = cli_client_remote (c);
  cleanup_free char *path = cl_api_url ("/1.0/instances/", name), *pq = NULL;
  struct session s = { .console = true, .tty = true, .stdin_open = true };
  unsigned w, h;
  int r;

  *exit_code = 0;
  if (remote == NULL)
    return no_server (err);
  for (int i = 0; i < N_WS; i++)
    s.out_fd[i] = -1;
  s.out_fd[WS_STDIN] = 1;
  s.output[WS_STDIN] = true;
  terminal_size (&w, &h);
  pq = cl_strdup_printf ("%s/console?width=%u&height=%u", path, w, h);
  if (signals_catch (err) < 0 || cl_api_remote_ws_open (remote, pq, FRAME_MAX, &s.ws[0], err) < 0)
    {
      signals_restore ();
      return -1;
    }
  s.open[WS_STDIN] = true;
  terminal_raw (&s);
  if (s.stdin_is_tty)
    fprintf (stderr, "Connected to `%s` (detach: Ctrl-])\r\n", name);
  r = session_loop (&s, err);
  if (r == 0 && s.error)
    r = cl_error_make (err, 0, "%s", s.error);
  session_end (&s);
  return r;
}
