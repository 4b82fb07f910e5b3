/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshot and restore.  DIR/state.json holds the machine config and each
   device's own state (cl_vmm_vm_persist_register: no switch over device types
   here); DIR/vcpuN and DIR/machine hold KVM's structures as tagged binary
   records; DIR/memory is guest RAM (sparse), mapped back privately. */
#include "vmm/vmm_internal.h"

#include "common/cleanup.h"
#include "common/util.h"
#include "vmm/devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SNAPSHOT_VERSION 1

/* --- tagged records: tag, length, bytes --- */
struct records
{
  uint8_t *buf;
  size_t len, cap;
};

static void
rec_put (struct records *r, const char tag[4], const void *data, uint32_t len)
{
  if (r->len + 8 + len > r->cap)
    {
      r->cap = (r->len + 8 + len) * 2;
      r->buf = realloc (r->buf, r->cap);
      if (r->buf == NULL)
        abort ();
    }
  memcpy (r->buf + r->len, tag, 4);
  memcpy (r->buf + r->len + 4, &len, 4);
  memcpy (r->buf + r->len + 8, data, len);
  r->len += 8 + len;
}

/* The record's bytes, NULL when absent or shorter than `min`. */
static const void *
rec_get (const char *buf, size_t len, const char tag[4], size_t min, uint32_t *out_len)
{
  for (size_t off = 0; off + 8 <= len;)
    {
      uint32_t l;
      memcpy (&l, buf + off + 4, 4);
      if (l > len - off - 8)
        return NULL;
      if (memcmp (buf + off, tag, 4) == 0)
        {
          if (l < min)
            return NULL;
          if (out_len)
            *out_len = l;
          return buf + off + 8;
        }
      off += 8 + l;
    }
  return NULL;
}

static int
rec_write (struct records *r, const char *dir, const char *name, cl_error_t *err)
{
  cleanup_free char *path = cl_strdup_printf ("%s/%s", dir, name);
  int ret = cl_write_file (path, r->buf, r->len, 0, err);
  free (r->buf);
  r->buf = NULL;
  r->len = r->cap = 0;
  return ret;
}

