/* SPDX-License-Identifier: Apache-2.0 */
/* Validators, the BPF device program (run here by a small interpreter,
   and through the kernel's verifier as root), and, as root, the real
   thing: a seccomp filter, capabilities and a cgroup applied in forked
   children. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/error.h"
#include "common/json.h"
#include "common/util.h"
#include "container/caps.h"
#include "container/cgroup.h"
#include "container/cgroup_internal.h"
#include "container/seccomp.h"

static json_t *
parse (const char *text)
{
  json_t *j = NULL;
  cl_error_t err = NULL;
  if (cl_json_load_buffer ("test", text, strlen (text), &j, &err) < 0)
    fail_msg ("bad test JSON: %s", err->msg);
  return j;
}

/* Runs validator on the JSON and checks the error message contains want
   (NULL: must pass). */
static void
expect (int (*validate) (json_t *, cl_error_t *), const char *text, const char *want)
{
  json_t *j = parse (text);
  cl_error_t err = NULL;
  int r = validate (j, &err);
  if (want == NULL)
    {
      if (r < 0)
        fail_msg ("%s: unexpected error: %s", text, err->msg);
    }
  else
    {
      if (r == 0)
        fail_msg ("%s: accepted, expected `%s`", text, want);
      if (strstr (err->msg, want) == NULL)
        fail_msg ("%s: error `%s` lacks `%s`", text, err->msg, want);
    }
  cl_error_release (&err);
  json_decref (j);
}

static void
test_cgroup_validate (void **state)
{
  (void) state;
  expect (cl_ctr_cgroup_validate, "{\"resources\": {\"memory\": {\"limit\": \"1M\"}}}",
          "linux.resources.memory.limit: expected an integer, got string");
  expect (cl_ctr_cgroup_validate,
          "{\"resources\": {\"devices\": [{\"allow\": false}, {\"allow\": true, \"type\": \"c\"}, "
          "{\"allow\": true, \"type\": \"q\"}]}}",
          "linux.resources.devices[2].type: unknown device type `q`");
  expect (cl_ctr_cgroup_validate,
          "{\"resources\": {\"devices\": [{\"allow\": true, \"access\": \"rwx\"}]}}",
          "linux.resources.devices[0].access");
  expect (cl_ctr_cgroup_validate, "{\"resources\": {\"devices\": [{\"type\": \"c\"}]}}",
          "linux.resources.devices[0].allow: missing");
  expect (cl_ctr_cgroup_validate,
          "{\"resources\": {\"memory\": {\"limit\": 2097152, \"swap\": 1048576}}}",
          "linux.resources.memory.swap");
  expect (cl_ctr_cgroup_validate,
          "{\"resources\": {\"memory\": {\"limit\": 2097152, \"swap\": -1}}}", NULL);
  expect (cl_ctr_cgroup_validate, "{\"resources\": {\"memory\": {\"limit\": -5}}}",
          "linux.resources.memory.limit: -5 is out of range");
  expect (cl_ctr_cgroup_validate, "{\"resources\": {\"pids\": {}}}",
          "linux.resources.pids.limit: missing");
  expect (cl_ctr_cgroup_validate, "{\"resources\": {\"cpu\": {\"shares\": -1}}}",
          "linux.resources.cpu.shares: expected an unsigned integer");
  expect (cl_ctr_cgroup_validate, "{\"resources\": {\"cpu\": {\"cpus\": \"0-1;rm\"}}}",
          "linux.resources.cpu.cpus");
  expect (cl_ctr_cgroup_validate, "{\"resources\": {\"cpu\": {\"period\": 10}}}",
          "linux.resources.cpu.period");
  expect (cl_ctr_cgroup_validate, "{\"resources\": {\"blockIO\": {\"weight\": 5000}}}",
          "linux.resources.blockIO.weight");
  expect (cl_ctr_cgroup_validate, "{\"resources\": {\"unified\": {\"../x\": \"1\"}}}",
          "linux.resources.unified.../x");
  expect (cl_ctr_cgroup_validate,
          "{\"resources\": {\"hugepageLimits\": [{\"pageSize\": \"2MB\", \"limit\": \"x\"}]}}",
          "linux.resources.hugepageLimits[0].limit");
  expect (cl_ctr_cgroup_validate, "{\"cgroupsPath\": \"system.slice:cloison:abc\"}",
          "--systemd-cgroup");
  expect (cl_ctr_cgroup_validate, "{\"cgroupsPath\": \"/a/../b\"}", "linux.cgroupsPath");
  expect (cl_ctr_cgroup_validate, "{\"cgroupsPath\": \"a/./b\"}", "linux.cgroupsPath");
  expect (cl_ctr_cgroup_validate, "{\"cgroupsPath\": \"//\"}",
          "linux.cgroupsPath: `//` names no cgroup");
  expect (cl_ctr_cgroup_validate, "{\"cgroupsPath\": \"/a..b/c.d\"}", NULL);
  expect (cl_ctr_cgroup_validate, "{\"devices\": [{\"path\": \"/dev/x\", \"type\": \"z\"}]}",
          "linux.devices[0].type: unknown device type `z`");
  expect (
      cl_ctr_cgroup_validate,
      "{\"cgroupsPath\": \"/x/y\", \"resources\": {\"memory\": {\"limit\": 1048576, "
      "\"reservation\": 1024, \"swappiness\": 10}, \"cpu\": {\"shares\": 512, \"quota\": 50000, "
      "\"period\": 100000, \"cpus\": \"0\", \"mems\": \"0\"}, \"pids\": {\"limit\": 10}, "
      "\"blockIO\": {\"weight\": 100}, \"unified\": {\"memory.high\": \"max\"}, \"devices\": "
      "[{\"allow\": false, \"access\": \"rwm\"}, {\"allow\": true, \"type\": \"c\", \"major\": "
      "10, \"minor\": 200, \"access\": \"rw\"}]}}",
      NULL);
}

