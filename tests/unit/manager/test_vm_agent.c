/* SPDX-License-Identifier: Apache-2.0 */
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
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/protocol.h"
#include "common/util.h"
#include "manager/mgr_vm.h"

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

/* Runs cl_mgr_agent_session (no stdin) over the bytes; stdout and stderr into
   pipes. */
static int
relay (const void *bytes, size_t n, int *code, char *out, char *errbuf, cl_error_t *err)
{
  int in = replies (bytes, n), o[2], e[2], r;
  ssize_t k;

  assert_int_equal (pipe2 (o, O_NONBLOCK), 0);
  assert_int_equal (pipe2 (e, O_NONBLOCK), 0);
  r = cl_mgr_agent_session (in, -1, o[1], e[1], false, code, err);
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
  assert_int_equal (cl_mgr_agent_frame_read (fd[0], &type, buf, &len, &err), 1);
  assert_int_equal (len, CL_AGENT_MAX_FRAME);
  assert_int_equal (cl_mgr_agent_frame_read (fd[0], &type, buf, &len, &err), 0); /* clean EOF */
  close (fd[0]);
  free (r), free (buf);
}

static void
test_header_and_winsize_encoding (void **state)
{
  unsigned char h[CL_AGENT_HEADER], ws[CL_AGENT_WINSIZE_LEN];
  uint16_t rows, cols;

  (void)state;
  cl_agent_header_encode (h, CL_AGENT_STDIN, 0x01020304u);
  assert_memory_equal (h, ((unsigned char[]){ 'I', 1, 2, 3, 4 }), sizeof h);
  assert_int_equal (cl_agent_be32 (h + 1), 0x01020304u);
  cl_agent_header_encode (h, CL_AGENT_STDIN_EOF, 0);
  assert_memory_equal (h, ((unsigned char[]){ 'C', 0, 0, 0, 0 }), sizeof h);
  cl_agent_winsize_encode (ws, 40, 0x1234);
  assert_memory_equal (ws, ((unsigned char[]){ 0, 40, 0x12, 0x34 }), sizeof ws);
  cl_agent_winsize_decode (ws, &rows, &cols);
  assert_int_equal (rows, 40);
  assert_int_equal (cols, 0x1234);
}

/* A fake agent on `s`: gathers the 'I' frames until 'C', echoes them back
   as one stdout frame per input frame, then exits with 0 (the count of
   bytes checked by the parent).  ignore_stdin: answers the exit status
   42 at once and leaves, as a command that never reads its stdin. */
static void
fake_agent (int s, bool ignore_stdin)
{
  unsigned char h[CL_AGENT_HEADER], buf[CL_AGENT_MAX_FRAME];
  unsigned char code[4] = { 0, 0, 0, 0 };

  if (!ignore_stdin)
    for (;;)
      {
        uint32_t len;
        if (cl_read_all (s, h, sizeof h) < 0)
          _exit (1);
        len = cl_agent_be32 (h + 1);
        if (h[0] == CL_AGENT_STDIN_EOF && len == 0)
          break;
        if (h[0] != CL_AGENT_STDIN || len == 0 || len > CL_AGENT_MAX_FRAME
            || cl_read_all (s, buf, len) < 0)
          _exit (1);
        h[0] = CL_AGENT_STDOUT;
        if (cl_write_all (s, h, sizeof h) < 0 || cl_write_all (s, buf, len) < 0)
          _exit (1);
      }
  code[3] = ignore_stdin ? 42 : 0;
  cl_agent_header_encode (h, CL_AGENT_EXIT, 4);
  if (cl_write_all (s, h, sizeof h) < 0 || cl_write_all (s, code, 4) < 0)
    _exit (1);
  _exit (0);
}

/* cl_mgr_agent_session with stdin from the file `in` and a fake agent; stdout
   into the file `out`. */
static int
session_with_stdin (int in, int out, bool ignore_stdin, int *code)
{
  cl_error_t err = NULL;
  int sp[2], st, r;
  pid_t pid;

  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM, 0, sp), 0);
  pid = fork ();
  assert_true (pid >= 0);
  if (pid == 0)
    {
      close (sp[0]);
      fake_agent (sp[1], ignore_stdin);
    }
  close (sp[1]);
  r = cl_mgr_agent_session (sp[0], in, out, 2, false, code, &err);
  if (r < 0)
    fail_msg ("%s", err->msg);
  close (sp[0]);
  assert_int_equal (waitpid (pid, &st, 0), pid);
  assert_true (WIFEXITED (st) && WEXITSTATUS (st) == 0);
  return r;
}

static int
temp_file (void)
{
  char path[] = "/tmp/cl-test-vm-agent-XXXXXX";
  int fd = mkstemp (path);

  assert_true (fd >= 0);
  unlink (path);
  return fd;
}

static void
test_stdin_streamed_in_frames (void **state)
{
  size_t n = 3 * CL_AGENT_MAX_FRAME + 123;
  unsigned char *data = malloc (n), *back = malloc (n + 1);
  int in = temp_file (), out = temp_file (), code = -1;

  (void)state;
  for (size_t i = 0; i < n; i++)
    data[i] = (unsigned char)(i * 7 + i / 251);
  assert_int_equal (cl_write_all (in, data, n), 0);
  assert_int_equal (lseek (in, 0, SEEK_SET), 0);
  session_with_stdin (in, out, false, &code);
  assert_int_equal (code, 0);
  assert_int_equal (lseek (out, 0, SEEK_END), (off_t)n);
  assert_int_equal (pread (out, back, n + 1, 0), (ssize_t)n);
  assert_memory_equal (back, data, n);
  close (in), close (out);
  free (data), free (back);
}

static void
test_unread_stdin_does_not_block_the_exit (void **state)
{
  int in = open ("/dev/zero", O_RDONLY), out = temp_file (), code = -1;

  (void)state;
  assert_true (in >= 0);
  session_with_stdin (in, out, true, &code);
  assert_int_equal (code, 42);
  close (in), close (out);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_good_replies),
    cmocka_unit_test (test_bad_replies),
    cmocka_unit_test (test_max_frame),
    cmocka_unit_test (test_header_and_winsize_encoding),
    cmocka_unit_test (test_stdin_streamed_in_frames),
    cmocka_unit_test (test_unread_stdin_does_not_block_the_exit),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
