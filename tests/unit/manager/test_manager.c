/* SPDX-License-Identifier: Apache-2.0 */
/* The manager's state store, crash recovery of intents, process
   identity, copies, and the monitor's argument hand-over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "manager/mgr_internal.h"
#include "manager/template_cache.h"
#include "manager/monitor.h"

static char *
tmpdir (void)
{
  char tmpl[] = "/tmp/cloison-unit-manager-XXXXXX";
  char *d = mkdtemp (tmpl);
  assert_non_null (d);
  return strdup (d);
}

static void
rm_tree (char *dir)
{
  cl_error_t err = NULL;
  assert_int_equal (cl_rm_rf (dir, &err), 0);
  free (dir);
}

static struct instance *
sample (const char *name)
{
  struct instance *inst = cl_xmalloc0 (sizeof *inst);
  inst->name = strdup (name);
  inst->kind = KIND_CONTAINER;
  inst->image = strdup ("busybox:latest");
  inst->status = strdup ("creating");
  inst->config = json_pack ("{s:i}", "cpus", 2);
  inst->created = 1;
  return inst;
}

/* What cl_mgr_store_each gave: the last row (copied: its strings are
   the statement's), and how many rows. */
struct seen_row
{
  size_t n;
  char name[64], status[32];
  int exit_code;
  json_t *config;
};

static void
collect_row (void *opaque, struct instance *inst)
{
  struct seen_row *r = opaque;
  r->n++;
  snprintf (r->name, sizeof r->name, "%s", inst->name);
  snprintf (r->status, sizeof r->status, "%s", inst->status);
  r->exit_code = inst->exit_code;
  r->config = inst->config;
}

static void
test_store_rows (void **state)
{
  char *dir = tmpdir ();
  struct cl_manager *m;
  struct instance *inst = sample ("one"), *got = NULL;
  cl_error_t err = NULL;
  int64_t intent;
  struct seen_row seen = { 0 };
  (void)state;

  assert_int_equal (cl_mgr_open_raw (dir, &m, &err), 0);
  assert_int_equal (cl_mgr_store_create (m, inst, "launch", &intent, &err), 0);
  assert_true (cl_mgr_store_create (m, inst, "launch", &intent, &err) < 0);
  assert_string_equal (err->msg, "instance `one` already exists");
  cl_error_release (&err);
  assert_true (cl_mgr_store_get (m, "two", &got, &err) < 0);
  assert_string_equal (err->msg, "instance `two` not found");
  cl_error_release (&err);

  assert_int_equal (cl_mgr_store_set_running (m, "one", 10, 20, 11, 21, &err), 0);
  assert_int_equal (cl_mgr_store_get (m, "one", &got, &err), 0);
  assert_string_equal (got->status, "running");
  assert_int_equal (got->monitor_pid, 10);
  assert_int_equal (got->init_start, 21);
  assert_int_equal (json_integer_value (json_object_get (got->config, "cpus")), 2);
  cl_mgr_instance_free (got);
  assert_int_equal (cl_mgr_store_set_stopped (m, "one", true, 137, &err), 0);
  assert_int_equal (cl_mgr_store_get (m, "one", &got, &err), 0);
  assert_string_equal (got->status, "stopped");
  assert_true (got->has_exit_code);
  assert_int_equal (got->exit_code, 137);
  cl_mgr_instance_free (got);
  /* a row deleted under a starting monitor is not brought back */
  assert_true (cl_mgr_store_set_running (m, "ghost", 1, 1, 1, 1, &err) < 0);
  assert_non_null (strstr (err->msg, "ghost"));
  cl_error_release (&err);

  assert_int_equal (cl_mgr_store_each (m, false, collect_row, &seen, &err), 0);
  assert_int_equal (seen.n, 1);
  assert_string_equal (seen.name, "one");
  assert_string_equal (seen.status, "stopped");
  assert_int_equal (seen.exit_code, 137);
  assert_null (seen.config);
  /* twice on one handle: its statement prepared once, run again */
  assert_int_equal (cl_mgr_store_each (m, false, collect_row, &seen, &err), 0);
  assert_int_equal (seen.n, 2);
  /* none recorded running */
  assert_int_equal (cl_mgr_store_each (m, true, collect_row, &seen, &err), 0);
  assert_int_equal (seen.n, 2);
  assert_int_equal (cl_mgr_intent_end (m, intent, &err), 0);
  cl_mgr_instance_free (inst);
  cl_mgr_close (m);
  rm_tree (dir);
}

