/* SPDX-License-Identifier: Apache-2.0 */
/* The Cloisonfile: found in the current directory or a parent, parsed
   with libyaml's document API (each node keeps its line and column), and
   checked whole before anything is made: every key known, every value
   of its type, every reference resolved (networks, volumes, folders,
   depends_on without a cycle).  Errors are "FILE:LINE:COL: KEY.PATH:
   why", the position of the offending node. */
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "manager/project_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

struct parse
{
  yaml_document_t *doc;
  const char *file; /* as shown in errors */
  struct cl_project *p;
  cl_error_t *err;
};

static int perr (struct parse *ps, yaml_node_t *n, const char *path, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
static int
perr (struct parse *ps, yaml_node_t *n, const char *path, const char *fmt, ...)
{
  char msg[512];
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  return cl_error_raise (ps->err, CL_ERR_INVALID, "%s:%zu:%zu: %s: %s", ps->file,
                         n ? n->start_mark.line + 1 : 1, n ? n->start_mark.column + 1 : 1, path,
                         msg);
}

static const char *
node_kind (yaml_node_t *n)
{
  switch (n->type)
    {
    case YAML_MAPPING_NODE:
      return "a mapping";
    case YAML_SEQUENCE_NODE:
      return "a list";
    default:
      return "a scalar";
    }
}

static int
want_type (struct parse *ps, yaml_node_t *n, yaml_node_type_t t, const char *path)
{
  static const char *const names[] = {
    [YAML_SCALAR_NODE] = "a scalar",
    [YAML_SEQUENCE_NODE] = "a list",
    [YAML_MAPPING_NODE] = "a mapping",
  };
  if (n->type != t)
    return perr (ps, n, path, "expected %s, got %s", names[t], node_kind (n));
  return 0;
}

static const char *
scalar (yaml_node_t *n)
{
  return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool
quoted (yaml_node_t *n)
{
  return n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE
         || n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
}

static int
get_string (struct parse *ps, yaml_node_t *n, const char *path, const char **out)
{
  if (want_type (ps, n, YAML_SCALAR_NODE, path) < 0)
    return -1;
  *out = scalar (n);
  return 0;
}

static int
get_uint (struct parse *ps, yaml_node_t *n, const char *path, unsigned long max, unsigned *out)
{
  const char *s;
  char *end;
  unsigned long v;

  if (get_string (ps, n, path, &s) < 0)
    return -1;
  errno = 0;
  v = strtoul (s, &end, 10);
  if (quoted (n) || *s == '\0' || *s == '-' || *end || errno || v > max)
    return perr (ps, n, path, "expected an integer 0-%lu, got `%s`", max, s);
  *out = (unsigned)v;
  return 0;
}

static int
get_bool (struct parse *ps, yaml_node_t *n, const char *path, bool *out)
{
  const char *s;

  if (get_string (ps, n, path, &s) < 0)
    return -1;
  if (!quoted (n) && (strcmp (s, "true") == 0 || strcmp (s, "yes") == 0))
    *out = true;
  else if (!quoted (n) && (strcmp (s, "false") == 0 || strcmp (s, "no") == 0))
    *out = false;
  else
    return perr (ps, n, path, "expected true or false, got `%s`", s);
  return 0;
}

static int
get_size (struct parse *ps, yaml_node_t *n, const char *path, uint64_t *out)
{
  const char *s;
  cl_error_t inner = NULL;

  if (get_string (ps, n, path, &s) < 0)
    return -1;
  if (cl_parse_size (s, path, out, &inner) < 0)
    {
      cl_error_release (&inner);
      return perr (ps, n, path, "expected a size (512M, 2G...), got `%s`", s);
    }
  return 0;
}

/* Milliseconds from "500ms", "2s", "1m" or a bare number of seconds. */
static int
get_duration (struct parse *ps, yaml_node_t *n, const char *path, unsigned *ms)
{
  const char *s;
  char *end;
  double v;

  if (get_string (ps, n, path, &s) < 0)
    return -1;
  v = strtod (s, &end);
  if (end == s || v < 0 || v > 86400)
    return perr (ps, n, path, "expected a duration (500ms, 2s, 1m), got `%s`", s);
  if (strcmp (end, "ms") == 0)
    *ms = (unsigned)v;
  else if (*end == '\0' || strcmp (end, "s") == 0)
    *ms = (unsigned)(v * 1000);
  else if (strcmp (end, "m") == 0)
    *ms = (unsigned)(v * 60000);
  else
    return perr (ps, n, path, "expected a duration (500ms, 2s, 1m), got `%s`", s);
  return 0;
}

static int
get_name (struct parse *ps, yaml_node_t *n, const char *path, const char *what, const char **out)
{
  cl_error_t inner = NULL;

  if (get_string (ps, n, path, out) < 0)
    return -1;
  if (cl_validate_name (*out, what, &inner) < 0)
    {
      int r = perr (ps, n, path, "%s", inner->msg);
      cl_error_release (&inner);
      return r;
    }
  return 0;
}

/* A mapping's pairs: fn gets each key (checked against `known`, a NULL
   ended list; NULL: any name) and value. */
typedef int (*pair_fn) (struct parse *ps, void *ctx, const char *key, yaml_node_t *kn,
                        yaml_node_t *v, const char *path);

static int
each_pair (struct parse *ps, yaml_node_t *map, const char *path, const char *const *known,
           pair_fn fn, void *ctx)
{
  yaml_node_pair_t *pair;

  if (want_type (ps, map, YAML_MAPPING_NODE, path) < 0)
    return -1;
  for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++)
    {
      yaml_node_t *k = yaml_document_get_node (ps->doc, pair->key);
      yaml_node_t *v = yaml_document_get_node (ps->doc, pair->value);
      const char *key = scalar (k);
      cleanup_free char *sub = NULL;
      if (key == NULL)
        return perr (ps, k, path, "keys must be scalars");
      sub = *path ? cl_strdup_printf ("%s.%s", path, key) : cl_xstrdup (key);
      if (known)
        {
          size_t i;
          for (i = 0; known[i]; i++)
            if (strcmp (known[i], key) == 0)
              break;
          if (known[i] == NULL)
            {
              char list[512] = "";
              for (i = 0; known[i]; i++)
                snprintf (list + strlen (list), sizeof list - strlen (list), "%s%s", i ? ", " : "",
                          known[i]);
              return perr (ps, k, sub, "unknown key (known: %s)", list);
            }
        }
      if (fn (ps, ctx, key, k, v, sub) < 0)
        return -1;
    }
  return 0;
}

/* A list's items (a scalar alone counts as a list of one). */
typedef int (*item_fn) (struct parse *ps, void *ctx, yaml_node_t *v, const char *path);

static int
each_item (struct parse *ps, yaml_node_t *seq, const char *path, item_fn fn, void *ctx)
{
  if (seq->type == YAML_MAPPING_NODE)
    return perr (ps, seq, path, "expected a list, got a mapping");
  if (seq->type == YAML_SCALAR_NODE)
    return fn (ps, ctx, seq, path);
  for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
       it++)
    {
      cleanup_free char *sub
          = cl_strdup_printf ("%s[%td]", path, it - seq->data.sequence.items.start);
      if (fn (ps, ctx, yaml_document_get_node (ps->doc, *it), sub) < 0)
        return -1;
    }
  return 0;
}

