/* SPDX-License-Identifier: Apache-2.0 */
/* `cloison move NAME REMOTE:[NEWNAME]`: an instance of the local state
   root moves to a remote's cloisond (docs/move.md).  The local daemon
   does it (POST /1.0/instances/NAME/move, api/api_move_out.c), talking to
   the remote's cloisond over its TLS API with this user's client
   identity for the remote, handed over the local socket; without a
   daemon, the same operation runs in this process.  A signal cancels it:
   it is undone. */
#include "cli/client.h"
#include "cli/cloison.h"
#include "cli/remote_client.h"
#include "common/cancel.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SIGINT, SIGTERM, SIGHUP during a move: it is cancelled and undone (the
   instance runs here again) */
static volatile sig_atomic_t interrupted;

static void
on_signal (int sig)
{
  interrupted = sig;
}

/* The figure `key` of the source VMM's last migration status, or -1. */
static long long
figure (json_t *mig, const char *key)
{
  json_t *v = json_object_get (mig, key);
  return json_is_number (v) ? (long long)json_number_value (v) : -1;
}

/* The move's body: where to, as whom (the remote's pinned certificate,
   this user's client pair). */
static int
move_body (const char *remote, const char *newname, bool stateless, bool plain_stream,
           json_t **out, cl_error_t *err)
{
  struct cli_remote r;
  cleanup_free char *crt = NULL, *key = NULL;
  size_t len;
  int rc = -1;

  if (cli_remote_get (remote, &r, err) < 0)
    return -1;
  if (cl_read_file (r.client_cert, &crt, &len, err) == 0
      && cl_read_file (r.client_key, &key, &len, err) == 0)
    {
      *out = json_pack ("{s:s, s:b, s:b, s:{s:s, s:s, s:s, s:s, s:s, s:I}}", "name", newname,
                        "stateless", stateless, "plain_stream", plain_stream, "target", "remote",
                        remote, "url", r.url,
                        "certificate", r.server_cert, "client_certificate", crt, "client_key", key,
                        "timeout", (json_int_t)r.api.timeout_s);
      rc = 0;
    }
  if (key)
    explicit_bzero (key, strlen (key));
  cli_remote_clear (&r);
  return rc;
}

static int
cmd_move (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const char usage[] = "move [--stateless] [--plain-stream] NAME REMOTE:[NEWNAME]";
  static const struct option opts[] = { { "stateless", no_argument, NULL, 's' },
                                        { "plain-stream", no_argument, NULL, 'p' },
                                        { NULL, 0, NULL, 0 } };
  cleanup_free char *remote = NULL, *ipath = NULL, *path = NULL;
  cleanup_json json_t *body = NULL, *out = NULL;
  struct cli_client *src;
  const char *colon, *name, *newname;
  bool stateless = false, plain_stream = false;
  int c, r;

  opterr = 0;
  while ((c = getopt_long (argc, argv, "+", opts, NULL)) != -1)
    if (c == 's')
      stateless = true;
    else if (c == 'p')
      plain_stream = true;
    else
      return cl_error_make (err, 0, "usage: cloison %s", usage);
  argc -= optind;
  argv += optind;
  if (argc != 2 || (colon = strchr (argv[1], ':')) == NULL || colon == argv[1])
    return cl_error_make (err, 0, "usage: cloison %s", usage);
  remote = strndup (argv[1], (size_t)(colon - argv[1]));
  if (remote == NULL)
    abort ();
  if (strcmp (remote, "local") == 0)
    return cl_error_make (err, 0, "move: the destination is a remote (to rename here: copy)");
  if (g->remote && strcmp (g->remote, "local") != 0)
    return cl_error_make (err, 0,
                          "move: the instance is one of the local root (--remote `%s` is not"
                          " taken); the destination is REMOTE: in `%s`",
                          g->remote, usage);
  name = argv[0];
  newname = colon[1] ? colon + 1 : argv[0];
  if (cl_validate_name (newname, "new instance name", err) < 0)
    return -1;
  if (move_body (remote, newname, stateless, plain_stream, &body, err) < 0)
    return -1;
  if (cli_client_open (g->root, g->local, &src, err) < 0)
    return -1;
  struct sigaction sa = { .sa_handler = on_signal };
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
  /* without a daemon the operation runs here: the signal cancels it */
  cl_cancel_process (&interrupted);
  ipath = cl_api_url ("/1.0/instances/", name);
  path = cl_strdup_printf ("%s/move", ipath);
  uint64_t t0 = cl_now_ns ();
  r = cli_call_cancellable (src, "POST", path, body, &interrupted, &out, err);
  cl_cancel_process (NULL);
  if (r < 0 && interrupted)
    {
      cleanup_json json_t *info = NULL;
      cl_error_t ignored = NULL;
      bool here
          = cli_call (src, "GET", ipath, NULL, NULL, &info, &ignored) == 0
            && strcmp (json_string_value (json_object_get (info, "status")) ?: "", "running") == 0;
      cl_error_release (&ignored);
      cl_error_release (err);
      r = cl_error_make (err, 0, "move of `%s` interrupted (signal %d): undone%s", name,
                         (int)interrupted, here ? " (it runs on here)" : "");
    }
  else if (r == 0)
    {
      json_t *m = json_object_get (out, "migration");
      if (json_is_true (json_object_get (out, "live")))
        fprintf (stderr,
                 "cloison: %s moved live in %.1f s (migration %lld ms, %lld passes, %lld MB,"
                 " vCPUs throttled up to %lld %%, guest paused %lld ms; the stream %s)\n",
                 name, (cl_now_ns () - t0) / 1e9, figure (m, "total_ms"), figure (m, "pass"),
                 figure (m, "bytes_sent") / 1000000, figure (m, "throttle_max_pct"),
                 figure (m, "downtime_ms"),
                 json_is_true (json_object_get (out, "stream_tls")) ? "through TLS"
                                                                    : "in the clear");
      printf ("%s moved to %s:%s\n", name, remote, newname);
    }
  cli_client_close (src);
  return r;
}

const struct cloison_cmd cloison_move_cmds[] = {
  { "move", cmd_move,
    "move an instance to a remote (a running container by checkpoint, a running VM live;"
    " --stateless: stop, copy, start)" },
  { NULL, NULL, NULL },
};
