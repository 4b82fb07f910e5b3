/* SPDX-License-Identifier: Apache-2.0 */
/* cloison-project: runs one project verb (up, down, provision) for the
   API, exec'd by cl_mgr_project_run_captured (project_run.c) with stdout
   and stderr on pipes, its arguments as JSON on fd 3 and the error
   report on fd 4.  Not a command for people. */
#include "manager/project.h"

int
main (void)
{
  return cl_mgr_project_job_main ();
}