static int
string_item (struct parse *ps, void *ctx, yaml_node_t *v, const char *path)
{
  const char *s;
  if (get_string (ps, v, path, &s) < 0)
    return -1;
  json_array_append_new (ctx, json_string (s));
  return 0;
}

/* command: a list of arguments, or a string run by `sh -c`. */
static int
get_command (struct parse *ps, yaml_node_t *n, const char *path, json_t **out)
{
  json_t *a = json_array ();

  if (n->type == YAML_SCALAR_NODE)
    {
      json_array_append_new (a, json_string ("/bin/sh"));
      json_array_append_new (a, json_string ("-c"));
      json_array_append_new (a, json_string (scalar (n)));
    }
  else if (each_item (ps, n, path, string_item, a) < 0)
    {
      json_decref (a);
      return -1;
    }
  if (json_array_size (a) == 0)
    {
      json_decref (a);
      return perr (ps, n, path, "an empty command");
    }
  *out = a;
  return 0;
}

/* --- networks and volumes --- */

static int
network_key (struct parse *ps, void *ctx, const char *key, yaml_node_t *kn, yaml_node_t *v,
             const char *path)
{
  json_t *net = ctx;
  const char *s;

  (void)kn;
  if (get_string (ps, v, path, &s) < 0)
    return -1;
  if (strcmp (key, "mode") == 0 && strcmp (s, "nat") != 0 && strcmp (s, "routed") != 0
      && strcmp (s, "isolated") != 0)
    return perr (ps, v, path, "expected nat, routed or isolated, got `%s`", s);
  json_object_set_new (net, key, json_string (s));
  return 0;
}

static int
network_def (struct parse *ps, void *ctx, const char *key, yaml_node_t *kn, yaml_node_t *v,
             const char *path)
{
  static const char *const keys[] = { "subnet", "mode", NULL };
  json_t *net;
  const char *name;
  cl_error_t inner = NULL;

  (void)ctx;
  if (get_name (ps, kn, path, "network name", &name) < 0)
    return -1;
  net = json_pack ("{s:s++}", "global", ps->p->id, "-", key);
  if (cl_validate_name (json_string_value (json_object_get (net, "global")), "network name", &inner)
      < 0)
    {
      cl_error_release (&inner);
      json_decref (net);
      return perr (ps, kn, path, "the network's name is too long");
    }
  json_object_set_new (ps->p->networks, key, net);
  if (v->type == YAML_SCALAR_NODE && scalar (v)[0] == '\0')
    return 0; /* `back:` alone: the defaults */
  return each_pair (ps, v, path, keys, network_key, net);
}

static int
volume_key (struct parse *ps, void *ctx, const char *key, yaml_node_t *kn, yaml_node_t *v,
            const char *path)
{
  uint64_t size;

  (void)kn;
  (void)key;
  if (get_size (ps, v, path, &size) < 0)
    return -1;
  json_object_set_new (ctx, "size", json_integer ((json_int_t)size));
  return 0;
}

