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

const char *state_root (const char *root);
/* mkdir <root>/<id>: fails with "container `ID` already exists". */
int state_dir_create (const char *root, const char *id, char **dir, cl_error_t *err);
int state_load (const char *root, const char *id, struct container_state *st, cl_error_t *err);
int state_save (struct container_state *st, cl_error_t *err);
void state_release (struct container_state *st);

/* Start time of a process (0 if it does not exist). */
uint64_t state_pid_start (pid_t pid);
bool state_pid_alive (struct container_state *st);
/* "created", "running", "paused" or "stopped". */
const char *state_status (struct container_state *st);
/* The public state object (spec + rootfs, created, owner). */
json_t *state_public (struct container_state *st);

#endif
