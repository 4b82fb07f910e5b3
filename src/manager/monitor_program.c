/* SPDX-License-Identifier: Apache-2.0 */
/* cloison-monitor (containers) and cloison-vmmon (VMs, built with
   CL_MONITOR_VM): the monitor of one instance (monitor.h).  Started by
   the command that starts the instance only: its arguments come as JSON
   on fd 3 and it reports readiness on fd 4 (a container's go pipe is fd
   5; a VM's vsock reservation is the fd the arguments name). */
#include "common/cleanup.h"
#include "common/util.h"
#include "manager/monitor.h"

#include <jansson.h>
#include <stdio.h>
#include <unistd.h>

#ifdef CL_MONITOR_VM
#define MONITOR_VM true
#define MONITOR_START cl_mgr_monitor_start_vm
#else
#define MONITOR_VM false
#define MONITOR_START cl_mgr_monitor_start_container
#endif

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
  if (a.vm != MONITOR_VM)
    {
      dprintf (4, "Einstance `%s`: the wrong monitor program for its kind", a.name);
      return 1;
    }
  a.gofd = 5;
  cl_mgr_monitor_main (&a, 4, MONITOR_START);
}
