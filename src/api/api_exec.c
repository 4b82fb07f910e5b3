/* SPDX-License-Identifier: Apache-2.0 */
/* POST /1.0/instances/NAME/exec (an operation whose websockets carry the
   command's stdio), GET /1.0/operations/ID/websocket (attaching one of
   them) and GET /1.0/instances/NAME/console (a websocket on the
   instance's console).

   The command does not run in the server's process: a helper program
   (cl_api_options.exec_helper, cloisond itself) is spawned with the
   command's stdio (a pty's slave, or three pipes) and runs the manager's
   own exec (cl_mgr_instance_exec_spec) or console in a process of its
   own, single-threaded, whose signals and terminal are its own.  This file
   copies bytes between the websockets and the helper's stdio, applies
   window-resize to the pty and passes signals on. */
#include "api/api_internal.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define EXEC_ATTACH_TIMEOUT_S 30
#define EXEC_FRAME_MAX (1u << 20)
#define EXEC_DRAIN_MS 1000
#define RUN_STOP_S 2
#define RUN_ABANDON_S 30

enum
{
  FD_STDIN,
  FD_STDOUT,
  FD_STDERR,
  FD_CONTROL,
  N_FDS
};
static const char *const fd_names[N_FDS] = { "0", "1", "2", "control" };

/* Shared by an exec operation's worker and the websockets attached to it. */
struct api_exec
{
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int refs;
  bool interactive;
  char secret[N_FDS][65]; /* "" for a slot the operation does not have */
  bool claimed[N_FDS];    /* a request took the slot */
  int fd[N_FDS];          /* its socket once upgraded, else -1 */
  bool ended;             /* the session is done with the sockets */
  char *run;              /* an attached run's instance, else NULL */
};

struct cl_api_channel
{
  struct api_channel_base base; /* first */
  struct api_exec *x;           /* an exec's websocket, or NULL: a console */
  int slot;
  char *helper;
  json_t *job; /* the console's helper job */
  struct cl_api_ctx *ctx;
  unsigned width, height;
};

static void channel_run (struct cl_api_channel *ch, int fd);
static void channel_free (struct cl_api_channel *ch);

/* ---- the shared state ---- */

static void *
exec_ref (void *data)
{
  struct api_exec *x = data;
  pthread_mutex_lock (&x->lock);
  x->refs++;
  pthread_mutex_unlock (&x->lock);
  return x;
}

static void
exec_unref (void *data)
{
  struct api_exec *x = data;
  int left;

  pthread_mutex_lock (&x->lock);
  left = --x->refs;
  pthread_mutex_unlock (&x->lock);
  if (left > 0)
    return;
  pthread_cond_destroy (&x->cond);
  pthread_mutex_destroy (&x->lock);
  free (x->run);
  free (x);
}

static void
exec_end (struct api_exec *x)
{
  pthread_mutex_lock (&x->lock);
  x->ended = true;
  pthread_cond_broadcast (&x->cond);
  pthread_mutex_unlock (&x->lock);
}

void
cl_api_random_hex (char *out, size_t bytes)
{
  unsigned char b[32];

  if (bytes > sizeof b)
    bytes = sizeof b;
  if (getrandom (b, bytes, 0) != (ssize_t)bytes)
    for (size_t i = 0; i < bytes; i++)
      b[i] = (unsigned char)(cl_now_ns () >> (i % 8)) ^ (unsigned char)(i * 131);
  for (size_t i = 0; i < bytes; i++)
    sprintf (out + 2 * i, "%02x", b[i]);
}

/* ---- the helper process and the session ---- */

struct session
{
  bool tty;
  int ws_in;  /* stdin (tty: and the output) */
  int ws_out; /* non-tty stdout, stderr; -1 when not attached */
  int ws_err;
  int ws_ctl; /* control messages; a console: ws_in, whose text frames are control */
  int in_fd;  /* our ends: the pty's master thrice, or the pipes */
  int out_fd;
  int err_fd;
  int status_fd;
  pid_t pid;
  struct cl_api_ctx *ctx; /* its shutdown ends the session */
  bool run;               /* an attached run: the client's hangup ends it */
  bool gone;              /* it did */
};

