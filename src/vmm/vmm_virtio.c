/* SPDX-License-Identifier: Apache-2.0 */
/* The virtio devices the config asks for (--disk, --net, --console virtio,
   --rng, --fs, --vsock), built with the virtio constructors in a fixed order so
   that a restoring process rebuilds the same PCI slots and state ids. */
#include "vmm/vmm_internal.h"

#include "vmm/virtio.h"

int
cl_vmm_build_virtio (struct vmm *m, cl_error_t *err)
{
  const struct cl_vmm_config *cfg = m->cfg;
  for (size_t i = 0; i < cfg->ndisks; i++)
    if (cl_vmm_virtio_blk_create (m->vm, cfg->disks[i].path, cfg->disks[i].readonly,
                                  cfg->disks[i].serial, err)
        < 0)
      return cl_error_wrap (err, "--disk `%s`", cfg->disks[i].path);
  for (size_t i = 0; i < cfg->nnets; i++)
    if (cl_vmm_virtio_net_create (m->vm, cfg->nets[i].tap,
                                  cfg->nets[i].has_mac ? cfg->nets[i].mac : NULL, err)
        < 0)
      return cl_error_wrap (err, "--net tap=%s", cfg->nets[i].tap);
  if (cfg->console == CL_VMM_CONSOLE_VIRTIO
      && cl_vmm_virtio_console_create (m->vm, cfg->console_in_fd, cfg->console_out_fd, err) < 0)
    return cl_error_wrap (err, "--console virtio");
  if (cfg->rng && cl_vmm_virtio_rng_create (m->vm, err) < 0)
    return cl_error_wrap (err, "--rng");
  for (size_t i = 0; i < cfg->nfs; i++)
    if (cl_vmm_virtio_fs_create (m->vm, cfg->fs[i].tag, cfg->fs[i].path, cfg->fs[i].readonly, err)
        < 0)
      return cl_error_wrap (err, "--fs %s=%s", cfg->fs[i].tag, cfg->fs[i].path);
  if (cfg->vsock_cid && cl_vmm_virtio_vsock_create (m->vm, cfg->vsock_cid, cfg->vsock_fd, err) < 0)
    return cl_error_wrap (err, "--vsock %u", cfg->vsock_cid);
  return 0;
}

void
cl_vmm_free_virtio (struct vmm *m)
{
  (void)m; /* cl_vmm_vm_destroy frees the devices (their VM destructors) */
}
