/* SPDX-License-Identifier: Apache-2.0 */
/* Terminals: the pty is opened inside the container's devpts, its master
   travels to the caller's --console-socket in one SCM_RIGHTS message (or,
   for a foreground `run`, the runtime copies between its stdio and it). */
#ifndef CLOISON_CONTAINER_CONSOLE_H
#define CLOISON_CONTAINER_CONSOLE_H

#include "common/error.h"

#include <jansson.h>

int cl_ctr_console_send_fd (int sock, int fd, const char *name);
int cl_ctr_console_recv_fd (int sock); /* -1 with errno */
/* Connects to the AF_UNIX path and sends `master`. */
int cl_ctr_console_send_to_socket (const char *path, int master, cl_error_t *err);
/* Opens a new pty from the devpts whose ptmx is `ptmx_path`, makes the
   slave the controlling terminal of the caller's stdio-to-be, sets
   process.consoleSize.  Returns master in *master and slave in *slave. */
int cl_ctr_console_open_pty (const char *ptmx_path, json_t *console_size, int *master, int *slave,
                             cl_error_t *err);
/* Foreground proxy: stdin -> master, master -> stdout, until the master
   hangs up (the container's process exited). */
void cl_ctr_console_proxy (int master);

#endif
