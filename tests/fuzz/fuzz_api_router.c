/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target on the REST API's request router, in-process
   (cl_api_handle, src/api/api.h): method, path, query, If-Match and
   body all come from the input, against a context on an empty state
   root of its own.  Whatever the request, the router must answer with a
   status and a well-formed envelope, never crash or read out of bounds
   (ASan, UBSan).

   Input: one byte picking the method, then path, query, If-Match and
   body separated by NUL bytes (missing parts: absent).  Run it in a
   network namespace of its own (unshare --net): a request may create a
   network.  tests/fuzz/run_api.sh builds, seeds and runs it. */
#include "api/api.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const char *const methods[]
    = { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get", "" };

static struct cl_api_ctx *
ctx_get (void)
{
  static struct cl_api_ctx *ctx;
  if (ctx == NULL)
    {
      char root[] = "/tmp/cloison-fuzz-api-XXXXXX";
      struct cl_api_options o = { .body_limit = 1 << 16 };
      cl_error_t err = NULL;
      if (mkdtemp (root) == NULL
          || cl_api_ctx_new (root, &o, &ctx, &err) < 0)
        {
          fprintf (stderr, "fuzz-api-router: %s\n", err ? err->msg : "mkdtemp");
          abort ();
        }
    }
  return ctx;
}

/* The next NUL-separated part (NULL past the end); *len its length. */
static char *
part (const uint8_t **p, const uint8_t *end, size_t *len)
{
  const uint8_t *nul;
  char *s;

  if (*p > end)
    return NULL;
  nul = memchr (*p, '\0', (size_t)(end - *p));
  *len = (size_t)((nul ? nul : end) - *p);
  s = malloc (*len + 1);
  memcpy (s, *p, *len);
  s[*len] = '\0';
  *p += *len + 1;
  return s;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const uint8_t *p = data + 1, *end = data + size;
  struct cl_api_request req = { 0 };
  struct cl_api_response resp;
  char *path, *query, *if_match, *body;
  size_t len, body_len = 0;

  if (size < 1)
    return 0;
  req.method = methods[data[0] % (sizeof methods / sizeof methods[0])];
  req.websocket = data[0] & 0x80;
  path = part (&p, end, &len);
  query = part (&p, end, &len);
  if_match = part (&p, end, &len);
  body = part (&p, end, &body_len);
  req.path = path;
  req.query = query;
  req.if_match = if_match;
  req.body = body;
  req.body_len = body ? body_len : 0;
  cl_api_handle (ctx_get (), &req, &resp);
  if (resp.status < 100 || resp.status > 599)
    abort ();
  if (resp.json)
    {
      char *s = json_dumps (resp.json, JSON_COMPACT);
      if (s == NULL || !json_is_object (resp.json))
        abort ();
      free (s);
    }
  cl_api_response_clear (&resp);
  free (path);
  free (query);
  free (if_match);
  free (body);
  return 0;
}
