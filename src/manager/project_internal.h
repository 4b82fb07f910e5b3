/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by project_file.c (the file) and project_plan.c (up, down,
   status, provision). */
#ifndef CLOISON_MANAGER_PROJECT_INTERNAL_H
#define CLOISON_MANAGER_PROJECT_INTERNAL_H

#include "manager/project.h"

#include <jansson.h>
#include <stdint.h>

struct prj_machine
{
  char *name;
  char *instance; /* PROJECTID-NAME */
  /* what the instance is made of, compared with what the last `up`
     applied: kind, image, cpus, memory, disk, command, env, networks
     (the networks' global names), ports, mounts, volumes */
  json_t *spec;
  char **deps;
  size_t ndeps;
  json_t *provision; /* [{name, shell, run: once|always, user}] */
  json_t *health;    /* {command: [...], interval_ms, retries}, or NULL */
};

struct cl_project
{
  char *file; /* absolute */
  char *dir;  /* the file's directory */
  char *name;
  char *id;                     /* NAME-6 hex digits of the directory's path */
  json_t *networks;             /* {NAME: {global, subnet, mode}} */
  json_t *volumes;              /* {NAME: {global, size}} */
  struct prj_machine *machines; /* in the file's order */
  size_t n;
};

struct prj_machine *cl_mgr_project_machine (struct cl_project *p, const char *name);

#endif
