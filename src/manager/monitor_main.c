/* SPDX-License-Identifier: Apache-2.0 */
/* cloison-monitor: the monitor of one container instance (monitor.h).
   Started by `cloison` only: its arguments come as JSON on fd 3 and it
   reports readiness on fd 4. */
#include "common/cleanup.h"
#include "common/util.h"
#include "manager/monitor.h"

#include <jansson.h>
#include <stdio.h>
#include <unistd.h>

int
main (void)
{
  struct monitor_args a;
  cl_error_t err = NULL;
  json_error_t jerr;
  json_t *j = json_loadfd (3, 0, &jerr);

  close (3);
  if (j == NULL || cl_mgr_monitor_args_from_json (j, &a, &err) < 0)
    {
      dprintf (4, "E%s", err ? err->msg : "cloison-monitor: malformed arguments");
      return 1;
    }
  json_decref (j);
  a.gofd = 5;
  cl_mgr_monitor_main (&a, 4, cl_mgr_monitor_start_container);
}
