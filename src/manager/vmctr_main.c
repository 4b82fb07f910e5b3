/* SPDX-License-Identifier: Apache-2.0 */
/* cloison-vmctr: the host side of a VM-isolated container, started by
   cloison-runtime only (src/container/vm_isolation.c), never by people:
     cloison-vmctr create STATE_DIR          (fd 3: readiness)
     cloison-vmctr exec CID FILE [SOCKET]    (fd 3: readiness, if open)
   See src/manager/vm_container.h. */
#include "manager/vm_container.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main (int argc, char **argv)
{
  int ready = fcntl (3, F_GETFD) >= 0 ? 3 : -1;

  if (ready >= 0)
    fcntl (ready, F_SETFD, FD_CLOEXEC);
  if (argc == 3 && strcmp (argv[1], "create") == 0)
    return cl_mgr_vmctr_create (argv[2], ready);
  if ((argc == 4 || argc == 5) && strcmp (argv[1], "exec") == 0)
    return cl_mgr_vmctr_exec ((uint32_t)strtoul (argv[2], NULL, 10), argv[3],
                              argc == 5 ? argv[4] : NULL, ready);
  fprintf (stderr, "cloison-vmctr: a helper of cloison-runtime (VM-isolated containers)\n");
  return 2;
}
