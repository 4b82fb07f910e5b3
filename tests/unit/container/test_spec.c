/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the runtime core without containers: spec validation
   messages, mount options, signals, state files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/util.h"
#include "container/console.h"
#include "container/container.h"
#include "container/hooks.h"
#include "container/init_ctx.h"
#include "container/spec.h"
#include "container/ctr_state.h"

static char bundle[64];

static int
setup (void **state)
{
  (void) state;
  char path[128];
  snprintf (bundle, sizeof bundle, "/tmp/cloison-ut-spec-XXXXXX");
  if (mkdtemp (bundle) == NULL)
    return -1;
  snprintf (path, sizeof path, "%s/rootfs", bundle);
  return mkdir (path, 0755);
}

static int
teardown (void **state)
{
  cl_error_t err = NULL;
  (void) state;
  cl_rm_rf (bundle, &err);
  cl_error_release (&err);
  return 0;
}

/* Validates the default spec after `edit` (a JSON object merged at the
   top level, or NULL) and returns the error message (or NULL). */
static char *
validate_with (const char *patch_path, const char *json_value)
{
  json_t *spec = cl_ctr_default_spec (false);
  cl_error_t err = NULL;
  char *rootfs = NULL, *msg = NULL;

  if (patch_path)
    {
      /* "a.b.c" -> spec[a][b][c] = value */
      char *p = strdup (patch_path), *save = NULL, *tok, *next;
      json_t *node = spec;
      tok = strtok_r (p, ".", &save);
      while ((next = strtok_r (NULL, ".", &save)))
        {
          json_t *child = json_object_get (node, tok);
          if (child == NULL)
            {
              child = json_object ();
              json_object_set_new (node, tok, child);
            }
          node = child;
          tok = next;
        }
      json_object_set_new (node, tok, json_loads (json_value, JSON_DECODE_ANY, NULL));
      free (p);
    }
  if (cl_ctr_spec_validate (spec, bundle, &rootfs, &err) < 0)
    msg = strdup (err->msg);
  cl_error_release (&err);
  free (rootfs);
  json_decref (spec);
  return msg;
}

static void
expect_error (const char *path, const char *value, const char *want)
{
  char *msg = validate_with (path, value);
  if (msg == NULL || strstr (msg, want) == NULL)
    fail_msg ("%s=%s: wanted `%s`, got `%s`", path, value, want, msg ? msg : "(no error)");
  free (msg);
}

static void
test_default_spec_is_valid (void **state)
{
  char *msg;
  (void) state;
  msg = validate_with (NULL, NULL);
  assert_null (msg);
}

static void
test_field_errors (void **state)
{
  (void) state;
  expect_error ("process.user.uid", "\"root\"", "process.user.uid: expected an unsigned integer, got string");
  expect_error ("process.args", "[]", "process.args: must list at least the program");
  expect_error ("process.cwd", "\"rel\"", "process.cwd: must be an absolute path");
  expect_error ("process.oomScoreAdj", "5000", "process.oomScoreAdj: must be between -1000 and 1000");
  expect_error ("process.rlimits", "[{\"type\":\"RLIMIT_X\",\"hard\":1,\"soft\":1}]",
                "process.rlimits[0].type: unknown rlimit `RLIMIT_X`");
  expect_error ("linux.namespaces", "[{\"type\":\"mount\"},{\"type\":\"bogus\"}]",
                "linux.namespaces[1].type: unknown namespace `bogus`");
  expect_error ("linux.namespaces", "[{\"type\":\"mount\"},{\"type\":\"mount\"}]", "listed twice");
  expect_error ("linux.namespaces", "[{\"type\":\"pid\"}]", "a `mount` namespace is required");
  expect_error ("linux.uidMappings", "[{\"containerID\":0,\"hostID\":1,\"size\":1}]",
                "linux.uidMappings: mappings need a `user` namespace");
  expect_error ("linux.devices", "[{\"type\":\"x\",\"path\":\"/dev/x\"}]", "linux.devices[0].type");
  expect_error ("linux.sysctl", "{\"net.ipv4.ip_forward\": 1}", "linux.sysctl.net.ipv4.ip_forward: expected a string");
  expect_error ("hooks", "{\"prestart\":[{\"path\":\"rel\"}]}", "hooks.prestart[0].path: must be an absolute path");
  expect_error ("hooks", "{\"bogus\":[]}", "hooks.bogus: unknown hook kind");
  expect_error ("mounts", "[{\"destination\":\"proc\"}]", "mounts[0].destination: must be an absolute path");
  expect_error ("root.path", "\"/nonexistent-cloison\"", "root.path: `/nonexistent-cloison`: No such file");
  expect_error ("ociVersion", "\"2.0.0\"", "ociVersion: unsupported version");
}

