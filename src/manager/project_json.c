/* SPDX-License-Identifier: Apache-2.0 */
/* A parsed Cloisonfile as JSON, and back: what `cloison up` sends to the
   API (POST /1.0/projects/{id}/up...), which the server takes only after
   checking every field the planner reads (a wrong one is named by its
   JSON path: "machines[1].spec.image"). */
#include "common/cleanup.h"
#include "common/json.h"
#include "common/util.h"
#include "manager/project_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *
cl_mgr_project_to_json (struct cl_project *p)
{
  json_t *machines = json_array ();

  for (size_t i = 0; i < p->n; i++)
    {
      struct prj_machine *mc = &p->machines[i];
      json_t *deps = json_array ();
      for (size_t d = 0; d < mc->ndeps; d++)
        json_array_append_new (deps, json_string (mc->deps[d]));
      json_array_append_new (machines,
                             json_pack ("{s:s, s:s, s:O, s:o, s:O, s:O*}", "name", mc->name,
                                        "instance", mc->instance, "spec", mc->spec, "depends_on",
                                        deps, "provision", mc->provision, "health", mc->health));
    }
  return json_pack ("{s:s, s:s, s:s, s:s, s:O, s:O, s:o}", "name", p->name, "id", p->id, "file",
                    p->file, "dir", p->dir, "networks", p->networks, "volumes", p->volumes,
                    "machines", machines);
}

/* --- checking it --- */

static int __attribute__ ((format (printf, 3, 4)))
bad (cl_error_t *err, const char *path, const char *fmt, ...)
{
  cleanup_free char *why = NULL;
  va_list ap;

  va_start (ap, fmt);
  if (vasprintf (&why, fmt, ap) < 0)
    abort ();
  va_end (ap);
  return cl_error_raise (err, CL_ERR_INVALID, "%s: %s", path, why);
}

static const char *
want_string (json_t *o, const char *key, bool required, const char *ctx, cl_error_t *err)
{
  json_t *v = json_object_get (o, key);

  if (v == NULL && !required)
    return "";
  if (!json_is_string (v))
    {
      bad (err, *ctx ? ctx : key, "%s%sexpected a string", *ctx ? key : "", *ctx ? ": " : "");
      return NULL;
    }
  return json_string_value (v);
}

static int
want_strings (json_t *arr, const char *path, cl_error_t *err)
{
  json_t *e;
  size_t i;

  if (!json_is_array (arr))
    return bad (err, path, "expected an array of strings");
  json_array_foreach (arr, i, e) if (!json_is_string (e)) return bad (
      err, path, "item %zu: expected a string", i);
  return 0;
}

static int
check_spec (json_t *spec, const char *path, cl_error_t *err)
{
  static const char *const ints[] = { "cpus", "memory", "disk", NULL };
  static const char *const lists[] = { "env", "networks", "mounts", "volumes", NULL };
  char sub[256];
  const char *kind = want_string (spec, "kind", true, path, err);

  if (kind == NULL || want_string (spec, "image", true, path, err) == NULL)
    return -1;
  if (strcmp (kind, "container") != 0 && strcmp (kind, "vm") != 0)
    {
      snprintf (sub, sizeof sub, "%.200s.kind", path);
      return bad (err, sub, "expected container or vm, got `%s`", kind);
    }
  for (size_t i = 0; ints[i]; i++)
    {
      json_t *v = json_object_get (spec, ints[i]);
      snprintf (sub, sizeof sub, "%.200s.%s", path, ints[i]);
      if (!json_is_integer (v) || json_integer_value (v) < 0)
        return bad (err, sub, "expected an integer >= 0");
    }
  for (size_t i = 0; lists[i]; i++)
    {
      snprintf (sub, sizeof sub, "%.200s.%s", path, lists[i]);
      if (want_strings (json_object_get (spec, lists[i]), sub, err) < 0)
        return -1;
    }
  snprintf (sub, sizeof sub, "%.200s.command", path);
  if (json_object_get (spec, "command")
      && want_strings (json_object_get (spec, "command"), sub, err) < 0)
    return -1;
  if (!json_is_array (json_object_get (spec, "ports")))
    return bad (err, path, "ports: expected an array");
  return 0;
}

