/* SPDX-License-Identifier: Apache-2.0 */
#include "common/json.h"
#include "common/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void
cl_cleanup_json_decref (json_t **j)
{
  json_decref (*j);
}

static int
load_error (const char *name, json_error_t *je, cl_error_t *err)
{
  if (je->line > 0)
    return cl_error_make (err, 0, "%s:%d:%d: %s", name, je->line, je->column, je->text);
  return cl_error_make (err, 0, "%s: %s", name, je->text);
}

int
cl_json_load_file (const char *path, json_t **out, cl_error_t *err)
{
  char *buf = NULL;
  size_t len = 0;
  int r;

  if (cl_read_file (path, &buf, &len, err) < 0)
    return -1;
  r = cl_json_load_buffer (path, buf, len, out, err);
  free (buf);
  return r;
}

int
cl_json_load_buffer (const char *name, const char *buf, size_t len, json_t **out, cl_error_t *err)
{
  json_error_t je;
  *out = json_loadb (buf, len, JSON_REJECT_DUPLICATES, &je);
  /* Specs write unlimited values as 2^64-1, beyond jansson's integers:
     read such documents with integers as reals (the getters accept
     integral reals). */
  if (*out == NULL && strncmp (je.text, "too big integer", 15) == 0)
    *out = json_loadb (buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je);
  if (*out == NULL)
    return load_error (name, &je, err);
  return 0;
}

char *
cl_json_path (const char *ctx, const char *key)
{
  if (ctx == NULL || *ctx == '\0')
    return cl_strdup_printf ("%s", key);
  return cl_strdup_printf ("%s.%s", ctx, key);
}

char *
cl_json_path_index (const char *ctx, size_t index)
{
  return cl_strdup_printf ("%s[%zu]", ctx ? ctx : "", index);
}

/* Integers read as reals (see cl_json_load_buffer). */
static bool
is_integral (json_t *v)
{
  double d = json_real_value (v);
  return d == __builtin_trunc (d);
}

const char *
cl_json_type_name (json_t *v)
{
  switch (json_typeof (v))
    {
    case JSON_OBJECT:
      return "object";
    case JSON_ARRAY:
      return "array";
    case JSON_STRING:
      return "string";
    case JSON_INTEGER:
      return "integer";
    case JSON_REAL:
      return is_integral (v) ? "integer" : "number";
    case JSON_TRUE:
    case JSON_FALSE:
      return "boolean";
    case JSON_NULL:
      return "null";
    }
  return "?";
}

/* Looks up key; 0 when absent or null, 1 when present, -1 when obj is not
   an object. */
static int
lookup (json_t *obj, const char *ctx, const char *key, json_t **v, cl_error_t *err)
{
  if (obj == NULL)
    return 0;
  if (!json_is_object (obj))
    return cl_error_raise (err, CL_ERR_INVALID, "%s: expected an object, got %s",
                           *ctx ? ctx : "(top)", cl_json_type_name (obj));
  *v = json_object_get (obj, key);
  return (*v == NULL || json_is_null (*v)) ? 0 : 1;
}

static int
type_error (const char *ctx, const char *key, const char *want, json_t *v, cl_error_t *err)
{
  char *path = cl_json_path (ctx, key);
  cl_error_raise (err, CL_ERR_INVALID, "%s: expected %s, got %s", path, want,
                  cl_json_type_name (v));
  free (path);
  return -1;
}

int
cl_json_string (json_t *obj, const char *ctx, const char *key, const char **out, cl_error_t *err)
{
  json_t *v;
  int r = lookup (obj, ctx, key, &v, err);
  if (r <= 0)
    return r;
  if (!json_is_string (v))
    return type_error (ctx, key, "a string", v, err);
  *out = json_string_value (v);
  return 1;
}

int
cl_json_bool (json_t *obj, const char *ctx, const char *key, bool *out, cl_error_t *err)
{
  json_t *v;
  int r = lookup (obj, ctx, key, &v, err);
  if (r <= 0)
    return r;
  if (!json_is_boolean (v))
    return type_error (ctx, key, "a boolean", v, err);
  *out = json_is_true (v);
  return 1;
}

int
cl_json_int64 (json_t *obj, const char *ctx, const char *key, int64_t *out, cl_error_t *err)
{
  json_t *v;
  int r = lookup (obj, ctx, key, &v, err);
  if (r <= 0)
    return r;
  if (json_is_real (v) && is_integral (v) && json_real_value (v) >= -9223372036854775808.0
      && json_real_value (v) < 9223372036854775808.0)
    {
      *out = (int64_t)json_real_value (v);
      return 1;
    }
  if (!json_is_integer (v))
    return type_error (ctx, key, "an integer", v, err);
  *out = json_integer_value (v);
  return 1;
}

int
cl_json_uint64 (json_t *obj, const char *ctx, const char *key, uint64_t *out, cl_error_t *err)
{
  json_t *v;
  int r = lookup (obj, ctx, key, &v, err);
  if (r <= 0)
    return r;
  /* jansson holds integers as json_int_t (long long); values above
     INT64_MAX (e.g. an unlimited rlimit written as 2^64-1) come in as
     reals. */
  if (json_is_real (v) && json_real_value (v) >= 0 && json_real_value (v) <= 18446744073709551615.0
      && is_integral (v))
    {
      double d = json_real_value (v);
      *out = d >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)d;
      return 1;
    }
  if (!json_is_integer (v) || json_integer_value (v) < 0)
    return type_error (ctx, key, "an unsigned integer", v, err);
  *out = (uint64_t)json_integer_value (v);
  return 1;
}

int
cl_json_object (json_t *obj, const char *ctx, const char *key, json_t **out, cl_error_t *err)
{
  json_t *v;
  int r = lookup (obj, ctx, key, &v, err);
  if (r <= 0)
    return r;
  if (!json_is_object (v))
    return type_error (ctx, key, "an object", v, err);
  *out = v;
  return 1;
}

int
cl_json_array (json_t *obj, const char *ctx, const char *key, json_t **out, cl_error_t *err)
{
  json_t *v;
  int r = lookup (obj, ctx, key, &v, err);
  if (r <= 0)
    return r;
  if (!json_is_array (v))
    return type_error (ctx, key, "an array", v, err);
  *out = v;
  return 1;
}

int
cl_json_string_array (json_t *obj, const char *ctx, const char *key, const char ***out, size_t *n,
                      cl_error_t *err)
{
  json_t *arr, *v;
  size_t i;
  const char **vec;
  int r = cl_json_array (obj, ctx, key, &arr, err);
  if (r <= 0)
    return r;
  vec = cl_xmalloc0 ((json_array_size (arr) + 1) * sizeof *vec);
  json_array_foreach (arr, i, v)
  {
    if (!json_is_string (v))
      {
        char *path = cl_json_path (ctx, key);
        cl_error_raise (err, CL_ERR_INVALID, "%s[%zu]: expected a string, got %s", path, i,
                        cl_json_type_name (v));
        free (path);
        free (vec);
        return -1;
      }
    vec[i] = json_string_value (v);
  }
  *out = vec;
  if (n)
    *n = json_array_size (arr);
  return 1;
}

json_t *
cl_json_strings (const char *const *v, size_t n)
{
  json_t *a = json_array ();
  for (size_t i = 0; i < n; i++)
    json_array_append_new (a, json_string (v[i]));
  return a;
}
