/* SPDX-License-Identifier: Apache-2.0 */
/* Messages between the runtime and the container's init (or an exec'd
   process) over a SOCK_SEQPACKET pair: one message per step, errors carry
   the init's message so that the runtime reports it on one line. */
#ifndef CLOISON_CONTAINER_SYNC_H
#define CLOISON_CONTAINER_SYNC_H

#include "common/error.h"

enum sync_type
{
  SYNC_GO = 1,    /* runtime -> init: ids mapped, cgroup joined */
  SYNC_HOOKS,     /* init -> runtime: run prestart/createRuntime now */
  SYNC_HOOKS_DONE,
  SYNC_CONSOLE,   /* init -> runtime: the pty master follows (SCM_RIGHTS) */
  SYNC_PID,       /* init -> runtime: value is the real init's pid (extra fork) */
  SYNC_READY,     /* init -> runtime: waiting for start */
  SYNC_START,     /* runtime -> init (run): go exec */
  SYNC_SECCOMP,   /* init -> runtime: the seccomp listener fd follows */
  SYNC_ERROR,     /* either way: text holds the message, value errno */
};

struct sync_msg
{
  int type;
  int value;
  char text[1024];
};

int cl_ctr_sync_send (int fd, int type, int value, const char *text);
/* Receives one message; EOF or a SYNC_ERROR become errors.  `want` is the
   expected type (0: any). */
int cl_ctr_sync_recv (int fd, int want, struct sync_msg *msg, cl_error_t *err);
/* Sends the pending error to the peer (init side) and exits. */
__attribute__ ((noreturn)) void cl_ctr_sync_fail (int fd, cl_error_t *err);

#endif
