/* SPDX-License-Identifier: Apache-2.0 */
/* Request bodies checked against a table of fields, so that every
   resource refuses unknown fields and wrong types the same way: 400 with
   the JSON path of the field. */
#include "api/api_internal.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"

#include <string.h>

static const char *const expected_name[] = {
  [API_STRING] = "a string",
  [API_BOOL] = "a boolean",
  [API_INT] = "an integer",
  [API_OBJECT] = "an object",
  [API_STRING_ARRAY] = "an array of strings",
  [API_STRING_MAP] = "an object of strings",
  [API_SCALAR] = "a string or an integer",
  [API_SCALAR_MAP] = "an object of strings and integers",
};

char *
cl_api_path_join (const char *ctx, const char *key)
{
  const char *sep = ctx && *ctx ? "." : "";
  if (strchr (key, '.'))
    return cl_strdup_printf ("%s[\"%s\"]", ctx ? ctx : "", key);
  return cl_strdup_printf ("%s%s%s", ctx ? ctx : "", sep, key);
}

/* 0 fits; -1 does not, with *bad the path and *why the message. */
static int check_value (json_t *v, const char *path, const struct api_field *f, char **bad,
                        char **why);

static int
check_object (json_t *obj, const char *ctx, const struct api_field *spec, char **bad, char **why)
{
  const char *key;
  json_t *v;

  json_object_foreach (obj, key, v)
  {
    const struct api_field *f = spec;
    cleanup_free char *path = cl_api_path_join (ctx, key);
    while (f->name && strcmp (f->name, key) != 0)
      f++;
    if (f->name == NULL)
      {
        *bad = steal_pointer (&path);
        *why = cl_strdup_printf ("unknown field `%s`", key);
        return -1;
      }
    if (check_value (v, path, f, bad, why) < 0)
      return -1;
  }
  for (const struct api_field *f = spec; f->name; f++)
    if (f->required && json_object_get (obj, f->name) == NULL)
      {
        *bad = cl_api_path_join (ctx, f->name);
        *why = cl_xstrdup ("required field missing");
        return -1;
      }
  return 0;
}

static int
check_value (json_t *v, const char *path, const struct api_field *f, char **bad, char **why)
{
  bool ok;
  size_t i;
  const char *k;
  json_t *e;

  switch (f->type)
    {
    case API_STRING:
      ok = json_is_string (v);
      break;
    case API_BOOL:
      ok = json_is_boolean (v);
      break;
    case API_INT:
      ok = json_is_integer (v);
      break;
    case API_SCALAR:
      ok = json_is_string (v) || json_is_integer (v);
      break;
    case API_OBJECT:
      if (!json_is_object (v))
        {
          ok = false;
          break;
        }
      /* no sub: any object, which the handler checks */
      return f->sub ? check_object (v, path, f->sub, bad, why) : 0;
    case API_STRING_ARRAY:
      ok = json_is_array (v);
      if (ok)
        json_array_foreach (v, i, e) if (!json_is_string (e))
        {
          *bad = cl_strdup_printf ("%s[%zu]", path, i);
          *why = cl_strdup_printf ("expected a string, got %s", cl_json_type_name (e));
          return -1;
        }
      break;
    case API_STRING_MAP:
    case API_SCALAR_MAP:
      ok = json_is_object (v);
      if (ok)
        json_object_foreach (v, k, e) if (!json_is_string (e)
                                          && (f->type == API_STRING_MAP || !json_is_integer (e)))
        {
          *bad = cl_api_path_join (path, k);
          *why
              = cl_strdup_printf ("expected %s, got %s",
                                  f->type == API_STRING_MAP ? "a string" : "a string or an integer",
                                  cl_json_type_name (e));
          return -1;
        }
      break;
    default:
      ok = false;
    }
  if (ok)
    return 0;
  *bad = cl_xstrdup (path);
  *why = cl_strdup_printf ("expected %s, got %s", expected_name[f->type], cl_json_type_name (v));
  return -1;
}

int
cl_api_check_body (struct api_call *c, const struct api_field *spec, bool body_required)
{
  cleanup_free char *bad = NULL, *why = NULL;

  if (c->body == NULL)
    {
      if (body_required)
        {
          cl_api_reply_error (c, 400, "request body: expected a JSON object");
          return -1;
        }
      c->body = json_object ();
    }
  if (!json_is_object (c->body))
    {
      cl_api_reply_error (c, 400, "request body: expected a JSON object, got %s",
                          cl_json_type_name (c->body));
      return -1;
    }
  if (check_object (c->body, "", spec, &bad, &why) < 0)
    {
      cl_api_reply_bad_field (c, bad, "%s: %s", bad, why);
      return -1;
    }
  return 0;
}
