/* SPDX-License-Identifier: Apache-2.0 */
/* The response envelopes, and reading a request's URL and query: what
   the handlers and the router share.  Every file of src/api may call it;
   it calls none of them but events.c (cl_api_events_free). */
#include "api/api_internal.h"
#include "common/util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- responses ---- */

static void
reply (struct api_call *c, int status, json_t *j)
{
  cl_api_response_clear (c->resp);
  c->resp->status = status;
  c->resp->json = j;
  c->resp->content_type = "application/json";
}

void
cl_api_reply_sync (struct api_call *c, int status, json_t *metadata)
{
  reply (c, status,
         json_pack ("{s:s, s:s, s:i, s:o}", "type", "sync", "status", "Success", "status_code",
                    status, "metadata", metadata ? metadata : json_null ()));
}

static void
reply_error_v (struct api_call *c, int status, const char *path, const char *fmt, va_list ap)
{
  char *msg = NULL;
  json_t *j;

  if (vasprintf (&msg, fmt, ap) < 0)
    abort ();
  j = json_pack ("{s:s, s:i, s:s}", "type", "error", "error_code", status, "error", msg);
  if (path)
    json_object_set_new (j, "path", json_string (path));
  free (msg);
  reply (c, status, j);
}

void
cl_api_reply_error (struct api_call *c, int status, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  reply_error_v (c, status, NULL, fmt, ap);
  va_end (ap);
}

void
cl_api_reply_bad_field (struct api_call *c, const char *path, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  reply_error_v (c, 400, path, fmt, ap);
  va_end (ap);
}

/* The status of a library error, from its kind (set where it was
   raised). */
int
cl_api_error_status (cl_error_t err)
{
  switch (cl_error_kind_of (err))
    {
    case CL_ERR_NOT_FOUND:
      return 404;
    case CL_ERR_CONFLICT:
      return 409;
    case CL_ERR_INVALID:
      return 400;
    case CL_ERR_BUSY:
      return 503;
    case CL_ERR_FAILED:
    default:
      return 500;
    }
}

void
cl_api_reply_cl_error (struct api_call *c, cl_error_t *err)
{
  const char *msg = *err && (*err)->msg ? (*err)->msg : "internal error";
  cl_api_reply_error (c, cl_api_error_status (*err), "%s", msg);
  cl_error_release (err);
}

void
cl_api_add_header (struct cl_api_response *resp, const char *name, const char *value)
{
  char *more = cl_strdup_printf ("%s%s: %s\n", resp->headers ? resp->headers : "", name, value);
  free (resp->headers);
  resp->headers = more;
}

void
cl_api_text_raw (struct api_text *t, const char *s, size_t n)
{
  if (t->len + n + 1 > t->cap)
    {
      t->cap = (t->len + n + 1) * 2 < 65536 ? 65536 : (t->len + n + 1) * 2;
      t->buf = realloc (t->buf, t->cap);
      if (t->buf == NULL)
        abort ();
    }
  memcpy (t->buf + t->len, s, n);
  t->len += n;
  t->buf[t->len] = '\0';
}

void
cl_api_text_string (struct api_text *t, const char *s)
{
  const char *run = s;

  cl_api_text_raw (t, "\"", 1);
  for (; *s; s++)
    {
      unsigned char ch = (unsigned char)*s;
      char esc[8];
      if (ch >= 0x20 && ch != '"' && ch != '\\')
        continue;
      cl_api_text_raw (t, run, (size_t)(s - run));
      if (ch == '"' || ch == '\\')
        snprintf (esc, sizeof esc, "\\%c", ch);
      else
        snprintf (esc, sizeof esc, "\\u%04x", ch);
      cl_api_text_raw (t, esc, strlen (esc));
      run = s + 1;
    }
  cl_api_text_raw (t, run, (size_t)(s - run));
  cl_api_text_raw (t, "\"", 1);
}

void
cl_api_text_int (struct api_text *t, long long v)
{
  /* by hand: snprintf was a tenth of a long list's time */
  char num[24], *p = num + sizeof num;
  unsigned long long u = v < 0 ? -(unsigned long long)v : (unsigned long long)v;

  do
    *--p = (char)('0' + u % 10);
  while ((u /= 10) != 0);
  if (v < 0)
    *--p = '-';
  cl_api_text_raw (t, p, (size_t)(num + sizeof num - p));
}

void
cl_api_reply_sync_text (struct api_call *c, struct api_text *t)
{
  static const char head[] = "{\"type\":\"sync\",\"status\":\"Success\",\"status_code\":200,"
                             "\"metadata\":";
  struct api_text out = { 0 };

  cl_api_text_raw (&out, head, sizeof head - 1);
  cl_api_text_raw (&out, t->buf ? t->buf : "null", t->buf ? t->len : 4);
  cl_api_text_raw (&out, "}\n", 2); /* as cloisond ends its JSON replies */
  free (t->buf);
  memset (t, 0, sizeof *t);
  cl_api_response_clear (c->resp);
  c->resp->status = 200;
  c->resp->content_type = "application/json";
  c->resp->raw = out.buf;
  c->resp->raw_len = out.len;
}