/* An intent whose owner died is recovered by the next open: a launch in
   progress is undone (row, files). */
static void
test_orphaned_launch_is_undone (void **state)
{
  char *dir = tmpdir ();
  struct cl_manager *m;
  struct instance *inst = sample ("half"), *got = NULL;
  cl_error_t err = NULL;
  int64_t intent;
  pid_t child;
  char *idir, *sql;
  (void)state;

  assert_int_equal (cl_mgr_open_raw (dir, &m, &err), 0);
  assert_int_equal (cl_mgr_store_create (m, inst, "launch", &intent, &err), 0);
  idir = cl_mgr_instance_dir (m, "half");
  assert_int_equal (cl_mkdir_p (idir, 0700, &err), 0);
  /* hand the intent to a process that is gone */
  child = fork ();
  if (child == 0)
    _exit (0);
  waitpid (child, NULL, 0);
  sql = cl_strdup_printf ("UPDATE instance_intents SET owner_pid = %d", (int)child);
  assert_int_equal (cl_db_exec (m->db, sql, &err), 0);
  free (sql);
  cl_mgr_close (m);

  assert_int_equal (cl_mgr_open (dir, &m, &err), 0);
  assert_true (cl_mgr_store_get (m, "half", &got, &err) < 0);
  cl_error_release (&err);
  assert_int_not_equal (access (idir, F_OK), 0);
  free (idir);
  cl_mgr_instance_free (inst);
  cl_mgr_close (m);
  rm_tree (dir);
}

/* A live owner's intent is left alone: it is still in progress. */
static void
test_live_intent_kept (void **state)
{
  char *dir = tmpdir ();
  struct cl_manager *m, *m2;
  struct instance *inst = sample ("busy"), *got = NULL;
  cl_error_t err = NULL;
  int64_t intent;
  (void)state;

  assert_int_equal (cl_mgr_open_raw (dir, &m, &err), 0);
  assert_int_equal (cl_mgr_store_create (m, inst, "launch", &intent, &err), 0);
  assert_int_equal (cl_mgr_open (dir, &m2, &err), 0);
  assert_int_equal (cl_mgr_store_get (m2, "busy", &got, &err), 0);
  assert_string_equal (got->status, "creating");
  cl_mgr_instance_free (got);
  cl_mgr_close (m2);
  assert_int_equal (cl_mgr_intent_end (m, intent, &err), 0);
  cl_mgr_instance_free (inst);
  cl_mgr_close (m);
  rm_tree (dir);
}

/* Hands every intent to a process that is gone. */
static void
orphan_intents (struct cl_manager *m)
{
  cl_error_t err = NULL;
  pid_t child = fork ();
  char *sql;

  if (child == 0)
    _exit (0);
  waitpid (child, NULL, 0);
  sql = cl_strdup_printf ("UPDATE instance_intents SET owner_pid = %d", (int)child);
  assert_int_equal (cl_db_exec (m->db, sql, &err), 0);
  free (sql);
}

static void
write_text (const char *path, const char *text)
{
  cl_error_t err = NULL;
  assert_int_equal (cl_write_file (path, text, strlen (text), 0, &err), 0);
}

static char *
read_text (const char *path)
{
  cl_error_t err = NULL;
  char *out = NULL;
  if (cl_read_file (path, &out, NULL, &err) < 0)
    {
      cl_error_release (&err);
      return NULL;
    }
  return out;
}

/* A restore killed after its copy was whole is finished; one killed
   during the copy is undone (the instance keeps its layer). */
