/* Seccomp from the spec's linux.seccomp through libseccomp: every action
   (including SCMP_ACT_ERRNO with errnoRet, KILL_PROCESS, LOG, TRACE,
   NOTIFY), architectures, flags, argument conditions. */
#ifndef CLOISON_CONTAINER_SECCOMP_H
#define CLOISON_CONTAINER_SECCOMP_H

#include "common/error.h"

#include <jansson.h>

/* Checks linux.seccomp (may be NULL) without loading it: unknown actions,
   architectures, syscall names the library cannot resolve on any listed
   architecture, bad operators.  Errors name the field
   ("linux.seccomp.syscalls[3].action: unknown action `SCMP_ACT_FOO`"). */
int cl_seccomp_validate (json_t *seccomp, cl_error_t *err);

/* Loads the filter into the calling process (the container's init, last
   step before exec; no_new_privs or CAP_SYS_ADMIN already in place).
   With a NOTIFY action, *notify_fd receives the listener fd, else -1. */
int cl_seccomp_load (json_t *seccomp, int *notify_fd, cl_error_t *err);

/* Sends the listener fd to linux.seccomp.listenerPath with the container
   state, as the spec describes (SCM_RIGHTS over AF_UNIX). */
int cl_seccomp_send_listener (json_t *seccomp, int notify_fd, json_t *state, cl_error_t *err);

#endif