static int
volume_def (struct parse *ps, void *ctx, const char *key, yaml_node_t *kn, yaml_node_t *v,
            const char *path)
{
  static const char *const keys[] = { "size", NULL };
  const char *name;
  json_t *vol;

  (void)ctx;
  if (get_name (ps, kn, path, "volume name", &name) < 0)
    return -1;
  vol = json_pack ("{s:s++, s:i}", "global", ps->p->id, "-", key, "size", 0);
  json_object_set_new (ps->p->volumes, key, vol);
  if (v->type == YAML_SCALAR_NODE && scalar (v)[0] == '\0')
    return 0;
  return each_pair (ps, v, path, keys, volume_key, vol);
}

/* --- machines --- */

struct mctx
{
  struct prj_machine *mc;
  json_t *item; /* the list item being read (ports, folders...) */
};

static int
env_pair (struct parse *ps, void *ctx, const char *key, yaml_node_t *kn, yaml_node_t *v,
          const char *path)
{
  const char *s;

  if (*key == '\0' || strchr (key, '='))
    return perr (ps, kn, path, "not an environment variable name");
  if (get_string (ps, v, path, &s) < 0)
    return -1;
  json_array_append_new (ctx, json_string_nocheck (cl_strdup_printf ("%s=%s", key, s)));
  return 0;
}

static int
env_item (struct parse *ps, void *ctx, yaml_node_t *v, const char *path)
{
  const char *s;
  if (get_string (ps, v, path, &s) < 0)
    return -1;
  if (strchr (s, '=') == NULL || s[0] == '=')
    return perr (ps, v, path, "expected KEY=VALUE, got `%s`", s);
  json_array_append_new (ctx, json_string (s));
  return 0;
}

static int
netref_key (struct parse *ps, void *ctx, const char *key, yaml_node_t *kn, yaml_node_t *v,
            const char *path)
{
  const char *s;

  (void)kn;
  if (get_string (ps, v, path, &s) < 0)
    return -1;
  json_object_set_new (ctx, key, json_string (s));
  return 0;
}

/* A fixed address: IPv4, inside the network's subnet when the file
   gives one (src/net checks the rest as the machine attaches). */
static int
check_address (struct parse *ps, yaml_node_t *v, const char *path, json_t *net, const char *a)
{
  const char *subnet = json_string_value (json_object_get (net, "subnet"));
  struct in_addr in, sn;
  char base[32];
  unsigned prefix;

  if (inet_pton (AF_INET, a, &in) != 1)
    return perr (ps, v, path, "`%s` is not an IPv4 address", a);
  if (subnet && sscanf (subnet, "%31[0-9.]/%u", base, &prefix) == 2 && prefix >= 1 && prefix <= 32
      && inet_pton (AF_INET, base, &sn) == 1)
    {
      uint32_t mask = prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
      if ((ntohl (in.s_addr) & mask) != (ntohl (sn.s_addr) & mask))
        return perr (ps, v, path, "address %s is outside the network's subnet %s", a, subnet);
    }
  return 0;
}

static int
network_ref (struct parse *ps, void *ctx, yaml_node_t *v, const char *path)
{
  static const char *const keys[] = { "name", "address", NULL };
  struct mctx *c = ctx;
  cleanup_json json_t *ref = json_object ();
  const char *s, *address = NULL;
  json_t *net;

  if (v->type == YAML_MAPPING_NODE)
    {
      if (each_pair (ps, v, path, keys, netref_key, ref) < 0)
        return -1;
      s = json_string_value (json_object_get (ref, "name"));
      address = json_string_value (json_object_get (ref, "address"));
      if (s == NULL)
        return perr (ps, v, path, "needs `name` (and may have `address`)");
    }
  else if (get_string (ps, v, path, &s) < 0)
    return -1;
  if (strcmp (s, "default") == 0)
    {
      json_array_append_new (json_object_get (c->mc->spec, "networks"), json_string (s));
      return 0;
    }
  net = json_object_get (ps->p->networks, s);
  if (net == NULL)
    return perr (ps, v, path, "unknown network `%s` (declare it under `networks`)", s);
  if (address && check_address (ps, v, path, net, address) < 0)
    return -1;
  json_array_append_new (json_object_get (c->mc->spec, "networks"),
                         address ? json_string_nocheck (cl_strdup_printf (
                             "%s@%s", json_string_value (json_object_get (net, "global")), address))
                                 : json_incref (json_object_get (net, "global")));
  return 0;
}

static int
port_key (struct parse *ps, void *ctx, const char *key, yaml_node_t *kn, yaml_node_t *v,
          const char *path)
{
  json_t *port = ctx;
  unsigned u;
  bool b;
  const char *s;

  (void)kn;
  if (strcmp (key, "auto") == 0)
    {
      if (get_bool (ps, v, path, &b) < 0)
        return -1;
      json_object_set_new (port, key, json_boolean (b));
    }
  else if (strcmp (key, "protocol") == 0)
    {
      if (get_string (ps, v, path, &s) < 0)
        return -1;
      if (strcmp (s, "tcp") != 0 && strcmp (s, "udp") != 0)
        return perr (ps, v, path, "expected tcp or udp, got `%s`", s);
      json_object_set_new (port, key, json_string (s));
    }
  else
    {
      if (get_uint (ps, v, path, 65535, &u) < 0)
        return -1;
      if (u == 0)
        return perr (ps, v, path, "a port is 1-65535");
      json_object_set_new (port, key, json_integer (u));
    }
  return 0;
}