static void
test_seccomp_validate (void **state)
{
  (void) state;
  expect (cl_ctr_seccomp_validate, "{\"defaultAction\": \"SCMP_ACT_FOO\"}",
          "linux.seccomp.defaultAction: unknown action `SCMP_ACT_FOO`");
  expect (cl_ctr_seccomp_validate, "{}", "linux.seccomp.defaultAction: missing");
  expect (cl_ctr_seccomp_validate,
          "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_X86_64\", "
          "\"SCMP_ARCH_Z80\"]}",
          "linux.seccomp.architectures[1]: unknown architecture `SCMP_ARCH_Z80`");
  expect (cl_ctr_seccomp_validate,
          "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"getpid\"], "
          "\"action\": \"SCMP_ACT_ERRNO\"}, {\"names\": [\"read\", \"no_such_call\"], "
          "\"action\": \"SCMP_ACT_ERRNO\"}]}",
          "linux.seccomp.syscalls[1].names[1]: unknown syscall `no_such_call`");
  expect (cl_ctr_seccomp_validate,
          "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], "
          "\"action\": \"SCMP_ACT_KILLL\"}]}",
          "linux.seccomp.syscalls[0].action: unknown action `SCMP_ACT_KILLL`");
  expect (cl_ctr_seccomp_validate,
          "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], "
          "\"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": 1, \"op\": "
          "\"SCMP_CMP_ALMOST\"}]}]}",
          "linux.seccomp.syscalls[0].args[0].op: unknown operator `SCMP_CMP_ALMOST`");
  expect (cl_ctr_seccomp_validate,
          "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], "
          "\"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 7, \"value\": 1, \"op\": "
          "\"SCMP_CMP_EQ\"}]}]}",
          "linux.seccomp.syscalls[0].args[0].index");
  expect (cl_ctr_seccomp_validate,
          "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": [\"SECCOMP_FILTER_FLAG_BOGUS\"]}",
          "linux.seccomp.flags[0]: unknown flag");
  expect (cl_ctr_seccomp_validate,
          "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"mkdir\"], "
          "\"action\": \"SCMP_ACT_NOTIFY\"}]}",
          "linux.seccomp.listenerPath: required");
  expect (cl_ctr_seccomp_validate, "{\"defaultAction\": \"SCMP_ACT_NOTIFY\"}",
          "linux.seccomp.defaultAction");
  /* Names of other architectures are fine (podman's profile lists them). */
  expect (cl_ctr_seccomp_validate,
          "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 38, \"architectures\": "
          "[\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"], \"flags\": "
          "[\"SECCOMP_FILTER_FLAG_LOG\"], \"syscalls\": [{\"names\": [\"read\", \"socketcall\", "
          "\"chown32\", \"pciconfig_read\"], \"action\": \"SCMP_ACT_ALLOW\"}, {\"names\": "
          "[\"personality\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 0, \"value\": "
          "0, \"op\": \"SCMP_CMP_EQ\"}, {\"index\": 0, \"value\": 8, \"op\": \"SCMP_CMP_EQ\"}]}]}",
          NULL);
}

static void
test_caps_validate (void **state)
{
  (void) state;
  expect (cl_ctr_caps_validate,
          "{\"bounding\": [\"CAP_CHOWN\"], \"ambient\": [\"CAP_KILL\", \"CAP_FLY\"]}",
          "process.capabilities.ambient[1]: unknown capability `CAP_FLY`");
  expect (cl_ctr_caps_validate, "{\"effective\": [\"chown\"]}",
          "process.capabilities.effective[0]: unknown capability `chown`");
  expect (cl_ctr_caps_validate, "{\"permitted\": \"CAP_CHOWN\"}", "process.capabilities.permitted");
  expect (cl_ctr_caps_validate,
          "{\"bounding\": [\"CAP_CHOWN\", \"CAP_SYS_ADMIN\", \"CAP_CHECKPOINT_RESTORE\"], "
          "\"effective\": [\"CAP_CHOWN\"], \"inheritable\": [], \"permitted\": [\"CAP_CHOWN\"], "
          "\"ambient\": []}",
          NULL);
}

