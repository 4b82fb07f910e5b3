/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshot and restore.  DIR/state.json holds the machine config and each
   device's own state (cl_vmm_vm_persist_register: no switch over device types
   here); DIR/vcpuN and DIR/machine hold KVM's structures as tagged binary
   records; DIR/memory is guest RAM (sparse), mapped back privately. */
#include "vmm/vmm_internal.h"

#include "common/cleanup.h"
#include "common/util.h"
#include "vmm/acpi.h"
#include "vmm/devices.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
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

/* The records become blob `name` of *out (which takes the buffer). */
static int
rec_to_blob (struct records *r, struct vmm_blobs *out, const char *name)
{
  cl_vmm_blobs_add (out, name, r->buf, r->len);
  r->buf = NULL;
  r->len = r->cap = 0;
  return 0;
}

void
cl_vmm_blobs_add (struct vmm_blobs *b, const char *name, void *data, size_t len)
{
  b->v = realloc (b->v, (b->n + 1) * sizeof (*b->v));
  if (b->v == NULL)
    abort ();
  b->v[b->n++] = (struct vmm_blob){ cl_xstrdup (name), data, len };
}

const struct vmm_blob *
cl_vmm_blobs_get (const struct vmm_blobs *b, const char *name)
{
  for (size_t i = 0; i < b->n; i++)
    if (strcmp (b->v[i].name, name) == 0)
      return &b->v[i];
  return NULL;
}

void
cl_vmm_blobs_free (struct vmm_blobs *b)
{
  for (size_t i = 0; i < b->n; i++)
    {
      free (b->v[i].name);
      free (b->v[i].data);
    }
  free (b->v);
  b->v = NULL;
  b->n = 0;
}

static int
xsave_size (struct vm *vm)
{
  int n = ioctl (vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
  return n > (int)sizeof (struct kvm_xsave) ? n : (int)sizeof (struct kvm_xsave);
}

/* Every MSR KVM lists that reads back (probed one by one on vCPU `fd`
   the first time, then kept: a migration's stop-and-copy reads them all
   in one KVM_GET_MSRS). */
static const struct kvm_msr_list *
readable_msrs (struct vm *vm, int fd)
{
  if (vm->msrs_readable)
    return vm->msrs_readable;
  struct kvm_msr_list probe = { .nmsrs = 0 };
  ioctl (vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe);
  struct kvm_msr_list *list = cl_xmalloc0 (sizeof (*list) + probe.nmsrs * sizeof (uint32_t));
  struct kvm_msr_list *ok = cl_xmalloc0 (sizeof (*ok) + probe.nmsrs * sizeof (uint32_t));
  list->nmsrs = probe.nmsrs;
  if (ioctl (vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) == 0)
    for (uint32_t i = 0; i < list->nmsrs; i++)
      {
        struct
        {
          struct kvm_msrs h;
          struct kvm_msr_entry e;
        } one = { .h.nmsrs = 1, .e.index = list->indices[i] };
        if (ioctl (fd, KVM_GET_MSRS, &one) == 1)
          ok->indices[ok->nmsrs++] = list->indices[i];
      }
  free (list);
  vm->msrs_readable = ok;
  return ok;
}

void
cl_vmm_state_prepare (struct vmm *m)
{
  if (m->vm->ncpus > 0)
    readable_msrs (m->vm, m->vm->vcpus[0].fd);
}

static struct kvm_msrs *
vcpu_get_msrs (struct vm *vm, int fd)
{
  const struct kvm_msr_list *list = readable_msrs (vm, fd);
  struct kvm_msrs *out = cl_xmalloc0 (sizeof (*out) + list->nmsrs * sizeof (struct kvm_msr_entry));
  out->nmsrs = list->nmsrs;
  for (uint32_t i = 0; i < list->nmsrs; i++)
    out->entries[i].index = list->indices[i];
  int n = ioctl (fd, KVM_GET_MSRS, out);
  out->nmsrs = n < 0 ? 0 : (uint32_t)n;
  return out;
}

static int
vcpu_save (struct vm *vm, struct vcpu *v, struct vmm_blobs *out, cl_error_t *err)
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
  return rec_to_blob (&r, out, name);
}

static int
machine_save (struct vm *vm, struct vmm_blobs *out, cl_error_t *err)
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
  /* when the clock was read: a live migration's destination advances the
     guest clock by the time the machine spent in transit */
  struct timespec rt;
  clock_gettime (CLOCK_REALTIME, &rt);
  uint64_t rt_ns = (uint64_t)rt.tv_sec * 1000000000ull + rt.tv_nsec;
  rec_put (&r, "RTNS", &rt_ns, sizeof rt_ns);
  /* MSI routes: the devices' restored state points at these GSIs */
  rec_put (&r, "GSIU", vm->route_used, sizeof vm->route_used);
  rec_put (&r, "GSIR", vm->routes, sizeof vm->routes);
  return rec_to_blob (&r, out, "machine");
}

