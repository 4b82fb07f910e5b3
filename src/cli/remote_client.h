/* SPDX-License-Identifier: Apache-2.0 */
/* Remotes on the client side: the user's client configuration
   ($CLOISON_CONFIG, else $XDG_CONFIG_HOME/cloison, else
   ~/.config/cloison): config.json (the remotes with their pinned server
   certificates, the default remote), client.crt and client.key (made on
   first use); and the HTTPS transport of client.h, over
   cl_api_remote_request (src/api/remote.h). */
#ifndef CLOISON_CLI_REMOTE_CLIENT_H
#define CLOISON_CLI_REMOTE_CLIENT_H

#include "api/remote.h"
#include "cli/client.h"
#include "cli/cloison.h"

#include <jansson.h>

/* The client configuration directory (caller frees). */
char *cli_config_dir (void);
/* config.json: {"default_remote": NAME, "remotes": {NAME: {"addr": URL,
   "certificate": PEM}}}; a missing file gives an empty one. */
int cli_config_load (json_t **out, cl_error_t *err);
int cli_config_save (json_t *cfg, cl_error_t *err);
/* The user's client pair, made on first use (paths; caller frees). */
int cli_client_keypair (char **crt, char **key, cl_error_t *err);

/* The remote a command addresses: g->remote, else the default remote;
   *name NULL for the local server.  A name that is not configured is an
   error. */
int cli_selected_remote (struct cloison_globals *g, const char **name, cl_error_t *err);

/* A configured remote, ready for cl_api_remote_request. */
struct cli_remote
{
  struct cl_api_remote api;
  char *url, *server_cert, *client_cert, *client_key;
};
int cli_remote_get (const char *name, struct cli_remote *r, cl_error_t *err);
void cli_remote_clear (struct cli_remote *r);

/* A client.h client of the remote `name` (HTTPS). */
int cli_remote_client_open (const char *name, struct cli_client **out, cl_error_t *err);

/* "REMOTE:REST" arguments of a configured REMOTE: select it (g->remote)
   and leave REST in argv (an empty REST is dropped: `list REMOTE:`).
   Options and their values are left alone. */
int cli_remote_prefixes (struct cloison_globals *g, int *argc, char **argv, cl_error_t *err);

#endif
