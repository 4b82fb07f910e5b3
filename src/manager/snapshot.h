/* Snapshots of instances (snapshot.c). */
#ifndef CLOISON_MANAGER_SNAPSHOT_H
#define CLOISON_MANAGER_SNAPSHOT_H

#include "common/error.h"

struct cl_manager;

/* Finishes or undoes an interrupted snapshot-create/-restore/-delete. */
int snapshot_recover (struct cl_manager *m, const char *op, const char *instance, const char *arg,
                      cl_error_t *err);

#endif