/* A small interpreter for the instruction kinds cl_ctr_dev_bpf_build emits. */
static int
bpf_run (const struct bpf_insn *prog, size_t n, uint32_t ctx[3])
{
  uint64_t r[11] = { 0 };
  for (size_t pc = 0; pc < n; pc++)
    {
      const struct bpf_insn *i = &prog[pc];
      uint8_t cls = BPF_CLASS (i->code), op = BPF_OP (i->code);
      switch (cls)
        {
        case BPF_LDX:
          assert_int_equal (i->src_reg, BPF_REG_1);
          r[i->dst_reg] = ctx[i->off / 4];
          break;
        case BPF_ALU:
          {
            uint32_t a = (uint32_t) r[i->dst_reg];
            uint32_t b = BPF_SRC (i->code) == BPF_X ? (uint32_t) r[i->src_reg] : (uint32_t) i->imm;
            if (op == BPF_AND)
              a &= b;
            else if (op == BPF_RSH)
              a >>= b;
            else if (op == BPF_MOV)
              a = b;
            else
              fail_msg ("alu op %x", op);
            r[i->dst_reg] = a;
            break;
          }
        case BPF_ALU64:
          assert_int_equal (op, BPF_MOV);
          r[i->dst_reg] = (uint64_t) (int64_t) i->imm;
          break;
        case BPF_JMP32:
          {
            uint32_t a = (uint32_t) r[i->dst_reg];
            bool taken = op == BPF_JNE ? a != (uint32_t) i->imm : a == (uint32_t) i->imm;
            assert_true (op == BPF_JNE || op == BPF_JEQ);
            if (taken)
              pc += i->off;
            break;
          }
        case BPF_JMP:
          assert_int_equal (op, BPF_EXIT);
          return (int) r[0];
        default:
          fail_msg ("class %x", cls);
        }
    }
  fail_msg ("fell off the program");
  return -1;
}

static int
dev_check (const struct bpf_insn *prog, size_t n, char type, uint32_t major, uint32_t minor,
           const char *access)
{
  uint32_t acc = 0, ctx[3];
  for (; *access; access++)
    acc |= *access == 'r' ? BPF_DEVCG_ACC_READ : *access == 'w' ? BPF_DEVCG_ACC_WRITE : BPF_DEVCG_ACC_MKNOD;
  ctx[0] = (acc << 16) | (type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK);
  ctx[1] = major;
  ctx[2] = minor;
  return bpf_run (prog, n, ctx);
}

static void
build_program (const char *devices, const char *linux_devices, struct bpf_insn **prog, size_t *n,
               struct cl_dev_policy *policy)
{
  json_t *d = devices ? parse (devices) : NULL, *ld = linux_devices ? parse (linux_devices) : NULL;
  cl_error_t err = NULL;
  if (cl_ctr_dev_policy_build (d, ld, policy, &err) < 0)
    fail_msg ("%s", err->msg);
  assert_int_equal (cl_ctr_dev_bpf_build (policy, prog, n, &err), 0);
  json_decref (d);
  json_decref (ld);
}