static void
test_mount_options (void **state)
{
  struct mount_options mo;
  json_t *o = json_pack ("[s,s,s,s,s,s]", "rbind", "ro", "nosuid", "rslave", "mode=755", "size=1k");
  (void) state;
  cl_ctr_spec_mount_options (o, &mo);
  assert_true (mo.bind && mo.rbind);
  assert_int_equal (mo.flags, MS_RDONLY | MS_NOSUID);
  assert_int_equal (mo.propagation, MS_SLAVE | MS_REC);
  assert_string_equal (mo.data, "mode=755,size=1k");
  free (mo.data);
  json_decref (o);
  o = json_pack ("[s,s]", "ro", "rw");
  cl_ctr_spec_mount_options (o, &mo);
  assert_int_equal (mo.flags, 0);
  assert_int_equal (mo.clear, MS_RDONLY);
  free (mo.data);
  json_decref (o);
}

static void
test_signals (void **state)
{
  cl_error_t err = NULL;
  int s = 0;
  (void) state;
  assert_int_equal (cl_ctr_parse_signal ("SIGKILL", &s, &err), 0);
  assert_int_equal (s, SIGKILL);
  assert_int_equal (cl_ctr_parse_signal ("term", &s, &err), 0);
  assert_int_equal (s, SIGTERM);
  assert_int_equal (cl_ctr_parse_signal ("9", &s, &err), 0);
  assert_int_equal (s, 9);
  assert_true (cl_ctr_parse_signal ("SIGNOPE", &s, &err) < 0);
  assert_non_null (strstr (err->msg, "SIGNOPE"));
  cl_error_release (&err);
  assert_true (cl_ctr_parse_signal ("999", &s, &err) < 0);
  cl_error_release (&err);
}

static void
test_state_dir_and_status (void **state)
{
  char root[128], *dir = NULL;
  cl_error_t err = NULL;
  struct container_state st;
  json_t *pub;
  (void) state;

  snprintf (root, sizeof root, "%s/state", bundle);
  assert_int_equal (cl_ctr_state_dir_create (root, "c1", &dir, &err), 0);
  assert_true (cl_ctr_state_dir_create (root, "c1", &dir, &err) < 0);
  assert_non_null (strstr (err->msg, "container `c1` already exists"));
  cl_error_release (&err);
  assert_true (cl_ctr_state_dir_create (root, "../x", &dir, &err) < 0);
  assert_non_null (strstr (err->msg, "container id"));
  cl_error_release (&err);

  memset (&st, 0, sizeof st);
  st.dir = dir;
  st.id = strdup ("c1");
  st.doc = json_pack ("{s:s, s:s}", "bundle", "/b", "created", "now");
  st.pid = getpid ();
  st.pid_start = cl_proc_start_time (getpid ());
  assert_true (st.pid_start > 0);
  assert_int_equal (cl_ctr_state_save (&st, &err), 0);
  cl_ctr_state_release (&st);

  assert_int_equal (cl_ctr_state_load (root, "c1", &st, &err), 0);
  assert_string_equal (cl_ctr_state_status (&st), "running"); /* our own pid is alive */
  pub = cl_ctr_state_public (&st);
  assert_string_equal (json_string_value (json_object_get (pub, "status")), "running");
  assert_string_equal (json_string_value (json_object_get (pub, "bundle")), "/b");
  json_decref (pub);
  st.pid_start++; /* another process reusing the pid */
  assert_string_equal (cl_ctr_state_status (&st), "stopped");
  cl_ctr_state_release (&st);
  assert_true (cl_ctr_state_load (root, "nope", &st, &err) < 0);
  assert_non_null (strstr (err->msg, "container `nope` does not exist"));
  cl_error_release (&err);
}