static void
test_interrupted_restore (void **state)
{
  static const char *const phases[] = { "swap:s", "copy:s" };
  (void)state;

  for (int i = 0; i < 2; i++)
    {
      char *dir = tmpdir ();
      struct cl_manager *m;
      struct instance *inst = sample ("r");
      cl_error_t err = NULL;
      int64_t intent;
      char *idir, *p, *text;

      assert_int_equal (cl_mgr_open_raw (dir, &m, &err), 0);
      assert_int_equal (cl_mgr_store_create (m, inst, "launch", &intent, &err), 0);
      assert_int_equal (cl_mgr_intent_end (m, intent, &err), 0);
      assert_int_equal (cl_mgr_store_set_status (m, "r", "stopped", &err), 0);
      idir = cl_mgr_instance_dir (m, "r");
      for (const char *sub = "upper"; sub; sub = strcmp (sub, "upper") == 0 ? "upper.restore"
                                                 : strcmp (sub, "upper.restore") == 0 ? "work/work"
                                                 : strcmp (sub, "work/work") == 0
                                                     ? "snapshots/s/upper"
                                                     : NULL)
        {
          p = cl_strdup_printf ("%s/%s", idir, sub);
          assert_int_equal (cl_mkdir_p (p, 0755, &err), 0);
          free (p);
        }
      p = cl_strdup_printf ("%s/upper/f", idir);
      write_text (p, "live");
      free (p);
      p = cl_strdup_printf ("%s/upper.restore/f", idir);
      write_text (p, "snapshot");
      free (p);
      assert_int_equal (cl_mgr_intent_begin (m, "snapshot-restore", "r", phases[i], &intent, &err),
                        0);
      orphan_intents (m);
      cl_mgr_close (m);

      assert_int_equal (cl_mgr_open (dir, &m, &err), 0);
      p = cl_strdup_printf ("%s/upper/f", idir);
      text = read_text (p);
      free (p);
      assert_non_null (text);
      assert_string_equal (text, i == 0 ? "snapshot" : "live");
      free (text);
      p = cl_strdup_printf ("%s/upper.restore", idir);
      assert_int_not_equal (access (p, F_OK), 0);
      free (p);
      p = cl_strdup_printf ("%s/work/work", idir);
      assert_int_equal (access (p, F_OK) == 0, i == 1); /* a new work dir after a swap */
      free (p);
      free (idir);
      cl_mgr_instance_free (inst);
      cl_mgr_close (m);
      rm_tree (dir);
    }
}

static void
test_proc_identity (void **state)
{
  pid_t child;
  uint64_t start;
  int st;
  (void)state;

  assert_true (cl_proc_start_time (getpid ()) > 0);
  assert_true (cl_mgr_proc_alive (getpid (), cl_proc_start_time (getpid ())));
  assert_false (
      cl_mgr_proc_alive (getpid (), cl_proc_start_time (getpid ()) + 1)); /* a reused pid */
  child = fork ();
  if (child == 0)
    {
      usleep (50000);
      _exit (3);
    }
  start = cl_proc_start_time (child);
  assert_int_equal (cl_mgr_proc_wait_exit (child, start, 5), 0);
  assert_int_equal (cl_mgr_proc_wait_exit (child, start, 5000), 1);
  assert_false (cl_mgr_proc_alive (child, start)); /* a zombie is not alive */
  waitpid (child, &st, 0);
  assert_int_equal (cl_mgr_proc_exit_code (st), 3);
  child = fork ();
  if (child == 0)
    {
      pause ();
      _exit (0);
    }
  kill (child, SIGKILL);
  waitpid (child, &st, 0);
  assert_int_equal (cl_mgr_proc_exit_code (st), 128 + SIGKILL);
}

static void
test_file_clone_sparse_and_resize (void **state)
{
  char *dir = tmpdir ();
  char *src = cl_strdup_printf ("%s/src", dir), *dst = cl_strdup_printf ("%s/dst", dir);
  char block[4096], back[4096];
  cl_error_t err = NULL;
  struct stat st;
  int fd;
  (void)state;

  memset (block, 'x', sizeof block);
  fd = open (src, O_WRONLY | O_CREAT, 0600);
  assert_true (fd >= 0);
  assert_int_equal (pwrite (fd, block, sizeof block, 0), sizeof block);
  assert_int_equal (pwrite (fd, block, sizeof block, 1 << 20), sizeof block);
  close (fd);
  assert_int_equal (cl_mgr_file_clone (src, dst, 4 << 20, &err), 0);
  assert_int_equal (stat (dst, &st), 0);
  assert_int_equal (st.st_size, 4 << 20);
  assert_true (st.st_blocks * 512 < (1 << 20)); /* the hole stayed a hole */
  fd = open (dst, O_RDONLY);
  assert_int_equal (pread (fd, back, sizeof back, 1 << 20), sizeof back);
  close (fd);
  assert_memory_equal (back, block, sizeof block);
  /* never over an existing file */
  assert_true (cl_mgr_file_clone (src, dst, 0, &err) < 0);
  assert_non_null (strstr (err->msg, dst));
  cl_error_release (&err);
  free (src);
  free (dst);
  rm_tree (dir);
}