static void
test_bpf_device_program (void **state)
{
  struct bpf_insn *prog = NULL;
  size_t n = 0;
  struct cl_dev_policy p;
  (void) state;

  /* Deny all, allow 10:200 rw, then runc's defaults and one linux.devices
     node. */
  build_program ("[{\"allow\": false, \"access\": \"rwm\"}, {\"allow\": true, \"type\": \"c\", "
                 "\"major\": 10, \"minor\": 200, \"access\": \"rw\"}]",
                 "[{\"path\": \"/dev/sda\", \"type\": \"b\", \"major\": 8, \"minor\": 0}]", &prog,
                 &n, &p);
  assert_false (p.default_allow);
  assert_int_equal (dev_check (prog, n, 'c', 10, 200, "rw"), 1);
  assert_int_equal (dev_check (prog, n, 'c', 10, 200, "r"), 1);
  assert_int_equal (dev_check (prog, n, 'c', 10, 201, "r"), 0);
  assert_int_equal (dev_check (prog, n, 'b', 10, 200, "r"), 0);
  assert_int_equal (dev_check (prog, n, 'c', 1, 3, "rw"), 1);   /* /dev/null */
  assert_int_equal (dev_check (prog, n, 'c', 136, 7, "rw"), 1); /* a pts */
  assert_int_equal (dev_check (prog, n, 'c', 4, 1, "m"), 1);    /* mknod anything */
  assert_int_equal (dev_check (prog, n, 'c', 4, 1, "rm"), 0);
  assert_int_equal (dev_check (prog, n, 'b', 8, 0, "rwm"), 1);
  assert_int_equal (dev_check (prog, n, 'b', 8, 1, "r"), 0);
  assert_int_equal (dev_check (prog, n, 'c', 1, 1, "r"), 0); /* /dev/mem */
  free (prog);
  free (p.exceptions);

  /* Allow all, then deny writes to 1:3: a deny-list. */
  build_program ("[{\"allow\": true}, {\"allow\": false, \"type\": \"b\", \"major\": 7, \"access\": \"w\"}]",
                 NULL, &prog, &n, &p);
  assert_true (p.default_allow);
  assert_int_equal (dev_check (prog, n, 'b', 7, 3, "w"), 0);
  assert_int_equal (dev_check (prog, n, 'b', 7, 3, "rw"), 0);
  assert_int_equal (dev_check (prog, n, 'b', 7, 3, "r"), 1);
  assert_int_equal (dev_check (prog, n, 'c', 7, 3, "w"), 1);
  free (prog);
  free (p.exceptions);

  /* A later rule takes back what an earlier one gave. */
  build_program ("[{\"allow\": false}, {\"allow\": true, \"type\": \"c\", \"major\": 10, \"minor\": 229, "
                 "\"access\": \"rwm\"}, {\"allow\": false, \"type\": \"c\", \"major\": 10, \"minor\": 229, "
                 "\"access\": \"w\"}]",
                 NULL, &prog, &n, &p);
  assert_int_equal (dev_check (prog, n, 'c', 10, 229, "r"), 1);
  assert_int_equal (dev_check (prog, n, 'c', 10, 229, "rw"), 0);
  free (prog);
  free (p.exceptions);

  /* The kernel's verifier agrees (root only). */
  if (geteuid () == 0)
    {
      union bpf_attr attr = { 0 };
      int fd;
      build_program ("[{\"allow\": false}]", NULL, &prog, &n, &p);
      attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
      attr.insns = (uint64_t) (uintptr_t) prog;
      attr.insn_cnt = (uint32_t) n;
      attr.license = (uint64_t) (uintptr_t) "GPL";
      fd = (int) syscall (SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
      if (fd < 0)
        fail_msg ("BPF_PROG_LOAD: %s", strerror (errno));
      close (fd);
      free (prog);
      free (p.exceptions);
    }
}

static void
test_dev_hole_in_wildcard (void **state)
{
  (void) state;
  expect (
      cl_ctr_cgroup_validate,
      "{\"resources\": {\"devices\": [{\"allow\": false}, {\"allow\": true, \"type\": \"c\", "
      "\"access\": \"rwm\"}, {\"allow\": false, \"type\": \"c\", \"major\": 1, \"minor\": 1}]}}",
      "linux.resources.devices[2]: cannot deny part of a wildcard rule");
}

/* Resource files written into fake cgroup directories (plain files): the
   v1/v2 names and conversions, and the per-controller choice of a hybrid
   host, checked on any machine. */
/* A hierarchy at base/name (with cgroup.controllers when `controllers`)
   holding the container directory c with empty `files`. */
static char *
fake_dir (const char *base, const char *name, const char *controllers, const char *const *files)
{
  char *dir = cl_strdup_printf ("%s/%s", base, name);
  char *leaf = cl_strdup_printf ("%s/c", dir);
  cl_error_t err = NULL;
  assert_int_equal (cl_mkdir_p (leaf, 0755, &err), 0);
  if (controllers)
    {
      char *f = cl_strdup_printf ("%s/cgroup.controllers", dir);
      assert_int_equal (cl_write_file (f, controllers, strlen (controllers), 0, &err), 0);
      free (f);
    }
  for (; *files; files++)
    {
      char *f = cl_strdup_printf ("%s/%s", leaf, *files);
      assert_int_equal (cl_write_file (f, "", 0, 0, &err), 0);
      free (f);
    }
  free (leaf);
  return dir;
}

static void
expect_file (const char *dir, const char *file, const char *want)
{
  char *path = cl_strdup_printf ("%s/c/%s", dir, file), *text = NULL;
  cl_error_t err = NULL;
  if (cl_read_file (path, &text, NULL, &err) < 0)
    fail_msg ("%s", err->msg);
  if (strcmp (text, want) != 0)
    fail_msg ("%s: `%s`, expected `%s`", path, text, want);
  free (text);
  free (path);
}

static void
update_ok (struct cl_cgroup *cg, json_t *res)
{
  cl_error_t err = NULL;
  if (cl_ctr_cgroup_update (cg, res, &err) < 0)
    fail_msg ("%s", err->msg);
}

static struct cl_cgroup *
fake_cgroup (const char *mode, json_t *dirs)
{
  json_t *saved = json_pack ("{s:s, s:o}", "mode", mode, "dirs", dirs);
  struct cl_cgroup *cg = NULL;
  cl_error_t err = NULL;
  if (cl_ctr_cgroup_load (saved, &cg, &err) < 0)
    fail_msg ("%s", err->msg);
  json_decref (saved);
  return cg;
}

static json_t *
fake_entry (const char *controllers, const char *mount, bool v2)
{
  char *path = cl_strdup_printf ("%s/c", mount);
  json_t *e = json_pack ("{s:s, s:s, s:s, s:i, s:b}", "controllers", controllers, "mount", mount,
                         "path", path, "created", 1, "v2", v2);
  free (path);
  return e;
}

static void
test_resource_files (void **state)
{
  char base[] = "/tmp/limits-fake-XXXXXX";
  static const char *const mem_v1[] = { "memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
                                        "memory.soft_limit_in_bytes", NULL };
  static const char *const cpu_v1[] = { "cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", NULL };
  static const char *const pids[] = { "pids.max", NULL };
  static const char *const unified_hybrid[] = { "hugetlb.2MB.max", NULL };
  static const char *const v2[]
      = { "memory.max", "memory.swap.max", "memory.low", "memory.high", "cpu.weight", "cpu.max",
          "pids.max", "io.weight", "hugetlb.2MB.max", "cpuset.cpus", NULL };
  const char *res_text
      = "{\"memory\": {\"limit\": 1048576, \"swap\": 3145728, \"reservation\": 524288}, "
        "\"cpu\": {\"shares\": 1024, \"quota\": 20000, \"period\": 100000}, \"pids\": "
        "{\"limit\": 0}, \"hugepageLimits\": [{\"pageSize\": \"2MB\", \"limit\": 4194304}]}";
  json_t *res = parse (res_text);
  cl_error_t err = NULL;
  struct cl_cgroup *cg;
  char *mem, *cpu, *pid, *uni, *all;
  (void) state;

  assert_non_null (mkdtemp (base));
  /* hybrid: memory, cpu and pids in v1; hugetlb only in the unified mount */
  mem = fake_dir (base, "memory", NULL, mem_v1);
  cpu = fake_dir (base, "cpu,cpuacct", NULL, cpu_v1);
  pid = fake_dir (base, "pids", NULL, pids);
  uni = fake_dir (base, "unified", "hugetlb\n", unified_hybrid);
  cg = fake_cgroup ("hybrid", json_pack ("[o, o, o, o]", fake_entry ("memory", mem, false),
                                         fake_entry ("cpu,cpuacct", cpu, false),
                                         fake_entry ("pids", pid, false),
                                         fake_entry ("", uni, true)));
  update_ok (cg, res);
  expect_file (mem, "memory.limit_in_bytes", "1048576");
  expect_file (mem, "memory.memsw.limit_in_bytes", "3145728");
  expect_file (mem, "memory.soft_limit_in_bytes", "524288");
  expect_file (cpu, "cpu.shares", "1024");
  expect_file (cpu, "cpu.cfs_quota_us", "20000");
  expect_file (cpu, "cpu.cfs_period_us", "100000");
  expect_file (pid, "pids.max", "max");
  expect_file (uni, "hugetlb.2MB.max", "4194304");
  cl_ctr_cgroup_free (cg);

  /* v2: one directory, converted values */
  all = fake_dir (base, "v2", "cpuset cpu io memory hugetlb pids\n", v2);
  cg = fake_cgroup ("v2", json_pack ("[o]", fake_entry ("", all, true)));
  update_ok (cg, res);
  json_decref (res);
  res = parse ("{\"blockIO\": {\"weight\": 100}, \"unified\": {\"memory.high\": \"917504\"}, "
               "\"cpu\": {\"cpus\": \"0-1\"}}");
  update_ok (cg, res);
  expect_file (all, "memory.max", "1048576");
  expect_file (all, "memory.swap.max", "2097152");
  expect_file (all, "memory.low", "524288");
  expect_file (all, "memory.high", "917504");
  expect_file (all, "cpu.weight", "39");
  expect_file (all, "cpu.max", "20000 100000");
  expect_file (all, "pids.max", "max");
  expect_file (all, "io.weight", "910");
  expect_file (all, "hugetlb.2MB.max", "4194304");
  expect_file (all, "cpuset.cpus", "0-1");
  json_decref (res);

  /* realtime does not exist in v2, and the error names the field */
  res = parse ("{\"cpu\": {\"realtimeRuntime\": 1000}}");
  assert_true (cl_ctr_cgroup_update (cg, res, &err) < 0);
  assert_non_null (strstr (err->msg, "linux.resources.cpu.realtimeRuntime"));
  cl_error_release (&err);
  json_decref (res);
  cl_ctr_cgroup_free (cg);
  assert_int_equal (cl_rm_rf (base, &err), 0);
  free (mem), free (cpu), free (pid), free (uni), free (all);
}

/* Runs fn in a child; returns its exit status (or 128+signal). */
static int
in_child (int (*fn) (void))
{
  int status;
  pid_t pid = fork ();
  if (pid == 0)
    _exit (fn ());
  waitpid (pid, &status, 0);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

static int
child_seccomp_errno (void)
{
  json_t *sc = parse ("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_X86_64\", "
                      "\"SCMP_ARCH_X86\"], \"syscalls\": [{\"names\": [\"uname\"], \"action\": "
                      "\"SCMP_ACT_ERRNO\", \"errnoRet\": 18}, {\"names\": [\"getpriority\"], "
                      "\"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 33, \"args\": [{\"index\": 1, "
                      "\"value\": 4242, \"op\": \"SCMP_CMP_EQ\"}]}]}");
  cl_error_t err = NULL;
  struct utsname u;
  int fd;
  prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (cl_ctr_seccomp_load (sc, &fd, &err) < 0)
    return 10;
  if (uname (&u) == 0 || errno != EXDEV)
    return 11;
  errno = 0;
  if (syscall (SYS_getpriority, 0, 4242) != -1 || errno != EDOM)
    return 12;
  if (syscall (SYS_getpriority, 0, 0) < 0)
    return 13;
  return 0;
}

static int
child_seccomp_kill (void)
{
  json_t *sc = parse ("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"uname\"], "
                      "\"action\": \"SCMP_ACT_KILL_PROCESS\"}]}");
  cl_error_t err = NULL;
  struct utsname u;
  int fd;
  prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (cl_ctr_seccomp_load (sc, &fd, &err) < 0)
    return 10;
  uname (&u);
  return 0;
}

static void
test_seccomp_load (void **state)
{
  (void) state;
  assert_int_equal (in_child (child_seccomp_errno), 0);
  assert_int_equal (in_child (child_seccomp_kill), 128 + SIGSYS);
}

static int
child_caps (void)
{
  json_t *caps = parse ("{\"bounding\": [\"CAP_CHOWN\", \"CAP_KILL\", \"CAP_SETUID\", \"CAP_SETGID\"], "
                        "\"effective\": [\"CAP_CHOWN\", \"CAP_KILL\"], \"permitted\": [\"CAP_CHOWN\", "
                        "\"CAP_KILL\"], \"inheritable\": [\"CAP_KILL\"], \"ambient\": [\"CAP_KILL\"]}");
  cl_error_t err = NULL;
  char *status = NULL;
  if (cl_ctr_caps_drop_bounding (caps, &err) < 0)
    return 10;
  if (setresgid (65534, 65534, 65534) < 0 || setresuid (65534, 65534, 65534) < 0)
    return 11;
  if (cl_ctr_caps_apply (caps, &err) < 0)
    {
      fprintf (stderr, "%s\n", err->msg);
      return 12;
    }
  if (cl_read_file ("/proc/self/status", &status, NULL, &err) < 0)
    return 13;
  /* CAP_CHOWN = 0, CAP_KILL = 5, CAP_SETGID = 6, CAP_SETUID = 7 */
  if (!strstr (status, "CapEff:\t0000000000000021") || !strstr (status, "CapPrm:\t0000000000000021")
      || !strstr (status, "CapInh:\t0000000000000020") || !strstr (status, "CapAmb:\t0000000000000020")
      || !strstr (status, "CapBnd:\t00000000000000e1"))
    {
      fprintf (stderr, "%s\n", status);
      return 14;
    }
  return 0;
}

static void
test_caps_apply (void **state)
{
  (void) state;
  assert_int_equal (in_child (child_caps), 0);
}

static bool
file_has (const char *path, const char *want)
{
  char *text = NULL;
  cl_error_t err = NULL;
  bool ok;
  if (cl_read_file (path, &text, NULL, &err) < 0)
    {
      cl_error_release (&err);
      return false;
    }
  ok = strncmp (text, want, strlen (want)) == 0;
  if (!ok)
    fprintf (stderr, "%s: `%s`, expected `%s`\n", path, text, want);
  free (text);
  return ok;
}

static void
test_cgroup_lifecycle (void **state)
{
  char id[64];
  json_t *linux_obj, *saved;
  struct cl_cgroup *cg = NULL, *loaded = NULL;
  cl_error_t err = NULL;
  pid_t child, *pids = NULL;
  size_t n = 0;
  struct cl_cgroup_dir *mem;
  char *path;
  json_t *stats = NULL;
  (void) state;

  snprintf (id, sizeof id, "limits-unit-%d", (int) getpid ());
  linux_obj = parse ("{\"resources\": {\"memory\": {\"limit\": 1048576, \"swap\": 1048576}, \"pids\": "
                     "{\"limit\": 7}, \"cpu\": {\"shares\": 512, \"quota\": 20000, \"period\": 100000}, "
                     "\"devices\": [{\"allow\": false, \"access\": \"rwm\"}]}}");
  child = fork ();
  if (child == 0)
    {
      pause ();
      _exit (0);
    }
  if (cl_ctr_cgroup_enter (id, linux_obj, child, &cg, &err) < 0)
    fail_msg ("%s", err->msg);
  mem = cl_ctr_cgroup_dir_for (cg, "memory");
  assert_non_null (mem);
  path = cl_strdup_printf ("%s/%s", mem->path, mem->v2 ? "memory.max" : "memory.limit_in_bytes");
  assert_true (file_has (path, "1048576"));
  free (path);
  assert_true (strstr (mem->path, id) != NULL);

  assert_int_equal (cl_ctr_cgroup_pids (cg, &pids, &n, &err), 0);
  assert_int_equal (n, 1);
  assert_int_equal (pids[0], child);
  free (pids);

  /* State round trip. */
  saved = cl_ctr_cgroup_save (cg);
  assert_int_equal (cl_ctr_cgroup_load (saved, &loaded, &err), 0);
  json_decref (saved);

  assert_int_equal (cl_ctr_cgroup_freeze (loaded, true, &err), 0);
  assert_int_equal (cl_ctr_cgroup_freeze (loaded, false, &err), 0);
  assert_int_equal (cl_ctr_cgroup_stats (loaded, &stats, &err), 0);
  assert_int_equal (json_integer_value (json_object_get (json_object_get (stats, "pids"), "limit")), 7);
  json_decref (stats);

  {
    json_t *update = parse ("{\"pids\": {\"limit\": 9}, \"memory\": {\"limit\": 4194304, \"swap\": 8388608}}");
    if (cl_ctr_cgroup_update (loaded, update, &err) < 0)
      fail_msg ("%s", err->msg);
    json_decref (update);
    assert_int_equal (cl_ctr_cgroup_stats (loaded, &stats, &err), 0);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (stats, "pids"), "limit")), 9);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (stats, "memory"), "limit")), 4194304);
    json_decref (stats);
  }

  assert_int_equal (cl_ctr_cgroup_kill_all (loaded, SIGKILL, &err), 0);
  waitpid (child, NULL, 0);
  if (cl_ctr_cgroup_destroy (loaded, &err) < 0)
    fail_msg ("%s", err->msg);
  for (size_t i = 0; i < cg->n_dirs; i++)
    if (access (cg->dirs[i].path, F_OK) == 0)
      fail_msg ("left behind: %s", cg->dirs[i].path);
  cl_ctr_cgroup_free (loaded);
  cl_ctr_cgroup_free (cg);
  json_decref (linux_obj);
}