static void
test_open_in_root_stays_inside (void **state)
{
  char path[256], link[256];
  int rootfd, fd;
  (void) state;

  snprintf (path, sizeof path, "%s/rootfs/etc", bundle);
  mkdir (path, 0755);
  snprintf (link, sizeof link, "%s/rootfs/evil", bundle);
  assert_int_equal (symlink ("/etc", link), 0);
  snprintf (link, sizeof link, "%s/rootfs/up", bundle);
  assert_int_equal (symlink ("../../../../../../etc", link), 0);
  snprintf (path, sizeof path, "%s/rootfs", bundle);
  rootfd = open (path, O_PATH | O_DIRECTORY);
  assert_true (rootfd >= 0);
  /* Both links resolve inside the root, whose etc has no passwd. */
  assert_true (cl_ctr_open_in_root (rootfd, "/evil/passwd", O_RDONLY, 0) < 0);
  assert_true (cl_ctr_open_in_root (rootfd, "up/passwd", O_RDONLY, 0) < 0);
  fd = cl_ctr_open_in_root (rootfd, "/evil", O_PATH | O_DIRECTORY, 0);
  assert_true (fd >= 0);
  close (fd);
  close (rootfd);
}

static void
test_fd_passing (void **state)
{
  int sv[2], fd, got;
  struct stat a, b;
  (void) state;
  assert_int_equal (socketpair (AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  fd = open ("/dev/null", O_RDONLY);
  assert_int_equal (cl_ctr_console_send_fd (sv[0], fd, "x"), 0);
  got = cl_ctr_console_recv_fd (sv[1]);
  assert_true (got >= 0);
  fstat (fd, &a);
  fstat (got, &b);
  assert_int_equal (a.st_rdev, b.st_rdev);
  close (fd);
  close (got);
  close (sv[0]);
  close (sv[1]);
}

static void
test_hooks_state_and_timeout (void **state)
{
  char out[256], script[256], *body = NULL;
  cl_error_t err = NULL;
  json_t *hooks, *st = json_pack ("{s:s}", "id", "c1");
  FILE *f;
  (void) state;

  snprintf (out, sizeof out, "%s/hook.out", bundle);
  snprintf (script, sizeof script, "%s/hook.sh", bundle);
  f = fopen (script, "w");
  fprintf (f, "#!/bin/sh\ncat > %s\n", out);
  fclose (f);
  chmod (script, 0755);
  hooks = json_pack ("{s:[{s:s}], s:[{s:s, s:[s,s,s], s:i}], s:[{s:s, s:[s,s]}]}", "createRuntime", "path",
                     script, "prestart", "path", "/bin/sh", "args", "sh", "-c", "sleep 5", "timeout", 1,
                     "poststop", "path", "/bin/false", "args", "false", "x");
  assert_int_equal (cl_ctr_hooks_run (hooks, "createRuntime", st, NULL, NULL, &err), 0);
  assert_int_equal (cl_read_file (out, &body, NULL, &err), 0);
  assert_string_equal (body, "{\"id\":\"c1\"}");
  free (body);
  assert_true (cl_ctr_hooks_run (hooks, "prestart", st, NULL, NULL, &err) < 0);
  assert_non_null (strstr (err->msg, "hooks.prestart[0]: hook `/bin/sh` timed out after 1 s"));
  cl_error_release (&err);
  /* poststop failures only warn. */
  assert_int_equal (cl_ctr_hooks_run (hooks, "poststop", st, NULL, NULL, &err), 0);
  json_decref (hooks);
  json_decref (st);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_default_spec_is_valid),
    cmocka_unit_test (test_field_errors),
    cmocka_unit_test (test_mount_options),
    cmocka_unit_test (test_signals),
    cmocka_unit_test (test_state_dir_and_status),
    cmocka_unit_test (test_open_in_root_stays_inside),
    cmocka_unit_test (test_fd_passing),
    cmocka_unit_test (test_hooks_state_and_timeout),
  };
  return cmocka_run_group_tests (tests, setup, teardown);
}