int
cl_vmm_state_save_check (struct vmm *m, cl_error_t *err)
{
  struct vm *vm = m->vm;
  for (size_t i = 0; i < vm->npersist; i++)
    if (vm->persist[i].ops->save_check
        && vm->persist[i].ops->save_check (vm->persist[i].opaque, err) < 0)
      return -1;
  return 0;
}

int
cl_vmm_state_save (struct vmm *m, struct vmm_blobs *out, cl_error_t *err)
{
  struct vm *vm = m->vm;
  for (unsigned i = 0; i < vm->ncpus; i++)
    if (vcpu_save (vm, &vm->vcpus[i], out, err) < 0)
      return -1;
  if (machine_save (vm, out, err) < 0)
    return -1;

  json_t *devices = json_object ();
  for (size_t i = 0; i < vm->npersist; i++)
    {
      json_t *s = vm->persist[i].ops->save (vm->persist[i].opaque);
      json_object_set_new (devices, vm->persist[i].id, s ? s : json_null ());
    }
  json_t *state = json_pack ("{s:i,s:o,s:o}", "version", SNAPSHOT_VERSION, "config",
                             cl_vmm_config_to_json (m->cfg), "devices", devices);
  char *text = json_dumps (state, JSON_INDENT (1) | JSON_SORT_KEYS);
  json_decref (state);
  cl_vmm_blobs_add (out, "state.json", text, strlen (text));
  return 0;
}

