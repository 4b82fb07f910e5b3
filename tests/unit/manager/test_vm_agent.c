/* The host side of the guest agent's protocol: replies from the guest are
   untrusted, so bad types, oversized or truncated frames and bad exit
   statuses are one-line errors, never a crash or a hang. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/protocol.h"
#include "common/util.h"
#include "manager/vm.h"

/* The reply bytes in a pipe, the writer closed (so EOF follows them). */
static int
replies (const void *bytes, size_t n)
{
  int p[2];
  assert_int_equal (pipe (p), 0);
  assert_int_equal (cl_write_all (p[1], bytes, n), 0);
  close (p[1]);
  return p[0];
}

/* Runs agent_relay over the bytes; stdout and stderr into pipes. */
static int
relay (const void *bytes, size_t n, int *code, char *out, char *errbuf, cl_error_t *err)
{
  int in = replies (bytes, n), o[2], e[2], r;
  ssize_t k;

  assert_int_equal (pipe2 (o, O_NONBLOCK), 0);
  assert_int_equal (pipe2 (e, O_NONBLOCK), 0);
  r = agent_relay (in, o[1], e[1], code, err);
  close (in), close (o[1]), close (e[1]);
  k = read (o[0], out, 255);
  out[k > 0 ? k : 0] = '\0';
  k = read (e[0], errbuf, 255);
  errbuf[k > 0 ? k : 0] = '\0';
  close (o[0]), close (e[0]);
  return r;
}

static void
test_good_replies (void **state)
{
  static const unsigned char r[] = { 'O', 0,   0, 0, 3, 'o', 'u', 't', 'E', 0, 0, 0, 3, 'e', 'r',
                                     'r', 'O', 0, 0, 0, 0,   'X', 0,   0,   0, 4, 0, 0, 0,   7 };
  char out[256], errbuf[256];
  cl_error_t err = NULL;
  int code = -1;

  (void)state;
  if (relay (r, sizeof r, &code, out, errbuf, &err) < 0)
    fail_msg ("%s", err->msg);
  assert_int_equal (code, 7);
  assert_string_equal (out, "out");
  assert_string_equal (errbuf, "err");
}

static void
expect_error (const unsigned char *r, size_t n, const char *msg)
{
  char out[256], errbuf[256];
  cl_error_t err = NULL;
  int code = -1;

  assert_int_equal (relay (r, n, &code, out, errbuf, &err), -1);
  assert_non_null (err);
  assert_non_null (strstr (err->msg, msg));
  assert_null (strchr (err->msg, '\n'));
  assert_int_equal (code, -1);
  cl_error_release (&err);
}

static void
test_bad_replies (void **state)
{
  static const unsigned char unknown[] = { 'Z', 0, 0, 0, 0 };
  static const unsigned char huge[] = { 'O', 0xff, 0xff, 0xff, 0xff, 'x' };
  static const unsigned char justover[] = { 'E', 0, 1, 0, 1 };
  static const unsigned char truncated[] = { 'O', 0, 0, 0, 9, 'a', 'b' };
  static const unsigned char short_header[] = { 'O', 0, 0 };
  static const unsigned char no_exit[] = { 'O', 0, 0, 0, 1, 'a' };
  static const unsigned char bad_exit_len[] = { 'X', 0, 0, 0, 2, 0, 7 };
  static const unsigned char bad_code[] = { 'X', 0, 0, 0, 4, 0, 0, 1, 0 };

  (void)state;
  expect_error (unknown, sizeof unknown, "unknown frame type 0x5a");
  expect_error (huge, sizeof huge, "frame of 4294967295 bytes");
  expect_error (justover, sizeof justover, "frame of 65537 bytes");
  expect_error (truncated, sizeof truncated, "truncated frame");
  expect_error (short_header, sizeof short_header, "truncated frame");
  expect_error (no_exit, sizeof no_exit, "closed before the exit status");
  expect_error (bad_exit_len, sizeof bad_exit_len, "exit frame of 2 bytes");
  expect_error (bad_code, sizeof bad_code, "exit status 256 out of range");
}

static void
test_max_frame (void **state)
{
  size_t n = CL_AGENT_HEADER + CL_AGENT_MAX_FRAME;
  unsigned char *r = calloc (1, n);
  char type;
  uint32_t len;
  void *buf = malloc (CL_AGENT_MAX_FRAME);
  cl_error_t err = NULL;
  int fd[2];

  (void)state;
  r[0] = 'O', r[2] = 1; /* exactly CL_AGENT_MAX_FRAME bytes: accepted */
  assert_int_equal (pipe (fd), 0);
  assert_int_equal (fcntl (fd[1], F_SETPIPE_SZ, 1 << 20) > 0, 1);
  assert_int_equal (cl_write_all (fd[1], r, n), 0);
  close (fd[1]);
  assert_int_equal (agent_frame_read (fd[0], &type, buf, &len, &err), 1);
  assert_int_equal (len, CL_AGENT_MAX_FRAME);
  assert_int_equal (agent_frame_read (fd[0], &type, buf, &len, &err), 0); /* clean EOF */
  close (fd[0]);
  free (r), free (buf);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_good_replies),
    cmocka_unit_test (test_bad_replies),
    cmocka_unit_test (test_max_frame),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
