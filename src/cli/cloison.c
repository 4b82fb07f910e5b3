/* SPDX-License-Identifier: Apache-2.0 */
/* cloison: instances (containers and microVMs), images, snapshots, networks. */
#include "cli/client.h"
#include "cli/cloison.h"
#include "common/db.h"
#include "common/log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cloison_cmd *const groups[] = {
  cloison_instance_cmds,
  cloison_image_cmds,
  cloison_network_cmds,
  cloison_ui_cmds,
};

struct cl_cli_client *
cl_cli_client_of (struct cloison_globals *g, cl_error_t *err)
{
  if (g->client == NULL && cl_cli_client_open (g->root, g->local, &g->client, err) < 0)
    return NULL;
  return g->client;
}

static void
usage (FILE *out)
{
  fprintf (out, "usage: cloison [--root DIR] [--local] [--debug] COMMAND [ARGS...]\n\n"
                "  --local    in-process, even when a cloisond serves the root\n\ncommands:\n");
  for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
    for (const struct cloison_cmd *c = groups[g]; c->name; c++)
      fprintf (out, "  %-10s %s\n", c->name, c->summary);
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    { "root", required_argument, NULL, 'r' }, { "debug", no_argument, NULL, 'd' },
    { "local", no_argument, NULL, 'l' },      { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'v' },    { NULL, 0, NULL, 0 },
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
  for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
    for (const struct cloison_cmd *cmd = groups[i]; cmd->name; cmd++)
      if (strcmp (cmd->name, argv[optind]) == 0)
        {
          int first = optind, r;
          optind = 0; /* commands run their own getopt_long */
          r = cmd->fn (&g, argc - first, argv + first, &err);
          cl_cli_client_close (g.client);
          if (r < 0)
            return cl_error_report (&err, "cloison");
          return r;
        }
  fprintf (stderr, "cloison: unknown command `%s` (see cloison --help)\n", argv[optind]);
  return 2;
}
