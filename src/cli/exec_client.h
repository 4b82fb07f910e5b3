/* SPDX-License-Identifier: Apache-2.0 */
/* `cloison exec`, `cloison console` and `cloison run` through the API (a
   daemon serving the root, or a remote): POST /1.0/instances/NAME/exec
   (or POST /1.0/instances with "attach": true) and its websockets, GET
   /1.0/instances/NAME/console, with the local terminal
   in raw mode for a pty, its size sent on SIGWINCH, and the command's
   exit code.  In-process (no daemon) the CLI runs them over the manager
   instead (cloison_instance.c). */
#ifndef CLOISON_CLI_EXEC_CLIENT_H
#define CLOISON_CLI_EXEC_CLIENT_H

#include "cli/client.h"

#include <stdbool.h>
#include <stddef.h>

/* Runs cmd in instance `name` with env (K=V) and a pty when tty;
 *exit_code: the command's (128 + N for a signal). */
int cli_exec_api (struct cli_client *c, const char *name, char **cmd, size_t ncmd, const char **env,
                  size_t n_env, bool tty, int *exit_code, cl_error_t *err);
/* `cloison run`: launch (POST /1.0/instances's body, name optional) with
   "attach": an ephemeral instance whose workload's stdio are ours (a pty
   when tty), removed at its end; *exit_code: the workload's. */
int cli_run_api (struct cli_client *c, json_t *launch, bool tty, int *exit_code, cl_error_t *err);
/* Attaches the terminal to the instance's console until it ends (or
   Ctrl-] when stdin is a terminal). */
int cli_console_api (struct cli_client *c, const char *name, int *exit_code, cl_error_t *err);

#endif
