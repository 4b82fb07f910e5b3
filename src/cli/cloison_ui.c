/* SPDX-License-Identifier: Apache-2.0 */
/* cloison ui-link: a one-time login link for the web console, asked of
   the cloisond serving the state root (the sessions live in the daemon:
   in-process, the router answers that only cloisond serves the console). */
#include "cli/client.h"
#include "cli/cloison.h"
#include "common/cleanup.h"

#include <getopt.h>
#include <stdio.h>

static int
cmd_ui_link (struct cloison_globals *g, int argc, char **argv, cl_error_t *err)
{
  static const struct option opts[] = {
    { "socket", required_argument, NULL, 's' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *sock = NULL;
  struct cli_client *own = NULL, *client;
  const struct cli_transport *t;
  void *state;
  json_t *meta = NULL;
  int c, r;

  while ((c = getopt_long (argc, argv, "h", opts, NULL)) != -1)
    switch (c)
      {
      case 's':
        sock = optarg;
        break;
      case 'h':
        printf ("usage: cloison ui-link [--socket PATH]\n"
                "Prints a one-time link that logs a browser in to the web console of the\n"
                "cloisond serving the state root (or the one at PATH).  It works once,\n"
                "within a few minutes.\n");
        return 0;
      default:
        return 2;
      }
  if (optind != argc)
    return cl_error_make (err, 0, "ui-link: unexpected argument `%s`", argv[optind]);
  if (sock)
    {
      if (cli_unix_transport (sock, &t, &state, err) < 0)
        return -1;
      client = own = cli_client_new (t, state);
    }
  else if ((client = cli_client_of (g, err)) == NULL)
    return -1;
  r = cli_call (client, "POST", "/1.0/ui/links", NULL, NULL, &meta, err);
  if (own)
    cli_client_close (own);
  if (r < 0)
    return -1;
  printf ("%s\n", json_string_value (json_object_get (meta, "url")));
  fprintf (stderr, "(works once, within %lld s)\n",
           (long long)json_integer_value (json_object_get (meta, "expires_in")));
  json_decref (meta);
  return 0;
}

const struct cloison_cmd cloison_ui_cmds[] = {
  { "ui-link", cmd_ui_link, "a one-time login link for cloisond's web console" },
  { NULL, NULL, NULL },
};