int
cl_vmm_snapshot_create (struct vmm *m, const char *dir, cl_error_t *err)
{
  struct stat st;
  struct vmm_blobs blobs = { 0 };
  int ret = -1;

  if (dir == NULL || *dir == 0)
    return cl_error_make (err, 0, "snapshot: dir is required");
  if (stat (dir, &st) == 0 && !S_ISDIR (st.st_mode))
    return cl_error_make (err, 0, "snapshot dir `%s`: not a directory", dir);
  if (cl_vmm_state_save_check (m, err) < 0)
    return cl_error_wrap (err, "snapshot");
  if (cl_mkdir_p (dir, 0700, err) < 0)
    return -1;
  cleanup_free char *mem = cl_strdup_printf ("%s/memory", dir);
  /* (declared before any goto: its cleanup runs at `out`) */
  cleanup_free char *state_path = NULL;
  if (cl_vmm_state_save (m, &blobs, err) < 0 || cl_vmm_vm_mem_save (m->vm, mem, err) < 0)
    goto out;
  /* state.json last (synced): its presence marks a whole snapshot */
  for (size_t i = 0; i < blobs.n; i++)
    {
      cleanup_free char *path = cl_strdup_printf ("%s/%s", dir, blobs.v[i].name);
      bool last = strcmp (blobs.v[i].name, "state.json") == 0;
      if (!last && cl_write_file (path, blobs.v[i].data, blobs.v[i].len, 0, err) < 0)
        goto out;
    }
  const struct vmm_blob *state = cl_vmm_blobs_get (&blobs, "state.json");
  state_path = cl_strdup_printf ("%s/state.json", dir);
  ret = cl_write_file (state_path, state->data, state->len, 1, err);
out:
  cl_vmm_blobs_free (&blobs);
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

/* Blob `name`, or an error naming `where` (snapshot dir or stream). */
static int
blob_records (const struct vmm_blobs *in, const char *where, const char *name, const char **buf,
              size_t *len, cl_error_t *err)
{
  const struct vmm_blob *b = cl_vmm_blobs_get (in, name);
  if (b == NULL)
    return cl_error_make (err, 0, "%s: no `%s` state", where, name);
  *buf = b->data;
  *len = b->len;
  return 0;
}

static int
vcpu_restore (struct vm *vm, struct vcpu *v, const struct vmm_blobs *in, const char *dir,
              cl_error_t *err)
{
  const char *buf = NULL;
  size_t len = 0;
  char name[32];
  snprintf (name, sizeof name, "vcpu%d", v->id);
  if (blob_records (in, dir, name, &buf, &len, err) < 0)
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
        return cl_error_make (err, 0, "%s/%s: record %s missing or short", dir, name, order[i].tag);
      cleanup_free void *copy = cl_xmalloc0 (l);
      memcpy (copy, p, l);
      if (order[i].req == KVM_SET_MSRS)
        {
          struct kvm_msrs *msrs = copy;
          if (sizeof (*msrs) + msrs->nmsrs * sizeof (msrs->entries[0]) > l)
            return cl_error_make (err, 0, "%s/%s: MSRS record short", dir, name);
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
machine_restore (struct vm *vm, const struct vmm_blobs *in, const char *dir, bool live,
                 cl_error_t *err)
{
  const char *buf = NULL;
  size_t len = 0;
  if (blob_records (in, dir, "machine", &buf, &len, err) < 0)
    return -1;
  const void *used = rec_get (buf, len, "GSIU", sizeof vm->route_used, NULL);
  const void *routes = rec_get (buf, len, "GSIR", sizeof vm->routes, NULL);
  if (used == NULL || routes == NULL)
    return cl_error_make (err, 0, "%s/machine: GSI routes missing", dir);
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
        return cl_error_make (err, 0, "%s/machine: %s missing", dir, chip_tags[i]);
      memcpy (&chip, p, sizeof chip);
      if (ioctl (vm->vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
        return cl_error_errno (err, "KVM_SET_IRQCHIP %d", i);
    }
  const void *pit = rec_get (buf, len, "PIT2", sizeof (struct kvm_pit_state2), NULL);
  const void *clock = rec_get (buf, len, "CLCK", sizeof (struct kvm_clock_data), NULL);
  if (pit == NULL || clock == NULL)
    return cl_error_make (err, 0, "%s/machine: PIT or clock missing", dir);
  struct kvm_pit_state2 p2;
  struct kvm_clock_data c;
  memcpy (&p2, pit, sizeof p2);
  memcpy (&c, clock, sizeof c);
  c.flags = 0;
  const void *rt = rec_get (buf, len, "RTNS", sizeof (uint64_t), NULL);
  if (live && rt)
    {
      /* the guest's clock goes on through the transit, as a clock would */
      uint64_t then, now;
      struct timespec ts;
      memcpy (&then, rt, sizeof then);
      clock_gettime (CLOCK_REALTIME, &ts);
      now = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
      if (now > then && now - then < 3600ull * 1000000000ull)
        c.clock += now - then;
    }
  if (ioctl (vm->vm_fd, KVM_SET_PIT2, &p2) < 0)
    return cl_error_errno (err, "KVM_SET_PIT2");
  if (ioctl (vm->vm_fd, KVM_SET_CLOCK, &c) < 0)
    return cl_error_errno (err, "KVM_SET_CLOCK");
  return 0;
}

int
cl_vmm_state_restore (struct vmm *m, const struct vmm_blobs *in, const char *where, bool live,
                      cl_error_t *err)
{
  struct vm *vm = m->vm;
  json_t *devices = json_object_get (m->saved, "devices");

  for (size_t i = 0; i < vm->npersist; i++)
    {
      json_t *s = json_object_get (devices, vm->persist[i].id);
      if (s == NULL && vm->persist[i].ops->absent_ok)
        continue;
      if (s == NULL)
        return cl_error_make (err, 0, "%s: no state for device `%s`", where, vm->persist[i].id);
      if (vm->persist[i].ops->restore (vm->persist[i].opaque, s, err) < 0)
        return cl_error_wrap (err, "restore `%s`", vm->persist[i].id);
    }
  cl_vmm_pci_bus_restore_bars (vm);
  if (machine_restore (vm, in, where, live, err) < 0)
    return -1;
  for (unsigned i = 0; i < vm->ncpus; i++)
    if (vcpu_restore (vm, &vm->vcpus[i], in, where, err) < 0)
      return -1;
  for (size_t i = 0; i < vm->npersist; i++)
    if (vm->persist[i].ops->resumed)
      vm->persist[i].ops->resumed (vm->persist[i].opaque);
  /* a snapshot restored (a template's clone, a VM rolled back) is a new
     generation of the machine; a migrated one goes on as the same */
  if (!live && m->pm && cl_vmm_acpi_vmgenid_new (m->pm, cl_vmm_vm_guest_mem (vm), err) < 0)
    return -1;
  return 0;
}

int
cl_vmm_snapshot_restore (struct vmm *m, const char *dir, cl_error_t *err)
{
  struct vmm_blobs blobs = { 0 };
  cleanup_free char *where = cl_strdup_printf ("snapshot `%s`", dir);
  int ret = -1;

  for (unsigned i = 0; i <= m->vm->ncpus; i++)
    {
      char name[32];
      char *buf;
      size_t len;
      if (i < m->vm->ncpus)
        snprintf (name, sizeof name, "vcpu%u", i);
      else
        snprintf (name, sizeof name, "machine");
      cleanup_free char *path = cl_strdup_printf ("%s/%s", dir, name);
      if (cl_read_file (path, &buf, &len, err) < 0)
        goto out;
      cl_vmm_blobs_add (&blobs, name, buf, len);
    }
  ret = cl_vmm_state_restore (m, &blobs, where, false, err);
out:
  cl_vmm_blobs_free (&blobs);
  return ret;
}
