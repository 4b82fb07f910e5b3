/* SPDX-License-Identifier: Apache-2.0 */
/* The machine part of a cl_vmm_config as JSON: saved in a snapshot so
   that --restore rebuilds the same machine, and shown by GET /vm. */
#include "vmm/vmm_internal.h"

#include "common/util.h"

#include <stdlib.h>
#include <string.h>

static const char *const console_names[] = { "serial", "virtio", "file" };

json_t *
cl_vmm_config_to_json (const struct cl_vmm_config *cfg)
{
  json_t *disks = json_array (), *nets = json_array (), *fs = json_array ();
  for (size_t i = 0; i < cfg->ndisks; i++)
    json_array_append_new (disks,
                           json_pack ("{s:s,s:b,s:s*}", "path", cfg->disks[i].path, "readonly",
                                      cfg->disks[i].readonly, "serial", cfg->disks[i].serial));
  for (size_t i = 0; i < cfg->nnets; i++)
    {
      const uint8_t *m = cfg->nets[i].mac;
      char mac[18];
      snprintf (mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                m[5]);
      json_array_append_new (nets, json_pack ("{s:s,s:s*}", "tap", cfg->nets[i].tap, "mac",
                                              cfg->nets[i].has_mac ? mac : NULL));
    }
  for (size_t i = 0; i < cfg->nfs; i++)
    json_array_append_new (fs, json_pack ("{s:s,s:s,s:b}", "tag", cfg->fs[i].tag, "path",
                                          cfg->fs[i].path, "readonly", cfg->fs[i].readonly));
  json_t *j = json_pack (
      "{s:s?,s:s?,s:s,s:i,s:I,s:o,s:o,s:I,s:b,s:s}", "kernel", cfg->kernel, "initrd", cfg->initrd,
      "cmdline", cfg->cmdline ? cfg->cmdline : CL_VMM_DEFAULT_CMDLINE, "cpus", cfg->cpus, "memory",
      (json_int_t)cfg->memory, "disks", disks, "nets", nets, "vsock_cid",
      (json_int_t)cfg->vsock_cid, "rng", cfg->rng, "console", console_names[cfg->console]);
  json_object_set_new (j, "fs", fs);
  /* absent rather than null, for the readers' "s?s" */
  if (json_is_null (json_object_get (j, "kernel")))
    json_object_del (j, "kernel");
  if (json_is_null (json_object_get (j, "initrd")))
    json_object_del (j, "initrd");
  return j;
}

/* A template's clone: the same devices, pointed at this VM's shared
   directories, disks and taps (the guest mounts its shares, and probes
   its disks and NICs, after the restore: a device no driver has seen
   gets this VM's capacity and MAC, virtio_pci.c). */
static int
clone_retarget (const struct cl_vmm_config *user, struct cl_vmm_config *out, cl_error_t *err)
{
  struct cl_vmm_fs *f = (struct cl_vmm_fs *)out->fs;
  struct cl_vmm_net *n = (struct cl_vmm_net *)out->nets;
  struct cl_vmm_disk *d = (struct cl_vmm_disk *)out->disks;

  if (user->nfs != out->nfs || user->nnets != out->nnets || user->ndisks != out->ndisks)
    return cl_error_make (err, 0,
                          "template: %zu shared directories, %zu networks and %zu disks, the "
                          "clone has %zu, %zu and %zu",
                          out->nfs, out->nnets, out->ndisks, user->nfs, user->nnets, user->ndisks);
  for (size_t i = 0; i < out->ndisks; i++)
    d[i] = user->disks[i];
  for (size_t i = 0; i < out->nfs; i++)
    {
      if (strcmp (f[i].tag, user->fs[i].tag) != 0)
        return cl_error_make (err, 0, "template: fs[%zu] has tag `%s`, the clone `%s`", i, f[i].tag,
                              user->fs[i].tag);
      f[i].path = user->fs[i].path;
      f[i].readonly = user->fs[i].readonly;
    }
  for (size_t i = 0; i < out->nnets; i++)
    {
      n[i].tap = user->nets[i].tap;
      if (user->nets[i].has_mac)
        {
          memcpy (n[i].mac, user->nets[i].mac, sizeof n[i].mac);
          n[i].has_mac = true;
        }
    }
  return 0;
}