static void
session_close (struct session *s)
{
  int fds[] = { s->in_fd, s->out_fd, s->err_fd, s->status_fd };
  for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
    if (fds[i] >= 0 && (i == 0 || fds[i] != s->in_fd))
      close (fds[i]);
  s->in_fd = s->out_fd = s->err_fd = s->status_fd = -1;
}

/* Spawns `helper --exec-helper JOB` on a pty (tty) or three pipes, in a
   session of its own; fills s's fds and pid. */
static int
session_spawn (const char *helper, json_t *job, bool tty, unsigned width, unsigned height,
               struct session *s, cl_error_t *err)
{
  cleanup_free char *arg = json_dumps (job, JSON_COMPACT);
  char *argv[] = { (char *)helper, "--exec-helper", arg, NULL };
  int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 }, st[2] = { -1, -1 };
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t none, def;
  char slave[64];
  int r;

  s->in_fd = s->out_fd = s->err_fd = s->status_fd = -1;
  if (pipe2 (st, O_CLOEXEC) < 0)
    return cl_error_errno (err, "pipe");
  posix_spawn_file_actions_init (&fa);
  if (tty)
    {
      struct winsize ws = { .ws_row = (unsigned short)(height ? height : 24),
                            .ws_col = (unsigned short)(width ? width : 80) };
      int master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (master < 0 || grantpt (master) < 0 || unlockpt (master) < 0
          || ptsname_r (master, slave, sizeof slave) != 0)
        {
          cl_error_errno (err, "allocate a pty");
          if (master >= 0)
            close (master);
          goto fail;
        }
      ioctl (master, TIOCSWINSZ, &ws);
      s->in_fd = s->out_fd = master;
      /* opened after setsid: the helper's controlling terminal */
      posix_spawn_file_actions_addopen (&fa, 0, slave, O_RDWR, 0);
      posix_spawn_file_actions_adddup2 (&fa, 0, 1);
      posix_spawn_file_actions_adddup2 (&fa, 0, 2);
    }
  else
    {
      if (pipe2 (in, O_CLOEXEC) < 0 || pipe2 (out, O_CLOEXEC) < 0 || pipe2 (errp, O_CLOEXEC) < 0)
        {
          cl_error_errno (err, "pipe");
          goto fail;
        }
      s->in_fd = in[1];
      s->out_fd = out[0];
      s->err_fd = errp[0];
      posix_spawn_file_actions_adddup2 (&fa, in[0], 0);
      posix_spawn_file_actions_adddup2 (&fa, out[1], 1);
      posix_spawn_file_actions_adddup2 (&fa, errp[1], 2);
    }
  posix_spawn_file_actions_adddup2 (&fa, st[1], 3);
  posix_spawnattr_init (&attr);
  sigemptyset (&none);
  sigemptyset (&def);
  sigaddset (&def, SIGPIPE);
  sigaddset (&def, SIGTERM);
  sigaddset (&def, SIGINT);
  sigaddset (&def, SIGHUP);
  posix_spawnattr_setsigmask (&attr, &none);
  posix_spawnattr_setsigdefault (&attr, &def);
  posix_spawnattr_setflags (&attr,
                            POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  r = posix_spawn (&s->pid, helper, &fa, &attr, argv, environ);
  posix_spawnattr_destroy (&attr);
  if (r != 0)
    {
      errno = r;
      cl_error_errno (err, "run the exec helper `%s`", helper);
      goto fail;
    }
  posix_spawn_file_actions_destroy (&fa);
  s->status_fd = st[0];
  close (st[1]);
  if (!tty)
    {
      close (in[0]);
      close (out[1]);
      close (errp[1]);
    }
  return 0;
fail:
  posix_spawn_file_actions_destroy (&fa);
  session_close (s);
  int fds[] = { st[0], st[1], in[0], out[1], errp[1] };
  for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
    if (fds[i] >= 0)
      close (fds[i]);
  return -1;
}

/* A signal for the command: those the helper passes on itself (a
   container's exec forwards them) go to the helper, the others to its
   children (the process in the container), else to the helper. */