static void
test_monitor_args_round_trip (void **state)
{
  char *argv[] = { "sleep", "100", NULL }, *env[] = { "A=1", NULL };
  struct monitor_args a = { 0 }, b;
  cl_error_t err = NULL;
  json_t *j;
  (void)state;

  a.root = "/r";
  a.name = "n";
  a.id = "cl-x-n";
  a.dir = "/r/instances/n";
  a.spec.root = "/r/containers";
  a.spec.rootfs = "/r/instances/n/rootfs";
  a.spec.argv = argv;
  a.spec.env = env;
  a.spec.memory = 64 << 20;
  a.spec.cpus = 2;
  a.overlay_opts = "lowerdir=/l,upperdir=/u,workdir=/w";
  a.net_pause = true;
  j = cl_mgr_monitor_args_to_json (&a);
  assert_int_equal (cl_mgr_monitor_args_from_json (j, &b, &err), 0);
  assert_true (b.net_pause);
  assert_false (b.vm);
  assert_string_equal (b.spec.argv[1], "100");
  assert_null (b.spec.argv[2]);
  assert_string_equal (b.spec.env[0], "A=1");
  assert_int_equal (b.spec.memory, 64 << 20);
  assert_int_equal (b.spec.cpus, 2);
  assert_string_equal (b.spec.hostname, "n");
  assert_string_equal (b.spec.bundle, "/r/instances/n");
  assert_string_equal (b.overlay_opts, a.overlay_opts);
  cl_mgr_monitor_args_clear (&b);
  json_decref (j);
  j = json_pack ("{s:s}", "root", "/r");
  assert_true (cl_mgr_monitor_args_from_json (j, &b, &err) < 0);
  cl_error_release (&err);
  json_decref (j);
}

/* A VM's monitor arguments cross exec as JSON: every field of its launch
   comes back, the optional ones absent or present. */
/* A fake template: NAME/mem of `mib` MiB of data, last used at `used`. */
static void
fake_template (const char *dir, const char *name, int mib, time_t used)
{
  char *t = cl_strdup_printf ("%s/%s", dir, name), *mem = cl_strdup_printf ("%s/mem", t);
  char *lock = cl_strdup_printf ("%s.lock", t);
  static char buf[1 << 20];
  int fd;

  memset (buf, 'x', sizeof buf);
  assert_int_equal (mkdir (t, 0700), 0);
  fd = open (mem, O_WRONLY | O_CREAT, 0600);
  assert_true (fd >= 0);
  for (int i = 0; i < mib; i++)
    assert_int_equal (write (fd, buf, sizeof buf), (ssize_t)sizeof buf);
  assert_int_equal (fsync (fd), 0);
  close (fd);
  close (open (lock, O_WRONLY | O_CREAT, 0600));
  struct timeval tv[2] = { { used, 0 }, { used, 0 } };
  assert_int_equal (utimes (t, tv), 0);
  free (t);
  free (mem);
  free (lock);
}

static bool
exists (const char *dir, const char *name)
{
  char *p = cl_strdup_printf ("%s/%s", dir, name);
  bool r = access (p, F_OK) == 0;
  free (p);
  return r;
}

/* A template's key names its kernel, initramfs and VMM (this program)
   with their sizes and times: a rebuilt file makes another key. */
static void
test_template_key_files (void **state)
{
  char *d = tmpdir (), *k = cl_strdup_printf ("%s/vmlinux", d),
       *i = cl_strdup_printf ("%s/initrd", d);
  char *key, *again, *self = realpath ("/proc/self/exe", NULL);
  struct stat xs;
  cl_error_t err = NULL;
  (void)state;

  assert_int_equal (cl_write_file (k, "kernel", 6, 0, &err), 0);
  assert_int_equal (cl_write_file (i, "initrd", 6, 0, &err), 0);
  assert_int_equal (stat (self, &xs), 0);
  key = cl_mgr_template_key_files (k, i, &err);
  assert_non_null (key);
  char *vmm = cl_strdup_printf ("|vmm:%lld:%lld", (long long)xs.st_size, (long long)xs.st_mtime);
  assert_non_null (strstr (key, vmm));
  assert_non_null (strstr (key, "/vmlinux:6:"));
  assert_int_equal (cl_write_file (i, "initrd2", 7, 0, &err), 0);
  again = cl_mgr_template_key_files (k, i, &err);
  assert_string_not_equal (key, again);
  assert_null (cl_mgr_template_key_files ("/nonexistent/vmlinux", i, &err));
  assert_non_null (strstr (err->msg, "kernel or initramfs"));
  cl_error_release (&err);
  assert_int_equal (cl_rm_rf (d, &err), 0);
  free (vmm);
  free (key);
  free (again);
  free (self);
  free (k);
  free (i);
  free (d);
}