/* The device rules bite: /dev/null is open to the container, /dev/kmsg
   (1:11) is not (v1 list here, BPF program under cgroup v2). */
static void
test_cgroup_devices_enforced (void **state)
{
  char id[64];
  int go[2], status;
  json_t *linux_obj;
  struct cl_cgroup *cg = NULL;
  cl_error_t err = NULL;
  pid_t child;
  (void) state;

  if (access ("/dev/kmsg", F_OK) < 0)
    skip ();
  snprintf (id, sizeof id, "limits-dev-%d", (int) getpid ());
  linux_obj = parse ("{\"resources\": {\"devices\": [{\"allow\": false, \"access\": \"rwm\"}]}}");
  assert_int_equal (pipe (go), 0);
  child = fork ();
  if (child == 0)
    {
      char c;
      int fd;
      close (go[1]);
      if (read (go[0], &c, 1) != 1)
        _exit (9);
      fd = open ("/dev/null", O_RDWR);
      if (fd < 0)
        _exit (10);
      close (fd);
      fd = open ("/dev/kmsg", O_RDONLY);
      _exit (fd < 0 && errno == EPERM ? 0 : 11);
    }
  close (go[0]);
  if (cl_ctr_cgroup_enter (id, linux_obj, child, &cg, &err) < 0)
    fail_msg ("%s", err->msg);
  assert_int_equal (write (go[1], "x", 1), 1);
  close (go[1]);
  waitpid (child, &status, 0);
  assert_int_equal (cl_ctr_cgroup_destroy (cg, &err), 0);
  cl_ctr_cgroup_free (cg);
  json_decref (linux_obj);
  assert_true (WIFEXITED (status));
  assert_int_equal (WEXITSTATUS (status), 0);
}

