/* The virtio devices the config asks for (--disk, --net, --vsock, --rng,
   --console virtio), built with the virtio helper's constructors. */
#include "vmm/vmm_internal.h"

int
vmm_build_virtio (struct vmm *m, cl_error_t *err)
{
  const struct cl_vmm_config *cfg = m->cfg;
  if (cfg->ndisks || cfg->nnets || cfg->vsock_cid || cfg->rng
      || cfg->console == CL_VMM_CONSOLE_VIRTIO)
    return cl_error_make (err, 0, "virtio devices are not built into this cloison-vmm yet");
  return 0;
}

void
vmm_free_virtio (struct vmm *m)
{
  (void) m;
}