/* A template cache (the manager's or a runtime's) pruned to the cap in
   its directory: the least recently used go first, never the one kept
   (the template just built), their lock files with them. */
static void
test_template_cache_pruned_to_its_cap (void **state)
{
  char *d = tmpdir (), *cap = cl_strdup_printf ("%s/cap", d);
  char *keep = cl_strdup_printf ("%s/000000000000000c", d);
  cl_error_t err = NULL;
  (void)state;

  fake_template (d, "000000000000000a", 1, 1000);
  fake_template (d, "000000000000000b", 1, 2000);
  fake_template (d, "000000000000000c", 1, 500); /* the oldest, but kept */
  /* the default cap (2 GiB): nothing goes */
  assert_int_equal (cl_mgr_template_cache_prune (d, keep, &err), 0);
  assert_true (exists (d, "000000000000000a") && exists (d, "000000000000000b"));
  assert_int_equal (cl_write_file (cap, "2M\n", 3, 1, &err), 0);
  assert_int_equal (cl_mgr_template_cache_prune (d, keep, &err), 0);
  assert_false (exists (d, "000000000000000a") || exists (d, "000000000000000a.lock"));
  assert_true (exists (d, "000000000000000b") && exists (d, "000000000000000c"));
  assert_int_equal (cl_write_file (cap, "1K\n", 3, 1, &err), 0);
  assert_int_equal (cl_mgr_template_cache_prune (d, keep, &err), 0);
  assert_false (exists (d, "000000000000000b"));
  assert_true (exists (d, "000000000000000c"));
  /* a bad cap is an error naming its file */
  assert_int_equal (cl_write_file (cap, "lots\n", 5, 1, &err), 0);
  assert_int_equal (cl_mgr_template_cache_prune (d, keep, &err), -1);
  assert_non_null (strstr (err->msg, cap));
  cl_error_release (&err);
  assert_int_equal (cl_rm_rf (d, &err), 0);
  free (d);
  free (cap);
  free (keep);
}

