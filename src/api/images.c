/* /1.0/images over the image store (src/image/image.h). */
#include "api/internal.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "image/image.h"

#include <stdlib.h>
#include <string.h>

static json_t *
image_json (const struct cl_image_info *v)
{
  json_t *names = json_array ();
  for (char **nm = v->names; *nm; nm++)
    json_array_append_new (names, json_string (*nm));
  return json_pack ("{s:s, s:o, s:I, s:I, s:I, s:I}", "id", v->id, "names", names, "created",
                    (json_int_t)v->created, "size", (json_int_t)v->size, "layers",
                    (json_int_t)v->n_layers, "uses", (json_int_t)v->n_uses);
}

/* The store, or NULL after replying. */
static struct cl_image_store *
store_open (struct api_call *c)
{
  struct cl_image_store *s = NULL;
  cl_error_t err = NULL;

  if (cl_image_store_open (c->ctx->root, &s, &err) < 0)
    api_reply_cl_error (c, &err);
  return s;
}

/* Closes the store; r < 0: replies with the error. */
static int
store_close (struct api_call *c, struct cl_image_store *s, int r, cl_error_t *err)
{
  cl_image_store_close (s);
  if (r < 0)
    api_reply_cl_error (c, err);
  return r;
}

void
api_images_list (struct api_call *c)
{
  struct cl_image_store *s = NULL;
  struct cl_image_info *v = NULL;
  cl_error_t err = NULL;
  json_t *list;
  size_t n = 0;
  long recursion;

  if (api_query_int (c, "recursion", 0, 1, 0, &recursion) < 0)
    return;
  if ((s = store_open (c)) == NULL || store_close (c, s, cl_image_list (s, &v, &n, &err), &err) < 0)
    return;
  list = json_array ();
  for (size_t i = 0; i < n; i++)
    if (recursion)
      json_array_append_new (list, image_json (&v[i]));
    else
      {
        char *url = api_url ("/1.0/images/", v[i].id);
        json_array_append_new (list, json_string (url));
        free (url);
      }
  cl_image_info_free (v, n);
  api_reply_sync (c, 200, list);
}

void
api_image_get (struct api_call *c)
{
  struct cl_image_store *s = NULL;
  cleanup_free char *out = NULL;
  cl_error_t err = NULL;
  json_t *j;

  if ((s = store_open (c)) == NULL
      || store_close (c, s, cl_image_inspect_json (s, c->params[0], &out, &err), &err) < 0)
    return;
  if (cl_json_load_buffer ("image", out, strlen (out), &j, &err) < 0)
    {
      api_reply_cl_error (c, &err);
      return;
    }
  api_reply_sync (c, 200, j);
}

void
api_image_delete (struct api_call *c)
{
  struct cl_image_store *s = NULL;
  cl_error_t err = NULL;

  if ((s = store_open (c)) == NULL
      || store_close (c, s, cl_image_remove (s, c->params[0], &err), &err) < 0)
    return;
  {
    cleanup_free char *url = api_url ("/1.0/images/", c->params[0]);
    api_lifecycle (c->ctx, "image-deleted", url);
  }
  api_reply_sync (c, 200, NULL);
}