static int
check_machine (json_t *j, const char *id, const char *path, cl_error_t *err)
{
  const char *name = want_string (j, "name", true, path, err);
  const char *instance = want_string (j, "instance", true, path, err);
  json_t *provision = json_object_get (j, "provision"), *st, *health;
  cleanup_free char *expected = NULL;
  char sub[160];
  size_t i;

  if (name == NULL || instance == NULL)
    return -1;
  expected = cl_strdup_printf ("%s-%s", id, name);
  if (cl_validate_name (instance, "instance name", err) < 0)
    return cl_error_wrap (err, "%s.instance", path);
  if (strcmp (instance, expected) != 0)
    return bad (err, path, "instance: expected `%s`, got `%s`", expected, instance);
  if (!json_is_object (json_object_get (j, "spec")))
    return bad (err, path, "spec: expected an object");
  snprintf (sub, sizeof sub, "%s.spec", path);
  if (check_spec (json_object_get (j, "spec"), sub, err) < 0)
    return -1;
  snprintf (sub, sizeof sub, "%s.depends_on", path);
  if (want_strings (json_object_get (j, "depends_on"), sub, err) < 0)
    return -1;
  if (!json_is_array (provision))
    return bad (err, path, "provision: expected an array");
  json_array_foreach (provision, i, st)
  {
    const char *run;
    snprintf (sub, sizeof sub, "%s.provision[%zu]", path, i);
    if (!json_is_object (st) || want_string (st, "shell", true, sub, err) == NULL
        || want_string (st, "user", false, sub, err) == NULL
        || (run = want_string (st, "run", true, sub, err)) == NULL)
      return json_is_object (st) ? -1 : bad (err, sub, "expected an object");
    if (strcmp (run, "once") != 0 && strcmp (run, "always") != 0)
      return bad (err, sub, "run: expected once or always, got `%s`", run);
  }
  health = json_object_get (j, "health");
  snprintf (sub, sizeof sub, "%s.health", path);
  if (health && !json_is_null (health))
    {
      if (!json_is_object (health)
          || want_strings (json_object_get (health, "command"), sub, err) < 0)
        return json_is_object (health) ? -1 : bad (err, sub, "expected an object");
      if (json_array_size (json_object_get (health, "command")) == 0)
        return bad (err, sub, "command: empty");
      if (!json_is_integer (json_object_get (health, "interval_ms"))
          || !json_is_integer (json_object_get (health, "timeout_ms")))
        return bad (err, sub, "interval_ms, timeout_ms: expected integers");
    }
  return 0;
}

/* networks and volumes: {NAME: {global: ID-NAME, ...}} */
static int
check_globals (json_t *obj, const char *id, const char *what, cl_error_t *err)
{
  const char *key;
  json_t *v;

  if (!json_is_object (obj))
    return bad (err, what, "expected an object");
  json_object_foreach (obj, key, v)
  {
    cleanup_free char *path = cl_strdup_printf ("%s.%s", what, key);
    cleanup_free char *expected = cl_strdup_printf ("%s-%s", id, key);
    const char *global;
    if (!json_is_object (v))
      return bad (err, path, "expected an object");
    if ((global = want_string (v, "global", true, path, err)) == NULL)
      return -1;
    if (strcmp (global, expected) != 0)
      return bad (err, path, "global: expected `%s`, got `%s`", expected, global);
    if (strcmp (what, "volumes") == 0 && !json_is_integer (json_object_get (v, "size")))
      return bad (err, path, "size: expected an integer");
    if (strcmp (what, "networks") == 0)
      {
        const char *mode = want_string (v, "mode", false, path, err);
        if (mode == NULL || want_string (v, "subnet", false, path, err) == NULL)
          return -1;
        if (*mode && strcmp (mode, "nat") && strcmp (mode, "routed") && strcmp (mode, "isolated"))
          return bad (err, path, "mode: expected nat, routed or isolated, got `%s`", mode);
      }
  }
  return 0;
}