int
cl_vmm_config_from_json (json_t *json, const struct cl_vmm_config *user, struct cl_vmm_config *out,
                         cl_error_t *err)
{
  json_t *disks, *nets, *fs = NULL;
  json_int_t cpus, memory, cid;
  int rng;
  const char *console;
  json_error_t je;

  *out = *user;
  out->kernel = out->initrd = out->cmdline = NULL;
  /* "fs" is absent from snapshots older than virtio-fs */
  if (json_unpack_ex (json, &je, 0, "{s?s,s?s,s:s,s:I,s:I,s:o,s:o,s?o,s:I,s:b,s:s}", "kernel",
                      &out->kernel, "initrd", &out->initrd, "cmdline", &out->cmdline, "cpus", &cpus,
                      "memory", &memory, "disks", &disks, "nets", &nets, "fs", &fs, "vsock_cid",
                      &cid, "rng", &rng, "console", &console)
      < 0)
    return cl_error_make (err, 0, "snapshot config: %s", je.text);
  if (cpus < 1 || cpus > CL_VMM_MAX_CPUS || memory < (json_int_t)CL_VMM_MIN_MEMORY
      || !json_is_array (disks) || !json_is_array (nets) || (fs && !json_is_array (fs)))
    return cl_error_make (err, 0, "snapshot config: bad cpus, memory, disks, nets or fs");
  out->cpus = cpus;
  out->memory = memory;
  /* a clone, or a migration in with a CID reserved here (the source's
     may be taken on this host): the guest re-reads it at the transport
     reset */
  if (user->restore_clone || (user->incoming && user->vsock_fd >= 0))
    cid = user->vsock_cid;
  if (user->vsock_fd >= 0 && (json_int_t)user->vsock_cid != cid)
    return cl_error_make (err, 0, "snapshot config: vsock cid %lld, but the reserved one is %u",
                          (long long)cid, user->vsock_cid);
  out->vsock_cid = cid;
  out->rng = rng;
  /* The guest's drivers were bound to the console it booted with. */
  if (strcmp (console, "virtio") == 0 && user->console != CL_VMM_CONSOLE_VIRTIO)
    out->console = CL_VMM_CONSOLE_VIRTIO;
  else if (strcmp (console, "virtio") != 0 && user->console == CL_VMM_CONSOLE_VIRTIO)
    out->console = CL_VMM_CONSOLE_SERIAL;

  size_t nd = json_array_size (disks), nn = json_array_size (nets);
  struct cl_vmm_disk *d = cl_xmalloc0 ((nd + 1) * sizeof (*d));
  struct cl_vmm_net *n = cl_xmalloc0 ((nn + 1) * sizeof (*n));
  out->disks = d;
  out->ndisks = nd;
  out->nets = n;
  out->nnets = nn;
  size_t nf = json_array_size (fs);
  struct cl_vmm_fs *f = cl_xmalloc0 ((nf + 1) * sizeof (*f));
  out->fs = f;
  out->nfs = nf;
  for (size_t i = 0; i < nf; i++)
    {
      int ro;
      if (json_unpack (json_array_get (fs, i), "{s:s,s:s,s:b}", "tag", &f[i].tag, "path",
                       &f[i].path, "readonly", &ro)
          < 0)
        return cl_error_make (err, 0, "snapshot config: fs[%zu]: bad format", i);
      f[i].readonly = ro;
    }
  for (size_t i = 0; i < nd; i++)
    {
      int ro;
      if (json_unpack (json_array_get (disks, i), "{s:s,s:b,s?s}", "path", &d[i].path, "readonly",
                       &ro, "serial", &d[i].serial)
          < 0)
        return cl_error_make (err, 0, "snapshot config: disks[%zu]: bad format", i);
      d[i].readonly = ro;
    }
  for (size_t i = 0; i < nn; i++)
    {
      const char *mac = NULL;
      if (json_unpack (json_array_get (nets, i), "{s:s,s?s}", "tap", &n[i].tap, "mac", &mac) < 0)
        return cl_error_make (err, 0, "snapshot config: nets[%zu]: bad format", i);
      if (mac)
        {
          unsigned m[6];
          if (sscanf (mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
            return cl_error_make (err, 0, "snapshot config: nets[%zu].mac: bad MAC", i);
          for (int k = 0; k < 6; k++)
            n[i].mac[k] = m[k];
          n[i].has_mac = true;
        }
    }
  if (user->restore_clone)
    return clone_retarget (user, out, err);
  /* the taps are the host's: a resumed VM's caller may have made them
     anew under other names (cloison's instances do at every start); the
     guest keeps the MAC it knows */
  if (user->nnets == nn)
    for (size_t i = 0; i < nn; i++)
      n[i].tap = user->nets[i].tap;
  return 0;
}

void
cl_vmm_config_free_arrays (struct cl_vmm_config *cfg)
{
  free ((void *)cfg->disks);
  free ((void *)cfg->nets);
  free ((void *)cfg->fs);
  cfg->disks = NULL;
  cfg->nets = NULL;
  cfg->fs = NULL;
}
