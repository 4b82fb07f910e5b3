/* SPDX-License-Identifier: Apache-2.0 */
/* The devices controller: linux.resources.devices reduced to one policy,
   then written as v1 devices.allow/deny lists or built by hand into a
   BPF_PROG_TYPE_CGROUP_DEVICE program for cgroup v2 (as runc and crun do:
   no compiler, a dozen instruction kinds). */
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "container/cgroup_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Devices every container may use whatever the spec says, after runc's
   AllowedDevices: mknod of anything, and the standard character nodes. */
static const struct cl_dev_rule default_allowed[] = {
  { 'c', CL_DEV_WILDCARD, CL_DEV_WILDCARD, CL_DEV_ACC_MKNOD, true },
  { 'b', CL_DEV_WILDCARD, CL_DEV_WILDCARD, CL_DEV_ACC_MKNOD, true },
  { 'c', 1, 3, CL_DEV_ACC_ALL, true },   /* null */
  { 'c', 1, 8, CL_DEV_ACC_ALL, true },   /* random */
  { 'c', 1, 7, CL_DEV_ACC_ALL, true },   /* full */
  { 'c', 5, 0, CL_DEV_ACC_ALL, true },   /* tty */
  { 'c', 1, 5, CL_DEV_ACC_ALL, true },   /* zero */
  { 'c', 1, 9, CL_DEV_ACC_ALL, true },   /* urandom */
  { 'c', 136, CL_DEV_WILDCARD, CL_DEV_ACC_ALL, true }, /* pts */
  { 'c', 5, 2, CL_DEV_ACC_ALL, true },   /* ptmx */
};

static bool
rule_is_reset (const struct cl_dev_rule *r)
{
  return r->type == 'a' && r->major == CL_DEV_WILDCARD && r->minor == CL_DEV_WILDCARD
         && r->access == CL_DEV_ACC_ALL;
}

static bool
same_device (const struct cl_dev_rule *a, const struct cl_dev_rule *b)
{
  return a->type == b->type && a->major == b->major && a->minor == b->minor;
}

/* `wide` covers `narrow` without being the same entry. */
static bool
covers (const struct cl_dev_rule *wide, const struct cl_dev_rule *narrow)
{
  return wide->type == narrow->type && !same_device (wide, narrow)
         && (wide->major == CL_DEV_WILDCARD || wide->major == narrow->major)
         && (wide->minor == CL_DEV_WILDCARD || wide->minor == narrow->minor)
         && (wide->access & narrow->access);
}

int
cl_ctr_dev_policy_apply (struct cl_dev_policy *p, const struct cl_dev_rule *rule, const char *ctx,
                         cl_error_t *err)
{
  if (rule_is_reset (rule))
    {
      p->default_allow = rule->allow;
      p->n = 0;
      return 0;
    }
  if (rule->type == 'a')
    {
      /* "a" with a narrower scope means both kinds. */
      struct cl_dev_rule c = *rule, b = *rule;
      c.type = 'c';
      b.type = 'b';
      return cl_ctr_dev_policy_apply (p, &c, ctx, err) < 0
                 ? -1
                 : cl_ctr_dev_policy_apply (p, &b, ctx, err);
    }
  if (rule->allow == p->default_allow)
    {
      /* Takes access away from matching exceptions; a wildcard exception
         cannot lose a single device (the kernel would silently keep it). */
      for (size_t i = 0; i < p->n; i++)
        if (covers (&p->exceptions[i], rule))
          return cl_error_make (err, 0,
                                "%s: cannot %s part of a wildcard rule given earlier; list the "
                                "devices one by one instead",
                                ctx, rule->allow ? "allow" : "deny");
      for (size_t i = 0; i < p->n;)
        {
          if (same_device (&p->exceptions[i], rule))
            p->exceptions[i].access &= ~rule->access;
          if (p->exceptions[i].access == 0)
            p->exceptions[i] = p->exceptions[--p->n];
          else
            i++;
        }
      return 0;
    }
  for (size_t i = 0; i < p->n; i++)
    if (same_device (&p->exceptions[i], rule))
      {
        p->exceptions[i].access |= rule->access;
        return 0;
      }
  p->exceptions = realloc (p->exceptions, (p->n + 1) * sizeof *p->exceptions);
  if (p->exceptions == NULL)
    abort ();
  p->exceptions[p->n++] = *rule;
  return 0;
}