void
cl_api_response_clear (struct cl_api_response *resp)
{
  json_decref (resp->json);
  free (resp->raw);
  free (resp->location);
  free (resp->etag);
  free (resp->allow);
  free (resp->headers);
  if (resp->events)
    cl_api_events_free (resp->events);
  cl_api_channel_free (resp->channel);
  memset (resp, 0, sizeof *resp);
}

/* ---- requests ---- */

static int
hexval (int ch)
{
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  ch = tolower (ch);
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  return -1;
}

char *
cl_api_url_decode (const char *s, size_t n, bool plus_space)
{
  char *out = cl_xmalloc0 (n + 1), *o = out;

  for (size_t i = 0; i < n; i++)
    if (s[i] == '%')
      {
        int h, l;
        if (i + 2 >= n)
          goto bad;
        h = hexval (s[i + 1]);
        l = hexval (s[i + 2]);
        if (h < 0 || l < 0 || (h == 0 && l == 0))
          goto bad;
        *o++ = (char)(h * 16 + l);
        i += 2;
      }
    else
      *o++ = plus_space && s[i] == '+' ? ' ' : s[i];
  return out;
bad:
  free (out);
  return NULL;
}

char *
cl_api_url (const char *prefix, const char *name)
{
  /* names are [A-Za-z0-9_.-] and image references add ':', '/', '@':
     only what falls outside needs escaping */
  size_t n = strlen (name);
  char *out = cl_xmalloc0 (strlen (prefix) + 3 * n + 1), *o;

  o = stpcpy (out, prefix);
  for (size_t i = 0; i < n; i++)
    {
      unsigned char ch = (unsigned char)name[i];
      if (isalnum (ch) || strchr ("-._~:@", ch))
        *o++ = (char)ch;
      else
        o += sprintf (o, "%%%02X", ch);
    }
  return out;
}

void
cl_api_names_to_urls (json_t *list, const char *prefix)
{
  size_t i;
  json_t *e;

  json_array_foreach (list, i, e)
  {
    char *url = cl_api_url (prefix, json_string_value (json_object_get (e, "name")));
    json_array_set_new (list, i, json_string (url));
    free (url);
  }
}

int
cl_api_parse_query (const char *q, json_t **out)
{
  json_t *obj = json_object ();

  while (q && *q)
    {
      const char *amp = strchr (q, '&'), *end = amp ? amp : q + strlen (q);
      const char *eq = memchr (q, '=', (size_t)(end - q));
      char *k, *v;
      if (end > q)
        {
          k = cl_api_url_decode (q, (size_t)((eq ? eq : end) - q), true);
          v = eq ? cl_api_url_decode (eq + 1, (size_t)(end - eq - 1), true) : cl_xstrdup ("");
          if (k == NULL || v == NULL)
            {
              free (k);
              free (v);
              json_decref (obj);
              return -1;
            }
          json_object_set_new (obj, k, json_string (v));
          free (k);
          free (v);
        }
      q = amp ? amp + 1 : end;
    }
  *out = obj;
  return 0;
}

int
cl_api_query_bool (struct api_call *c, const char *key, bool def, bool *out)
{
  const char *v = json_string_value (json_object_get (c->query, key));

  *out = def;
  if (v == NULL)
    return 0;
  if (strcmp (v, "1") == 0 || strcmp (v, "true") == 0 || *v == '\0')
    *out = true;
  else if (strcmp (v, "0") == 0 || strcmp (v, "false") == 0)
    *out = false;
  else
    {
      cl_api_reply_error (c, 400, "query parameter %s: expected 0, 1, true or false, got `%s`", key,
                          v);
      return -1;
    }
  return 0;
}

int
cl_api_query_int (struct api_call *c, const char *key, long min, long max, long def, long *out)
{
  const char *v = json_string_value (json_object_get (c->query, key));
  char *end;
  long n;

  *out = def;
  if (v == NULL)
    return 0;
  n = strtol (v, &end, 10);
  if (*v == '\0' || *end || n < min || n > max)
    {
      cl_api_reply_error (c, 400, "query parameter %s: expected an integer %ld-%ld, got `%s`", key,
                          min, max, v);
      return -1;
    }
  *out = n;
  return 0;
}

bool
cl_api_secret_equal (const char *a, const char *b)
{
  size_t la = strlen (a), lb = strlen (b);
  unsigned char diff = la != lb;
  for (size_t i = 0; i < la && i < lb; i++)
    diff |= (unsigned char)(a[i] ^ b[i]);
  return diff == 0;
}
