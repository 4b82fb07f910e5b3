/* SPDX-License-Identifier: Apache-2.0 */
/* Where the CLI's API requests go: a remote (--remote NAME, a NAME:
   prefix, or the default remote) over HTTPS with the user's client
   certificate; else the local daemon's Unix socket when a daemon serves
   the state root; else the router in-process.  And the user's client
   configuration ($CLOISON_CONFIG, else ~/.config/cloison): config.json
   (remotes with their pinned server certificates, the default remote),
   client.crt and client.key (made on first use). */
#ifndef CLOISON_CLI_TARGET_H
#define CLOISON_CLI_TARGET_H

#include "api/api.h"
#include "api/remote.h"
#include "cli/cloison.h"

#include <jansson.h>

struct cli_target
{
  const char *name;            /* the remote's name, "local" for the two others */
  struct cl_api_ctx *ctx;      /* in-process, else NULL */
  struct cl_api_remote remote; /* a remote or the local socket */
  char *url, *server_cert, *client_cert, *client_key, *socket;
};

/* The client configuration directory (caller frees). */
char *cli_config_dir (void);
/* config.json: {"default_remote": NAME, "remotes": {NAME: {"addr": URL,
   "certificate": PEM}}}; a missing file gives an empty one. */
int cli_config_load (json_t **out, cl_error_t *err);
int cli_config_save (json_t *cfg, cl_error_t *err);
/* The user's client pair, made on first use (paths; caller frees). */
int cli_client_keypair (char **crt, char **key, cl_error_t *err);

/* The remote a command addresses: g->remote, else the default remote;
   NULL for the local server.  Names a remote that is not configured: an
   error. */
int cli_selected_remote (struct cloison_globals *g, const char **name, cl_error_t *err);

/* Opens the target named `remote` (NULL or "local": the local server). */
int cli_target_open (struct cloison_globals *g, const char *remote, struct cli_target *t,
                     cl_error_t *err);
void cli_target_close (struct cli_target *t);
#define cleanup_target __attribute__ ((cleanup (cli_target_close)))
/* One request: a sync answer's metadata in *metadata (optional; NULL
   stays NULL for no metadata); an async one is waited for and its
   operation's metadata returned, its failure an error; an error envelope
   becomes an error carrying its message.  body: stolen (NULL: none). */
int cli_target_call (struct cli_target *t, const char *method, const char *path, const char *query,
                     json_t *body, json_t **metadata, cl_error_t *err);

#endif
