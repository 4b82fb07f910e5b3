/* Placeholder so the runtime links; the real implementation follows. */
#include "container/seccomp.h"

#include <errno.h>

int
cl_seccomp_validate (json_t *seccomp, cl_error_t *err)
{
  (void) seccomp, (void) err;
  return 0;
}

int
cl_seccomp_load (json_t *seccomp, int *notify_fd, cl_error_t *err)
{
  *notify_fd = -1;
  if (seccomp == NULL)
    return 0;
  return cl_error_make (err, ENOSYS, "linux.seccomp: not implemented yet");
}

int
cl_seccomp_send_listener (json_t *seccomp, int notify_fd, json_t *state, cl_error_t *err)
{
  (void) seccomp, (void) notify_fd, (void) state;
  return cl_error_make (err, ENOSYS, "linux.seccomp.listenerPath: not implemented yet");
}
