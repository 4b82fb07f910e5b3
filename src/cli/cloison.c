/* SPDX-License-Identifier: Apache-2.0 */
/* cloison: instances (containers and microVMs), images, snapshots, networks. */
#include "cli/client.h"
#include "cli/cloison.h"
#include "cli/remote_client.h"
#include "common/db.h"
#include "common/log.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cloison_up_cmds first: its exec and logs take a project's machine
   names, then hand on to the instance commands */
static const struct cloison_cmd *const groups[] = {
  cloison_up_cmds,      cloison_instance_cmds, cloison_image_cmds,
  cloison_network_cmds, cloison_volume_cmds,   cloison_remote_cmds,
  cloison_ui_cmds,      cloison_move_cmds,     cloison_template_cmds,
};

/* The verbs that go through the API (client.h), and so may address a
   remote; the others act on the local state root directly. */
static const char *const api_verbs[] = {
  "launch",   "list",   "info", "start",   "stop", "restart",  "freeze",
  "unfreeze", "delete", "logs", "config",  "copy", "snapshot", "image",
  "network",  "volume", "exec", "console", "run",  NULL,
};

/* Runs argv[0] from `table`: true when found (*ret its result). */
static bool
run_from (const struct cloison_cmd *table, struct cloison_globals *g, int argc, char **argv,
          int *ret, cl_error_t *err)
{
  for (const struct cloison_cmd *cmd = table; cmd->name; cmd++)
    if (strcmp (cmd->name, argv[0]) == 0)
      {
        optind = 0; /* commands run their own getopt_long */
        *ret = cmd->fn (g, argc, argv, err);
        return true;
      }
  return false;
}

/* Refuses a verb that cannot go to the remote the command addresses. */
static int
check_remote_verb (struct cloison_globals *g, int *argc, char **argv, cl_error_t *err)
{
  const char *remote = NULL;
  bool api = false;

  for (const char *const *v = api_verbs; *v; v++)
    api = api || strcmp (*v, argv[0]) == 0;
  if (api && cli_remote_prefixes (g, argc, argv, err) < 0)
    return -1;
  /* move names its own remote (NAME REMOTE:NEW), from the local root */
  if (strcmp (argv[0], "remote") == 0 || strcmp (argv[0], "monitor") == 0
      || strcmp (argv[0], "move") == 0 || api)
    return 0;
  if (cli_selected_remote (g, &remote, err) < 0)
    return -1;
  if (remote)
    return cl_error_make (
        err, 0,
        "`%s` is not available on a remote yet (the command is for remote"
        " `%s`; remotes serve launch, list, info, start, stop, restart,"
        " delete, logs, exec, console, run, config, copy, snapshot, image, network,"
        " monitor)",
        argv[0], remote);
  return 0;
}

static void
usage (FILE *out)
{
  fprintf (out,
           "usage: cloison [--root DIR] [--remote NAME] [--local] [--debug] COMMAND [ARGS...]\n\n"
           "  --remote NAME  on that remote (see cloison remote)\n"
           "  --local        in-process, even when a cloisond serves the root\n\ncommands:\n");
  for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
    for (const struct cloison_cmd *c = groups[g]; c->name; c++)
      {
        bool shown = false;
        for (size_t h = 0; h < g && !shown; h++)
          for (const struct cloison_cmd *d = groups[h]; d->name; d++)
            shown |= strcmp (d->name, c->name) == 0;
        if (!shown)
          fprintf (out, "  %-10s %s\n", c->name, c->summary);
      }
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    { "root", required_argument, NULL, 'r' },
    { "debug", no_argument, NULL, 'd' },
    { "remote", required_argument, NULL, 'R' },
    { "local", no_argument, NULL, 'l' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'v' },
    { NULL, 0, NULL, 0 },
  };
  struct cloison_globals g = { 0 };
  const char *root_flag = NULL;
  cl_error_t err = NULL;
  int c;

  while ((c = getopt_long (argc, argv, "+h", opts, NULL)) != -1)
    switch (c)
      {
      case 'r':
        root_flag = optarg;
        break;
      case 'd':
        g.debug = 1;
        break;
      case 'R':
        g.remote = optarg;
        break;
      case 'l':
        g.local = true;
        break;
      case 'h':
        usage (stdout);
        return 0;
      case 'v':
        printf ("cloison version %s\n", CLOISON_VERSION);
        return 0;
      default:
        usage (stderr);
        return 2;
      }
  if (optind >= argc)
    {
      usage (stderr);
      return 2;
    }
  cl_log_init (NULL, 0, g.debug);
  g.root = cl_state_root (root_flag);
  {
    int n = argc - optind, r = 0;
    char **v = argv + optind;
    bool found = false;

    if (check_remote_verb (&g, &n, v, &err) < 0)
      return cl_error_report (&err, "cloison");
    if (strcmp (v[0], "config") == 0 && cli_server_config_wants (n, v))
      {
        r = cli_server_config (&g, n, v, &err);
        found = true;
      }
    for (size_t i = 0; !found && i < sizeof groups / sizeof groups[0]; i++)
      found = run_from (groups[i], &g, n, v, &r, &err);
    cli_client_close (g.client);
    if (found)
      return r < 0 ? cl_error_report (&err, "cloison") : r;
  }
  fprintf (stderr, "cloison: unknown command `%s` (see cloison --help)\n", argv[optind]);
  return 2;
}