static int
parse_access (const char *s, unsigned *out)
{
  *out = 0;
  for (; *s; s++)
    switch (*s)
      {
      case 'r':
        *out |= CL_DEV_ACC_READ;
        break;
      case 'w':
        *out |= CL_DEV_ACC_WRITE;
        break;
      case 'm':
        *out |= CL_DEV_ACC_MKNOD;
        break;
      default:
        return -1;
      }
  return 0;
}

/* Major or minor: absent/null or -1 is the wildcard. */
static int
parse_number (json_t *obj, const char *ctx, const char *key, int64_t *out, cl_error_t *err)
{
  *out = CL_DEV_WILDCARD;
  if (cl_json_int64 (obj, ctx, key, out, err) < 0)
    return -1;
  if (*out < -1 || *out > 0xffffffffLL)
    return cl_error_make (err, 0, "%s.%s: %lld is out of range", ctx, key, (long long) *out);
  return 0;
}

static int
parse_resource_rule (json_t *entry, const char *ctx, struct cl_dev_rule *rule, cl_error_t *err)
{
  const char *type = "a", *access = "rwm";
  bool allow;
  int r;

  if (!json_is_object (entry))
    return cl_error_make (err, 0, "%s: expected an object", ctx);
  r = cl_json_bool (entry, ctx, "allow", &allow, err);
  if (r < 0)
    return -1;
  if (r == 0)
    return cl_error_make (err, 0, "%s.allow: missing", ctx);
  if (cl_json_string (entry, ctx, "type", &type, err) < 0
      || cl_json_string (entry, ctx, "access", &access, err) < 0)
    return -1;
  if (strlen (type) != 1 || strchr ("acb", type[0]) == NULL)
    return cl_error_make (err, 0, "%s.type: unknown device type `%s`", ctx, type);
  rule->type = type[0];
  rule->allow = allow;
  if (parse_access (access, &rule->access) < 0)
    return cl_error_make (err, 0, "%s.access: `%s` is not a combination of r, w and m", ctx,
                          access);
  if (rule->access == 0)
    rule->access = CL_DEV_ACC_ALL;
  if (parse_number (entry, ctx, "major", &rule->major, err) < 0
      || parse_number (entry, ctx, "minor", &rule->minor, err) < 0)
    return -1;
  return 0;
}

/* linux.devices[i]: the node the runtime creates is also allowed. */
static int
parse_linux_device (json_t *entry, const char *ctx, struct cl_dev_rule *rule, bool *skip,
                    cl_error_t *err)
{
  const char *type = NULL;
  *skip = false;
  if (!json_is_object (entry))
    return cl_error_make (err, 0, "%s: expected an object", ctx);
  if (cl_json_string (entry, ctx, "type", &type, err) < 0)
    return -1;
  if (type == NULL)
    return cl_error_make (err, 0, "%s.type: missing", ctx);
  if (strcmp (type, "p") == 0)
    {
      *skip = true; /* FIFOs are not device nodes */
      return 0;
    }
  if (strcmp (type, "c") != 0 && strcmp (type, "u") != 0 && strcmp (type, "b") != 0)
    return cl_error_make (err, 0, "%s.type: unknown device type `%s`", ctx, type);
  rule->type = type[0] == 'b' ? 'b' : 'c';
  rule->access = CL_DEV_ACC_ALL;
  rule->allow = true;
  if (parse_number (entry, ctx, "major", &rule->major, err) < 0
      || parse_number (entry, ctx, "minor", &rule->minor, err) < 0)
    return -1;
  return 0;
}

