/* SPDX-License-Identifier: Apache-2.0 */
/* Opening a state root for instance work. */
#include "common/cleanup.h"
#include "common/util.h"
#include "common/log.h"
#include "manager/mgr_internal.h"
#include "manager/netglue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
cl_mgr_open (const char *root, struct cl_manager **out, cl_error_t *err)
{
  struct cl_manager *m;
  int crashed;

  if (cl_mgr_open_raw (root, &m, err) < 0)
    return -1;
  if ((crashed = cl_mgr_reconcile_intents (m, err)) < 0)
    {
      cl_mgr_close (m);
      return -1;
    }
  /* network attachments of instances that are gone: only after a crash
     (a delete detaches first), so that no read writes */
  if (crashed > 0)
    {
      cl_error_t ignored = NULL;
      if (cl_mgr_netglue_cleanup (m, &ignored) < 0)
        {
          cl_warn ("network cleanup: %s", ignored->msg);
          cl_error_release (&ignored);
        }
    }
  *out = m;
  return 0;
}

void
cl_mgr_closep (struct cl_manager **m)
{
  cl_mgr_close (*m);
}
