/* OCI hooks: each runs with the container state on its stdin and is killed
   at its timeout; a non-zero exit fails the step (except poststart and
   poststop, which only warn, as the spec says). */
#ifndef CLOISON_CONTAINER_HOOKS_H
#define CLOISON_CONTAINER_HOOKS_H

#include "common/error.h"

#include <jansson.h>

/* Runs hooks.<kind> from `hooks` (may be NULL) with `state` on stdin. */
int hooks_run (json_t *hooks, const char *kind, json_t *state, cl_error_t *err);

#endif
