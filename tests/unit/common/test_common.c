/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/json.h"
#include "common/util.h"

static void
test_parse_size (void **state)
{
  cl_error_t err = NULL;
  uint64_t v = 0;
  (void) state;
  assert_int_equal (cl_parse_size ("512M", "memory", &v, &err), 0);
  assert_int_equal (v, 512ull << 20);
  assert_int_equal (cl_parse_size ("2GiB", "memory", &v, &err), 0);
  assert_int_equal (v, 2ull << 30);
  assert_int_equal (cl_parse_size ("4096", "memory", &v, &err), 0);
  assert_int_equal (v, 4096);
  assert_int_equal (cl_parse_size ("1kB", "memory", &v, &err), 0);
  assert_int_equal (v, 1024);
  assert_true (cl_parse_size ("512X", "memory", &v, &err) < 0);
  assert_non_null (strstr (err->msg, "memory"));
  assert_non_null (strstr (err->msg, "512X"));
  cl_error_release (&err);
  assert_true (cl_parse_size ("", "disk size", &v, &err) < 0);
  cl_error_release (&err);
  assert_true (cl_parse_size ("99999999999999999999G", "disk size", &v, &err) < 0);
  cl_error_release (&err);
}

static void
test_validate_name (void **state)
{
  cl_error_t err = NULL;
  (void) state;
  assert_int_equal (cl_validate_name ("web-1.a_b", "container id", &err), 0);
  assert_true (cl_validate_name ("a/b", "container id", &err) < 0);
  assert_non_null (strstr (err->msg, "container id"));
  cl_error_release (&err);
  assert_true (cl_validate_name ("..", "container id", &err) < 0);
  cl_error_release (&err);
  assert_true (cl_validate_name ("", "container id", &err) < 0);
  cl_error_release (&err);
}

static void
test_error_wrap (void **state)
{
  cl_error_t err = NULL;
  (void) state;
  assert_int_equal (cl_error_make (&err, ENOENT, "open `%s`", "x"), -1);
  cl_error_wrap (&err, "load config");
  assert_string_equal (err->msg, "load config: open `x`: No such file or directory");
  assert_int_equal (err->status, ENOENT);
  cl_error_release (&err);
  assert_null (err);
}

static void
test_json_errors (void **state)
{
  cl_error_t err = NULL;
  json_t *j = NULL, *proc = NULL;
  const char *s = NULL;
  uint64_t u = 0;
  (void) state;
  assert_true (cl_json_load_buffer ("config.json", "{\n \"a\": }", 10, &j, &err) < 0);
  assert_non_null (strstr (err->msg, "config.json:2:"));
  cl_error_release (&err);

  const char *doc = "{\"process\": {\"cwd\": 3, \"uid\": 7, \"big\": 18446744073709551615}}";
  assert_int_equal (cl_json_load_buffer ("c", doc, strlen (doc), &j, &err), 0);
  assert_int_equal (cl_json_object (j, "", "process", &proc, &err), 1);
  assert_int_equal (cl_json_string (proc, "process", "cwd", &s, &err), -1);
  assert_string_equal (err->msg, "process.cwd: expected a string, got integer");
  cl_error_release (&err);
  assert_int_equal (cl_json_uint64 (proc, "process", "uid", &u, &err), 1);
  assert_int_equal (u, 7);
  assert_int_equal (cl_json_uint64 (proc, "process", "big", &u, &err), 1);
  assert_true (u == UINT64_MAX);
  assert_int_equal (cl_json_string (proc, "process", "absent", &s, &err), 0);
  json_decref (j);
}

static void
test_files (void **state)
{
  cl_error_t err = NULL;
  char dir[] = "/tmp/cl-test-XXXXXX";
  char *buf = NULL;
  size_t len;
  (void) state;
  assert_non_null (mkdtemp (dir));
  char *sub = cl_strdup_printf ("%s/a/b/c", dir);
  assert_int_equal (cl_mkdir_p (sub, 0755, &err), 0);
  char *file = cl_strdup_printf ("%s/f", sub);
  assert_int_equal (cl_write_file (file, "hello", 5, 1, &err), 0);
  assert_int_equal (cl_read_file (file, &buf, &len, &err), 0);
  assert_int_equal (len, 5);
  assert_string_equal (buf, "hello");
  assert_int_equal (cl_rm_rf (dir, &err), 0);
  assert_int_equal (access (dir, F_OK), -1);
  assert_true (cl_read_file (file, &buf, &len, &err) < 0);
  assert_non_null (strstr (err->msg, "No such file"));
  cl_error_release (&err);
  free (buf);
  free (sub);
  free (file);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_parse_size),   cmocka_unit_test (test_validate_name),
    cmocka_unit_test (test_error_wrap),   cmocka_unit_test (test_json_errors),
    cmocka_unit_test (test_files),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
