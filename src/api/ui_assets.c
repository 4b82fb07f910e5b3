/* SPDX-License-Identifier: Apache-2.0 */
/* The web console's files, as the build placed them in the data folder
   (ui/ of the sources, built by scripts/ui-build.py): each with its
   content type, gzip-precompressed when the client takes it, and cached
   for a year when its name carries a hash of its content (app.1a2b3c4d5e6f.js:
   a new build makes a new name), else revalidated each time. */
#include "api/api_internal.h"
#include "common/cleanup.h"
#include "common/util.h"

#include <ctype.h>
#include <string.h>
#include <unistd.h>

static const struct
{
  const char *ext;
  const char *type;
} content_types[] = {
  { ".html", "text/html; charset=utf-8" },
  { ".js", "text/javascript; charset=utf-8" },
  { ".mjs", "text/javascript; charset=utf-8" },
  { ".css", "text/css; charset=utf-8" },
  { ".svg", "image/svg+xml" },
  { ".png", "image/png" },
  { ".ico", "image/x-icon" },
  { ".json", "application/json" },
  { ".woff2", "font/woff2" },
  { ".txt", "text/plain; charset=utf-8" },
};

static const char *
content_type_of (const char *name)
{
  const char *dot = strrchr (name, '.');
  for (size_t i = 0; dot && i < sizeof content_types / sizeof content_types[0]; i++)
    if (strcmp (dot, content_types[i].ext) == 0)
      return content_types[i].type;
  return NULL;
}

/* Letters, digits, '-', '_', '.' and '/' between names; no name starts
   with a dot (no "..", no hidden files). */
static bool
name_safe (const char *name)
{
  bool start = true;
  if (*name == '\0' || strlen (name) > 200)
    return false;
  for (const char *p = name; *p; p++)
    {
      if (*p == '/')
        {
          if (start)
            return false;
          start = true;
          continue;
        }
      if (start && *p == '.')
        return false;
      if (!isalnum ((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
        return false;
      start = false;
    }
  return !start;
}

/* A ".0123456789ab." in the name: 12 hex digits of the content's hash. */
static bool
name_hashed (const char *name)
{
  for (const char *p = strchr (name, '.'); p; p = strchr (p + 1, '.'))
    {
      size_t n = strspn (p + 1, "0123456789abcdef");
      if (n == 12 && p[13] == '.')
        return true;
    }
  return false;
}

void
cl_api_ui_asset (const char *dir, const char *name, bool gzip_ok, struct cl_api_response *resp)
{
  const char *type = content_type_of (name);
  cleanup_free char *path = NULL, *gz = NULL;
  cl_error_t err = NULL;
  char *data = NULL;
  size_t len = 0;
  bool zipped = false;

  cl_api_response_clear (resp);
  if (dir == NULL || !name_safe (name) || type == NULL)
    goto missing;
  path = cl_strdup_printf ("%s/%s", dir, name);
  gz = cl_strdup_printf ("%s.gz", path);
  if (gzip_ok && cl_read_file (gz, &data, &len, &err) == 0)
    zipped = true;
  else
    {
      cl_error_release (&err);
      if (cl_read_file (path, &data, &len, &err) < 0)
        {
          cl_error_release (&err);
          goto missing;
        }
    }
  resp->status = 200;
  resp->raw = data;
  resp->raw_len = len;
  resp->content_type = type;
  if (zipped)
    cl_api_add_header (resp, "Content-Encoding", "gzip");
  cl_api_add_header (resp, "Vary", "Accept-Encoding");
  cl_api_add_header (resp, "Cache-Control",
                     name_hashed (name) ? "public, max-age=31536000, immutable" : "no-cache");
  return;
missing:
  resp->status = 404;
  resp->raw = cl_strdup_printf ("no such file of the web console: %s\n", name);
  resp->raw_len = strlen (resp->raw);
  resp->content_type = "text/plain; charset=utf-8";
}