static int
port_item (struct parse *ps, void *ctx, yaml_node_t *v, const char *path)
{
  static const char *const keys[] = { "host", "port", "protocol", "auto", NULL };
  struct mctx *c = ctx;
  json_t *port = json_pack ("{s:s, s:b}", "protocol", "tcp", "auto", 0);

  json_array_append_new (json_object_get (c->mc->spec, "ports"), port);
  if (v->type == YAML_SCALAR_NODE)
    {
      unsigned h, p;
      char proto[8] = "tcp", extra;
      int n = sscanf (scalar (v), "%u:%u/%7[a-z]%c", &h, &p, proto, &extra);
      if (n < 2 || n > 3 || h == 0 || h > 65535 || p == 0 || p > 65535
          || (strcmp (proto, "tcp") != 0 && strcmp (proto, "udp") != 0))
        return perr (ps, v, path, "expected HOSTPORT:PORT[/tcp|udp], got `%s`", scalar (v));
      json_object_set_new (port, "host", json_integer (h));
      json_object_set_new (port, "port", json_integer (p));
      json_object_set_new (port, "protocol", json_string (proto));
      return 0;
    }
  if (each_pair (ps, v, path, keys, port_key, port) < 0)
    return -1;
  if (!json_object_get (port, "port"))
    return perr (ps, v, path, "a port needs `port` (and `host`)");
  if (!json_object_get (port, "host"))
    json_object_set (port, "host", json_object_get (port, "port"));
  return 0;
}

/* "SOURCE:/PATH[:ro]" or {host|name, path, readonly}: fills item's
   source, path, readonly. */
static int
mount_key (struct parse *ps, void *ctx, const char *key, yaml_node_t *kn, yaml_node_t *v,
           const char *path)
{
  const char *s;
  bool b;

  (void)kn;
  if (strcmp (key, "readonly") == 0)
    {
      if (get_bool (ps, v, path, &b) < 0)
        return -1;
      json_object_set_new (ctx, "readonly", json_boolean (b));
      return 0;
    }
  if (get_string (ps, v, path, &s) < 0)
    return -1;
  json_object_set_new (ctx, strcmp (key, "path") == 0 ? "path" : "source", json_string (s));
  return 0;
}

static int
mount_item (struct parse *ps, yaml_node_t *v, const char *path, const char *srckey, json_t **out)
{
  const char *const keys[] = { srckey, "path", "readonly", NULL };
  json_t *item = json_pack ("{s:b}", "readonly", 0);
  const char *src, *p;

  *out = item;
  if (v->type == YAML_SCALAR_NODE)
    {
      const char *s = scalar (v), *colon = strchr (s, ':'), *opt;
      if (colon == NULL || colon == s)
        return perr (ps, v, path, "expected SOURCE:/PATH[:ro], got `%s`", s);
      opt = strchr (colon + 1, ':');
      json_object_set_new (item, "source", json_stringn (s, (size_t)(colon - s)));
      json_object_set_new (item, "path",
                           opt ? json_stringn (colon + 1, (size_t)(opt - colon - 1))
                               : json_string (colon + 1));
      if (opt && strcmp (opt, ":ro") != 0 && strcmp (opt, ":rw") != 0)
        return perr (ps, v, path, "unknown option `%s` (ro or rw)", opt + 1);
      json_object_set_new (item, "readonly", json_boolean (opt && strcmp (opt, ":ro") == 0));
    }
  else if (each_pair (ps, v, path, keys, mount_key, item) < 0)
    return -1;
  src = json_string_value (json_object_get (item, "source"));
  p = json_string_value (json_object_get (item, "path"));
  if (src == NULL || p == NULL)
    return perr (ps, v, path, "needs `%s` and `path`", srckey);
  if (p[0] != '/' || strcmp (p, "/") == 0 || strstr (p, "/../") || strstr (p, "//")
      || strchr (p, ':') || strpbrk (p, " \t\n"))
    return perr (ps, v, path, "`%s`: the path must be absolute, clean, without spaces", p);
  return 0;
}

static int
folder_item (struct parse *ps, void *ctx, yaml_node_t *v, const char *path)
{
  struct mctx *c = ctx;
  json_t *item;
  cleanup_free char *host = NULL, *real = NULL;
  struct stat st;
  const char *src;

  if (mount_item (ps, v, path, "host", &item) < 0)
    {
      json_decref (item);
      return -1;
    }
  src = json_string_value (json_object_get (item, "source"));
  host = src[0] == '/' ? cl_xstrdup (src) : cl_strdup_printf ("%s/%s", ps->p->dir, src);
  real = realpath (host, NULL);
  if (real == NULL || stat (real, &st) < 0 || !S_ISDIR (st.st_mode))
    {
      int e = real ? ENOTDIR : errno;
      int r = perr (ps, v, path, "folder `%s`: %s", src, strerror (e));
      json_decref (item);
      return r;
    }
  json_array_append_new (json_object_get (c->mc->spec, "mounts"),
                         json_string_nocheck (cl_strdup_printf (
                             "%s:%s%s", real, json_string_value (json_object_get (item, "path")),
                             json_is_true (json_object_get (item, "readonly")) ? ":ro" : "")));
  json_decref (item);
  return 0;
}