int
cl_mgr_project_from_json (json_t *j, struct cl_project **out, cl_error_t *err)
{
  cleanup_project struct cl_project *p = NULL;
  cleanup_free char *id = NULL;
  const char *name, *file, *dir, *got_id;
  json_t *machines = json_object_get (j, "machines"), *mj;
  size_t i;

  if (!json_is_object (j))
    return bad (err, "", "expected an object");
  if ((name = want_string (j, "name", true, "", err)) == NULL
      || (got_id = want_string (j, "id", true, "", err)) == NULL
      || (file = want_string (j, "file", true, "", err)) == NULL
      || (dir = want_string (j, "dir", true, "", err)) == NULL)
    return -1;
  if (file[0] != '/' || dir[0] != '/')
    return bad (err, file[0] != '/' ? "file" : "dir", "expected an absolute path");
  id = cl_strdup_printf ("%s-%06llx", name, (unsigned long long)(cl_fnv1a64 (dir) & 0xffffff));
  if (strcmp (id, got_id) != 0)
    return bad (err, "id", "expected `%s` (NAME-hash of dir), got `%s`", id, got_id);
  if (cl_validate_name (id, "project name", err) < 0)
    return cl_error_wrap (err, "name");
  if (check_globals (json_object_get (j, "networks"), id, "networks", err) < 0
      || check_globals (json_object_get (j, "volumes"), id, "volumes", err) < 0)
    return -1;
  if (!json_is_array (machines) || json_array_size (machines) == 0)
    return bad (err, "machines", "expected a non-empty array");
  p = cl_xmalloc0 (sizeof *p);
  p->name = cl_xstrdup (name);
  p->id = steal_pointer (&id);
  p->file = cl_xstrdup (file);
  p->dir = cl_xstrdup (dir);
  p->networks = json_incref (json_object_get (j, "networks"));
  p->volumes = json_incref (json_object_get (j, "volumes"));
  p->machines = cl_xmalloc0 (json_array_size (machines) * sizeof *p->machines);
  json_array_foreach (machines, i, mj)
  {
    cleanup_free char *path = cl_strdup_printf ("machines[%zu]", i);
    struct prj_machine *mc;
    json_t *health;
    if (!json_is_object (mj))
      return bad (err, path, "expected an object");
    if (check_machine (mj, p->id, path, err) < 0)
      return -1;
    if (cl_mgr_project_machine (p, json_string_value (json_object_get (mj, "name"))))
      return bad (err, path, "name: a second machine `%s`",
                  json_string_value (json_object_get (mj, "name")));
    mc = &p->machines[p->n++];
    mc->name = cl_xstrdup (json_string_value (json_object_get (mj, "name")));
    mc->instance = cl_xstrdup (json_string_value (json_object_get (mj, "instance")));
    mc->spec = json_deep_copy (json_object_get (mj, "spec"));
    mc->provision = json_deep_copy (json_object_get (mj, "provision"));
    health = json_object_get (mj, "health");
    mc->health = json_is_object (health) ? json_deep_copy (health) : NULL;
    mc->ndeps = json_array_size (json_object_get (mj, "depends_on"));
    mc->deps = cl_xmalloc0 ((mc->ndeps + 1) * sizeof *mc->deps);
    for (size_t d = 0; d < mc->ndeps; d++)
      mc->deps[d]
          = cl_xstrdup (json_string_value (json_array_get (json_object_get (mj, "depends_on"), d)));
  }
  /* every dependency a machine of the project */
  for (i = 0; i < p->n; i++)
    for (size_t d = 0; d < p->machines[i].ndeps; d++)
      if (cl_mgr_project_machine (p, p->machines[i].deps[d]) == NULL)
        return bad (err, "machines", "[%zu].depends_on: no machine `%s`", i,
                    p->machines[i].deps[d]);
  *out = steal_pointer (&p);
  return 0;
}