int
cl_ctr_dev_policy_build (json_t *resource_devices, json_t *linux_devices, struct cl_dev_policy *p,
                         cl_error_t *err)
{
  json_t *entry;
  size_t i;

  /* Nothing listed means nothing allowed but the defaults. */
  *p = (struct cl_dev_policy){ .default_allow = false };
  if (resource_devices && !json_is_array (resource_devices))
    return cl_error_make (err, 0, "linux.resources.devices: expected an array");
  if (linux_devices && !json_is_array (linux_devices))
    return cl_error_make (err, 0, "linux.devices: expected an array");
  json_array_foreach (resource_devices, i, entry)
  {
    cleanup_free char *ctx = cl_strdup_printf ("linux.resources.devices[%zu]", i);
    struct cl_dev_rule rule;
    if (parse_resource_rule (entry, ctx, &rule, err) < 0
        || cl_ctr_dev_policy_apply (p, &rule, ctx, err) < 0)
      goto fail;
  }
  for (i = 0; i < sizeof default_allowed / sizeof default_allowed[0]; i++)
    if (cl_ctr_dev_policy_apply (p, &default_allowed[i], "default devices", err) < 0)
      goto fail;
  json_array_foreach (linux_devices, i, entry)
  {
    cleanup_free char *ctx = cl_strdup_printf ("linux.devices[%zu]", i);
    struct cl_dev_rule rule;
    bool skip;
    if (parse_linux_device (entry, ctx, &rule, &skip, err) < 0)
      goto fail;
    if (!skip && cl_ctr_dev_policy_apply (p, &rule, ctx, err) < 0)
      goto fail;
  }
  return 0;

fail:
  free (p->exceptions);
  p->exceptions = NULL;
  p->n = 0;
  return -1;
}

/* v1 */

static void
format_rule (const struct cl_dev_rule *r, char *buf, size_t size)
{
  char major[24] = "*", minor[24] = "*", access[4];
  size_t k = 0;
  if (r->major != CL_DEV_WILDCARD)
    snprintf (major, sizeof major, "%lld", (long long) r->major);
  if (r->minor != CL_DEV_WILDCARD)
    snprintf (minor, sizeof minor, "%lld", (long long) r->minor);
  if (r->access & CL_DEV_ACC_READ)
    access[k++] = 'r';
  if (r->access & CL_DEV_ACC_WRITE)
    access[k++] = 'w';
  if (r->access & CL_DEV_ACC_MKNOD)
    access[k++] = 'm';
  access[k] = '\0';
  snprintf (buf, size, "%c %s:%s %s", r->type, major, minor, access);
}

static int
write_dev_line (int fd, const char *dir, const char *file, const char *line, cl_error_t *err)
{
  if (fd < 0 || write (fd, line, strlen (line)) < 0)
    return cl_error_errno (err, "linux.resources.devices: write `%s` to `%s/%s`", line, dir, file);
  return 0;
}

int
cl_ctr_dev_v1_apply (const struct cl_dev_policy *p, const char *dir, cl_error_t *err)
{
  cleanup_close int dirfd = open (dir, O_DIRECTORY | O_PATH | O_CLOEXEC);
  cleanup_close int reset_fd = -1, exception_fd = -1;
  const char *reset = p->default_allow ? "devices.allow" : "devices.deny";
  const char *exception = p->default_allow ? "devices.deny" : "devices.allow";

  if (dirfd < 0)
    return cl_error_errno (err, "open `%s`", dir);
  reset_fd = openat (dirfd, reset, O_WRONLY | O_CLOEXEC);
  if (write_dev_line (reset_fd, dir, reset, "a", err) < 0)
    return -1;
  /* One open file for every exception: each write() is one rule. */
  if (p->n > 0)
    exception_fd = openat (dirfd, exception, O_WRONLY | O_CLOEXEC);
  for (size_t i = 0; i < p->n; i++)
    {
      char line[80];
      format_rule (&p->exceptions[i], line, sizeof line);
      if (write_dev_line (exception_fd, dir, exception, line, err) < 0)
        return -1;
    }
  return 0;
}

