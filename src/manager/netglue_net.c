/* SPDX-License-Identifier: Apache-2.0 */
/* Networking over src/net: containers are attached between the engine's
   create and start (the monitor pauses there, see monitor.c), VMs get the
   tap of their first network. */
#include "common/cleanup.h"
#include "common/util.h"
#include "manager/mgr_internal.h"
#include "manager/netglue.h"
#include "net/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Has networking ever been used in this state root (its tables exist)?
   Recovery is for such roots, half-made networks included; the others
   need not pay for it (nor need nftables at all). */
static bool
root_uses_networks (struct cl_manager *m)
{
  cleanup_stmt sqlite3_stmt *s = NULL;
  cl_error_t err = NULL;

  if (cl_db_prepare (
          m->db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'networks'", &s, &err)
      < 0)
    {
      cl_error_release (&err);
      return true;
    }
  return sqlite3_step (s) == SQLITE_ROW;
}

int
cl_mgr_netglue_check_port (const char *spec, cl_error_t *err)
{
  uint16_t h, p;
  const char *proto;
  return cl_net_parse_port_forward (spec, &h, &p, &proto, err);
}

bool
cl_mgr_netglue_wanted (struct instance *inst)
{
  return !json_is_true (json_object_get (inst->config, "no_network"));
}

/* The networks asked for; none listed: the default network. */
static size_t
networks (struct instance *inst, const char **names, size_t max)
{
  json_t *arr = json_object_get (inst->config, "networks"), *e;
  size_t n = 0, i;

  json_array_foreach (arr, i, e) if (n < max) names[n++] = json_string_value (e);
  if (n == 0)
    names[n++] = NULL;
  return n;
}

static int
forward_ports (struct cl_manager *m, struct instance *inst, cl_error_t *err)
{
  json_t *arr = json_object_get (inst->config, "ports"), *e;
  size_t i;

  json_array_foreach (arr, i, e)
  {
    uint16_t h, p;
    const char *proto;
    if (cl_net_parse_port_forward (json_string_value (e), &h, &p, &proto, err) < 0
        || cl_net_port_forward_add (m->db, NULL, inst->name, h, p, proto, err) < 0)
      return -1;
  }
  return 0;
}

static void
detach_quietly (struct cl_manager *m, const char *name)
{
  cl_error_t ignored = NULL;
  if (cl_net_detach (m->db, name, &ignored) < 0)
    cl_error_release (&ignored);
}

int
cl_mgr_netglue_attach_container (struct cl_manager *m, struct instance *inst, pid_t pid,
                                 cl_error_t *err)
{
  const char *names[8];
  size_t n;

  if (!cl_mgr_netglue_wanted (inst))
    return 0;
  detach_quietly (m, inst->name); /* what a former run left */
  n = networks (inst, names, 8);
  for (size_t i = 0; i < n; i++)
    {
      struct cl_net_attachment att;
      char ifname[16];
      snprintf (ifname, sizeof ifname, "eth%u", (unsigned)i);
      if (cl_net_attach_container (m->db, names[i], inst->name, pid, ifname, &att, err) < 0)
        goto fail;
    }
  if (forward_ports (m, inst, err) < 0)
    goto fail;
  return 0;
fail:
  detach_quietly (m, inst->name);
  return -1;
}

int
cl_mgr_netglue_attach_vm (struct cl_manager *m, struct instance *inst, char **tap, uint8_t mac[6],
                          bool *has_mac, cl_error_t *err)
{
  struct cl_net_attachment att;
  const char *names[8];
  unsigned v[6];

  *tap = NULL;
  *has_mac = false;
  if (!cl_mgr_netglue_wanted (inst))
    return 0;
  detach_quietly (m, inst->name);
  networks (inst, names, 8);
  if (cl_net_attach_vm (m->db, names[0], inst->name, 0, "eth0", &att, err) < 0)
    return -1;
  if (forward_ports (m, inst, err) < 0)
    {
      detach_quietly (m, inst->name);
      return -1;
    }
  *tap = cl_xstrdup (att.host_ifname);
  if (sscanf (att.mac, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6)
    {
      for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
      *has_mac = true;
    }
  return 0;
}

int
cl_mgr_netglue_detach (struct cl_manager *m, const char *name, cl_error_t *err)
{
  if (!root_uses_networks (m))
    return 0;
  return cl_net_detach (m->db, name, err);
}

json_t *
cl_mgr_netglue_info (struct cl_manager *m, const char *name)
{
  json_t *out = NULL, *ifs;
  cl_error_t err = NULL;

  if (!root_uses_networks (m))
    return json_null ();
  if (cl_net_info (m->db, name, &out, &err) < 0)
    {
      cl_error_release (&err);
      return json_null ();
    }
  ifs = json_incref (json_object_get (out, "interfaces"));
  json_decref (out);
  return ifs ? ifs : json_null ();
}

/* Asked by src/net under its lock: the row is read then, so an instance
   launched since the caller listed the rows is seen. */
static bool
instance_row_exists (void *opaque, const char *name)
{
  struct cl_manager *m = opaque;
  cleanup_stmt sqlite3_stmt *s = NULL;
  cl_error_t err = NULL;

  if (cl_db_prepare (m->db, "SELECT 1 FROM instances WHERE name = ?", &s, &err) < 0)
    {
      cl_error_release (&err);
      return true; /* in doubt, keep it */
    }
  sqlite3_bind_text (s, 1, name, -1, SQLITE_STATIC);
  return sqlite3_step (s) != SQLITE_DONE;
}

int
cl_mgr_netglue_cleanup (struct cl_manager *m, cl_error_t *err)
{
  if (!root_uses_networks (m))
    return 0;
  return cl_net_cleanup_stale (m->db, instance_row_exists, m, err);
}
