/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshots of instances (mgr_snapshot.c). */
#ifndef CLOISON_MANAGER_SNAPSHOT_H
#define CLOISON_MANAGER_SNAPSHOT_H

#include "common/error.h"

struct cl_manager;

/* Finishes or undoes an interrupted snapshot-create/-restore/-delete. */
int cl_mgr_snapshot_recover (struct cl_manager *m, const char *op, const char *instance,
                             const char *arg, cl_error_t *err);

#endif