/* v2: the program.  Registers after the prologue: r2 device type, r3
   requested access, r4 major, r5 minor; r1 is scratch. */

#define INSN(c, d, s, o, i)                                                                        \
  ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define LDX_W(dst, src, off) INSN (BPF_LDX | BPF_W | BPF_MEM, dst, src, off, 0)
#define ALU32_IMM(op, dst, imm) INSN (BPF_ALU | (op) | BPF_K, dst, 0, 0, imm)
#define MOV32_REG(dst, src) INSN (BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
#define MOV64_IMM(dst, imm) INSN (BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define JMP32_IMM(op, dst, imm, off) INSN (BPF_JMP32 | (op) | BPF_K, dst, 0, off, imm)
#define EXIT_INSN() INSN (BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* BPF_DEVCG_ACC_* and BPF_DEVCG_DEV_* from linux/bpf.h. */
static int
bpf_access (unsigned access)
{
  return ((access & CL_DEV_ACC_MKNOD) ? BPF_DEVCG_ACC_MKNOD : 0)
         | ((access & CL_DEV_ACC_READ) ? BPF_DEVCG_ACC_READ : 0)
         | ((access & CL_DEV_ACC_WRITE) ? BPF_DEVCG_ACC_WRITE : 0);
}

int
cl_ctr_dev_bpf_build (const struct cl_dev_policy *p, struct bpf_insn **out, size_t *n_out,
                      cl_error_t *err)
{
  /* 6 prologue + at most 8 per exception + 2 epilogue */
  struct bpf_insn *prog = calloc (8 + 8 * p->n, sizeof *prog);
  size_t n = 0;

  if (prog == NULL)
    return cl_error_make (err, ENOMEM, "devices program");
  prog[n++] = LDX_W (BPF_REG_2, BPF_REG_1, 0);
  prog[n++] = ALU32_IMM (BPF_AND, BPF_REG_2, 0xffff);
  prog[n++] = LDX_W (BPF_REG_3, BPF_REG_1, 0);
  prog[n++] = ALU32_IMM (BPF_RSH, BPF_REG_3, 16);
  prog[n++] = LDX_W (BPF_REG_4, BPF_REG_1, 4);
  prog[n++] = LDX_W (BPF_REG_5, BPF_REG_1, 8);

  for (size_t i = 0; i < p->n; i++)
    {
      const struct cl_dev_rule *r = &p->exceptions[i];
      size_t jumps[4], n_jumps = 0;
      int access = bpf_access (r->access);

      if (r->type != 'a')
        {
          jumps[n_jumps++] = n;
          prog[n++] = JMP32_IMM (BPF_JNE, BPF_REG_2,
                                 r->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, 0);
        }
      if (r->access != CL_DEV_ACC_ALL)
        {
          prog[n++] = MOV32_REG (BPF_REG_1, BPF_REG_3);
          jumps[n_jumps++] = n + 1;
          if (p->default_allow)
            {
              /* A deny exception matches as soon as one requested kind of
                 access is denied. */
              prog[n++] = ALU32_IMM (BPF_AND, BPF_REG_1, access);
              prog[n++] = JMP32_IMM (BPF_JEQ, BPF_REG_1, 0, 0);
            }
          else
            {
              /* An allow exception must cover every requested kind. */
              prog[n++] = ALU32_IMM (BPF_AND, BPF_REG_1, ~access);
              prog[n++] = JMP32_IMM (BPF_JNE, BPF_REG_1, 0, 0);
            }
        }
      if (r->major != CL_DEV_WILDCARD)
        {
          jumps[n_jumps++] = n;
          prog[n++] = JMP32_IMM (BPF_JNE, BPF_REG_4, (int32_t) r->major, 0);
        }
      if (r->minor != CL_DEV_WILDCARD)
        {
          jumps[n_jumps++] = n;
          prog[n++] = JMP32_IMM (BPF_JNE, BPF_REG_5, (int32_t) r->minor, 0);
        }
      prog[n++] = MOV64_IMM (BPF_REG_0, p->default_allow ? 0 : 1);
      prog[n++] = EXIT_INSN ();
      /* A failed test skips to the next exception. */
      for (size_t j = 0; j < n_jumps; j++)
        prog[jumps[j]].off = (int16_t) (n - jumps[j] - 1);
    }
  prog[n++] = MOV64_IMM (BPF_REG_0, p->default_allow ? 1 : 0);
  prog[n++] = EXIT_INSN ();
  *out = prog;
  *n_out = n;
  return 0;
}