static int
volume_ref (struct parse *ps, void *ctx, yaml_node_t *v, const char *path)
{
  struct mctx *c = ctx;
  json_t *item, *vol;
  const char *name;

  if (mount_item (ps, v, path, "name", &item) < 0)
    {
      json_decref (item);
      return -1;
    }
  name = json_string_value (json_object_get (item, "source"));
  vol = json_object_get (ps->p->volumes, name);
  if (vol == NULL)
    {
      int r = perr (ps, v, path, "unknown volume `%s` (declare it under `volumes`)", name);
      json_decref (item);
      return r;
    }
  json_array_append_new (json_object_get (c->mc->spec, "volumes"),
                         json_string_nocheck (cl_strdup_printf (
                             "%s:%s%s", json_string_value (json_object_get (vol, "global")),
                             json_string_value (json_object_get (item, "path")),
                             json_is_true (json_object_get (item, "readonly")) ? ":ro" : "")));
  json_decref (item);
  return 0;
}

static int
step_key (struct parse *ps, void *ctx, const char *key, yaml_node_t *kn, yaml_node_t *v,
          const char *path)
{
  json_t *step = ctx;
  const char *s;

  (void)kn;
  if (get_string (ps, v, path, &s) < 0)
    return -1;
  if (strcmp (key, "run") == 0 && strcmp (s, "once") != 0 && strcmp (s, "always") != 0)
    return perr (ps, v, path, "expected once or always, got `%s`", s);
  if (strcmp (key, "script") == 0)
    {
      cleanup_free char *file
          = s[0] == '/' ? cl_xstrdup (s) : cl_strdup_printf ("%s/%s", ps->p->dir, s);
      char *text = NULL;
      size_t len;
      cl_error_t inner = NULL;
      if (cl_read_file (file, &text, &len, &inner) < 0)
        {
          cl_error_release (&inner);
          return perr (ps, v, path, "script `%s`: %s", s, strerror (errno ? errno : ENOENT));
        }
      json_object_set_new (step, "shell", json_stringn_nocheck (text, len));
      json_object_set_new (step, "script", json_string (s));
      free (text);
      return 0;
    }
  json_object_set_new (step, key, json_string (s));
  return 0;
}

static int
step_item (struct parse *ps, void *ctx, yaml_node_t *v, const char *path)
{
  static const char *const keys[] = { "shell", "script", "run", "user", NULL };
  struct mctx *c = ctx;
  json_t *step = json_pack ("{s:s}", "run", "once");

  json_array_append_new (c->mc->provision, step);
  if (v->type == YAML_SCALAR_NODE)
    {
      json_object_set_new (step, "shell", json_string (scalar (v)));
      return 0;
    }
  if (each_pair (ps, v, path, keys, step_key, step) < 0)
    return -1;
  if (!json_object_get (step, "shell"))
    return perr (ps, v, path, "a step needs `shell` or `script`");
  return 0;
}

static int
health_key (struct parse *ps, void *ctx, const char *key, yaml_node_t *kn, yaml_node_t *v,
            const char *path)
{
  json_t *h = ctx, *cmd;
  unsigned u = 0;

  (void)kn;
  if (strcmp (key, "command") == 0)
    {
      if (get_command (ps, v, path, &cmd) < 0)
        return -1;
      json_object_set_new (h, "command", cmd);
    }
  else if (strcmp (key, "interval") == 0 || strcmp (key, "timeout") == 0)
    {
      if (get_duration (ps, v, path, &u) < 0)
        return -1;
      json_object_set_new (h, strcmp (key, "interval") == 0 ? "interval_ms" : "timeout_ms",
                           json_integer (u));
    }
  return 0;
}

static int
dep_item (struct parse *ps, void *ctx, yaml_node_t *v, const char *path)
{
  struct mctx *c = ctx;
  const char *s;

  if (get_string (ps, v, path, &s) < 0)
    return -1;
  c->mc->deps = realloc (c->mc->deps, (c->mc->ndeps + 1) * sizeof *c->mc->deps);
  if (c->mc->deps == NULL)
    abort ();
  c->mc->deps[c->mc->ndeps++] = cl_xstrdup (s);
  return 0;
}

