/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/image: references, digests, whiteouts, the store's
   use records and removal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/util.h"
#include "image/image.h"
#include "image/img_internal.h"

static const char hex64[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

static void
expect_ref (const char *s, const char *registry, const char *repo, const char *tag,
            const char *digest)
{
  struct cl_image_ref r;
  cl_error_t err = NULL;
  int ret = cl_img_ref_parse (s, &r, &err);
  if (ret < 0)
    fail_msg ("%s: %s", s, err->msg);
  if (registry)
    assert_string_equal (r.registry, registry);
  else
    assert_null (r.registry);
  assert_string_equal (r.repo, repo);
  if (tag)
    assert_string_equal (r.tag, tag);
  else
    assert_null (r.tag);
  if (digest)
    assert_string_equal (r.digest, digest);
  else
    assert_null (r.digest);
  cl_img_ref_clear (&r);
}

static void
expect_bad_ref (const char *s, const char *needle)
{
  struct cl_image_ref r;
  cl_error_t err = NULL;
  if (cl_img_ref_parse (s, &r, &err) == 0)
    fail_msg ("`%s` was accepted", s);
  assert_non_null (strstr (err->msg, needle));
  cl_error_release (&err);
}

static void
test_ref_parse (void **state)
{
  char digest[80];
  (void) state;
  snprintf (digest, sizeof digest, "sha256:%s", hex64);
  expect_ref ("busybox", NULL, "busybox", "latest", NULL);
  expect_ref ("busybox:1.36", NULL, "busybox", "1.36", NULL);
  expect_ref ("library/busybox", NULL, "library/busybox", "latest", NULL);
  expect_ref ("localhost/x", "localhost", "x", "latest", NULL);
  expect_ref ("localhost:5000/a/b-c_d.e:v1.0", "localhost:5000", "a/b-c_d.e", "v1.0", NULL);
  expect_ref ("127.0.0.1:45123/test/bb:v1", "127.0.0.1:45123", "test/bb", "v1", NULL);
  expect_ref ("quay.io/a__b/c--d", "quay.io", "a__b/c--d", "latest", NULL);
  {
    char s[200];
    snprintf (s, sizeof s, "docker.io/library/x@%s", digest);
    expect_ref (s, "docker.io", "library/x", NULL, digest);
    snprintf (s, sizeof s, "x:t@%s", digest);
    expect_ref (s, NULL, "x", "t", digest);
  }
  expect_bad_ref ("", "empty");
  expect_bad_ref ("Busybox", "Busybox");
  expect_bad_ref ("a//b", "bad name component");
  expect_bad_ref ("a:", "bad tag");
  expect_bad_ref ("a:.x", "bad tag");
  expect_bad_ref ("../x", "bad registry");
  expect_bad_ref ("-x.io/y", "bad registry");
  expect_bad_ref ("x.io:99999999/y", "bad registry");
  expect_bad_ref ("a..b", "bad name component");
  expect_bad_ref ("a___b", "bad name component");
  expect_bad_ref ("x@sha256:abc", "bad digest");
  expect_bad_ref ("x@md5:abc", "bad digest");
  {
    char long_name[300];
    memset (long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    expect_bad_ref (long_name, "longer than 255");
  }
}

static void
test_name_parse (void **state)
{
  char *name = NULL, *tag = NULL;
  cl_error_t err = NULL;
  char s[120];
  (void) state;
  assert_int_equal (cl_img_name_parse ("localhost:5000/web:2", &name, &tag, &err), 0);
  assert_string_equal (name, "localhost:5000/web");
  assert_string_equal (tag, "2");
  free (name);
  free (tag);
  assert_int_equal (cl_img_name_parse ("web", &name, &tag, &err), 0);
  assert_string_equal (tag, "latest");
  free (name);
  free (tag);
  snprintf (s, sizeof s, "web@sha256:%s", hex64);
  assert_true (cl_img_name_parse (s, &name, &tag, &err) < 0);
  assert_non_null (strstr (err->msg, "cannot hold a digest"));
  cl_error_release (&err);
}

static void
test_digests (void **state)
{
  char hex[CL_SHA256_HEX_LEN + 1], s[100];
  cl_error_t err = NULL;
  struct cl_sha256 h;
  (void) state;
  cl_img_sha256_buffer_hex ("abc", 3, hex);
  assert_string_equal (hex, hex64);
  cl_img_sha256_init (&h);
  cl_img_sha256_update (&h, "a", 1);
  cl_img_sha256_update (&h, "bc", 2);
  cl_img_sha256_final_hex (&h, hex);
  assert_string_equal (hex, hex64);
  snprintf (s, sizeof s, "sha256:%s", hex64);
  assert_int_equal (cl_img_digest_parse (s, "config.digest", hex, &err), 0);
  assert_string_equal (hex, hex64);
  snprintf (s, sizeof s, "sha512:%s", hex64);
  assert_true (cl_img_digest_parse (s, "config.digest", hex, &err) < 0);
  assert_non_null (strstr (err->msg, "unsupported digest algorithm"));
  assert_non_null (strstr (err->msg, "config.digest"));
  cl_error_release (&err);
  assert_true (cl_img_digest_parse ("sha256:ABC", "layers[0].digest", hex, &err) < 0);
  assert_non_null (strstr (err->msg, "layers[0].digest"));
  cl_error_release (&err);
  snprintf (s, sizeof s, "sha256:%.63sG", hex64);
  assert_true (cl_img_digest_parse (s, "x", hex, &err) < 0);
  cl_error_release (&err);
  assert_true (cl_img_digest_mismatch (hex64, "00ff", &err) < 0);
  assert_non_null (strstr (err->msg, hex64));
  assert_non_null (strstr (err->msg, "mismatch"));
  cl_error_release (&err);
}

/* ---- layers ---- */

struct member
{
  const char *path;
  int type; /* AE_IFREG, AE_IFDIR, AE_IFLNK */
  const char *data; /* file content or link target */
};

static char *
write_tar (const char *dir, const struct member *m, size_t n)
{
  char *path = cl_strdup_printf ("%s/layer.tar", dir);
  struct archive *a = archive_write_new ();
  archive_write_set_format_pax_restricted (a);
  assert_int_equal (archive_write_open_filename (a, path), ARCHIVE_OK);
  for (size_t i = 0; i < n; i++)
    {
      struct archive_entry *e = archive_entry_new ();
      archive_entry_set_pathname (e, m[i].path);
      archive_entry_set_filetype (e, m[i].type);
      archive_entry_set_perm (e, m[i].type == AE_IFDIR ? 0755 : 0644);
      if (m[i].type == AE_IFLNK)
        archive_entry_set_symlink (e, m[i].data);
      else if (m[i].type == AE_IFREG)
        archive_entry_set_size (e, m[i].data ? strlen (m[i].data) : 0);
      archive_write_header (a, e);
      if (m[i].type == AE_IFREG && m[i].data)
        archive_write_data (a, m[i].data, strlen (m[i].data));
      archive_entry_free (e);
    }
  archive_write_close (a);
  archive_write_free (a);
  return path;
}

static char *
tmpdir (void)
{
  char *d = strdup ("/tmp/cl-image-unit-XXXXXX");
  assert_non_null (mkdtemp (d));
  return d;
}

static int
unpack (const char *tar, const char *dest, char hex[CL_SHA256_HEX_LEN + 1], cl_error_t *err)
{
  int fd = open (tar, O_RDONLY);
  struct cl_sha256 h;
  uint64_t size = 0;
  int r;
  assert_true (fd >= 0);
  cl_img_sha256_init (&h);
  r = cl_img_layer_unpack (fd, dest, &h, &size, NULL, NULL, "test", 0, err);
  cl_img_sha256_final_hex (&h, hex);
  close (fd);
  return r;
}

static void
test_whiteouts (void **state)
{
  static const struct member m[] = {
    { "./d", AE_IFDIR, NULL },
    { "./d/.wh..wh..opq", AE_IFREG, "" },
    { "./d/new", AE_IFREG, "new" },
    { "e/.wh.gone", AE_IFREG, "" },
    { "f/file", AE_IFREG, "x" },
  };
  char *dir = tmpdir ();
  char *tar = write_tar (dir, m, sizeof m / sizeof m[0]);
  char *dest = cl_strdup_printf ("%s/layer", dir);
  char hex[CL_SHA256_HEX_LEN + 1], file_hex[CL_SHA256_HEX_LEN + 1], val[4] = "";
  cl_error_t err = NULL;
  struct stat st;
  char *p;
  (void) state;

  mkdir (dest, 0700);
  if (unpack (tar, dest, hex, &err) < 0)
    fail_msg ("unpack: %s", err->msg);
  assert_int_equal (cl_img_sha256_file_hex (tar, file_hex, &err), 0);
  assert_string_equal (hex, file_hex); /* every byte of the blob was hashed */
  p = cl_strdup_printf ("%s/d", dest);
  assert_int_equal (getxattr (p, "trusted.overlay.opaque", val, sizeof val), 1);
  assert_int_equal (val[0], 'y');
  free (p);
  p = cl_strdup_printf ("%s/d/.wh..wh..opq", dest);
  assert_true (lstat (p, &st) < 0);
  free (p);
  p = cl_strdup_printf ("%s/e/gone", dest);
  assert_int_equal (lstat (p, &st), 0);
  assert_true (S_ISCHR (st.st_mode));
  assert_int_equal (st.st_rdev, makedev (0, 0));
  free (p);
  p = cl_strdup_printf ("%s/e/.wh.gone", dest);
  assert_true (lstat (p, &st) < 0);
  free (p);
  p = cl_strdup_printf ("%s/f/file", dest);
  assert_int_equal (lstat (p, &st), 0);
  assert_int_equal (st.st_size, 1);
  free (p);
  cl_rm_rf (dir, NULL);
  free (dir);
  free (tar);
  free (dest);
}

static void
test_whiteout_through_symlink_refused (void **state)
{
  char *dir = tmpdir ();
  char *outside = cl_strdup_printf ("%s/outside", dir);
  struct member m[] = {
    { "l", AE_IFLNK, outside },
    { "l/.wh.victim", AE_IFREG, "" },
  };
  char *tar, *dest = cl_strdup_printf ("%s/layer", dir), *victim;
  char hex[CL_SHA256_HEX_LEN + 1];
  cl_error_t err = NULL;
  struct stat st;
  (void) state;

  mkdir (outside, 0755);
  victim = cl_strdup_printf ("%s/victim", outside);
  cl_write_file (victim, "safe", 4, 0, &err);
  tar = write_tar (dir, m, 2);
  mkdir (dest, 0700);
  assert_true (unpack (tar, dest, hex, &err) < 0);
  assert_non_null (strstr (err->msg, "l"));
  cl_error_release (&err);
  assert_int_equal (lstat (victim, &st), 0);
  assert_true (S_ISREG (st.st_mode));
  cl_rm_rf (dir, NULL);
  free (dir);
  free (tar);
  free (dest);
  free (outside);
  free (victim);
}

static void
test_dotdot_refused (void **state)
{
  static const struct member m[] = {
    { "../escape", AE_IFREG, "x" },
  };
  char *dir = tmpdir ();
  char *tar = write_tar (dir, m, 1);
  char *dest = cl_strdup_printf ("%s/layer", dir), *escaped = cl_strdup_printf ("%s/escape", dir);
  char hex[CL_SHA256_HEX_LEN + 1];
  cl_error_t err = NULL;
  (void) state;
  mkdir (dest, 0700);
  assert_true (unpack (tar, dest, hex, &err) < 0);
  cl_error_release (&err);
  assert_true (access (escaped, F_OK) < 0);
  cl_rm_rf (dir, NULL);
  free (dir);
  free (tar);
  free (dest);
  free (escaped);
}

/* ---- store ---- */

static void
test_store_uses_and_remove (void **state)
{
  static const struct member m[] = {
    { "bin/sh", AE_IFREG, "#!" },
  };
  char *dir = tmpdir ();
  char *tar = write_tar (dir, m, 1);
  char *root = cl_strdup_printf ("%s/root", dir), *id = NULL, *low;
  struct cl_image_store *s = NULL;
  struct cl_image_import_opts opts = { .name = "unit:1" };
  struct cl_image *img = NULL;
  cl_error_t err = NULL;
  (void) state;

  setenv ("CLOISON_IMAGE_DATA", dir, 1); /* no built-in image here */
  assert_int_equal (cl_img_store_open (root, &s, &err), 0);
  if (cl_img_import (s, tar, &opts, &id, &err) < 0)
    fail_msg ("import: %s", err->msg);
  assert_int_equal (cl_img_resolve (s, "unit:1", &img, &err), 0);
  assert_string_equal (img->id, id);
  assert_string_equal (img->name, "unit:1");
  assert_int_equal (img->n_layers, 1);
  assert_string_equal (img->config.cmd[0], "/bin/sh");
  assert_null (img->config.entrypoint);
  low = cl_img_lowerdir (img);
  assert_string_equal (low, img->layers[0]);
  free (low);
  cl_img_free (img);
  /* by id prefix, "sha256:" prefix too */
  {
    char prefix[20];
    snprintf (prefix, sizeof prefix, "sha256:%.8s", id);
    assert_int_equal (cl_img_resolve (s, prefix, &img, &err), 0);
    cl_img_free (img);
  }
  assert_int_equal (cl_img_use (s, id, "inst-a", &err), 0);
  assert_int_equal (cl_img_use (s, id, "inst-a", &err), 0);
  assert_true (cl_img_remove (s, "unit:1", &err) < 0);
  assert_string_equal (err->msg, "image `unit:1` is used by instance `inst-a`");
  cl_error_release (&err);
  assert_int_equal (cl_img_release (s, id, "inst-a", &err), 0);
  assert_int_equal (cl_img_release (s, id, "inst-a", &err), 0);
  assert_true (cl_img_use (s, "0000", "x", &err) < 0); /* no such image */
  cl_error_release (&err);
  assert_int_equal (cl_img_remove (s, "unit:1", &err), 0);
  assert_true (cl_img_resolve (s, "unit:1", &img, &err) < 0);
  assert_string_equal (err->msg, "image `unit:1` not found");
  cl_error_release (&err);
  cl_img_store_close (s);
  cl_rm_rf (dir, NULL);
  free (dir);
  free (tar);
  free (root);
  free (id);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_ref_parse),
    cmocka_unit_test (test_name_parse),
    cmocka_unit_test (test_digests),
    cmocka_unit_test (test_whiteouts),
    cmocka_unit_test (test_whiteout_through_symlink_refused),
    cmocka_unit_test (test_dotdot_refused),
    cmocka_unit_test (test_store_uses_and_remove),
  };
  return cmocka_run_group_tests (tests, NULL, NULL);
}
