/* SPDX-License-Identifier: Apache-2.0 */
/* Opening a state root for instance work. */
#include "common/cleanup.h"
#include "common/util.h"
#include "manager/mgr_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
cl_mgr_open (const char *root, struct cl_manager **out, cl_error_t *err)
{
  struct cl_manager *m;

  if (cl_mgr_open_raw (root, &m, err) < 0)
    return -1;
  if (cl_mgr_reconcile_intents (m, err) < 0)
    {
      cl_mgr_close (m);
      return -1;
    }
  *out = m;
  return 0;
}

void
cl_mgr_closep (struct cl_manager **m)
{
  cl_mgr_close (*m);
}