/* SCMP_ACT_NOTIFY: the listener gets the fd and the state over
   listenerPath, answers the container's mkdir with ENOTSUP. */
static char notify_sock[108];

static int
child_notify (void)
{
  cleanup_json json_t *sc = NULL, *state = NULL;
  cl_error_t err = NULL;
  char *text = cl_strdup_printf (
      "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"%s\", \"listenerMetadata\": "
      "\"meta-42\", \"syscalls\": [{\"names\": [\"mkdir\", \"mkdirat\"], \"action\": "
      "\"SCMP_ACT_NOTIFY\"}]}",
      notify_sock);
  int fd;
  sc = parse (text);
  free (text);
  state = json_pack ("{s:s, s:s, s:i}", "ociVersion", "1.2.0", "id", "limits-notify", "pid",
                     (int) getpid ());
  prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (cl_ctr_seccomp_load (sc, &fd, &err) < 0 || fd < 0)
    return 10;
  if (cl_ctr_seccomp_send_listener (sc, fd, state, &err) < 0)
    return 11;
  close (fd);
  if (mkdir ("/tmp/limits-notify-never", 0700) == 0 || errno != ENOTSUP)
    return 12;
  return 0;
}

static void
test_seccomp_notify (void **state)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int lsock, conn, notify_fd = -1, status;
  char buf[4096] = { 0 }, control[CMSG_SPACE (sizeof (int))];
  struct iovec iov = { buf, sizeof buf - 1 };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                       .msg_controllen = sizeof control };
  struct seccomp_notif *req = NULL;
  struct seccomp_notif_resp *resp = NULL;
  pid_t child;
  (void) state;

  snprintf (notify_sock, sizeof notify_sock, "/tmp/limits-notify-%d.sock", (int) getpid ());
  unlink (notify_sock);
  strcpy (addr.sun_path, notify_sock);
  lsock = socket (AF_UNIX, SOCK_STREAM, 0);
  assert_int_equal (bind (lsock, (struct sockaddr *) &addr, sizeof addr), 0);
  assert_int_equal (listen (lsock, 1), 0);
  child = fork ();
  if (child == 0)
    _exit (child_notify ());
  conn = accept (lsock, NULL, NULL);
  assert_true (conn >= 0);
  assert_true (recvmsg (conn, &mh, 0) > 0);
  for (struct cmsghdr *cm = CMSG_FIRSTHDR (&mh); cm; cm = CMSG_NXTHDR (&mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
      memcpy (&notify_fd, CMSG_DATA (cm), sizeof (int));
  assert_true (notify_fd >= 0);
  assert_non_null (strstr (buf, "\"fds\":[\"seccompFd\"]"));
  assert_non_null (strstr (buf, "\"metadata\":\"meta-42\""));
  assert_non_null (strstr (buf, "\"id\":\"limits-notify\""));

  assert_int_equal (seccomp_notify_alloc (&req, &resp), 0);
  assert_int_equal (seccomp_notify_receive (notify_fd, req), 0);
  assert_int_equal (req->pid, child);
  resp->id = req->id;
  resp->error = -ENOTSUP;
  resp->val = 0;
  resp->flags = 0;
  assert_int_equal (seccomp_notify_respond (notify_fd, resp), 0);
  seccomp_notify_free (req, resp);
  waitpid (child, &status, 0);
  close (notify_fd);
  close (conn);
  close (lsock);
  unlink (notify_sock);
  assert_true (WIFEXITED (status));
  assert_int_equal (WEXITSTATUS (status), 0);
}

/* cgroup mounts for a container: in a new mount and cgroup namespace,
   the hierarchies appear at the target, rooted at our own cgroup. */
static int
child_mount (void)
{
  cl_error_t err = NULL;
  char dir[] = "/tmp/limits-cgmount-XXXXXX";
  enum cl_cgroup_mode mode;
  char *probe;
  if (unshare (CLONE_NEWNS | CLONE_NEWCGROUP) < 0)
    return 10;
  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return 11;
  if (mkdtemp (dir) == NULL)
    return 12;
  if (cl_ctr_cgroup_detect_mode (&mode, &err) < 0)
    return 13;
  if (cl_ctr_cgroup_mount (dir, MS_RDONLY, &err) < 0)
    {
      fprintf (stderr, "%s\n", err->msg);
      rmdir (dir);
      return 14;
    }
  probe = mode == CL_CGROUP_V2 ? cl_strdup_printf ("%s/cgroup.procs", dir)
                               : cl_strdup_printf ("%s/memory/memory.limit_in_bytes", dir);
  if (access (probe, F_OK) < 0)
    return 15;
  if (mkdir (cl_strdup_printf ("%s/%s", dir, mode == CL_CGROUP_V2 ? "x" : "memory/x"), 0755) == 0
      || errno != EROFS)
    return 16;
  umount2 (dir, MNT_DETACH);
  rmdir (dir);
  return 0;
}

static void
test_cgroup_mount (void **state)
{
  (void) state;
  assert_int_equal (in_child (child_mount), 0);
}

/* Compiled filters come back from the cache only for the very same
   profile, from a private directory; a cached program loads and works. */
static const char *cached_profile
    = "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"uname\"], "
      "\"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 18}]}";
static struct cl_seccomp_program *cached_prog;

static int
child_load_cached (void)
{
  cl_error_t err = NULL;
  struct utsname u;
  int fd;
  prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  if (cl_ctr_seccomp_load_program (cached_prog, &fd, &err) < 0)
    return 10;
  return uname (&u) < 0 && errno == EXDEV ? 0 : 11;
}

static size_t
count_files (const char *dir)
{
  DIR *d = opendir (dir);
  struct dirent *de;
  size_t n = 0;
  if (d == NULL)
    return 0;
  while ((de = readdir (d)))
    n += de->d_name[0] != '.';
  closedir (d);
  return n;
}

static void
test_seccomp_cache (void **state)
{
  char base[] = "/tmp/limits-sccache-XXXXXX";
  char *dir, *open_dir;
  json_t *sc = parse (cached_profile), *other;
  struct cl_seccomp_program *first = NULL, *other_prog = NULL;
  cl_error_t err = NULL;
  (void) state;

  assert_non_null (mkdtemp (base));
  dir = cl_strdup_printf ("%s/cache", base);
  assert_int_equal (cl_ctr_seccomp_compile (sc, dir, &first, &err), 0);
  assert_int_equal (count_files (dir), 1);
  assert_int_equal (cl_ctr_seccomp_compile (sc, dir, &cached_prog, &err), 0);
  assert_int_equal (count_files (dir), 1);
  assert_int_equal (in_child (child_load_cached), 0);

  /* Another profile: another entry, never the first one's program. */
  other = parse ("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
                 "[\"uname\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 19}]}");
  assert_int_equal (cl_ctr_seccomp_compile (other, dir, &other_prog, &err), 0);
  assert_int_equal (count_files (dir), 2);
  cl_ctr_seccomp_program_free (other_prog);

  /* A directory others can write is not used. */
  open_dir = cl_strdup_printf ("%s/open", base);
  assert_int_equal (mkdir (open_dir, 0777), 0);
  assert_int_equal (chmod (open_dir, 0777), 0);
  assert_int_equal (cl_ctr_seccomp_compile (sc, open_dir, &other_prog, &err), 0);
  assert_int_equal (count_files (open_dir), 0);
  cl_ctr_seccomp_program_free (other_prog);

  /* Bad profiles fail the same way as without a cache. */
  json_decref (other);
  other = parse ("{\"defaultAction\": \"SCMP_ACT_NOPE\"}");
  assert_true (cl_ctr_seccomp_compile (other, dir, &other_prog, &err) < 0);
  assert_non_null (strstr (err->msg, "linux.seccomp.defaultAction: unknown action"));
  cl_error_release (&err);

  cl_ctr_seccomp_program_free (first);
  cl_ctr_seccomp_program_free (cached_prog);
  cached_prog = NULL;
  json_decref (sc);
  json_decref (other);
  assert_int_equal (cl_rm_rf (base, &err), 0);
  free (dir);
  free (open_dir);
}

static int
need_root (void **state)
{
  (void) state;
  if (geteuid () != 0)
    skip ();
  return 0;
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_cgroup_validate),
    cmocka_unit_test (test_seccomp_validate),
    cmocka_unit_test (test_caps_validate),
    cmocka_unit_test (test_bpf_device_program),
    cmocka_unit_test (test_dev_hole_in_wildcard),
    cmocka_unit_test (test_resource_files),
    /* as root (skipped otherwise) */
    cmocka_unit_test_setup (test_seccomp_load, need_root),
    cmocka_unit_test_setup (test_caps_apply, need_root),
    cmocka_unit_test_setup (test_cgroup_lifecycle, need_root),
    cmocka_unit_test_setup (test_cgroup_devices_enforced, need_root),
    cmocka_unit_test_setup (test_seccomp_notify, need_root),
    cmocka_unit_test_setup (test_cgroup_mount, need_root),
    cmocka_unit_test_setup (test_seccomp_cache, need_root),
  };
  return cmocka_run_group_tests_name ("limits", tests, NULL, NULL);
}
