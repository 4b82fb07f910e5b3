/* SPDX-License-Identifier: Apache-2.0 */
/* sha256 digests (OpenSSL EVP) and the "sha256:HEX" form of OCI. */
#include "image/img_internal.h"
#include "common/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
cl_img_sha256_init (struct cl_sha256 *h)
{
  h->ctx = EVP_MD_CTX_new ();
  if (h->ctx == NULL || EVP_DigestInit_ex (h->ctx, EVP_sha256 (), NULL) != 1)
    abort ();
}

void
cl_img_sha256_update (struct cl_sha256 *h, const void *data, size_t len)
{
  EVP_DigestUpdate (h->ctx, data, len);
}

static void
to_hex (const unsigned char *md, unsigned len, char *hex)
{
  static const char digits[] = "0123456789abcdef";
  for (unsigned i = 0; i < len; i++)
    {
      hex[2 * i] = digits[md[i] >> 4];
      hex[2 * i + 1] = digits[md[i] & 15];
    }
  hex[2 * len] = '\0';
}

void
cl_img_sha256_final_hex (struct cl_sha256 *h, char hex[CL_SHA256_HEX_LEN + 1])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex (h->ctx, md, &len);
  EVP_MD_CTX_free (h->ctx);
  h->ctx = NULL;
  to_hex (md, len, hex);
}

void
cl_img_sha256_buffer_hex (const void *data, size_t len, char hex[CL_SHA256_HEX_LEN + 1])
{
  struct cl_sha256 h;
  cl_img_sha256_init (&h);
  cl_img_sha256_update (&h, data, len);
  cl_img_sha256_final_hex (&h, hex);
}

int
cl_img_sha256_file_hex (const char *path, char hex[CL_SHA256_HEX_LEN + 1], cl_error_t *err)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  char buf[65536];
  struct cl_sha256 h;

  if (fd < 0)
    return cl_error_errno (err, "open `%s`", path);
  cl_img_sha256_init (&h);
  for (;;)
    {
      ssize_t r = read (fd, buf, sizeof buf);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          int saved = errno;
          cl_img_sha256_final_hex (&h, hex);
          return cl_error_make (err, saved, "read `%s`", path);
        }
      if (r == 0)
        break;
      cl_img_sha256_update (&h, buf, r);
    }
  cl_img_sha256_final_hex (&h, hex);
  return 0;
}

bool
cl_img_digest_is_hex (const char *s, size_t len)
{
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
      return false;
  return true;
}

int
cl_img_digest_parse (const char *digest, const char *what, char hex[CL_SHA256_HEX_LEN + 1],
                     cl_error_t *err)
{
  const char *colon = digest ? strchr (digest, ':') : NULL;
  if (colon == NULL)
    return cl_error_raise (err, CL_ERR_INVALID, "%s: invalid digest `%s`: expected sha256:HEX",
                           what, digest ? digest : "");
  if ((size_t)(colon - digest) != 6 || strncmp (digest, "sha256", 6) != 0)
    return cl_error_make (err, 0, "%s: unsupported digest algorithm in `%s`", what, digest);
  if (strlen (colon + 1) != CL_SHA256_HEX_LEN
      || !cl_img_digest_is_hex (colon + 1, CL_SHA256_HEX_LEN))
    return cl_error_raise (err, CL_ERR_INVALID,
                           "%s: invalid digest `%s`: expected 64 lowercase hex digits", what,
                           digest);
  memcpy (hex, colon + 1, CL_SHA256_HEX_LEN + 1);
  return 0;
}

int
cl_img_digest_mismatch (const char *expected_hex, const char *actual_hex, cl_error_t *err)
{
  return cl_error_make (err, 0, "blob sha256:%s: digest mismatch (content is sha256:%s)",
                        expected_hex, actual_hex);
}