static int
xsave_size (struct vm *vm)
{
  int n = ioctl (vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
  return n > (int)sizeof (struct kvm_xsave) ? n : (int)sizeof (struct kvm_xsave);
}

/* Every MSR KVM lists that reads back; the ones that fail are skipped. */
static struct kvm_msrs *
vcpu_get_msrs (struct vm *vm, int fd)
{
  struct kvm_msr_list probe = { .nmsrs = 0 };
  ioctl (vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe);
  struct kvm_msr_list *list = cl_xmalloc0 (sizeof (*list) + probe.nmsrs * sizeof (uint32_t));
  list->nmsrs = probe.nmsrs;
  struct kvm_msrs *out = cl_xmalloc0 (sizeof (*out) + probe.nmsrs * sizeof (struct kvm_msr_entry));
  if (ioctl (vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) == 0)
    for (uint32_t i = 0; i < list->nmsrs; i++)
      {
        struct
        {
          struct kvm_msrs h;
          struct kvm_msr_entry e;
        } one = { .h.nmsrs = 1, .e.index = list->indices[i] };
        if (ioctl (fd, KVM_GET_MSRS, &one) == 1)
          out->entries[out->nmsrs++] = one.e;
      }
  free (list);
  return out;
}

static int
vcpu_save (struct vm *vm, struct vcpu *v, const char *dir, cl_error_t *err)
{
  struct records r = { 0 };
  struct kvm_mp_state mp;
  struct kvm_regs regs;
  struct kvm_sregs sregs;
  struct kvm_xcrs xcrs;
  struct kvm_lapic_state lapic;
  struct kvm_vcpu_events events;
  struct kvm_debugregs dregs;
  int xs = xsave_size (vm);
  cleanup_free void *xsave = cl_xmalloc0 (xs);

#define GET(req, obj, tag)                                                                         \
  do                                                                                               \
    {                                                                                              \
      if (ioctl (v->fd, req, obj) < 0)                                                             \
        {                                                                                          \
          free (r.buf);                                                                            \
          return cl_error_errno (err, "vCPU %d: " #req, v->id);                                    \
        }                                                                                          \
      rec_put (&r, tag, obj, sizeof (*obj));                                                       \
    }                                                                                              \
  while (0)
  GET (KVM_GET_MP_STATE, &mp, "MPST");
  GET (KVM_GET_REGS, &regs, "REGS");
  GET (KVM_GET_SREGS, &sregs, "SREG");
  GET (KVM_GET_XCRS, &xcrs, "XCRS");
  GET (KVM_GET_LAPIC, &lapic, "LAPI");
  GET (KVM_GET_VCPU_EVENTS, &events, "EVNT");
  GET (KVM_GET_DEBUGREGS, &dregs, "DBGR");
#undef GET
  if (ioctl (v->fd, xs > (int)sizeof (struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xsave)
      < 0)
    {
      free (r.buf);
      return cl_error_errno (err, "vCPU %d: KVM_GET_XSAVE", v->id);
    }
  rec_put (&r, "XSAV", xsave, xs);
  struct kvm_msrs *msrs = vcpu_get_msrs (vm, v->fd);
  rec_put (&r, "MSRS", msrs, sizeof (*msrs) + msrs->nmsrs * sizeof (msrs->entries[0]));
  free (msrs);
  char name[32];
  snprintf (name, sizeof name, "vcpu%d", v->id);
  return rec_write (&r, dir, name, err);
}

static int
machine_save (struct vm *vm, const char *dir, cl_error_t *err)
{
  struct records r = { 0 };
  static const char *const chip_tags[3] = { "PIC0", "PIC1", "IOAP" };
  for (int i = 0; i < 3; i++)
    {
      struct kvm_irqchip chip = { .chip_id = i };
      if (ioctl (vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
        {
          free (r.buf);
          return cl_error_errno (err, "KVM_GET_IRQCHIP %d", i);
        }
      rec_put (&r, chip_tags[i], &chip, sizeof chip);
    }
  struct kvm_pit_state2 pit;
  struct kvm_clock_data clock = { 0 };
  if (ioctl (vm->vm_fd, KVM_GET_PIT2, &pit) < 0 || ioctl (vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
    {
      free (r.buf);
      return cl_error_errno (err, "KVM_GET_PIT2/KVM_GET_CLOCK");
    }
  rec_put (&r, "PIT2", &pit, sizeof pit);
  rec_put (&r, "CLCK", &clock, sizeof clock);
  /* MSI routes: the devices' restored state points at these GSIs */
  rec_put (&r, "GSIU", vm->route_used, sizeof vm->route_used);
  rec_put (&r, "GSIR", vm->routes, sizeof vm->routes);
  return rec_write (&r, dir, "machine", err);
}

int
cl_vmm_snapshot_create (struct vmm *m, const char *dir, cl_error_t *err)
{
  struct vm *vm = m->vm;
  struct stat st;

  if (dir == NULL || *dir == 0)
    return cl_error_make (err, 0, "snapshot: dir is required");
  if (stat (dir, &st) == 0 && !S_ISDIR (st.st_mode))
    return cl_error_make (err, 0, "snapshot dir `%s`: not a directory", dir);
  for (size_t i = 0; i < vm->npersist; i++)
    if (vm->persist[i].ops->save_check
        && vm->persist[i].ops->save_check (vm->persist[i].opaque, err) < 0)
      return cl_error_wrap (err, "snapshot");
  if (cl_mkdir_p (dir, 0700, err) < 0)
    return -1;
  for (unsigned i = 0; i < vm->ncpus; i++)
    if (vcpu_save (vm, &vm->vcpus[i], dir, err) < 0)
      return -1;
  if (machine_save (vm, dir, err) < 0)
    return -1;

  json_t *devices = json_object ();
  for (size_t i = 0; i < vm->npersist; i++)
    {
      json_t *s = vm->persist[i].ops->save (vm->persist[i].opaque);
      json_object_set_new (devices, vm->persist[i].id, s ? s : json_null ());
    }
  cleanup_free char *mem = cl_strdup_printf ("%s/memory", dir);
  if (cl_vmm_vm_mem_save (vm, mem, err) < 0)
    {
      json_decref (devices);
      return -1;
    }
  json_t *state = json_pack ("{s:i,s:o,s:o}", "version", SNAPSHOT_VERSION, "config",
                             cl_vmm_config_to_json (m->cfg), "devices", devices);
  char *text = json_dumps (state, JSON_INDENT (1) | JSON_SORT_KEYS);
  json_decref (state);
  cleanup_free char *path = cl_strdup_printf ("%s/state.json", dir);
  int ret = cl_write_file (path, text, strlen (text), 1, err);
  free (text);
  return ret;
}

int
cl_vmm_snapshot_load_config (const char *dir, const struct cl_vmm_config *user,
                             struct cl_vmm_config *out, json_t **saved, cl_error_t *err)
{
  cleanup_free char *path = cl_strdup_printf ("%s/state.json", dir);
  json_error_t je;
  json_int_t version;
  json_t *config;

  *saved = json_load_file (path, JSON_REJECT_DUPLICATES, &je);
  if (*saved == NULL)
    {
      if (access (path, F_OK) < 0)
        return cl_error_errno (err, "--restore: `%s`", path);
      return cl_error_make (err, 0, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    }
  if (json_unpack_ex (*saved, &je, 0, "{s:I,s:o}", "version", &version, "config", &config) < 0)
    return cl_error_make (err, 0, "`%s`: %s", path, je.text);
  if (version != SNAPSHOT_VERSION)
    return cl_error_make (err, 0, "`%s`: snapshot version %lld, expected %d", path,
                          (long long)version, SNAPSHOT_VERSION);
  return cl_vmm_config_from_json (config, user, out, err);
}

static int
read_records (const char *dir, const char *name, char **buf, size_t *len, cl_error_t *err)
{
  cleanup_free char *path = cl_strdup_printf ("%s/%s", dir, name);
  return cl_read_file (path, buf, len, err);
}

static int
vcpu_restore (struct vm *vm, struct vcpu *v, const char *dir, cl_error_t *err)
{
  cleanup_free char *buf = NULL;
  size_t len;
  char name[32];
  snprintf (name, sizeof name, "vcpu%d", v->id);
  if (read_records (dir, name, &buf, &len, err) < 0)
    return -1;

  static const struct
  {
    const char *tag;
    unsigned long req;
    size_t size;
    const char *what;
  } order[] = {
    /* sregs before the LAPIC (APIC base), TSC (in MSRs) before events */
    { "MPST", KVM_SET_MP_STATE, sizeof (struct kvm_mp_state), "KVM_SET_MP_STATE" },
    { "REGS", KVM_SET_REGS, sizeof (struct kvm_regs), "KVM_SET_REGS" },
    { "SREG", KVM_SET_SREGS, sizeof (struct kvm_sregs), "KVM_SET_SREGS" },
    { "XSAV", KVM_SET_XSAVE, sizeof (struct kvm_xsave), "KVM_SET_XSAVE" },
    { "XCRS", KVM_SET_XCRS, sizeof (struct kvm_xcrs), "KVM_SET_XCRS" },
    { "DBGR", KVM_SET_DEBUGREGS, sizeof (struct kvm_debugregs), "KVM_SET_DEBUGREGS" },
    { "LAPI", KVM_SET_LAPIC, sizeof (struct kvm_lapic_state), "KVM_SET_LAPIC" },
    { "MSRS", KVM_SET_MSRS, sizeof (struct kvm_msrs), "KVM_SET_MSRS" },
    { "EVNT", KVM_SET_VCPU_EVENTS, sizeof (struct kvm_vcpu_events), "KVM_SET_VCPU_EVENTS" },
  };
  (void)vm;
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
    {
      uint32_t l;
      const void *p = rec_get (buf, len, order[i].tag, order[i].size, &l);
      if (p == NULL)
        return cl_error_make (err, 0, "snapshot `%s/%s`: record %s missing or short", dir, name,
                              order[i].tag);
      cleanup_free void *copy = cl_xmalloc0 (l);
      memcpy (copy, p, l);
      if (order[i].req == KVM_SET_MSRS)
        {
          struct kvm_msrs *msrs = copy;
          if (sizeof (*msrs) + msrs->nmsrs * sizeof (msrs->entries[0]) > l)
            return cl_error_make (err, 0, "snapshot `%s/%s`: MSRS record short", dir, name);
          int n = ioctl (v->fd, KVM_SET_MSRS, msrs);
          if (n < 0 || (uint32_t)n != msrs->nmsrs)
            return cl_error_make (err, n < 0 ? errno : 0, "vCPU %d: KVM_SET_MSRS: MSR 0x%x refused",
                                  v->id, n >= 0 ? msrs->entries[n].index : 0);
          continue;
        }
      if (ioctl (v->fd, order[i].req, copy) < 0)
        return cl_error_errno (err, "vCPU %d: %s", v->id, order[i].what);
    }
  return 0;
}

static int
machine_restore (struct vm *vm, const char *dir, cl_error_t *err)
{
  cleanup_free char *buf = NULL;
  size_t len;
  if (read_records (dir, "machine", &buf, &len, err) < 0)
    return -1;
  const void *used = rec_get (buf, len, "GSIU", sizeof vm->route_used, NULL);
  const void *routes = rec_get (buf, len, "GSIR", sizeof vm->routes, NULL);
  if (used == NULL || routes == NULL)
    return cl_error_make (err, 0, "snapshot `%s/machine`: GSI routes missing", dir);
  memcpy (vm->route_used, used, sizeof vm->route_used);
  memcpy (vm->routes, routes, sizeof vm->routes);
  if (cl_vmm_vm_routes_push (vm, err) < 0)
    return -1;
  static const char *const chip_tags[3] = { "PIC0", "PIC1", "IOAP" };
  for (int i = 0; i < 3; i++)
    {
      const void *p = rec_get (buf, len, chip_tags[i], sizeof (struct kvm_irqchip), NULL);
      struct kvm_irqchip chip;
      if (p == NULL)
        return cl_error_make (err, 0, "snapshot `%s/machine`: %s missing", dir, chip_tags[i]);
      memcpy (&chip, p, sizeof chip);
      if (ioctl (vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
        return cl_error_errno (err, "KVM_SET_IRQCHIP %d", i);
    }
  const void *pit = rec_get (buf, len, "PIT2", sizeof (struct kvm_pit_state2), NULL);
  const void *clock = rec_get (buf, len, "CLCK", sizeof (struct kvm_clock_data), NULL);
  if (pit == NULL || clock == NULL)
    return cl_error_make (err, 0, "snapshot `%s/machine`: PIT or clock missing", dir);
  struct kvm_pit_state2 p2;
  struct kvm_clock_data c;
  memcpy (&p2, pit, sizeof p2);
  memcpy (&c, clock, sizeof c);
  c.flags = 0;
  if (ioctl (vm->vm_fd, KVM_SET_PIT2, &p2) < 0)
    return cl_error_errno (err, "KVM_SET_PIT2");
  if (ioctl (vm->vm_fd, KVM_SET_CLOCK, &c) < 0)
    return cl_error_errno (err, "KVM_SET_CLOCK");
  return 0;
}

int
cl_vmm_snapshot_restore (struct vmm *m, const char *dir, cl_error_t *err)
{
  struct vm *vm = m->vm;
  json_t *devices = json_object_get (m->saved, "devices");

  for (size_t i = 0; i < vm->npersist; i++)
    {
      json_t *s = json_object_get (devices, vm->persist[i].id);
      if (s == NULL && vm->persist[i].ops->absent_ok)
        continue;
      if (s == NULL)
        return cl_error_make (err, 0, "snapshot `%s`: no state for device `%s`", dir,
                              vm->persist[i].id);
      if (vm->persist[i].ops->restore (vm->persist[i].opaque, s, err) < 0)
        return cl_error_wrap (err, "restore `%s`", vm->persist[i].id);
    }
  cl_vmm_pci_bus_restore_bars (vm);
  if (machine_restore (vm, dir, err) < 0)
    return -1;
  for (unsigned i = 0; i < vm->ncpus; i++)
    if (vcpu_restore (vm, &vm->vcpus[i], dir, err) < 0)
      return -1;
  for (size_t i = 0; i < vm->npersist; i++)
    if (vm->persist[i].ops->restored)
      vm->persist[i].ops->restored (vm->persist[i].opaque);
  return 0;
}