static void
test_monitor_args_round_trip_vm (void **state)
{
  struct cl_vmm_disk vols[]
      = { { .path = "/v/a.img", .readonly = true, .serial = "s1" }, { .path = "/v/b.img" } };
  struct cl_vmm_fs fs[] = { { .tag = "cl0", .path = "/share", .readonly = true } };
  struct monitor_args a = { .root = "/r", .name = "vm", .id = "cl-x-vm", .dir = "/r/instances/vm" },
                      b;
  cl_error_t err = NULL;
  json_t *j;
  (void)state;

  a.attached = true;
  a.net_pause = true;
  a.vm = true;
  a.vm_launch = (struct vm_launch){ .kernel = "/k",
                                    .initrd = "/i",
                                    .cmdline = "console=ttyS0 cloison.vol=vdb",
                                    .disk = "/r/instances/vm/disk.img",
                                    .console_log = "/r/instances/vm/console.log",
                                    .api_socket = "/r/instances/vm/api.sock",
                                    .restore_dir = "/snap",
                                    .restore_clone = true,
                                    .go = "{\"cmdline\":\"root=/dev/vda\",\"args\":[]}",
                                    .warm_root = "/r",
                                    .warm_command = "[\"sh\",\"-c\",\"true\"]",
                                    .tap = "cltap0",
                                    .volumes = vols,
                                    .nvolumes = 2,
                                    .fs = fs,
                                    .nfs = 1,
                                    .mac = { 0x02, 0xab, 0x00, 0x10, 0xfe, 0x7f },
                                    .has_mac = true,
                                    .cpus = 3,
                                    .memory = 5ULL << 30,
                                    .vsock_cid = 4000000000u,
                                    .vsock_fd = 6,
                                    .readyfd = 9,
                                    .attached = true };
  j = cl_mgr_monitor_args_to_json (&a);
  assert_int_equal (cl_mgr_monitor_args_from_json (j, &b, &err), 0);
  json_decref (j);
  assert_true (b.vm);
  assert_true (b.attached);
  assert_true (b.net_pause);
  assert_int_equal (b.gofd, -1);
  assert_string_equal (b.name, "vm");
  assert_string_equal (b.dir, a.dir);
  assert_string_equal (b.vm_launch.kernel, "/k");
  assert_string_equal (b.vm_launch.initrd, "/i");
  assert_string_equal (b.vm_launch.cmdline, a.vm_launch.cmdline);
  assert_string_equal (b.vm_launch.disk, a.vm_launch.disk);
  assert_string_equal (b.vm_launch.console_log, a.vm_launch.console_log);
  assert_string_equal (b.vm_launch.api_socket, a.vm_launch.api_socket);
  assert_string_equal (b.vm_launch.restore_dir, "/snap");
  assert_true (b.vm_launch.restore_clone);
  assert_string_equal (b.vm_launch.go, a.vm_launch.go);
  assert_string_equal (b.vm_launch.warm_root, "/r");
  assert_string_equal (b.vm_launch.warm_command, a.vm_launch.warm_command);
  assert_string_equal (b.vm_launch.tap, "cltap0");
  assert_int_equal (b.vm_launch.nvolumes, 2);
  assert_string_equal (b.vm_launch.volumes[0].path, "/v/a.img");
  assert_true (b.vm_launch.volumes[0].readonly);
  assert_string_equal (b.vm_launch.volumes[0].serial, "s1");
  assert_string_equal (b.vm_launch.volumes[1].path, "/v/b.img");
  assert_false (b.vm_launch.volumes[1].readonly);
  assert_null (b.vm_launch.volumes[1].serial);
  assert_int_equal (b.vm_launch.nfs, 1);
  assert_string_equal (b.vm_launch.fs[0].tag, "cl0");
  assert_string_equal (b.vm_launch.fs[0].path, "/share");
  assert_true (b.vm_launch.fs[0].readonly);
  assert_memory_equal (b.vm_launch.mac, a.vm_launch.mac, 6);
  assert_true (b.vm_launch.has_mac);
  assert_int_equal (b.vm_launch.cpus, 3);
  assert_true (b.vm_launch.memory == 5ULL << 30);
  assert_true (b.vm_launch.vsock_cid == 4000000000u);
  assert_int_equal (b.vm_launch.vsock_fd, 6);
  assert_int_equal (b.vm_launch.readyfd, -1); /* the monitor's own */
  assert_true (b.vm_launch.attached);
  cl_mgr_monitor_args_clear (&b);

  /* the optional ones absent */
  a.attached = a.net_pause = false;
  a.vm_launch = (struct vm_launch){ .kernel = "/k",
                                    .cmdline = "c",
                                    .disk = "/d",
                                    .console_log = "/l",
                                    .api_socket = "/s",
                                    .cpus = 1,
                                    .memory = 256 << 20,
                                    .vsock_fd = -1 };
  j = cl_mgr_monitor_args_to_json (&a);
  assert_int_equal (cl_mgr_monitor_args_from_json (j, &b, &err), 0);
  json_decref (j);
  assert_false (b.attached);
  assert_false (b.net_pause);
  assert_null (b.vm_launch.initrd);
  assert_null (b.vm_launch.restore_dir);
  assert_null (b.vm_launch.tap);
  assert_int_equal (b.vm_launch.nvolumes, 0);
  assert_int_equal (b.vm_launch.nfs, 0);
  assert_false (b.vm_launch.has_mac);
  assert_int_equal (b.vm_launch.vsock_cid, 0);
  assert_int_equal (b.vm_launch.vsock_fd, -1);
  assert_false (b.vm_launch.attached);
  cl_mgr_monitor_args_clear (&b);

  /* a VM without its launch is refused */
  j = json_pack ("{s:s, s:s, s:s, s:s, s:b, s:b, s:b}", "root", "/r", "name", "vm", "id", "x",
                 "dir", "/d", "attached", 0, "net_pause", 0, "vm", 1);
  assert_true (cl_mgr_monitor_args_from_json (j, &b, &err) < 0);
  cl_error_release (&err);
  json_decref (j);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_store_rows),
    cmocka_unit_test (test_orphaned_launch_is_undone),
    cmocka_unit_test (test_live_intent_kept),
    cmocka_unit_test (test_interrupted_restore),
    cmocka_unit_test (test_proc_identity),
    cmocka_unit_test (test_file_clone_sparse_and_resize),
    cmocka_unit_test (test_monitor_args_round_trip),
    cmocka_unit_test (test_monitor_args_round_trip_vm),
    cmocka_unit_test (test_template_cache_pruned_to_its_cap),
    cmocka_unit_test (test_template_key_files),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
