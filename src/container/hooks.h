/* SPDX-License-Identifier: Apache-2.0 */
/* OCI hooks, as runc 1.1 runs them: each with the container state on its
   stdin, killed at its timeout, its stdout and stderr kept for the error
   message; `env` is the hook's own, or the runtime's environment when the
   hook has none.  The first failing hook stops the list: the step fails
   (poststart: the caller then destroys the container), except poststop,
   which only warns. */
#ifndef CLOISON_CONTAINER_HOOKS_H
#define CLOISON_CONTAINER_HOOKS_H

#include "common/error.h"

#include <jansson.h>

/* Runs hooks.<kind> from `hooks` (may be NULL) with `state` on stdin.
   A hook without `env` gets `default_env` (a JSON array: the container
   process's, for the hooks runc runs inside the container), or with NULL
   the runtime's environment.  `cwd`: where they run (NULL: here). */
int cl_ctr_hooks_run (json_t *hooks, const char *kind, json_t *state, json_t *default_env,
                      const char *cwd, cl_error_t *err);

#endif