static int
sys_bpf (int cmd, union bpf_attr *attr)
{
  return (int) syscall (SYS_bpf, cmd, attr, sizeof *attr);
}

static int
prog_id_of_fd (int fd, uint32_t *id)
{
  struct bpf_prog_info info = { 0 };
  union bpf_attr attr = { 0 };
  attr.info.bpf_fd = fd;
  attr.info.info_len = sizeof info;
  attr.info.info = (uint64_t) (uintptr_t) &info;
  if (sys_bpf (BPF_OBJ_GET_INFO_BY_FD, &attr) < 0)
    return -1;
  *id = info.id;
  return 0;
}

/* Detaches every device program of the cgroup but `keep_id` (the earlier
   version of ours, after an update). */
static void
detach_others (int cgfd, uint32_t keep_id)
{
  uint32_t ids[64];
  union bpf_attr attr = { 0 };
  attr.query.target_fd = cgfd;
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = (uint64_t) (uintptr_t) ids;
  attr.query.prog_cnt = 64;
  if (sys_bpf (BPF_PROG_QUERY, &attr) < 0)
    return;
  for (uint32_t i = 0; i < attr.query.prog_cnt && i < 64; i++)
    {
      union bpf_attr get = { 0 }, det = { 0 };
      int fd;
      if (ids[i] == keep_id)
        continue;
      get.prog_id = ids[i];
      fd = sys_bpf (BPF_PROG_GET_FD_BY_ID, &get);
      if (fd < 0)
        continue;
      det.target_fd = cgfd;
      det.attach_bpf_fd = fd;
      det.attach_type = BPF_CGROUP_DEVICE;
      sys_bpf (BPF_PROG_DETACH, &det);
      close (fd);
    }
}

int
cl_ctr_dev_bpf_attach (const struct bpf_insn *insns, size_t n, const char *dir, cl_error_t *err)
{
  static char log[4096];
  cleanup_close int cgfd = open (dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  cleanup_close int progfd = -1;
  union bpf_attr attr = { 0 };
  uint32_t id = 0;

  if (cgfd < 0)
    return cl_error_errno (err, "open `%s`", dir);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uint64_t) (uintptr_t) insns;
  attr.insn_cnt = (uint32_t) n;
  attr.license = (uint64_t) (uintptr_t) "GPL";
  progfd = sys_bpf (BPF_PROG_LOAD, &attr);
  if (progfd < 0)
    {
      int saved = errno;
      /* Again with the verifier's log, for the message. */
      attr.log_buf = (uint64_t) (uintptr_t) log;
      attr.log_size = sizeof log;
      attr.log_level = 1;
      log[0] = '\0';
      if (sys_bpf (BPF_PROG_LOAD, &attr) < 0 && log[0])
        {
          char *nl = strchr (log, '\n');
          if (nl)
            *nl = '\0';
          return cl_error_make (err, saved, "linux.resources.devices: load the device program (%s)",
                                log);
        }
      return cl_error_make (err, saved, "linux.resources.devices: load the device program");
    }
  memset (&attr, 0, sizeof attr);
  attr.target_fd = cgfd;
  attr.attach_bpf_fd = progfd;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf (BPF_PROG_ATTACH, &attr) < 0)
    return cl_error_errno (err, "linux.resources.devices: attach the device program to `%s`", dir);
  if (prog_id_of_fd (progfd, &id) == 0)
    detach_others (cgfd, id);
  return 0;
}
