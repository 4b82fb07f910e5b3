/* microVM instances (see vm.h).  Built without the VMM library: every
   entry point says so. */
#include "manager/internal.h"
#include "manager/vm.h"

static int
unsupported (cl_error_t *err)
{
  return cl_error_make (err, 0, "microVM instances are not built in (no src/vmm/vmm.h)");
}

bool
vm_supported (void)
{
  return false;
}

int
vm_disk_create (struct cl_manager *m, struct instance *inst, struct mgr_image *img,
                cl_error_t *err)
{
  (void) m, (void) inst, (void) img;
  return unsupported (err);
}

int
vm_launch_prepare (struct cl_manager *m, struct instance *inst, struct mgr_image *img,
                   struct vm_launch *out, cl_error_t *err)
{
  (void) m, (void) inst, (void) img, (void) out;
  return unsupported (err);
}

pid_t
vm_monitor_start (struct vm_launch *l, cl_error_t *err)
{
  (void) l;
  return unsupported (err);
}

void
vm_monitor_stopped (struct vm_launch *l)
{
  (void) l;
}

int
vm_api_pause (const char *socket, bool pause, cl_error_t *err)
{
  (void) socket, (void) pause;
  return unsupported (err);
}

int
vm_api_snapshot (const char *socket, const char *dir, cl_error_t *err)
{
  (void) socket, (void) dir;
  return unsupported (err);
}

int
vm_api_shutdown (const char *socket, cl_error_t *err)
{
  (void) socket;
  return unsupported (err);
}

int
vm_disk_copy (struct cl_manager *m, struct instance *from, const char *dst, cl_error_t *err)
{
  (void) m, (void) from, (void) dst;
  return unsupported (err);
}

int
vm_exec (struct cl_manager *m, struct instance *inst, char **argv, int *exit_code,
         cl_error_t *err)
{
  (void) m, (void) inst, (void) argv, (void) exit_code;
  return unsupported (err);
}

int
vm_console (struct cl_manager *m, struct instance *inst, int *exit_code, cl_error_t *err)
{
  (void) m, (void) inst, (void) exit_code;
  return unsupported (err);
}

int
vm_start_restored (struct cl_manager *m, const char *name, const char *state_dir,
                   cl_error_t *err)
{
  (void) m, (void) name, (void) state_dir;
  return unsupported (err);
}