static int
machine_key (struct parse *ps, void *ctx, const char *key, yaml_node_t *kn, yaml_node_t *v,
             const char *path)
{
  struct mctx *c = ctx;
  json_t *spec = c->mc->spec, *cmd;
  const char *s;
  unsigned u;
  uint64_t size;
  bool b;

  (void)kn;
  if (strcmp (key, "image") == 0 || strcmp (key, "kind") == 0)
    {
      if (get_string (ps, v, path, &s) < 0)
        return -1;
      if (strcmp (key, "kind") == 0 && strcmp (s, "container") != 0 && strcmp (s, "vm") != 0)
        return perr (ps, v, path, "expected container or vm, got `%s`", s);
      json_object_set_new (spec, key, json_string (s));
    }
  else if (strcmp (key, "cpus") == 0)
    {
      if (get_uint (ps, v, path, 256, &u) < 0)
        return -1;
      json_object_set_new (spec, key, json_integer (u));
    }
  else if (strcmp (key, "memory") == 0 || strcmp (key, "disk") == 0)
    {
      if (get_size (ps, v, path, &size) < 0)
        return -1;
      json_object_set_new (spec, key, json_integer ((json_int_t)size));
    }
  else if (strcmp (key, "command") == 0)
    {
      if (get_command (ps, v, path, &cmd) < 0)
        return -1;
      json_object_set_new (spec, key, cmd);
    }
  else if (strcmp (key, "environment") == 0)
    {
      json_t *env = json_object_get (spec, "env");
      if (v->type == YAML_MAPPING_NODE)
        return each_pair (ps, v, path, NULL, env_pair, env);
      return each_item (ps, v, path, env_item, env);
    }
  else if (strcmp (key, "networks") == 0)
    {
      if (each_item (ps, v, path, network_ref, c) < 0)
        return -1;
      /* `networks: []`: none at all (the key left out: `default`) */
      if (json_array_size (json_object_get (spec, "networks")) == 0)
        json_object_set_new (spec, "no_network", json_true ());
    }
  else if (strcmp (key, "ports") == 0)
    return each_item (ps, v, path, port_item, c);
  else if (strcmp (key, "folders") == 0)
    return each_item (ps, v, path, folder_item, c);
  else if (strcmp (key, "project_folder") == 0)
    {
      if (get_bool (ps, v, path, &b) < 0)
        return -1;
      json_object_set_new (spec, "project_folder", json_boolean (b));
    }
  else if (strcmp (key, "volumes") == 0)
    return each_item (ps, v, path, volume_ref, c);
  else if (strcmp (key, "provision") == 0)
    return each_item (ps, v, path, step_item, c);
  else if (strcmp (key, "depends_on") == 0)
    return each_item (ps, v, path, dep_item, c);
  else if (strcmp (key, "healthcheck") == 0)
    {
      static const char *const keys[] = { "command", "interval", "timeout", NULL };
      c->mc->health = json_pack ("{s:i, s:i}", "interval_ms", 500, "timeout_ms", 60000);
      if (v->type == YAML_SCALAR_NODE || v->type == YAML_SEQUENCE_NODE)
        return health_key (ps, c->mc->health, "command", kn, v, path);
      if (each_pair (ps, v, path, keys, health_key, c->mc->health) < 0)
        return -1;
      if (!json_object_get (c->mc->health, "command"))
        return perr (ps, v, path, "a health check needs `command`");
    }
  return 0;
}

static int
machine_def (struct parse *ps, void *ctx, const char *key, yaml_node_t *kn, yaml_node_t *v,
             const char *path)
{
  static const char *const keys[]
      = { "image",       "kind",       "cpus",        "memory",  "disk",    "command",
          "environment", "networks",   "ports",       "folders", "volumes", "project_folder",
          "provision",   "depends_on", "healthcheck", NULL };
  struct cl_project *p = ps->p;
  struct mctx c;
  const char *name;
  cl_error_t inner = NULL;
  struct prj_machine *mc;
  bool project_folder;

  (void)ctx;
  if (get_name (ps, kn, path, "machine name", &name) < 0)
    return -1;
  p->machines = realloc (p->machines, (p->n + 1) * sizeof *p->machines);
  if (p->machines == NULL)
    abort ();
  mc = &p->machines[p->n++];
  memset (mc, 0, sizeof *mc);
  mc->name = cl_xstrdup (key);
  mc->instance = cl_strdup_printf ("%s-%s", p->id, key);
  mc->spec = json_pack ("{s:s, s:i, s:i, s:i, s:[], s:[], s:[], s:[], s:[], s:b}", "kind",
                        "container", "cpus", 0, "memory", 0, "disk", 0, "env", "networks", "ports",
                        "mounts", "volumes", "project_folder", 1);
  mc->provision = json_array ();
  if (cl_validate_name (mc->instance, "instance name", &inner) < 0)
    {
      cl_error_release (&inner);
      return perr (ps, kn, path, "the machine's name is too long");
    }
  c.mc = mc;
  c.item = NULL;
  if (each_pair (ps, v, path, keys, machine_key, &c) < 0)
    return -1;
  if (!json_object_get (mc->spec, "image"))
    return perr (ps, v, path, "a machine needs `image`");
  project_folder = json_is_true (json_object_get (mc->spec, "project_folder"));
  json_object_del (mc->spec, "project_folder");
  if (project_folder)
    json_array_insert_new (json_object_get (mc->spec, "mounts"), 0,
                           json_string_nocheck (cl_strdup_printf ("%s:/project", p->dir)));
  return 0;
}

/* depends_on: every name a machine, and no cycle (reported at the
   depends_on of a machine on it, with the cycle spelled out). */
