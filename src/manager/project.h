/* SPDX-License-Identifier: Apache-2.0 */
/* Cloisonfile projects (`cloison up`): a YAML file at a project's root
   says which machines (containers or microVMs) it needs, on which
   networks, with which shared folders, volumes, ports, provisioning steps
   and health checks.  Parsing and validation (project_file.c) refuse a
   wrong file before anything is made, with FILE:LINE:COL and the key's
   path; the planner (project_plan.c) compares the file with what the last
   `up` applied (kept in the state database) and with what runs, and does
   only the difference.  See docs/cloisonfile.md. */
#ifndef CLOISON_MANAGER_PROJECT_H
#define CLOISON_MANAGER_PROJECT_H

#include "common/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct cl_manager;
struct cl_project;

#define CL_PROJECT_FILE "Cloisonfile"

/* `file` NULL: Cloisonfile in the current directory or the nearest
   parent.  Refuses a wrong file (every reference checked) with
   "FILE:LINE:COL: KEY.PATH: why". */
int cl_mgr_project_load (const char *file, struct cl_project **out, cl_error_t *err);
void cl_mgr_project_free (struct cl_project *p);
void cl_mgr_project_freep (struct cl_project **p);
#define cleanup_project __attribute__ ((cleanup (cl_mgr_project_freep)))

/* The project's id ("NAME-HASH": two checkouts never collide) and the
   instance of one machine (NULL: not a machine of the file). */
const char *cl_mgr_project_id (struct cl_project *p);
char *cl_mgr_project_instance (struct cl_project *p, const char *machine);

struct cl_project_up_opts
{
  const char **machines; /* NULL/0: all (each with what it depends on) */
  size_t n_machines;
  bool recreate;  /* recreate the machines whose change cannot be applied live */
  bool provision; /* run every provisioning step, `once` ones too */
};

/* Makes the project's networks, volumes and machines what the file says;
   machines in dependency order, independent ones in parallel.  Prints
   one line per change.  Returns 0 when everything is up, 1 when some
   machine failed or waits for --recreate (said why), -1 on error. */
int cl_mgr_project_up (struct cl_manager *m, struct cl_project *p,
                       const struct cl_project_up_opts *o, cl_error_t *err);
/* Stops the machines (destroy: deletes them and the project's networks
   and state; volumes stay unless `volumes`). */
int cl_mgr_project_down (struct cl_manager *m, struct cl_project *p, const char **machines,
                         size_t n, bool destroy, bool volumes, cl_error_t *err);
/* [{machine, instance, kind, status, image, addresses, ports, changed}] */
int cl_mgr_project_status (struct cl_manager *m, struct cl_project *p, json_t **out,
                           cl_error_t *err);
/* Runs the provisioning steps of the (running) machines, `once` ones
   too. */
int cl_mgr_project_provision (struct cl_manager *m, struct cl_project *p, const char **machines,
                              size_t n, cl_error_t *err);

/* The parsed project as JSON (what the CLI sends to the API), and back:
   every field the planner reads is checked, a wrong one named by its
   JSON path ("machines[0].spec.image: ..."), CL_ERR_INVALID. */
json_t *cl_mgr_project_to_json (struct cl_project *p);
int cl_mgr_project_from_json (json_t *j, struct cl_project **out, cl_error_t *err);

/* The projects `up` has applied: [{id, file, updated, machines: [NAME]}]
   (id NULL: all; else the one, CL_ERR_NOT_FOUND when none). */
int cl_mgr_project_list (struct cl_manager *m, const char *id, json_t **out, cl_error_t *err);

/* Runs a project verb on the state root `root` in the cloison-project
   program; the lines it prints go to fn as they come (is_err: stderr).
   job: {"project": cl_mgr_project_to_json's,
   "verb": "up"|"down"|"provision", "machines": [...], "recreate",
   "provision" (up's), "destroy", "volumes" (down's)}.  *code: what the verb
   returned (0, or 1 for up: some machine failed or waits for --recreate);
   -1 with err on an error (the verb's own, or the program's). */
typedef void (*cl_mgr_project_line_fn) (void *opaque, bool is_err, const char *line);
int cl_mgr_project_run_captured (const char *root, json_t *job, cl_mgr_project_line_fn fn,
                                 void *opaque, int *code, cl_error_t *err);
/* cloison-project's main: {"root", "job"} on fd 3, the error on fd 4. */
int cl_mgr_project_job_main (void);

#endif
