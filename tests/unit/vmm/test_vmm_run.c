/* SPDX-License-Identifier: Apache-2.0 */
/* The library entry point as the manager uses it: fork, cl_vmm_run in the
   child with the console on a pipe and ready_fd, exit status back.  Needs
   /dev/kvm (skipped without it) and the tiny guests (GUEST_DIR, set by
   meson). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/vmm.h"

static char *
guest (const char *name)
{
  static char path[4096];
  snprintf (path, sizeof path, "%s/%s.elf", GUEST_DIR, name);
  return path;
}

/* Runs `kernel` in a forked child; returns its exit status, fills out
   (console) and ready ('R' or 0). */
static int
run_child (const char *kernel, unsigned cpus, char *out, size_t outlen, char *ready)
{
  int con[2], rdy[2];
  assert_int_equal (pipe (con), 0);
  assert_int_equal (pipe (rdy), 0);
  pid_t pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      struct cl_vmm_config cfg;
      cl_error_t err = NULL;
      close (con[0]);
      close (rdy[0]);
      cl_vmm_config_init (&cfg);
      cfg.kernel = kernel;
      cfg.cpus = cpus;
      cfg.memory = 32 << 20;
      cfg.console_in_fd = -1;
      cfg.console_out_fd = con[1];
      cfg.ready_fd = rdy[1];
      _exit (cl_vmm_run (&cfg, &err) < 0 ? cl_error_report (&err, "test") : 0);
    }
  close (con[1]);
  close (rdy[1]);
  *ready = 0;
  if (read (rdy[0], ready, 1) != 1)
    *ready = 0;
  size_t n = 0;
  ssize_t r;
  while (n < outlen - 1 && (r = read (con[0], out + n, outlen - 1 - n)) > 0)
    n += r;
  out[n] = 0;
  close (con[0]);
  close (rdy[0]);
  int status;
  assert_int_equal (waitpid (pid, &status, 0), pid);
  return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

/* A TAP comment line that scripts/run_tests.py takes as the reason */
static void
skip_no_kvm (void)
{
  printf ("# skip reason: no /dev/kvm on this machine\n");
  fflush (stdout);
  skip ();
}

static void
test_run_in_forked_child (void **state)
{
  char out[4096], ready;
  (void)state;
  if (access ("/dev/kvm", R_OK | W_OK) != 0)
    skip_no_kvm ();
  assert_int_equal (run_child (guest ("hello"), 1, out, sizeof out, &ready), 0);
  assert_int_equal (ready, 'R');
  assert_non_null (strstr (out, "hello from the cloison guest"));
  assert_int_equal (run_child (guest ("smp"), 2, out, sizeof out, &ready), 0);
  assert_non_null (strstr (out, "ap online, apic id 1"));
}

static void
test_run_reports_errors (void **state)
{
  char out[64], ready;
  (void)state;
  if (access ("/dev/kvm", R_OK | W_OK) != 0)
    skip_no_kvm ();
  assert_int_not_equal (run_child (guest ("triple"), 1, out, sizeof out, &ready), 0);
  assert_int_not_equal (run_child ("/nonexistent", 1, out, sizeof out, &ready), 0);
  assert_int_equal (ready, 0); /* never ran */
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_run_in_forked_child),
    cmocka_unit_test (test_run_reports_errors),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