static int
check_deps (struct parse *ps, yaml_node_t *machines)
{
  struct cl_project *p = ps->p;
  cleanup_free int *state = cl_xmalloc0 (p->n * sizeof *state); /* 0 new, 1 on stack, 2 done */
  cleanup_free size_t *stack = cl_xmalloc0 ((p->n + 1) * sizeof *stack);
  cleanup_free size_t *next = cl_xmalloc0 ((p->n + 1) * sizeof *next);
  yaml_node_pair_t *pair = machines->data.mapping.pairs.start;

  for (size_t i = 0; i < p->n; i++, pair++)
    for (size_t d = 0; d < p->machines[i].ndeps; d++)
      if (cl_mgr_project_machine (p, p->machines[i].deps[d]) == NULL)
        {
          cleanup_free char *path
              = cl_strdup_printf ("machines.%s.depends_on", p->machines[i].name);
          return perr (ps, yaml_document_get_node (ps->doc, pair->value), path,
                       "unknown machine `%s`", p->machines[i].deps[d]);
        }
  for (size_t root = 0; root < p->n; root++)
    {
      size_t top = 0;
      if (state[root])
        continue;
      stack[top] = root;
      next[top++] = 0;
      state[root] = 1;
      while (top)
        {
          struct prj_machine *mc = &p->machines[stack[top - 1]];
          if (next[top - 1] == mc->ndeps)
            {
              state[stack[--top]] = 2;
              continue;
            }
          size_t d = (size_t)(cl_mgr_project_machine (p, mc->deps[next[top - 1]++]) - p->machines);
          if (state[d] == 2)
            continue;
          if (state[d] == 1)
            {
              char cycle[1024] = "";
              size_t from = 0;
              while (stack[from] != d)
                from++;
              for (size_t k = from; k < top; k++)
                snprintf (cycle + strlen (cycle), sizeof cycle - strlen (cycle), "%s -> ",
                          p->machines[stack[k]].name);
              snprintf (cycle + strlen (cycle), sizeof cycle - strlen (cycle), "%s",
                        p->machines[d].name);
              /* the node of the machine that closes the cycle */
              yaml_node_pair_t *mp = machines->data.mapping.pairs.start + (mc - p->machines);
              cleanup_free char *path = cl_strdup_printf ("machines.%s.depends_on", mc->name);
              yaml_node_t *mv = yaml_document_get_node (ps->doc, mp->value);
              yaml_node_t *at = mv;
              for (yaml_node_pair_t *q = mv->data.mapping.pairs.start;
                   q < mv->data.mapping.pairs.top; q++)
                if (strcmp (scalar (yaml_document_get_node (ps->doc, q->key)), "depends_on") == 0)
                  at = yaml_document_get_node (ps->doc, q->value);
              return perr (ps, at, path, "a cycle: %s", cycle);
            }
          state[d] = 1;
          stack[top] = d;
          next[top++] = 0;
        }
    }
  return 0;
}

static int
top_key (struct parse *ps, void *ctx, const char *key, yaml_node_t *kn, yaml_node_t *v,
         const char *path)
{
  yaml_node_t **machines = ctx;

  (void)kn;
  if (strcmp (key, "name") == 0)
    return 0; /* read first (the ids depend on it) */
  if (strcmp (key, "networks") == 0)
    return each_pair (ps, v, path, NULL, network_def, NULL);
  if (strcmp (key, "volumes") == 0)
    return each_pair (ps, v, path, NULL, volume_def, NULL);
  *machines = v;
  return 0;
}

static int
top_machines (struct parse *ps, void *ctx, const char *key, yaml_node_t *kn, yaml_node_t *v,
              const char *path)
{
  (void)ctx;
  if (strcmp (key, "machines") != 0)
    return 0;
  (void)kn;
  return each_pair (ps, v, path, NULL, machine_def, NULL);
}

