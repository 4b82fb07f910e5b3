/* SPDX-License-Identifier: Apache-2.0 */
/* /1.0/instances: instances, their state, logs and snapshots, over
   src/manager/manager.h.  What is cheap to check (names, values, that the
   instance exists and is in a state the action fits) is checked before
   the operation starts, so that a bad request gets its 4xx at once. */
#include "api/api_internal.h"
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "image/image.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const struct api_field no_fields[] = { { NULL, 0, false, NULL } };

/* ---- helpers ---- */

/* A manager handle from the pool, or NULL after replying. */
static struct cl_manager *
manager_get (struct api_call *c)
{
  struct cl_manager *m;
  cl_error_t err = NULL;

  if (cl_api_manager_get (c->ctx, &m, &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return NULL;
    }
  return m;
}

/* Gives the handle back; r < 0: replies with the error. */
static int
manager_put (struct api_call *c, struct cl_manager *m, int r, cl_error_t *err)
{
  cl_api_manager_put (c->ctx, m);
  if (r < 0)
    cl_api_reply_cl_error (c, err);
  return r;
}

json_t *
cl_api_instance_info (struct api_call *c, const char *name)
{
  struct cl_manager *m = manager_get (c);
  cl_error_t err = NULL;
  json_t *info = NULL;

  if (m)
    manager_put (c, m, cl_mgr_instance_info (m, name, &info, &err), &err);
  return info;
}

static const char *
info_status (json_t *info)
{
  return json_string_value (json_object_get (info, "status"));
}

/* running or frozen: a workload exists (a stop or a delete --force ends
   a frozen one too) */
static bool
info_running (json_t *info)
{
  return strcmp (info_status (info), "running") == 0 || strcmp (info_status (info), "frozen") == 0;
}

static const char *
arg_string (json_t *args, const char *key)
{
  return json_string_value (json_object_get (args, key));
}

/* A config value (string or integer) as a string (caller frees). */
static char *
scalar_string (json_t *v)
{
  if (json_is_integer (v))
    return cl_strdup_printf ("%lld", (long long)json_integer_value (v));
  return cl_xstrdup (json_string_value (v));
}

/* ---- list, create ---- */

/* filter=: terms "KEY eq|ne VALUE" joined by " and " (Incus's form,
   its conjunctive part), KEY one of name, status, kind (or type),
   image. */
#define LIST_TERMS 8
struct list_term
{
  int key; /* index in list_keys */
  bool ne;
  char *value;
};
static const char *const list_keys[] = { "name", "status", "kind", "image", "type" };

struct list_text
{
  struct api_text t;
  bool urls; /* recursion=0 */
  size_t n;
  struct list_term terms[LIST_TERMS];
  size_t nterms;
};

static void
list_terms_clear (struct list_text *l)
{
  for (size_t i = 0; i < l->nterms; i++)
    free (l->terms[i].value);
  l->nterms = 0;
}

/* Parses filter= into l->terms; replies 400 and returns -1 when wrong. */
static int
list_filter_parse (struct api_call *c, struct list_text *l)
{
  const char *f = json_string_value (json_object_get (c->query, "filter"));
  cleanup_free char *copy = NULL;
  char *save = NULL, *word;
  int at = 0; /* 0 key, 1 op, 2 value, 3 "and" */
  struct list_term *term = NULL;

  if (f == NULL)
    return 0;
  copy = cl_xstrdup (f);
  for (word = strtok_r (copy, " ", &save); word;
       word = strtok_r (NULL, " ", &save), at = (at + 1) % 4)
    switch (at)
      {
      case 0:
        if (l->nterms == LIST_TERMS)
          goto bad;
        term = &l->terms[l->nterms];
        term->key = -1;
        for (size_t k = 0; k < sizeof list_keys / sizeof *list_keys; k++)
          if (strcmp (word, list_keys[k]) == 0)
            term->key = k == 4 ? 2 : (int)k; /* type: kind */
        if (term->key < 0)
          {
            cl_api_reply_error (c, 400,
                                "query parameter filter: unknown key `%s` (name, status, kind, "
                                "image)",
                                word);
            return -1;
          }
        break;
      case 1:
        if (strcmp (word, "eq") != 0 && strcmp (word, "ne") != 0)
          goto bad;
        term->ne = word[0] == 'n';
        break;
      case 2:
        term->value = cl_xstrdup (word);
        l->nterms++;
        break;
      default:
        if (strcmp (word, "and") != 0)
          goto bad;
      }
  if (at == 3)
    return 0;
bad:
  cl_api_reply_error (c, 400,
                      "query parameter filter: expected \"KEY eq|ne VALUE [and ...]\" (at most "
                      "%d terms), got `%s`",
                      LIST_TERMS, f);
  return -1;
}

static bool
list_wanted (const struct list_text *l, const struct cl_instance_summary *s)
{
  for (size_t i = 0; i < l->nterms; i++)
    {
      const char *v = l->terms[i].key == 0   ? s->name
                      : l->terms[i].key == 1 ? s->status
                      : l->terms[i].key == 2 ? s->kind
                                             : s->image;
      if ((strcmp (v ? v : "", l->terms[i].value) == 0) == l->terms[i].ne)
        return false;
    }
  return true;
}

static void
list_one (void *opaque, const struct cl_instance_summary *s)
{
  struct list_text *l = opaque;
  struct api_text *t = &l->t;

  if (!list_wanted (l, s))
    return;
  cl_api_text_raw (t, l->n++ ? "," : "[", 1);
  if (l->urls)
    {
      cleanup_free char *url = cl_api_url ("/1.0/instances/", s->name);
      cl_api_text_string (t, url);
      return;
    }
  /* the fields and order of cl_mgr_instance_list's objects */
  cl_api_text_raw (t, "{\"name\":", 8);
  cl_api_text_string (t, s->name);
  cl_api_text_raw (t, ",\"kind\":", 8);
  cl_api_text_string (t, s->kind);
  cl_api_text_raw (t, ",\"image\":", 9);
  cl_api_text_string (t, s->image);
  cl_api_text_raw (t, ",\"status\":", 10);
  cl_api_text_string (t, s->status);
  cl_api_text_raw (t, ",\"created\":", 11);
  cl_api_text_int (t, (long long)s->created);
  cl_api_text_raw (t, ",\"pid\":", 7);
  if (s->pid)
    cl_api_text_int (t, s->pid);
  else
    cl_api_text_raw (t, "null", 4);
  cl_api_text_raw (t, ",\"exit_code\":", 13);
  if (s->has_exit_code)
    cl_api_text_int (t, s->exit_code);
  else
    cl_api_text_raw (t, "null", 4);
  cl_api_text_raw (t, "}", 1);
}

/* The last list's text of each kind (recursion 0 and 1), with the
   state's version it was made at: a poller asking again and again while
   nothing changes gets a copy, not another SELECT of thousands of rows.
   The lock is held for a lookup or a store, never while listing. */
static struct
{
  pthread_mutex_t lock;
  uint64_t version[2];
  char *text[2];
  size_t len[2];
} listed = { PTHREAD_MUTEX_INITIALIZER, { 0, 0 }, { NULL, NULL }, { 0, 0 } };

static bool
listed_copy (int kind, uint64_t version, struct api_text *t)
{
  bool hit;

  pthread_mutex_lock (&listed.lock);
  hit = version && listed.version[kind] == version && listed.text[kind];
  if (hit)
    cl_api_text_raw (t, listed.text[kind], listed.len[kind]);
  pthread_mutex_unlock (&listed.lock);
  return hit;
}

static void
listed_keep (int kind, uint64_t version, const struct api_text *t)
{
  char *copy;

  if (version == 0)
    return;
  copy = cl_xmalloc0 (t->len + 1);
  memcpy (copy, t->buf, t->len);
  pthread_mutex_lock (&listed.lock);
  free (listed.text[kind]);
  listed.text[kind] = copy;
  listed.len[kind] = t->len;
  listed.version[kind] = version;
  pthread_mutex_unlock (&listed.lock);
}

void
cl_api_instances_list (struct api_call *c)
{
  struct list_text l = { 0 };
  struct cl_manager *m;
  cl_error_t err = NULL;
  uint64_t version = 0;
  long recursion;
  int r;

  /* written as text as the rows come: a list of thousands costs no JSON
     tree */
  if (cl_api_query_int (c, "recursion", 0, 1, 0, &recursion) < 0 || list_filter_parse (c, &l) < 0
      || (m = manager_get (c)) == NULL)
    {
      list_terms_clear (&l);
      return;
    }
  l.urls = recursion == 0;
  r = cl_mgr_instance_check (m, &version, &err);
  /* (a filtered list is neither kept nor taken from what is kept) */
  if (r == 0 && (l.nterms || !listed_copy ((int)recursion, version, &l.t)))
    {
      r = cl_mgr_instance_rows (m, list_one, &l, &err);
      if (r == 0)
        {
          cl_api_text_raw (&l.t, l.n ? "]" : "[]", l.n ? 1 : 2);
          if (l.nterms == 0)
            listed_keep ((int)recursion, version, &l.t);
        }
    }
  list_terms_clear (&l);
  if (manager_put (c, m, r, &err) < 0)
    {
      free (l.t.buf);
      return;
    }
  cl_api_reply_sync_text (c, &l.t);
}

static const struct api_field source_fields[] = {
  { "type", API_STRING, true, NULL },
  { "image", API_STRING, false, NULL },    /* type image */
  { "instance", API_STRING, false, NULL }, /* type copy */
  { NULL, 0, false, NULL },
};

static const struct api_field create_config_fields[] = {
  { "limits.cpu", API_SCALAR, false, NULL },
  { "limits.memory", API_SCALAR, false, NULL },
  { "root.size", API_SCALAR, false, NULL },
  { NULL, 0, false, NULL },
};

/* "attach": true, an attached run (api_exec.c), and its fields */
static const char *const attach_only[]
    = { "interactive", "wait-for-websocket", "width", "height", NULL };

static const struct api_field create_fields[] = {
  { "name", API_STRING, false, NULL }, /* required, but by an attached run */
  { "type", API_STRING, false, NULL },
  { "source", API_OBJECT, true, source_fields },
  { "config", API_OBJECT, false, create_config_fields },
  { "command", API_STRING_ARRAY, false, NULL },
  { "environment", API_STRING_MAP, false, NULL },
  { "networks", API_STRING_ARRAY, false, NULL },
  { "no_network", API_BOOL, false, NULL },
  { "cold", API_BOOL, false, NULL },
  { "ports", API_STRING_ARRAY, false, NULL },
  { "kernel", API_STRING, false, NULL },
  { "initrd", API_STRING, false, NULL },
  { "cmdline", API_STRING, false, NULL },
  { "attach", API_BOOL, false, NULL },
  { "interactive", API_BOOL, false, NULL },
  { "wait-for-websocket", API_BOOL, false, NULL },
  { "width", API_INT, false, NULL },
  { "height", API_INT, false, NULL },
  { NULL, 0, false, NULL },
};

/* Reads the create body's config into o; a bad value: *bad names it. */
static int
launch_limits (json_t *config, struct cl_launch_opts *o, const char **bad, cl_error_t *err)
{
  json_t *v;

  if ((v = json_object_get (config, "limits.cpu")) && !json_is_null (v))
    {
      cleanup_free char *s = scalar_string (v);
      char *end;
      unsigned long n = strtoul (s, &end, 10);
      *bad = "config[\"limits.cpu\"]";
      if (*s == '\0' || *end || n == 0 || n > 256)
        return cl_error_make (err, 0, "%s: expected a number of CPUs (1-256), got `%s`", *bad, s);
      o->cpus = (unsigned)n;
    }
  if ((v = json_object_get (config, "limits.memory")) && !json_is_null (v))
    {
      cleanup_free char *s = scalar_string (v);
      *bad = "config[\"limits.memory\"]";
      if (cl_parse_size (s, *bad, &o->memory, err) < 0)
        return -1;
    }
  if ((v = json_object_get (config, "root.size")) && !json_is_null (v))
    {
      cleanup_free char *s = scalar_string (v);
      *bad = "config[\"root.size\"]";
      if (cl_parse_size (s, *bad, &o->disk_size, err) < 0)
        return -1;
    }
  *bad = NULL;
  return 0;
}

static const char **
string_array (json_t *a, size_t *n)
{
  const char **v = cl_xmalloc0 ((json_array_size (a) + 1) * sizeof *v);
  size_t i;
  json_t *e;

  json_array_foreach (a, i, e) v[i] = json_string_value (e);
  *n = json_array_size (a);
  return v;
}

int
cl_api_launch_opts (json_t *body, struct cl_launch_opts *o, cl_error_t *err)
{
  json_t *env = json_object_get (body, "environment"), *v;
  const char *bad, *k, *type = arg_string (body, "type");
  size_t ncmd = 0, i = 0;
  char **kv, **cmd;

  memset (o, 0, sizeof *o);
  o->name = arg_string (body, "name");
  o->image = json_string_value (json_object_get (json_object_get (body, "source"), "image"));
  o->vm = type && strcmp (type, "virtual-machine") == 0;
  if (launch_limits (json_object_get (body, "config"), o, &bad, err) < 0)
    return -1;
  kv = cl_xmalloc0 ((json_object_size (env) + 1) * sizeof *kv);
  json_object_foreach (env, k, v) kv[i++] = cl_strdup_printf ("%s=%s", k, json_string_value (v));
  o->env = (const char **)kv;
  o->n_env = i;
  o->networks = string_array (json_object_get (body, "networks"), &o->n_networks);
  o->ports = string_array (json_object_get (body, "ports"), &o->n_ports);
  o->no_network = json_is_true (json_object_get (body, "no_network"));
  o->cold = json_is_true (json_object_get (body, "cold"));
  cmd = (char **)string_array (json_object_get (body, "command"), &ncmd);
  o->argv = ncmd ? cmd : NULL;
  o->argc = ncmd;
  if (ncmd == 0)
    free (cmd);
  o->kernel = arg_string (body, "kernel");
  o->initrd = arg_string (body, "initrd");
  o->cmdline = arg_string (body, "cmdline");
  return 0;
}

void
cl_api_launch_opts_clear (struct cl_launch_opts *o)
{
  cl_strv_free ((char **)o->env);
  free (o->networks);
  free (o->ports);
  free (o->argv);
  memset (o, 0, sizeof *o);
}

static int
op_create (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  struct cl_launch_opts o;
  int r;

  (void)op;
  if (cl_api_launch_opts (args, &o, err) < 0)
    return -1;
  r = cl_mgr_instance_launch (m, &o, err);
  cl_api_launch_opts_clear (&o);
  return r;
}

static const struct api_op_kind kind_create = { .description = "Creating instance",
                                                .fn = op_create,
                                                .lifecycle_action = "instance-created" };

/* A 409 when the instance exists; 0 when it does not (-1 after
   replying). */
static int
check_absent (struct api_call *c, const char *name)
{
  json_t *info = cl_api_instance_info (c, name);
  if (info)
    {
      json_decref (info);
      cl_api_reply_error (c, 409, "instance `%s` already exists", name);
      return -1;
    }
  /* a quick 409 only: two creates racing meet the manager's own check */
  return c->resp->status == 404 ? 0 : -1;
}

static int
op_copy (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  (void)op;
  return cl_mgr_instance_copy (m, arg_string (args, "source"), arg_string (args, "name"), err);
}

/* cancellable: the tree copy (cp) is killed and the copy undone */
static const struct api_op_kind kind_copy = { .description = "Copying instance",
                                              .fn = op_copy,
                                              .lifecycle_action = "instance-created",
                                              .cancellable = true };

/* source.type copy: a stopped copy-on-write copy of an instance. */
static void
create_copy (struct api_call *c, const char *name, json_t *source)
{
  const char *from = json_string_value (json_object_get (source, "instance"));
  const char *key;
  json_t *v, *info;

  json_object_foreach (c->body, key, v)
  {
    if (strcmp (key, "name") != 0 && strcmp (key, "source") != 0)
      {
        cl_api_reply_bad_field (c, key,
                                "%s: not taken with source.type copy (the copy has the"
                                " source's)",
                                key);
        return;
      }
  }
  if (from == NULL || json_object_get (source, "image"))
    {
      const char *path = from ? "source.image" : "source.instance";
      cl_api_reply_bad_field (c, path, "%s: %s", path,
                              from ? "only with source.type image" : "required field missing");
      return;
    }
  if ((info = cl_api_instance_info (c, from)) == NULL)
    {
      cl_api_reply_bad_field (c, "source.instance", "source.instance: instance `%s` not found",
                              from);
      return;
    }
  json_decref (info);
  if (check_absent (c, name) < 0)
    return;
  cl_api_op_start (c, &kind_copy, name, NULL,
                   json_pack ("{s:s, s:s}", "name", name, "source", from));
}

void
cl_api_instances_create (struct api_call *c)
{
  struct cl_launch_opts o = { 0 };
  struct cl_image_store *store = NULL;
  struct cl_image *img = NULL;
  cl_error_t err = NULL;
  json_t *source;
  const char *name, *type, *bad;
  bool attach;

  if (cl_api_check_body (c, create_fields, true) < 0)
    return;
  attach = json_is_true (json_object_get (c->body, "attach"));
  source = json_object_get (c->body, "source");
  for (const char *const *k = attach_only; !attach && *k; k++)
    if (json_object_get (c->body, *k))
      {
        cl_api_reply_bad_field (c, *k, "%s: only with \"attach\": true", *k);
        return;
      }
  if (attach && strcmp (json_string_value (json_object_get (source, "type")), "image") != 0)
    {
      cl_api_reply_bad_field (c, "source.type", "source.type: an attached run is from an image");
      return;
    }
  if (attach && json_object_get (c->body, "name") == NULL)
    cl_api_run_name (c->body);
  name = json_string_value (json_object_get (c->body, "name"));
  type = json_string_value (json_object_get (c->body, "type"));
  if (name == NULL)
    {
      cl_api_reply_bad_field (c, "name", "name: required field missing");
      return;
    }
  if (cl_validate_name (name, "instance name", &err) < 0)
    {
      cl_api_reply_bad_field (c, "name", "%s", err->msg);
      cl_error_release (&err);
      return;
    }
  if (!attach && strcmp (json_string_value (json_object_get (source, "type")), "copy") == 0)
    {
      create_copy (c, name, source);
      return;
    }
  if (type == NULL)
    json_object_set_new (c->body, "type", json_string (type = "container"));
  if (strcmp (type, "container") != 0 && strcmp (type, "virtual-machine") != 0)
    {
      cl_api_reply_bad_field (c, "type", "type: expected container or virtual-machine, got `%s`",
                              type);
      return;
    }
  if (strcmp (json_string_value (json_object_get (source, "type")), "image") != 0)
    {
      cl_api_reply_bad_field (c, "source.type", "source.type: expected image or copy, got `%s`",
                              json_string_value (json_object_get (source, "type")));
      return;
    }
  if (json_object_get (source, "image") == NULL || json_object_get (source, "instance"))
    {
      const char *path = json_object_get (source, "instance") ? "source.instance" : "source.image";
      cl_api_reply_bad_field (c, path, "%s: %s", path,
                              json_object_get (source, "instance") ? "only with source.type copy"
                                                                   : "required field missing");
      return;
    }
  if (launch_limits (json_object_get (c->body, "config"), &o, &bad, &err) < 0)
    {
      cl_api_reply_bad_field (c, bad, "%s", err->msg);
      cl_error_release (&err);
      return;
    }
  if (cl_img_store_open (c->ctx->root, &store, &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return;
    }
  if (cl_img_resolve (store, json_string_value (json_object_get (source, "image")), &img, &err) < 0)
    {
      cl_img_store_close (store);
      cl_api_reply_bad_field (c, "source.image", "source.image: %s", err->msg);
      cl_error_release (&err);
      return;
    }
  cl_img_free (img);
  cl_img_store_close (store);
  if (check_absent (c, name) < 0)
    return;
  if (attach)
    cl_api_instance_run (c);
  else
    cl_api_op_start (c, &kind_create, name, NULL, json_incref (c->body));
}

/* ---- one instance ---- */

/* An instance's ETag: what PATCH changes, its config, hashed (FNV-1a,
   64 bits), quoted. */
static char *
instance_etag (json_t *info)
{
  cleanup_free char *s
      = json_dumps (json_object_get (info, "config"), JSON_COMPACT | JSON_SORT_KEYS);
  return cl_strdup_printf ("\"%016llx\"", (unsigned long long)cl_fnv1a64 (s ? s : ""));
}

static void
reply_instance (struct api_call *c, json_t *info)
{
  char *etag = instance_etag (info);
  cl_api_reply_sync (c, 200, info);
  c->resp->etag = etag;
}

void
cl_api_instance_get (struct api_call *c)
{
  json_t *info = cl_api_instance_info (c, c->params[0]);
  if (info)
    reply_instance (c, info);
}

static const struct api_field patch_fields[] = {
  { "config", API_SCALAR_MAP, true, NULL },
  { NULL, 0, false, NULL },
};

static const struct api_field put_fields[] = {
  { "config", API_SCALAR_MAP, false, NULL },
  { NULL, 0, false, NULL },
};

/* The writable config keys: what PATCH changes and PUT replaces (an
   absent one is reset to its default, no limit). */
static const char *const config_keys[] = { "limits.memory", "limits.cpu", NULL };

/* PATCHes and PUTs of this process one at a time, so that If-Match holds
   from the check to the change. */
static pthread_mutex_t patch_lock = PTHREAD_MUTEX_INITIALIZER;

/* 412 when If-Match names another config than the instance's; 0, or -1
   after replying. */
static int
check_if_match (struct api_call *c, struct cl_manager *m)
{
  cleanup_free char *etag = NULL;
  cl_error_t err = NULL;
  json_t *info;

  if (c->if_match == NULL || strcmp (c->if_match, "*") == 0)
    return 0;
  if (cl_mgr_instance_info (m, c->params[0], &info, &err) < 0)
    {
      cl_api_reply_cl_error (c, &err);
      return -1;
    }
  etag = instance_etag (info);
  json_decref (info);
  if (strcmp (etag, c->if_match) == 0)
    return 0;
  cl_api_reply_error (c, 412, "instance `%s` changed since you read it (ETag %s, If-Match %s)",
                      c->params[0], etag, c->if_match);
  return -1;
}

/* Applies config (key -> value, null: the default); 0, or -1 after
   replying. */
static int
config_apply (struct api_call *c, struct cl_manager *m, json_t *config)
{
  cl_error_t err = NULL;
  const char *key;
  json_t *v;

  if (check_if_match (c, m) < 0)
    return -1;
  json_object_foreach (config, key, v)
  {
    cleanup_free char *value = json_is_null (v) ? NULL : scalar_string (v);
    if (cl_mgr_instance_config_set (m, c->params[0], key, value, &err) < 0)
      {
        if (cl_error_kind_of (err) == CL_ERR_INVALID)
          {
            cleanup_free char *path = cl_api_path_join ("config", key);
            cl_api_reply_bad_field (c, path, "%s: %s", path, err->msg);
            cl_error_release (&err);
          }
        else
          cl_api_reply_cl_error (c, &err);
        return -1;
      }
  }
  return 0;
}

/* PATCH and PUT: config's keys checked, every value checked before any is
   applied, then applied, the instance-updated event, and the instance
   with its new ETag.  config: the body's, with nulls for keys reset. */
static void
config_update (struct api_call *c, json_t *config)
{
  struct cl_launch_opts o = { 0 };
  struct cl_manager *m;
  cl_error_t err = NULL;
  const char *bad, *key;
  json_t *info, *v;
  int r;

  json_object_foreach (config, key, v)
  {
    const char *const *k = config_keys;
    while (*k && strcmp (*k, key) != 0)
      k++;
    if (*k == NULL)
      {
        cleanup_free char *path = cl_api_path_join ("config", key);
        cl_api_reply_bad_field (c, path, "%s: unknown key `%s` (limits.memory, limits.cpu)", path,
                                key);
        return;
      }
  }
  if (launch_limits (config, &o, &bad, &err) < 0)
    {
      cl_api_reply_bad_field (c, bad, "%s", err->msg);
      cl_error_release (&err);
      return;
    }
  if ((m = manager_get (c)) == NULL)
    return;
  pthread_mutex_lock (&patch_lock);
  r = config_apply (c, m, config);
  pthread_mutex_unlock (&patch_lock);
  if (r < 0)
    {
      cl_api_manager_put (c->ctx, m);
      return;
    }
  if (manager_put (c, m, cl_mgr_instance_info (m, c->params[0], &info, &err), &err) < 0)
    return;
  {
    cleanup_free char *url = cl_api_url ("/1.0/instances/", c->params[0]);
    cl_api_lifecycle (c->ctx, "instance-updated", url);
  }
  reply_instance (c, info);
}

void
cl_api_instance_patch (struct api_call *c)
{
  if (cl_api_check_body (c, patch_fields, true) == 0)
    config_update (c, json_object_get (c->body, "config"));
}

/* PUT: the whole writable document.  `config` replaces the config (a key
   left out goes back to its default); the other fields of GET's document
   (name, kind, status, ...) are read-only: allowed when unchanged, so
   that a document read, edited and sent back fits. */
void
cl_api_instance_put (struct api_call *c)
{
  cleanup_json json_t *config = NULL;
  json_t *info, *v, *cur;
  const char *key;

  if (c->body != NULL && !json_is_object (c->body))
    {
      cl_api_reply_error (c, 400, "request body: expected an object");
      return;
    }
  if ((info = cl_api_instance_info (c, c->params[0])) == NULL)
    return;
  json_object_foreach (c->body, key, v)
  {
    cleanup_free char *path = NULL;
    if (strcmp (key, "config") == 0)
      continue;
    cur = json_object_get (info, key);
    if (cur && json_equal (cur, v))
      continue;
    path = cl_api_path_join (NULL, key);
    if (cur == NULL)
      cl_api_reply_bad_field (c, path,
                              "%s: unknown field `%s` (PUT takes config; the other"
                              " fields of the instance are read-only)",
                              path, key);
    else
      {
        cleanup_free char *now = json_dumps (cur, JSON_COMPACT | JSON_ENCODE_ANY);
        cl_api_reply_bad_field (c, path, "%s: read-only field (the instance's is %s)", path, now);
      }
    json_decref (info);
    return;
  }
  json_decref (info);
  /* config checked as PATCH checks it (the read-only fields passed
     above), then every key absent reset */
  {
    json_t *body = c->body;
    int r;
    c->body = json_pack ("{s:O*}", "config", json_object_get (body, "config"));
    r = cl_api_check_body (c, put_fields, false);
    json_decref (c->body);
    c->body = body;
    if (r < 0)
      return;
  }
  config = json_deep_copy (json_object_get (c->body, "config"));
  if (config == NULL)
    config = json_object ();
  for (const char *const *k = config_keys; *k; k++)
    if (json_object_get (config, *k) == NULL)
      json_object_set_new (config, *k, json_null ());
  config_update (c, config);
}

static int
op_delete (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  (void)op;
  return cl_mgr_instance_delete (m, arg_string (args, "name"),
                                 json_is_true (json_object_get (args, "force")), err);
}

static const struct api_op_kind kind_delete = { .description = "Deleting instance",
                                                .fn = op_delete,
                                                .lifecycle_action = "instance-deleted" };

void
cl_api_instance_delete (struct api_call *c)
{
  json_t *info;
  bool force;

  if (cl_api_check_body (c, no_fields, false) < 0
      || cl_api_query_bool (c, "force", false, &force) < 0)
    return;
  if ((info = cl_api_instance_info (c, c->params[0])) == NULL)
    return;
  if (info_running (info) && !force)
    {
      json_decref (info);
      cl_api_reply_error (c, 409, "instance `%s` is running: stop it first or use force=1",
                          c->params[0]);
      return;
    }
  json_decref (info);
  cl_api_op_start (c, &kind_delete, c->params[0], NULL,
                   json_pack ("{s:s, s:b}", "name", c->params[0], "force", force));
}

/* ---- state ---- */

void
cl_api_instance_state_get (struct api_call *c)
{
  json_t *info = cl_api_instance_info (c, c->params[0]), *state;

  if (info == NULL)
    return;
  state = json_pack ("{s:O, s:O, s:O, s:O}", "status", json_object_get (info, "status"), "pid",
                     json_object_get (info, "pid"), "monitor_pid",
                     json_object_get (info, "monitor_pid"), "exit_code",
                     json_object_get (info, "exit_code"));
  json_decref (info);
  cl_api_reply_sync (c, 200, state);
}

static int
op_start (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  (void)op;
  return cl_mgr_instance_start (m, arg_string (args, "name"), err);
}

static int
op_stop (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  (void)op;
  return cl_mgr_instance_stop (m, arg_string (args, "name"),
                               (int)json_integer_value (json_object_get (args, "timeout")),
                               json_is_true (json_object_get (args, "force")), err);
}

static int
op_restart (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  bool force = json_is_true (json_object_get (args, "force"));
  (void)op;
  return cl_mgr_instance_restart (
      m, arg_string (args, "name"),
      force ? 0 : (int)json_integer_value (json_object_get (args, "timeout")), err);
}

static int
op_freeze (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  (void)op;
  return cl_mgr_instance_freeze (m, arg_string (args, "name"),
                                 json_is_true (json_object_get (args, "freeze")), err);
}

static int
op_checkpoint (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  (void)op;
  return cl_mgr_instance_checkpoint (m, arg_string (args, "name"), err);
}

/* A live move's source side: the VM's migration to the destination's
   uri; the VMM's last figures are the operation's metadata. */
static int
op_migrate (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  json_t *figures = NULL;
  int r = cl_mgr_instance_migrate (m, arg_string (args, "name"), arg_string (args, "uri"),
                                   json_string_value (json_object_get (args, "token")), &figures,
                                   err);
  if (r == 0 && figures)
    cl_api_op_set_metadata (op, json_pack ("{s:o}", "migration", figures), NULL);
  else
    json_decref (figures);
  return r;
}

/* cancellable: the VMM's migration is cancelled, the VM runs on here */
static const struct api_op_kind kind_migrate = { .description = "Migrating instance",
                                                 .fn = op_migrate,
                                                 .lifecycle_action = "instance-stopped",
                                                 .cancellable = true };
static const struct api_op_kind kind_checkpoint = { .description = "Checkpointing instance",
                                                    .fn = op_checkpoint,
                                                    .lifecycle_action = "instance-stopped" };
static const struct api_op_kind kind_freeze = { .description = "Freezing instance",
                                                .fn = op_freeze,
                                                .lifecycle_action = "instance-paused" };
static const struct api_op_kind kind_unfreeze = { .description = "Unfreezing instance",
                                                  .fn = op_freeze,
                                                  .lifecycle_action = "instance-resumed" };
static const struct api_op_kind kind_start = { .description = "Starting instance",
                                               .fn = op_start,
                                               .lifecycle_action = "instance-started" };
static const struct api_op_kind kind_stop
    = { .description = "Stopping instance", .fn = op_stop, .lifecycle_action = "instance-stopped" };
static const struct api_op_kind kind_restart = { .description = "Restarting instance",
                                                 .fn = op_restart,
                                                 .lifecycle_action = "instance-restarted" };

static const struct api_field state_fields[] = {
  { "action", API_STRING, true, NULL },
  { "timeout", API_INT, false, NULL },
  { "force", API_BOOL, false, NULL },
  /* migrate: the destination's stream, tcp:HOST:PORT, and the token it
     expects in the stream's header (docs/move.md) */
  { "uri", API_STRING, false, NULL },
  { "token", API_STRING, false, NULL },
  { NULL, 0, false, NULL },
};

void
cl_api_instance_state_put (struct api_call *c)
{
  const struct api_op_kind *kind;
  const char *action, *want, *uri;
  json_int_t timeout = 10;
  json_t *info;
  bool running;

  if (cl_api_check_body (c, state_fields, true) < 0)
    return;
  action = json_string_value (json_object_get (c->body, "action"));
  if (strcmp (action, "start") == 0)
    kind = &kind_start;
  else if (strcmp (action, "stop") == 0)
    kind = &kind_stop;
  else if (strcmp (action, "restart") == 0)
    kind = &kind_restart;
  else if (strcmp (action, "freeze") == 0)
    kind = &kind_freeze;
  else if (strcmp (action, "unfreeze") == 0)
    kind = &kind_unfreeze;
  else if (strcmp (action, "checkpoint") == 0)
    kind = &kind_checkpoint;
  else if (strcmp (action, "migrate") == 0)
    kind = &kind_migrate;
  else
    {
      cl_api_reply_bad_field (c, "action",
                              "action: expected start, stop, restart, freeze, unfreeze, "
                              "checkpoint or migrate, got `%s`",
                              action);
      return;
    }
  uri = json_string_value (json_object_get (c->body, "uri"));
  if ((kind == &kind_migrate) != (uri != NULL))
    {
      cl_api_reply_bad_field (c, "uri", "uri: %s",
                              uri ? "only the action migrate takes one"
                                  : "migrate: required (tcp:HOST:PORT of the destination)");
      return;
    }
  if (json_object_get (c->body, "token") && kind != &kind_migrate)
    {
      cl_api_reply_bad_field (c, "token", "token: only the action migrate takes one");
      return;
    }
  if (uri && strncmp (uri, "tcp:", 4) != 0)
    {
      cl_api_reply_bad_field (c, "uri", "uri: expected tcp:HOST:PORT, got `%s`", uri);
      return;
    }
  if (json_object_get (c->body, "timeout"))
    timeout = json_integer_value (json_object_get (c->body, "timeout"));
  if (timeout < 0 || timeout > 3600)
    {
      cl_api_reply_bad_field (c, "timeout", "timeout: expected seconds, 0-3600, got %lld",
                              (long long)timeout);
      return;
    }
  if ((info = cl_api_instance_info (c, c->params[0])) == NULL)
    return;
  running = info_running (info);
  want = kind == &kind_freeze ? "running" : kind == &kind_unfreeze ? "frozen" : NULL;
  if (want && strcmp (info_status (info), want) != 0)
    {
      cl_api_reply_error (c, 409, "instance `%s` is %s, not %s", c->params[0], info_status (info),
                          want);
      json_decref (info);
      return;
    }
  json_decref (info);
  if (kind == &kind_start && running)
    {
      cl_api_reply_error (c, 409, "instance `%s` is already running", c->params[0]);
      return;
    }
  if ((kind == &kind_stop || kind == &kind_checkpoint || kind == &kind_migrate) && !running)
    {
      cl_api_reply_error (c, 409, "instance `%s` is not running", c->params[0]);
      return;
    }
  cl_api_op_start (c, kind, c->params[0], NULL,
                   json_pack ("{s:s, s:I, s:b, s:b, s:s?, s:O?}", "name", c->params[0], "timeout",
                              timeout, "force", json_is_true (json_object_get (c->body, "force")),
                              "freeze", kind == &kind_freeze, "uri", uri, "token",
                              json_object_get (c->body, "token")));
}

/* ---- logs ---- */

void
cl_api_instance_logs (struct api_call *c)
{
  struct cl_manager *m;
  cl_error_t err = NULL;
  cleanup_free char *path = NULL, *buf = NULL;
  cleanup_file FILE *f = NULL;
  long size, offset, from;
  size_t n = 0;

  if (cl_api_query_int (c, "offset", -1, LONG_MAX, -1, &offset) < 0 || (m = manager_get (c)) == NULL
      || manager_put (c, m, cl_mgr_instance_log_path (m, c->params[0], &path, &err), &err) < 0)
    return;
  f = fopen (path, "re");
  if (f == NULL && errno != ENOENT)
    {
      cl_api_reply_error (c, 500, "open `%s`: %s", path, strerror (errno));
      return;
    }
  if (f && fseek (f, 0, SEEK_END) == 0 && (size = ftell (f)) > 0)
    {
      /* the last CL_API_LOG_LIMIT bytes, or that many from the offset */
      from = size > (long)CL_API_LOG_LIMIT ? size - (long)CL_API_LOG_LIMIT : 0;
      if (offset >= 0)
        from = offset < size ? offset : size;
      if (size - from > (long)CL_API_LOG_LIMIT)
        size = from + (long)CL_API_LOG_LIMIT;
      buf = cl_xmalloc0 ((size_t)(size - from) + 1);
      fseek (f, from, SEEK_SET);
      n = fread (buf, 1, (size_t)(size - from), f);
    }
  cl_api_response_clear (c->resp);
  c->resp->status = 200;
  c->resp->content_type = "text/plain; charset=utf-8";
  c->resp->raw = buf ? steal_pointer (&buf) : cl_xstrdup ("");
  c->resp->raw_len = n;
}

/* ---- snapshots ---- */

/* The snapshot list of an instance, or NULL after replying. */
static json_t *
snapshot_list (struct api_call *c)
{
  struct cl_manager *m = manager_get (c);
  cl_error_t err = NULL;
  json_t *list = NULL;

  if (m)
    manager_put (c, m, cl_mgr_snapshot_list (m, c->params[0], &list, &err), &err);
  return list;
}

/* The snapshot c->params[1], or NULL after replying 404. */
static json_t *
snapshot_find (struct api_call *c)
{
  json_t *list = snapshot_list (c), *e, *found = NULL;
  size_t i;

  if (list == NULL)
    return NULL;
  json_array_foreach (
      list, i, e) if (strcmp (json_string_value (json_object_get (e, "name")), c->params[1]) == 0)
      found
      = json_incref (e);
  json_decref (list);
  if (found == NULL)
    cl_api_reply_error (c, 404, "snapshot `%s` of instance `%s` not found", c->params[1],
                        c->params[0]);
  return found;
}

static char *
snapshot_url (const char *instance, const char *snap)
{
  cleanup_free char *base = cl_api_url ("/1.0/instances/", instance);
  cleanup_free char *prefix = cl_strdup_printf ("%s/snapshots/", base);
  return cl_api_url (prefix, snap);
}

void
cl_api_snapshots_list (struct api_call *c)
{
  json_t *list;
  long recursion;

  if (cl_api_query_int (c, "recursion", 0, 1, 0, &recursion) < 0
      || (list = snapshot_list (c)) == NULL)
    return;
  if (recursion == 0)
    {
      cleanup_free char *base = cl_api_url ("/1.0/instances/", c->params[0]);
      cleanup_free char *prefix = cl_strdup_printf ("%s/snapshots/", base);
      cl_api_names_to_urls (list, prefix);
    }
  cl_api_reply_sync (c, 200, list);
}

static int
op_snapshot_create (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  (void)op;
  return cl_mgr_snapshot_create (m, arg_string (args, "name"), arg_string (args, "snapshot"),
                                 json_is_true (json_object_get (args, "stateful")), err);
}

static int
op_snapshot_restore (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  (void)op;
  return cl_mgr_snapshot_restore (m, arg_string (args, "name"), arg_string (args, "snapshot"), err);
}

static int
op_snapshot_delete (struct api_op *op, struct cl_manager *m, json_t *args, cl_error_t *err)
{
  (void)op;
  return cl_mgr_snapshot_delete (m, arg_string (args, "name"), arg_string (args, "snapshot"), err);
}

static const struct api_op_kind kind_snapshot_create
    = { .description = "Snapshotting instance",
        .fn = op_snapshot_create,
        .lifecycle_action = "instance-snapshot-created" };
static const struct api_op_kind kind_snapshot_restore
    = { .description = "Restoring snapshot",
        .fn = op_snapshot_restore,
        .lifecycle_action = "instance-snapshot-restored" };
static const struct api_op_kind kind_snapshot_delete
    = { .description = "Deleting snapshot",
        .fn = op_snapshot_delete,
        .lifecycle_action = "instance-snapshot-deleted" };

static const struct api_field snapshot_create_fields[] = {
  { "name", API_STRING, true, NULL },
  { "stateful", API_BOOL, false, NULL },
  { NULL, 0, false, NULL },
};

/* Starts a snapshot operation on c->params[0] and snapshot `snap`. */
static void
snapshot_op (struct api_call *c, const struct api_op_kind *kind, const char *snap, bool stateful)
{
  cleanup_free char *url = snapshot_url (c->params[0], snap);
  cl_api_op_start (
      c, kind, c->params[0], url,
      json_pack ("{s:s, s:s, s:b}", "name", c->params[0], "snapshot", snap, "stateful", stateful));
}

void
cl_api_snapshots_create (struct api_call *c)
{
  cl_error_t err = NULL;
  const char *snap;
  json_t *info;

  if (cl_api_check_body (c, snapshot_create_fields, true) < 0)
    return;
  snap = json_string_value (json_object_get (c->body, "name"));
  if (cl_validate_name (snap, "snapshot name", &err) < 0)
    {
      cl_api_reply_bad_field (c, "name", "%s", err->msg);
      cl_error_release (&err);
      return;
    }
  if ((info = cl_api_instance_info (c, c->params[0])) == NULL)
    return;
  json_decref (info);
  snapshot_op (c, &kind_snapshot_create, snap,
               json_is_true (json_object_get (c->body, "stateful")));
}

void
cl_api_snapshot_get (struct api_call *c)
{
  json_t *snap = snapshot_find (c);
  if (snap)
    cl_api_reply_sync (c, 200, snap);
}

/* restore and delete: an existing snapshot, no body fields */
static void
snapshot_action (struct api_call *c, const struct api_op_kind *kind)
{
  json_t *snap;

  if (cl_api_check_body (c, no_fields, false) < 0 || (snap = snapshot_find (c)) == NULL)
    return;
  json_decref (snap);
  snapshot_op (c, kind, c->params[1], false);
}

void
cl_api_snapshot_restore (struct api_call *c)
{
  snapshot_action (c, &kind_snapshot_restore);
}

void
cl_api_snapshot_delete (struct api_call *c)
{
  snapshot_action (c, &kind_snapshot_delete);
}
