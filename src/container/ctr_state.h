/* SPDX-License-Identifier: Apache-2.0 */
/* The state directory: <root>/<id>/ holds state.json (what later commands
   need: pid, bundle, cgroup, the process defaults for exec, hooks) and,
   between create and start, exec.fifo. */
#ifndef CLOISON_CONTAINER_STATE_H
#define CLOISON_CONTAINER_STATE_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct container_state
{
  char *id;
  char *dir; /* <root>/<id> */
  json_t *doc; /* state.json */
  pid_t pid;
  uint64_t pid_start; /* /proc/PID/stat starttime: detects pid reuse */
};

const char *cl_ctr_state_root (const char *root);
/* mkdir <root>/<id>: fails with "container `ID` already exists". */
int cl_ctr_state_dir_create (const char *root, const char *id, char **dir, cl_error_t *err);
int cl_ctr_state_load (const char *root, const char *id, struct container_state *st,
                       cl_error_t *err);
int cl_ctr_state_save (struct container_state *st, cl_error_t *err);
/* cl_ctr_state_save in two steps, for create: the document is written to a
   temporary file while the init still builds its root, and becomes
   state.json with one rename once the init is ready (readers never see
   a partial file, nor a state before the init is ready). */
int cl_ctr_state_save_begin (struct container_state *st, cl_error_t *err);
int cl_ctr_state_save_commit (struct container_state *st, cl_error_t *err);
void cl_ctr_state_release (struct container_state *st);
/* Removes the state directory: the files the runtime puts there, then the
   directory (anything else found there: removed recursively). */
int cl_ctr_state_dir_remove (const char *dir, cl_error_t *err);

bool cl_ctr_state_pid_alive (struct container_state *st);
/* "created", "running", "paused" or "stopped". */
const char *cl_ctr_state_status (struct container_state *st);
/* The time now as the state's "created" takes it (RFC 3339, UTC, ns). */
char *cl_ctr_state_now_rfc3339 (void);
/* The public state object (spec + rootfs, created, owner). */
json_t *cl_ctr_state_public (struct container_state *st);

#endif