static void
session_signal (struct session *s, int sig)
{
  static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
  char path[64], buf[256];
  cleanup_close int fd = -1;
  ssize_t n;
  bool sent = false;

  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    if (forwarded[i] == sig)
      {
        kill (s->pid, sig);
        return;
      }
  snprintf (path, sizeof path, "/proc/%d/task/%d/children", (int)s->pid, (int)s->pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  n = fd >= 0 ? read (fd, buf, sizeof buf - 1) : -1;
  if (n > 0)
    {
      char *p = buf, *end;
      buf[n] = '\0';
      for (long pid; (pid = strtol (p, &end, 10)) > 0; p = end)
        sent |= kill ((pid_t)pid, sig) == 0;
    }
  if (!sent)
    kill (s->pid, sig);
}

static int
json_uint (json_t *v)
{
  if (json_is_integer (v))
    return (int)json_integer_value (v);
  if (json_is_string (v))
    return atoi (json_string_value (v));
  return -1;
}

/* {"command":"window-resize","args":{"width":W,"height":H}} (numbers or
   strings, as Incus's clients send them) or {"command":"signal","signal":N}. */
static void
session_control (struct session *s, const char *msg, size_t len)
{
  cleanup_json json_t *j = json_loadb (msg, len, 0, NULL);
  const char *cmd = json_string_value (json_object_get (j, "command"));

  if (cmd && strcmp (cmd, "window-resize") == 0 && s->tty)
    {
      json_t *args = json_object_get (j, "args");
      int w = json_uint (json_object_get (args, "width"));
      int h = json_uint (json_object_get (args, "height"));
      if (w > 0 && h > 0 && w < 65536 && h < 65536)
        {
          struct winsize ws = { .ws_row = (unsigned short)h, .ws_col = (unsigned short)w };
          ioctl (s->in_fd, TIOCSWINSZ, &ws); /* the kernel sends SIGWINCH */
        }
    }
  else if (cmd && strcmp (cmd, "signal") == 0)
    {
      int sig = json_uint (json_object_get (j, "signal"));
      if (sig > 0 && sig < NSIG)
        session_signal (s, sig);
    }
  else
    cl_debug ("exec: control message ignored: %.*s", (int)(len < 200 ? len : 200), msg);
}

/* One frame from the stdin websocket (or a console's). false: it is
   closed. */
static bool
session_input (struct session *s, bool *stdin_open)
{
  cleanup_free char *p = NULL;
  size_t len;
  int op = cl_api_ws_recv (s->ws_in, &p, &len, EXEC_FRAME_MAX);

  if (op == 9)
    cl_api_ws_send (s->ws_in, 10, p, len);
  else if (op == 1 && s->ws_ctl == s->ws_in)
    session_control (s, p, len);
  else if (op == 0 || op == 1 || op == 2)
    {
      /* an empty message ends stdin (Incus's convention) */
      if (len == 0 && !s->tty && *stdin_open)
        {
          close (s->in_fd);
          s->in_fd = -1;
          *stdin_open = false;
        }
      else if (*stdin_open && cl_write_all (s->in_fd, p, len) < 0)
        cl_debug ("exec: write to the command's stdin: %s", strerror (errno));
    }
  else if (op < 0 || op == 8)
    {
      if (s->tty)
        session_signal (s, SIGHUP); /* the terminal hangs up */
      else if (*stdin_open)
        {
          close (s->in_fd);
          s->in_fd = -1;
          *stdin_open = false;
        }
      return false;
    }
  return true;
}

/* Copies one read of `fd` to websocket `ws` (-1: dropped); false at its
   end. */
static bool
session_output (int fd, int ws)
{
  char buf[16384];
  ssize_t n = read (fd, buf, sizeof buf);

  if (n < 0 && errno == EINTR)
    return true;
  if (n <= 0)
    return false; /* EOF, or EIO: the pty's slave is closed */
  if (ws >= 0)
    cl_api_ws_send (ws, 2, buf, (size_t)n);
  return true;
}

/* Runs the session until the helper ended and its output is read (or
   EXEC_DRAIN_MS passed after it ended: something it started may keep
   the output open).  *exit_code: the command's; a helper's error (the
   instance is not running...) is returned. */
static int
session_run (struct session *s, int *exit_code, cl_error_t *err)
{
  bool in_open = s->ws_in >= 0, stdin_open = true,
       ctl_open = s->ws_ctl >= 0 && s->ws_ctl != s->ws_in;
  bool out_open = true, err_open = s->err_fd >= 0, status_open = true;
  char result[1024];
  size_t rlen = 0;
  uint64_t drain_until = 0;
  int wstatus = 0;

  while (out_open || err_open || status_open)
    {
      struct pollfd p[5];
      int idx[5], n = 0, timeout = -1;
      if (in_open)
        p[n] = (struct pollfd){ .fd = s->ws_in, .events = POLLIN }, idx[n++] = 0;
      if (ctl_open)
        p[n] = (struct pollfd){ .fd = s->ws_ctl, .events = POLLIN }, idx[n++] = 1;
      if (out_open)
        p[n] = (struct pollfd){ .fd = s->out_fd, .events = POLLIN }, idx[n++] = 2;
      if (err_open)
        p[n] = (struct pollfd){ .fd = s->err_fd, .events = POLLIN }, idx[n++] = 3;
      if (status_open)
        p[n] = (struct pollfd){ .fd = s->status_fd, .events = POLLIN }, idx[n++] = 4;
      if (!status_open)
        {
          uint64_t now = cl_now_ns ();
          if (now >= drain_until)
            break;
          timeout = (int)((drain_until - now) / 1000000) + 1;
        }
      if (s->gone)
        return cl_error_make (err, 0, "the client went away before the command ended");
      if (cl_api_ctx_closing (s->ctx))
        {
          /* the server stops: the command's terminal hangs up, and
             nothing waits for it */
          kill (s->pid, SIGHUP);
          return cl_error_make (err, 0, "the server stopped before the command ended");
        }
      if (timeout < 0 || timeout > 500)
        timeout = 500;
      if (poll (p, (nfds_t)n, timeout) < 0)
        {
          if (errno == EINTR)
            continue;
          return cl_error_errno (err, "poll");
        }
      for (int i = 0; i < n; i++)
        {
          if (!p[i].revents)
            continue;
          switch (idx[i])
            {
            case 0:
              in_open = session_input (s, &stdin_open);
              s->gone |= s->run && !in_open;
              break;
            case 1:
              {
                cleanup_free char *msg = NULL;
                size_t len;
                int op = cl_api_ws_recv (s->ws_ctl, &msg, &len, EXEC_FRAME_MAX);
                if (op == 1 || op == 2)
                  session_control (s, msg, len);
                else if (op == 9)
                  cl_api_ws_send (s->ws_ctl, 10, msg, len);
                else if (op < 0 || op == 8)
                  ctl_open = false;
                s->gone |= s->run && !ctl_open;
                break;
              }
            case 2:
              out_open = session_output (s->out_fd, s->tty ? s->ws_in : s->ws_out);
              break;
            case 3:
              err_open = session_output (s->err_fd, s->ws_err);
              break;
            case 4:
              {
                ssize_t r = read (s->status_fd, result + rlen, sizeof result - 1 - rlen);
                if (r > 0)
                  rlen += (size_t)r;
                else if (r == 0 || errno != EINTR)
                  {
                    status_open = false;
                    drain_until = cl_now_ns () + EXEC_DRAIN_MS * 1000000ull;
                  }
                break;
              }
            }
        }
    }
  while (waitpid (s->pid, &wstatus, 0) < 0 && errno == EINTR)
    ;
  result[rlen] = '\0';
  if (rlen > 1 && result[0] == 'E')
    return cl_error_make (err, 0, "%s", result + 1);
  if (rlen > 1 && result[0] == 'X')
    *exit_code = atoi (result + 1);
  else if (WIFSIGNALED (wstatus))
    *exit_code = 128 + WTERMSIG (wstatus);
  else
    *exit_code = WEXITSTATUS (wstatus);
  return 0;
}

/* An attached run whose client went away: its workload is stopped
   (SIGTERM, SIGKILL after RUN_STOP_S), which ends the helper's run, which
   removes the instance.  Until the helper ends (the instance may not be
   running yet), tried again; a helper still there after RUN_ABANDON_S is
   killed (its intent left: the next recovery removes the rest). */
static void
run_abandon (struct session *s, const char *name)
{
  uint64_t deadline = cl_now_ns () + RUN_ABANDON_S * 1000000000ull;
  int st;

  cl_info ("run: the client of `%s` went away: its instance is stopped and removed", name);
  while (waitpid (s->pid, &st, WNOHANG) == 0)
    {
      struct cl_manager *m;
      cl_error_t err = NULL;

      if (cl_now_ns () >= deadline)
        {
          kill (s->pid, SIGKILL);
          while (waitpid (s->pid, &st, 0) < 0 && errno == EINTR)
            ;
          break;
        }
      if (cl_api_manager_get (s->ctx, &m, &err) == 0)
        {
          if (cl_mgr_instance_stop (m, name, RUN_STOP_S, false, &err) < 0)
            cl_debug ("run: stop `%s`: %s", name, err->msg);
          cl_api_manager_put (s->ctx, m);
        }
      cl_error_release (&err);
      usleep (200000);
    }
}

/* The websockets' writes must not hang the session on a client that
   stopped reading. */
static void
ws_prepare (int fd)
{
  struct timeval tv = { .tv_sec = 30 };
  if (fd < 0)
    return;
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static void
ws_close (int fd)
{
  if (fd >= 0)
    cl_api_ws_send (fd, 8, "\x03\xe8", 2); /* 1000: normal closure */
}

/* ---- POST /1.0/instances/NAME/exec ---- */

static int
exec_run (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  struct api_exec *x = cl_api_op_data (op);
  struct cl_api_ctx *ctx = cl_api_op_ctx (op);
  bool wait_ws = json_is_true (json_object_get (args, "wait"));
  struct session s = { .tty = x->interactive,
                       .ws_in = -1,
                       .ws_out = -1,
                       .ws_err = -1,
                       .ws_ctl = -1,
                       .ctx = ctx,
                       .run = x->run != NULL };
  json_t *md;
  int code = 0, r;
  (void)m;

  if (wait_ws)
    {
      uint64_t deadline = cl_now_ns () + EXEC_ATTACH_TIMEOUT_S * 1000000000ull;
      bool all = false;
      /* ctx->lock is never taken under x->lock: the websocket route
         takes x->lock under ctx->lock (cl_api_op_data_ref) */
      while (!all && cl_now_ns () < deadline && !cl_api_ctx_closing (ctx))
        {
          struct timespec t;
          pthread_mutex_lock (&x->lock);
          all = true;
          for (int i = 0; i < N_FDS; i++)
            if (x->secret[i][0] && x->fd[i] < 0)
              all = false;
          if (!all)
            {
              clock_gettime (CLOCK_REALTIME, &t);
              t.tv_nsec += 200000000;
              if (t.tv_nsec >= 1000000000)
                t.tv_sec++, t.tv_nsec -= 1000000000;
              pthread_cond_timedwait (&x->cond, &x->lock, &t);
            }
          pthread_mutex_unlock (&x->lock);
        }
      if (!all)
        {
          exec_end (x);
          return cl_error_make (err, 0, "the websockets were not all connected within %d s",
                                EXEC_ATTACH_TIMEOUT_S);
        }
    }
  pthread_mutex_lock (&x->lock);
  s.ws_in = x->fd[FD_STDIN];
  s.ws_out = x->fd[FD_STDOUT];
  s.ws_err = x->fd[FD_STDERR];
  s.ws_ctl = x->fd[FD_CONTROL];
  pthread_mutex_unlock (&x->lock);
  int ws[N_FDS] = { s.ws_in, s.ws_out, s.ws_err, s.ws_ctl };
  for (int i = 0; i < N_FDS; i++)
    ws_prepare (ws[i]);
  r = session_spawn (cl_api_ctx_exec_helper (ctx), json_object_get (args, "job"), s.tty,
                     (unsigned)json_integer_value (json_object_get (args, "width")),
                     (unsigned)json_integer_value (json_object_get (args, "height")), &s, err);
  if (r == 0)
    {
      if (s.ws_in < 0 && !s.tty)
        {
          close (s.in_fd); /* no stdin: the command reads EOF */
          s.in_fd = -1;
        }
      r = session_run (&s, &code, err);
      if (s.gone)
        run_abandon (&s, x->run);
      session_close (&s);
    }
  for (int i = 0; i < N_FDS; i++)
    ws_close (ws[i]);
  exec_end (x);
  if (r < 0)
    return -1;
  md = json_object ();
  json_object_set_new (md, "fds", json_object ());
  for (int i = 0; i < N_FDS; i++)
    if (x->secret[i][0])
      json_object_set_new (json_object_get (md, "fds"), fd_names[i], json_string (x->secret[i]));
  json_object_set_new (md, "return", json_integer (code));
  cl_api_op_set_metadata (op, md, NULL);
  return 0;
}

static const struct api_op_kind exec_kind = {
  .description = "Executing command",
  .fn = exec_run,
  .lifecycle_action = "instance-exec",
  .op_class = "websocket",
  .data_ref = exec_ref,
  .data_unref = exec_unref,
};

static const struct api_field exec_fields[] = {
  { "command", API_STRING_ARRAY, true, NULL },
  { "environment", API_STRING_MAP, false, NULL },
  { "interactive", API_BOOL, false, NULL },
  { "wait-for-websocket", API_BOOL, false, NULL },
  { "record-output", API_BOOL, false, NULL },
  { "width", API_INT, false, NULL },
  { "height", API_INT, false, NULL },
  { "user", API_INT, false, NULL },
  { "group", API_INT, false, NULL },
  { "cwd", API_STRING, false, NULL },
  { NULL, 0, false, NULL },
};

/* Is the instance there and running?  Replies and returns -1 if not. */
static int
instance_running (struct api_call *c, const char *name)
{
  struct cl_manager *m;
  cl_error_t err = NULL;
  cleanup_json json_t *info = NULL;
  const char *status;

  if (cl_api_manager_get (c->ctx, &m, &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return -1;
    }
  if (cl_mgr_instance_info (m, name, &info, &err) < 0)
    {
      cl_api_manager_put (c->ctx, m);
      cl_api_reply_cl_error (c, &err);
      return -1;
    }
  cl_api_manager_put (c->ctx, m);
  status = json_string_value (json_object_get (info, "status"));
  if (status == NULL || strcmp (status, "running") != 0)
    {
      /* the manager's own words (cloison exec prints them as they are) */
      cl_mgr_not_running (&err, name, status);
      cl_api_reply_cl_error (c, &err);
      return -1;
    }
  return 0;
}

static int
check_size (struct api_call *c, const char *key, json_int_t *out)
{
  json_t *v = json_object_get (c->body, key);
  *out = v ? json_integer_value (v) : 0;
  if (*out < 0 || *out > 65535)
    {
      cl_api_reply_bad_field (c, key, "%s: expected 0-65535, got %lld", key, (long long)*out);
      return -1;
    }
  return 0;
}

/* The operation of an exec (run: the instance of an attached run) and
   its websockets' secrets; job: the helper's (stolen). */
static void
exec_start (struct api_call *c, json_t *job, json_int_t width, json_int_t height, const char *name,
            const char *run)
{
  bool interactive = json_is_true (json_object_get (c->body, "interactive"));
  struct api_exec *x = cl_xmalloc0 (sizeof *x);
  json_t *md, *fds = json_object (), *args, *v;

  pthread_mutex_init (&x->lock, NULL);
  pthread_cond_init (&x->cond, NULL);
  x->refs = 1;
  x->interactive = interactive;
  x->run = run ? cl_xstrdup (run) : NULL;
  for (size_t i = 0; i < N_FDS; i++)
    {
      x->fd[i] = -1;
      if (interactive && (i == FD_STDOUT || i == FD_STDERR))
        continue;
      cl_api_random_hex (x->secret[i], 32);
      json_object_set_new (fds, fd_names[i], json_string (x->secret[i]));
    }
  md = json_pack ("{s:o}", "fds", fds);
  v = json_object_get (c->body, "wait-for-websocket");
  args = json_pack ("{s:o, s:b, s:I, s:I}", "job", job, "wait", v == NULL || json_is_true (v),
                    "width", width, "height", height);
  {
    cleanup_free char *url = cl_api_url ("/1.0/instances/", name);
    cleanup_free char *okey
        = cl_strdup_printf ("%s:%s:%s", run ? "run" : "exec", name, x->secret[FD_CONTROL]);
    cl_api_op_start_data (c, &exec_kind, okey, json_pack ("{s:[s]}", "instances", url), url, args,
                          md, x);
  }
}

void
cl_api_instance_exec (struct api_call *c)
{
  const char *name = c->params[0];
  json_t *cmd, *env, *job, *v;
  json_int_t width, height, uid = -1, gid = -1;
  const char *key;

  if (cl_api_check_body (c, exec_fields, true) < 0 || check_size (c, "width", &width) < 0
      || check_size (c, "height", &height) < 0)
    return;
  cmd = json_object_get (c->body, "command");
  if (json_array_size (cmd) == 0)
    {
      cl_api_reply_bad_field (c, "command", "command: an empty list");
      return;
    }
  if ((v = json_object_get (c->body, "user")))
    uid = json_integer_value (v);
  if ((v = json_object_get (c->body, "group")))
    gid = json_integer_value (v);
  if (uid < -1 || uid > 0xfffffffe || gid < -1 || gid > 0xfffffffe)
    {
      cl_api_reply_bad_field (c, uid < -1 || uid > 0xfffffffe ? "user" : "group",
                              "user/group: expected a uid/gid, 0-4294967294");
      return;
    }
  if (cl_api_ctx_exec_helper (c->ctx) == NULL)
    {
      cl_api_reply_error (c, 501, "exec needs the server (cloisond): no helper program here");
      return;
    }
  if (instance_running (c, name) < 0)
    return;

  job = json_pack ("{s:s, s:s, s:O, s:b}", "root", c->ctx->root, "name", name, "command", cmd,
                   "tty", json_is_true (json_object_get (c->body, "interactive")));
  env = json_array ();
  json_object_foreach (json_object_get (c->body, "environment"), key, v)
      json_array_append_new (env, json_sprintf ("%s=%s", key, json_string_value (v)));
  json_object_set_new (job, "env", env);
  if ((v = json_object_get (c->body, "cwd")))
    json_object_set (job, "cwd", v);
  if (uid >= 0 || gid >= 0)
    json_object_set_new (job, "user",
                         json_sprintf ("%lld:%lld", (long long)(uid >= 0 ? uid : 0),
                                       (long long)(gid >= 0 ? gid : 0)));

  exec_start (c, job, width, height, name, NULL);
}

/* ---- POST /1.0/instances {"attach": true, ...} ---- */

void
cl_api_run_name (json_t *body)
{
  char hex[9];
  cl_api_random_hex (hex, 4);
  json_object_set_new (body, "name", json_sprintf ("run-%s", hex));
}

void
cl_api_instance_run (struct api_call *c)
{
  const char *name = json_string_value (json_object_get (c->body, "name"));
  json_int_t width, height;
  json_t *job, *run;

  if (check_size (c, "width", &width) < 0 || check_size (c, "height", &height) < 0)
    return;
  if (cl_api_ctx_exec_helper (c->ctx) == NULL)
    {
      cl_api_reply_error (c, 501, "run needs the server (cloisond): no helper program here");
      return;
    }
  /* the launch options only: cl_api_launch_opts reads them in the helper */
  run = json_deep_copy (c->body);
  json_object_del (run, "attach");
  json_object_del (run, "wait-for-websocket");
  json_object_del (run, "width");
  json_object_del (run, "height");
  json_object_del (run, "interactive");
  job = json_pack ("{s:s, s:s, s:o, s:b}", "root", c->ctx->root, "name", name, "run", run, "tty",
                   json_is_true (json_object_get (c->body, "interactive")));
  exec_start (c, job, width, height, name, name);
}

/* ---- GET /1.0/operations/ID/websocket?secret=S ---- */

void
cl_api_operation_websocket (struct api_call *c)
{
  const char *secret = json_string_value (json_object_get (c->query, "secret"));
  struct api_exec *x = cl_api_op_data_ref (c->ctx, c->params[0], &exec_kind);
  struct cl_api_channel *ch;
  int slot = -1;
  bool ended, claimed = false;

  if (x == NULL)
    {
      cl_api_reply_error (c, 404, "operation `%s` not found, or has no websockets", c->params[0]);
      return;
    }
  pthread_mutex_lock (&x->lock);
  ended = x->ended;
  for (int i = 0; secret && i < N_FDS; i++)
    if (x->secret[i][0] && strcmp (x->secret[i], secret) == 0)
      slot = i;
  if (slot >= 0 && !ended && c->websocket)
    {
      claimed = x->claimed[slot];
      x->claimed[slot] = true;
    }
  pthread_mutex_unlock (&x->lock);
  if (ended)
    cl_api_reply_error (c, 409, "operation `%s` has ended", c->params[0]);
  else if (slot < 0)
    cl_api_reply_error (c, 403, "secret: does not match any of the operation's websockets");
  else if (!c->websocket)
    cl_api_reply_error (c, 400, "a websocket upgrade is needed (Upgrade: websocket)");
  else if (claimed)
    cl_api_reply_error (c, 409, "websocket %s of operation `%s` is already connected",
                        fd_names[slot], c->params[0]);
  else
    {
      ch = cl_xmalloc0 (sizeof *ch);
      ch->base.run = channel_run;
      ch->base.free = channel_free;
      ch->x = x;
      ch->slot = slot;
      cl_api_response_clear (c->resp);
      c->resp->status = 101;
      c->resp->channel = ch;
      return;
    }
  exec_unref (x);
}

/* ---- GET /1.0/instances/NAME/console ---- */

void
cl_api_instance_console (struct api_call *c)
{
  const char *type = json_string_value (json_object_get (c->query, "type"));
  struct cl_api_channel *ch;
  long width, height;

  if (type && strcmp (type, "console") != 0)
    {
      cl_api_reply_error (c, 400, "type `%s`: only `console` (a text console) exists", type);
      return;
    }
  if (cl_api_query_int (c, "width", 0, 65535, 80, &width) < 0
      || cl_api_query_int (c, "height", 0, 65535, 24, &height) < 0)
    return;
  if (cl_api_ctx_exec_helper (c->ctx) == NULL)
    {
      cl_api_reply_error (c, 501, "the console needs the server (cloisond): no helper program");
      return;
    }
  if (instance_running (c, c->params[0]) < 0)
    return;
  if (!c->websocket)
    {
      cl_api_reply_error (c, 400, "a websocket upgrade is needed (Upgrade: websocket)");
      return;
    }
  ch = cl_xmalloc0 (sizeof *ch);
  ch->base.run = channel_run;
  ch->base.free = channel_free;
  ch->slot = -1;
  ch->helper = cl_xstrdup (cl_api_ctx_exec_helper (c->ctx));
  ch->ctx = c->ctx;
  ch->job = json_pack ("{s:s, s:s, s:b, s:b}", "root", c->ctx->root, "name", c->params[0], "tty",
                       true, "console", true);
  ch->width = (unsigned)width;
  ch->height = (unsigned)height;
  cl_api_response_clear (c->resp);
  c->resp->status = 101;
  c->resp->channel = ch;
}

/* ---- the server's side ---- */

static void
channel_free (struct cl_api_channel *ch)
{
  if (ch->x)
    {
      pthread_mutex_lock (&ch->x->lock);
      if (ch->slot >= 0 && ch->x->fd[ch->slot] < 0)
        ch->x->claimed[ch->slot] = false; /* never upgraded */
      pthread_mutex_unlock (&ch->x->lock);
      exec_unref (ch->x);
    }
  free (ch->helper);
  json_decref (ch->job);
  free (ch);
}

static void
channel_run (struct cl_api_channel *ch, int fd)
{
  if (ch->x)
    {
      /* the operation's worker uses the socket; this thread waits */
      struct api_exec *x = ch->x;
      pthread_mutex_lock (&x->lock);
      x->fd[ch->slot] = fd;
      pthread_cond_broadcast (&x->cond);
      while (!x->ended)
        pthread_cond_wait (&x->cond, &x->lock);
      pthread_mutex_unlock (&x->lock);
    }
  else
    {
      struct session s
          = { .tty = true, .ws_in = fd, .ws_out = -1, .ws_err = -1, .ws_ctl = fd, .ctx = ch->ctx };
      cl_error_t err = NULL;
      int code = 0;

      ws_prepare (fd);
      if (session_spawn (ch->helper, ch->job, true, ch->width, ch->height, &s, &err) == 0)
        {
          if (session_run (&s, &code, &err) < 0)
            {
              cl_api_ws_send (fd, 1, err->msg, strlen (err->msg));
              cl_error_release (&err);
            }
          session_close (&s);
        }
      else
        {
          cl_api_ws_send (fd, 1, err->msg, strlen (err->msg));
          cl_error_release (&err);
        }
      ws_close (fd);
    }
  channel_free (ch);
}
