/* SPDX-License-Identifier: Apache-2.0 */
/* Image references: [REGISTRY/]REPO[:TAG][@sha256:HEX], after the grammar
   of the distribution project (github.com/distribution/reference). */
#include "image/image.h"
#include "image/img_internal.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static bool
is_lower_alnum (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+ joined by '.', '_', '__' or '-'+. */
static bool
valid_component (const char *s, size_t len)
{
  if (len == 0 || !is_lower_alnum (s[0]) || !is_lower_alnum (s[len - 1]))
    return false;
  for (size_t i = 0; i < len; i++)
    {
      if (is_lower_alnum (s[i]))
        continue;
      if (s[i] == '.' || s[i] == '_' || s[i] == '-')
        {
          size_t run = 1;
          while (i + run < len && s[i + run] == s[i])
            run++;
          if ((s[i] == '.' && run > 1) || (s[i] == '_' && run > 2))
            return false;
          i += run - 1;
          continue;
        }
      return false;
    }
  return true;
}

/* host[:port]: dot-separated labels of letters, digits and inner '-';
   port digits. */
static bool
valid_registry (const char *s, size_t len)
{
  const char *colon = memchr (s, ':', len);
  size_t host_len = colon ? (size_t)(colon - s) : len;
  size_t label = 0;
  if (host_len == 0)
    return false;
  for (size_t i = 0; i <= host_len; i++)
    {
      if (i == host_len || s[i] == '.')
        {
          if (label == 0 || s[i - 1] == '-')
            return false;
          label = 0;
          continue;
        }
      if (!isalnum ((unsigned char)s[i]) && !(s[i] == '-' && label > 0))
        return false;
      label++;
    }
  if (colon)
    {
      size_t port_len = len - host_len - 1;
      if (port_len == 0 || port_len > 5)
        return false;
      for (size_t i = 0; i < port_len; i++)
        if (!isdigit ((unsigned char)colon[1 + i]))
          return false;
    }
  return true;
}

static bool
valid_tag (const char *s)
{
  size_t len = strlen (s);
  if (len == 0 || len > 128 || !(isalnum ((unsigned char)s[0]) || s[0] == '_'))
    return false;
  for (size_t i = 0; i < len; i++)
    if (!isalnum ((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-')
      return false;
  return true;
}

void
cl_img_ref_clear (struct cl_image_ref *ref)
{
  free (ref->registry);
  free (ref->repo);
  free (ref->tag);
  free (ref->digest);
  memset (ref, 0, sizeof *ref);
}

int
cl_img_ref_parse (const char *s, struct cl_image_ref *out, cl_error_t *err)
{
  cleanup_free char *copy = NULL;
  char *at, *slash, *colon, *repo;
  char hex[CL_SHA256_HEX_LEN + 1];

  memset (out, 0, sizeof *out);
  if (s == NULL || *s == '\0')
    return cl_error_raise (err, CL_ERR_INVALID, "invalid image reference: empty");
  if (strlen (s) > 512)
    return cl_error_raise (err, CL_ERR_INVALID, "invalid image reference `%.32s...`: too long", s);
  copy = cl_xstrdup (s);
  at = strchr (copy, '@');
  if (at)
    {
      *at = '\0';
      if (cl_img_digest_parse (at + 1, "image reference", hex, NULL) < 0)
        return cl_error_raise (err, CL_ERR_INVALID, "invalid image reference `%s`: bad digest `%s`",
                               s, at + 1);
      out->digest = cl_strdup_printf ("sha256:%s", hex);
    }
  slash = strrchr (copy, '/');
  colon = strrchr (slash ? slash : copy, ':');
  if (colon)
    {
      *colon = '\0';
      if (!valid_tag (colon + 1))
        {
          cl_img_ref_clear (out);
          return cl_error_raise (err, CL_ERR_INVALID, "invalid image reference `%s`: bad tag `%s`",
                                 s, colon + 1);
        }
      out->tag = cl_xstrdup (colon + 1);
    }
  repo = copy;
  slash = strchr (copy, '/');
  if (slash
      && (memchr (copy, '.', slash - copy) || memchr (copy, ':', slash - copy)
          || (slash - copy == 9 && strncmp (copy, "localhost", 9) == 0)))
    {
      if (!valid_registry (copy, slash - copy))
        {
          cl_img_ref_clear (out);
          return cl_error_raise (err, CL_ERR_INVALID,
                                 "invalid image reference `%s`: bad registry `%.*s`", s,
                                 (int)(slash - copy), copy);
        }
      out->registry = strndup (copy, slash - copy);
      repo = slash + 1;
    }
  if (strlen (repo) > 255)
    {
      cl_img_ref_clear (out);
      return cl_error_raise (err, CL_ERR_INVALID,
                             "invalid image reference `%s`: name longer than 255", s);
    }
  for (char *p = repo;;)
    {
      char *end = strchr (p, '/');
      size_t len = end ? (size_t)(end - p) : strlen (p);
      if (!valid_component (p, len))
        {
          cl_img_ref_clear (out);
          return cl_error_raise (err, CL_ERR_INVALID,
                                 "invalid image reference `%s`: bad name component `%.*s` "
                                 "(lowercase letters, digits, and . _ - inside)",
                                 s, (int)len, p);
        }
      if (!end)
        break;
      p = end + 1;
    }
  out->repo = cl_xstrdup (repo);
  if (out->tag == NULL && out->digest == NULL)
    out->tag = cl_xstrdup ("latest");
  return 0;
}

int
cl_img_name_parse (const char *s, char **name, char **tag, cl_error_t *err)
{
  struct cl_image_ref ref;
  if (cl_img_ref_parse (s, &ref, err) < 0)
    return -1;
  if (ref.digest)
    {
      cl_img_ref_clear (&ref);
      return cl_error_raise (err, CL_ERR_INVALID,
                             "invalid image name `%s`: a name cannot hold a digest", s);
    }
  *name = ref.registry ? cl_strdup_printf ("%s/%s", ref.registry, ref.repo) : cl_xstrdup (ref.repo);
  *tag = steal_pointer (&ref.tag);
  cl_img_ref_clear (&ref);
  return 0;
}