/* Project name: `name:`, else the directory's; then the id. */
static int
project_name (struct parse *ps, yaml_node_t *root)
{
  struct cl_project *p = ps->p;
  const char *base = strrchr (p->dir, '/');
  cl_error_t inner = NULL;

  for (yaml_node_pair_t *q = root->data.mapping.pairs.start; q < root->data.mapping.pairs.top; q++)
    {
      const char *k = scalar (yaml_document_get_node (ps->doc, q->key));
      const char *name;
      if (k && strcmp (k, "name") == 0)
        {
          if (get_name (ps, yaml_document_get_node (ps->doc, q->value), "name", "project name",
                        &name)
              < 0)
            return -1;
          p->name = cl_xstrdup (name);
        }
    }
  if (p->name == NULL)
    {
      /* the directory's name, made a valid name */
      p->name = cl_xstrdup (base && base[1] ? base + 1 : "project");
      for (char *c = p->name; *c; c++)
        if (!(strchr ("_.-", *c) || (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z')
              || (*c >= 'A' && *c <= 'Z')))
          *c = '_';
      if (p->name[0] == '.' || p->name[0] == '-')
        p->name[0] = '_';
      if (strlen (p->name) > 32)
        p->name[32] = '\0';
    }
  p->id = cl_strdup_printf ("%s-%06llx", p->name,
                            (unsigned long long)(cl_fnv1a64 (p->dir) & 0xffffff));
  if (cl_validate_name (p->id, "project name", &inner) < 0)
    {
      cl_error_release (&inner);
      return perr (ps, root, "name", "the project's name is too long");
    }
  return 0;
}

static int
parse_document (struct parse *ps)
{
  static const char *const keys[] = { "name", "networks", "volumes", "machines", NULL };
  yaml_node_t *root = yaml_document_get_root_node (ps->doc);
  yaml_node_t *machines = NULL;

  if (root == NULL)
    return cl_error_raise (ps->err, CL_ERR_INVALID,
                           "%s:1:1: the file is empty (it needs `machines`)", ps->file);
  if (want_type (ps, root, YAML_MAPPING_NODE, "(top)") < 0 || project_name (ps, root) < 0)
    return -1;
  /* networks and volumes first: machines refer to them */
  if (each_pair (ps, root, "", keys, top_key, &machines) < 0)
    return -1;
  if (machines == NULL)
    return perr (ps, root, "machines", "the file declares no machines");
  if (each_pair (ps, root, "", keys, top_machines, NULL) < 0)
    return -1;
  if (ps->p->n == 0)
    return perr (ps, machines, "machines", "the file declares no machines");
  return check_deps (ps, machines);
}

/* The file: -f FILE, else Cloisonfile here or in the nearest parent. */
static char *
find_file (const char *file, cl_error_t *err)
{
  char dir[PATH_MAX];

  if (file)
    {
      char *real = realpath (file, NULL);
      if (real == NULL)
        cl_error_errno (err, "Cloisonfile `%s`", file);
      return real;
    }
  if (getcwd (dir, sizeof dir) == NULL)
    {
      cl_error_errno (err, "getcwd");
      return NULL;
    }
  for (;;)
    {
      char *candidate = cl_strdup_printf ("%s/" CL_PROJECT_FILE, strcmp (dir, "/") ? dir : "");
      if (access (candidate, F_OK) == 0)
        return candidate;
      free (candidate);
      char *slash = strrchr (dir, '/');
      if (slash == NULL || slash == dir)
        break;
      *slash = '\0';
    }
  cl_error_raise (err, CL_ERR_NOT_FOUND,
                  "no " CL_PROJECT_FILE " in this directory or its parents (or give -f FILE)");
  return NULL;
}

int
cl_mgr_project_load (const char *file, struct cl_project **out, cl_error_t *err)
{
  cleanup_free char *path = find_file (file, err);
  cleanup_project struct cl_project *p = NULL;
  yaml_parser_t parser;
  yaml_document_t doc;
  FILE *f;
  int r;

  if (path == NULL)
    return -1;
  f = fopen (path, "re");
  if (f == NULL)
    return cl_error_errno (err, "open `%s`", path);
  p = cl_xmalloc0 (sizeof *p);
  p->file = cl_xstrdup (path);
  p->dir = cl_xstrdup (path);
  *strrchr (p->dir, '/') = '\0';
  if (p->dir[0] == '\0')
    strcpy (p->dir, "/");
  p->networks = json_object ();
  p->volumes = json_object ();
  yaml_parser_initialize (&parser);
  yaml_parser_set_input_file (&parser, f);
  if (!yaml_parser_load (&parser, &doc))
    {
      r = cl_error_raise (err, CL_ERR_INVALID, "%s:%zu:%zu: %s%s%s", file ? file : path,
                          parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                          parser.problem ? parser.problem : "bad YAML", parser.context ? " " : "",
                          parser.context ? parser.context : "");
      yaml_parser_delete (&parser);
      fclose (f);
      return r;
    }
  struct parse ps = { .doc = &doc, .file = file ? file : path, .p = p, .err = err };
  r = parse_document (&ps);
  yaml_document_delete (&doc);
  yaml_parser_delete (&parser);
  fclose (f);
  if (r < 0)
    return -1;
  *out = steal_pointer (&p);
  return 0;
}

struct prj_machine *
cl_mgr_project_machine (struct cl_project *p, const char *name)
{
  for (size_t i = 0; i < p->n; i++)
    if (strcmp (p->machines[i].name, name) == 0)
      return &p->machines[i];
  return NULL;
}

const char *
cl_mgr_project_id (struct cl_project *p)
{
  return p->id;
}

char *
cl_mgr_project_instance (struct cl_project *p, const char *machine)
{
  struct prj_machine *mc = cl_mgr_project_machine (p, machine);
  return mc ? cl_xstrdup (mc->instance) : NULL;
}

void
cl_mgr_project_free (struct cl_project *p)
{
  if (p == NULL)
    return;
  for (size_t i = 0; i < p->n; i++)
    {
      struct prj_machine *mc = &p->machines[i];
      free (mc->name);
      free (mc->instance);
      json_decref (mc->spec);
      cl_strv_free_n (mc->deps, mc->ndeps);
      json_decref (mc->provision);
      json_decref (mc->health);
    }
  free (p->machines);
  json_decref (p->networks);
  json_decref (p->volumes);
  free (p->file);
  free (p->dir);
  free (p->name);
  free (p->id);
  free (p);
}

void
cl_mgr_project_freep (struct cl_project **p)
{
  cl_mgr_project_free (*p);
}
