/* SPDX-License-Identifier: Apache-2.0 */
/* The `cloison` front end: one file per command group, each a thin layer
   over the library.  cloison.c parses the global options and dispatches. */
#ifndef CLOISON_CLI_H
#define CLOISON_CLI_H

#include "common/error.h"

#include <stdbool.h>

struct cli_client;

struct cloison_globals
{
  const char *root; /* state root (cl_state_root) */
  int debug;
  const char *remote;        /* --remote NAME (or a NAME: prefix), NULL: the default */
  bool local;                /* --local: in-process, even when a daemon serves the root */
  struct cli_client *client; /* opened at first use: cli_client_of */
};

/* The API client of g->root (the daemon serving it, else in-process),
   or of the remote g->remote names (or the default remote), opened at the
   first call; NULL with err set when it cannot be (remote_client.c). */
struct cli_client *cli_client_of (struct cloison_globals *g, cl_error_t *err);

/* A command: argv[0] is the command's own name ("launch", "image"...).
   Returns the exit code; errors are reported through err (printed once by
   main) when the return is negative. */
typedef int (*cloison_cmd_fn) (struct cloison_globals *g, int argc, char **argv, cl_error_t *err);

struct cloison_cmd
{
  const char *name;
  cloison_cmd_fn fn;
  const char *summary;
};

/* Each group file defines its table, ended by { NULL }. */
extern const struct cloison_cmd cloison_instance_cmds[]; /* cloison_instance.c */
extern const struct cloison_cmd cloison_image_cmds[];    /* cloison_image.c */
extern const struct cloison_cmd cloison_network_cmds[];  /* cloison_network.c */
extern const struct cloison_cmd cloison_volume_cmds[];   /* cloison_volume.c */
extern const struct cloison_cmd cloison_up_cmds[];       /* cloison_up.c */
extern const struct cloison_cmd cloison_remote_cmds[];   /* cloison_remote.c */
extern const struct cloison_cmd cloison_move_cmds[];     /* cloison_move.c */
extern const struct cloison_cmd cloison_ui_cmds[];       /* cloison_ui.c */
extern const struct cloison_cmd cloison_template_cmds[]; /* cloison_template.c */

/* cloison_server.c: `config trust ...` and `config set|get|unset core.*`
   (the server's settings) beside `config set INSTANCE KEY=VALUE`. */
bool cli_server_config_wants (int argc, char **argv);
int cli_server_config (struct cloison_globals *g, int argc, char **argv, cl_error_t *err);
/* --format: `table` or `json`, else -1 with the one-line error. */
int cli_check_format (const char *format, cl_error_t *err);
/* An integer option's value in [min, max], else -1 with "WHAT: expected
   an integer MIN-MAX, got `S`". */
int cli_parse_long (const char *s, const char *what, long min, long max, long *out,
                    cl_error_t *err);

#endif
